//! The crate's errors: [`Error`] for workflows and journals, [`StepError`] for one step.

use std::path::PathBuf;

/// Why one step's apply or undo failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StepError {
    /// An ONTAP call failed.
    #[error("ONTAP {operation} failed")]
    Ontap {
        /// What was asked, e.g. `create volume svm1/vmstore`.
        operation: String,
        /// The client's error.
        #[source]
        source: Box<ontap_client::Error>,
    },
    /// A host command or file change failed.
    #[error("host {host}: {operation} failed")]
    Host {
        /// The host's name.
        host: String,
        /// What was asked, e.g. `mount /mnt/vmstore`.
        operation: String,
        /// The host layer's error.
        #[source]
        source: Box<host_storage::Error>,
    },
    /// A libvirt call failed.
    #[error("host {host}: libvirt {operation} failed")]
    Libvirt {
        /// The host's name.
        host: String,
        /// What was asked, e.g. `define pool vmstore`.
        operation: String,
        /// The libvirt layer's error.
        #[source]
        source: Box<libvirt_pools::Error>,
    },
    /// A cluster file-system step failed on a host.
    #[error("host {host}: {operation} failed")]
    ClusterFs {
        /// The host's name.
        host: String,
        /// What was asked, e.g. `format OCFS2 on /dev/dm-3`.
        operation: String,
        /// The cluster-fs layer's error.
        #[source]
        source: Box<cluster_fs::Error>,
    },
    /// A host lacks an identity the step needs (an iSCSI initiator name, an interconnect
    /// address).
    #[error("host {host} has no {what}")]
    NoHostIdentity {
        /// The host's name.
        host: String,
        /// What is missing, e.g. `iSCSI initiator name`.
        what: &'static str,
    },
    /// A step names a secret the environment was not given (journals never hold secrets:
    /// give it again with [`crate::Env::secret`] before a recovery).
    #[error("no secret named {name} in this environment")]
    MissingSecret {
        /// The secret's name.
        name: String,
    },
    /// A step names a host the environment does not have.
    #[error("no host named {host} in this environment")]
    UnknownHost {
        /// The missing host.
        host: String,
    },
    /// ONTAP answered without a value the step needs.
    #[error("ONTAP {operation}: the answer has no {field}")]
    MissingField {
        /// What was asked.
        operation: String,
        /// The missing field.
        field: &'static str,
    },
    /// The step cannot be undone (it destroyed data); recovery goes forward only.
    #[error("{step} cannot be undone")]
    Irreversible {
        /// The step.
        step: String,
    },
    /// The host runs another o2cb cluster, and o2cb runs one per host: the datastore must
    /// name that cluster ([`crate::block::BlockDatastore::o2cb_cluster`]), or the other
    /// cluster must be taken down first.
    #[error(
        "host {host} runs o2cb cluster {online}, so {wanted} cannot be registered \
         (o2cb runs one cluster per host)"
    )]
    OtherO2cbCluster {
        /// The host's name.
        host: String,
        /// The cluster registered there.
        online: String,
        /// The cluster the step registers.
        wanted: String,
        /// o2cb's error.
        #[source]
        source: Box<cluster_fs::Error>,
    },
    /// The test hook made this step fail.
    #[error("injected failure")]
    Injected,
}

/// The undo that stopped an unwind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedUndo {
    /// The step (whose undo failed, or which cannot be undone).
    pub step: String,
    /// Why its undo failed, rendered with its causes (the typed error is in the tracing
    /// log); `None` when the step cannot be undone.
    pub error: Option<String>,
}

/// Everything a workflow, its journal or its planning can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Step `index` failed; every step done before it was undone (a clean slate).
    #[error("workflow {workflow}: step {index} ({step}) failed; unwound {undone} step(s)")]
    StepFailed {
        /// The workflow's name.
        workflow: String,
        /// 0-based index of the failed step.
        index: usize,
        /// The failed step.
        step: String,
        /// Why it failed.
        #[source]
        source: Box<StepError>,
        /// How many steps the unwind undid (changed something).
        undone: usize,
    },
    /// A step failed and an undo failed too, or a step failed after a step that cannot be
    /// undone: unwinding stopped. `remaining` lists the steps still applied; run
    /// [`crate::saga::recover`] once the cause is fixed.
    #[error(
        "workflow {workflow} needs attention: step {index} ({step}) failed{}; remaining: {}",
        match undo.as_deref() {
            Some(FailedUndo { step, error: Some(e) }) => format!(", then undoing {step} failed: {e}"),
            Some(FailedUndo { step, error: None }) => format!(", after {step}, which cannot be undone"),
            None => String::new(),
        },
        remaining.join(", ")
    )]
    NeedsAttention {
        /// The workflow's name.
        workflow: String,
        /// 0-based index of the step whose failure started the unwind.
        index: usize,
        /// That step.
        step: String,
        /// Why it failed.
        #[source]
        source: Box<StepError>,
        /// The undo that failed, or the irreversible step that stopped the unwind.
        undo: Option<Box<FailedUndo>>,
        /// Steps still applied, in the order they were applied.
        remaining: Vec<String>,
    },
    /// The run stopped on purpose after journaling step `index` as started (a test hook
    /// standing in for a crash); [`crate::saga::recover`] finishes or unwinds it.
    #[error("workflow {workflow}: interrupted at step {index} ({step})")]
    Interrupted {
        /// The workflow's name.
        workflow: String,
        /// 0-based index of the step.
        index: usize,
        /// That step.
        step: String,
    },
    /// Reading, writing or locking a journal file failed.
    #[error("journal {path}: {operation} failed", path = path.display())]
    JournalIo {
        /// The journal file (or its lock file).
        path: PathBuf,
        /// What was done: `read`, `write`, `rename`, `sync`, `lock`.
        operation: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A journal file is not a journal of this workflow type.
    #[error("journal {path}: cannot decode", path = path.display())]
    JournalDecode {
        /// The journal file.
        path: PathBuf,
        /// The decoder's error.
        #[source]
        source: serde_json::Error,
    },
    /// Another process holds the journal's lock: the workflow is running elsewhere.
    #[error("journal {path} is locked by another process", path = path.display())]
    JournalBusy {
        /// The lock file.
        path: PathBuf,
    },
    /// The journal holds an unfinished run; recover it before starting another.
    #[error("journal {path} holds an unfinished run ({status}); run recover first", path = path.display())]
    JournalUnfinished {
        /// The journal file.
        path: PathBuf,
        /// Its run status.
        status: String,
    },
    /// Building a workflow needed ONTAP or host facts and could not get them.
    #[error("planning {workflow} failed")]
    Plan {
        /// The workflow's name.
        workflow: String,
        /// The failed lookup.
        #[source]
        source: Box<StepError>,
    },
    /// The SVM has no usable LIF with the `data_nfs` service.
    #[error("SVM {svm} has no up and enabled LIF offering data_nfs")]
    NoDataLif {
        /// The SVM.
        svm: String,
    },
    /// The SVM has no usable LIF with this data service (`data_iscsi`, `data_nvme_tcp`, ...).
    #[error("SVM {svm} has no up and enabled LIF offering {service}")]
    NoServiceLif {
        /// The SVM.
        svm: String,
        /// The service.
        service: String,
    },
    /// A datastore operation (snapshot, clone, restore, resize, protect, failover) failed.
    #[error("{operation} failed")]
    Operation {
        /// What was asked.
        operation: String,
        /// Why it failed.
        #[source]
        source: Box<StepError>,
    },
    /// Guests frozen for a snapshot could not be thawed: their file systems stay frozen
    /// until `virsh domfsthaw` succeeds.
    #[error(
        "host {host}: thawing {} failed (snapshot {})",
        domains.join(", "),
        if *snapshot_taken { "taken" } else { "not taken" }
    )]
    ThawFailed {
        /// The host.
        host: String,
        /// Domains still frozen.
        domains: Vec<String>,
        /// Whether the snapshot was taken.
        snapshot_taken: bool,
    },
    /// A request value is refused before anything runs.
    #[error("invalid {field} {value:?}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// The refused value.
        value: String,
        /// Why.
        reason: &'static str,
    },
}

impl Error {
    /// True when the run stopped with steps still applied that need an operator.
    pub fn needs_attention(&self) -> bool {
        matches!(self, Error::NeedsAttention { .. })
    }
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
