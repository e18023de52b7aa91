//! Host identities the storage system must know: the iSCSI initiator IQN, FC port WWPNs and
//! their state, and the NVMe host NQN and host ID (read, or generated the way nvme-cli does).

use std::path::{Path, PathBuf};

use crate::change::Change;
use crate::error::{Error, IoOp, Result};
use crate::files::{atomic_write, read_optional, HostRoot};
use crate::ids::{is_uuid, Iqn, Nqn, Wwnn, Wwpn};
use crate::parse::iscsi::parse_initiator_name;
use crate::parse::nvme::{parse_hostid, parse_hostnqn};

/// The iSCSI initiator name from `/etc/iscsi/initiatorname.iscsi`; `None` when the file is
/// missing (open-iscsi not installed).
pub fn initiator_iqn(root: &HostRoot) -> Result<Option<Iqn>> {
    read_optional(&root.path("/etc/iscsi/initiatorname.iscsi"))?
        .map(|t| parse_initiator_name(&t))
        .transpose()
}

/// One Fibre Channel HBA port (`/sys/class/fc_host/hostN`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FcHost {
    /// The SCSI host number `N`.
    pub host: u32,
    /// Port name.
    pub wwpn: Wwpn,
    /// Node name.
    pub wwnn: Wwnn,
    /// `Online`, `Linkdown`, `Offline`, ….
    pub port_state: String,
    /// Negotiated speed (`16 Gbit`), when reported.
    pub speed: Option<String>,
}

impl FcHost {
    /// True when the port is `Online` (only those are given to ONTAP igroups).
    pub fn is_online(&self) -> bool {
        self.port_state == "Online"
    }
}

fn read_attr(dir: &Path, name: &str) -> Result<Option<String>> {
    Ok(read_optional(&dir.join(name))?.map(|s| s.trim().to_owned()))
}

/// Lists the FC HBA ports under `/sys/class/fc_host`, sorted by host number. No directory
/// (no FC HBA) gives an empty list.
pub fn fc_hosts(root: &HostRoot) -> Result<Vec<FcHost>> {
    let class = root.path("/sys/class/fc_host");
    let entries = match std::fs::read_dir(&class) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(IoOp::Read, &class, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(IoOp::Read, &class, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(host) = name.strip_prefix("host").and_then(|n| n.parse().ok()) else {
            continue;
        };
        let dir = entry.path();
        let (Some(pn), Some(nn)) = (read_attr(&dir, "port_name")?, read_attr(&dir, "node_name")?)
        else {
            continue;
        };
        out.push(FcHost {
            host,
            wwpn: Wwpn::parse(&pn)?,
            wwnn: Wwnn::parse(&nn)?,
            port_state: read_attr(&dir, "port_state")?.unwrap_or_default(),
            speed: read_attr(&dir, "speed")?.filter(|s| !s.is_empty() && s != "unknown"),
        });
    }
    out.sort_by_key(|h| h.host);
    Ok(out)
}

/// The NVMe host identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvmeIdentity {
    /// Host NQN (`/etc/nvme/hostnqn`).
    pub host_nqn: Nqn,
    /// Host ID, a UUID (`/etc/nvme/hostid`).
    pub host_id: String,
}

/// What [`ensure_nvme_identity`] did, to undo it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvmeIdentityUndo {
    /// Files the call created (undo deletes them).
    pub created: Vec<PathBuf>,
    /// Whether anything changed.
    pub change: Change,
}

/// Reads `/etc/nvme/hostnqn` and `/etc/nvme/hostid`; `None` when either is missing.
pub fn nvme_identity(root: &HostRoot) -> Result<Option<NvmeIdentity>> {
    let nqn = read_optional(&root.path("/etc/nvme/hostnqn"))?;
    let id = read_optional(&root.path("/etc/nvme/hostid"))?;
    match (nqn, id) {
        (Some(n), Some(i)) => Ok(Some(NvmeIdentity {
            host_nqn: parse_hostnqn(&n)?,
            host_id: parse_hostid(&i)?,
        })),
        _ => Ok(None),
    }
}

/// The machine UUID nvme-cli bases a generated identity on: the DMI `product_uuid`, unless
/// it is missing or a placeholder (all zeros or all `f`).
fn dmi_uuid(root: &HostRoot) -> Result<Option<String>> {
    let Some(v) =
        read_optional(&root.path("/sys/class/dmi/id/product_uuid")).or_else(|e| match e {
            // Readable by root only; treat permission errors as "not available".
            Error::Io { ref source, .. }
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                Ok(None)
            }
            e => Err(e),
        })?
    else {
        return Ok(None);
    };
    let v = v.trim().to_ascii_lowercase();
    let hex: String = v.chars().filter(|c| *c != '-').collect();
    let placeholder = hex.chars().all(|c| c == '0') || hex.chars().all(|c| c == 'f');
    Ok((is_uuid(&v) && !placeholder).then_some(v))
}

/// Makes sure the host has an NVMe identity, creating what is missing the way nvme-cli's
/// `gen-hostnqn` does: the host ID is the existing `/etc/nvme/hostid`, else the UUID of an
/// existing UUID-form host NQN, else the DMI product UUID, else a random UUID; a missing host
/// NQN becomes `nqn.2014-08.org.nvmexpress:uuid:<host id>`. Existing files are never changed.
pub fn ensure_nvme_identity(root: &HostRoot) -> Result<(NvmeIdentity, NvmeIdentityUndo)> {
    let nqn_path = root.path("/etc/nvme/hostnqn");
    let id_path = root.path("/etc/nvme/hostid");
    let nqn = read_optional(&nqn_path)?
        .map(|t| parse_hostnqn(&t))
        .transpose()?;
    let id = read_optional(&id_path)?
        .map(|t| parse_hostid(&t))
        .transpose()?;
    let host_id = match (&id, &nqn) {
        (Some(i), _) => i.clone(),
        (None, Some(n)) if n.uuid().is_some() => n.uuid().unwrap_or_default().to_ascii_lowercase(),
        _ => match dmi_uuid(root)? {
            Some(u) => u,
            None => uuid::Uuid::new_v4().to_string(),
        },
    };
    let host_nqn = match nqn {
        Some(n) => n,
        None => Nqn::from_uuid(&host_id)?,
    };
    let mut created = Vec::new();
    if let Some(dir) = nqn_path.parent() {
        if !dir.is_dir() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(IoOp::CreateDir, dir, e))?;
        }
    }
    if !nqn_path.exists() {
        atomic_write(&nqn_path, format!("{host_nqn}\n").as_bytes(), 0o644)?;
        created.push(nqn_path);
    }
    if !id_path.exists() {
        atomic_write(&id_path, format!("{host_id}\n").as_bytes(), 0o644)?;
        created.push(id_path);
    }
    let change = Change::from(!created.is_empty());
    Ok((
        NvmeIdentity { host_nqn, host_id },
        NvmeIdentityUndo { created, change },
    ))
}

/// Deletes the files [`ensure_nvme_identity`] created.
pub fn undo_nvme_identity(undo: &NvmeIdentityUndo) -> Result<Change> {
    let mut change = Change::Unchanged;
    for p in &undo.created {
        match std::fs::remove_file(p) {
            Ok(()) => change = Change::Changed,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(IoOp::Remove, p, e)),
        }
    }
    Ok(change)
}
