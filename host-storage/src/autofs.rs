//! autofs direct maps owned by kvmstor: a master line `/- /etc/auto.NAME --timeout=N`, the
//! direct map `/etc/auto.NAME` with one entry per mount, and a reload so that automount
//! picks up the change (direct maps are only re-read on reload).

use std::path::{Path, PathBuf};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::change::Change;
use crate::cifs::CifsMount;
use crate::error::{Error, IoOp, Result};
use crate::files::{
    check_config_path, first_field, read_optional, second_field, EntryId, HostRoot, LineUndo,
    ManagedFile,
};
use crate::ids::ConfigToken;
use crate::nfs::NfsMount;
use crate::runner::{Command, Runner};

/// Where automount's pid file may be, in the order they are read.
const PID_FILES: [&str; 2] = ["/run/autofs.pid", "/var/run/autofs.pid"];

/// How automount is told to re-read its maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reload {
    /// systemd when `/run/systemd/system` exists (systemd is PID 1), else the signal.
    Auto,
    /// `systemctl try-reload-or-restart autofs.service` (does nothing when autofs is not
    /// running, so a host without autofs started is not an error).
    Systemd,
    /// `SIGHUP` to the pid in `/run/autofs.pid` (or `/var/run/autofs.pid`); no pid file means
    /// automount is not running and there is nothing to reload.
    Signal,
    /// Do not reload (tests, or a caller that reloads itself).
    Never,
}

/// What one `add` did, to undo it exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutofsUndo {
    /// The master-map line.
    pub master: LineUndo,
    /// The direct-map entry.
    pub entry: LineUndo,
    /// Whether anything changed.
    pub change: Change,
}

/// kvmstor's direct map.
///
/// ```
/// use host_storage::autofs::{Autofs, Reload};
/// use host_storage::files::{EntryId, HostRoot};
/// use host_storage::nfs::{NfsMount, NfsOptions, NfsServers, NfsVersion, Replica};
/// use host_storage::{FakeRunner, HostName};
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), host_storage::Error> {
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::create_dir(dir.path().join("etc")).unwrap();
/// let autofs = Autofs::new(HostRoot::new(dir.path()), FakeRunner::new(), EntryId::parse("kvmstor")?)
///     .timeout(120)
///     .reload(Reload::Never);
/// let m = NfsMount::new(
///     NfsServers::Replicated(vec![
///         Replica { host: HostName::parse("filer1")?, weight: Some(1) },
///         Replica { host: HostName::parse("filer2")?, weight: Some(5) },
///     ]),
///     "/iso", "/mnt/iso", NfsOptions::new(NfsVersion::V3).read_only(true))?;
/// let undo = autofs.add_nfs(&EntryId::parse("iso")?, &m).await?;
/// assert!(undo.change.is_changed());
/// let master = std::fs::read_to_string(dir.path().join("etc/auto.master")).unwrap();
/// assert!(master.ends_with("\n/- /etc/auto.kvmstor --timeout=120\n"));
/// let map = std::fs::read_to_string(dir.path().join("etc/auto.kvmstor")).unwrap();
/// assert!(map.ends_with("\n/mnt/iso -fstype=nfs,vers=3,ro filer1(1),filer2(5):/iso\n"));
/// autofs.undo(&undo).await?;
/// assert!(!dir.path().join("etc/auto.kvmstor").exists());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Autofs<R> {
    root: HostRoot,
    runner: R,
    map: EntryId,
    timeout: u32,
    reload: Reload,
}

impl<R: Runner> Autofs<R> {
    /// The direct map `/etc/auto.<map>` under `root`, with a 300 s unmount timeout and
    /// [`Reload::Auto`].
    pub fn new(root: HostRoot, runner: R, map: EntryId) -> Self {
        Autofs {
            root,
            runner,
            map,
            timeout: 300,
            reload: Reload::Auto,
        }
    }

    /// Sets the idle timeout (`--timeout=N`, seconds).
    pub fn timeout(mut self, secs: u32) -> Self {
        self.timeout = secs;
        self
    }

    /// Sets the reload strategy.
    pub fn reload(mut self, r: Reload) -> Self {
        self.reload = r;
        self
    }

    /// The map path on the host (`/etc/auto.<map>`).
    pub fn map_host_path(&self) -> PathBuf {
        PathBuf::from(format!("/etc/auto.{}", self.map))
    }

    /// The master-map line.
    pub fn master_line(&self) -> String {
        format!(
            "/- {} --timeout={}",
            self.map_host_path().display(),
            self.timeout
        )
    }

    fn master_file(&self) -> ManagedFile {
        ManagedFile {
            path: self.root.path("/etc/auto.master"),
            // Several `/-` lines may exist; ours is identified by its map path.
            key_of: second_field,
            new_mode: 0o644,
        }
    }

    fn map_file(&self) -> ManagedFile {
        ManagedFile {
            path: self.root.path(self.map_host_path()),
            key_of: first_field,
            new_mode: 0o644,
        }
    }

    /// Adds (or updates) the entry of an NFS mount.
    pub async fn add_nfs(&self, id: &EntryId, m: &NfsMount) -> Result<AutofsUndo> {
        self.add_entry(id, &m.autofs_entry(), m.target()).await
    }

    /// Adds (or updates) the entry of a CIFS mount.
    pub async fn add_cifs(&self, id: &EntryId, m: &CifsMount) -> Result<AutofsUndo> {
        self.add_entry(id, &m.autofs_entry(), m.target()).await
    }

    /// Adds (or updates) the entry of a local block device with a file system, such as
    /// `/mnt/data -fstype=ext4,ro :/dev/mapper/3600a0980…`.
    ///
    /// ```
    /// use host_storage::autofs::{Autofs, Reload};
    /// use host_storage::files::{EntryId, HostRoot};
    /// use host_storage::{ConfigToken, FakeRunner};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), host_storage::Error> {
    /// let dir = tempfile::tempdir().unwrap();
    /// std::fs::create_dir(dir.path().join("etc")).unwrap();
    /// let autofs = Autofs::new(HostRoot::new(dir.path()), FakeRunner::new(), EntryId::parse("kvmstor")?)
    ///     .reload(Reload::Never);
    /// let ext4 = ConfigToken::parse("ext4")?;
    /// let ro = ConfigToken::parse("ro")?;
    /// autofs.add_local(&EntryId::parse("data")?, "/mnt/data".as_ref(), &ext4, &[ro], "/dev/sdb".as_ref()).await?;
    /// let map = std::fs::read_to_string(dir.path().join("etc/auto.kvmstor")).unwrap();
    /// assert!(map.ends_with("\n/mnt/data -fstype=ext4,ro :/dev/sdb\n"));
    /// assert!(autofs.add_local(&EntryId::parse("bad")?, "/mnt/x".as_ref(), &ext4, &[], "dev/sdb".as_ref()).await.is_err());
    /// # Ok(()) }
    /// ```
    pub async fn add_local(
        &self,
        id: &EntryId,
        target: &Path,
        fstype: &ConfigToken,
        options: &[ConfigToken],
        device: &Path,
    ) -> Result<AutofsUndo> {
        check_config_path(target)?;
        check_config_path(device)?;
        let mut opts = format!("-fstype={fstype}");
        // A ConfigToken holds no ',' or '=': each is exactly one flag option.
        for o in options {
            opts.push(',');
            opts.push_str(o.as_str());
        }
        let line = format!("{} {opts} :{}", target.display(), device.display());
        self.add_entry(id, &line, target).await
    }

    async fn add_entry(&self, id: &EntryId, line: &str, target: &Path) -> Result<AutofsUndo> {
        // The map first: automount never sees a master line naming a missing map.
        let entry = self
            .map_file()
            .upsert(id, line, &target.display().to_string())?;
        let master_key = self.map_host_path().display().to_string();
        let master = match self
            .master_file()
            .upsert(&self.map, &self.master_line(), &master_key)
        {
            Ok(m) => m,
            Err(e) => {
                // Leave nothing half-done.
                let _ = self.map_file().undo(&entry);
                let _ = self.drop_empty_map();
                return Err(e);
            }
        };
        let change = entry.change.and(master.change);
        if change.is_changed() {
            self.do_reload().await?;
        }
        Ok(AutofsUndo {
            master,
            entry,
            change,
        })
    }

    /// Removes the entry owned by `id`; when the map has no entry left, removes the map file
    /// and the master line too. Reloads if anything changed. Already gone is `Unchanged`.
    pub async fn remove(&self, id: &EntryId) -> Result<Change> {
        let (c, _) = self.map_file().remove(id)?;
        let c = c.and(self.cleanup_if_empty()?);
        if c.is_changed() {
            self.do_reload().await?;
        }
        Ok(c)
    }

    /// Reverts one `add*` exactly (restoring a replaced entry, or removing an added one, and
    /// the master line and map file if they were added and are now unused).
    ///
    /// automount 5.1.8 exits when a reload leaves the master map without any entry: if the
    /// master line this undo removes was the only one, the reload stops the daemon (seen in
    /// the lab and reproduced on a plain host). The next `add*` then finds no daemon to tell;
    /// start the autofs service before relying on it again.
    pub async fn undo(&self, undo: &AutofsUndo) -> Result<Change> {
        if !undo.change.is_changed() {
            return Ok(Change::Unchanged);
        }
        let mut c = self.map_file().undo(&undo.entry)?;
        if undo.master.change.is_changed() && self.map_file().owned()?.is_empty() {
            c = c.and(self.master_file().undo(&undo.master)?);
        }
        c = c.and(self.drop_empty_map()?);
        if c.is_changed() {
            self.do_reload().await?;
        }
        Ok(c)
    }

    /// The `(id, line)` entries kvmstor owns in the map.
    pub fn owned(&self) -> Result<Vec<(String, String)>> {
        self.map_file().owned()
    }

    fn cleanup_if_empty(&self) -> Result<Change> {
        if !self.map_file().owned()?.is_empty() {
            return Ok(Change::Unchanged);
        }
        let (c, _) = self.master_file().remove(&self.map)?;
        Ok(c.and(self.drop_empty_map()?))
    }

    /// Deletes the map file when nothing but blank lines is left in it.
    fn drop_empty_map(&self) -> Result<Change> {
        let path = self.map_file().path;
        match read_optional(&path)? {
            Some(t) if t.trim().is_empty() => {
                std::fs::remove_file(&path).map_err(|e| Error::io(IoOp::Remove, &path, e))?;
                Ok(Change::Changed)
            }
            _ => Ok(Change::Unchanged),
        }
    }

    /// Tells automount to re-read its maps, per the [`Reload`] strategy.
    pub async fn do_reload(&self) -> Result<()> {
        match self.strategy() {
            Reload::Systemd => {
                self.runner
                    .run(
                        &Command::new("systemctl")
                            .args(["try-reload-or-restart", "autofs.service"]),
                    )
                    .await?;
            }
            Reload::Signal => self.signal_automount()?,
            Reload::Never | Reload::Auto => {}
        }
        Ok(())
    }

    /// Whether automount is running, as the [`Reload`] strategy reaches it: with systemd,
    /// `systemctl is-active autofs.service`; otherwise a pid file (`/run/autofs.pid`, then
    /// `/var/run/autofs.pid`) naming a process whose `/proc/<pid>/comm` (under the host
    /// root) is `automount`, so a stale pid taken by another program does not count.
    /// `Ok(None)` with [`Reload::Never`]: the caller looks after automount.
    ///
    /// ```
    /// use host_storage::autofs::{Autofs, Reload};
    /// use host_storage::files::{EntryId, HostRoot};
    /// use host_storage::FakeRunner;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let dir = tempfile::tempdir().unwrap();
    /// let root = HostRoot::new(dir.path());
    /// let map = EntryId::parse("kvmstor").unwrap();
    /// let autofs = Autofs::new(root.clone(), FakeRunner::new(), map).reload(Reload::Signal);
    /// assert_eq!(autofs.daemon().await.unwrap(), Some(false)); // no pid file
    ///
    /// std::fs::create_dir_all(root.path("/run")).unwrap();
    /// std::fs::create_dir_all(root.path("/proc/4242")).unwrap();
    /// std::fs::write(root.path("/run/autofs.pid"), "4242\n").unwrap();
    /// std::fs::write(root.path("/proc/4242/comm"), "automount\n").unwrap();
    /// assert_eq!(autofs.daemon().await.unwrap(), Some(true));
    /// assert!(autofs.require_daemon().await.is_ok());
    ///
    /// // The pid now belongs to another program: automount is gone.
    /// std::fs::write(root.path("/proc/4242/comm"), "bash\n").unwrap();
    /// let err = autofs.require_daemon().await.unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "automount is not running: /run/autofs.pid names pid 4242, which is bash"
    /// );
    /// # }
    /// ```
    pub async fn daemon(&self) -> Result<Option<bool>> {
        Ok(self.daemon_evidence().await?.map(|e| e.is_none()))
    }

    /// [`Error::NotRunning`] unless automount is running ([`Autofs::daemon`]); `Ok` with
    /// [`Reload::Never`]. An autofs entry is only served once automount reads it: without
    /// the daemon its path stays a plain directory, and whatever is put there lands on the
    /// host's own disk.
    pub async fn require_daemon(&self) -> Result<()> {
        match self.daemon_evidence().await? {
            Some(Some(evidence)) => Err(Error::NotRunning {
                daemon: "automount",
                evidence,
            }),
            _ => Ok(()),
        }
    }

    /// `None` with [`Reload::Never`]; `Some(None)` when automount runs; `Some(Some(why))`
    /// when it does not, with what was checked.
    async fn daemon_evidence(&self) -> Result<Option<Option<String>>> {
        match self.strategy() {
            Reload::Never | Reload::Auto => Ok(None),
            Reload::Systemd => {
                let out = self
                    .runner
                    .run(
                        &Command::new("systemctl")
                            .args(["is-active", "autofs.service"])
                            // 3: inactive/failed/activating; 4: no such unit.
                            .ok_codes([0, 3, 4]),
                    )
                    .await?;
                let state = out.stdout.trim();
                Ok(Some(match state {
                    "active" | "reloading" => None,
                    "" => Some("systemctl is-active autofs.service: no state".to_owned()),
                    other => Some(format!("systemctl is-active autofs.service: {other}")),
                }))
            }
            Reload::Signal => {
                let mut seen = Vec::new();
                for pidfile in PID_FILES {
                    let Some(pid) = self.pid_in(pidfile)? else {
                        continue;
                    };
                    let comm = read_optional(&self.root.path(format!("/proc/{pid}/comm")))?;
                    match comm.as_deref().map(str::trim) {
                        Some("automount") => return Ok(Some(None)),
                        Some(other) => {
                            seen.push(format!("{pidfile} names pid {pid}, which is {other}"))
                        }
                        None => seen.push(format!("{pidfile} names pid {pid}, which is gone")),
                    }
                }
                Ok(Some(Some(if seen.is_empty() {
                    format!("no pid file ({})", PID_FILES.join(", "))
                } else {
                    seen.join("; ")
                })))
            }
        }
    }

    /// The strategy [`Reload::Auto`] stands for on this host.
    fn strategy(&self) -> Reload {
        match self.reload {
            Reload::Auto if self.root.path("/run/systemd/system").is_dir() => Reload::Systemd,
            Reload::Auto => Reload::Signal,
            other => other,
        }
    }

    /// The pid a pid file names (above 1), if the file exists and holds one.
    fn pid_in(&self, pidfile: &str) -> Result<Option<i32>> {
        Ok(read_optional(&self.root.path(pidfile))?
            .and_then(|t| t.trim().parse::<i32>().ok())
            .filter(|p| *p > 1))
    }

    fn signal_automount(&self) -> Result<()> {
        for pidfile in PID_FILES {
            let path = self.root.path(pidfile);
            let Some(pid) = self.pid_in(pidfile)? else {
                continue;
            };
            return match kill(Pid::from_raw(pid), Signal::SIGHUP) {
                Ok(()) => Ok(()),
                // A stale pid file: automount is not running, so nothing to reload.
                Err(nix::errno::Errno::ESRCH) => Ok(()),
                Err(source) => Err(Error::Sys {
                    op: IoOp::Signal,
                    path,
                    source,
                }),
            };
        }
        tracing::info!("automount is not running; no reload needed");
        Ok(())
    }
}
