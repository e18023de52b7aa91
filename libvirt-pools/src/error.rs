//! The crate's one error type.

use std::fmt;
use std::path::PathBuf;

use crate::pool::{PoolType, Protocol};

/// What a name was checked as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameKind {
    /// A storage pool name.
    Pool,
    /// A storage volume name.
    Volume,
    /// The usage name of a libvirt secret.
    Secret,
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameKind::Pool => "pool",
            NameKind::Volume => "volume",
            NameKind::Secret => "secret usage",
        })
    }
}

/// Why a name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameProblem {
    /// The name is empty.
    Empty,
    /// The name contains `/`, which libvirt would turn into a path.
    Slash,
    /// The name contains a control character (newline, NUL, …).
    ControlCharacter,
    /// The name is `.` or `..`.
    DotName,
    /// The name is longer than 255 bytes (the longest file name on Linux).
    TooLong,
}

impl fmt::Display for NameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameProblem::Empty => "is empty",
            NameProblem::Slash => "contains '/'",
            NameProblem::ControlCharacter => "contains a control character",
            NameProblem::DotName => "is '.' or '..'",
            NameProblem::TooLong => "is longer than 255 bytes",
        })
    }
}

/// What is wrong with the shape of an XML document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum XmlProblem {
    /// The document ended before its root element was closed.
    NoRootElement,
    /// An end tag had no matching start tag.
    UnbalancedEnd,
    /// The root element is not the expected one.
    UnexpectedRoot,
    /// A required element or attribute is missing.
    Missing,
    /// A value is not one this crate knows (unknown pool type, format, unit …).
    UnknownValue,
    /// A number could not be parsed.
    BadNumber,
}

impl fmt::Display for XmlProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            XmlProblem::NoRootElement => "the document has no complete root element",
            XmlProblem::UnbalancedEnd => "an end tag has no start tag",
            XmlProblem::UnexpectedRoot => "unexpected root element",
            XmlProblem::Missing => "required element or attribute is missing",
            XmlProblem::UnknownValue => "unknown value",
            XmlProblem::BadNumber => "not a number",
        })
    }
}

/// The libvirt operation that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// Opening the connection.
    Connect,
    /// Listing pools.
    ListPools,
    /// Looking up a pool by name.
    LookupPool,
    /// Reading a pool's XML.
    PoolXml,
    /// `virStoragePoolDefineXML`.
    DefinePool,
    /// `virStoragePoolBuild`.
    BuildPool,
    /// `virStoragePoolCreate` (start).
    StartPool,
    /// `virStoragePoolSetAutostart`.
    SetAutostart,
    /// `virStoragePoolRefresh`.
    RefreshPool,
    /// Reading pool state and sizes.
    PoolInfo,
    /// `virStoragePoolDestroy` (stop).
    DestroyPool,
    /// `virStoragePoolDelete` (remove the underlying storage).
    DeletePool,
    /// `virStoragePoolUndefine`.
    UndefinePool,
    /// Listing a pool's volumes.
    ListVolumes,
    /// Looking up a volume by name.
    LookupVolume,
    /// Reading a volume's XML or info.
    VolumeInfo,
    /// `virStorageVolCreateXML`.
    CreateVolume,
    /// `virStorageVolCreateXMLFrom`.
    CloneVolume,
    /// `virStorageVolDelete`.
    DeleteVolume,
    /// `virStorageVolResize`.
    ResizeVolume,
    /// `virStorageVolWipe`.
    WipeVolume,
    /// `virStorageVolUpload` and its stream.
    UploadVolume,
    /// `virStorageVolDownload` and its stream.
    DownloadVolume,
    /// Defining a secret or setting its value.
    DefineSecret,
    /// Looking up a secret.
    LookupSecret,
    /// Undefining a secret.
    UndefineSecret,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::Connect => "connect",
            Operation::ListPools => "list pools",
            Operation::LookupPool => "look up pool",
            Operation::PoolXml => "read pool XML",
            Operation::DefinePool => "define pool",
            Operation::BuildPool => "build pool",
            Operation::StartPool => "start pool",
            Operation::SetAutostart => "set pool autostart",
            Operation::RefreshPool => "refresh pool",
            Operation::PoolInfo => "read pool info",
            Operation::DestroyPool => "destroy pool",
            Operation::DeletePool => "delete pool storage",
            Operation::UndefinePool => "undefine pool",
            Operation::ListVolumes => "list volumes",
            Operation::LookupVolume => "look up volume",
            Operation::VolumeInfo => "read volume info",
            Operation::CreateVolume => "create volume",
            Operation::CloneVolume => "clone volume",
            Operation::DeleteVolume => "delete volume",
            Operation::ResizeVolume => "resize volume",
            Operation::WipeVolume => "wipe volume",
            Operation::UploadVolume => "upload to volume",
            Operation::DownloadVolume => "download from volume",
            Operation::DefineSecret => "define secret",
            Operation::LookupSecret => "look up secret",
            Operation::UndefineSecret => "undefine secret",
        })
    }
}

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A pool, volume or secret name was refused before libvirt was called.
    #[error("invalid {kind} name {name:?}: {problem}")]
    InvalidName {
        /// What the name names.
        kind: NameKind,
        /// The refused name.
        name: String,
        /// Why it was refused.
        problem: NameProblem,
    },
    /// A size of zero bytes was given where a real size is needed.
    #[error("{what} must not be zero")]
    ZeroSize {
        /// Which size (`"volume capacity"`, `"new capacity"` …).
        what: &'static str,
    },
    /// The pool type does not suit the storage protocol the datastore uses.
    #[error("pool {pool}: a {pool_type} pool does not fit protocol {protocol}")]
    ProtocolMismatch {
        /// Pool name.
        pool: String,
        /// The pool type asked for.
        pool_type: PoolType,
        /// The protocol of the datastore.
        protocol: Protocol,
    },
    /// A pool or disk definition is inconsistent in itself (a required field missing, a
    /// field that the type does not allow).
    #[error("{subject}: field {field}: {problem}")]
    InvalidDefinition {
        /// Pool or volume name, or `"disk"`.
        subject: String,
        /// The field at fault.
        field: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// Opening the libvirt connection failed.
    #[error("cannot connect to libvirt at {uri}")]
    Connect {
        /// The URI tried.
        uri: String,
        /// libvirt's error.
        #[source]
        source: virt::error::Error,
    },
    /// A libvirt call failed.
    #[error("{operation} failed{}", on_what(pool.as_deref(), volume.as_deref()))]
    Libvirt {
        /// The operation.
        operation: Operation,
        /// The pool concerned, if any.
        pool: Option<String>,
        /// The volume (or secret usage) concerned, if any.
        volume: Option<String>,
        /// libvirt's error, with its code and message.
        #[source]
        source: virt::error::Error,
    },
    /// The pool does not exist.
    #[error("storage pool {pool} not found")]
    PoolNotFound {
        /// Pool name.
        pool: String,
    },
    /// The volume does not exist.
    #[error("volume {volume} not found in pool {pool}")]
    VolumeNotFound {
        /// Pool name.
        pool: String,
        /// Volume name.
        volume: String,
    },
    /// A pool of that name exists with another definition; it was left untouched.
    #[error("pool {pool} exists with a different definition (differs in: {})", differences.join(", "))]
    PoolConflict {
        /// Pool name.
        pool: String,
        /// The fields that differ.
        differences: Vec<&'static str>,
    },
    /// A volume of that name exists with another definition; it was left untouched.
    #[error("volume {volume} in pool {pool} exists with a different definition (differs in: {})", differences.join(", "))]
    VolumeConflict {
        /// Pool name.
        pool: String,
        /// Volume name.
        volume: String,
        /// The fields that differ.
        differences: Vec<&'static str>,
    },
    /// The operation needs the pool to be running.
    #[error("pool {pool} is not active")]
    PoolInactive {
        /// Pool name.
        pool: String,
    },
    /// A resize would shrink the volume; shrinking loses data and is refused.
    #[error(
        "volume {volume} in pool {pool}: refusing to shrink from {current} to {requested} bytes"
    )]
    ShrinkRefused {
        /// Pool name.
        pool: String,
        /// Volume name.
        volume: String,
        /// Capacity now, in bytes.
        current: u64,
        /// Capacity asked for, in bytes.
        requested: u64,
    },
    /// An XML document is not well-formed.
    #[error("malformed {document} XML")]
    XmlSyntax {
        /// Which document (`"pool"`, `"volume"` …).
        document: &'static str,
        /// The parser's error.
        #[source]
        source: quick_xml::Error,
    },
    /// An XML document is well-formed but does not have the expected shape.
    #[error("{document} XML, element {element:?}: {problem}")]
    XmlShape {
        /// Which document.
        document: &'static str,
        /// The element (and attribute, as `element@attr`) at fault.
        element: String,
        /// What is wrong.
        problem: XmlProblem,
    },
    /// Reading or writing the local side of an upload or download failed.
    #[error("{operation} of volume {volume} in pool {pool}: local I/O failed")]
    Io {
        /// Upload or download.
        operation: Operation,
        /// Pool name.
        pool: String,
        /// Volume name.
        volume: String,
        /// Local file path, when the caller gave one.
        path: Option<PathBuf>,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The blocking task that ran the libvirt call panicked or was cancelled.
    #[error("the blocking libvirt task for {operation} did not complete")]
    Task {
        /// The operation.
        operation: Operation,
        /// Tokio's join error.
        #[source]
        source: tokio::task::JoinError,
    },
}

fn on_what(pool: Option<&str>, volume: Option<&str>) -> String {
    match (pool, volume) {
        (Some(p), Some(v)) => format!(" for volume {v} in pool {p}"),
        (Some(p), None) => format!(" for pool {p}"),
        (None, Some(v)) => format!(" for {v}"),
        (None, None) => String::new(),
    }
}

impl Error {
    /// True when the error says a pool or volume does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Error::PoolNotFound { .. } | Error::VolumeNotFound { .. }
        )
    }

    /// True when an existing object differs from the one asked for.
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            Error::PoolConflict { .. } | Error::VolumeConflict { .. }
        )
    }

    /// True when the input was refused before libvirt was called.
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            Error::InvalidName { .. }
                | Error::ZeroSize { .. }
                | Error::ProtocolMismatch { .. }
                | Error::InvalidDefinition { .. }
        )
    }

    /// libvirt's error code, when libvirt reported the error.
    pub fn libvirt_code(&self) -> Option<virt::error::ErrorNumber> {
        match self {
            Error::Connect { source, .. } | Error::Libvirt { source, .. } => source.code().known(),
            _ => None,
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libvirt_errors_name_operation_and_objects() {
        // Built without calling libvirt (its error state needs an initialised library).
        let nul = std::ffi::CString::new("a\0b").unwrap_err();
        let source = virt::error::Error::from(nul);
        let e = Error::Libvirt {
            operation: Operation::ResizeVolume,
            pool: Some("ds1".into()),
            volume: Some("vm1.qcow2".into()),
            source,
        };
        assert_eq!(
            e.to_string(),
            "resize volume failed for volume vm1.qcow2 in pool ds1"
        );
        let e = Error::PoolConflict {
            pool: "ds1".into(),
            differences: vec!["type", "source"],
        };
        assert_eq!(
            e.to_string(),
            "pool ds1 exists with a different definition (differs in: type, source)"
        );
        assert!(e.is_conflict() && !e.is_not_found() && !e.is_invalid_input());
    }
}
