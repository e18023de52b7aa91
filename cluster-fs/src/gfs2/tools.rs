//! `mkfs.gfs2`, `tunegfs2`, `gfs2_jadd` and `fsck.gfs2` commands, and the `tunegfs2 -l`
//! parser.

use std::path::Path;

use host_storage::Command;

use crate::device::TargetDevice;
use crate::error::{Error, Format, Result, ValueKind};
use crate::names::LockTable;
use crate::ocfs2::tools::LONG_TIMEOUT;

/// Options of one `mkfs.gfs2 -p lock_dlm` run, validated when built.
///
/// ```
/// use cluster_fs::gfs2::Gfs2Format;
/// use cluster_fs::{LockTable, TargetDevice};
/// let f = Gfs2Format::new(TargetDevice::image_file("/var/tmp/g.img")?, LockTable::parse("kvmcl:vmstore")?, 2)?
///     .journal_mib(64)?;
/// assert_eq!(
///     f.command().to_string(),
///     "mkfs.gfs2 -O -p lock_dlm -t kvmcl:vmstore -j 2 -J 64 /var/tmp/g.img"
/// );
/// assert!(f.journals(1).is_err()); // fewer journals than hosts
/// # Ok::<(), cluster_fs::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gfs2Format {
    device: TargetDevice,
    lock_table: LockTable,
    hosts: u16,
    journals: u16,
    journal_mib: Option<u32>,
    block_size: Option<u32>,
    overwrite: bool,
}

impl Gfs2Format {
    /// A `lock_dlm` volume for `hosts` hosts with one journal each.
    pub fn new(device: TargetDevice, lock_table: LockTable, hosts: u16) -> Result<Self> {
        if hosts == 0 {
            return Err(Error::invalid(
                ValueKind::Number,
                "0",
                "hosts must be at least 1",
            ));
        }
        Ok(Gfs2Format {
            device,
            lock_table,
            hosts,
            journals: hosts,
            journal_mib: None,
            block_size: None,
            overwrite: false,
        })
    }

    /// Journals (one per host that mounts at once); at least the number of hosts.
    pub fn journals(mut self, journals: u16) -> Result<Self> {
        if journals < self.hosts {
            return Err(Error::TooFewJournals {
                lock_table: self.lock_table.to_string(),
                journals,
                hosts: self.hosts,
            });
        }
        self.journals = journals;
        Ok(self)
    }

    /// Journal size in MiB (8 to 1024; mkfs.gfs2's default is 128).
    pub fn journal_mib(mut self, mib: u32) -> Result<Self> {
        if !(8..=1024).contains(&mib) {
            return Err(Error::invalid(
                ValueKind::Number,
                mib.to_string(),
                "journal size must be 8 to 1024 MiB",
            ));
        }
        self.journal_mib = Some(mib);
        Ok(self)
    }

    /// Block size: 512, 1024, 2048 or 4096.
    pub fn block_size(mut self, bytes: u32) -> Result<Self> {
        if ![512, 1024, 2048, 4096].contains(&bytes) {
            return Err(Error::invalid(
                ValueKind::Number,
                bytes.to_string(),
                "block size must be 512, 1024, 2048 or 4096",
            ));
        }
        self.block_size = Some(bytes);
        Ok(self)
    }

    /// Formats even if the device carries a signature (destroys what is there).
    pub fn overwrite(mut self, yes: bool) -> Self {
        self.overwrite = yes;
        self
    }

    /// The device.
    pub fn device(&self) -> &TargetDevice {
        &self.device
    }

    /// The lock table.
    pub fn lock_table(&self) -> &LockTable {
        &self.lock_table
    }

    /// The journal count.
    pub fn journal_count(&self) -> u16 {
        self.journals
    }

    /// Whether overwriting was asked.
    pub fn is_overwrite(&self) -> bool {
        self.overwrite
    }

    /// The `mkfs.gfs2` command. `-O` (no prompt) is always given: the signature and identity
    /// checks have run before, and mkfs.gfs2 would otherwise wait on a terminal.
    pub fn command(&self) -> Command {
        let mut c = Command::new("mkfs.gfs2")
            .args(["-O", "-p", "lock_dlm", "-t"])
            .arg(self.lock_table.to_string())
            .args(["-j", &self.journals.to_string()]);
        if let Some(j) = self.journal_mib {
            c = c.args(["-J", &j.to_string()]);
        }
        if let Some(b) = self.block_size {
            c = c.args(["-b", &b.to_string()]);
        }
        c.arg(self.device.arg()).timeout(LONG_TIMEOUT)
    }
}

/// `tunegfs2 -o locktable=CLUSTER:FS DEV` (on GFS2 the label is the lock table).
pub fn tunegfs2_lock_table(dev: &TargetDevice, table: &LockTable) -> Command {
    Command::new("tunegfs2")
        .args(["-o", &format!("locktable={table}")])
        .arg(dev.arg())
}

/// `tunegfs2 -l DEV` (read-only).
pub fn tunegfs2_list(dev: &TargetDevice) -> Command {
    Command::new("tunegfs2").arg("-l").arg(dev.arg())
}

/// `gfs2_jadd -j COUNT MOUNTPOINT`: adds journals to a mounted file system.
pub fn gfs2_jadd(mount_point: &Path, count: u16) -> Command {
    Command::new("gfs2_jadd")
        .args(["-j", &count.to_string()])
        .arg(mount_point.display().to_string())
        .timeout(LONG_TIMEOUT)
}

/// `fsck.gfs2 -n|-y DEV` (exit 0 clean, 4 errors left with `-n`, 1 corrected with `-y`).
pub fn fsck_gfs2(dev: &TargetDevice, mode: crate::ocfs2::FsckMode) -> Command {
    let (flag, ok) = match mode {
        crate::ocfs2::FsckMode::CheckOnly => ("-n", vec![0, 4]),
        crate::ocfs2::FsckMode::Repair => ("-y", vec![0, 1]),
    };
    Command::new("fsck.gfs2")
        .arg(flag)
        .arg(dev.arg())
        .ok_codes(ok)
        .timeout(LONG_TIMEOUT)
}

/// What `tunegfs2 -l` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gfs2Info {
    /// `File system volume name` (the lock table).
    pub label: String,
    /// `File system UUID`.
    pub uuid: uuid::Uuid,
    /// `Block size`.
    pub block_size: u32,
    /// `Lock protocol` (`lock_dlm`, `lock_nolock`).
    pub lock_protocol: String,
    /// `Lock table`, when it has the `cluster:fs` form.
    pub lock_table: Option<LockTable>,
}

/// Parses `tunegfs2 -l` (`Key: value` lines).
pub fn parse_tunegfs2_list(text: &str) -> Result<Gfs2Info> {
    let mut get = std::collections::HashMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        if let Some((k, v)) = line.split_once(':') {
            get.entry(k.trim().to_owned())
                .or_insert_with(|| v.trim().to_owned());
        }
    }
    let need = |k: &str, reason| {
        get.get(k)
            .cloned()
            .ok_or_else(|| Error::parse(Format::Tunegfs2List, 0, reason))
    };
    let table = need("Lock table", "no Lock table")?;
    Ok(Gfs2Info {
        label: need("File system volume name", "no volume name")?,
        uuid: uuid::Uuid::parse_str(&need("File system UUID", "no UUID")?)
            .map_err(|_| Error::parse(Format::Tunegfs2List, 0, "bad UUID"))?,
        block_size: need("Block size", "no Block size")?
            .parse()
            .map_err(|_| Error::parse(Format::Tunegfs2List, 0, "bad Block size"))?,
        lock_protocol: need("Lock protocol", "no Lock protocol")?,
        lock_table: LockTable::parse(&table).ok(),
    })
}
