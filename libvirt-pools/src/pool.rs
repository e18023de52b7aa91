//! Typed storage pool definitions, rendered to and parsed from libvirt's pool XML.

use std::fmt;

use crate::error::{Error, XmlProblem};
use crate::names::PoolName;
use crate::xml::Element;

const FS_NAMESPACE: &str = "http://libvirt.org/schemas/storagepool/fs/1.0";
const ISCSI_DEFAULT_PORT: u16 = 3260;

/// libvirt storage pool types this crate models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PoolType {
    /// A directory on a mounted file system.
    Dir,
    /// A file system on a block device, mounted by libvirt.
    Fs,
    /// A network file system (NFS, CIFS), mounted by libvirt.
    Netfs,
    /// An LVM volume group.
    Logical,
    /// A partitioned block device.
    Disk,
    /// iSCSI LUNs through the kernel initiator (iscsiadm).
    Iscsi,
    /// iSCSI LUNs through libiscsi inside QEMU; no host block devices.
    IscsiDirect,
    /// All dm-multipath maps of the host (`/dev/mapper`).
    Mpath,
    /// SCSI LUNs of a host adapter (Fibre Channel `fc_host` or `scsi_host`).
    Scsi,
}

impl PoolType {
    /// The name libvirt uses in `<pool type='…'>`.
    pub fn as_str(self) -> &'static str {
        match self {
            PoolType::Dir => "dir",
            PoolType::Fs => "fs",
            PoolType::Netfs => "netfs",
            PoolType::Logical => "logical",
            PoolType::Disk => "disk",
            PoolType::Iscsi => "iscsi",
            PoolType::IscsiDirect => "iscsi-direct",
            PoolType::Mpath => "mpath",
            PoolType::Scsi => "scsi",
        }
    }

    fn parse(s: &str) -> Option<PoolType> {
        Some(match s {
            "dir" => PoolType::Dir,
            "fs" => PoolType::Fs,
            "netfs" => PoolType::Netfs,
            "logical" => PoolType::Logical,
            "disk" => PoolType::Disk,
            "iscsi" => PoolType::Iscsi,
            "iscsi-direct" => PoolType::IscsiDirect,
            "mpath" => PoolType::Mpath,
            "scsi" => PoolType::Scsi,
            _ => return None,
        })
    }

    /// Whether libvirt can create volumes in a pool of this type (LUN-backed pools only list
    /// what the storage system exports).
    pub fn can_create_volumes(self) -> bool {
        matches!(
            self,
            PoolType::Dir | PoolType::Fs | PoolType::Netfs | PoolType::Logical | PoolType::Disk
        )
    }
}

impl fmt::Display for PoolType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The storage protocol through which a datastore reaches the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Protocol {
    /// Storage already local to the host (a directory, a local disk).
    Local,
    /// NFS (v3 or v4.x).
    Nfs,
    /// SMB/CIFS.
    Smb,
    /// iSCSI LUNs.
    Iscsi,
    /// Fibre Channel LUNs.
    FibreChannel,
    /// NVMe/TCP namespaces (native NVMe multipath, no dm-multipath).
    NvmeTcp,
}

impl Protocol {
    /// The support matrix: the pool types that suit this protocol.
    ///
    /// | protocol | pool types |
    /// |---|---|
    /// | local | dir, fs, logical, disk |
    /// | NFS | netfs (format nfs or auto) |
    /// | SMB | netfs (format cifs) |
    /// | iSCSI | iscsi, iscsi-direct, mpath, fs (cluster fs on the LUN), logical, disk |
    /// | FC | scsi, mpath, fs, logical, disk |
    /// | NVMe/TCP | fs, logical, disk (libvirt has no NVMe pool; native multipath is not dm) |
    pub fn pool_types(self) -> &'static [PoolType] {
        use PoolType::*;
        match self {
            Protocol::Local => &[Dir, Fs, Logical, Disk],
            Protocol::Nfs | Protocol::Smb => &[Netfs],
            Protocol::Iscsi => &[Iscsi, IscsiDirect, Mpath, Fs, Logical, Disk],
            Protocol::FibreChannel => &[Scsi, Mpath, Fs, Logical, Disk],
            Protocol::NvmeTcp => &[Fs, Logical, Disk],
        }
    }

    /// Whether a pool source suits this protocol (the type, and for netfs also the format).
    pub fn suits(self, source: &PoolSource) -> bool {
        if !self.pool_types().contains(&source.pool_type()) {
            return false;
        }
        match (self, source) {
            (Protocol::Nfs, PoolSource::Netfs { format, .. }) => {
                matches!(format, NetfsFormat::Nfs | NetfsFormat::Auto)
            }
            (Protocol::Smb, PoolSource::Netfs { format, .. }) => *format == NetfsFormat::Cifs,
            _ => true,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Local => "local",
            Protocol::Nfs => "nfs",
            Protocol::Smb => "smb",
            Protocol::Iscsi => "iscsi",
            Protocol::FibreChannel => "fc",
            Protocol::NvmeTcp => "nvme-tcp",
        })
    }
}

macro_rules! format_enum {
    ($(#[$doc:meta])* $ty:ident { $($(#[$vdoc:meta])* $var:ident => $s:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $ty {
            $($(#[$vdoc])* $var),+
        }

        impl $ty {
            /// The value libvirt uses in `<format type='…'/>`.
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$var => $s),+ }
            }

            fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some($ty::$var),)+ _ => None }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

format_enum!(
    /// File system of an `fs` pool.
    FsFormat {
        /// Let `mount` probe.
        Auto => "auto",
        /// ext3.
        Ext3 => "ext3",
        /// ext4.
        Ext4 => "ext4",
        /// XFS.
        Xfs => "xfs",
        /// OCFS2 (cluster file system).
        Ocfs2 => "ocfs2",
        /// GFS2 (cluster file system).
        Gfs2 => "gfs2",
        /// Btrfs.
        Btrfs => "btrfs",
    }
);

format_enum!(
    /// Format of a `netfs` pool.
    NetfsFormat {
        /// Let `mount` choose (no `-t`).
        Auto => "auto",
        /// NFS.
        Nfs => "nfs",
        /// SMB/CIFS (libvirt mounts as guest only).
        Cifs => "cifs",
        /// GlusterFS FUSE mount.
        Glusterfs => "glusterfs",
    }
);

format_enum!(
    /// Partition table of a `disk` pool.
    DiskLabel {
        /// GUID partition table.
        Gpt => "gpt",
        /// MS-DOS partition table.
        Dos => "dos",
    }
);

/// How a CHAP secret is referred to: by its usage name or its UUID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// `<secret usage='…'/>`.
    Usage(String),
    /// `<secret uuid='…'/>`.
    Uuid(String),
}

/// CHAP authentication of an iSCSI pool; the secret value lives in a libvirt secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChapAuth {
    /// CHAP user name.
    pub username: String,
    /// The libvirt secret holding the CHAP password.
    pub secret: SecretRef,
}

/// Source of an `iscsi` or `iscsi-direct` pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IscsiSource {
    /// Portal host name or address.
    pub host: String,
    /// Portal port; `None` means 3260.
    pub port: Option<u16>,
    /// Target IQN.
    pub target: String,
    /// Initiator IQN (required for `iscsi-direct`).
    pub initiator: Option<String>,
    /// CHAP authentication.
    pub auth: Option<ChapAuth>,
}

/// Host adapter of a `scsi` pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScsiAdapter {
    /// An existing SCSI host such as `scsi_host1`.
    ScsiHost {
        /// The adapter name.
        name: String,
    },
    /// A Fibre Channel host, identified by WWNN/WWPN (an NPIV vHBA when `parent` is set).
    FcHost {
        /// Parent HBA for NPIV (`scsi_host5`).
        parent: Option<String>,
        /// World wide node name, 16 hex digits.
        wwnn: String,
        /// World wide port name, 16 hex digits.
        wwpn: String,
        /// Whether libvirt manages (creates/destroys) the vHBA.
        managed: Option<bool>,
    },
}

/// The type-specific part of a pool definition.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolSource {
    /// `dir`: nothing but the target directory.
    Dir,
    /// `fs`: a block device with a file system.
    Fs {
        /// Block device path.
        device: String,
        /// File system.
        format: FsFormat,
    },
    /// `netfs`: an NFS export or SMB share.
    Netfs {
        /// Server name or address.
        host: String,
        /// Export path (NFS, absolute) or share name (CIFS, no leading `/`).
        dir: String,
        /// Mount type.
        format: NetfsFormat,
        /// NFS protocol version (`nfsvers=`), e.g. 3 or 4.
        protocol_version: Option<u8>,
        /// Extra mount options (libvirt's `fs:mount_opts` namespace), e.g. `nconnect=8`.
        mount_options: Vec<String>,
    },
    /// `logical`: an LVM volume group.
    Logical {
        /// Volume group name.
        vg: String,
        /// Physical volumes, used by `build`.
        devices: Vec<String>,
    },
    /// `disk`: a whole block device with a partition table.
    Disk {
        /// Block device path.
        device: String,
        /// Partition table.
        label: DiskLabel,
    },
    /// `iscsi`: kernel initiator.
    Iscsi(IscsiSource),
    /// `iscsi-direct`: libiscsi in QEMU.
    IscsiDirect(IscsiSource),
    /// `mpath`: every multipath map of the host.
    Mpath,
    /// `scsi`: LUNs of an HBA.
    Scsi(ScsiAdapter),
}

impl PoolSource {
    /// The pool type of this source.
    pub fn pool_type(&self) -> PoolType {
        match self {
            PoolSource::Dir => PoolType::Dir,
            PoolSource::Fs { .. } => PoolType::Fs,
            PoolSource::Netfs { .. } => PoolType::Netfs,
            PoolSource::Logical { .. } => PoolType::Logical,
            PoolSource::Disk { .. } => PoolType::Disk,
            PoolSource::Iscsi(_) => PoolType::Iscsi,
            PoolSource::IscsiDirect(_) => PoolType::IscsiDirect,
            PoolSource::Mpath => PoolType::Mpath,
            PoolSource::Scsi(_) => PoolType::Scsi,
        }
    }
}

/// Ownership and mode libvirt applies to the target at `build`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permissions {
    /// Octal mode, e.g. `0o711`.
    pub mode: Option<u32>,
    /// Owner uid.
    pub owner: Option<u32>,
    /// Group gid.
    pub group: Option<u32>,
    /// Security label.
    pub label: Option<String>,
}

/// A storage pool definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolDef {
    /// Pool name.
    pub name: PoolName,
    /// Pool UUID; libvirt picks one when `None`.
    pub uuid: Option<String>,
    /// Type-specific source.
    pub source: PoolSource,
    /// Target path (directory or mount point; `/dev/…` for LUN pools; none for iscsi-direct).
    pub target: Option<String>,
    /// Target permissions.
    pub permissions: Option<Permissions>,
}

impl PoolDef {
    /// A definition with the given source and target.
    pub fn new(name: PoolName, source: PoolSource, target: Option<String>) -> Self {
        PoolDef {
            name,
            uuid: None,
            source,
            target,
            permissions: None,
        }
    }

    /// A `dir` pool at `path`.
    pub fn dir(name: PoolName, path: impl Into<String>) -> Self {
        Self::new(name, PoolSource::Dir, Some(path.into()))
    }

    /// An `fs` pool: `device` with file system `format`, mounted at `mountpoint`.
    pub fn fs(
        name: PoolName,
        device: impl Into<String>,
        format: FsFormat,
        mountpoint: impl Into<String>,
    ) -> Self {
        let source = PoolSource::Fs {
            device: device.into(),
            format,
        };
        Self::new(name, source, Some(mountpoint.into()))
    }

    /// A `netfs` NFS pool: `host:export` mounted at `mountpoint`, with NFS `version` if given.
    pub fn nfs(
        name: PoolName,
        host: impl Into<String>,
        export: impl Into<String>,
        version: Option<u8>,
        mountpoint: impl Into<String>,
    ) -> Self {
        let source = PoolSource::Netfs {
            host: host.into(),
            dir: export.into(),
            format: NetfsFormat::Nfs,
            protocol_version: version,
            mount_options: Vec::new(),
        };
        Self::new(name, source, Some(mountpoint.into()))
    }

    /// A `netfs` CIFS pool: `//host/share` mounted at `mountpoint` (guest access only).
    pub fn cifs(
        name: PoolName,
        host: impl Into<String>,
        share: impl Into<String>,
        mountpoint: impl Into<String>,
    ) -> Self {
        let source = PoolSource::Netfs {
            host: host.into(),
            dir: share.into(),
            format: NetfsFormat::Cifs,
            protocol_version: None,
            mount_options: Vec::new(),
        };
        Self::new(name, source, Some(mountpoint.into()))
    }

    /// A `logical` pool over volume group `vg` (target `/dev/<vg>`).
    pub fn logical(name: PoolName, vg: impl Into<String>, devices: Vec<String>) -> Self {
        let vg = vg.into();
        let target = format!("/dev/{vg}");
        Self::new(name, PoolSource::Logical { vg, devices }, Some(target))
    }

    /// A `disk` pool over `device` (target `/dev`).
    pub fn disk(name: PoolName, device: impl Into<String>, label: DiskLabel) -> Self {
        let source = PoolSource::Disk {
            device: device.into(),
            label,
        };
        Self::new(name, source, Some("/dev".into()))
    }

    /// An `iscsi` pool (target `/dev/disk/by-path`).
    pub fn iscsi(name: PoolName, source: IscsiSource) -> Self {
        Self::new(
            name,
            PoolSource::Iscsi(source),
            Some("/dev/disk/by-path".into()),
        )
    }

    /// An `iscsi-direct` pool (no target path).
    pub fn iscsi_direct(name: PoolName, source: IscsiSource) -> Self {
        Self::new(name, PoolSource::IscsiDirect(source), None)
    }

    /// The host's `mpath` pool (target `/dev/mapper`).
    pub fn mpath(name: PoolName) -> Self {
        Self::new(name, PoolSource::Mpath, Some("/dev/mapper".into()))
    }

    /// A `scsi` pool over an adapter (target `/dev/disk/by-path`).
    pub fn scsi(name: PoolName, adapter: ScsiAdapter) -> Self {
        Self::new(
            name,
            PoolSource::Scsi(adapter),
            Some("/dev/disk/by-path".into()),
        )
    }

    /// Sets the UUID.
    pub fn with_uuid(mut self, uuid: impl Into<String>) -> Self {
        self.uuid = Some(uuid.into());
        self
    }

    /// Sets the target permissions.
    pub fn with_permissions(mut self, permissions: Permissions) -> Self {
        self.permissions = Some(permissions);
        self
    }

    /// The pool type.
    pub fn pool_type(&self) -> PoolType {
        self.source.pool_type()
    }

    fn invalid(&self, field: &'static str, problem: &'static str) -> Error {
        Error::InvalidDefinition {
            subject: format!("pool {}", self.name),
            field,
            problem,
        }
    }

    /// Checks the definition in itself: the fields each type needs, and nothing it cannot
    /// have. Every pool operation calls this before libvirt is called.
    pub fn validate(&self) -> Result<(), Error> {
        let abs = |field, value: &str| {
            if value.starts_with('/') && !value.chars().any(char::is_control) {
                Ok(())
            } else {
                Err(self.invalid(field, "must be an absolute path without control characters"))
            }
        };
        let nonempty = |field, value: &str| {
            if value.is_empty() || value.chars().any(char::is_control) {
                Err(self.invalid(field, "must be non-empty without control characters"))
            } else {
                Ok(())
            }
        };
        if let Some(uuid) = &self.uuid {
            let hex = uuid.chars().filter(|c| *c != '-').collect::<String>();
            if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(self.invalid("uuid", "must be a UUID"));
            }
        }
        let needs_target = matches!(
            self.pool_type(),
            PoolType::Dir | PoolType::Fs | PoolType::Netfs
        );
        match (&self.target, needs_target) {
            (None, true) => {
                return Err(self.invalid("target", "this pool type needs a target path"))
            }
            (Some(t), _) => abs("target", t)?,
            (None, false) => {}
        }
        match &self.source {
            PoolSource::Dir | PoolSource::Mpath => {}
            PoolSource::Fs { device, .. } => abs("source.device", device)?,
            PoolSource::Disk { device, .. } => abs("source.device", device)?,
            PoolSource::Netfs {
                host,
                dir,
                format,
                protocol_version,
                mount_options,
            } => {
                nonempty("source.host", host)?;
                nonempty("source.dir", dir)?;
                match format {
                    NetfsFormat::Cifs if dir.starts_with('/') => {
                        return Err(
                            self.invalid("source.dir", "a CIFS share name has no leading '/'")
                        )
                    }
                    NetfsFormat::Nfs | NetfsFormat::Auto if !dir.starts_with('/') => {
                        return Err(self.invalid("source.dir", "an NFS export path is absolute"))
                    }
                    _ => {}
                }
                if protocol_version.is_some() && *format != NetfsFormat::Nfs {
                    return Err(self.invalid(
                        "source.protocol_version",
                        "a protocol version needs format nfs",
                    ));
                }
                for opt in mount_options {
                    if opt.is_empty()
                        || opt.contains(',')
                        || opt.chars().any(|c| c.is_control() || c.is_whitespace())
                    {
                        return Err(self.invalid(
                            "mount_options",
                            "each option is one non-empty word without ',' or spaces",
                        ));
                    }
                }
            }
            PoolSource::Logical { vg, devices } => {
                nonempty("source.vg", vg)?;
                if vg.contains('/') {
                    return Err(self.invalid("source.vg", "a volume group name has no '/'"));
                }
                for d in devices {
                    abs("source.devices", d)?;
                }
            }
            PoolSource::Iscsi(src) | PoolSource::IscsiDirect(src) => {
                nonempty("source.host", &src.host)?;
                nonempty("source.target", &src.target)?;
                if let Some(init) = &src.initiator {
                    nonempty("source.initiator", init)?;
                }
                if let Some(auth) = &src.auth {
                    nonempty("source.auth.username", &auth.username)?;
                    match &auth.secret {
                        SecretRef::Usage(u) | SecretRef::Uuid(u) => {
                            nonempty("source.auth.secret", u)?
                        }
                    }
                }
                if self.pool_type() == PoolType::IscsiDirect {
                    if src.initiator.is_none() {
                        return Err(
                            self.invalid("source.initiator", "iscsi-direct needs an initiator IQN")
                        );
                    }
                    if self.target.is_some() {
                        return Err(self.invalid("target", "iscsi-direct has no target path"));
                    }
                }
            }
            PoolSource::Scsi(ScsiAdapter::ScsiHost { name }) => {
                nonempty("source.adapter.name", name)?
            }
            PoolSource::Scsi(ScsiAdapter::FcHost { wwnn, wwpn, .. }) => {
                let wwn = |field, v: &str| {
                    if v.len() == 16 && v.chars().all(|c| c.is_ascii_hexdigit()) {
                        Ok(())
                    } else {
                        Err(self.invalid(field, "must be 16 hex digits"))
                    }
                };
                wwn("source.adapter.wwnn", wwnn)?;
                wwn("source.adapter.wwpn", wwpn)?;
            }
        }
        if self.pool_type() == PoolType::Mpath
            && self.target.as_deref().is_some_and(|t| t != "/dev/mapper")
        {
            return Err(self.invalid("target", "an mpath pool's target is always /dev/mapper"));
        }
        Ok(())
    }

    /// [`validate`](Self::validate), then checks that the pool type suits `protocol`
    /// (see [`Protocol::pool_types`]).
    pub fn validate_for(&self, protocol: Protocol) -> Result<(), Error> {
        self.validate()?;
        if protocol.suits(&self.source) {
            Ok(())
        } else {
            Err(Error::ProtocolMismatch {
                pool: self.name.to_string(),
                pool_type: self.pool_type(),
                protocol,
            })
        }
    }

    /// Renders libvirt pool XML.
    pub fn to_xml(&self) -> String {
        let mut root = Element::new("pool").attr("type", self.pool_type().as_str());
        let mount_options = match &self.source {
            PoolSource::Netfs { mount_options, .. } if !mount_options.is_empty() => {
                root = root.attr("xmlns:fs", FS_NAMESPACE);
                Some(mount_options)
            }
            _ => None,
        };
        root = root
            .child(Element::leaf("name", self.name.as_str()))
            .child_opt(
                self.uuid
                    .as_ref()
                    .map(|u| Element::leaf("uuid", u.as_str())),
            )
            .child_opt(source_xml(&self.source));
        if let Some(path) = &self.target {
            let target = Element::new("target")
                .child(Element::leaf("path", path.as_str()))
                .child_opt(self.permissions.as_ref().map(permissions_xml));
            root = root.child(target);
        }
        if let Some(opts) = mount_options {
            let mut el = Element::new("fs:mount_opts");
            for opt in opts {
                el = el.child(Element::new("fs:option").attr("name", opt.as_str()));
            }
            root = root.child(el);
        }
        root.render()
    }

    /// Parses libvirt pool XML (as written by [`to_xml`](Self::to_xml) or by libvirt's
    /// `virStoragePoolGetXMLDesc`; capacity and allocation are ignored).
    pub fn from_xml(xml: &str) -> Result<PoolDef, Error> {
        let root = Element::parse("pool", xml)?;
        if root.name != "pool" {
            return Err(shape(&root.name, XmlProblem::UnexpectedRoot));
        }
        let type_str = root
            .get_attr("type")
            .ok_or_else(|| shape("pool@type", XmlProblem::Missing))?;
        let pool_type = PoolType::parse(type_str)
            .ok_or_else(|| shape("pool@type", XmlProblem::UnknownValue))?;
        let name = root
            .child_text("name")
            .ok_or_else(|| shape("name", XmlProblem::Missing))?;
        let name = PoolName::new(name)?;
        let empty = Element::new("source");
        let src = root.find("source").unwrap_or(&empty);
        let source = parse_source(pool_type, src, &root)?;
        let target_el = root.find("target");
        let target = target_el
            .and_then(|t| t.child_text("path"))
            .map(str::to_owned);
        let permissions = match target_el.and_then(|t| t.find("permissions")) {
            Some(p) => Some(parse_permissions(p)?),
            None => None,
        };
        Ok(PoolDef {
            name,
            uuid: root.child_text("uuid").map(str::to_owned),
            source,
            target,
            permissions,
        })
    }

    /// The fields in which `actual` (what libvirt has) differs from this desired definition.
    /// Fields this definition leaves open (`uuid`, `permissions` or parts of them, the iSCSI
    /// port when it is the default) are not compared. Empty means "the same pool".
    pub fn differences(&self, actual: &PoolDef) -> Vec<&'static str> {
        let mut diffs = Vec::new();
        if self.name != actual.name {
            diffs.push("name");
        }
        if self.uuid.is_some()
            && self.uuid.as_deref().map(str::to_ascii_lowercase)
                != actual.uuid.as_deref().map(str::to_ascii_lowercase)
        {
            diffs.push("uuid");
        }
        if self.pool_type() != actual.pool_type() {
            diffs.push("type");
        } else if normalize_source(&self.source) != normalize_source(&actual.source) {
            diffs.push("source");
        }
        // libvirt forces /dev/mapper for mpath; iscsi-direct has no target.
        let target_matters = !matches!(self.pool_type(), PoolType::Mpath | PoolType::IscsiDirect);
        if target_matters && self.target.is_some() && self.target != actual.target {
            diffs.push("target");
        }
        if let Some(want) = &self.permissions {
            let have = actual.permissions.clone().unwrap_or_default();
            let differs = (want.mode.is_some() && want.mode != have.mode)
                || (want.owner.is_some() && want.owner != have.owner)
                || (want.group.is_some() && want.group != have.group)
                || (want.label.is_some() && want.label != have.label);
            if differs {
                diffs.push("permissions");
            }
        }
        diffs
    }
}

fn normalize_source(source: &PoolSource) -> PoolSource {
    let mut s = source.clone();
    match &mut s {
        PoolSource::Iscsi(src) | PoolSource::IscsiDirect(src)
            if src.port == Some(ISCSI_DEFAULT_PORT) =>
        {
            src.port = None;
        }
        PoolSource::Logical { devices, .. } => devices.sort(),
        _ => {}
    }
    s
}

fn shape(element: &str, problem: XmlProblem) -> Error {
    Error::XmlShape {
        document: "pool",
        element: element.to_owned(),
        problem,
    }
}

fn source_xml(source: &PoolSource) -> Option<Element> {
    let src = Element::new("source");
    let format = |f: &str| Element::new("format").attr("type", f);
    let device = |p: &str| Element::new("device").attr("path", p);
    Some(match source {
        PoolSource::Dir | PoolSource::Mpath => return None,
        PoolSource::Fs {
            device: d,
            format: f,
        } => src.child(device(d)).child(format(f.as_str())),
        PoolSource::Netfs {
            host,
            dir,
            format: f,
            protocol_version,
            ..
        } => src
            .child(Element::new("host").attr("name", host.as_str()))
            .child(Element::new("dir").attr("path", dir.as_str()))
            .child(format(f.as_str()))
            .child_opt(
                protocol_version.map(|v| Element::new("protocol").attr("ver", v.to_string())),
            ),
        PoolSource::Logical { vg, devices } => {
            let mut el = src.child(Element::leaf("name", vg.as_str()));
            for d in devices {
                el = el.child(device(d));
            }
            el.child(format("lvm2"))
        }
        PoolSource::Disk { device: d, label } => src.child(device(d)).child(format(label.as_str())),
        PoolSource::Iscsi(s) | PoolSource::IscsiDirect(s) => {
            let auth = s.auth.as_ref().map(|a| {
                let secret = match &a.secret {
                    SecretRef::Usage(u) => Element::new("secret").attr("usage", u.as_str()),
                    SecretRef::Uuid(u) => Element::new("secret").attr("uuid", u.as_str()),
                };
                Element::new("auth")
                    .attr("type", "chap")
                    .attr("username", a.username.as_str())
                    .child(secret)
            });
            src.child(
                Element::new("host")
                    .attr("name", s.host.as_str())
                    .attr_opt("port", s.port.map(|p| p.to_string())),
            )
            .child(device(&s.target))
            .child_opt(s.initiator.as_ref().map(|i| {
                Element::new("initiator").child(Element::new("iqn").attr("name", i.as_str()))
            }))
            .child_opt(auth)
        }
        PoolSource::Scsi(ScsiAdapter::ScsiHost { name }) => src.child(
            Element::new("adapter")
                .attr("type", "scsi_host")
                .attr("name", name.as_str()),
        ),
        PoolSource::Scsi(ScsiAdapter::FcHost {
            parent,
            wwnn,
            wwpn,
            managed,
        }) => src.child(
            Element::new("adapter")
                .attr("type", "fc_host")
                .attr_opt("parent", parent.as_deref())
                .attr_opt("managed", managed.map(|m| if m { "yes" } else { "no" }))
                .attr("wwnn", wwnn.as_str())
                .attr("wwpn", wwpn.as_str()),
        ),
    })
}

fn permissions_xml(p: &Permissions) -> Element {
    Element::new("permissions")
        .child_opt(p.mode.map(|m| Element::leaf("mode", format!("{m:04o}"))))
        .child_opt(p.owner.map(|o| Element::leaf("owner", o.to_string())))
        .child_opt(p.group.map(|g| Element::leaf("group", g.to_string())))
        .child_opt(p.label.as_ref().map(|l| Element::leaf("label", l.as_str())))
}

fn parse_permissions(p: &Element) -> Result<Permissions, Error> {
    let num = |name: &str, radix| -> Result<Option<u32>, Error> {
        match p.child_text(name) {
            None => Ok(None),
            // libvirt writes -1 for "unset" owner/group in some versions.
            Some("-1") => Ok(None),
            Some(t) => u32::from_str_radix(t.trim(), radix)
                .map(Some)
                .map_err(|_| shape(name, XmlProblem::BadNumber)),
        }
    };
    Ok(Permissions {
        mode: num("mode", 8)?,
        owner: num("owner", 10)?,
        group: num("group", 10)?,
        label: p.child_text("label").map(str::to_owned),
    })
}

fn parse_source(pool_type: PoolType, src: &Element, root: &Element) -> Result<PoolSource, Error> {
    let req_attr = |child: &str, key: &str| -> Result<String, Error> {
        src.child_attr(child, key)
            .map(str::to_owned)
            .ok_or_else(|| shape(&format!("source/{child}@{key}"), XmlProblem::Missing))
    };
    let format_str = src.child_attr("format", "type");
    Ok(match pool_type {
        PoolType::Dir => PoolSource::Dir,
        PoolType::Mpath => PoolSource::Mpath,
        PoolType::Fs => PoolSource::Fs {
            device: req_attr("device", "path")?,
            format: match format_str {
                None => FsFormat::Auto,
                Some(f) => FsFormat::parse(f)
                    .ok_or_else(|| shape("source/format@type", XmlProblem::UnknownValue))?,
            },
        },
        PoolType::Netfs => {
            let protocol_version = match src.child_attr("protocol", "ver") {
                None => None,
                Some(v) => Some(
                    v.parse::<u8>()
                        .map_err(|_| shape("source/protocol@ver", XmlProblem::BadNumber))?,
                ),
            };
            let mount_options = root
                .find("fs:mount_opts")
                .map(|m| {
                    m.find_all("fs:option")
                        .filter_map(|o| o.get_attr("name").map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            PoolSource::Netfs {
                host: req_attr("host", "name")?,
                dir: req_attr("dir", "path")?,
                format: match format_str {
                    None => NetfsFormat::Auto,
                    Some(f) => NetfsFormat::parse(f)
                        .ok_or_else(|| shape("source/format@type", XmlProblem::UnknownValue))?,
                },
                protocol_version,
                mount_options,
            }
        }
        PoolType::Logical => PoolSource::Logical {
            vg: src
                .child_text("name")
                .map(str::to_owned)
                .or_else(|| root.child_text("name").map(str::to_owned))
                .ok_or_else(|| shape("source/name", XmlProblem::Missing))?,
            devices: src
                .find_all("device")
                .filter_map(|d| d.get_attr("path").map(str::to_owned))
                .collect(),
        },
        PoolType::Disk => PoolSource::Disk {
            device: req_attr("device", "path")?,
            label: match format_str {
                None => DiskLabel::Dos,
                Some(f) => DiskLabel::parse(f)
                    .ok_or_else(|| shape("source/format@type", XmlProblem::UnknownValue))?,
            },
        },
        PoolType::Iscsi | PoolType::IscsiDirect => {
            let port = match src.child_attr("host", "port") {
                None => None,
                Some(p) => Some(
                    p.parse::<u16>()
                        .map_err(|_| shape("source/host@port", XmlProblem::BadNumber))?,
                ),
            };
            let auth = match src.find("auth") {
                None => None,
                Some(a) => {
                    let username = a
                        .get_attr("username")
                        .ok_or_else(|| shape("source/auth@username", XmlProblem::Missing))?;
                    let secret = a
                        .find("secret")
                        .ok_or_else(|| shape("source/auth/secret", XmlProblem::Missing))?;
                    let secret = match (secret.get_attr("usage"), secret.get_attr("uuid")) {
                        (Some(u), _) => SecretRef::Usage(u.to_owned()),
                        (None, Some(u)) => SecretRef::Uuid(u.to_owned()),
                        (None, None) => {
                            return Err(shape("source/auth/secret@usage", XmlProblem::Missing))
                        }
                    };
                    Some(ChapAuth {
                        username: username.to_owned(),
                        secret,
                    })
                }
            };
            let s = IscsiSource {
                host: req_attr("host", "name")?,
                port,
                target: req_attr("device", "path")?,
                initiator: src
                    .find("initiator")
                    .and_then(|i| i.child_attr("iqn", "name"))
                    .map(str::to_owned),
                auth,
            };
            if pool_type == PoolType::Iscsi {
                PoolSource::Iscsi(s)
            } else {
                PoolSource::IscsiDirect(s)
            }
        }
        PoolType::Scsi => {
            let adapter = src
                .find("adapter")
                .ok_or_else(|| shape("source/adapter", XmlProblem::Missing))?;
            let attr = |k: &str| {
                adapter
                    .get_attr(k)
                    .map(str::to_owned)
                    .ok_or_else(|| shape(&format!("source/adapter@{k}"), XmlProblem::Missing))
            };
            match adapter.get_attr("type") {
                Some("fc_host") => PoolSource::Scsi(ScsiAdapter::FcHost {
                    parent: adapter.get_attr("parent").map(str::to_owned),
                    wwnn: attr("wwnn")?,
                    wwpn: attr("wwpn")?,
                    managed: adapter.get_attr("managed").map(|m| m == "yes"),
                }),
                Some("scsi_host") | None => PoolSource::Scsi(ScsiAdapter::ScsiHost {
                    name: attr("name")?,
                }),
                Some(_) => return Err(shape("source/adapter@type", XmlProblem::UnknownValue)),
            }
        }
    })
}

#[cfg(test)]
mod tests;
