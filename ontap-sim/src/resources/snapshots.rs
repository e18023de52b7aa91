//! `/api/storage/volumes/{volume.uuid}/snapshots`: snapshots, with expiry and
//! tamper-proof locking. POST and DELETE run as jobs; PATCH is synchronous. `*` as the
//! volume key lists, patches or deletes across volumes, and POST takes ONTAP's bulk body
//! `{"records":[{name, volume, svm?, …}, …]}` (one job for all of them).
//!
//! Each snapshot keeps its volume's LUN and namespace records as they were when it was
//! taken ([`crate::store::SnapshotBlocks`], no resource), for FlexClones made from it.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use http::StatusCode;
use serde_json::{json, Map, Value};

use super::volumes::resolve_volume;
use super::{
    job_accepted, jobs_accepted, json_response, select_for_query, volume_ref, ApiError, ApiRequest,
    ResourceSpec, Sim, Store,
};
use super::{nvme, san};
use crate::api::{check_fields, opt_str, req_str};
use crate::backend::Change;
use crate::error::JobFailure;
use crate::jobs::{now_timestamp, JobTicket};
use crate::store::{coll, str_at, SnapshotBlocks};

pub(crate) const SPEC: ResourceSpec = ResourceSpec {
    collection: coll::SNAPSHOTS,
    key_param: "uuid",
    identity: &["uuid", "name"],
    svm_scoped: true,
};

/// Job code when a snapshot has not expired or is locked (seen in Trident).
pub(crate) const LOCKED: i64 = 1638555;
/// Job code when a snapshot backs a FlexClone (unverified against a real system).
pub(crate) const BUSY: i64 = 1638600;

const POSTABLE: &[&str] = &[
    "name",
    "comment",
    "expiry_time",
    "snapmirror_label",
    "snaplock_expiry_time",
    "snaplock.expiry_time",
    "svm",
    "volume",
];
const PATCHABLE: &[&str] = &[
    "name",
    "comment",
    "expiry_time",
    "snapmirror_label",
    "snaplock_expiry_time",
    "snaplock.expiry_time",
];

pub(crate) fn routes() -> Router<Sim> {
    Router::new()
        .route(
            "/api/storage/volumes/{volume}/snapshots",
            get(list_h)
                .post(create_h)
                .patch(patch_query_h)
                .delete(delete_query_h),
        )
        .route(
            "/api/storage/volumes/{volume}/snapshots/{uuid}",
            get(get_h).patch(patch_h).delete(delete_h),
        )
}

fn parse_time(field: &str, s: &str) -> Result<time::OffsetDateTime, ApiError> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|_| ApiError::invalid_value(field, s))
}

fn in_future(s: &str) -> bool {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|t| t > time::OffsetDateTime::now_utc())
        .unwrap_or(false)
}

fn volume<'a>(s: &'a Store, req: &ApiRequest, uuid: &str) -> Result<&'a Value, ApiError> {
    let tunnel = req.tunnel_svm(s)?;
    s.get(coll::VOLUMES, uuid)
        .filter(|v| {
            tunnel
                .as_ref()
                .is_none_or(|(t, _)| str_at(v, "/svm/uuid") == *t)
        })
        .ok_or_else(|| ApiError::new(404, "917927", "The specified volume was not found."))
}

async fn list_h(
    State(sim): State<Sim>,
    Path(vol): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    let recs: std::collections::BTreeMap<String, Value> = sim.read(|s| {
        if vol != "*" {
            volume(s, &req, &vol)?;
        }
        let tunnel = req.tunnel_svm(s)?;
        Ok::<_, ApiError>(
            s.iter(coll::SNAPSHOTS)
                .filter(|(_, v)| in_scope(v, &vol) && super::tunnel_ok(v, &tunnel, SPEC.svm_scoped))
                .map(|(k, v)| (k.clone(), with_lock_state(v.clone())))
                .collect(),
        )
    })?;
    super::list_records(&req, &SPEC, &recs, |_| true)
}

/// Whether a snapshot belongs to the path's volume (`*`: any volume).
fn in_scope(rec: &Value, vol: &str) -> bool {
    vol == "*" || str_at(rec, "/volume/uuid") == vol
}

/// The record as GET shows it: whether a SnapLock expiry has passed is decided when read,
/// not when the lock was set (`snaplock.expired`, `snaplock.time_until_expiry`).
fn with_lock_state(mut rec: Value) -> Value {
    let Some(t) = rec
        .pointer("/snaplock/expiry_time")
        .and_then(Value::as_str)
        .and_then(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        })
    else {
        return rec;
    };
    let left = (t - time::OffsetDateTime::now_utc()).whole_seconds();
    rec["snaplock"]["expired"] = json!(left <= 0);
    rec["snaplock"]["time_until_expiry"] =
        json!(super::snapmirror::rules::iso_duration(left.max(0) as u64));
    rec
}

async fn get_h(
    State(sim): State<Sim>,
    Path((vol, uuid)): Path<(String, String)>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    sim.read(|s| {
        volume(s, &req, &vol)?;
        let rec = s
            .get(coll::SNAPSHOTS, &uuid)
            .filter(|v| str_at(v, "/volume/uuid") == vol)
            .ok_or_else(ApiError::not_found)?;
        Ok(super::render_one(
            &req,
            &SPEC,
            &with_lock_state(rec.clone()),
        ))
    })
}

/// Applies lock/expiry fields from a body, checking locking is enabled on the volume and
/// that a lock is never shortened.
fn apply_times(rec: &mut Value, vol: &Value, body: &Map<String, Value>) -> Result<(), ApiError> {
    if let Some(t) = opt_str(body, "expiry_time")? {
        parse_time("expiry_time", &t)?;
        rec["expiry_time"] = json!(t);
    }
    let lock = match (
        opt_str(body, "snaplock.expiry_time")?,
        opt_str(body, "snaplock_expiry_time")?,
    ) {
        (Some(t), _) => Some(("snaplock.expiry_time", t)),
        (None, Some(t)) => Some(("snaplock_expiry_time", t)),
        (None, None) => None,
    };
    if let Some((field, t)) = lock {
        if vol["snapshot_locking_enabled"] != json!(true) {
            return Err(ApiError::new(
                400,
                "1638619",
                format!(
                    "Cannot set \"{field}\": snapshot locking is not enabled on volume \"{}\".",
                    str_at(vol, "/name")
                ),
            )
            .with_target(field));
        }
        let new = parse_time(field, &t)?;
        if let Some(old) = rec.pointer("/snaplock/expiry_time").and_then(Value::as_str) {
            if let Ok(old_t) = parse_time(field, old) {
                if new < old_t && old_t > time::OffsetDateTime::now_utc() {
                    return Err(ApiError::new(
                        400,
                        "1638620",
                        "The SnapLock expiry time of a locked snapshot cannot be shortened.",
                    )
                    .with_target(field));
                }
            }
        }
        rec["snaplock_expiry_time"] = json!(t);
        rec["snaplock"] = json!({"expiry_time": t, "expired": !in_future(&t)});
    }
    Ok(())
}

/// The snapshot record a create body asks for, validated against the store. `path_vol` is
/// the volume UUID from the path, or `*`: then the body's `volume` (with `svm` or the
/// tunnel header narrowing a name) picks the volume, as in ONTAP's bulk create.
fn prepare(
    s: &Store,
    req: &ApiRequest,
    path_vol: &str,
    body: &Map<String, Value>,
    uuid: &str,
) -> Result<Value, ApiError> {
    check_fields(body, POSTABLE)?;
    let name = req_str(body, "name")?;
    let (vol, v) = if path_vol == "*" {
        let svm = match body.get("svm") {
            Some(r) => Some(s.resolve_svm(r)?.0),
            None => req.tunnel_svm(s)?.map(|(u, _)| u),
        };
        let r = body
            .get("volume")
            .ok_or_else(|| ApiError::missing_value("volume.uuid"))?;
        resolve_volume(s, svm.as_deref(), r, "volume")?
    } else {
        (path_vol.to_string(), volume(s, req, path_vol)?)
    };
    if find_in_volume(s, &vol, &name).is_some() {
        return Err(ApiError::duplicate(format!(
            "Snapshot copy \"{name}\" already exists on volume \"{}\".",
            str_at(v, "/name")
        ))
        .with_target("name"));
    }
    let mut rec = json!({
        "uuid": uuid, "name": name,
        "volume": volume_ref(&vol, &str_at(v, "/name")),
        "svm": v["svm"].clone(),
        "create_time": now_timestamp(),
        "state": "valid", "size": 0,
        "_links": {"self": {"href": format!("/api/storage/volumes/{vol}/snapshots/{uuid}")}},
    });
    for f in ["comment", "snapmirror_label"] {
        if let Some(x) = opt_str(body, f)? {
            rec[f] = json!(x);
        }
    }
    apply_times(&mut rec, v, body)?;
    Ok(rec)
}

/// The job's work for one prepared record: ask the backend, then insert after
/// re-checking the volume and the name.
async fn create_work(sim: &Sim, rec: &Value) -> Result<(), JobFailure> {
    sim.realise(Change::Created {
        collection: coll::SNAPSHOTS.into(),
        record: rec.clone(),
    })
    .await?;
    sim.write(|s| {
        let vol = str_at(rec, "/volume/uuid");
        if s.get(coll::VOLUMES, &vol).is_none() {
            return Err(JobFailure::new(
                917927,
                "The specified volume was not found.",
            ));
        }
        if find_in_volume(s, &vol, &str_at(rec, "/name")).is_some() {
            return Err(JobFailure::new(1, "Snapshot copy already exists."));
        }
        let uuid = str_at(rec, "/uuid");
        s.insert(coll::SNAPSHOTS, &uuid, rec.clone());
        // Under the same lock as the insert, so no LUN change slips in between.
        let blocks = volume_blocks(s, &vol);
        s.keep_snapshot_blocks(&uuid, blocks);
        Ok(())
    })
}

/// The LUN and NVMe namespace records of volume `vol` as they are now: what a snapshot
/// of it keeps, and what a FlexClone of the volume itself (not of a snapshot) holds.
pub(crate) fn volume_blocks(s: &Store, vol: &str) -> SnapshotBlocks {
    let records = [san::LUNS, nvme::NAMESPACES]
        .into_iter()
        .map(|c| {
            let recs: Vec<Value> = s
                .iter(c)
                .filter(|(_, r)| str_at(r, "/location/volume/uuid") == vol)
                .map(|(_, r)| r.clone())
                .collect();
            (c.to_string(), recs)
        })
        .collect();
    SnapshotBlocks {
        volume_uuid: vol.to_string(),
        records,
    }
}

/// Removes a snapshot a failed bulk job made; best effort, since the job reports the
/// original failure either way.
async fn undo_create(sim: &Sim, rec: &Value) {
    let removed = sim
        .realise(Change::Deleted {
            collection: coll::SNAPSHOTS.into(),
            record: rec.clone(),
        })
        .await;
    if removed.is_ok() {
        sim.write(|s| s.remove(coll::SNAPSHOTS, &str_at(rec, "/uuid")));
    }
}

fn echo(rec: &Value) -> Value {
    json!({"name": rec["name"], "uuid": rec["uuid"],
           "volume": {"name": rec["volume"]["name"], "uuid": rec["volume"]["uuid"]},
           "svm": {"name": rec["svm"]["name"], "uuid": rec["svm"]["uuid"]}})
}

async fn create_h(
    State(sim): State<Sim>,
    Path(vol): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    if let Some(bodies) = super::bulk_records(&req)? {
        return bulk_create(&sim, &req, &vol, bodies).await;
    }
    let body = req.body_obj();
    let uuid = uuid::Uuid::new_v4().to_string();
    let rec = sim.read(|s| prepare(s, &req, &vol, &body, &uuid))?;
    let vol = str_at(&rec, "/volume/uuid");
    let name = str_at(&rec, "/name");
    let work_sim = sim.clone();
    let work_rec = rec.clone();
    let description = format!("POST /api/storage/volumes/{vol}/snapshots/?name={name}");
    let ticket = sim.spawn_job(description, Some(rec["svm"].clone()), async move {
        create_work(&work_sim, &work_rec).await
    });
    let location = format!("/api/storage/volumes/{vol}/snapshots/?name={name}");
    job_accepted(&sim, &req, ticket, Some(location), Some(vec![echo(&rec)])).await
}

/// `{"records":[…]}`: every record is validated first (any error answers the request),
/// then one job creates them in order; if one fails, those already made are removed
/// again and the job fails with that record's error. The 202 carries the job without a
/// `results` link and no `Location`, as ONTAP answers (netapp-ontap 9.15.1 README).
async fn bulk_create(
    sim: &Sim,
    req: &ApiRequest,
    path_vol: &str,
    bodies: Vec<Map<String, Value>>,
) -> Result<Response, ApiError> {
    let recs = sim.read(|s| {
        let mut recs: Vec<Value> = Vec::with_capacity(bodies.len());
        for body in &bodies {
            let rec = prepare(s, req, path_vol, body, &uuid::Uuid::new_v4().to_string())?;
            let twin = recs
                .iter()
                .any(|r| r["name"] == rec["name"] && r["volume"]["uuid"] == rec["volume"]["uuid"]);
            if twin {
                return Err(ApiError::duplicate(format!(
                    "Snapshot copy \"{}\" is given twice for volume \"{}\".",
                    str_at(&rec, "/name"),
                    str_at(&rec, "/volume/name")
                ))
                .with_target("name"));
            }
            recs.push(rec);
        }
        Ok::<_, ApiError>(recs)
    })?;
    let svm = recs.first().map(|r| r["svm"].clone());
    let echoes: Vec<Value> = recs.iter().map(echo).collect();
    let work_sim = sim.clone();
    let ticket = sim.spawn_job(super::job_description(req), svm, async move {
        let mut done: Vec<&Value> = Vec::new();
        for rec in &recs {
            if let Err(e) = create_work(&work_sim, rec).await {
                for made in done.into_iter().rev() {
                    undo_create(&work_sim, made).await;
                }
                return Err(e);
            }
            done.push(rec);
        }
        Ok(())
    });
    job_accepted(sim, req, ticket, None, Some(echoes)).await
}

pub(crate) fn find_in_volume<'a>(
    s: &'a Store,
    vol: &str,
    name: &str,
) -> Option<(&'a String, &'a Value)> {
    s.find_named(coll::SNAPSHOTS, None, name, |v| {
        str_at(v, "/volume/uuid") == vol
    })
}

fn patch_one(
    sim: &Sim,
    req: &ApiRequest,
    vol: &str,
    uuid: &str,
) -> Result<(Value, Value), ApiError> {
    let body = req.body_obj();
    sim.read(|s| {
        let v = volume(s, req, vol)?;
        let before = s
            .get(coll::SNAPSHOTS, uuid)
            .filter(|r| str_at(r, "/volume/uuid") == vol)
            .ok_or_else(ApiError::not_found)?
            .clone();
        let mut after = before.clone();
        if let Some(n) = opt_str(&body, "name")? {
            if n != str_at(&before, "/name") && find_in_volume(s, vol, &n).is_some() {
                return Err(ApiError::duplicate(format!(
                    "Snapshot copy \"{n}\" already exists."
                )));
            }
            after["name"] = json!(n);
        }
        for f in ["comment", "snapmirror_label"] {
            if let Some(x) = opt_str(&body, f)? {
                after[f] = json!(x);
            }
        }
        apply_times(&mut after, v, &body)?;
        Ok((before, after))
    })
}

async fn patch_h(
    State(sim): State<Sim>,
    Path((vol, uuid)): Path<(String, String)>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    req.check_fields(PATCHABLE)?;
    let (before, after) = patch_one(&sim, &req, &vol, &uuid)?;
    commit_patch(&sim, &uuid, before, after).await?;
    Ok(json_response(StatusCode::OK, &json!({})))
}

async fn commit_patch(sim: &Sim, uuid: &str, before: Value, after: Value) -> Result<(), ApiError> {
    sim.realise(Change::Modified {
        collection: coll::SNAPSHOTS.into(),
        before,
        after: after.clone(),
    })
    .await?;
    sim.write(|s| s.insert(coll::SNAPSHOTS, uuid, after));
    Ok(())
}

async fn patch_query_h(
    State(sim): State<Sim>,
    Path(vol): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    req.check_fields(PATCHABLE)?;
    let targets = select_for_query(&sim, &req, &SPEC, |v| in_scope(v, &vol))?;
    for (k, rec) in &targets {
        let (before, after) = patch_one(&sim, &req, &str_at(rec, "/volume/uuid"), k)?;
        commit_patch(&sim, k, before, after).await?;
    }
    Ok(super::sync_query_done(&req, targets.len()))
}

fn start_delete(sim: &Sim, req: &ApiRequest, vol: &str, uuid: &str) -> Result<JobTicket, ApiError> {
    let (svm, vol_name, snap_name) = sim.read(|s| {
        volume(s, req, vol)?;
        s.get(coll::SNAPSHOTS, uuid)
            .filter(|r| str_at(r, "/volume/uuid") == vol)
            .map(|r| {
                (
                    r["svm"].clone(),
                    str_at(r, "/volume/name"),
                    str_at(r, "/name"),
                )
            })
            .ok_or_else(ApiError::not_found)
    })?;
    super::mav::guard(
        sim,
        "volume snapshot delete",
        &[
            ("vserver", &str_at(&svm, "/name")),
            ("volume", &vol_name),
            ("snapshot", &snap_name),
        ],
    )?;
    let work_sim = sim.clone();
    let uuid = uuid.to_string();
    let description = format!("DELETE /api/storage/volumes/{vol}/snapshots/{uuid}");
    Ok(sim.spawn_job(description, Some(svm), async move {
        delete_work(&work_sim, &uuid).await
    }))
}

async fn delete_work(sim: &Sim, uuid: &str) -> Result<(), JobFailure> {
    let rec = sim.read(|s| {
        let Some(rec) = s.get(coll::SNAPSHOTS, uuid) else {
            return Ok(None);
        };
        let vol = s.get(coll::VOLUMES, &str_at(rec, "/volume/uuid"));
        let vol_name = vol.map(|v| str_at(v, "/name")).unwrap_or_default();
        let locked = vol.is_some_and(|v| v["snapshot_locking_enabled"] == json!(true))
            && rec
                .pointer("/snaplock/expiry_time")
                .and_then(Value::as_str)
                .is_some_and(in_future);
        let unexpired = rec
            .get("expiry_time")
            .and_then(Value::as_str)
            .is_some_and(in_future);
        if locked || unexpired {
            return Err(JobFailure::new(
                LOCKED,
                format!(
                    "Snapshot copy \"{}\" of volume \"{vol_name}\" on Vserver \"{}\" has not expired or is locked. Use the \"snapshot show -fields owners, expiry-time\" command to view the expiry and lock status of the Snapshot copy.",
                    str_at(rec, "/name"),
                    str_at(rec, "/svm/name")
                ),
            ));
        }
        if let Some((_, clone)) = s.find(coll::VOLUMES, |v| {
            v.pointer("/clone/is_flexclone") == Some(&json!(true))
                && v.pointer("/clone/parent_snapshot/uuid").and_then(Value::as_str) == Some(uuid)
        }) {
            return Err(JobFailure::new(
                BUSY,
                format!(
                    "Snapshot copy \"{}\" of volume \"{vol_name}\" is busy: it backs FlexClone volume \"{}\".",
                    str_at(rec, "/name"),
                    str_at(clone, "/name")
                ),
            ));
        }
        Ok(Some(rec.clone()))
    })?;
    let Some(rec) = rec else { return Ok(()) };
    sim.realise(Change::Deleted {
        collection: coll::SNAPSHOTS.into(),
        record: rec,
    })
    .await?;
    sim.write(|s| s.remove(coll::SNAPSHOTS, uuid));
    Ok(())
}

async fn delete_h(
    State(sim): State<Sim>,
    Path((vol, uuid)): Path<(String, String)>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    let ticket = start_delete(&sim, &req, &vol, &uuid)?;
    job_accepted(&sim, &req, ticket, None, None).await
}

async fn delete_query_h(
    State(sim): State<Sim>,
    Path(vol): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    let targets = select_for_query(&sim, &req, &SPEC, |v| in_scope(v, &vol))?;
    let mut tickets = Vec::new();
    for (k, rec) in targets {
        tickets.push(start_delete(&sim, &req, &str_at(&rec, "/volume/uuid"), &k)?);
    }
    jobs_accepted(&sim, &req, tickets).await
}
