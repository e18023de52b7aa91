//! Multi-admin verification requests (`/api/security/multi-admin-verify/requests`, 9.11+).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::common::{setters, string_enum, Links, NamedRef};

string_enum! {
    /// Request state (`state`).
    pub enum MavRequestState {
        /// Waiting for approvals.
        Pending => "pending",
        /// Approved: the operation may run.
        Approved => "approved",
        /// Vetoed.
        Vetoed => "vetoed",
        /// Expired.
        Expired => "expired",
        /// Executed.
        Executed => "executed",
    }
}

/// A multi-admin verification request.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MavRequest {
    /// Request index (its key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// Protected CLI command, such as `volume delete`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// CLI query of the operation, such as `-vserver vs0 -volume v1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// State.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<MavRequestState>,
    /// Approvals required.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required_approvers: Option<u32>,
    /// Approvals still missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_approvers: Option<u32>,
    /// Users who approved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved_users: Option<Vec<String>>,
    /// Users allowed to run the operation once approved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permitted_users: Option<Vec<String>>,
    /// User who made the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_requested: Option<String>,
    /// User who vetoed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_vetoed: Option<String>,
    /// Run the operation automatically once approved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execute_on_approval: Option<bool>,
    /// Comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Creation time (ISO-8601).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create_time: Option<String>,
    /// Approval deadline (ISO-8601).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approve_expiry_time: Option<String>,
    /// Execution deadline after approval (ISO-8601).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_expiry_time: Option<String>,
    /// Owner (SVM or cluster).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<NamedRef>,
    /// HAL links.
    #[serde(rename = "_links", skip_serializing_if = "Option::is_none")]
    pub links: Option<Links>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Body of `POST /api/security/multi-admin-verify/requests`.
///
/// ```
/// use ontap_client::models::MavRequestCreate;
///
/// let body = MavRequestCreate::new("volume delete").query("-vserver vs0 -volume v1");
/// assert_eq!(serde_json::to_string(&body).unwrap(), r#"{"operation":"volume delete","query":"-vserver vs0 -volume v1"}"#);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MavRequestCreate {
    /// Protected CLI command.
    pub operation: String,
    /// CLI query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Run automatically once approved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execute_on_approval: Option<bool>,
}

impl MavRequestCreate {
    /// A request to run `operation`.
    pub fn new(operation: impl Into<String>) -> Self {
        Self {
            operation: operation.into(),
            ..Self::default()
        }
    }

    setters! {
        /// CLI query.
        query: into String,
        /// Comment.
        comment: into String,
        /// Run automatically once approved.
        execute_on_approval: bool,
    }
}

/// Body of `PATCH /api/security/multi-admin-verify/requests/{index}`.
///
/// ```
/// use ontap_client::models::MavRequestPatch;
///
/// assert_eq!(serde_json::to_string(&MavRequestPatch::approve()).unwrap(), r#"{"state":"approved"}"#);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MavRequestPatch {
    /// New state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<MavRequestState>,
}

impl MavRequestPatch {
    /// Approve.
    pub fn approve() -> Self {
        Self {
            state: Some(MavRequestState::Approved),
        }
    }

    /// Veto.
    pub fn veto() -> Self {
        Self {
            state: Some(MavRequestState::Vetoed),
        }
    }
}
