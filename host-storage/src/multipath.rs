//! dm-multipath: NetApp's device section merged into the configuration, multipathd state,
//! maps and paths (JSON from `multipathd`), the map of a LUN by WWID or serial, and removal
//! in the safe order before an iSCSI logout or an FC/NVMe disconnect.
//!
//! # Configuration without clobbering
//!
//! multipath reads `/etc/multipath.conf`, then every `*.conf` in its `config_dir`
//! (`/etc/multipath/conf.d` unless the main file says otherwise); later sections add to or
//! override earlier ones. kvmstor therefore never edits the administrator's file: it writes
//! its own drop-in `kvmstor-netapp.conf` holding only the NetApp `device` section. Only when
//! no `/etc/multipath.conf` exists at all (multipathd refuses to start on some distributions
//! without one) does it create a minimal one, marked as its own, which its undo removes.
//!
//! # Removal order
//!
//! [`Multipath::remove_lun`]: verify every path's serial, refuse when something holds the
//! map, flush the map's buffers, `multipath -f` (which fails rather than drop queued I/O;
//! "map in use" from a udev probe still holding it is retried after `udevadm settle`),
//! wait for the map to vanish, then delete each SCSI path and wait for it to vanish. Only
//! then may the caller log out ([`crate::iscsi::Iscsi::undo_login`] refuses while devices
//! remain).

use std::path::PathBuf;
use std::time::Duration;

use crate::change::Change;
use crate::error::{Error, Result};
use crate::files::{atomic_write, read_optional, HostRoot, MARKER_PREFIX};
use crate::ids::{LunSerial, Wwid};
use crate::parse::multipath::{parse_multipathd_maps_json, MultipathdMaps};
use crate::runner::{Command, Runner};
use crate::sysfs::Sysfs;
use crate::wait::{DeviceId, DeviceWaiter, WaitMode};

/// The drop-in file kvmstor owns inside multipath's `config_dir`.
pub const DROPIN_NAME: &str = "kvmstor-netapp.conf";

/// NetApp ONTAP's device section (the values of multipath-tools' built-in hardware table
/// for `NETAPP`/`LUN`, made explicit so an older or altered built-in table cannot differ).
pub const NETAPP_DEVICE_SECTION: &str = "\
devices {
\tdevice {
\t\tvendor \"NETAPP\"
\t\tproduct \"LUN\"
\t\tpath_grouping_policy \"group_by_prio\"
\t\tfeatures \"2 pg_init_retries 50\"
\t\tprio \"ontap\"
\t\tfailback \"immediate\"
\t\tno_path_retry \"queue\"
\t\tflush_on_last_del \"yes\"
\t\tdev_loss_tmo \"infinity\"
\t}
}
";

/// The `/etc/multipath.conf` kvmstor writes when none exists.
pub const MINIMAL_MAIN_CONF: &str = "\
# kvmstor:multipath (managed by kvmstor; removed by its undo)
defaults {
\tuser_friendly_names no
\tfind_multipaths no
}
";

/// How many times [`Multipath::remove_lun`] runs `multipath -f` while the map is in use.
pub const FLUSH_ATTEMPTS: u32 = 10;

/// The pause between two `multipath -f` attempts (after `udevadm settle`).
pub const FLUSH_RETRY_DELAY: Duration = Duration::from_millis(200);

/// Whether `multipath -f` failed because the map was open ("map in use"): transient
/// while udev probes a new or just-written device.
fn map_in_use(e: &Error) -> bool {
    matches!(e, Error::Command { program, stderr_tail, .. }
        if program == "multipath" && stderr_tail.contains("map in use"))
}

/// What [`MultipathConfig::ensure`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipathConfUndo {
    /// True when `/etc/multipath.conf` did not exist and kvmstor created it.
    pub created_main: bool,
    /// The drop-in file (host path under the root).
    pub dropin: PathBuf,
    /// The drop-in's previous contents (`None`: it did not exist).
    pub previous_dropin: Option<String>,
    /// Whether anything changed.
    pub change: Change,
}

/// multipath's configuration files.
///
/// ```
/// use host_storage::files::HostRoot;
/// use host_storage::multipath::{MultipathConfig, DROPIN_NAME};
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::create_dir(dir.path().join("etc")).unwrap();
/// std::fs::write(dir.path().join("etc/multipath.conf"), "defaults {\n\tfind_multipaths \"smart\"\n}\n").unwrap();
/// let conf = MultipathConfig::new(HostRoot::new(dir.path()));
/// let undo = conf.ensure()?;
/// assert!(undo.change.is_changed() && !undo.created_main);
/// assert!(dir.path().join("etc/multipath/conf.d").join(DROPIN_NAME).exists());
/// assert_eq!(conf.find_multipaths()?.as_deref(), Some("smart")); // reported, never edited
/// assert!(!conf.ensure()?.change.is_changed());
/// conf.undo(&undo)?;
/// assert!(!dir.path().join("etc/multipath/conf.d").join(DROPIN_NAME).exists());
/// # Ok::<(), host_storage::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct MultipathConfig {
    root: HostRoot,
}

/// The value of `key` in the `defaults` section of a multipath.conf text.
pub fn defaults_value(text: &str, key: &str) -> Option<String> {
    let mut depth = 0usize;
    let mut in_defaults = false;
    for raw in text.lines() {
        let line = raw.split(['#', '!']).next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if line.ends_with('{') {
            if depth == 0 {
                in_defaults = line.trim_end_matches('{').trim() == "defaults";
            }
            depth += 1;
            continue;
        }
        if line == "}" {
            depth = depth.saturating_sub(1);
            if depth == 0 {
                in_defaults = false;
            }
            continue;
        }
        if in_defaults && depth == 1 {
            let mut it = line.splitn(2, char::is_whitespace);
            if it.next() == Some(key) {
                return it.next().map(|v| v.trim().trim_matches('"').to_owned());
            }
        }
    }
    None
}

impl MultipathConfig {
    /// The configuration of the host under `root`.
    pub fn new(root: HostRoot) -> Self {
        MultipathConfig { root }
    }

    fn main_path(&self) -> PathBuf {
        self.root.path("/etc/multipath.conf")
    }

    fn main_text(&self) -> Result<Option<String>> {
        read_optional(&self.main_path())
    }

    /// The drop-in directory: `config_dir` from the main file, else `/etc/multipath/conf.d`
    /// (as a path under the root).
    pub fn config_dir(&self) -> Result<PathBuf> {
        let dir = self
            .main_text()?
            .and_then(|t| defaults_value(&t, "config_dir"))
            .filter(|d| d.starts_with('/'))
            .unwrap_or_else(|| "/etc/multipath/conf.d".to_owned());
        Ok(self.root.path(dir))
    }

    /// `find_multipaths` as configured in the main file (kvmstor reports it and never
    /// changes it: with `yes`, `smart` or `strict` a single-path LUN may get no map until a
    /// second path appears or its WWID is added with `multipath -a`).
    pub fn find_multipaths(&self) -> Result<Option<String>> {
        Ok(self
            .main_text()?
            .and_then(|t| defaults_value(&t, "find_multipaths")))
    }

    /// Writes the NetApp drop-in (and a minimal main file when there is none).
    pub fn ensure(&self) -> Result<MultipathConfUndo> {
        let main = self.main_path();
        let created_main = if self.main_text()?.is_none() {
            atomic_write(&main, MINIMAL_MAIN_CONF.as_bytes(), 0o644)?;
            tracing::info!(file = %main.display(), "created minimal multipath.conf");
            true
        } else {
            false
        };
        let dir = self.config_dir()?;
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(crate::IoOp::CreateDir, &dir, e))?;
        let dropin = dir.join(DROPIN_NAME);
        let previous = read_optional(&dropin)?;
        let want = format!(
            "{MARKER_PREFIX}netapp (managed by kvmstor; removed by its undo)\n{NETAPP_DEVICE_SECTION}"
        );
        let wrote = previous.as_deref() != Some(want.as_str());
        if wrote {
            atomic_write(&dropin, want.as_bytes(), 0o644)?;
            tracing::info!(file = %dropin.display(), "wrote NetApp multipath drop-in");
        }
        Ok(MultipathConfUndo {
            created_main,
            dropin,
            previous_dropin: if wrote { previous } else { None },
            change: Change::from(created_main || wrote),
        })
    }

    /// Reverts [`MultipathConfig::ensure`]. A main file is removed only if it still is
    /// kvmstor's minimal one byte for byte.
    pub fn undo(&self, undo: &MultipathConfUndo) -> Result<Change> {
        if !undo.change.is_changed() {
            return Ok(Change::Unchanged);
        }
        let mut change = Change::Unchanged;
        match &undo.previous_dropin {
            Some(prev) => {
                atomic_write(&undo.dropin, prev.as_bytes(), 0o644)?;
                change = Change::Changed;
            }
            None => match std::fs::remove_file(&undo.dropin) {
                Ok(()) => change = Change::Changed,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(crate::IoOp::Remove, &undo.dropin, e)),
            },
        }
        if undo.created_main && self.main_text()?.as_deref() == Some(MINIMAL_MAIN_CONF) {
            std::fs::remove_file(self.main_path())
                .map_err(|e| Error::io(crate::IoOp::Remove, self.main_path(), e))?;
            change = Change::Changed;
        }
        Ok(change)
    }
}

/// A multipath map found in sysfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapRef {
    /// The kernel name (`dm-3`).
    pub dm: String,
    /// The device-mapper name (the WWID, or an alias).
    pub name: String,
    /// The WWID.
    pub wwid: Wwid,
    /// Its paths (`sdX`).
    pub paths: Vec<String>,
}

/// What [`Multipath::remove_lun`] removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    /// The map flushed, if there was one.
    pub map: Option<String>,
    /// The SCSI paths deleted.
    pub paths: Vec<String>,
    /// Whether anything changed.
    pub change: Change,
}

/// multipathd and the maps of ONTAP LUNs.
#[derive(Debug)]
pub struct Multipath<R> {
    runner: R,
    sys: Sysfs,
    waiter: DeviceWaiter,
    root: HostRoot,
    timeout: Duration,
}

impl<R: Runner> Multipath<R> {
    /// multipath on the host under `root`; removals wait at most 30 s per device.
    pub fn new(runner: R, root: HostRoot) -> Self {
        Multipath {
            runner,
            sys: Sysfs::new(root.clone()),
            waiter: DeviceWaiter::new(root.clone()).mode(WaitMode::Poll),
            root,
            timeout: Duration::from_secs(30),
        }
    }

    /// Sets how long each removal waits for a device to vanish.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// True when multipathd answers `show daemon` with `running` or `idle`.
    pub async fn daemon_running(&self) -> Result<bool> {
        let out = self
            .runner
            .run(
                &Command::new("multipathd")
                    .args(["show", "daemon"])
                    .ok_codes(0..=255)
                    .timeout(Duration::from_secs(10)),
            )
            .await?;
        Ok(out.code() == Some(0)
            && out
                .stdout
                .split_whitespace()
                .any(|w| w == "running" || w == "idle"))
    }

    /// Every map with its path groups and paths (`multipathd show maps json`).
    pub async fn maps(&self) -> Result<MultipathdMaps> {
        let out = self
            .runner
            .run(&Command::new("multipathd").args(["show", "maps", "json"]))
            .await?;
        parse_multipathd_maps_json(&out.stdout)
    }

    /// Tells multipathd to re-read its configuration.
    pub async fn reconfigure(&self) -> Result<()> {
        self.runner
            .run(&Command::new("multipathd").arg("reconfigure"))
            .await
            .map(|_| ())
    }

    /// The map of `wwid` from sysfs, with its paths.
    pub fn find_map(&self, wwid: &Wwid) -> Result<Option<MapRef>> {
        let Some(dm) = self.sys.multipath_dm_by_wwid(wwid)? else {
            return Ok(None);
        };
        let name = self.sys.dm_name(&dm)?.unwrap_or_else(|| wwid.to_string());
        let paths = self.sys.slaves(&dm)?;
        Ok(Some(MapRef {
            dm,
            name,
            wwid: wwid.clone(),
            paths,
        }))
    }

    /// The map of an ONTAP LUN by its serial: the NetApp WWID (`3600a0980` + hex of the
    /// serial), else the map holding the disks with that VPD serial
    /// ([`Sysfs::multipath_dm_by_serial`]).
    pub fn find_lun_map(&self, serial: &LunSerial) -> Result<Option<MapRef>> {
        if let Some(m) = self.find_map(&serial.naa_wwid())? {
            return Ok(Some(m));
        }
        let Some(dm) = self.sys.multipath_dm_by_serial(serial)? else {
            return Ok(None);
        };
        let uuid = self
            .sys
            .read(&format!("block/{dm}/dm/uuid"))?
            .unwrap_or_default();
        let wwid = Wwid::from_dm_uuid(&uuid)?;
        let name = self.sys.dm_name(&dm)?.unwrap_or_else(|| wwid.to_string());
        let paths = self.sys.slaves(&dm)?;
        Ok(Some(MapRef {
            dm,
            name,
            wwid,
            paths,
        }))
    }

    /// Removes the map and every SCSI path of an ONTAP LUN, in the safe order. Paths are
    /// verified by serial first: a path of another LUN stops the removal before anything
    /// is touched. Nothing to remove is `Unchanged`.
    pub async fn remove_lun(&self, serial: &LunSerial) -> Result<Removed> {
        let id = DeviceId::ScsiSerial(serial.clone());
        let map = self.find_lun_map(serial)?;
        let mut paths = match &map {
            Some(m) => m.paths.clone(),
            None => Vec::new(),
        };
        for p in self.sys.scsi_disks_by_serial(serial)? {
            if !paths.contains(&p) {
                paths.push(p);
            }
        }
        paths.sort();
        for p in &paths {
            self.waiter.verify(p, &id)?;
        }
        if let Some(m) = &map {
            let holders = self.sys.holders(&m.dm)?;
            if !holders.is_empty() {
                return Err(Error::InUse {
                    resource: m.name.clone(),
                    users: holders,
                });
            }
            self.flushbufs(&m.dm).await?;
            self.flush_map(&m.name).await?;
            self.waiter.wait_gone(&m.dm, self.timeout).await?;
            tracing::info!(map = %m.name, "flushed multipath map");
        } else {
            // Used directly (no map): flush each path's buffers before deleting it.
            for p in &paths {
                self.flushbufs(p).await?;
            }
        }
        for p in &paths {
            if self.sys.delete_scsi_device(p)? {
                self.waiter.wait_gone(p, self.timeout).await?;
            }
        }
        let change = Change::from(map.is_some() || !paths.is_empty());
        Ok(Removed {
            map: map.map(|m| m.name),
            paths,
            change,
        })
    }

    /// `multipath -f NAME`, tried again while the map is only briefly open. Right after a
    /// device was written (mkfs) or appeared, udev's rules (blkid, by-id links) still hold it
    /// for a moment and multipath answers "map in use": wait for udev to settle and retry,
    /// at most [`FLUSH_ATTEMPTS`] times, [`FLUSH_RETRY_DELAY`] apart. Any other failure, or
    /// a map still in use after the last attempt, is returned as is.
    async fn flush_map(&self, name: &str) -> Result<()> {
        let cmd = Command::new("multipath")
            .args(["-f", name])
            .timeout(Duration::from_secs(300));
        let mut attempt = 1;
        loop {
            match self.runner.run(&cmd).await {
                Ok(_) => return Ok(()),
                Err(e) if attempt < FLUSH_ATTEMPTS && map_in_use(&e) => {
                    tracing::debug!(map = name, attempt, "multipath map in use; settling udev");
                    self.settle_udev().await;
                    tokio::time::sleep(FLUSH_RETRY_DELAY).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// `udevadm settle`: waits for queued udev events (and the probes they run) to end.
    /// Only a courtesy before a retry, so its failure is logged, not returned.
    async fn settle_udev(&self) {
        let cmd = Command::new("udevadm")
            .args(["settle", "--timeout=10"])
            .timeout(Duration::from_secs(15));
        if let Err(e) = self.runner.run(&cmd).await {
            tracing::debug!(error = %e, "udevadm settle failed");
        }
    }

    async fn flushbufs(&self, dev: &str) -> Result<()> {
        let node = self.root.path(format!("/dev/{dev}"));
        self.runner
            .run(
                &Command::new("blockdev")
                    .args(["--flushbufs", &node.display().to_string()])
                    .timeout(Duration::from_secs(30)),
            )
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::{Expect, FakeRunner};

    const MAP: &str = "3600a0980774f6a34712b572d41767173";
    const IN_USE: &str = "3600a0980774f6a34712b572d41767173: map in use\n";

    fn in_use() -> Expect {
        Expect::new("multipath", ["-f", MAP]).exit(1, "", IN_USE)
    }

    fn settle() -> Expect {
        Expect::new("udevadm", ["settle", "--timeout=10"])
    }

    #[tokio::test]
    async fn flush_map_settles_udev_and_retries_while_the_map_is_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let fake = FakeRunner::new();
        for _ in 0..3 {
            fake.expect(in_use()).expect(settle());
        }
        fake.expect(Expect::new("multipath", ["-f", MAP]));
        let mp = Multipath::new(&fake, HostRoot::new(dir.path()));
        let started = std::time::Instant::now();
        mp.flush_map(MAP).await.unwrap();
        fake.verify();
        assert_eq!(fake.calls().len(), 7);
        assert!(started.elapsed() >= FLUSH_RETRY_DELAY * 3);
    }

    #[tokio::test]
    async fn flush_map_gives_up_after_the_last_attempt_and_a_failed_settle_is_no_error() {
        let dir = tempfile::tempdir().unwrap();
        let fake = FakeRunner::new();
        for _ in 1..FLUSH_ATTEMPTS {
            fake.expect(in_use())
                .expect(settle().exit(1, "", "udevadm: timeout\n"));
        }
        fake.expect(in_use());
        let mp = Multipath::new(&fake, HostRoot::new(dir.path()));
        match mp.flush_map(MAP).await.unwrap_err() {
            Error::Command {
                program,
                args,
                stderr_tail,
                ..
            } => {
                assert_eq!(program, "multipath");
                assert_eq!(args, format!("-f {MAP}"));
                assert_eq!(stderr_tail, IN_USE.trim_end());
            }
            e => panic!("unexpected {e:?}"),
        }
        fake.verify();
        assert_eq!(fake.calls().len(), 2 * FLUSH_ATTEMPTS as usize - 1);
    }

    #[tokio::test]
    async fn flush_map_returns_other_failures_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fake = FakeRunner::new();
        fake.expect(Expect::new("multipath", ["-f", MAP]).exit(1, "", "DM message failed\n"));
        let mp = Multipath::new(&fake, HostRoot::new(dir.path()));
        let err = mp.flush_map(MAP).await.unwrap_err();
        assert!(!map_in_use(&err));
        assert!(err.to_string().ends_with("DM message failed"), "{err}");
        fake.verify();
        assert_eq!(fake.calls(), [format!("multipath -f {MAP}")]);
    }

    #[test]
    fn defaults_value_reads_only_the_defaults_section() {
        let text = "blacklist {\n\tfind_multipaths yes\n}\ndefaults {\n\tuser_friendly_names no # x\n\tfind_multipaths \"strict\"\n\tconfig_dir /etc/mp.d\n}\n";
        assert_eq!(
            defaults_value(text, "find_multipaths").as_deref(),
            Some("strict")
        );
        assert_eq!(
            defaults_value(text, "config_dir").as_deref(),
            Some("/etc/mp.d")
        );
        assert_eq!(defaults_value(text, "polling_interval"), None);
    }
}
