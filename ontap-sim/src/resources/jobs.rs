//! `/api/cluster/jobs`: the job table (not persisted; records expire after the TTL).

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use super::{list_records, render_one, ApiError, ApiRequest, ResourceSpec, Sim};

const SPEC: ResourceSpec = ResourceSpec {
    collection: "jobs",
    key_param: "uuid",
    identity: &["uuid"],
    svm_scoped: false,
};

pub(crate) fn routes() -> Router<Sim> {
    Router::new()
        .route("/api/cluster/jobs", get(list_h))
        .route("/api/cluster/jobs/{uuid}", get(get_h))
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
