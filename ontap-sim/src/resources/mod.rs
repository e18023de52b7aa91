//! ONTAP resources: one module per family of endpoints, all built on the same contract.
//!
//! # How to add a resource
//!
//! 1. **Module and routes.** Create `src/resources/NAME.rs` with
//!    `pub(crate) fn routes() -> Router<Sim>`, declare `mod NAME;` below and add
//!    `.merge(NAME::routes())` to [`router`]. Paths use axum 0.8 syntax
//!    (`/api/storage/luns/{uuid}`). Trailing slashes are stripped before routing, so
//!    `Location: /api/storage/luns/?name=x` works. Authentication, the request log,
//!    faults and the `Server` header are handled before your handler runs.
//! 2. **Handlers** take `State(sim): State<Sim>`, optionally `Path(..)`, and last
//!    [`ApiRequest`] (method, path, parsed [`crate::query::Query`], SVM tunnel headers,
//!    JSON body) and return `Result<Response, ApiError>`. `ApiError` renders the ONTAP
//!    error body (`{"error":{"message","code","target"}}`) with its HTTP status; use its
//!    constructors (`not_found`, `duplicate`, `in_use`, `unexpected_argument`,
//!    `missing_value`, `invalid_value`, `invalid_enum`, `new(status, code, msg)`).
//! 3. **Records** are `serde_json::Value` objects in a [`Store`] collection (pick a
//!    collection name, e.g. `"luns"`), keyed by an ordered string (usually the UUID;
//!    zero-pad integer keys with [`int_key`]). Store the full record as GET `fields=*`
//!    shows it, including `_links.self.href` and reference objects built with
//!    [`svm_ref`], [`volume_ref`], [`href_ref`]. Describe it with a [`ResourceSpec`]
//!    (collection, base path, key query name, identity fields shown by default).
//! 4. **Reads.** Collection GET: [`list`] (fields, filters with all operators,
//!    order_by, max_records + `next` links, return_records=false, SVM tunnelling: all
//!    done for you; pass a scope predicate for sub-collections). Instance GET:
//!    [`get_one`]. Routes that need nothing else take [`list_handler`] and
//!    [`get_handler`]: `get(list_handler(&LUN_SPEC))`.
//! 5. **Writes.** Validate first: [`ApiRequest::check_fields`] with the postable or
//!    patchable fields (unknown field → 400/262179), [`ApiRequest::create_svm`] for the
//!    owning SVM (body `svm` or tunnel header), the `opt_*`/`req_*` helpers of
//!    [`crate::api`] for typed fields and enums. Take the store with `sim.read(|s| ..)`
//!    and `sim.write(|s| ..)` (a `std::sync::Mutex`: never hold it across `.await`;
//!    `write` also persists `--state`). Check duplicates with `Store::find_named`.
//!    Synchronous creates answer 201 via [`created`] (honours `return_records=true`)
//!    after [`commit_create`], which asks the backend and inserts.
//! 6. **Async as job.** Operations ONTAP runs as jobs: validate synchronously (HTTP
//!    errors), then `sim.spawn_job("POST /api/…".into(), svm, async move { … })` whose
//!    body re-checks, calls `sim.realise(Change::…)` and commits; return
//!    `Err(JobFailure::new(code, msg))` for failures ONTAP reports in the job. Answer with
//!    [`job_accepted`] (202 + `Location`, or 201/200 when `return_timeout` lets the job
//!    finish). Query PATCH/DELETE: [`select_for_query`] then one job per record and
//!    [`jobs_accepted`], or [`sync_query_done`] for synchronous resources
//!    (`san::each_selected` runs the instance handler on each selected record).
//!    Multi-record POST: [`bulk_records`] yields the record bodies; validate each with
//!    [`ApiRequest::for_record`] (so `check_fields`/`create_svm` work unchanged), then
//!    run one job that commits them in order and undoes the done ones on failure
//!    (see `snapshots::bulk_create`, `san::lun_bulk_create`).
//! 7. **Space accounting.** Volumes carry `space.size/used/available`;
//!    [`crate::resources::volumes::charge_volume_space`] adds (or with a negative delta
//!    releases) bytes used inside a volume (LUN/namespace reservations) and refuses with
//!    the error you pass when the volume is too small.
//! 8. **Volume in use.** Volume DELETE refuses while `Store::volume_users` finds records
//!    of any collection whose `location.volume.uuid` is the volume (LUNs, namespaces:
//!    nothing to register, just store `location.volume`), or FlexClones of it.
//! 9. **Backend hooks.** Every realised change goes through [`crate::backend::Change`]
//!    (`Created`/`Modified`/`Deleted` with collection name and full records) via
//!    `sim.realise(..)`; an error refuses the change. [`commit`] has the skeleton the SAN
//!    and NVMe handlers share: look up, realise the changes, re-check and commit under
//!    the store lock, answer.

use std::collections::BTreeMap;
use std::ops::Bound;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::Router;
use http::StatusCode;
use serde_json::{json, Map, Value};

pub(crate) use crate::api::{json_response, json_response_at, ApiRequest};
pub(crate) use crate::error::ApiError;
use crate::jobs::JobTicket;
use crate::query::{compare_records, percent_encode, FieldSelection};
pub(crate) use crate::sim::Sim;
pub(crate) use crate::store::Store;

mod cluster;
pub(crate) mod commit;
mod files;
mod jobs;
pub(crate) mod mav;
pub(crate) mod nas;
pub(crate) mod network;
pub(crate) mod nvme;
pub(crate) mod san;
pub(crate) mod snapmirror;
mod snapshots;
pub(crate) mod volumes;

/// Every ONTAP route.
pub(crate) fn router() -> Router<Sim> {
    Router::new()
        .merge(cluster::routes())
        .merge(jobs::routes())
        .merge(network::routes())
        .merge(volumes::routes())
        .merge(snapshots::routes())
        .merge(files::routes())
        .merge(nas::routes())
        .merge(san::routes())
        .merge(nvme::routes())
        .merge(snapmirror::routes())
        .merge(mav::routes())
}

/// Static description of a resource for the generic read paths.
#[derive(Debug)]
pub(crate) struct ResourceSpec {
    /// Store collection name.
    pub collection: &'static str,
    /// Name used in paging tokens: `start.<key_param>=<key>`.
    pub key_param: &'static str,
    /// Fields returned in collection GETs without `fields` (plus `_links`).
    pub identity: &'static [&'static str],
    /// Whether records carry `svm.uuid` and are scoped by the tunnel headers.
    pub svm_scoped: bool,
}

/// Zero-padded store key for integer identifiers, so keys sort numerically.
pub(crate) fn int_key(n: u64) -> String {
    format!("{n:020}")
}

/// `{"name","uuid","_links":{"self":{"href":"/api/svm/svms/UUID"}}}`.
pub(crate) fn svm_ref(uuid: &str, name: &str) -> Value {
    href_ref("/api/svm/svms", uuid, name)
}

/// `{"name","uuid","_links":{"self":{"href":"/api/storage/volumes/UUID"}}}`.
pub(crate) fn volume_ref(uuid: &str, name: &str) -> Value {
    href_ref("/api/storage/volumes", uuid, name)
}

/// `{"name","uuid","_links":{"self":{"href":"BASE/UUID"}}}`.
pub(crate) fn href_ref(base: &str, uuid: &str, name: &str) -> Value {
    json!({"name": name, "uuid": uuid, "_links": {"self": {"href": format!("{base}/{uuid}")}}})
}

/// `{"self":{"href":HREF}}`.
pub(crate) fn self_links(href: &str) -> Value {
    json!({"self": {"href": href}})
}

fn tunnel_ok(v: &Value, tunnel: &Option<(String, String)>, scoped: bool) -> bool {
    match tunnel {
        Some((u, _)) if scoped => v.pointer("/svm/uuid").and_then(Value::as_str) == Some(u),
        _ => true,
    }
}

/// Collection GET over a store collection, restricted to records passing `scope`.
pub(crate) fn list(
    sim: &Sim,
    req: &ApiRequest,
    spec: &ResourceSpec,
    scope: impl Fn(&Value) -> bool,
) -> Result<Response, ApiError> {
    sim.read(|store| {
        let tunnel = req.tunnel_svm(store)?;
        let empty = BTreeMap::new();
        let recs = store.collection(spec.collection).unwrap_or(&empty);
        list_records(req, spec, recs, |v| {
            tunnel_ok(v, &tunnel, spec.svm_scoped) && scope(v)
        })
    })
}

/// Collection GET over any ordered map of records.
pub(crate) fn list_records(
    req: &ApiRequest,
    spec: &ResourceSpec,
    recs: &BTreeMap<String, Value>,
    pred: impl Fn(&Value) -> bool,
) -> Result<Response, ApiError> {
    let q = &req.query;
    let matches = |v: &Value| pred(v) && q.matches(v);
    let self_href = req.self_href();
    if q.return_records == Some(false) {
        let n = recs.values().filter(|v| matches(v)).count();
        return Ok(json_response(
            StatusCode::OK,
            &json!({"num_records": n, "_links": self_links(&self_href)}),
        ));
    }
    let sel = FieldSelection::for_query(q, spec.identity, false);
    let max = q.max_records.unwrap_or(usize::MAX);
    let mut page = Vec::new();
    let mut next_token: Option<(String, String)> = None;
    if q.order_by.is_empty() {
        let iter: Box<dyn Iterator<Item = (&String, &Value)>> = match &q.start {
            Some((_, k)) => {
                Box::new(recs.range::<String, _>((Bound::Excluded(k.clone()), Bound::Unbounded)))
            }
            None => Box::new(recs.iter()),
        };
        let mut last: Option<&String> = None;
        for (k, v) in iter {
            if !matches(v) {
                continue;
            }
            if page.len() >= max {
                next_token = last.map(|l| (spec.key_param.to_string(), l.clone()));
                break;
            }
            page.push(sel.project(v));
            last = Some(k);
        }
    } else {
        let mut all: Vec<&Value> = recs.values().filter(|v| matches(v)).collect();
        all.sort_by(|a, b| {
            for (f, desc) in &q.order_by {
                let o = compare_records(a, b, f);
                let o = if *desc { o.reverse() } else { o };
                if o != std::cmp::Ordering::Equal {
                    return o;
                }
            }
            std::cmp::Ordering::Equal
        });
        let offset = match &q.start {
            Some((name, v)) if name == "offset" => v
                .parse::<usize>()
                .map_err(|_| ApiError::invalid_value("start.offset", v))?,
            _ => 0,
        };
        let end = offset.saturating_add(max).min(all.len());
        if offset < all.len() {
            page = all[offset..end].iter().map(|v| sel.project(v)).collect();
        }
        if end < all.len() {
            next_token = Some(("offset".into(), end.to_string()));
        }
    }
    let mut links = self_links(&self_href);
    if let Some((name, key)) = next_token {
        let mut parts: Vec<String> = q
            .raw_without_start()
            .into_iter()
            .map(str::to_string)
            .collect();
        parts.push(format!("start.{name}={}", percent_encode(&key)));
        links["next"] = json!({"href": format!("{}?{}", req.path, parts.join("&"))});
    }
    let n = page.len();
    Ok(json_response(
        StatusCode::OK,
        &json!({"records": page, "num_records": n, "_links": links}),
    ))
}

/// What a handler that answers without waiting returns.
type Ready = std::future::Ready<Result<Response, ApiError>>;

/// The collection GET handler of `spec`: [`list`] over every record the request may see.
pub(crate) fn list_handler(
    spec: &'static ResourceSpec,
) -> impl Fn(State<Sim>, ApiRequest) -> Ready + Clone + Send + Sync + 'static {
    move |State(sim): State<Sim>, req: ApiRequest| {
        std::future::ready(list(&sim, &req, spec, |_| true))
    }
}

/// The instance GET handler of `spec` for a one-segment key (`.../{uuid}`): [`get_one`].
pub(crate) fn get_handler(
    spec: &'static ResourceSpec,
) -> impl Fn(State<Sim>, Path<String>, ApiRequest) -> Ready + Clone + Send + Sync + 'static {
    move |State(sim): State<Sim>, Path(key): Path<String>, req: ApiRequest| {
        std::future::ready(get_one(&sim, &req, spec, &key))
    }
}

/// Instance GET (default fields: all).
pub(crate) fn get_one(
    sim: &Sim,
    req: &ApiRequest,
    spec: &ResourceSpec,
    key: &str,
) -> Result<Response, ApiError> {
    sim.read(|store| {
        let tunnel = req.tunnel_svm(store)?;
        let rec = store
            .get(spec.collection, key)
            .filter(|v| tunnel_ok(v, &tunnel, spec.svm_scoped))
            .ok_or_else(ApiError::not_found)?;
        Ok(render_one(req, spec, rec))
    })
}

/// Renders one record with the request's field selection (default: all fields).
pub(crate) fn render_one(req: &ApiRequest, spec: &ResourceSpec, rec: &Value) -> Response {
    let sel = FieldSelection::for_query(&req.query, spec.identity, true);
    json_response(StatusCode::OK, &sel.project(rec))
}

/// Asks the backend, then inserts, re-running `check` under the lock before both.
pub(crate) async fn commit_create(
    sim: &Sim,
    collection: &str,
    key: &str,
    record: Value,
    check: impl Fn(&Store) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    sim.read(&check)?;
    sim.realise(crate::backend::Change::Created {
        collection: collection.to_string(),
        record: record.clone(),
    })
    .await?;
    sim.write(|s| {
        check(s)?;
        s.insert(collection, key, record);
        Ok(())
    })
}

/// 201 for a synchronous create: empty body, or `num_records`+`records` with
/// `return_records=true`; `Location` names the new record.
pub(crate) fn created(req: &ApiRequest, record: &Value, location: &str) -> Response {
    created_all(req, vec![record.clone()], location)
}

/// [`created`] for a POST that adds several records at once (igroup initiators, subsystem
/// hosts); `Location` names the first.
pub(crate) fn created_all(req: &ApiRequest, records: Vec<Value>, location: &str) -> Response {
    let body = if req.query.return_records == Some(true) {
        json!({"num_records": records.len(), "records": records})
    } else {
        json!({})
    };
    json_response_at(StatusCode::CREATED, &body, Some(location))
}

/// The answer to a mutation that started a job: 202 with `{"job":…}` (plus
/// `num_records`/`records` when `return_records=true` and `records` is given) and
/// `Location`; with `return_timeout=N` waits up to N s and answers 201 (POST) or 200
/// once the job succeeded, or the job's error when it failed.
pub(crate) async fn job_accepted(
    sim: &Sim,
    req: &ApiRequest,
    mut ticket: JobTicket,
    location: Option<String>,
    records: Option<Vec<Value>>,
) -> Result<Response, ApiError> {
    let mut body = json!({"job": ticket.link()});
    if let (Some(recs), Some(true)) = (records, req.query.return_records) {
        body["num_records"] = json!(recs.len());
        body["records"] = Value::Array(recs);
    }
    let mut status = StatusCode::ACCEPTED;
    let wait = req.query.return_timeout.unwrap_or(0);
    if wait > 0 && ticket.wait(std::time::Duration::from_secs(wait)).await {
        job_error(sim, &ticket.uuid)?;
        status = if req.method == http::Method::POST {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
    }
    Ok(json_response_at(status, &body, location.as_deref()))
}

fn job_error(sim: &Sim, uuid: &str) -> Result<(), ApiError> {
    let failed = sim.with_jobs(|j| {
        j.get(uuid)
            .filter(|r| r["state"] == "failure")
            .map(|r| (r["code"].as_i64().unwrap_or(0), r["message"].clone()))
    });
    match failed {
        Some((code, msg)) => Err(ApiError::new(
            400,
            code.to_string(),
            msg.as_str().unwrap_or_default(),
        )),
        None => Ok(()),
    }
}

/// The bodies of ONTAP's multi-record POST `{"records":[{…}, …]}`, or `None` for an
/// ordinary body. `records` must be the only field and a non-empty array of objects.
/// Such a POST always runs as one job (ontap-rest.md: wrapping a body in `records`
/// forces async).
pub(crate) fn bulk_records(req: &ApiRequest) -> Result<Option<Vec<Map<String, Value>>>, ApiError> {
    let body = req.body_obj();
    let Some(records) = body.get("records") else {
        return Ok(None);
    };
    if let Some(other) = body.keys().find(|k| *k != "records" && *k != "_links") {
        return Err(ApiError::unexpected_argument(other));
    }
    let Some(list) = records.as_array().filter(|l| !l.is_empty()) else {
        return Err(ApiError::invalid_value("records", &records.to_string()));
    };
    list.iter()
        .map(|r| {
            r.as_object()
                .cloned()
                .ok_or_else(|| ApiError::invalid_value("records", &r.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// The records a query PATCH/DELETE acts on: at least one filter is required; honours
/// the tunnel headers and `max_records`. Returns `(key, record)` pairs.
pub(crate) fn select_for_query(
    sim: &Sim,
    req: &ApiRequest,
    spec: &ResourceSpec,
    scope: impl Fn(&Value) -> bool,
) -> Result<Vec<(String, Value)>, ApiError> {
    if req.query.filters.is_empty() {
        return Err(ApiError::not_supported(format!(
            "{} on a collection requires a query.",
            req.method
        )));
    }
    sim.read(|store| {
        let tunnel = req.tunnel_svm(store)?;
        let max = req.query.max_records.unwrap_or(usize::MAX);
        Ok(store
            .iter(spec.collection)
            .filter(|(_, v)| {
                tunnel_ok(v, &tunnel, spec.svm_scoped) && scope(v) && req.query.matches(v)
            })
            .take(max)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    })
}

/// The answer to a query PATCH/DELETE that started jobs:
/// `{"jobs":[…],"num_records":N,"_links":{"self":…}}`, 202 unless `return_timeout`
/// lets every job finish (then 200).
pub(crate) async fn jobs_accepted(
    sim: &Sim,
    req: &ApiRequest,
    tickets: Vec<JobTicket>,
) -> Result<Response, ApiError> {
    let links: Vec<Value> = tickets.iter().map(JobTicket::link).collect();
    let body = json!({"jobs": links, "num_records": tickets.len(),
                      "_links": self_links(&req.self_href())});
    let wait = req.query.return_timeout.unwrap_or(0);
    let mut status = StatusCode::ACCEPTED;
    if wait > 0 {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(wait);
        let mut all = true;
        for mut t in tickets {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if !t.wait(left).await {
                all = false;
                break;
            }
            job_error(sim, &t.uuid)?;
        }
        if all {
            status = StatusCode::OK;
        }
    }
    Ok(json_response(status, &body))
}

/// The answer to a synchronous query PATCH/DELETE: 200 `{"num_records":N,"_links":…}`.
pub(crate) fn sync_query_done(req: &ApiRequest, n: usize) -> Response {
    json_response(
        StatusCode::OK,
        &json!({"num_records": n, "_links": self_links(&req.self_href())}),
    )
}

/// The description of a job for this request: `"METHOD /path[?query]"`.
pub(crate) fn job_description(req: &ApiRequest) -> String {
    format!("{} {}", req.method, req.self_href())
}
