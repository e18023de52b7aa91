//! Reading and writing the kernel's view of storage in sysfs: SCSI devices and their
//! identity (VPD page 0x80 serial, WWID), device-mapper maps, holders, iSCSI sessions, SCSI
//! host scans and device deletion.
//!
//! Every path is taken under a [`HostRoot`], so the same code runs on `/sys` and on a
//! synthetic tree in a temporary directory (tests named `..._on_synthetic_sysfs`).

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, IoOp, Result, ValueKind};
use crate::files::HostRoot;
use crate::ids::{Iqn, LunSerial, Wwid};
use crate::parse::{Hctl, Portal};

/// The sysfs tree of a host (`/sys` under a [`HostRoot`]).
///
/// ```
/// use host_storage::files::HostRoot;
/// use host_storage::sysfs::Sysfs;
/// let sys = Sysfs::new(HostRoot::new("/tmp/synthetic"));
/// assert_eq!(sys.path("block/sdb").to_str(), Some("/tmp/synthetic/sys/block/sdb"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sysfs {
    root: HostRoot,
}

impl Default for Sysfs {
    fn default() -> Self {
        Sysfs::new(HostRoot::system())
    }
}

/// Checks a kernel device name (`sdb`, `dm-3`, `nvme0n1`) before it is joined into a path.
pub(crate) fn check_dev_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':' | b'.'))
        && name != "."
        && name != "..";
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            ValueKind::Path,
            name,
            "not a kernel device name",
        ))
    }
}

/// Decodes the SCSI VPD page 0x80 (unit serial number) as the kernel exposes it in
/// `/sys/block/sdX/device/vpd_pg80`: byte 1 is the page code `0x80`, bytes 2..4 the
/// big-endian length, then the serial (trailing spaces and NULs trimmed).
///
/// ```
/// use host_storage::sysfs::parse_vpd_pg80;
/// let page = [0x00, 0x80, 0x00, 0x0c, b'w', b'O', b'j', b'4', b'f', b'?', b'W', b'9', b'l', b'O', b'k', b'7'];
/// assert_eq!(parse_vpd_pg80(&page)?, "wOj4f?W9lOk7");
/// assert!(parse_vpd_pg80(&[0x00, 0x83, 0x00, 0x00]).is_err());
/// # Ok::<(), host_storage::Error>(())
/// ```
pub fn parse_vpd_pg80(page: &[u8]) -> Result<String> {
    let bad = |reason| Error::invalid(ValueKind::LunSerial, format!("{page:02x?}"), reason);
    if page.len() < 4 {
        return Err(bad("VPD page shorter than its 4-byte header"));
    }
    if page[1] != 0x80 {
        return Err(bad("not VPD page 0x80"));
    }
    let len = usize::from(u16::from_be_bytes([page[2], page[3]]));
    let body = page
        .get(4..4 + len)
        .ok_or_else(|| bad("VPD page shorter than its length field"))?;
    let s = std::str::from_utf8(body).map_err(|_| bad("serial is not ASCII"))?;
    Ok(s.trim_matches(|c: char| c == ' ' || c == '\0').to_owned())
}

/// Turns the kernel's `device/wwid` (`naa.600a0980…`, `eui.…`, `t10.…`) into the WWID
/// multipath uses (udev's `ID_SERIAL`: `3600a0980…`, `2…`, `1…`).
///
/// ```
/// use host_storage::sysfs::wwid_from_sysfs;
/// let w = wwid_from_sysfs("naa.600a0980774f6a34663f57396c4f6b37\n")?;
/// assert_eq!(w.as_str(), "3600a0980774f6a34663f57396c4f6b37");
/// # Ok::<(), host_storage::Error>(())
/// ```
pub fn wwid_from_sysfs(text: &str) -> Result<Wwid> {
    let t = text.trim();
    let mapped = if let Some(rest) = t.strip_prefix("naa.") {
        format!("3{rest}")
    } else if let Some(rest) = t.strip_prefix("eui.") {
        format!("2{rest}")
    } else if let Some(rest) = t.strip_prefix("t10.") {
        // udev replaces runs of spaces with one underscore in T10 vendor ids.
        format!("1{}", rest.split_whitespace().collect::<Vec<_>>().join("_"))
    } else {
        t.to_owned()
    };
    Wwid::parse(&mapped)
}

/// One iSCSI session as sysfs shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IscsiSessionInfo {
    /// Session id (`sessionN`).
    pub sid: u32,
    /// The target.
    pub target: Iqn,
    /// Target portal group tag.
    pub tpgt: Option<i32>,
    /// `LOGGED_IN`, `FAILED`, `FREE`.
    pub state: String,
    /// The portal of connection 0 (persistent address and port).
    pub portal: Option<Portal>,
    /// The SCSI host number the session created.
    pub host: Option<u32>,
    /// The logical units of the session, with their block device when there is one.
    pub luns: Vec<(Hctl, Option<String>)>,
}

impl IscsiSessionInfo {
    /// True when the session is `LOGGED_IN`.
    pub fn is_logged_in(&self) -> bool {
        self.state == "LOGGED_IN"
    }
}

/// A block device's identity as far as kvmstor checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockIdentity {
    /// The device name (`sdb`, `dm-3`, `nvme0n1`, `loop0`).
    pub name: String,
    /// SCSI serial from VPD page 0x80.
    pub serial: Option<String>,
    /// SCSI WWID (`device/wwid`) or, for a multipath map, the WWID from `dm/uuid`.
    pub wwid: Option<Wwid>,
    /// NVMe namespace UUID.
    pub uuid: Option<String>,
    /// NVMe namespace NGUID.
    pub nguid: Option<String>,
    /// Backing file of a loop device.
    pub backing_file: Option<PathBuf>,
}

fn read_opt(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s.trim_end_matches(['\n', '\0']).trim().to_owned())),
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => Ok(None),
        // The device vanished between listing and reading (ENODEV/ENXIO from sysfs).
        Err(e) if matches!(e.raw_os_error(), Some(19) | Some(6)) => Ok(None),
        Err(e) => Err(Error::io(IoOp::Read, path, e)),
    }
}

fn list_dir(path: &Path) -> Result<Vec<String>> {
    match std::fs::read_dir(path) {
        Ok(rd) => {
            let mut v: Vec<String> = rd
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect();
            v.sort();
            Ok(v)
        }
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
            Ok(Vec::new())
        }
        Err(e) => Err(Error::io(IoOp::Read, path, e)),
    }
}

impl Sysfs {
    /// The sysfs of the host under `root`.
    pub fn new(root: HostRoot) -> Self {
        Sysfs { root }
    }

    /// The host root.
    pub fn root(&self) -> &HostRoot {
        &self.root
    }

    /// `/sys/<rel>` under the root.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.path(format!("/sys/{rel}"))
    }

    /// Reads a sysfs attribute, trimmed; `None` when it does not exist.
    pub fn read(&self, rel: &str) -> Result<Option<String>> {
        read_opt(&self.path(rel))
    }

    /// Writes to a sysfs attribute (opened for appending, never created), as
    /// `echo VALUE > FILE` would.
    pub fn write(&self, rel: &str, value: &str) -> Result<()> {
        let path = self.path(rel);
        let mut f = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(IoOp::Write, &path, e))?;
        f.write_all(value.as_bytes())
            .map_err(|e| Error::io(IoOp::Write, &path, e))
    }

    /// Names in `/sys/<rel>`, sorted; empty when it does not exist.
    pub fn list(&self, rel: &str) -> Result<Vec<String>> {
        list_dir(&self.path(rel))
    }

    /// Every block device name in `/sys/block`.
    pub fn block_devices(&self) -> Result<Vec<String>> {
        self.list("block")
    }

    /// True when `/sys/block/<name>` exists.
    pub fn block_exists(&self, name: &str) -> Result<bool> {
        check_dev_name(name)?;
        Ok(self.path(&format!("block/{name}")).exists())
    }

    /// The serial of a SCSI disk from its VPD page 0x80 (`None` when the page is absent).
    pub fn scsi_serial(&self, name: &str) -> Result<Option<String>> {
        check_dev_name(name)?;
        let path = self.path(&format!("block/{name}/device/vpd_pg80"));
        match std::fs::read(&path) {
            Ok(bytes) => parse_vpd_pg80(&bytes).map(Some),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(IoOp::Read, &path, e)),
        }
    }

    /// The WWID of a SCSI disk (`device/wwid`) or of a multipath map (`dm/uuid`).
    pub fn wwid(&self, name: &str) -> Result<Option<Wwid>> {
        check_dev_name(name)?;
        if let Some(uuid) = self.read(&format!("block/{name}/dm/uuid"))? {
            return Ok(Wwid::from_dm_uuid(&uuid).ok());
        }
        match self.read(&format!("block/{name}/device/wwid"))? {
            Some(w) if !w.is_empty() => wwid_from_sysfs(&w).map(Some),
            _ => Ok(None),
        }
    }

    /// Everything kvmstor checks about a block device, read fresh from sysfs.
    pub fn identity(&self, name: &str) -> Result<BlockIdentity> {
        check_dev_name(name)?;
        let is_loop = name.starts_with("loop");
        let is_nvme = name.starts_with("nvme");
        Ok(BlockIdentity {
            name: name.to_owned(),
            serial: if is_loop || is_nvme {
                None
            } else {
                self.scsi_serial(name)?
            },
            wwid: if is_loop { None } else { self.wwid(name)? },
            uuid: if is_nvme {
                self.read(&format!("block/{name}/uuid"))?
            } else {
                None
            },
            nguid: if is_nvme {
                self.read(&format!("block/{name}/nguid"))?
            } else {
                None
            },
            backing_file: if is_loop {
                self.read(&format!("block/{name}/loop/backing_file"))?
                    .filter(|s| !s.is_empty())
                    .map(PathBuf::from)
            } else {
                None
            },
        })
    }

    /// The devices holding `name` open as a component (`/sys/block/<name>/holders`).
    pub fn holders(&self, name: &str) -> Result<Vec<String>> {
        check_dev_name(name)?;
        self.list(&format!("block/{name}/holders"))
    }

    /// The components of a device-mapper device (`/sys/block/dm-N/slaves`).
    pub fn slaves(&self, name: &str) -> Result<Vec<String>> {
        check_dev_name(name)?;
        self.list(&format!("block/{name}/slaves"))
    }

    /// The device-mapper name of `dm-N` (`/sys/block/dm-N/dm/name`).
    pub fn dm_name(&self, name: &str) -> Result<Option<String>> {
        check_dev_name(name)?;
        self.read(&format!("block/{name}/dm/name"))
    }

    /// The multipath map (`dm-N`) whose `dm/uuid` is `mpath-<wwid>`. Partition maps
    /// (`part1-mpath-…`) never match.
    pub fn multipath_dm_by_wwid(&self, wwid: &Wwid) -> Result<Option<String>> {
        let want = format!("mpath-{wwid}");
        for name in self.block_devices()? {
            if !name.starts_with("dm-") {
                continue;
            }
            if self.read(&format!("block/{name}/dm/uuid"))?.as_deref() == Some(want.as_str()) {
                return Ok(Some(name));
            }
        }
        Ok(None)
    }

    /// The multipath map of an ONTAP LUN, found by its serial: through the NAA WWID ONTAP
    /// derives from the serial, else as the multipath map holding the SCSI disks whose VPD
    /// serial it is (targets whose NAA identifier is their own, such as Linux LIO, and
    /// maps named by another WWID source).
    pub fn multipath_dm_by_serial(&self, serial: &LunSerial) -> Result<Option<String>> {
        if let Some(dm) = self.multipath_dm_by_wwid(&serial.naa_wwid())? {
            return Ok(Some(dm));
        }
        for disk in self.scsi_disks_by_serial(serial)? {
            for holder in self.holders(&disk)? {
                let uuid = self.read(&format!("block/{holder}/dm/uuid"))?;
                if uuid.is_some_and(|u| u.starts_with("mpath-")) {
                    return Ok(Some(holder));
                }
            }
        }
        Ok(None)
    }

    /// The SCSI disks (`sdX`) whose VPD page 0x80 holds `serial`.
    pub fn scsi_disks_by_serial(&self, serial: &LunSerial) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for name in self.block_devices()? {
            if name.starts_with("sd")
                && self.scsi_serial(&name)?.as_deref() == Some(serial.as_str())
            {
                out.push(name);
            }
        }
        Ok(out)
    }

    /// The block devices of one SCSI logical unit
    /// (`/sys/class/scsi_device/H:C:T:L/device/block`).
    pub fn block_of_hctl(&self, hctl: Hctl) -> Result<Vec<String>> {
        self.list(&format!("class/scsi_device/{hctl}/device/block"))
    }

    /// The H:C:T:L of a SCSI disk, from `/sys/block/<name>/device` (a link to the logical
    /// unit's directory) or the `scsi_device` class under it.
    pub fn hctl_of(&self, name: &str) -> Result<Option<Hctl>> {
        check_dev_name(name)?;
        let dev = self.path(&format!("block/{name}/device"));
        if let Ok(target) = std::fs::read_link(&dev) {
            if let Some(h) = target
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse().ok())
            {
                return Ok(Some(h));
            }
        }
        Ok(list_dir(&dev.join("scsi_device"))?
            .first()
            .and_then(|n| n.parse().ok()))
    }

    /// Asks SCSI host `host` to scan for `channel target lun` (`None` is the `-` wildcard):
    /// writes `"C T L"` to `/sys/class/scsi_host/host<H>/scan`.
    pub fn scsi_scan(
        &self,
        host: u32,
        channel: Option<u32>,
        target: Option<u32>,
        lun: Option<u64>,
    ) -> Result<()> {
        let f = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
        let line = format!(
            "{} {} {}",
            f(channel.map(|c| c.to_string())),
            f(target.map(|t| t.to_string())),
            f(lun.map(|l| l.to_string()))
        );
        tracing::debug!(host, scan = %line, "scsi host scan");
        self.write(&format!("class/scsi_host/host{host}/scan"), &line)
    }

    /// Deletes a SCSI disk from the kernel (`echo 1 > /sys/block/<name>/device/delete`).
    /// Already gone is success (`false`).
    pub fn delete_scsi_device(&self, name: &str) -> Result<bool> {
        check_dev_name(name)?;
        if !name.starts_with("sd") {
            return Err(Error::invalid(
                ValueKind::Path,
                name,
                "only SCSI disks (sdX) are deleted through sysfs",
            ));
        }
        let rel = format!("block/{name}/device/delete");
        if !self.path(&rel).exists() {
            return Ok(false);
        }
        self.write(&rel, "1")?;
        tracing::info!(device = name, "deleted SCSI device");
        Ok(true)
    }

    /// Every iSCSI session the kernel knows, from `/sys/class/iscsi_session`,
    /// `/sys/class/iscsi_connection` and the session's device tree.
    pub fn iscsi_sessions(&self) -> Result<Vec<IscsiSessionInfo>> {
        let mut out = Vec::new();
        for entry in self.list("class/iscsi_session")? {
            let Some(sid) = entry
                .strip_prefix("session")
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let base = format!("class/iscsi_session/{entry}");
            let Some(target) = self.read(&format!("{base}/targetname"))? else {
                continue;
            };
            let Ok(target) = Iqn::parse(&target) else {
                continue;
            };
            let tpgt = self
                .read(&format!("{base}/tpgt"))?
                .and_then(|t| t.parse().ok());
            let state = self.read(&format!("{base}/state"))?.unwrap_or_default();
            let conn = format!("class/iscsi_connection/connection{sid}:0");
            let address = match self.read(&format!("{conn}/persistent_address"))? {
                Some(a) => Some(a),
                None => self.read(&format!("{conn}/address"))?,
            };
            let port = match self.read(&format!("{conn}/persistent_port"))? {
                Some(p) => Some(p),
                None => self.read(&format!("{conn}/port"))?,
            };
            let portal = match (address, port.and_then(|p| p.parse().ok())) {
                (Some(address), Some(port)) => Some(Portal { address, port }),
                _ => None,
            };
            // `device` links to .../hostH/sessionN; the logical units live below it.
            let dev = self.path(&format!("{base}/device"));
            let real = std::fs::canonicalize(&dev).ok();
            let session_dir = real.as_ref().and_then(|p| {
                p.ancestors()
                    .find(|a| a.file_name().and_then(|n| n.to_str()) == Some(entry.as_str()))
                    .map(Path::to_path_buf)
            });
            let host = session_dir.as_ref().and_then(|p| {
                p.parent()
                    .and_then(|h| h.file_name())
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_prefix("host"))
                    .and_then(|n| n.parse().ok())
            });
            let mut luns = Vec::new();
            if let Some(dir) = &session_dir {
                for t in list_dir(dir)?
                    .into_iter()
                    .filter(|t| t.starts_with("target"))
                {
                    for l in list_dir(&dir.join(&t))? {
                        if let Ok(hctl) = l.parse::<Hctl>() {
                            let disk = list_dir(&dir.join(&t).join(&l).join("block"))?
                                .into_iter()
                                .next();
                            luns.push((hctl, disk));
                        }
                    }
                }
            }
            luns.sort();
            out.push(IscsiSessionInfo {
                sid,
                target,
                tpgt,
                state,
                portal,
                host,
                luns,
            });
        }
        out.sort_by_key(|s| s.sid);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_disk(root: &std::path::Path, name: &str, serial: &str, holder: Option<&str>) {
        let dev = root.join(format!("sys/block/{name}/device"));
        std::fs::create_dir_all(&dev).unwrap();
        let mut page = vec![0, 0x80, 0, serial.len() as u8];
        page.extend_from_slice(serial.as_bytes());
        std::fs::write(dev.join("vpd_pg80"), page).unwrap();
        let holders = root.join(format!("sys/block/{name}/holders"));
        std::fs::create_dir_all(&holders).unwrap();
        if let Some(h) = holder {
            std::fs::create_dir_all(holders.join(h)).unwrap();
        }
    }

    #[test]
    fn map_by_serial_falls_back_to_the_holder_of_its_paths() {
        // As in the lab: LIO serves the ONTAP serial in VPD 0x80 but its own NAA
        // (6001405…), so the map is not named after the NetApp WWID.
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let dm = root.join("sys/block/dm-0/dm");
        std::fs::create_dir_all(&dm).unwrap();
        std::fs::write(dm.join("uuid"), "mpath-36001405c3f6bf5a8d2e4f4c9b1e0a7d2\n").unwrap();
        let part = root.join("sys/block/dm-1/dm");
        std::fs::create_dir_all(&part).unwrap();
        std::fs::write(
            part.join("uuid"),
            "part1-mpath-36001405c3f6bf5a8d2e4f4c9b1e0a7d2\n",
        )
        .unwrap();
        fake_disk(root, "sda", "wCVF2]Wt/Bv8", Some("dm-0"));
        fake_disk(root, "sdb", "wCVF2]Wt/Bv8", Some("dm-0"));
        fake_disk(root, "sdc", "wCVF2]Wt/Bv9", Some("dm-1"));
        let sys = Sysfs::new(HostRoot::new(root));
        let serial = LunSerial::parse("wCVF2]Wt/Bv8").unwrap();
        assert_eq!(
            sys.multipath_dm_by_serial(&serial).unwrap().as_deref(),
            Some("dm-0")
        );
        let other = LunSerial::parse("wCVF2]Wt/Bv9").unwrap();
        assert_eq!(
            sys.multipath_dm_by_serial(&other).unwrap(),
            None,
            "a partition map is no LUN map"
        );
    }

    #[test]
    fn vpd_refuses_short_and_truncated_pages() {
        assert!(parse_vpd_pg80(&[0, 0x80]).is_err());
        assert!(parse_vpd_pg80(&[0, 0x80, 0, 12, b'a']).is_err());
        assert_eq!(
            parse_vpd_pg80(&[0, 0x80, 0, 3, b'a', b'b', b' ']).unwrap(),
            "ab"
        );
    }

    #[test]
    fn wwid_prefixes_map_like_udev() {
        assert_eq!(
            wwid_from_sysfs("eui.0025388b").unwrap().as_str(),
            "20025388b"
        );
        assert_eq!(
            wwid_from_sysfs("t10.ATA     QEMU HARDDISK   QM00001")
                .unwrap()
                .as_str(),
            "1ATA_QEMU_HARDDISK_QM00001"
        );
    }

    #[test]
    fn device_names_are_checked() {
        assert!(check_dev_name("sdb").is_ok());
        assert!(check_dev_name("dm-3").is_ok());
        assert!(check_dev_name("../etc").is_err());
        assert!(check_dev_name("sd b").is_err());
        assert!(check_dev_name("").is_err());
    }
}
