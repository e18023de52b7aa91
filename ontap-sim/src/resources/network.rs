//! `/api/network/ip/interfaces` (GET, POST, PATCH, DELETE) and
//! `/api/network/fc/interfaces` (GET).

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use http::StatusCode;
use serde_json::{json, Value};

use super::{
    commit_create, created, get_one, href_ref, json_response, list, select_for_query, svm_ref,
    sync_query_done, ApiError, ApiRequest, ResourceSpec, Sim,
};
use crate::api::{opt_bool, opt_str, req_str};
use crate::backend::Change;
use crate::store::{coll, str_at};

const IP: ResourceSpec = ResourceSpec {
    collection: coll::IP_INTERFACES,
    key_param: "uuid",
    identity: &["uuid", "name"],
    svm_scoped: true,
};

const FC: ResourceSpec = ResourceSpec {
    collection: coll::FC_INTERFACES,
    key_param: "uuid",
    identity: &["uuid", "name"],
    svm_scoped: true,
};

const POSTABLE: &[&str] = &[
    "name",
    "svm",
    "scope",
    "ipspace",
    "ip.address",
    "ip.netmask",
    "ip.family",
    "location.home_node",
    "location.home_port",
    "location.broadcast_domain",
    "location.auto_revert",
    "location.failover",
    "service_policy",
    "enabled",
];
const PATCHABLE: &[&str] = &["name", "enabled", "service_policy", "location.auto_revert"];

/// Built-in service policies and their services.
const POLICIES: &[(&str, &[&str])] = &[
    (
        "default-data-files",
        &["data_core", "data_nfs", "data_cifs", "data_flexcache"],
    ),
    ("default-data-blocks", &["data_core", "data_iscsi"]),
    ("default-data-iscsi", &["data_core", "data_iscsi"]),
    ("default-data-nvme-tcp", &["data_core", "data_nvme_tcp"]),
    (
        "default-management",
        &["data_core", "management_https", "management_ssh"],
    ),
    ("default-intercluster", &["intercluster_core"]),
];

/// The built-in service policy whose services match `services` best.
pub(crate) fn policy_for(services: &[String]) -> &'static str {
    let has = |s: &str| services.iter().any(|x| x == s);
    if has("data_nvme_tcp") {
        "default-data-nvme-tcp"
    } else if has("data_iscsi") {
        "default-data-blocks"
    } else if has("management_https") {
        "default-management"
    } else {
        "default-data-files"
    }
}

pub(crate) fn routes() -> Router<Sim> {
    Router::new()
        .route(
            "/api/network/ip/interfaces",
            get(|State(sim): State<Sim>, req: ApiRequest| async move {
                list(&sim, &req, &IP, |_| true)
            })
            .post(create_h)
            .delete(delete_query_h),
        )
        .route(
            "/api/network/ip/interfaces/{uuid}",
            get(
                |State(sim): State<Sim>, Path(u): Path<String>, req: ApiRequest| async move {
                    get_one(&sim, &req, &IP, &u)
                },
            )
            .patch(patch_h)
            .delete(delete_h),
        )
        .route(
            "/api/network/fc/interfaces",
            get(|State(sim): State<Sim>, req: ApiRequest| async move {
                list(&sim, &req, &FC, |_| true)
            }),
        )
        .route(
            "/api/network/fc/interfaces/{uuid}",
            get(
                |State(sim): State<Sim>, Path(u): Path<String>, req: ApiRequest| async move {
                    get_one(&sim, &req, &FC, &u)
                },
            ),
        )
}

fn services_of(policy: &str) -> Result<Vec<&'static str>, ApiError> {
    POLICIES
        .iter()
        .find(|(p, _)| *p == policy)
        .map(|(_, s)| s.to_vec())
        .ok_or_else(|| {
            ApiError::not_found_msg(format!("Service policy \"{policy}\" does not exist."))
                .with_target("service_policy.name")
        })
}

async fn create_h(State(sim): State<Sim>, req: ApiRequest) -> Result<Response, ApiError> {
    req.check_fields(POSTABLE)?;
    let body = req.body_obj();
    let name = req_str(&body, "name")?;
    let address = req_str(&body, "ip.address")?;
    if address.parse::<std::net::IpAddr>().is_err() {
        return Err(ApiError::invalid_value("ip.address", &address));
    }
    let netmask = match body.get("ip").and_then(|ip| ip.get("netmask")) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "24".to_string(),
    };
    let policy =
        opt_str(&body, "service_policy.name")?.unwrap_or_else(|| "default-data-files".to_string());
    let services = services_of(&policy)?;
    let uuid = uuid::Uuid::new_v4().to_string();
    let rec = sim.read(|s| {
        let svm = req.create_svm(s)?;
        if s.find_named(coll::IP_INTERFACES, Some(&svm.0), &name, |_| true)
            .is_some()
        {
            return Err(ApiError::duplicate(format!(
                "Duplicate interface name \"{name}\" in SVM \"{}\".",
                svm.1
            ))
            .with_target("name"));
        }
        if s.find(coll::IP_INTERFACES, |v| str_at(v, "/ip/address") == address)
            .is_some()
        {
            return Err(
                ApiError::duplicate(format!("Address {address} is already in use."))
                    .with_target("ip.address"),
            );
        }
        let node_name = opt_str(&body, "location.home_node.name")?;
        let (nu, nn) = match node_name {
            Some(n) => s
                .find_named(coll::NODES, None, &n, |_| true)
                .map(|(k, _)| (k.clone(), n.clone()))
                .ok_or_else(|| {
                    ApiError::not_found_msg(format!("Node \"{n}\" does not exist."))
                        .with_target("location.home_node.name")
                })?,
            None => s
                .iter(coll::NODES)
                .next()
                .map(|(k, v)| (k.clone(), str_at(v, "/name")))
                .ok_or_else(ApiError::not_found)?,
        };
        let port = opt_str(&body, "location.home_port.name")?.unwrap_or_else(|| "e0c".into());
        let family = if address.contains(':') {
            "ipv6"
        } else {
            "ipv4"
        };
        Ok(json!({
            "uuid": uuid, "name": name, "scope": "svm",
            "svm": svm_ref(&svm.0, &svm.1),
            "ipspace": {"name": "Default"},
            "ip": {"address": address, "netmask": netmask, "family": family},
            "location": {"home_node": href_ref("/api/cluster/nodes", &nu, &nn),
                         "node": href_ref("/api/cluster/nodes", &nu, &nn),
                         "home_port": {"name": port, "node": {"name": nn}},
                         "port": {"name": port, "node": {"name": nn}},
                         "is_home": true,
                         "auto_revert": opt_bool(&body, "location.auto_revert")?.unwrap_or(false)},
            "service_policy": {"name": policy},
            "services": services,
            "enabled": opt_bool(&body, "enabled")?.unwrap_or(true),
            "state": if opt_bool(&body, "enabled")?.unwrap_or(true) { "up" } else { "down" },
            "_links": {"self": {"href": format!("/api/network/ip/interfaces/{uuid}")}},
        }))
    })?;
    let svm_uuid = str_at(&rec, "/svm/uuid");
    let check_name = name.clone();
    commit_create(
        &sim,
        coll::IP_INTERFACES,
        &uuid,
        rec.clone(),
        move |s| match s.find_named(coll::IP_INTERFACES, Some(&svm_uuid), &check_name, |_| true) {
            Some(_) => Err(ApiError::duplicate(format!(
                "Duplicate interface name \"{check_name}\"."
            ))),
            None => Ok(()),
        },
    )
    .await?;
    Ok(created(
        &req,
        &rec,
        &format!("/api/network/ip/interfaces/{uuid}"),
    ))
}

async fn patch_h(
    State(sim): State<Sim>,
    Path(uuid): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    req.check_fields(PATCHABLE)?;
    let body = req.body_obj();
    let before = sim.read(|s| {
        s.get(coll::IP_INTERFACES, &uuid)
            .cloned()
            .ok_or_else(ApiError::not_found)
    })?;
    let mut after = before.clone();
    if let Some(e) = opt_bool(&body, "enabled")? {
        after["enabled"] = json!(e);
        after["state"] = json!(if e { "up" } else { "down" });
    }
    if let Some(p) = opt_str(&body, "service_policy.name")? {
        after["services"] = json!(services_of(&p)?);
        after["service_policy"] = json!({"name": p});
    }
    if let Some(n) = opt_str(&body, "name")? {
        after["name"] = json!(n);
    }
    if let Some(a) = opt_bool(&body, "location.auto_revert")? {
        after["location"]["auto_revert"] = json!(a);
    }
    sim.realise(Change::Modified {
        collection: coll::IP_INTERFACES.into(),
        before,
        after: after.clone(),
    })
    .await?;
    sim.write(|s| s.insert(coll::IP_INTERFACES, &uuid, after));
    Ok(json_response(StatusCode::OK, &json!({})))
}

async fn remove(sim: &Sim, uuid: &str) -> Result<(), ApiError> {
    let Some(rec) = sim.read(|s| s.get(coll::IP_INTERFACES, uuid).cloned()) else {
        return Err(ApiError::not_found());
    };
    sim.realise(Change::Deleted {
        collection: coll::IP_INTERFACES.into(),
        record: rec,
    })
    .await?;
    sim.write(|s| s.remove(coll::IP_INTERFACES, uuid));
    Ok(())
}

async fn delete_h(
    State(sim): State<Sim>,
    Path(uuid): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    sim.read(|s| {
        let t = req.tunnel_svm(s)?;
        s.get(coll::IP_INTERFACES, &uuid)
            .filter(|v| t.as_ref().is_none_or(|(u, _)| str_at(v, "/svm/uuid") == *u))
            .map(|_| ())
            .ok_or_else(ApiError::not_found)
    })?;
    remove(&sim, &uuid).await?;
    Ok(json_response(StatusCode::OK, &json!({})))
}

async fn delete_query_h(State(sim): State<Sim>, req: ApiRequest) -> Result<Response, ApiError> {
    let targets = select_for_query(&sim, &req, &IP, |_| true)?;
    for (k, _) in &targets {
        remove(&sim, k).await?;
    }
    Ok(sync_query_done(&req, targets.len()))
}
