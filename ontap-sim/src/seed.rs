//! Seed documents: the cluster a simulator starts with.
//!
//! A seed is JSON. Every section is optional and defaults to the default seed's section
//! (see [`Seed::default`]), except `volumes` and `bulk_volumes` (default: none):
//!
//! ```json
//! {
//!   "cluster": {"name": "sim-cluster",
//!               "version": {"full": "NetApp Release 9.16.1: ...", "generation": 9,
//!                           "major": 16, "minor": 1}},
//!   "nodes": [{"name": "sim-cluster-01"}, {"name": "sim-cluster-02"}],
//!   "aggregates": [{"name": "aggr1", "node": "sim-cluster-01", "size": 1099511627776}],
//!   "svms": [{"name": "svm1", "protocols": ["nfs", "cifs", "iscsi", "nvme", "fcp"],
//!             "aggregates": ["aggr1", "aggr2"],
//!             "ip_interfaces": [{"name": "lif_nfs", "address": "192.0.2.10",
//!                                "netmask": 24, "node": "sim-cluster-01",
//!                                "services": ["data_core", "data_nfs"]}],
//!             "fc_interfaces": [{"name": "lif_fc1", "node": "sim-cluster-01",
//!                                "port": "0a", "wwpn": "20:01:00:50:56:bb:00:01",
//!                                "data_protocol": "fcp"}]}],
//!   "volumes": [{"name": "vol1", "svm": {"name": "svm1"}, "aggregates": [{"name": "aggr1"}],
//!                "size": "10GB", "nas": {"path": "/vol1"}}],
//!   "bulk_volumes": {"svm": "svm1", "aggregate": "aggr1", "prefix": "bench",
//!                    "count": 100000, "size": 1048576}
//! }
//! ```
//!
//! `volumes` entries are volume POST bodies (same validation as the API). Bulk volumes
//! are thin (`guarantee.type=none`) and named `PREFIX_000001`… Each SVM gets its
//! `default` export policy, an iSCSI service (target IQN) when `iscsi` is listed and an
//! NVMe service when `nvme` is listed.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{ApiError, SimError};
use crate::resources::{href_ref, svm_ref};
use crate::store::{coll, Store};

/// `cluster` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SeedCluster {
    /// Cluster name.
    pub name: String,
    /// `version` object as `/api/cluster` returns it.
    pub version: Value,
}

/// A node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SeedNode {
    /// Node name.
    pub name: String,
}

/// An aggregate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SeedAggregate {
    /// Aggregate name.
    pub name: String,
    /// Owning node name.
    pub node: String,
    /// Usable size in bytes.
    pub size: u64,
}

/// An IP interface (LIF).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SeedIpInterface {
    /// LIF name.
    pub name: String,
    /// IPv4 or IPv6 address.
    pub address: String,
    /// Prefix length.
    #[serde(default = "default_netmask")]
    pub netmask: u8,
    /// Home node name.
    pub node: String,
    /// Services (`data_nfs`, `data_cifs`, `data_iscsi`, `data_nvme_tcp`, ...).
    pub services: Vec<String>,
}

fn default_netmask() -> u8 {
    24
}

/// An FC interface.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SeedFcInterface {
    /// LIF name.
    pub name: String,
    /// Home node name.
    pub node: String,
    /// Port name, e.g. `0a`.
    pub port: String,
    /// WWPN `xx:xx:…` (8 bytes).
    pub wwpn: String,
    /// `fcp` or `fc_nvme`.
    #[serde(default = "default_fc_protocol")]
    pub data_protocol: String,
}

fn default_fc_protocol() -> String {
    "fcp".into()
}

/// An SVM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SeedSvm {
    /// SVM name.
    pub name: String,
    /// Enabled protocols among `nfs`, `cifs`, `iscsi`, `nvme`, `fcp`.
    #[serde(default)]
    pub protocols: Vec<String>,
    /// Aggregates assigned to the SVM (names).
    #[serde(default)]
    pub aggregates: Vec<String>,
    /// Data LIFs.
    #[serde(default)]
    pub ip_interfaces: Vec<SeedIpInterface>,
    /// FC LIFs.
    #[serde(default)]
    pub fc_interfaces: Vec<SeedFcInterface>,
}

/// Many generated volumes, for benchmarks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct BulkVolumes {
    /// SVM name.
    pub svm: String,
    /// Aggregate name.
    pub aggregate: String,
    /// Name prefix.
    pub prefix: String,
    /// How many.
    pub count: u64,
    /// Size of each, bytes.
    pub size: u64,
}

/// A seed document. See the module documentation for the format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct Seed {
    /// The cluster.
    pub cluster: SeedCluster,
    /// Nodes.
    pub nodes: Vec<SeedNode>,
    /// Aggregates.
    pub aggregates: Vec<SeedAggregate>,
    /// SVMs.
    pub svms: Vec<SeedSvm>,
    /// Volume POST bodies.
    pub volumes: Vec<Value>,
    /// Generated volumes.
    pub bulk_volumes: Option<BulkVolumes>,
}

const TIB: u64 = 1024 * 1024 * 1024 * 1024;

fn lif(name: &str, address: &str, node: &str, services: &[&str]) -> SeedIpInterface {
    SeedIpInterface {
        name: name.into(),
        address: address.into(),
        netmask: 24,
        node: node.into(),
        services: services.iter().map(|s| s.to_string()).collect(),
    }
}

impl Default for Seed {
    /// Cluster `sim-cluster` (ONTAP 9.16.1), nodes `sim-cluster-01`/`-02`, aggregates
    /// `aggr1`/`aggr2` (1 TiB each), SVM `svm1` with NFS, CIFS, iSCSI, NVMe/TCP and FCP:
    /// LIFs `lif_nfs` (192.0.2.10), `lif_cifs` (.11), `lif_iscsi1`/`lif_iscsi2`
    /// (.21/.22 on the two nodes), `lif_nvme1`/`lif_nvme2` (.31/.32), FC LIFs
    /// `lif_fc1`/`lif_fc2`.
    fn default() -> Self {
        let n1 = "sim-cluster-01";
        let n2 = "sim-cluster-02";
        Seed {
            cluster: SeedCluster {
                name: "sim-cluster".into(),
                version: json!({
                    "full": "NetApp Release 9.16.1: Mon Sep 30 12:00:00 UTC 2024",
                    "generation": 9, "major": 16, "minor": 1}),
            },
            nodes: vec![SeedNode { name: n1.into() }, SeedNode { name: n2.into() }],
            aggregates: vec![
                SeedAggregate {
                    name: "aggr1".into(),
                    node: n1.into(),
                    size: TIB,
                },
                SeedAggregate {
                    name: "aggr2".into(),
                    node: n2.into(),
                    size: TIB,
                },
            ],
            svms: vec![SeedSvm {
                name: "svm1".into(),
                protocols: ["nfs", "cifs", "iscsi", "nvme", "fcp"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                aggregates: vec!["aggr1".into(), "aggr2".into()],
                ip_interfaces: vec![
                    lif("lif_nfs", "192.0.2.10", n1, &["data_core", "data_nfs"]),
                    lif("lif_cifs", "192.0.2.11", n2, &["data_core", "data_cifs"]),
                    lif("lif_iscsi1", "192.0.2.21", n1, &["data_core", "data_iscsi"]),
                    lif("lif_iscsi2", "192.0.2.22", n2, &["data_core", "data_iscsi"]),
                    lif(
                        "lif_nvme1",
                        "192.0.2.31",
                        n1,
                        &["data_core", "data_nvme_tcp"],
                    ),
                    lif(
                        "lif_nvme2",
                        "192.0.2.32",
                        n2,
                        &["data_core", "data_nvme_tcp"],
                    ),
                ],
                fc_interfaces: vec![
                    SeedFcInterface {
                        name: "lif_fc1".into(),
                        node: n1.into(),
                        port: "0a".into(),
                        wwpn: "20:01:00:50:56:bb:00:01".into(),
                        data_protocol: "fcp".into(),
                    },
                    SeedFcInterface {
                        name: "lif_fc2".into(),
                        node: n2.into(),
                        port: "0a".into(),
                        wwpn: "20:02:00:50:56:bb:00:02".into(),
                        data_protocol: "fcp".into(),
                    },
                ],
            }],
            volumes: Vec::new(),
            bulk_volumes: None,
        }
    }
}

fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn missing(what: &str, name: &str) -> SimError {
    SimError::Seed(ApiError::not_found_msg(format!(
        "seed refers to unknown {what} \"{name}\""
    )))
}

impl Seed {
    /// The lab seed, for the kernel backend: like [`Seed::default`] (without FC LIFs), but
    /// every LIF has a loopback address that `lo` already answers, two per protocol so
    /// multipath and trunking have two paths: `lif_nfs1`/`lif_nfs2` (127.0.1.1/.2, NFS
    /// and CIFS), `lif_iscsi1`/`lif_iscsi2` (127.0.1.3/.4), `lif_nvme1`/`lif_nvme2`
    /// (127.0.1.5/.6); SVM `svm1` serves NFS, CIFS, iSCSI and NVMe/TCP.
    ///
    /// ```
    /// let lab = ontap_sim::Seed::lab();
    /// let addrs: Vec<&str> = lab.svms[0].ip_interfaces.iter().map(|l| l.address.as_str()).collect();
    /// assert_eq!(addrs, ["127.0.1.1", "127.0.1.2", "127.0.1.3", "127.0.1.4", "127.0.1.5", "127.0.1.6"]);
    /// ```
    pub fn lab() -> Self {
        let mut seed = Seed::default();
        let n1 = "sim-cluster-01";
        let n2 = "sim-cluster-02";
        let lif8 = |name: &str, address: &str, node: &str, services: &[&str]| {
            let mut l = lif(name, address, node, services);
            l.netmask = 8;
            l
        };
        let nas = ["data_core", "data_nfs", "data_cifs"];
        seed.svms = vec![SeedSvm {
            name: "svm1".into(),
            protocols: ["nfs", "cifs", "iscsi", "nvme"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            aggregates: vec!["aggr1".into(), "aggr2".into()],
            ip_interfaces: vec![
                lif8("lif_nfs1", "127.0.1.1", n1, &nas),
                lif8("lif_nfs2", "127.0.1.2", n2, &nas),
                lif8("lif_iscsi1", "127.0.1.3", n1, &["data_core", "data_iscsi"]),
                lif8("lif_iscsi2", "127.0.1.4", n2, &["data_core", "data_iscsi"]),
                lif8(
                    "lif_nvme1",
                    "127.0.1.5",
                    n1,
                    &["data_core", "data_nvme_tcp"],
                ),
                lif8(
                    "lif_nvme2",
                    "127.0.1.6",
                    n2,
                    &["data_core", "data_nvme_tcp"],
                ),
            ],
            fc_interfaces: Vec::new(),
        }];
        seed
    }

    /// Parses a seed document.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Builds the initial store.
    pub fn build(&self) -> Result<Store, SimError> {
        let mut s = Store::default();
        let cluster_uuid = new_uuid();
        s.insert(
            coll::CLUSTER,
            "cluster",
            json!({"name": self.cluster.name, "uuid": cluster_uuid,
                   "version": self.cluster.version,
                   "san_optimized": false, "disaggregated": false,
                   "dns_domains": ["sim.example"], "ntp_servers": ["192.0.2.1"],
                   "_links": {"self": {"href": "/api/cluster"}}}),
        );
        for (i, n) in self.nodes.iter().enumerate() {
            let u = new_uuid();
            s.insert(
                coll::NODES,
                &u,
                json!({"uuid": u, "name": n.name, "model": "SIMBOX",
                       "serial_number": format!("4082368{:05}", i + 1),
                       "state": "up", "membership": "member",
                       "version": self.cluster.version,
                       "ha": {"enabled": true},
                       "_links": {"self": {"href": format!("/api/cluster/nodes/{u}")}}}),
            );
        }
        for a in &self.aggregates {
            let (nu, _) = s
                .find_named(coll::NODES, None, &a.node, |_| true)
                .map(|(k, v)| (k.clone(), v.clone()))
                .ok_or_else(|| missing("node", &a.node))?;
            let u = new_uuid();
            s.insert(
                coll::AGGREGATES,
                &u,
                json!({"uuid": u, "name": a.name, "state": "online",
                       "node": href_ref("/api/cluster/nodes", &nu, &a.node),
                       "home_node": href_ref("/api/cluster/nodes", &nu, &a.node),
                       "space": {"block_storage": {"size": a.size, "available": a.size,
                                                   "used": 0}},
                       "block_storage": {"primary": {"disk_type": "ssd", "raid_type": "raid_dp"}},
                       "_links": {"self": {"href": format!("/api/storage/aggregates/{u}")}}}),
            );
        }
        for (i, p) in ["default", "none", "default-1weekly"].iter().enumerate() {
            let u = new_uuid();
            s.insert(
                coll::SNAPSHOT_POLICIES,
                &u,
                json!({"uuid": u, "name": p, "enabled": *p != "none",
                       "scope": "cluster", "comment": format!("policy {}", i + 1),
                       "_links": {"self": {"href": format!("/api/storage/snapshot-policies/{u}")}}}),
            );
        }
        let cluster_name = self.cluster.name.clone();
        for svm in &self.svms {
            self.build_svm(&mut s, svm, &cluster_name)?;
        }
        for body in &self.volumes {
            let obj = body.as_object().cloned().ok_or_else(|| {
                SimError::Seed(ApiError::invalid("volume seed must be an object"))
            })?;
            let svm = s
                .resolve_svm(obj.get("svm").unwrap_or(&Value::Null))
                .map_err(SimError::Seed)?;
            let u = new_uuid();
            let rec = crate::resources::volumes::build_volume(&s, &svm, &obj, &u)
                .map_err(SimError::Seed)?;
            crate::resources::volumes::apply_aggregate_delta(&mut s, None, Some(&rec))
                .map_err(|f| SimError::Seed(ApiError::new(400, f.code.to_string(), f.message)))?;
            s.insert(coll::VOLUMES, &u, rec);
        }
        if let Some(b) = &self.bulk_volumes {
            let svm = s
                .resolve_svm(&json!({"name": b.svm}))
                .map_err(SimError::Seed)?;
            let width = b.count.to_string().len().max(6);
            for i in 1..=b.count {
                let body = json!({"name": format!("{}_{:0width$}", b.prefix, i),
                                  "aggregates": [{"name": b.aggregate}],
                                  "size": b.size, "guarantee": {"type": "none"}});
                let u = new_uuid();
                let rec = crate::resources::volumes::build_volume(
                    &s,
                    &svm,
                    body.as_object().expect("literal object"),
                    &u,
                )
                .map_err(SimError::Seed)?;
                s.insert(coll::VOLUMES, &u, rec);
            }
        }
        Ok(s)
    }

    fn build_svm(&self, s: &mut Store, svm: &SeedSvm, cluster_name: &str) -> Result<(), SimError> {
        let u = new_uuid();
        let has = |p: &str| svm.protocols.iter().any(|x| x == p);
        let mut aggrs = Vec::new();
        for a in &svm.aggregates {
            let (k, v) = s
                .find_named(coll::AGGREGATES, None, a, |_| true)
                .ok_or_else(|| missing("aggregate", a))?;
            aggrs.push(json!({"name": v["name"], "uuid": k}));
        }
        let mut lifs = Vec::new();
        for l in &svm.ip_interfaces {
            let (nu, _) = s
                .find_named(coll::NODES, None, &l.node, |_| true)
                .map(|(k, v)| (k.clone(), v.clone()))
                .ok_or_else(|| missing("node", &l.node))?;
            let lu = new_uuid();
            let family = if l.address.contains(':') {
                "ipv6"
            } else {
                "ipv4"
            };
            let rec = json!({
                "uuid": lu, "name": l.name, "scope": "svm",
                "svm": svm_ref(&u, &svm.name),
                "ipspace": {"name": "Default"},
                "ip": {"address": l.address, "netmask": l.netmask.to_string(), "family": family},
                "location": {"home_node": href_ref("/api/cluster/nodes", &nu, &l.node),
                             "node": href_ref("/api/cluster/nodes", &nu, &l.node),
                             "home_port": {"name": "e0c", "node": {"name": l.node}},
                             "port": {"name": "e0c", "node": {"name": l.node}},
                             "is_home": true, "auto_revert": false},
                "services": l.services,
                "service_policy": {"name": crate::resources::network::policy_for(&l.services)},
                "enabled": true, "state": "up",
                "_links": {"self": {"href": format!("/api/network/ip/interfaces/{lu}")}},
            });
            lifs.push(
                json!({"name": l.name, "uuid": lu, "ip": {"address": l.address},
                             "services": l.services}),
            );
            s.insert(coll::IP_INTERFACES, &lu, rec);
        }
        for f in &svm.fc_interfaces {
            let (nu, _) = s
                .find_named(coll::NODES, None, &f.node, |_| true)
                .map(|(k, v)| (k.clone(), v.clone()))
                .ok_or_else(|| missing("node", &f.node))?;
            let fu = new_uuid();
            let port_address = format!("{:x}", 0x10400 + s.next_counter("fc_port_address"));
            let hex: String = u.chars().filter(char::is_ascii_hexdigit).take(6).collect();
            let wwnn = format!(
                "20:00:00:a0:98:{}:{}:{}",
                &hex[0..2],
                &hex[2..4],
                &hex[4..6]
            );
            s.insert(
                coll::FC_INTERFACES,
                &fu,
                json!({"uuid": fu, "name": f.name, "svm": svm_ref(&u, &svm.name),
                       "data_protocol": f.data_protocol, "wwpn": f.wwpn, "wwnn": wwnn,
                       "port_address": port_address,
                       "state": "up", "enabled": true,
                       "location": {"home_node": href_ref("/api/cluster/nodes", &nu, &f.node),
                                    "home_port": {"name": f.port, "node": {"name": f.node}},
                                    "node": href_ref("/api/cluster/nodes", &nu, &f.node),
                                    "port": {"name": f.port, "node": {"name": f.node}}},
                       "_links": {"self": {"href": format!("/api/network/fc/interfaces/{fu}")}}}),
            );
        }
        let rec = json!({
            "uuid": u, "name": svm.name, "state": "running", "subtype": "default",
            "language": "c.utf_8", "ipspace": {"name": "Default"},
            "aggregates": aggrs, "ip_interfaces": lifs,
            "nfs": {"enabled": has("nfs")},
            "cifs": {"enabled": has("cifs"), "name": svm.name.to_uppercase()},
            "iscsi": {"enabled": has("iscsi")},
            "fcp": {"enabled": has("fcp")},
            "nvme": {"enabled": has("nvme")},
            "snapshot_policy": {"name": "default"},
            "comment": "",
            "_links": {"self": {"href": format!("/api/svm/svms/{u}")}},
        });
        s.insert(coll::SVMS, &u, rec);
        let protocols: Vec<&str> = svm.protocols.iter().map(String::as_str).collect();
        insert_services(s, &u, &svm.name, &protocols, cluster_name);
        Ok(())
    }
}

/// Creates what an SVM gets with it: the `default` export policy and a service record
/// for each enabled protocol among `iscsi`, `nvme`, `nfs`, `cifs` (the FCP service is
/// created through the API).
pub(crate) fn insert_services(
    s: &mut Store,
    svm_uuid: &str,
    svm_name: &str,
    protocols: &[&str],
    cluster_name: &str,
) {
    let has = |p: &str| protocols.contains(&p);
    let vserver_id = s.next_counter("vserver_id") + 2;
    crate::resources::nas::insert_default_policy(s, svm_uuid, svm_name);
    if has("iscsi") {
        // ONTAP names the target after the SVM's full UUID (32 hex digits), as the
        // iSCSI service POST does.
        let serial: String = svm_uuid.replace('-', "");
        s.insert(
                coll::ISCSI_SERVICES,
                svm_uuid,
                json!({"svm": svm_ref(svm_uuid, svm_name), "enabled": true,
                       "target": {"name": format!("iqn.1992-08.com.netapp:sn.{serial}:vs.{}", vserver_id),
                                  "alias": svm_name},
                       "_links": {"self": {"href": format!("/api/protocols/san/iscsi/services/{svm_uuid}")}}}),
            );
    }
    if has("nvme") {
        s.insert(
                coll::NVME_SERVICES,
                svm_uuid,
                json!({"svm": svm_ref(svm_uuid, svm_name), "enabled": true,
                       "_links": {"self": {"href": format!("/api/protocols/nvme/services/{svm_uuid}")}}}),
            );
    }
    if has("nfs") {
        s.insert(
                coll::NFS_SERVICES,
                svm_uuid,
                json!({"svm": svm_ref(svm_uuid, svm_name), "enabled": true, "state": "online",
                       "protocol": {"v3_enabled": true, "v4_enabled": true,
                                    "v41_enabled": true, "v42_enabled": true},
                       "transport": {"tcp_enabled": true, "udp_enabled": false},
                       "_links": {"self": {"href": format!("/api/protocols/nfs/services/{svm_uuid}")}}}),
            );
    }
    if has("cifs") {
        s.insert(
                coll::CIFS_SERVICES,
                svm_uuid,
                json!({"svm": svm_ref(svm_uuid, svm_name), "enabled": true,
                       "name": svm_name.to_uppercase(),
                       "ad_domain": {"fqdn": format!("{}.SIM.EXAMPLE", cluster_name.to_uppercase())},
                       "_links": {"self": {"href": format!("/api/protocols/cifs/services/{svm_uuid}")}}}),
            );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_seed_builds_and_round_trips() {
        let seed = Seed::default();
        let text = serde_json::to_string(&seed).unwrap();
        assert_eq!(Seed::from_json(&text).unwrap(), seed);
        let s = seed.build().unwrap();
        assert_eq!(s.len(coll::NODES), 2);
        assert_eq!(s.len(coll::AGGREGATES), 2);
        assert_eq!(s.len(coll::IP_INTERFACES), 6);
        assert_eq!(s.len(coll::FC_INTERFACES), 2);
        assert_eq!(s.len(coll::ISCSI_SERVICES), 1);
        assert_eq!(s.len(coll::NVME_SERVICES), 1);
        assert_eq!(s.len(coll::FCP_SERVICES), 0);
        assert_eq!(s.len(coll::NFS_SERVICES), 1);
        assert_eq!(s.len(coll::CIFS_SERVICES), 1);
        assert_eq!(s.len(coll::EXPORT_POLICIES), 1);
    }

    #[test]
    fn bulk_volumes_are_generated() {
        let seed: Seed = Seed::from_json(
            r#"{"bulk_volumes":{"svm":"svm1","aggregate":"aggr1","prefix":"b","count":1500,"size":1048576}}"#,
        )
        .unwrap();
        let s = seed.build().unwrap();
        assert_eq!(s.len(coll::VOLUMES), 1500);
        assert_eq!(s.keys_named(coll::VOLUMES, "b_001500").len(), 1);
    }
}
