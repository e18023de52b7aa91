//! Fibre Channel from sysfs: HBA ports and their state ([`crate::identity::fc_hosts`]),
//! remote ports, targeted rescans, and a loop initialization (LIP) only on explicit request.
//!
//! Scans change nothing that needs undoing: the kernel adds a logical unit once, and a
//! present one is left as it is. LIP resets the link and briefly interrupts every path
//! through the port (os-brick and Trident never issue it), so it is a separate call
//! ([`Fc::issue_lip`]) that nothing in kvmstor makes on its own.

use crate::error::{Error, Result};
use crate::files::HostRoot;
use crate::identity::{fc_hosts, FcHost};
use crate::ids::{Wwnn, Wwpn};
use crate::sysfs::Sysfs;

/// One remote port (`/sys/class/fc_remote_ports/rport-H:C-N`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemotePort {
    /// `rport-2:0-1`.
    pub name: String,
    /// The local SCSI host (`H`).
    pub host: u32,
    /// The channel (`C`).
    pub channel: u32,
    /// Remote port name.
    pub wwpn: Wwpn,
    /// Remote node name.
    pub wwnn: Wwnn,
    /// `Online`, `Blocked`, `Not Present`.
    pub port_state: String,
    /// The SCSI target id of the port, when it is a SCSI target (`-1` is `None`).
    pub scsi_target_id: Option<u32>,
    /// `FCP Target`, `FCP Initiator`, `NVMe Target`, ….
    pub roles: String,
}

impl RemotePort {
    /// True when the port is `Online`.
    pub fn is_online(&self) -> bool {
        self.port_state == "Online"
    }
}

/// What [`Fc::scan_lun`] asked the kernel to scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FcScan {
    /// The local SCSI host.
    pub host: u32,
    /// The `C T L` string written to its `scan` file.
    pub scan: String,
}

/// Fibre Channel HBAs and remote ports of the host under a root.
///
/// ```
/// use host_storage::fc::Fc;
/// use host_storage::files::HostRoot;
/// let fc = Fc::new(HostRoot::new("/nonexistent"));
/// assert!(fc.hbas()?.is_empty()); // no FC HBA: nothing to list, not an error
/// # Ok::<(), host_storage::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Fc {
    root: HostRoot,
    sys: Sysfs,
}

fn parse_rport_name(name: &str) -> Option<(u32, u32)> {
    let rest = name.strip_prefix("rport-")?;
    let (hc, _n) = rest.split_once('-')?;
    let (h, c) = hc.split_once(':')?;
    Some((h.parse().ok()?, c.parse().ok()?))
}

impl Fc {
    /// FC on the host under `root`.
    pub fn new(root: HostRoot) -> Self {
        Fc {
            sys: Sysfs::new(root.clone()),
            root,
        }
    }

    /// The HBA ports, sorted by host number.
    pub fn hbas(&self) -> Result<Vec<FcHost>> {
        fc_hosts(&self.root)
    }

    /// Every remote port, sorted by name.
    pub fn remote_ports(&self) -> Result<Vec<RemotePort>> {
        let mut out = Vec::new();
        for name in self.sys.list("class/fc_remote_ports")? {
            let Some((host, channel)) = parse_rport_name(&name) else {
                continue;
            };
            let base = format!("class/fc_remote_ports/{name}");
            let (Some(pn), Some(nn)) = (
                self.sys.read(&format!("{base}/port_name"))?,
                self.sys.read(&format!("{base}/node_name"))?,
            ) else {
                continue;
            };
            out.push(RemotePort {
                wwpn: Wwpn::parse(&pn)?,
                wwnn: Wwnn::parse(&nn)?,
                port_state: self
                    .sys
                    .read(&format!("{base}/port_state"))?
                    .unwrap_or_default(),
                scsi_target_id: self
                    .sys
                    .read(&format!("{base}/scsi_target_id"))?
                    .and_then(|t| t.parse::<i64>().ok())
                    .and_then(|t| u32::try_from(t).ok()),
                roles: self.sys.read(&format!("{base}/roles"))?.unwrap_or_default(),
                name,
                host,
                channel,
            });
        }
        Ok(out)
    }

    /// Scans LUN `lun` behind every online remote port whose WWPN is one of `targets`, on
    /// every online HBA: `"C T L"` to `/sys/class/scsi_host/hostH/scan`. Ports that are
    /// not online or not SCSI targets are skipped (a zoning problem, reported by an empty
    /// result, never by a broad wildcard scan).
    pub fn scan_lun(&self, targets: &[Wwpn], lun: u64) -> Result<Vec<FcScan>> {
        let online: Vec<u32> = self
            .hbas()?
            .into_iter()
            .filter(FcHost::is_online)
            .map(|h| h.host)
            .collect();
        let mut done = Vec::new();
        for rp in self.remote_ports()? {
            if !online.contains(&rp.host) || !rp.is_online() || !targets.contains(&rp.wwpn) {
                continue;
            }
            let Some(t) = rp.scsi_target_id else { continue };
            self.sys
                .scsi_scan(rp.host, Some(rp.channel), Some(t), Some(lun))?;
            done.push(FcScan {
                host: rp.host,
                scan: format!("{} {t} {lun}", rp.channel),
            });
        }
        Ok(done)
    }

    /// Issues a loop initialization on HBA `host` (`1` to `issue_lip`). Disruptive: every
    /// path through the port pauses while the fabric is logged in again.
    pub fn issue_lip(&self, host: u32) -> Result<()> {
        if !self.hbas()?.iter().any(|h| h.host == host) {
            return Err(Error::invalid(
                crate::ValueKind::Name,
                format!("host{host}"),
                "not an FC HBA",
            ));
        }
        tracing::warn!(host, "issuing FC LIP");
        self.sys
            .write(&format!("class/fc_host/host{host}/issue_lip"), "1")
    }
}
