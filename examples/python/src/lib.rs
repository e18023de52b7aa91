//! Python bindings of kvmstor: the extension module `kvmstor`, built with maturin.
//!
//! One multi-thread tokio runtime lives in the module, created on first use; every call
//! that waits on ONTAP, a host or libvirt releases the GIL (`Python::detach`) while it
//! runs, so other Python threads keep going. Failures arrive as exceptions under
//! `kvmstor.KvmstorError` with typed attributes: `OntapError` (`code`, `message`,
//! `status`), `StepFailed` (`step`, `index`, `cause`, `rollback`, `ontap_code`, `undone`)
//! and `NeedsAttention` (`step`, `index`, `cause`, `remaining`, `failed_undo`,
//! `ontap_code`, `rollback`). The type stubs are `kvmstor.pyi`.

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use kvmstor_cli::endpoint::{resolve_secret, Endpoint, EndpointError, PasswordSource};
use kvmstor_cli::report::{self, chain, error_json};
use kvmstor_cli::simhost::{simulated_block_host, SimKernelRunner};
use kvmstor_cli::world::{self, parse_size, AclSpec, BlockSpec, NfsSpec, SmbSpec, WorldError};
use kvmstor_facade::ops::{self, DatastoreVolume, Freeze};
use kvmstor_facade::saga::{recover, LockRegistry, RecoverMode, Saga, Step};
use kvmstor_facade::{Env, Host};
use ontap_client::{Query, SecretString};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use serde_json::Value;

create_exception!(
    kvmstor,
    KvmstorError,
    PyException,
    "Base class of every kvmstor error."
);
create_exception!(
    kvmstor,
    OntapError,
    KvmstorError,
    "ONTAP refused a call: attributes code (str or None), message, status (HTTP, or None)."
);
create_exception!(
    kvmstor,
    StepFailed,
    KvmstorError,
    "A workflow step failed and every earlier step was undone (rollback == 'clean')."
);
create_exception!(
    kvmstor,
    NeedsAttention,
    KvmstorError,
    "A workflow step failed and an undo failed too: `remaining` steps are still applied."
);

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("kvmstor")
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("kvmstor: cannot start the tokio runtime: {e}"))
    })
}

/// Runs `f` on the module's runtime with the GIL released.
fn block_on<F>(py: Python<'_>, f: F) -> F::Output
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    py.detach(|| runtime().block_on(f))
}

fn to_py(py: Python<'_>, v: &Value) -> PyResult<Py<PyAny>> {
    let text = serde_json::to_string(v).map_err(|e| KvmstorError::new_err(e.to_string()))?;
    Ok(py.import("json")?.call_method1("loads", (text,))?.unbind())
}

fn set_attrs(py: Python<'_>, err: &PyErr, attrs: &[(&str, Value)]) -> PyResult<()> {
    let value = err.value(py);
    for (k, v) in attrs {
        value.setattr(*k, to_py(py, v)?)?;
    }
    Ok(())
}

/// A workflow error as the matching exception, attributes set.
fn workflow_err(py: Python<'_>, e: &kvmstor_facade::Error) -> PyErr {
    let j = error_json(e);
    let msg = chain(e);
    let err = match e {
        kvmstor_facade::Error::StepFailed { .. } => StepFailed::new_err(msg),
        kvmstor_facade::Error::NeedsAttention { .. } => NeedsAttention::new_err(msg),
        _ if !j["ontap_code"].is_null() || !j["http_status"].is_null() => {
            return ontap_err_parts(
                py,
                msg,
                j["ontap_code"].clone(),
                j["http_status"].clone(),
                Some(&j),
            );
        }
        _ => KvmstorError::new_err(msg),
    };
    let attrs = [
        ("step", j["step"].clone()),
        ("index", j["index"].clone()),
        (
            "cause",
            report::step_error(e)
                .map(|s| Value::String(chain(s)))
                .unwrap_or(Value::Null),
        ),
        ("rollback", j["rollback"].clone()),
        ("ontap_code", j["ontap_code"].clone()),
        ("undone", j["undone"].clone()),
        ("remaining", j["remaining"].clone()),
        ("failed_undo", j["failed_undo"].clone()),
        ("details", j.clone()),
    ];
    match set_attrs(py, &err, &attrs) {
        Ok(()) => err,
        Err(e) => e,
    }
}

fn ontap_err_parts(
    py: Python<'_>,
    msg: String,
    code: Value,
    status: Value,
    details: Option<&Value>,
) -> PyErr {
    let err = OntapError::new_err(msg.clone());
    let attrs = [
        ("code", code),
        ("message", Value::String(msg)),
        ("status", status),
        ("details", details.cloned().unwrap_or(Value::Null)),
    ];
    match set_attrs(py, &err, &attrs) {
        Ok(()) => err,
        Err(e) => e,
    }
}

fn ontap_err(py: Python<'_>, e: &ontap_client::Error) -> PyErr {
    let code = e
        .ontap_code()
        .map(|c| Value::String(c.to_owned()))
        .unwrap_or(Value::Null);
    let status = e.status().map(Value::from).unwrap_or(Value::Null);
    ontap_err_parts(py, chain(e), code, status, None)
}

fn endpoint_err(e: &EndpointError) -> PyErr {
    KvmstorError::new_err(chain(e))
}

fn world_err(e: &WorldError) -> PyErr {
    KvmstorError::new_err(chain(e))
}

/// A size in bytes, or a string such as `"10G"`.
#[derive(Debug, FromPyObject)]
enum Size {
    Bytes(u64),
    Text(String),
}

impl Size {
    fn bytes(&self) -> PyResult<u64> {
        match self {
            Size::Bytes(n) => Ok(*n),
            Size::Text(t) => parse_size(t).map_err(|e| world_err(&e)),
        }
    }
}

/// An NFS datastore request (see `NfsDatastore` in kvmstor.pyi).
#[pyclass(frozen, module = "kvmstor")]
struct NfsDatastore {
    spec: NfsSpec,
}

#[pymethods]
impl NfsDatastore {
    #[new]
    #[pyo3(signature = (svm, name, aggregate, size, hosts, *, volume=None, mount_point=None, persist="fstab", pool_kind="dir", delete_ontap_objects=false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        svm: String,
        name: String,
        aggregate: String,
        size: Size,
        hosts: Vec<String>,
        volume: Option<String>,
        mount_point: Option<PathBuf>,
        persist: &str,
        pool_kind: &str,
        delete_ontap_objects: bool,
    ) -> PyResult<Self> {
        let spec = NfsSpec {
            svm,
            name,
            aggregate,
            size: size.bytes()?,
            hosts,
            volume,
            mount_point,
            persist: persist.to_owned(),
            pool_kind: pool_kind.to_owned(),
            delete_ontap_objects,
        };
        // Refuse bad keywords now rather than at attach time.
        spec.datastore(None).map_err(|e| world_err(&e))?;
        Ok(NfsDatastore { spec })
    }

    /// The pool name.
    #[getter]
    fn name(&self) -> String {
        self.spec.name.clone()
    }

    /// The ONTAP volume's name.
    #[getter]
    fn volume(&self) -> PyResult<String> {
        Ok(self
            .spec
            .datastore(None)
            .map_err(|e| world_err(&e))?
            .volume()
            .to_owned())
    }

    /// The size in bytes.
    #[getter]
    fn size(&self) -> u64 {
        self.spec.size
    }

    fn __repr__(&self) -> String {
        format!(
            "NfsDatastore(svm={:?}, name={:?}, size={}, hosts={:?})",
            self.spec.svm, self.spec.name, self.spec.size, self.spec.hosts
        )
    }
}

/// An SMB datastore request (see `SmbDatastore` in kvmstor.pyi).
#[pyclass(frozen, module = "kvmstor")]
struct SmbDatastore {
    spec: SmbSpec,
}

#[pymethods]
impl SmbDatastore {
    #[new]
    #[pyo3(signature = (svm, name, aggregate, size, hosts, *, username, domain=None, password=None, password_file=None, mount_point=None, persist="fstab", mixed_security=false, encryption=false, max_channels=None, delete_ontap_objects=false, share_name=None, share_acl=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        svm: String,
        name: String,
        aggregate: String,
        size: Size,
        hosts: Vec<String>,
        username: String,
        domain: Option<String>,
        password: Option<String>,
        password_file: Option<PathBuf>,
        mount_point: Option<PathBuf>,
        persist: &str,
        mixed_security: bool,
        encryption: bool,
        max_channels: Option<u8>,
        delete_ontap_objects: bool,
        share_name: Option<String>,
        share_acl: Option<Vec<Vec<String>>>,
    ) -> PyResult<Self> {
        let share_acls = share_acl
            .unwrap_or_default()
            .iter()
            .map(|e| match e.as_slice() {
                [who, permission] => AclSpec::new(who, "windows", permission),
                [who, kind, permission] => AclSpec::new(who, kind, permission),
                _ => Err(WorldError::Acl {
                    value: format!("{e:?}"),
                }),
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| world_err(&e))?;
        let password = match (password, password_file) {
            (Some(_), Some(_)) => {
                return Err(KvmstorError::new_err(
                    "give password or password_file, not both",
                ))
            }
            (Some(p), None) => Some(SecretString::from(p)),
            (None, Some(f)) => {
                resolve_secret(&PasswordSource::File(f), "").map_err(|e| endpoint_err(&e))?
            }
            (None, None) => None,
        };
        let spec = SmbSpec {
            svm,
            name,
            aggregate,
            size: size.bytes()?,
            hosts,
            mount_point,
            persist: persist.to_owned(),
            username,
            domain,
            password,
            mixed_security,
            encryption,
            max_channels,
            delete_ontap_objects,
            share_name,
            share_acls,
        };
        spec.datastore(None).map_err(|e| world_err(&e))?;
        Ok(SmbDatastore { spec })
    }

    /// The pool name (also the share's unless `share_name` is given).
    #[getter]
    fn name(&self) -> String {
        self.spec.name.clone()
    }

    /// The share's name.
    #[getter]
    fn share(&self) -> PyResult<String> {
        let ds = self.spec.datastore(None).map_err(|e| world_err(&e))?;
        Ok(ds.share().to_owned())
    }

    /// The ONTAP volume's name.
    #[getter]
    fn volume(&self) -> PyResult<String> {
        let ds = self.spec.datastore(None).map_err(|e| world_err(&e))?;
        Ok(ds.volume().to_owned())
    }

    /// The size in bytes.
    #[getter]
    fn size(&self) -> u64 {
        self.spec.size
    }

    fn __repr__(&self) -> String {
        // No password, ever.
        format!(
            "SmbDatastore(svm={:?}, name={:?}, size={}, hosts={:?}, username={:?})",
            self.spec.svm, self.spec.name, self.spec.size, self.spec.hosts, self.spec.username
        )
    }
}

/// A block datastore request (see `BlockDatastore` in kvmstor.pyi).
#[pyclass(frozen, module = "kvmstor")]
struct BlockDatastore {
    spec: BlockSpec,
}

#[pymethods]
impl BlockDatastore {
    #[new]
    #[pyo3(signature = (svm, name, aggregate, size, hosts, *, protocol="iscsi", fs="ocfs2", mount_point=None, cluster=None, thick=false, device_wait=None, delete_ontap_objects=false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        svm: String,
        name: String,
        aggregate: String,
        size: Size,
        hosts: Vec<String>,
        protocol: &str,
        fs: &str,
        mount_point: Option<PathBuf>,
        cluster: Option<String>,
        thick: bool,
        device_wait: Option<f64>,
        delete_ontap_objects: bool,
    ) -> PyResult<Self> {
        let device_wait = match device_wait {
            Some(s) if s.is_finite() && s >= 0.0 => Some(std::time::Duration::from_secs_f64(s)),
            Some(_) => return Err(KvmstorError::new_err("device_wait must be seconds >= 0")),
            None => None,
        };
        let spec = BlockSpec {
            protocol: protocol.to_owned(),
            fs: fs.to_owned(),
            svm,
            name,
            aggregate,
            size: size.bytes()?,
            hosts,
            mount_point,
            cluster,
            thick,
            device_wait,
            delete_ontap_objects,
        };
        spec.datastore(None).map_err(|e| world_err(&e))?;
        Ok(BlockDatastore { spec })
    }

    /// The pool name.
    #[getter]
    fn name(&self) -> String {
        self.spec.name.clone()
    }

    /// The ONTAP volume's name.
    #[getter]
    fn volume(&self) -> PyResult<String> {
        let ds = self.spec.datastore(None).map_err(|e| world_err(&e))?;
        Ok(ds.volume().to_owned())
    }

    /// The disk's size in bytes (the volume is 10% larger).
    #[getter]
    fn size(&self) -> u64 {
        self.spec.size
    }

    /// `iscsi`, `fcp` or `nvme-tcp`.
    #[getter]
    fn protocol(&self) -> PyResult<&'static str> {
        Ok(self.spec.protocol().map_err(|e| world_err(&e))?.as_str())
    }

    /// The disk's path name: `/vol/<volume>/lun0` or `/vol/<volume>/ns0`.
    #[getter]
    fn disk_path(&self) -> PyResult<String> {
        Ok(self
            .spec
            .datastore(None)
            .map_err(|e| world_err(&e))?
            .disk_path())
    }

    fn __repr__(&self) -> String {
        format!(
            "BlockDatastore(svm={:?}, name={:?}, size={}, hosts={:?}, protocol={:?}, fs={:?})",
            self.spec.svm,
            self.spec.name,
            self.spec.size,
            self.spec.hosts,
            self.spec.protocol,
            self.spec.fs
        )
    }
}

/// Any datastore request.
#[derive(FromPyObject)]
enum AnyDatastore<'py> {
    Nfs(PyRef<'py, NfsDatastore>),
    Smb(PyRef<'py, SmbDatastore>),
    Block(PyRef<'py, BlockDatastore>),
}

/// What to do with a datastore's workflow.
enum Act {
    Plan,
    Run(Option<PathBuf>),
    Recover(PathBuf, RecoverMode),
}

/// Builds the attach (`attach`) or detach saga of datastore `d` over `env` and does `act`
/// with it, the GIL released: one body for the three datastore types, which share no trait.
macro_rules! saga_then {
    ($py:expr, $d:expr, $env:expr, $attach:expr, $act:expr) => {{
        let (d, env, attach, act) = ($d, $env, $attach, $act);
        block_on($py, async move {
            let saga = if attach {
                d.attach(&env).await
            } else {
                d.detach(&env).await
            }?;
            finish(saga, &env, act).await
        })
    }};
}

/// Plans, runs or recovers `saga` (see [`Act`]): the plan or the run report as JSON.
async fn finish<S: Step<Env = Env>>(
    saga: Saga<S>,
    env: &Env,
    act: Act,
) -> Result<Value, kvmstor_facade::Error> {
    match act {
        Act::Plan => Ok(serde_json::to_value(saga.plan()).unwrap_or(Value::Null)),
        Act::Run(journal) => {
            let saga = match journal {
                Some(j) => saga.journal_file(j),
                None => saga,
            };
            saga.run(env).await.map(|r| report::report_json(&r))
        }
        Act::Recover(journal, mode) => {
            drop(saga);
            recover::<S>(&journal, env, mode, LockRegistry::global())
                .await
                .map(|r| report::report_json(&r))
        }
    }
}

/// A connection to one ONTAP cluster and the hosts workflows may touch.
#[pyclass(frozen, module = "kvmstor")]
struct Ontap {
    env: Mutex<Env>,
    /// Parent of the simulated hosts' roots, for default mount points.
    sim_root: Mutex<Option<PathBuf>>,
    /// libvirt's test driver keeps its state only while a connection is open: simulated
    /// hosts hold one for the life of this object.
    sim_libvirt: Mutex<Option<libvirt_pools::Libvirt>>,
    /// The simulated hosts' fake kernels reacting to sysfs writes (aborted on drop).
    reactions: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Drop for Ontap {
    fn drop(&mut self) {
        if let Ok(r) = self.reactions.lock() {
            for h in r.iter() {
                h.abort();
            }
        }
    }
}

impl Ontap {
    fn env(&self) -> Env {
        self.env
            .lock()
            .map(|e| e.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    fn root(&self) -> Option<PathBuf> {
        self.sim_root.lock().ok().and_then(|r| r.clone())
    }

    fn add(&self, host: Host) {
        if let Ok(mut env) = self.env.lock() {
            *env = env.clone().host(host);
        }
    }

    /// Builds the workflow of `ds` (attach or detach) and does `act` with it, the GIL
    /// released.
    fn work(
        &self,
        py: Python<'_>,
        ds: &AnyDatastore<'_>,
        attach: bool,
        act: Act,
    ) -> PyResult<Py<PyAny>> {
        let env = self.env();
        let root = self.root();
        let root = root.as_deref();
        let res = match ds {
            AnyDatastore::Nfs(d) => {
                let d = d.spec.datastore(root).map_err(|e| world_err(&e))?;
                saga_then!(py, d, env, attach, act)
            }
            AnyDatastore::Smb(d) => {
                let ds = d.spec.datastore(root).map_err(|e| world_err(&e))?;
                let env = d.spec.env(&ds, &env);
                saga_then!(py, ds, env, attach, act)
            }
            AnyDatastore::Block(d) => {
                let d = d.spec.datastore(root).map_err(|e| world_err(&e))?;
                saga_then!(py, d, env, attach, act)
            }
        };
        let v = res.map_err(|e| workflow_err(py, &e))?;
        to_py(py, &v)
    }
}

#[pymethods]
impl Ontap {
    /// The cluster's base URL.
    #[getter]
    fn url(&self) -> String {
        self.env().cluster().to_owned()
    }

    /// Adds this machine as host `name` (real commands, `libvirt_uri`).
    #[pyo3(signature = (name, address, *, libvirt_uri="qemu:///system"))]
    fn add_host(&self, name: &str, address: &str, libvirt_uri: &str) {
        self.add(Host::local(name).address(address).libvirt_uri(libvirt_uri));
    }

    /// Adds host `name` whose side is simulated: files under `root/name`, a fake kernel
    /// (mounts edit its scratch mount table; iSCSI sessions, SCSI disks, multipath maps and
    /// NVMe namespaces appear in a synthetic sysfs as ONTAP maps them to the host's IQN,
    /// WWPN or NQN), libvirt `test:///default`. With `fc_svm`, the host has an FC HBA
    /// logged in to that SVM's FC LIFs. ONTAP stays real.
    #[pyo3(signature = (name, address, root, *, fc_svm=None))]
    fn add_simulated_host(
        &self,
        py: Python<'_>,
        name: &str,
        address: &str,
        root: PathBuf,
        fc_svm: Option<String>,
    ) -> PyResult<()> {
        let held = self
            .sim_libvirt
            .lock()
            .map(|l| l.is_some())
            .unwrap_or(false);
        if !held {
            let lv = block_on(py, async {
                libvirt_pools::Libvirt::connect(kvmstor_cli::simhost::SIM_LIBVIRT_URI).await
            })
            .map_err(|e| KvmstorError::new_err(chain(&e)))?;
            if let Ok(mut l) = self.sim_libvirt.lock() {
                *l = Some(lv);
            }
        }
        let root = std::path::absolute(&root).unwrap_or(root);
        let dir = root.join(name);
        let client = self.env().ontap().clone();
        let fc_targets = match fc_svm {
            Some(svm) => {
                let c = client.clone();
                block_on(py, async move { world::fc_targets(&c, &svm).await }).map_err(
                    |e| match &e {
                        WorldError::FcTargets { source, .. } => ontap_err(py, source),
                        e => world_err(e),
                    },
                )?
            }
            None => Vec::new(),
        };
        let (host, runner) = simulated_block_host(name, address, &dir, client, &fc_targets)
            .map_err(|source| world_err(&WorldError::SimRoot { path: dir, source }))?;
        let task = runtime().spawn(SimKernelRunner::react_forever(runner));
        if let Ok(mut r) = self.reactions.lock() {
            r.push(task);
        }
        if let Ok(mut r) = self.sim_root.lock() {
            r.get_or_insert(root);
        }
        self.add(host);
        Ok(())
    }

    /// The hosts' names.
    fn hosts(&self) -> Vec<String> {
        self.env()
            .hosts()
            .iter()
            .map(|h| h.name().to_owned())
            .collect()
    }

    /// The attach plan: `{"workflow", "steps", "actions"}`; changes nothing.
    fn plan_attach(&self, py: Python<'_>, datastore: AnyDatastore<'_>) -> PyResult<Py<PyAny>> {
        self.work(py, &datastore, true, Act::Plan)
    }

    /// The detach plan.
    fn plan_detach(&self, py: Python<'_>, datastore: AnyDatastore<'_>) -> PyResult<Py<PyAny>> {
        self.work(py, &datastore, false, Act::Plan)
    }

    /// Attaches the datastore; returns the run report (`outcome`, `changed`, `steps`, ...).
    #[pyo3(signature = (datastore, *, journal=None))]
    fn attach(
        &self,
        py: Python<'_>,
        datastore: AnyDatastore<'_>,
        journal: Option<PathBuf>,
    ) -> PyResult<Py<PyAny>> {
        self.work(py, &datastore, true, Act::Run(journal))
    }

    /// Detaches the datastore.
    #[pyo3(signature = (datastore, *, journal=None))]
    fn detach(
        &self,
        py: Python<'_>,
        datastore: AnyDatastore<'_>,
        journal: Option<PathBuf>,
    ) -> PyResult<Py<PyAny>> {
        self.work(py, &datastore, false, Act::Run(journal))
    }

    /// Finishes (`mode="resume"`) or unwinds (`"unwind"`) the run recorded in `journal`
    /// (interrupted, or needing attention), once its cause is fixed.
    #[pyo3(signature = (datastore, journal, *, mode="unwind"))]
    fn recover(
        &self,
        py: Python<'_>,
        datastore: AnyDatastore<'_>,
        journal: PathBuf,
        mode: &str,
    ) -> PyResult<Py<PyAny>> {
        let mode = match mode {
            "unwind" => RecoverMode::Unwind,
            "resume" => RecoverMode::Resume,
            other => {
                return Err(world_err(&WorldError::Choice {
                    field: "mode",
                    value: other.to_owned(),
                    allowed: "unwind, resume",
                }))
            }
        };
        self.work(py, &datastore, true, Act::Recover(journal, mode))
    }

    /// Takes snapshot `name` of `svm`/`volume` (returned as it is if it exists).
    fn snapshot(&self, py: Python<'_>, svm: &str, volume: &str, name: &str) -> PyResult<Py<PyAny>> {
        let env = self.env();
        let vol = DatastoreVolume::new(svm, volume);
        let name = name.to_owned();
        let s = block_on(py, async move {
            ops::snapshot(&env, &vol, &name, &Freeze::None).await
        })
        .map_err(|e| workflow_err(py, &e))?;
        to_py(py, &serde_json::to_value(&s).unwrap_or(Value::Null))
    }

    /// The volume's snapshots, oldest first.
    fn list_snapshots(&self, py: Python<'_>, svm: &str, volume: &str) -> PyResult<Py<PyAny>> {
        let env = self.env();
        let vol = DatastoreVolume::new(svm, volume);
        let s = block_on(py, async move { ops::list_snapshots(&env, &vol).await })
            .map_err(|e| workflow_err(py, &e))?;
        to_py(py, &serde_json::to_value(&s).unwrap_or(Value::Null))
    }

    /// Clones file `template` to `disk` inside the volume (ONTAP file clone).
    fn clone_file(
        &self,
        py: Python<'_>,
        svm: &str,
        volume: &str,
        template: &str,
        disk: &str,
    ) -> PyResult<()> {
        let env = self.env();
        let vol = DatastoreVolume::new(svm, volume);
        let (t, d) = (template.to_owned(), disk.to_owned());
        block_on(py, async move { ops::clone_file(&env, &vol, &t, &d).await })
            .map_err(|e| workflow_err(py, &e))
    }

    /// FlexClones `svm`/`volume` as `clone` (from `snapshot`, or a new one ONTAP takes);
    /// returns the clone's UUID. A block datastore's clone is attached as a new
    /// `BlockDatastore` named after it.
    #[pyo3(signature = (svm, volume, clone, *, snapshot=None))]
    fn flexclone(
        &self,
        py: Python<'_>,
        svm: &str,
        volume: &str,
        clone: &str,
        snapshot: Option<String>,
    ) -> PyResult<String> {
        let env = self.env();
        let vol = DatastoreVolume::new(svm, volume);
        let clone = clone.to_owned();
        block_on(py, async move {
            ops::flexclone(&env, &vol, &clone, snapshot.as_deref()).await
        })
        .map_err(|e| workflow_err(py, &e))
    }

    /// The volumes (`name`, `uuid`, `svm`, `size`), of one SVM if given.
    #[pyo3(signature = (svm=None))]
    fn list_volumes(&self, py: Python<'_>, svm: Option<String>) -> PyResult<Py<PyAny>> {
        let client = self.env().ontap().clone();
        let res = block_on(py, async move {
            let mut q = Query::new().fields(["uuid", "name", "svm.name", "size"]);
            if let Some(s) = svm {
                q = q.filter("svm.name", s);
            }
            client.volumes().list_all(&q).await
        });
        let vols = res.map_err(|e| ontap_err(py, &e))?;
        let list: Vec<Value> = vols
            .iter()
            .map(|v| {
                serde_json::json!({
                    "name": v.name,
                    "uuid": v.uuid,
                    "svm": v.svm.as_ref().and_then(|s| s.name.clone()),
                    "size": v.size,
                })
            })
            .collect();
        to_py(py, &Value::Array(list))
    }

    fn __repr__(&self) -> String {
        format!("Ontap({:?})", self.env().cluster())
    }
}

/// Connects to ONTAP (nothing is sent until the first call). Basic auth with `password`
/// (or the first line of `password_file`), or certificate auth with `cert_file` and
/// `key_file`; `ca_file` is then the only trusted CA.
#[pyfunction]
#[pyo3(signature = (url, *, username="admin", password=None, password_file=None, ca_file=None, cert_file=None, key_file=None))]
fn connect(
    url: &str,
    username: &str,
    password: Option<String>,
    password_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
) -> PyResult<Ontap> {
    let mut ep = Endpoint::new(url).password(match &password_file {
        Some(p) => PasswordSource::File(p.clone()),
        None => PasswordSource::None,
    });
    ep.username = username.to_owned();
    ep.ca_file = ca_file;
    ep.cert_file = cert_file;
    ep.key_file = key_file;
    let secret = match password {
        Some(p) => Some(SecretString::from(p)),
        None => ep.resolve_password().map_err(|e| endpoint_err(&e))?,
    };
    let client = ep.connect_with(secret).map_err(|e| endpoint_err(&e))?;
    Ok(Ontap {
        env: Mutex::new(Env::new(client)),
        sim_root: Mutex::new(None),
        sim_libvirt: Mutex::new(None),
        reactions: Mutex::new(Vec::new()),
    })
}

/// The storage pools of the libvirt at `uri`: `[{"name", "active", "persistent",
/// "autostart"}]`.
#[pyfunction]
#[pyo3(signature = (uri="qemu:///system"))]
fn list_pools(py: Python<'_>, uri: &str) -> PyResult<Py<PyAny>> {
    let uri = uri.to_owned();
    let res = block_on(py, async move {
        let lv = libvirt_pools::Libvirt::connect(&uri).await?;
        lv.pools().list().await
    });
    let pools = res.map_err(|e| KvmstorError::new_err(chain(&e)))?;
    let list: Vec<Value> = pools
        .iter()
        .map(|p| {
            serde_json::json!({"name": p.name, "active": p.active,
                               "persistent": p.persistent, "autostart": p.autostart})
        })
        .collect();
    to_py(py, &Value::Array(list))
}

/// The extension module.
#[pymodule]
#[pyo3(name = "kvmstor")]
fn kvmstor_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_function(wrap_pyfunction!(connect, m)?)?;
    m.add_function(wrap_pyfunction!(list_pools, m)?)?;
    m.add_class::<Ontap>()?;
    m.add_class::<NfsDatastore>()?;
    m.add_class::<SmbDatastore>()?;
    m.add_class::<BlockDatastore>()?;
    m.add("KvmstorError", py.get_type::<KvmstorError>())?;
    m.add("OntapError", py.get_type::<OntapError>())?;
    m.add("StepFailed", py.get_type::<StepFailed>())?;
    m.add("NeedsAttention", py.get_type::<NeedsAttention>())?;
    Ok(())
}
