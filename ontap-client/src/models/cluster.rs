//! The cluster singleton (`/api/cluster`) and its nodes (`/api/cluster/nodes`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::common::{string_enum, Links};

/// The cluster record from `GET /api/cluster`.
///
/// ```
/// use ontap_client::models::Cluster;
///
/// let cluster: Cluster = serde_json::from_str(
///     r#"{"name":"c1","version":{"full":"NetApp Release 9.14.1","generation":9,"major":14,"minor":1}}"#,
/// ).unwrap();
/// assert!(cluster.version.unwrap().at_least(9, 14, 0));
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    /// Cluster name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Cluster UUID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// ONTAP release running on the cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<ClusterVersion>,
    /// Location text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Contact text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    /// DNS search domains.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_domains: Option<Vec<String>>,
    /// NTP servers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ntp_servers: Option<Vec<String>>,
    /// True on an ASA (SAN-optimized) personality.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub san_optimized: Option<bool>,
    /// True on a disaggregated (ASA r2 / AFX) personality.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disaggregated: Option<bool>,
    /// HAL links.
    #[serde(rename = "_links", skip_serializing_if = "Option::is_none")]
    pub links: Option<Links>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An ONTAP release: `generation.major.minor` (9.14.1) plus the full banner.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterVersion {
    /// Full release banner, such as `NetApp Release 9.14.1: ...`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full: Option<String>,
    /// Generation (the 9 in 9.14.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<u32>,
    /// Major number (the 14 in 9.14.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub major: Option<u32>,
    /// Minor number (the 1 in 9.14.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minor: Option<u32>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ClusterVersion {
    /// A version from its three numbers.
    pub fn new(generation: u32, major: u32, minor: u32) -> Self {
        Self {
            generation: Some(generation),
            major: Some(major),
            minor: Some(minor),
            ..Self::default()
        }
    }

    /// `(generation, major, minor)`, missing numbers read as 0.
    pub fn triple(&self) -> (u32, u32, u32) {
        (
            self.generation.unwrap_or(0),
            self.major.unwrap_or(0),
            self.minor.unwrap_or(0),
        )
    }

    /// True when this release is `generation.major.minor` or newer: the feature check.
    ///
    /// ```
    /// use ontap_client::models::ClusterVersion;
    ///
    /// let v = ClusterVersion::new(9, 12, 1);
    /// assert!(v.at_least(9, 12, 0));
    /// assert!(!v.at_least(9, 14, 0));
    /// ```
    pub fn at_least(&self, generation: u32, major: u32, minor: u32) -> bool {
        self.triple() >= (generation, major, minor)
    }
}

impl std::fmt::Display for ClusterVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (g, ma, mi) = self.triple();
        write!(f, "{g}.{ma}.{mi}")
    }
}

string_enum! {
    /// Node state (`state`).
    pub enum NodeState {
        /// Up and serving.
        Up => "up",
        /// Booting.
        Booting => "booting",
        /// Down.
        Down => "down",
        /// Taken over by its HA partner.
        TakenOver => "taken_over",
        /// Waiting for giveback.
        WaitingForGiveback => "waiting_for_giveback",
        /// Degraded.
        Degraded => "degraded",
    }
}

/// A cluster node from `/api/cluster/nodes`.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Node UUID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Node name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Hardware model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Serial number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    /// Node state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<NodeState>,
    /// ONTAP release on this node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<ClusterVersion>,
    /// Location text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// HA partner information, kept raw.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ha: Option<Value>,
    /// HAL links.
    #[serde(rename = "_links", skip_serializing_if = "Option::is_none")]
    pub links: Option<Links>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
