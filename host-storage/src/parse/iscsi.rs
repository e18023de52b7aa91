//! open-iscsi: `iscsiadm -m session`, `iscsiadm -m session -P 3`,
//! `iscsiadm -m discoverydb -o show -P 1` and `/etc/iscsi/initiatorname.iscsi`.

use super::{Hctl, Portal};
use crate::error::{Error, Format, Result};
use crate::ids::Iqn;

/// One line of `iscsiadm -m session`:
/// `tcp: [3] 10.0.207.7:3260,1028 iqn.1992-08.com.netapp:sn.…:vs.3 (non-flash)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Transport (`tcp`, `iser`, …).
    pub transport: String,
    /// Session id (the `N` of `/sys/class/iscsi_session/sessionN`).
    pub sid: u32,
    /// Target portal.
    pub portal: Portal,
    /// Target portal group tag (`-1` when unknown).
    pub tpgt: i32,
    /// Target name as printed (normally an IQN; see [`Session::target_iqn`]).
    pub target: String,
    /// True for `(flash)` boot-firmware sessions.
    pub flash: bool,
}

impl Session {
    /// The target name as a validated [`Iqn`].
    pub fn target_iqn(&self) -> Result<Iqn> {
        Iqn::parse(&self.target)
    }
}

/// Parses `iscsiadm -m session`. Empty output (no sessions; iscsiadm then exits 21) gives an
/// empty list.
///
/// ```
/// use host_storage::parse::iscsi::parse_sessions;
/// let s = parse_sessions("tcp: [3] 10.0.207.7:3260,1028 iqn.1992-08.com.netapp:sn.afbb:vs.3 (non-flash)\n")?;
/// assert_eq!(s[0].sid, 3);
/// assert_eq!(s[0].portal.to_string(), "10.0.207.7:3260");
/// assert_eq!(s[0].tpgt, 1028);
/// # Ok::<(), host_storage::Error>(())
/// ```
pub fn parse_sessions(text: &str) -> Result<Vec<Session>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        out.push(parse_session_line(line).ok_or_else(|| {
            Error::parse(
                Format::IscsiSession,
                i + 1,
                "expected `transport: [sid] address:port,tpgt target [(non-flash)]`",
            )
        })?);
    }
    Ok(out)
}

fn parse_session_line(line: &str) -> Option<Session> {
    let (transport, rest) = line.split_once(": [")?;
    let (sid, rest) = rest.split_once("] ")?;
    let mut fields = rest.split_whitespace();
    let (portal, tpgt) = fields.next()?.rsplit_once(',')?;
    let target = fields.next()?;
    let flash = match fields.next() {
        None | Some("(non-flash)") => false,
        Some("(flash)") => true,
        Some(_) => return None,
    };
    if fields.next().is_some() || transport.contains(char::is_whitespace) {
        return None;
    }
    Some(Session {
        transport: transport.to_owned(),
        sid: sid.parse().ok()?,
        portal: Portal::parse(portal)?,
        tpgt: tpgt.parse().ok()?,
        target: target.to_owned(),
        flash,
    })
}

/// One SCSI device attached to a session (from `-P 3`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedDisk {
    /// Its SCSI address.
    pub hctl: Hctl,
    /// Block device name (`sdb`), when the disk is attached.
    pub disk: Option<String>,
    /// Device state (`running`, `offline`, …).
    pub state: Option<String>,
}

/// One session of `iscsiadm -m session -P 3`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionDetail {
    /// Target name.
    pub target: String,
    /// `Current Portal`.
    pub current_portal: Option<Portal>,
    /// `Persistent Portal`.
    pub persistent_portal: Option<Portal>,
    /// Target portal group tag of the current portal.
    pub tpgt: Option<i32>,
    /// `Iface Name`.
    pub iface_name: Option<String>,
    /// `Iface Transport`.
    pub iface_transport: Option<String>,
    /// `Iface Initiatorname`.
    pub iface_initiator: Option<String>,
    /// `Iface IPaddress`.
    pub iface_ip: Option<String>,
    /// Session id.
    pub sid: u32,
    /// `iSCSI Connection State` (`LOGGED IN`, …).
    pub connection_state: Option<String>,
    /// `iSCSI Session State` (`LOGGED_IN`, `FAILED`, `FREE`).
    pub session_state: Option<String>,
    /// `Recovery Timeout` in seconds.
    pub recovery_timeout: Option<u32>,
    /// `Host Number`: the SCSI host of this session.
    pub host_number: Option<u32>,
    /// Attached SCSI devices.
    pub disks: Vec<AttachedDisk>,
}

/// `<empty>` is how iscsiadm prints unset values.
fn value(v: &str) -> Option<String> {
    let v = v.trim();
    (!v.is_empty() && v != "<empty>").then(|| v.to_owned())
}

fn portal_tpgt(v: &str) -> (Option<Portal>, Option<i32>) {
    match v.trim().rsplit_once(',') {
        Some((p, t)) => (Portal::parse(p), t.parse().ok()),
        None => (Portal::parse(v.trim()), None),
    }
}

/// Parses `iscsiadm -m session -P 3`. Fields this crate does not use (CHAP, negotiated
/// parameters) are skipped; CHAP passwords are never kept.
pub fn parse_sessions_p3(text: &str) -> Result<Vec<SessionDetail>> {
    let mut out: Vec<SessionDetail> = Vec::new();
    let mut sid_seen = false;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let err = |reason| Error::parse(Format::IscsiSessionP3, i + 1, reason);
        if let Some(rest) = line.strip_prefix("Target: ") {
            if out.last().is_some_and(|_| !sid_seen) {
                return Err(err("previous target has no SID"));
            }
            let name = rest
                .split_whitespace()
                .next()
                .ok_or_else(|| err("empty target"))?;
            out.push(SessionDetail {
                target: name.to_owned(),
                ..SessionDetail::default()
            });
            sid_seen = false;
            continue;
        }
        // Sessions of one target are listed under a single `Target:` line, one
        // `Current Portal:` block each: a second block starts the next session.
        if line.starts_with("Current Portal:")
            && out.last().is_some_and(|c| c.current_portal.is_some())
        {
            if !sid_seen {
                return Err(err("previous session has no SID"));
            }
            let target = out.last().map(|c| c.target.clone()).unwrap_or_default();
            out.push(SessionDetail {
                target,
                ..SessionDetail::default()
            });
            sid_seen = false;
        }
        let Some(cur) = out.last_mut() else {
            continue; // version banner lines
        };
        if let Some(rest) = line.strip_prefix("scsi") {
            // scsi3 Channel 00 Id 0 Lun: 2
            let f: Vec<&str> = rest.split_whitespace().collect();
            let parsed = (|| {
                if f.len() != 7 || f[1] != "Channel" || f[3] != "Id" || f[5] != "Lun:" {
                    return None;
                }
                Some(Hctl {
                    host: f[0].parse().ok()?,
                    channel: f[2].parse().ok()?,
                    target: f[4].parse().ok()?,
                    lun: f[6].parse().ok()?,
                })
            })();
            let hctl = parsed.ok_or_else(|| err("expected `scsiH Channel C Id T Lun: L`"))?;
            cur.disks.push(AttachedDisk {
                hctl,
                disk: None,
                state: None,
            });
            continue;
        }
        if let Some(rest) = line.strip_prefix("Attached scsi disk ") {
            let disk = cur
                .disks
                .last_mut()
                .ok_or_else(|| err("disk line before its scsi line"))?;
            let mut f = rest.split_whitespace();
            disk.disk = f.next().map(str::to_owned);
            if f.next() == Some("State:") {
                disk.state = f.next().map(str::to_owned);
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("Host Number: ") {
            let n = rest.split_whitespace().next().and_then(|n| n.parse().ok());
            cur.host_number = Some(n.ok_or_else(|| err("bad host number"))?);
            continue;
        }
        let Some((key, val)) = line.split_once(':') else {
            continue;
        };
        match key {
            "Current Portal" => (cur.current_portal, cur.tpgt) = portal_tpgt(val),
            "Persistent Portal" => cur.persistent_portal = portal_tpgt(val).0,
            "Iface Name" => cur.iface_name = value(val),
            "Iface Transport" => cur.iface_transport = value(val),
            "Iface Initiatorname" => cur.iface_initiator = value(val),
            "Iface IPaddress" => cur.iface_ip = value(val),
            "SID" => {
                cur.sid = val.trim().parse().map_err(|_| err("bad SID"))?;
                sid_seen = true;
            }
            "iSCSI Connection State" => cur.connection_state = value(val),
            "iSCSI Session State" => cur.session_state = value(val),
            "Recovery Timeout" => cur.recovery_timeout = val.trim().parse().ok(),
            _ => {}
        }
    }
    if !out.is_empty() && !sid_seen {
        return Err(Error::parse(
            Format::IscsiSessionP3,
            0,
            "last target has no SID",
        ));
    }
    Ok(out)
}

/// A portal listed under a discovered target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredPortal {
    /// The portal.
    pub portal: Portal,
    /// Its portal group tag.
    pub tpgt: i32,
    /// The iface it was discovered through.
    pub iface: Option<String>,
}

/// A target found by SendTargets discovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredTarget {
    /// Target name.
    pub target: String,
    /// Its portals.
    pub portals: Vec<DiscoveredPortal>,
}

/// One SendTargets discovery record and the targets it returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendTargetsRecord {
    /// The discovery portal.
    pub address: Portal,
    /// Targets found through it (empty when none are recorded).
    pub targets: Vec<DiscoveredTarget>,
}

/// Parses the `SENDTARGETS:` section of `iscsiadm -m discoverydb -o show -P 1`; iSNS, static
/// and firmware sections are skipped.
pub fn parse_discoverydb(text: &str) -> Result<Vec<SendTargetsRecord>> {
    let mut out: Vec<SendTargetsRecord> = Vec::new();
    let mut in_sendtargets = false;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let err = |reason| Error::parse(Format::IscsiDiscoveryDb, i + 1, reason);
        if !raw.starts_with(char::is_whitespace) && line.ends_with(':') && !line.contains(' ') {
            in_sendtargets = line == "SENDTARGETS:";
            continue;
        }
        if !in_sendtargets || line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("DiscoveryAddress: ") {
            let (addr, port) = rest
                .rsplit_once(',')
                .ok_or_else(|| err("expected address,port"))?;
            let address = Portal::parse(&format!("{addr}:{port}"))
                .ok_or_else(|| err("expected address,port"))?;
            out.push(SendTargetsRecord {
                address,
                targets: Vec::new(),
            });
        } else if let Some(rest) = line.strip_prefix("Target: ") {
            let rec = out
                .last_mut()
                .ok_or_else(|| err("target before any DiscoveryAddress"))?;
            rec.targets.push(DiscoveredTarget {
                target: rest.trim().to_owned(),
                portals: Vec::new(),
            });
        } else if let Some(rest) = line.strip_prefix("Portal: ") {
            let t = out
                .last_mut()
                .and_then(|r| r.targets.last_mut())
                .ok_or_else(|| err("portal before any Target"))?;
            let (p, tpgt) = portal_tpgt(rest);
            t.portals.push(DiscoveredPortal {
                portal: p.ok_or_else(|| err("expected address:port,tpgt"))?,
                tpgt: tpgt.ok_or_else(|| err("expected address:port,tpgt"))?,
                iface: None,
            });
        } else if let Some(rest) = line.strip_prefix("Iface Name: ") {
            if let Some(p) = out
                .last_mut()
                .and_then(|r| r.targets.last_mut())
                .and_then(|t| t.portals.last_mut())
            {
                p.iface = value(rest);
            }
        }
    }
    Ok(out)
}

/// Reads the initiator IQN from `/etc/iscsi/initiatorname.iscsi`: the first uncommented
/// `InitiatorName=` line, tolerating spaces around `=` and inline `#` comments.
///
/// ```
/// use host_storage::parse::iscsi::parse_initiator_name;
/// let iqn = parse_initiator_name("## comment\nInitiatorName = iqn.1994-05.com.redhat:6a4517b3773a # host a\n")?;
/// assert_eq!(iqn.as_str(), "iqn.1994-05.com.redhat:6a4517b3773a");
/// # Ok::<(), host_storage::Error>(())
/// ```
pub fn parse_initiator_name(text: &str) -> Result<Iqn> {
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some((k, v)) = line.split_once('=') {
            if k.trim() == "InitiatorName" {
                return Iqn::parse(v.trim());
            }
        }
    }
    Err(Error::parse(
        Format::InitiatorName,
        0,
        "no InitiatorName= line",
    ))
}
