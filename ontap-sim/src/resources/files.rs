//! `POST /api/storage/file/clone`: file clones inside a volume, run as a job; and
//! `/api/storage/volumes/{volume.uuid}/files/{path}`: list (GET), create (POST, a file or
//! a `directory`) and delete (DELETE) entries of a volume's file set.
//!
//! Real files come from NFS writes; in memory the simulator accepts any source path
//! (a backend may refuse) and records source and destination in the volume's file set
//! (`POST /__sim/files` or the files POST add files explicitly). Directories are implied
//! by file paths; an explicit directory is recorded as `dir/`.

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
    Router::new()
        .route("/api/storage/file/clone", post(clone_h))
        // `files/%2E` (the root) arrives as `files` from clients that normalise dot
        // segments, as WHATWG URL parsers do.
        .route(
            "/api/storage/volumes/{volume}/files",
            axum::routing::get(
                |st: State<Sim>,
                 axum::extract::Path(v): axum::extract::Path<String>,
                 req: ApiRequest| {
                    files_get(st, axum::extract::Path((v, ".".to_string())), req)
                },
            ),
        )
        .route(
            "/api/storage/volumes/{volume}/files/{*path}",
            axum::routing::get(files_get)
                .post(files_post)
                .delete(files_delete),
        )
}

const FILES: super::ResourceSpec = super::ResourceSpec {
    collection: "files",
    key_param: "path",
    identity: &["name", "path", "type"],
    svm_scoped: false,
};

/// `.` (ONTAP's `%2E`) and `/` both mean the volume root.
fn norm_dir(p: &str) -> String {
    let p = p.trim_matches('/');
    if p == "." {
        String::new()
    } else {
        p.to_string()
    }
}

fn entry(vol: &Value, vol_uuid: &str, path: &str, is_dir: bool) -> Value {
    let name = path.rsplit('/').next().unwrap_or(path);
    serde_json::json!({
        "name": name, "path": path,
        "type": if is_dir { "directory" } else { "file" },
        "volume": super::volume_ref(vol_uuid, &str_at(vol, "/name")),
        "_links": {"self": {"href": format!("/api/storage/volumes/{vol_uuid}/files/{}",
                                              crate::query::percent_encode(path).replace('/', "%2F"))}},
    })
}

/// The entries of a directory (or the file itself) in a volume's file set.
fn entries(
    files: &std::collections::BTreeSet<String>,
    vol: &Value,
    vol_uuid: &str,
    path: &str,
) -> Option<Vec<Value>> {
    let clean: Vec<String> = files
        .iter()
        .map(|f| f.trim_end_matches('/').to_string())
        .collect();
    if !path.is_empty() && files.contains(path) {
        return Some(vec![entry(vol, vol_uuid, path, false)]);
    }
    let prefix = if path.is_empty() {
        String::new()
    } else {
        format!("{path}/")
    };
    let mut out = std::collections::BTreeMap::new();
    let mut exists = path.is_empty();
    for f in &clean {
        if f == path {
            exists = true;
            continue;
        }
        let Some(rest) = f.strip_prefix(&prefix) else {
            continue;
        };
        exists = true;
        let (child, is_dir) = match rest.split_once('/') {
            Some((d, _)) => (d.to_string(), true),
            None => (rest.to_string(), files.contains(&format!("{f}/"))),
        };
        let full = format!("{prefix}{child}");
        let was_dir = out.get(&full).copied().unwrap_or(false);
        out.insert(full, is_dir || was_dir);
    }
    exists.then(|| {
        out.into_iter()
            .map(|(p, d)| entry(vol, vol_uuid, &p, d))
            .collect()
    })
}

async fn files_get(
    State(sim): State<Sim>,
    axum::extract::Path((vol_uuid, path)): axum::extract::Path<(String, String)>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    let path = norm_dir(&path);
    sim.read(|s| {
        let vol = s
            .get(coll::VOLUMES, &vol_uuid)
            .ok_or_else(|| ApiError::new(404, "917927", "The specified volume was not found."))?;
        let empty = Default::default();
        let files = s.files(&vol_uuid).unwrap_or(&empty);
        let recs = entries(files, vol, &vol_uuid, &path)
            .ok_or_else(|| ApiError::not_found_msg(format!("Path \"{path}\" does not exist.")))?;
        let map: std::collections::BTreeMap<String, Value> =
            recs.into_iter().map(|r| (str_at(&r, "/path"), r)).collect();
        super::list_records(&req, &FILES, &map, |_| true)
    })
}

async fn files_post(
    State(sim): State<Sim>,
    axum::extract::Path((vol_uuid, path)): axum::extract::Path<(String, String)>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    req.check_fields(&["type", "data", "unix_permissions", "byte_offset"])?;
    let body = req.body_obj();
    let path = norm_dir(&path);
    if path.is_empty() {
        return Err(ApiError::invalid_value("path", "."));
    }
    let kind = crate::api::opt_enum(&body, "type", &["file", "directory"])?
        .unwrap_or_else(|| "file".into());
    sim.write(|s| {
        s.get(coll::VOLUMES, &vol_uuid)
            .ok_or_else(|| ApiError::new(404, "917927", "The specified volume was not found."))?;
        let key = if kind == "directory" {
            format!("{path}/")
        } else {
            path.clone()
        };
        s.add_file(&vol_uuid, &key);
        Ok::<_, ApiError>(())
    })?;
    Ok(super::json_response_at(
        http::StatusCode::CREATED,
        &serde_json::json!({}),
        Some(&format!(
            "/api/storage/volumes/{vol_uuid}/files/{}",
            path.replace('/', "%2F")
        )),
    ))
}

async fn files_delete(
    State(sim): State<Sim>,
    axum::extract::Path((vol_uuid, path)): axum::extract::Path<(String, String)>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    let path = norm_dir(&path);
    let recurse = req.query.flag("recurse")?.unwrap_or(false);
    sim.write(|s| {
        s.get(coll::VOLUMES, &vol_uuid)
            .ok_or_else(|| ApiError::new(404, "917927", "The specified volume was not found."))?;
        let removed = s.remove_files(&vol_uuid, &path, recurse);
        if removed == 0 {
            return Err(ApiError::not_found_msg(format!(
                "Path \"{path}\" does not exist or is a non-empty directory (recurse=true deletes it)."
            )));
        }
        Ok(())
    })?;
    Ok(super::json_response(
        http::StatusCode::OK,
        &serde_json::json!({}),
    ))
}

fn clean(p: &str) -> String {
    p.trim_start_matches("./")
        .trim_start_matches('/')
        .to_string()
}

/// `(snapshot name, path inside it)` when `source` is `.snapshot/<name>/<path>`.
fn snapshot_source(source: &str) -> Option<(&str, &str)> {
    let rest = source.strip_prefix(".snapshot/")?;
    let (name, path) = rest.split_once('/').unwrap_or((rest, ""));
    Some((name, path.trim_start_matches('/')))
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
    let (vol_uuid, vol, snapshot) = sim.read(|s| {
        let tunnel = req.tunnel_svm(s)?;
        let svm = match body.get("svm") {
            Some(r) => Some(s.resolve_svm(r)?.0),
            None => tunnel.map(|t| t.0),
        };
        let (u, v) = super::volumes::resolve_volume(s, svm.as_deref(), &vref, "volume")?;
        // `.snapshot/<name>/<path>` reads the source from a snapshot of the volume (the
        // 9.7 swagger's example source is `./.snapshot/snap1/src_file3`).
        let snapshot = match snapshot_source(&source) {
            None => None,
            Some((name, rest)) => {
                let (snap_uuid, _) =
                    super::snapshots::find_in_volume(s, &u, name).ok_or_else(|| {
                        ApiError::not_found_msg(format!(
                            "Snapshot copy \"{name}\" does not exist in volume \"{}\".",
                            str_at(v, "/name")
                        ))
                    })?;
                if rest.is_empty() {
                    return Err(ApiError::invalid_value("source_path", &source));
                }
                Some((snap_uuid.clone(), rest.to_string()))
            }
        };
        Ok::<_, ApiError>((u, v.clone(), snapshot))
    })?;
    let work_sim = sim.clone();
    let svm = vol["svm"].clone();
    let ticket = sim.spawn_job(job_description(&req), Some(svm), async move {
        let exists = work_sim.read(|s| s.files(&vol_uuid).is_some_and(|f| f.contains(&dest)));
        if exists && !overwrite {
            return Err(JobFailure::new(
                DESTINATION_EXISTS,
                format!(
                    "Clone destination \"{dest}\" already exists in volume \"{}\".",
                    str_at(&vol, "/name")
                ),
            ));
        }
        let (source_path, source_snapshot) = match &snapshot {
            Some((snap_uuid, rest)) => (rest.clone(), Some(snap_uuid.clone())),
            None => (source.clone(), None),
        };
        work_sim
            .realise(Change::FileCloned {
                volume: vol.clone(),
                source_path,
                source_snapshot,
                destination_path: dest.clone(),
            })
            .await?;
        work_sim.write(|s| {
            if s.get(coll::VOLUMES, &vol_uuid).is_none() {
                return Err(JobFailure::new(
                    917927,
                    "The specified volume was not found.",
                ));
            }
            if snapshot.is_none() {
                s.add_file(&vol_uuid, &source);
            }
            s.add_file(&vol_uuid, &dest);
            Ok(())
        })
    });
    job_accepted(&sim, &req, ticket, None, None::<Vec<Value>>).await
}
