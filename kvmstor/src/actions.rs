//! The plan entries ([`ActionKind`]) that the NFS, SMB and block steps list in the same
//! words: an ONTAP call, a host command, an owned file line, and the datastore's libvirt
//! pool defined or removed.

use std::path::PathBuf;

use crate::nfs::PoolRequest;
use crate::saga::ActionKind;

/// An ONTAP REST call: `method path`, and what its body asks for in words.
pub(crate) fn ontap_call(method: &str, path: impl Into<String>, summary: String) -> ActionKind {
    ActionKind::OntapCall {
        method: method.into(),
        path: path.into(),
        summary,
    }
}

/// A program run on `host`.
pub(crate) fn host_cmd(host: &str, command: String) -> ActionKind {
    ActionKind::HostCommand {
        host: host.to_owned(),
        command,
    }
}

/// A line kvmstor owns in the file `path` on `host`.
pub(crate) fn file_change(host: &str, path: impl Into<PathBuf>, line: String) -> ActionKind {
    ActionKind::FileChange {
        host: host.to_owned(),
        path: path.into(),
        line,
    }
}

/// The datastore's pool defined on `host` (its XML, or why it cannot be built).
pub(crate) fn pool_defined(host: &str, pool: &PoolRequest) -> ActionKind {
    ActionKind::LibvirtDefinition {
        host: host.to_owned(),
        uri: String::new(),
        xml: pool
            .def()
            .map(|d| d.to_xml())
            .unwrap_or_else(|e| format!("(invalid pool: {e})")),
    }
}

/// The datastore's pool removed from `host`, its data kept.
pub(crate) fn pool_removed(host: &str, pool: &PoolRequest) -> ActionKind {
    ActionKind::LibvirtRemoval {
        host: host.to_owned(),
        uri: String::new(),
        what: format!("pool {} (data kept)", pool.name),
    }
}
