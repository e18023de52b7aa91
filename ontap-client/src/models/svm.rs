//! Storage virtual machines (`/api/svm/svms`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::common::{string_enum, Links, NamedRef};

string_enum! {
    /// SVM state (`state`).
    pub enum SvmState {
        /// Starting.
        Starting => "starting",
        /// Running.
        Running => "running",
        /// Stopping.
        Stopping => "stopping",
        /// Stopped.
        Stopped => "stopped",
        /// Being deleted.
        Deleting => "deleting",
        /// Being created.
        Initializing => "initializing",
    }
}

string_enum! {
    /// SVM subtype (`subtype`).
    pub enum SvmSubtype {
        /// A normal data SVM.
        Default => "default",
        /// SVM-DR destination.
        DpDestination => "dp_destination",
        /// MetroCluster sync source.
        SyncSource => "sync_source",
        /// MetroCluster sync destination.
        SyncDestination => "sync_destination",
        /// Data engine SVM.
        DataEngine => "data_engine",
    }
}

/// Per-protocol switch of an SVM (`nfs`, `cifs`, `iscsi`, `fcp`, `nvme`).
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SvmProtocol {
    /// Whether the protocol service is enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Whether the protocol is allowed on the SVM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed: Option<bool>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A storage virtual machine (vserver).
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Svm {
    /// SVM UUID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// SVM name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// State.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<SvmState>,
    /// Subtype.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subtype: Option<SvmSubtype>,
    /// Default language.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// IPspace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipspace: Option<NamedRef>,
    /// Aggregates the SVM may provision on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggregates: Option<Vec<NamedRef>>,
    /// Default snapshot policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_policy: Option<NamedRef>,
    /// NFS switch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nfs: Option<SvmProtocol>,
    /// CIFS/SMB switch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cifs: Option<SvmProtocol>,
    /// iSCSI switch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iscsi: Option<SvmProtocol>,
    /// FC switch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fcp: Option<SvmProtocol>,
    /// NVMe switch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nvme: Option<SvmProtocol>,
    /// HAL links.
    #[serde(rename = "_links", skip_serializing_if = "Option::is_none")]
    pub links: Option<Links>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
