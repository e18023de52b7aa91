//! Pool lifecycle: define, build, start, autostart, refresh, info, destroy, delete, undefine,
//! and the idempotent `ensure` / `remove`.

use secrecy::SecretString;

use crate::client::PoolInfo;
use crate::client::{find_pool, get_pool, lv_err, pool_def, pool_info, Libvirt};
use crate::error::{Error, Operation, Result};
use crate::names::{Outcome, PoolName};
use crate::pool::{PoolDef, PoolSource, PoolType, Protocol, SecretRef};

/// What `build` may do to the underlying storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildMode {
    /// Only what is harmless: create the target directory / mount point.
    Plain,
    /// Also format (mkfs, partition table, VG) but only when the device holds nothing.
    FormatIfEmpty,
    /// Format even over existing data.
    Overwrite,
}

impl BuildMode {
    fn flags(self) -> u32 {
        match self {
            BuildMode::Plain => virt::sys::VIR_STORAGE_POOL_BUILD_NEW,
            BuildMode::FormatIfEmpty => virt::sys::VIR_STORAGE_POOL_BUILD_NO_OVERWRITE,
            BuildMode::Overwrite => virt::sys::VIR_STORAGE_POOL_BUILD_OVERWRITE,
        }
    }
}

/// Whether `remove` also removes the pool's storage (`virStoragePoolDelete`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoveMode {
    /// Stop and undefine; data stays (the usual choice).
    KeepData,
    /// Stop, delete the storage (an empty directory, the VG, …), undefine.
    DeleteData,
}

/// The desired state of a pool, for [`Pools::ensure`].
#[derive(Clone)]
pub struct PoolSpec {
    /// The definition.
    pub def: PoolDef,
    /// The datastore's protocol; when set, the pool type is checked against it.
    pub protocol: Option<Protocol>,
    /// Build the pool right after defining it.
    pub build: Option<BuildMode>,
    /// Whether the pool starts with the daemon.
    pub autostart: bool,
    /// CHAP password for an iSCSI pool whose auth names a secret by usage: `ensure` defines
    /// that libvirt secret first, `remove` undefines it again.
    pub chap_password: Option<SecretString>,
}

impl std::fmt::Debug for PoolSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolSpec")
            .field("def", &self.def)
            .field("protocol", &self.protocol)
            .field("build", &self.build)
            .field("autostart", &self.autostart)
            .field(
                "chap_password",
                &self.chap_password.as_ref().map(|_| "[REDACTED]"),
            )
            .finish()
    }
}

impl PoolSpec {
    /// A spec that defines, starts and autostarts `def`; dir, fs and netfs pools are also
    /// built with [`BuildMode::Plain`] (the target directory or mount point is created).
    /// Pools whose build formats a device (logical, disk) are not built unless asked.
    pub fn new(def: PoolDef) -> Self {
        let build = match def.pool_type() {
            PoolType::Dir | PoolType::Fs | PoolType::Netfs => Some(BuildMode::Plain),
            _ => None,
        };
        PoolSpec {
            def,
            protocol: None,
            build,
            autostart: true,
            chap_password: None,
        }
    }

    /// Checks the pool type against the datastore protocol.
    pub fn for_protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = Some(protocol);
        self
    }

    /// Sets the build mode (`None`: do not build).
    pub fn with_build(mut self, build: Option<BuildMode>) -> Self {
        self.build = build;
        self
    }

    /// Sets autostart.
    pub fn with_autostart(mut self, autostart: bool) -> Self {
        self.autostart = autostart;
        self
    }

    /// Sets the CHAP password to store in the libvirt secret the pool's auth refers to.
    pub fn with_chap_password(mut self, password: SecretString) -> Self {
        self.chap_password = Some(password);
        self
    }

    fn validate(&self) -> Result<()> {
        match self.protocol {
            Some(p) => self.def.validate_for(p)?,
            None => self.def.validate()?,
        }
        let buildable = matches!(
            self.def.pool_type(),
            PoolType::Dir | PoolType::Fs | PoolType::Netfs | PoolType::Logical | PoolType::Disk
        );
        if self.build.is_some() && !buildable {
            return Err(Error::InvalidDefinition {
                subject: format!("pool {}", self.def.name),
                field: "build",
                problem: "LUN-backed pools (iscsi, iscsi-direct, mpath, scsi) cannot be built",
            });
        }
        if self.chap_password.is_some() && chap_usage(&self.def).is_none() {
            return Err(Error::InvalidDefinition {
                subject: format!("pool {}", self.def.name),
                field: "chap_password",
                problem: "needs an iSCSI pool whose auth names its secret by usage",
            });
        }
        Ok(())
    }
}

/// The secret usage name an iSCSI pool's CHAP auth refers to.
fn chap_usage(def: &PoolDef) -> Option<&str> {
    match &def.source {
        PoolSource::Iscsi(s) | PoolSource::IscsiDirect(s) => match s.auth.as_ref()?.secret {
            SecretRef::Usage(ref u) => Some(u.as_str()),
            SecretRef::Uuid(_) => None,
        },
        _ => None,
    }
}

/// A pool as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSummary {
    /// Pool name.
    pub name: String,
    /// Running.
    pub active: bool,
    /// Persistent definition.
    pub persistent: bool,
    /// Starts with the daemon.
    pub autostart: bool,
}

/// Pool operations; from [`Libvirt::pools`].
#[derive(Debug, Clone)]
pub struct Pools {
    pub(crate) lv: Libvirt,
}

impl Pools {
    /// All pools, defined and transient, running or not.
    pub async fn list(&self) -> Result<Vec<PoolSummary>> {
        self.lv
            .run(Operation::ListPools, |conn| {
                let pools = conn.list_all_storage_pools(0).map_err(lv_err(
                    Operation::ListPools,
                    None,
                    None,
                ))?;
                let mut out = Vec::with_capacity(pools.len());
                for p in pools {
                    let name = p.name().map_err(lv_err(Operation::ListPools, None, None))?;
                    let err = |op| lv_err(op, Some(name.as_str()), None);
                    out.push(PoolSummary {
                        active: p.is_active().map_err(err(Operation::PoolInfo))?,
                        persistent: p.is_persistent().map_err(err(Operation::PoolInfo))?,
                        autostart: p.autostart().map_err(err(Operation::PoolInfo))?,
                        name,
                    });
                }
                out.sort_by(|a, b| a.name.cmp(&b.name));
                Ok(out)
            })
            .await
    }

    /// The persistent definition of a pool, or `None` when it does not exist.
    pub async fn get(&self, name: &PoolName) -> Result<Option<PoolDef>> {
        let name = name.clone();
        self.lv
            .run(Operation::PoolXml, move |conn| {
                match find_pool(conn, &name)? {
                    Some(p) => pool_def(&p, &name).map(Some),
                    None => Ok(None),
                }
            })
            .await
    }

    /// The pool's XML as libvirt reports it (live when running).
    pub async fn xml(&self, name: &PoolName) -> Result<String> {
        let name = name.clone();
        self.lv
            .run(Operation::PoolXml, move |conn| {
                get_pool(conn, &name)?.xml_desc(0).map_err(lv_err(
                    Operation::PoolXml,
                    Some(name.as_str()),
                    None,
                ))
            })
            .await
    }

    /// State, sizes and flags.
    pub async fn info(&self, name: &PoolName) -> Result<PoolInfo> {
        let name = name.clone();
        self.lv
            .run(Operation::PoolInfo, move |conn| {
                pool_info(&get_pool(conn, &name)?, &name)
            })
            .await
    }

    /// Defines the pool. `Unchanged` when an identical pool is already defined;
    /// [`Error::PoolConflict`] when one of that name differs (it is left untouched).
    pub async fn define(&self, def: &PoolDef) -> Result<Outcome> {
        def.validate()?;
        let def = def.clone();
        self.lv
            .run(Operation::DefinePool, move |conn| {
                define_blocking(conn, &def)
            })
            .await
    }

    /// Builds the pool's storage (mkdir, mkfs, partition table …) as `mode` allows.
    pub async fn build(&self, name: &PoolName, mode: BuildMode) -> Result<()> {
        let name = name.clone();
        self.lv
            .run(Operation::BuildPool, move |conn| {
                get_pool(conn, &name)?.build(mode.flags()).map_err(lv_err(
                    Operation::BuildPool,
                    Some(name.as_str()),
                    None,
                ))
            })
            .await
    }

    /// Starts the pool (mounts, logs in, …). `Unchanged` when already running.
    pub async fn start(&self, name: &PoolName) -> Result<Outcome> {
        let name = name.clone();
        self.lv
            .run(Operation::StartPool, move |conn| {
                start_blocking(&get_pool(conn, &name)?, &name)
            })
            .await
    }

    /// Sets whether the pool starts with the daemon.
    pub async fn set_autostart(&self, name: &PoolName, autostart: bool) -> Result<Outcome> {
        let name = name.clone();
        self.lv
            .run(Operation::SetAutostart, move |conn| {
                autostart_blocking(&get_pool(conn, &name)?, &name, autostart)
            })
            .await
    }

    /// Rescans the pool's volumes.
    pub async fn refresh(&self, name: &PoolName) -> Result<()> {
        let name = name.clone();
        self.lv
            .run(Operation::RefreshPool, move |conn| {
                let pool = get_pool(conn, &name)?;
                if !pool.is_active().map_err(lv_err(
                    Operation::PoolInfo,
                    Some(name.as_str()),
                    None,
                ))? {
                    return Err(Error::PoolInactive {
                        pool: name.to_string(),
                    });
                }
                pool.refresh(0)
                    .map_err(lv_err(Operation::RefreshPool, Some(name.as_str()), None))
            })
            .await
    }

    /// Stops the pool (unmount, logout); data is untouched. `Unchanged` when not running
    /// or not there.
    pub async fn destroy(&self, name: &PoolName) -> Result<Outcome> {
        let name = name.clone();
        self.lv
            .run(Operation::DestroyPool, move |conn| {
                match find_pool(conn, &name)? {
                    Some(p) => destroy_blocking(&p, &name),
                    None => Ok(Outcome::Unchanged),
                }
            })
            .await
    }

    /// Removes the pool's storage (the directory, VG …) of a stopped pool. `Unchanged` when
    /// the pool is not defined.
    pub async fn delete(&self, name: &PoolName) -> Result<Outcome> {
        let name = name.clone();
        self.lv
            .run(Operation::DeletePool, move |conn| {
                match find_pool(conn, &name)? {
                    Some(p) => {
                        p.delete(virt::sys::VIR_STORAGE_POOL_DELETE_NORMAL)
                            .map_err(lv_err(Operation::DeletePool, Some(name.as_str()), None))?;
                        Ok(Outcome::Changed)
                    }
                    None => Ok(Outcome::Unchanged),
                }
            })
            .await
    }

    /// Removes the persistent definition. `Unchanged` when not defined.
    pub async fn undefine(&self, name: &PoolName) -> Result<Outcome> {
        let name = name.clone();
        self.lv
            .run(Operation::UndefinePool, move |conn| {
                match find_pool(conn, &name)? {
                    Some(p) => undefine_blocking(&p, &name),
                    None => Ok(Outcome::Unchanged),
                }
            })
            .await
    }

    /// Brings the pool to `spec`: defines the CHAP secret if given, defines the pool (a pool
    /// of that name with another definition is [`Error::PoolConflict`]), builds it when it was
    /// just defined, starts it and sets autostart. `Unchanged` when everything was already so.
    pub async fn ensure(&self, spec: &PoolSpec) -> Result<Outcome> {
        spec.validate()?;
        // A conflict must leave everything untouched, the CHAP secret included.
        if let Some(actual) = self.get(&spec.def.name).await? {
            let differences = spec.def.differences(&actual);
            if !differences.is_empty() {
                return Err(Error::PoolConflict {
                    pool: spec.def.name.to_string(),
                    differences,
                });
            }
        }
        let mut result = Outcome::Unchanged;
        if let (Some(password), Some(usage)) = (&spec.chap_password, chap_usage(&spec.def)) {
            result = self.lv.secrets().ensure_iscsi(usage, password).await?.1;
        }
        let spec = spec.clone();
        let rest = self
            .lv
            .run(Operation::DefinePool, move |conn| {
                let name = &spec.def.name;
                let defined = define_blocking(conn, &spec.def)?;
                let pool = get_pool(conn, name)?;
                if defined.changed() {
                    if let Some(mode) = spec.build {
                        pool.build(mode.flags()).map_err(lv_err(
                            Operation::BuildPool,
                            Some(name.as_str()),
                            None,
                        ))?;
                    }
                }
                let started = start_blocking(&pool, name)?;
                let autostart = autostart_blocking(&pool, name, spec.autostart)?;
                tracing::debug!(pool = %name, ?defined, ?started, ?autostart, "pool ensured");
                Ok(defined.or(started).or(autostart))
            })
            .await?;
        Ok(result.or(rest))
    }

    /// Stops the pool, deletes its storage when `mode` says so, undefines it, and undefines a
    /// CHAP secret that `ensure` defined for it. `Unchanged` when the pool was not there.
    pub async fn remove(&self, name: &PoolName, mode: RemoveMode) -> Result<Outcome> {
        let owned = name.clone();
        let (changed, usage) = self
            .lv
            .run(Operation::UndefinePool, move |conn| {
                let name = &owned;
                let Some(pool) = find_pool(conn, name)? else {
                    return Ok((Outcome::Unchanged, None));
                };
                let usage = pool_def(&pool, name)
                    .ok()
                    .and_then(|d| chap_usage(&d).map(str::to_owned));
                destroy_blocking(&pool, name)?;
                // A transient pool is gone once destroyed.
                let Some(pool) = find_pool(conn, name)? else {
                    return Ok((Outcome::Changed, usage));
                };
                if mode == RemoveMode::DeleteData {
                    pool.delete(virt::sys::VIR_STORAGE_POOL_DELETE_NORMAL)
                        .map_err(lv_err(Operation::DeletePool, Some(name.as_str()), None))?;
                }
                undefine_blocking(&pool, name)?;
                Ok((Outcome::Changed, usage))
            })
            .await?;
        if let Some(usage) = usage {
            self.lv.secrets().remove_iscsi_if_ours(&usage).await?;
        }
        Ok(changed)
    }
}

fn define_blocking(conn: &virt::connect::Connect, def: &PoolDef) -> Result<Outcome> {
    let name = &def.name;
    if let Some(existing) = find_pool(conn, name)? {
        let actual = pool_def(&existing, name)?;
        let differences = def.differences(&actual);
        if !differences.is_empty() {
            return Err(Error::PoolConflict {
                pool: name.to_string(),
                differences,
            });
        }
        let persistent = existing.is_persistent().map_err(lv_err(
            Operation::PoolInfo,
            Some(name.as_str()),
            None,
        ))?;
        if persistent {
            return Ok(Outcome::Unchanged);
        }
        // A transient pool of the same definition: make it persistent.
    }
    conn.define_storage_pool_xml(&def.to_xml(), 0)
        .map_err(lv_err(Operation::DefinePool, Some(name.as_str()), None))?;
    tracing::info!(pool = %name, pool_type = %def.pool_type(), "pool defined");
    Ok(Outcome::Changed)
}

fn start_blocking(pool: &virt::storage_pool::StoragePool, name: &PoolName) -> Result<Outcome> {
    let active =
        pool.is_active()
            .map_err(lv_err(Operation::PoolInfo, Some(name.as_str()), None))?;
    if active {
        return Ok(Outcome::Unchanged);
    }
    pool.create(virt::sys::VIR_STORAGE_POOL_CREATE_NORMAL)
        .map_err(lv_err(Operation::StartPool, Some(name.as_str()), None))?;
    Ok(Outcome::Changed)
}

fn autostart_blocking(
    pool: &virt::storage_pool::StoragePool,
    name: &PoolName,
    autostart: bool,
) -> Result<Outcome> {
    let err = |op| lv_err(op, Some(name.as_str()), None);
    if pool.autostart().map_err(err(Operation::PoolInfo))? == autostart {
        return Ok(Outcome::Unchanged);
    }
    pool.set_autostart(autostart)
        .map_err(err(Operation::SetAutostart))?;
    Ok(Outcome::Changed)
}

fn destroy_blocking(pool: &virt::storage_pool::StoragePool, name: &PoolName) -> Result<Outcome> {
    let err = |op| lv_err(op, Some(name.as_str()), None);
    if !pool.is_active().map_err(err(Operation::PoolInfo))? {
        return Ok(Outcome::Unchanged);
    }
    pool.destroy().map_err(err(Operation::DestroyPool))?;
    Ok(Outcome::Changed)
}

fn undefine_blocking(pool: &virt::storage_pool::StoragePool, name: &PoolName) -> Result<Outcome> {
    let err = |op| lv_err(op, Some(name.as_str()), None);
    if !pool.is_persistent().map_err(err(Operation::PoolInfo))? {
        // A transient pool vanishes when destroyed.
        return Ok(Outcome::Unchanged);
    }
    pool.undefine().map_err(err(Operation::UndefinePool))?;
    Ok(Outcome::Changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::{ChapAuth, IscsiSource};

    fn iscsi_def(secret: SecretRef) -> PoolDef {
        PoolDef::iscsi_direct(
            PoolName::new("p").unwrap(),
            IscsiSource {
                host: "h".into(),
                port: None,
                target: "iqn.2024-01.x:t".into(),
                initiator: Some("iqn.2024-01.x:i".into()),
                auth: Some(ChapAuth {
                    username: "u".into(),
                    secret,
                }),
            },
        )
    }

    #[test]
    fn build_defaults_follow_the_pool_type() {
        let dir = PoolSpec::new(PoolDef::dir(PoolName::new("d").unwrap(), "/d"));
        assert_eq!(dir.build, Some(BuildMode::Plain));
        let lvm = PoolSpec::new(PoolDef::logical(PoolName::new("l").unwrap(), "vg", vec![]));
        assert_eq!(lvm.build, None);
        let iscsi = PoolSpec::new(iscsi_def(SecretRef::Usage("s".into())));
        assert_eq!(iscsi.build, None);
        let forced = iscsi.with_build(Some(BuildMode::Plain));
        assert!(matches!(
            forced.validate(),
            Err(Error::InvalidDefinition { field: "build", .. })
        ));
    }

    #[test]
    fn chap_password_needs_a_usage_secret_and_is_redacted() {
        let by_uuid = PoolSpec::new(iscsi_def(SecretRef::Uuid(
            "2ec115d7-3a88-3ceb-bc12-0ac909a6fd87".into(),
        )))
        .with_chap_password(SecretString::from("hunter2-chap"));
        assert!(matches!(
            by_uuid.validate(),
            Err(Error::InvalidDefinition {
                field: "chap_password",
                ..
            })
        ));
        let ok = PoolSpec::new(iscsi_def(SecretRef::Usage("s".into())))
            .with_chap_password(SecretString::from("hunter2-chap"));
        ok.validate().unwrap();
        let dbg = format!("{ok:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(dbg.contains("[REDACTED]"), "{dbg}");
    }
}
