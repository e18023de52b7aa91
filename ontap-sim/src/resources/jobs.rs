//! `/api/cluster/jobs`: the job table (not persisted; records expire after the TTL).
//! `PATCH /api/cluster/jobs/{uuid}?action=cancel` cancels a job whose work has not
//! started (it then ends in `failure`); `pause`/`resume` are refused as ONTAP refuses
//! them for jobs that do not support them (9.7 swagger `job_modify` codes).

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use http::StatusCode;
use serde_json::json;

use super::{json_response, list_records, render_one, ApiError, ApiRequest, ResourceSpec, Sim};
use crate::jobs::CancelRequest;

const SPEC: ResourceSpec = ResourceSpec {
    collection: "jobs",
    key_param: "uuid",
    identity: &["uuid"],
    svm_scoped: false,
};

pub(crate) fn routes() -> Router<Sim> {
    Router::new()
        .route("/api/cluster/jobs", get(list_h))
        .route("/api/cluster/jobs/{uuid}", get(get_h).patch(patch_h))
}

async fn list_h(State(sim): State<Sim>, req: ApiRequest) -> Result<Response, ApiError> {
    sim.with_jobs(|jobs| list_records(&req, &SPEC, jobs, |_| true))
}

async fn get_h(
    State(sim): State<Sim>,
    Path(uuid): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    sim.with_jobs(|jobs| {
        jobs.get(&uuid)
            .map(|j| render_one(&req, &SPEC, j))
            .ok_or_else(ApiError::not_found)
    })
}

fn action(req: &ApiRequest) -> Result<String, ApiError> {
    let raw = req.raw_query.as_deref().unwrap_or_default();
    let found = raw
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "action")
        .map(|(_, v)| v.to_string());
    let v = found.ok_or_else(|| ApiError::missing_value("action"))?;
    const ACTIONS: &[&str] = &["pause", "resume", "cancel"];
    if !ACTIONS.contains(&v.as_str()) {
        return Err(ApiError::invalid_enum("action", &v, ACTIONS));
    }
    Ok(v)
}

async fn patch_h(
    State(sim): State<Sim>,
    Path(uuid): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    req.check_fields(&[])?;
    let action = action(&req)?;
    let state = sim.with_jobs(|jobs| jobs.get(&uuid).map(|j| j["state"].clone()));
    let Some(state) = state else {
        return Err(ApiError::not_found());
    };
    if state == "success" || state == "failure" {
        return Err(ApiError::new(
            400,
            "458762",
            "Job is already in a terminal state.",
        ));
    }
    match action.as_str() {
        "pause" => Err(ApiError::new(
            400,
            "458783",
            "This job does not support pause.",
        )),
        "resume" => Err(ApiError::new(
            400,
            "458771",
            "The specified job is running.",
        )),
        _ => match sim.cancel_job(&uuid) {
            CancelRequest::Unknown => Err(ApiError::not_found()),
            CancelRequest::Terminal => Err(ApiError::new(
                400,
                "458762",
                "Job is already in a terminal state.",
            )),
            CancelRequest::Accepted => Ok(json_response(StatusCode::OK, &json!({}))),
        },
    }
}
