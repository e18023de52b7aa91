//! `/etc/ocfs2/cluster.conf`: a typed model, read, merged and rendered exactly as `o2cb`
//! writes it (stanza name at column 0 ending with `:`, parameters indented with a tab, a
//! blank line after each stanza; per cluster: the `cluster:` stanza, its `heartbeat:`
//! stanzas, then its `node:` stanzas).
//!
//! The file must be identical on every node of the cluster, so it is built from the same
//! [`ClusterConf`] everywhere and merged, never edited by hand.

use std::net::IpAddr;

use host_storage::Change;

use crate::error::{Error, Format, Result, ValueKind};
use crate::names::{ClusterName, NodeName};

/// Where the file lives on a host.
pub const CLUSTER_CONF: &str = "/etc/ocfs2/cluster.conf";

/// The o2cb node port every example uses.
pub const DEFAULT_PORT: u16 = 7777;

/// Local heartbeat (one region per mounted volume) or global heartbeat (fixed regions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeartbeatMode {
    /// `local` (default): each mounted volume heartbeats on itself.
    Local,
    /// `global`: heartbeat on the `heartbeat:` regions only.
    Global,
}

impl HeartbeatMode {
    /// The value in `cluster.conf`.
    pub fn as_str(self) -> &'static str {
        match self {
            HeartbeatMode::Local => "local",
            HeartbeatMode::Global => "global",
        }
    }
}

/// A global heartbeat region: the volume UUID as 32 uppercase hex digits
/// (`mounted.ocfs2 -d` prints it this way).
///
/// ```
/// use cluster_fs::ocfs2::Region;
/// let r = Region::parse("329e6070-f06b-425e-afc1-45816b197431")?;
/// assert_eq!(r.as_str(), "329E6070F06B425EAFC145816B197431");
/// # Ok::<(), cluster_fs::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Region(String);

impl Region {
    /// Accepts 32 hex digits, with or without UUID dashes, any case.
    pub fn parse(s: &str) -> Result<Self> {
        let hex: String = s.chars().filter(|c| *c != '-').collect();
        if hex.len() != 32 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::invalid(
                ValueKind::Region,
                s,
                "must be a volume UUID (32 hex digits)",
            ));
        }
        Ok(Region(hex.to_ascii_uppercase()))
    }

    /// The 32 uppercase hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The `cluster:` stanza (its `node_count` is computed from the nodes when rendered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ocfs2Cluster {
    /// `name`.
    pub name: ClusterName,
    /// `heartbeat_mode`.
    pub heartbeat_mode: HeartbeatMode,
    /// Parameters this crate does not model, kept in order.
    pub extra: Vec<(String, String)>,
}

impl Ocfs2Cluster {
    /// A cluster with this heartbeat mode.
    pub fn new(name: ClusterName, heartbeat_mode: HeartbeatMode) -> Self {
        Ocfs2Cluster {
            name,
            heartbeat_mode,
            extra: Vec::new(),
        }
    }
}

/// A `node:` stanza.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ocfs2Node {
    /// `cluster`.
    pub cluster: ClusterName,
    /// `number`, 0 to 254, unique in the cluster.
    pub number: u8,
    /// `ip_port`.
    pub ip_port: u16,
    /// `ip_address` (the interconnect address).
    pub ip_address: IpAddr,
    /// `name`: the node's host name.
    pub name: NodeName,
    /// Parameters this crate does not model, kept in order.
    pub extra: Vec<(String, String)>,
}

impl Ocfs2Node {
    /// A node on [`DEFAULT_PORT`]. Numbers above 254 are refused.
    pub fn new(
        cluster: ClusterName,
        name: NodeName,
        number: u8,
        ip_address: IpAddr,
    ) -> Result<Self> {
        if number == 255 {
            return Err(Error::invalid(
                ValueKind::Number,
                "255",
                "node number must be 0 to 254",
            ));
        }
        Ok(Ocfs2Node {
            cluster,
            number,
            ip_port: DEFAULT_PORT,
            ip_address,
            name,
            extra: Vec::new(),
        })
    }

    /// Another port.
    pub fn port(mut self, port: u16) -> Self {
        self.ip_port = port;
        self
    }
}

/// A `heartbeat:` stanza.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatRegion {
    /// `cluster`.
    pub cluster: ClusterName,
    /// `region`.
    pub region: Region,
}

/// The whole file.
///
/// ```
/// use cluster_fs::ocfs2::{ClusterConf, HeartbeatMode, Ocfs2Cluster, Ocfs2Node};
/// use cluster_fs::{ClusterName, NodeName};
/// let cl = ClusterName::parse("kvmcl")?;
/// let mut conf = ClusterConf::default();
/// conf.add_cluster(Ocfs2Cluster::new(cl.clone(), HeartbeatMode::Local))?;
/// conf.add_node(Ocfs2Node::new(cl.clone(), NodeName::parse("kvm1")?, 0, "10.0.0.11".parse().unwrap())?)?;
/// assert_eq!(conf.render(), "cluster:\n\tname = kvmcl\n\theartbeat_mode = local\n\tnode_count = 1\n\n\
///     node:\n\tcluster = kvmcl\n\tnumber = 0\n\tip_port = 7777\n\tip_address = 10.0.0.11\n\tname = kvm1\n\n");
/// assert_eq!(ClusterConf::parse(&conf.render())?, conf);
/// # Ok::<(), cluster_fs::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterConf {
    clusters: Vec<Ocfs2Cluster>,
    nodes: Vec<Ocfs2Node>,
    heartbeats: Vec<HeartbeatRegion>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Cluster,
    Node,
    Heartbeat,
}

struct Stanza {
    kind: Kind,
    line: usize,
    params: Vec<(String, String)>,
}

fn take(params: &mut Vec<(String, String)>, key: &str) -> Option<String> {
    let i = params.iter().position(|(k, _)| k == key)?;
    Some(params.remove(i).1)
}

fn need(
    params: &mut Vec<(String, String)>,
    key: &str,
    line: usize,
    reason: &'static str,
) -> Result<String> {
    take(params, key).ok_or_else(|| Error::parse(Format::ClusterConf, line, reason))
}

fn bad(line: usize, reason: &'static str) -> impl FnOnce(Error) -> Error {
    move |_| Error::parse(Format::ClusterConf, line, reason)
}

impl ClusterConf {
    /// Parses the file. Comments (`#`) and blank lines are skipped; each stanza's required
    /// parameters must be present; `node_count` is checked on render, not trusted.
    pub fn parse(text: &str) -> Result<Self> {
        let mut stanzas: Vec<Stanza> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let indented = raw.starts_with([' ', '\t']);
            if !indented {
                let kind = match trimmed {
                    "cluster:" => Kind::Cluster,
                    "node:" => Kind::Node,
                    "heartbeat:" => Kind::Heartbeat,
                    _ => return Err(Error::parse(Format::ClusterConf, n, "unknown stanza")),
                };
                stanzas.push(Stanza {
                    kind,
                    line: n,
                    params: Vec::new(),
                });
                continue;
            }
            let Some((k, v)) = trimmed.split_once('=') else {
                return Err(Error::parse(Format::ClusterConf, n, "expected key = value"));
            };
            let Some(st) = stanzas.last_mut() else {
                return Err(Error::parse(
                    Format::ClusterConf,
                    n,
                    "parameter before any stanza",
                ));
            };
            st.params.push((k.trim().to_owned(), v.trim().to_owned()));
        }
        let mut conf = ClusterConf::default();
        for mut st in stanzas {
            let l = st.line;
            match st.kind {
                Kind::Cluster => {
                    let name = need(&mut st.params, "name", l, "cluster without name")?;
                    let mode = match take(&mut st.params, "heartbeat_mode").as_deref() {
                        None | Some("local") => HeartbeatMode::Local,
                        Some("global") => HeartbeatMode::Global,
                        Some(_) => {
                            return Err(Error::parse(
                                Format::ClusterConf,
                                l,
                                "heartbeat_mode must be local or global",
                            ))
                        }
                    };
                    take(&mut st.params, "node_count");
                    conf.clusters.push(Ocfs2Cluster {
                        name: ClusterName::parse(&name).map_err(bad(l, "bad cluster name"))?,
                        heartbeat_mode: mode,
                        extra: st.params,
                    });
                }
                Kind::Node => {
                    let cluster = need(&mut st.params, "cluster", l, "node without cluster")?;
                    let number = need(&mut st.params, "number", l, "node without number")?;
                    let port =
                        take(&mut st.params, "ip_port").unwrap_or_else(|| DEFAULT_PORT.to_string());
                    let ip = need(&mut st.params, "ip_address", l, "node without ip_address")?;
                    let name = need(&mut st.params, "name", l, "node without name")?;
                    let number: u8 = number.parse().ok().filter(|n| *n < 255).ok_or_else(|| {
                        Error::parse(Format::ClusterConf, l, "number must be 0 to 254")
                    })?;
                    conf.nodes.push(Ocfs2Node {
                        cluster: ClusterName::parse(&cluster)
                            .map_err(bad(l, "bad cluster name"))?,
                        number,
                        ip_port: port
                            .parse()
                            .map_err(|_| Error::parse(Format::ClusterConf, l, "bad ip_port"))?,
                        ip_address: ip
                            .parse()
                            .map_err(|_| Error::parse(Format::ClusterConf, l, "bad ip_address"))?,
                        name: NodeName::parse(&name).map_err(bad(l, "bad node name"))?,
                        extra: st.params,
                    });
                }
                Kind::Heartbeat => {
                    let cluster = need(&mut st.params, "cluster", l, "heartbeat without cluster")?;
                    let region = need(&mut st.params, "region", l, "heartbeat without region")?;
                    conf.heartbeats.push(HeartbeatRegion {
                        cluster: ClusterName::parse(&cluster)
                            .map_err(bad(l, "bad cluster name"))?,
                        region: Region::parse(&region).map_err(bad(l, "bad region"))?,
                    });
                }
            }
        }
        let known = |c: &ClusterName| conf.clusters.iter().any(|k| &k.name == c);
        if conf.nodes.iter().any(|n| !known(&n.cluster))
            || conf.heartbeats.iter().any(|h| !known(&h.cluster))
        {
            return Err(Error::parse(
                Format::ClusterConf,
                0,
                "node or heartbeat of a cluster without a cluster: stanza",
            ));
        }
        Ok(conf)
    }

    /// The clusters.
    pub fn clusters(&self) -> &[Ocfs2Cluster] {
        &self.clusters
    }

    /// The cluster called `name`.
    pub fn cluster(&self, name: &ClusterName) -> Option<&Ocfs2Cluster> {
        self.clusters.iter().find(|c| &c.name == name)
    }

    /// The nodes of cluster `name`.
    pub fn nodes_of<'a>(&'a self, name: &ClusterName) -> impl Iterator<Item = &'a Ocfs2Node> + 'a {
        let name = name.clone();
        self.nodes.iter().filter(move |n| n.cluster == name)
    }

    /// The heartbeat regions of cluster `name`.
    pub fn heartbeats_of<'a>(
        &'a self,
        name: &ClusterName,
    ) -> impl Iterator<Item = &'a HeartbeatRegion> + 'a {
        let name = name.clone();
        self.heartbeats.iter().filter(move |h| h.cluster == name)
    }

    /// Adds a cluster; the same one again is `Unchanged`, another heartbeat mode a conflict.
    pub fn add_cluster(&mut self, cluster: Ocfs2Cluster) -> Result<Change> {
        match self.clusters.iter().find(|c| c.name == cluster.name) {
            Some(c) if c.heartbeat_mode == cluster.heartbeat_mode => Ok(Change::Unchanged),
            Some(c) => Err(Error::ClusterConflict {
                cluster: c.name.to_string(),
                node: String::new(),
                reason: "heartbeat mode differs",
            }),
            None => {
                self.clusters.push(cluster);
                Ok(Change::Changed)
            }
        }
    }

    /// Adds a node to its (already added) cluster. The same node again is `Unchanged`; a
    /// node with the same name, number or address but other settings is a conflict.
    pub fn add_node(&mut self, node: Ocfs2Node) -> Result<Change> {
        if self.cluster(&node.cluster).is_none() {
            return Err(Error::ClusterConflict {
                cluster: node.cluster.to_string(),
                node: node.name.to_string(),
                reason: "node added before its cluster",
            });
        }
        let conflict = |reason| Error::ClusterConflict {
            cluster: node.cluster.to_string(),
            node: node.name.to_string(),
            reason,
        };
        for n in self.nodes.iter().filter(|n| n.cluster == node.cluster) {
            let same_name = n.name == node.name;
            if same_name
                && n.number == node.number
                && n.ip_address == node.ip_address
                && n.ip_port == node.ip_port
            {
                return Ok(Change::Unchanged);
            }
            if same_name {
                return Err(conflict(
                    "a node of this name has another number or address",
                ));
            }
            if n.number == node.number {
                return Err(conflict("node number already used by another node"));
            }
            if n.ip_address == node.ip_address && n.ip_port == node.ip_port {
                return Err(conflict("address and port already used by another node"));
            }
        }
        self.nodes.push(node);
        Ok(Change::Changed)
    }

    /// Adds a global heartbeat region (once).
    pub fn add_heartbeat(&mut self, hb: HeartbeatRegion) -> Result<Change> {
        if self.cluster(&hb.cluster).is_none() {
            return Err(Error::ClusterConflict {
                cluster: hb.cluster.to_string(),
                node: String::new(),
                reason: "heartbeat added before its cluster",
            });
        }
        if self.heartbeats.contains(&hb) {
            return Ok(Change::Unchanged);
        }
        self.heartbeats.push(hb);
        Ok(Change::Changed)
    }

    /// Removes a node; already gone is `Unchanged`.
    pub fn remove_node(&mut self, cluster: &ClusterName, name: &NodeName) -> Change {
        let before = self.nodes.len();
        self.nodes
            .retain(|n| !(&n.cluster == cluster && &n.name == name));
        Change::from(self.nodes.len() != before)
    }

    /// Removes a heartbeat region; already gone is `Unchanged`.
    pub fn remove_heartbeat(&mut self, cluster: &ClusterName, region: &Region) -> Change {
        let before = self.heartbeats.len();
        self.heartbeats
            .retain(|h| !(&h.cluster == cluster && &h.region == region));
        Change::from(self.heartbeats.len() != before)
    }

    /// Merges every cluster, node and heartbeat of `other` into `self` (see
    /// [`ClusterConf::add_node`] for conflicts). Nothing is changed on error.
    pub fn merge(&mut self, other: &ClusterConf) -> Result<Change> {
        let mut next = self.clone();
        let mut change = Change::Unchanged;
        for c in &other.clusters {
            change = change.and(next.add_cluster(c.clone())?);
        }
        for h in &other.heartbeats {
            change = change.and(next.add_heartbeat(h.clone())?);
        }
        for n in &other.nodes {
            change = change.and(next.add_node(n.clone())?);
        }
        *self = next;
        Ok(change)
    }

    /// Renders the file as `o2cb` writes it.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let kv = |out: &mut String, k: &str, v: &dyn std::fmt::Display| {
            out.push_str(&format!("\t{k} = {v}\n"));
        };
        for c in &self.clusters {
            out.push_str("cluster:\n");
            kv(&mut out, "name", &c.name);
            kv(&mut out, "heartbeat_mode", &c.heartbeat_mode.as_str());
            kv(&mut out, "node_count", &self.nodes_of(&c.name).count());
            for (k, v) in &c.extra {
                kv(&mut out, k, v);
            }
            out.push('\n');
            for h in self.heartbeats_of(&c.name) {
                out.push_str("heartbeat:\n");
                kv(&mut out, "cluster", &h.cluster);
                kv(&mut out, "region", &h.region.as_str());
                out.push('\n');
            }
            for n in self.nodes_of(&c.name) {
                out.push_str("node:\n");
                kv(&mut out, "cluster", &n.cluster);
                kv(&mut out, "number", &n.number);
                kv(&mut out, "ip_port", &n.ip_port);
                kv(&mut out, "ip_address", &n.ip_address);
                kv(&mut out, "name", &n.name);
                for (k, v) in &n.extra {
                    kv(&mut out, k, v);
                }
                out.push('\n');
            }
        }
        out
    }
}
