//! The o2cb cluster stack: `/etc/default/o2cb` (start-up settings and timeouts) and the
//! `o2cb` program's commands.

use std::path::Path;
use std::time::Duration;

use host_storage::Command;

use crate::error::{Error, Format, Result};
use crate::names::{ClusterName, NodeName};
use crate::ocfs2::conf::{Ocfs2Node, Region};

/// Where Debian keeps the settings (RHEL and SUSE: `/etc/sysconfig/o2cb`).
pub const O2CB_DEFAULTS_DEBIAN: &str = "/etc/default/o2cb";
/// Where RHEL and SUSE keep the settings.
pub const O2CB_DEFAULTS_SYSCONFIG: &str = "/etc/sysconfig/o2cb";

/// Minimums enforced by the `o2cb` init script (`MIN_*` in `/etc/init.d/o2cb`, 1.8.7).
pub mod limits {
    /// `MIN_HEARTBEAT_THRESHOLD`.
    pub const MIN_HEARTBEAT_THRESHOLD: u32 = 7;
    /// `MIN_IDLE_TIMEOUT_MS`.
    pub const MIN_IDLE_TIMEOUT_MS: u32 = 5000;
    /// `MIN_KEEPALIVE_DELAY_MS`.
    pub const MIN_KEEPALIVE_DELAY_MS: u32 = 1000;
    /// `MIN_RECONNECT_DELAY_MS`.
    pub const MIN_RECONNECT_DELAY_MS: u32 = 2000;
}

/// The stack behind o2cb (`O2CB_STACK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum O2cbStack {
    /// The in-kernel o2cb stack (default).
    O2cb,
    /// Pacemaker.
    Pcmk,
}

impl O2cbStack {
    /// The value in the file and on `mkfs.ocfs2 --cluster-stack`.
    pub fn as_str(self) -> &'static str {
        match self {
            O2cbStack::O2cb => "o2cb",
            O2cbStack::Pcmk => "pcmk",
        }
    }
}

/// `/etc/default/o2cb`: whether the stack starts at boot, which cluster, and its timeouts.
///
/// The defaults are the kernel's (`DEF_*` in the init script): threshold 31 (60 s), idle
/// timeout 30 s, keepalive and reconnect delay 2 s. Multipath users raise the heartbeat
/// threshold so that a path failover (ONTAP takeover: up to 120 s) does not fence nodes:
/// [`O2cbDefaults::heartbeat_timeout`].
///
/// ```
/// use cluster_fs::ocfs2::O2cbDefaults;
/// use cluster_fs::ClusterName;
/// use std::time::Duration;
/// let d = O2cbDefaults::enabled(ClusterName::parse("kvmcl")?)
///     .heartbeat_timeout(Duration::from_secs(120));
/// assert_eq!(d.heartbeat_threshold, 61);
/// d.validate()?;
/// let mut bad = d.clone();
/// bad.keepalive_delay_ms = 30_000; // not below the idle timeout
/// assert!(bad.validate().is_err());
/// # Ok::<(), cluster_fs::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct O2cbDefaults {
    /// `O2CB_ENABLED`: start the stack at boot.
    pub enabled: bool,
    /// `O2CB_STACK`.
    pub stack: O2cbStack,
    /// `O2CB_BOOTCLUSTER`: the cluster started at boot.
    pub boot_cluster: Option<ClusterName>,
    /// `O2CB_HEARTBEAT_THRESHOLD`: disk heartbeat iterations (2 s each) before a node is dead.
    pub heartbeat_threshold: u32,
    /// `O2CB_IDLE_TIMEOUT_MS`: network idle time before a connection is dead.
    pub idle_timeout_ms: u32,
    /// `O2CB_KEEPALIVE_DELAY_MS`: longest wait before a keepalive is sent.
    pub keepalive_delay_ms: u32,
    /// `O2CB_RECONNECT_DELAY_MS`: shortest wait between connection attempts.
    pub reconnect_delay_ms: u32,
}

impl Default for O2cbDefaults {
    fn default() -> Self {
        O2cbDefaults {
            enabled: false,
            stack: O2cbStack::O2cb,
            boot_cluster: None,
            heartbeat_threshold: 31,
            idle_timeout_ms: 30_000,
            keepalive_delay_ms: 2000,
            reconnect_delay_ms: 2000,
        }
    }
}

impl O2cbDefaults {
    /// Enabled at boot for `cluster`, kernel default timeouts.
    pub fn enabled(cluster: ClusterName) -> Self {
        O2cbDefaults {
            enabled: true,
            boot_cluster: Some(cluster),
            ..Self::default()
        }
    }

    /// Sets the heartbeat threshold for a dead-node timeout: `timeout_s / 2 + 1`.
    pub fn heartbeat_timeout(mut self, timeout: Duration) -> Self {
        self.heartbeat_threshold = u32::try_from(timeout.as_secs() / 2 + 1).unwrap_or(u32::MAX);
        self
    }

    /// The dead-node timeout the threshold gives: `(threshold - 1) * 2` seconds.
    pub fn dead_node_timeout(&self) -> Duration {
        Duration::from_secs(u64::from(self.heartbeat_threshold.saturating_sub(1)) * 2)
    }

    /// Checks the init script's minimums and the relationships between settings:
    /// enabled needs a boot cluster, and the keepalive delay must be below the idle timeout
    /// (the kernel refuses otherwise), as must the reconnect delay.
    pub fn validate(&self) -> Result<()> {
        use limits::*;
        let err = |setting, value: u32, reason| Error::O2cbSettings {
            setting,
            value: u64::from(value),
            reason,
        };
        if self.enabled && self.boot_cluster.is_none() {
            return Err(err(
                "O2CB_BOOTCLUSTER",
                0,
                "O2CB_ENABLED=true needs a boot cluster",
            ));
        }
        if self.heartbeat_threshold < MIN_HEARTBEAT_THRESHOLD {
            return Err(err(
                "O2CB_HEARTBEAT_THRESHOLD",
                self.heartbeat_threshold,
                "below the minimum of 7",
            ));
        }
        if self.idle_timeout_ms < MIN_IDLE_TIMEOUT_MS {
            return Err(err(
                "O2CB_IDLE_TIMEOUT_MS",
                self.idle_timeout_ms,
                "below the minimum of 5000",
            ));
        }
        if self.keepalive_delay_ms < MIN_KEEPALIVE_DELAY_MS {
            return Err(err(
                "O2CB_KEEPALIVE_DELAY_MS",
                self.keepalive_delay_ms,
                "below the minimum of 1000",
            ));
        }
        if self.reconnect_delay_ms < MIN_RECONNECT_DELAY_MS {
            return Err(err(
                "O2CB_RECONNECT_DELAY_MS",
                self.reconnect_delay_ms,
                "below the minimum of 2000",
            ));
        }
        if self.keepalive_delay_ms >= self.idle_timeout_ms {
            return Err(err(
                "O2CB_KEEPALIVE_DELAY_MS",
                self.keepalive_delay_ms,
                "must be below O2CB_IDLE_TIMEOUT_MS",
            ));
        }
        if self.reconnect_delay_ms >= self.idle_timeout_ms {
            return Err(err(
                "O2CB_RECONNECT_DELAY_MS",
                self.reconnect_delay_ms,
                "must be below O2CB_IDLE_TIMEOUT_MS",
            ));
        }
        Ok(())
    }

    /// Parses the file (shell `KEY=value` lines). Empty values and the template form
    /// `${O2CB_X}` mean the default; `${O2CB_X:-v}` means `v`.
    pub fn parse(text: &str) -> Result<Self> {
        let mut d = O2cbDefaults::default();
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                return Err(Error::parse(Format::O2cbDefaults, n, "expected KEY=value"));
            };
            let mut v = v.trim().trim_matches('"').trim_matches('\'');
            if let Some(inner) = v.strip_prefix("${").and_then(|s| s.strip_suffix('}')) {
                v = inner.split_once(":-").map_or("", |(_, def)| def);
            }
            if v.is_empty() {
                continue;
            }
            let num = |v: &str| -> Result<u32> {
                v.parse()
                    .map_err(|_| Error::parse(Format::O2cbDefaults, n, "expected a number"))
            };
            match k.trim() {
                "O2CB_ENABLED" => d.enabled = v == "true",
                "O2CB_STACK" => {
                    d.stack = match v {
                        "o2cb" => O2cbStack::O2cb,
                        "pcmk" => O2cbStack::Pcmk,
                        _ => {
                            return Err(Error::parse(
                                Format::O2cbDefaults,
                                n,
                                "O2CB_STACK must be o2cb or pcmk",
                            ))
                        }
                    }
                }
                "O2CB_BOOTCLUSTER" => {
                    d.boot_cluster = Some(ClusterName::parse(v).map_err(|_| {
                        Error::parse(Format::O2cbDefaults, n, "bad O2CB_BOOTCLUSTER")
                    })?)
                }
                "O2CB_HEARTBEAT_THRESHOLD" => d.heartbeat_threshold = num(v)?,
                "O2CB_IDLE_TIMEOUT_MS" => d.idle_timeout_ms = num(v)?,
                "O2CB_KEEPALIVE_DELAY_MS" => d.keepalive_delay_ms = num(v)?,
                "O2CB_RECONNECT_DELAY_MS" => d.reconnect_delay_ms = num(v)?,
                _ => {}
            }
        }
        Ok(d)
    }

    /// Renders the file in the init script's layout, every value explicit.
    pub fn render(&self) -> String {
        format!(
            "#\n# O2CB start-up settings, written by kvmstor.\n#\n\n\
             # O2CB_ENABLED: 'true' means to load the driver on boot.\nO2CB_ENABLED={}\n\n\
             # O2CB_STACK: The name of the cluster stack backing O2CB.\nO2CB_STACK={}\n\n\
             # O2CB_BOOTCLUSTER: If not empty, the name of a cluster to start.\nO2CB_BOOTCLUSTER={}\n\n\
             # O2CB_HEARTBEAT_THRESHOLD: Iterations before a node is considered dead.\nO2CB_HEARTBEAT_THRESHOLD={}\n\n\
             # O2CB_IDLE_TIMEOUT_MS: Time in ms before a network connection is considered dead.\nO2CB_IDLE_TIMEOUT_MS={}\n\n\
             # O2CB_KEEPALIVE_DELAY_MS: Max time in ms before a keepalive packet is sent\nO2CB_KEEPALIVE_DELAY_MS={}\n\n\
             # O2CB_RECONNECT_DELAY_MS: Min time in ms between connection attempts\nO2CB_RECONNECT_DELAY_MS={}\n",
            self.enabled,
            self.stack.as_str(),
            self.boot_cluster.as_ref().map_or("", |c| c.as_str()),
            self.heartbeat_threshold,
            self.idle_timeout_ms,
            self.keepalive_delay_ms,
            self.reconnect_delay_ms,
        )
    }
}

/// Builds `o2cb` commands, optionally on another configuration file (`--config-file`, used
/// by tests; the default is [`crate::ocfs2::CLUSTER_CONF`]).
///
/// ```
/// use cluster_fs::ocfs2::O2cbCommands;
/// use cluster_fs::ClusterName;
/// let cl = ClusterName::parse("kvmcl")?;
/// assert_eq!(O2cbCommands::default().register_cluster(&cl).to_string(), "o2cb register-cluster kvmcl");
/// assert_eq!(
///     O2cbCommands::with_config_file("/tmp/c.conf").list_clusters().to_string(),
///     "o2cb --config-file=/tmp/c.conf list-clusters"
/// );
/// # Ok::<(), cluster_fs::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct O2cbCommands {
    config_file: Option<String>,
}

impl O2cbCommands {
    /// Commands on another configuration file.
    pub fn with_config_file(path: impl AsRef<Path>) -> Self {
        O2cbCommands {
            config_file: Some(path.as_ref().display().to_string()),
        }
    }

    fn base(&self) -> Command {
        let c = Command::new("o2cb");
        match &self.config_file {
            Some(p) => c.arg(format!("--config-file={p}")),
            None => c,
        }
    }

    /// `o2cb add-cluster NAME`.
    pub fn add_cluster(&self, cluster: &ClusterName) -> Command {
        self.base().args(["add-cluster", cluster.as_str()])
    }

    /// `o2cb add-node --ip A --port P --number N CLUSTER NODE`.
    pub fn add_node(&self, node: &Ocfs2Node) -> Command {
        self.base()
            .arg("add-node")
            .args(["--ip", &node.ip_address.to_string()])
            .args(["--port", &node.ip_port.to_string()])
            .args(["--number", &node.number.to_string()])
            .args([node.cluster.as_str(), node.name.as_str()])
    }

    /// `o2cb remove-node CLUSTER NODE`.
    pub fn remove_node(&self, cluster: &ClusterName, node: &NodeName) -> Command {
        self.base()
            .args(["remove-node", cluster.as_str(), node.as_str()])
    }

    /// `o2cb add-heartbeat CLUSTER REGION`.
    pub fn add_heartbeat(&self, cluster: &ClusterName, region: &Region) -> Command {
        self.base()
            .args(["add-heartbeat", cluster.as_str(), region.as_str()])
    }

    /// `o2cb remove-heartbeat CLUSTER REGION`.
    pub fn remove_heartbeat(&self, cluster: &ClusterName, region: &Region) -> Command {
        self.base()
            .args(["remove-heartbeat", cluster.as_str(), region.as_str()])
    }

    /// `o2cb heartbeat-mode CLUSTER local|global`.
    pub fn heartbeat_mode(
        &self,
        cluster: &ClusterName,
        mode: crate::ocfs2::HeartbeatMode,
    ) -> Command {
        self.base()
            .args(["heartbeat-mode", cluster.as_str(), mode.as_str()])
    }

    /// `o2cb list-clusters`.
    pub fn list_clusters(&self) -> Command {
        self.base().arg("list-clusters")
    }

    /// `o2cb register-cluster NAME` (brings it online in configfs).
    pub fn register_cluster(&self, cluster: &ClusterName) -> Command {
        self.base().args(["register-cluster", cluster.as_str()])
    }

    /// `o2cb unregister-cluster NAME`.
    pub fn unregister_cluster(&self, cluster: &ClusterName) -> Command {
        self.base().args(["unregister-cluster", cluster.as_str()])
    }

    /// `o2cb cluster-status NAME`: exit 0 online, 1 offline (both accepted).
    pub fn cluster_status(&self, cluster: &ClusterName) -> Command {
        self.base()
            .args(["cluster-status", cluster.as_str()])
            .ok_codes([0, 1])
    }

    /// `o2cb start-heartbeat NAME` (global heartbeat).
    pub fn start_heartbeat(&self, cluster: &ClusterName) -> Command {
        self.base().args(["start-heartbeat", cluster.as_str()])
    }

    /// `o2cb stop-heartbeat NAME`.
    pub fn stop_heartbeat(&self, cluster: &ClusterName) -> Command {
        self.base().args(["stop-heartbeat", cluster.as_str()])
    }
}

/// Parses `o2cb list-clusters` (one name per line).
pub fn parse_list_clusters(text: &str) -> Result<Vec<ClusterName>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(i, l)| {
            ClusterName::parse(l)
                .map_err(|_| Error::parse(Format::ClusterConf, i + 1, "bad cluster name"))
        })
        .collect()
}
