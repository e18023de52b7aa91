//! The job table behind `/api/cluster/jobs`. Jobs are not persisted.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::watch;

/// ONTAP-style timestamp, e.g. `2021-04-10T09:51:13+00:00`.
pub fn now_timestamp() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+00:00",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A started job: its UUID and a way to wait for it to end.
#[derive(Debug, Clone)]
pub struct JobTicket {
    /// The job UUID.
    pub uuid: String,
    done: watch::Receiver<bool>,
}

impl JobTicket {
    /// The `{"uuid":…,"_links":{"self":{"href":"/api/cluster/jobs/UUID"}}}` object.
    pub fn link(&self) -> Value {
        job_link(&self.uuid)
    }

    /// Waits up to `timeout` for the job to reach a terminal state; true if it did.
    pub async fn wait(&mut self, timeout: Duration) -> bool {
        if *self.done.borrow() {
            return true;
        }
        let res = tokio::time::timeout(timeout, self.done.wait_for(|d| *d)).await;
        matches!(res, Ok(Ok(_)))
    }
}

/// The job link object for a job UUID.
pub fn job_link(uuid: &str) -> Value {
    json!({"uuid": uuid, "_links": {"self": {"href": format!("/api/cluster/jobs/{uuid}")}}})
}

/// Job records by UUID plus their completion signals.
#[derive(Debug, Default)]
pub(crate) struct Jobs {
    records: Mutex<BTreeMap<String, Value>>,
    signals: Mutex<HashMap<String, watch::Sender<bool>>>,
    cancels: Mutex<HashSet<String>>,
}

/// What became of `PATCH /api/cluster/jobs/{uuid}?action=cancel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CancelRequest {
    /// No such job (or it expired).
    Unknown,
    /// The job already ended.
    Terminal,
    /// Noted: the job fails instead of running its work, unless the work already began.
    Accepted,
}

/// Job `code` and `message` of a job cancelled before its work ran. ONTAP documents
/// only that a cancelled job ends in `success` or `failure`; the code is the
/// simulator's own.
pub(crate) const CANCELLED: (i64, &str) = (458784, "The job was cancelled.");

impl Jobs {
    /// Registers a queued job and returns its ticket.
    pub(crate) fn create(&self, description: &str, svm: Option<Value>) -> JobTicket {
        let uuid = uuid::Uuid::new_v4().to_string();
        let mut rec = json!({
            "uuid": uuid,
            "description": description,
            "state": "queued",
            "message": "Queued",
            "code": 0,
            "start_time": now_timestamp(),
            "_links": {"self": {"href": format!("/api/cluster/jobs/{uuid}")}},
        });
        if let Some(s) = svm {
            rec["svm"] = s;
        }
        let (tx, rx) = watch::channel(false);
        if let Ok(mut r) = self.records.lock() {
            r.insert(uuid.clone(), rec);
        }
        if let Ok(mut s) = self.signals.lock() {
            s.insert(uuid.clone(), tx);
        }
        JobTicket { uuid, done: rx }
    }

    pub(crate) fn set_running(&self, uuid: &str) {
        if let Ok(mut r) = self.records.lock() {
            if let Some(rec) = r.get_mut(uuid) {
                rec["state"] = json!("running");
                rec["message"] = json!("Job is running.");
            }
        }
    }

    pub(crate) fn finish(&self, uuid: &str, outcome: Result<(), (i64, String)>) {
        if let Ok(mut r) = self.records.lock() {
            if let Some(rec) = r.get_mut(uuid) {
                match outcome {
                    Ok(()) => {
                        rec["state"] = json!("success");
                        rec["message"] = json!("success");
                        rec["code"] = json!(0);
                    }
                    Err((code, message)) => {
                        rec["state"] = json!("failure");
                        rec["error"] = json!({"code": code.to_string(), "message": message});
                        rec["message"] = json!(message);
                        rec["code"] = json!(code);
                    }
                }
                rec["end_time"] = json!(now_timestamp());
            }
        }
        if let Ok(s) = self.signals.lock() {
            if let Some(tx) = s.get(uuid) {
                let _ = tx.send(true);
            }
        }
    }

    /// Records a cancel request for a queued or running job.
    pub(crate) fn request_cancel(&self, uuid: &str) -> CancelRequest {
        let state = self.with(|r| r.get(uuid).map(|j| j["state"].clone()));
        match state {
            None => CancelRequest::Unknown,
            Some(s) if s == "success" || s == "failure" => CancelRequest::Terminal,
            Some(_) => {
                if let Ok(mut c) = self.cancels.lock() {
                    c.insert(uuid.to_string());
                }
                CancelRequest::Accepted
            }
        }
    }

    /// Whether a cancel was requested for the job (forgets the request).
    pub(crate) fn take_cancel(&self, uuid: &str) -> bool {
        self.cancels.lock().is_ok_and(|mut c| c.remove(uuid))
    }

    pub(crate) fn expire(&self, uuid: &str) {
        if let Ok(mut r) = self.records.lock() {
            r.remove(uuid);
        }
        if let Ok(mut s) = self.signals.lock() {
            s.remove(uuid);
        }
    }

    pub(crate) fn clear(&self) {
        if let Ok(mut r) = self.records.lock() {
            r.clear();
        }
        if let Ok(mut s) = self.signals.lock() {
            s.clear();
        }
        if let Ok(mut c) = self.cancels.lock() {
            c.clear();
        }
    }

    /// Runs `f` on the job table.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&BTreeMap<String, Value>) -> R) -> R {
        match self.records.lock() {
            Ok(r) => f(&r),
            Err(p) => f(&p.into_inner()),
        }
    }
}
