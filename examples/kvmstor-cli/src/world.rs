//! From plain values (flags, Python arguments) to the facade's [`Env`] and datastores
//! ([`NfsDatastore`], [`SmbDatastore`], [`BlockDatastore`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use kvmstor::block::{BlockDatastore, BlockProtocol};
use kvmstor::nfs::{NfsDatastore, Persist, PoolKind};
use kvmstor::smb::SmbDatastore;
use kvmstor::{Env, Host};
use ontap_client::models::{CifsAclType, CifsPermission};
use ontap_client::{Client, SecretString};

use crate::simhost::{simulated_block_host, simulated_host, SimKernelRunner};

/// Why plain values could not be turned into a world.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorldError {
    /// A size is not `N`, `NK`, `NM`, `NG` or `NT`.
    #[error("invalid size {value:?} (expected e.g. 500G)")]
    Size {
        /// The refused text.
        value: String,
    },
    /// A host is not `NAME=ADDRESS`.
    #[error("invalid host {value:?} (expected NAME=ADDRESS)")]
    Host {
        /// The refused text.
        value: String,
    },
    /// A keyword is not one of the allowed ones.
    #[error("invalid {field} {value:?} (expected one of {allowed})")]
    Choice {
        /// The field.
        field: &'static str,
        /// The refused value.
        value: String,
        /// The allowed values.
        allowed: &'static str,
    },
    /// A share ACL entry is not `WHO=PERMISSION` or `WHO:KIND=PERMISSION`.
    #[error("invalid share ACL entry {value:?} (expected WHO=PERMISSION or WHO:KIND=PERMISSION, e.g. CORP\\vm-admins=change or backup:unix_user=read)")]
    Acl {
        /// The refused text.
        value: String,
    },
    /// The SVM's FC LIFs could not be read (simulated FC hosts log in to them).
    #[error("cannot read the FC LIFs of SVM {svm}")]
    FcTargets {
        /// The SVM.
        svm: String,
        /// The client's error.
        #[source]
        source: Box<ontap_client::Error>,
    },
    /// Preparing a simulated host's scratch root failed.
    #[error("cannot prepare the simulated host root {path}", path = path.display())]
    SimRoot {
        /// The root.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// `4096`, `512M`, `10G`, `1T` (binary units) as bytes.
pub fn parse_size(s: &str) -> Result<u64, WorldError> {
    let t = s.trim();
    let (num, shift) = match t.chars().last() {
        Some('K' | 'k') => (&t[..t.len() - 1], 10),
        Some('M' | 'm') => (&t[..t.len() - 1], 20),
        Some('G' | 'g') => (&t[..t.len() - 1], 30),
        Some('T' | 't') => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1u64 << shift))
        .ok_or_else(|| WorldError::Size {
            value: s.to_owned(),
        })
}

/// One host: its name and the address its export rule admits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    /// Name.
    pub name: String,
    /// Export-rule address.
    pub address: String,
}

impl std::str::FromStr for HostSpec {
    type Err = WorldError;

    /// `NAME=ADDRESS`.
    fn from_str(s: &str) -> Result<Self, WorldError> {
        match s.split_once('=') {
            Some((n, a)) if !n.is_empty() && !a.is_empty() => Ok(HostSpec {
                name: n.to_owned(),
                address: a.to_owned(),
            }),
            _ => Err(WorldError::Host {
                value: s.to_owned(),
            }),
        }
    }
}

/// How hosts are reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMode {
    /// This machine, for real, with this libvirt URI.
    Local {
        /// libvirt URI.
        libvirt_uri: String,
    },
    /// Simulated host side: host `NAME` lives under `ROOT/NAME` (see [`crate::simhost`]).
    Simulated {
        /// Parent of the scratch roots.
        root: PathBuf,
    },
}

/// The environment: `client` and the hosts.
pub fn env(client: Client, hosts: &[HostSpec], mode: &HostMode) -> Result<Env, WorldError> {
    let mut env = Env::new(client);
    for h in hosts {
        let host = match mode {
            HostMode::Local { libvirt_uri } => Host::local(h.name.clone())
                .address(h.address.clone())
                .libvirt_uri(libvirt_uri.clone()),
            HostMode::Simulated { root } => {
                let dir = root.join(&h.name);
                simulated_host(&h.name, &h.address, &dir)
                    .map_err(|source| WorldError::SimRoot { path: dir, source })?
                    .0
            }
        };
        env = env.host(host);
    }
    Ok(env)
}

/// The hosts of a block datastore's environment and the fake kernels' reaction tasks of
/// simulated ones (aborted on drop).
#[derive(Debug)]
pub struct BlockWorld {
    /// The environment.
    pub env: Env,
    reactions: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for BlockWorld {
    fn drop(&mut self) {
        for r in &self.reactions {
            r.abort();
        }
    }
}

/// The WWPNs of `svm`'s FC LIFs: what a simulated FC host's HBA logs in to.
pub async fn fc_targets(client: &Client, svm: &str) -> Result<Vec<String>, WorldError> {
    Ok(client
        .fc_interfaces()
        .of_svm(svm)
        .await
        .map_err(|source| WorldError::FcTargets {
            svm: svm.to_owned(),
            source: Box::new(source),
        })?
        .into_iter()
        .filter_map(|l| l.wwpn)
        .collect())
}

/// The environment of a block datastore over `protocol` of `svm`: `client` and the hosts.
/// Simulated hosts get initiator identities and a fake kernel that reacts to scans (see
/// [`crate::simhost::simulated_block_host`]); with FC, their HBA is logged in to the SVM's
/// FC LIFs. Call inside a tokio runtime (the reactions are spawned on it).
pub async fn block_env(
    client: Client,
    hosts: &[HostSpec],
    mode: &HostMode,
    protocol: BlockProtocol,
    svm: &str,
) -> Result<BlockWorld, WorldError> {
    let HostMode::Simulated { root } = mode else {
        return Ok(BlockWorld {
            env: env(client, hosts, mode)?,
            reactions: Vec::new(),
        });
    };
    let fc_targets = if protocol == BlockProtocol::Fcp {
        fc_targets(&client, svm).await?
    } else {
        Vec::new()
    };
    let mut world = BlockWorld {
        env: Env::new(client.clone()),
        reactions: Vec::new(),
    };
    for h in hosts {
        let dir = root.join(&h.name);
        let (host, runner) =
            simulated_block_host(&h.name, &h.address, &dir, client.clone(), &fc_targets)
                .map_err(|source| WorldError::SimRoot { path: dir, source })?;
        world.env = world.env.clone().host(host);
        world
            .reactions
            .push(tokio::spawn(SimKernelRunner::react_forever(runner)));
    }
    Ok(world)
}

/// The mount point asked for, else `<sim_root>/mnt/<name>` for simulated hosts, else none
/// (the facade's default).
fn mount_point(asked: Option<&Path>, sim_root: Option<&Path>, name: &str) -> Option<PathBuf> {
    asked
        .map(Path::to_path_buf)
        .or_else(|| sim_root.map(|root| root.join("mnt").join(name)))
}

fn persist(value: &str) -> Result<Persist, WorldError> {
    match value {
        "fstab" => Ok(Persist::Fstab),
        "autofs" => Ok(Persist::Autofs),
        other => Err(WorldError::Choice {
            field: "persist",
            value: other.to_owned(),
            allowed: "fstab, autofs",
        }),
    }
}

/// One entry of an SMB share's ACL beside the mount account's full control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclSpec {
    /// User or group, e.g. `CORP\vm-admins` or `Everyone`.
    pub who: String,
    /// `windows` (default), `unix_user` or `unix_group`.
    pub kind: CifsAclType,
    /// `no_access`, `read`, `change` or `full_control`.
    pub permission: CifsPermission,
}

impl AclSpec {
    /// An entry from its parts; the kind and permission must be ONTAP's keywords.
    ///
    /// ```
    /// use kvmstor_cli::world::AclSpec;
    /// let acl = AclSpec::new("backup", "unix_user", "read").unwrap();
    /// assert_eq!(acl.permission.as_str(), "read");
    /// assert!(AclSpec::new("backup", "unix", "read").is_err());
    /// ```
    pub fn new(who: &str, kind: &str, permission: &str) -> Result<AclSpec, WorldError> {
        let kind = match kind {
            "windows" => CifsAclType::Windows,
            "unix_user" => CifsAclType::UnixUser,
            "unix_group" => CifsAclType::UnixGroup,
            other => {
                return Err(WorldError::Choice {
                    field: "share ACL type",
                    value: other.to_owned(),
                    allowed: "windows, unix_user, unix_group",
                })
            }
        };
        let permission = match permission {
            "no_access" => CifsPermission::NoAccess,
            "read" => CifsPermission::Read,
            "change" => CifsPermission::Change,
            "full_control" => CifsPermission::FullControl,
            other => {
                return Err(WorldError::Choice {
                    field: "share ACL permission",
                    value: other.to_owned(),
                    allowed: "no_access, read, change, full_control",
                })
            }
        };
        Ok(AclSpec {
            who: who.to_owned(),
            kind,
            permission,
        })
    }

    /// `WHO=PERMISSION` (a Windows user or group) or `WHO:KIND=PERMISSION`. Windows names
    /// hold neither `:` nor `=`, so both split unambiguously.
    ///
    /// ```
    /// use kvmstor_cli::world::AclSpec;
    /// let acl = AclSpec::parse(r"CORP\vm-admins=change").unwrap();
    /// assert_eq!((acl.who.as_str(), acl.kind.as_str()), (r"CORP\vm-admins", "windows"));
    /// let acl = AclSpec::parse("backup:unix_user=read").unwrap();
    /// assert_eq!((acl.who.as_str(), acl.kind.as_str()), ("backup", "unix_user"));
    /// assert!(AclSpec::parse("Everyone").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<AclSpec, WorldError> {
        let bad = || WorldError::Acl {
            value: text.to_owned(),
        };
        let (left, permission) = text.rsplit_once('=').ok_or_else(bad)?;
        let (who, kind) = left.rsplit_once(':').unwrap_or((left, "windows"));
        if who.trim().is_empty() {
            return Err(bad());
        }
        AclSpec::new(who, kind, permission)
    }
}

/// `iscsi`, `fc` (or `fcp`), `nvme` (or `nvme-tcp`).
pub fn parse_protocol(value: &str) -> Result<BlockProtocol, WorldError> {
    match value {
        "iscsi" => Ok(BlockProtocol::Iscsi),
        "fc" | "fcp" => Ok(BlockProtocol::Fcp),
        "nvme" | "nvme-tcp" => Ok(BlockProtocol::NvmeTcp),
        other => Err(WorldError::Choice {
            field: "protocol",
            value: other.to_owned(),
            allowed: "iscsi, fc, nvme",
        }),
    }
}

/// An SMB datastore request in plain values.
#[derive(Debug, Clone)]
pub struct SmbSpec {
    /// SVM.
    pub svm: String,
    /// Pool (and share) name.
    pub name: String,
    /// Aggregate.
    pub aggregate: String,
    /// Size in bytes.
    pub size: u64,
    /// Host names.
    pub hosts: Vec<String>,
    /// Mount point (default as for NFS).
    pub mount_point: Option<PathBuf>,
    /// `fstab` or `autofs`.
    pub persist: String,
    /// The account the hosts mount as; the share's ACL gives it full control.
    pub username: String,
    /// Its domain, if any.
    pub domain: Option<String>,
    /// Its password (needed to attach; a detach that has to undo a credentials removal
    /// needs it too). Debug output redacts it.
    pub password: Option<SecretString>,
    /// Mixed security style (NFS clients share the volume) instead of NTFS.
    pub mixed_security: bool,
    /// SMB encryption (`seal`).
    pub encryption: bool,
    /// Multichannel channels (default 4; 0 turns multichannel off).
    pub max_channels: Option<u8>,
    /// Detach deletes the share and the volume too.
    pub delete_ontap_objects: bool,
    /// The share's name (default: the pool's).
    pub share_name: Option<String>,
    /// Further share ACL entries beside the account's full control.
    pub share_acls: Vec<AclSpec>,
}

impl SmbSpec {
    /// The facade's datastore; `sim_root` is the simulated hosts' parent root, if any.
    pub fn datastore(&self, sim_root: Option<&Path>) -> Result<SmbDatastore, WorldError> {
        let mut ds = SmbDatastore::new(&self.svm, &self.name, &self.aggregate, self.size)
            .hosts(self.hosts.iter().cloned())
            .persist(persist(&self.persist)?)
            .mixed_security(self.mixed_security)
            .encryption(self.encryption)
            .delete_ontap_objects(self.delete_ontap_objects);
        if let Some(n) = self.max_channels {
            ds = ds.max_channels(n);
        }
        if let Some(name) = &self.share_name {
            ds = ds.share_name(name);
        }
        for a in &self.share_acls {
            ds = ds.share_acl(&a.who, a.kind.clone(), a.permission.clone());
        }
        // The steps carry only the secret's name; without a password, none is put in the
        // environment (see `env`), and a step that needs it fails as missing.
        ds = ds.account(
            &self.username,
            self.domain.as_deref(),
            self.password
                .clone()
                .unwrap_or_else(|| SecretString::from(String::new())),
        );
        if let Some(m) = mount_point(self.mount_point.as_deref(), sim_root, &self.name) {
            ds = ds.mount_point(m);
        }
        Ok(ds)
    }

    /// `env` with the password as the datastore's secret, when there is one.
    pub fn env(&self, ds: &SmbDatastore, env: &Env) -> Env {
        match &self.password {
            Some(_) => ds.env_with_secret(env),
            None => env.clone(),
        }
    }
}

/// A block datastore request in plain values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockSpec {
    /// `iscsi`, `fc` or `nvme`.
    pub protocol: String,
    /// `ocfs2` or `gfs2`.
    pub fs: String,
    /// SVM.
    pub svm: String,
    /// Pool name.
    pub name: String,
    /// Aggregate.
    pub aggregate: String,
    /// The disk's size in bytes (the volume is 10% larger).
    pub size: u64,
    /// Host names; the first formats the file system.
    pub hosts: Vec<String>,
    /// Mount point (default as for NFS).
    pub mount_point: Option<PathBuf>,
    /// The o2cb (or corosync) cluster name (default `kvmstor`).
    pub cluster: Option<String>,
    /// Thick provisioning.
    pub thick: bool,
    /// How long each host waits for the disk's device.
    pub device_wait: Option<Duration>,
    /// Detach deletes the igroup or subsystem, the disk and the volume too.
    pub delete_ontap_objects: bool,
}

impl BlockSpec {
    /// The protocol.
    pub fn protocol(&self) -> Result<BlockProtocol, WorldError> {
        parse_protocol(&self.protocol)
    }

    /// The facade's datastore; `sim_root` is the simulated hosts' parent root, if any.
    pub fn datastore(&self, sim_root: Option<&Path>) -> Result<BlockDatastore, WorldError> {
        let mut ds = BlockDatastore::new(
            self.protocol()?,
            &self.svm,
            &self.name,
            &self.aggregate,
            self.size,
        )
        .hosts(self.hosts.iter().cloned())
        .delete_ontap_objects(self.delete_ontap_objects);
        match self.fs.as_str() {
            "ocfs2" => {}
            "gfs2" => ds = ds.gfs2(),
            other => {
                return Err(WorldError::Choice {
                    field: "file system",
                    value: other.to_owned(),
                    allowed: "ocfs2, gfs2",
                })
            }
        }
        if let Some(c) = &self.cluster {
            ds = ds.o2cb_cluster(c.clone());
        }
        if self.thick {
            ds = ds.thick();
        }
        if let Some(w) = self.device_wait {
            ds = ds.device_wait(w);
        }
        if let Some(m) = mount_point(self.mount_point.as_deref(), sim_root, &self.name) {
            ds = ds.mount_point(m);
        }
        Ok(ds)
    }
}

/// An NFS datastore request in plain values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NfsSpec {
    /// SVM.
    pub svm: String,
    /// Pool name.
    pub name: String,
    /// Aggregate.
    pub aggregate: String,
    /// Size in bytes.
    pub size: u64,
    /// Host names.
    pub hosts: Vec<String>,
    /// Volume name (default: the pool's name with `-` as `_`).
    pub volume: Option<String>,
    /// Mount point (default `/var/lib/kvmstor/mnt/NAME`, or `SIMROOT/mnt/NAME` for
    /// simulated hosts).
    pub mount_point: Option<PathBuf>,
    /// `fstab` or `autofs`.
    pub persist: String,
    /// `dir` or `netfs`.
    pub pool_kind: String,
    /// Detach deletes the volume and export policy too.
    pub delete_ontap_objects: bool,
}

impl NfsSpec {
    /// The facade's datastore; `sim_root` is the simulated hosts' parent root, if any.
    pub fn datastore(&self, sim_root: Option<&Path>) -> Result<NfsDatastore, WorldError> {
        let persist = persist(&self.persist)?;
        let kind = match self.pool_kind.as_str() {
            "dir" => PoolKind::Dir,
            "netfs" => PoolKind::Netfs,
            other => {
                return Err(WorldError::Choice {
                    field: "pool kind",
                    value: other.to_owned(),
                    allowed: "dir, netfs",
                })
            }
        };
        let mut ds = NfsDatastore::new(&self.svm, &self.name, &self.aggregate, self.size)
            .hosts(self.hosts.iter().cloned())
            .persist(persist)
            .pool_kind(kind)
            .delete_ontap_objects(self.delete_ontap_objects);
        if let Some(v) = &self.volume {
            ds = ds.volume_name(v.clone());
        }
        if let Some(m) = mount_point(self.mount_point.as_deref(), sim_root, &self.name) {
            ds = ds.mount_point(m);
        }
        Ok(ds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("10G").unwrap(), 10 << 30);
        assert_eq!(parse_size("1t").unwrap(), 1 << 40);
        assert!(matches!(parse_size("ten"), Err(WorldError::Size { .. })));
    }

    #[test]
    fn hosts() {
        let h: HostSpec = "kvm1=192.0.2.1".parse().unwrap();
        assert_eq!(
            h,
            HostSpec {
                name: "kvm1".into(),
                address: "192.0.2.1".into()
            }
        );
        assert!("kvm1".parse::<HostSpec>().is_err());
    }
}
