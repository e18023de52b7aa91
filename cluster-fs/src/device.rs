//! The device a destructive step targets, how its identity is verified, and what `blkid`
//! says is on it.
//!
//! Before any step that can destroy data (mkfs, tunefs, fsck with repairs, wipefs) the
//! device's identity is read from sysfs and compared with what the caller expects:
//!
//! | device | sysfs file | compared with |
//! |---|---|---|
//! | `dm-N` (multipath map) | `block/dm-N/dm/uuid` = `mpath-<wwid>` | [`Identity::Wwid`] |
//! | `sdX` | `block/sdX/device/wwid` (`naa.600a…` → `3600a…`) | [`Identity::Wwid`] |
//! | `nvmeXnY` | `block/nvmeXnY/uuid`, else `wwid` (`uuid.…`) | [`Identity::NvmeNamespace`] |
//!
//! A device with holders (`block/<dev>/holders/` not empty: a path of a multipath map, a
//! disk under LVM or dm-crypt) is refused with [`Error::DeviceInUse`]: the cluster file
//! system goes on the map, never on one of its paths. Partitions (`sdb1`) have no identity
//! of their own and are refused with [`Error::IdentityUnknown`]; use whole LUNs.
//!
//! Image files (tests, scratch) skip this with [`Identity::ImageFileUnchecked`], which is
//! refused for anything that is not a regular file.

use std::path::{Path, PathBuf};

use host_storage::{Command, IoOp, Runner, Wwid};

use crate::error::{Error, Format, Result, SignatureKind, Step, ValueKind};

/// What the caller expects the device to be.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Identity {
    /// A SCSI LUN or multipath map with this WWID (ONTAP: [`host_storage::LunSerial::naa_wwid`]).
    Wwid(Wwid),
    /// An NVMe namespace with this UUID.
    NvmeNamespace(uuid::Uuid),
    /// No identity check: allowed only for regular files (image files in tests). Never use
    /// it for a block device.
    ImageFileUnchecked,
}

impl Identity {
    /// [`Identity::Wwid`] from text (`3600a0980…`, any case).
    ///
    /// ```
    /// use cluster_fs::Identity;
    /// assert!(Identity::wwid("3600A0980774F6A34663F57396C4F6B37").is_ok());
    /// assert!(Identity::wwid("a b").is_err());
    /// ```
    pub fn wwid(s: &str) -> Result<Self> {
        Wwid::parse(s)
            .map(Identity::Wwid)
            .map_err(|_| Error::invalid(ValueKind::Wwid, s, "not a WWID"))
    }

    /// [`Identity::NvmeNamespace`] from text.
    pub fn nvme_namespace(s: &str) -> Result<Self> {
        uuid::Uuid::parse_str(s)
            .map(Identity::NvmeNamespace)
            .map_err(|_| Error::invalid(ValueKind::Uuid, s, "not a UUID"))
    }
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Identity::Wwid(w) => write!(f, "wwid {w}"),
            Identity::NvmeNamespace(u) => write!(f, "nvme namespace uuid {u}"),
            Identity::ImageFileUnchecked => f.write_str("image file"),
        }
    }
}

/// A device (or image file) with the identity it must have.
///
/// ```
/// use cluster_fs::{Identity, TargetDevice};
/// let lun = TargetDevice::new(
///     "/dev/mapper/3600a0980774f6a34663f57396c4f6b37",
///     Identity::wwid("3600a0980774f6a34663f57396c4f6b37")?,
/// )?;
/// assert_eq!(lun.path().to_str(), Some("/dev/mapper/3600a0980774f6a34663f57396c4f6b37"));
/// assert!(TargetDevice::new("dev/sdb", Identity::ImageFileUnchecked).is_err());
/// # Ok::<(), cluster_fs::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetDevice {
    path: PathBuf,
    identity: Identity,
}

impl TargetDevice {
    /// A device at an absolute path without whitespace or control characters.
    pub fn new(path: impl Into<PathBuf>, identity: Identity) -> Result<Self> {
        let path = path.into();
        let s = path.to_string_lossy();
        if !path.is_absolute()
            || s.chars().any(|c| c.is_whitespace() || c.is_control())
            || s.starts_with('-')
        {
            return Err(Error::invalid(
                ValueKind::Device,
                s,
                "must be an absolute path without whitespace",
            ));
        }
        Ok(TargetDevice { path, identity })
    }

    /// An image file, with the identity check skipped (it is still refused at run time if
    /// the path is not a regular file).
    pub fn image_file(path: impl Into<PathBuf>) -> Result<Self> {
        Self::new(path, Identity::ImageFileUnchecked)
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path as an argv element.
    pub fn arg(&self) -> String {
        self.path.display().to_string()
    }

    /// The expected identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }
}

/// Converts a SCSI `device/wwid` sysfs value to the udev/multipath form: `naa.` → `3`,
/// `eui.` → `2`, `t10.` → `1`; others are returned unchanged.
///
/// ```
/// assert_eq!(
///     cluster_fs::device::scsi_wwid_to_udev("naa.600a0980774f6a34663f57396c4f6b37"),
///     "3600a0980774f6a34663f57396c4f6b37"
/// );
/// ```
pub fn scsi_wwid_to_udev(raw: &str) -> String {
    let raw = raw.trim();
    for (prefix, digit) in [("naa.", '3'), ("eui.", '2'), ("t10.", '1')] {
        if let Some(rest) = raw.strip_prefix(prefix) {
            return format!("{digit}{}", rest.to_ascii_lowercase());
        }
    }
    raw.to_owned()
}

fn read_trim(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s.trim().to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(IoOp::Read, path, e)),
    }
}

/// The kernel name (`dm-3`, `sdb`, `nvme0n1`) of a device path, following symlinks such as
/// `/dev/mapper/<wwid>` when the path exists.
pub fn kernel_name(path: &Path) -> Option<String> {
    let resolved = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    resolved
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
}

/// Checks `dev` against its expected identity, reading sysfs under `sysfs` (`/sys` on a real
/// host). Pure apart from reading files.
///
/// Errors: [`Error::IdentityMismatch`], [`Error::IdentityUnknown`] (no identity file),
/// [`Error::DeviceInUse`] (holders on top), [`Error::NotAnImageFile`] (the bypass used on a
/// non-regular file).
pub fn verify_identity(sysfs: &Path, dev: &TargetDevice) -> Result<()> {
    verify_identity_only(sysfs, dev)?;
    if dev.identity == Identity::ImageFileUnchecked {
        return Ok(());
    }
    let Some(name) = kernel_name(&dev.path) else {
        return Ok(());
    };
    let dir = sysfs.join("block").join(name).join("holders");
    let holders = match std::fs::read_dir(&dir) {
        Ok(entries) => {
            let mut h: Vec<String> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            h.sort();
            h
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::io(IoOp::Read, &dir, e)),
    };
    if !holders.is_empty() {
        return Err(Error::DeviceInUse {
            device: dev.path.clone(),
            holders,
        });
    }
    Ok(())
}

fn verify_identity_only(sysfs: &Path, dev: &TargetDevice) -> Result<()> {
    let mismatch = |actual: String| Error::IdentityMismatch {
        device: dev.path.clone(),
        expected: dev.identity.to_string(),
        actual,
    };
    let name = kernel_name(&dev.path);
    let block = name.as_deref().map(|n| sysfs.join("block").join(n));
    match &dev.identity {
        Identity::ImageFileUnchecked => {
            let regular = std::fs::metadata(&dev.path)
                .map(|m| m.is_file())
                .unwrap_or(false);
            if regular {
                Ok(())
            } else {
                Err(Error::NotAnImageFile {
                    device: dev.path.clone(),
                })
            }
        }
        Identity::Wwid(want) => {
            let block = block.ok_or_else(|| unknown(dev, sysfs))?;
            if let Some(uuid) = read_trim(&block.join("dm/uuid"))? {
                return match Wwid::from_dm_uuid(&uuid) {
                    Ok(got) if &got == want => Ok(()),
                    _ => Err(mismatch(format!("dm uuid {uuid}"))),
                };
            }
            for file in ["device/wwid", "wwid"] {
                if let Some(raw) = read_trim(&block.join(file))? {
                    let got = scsi_wwid_to_udev(&raw);
                    return if got.eq_ignore_ascii_case(want.as_str()) {
                        Ok(())
                    } else {
                        Err(mismatch(format!("wwid {got}")))
                    };
                }
            }
            Err(unknown(dev, sysfs))
        }
        Identity::NvmeNamespace(want) => {
            let block = block.ok_or_else(|| unknown(dev, sysfs))?;
            let found = match read_trim(&block.join("uuid"))? {
                Some(u) => Some(u),
                None => read_trim(&block.join("wwid"))?
                    .and_then(|w| w.strip_prefix("uuid.").map(str::to_owned)),
            };
            let Some(found) = found else {
                return Err(unknown(dev, sysfs));
            };
            match uuid::Uuid::parse_str(&found) {
                Ok(got) if &got == want => Ok(()),
                _ => Err(mismatch(format!("nvme namespace uuid {found}"))),
            }
        }
    }
}

fn unknown(dev: &TargetDevice, sysfs: &Path) -> Error {
    Error::IdentityUnknown {
        device: dev.path.clone(),
        sysfs: sysfs.join("block"),
    }
}

/// What `blkid -p -o export` found on a device (low-level probing, no cache).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signature {
    /// `TYPE`: a file system or other content (`ocfs2`, `gfs2`, `ext4`, `LVM2_member`).
    pub fs_type: Option<String>,
    /// `PTTYPE`: a partition table (`dos`, `gpt`).
    pub pt_type: Option<String>,
    /// `LABEL`.
    pub label: Option<String>,
    /// `UUID`.
    pub uuid: Option<String>,
    /// `USAGE` (`filesystem`, `raid`, `crypto`, `other`).
    pub usage: Option<String>,
    /// `blkid` exited 8: several signatures that contradict each other.
    pub ambivalent: bool,
}

impl Signature {
    /// True when nothing was found.
    pub fn is_blank(&self) -> bool {
        self.fs_type.is_none() && self.pt_type.is_none() && !self.ambivalent
    }

    /// The refusal for formatting over this signature, if there is one.
    pub fn refusal(&self, device: &Path) -> Option<Error> {
        let (kind, found) = if let Some(t) = &self.fs_type {
            (SignatureKind::FileSystem, t.clone())
        } else if let Some(t) = &self.pt_type {
            (SignatureKind::PartitionTable, t.clone())
        } else if self.ambivalent {
            (SignatureKind::FileSystem, "ambivalent".to_owned())
        } else {
            return None;
        };
        Some(Error::HasSignature {
            device: device.to_owned(),
            kind,
            found,
            label: self.label.clone(),
        })
    }
}

/// Parses `blkid -p -o export` output (`KEY=value` lines). Unknown keys are ignored; lines
/// starting with `#` are skipped (capture headers).
///
/// ```
/// let s = cluster_fs::device::parse_blkid_export("DEVNAME=p.img\nPTTYPE=dos\n")?;
/// assert_eq!(s.pt_type.as_deref(), Some("dos"));
/// assert!(s.fs_type.is_none());
/// # Ok::<(), cluster_fs::Error>(())
/// ```
pub fn parse_blkid_export(text: &str) -> Result<Signature> {
    let mut sig = Signature::default();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(Error::parse(
                Format::BlkidExport,
                i + 1,
                "expected KEY=value",
            ));
        };
        let v = Some(v.to_owned());
        match k {
            "TYPE" => sig.fs_type = v,
            "PTTYPE" => sig.pt_type = v,
            "LABEL" => sig.label = v,
            "UUID" => sig.uuid = v,
            "USAGE" => sig.usage = v,
            _ => {}
        }
    }
    Ok(sig)
}

/// Runs `blkid -p -o export DEV`: exit 2 (nothing found) is a blank signature, exit 8
/// (ambivalent) is a signature.
pub async fn probe<R: Runner + ?Sized>(runner: &R, device: &Path) -> Result<Signature> {
    let cmd = Command::new("blkid")
        .args(["-p", "-o", "export"])
        .arg(device.display().to_string())
        .ok_codes([0, 2, 8]);
    let out = runner
        .run(&cmd)
        .await
        .map_err(Error::host(Step::ReadSignature, device.display()))?;
    match out.code() {
        Some(2) => Ok(Signature::default()),
        Some(8) => Ok(Signature {
            ambivalent: true,
            ..parse_blkid_export(&out.stdout)?
        }),
        _ => parse_blkid_export(&out.stdout),
    }
}
