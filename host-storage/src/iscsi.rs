//! iSCSI with open-iscsi: SendTargets discovery, node records and their settings, CHAP and
//! mutual CHAP, login to every portal of a target, targeted SCSI scans, the session
//! inventory from sysfs, and an undo that logs out and removes records only when nothing else
//! of the target is in use.
//!
//! # CHAP secrets never reach argv
//!
//! `iscsiadm -m node -o update -n node.session.auth.password -v SECRET` would put the secret
//! on the command line, readable by every local user in `/proc/PID/cmdline`. open-iscsi has
//! no option that reads a value from stdin or a file. But a node record *is* a file
//! (`<nodes>/<IQN>/<address>,<port>,<tpgt>/<iface>`, or the older
//! `<nodes>/<IQN>/<address>,<port>` file, with `<nodes>` `/etc/iscsi/nodes` on Debian and
//! `/var/lib/iscsi/nodes` on Red Hat) of `name = value` lines, and `iscsiadm --login` reads
//! that file and hands the whole record, credentials included, to iscsid in its login
//! request; iscsid keeps no copy of its own. So kvmstor creates the record with `iscsiadm -o
//! new` (no secret involved), then sets the `node.session.auth.*` lines by rewriting the
//! record file atomically with mode 0600 (a temporary file in the same directory, `fsync`,
//! `rename`).
//!
//! # Few processes
//!
//! Every process costs, a lot on slow or emulated hosts, so the common path runs about what
//! a hand-typed attach would: one `iscsiadm -o new` per fresh portal (all portals at once),
//! then the node settings and CHAP in the same atomic rewrite of the record file; sessions
//! read from sysfs (`/sys/class/iscsi_session`), never from `iscsiadm -m session`; one
//! `iscsiadm -m node -T IQN --login` when the node database holds exactly this target's
//! portals (iscsiadm logs in to all of them together); on undo one `--logout` and one `-o
//! delete` for the target under the same condition (and when every session of the target is
//! one to end). Otherwise, or when the node database is not where Debian or Red Hat keep it
//! (then only `iscsiadm` reads and updates records), each portal is handled on its own.
//!
//! # Discovery touches nothing
//!
//! SendTargets discovery runs with `-o nonpersistent`, so it only reports what the target
//! offers; the node records kvmstor needs are created afterwards, one per portal, each with
//! its own undo. (A plain `-m discovery` would create or reset records of every target the
//! portal reports, including ones the administrator configured.)

use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::change::Change;
use crate::error::{Error, IoOp, Result, ValueKind};
use crate::files::{atomic_write, read_optional, HostRoot};
use crate::ids::{Iqn, LunSerial};
use crate::parse::iscsi::parse_sessions;
use crate::parse::{Hctl, Portal};
use crate::runner::{Command, Runner};
use crate::sysfs::{IscsiSessionInfo, Sysfs};

/// iscsiadm exit code: the session already exists.
pub const ISCSI_ERR_SESS_EXISTS: i32 = 15;
/// iscsiadm exit code: no records or sessions found.
pub const ISCSI_ERR_NO_OBJS_FOUND: i32 = 21;
/// iscsiadm exit code: CHAP authentication failed.
pub const ISCSI_ERR_LOGIN_AUTH_FAILED: i32 = 24;

/// One portal a SendTargets discovery reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetPortal {
    /// Address and port.
    pub portal: Portal,
    /// Target portal group tag.
    pub tpgt: i32,
    /// The target.
    pub target: Iqn,
}

/// Parses `iscsiadm -m discovery -t sendtargets` output: `ADDR:PORT,TPGT IQN` per line
/// (IPv6 addresses in brackets).
///
/// ```
/// use host_storage::iscsi::parse_sendtargets;
/// let out = "10.63.1.10:3260,1030 iqn.1992-08.com.netapp:sn.5d:vs.3\n\
///            [fd20::10]:3260,1031 iqn.1992-08.com.netapp:sn.5d:vs.3\n";
/// let found = parse_sendtargets(out)?;
/// assert_eq!(found[0].portal.to_string(), "10.63.1.10:3260");
/// assert_eq!((found[1].portal.address.as_str(), found[1].tpgt), ("fd20::10", 1031));
/// # Ok::<(), host_storage::Error>(())
/// ```
pub fn parse_sendtargets(text: &str) -> Result<Vec<TargetPortal>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let bad = |reason| Error::parse(crate::Format::IscsiDiscoveryDb, i + 1, reason);
        let (addr, iqn) = line
            .split_once(char::is_whitespace)
            .ok_or_else(|| bad("expected `ADDR:PORT,TPGT IQN`"))?;
        let (portal, tpgt) = addr
            .rsplit_once(',')
            .ok_or_else(|| bad("portal without ,TPGT"))?;
        let portal = Portal::parse(portal).ok_or_else(|| bad("bad portal address"))?;
        let tpgt = tpgt.parse().map_err(|_| bad("bad portal group tag"))?;
        let target = Iqn::parse(iqn.trim()).map_err(|_| bad("bad target IQN"))?;
        out.push(TargetPortal {
            portal,
            tpgt,
            target,
        });
    }
    Ok(out)
}

/// A CHAP user name and secret.
#[derive(Clone)]
pub struct ChapCredentials {
    username: String,
    secret: SecretString,
}

impl std::fmt::Debug for ChapCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChapCredentials")
            .field("username", &self.username)
            .field("secret", &"***")
            .finish()
    }
}

impl ChapCredentials {
    /// Validates a user name (1–255 printable ASCII without spaces) and a secret (1–256
    /// bytes, no control characters: it goes into a `name = value` line).
    ///
    /// ```
    /// use host_storage::iscsi::ChapCredentials;
    /// use secrecy::SecretString;
    /// let c = ChapCredentials::new("kvm01", SecretString::from("s3cret-s3cret"))?;
    /// assert!(!format!("{c:?}").contains("s3cret"));
    /// assert!(ChapCredentials::new("kvm 01", SecretString::from("x")).is_err());
    /// assert!(ChapCredentials::new("kvm01", SecretString::from("a\nnode.startup = automatic")).is_err());
    /// # Ok::<(), host_storage::Error>(())
    /// ```
    pub fn new(username: &str, secret: SecretString) -> Result<Self> {
        if username.is_empty()
            || username.len() > 255
            || !username.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(Error::invalid(
                ValueKind::Name,
                username,
                "CHAP user name must be 1 to 255 printable ASCII characters without spaces",
            ));
        }
        let s = secret.expose_secret();
        if s.is_empty() || s.len() > 256 || s.chars().any(char::is_control) {
            // The value is a secret: it is not echoed in the error.
            return Err(Error::invalid(
                ValueKind::Name,
                "***",
                "CHAP secret must be 1 to 256 bytes without control characters",
            ));
        }
        Ok(ChapCredentials {
            username: username.to_owned(),
            secret,
        })
    }

    /// The user name.
    pub fn username(&self) -> &str {
        &self.username
    }
}

/// CHAP settings of a node: the initiator's credentials, and for mutual CHAP the target's.
#[derive(Debug, Clone)]
pub struct Chap {
    /// What the initiator presents (`node.session.auth.username`/`password`).
    pub initiator: ChapCredentials,
    /// What the target must present back (`username_in`/`password_in`), for mutual CHAP.
    pub target: Option<ChapCredentials>,
}

/// Node-record settings kvmstor sets on every portal (`iscsiadm -o update`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeSettings {
    /// `node.session.timeo.replacement_timeout`: seconds before a lost path fails I/O up to
    /// multipath (NetApp recommends 5 with dm-multipath).
    pub replacement_timeout: u32,
    /// `node.conn[0].timeo.login_timeout`, seconds.
    pub login_timeout: u32,
    /// `node.session.scan = manual`: only the LUNs kvmstor scans for appear, not every LUN
    /// mapped to the host.
    pub manual_scan: bool,
    /// `node.startup = automatic`: log in again at boot.
    pub startup_automatic: bool,
}

impl Default for NodeSettings {
    fn default() -> Self {
        NodeSettings {
            replacement_timeout: 5,
            login_timeout: 10,
            manual_scan: true,
            startup_automatic: true,
        }
    }
}

impl NodeSettings {
    /// The `(name, value)` pairs, in the order they are applied.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "node.session.scan",
                if self.manual_scan { "manual" } else { "auto" }.to_owned(),
            ),
            (
                "node.session.timeo.replacement_timeout",
                self.replacement_timeout.to_string(),
            ),
            (
                "node.conn[0].timeo.login_timeout",
                self.login_timeout.to_string(),
            ),
            (
                "node.startup",
                if self.startup_automatic {
                    "automatic"
                } else {
                    "manual"
                }
                .to_owned(),
            ),
        ]
    }

    fn check(&self) -> Result<()> {
        if self.replacement_timeout == 0 || self.replacement_timeout > 86_400 {
            return Err(Error::invalid(
                ValueKind::Name,
                self.replacement_timeout.to_string(),
                "replacement timeout must be 1 to 86400 seconds",
            ));
        }
        if self.login_timeout == 0 || self.login_timeout > 3600 {
            return Err(Error::invalid(
                ValueKind::Name,
                self.login_timeout.to_string(),
                "login timeout must be 1 to 3600 seconds",
            ));
        }
        Ok(())
    }
}

/// A target and the portals to log in to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IscsiTarget {
    /// The target IQN.
    pub iqn: Iqn,
    /// Every portal of the target (one session each, for multipath).
    pub portals: Vec<(Portal, Option<i32>)>,
}

impl IscsiTarget {
    /// A target with these portals (with their TPGT when discovery told it). Refuses an
    /// empty or duplicated portal list and port 0.
    pub fn new(iqn: Iqn, portals: Vec<(Portal, Option<i32>)>) -> Result<Self> {
        if portals.is_empty() {
            return Err(Error::invalid(
                ValueKind::HostName,
                "",
                "a target needs at least one portal",
            ));
        }
        for (i, (p, _)) in portals.iter().enumerate() {
            crate::ids::HostName::parse(&p.address)?;
            if p.port == 0 {
                return Err(Error::invalid(ValueKind::HostName, p.to_string(), "port 0"));
            }
            if portals[..i].iter().any(|(q, _)| q == p) {
                return Err(Error::invalid(
                    ValueKind::HostName,
                    p.to_string(),
                    "portal listed twice",
                ));
            }
        }
        Ok(IscsiTarget { iqn, portals })
    }

    /// The target and portals a discovery reported for `iqn`.
    pub fn from_discovery(iqn: &Iqn, found: &[TargetPortal]) -> Result<Self> {
        let portals = found
            .iter()
            .filter(|t| &t.target == iqn)
            .map(|t| (t.portal.clone(), Some(t.tpgt)))
            .collect();
        Self::new(iqn.clone(), portals)
    }
}

/// What [`Iscsi::ensure_node`] did on one portal.
#[derive(Debug, Clone)]
pub struct NodeUndo {
    /// The target.
    pub target: Iqn,
    /// The portal.
    pub portal: Portal,
    /// True when the record did not exist and was created (undo deletes it).
    pub created: bool,
    /// Settings changed on a pre-existing record, with their previous values.
    pub previous_settings: Vec<(String, String)>,
    /// The record file and its previous contents (secret-bearing, hence a secret) when CHAP
    /// lines were rewritten on a pre-existing record.
    pub previous_record: Option<(PathBuf, SecretString)>,
    /// Whether anything changed.
    pub change: Change,
}

/// What [`Iscsi::login`] did on one portal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginUndo {
    /// The target.
    pub target: Iqn,
    /// The portal.
    pub portal: Portal,
    /// Whether a session was created.
    pub change: Change,
}

/// What [`Iscsi::connect`] did for a whole target.
#[derive(Debug, Clone)]
pub struct ConnectUndo {
    /// Per-portal record changes.
    pub nodes: Vec<NodeUndo>,
    /// Per-portal logins.
    pub logins: Vec<LoginUndo>,
    /// Whether anything changed.
    pub change: Change,
}

/// What [`Iscsi::disconnect`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnected {
    /// Whether anything changed.
    pub change: Change,
    /// Portals whose session was kept because SCSI devices remain on it, with the devices.
    pub kept: Vec<(Portal, Vec<String>)>,
}

/// The SCSI paths of one LUN found by [`Iscsi::attach_lun`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LunPaths {
    /// Address and disk (`sdb`) of each path, serial verified.
    pub paths: Vec<(Hctl, String)>,
    /// How many logged-in sessions the target has (paths may be fewer at the deadline).
    pub sessions: usize,
}

/// The auth keys kvmstor writes into a record file.
const AUTH_KEYS: [&str; 5] = [
    "node.session.auth.authmethod",
    "node.session.auth.username",
    "node.session.auth.password",
    "node.session.auth.username_in",
    "node.session.auth.password_in",
];

/// Sets `name = value` lines in a node record's text: existing lines for these names are
/// replaced in place, missing ones inserted before `# END RECORD` (or appended).
pub(crate) fn set_record_lines(text: &str, set: &[(&str, String)]) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut done = vec![false; set.len()];
    for line in text.lines() {
        let key = line.split_once('=').map(|(k, _)| k.trim());
        if let Some(i) = key.and_then(|k| set.iter().position(|(n, _)| *n == k)) {
            if !done[i] {
                lines.push(format!("{} = {}", set[i].0, set[i].1));
                done[i] = true;
            }
            continue;
        }
        lines.push(line.to_owned());
    }
    let end = lines
        .iter()
        .position(|l| l.trim() == "# END RECORD")
        .unwrap_or(lines.len());
    let missing: Vec<String> = set
        .iter()
        .zip(&done)
        .filter(|(_, d)| !**d)
        .map(|((k, v), _)| format!("{k} = {v}"))
        .collect();
    lines.splice(end..end, missing);
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// Reads `name = value` pairs of `iscsiadm -m node -T … -p …` output or a record file.
pub(crate) fn record_value<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == name).then(|| v.trim())
    })
}

/// open-iscsi through `iscsiadm`, record files and sysfs.
///
/// ```
/// use host_storage::files::HostRoot;
/// use host_storage::iscsi::Iscsi;
/// use host_storage::parse::Portal;
/// use host_storage::{Expect, FakeRunner};
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), host_storage::Error> {
/// let fake = FakeRunner::new();
/// fake.expect(
///     Expect::new("iscsiadm", ["-m", "discovery", "-t", "sendtargets", "-p", "10.63.1.10:3260", "-o", "nonpersistent"])
///         .stdout("10.63.1.10:3260,1030 iqn.1992-08.com.netapp:sn.5d:vs.3\n"),
/// );
/// let iscsi = Iscsi::new(&fake, HostRoot::new("/nonexistent"));
/// let portal = Portal { address: "10.63.1.10".into(), port: 3260 };
/// let found = iscsi.discover(&portal).await?;
/// assert_eq!(found[0].target.as_str(), "iqn.1992-08.com.netapp:sn.5d:vs.3");
/// fake.verify();
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Iscsi<R> {
    runner: R,
    root: HostRoot,
    sys: Sysfs,
    nodes_dir: Option<PathBuf>,
    iface: String,
}

impl<R: Runner> Iscsi<R> {
    /// open-iscsi on the host under `root`, interface `default`. The node database is
    /// `/etc/iscsi/nodes` or `/var/lib/iscsi/nodes`, whichever exists.
    pub fn new(runner: R, root: HostRoot) -> Self {
        Iscsi {
            runner,
            sys: Sysfs::new(root.clone()),
            root,
            nodes_dir: None,
            iface: "default".to_owned(),
        }
    }

    /// Uses this node database directory (a host path, taken under the root).
    pub fn nodes_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.nodes_dir = Some(dir.into());
        self
    }

    fn node_db(&self) -> Option<PathBuf> {
        if let Some(d) = &self.nodes_dir {
            return Some(self.root.path(d));
        }
        ["/etc/iscsi/nodes", "/var/lib/iscsi/nodes"]
            .iter()
            .map(|d| self.root.path(d))
            .find(|p| p.is_dir())
    }

    /// The record file of `target` at `portal` (new style `ADDR,PORT,TPGT/IFACE` or old
    /// style `ADDR,PORT`), if it exists.
    pub fn record_file(&self, target: &Iqn, portal: &Portal) -> Option<PathBuf> {
        let dir = self.node_db()?.join(target.as_str());
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| record_of(n, portal))
            })
            .collect();
        entries.sort();
        entries.into_iter().find_map(|p| {
            if p.is_file() {
                Some(p)
            } else {
                let f = p.join(&self.iface);
                f.is_file().then_some(f)
            }
        })
    }

    fn node_cmd(&self, target: &Iqn, portal: &Portal) -> Command {
        Command::new("iscsiadm").args([
            "-m",
            "node",
            "-T",
            target.as_str(),
            "-p",
            &portal.to_string(),
        ])
    }

    /// SendTargets discovery at `portal`, without creating or changing any node record.
    pub async fn discover(&self, portal: &Portal) -> Result<Vec<TargetPortal>> {
        crate::ids::HostName::parse(&portal.address)?;
        let out = self
            .runner
            .run(&Command::new("iscsiadm").args([
                "-m",
                "discovery",
                "-t",
                "sendtargets",
                "-p",
                &portal.to_string(),
                "-o",
                "nonpersistent",
            ]))
            .await?;
        parse_sendtargets(&out.stdout)
    }

    /// The node record of `target` at `portal` as `iscsiadm` shows it (secrets masked by
    /// iscsiadm), or `None`.
    pub async fn node_record(&self, target: &Iqn, portal: &Portal) -> Result<Option<String>> {
        let out = self
            .runner
            .run(
                &self
                    .node_cmd(target, portal)
                    .ok_codes([0, ISCSI_ERR_NO_OBJS_FOUND]),
            )
            .await?;
        Ok((out.code() == Some(0)).then_some(out.stdout))
    }

    /// True when the node database lists exactly one record per portal of `portals` for
    /// `target`, each on this interface only, and nothing else: then a target-wide
    /// `iscsiadm -m node -T IQN` operation acts on these portals and on no one else's.
    /// False when the database cannot be read (a target-wide operation is never guessed).
    pub fn records_are_exactly(&self, target: &Iqn, portals: &[&Portal]) -> bool {
        let Some(db) = self.node_db() else {
            return false;
        };
        let Ok(entries) = std::fs::read_dir(db.join(target.as_str())) else {
            return false;
        };
        let mut matched = vec![false; portals.len()];
        for e in entries {
            let Ok(e) = e else { return false };
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(i) = portals.iter().position(|p| record_of(&name, p)) else {
                return false;
            };
            if std::mem::replace(&mut matched[i], true) {
                // Two records for one portal (another TPGT): not a shape kvmstor made.
                return false;
            }
            let path = e.path();
            if path.is_dir() {
                let ifaces: Vec<String> = match std::fs::read_dir(&path) {
                    Ok(rd) => rd
                        .filter_map(|f| f.ok())
                        .map(|f| f.file_name().to_string_lossy().into_owned())
                        .collect(),
                    Err(_) => return false,
                };
                if ifaces != [self.iface.as_str()] {
                    return false;
                }
            }
        }
        !portals.is_empty() && matched.iter().all(|m| *m)
    }

    /// Makes sure the node record of `target` at `portal` exists with `settings` and, when
    /// given, `chap`.
    ///
    /// The record is created with `iscsiadm -o new` (which fills in the host's
    /// `iscsid.conf` defaults); every setting and the CHAP lines are then written into the
    /// record file in one atomic rewrite, so a fresh portal costs one process. When the node
    /// database is not where open-iscsi keeps it on Debian or Red Hat, the record is read and
    /// updated through `iscsiadm` instead (and CHAP is refused: it would need argv).
    pub async fn ensure_node(
        &self,
        target: &Iqn,
        portal: &Portal,
        tpgt: Option<i32>,
        settings: &NodeSettings,
        chap: Option<&Chap>,
    ) -> Result<NodeUndo> {
        settings.check()?;
        crate::ids::HostName::parse(&portal.address)?;
        let mut undo = NodeUndo {
            target: target.clone(),
            portal: portal.clone(),
            created: false,
            previous_settings: Vec::new(),
            previous_record: None,
            change: Change::Unchanged,
        };
        // No node database yet is normal on a fresh Debian host (iscsiadm creates
        // /etc/iscsi/nodes with the first record); /var/lib/iscsi/nodes ships with the
        // package on Red Hat. Without either, only iscsiadm knows whether a record exists
        // (`-o new` would overwrite one with defaults).
        let exists = match self.node_db() {
            Some(_) => self.record_file(target, portal).is_some(),
            None => self.node_record(target, portal).await?.is_some(),
        };
        if !exists {
            let p = match tpgt {
                Some(t) => format!("{portal},{t}"),
                None => portal.to_string(),
            };
            self.runner
                .run(&Command::new("iscsiadm").args([
                    "-m",
                    "node",
                    "-T",
                    target.as_str(),
                    "-p",
                    &p,
                    "-I",
                    &self.iface,
                    "-o",
                    "new",
                ]))
                .await?;
            tracing::info!(target = %target, portal = %portal, "created iSCSI node record");
            undo.created = true;
            undo.change = Change::Changed;
        }
        let result = match self.record_file(target, portal) {
            Some(file) => self.tune_record_file(&file, settings, chap, &mut undo),
            None => self.tune_record_iscsiadm(settings, chap, &mut undo).await,
        };
        if let Err(e) = result {
            if undo.created {
                // Do not leave a record without the settings it was made with.
                let _ = self
                    .runner
                    .run(&self.node_cmd(target, portal).args(["-o", "delete"]))
                    .await;
            }
            return Err(e);
        }
        Ok(undo)
    }

    /// Writes `settings` and `chap` into the record file in one atomic rewrite (mode 0600
    /// before any secret goes in).
    fn tune_record_file(
        &self,
        file: &Path,
        settings: &NodeSettings,
        chap: Option<&Chap>,
        undo: &mut NodeUndo,
    ) -> Result<()> {
        let text = read_optional(file)?.unwrap_or_default();
        let mut set: Vec<(&str, String)> = Vec::new();
        for (name, value) in settings.pairs() {
            let old = record_value(&text, name);
            if old == Some(value.as_str()) {
                continue;
            }
            if let (false, Some(old)) = (undo.created, old) {
                undo.previous_settings
                    .push((name.to_owned(), old.to_owned()));
            }
            set.push((name, value));
        }
        if let Some(chap) = chap {
            set.push((AUTH_KEYS[0], "CHAP".to_owned()));
            set.push((AUTH_KEYS[1], chap.initiator.username.clone()));
            set.push((
                AUTH_KEYS[2],
                chap.initiator.secret.expose_secret().to_owned(),
            ));
            if let Some(t) = &chap.target {
                set.push((AUTH_KEYS[3], t.username.clone()));
                set.push((AUTH_KEYS[4], t.secret.expose_secret().to_owned()));
            }
        }
        let new = set_record_lines(&text, &set);
        if new == text {
            return Ok(());
        }
        if chap.is_some() {
            // 0600 first: atomic_write keeps an existing file's mode, and the new text
            // holds secrets.
            set_mode_0600(file)?;
            if !undo.created {
                undo.previous_record = Some((file.to_owned(), SecretString::from(text)));
            }
        }
        atomic_write(file, new.as_bytes(), 0o600)?;
        tracing::info!(target = %undo.target, portal = %undo.portal, chap = chap.is_some(), "wrote node record settings");
        undo.change = Change::Changed;
        Ok(())
    }

    /// The fallback when the record file is not found: `iscsiadm -o update` per setting.
    async fn tune_record_iscsiadm(
        &self,
        settings: &NodeSettings,
        chap: Option<&Chap>,
        undo: &mut NodeUndo,
    ) -> Result<()> {
        if chap.is_some() {
            return Err(Error::io(
                IoOp::Read,
                self.node_db()
                    .unwrap_or_else(|| self.root.path("/etc/iscsi/nodes"))
                    .join(undo.target.as_str()),
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        }
        let current = self
            .node_record(&undo.target, &undo.portal)
            .await?
            .unwrap_or_default();
        for (name, value) in settings.pairs() {
            let old = record_value(&current, name);
            if old == Some(value.as_str()) {
                continue;
            }
            self.runner
                .run(
                    &self
                        .node_cmd(&undo.target, &undo.portal)
                        .args(["-o", "update", "-n", name, "-v", &value]),
                )
                .await?;
            if let (false, Some(old)) = (undo.created, old) {
                undo.previous_settings
                    .push((name.to_owned(), old.to_owned()));
            }
            undo.change = Change::Changed;
        }
        Ok(())
    }

    /// Reverts [`Iscsi::ensure_node`]: deletes a record it created (only when no session of
    /// the target runs on that portal), or restores the previous record text (CHAP) or the
    /// previous settings, in the record file when there is one.
    pub async fn undo_node(&self, undo: &NodeUndo) -> Result<Change> {
        if !undo.change.is_changed() {
            return Ok(Change::Unchanged);
        }
        if undo.created {
            self.refuse_if_logged_in(&undo.target, &undo.portal)?;
            if self.node_db().is_some() && self.record_file(&undo.target, &undo.portal).is_none() {
                // Gone already (the node database is readable): nothing to run.
                return Ok(Change::Unchanged);
            }
            let out = self
                .runner
                .run(
                    &self
                        .node_cmd(&undo.target, &undo.portal)
                        .args(["-o", "delete"])
                        .ok_codes([0, ISCSI_ERR_NO_OBJS_FOUND]),
                )
                .await?;
            return Ok(Change::from(out.code() == Some(0)));
        }
        if let Some((file, text)) = &undo.previous_record {
            atomic_write(file, text.expose_secret().as_bytes(), 0o600)?;
            return Ok(Change::Changed);
        }
        if undo.previous_settings.is_empty() {
            return Ok(Change::Unchanged);
        }
        match self.record_file(&undo.target, &undo.portal) {
            Some(file) => {
                let text = read_optional(&file)?.unwrap_or_default();
                let set: Vec<(&str, String)> = undo
                    .previous_settings
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.clone()))
                    .collect();
                let new = set_record_lines(&text, &set);
                if new == text {
                    return Ok(Change::Unchanged);
                }
                atomic_write(&file, new.as_bytes(), 0o600)?;
            }
            None => {
                for (name, value) in &undo.previous_settings {
                    self.runner
                        .run(&self.node_cmd(&undo.target, &undo.portal).args([
                            "-o",
                            "update",
                            "-n",
                            name.as_str(),
                            "-v",
                            value.as_str(),
                        ]))
                        .await?;
                }
            }
        }
        Ok(Change::Changed)
    }

    fn refuse_if_logged_in(&self, target: &Iqn, portal: &Portal) -> Result<()> {
        if self.is_logged_in(target, portal)? {
            return Err(Error::InUse {
                resource: format!("{target} at {portal}"),
                users: vec!["an iSCSI session".to_owned()],
            });
        }
        Ok(())
    }

    /// Sessions as `iscsiadm -m session` lists them (none is an empty list). kvmstor's own
    /// checks read sysfs ([`Iscsi::target_sessions`]), which costs no process.
    pub async fn sessions(&self) -> Result<Vec<crate::parse::iscsi::Session>> {
        let out = self
            .runner
            .run(
                &Command::new("iscsiadm")
                    .args(["-m", "session"])
                    .ok_codes([0, ISCSI_ERR_NO_OBJS_FOUND]),
            )
            .await?;
        if out.code() == Some(ISCSI_ERR_NO_OBJS_FOUND) {
            return Ok(Vec::new());
        }
        parse_sessions(&out.stdout)
    }

    /// True when a session of `target` at `portal` exists in sysfs, in any state (a
    /// session that is reconnecting is still there: a login would be refused).
    fn is_logged_in(&self, target: &Iqn, portal: &Portal) -> Result<bool> {
        Ok(self
            .target_sessions(target)?
            .iter()
            .any(|s| s.portal.as_ref() == Some(portal)))
    }

    /// Logs in to `target` at `portal`; unchanged when a session already exists.
    pub async fn login(&self, target: &Iqn, portal: &Portal) -> Result<LoginUndo> {
        let mut undo = LoginUndo {
            target: target.clone(),
            portal: portal.clone(),
            change: Change::Unchanged,
        };
        if self.is_logged_in(target, portal)? {
            return Ok(undo);
        }
        let out = self
            .runner
            .run(
                &self
                    .node_cmd(target, portal)
                    .arg("--login")
                    .ok_codes([0, ISCSI_ERR_SESS_EXISTS]),
            )
            .await?;
        if out.code() == Some(0) {
            tracing::info!(target = %target, portal = %portal, "iSCSI login");
            undo.change = Change::Changed;
        }
        Ok(undo)
    }

    /// Logs in to every portal of `target` that has no session yet. When none has and the
    /// node database holds exactly these portals' records, one `iscsiadm -m node -T IQN
    /// --login` logs in to all of them (iscsiadm sends the logins together and waits for
    /// all); otherwise one login per portal. Which logins happened is read back from sysfs,
    /// so a partial failure still reports the sessions it made.
    async fn login_all(&self, target: &IscsiTarget) -> (Vec<LoginUndo>, Result<()>) {
        let logged_in = |portal: &Portal| self.is_logged_in(&target.iqn, portal);
        let mut before = Vec::new();
        for (p, _) in &target.portals {
            match logged_in(p) {
                Ok(b) => before.push(b),
                Err(e) => return (Vec::new(), Err(e)),
            }
        }
        let portals: Vec<&Portal> = target.portals.iter().map(|(p, _)| p).collect();
        let result = if before.iter().all(|b| *b) {
            Ok(())
        } else if before.iter().all(|b| !*b) && self.records_are_exactly(&target.iqn, &portals) {
            self.runner
                .run(
                    &Command::new("iscsiadm")
                        .args(["-m", "node", "-T", target.iqn.as_str(), "--login"])
                        .ok_codes([0, ISCSI_ERR_SESS_EXISTS]),
                )
                .await
                .map(|_| ())
        } else {
            let mut r = Ok(());
            for (p, was) in portals.iter().zip(&before) {
                if *was {
                    continue;
                }
                if let Err(e) = self.login(&target.iqn, p).await {
                    r = Err(e);
                    break;
                }
            }
            r
        };
        let mut logins = Vec::new();
        for (p, was) in portals.iter().zip(&before) {
            // A session that appeared during this call is this call's (iscsiadm refuses a
            // second login to a portal, so no one else's can have appeared in between).
            let now = logged_in(p).unwrap_or(true);
            let change = Change::from(!*was && now);
            if change.is_changed() {
                tracing::info!(target = %target.iqn, portal = %p, "iSCSI login");
            }
            logins.push(LoginUndo {
                target: target.iqn.clone(),
                portal: (*p).clone(),
                change,
            });
        }
        (logins, result)
    }

    /// Logs out of `target` at `portal` if kvmstor logged in and no SCSI device of the
    /// session remains (the caller removes its LUN's devices first). Returns
    /// [`Error::InUse`] naming the remaining devices otherwise.
    pub async fn undo_login(&self, undo: &LoginUndo) -> Result<Change> {
        if !undo.change.is_changed() {
            return Ok(Change::Unchanged);
        }
        if !self.logout_allowed(undo)? {
            return Ok(Change::Unchanged);
        }
        self.runner
            .run(
                &self
                    .node_cmd(&undo.target, &undo.portal)
                    .arg("--logout")
                    .ok_codes([0, ISCSI_ERR_NO_OBJS_FOUND]),
            )
            .await?;
        tracing::info!(target = %undo.target, portal = %undo.portal, "iSCSI logout");
        Ok(Change::Changed)
    }

    /// Whether the session of `undo` exists and may be logged out: [`Error::InUse`] with
    /// the devices still on it, `false` when it is gone already.
    fn logout_allowed(&self, undo: &LoginUndo) -> Result<bool> {
        let sessions: Vec<IscsiSessionInfo> = self
            .target_sessions(&undo.target)?
            .into_iter()
            .filter(|s| s.portal.as_ref() == Some(&undo.portal))
            .collect();
        let in_use: Vec<String> = sessions
            .iter()
            .flat_map(|s| s.luns.iter().cloned())
            .map(|(hctl, disk)| disk.unwrap_or_else(|| hctl.to_string()))
            .collect();
        if !in_use.is_empty() {
            return Err(Error::InUse {
                resource: format!("{} at {}", undo.target, undo.portal),
                users: in_use,
            });
        }
        Ok(!sessions.is_empty())
    }

    /// Prepares a record on every portal of `target` (all portals at once) and logs in to
    /// each. A failure stops the call after undoing what this call did.
    pub async fn connect(
        &self,
        target: &IscsiTarget,
        settings: &NodeSettings,
        chap: Option<&Chap>,
    ) -> Result<ConnectUndo> {
        settings.check()?;
        let mut undo = ConnectUndo {
            nodes: Vec::new(),
            logins: Vec::new(),
            change: Change::Unchanged,
        };
        let nodes =
            futures_util::future::join_all(target.portals.iter().map(|(portal, tpgt)| {
                self.ensure_node(&target.iqn, portal, *tpgt, settings, chap)
            }))
            .await;
        let mut first_err = None;
        for n in nodes {
            match n {
                Ok(n) => undo.nodes.push(n),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if first_err.is_none() {
            let (logins, result) = self.login_all(target).await;
            undo.logins = logins;
            if let Err(e) = result {
                first_err = Some(e);
            }
        }
        if let Some(e) = first_err {
            // Unwinding is best effort; the first error is the one reported.
            let _ = self.disconnect(&undo).await;
            return Err(e);
        }
        undo.change = Change::from(
            undo.nodes.iter().any(|n| n.change.is_changed())
                || undo.logins.iter().any(|l| l.change.is_changed()),
        );
        Ok(undo)
    }

    /// Reverts [`Iscsi::connect`] in reverse order: logouts, then record removal or
    /// restoration. A session that still has SCSI devices (another LUN of the target is in
    /// use) is kept, and so is its node record; both are listed in
    /// [`Disconnected::kept`].
    ///
    /// When the sessions to end are every session of the target and the node database
    /// holds exactly the records of `undo`, one `iscsiadm -m node -T IQN --logout` ends them
    /// all, and one `-o delete` removes the records this call's connect created; otherwise
    /// each portal is handled on its own.
    pub async fn disconnect(&self, undo: &ConnectUndo) -> Result<Disconnected> {
        let mut out = Disconnected {
            change: Change::Unchanged,
            kept: Vec::new(),
        };
        let mut logout = Vec::new();
        for l in undo.logins.iter().rev() {
            if !l.change.is_changed() {
                continue;
            }
            match self.logout_allowed(l) {
                Ok(true) => logout.push(l),
                Ok(false) => {}
                Err(Error::InUse { users, .. }) => {
                    tracing::info!(target = %l.target, portal = %l.portal, ?users, "session kept: still in use");
                    out.kept.push((l.portal.clone(), users));
                }
                Err(e) => return Err(e),
            }
        }
        if let Some(target) =
            self.whole_target(undo, logout.iter().map(|l| (&l.target, &l.portal)))?
        {
            self.runner
                .run(
                    &Command::new("iscsiadm")
                        .args(["-m", "node", "-T", target.as_str(), "--logout"])
                        .ok_codes([0, ISCSI_ERR_NO_OBJS_FOUND]),
                )
                .await?;
            tracing::info!(target = %target, sessions = logout.len(), "iSCSI logout");
            out.change = Change::Changed;
        } else {
            for l in &logout {
                out.change = out.change.and(self.undo_login(l).await?);
            }
        }
        let nodes: Vec<&NodeUndo> = undo
            .nodes
            .iter()
            .rev()
            .filter(|n| !out.kept.iter().any(|(p, _)| p == &n.portal))
            .collect();
        let created: Vec<&NodeUndo> = nodes
            .iter()
            .copied()
            .filter(|n| n.created && n.change.is_changed())
            .collect();
        let whole = self.whole_target(undo, created.iter().map(|n| (&n.target, &n.portal)))?;
        for n in nodes {
            if whole.is_some() && created.iter().any(|c| std::ptr::eq(*c, n)) {
                continue;
            }
            out.change = out.change.and(self.undo_node(n).await?);
        }
        if let Some(target) = whole {
            for n in &created {
                self.refuse_if_logged_in(&n.target, &n.portal)?;
            }
            let res = self
                .runner
                .run(
                    &Command::new("iscsiadm")
                        .args(["-m", "node", "-T", target.as_str(), "-o", "delete"])
                        .ok_codes([0, ISCSI_ERR_NO_OBJS_FOUND]),
                )
                .await?;
            if res.code() == Some(0) {
                tracing::info!(target = %target, records = created.len(), "deleted iSCSI node records");
                out.change = Change::Changed;
            }
        }
        Ok(out)
    }

    /// The target when `items` name more than one portal, all of one target, and cover
    /// every record of that target in the node database and every session of it in sysfs:
    /// then a target-wide iscsiadm call touches exactly these portals.
    fn whole_target<'a>(
        &self,
        undo: &ConnectUndo,
        items: impl Iterator<Item = (&'a Iqn, &'a Portal)>,
    ) -> Result<Option<Iqn>> {
        let items: Vec<(&Iqn, &Portal)> = items.collect();
        let Some((target, _)) = items.first() else {
            return Ok(None);
        };
        if items.len() < 2 || items.iter().any(|(t, _)| t != target) {
            return Ok(None);
        }
        let portals: Vec<&Portal> = items.iter().map(|(_, p)| *p).collect();
        let known: Vec<&Portal> = undo.nodes.iter().map(|n| &n.portal).collect();
        if !portals.iter().all(|p| known.contains(p)) || !self.records_are_exactly(target, &portals)
        {
            return Ok(None);
        }
        let sessions_ours = self
            .target_sessions(target)?
            .iter()
            .all(|s| s.portal.as_ref().is_some_and(|p| portals.contains(&p)));
        Ok(sessions_ours.then(|| (*target).clone()))
    }

    /// Scans LUN `lun` on every logged-in session of `target` and waits until each session
    /// shows it as a SCSI disk whose VPD serial is `serial`, at most `timeout` (rescanning
    /// every 2 s). A disk at that address with another serial is stale kernel data or a
    /// wrong LUN id: [`Error::DeviceMismatch`], and it is not used. At the deadline, the
    /// paths found so far are returned if there is at least one.
    pub async fn attach_lun(
        &self,
        target: &Iqn,
        lun: u64,
        serial: &LunSerial,
        timeout: Duration,
    ) -> Result<LunPaths> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut next_scan = tokio::time::Instant::now();
        loop {
            let now = tokio::time::Instant::now();
            if now >= next_scan {
                self.scan_lun(target, lun)?;
                next_scan = now + Duration::from_secs(2);
            }
            let sessions: Vec<IscsiSessionInfo> = self
                .target_sessions(target)?
                .into_iter()
                .filter(IscsiSessionInfo::is_logged_in)
                .collect();
            let mut paths = Vec::new();
            for s in &sessions {
                for (hctl, disk) in &s.luns {
                    let (true, Some(disk)) = (hctl.lun == lun, disk) else {
                        continue;
                    };
                    match self.sys.scsi_serial(disk)? {
                        Some(found) if found == serial.as_str() => {
                            paths.push((*hctl, disk.clone()))
                        }
                        Some(found) => {
                            return Err(Error::DeviceMismatch {
                                device: disk.clone(),
                                expected: format!("SCSI disk with serial {serial}"),
                                found,
                            })
                        }
                        None => {}
                    }
                }
            }
            if !sessions.is_empty() && paths.len() >= sessions.len() {
                return Ok(LunPaths {
                    paths,
                    sessions: sessions.len(),
                });
            }
            if now >= deadline {
                if paths.is_empty() {
                    return Err(Error::WaitTimeout {
                        what: format!("LUN {lun} of {target} with serial {serial}"),
                        after: timeout,
                    });
                }
                tracing::warn!(target = %target, lun, found = paths.len(), sessions = sessions.len(), "not every session shows the LUN");
                return Ok(LunPaths {
                    paths,
                    sessions: sessions.len(),
                });
            }
            // Short: the disks appear within milliseconds of the scan (sd probes
            // asynchronously), and every poll is a few sysfs reads.
            tokio::time::sleep_until(deadline.min(now + Duration::from_millis(50))).await;
        }
    }

    /// The sessions of `target` from sysfs.
    pub fn target_sessions(&self, target: &Iqn) -> Result<Vec<IscsiSessionInfo>> {
        Ok(self
            .sys
            .iscsi_sessions()?
            .into_iter()
            .filter(|s| &s.target == target)
            .collect())
    }

    /// Scans LUN `lun` on every logged-in session of `target` (`"C T L"` to the session's
    /// SCSI host; `- - L` until the session has a target directory), all sessions at once
    /// (a scan write returns when that host's scan is done). Returns the hosts scanned.
    /// Scanning is idempotent in the kernel: a present LUN is not added twice.
    pub fn scan_lun(&self, target: &Iqn, lun: u64) -> Result<Vec<u32>> {
        let mut scans = Vec::new();
        for s in self.target_sessions(target)? {
            if !s.is_logged_in() {
                continue;
            }
            let Some(host) = s.host else { continue };
            let (c, t) = match s.luns.first() {
                Some((h, _)) => (Some(h.channel), Some(h.target)),
                None => (None, None),
            };
            scans.push((host, c, t));
        }
        let sys = &self.sys;
        std::thread::scope(|scope| {
            let running: Vec<_> = scans
                .iter()
                .map(|&(host, c, t)| scope.spawn(move || sys.scsi_scan(host, c, t, Some(lun))))
                .collect();
            running.into_iter().try_for_each(|r| {
                r.join().unwrap_or_else(|_| {
                    Err(Error::io(
                        IoOp::Write,
                        sys.path("class/scsi_host"),
                        std::io::Error::other("scan thread panicked"),
                    ))
                })
            })
        })?;
        Ok(scans.into_iter().map(|(h, _, _)| h).collect())
    }
}

/// Record files may have been created 0600 by iscsiadm or 0644 by an old one; before
/// secrets are written the file must not be readable by others whatever it was before.
fn set_mode_0600(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::io(IoOp::SetPermissions, path, e))
}

/// Whether `name`, an entry of a target's node database directory, is the record of
/// `portal`: `ADDR,PORT` (old style) or `ADDR,PORT,TPGT` (new style, a directory).
fn record_of(name: &str, portal: &Portal) -> bool {
    let prefix = format!("{},{}", portal.address, portal.port);
    name == prefix
        || name
            .strip_prefix(&prefix)
            .is_some_and(|r| r.starts_with(','))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_lines_replace_in_place_and_insert_before_end() {
        let text = "# BEGIN RECORD 2.1.8\nnode.name = iqn.x\nnode.session.auth.authmethod = None\n# END RECORD\n";
        let out = set_record_lines(
            text,
            &[
                ("node.session.auth.authmethod", "CHAP".into()),
                ("node.session.auth.username", "u".into()),
            ],
        );
        assert_eq!(
            out,
            "# BEGIN RECORD 2.1.8\nnode.name = iqn.x\nnode.session.auth.authmethod = CHAP\nnode.session.auth.username = u\n# END RECORD\n"
        );
        assert_eq!(record_value(&out, "node.session.auth.username"), Some("u"));
    }

    #[test]
    fn sendtargets_refuses_garbage() {
        assert!(parse_sendtargets("10.0.0.1:3260 iqn.x").is_err());
        assert!(parse_sendtargets("10.0.0.1:3260,1 notaniqn").is_err());
        assert!(parse_sendtargets("\n").unwrap().is_empty());
    }
}
