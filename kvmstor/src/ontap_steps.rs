//! What the NFS, SMB and block steps do alike with the ONTAP objects they own: create one
//! unless it is there, find the one an undo may delete (by the UUID a run recorded, or by
//! name and ownership token) and delete it, "already gone" being success; a datastore's
//! volume is deleted that way.

use crate::env::Env;
use crate::error::StepError;
use crate::nfs::{find_volume, gone_ok, ontap_err};
use crate::saga::Applied;

/// An ONTAP object as the create and delete steps see it: its UUID and its comment, where
/// a run's ownership token is kept.
pub(crate) struct Owned {
    /// Its UUID.
    pub(crate) uuid: Option<String>,
    /// Its comment.
    pub(crate) comment: Option<String>,
}

/// Creates an ONTAP object unless one of that name is there: `find` looks it up by name,
/// `create` makes it (its failure reported as `operation`). One found counts as changed
/// only when it carries `token` (this run made it before a crash), so that an unwind
/// removes only what is this run's. The output is the object's UUID.
pub(crate) async fn create_once<F, Found, T>(
    operation: String,
    token: Option<&str>,
    find: F,
    create: impl std::future::Future<Output = ontap_client::Result<T>>,
) -> Result<Applied<String>, StepError>
where
    F: Fn() -> Found,
    Found: std::future::Future<Output = Result<Option<Owned>, StepError>>,
{
    if let Some(o) = find().await? {
        let ours = token.is_some() && o.comment.as_deref() == token;
        return Ok(Applied {
            changed: ours,
            output: o.uuid.unwrap_or_default(),
        });
    }
    create.await.map_err(ontap_err(operation.clone()))?;
    let uuid = find()
        .await?
        .and_then(|o| o.uuid)
        .ok_or(StepError::MissingField {
            operation,
            field: "uuid",
        })?;
    Ok(Applied::changed(uuid))
}

/// The UUID a delete acts on: the one a run recorded, else that of the object `find` finds
/// by name if it carries `token` (any object of that name when `token` is `None`).
async fn owned_uuid(
    recorded: Option<&str>,
    token: Option<&str>,
    find: impl std::future::Future<Output = Result<Option<Owned>, StepError>>,
) -> Result<Option<String>, StepError> {
    if let Some(u) = recorded.filter(|u| !u.is_empty()) {
        return Ok(Some(u.to_owned()));
    }
    Ok(find
        .await?
        .filter(|o| token.is_none() || o.comment.as_deref() == token)
        .map(|o| o.uuid.unwrap_or_default()))
}

/// Deletes, with `delete` (given its UUID), the object of UUID `recorded`, else the one
/// `find` finds by name if it carries `token` (any, when `token` is `None`). Nothing found
/// or already gone is success (`false`); a failure is reported as `operation`.
pub(crate) async fn delete_owned<D, Fut>(
    recorded: Option<&str>,
    token: Option<&str>,
    find: impl std::future::Future<Output = Result<Option<Owned>, StepError>>,
    delete: D,
    operation: String,
) -> Result<bool, StepError>
where
    D: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = ontap_client::Result<ontap_client::Completed>>,
{
    let Some(uuid) = owned_uuid(recorded, token, find).await? else {
        return Ok(false);
    };
    gone_ok(delete(uuid).await).map_err(ontap_err(operation))
}

/// The volume `svm/name` as [`Owned`]; `lookup` names the operation a failed lookup
/// reports.
pub(crate) async fn owned_volume(
    env: &Env,
    svm: &str,
    name: &str,
    lookup: String,
) -> Result<Option<Owned>, StepError> {
    Ok(find_volume(env, svm, name)
        .await
        .map_err(ontap_err(lookup))?
        .map(|v| Owned {
            uuid: v.uuid,
            comment: v.comment,
        }))
}

/// Deletes the volume `svm/name` (and its data): the one of UUID `recorded`, else the one
/// of that name if it carries `token` (any, when `token` is `None`). `lookup` names the
/// operation a failed lookup by name reports. Already gone is success (`false`).
pub(crate) async fn delete_volume(
    env: &Env,
    svm: &str,
    name: &str,
    token: Option<&str>,
    recorded: Option<&str>,
    lookup: String,
) -> Result<bool, StepError> {
    delete_owned(
        recorded,
        token,
        owned_volume(env, svm, name, lookup),
        |uuid| async move { env.ontap().volumes().delete(&uuid).await },
        format!("delete volume {svm}/{name}"),
    )
    .await
}
