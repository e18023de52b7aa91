//! `/api/cluster`, nodes, aggregates, SVMs and snapshot policies.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use super::{
    get_one, job_accepted, job_description, list, render_one, svm_ref, ApiError, ApiRequest,
    ResourceSpec, Sim,
};
use crate::api::{opt_bool, opt_str, req_str};
use crate::backend::Change;
use crate::error::JobFailure;
use crate::store::{coll, str_at};

const NODES: ResourceSpec = ResourceSpec {
    collection: coll::NODES,
    key_param: "uuid",
    identity: &["uuid", "name"],
    svm_scoped: false,
};

const AGGREGATES: ResourceSpec = ResourceSpec {
    collection: coll::AGGREGATES,
    key_param: "uuid",
    identity: &["uuid", "name"],
    svm_scoped: false,
};

pub(crate) const SVMS: ResourceSpec = ResourceSpec {
    collection: coll::SVMS,
    key_param: "uuid",
    identity: &["uuid", "name"],
    svm_scoped: false,
};

const SNAPSHOT_POLICIES: ResourceSpec = ResourceSpec {
    collection: coll::SNAPSHOT_POLICIES,
    key_param: "uuid",
    identity: &["uuid", "name"],
    svm_scoped: false,
};

const CLUSTER: ResourceSpec = ResourceSpec {
    collection: coll::CLUSTER,
    key_param: "name",
    identity: &["name", "uuid"],
    svm_scoped: false,
};

const SVM_POSTABLE: &[&str] = &[
    "name",
    "comment",
    "language",
    "ipspace",
    "aggregates",
    "snapshot_policy",
    "subtype",
    "nfs.enabled",
    "cifs.enabled",
    "cifs.name",
    "iscsi.enabled",
    "fcp.enabled",
    "nvme.enabled",
];

const SVM_PATCHABLE: &[&str] = &[
    "name",
    "comment",
    "language",
    "aggregates",
    "snapshot_policy",
    "state",
    "nfs.enabled",
    "cifs.enabled",
    "iscsi.enabled",
    "fcp.enabled",
    "nvme.enabled",
];

pub(crate) fn routes() -> Router<Sim> {
    Router::new()
        .route("/api/cluster", get(cluster_h))
        .route(
            "/api/cluster/nodes",
            get(|State(sim): State<Sim>, req: ApiRequest| async move {
                list(&sim, &req, &NODES, |_| true)
            }),
        )
        .route(
            "/api/cluster/nodes/{uuid}",
            get(
                |State(sim): State<Sim>, Path(u): Path<String>, req: ApiRequest| async move {
                    get_one(&sim, &req, &NODES, &u)
                },
            ),
        )
        .route(
            "/api/storage/aggregates",
            get(|State(sim): State<Sim>, req: ApiRequest| async move {
                list(&sim, &req, &AGGREGATES, |_| true)
            }),
        )
        .route(
            "/api/storage/aggregates/{uuid}",
            get(
                |State(sim): State<Sim>, Path(u): Path<String>, req: ApiRequest| async move {
                    get_one(&sim, &req, &AGGREGATES, &u)
                },
            ),
        )
        .route(
            "/api/storage/snapshot-policies",
            get(|State(sim): State<Sim>, req: ApiRequest| async move {
                list(&sim, &req, &SNAPSHOT_POLICIES, |_| true)
            }),
        )
        .route(
            "/api/storage/snapshot-policies/{uuid}",
            get(
                |State(sim): State<Sim>, Path(u): Path<String>, req: ApiRequest| async move {
                    get_one(&sim, &req, &SNAPSHOT_POLICIES, &u)
                },
            ),
        )
        .route("/api/svm/svms", get(svms_list).post(svm_create))
        .route(
            "/api/svm/svms/{uuid}",
            get(svm_get).patch(svm_patch).delete(svm_delete),
        )
}

async fn cluster_h(State(sim): State<Sim>, req: ApiRequest) -> Result<Response, ApiError> {
    sim.read(|s| {
        let rec = s
            .get(coll::CLUSTER, "cluster")
            .ok_or_else(ApiError::not_found)?;
        Ok(render_one(&req, &CLUSTER, rec))
    })
}

async fn svms_list(State(sim): State<Sim>, req: ApiRequest) -> Result<Response, ApiError> {
    // Tunnelling to an SVM shows only that SVM.
    let only = sim.read(|s| req.tunnel_svm(s))?;
    list(&sim, &req, &SVMS, |v| {
        only.as_ref().is_none_or(|(u, _)| str_at(v, "/uuid") == *u)
    })
}

async fn svm_get(
    State(sim): State<Sim>,
    Path(uuid): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    get_one(&sim, &req, &SVMS, &uuid)
}

fn protocol_flags(body: &serde_json::Map<String, Value>, rec: &mut Value) -> Result<(), ApiError> {
    for p in ["nfs", "cifs", "iscsi", "fcp", "nvme"] {
        if let Some(b) = opt_bool(body, &format!("{p}.enabled"))? {
            rec[p]["enabled"] = json!(b);
        }
    }
    Ok(())
}

async fn svm_create(State(sim): State<Sim>, req: ApiRequest) -> Result<Response, ApiError> {
    req.check_fields(SVM_POSTABLE)?;
    let body = req.body_obj();
    let name = req_str(&body, "name")?;
    let uuid = uuid::Uuid::new_v4().to_string();
    let mut rec = json!({
        "uuid": uuid, "name": name, "state": "running", "subtype": "default",
        "language": opt_str(&body, "language")?.unwrap_or_else(|| "c.utf_8".into()),
        "ipspace": {"name": "Default"}, "aggregates": [], "ip_interfaces": [],
        "nfs": {"enabled": false}, "cifs": {"enabled": false}, "iscsi": {"enabled": false},
        "fcp": {"enabled": false}, "nvme": {"enabled": false},
        "snapshot_policy": {"name": "default"},
        "comment": opt_str(&body, "comment")?.unwrap_or_default(),
        "_links": {"self": {"href": format!("/api/svm/svms/{uuid}")}},
    });
    protocol_flags(&body, &mut rec)?;
    if let Some(n) = opt_str(&body, "cifs.name")? {
        rec["cifs"]["name"] = json!(n);
    }
    sim.read(|s| {
        if s.find_named(coll::SVMS, None, &name, |_| true).is_some() {
            return Err(
                ApiError::duplicate(format!("Duplicate SVM name \"{name}\".")).with_target("name"),
            );
        }
        if let Some(Value::Array(aggrs)) = body.get("aggregates") {
            let mut out = Vec::new();
            for a in aggrs {
                let n = a.get("name").and_then(Value::as_str).unwrap_or_default();
                let (k, _) = s
                    .find_named(coll::AGGREGATES, None, n, |_| true)
                    .ok_or_else(|| {
                        ApiError::not_found_msg(format!("Aggregate \"{n}\" does not exist."))
                    })?;
                out.push(json!({"name": n, "uuid": k}));
            }
            rec["aggregates"] = Value::Array(out);
        }
        Ok(())
    })?;
    let work_sim = sim.clone();
    let work_rec = rec.clone();
    let ticket = sim.spawn_job(job_description(&req), None, async move {
        work_sim
            .realise(Change::Created {
                collection: coll::SVMS.into(),
                record: work_rec.clone(),
            })
            .await?;
        work_sim.write(|s| {
            let name = str_at(&work_rec, "/name");
            if s.find_named(coll::SVMS, None, &name, |_| true).is_some() {
                return Err(JobFailure::new(
                    1,
                    format!("Duplicate SVM name \"{name}\"."),
                ));
            }
            let uuid = str_at(&work_rec, "/uuid");
            let protocols: Vec<&str> = ["nfs", "cifs", "iscsi", "fcp", "nvme"]
                .into_iter()
                .filter(|p| work_rec[*p]["enabled"] == json!(true))
                .collect();
            s.insert(coll::SVMS, &uuid, work_rec.clone());
            let cluster = s
                .get(coll::CLUSTER, "cluster")
                .map(|c| str_at(c, "/name"))
                .unwrap_or_default();
            crate::seed::insert_services(s, &uuid, &name, &protocols, &cluster);
            Ok(())
        })
    });
    let location = format!("/api/svm/svms/{uuid}");
    job_accepted(
        &sim,
        &req,
        ticket,
        Some(location),
        Some(vec![json!({"name": name, "uuid": uuid})]),
    )
    .await
}

async fn svm_patch(
    State(sim): State<Sim>,
    Path(uuid): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    req.check_fields(SVM_PATCHABLE)?;
    let body = req.body_obj();
    let (before, mut after) = sim.read(|s| {
        let v = s.get(coll::SVMS, &uuid).ok_or_else(ApiError::not_found)?;
        Ok::<_, ApiError>((v.clone(), v.clone()))
    })?;
    protocol_flags(&body, &mut after)?;
    if let Some(state) = crate::api::opt_enum(&body, "state", &["running", "stopped"])? {
        after["state"] = json!(state);
    }
    if let Some(c) = opt_str(&body, "comment")? {
        after["comment"] = json!(c);
    }
    if let Some(n) = opt_str(&body, "name")? {
        if n != str_at(&before, "/name")
            && sim.read(|s| s.find_named(coll::SVMS, None, &n, |_| true).is_some())
        {
            return Err(
                ApiError::duplicate(format!("Duplicate SVM name \"{n}\".")).with_target("name")
            );
        }
        after["name"] = json!(n);
    }
    sim.realise(Change::Modified {
        collection: coll::SVMS.into(),
        before,
        after: after.clone(),
    })
    .await?;
    sim.write(|s| s.insert(coll::SVMS, &uuid, after));
    Ok(super::json_response(http::StatusCode::OK, &json!({})))
}

async fn svm_delete(
    State(sim): State<Sim>,
    Path(uuid): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    let rec = sim.read(|s| {
        s.get(coll::SVMS, &uuid)
            .cloned()
            .ok_or_else(ApiError::not_found)
    })?;
    let work_sim = sim.clone();
    let svm = svm_ref(&uuid, &str_at(&rec, "/name"));
    let ticket = sim.spawn_job(
        format!("DELETE /api/svm/svms/{uuid}"),
        Some(svm),
        async move {
            let vols = work_sim.read(|s| {
                s.iter(coll::VOLUMES)
                    .filter(|(_, v)| str_at(v, "/svm/uuid") == uuid)
                    .count()
            });
            if vols > 0 {
                return Err(JobFailure::new(
                    13434916,
                    format!(
                        "Cannot delete SVM \"{}\" because it contains {vols} volume(s).",
                        str_at(&rec, "/name")
                    ),
                ));
            }
            work_sim
                .realise(Change::Deleted {
                    collection: coll::SVMS.into(),
                    record: rec.clone(),
                })
                .await?;
            work_sim.write(|s| {
                s.remove(coll::SVMS, &uuid);
                // Everything else the SVM owned (policies, LIFs, services, shares, SAN
                // objects, ...) goes with it.
                let owned: Vec<(String, String)> = s
                    .collection_names()
                    .iter()
                    .flat_map(|c| {
                        s.iter(c)
                            .filter(|(_, v)| str_at(v, "/svm/uuid") == uuid)
                            .map(|(k, _)| (c.clone(), k.clone()))
                            .collect::<Vec<_>>()
                    })
                    .collect();
                for (c, k) in owned {
                    s.remove(&c, &k);
                }
            });
            Ok(())
        },
    );
    job_accepted(&sim, &req, ticket, None, None).await
}
