//! multipath-tools: `multipath -ll` / `multipath -l` text and `multipathd show maps json`.

use serde::Deserialize;

use super::Hctl;
use crate::error::{Error, Format, Result};
use crate::ids::Wwid;

/// One path of a multipath map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpathPath {
    /// SCSI address.
    pub hctl: Hctl,
    /// Block device (`sdc`).
    pub dev: String,
    /// `major:minor`.
    pub dev_t: String,
    /// Device-mapper state: `active` or `failed`.
    pub dm_state: String,
    /// Path checker state: `ready`, `faulty`, `ghost`, `undef` (with `-l`), ….
    pub checker_state: String,
    /// SCSI device state: `running`, `offline`, ….
    pub dev_state: String,
}

impl MpathPath {
    /// True when device-mapper uses the path and the checker finds it ready.
    pub fn is_healthy(&self) -> bool {
        self.dm_state == "active"
            && matches!(self.checker_state.as_str(), "ready" | "ghost" | "undef")
    }
}

/// One path group (an ALUA priority group on ONTAP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathGroup {
    /// Path selector, e.g. `service-time 0`.
    pub policy: String,
    /// Group priority (ONTAP: 50 optimized, 10 non-optimized; -1 unknown with `-l`).
    pub prio: i32,
    /// `active`, `enabled` or `disabled`.
    pub status: String,
    /// Its paths.
    pub paths: Vec<MpathPath>,
}

/// One map of `multipath -ll`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpathMap {
    /// The map's WWID.
    pub wwid: Wwid,
    /// Its alias (`mpath6`) when user-friendly names are on.
    pub alias: Option<String>,
    /// Its device-mapper node (`dm-2`), when shown.
    pub dm: Option<String>,
    /// SCSI vendor (`NETAPP`), trimmed.
    pub vendor: String,
    /// SCSI product (`LUN C-Mode`), trimmed.
    pub product: String,
    /// Size as printed (`12G`).
    pub size: Option<String>,
    /// Features, e.g. `3 queue_if_no_path pg_init_retries 50`.
    pub features: Option<String>,
    /// Hardware handler, e.g. `1 alua`.
    pub hwhandler: Option<String>,
    /// Write protection: `rw` or `ro`.
    pub write_protect: Option<String>,
    /// Path groups, in printed order.
    pub groups: Vec<PathGroup>,
}

impl MpathMap {
    /// The map name multipath uses: the alias, else the WWID.
    pub fn name(&self) -> &str {
        self.alias.as_deref().unwrap_or(self.wwid.as_str())
    }

    /// All paths of all groups.
    pub fn paths(&self) -> impl Iterator<Item = &MpathPath> {
        self.groups.iter().flat_map(|g| g.paths.iter())
    }

    /// True when the map has paths and none is healthy (a stale map of an unmapped LUN).
    pub fn all_paths_failed(&self) -> bool {
        self.paths().next().is_some() && !self.paths().any(MpathPath::is_healthy)
    }
}

/// True for the `Oct 13 10:24:01 | message` lines multipath prints among its output.
fn is_log_noise(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 17
        && b[..3].iter().all(u8::is_ascii_alphabetic)
        && b[3] == b' '
        && b[6] == b' '
        && b[9] == b':'
        && b[12] == b':'
        && line[15..].starts_with(" |")
}

/// Parses `multipath -ll` or `multipath -l` output (any number of maps). Log lines with
/// timestamps, blank lines and `create:`/`reload:` prefixes are tolerated.
///
/// ```
/// use host_storage::parse::multipath::parse_multipath_ll;
/// let maps = parse_multipath_ll("\
/// 3600a0980383138452d2b55794670776d dm-0 NETAPP,LUN C-Mode
/// size=256G features='3 queue_if_no_path pg_init_retries 50' hwhandler='1 alua' wp=rw
/// `-+- policy='service-time 0' prio=10 status=active
///   `- 2:0:0:0 sda 8:0 active ready running
/// ")?;
/// assert_eq!(maps[0].wwid.netapp_lun_serial().unwrap().as_str(), "818E-+UyFpwm");
/// assert_eq!(maps[0].groups[0].paths[0].dev, "sda");
/// # Ok::<(), host_storage::Error>(())
/// ```
pub fn parse_multipath_ll(text: &str) -> Result<Vec<MpathMap>> {
    let mut maps: Vec<MpathMap> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let err = |reason| Error::parse(Format::MultipathLl, n, reason);
        let line = raw.trim_end();
        if line.trim().is_empty() || is_log_noise(line) {
            continue;
        }
        if let Some(rest) = line.strip_prefix("size=") {
            let map = maps
                .last_mut()
                .ok_or_else(|| err("size line before a map header"))?;
            parse_props(map, rest);
            continue;
        }
        if line.starts_with(['|', '`', ' ', '\\']) {
            let body = line.trim_start_matches(['|', '`', '-', '+', ' ', '\\', '_']);
            let map = maps
                .last_mut()
                .ok_or_else(|| err("path line before a map header"))?;
            if body.starts_with("policy=") {
                map.groups.push(
                    parse_group(body)
                        .ok_or_else(|| err("expected `policy='…' prio=N status=S`"))?,
                );
            } else {
                let path = parse_path(body).ok_or_else(|| {
                    err("expected `H:C:T:L dev maj:min dm_state checker_state dev_state`")
                })?;
                let group = map
                    .groups
                    .last_mut()
                    .ok_or_else(|| err("path before any path group"))?;
                group.paths.push(path);
            }
            continue;
        }
        maps.push(
            parse_header(line)
                .ok_or_else(|| err("expected `[alias (]WWID[)] [dm-N] VENDOR,PRODUCT`"))?,
        );
    }
    Ok(maps)
}

fn parse_header(line: &str) -> Option<MpathMap> {
    let mut line = line;
    for prefix in ["create: ", "reload: ", "switchpg: "] {
        if let Some(r) = line.strip_prefix(prefix) {
            line = r;
        }
    }
    let (first, rest) = line.split_once(' ')?;
    let (alias, wwid, rest) = match rest.strip_prefix('(') {
        Some(r) => {
            let (w, r) = r.split_once(')')?;
            (Some(first.to_owned()), w, r.trim_start())
        }
        None => (None, first, rest),
    };
    let (dm, rest) = match rest.split_once(' ') {
        Some((d, r)) if d.starts_with("dm-") => (Some(d.to_owned()), r),
        _ => (None, rest),
    };
    let (vendor, product) = rest.split_once(',')?;
    Some(MpathMap {
        wwid: Wwid::parse(wwid).ok()?,
        alias,
        dm,
        vendor: vendor.trim().to_owned(),
        product: product.trim().to_owned(),
        size: None,
        features: None,
        hwhandler: None,
        write_protect: None,
        groups: Vec::new(),
    })
}

/// Value of `key=` in a props line, quoted (`'…'`) or up to the next space.
fn prop<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.find(&format!("{key}="))? + key.len() + 1;
    let rest = &line[start..];
    match rest.strip_prefix('\'') {
        Some(q) => q.split_once('\'').map(|(v, _)| v),
        None => Some(rest.split_whitespace().next().unwrap_or("")),
    }
}

fn parse_props(map: &mut MpathMap, rest: &str) {
    let line = format!("size={rest}");
    map.size = prop(&line, "size").map(str::to_owned);
    map.features = prop(&line, "features").map(str::to_owned);
    map.hwhandler = prop(&line, "hwhandler").map(str::to_owned);
    map.write_protect = prop(&line, "wp").map(str::to_owned);
}

fn parse_group(body: &str) -> Option<PathGroup> {
    Some(PathGroup {
        policy: prop(body, "policy")?.to_owned(),
        prio: prop(body, "prio")?.parse().ok()?,
        status: prop(body, "status")?.to_owned(),
        paths: Vec::new(),
    })
}

fn parse_path(body: &str) -> Option<MpathPath> {
    let f: Vec<&str> = body.split_whitespace().collect();
    if f.len() < 6 {
        return None;
    }
    Some(MpathPath {
        hctl: f[0].parse().ok()?,
        dev: f[1].to_owned(),
        dev_t: f[2].to_owned(),
        dm_state: f[3].to_owned(),
        checker_state: f[4].to_owned(),
        dev_state: f[5].to_owned(),
    })
}

/// `multipathd show maps json` (format version 0.1, `libmultipath/print.c`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MultipathdMaps {
    /// Format major version.
    pub major_version: u32,
    /// Format minor version.
    pub minor_version: u32,
    /// The maps.
    pub maps: Vec<JsonMap>,
}

/// One map of `multipathd show maps json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct JsonMap {
    /// Alias or WWID.
    pub name: String,
    /// WWID.
    pub uuid: Wwid,
    /// `dm-N`.
    pub sysfs: String,
    /// Queueing state (`queue`, `off`, `-`, or a count like `5 chk`).
    #[serde(default)]
    pub queueing: Option<String>,
    /// Number of paths.
    pub paths: u32,
    /// Write protection.
    #[serde(default)]
    pub write_prot: Option<String>,
    /// Device-mapper state: `active` or `suspend`.
    pub dm_st: String,
    /// Features.
    #[serde(default)]
    pub features: Option<String>,
    /// Hardware handler.
    #[serde(default)]
    pub hwhandler: Option<String>,
    /// Vendor.
    #[serde(default)]
    pub vend: Option<String>,
    /// Product.
    #[serde(default)]
    pub prod: Option<String>,
    /// Number of path faults.
    #[serde(default)]
    pub path_faults: Option<u64>,
    /// Path groups.
    #[serde(default)]
    pub path_groups: Vec<JsonPathGroup>,
}

/// One path group of `multipathd show maps json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct JsonPathGroup {
    /// Path selector.
    pub selector: String,
    /// Priority.
    pub pri: i32,
    /// `active`, `enabled` or `disabled`.
    pub dm_st: String,
    /// 1-based group number.
    pub group: u32,
    /// Its paths.
    pub paths: Vec<JsonPath>,
}

/// One path of `multipathd show maps json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct JsonPath {
    /// Block device (`sdc`).
    pub dev: String,
    /// `major:minor`.
    pub dev_t: String,
    /// `active` or `failed`.
    pub dm_st: String,
    /// `running`, `offline`, ….
    pub dev_st: String,
    /// Checker state.
    pub chk_st: String,
    /// Checker name (`tur`).
    #[serde(default)]
    pub checker: Option<String>,
    /// Priority.
    pub pri: i32,
    /// Initiator node name (iSCSI: initiator IQN; FC: WWNN).
    #[serde(default)]
    pub host_wwnn: Option<String>,
    /// Target node name (iSCSI: target IQN).
    #[serde(default)]
    pub target_wwnn: Option<String>,
    /// Initiator port (iSCSI: IP).
    #[serde(default)]
    pub host_wwpn: Option<String>,
    /// Target port (iSCSI: portal IP).
    #[serde(default)]
    pub target_wwpn: Option<String>,
    /// Host adapter (PCI address or iSCSI IP).
    #[serde(default)]
    pub host_adapter: Option<String>,
    /// LUN in hex (`0x2`).
    #[serde(default)]
    pub lun_hex: Option<String>,
}

/// Parses `multipathd show maps json` (also `show map NAME json`, which has the same shape
/// with a `map` object; pass that through [`parse_multipathd_map_json`]).
pub fn parse_multipathd_maps_json(text: &str) -> Result<MultipathdMaps> {
    super::json(Format::MultipathdJson, text)
}

/// Parses `multipathd show map NAME json`: `{"major_version":0,"minor_version":1,"map":{…}}`.
pub fn parse_multipathd_map_json(text: &str) -> Result<JsonMap> {
    #[derive(Deserialize)]
    struct One {
        map: JsonMap,
    }
    super::json::<One>(Format::MultipathdJson, text).map(|o| o.map)
}
