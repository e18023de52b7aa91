//! Network interfaces: IP (`/api/network/ip/interfaces`) and FC (`/api/network/fc/interfaces`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::common::{string_enum, Links, NamedRef};

string_enum! {
    /// Operational state of an interface (`state`).
    pub enum InterfaceState {
        /// Up.
        Up => "up",
        /// Down.
        Down => "down",
    }
}

string_enum! {
    /// Scope of an IP interface (`scope`).
    pub enum InterfaceScope {
        /// Belongs to an SVM.
        Svm => "svm",
        /// Belongs to the cluster (an IPspace).
        Cluster => "cluster",
    }
}

string_enum! {
    /// IP address family (`ip.family`).
    pub enum IpFamily {
        /// IPv4.
        Ipv4 => "ipv4",
        /// IPv6.
        Ipv6 => "ipv6",
    }
}

string_enum! {
    /// A network service offered by an IP interface (`services[]`).
    pub enum IpService {
        /// NFS data.
        DataNfs => "data_nfs",
        /// SMB data.
        DataCifs => "data_cifs",
        /// iSCSI data.
        DataIscsi => "data_iscsi",
        /// NVMe/TCP data.
        DataNvmeTcp => "data_nvme_tcp",
        /// S3 data.
        DataS3Server => "data_s3_server",
        /// Core data services.
        DataCore => "data_core",
        /// FlexCache data.
        DataFlexcache => "data_flexcache",
        /// DNS server on the data LIF.
        DataDnsServer => "data_dns_server",
        /// HTTPS management.
        ManagementHttps => "management_https",
        /// SSH management.
        ManagementSsh => "management_ssh",
        /// Core management.
        ManagementCore => "management_core",
        /// Intercluster core (peering, SnapMirror).
        InterclusterCore => "intercluster_core",
        /// Cluster core (cluster interconnect).
        ClusterCore => "cluster_core",
    }
}

string_enum! {
    /// Data protocol of an FC interface (`data_protocol`).
    pub enum FcDataProtocol {
        /// SCSI over FC.
        Fcp => "fcp",
        /// NVMe over FC.
        FcNvme => "fc_nvme",
    }
}

/// Address of an IP interface (`ip`).
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IpInfo {
    /// Address, such as `10.0.0.5`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Netmask as a prefix length or dotted quad, as ONTAP returned it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netmask: Option<String>,
    /// Address family.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family: Option<IpFamily>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A port reference with its node (`location.port`, `location.home_port`).
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PortRef {
    /// Port UUID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Port name, such as `e0a` or `0a`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Node of the port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<NamedRef>,
    /// HAL links.
    #[serde(rename = "_links", skip_serializing_if = "Option::is_none")]
    pub links: Option<Links>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Where an interface lives (`location`), for IP and FC interfaces alike.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InterfaceLocation {
    /// Home node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub home_node: Option<NamedRef>,
    /// Home port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub home_port: Option<PortRef>,
    /// Current node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<NamedRef>,
    /// Current port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<PortRef>,
    /// True when on its home port (IP only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_home: Option<bool>,
    /// Reverts home automatically (IP only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_revert: Option<bool>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An IP interface (LIF).
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IpInterface {
    /// Interface UUID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Interface name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Owning SVM (scope `svm`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub svm: Option<NamedRef>,
    /// IPspace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipspace: Option<NamedRef>,
    /// Scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<InterfaceScope>,
    /// Address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpInfo>,
    /// Location.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<InterfaceLocation>,
    /// Service policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_policy: Option<NamedRef>,
    /// Services offered (derived from the service policy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub services: Option<Vec<IpService>>,
    /// Administrative state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Operational state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<InterfaceState>,
    /// HAL links.
    #[serde(rename = "_links", skip_serializing_if = "Option::is_none")]
    pub links: Option<Links>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl IpInterface {
    /// True when the interface lists `service` among its services.
    pub fn offers(&self, service: &IpService) -> bool {
        self.services
            .as_deref()
            .is_some_and(|services| services.contains(service))
    }

    /// The IP address, if known.
    pub fn address(&self) -> Option<&str> {
        self.ip.as_ref()?.address.as_deref()
    }
}

/// An FC interface (FC LIF).
///
/// ```
/// use ontap_client::models::FcInterface;
///
/// let lif: FcInterface = serde_json::from_str(r#"{"name":"lif1","wwpn":"20:04:00:50:56:bb:a0:e0"}"#).unwrap();
/// assert_eq!(lif.wwpn.as_deref(), Some("20:04:00:50:56:bb:a0:e0"));
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FcInterface {
    /// Interface UUID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Interface name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Owning SVM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub svm: Option<NamedRef>,
    /// World wide port name, such as `20:04:00:50:56:bb:a0:e0`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wwpn: Option<String>,
    /// World wide node name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wwnn: Option<String>,
    /// FC port address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_address: Option<String>,
    /// Data protocol.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_protocol: Option<FcDataProtocol>,
    /// Administrative state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Operational state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<InterfaceState>,
    /// Location.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<InterfaceLocation>,
    /// Comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// HAL links.
    #[serde(rename = "_links", skip_serializing_if = "Option::is_none")]
    pub links: Option<Links>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
