//! nvme-cli: `list-subsys -o json` (1.x, 2.x and 3.x shapes), `show-topology -o json`,
//! `netapp ontapdevices -o json`, and the `/etc/nvme/hostnqn` and `hostid` files.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::{Error, Format, Result};
use crate::ids::{is_uuid, Nqn};

/// One controller path of a subsystem.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NvmePath {
    /// Controller name (`nvme1`).
    #[serde(default)]
    pub name: Option<String>,
    /// Transport: `tcp`, `rdma`, `fc`, `pcie`, `loop`.
    #[serde(default)]
    pub transport: Option<String>,
    /// Address string, e.g. `traddr=192.168.1.117,trsvcid=4420,host_traddr=192.168.1.16`.
    #[serde(default)]
    pub address: Option<String>,
    /// Controller state: `live`, `connecting`, `resetting`, `deleting`.
    #[serde(default)]
    pub state: Option<String>,
    /// ANA state (2.x and later): `optimized`, `non-optimized`, `inaccessible`.
    #[serde(default, rename = "ANAState")]
    pub ana_state: Option<String>,
}

impl NvmePath {
    /// The `key=value` pairs of [`NvmePath::address`].
    ///
    /// ```
    /// use host_storage::parse::nvme::NvmePath;
    /// let p = NvmePath { address: Some("traddr=192.168.2.117,trsvcid=4420,host_traddr=192.168.1.16".into()), ..Default::default() };
    /// assert_eq!(p.address_field("traddr"), Some("192.168.2.117"));
    /// assert_eq!(p.address_field("trsvcid"), Some("4420"));
    /// assert_eq!(p.address_field("src_addr"), None);
    /// ```
    pub fn address_fields(&self) -> BTreeMap<&str, &str> {
        parse_address(self.address.as_deref().unwrap_or(""))
    }

    /// One field of the address.
    pub fn address_field(&self, key: &str) -> Option<&str> {
        self.address_fields().get(key).copied()
    }

    /// True for a `live` controller.
    pub fn is_live(&self) -> bool {
        self.state.as_deref() == Some("live")
    }
}

/// Splits an nvme address string. 2.x separates fields with `,`; 1.x put a space before
/// `host_traddr`. Both are accepted.
pub fn parse_address(s: &str) -> BTreeMap<&str, &str> {
    s.split([',', ' '])
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect()
}

/// One subsystem of `nvme list-subsys`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NvmeSubsystem {
    /// `nvme-subsysN`.
    pub name: String,
    /// Subsystem NQN as printed (not validated: test targets use free-form names).
    pub nqn: String,
    /// Multipath I/O policy (`numa`, `round-robin`, `queue-depth`).
    pub io_policy: Option<String>,
    /// Controller paths.
    pub paths: Vec<NvmePath>,
}

/// The subsystems seen by one host NQN.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NvmeHost {
    /// Host NQN (absent in 1.x output).
    pub host_nqn: Option<String>,
    /// Host ID (2.x and later).
    pub host_id: Option<String>,
    /// Subsystems.
    pub subsystems: Vec<NvmeSubsystem>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawHost {
    #[serde(default, rename = "HostNQN")]
    host_nqn: Option<String>,
    #[serde(default, rename = "HostID")]
    host_id: Option<String>,
    #[serde(default)]
    subsystems: Vec<RawSubsystem>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawSubsystem {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, rename = "NQN")]
    nqn: Option<String>,
    #[serde(default, rename = "IOPolicy")]
    io_policy: Option<String>,
    #[serde(default)]
    paths: Vec<NvmePath>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawListSubsys {
    Hosts(Vec<RawHost>),
    One(RawHost),
}

/// Parses `nvme list-subsys -o json` from any nvme-cli version:
///
/// - 2.x/3.x print an array of host objects `[{"HostNQN", "HostID", "Subsystems": […]}]`;
/// - older builds print one object `{"HostNQN"?, "Subsystems": […]}`;
/// - 1.x printed each subsystem as two entries, `{"Name", "NQN"}` then `{"Paths": […]}`;
///   such path-only entries are joined to the subsystem before them.
pub fn parse_list_subsys(text: &str) -> Result<Vec<NvmeHost>> {
    let raw: RawListSubsys = super::json(Format::NvmeListSubsys, text)?;
    let hosts = match raw {
        RawListSubsys::Hosts(h) => h,
        RawListSubsys::One(h) => vec![h],
    };
    hosts
        .into_iter()
        .map(|h| {
            let mut subsystems: Vec<NvmeSubsystem> = Vec::new();
            for s in h.subsystems {
                match (s.name, s.nqn) {
                    (Some(name), Some(nqn)) => subsystems.push(NvmeSubsystem {
                        name,
                        nqn,
                        io_policy: s.io_policy,
                        paths: s.paths,
                    }),
                    (None, None) => match subsystems.last_mut() {
                        Some(prev) => prev.paths.extend(s.paths),
                        None => {
                            return Err(Error::parse(
                                Format::NvmeListSubsys,
                                0,
                                "paths entry before any subsystem",
                            ))
                        }
                    },
                    _ => {
                        return Err(Error::parse(
                            Format::NvmeListSubsys,
                            0,
                            "subsystem needs both Name and NQN",
                        ))
                    }
                }
            }
            Ok(NvmeHost {
                host_nqn: h.host_nqn,
                host_id: h.host_id,
                subsystems,
            })
        })
        .collect()
}

/// One namespace of `nvme show-topology -o json` with its controller paths.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TopologyNamespace {
    /// Namespace id.
    #[serde(rename = "NSID")]
    pub nsid: u32,
    /// Paths to it.
    #[serde(default)]
    pub paths: Vec<NvmePath>,
}

/// One subsystem of `nvme show-topology -o json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TopologySubsystem {
    /// `nvme-subsysN`.
    pub name: String,
    /// Subsystem NQN as printed.
    #[serde(rename = "NQN")]
    pub nqn: String,
    /// Namespaces.
    #[serde(default)]
    pub namespaces: Vec<TopologyNamespace>,
}

/// One host of `nvme show-topology -o json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TopologyHost {
    /// Host NQN.
    #[serde(default, rename = "HostNQN")]
    pub host_nqn: Option<String>,
    /// Host ID.
    #[serde(default, rename = "HostID")]
    pub host_id: Option<String>,
    /// Subsystems.
    #[serde(default)]
    pub subsystems: Vec<TopologySubsystem>,
}

/// Parses `nvme show-topology -o json` (nvme-cli 2.3 and later).
pub fn parse_show_topology(text: &str) -> Result<Vec<TopologyHost>> {
    super::json(Format::NvmeTopology, text)
}

/// One namespace of `nvme netapp ontapdevices -o json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OntapDevice {
    /// Block device (`/dev/nvme0n1`).
    #[serde(rename = "Device")]
    pub device: String,
    /// SVM name.
    #[serde(rename = "Vserver")]
    pub vserver: String,
    /// ONTAP subsystem name.
    #[serde(rename = "Subsystem", default)]
    pub subsystem: Option<String>,
    /// ONTAP namespace path (`/vol/vol1/ns1`).
    #[serde(rename = "Namespace_Path")]
    pub namespace_path: String,
    /// Namespace id.
    #[serde(rename = "NSID")]
    pub nsid: u32,
    /// Namespace UUID, the key to match ONTAP's `/api/storage/namespaces` `uuid`.
    #[serde(rename = "UUID")]
    pub uuid: String,
    /// Block size in bytes.
    #[serde(rename = "LBA_Size")]
    pub lba_size: u64,
    /// Size in bytes.
    #[serde(rename = "Namespace_Size")]
    pub size: u64,
    /// Used bytes.
    #[serde(rename = "UsedBytes", default)]
    pub used_bytes: Option<u64>,
    /// ONTAP version.
    #[serde(rename = "Version", default)]
    pub version: Option<String>,
}

/// Parses `nvme netapp ontapdevices -o json`.
pub fn parse_ontap_devices(text: &str) -> Result<Vec<OntapDevice>> {
    #[derive(Deserialize)]
    struct Doc {
        #[serde(rename = "ONTAPdevices", default)]
        devices: Vec<OntapDevice>,
    }
    if text.trim().is_empty() {
        // nvme-cli prints nothing at all when no ONTAP namespace is attached.
        return Ok(Vec::new());
    }
    super::json::<Doc>(Format::NvmeOntapDevices, text).map(|d| d.devices)
}

/// Reads `/etc/nvme/hostnqn`: one NQN, surrounding whitespace ignored.
pub fn parse_hostnqn(text: &str) -> Result<Nqn> {
    let v = text.trim();
    if v.is_empty() {
        return Err(Error::parse(Format::NvmeHostFile, 1, "empty hostnqn file"));
    }
    Nqn::parse(v)
}

/// Reads `/etc/nvme/hostid`: one UUID, returned lowercase.
pub fn parse_hostid(text: &str) -> Result<String> {
    let v = text.trim();
    if !is_uuid(v) {
        return Err(Error::parse(
            Format::NvmeHostFile,
            1,
            "hostid is not a UUID",
        ));
    }
    Ok(v.to_ascii_lowercase())
}
