//! `/api/storage/volumes`: FlexVols, FlexGroups and FlexClones, with aggregate space
//! accounting. POST/PATCH/DELETE run as jobs.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Map, Value};

use super::{
    job_accepted, job_description, jobs_accepted, list, select_for_query, svm_ref, volume_ref,
    ApiError, ApiRequest, ResourceSpec, Sim, Store,
};
use super::{nvme, san, snapshots};
use crate::api::{body_at, opt_bool, opt_enum, opt_size, opt_str, req_str};
use crate::backend::Change;
use crate::error::JobFailure;
use crate::jobs::now_timestamp;
use crate::store::{coll, str_at, u64_at};

/// The volumes resource.
pub(crate) const SPEC: ResourceSpec = ResourceSpec {
    collection: coll::VOLUMES,
    key_param: "uuid",
    identity: &["uuid", "name"],
    svm_scoped: true,
};

/// Job failure code when an aggregate lacks space (unverified against a real system).
pub(crate) const NO_SPACE: i64 = 917537;
/// Job failure code when a volume still has LUNs, namespaces or FlexClones (generic
/// "in use").
pub(crate) const IN_USE: i64 = 8;
/// Default volume size: 20 MB.
pub(crate) const DEFAULT_SIZE: u64 = 20 * 1024 * 1024;

const POSTABLE: &[&str] = &[
    "name",
    "svm",
    "aggregates",
    "size",
    "type",
    "style",
    "state",
    "comment",
    "language",
    "nas",
    "guarantee",
    "efficiency",
    "space.snapshot.reserve_percent",
    "snapshot_policy",
    "tiering",
    "qos",
    "autosize",
    "encryption",
    "snaplock",
    "snapshot_locking_enabled",
    "anti_ransomware",
    "clone.parent_volume",
    "clone.parent_snapshot",
    "clone.parent_svm",
    "clone.is_flexclone",
    "constituents_per_aggregate",
];

const PATCHABLE: &[&str] = &[
    "name",
    "size",
    "state",
    "comment",
    "nas",
    "guarantee",
    "efficiency",
    "space.snapshot.reserve_percent",
    "snapshot_policy",
    "tiering",
    "qos",
    "autosize",
    "encryption",
    "snapshot_locking_enabled",
    "anti_ransomware",
    "clone.split_initiated",
];

const EFFICIENCY: &[&str] = &["inline", "background", "both", "none", "mixed"];

pub(crate) fn routes() -> Router<Sim> {
    Router::new()
        .route(
            "/api/storage/volumes",
            get(list_h)
                .post(create_h)
                .patch(patch_query_h)
                .delete(delete_query_h),
        )
        .route(
            "/api/storage/volumes/{uuid}",
            get(get_h).patch(patch_h).delete(delete_h),
        )
}

async fn list_h(State(sim): State<Sim>, req: ApiRequest) -> Result<Response, ApiError> {
    list(&sim, &req, &SPEC, |_| true)
}

async fn get_h(
    State(sim): State<Sim>,
    Path(uuid): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    super::get_one(&sim, &req, &SPEC, &uuid)
}

fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && n.len() <= 203
}

/// Resolves a volume reference object (`{"name"}` or `{"uuid"}`) in an SVM; 917927 when
/// it does not exist. Returns `(uuid, record)`.
pub(crate) fn resolve_volume<'a>(
    store: &'a Store,
    svm_uuid: Option<&str>,
    r: &Value,
    field: &str,
) -> Result<(String, &'a Value), ApiError> {
    let found = if let Some(u) = r.get("uuid").and_then(Value::as_str) {
        store
            .get(coll::VOLUMES, u)
            .filter(|v| svm_uuid.is_none_or(|s| str_at(v, "/svm/uuid") == s))
            .map(|v| (u.to_string(), v))
    } else if let Some(n) = r.get("name").and_then(Value::as_str) {
        store
            .find_named(coll::VOLUMES, svm_uuid, n, |_| true)
            .map(|(k, v)| (k.clone(), v))
    } else {
        return Err(ApiError::new(
            400,
            "918232",
            format!("Either \"{field}.name\" or \"{field}.uuid\" must be provided."),
        )
        .with_target(field));
    };
    found.ok_or_else(|| {
        ApiError::new(404, "917927", "The specified volume was not found.").with_target(field)
    })
}

/// What a volume takes from each aggregate: FlexClones nothing until split, thin
/// (`guarantee.type=none`) nothing, otherwise `size` spread evenly.
pub(crate) fn aggregate_charges(v: &Value) -> Vec<(String, u64)> {
    let thin = v.pointer("/guarantee/type").and_then(Value::as_str) == Some("none");
    let clone = v.pointer("/clone/is_flexclone") == Some(&Value::Bool(true));
    let aggrs: Vec<String> = v["aggregates"]
        .as_array()
        .map(|a| a.iter().map(|x| str_at(x, "/uuid")).collect())
        .unwrap_or_default();
    if thin || clone || aggrs.is_empty() || v["state"] == "deleted" {
        return aggrs.into_iter().map(|a| (a, 0)).collect();
    }
    let size = u64_at(v, "/size");
    let n = aggrs.len() as u64;
    aggrs
        .into_iter()
        .enumerate()
        .map(|(i, a)| (a, size / n + if i == 0 { size % n } else { 0 }))
        .collect()
}

/// Checks the change in aggregate usage from `before` to `after` (either may be
/// `None`); refuses with [`NO_SPACE`] when an aggregate would go below zero. Returns
/// the per-aggregate deltas.
pub(crate) fn check_aggregate_delta(
    store: &Store,
    before: Option<&Value>,
    after: Option<&Value>,
) -> Result<std::collections::BTreeMap<String, i128>, JobFailure> {
    let mut delta: std::collections::BTreeMap<String, i128> = Default::default();
    for (a, b) in before.map(aggregate_charges).unwrap_or_default() {
        *delta.entry(a).or_default() -= b as i128;
    }
    for (a, b) in after.map(aggregate_charges).unwrap_or_default() {
        *delta.entry(a).or_default() += b as i128;
    }
    for (a, d) in &delta {
        let Some(aggr) = store.get(coll::AGGREGATES, a) else {
            continue;
        };
        let avail = u64_at(aggr, "/space/block_storage/available") as i128;
        if *d > avail {
            let name = after.map(|v| str_at(v, "/name")).unwrap_or_default();
            return Err(JobFailure::new(
                NO_SPACE,
                format!(
                    "Request to provision FlexVol volume \"{name}\" failed because there is \
                     not enough space in aggregate \"{}\". Either create {} bytes of free \
                     space in the aggregate or select a size of at most {} bytes.",
                    str_at(aggr, "/name"),
                    d - avail,
                    avail
                ),
            ));
        }
    }
    Ok(delta)
}

/// Applies the change in aggregate usage from `before` to `after`, refusing like
/// [`check_aggregate_delta`].
pub(crate) fn apply_aggregate_delta(
    store: &mut Store,
    before: Option<&Value>,
    after: Option<&Value>,
) -> Result<(), JobFailure> {
    let delta = check_aggregate_delta(store, before, after)?;
    for (a, d) in delta {
        if let Some(aggr) = store.get_mut(coll::AGGREGATES, &a) {
            let bs = &mut aggr["space"]["block_storage"];
            let used = (bs["used"].as_u64().unwrap_or(0) as i128 + d).max(0) as u64;
            let size = bs["size"].as_u64().unwrap_or(0);
            bs["used"] = json!(used);
            bs["available"] = json!(size.saturating_sub(used));
        }
    }
    Ok(())
}

/// Recomputes `space.available` from size, snapshot reserve and used.
pub(crate) fn refresh_volume_space(v: &mut Value) {
    let size = u64_at(v, "/size");
    let pct = u64_at(v, "/space/snapshot/reserve_percent");
    let used = u64_at(v, "/space/used");
    let reserve = size / 100 * pct;
    v["space"]["size"] = json!(size);
    v["space"]["available"] = json!(size.saturating_sub(reserve).saturating_sub(used));
}

/// Adds `delta` bytes (negative to release) to a volume's `space.used`; refuses with
/// `refusal` when it would exceed what the volume has available.
pub(crate) fn charge_volume_space(
    store: &mut Store,
    volume_uuid: &str,
    delta: i64,
    refusal: ApiError,
) -> Result<(), ApiError> {
    let v = store
        .get_mut(coll::VOLUMES, volume_uuid)
        .ok_or_else(|| ApiError::new(404, "917927", "The specified volume was not found."))?;
    let avail = u64_at(v, "/space/available") as i64;
    if delta > avail {
        return Err(refusal);
    }
    let used = (u64_at(v, "/space/used") as i64 + delta).max(0);
    v["space"]["used"] = json!(used);
    refresh_volume_space(v);
    Ok(())
}

fn validate_common(body: &Map<String, Value>) -> Result<(), ApiError> {
    opt_enum(body, "state", &["online", "offline", "restricted"])?;
    opt_enum(
        body,
        "nas.security_style",
        &["unix", "ntfs", "mixed", "unified"],
    )?;
    opt_enum(body, "guarantee.type", &["volume", "none"])?;
    opt_enum(body, "efficiency.compression", EFFICIENCY)?;
    opt_enum(body, "efficiency.dedupe", EFFICIENCY)?;
    opt_enum(body, "efficiency.cross_volume_dedupe", EFFICIENCY)?;
    opt_enum(body, "efficiency.compaction", &["inline", "none", "mixed"])?;
    opt_enum(
        body,
        "tiering.policy",
        &["all", "auto", "backup", "none", "snapshot_only"],
    )?;
    opt_enum(
        body,
        "anti_ransomware.state",
        &["disabled", "enabled", "dry_run", "paused"],
    )?;
    opt_bool(body, "encryption.enabled")?;
    opt_bool(body, "snapshot_locking_enabled")?;
    if let Some(p) = body_at(body, "space.snapshot.reserve_percent") {
        if p.as_u64().is_none_or(|n| n > 100) {
            return Err(ApiError::invalid_value(
                "space.snapshot.reserve_percent",
                &p.to_string(),
            ));
        }
    }
    if let Some(n) = opt_str(body, "name")? {
        if !valid_name(&n) {
            return Err(ApiError::invalid_value("name", &n));
        }
    }
    Ok(())
}

/// Applies validated optional settings from a POST or PATCH body onto a record.
fn apply_settings(
    store: &Store,
    svm_uuid: &str,
    rec: &mut Value,
    body: &Map<String, Value>,
) -> Result<(), ApiError> {
    for (path, ptr) in [
        ("state", "/state"),
        ("comment", "/comment"),
        ("nas.security_style", "/nas/security_style"),
        ("guarantee.type", "/guarantee/type"),
        ("efficiency.compression", "/efficiency/compression"),
        ("efficiency.dedupe", "/efficiency/dedupe"),
        (
            "efficiency.cross_volume_dedupe",
            "/efficiency/cross_volume_dedupe",
        ),
        ("efficiency.compaction", "/efficiency/compaction"),
        ("tiering.policy", "/tiering/policy"),
        ("anti_ransomware.state", "/anti_ransomware/state"),
        ("encryption.enabled", "/encryption/enabled"),
        ("snapshot_locking_enabled", "/snapshot_locking_enabled"),
        (
            "space.snapshot.reserve_percent",
            "/space/snapshot/reserve_percent",
        ),
        ("nas.unix_permissions", "/nas/unix_permissions"),
        ("nas.uid", "/nas/uid"),
        ("nas.gid", "/nas/gid"),
        ("efficiency.policy", "/efficiency/policy"),
        ("snaplock.type", "/snaplock/type"),
    ] {
        if let Some(v) = body_at(body, path) {
            if let Some(slot) = rec.pointer_mut(ptr) {
                *slot = v.clone();
            } else {
                crate::api::set_at(rec, &ptr[1..].replace('/', "."), v.clone());
            }
        }
    }
    if let Some(enc) = body_at(body, "encryption.enabled").and_then(Value::as_bool) {
        rec["encryption"]["state"] = json!(if enc { "encrypted" } else { "none" });
    }
    for field in ["qos", "autosize"] {
        if let Some(v) = body.get(field) {
            rec[field] = v.clone();
        }
    }
    if let Some(name) = opt_str(body, "snapshot_policy.name")? {
        let (_, p) = store
            .find_named(coll::SNAPSHOT_POLICIES, None, &name, |_| true)
            .ok_or_else(|| {
                ApiError::new(
                    404,
                    "1638413",
                    format!("Snapshot policy \"{name}\" not found."),
                )
                .with_target("snapshot_policy.name")
            })?;
        rec["snapshot_policy"] = json!({"name": name, "uuid": str_at(p, "/uuid")});
    }
    if let Some(name) = opt_str(body, "nas.export_policy.name")? {
        let (_, p) = store
            .find_named(coll::EXPORT_POLICIES, Some(svm_uuid), &name, |_| true)
            .ok_or_else(|| {
                ApiError::new(404, "1703954", "Export policy does not exist")
                    .with_target("nas.export_policy.name")
            })?;
        rec["nas"]["export_policy"] = json!({"name": name, "id": p["id"]});
    }
    if let Some(path) = body_at(body, "nas.path") {
        let path = match path {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => return Err(ApiError::invalid_value("nas.path", &other.to_string())),
        };
        if path.is_empty() {
            if let Some(nas) = rec["nas"].as_object_mut() {
                nas.remove("path");
            }
        } else {
            if !path.starts_with('/') || path.contains("//") {
                return Err(ApiError::new(400, "918252", "\"nas.path\" is invalid.")
                    .with_target("nas.path"));
            }
            let me = str_at(rec, "/uuid");
            if let Some((_, other)) = store.find(coll::VOLUMES, |v| {
                str_at(v, "/svm/uuid") == svm_uuid
                    && v.pointer("/nas/path").and_then(Value::as_str) == Some(path.as_str())
                    && str_at(v, "/uuid") != me
            }) {
                return Err(ApiError::duplicate(format!(
                    "Junction path \"{path}\" is already used by volume \"{}\".",
                    str_at(other, "/name")
                ))
                .with_target("nas.path"));
            }
            rec["nas"]["path"] = json!(path);
        }
    }
    refresh_volume_space(rec);
    Ok(())
}

/// Builds a new volume record from a POST body (also used by seeds). Validates
/// everything except aggregate space.
pub(crate) fn build_volume(
    store: &Store,
    svm: &(String, String),
    body: &Map<String, Value>,
    uuid: &str,
) -> Result<Value, ApiError> {
    validate_common(body)?;
    let name = req_str(body, "name")?;
    let (svm_uuid, svm_name) = svm;
    if store
        .find_named(coll::VOLUMES, Some(svm_uuid), &name, |_| true)
        .is_some()
    {
        return Err(ApiError::duplicate(format!(
            "Duplicate volume name \"{name}\" in SVM \"{svm_name}\"."
        ))
        .with_target("name"));
    }
    let vtype = opt_enum(body, "type", &["rw", "dp", "ls"])?.unwrap_or_else(|| "rw".into());
    let style_req = opt_enum(body, "style", &["flexvol", "flexgroup"])?;
    let default_policy = store
        .find_named(coll::EXPORT_POLICIES, Some(svm_uuid), "default", |_| true)
        .map(|(_, p)| json!({"name": "default", "id": p["id"]}))
        .unwrap_or(json!({"name": "default"}));
    let mut rec = json!({
        "uuid": uuid,
        "name": name,
        "svm": svm_ref(svm_uuid, svm_name),
        "type": vtype,
        "state": "online",
        "create_time": now_timestamp(),
        "language": "c.utf_8",
        "comment": "",
        "space": {"size": 0, "available": 0, "used": 0,
                  "snapshot": {"reserve_percent": 5, "used": 0}},
        "guarantee": {"type": "volume", "honored": true},
        "nas": {"security_style": "unix", "unix_permissions": 755, "uid": 0, "gid": 0,
                "export_policy": default_policy},
        "efficiency": {"compression": "none", "dedupe": "none",
                       "cross_volume_dedupe": "none", "compaction": "none"},
        "snapshot_policy": {"name": "default"},
        "tiering": {"policy": "none"},
        "encryption": {"enabled": false, "state": "none"},
        "anti_ransomware": {"state": "disabled"},
        "snapshot_locking_enabled": false,
        "snaplock": {"type": "non_snaplock"},
        "clone": {"is_flexclone": false},
        "_links": {"self": {"href": format!("/api/storage/volumes/{uuid}")}},
    });
    if let Some((_, p)) = store.find_named(coll::SNAPSHOT_POLICIES, None, "default", |_| true) {
        rec["snapshot_policy"]["uuid"] = p["uuid"].clone();
    }
    let is_clone = opt_bool(body, "clone.is_flexclone")?.unwrap_or(false)
        || body_at(body, "clone.parent_volume").is_some();
    if is_clone {
        let parent_ref = body_at(body, "clone.parent_volume").ok_or_else(|| {
            ApiError::new(
                400,
                "918246",
                "\"volume.clone.parent_volume.name\" or \"volume.clone.parent_volume.uuid\" must be provided.",
            )
        })?;
        let parent_svm = match body_at(body, "clone.parent_svm") {
            Some(r) => store.resolve_svm(r)?.0,
            None => svm_uuid.clone(),
        };
        let (puuid, parent) =
            resolve_volume(store, Some(&parent_svm), parent_ref, "clone.parent_volume")?;
        for field in ["size", "aggregates", "style", "guarantee"] {
            rec[field] = parent[field].clone();
        }
        rec["nas"]["security_style"] = parent["nas"]["security_style"].clone();
        rec["clone"] = json!({
            "is_flexclone": true,
            "parent_volume": volume_ref(&puuid, &str_at(parent, "/name")),
            "parent_svm": parent["svm"].clone(),
            "split_initiated": false,
        });
        if let Some(sref) = body_at(body, "clone.parent_snapshot") {
            let snap = if let Some(u) = sref.get("uuid").and_then(Value::as_str) {
                store
                    .get(coll::SNAPSHOTS, u)
                    .filter(|s| str_at(s, "/volume/uuid") == puuid)
            } else {
                let n = sref.get("name").and_then(Value::as_str).unwrap_or_default();
                store
                    .find_named(coll::SNAPSHOTS, None, n, |s| {
                        str_at(s, "/volume/uuid") == puuid
                    })
                    .map(|(_, s)| s)
            }
            .ok_or_else(|| {
                ApiError::new(404, "918243", "The specified Snapshot copy does not exist.")
                    .with_target("clone.parent_snapshot")
            })?;
            rec["clone"]["parent_snapshot"] = json!({"name": snap["name"], "uuid": snap["uuid"],
                       "_links": snap["_links"]});
        }
        if let Some(size) = opt_size(body, "size")? {
            rec["size"] = json!(size);
        }
    } else {
        let aggrs = match body.get("aggregates") {
            Some(Value::Array(a)) if !a.is_empty() => a.clone(),
            Some(other) if !other.is_array() => {
                return Err(ApiError::invalid_value("aggregates", &other.to_string()))
            }
            _ => return Err(ApiError::new(
                400,
                "787140",
                "One of \"aggregates.uuid\", \"aggregates.name\", or \"style\" must be provided.",
            )),
        };
        let mut resolved = Vec::new();
        for a in &aggrs {
            let found = if let Some(u) = a.get("uuid").and_then(Value::as_str) {
                store.get(coll::AGGREGATES, u)
            } else {
                let n = a.get("name").and_then(Value::as_str).unwrap_or_default();
                store
                    .find_named(coll::AGGREGATES, None, n, |_| true)
                    .map(|(_, v)| v)
            };
            let ag = found.ok_or_else(|| {
                ApiError::new(404, "787141", format!("Aggregate {} does not exist.", a))
                    .with_target("aggregates")
            })?;
            resolved.push(json!({"name": ag["name"], "uuid": ag["uuid"]}));
        }
        let style = match (style_req.as_deref(), resolved.len()) {
            (Some("flexvol"), n) if n > 1 => {
                return Err(ApiError::new(
                    400,
                    "918242",
                    "When creating a flexible volume, exactly one aggregate must be specified via either \"aggregates.name\" or \"aggregates.uuid\".",
                ))
            }
            (Some(s), _) => s.to_string(),
            (None, 1) => "flexvol".to_string(),
            (None, _) => "flexgroup".to_string(),
        };
        rec["aggregates"] = Value::Array(resolved);
        rec["style"] = json!(style);
        rec["size"] = json!(opt_size(body, "size")?.unwrap_or(DEFAULT_SIZE));
    }
    apply_settings(store, svm_uuid, &mut rec, body)?;
    Ok(rec)
}

async fn create_h(State(sim): State<Sim>, req: ApiRequest) -> Result<Response, ApiError> {
    req.check_fields(POSTABLE)?;
    let body = req.body_obj();
    let uuid = uuid::Uuid::new_v4().to_string();
    let (rec, svm) = sim.read(|s| {
        let svm = req.create_svm(s)?;
        let rec = build_volume(s, &svm, &body, &uuid)?;
        Ok::<_, ApiError>((rec, svm))
    })?;
    let name = str_at(&rec, "/name");
    let job_svm = svm_ref(&svm.0, &svm.1);
    let work_sim = sim.clone();
    let work_rec = rec.clone();
    let ticket = sim.spawn_job(job_description(&req), Some(job_svm), async move {
        create_work(&work_sim, &svm, &body, work_rec).await
    });
    let location = format!("/api/storage/volumes/?name={name}");
    let echo = json!({"name": name, "uuid": uuid});
    job_accepted(&sim, &req, ticket, Some(location), Some(vec![echo])).await
}

async fn create_work(
    sim: &Sim,
    svm: &(String, String),
    body: &Map<String, Value>,
    rec: Value,
) -> Result<(), JobFailure> {
    // Re-validate: something may have changed while the job was queued.
    let uuid = str_at(&rec, "/uuid");
    let rec = sim.read(|s| {
        build_volume(s, svm, body, &uuid).map(|mut fresh| {
            fresh["create_time"] = rec["create_time"].clone();
            fresh
        })
    })?;
    sim.read(|s| check_aggregate_delta(s, None, Some(&rec)))?;
    // A FlexClone holds its parent's LUNs and namespaces, those of its parent snapshot
    // when it has one (new identities, unmapped); their reservations must fit.
    let blocks = sim.read(|s| clone_blocks(s, &rec));
    let reserve: u64 = blocks
        .iter()
        .map(|(_, b)| san::reserved(san::is_thick(b), u64_at(b, "/space/size")))
        .sum();
    san::check_room(&rec, reserve, "LUN")?;
    sim.realise(Change::Created {
        collection: coll::VOLUMES.into(),
        record: rec.clone(),
    })
    .await?;
    for (i, (collection, record)) in blocks.iter().enumerate() {
        let made = sim
            .realise(Change::Created {
                collection: (*collection).into(),
                record: record.clone(),
            })
            .await;
        if let Err(e) = made {
            unrealise_clone(sim, &rec, &blocks[..i]).await;
            return Err(e.into());
        }
    }
    let committed = sim.write(|s| {
        if s.find_named(coll::VOLUMES, Some(&svm.0), &str_at(&rec, "/name"), |_| {
            true
        })
        .is_some()
        {
            return Err(JobFailure::new(
                1,
                format!("Duplicate volume name \"{}\".", str_at(&rec, "/name")),
            ));
        }
        apply_aggregate_delta(s, None, Some(&rec))?;
        if let Some(parent) = rec
            .pointer("/clone/parent_volume/uuid")
            .and_then(Value::as_str)
        {
            let files: Vec<String> = s
                .files(parent)
                .map(|f| f.iter().cloned().collect())
                .unwrap_or_default();
            for f in files {
                s.add_file(&uuid, &f);
            }
        }
        s.insert(coll::VOLUMES, &uuid, rec.clone());
        // Checked above: the reservations fit.
        if reserve > 0 {
            san::charge(s, &uuid, reserve as i64, "LUN")?;
        }
        for (collection, record) in &blocks {
            s.insert(collection, &str_at(record, "/uuid"), record.clone());
        }
        Ok(())
    });
    if committed.is_err() {
        unrealise_clone(sim, &rec, &blocks).await;
    }
    committed
}

/// The LUNs and namespaces a new FlexClone `rec` holds (none for other volumes): those
/// its parent snapshot kept, as they were when it was taken (the kernel backend's files
/// are the snapshot's too), or the parent volume's of now for a clone of the volume.
fn clone_blocks(s: &Store, rec: &Value) -> Vec<(&'static str, Value)> {
    let Some(parent) = rec
        .pointer("/clone/parent_volume/uuid")
        .and_then(Value::as_str)
    else {
        return Vec::new();
    };
    let snapshot = rec
        .pointer("/clone/parent_snapshot/uuid")
        .and_then(Value::as_str);
    let source = match snapshot.map(|u| (u, s.snapshot_blocks(u))) {
        Some((_, Some(kept))) => kept.clone(),
        Some((u, None)) => {
            if first_unkept_clone(u) {
                tracing::warn!(
                    snapshot = %str_at(rec, "/clone/parent_snapshot/name"),
                    volume = %str_at(rec, "/clone/parent_volume/name"),
                    "the snapshot predates kept LUN and namespace records (older state \
                     file); its FlexClones get the volume's current ones"
                );
            }
            snapshots::volume_blocks(s, parent)
        }
        None => snapshots::volume_blocks(s, parent),
    };
    let of = |c: &str| source.records.get(c).map_or(&[][..], Vec::as_slice);
    let luns = san::cloned_luns(s, of(san::LUNS), rec)
        .into_iter()
        .map(|r| (san::LUNS, r));
    let namespaces = nvme::cloned_namespaces(of(nvme::NAMESPACES), rec)
        .into_iter()
        .map(|r| (nvme::NAMESPACES, r));
    luns.chain(namespaces).collect()
}

/// Whether this is the first FlexClone of `snapshot_uuid` made without kept records in
/// this process, so the warning about it is logged once.
fn first_unkept_clone(snapshot_uuid: &str) -> bool {
    static SEEN: std::sync::OnceLock<std::sync::Mutex<std::collections::BTreeSet<String>>> =
        std::sync::OnceLock::new();
    SEEN.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(snapshot_uuid.to_string())
}

/// Takes back from the backend a volume create that failed after the volume and the
/// `blocks` of a FlexClone were realised (best effort: the job reports the original
/// failure either way).
async fn unrealise_clone(sim: &Sim, rec: &Value, blocks: &[(&'static str, Value)]) {
    for (collection, record) in blocks.iter().rev() {
        let gone = sim
            .realise(Change::Deleted {
                collection: (*collection).into(),
                record: record.clone(),
            })
            .await;
        if let Err(e) = gone {
            tracing::error!(name = %str_at(record, "/name"), error = %e,
                "taking back a cloned LUN or namespace failed; needs attention");
        }
    }
    let gone = sim
        .realise(Change::Deleted {
            collection: coll::VOLUMES.into(),
            record: rec.clone(),
        })
        .await;
    if let Err(e) = gone {
        tracing::error!(name = %str_at(rec, "/name"), error = %e,
            "taking back a volume failed; needs attention");
    }
}

fn check_patch(req: &ApiRequest) -> Result<Map<String, Value>, ApiError> {
    req.check_fields(PATCHABLE)?;
    let body = req.body_obj();
    validate_common(&body)?;
    opt_size(&body, "size")?;
    opt_bool(&body, "clone.split_initiated")?;
    Ok(body)
}

async fn patch_h(
    State(sim): State<Sim>,
    Path(uuid): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    let body = check_patch(&req)?;
    let ticket = start_patch(&sim, &req, &uuid, body)?;
    job_accepted(&sim, &req, ticket, None, None).await
}

async fn patch_query_h(State(sim): State<Sim>, req: ApiRequest) -> Result<Response, ApiError> {
    let body = check_patch(&req)?;
    let targets = select_for_query(&sim, &req, &SPEC, |_| true)?;
    let mut tickets = Vec::new();
    for (k, _) in targets {
        tickets.push(start_patch(&sim, &req, &k, body.clone())?);
    }
    jobs_accepted(&sim, &req, tickets).await
}

fn start_patch(
    sim: &Sim,
    req: &ApiRequest,
    uuid: &str,
    body: Map<String, Value>,
) -> Result<crate::jobs::JobTicket, ApiError> {
    let (svm, current) = sim.read(|s| {
        let tunnel = req.tunnel_svm(s)?;
        let v = s
            .get(coll::VOLUMES, uuid)
            .filter(|v| {
                tunnel
                    .as_ref()
                    .is_none_or(|(t, _)| str_at(v, "/svm/uuid") == *t)
            })
            .ok_or_else(ApiError::not_found)?;
        // Validate references synchronously so bad input is an HTTP error.
        let mut probe = v.clone();
        apply_settings(s, &str_at(v, "/svm/uuid"), &mut probe, &body)?;
        Ok::<_, ApiError>((v["svm"].clone(), v.clone()))
    })?;
    if body_at(&body, "clone.split_initiated") == Some(&Value::Bool(true))
        && current.pointer("/clone/is_flexclone") != Some(&Value::Bool(true))
    {
        return Err(ApiError::invalid(format!(
            "Volume \"{}\" is not a FlexClone volume.",
            str_at(&current, "/name")
        ))
        .with_target("clone.split_initiated"));
    }
    let description = format!("PATCH /api/storage/volumes/{uuid}");
    let work_sim = sim.clone();
    let uuid = uuid.to_string();
    Ok(sim.spawn_job(description, Some(svm), async move {
        patch_work(&work_sim, &uuid, &body).await
    }))
}

async fn patch_work(sim: &Sim, uuid: &str, body: &Map<String, Value>) -> Result<(), JobFailure> {
    let (before, after) = sim.read(|s| {
        let before = s
            .get(coll::VOLUMES, uuid)
            .cloned()
            .ok_or_else(|| JobFailure::new(4, "entry doesn't exist"))?;
        let svm_uuid = str_at(&before, "/svm/uuid");
        let mut after = before.clone();
        apply_settings(s, &svm_uuid, &mut after, body)?;
        if let Some(name) = opt_str(body, "name")? {
            if name != str_at(&before, "/name")
                && s.find_named(coll::VOLUMES, Some(&svm_uuid), &name, |_| true)
                    .is_some()
            {
                return Err(JobFailure::new(
                    1,
                    format!("Duplicate volume name \"{name}\"."),
                ));
            }
            after["name"] = json!(name);
        }
        if let Some(size) = opt_size(body, "size")? {
            let floor = u64_at(&before, "/space/used");
            if size < floor || size < DEFAULT_SIZE {
                return Err(JobFailure::new(
                    917536,
                    format!(
                        "Unable to set volume attribute \"size\" for volume \"{}\". Reason: \
                         the new size {size} is smaller than the minimum of {} bytes.",
                        str_at(&before, "/name"),
                        floor.max(DEFAULT_SIZE)
                    ),
                ));
            }
            after["size"] = json!(size);
        }
        if body_at(body, "clone.split_initiated") == Some(&Value::Bool(true)) {
            after["clone"] = json!({"is_flexclone": false, "split_initiated": true,
                                    "split_complete_percent": 100});
        }
        refresh_volume_space(&mut after);
        Ok::<_, JobFailure>((before, after))
    })?;
    sim.read(|s| check_aggregate_delta(s, Some(&before), Some(&after)))?;
    sim.realise(Change::Modified {
        collection: coll::VOLUMES.into(),
        before: before.clone(),
        after: after.clone(),
    })
    .await?;
    sim.write(|s| {
        apply_aggregate_delta(s, Some(&before), Some(&after))?;
        // Keep references in other records readable after a rename.
        s.insert(coll::VOLUMES, uuid, after);
        Ok(())
    })
}

async fn delete_h(
    State(sim): State<Sim>,
    Path(uuid): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    let ticket = start_delete(&sim, &req, &uuid)?;
    job_accepted(&sim, &req, ticket, None, None).await
}

async fn delete_query_h(State(sim): State<Sim>, req: ApiRequest) -> Result<Response, ApiError> {
    let targets = select_for_query(&sim, &req, &SPEC, |_| true)?;
    let mut tickets = Vec::new();
    for (k, _) in targets {
        tickets.push(start_delete(&sim, &req, &k)?);
    }
    jobs_accepted(&sim, &req, tickets).await
}

fn start_delete(
    sim: &Sim,
    req: &ApiRequest,
    uuid: &str,
) -> Result<crate::jobs::JobTicket, ApiError> {
    let svm = sim.read(|s| {
        let tunnel = req.tunnel_svm(s)?;
        s.get(coll::VOLUMES, uuid)
            .filter(|v| {
                tunnel
                    .as_ref()
                    .is_none_or(|(t, _)| str_at(v, "/svm/uuid") == *t)
            })
            .map(|v| (v["svm"].clone(), str_at(v, "/name")))
            .ok_or_else(ApiError::not_found)
    })?;
    let (svm, name) = svm;
    super::mav::guard(
        sim,
        "volume delete",
        &[("vserver", &str_at(&svm, "/name")), ("volume", &name)],
    )?;
    let work_sim = sim.clone();
    let uuid = uuid.to_string();
    Ok(sim.spawn_job(
        format!("DELETE /api/storage/volumes/{uuid}"),
        Some(svm),
        async move { delete_work(&work_sim, &uuid).await },
    ))
}

async fn delete_work(sim: &Sim, uuid: &str) -> Result<(), JobFailure> {
    let rec = sim.read(|s| {
        let rec = s.get(coll::VOLUMES, uuid).cloned();
        let Some(rec) = rec else {
            return Ok(None);
        };
        let users = s.volume_users(uuid);
        if !users.is_empty() {
            let clones: Vec<&str> = users
                .iter()
                .filter(|(c, _, _)| c == coll::VOLUMES)
                .map(|(_, _, n)| n.as_str())
                .collect();
            let what = if clones.is_empty() {
                format!(
                    "it contains LUNs or NVMe namespaces ({})",
                    users
                        .iter()
                        .map(|u| u.2.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            } else {
                format!("it has FlexClone volumes ({})", clones.join(", "))
            };
            return Err(JobFailure::new(
                IN_USE,
                format!(
                    "Volume \"{}\" in SVM \"{}\" cannot be deleted because {what}.",
                    str_at(&rec, "/name"),
                    str_at(&rec, "/svm/name")
                ),
            ));
        }
        Ok(Some(rec))
    })?;
    // Deleting what is already gone succeeds.
    let Some(rec) = rec else { return Ok(()) };
    sim.realise(Change::Deleted {
        collection: coll::VOLUMES.into(),
        record: rec.clone(),
    })
    .await?;
    sim.write(|s| {
        apply_aggregate_delta(s, Some(&rec), None)?;
        let snaps: Vec<String> = s
            .iter(coll::SNAPSHOTS)
            .filter(|(_, v)| str_at(v, "/volume/uuid") == uuid)
            .map(|(k, _)| k.clone())
            .collect();
        for k in snaps {
            s.remove(coll::SNAPSHOTS, &k);
        }
        s.remove(coll::VOLUMES, uuid);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clone_of_an_unkept_snapshot_is_reported_once_per_snapshot() {
        let (a, b) = (
            uuid::Uuid::new_v4().to_string(),
            uuid::Uuid::new_v4().to_string(),
        );
        assert!(first_unkept_clone(&a));
        assert!(!first_unkept_clone(&a));
        assert!(first_unkept_clone(&b));
        assert!(!first_unkept_clone(&a));
    }
}
