//! # ontap-sim
//!
//! A stateful simulator of the NetApp ONTAP REST API, close enough to real ONTAP that
//! clients written for it (NetApp's `netapp-ontap` Python package, `ontap-client`) work
//! unchanged: HAL links, `fields`/filters/`order_by`/paging with `next` links, ONTAP
//! error bodies and codes, jobs for asynchronous operations, SVM tunnelling, basic and
//! bearer authentication over HTTPS with a generated self-signed certificate.
//!
//! Use it in-process from tests ([`SimServer::builder`]) or as the `ontap-sim` binary.
//! Faults (errors, delays, dropped connections, failing jobs) are injected through
//! [`SimServer::faults`] or `POST /__sim/faults`; `GET /__sim/requests` lists what
//! clients sent.
//!
//! ## Endpoints outside `/api` (same basic auth)
//!
//! | endpoint | effect |
//! |---|---|
//! | `POST /__sim/faults` | arm one [`Fault`] or an array of them (JSON as in [`Fault`]) |
//! | `GET /__sim/faults`, `DELETE /__sim/faults` | list / disarm all faults |
//! | `GET /__sim/requests`, `DELETE /__sim/requests` | `{"num_records","records":[{method,path,query,svm_name?,body?}]}` of `/api` requests (secret-looking body fields redacted) / forget them |
//! | `POST /__sim/reset` | back to the seed; clears jobs, faults and the request log |
//! | `GET /__sim/state` | the whole store, as [`SimServer::state`] |
//! | `POST /__sim/files` | `{"volume":{"name"\|"uuid"},"svm"?:{"name"},"path":"dir/f"}`: record a file in a volume (file clones accept any source in memory) |
//!
//! ## The binary
//!
//! `ontap-sim [--listen 127.0.0.1:8443] [--http] [--cert-out FILE] [--username admin]
//! [--password-file FILE | ONTAP_SIM_PASSWORD=… | --password …] [--state FILE]
//! [--seed FILE] [--bulk-volumes N] [--job-ms 200] [--job-ttl 300] [--cert-name NAME]`
//! prints exactly `listening on URL` on stdout when ready and logs to stderr
//! (`ONTAP_SIM_LOG=debug` for a line per request). The seed format is documented in
//! [`seed`]. `--state FILE` is rewritten atomically after every mutation (jobs are not
//! kept) and reloaded at start instead of the seed.
//!
//! `--lab-seed` starts from [`Seed::lab`] (LIFs on loopback addresses 127.0.1.1–6).
//! `--backend kernel` realises every change on the host with [`kernel::KernelBackend`]
//! (root only): `--kernel-root DIR` (default `/var/lib/ontap-sim`: btrfs image, mount
//! point, junction mounts), `--kernel-loop-size 16G`, `--kernel-export-root DIR`,
//! `--kernel-exports-file FILE`, `--kernel-smb-include FILE`, `--kernel-configfs DIR`,
//! `--kernel-skip nfs|cifs|iscsi|nvme` (repeatable) and `--kernel-teardown` (unmount on
//! exit). CHAP passwords reach the backend through [`Change::ChapSet`] and are kept in
//! its memory only, so after a restart a CHAP initiator is denied until its credential
//! is set again.
//!
//! ## Behaviour worth knowing
//!
//! * Volumes POST/PATCH/DELETE, snapshots POST/DELETE, file clone POST and SVM
//!   POST/DELETE answer 202 with a job; the change is committed when the job ends, so a
//!   `GET` on the `Location` can be empty until then. `return_timeout=N` waits.
//! * Export policies/rules, CIFS shares and IP interfaces are synchronous (201/200).
//! * Records are ordered by key (UUID) in collections; `next` links carry
//!   `start.uuid=` (or `start.offset=` with `order_by`).
//! * Filters on fields a record does not have simply do not match, and unknown names in
//!   `fields` are left out (ONTAP rejects unknown names with 400 / 262197; the simulator
//!   has no per-resource schema to tell them from known fields that are unset).
//! * Multi-record POST `{"records":[…]}` (snapshots, also with `*` as the volume key;
//!   LUNs) validates every record, then answers 202 with one job and no `Location`; the
//!   job creates them in order and, if one fails, removes those it made and fails.
//!   `GET/PATCH/DELETE /api/storage/volumes/*/snapshots` act across volumes.
//! * A raw `+` in a path key means a space (clients form-encode keys: netapp-ontap sends
//!   the share `a b` as `/api/protocols/cifs/shares/{svm}/a+b`); `%2B` is a `+`.
//! * `PATCH /api/cluster/jobs/{uuid}?action=cancel` fails a job whose work has not
//!   started yet (code 458784); `pause`/`resume` are refused (458783 / 458771) and
//!   finished jobs answer 458762.
//! * A FlexClone holds copies of its parent's LUNs and NVMe namespaces (new UUIDs and
//!   serials, unmapped): with `clone.parent_snapshot`, those the parent had when that
//!   snapshot (or SnapMirror transfer snapshot) was taken, kept with the snapshot out of
//!   the REST API's sight (`state()` and `--state` show them under `snapshot_blocks`);
//!   otherwise the parent's current ones.
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use ontap_sim::{Fault, SimServer};
//! use secrecy::ExposeSecret;
//!
//! let sim = SimServer::builder().start().await?;
//! println!("{} trusts {}", sim.url(), sim.ca_pem().unwrap_or("(plain http)"));
//! let _password = sim.password();
//! sim.faults().add(Fault::close_connection(Some("GET"), "/api/cluster"));
//! let snapshot = sim.state();
//! assert!(snapshot["collections"]["svms"].is_object());
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use serde_json::Value;
use tokio::sync::watch;

pub mod api;
pub mod backend;
pub mod error;
pub mod faults;
pub mod jobs;
pub mod kernel;
pub mod query;
pub(crate) mod resources;
pub mod seed;
mod server;
pub mod sim;
pub mod store;

pub use backend::{Backend, BackendError, Change, ChapSecret, MemoryBackend};
pub use error::{ApiError, JobFailure, SimError};
pub use faults::{Fault, FaultAction, FaultHandle};
pub use seed::Seed;
pub use sim::RequestRecord;

/// Configures and starts a [`SimServer`].
#[derive(Debug)]
pub struct SimServerBuilder {
    addr: SocketAddr,
    tls: bool,
    username: String,
    password: SecretString,
    tokens: Vec<SecretString>,
    seed: Seed,
    state_file: Option<PathBuf>,
    backend: Option<Arc<dyn Backend>>,
    job_min: Duration,
    job_max: Duration,
    job_ttl: Duration,
    extra_names: Vec<String>,
    client_ca: Option<String>,
}

impl Default for SimServerBuilder {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: true,
            username: "admin".into(),
            password: SecretString::from("netapp1!"),
            tokens: Vec::new(),
            seed: Seed::default(),
            state_file: None,
            backend: None,
            job_min: Duration::ZERO,
            job_max: Duration::from_millis(200),
            job_ttl: Duration::from_secs(300),
            extra_names: Vec::new(),
            client_ca: None,
        }
    }
}

impl SimServerBuilder {
    /// Listen on this address (default `127.0.0.1:0`, an ephemeral port).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Serve plain HTTP instead of HTTPS.
    pub fn http(mut self) -> Self {
        self.tls = false;
        self
    }

    /// Basic-auth credentials (default `admin` / `netapp1!`).
    pub fn credentials(mut self, username: &str, password: SecretString) -> Self {
        self.username = username.to_string();
        self.password = password;
        self
    }

    /// Also accept `Authorization: Bearer TOKEN`.
    pub fn bearer_token(mut self, token: SecretString) -> Self {
        self.tokens.push(token);
        self
    }

    /// Start from this seed instead of the default.
    pub fn seed(mut self, seed: Seed) -> Self {
        self.seed = seed;
        self
    }

    /// Persist state to this file after each mutation, and load it at start if present.
    pub fn state_file(mut self, path: PathBuf) -> Self {
        self.state_file = Some(path);
        self
    }

    /// Realise changes with this backend (default: [`MemoryBackend`]).
    pub fn backend(mut self, backend: Arc<dyn Backend>) -> Self {
        self.backend = Some(backend);
        self
    }

    /// Jobs run for a random time in `min..=max` (default 0–200 ms).
    pub fn job_duration(mut self, min: Duration, max: Duration) -> Self {
        self.job_min = min;
        self.job_max = max.max(min);
        self
    }

    /// Finished jobs are deleted after this long (default 300 s).
    pub fn job_ttl(mut self, ttl: Duration) -> Self {
        self.job_ttl = ttl;
        self
    }

    /// Extra DNS names or IP addresses for the certificate.
    pub fn certificate_name(mut self, name: &str) -> Self {
        self.extra_names.push(name.to_string());
        self
    }

    /// Certificate authentication, as ONTAP does it: a TLS client certificate signed by a
    /// CA of `pem` authenticates a request as the account its subject CN names (here the
    /// one account, [`SimServerBuilder::credentials`]; another CN gets 401); a certificate
    /// from any other CA fails the TLS handshake; a request without a certificate still
    /// needs basic auth or a token. HTTPS only.
    pub fn client_ca_pem(mut self, pem: impl Into<String>) -> Self {
        self.client_ca = Some(pem.into());
        self
    }

    /// Binds, builds the state (state file, else seed) and starts serving.
    pub async fn start(self) -> Result<SimServer, SimError> {
        let store = match &self.state_file {
            Some(p) if p.exists() => sim::load_state(p)?,
            _ => self.seed.build()?,
        };
        let cfg = sim::SimConfig {
            username: self.username,
            password: self.password,
            tokens: self.tokens,
            job_min: self.job_min,
            job_max: self.job_max,
            job_ttl: self.job_ttl,
            state_file: self.state_file,
        };
        let backend = self
            .backend
            .unwrap_or_else(|| Arc::new(MemoryBackend::new()));
        let faults = FaultHandle::default();
        backend.start(&store).await.map_err(SimError::Backend)?;
        let sim = sim::Sim::new(store, backend, cfg, self.seed, faults.clone());
        // Write the initial state so a fresh state file exists right away.
        sim.write(|_| ());
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .map_err(|source| SimError::Bind {
                addr: self.addr,
                source,
            })?;
        let addr = server::local_addr(&listener, self.addr)?;
        let client_ca = match &self.client_ca {
            Some(pem) => Some(server::client_ca_certs(pem)?),
            None => None,
        };
        let (tls, ca_pem) = if self.tls {
            let cert = server::self_signed(&self.extra_names)?;
            (
                Some(server::tls_config(&cert, client_ca)?),
                Some(cert.cert_pem),
            )
        } else {
            (None, None)
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{addr}");
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(server::serve(listener, tls, sim.clone(), stop_rx));
        Ok(SimServer {
            url,
            addr,
            ca_pem,
            sim,
            faults,
            stop: stop_tx,
            task: Some(task),
        })
    }
}

/// A running simulator. Dropping it stops serving.
#[derive(Debug)]
pub struct SimServer {
    url: String,
    addr: SocketAddr,
    ca_pem: Option<String>,
    sim: sim::Sim,
    faults: FaultHandle,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl SimServer {
    /// A builder with the defaults: HTTPS on an ephemeral port of 127.0.0.1, default seed,
    /// `admin`/`netapp1!`.
    pub fn builder() -> SimServerBuilder {
        SimServerBuilder::default()
    }

    /// Base URL, e.g. `https://127.0.0.1:40123`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The basic-auth user name.
    pub fn username(&self) -> &str {
        &self.sim.inner.cfg.username
    }

    /// The basic-auth password.
    pub fn password(&self) -> SecretString {
        self.sim.inner.cfg.password.clone()
    }

    /// PEM of the self-signed certificate to trust (`None` when serving plain HTTP).
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// The fault-injection handle.
    pub fn faults(&self) -> &FaultHandle {
        &self.faults
    }

    /// Requests received under `/api`, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.sim.requests()
    }

    /// Forgets the received requests.
    pub fn clear_requests(&self) {
        self.sim.clear_requests()
    }

    /// A snapshot of the whole store as JSON:
    /// `{"collections":{NAME:{KEY:RECORD}},"counters":{..},"files":{VOLUME_UUID:[PATH]}}`.
    pub fn state(&self) -> Value {
        self.sim
            .read(|s| serde_json::to_value(s).unwrap_or(Value::Null))
    }

    /// The job records currently kept, by UUID.
    pub fn jobs(&self) -> Value {
        self.sim
            .with_jobs(|j| serde_json::to_value(j).unwrap_or(Value::Null))
    }

    /// Restores the seeded state and clears jobs, faults and the request log.
    pub fn reset(&self) -> Result<(), SimError> {
        self.sim.reset()
    }

    /// Stops serving and waits for the server task to end.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
