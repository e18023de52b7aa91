//! `/etc/corosync/corosync.conf` for the DLM that GFS2's `lock_dlm` needs: cluster name,
//! transport, nodes and votequorum. (`dlm_controld` needs no file of its own: it reads the
//! membership from corosync; run it as `dlm.service` or a pacemaker `controld` clone.)

use std::net::IpAddr;

use host_storage::Change;

use crate::error::{Error, Format, Result, ValueKind};
use crate::names::{ClusterName, NodeName};

/// Where the file lives on a host.
pub const COROSYNC_CONF: &str = "/etc/corosync/corosync.conf";

/// `totem.transport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// `knet` (corosync 3 default; up to 8 links, encryption).
    Knet,
    /// `udpu` (corosync 2 unicast).
    Udpu,
    /// `udp` (multicast).
    Udp,
}

impl Transport {
    /// The value in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Knet => "knet",
            Transport::Udpu => "udpu",
            Transport::Udp => "udp",
        }
    }
}

/// `totem.crypto_cipher` / `crypto_hash`. Encryption needs `/etc/corosync/authkey`
/// (`corosync-keygen`), which this crate does not create or read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Crypto {
    /// `none` / `none`.
    None,
    /// `aes256` / `sha256`.
    Aes256Sha256,
}

/// One `nodelist.node`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorosyncNode {
    /// `nodeid`, 1 or more, unique.
    pub nodeid: u32,
    /// `name`: the host name.
    pub name: NodeName,
    /// `ring0_addr`.
    pub ring0_addr: IpAddr,
    /// `ring1_addr`: a second link (knet).
    pub ring1_addr: Option<IpAddr>,
}

impl CorosyncNode {
    /// A node with one link. Node id 0 is refused.
    pub fn new(nodeid: u32, name: NodeName, ring0_addr: IpAddr) -> Result<Self> {
        if nodeid == 0 {
            return Err(Error::invalid(
                ValueKind::Number,
                "0",
                "corosync nodeid must be at least 1",
            ));
        }
        Ok(CorosyncNode {
            nodeid,
            name,
            ring0_addr,
            ring1_addr: None,
        })
    }

    /// A second link.
    pub fn ring1(mut self, addr: IpAddr) -> Self {
        self.ring1_addr = Some(addr);
        self
    }
}

/// The corosync configuration of a GFS2 cluster.
///
/// With exactly two nodes, `two_node: 1` is written (votequorum then keeps quorum with one
/// node, which implies `wait_for_all`).
///
/// ```
/// use cluster_fs::gfs2::{CorosyncConf, CorosyncNode};
/// use cluster_fs::{ClusterName, NodeName};
/// let mut c = CorosyncConf::new(ClusterName::parse("kvmcl")?);
/// c.add_node(CorosyncNode::new(1, NodeName::parse("kvm1")?, "10.0.0.11".parse().unwrap())?)?;
/// c.add_node(CorosyncNode::new(2, NodeName::parse("kvm2")?, "10.0.0.12".parse().unwrap())?)?;
/// let text = c.render()?;
/// assert!(text.contains("\tcluster_name: kvmcl\n"));
/// assert!(text.contains("\ttwo_node: 1\n"));
/// assert_eq!(CorosyncConf::parse(&text)?, c);
/// # Ok::<(), cluster_fs::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorosyncConf {
    /// `totem.cluster_name`: the first half of every GFS2 lock table.
    pub cluster_name: ClusterName,
    /// `totem.transport`.
    pub transport: Transport,
    /// `totem.crypto_*`.
    pub crypto: Crypto,
    /// `quorum.wait_for_all` (implied by two-node clusters).
    pub wait_for_all: bool,
    nodes: Vec<CorosyncNode>,
}

#[derive(Debug, Default)]
struct Section {
    name: String,
    line: usize,
    entries: Vec<(String, String)>,
    children: Vec<Section>,
}

impl Section {
    fn get(&self, k: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }
    fn child(&self, name: &str) -> Option<&Section> {
        self.children.iter().find(|c| c.name == name)
    }
}

fn tree(text: &str) -> Result<Section> {
    let mut stack = vec![Section::default()];
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_suffix('{') {
            stack.push(Section {
                name: name.trim().to_owned(),
                line: n,
                ..Section::default()
            });
        } else if line == "}" {
            let done = stack.pop().filter(|_| !stack.is_empty());
            match (done, stack.last_mut()) {
                (Some(done), Some(parent)) => parent.children.push(done),
                _ => return Err(Error::parse(Format::CorosyncConf, n, "unbalanced '}'")),
            }
        } else if let Some((k, v)) = line.split_once(':') {
            if let Some(top) = stack.last_mut() {
                top.entries.push((k.trim().to_owned(), v.trim().to_owned()));
            }
        } else {
            return Err(Error::parse(
                Format::CorosyncConf,
                n,
                "expected key: value, section { or }",
            ));
        }
    }
    if stack.len() != 1 {
        return Err(Error::parse(Format::CorosyncConf, 0, "unclosed section"));
    }
    Ok(stack.pop().unwrap_or_default())
}

impl CorosyncConf {
    /// An empty cluster on knet without encryption.
    pub fn new(cluster_name: ClusterName) -> Self {
        CorosyncConf {
            cluster_name,
            transport: Transport::Knet,
            crypto: Crypto::None,
            wait_for_all: false,
            nodes: Vec::new(),
        }
    }

    /// The nodes.
    pub fn nodes(&self) -> &[CorosyncNode] {
        &self.nodes
    }

    /// Adds a node; the same node again is `Unchanged`, a clash of id, name or address with
    /// another node is [`Error::ClusterConflict`].
    pub fn add_node(&mut self, node: CorosyncNode) -> Result<Change> {
        if self.nodes.contains(&node) {
            return Ok(Change::Unchanged);
        }
        let conflict = |reason| Error::ClusterConflict {
            cluster: self.cluster_name.to_string(),
            node: node.name.to_string(),
            reason,
        };
        for n in &self.nodes {
            if n.name == node.name {
                return Err(conflict("a node of this name has another id or address"));
            }
            if n.nodeid == node.nodeid {
                return Err(conflict("nodeid already used by another node"));
            }
            if n.ring0_addr == node.ring0_addr {
                return Err(conflict("ring0_addr already used by another node"));
            }
        }
        self.nodes.push(node);
        Ok(Change::Changed)
    }

    /// Merges the nodes of `other` (same cluster name required). Nothing changes on error.
    pub fn merge(&mut self, other: &CorosyncConf) -> Result<Change> {
        if other.cluster_name != self.cluster_name {
            return Err(Error::ClusterConflict {
                cluster: self.cluster_name.to_string(),
                node: String::new(),
                reason: "cluster names differ",
            });
        }
        let mut next = self.clone();
        let mut change = Change::Unchanged;
        for n in &other.nodes {
            change = change.and(next.add_node(n.clone())?);
        }
        *self = next;
        Ok(change)
    }

    /// Checks that a GFS2 lock table names this cluster (DLM refuses the mount otherwise).
    ///
    /// ```
    /// use cluster_fs::gfs2::CorosyncConf;
    /// use cluster_fs::{ClusterName, LockTable};
    /// let c = CorosyncConf::new(ClusterName::parse("kvmcl")?);
    /// c.check_lock_table(&LockTable::parse("kvmcl:vmstore")?)?;
    /// assert!(c.check_lock_table(&LockTable::parse("other:vmstore")?).is_err());
    /// # Ok::<(), cluster_fs::Error>(())
    /// ```
    pub fn check_lock_table(&self, table: &crate::names::LockTable) -> Result<()> {
        if table.cluster() != &self.cluster_name {
            return Err(Error::ClusterConflict {
                cluster: self.cluster_name.to_string(),
                node: String::new(),
                reason: "the lock table names another cluster than corosync's cluster_name",
            });
        }
        Ok(())
    }

    /// Renders the file; refuses a cluster without nodes.
    pub fn render(&self) -> Result<String> {
        if self.nodes.is_empty() {
            return Err(Error::ClusterConflict {
                cluster: self.cluster_name.to_string(),
                node: String::new(),
                reason: "a corosync cluster needs at least one node",
            });
        }
        let (cipher, hash) = match self.crypto {
            Crypto::None => ("none", "none"),
            Crypto::Aes256Sha256 => ("aes256", "sha256"),
        };
        let mut s = format!(
            "# Written by kvmstor.\ntotem {{\n\tversion: 2\n\tcluster_name: {}\n\ttransport: {}\n\tcrypto_cipher: {cipher}\n\tcrypto_hash: {hash}\n}}\n\nnodelist {{\n",
            self.cluster_name,
            self.transport.as_str()
        );
        for n in &self.nodes {
            s.push_str(&format!("\tnode {{\n\t\tring0_addr: {}\n", n.ring0_addr));
            if let Some(r1) = n.ring1_addr {
                s.push_str(&format!("\t\tring1_addr: {r1}\n"));
            }
            s.push_str(&format!(
                "\t\tname: {}\n\t\tnodeid: {}\n\t}}\n",
                n.name, n.nodeid
            ));
        }
        s.push_str("}\n\nquorum {\n\tprovider: corosync_votequorum\n");
        if self.nodes.len() == 2 {
            s.push_str("\ttwo_node: 1\n");
        }
        if self.wait_for_all {
            s.push_str("\twait_for_all: 1\n");
        }
        s.push_str("}\n\nlogging {\n\tto_syslog: yes\n\tto_stderr: no\n}\n");
        Ok(s)
    }

    /// Parses a corosync configuration (any layout corosync accepts: `key: value`,
    /// `section {`, `}`); only votequorum is accepted as quorum provider.
    pub fn parse(text: &str) -> Result<Self> {
        let root = tree(text)?;
        let p = |line, reason| Error::parse(Format::CorosyncConf, line, reason);
        let totem = root
            .child("totem")
            .ok_or_else(|| p(0, "no totem section"))?;
        let name = totem
            .get("cluster_name")
            .ok_or_else(|| p(totem.line, "no totem.cluster_name"))?;
        let cluster_name =
            ClusterName::parse(name).map_err(|_| p(totem.line, "bad cluster_name"))?;
        let transport = match totem.get("transport") {
            None | Some("knet") => Transport::Knet,
            Some("udpu") => Transport::Udpu,
            Some("udp") => Transport::Udp,
            Some(_) => return Err(p(totem.line, "unknown transport")),
        };
        let crypto = match (totem.get("crypto_cipher"), totem.get("crypto_hash")) {
            (None | Some("none"), None | Some("none")) => Crypto::None,
            (Some("aes256"), Some("sha256")) => Crypto::Aes256Sha256,
            _ => return Err(p(totem.line, "unsupported crypto_cipher/crypto_hash")),
        };
        let mut conf = CorosyncConf::new(cluster_name);
        conf.transport = transport;
        conf.crypto = crypto;
        if let Some(nodelist) = root.child("nodelist") {
            for node in nodelist.children.iter().filter(|c| c.name == "node") {
                let l = node.line;
                let addr = |k: &str| -> Result<Option<IpAddr>> {
                    node.get(k)
                        .map(|a| a.parse().map_err(|_| p(l, "bad ring address")))
                        .transpose()
                };
                let nodeid: u32 = node
                    .get("nodeid")
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| p(l, "node without numeric nodeid"))?;
                let name =
                    NodeName::parse(node.get("name").ok_or_else(|| p(l, "node without name"))?)
                        .map_err(|_| p(l, "bad node name"))?;
                let ring0 = addr("ring0_addr")?.ok_or_else(|| p(l, "node without ring0_addr"))?;
                let mut n = CorosyncNode::new(nodeid, name, ring0).map_err(|_| p(l, "nodeid 0"))?;
                n.ring1_addr = addr("ring1_addr")?;
                let _ = conf.add_node(n).map_err(|_| p(l, "duplicate node"))?;
            }
        }
        if let Some(q) = root.child("quorum") {
            if q.get("provider") != Some("corosync_votequorum") {
                return Err(p(q.line, "quorum provider must be corosync_votequorum"));
            }
            conf.wait_for_all = q.get("wait_for_all") == Some("1");
        }
        Ok(conf)
    }
}
