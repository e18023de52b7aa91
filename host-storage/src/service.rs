//! systemd units that storage protocols need (`iscsid`, `multipathd`), enabled and started
//! idempotently with an exact undo.

use crate::change::Change;
use crate::error::{Error, Result, ValueKind};
use crate::runner::{Command, Runner};

/// What [`Services::enable_now`] did, to undo it exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceUndo {
    /// The unit.
    pub unit: String,
    /// True when the call enabled it (it was disabled before).
    pub enabled: bool,
    /// True when the call started it (it was inactive before).
    pub started: bool,
    /// Whether anything changed.
    pub change: Change,
}

/// Enables and starts systemd units through `systemctl`.
///
/// ```
/// use host_storage::service::Services;
/// use host_storage::{Change, Expect, FakeRunner};
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), host_storage::Error> {
/// let fake = FakeRunner::new();
/// fake.expect(Expect::new("systemctl", ["is-enabled", "iscsid.service"]).exit(1, "disabled\n", ""));
/// fake.expect(Expect::new("systemctl", ["is-active", "iscsid.service"]).exit(3, "inactive\n", ""));
/// fake.expect(Expect::new("systemctl", ["enable", "--now", "iscsid.service"]));
/// let undo = Services::new(&fake).enable_now("iscsid.service").await?;
/// assert_eq!((undo.enabled, undo.started, undo.change), (true, true, Change::Changed));
/// fake.verify();
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Services<R> {
    runner: R,
}

fn check_unit(unit: &str) -> Result<()> {
    let ok = !unit.is_empty()
        && unit.len() <= 128
        && !unit.starts_with('-')
        && unit
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@' | b':'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            ValueKind::Name,
            unit,
            "not a systemd unit name",
        ))
    }
}

impl<R: Runner> Services<R> {
    /// Units managed through `runner`.
    pub fn new(runner: R) -> Self {
        Services { runner }
    }

    async fn query(&self, verb: &str, unit: &str) -> Result<String> {
        // is-enabled/is-active answer non-zero for "disabled"/"inactive"; the word decides.
        let out = self
            .runner
            .run(
                &Command::new("systemctl")
                    .args([verb, unit])
                    .ok_codes(0..=255),
            )
            .await?;
        Ok(out.stdout.trim().to_owned())
    }

    /// True when the unit is enabled (`enabled`, `static`, `alias`, `indirect`, or
    /// `enabled-runtime`).
    pub async fn is_enabled(&self, unit: &str) -> Result<bool> {
        check_unit(unit)?;
        Ok(matches!(
            self.query("is-enabled", unit).await?.as_str(),
            "enabled" | "enabled-runtime" | "static" | "alias" | "indirect" | "generated"
        ))
    }

    /// True when the unit is `active`.
    pub async fn is_active(&self, unit: &str) -> Result<bool> {
        check_unit(unit)?;
        Ok(self.query("is-active", unit).await? == "active")
    }

    /// Enables and starts `unit`; unchanged when it already is both.
    pub async fn enable_now(&self, unit: &str) -> Result<ServiceUndo> {
        check_unit(unit)?;
        let enabled = !self.is_enabled(unit).await?;
        let started = !self.is_active(unit).await?;
        let cmd = match (enabled, started) {
            (true, _) => Some(Command::new("systemctl").args(["enable", "--now", unit])),
            (false, true) => Some(Command::new("systemctl").args(["start", unit])),
            (false, false) => None,
        };
        if let Some(cmd) = cmd {
            self.runner.run(&cmd).await?;
            tracing::info!(unit, enabled, started, "service enabled");
        }
        Ok(ServiceUndo {
            unit: unit.to_owned(),
            enabled,
            started,
            change: Change::from(enabled || started),
        })
    }

    /// Reverts [`Services::enable_now`]: disables what it enabled, stops what it started.
    pub async fn undo(&self, undo: &ServiceUndo) -> Result<Change> {
        check_unit(&undo.unit)?;
        let mut change = Change::Unchanged;
        if undo.enabled && self.is_enabled(&undo.unit).await? {
            self.runner
                .run(&Command::new("systemctl").args(["disable", undo.unit.as_str()]))
                .await?;
            change = Change::Changed;
        }
        if undo.started && self.is_active(&undo.unit).await? {
            self.runner
                .run(&Command::new("systemctl").args(["stop", undo.unit.as_str()]))
                .await?;
            change = Change::Changed;
        }
        Ok(change)
    }
}
