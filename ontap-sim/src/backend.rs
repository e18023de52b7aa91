//! Backends realise what the store decides. The store owns semantics, validation and
//! identifiers; a [`Backend`] is told about every change *before* it is committed and may
//! refuse it. [`MemoryBackend`] keeps nothing beyond the store; a kernel backend (btrfs
//! subvolumes, knfsd exports, LIO LUNs, nvmet) can implement the same trait.

use std::fmt;
use std::sync::Mutex;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::error::{ApiError, JobFailure};

/// One change to realise. Records are the full JSON records as the API shows them.
///
/// How hooks map onto changes (collection names are those of [`crate::store::coll`] plus
/// the SAN helper's `luns`, `igroups`, `lun_maps`, `nvme_namespaces`, ...):
/// volume created / FlexClone created (`clone.is_flexclone`) → `Created{volumes}`;
/// resized or renamed → `Modified{volumes}` (compare `space.size`); deleted →
/// `Deleted{volumes}`; snapshot created/deleted → `Created`/`Deleted{snapshots}`;
/// export rules changed → `Modified{export_policies}` (rules are inline in the policy);
/// CIFS share created/deleted → `Created`/`Deleted{cifs_shares}`; file clone →
/// [`Change::FileCloned`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Change {
    /// A record is about to be created.
    Created {
        /// Store collection name.
        collection: String,
        /// The new record.
        record: Value,
    },
    /// A record is about to change.
    Modified {
        /// Store collection name.
        collection: String,
        /// The record before.
        before: Value,
        /// The record after.
        after: Value,
    },
    /// A record is about to be deleted.
    Deleted {
        /// Store collection name.
        collection: String,
        /// The record being deleted.
        record: Value,
    },
    /// A file is about to be cloned inside a volume.
    FileCloned {
        /// The volume record.
        volume: Value,
        /// Source path relative to the volume root, or to the snapshot's root when
        /// `source_snapshot` is set (the request named `.snapshot/<name>/<path>`).
        source_path: String,
        /// UUID of the snapshot the source is read from, when the request's source path
        /// started with `.snapshot/<name>/` (single-file restore from a snapshot).
        source_snapshot: Option<String>,
        /// Destination path relative to the volume root.
        destination_path: String,
    },
    /// CHAP passwords of an iSCSI credential are about to be set (just before the
    /// `Created`/`Modified{iscsi_credentials}` of the same request). The store, the state
    /// file and the request log never hold them; a backend that needs them keeps them.
    /// A `None` password is unchanged (a PATCH that only renames users).
    ChapSet {
        /// SVM UUID.
        svm_uuid: String,
        /// Initiator name.
        initiator: String,
        /// Inbound CHAP user.
        inbound_user: Option<String>,
        /// Inbound CHAP password.
        inbound_password: Option<ChapSecret>,
        /// Outbound (mutual) CHAP user.
        outbound_user: Option<String>,
        /// Outbound (mutual) CHAP password.
        outbound_password: Option<ChapSecret>,
    },
}

/// A CHAP password: redacted in `Debug`, compared by value.
#[derive(Clone)]
pub struct ChapSecret(SecretString);

impl ChapSecret {
    /// Wraps a password.
    pub fn new(secret: SecretString) -> Self {
        ChapSecret(secret)
    }

    /// The password.
    pub fn secret(&self) -> &SecretString {
        &self.0
    }
}

impl fmt::Debug for ChapSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChapSecret(<redacted>)")
    }
}

impl PartialEq for ChapSecret {
    fn eq(&self, other: &Self) -> bool {
        self.0.expose_secret() == other.0.expose_secret()
    }
}

impl Change {
    /// The collection the change is about (`volumes` for file clones).
    pub fn collection(&self) -> &str {
        match self {
            Change::Created { collection, .. }
            | Change::Modified { collection, .. }
            | Change::Deleted { collection, .. } => collection,
            Change::FileCloned { .. } => crate::store::coll::VOLUMES,
            Change::ChapSet { .. } => "iscsi_credentials",
        }
    }
}

/// A backend refused or failed to realise a change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("backend refused the change (code {code}): {message}")]
#[non_exhaustive]
pub struct BackendError {
    /// ONTAP error code to report.
    pub code: i64,
    /// Message to report.
    pub message: String,
}

impl BackendError {
    /// A refusal with an ONTAP code and message.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl From<BackendError> for ApiError {
    fn from(e: BackendError) -> Self {
        ApiError::new(500, e.code.to_string(), e.message)
    }
}

impl From<BackendError> for JobFailure {
    fn from(e: BackendError) -> Self {
        JobFailure::new(e.code, e.message)
    }
}

/// Realisation hooks. Called outside the store lock, before the change is committed;
/// an error aborts the change (the HTTP call or the job fails with its code and message).
#[async_trait]
pub trait Backend: Send + Sync + fmt::Debug {
    /// Called once when the server starts, with the whole initial state (seeded or
    /// reloaded from `--state`), so a backend can reconcile what already exists (walk it
    /// with [`crate::store::Store::iter`]). The default does nothing.
    async fn start(&self, _state: &crate::store::Store) -> Result<(), BackendError> {
        Ok(())
    }

    /// Realises one change.
    async fn apply(&self, change: &Change) -> Result<(), BackendError>;
}

/// Keeps nothing but a log of the changes it was asked to realise (for tests).
#[derive(Debug, Default)]
pub struct MemoryBackend {
    log: Mutex<Vec<Change>>,
}

impl MemoryBackend {
    /// A new, empty backend.
    pub fn new() -> Self {
        Self::default()
    }

    /// The changes applied so far, oldest first.
    pub fn changes(&self) -> Vec<Change> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl Backend for MemoryBackend {
    async fn apply(&self, change: &Change) -> Result<(), BackendError> {
        if let Ok(mut l) = self.log.lock() {
            // Bulk seeds create many volumes; keep the log bounded.
            if l.len() >= 10_000 {
                l.remove(0);
            }
            l.push(change.clone());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chap_secrets_are_redacted_and_compared_by_value() {
        let c = Change::ChapSet {
            svm_uuid: "s".into(),
            initiator: "iqn.1994-05.com.redhat:h".into(),
            inbound_user: Some("u".into()),
            inbound_password: Some(ChapSecret::new(SecretString::from("pw-123456"))),
            outbound_user: None,
            outbound_password: None,
        };
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("pw-123456"), "{dbg}");
        assert!(dbg.contains("ChapSecret(<redacted>)"), "{dbg}");
        assert_eq!(c.collection(), "iscsi_credentials");
        assert_eq!(
            ChapSecret::new(SecretString::from("a")),
            ChapSecret::new(SecretString::from("a"))
        );
        assert_ne!(
            ChapSecret::new(SecretString::from("a")),
            ChapSecret::new(SecretString::from("b"))
        );
    }
}
