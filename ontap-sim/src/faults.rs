//! Fault injection: fail, delay or drop requests, and make jobs fail.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::query::glob;

/// What a fault does when it fires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum FaultAction {
    /// Answer with this ONTAP error instead of running the request.
    Error {
        /// HTTP status.
        status: u16,
        /// ONTAP code (string on the wire).
        code: String,
        /// Message.
        message: String,
        /// Optional target field.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<String>,
    },
    /// Wait this long, then run the request normally.
    Delay {
        /// Milliseconds.
        ms: u64,
    },
    /// Close the connection without answering.
    CloseConnection,
    /// The job started by a matching request (matched on the job description,
    /// `"METHOD PATH"`) ends in state `failure` with this code and message.
    FailJob {
        /// Job `code`.
        code: i64,
        /// Job `message`.
        message: String,
    },
}

fn one() -> u32 {
    1
}

/// One fault rule. `method` (`None` = any) and `path` (a `*` glob on the path, e.g.
/// `/api/storage/volumes*`) select requests; the `nth` matching request (1 = the first)
/// fires it, and it keeps firing for `times` matches in total (0 = forever).
///
/// As JSON (admin endpoint `POST /__sim/faults`):
/// `{"method":"POST","path":"/api/storage/luns","nth":1,"times":1,
///   "action":{"kind":"error","status":500,"code":"65552","message":"RPC failure"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Fault {
    /// HTTP method, upper case; `None` matches any.
    #[serde(default)]
    pub method: Option<String>,
    /// Glob on the request path.
    pub path: String,
    /// Which matching request fires first (1-based).
    #[serde(default = "one")]
    pub nth: u32,
    /// How many times it fires (0 = unlimited).
    #[serde(default = "one")]
    pub times: u32,
    /// The effect.
    pub action: FaultAction,
}

impl Fault {
    fn with(method: Option<&str>, path: &str, action: FaultAction) -> Self {
        Self {
            method: method.map(str::to_ascii_uppercase),
            path: path.to_string(),
            nth: 1,
            times: 1,
            action,
        }
    }

    /// Answer matching requests with an ONTAP error.
    pub fn error(method: Option<&str>, path: &str, error: ApiError) -> Self {
        Self::with(
            method,
            path,
            FaultAction::Error {
                status: error.status,
                code: error.code,
                message: error.message,
                target: error.target,
            },
        )
    }

    /// Delay matching requests.
    pub fn delay(method: Option<&str>, path: &str, delay: Duration) -> Self {
        Self::with(
            method,
            path,
            FaultAction::Delay {
                ms: delay.as_millis() as u64,
            },
        )
    }

    /// Drop the connection of matching requests without an answer.
    pub fn close_connection(method: Option<&str>, path: &str) -> Self {
        Self::with(method, path, FaultAction::CloseConnection)
    }

    /// Make the job of a matching request (by description `METHOD PATH`) fail.
    pub fn fail_job(method: Option<&str>, path: &str, code: i64, message: &str) -> Self {
        Self::with(
            method,
            path,
            FaultAction::FailJob {
                code,
                message: message.to_string(),
            },
        )
    }

    /// Fire on the `n`th matching request (1-based) instead of the first.
    pub fn nth(mut self, n: u32) -> Self {
        self.nth = n.max(1);
        self
    }

    /// Fire this many times (0 = forever).
    pub fn times(mut self, n: u32) -> Self {
        self.times = n;
        self
    }

    fn selects(&self, method: &str, path: &str) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && glob(&self.path, path)
    }
}

#[derive(Debug)]
struct Armed {
    fault: Fault,
    seen: u32,
    fired: u32,
}

/// Shared, cloneable handle on the active faults.
#[derive(Debug, Clone, Default)]
pub struct FaultHandle {
    inner: Arc<Mutex<Vec<Armed>>>,
}

impl FaultHandle {
    /// Arms a fault.
    pub fn add(&self, fault: Fault) {
        if let Ok(mut v) = self.inner.lock() {
            v.push(Armed {
                fault,
                seen: 0,
                fired: 0,
            });
        }
    }

    /// Disarms every fault.
    pub fn clear(&self) {
        if let Ok(mut v) = self.inner.lock() {
            v.clear();
        }
    }

    /// The armed faults that may still fire.
    pub fn active(&self) -> Vec<Fault> {
        self.inner
            .lock()
            .map(|v| {
                v.iter()
                    .filter(|a| a.fault.times == 0 || a.fired < a.fault.times)
                    .map(|a| a.fault.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Counts the request against request faults and returns the actions that fire.
    pub(crate) fn on_request(&self, method: &str, path: &str) -> Vec<FaultAction> {
        self.fire(method, path, false)
    }

    /// Counts a new job against job faults; returns the failure to apply, if any.
    pub(crate) fn on_job(&self, description: &str) -> Option<(i64, String)> {
        let (method, path) = description.split_once(' ').unwrap_or(("", description));
        let path = path.split('?').next().unwrap_or(path).trim_end_matches('/');
        self.fire(method, path, true)
            .into_iter()
            .find_map(|a| match a {
                FaultAction::FailJob { code, message } => Some((code, message)),
                _ => None,
            })
    }

    fn fire(&self, method: &str, path: &str, jobs: bool) -> Vec<FaultAction> {
        let Ok(mut v) = self.inner.lock() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for a in v.iter_mut() {
            let is_job = matches!(a.fault.action, FaultAction::FailJob { .. });
            if is_job != jobs || !a.fault.selects(method, path) {
                continue;
            }
            if a.fault.times != 0 && a.fired >= a.fault.times {
                continue;
            }
            a.seen += 1;
            if a.seen >= a.fault.nth {
                a.fired += 1;
                out.push(a.fault.action.clone());
            }
        }
        v.retain(|a| a.fault.times == 0 || a.fired < a.fault.times);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nth_and_times() {
        let h = FaultHandle::default();
        h.add(
            Fault::close_connection(Some("get"), "/api/storage/*")
                .nth(2)
                .times(2),
        );
        assert!(h.on_request("GET", "/api/storage/volumes").is_empty());
        assert!(h.on_request("POST", "/api/storage/volumes").is_empty());
        assert_eq!(
            h.on_request("GET", "/api/storage/luns"),
            vec![FaultAction::CloseConnection]
        );
        assert_eq!(
            h.on_request("GET", "/api/storage/luns"),
            vec![FaultAction::CloseConnection]
        );
        assert!(h.on_request("GET", "/api/storage/luns").is_empty());
        assert!(h.active().is_empty());
    }

    #[test]
    fn job_faults_match_descriptions() {
        let h = FaultHandle::default();
        h.add(Fault::fail_job(
            Some("DELETE"),
            "/api/storage/volumes/*",
            9,
            "boom",
        ));
        assert!(h.on_request("DELETE", "/api/storage/volumes/u1").is_empty());
        assert_eq!(
            h.on_job("DELETE /api/storage/volumes/u1"),
            Some((9, "boom".into()))
        );
        assert_eq!(h.on_job("DELETE /api/storage/volumes/u1"), None);
    }
}
