//! What every datastore does on each of its hosts, whatever the protocol: the mount made
//! now (and taken away again), its `/etc/fstab` line or autofs direct-map entry, and the
//! libvirt pool on the mount point. The NFS, SMB and block workflows call these with their
//! own mount types; their ONTAP objects stay in their own modules.

use std::path::Path;
use std::time::Duration;

use host_storage::autofs::{Autofs, AutofsUndo, Reload};
use host_storage::files::{EntryId, LineUndo};
use host_storage::fstab::Fstab;
use host_storage::mount::{MountKind, MountUndo, Mounter};
use host_storage::parse::mountinfo::MountEntry;
use host_storage::Change;
use libvirt_pools::{Libvirt, RemoveMode};

use crate::env::{Env, Host};
use crate::error::StepError;
use crate::nfs::{NfsOutput, PoolRequest};
use crate::saga::Applied;

/// Maps a host-storage error to the step error of `operation` on `host`.
pub(crate) fn host_err(
    host: &str,
    operation: String,
) -> impl FnOnce(host_storage::Error) -> StepError {
    let host = host.to_owned();
    move |source| StepError::Host {
        host,
        operation,
        source: Box::new(source),
    }
}

/// Maps a libvirt error to the step error of `operation` on `host`.
pub(crate) fn lv_err(
    host: &str,
    operation: String,
) -> impl FnOnce(libvirt_pools::Error) -> StepError {
    let host = host.to_owned();
    move |source| StepError::Libvirt {
        host,
        operation,
        source: Box::new(source),
    }
}

/// The host's mounter, reading its mount table.
pub(crate) fn mounter(host: &Host) -> Mounter<std::sync::Arc<dyn host_storage::Runner>> {
    Mounter::new(host.runner()).with_mountinfo(host.mountinfo_path())
}

/// The host's `/etc/fstab`.
pub(crate) fn fstab(host: &Host) -> Fstab {
    Fstab::new(host.host_root())
}

/// kvmstor's autofs direct map `map` on the host, reloaded as the host says.
pub(crate) fn autofs(
    host: &Host,
    map: &str,
) -> host_storage::Result<Autofs<std::sync::Arc<dyn host_storage::Runner>>> {
    Ok(Autofs::new(
        host.host_root().clone(),
        host.runner(),
        EntryId::parse(map)?,
    )
    .reload(host.reload()))
}

/// Unmounts what is mounted on top of `target` when `is_ours` says it is this datastore's
/// mount, then removes the mount point when `remove_dir` and it is empty.
pub(crate) async fn unmount_if(
    host: &Host,
    target: &Path,
    remove_dir: bool,
    is_ours: impl FnOnce(&MountEntry) -> bool,
) -> Result<bool, StepError> {
    let err = || host_err(host.name(), format!("unmount {}", target.display()));
    let mounter = mounter(host);
    let mut changed = false;
    if let Some(found) = mounter.find(target).map_err(err())? {
        if is_ours(&found) {
            let undo = MountUndo {
                target: target.to_owned(),
                change: Change::Changed,
                created_dir: false,
                kind: MountKind::Program,
            };
            changed = mounter.undo(&undo).await.map_err(err())?.is_changed();
        }
    }
    if remove_dir {
        match std::fs::remove_dir(target) {
            Ok(()) => changed = true,
            // Not there, or not empty (not ours to empty): leave it.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::DirectoryNotEmpty
                ) => {}
            Err(e) => {
                return Err(err()(host_storage::Error::Io {
                    op: host_storage::IoOp::Remove,
                    path: target.to_owned(),
                    source: e,
                }))
            }
        }
    }
    Ok(changed)
}

/// The journaled output of a step that added or replaced an owned file line.
pub(crate) fn line_applied(u: &host_storage::files::LineUndo) -> Applied<NfsOutput> {
    let out = NfsOutput::Line {
        previous: u.previous.clone(),
    };
    if u.change.is_changed() {
        Applied::changed(out)
    } else {
        Applied::unchanged(out)
    }
}

/// Adds (or updates) the `/etc/fstab` line owned by `id` for `mount`, with `add` (the
/// fstab method for that mount type).
pub(crate) fn add_fstab<M>(
    host: &Host,
    id: &str,
    mount: host_storage::Result<M>,
    add: impl FnOnce(&Fstab, &EntryId, &M) -> host_storage::Result<LineUndo>,
) -> Result<Applied<NfsOutput>, StepError> {
    let err = || host_err(host.name(), format!("add fstab line {id}"));
    let m = mount.map_err(err())?;
    let id = EntryId::parse(id).map_err(err())?;
    let u = add(&fstab(host), &id, &m).map_err(err())?;
    Ok(line_applied(&u))
}

/// Adds (or updates) the entry `id` of `mount` to the autofs map `map` with `add` (the
/// autofs method for that mount type), once automount is known to run there; then waits
/// until automount has set up the trigger at `target`.
pub(crate) async fn add_autofs<M, F, Fut>(
    host: &Host,
    map: &str,
    id: &str,
    target: &Path,
    mount: host_storage::Result<M>,
    add: F,
) -> Result<Applied<NfsOutput>, StepError>
where
    F: FnOnce(Autofs<std::sync::Arc<dyn host_storage::Runner>>, EntryId, M) -> Fut,
    Fut: std::future::Future<Output = host_storage::Result<AutofsUndo>>,
{
    let err = || host_err(host.name(), format!("add autofs entry {id} to map {map}"));
    let m = mount.map_err(err())?;
    let eid = EntryId::parse(id).map_err(err())?;
    require_automount(host, map).await?;
    let u = add(autofs(host, map).map_err(err())?, eid, m)
        .await
        .map_err(err())?;
    settle_autofs(host, map, target, true)
        .await
        .map_err(err())?;
    Ok(line_applied(&u.entry))
}

/// Removes the `/etc/fstab` line owned by `id`.
pub(crate) fn remove_fstab(host: &Host, id: &str) -> Result<bool, StepError> {
    let err = || host_err(host.name(), format!("remove fstab line {id}"));
    let id = EntryId::parse(id).map_err(err())?;
    Ok(fstab(host).remove(&id).map_err(err())?.is_changed())
}

/// kvmstor's autofs direct map (`/etc/auto.kvmstor`).
pub(crate) const AUTOFS_MAP: &str = "kvmstor";

/// How long automount may take to set up or drop a direct-map trigger after a reload.
pub(crate) const AUTOFS_SETTLE: Duration = Duration::from_secs(20);

/// [`host_storage::Error::NotRunning`] when `host` asks automount to reload (any
/// [`Reload`] but `Never`) and no automount runs there: its entry would never be served,
/// and a pool built on the bare path would put VM images on the host's own disk. Checked
/// when an autofs attach is planned and again before its entry is written.
pub(crate) async fn require_automount(host: &Host, map: &str) -> Result<(), StepError> {
    let err = || host_err(host.name(), format!("check automount for map {map}"));
    autofs(host, map)
        .map_err(err())?
        .require_daemon()
        .await
        .map_err(err())
}

/// [`require_automount`] for kvmstor's map ([`AUTOFS_MAP`]) on each of `hosts` in turn,
/// as an attach that persists with autofs checks when it is planned.
pub(crate) async fn require_automount_on(env: &Env, hosts: &[String]) -> Result<(), StepError> {
    for h in hosts {
        require_automount(env.find_host(h)?, AUTOFS_MAP).await?;
    }
    Ok(())
}

/// Whether an autofs trigger is mounted at `target` (below whatever it mounted on top).
fn autofs_trigger(host: &Host, target: &Path) -> host_storage::Result<bool> {
    let path = host.mountinfo_path();
    let text = std::fs::read_to_string(path).map_err(|source| host_storage::Error::Io {
        op: host_storage::IoOp::Read,
        path: path.to_owned(),
        source,
    })?;
    Ok(host_storage::parse::mountinfo::parse_mountinfo(&text)?
        .iter()
        .any(|m| m.mount_point == target && m.fstype == "autofs"))
}

/// After a reload, waits until automount has set up (`present`) or dropped the trigger at
/// `target`. A direct-map entry is live only once its trigger is: before that, a libvirt
/// pool built on the path would put VM images on the host's own disk.
///
/// With [`Reload::Never`] nothing is awaited (the caller tells automount itself). Setting
/// a trigger up is awaited from the daemon [`require_automount`] found before the entry was
/// written; dropping one is done at once when no daemon runs (nothing serves the trigger).
pub(crate) async fn settle_autofs(
    host: &Host,
    map: &str,
    target: &Path,
    present: bool,
) -> host_storage::Result<()> {
    if host.reload() == Reload::Never {
        return Ok(());
    }
    if !present && autofs(host, map)?.daemon().await? == Some(false) {
        return Ok(());
    }
    let deadline = tokio::time::Instant::now() + AUTOFS_SETTLE;
    while autofs_trigger(host, target)? != present {
        if tokio::time::Instant::now() >= deadline {
            return Err(host_storage::Error::WaitTimeout {
                what: format!(
                    "automount to {} the trigger at {}",
                    if present { "set up" } else { "drop" },
                    target.display()
                ),
                after: AUTOFS_SETTLE,
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// Removes the autofs entry `id` of `map` whose file system, from `source`, is mounted on
/// `target`. Removing an entry makes automount drop an idle trigger only, so what it
/// mounted goes first; then the entry, and the wait for the trigger to go.
pub(crate) async fn remove_autofs(
    host: &Host,
    map: &str,
    id: &str,
    target: &Path,
    source: &str,
) -> Result<bool, StepError> {
    let err = || {
        host_err(
            host.name(),
            format!("remove autofs entry {id} from map {map}"),
        )
    };
    let eid = EntryId::parse(id).map_err(err())?;
    let unmounted = unmount_if(host, target, false, |found| {
        found.fstype != "autofs"
            && found
                .source
                .trim_end_matches('/')
                .eq_ignore_ascii_case(source.trim_end_matches('/'))
    })
    .await?;
    let removed = autofs(host, map)
        .map_err(err())?
        .remove(&eid)
        .await
        .map_err(err())?
        .is_changed();
    settle_autofs(host, map, target, false)
        .await
        .map_err(err())?;
    Ok(unmounted || removed)
}

/// Defines, builds, starts and autostarts the pool (nothing when it is there as asked).
pub(crate) async fn ensure_pool(
    host: &Host,
    pool: &PoolRequest,
) -> Result<Applied<NfsOutput>, StepError> {
    let err = || lv_err(host.name(), format!("define pool {}", pool.name));
    let spec = pool.spec().map_err(err())?;
    let lv = Libvirt::connect(host.uri()).await.map_err(err())?;
    Ok(
        if lv.pools().ensure(&spec).await.map_err(err())?.changed() {
            Applied::changed(NfsOutput::Nothing)
        } else {
            Applied::unchanged(NfsOutput::Nothing)
        },
    )
}

/// Removes the pool if it is there with this definition (a pool of that name defined
/// otherwise is someone else's and stays).
pub(crate) async fn remove_pool(
    host: &Host,
    pool: &PoolRequest,
    only_if_same: bool,
) -> Result<bool, StepError> {
    let err = || lv_err(host.name(), format!("remove pool {}", pool.name));
    let def = pool.def().map_err(err())?;
    let lv = Libvirt::connect(host.uri()).await.map_err(err())?;
    let Some(actual) = lv.pools().get(&def.name).await.map_err(err())? else {
        return Ok(false);
    };
    if only_if_same && !def.differences(&actual).is_empty() {
        tracing::info!(pool = %pool.name, "pool defined otherwise: not ours, left alone");
        return Ok(false);
    }
    Ok(lv
        .pools()
        .remove(&def.name, RemoveMode::KeepData)
        .await
        .map_err(err())?
        .changed())
}
