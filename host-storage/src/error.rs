//! The crate's one error type.

use std::path::PathBuf;
use std::time::Duration;

use crate::runner::Exit;

/// What kind of value failed validation (see [`Error::Invalid`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ValueKind {
    /// An iSCSI qualified name ([`crate::Iqn`]).
    Iqn,
    /// An NVMe qualified name ([`crate::Nqn`]).
    Nqn,
    /// A Fibre Channel world wide name ([`crate::Wwpn`], [`crate::Wwnn`]).
    Wwn,
    /// A multipath WWID ([`crate::Wwid`]).
    Wwid,
    /// An ONTAP LUN serial number ([`crate::LunSerial`]).
    LunSerial,
    /// A host name or IP address ([`crate::HostName`]).
    HostName,
    /// A token written into a configuration line ([`crate::ConfigToken`]).
    ConfigToken,
    /// A path written into a configuration line or passed to `mount`.
    Path,
    /// A UUID (NVMe host ID).
    Uuid,
    /// An NFS mount option ([`crate::nfs::NfsOptions`]).
    NfsOption,
    /// A CIFS mount option ([`crate::cifs::CifsOptions`]).
    CifsOption,
    /// A program name given to [`crate::Command::new`].
    Program,
    /// A name of an autofs map or an ownership id.
    Name,
}

impl std::fmt::Display for ValueKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            ValueKind::Iqn => "IQN",
            ValueKind::Nqn => "NQN",
            ValueKind::Wwn => "WWN",
            ValueKind::Wwid => "WWID",
            ValueKind::LunSerial => "LUN serial",
            ValueKind::HostName => "host name",
            ValueKind::ConfigToken => "configuration token",
            ValueKind::Path => "path",
            ValueKind::Uuid => "UUID",
            ValueKind::NfsOption => "NFS mount option",
            ValueKind::CifsOption => "CIFS mount option",
            ValueKind::Program => "program name",
            ValueKind::Name => "name",
        };
        f.write_str(s)
    }
}

/// Which captured format a parser was reading (see [`Error::Parse`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// `iscsiadm -m session`.
    IscsiSession,
    /// `iscsiadm -m session -P 3`.
    IscsiSessionP3,
    /// `iscsiadm -m discoverydb -P 1`.
    IscsiDiscoveryDb,
    /// `/etc/iscsi/initiatorname.iscsi`.
    InitiatorName,
    /// `multipath -ll` / `multipath -l`.
    MultipathLl,
    /// `multipathd show maps json`.
    MultipathdJson,
    /// `nvme list-subsys -o json`.
    NvmeListSubsys,
    /// `nvme show-topology -o json`.
    NvmeTopology,
    /// `nvme netapp ontapdevices -o json`.
    NvmeOntapDevices,
    /// `/etc/nvme/hostnqn` or `/etc/nvme/hostid`.
    NvmeHostFile,
    /// `/proc/self/mountinfo`.
    MountInfo,
    /// `dmsetup status`.
    DmsetupStatus,
    /// `/etc/os-release`.
    OsRelease,
    /// `/etc/fstab`.
    Fstab,
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Format::IscsiSession => "iscsiadm -m session",
            Format::IscsiSessionP3 => "iscsiadm -m session -P 3",
            Format::IscsiDiscoveryDb => "iscsiadm -m discoverydb -P 1",
            Format::InitiatorName => "initiatorname.iscsi",
            Format::MultipathLl => "multipath -ll",
            Format::MultipathdJson => "multipathd show maps json",
            Format::NvmeListSubsys => "nvme list-subsys -o json",
            Format::NvmeTopology => "nvme show-topology -o json",
            Format::NvmeOntapDevices => "nvme netapp ontapdevices -o json",
            Format::NvmeHostFile => "nvme host file",
            Format::MountInfo => "mountinfo",
            Format::DmsetupStatus => "dmsetup status",
            Format::OsRelease => "os-release",
            Format::Fstab => "fstab",
        };
        f.write_str(s)
    }
}

/// A file-system operation that failed (see [`Error::Io`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IoOp {
    /// Reading a file or directory.
    Read,
    /// Writing a temporary file.
    Write,
    /// Flushing a file to disk.
    Sync,
    /// Renaming the temporary file over the target.
    Rename,
    /// Changing mode or owner.
    SetPermissions,
    /// Creating a directory.
    CreateDir,
    /// Removing a file or directory.
    Remove,
    /// Taking a lock.
    Lock,
    /// Mounting.
    Mount,
    /// Unmounting.
    Unmount,
    /// Sending a signal.
    Signal,
}

impl std::fmt::Display for IoOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            IoOp::Read => "read",
            IoOp::Write => "write",
            IoOp::Sync => "sync",
            IoOp::Rename => "rename",
            IoOp::SetPermissions => "set permissions of",
            IoOp::CreateDir => "create directory",
            IoOp::Remove => "remove",
            IoOp::Lock => "lock",
            IoOp::Mount => "mount",
            IoOp::Unmount => "unmount",
            IoOp::Signal => "signal",
        };
        f.write_str(s)
    }
}

/// Everything that can go wrong in this crate.
///
/// Variants name the operation and keep its context in typed fields. Secrets never appear in
/// any field: command arguments are stored redacted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value was refused before anything was touched.
    #[error("invalid {kind} {value:?}: {reason}")]
    Invalid {
        /// What kind of value.
        kind: ValueKind,
        /// The value as given (never a secret).
        value: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// Two options that cannot be combined.
    #[error("conflicting options {first:?} and {second:?}: {reason}")]
    Conflict {
        /// The first option.
        first: String,
        /// The second option.
        second: String,
        /// Why they conflict.
        reason: &'static str,
    },
    /// A program was not found in the fixed directories.
    #[error("program {program:?} not found in {searched:?}")]
    ProgramNotFound {
        /// The program name.
        program: String,
        /// The directories searched.
        searched: Vec<PathBuf>,
    },
    /// A program could not be started, or its pipes failed.
    #[error("could not run {program}")]
    Spawn {
        /// The resolved program path.
        program: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A program ended with a status the caller did not accept.
    #[error("command `{program} {args}` failed with {status}: {stderr_tail}")]
    Command {
        /// The program name.
        program: String,
        /// The arguments, joined, secrets replaced by `***`.
        args: String,
        /// How it ended.
        status: Exit,
        /// The last lines of its standard error.
        stderr_tail: String,
    },
    /// A program ran past its timeout; its whole process group was killed.
    #[error("command `{program} {args}` timed out after {after:?}")]
    Timeout {
        /// The program name.
        program: String,
        /// The arguments, joined, secrets replaced by `***`.
        args: String,
        /// The timeout that expired.
        after: Duration,
    },
    /// A [`crate::FakeRunner`] got a call it was not scripted for.
    #[error("unexpected command `{call}` (next expected: {expected})")]
    UnexpectedCall {
        /// The call, redacted.
        call: String,
        /// The next scripted expectation, or `nothing`.
        expected: String,
    },
    /// Captured output did not have the expected shape.
    #[error("cannot parse {format} output at line {line}: {reason}")]
    Parse {
        /// The format being parsed.
        format: Format,
        /// 1-based line number (0 when not line-oriented).
        line: usize,
        /// What was wrong.
        reason: &'static str,
    },
    /// JSON output did not decode.
    #[error("cannot decode {format} JSON")]
    Json {
        /// The format being parsed.
        format: Format,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A file-system operation failed.
    #[error("cannot {op} {path}")]
    Io {
        /// The operation.
        op: IoOp,
        /// The path concerned.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A system call failed.
    #[error("cannot {op} {path}")]
    Sys {
        /// The operation.
        op: IoOp,
        /// The path concerned.
        path: PathBuf,
        /// The cause.
        #[source]
        source: nix::errno::Errno,
    },
    /// A configuration file already has a line for this key that kvmstor does not own.
    #[error("{path} line {line} already configures {key:?} and is not owned by kvmstor")]
    NotOwned {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The mount point or map key.
        key: String,
    },
    /// A path is mounted with something other than what was asked.
    #[error("{target} is already mounted from {found_source} ({found_fstype})")]
    MountedElsewhere {
        /// The mount point.
        target: PathBuf,
        /// What is mounted there.
        found_source: String,
        /// Its file-system type.
        found_fstype: String,
    },
    /// A device did not appear (or a state was not reached) before the deadline.
    #[error("timed out after {after:?} waiting for {what}")]
    WaitTimeout {
        /// What was awaited (a device match, a path count).
        what: String,
        /// How long was waited.
        after: Duration,
    },
    /// A device was found under a name but its identity (serial, WWID, UUID) is not the one
    /// asked for: the kernel may hold stale data, and the device must not be used.
    #[error("device {device} is not {expected}: it reports {found:?}")]
    DeviceMismatch {
        /// The device name (`sdb`, `dm-3`, `nvme0n1`).
        device: String,
        /// The identity asked for.
        expected: String,
        /// The identity the device reports.
        found: String,
    },
    /// The udev monitor could not be set up or read.
    #[error("udev monitor failed")]
    Udev {
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A daemon the operation relies on is not running (automount for an autofs entry: an
    /// entry nobody serves leaves its path a plain directory on the host's own disk).
    #[error("{daemon} is not running: {evidence}")]
    NotRunning {
        /// The daemon, e.g. `automount`.
        daemon: &'static str,
        /// What was checked, e.g. `no pid file (/run/autofs.pid, /var/run/autofs.pid)`.
        evidence: String,
    },
    /// A host resource is still in use, so it is left in place (a target with other LUNs, a
    /// map with holders, a subsystem with other namespaces).
    #[error("{resource} is still in use by {users:?}")]
    InUse {
        /// The resource (a target IQN, a map name, a subsystem NQN).
        resource: String,
        /// What uses it.
        users: Vec<String>,
    },
}

impl Error {
    /// Shorthand for [`Error::Invalid`].
    pub(crate) fn invalid(kind: ValueKind, value: impl Into<String>, reason: &'static str) -> Self {
        Error::Invalid {
            kind,
            value: value.into(),
            reason,
        }
    }

    /// Shorthand for [`Error::Parse`].
    pub(crate) fn parse(format: Format, line: usize, reason: &'static str) -> Self {
        Error::Parse {
            format,
            line,
            reason,
        }
    }

    /// Shorthand for [`Error::Io`].
    pub(crate) fn io(op: IoOp, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// True when a command exited with the given code.
    ///
    /// ```
    /// use host_storage::{Error, Exit};
    /// let err = Error::Command {
    ///     program: "iscsiadm".into(),
    ///     args: "-m session".into(),
    ///     status: Exit::Code(21),
    ///     stderr_tail: "iscsiadm: No active sessions.".into(),
    /// };
    /// assert!(err.is_exit_code(21));
    /// assert!(!err.is_exit_code(1));
    /// ```
    pub fn is_exit_code(&self, code: i32) -> bool {
        matches!(self, Error::Command { status: Exit::Code(c), .. } if *c == code)
    }

    /// True for [`Error::Timeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }
}

/// This crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
