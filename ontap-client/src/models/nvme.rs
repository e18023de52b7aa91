//! NVMe: services, namespaces, subsystems with their hosts, and subsystem maps.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::common::{setters, string_enum, Links, NamedRef};
use super::san::{LunStatus, SpaceGuarantee};

string_enum! {
    /// NVMe OS type of namespaces and subsystems (`os_type`).
    pub enum NvmeOsType {
        /// AIX.
        Aix => "aix",
        /// Linux.
        Linux => "linux",
        /// VMware.
        Vmware => "vmware",
        /// Windows.
        Windows => "windows",
    }
}

/// The NVMe service of an SVM (`/api/protocols/nvme/services`). Its key is the SVM UUID.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NvmeService {
    /// SVM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub svm: Option<NamedRef>,
    /// Administrative state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// HAL links.
    #[serde(rename = "_links", skip_serializing_if = "Option::is_none")]
    pub links: Option<Links>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Body of `POST /api/protocols/nvme/services` (and, via [`patch`](Self::patch), its PATCH).
///
/// ```
/// use ontap_client::models::NvmeServiceCreate;
///
/// assert_eq!(serde_json::to_string(&NvmeServiceCreate::new("svm1")).unwrap(), r#"{"svm":{"name":"svm1"}}"#);
/// assert_eq!(serde_json::to_string(&NvmeServiceCreate::patch().enabled(false)).unwrap(), r#"{"enabled":false}"#);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NvmeServiceCreate {
    /// SVM (absent in a PATCH body).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub svm: Option<NamedRef>,
    /// Administrative state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

impl NvmeServiceCreate {
    /// A service for `svm`.
    pub fn new(svm: impl Into<NamedRef>) -> Self {
        Self {
            svm: Some(svm.into()),
            enabled: None,
        }
    }

    /// A PATCH body (no SVM).
    pub fn patch() -> Self {
        Self::default()
    }

    setters! {
        /// Administrative state.
        enabled: bool,
    }
}

/// Location of a namespace (`location`).
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NamespaceLocation {
    /// File name of the namespace in its volume/qtree.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Volume.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume: Option<NamedRef>,
    /// Qtree, kept raw.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qtree: Option<Value>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Space of a namespace (`space`), bytes.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NamespaceSpace {
    /// Size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used: Option<u64>,
    /// Logical block size (512 or 4096).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_size: Option<u32>,
    /// Reservation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guarantee: Option<SpaceGuarantee>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The subsystem map of a namespace (`subsystem_map`).
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NamespaceSubsystemMap {
    /// Subsystem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subsystem: Option<NamedRef>,
    /// Namespace id, 8 hex digits and `h`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nsid: Option<String>,
    /// ANA group id, 8 hex digits and `h`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anagrpid: Option<String>,
    /// HAL links.
    #[serde(rename = "_links", skip_serializing_if = "Option::is_none")]
    pub links: Option<Links>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An NVMe namespace (`/api/storage/namespaces`).
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NvmeNamespace {
    /// Namespace UUID (also its NGUID/UUID seen by hosts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Path name, such as `/vol/vol1/ns1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Owning SVM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub svm: Option<NamedRef>,
    /// OS type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_type: Option<NvmeOsType>,
    /// Administrative state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Location.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<NamespaceLocation>,
    /// Space.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub space: Option<NamespaceSpace>,
    /// Status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<LunStatus>,
    /// Subsystem map, if mapped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subsystem_map: Option<NamespaceSubsystemMap>,
    /// HAL links.
    #[serde(rename = "_links", skip_serializing_if = "Option::is_none")]
    pub links: Option<Links>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Space of a namespace in a request body.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NamespaceSpaceRequest {
    /// Size in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Logical block size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_size: Option<u32>,
}

/// Body of `POST /api/storage/namespaces`.
///
/// ```
/// use ontap_client::models::{NamespaceCreate, NvmeOsType, GIB};
///
/// let body = NamespaceCreate::new("svm1", "/vol/vol1/ns1", NvmeOsType::Linux, GIB).block_size(4096);
/// assert_eq!(
///     serde_json::to_string(&body).unwrap(),
///     r#"{"svm":{"name":"svm1"},"name":"/vol/vol1/ns1","os_type":"linux","space":{"size":1073741824,"block_size":4096}}"#,
/// );
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NamespaceCreate {
    /// Owning SVM.
    pub svm: NamedRef,
    /// Path name `/vol/<volume>[/<qtree>]/<namespace>`.
    pub name: String,
    /// OS type.
    pub os_type: NvmeOsType,
    /// Space.
    pub space: NamespaceSpaceRequest,
    /// Comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

impl NamespaceCreate {
    /// A namespace of `size` bytes named `name` in `svm`.
    pub fn new(
        svm: impl Into<NamedRef>,
        name: impl Into<String>,
        os_type: NvmeOsType,
        size: u64,
    ) -> Self {
        Self {
            svm: svm.into(),
            name: name.into(),
            os_type,
            space: NamespaceSpaceRequest {
                size: Some(size),
                block_size: None,
            },
            comment: None,
        }
    }

    /// Logical block size (512 or 4096).
    #[must_use]
    pub fn block_size(mut self, block_size: u32) -> Self {
        self.space.block_size = Some(block_size);
        self
    }

    setters! {
        /// Comment.
        comment: into String,
    }
}

/// Body of `PATCH /api/storage/namespaces/{uuid}`.
///
/// ```
/// use ontap_client::models::{NamespacePatch, GIB};
///
/// assert_eq!(serde_json::to_string(&NamespacePatch::new().size(2 * GIB)).unwrap(), r#"{"space":{"size":2147483648}}"#);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NamespacePatch {
    /// Comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Space.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub space: Option<NamespaceSpaceRequest>,
}

impl NamespacePatch {
    /// An empty patch.
    pub fn new() -> Self {
        Self::default()
    }

    setters! {
        /// Comment.
        comment: into String,
        /// Resize to `size` bytes.
        size => space.size: u64,
    }
}

/// A host of a subsystem (`hosts[]`, or `/subsystems/{uuid}/hosts`).
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NvmeSubsystemHost {
    /// Host NQN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nqn: Option<String>,
    /// Subsystem (in the sub-collection).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subsystem: Option<NamedRef>,
    /// HAL links.
    #[serde(rename = "_links", skip_serializing_if = "Option::is_none")]
    pub links: Option<Links>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl NvmeSubsystemHost {
    /// A host by NQN.
    pub fn new(nqn: impl Into<String>) -> Self {
        Self {
            nqn: Some(nqn.into()),
            ..Self::default()
        }
    }
}

/// An NVMe subsystem (`/api/protocols/nvme/subsystems`).
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NvmeSubsystem {
    /// Subsystem UUID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Subsystem name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Owning SVM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub svm: Option<NamedRef>,
    /// OS type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_type: Option<NvmeOsType>,
    /// Comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Target NQN hosts connect to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_nqn: Option<String>,
    /// Serial number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    /// Hosts allowed to connect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Vec<NvmeSubsystemHost>>,
    /// Delete when the last namespace is unmapped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete_on_unmap: Option<bool>,
    /// HAL links.
    #[serde(rename = "_links", skip_serializing_if = "Option::is_none")]
    pub links: Option<Links>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl NvmeSubsystem {
    /// True when `nqn` is an allowed host.
    pub fn has_host(&self, nqn: &str) -> bool {
        self.hosts
            .as_deref()
            .is_some_and(|hosts| hosts.iter().any(|h| h.nqn.as_deref() == Some(nqn)))
    }
}

/// Body of `POST /api/protocols/nvme/subsystems`.
///
/// ```
/// use ontap_client::models::{SubsystemCreate, NvmeOsType};
///
/// let body = SubsystemCreate::new("ss1", "svm1", NvmeOsType::Linux).host("nqn.2014-08.org.nvmexpress:uuid:h1");
/// assert_eq!(
///     serde_json::to_string(&body).unwrap(),
///     r#"{"name":"ss1","svm":{"name":"svm1"},"os_type":"linux","hosts":[{"nqn":"nqn.2014-08.org.nvmexpress:uuid:h1"}]}"#,
/// );
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubsystemCreate {
    /// Subsystem name.
    pub name: String,
    /// Owning SVM.
    pub svm: NamedRef,
    /// OS type.
    pub os_type: NvmeOsType,
    /// Hosts allowed to connect.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<NvmeSubsystemHost>,
    /// Comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

impl SubsystemCreate {
    /// A subsystem named `name` in `svm`.
    pub fn new(name: impl Into<String>, svm: impl Into<NamedRef>, os_type: NvmeOsType) -> Self {
        Self {
            name: name.into(),
            svm: svm.into(),
            os_type,
            hosts: Vec::new(),
            comment: None,
        }
    }

    /// Allow a host NQN.
    #[must_use]
    pub fn host(mut self, nqn: impl Into<String>) -> Self {
        self.hosts.push(NvmeSubsystemHost::new(nqn));
        self
    }

    setters! {
        /// Comment.
        comment: into String,
    }
}

/// Body of `POST /api/protocols/nvme/subsystems/{uuid}/hosts`: one or more host NQNs.
///
/// ```
/// use ontap_client::models::SubsystemHostsAdd;
///
/// assert_eq!(
///     serde_json::to_string(&SubsystemHostsAdd::new(["nqn.a", "nqn.b"])).unwrap(),
///     r#"{"records":[{"nqn":"nqn.a"},{"nqn":"nqn.b"}]}"#,
/// );
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SubsystemHostsAdd {
    /// Hosts to add.
    pub records: Vec<NvmeSubsystemHost>,
}

impl SubsystemHostsAdd {
    /// Add these host NQNs.
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(nqns: I) -> Self {
        Self {
            records: nqns.into_iter().map(NvmeSubsystemHost::new).collect(),
        }
    }
}

/// A subsystem map (`/api/protocols/nvme/subsystem-maps`). Its key is
/// `subsystem.uuid/namespace.uuid`.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NvmeSubsystemMap {
    /// SVM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub svm: Option<NamedRef>,
    /// Subsystem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subsystem: Option<NamedRef>,
    /// Namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<NamedRef>,
    /// Namespace id, 8 hex digits and `h`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nsid: Option<String>,
    /// ANA group id, 8 hex digits and `h`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anagrpid: Option<String>,
    /// HAL links.
    #[serde(rename = "_links", skip_serializing_if = "Option::is_none")]
    pub links: Option<Links>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Body of `POST /api/protocols/nvme/subsystem-maps`.
///
/// ```
/// use ontap_client::models::SubsystemMapCreate;
///
/// assert_eq!(
///     serde_json::to_string(&SubsystemMapCreate::new("svm1", "ss1", "/vol/vol1/ns1")).unwrap(),
///     r#"{"svm":{"name":"svm1"},"subsystem":{"name":"ss1"},"namespace":{"name":"/vol/vol1/ns1"}}"#,
/// );
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SubsystemMapCreate {
    /// SVM.
    pub svm: NamedRef,
    /// Subsystem by name or UUID.
    pub subsystem: NamedRef,
    /// Namespace by path name or UUID.
    pub namespace: NamedRef,
}

impl SubsystemMapCreate {
    /// Map `namespace` into `subsystem`.
    pub fn new(
        svm: impl Into<NamedRef>,
        subsystem: impl Into<NamedRef>,
        namespace: impl Into<NamedRef>,
    ) -> Self {
        Self {
            svm: svm.into(),
            subsystem: subsystem.into(),
            namespace: namespace.into(),
        }
    }
}
