//! What the tools print: stable JSON for outcomes and errors, and exit codes.
//!
//! Exit codes: `0` done; `1` failed and nothing is left behind (the unwind finished
//! cleanly, or nothing had started); `2` needs attention (an undo failed: steps remain
//! applied, see `remaining`, fix the cause and run `kvmstor-cli attach` or `detach` again
//! or recover); `64` usage error.

use kvmstor::saga::{JournalDoc, RunOutcome, RunReport, Step};
use kvmstor::{Error, StepError};
use serde_json::{json, Value};

/// How a command ended, as an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    /// Done.
    Ok = 0,
    /// Failed; rolled back cleanly (or nothing had changed).
    RolledBack = 1,
    /// Failed and the rollback stopped: steps remain applied.
    NeedsAttention = 2,
    /// The command line or config was wrong.
    Usage = 64,
}

impl ExitKind {
    /// The process exit code.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The exit kind of a workflow error.
    pub fn of(e: &Error) -> ExitKind {
        match e {
            Error::NeedsAttention { .. } => ExitKind::NeedsAttention,
            Error::Invalid { .. } => ExitKind::Usage,
            _ => ExitKind::RolledBack,
        }
    }
}

/// `e` with its causes, `: `-separated.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// The ONTAP error under a step error, if it is one.
pub fn ontap_error(e: &StepError) -> Option<&ontap_client::Error> {
    match e {
        StepError::Ontap { source, .. } => Some(source),
        _ => None,
    }
}

/// The step error under a workflow error, if any.
pub fn step_error(e: &Error) -> Option<&StepError> {
    match e {
        Error::StepFailed { source, .. }
        | Error::NeedsAttention { source, .. }
        | Error::Plan { source, .. }
        | Error::Operation { source, .. } => Some(source),
        _ => None,
    }
}

/// What a rollback left: `clean` (every applied step undone), `incomplete` (steps remain),
/// `none` (no workflow ran: an operation or a check failed before anything changed).
pub fn rollback(e: &Error) -> &'static str {
    match e {
        Error::StepFailed { .. } => "clean",
        Error::NeedsAttention { .. } => "incomplete",
        _ => "none",
    }
}

/// A workflow error as JSON: `kind`, `message` (with causes), `step`, `index`,
/// `ontap_code`, `http_status`, `rollback`, `undone`, `remaining`, `failed_undo`.
pub fn error_json(e: &Error) -> Value {
    let ontap = step_error(e).and_then(ontap_error);
    let mut v = json!({
        "kind": match e {
            Error::StepFailed { .. } => "step_failed",
            Error::NeedsAttention { .. } => "needs_attention",
            Error::Operation { .. } => "operation_failed",
            Error::Plan { .. } => "plan_failed",
            Error::Invalid { .. } => "invalid",
            _ => "error",
        },
        "message": chain(e),
        "step": Value::Null,
        "index": Value::Null,
        "ontap_code": ontap.and_then(|o| o.ontap_code()),
        "http_status": ontap.and_then(|o| o.status()),
        "rollback": rollback(e),
        "undone": Value::Null,
        "remaining": [],
        "failed_undo": Value::Null,
    });
    match e {
        Error::StepFailed {
            step,
            index,
            undone,
            ..
        } => {
            v["step"] = json!(step);
            v["index"] = json!(index);
            v["undone"] = json!(undone);
        }
        Error::NeedsAttention {
            step,
            index,
            undo,
            remaining,
            ..
        } => {
            v["step"] = json!(step);
            v["index"] = json!(index);
            v["remaining"] = json!(remaining);
            v["failed_undo"] = match undo.as_deref() {
                Some(u) => json!({"step": u.step, "error": u.error}),
                None => Value::Null,
            };
        }
        _ => {}
    }
    v
}

/// Each step's label and state (`pending`, `done`, `undone`, `undo_failed`, ...).
pub fn steps_json<S: Step>(doc: &JournalDoc<S>) -> Value {
    Value::Array(
        doc.steps
            .iter()
            .map(|e| {
                let state = serde_json::to_value(&e.state)
                    .ok()
                    .and_then(|s| s.get("state").cloned())
                    .unwrap_or(Value::Null);
                let changed = match serde_json::to_value(&e.state) {
                    Ok(s) => s.get("changed").cloned().unwrap_or(Value::Null),
                    Err(_) => Value::Null,
                };
                json!({"label": e.step.label(), "state": state, "changed": changed})
            })
            .collect(),
    )
}

/// A finished run as JSON: `outcome` (`applied`, `already_applied`, ...), `changed`,
/// `workflow`, `run_id`, `status`, `steps`.
pub fn report_json<S: Step>(report: &RunReport<S>) -> Value {
    let (outcome, changed) = match report.outcome {
        RunOutcome::Applied { changed } => ("applied", changed),
        RunOutcome::AlreadyApplied => ("already_applied", 0),
        RunOutcome::Unwound { undone } => ("unwound", undone),
        RunOutcome::NothingToRecover => ("nothing_to_recover", 0),
    };
    json!({
        "outcome": outcome,
        "changed": changed,
        "workflow": report.journal.workflow,
        "run_id": report.journal.run_id.to_string(),
        "status": report.journal.status.to_string(),
        "steps": steps_json(&report.journal),
    })
}
