//! SnapMirror relationships (`/api/snapmirror/relationships`) and their transfers.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::common::{setters, string_enum, Links, NamedRef};

string_enum! {
    /// Relationship state (`state`); PATCH it to drive the relationship.
    pub enum SnapmirrorState {
        /// Broken off: destination writable.
        BrokenOff => "broken_off",
        /// Transfers paused.
        Paused => "paused",
        /// Mirrored (async); also the PATCH target for initialize, resync and resume.
        Snapmirrored => "snapmirrored",
        /// Not yet initialized.
        Uninitialized => "uninitialized",
        /// In sync (sync policies).
        InSync => "in_sync",
        /// Out of sync (sync policies).
        OutOfSync => "out_of_sync",
        /// Synchronizing (sync policies).
        Synchronizing => "synchronizing",
        /// Expanding (FlexGroup).
        Expanding => "expanding",
        /// Shrinking (FlexGroup).
        Shrinking => "shrinking",
    }
}

string_enum! {
    /// Transfer state (`transfer.state`, transfers' `state`).
    pub enum SnapmirrorTransferState {
        /// Aborted, restartable.
        Aborted => "aborted",
        /// Failed.
        Failed => "failed",
        /// Aborted without checkpoint.
        HardAborted => "hard_aborted",
        /// Queued.
        Queued => "queued",
        /// Finished.
        Success => "success",
        /// Running.
        Transferring => "transferring",
    }
}

string_enum! {
    /// SnapMirror policy type (`policy.type`).
    pub enum SnapmirrorPolicyType {
        /// Asynchronous.
        Async => "async",
        /// Synchronous.
        Sync => "sync",
    }
}

/// One end of a relationship (`source`, `destination`).
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SnapmirrorEndpoint {
    /// Path `svm:volume` (or `svm:` for SVM-DR).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// SVM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub svm: Option<NamedRef>,
    /// Remote cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<NamedRef>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl SnapmirrorEndpoint {
    /// An endpoint by path `svm:volume`.
    pub fn path(path: impl Into<String>) -> Self {
        Self {
            path: Some(path.into()),
            ..Self::default()
        }
    }
}

/// Policy of a relationship (`policy`).
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SnapmirrorPolicyRef {
    /// Policy name, such as `MirrorAllSnapshots`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Policy UUID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Policy type.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<SnapmirrorPolicyType>,
    /// HAL links.
    #[serde(rename = "_links", skip_serializing_if = "Option::is_none")]
    pub links: Option<Links>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One reason a relationship is unhealthy (`unhealthy_reason[]`).
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SnapmirrorError {
    /// Error code (string).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The current or last transfer of a relationship (`transfer`).
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SnapmirrorTransferSummary {
    /// Transfer UUID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// State.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<SnapmirrorTransferState>,
    /// Bytes transferred.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_transferred: Option<u64>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A SnapMirror relationship.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SnapmirrorRelationship {
    /// Relationship UUID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Source.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<SnapmirrorEndpoint>,
    /// Destination.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<SnapmirrorEndpoint>,
    /// Policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<SnapmirrorPolicyRef>,
    /// State.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<SnapmirrorState>,
    /// Healthy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
    /// Why it is unhealthy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unhealthy_reason: Option<Vec<SnapmirrorError>>,
    /// Lag time (ISO-8601 duration).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_time: Option<String>,
    /// Snapshot exported on the destination.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exported_snapshot: Option<String>,
    /// Current or last transfer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer: Option<SnapmirrorTransferSummary>,
    /// HAL links.
    #[serde(rename = "_links", skip_serializing_if = "Option::is_none")]
    pub links: Option<Links>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Body of `POST /api/snapmirror/relationships`.
///
/// ```
/// use ontap_client::models::{SnapmirrorCreate, SnapmirrorState};
///
/// let body = SnapmirrorCreate::new("vs0:vol1", "vs1:vol1_dst")
///     .policy("MirrorAllSnapshots")
///     .state(SnapmirrorState::Snapmirrored)
///     .create_destination(true);
/// assert_eq!(
///     serde_json::to_value(&body).unwrap(),
///     serde_json::json!({"source": {"path": "vs0:vol1"}, "destination": {"path": "vs1:vol1_dst"},
///         "policy": {"name": "MirrorAllSnapshots"}, "state": "snapmirrored",
///         "create_destination": {"enabled": true}}),
/// );
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SnapmirrorCreate {
    /// Source endpoint.
    pub source: SnapmirrorEndpoint,
    /// Destination endpoint.
    pub destination: SnapmirrorEndpoint,
    /// Policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<NamedRef>,
    /// Initial state (`snapmirrored` initializes at once).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<SnapmirrorState>,
    /// Create the destination volume (`{"enabled": true}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create_destination: Option<Value>,
}

impl SnapmirrorCreate {
    /// A relationship from `source_path` to `destination_path` (`svm:volume`).
    pub fn new(source_path: impl Into<String>, destination_path: impl Into<String>) -> Self {
        Self {
            source: SnapmirrorEndpoint::path(source_path),
            destination: SnapmirrorEndpoint::path(destination_path),
            ..Self::default()
        }
    }

    setters! {
        /// Policy by name.
        policy: into NamedRef,
        /// Initial state.
        state: SnapmirrorState,
    }

    /// Let ONTAP create the destination volume.
    #[must_use]
    pub fn create_destination(mut self, enabled: bool) -> Self {
        self.create_destination = Some(serde_json::json!({ "enabled": enabled }));
        self
    }
}

/// Body of `PATCH /api/snapmirror/relationships/{uuid}`: a state change, then poll `state`.
///
/// ```
/// use ontap_client::models::SnapmirrorPatch;
///
/// assert_eq!(serde_json::to_string(&SnapmirrorPatch::break_off()).unwrap(), r#"{"state":"broken_off"}"#);
/// assert_eq!(serde_json::to_string(&SnapmirrorPatch::resync()).unwrap(), r#"{"state":"snapmirrored"}"#);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SnapmirrorPatch {
    /// Target state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<SnapmirrorState>,
    /// Policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<NamedRef>,
}

impl SnapmirrorPatch {
    /// Move to `state`.
    pub fn state(state: SnapmirrorState) -> Self {
        Self {
            state: Some(state),
            policy: None,
        }
    }

    /// Initialize an uninitialized relationship (`snapmirrored`).
    pub fn initialize() -> Self {
        Self::state(SnapmirrorState::Snapmirrored)
    }

    /// Break the relationship, making the destination writable (`broken_off`).
    pub fn break_off() -> Self {
        Self::state(SnapmirrorState::BrokenOff)
    }

    /// Resync a broken relationship (`snapmirrored`).
    pub fn resync() -> Self {
        Self::state(SnapmirrorState::Snapmirrored)
    }

    /// Pause transfers (`paused`).
    pub fn pause() -> Self {
        Self::state(SnapmirrorState::Paused)
    }

    /// Resume a paused relationship (`snapmirrored`).
    pub fn resume() -> Self {
        Self::state(SnapmirrorState::Snapmirrored)
    }

    setters! {
        /// Change the policy.
        policy: into NamedRef,
    }
}

/// A transfer (`/api/snapmirror/relationships/{uuid}/transfers`).
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SnapmirrorTransfer {
    /// Transfer UUID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// State.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<SnapmirrorTransferState>,
    /// Bytes transferred.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_transferred: Option<u64>,
    /// Snapshot being transferred.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// Relationship, kept raw.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relationship: Option<Value>,
    /// HAL links.
    #[serde(rename = "_links", skip_serializing_if = "Option::is_none")]
    pub links: Option<Links>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Body of `POST .../transfers` (an update); empty means "latest snapshot".
///
/// ```
/// use ontap_client::models::SnapmirrorTransferCreate;
///
/// assert_eq!(serde_json::to_string(&SnapmirrorTransferCreate::new()).unwrap(), "{}");
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SnapmirrorTransferCreate {
    /// Source snapshot to transfer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_snapshot: Option<String>,
    /// Keep storage efficiency over the wire.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_efficiency_enabled: Option<bool>,
}

impl SnapmirrorTransferCreate {
    /// An update to the latest snapshot.
    pub fn new() -> Self {
        Self::default()
    }

    setters! {
        /// Source snapshot to transfer.
        source_snapshot: into String,
        /// Keep storage efficiency over the wire.
        storage_efficiency_enabled: bool,
    }
}
