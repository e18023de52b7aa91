//! NFS mounts: a validated option model, server sets, and rendering to a `mount -o` string,
//! an `/etc/fstab` line and an autofs map entry.
//!
//! Options follow `nfs(5)` of nfs-utils. Only the options modelled here are accepted; an
//! unknown option in [`NfsOptions::parse`] is refused, so nothing unexpected reaches a
//! configuration file.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result, ValueKind};
use crate::files::check_config_path;
use crate::ids::HostName;
use crate::runner::Command;

/// NFS protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NfsVersion {
    /// NFSv3.
    V3,
    /// NFSv4.0.
    V4_0,
    /// NFSv4.1 (sessions, pNFS, trunking).
    V4_1,
    /// NFSv4.2.
    V4_2,
}

impl NfsVersion {
    /// The `vers=` value.
    pub fn as_str(self) -> &'static str {
        match self {
            NfsVersion::V3 => "3",
            NfsVersion::V4_0 => "4.0",
            NfsVersion::V4_1 => "4.1",
            NfsVersion::V4_2 => "4.2",
        }
    }

    fn parse(v: &str) -> Result<Self> {
        match v {
            "3" => Ok(NfsVersion::V3),
            "4.0" => Ok(NfsVersion::V4_0),
            "4.1" => Ok(NfsVersion::V4_1),
            "4.2" => Ok(NfsVersion::V4_2),
            _ => Err(Error::invalid(
                ValueKind::NfsOption,
                format!("vers={v}"),
                "version must be 3, 4.0, 4.1 or 4.2",
            )),
        }
    }

    /// True for 4.1 and later (sessions: `max_connect`, `trunkdiscovery`).
    pub fn has_sessions(self) -> bool {
        self >= NfsVersion::V4_1
    }
}

/// Transport protocol (`proto=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NfsProto {
    /// TCP.
    Tcp,
    /// TCP over IPv6 only.
    Tcp6,
    /// RDMA.
    Rdma,
    /// RDMA over IPv6 only.
    Rdma6,
}

impl NfsProto {
    fn as_str(self) -> &'static str {
        match self {
            NfsProto::Tcp => "tcp",
            NfsProto::Tcp6 => "tcp6",
            NfsProto::Rdma => "rdma",
            NfsProto::Rdma6 => "rdma6",
        }
    }
}

/// Security flavour (`sec=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NfsSec {
    /// AUTH_SYS (UIDs and GIDs).
    Sys,
    /// Kerberos authentication.
    Krb5,
    /// Kerberos with integrity.
    Krb5i,
    /// Kerberos with privacy (encryption).
    Krb5p,
}

impl NfsSec {
    fn as_str(self) -> &'static str {
        match self {
            NfsSec::Sys => "sys",
            NfsSec::Krb5 => "krb5",
            NfsSec::Krb5i => "krb5i",
            NfsSec::Krb5p => "krb5p",
        }
    }
}

/// Transport security (`xprtsec=`, RPC-with-TLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum XprtSec {
    /// No TLS.
    None,
    /// TLS, server authenticated.
    Tls,
    /// Mutual TLS.
    Mtls,
}

impl XprtSec {
    fn as_str(self) -> &'static str {
        match self {
            XprtSec::None => "none",
            XprtSec::Tls => "tls",
            XprtSec::Mtls => "mtls",
        }
    }
}

/// What happens when the server does not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Recovery {
    /// Retry forever (`hard`, the default and the safe choice for VM images).
    Hard,
    /// Fail the I/O after `retrans` retries (`soft`).
    Soft,
}

/// Validated NFS mount options.
///
/// ```
/// use host_storage::nfs::{NfsOptions, NfsVersion, Recovery};
/// let o = NfsOptions::new(NfsVersion::V4_1)
///     .nconnect(4)
///     .recovery(Recovery::Hard)
///     .timeo(600)
///     .netdev(true);
/// o.validate()?;
/// assert_eq!(o.mount_options(), "vers=4.1,nconnect=4,hard,timeo=600");
/// assert_eq!(o.fstab_options(), "vers=4.1,nconnect=4,hard,timeo=600,_netdev");
/// assert!(NfsOptions::new(NfsVersion::V3).nconnect(17).validate().is_err());
/// assert_eq!(NfsOptions::parse("vers=4.2,nconnect=8,_netdev")?.fstab_options(), "vers=4.2,nconnect=8,_netdev");
/// assert!(NfsOptions::parse("vers=4.1,nolock,bogus").is_err());
/// # Ok::<(), host_storage::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NfsOptions {
    version: NfsVersion,
    proto: Option<NfsProto>,
    nconnect: Option<u8>,
    max_connect: Option<u8>,
    trunkdiscovery: Option<bool>,
    sec: Option<NfsSec>,
    xprtsec: Option<XprtSec>,
    recovery: Option<Recovery>,
    timeo: Option<u32>,
    retrans: Option<u32>,
    rsize: Option<u32>,
    wsize: Option<u32>,
    read_only: bool,
    noatime: bool,
    nolock: bool,
    nosharecache: bool,
    netdev: bool,
}

impl NfsOptions {
    /// Options with an explicit version and nothing else (kernel defaults apply).
    pub fn new(version: NfsVersion) -> Self {
        NfsOptions {
            version,
            proto: None,
            nconnect: None,
            max_connect: None,
            trunkdiscovery: None,
            sec: None,
            xprtsec: None,
            recovery: None,
            timeo: None,
            retrans: None,
            rsize: None,
            wsize: None,
            read_only: false,
            noatime: false,
            nolock: false,
            nosharecache: false,
            netdev: false,
        }
    }

    /// Sets `proto=`.
    pub fn proto(mut self, p: NfsProto) -> Self {
        self.proto = Some(p);
        self
    }
    /// Sets `nconnect=` (1 to 16 TCP connections to one server address).
    pub fn nconnect(mut self, n: u8) -> Self {
        self.nconnect = Some(n);
        self
    }
    /// Sets `max_connect=` (1 to 16 transports to different addresses; 4.1+).
    pub fn max_connect(mut self, n: u8) -> Self {
        self.max_connect = Some(n);
        self
    }
    /// Sets `trunkdiscovery` / `notrunkdiscovery` (4.1+).
    pub fn trunkdiscovery(mut self, on: bool) -> Self {
        self.trunkdiscovery = Some(on);
        self
    }
    /// Sets `sec=`.
    pub fn sec(mut self, s: NfsSec) -> Self {
        self.sec = Some(s);
        self
    }
    /// Sets `xprtsec=`.
    pub fn xprtsec(mut self, x: XprtSec) -> Self {
        self.xprtsec = Some(x);
        self
    }
    /// Sets `hard` or `soft`.
    pub fn recovery(mut self, r: Recovery) -> Self {
        self.recovery = Some(r);
        self
    }
    /// Sets `timeo=` in tenths of a second.
    pub fn timeo(mut self, deciseconds: u32) -> Self {
        self.timeo = Some(deciseconds);
        self
    }
    /// Sets `retrans=`.
    pub fn retrans(mut self, n: u32) -> Self {
        self.retrans = Some(n);
        self
    }
    /// Sets `rsize=` in bytes (multiple of 1024, at most 1 MiB).
    pub fn rsize(mut self, bytes: u32) -> Self {
        self.rsize = Some(bytes);
        self
    }
    /// Sets `wsize=` in bytes (multiple of 1024, at most 1 MiB).
    pub fn wsize(mut self, bytes: u32) -> Self {
        self.wsize = Some(bytes);
        self
    }
    /// Mounts read-only (`ro`).
    pub fn read_only(mut self, on: bool) -> Self {
        self.read_only = on;
        self
    }
    /// Sets `noatime`.
    pub fn noatime(mut self, on: bool) -> Self {
        self.noatime = on;
        self
    }
    /// Sets `nolock` (NFSv3 without NLM).
    pub fn nolock(mut self, on: bool) -> Self {
        self.nolock = on;
        self
    }
    /// Sets `nosharecache`.
    pub fn nosharecache(mut self, on: bool) -> Self {
        self.nosharecache = on;
        self
    }
    /// Adds `_netdev` to fstab lines (wait for the network at boot).
    pub fn netdev(mut self, on: bool) -> Self {
        self.netdev = on;
        self
    }

    /// The version.
    pub fn version(&self) -> NfsVersion {
        self.version
    }

    /// The `max_connect` value, if set.
    pub fn get_max_connect(&self) -> Option<u8> {
        self.max_connect
    }

    /// Checks ranges and combinations.
    pub fn validate(&self) -> Result<()> {
        let bad = |opt: String, reason| Err(Error::invalid(ValueKind::NfsOption, opt, reason));
        if let Some(n) = self.nconnect {
            if !(1..=16).contains(&n) {
                return bad(format!("nconnect={n}"), "nconnect must be 1 to 16");
            }
        }
        if let Some(n) = self.max_connect {
            if !(1..=16).contains(&n) {
                return bad(format!("max_connect={n}"), "max_connect must be 1 to 16");
            }
            if !self.version.has_sessions() {
                return Err(Error::Conflict {
                    first: format!("max_connect={n}"),
                    second: format!("vers={}", self.version.as_str()),
                    reason: "session trunking needs NFS 4.1 or later",
                });
            }
        }
        if self.trunkdiscovery == Some(true) && !self.version.has_sessions() {
            return Err(Error::Conflict {
                first: "trunkdiscovery".into(),
                second: format!("vers={}", self.version.as_str()),
                reason: "session trunking needs NFS 4.1 or later",
            });
        }
        if self.nolock && self.version != NfsVersion::V3 {
            return Err(Error::Conflict {
                first: "nolock".into(),
                second: format!("vers={}", self.version.as_str()),
                reason: "nolock applies to NFSv3 only",
            });
        }
        for (name, v) in [("rsize", self.rsize), ("wsize", self.wsize)] {
            if let Some(v) = v {
                if !(1024..=1_048_576).contains(&v) || v % 1024 != 0 {
                    return bad(
                        format!("{name}={v}"),
                        "must be a multiple of 1024 from 1024 to 1048576",
                    );
                }
            }
        }
        if self.timeo == Some(0) {
            return bad("timeo=0".into(), "timeo must be at least 1");
        }
        if self.retrans.is_some_and(|r| r > 100) {
            return bad(
                format!("retrans={}", self.retrans.unwrap_or(0)),
                "retrans must be 0 to 100",
            );
        }
        Ok(())
    }

    fn push_all(&self, out: &mut Vec<String>) {
        out.push(format!("vers={}", self.version.as_str()));
        if self.read_only {
            out.push("ro".into());
        }
        if let Some(p) = self.proto {
            out.push(format!("proto={}", p.as_str()));
        }
        if let Some(n) = self.nconnect {
            out.push(format!("nconnect={n}"));
        }
        if let Some(n) = self.max_connect {
            out.push(format!("max_connect={n}"));
        }
        match self.trunkdiscovery {
            Some(true) => out.push("trunkdiscovery".into()),
            Some(false) => out.push("notrunkdiscovery".into()),
            None => {}
        }
        if let Some(s) = self.sec {
            out.push(format!("sec={}", s.as_str()));
        }
        if let Some(x) = self.xprtsec {
            out.push(format!("xprtsec={}", x.as_str()));
        }
        match self.recovery {
            Some(Recovery::Hard) => out.push("hard".into()),
            Some(Recovery::Soft) => out.push("soft".into()),
            None => {}
        }
        if let Some(t) = self.timeo {
            out.push(format!("timeo={t}"));
        }
        if let Some(r) = self.retrans {
            out.push(format!("retrans={r}"));
        }
        if let Some(r) = self.rsize {
            out.push(format!("rsize={r}"));
        }
        if let Some(w) = self.wsize {
            out.push(format!("wsize={w}"));
        }
        if self.noatime {
            out.push("noatime".into());
        }
        if self.nolock {
            out.push("nolock".into());
        }
        if self.nosharecache {
            out.push("nosharecache".into());
        }
    }

    /// The `-o` string for `mount` and autofs (no `_netdev`).
    pub fn mount_options(&self) -> String {
        let mut v = Vec::new();
        self.push_all(&mut v);
        v.join(",")
    }

    /// The options field of an fstab line (with `_netdev` when asked).
    pub fn fstab_options(&self) -> String {
        let mut v = Vec::new();
        self.push_all(&mut v);
        if self.netdev {
            v.push("_netdev".into());
        }
        v.join(",")
    }

    /// Parses an option string; `vers=` (or `nfsvers=`) is required, unknown options and
    /// bad values are refused, and the result is validated.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |opt: &str, reason| Error::invalid(ValueKind::NfsOption, opt, reason);
        let mut version = None;
        let mut o = NfsOptions::new(NfsVersion::V4_1);
        for opt in s.split(',') {
            let (k, v) = match opt.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (opt, None),
            };
            let num = |v: Option<&str>| -> Result<u32> {
                v.and_then(|v| v.parse().ok())
                    .ok_or_else(|| bad(opt, "expects a number"))
            };
            let small = |v: Option<&str>| -> Result<u8> {
                v.and_then(|v| v.parse().ok())
                    .ok_or_else(|| bad(opt, "expects a number 1 to 16"))
            };
            match (k, v) {
                ("vers" | "nfsvers", Some(v)) => version = Some(NfsVersion::parse(v)?),
                ("proto", Some("tcp")) => o.proto = Some(NfsProto::Tcp),
                ("proto", Some("tcp6")) => o.proto = Some(NfsProto::Tcp6),
                ("proto", Some("rdma")) => o.proto = Some(NfsProto::Rdma),
                ("proto", Some("rdma6")) => o.proto = Some(NfsProto::Rdma6),
                ("nconnect", v) => o.nconnect = Some(small(v)?),
                ("max_connect", v) => o.max_connect = Some(small(v)?),
                ("trunkdiscovery", None) => o.trunkdiscovery = Some(true),
                ("notrunkdiscovery", None) => o.trunkdiscovery = Some(false),
                ("sec", Some("sys")) => o.sec = Some(NfsSec::Sys),
                ("sec", Some("krb5")) => o.sec = Some(NfsSec::Krb5),
                ("sec", Some("krb5i")) => o.sec = Some(NfsSec::Krb5i),
                ("sec", Some("krb5p")) => o.sec = Some(NfsSec::Krb5p),
                ("xprtsec", Some("none")) => o.xprtsec = Some(XprtSec::None),
                ("xprtsec", Some("tls")) => o.xprtsec = Some(XprtSec::Tls),
                ("xprtsec", Some("mtls")) => o.xprtsec = Some(XprtSec::Mtls),
                ("hard", None) => o.recovery = Some(Recovery::Hard),
                ("soft", None) => o.recovery = Some(Recovery::Soft),
                ("timeo", v) => o.timeo = Some(num(v)?),
                ("retrans", v) => o.retrans = Some(num(v)?),
                ("rsize", v) => o.rsize = Some(num(v)?),
                ("wsize", v) => o.wsize = Some(num(v)?),
                ("ro", None) => o.read_only = true,
                ("rw", None) => o.read_only = false,
                ("noatime", None) => o.noatime = true,
                ("nolock", None) => o.nolock = true,
                ("nosharecache", None) => o.nosharecache = true,
                ("_netdev", None) => o.netdev = true,
                _ => return Err(bad(opt, "unknown or malformed NFS option")),
            }
        }
        o.version = version.ok_or_else(|| bad(s, "vers= is required"))?;
        o.validate()?;
        Ok(o)
    }
}

/// One replica server with its autofs weight (lower weight = preferred).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    /// The server.
    pub host: HostName,
    /// Its weight, if any.
    pub weight: Option<u8>,
}

/// The server addresses of an NFS mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NfsServers {
    /// One server address.
    One(HostName),
    /// Replicated read-only copies; autofs picks one (by proximity, then weight). Only
    /// autofs can express this: fstab and mount-now refuse it.
    Replicated(Vec<Replica>),
    /// Several addresses of one NFS 4.1+ server (session trunking). The first is mounted;
    /// `max_connect` is raised to the number of addresses if lower, and the others are
    /// reported by [`NfsMount::trunk_addresses`] to be added as trunks (or found by
    /// `trunkdiscovery`).
    Trunked(Vec<HostName>),
}

/// A complete NFS mount: servers, export path, mount point and options.
///
/// ```
/// use host_storage::nfs::{NfsMount, NfsOptions, NfsServers, NfsVersion};
/// use host_storage::HostName;
/// let m = NfsMount::new(
///     NfsServers::One(HostName::parse("10.0.0.5")?),
///     "/vm_datastore",
///     "/mnt/vmstore",
///     NfsOptions::new(NfsVersion::V4_1).nconnect(4).netdev(true),
/// )?;
/// assert_eq!(m.fstab_line(), "10.0.0.5:/vm_datastore /mnt/vmstore nfs vers=4.1,nconnect=4,_netdev 0 0");
/// assert_eq!(m.autofs_entry(), "/mnt/vmstore -fstype=nfs,vers=4.1,nconnect=4 10.0.0.5:/vm_datastore");
/// assert_eq!(
///     m.mount_command()?.to_string(),
///     "mount -t nfs -o vers=4.1,nconnect=4 10.0.0.5:/vm_datastore /mnt/vmstore"
/// );
/// # Ok::<(), host_storage::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NfsMount {
    servers: NfsServers,
    export: String,
    target: PathBuf,
    options: NfsOptions,
}

impl NfsMount {
    /// Validates a mount: export and target are absolute paths safe for config lines,
    /// server sets are non-empty and fit the version, options are valid.
    pub fn new(
        servers: NfsServers,
        export: impl Into<String>,
        target: impl Into<PathBuf>,
        mut options: NfsOptions,
    ) -> Result<Self> {
        let export = export.into();
        let target = target.into();
        check_config_path(Path::new(&export))?;
        check_config_path(&target)?;
        match &servers {
            NfsServers::One(_) => {}
            NfsServers::Replicated(r) => {
                if r.is_empty() {
                    return Err(Error::invalid(
                        ValueKind::HostName,
                        "",
                        "replicated set needs at least one server",
                    ));
                }
            }
            NfsServers::Trunked(hosts) => {
                if hosts.is_empty() {
                    return Err(Error::invalid(
                        ValueKind::HostName,
                        "",
                        "trunked set needs at least one address",
                    ));
                }
                if !options.version.has_sessions() {
                    return Err(Error::Conflict {
                        first: "trunked servers".into(),
                        second: format!("vers={}", options.version.as_str()),
                        reason: "session trunking needs NFS 4.1 or later",
                    });
                }
                let n = u8::try_from(hosts.len()).unwrap_or(u8::MAX);
                if options.max_connect.is_none_or(|m| m < n) {
                    options.max_connect = Some(n);
                }
            }
        }
        options.validate()?;
        Ok(NfsMount {
            servers,
            export,
            target,
            options,
        })
    }

    /// The mount point.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// The options.
    pub fn options(&self) -> &NfsOptions {
        &self.options
    }

    /// The servers.
    pub fn servers(&self) -> &NfsServers {
        &self.servers
    }

    /// The export path on the server.
    pub fn export(&self) -> &str {
        &self.export
    }

    /// `server:/export` for fstab and mount-now; refused for replicated sets.
    pub fn source(&self) -> Result<String> {
        match &self.servers {
            NfsServers::One(h) => Ok(format!("{}:{}", h.for_address(), self.export)),
            NfsServers::Trunked(hosts) => Ok(format!("{}:{}", hosts[0].for_address(), self.export)),
            NfsServers::Replicated(_) => Err(Error::Conflict {
                first: "replicated servers".into(),
                second: "fstab or mount".into(),
                reason: "only autofs can choose among replicas",
            }),
        }
    }

    /// The addresses beyond the first of a trunked set.
    pub fn trunk_addresses(&self) -> &[HostName] {
        match &self.servers {
            NfsServers::Trunked(h) => &h[1..],
            _ => &[],
        }
    }

    /// The location field of an autofs map entry (`h1(5),h2(6):/export` for replicas).
    pub fn autofs_location(&self) -> String {
        match &self.servers {
            NfsServers::Replicated(r) => {
                let hosts: Vec<String> = r
                    .iter()
                    .map(|rep| match rep.weight {
                        Some(w) => format!("{}({w})", rep.host.for_address()),
                        None => rep.host.for_address(),
                    })
                    .collect();
                format!("{}:{}", hosts.join(","), self.export)
            }
            NfsServers::One(h) => format!("{}:{}", h.for_address(), self.export),
            NfsServers::Trunked(h) => format!("{}:{}", h[0].for_address(), self.export),
        }
    }

    /// The fstab line (`source target nfs options 0 0`); for replicated sets use autofs.
    pub fn fstab_line(&self) -> String {
        format!(
            "{} {} nfs {} 0 0",
            self.source().unwrap_or_else(|_| self.autofs_location()),
            self.target.display(),
            self.options.fstab_options()
        )
    }

    /// The direct-map entry: `target -fstype=nfs,options location`.
    pub fn autofs_entry(&self) -> String {
        format!(
            "{} -fstype=nfs,{} {}",
            self.target.display(),
            self.options.mount_options(),
            self.autofs_location()
        )
    }

    /// `mount -t nfs -o options source target`.
    pub fn mount_command(&self) -> Result<Command> {
        Ok(Command::new("mount").args([
            "-t".to_owned(),
            "nfs".to_owned(),
            "-o".to_owned(),
            self.options.mount_options(),
            self.source()?,
            self.target.display().to_string(),
        ]))
    }
}

impl fmt::Display for NfsMount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {}", self.autofs_location(), self.target.display())
    }
}
