//! The connection and its pool, volume and secret handles.
//!
//! Every libvirt call blocks (it is a synchronous RPC to the daemon, or for `qemu+ssh://` a
//! round trip over ssh), so each one runs on tokio's blocking pool, never on a worker thread.

use std::fmt;
use std::sync::Arc;

use virt::connect::Connect;
use virt::error::ErrorNumber;
use virt::storage_pool::StoragePool;
use virt::storage_vol::StorageVol;

use crate::error::{Error, Operation, Result};
use crate::names::PoolName;
use crate::pool::{PoolDef, PoolType};

/// Runs a blocking libvirt closure on tokio's blocking pool.
pub(crate) async fn blocking<T, F>(operation: Operation, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|source| Error::Task { operation, source })?
}

/// A connection to a libvirt daemon (or the in-process test driver).
///
/// Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct Libvirt {
    conn: Arc<Connect>,
    uri: Arc<str>,
}

impl fmt::Debug for Libvirt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Libvirt").field("uri", &self.uri).finish()
    }
}

impl Libvirt {
    /// Opens a connection: `qemu:///system`, `qemu+ssh://root@host/system`, `test:///default` …
    ///
    /// For `qemu+ssh://` from automation, add `?no_tty=1` (and `&keyfile=…`) so ssh never
    /// waits for a password on a terminal. `test:///default` is libvirt's in-process driver:
    /// its state is shared by the connections of one process and lost with the last one.
    pub async fn connect(uri: &str) -> Result<Libvirt> {
        let owned = uri.to_owned();
        let conn = blocking(Operation::Connect, move || {
            // libvirt's default error handler prints every error to stderr; errors are
            // returned as values instead.
            virt::error::clear_error_callback();
            Connect::open(Some(&owned)).map_err(|source| Error::Connect {
                uri: owned.clone(),
                source,
            })
        })
        .await?;
        Ok(Libvirt {
            conn: Arc::new(conn),
            uri: uri.into(),
        })
    }

    /// The URI this connection was opened with.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Storage pool operations.
    pub fn pools(&self) -> crate::Pools {
        crate::Pools { lv: self.clone() }
    }

    /// Volume operations in one pool.
    pub fn volumes(&self, pool: &PoolName) -> crate::Volumes {
        crate::Volumes {
            lv: self.clone(),
            pool: pool.clone(),
        }
    }

    /// libvirt secret operations (CHAP secrets for iSCSI pools).
    pub fn secrets(&self) -> crate::Secrets {
        crate::Secrets { lv: self.clone() }
    }

    /// Runs `f` with the connection on the blocking pool.
    pub(crate) async fn run<T, F>(&self, operation: Operation, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connect) -> Result<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        blocking(operation, move || f(&conn)).await
    }
}

/// Maps a libvirt error, naming the operation and objects.
pub(crate) fn lv_err(
    operation: Operation,
    pool: Option<&str>,
    volume: Option<&str>,
) -> impl FnOnce(virt::error::Error) -> Error {
    let pool = pool.map(str::to_owned);
    let volume = volume.map(str::to_owned);
    move |source| Error::Libvirt {
        operation,
        pool,
        volume,
        source,
    }
}

/// Looks up a pool; `None` when it does not exist.
pub(crate) fn find_pool(conn: &Connect, name: &PoolName) -> Result<Option<StoragePool>> {
    match conn.lookup_storage_pool_by_name(name.as_str()) {
        Ok(p) => Ok(Some(p)),
        Err(e) if e.code().is(ErrorNumber::NoStoragePool) => Ok(None),
        Err(e) => Err(lv_err(Operation::LookupPool, Some(name.as_str()), None)(e)),
    }
}

/// Looks up a pool; `PoolNotFound` when it does not exist.
pub(crate) fn get_pool(conn: &Connect, name: &PoolName) -> Result<StoragePool> {
    find_pool(conn, name)?.ok_or_else(|| Error::PoolNotFound {
        pool: name.to_string(),
    })
}

/// Looks up a volume of an active pool; `None` when it does not exist.
pub(crate) fn find_volume(
    pool: &StoragePool,
    pool_name: &PoolName,
    volume: &str,
) -> Result<Option<StorageVol>> {
    let active =
        pool.is_active()
            .map_err(lv_err(Operation::PoolInfo, Some(pool_name.as_str()), None))?;
    if !active {
        return Err(Error::PoolInactive {
            pool: pool_name.to_string(),
        });
    }
    match pool.lookup_storage_vol_by_name(volume) {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.code().is(ErrorNumber::NoStorageVolume) => Ok(None),
        Err(e) => Err(lv_err(
            Operation::LookupVolume,
            Some(pool_name.as_str()),
            Some(volume),
        )(e)),
    }
}

/// The persistent (inactive) definition of a pool, parsed.
pub(crate) fn pool_def(pool: &StoragePool, name: &PoolName) -> Result<PoolDef> {
    PoolDef::from_xml(&inactive_xml(pool, name)?)
}

/// The persistent XML; the test driver knows no flags, so it falls back to the live XML.
fn inactive_xml(pool: &StoragePool, name: &PoolName) -> Result<String> {
    match pool.xml_desc(virt::sys::VIR_STORAGE_XML_INACTIVE) {
        Err(e) if e.code().is(ErrorNumber::InvalidArg) => pool.xml_desc(0),
        other => other,
    }
    .map_err(lv_err(Operation::PoolXml, Some(name.as_str()), None))
}

/// State of a pool as libvirt reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolState {
    /// Defined but not running.
    Inactive,
    /// Being built.
    Building,
    /// Running.
    Running,
    /// Running but degraded.
    Degraded,
    /// Running but the storage is not reachable.
    Inaccessible,
    /// A state this crate does not know (newer libvirt).
    Unknown(u32),
}

impl PoolState {
    pub(crate) fn from_raw(raw: u32) -> PoolState {
        match raw {
            virt::sys::VIR_STORAGE_POOL_INACTIVE => PoolState::Inactive,
            virt::sys::VIR_STORAGE_POOL_BUILDING => PoolState::Building,
            virt::sys::VIR_STORAGE_POOL_RUNNING => PoolState::Running,
            virt::sys::VIR_STORAGE_POOL_DEGRADED => PoolState::Degraded,
            virt::sys::VIR_STORAGE_POOL_INACCESSIBLE => PoolState::Inaccessible,
            other => PoolState::Unknown(other),
        }
    }
}

/// State, sizes and flags of a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolInfo {
    /// Pool name.
    pub name: PoolName,
    /// Pool type, when the definition parses.
    pub pool_type: Option<PoolType>,
    /// Run state.
    pub state: PoolState,
    /// Whether the pool is running.
    pub active: bool,
    /// Whether the pool has a persistent definition.
    pub persistent: bool,
    /// Whether the pool starts with the daemon.
    pub autostart: bool,
    /// Capacity in bytes (0 while inactive).
    pub capacity: u64,
    /// Allocated bytes.
    pub allocation: u64,
    /// Free bytes.
    pub available: u64,
}

pub(crate) fn pool_info(pool: &StoragePool, name: &PoolName) -> Result<PoolInfo> {
    let err = |op| lv_err(op, Some(name.as_str()), None);
    let info = pool.info().map_err(err(Operation::PoolInfo))?;
    let xml = inactive_xml(pool, name)?;
    Ok(PoolInfo {
        name: name.clone(),
        pool_type: PoolDef::from_xml(&xml).ok().map(|d| d.pool_type()),
        state: PoolState::from_raw(info.state),
        active: pool.is_active().map_err(err(Operation::PoolInfo))?,
        persistent: pool.is_persistent().map_err(err(Operation::PoolInfo))?,
        autostart: pool.autostart().map_err(err(Operation::PoolInfo))?,
        capacity: info.capacity,
        allocation: info.allocation,
        available: info.available,
    })
}
