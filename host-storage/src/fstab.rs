//! `/etc/fstab` lines owned by kvmstor (see [`crate::files`] for the ownership marker).

use std::path::{Path, PathBuf};

use crate::change::Change;
use crate::cifs::CifsMount;
use crate::error::{Error, Result, ValueKind};
use crate::files::{check_config_path, second_field, EntryId, HostRoot, LineUndo, ManagedFile};
use crate::nfs::NfsMount;

/// One fstab line for any file system (NFS and CIFS lines come from [`NfsMount::fstab_line`]
/// and [`CifsMount::fstab_line`]; cluster file systems build one of these).
///
/// ```
/// use host_storage::fstab::FstabEntry;
/// let e = FstabEntry::new("/dev/mapper/3600a0980774f6a34663f57396c4f6b37", "/var/lib/vmstore", "ocfs2", "_netdev,noatime")?;
/// assert_eq!(e.line(), "/dev/mapper/3600a0980774f6a34663f57396c4f6b37 /var/lib/vmstore ocfs2 _netdev,noatime 0 0");
/// assert!(FstabEntry::new("/dev/sda1", "/mnt/a b", "ext4", "defaults").is_err());
/// assert!(FstabEntry::new("/dev/sda1", "/mnt/a", "ext4", "defaults #x").is_err());
/// # Ok::<(), host_storage::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FstabEntry {
    source: String,
    target: PathBuf,
    fstype: String,
    options: String,
}

fn field_ok(s: &str) -> bool {
    !s.is_empty()
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '#' | '"' | '\'' | '\\'))
}

impl FstabEntry {
    /// Validates the four fields; dump and pass are written as `0 0`.
    pub fn new(
        source: &str,
        target: impl Into<PathBuf>,
        fstype: &str,
        options: &str,
    ) -> Result<Self> {
        let target = target.into();
        if !field_ok(source) {
            return Err(Error::invalid(
                ValueKind::Path,
                source,
                "fstab source must have no whitespace, '#', quotes or '\\'",
            ));
        }
        check_config_path(&target)?;
        if fstype.is_empty()
            || !fstype
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_'))
        {
            return Err(Error::invalid(
                ValueKind::ConfigToken,
                fstype,
                "file-system type must be letters, digits, '.', '_'",
            ));
        }
        if !field_ok(options) || options.split(',').any(str::is_empty) {
            return Err(Error::invalid(
                ValueKind::ConfigToken,
                options,
                "options must be comma-separated without whitespace, '#', quotes or '\\'",
            ));
        }
        Ok(FstabEntry {
            source: source.to_owned(),
            target,
            fstype: fstype.to_owned(),
            options: options.to_owned(),
        })
    }

    /// The mount point.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// The line.
    pub fn line(&self) -> String {
        format!(
            "{} {} {} {} 0 0",
            self.source,
            self.target.display(),
            self.fstype,
            self.options
        )
    }
}

/// The host's `/etc/fstab`, of which kvmstor edits only the lines it owns.
///
/// ```no_run
/// use host_storage::files::{EntryId, HostRoot};
/// use host_storage::fstab::Fstab;
/// use host_storage::nfs::{NfsMount, NfsOptions, NfsServers, NfsVersion};
/// use host_storage::HostName;
/// let fstab = Fstab::new(&HostRoot::system());
/// let m = NfsMount::new(NfsServers::One(HostName::parse("10.0.0.5")?), "/vm", "/mnt/vm",
///     NfsOptions::new(NfsVersion::V4_1).netdev(true))?;
/// let undo = fstab.add_nfs(&EntryId::parse("vm")?, &m)?;
/// // ... later, or when a later step fails:
/// fstab.undo(&undo)?;
/// # Ok::<(), host_storage::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Fstab {
    file: ManagedFile,
}

impl Fstab {
    /// `/etc/fstab` under `root`.
    pub fn new(root: &HostRoot) -> Self {
        Fstab::at(root.path("/etc/fstab"))
    }

    /// A file at an explicit path.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Fstab {
            file: ManagedFile {
                path: path.into(),
                key_of: second_field,
                new_mode: 0o644,
            },
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.file.path
    }

    /// Adds or updates the line owned by `id`. A line for the same mount point that kvmstor
    /// does not own is an error ([`Error::NotOwned`]); the file is then untouched.
    pub fn add(&self, id: &EntryId, entry: &FstabEntry) -> Result<LineUndo> {
        self.file
            .upsert(id, &entry.line(), &entry.target.display().to_string())
    }

    /// Adds an NFS mount (replicated server sets are refused: use autofs).
    pub fn add_nfs(&self, id: &EntryId, m: &NfsMount) -> Result<LineUndo> {
        m.source()?;
        self.file
            .upsert(id, &m.fstab_line(), &m.target().display().to_string())
    }

    /// Adds a CIFS mount.
    pub fn add_cifs(&self, id: &EntryId, m: &CifsMount) -> Result<LineUndo> {
        self.file
            .upsert(id, &m.fstab_line(), &m.target().display().to_string())
    }

    /// Removes the line owned by `id` (and its marker); already gone is `Unchanged`.
    pub fn remove(&self, id: &EntryId) -> Result<Change> {
        self.file.remove(id).map(|(c, _)| c)
    }

    /// Reverts one `add*`: removes the line, or restores the line it replaced.
    pub fn undo(&self, undo: &LineUndo) -> Result<Change> {
        self.file.undo(undo)
    }

    /// The `(id, line)` pairs kvmstor owns.
    pub fn owned(&self) -> Result<Vec<(String, String)>> {
        self.file.owned()
    }
}
