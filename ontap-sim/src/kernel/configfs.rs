//! A small view of configfs: directories (groups), attribute files and symlinks below a root.
//!
//! The real tree is `/sys/kernel/config`. Tests use [`Configfs::synthetic`] on a temporary
//! directory: it behaves like configfs where it matters for ordering (a group holding
//! symlinks, or sub-groups that themselves hold groups or links, cannot be removed) and
//! creates attribute files that configfs would have created by itself. Directories that
//! hold only files (or nothing) count as default groups and go with their parent.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::KernelError;

/// The configfs mount point of a real host.
pub const SYSTEM_ROOT: &str = "/sys/kernel/config";

/// A configfs tree (real or synthetic). Paths given to its methods are relative to the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Configfs {
    root: PathBuf,
    synthetic: bool,
}

fn io(op: &'static str, path: &Path, source: std::io::Error) -> KernelError {
    KernelError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

impl Configfs {
    /// The real configfs mounted at `root` (normally [`SYSTEM_ROOT`]).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Configfs {
            root: root.into(),
            synthetic: false,
        }
    }

    /// A plain directory shaped like configfs, for tests.
    pub fn synthetic(root: impl Into<PathBuf>) -> Self {
        Configfs {
            root: root.into(),
            synthetic: true,
        }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The absolute path of `rel`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Whether `rel` exists (a symlink counts even if dangling).
    pub fn exists(&self, rel: &str) -> bool {
        std::fs::symlink_metadata(self.path(rel)).is_ok()
    }

    /// Creates the group `rel` and missing parents; an existing group is fine.
    pub fn mkdir(&self, rel: &str) -> Result<(), KernelError> {
        let p = self.path(rel);
        std::fs::create_dir_all(&p).map_err(|e| io("mkdir", &p, e))
    }

    /// Writes an attribute (a trailing newline is added, as `echo` does).
    pub fn write(&self, rel: &str, value: &str) -> Result<(), KernelError> {
        self.write_bytes(rel, format!("{value}\n").as_bytes())
    }

    /// Writes an attribute exactly as given, with no trailing newline. LIO keeps a newline
    /// in `auth/*` attributes as part of the value (Linux 6.1: `userid` reads back as
    /// `"user\n"` and every CHAP login then fails), so credentials go through here.
    pub fn write_exact(&self, rel: &str, value: &str) -> Result<(), KernelError> {
        self.write_bytes(rel, value.as_bytes())
    }

    fn write_bytes(&self, rel: &str, bytes: &[u8]) -> Result<(), KernelError> {
        let p = self.path(rel);
        if self.synthetic {
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).map_err(|e| io("mkdir", parent, e))?;
            }
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(self.synthetic)
            .truncate(self.synthetic)
            .mode(0o600)
            .open(&p)
            .map_err(|e| io("open", &p, e))?;
        f.write_all(bytes).map_err(|e| io("write", &p, e))
    }

    /// Writes an attribute only if the kernel offers it (newer kernels have more
    /// attributes); returns whether it was written.
    pub fn write_if_present(&self, rel: &str, value: &str) -> Result<bool, KernelError> {
        if !self.path(rel).is_file() {
            return Ok(false);
        }
        self.write(rel, value).map(|()| true)
    }

    /// Reads an attribute, trimmed; `None` when absent.
    pub fn read(&self, rel: &str) -> Result<Option<String>, KernelError> {
        let p = self.path(rel);
        match std::fs::read_to_string(&p) {
            Ok(s) => Ok(Some(s.trim().to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("read", &p, e)),
        }
    }

    /// Links `link` to the item `target` (both relative); an identical link is fine.
    pub fn symlink(&self, target: &str, link: &str) -> Result<(), KernelError> {
        let (t, l) = (self.path(target), self.path(link));
        if let Ok(cur) = std::fs::read_link(&l) {
            // The kernel answers readlink with a relative path (`../../../subsystems/x`):
            // compare the items, or every pass would unlink a live link and make it again
            // (for nvmet that drops the port's controllers).
            let abs = if cur.is_absolute() {
                cur
            } else {
                l.parent().map(|d| d.join(&cur)).unwrap_or(cur)
            };
            if normalize(&abs) == normalize(&t) {
                return Ok(());
            }
            std::fs::remove_file(&l).map_err(|e| io("unlink", &l, e))?;
        }
        std::os::unix::fs::symlink(&t, &l).map_err(|e| io("symlink", &l, e))
    }

    /// Where the link `rel` points, relative to the root when it is inside it.
    pub fn readlink(&self, rel: &str) -> Option<String> {
        let t = std::fs::read_link(self.path(rel)).ok()?;
        // The kernel answers configfs readlink with a relative path (`../../..`); resolve it.
        let abs = if t.is_absolute() {
            t
        } else {
            self.path(rel).parent()?.join(t)
        };
        let norm = normalize(&abs);
        norm.strip_prefix(&self.root)
            .ok()
            .map(|p| p.to_string_lossy().into_owned())
    }

    /// Removes the link `rel`; a missing link is fine.
    pub fn unlink(&self, rel: &str) -> Result<(), KernelError> {
        let p = self.path(rel);
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("unlink", &p, e)),
            _ => Ok(()),
        }
    }

    /// Removes the group `rel`; a missing group is fine. Like configfs, fails while it
    /// holds sub-groups or links.
    pub fn rmdir(&self, rel: &str) -> Result<(), KernelError> {
        let p = self.path(rel);
        if !p.exists() {
            return Ok(());
        }
        if self.synthetic {
            // Attribute files (and the default groups holding only them) vanish with
            // their group in configfs.
            remove_attributes(&p)?;
        }
        match std::fs::remove_dir(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("rmdir", &p, e)),
            _ => Ok(()),
        }
    }

    /// Names of the entries of directory `rel` (empty when absent), sorted.
    pub fn list(&self, rel: &str) -> Vec<String> {
        let mut out: Vec<String> = std::fs::read_dir(self.path(rel))
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    /// Names of the sub-directories of `rel`, sorted.
    pub fn list_dirs(&self, rel: &str) -> Vec<String> {
        self.list(rel)
            .into_iter()
            .filter(|n| std::fs::symlink_metadata(self.path(rel).join(n)).is_ok_and(|m| m.is_dir()))
            .collect()
    }

    /// Names of the symlinks in `rel`, sorted.
    pub fn list_links(&self, rel: &str) -> Vec<String> {
        self.list(rel)
            .into_iter()
            .filter(|n| {
                std::fs::symlink_metadata(self.path(rel).join(n))
                    .is_ok_and(|m| m.file_type().is_symlink())
            })
            .collect()
    }
}

/// Removes regular files, and sub-directories holding only regular files (default groups
/// such as `attrib/` or `auth/`), below `dir`.
fn remove_attributes(dir: &Path) -> Result<(), KernelError> {
    let rd = std::fs::read_dir(dir).map_err(|e| io("read", dir, e))?;
    for e in rd.filter_map(Result::ok) {
        let p = e.path();
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if m.is_file() {
            std::fs::remove_file(&p).map_err(|e| io("unlink", &p, e))?;
        } else if m.is_dir() && only_files(&p) {
            remove_attributes(&p)?;
            std::fs::remove_dir(&p).map_err(|e| io("rmdir", &p, e))?;
        }
    }
    Ok(())
}

fn only_files(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|rd| {
        rd.filter_map(Result::ok)
            .all(|e| std::fs::symlink_metadata(e.path()).is_ok_and(|m| m.is_file()))
    })
}

fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_written_without_a_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let c = Configfs::synthetic(dir.path());
        c.write("acl/auth/userid", "labuser").unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("acl/auth/userid")).unwrap(),
            b"labuser\n"
        );
        c.write_exact("acl/auth/userid", "labuser").unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("acl/auth/userid")).unwrap(),
            b"labuser"
        );
    }

    #[test]
    fn synthetic_tree_behaves_like_configfs_on_removal() {
        let dir = tempfile::tempdir().unwrap();
        let c = Configfs::synthetic(dir.path());
        c.mkdir("a/b").unwrap();
        c.write("a/attrib/x", "1").unwrap();
        c.mkdir("t").unwrap();
        c.symlink("t", "a/b/link").unwrap();
        c.symlink("t", "a/b/link").unwrap();
        assert_eq!(c.readlink("a/b/link").as_deref(), Some("t"));
        assert_eq!(c.read("a/attrib/x").unwrap().as_deref(), Some("1"));
        assert!(c.rmdir("a/b").is_err(), "a link keeps its group");
        c.unlink("a/b/link").unwrap();
        c.mkdir("a/b/c").unwrap();
        assert!(
            c.rmdir("a").is_err(),
            "a group with sub-groups keeps its parent"
        );
        c.rmdir("a/b/c").unwrap();
        c.rmdir("a/b").unwrap();
        c.rmdir("a").unwrap();
        c.rmdir("a").unwrap();
        assert!(!c.exists("a"));
        assert_eq!(c.list_dirs(""), vec!["t"]);
        assert!(!c.write_if_present("t/missing", "1").unwrap());
    }
}
