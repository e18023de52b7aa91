//! SnapMirror relationships and transfers.
//!
//! The state machine lives in [`rules`]; the handlers below run each change as a job.
//!
//! Relationship create, state change and delete answer 202 with a job (as ONTAP 9.7);
//! transfers answer 201. A transfer makes a `snapmirror.*` snapshot on the source and the
//! destination volume (keeping only the newest one per relationship), records the transfer
//! and updates `last_transfer_type`, `lag_time` and `healthy`. Breaking makes the
//! destination volume read-write (`type: rw`); resync makes it `dp` again.
//!
//! While an initialize or resync job runs, `transfer.state` is `transferring` and other
//! changes are refused with Trident's busy codes: 13303808 for a break, 13303812 otherwise.
//! A failed state-change job leaves `healthy: false` and `unhealthy_reason`.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Map, Value};

use self::rules::{
    iso_duration, parse_endpoint, plan, transfer_snapshot_name, Action, Endpoint, RelState,
    INVALID_TRANSITION,
};
use super::san::visible;
use super::{
    job_accepted, job_description, list_records, render_one, volume_ref, ApiError, ApiRequest,
    ResourceSpec, Sim, Store,
};
use crate::api::{body_at, opt_bool, opt_str};
use crate::backend::Change;
use crate::error::JobFailure;
use crate::jobs::now_timestamp;
use crate::store::{coll, str_at, u64_at};

/// Pure SnapMirror rules, independent of HTTP and of the record store.
pub(crate) mod rules {
    use crate::resources::san::rules::Violation;

    /// Relationship states the simulator models (asynchronous policies only).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum RelState {
        /// Created, no baseline transfer yet.
        Uninitialized,
        /// Baseline done; the destination is a read-only mirror.
        Snapmirrored,
        /// Broken: the destination is writable (failover).
        BrokenOff,
        /// Quiesced: transfers suspended.
        Paused,
    }

    impl RelState {
        /// Parses the REST value; states of synchronous policies are not modelled.
        pub(crate) fn parse(s: &str) -> Option<Self> {
            match s {
                "uninitialized" => Some(Self::Uninitialized),
                "snapmirrored" => Some(Self::Snapmirrored),
                "broken_off" => Some(Self::BrokenOff),
                "paused" => Some(Self::Paused),
                _ => None,
            }
        }

        /// The REST value.
        pub(crate) fn as_str(self) -> &'static str {
            match self {
                Self::Uninitialized => "uninitialized",
                Self::Snapmirrored => "snapmirrored",
                Self::BrokenOff => "broken_off",
                Self::Paused => "paused",
            }
        }
    }

    /// What a PATCH of `state` does.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Action {
        /// Baseline transfer (uninitialized → snapmirrored).
        Initialize,
        /// Break (snapmirrored/paused → broken_off); the destination becomes read-write.
        Break,
        /// Resync (broken_off → snapmirrored); the destination becomes a mirror again.
        Resync,
        /// Quiesce (snapmirrored → paused).
        Pause,
        /// Resume (paused → snapmirrored).
        Resume,
        /// Already in the requested state.
        Nothing,
    }

    impl Action {
        /// The `last_transfer_type` a transfer made by this action records, if it transfers.
        pub(crate) fn transfer_type(self) -> Option<&'static str> {
            match self {
                Self::Initialize => Some("initialize"),
                Self::Resync => Some("resync"),
                _ => None,
            }
        }
    }

    /// ONTAP code for a state change the relationship's current state does not allow.
    /// ONTAP's REST docs list no code for this; 13303810 is the simulator's choice
    /// (it sits in the SnapMirror 133038xx range) **(unverified)**.
    pub(crate) const INVALID_TRANSITION: u32 = 13303810;

    /// Plans the change from `from` to `to`, refusing transitions ONTAP refuses.
    pub(crate) fn plan(from: RelState, to: RelState) -> Result<Action, Violation> {
        use RelState::*;
        let action = match (from, to) {
            (a, b) if a == b => Action::Nothing,
            (Uninitialized, Snapmirrored) => Action::Initialize,
            (Snapmirrored | Paused, BrokenOff) => Action::Break,
            (BrokenOff, Snapmirrored) => Action::Resync,
            (Snapmirrored, Paused) => Action::Pause,
            (Paused, Snapmirrored) => Action::Resume,
            _ => {
                return Err(Violation::bad(
                    INVALID_TRANSITION,
                    format!(
                        "Cannot change the state of the relationship from \"{}\" to \"{}\".",
                        from.as_str(),
                        to.as_str()
                    ),
                )
                .at("state"))
            }
        };
        Ok(action)
    }

    /// A `svm:volume` endpoint path.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) struct Endpoint {
        /// SVM name.
        pub svm: String,
        /// Volume name.
        pub volume: String,
    }

    impl Endpoint {
        /// The `svm:volume` form.
        pub(crate) fn path(&self) -> String {
            format!("{}:{}", self.svm, self.volume)
        }
    }

    /// Parses an endpoint path (ONTAP code 13303852 when the `:` is missing).
    pub(crate) fn parse_endpoint(path: &str, field: &'static str) -> Result<Endpoint, Violation> {
        match path.split_once(':') {
            Some((svm, volume))
                if !svm.is_empty() && !volume.is_empty() && !volume.contains(':') =>
            {
                Ok(Endpoint {
                    svm: svm.to_owned(),
                    volume: volume.to_owned(),
                })
            }
            Some(_) => Err(Violation::bad(
                262185,
                format!("Invalid value \"{path}\" for field \"{field}\"."),
            )
            .at(field)),
            None => Err(Violation::bad(
                13303852,
                format!("{field} provided does not contain \":\"."),
            )
            .at(field)),
        }
    }

    /// Formats a lag in seconds as an ISO-8601 duration (`PT1H2M3S`, `PT0S`).
    pub(crate) fn iso_duration(secs: u64) -> String {
        let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
        let mut out = String::from("PT");
        if h > 0 {
            out.push_str(&format!("{h}H"));
        }
        if m > 0 {
            out.push_str(&format!("{m}M"));
        }
        if s > 0 || (h == 0 && m == 0) {
            out.push_str(&format!("{s}S"));
        }
        out
    }

    /// Name of the snapshot a transfer creates on the source, after ONTAP's
    /// `snapmirror.<dest svm uuid>_<dest volume id>.<timestamp>` pattern, simplified.
    pub(crate) fn transfer_snapshot_name(relationship_uuid: &str, sequence: u64) -> String {
        format!("snapmirror.{relationship_uuid}.{sequence:010}")
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use RelState::*;

        #[test]
        fn valid_transitions() {
            assert_eq!(plan(Uninitialized, Snapmirrored), Ok(Action::Initialize));
            assert_eq!(plan(Snapmirrored, BrokenOff), Ok(Action::Break));
            assert_eq!(plan(Paused, BrokenOff), Ok(Action::Break));
            assert_eq!(plan(BrokenOff, Snapmirrored), Ok(Action::Resync));
            assert_eq!(plan(Snapmirrored, Paused), Ok(Action::Pause));
            assert_eq!(plan(Paused, Snapmirrored), Ok(Action::Resume));
            assert_eq!(plan(BrokenOff, BrokenOff), Ok(Action::Nothing));
            assert_eq!(Action::Initialize.transfer_type(), Some("initialize"));
            assert_eq!(Action::Break.transfer_type(), None);
        }

        #[test]
        fn invalid_transitions() {
            for (a, b) in [
                (Uninitialized, BrokenOff),
                (Uninitialized, Paused),
                (BrokenOff, Paused),
                (Snapmirrored, Uninitialized),
                (BrokenOff, Uninitialized),
            ] {
                let v = plan(a, b).unwrap_err();
                assert_eq!(
                    (v.status, v.code, v.target),
                    (400, INVALID_TRANSITION, Some("state")),
                    "{a:?}->{b:?}"
                );
            }
            assert_eq!(
                plan(Uninitialized, BrokenOff).unwrap_err().message,
                "Cannot change the state of the relationship from \"uninitialized\" to \"broken_off\"."
            );
        }

        #[test]
        fn endpoints() {
            let e = parse_endpoint("svm1:vol1", "source.path").unwrap();
            assert_eq!(
                (e.svm.as_str(), e.volume.as_str(), e.path()),
                ("svm1", "vol1", "svm1:vol1".to_owned())
            );
            assert_eq!(
                parse_endpoint("svm1vol1", "destination.path")
                    .unwrap_err()
                    .code,
                13303852
            );
            assert_eq!(
                parse_endpoint("svm1:", "destination.path")
                    .unwrap_err()
                    .code,
                262185
            );
        }

        #[test]
        fn durations() {
            assert_eq!(iso_duration(0), "PT0S");
            assert_eq!(iso_duration(59), "PT59S");
            assert_eq!(iso_duration(3723), "PT1H2M3S");
            assert_eq!(iso_duration(7200), "PT2H");
        }
    }
}

/// Store collection of SnapMirror relationships.
pub(crate) const RELATIONSHIPS: &str = "snapmirror_relationships";
/// Store collection of SnapMirror transfers.
pub(crate) const TRANSFERS: &str = "snapmirror_transfers";

/// Policy given to relationships created without one (ONTAP's default async policy).
pub(crate) const DEFAULT_POLICY: &str = "MirrorAllSnapshots";

/// Refusal when the destination volume exists but is not a data-protection volume. ONTAP's
/// code for this is not documented; 13303841 ("not supported for these endpoints") is the
/// closest documented one **(unverified)**.
pub(crate) const DESTINATION_NOT_DP: u32 = 13303841;

const REL_SPEC: ResourceSpec = ResourceSpec {
    collection: RELATIONSHIPS,
    key_param: "uuid",
    identity: &["uuid", "source", "destination"],
    svm_scoped: false,
};
const TRANSFER_SPEC: ResourceSpec = ResourceSpec {
    collection: TRANSFERS,
    key_param: "uuid",
    identity: &["uuid", "state"],
    svm_scoped: false,
};

pub(crate) fn routes() -> Router<Sim> {
    Router::new()
        .route(
            "/api/snapmirror/relationships",
            get(rel_list).post(rel_create),
        )
        .route(
            "/api/snapmirror/relationships/{uuid}",
            get(rel_get).patch(rel_patch).delete(rel_delete),
        )
        .route(
            "/api/snapmirror/relationships/{uuid}/transfers",
            get(transfer_list).post(transfer_create),
        )
        .route(
            "/api/snapmirror/relationships/{uuid}/transfers/{transfer}",
            get(transfer_get),
        )
}

fn rel_not_found() -> ApiError {
    ApiError::not_found_msg("The SnapMirror relationship does not exist.")
}

fn state_of(rec: &Value) -> RelState {
    RelState::parse(&str_at(rec, "/state")).unwrap_or(RelState::Uninitialized)
}

/// Seconds since an ONTAP timestamp (`2021-04-10T09:51:13+00:00`).
fn seconds_since(ts: &str) -> Option<u64> {
    let t = time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339).ok()?;
    let d = time::OffsetDateTime::now_utc() - t;
    Some(d.whole_seconds().max(0) as u64)
}

/// The record as GET shows it: `lag_time` counted from the last transfer's end.
fn with_lag(mut rec: Value) -> Value {
    if let Some(secs) = rec
        .pointer("/transfer/end_time")
        .and_then(Value::as_str)
        .and_then(seconds_since)
    {
        rec["lag_time"] = json!(iso_duration(secs));
    }
    rec
}

async fn rel_list(State(sim): State<Sim>, req: ApiRequest) -> Result<Response, ApiError> {
    let recs: BTreeMap<String, Value> = sim.read(|s| {
        s.iter(RELATIONSHIPS)
            .map(|(k, v)| (k.clone(), with_lag(v.clone())))
            .collect()
    });
    list_records(&req, &REL_SPEC, &recs, |_| true)
}

async fn rel_get(
    State(sim): State<Sim>,
    Path(uuid): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    let rec = sim
        .read(|s| s.get(RELATIONSHIPS, &uuid).cloned())
        .ok_or_else(ApiError::not_found)?;
    Ok(render_one(&req, &REL_SPEC, &with_lag(rec)))
}

/// An endpoint's SVM `(uuid, name)` and, when it exists, its volume `(uuid, record)`.
type EndpointParts = ((String, String), Option<(String, Value)>);

/// Resolves an endpoint's SVM and (optional) volume.
fn endpoint_parts(
    s: &Store,
    ep: &Endpoint,
    field: &'static str,
) -> Result<EndpointParts, ApiError> {
    let svm = s
        .resolve_svm(&json!({"name": ep.svm}))
        .map_err(|e| e.with_target(field))?;
    let vol = s
        .find_named(coll::VOLUMES, Some(&svm.0), &ep.volume, |_| true)
        .map(|(k, v)| (k.clone(), v.clone()));
    Ok((svm, vol))
}

fn endpoint_json(ep: &Endpoint, svm: &(String, String)) -> Value {
    json!({"path": ep.path(), "svm": {"name": svm.1, "uuid": svm.0}})
}

async fn rel_create(State(sim): State<Sim>, req: ApiRequest) -> Result<Response, ApiError> {
    req.check_fields(&[
        "source.path",
        "destination.path",
        "policy",
        "state",
        "create_destination",
        "transfer_schedule",
        "throttle",
    ])?;
    let body = req.body_obj();
    let src = parse_endpoint(
        &opt_str(&body, "source.path")?.ok_or_else(|| ApiError::missing_value("source.path"))?,
        "source.path",
    )?;
    let dst = parse_endpoint(
        &opt_str(&body, "destination.path")?
            .ok_or_else(|| ApiError::missing_value("destination.path"))?,
        "destination.path",
    )?;
    let create_dest = opt_bool(&body, "create_destination.enabled")?.unwrap_or(false);
    let wanted = match opt_str(&body, "state")? {
        None => None,
        Some(st) => {
            if !create_dest {
                return Err(ApiError::new(400, "13303873", "Specifying a state when creating a relationship is only supported when creating a destination endpoint.").with_target("state"));
            }
            match RelState::parse(&st) {
                Some(s @ (RelState::Snapmirrored | RelState::Uninitialized)) => Some(s),
                _ => {
                    return Err(ApiError::new(400, "13303874", format!("Specified state \"{st}\" is not supported when creating this relationship.")).with_target("state"))
                }
            }
        }
    };
    let policy = match body.get("policy") {
        None => DEFAULT_POLICY.to_string(),
        Some(Value::String(p)) => p.clone(),
        Some(p) => p
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or(DEFAULT_POLICY)
            .to_string(),
    };
    let (src_c, dst_c) = (src.clone(), dst.clone());
    let check = move |s: &Store| -> Result<(Value, Value, (String, String)), ApiError> {
        let (src, dst) = (&src_c, &dst_c);
        let (src_svm, src_vol) = endpoint_parts(s, src, "source.path")?;
        let (_, src_vol) = src_vol.ok_or_else(|| {
            ApiError::new(
                404,
                "917927",
                format!(
                    "Volume \"{}\" in SVM \"{}\" does not exist.",
                    src.volume, src.svm
                ),
            )
            .with_target("source.path")
        })?;
        let (dst_svm, dst_vol) = endpoint_parts(s, dst, "destination.path")?;
        match (&dst_vol, create_dest) {
            (Some((_, v)), false) if v["type"] != "dp" => {
                return Err(ApiError::new(
                    400,
                    DESTINATION_NOT_DP.to_string(),
                    format!(
                        "The destination volume \"{}\" is not a data protection (DP) volume.",
                        dst.path()
                    ),
                )
                .with_target("destination.path"));
            }
            (Some(_), true) => {
                return Err(ApiError::new(409, "13303868", format!("Create of destination endpoint and SnapMirror relationship failed: volume \"{}\" already exists.", dst.path())).with_target("destination.path"));
            }
            (None, false) => {
                return Err(ApiError::new(
                    404,
                    "917927",
                    format!(
                        "Volume \"{}\" in SVM \"{}\" does not exist.",
                        dst.volume, dst.svm
                    ),
                )
                .with_target("destination.path"));
            }
            _ => {}
        }
        if s.find(RELATIONSHIPS, |r| {
            str_at(r, "/destination/path") == dst.path()
        })
        .is_some()
        {
            return Err(ApiError::duplicate(format!(
                "A SnapMirror relationship with destination \"{}\" already exists.",
                dst.path()
            ))
            .with_target("destination.path"));
        }
        Ok((endpoint_json(src, &src_svm), src_vol, dst_svm))
    };
    let (src_json, _, dst_svm) = sim.read(&check)?;
    let job_check = check.clone();
    let uuid = uuid::Uuid::new_v4().to_string();
    let record = json!({
        "uuid": uuid,
        "source": src_json,
        "destination": endpoint_json(&dst, &dst_svm),
        "policy": {"name": policy, "type": "async"},
        "state": RelState::Uninitialized.as_str(),
        "healthy": true,
        "_links": {"self": {"href": format!("/api/snapmirror/relationships/{uuid}")}},
    });
    let work_sim = sim.clone();
    let work_rec = record.clone();
    let location = format!("/api/snapmirror/relationships/{uuid}");
    let ticket = sim.spawn_job(job_description(&req), None, async move {
        let sim = work_sim;
        let (_, src_vol, dst_svm) = sim.read(&job_check).map_err(JobFailure::from)?;
        if create_dest {
            create_destination(&sim, &dst, &dst_svm, &src_vol).await?;
        }
        sim.realise(Change::Created {
            collection: RELATIONSHIPS.into(),
            record: work_rec.clone(),
        })
        .await?;
        sim.write(|s| s.insert(RELATIONSHIPS, &uuid, work_rec));
        if wanted == Some(RelState::Snapmirrored) {
            run_action(&sim, &uuid, Action::Initialize).await?;
        }
        Ok(())
    });
    job_accepted(&sim, &req, ticket, Some(location), None).await
}

/// Creates the destination volume: type `dp`, the source's size and aggregates.
async fn create_destination(
    sim: &Sim,
    dst: &Endpoint,
    dst_svm: &(String, String),
    src_vol: &Value,
) -> Result<(), JobFailure> {
    let vuuid = uuid::Uuid::new_v4().to_string();
    let mut body = Map::new();
    body.insert("name".into(), json!(dst.volume));
    body.insert("type".into(), json!("dp"));
    body.insert("size".into(), json!(u64_at(src_vol, "/size")));
    let aggrs: Vec<Value> = src_vol["aggregates"]
        .as_array()
        .map(|a| a.iter().map(|x| json!({"uuid": x["uuid"]})).collect())
        .unwrap_or_default();
    body.insert("aggregates".into(), Value::Array(aggrs));
    let mut rec = sim
        .read(|s| crate::resources::volumes::build_volume(s, dst_svm, &body, &vuuid))
        .map_err(|e| {
            JobFailure::new(
                13303868,
                format!(
                    "Create of destination endpoint and SnapMirror relationship failed: {}",
                    e.message
                ),
            )
        })?;
    rec["space"]["size"] = rec["size"].clone();
    crate::resources::volumes::refresh_volume_space(&mut rec);
    sim.realise(Change::Created {
        collection: coll::VOLUMES.into(),
        record: rec.clone(),
    })
    .await?;
    sim.write(|s| -> Result<(), JobFailure> {
        crate::resources::volumes::apply_aggregate_delta(s, None, Some(&rec))?;
        s.insert(coll::VOLUMES, &vuuid, rec);
        Ok(())
    })
}

async fn rel_patch(
    State(sim): State<Sim>,
    Path(uuid): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    req.check_fields(&["state", "policy", "transfer_schedule", "throttle"])?;
    let body = req.body_obj();
    let rec = sim
        .read(|s| s.get(RELATIONSHIPS, &uuid).cloned())
        .ok_or_else(rel_not_found)?;
    let to = match opt_str(&body, "state")? {
        Some(st) => Some(RelState::parse(&st).ok_or_else(|| {
            ApiError::invalid_enum("state", &st, &["snapmirrored", "broken_off", "paused"])
        })?),
        None => None,
    };
    not_busy(&rec, to == Some(RelState::BrokenOff))?;
    let action = match to {
        Some(to) => plan(state_of(&rec), to)?,
        None => Action::Nothing,
    };
    if action == Action::Break {
        crate::resources::mav::guard(
            &sim,
            "snapmirror break",
            &[("destination-path", &str_at(&rec, "/destination/path"))],
        )?;
    }
    let policy = match body.get("policy") {
        None => None,
        Some(Value::String(p)) => Some(p.clone()),
        Some(p) => p.get("name").and_then(Value::as_str).map(str::to_string),
    };
    let schedule = body_at(&body, "transfer_schedule").cloned();
    let throttle = body.get("throttle").cloned();
    if action.transfer_type().is_some() {
        // Visible at once, so that concurrent calls see the transfer running.
        sim.write(|s| {
            if let Some(r) = s.get_mut(RELATIONSHIPS, &uuid) {
                r["transfer"]["state"] = json!("transferring");
            }
        });
    }
    let work_sim = sim.clone();
    let key = uuid.clone();
    let ticket = sim.spawn_job(job_description(&req), None, async move {
        let sim = work_sim;
        let before = sim
            .read(|s| s.get(RELATIONSHIPS, &key).cloned())
            .ok_or_else(|| JobFailure::new(4, "The SnapMirror relationship does not exist."))?;
        let mut after = before.clone();
        if let Some(p) = &policy {
            after["policy"]["name"] = json!(p);
        }
        if let Some(sch) = &schedule {
            after["transfer_schedule"] = sch.clone();
        }
        if let Some(t) = &throttle {
            after["throttle"] = t.clone();
        }
        if after != before {
            sim.realise(Change::Modified {
                collection: RELATIONSHIPS.into(),
                before,
                after: after.clone(),
            })
            .await?;
            sim.write(|s| s.insert(RELATIONSHIPS, &key, after));
        }
        let result = run_action(&sim, &key, action).await;
        if let Err(f) = &result {
            sim.write(|s| {
                if let Some(r) = s.get_mut(RELATIONSHIPS, &key) {
                    if r.pointer("/transfer/state").and_then(Value::as_str) == Some("transferring")
                    {
                        r["transfer"]["state"] = json!("failed");
                        r["healthy"] = json!(false);
                        r["unhealthy_reason"] =
                            json!([{"code": f.code.to_string(), "message": f.message}]);
                    }
                }
            });
        }
        result
    });
    job_accepted(&sim, &req, ticket, None, None).await
}

/// Trident's code for "a transfer is in progress".
pub(crate) const TRANSFER_IN_PROGRESS: u32 = 13303812;
/// Trident's code for a break refused because a transfer is running.
pub(crate) const BREAK_BLOCKED_BY_TRANSFER: u32 = 13303808;

/// Refuses changes while a transfer runs (409; ONTAP's HTTP status is not documented).
fn not_busy(rec: &Value, breaking: bool) -> Result<(), ApiError> {
    if rec.pointer("/transfer/state").and_then(Value::as_str) != Some("transferring") {
        return Ok(());
    }
    let code = if breaking {
        BREAK_BLOCKED_BY_TRANSFER
    } else {
        TRANSFER_IN_PROGRESS
    };
    Err(ApiError::new(
        409,
        code.to_string(),
        format!(
            "A transfer is in progress on the SnapMirror relationship with destination \"{}\". Wait for it to finish and retry.",
            str_at(rec, "/destination/path")
        ),
    ))
}

/// Runs a state change inside a job, re-checking the transition against the current state.
async fn run_action(sim: &Sim, uuid: &str, action: Action) -> Result<(), JobFailure> {
    let rec = sim
        .read(|s| s.get(RELATIONSHIPS, uuid).cloned())
        .ok_or_else(|| JobFailure::new(4, "The SnapMirror relationship does not exist."))?;
    let (target, needs_dp) = match action {
        Action::Nothing => return Ok(()),
        Action::Initialize => (RelState::Snapmirrored, None),
        Action::Break => (RelState::BrokenOff, Some("rw")),
        Action::Resync => (RelState::Snapmirrored, Some("dp")),
        Action::Pause => (RelState::Paused, None),
        Action::Resume => (RelState::Snapmirrored, None),
    };
    let again =
        plan(state_of(&rec), target).map_err(|v| JobFailure::new(i64::from(v.code), v.message))?;
    if again != action {
        return Err(JobFailure::new(
            i64::from(INVALID_TRANSITION),
            format!(
                "The relationship changed to \"{}\" while the operation was queued.",
                str_at(&rec, "/state")
            ),
        ));
    }
    if let Some(t) = needs_dp {
        set_destination_type(sim, &rec, t).await?;
    }
    if let Some(kind) = action.transfer_type() {
        do_transfer(sim, uuid, kind).await?;
    }
    let before = sim
        .read(|s| s.get(RELATIONSHIPS, uuid).cloned())
        .ok_or_else(|| JobFailure::new(4, "The SnapMirror relationship does not exist."))?;
    let mut after = before.clone();
    after["state"] = json!(target.as_str());
    after["healthy"] = json!(true);
    sim.realise(Change::Modified {
        collection: RELATIONSHIPS.into(),
        before,
        after: after.clone(),
    })
    .await?;
    sim.write(|s| s.insert(RELATIONSHIPS, uuid, after));
    Ok(())
}

async fn set_destination_type(sim: &Sim, rel: &Value, vtype: &str) -> Result<(), JobFailure> {
    let ep = parse_endpoint(&str_at(rel, "/destination/path"), "destination.path")
        .map_err(|v| JobFailure::new(i64::from(v.code), v.message))?;
    let found = sim.read(|s| {
        s.find_named(
            coll::VOLUMES,
            Some(&str_at(rel, "/destination/svm/uuid")),
            &ep.volume,
            |_| true,
        )
        .map(|(k, v)| (k.clone(), v.clone()))
    });
    let Some((vuuid, before)) = found else {
        return Err(JobFailure::new(
            917927,
            format!("The destination volume \"{}\" does not exist.", ep.path()),
        ));
    };
    if before["type"] == vtype {
        return Ok(());
    }
    let mut after = before.clone();
    after["type"] = json!(vtype);
    sim.realise(Change::Modified {
        collection: coll::VOLUMES.into(),
        before,
        after,
    })
    .await?;
    sim.write(|s| {
        if let Some(v) = s.get_mut(coll::VOLUMES, &vuuid) {
            v["type"] = json!(vtype);
        }
    });
    Ok(())
}

/// Transfers: a new `snapmirror.*` snapshot on source and destination (older ones of this
/// relationship removed), a transfer record, and the relationship's transfer fields.
async fn do_transfer(sim: &Sim, uuid: &str, kind: &str) -> Result<Value, JobFailure> {
    let rel = sim
        .read(|s| s.get(RELATIONSHIPS, uuid).cloned())
        .ok_or_else(|| JobFailure::new(4, "The SnapMirror relationship does not exist."))?;
    let mut volumes = Vec::new();
    for (side, field) in [
        ("source", "source.path"),
        ("destination", "destination.path"),
    ] {
        let ep = parse_endpoint(&str_at(&rel, &format!("/{side}/path")), field)
            .map_err(|v| JobFailure::new(i64::from(v.code), v.message))?;
        let svm_uuid = str_at(&rel, &format!("/{side}/svm/uuid"));
        let vol = sim
            .read(|s| {
                s.find_named(coll::VOLUMES, Some(&svm_uuid), &ep.volume, |_| true)
                    .map(|(k, v)| (k.clone(), v.clone()))
            })
            .ok_or_else(|| {
                JobFailure::new(
                    917927,
                    format!("The {side} volume \"{}\" does not exist.", ep.path()),
                )
            })?;
        volumes.push(vol);
    }
    let seq = sim.write(|s| s.next_counter("snapmirror_transfer"));
    let snap_name = transfer_snapshot_name(uuid, seq);
    let prefix = format!("snapmirror.{uuid}.");
    let now = now_timestamp();
    for (vuuid, vol) in &volumes {
        let old: Vec<Value> = sim.read(|s| {
            s.iter(coll::SNAPSHOTS)
                .filter(|(_, v)| {
                    str_at(v, "/volume/uuid") == *vuuid && str_at(v, "/name").starts_with(&prefix)
                })
                .map(|(_, v)| v.clone())
                .collect()
        });
        let suuid = uuid::Uuid::new_v4().to_string();
        let snap = json!({
            "uuid": suuid, "name": snap_name,
            "volume": volume_ref(vuuid, &str_at(vol, "/name")),
            "svm": vol["svm"].clone(),
            "create_time": now,
            "state": "valid", "size": 0,
            "owners": ["snapmirror_dependent"],
            "_links": {"self": {"href": format!("/api/storage/volumes/{vuuid}/snapshots/{suuid}")}},
        });
        sim.realise(Change::Created {
            collection: coll::SNAPSHOTS.into(),
            record: snap.clone(),
        })
        .await?;
        for o in &old {
            sim.realise(Change::Deleted {
                collection: coll::SNAPSHOTS.into(),
                record: o.clone(),
            })
            .await?;
        }
        sim.write(|s| {
            // As for any snapshot: a FlexClone of it holds the LUNs and namespaces of now.
            let blocks = super::snapshots::volume_blocks(s, vuuid);
            s.insert(coll::SNAPSHOTS, &suuid, snap);
            s.keep_snapshot_blocks(&suuid, blocks);
            for o in &old {
                s.remove(coll::SNAPSHOTS, &str_at(o, "/uuid"));
            }
        });
    }
    let bytes = u64_at(&volumes[0].1, "/space/used");
    let tuuid = uuid::Uuid::new_v4().to_string();
    let transfer = json!({
        "uuid": tuuid,
        "relationship": {"uuid": uuid, "destination": {"path": str_at(&rel, "/destination/path")},
                         "_links": {"self": {"href": format!("/api/snapmirror/relationships/{uuid}")}}},
        "state": "success",
        "snapshot": snap_name,
        "bytes_transferred": bytes,
        "end_time": now,
        "_links": {"self": {"href": format!("/api/snapmirror/relationships/{uuid}/transfers/{tuuid}")}},
    });
    sim.write(|s| {
        s.insert(TRANSFERS, &tuuid, transfer.clone());
        if let Some(r) = s.get_mut(RELATIONSHIPS, uuid) {
            r["last_transfer_type"] = json!(kind);
            r["healthy"] = json!(true);
            r["lag_time"] = json!("PT0S");
            r["transfer"] = json!({"uuid": tuuid, "state": "success", "bytes_transferred": bytes,
                                   "end_time": now});
        }
    });
    Ok(transfer)
}

async fn rel_delete(
    State(sim): State<Sim>,
    Path(uuid): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    let rec = sim
        .read(|s| s.get(RELATIONSHIPS, &uuid).cloned())
        .ok_or_else(rel_not_found)?;
    not_busy(&rec, false)?;
    crate::resources::mav::guard(
        &sim,
        "snapmirror delete",
        &[("destination-path", &str_at(&rec, "/destination/path"))],
    )?;
    let work_sim = sim.clone();
    let ticket = sim.spawn_job(job_description(&req), None, async move {
        let sim = work_sim;
        let Some(rec) = sim.read(|s| s.get(RELATIONSHIPS, &uuid).cloned()) else {
            return Ok(());
        };
        sim.realise(Change::Deleted {
            collection: RELATIONSHIPS.into(),
            record: rec,
        })
        .await?;
        sim.write(|s| {
            s.remove(RELATIONSHIPS, &uuid);
            let transfers: Vec<String> = s
                .iter(TRANSFERS)
                .filter(|(_, t)| str_at(t, "/relationship/uuid") == uuid)
                .map(|(k, _)| k.clone())
                .collect();
            for t in transfers {
                s.remove(TRANSFERS, &t);
            }
        });
        Ok(())
    });
    job_accepted(&sim, &req, ticket, None, None).await
}

async fn transfer_list(
    State(sim): State<Sim>,
    Path(uuid): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    if sim.read(|s| s.get(RELATIONSHIPS, &uuid).is_none()) {
        return Err(rel_not_found());
    }
    let recs: BTreeMap<String, Value> = sim.read(|s| {
        s.iter(TRANSFERS)
            .filter(|(_, t)| str_at(t, "/relationship/uuid") == uuid)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    });
    list_records(&req, &TRANSFER_SPEC, &recs, |_| true)
}

async fn transfer_get(
    State(sim): State<Sim>,
    Path((uuid, transfer)): Path<(String, String)>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    let rec = sim
        .read(|s| visible(s, &req, TRANSFERS, &transfer))?
        .filter(|t| str_at(t, "/relationship/uuid") == uuid)
        .ok_or_else(ApiError::not_found)?;
    Ok(render_one(&req, &TRANSFER_SPEC, &rec))
}

/// POST a transfer: an update of a mirrored relationship, or the baseline of an
/// uninitialized one. Synchronous (201), as in ONTAP 9.7.
async fn transfer_create(
    State(sim): State<Sim>,
    Path(uuid): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    req.check_fields(&["source_snapshot", "throttle", "storage"])?;
    let rec = sim
        .read(|s| s.get(RELATIONSHIPS, &uuid).cloned())
        .ok_or_else(rel_not_found)?;
    not_busy(&rec, false)?;
    let transfer = match state_of(&rec) {
        RelState::Uninitialized => {
            let t = do_transfer(&sim, &uuid, "initialize")
                .await
                .map_err(job_to_api)?;
            sim.write(|s| {
                if let Some(r) = s.get_mut(RELATIONSHIPS, &uuid) {
                    r["state"] = json!(RelState::Snapmirrored.as_str());
                }
            });
            t
        }
        RelState::Snapmirrored => do_transfer(&sim, &uuid, "update")
            .await
            .map_err(job_to_api)?,
        other => {
            return Err(ApiError::new(
                400,
                INVALID_TRANSITION.to_string(),
                format!(
                    "A transfer cannot start while the relationship is \"{}\".",
                    other.as_str()
                ),
            ))
        }
    };
    let location = str_at(&transfer, "/_links/self/href");
    Ok(super::created(&req, &transfer, &location))
}

fn job_to_api(f: JobFailure) -> ApiError {
    ApiError::new(400, f.code.to_string(), f.message)
}
