//! `POST /api/storage/file/clone`: file clones inside a volume, run as a job.
//!
//! Real files come from NFS writes; in memory the simulator accepts any source path
//! (a backend may refuse) and records source and destination in the volume's file set
//! (`POST /__sim/files` adds files explicitly).

use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use serde_json::Value;

use super::{job_accepted, job_description, ApiError, ApiRequest, Sim};
use crate::api::{opt_bool, req_str};
use crate::backend::Change;
use crate::error::JobFailure;
use crate::store::{coll, str_at};

/// Job code when the destination exists and `overwrite_destination` is not set
/// (unverified against a real system).
pub(crate) const DESTINATION_EXISTS: i64 = 13;

const POSTABLE: &[&str] = &[
    "volume",
    "svm",
    "source_path",
    "destination_path",
    "overwrite_destination",
    "range",
    "autodelete",
    "is_backup",
    "token_uuid",
    "nosplit_entry",
];

pub(crate) fn routes() -> Router<Sim> {
    Router::new().route("/api/storage/file/clone", post(clone_h))
}

fn clean(p: &str) -> String {
    p.trim_start_matches('/').to_string()
}

async fn clone_h(State(sim): State<Sim>, req: ApiRequest) -> Result<Response, ApiError> {
    req.check_fields(POSTABLE)?;
    let body = req.body_obj();
    let source = clean(&req_str(&body, "source_path")?);
    let dest = clean(&req_str(&body, "destination_path")?);
    let overwrite = opt_bool(&body, "overwrite_destination")?.unwrap_or(false);
    if source.is_empty() {
        return Err(ApiError::invalid_value("source_path", ""));
    }
    if dest.is_empty() || dest == source {
        return Err(ApiError::invalid_value("destination_path", &dest));
    }
    let vref = body
        .get("volume")
        .cloned()
        .ok_or_else(|| ApiError::missing_value("volume.uuid"))?;
    let (vol_uuid, vol) = sim.read(|s| {
        let tunnel = req.tunnel_svm(s)?;
        let svm = match body.get("svm") {
            Some(r) => Some(s.resolve_svm(r)?.0),
            None => tunnel.map(|t| t.0),
        };
        let (u, v) = super::volumes::resolve_volume(s, svm.as_deref(), &vref, "volume")?;
        Ok::<_, ApiError>((u, v.clone()))
    })?;
    let work_sim = sim.clone();
    let svm = vol["svm"].clone();
    let ticket = sim.spawn_job(job_description(&req), Some(svm), async move {
        let exists = work_sim.read(|s| {
            s.files(&vol_uuid).is_some_and(|f| f.contains(&dest))
        });
        if exists && !overwrite {
            return Err(JobFailure::new(
                DESTINATION_EXISTS,
                format!(
                    "Clone destination \"{dest}\" already exists in volume \"{}\".",
                    str_at(&vol, "/name")
                ),
            ));
        }
        work_sim
            .realise(Change::FileCloned {
                volume: vol.clone(),
                source_path: source.clone(),
                destination_path: dest.clone(),
            })
            .await?;
        work_sim.write(|s| {
            if s.get(coll::VOLUMES, &vol_uuid).is_none() {
                return Err(JobFailure::new(917927, "The specified volume was not found."));
            }
            s.add_file(&vol_uuid, &source);
            s.add_file(&vol_uuid, &dest);
            Ok(())
        })
    });
    job_accepted(&sim, &req, ticket, None, None::<Vec<Value>>).await
}
