//! NFS datastores: attach (ONTAP volume, export policy with one rule per host, mount, fstab
//! or autofs, libvirt pool) and detach (the reverse, ONTAP objects deleted only when asked).
//!
//! [`NfsDatastore`] is the request; [`NfsDatastore::attach`] and [`NfsDatastore::detach`]
//! look up the SVM's NFS LIFs and return a [`Saga`] of [`NfsStep`]s, ready to
//! [`Saga::plan`] or [`Saga::run`].
//!
//! ## Attach, in order
//! 1. `CreateExportPolicy` `kvmstor_<pool>`, empty.
//! 2. `AddExportRule`, one per host: its addresses, `sys` for ro/rw/superuser (libvirt and
//!    QEMU create image files as root or `qemu`), protocol `nfs`.
//! 3. `CreateVolume`: a FlexVol with the asked size, efficiency, snapshot policy, tiering,
//!    encryption and anti-ransomware, junctioned at `/<volume>` with the policy above, and
//!    a comment carrying a token chosen at build time, so that an undo after a crash
//!    deletes the volume only if this workflow created it.
//! 4. Per host, with [`Persist::Fstab`]: `MountNfs` now, then `PersistFstab` (an owned
//!    `/etc/fstab` line). With [`Persist::Autofs`]: `PersistAutofs` only (a direct-map
//!    entry; autofs mounts on first access, and a mount made by hand on an autofs trigger
//!    point would hide it). automount must be running on every host unless the host's
//!    [`crate::Host::autofs_reload`] is `Never`: planning refuses otherwise
//!    ([`host_storage::Error::NotRunning`] inside [`Error::Plan`]), and the step checks
//!    again right before it writes the entry. The step then waits until automount has set
//!    up the trigger (its reload is asynchronous, and a pool built on the bare path would
//!    put images on the host's own disk); `RemoveAutofs` unmounts what automount mounted before it removes
//!    the entry (automount drops idle triggers only). With [`PoolKind::Netfs`] there is no
//!    host mount step: libvirt mounts when it starts the pool.
//! 5. Per host: `DefinePool`, a `dir` pool on the mount point or a `netfs` pool.
//!
//! ## Mount options ([`nfs_options`])
//! * `vers=4.1` by default: sessions (needed by trunking and pNFS) on every ONTAP 9 release;
//!   `vers=4.2` when asked.
//! * `nconnect=4` by default: several TCP connections to one LIF lift the single-connection
//!   throughput ceiling of a busy KVM host; gains flatten beyond a handful, and every
//!   connection costs ONTAP per-LIF resources multiplied by the number of hosts, so 4 is
//!   the default and up to 16 may be asked.
//! * Several `data_nfs` LIFs: session trunking (`max_connect=<number of LIFs>`,
//!   `trunkdiscovery`), the first LIF mounted and the others found by the client.
//! * pNFS when asked: at least 4.1 (the Linux client then uses pNFS when the SVM offers it).
//! * `hard` (a VM image must never see a soft-mount I/O error) and `_netdev` in fstab.

use std::path::PathBuf;

use host_storage::nfs::{NfsMount, NfsOptions, NfsServers, NfsVersion, Recovery};
use host_storage::{Change, HostName};
use libvirt_pools::{PoolDef, PoolName, PoolSource, PoolSpec, Protocol};
use ontap_client::models::{
    AntiRansomwareState, EfficiencyMode, ExportPolicyCreate, ExportProtocol, ExportRule,
    ExportRuleCreate, GuaranteeType, IpService, NfsSecurityFlavor, TieringPolicy, VolumeCreate,
};
use ontap_client::Query;
use serde::{Deserialize, Serialize};

use crate::actions::{file_change, host_cmd, ontap_call, pool_defined, pool_removed};
use crate::datastore;
use crate::env::{Env, Host};
use crate::error::{Error, Result, StepError};
use crate::host_steps::{
    self, ensure_pool, host_err, mounter, remove_fstab, remove_pool, require_automount_on,
    AUTOFS_MAP,
};
use crate::ontap_steps;
use crate::saga::{ActionKind, Applied, LockKey, Saga, Step};

/// How the mount survives a reboot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Persist {
    /// Mount now and add an `/etc/fstab` line.
    Fstab,
    /// An autofs direct-map entry (mounted on first access). automount must be running on
    /// each host (checked when the attach is planned, unless the host's
    /// [`crate::Host::autofs_reload`] is `Never`).
    Autofs,
}

/// The libvirt pool type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PoolKind {
    /// A `dir` pool on the host's mount point.
    Dir,
    /// A `netfs` pool: libvirt mounts the export itself (no fstab or autofs).
    Netfs,
}

/// The ONTAP volume asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct VolumeRequest {
    /// Volume name.
    pub name: String,
    /// Aggregate.
    pub aggregate: String,
    /// Size in bytes.
    pub size: u64,
    /// Thin provisioning (`guarantee.type=none`), the default.
    pub thin: bool,
    /// Compression and deduplication, if set.
    pub efficiency: Option<(EfficiencyMode, EfficiencyMode)>,
    /// Snapshot policy by name, if set.
    pub snapshot_policy: Option<String>,
    /// Tiering policy, if set.
    pub tiering: Option<TieringPolicy>,
    /// Encryption, if set.
    pub encryption: Option<bool>,
    /// Anti-ransomware state, if set.
    pub anti_ransomware: Option<AntiRansomwareState>,
}

impl VolumeRequest {
    /// The body of an NFS datastore's volume: junctioned at `junction` with export policy
    /// `policy`.
    fn body(&self, svm: &str, junction: &str, policy: &str, token: &str) -> VolumeCreate {
        self.san_body(svm, token)
            .junction_path(junction)
            .export_policy(policy)
    }

    /// The body of a volume for LUNs or namespaces: no junction, no export policy, and
    /// (for thin LUNs) no snapshot reserve assumptions; the ownership token as comment.
    pub(crate) fn san_body(&self, svm: &str, token: &str) -> VolumeCreate {
        let mut v = VolumeCreate::flexvol(&self.name, svm, self.aggregate.as_str())
            .size(self.size)
            .comment(token);
        if self.thin {
            v = v.guarantee(GuaranteeType::None);
        }
        if let Some((c, d)) = &self.efficiency {
            v = v.efficiency(c.clone(), d.clone());
        }
        if let Some(p) = &self.snapshot_policy {
            v = v.snapshot_policy(p.as_str());
        }
        if let Some(t) = &self.tiering {
            v = v.tiering_policy(t.clone());
        }
        if let Some(e) = self.encryption {
            v = v.encryption(e);
        }
        if let Some(a) = &self.anti_ransomware {
            v = v.anti_ransomware(a.clone());
        }
        v
    }

    /// The body of a volume for SMB: junctioned at `junction` with `style`, no export
    /// policy of kvmstor's.
    pub(crate) fn smb_body(
        &self,
        svm: &str,
        junction: &str,
        style: ontap_client::models::SecurityStyle,
        token: &str,
    ) -> VolumeCreate {
        self.san_body(svm, token)
            .junction_path(junction)
            .security_style(style)
    }

    pub(crate) fn summary(&self, svm: &str, junction: &str, policy: &str) -> String {
        let mut s = format!(
            "create FlexVol {svm}/{} on {}, {} bytes{}, junction {junction}, export policy {policy}",
            self.name,
            self.aggregate,
            self.size,
            if self.thin { " thin" } else { "" }
        );
        if let Some((c, d)) = &self.efficiency {
            s.push_str(&format!(", compression {c}, dedupe {d}"));
        }
        if let Some(p) = &self.snapshot_policy {
            s.push_str(&format!(", snapshot policy {p}"));
        }
        if let Some(t) = &self.tiering {
            s.push_str(&format!(", tiering {t}"));
        }
        if let Some(e) = self.encryption {
            s.push_str(&format!(", encryption {e}"));
        }
        if let Some(a) = &self.anti_ransomware {
            s.push_str(&format!(", anti-ransomware {a}"));
        }
        s
    }
}

/// The NFS mount options for a datastore (see the module documentation for why).
///
/// ```
/// use host_storage::nfs::NfsVersion;
/// use kvmstor::nfs::nfs_options;
/// assert_eq!(nfs_options(None, None, 1, false).fstab_options(), "vers=4.1,nconnect=4,hard,_netdev");
/// assert_eq!(
///     nfs_options(Some(NfsVersion::V4_2), Some(8), 2, false).fstab_options(),
///     "vers=4.2,nconnect=8,max_connect=2,trunkdiscovery,hard,_netdev"
/// );
/// assert_eq!(nfs_options(Some(NfsVersion::V3), None, 1, true).mount_options(), "vers=4.1,nconnect=4,hard");
/// ```
pub fn nfs_options(
    version: Option<NfsVersion>,
    nconnect: Option<u8>,
    lifs: usize,
    pnfs: bool,
) -> NfsOptions {
    let mut version = version.unwrap_or(NfsVersion::V4_1);
    if (pnfs || lifs > 1) && !version.has_sessions() {
        version = NfsVersion::V4_1;
    }
    let mut o = NfsOptions::new(version)
        .nconnect(nconnect.unwrap_or(DEFAULT_NCONNECT))
        .recovery(Recovery::Hard)
        .netdev(true);
    if lifs > 1 {
        o = o
            .max_connect(u8::try_from(lifs.min(16)).unwrap_or(16))
            .trunkdiscovery(true);
    }
    o
}

/// `nconnect` unless asked otherwise.
pub const DEFAULT_NCONNECT: u8 = 4;

/// An NFS mount as journaled: servers, export, mount point and the fstab form of the
/// options (re-validated when read back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    /// LIF addresses; several mean session trunking.
    pub servers: Vec<String>,
    /// Export path (the junction path).
    pub export: String,
    /// Mount point, as on the host.
    pub target: PathBuf,
    /// Options, fstab form.
    pub options: String,
}

impl MountSpec {
    fn to_mount(&self) -> host_storage::Result<NfsMount> {
        let hosts = self
            .servers
            .iter()
            .map(|s| HostName::parse(s))
            .collect::<host_storage::Result<Vec<_>>>()?;
        let servers = match hosts.len() {
            1 => NfsServers::One(hosts[0].clone()),
            _ => NfsServers::Trunked(hosts),
        };
        NfsMount::new(
            servers,
            self.export.clone(),
            self.target.clone(),
            NfsOptions::parse(&self.options)?,
        )
    }
}

/// A libvirt pool as journaled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolRequest {
    /// Pool name.
    pub name: String,
    /// Mount point (dir pool: its directory; netfs: where libvirt mounts).
    pub target: PathBuf,
    /// For a netfs pool: the NFS source.
    pub netfs: Option<NetfsSource>,
}

/// The source of a `netfs` pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetfsSource {
    /// Server address.
    pub server: String,
    /// Export path.
    pub export: String,
    /// NFS major version (`<protocol ver=…>`).
    pub version: u8,
    /// Extra mount options (libvirt `fs:mount_opts`), e.g. `nconnect=4`.
    pub mount_options: Vec<String>,
}

impl PoolRequest {
    pub(crate) fn def(&self) -> libvirt_pools::Result<PoolDef> {
        let name = PoolName::new(self.name.clone())?;
        let target = self.target.display().to_string();
        Ok(match &self.netfs {
            None => PoolDef::dir(name, target),
            Some(n) => {
                let mut def = PoolDef::nfs(
                    name,
                    n.server.clone(),
                    n.export.clone(),
                    Some(n.version),
                    target,
                );
                if let PoolSource::Netfs { mount_options, .. } = &mut def.source {
                    mount_options.clone_from(&n.mount_options);
                }
                def
            }
        })
    }

    pub(crate) fn spec(&self) -> libvirt_pools::Result<PoolSpec> {
        Ok(
            PoolSpec::new(self.def()?).for_protocol(if self.netfs.is_some() {
                Protocol::Nfs
            } else {
                Protocol::Local
            }),
        )
    }
}

/// One step of the NFS workflows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
#[non_exhaustive]
pub enum NfsStep {
    /// Creates the (empty) export policy.
    CreateExportPolicy {
        /// Cluster (lock key).
        cluster: String,
        /// SVM.
        svm: String,
        /// Policy name.
        policy: String,
    },
    /// Adds one host's rule.
    AddExportRule {
        /// Cluster (lock key).
        cluster: String,
        /// SVM.
        svm: String,
        /// Policy name.
        policy: String,
        /// The host the rule is for.
        host: String,
        /// Its addresses.
        clients: Vec<String>,
    },
    /// Creates the volume.
    CreateVolume {
        /// Cluster (lock key).
        cluster: String,
        /// SVM.
        svm: String,
        /// The volume.
        volume: VolumeRequest,
        /// Junction path.
        junction: String,
        /// Export policy.
        policy: String,
        /// Ownership token, written as the volume comment.
        token: String,
    },
    /// Mounts the export on a host now.
    MountNfs {
        /// The host.
        host: String,
        /// The mount.
        mount: MountSpec,
    },
    /// Adds the owned `/etc/fstab` line.
    PersistFstab {
        /// The host.
        host: String,
        /// Owner id of the line.
        id: String,
        /// The mount.
        mount: MountSpec,
    },
    /// Adds the owned autofs direct-map entry.
    PersistAutofs {
        /// The host.
        host: String,
        /// Map name (`/etc/auto.<map>`).
        map: String,
        /// Owner id of the entry.
        id: String,
        /// The mount.
        mount: MountSpec,
    },
    /// Defines, builds, starts and autostarts the libvirt pool.
    DefinePool {
        /// The host.
        host: String,
        /// The pool.
        pool: PoolRequest,
    },
    /// Stops and undefines the libvirt pool (data kept).
    RemovePool {
        /// The host.
        host: String,
        /// The pool.
        pool: PoolRequest,
    },
    /// Removes the owned `/etc/fstab` line.
    RemoveFstab {
        /// The host.
        host: String,
        /// Owner id of the line.
        id: String,
        /// The mount (to put the line back on undo).
        mount: MountSpec,
    },
    /// Removes the owned autofs entry.
    RemoveAutofs {
        /// The host.
        host: String,
        /// Map name.
        map: String,
        /// Owner id of the entry.
        id: String,
        /// The mount (to put the entry back on undo).
        mount: MountSpec,
    },
    /// Unmounts the export and removes the empty mount point.
    UnmountNfs {
        /// The host.
        host: String,
        /// The mount.
        mount: MountSpec,
    },
    /// Deletes the volume and its data: cannot be undone.
    DeleteVolume {
        /// Cluster (lock key).
        cluster: String,
        /// SVM.
        svm: String,
        /// Volume name.
        name: String,
    },
    /// Deletes the export policy.
    DeleteExportPolicy {
        /// Cluster (lock key).
        cluster: String,
        /// SVM.
        svm: String,
        /// Policy name.
        policy: String,
    },
}

/// What an [`NfsStep`] hands to its undo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum NfsOutput {
    /// Nothing beyond the step itself.
    Nothing,
    /// The export policy's id.
    ExportPolicy {
        /// Policy id.
        id: u64,
    },
    /// The volume's UUID.
    Volume {
        /// UUID.
        uuid: String,
    },
    /// A mount made now.
    Mount {
        /// Whether the mount point was created.
        created_dir: bool,
    },
    /// An owned file line.
    Line {
        /// The owned line before (replaced), if any.
        previous: Option<String>,
    },
}

pub(crate) fn ontap_err(operation: String) -> impl FnOnce(ontap_client::Error) -> StepError {
    move |source| StepError::Ontap {
        operation,
        source: Box::new(source),
    }
}

/// Ignores "not found" (already gone is success).
pub(crate) fn gone_ok(
    r: ontap_client::Result<ontap_client::Completed>,
) -> ontap_client::Result<bool> {
    match r {
        Ok(_) => Ok(true),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(e),
    }
}

/// The volume `svm/name` with the fields the steps read (a plain lookup returns only
/// name and UUID).
pub(crate) async fn find_volume(
    env: &Env,
    svm: &str,
    name: &str,
) -> ontap_client::Result<Option<ontap_client::models::Volume>> {
    env.ontap()
        .volumes()
        .find(
            &Query::new()
                .filter("svm.name", svm)
                .filter("name", name)
                .fields(["uuid", "name", "comment"]),
        )
        .await
}

fn clients_of(rule: &ExportRule) -> Vec<String> {
    let mut c: Vec<String> = rule
        .clients
        .iter()
        .flatten()
        .filter_map(|c| c.match_.clone())
        .collect();
    c.sort();
    c
}

async fn policy_id(env: &Env, svm: &str, policy: &str) -> Result<Option<u64>, StepError> {
    let found = env
        .ontap()
        .export_policies()
        .by_name(svm, policy)
        .await
        .map_err(ontap_err(format!("get export policy {svm}/{policy}")))?;
    Ok(found.and_then(|p| p.id))
}

async fn find_rule(
    env: &Env,
    policy_id: u64,
    clients: &[String],
) -> Result<Option<u32>, StepError> {
    let mut want = clients.to_vec();
    want.sort();
    let rules = env
        .ontap()
        .export_rules(policy_id)
        .list_all(&Query::new().fields(["index", "clients"]))
        .await
        .map_err(ontap_err(format!(
            "list rules of export policy {policy_id}"
        )))?;
    Ok(rules
        .iter()
        .find(|r| clients_of(r) == want)
        .and_then(|r| r.index))
}

fn rule_body(clients: &[String]) -> ExportRuleCreate {
    let mut r = ExportRuleCreate::new();
    for c in clients {
        r = r.client(c.as_str());
    }
    r.ro([NfsSecurityFlavor::Sys])
        .rw([NfsSecurityFlavor::Sys])
        .superuser([NfsSecurityFlavor::Sys])
        .protocols([ExportProtocol::Nfs])
}

async fn create_policy(
    env: &Env,
    svm: &str,
    policy: &str,
    rules: &[Vec<String>],
) -> Result<Applied<NfsOutput>, StepError> {
    if let Some(id) = policy_id(env, svm, policy).await? {
        return Ok(Applied::unchanged(NfsOutput::ExportPolicy { id }));
    }
    let mut body = ExportPolicyCreate::new(policy, svm);
    for r in rules {
        body = body.rule(rule_body(r));
    }
    let created = env
        .ontap()
        .export_policies()
        .create(&body)
        .await
        .map_err(ontap_err(format!("create export policy {svm}/{policy}")))?;
    let id = match created.record.and_then(|p| p.id) {
        Some(id) => id,
        None => policy_id(env, svm, policy)
            .await?
            .ok_or_else(|| StepError::MissingField {
                operation: format!("create export policy {svm}/{policy}"),
                field: "id",
            })?,
    };
    Ok(Applied::changed(NfsOutput::ExportPolicy { id }))
}

async fn delete_policy(env: &Env, svm: &str, policy: &str) -> Result<bool, StepError> {
    let Some(id) = policy_id(env, svm, policy).await? else {
        return Ok(false);
    };
    gone_ok(env.ontap().export_policies().delete(&id.to_string()).await)
        .map_err(ontap_err(format!("delete export policy {svm}/{policy}")))
}

async fn mount_now(host: &Host, mount: &MountSpec) -> Result<Applied<NfsOutput>, StepError> {
    let err = || host_err(host.name(), format!("mount {}", mount.target.display()));
    let m = mount.to_mount().map_err(err())?;
    let undo = mounter(host).mount_nfs(&m).await.map_err(err())?;
    let out = NfsOutput::Mount {
        created_dir: undo.created_dir,
    };
    Ok(match undo.change {
        Change::Changed => Applied::changed(out),
        Change::Unchanged => Applied::unchanged(out),
    })
}

/// Unmounts `mount` if this export is what is mounted there, then removes the mount point
/// when `remove_dir` and it is empty.
async fn unmount(host: &Host, mount: &MountSpec, remove_dir: bool) -> Result<bool, StepError> {
    let source = mount.to_mount().and_then(|m| m.source()).map_err(host_err(
        host.name(),
        format!("unmount {}", mount.target.display()),
    ))?;
    host_steps::unmount_if(host, &mount.target, remove_dir, |found| {
        found.source.trim_end_matches('/') == source.trim_end_matches('/')
    })
    .await
}

async fn add_fstab(
    host: &Host,
    id: &str,
    mount: &MountSpec,
) -> Result<Applied<NfsOutput>, StepError> {
    host_steps::add_fstab(
        host,
        id,
        mount.to_mount(),
        host_storage::fstab::Fstab::add_nfs,
    )
}

async fn add_autofs(
    host: &Host,
    map: &str,
    id: &str,
    mount: &MountSpec,
) -> Result<Applied<NfsOutput>, StepError> {
    host_steps::add_autofs(
        host,
        map,
        id,
        &mount.target,
        mount.to_mount(),
        |autofs, eid, m| async move { autofs.add_nfs(&eid, &m).await },
    )
    .await
}

async fn remove_autofs(
    host: &Host,
    map: &str,
    id: &str,
    mount: &MountSpec,
) -> Result<bool, StepError> {
    let source = mount.to_mount().and_then(|m| m.source()).map_err(host_err(
        host.name(),
        format!("remove autofs entry {id} from map {map}"),
    ))?;
    host_steps::remove_autofs(host, map, id, &mount.target, &source).await
}

impl NfsStep {
    fn host_actions(&self, host: &str, mount: &MountSpec, what: &str) -> Vec<ActionKind> {
        let command = match mount.to_mount().and_then(|m| m.mount_command()) {
            Ok(c) => c.to_string(),
            Err(e) => format!("(invalid mount: {e})"),
        };
        match what {
            "mount" => vec![host_cmd(host, command)],
            _ => vec![host_cmd(host, format!("umount {}", mount.target.display()))],
        }
    }
}

#[async_trait::async_trait]
impl Step for NfsStep {
    type Env = Env;
    type Output = NfsOutput;

    fn label(&self) -> String {
        match self {
            NfsStep::CreateExportPolicy { svm, policy, .. } => {
                format!("CreateExportPolicy {svm}/{policy}")
            }
            NfsStep::AddExportRule {
                svm, policy, host, ..
            } => format!("AddExportRule {svm}/{policy} for {host}"),
            NfsStep::CreateVolume { svm, volume, .. } => {
                format!("CreateVolume {svm}/{}", volume.name)
            }
            NfsStep::MountNfs { host, mount } => {
                format!("MountNfs {host}:{}", mount.target.display())
            }
            NfsStep::PersistFstab { host, id, .. } => format!("PersistFstab {host}:{id}"),
            NfsStep::PersistAutofs { host, map, id, .. } => {
                format!("PersistAutofs {host}:auto.{map}/{id}")
            }
            NfsStep::DefinePool { host, pool } => format!("DefinePool {host}:{}", pool.name),
            NfsStep::RemovePool { host, pool } => format!("RemovePool {host}:{}", pool.name),
            NfsStep::RemoveFstab { host, id, .. } => format!("RemoveFstab {host}:{id}"),
            NfsStep::RemoveAutofs { host, map, id, .. } => {
                format!("RemoveAutofs {host}:auto.{map}/{id}")
            }
            NfsStep::UnmountNfs { host, mount } => {
                format!("UnmountNfs {host}:{}", mount.target.display())
            }
            NfsStep::DeleteVolume { svm, name, .. } => format!("DeleteVolume {svm}/{name}"),
            NfsStep::DeleteExportPolicy { svm, policy, .. } => {
                format!("DeleteExportPolicy {svm}/{policy}")
            }
        }
    }

    fn planned(&self) -> Vec<ActionKind> {
        match self {
            NfsStep::CreateExportPolicy { svm, policy, .. } => vec![ontap_call(
                "POST",
                "/api/protocols/nfs/export-policies",
                format!("create export policy {policy} in SVM {svm}"),
            )],
            NfsStep::AddExportRule {
                policy, clients, ..
            } => vec![ontap_call(
                "POST",
                format!("/api/protocols/nfs/export-policies/{{id of {policy}}}/rules"),
                format!(
                    "rule clients {}: ro/rw/superuser sys, protocol nfs",
                    clients.join(",")
                ),
            )],
            NfsStep::CreateVolume {
                svm,
                volume,
                junction,
                policy,
                ..
            } => vec![ontap_call(
                "POST",
                "/api/storage/volumes",
                volume.summary(svm, junction, policy),
            )],
            NfsStep::MountNfs { host, mount } => self.host_actions(host, mount, "mount"),
            NfsStep::UnmountNfs { host, mount } => self.host_actions(host, mount, "umount"),
            NfsStep::PersistFstab { host, mount, .. }
            | NfsStep::RemoveFstab { host, mount, .. } => {
                let line = mount
                    .to_mount()
                    .map(|m| m.fstab_line())
                    .unwrap_or_else(|e| format!("(invalid mount: {e})"));
                let line = if matches!(self, NfsStep::RemoveFstab { .. }) {
                    format!("(remove) {line}")
                } else {
                    line
                };
                vec![file_change(host, "/etc/fstab", line)]
            }
            NfsStep::PersistAutofs {
                host, map, mount, ..
            }
            | NfsStep::RemoveAutofs {
                host, map, mount, ..
            } => {
                let remove = matches!(self, NfsStep::RemoveAutofs { .. });
                let tag = if remove { "(remove) " } else { "" };
                let entry = mount
                    .to_mount()
                    .map(|m| m.autofs_entry())
                    .unwrap_or_else(|e| format!("(invalid mount: {e})"));
                vec![
                    file_change(
                        host,
                        "/etc/auto.master",
                        format!("{tag}/- /etc/auto.{map} --timeout=300"),
                    ),
                    file_change(host, format!("/etc/auto.{map}"), format!("{tag}{entry}")),
                ]
            }
            NfsStep::DefinePool { host, pool } => vec![pool_defined(host, pool)],
            NfsStep::RemovePool { host, pool } => vec![pool_removed(host, pool)],
            NfsStep::DeleteVolume { svm, name, .. } => vec![ontap_call(
                "DELETE",
                format!("/api/storage/volumes/{{uuid of {name}}}"),
                format!("delete volume {svm}/{name} and its data"),
            )],
            NfsStep::DeleteExportPolicy { svm, policy, .. } => vec![ontap_call(
                "DELETE",
                format!("/api/protocols/nfs/export-policies/{{id of {policy}}}"),
                format!("delete export policy {svm}/{policy}"),
            )],
        }
    }

    fn locks(&self) -> Vec<LockKey> {
        match self {
            NfsStep::CreateExportPolicy {
                cluster,
                svm,
                policy,
            }
            | NfsStep::AddExportRule {
                cluster,
                svm,
                policy,
                ..
            }
            | NfsStep::DeleteExportPolicy {
                cluster,
                svm,
                policy,
            } => vec![LockKey::ontap(cluster, svm, "export-policy", policy)],
            NfsStep::CreateVolume {
                cluster,
                svm,
                volume,
                policy,
                ..
            } => vec![
                LockKey::ontap(cluster, svm, "volume", &volume.name),
                LockKey::ontap(cluster, svm, "export-policy", policy),
            ],
            NfsStep::DeleteVolume { cluster, svm, name } => {
                vec![LockKey::ontap(cluster, svm, "volume", name)]
            }
            NfsStep::MountNfs { host, .. }
            | NfsStep::PersistFstab { host, .. }
            | NfsStep::PersistAutofs { host, .. }
            | NfsStep::DefinePool { host, .. }
            | NfsStep::RemovePool { host, .. }
            | NfsStep::RemoveFstab { host, .. }
            | NfsStep::RemoveAutofs { host, .. }
            | NfsStep::UnmountNfs { host, .. } => vec![LockKey::host(host)],
        }
    }

    fn reversible(&self) -> bool {
        !matches!(self, NfsStep::DeleteVolume { .. })
    }

    async fn apply(&self, env: &Env) -> Result<Applied<NfsOutput>, StepError> {
        match self {
            NfsStep::CreateExportPolicy { svm, policy, .. } => {
                create_policy(env, svm, policy, &[]).await
            }
            NfsStep::AddExportRule {
                svm,
                policy,
                clients,
                ..
            } => {
                let id =
                    policy_id(env, svm, policy)
                        .await?
                        .ok_or_else(|| StepError::MissingField {
                            operation: format!("get export policy {svm}/{policy}"),
                            field: "id",
                        })?;
                if find_rule(env, id, clients).await?.is_some() {
                    return Ok(Applied::unchanged(NfsOutput::Nothing));
                }
                env.ontap()
                    .export_policies()
                    .add_rule(id, &rule_body(clients))
                    .await
                    .map_err(ontap_err(format!(
                        "add rule to export policy {svm}/{policy}"
                    )))?;
                Ok(Applied::changed(NfsOutput::Nothing))
            }
            NfsStep::CreateVolume {
                svm,
                volume,
                junction,
                policy,
                token,
                ..
            } => {
                let op = || format!("create volume {svm}/{}", volume.name);
                let vols = env.ontap().volumes();
                if let Some(v) = find_volume(env, svm, &volume.name)
                    .await
                    .map_err(ontap_err(op()))?
                {
                    let uuid = v.uuid.clone().unwrap_or_default();
                    let ours = v.comment.as_deref() == Some(token.as_str());
                    let out = NfsOutput::Volume { uuid };
                    return Ok(if ours {
                        Applied::changed(out)
                    } else {
                        Applied::unchanged(out)
                    });
                }
                let created = vols
                    .create(&volume.body(svm, junction, policy, token))
                    .await
                    .map_err(ontap_err(op()))?;
                let uuid = match created.record.and_then(|v| v.uuid) {
                    Some(u) => u,
                    None => vols
                        .by_name(svm, &volume.name)
                        .await
                        .map_err(ontap_err(op()))?
                        .and_then(|v| v.uuid)
                        .ok_or_else(|| StepError::MissingField {
                            operation: op(),
                            field: "uuid",
                        })?,
                };
                Ok(Applied::changed(NfsOutput::Volume { uuid }))
            }
            NfsStep::MountNfs { host, mount } => mount_now(env.find_host(host)?, mount).await,
            NfsStep::PersistFstab { host, id, mount } => {
                add_fstab(env.find_host(host)?, id, mount).await
            }
            NfsStep::PersistAutofs {
                host,
                map,
                id,
                mount,
            } => add_autofs(env.find_host(host)?, map, id, mount).await,
            NfsStep::DefinePool { host, pool } => ensure_pool(env.find_host(host)?, pool).await,
            NfsStep::RemovePool { host, pool } => {
                let changed = remove_pool(env.find_host(host)?, pool, false).await?;
                Ok(Applied {
                    changed,
                    output: NfsOutput::Nothing,
                })
            }
            NfsStep::RemoveFstab { host, id, .. } => Ok(Applied {
                changed: remove_fstab(env.find_host(host)?, id)?,
                output: NfsOutput::Nothing,
            }),
            NfsStep::RemoveAutofs {
                host,
                map,
                id,
                mount,
            } => Ok(Applied {
                changed: remove_autofs(env.find_host(host)?, map, id, mount).await?,
                output: NfsOutput::Nothing,
            }),
            NfsStep::UnmountNfs { host, mount } => Ok(Applied {
                changed: unmount(env.find_host(host)?, mount, true).await?,
                output: NfsOutput::Nothing,
            }),
            NfsStep::DeleteVolume { svm, name, .. } => {
                let op = || format!("delete volume {svm}/{name}");
                let vols = env.ontap().volumes();
                let Some(uuid) = vols
                    .by_name(svm, name)
                    .await
                    .map_err(ontap_err(op()))?
                    .and_then(|v| v.uuid)
                else {
                    return Ok(Applied::unchanged(NfsOutput::Nothing));
                };
                let changed = gone_ok(vols.delete(&uuid).await).map_err(ontap_err(op()))?;
                Ok(Applied {
                    changed,
                    output: NfsOutput::Nothing,
                })
            }
            NfsStep::DeleteExportPolicy { svm, policy, .. } => Ok(Applied {
                changed: delete_policy(env, svm, policy).await?,
                output: NfsOutput::Nothing,
            }),
        }
    }

    async fn undo(&self, env: &Env, output: Option<&NfsOutput>) -> Result<bool, StepError> {
        match self {
            NfsStep::CreateExportPolicy { svm, policy, .. } => {
                delete_policy(env, svm, policy).await
            }
            NfsStep::AddExportRule {
                svm,
                policy,
                clients,
                ..
            } => {
                let Some(id) = policy_id(env, svm, policy).await? else {
                    return Ok(false);
                };
                // Indexes shift when rules go; the rule is found by its clients.
                let Some(index) = find_rule(env, id, clients).await? else {
                    return Ok(false);
                };
                gone_ok(
                    env.ontap()
                        .export_rules(id)
                        .delete(&index.to_string())
                        .await,
                )
                .map_err(ontap_err(format!(
                    "delete rule {index} of export policy {svm}/{policy}"
                )))
            }
            NfsStep::CreateVolume {
                svm, volume, token, ..
            } => {
                let recorded = match output {
                    Some(NfsOutput::Volume { uuid }) => Some(uuid.as_str()),
                    _ => None,
                };
                // Result never recorded: delete only the volume carrying our token.
                let lookup = format!("delete volume {svm}/{}", volume.name);
                ontap_steps::delete_volume(env, svm, &volume.name, Some(token), recorded, lookup)
                    .await
            }
            NfsStep::MountNfs { host, mount } => {
                let remove_dir = match output {
                    Some(NfsOutput::Mount { created_dir }) => *created_dir,
                    _ => true,
                };
                unmount(env.find_host(host)?, mount, remove_dir).await
            }
            NfsStep::PersistFstab { host, id, .. } => remove_fstab(env.find_host(host)?, id),
            NfsStep::PersistAutofs {
                host,
                map,
                id,
                mount,
            } => remove_autofs(env.find_host(host)?, map, id, mount).await,
            NfsStep::DefinePool { host, pool } => {
                remove_pool(env.find_host(host)?, pool, true).await
            }
            NfsStep::RemovePool { host, pool } => {
                Ok(ensure_pool(env.find_host(host)?, pool).await?.changed)
            }
            NfsStep::RemoveFstab { host, id, mount } => {
                Ok(add_fstab(env.find_host(host)?, id, mount).await?.changed)
            }
            NfsStep::RemoveAutofs {
                host,
                map,
                id,
                mount,
            } => Ok(add_autofs(env.find_host(host)?, map, id, mount)
                .await?
                .changed),
            NfsStep::UnmountNfs { host, mount } => {
                Ok(mount_now(env.find_host(host)?, mount).await?.changed)
            }
            NfsStep::DeleteVolume { .. } => Err(StepError::Irreversible { step: self.label() }),
            NfsStep::DeleteExportPolicy { svm, policy, .. } => {
                Ok(create_policy(env, svm, policy, &[]).await?.changed)
            }
        }
    }
}

/// The request: an NFS datastore from an SVM, attached to hosts as a libvirt pool.
///
/// ```
/// use kvmstor::nfs::{NfsDatastore, Persist, PoolKind};
/// let ds = NfsDatastore::new("svm1", "vmstore", "aggr1", 100 << 30)
///     .hosts(["kvm1", "kvm2"])
///     .mount_point("/var/lib/kvmstor/mnt/vmstore")
///     .persist(Persist::Fstab)
///     .pool_kind(PoolKind::Dir);
/// assert_eq!(ds.export_policy(), "kvmstor_vmstore");
/// ```
#[derive(Debug, Clone)]
pub struct NfsDatastore {
    svm: String,
    pool: String,
    volume: VolumeRequest,
    hosts: Vec<String>,
    mount_point: PathBuf,
    persist: Persist,
    pool_kind: PoolKind,
    version: Option<NfsVersion>,
    nconnect: Option<u8>,
    pnfs: bool,
    delete_ontap_objects: bool,
}

impl NfsDatastore {
    /// Pool `name` on a volume of `size` bytes on `aggregate` of `svm` (named like the
    /// pool with `-` as `_`, as ONTAP volume names allow only letters, digits and `_`),
    /// thin, mounted at `/var/lib/kvmstor/mnt/<name>`, persisted in fstab, as a `dir` pool;
    /// no hosts yet.
    pub fn new(svm: &str, name: &str, aggregate: &str, size: u64) -> Self {
        NfsDatastore {
            svm: svm.to_owned(),
            pool: name.to_owned(),
            volume: VolumeRequest {
                name: crate::default_volume_name(name),
                aggregate: aggregate.to_owned(),
                size,
                thin: true,
                efficiency: None,
                snapshot_policy: None,
                tiering: None,
                encryption: None,
                anti_ransomware: None,
            },
            hosts: Vec::new(),
            mount_point: PathBuf::from(format!("/var/lib/kvmstor/mnt/{name}")),
            persist: Persist::Fstab,
            pool_kind: PoolKind::Dir,
            version: None,
            nconnect: None,
            pnfs: false,
            delete_ontap_objects: false,
        }
    }

    /// Another volume name.
    #[must_use]
    pub fn volume_name(mut self, name: impl Into<String>) -> Self {
        self.volume.name = name.into();
        self
    }

    /// The volume's name.
    pub fn volume(&self) -> &str {
        &self.volume.name
    }

    /// The hosts (by name, as in the [`Env`]).
    #[must_use]
    pub fn hosts<I: IntoIterator<Item = S>, S: Into<String>>(mut self, hosts: I) -> Self {
        self.hosts = hosts.into_iter().map(Into::into).collect();
        self
    }

    /// The mount point on every host.
    #[must_use]
    pub fn mount_point(mut self, path: impl Into<PathBuf>) -> Self {
        self.mount_point = path.into();
        self
    }

    /// fstab (default) or autofs.
    #[must_use]
    pub fn persist(mut self, persist: Persist) -> Self {
        self.persist = persist;
        self
    }

    /// `dir` (default) or `netfs` pool.
    #[must_use]
    pub fn pool_kind(mut self, kind: PoolKind) -> Self {
        self.pool_kind = kind;
        self
    }

    /// NFS version (default 4.1).
    #[must_use]
    pub fn nfs_version(mut self, version: NfsVersion) -> Self {
        self.version = Some(version);
        self
    }

    /// `nconnect` (default [`DEFAULT_NCONNECT`]).
    #[must_use]
    pub fn nconnect(mut self, n: u8) -> Self {
        self.nconnect = Some(n);
        self
    }

    /// Ask for pNFS (forces NFS 4.1 or later).
    #[must_use]
    pub fn pnfs(mut self, on: bool) -> Self {
        self.pnfs = on;
        self
    }

    /// Thick provisioning instead of thin.
    #[must_use]
    pub fn thick(mut self) -> Self {
        self.volume.thin = false;
        self
    }

    /// Compression and deduplication.
    #[must_use]
    pub fn efficiency(mut self, compression: EfficiencyMode, dedupe: EfficiencyMode) -> Self {
        self.volume.efficiency = Some((compression, dedupe));
        self
    }

    /// Snapshot policy by name.
    #[must_use]
    pub fn snapshot_policy(mut self, policy: impl Into<String>) -> Self {
        self.volume.snapshot_policy = Some(policy.into());
        self
    }

    /// Tiering policy.
    #[must_use]
    pub fn tiering(mut self, policy: TieringPolicy) -> Self {
        self.volume.tiering = Some(policy);
        self
    }

    /// Volume encryption.
    #[must_use]
    pub fn encryption(mut self, on: bool) -> Self {
        self.volume.encryption = Some(on);
        self
    }

    /// Anti-ransomware state.
    #[must_use]
    pub fn anti_ransomware(mut self, state: AntiRansomwareState) -> Self {
        self.volume.anti_ransomware = Some(state);
        self
    }

    /// Detach also deletes the volume (and its data) and the export policy. Off by default.
    #[must_use]
    pub fn delete_ontap_objects(mut self, yes: bool) -> Self {
        self.delete_ontap_objects = yes;
        self
    }

    /// The export policy's name: `kvmstor_<pool>` (names with this prefix are kvmstor's).
    pub fn export_policy(&self) -> String {
        format!("kvmstor_{}", self.pool.replace(['-', '.'], "_"))
    }

    fn junction(&self) -> String {
        format!("/{}", self.volume.name)
    }

    fn entry_id(&self) -> String {
        datastore::entry_id(&self.pool)
    }

    fn plan_err(&self, source: StepError) -> Error {
        Error::Plan {
            workflow: self.workflow("attach"),
            source: Box::new(source),
        }
    }

    fn validate(&self, env: &Env) -> Result<()> {
        datastore::require_hosts(&self.hosts)?;
        for h in &self.hosts {
            let host = env.find_host(h).map_err(|e| self.plan_err(e))?;
            if host.addresses().is_empty() {
                return Err(Error::Invalid {
                    field: "host addresses",
                    value: h.clone(),
                    reason: "the export rule needs at least one address per host",
                });
            }
        }
        datastore::check_entry_id(&self.pool)?;
        Ok(())
    }

    fn workflow(&self, verb: &str) -> String {
        format!(
            "nfs-{verb} {}/{} as pool {}",
            self.svm, self.volume.name, self.pool
        )
    }

    /// The addresses of the SVM's `data_nfs` LIFs that are up and enabled (state unknown
    /// counts as up), sorted by LIF name, at most 16.
    pub async fn lif_addresses(&self, env: &Env) -> Result<Vec<String>> {
        let lifs = env
            .ontap()
            .ip_interfaces()
            .data_lifs(&self.svm, &IpService::DataNfs)
            .await
            .map_err(|source| {
                self.plan_err(StepError::Ontap {
                    operation: format!("list data_nfs LIFs of {}", self.svm),
                    source: Box::new(source),
                })
            })?;
        let mut up: Vec<(String, String)> = lifs
            .iter()
            .filter(|l| l.enabled != Some(false))
            .filter(|l| {
                l.state
                    .as_ref()
                    .is_none_or(|s| *s == ontap_client::models::InterfaceState::Up)
            })
            .filter_map(|l| Some((l.name.clone().unwrap_or_default(), l.address()?.to_owned())))
            .collect();
        up.sort();
        up.truncate(16);
        if up.is_empty() {
            return Err(Error::NoDataLif {
                svm: self.svm.clone(),
            });
        }
        Ok(up.into_iter().map(|(_, a)| a).collect())
    }

    fn mount_spec(&self, lifs: &[String]) -> Result<MountSpec> {
        let options = nfs_options(self.version, self.nconnect, lifs.len(), self.pnfs);
        let spec = MountSpec {
            servers: lifs.to_vec(),
            export: self.junction(),
            target: self.mount_point.clone(),
            options: options.fstab_options(),
        };
        // Validate now (and take NfsMount's adjustments, e.g. max_connect).
        let m = spec.to_mount().map_err(|source| {
            self.plan_err(StepError::Host {
                host: String::new(),
                operation: "validate NFS mount".into(),
                source: Box::new(source),
            })
        })?;
        Ok(MountSpec {
            options: m.options().fstab_options(),
            ..spec
        })
    }

    fn pool_request(&self, mount: &MountSpec) -> PoolRequest {
        let netfs = (self.pool_kind == PoolKind::Netfs).then(|| {
            let opts = NfsOptions::parse(&mount.options)
                .map(|o| o.mount_options())
                .unwrap_or_default();
            NetfsSource {
                server: mount.servers[0].clone(),
                export: mount.export.clone(),
                version: 4,
                // libvirt sets nfsvers from <protocol ver>; the rest go in fs:mount_opts.
                mount_options: opts
                    .split(',')
                    .filter(|o| !o.is_empty() && !o.starts_with("vers="))
                    .map(str::to_owned)
                    .collect(),
            }
        });
        PoolRequest {
            name: self.pool.clone(),
            target: self.mount_point.clone(),
            netfs,
        }
    }

    /// The attach workflow (looks up the LIFs; nothing is changed).
    pub async fn attach(&self, env: &Env) -> Result<Saga<NfsStep>> {
        self.validate(env)?;
        if self.persist == Persist::Autofs && self.pool_kind == PoolKind::Dir {
            require_automount_on(env, &self.hosts)
                .await
                .map_err(|e| self.plan_err(e))?;
        }
        let lifs = self.lif_addresses(env).await?;
        let mount = self.mount_spec(&lifs)?;
        let cluster = env.cluster().to_owned();
        let policy = self.export_policy();
        let mut steps = vec![NfsStep::CreateExportPolicy {
            cluster: cluster.clone(),
            svm: self.svm.clone(),
            policy: policy.clone(),
        }];
        for h in &self.hosts {
            steps.push(NfsStep::AddExportRule {
                cluster: cluster.clone(),
                svm: self.svm.clone(),
                policy: policy.clone(),
                host: h.clone(),
                clients: env
                    .find_host(h)
                    .map(|x| x.addresses().to_vec())
                    .unwrap_or_default(),
            });
        }
        steps.push(NfsStep::CreateVolume {
            cluster,
            svm: self.svm.clone(),
            volume: self.volume.clone(),
            junction: self.junction(),
            policy,
            token: datastore::ownership_token(&self.pool),
        });
        let pool = self.pool_request(&mount);
        for h in &self.hosts {
            if self.pool_kind == PoolKind::Dir {
                match self.persist {
                    Persist::Fstab => {
                        steps.push(NfsStep::MountNfs {
                            host: h.clone(),
                            mount: mount.clone(),
                        });
                        steps.push(NfsStep::PersistFstab {
                            host: h.clone(),
                            id: self.entry_id(),
                            mount: mount.clone(),
                        });
                    }
                    Persist::Autofs => steps.push(NfsStep::PersistAutofs {
                        host: h.clone(),
                        map: AUTOFS_MAP.into(),
                        id: self.entry_id(),
                        mount: mount.clone(),
                    }),
                }
            }
            steps.push(NfsStep::DefinePool {
                host: h.clone(),
                pool: pool.clone(),
            });
        }
        Ok(Saga::new(self.workflow("attach"), steps))
    }

    /// The detach workflow: per host the pool (data kept), the fstab line or autofs entry and
    /// the mount; then, only with [`NfsDatastore::delete_ontap_objects`], the volume and the
    /// export policy.
    pub async fn detach(&self, env: &Env) -> Result<Saga<NfsStep>> {
        self.validate(env)?;
        let lifs = self.lif_addresses(env).await?;
        let mount = self.mount_spec(&lifs)?;
        let pool = self.pool_request(&mount);
        let mut steps = Vec::new();
        for h in &self.hosts {
            steps.push(NfsStep::RemovePool {
                host: h.clone(),
                pool: pool.clone(),
            });
            if self.pool_kind == PoolKind::Dir {
                match self.persist {
                    Persist::Fstab => {
                        steps.push(NfsStep::RemoveFstab {
                            host: h.clone(),
                            id: self.entry_id(),
                            mount: mount.clone(),
                        });
                        steps.push(NfsStep::UnmountNfs {
                            host: h.clone(),
                            mount: mount.clone(),
                        });
                    }
                    Persist::Autofs => steps.push(NfsStep::RemoveAutofs {
                        host: h.clone(),
                        map: AUTOFS_MAP.into(),
                        id: self.entry_id(),
                        mount: mount.clone(),
                    }),
                }
            }
        }
        if self.delete_ontap_objects {
            let cluster = env.cluster().to_owned();
            steps.push(NfsStep::DeleteVolume {
                cluster: cluster.clone(),
                svm: self.svm.clone(),
                name: self.volume.name.clone(),
            });
            steps.push(NfsStep::DeleteExportPolicy {
                cluster,
                svm: self.svm.clone(),
                policy: self.export_policy(),
            });
        }
        Ok(Saga::new(self.workflow("detach"), steps))
    }
}
