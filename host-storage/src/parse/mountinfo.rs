//! `/proc/self/mountinfo` (see the kernel's `Documentation/filesystems/proc.rst`).

use std::path::PathBuf;

use crate::error::{Error, Format, Result};

/// One mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// Mount id.
    pub id: u32,
    /// Parent mount id.
    pub parent: u32,
    /// `major:minor` of the file system.
    pub dev: String,
    /// Root of the mount within the file system.
    pub root: PathBuf,
    /// Mount point, unescaped.
    pub mount_point: PathBuf,
    /// Per-mount options (`rw,relatime`).
    pub mount_options: String,
    /// Optional fields (`shared:1`, `master:2`).
    pub optional: Vec<String>,
    /// File-system type (`nfs4`, `cifs`, `ext4`).
    pub fstype: String,
    /// Mount source, unescaped (`10.0.0.5:/vol/vm`, `//srv/share`, `/dev/sda1`).
    pub source: String,
    /// Super-block options (`rw,vers=4.1,…`).
    pub super_options: String,
}

impl MountEntry {
    /// The value of `key=` in the super-block options (for example `vers`).
    pub fn super_option(&self, key: &str) -> Option<&str> {
        self.super_options
            .split(',')
            .find_map(|o| o.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
    }
}

/// Undoes the kernel's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134` `\`).
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses mountinfo text.
///
/// ```
/// use host_storage::parse::mountinfo::parse_mountinfo;
/// let m = parse_mountinfo("36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n")?;
/// assert_eq!(m[0].mount_point.to_str(), Some("/mnt2"));
/// assert_eq!(m[0].optional, ["master:1"]);
/// assert_eq!(m[0].super_option("errors"), Some("continue"));
/// # Ok::<(), host_storage::Error>(())
/// ```
pub fn parse_mountinfo(text: &str) -> Result<Vec<MountEntry>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let err = || {
            Error::parse(
                Format::MountInfo,
                i + 1,
                "expected `id parent maj:min root mount_point options [optional…] - fstype source super_options`",
            )
        };
        let f: Vec<&str> = line.split(' ').collect();
        let sep = f.iter().position(|x| *x == "-").ok_or_else(err)?;
        if sep < 6 || f.len() < sep + 3 {
            return Err(err());
        }
        out.push(MountEntry {
            id: f[0].parse().map_err(|_| err())?,
            parent: f[1].parse().map_err(|_| err())?,
            dev: f[2].to_owned(),
            root: PathBuf::from(unescape(f[3])),
            mount_point: PathBuf::from(unescape(f[4])),
            mount_options: f[5].to_owned(),
            optional: f[6..sep].iter().map(|s| (*s).to_owned()).collect(),
            fstype: f[sep + 1].to_owned(),
            source: unescape(f[sep + 2]),
            super_options: f.get(sep + 3).copied().unwrap_or("").to_owned(),
        });
    }
    Ok(out)
}
