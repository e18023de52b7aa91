//! Configuration files that kvmstor shares with the administrator: atomic rewrites and
//! ownership markers.
//!
//! # Ownership
//!
//! Every line kvmstor writes into a shared file (`/etc/fstab`, `/etc/auto.master`, autofs
//! maps) is preceded by a marker comment naming its owner id:
//!
//! ```text
//! # kvmstor:vmstore (managed by kvmstor; removed by its undo)
//! 10.0.0.5:/vm /mnt/vmstore nfs vers=4.1,hard,_netdev 0 0
//! ```
//!
//! A marker on its own line is understood by every parser of these files (a trailing comment
//! is not: libmount and autofs would read it as data). kvmstor touches only the line right
//! after one of its markers; any other line is left byte-for-byte as it was, and a foreign
//! line for the same mount point or key is reported as [`Error::NotOwned`] instead of being
//! edited.
//!
//! # Atomic rewrite
//!
//! A file is changed by writing a temporary file in the same directory, `fsync`, copying the
//! old file's mode and owner, `rename` over the old one, then `fsync` of the directory. The
//! read-modify-write is serialised by an exclusive `flock` on the directory.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::change::Change;
use crate::error::{Error, IoOp, Result, ValueKind};

/// Prefix of ownership marker comments.
pub const MARKER_PREFIX: &str = "# kvmstor:";

/// The root directory host files are found under: `/` on a real host, a temporary directory
/// in tests.
///
/// ```
/// use host_storage::files::HostRoot;
/// let root = HostRoot::new("/tmp/fake-host");
/// assert_eq!(root.path("/etc/fstab").to_str(), Some("/tmp/fake-host/etc/fstab"));
/// assert_eq!(HostRoot::system().path("/etc/fstab").to_str(), Some("/etc/fstab"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoot(PathBuf);

impl HostRoot {
    /// Files under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        HostRoot(root.into())
    }

    /// The real host: `/`.
    pub fn system() -> Self {
        HostRoot(PathBuf::from("/"))
    }

    /// Where the host path `abs` (absolute, as on a real host) lives under this root.
    pub fn path(&self, abs: impl AsRef<Path>) -> PathBuf {
        let abs = abs.as_ref();
        self.0.join(abs.strip_prefix("/").unwrap_or(abs))
    }
}

impl Default for HostRoot {
    fn default() -> Self {
        Self::system()
    }
}

/// The owner id of managed lines and files: 1 to 64 of `[a-z0-9_.-]`, starting with a letter
/// or digit. It is chosen by the caller before the step that writes, so a retried step finds
/// its own line instead of writing a second one.
///
/// ```
/// use host_storage::files::EntryId;
/// assert!(EntryId::parse("vmstore-01").is_ok());
/// assert!(EntryId::parse("VM store").is_err());
/// assert!(EntryId::parse("-x").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryId(String);

impl EntryId {
    /// Validates an id.
    pub fn parse(s: &str) -> Result<Self> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.as_bytes()[0].is_ascii_alphanumeric()
            && s.bytes().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'.' | b'-')
            });
        if !ok {
            return Err(Error::invalid(
                ValueKind::Name,
                s,
                "must be 1 to 64 of a-z 0-9 _ . - starting with a letter or digit",
            ));
        }
        Ok(EntryId(s.to_owned()))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The marker comment line for this id.
    pub fn marker(&self) -> String {
        format!(
            "{MARKER_PREFIX}{} (managed by kvmstor; removed by its undo)",
            self.0
        )
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for EntryId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

/// The id named by a marker line, if `line` is one.
fn marker_id(line: &str) -> Option<&str> {
    let rest = line.trim_start().strip_prefix(MARKER_PREFIX)?;
    Some(rest.split_whitespace().next().unwrap_or(""))
}

/// How to find the key (mount point, map key) of a data line.
pub(crate) type KeyOf = fn(&str) -> Option<&str>;

/// The second whitespace field (fstab: the mount point).
pub(crate) fn second_field(line: &str) -> Option<&str> {
    let t = line.trim_start();
    if t.is_empty() || t.starts_with('#') {
        return None;
    }
    t.split_whitespace().nth(1)
}

/// The first whitespace field (autofs master and direct maps: mount point or key).
pub(crate) fn first_field(line: &str) -> Option<&str> {
    let t = line.trim_start();
    if t.is_empty() || t.starts_with('#') {
        return None;
    }
    t.split_whitespace().next()
}

/// What a managed line looked like before a change, to undo it exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineUndo {
    /// The file (under its host root).
    pub file: PathBuf,
    /// The owner id.
    pub id: EntryId,
    /// The owned line before the change; `None` if there was none.
    pub previous: Option<String>,
    /// Whether the change did anything; an undo of an unchanged call does nothing.
    pub change: Change,
}

/// Puts `line` after the marker of `id`, replacing the line owned before, or appends both.
/// Returns the new text, the previous owned line, and whether anything changed.
pub(crate) fn upsert_text(
    path: &Path,
    text: &str,
    id: &EntryId,
    line: &str,
    key: &str,
    key_of: KeyOf,
) -> Result<(String, Option<String>, Change)> {
    let mut lines: Vec<&str> = text.lines().collect();
    // A marker of ours left without its line (a hand edit) is dropped, not duplicated.
    if lines
        .last()
        .is_some_and(|l| marker_id(l) == Some(id.as_str()))
    {
        lines.pop();
    }
    let mut owned_at: Option<usize> = None;
    let mut owned_lines = std::collections::HashSet::new();
    for (i, l) in lines.iter().enumerate() {
        if marker_id(l).is_some() && i + 1 < lines.len() {
            owned_lines.insert(i + 1);
            if marker_id(l) == Some(id.as_str()) {
                owned_at = Some(i + 1);
            }
        }
    }
    for (i, l) in lines.iter().enumerate() {
        if owned_lines.contains(&i) {
            if Some(i) != owned_at && key_of(l) == Some(key) {
                // Another kvmstor owner already has this key.
                return Err(Error::NotOwned {
                    path: path.to_owned(),
                    line: i + 1,
                    key: key.to_owned(),
                });
            }
            continue;
        }
        if key_of(l) == Some(key) {
            return Err(Error::NotOwned {
                path: path.to_owned(),
                line: i + 1,
                key: key.to_owned(),
            });
        }
    }
    match owned_at {
        Some(i) if lines[i] == line => {
            Ok((text.to_owned(), Some(line.to_owned()), Change::Unchanged))
        }
        Some(i) => {
            let previous = lines[i].to_owned();
            let mut out: Vec<&str> = lines.clone();
            out[i] = line;
            Ok((join(&out), Some(previous), Change::Changed))
        }
        None => {
            let marker = id.marker();
            let mut out: Vec<&str> = lines.clone();
            out.push(&marker);
            out.push(line);
            Ok((join(&out), None, Change::Changed))
        }
    }
}

/// Removes the marker of `id` and the line after it. Returns the new text and the removed
/// line.
pub(crate) fn remove_text(text: &str, id: &EntryId) -> (String, Option<String>) {
    let lines: Vec<&str> = text.lines().collect();
    let Some(m) = lines.iter().position(|l| marker_id(l) == Some(id.as_str())) else {
        return (text.to_owned(), None);
    };
    let removed = lines.get(m + 1).map(|l| (*l).to_owned());
    let mut out: Vec<&str> = Vec::with_capacity(lines.len());
    out.extend(&lines[..m]);
    if m + 2 <= lines.len() {
        out.extend(&lines[m + 2..]);
    }
    (join(&out), removed)
}

/// The ids and lines kvmstor owns in `text`.
pub(crate) fn owned_text(text: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = text.lines().collect();
    lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let id = marker_id(l)?;
            Some((id.to_owned(), (*lines.get(i + 1)?).to_owned()))
        })
        .collect()
}

fn join(lines: &[&str]) -> String {
    if lines.is_empty() {
        return String::new();
    }
    let mut s = lines.join("\n");
    s.push('\n');
    s
}

/// Reads a file; a missing file reads as `None`.
pub(crate) fn read_optional(path: &Path) -> Result<Option<String>> {
    match File::open(path) {
        Ok(mut f) => {
            let mut s = String::new();
            f.read_to_string(&mut s)
                .map_err(|e| Error::io(IoOp::Read, path, e))?;
            Ok(Some(s))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(IoOp::Read, path, e)),
    }
}

/// Holds an exclusive `flock` on a file's directory while a read-modify-write runs.
pub(crate) struct DirLock(#[allow(dead_code)] Flock<File>);

pub(crate) fn lock_dir_of(path: &Path) -> Result<DirLock> {
    let dir = parent(path);
    let f = File::open(&dir).map_err(|e| Error::io(IoOp::Lock, &dir, e))?;
    Flock::lock(f, FlockArg::LockExclusive)
        .map(DirLock)
        .map_err(|(_, errno)| Error::Sys {
            op: IoOp::Lock,
            path: dir,
            source: errno,
        })
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Replaces `path` with `contents` atomically. An existing file keeps its mode and owner; a
/// new one gets `new_mode`.
pub fn atomic_write(path: &Path, contents: &[u8], new_mode: u32) -> Result<()> {
    // Replace the file a symlink points to, not the symlink.
    let resolved;
    let path = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            resolved = std::fs::canonicalize(path).map_err(|e| Error::io(IoOp::Read, path, e))?;
            resolved.as_path()
        }
        _ => path,
    };
    let dir = parent(path);
    let old = std::fs::metadata(path).ok();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.kvmstor-{}-{:08x}",
        std::process::id(),
        fastrand_u32()
    ));
    let mode = old
        .as_ref()
        .map_or(new_mode, |m| m.permissions().mode() & 0o7777);
    let result = (|| {
        // Created with the final mode already (0600 for secrets: never readable by others).
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode & 0o777)
            .open(&tmp)
            .map_err(|e| Error::io(IoOp::Write, &tmp, e))?;
        f.write_all(contents)
            .map_err(|e| Error::io(IoOp::Write, &tmp, e))?;
        if let Some(m) = &old {
            std::os::unix::fs::fchown(&f, Some(m.uid()), Some(m.gid()))
                .map_err(|e| Error::io(IoOp::SetPermissions, &tmp, e))?;
        }
        // After fchown (which clears set-id bits) and regardless of the umask.
        f.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io(IoOp::SetPermissions, &tmp, e))?;
        f.sync_all().map_err(|e| Error::io(IoOp::Sync, &tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io(IoOp::Rename, path, e))?;
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(IoOp::Sync, &dir, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn fastrand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish() as u32
}

/// A shared line-oriented configuration file in which kvmstor owns marked lines.
#[derive(Debug, Clone)]
pub(crate) struct ManagedFile {
    pub(crate) path: PathBuf,
    pub(crate) key_of: KeyOf,
    pub(crate) new_mode: u32,
}

impl ManagedFile {
    /// Adds or updates the line owned by `id`.
    pub(crate) fn upsert(&self, id: &EntryId, line: &str, key: &str) -> Result<LineUndo> {
        let _lock = lock_dir_of(&self.path)?;
        let text = read_optional(&self.path)?.unwrap_or_default();
        let (new, previous, change) = upsert_text(&self.path, &text, id, line, key, self.key_of)?;
        if change.is_changed() {
            atomic_write(&self.path, new.as_bytes(), self.new_mode)?;
            tracing::info!(file = %self.path.display(), id = %id, "wrote managed line");
        }
        Ok(LineUndo {
            file: self.path.clone(),
            id: id.clone(),
            previous,
            change,
        })
    }

    /// Removes the line owned by `id`; a missing file or line is success (`Unchanged`).
    pub(crate) fn remove(&self, id: &EntryId) -> Result<(Change, Option<String>)> {
        if !self.path.exists() {
            return Ok((Change::Unchanged, None));
        }
        let _lock = lock_dir_of(&self.path)?;
        let Some(text) = read_optional(&self.path)? else {
            return Ok((Change::Unchanged, None));
        };
        let (new, removed) = remove_text(&text, id);
        if removed.is_none() {
            return Ok((Change::Unchanged, None));
        }
        atomic_write(&self.path, new.as_bytes(), self.new_mode)?;
        tracing::info!(file = %self.path.display(), id = %id, "removed managed line");
        Ok((Change::Changed, removed))
    }

    /// Reverts what one `upsert` did.
    pub(crate) fn undo(&self, undo: &LineUndo) -> Result<Change> {
        if !undo.change.is_changed() {
            return Ok(Change::Unchanged);
        }
        match &undo.previous {
            None => self.remove(&undo.id).map(|(c, _)| c),
            Some(prev) => {
                let key = (self.key_of)(prev).unwrap_or("").to_owned();
                self.upsert(&undo.id, prev, &key).map(|u| u.change)
            }
        }
    }

    /// The `(id, line)` pairs kvmstor owns.
    pub(crate) fn owned(&self) -> Result<Vec<(String, String)>> {
        Ok(read_optional(&self.path)?
            .map(|t| owned_text(&t))
            .unwrap_or_default())
    }
}

/// Checks a path written into a configuration line: absolute, no whitespace, `,` `#` `=`
/// quotes, backslash or control characters, no `..` component.
pub(crate) fn check_config_path(p: &Path) -> Result<()> {
    let s = p
        .to_str()
        .ok_or_else(|| Error::invalid(ValueKind::Path, p.to_string_lossy(), "not UTF-8"))?;
    let bad = !s.starts_with('/')
        || s.chars().any(|c| {
            c.is_whitespace()
                || c.is_control()
                || matches!(c, ',' | '#' | '=' | '"' | '\'' | '\\' | ';')
        })
        || p.components()
            .any(|c| matches!(c, std::path::Component::ParentDir));
    if bad {
        return Err(Error::invalid(
            ValueKind::Path,
            s,
            "must be absolute without whitespace, ',', '#', '=', ';', quotes, '\\' or '..'",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> EntryId {
        EntryId::parse(s).unwrap()
    }

    #[test]
    fn upsert_appends_replaces_and_keeps_foreign_lines() {
        let p = Path::new("/etc/fstab");
        let base = "# /etc/fstab\nUUID=1 / ext4 defaults 0 1\n\n";
        let (t1, prev, c) = upsert_text(
            p,
            base,
            &id("a"),
            "s:/x /mnt/a nfs hard 0 0",
            "/mnt/a",
            second_field,
        )
        .unwrap();
        assert_eq!(c, Change::Changed);
        assert_eq!(prev, None);
        assert_eq!(
            t1,
            "# /etc/fstab\nUUID=1 / ext4 defaults 0 1\n\n# kvmstor:a (managed by kvmstor; removed by its undo)\ns:/x /mnt/a nfs hard 0 0\n"
        );
        let (t2, _, c) = upsert_text(
            p,
            &t1,
            &id("a"),
            "s:/x /mnt/a nfs hard 0 0",
            "/mnt/a",
            second_field,
        )
        .unwrap();
        assert_eq!((t2.as_str(), c), (t1.as_str(), Change::Unchanged));
        let (t3, prev, c) = upsert_text(
            p,
            &t1,
            &id("a"),
            "s:/y /mnt/a nfs hard 0 0",
            "/mnt/a",
            second_field,
        )
        .unwrap();
        assert_eq!(c, Change::Changed);
        assert_eq!(prev.as_deref(), Some("s:/x /mnt/a nfs hard 0 0"));
        assert!(t3.ends_with("\ns:/y /mnt/a nfs hard 0 0\n"));
        let (t4, removed) = remove_text(&t3, &id("a"));
        assert_eq!(removed.as_deref(), Some("s:/y /mnt/a nfs hard 0 0"));
        assert_eq!(t4, base);
        assert_eq!(remove_text(&t4, &id("a")), (t4.clone(), None));
    }

    #[test]
    fn foreign_line_with_same_key_is_not_touched() {
        let p = Path::new("/etc/fstab");
        let base = "srv:/old /mnt/a nfs defaults 0 0\n";
        let err = upsert_text(
            p,
            base,
            &id("a"),
            "s:/x /mnt/a nfs hard 0 0",
            "/mnt/a",
            second_field,
        )
        .unwrap_err();
        assert!(
            matches!(err, Error::NotOwned { line: 1, ref key, .. } if key == "/mnt/a"),
            "{err}"
        );
        let (with_b, _, _) = upsert_text(
            p,
            "",
            &id("b"),
            "s:/x /mnt/a nfs hard 0 0",
            "/mnt/a",
            second_field,
        )
        .unwrap();
        let err = upsert_text(
            p,
            &with_b,
            &id("a"),
            "s:/z /mnt/a nfs hard 0 0",
            "/mnt/a",
            second_field,
        )
        .unwrap_err();
        assert!(matches!(err, Error::NotOwned { line: 2, .. }), "{err}");
    }

    #[test]
    fn atomic_write_keeps_mode_and_sets_new_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        atomic_write(&p, b"one\n", 0o600).unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777,
            0o600
        );
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        atomic_write(&p, b"two\n", 0o600).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two\n");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777,
            0o640
        );
        // No temporary files left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn dangling_marker_is_replaced_not_duplicated() {
        let p = Path::new("/etc/fstab");
        let text = format!("a /x ext4 defaults 0 0\n{}\n", id("a").marker());
        let (t, prev, c) = upsert_text(
            p,
            &text,
            &id("a"),
            "s:/x /mnt/a nfs hard 0 0",
            "/mnt/a",
            second_field,
        )
        .unwrap();
        assert_eq!((prev, c), (None, Change::Changed));
        assert_eq!(t.matches(MARKER_PREFIX).count(), 1);
        assert!(t.ends_with("removed by its undo)\ns:/x /mnt/a nfs hard 0 0\n"));
    }

    #[test]
    fn atomic_write_through_a_symlink_keeps_the_link() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        let link = dir.path().join("link");
        std::fs::write(&real, "old").unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();
        atomic_write(&link, b"new", 0o644).unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new");
    }

    #[test]
    fn config_paths() {
        assert!(check_config_path(Path::new("/mnt/vm_store-1")).is_ok());
        for bad in [
            "mnt/x",
            "/mnt/a b",
            "/mnt/a,b",
            "/mnt/a#b",
            "/mnt/../etc",
            "/mnt/a\nb",
        ] {
            assert!(check_config_path(Path::new(bad)).is_err(), "{bad:?}");
        }
    }
}
