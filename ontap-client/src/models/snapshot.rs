//! Snapshots (`/api/storage/volumes/{volume.uuid}/snapshots`), including tamper-proof locking.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::common::{setters, string_enum, Links, NamedRef};

string_enum! {
    /// Snapshot state (`state`).
    pub enum SnapshotState {
        /// Complete and usable.
        Valid => "valid",
        /// Unusable.
        Invalid => "invalid",
        /// Partial.
        Partial => "partial",
        /// Being created.
        PreConversion => "pre_conversion",
    }
}

/// SnapLock lock of a snapshot (`snaplock`, 9.15+).
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SnapshotSnaplock {
    /// Lock expiry time (ISO-8601); the snapshot cannot be deleted before it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiry_time: Option<String>,
    /// True once the lock has expired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expired: Option<bool>,
    /// Remaining lock time (ISO-8601 duration).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_until_expiry: Option<String>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A snapshot record.
///
/// ```
/// use ontap_client::models::Snapshot;
///
/// let s: Snapshot = serde_json::from_str(r#"{"name":"s1","snaplock":{"expiry_time":"2030-01-01T00:00:00Z","expired":false}}"#).unwrap();
/// assert!(s.is_locked());
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Snapshot UUID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Snapshot name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Creation time (ISO-8601).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create_time: Option<String>,
    /// Time before which the snapshot may not be deleted (ISO-8601).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiry_time: Option<String>,
    /// SnapMirror label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapmirror_label: Option<String>,
    /// Owners holding the snapshot (such as `volume_clone`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owners: Option<Vec<String>>,
    /// State.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<SnapshotState>,
    /// Bytes unique to this snapshot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Volume of the snapshot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume: Option<NamedRef>,
    /// SVM of the snapshot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub svm: Option<NamedRef>,
    /// Lock expiry time (9.12-9.14 form; deprecated by `snaplock.expiry_time`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snaplock_expiry_time: Option<String>,
    /// Lock (9.15+ form).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snaplock: Option<SnapshotSnaplock>,
    /// HAL links.
    #[serde(rename = "_links", skip_serializing_if = "Option::is_none")]
    pub links: Option<Links>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Snapshot {
    /// True when a lock is recorded and not reported expired.
    pub fn is_locked(&self) -> bool {
        match &self.snaplock {
            Some(lock) if lock.expiry_time.is_some() => lock.expired != Some(true),
            _ => self.snaplock_expiry_time.is_some(),
        }
    }
}

/// Body of `POST .../snapshots`.
///
/// ```
/// use ontap_client::models::SnapshotCreate;
///
/// let body = SnapshotCreate::new("snapshot_copy").comment("Store this copy.");
/// assert_eq!(serde_json::to_string(&body).unwrap(), r#"{"name":"snapshot_copy","comment":"Store this copy."}"#);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SnapshotCreate {
    /// Snapshot name.
    pub name: String,
    /// Comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// No delete before this time (ISO-8601).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiry_time: Option<String>,
    /// SnapMirror label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapmirror_label: Option<String>,
    /// Lock until this time (9.12-9.14 form).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snaplock_expiry_time: Option<String>,
    /// Lock (9.15+ form).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snaplock: Option<SnapshotSnaplock>,
}

impl SnapshotCreate {
    /// A snapshot named `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    setters! {
        /// Comment.
        comment: into String,
        /// No delete before this time (ISO-8601).
        expiry_time: into String,
        /// SnapMirror label.
        snapmirror_label: into String,
        /// Lock until this time, 9.12-9.14 field `snaplock_expiry_time`.
        snaplock_expiry_time: into String,
        /// Lock until this time, 9.15+ field `snaplock.expiry_time`.
        snaplock_expiry => new snaplock.expiry_time: into String,
    }
}

/// Body of `PATCH .../snapshots/{uuid}`.
///
/// ```
/// use ontap_client::models::SnapshotPatch;
///
/// let body = SnapshotPatch::new().snaplock_expiry("2030-01-01T00:00:00Z");
/// assert_eq!(serde_json::to_string(&body).unwrap(), r#"{"snaplock":{"expiry_time":"2030-01-01T00:00:00Z"}}"#);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SnapshotPatch {
    /// New name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// No delete before this time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiry_time: Option<String>,
    /// SnapMirror label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapmirror_label: Option<String>,
    /// Lock until this time (9.12-9.14 form).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snaplock_expiry_time: Option<String>,
    /// Lock (9.15+ form).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snaplock: Option<SnapshotSnaplock>,
}

impl SnapshotPatch {
    /// An empty patch.
    pub fn new() -> Self {
        Self::default()
    }

    setters! {
        /// Rename.
        name: into String,
        /// Comment.
        comment: into String,
        /// No delete before this time (ISO-8601).
        expiry_time: into String,
        /// SnapMirror label.
        snapmirror_label: into String,
        /// Lock until this time, 9.12-9.14 field `snaplock_expiry_time`.
        snaplock_expiry_time: into String,
        /// Lock until this time, 9.15+ field `snaplock.expiry_time`.
        snaplock_expiry => new snaplock.expiry_time: into String,
    }
}
