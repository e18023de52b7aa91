//! The crate's one error type.

use std::path::PathBuf;

use host_storage::IoOp;

/// The host operation during which a [`host_storage::Error`] happened (see [`Error::Host`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Step {
    /// Reading a device's signatures with `blkid`.
    ReadSignature,
    /// Making a file system (`mkfs.ocfs2`, `mkfs.gfs2`).
    Format,
    /// Erasing signatures with `wipefs` (only when asked).
    Wipe,
    /// Changing a file system (`tunefs.ocfs2`, `tunegfs2`).
    Tune,
    /// Reading a file system's superblock (`debugfs.ocfs2`, `tunegfs2 -l`, `mounted.ocfs2`).
    Query,
    /// Checking a file system (`fsck.ocfs2`, `fsck.gfs2`).
    Fsck,
    /// Running `o2cb`.
    O2cb,
    /// Reading or writing a configuration file.
    Config,
    /// Mounting.
    Mount,
    /// Unmounting.
    Unmount,
    /// Adding or removing the `/etc/fstab` line.
    Fstab,
    /// Adding GFS2 journals with `gfs2_jadd`.
    AddJournals,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Step::ReadSignature => "reading device signatures",
            Step::Format => "formatting",
            Step::Wipe => "wiping signatures",
            Step::Tune => "tuning the file system",
            Step::Query => "reading the superblock",
            Step::Fsck => "checking the file system",
            Step::O2cb => "running o2cb",
            Step::Config => "updating a configuration file",
            Step::Mount => "mounting",
            Step::Unmount => "unmounting",
            Step::Fstab => "updating /etc/fstab",
            Step::AddJournals => "adding journals",
        })
    }
}

/// What kind of value failed validation (see [`Error::Invalid`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ValueKind {
    /// A cluster name ([`crate::ClusterName`]).
    ClusterName,
    /// A node (host) name ([`crate::NodeName`]).
    NodeName,
    /// A volume label ([`crate::Label`]).
    Label,
    /// A GFS2 file-system name ([`crate::FsName`]) or lock table.
    FsName,
    /// An OCFS2 heartbeat region (32 hex digits).
    Region,
    /// A number out of its range (node number, slots, sizes, timeouts).
    Number,
    /// An IP address.
    Address,
    /// A device path.
    Device,
    /// An NVMe namespace UUID.
    Uuid,
    /// A multipath WWID.
    Wwid,
}

impl std::fmt::Display for ValueKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ValueKind::ClusterName => "cluster name",
            ValueKind::NodeName => "node name",
            ValueKind::Label => "label",
            ValueKind::FsName => "file-system name",
            ValueKind::Region => "heartbeat region",
            ValueKind::Number => "number",
            ValueKind::Address => "address",
            ValueKind::Device => "device",
            ValueKind::Uuid => "UUID",
            ValueKind::Wwid => "WWID",
        })
    }
}

/// Which text a parser was reading (see [`Error::Parse`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// `/etc/ocfs2/cluster.conf`.
    ClusterConf,
    /// `/etc/default/o2cb` or `/etc/sysconfig/o2cb`.
    O2cbDefaults,
    /// `/etc/corosync/corosync.conf`.
    CorosyncConf,
    /// `mounted.ocfs2 -d`.
    MountedDetect,
    /// `mounted.ocfs2 -f`.
    MountedFull,
    /// `debugfs.ocfs2 -R stats`.
    DebugfsStats,
    /// `tunegfs2 -l`.
    Tunegfs2List,
    /// `blkid -p -o export`.
    BlkidExport,
    /// `/etc/dlm/dlm.conf`.
    DlmConf,
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::ClusterConf => "cluster.conf",
            Format::O2cbDefaults => "o2cb defaults",
            Format::CorosyncConf => "corosync.conf",
            Format::MountedDetect => "mounted.ocfs2 -d",
            Format::MountedFull => "mounted.ocfs2 -f",
            Format::DebugfsStats => "debugfs.ocfs2 -R stats",
            Format::Tunegfs2List => "tunegfs2 -l",
            Format::BlkidExport => "blkid -p -o export",
            Format::DlmConf => "dlm.conf",
        })
    }
}

/// What a refused format found on the device (see [`Error::HasSignature`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureKind {
    /// A file system, RAID member, swap, LVM PV … (`blkid` `TYPE=`).
    FileSystem,
    /// A partition table (`blkid` `PTTYPE=`).
    PartitionTable,
}

impl std::fmt::Display for SignatureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SignatureKind::FileSystem => "file-system",
            SignatureKind::PartitionTable => "partition-table",
        })
    }
}

/// Everything that can go wrong in this crate. Every refusal that protects data has its own
/// variant, so callers never parse messages.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value was refused before anything was touched.
    #[error("invalid {kind} {value:?}: {reason}")]
    Invalid {
        /// What kind of value.
        kind: ValueKind,
        /// The value as given.
        value: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The device carries a signature and overwriting was not asked for.
    #[error("refusing to format {device}: it carries a {kind} signature {found:?} (overwrite not asked)")]
    HasSignature {
        /// The device or image file.
        device: PathBuf,
        /// File system or partition table.
        kind: SignatureKind,
        /// The `TYPE` or `PTTYPE` found (`ext4`, `ocfs2`, `dos`, `gpt` …).
        found: String,
        /// Its label, if it has one.
        label: Option<String>,
    },
    /// The device is not the one the caller meant (its WWID or namespace UUID differs).
    #[error("refusing to touch {device}: expected identity {expected}, found {actual}")]
    IdentityMismatch {
        /// The device.
        device: PathBuf,
        /// The identity the caller passed.
        expected: String,
        /// The identity sysfs reports.
        actual: String,
    },
    /// sysfs has no identity for the device, so it cannot be verified.
    #[error("refusing to touch {device}: no identity found under {sysfs}")]
    IdentityUnknown {
        /// The device.
        device: PathBuf,
        /// The sysfs directory searched.
        sysfs: PathBuf,
    },
    /// Other block devices are stacked on the device (it is a multipath path, an LVM PV …).
    #[error("refusing to touch {device}: in use by {holders:?}")]
    DeviceInUse {
        /// The device.
        device: PathBuf,
        /// The holders listed in sysfs (`dm-3`).
        holders: Vec<String>,
    },
    /// The identity bypass for image files was used on something that is not a regular file.
    #[error(
        "refusing to touch {device} without an identity check: it is not a regular image file"
    )]
    NotAnImageFile {
        /// The path given.
        device: PathBuf,
    },
    /// Fewer OCFS2 node slots than hosts that will mount the volume.
    #[error("{slots} node slots are fewer than the {hosts} hosts that mount {label}")]
    TooFewSlots {
        /// The volume label.
        label: String,
        /// The slots asked.
        slots: u16,
        /// The hosts that will mount it.
        hosts: u16,
    },
    /// Fewer GFS2 journals than hosts that will mount the volume.
    #[error("{journals} journals are fewer than the {hosts} hosts that mount {lock_table}")]
    TooFewJournals {
        /// The lock table (`cluster:fs`).
        lock_table: String,
        /// The journals asked.
        journals: u16,
        /// The hosts that will mount it.
        hosts: u16,
    },
    /// Shrinking node slots or journals is refused (a slot may be in use).
    #[error("refusing to reduce {device} from {current} to {requested}")]
    WouldShrink {
        /// The device.
        device: PathBuf,
        /// The current count.
        current: u16,
        /// The count asked.
        requested: u16,
    },
    /// Two cluster definitions disagree (`cluster.conf`, `corosync.conf`).
    #[error("cluster {cluster}: node {node} conflicts: {reason}")]
    ClusterConflict {
        /// The cluster name.
        cluster: String,
        /// The node name or number concerned.
        node: String,
        /// What disagrees.
        reason: &'static str,
    },
    /// A cluster was named that the configuration does not define.
    #[error("cluster {cluster} is not defined in {path}")]
    UnknownCluster {
        /// The cluster name.
        cluster: String,
        /// The configuration file.
        path: PathBuf,
    },
    /// `/etc/default/o2cb` settings that cannot work together.
    #[error("o2cb setting {setting} = {value}: {reason}")]
    O2cbSettings {
        /// The variable (`O2CB_KEEPALIVE_DELAY_MS` …).
        setting: &'static str,
        /// Its value.
        value: u64,
        /// Which relationship it breaks.
        reason: &'static str,
    },
    /// Captured output or a configuration file did not have the expected shape.
    #[error("cannot parse {format} at line {line}: {reason}")]
    Parse {
        /// What was being parsed.
        format: Format,
        /// 1-based line (0 when not line-oriented).
        line: usize,
        /// What was wrong.
        reason: &'static str,
    },
    /// A file-system operation failed.
    #[error("cannot {op} {path}")]
    Io {
        /// The operation.
        op: IoOp,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A host operation failed (a command, a managed file, a mount).
    #[error("{step} {target} failed")]
    Host {
        /// What was being done.
        step: Step,
        /// The device, file or cluster concerned.
        target: String,
        /// The cause.
        #[source]
        source: host_storage::Error,
    },
}

impl Error {
    pub(crate) fn invalid(kind: ValueKind, value: impl Into<String>, reason: &'static str) -> Self {
        Error::Invalid {
            kind,
            value: value.into(),
            reason,
        }
    }

    pub(crate) fn parse(format: Format, line: usize, reason: &'static str) -> Self {
        Error::Parse {
            format,
            line,
            reason,
        }
    }

    pub(crate) fn io(op: IoOp, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// A closure wrapping a [`host_storage::Error`] as [`Error::Host`].
    pub(crate) fn host(
        step: Step,
        target: impl std::fmt::Display,
    ) -> impl FnOnce(host_storage::Error) -> Self {
        let target = target.to_string();
        move |source| Error::Host {
            step,
            target,
            source,
        }
    }

    /// True when this error is a refusal that protected data or identity (signature,
    /// identity, slot/journal counts, shrinking) rather than a failure.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Error::HasSignature { .. }
                | Error::IdentityMismatch { .. }
                | Error::IdentityUnknown { .. }
                | Error::DeviceInUse { .. }
                | Error::NotAnImageFile { .. }
                | Error::TooFewSlots { .. }
                | Error::TooFewJournals { .. }
                | Error::WouldShrink { .. }
        )
    }

    /// True when a command exited with `code` (see [`host_storage::Error::is_exit_code`]).
    pub fn is_exit_code(&self, code: i32) -> bool {
        matches!(self, Error::Host { source, .. } if source.is_exit_code(code))
    }
}

/// This crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
