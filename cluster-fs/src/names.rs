//! Validated names shared by OCFS2 and GFS2: cluster, node, label, GFS2 file-system name and
//! lock table. Each is checked once, when built, and is then safe in an argv element, a
//! configuration line and a superblock.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result, ValueKind};

macro_rules! name_common {
    ($t:ident) => {
        impl $t {
            /// The validated value.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl FromStr for $t {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Self::parse(s)
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

/// A cluster name valid for both stacks: 1 to 16 ASCII letters or digits.
///
/// o2cb allows at most 16 alphanumeric characters (`OCFS2_CLUSTER_NAME_LEN`); corosync's
/// `cluster_name` becomes the first half of a GFS2 lock table (at most 32), so the stricter
/// rule serves both.
///
/// ```
/// use cluster_fs::ClusterName;
/// assert_eq!(ClusterName::parse("kvmcl")?.as_str(), "kvmcl");
/// assert!(ClusterName::parse("kvm-cluster").is_err());
/// assert!(ClusterName::parse("a23456789abcdefgh").is_err()); // 17
/// # Ok::<(), cluster_fs::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClusterName(String);

impl ClusterName {
    /// Validates a cluster name.
    pub fn parse(s: &str) -> Result<Self> {
        if s.is_empty() || s.len() > 16 || !s.bytes().all(|c| c.is_ascii_alphanumeric()) {
            return Err(Error::invalid(
                ValueKind::ClusterName,
                s,
                "must be 1 to 16 ASCII letters or digits",
            ));
        }
        Ok(ClusterName(s.to_owned()))
    }
}
name_common!(ClusterName);

/// A cluster node's name: the host's short name as `uname -n` gives it (o2cb matches it
/// against the local host name). 1 to 64 of `[A-Za-z0-9_.-]`, starting with a letter or digit.
///
/// ```
/// use cluster_fs::NodeName;
/// assert!(NodeName::parse("kvm1").is_ok());
/// assert!(NodeName::parse("kvm 1").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeName(String);

impl NodeName {
    /// Validates a node name.
    pub fn parse(s: &str) -> Result<Self> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.as_bytes()[0].is_ascii_alphanumeric()
            && s.bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
        if !ok {
            return Err(Error::invalid(
                ValueKind::NodeName,
                s,
                "must be 1 to 64 of A-Z a-z 0-9 _ . - starting with a letter or digit",
            ));
        }
        Ok(NodeName(s.to_owned()))
    }
}
name_common!(NodeName);

/// An OCFS2 volume label: 1 to 63 bytes of `[A-Za-z0-9_.-]` (the superblock holds 64 with
/// the terminating NUL). The restricted set keeps it usable in `LABEL=` fstab sources and
/// `/dev/disk/by-label` names.
///
/// ```
/// use cluster_fs::Label;
/// assert!(Label::parse("vmstore-01").is_ok());
/// assert!(Label::parse("vm store").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label(String);

impl Label {
    /// Validates a label.
    pub fn parse(s: &str) -> Result<Self> {
        if s.is_empty()
            || s.len() > 63
            || !s
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
        {
            return Err(Error::invalid(
                ValueKind::Label,
                s,
                "must be 1 to 63 of A-Z a-z 0-9 _ . -",
            ));
        }
        Ok(Label(s.to_owned()))
    }
}
name_common!(Label);

/// A GFS2 file-system name, the second half of its lock table: 1 to 30 of
/// `[A-Za-z0-9_-]` (gfs2(5): the lock table is `cluster:fsname`, fsname at most 30).
///
/// ```
/// use cluster_fs::FsName;
/// assert!(FsName::parse("vmstore").is_ok());
/// assert!(FsName::parse("vm:store").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FsName(String);

impl FsName {
    /// Validates a file-system name.
    pub fn parse(s: &str) -> Result<Self> {
        if s.is_empty()
            || s.len() > 30
            || !s
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-'))
        {
            return Err(Error::invalid(
                ValueKind::FsName,
                s,
                "must be 1 to 30 of A-Z a-z 0-9 _ -",
            ));
        }
        Ok(FsName(s.to_owned()))
    }
}
name_common!(FsName);

/// A GFS2 lock table, `cluster:fsname`; the cluster part must be corosync's `cluster_name`,
/// or DLM refuses the mount.
///
/// ```
/// use cluster_fs::LockTable;
/// let t = LockTable::parse("kvmcl:vmstore")?;
/// assert_eq!(t.cluster().as_str(), "kvmcl");
/// assert_eq!(t.fs().as_str(), "vmstore");
/// assert_eq!(t.to_string(), "kvmcl:vmstore");
/// assert!(LockTable::parse("vmstore").is_err());
/// # Ok::<(), cluster_fs::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LockTable {
    cluster: ClusterName,
    fs: FsName,
}

impl LockTable {
    /// A lock table from its parts.
    pub fn new(cluster: ClusterName, fs: FsName) -> Self {
        LockTable { cluster, fs }
    }

    /// Parses `cluster:fsname`.
    pub fn parse(s: &str) -> Result<Self> {
        let Some((c, f)) = s.split_once(':') else {
            return Err(Error::invalid(
                ValueKind::FsName,
                s,
                "lock table must be cluster:fsname",
            ));
        };
        Ok(LockTable {
            cluster: ClusterName::parse(c)?,
            fs: FsName::parse(f)?,
        })
    }

    /// The cluster part.
    pub fn cluster(&self) -> &ClusterName {
        &self.cluster
    }

    /// The file-system part.
    pub fn fs(&self) -> &FsName {
        &self.fs
    }
}

impl fmt::Display for LockTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.cluster, self.fs)
    }
}

impl FromStr for LockTable {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}
