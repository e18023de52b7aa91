//! NFS export policies and their rules (`/api/protocols/nfs/export-policies`), CIFS
//! shares (`/api/protocols/cifs/shares`). All synchronous (201/200).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Map, Value};

use super::commit::{commit, deleted, modified};
use super::san::ok_empty;
use super::{
    commit_create, created, get_handler, int_key, list_handler, list_records, render_one,
    select_for_query, svm_ref, sync_query_done, ApiError, ApiRequest, ResourceSpec, Sim, Store,
};
use crate::api::{check_fields, opt_bool, opt_enum, opt_str, req_str};
use crate::query::percent_encode;
use crate::store::{coll, str_at};

const POLICIES: ResourceSpec = ResourceSpec {
    collection: coll::EXPORT_POLICIES,
    key_param: "id",
    identity: &["id", "name"],
    svm_scoped: true,
};

const RULES: ResourceSpec = ResourceSpec {
    collection: "export_rules",
    key_param: "index",
    identity: &["index"],
    svm_scoped: false,
};

const SHARES: ResourceSpec = ResourceSpec {
    collection: coll::CIFS_SHARES,
    key_param: "key",
    identity: &["svm.uuid", "svm.name", "name"],
    svm_scoped: true,
};

const RULE_FIELDS: &[&str] = &[
    "clients",
    "ro_rule",
    "rw_rule",
    "superuser",
    "protocols",
    "anonymous_user",
    "allow_suid",
    "allow_device_creation",
    "chown_mode",
    "ntfs_unix_security",
    "allow_nfs_tls_only",
    "index",
];
const FLAVORS: &[&str] = &[
    "any", "none", "never", "krb5", "krb5i", "krb5p", "ntlm", "sys",
];
const PROTOCOLS: &[&str] = &["any", "nfs", "nfs3", "nfs4", "cifs", "flexcache", "nfs41"];

const SHARE_FIELDS: &[&str] = &[
    "svm",
    "name",
    "path",
    "comment",
    "acls",
    "oplocks",
    "change_notify",
    "encryption",
    "continuously_available",
    "home_directory",
    "access_based_enumeration",
    "show_snapshot",
    "unix_symlink",
    "vscan_profile",
    "offline_files",
    "file_umask",
    "dir_umask",
    "namespace_caching",
    "allow_unencrypted_access",
    "no_strict_security",
];

const NFS_SERVICES: ResourceSpec = ResourceSpec {
    collection: coll::NFS_SERVICES,
    key_param: "svm.uuid",
    identity: &["svm.uuid", "svm.name"],
    svm_scoped: true,
};

const CIFS_SERVICES: ResourceSpec = ResourceSpec {
    collection: coll::CIFS_SERVICES,
    key_param: "svm.uuid",
    identity: &["svm.uuid", "svm.name", "name"],
    svm_scoped: true,
};

pub(crate) fn routes() -> Router<Sim> {
    Router::new()
        .route(
            "/api/protocols/nfs/services",
            get(list_handler(&NFS_SERVICES)),
        )
        .route(
            "/api/protocols/nfs/services/{svm}",
            get(get_handler(&NFS_SERVICES)),
        )
        .route(
            "/api/protocols/cifs/services",
            get(list_handler(&CIFS_SERVICES)),
        )
        .route(
            "/api/protocols/cifs/services/{svm}",
            get(get_handler(&CIFS_SERVICES)),
        )
        .route(
            "/api/protocols/nfs/export-policies",
            get(list_handler(&POLICIES))
                .post(policy_create)
                .delete(policy_delete_query),
        )
        .route(
            "/api/protocols/nfs/export-policies/{id}",
            get(policy_get).patch(policy_patch).delete(policy_delete),
        )
        .route(
            "/api/protocols/nfs/export-policies/{id}/rules",
            get(rules_list).post(rule_create),
        )
        .route(
            "/api/protocols/nfs/export-policies/{id}/rules/{index}",
            get(rule_get).patch(rule_patch).delete(rule_delete),
        )
        .route(
            "/api/protocols/cifs/shares",
            get(list_handler(&SHARES))
                .post(share_create)
                .delete(share_delete_query),
        )
        .route(
            "/api/protocols/cifs/shares/{svm}/{name}",
            get(share_get).patch(share_patch).delete(share_delete),
        )
        .route(
            "/api/protocols/cifs/shares/{svm}/{name}/acls",
            get(acls_list).post(acl_create),
        )
        .route(
            "/api/protocols/cifs/shares/{svm}/{name}/acls/{who}/{kind}",
            get(acl_get).patch(acl_patch).delete(acl_delete),
        )
}

fn policy_href(id: u64) -> String {
    format!("/api/protocols/nfs/export-policies/{id}")
}

/// Creates the SVM's `default` export policy (no rules).
pub(crate) fn insert_default_policy(s: &mut Store, svm_uuid: &str, svm_name: &str) {
    let id = s.next_counter("export_policy_id");
    s.insert(
        coll::EXPORT_POLICIES,
        &int_key(id),
        json!({"id": id, "name": "default", "svm": svm_ref(svm_uuid, svm_name), "rules": [],
               "_links": {"self": {"href": policy_href(id)}}}),
    );
}

fn parse_id(id: &str) -> Result<u64, ApiError> {
    id.parse().map_err(|_| {
        ApiError::new(
            404,
            "2",
            format!("\"{id}\" is an invalid value for field \"id\""),
        )
        .with_target("id")
    })
}

fn policy<'a>(s: &'a Store, req: &ApiRequest, id: &str) -> Result<&'a Value, ApiError> {
    let id = parse_id(id)?;
    let t = req.tunnel_svm(s)?;
    s.get(coll::EXPORT_POLICIES, &int_key(id))
        .filter(|v| t.as_ref().is_none_or(|(u, _)| str_at(v, "/svm/uuid") == *u))
        .ok_or_else(|| ApiError::new(404, "1703954", "Export policy does not exist"))
}

/// Validates one rule body and fills ONTAP's defaults.
fn build_rule(body: &Map<String, Value>, index: u64, policy_id: u64) -> Result<Value, ApiError> {
    check_fields(body, RULE_FIELDS)?;
    let clients = match body.get("clients") {
        Some(Value::Array(c)) if !c.is_empty() => c.clone(),
        Some(other) if !other.is_array() => {
            return Err(ApiError::invalid_value("clients", &other.to_string()))
        }
        _ => return Err(ApiError::missing_value("clients")),
    };
    let mut matches = Vec::new();
    for c in &clients {
        match c.get("match").and_then(Value::as_str) {
            Some(m) if !m.is_empty() && !m.contains(' ') => matches.push(json!({"match": m})),
            _ => return Err(ApiError::invalid_value("clients.match", &c.to_string())),
        }
    }
    let list = |field: &str, allowed: &[&str], default: &[&str]| -> Result<Value, ApiError> {
        match body.get(field) {
            None => Ok(json!(default)),
            Some(Value::Array(items)) => {
                for i in items {
                    let s = i.as_str().unwrap_or_default();
                    if !allowed.contains(&s) {
                        return Err(ApiError::invalid_enum(field, s, allowed));
                    }
                }
                Ok(Value::Array(items.clone()))
            }
            Some(other) => Err(ApiError::invalid_value(field, &other.to_string())),
        }
    };
    Ok(json!({
        "index": index,
        "clients": matches,
        "ro_rule": list("ro_rule", FLAVORS, &["any"])?,
        "rw_rule": list("rw_rule", FLAVORS, &["never"])?,
        "superuser": list("superuser", FLAVORS, &["none"])?,
        "protocols": list("protocols", PROTOCOLS, &["any"])?,
        "anonymous_user": opt_str(body, "anonymous_user")?.unwrap_or_else(|| "65534".into()),
        "allow_suid": opt_bool(body, "allow_suid")?.unwrap_or(true),
        "allow_device_creation": opt_bool(body, "allow_device_creation")?.unwrap_or(true),
        "chown_mode": opt_enum(body, "chown_mode", &["restricted", "unrestricted"])?
            .unwrap_or_else(|| "restricted".into()),
        "ntfs_unix_security": opt_enum(body, "ntfs_unix_security", &["fail", "ignore"])?
            .unwrap_or_else(|| "fail".into()),
        "_links": {"self": {"href": format!("{}/rules/{index}", policy_href(policy_id))}},
    }))
}

fn same_clients(a: &Value, b: &Value) -> bool {
    let set = |v: &Value| {
        let mut m: Vec<String> = v["clients"]
            .as_array()
            .map(|c| c.iter().map(|x| str_at(x, "/match")).collect())
            .unwrap_or_default();
        m.sort();
        m
    };
    set(a) == set(b)
}

/// Adds a rule (at `index` when given, shifting later rules), refusing duplicates.
fn add_rule(policy: &mut Value, body: &Map<String, Value>) -> Result<Value, ApiError> {
    let id = policy["id"].as_u64().unwrap_or(0);
    let rules = policy["rules"].as_array().cloned().unwrap_or_default();
    let at = match body.get("index") {
        Some(v) => v
            .as_u64()
            .filter(|i| *i >= 1)
            .ok_or_else(|| ApiError::invalid_value("index", &v.to_string()))?
            .min(rules.len() as u64 + 1),
        None => rules.len() as u64 + 1,
    };
    let rule = build_rule(body, at, id)?;
    if rules.iter().any(|r| same_clients(r, &rule)) {
        return Err(ApiError::new(
            409,
            "1704070",
            "Export policy rule already exists.",
        ));
    }
    let mut rules = rules;
    rules.insert((at - 1) as usize, rule.clone());
    renumber(id, &mut rules);
    policy["rules"] = Value::Array(rules);
    Ok(rule)
}

fn renumber(id: u64, rules: &mut [Value]) {
    for (i, r) in rules.iter_mut().enumerate() {
        let index = i as u64 + 1;
        r["index"] = json!(index);
        r["_links"] = json!({"self": {"href": format!("{}/rules/{index}", policy_href(id))}});
    }
}

async fn policy_create(State(sim): State<Sim>, req: ApiRequest) -> Result<Response, ApiError> {
    req.check_fields(&["name", "svm", "rules"])?;
    let body = req.body_obj();
    let name = req_str(&body, "name")?;
    if name.contains(' ') || name.is_empty() {
        return Err(ApiError::new(
            400,
            "1703952",
            "Invalid ruleset name provided. No spaces allowed in a ruleset name",
        )
        .with_target("name"));
    }
    let (id, rec) = sim.write(|s| {
        let svm = req.create_svm(s)?;
        if s.find_named(coll::EXPORT_POLICIES, Some(&svm.0), &name, |_| true)
            .is_some()
        {
            return Err(ApiError::duplicate(format!(
                "Export policy \"{name}\" already exists in SVM \"{}\".",
                svm.1
            ))
            .with_target("name"));
        }
        let id = s.next_counter("export_policy_id");
        let mut rec = json!({"id": id, "name": name, "svm": svm_ref(&svm.0, &svm.1),
                             "rules": [], "_links": {"self": {"href": policy_href(id)}}});
        if let Some(rules) = body.get("rules") {
            let rules = rules
                .as_array()
                .ok_or_else(|| ApiError::invalid_value("rules", &rules.to_string()))?;
            for r in rules {
                let obj = r.as_object().cloned().unwrap_or_default();
                add_rule(&mut rec, &obj)?;
            }
        }
        Ok::<_, ApiError>((id, rec))
    })?;
    let svm_uuid = str_at(&rec, "/svm/uuid");
    let check_name = name.clone();
    commit_create(
        &sim,
        coll::EXPORT_POLICIES,
        &int_key(id),
        rec.clone(),
        move |s| match s.find_named(coll::EXPORT_POLICIES, Some(&svm_uuid), &check_name, |_| {
            true
        }) {
            Some(_) => Err(ApiError::duplicate(format!(
                "Export policy \"{check_name}\" already exists."
            ))),
            None => Ok(()),
        },
    )
    .await?;
    Ok(created(&req, &rec, &policy_href(id)))
}

async fn policy_get(
    State(sim): State<Sim>,
    Path(id): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    sim.read(|s| Ok(render_one(&req, &POLICIES, policy(s, &req, &id)?)))
}

async fn update_policy(sim: &Sim, before: Value, after: Value) -> Result<(), ApiError> {
    let change = modified(coll::EXPORT_POLICIES, before.clone(), &after);
    let key = int_key(after["id"].as_u64().unwrap_or(0));
    commit(sim, [change], |s| {
        // Keep volume references in step with a rename.
        if before["name"] != after["name"] {
            let svm = str_at(&after, "/svm/uuid");
            let vols: Vec<String> = s
                .iter(coll::VOLUMES)
                .filter(|(_, v)| {
                    str_at(v, "/svm/uuid") == svm
                        && v.pointer("/nas/export_policy/id") == Some(&after["id"])
                })
                .map(|(k, _)| k.clone())
                .collect();
            for k in vols {
                if let Some(v) = s.get_mut(coll::VOLUMES, &k) {
                    v["nas"]["export_policy"]["name"] = after["name"].clone();
                }
            }
        }
        s.insert(coll::EXPORT_POLICIES, &key, after);
        Ok(())
    })
    .await
}

async fn policy_patch(
    State(sim): State<Sim>,
    Path(id): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    req.check_fields(&["name", "rules"])?;
    let body = req.body_obj();
    let (before, after) = sim.read(|s| {
        let before = policy(s, &req, &id)?.clone();
        let mut after = before.clone();
        if let Some(n) = opt_str(&body, "name")? {
            if n != str_at(&before, "/name")
                && s.find_named(
                    coll::EXPORT_POLICIES,
                    Some(&str_at(&before, "/svm/uuid")),
                    &n,
                    |_| true,
                )
                .is_some()
            {
                return Err(ApiError::duplicate(format!(
                    "Export policy \"{n}\" already exists."
                )));
            }
            after["name"] = json!(n);
        }
        if let Some(rules) = body.get("rules") {
            let rules = rules
                .as_array()
                .ok_or_else(|| ApiError::invalid_value("rules", &rules.to_string()))?;
            after["rules"] = json!([]);
            for r in rules {
                let mut obj = r.as_object().cloned().unwrap_or_default();
                obj.remove("index");
                add_rule(&mut after, &obj)?;
            }
        }
        Ok((before, after))
    })?;
    update_policy(&sim, before, after).await?;
    Ok(ok_empty())
}

async fn remove_policy(sim: &Sim, rec: Value) -> Result<(), ApiError> {
    if rec["name"] == "default" {
        return Err(ApiError::new(
            400,
            "1703947",
            "Cannot delete default ruleset.  This ruleset will be deleted when the owning Vserver is deleted",
        ));
    }
    let in_use = sim.read(|s| {
        s.find(coll::VOLUMES, |v| {
            str_at(v, "/svm/uuid") == str_at(&rec, "/svm/uuid")
                && v.pointer("/nas/export_policy/id") == Some(&rec["id"])
        })
        .map(|(_, v)| str_at(v, "/name"))
    });
    if let Some(v) = in_use {
        return Err(ApiError::new(
            409,
            "1703945",
            format!("Ruleset is in use by a volume.  It cannot be deleted until all volumes that refer to it are first deleted (volume \"{v}\")."),
        ));
    }
    let key = int_key(rec["id"].as_u64().unwrap_or(0));
    commit(sim, [deleted(coll::EXPORT_POLICIES, &rec)], |s| {
        s.remove(coll::EXPORT_POLICIES, &key);
        Ok(())
    })
    .await
}

async fn policy_delete(
    State(sim): State<Sim>,
    Path(id): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    let rec = sim.read(|s| policy(s, &req, &id).cloned())?;
    remove_policy(&sim, rec).await?;
    Ok(ok_empty())
}

async fn policy_delete_query(
    State(sim): State<Sim>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    let targets = select_for_query(&sim, &req, &POLICIES, |_| true)?;
    for (_, rec) in &targets {
        remove_policy(&sim, rec.clone()).await?;
    }
    Ok(sync_query_done(&req, targets.len()))
}

fn rules_map(p: &Value) -> BTreeMap<String, Value> {
    p["rules"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .map(|r| {
                    let mut r = r.clone();
                    r["policy"] = json!({"id": p["id"], "name": p["name"]});
                    r["svm"] = json!({"name": p["svm"]["name"], "uuid": p["svm"]["uuid"]});
                    (int_key(r["index"].as_u64().unwrap_or(0)), r)
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn rules_list(
    State(sim): State<Sim>,
    Path(id): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    sim.read(|s| {
        let p = policy(s, &req, &id)?;
        list_records(&req, &RULES, &rules_map(p), |_| true)
    })
}

fn rule_key(index: &str) -> Result<String, ApiError> {
    index
        .parse::<u64>()
        .map(int_key)
        .map_err(|_| ApiError::invalid_value("index", index))
}

async fn rule_get(
    State(sim): State<Sim>,
    Path((id, index)): Path<(String, String)>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    sim.read(|s| {
        let p = policy(s, &req, &id)?;
        let rules = rules_map(p);
        let r = rules
            .get(&rule_key(&index)?)
            .ok_or_else(ApiError::not_found)?;
        Ok(render_one(&req, &RULES, r))
    })
}

async fn rule_create(
    State(sim): State<Sim>,
    Path(id): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    let body = req.body_obj();
    let (before, after, rule) = sim.read(|s| {
        let before = policy(s, &req, &id)?.clone();
        let mut after = before.clone();
        let rule = add_rule(&mut after, &body)?;
        Ok::<_, ApiError>((before, after, rule))
    })?;
    let href = format!(
        "{}/rules/{}",
        policy_href(after["id"].as_u64().unwrap_or(0)),
        rule["index"]
    );
    update_policy(&sim, before, after).await?;
    Ok(created(&req, &rule, &href))
}

async fn rule_patch(
    State(sim): State<Sim>,
    Path((id, index)): Path<(String, String)>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    let body = req.body_obj();
    let (before, after) = sim.read(|s| {
        let before = policy(s, &req, &id)?.clone();
        let key = rule_key(&index)?;
        let pos = before["rules"]
            .as_array()
            .and_then(|rs| {
                rs.iter()
                    .position(|r| int_key(r["index"].as_u64().unwrap_or(0)) == key)
            })
            .ok_or_else(ApiError::not_found)?;
        let mut merged = before["rules"][pos]
            .as_object()
            .cloned()
            .unwrap_or_default();
        merged.remove("_links");
        for (k, v) in &body {
            merged.insert(k.clone(), v.clone());
        }
        check_fields(&body, RULE_FIELDS)?;
        let new_index = merged
            .remove("index")
            .and_then(|v| v.as_u64())
            .unwrap_or(pos as u64 + 1);
        let pid = before["id"].as_u64().unwrap_or(0);
        let rule = build_rule(&merged, new_index, pid)?;
        let mut after = before.clone();
        let mut rules = after["rules"].as_array().cloned().unwrap_or_default();
        rules.remove(pos);
        let at = ((new_index.max(1) - 1) as usize).min(rules.len());
        rules.insert(at, rule);
        renumber(pid, &mut rules);
        after["rules"] = Value::Array(rules);
        Ok::<_, ApiError>((before, after))
    })?;
    update_policy(&sim, before, after).await?;
    Ok(ok_empty())
}

async fn rule_delete(
    State(sim): State<Sim>,
    Path((id, index)): Path<(String, String)>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    let (before, after) = sim.read(|s| {
        let before = policy(s, &req, &id)?.clone();
        let key = rule_key(&index)?;
        let mut rules = before["rules"].as_array().cloned().unwrap_or_default();
        let pos = rules
            .iter()
            .position(|r| int_key(r["index"].as_u64().unwrap_or(0)) == key)
            .ok_or_else(ApiError::not_found)?;
        rules.remove(pos);
        renumber(before["id"].as_u64().unwrap_or(0), &mut rules);
        let mut after = before.clone();
        after["rules"] = Value::Array(rules);
        Ok::<_, ApiError>((before, after))
    })?;
    update_policy(&sim, before, after).await?;
    Ok(ok_empty())
}

fn share_key(svm_uuid: &str, name: &str) -> String {
    format!("{svm_uuid}/{}", name.to_lowercase())
}

fn validate_share(body: &Map<String, Value>, rec: &mut Value) -> Result<(), ApiError> {
    for f in [
        "oplocks",
        "change_notify",
        "encryption",
        "continuously_available",
        "home_directory",
        "access_based_enumeration",
        "show_snapshot",
        "namespace_caching",
        "allow_unencrypted_access",
        "no_strict_security",
        "offline_files",
    ] {
        if f == "offline_files" {
            if let Some(v) = opt_enum(body, f, &["none", "manual", "documents", "programs"])? {
                rec[f] = json!(v);
            }
        } else if let Some(b) = opt_bool(body, f)? {
            rec[f] = json!(b);
        }
    }
    if let Some(v) = opt_enum(body, "unix_symlink", &["local", "widelink", "disable"])? {
        rec["unix_symlink"] = json!(v);
    }
    for f in ["comment", "vscan_profile", "file_umask", "dir_umask"] {
        if let Some(v) = body.get(f) {
            rec[f] = v.clone();
        }
    }
    if let Some(acls) = body.get("acls") {
        let acls = acls
            .as_array()
            .ok_or_else(|| ApiError::invalid_value("acls", &acls.to_string()))?;
        let mut out = Vec::new();
        for a in acls {
            let obj = a.as_object().cloned().unwrap_or_default();
            check_fields(&obj, &["permission", "type", "user_or_group"]).map_err(|e| {
                ApiError::unexpected_argument(&format!("acls.{}", e.target.unwrap_or_default()))
            })?;
            let perm = opt_enum(
                &obj,
                "permission",
                &["no_access", "read", "change", "full_control"],
            )?
            .ok_or_else(|| ApiError::missing_value("acls.permission"))?;
            let typ = opt_enum(&obj, "type", &["windows", "unix_user", "unix_group"])?
                .unwrap_or_else(|| "windows".into());
            let who = req_str(&obj, "user_or_group")
                .map_err(|_| ApiError::missing_value("acls.user_or_group"))?;
            out.push(json!({"permission": perm, "type": typ, "user_or_group": who}));
        }
        rec["acls"] = Value::Array(out);
    }
    Ok(())
}

fn path_exists(s: &Store, svm_uuid: &str, path: &str) -> bool {
    path == "/"
        || s.find(coll::VOLUMES, |v| {
            str_at(v, "/svm/uuid") == svm_uuid
                && v.pointer("/nas/path")
                    .and_then(Value::as_str)
                    .is_some_and(|j| {
                        path == j || path.starts_with(&format!("{}/", j.trim_end_matches('/')))
                    })
        })
        .is_some()
}

async fn share_create(State(sim): State<Sim>, req: ApiRequest) -> Result<Response, ApiError> {
    req.check_fields(SHARE_FIELDS)?;
    let body = req.body_obj();
    let name = req_str(&body, "name")?;
    let path = req_str(&body, "path")?;
    if name.len() > 80 {
        return Err(ApiError::new(
            400,
            "655577",
            "The CIFS share name cannot be more than 80 characters long",
        )
        .with_target("name"));
    }
    let (key, rec) = sim.read(|s| {
        let svm = req.create_svm(s)?;
        let cifs_on = s
            .get(coll::SVMS, &svm.0)
            .is_some_and(|v| v.pointer("/cifs/enabled") == Some(&json!(true)));
        if !cifs_on {
            return Err(ApiError::new(
                400,
                "655399",
                "Failed to create CIFS share. The CIFS server does not exist for specified SVM",
            ));
        }
        let key = share_key(&svm.0, &name);
        if s.get(coll::CIFS_SHARES, &key).is_some() {
            return Err(ApiError::duplicate(format!("Share \"{name}\" already exists in SVM \"{}\".", svm.1))
                .with_target("name"));
        }
        if !path_exists(s, &svm.0, &path) {
            return Err(ApiError::new(
                400,
                "655551",
                "CIFS Share Creation failed because the specified path does not exist",
            )
            .with_target("path"));
        }
        let mut rec = json!({
            "svm": svm_ref(&svm.0, &svm.1), "name": name, "path": path,
            "acls": [{"permission": "full_control", "type": "windows", "user_or_group": "Everyone"}],
            "oplocks": true, "change_notify": true, "encryption": false,
            "continuously_available": false, "home_directory": false,
            "access_based_enumeration": false, "show_snapshot": false,
            "unix_symlink": "local", "offline_files": "manual",
            "_links": {"self": {"href": format!("/api/protocols/cifs/shares/{}/{}", svm.0, percent_encode(&name))}},
        });
        validate_share(&body, &mut rec)?;
        Ok((key, rec))
    })?;
    let check_key = key.clone();
    commit_create(&sim, coll::CIFS_SHARES, &key, rec.clone(), move |s| match s
        .get(coll::CIFS_SHARES, &check_key)
    {
        Some(_) => Err(ApiError::duplicate("Share already exists.")),
        None => Ok(()),
    })
    .await?;
    let href = str_at(&rec, "/_links/self/href");
    Ok(created(&req, &rec, &href))
}

fn share<'a>(s: &'a Store, req: &ApiRequest, svm: &str, name: &str) -> Result<&'a Value, ApiError> {
    let t = req.tunnel_svm(s)?;
    if t.as_ref().is_some_and(|(u, _)| u != svm) {
        return Err(ApiError::not_found());
    }
    s.get(coll::CIFS_SHARES, &share_key(svm, name))
        .ok_or_else(ApiError::not_found)
}

async fn share_get(
    State(sim): State<Sim>,
    Path((svm, name)): Path<(String, String)>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    sim.read(|s| Ok(render_one(&req, &SHARES, share(s, &req, &svm, &name)?)))
}

async fn share_patch(
    State(sim): State<Sim>,
    Path((svm, name)): Path<(String, String)>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    req.check_fields(&SHARE_FIELDS[2..])?;
    let body = req.body_obj();
    let (before, after) = sim.read(|s| {
        let before = share(s, &req, &svm, &name)?.clone();
        let mut after = before.clone();
        if let Some(p) = opt_str(&body, "path")? {
            if !path_exists(s, &svm, &p) {
                return Err(ApiError::new(
                    400,
                    "655551",
                    "CIFS Share modification failed because the specified path does not exist",
                )
                .with_target("path"));
            }
            after["path"] = json!(p);
        }
        validate_share(&body, &mut after)?;
        Ok::<_, ApiError>((before, after))
    })?;
    store_share(&sim, (&svm, &name), before, &after).await?;
    Ok(ok_empty())
}

/// Realises the change of share `svm`/`name` from `before` to `after`, then stores `after`.
async fn store_share(
    sim: &Sim,
    (svm, name): (&str, &str),
    before: Value,
    after: &Value,
) -> Result<(), ApiError> {
    let key = share_key(svm, name);
    commit(sim, [modified(coll::CIFS_SHARES, before, after)], |s| {
        s.insert(coll::CIFS_SHARES, &key, after.clone());
        Ok(())
    })
    .await
}

async fn remove_share(sim: &Sim, key: &str) -> Result<(), ApiError> {
    let Some(rec) = sim.read(|s| s.get(coll::CIFS_SHARES, key).cloned()) else {
        return Err(ApiError::not_found());
    };
    commit(sim, [deleted(coll::CIFS_SHARES, &rec)], |s| {
        s.remove(coll::CIFS_SHARES, key);
        Ok(())
    })
    .await
}

async fn share_delete(
    State(sim): State<Sim>,
    Path((svm, name)): Path<(String, String)>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    sim.read(|s| share(s, &req, &svm, &name).map(|_| ()))?;
    remove_share(&sim, &share_key(&svm, &name)).await?;
    Ok(ok_empty())
}

async fn share_delete_query(State(sim): State<Sim>, req: ApiRequest) -> Result<Response, ApiError> {
    let targets = select_for_query(&sim, &req, &SHARES, |_| true)?;
    for (k, _) in &targets {
        remove_share(&sim, k).await?;
    }
    Ok(sync_query_done(&req, targets.len()))
}

const ACLS: ResourceSpec = ResourceSpec {
    collection: "cifs_share_acls",
    key_param: "key",
    identity: &["user_or_group", "type"],
    svm_scoped: false,
};

const PERMISSIONS: &[&str] = &["no_access", "read", "change", "full_control"];
const ACL_TYPES: &[&str] = &["windows", "unix_user", "unix_group"];

fn acl_records(share: &Value) -> BTreeMap<String, Value> {
    let base = str_at(share, "/_links/self/href");
    share["acls"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|acl| {
                    let who = str_at(acl, "/user_or_group");
                    let kind = str_at(acl, "/type");
                    let mut r = acl.clone();
                    r["share"] = json!(share["name"]);
                    r["svm"] = json!({"name": share["svm"]["name"], "uuid": share["svm"]["uuid"]});
                    r["_links"] = json!({"self": {"href": format!(
                        "{base}/acls/{}/{kind}",
                        crate::query::percent_encode(&who)
                    )}});
                    (format!("{}/{kind}", who.to_lowercase()), r)
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn acls_list(
    State(sim): State<Sim>,
    Path((svm, name)): Path<(String, String)>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    sim.read(|s| {
        let sh = share(s, &req, &svm, &name)?;
        list_records(&req, &ACLS, &acl_records(sh), |_| true)
    })
}

fn no_acl() -> ApiError {
    ApiError::new(
        404,
        "655516",
        "The share ACL does not exist for given user and share",
    )
}

async fn acl_get(
    State(sim): State<Sim>,
    Path((svm, name, who, kind)): Path<(String, String, String, String)>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    sim.read(|s| {
        let sh = share(s, &req, &svm, &name)?;
        let recs = acl_records(sh);
        let r = recs
            .get(&format!("{}/{kind}", who.to_lowercase()))
            .ok_or_else(no_acl)?;
        Ok(render_one(&req, &ACLS, r))
    })
}

/// Replaces a share's ACL list through `edit`, then realises and stores the share.
async fn edit_acls(
    sim: &Sim,
    req: &ApiRequest,
    svm: &str,
    name: &str,
    edit: impl FnOnce(&mut Vec<Value>) -> Result<(), ApiError>,
) -> Result<Value, ApiError> {
    let (before, after) = sim.read(|s| {
        let before = share(s, req, svm, name)?.clone();
        let mut acls = before["acls"].as_array().cloned().unwrap_or_default();
        edit(&mut acls)?;
        let mut after = before.clone();
        after["acls"] = Value::Array(acls);
        Ok::<_, ApiError>((before, after))
    })?;
    store_share(sim, (svm, name), before, &after).await?;
    Ok(after)
}

fn same_acl(a: &Value, who: &str, kind: &str) -> bool {
    str_at(a, "/user_or_group").eq_ignore_ascii_case(who) && str_at(a, "/type") == kind
}

async fn acl_create(
    State(sim): State<Sim>,
    Path((svm, name)): Path<(String, String)>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    req.check_fields(&["user_or_group", "type", "permission"])?;
    let body = req.body_obj();
    let who = req_str(&body, "user_or_group")?;
    let kind = opt_enum(&body, "type", ACL_TYPES)?.unwrap_or_else(|| "windows".into());
    let perm = opt_enum(&body, "permission", PERMISSIONS)?
        .ok_or_else(|| ApiError::missing_value("permission"))?;
    let acl = json!({"user_or_group": who, "type": kind, "permission": perm});
    let new = acl.clone();
    let after = edit_acls(&sim, &req, &svm, &name, |acls| {
        if acls.iter().any(|a| same_acl(a, &who, &kind)) {
            return Err(ApiError::duplicate(format!(
                "The ACL for \"{who}\" already exists on share \"{name}\"."
            )));
        }
        acls.push(new);
        Ok(())
    })
    .await?;
    let recs = acl_records(&after);
    let rec = recs
        .get(&format!(
            "{}/{}",
            str_at(&acl, "/user_or_group").to_lowercase(),
            str_at(&acl, "/type")
        ))
        .cloned()
        .unwrap_or(acl);
    let href = str_at(&rec, "/_links/self/href");
    Ok(created(&req, &rec, &href))
}

async fn acl_patch(
    State(sim): State<Sim>,
    Path((svm, name, who, kind)): Path<(String, String, String, String)>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    req.check_fields(&["permission"])?;
    let perm = opt_enum(&req.body_obj(), "permission", PERMISSIONS)?
        .ok_or_else(|| ApiError::missing_value("permission"))?;
    edit_acls(&sim, &req, &svm, &name, |acls| {
        let a = acls
            .iter_mut()
            .find(|a| same_acl(a, &who, &kind))
            .ok_or_else(no_acl)?;
        a["permission"] = json!(perm);
        Ok(())
    })
    .await?;
    Ok(ok_empty())
}

async fn acl_delete(
    State(sim): State<Sim>,
    Path((svm, name, who, kind)): Path<(String, String, String, String)>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    edit_acls(&sim, &req, &svm, &name, |acls| {
        let before = acls.len();
        acls.retain(|a| !same_acl(a, &who, &kind));
        if acls.len() == before {
            return Err(no_acl());
        }
        Ok(())
    })
    .await?;
    Ok(ok_empty())
}
