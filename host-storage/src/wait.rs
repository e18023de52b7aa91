//! Waiting for block devices: event-driven through udev, sysfs polling when no udev daemon
//! runs, always under a deadline.
//!
//! A device is never trusted by its name: whatever brought it to attention (a udev event, a
//! directory listing), its identity is read again from sysfs and compared with what was asked
//! ([`DeviceId`]). An `sdX` whose VPD serial differs is not "our LUN with a new name"; it is
//! some other LUN, or stale kernel data.
//!
//! The udev path subscribes to the `udev` netlink group (events after udevd has processed
//! them, so `/dev` nodes and symlinks exist) *before* scanning sysfs, so a device appearing
//! between the scan and the subscription cannot be missed. The monitor socket is
//! non-blocking; it is waited on with `poll(2)` on a blocking thread (libudev is blocking C
//! code), with the deadline as the poll timeout.

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use tokio::time::Instant;

use crate::error::{Error, Result, ValueKind};
use crate::files::HostRoot;
use crate::ids::{LunSerial, Wwid};
use crate::sysfs::{BlockIdentity, Sysfs};

/// What makes a block device the one asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceId {
    /// A SCSI disk (one path, `sdX`) whose VPD page 0x80 holds this serial.
    ScsiSerial(LunSerial),
    /// A SCSI disk whose `device/wwid` is this WWID.
    ScsiWwid(Wwid),
    /// A multipath map (`dm-N`) whose `dm/uuid` is `mpath-<wwid>`.
    Multipath(Wwid),
    /// An NVMe namespace (`nvmeXnY`) with this UUID (lowercase, hyphenated).
    NvmeUuid(uuid::Uuid),
    /// An NVMe namespace with this NGUID (32 hex digits, with or without dashes).
    NvmeNguid(String),
    /// A loop device backed by this file.
    LoopBackingFile(PathBuf),
}

impl DeviceId {
    /// The multipath map of an ONTAP LUN: `Multipath(serial.naa_wwid())`.
    pub fn ontap_lun_map(serial: &LunSerial) -> Self {
        DeviceId::Multipath(serial.naa_wwid())
    }

    /// An NVMe NGUID, validated (32 hex digits, dashes ignored) and stored lowercase.
    ///
    /// ```
    /// use host_storage::wait::DeviceId;
    /// assert!(DeviceId::nvme_nguid("0x12").is_err());
    /// assert_eq!(
    ///     DeviceId::nvme_nguid("80FD6B2D-4C8A-4E16-A6C4-30AB5E6F1A22")?,
    ///     DeviceId::NvmeNguid("80fd6b2d4c8a4e16a6c430ab5e6f1a22".into())
    /// );
    /// # Ok::<(), host_storage::Error>(())
    /// ```
    pub fn nvme_nguid(s: &str) -> Result<Self> {
        let hex: String = s.chars().filter(|c| *c != '-').collect();
        if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::invalid(
                ValueKind::Uuid,
                s,
                "NGUID must be 32 hex digits",
            ));
        }
        Ok(DeviceId::NvmeNguid(hex.to_ascii_lowercase()))
    }

    /// True when the device name has the shape this kind of device takes.
    fn name_fits(&self, name: &str) -> bool {
        match self {
            DeviceId::ScsiSerial(_) | DeviceId::ScsiWwid(_) => name.starts_with("sd"),
            DeviceId::Multipath(_) => name.starts_with("dm-"),
            DeviceId::NvmeUuid(_) | DeviceId::NvmeNguid(_) => name.starts_with("nvme"),
            DeviceId::LoopBackingFile(_) => name.starts_with("loop"),
        }
    }

    /// Whether an identity read from sysfs is this one.
    pub fn matches(&self, id: &BlockIdentity) -> bool {
        if !self.name_fits(&id.name) {
            return false;
        }
        match self {
            DeviceId::ScsiSerial(s) => id.serial.as_deref() == Some(s.as_str()),
            DeviceId::ScsiWwid(w) | DeviceId::Multipath(w) => id.wwid.as_ref() == Some(w),
            DeviceId::NvmeUuid(u) => id
                .uuid
                .as_deref()
                .is_some_and(|x| x.eq_ignore_ascii_case(&u.hyphenated().to_string())),
            DeviceId::NvmeNguid(n) => id
                .nguid
                .as_deref()
                .is_some_and(|x| x.replace('-', "").eq_ignore_ascii_case(n)),
            DeviceId::LoopBackingFile(p) => id.backing_file.as_deref() == Some(p.as_path()),
        }
    }
}

impl std::fmt::Display for DeviceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceId::ScsiSerial(s) => write!(f, "SCSI disk with serial {s}"),
            DeviceId::ScsiWwid(w) => write!(f, "SCSI disk with WWID {w}"),
            DeviceId::Multipath(w) => write!(f, "multipath map mpath-{w}"),
            DeviceId::NvmeUuid(u) => write!(f, "NVMe namespace with UUID {u}"),
            DeviceId::NvmeNguid(n) => write!(f, "NVMe namespace with NGUID {n}"),
            DeviceId::LoopBackingFile(p) => write!(f, "loop device backed by {}", p.display()),
        }
    }
}

/// How a waiter learns about new devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WaitMode {
    /// udev events when a udev daemon runs (`/run/udev/control` exists), else polling.
    Auto,
    /// udev events only (fails with [`Error::Udev`] when the monitor cannot be opened).
    Udev,
    /// Poll sysfs.
    Poll,
}

/// How a device was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Via {
    /// It was already there when the wait began.
    Present,
    /// A udev event named it.
    Udev,
    /// A sysfs poll found it.
    Poll,
}

/// A block device found and verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The device name (`sdb`, `dm-3`, `nvme0n1`, `loop0`).
    pub name: String,
    /// `/dev/<name>`.
    pub dev_node: PathBuf,
    /// Its identity as read from sysfs when it was matched.
    pub identity: BlockIdentity,
    /// How it was found.
    pub via: Via,
}

/// Waits for block devices by identity.
///
/// ```
/// use std::time::Duration;
/// use host_storage::files::HostRoot;
/// use host_storage::wait::{DeviceId, DeviceWaiter, Via, WaitMode};
/// use host_storage::LunSerial;
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), host_storage::Error> {
/// let root = tempfile::tempdir().unwrap();
/// let dm = root.path().join("sys/block/dm-0/dm");
/// std::fs::create_dir_all(&dm).unwrap();
/// std::fs::write(dm.join("uuid"), "mpath-3600a0980774f6a34663f57396c4f6b37\n").unwrap();
/// let waiter = DeviceWaiter::new(HostRoot::new(root.path())).mode(WaitMode::Poll);
/// let serial = LunSerial::parse("wOj4f?W9lOk7")?;
/// let found = waiter.wait(&DeviceId::ontap_lun_map(&serial), Duration::from_secs(1)).await?;
/// assert_eq!((found.name.as_str(), found.via), ("dm-0", Via::Present));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct DeviceWaiter {
    sys: Sysfs,
    root: HostRoot,
    mode: WaitMode,
    poll_interval: Duration,
}

impl DeviceWaiter {
    /// A waiter on the host under `root`, in [`WaitMode::Auto`], polling every 250 ms when
    /// it polls.
    pub fn new(root: HostRoot) -> Self {
        DeviceWaiter {
            sys: Sysfs::new(root.clone()),
            root,
            mode: WaitMode::Auto,
            poll_interval: Duration::from_millis(250),
        }
    }

    /// Sets the mode.
    pub fn mode(mut self, mode: WaitMode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets the polling interval (also the period of the safety re-scan in udev mode is
    /// 8 times this).
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.poll_interval = every.max(Duration::from_millis(10));
        self
    }

    /// True when a udev daemon listens on the host's control socket `/run/udev/control`.
    ///
    /// The socket file outlives a stopped daemon, so existence is not enough: a stream
    /// connect to this `SOCK_SEQPACKET` socket is refused when nobody listens and fails
    /// with `EPROTOTYPE` when udevd does.
    pub fn udev_running(&self) -> bool {
        let path = self.root.path("/run/udev/control");
        match std::os::unix::net::UnixStream::connect(&path) {
            Ok(_) => true,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound
            ),
        }
    }

    /// The mode a wait would use now.
    pub fn effective_mode(&self) -> WaitMode {
        match self.mode {
            WaitMode::Auto if self.udev_running() => WaitMode::Udev,
            WaitMode::Auto => WaitMode::Poll,
            m => m,
        }
    }

    /// Checks one device against `id`, reading its identity fresh from sysfs.
    pub fn check(&self, name: &str, id: &DeviceId) -> Result<Option<BlockIdentity>> {
        if !id.name_fits(name) || !self.sys.block_exists(name)? {
            return Ok(None);
        }
        // With native NVMe multipath each path is a hidden disk (`nvme0c1n1`) with the
        // namespace's UUID but no /dev node: only the head (`nvme0n1`) is usable.
        if self.sys.read(&format!("block/{name}/hidden"))?.as_deref() == Some("1") {
            return Ok(None);
        }
        let ident = self.sys.identity(name)?;
        Ok(id.matches(&ident).then_some(ident))
    }

    /// Scans `/sys/block` once.
    pub fn scan(&self, id: &DeviceId) -> Result<Option<(String, BlockIdentity)>> {
        for name in self.sys.block_devices()? {
            if let Some(ident) = self.check(&name, id)? {
                return Ok(Some((name, ident)));
            }
        }
        Ok(None)
    }

    fn found(&self, name: String, identity: BlockIdentity, via: Via) -> Found {
        tracing::info!(device = %name, ?via, "device found");
        Found {
            dev_node: self.root.path(format!("/dev/{name}")),
            name,
            identity,
            via,
        }
    }

    /// Waits until a block device matching `id` exists, at most `timeout`.
    pub async fn wait(&self, id: &DeviceId, timeout: Duration) -> Result<Found> {
        let deadline = Instant::now() + timeout;
        let timed_out = || Error::WaitTimeout {
            what: id.to_string(),
            after: timeout,
        };
        match self.effective_mode() {
            WaitMode::Udev => {
                // libudev is blocking C code; the whole event loop runs on a blocking
                // thread, bounded by the deadline, and the task only awaits its result.
                let this = self.clone();
                let id = id.clone();
                let deadline = deadline.into_std();
                tokio::task::spawn_blocking(move || this.wait_udev_blocking(&id, deadline, timeout))
                    .await
                    .map_err(|e| Error::Udev {
                        source: std::io::Error::other(e.to_string()),
                    })?
            }
            _ => {
                if let Some((name, ident)) = self.scan(id)? {
                    return Ok(self.found(name, ident, Via::Present));
                }
                loop {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(timed_out());
                    }
                    tokio::time::sleep_until(deadline.min(now + self.poll_interval)).await;
                    if let Some((name, ident)) = self.scan(id)? {
                        return Ok(self.found(name, ident, Via::Poll));
                    }
                }
            }
        }
    }

    fn wait_udev_blocking(
        &self,
        id: &DeviceId,
        deadline: std::time::Instant,
        timeout: Duration,
    ) -> Result<Found> {
        let udev_err = |source| Error::Udev { source };
        let monitor = udev::MonitorBuilder::new()
            .and_then(|b| b.match_subsystem("block"))
            .and_then(|b| b.listen())
            .map_err(udev_err)?;
        tracing::debug!(%id, "udev monitor listening");
        // Subscribed first, scanned second: nothing can slip in between.
        if let Some((name, ident)) = self.scan(id)? {
            return Ok(self.found(name, ident, Via::Present));
        }
        let rescan_every = self.poll_interval * 8;
        loop {
            let now = std::time::Instant::now();
            if now >= deadline {
                return Err(Error::WaitTimeout {
                    what: id.to_string(),
                    after: timeout,
                });
            }
            let wait = (deadline - now).min(rescan_every);
            let ms = u16::try_from(wait.as_millis().max(1)).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(monitor.as_fd(), PollFlags::POLLIN)];
            let ready = match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => 0,
                Err(e) => return Err(udev_err(std::io::Error::from(e))),
            };
            if ready == 0 {
                // No event for a while: re-scan in case an attribute changed without an
                // event (identity pages may be filled in after `add`).
                if let Some((name, ident)) = self.scan(id)? {
                    return Ok(self.found(name, ident, Via::Poll));
                }
                continue;
            }
            for ev in monitor.iter() {
                if !matches!(
                    ev.event_type(),
                    udev::EventType::Add | udev::EventType::Change
                ) {
                    continue;
                }
                let Some(name) = ev.sysname().to_str().map(str::to_owned) else {
                    continue;
                };
                tracing::debug!(device = %name, action = %ev.event_type(), "udev event");
                if let Some(ident) = self.check(&name, id)? {
                    return Ok(self.found(name, ident, Via::Udev));
                }
            }
        }
    }

    /// Waits until `/sys/block/<name>` is gone (after a delete or a flush), at most `timeout`.
    /// Gone already is success. Each poll is one `stat`, so this polls every 20 ms (or the
    /// polling interval, if shorter): a device usually goes within milliseconds of its
    /// delete, and a detach should not wait a whole interval for it.
    pub async fn wait_gone(&self, name: &str, timeout: Duration) -> Result<()> {
        let every = self.poll_interval.min(Duration::from_millis(20));
        let deadline = Instant::now() + timeout;
        loop {
            if !self.sys.block_exists(name)? {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::WaitTimeout {
                    what: format!("{name} to disappear"),
                    after: timeout,
                });
            }
            tokio::time::sleep_until(deadline.min(now + every)).await;
        }
    }

    /// Verifies that `name` is the device `id` names, right now; [`Error::DeviceMismatch`]
    /// otherwise. Use before acting on a device name recorded earlier.
    pub fn verify(&self, name: &str, id: &DeviceId) -> Result<BlockIdentity> {
        crate::sysfs::check_dev_name(name)?;
        let ident = self.sys.identity(name)?;
        if id.matches(&ident) {
            return Ok(ident);
        }
        let found = ident
            .serial
            .clone()
            .or_else(|| ident.wwid.as_ref().map(|w| w.to_string()))
            .or_else(|| ident.uuid.clone())
            .or_else(|| ident.nguid.clone())
            .or_else(|| ident.backing_file.as_ref().map(|p| p.display().to_string()))
            .unwrap_or_else(|| "no identity".to_owned());
        Err(Error::DeviceMismatch {
            device: name.to_owned(),
            expected: id.to_string(),
            found,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hidden_nvme_path_disks_are_never_found() {
        // As in the lab (Linux 6.1, native multipath): /sys/block lists the hidden path
        // disk nvme0c0n1 before the head nvme0n1, both with the namespace UUID.
        let dir = tempfile::tempdir().unwrap();
        let uuid = "1f9d0c3e-7b52-4c38-9a61-0f3b5a2e8d47";
        for (name, hidden) in [("nvme0c0n1", "1"), ("nvme0n1", "0")] {
            let b = dir.path().join("sys/block").join(name);
            std::fs::create_dir_all(&b).unwrap();
            std::fs::write(b.join("uuid"), format!("{uuid}\n")).unwrap();
            std::fs::write(b.join("hidden"), format!("{hidden}\n")).unwrap();
        }
        let waiter = DeviceWaiter::new(HostRoot::new(dir.path())).mode(WaitMode::Poll);
        let id = DeviceId::NvmeUuid(uuid.parse().unwrap());
        assert_eq!(waiter.check("nvme0c0n1", &id).unwrap(), None);
        let found = waiter.wait(&id, Duration::from_secs(1)).await.unwrap();
        assert_eq!(found.name, "nvme0n1");
        assert_eq!(found.dev_node, dir.path().join("dev/nvme0n1"));
    }
}
