//! NVMe over Fabrics with nvme-cli: discovery, connect (TCP; RDMA and FC addresses
//! modelled), `connect-all`, `/etc/nvme/discovery.conf` entries, native NVMe multipath
//! detection, controllers and namespaces from sysfs, topology, and a disconnect that touches
//! only controllers kvmstor connected and only when none of their namespaces is in use.
//!
//! Controllers are matched purely in sysfs (`/sys/class/nvme/nvmeX/{subsysnqn,transport,
//! address,state}`), so a call made twice finds the live controller and connects nothing.
//! [`Nvme::connect_paths`] connects every missing path at once. Disconnect names exactly
//! the controllers kvmstor connected: by subsystem NQN (`nvme disconnect -n NQN`, one
//! process) only when every controller of that subsystem is one of them, else per
//! controller (`nvme disconnect -d nvmeX`), so paths the administrator connected to the
//! same subsystem stay up.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Deserialize;

use crate::change::Change;
use crate::error::{Error, Format, Result, ValueKind};
use crate::files::{EntryId, HostRoot, LineUndo, ManagedFile};
use crate::ids::{HostName, Nqn, Wwnn, Wwpn};
use crate::parse::mountinfo::parse_mountinfo;
use crate::parse::nvme::{parse_address, parse_list_subsys, NvmeHost};
use crate::runner::{Command, Runner};
use crate::sysfs::Sysfs;

/// Default NVMe/TCP and RDMA I/O port.
pub const NVME_IO_PORT: u16 = 4420;
/// Default discovery controller port.
pub const NVME_DISCOVERY_PORT: u16 = 8009;

/// Where and how a controller is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transport {
    /// NVMe/TCP to `address:port`, optionally from a given local address.
    Tcp {
        /// Target address.
        address: HostName,
        /// Target port (`trsvcid`).
        port: u16,
        /// Local address to connect from (`host_traddr`).
        host_address: Option<HostName>,
    },
    /// NVMe/RDMA (RoCE, iWARP, InfiniBand).
    Rdma {
        /// Target address.
        address: HostName,
        /// Target port.
        port: u16,
    },
    /// NVMe/FC: the target port and the local HBA port, each as `nn-0x…:pn-0x…`.
    Fc {
        /// Target node name.
        target_wwnn: Wwnn,
        /// Target port name.
        target_wwpn: Wwpn,
        /// Local node name.
        host_wwnn: Wwnn,
        /// Local port name.
        host_wwpn: Wwpn,
    },
}

impl Transport {
    /// NVMe/TCP on port 4420.
    pub fn tcp(address: HostName) -> Self {
        Transport::Tcp {
            address,
            port: NVME_IO_PORT,
            host_address: None,
        }
    }

    /// `tcp`, `rdma` or `fc`.
    pub fn name(&self) -> &'static str {
        match self {
            Transport::Tcp { .. } => "tcp",
            Transport::Rdma { .. } => "rdma",
            Transport::Fc { .. } => "fc",
        }
    }

    /// `traddr` as nvme-cli and sysfs spell it.
    pub fn traddr(&self) -> String {
        match self {
            Transport::Tcp { address, .. } | Transport::Rdma { address, .. } => {
                address.as_str().to_owned()
            }
            Transport::Fc {
                target_wwnn,
                target_wwpn,
                ..
            } => format!(
                "nn-{}:pn-{}",
                target_wwnn.to_sysfs(),
                target_wwpn.to_sysfs()
            ),
        }
    }

    /// `trsvcid`, for IP transports.
    pub fn trsvcid(&self) -> Option<u16> {
        match self {
            Transport::Tcp { port, .. } | Transport::Rdma { port, .. } => Some(*port),
            Transport::Fc { .. } => None,
        }
    }

    /// `host_traddr`, when set.
    pub fn host_traddr(&self) -> Option<String> {
        match self {
            Transport::Tcp { host_address, .. } => {
                host_address.as_ref().map(|h| h.as_str().to_owned())
            }
            Transport::Rdma { .. } => None,
            Transport::Fc {
                host_wwnn,
                host_wwpn,
                ..
            } => Some(format!(
                "nn-{}:pn-{}",
                host_wwnn.to_sysfs(),
                host_wwpn.to_sysfs()
            )),
        }
    }

    /// The nvme-cli arguments `-t T -a ADDR [-s PORT] [-w HOST_TRADDR]`.
    ///
    /// ```
    /// use host_storage::nvmeof::Transport;
    /// use host_storage::{HostName, Wwnn, Wwpn};
    /// let tcp = Transport::tcp(HostName::parse("192.168.2.117")?);
    /// assert_eq!(tcp.args(), ["-t", "tcp", "-a", "192.168.2.117", "-s", "4420"]);
    /// let fc = Transport::Fc {
    ///     target_wwnn: Wwnn::parse("20:05:00:a0:98:d6:3c:1f")?,
    ///     target_wwpn: Wwpn::parse("20:06:00:a0:98:d6:3c:1f")?,
    ///     host_wwnn: Wwnn::parse("20:00:00:10:9b:1c:0f:8e")?,
    ///     host_wwpn: Wwpn::parse("10:00:00:10:9b:1c:0f:8e")?,
    /// };
    /// assert_eq!(fc.args(), [
    ///     "-t", "fc", "-a", "nn-0x200500a098d63c1f:pn-0x200600a098d63c1f",
    ///     "-w", "nn-0x200000109b1c0f8e:pn-0x100000109b1c0f8e",
    /// ]);
    /// # Ok::<(), host_storage::Error>(())
    /// ```
    pub fn args(&self) -> Vec<String> {
        let mut v = vec![
            "-t".to_owned(),
            self.name().to_owned(),
            "-a".to_owned(),
            self.traddr(),
        ];
        if let Some(p) = self.trsvcid() {
            v.push("-s".to_owned());
            v.push(p.to_string());
        }
        if let Some(h) = self.host_traddr() {
            v.push("-w".to_owned());
            v.push(h);
        }
        v
    }

    /// The same arguments in the long form `/etc/nvme/discovery.conf` uses.
    pub fn conf_line(&self) -> String {
        let mut s = format!("--transport={} --traddr={}", self.name(), self.traddr());
        if let Some(p) = self.trsvcid() {
            s.push_str(&format!(" --trsvcid={p}"));
        }
        if let Some(h) = self.host_traddr() {
            s.push_str(&format!(" --host-traddr={h}"));
        }
        s
    }

    /// True when a sysfs controller `transport` and `address` are this one.
    pub fn matches(&self, transport: &str, address: &str) -> bool {
        if transport != self.name() {
            return false;
        }
        let f = parse_address(address);
        let norm = |s: &str| {
            s.trim_start_matches('[')
                .trim_end_matches(']')
                .to_ascii_lowercase()
        };
        if f.get("traddr").map(|a| norm(a)) != Some(norm(&self.traddr())) {
            return false;
        }
        if let Some(p) = self.trsvcid() {
            if f.get("trsvcid").and_then(|s| s.parse::<u16>().ok()) != Some(p) {
                return false;
            }
        }
        match self.host_traddr() {
            Some(h) => f.get("host_traddr").map(|a| norm(a)) == Some(norm(&h)),
            None => true,
        }
    }

    fn check(&self) -> Result<()> {
        if self.trsvcid() == Some(0) {
            return Err(Error::invalid(ValueKind::HostName, self.traddr(), "port 0"));
        }
        Ok(())
    }
}

/// One record of a discovery log page (`nvme discover -o json`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DiscoveryRecord {
    /// `tcp`, `rdma`, `fc`.
    pub trtype: String,
    /// `ipv4`, `ipv6`, `fibre-channel`.
    #[serde(default)]
    pub adrfam: Option<String>,
    /// `nvme subsystem`, `discovery subsystem referral`, `current discovery subsystem`.
    pub subtype: String,
    /// Port id.
    #[serde(default)]
    pub portid: Option<u32>,
    /// Transport service id (port).
    #[serde(default)]
    pub trsvcid: Option<String>,
    /// Subsystem NQN.
    pub subnqn: String,
    /// Transport address.
    pub traddr: String,
}

impl DiscoveryRecord {
    /// True for an I/O subsystem record (not a discovery controller or referral).
    pub fn is_io_subsystem(&self) -> bool {
        self.subtype == "nvme subsystem"
    }
}

#[derive(Deserialize)]
struct DiscoveryLog {
    #[serde(default)]
    records: Vec<DiscoveryRecord>,
}

/// Parses `nvme discover -o json`.
///
/// ```
/// use host_storage::nvmeof::parse_discovery_json;
/// let json = r#"{"genctr":3,"records":[{"trtype":"tcp","adrfam":"ipv4","subtype":"nvme subsystem",
///   "treq":"not specified","portid":1,"trsvcid":"4420",
///   "subnqn":"nqn.1992-08.com.netapp:sn.48391d66c0a611ecaaa5d039ea165514:subsystem.kvm","traddr":"192.168.2.117"}]}"#;
/// let recs = parse_discovery_json(json)?;
/// assert!(recs[0].is_io_subsystem());
/// assert_eq!(recs[0].trsvcid.as_deref(), Some("4420"));
/// # Ok::<(), host_storage::Error>(())
/// ```
pub fn parse_discovery_json(text: &str) -> Result<Vec<DiscoveryRecord>> {
    serde_json::from_str::<DiscoveryLog>(text)
        .map(|l| l.records)
        .map_err(|source| Error::Json {
            format: Format::NvmeListSubsys,
            source,
        })
}

/// A fabrics controller as sysfs shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Controller {
    /// `nvme1`.
    pub name: String,
    /// The subsystem NQN.
    pub subsysnqn: String,
    /// `tcp`, `rdma`, `fc`, `pcie`, `loop`.
    pub transport: String,
    /// `traddr=…,trsvcid=…[,host_traddr=…][,src_addr=…]`.
    pub address: String,
    /// `live`, `connecting`, `resetting`, `deleting`.
    pub state: String,
}

/// Connection options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    /// `-l`: seconds to keep trying to reconnect a lost controller (`None`: forever, `-1`;
    /// ONTAP paths come back after takeover/giveback, and multipath decides meanwhile).
    pub ctrl_loss_tmo: Option<u32>,
    /// `-q`: host NQN (default: `/etc/nvme/hostnqn`).
    pub host_nqn: Option<Nqn>,
    /// How long `nvme connect` may take.
    pub timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            ctrl_loss_tmo: None,
            host_nqn: None,
            timeout: Duration::from_secs(60),
        }
    }
}

/// What a connect call did: exactly the controllers it created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvmeConnectUndo {
    /// The controllers this call created (`nvme3`), in the order they appeared.
    pub controllers: Vec<String>,
    /// Whether anything changed.
    pub change: Change,
}

/// NVMe-oF through nvme-cli and sysfs.
#[derive(Debug)]
pub struct Nvme<R> {
    runner: R,
    root: HostRoot,
    sys: Sysfs,
}

impl<R: Runner> Nvme<R> {
    /// NVMe-oF on the host under `root`.
    pub fn new(runner: R, root: HostRoot) -> Self {
        Nvme {
            runner,
            sys: Sysfs::new(root.clone()),
            root,
        }
    }

    /// True when the kernel's native NVMe multipath is on
    /// (`/sys/module/nvme_core/parameters/multipath` is `Y`); `None` when `nvme_core` is
    /// not loaded.
    pub fn native_multipath(&self) -> Result<Option<bool>> {
        Ok(self
            .sys
            .read("module/nvme_core/parameters/multipath")?
            .map(|v| v == "Y" || v == "1"))
    }

    /// Every NVMe controller in `/sys/class/nvme`.
    pub fn controllers(&self) -> Result<Vec<Controller>> {
        let mut out = Vec::new();
        for name in self.sys.list("class/nvme")? {
            let base = format!("class/nvme/{name}");
            let get = |f: &str| -> Result<String> {
                Ok(self.sys.read(&format!("{base}/{f}"))?.unwrap_or_default())
            };
            out.push(Controller {
                subsysnqn: get("subsysnqn")?,
                transport: get("transport")?,
                address: get("address")?,
                state: get("state")?,
                name,
            });
        }
        Ok(out)
    }

    /// The controllers of `nqn` reached through `transport`.
    pub fn controllers_for(&self, nqn: &Nqn, transport: &Transport) -> Result<Vec<Controller>> {
        Ok(self
            .controllers()?
            .into_iter()
            .filter(|c| c.subsysnqn == nqn.as_str() && transport.matches(&c.transport, &c.address))
            .collect())
    }

    /// The namespace block devices reachable through controller `ctrl`: its own
    /// `nvmeXnY`, and with native multipath the subsystem's `nvmeSnY` heads.
    pub fn namespaces_of(&self, ctrl: &str) -> Result<Vec<String>> {
        crate::sysfs::check_dev_name(ctrl)?;
        let is_ns = |n: &str| {
            n.strip_prefix("nvme").is_some_and(|r| {
                let mut parts = r.split('n');
                matches!((parts.next(), parts.next(), parts.next()),
                    (Some(a), Some(b), None) if !a.is_empty() && !b.is_empty()
                        && a.bytes().all(|c| c.is_ascii_digit()) && b.bytes().all(|c| c.is_ascii_digit()))
            })
        };
        let mut set: BTreeSet<String> = self
            .sys
            .list(&format!("class/nvme/{ctrl}"))?
            .into_iter()
            .filter(|n| is_ns(n))
            .collect();
        let nqn = self.sys.read(&format!("class/nvme/{ctrl}/subsysnqn"))?;
        for subsys in self.sys.list("class/nvme-subsystem")? {
            let base = format!("class/nvme-subsystem/{subsys}");
            if self.sys.read(&format!("{base}/subsysnqn"))? != nqn {
                continue;
            }
            set.extend(self.sys.list(&base)?.into_iter().filter(|n| is_ns(n)));
        }
        Ok(set.into_iter().collect())
    }

    /// Why the namespaces of `ctrl` are in use: holders (`dm-N`, md) or mounts.
    pub fn users_of(&self, ctrl: &str) -> Result<Vec<String>> {
        let mountinfo = std::fs::read_to_string(self.root.path("/proc/self/mountinfo"))
            .ok()
            .and_then(|t| parse_mountinfo(&t).ok())
            .unwrap_or_default();
        let mut users = Vec::new();
        for ns in self.namespaces_of(ctrl)? {
            for h in self.sys.holders(&ns)? {
                users.push(format!("{ns} held by {h}"));
            }
            if let Some(dev) = self.sys.read(&format!("block/{ns}/dev"))? {
                for m in mountinfo.iter().filter(|m| m.dev == dev) {
                    users.push(format!("{ns} mounted on {}", m.mount_point.display()));
                }
            }
        }
        Ok(users)
    }

    /// Asks a discovery controller for its log page (no connection is kept).
    pub async fn discover(&self, transport: &Transport) -> Result<Vec<DiscoveryRecord>> {
        transport.check()?;
        let out = self
            .runner
            .run(
                &Command::new("nvme")
                    .arg("discover")
                    .args(transport.args())
                    .args(["-o", "json"]),
            )
            .await?;
        parse_discovery_json(&out.stdout)
    }

    fn new_controllers(&self, before: &[Controller]) -> Result<Vec<String>> {
        let old: BTreeSet<&str> = before.iter().map(|c| c.name.as_str()).collect();
        Ok(self
            .controllers()?
            .into_iter()
            .filter(|c| !old.contains(c.name.as_str()))
            .map(|c| c.name)
            .collect())
    }

    /// Connects to subsystem `nqn` through `transport`; unchanged when a controller for
    /// that pair already exists (any state but `deleting`).
    pub async fn connect(
        &self,
        nqn: &Nqn,
        transport: &Transport,
        opts: &ConnectOptions,
    ) -> Result<NvmeConnectUndo> {
        transport.check()?;
        let before = self.controllers()?;
        let present = before.iter().any(|c| {
            c.subsysnqn == nqn.as_str()
                && transport.matches(&c.transport, &c.address)
                && c.state != "deleting"
        });
        if present {
            return Ok(NvmeConnectUndo {
                controllers: Vec::new(),
                change: Change::Unchanged,
            });
        }
        if !self.run_connect(nqn, transport, opts).await? {
            return Ok(NvmeConnectUndo {
                controllers: Vec::new(),
                change: Change::Unchanged,
            });
        }
        let controllers = self.new_controllers(&before)?;
        tracing::info!(nqn = %nqn, traddr = %transport.traddr(), ?controllers, "NVMe connect");
        Ok(NvmeConnectUndo {
            controllers,
            change: Change::Changed,
        })
    }

    /// Runs `nvme connect`; `false` when a concurrent connect won the race (the controller
    /// is someone else's).
    async fn run_connect(
        &self,
        nqn: &Nqn,
        transport: &Transport,
        opts: &ConnectOptions,
    ) -> Result<bool> {
        let mut cmd = Command::new("nvme")
            .arg("connect")
            .args(transport.args())
            .args(["-n", nqn.as_str()])
            .timeout(opts.timeout);
        cmd = cmd.args([
            "-l".to_owned(),
            opts.ctrl_loss_tmo
                .map_or_else(|| "-1".to_owned(), |t| t.to_string()),
        ]);
        if let Some(h) = &opts.host_nqn {
            cmd = cmd.args(["-q", h.as_str()]);
        }
        match self.runner.run(&cmd).await {
            Ok(_) => Ok(true),
            Err(Error::Command { stderr_tail, .. })
                if stderr_tail.contains("already connected") =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Connects to subsystem `nqn` through every transport of `paths` that has no
    /// controller yet (any state but `deleting`), all at once. The undo lists the
    /// controllers of `nqn` through these transports that appeared; when one connect
    /// fails, those are disconnected again and the first error is returned.
    ///
    /// ```
    /// use host_storage::files::HostRoot;
    /// use host_storage::nvmeof::{ConnectOptions, Nvme, Transport};
    /// use host_storage::{Change, FakeRunner, HostName, Nqn};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), host_storage::Error> {
    /// // Both paths already connected (synthetic sysfs): nothing runs.
    /// let root = tempfile::tempdir().unwrap();
    /// let nqn = Nqn::parse("nqn.1992-08.com.netapp:sn.48391d66c0a611ecaaa5d039ea165514:subsystem.kvm")?;
    /// for (c, a) in [("nvme0", "192.168.2.117"), ("nvme1", "192.168.2.118")] {
    ///     let d = root.path().join("sys/class/nvme").join(c);
    ///     std::fs::create_dir_all(&d).unwrap();
    ///     std::fs::write(d.join("subsysnqn"), format!("{nqn}\n")).unwrap();
    ///     std::fs::write(d.join("transport"), "tcp\n").unwrap();
    ///     std::fs::write(d.join("address"), format!("traddr={a},trsvcid=4420\n")).unwrap();
    ///     std::fs::write(d.join("state"), "live\n").unwrap();
    /// }
    /// let fake = FakeRunner::new();
    /// let nvme = Nvme::new(&fake, HostRoot::new(root.path()));
    /// let paths = [
    ///     Transport::tcp(HostName::parse("192.168.2.117")?),
    ///     Transport::tcp(HostName::parse("192.168.2.118")?),
    /// ];
    /// let undo = nvme.connect_paths(&nqn, &paths, &ConnectOptions::default()).await?;
    /// assert_eq!((undo.change, undo.controllers.len()), (Change::Unchanged, 0));
    /// assert!(fake.calls().is_empty());
    /// # Ok(()) }
    /// ```
    pub async fn connect_paths(
        &self,
        nqn: &Nqn,
        paths: &[Transport],
        opts: &ConnectOptions,
    ) -> Result<NvmeConnectUndo> {
        for t in paths {
            t.check()?;
        }
        let before = self.controllers()?;
        let missing: Vec<&Transport> = paths
            .iter()
            .filter(|t| {
                !before.iter().any(|c| {
                    c.subsysnqn == nqn.as_str()
                        && t.matches(&c.transport, &c.address)
                        && c.state != "deleting"
                })
            })
            .collect();
        if missing.is_empty() {
            return Ok(NvmeConnectUndo {
                controllers: Vec::new(),
                change: Change::Unchanged,
            });
        }
        let results =
            futures_util::future::join_all(missing.iter().map(|t| self.run_connect(nqn, t, opts)))
                .await;
        // Only the paths this call connected: where a concurrent connect won the race, the
        // controller is someone else's.
        let mut first_err = None;
        let mut connected: Vec<&Transport> = Vec::new();
        for (t, r) in missing.iter().zip(results) {
            match r {
                Ok(true) => connected.push(t),
                Ok(false) => {}
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        let old: BTreeSet<&str> = before.iter().map(|c| c.name.as_str()).collect();
        let controllers: Vec<String> = self
            .controllers()?
            .into_iter()
            .filter(|c| {
                !old.contains(c.name.as_str())
                    && c.subsysnqn == nqn.as_str()
                    && connected
                        .iter()
                        .any(|t| t.matches(&c.transport, &c.address))
            })
            .map(|c| c.name)
            .collect();
        let undo = NvmeConnectUndo {
            change: Change::from(!controllers.is_empty()),
            controllers,
        };
        if let Some(e) = first_err {
            // Leave nothing half-connected; the first error is the one reported.
            let _ = self.disconnect(&undo).await;
            return Err(e);
        }
        tracing::info!(nqn = %nqn, controllers = ?undo.controllers, "NVMe connect");
        Ok(undo)
    }

    /// `nvme connect-all` against a discovery controller; the undo lists exactly the
    /// controllers that appeared.
    pub async fn connect_all(
        &self,
        discovery: &Transport,
        opts: &ConnectOptions,
    ) -> Result<NvmeConnectUndo> {
        discovery.check()?;
        let before = self.controllers()?;
        let mut cmd = Command::new("nvme")
            .arg("connect-all")
            .args(discovery.args())
            .timeout(opts.timeout);
        cmd = cmd.args([
            "-l".to_owned(),
            opts.ctrl_loss_tmo
                .map_or_else(|| "-1".to_owned(), |t| t.to_string()),
        ]);
        if let Some(h) = &opts.host_nqn {
            cmd = cmd.args(["-q", h.as_str()]);
        }
        self.runner.run(&cmd).await?;
        let controllers = self.new_controllers(&before)?;
        Ok(NvmeConnectUndo {
            change: Change::from(!controllers.is_empty()),
            controllers,
        })
    }

    /// Disconnects the controllers a connect call created, last first, each only when none
    /// of its namespaces is held or mounted ([`Error::InUse`] otherwise, before any
    /// disconnect). Controllers already gone are skipped. When they are every controller
    /// of one subsystem, one `nvme disconnect -n NQN` removes them all.
    pub async fn disconnect(&self, undo: &NvmeConnectUndo) -> Result<Change> {
        let all = self.controllers()?;
        let live: BTreeSet<String> = all.iter().map(|c| c.name.clone()).collect();
        let todo: Vec<&String> = undo
            .controllers
            .iter()
            .rev()
            .filter(|c| live.contains(*c))
            .collect();
        let mut users = Vec::new();
        for c in &todo {
            users.extend(self.users_of(c)?);
        }
        if !users.is_empty() {
            return Err(Error::InUse {
                resource: todo
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                users,
            });
        }
        if let Some(nqn) = whole_subsystem(&all, &todo) {
            self.runner
                .run(&Command::new("nvme").args(["disconnect", "-n", nqn]))
                .await?;
            tracing::info!(nqn, controllers = ?todo, "NVMe disconnect");
            return Ok(Change::Changed);
        }
        for c in &todo {
            let dev = self.root.path(format!("/dev/{c}"));
            self.runner
                .run(&Command::new("nvme").args(["disconnect", "-d", &dev.display().to_string()]))
                .await?;
            tracing::info!(controller = %c, "NVMe disconnect");
        }
        Ok(Change::from(!todo.is_empty()))
    }

    /// Hosts, subsystems and paths (`nvme list-subsys -o json`).
    pub async fn topology(&self) -> Result<Vec<NvmeHost>> {
        let out = self
            .runner
            .run(&Command::new("nvme").args(["list-subsys", "-o", "json"]))
            .await?;
        parse_list_subsys(&out.stdout)
    }

    fn discovery_conf(&self) -> ManagedFile {
        ManagedFile {
            path: self.root.path("/etc/nvme/discovery.conf"),
            key_of: whole_line,
            new_mode: 0o644,
        }
    }

    /// Adds a discovery controller to `/etc/nvme/discovery.conf` (used by `nvme
    /// connect-all` without arguments and by boot-time autoconnect), owned by `id`. The
    /// same line written by the administrator is left alone and reported as
    /// [`Error::NotOwned`].
    pub fn add_discovery_entry(&self, id: &EntryId, discovery: &Transport) -> Result<LineUndo> {
        discovery.check()?;
        let line = discovery.conf_line();
        self.discovery_conf().upsert(id, &line, &line)
    }

    /// Reverts [`Nvme::add_discovery_entry`].
    pub fn undo_discovery_entry(&self, undo: &LineUndo) -> Result<Change> {
        self.discovery_conf().undo(undo)
    }
}

/// The subsystem NQN when `todo` (two or more) are every controller of one subsystem.
fn whole_subsystem<'a>(all: &'a [Controller], todo: &[&String]) -> Option<&'a str> {
    let first = all.iter().find(|c| Some(&&c.name) == todo.first())?;
    let nqn = first.subsysnqn.as_str();
    let of_nqn: BTreeSet<&str> = all
        .iter()
        .filter(|c| c.subsysnqn == nqn)
        .map(|c| c.name.as_str())
        .collect();
    let mine: BTreeSet<&str> = todo.iter().map(|c| c.as_str()).collect();
    (todo.len() >= 2 && !nqn.is_empty() && of_nqn == mine).then_some(nqn)
}

fn whole_line(line: &str) -> Option<&str> {
    let t = line.trim();
    (!t.is_empty() && !t.starts_with('#')).then_some(t)
}
