//! The workflow engine: a linear list of typed steps, each with an apply and an undo, run
//! under a journal that records every step as started *before* it runs.
//!
//! * A [`Step`] is a serde value (an enum per workflow, no `serde_json::Value` bags), so a
//!   journal written by one process can be resumed or unwound by another
//!   ([`recover`]). Its apply reports whether it changed anything and an output that its
//!   undo needs (a UUID, a previous line); its undo is idempotent, treats "already gone" as
//!   success, and also works with no output (the process died between starting the step and
//!   recording its result).
//! * On failure the engine undoes the failed step (with no output: it may have half
//!   happened) and then every finished step, in reverse. If an undo fails, unwinding stops,
//!   the journal is left in [`RunStatus::NeedsAttention`] and the error names the cause, the
//!   failed undo and the steps still applied.
//! * A step that destroys data ([`Step::reversible`] is false) is a point of no return:
//!   a failure after it stops without unwinding, and [`recover`] with
//!   [`RecoverMode::Resume`] finishes the run.
//! * [`Saga::plan`] lists every ONTAP call, host command, file change and libvirt definition
//!   before anything happens. A run whose steps all report "unchanged" is
//!   [`RunOutcome::AlreadyApplied`].
//! * Every step names the targets it touches ([`LockKey`]); a run takes all of them from a
//!   [`LockRegistry`] (sorted, so two runs cannot deadlock) before its first step. A journal
//!   file is also guarded by an exclusive `flock` on `JOURNAL.lock`, so two processes cannot
//!   run the same workflow.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use nix::fcntl::{Flock, FlockArg};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, FailedUndo, Result, StepError};

/// Version of the journal file format.
pub const JOURNAL_FORMAT: u32 = 1;

/// What one apply did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied<O> {
    /// Whether anything changed (false: the target already was in the asked state).
    pub changed: bool,
    /// What the undo needs to know.
    pub output: O,
}

impl<O> Applied<O> {
    /// A step that changed something.
    pub fn changed(output: O) -> Self {
        Applied {
            changed: true,
            output,
        }
    }

    /// A step that found everything already done.
    pub fn unchanged(output: O) -> Self {
        Applied {
            changed: false,
            output,
        }
    }
}

/// One typed step of a workflow.
#[async_trait::async_trait]
pub trait Step: Clone + fmt::Debug + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The world the step acts on (ONTAP client, hosts).
    type Env: Send + Sync;
    /// What apply hands to undo.
    type Output: Clone + fmt::Debug + Serialize + DeserializeOwned + Send + Sync + 'static;

    /// A short verb-noun label, e.g. `CreateVolume svm1/vmstore`.
    fn label(&self) -> String;

    /// Everything the step may do, for [`Saga::plan`].
    fn planned(&self) -> Vec<ActionKind>;

    /// The targets the step touches.
    fn locks(&self) -> Vec<LockKey>;

    /// False for steps that destroy data and cannot be undone.
    fn reversible(&self) -> bool {
        true
    }

    /// Does the step. Must be safe to run again after a crash (idempotent).
    async fn apply(&self, env: &Self::Env) -> Result<Applied<Self::Output>, StepError>;

    /// Reverts the step. `output` is `None` when the apply's result was never recorded (the
    /// process died, or the apply failed half-way); the undo then removes only what is
    /// recognisably this step's. Returns whether anything changed.
    async fn undo(&self, env: &Self::Env, output: Option<&Self::Output>)
        -> Result<bool, StepError>;
}

/// One planned action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ActionKind {
    /// An ONTAP REST call.
    OntapCall {
        /// HTTP method.
        method: String,
        /// Path, e.g. `/api/storage/volumes`.
        path: String,
        /// What the body asks for, in words.
        summary: String,
    },
    /// A program run on a host (arguments as `Command`'s `Display` shows them, redacted).
    HostCommand {
        /// The host.
        host: String,
        /// The command line.
        command: String,
    },
    /// A line kvmstor owns in a host file.
    FileChange {
        /// The host.
        host: String,
        /// The file, as on the host.
        path: PathBuf,
        /// The line written.
        line: String,
    },
    /// A libvirt object defined on a host.
    LibvirtDefinition {
        /// The host.
        host: String,
        /// The libvirt URI.
        uri: String,
        /// The definition XML.
        xml: String,
    },
    /// A libvirt object removed from a host.
    LibvirtRemoval {
        /// The host.
        host: String,
        /// The libvirt URI.
        uri: String,
        /// What goes, e.g. `pool vmstore (data kept)`.
        what: String,
    },
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActionKind::OntapCall {
                method,
                path,
                summary,
            } => write!(f, "ONTAP {method} {path}: {summary}"),
            ActionKind::HostCommand { host, command } => write!(f, "{host}$ {command}"),
            ActionKind::FileChange { host, path, line } => {
                write!(f, "{host}:{} += {line}", path.display())
            }
            ActionKind::LibvirtDefinition { host, uri, xml } => {
                write!(f, "{host} libvirt {uri} define:\n{}", indent(xml))
            }
            ActionKind::LibvirtRemoval { host, uri, what } => {
                write!(f, "{host} libvirt {uri} remove {what}")
            }
        }
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("        {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// One planned action and the step it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedAction {
    /// 0-based step index.
    pub step: usize,
    /// The step's label.
    pub step_label: String,
    /// The action.
    pub action: ActionKind,
}

/// Everything a workflow would do, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The workflow's name.
    pub workflow: String,
    /// Step labels, in order.
    pub steps: Vec<String>,
    /// The actions, in order.
    pub actions: Vec<PlannedAction>,
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "plan for {} ({} steps)", self.workflow, self.steps.len())?;
        for (i, label) in self.steps.iter().enumerate() {
            writeln!(f, "{:>3}. {label}", i + 1)?;
            for a in self.actions.iter().filter(|a| a.step == i) {
                writeln!(f, "       {}", a.action)?;
            }
        }
        Ok(())
    }
}

/// A target a step touches, e.g. `ontap:https://c1/svm1/volume/vmstore` or `host:kvm1`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LockKey(pub String);

impl LockKey {
    /// An ONTAP object: `ontap:<cluster>/<svm>/<kind>/<name>`.
    pub fn ontap(cluster: &str, svm: &str, kind: &str, name: &str) -> Self {
        LockKey(format!("ontap:{cluster}/{svm}/{kind}/{name}"))
    }

    /// A host: `host:<name>`.
    pub fn host(name: &str) -> Self {
        LockKey(format!("host:{name}"))
    }
}

impl fmt::Display for LockKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Per-target async locks shared by the runs of one process.
#[derive(Debug, Default)]
pub struct LockRegistry {
    locks: Mutex<HashMap<LockKey, Arc<tokio::sync::Mutex<()>>>>,
}

/// The locks one run holds; released on drop.
#[derive(Debug)]
pub struct HeldLocks {
    keys: Vec<LockKey>,
    _guards: Vec<tokio::sync::OwnedMutexGuard<()>>,
}

impl HeldLocks {
    /// The keys held, sorted.
    pub fn keys(&self) -> &[LockKey] {
        &self.keys
    }
}

impl LockRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The registry of this process, used unless a run is given another.
    pub fn global() -> Arc<LockRegistry> {
        static GLOBAL: OnceLock<Arc<LockRegistry>> = OnceLock::new();
        GLOBAL.get_or_init(|| Arc::new(LockRegistry::new())).clone()
    }

    fn entry(&self, key: &LockKey) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(key.clone()).or_default().clone()
    }

    /// Takes every key, in sorted order (so two runs never wait on each other in a cycle),
    /// waiting for runs that hold any of them.
    pub async fn acquire(&self, keys: impl IntoIterator<Item = LockKey>) -> HeldLocks {
        let keys: Vec<LockKey> = keys
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut guards = Vec::with_capacity(keys.len());
        for k in &keys {
            guards.push(self.entry(k).lock_owned().await);
        }
        HeldLocks {
            keys,
            _guards: guards,
        }
    }

    /// True when some run holds `key` now.
    pub fn is_held(&self, key: &LockKey) -> bool {
        self.entry(key).try_lock().is_err()
    }
}

/// Where a step is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum StepState<O> {
    /// Not started.
    Pending,
    /// Recorded as started; its result was not recorded (running, or the process died).
    Started,
    /// Applied.
    Done {
        /// Whether it changed anything.
        changed: bool,
        /// What the undo needs.
        output: O,
    },
    /// Its apply failed (it may have half happened).
    Failed {
        /// The error, rendered.
        error: String,
    },
    /// Its undo is running (or the process died during it).
    Undoing {
        /// The apply's output, if it was recorded.
        output: Option<O>,
    },
    /// Undone (or there was nothing to undo).
    Undone,
    /// Its undo failed.
    UndoFailed {
        /// The apply's output, if it was recorded.
        output: Option<O>,
        /// The error, rendered.
        error: String,
    },
}

impl<O> StepState<O> {
    /// True if the step may have left something behind.
    pub fn may_be_applied(&self) -> bool {
        matches!(
            self,
            StepState::Started
                | StepState::Done { .. }
                | StepState::Failed { .. }
                | StepState::Undoing { .. }
                | StepState::UndoFailed { .. }
        )
    }

    fn output(&self) -> Option<&O> {
        match self {
            StepState::Done { output, .. } => Some(output),
            StepState::Undoing { output } | StepState::UndoFailed { output, .. } => output.as_ref(),
            _ => None,
        }
    }
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Steps are being applied (or the process died while they were).
    Running,
    /// Every step applied.
    Completed,
    /// Undoing after a failure (or the process died while it was).
    Unwinding,
    /// Every applied step undone: a clean slate.
    Unwound,
    /// An undo failed, or a failure came after a point of no return.
    NeedsAttention,
}

impl RunStatus {
    /// True for runs that ended (completed or unwound).
    pub fn is_finished(self) -> bool {
        matches!(self, RunStatus::Completed | RunStatus::Unwound)
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Unwinding => "unwinding",
            RunStatus::Unwound => "unwound",
            RunStatus::NeedsAttention => "needs attention",
        })
    }
}

/// One step in a journal.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "S: Step")]
pub struct JournalEntry<S: Step> {
    /// The step.
    pub step: S,
    /// Where it is.
    pub state: StepState<S::Output>,
}

/// The record of one run: what the file holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "S: Step")]
pub struct JournalDoc<S: Step> {
    /// [`JOURNAL_FORMAT`].
    pub format: u32,
    /// The workflow's name.
    pub workflow: String,
    /// The run's id.
    pub run_id: uuid::Uuid,
    /// Where the run is.
    pub status: RunStatus,
    /// The steps, in order.
    pub steps: Vec<JournalEntry<S>>,
}

/// Where a journal lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JournalTarget {
    /// Only in memory (lost with the process).
    Memory,
    /// A JSON file, rewritten atomically (write, fsync, rename, fsync of the directory)
    /// before and after each step.
    File(PathBuf),
}

/// An exclusive `flock` on `JOURNAL.lock`, held while a run or a recovery uses the file.
#[derive(Debug)]
pub struct JournalLock {
    path: PathBuf,
    _lock: Flock<File>,
}

impl JournalLock {
    /// Takes the lock of journal `journal` without waiting; [`Error::JournalBusy`] when
    /// another process (or another open in this one) holds it.
    pub fn acquire(journal: &Path) -> Result<JournalLock> {
        let mut name = journal.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| Error::JournalIo {
                path: path.clone(),
                operation: "lock",
                source,
            })?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(JournalLock { path, _lock: lock }),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Err(Error::JournalBusy { path }),
            Err((_, errno)) => Err(Error::JournalIo {
                path,
                operation: "lock",
                source: std::io::Error::from(errno),
            }),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A step's progress, as told to an [`Observer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StepProgress<'a> {
    /// Recorded as started; its apply runs next.
    Started,
    /// Applied; whether it changed anything.
    Done {
        /// Whether it changed anything.
        changed: bool,
    },
    /// Its apply failed.
    Failed {
        /// The error, rendered.
        error: &'a str,
    },
    /// Its undo runs next.
    Undoing,
    /// Undone (or there was nothing to undo).
    Undone,
    /// Its undo failed.
    UndoFailed {
        /// The error, rendered.
        error: &'a str,
    },
}

/// One journaled change of a step's state (see [`Saga::observe`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StepEvent<'a> {
    /// The workflow's name.
    pub workflow: &'a str,
    /// 0-based step index.
    pub index: usize,
    /// Number of steps in the run.
    pub count: usize,
    /// The step's label.
    pub label: &'a str,
    /// Where the step now is.
    pub progress: StepProgress<'a>,
}

/// Called after each step state change is journaled, in the run's task: progress
/// displays and timings. Keep it quick; it cannot change the run.
#[derive(Clone)]
pub struct Observer(Arc<dyn Fn(&StepEvent<'_>) + Send + Sync>);

impl Observer {
    /// An observer calling `f` for every event.
    pub fn new(f: impl Fn(&StepEvent<'_>) + Send + Sync + 'static) -> Self {
        Observer(Arc::new(f))
    }
}

impl fmt::Debug for Observer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Observer")
    }
}

/// A journal being written.
#[derive(Debug)]
pub struct Journal<S: Step> {
    doc: JournalDoc<S>,
    target: JournalTarget,
    _lock: Option<JournalLock>,
    observer: Option<Observer>,
}

impl<S: Step> Journal<S> {
    /// The record.
    pub fn doc(&self) -> &JournalDoc<S> {
        &self.doc
    }

    /// Reads a journal file (no lock taken).
    pub fn read(path: &Path) -> Result<JournalDoc<S>> {
        let bytes = std::fs::read(path).map_err(|source| Error::JournalIo {
            path: path.to_owned(),
            operation: "read",
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|source| Error::JournalDecode {
            path: path.to_owned(),
            source,
        })
    }

    fn save(&self) -> Result<()> {
        let JournalTarget::File(path) = &self.target else {
            return Ok(());
        };
        let io = |operation, source| Error::JournalIo {
            path: path.clone(),
            operation,
            source,
        };
        let bytes =
            serde_json::to_vec_pretty(&self.doc).map_err(|source| Error::JournalDecode {
                path: path.clone(),
                source,
            })?;
        let mut tmp_name = path.as_os_str().to_owned();
        tmp_name.push(".tmp");
        let tmp = PathBuf::from(tmp_name);
        let mut f = File::create(&tmp).map_err(|e| io("write", e))?;
        f.write_all(&bytes).map_err(|e| io("write", e))?;
        f.sync_all().map_err(|e| io("sync", e))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(|e| io("rename", e))?;
        // The rename is durable only once the directory is.
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io("sync", e))?;
        Ok(())
    }

    fn set(&mut self, index: usize, state: StepState<S::Output>) -> Result<()> {
        self.doc.steps[index].state = state;
        self.save()?;
        if let Some(observer) = &self.observer {
            let progress = match &self.doc.steps[index].state {
                StepState::Pending => return Ok(()),
                StepState::Started => StepProgress::Started,
                StepState::Done { changed, .. } => StepProgress::Done { changed: *changed },
                StepState::Failed { error } => StepProgress::Failed { error },
                StepState::Undoing { .. } => StepProgress::Undoing,
                StepState::Undone => StepProgress::Undone,
                StepState::UndoFailed { error, .. } => StepProgress::UndoFailed { error },
            };
            let label = self.doc.steps[index].step.label();
            (observer.0)(&StepEvent {
                workflow: &self.doc.workflow,
                index,
                count: self.doc.steps.len(),
                label: &label,
                progress,
            });
        }
        Ok(())
    }

    fn set_status(&mut self, status: RunStatus) -> Result<()> {
        self.doc.status = status;
        self.save()
    }
}

/// Where a run is stopped on purpose, standing in for a crash (`kill -9`) in tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// After step `k` (0-based) is journaled as started, before it runs.
    BeforeApply(usize),
    /// After step `k` ran, before its result is journaled.
    AfterApply(usize),
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// Steps changed things; `changed` of them did.
    Applied {
        /// How many steps changed something.
        changed: usize,
    },
    /// Everything already was as asked; nothing changed.
    AlreadyApplied,
    /// (From [`recover`]) the run was unwound to a clean slate; `undone` steps changed
    /// something while undoing.
    Unwound {
        /// How many undos changed something.
        undone: usize,
    },
    /// (From [`recover`]) the journal's run had already finished; nothing was done.
    NothingToRecover,
}

impl fmt::Display for RunOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunOutcome::Applied { changed } => write!(f, "applied ({changed} step(s) changed)"),
            RunOutcome::AlreadyApplied => f.write_str("already applied: nothing changed"),
            RunOutcome::Unwound { undone } => write!(f, "unwound ({undone} step(s) undone)"),
            RunOutcome::NothingToRecover => f.write_str("nothing to recover"),
        }
    }
}

/// What a finished run did.
#[derive(Debug, Clone)]
pub struct RunReport<S: Step> {
    /// How it ended.
    pub outcome: RunOutcome,
    /// The final journal.
    pub journal: JournalDoc<S>,
}

/// How [`recover`] treats an interrupted run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoverMode {
    /// Undo every step that may have been applied, in reverse: a clean slate. A run that
    /// passed a point of no return is resumed instead.
    Unwind,
    /// Apply the remaining steps (the interrupted one again: steps are idempotent); a
    /// failure unwinds as in a normal run.
    Resume,
}

/// A workflow ready to run: a name and a list of typed steps.
#[derive(Debug)]
pub struct Saga<S: Step> {
    workflow: String,
    steps: Vec<S>,
    journal: JournalTarget,
    locks: Arc<LockRegistry>,
    crash: Option<CrashPoint>,
    observer: Option<Observer>,
}

impl<S: Step> Saga<S> {
    /// A workflow named `workflow` with `steps`, journaled in memory, locking through
    /// [`LockRegistry::global`].
    pub fn new(workflow: impl Into<String>, steps: Vec<S>) -> Self {
        Saga {
            workflow: workflow.into(),
            steps,
            journal: JournalTarget::Memory,
            locks: LockRegistry::global(),
            crash: None,
            observer: None,
        }
    }

    /// Tells `observer` of every step state change of the run (for progress output: the
    /// demo prints each step as it starts and ends, with its duration).
    pub fn observe(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Journals to this file (see [`JournalTarget::File`]).
    pub fn journal_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.journal = JournalTarget::File(path.into());
        self
    }

    /// Uses this lock registry instead of the process-wide one.
    pub fn lock_registry(mut self, locks: Arc<LockRegistry>) -> Self {
        self.locks = locks;
        self
    }

    /// Test hook: stop at `point` as if the process had been killed.
    pub fn crash_at(mut self, point: CrashPoint) -> Self {
        self.crash = Some(point);
        self
    }

    /// The workflow's name.
    pub fn workflow(&self) -> &str {
        &self.workflow
    }

    /// The steps.
    pub fn steps(&self) -> &[S] {
        &self.steps
    }

    /// Everything the run would do, in order; nothing is touched.
    pub fn plan(&self) -> Plan {
        plan_of(&self.workflow, &self.steps)
    }

    /// The targets the run locks, sorted.
    pub fn lock_keys(&self) -> Vec<LockKey> {
        lock_keys(&self.steps)
    }

    /// Runs every step under the journal and the locks. On failure, unwinds (see the module
    /// documentation) and returns [`Error::StepFailed`] or [`Error::NeedsAttention`].
    pub async fn run(self, env: &S::Env) -> Result<RunReport<S>> {
        let lock = match &self.journal {
            JournalTarget::File(path) => {
                let lock = JournalLock::acquire(path)?;
                if path.exists() {
                    let old = Journal::<S>::read(path)?;
                    if !old.status.is_finished() {
                        return Err(Error::JournalUnfinished {
                            path: path.clone(),
                            status: old.status.to_string(),
                        });
                    }
                }
                Some(lock)
            }
            JournalTarget::Memory => None,
        };
        let _held = self.locks.acquire(lock_keys(&self.steps)).await;
        let mut journal = Journal {
            doc: JournalDoc {
                format: JOURNAL_FORMAT,
                workflow: self.workflow.clone(),
                run_id: uuid::Uuid::new_v4(),
                status: RunStatus::Running,
                steps: self
                    .steps
                    .into_iter()
                    .map(|step| JournalEntry {
                        step,
                        state: StepState::Pending,
                    })
                    .collect(),
            },
            target: self.journal,
            _lock: lock,
            observer: self.observer,
        };
        journal.save()?;
        tracing::info!(workflow = %journal.doc.workflow, run = %journal.doc.run_id, "run started");
        forward(&mut journal, env, 0, self.crash).await
    }
}

fn plan_of<S: Step>(workflow: &str, steps: &[S]) -> Plan {
    let mut actions = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        let label = s.label();
        for action in s.planned() {
            actions.push(PlannedAction {
                step: i,
                step_label: label.clone(),
                action,
            });
        }
    }
    Plan {
        workflow: workflow.to_owned(),
        steps: steps.iter().map(Step::label).collect(),
        actions,
    }
}

fn lock_keys<S: Step>(steps: &[S]) -> Vec<LockKey> {
    steps
        .iter()
        .flat_map(Step::locks)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Applies steps `from..`, then marks the run completed; unwinds on failure.
async fn forward<S: Step>(
    journal: &mut Journal<S>,
    env: &S::Env,
    from: usize,
    crash: Option<CrashPoint>,
) -> Result<RunReport<S>> {
    let n = journal.doc.steps.len();
    for i in from..n {
        let step = journal.doc.steps[i].step.clone();
        // A step that may have run before the crash: if it now finds its work done, that
        // work is most likely its own, so it is undone on a later failure.
        let uncertain = journal.doc.steps[i].state.may_be_applied();
        journal.set(i, StepState::Started)?;
        if crash == Some(CrashPoint::BeforeApply(i)) {
            return Err(interrupted(journal, i));
        }
        tracing::info!(step = %step.label(), index = i, "applying");
        let result = step.apply(env).await;
        if crash == Some(CrashPoint::AfterApply(i)) {
            return Err(interrupted(journal, i));
        }
        match result {
            Ok(applied) => {
                journal.set(
                    i,
                    StepState::Done {
                        changed: applied.changed || uncertain,
                        output: applied.output,
                    },
                )?;
            }
            Err(cause) => {
                tracing::warn!(step = %step.label(), index = i, error = %cause, "step failed");
                journal.set(
                    i,
                    StepState::Failed {
                        error: error_chain(&cause),
                    },
                )?;
                return Err(fail(journal, env, i, cause).await);
            }
        }
    }
    journal.set_status(RunStatus::Completed)?;
    let changed = journal
        .doc
        .steps
        .iter()
        .filter(|e| matches!(e.state, StepState::Done { changed: true, .. }))
        .count();
    let outcome = if changed == 0 {
        RunOutcome::AlreadyApplied
    } else {
        RunOutcome::Applied { changed }
    };
    tracing::info!(workflow = %journal.doc.workflow, %outcome, "run completed");
    Ok(RunReport {
        outcome,
        journal: journal.doc.clone(),
    })
}

fn interrupted<S: Step>(journal: &Journal<S>, index: usize) -> Error {
    Error::Interrupted {
        workflow: journal.doc.workflow.clone(),
        index,
        step: journal.doc.steps[index].step.label(),
    }
}

/// The error and its sources, `: `-joined, for the journal.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// After step `index` failed with `cause`: unwind, or stop at a point of no return.
async fn fail<S: Step>(
    journal: &mut Journal<S>,
    env: &S::Env,
    index: usize,
    cause: StepError,
) -> Error {
    let workflow = journal.doc.workflow.clone();
    let step = journal.doc.steps[index].step.label();
    if let Some(irreversible) = journal.doc.steps[..index]
        .iter()
        .rev()
        .find(|e| !e.step.reversible() && matches!(e.state, StepState::Done { .. }))
    {
        let undo = Some(Box::new(FailedUndo {
            step: irreversible.step.label(),
            error: None,
        }));
        if let Err(e) = journal.set_status(RunStatus::NeedsAttention) {
            return e;
        }
        return Error::NeedsAttention {
            workflow,
            index,
            step,
            source: Box::new(cause),
            undo,
            remaining: remaining(journal),
        };
    }
    match unwind(journal, env).await {
        Ok(undone) => Error::StepFailed {
            workflow,
            index,
            step,
            source: Box::new(cause),
            undone,
        },
        Err(Unwind::Journal(e)) => e,
        Err(Unwind::Undo { label, error }) => Error::NeedsAttention {
            workflow,
            index,
            step,
            source: Box::new(cause),
            undo: Some(Box::new(FailedUndo {
                step: label,
                error: Some(error_chain(&error)),
            })),
            remaining: remaining(journal),
        },
    }
}

fn remaining<S: Step>(journal: &Journal<S>) -> Vec<String> {
    journal
        .doc
        .steps
        .iter()
        .filter(|e| e.state.may_be_applied())
        .map(|e| e.step.label())
        .collect()
}

enum Unwind {
    Journal(Error),
    Undo { label: String, error: StepError },
}

/// Undoes every step that may be applied, last first. Returns how many undos changed
/// something.
async fn unwind<S: Step>(journal: &mut Journal<S>, env: &S::Env) -> Result<usize, Unwind> {
    journal
        .set_status(RunStatus::Unwinding)
        .map_err(Unwind::Journal)?;
    let mut undone = 0;
    for i in (0..journal.doc.steps.len()).rev() {
        let entry = &journal.doc.steps[i];
        if !entry.state.may_be_applied() {
            continue;
        }
        // A destructive step must be atomic (ONTAP's DELETE job deletes or fails): when it
        // failed, it did not happen, and it has no undo anyway.
        if !entry.step.reversible() && matches!(entry.state, StepState::Failed { .. }) {
            journal.set(i, StepState::Undone).map_err(Unwind::Journal)?;
            continue;
        }
        if matches!(entry.state, StepState::Done { changed: false, .. }) {
            // It found everything in place: what it found was not ours to remove.
            journal.set(i, StepState::Undone).map_err(Unwind::Journal)?;
            continue;
        }
        let step = entry.step.clone();
        let output = entry.state.output().cloned();
        journal
            .set(
                i,
                StepState::Undoing {
                    output: output.clone(),
                },
            )
            .map_err(Unwind::Journal)?;
        tracing::info!(step = %step.label(), index = i, "undoing");
        match step.undo(env, output.as_ref()).await {
            Ok(changed) => {
                undone += usize::from(changed);
                journal.set(i, StepState::Undone).map_err(Unwind::Journal)?;
            }
            Err(error) => {
                tracing::error!(step = %step.label(), index = i, error = %error_chain(&error), "undo failed");
                journal
                    .set(
                        i,
                        StepState::UndoFailed {
                            output,
                            error: error_chain(&error),
                        },
                    )
                    .map_err(Unwind::Journal)?;
                journal
                    .set_status(RunStatus::NeedsAttention)
                    .map_err(Unwind::Journal)?;
                return Err(Unwind::Undo {
                    label: step.label(),
                    error,
                });
            }
        }
    }
    journal
        .set_status(RunStatus::Unwound)
        .map_err(Unwind::Journal)?;
    Ok(undone)
}

/// Finishes or unwinds the run recorded in journal file `path`, interrupted by a crash, a
/// `kill -9` or a failed undo. Takes the journal's file lock and the run's target locks.
pub async fn recover<S: Step>(
    path: &Path,
    env: &S::Env,
    mode: RecoverMode,
    locks: Arc<LockRegistry>,
) -> Result<RunReport<S>> {
    let lock = JournalLock::acquire(path)?;
    let doc = Journal::<S>::read(path)?;
    if doc.status.is_finished() {
        return Ok(RunReport {
            outcome: RunOutcome::NothingToRecover,
            journal: doc,
        });
    }
    let steps: Vec<S> = doc.steps.iter().map(|e| e.step.clone()).collect();
    let _held = locks.acquire(lock_keys(&steps)).await;
    // A destructive step that ran, or may have (started, then the crash): forward only.
    let past_no_return = doc.steps.iter().any(|e| {
        !e.step.reversible() && matches!(e.state, StepState::Done { .. } | StepState::Started)
    });
    let all_done = doc
        .steps
        .iter()
        .all(|e| matches!(e.state, StepState::Done { .. }));
    let was_unwinding = matches!(doc.status, RunStatus::Unwinding | RunStatus::NeedsAttention);
    let resume = past_no_return || all_done || (mode == RecoverMode::Resume && !was_unwinding);
    let mut journal = Journal {
        doc,
        target: JournalTarget::File(path.to_owned()),
        _lock: Some(lock),
        observer: None,
    };
    tracing::info!(workflow = %journal.doc.workflow, run = %journal.doc.run_id, ?mode, resume, "recovering");
    if resume {
        let from = journal
            .doc
            .steps
            .iter()
            .position(|e| !matches!(e.state, StepState::Done { .. }))
            .unwrap_or(journal.doc.steps.len());
        journal.set_status(RunStatus::Running)?;
        return forward(&mut journal, env, from, None).await;
    }
    let workflow = journal.doc.workflow.clone();
    match unwind(&mut journal, env).await {
        Ok(undone) => Ok(RunReport {
            outcome: RunOutcome::Unwound { undone },
            journal: journal.doc.clone(),
        }),
        Err(Unwind::Journal(e)) => Err(e),
        Err(Unwind::Undo { label, error }) => {
            let remaining = remaining(&journal);
            Err(Error::NeedsAttention {
                workflow,
                index: journal
                    .doc
                    .steps
                    .iter()
                    .position(|e| e.step.label() == label)
                    .unwrap_or(0),
                step: label.clone(),
                undo: Some(Box::new(FailedUndo {
                    step: label,
                    error: Some(error_chain(&error)),
                })),
                source: Box::new(error),
                remaining,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[derive(Debug, Default)]
    struct ToyEnv {
        log: Mutex<Vec<String>>,
        present: Mutex<BTreeSet<String>>,
        fail_apply: Mutex<BTreeSet<String>>,
        fail_undo: Mutex<BTreeSet<String>>,
    }

    impl ToyEnv {
        fn log(&self) -> Vec<String> {
            self.log.lock().unwrap().clone()
        }
        fn present(&self) -> Vec<String> {
            self.present.lock().unwrap().iter().cloned().collect()
        }
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    struct Toy {
        name: String,
        irreversible: bool,
    }

    fn toy(name: &str) -> Toy {
        Toy {
            name: name.into(),
            irreversible: false,
        }
    }

    #[async_trait::async_trait]
    impl Step for Toy {
        type Env = ToyEnv;
        type Output = String;

        fn label(&self) -> String {
            format!("Make {}", self.name)
        }

        fn planned(&self) -> Vec<ActionKind> {
            vec![ActionKind::HostCommand {
                host: "h".into(),
                command: format!("make {}", self.name),
            }]
        }

        fn locks(&self) -> Vec<LockKey> {
            vec![LockKey::host("h"), LockKey(format!("toy:{}", self.name))]
        }

        fn reversible(&self) -> bool {
            !self.irreversible
        }

        async fn apply(&self, env: &ToyEnv) -> Result<Applied<String>, StepError> {
            env.log.lock().unwrap().push(format!("apply {}", self.name));
            if env.fail_apply.lock().unwrap().contains(&self.name) {
                return Err(StepError::Injected);
            }
            let new = env.present.lock().unwrap().insert(self.name.clone());
            let out = format!("id-{}", self.name);
            Ok(if new {
                Applied::changed(out)
            } else {
                Applied::unchanged(out)
            })
        }

        async fn undo(&self, env: &ToyEnv, output: Option<&String>) -> Result<bool, StepError> {
            env.log
                .lock()
                .unwrap()
                .push(format!("undo {} {output:?}", self.name));
            if env.fail_undo.lock().unwrap().remove(&self.name) {
                return Err(StepError::Injected);
            }
            Ok(env.present.lock().unwrap().remove(&self.name))
        }
    }

    fn saga(names: &[&str]) -> Saga<Toy> {
        Saga::new("toy", names.iter().map(|n| toy(n)).collect())
            .lock_registry(Arc::new(LockRegistry::new()))
    }

    #[tokio::test]
    async fn runs_in_order_and_reapplying_says_already_applied() {
        let env = ToyEnv::default();
        let report = saga(&["a", "b", "c"]).run(&env).await.unwrap();
        assert_eq!(report.outcome, RunOutcome::Applied { changed: 3 });
        assert_eq!(report.journal.status, RunStatus::Completed);
        assert_eq!(env.log(), ["apply a", "apply b", "apply c"]);
        let again = saga(&["a", "b", "c"]).run(&env).await.unwrap();
        assert_eq!(again.outcome, RunOutcome::AlreadyApplied);
        assert_eq!(
            again.outcome.to_string(),
            "already applied: nothing changed"
        );
    }

    #[tokio::test]
    async fn a_failure_unwinds_in_reverse_including_the_failed_step() {
        let env = ToyEnv::default();
        env.present.lock().unwrap().insert("b".into()); // b was there before
        env.fail_apply.lock().unwrap().insert("c".into());
        let err = saga(&["a", "b", "c", "d"]).run(&env).await.unwrap_err();
        let Error::StepFailed {
            index,
            step,
            undone,
            ..
        } = &err
        else {
            panic!("{err}");
        };
        assert_eq!((*index, step.as_str(), *undone), (2, "Make c", 1));
        // b found itself done: not undone (it was not ours); c may have half happened: undone
        // without output.
        assert_eq!(
            env.log(),
            [
                "apply a",
                "apply b",
                "apply c",
                "undo c None",
                "undo a Some(\"id-a\")"
            ]
        );
        assert_eq!(env.present(), ["b"]);
    }

    #[tokio::test]
    async fn a_failed_undo_stops_and_needs_attention_then_recover_finishes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("toy.json");
        let env = ToyEnv::default();
        env.fail_apply.lock().unwrap().insert("c".into());
        env.fail_undo.lock().unwrap().insert("b".into());
        let err = saga(&["a", "b", "c"])
            .journal_file(&path)
            .run(&env)
            .await
            .unwrap_err();
        assert!(err.needs_attention());
        assert_eq!(
            err.to_string(),
            "workflow toy needs attention: step 2 (Make c) failed, then undoing Make b \
             failed: injected failure; remaining: Make a, Make b"
        );
        assert_eq!(env.present(), ["a", "b"]);
        let doc = Journal::<Toy>::read(&path).unwrap();
        assert_eq!(doc.status, RunStatus::NeedsAttention);
        assert!(matches!(doc.steps[1].state, StepState::UndoFailed { .. }));
        assert!(matches!(doc.steps[2].state, StepState::Undone));
        // No temporary file is left next to the journal.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(names, ["toy.json", "toy.json.lock"]);

        let report = recover::<Toy>(
            &path,
            &env,
            RecoverMode::Unwind,
            Arc::new(LockRegistry::new()),
        )
        .await
        .unwrap();
        assert_eq!(report.outcome, RunOutcome::Unwound { undone: 2 });
        assert!(env.present().is_empty());
    }

    #[tokio::test]
    async fn a_failure_after_a_point_of_no_return_stops_and_recover_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("toy.json");
        let env = ToyEnv::default();
        env.fail_apply.lock().unwrap().insert("c".into());
        let mut steps = vec![toy("a"), toy("b"), toy("c")];
        steps[1].irreversible = true;
        let err = Saga::new("toy", steps)
            .journal_file(&path)
            .lock_registry(Arc::new(LockRegistry::new()))
            .run(&env)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "workflow toy needs attention: step 2 (Make c) failed, after Make b, which cannot \
             be undone; remaining: Make a, Make b, Make c"
        );
        assert_eq!(env.log(), ["apply a", "apply b", "apply c"]);
        env.fail_apply.lock().unwrap().clear();
        // Even asked to unwind, recovery goes forward past a point of no return.
        let report = recover::<Toy>(
            &path,
            &env,
            RecoverMode::Unwind,
            Arc::new(LockRegistry::new()),
        )
        .await
        .unwrap();
        assert_eq!(report.journal.status, RunStatus::Completed);
        assert_eq!(env.present(), ["a", "b", "c"]);
    }

    #[tokio::test]
    async fn plan_lists_actions_and_locks_are_sorted_and_shared() {
        let s = saga(&["b", "a"]);
        assert_eq!(
            s.plan().to_string(),
            "plan for toy (2 steps)\n  1. Make b\n       h$ make b\n  2. Make a\n       h$ make a\n"
        );
        assert_eq!(
            s.lock_keys(),
            [
                LockKey::host("h"),
                LockKey("toy:a".into()),
                LockKey("toy:b".into())
            ]
        );
        let reg = LockRegistry::new();
        let held = reg.acquire(s.lock_keys()).await;
        assert!(reg.is_held(&LockKey::host("h")));
        assert!(!reg.is_held(&LockKey::host("other")));
        drop(held);
        assert!(!reg.is_held(&LockKey::host("h")));
    }

    // The observer sees every journaled state change, in order.
    #[tokio::test]
    async fn an_observer_sees_each_step_start_end_and_undo() {
        let env = ToyEnv::default();
        env.fail_apply.lock().unwrap().insert("c".into());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let observer = Observer::new(move |e| {
            let what = match e.progress {
                StepProgress::Started => "started".to_owned(),
                StepProgress::Done { changed } => format!("done changed={changed}"),
                StepProgress::Failed { .. } => "failed".to_owned(),
                StepProgress::Undoing => "undoing".to_owned(),
                StepProgress::Undone => "undone".to_owned(),
                StepProgress::UndoFailed { .. } => "undo failed".to_owned(),
            };
            sink.lock().unwrap().push(format!(
                "{} {}/{} {} {what}",
                e.workflow,
                e.index + 1,
                e.count,
                e.label
            ));
        });
        let err = saga(&["a", "b", "c"]).observe(observer).run(&env).await;
        assert!(err.is_err());
        assert_eq!(
            *seen.lock().unwrap(),
            [
                "toy 1/3 Make a started",
                "toy 1/3 Make a done changed=true",
                "toy 2/3 Make b started",
                "toy 2/3 Make b done changed=true",
                "toy 3/3 Make c started",
                "toy 3/3 Make c failed",
                "toy 3/3 Make c undoing",
                "toy 3/3 Make c undone",
                "toy 2/3 Make b undoing",
                "toy 2/3 Make b undone",
                "toy 1/3 Make a undoing",
                "toy 1/3 Make a undone",
            ]
        );
    }
}
