//! SAN: LUNs, igroups and their initiators, LUN maps, iSCSI services and CHAP credentials.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use super::common::{setters, string_enum, Links, NamedRef};

string_enum! {
    /// LUN OS type (`os_type`).
    pub enum LunOsType {
        /// AIX.
        Aix => "aix",
        /// HP-UX.
        Hpux => "hpux",
        /// Hyper-V.
        HyperV => "hyper_v",
        /// Linux.
        Linux => "linux",
        /// NetWare.
        Netware => "netware",
        /// OpenVMS.
        Openvms => "openvms",
        /// Solaris.
        Solaris => "solaris",
        /// Solaris with EFI labels.
        SolarisEfi => "solaris_efi",
        /// VMware.
        Vmware => "vmware",
        /// Windows (MBR).
        Windows => "windows",
        /// Windows 2008 and later.
        Windows2008 => "windows_2008",
        /// Windows GPT.
        WindowsGpt => "windows_gpt",
        /// Xen.
        Xen => "xen",
    }
}

string_enum! {
    /// Initiator group OS type (`os_type`).
    pub enum IgroupOsType {
        /// AIX.
        Aix => "aix",
        /// HP-UX.
        Hpux => "hpux",
        /// Hyper-V.
        HyperV => "hyper_v",
        /// Linux.
        Linux => "linux",
        /// NetWare.
        Netware => "netware",
        /// OpenVMS.
        Openvms => "openvms",
        /// Solaris.
        Solaris => "solaris",
        /// VMware.
        Vmware => "vmware",
        /// Windows.
        Windows => "windows",
        /// Xen.
        Xen => "xen",
    }
}

string_enum! {
    /// Initiator group protocol (`protocol`).
    pub enum IgroupProtocol {
        /// Fibre Channel.
        Fcp => "fcp",
        /// iSCSI.
        Iscsi => "iscsi",
        /// Both.
        Mixed => "mixed",
    }
}

string_enum! {
    /// LUN class (`class`).
    pub enum LunClass {
        /// Ordinary LUN.
        Regular => "regular",
        /// VVol protocol endpoint.
        ProtocolEndpoint => "protocol_endpoint",
        /// VVol.
        Vvol => "vvol",
    }
}

string_enum! {
    /// iSCSI authentication type (`authentication_type`).
    pub enum IscsiAuthType {
        /// CHAP.
        Chap => "chap",
        /// No authentication.
        None => "none",
        /// Deny the initiator.
        Deny => "deny",
    }
}

/// Location of a LUN (`location`).
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LunLocation {
    /// File name of the LUN in its volume/qtree.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logical_unit: Option<String>,
    /// Volume holding the LUN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume: Option<NamedRef>,
    /// Qtree holding the LUN, kept raw (`{id, name}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qtree: Option<Value>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Space reservation of a LUN or namespace (`space.guarantee`).
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SpaceGuarantee {
    /// Reservation requested (thick).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested: Option<bool>,
    /// Reservation in effect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reserved: Option<bool>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Space of a LUN (`space`), bytes.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LunSpace {
    /// Size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used: Option<u64>,
    /// Reservation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guarantee: Option<SpaceGuarantee>,
    /// SCSI thin provisioning (UNMAP) reported to hosts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scsi_thin_provisioning_support_enabled: Option<bool>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Status of a LUN or namespace (`status`).
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LunStatus {
    /// State, such as `online`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// State of the containing volume/aggregate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_state: Option<String>,
    /// Mapped to at least one igroup/subsystem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mapped: Option<bool>,
    /// Read-only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A LUN map as listed inside a LUN or igroup (`lun_maps[]`).
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LunMapEntry {
    /// Igroup (inside a LUN record).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub igroup: Option<NamedRef>,
    /// LUN (inside an igroup record).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lun: Option<NamedRef>,
    /// LUN id seen by the hosts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logical_unit_number: Option<u32>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A LUN.
///
/// ```
/// use ontap_client::models::Lun;
///
/// let lun: Lun = serde_json::from_str(r#"{"name":"/vol/vol1/lun1","serial_number":"wf0Iq+N4uck3"}"#).unwrap();
/// assert_eq!(lun.naa_wwid().as_deref(), Some("600a098077663049712b4e3475636b33"));
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Lun {
    /// LUN UUID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Path name, such as `/vol/vol1/lun1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Owning SVM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub svm: Option<NamedRef>,
    /// OS type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_type: Option<LunOsType>,
    /// Class.
    #[serde(rename = "class", skip_serializing_if = "Option::is_none")]
    pub class: Option<LunClass>,
    /// Administrative state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// 12-character serial number; the SCSI identity hosts see.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    /// Comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Location.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<LunLocation>,
    /// Space.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub space: Option<LunSpace>,
    /// Status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<LunStatus>,
    /// Maps to igroups.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lun_maps: Option<Vec<LunMapEntry>>,
    /// QoS policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qos_policy: Option<NamedRef>,
    /// HAL links.
    #[serde(rename = "_links", skip_serializing_if = "Option::is_none")]
    pub links: Option<Links>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// NetApp's IEEE OUI-based NAA prefix in LUN WWIDs (`600a0980` + hex of the serial).
const NETAPP_NAA_PREFIX: &str = "600a0980";

impl Lun {
    /// The NAA-6 identifier hosts see for this LUN: `600a0980` followed by the hex of the
    /// serial number's ASCII bytes (Linux shows it as `/dev/disk/by-id/wwn-0x...` and
    /// `3...` in `multipath -ll`).
    pub fn naa_wwid(&self) -> Option<String> {
        let serial = self.serial_number.as_deref()?;
        let mut out = String::from(NETAPP_NAA_PREFIX);
        for byte in serial.bytes() {
            out.push_str(&format!("{byte:02x}"));
        }
        Some(out)
    }

    /// Size in bytes, if known.
    pub fn size(&self) -> Option<u64> {
        self.space.as_ref()?.size
    }
}

/// Space of a new LUN (`space`) in a create/patch body.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LunSpaceRequest {
    /// Size in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Reservation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guarantee: Option<SpaceGuarantee>,
    /// Report SCSI thin provisioning (UNMAP) to hosts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scsi_thin_provisioning_support_enabled: Option<bool>,
}

/// Body of `POST /api/storage/luns`.
///
/// ```
/// use ontap_client::models::{LunCreate, LunOsType, GIB};
///
/// let body = LunCreate::new("svm1", "/vol/vol1/lun1", LunOsType::Linux, 300 * GIB);
/// assert_eq!(
///     serde_json::to_string(&body).unwrap(),
///     r#"{"svm":{"name":"svm1"},"name":"/vol/vol1/lun1","os_type":"linux","space":{"size":322122547200}}"#,
/// );
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LunCreate {
    /// Owning SVM.
    pub svm: NamedRef,
    /// Path name `/vol/<volume>[/<qtree>]/<lun>`.
    pub name: String,
    /// OS type.
    pub os_type: LunOsType,
    /// Space.
    pub space: LunSpaceRequest,
    /// Comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// QoS policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qos_policy: Option<NamedRef>,
    /// Clone source (`clone.source`), for LUN clones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clone: Option<Value>,
}

impl LunCreate {
    /// A LUN of `size` bytes named `name` in `svm`.
    pub fn new(
        svm: impl Into<NamedRef>,
        name: impl Into<String>,
        os_type: LunOsType,
        size: u64,
    ) -> Self {
        Self {
            svm: svm.into(),
            name: name.into(),
            os_type,
            space: LunSpaceRequest {
                size: Some(size),
                ..LunSpaceRequest::default()
            },
            comment: None,
            qos_policy: None,
            clone: None,
        }
    }

    setters! {
        /// Comment.
        comment: into String,
        /// QoS policy.
        qos_policy: into NamedRef,
    }

    /// Thick (`true`) or thin (`false`) provisioning (`space.guarantee.requested`).
    #[must_use]
    pub fn space_reserved(mut self, reserved: bool) -> Self {
        self.space.guarantee = Some(SpaceGuarantee {
            requested: Some(reserved),
            ..SpaceGuarantee::default()
        });
        self
    }

    /// Report thin provisioning to hosts so they can UNMAP.
    #[must_use]
    pub fn scsi_thin_provisioning(mut self, enabled: bool) -> Self {
        self.space.scsi_thin_provisioning_support_enabled = Some(enabled);
        self
    }

    /// Create the LUN as a clone of the LUN at path `source` (`clone.source.name`).
    #[must_use]
    pub fn clone_of(mut self, source: impl Into<String>) -> Self {
        self.clone = Some(serde_json::json!({ "source": { "name": source.into() } }));
        self
    }
}

/// Body of `PATCH /api/storage/luns/{uuid}`.
///
/// ```
/// use ontap_client::models::{LunPatch, GIB};
///
/// assert_eq!(serde_json::to_string(&LunPatch::new().size(2 * GIB)).unwrap(), r#"{"space":{"size":2147483648}}"#);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LunPatch {
    /// New path name (rename or move within a volume).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Administrative state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Space.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub space: Option<LunSpaceRequest>,
    /// QoS policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qos_policy: Option<NamedRef>,
}

impl LunPatch {
    /// An empty patch.
    pub fn new() -> Self {
        Self::default()
    }

    setters! {
        /// Rename.
        name: into String,
        /// Comment.
        comment: into String,
        /// Administrative state.
        enabled: bool,
        /// QoS policy.
        qos_policy: into NamedRef,
        /// Resize to `size` bytes.
        size => space.size: u64,
    }
}

/// An initiator of an igroup (`initiators[]`, or `/igroups/{uuid}/initiators`).
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IgroupInitiator {
    /// IQN or WWPN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
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

impl IgroupInitiator {
    /// An initiator by IQN or WWPN.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: Some(name.into()),
            ..Self::default()
        }
    }

    setters! {
        /// With a comment.
        comment: into String,
    }
}

/// An initiator group.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Igroup {
    /// Igroup UUID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Igroup name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Owning SVM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub svm: Option<NamedRef>,
    /// OS type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_type: Option<IgroupOsType>,
    /// Protocol.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<IgroupProtocol>,
    /// Initiators.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initiators: Option<Vec<IgroupInitiator>>,
    /// Comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Portset binding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub portset: Option<NamedRef>,
    /// Delete the igroup when its last LUN map goes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete_on_unmap: Option<bool>,
    /// Maps to LUNs (read-only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lun_maps: Option<Vec<LunMapEntry>>,
    /// HAL links.
    #[serde(rename = "_links", skip_serializing_if = "Option::is_none")]
    pub links: Option<Links>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Igroup {
    /// True when `initiator` (IQN or WWPN, compared case-insensitively) is a member.
    pub fn has_initiator(&self, initiator: &str) -> bool {
        self.initiators.as_deref().is_some_and(|list| {
            list.iter()
                .filter_map(|i| i.name.as_deref())
                .any(|name| name.eq_ignore_ascii_case(initiator))
        })
    }
}

/// Body of `POST /api/protocols/san/igroups`.
///
/// ```
/// use ontap_client::models::{IgroupCreate, IgroupOsType, IgroupProtocol};
///
/// let body = IgroupCreate::new("igroup1", "svm1", IgroupProtocol::Iscsi, IgroupOsType::Linux)
///     .initiator("iqn.1994-05.com.redhat:host1");
/// assert_eq!(
///     serde_json::to_string(&body).unwrap(),
///     r#"{"name":"igroup1","svm":{"name":"svm1"},"protocol":"iscsi","os_type":"linux","initiators":[{"name":"iqn.1994-05.com.redhat:host1"}]}"#,
/// );
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IgroupCreate {
    /// Igroup name.
    pub name: String,
    /// Owning SVM.
    pub svm: NamedRef,
    /// Protocol.
    pub protocol: IgroupProtocol,
    /// OS type.
    pub os_type: IgroupOsType,
    /// Initiators to add at creation.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub initiators: Vec<IgroupInitiator>,
    /// Comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

impl IgroupCreate {
    /// An igroup named `name` in `svm`.
    pub fn new(
        name: impl Into<String>,
        svm: impl Into<NamedRef>,
        protocol: IgroupProtocol,
        os_type: IgroupOsType,
    ) -> Self {
        Self {
            name: name.into(),
            svm: svm.into(),
            protocol,
            os_type,
            initiators: Vec::new(),
            comment: None,
        }
    }

    /// Add an initiator (IQN or WWPN).
    #[must_use]
    pub fn initiator(mut self, name: impl Into<String>) -> Self {
        self.initiators.push(IgroupInitiator::new(name));
        self
    }

    setters! {
        /// Comment.
        comment: into String,
    }
}

/// Body of `POST /api/protocols/san/igroups/{uuid}/initiators`: one or more initiators.
///
/// ```
/// use ontap_client::models::IgroupInitiatorsAdd;
///
/// let body = IgroupInitiatorsAdd::new(["iqn.1994-05.com.redhat:h1", "iqn.1994-05.com.redhat:h2"]);
/// assert_eq!(
///     serde_json::to_string(&body).unwrap(),
///     r#"{"records":[{"name":"iqn.1994-05.com.redhat:h1"},{"name":"iqn.1994-05.com.redhat:h2"}]}"#,
/// );
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IgroupInitiatorsAdd {
    /// Initiators to add.
    pub records: Vec<IgroupInitiator>,
}

impl IgroupInitiatorsAdd {
    /// Add these initiators (IQNs or WWPNs).
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(names: I) -> Self {
        Self {
            records: names.into_iter().map(IgroupInitiator::new).collect(),
        }
    }
}

/// A LUN map (`/api/protocols/san/lun-maps`). Its key is `lun.uuid/igroup.uuid`.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LunMap {
    /// SVM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub svm: Option<NamedRef>,
    /// Mapped LUN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lun: Option<NamedRef>,
    /// Igroup the LUN is mapped to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub igroup: Option<NamedRef>,
    /// LUN id seen by the hosts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logical_unit_number: Option<u32>,
    /// HAL links.
    #[serde(rename = "_links", skip_serializing_if = "Option::is_none")]
    pub links: Option<Links>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Body of `POST /api/protocols/san/lun-maps`.
///
/// ```
/// use ontap_client::models::LunMapCreate;
///
/// let body = LunMapCreate::new("svm1", "/vol/vol1/lun1", "ig1").logical_unit_number(3);
/// assert_eq!(
///     serde_json::to_string(&body).unwrap(),
///     r#"{"svm":{"name":"svm1"},"lun":{"name":"/vol/vol1/lun1"},"igroup":{"name":"ig1"},"logical_unit_number":3}"#,
/// );
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LunMapCreate {
    /// SVM.
    pub svm: NamedRef,
    /// LUN by path name or UUID.
    pub lun: NamedRef,
    /// Igroup by name or UUID.
    pub igroup: NamedRef,
    /// LUN id to use; ONTAP picks the lowest free one when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logical_unit_number: Option<u32>,
}

impl LunMapCreate {
    /// Map `lun` to `igroup` in `svm`.
    pub fn new(
        svm: impl Into<NamedRef>,
        lun: impl Into<NamedRef>,
        igroup: impl Into<NamedRef>,
    ) -> Self {
        Self {
            svm: svm.into(),
            lun: lun.into(),
            igroup: igroup.into(),
            logical_unit_number: None,
        }
    }

    setters! {
        /// LUN id to use.
        logical_unit_number: u32,
    }
}

/// iSCSI target of an SVM (`target`).
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IscsiTarget {
    /// Target IQN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Target alias.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The iSCSI service of an SVM. Its key is the SVM UUID.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IscsiService {
    /// SVM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub svm: Option<NamedRef>,
    /// Administrative state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Target name and alias.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<IscsiTarget>,
    /// HAL links.
    #[serde(rename = "_links", skip_serializing_if = "Option::is_none")]
    pub links: Option<Links>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Body of `POST /api/protocols/san/iscsi/services` (and, without `svm`, of its PATCH).
///
/// ```
/// use ontap_client::models::IscsiServiceCreate;
///
/// let body = IscsiServiceCreate::new("svm1").enabled(true).alias("svm1");
/// assert_eq!(serde_json::to_string(&body).unwrap(), r#"{"svm":{"name":"svm1"},"enabled":true,"target":{"alias":"svm1"}}"#);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IscsiServiceCreate {
    /// SVM (absent in a PATCH body).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub svm: Option<NamedRef>,
    /// Administrative state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Target alias.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<IscsiTarget>,
}

impl IscsiServiceCreate {
    /// A service for `svm`.
    pub fn new(svm: impl Into<NamedRef>) -> Self {
        Self {
            svm: Some(svm.into()),
            ..Self::default()
        }
    }

    /// A PATCH body (no SVM).
    pub fn patch() -> Self {
        Self::default()
    }

    setters! {
        /// Administrative state.
        enabled: bool,
        /// Target alias.
        alias => new target.alias: into String,
    }
}

/// A CHAP user as returned by ONTAP (passwords are write-only and never returned).
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChapUser {
    /// CHAP user name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// CHAP settings as returned by ONTAP (`chap`).
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Chap {
    /// Inbound (target authenticates initiator).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inbound: Option<ChapUser>,
    /// Outbound (initiator authenticates target, mutual CHAP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outbound: Option<ChapUser>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// iSCSI credentials of one initiator (`/api/protocols/san/iscsi/credentials`).
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IscsiCredentials {
    /// SVM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub svm: Option<NamedRef>,
    /// Initiator IQN (or `default`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initiator: Option<String>,
    /// Authentication type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authentication_type: Option<IscsiAuthType>,
    /// CHAP user names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chap: Option<Chap>,
    /// Initiator address restrictions, kept raw.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initiator_address: Option<Value>,
    /// HAL links.
    #[serde(rename = "_links", skip_serializing_if = "Option::is_none")]
    pub links: Option<Links>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn expose<S: Serializer>(secret: &SecretString, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(secret.expose_secret())
}

/// A CHAP user and secret in a request body. `Debug` redacts the secret.
#[non_exhaustive]
#[derive(Debug, Clone, Serialize)]
pub struct ChapSecret {
    /// CHAP user name.
    pub user: String,
    /// CHAP secret, serialized into the body only.
    #[serde(serialize_with = "expose")]
    pub password: SecretString,
}

impl ChapSecret {
    /// A CHAP user and secret.
    pub fn new(user: impl Into<String>, password: SecretString) -> Self {
        Self {
            user: user.into(),
            password,
        }
    }
}

/// CHAP settings in a request body.
#[non_exhaustive]
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChapRequest {
    /// Inbound CHAP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inbound: Option<ChapSecret>,
    /// Outbound (mutual) CHAP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outbound: Option<ChapSecret>,
}

/// Body of `POST /api/protocols/san/iscsi/credentials` (and, via [`patch`](Self::patch), of
/// its PATCH). Secrets are `SecretString`: they appear in the JSON body and nowhere else.
///
/// ```
/// use ontap_client::models::IscsiCredentialsCreate;
/// use secrecy::SecretString;
///
/// let body = IscsiCredentialsCreate::chap("svm1", "iqn.1994-05.com.redhat:h1", "u1", SecretString::from("s3cr3t-pass"));
/// assert_eq!(
///     serde_json::to_string(&body).unwrap(),
///     r#"{"svm":{"name":"svm1"},"initiator":"iqn.1994-05.com.redhat:h1","authentication_type":"chap","chap":{"inbound":{"user":"u1","password":"s3cr3t-pass"}}}"#,
/// );
/// assert!(!format!("{body:?}").contains("s3cr3t"));
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Default, Serialize)]
pub struct IscsiCredentialsCreate {
    /// SVM (absent in a PATCH body).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub svm: Option<NamedRef>,
    /// Initiator IQN (absent in a PATCH body).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initiator: Option<String>,
    /// Authentication type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authentication_type: Option<IscsiAuthType>,
    /// CHAP users and secrets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chap: Option<ChapRequest>,
}

impl IscsiCredentialsCreate {
    /// Credentials for `initiator` with authentication type `kind` and no CHAP users yet.
    pub fn new(
        svm: impl Into<NamedRef>,
        initiator: impl Into<String>,
        kind: IscsiAuthType,
    ) -> Self {
        Self {
            svm: Some(svm.into()),
            initiator: Some(initiator.into()),
            authentication_type: Some(kind),
            chap: None,
        }
    }

    /// CHAP credentials for `initiator` with an inbound user and secret.
    pub fn chap(
        svm: impl Into<NamedRef>,
        initiator: impl Into<String>,
        user: impl Into<String>,
        password: SecretString,
    ) -> Self {
        Self::new(svm, initiator, IscsiAuthType::Chap).inbound(user, password)
    }

    /// A PATCH body: change the authentication type of existing credentials.
    pub fn patch(kind: IscsiAuthType) -> Self {
        Self {
            authentication_type: Some(kind),
            ..Self::default()
        }
    }

    /// Inbound CHAP user and secret.
    #[must_use]
    pub fn inbound(mut self, user: impl Into<String>, password: SecretString) -> Self {
        self.chap.get_or_insert_with(ChapRequest::default).inbound =
            Some(ChapSecret::new(user, password));
        self
    }

    /// Outbound (mutual) CHAP user and secret.
    #[must_use]
    pub fn outbound(mut self, user: impl Into<String>, password: SecretString) -> Self {
        self.chap.get_or_insert_with(ChapRequest::default).outbound =
            Some(ChapSecret::new(user, password));
        self
    }
}
