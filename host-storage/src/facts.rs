//! Host facts and preflight: the distribution family from `/etc/os-release`, and per
//! protocol the programs, packages and services a host needs, as one typed report that names
//! the exact package to install on this distribution.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use crate::error::{Error, Format, Result};
use crate::files::{read_optional, HostRoot};
use crate::runner::PROGRAM_DIRS;

/// Parsed `/etc/os-release` (`os-release(5)`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OsRelease {
    /// `ID` (`rhel`, `ubuntu`, `arch`), lowercase.
    pub id: String,
    /// `ID_LIKE`, split on spaces.
    pub id_like: Vec<String>,
    /// `VERSION_ID`.
    pub version_id: Option<String>,
    /// `PRETTY_NAME`.
    pub pretty_name: Option<String>,
}

/// Parses os-release text: `KEY=value` lines, values optionally in double or single quotes
/// with backslash escapes inside double quotes; comments and blank lines are skipped.
///
/// ```
/// use host_storage::facts::{parse_os_release, DistroFamily};
/// let os = parse_os_release("NAME=\"Rocky Linux\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.4\"\n")?;
/// assert_eq!(os.id, "rocky");
/// assert_eq!(os.family(), Some(DistroFamily::Fedora));
/// # Ok::<(), host_storage::Error>(())
/// ```
pub fn parse_os_release(text: &str) -> Result<OsRelease> {
    let mut os = OsRelease::default();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| Error::parse(Format::OsRelease, i + 1, "expected KEY=value"))?;
        let v = unquote(v)
            .ok_or_else(|| Error::parse(Format::OsRelease, i + 1, "unbalanced quotes"))?;
        match k {
            "ID" => os.id = v.to_ascii_lowercase(),
            "ID_LIKE" => os.id_like = v.split_whitespace().map(str::to_ascii_lowercase).collect(),
            "VERSION_ID" => os.version_id = Some(v),
            "PRETTY_NAME" => os.pretty_name = Some(v),
            _ => {}
        }
    }
    if os.id.is_empty() {
        // os-release(5): "If not set, a default of ID=linux may be used."
        os.id = "linux".into();
    }
    Ok(os)
}

fn unquote(v: &str) -> Option<String> {
    let v = v.trim();
    if let Some(inner) = v.strip_prefix('"') {
        let inner = inner.strip_suffix('"')?;
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                out.push(chars.next()?);
            } else {
                out.push(c);
            }
        }
        return Some(out);
    }
    if let Some(inner) = v.strip_prefix('\'') {
        return inner.strip_suffix('\'').map(str::to_owned);
    }
    Some(v.to_owned())
}

/// A family of distributions sharing package names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DistroFamily {
    /// Fedora, RHEL, CentOS Stream, Rocky, AlmaLinux, Oracle Linux (dnf).
    Fedora,
    /// Debian, Ubuntu and derivatives (apt).
    Debian,
    /// Arch Linux and derivatives (pacman).
    Arch,
}

impl OsRelease {
    /// The family, from `ID` then `ID_LIKE`; `None` for unknown distributions.
    pub fn family(&self) -> Option<DistroFamily> {
        std::iter::once(&self.id)
            .chain(self.id_like.iter())
            .find_map(|id| match id.as_str() {
                "fedora" | "rhel" | "centos" | "rocky" | "almalinux" | "ol" => {
                    Some(DistroFamily::Fedora)
                }
                "debian" | "ubuntu" => Some(DistroFamily::Debian),
                "arch" => Some(DistroFamily::Arch),
                _ => None,
            })
    }
}

/// A storage protocol or cluster file system a host can be prepared for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// NFS mounts.
    Nfs,
    /// SMB/CIFS mounts.
    Smb,
    /// iSCSI with dm-multipath.
    Iscsi,
    /// Fibre Channel with dm-multipath.
    Fc,
    /// NVMe over Fabrics.
    NvmeOf,
    /// OCFS2 cluster file system.
    Ocfs2,
    /// GFS2 cluster file system.
    Gfs2,
}

/// One program a protocol needs, and the package that provides it on a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Requirement {
    /// The program looked for in the fixed program directories.
    pub program: &'static str,
    /// The package to install on this family.
    pub package: &'static str,
    /// A service that must run, if any.
    pub service: Option<&'static str>,
}

const fn req(
    program: &'static str,
    package: &'static str,
    service: Option<&'static str>,
) -> Requirement {
    Requirement {
        program,
        package,
        service,
    }
}

fn multipath(f: DistroFamily) -> [Requirement; 2] {
    let pkg = match f {
        DistroFamily::Fedora => "device-mapper-multipath",
        DistroFamily::Debian | DistroFamily::Arch => "multipath-tools",
    };
    [
        req("multipath", pkg, None),
        req("multipathd", pkg, Some("multipathd")),
    ]
}

/// What `protocol` needs on `family`.
///
/// ```
/// use host_storage::facts::{requirements, DistroFamily, Protocol};
/// let r = requirements(DistroFamily::Debian, Protocol::Iscsi);
/// assert_eq!(r.iter().map(|r| r.package).collect::<Vec<_>>(), ["open-iscsi", "multipath-tools", "multipath-tools"]);
/// assert_eq!(requirements(DistroFamily::Fedora, Protocol::Nfs)[0].package, "nfs-utils");
/// ```
pub fn requirements(family: DistroFamily, protocol: Protocol) -> Vec<Requirement> {
    use DistroFamily as F;
    match protocol {
        Protocol::Nfs => vec![req(
            "mount.nfs",
            match family {
                F::Debian => "nfs-common",
                F::Fedora | F::Arch => "nfs-utils",
            },
            None,
        )],
        Protocol::Smb => vec![req("mount.cifs", "cifs-utils", None)],
        Protocol::Iscsi => {
            let pkg = match family {
                F::Fedora => "iscsi-initiator-utils",
                F::Debian | F::Arch => "open-iscsi",
            };
            let mut v = vec![req("iscsiadm", pkg, Some("iscsid"))];
            v.extend(multipath(family));
            v
        }
        Protocol::Fc => multipath(family).to_vec(),
        Protocol::NvmeOf => vec![req("nvme", "nvme-cli", None)],
        Protocol::Ocfs2 => vec![
            req("mkfs.ocfs2", "ocfs2-tools", None),
            req("o2cb", "ocfs2-tools", Some("o2cb")),
        ],
        Protocol::Gfs2 => vec![req("mkfs.gfs2", "gfs2-utils", None)],
    }
}

/// The result of checking one requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The protocol it belongs to.
    pub protocol: Protocol,
    /// What was looked for.
    pub requirement: Requirement,
    /// Where the program was found (host path), if it was.
    pub found: Option<PathBuf>,
}

/// A preflight report for a set of protocols.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preflight {
    /// The distribution.
    pub os: OsRelease,
    /// Its family, if known (package names need it).
    pub family: Option<DistroFamily>,
    /// One check per requirement; empty when the family is unknown.
    pub checks: Vec<Check>,
}

impl Preflight {
    /// True when the family is known and every program was found.
    pub fn is_ready(&self) -> bool {
        self.family.is_some() && self.checks.iter().all(|c| c.found.is_some())
    }

    /// Checks that failed.
    pub fn missing(&self) -> Vec<&Check> {
        self.checks.iter().filter(|c| c.found.is_none()).collect()
    }

    /// The packages to install, each once, in first-needed order.
    pub fn packages_to_install(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for c in self.missing() {
            if !out.contains(&c.requirement.package) {
                out.push(c.requirement.package);
            }
        }
        out
    }

    /// The services the protocols need running, each once.
    pub fn services(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for s in self.checks.iter().filter_map(|c| c.requirement.service) {
            if !out.contains(&s) {
                out.push(s);
            }
        }
        out
    }
}

/// Reads `/etc/os-release` (falling back to `/usr/lib/os-release`) under `root` and checks
/// the programs `protocols` need in the fixed program directories.
pub fn preflight(root: &HostRoot, protocols: &[Protocol]) -> Result<Preflight> {
    let text = match read_optional(&root.path("/etc/os-release"))? {
        Some(t) => t,
        None => read_optional(&root.path("/usr/lib/os-release"))?.unwrap_or_default(),
    };
    let os = parse_os_release(&text)?;
    let family = os.family();
    let mut checks = Vec::new();
    if let Some(f) = family {
        for &p in protocols {
            for r in requirements(f, p) {
                let found = PROGRAM_DIRS.iter().find_map(|d| {
                    let host_path = PathBuf::from(d).join(r.program);
                    let meta = std::fs::metadata(root.path(&host_path)).ok()?;
                    (meta.is_file() && meta.permissions().mode() & 0o111 != 0).then_some(host_path)
                });
                checks.push(Check {
                    protocol: p,
                    requirement: r,
                    found,
                });
            }
        }
    }
    Ok(Preflight { os, family, checks })
}
