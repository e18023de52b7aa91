//! SMB datastores: attach (ONTAP volume with NTFS or mixed security style, CIFS share with
//! its ACL, per host a 0600 credentials file, an SMB 3.1.1 multichannel mount with an fstab
//! line or an autofs entry, and a libvirt `dir` pool) and detach (the reverse, ONTAP objects
//! deleted only when asked).
//!
//! ## The password never reaches a journal, a plan or a log
//! [`SmbDatastore::account`] takes the password as a [`SecretString`]. The workflow's
//! steps carry only the secret's *name* ([`SmbDatastore::secret_name`], `smb/<pool>`); the
//! password itself is put
//! in the [`Env`] ([`SmbDatastore::env_with_secret`], or [`Env::secret`]) and read by the
//! credentials step when it runs. A recovery in another process therefore needs the secret
//! given again (a missing one is [`StepError::MissingSecret`]); removing a credentials file
//! needs no secret. The file itself (`/etc/kvmstor/cifs/<id>.cred`) is written atomically
//! with mode 0600 in a 0700 directory, and mount options name the file, never the password.
//!
//! ## Attach, in order
//! 1. `CreateVolume`: a FlexVol junctioned at `/<volume>`, security style NTFS (VM images
//!    are reached only over SMB; choose mixed when NFS clients share the volume), the
//!    ownership token as comment.
//! 2. `CreateShare` `<pool>` (or [`SmbDatastore::share_name`]) on the junction, its ACL
//!    the service account (or group) with full control, and the token as comment.
//! 3. `AddShareAcl` for each further ACL entry ([`SmbDatastore::share_acl`]), through the
//!    share's `acls` endpoint; its undo deletes the entry (or restores the permission an
//!    existing entry had).
//! 4. Per host: `WriteCredentials`; with [`Persist::Fstab`], `MountSmb` now and
//!    `PersistFstab`; with [`Persist::Autofs`], `PersistAutofs` (automount must be running,
//!    as for NFS: checked when planning and before the entry is written); then
//!    `DefinePool` (a `dir` pool on the mount point).
//!
//! ## Mount options
//! `vers=3.1.1` (encryption and pre-authentication integrity), `multichannel` with
//! `max_channels=4` (several TCP connections to the SVM's SMB LIFs, the SMB counterpart of
//! `nconnect`), `credentials=<file>`, `_netdev` in fstab; `seal` when asked.

use std::path::PathBuf;

use host_storage::cifs::{
    remove_credentials, write_credentials, CifsCredentials, CifsMount, CifsOptions, SmbVersion,
};
use host_storage::files::EntryId;
use host_storage::HostName;
use ontap_client::models::{
    CifsAclType, CifsPermission, CifsShareAcl, CifsShareCreate, InterfaceState, IpService,
    SecurityStyle,
};
use ontap_client::{Query, SecretString};
use serde::{Deserialize, Serialize};

use crate::actions::{file_change, host_cmd, ontap_call, pool_defined, pool_removed};
use crate::datastore;
use crate::env::{Env, Host};
use crate::error::{Error, Result, StepError};
use crate::host_steps::{
    self, ensure_pool, host_err, mounter, remove_fstab, remove_pool, require_automount_on,
    AUTOFS_MAP,
};
use crate::nfs::{gone_ok, ontap_err, NfsOutput, Persist, PoolRequest, VolumeRequest};
use crate::ontap_steps;
use crate::saga::{ActionKind, Applied, LockKey, Saga, Step};

/// `max_channels` unless asked otherwise.
pub const DEFAULT_MAX_CHANNELS: u8 = 4;

/// An SMB mount as journaled (no secret: the credentials file is named by `id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmbMountSpec {
    /// The SMB LIF address.
    pub server: String,
    /// Share name.
    pub share: String,
    /// Mount point, as on the host.
    pub target: PathBuf,
    /// Multichannel channels (`0`: multichannel off).
    pub max_channels: u8,
    /// SMB encryption (`seal`).
    pub seal: bool,
    /// The entry id naming the credentials file, fstab line and autofs entry.
    pub id: String,
}

impl SmbMountSpec {
    fn to_mount(&self) -> host_storage::Result<CifsMount> {
        let mut o = CifsOptions::new(SmbVersion::V3_1_1)
            .seal(self.seal)
            .netdev(true);
        if self.max_channels > 0 {
            o = o.multichannel(true).max_channels(self.max_channels);
        }
        CifsMount::new(
            HostName::parse(&self.server)?,
            &self.share,
            self.target.clone(),
            o,
            Some(&EntryId::parse(&self.id)?),
        )
    }
}

/// The share's ACL entry, as journaled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareAccess {
    /// User or group, e.g. `CORP\svc_kvm`.
    pub user_or_group: String,
    /// `windows`, `unix_user` or `unix_group`.
    pub kind: String,
}

/// A further entry of the share's ACL, as journaled (ONTAP's `user_or_group`, `type` and
/// `permission` strings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareAcl {
    /// User or group, e.g. `CORP\vm-admins` or `Everyone`.
    pub user_or_group: String,
    /// `windows`, `unix_user` or `unix_group`.
    pub kind: String,
    /// `no_access`, `read`, `change` or `full_control`.
    pub permission: String,
}

/// Characters ONTAP (like Windows) refuses in a share name.
const SHARE_NAME_FORBIDDEN: &[char] = &[
    '"', '/', '\\', '[', ']', ':', '|', '<', '>', '+', '=', ';', ',', '*', '?',
];

/// Checks a CIFS share name: 1 to 80 characters (the 9.7 swagger's `cifs_share.name`
/// limits), none of `" / \ [ ] : | < > + = ; , * ?`, no control character, no `%` (ONTAP
/// expands `%w`, `%u`, `%d` in home-directory share names), no leading or trailing space.
pub fn check_share_name(name: &str) -> std::result::Result<(), &'static str> {
    let n = name.chars().count();
    if n == 0 || n > 80 {
        return Err("a share name has 1 to 80 characters");
    }
    if name
        .chars()
        .any(|c| SHARE_NAME_FORBIDDEN.contains(&c) || c.is_control() || c == '%')
    {
        return Err(
            "a share name cannot contain \" / \\ [ ] : | < > + = ; , * ? % or control characters",
        );
    }
    if name.starts_with(' ') || name.ends_with(' ') {
        return Err("a share name cannot start or end with a space");
    }
    Ok(())
}

/// One step of the SMB workflows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
#[non_exhaustive]
pub enum SmbStep {
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
        /// `ntfs` or `mixed`.
        security_style: String,
        /// Ownership token, written as the volume comment.
        token: String,
    },
    /// Creates the share with its ACL.
    CreateShare {
        /// Cluster (lock key).
        cluster: String,
        /// SVM.
        svm: String,
        /// Share name.
        share: String,
        /// Path (the junction).
        path: String,
        /// Who gets full control.
        access: ShareAccess,
        /// SMB encryption required on the share.
        encryption: bool,
        /// Ownership token, written as the share comment.
        token: String,
    },
    /// Adds one entry to the share's ACL (`POST .../acls`), or sets the permission of the
    /// entry already there (`PATCH`).
    AddShareAcl {
        /// Cluster (lock key).
        cluster: String,
        /// SVM.
        svm: String,
        /// Share name.
        share: String,
        /// The entry.
        acl: ShareAcl,
    },
    /// Writes the 0600 credentials file.
    WriteCredentials {
        /// The host.
        host: String,
        /// Entry id (file name).
        id: String,
        /// User name.
        username: String,
        /// Domain, if any.
        domain: Option<String>,
        /// The name of the password in the [`Env`] (never the password).
        secret: String,
    },
    /// Mounts the share now.
    MountSmb {
        /// The host.
        host: String,
        /// The mount.
        mount: SmbMountSpec,
    },
    /// Adds the owned `/etc/fstab` line.
    PersistFstab {
        /// The host.
        host: String,
        /// The mount.
        mount: SmbMountSpec,
    },
    /// Adds the owned autofs direct-map entry.
    PersistAutofs {
        /// The host.
        host: String,
        /// Map name (`/etc/auto.<map>`).
        map: String,
        /// The mount.
        mount: SmbMountSpec,
    },
    /// Defines, builds, starts and autostarts the libvirt `dir` pool.
    DefinePool {
        /// The host.
        host: String,
        /// The pool.
        pool: PoolRequest,
    },
    /// Stops and undefines the pool (data kept).
    RemovePool {
        /// The host.
        host: String,
        /// The pool.
        pool: PoolRequest,
    },
    /// Removes the owned fstab line.
    RemoveFstab {
        /// The host.
        host: String,
        /// The mount.
        mount: SmbMountSpec,
    },
    /// Removes the owned autofs entry.
    RemoveAutofs {
        /// The host.
        host: String,
        /// Map name.
        map: String,
        /// The mount.
        mount: SmbMountSpec,
    },
    /// Unmounts the share and removes the empty mount point.
    UnmountSmb {
        /// The host.
        host: String,
        /// The mount.
        mount: SmbMountSpec,
    },
    /// Deletes the credentials file (its undo needs the secret again).
    RemoveCredentials {
        /// The host.
        host: String,
        /// Entry id.
        id: String,
        /// User name.
        username: String,
        /// Domain, if any.
        domain: Option<String>,
        /// The name of the password in the [`Env`].
        secret: String,
    },
    /// Deletes the share.
    DeleteShare {
        /// Cluster (lock key).
        cluster: String,
        /// SVM.
        svm: String,
        /// Share name.
        share: String,
        /// Path (to create it again on undo).
        path: String,
        /// ACL entry (to create it again on undo).
        access: ShareAccess,
        /// Further ACL entries (to create them again on undo).
        #[serde(default)]
        acls: Vec<ShareAcl>,
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
}

/// What an [`SmbStep`] hands to its undo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum SmbOutput {
    /// Nothing beyond the step itself.
    Nothing,
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
    /// An ACL entry set.
    Acl {
        /// The permission the entry had before (`None`: the step created it).
        previous: Option<String>,
    },
}

fn acl_kind(kind: &str) -> CifsAclType {
    match kind {
        "unix_user" => CifsAclType::UnixUser,
        "unix_group" => CifsAclType::UnixGroup,
        _ => CifsAclType::Windows,
    }
}

fn style(s: &str) -> SecurityStyle {
    if s == "mixed" {
        SecurityStyle::Mixed
    } else {
        SecurityStyle::Ntfs
    }
}

fn from_nfs(a: Applied<NfsOutput>) -> Applied<SmbOutput> {
    Applied {
        changed: a.changed,
        output: SmbOutput::Nothing,
    }
}

async fn svm_uuid(env: &Env, svm: &str) -> Result<String, StepError> {
    let op = || format!("get SVM {svm}");
    env.ontap()
        .svms()
        .find(&Query::new().filter("name", svm).fields(["uuid", "name"]))
        .await
        .map_err(ontap_err(op()))?
        .and_then(|s| s.uuid)
        .ok_or_else(|| StepError::MissingField {
            operation: op(),
            field: "uuid",
        })
}

/// The share's comment, if the share exists.
async fn find_share(
    env: &Env,
    svm: &str,
    share: &str,
) -> Result<Option<Option<String>>, StepError> {
    let found = env
        .ontap()
        .cifs_shares()
        .find(
            &Query::new()
                .filter("svm.name", svm)
                .filter("name", share)
                .fields(["name", "comment", "path"]),
        )
        .await
        .map_err(ontap_err(format!("get share {svm}/{share}")))?;
    Ok(found.map(|s| s.comment))
}

/// The share as `access` (full control) and `extra` ACL entries.
struct ShareSpec<'a> {
    svm: &'a str,
    share: &'a str,
    path: &'a str,
    access: &'a ShareAccess,
    extra: &'a [ShareAcl],
    encryption: bool,
}

async fn create_share(
    env: &Env,
    spec: &ShareSpec<'_>,
    token: Option<&str>,
) -> Result<bool, StepError> {
    let ShareSpec {
        svm, share, path, ..
    } = *spec;
    if let Some(comment) = find_share(env, svm, share).await? {
        return Ok(token.is_some() && comment.as_deref() == token);
    }
    let mut body = CifsShareCreate::new(share, svm, path)
        .acl(
            spec.access.user_or_group.as_str(),
            acl_kind(&spec.access.kind),
            CifsPermission::FullControl,
        )
        .encryption(spec.encryption);
    for a in spec.extra {
        body = body.acl(
            a.user_or_group.as_str(),
            acl_kind(&a.kind),
            CifsPermission::from(a.permission.as_str()),
        );
    }
    if let Some(t) = token {
        body = body.comment(t);
    }
    env.ontap()
        .cifs_shares()
        .create(&body)
        .await
        .map_err(ontap_err(format!("create share {svm}/{share}")))?;
    Ok(true)
}

/// The share's ACL entry for (`who`, `kind`) (`who` compared without case, as ONTAP does).
async fn find_acl(
    env: &Env,
    svm_uuid: &str,
    share: &str,
    who: &str,
    kind: &str,
) -> Result<Option<CifsShareAcl>, StepError> {
    let all = env
        .ontap()
        .cifs_shares()
        .acls(svm_uuid, share)
        .list_all(&Query::new().fields(["user_or_group", "type", "permission"]))
        .await
        .map_err(ontap_err(format!("list ACL of share {share}")))?;
    Ok(all.into_iter().find(|a| {
        a.user_or_group
            .as_deref()
            .is_some_and(|u| u.eq_ignore_ascii_case(who))
            && a.kind.as_ref().map_or("windows", |k| k.as_str()) == kind
    }))
}

/// The body of an ACL entry's PATCH: only `permission` may change.
fn permission_body(p: &CifsPermission) -> CifsShareAcl {
    let mut body = CifsShareAcl::default();
    body.permission = Some(p.clone());
    body
}

/// Sets `acl` on the share: creates the entry, or changes the permission of the entry
/// already there. Returns whether it changed anything and the permission before.
async fn add_acl(
    env: &Env,
    svm: &str,
    share: &str,
    acl: &ShareAcl,
) -> Result<Applied<SmbOutput>, StepError> {
    let op = || {
        format!(
            "set ACL {} ({}) {} on share {svm}/{share}",
            acl.user_or_group, acl.kind, acl.permission
        )
    };
    let uuid = svm_uuid(env, svm).await?;
    let api = env.ontap().cifs_shares().acls(&uuid, share);
    let perm = CifsPermission::from(acl.permission.as_str());
    match find_acl(env, &uuid, share, &acl.user_or_group, &acl.kind).await? {
        Some(found) if found.permission.as_ref() == Some(&perm) => Ok(Applied {
            changed: false,
            output: SmbOutput::Nothing,
        }),
        Some(found) => {
            let who = found.user_or_group.unwrap_or_default();
            api.patch(&format!("{who}/{}", acl.kind), &permission_body(&perm))
                .await
                .map_err(ontap_err(op()))?;
            Ok(Applied::changed(SmbOutput::Acl {
                previous: found.permission.map(|p| p.as_str().to_owned()),
            }))
        }
        None => {
            api.create(&CifsShareAcl::new(
                acl.user_or_group.as_str(),
                acl_kind(&acl.kind),
                perm,
            ))
            .await
            .map_err(ontap_err(op()))?;
            Ok(Applied::changed(SmbOutput::Acl { previous: None }))
        }
    }
}

/// Undoes [`add_acl`]: restores the previous permission, or deletes the entry it created
/// (with no output, e.g. after a crash, only an entry still holding `acl`'s permission).
/// A share already gone is success.
async fn remove_acl(
    env: &Env,
    svm: &str,
    share: &str,
    acl: &ShareAcl,
    output: Option<&SmbOutput>,
) -> Result<bool, StepError> {
    let op = || {
        format!(
            "remove ACL {} ({}) from share {svm}/{share}",
            acl.user_or_group, acl.kind
        )
    };
    if find_share(env, svm, share).await?.is_none() {
        return Ok(false);
    }
    let uuid = svm_uuid(env, svm).await?;
    let Some(found) = find_acl(env, &uuid, share, &acl.user_or_group, &acl.kind).await? else {
        return Ok(false);
    };
    let key = format!("{}/{}", found.user_or_group.unwrap_or_default(), acl.kind);
    let api = env.ontap().cifs_shares().acls(&uuid, share);
    let ours = CifsPermission::from(acl.permission.as_str());
    match output {
        Some(SmbOutput::Acl {
            previous: Some(prev),
        }) => {
            let prev = CifsPermission::from(prev.as_str());
            if found.permission.as_ref() == Some(&prev) {
                return Ok(false);
            }
            api.patch(&key, &permission_body(&prev))
                .await
                .map_err(ontap_err(op()))?;
            Ok(true)
        }
        Some(SmbOutput::Acl { previous: None }) => {
            gone_ok(api.delete(&key).await).map_err(ontap_err(op()))
        }
        _ if found.permission.as_ref() == Some(&ours) => {
            gone_ok(api.delete(&key).await).map_err(ontap_err(op()))
        }
        _ => Ok(false),
    }
}

async fn delete_share(
    env: &Env,
    svm: &str,
    share: &str,
    token: Option<&str>,
) -> Result<bool, StepError> {
    let Some(comment) = find_share(env, svm, share).await? else {
        return Ok(false);
    };
    if token.is_some() && comment.as_deref() != token {
        return Ok(false);
    }
    let uuid = svm_uuid(env, svm).await?;
    gone_ok(env.ontap().cifs_shares().delete_share(&uuid, share).await)
        .map_err(ontap_err(format!("delete share {svm}/{share}")))
}

async fn delete_volume(
    env: &Env,
    svm: &str,
    name: &str,
    token: Option<&str>,
    uuid: Option<&str>,
) -> Result<bool, StepError> {
    let lookup = format!("delete volume {svm}/{name}");
    ontap_steps::delete_volume(env, svm, name, token, uuid, lookup).await
}

fn write_creds(
    env: &Env,
    host: &Host,
    id: &str,
    username: &str,
    domain: Option<&str>,
    secret: &str,
) -> Result<bool, StepError> {
    let password = env
        .find_secret(secret)
        .cloned()
        .ok_or_else(|| StepError::MissingSecret {
            name: secret.to_owned(),
        })?;
    let err = || host_err(host.name(), format!("write credentials file {id}"));
    let creds = CifsCredentials::new(username, password, domain).map_err(err())?;
    let eid = EntryId::parse(id).map_err(err())?;
    Ok(write_credentials(host.host_root(), &eid, &creds)
        .map_err(err())?
        .change
        .is_changed())
}

fn remove_creds(host: &Host, id: &str) -> Result<bool, StepError> {
    let err = || host_err(host.name(), format!("remove credentials file {id}"));
    let eid = EntryId::parse(id).map_err(err())?;
    Ok(remove_credentials(host.host_root(), &eid)
        .map_err(err())?
        .is_changed())
}

async fn mount_now(host: &Host, mount: &SmbMountSpec) -> Result<Applied<SmbOutput>, StepError> {
    let err = || host_err(host.name(), format!("mount {}", mount.target.display()));
    let m = mount.to_mount().map_err(err())?;
    let undo = mounter(host).mount_cifs(&m).await.map_err(err())?;
    Ok(Applied {
        changed: undo.change.is_changed(),
        output: SmbOutput::Mount {
            created_dir: undo.created_dir,
        },
    })
}

/// Unmounts `mount` if this share is what is mounted there, then removes the mount point
/// when `remove_dir` and it is empty.
async fn unmount(host: &Host, mount: &SmbMountSpec, remove_dir: bool) -> Result<bool, StepError> {
    let source = mount
        .to_mount()
        .map_err(host_err(
            host.name(),
            format!("unmount {}", mount.target.display()),
        ))?
        .source();
    host_steps::unmount_if(host, &mount.target, remove_dir, |found| {
        found.source.eq_ignore_ascii_case(&source)
    })
    .await
}

fn add_fstab(host: &Host, mount: &SmbMountSpec) -> Result<bool, StepError> {
    let u = host_steps::add_fstab(
        host,
        &mount.id,
        mount.to_mount(),
        host_storage::fstab::Fstab::add_cifs,
    )?;
    Ok(u.changed)
}

async fn add_autofs(host: &Host, map: &str, mount: &SmbMountSpec) -> Result<bool, StepError> {
    let u = host_steps::add_autofs(
        host,
        map,
        &mount.id,
        &mount.target,
        mount.to_mount(),
        |autofs, id, m| async move { autofs.add_cifs(&id, &m).await },
    )
    .await?;
    Ok(u.changed)
}

async fn remove_autofs(host: &Host, map: &str, mount: &SmbMountSpec) -> Result<bool, StepError> {
    let source = mount
        .to_mount()
        .map_err(host_err(
            host.name(),
            format!("remove autofs entry {} from map {map}", mount.id),
        ))?
        .source();
    host_steps::remove_autofs(host, map, &mount.id, &mount.target, &source).await
}

fn mount_line(mount: &SmbMountSpec, what: &str) -> String {
    match mount.to_mount() {
        Ok(m) => match what {
            "fstab" => m.fstab_line(),
            "autofs" => m.autofs_entry(),
            _ => m.mount_command().to_string(),
        },
        Err(e) => format!("(invalid mount: {e})"),
    }
}

#[async_trait::async_trait]
impl Step for SmbStep {
    type Env = Env;
    type Output = SmbOutput;

    fn label(&self) -> String {
        match self {
            SmbStep::CreateVolume { svm, volume, .. } => {
                format!("CreateVolume {svm}/{}", volume.name)
            }
            SmbStep::CreateShare { svm, share, .. } => format!("CreateShare {svm}/{share}"),
            SmbStep::AddShareAcl {
                svm, share, acl, ..
            } => {
                format!("AddShareAcl {svm}/{share}:{}", acl.user_or_group)
            }
            SmbStep::WriteCredentials { host, id, .. } => format!("WriteCredentials {host}:{id}"),
            SmbStep::MountSmb { host, mount } => {
                format!("MountSmb {host}:{}", mount.target.display())
            }
            SmbStep::PersistFstab { host, mount } => format!("PersistFstab {host}:{}", mount.id),
            SmbStep::PersistAutofs { host, map, mount } => {
                format!("PersistAutofs {host}:auto.{map}/{}", mount.id)
            }
            SmbStep::DefinePool { host, pool } => format!("DefinePool {host}:{}", pool.name),
            SmbStep::RemovePool { host, pool } => format!("RemovePool {host}:{}", pool.name),
            SmbStep::RemoveFstab { host, mount } => format!("RemoveFstab {host}:{}", mount.id),
            SmbStep::RemoveAutofs { host, map, mount } => {
                format!("RemoveAutofs {host}:auto.{map}/{}", mount.id)
            }
            SmbStep::UnmountSmb { host, mount } => {
                format!("UnmountSmb {host}:{}", mount.target.display())
            }
            SmbStep::RemoveCredentials { host, id, .. } => {
                format!("RemoveCredentials {host}:{id}")
            }
            SmbStep::DeleteShare { svm, share, .. } => format!("DeleteShare {svm}/{share}"),
            SmbStep::DeleteVolume { svm, name, .. } => format!("DeleteVolume {svm}/{name}"),
        }
    }

    fn planned(&self) -> Vec<ActionKind> {
        match self {
            SmbStep::CreateVolume {
                svm,
                volume,
                junction,
                security_style,
                ..
            } => vec![ontap_call(
                "POST",
                "/api/storage/volumes",
                format!(
                    "create FlexVol {svm}/{} on {}, {} bytes{}, junction {junction}, security style {security_style}",
                    volume.name,
                    volume.aggregate,
                    volume.size,
                    if volume.thin { " thin" } else { "" }
                ),
            )],
            SmbStep::CreateShare {
                svm,
                share,
                path,
                access,
                encryption,
                ..
            } => vec![ontap_call(
                "POST",
                "/api/protocols/cifs/shares",
                format!(
                    "create share {share} on {svm}:{path}, ACL {} ({}) full_control{}",
                    access.user_or_group,
                    access.kind,
                    if *encryption { ", encryption required" } else { "" }
                ),
            )],
            SmbStep::AddShareAcl { svm, share, acl, .. } => vec![ontap_call(
                "POST",
                "/api/protocols/cifs/shares/{svm uuid}/{share}/acls",
                format!(
                    "add ACL {} ({}) {} to share {svm}/{share} (PATCH the permission if the entry exists)",
                    acl.user_or_group, acl.kind, acl.permission
                ),
            )],
            SmbStep::WriteCredentials {
                host,
                id,
                username,
                domain,
                secret,
            } => vec![file_change(
                host,
                format!("/etc/kvmstor/cifs/{id}.cred"),
                format!(
                    "username={username} password=<secret {secret}>{} (mode 0600)",
                    domain
                        .as_ref()
                        .map(|d| format!(" domain={d}"))
                        .unwrap_or_default()
                ),
            )],
            SmbStep::RemoveCredentials { host, id, .. } => vec![file_change(
                host,
                format!("/etc/kvmstor/cifs/{id}.cred"),
                "(remove)".into(),
            )],
            SmbStep::MountSmb { host, mount } => vec![host_cmd(host, mount_line(mount, "mount"))],
            SmbStep::UnmountSmb { host, mount } => {
                vec![host_cmd(host, format!("umount {}", mount.target.display()))]
            }
            SmbStep::PersistFstab { host, mount } => {
                vec![file_change(host, "/etc/fstab", mount_line(mount, "fstab"))]
            }
            SmbStep::RemoveFstab { host, mount } => vec![file_change(
                host,
                "/etc/fstab",
                format!("(remove) {}", mount_line(mount, "fstab")),
            )],
            SmbStep::PersistAutofs { host, map, mount } => vec![
                file_change(host, "/etc/auto.master", format!("/- /etc/auto.{map} --timeout=300")),
                file_change(host, format!("/etc/auto.{map}"), mount_line(mount, "autofs")),
            ],
            SmbStep::RemoveAutofs { host, map, mount } => vec![file_change(
                host,
                format!("/etc/auto.{map}"),
                format!("(remove) {}", mount_line(mount, "autofs")),
            )],
            SmbStep::DefinePool { host, pool } => vec![pool_defined(host, pool)],
            SmbStep::RemovePool { host, pool } => vec![pool_removed(host, pool)],
            SmbStep::DeleteShare { svm, share, .. } => vec![ontap_call(
                "DELETE",
                "/api/protocols/cifs/shares/{svm uuid}/{share}",
                format!("delete share {svm}/{share}"),
            )],
            SmbStep::DeleteVolume { svm, name, .. } => vec![ontap_call(
                "DELETE",
                "/api/storage/volumes/{uuid}",
                format!("delete volume {svm}/{name} and its data"),
            )],
        }
    }

    fn locks(&self) -> Vec<LockKey> {
        match self {
            SmbStep::CreateVolume {
                cluster,
                svm,
                volume,
                ..
            } => vec![LockKey::ontap(cluster, svm, "volume", &volume.name)],
            SmbStep::DeleteVolume { cluster, svm, name } => {
                vec![LockKey::ontap(cluster, svm, "volume", name)]
            }
            SmbStep::CreateShare {
                cluster,
                svm,
                share,
                ..
            }
            | SmbStep::AddShareAcl {
                cluster,
                svm,
                share,
                ..
            }
            | SmbStep::DeleteShare {
                cluster,
                svm,
                share,
                ..
            } => vec![LockKey::ontap(cluster, svm, "cifs-share", share)],
            SmbStep::WriteCredentials { host, .. }
            | SmbStep::MountSmb { host, .. }
            | SmbStep::PersistFstab { host, .. }
            | SmbStep::PersistAutofs { host, .. }
            | SmbStep::DefinePool { host, .. }
            | SmbStep::RemovePool { host, .. }
            | SmbStep::RemoveFstab { host, .. }
            | SmbStep::RemoveAutofs { host, .. }
            | SmbStep::UnmountSmb { host, .. }
            | SmbStep::RemoveCredentials { host, .. } => vec![LockKey::host(host)],
        }
    }

    fn reversible(&self) -> bool {
        !matches!(self, SmbStep::DeleteVolume { .. })
    }

    async fn apply(&self, env: &Env) -> Result<Applied<SmbOutput>, StepError> {
        let done = |changed: bool| Applied {
            changed,
            output: SmbOutput::Nothing,
        };
        match self {
            SmbStep::CreateVolume {
                svm,
                volume,
                junction,
                security_style,
                token,
                ..
            } => {
                let op = || format!("create volume {svm}/{}", volume.name);
                let find = || ontap_steps::owned_volume(env, svm, &volume.name, op());
                let body = volume.smb_body(svm, junction, style(security_style), token);
                let volumes = env.ontap().volumes();
                let a = ontap_steps::create_once(op(), Some(token), find, volumes.create(&body))
                    .await?;
                Ok(Applied {
                    changed: a.changed,
                    output: SmbOutput::Volume { uuid: a.output },
                })
            }
            SmbStep::CreateShare {
                svm,
                share,
                path,
                access,
                encryption,
                token,
                ..
            } => {
                let spec = ShareSpec {
                    svm,
                    share,
                    path,
                    access,
                    extra: &[],
                    encryption: *encryption,
                };
                Ok(done(create_share(env, &spec, Some(token)).await?))
            }
            SmbStep::AddShareAcl {
                svm, share, acl, ..
            } => add_acl(env, svm, share, acl).await,
            SmbStep::WriteCredentials {
                host,
                id,
                username,
                domain,
                secret,
            } => Ok(done(write_creds(
                env,
                env.find_host(host)?,
                id,
                username,
                domain.as_deref(),
                secret,
            )?)),
            SmbStep::MountSmb { host, mount } => mount_now(env.find_host(host)?, mount).await,
            SmbStep::PersistFstab { host, mount } => {
                Ok(done(add_fstab(env.find_host(host)?, mount)?))
            }
            SmbStep::PersistAutofs { host, map, mount } => {
                Ok(done(add_autofs(env.find_host(host)?, map, mount).await?))
            }
            SmbStep::DefinePool { host, pool } => {
                Ok(from_nfs(ensure_pool(env.find_host(host)?, pool).await?))
            }
            SmbStep::RemovePool { host, pool } => {
                Ok(done(remove_pool(env.find_host(host)?, pool, false).await?))
            }
            SmbStep::RemoveFstab { host, mount } => {
                Ok(done(remove_fstab(env.find_host(host)?, &mount.id)?))
            }
            SmbStep::RemoveAutofs { host, map, mount } => {
                Ok(done(remove_autofs(env.find_host(host)?, map, mount).await?))
            }
            SmbStep::UnmountSmb { host, mount } => {
                Ok(done(unmount(env.find_host(host)?, mount, true).await?))
            }
            SmbStep::RemoveCredentials { host, id, .. } => {
                Ok(done(remove_creds(env.find_host(host)?, id)?))
            }
            SmbStep::DeleteShare { svm, share, .. } => {
                Ok(done(delete_share(env, svm, share, None).await?))
            }
            SmbStep::DeleteVolume { svm, name, .. } => {
                Ok(done(delete_volume(env, svm, name, None, None).await?))
            }
        }
    }

    async fn undo(&self, env: &Env, output: Option<&SmbOutput>) -> Result<bool, StepError> {
        match self {
            SmbStep::CreateVolume {
                svm, volume, token, ..
            } => {
                let uuid = match output {
                    Some(SmbOutput::Volume { uuid }) => Some(uuid.as_str()),
                    _ => None,
                };
                delete_volume(env, svm, &volume.name, Some(token), uuid).await
            }
            SmbStep::CreateShare {
                svm, share, token, ..
            } => delete_share(env, svm, share, Some(token)).await,
            SmbStep::AddShareAcl {
                svm, share, acl, ..
            } => remove_acl(env, svm, share, acl, output).await,
            SmbStep::WriteCredentials { host, id, .. } => remove_creds(env.find_host(host)?, id),
            SmbStep::MountSmb { host, mount } => {
                let remove_dir = match output {
                    Some(SmbOutput::Mount { created_dir }) => *created_dir,
                    _ => true,
                };
                unmount(env.find_host(host)?, mount, remove_dir).await
            }
            SmbStep::PersistFstab { host, mount } => remove_fstab(env.find_host(host)?, &mount.id),
            SmbStep::PersistAutofs { host, map, mount } => {
                remove_autofs(env.find_host(host)?, map, mount).await
            }
            SmbStep::DefinePool { host, pool } => {
                remove_pool(env.find_host(host)?, pool, true).await
            }
            SmbStep::RemovePool { host, pool } => {
                Ok(ensure_pool(env.find_host(host)?, pool).await?.changed)
            }
            SmbStep::RemoveFstab { host, mount } => add_fstab(env.find_host(host)?, mount),
            SmbStep::RemoveAutofs { host, map, mount } => {
                add_autofs(env.find_host(host)?, map, mount).await
            }
            SmbStep::UnmountSmb { host, mount } => {
                Ok(mount_now(env.find_host(host)?, mount).await?.changed)
            }
            SmbStep::RemoveCredentials {
                host,
                id,
                username,
                domain,
                secret,
            } => write_creds(
                env,
                env.find_host(host)?,
                id,
                username,
                domain.as_deref(),
                secret,
            ),
            SmbStep::DeleteShare {
                svm,
                share,
                path,
                access,
                acls,
                ..
            } => {
                let spec = ShareSpec {
                    svm,
                    share,
                    path,
                    access,
                    extra: acls,
                    encryption: false,
                };
                create_share(env, &spec, None).await
            }
            SmbStep::DeleteVolume { .. } => Err(StepError::Irreversible { step: self.label() }),
        }
    }
}

/// The request: an SMB datastore from an SVM, attached to hosts as a libvirt `dir` pool.
///
/// ```
/// use kvmstor::smb::SmbDatastore;
/// use ontap_client::SecretString;
/// let ds = SmbDatastore::new("svm1", "vmshare", "aggr1", 100 << 30)
///     .hosts(["kvm1", "kvm2"])
///     .account("svc_kvm", Some("CORP"), SecretString::from("p@ss"));
/// assert_eq!(ds.secret_name(), "smb/vmshare");
/// assert!(!format!("{ds:?}").contains("p@ss"));
/// ```
#[derive(Debug, Clone)]
pub struct SmbDatastore {
    svm: String,
    pool: String,
    volume: VolumeRequest,
    hosts: Vec<String>,
    mount_point: PathBuf,
    persist: Persist,
    username: String,
    domain: Option<String>,
    password: Option<SecretString>,
    mixed: bool,
    seal: bool,
    max_channels: u8,
    delete_ontap_objects: bool,
    share: Option<String>,
    acls: Vec<ShareAcl>,
}

impl SmbDatastore {
    /// Pool `name` on a volume of `size` bytes on `aggregate` of `svm` (named like the
    /// pool with `-` as `_`), thin, NTFS, shared as `<name>`, mounted at
    /// `/var/lib/kvmstor/mnt/<name>` with multichannel, persisted in fstab; no hosts or
    /// account yet.
    pub fn new(svm: &str, name: &str, aggregate: &str, size: u64) -> Self {
        SmbDatastore {
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
            username: String::new(),
            domain: None,
            password: None,
            mixed: false,
            seal: false,
            max_channels: DEFAULT_MAX_CHANNELS,
            delete_ontap_objects: false,
            share: None,
            acls: Vec::new(),
        }
    }

    /// The hosts (by name, as in the [`Env`]).
    #[must_use]
    pub fn hosts<I: IntoIterator<Item = S>, S: Into<String>>(mut self, hosts: I) -> Self {
        self.hosts = hosts.into_iter().map(Into::into).collect();
        self
    }

    /// The account the hosts mount with; it gets full control in the share's ACL.
    #[must_use]
    pub fn account(mut self, username: &str, domain: Option<&str>, password: SecretString) -> Self {
        self.username = username.to_owned();
        self.domain = domain.map(str::to_owned);
        self.password = Some(password);
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

    /// Mixed security style (NFS clients share the volume) instead of NTFS.
    #[must_use]
    pub fn mixed_security(mut self, yes: bool) -> Self {
        self.mixed = yes;
        self
    }

    /// Require SMB encryption (share property and `seal`).
    #[must_use]
    pub fn encryption(mut self, yes: bool) -> Self {
        self.seal = yes;
        self
    }

    /// Multichannel channels (default [`DEFAULT_MAX_CHANNELS`]; `0` turns multichannel
    /// off; at most 16).
    #[must_use]
    pub fn max_channels(mut self, n: u8) -> Self {
        self.max_channels = n.min(16);
        self
    }

    /// Detach also deletes the share and the volume (and its data). Off by default.
    #[must_use]
    pub fn delete_ontap_objects(mut self, yes: bool) -> Self {
        self.delete_ontap_objects = yes;
        self
    }

    /// The name the password goes by in the [`Env`] and the journal: `smb/<pool>`.
    pub fn secret_name(&self) -> String {
        format!("smb/{}", self.pool)
    }

    /// `env` with this datastore's password added under [`SmbDatastore::secret_name`].
    pub fn env_with_secret(&self, env: &Env) -> Env {
        match &self.password {
            Some(p) => env.clone().secret(self.secret_name(), p.clone()),
            None => env.clone(),
        }
    }

    /// The ONTAP volume's name (the pool's, with `-` and `.` as `_`).
    pub fn volume(&self) -> &str {
        &self.volume.name
    }

    /// The share's name: [`SmbDatastore::share_name`], else the pool's.
    pub fn share(&self) -> &str {
        self.share.as_deref().unwrap_or(&self.pool)
    }

    /// Shares the volume as `name` instead of the pool's name (checked by
    /// [`check_share_name`] when a workflow is planned).
    #[must_use]
    pub fn share_name(mut self, name: &str) -> Self {
        self.share = Some(name.to_owned());
        self
    }

    /// Adds an entry to the share's ACL beside the mount account's full control, e.g.
    /// `CORP\vm-admins` with [`CifsPermission::Change`] or `Everyone` with
    /// [`CifsPermission::NoAccess`]. Applied by an `AddShareAcl` step after the share is
    /// created; detach keeps it with the share (or deletes both when asked).
    #[must_use]
    pub fn share_acl(
        mut self,
        user_or_group: &str,
        kind: CifsAclType,
        permission: CifsPermission,
    ) -> Self {
        self.acls.push(ShareAcl {
            user_or_group: user_or_group.to_owned(),
            kind: kind.as_str().to_owned(),
            permission: permission.as_str().to_owned(),
        });
        self
    }

    fn entry_id(&self) -> String {
        datastore::entry_id(&self.pool)
    }

    fn workflow(&self, verb: &str) -> String {
        format!(
            "smb-{verb} {}/{} as pool {}",
            self.svm, self.volume.name, self.pool
        )
    }

    fn plan_err(&self, source: StepError) -> Error {
        Error::Plan {
            workflow: self.workflow("attach"),
            source: Box::new(source),
        }
    }

    fn validate(&self, env: &Env) -> Result<()> {
        datastore::require_hosts(&self.hosts)?;
        if self.username.is_empty() {
            return Err(Error::Invalid {
                field: "account",
                value: String::new(),
                reason: "an SMB datastore needs an account (SmbDatastore::account)",
            });
        }
        for h in &self.hosts {
            env.find_host(h).map_err(|e| self.plan_err(e))?;
        }
        datastore::check_entry_id(&self.pool)?;
        check_share_name(self.share()).map_err(|reason| Error::Invalid {
            field: "share",
            value: self.share().to_owned(),
            reason,
        })?;
        self.validate_acls()
    }

    fn validate_acls(&self) -> Result<()> {
        let account = self.access();
        let invalid = |value: String, reason| {
            Err(Error::Invalid {
                field: "share_acl",
                value,
                reason,
            })
        };
        for (i, a) in self.acls.iter().enumerate() {
            let value = format!("{} ({}) {}", a.user_or_group, a.kind, a.permission);
            if a.user_or_group.trim().is_empty() {
                return invalid(value, "an ACL entry names a user or group");
            }
            if matches!(acl_kind(&a.kind), CifsAclType::Windows) && a.kind != "windows" {
                return invalid(value, "the ACL type is windows, unix_user or unix_group");
            }
            if matches!(
                CifsPermission::from(a.permission.as_str()),
                CifsPermission::Unknown(_)
            ) {
                return invalid(
                    value,
                    "the permission is no_access, read, change or full_control",
                );
            }
            let same = |u: &str, k: &str| u.eq_ignore_ascii_case(&a.user_or_group) && k == a.kind;
            if same(&account.user_or_group, &account.kind) {
                return invalid(value, "the mount account has full control already");
            }
            if self.acls[..i]
                .iter()
                .any(|b| same(&b.user_or_group, &b.kind))
            {
                return invalid(value, "the ACL names this user or group twice");
            }
        }
        Ok(())
    }

    /// The address of the SVM's first `data_cifs` LIF that is up and enabled (by LIF
    /// name); multichannel finds the others.
    pub async fn lif_address(&self, env: &Env) -> Result<String> {
        let lifs = env
            .ontap()
            .ip_interfaces()
            .data_lifs(&self.svm, &IpService::DataCifs)
            .await
            .map_err(|source| {
                self.plan_err(StepError::Ontap {
                    operation: format!("list data_cifs LIFs of {}", self.svm),
                    source: Box::new(source),
                })
            })?;
        let mut up: Vec<(String, String)> = lifs
            .iter()
            .filter(|l| l.enabled != Some(false))
            .filter(|l| l.state.as_ref().is_none_or(|s| *s == InterfaceState::Up))
            .filter_map(|l| Some((l.name.clone().unwrap_or_default(), l.address()?.to_owned())))
            .collect();
        up.sort();
        up.into_iter()
            .next()
            .map(|(_, a)| a)
            .ok_or_else(|| Error::NoServiceLif {
                svm: self.svm.clone(),
                service: "data_cifs".into(),
            })
    }

    fn mount_spec(&self, server: String) -> Result<SmbMountSpec> {
        let spec = SmbMountSpec {
            server,
            share: self.share().to_owned(),
            target: self.mount_point.clone(),
            max_channels: self.max_channels,
            seal: self.seal,
            id: self.entry_id(),
        };
        spec.to_mount().map_err(|source| {
            self.plan_err(StepError::Host {
                host: String::new(),
                operation: "validate SMB mount".into(),
                source: Box::new(source),
            })
        })?;
        Ok(spec)
    }

    fn pool_request(&self) -> PoolRequest {
        PoolRequest {
            name: self.pool.clone(),
            target: self.mount_point.clone(),
            netfs: None,
        }
    }

    fn access(&self) -> ShareAccess {
        ShareAccess {
            user_or_group: match &self.domain {
                Some(d) => format!("{d}\\{}", self.username),
                None => self.username.clone(),
            },
            kind: "windows".into(),
        }
    }

    /// The attach workflow (looks up the SMB LIF; nothing is changed). Run it with
    /// [`SmbDatastore::env_with_secret`].
    pub async fn attach(&self, env: &Env) -> Result<Saga<SmbStep>> {
        self.validate(env)?;
        if self.persist == Persist::Autofs {
            require_automount_on(env, &self.hosts)
                .await
                .map_err(|e| self.plan_err(e))?;
        }
        let mount = self.mount_spec(self.lif_address(env).await?)?;
        let cluster = env.cluster().to_owned();
        let token = datastore::ownership_token(&self.pool);
        let junction = format!("/{}", self.volume.name);
        let mut steps = vec![
            SmbStep::CreateVolume {
                cluster: cluster.clone(),
                svm: self.svm.clone(),
                volume: self.volume.clone(),
                junction: junction.clone(),
                security_style: if self.mixed { "mixed" } else { "ntfs" }.into(),
                token: token.clone(),
            },
            SmbStep::CreateShare {
                cluster: cluster.clone(),
                svm: self.svm.clone(),
                share: self.share().to_owned(),
                path: junction,
                access: self.access(),
                encryption: self.seal,
                token,
            },
        ];
        steps.extend(self.acls.iter().map(|acl| SmbStep::AddShareAcl {
            cluster: cluster.clone(),
            svm: self.svm.clone(),
            share: self.share().to_owned(),
            acl: acl.clone(),
        }));
        for h in &self.hosts {
            steps.push(SmbStep::WriteCredentials {
                host: h.clone(),
                id: self.entry_id(),
                username: self.username.clone(),
                domain: self.domain.clone(),
                secret: self.secret_name(),
            });
            match self.persist {
                Persist::Autofs => steps.push(SmbStep::PersistAutofs {
                    host: h.clone(),
                    map: AUTOFS_MAP.into(),
                    mount: mount.clone(),
                }),
                _ => {
                    steps.push(SmbStep::MountSmb {
                        host: h.clone(),
                        mount: mount.clone(),
                    });
                    steps.push(SmbStep::PersistFstab {
                        host: h.clone(),
                        mount: mount.clone(),
                    });
                }
            }
            steps.push(SmbStep::DefinePool {
                host: h.clone(),
                pool: self.pool_request(),
            });
        }
        Ok(Saga::new(self.workflow("attach"), steps))
    }

    /// The detach workflow: per host the pool (data kept), the fstab line or autofs entry,
    /// the mount and the credentials file; then, only with
    /// [`SmbDatastore::delete_ontap_objects`], the share and the volume.
    pub async fn detach(&self, env: &Env) -> Result<Saga<SmbStep>> {
        self.validate(env)?;
        let mount = self.mount_spec(self.lif_address(env).await?)?;
        let mut steps = Vec::new();
        for h in &self.hosts {
            steps.push(SmbStep::RemovePool {
                host: h.clone(),
                pool: self.pool_request(),
            });
            match self.persist {
                Persist::Autofs => steps.push(SmbStep::RemoveAutofs {
                    host: h.clone(),
                    map: AUTOFS_MAP.into(),
                    mount: mount.clone(),
                }),
                _ => {
                    steps.push(SmbStep::RemoveFstab {
                        host: h.clone(),
                        mount: mount.clone(),
                    });
                    steps.push(SmbStep::UnmountSmb {
                        host: h.clone(),
                        mount: mount.clone(),
                    });
                }
            }
            steps.push(SmbStep::RemoveCredentials {
                host: h.clone(),
                id: self.entry_id(),
                username: self.username.clone(),
                domain: self.domain.clone(),
                secret: self.secret_name(),
            });
        }
        if self.delete_ontap_objects {
            let cluster = env.cluster().to_owned();
            steps.push(SmbStep::DeleteShare {
                cluster: cluster.clone(),
                svm: self.svm.clone(),
                share: self.share().to_owned(),
                path: format!("/{}", self.volume.name),
                access: self.access(),
                acls: self.acls.clone(),
            });
            steps.push(SmbStep::DeleteVolume {
                cluster,
                svm: self.svm.clone(),
                name: self.volume.name.clone(),
            });
        }
        Ok(Saga::new(self.workflow("detach"), steps))
    }
}
