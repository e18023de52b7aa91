//! Mounting now: NFS and CIFS through the `mount` program (its helpers parse the options),
//! bind mounts through `mount(2)`. Whether a call changed anything is decided by reading
//! `/proc/self/mountinfo`.

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::change::Change;
use crate::cifs::CifsMount;
use crate::error::{Error, IoOp, Result};
use crate::nfs::NfsMount;
use crate::parse::mountinfo::{parse_mountinfo, MountEntry};
use crate::runner::{Command, Runner};

/// How a mount was made, hence how it is undone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MountKind {
    /// By the `mount` program; undone by `umount`.
    Program,
    /// By `mount(2)`; undone by `umount2(2)`.
    Syscall,
}

/// What one mount call did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountUndo {
    /// The mount point.
    pub target: PathBuf,
    /// Whether the call mounted anything.
    pub change: Change,
    /// True if the call created the mount-point directory (undo removes it).
    pub created_dir: bool,
    /// How it was mounted.
    pub kind: MountKind,
}

/// Mounts and unmounts, idempotently.
///
/// ```no_run
/// use host_storage::mount::Mounter;
/// use host_storage::nfs::{NfsMount, NfsOptions, NfsServers, NfsVersion};
/// use host_storage::{HostName, SystemRunner};
/// # async fn demo() -> Result<(), host_storage::Error> {
/// let mounter = Mounter::new(SystemRunner::new());
/// let m = NfsMount::new(NfsServers::One(HostName::parse("10.0.0.5")?), "/vm", "/mnt/vm",
///     NfsOptions::new(NfsVersion::V4_1).nconnect(4))?;
/// let undo = mounter.mount_nfs(&m).await?;   // Changed
/// assert!(!mounter.mount_nfs(&m).await?.change.is_changed()); // second time: Unchanged
/// mounter.undo(&undo).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Mounter<R> {
    runner: R,
    mountinfo: PathBuf,
}

impl<R: Runner> Mounter<R> {
    /// A mounter reading `/proc/self/mountinfo`.
    pub fn new(runner: R) -> Self {
        Mounter {
            runner,
            mountinfo: PathBuf::from("/proc/self/mountinfo"),
        }
    }

    /// Reads another mountinfo file (tests).
    pub fn with_mountinfo(mut self, path: impl Into<PathBuf>) -> Self {
        self.mountinfo = path.into();
        self
    }

    /// The mount on top at `target`, if any.
    pub fn find(&self, target: &Path) -> Result<Option<MountEntry>> {
        let text = std::fs::read_to_string(&self.mountinfo)
            .map_err(|e| Error::io(IoOp::Read, &self.mountinfo, e))?;
        Ok(parse_mountinfo(&text)?
            .into_iter()
            .rev()
            .find(|m| m.mount_point == target))
    }

    /// Checks what is mounted at `target`: `Some(undo)` when `source` of one of `fstypes`
    /// already is (nothing to do), an error when something else is.
    fn already(
        &self,
        target: &Path,
        source: &str,
        fstypes: &[&str],
        kind: MountKind,
    ) -> Result<Option<MountUndo>> {
        let Some(found) = self.find(target)? else {
            return Ok(None);
        };
        let same_source = found.source.trim_end_matches('/') == source.trim_end_matches('/');
        if same_source && fstypes.contains(&found.fstype.as_str()) {
            return Ok(Some(MountUndo {
                target: target.to_owned(),
                change: Change::Unchanged,
                created_dir: false,
                kind,
            }));
        }
        Err(Error::MountedElsewhere {
            target: target.to_owned(),
            found_source: found.source,
            found_fstype: found.fstype,
        })
    }

    fn ensure_dir(target: &Path) -> Result<bool> {
        if target.is_dir() {
            return Ok(false);
        }
        std::fs::create_dir_all(target).map_err(|e| Error::io(IoOp::CreateDir, target, e))?;
        Ok(true)
    }

    async fn mount_with(
        &self,
        target: &Path,
        source: &str,
        fstypes: &[&str],
        cmd: Command,
    ) -> Result<MountUndo> {
        if let Some(u) = self.already(target, source, fstypes, MountKind::Program)? {
            return Ok(u);
        }
        let created_dir = Self::ensure_dir(target)?;
        if let Err(e) = self.runner.run(&cmd).await {
            if created_dir {
                let _ = std::fs::remove_dir(target);
            }
            return Err(e);
        }
        tracing::info!(target = %target.display(), source, "mounted");
        Ok(MountUndo {
            target: target.to_owned(),
            change: Change::Changed,
            created_dir,
            kind: MountKind::Program,
        })
    }

    /// Mounts an NFS export (creating the mount point if needed). `Unchanged` when the
    /// same export is already mounted there; [`Error::MountedElsewhere`] when another is.
    pub async fn mount_nfs(&self, m: &NfsMount) -> Result<MountUndo> {
        let source = m.source()?;
        self.mount_with(m.target(), &source, &["nfs", "nfs4"], m.mount_command()?)
            .await
    }

    /// Mounts an SMB share (see [`Mounter::mount_nfs`]).
    pub async fn mount_cifs(&self, m: &CifsMount) -> Result<MountUndo> {
        self.mount_with(
            m.target(),
            &m.source(),
            &["cifs", "smb3"],
            m.mount_command(),
        )
        .await
    }

    /// Unmounts `target` with the `umount` program; not mounted is `Unchanged`.
    pub async fn unmount(&self, target: &Path) -> Result<Change> {
        if self.find(target)?.is_none() {
            return Ok(Change::Unchanged);
        }
        self.runner
            .run(&Command::new("umount").arg(target.display().to_string()))
            .await?;
        tracing::info!(target = %target.display(), "unmounted");
        Ok(Change::Changed)
    }

    /// Bind-mounts `source` on `target` with `mount(2)` (needs `CAP_SYS_ADMIN`).
    pub fn bind(&self, source: &Path, target: &Path) -> Result<MountUndo> {
        if let Some(u) = self.already_bind(source, target)? {
            return Ok(u);
        }
        let created_dir = Self::ensure_dir(target)?;
        if let Err(errno) = mount(
            Some(source),
            target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        ) {
            if created_dir {
                let _ = std::fs::remove_dir(target);
            }
            return Err(Error::Sys {
                op: IoOp::Mount,
                path: target.to_owned(),
                source: errno,
            });
        }
        Ok(MountUndo {
            target: target.to_owned(),
            change: Change::Changed,
            created_dir,
            kind: MountKind::Syscall,
        })
    }

    fn already_bind(&self, source: &Path, target: &Path) -> Result<Option<MountUndo>> {
        let Some(found) = self.find(target)? else {
            return Ok(None);
        };
        // A bind mount shows the source directory as its root within the file system.
        let rel = found.root.strip_prefix("/").unwrap_or(&found.root);
        if found.root == source || (!rel.as_os_str().is_empty() && source.ends_with(rel)) {
            return Ok(Some(MountUndo {
                target: target.to_owned(),
                change: Change::Unchanged,
                created_dir: false,
                kind: MountKind::Syscall,
            }));
        }
        Err(Error::MountedElsewhere {
            target: target.to_owned(),
            found_source: found.source,
            found_fstype: found.fstype,
        })
    }

    /// Reverts one mount call: unmounts if it mounted, then removes the directory if it
    /// created it. Already unmounted is fine.
    pub async fn undo(&self, undo: &MountUndo) -> Result<Change> {
        if !undo.change.is_changed() {
            return Ok(Change::Unchanged);
        }
        let mut c = match undo.kind {
            MountKind::Program => self.unmount(&undo.target).await?,
            MountKind::Syscall => {
                if self.find(&undo.target)?.is_some() {
                    umount2(&undo.target, MntFlags::empty()).map_err(|source| Error::Sys {
                        op: IoOp::Unmount,
                        path: undo.target.clone(),
                        source,
                    })?;
                    Change::Changed
                } else {
                    Change::Unchanged
                }
            }
        };
        if undo.created_dir {
            match std::fs::remove_dir(&undo.target) {
                Ok(()) => c = Change::Changed,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(IoOp::Remove, &undo.target, e)),
            }
        }
        Ok(c)
    }
}
