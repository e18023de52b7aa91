//! [`ClusterHost`]: every step on one host, each idempotent, each returning what it changed
//! and how to undo it.

use std::path::{Path, PathBuf};

use host_storage::files::{atomic_write, EntryId, HostRoot, LineUndo};
use host_storage::fstab::{Fstab, FstabEntry};
use host_storage::mount::{MountKind, MountUndo, Mounter};
use host_storage::{Change, Command, IoOp, Runner};

use crate::device::{probe, verify_identity, Signature, TargetDevice};
use crate::error::{Error, Result, Step};
use crate::gfs2::tools::{
    fsck_gfs2, gfs2_jadd, parse_tunegfs2_list, tunegfs2_list, tunegfs2_lock_table,
};
use crate::gfs2::{CorosyncConf, DlmConf, Gfs2Format, Gfs2Info, COROSYNC_CONF, DLM_CONF};
use crate::names::{ClusterName, Label, LockTable};
use crate::ocfs2::o2cb::{parse_list_clusters, O2CB_DEFAULTS_DEBIAN};
use crate::ocfs2::tools::{
    debugfs_stats, fsck_ocfs2, parse_debugfs_stats, parse_mounted_detect, parse_mounted_full,
    tunefs_cloned_volume, tunefs_label, tunefs_slots,
};
use crate::ocfs2::{
    ClusterConf, DetectedVolume, FsckMode, MountedVolume, O2cbCommands, O2cbDefaults, Ocfs2Format,
    Ocfs2Stats, Region, CLUSTER_CONF,
};

/// A cluster file-system type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FsKind {
    /// OCFS2.
    Ocfs2,
    /// GFS2.
    Gfs2,
}

impl FsKind {
    /// The type name (`mount -t`, fstab, `blkid TYPE`).
    pub fn as_str(self) -> &'static str {
        match self {
            FsKind::Ocfs2 => "ocfs2",
            FsKind::Gfs2 => "gfs2",
        }
    }
}

/// Whether an undo may destroy data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WipeData {
    /// Keep the file system (the default undo of a format).
    No,
    /// Erase its signatures with `wipefs -a` (after the identity check).
    Yes,
}

/// What a format step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Formatted {
    /// The device.
    pub device: TargetDevice,
    /// The file system.
    pub kind: FsKind,
    /// The label (OCFS2) or lock table (GFS2).
    pub label: String,
    /// The file-system UUID `blkid` reports afterwards.
    pub uuid: Option<String>,
    /// `Unchanged` when the device already carried this file system with this label.
    pub change: Change,
}

/// A configuration file rewritten whole, with what it held before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileUndo {
    /// The file (under its host root).
    pub path: PathBuf,
    /// Its text before; `None` if it did not exist.
    pub previous: Option<String>,
    /// Whether the write changed it.
    pub change: Change,
}

/// An o2cb cluster brought online.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// The cluster.
    pub cluster: ClusterName,
    /// `Unchanged` when it already was online (undo then leaves it online).
    pub change: Change,
}

/// A label (OCFS2) or lock table (GFS2) set on a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relabeled {
    /// The device.
    pub device: TargetDevice,
    /// The file system.
    pub kind: FsKind,
    /// The label or lock table before.
    pub previous: String,
    /// Whether it changed.
    pub change: Change,
}

/// What `tunefs.ocfs2 --cloned-volume` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recloned {
    /// The clone's device.
    pub device: TargetDevice,
    /// Its UUID now.
    pub uuid: Region,
    /// Its label now.
    pub label: String,
    /// `Unchanged` when the UUID already differed from the parent's.
    pub change: Change,
}

/// The result of `fsck`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsckReport {
    /// Exit 0: no errors.
    pub clean: bool,
    /// The exit code (0, 1 corrected, 4 left uncorrected).
    pub exit_code: i32,
    /// Standard output.
    pub output: String,
    /// `Changed` when errors were corrected.
    pub change: Change,
}

/// A mount of a cluster file system, and its fstab line.
///
/// ```
/// use cluster_fs::{ClusterMount, FsKind};
/// let m = ClusterMount::new("/dev/mapper/3600a0980774f6a34663f57396c4f6b37", "/var/lib/vmstore", FsKind::Ocfs2)?;
/// assert_eq!(
///     m.fstab_entry()?.line(),
///     "/dev/mapper/3600a0980774f6a34663f57396c4f6b37 /var/lib/vmstore ocfs2 _netdev,noatime 0 0"
/// );
/// # Ok::<(), cluster_fs::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterMount {
    source: String,
    target: PathBuf,
    kind: FsKind,
    options: Vec<String>,
}

impl ClusterMount {
    /// Mounts `source` (a stable path: `/dev/mapper/<wwid>`, `/dev/disk/by-id/…`) on `target`
    /// with `_netdev,noatime` (`_netdev`: the network and cluster stack come first at boot).
    pub fn new(
        source: impl Into<String>,
        target: impl Into<PathBuf>,
        kind: FsKind,
    ) -> Result<Self> {
        let m = ClusterMount {
            source: source.into(),
            target: target.into(),
            kind,
            options: vec!["_netdev".into(), "noatime".into()],
        };
        m.fstab_entry()?;
        Ok(m)
    }

    /// Adds a mount option (validated with the fstab line).
    pub fn option(mut self, opt: impl Into<String>) -> Result<Self> {
        self.options.push(opt.into());
        self.fstab_entry()?;
        Ok(self)
    }

    /// The mount point.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// The options joined with commas.
    pub fn options(&self) -> String {
        self.options.join(",")
    }

    /// The fstab line.
    pub fn fstab_entry(&self) -> Result<FstabEntry> {
        FstabEntry::new(
            &self.source,
            &self.target,
            self.kind.as_str(),
            &self.options(),
        )
        .map_err(Error::host(Step::Fstab, self.target.display()))
    }

    /// `mount -t TYPE -o OPTIONS SOURCE TARGET`.
    pub fn command(&self) -> Command {
        Command::new("mount")
            .args(["-t", self.kind.as_str(), "-o", &self.options()])
            .arg(self.source.clone())
            .arg(self.target.display().to_string())
            .timeout(std::time::Duration::from_secs(120))
    }
}

/// Any step's undo, for callers that keep one list.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Undo {
    /// A configuration file write: restore or remove.
    File(FileUndo),
    /// An fstab line: remove or restore.
    Fstab(LineUndo),
    /// A mount: unmount (and remove the mount point it created).
    Mount(MountUndo),
    /// A registered cluster: unregister.
    Registered(Registered),
    /// A format: nothing (data is never destroyed by [`ClusterHost::undo`]; see
    /// [`ClusterHost::undo_format`]).
    Formatted(Formatted),
    /// A label change: set the old label back.
    Relabeled(Relabeled),
}

macro_rules! undo_from {
    ($($v:ident),*) => {$(
        impl From<$v> for Undo {
            fn from(u: $v) -> Self {
                Undo::$v(u)
            }
        }
    )*};
}
undo_from!(Registered, Formatted, Relabeled);
impl From<FileUndo> for Undo {
    fn from(u: FileUndo) -> Self {
        Undo::File(u)
    }
}
impl From<LineUndo> for Undo {
    fn from(u: LineUndo) -> Self {
        Undo::Fstab(u)
    }
}
impl From<MountUndo> for Undo {
    fn from(u: MountUndo) -> Self {
        Undo::Mount(u)
    }
}

/// One host's cluster file-system steps.
///
/// Destructive steps (format, tunefs, fsck repair, wipe) first check the device's identity
/// under the sysfs root, and formats refuse a device carrying any signature unless
/// overwriting was asked.
#[derive(Debug)]
pub struct ClusterHost<R> {
    runner: R,
    root: HostRoot,
    sysfs: PathBuf,
    mountinfo: PathBuf,
    o2cb_defaults: PathBuf,
    o2cb: O2cbCommands,
}

impl<R: Runner> ClusterHost<R> {
    /// The real host: files under `/`, `/sys`, `/proc/self/mountinfo`.
    pub fn new(runner: R) -> Self {
        ClusterHost {
            runner,
            root: HostRoot::system(),
            sysfs: PathBuf::from("/sys"),
            mountinfo: PathBuf::from("/proc/self/mountinfo"),
            o2cb_defaults: PathBuf::from(O2CB_DEFAULTS_DEBIAN),
            o2cb: O2cbCommands::default(),
        }
    }

    /// Configuration files, sysfs (`ROOT/sys`) and mountinfo (`ROOT/proc/self/mountinfo`)
    /// under another root; `o2cb` is then pointed at `ROOT/etc/ocfs2/cluster.conf`.
    pub fn with_root(mut self, root: HostRoot) -> Self {
        self.sysfs = root.path("/sys");
        self.mountinfo = root.path("/proc/self/mountinfo");
        self.o2cb_defaults = root.path(O2CB_DEFAULTS_DEBIAN);
        self.o2cb = O2cbCommands::with_config_file(root.path(CLUSTER_CONF));
        self.root = root;
        self
    }

    /// Another sysfs root (synthetic trees in tests).
    pub fn with_sysfs(mut self, sysfs: impl Into<PathBuf>) -> Self {
        self.sysfs = sysfs.into();
        self
    }

    /// Another mountinfo file.
    pub fn with_mountinfo(mut self, path: impl Into<PathBuf>) -> Self {
        self.mountinfo = path.into();
        self
    }

    /// Another o2cb settings file (host path, e.g. [`crate::ocfs2::o2cb::O2CB_DEFAULTS_SYSCONFIG`]).
    pub fn with_o2cb_defaults_file(mut self, host_path: &str) -> Self {
        self.o2cb_defaults = self.root.path(host_path);
        self
    }

    /// The `o2cb` command builder this host uses (for commands without a step here, such as
    /// `start-heartbeat`).
    pub fn o2cb_commands(&self) -> &O2cbCommands {
        &self.o2cb
    }

    /// The runner.
    pub fn runner(&self) -> &R {
        &self.runner
    }

    async fn run(
        &self,
        step: Step,
        target: impl std::fmt::Display,
        cmd: &Command,
    ) -> Result<host_storage::Output> {
        self.runner
            .run(cmd)
            .await
            .map_err(Error::host(step, target))
    }

    // ---- device checks ----

    /// Checks the device's identity (see [`crate::device`]).
    pub fn check_identity(&self, dev: &TargetDevice) -> Result<()> {
        verify_identity(&self.sysfs, dev)
    }

    /// What `blkid -p` finds on the device (read-only, no identity check).
    pub async fn probe(&self, dev: &TargetDevice) -> Result<Signature> {
        probe(&self.runner, dev.path()).await
    }

    async fn format_with(
        &self,
        dev: &TargetDevice,
        kind: FsKind,
        label: &str,
        overwrite: bool,
        cmd: Command,
    ) -> Result<Formatted> {
        self.check_identity(dev)?;
        let sig = self.probe(dev).await?;
        let done = |sig: Signature, change| Formatted {
            device: dev.clone(),
            kind,
            label: label.to_owned(),
            uuid: sig.uuid,
            change,
        };
        if sig.fs_type.as_deref() == Some(kind.as_str()) && sig.label.as_deref() == Some(label) {
            tracing::info!(device = %dev.path().display(), label, "already formatted");
            return Ok(done(sig, Change::Unchanged));
        }
        if !overwrite {
            if let Some(refusal) = sig.refusal(dev.path()) {
                return Err(refusal);
            }
        }
        self.run(Step::Format, dev.path().display(), &cmd).await?;
        tracing::info!(device = %dev.path().display(), fs = kind.as_str(), label, "formatted");
        let after = self.probe(dev).await?;
        Ok(done(after, Change::Changed))
    }

    /// Formats OCFS2, after the identity and signature checks. A device that already
    /// carries OCFS2 with this label is left as it is (`Unchanged`), so a retried step never
    /// formats twice.
    pub async fn format_ocfs2(&self, f: &Ocfs2Format) -> Result<Formatted> {
        self.format_with(
            f.device(),
            FsKind::Ocfs2,
            f.label().as_str(),
            f.is_overwrite(),
            f.command(),
        )
        .await
    }

    /// Formats GFS2 with `lock_dlm` (see [`ClusterHost::format_ocfs2`]; the label compared
    /// is the lock table).
    ///
    /// When the host has a `corosync.conf`, a lock table naming another cluster is refused
    /// ([`Error::ClusterConflict`]) before anything runs.
    pub async fn format_gfs2(&self, f: &Gfs2Format) -> Result<Formatted> {
        if let Some(text) = read_optional(&self.root.path(COROSYNC_CONF))? {
            CorosyncConf::parse(&text)?.check_lock_table(f.lock_table())?;
        }
        let table = f.lock_table().to_string();
        self.format_with(
            f.device(),
            FsKind::Gfs2,
            &table,
            f.is_overwrite(),
            f.command(),
        )
        .await
    }

    /// Undoes a format: with [`WipeData::No`] nothing happens (the data stays); with
    /// [`WipeData::Yes`] the identity is checked again and `wipefs -a` erases the
    /// signatures. A format that changed nothing is never wiped.
    pub async fn undo_format(&self, f: &Formatted, wipe: WipeData) -> Result<Change> {
        if wipe == WipeData::No || !f.change.is_changed() {
            return Ok(Change::Unchanged);
        }
        self.check_identity(&f.device)?;
        let sig = self.probe(&f.device).await?;
        if sig.is_blank() {
            return Ok(Change::Unchanged);
        }
        let cmd = Command::new("wipefs").arg("-a").arg(f.device.arg());
        self.run(Step::Wipe, f.device.path().display(), &cmd)
            .await?;
        Ok(Change::Changed)
    }

    // ---- OCFS2 volume ----

    /// `debugfs.ocfs2 -R stats` (read-only).
    pub async fn ocfs2_stats(&self, dev: &TargetDevice) -> Result<Ocfs2Stats> {
        let out = self
            .run(Step::Query, dev.path().display(), &debugfs_stats(dev))
            .await?;
        parse_debugfs_stats(&out.stdout)
    }

    /// Sets the OCFS2 label (identity checked; o2cb volumes need their cluster online).
    pub async fn set_ocfs2_label(&self, dev: &TargetDevice, label: &Label) -> Result<Relabeled> {
        self.check_identity(dev)?;
        let before = self.ocfs2_stats(dev).await?;
        let mut done = Relabeled {
            device: dev.clone(),
            kind: FsKind::Ocfs2,
            previous: before.label.clone(),
            change: Change::Unchanged,
        };
        if before.label != label.as_str() {
            self.run(Step::Tune, dev.path().display(), &tunefs_label(dev, label))
                .await?;
            done.change = Change::Changed;
        }
        Ok(done)
    }

    /// Grows the node slots to `slots` (at least `hosts`; shrinking is refused, growing has
    /// no undo because slots hold no data).
    pub async fn set_ocfs2_slots(
        &self,
        dev: &TargetDevice,
        slots: u16,
        hosts: u16,
    ) -> Result<Change> {
        if slots < hosts {
            return Err(Error::TooFewSlots {
                label: dev.path().display().to_string(),
                slots,
                hosts,
            });
        }
        self.check_identity(dev)?;
        let before = self.ocfs2_stats(dev).await?;
        if before.node_slots == slots {
            return Ok(Change::Unchanged);
        }
        if before.node_slots > slots {
            return Err(Error::WouldShrink {
                device: dev.path().to_owned(),
                current: before.node_slots,
                requested: slots,
            });
        }
        self.run(Step::Tune, dev.path().display(), &tunefs_slots(dev, slots))
            .await?;
        Ok(Change::Changed)
    }

    /// Gives the OCFS2 volume on a FlexClone LUN a new UUID (`tunefs.ocfs2
    /// --cloned-volume`) so it can be mounted beside its parent, whose UUID is `parent`.
    /// A clone whose UUID already differs is `Unchanged`. The new label is `<old>-cloned`;
    /// set another with [`ClusterHost::set_ocfs2_label`]. There is no undo: the old UUID is
    /// the parent's and must not come back.
    pub async fn reuuid_cloned_ocfs2(
        &self,
        dev: &TargetDevice,
        parent: &Region,
    ) -> Result<Recloned> {
        self.check_identity(dev)?;
        let before = self.ocfs2_stats(dev).await?;
        let mut change = Change::Unchanged;
        if &before.uuid == parent {
            self.run(Step::Tune, dev.path().display(), &tunefs_cloned_volume(dev))
                .await?;
            change = Change::Changed;
        }
        let after = self.ocfs2_stats(dev).await?;
        Ok(Recloned {
            device: dev.clone(),
            uuid: after.uuid,
            label: after.label,
            change,
        })
    }

    /// `fsck.ocfs2` (identity checked before a repair).
    pub async fn fsck_ocfs2(&self, dev: &TargetDevice, mode: FsckMode) -> Result<FsckReport> {
        if mode == FsckMode::Repair {
            self.check_identity(dev)?;
        }
        let out = self
            .run(Step::Fsck, dev.path().display(), &fsck_ocfs2(dev, mode))
            .await?;
        Ok(fsck_report(out))
    }

    /// `mounted.ocfs2 -d` over every device (or only `dev`).
    pub async fn detect_ocfs2(&self, dev: Option<&TargetDevice>) -> Result<Vec<DetectedVolume>> {
        let mut cmd = Command::new("mounted.ocfs2").arg("-d");
        if let Some(d) = dev {
            cmd = cmd.arg(d.arg());
        }
        let out = self.run(Step::Query, "mounted.ocfs2 -d", &cmd).await?;
        parse_mounted_detect(&out.stdout)
    }

    /// `mounted.ocfs2 -f`: which nodes have each volume mounted.
    pub async fn ocfs2_mounters(&self, dev: Option<&TargetDevice>) -> Result<Vec<MountedVolume>> {
        let mut cmd = Command::new("mounted.ocfs2").arg("-f");
        if let Some(d) = dev {
            cmd = cmd.arg(d.arg());
        }
        let out = self.run(Step::Query, "mounted.ocfs2 -f", &cmd).await?;
        parse_mounted_full(&out.stdout)
    }

    // ---- o2cb ----

    /// Merges `conf` into `cluster.conf` and rewrites it atomically if that changed it.
    pub fn write_cluster_conf(&self, conf: &ClusterConf) -> Result<FileUndo> {
        let path = self.root.path(CLUSTER_CONF);
        let previous = read_optional(&path)?;
        let mut merged = match &previous {
            Some(t) => ClusterConf::parse(t)?,
            None => ClusterConf::default(),
        };
        let _ = merged.merge(conf)?;
        write_if_changed(path, previous, merged.render())
    }

    /// Reads `cluster.conf` (missing: empty).
    pub fn read_cluster_conf(&self) -> Result<ClusterConf> {
        match read_optional(&self.root.path(CLUSTER_CONF))? {
            Some(t) => ClusterConf::parse(&t),
            None => Ok(ClusterConf::default()),
        }
    }

    /// Validates and writes the o2cb settings file.
    pub fn write_o2cb_defaults(&self, d: &O2cbDefaults) -> Result<FileUndo> {
        d.validate()?;
        let previous = read_optional(&self.o2cb_defaults)?;
        if let Some(p) = &previous {
            if O2cbDefaults::parse(p).ok().as_ref() == Some(d) {
                return Ok(FileUndo {
                    path: self.o2cb_defaults.clone(),
                    previous,
                    change: Change::Unchanged,
                });
            }
        }
        write_if_changed(self.o2cb_defaults.clone(), previous, d.render())
    }

    /// `o2cb list-clusters`.
    pub async fn list_clusters(&self) -> Result<Vec<ClusterName>> {
        let out = self
            .run(Step::O2cb, "list-clusters", &self.o2cb.list_clusters())
            .await?;
        parse_list_clusters(&out.stdout)
    }

    /// `o2cb cluster-status`: true when online.
    pub async fn cluster_online(&self, cluster: &ClusterName) -> Result<bool> {
        let out = self
            .run(Step::O2cb, cluster, &self.o2cb.cluster_status(cluster))
            .await?;
        Ok(out.code() == Some(0))
    }

    /// Brings the cluster online (`register-cluster`) unless it already is. The cluster must
    /// be in `cluster.conf` ([`Error::UnknownCluster`] otherwise).
    pub async fn register_cluster(&self, cluster: &ClusterName) -> Result<Registered> {
        if self.read_cluster_conf()?.cluster(cluster).is_none() {
            return Err(Error::UnknownCluster {
                cluster: cluster.to_string(),
                path: self.root.path(CLUSTER_CONF),
            });
        }
        if self.cluster_online(cluster).await? {
            return Ok(Registered {
                cluster: cluster.clone(),
                change: Change::Unchanged,
            });
        }
        self.run(Step::O2cb, cluster, &self.o2cb.register_cluster(cluster))
            .await?;
        Ok(Registered {
            cluster: cluster.clone(),
            change: Change::Changed,
        })
    }

    // ---- GFS2 ----

    /// Merges `conf` into `corosync.conf` and rewrites it atomically if that changed it.
    pub fn write_corosync(&self, conf: &CorosyncConf) -> Result<FileUndo> {
        let path = self.root.path(COROSYNC_CONF);
        let previous = read_optional(&path)?;
        let mut merged = match &previous {
            Some(t) => CorosyncConf::parse(t)?,
            None => conf.clone(),
        };
        let _ = merged.merge(conf)?;
        merged.transport = conf.transport;
        merged.crypto = conf.crypto;
        merged.wait_for_all = conf.wait_for_all;
        if previous
            .as_deref()
            .map(CorosyncConf::parse)
            .transpose()?
            .as_ref()
            == Some(&merged)
        {
            return Ok(FileUndo {
                path,
                previous,
                change: Change::Unchanged,
            });
        }
        write_if_changed(path, previous, merged.render()?)
    }

    /// Writes `/etc/dlm/dlm.conf` (whole file).
    pub fn write_dlm_conf(&self, conf: &DlmConf) -> Result<FileUndo> {
        let path = self.root.path(DLM_CONF);
        let previous = read_optional(&path)?;
        if previous
            .as_deref()
            .map(DlmConf::parse)
            .transpose()?
            .as_ref()
            == Some(conf)
        {
            return Ok(FileUndo {
                path,
                previous,
                change: Change::Unchanged,
            });
        }
        write_if_changed(path, previous, conf.render())
    }

    /// `tunegfs2 -l` (read-only).
    pub async fn gfs2_info(&self, dev: &TargetDevice) -> Result<Gfs2Info> {
        let out = self
            .run(Step::Query, dev.path().display(), &tunegfs2_list(dev))
            .await?;
        parse_tunegfs2_list(&out.stdout)
    }

    /// Sets the GFS2 lock table (also its label), identity checked; unmounted volumes only.
    pub async fn set_gfs2_lock_table(
        &self,
        dev: &TargetDevice,
        table: &LockTable,
    ) -> Result<Relabeled> {
        self.check_identity(dev)?;
        let before = self.gfs2_info(dev).await?;
        let mut done = Relabeled {
            device: dev.clone(),
            kind: FsKind::Gfs2,
            previous: before.label.clone(),
            change: Change::Unchanged,
        };
        if before.lock_table.as_ref() != Some(table) {
            self.run(
                Step::Tune,
                dev.path().display(),
                &tunegfs2_lock_table(dev, table),
            )
            .await?;
            done.change = Change::Changed;
        }
        Ok(done)
    }

    /// Adds journals to a mounted GFS2 so that `hosts` hosts can mount it, given the
    /// `current` journal count (from the format step or the cluster plan). No undo:
    /// journals cannot be removed, and they hold no data.
    pub async fn add_gfs2_journals(
        &self,
        mount_point: &Path,
        current: u16,
        hosts: u16,
    ) -> Result<Change> {
        if current >= hosts {
            return Ok(Change::Unchanged);
        }
        let cmd = gfs2_jadd(mount_point, hosts - current);
        self.run(Step::AddJournals, mount_point.display(), &cmd)
            .await?;
        Ok(Change::Changed)
    }

    /// `fsck.gfs2` (identity checked before a repair).
    pub async fn fsck_gfs2(&self, dev: &TargetDevice, mode: FsckMode) -> Result<FsckReport> {
        if mode == FsckMode::Repair {
            self.check_identity(dev)?;
        }
        let out = self
            .run(Step::Fsck, dev.path().display(), &fsck_gfs2(dev, mode))
            .await?;
        Ok(fsck_report(out))
    }

    // ---- mount and fstab ----

    fn mounter(&self) -> Mounter<&R> {
        Mounter::new(&self.runner).with_mountinfo(&self.mountinfo)
    }

    /// Mounts now (creating the mount point). `Unchanged` when it already is mounted there.
    pub async fn mount(&self, m: &ClusterMount) -> Result<MountUndo> {
        let target = m.target();
        let err = Error::host(Step::Mount, target.display());
        if let Some(found) = self
            .mounter()
            .find(target)
            .map_err(Error::host(Step::Mount, target.display()))?
        {
            if same_device(&found.source, &m.source) && found.fstype == m.kind.as_str() {
                return Ok(MountUndo {
                    target: target.to_owned(),
                    change: Change::Unchanged,
                    created_dir: false,
                    kind: MountKind::Program,
                });
            }
            return Err(err(host_storage::Error::MountedElsewhere {
                target: target.to_owned(),
                found_source: found.source,
                found_fstype: found.fstype,
            }));
        }
        let created_dir = if target.is_dir() {
            false
        } else {
            std::fs::create_dir_all(target).map_err(|e| Error::io(IoOp::CreateDir, target, e))?;
            true
        };
        if let Err(e) = self.runner.run(&m.command()).await {
            if created_dir {
                let _ = std::fs::remove_dir(target);
            }
            return Err(err(e));
        }
        Ok(MountUndo {
            target: target.to_owned(),
            change: Change::Changed,
            created_dir,
            kind: MountKind::Program,
        })
    }

    /// Adds the `/etc/fstab` line (owned by `id`).
    pub fn add_fstab(&self, id: &EntryId, m: &ClusterMount) -> Result<LineUndo> {
        Fstab::new(&self.root)
            .add(id, &m.fstab_entry()?)
            .map_err(Error::host(Step::Fstab, m.target().display()))
    }

    /// Undoes one step. Never destroys data: a format's undo does nothing here (see
    /// [`ClusterHost::undo_format`]); already undone is `Unchanged`.
    pub async fn undo(&self, undo: &Undo) -> Result<Change> {
        match undo {
            Undo::File(f) => undo_file(f),
            Undo::Fstab(l) => Fstab::new(&self.root)
                .undo(l)
                .map_err(Error::host(Step::Fstab, l.file.display())),
            Undo::Mount(m) => self
                .mounter()
                .undo(m)
                .await
                .map_err(Error::host(Step::Unmount, m.target.display())),
            Undo::Registered(r) => {
                if !r.change.is_changed() || !self.cluster_online(&r.cluster).await? {
                    return Ok(Change::Unchanged);
                }
                self.run(
                    Step::O2cb,
                    &r.cluster,
                    &self.o2cb.unregister_cluster(&r.cluster),
                )
                .await?;
                Ok(Change::Changed)
            }
            Undo::Formatted(_) => Ok(Change::Unchanged),
            Undo::Relabeled(r) => {
                if !r.change.is_changed() {
                    return Ok(Change::Unchanged);
                }
                match r.kind {
                    FsKind::Ocfs2 => {
                        let label = Label::parse(&r.previous)?;
                        Ok(self.set_ocfs2_label(&r.device, &label).await?.change)
                    }
                    FsKind::Gfs2 => {
                        let table = LockTable::parse(&r.previous)?;
                        Ok(self.set_gfs2_lock_table(&r.device, &table).await?.change)
                    }
                }
            }
        }
    }
}

fn fsck_report(out: host_storage::Output) -> FsckReport {
    let code = out.code().unwrap_or(-1);
    FsckReport {
        clean: code == 0,
        exit_code: code,
        output: out.stdout,
        change: Change::from(code == 1),
    }
}

fn read_optional(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(IoOp::Read, path, e)),
    }
}

fn write_if_changed(path: PathBuf, previous: Option<String>, text: String) -> Result<FileUndo> {
    if previous.as_deref() == Some(text.as_str()) {
        return Ok(FileUndo {
            path,
            previous,
            change: Change::Unchanged,
        });
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(IoOp::CreateDir, dir, e))?;
    }
    atomic_write(&path, text.as_bytes(), 0o644)
        .map_err(Error::host(Step::Config, path.display()))?;
    tracing::info!(path = %path.display(), "configuration written");
    Ok(FileUndo {
        path,
        previous,
        change: Change::Changed,
    })
}

/// Restores a file to what it was before a write (removes it if it did not exist).
pub fn undo_file(f: &FileUndo) -> Result<Change> {
    if !f.change.is_changed() {
        return Ok(Change::Unchanged);
    }
    match &f.previous {
        Some(text) => {
            if read_optional(&f.path)?.as_deref() == Some(text.as_str()) {
                return Ok(Change::Unchanged);
            }
            atomic_write(&f.path, text.as_bytes(), 0o644)
                .map_err(Error::host(Step::Config, f.path.display()))?;
            Ok(Change::Changed)
        }
        None => match std::fs::remove_file(&f.path) {
            Ok(()) => Ok(Change::Changed),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Change::Unchanged),
            Err(e) => Err(Error::io(IoOp::Remove, &f.path, e)),
        },
    }
}

/// Whether the mount table's `found` source is the device `wanted` names. mount(8)
/// canonicalizes symlinked sources (`/dev/disk/by-id/nvme-uuid.…` shows as `/dev/nvme0n1`,
/// `/dev/mapper/<wwid>` may show as `/dev/dm-3`), so equal strings, equal canonical paths
/// or equal block device numbers all count as the same device.
fn same_device(found: &str, wanted: &str) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    if found == wanted {
        return true;
    }
    let (Ok(a), Ok(b)) = (std::fs::canonicalize(found), std::fs::canonicalize(wanted)) else {
        return false;
    };
    if a == b {
        return true;
    }
    match (std::fs::metadata(&a), std::fs::metadata(&b)) {
        (Ok(ma), Ok(mb)) => {
            ma.file_type().is_block_device()
                && mb.file_type().is_block_device()
                && ma.rdev() == mb.rdev()
        }
        _ => false,
    }
}

#[cfg(test)]
mod same_device_tests {
    use super::same_device;

    #[test]
    fn equal_strings_and_symlinks_to_one_path_are_the_same_device() {
        let dir = tempfile::tempdir().unwrap();
        let dev = dir.path().join("nvme0n1");
        std::fs::write(&dev, b"").unwrap();
        let link = dir.path().join("nvme-uuid.0f1e");
        std::os::unix::fs::symlink(&dev, &link).unwrap();
        let (dev, link) = (dev.to_str().unwrap(), link.to_str().unwrap());
        assert!(same_device(dev, dev));
        assert!(same_device(dev, link));
        assert!(same_device(link, dev));
        let other = dir.path().join("nvme1n1");
        std::fs::write(&other, b"").unwrap();
        assert!(!same_device(other.to_str().unwrap(), link));
        // Paths that do not exist here compare as strings only.
        assert!(!same_device("/dev/mapper/absent-a", "/dev/mapper/absent-b"));
        assert!(same_device("/dev/mapper/absent-a", "/dev/mapper/absent-a"));
    }
}
