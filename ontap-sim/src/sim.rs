//! The shared simulator state handed to every route handler (`State<Sim>`).

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::backend::{Backend, BackendError, Change};
use crate::error::{JobFailure, SimError};
use crate::faults::FaultHandle;
use crate::jobs::{JobTicket, Jobs};
use crate::seed::Seed;
use crate::store::Store;

/// One request as received, for `GET /__sim/requests` and [`crate::SimServer::requests`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RequestRecord {
    /// HTTP method.
    pub method: String,
    /// Path as received (trailing slash kept).
    pub path: String,
    /// Raw query string, if any.
    pub query: Option<String>,
    /// `X-Dot-SVM-Name` header, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub svm_name: Option<String>,
    /// The JSON body, if any (bodies are logged; the simulator has no secrets in bodies
    /// except CHAP secrets, which the SAN resources redact before logging).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

/// Runtime configuration.
#[derive(Debug, Clone)]
pub(crate) struct SimConfig {
    pub username: String,
    pub password: SecretString,
    pub tokens: Vec<SecretString>,
    pub job_min: Duration,
    pub job_max: Duration,
    pub job_ttl: Duration,
    pub state_file: Option<PathBuf>,
}

/// Shared state. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Sim {
    pub(crate) inner: Arc<SimInner>,
}

#[derive(Debug)]
pub(crate) struct SimInner {
    pub store: Mutex<Store>,
    pub jobs: Jobs,
    pub faults: FaultHandle,
    pub backend: Arc<dyn Backend>,
    pub cfg: SimConfig,
    pub requests: Mutex<std::collections::VecDeque<RequestRecord>>,
    pub seed: Seed,
    persist: Mutex<()>,
}

/// The on-disk state document (`--state FILE`).
#[derive(Serialize, Deserialize)]
struct StateDoc {
    format: String,
    store: Store,
}

const STATE_FORMAT: &str = "ontap-sim-state/1";

/// The request log keeps this many most recent requests.
pub const MAX_LOGGED_REQUESTS: usize = 100_000;

impl Sim {
    pub(crate) fn new(
        store: Store,
        backend: Arc<dyn Backend>,
        cfg: SimConfig,
        seed: Seed,
        faults: FaultHandle,
    ) -> Self {
        Sim {
            inner: Arc::new(SimInner {
                store: Mutex::new(store),
                jobs: Jobs::default(),
                faults,
                backend,
                cfg,
                requests: Mutex::new(std::collections::VecDeque::new()),
                seed,
                persist: Mutex::new(()),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        match self.inner.store.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Reads the store.
    pub fn read<R>(&self, f: impl FnOnce(&Store) -> R) -> R {
        f(&self.lock())
    }

    /// Mutates the store, then persists it when `--state` is set. Keep `f` short and
    /// free of `.await` (it runs under a lock).
    pub fn write<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        let (r, doc) = {
            let mut g = self.lock();
            let r = f(&mut g);
            let doc = self.inner.cfg.state_file.as_ref().map(|_| {
                serde_json::to_vec(&StateDocRef {
                    format: STATE_FORMAT,
                    store: &g,
                })
            });
            (r, doc)
        };
        if let (Some(Ok(bytes)), Some(path)) = (doc, self.inner.cfg.state_file.as_ref()) {
            if let Err(e) = self.persist(path, &bytes) {
                tracing::error!(error = %e, "cannot persist state");
            }
        }
        r
    }

    fn persist(&self, path: &PathBuf, bytes: &[u8]) -> Result<(), SimError> {
        let _g = self.inner.persist.lock();
        let tmp = path.with_extension("tmp");
        let err = |source| SimError::File {
            action: "write",
            path: path.clone(),
            source,
        };
        std::fs::write(&tmp, bytes).map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)
    }

    /// Passes a change to the backend.
    pub async fn realise(&self, change: Change) -> Result<(), BackendError> {
        self.inner.backend.apply(&change).await
    }

    /// The fault handle.
    pub fn faults(&self) -> &FaultHandle {
        &self.inner.faults
    }

    /// Starts a job described as `"METHOD /api/path"`. The job is `queued`, turns
    /// `running`, waits the configured job duration, then runs `work`; its result decides
    /// `success` or `failure`. A matching fail-job fault replaces `work`'s result; a cancel
    /// requested before `work` starts fails the job without running it.
    pub fn spawn_job<F>(&self, description: String, svm: Option<Value>, work: F) -> JobTicket
    where
        F: Future<Output = Result<(), JobFailure>> + Send + 'static,
    {
        let ticket = self.inner.jobs.create(&description, svm);
        let injected = self.inner.faults.on_job(&description);
        let sim = self.clone();
        let uuid = ticket.uuid.clone();
        let cfg = &self.inner.cfg;
        let span = cfg.job_max.saturating_sub(cfg.job_min).as_millis() as u64;
        let delay =
            cfg.job_min + Duration::from_millis(if span > 0 { fastrand::u64(0..=span) } else { 0 });
        let ttl = cfg.job_ttl;
        tokio::spawn(async move {
            sim.inner.jobs.set_running(&uuid);
            tokio::time::sleep(delay).await;
            let outcome = if sim.inner.jobs.take_cancel(&uuid) {
                let (code, message) = crate::jobs::CANCELLED;
                Err((code, message.to_string()))
            } else {
                match injected {
                    Some(f) => Err(f),
                    None => work.await.map_err(|f| (f.code, f.message)),
                }
            };
            sim.inner.jobs.finish(&uuid, outcome);
            tokio::time::sleep(ttl).await;
            sim.inner.jobs.expire(&uuid);
        });
        ticket
    }

    /// Asks a job to cancel (`PATCH /api/cluster/jobs/{uuid}?action=cancel`).
    pub(crate) fn cancel_job(&self, uuid: &str) -> crate::jobs::CancelRequest {
        self.inner.jobs.request_cancel(uuid)
    }

    /// Reads the job table.
    pub fn with_jobs<R>(
        &self,
        f: impl FnOnce(&std::collections::BTreeMap<String, Value>) -> R,
    ) -> R {
        self.inner.jobs.with(f)
    }

    pub(crate) fn log_request(&self, rec: RequestRecord) {
        if let Ok(mut l) = self.inner.requests.lock() {
            // Long benchmark runs must not grow without bound.
            if l.len() >= MAX_LOGGED_REQUESTS {
                l.pop_front();
            }
            l.push_back(rec);
        }
    }

    pub(crate) fn requests(&self) -> Vec<RequestRecord> {
        self.inner
            .requests
            .lock()
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub(crate) fn clear_requests(&self) {
        if let Ok(mut l) = self.inner.requests.lock() {
            l.clear();
        }
    }

    /// Restores the seeded state, clears jobs, faults and the request log.
    pub(crate) fn reset(&self) -> Result<(), SimError> {
        let store = self.inner.seed.build()?;
        self.write(|s| *s = store);
        self.inner.jobs.clear();
        self.inner.faults.clear();
        self.clear_requests();
        Ok(())
    }
}

#[derive(Serialize)]
struct StateDocRef<'a> {
    format: &'a str,
    store: &'a Store,
}

/// Loads a state file written by `--state`.
pub(crate) fn load_state(path: &PathBuf) -> Result<Store, SimError> {
    let bytes = std::fs::read(path).map_err(|source| SimError::File {
        action: "read",
        path: path.clone(),
        source,
    })?;
    let doc: StateDoc = serde_json::from_slice(&bytes).map_err(|source| SimError::Document {
        what: "state",
        path: path.clone(),
        source,
    })?;
    let mut store = doc.store;
    store.reindex();
    Ok(store)
}
