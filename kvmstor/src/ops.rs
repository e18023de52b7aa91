//! Everyday operations on an attached datastore's volume: snapshots (optionally with the
//! guests' file systems frozen through the QEMU guest agent), listing, tamper-proof locks,
//! restoring one VM disk from a snapshot, space-efficient VM disk clones from a template,
//! FlexClones of a whole datastore, growing a volume, and SnapMirror protection with
//! failover to a second SVM.
//!
//! Each operation is one ONTAP change (or a freeze / snapshot / thaw bracket), idempotent
//! where ONTAP allows it, so it needs no journal: a retry after a crash does the same thing
//! again or finds it done.
//!
//! ## Restoring one disk: a file clone from the snapshot
//! [`restore_file`] clones `.snapshot/<snapshot>/<file>` over `<file>` with
//! `POST /api/storage/file/clone` (`overwrite_destination`). The clone shares the
//! snapshot's blocks, so it is near-instant and takes no space until the VM writes, and the
//! snapshot stays as it was. The alternative, single-file SnapRestore, has no REST endpoint
//! in the 9.x API kvmstor targets (it is `volume snapshot restore-file` in the CLI) and
//! restores in place with no way to restore under another name first. The VM using the
//! disk must be shut off (or the disk detached) while it is replaced; [`restore_file_as`]
//! restores beside it instead.
//!
//! ## Guest freeze
//! [`Freeze::Domains`] names the running VMs of one host whose file systems are frozen
//! (`virsh domfsfreeze`, through the guest agent) right before the snapshot and thawed
//! (`virsh domfsthaw`) right after it, whatever the snapshot call returned: a freeze that
//! fails part-way thaws the domains already frozen, and a failed thaw is reported
//! ([`Error::ThawFailed`]) with the snapshot's fate. [`domains_on`] finds the running VMs
//! with a disk under a mount point.

use std::path::Path;
use std::time::Duration;

use host_storage::Command;
use ontap_client::models::{
    FileCloneCreate, FlexCloneCreate, SnapmirrorCreate, SnapmirrorState, SnapshotCreate,
};
use ontap_client::Query;
use serde::{Deserialize, Serialize};

use crate::env::{Env, Host};
use crate::error::{Error, Result, StepError};

/// The ONTAP volume under a datastore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatastoreVolume {
    /// SVM.
    pub svm: String,
    /// Volume name.
    pub volume: String,
}

impl DatastoreVolume {
    /// The volume `volume` of `svm`.
    pub fn new(svm: impl Into<String>, volume: impl Into<String>) -> Self {
        DatastoreVolume {
            svm: svm.into(),
            volume: volume.into(),
        }
    }

    /// `svm:volume`, the SnapMirror endpoint form.
    pub fn path(&self) -> String {
        format!("{}:{}", self.svm, self.volume)
    }
}

/// Guests to freeze around a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Freeze {
    /// No freeze: a crash-consistent snapshot.
    None,
    /// Freeze these running domains of `host` (through its libvirt URI).
    Domains {
        /// The host, as in the [`Env`].
        host: String,
        /// Domain names.
        domains: Vec<String>,
    },
}

/// A snapshot as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    /// Name.
    pub name: String,
    /// UUID.
    pub uuid: String,
    /// Creation time (ISO-8601), if reported.
    pub create_time: Option<String>,
    /// Locked against deletion until this time (ISO-8601), if locked.
    pub locked_until: Option<String>,
}

fn op_err(operation: String) -> impl FnOnce(ontap_client::Error) -> Error {
    move |source| Error::Operation {
        operation: operation.clone(),
        source: Box::new(StepError::Ontap {
            operation,
            source: Box::new(source),
        }),
    }
}

async fn volume_uuid(env: &Env, vol: &DatastoreVolume) -> Result<String> {
    let op = || format!("get volume {}", vol.path());
    env.ontap()
        .volumes()
        .by_name(&vol.svm, &vol.volume)
        .await
        .map_err(op_err(op()))?
        .and_then(|v| v.uuid)
        .ok_or_else(|| Error::Operation {
            operation: op(),
            source: Box::new(StepError::MissingField {
                operation: op(),
                field: "record",
            }),
        })
}

fn info(s: ontap_client::models::Snapshot) -> SnapshotInfo {
    let locked_until = if s.is_locked() {
        s.snaplock
            .as_ref()
            .and_then(|l| l.expiry_time.clone())
            .or_else(|| s.snaplock_expiry_time.clone())
    } else {
        None
    };
    SnapshotInfo {
        name: s.name.unwrap_or_default(),
        uuid: s.uuid.unwrap_or_default(),
        create_time: s.create_time,
        locked_until,
    }
}

const SNAPSHOT_FIELDS: [&str; 6] = [
    "uuid",
    "name",
    "create_time",
    "snaplock_expiry_time",
    "snaplock",
    "comment",
];

async fn find_snapshot(env: &Env, uuid: &str, name: &str) -> Result<Option<SnapshotInfo>> {
    Ok(env
        .ontap()
        .snapshots(uuid)
        .find(&Query::new().filter("name", name).fields(SNAPSHOT_FIELDS))
        .await
        .map_err(op_err(format!("get snapshot {name}")))?
        .map(info))
}

fn virsh(host: &Host, verb: &str, domain: &str) -> Command {
    Command::new("virsh")
        .args(["-c", host.uri(), verb, domain])
        .timeout(Duration::from_secs(60))
}

/// Thaws `domains` of `host`; the names of those whose thaw failed.
async fn thaw(host: &Host, domains: &[String]) -> Vec<String> {
    let mut failed = Vec::new();
    for d in domains.iter().rev() {
        if let Err(e) = host.runner().run(&virsh(host, "domfsthaw", d)).await {
            tracing::error!(domain = %d, host = %host.name(), error = %e, "thaw failed");
            failed.push(d.clone());
        }
    }
    failed
}

/// Takes snapshot `name` of the datastore's volume, freezing the guests first if asked
/// (see the module documentation). A snapshot of that name already there is returned as
/// it is (no freeze, nothing taken).
pub async fn snapshot(
    env: &Env,
    vol: &DatastoreVolume,
    name: &str,
    freeze: &Freeze,
) -> Result<SnapshotInfo> {
    let uuid = volume_uuid(env, vol).await?;
    if let Some(s) = find_snapshot(env, &uuid, name).await? {
        return Ok(s);
    }
    let (host, domains) = match freeze {
        Freeze::Domains { host, domains } => (
            Some(env.find_host(host).map_err(|source| Error::Operation {
                operation: format!("snapshot {} as {name}", vol.path()),
                source: Box::new(source),
            })?),
            domains.clone(),
        ),
        Freeze::None => (None, Vec::new()),
    };
    let mut frozen = Vec::new();
    if let Some(h) = host {
        for d in &domains {
            if let Err(source) = h.runner().run(&virsh(h, "domfsfreeze", d)).await {
                let stuck = thaw(h, &frozen).await;
                if !stuck.is_empty() {
                    return Err(Error::ThawFailed {
                        host: h.name().to_owned(),
                        domains: stuck,
                        snapshot_taken: false,
                    });
                }
                return Err(Error::Operation {
                    operation: format!("freeze domain {d} on {}", h.name()),
                    source: Box::new(StepError::Host {
                        host: h.name().to_owned(),
                        operation: format!("virsh domfsfreeze {d}"),
                        source: Box::new(source),
                    }),
                });
            }
            frozen.push(d.clone());
        }
    }
    let created = env
        .ontap()
        .snapshots(&uuid)
        .create(&SnapshotCreate::new(name).comment("kvmstor"))
        .await;
    if let Some(h) = host {
        let stuck = thaw(h, &frozen).await;
        if !stuck.is_empty() {
            return Err(Error::ThawFailed {
                host: h.name().to_owned(),
                domains: stuck,
                snapshot_taken: created.is_ok(),
            });
        }
    }
    created.map_err(op_err(format!("create snapshot {name} of {}", vol.path())))?;
    find_snapshot(env, &uuid, name)
        .await?
        .ok_or_else(|| Error::Operation {
            operation: format!("create snapshot {name} of {}", vol.path()),
            source: Box::new(StepError::MissingField {
                operation: format!("get snapshot {name}"),
                field: "record",
            }),
        })
}

/// The volume's snapshots, oldest first (by creation time, then name).
pub async fn list_snapshots(env: &Env, vol: &DatastoreVolume) -> Result<Vec<SnapshotInfo>> {
    let uuid = volume_uuid(env, vol).await?;
    let mut all: Vec<SnapshotInfo> = env
        .ontap()
        .snapshots(&uuid)
        .list_all(&Query::new().fields(SNAPSHOT_FIELDS))
        .await
        .map_err(op_err(format!("list snapshots of {}", vol.path())))?
        .into_iter()
        .map(info)
        .collect();
    all.sort_by(|a, b| (&a.create_time, &a.name).cmp(&(&b.create_time, &b.name)));
    Ok(all)
}

/// Locks snapshot `name` against deletion until `until` (ISO-8601, e.g.
/// `2027-01-01T00:00:00Z`): tamper-proof snapshots (ONTAP 9.12+; snapshot locking is
/// enabled on the volume first). A lock cannot be shortened or removed, so there is no undo.
pub async fn lock_snapshot(
    env: &Env,
    vol: &DatastoreVolume,
    name: &str,
    until: &str,
) -> Result<SnapshotInfo> {
    let uuid = volume_uuid(env, vol).await?;
    let snap = find_snapshot(env, &uuid, name)
        .await?
        .ok_or_else(|| Error::Operation {
            operation: format!("lock snapshot {name} of {}", vol.path()),
            source: Box::new(StepError::MissingField {
                operation: format!("get snapshot {name}"),
                field: "record",
            }),
        })?;
    if snap.locked_until.as_deref() == Some(until) {
        return Ok(snap);
    }
    env.ontap()
        .volumes()
        .set_snapshot_locking(&uuid, true)
        .await
        .map_err(op_err(format!("enable snapshot locking on {}", vol.path())))?;
    env.ontap()
        .snapshots(&uuid)
        .lock_until(&snap.uuid, until)
        .await
        .map_err(op_err(format!("lock snapshot {name} until {until}")))?;
    find_snapshot(env, &uuid, name)
        .await?
        .ok_or_else(|| Error::Operation {
            operation: format!("lock snapshot {name}"),
            source: Box::new(StepError::MissingField {
                operation: format!("get snapshot {name}"),
                field: "record",
            }),
        })
}

fn rel(path: &str) -> String {
    path.trim_start_matches('/').to_owned()
}

/// Clones VM disk `template` to `disk` inside the datastore's volume with ONTAP's file
/// clone (paths relative to the volume root; shares blocks with the template, near-instant).
/// An existing `disk` is refused by ONTAP, never overwritten.
pub async fn clone_file(
    env: &Env,
    vol: &DatastoreVolume,
    template: &str,
    disk: &str,
) -> Result<()> {
    env.ontap()
        .file_clone(
            &FileCloneCreate::new(vol.volume.as_str(), rel(template), rel(disk))
                .svm(vol.svm.as_str()),
        )
        .await
        .map_err(op_err(format!(
            "clone {template} to {disk} in {}",
            vol.path()
        )))?;
    Ok(())
}

/// Replaces VM disk `file` with its copy in snapshot `snapshot` (see the module
/// documentation; the VM must be off or the disk detached).
pub async fn restore_file(
    env: &Env,
    vol: &DatastoreVolume,
    snapshot: &str,
    file: &str,
) -> Result<()> {
    restore_into(env, vol, snapshot, file, file, true).await
}

/// Restores VM disk `file` from snapshot `snapshot` as `destination` (which must not
/// exist), leaving `file` as it is.
pub async fn restore_file_as(
    env: &Env,
    vol: &DatastoreVolume,
    snapshot: &str,
    file: &str,
    destination: &str,
) -> Result<()> {
    restore_into(env, vol, snapshot, file, destination, false).await
}

async fn restore_into(
    env: &Env,
    vol: &DatastoreVolume,
    snapshot: &str,
    file: &str,
    destination: &str,
    overwrite: bool,
) -> Result<()> {
    let uuid = volume_uuid(env, vol).await?;
    if find_snapshot(env, &uuid, snapshot).await?.is_none() {
        return Err(Error::Operation {
            operation: format!("restore {file} from snapshot {snapshot} of {}", vol.path()),
            source: Box::new(StepError::MissingField {
                operation: format!("get snapshot {snapshot}"),
                field: "record",
            }),
        });
    }
    let source = format!(".snapshot/{snapshot}/{}", rel(file));
    env.ontap()
        .file_clone(
            &FileCloneCreate::new(vol.volume.as_str(), source, rel(destination))
                .svm(vol.svm.as_str())
                .overwrite_destination(overwrite),
        )
        .await
        .map_err(op_err(format!(
            "restore {file} from snapshot {snapshot} as {destination}"
        )))?;
    Ok(())
}

/// Creates FlexClone `clone` of the datastore's volume (from `snapshot`, or from a new
/// snapshot ONTAP takes), junctioned at `/<clone>` so it can be attached as a new datastore
/// (an NFS datastore over it finds the volume there and keeps it on detach). For an OCFS2
/// datastore, attach the clone's LUN and give its file system a new UUID with
/// [`cluster_fs::ClusterHost::reuuid_cloned_ocfs2`] before mounting it beside the parent.
/// Returns the clone's UUID; a clone already there is returned as it is.
pub async fn flexclone(
    env: &Env,
    parent: &DatastoreVolume,
    clone: &str,
    snapshot: Option<&str>,
) -> Result<String> {
    let op = || format!("FlexClone {} as {clone}", parent.path());
    let vols = env.ontap().volumes();
    if let Some(v) = vols
        .by_name(&parent.svm, clone)
        .await
        .map_err(op_err(op()))?
    {
        return Ok(v.uuid.unwrap_or_default());
    }
    let mut body = FlexCloneCreate::new(clone, parent.svm.as_str(), parent.volume.as_str());
    if let Some(s) = snapshot {
        body = body.parent_snapshot(s);
    }
    let body = body.junction_path(format!("/{clone}"));
    let created = vols.create_flexclone(&body).await.map_err(op_err(op()))?;
    match created.record.and_then(|v| v.uuid) {
        Some(u) => Ok(u),
        None => volume_uuid(env, &DatastoreVolume::new(parent.svm.clone(), clone)).await,
    }
}

/// Grows the datastore's volume to `size` bytes (NFS and SMB clients see the new size at
/// once). Shrinking is refused.
pub async fn grow_volume(env: &Env, vol: &DatastoreVolume, size: u64) -> Result<()> {
    let found = env
        .ontap()
        .volumes()
        .find(
            &Query::new()
                .filter("svm.name", &vol.svm)
                .filter("name", &vol.volume)
                .fields(["uuid", "space.size"]),
        )
        .await
        .map_err(op_err(format!("get volume {}", vol.path())))?;
    let Some(v) = found else {
        return Err(Error::Invalid {
            field: "volume",
            value: vol.path(),
            reason: "no such volume",
        });
    };
    let current = v.space.as_ref().and_then(|s| s.size).unwrap_or(0);
    if size < current {
        return Err(Error::Invalid {
            field: "size",
            value: size.to_string(),
            reason: "a datastore only grows",
        });
    }
    if size == current {
        return Ok(());
    }
    env.ontap()
        .volumes()
        .resize(&v.uuid.unwrap_or_default(), size)
        .await
        .map_err(op_err(format!("resize {} to {size}", vol.path())))?;
    Ok(())
}

/// Protects the datastore's volume with a SnapMirror relationship to `destination` (a
/// volume ONTAP creates on the second SVM, `create_destination`), initialized. Returns the
/// relationship's UUID; a relationship to that destination already there is returned.
pub async fn protect(
    env: &Env,
    source: &DatastoreVolume,
    destination: &DatastoreVolume,
    policy: Option<&str>,
) -> Result<String> {
    let op = || format!("protect {} to {}", source.path(), destination.path());
    let rels = env.ontap().snapmirror_relationships();
    if let Some(r) = rels
        .by_destination(&destination.path())
        .await
        .map_err(op_err(op()))?
    {
        return Ok(r.uuid.unwrap_or_default());
    }
    let mut body =
        SnapmirrorCreate::new(source.path(), destination.path()).create_destination(true);
    if let Some(p) = policy {
        body = body.policy(p);
    }
    body = body.state(SnapmirrorState::Snapmirrored);
    rels.create(&body).await.map_err(op_err(op()))?;
    rels.by_destination(&destination.path())
        .await
        .map_err(op_err(op()))?
        .and_then(|r| r.uuid)
        .ok_or_else(|| Error::Operation {
            operation: op(),
            source: Box::new(StepError::MissingField {
                operation: op(),
                field: "uuid",
            }),
        })
}

/// Fails over to the SnapMirror destination: breaks the relationship so `destination`
/// becomes writable (attach it as a datastore next). Already broken is success.
pub async fn failover(env: &Env, destination: &DatastoreVolume) -> Result<()> {
    let op = || format!("fail over to {}", destination.path());
    let rels = env.ontap().snapmirror_relationships();
    let r = rels
        .by_destination(&destination.path())
        .await
        .map_err(op_err(op()))?
        .ok_or_else(|| Error::Operation {
            operation: op(),
            source: Box::new(StepError::MissingField {
                operation: op(),
                field: "relationship",
            }),
        })?;
    let uuid = r.uuid.clone().unwrap_or_default();
    let state = rels
        .get(&uuid, &Query::new().fields(["state"]))
        .await
        .map_err(op_err(op()))?
        .state;
    if state == Some(SnapmirrorState::BrokenOff) {
        return Ok(());
    }
    rels.break_off(&uuid).await.map_err(op_err(op()))?;
    Ok(())
}

/// The running domains of `host` with a disk under `mount_point` (`virsh list --name`,
/// then `virsh domblklist --details` per domain), for [`Freeze::Domains`].
pub async fn domains_on(host: &Host, mount_point: &Path) -> Result<Vec<String>> {
    let run = |args: Vec<String>| {
        Command::new("virsh")
            .args(["-c".to_owned(), host.uri().to_owned()])
            .args(args)
            .timeout(Duration::from_secs(60))
    };
    let err = |what: String| {
        let host = host.name().to_owned();
        move |source| Error::Operation {
            operation: what.clone(),
            source: Box::new(StepError::Host {
                host,
                operation: what,
                source: Box::new(source),
            }),
        }
    };
    let out = host
        .runner()
        .run(&run(vec![
            "list".into(),
            "--name".into(),
            "--state-running".into(),
        ]))
        .await
        .map_err(err("list running domains".into()))?;
    let prefix = mount_point.display().to_string();
    let mut found = Vec::new();
    for d in out.stdout.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let blk = host
            .runner()
            .run(&run(vec![
                "domblklist".into(),
                d.to_owned(),
                "--details".into(),
            ]))
            .await
            .map_err(err(format!("list disks of {d}")))?;
        // " Type   Device   Target   Source": the source is the last column.
        let on_datastore = blk.stdout.lines().skip(2).any(|l| {
            l.split_whitespace().last().is_some_and(|src| {
                src.strip_prefix(&prefix)
                    .is_some_and(|rest| rest.starts_with('/'))
            })
        });
        if on_datastore {
            found.push(d.to_owned());
        }
    }
    Ok(found)
}
