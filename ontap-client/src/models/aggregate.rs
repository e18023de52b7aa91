//! Aggregates (`/api/storage/aggregates`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::common::{string_enum, Links, NamedRef};

string_enum! {
    /// Aggregate state (`state`).
    pub enum AggregateState {
        /// Online.
        Online => "online",
        /// Onlining.
        Onlining => "onlining",
        /// Offline.
        Offline => "offline",
        /// Offlining.
        Offlining => "offlining",
        /// Relocating.
        Relocating => "relocating",
        /// Unmounted.
        Unmounted => "unmounted",
        /// Restricted.
        Restricted => "restricted",
        /// Inconsistent.
        Inconsistent => "inconsistent",
        /// Failed.
        Failed => "failed",
        /// Unknown to ONTAP itself.
        OntapUnknown => "unknown",
    }
}

/// Block storage space of an aggregate (`space.block_storage`), bytes.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AggregateBlockStorage {
    /// Usable size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Free space.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available: Option<u64>,
    /// Used space.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used: Option<u64>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Space of an aggregate (`space`).
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AggregateSpace {
    /// Block storage usage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_storage: Option<AggregateBlockStorage>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An aggregate.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    /// Aggregate UUID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Aggregate name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Owning node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<NamedRef>,
    /// State.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<AggregateState>,
    /// Space usage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub space: Option<AggregateSpace>,
    /// HAL links.
    #[serde(rename = "_links", skip_serializing_if = "Option::is_none")]
    pub links: Option<Links>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
