//! SMB/CIFS mounts: options (`mount.cifs(8)`), a 0600 credentials file, and rendering to
//! `mount -o`, fstab and autofs. The password is only ever written to the credentials file.

use std::fmt;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};

use crate::change::Change;
use crate::error::{Error, IoOp, Result, ValueKind};
use crate::files::{atomic_write, check_config_path, read_optional, EntryId, HostRoot};
use crate::ids::{ConfigToken, HostName};
use crate::runner::Command;

/// Where credentials files go on the host (one per [`EntryId`]).
pub const CREDENTIALS_DIR: &str = "/etc/kvmstor/cifs";

/// SMB dialect (`vers=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SmbVersion {
    /// SMB 2.1.
    V2_1,
    /// SMB 3.0.
    V3_0,
    /// SMB 3.0.2.
    V3_02,
    /// SMB 3.1.1 (the NetApp recommendation).
    V3_1_1,
    /// Any SMB3 dialect (`3`).
    Any3,
}

impl SmbVersion {
    fn as_str(self) -> &'static str {
        match self {
            SmbVersion::V2_1 => "2.1",
            SmbVersion::V3_0 => "3.0",
            SmbVersion::V3_02 => "3.02",
            SmbVersion::V3_1_1 => "3.1.1",
            SmbVersion::Any3 => "3",
        }
    }
}

/// Authentication (`sec=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CifsSec {
    /// NTLMv2 in NTLMSSP (the default).
    Ntlmssp,
    /// NTLMSSP with signing.
    Ntlmsspi,
    /// Kerberos (no password: uses the keytab or ticket cache).
    Krb5,
    /// Kerberos with signing.
    Krb5i,
}

impl CifsSec {
    fn as_str(self) -> &'static str {
        match self {
            CifsSec::Ntlmssp => "ntlmssp",
            CifsSec::Ntlmsspi => "ntlmsspi",
            CifsSec::Krb5 => "krb5",
            CifsSec::Krb5i => "krb5i",
        }
    }

    /// True for Kerberos flavours, which need no credentials file.
    pub fn is_kerberos(self) -> bool {
        matches!(self, CifsSec::Krb5 | CifsSec::Krb5i)
    }
}

/// Client caching (`cache=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CifsCache {
    /// Follow the SMB protocol strictly (default).
    Strict,
    /// Loose caching.
    Loose,
    /// No caching.
    None,
}

/// Validated CIFS mount options (everything except the credentials, which
/// [`CifsMount`] adds as `credentials=<file>`).
///
/// ```
/// use host_storage::cifs::{CifsOptions, SmbVersion};
/// let o = CifsOptions::new(SmbVersion::V3_1_1).max_channels(4).uid(107).gid(107).file_mode(0o660);
/// o.validate()?;
/// assert_eq!(o.mount_options(), "vers=3.1.1,multichannel,max_channels=4,uid=107,gid=107,file_mode=0660");
/// assert!(CifsOptions::new(SmbVersion::V3_1_1).max_channels(17).validate().is_err());
/// # Ok::<(), host_storage::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CifsOptions {
    version: SmbVersion,
    sec: Option<CifsSec>,
    multichannel: bool,
    max_channels: Option<u8>,
    uid: Option<u32>,
    gid: Option<u32>,
    file_mode: Option<u32>,
    dir_mode: Option<u32>,
    seal: bool,
    cache: Option<CifsCache>,
    read_only: bool,
    netdev: bool,
}

impl CifsOptions {
    /// Options with an explicit dialect.
    pub fn new(version: SmbVersion) -> Self {
        CifsOptions {
            version,
            sec: None,
            multichannel: false,
            max_channels: None,
            uid: None,
            gid: None,
            file_mode: None,
            dir_mode: None,
            seal: false,
            cache: None,
            read_only: false,
            netdev: false,
        }
    }
    /// Sets `sec=`.
    pub fn sec(mut self, s: CifsSec) -> Self {
        self.sec = Some(s);
        self
    }
    /// Sets `multichannel`.
    pub fn multichannel(mut self, on: bool) -> Self {
        self.multichannel = on;
        self
    }
    /// Sets `max_channels=` (1 to 16; implies `multichannel`).
    pub fn max_channels(mut self, n: u8) -> Self {
        self.max_channels = Some(n);
        self.multichannel = true;
        self
    }
    /// Owner of all files (`uid=`).
    pub fn uid(mut self, uid: u32) -> Self {
        self.uid = Some(uid);
        self
    }
    /// Group of all files (`gid=`).
    pub fn gid(mut self, gid: u32) -> Self {
        self.gid = Some(gid);
        self
    }
    /// Mode of files (`file_mode=`, octal, at most 0o7777).
    pub fn file_mode(mut self, mode: u32) -> Self {
        self.file_mode = Some(mode);
        self
    }
    /// Mode of directories (`dir_mode=`).
    pub fn dir_mode(mut self, mode: u32) -> Self {
        self.dir_mode = Some(mode);
        self
    }
    /// Encrypts traffic (`seal`).
    pub fn seal(mut self, on: bool) -> Self {
        self.seal = on;
        self
    }
    /// Sets `cache=`.
    pub fn cache(mut self, c: CifsCache) -> Self {
        self.cache = Some(c);
        self
    }
    /// Mounts read-only.
    pub fn read_only(mut self, on: bool) -> Self {
        self.read_only = on;
        self
    }
    /// Adds `_netdev` to fstab lines.
    pub fn netdev(mut self, on: bool) -> Self {
        self.netdev = on;
        self
    }

    /// The authentication flavour.
    pub fn get_sec(&self) -> Option<CifsSec> {
        self.sec
    }

    /// Checks ranges.
    pub fn validate(&self) -> Result<()> {
        if let Some(n) = self.max_channels {
            if !(1..=16).contains(&n) {
                return Err(Error::invalid(
                    ValueKind::CifsOption,
                    format!("max_channels={n}"),
                    "max_channels must be 1 to 16",
                ));
            }
        }
        for (name, m) in [("file_mode", self.file_mode), ("dir_mode", self.dir_mode)] {
            if let Some(m) = m {
                if m > 0o7777 {
                    return Err(Error::invalid(
                        ValueKind::CifsOption,
                        format!("{name}={m:o}"),
                        "mode must be at most 07777",
                    ));
                }
            }
        }
        if self.multichannel && matches!(self.version, SmbVersion::V2_1) {
            return Err(Error::Conflict {
                first: "multichannel".into(),
                second: "vers=2.1".into(),
                reason: "multichannel needs SMB 3",
            });
        }
        Ok(())
    }

    /// The `-o` string without credentials and `_netdev`.
    pub fn mount_options(&self) -> String {
        let mut v = vec![format!("vers={}", self.version.as_str())];
        if self.read_only {
            v.push("ro".into());
        }
        if let Some(s) = self.sec {
            v.push(format!("sec={}", s.as_str()));
        }
        if self.multichannel {
            v.push("multichannel".into());
        }
        if let Some(n) = self.max_channels {
            v.push(format!("max_channels={n}"));
        }
        if let Some(u) = self.uid {
            v.push(format!("uid={u}"));
        }
        if let Some(g) = self.gid {
            v.push(format!("gid={g}"));
        }
        if let Some(m) = self.file_mode {
            v.push(format!("file_mode={m:04o}"));
        }
        if let Some(m) = self.dir_mode {
            v.push(format!("dir_mode={m:04o}"));
        }
        if self.seal {
            v.push("seal".into());
        }
        match self.cache {
            Some(CifsCache::Strict) => v.push("cache=strict".into()),
            Some(CifsCache::Loose) => v.push("cache=loose".into()),
            Some(CifsCache::None) => v.push("cache=none".into()),
            None => {}
        }
        v.join(",")
    }
}

/// SMB credentials. `Debug` never shows the password.
///
/// ```
/// use host_storage::cifs::CifsCredentials;
/// use secrecy::SecretString;
/// let c = CifsCredentials::new("svc_kvm", SecretString::from("p@ss word!"), Some("CORP"))?;
/// assert!(!format!("{c:?}").contains("p@ss"));
/// assert!(CifsCredentials::new("svc", SecretString::from("bad\npassword"), None).is_err());
/// # Ok::<(), host_storage::Error>(())
/// ```
#[derive(Clone)]
pub struct CifsCredentials {
    username: ConfigToken,
    password: SecretString,
    domain: Option<ConfigToken>,
}

impl CifsCredentials {
    /// Validates user and domain as config tokens; the password may hold anything but a
    /// newline or NUL (the file is line-based).
    pub fn new(username: &str, password: SecretString, domain: Option<&str>) -> Result<Self> {
        let username = ConfigToken::parse(username)?;
        let domain = domain.map(ConfigToken::parse).transpose()?;
        if password.expose_secret().contains(['\n', '\r', '\0']) {
            return Err(Error::invalid(
                ValueKind::CifsOption,
                "password=***",
                "password must not contain a newline or NUL",
            ));
        }
        Ok(CifsCredentials {
            username,
            password,
            domain,
        })
    }

    /// The user name.
    pub fn username(&self) -> &str {
        self.username.as_str()
    }

    /// The file contents (holds the password: keep it in a `SecretString`).
    fn file_contents(&self) -> SecretString {
        let mut s = format!(
            "username={}\npassword={}\n",
            self.username,
            self.password.expose_secret()
        );
        if let Some(d) = &self.domain {
            s.push_str(&format!("domain={d}\n"));
        }
        SecretString::from(s)
    }
}

impl fmt::Debug for CifsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CifsCredentials")
            .field("username", &self.username)
            .field("password", &"***")
            .field("domain", &self.domain)
            .finish()
    }
}

/// The undo of [`write_credentials`]: the file, and whether it existed before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialsUndo {
    /// The file (under its host root).
    pub path: PathBuf,
    /// What the call did.
    pub change: Change,
    /// True if the file was created by the call (undo deletes it); an overwritten file is
    /// deleted too, since its old password is not kept.
    pub created: bool,
}

/// The credentials file of an entry: `/etc/kvmstor/cifs/<id>.cred`.
pub fn credentials_path(id: &EntryId) -> PathBuf {
    Path::new(CREDENTIALS_DIR).join(format!("{id}.cred"))
}

/// Writes the credentials file of `id` atomically with mode 0600 (directory 0700).
/// `Unchanged` when the file already holds exactly these credentials with mode 0600.
pub fn write_credentials(
    root: &HostRoot,
    id: &EntryId,
    creds: &CifsCredentials,
) -> Result<CredentialsUndo> {
    let path = root.path(credentials_path(id));
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    if !dir.is_dir() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| Error::io(IoOp::CreateDir, &dir, e))?;
    }
    let want = creds.file_contents();
    let existing = read_optional(&path)?.map(SecretString::from);
    if let Some(old) = &existing {
        let mode = std::fs::metadata(&path)
            .map_err(|e| Error::io(IoOp::Read, &path, e))?
            .permissions()
            .mode();
        if old.expose_secret() == want.expose_secret() && mode & 0o777 == 0o600 {
            return Ok(CredentialsUndo {
                path,
                change: Change::Unchanged,
                created: false,
            });
        }
        // Never keep a credentials file readable by others, whatever it had before.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::io(IoOp::SetPermissions, &path, e))?;
    }
    atomic_write(&path, want.expose_secret().as_bytes(), 0o600)?;
    tracing::info!(file = %path.display(), id = %id, "wrote CIFS credentials file");
    Ok(CredentialsUndo {
        path,
        change: Change::Changed,
        created: existing.is_none(),
    })
}

/// Reverts one [`write_credentials`]: deletes the file if the call wrote it (an
/// overwritten file's old password is not kept anywhere, so it is deleted too).
pub fn undo_credentials(undo: &CredentialsUndo) -> Result<Change> {
    if !undo.change.is_changed() {
        return Ok(Change::Unchanged);
    }
    match std::fs::remove_file(&undo.path) {
        Ok(()) => Ok(Change::Changed),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Change::Unchanged),
        Err(e) => Err(Error::io(IoOp::Remove, &undo.path, e)),
    }
}

/// Deletes the credentials file of `id`; a missing file is `Unchanged`.
pub fn remove_credentials(root: &HostRoot, id: &EntryId) -> Result<Change> {
    let path = root.path(credentials_path(id));
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(Change::Changed),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Change::Unchanged),
        Err(e) => Err(Error::io(IoOp::Remove, &path, e)),
    }
}

/// A complete SMB mount: server, share, mount point, options, and the credentials file it
/// reads (`None` for Kerberos or guest).
///
/// ```
/// use host_storage::cifs::{CifsMount, CifsOptions, SmbVersion};
/// use host_storage::files::EntryId;
/// use host_storage::HostName;
/// let m = CifsMount::new(
///     HostName::parse("smb.example.com")?,
///     "vmshare",
///     "/mnt/smb",
///     CifsOptions::new(SmbVersion::V3_1_1).multichannel(true).netdev(true),
///     Some(&EntryId::parse("smb1")?),
/// )?;
/// assert_eq!(
///     m.fstab_line(),
///     "//smb.example.com/vmshare /mnt/smb cifs vers=3.1.1,multichannel,credentials=/etc/kvmstor/cifs/smb1.cred,_netdev 0 0"
/// );
/// assert_eq!(
///     m.autofs_entry(),
///     "/mnt/smb -fstype=cifs,vers=3.1.1,multichannel,credentials=/etc/kvmstor/cifs/smb1.cred ://smb.example.com/vmshare"
/// );
/// # Ok::<(), host_storage::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CifsMount {
    server: HostName,
    share: String,
    target: PathBuf,
    options: CifsOptions,
    credentials: Option<PathBuf>,
}

impl CifsMount {
    /// Validates the mount. `share` is a share name, optionally with a sub-path
    /// (`share/dir`). `credentials` names the entry whose file [`write_credentials`] writes.
    pub fn new(
        server: HostName,
        share: &str,
        target: impl Into<PathBuf>,
        options: CifsOptions,
        credentials: Option<&EntryId>,
    ) -> Result<Self> {
        let target = target.into();
        check_config_path(&target)?;
        if share.is_empty()
            || share.starts_with('/')
            || share.split('/').any(|p| p.is_empty() || p == "..")
            || share.chars().any(|c| {
                c.is_whitespace()
                    || c.is_control()
                    || matches!(c, ',' | '#' | '=' | '"' | '\'' | '\\' | ';')
            })
        {
            return Err(Error::invalid(
                ValueKind::Path,
                share,
                "share must be a name (optionally name/sub/dir) without spaces or separators",
            ));
        }
        options.validate()?;
        Ok(CifsMount {
            server,
            share: share.to_owned(),
            target,
            options,
            credentials: credentials.map(credentials_path),
        })
    }

    /// The mount point.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// `//server/share`.
    pub fn source(&self) -> String {
        format!("//{}/{}", self.server.for_address(), self.share)
    }

    /// The `-o` string, with `credentials=` but never a password.
    pub fn mount_options(&self) -> String {
        let mut s = self.options.mount_options();
        if let Some(c) = &self.credentials {
            s.push_str(&format!(",credentials={}", c.display()));
        }
        s
    }

    /// The fstab line.
    pub fn fstab_line(&self) -> String {
        let mut opts = self.mount_options();
        if self.options.netdev {
            opts.push_str(",_netdev");
        }
        format!(
            "{} {} cifs {} 0 0",
            self.source(),
            self.target.display(),
            opts
        )
    }

    /// The direct-map entry.
    pub fn autofs_entry(&self) -> String {
        format!(
            "{} -fstype=cifs,{} :{}",
            self.target.display(),
            self.mount_options(),
            self.source()
        )
    }

    /// `mount -t cifs -o options //server/share target`.
    pub fn mount_command(&self) -> Command {
        Command::new("mount").args([
            "-t".to_owned(),
            "cifs".to_owned(),
            "-o".to_owned(),
            self.mount_options(),
            self.source(),
            self.target.display().to_string(),
        ])
    }
}
