//! `dmsetup status [--target multipath]`: path health of multipath maps straight from the
//! kernel.

use crate::error::{Error, Format, Result};

/// State of one path group in the kernel table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupState {
    /// `A`: the group in use.
    Active,
    /// `E`: enabled, usable.
    Enabled,
    /// `D`: disabled (bypassed).
    Disabled,
}

/// One path as the kernel sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmPath {
    /// `major:minor` of the path device.
    pub dev_t: String,
    /// `A` (active) versus `F` (failed).
    pub active: bool,
    /// How often the path failed.
    pub fail_count: u32,
}

/// One path group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmGroup {
    /// Group state.
    pub state: GroupState,
    /// Its paths.
    pub paths: Vec<DmPath>,
}

/// The status of one multipath map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmMultipathStatus {
    /// Map name (WWID or alias).
    pub name: String,
    /// Length in 512-byte sectors.
    pub sectors: u64,
    /// Path groups.
    pub groups: Vec<DmGroup>,
}

impl DmMultipathStatus {
    /// Number of active paths.
    pub fn active_paths(&self) -> usize {
        self.groups
            .iter()
            .flat_map(|g| &g.paths)
            .filter(|p| p.active)
            .count()
    }
}

/// Parses `dmsetup status` output, keeping multipath targets and skipping others. The line
/// `No devices found` gives an empty list.
///
/// ```
/// use host_storage::parse::dmsetup::parse_dmsetup_status;
/// let s = parse_dmsetup_status("3600a0980774f6a34663f57396c4f6b37: 0 25165824 multipath 2 0 0 0 1 1 A 0 2 1 8:32 A 0 0 8:48 F 3 0\n")?;
/// assert_eq!(s[0].active_paths(), 1);
/// assert_eq!(s[0].groups[0].paths[1].fail_count, 3);
/// # Ok::<(), host_storage::Error>(())
/// ```
pub fn parse_dmsetup_status(text: &str) -> Result<Vec<DmMultipathStatus>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line == "No devices found" {
            continue;
        }
        let err = || {
            Error::parse(
                Format::DmsetupStatus,
                i + 1,
                "malformed multipath status (see the kernel's dm-mpath status format)",
            )
        };
        let Some((name, rest)) = line.split_once(": ") else {
            return Err(err());
        };
        let t: Vec<&str> = rest.split_whitespace().collect();
        if t.len() < 3 || t[2] != "multipath" {
            continue;
        }
        let sectors = t[1].parse().map_err(|_| err())?;
        let groups = parse_mpath_tokens(&t[3..]).ok_or_else(err)?;
        out.push(DmMultipathStatus {
            name: name.to_owned(),
            sectors,
            groups,
        });
    }
    Ok(out)
}

fn parse_mpath_tokens(t: &[&str]) -> Option<Vec<DmGroup>> {
    let mut it = t.iter().copied();
    let num = |it: &mut dyn Iterator<Item = &str>| -> Option<usize> { it.next()?.parse().ok() };
    let n_features = num(&mut it)?;
    for _ in 0..n_features {
        it.next()?;
    }
    let n_handler = num(&mut it)?;
    for _ in 0..n_handler {
        it.next()?;
    }
    let n_groups = num(&mut it)?;
    let _next_group = num(&mut it)?;
    let mut groups = Vec::with_capacity(n_groups);
    for _ in 0..n_groups {
        let state = match it.next()? {
            "A" => GroupState::Active,
            "E" => GroupState::Enabled,
            "D" => GroupState::Disabled,
            _ => return None,
        };
        let n_group_args = num(&mut it)?;
        for _ in 0..n_group_args {
            it.next()?;
        }
        let n_paths = num(&mut it)?;
        let n_selector_args = num(&mut it)?;
        let mut paths = Vec::with_capacity(n_paths);
        for _ in 0..n_paths {
            let dev_t = it.next()?.to_owned();
            let active = match it.next()? {
                "A" => true,
                "F" => false,
                _ => return None,
            };
            let fail_count = it.next()?.parse().ok()?;
            for _ in 0..n_selector_args {
                it.next()?;
            }
            paths.push(DmPath {
                dev_t,
                active,
                fail_count,
            });
        }
        groups.push(DmGroup { state, paths });
    }
    if it.next().is_some() {
        return None;
    }
    Some(groups)
}
