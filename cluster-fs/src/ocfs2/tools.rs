//! `mkfs.ocfs2`, `tunefs.ocfs2`, `fsck.ocfs2` commands, and parsers for `mounted.ocfs2 -d`,
//! `mounted.ocfs2 -f` and `debugfs.ocfs2 -R stats`.

use std::time::Duration;

use host_storage::Command;

use crate::device::TargetDevice;
use crate::error::{Error, Format, Result, ValueKind};
use crate::names::{ClusterName, Label};
use crate::ocfs2::conf::Region;
use crate::ocfs2::o2cb::O2cbStack;

/// Longest time a format or check may run (large LUNs, many journals).
pub const LONG_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Most node slots OCFS2 supports.
pub const MAX_SLOTS: u16 = 255;

/// Which cluster stack a volume uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ocfs2Mode {
    /// Shared by the hosts of `cluster` (`--cluster-stack=… --cluster-name=…`).
    Cluster {
        /// The stack.
        stack: O2cbStack,
        /// The cluster name (as in `cluster.conf`).
        cluster: ClusterName,
        /// Global heartbeat (`--global-heartbeat`).
        global_heartbeat: bool,
    },
    /// Mounted by one host only (`-M local`); no cluster needed.
    Local,
}

/// `mkfs.ocfs2 -T` file-system type, which picks cluster size and journal defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ocfs2Usage {
    /// `vmstore`: large, sparse VM images (1 MiB clusters). mkfs.ocfs2 1.8.7 refuses it on
    /// devices under 2 GiB ("Selected file system type requires a device of at least 2
    /// gigabytes") unless the cluster size is given ([`Ocfs2Format::cluster_size`]).
    VmStore,
    /// `datafiles`: database files.
    DataFiles,
    /// `mail`: many small files.
    Mail,
}

impl Ocfs2Usage {
    /// The `-T` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Ocfs2Usage::VmStore => "vmstore",
            Ocfs2Usage::DataFiles => "datafiles",
            Ocfs2Usage::Mail => "mail",
        }
    }
}

/// Features suited to VM images: `sparse` and `unwritten` (thin images, `fallocate`),
/// `refcount` (reflink clones of images), `xattr`, `indexed-dirs`, `inline-data` and
/// `metaecc` (metadata checksums).
pub const VM_IMAGE_FEATURES: &[&str] = &[
    "sparse",
    "unwritten",
    "inline-data",
    "refcount",
    "xattr",
    "indexed-dirs",
    "metaecc",
];

/// Options of one `mkfs.ocfs2` run, validated when built.
///
/// ```
/// use cluster_fs::ocfs2::Ocfs2Format;
/// use cluster_fs::{ClusterName, Label, TargetDevice};
/// let f = Ocfs2Format::new(
///     TargetDevice::image_file("/var/tmp/vm.img")?,
///     Label::parse("vmstore")?,
///     ClusterName::parse("kvmcl")?,
///     3,
/// )?
/// .node_slots(4)?;
/// assert_eq!(
///     f.command().to_string(),
///     "mkfs.ocfs2 -L vmstore -N 4 -T vmstore \
///      --fs-features=sparse,unwritten,inline-data,refcount,xattr,indexed-dirs,metaecc \
///      --cluster-stack=o2cb --cluster-name=kvmcl /var/tmp/vm.img"
/// );
/// // Fewer slots than hosts is refused.
/// assert!(f.clone().node_slots(2).is_err());
/// # Ok::<(), cluster_fs::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ocfs2Format {
    device: TargetDevice,
    label: Label,
    mode: Ocfs2Mode,
    hosts: u16,
    slots: u16,
    usage: Ocfs2Usage,
    features: Vec<String>,
    block_size: Option<u32>,
    cluster_size: Option<u32>,
    journal_mib: Option<u32>,
    overwrite: bool,
}

fn size_arg(bytes: u32) -> String {
    if bytes % (1 << 20) == 0 {
        format!("{}M", bytes >> 20)
    } else if bytes % 1024 == 0 {
        format!("{}K", bytes >> 10)
    } else {
        bytes.to_string()
    }
}

impl Ocfs2Format {
    /// A clustered (o2cb) volume for `hosts` hosts, with as many node slots, `-T vmstore` and
    /// [`VM_IMAGE_FEATURES`].
    pub fn new(
        device: TargetDevice,
        label: Label,
        cluster: ClusterName,
        hosts: u16,
    ) -> Result<Self> {
        Self::with_mode(
            device,
            label,
            Ocfs2Mode::Cluster {
                stack: O2cbStack::O2cb,
                cluster,
                global_heartbeat: false,
            },
            hosts,
        )
    }

    /// A volume in any mode (see [`Ocfs2Mode::Local`]).
    pub fn with_mode(
        device: TargetDevice,
        label: Label,
        mode: Ocfs2Mode,
        hosts: u16,
    ) -> Result<Self> {
        if hosts == 0 || hosts > MAX_SLOTS {
            return Err(Error::invalid(
                ValueKind::Number,
                hosts.to_string(),
                "hosts must be 1 to 255",
            ));
        }
        Ok(Ocfs2Format {
            device,
            label,
            mode,
            hosts,
            slots: hosts,
            usage: Ocfs2Usage::VmStore,
            features: VM_IMAGE_FEATURES.iter().map(|s| (*s).to_owned()).collect(),
            block_size: None,
            cluster_size: None,
            journal_mib: None,
            overwrite: false,
        })
    }

    /// Node slots (the most hosts that can mount at once); at least the number of hosts.
    pub fn node_slots(mut self, slots: u16) -> Result<Self> {
        if slots < self.hosts {
            return Err(Error::TooFewSlots {
                label: self.label.to_string(),
                slots,
                hosts: self.hosts,
            });
        }
        if slots > MAX_SLOTS {
            return Err(Error::invalid(
                ValueKind::Number,
                slots.to_string(),
                "node slots must be at most 255",
            ));
        }
        self.slots = slots;
        Ok(self)
    }

    /// Block size: 512, 1024, 2048 or 4096.
    pub fn block_size(mut self, bytes: u32) -> Result<Self> {
        if ![512, 1024, 2048, 4096].contains(&bytes) {
            return Err(Error::invalid(
                ValueKind::Number,
                bytes.to_string(),
                "block size must be 512, 1024, 2048 or 4096",
            ));
        }
        self.block_size = Some(bytes);
        Ok(self)
    }

    /// Cluster size: a power of two from 4 KiB to 1 MiB.
    pub fn cluster_size(mut self, bytes: u32) -> Result<Self> {
        if !bytes.is_power_of_two() || !(4096..=1 << 20).contains(&bytes) {
            return Err(Error::invalid(
                ValueKind::Number,
                bytes.to_string(),
                "cluster size must be a power of two from 4K to 1M",
            ));
        }
        self.cluster_size = Some(bytes);
        Ok(self)
    }

    /// Journal size per slot in MiB (4 to 1024).
    pub fn journal_mib(mut self, mib: u32) -> Result<Self> {
        if !(4..=1024).contains(&mib) {
            return Err(Error::invalid(
                ValueKind::Number,
                mib.to_string(),
                "journal size must be 4 to 1024 MiB",
            ));
        }
        self.journal_mib = Some(mib);
        Ok(self)
    }

    /// The `-T` usage type.
    pub fn usage(mut self, usage: Ocfs2Usage) -> Self {
        self.usage = usage;
        self
    }

    /// Replaces the feature list (names as `mkfs.ocfs2 --fs-features` takes them).
    pub fn features<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        features: I,
    ) -> Result<Self> {
        let f: Vec<String> = features.into_iter().map(Into::into).collect();
        if let Some(bad) = f
            .iter()
            .find(|s| s.is_empty() || !s.bytes().all(|c| c.is_ascii_lowercase() || c == b'-'))
        {
            return Err(Error::invalid(
                ValueKind::Label,
                bad.clone(),
                "feature names are lowercase letters and '-'",
            ));
        }
        self.features = f;
        Ok(self)
    }

    /// Formats even if the device carries a signature (destroys what is there).
    pub fn overwrite(mut self, yes: bool) -> Self {
        self.overwrite = yes;
        self
    }

    /// The device.
    pub fn device(&self) -> &TargetDevice {
        &self.device
    }

    /// The label.
    pub fn label(&self) -> &Label {
        &self.label
    }

    /// The mode.
    pub fn mode(&self) -> &Ocfs2Mode {
        &self.mode
    }

    /// The node slots.
    pub fn slots(&self) -> u16 {
        self.slots
    }

    /// The number of hosts.
    pub fn hosts(&self) -> u16 {
        self.hosts
    }

    /// Whether overwriting was asked.
    pub fn is_overwrite(&self) -> bool {
        self.overwrite
    }

    /// The `mkfs.ocfs2` command. `-F` is given only with [`Ocfs2Format::overwrite`]; the
    /// signature check runs before it anyway.
    pub fn command(&self) -> Command {
        let mut c = Command::new("mkfs.ocfs2")
            .args(["-L", self.label.as_str()])
            .args(["-N", &self.slots.to_string()])
            .args(["-T", self.usage.as_str()]);
        if let Some(b) = self.block_size {
            c = c.args(["-b", &b.to_string()]);
        }
        if let Some(s) = self.cluster_size {
            c = c.args(["-C", &size_arg(s)]);
        }
        if let Some(j) = self.journal_mib {
            c = c.args(["-J", &format!("size={j}M")]);
        }
        if !self.features.is_empty() {
            c = c.arg(format!("--fs-features={}", self.features.join(",")));
        }
        match &self.mode {
            Ocfs2Mode::Cluster {
                stack,
                cluster,
                global_heartbeat,
            } => {
                c = c
                    .arg(format!("--cluster-stack={}", stack.as_str()))
                    .arg(format!("--cluster-name={cluster}"));
                if *global_heartbeat {
                    c = c.arg("--global-heartbeat");
                }
            }
            Ocfs2Mode::Local => c = c.args(["-M", "local"]),
        }
        if self.overwrite {
            c = c.arg("-F");
        }
        c.arg(self.device.arg()).timeout(LONG_TIMEOUT)
    }
}

/// `tunefs.ocfs2 -L LABEL DEV` (o2cb volumes need the cluster online).
pub fn tunefs_label(dev: &TargetDevice, label: &Label) -> Command {
    Command::new("tunefs.ocfs2")
        .args(["-L", label.as_str()])
        .arg(dev.arg())
        .timeout(LONG_TIMEOUT)
}

/// `tunefs.ocfs2 -N SLOTS DEV`.
pub fn tunefs_slots(dev: &TargetDevice, slots: u16) -> Command {
    Command::new("tunefs.ocfs2")
        .args(["-N", &slots.to_string()])
        .arg(dev.arg())
        .timeout(LONG_TIMEOUT)
}

/// `tunefs.ocfs2 --cloned-volume -y DEV`: a new UUID (and the label `<old>-cloned`) for a
/// volume on an ONTAP FlexClone LUN, so it can be mounted beside its parent. It does not
/// use the cluster. (ocfs2-tools 1.8.7 ignores the `=new-label` argument; set the label
/// afterwards with [`tunefs_label`].)
pub fn tunefs_cloned_volume(dev: &TargetDevice) -> Command {
    Command::new("tunefs.ocfs2")
        .args(["--cloned-volume", "-y"])
        .arg(dev.arg())
        .timeout(LONG_TIMEOUT)
}

/// How `fsck` may treat the volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FsckMode {
    /// `-n`: only report (exit 0 clean, 4 errors left).
    CheckOnly,
    /// `-y`: repair everything (exit 0 clean, 1 corrected). Changes the volume.
    Repair,
}

/// `fsck.ocfs2 -n|-y DEV` with the exit codes that are results, not failures.
pub fn fsck_ocfs2(dev: &TargetDevice, mode: FsckMode) -> Command {
    let (flag, ok) = match mode {
        FsckMode::CheckOnly => ("-n", vec![0, 4]),
        FsckMode::Repair => ("-y", vec![0, 1]),
    };
    Command::new("fsck.ocfs2")
        .arg(flag)
        .arg(dev.arg())
        .ok_codes(ok)
        .timeout(LONG_TIMEOUT)
}

/// One row of `mounted.ocfs2 -d`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectedVolume {
    /// The device.
    pub device: String,
    /// `o2cb`, `pcmk`, or `None` for local volumes (`None` printed literally).
    pub stack: Option<String>,
    /// The cluster name, if clustered.
    pub cluster: Option<String>,
    /// True when the `F` column is `G` (global heartbeat).
    pub global_heartbeat: bool,
    /// The volume UUID (32 uppercase hex digits).
    pub uuid: Region,
    /// The label (may be empty).
    pub label: String,
}

/// Who has a volume mounted, per `mounted.ocfs2 -f` (from the slot map, so possibly stale
/// after a crash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mounters {
    /// `Not mounted`.
    NotMounted,
    /// The node names (or numbers, for nodes not in `cluster.conf`).
    Nodes(Vec<String>),
    /// Nothing printed (local volumes).
    Unknown,
}

/// One row of `mounted.ocfs2 -f`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountedVolume {
    /// The device.
    pub device: String,
    /// The stack, `None` for local volumes.
    pub stack: Option<String>,
    /// The cluster name.
    pub cluster: Option<String>,
    /// Global heartbeat.
    pub global_heartbeat: bool,
    /// Who has it mounted.
    pub mounters: Mounters,
}

/// Column start offsets from a header line, for the given names in order.
fn columns(header: &str, names: &[&str], format: Format) -> Result<Vec<usize>> {
    let mut out = Vec::new();
    let mut from = 0;
    for name in names {
        let i = header[from..]
            .find(name)
            .map(|i| i + from)
            .ok_or_else(|| Error::parse(format, 1, "header column missing"))?;
        out.push(i);
        from = i + name.len();
    }
    Ok(out)
}

fn cell(line: &str, cols: &[usize], i: usize) -> String {
    let start = cols[i].min(line.len());
    let end = cols
        .get(i + 1)
        .copied()
        .unwrap_or(line.len())
        .min(line.len());
    line.get(start..end).unwrap_or("").trim().to_owned()
}

fn none_if(s: String, none: &[&str]) -> Option<String> {
    if s.is_empty() || none.contains(&s.as_str()) {
        None
    } else {
        Some(s)
    }
}

fn data_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|(i, l)| (i + 1, l))
}

/// Parses `mounted.ocfs2 -d` (columns located from the header, as cluster and `F` may be
/// blank).
pub fn parse_mounted_detect(text: &str) -> Result<Vec<DetectedVolume>> {
    let mut lines = data_lines(text);
    let Some((_, header)) = lines.next() else {
        return Ok(Vec::new());
    };
    let cols = columns(
        header,
        &["Device", "Stack", "Cluster", "F", "UUID", "Label"],
        Format::MountedDetect,
    )?;
    lines
        .map(|(n, l)| {
            let uuid = cell(l, &cols, 4);
            Ok(DetectedVolume {
                device: cell(l, &cols, 0),
                stack: none_if(cell(l, &cols, 1), &["None"]),
                cluster: none_if(cell(l, &cols, 2), &[]),
                global_heartbeat: cell(l, &cols, 3) == "G",
                uuid: Region::parse(&uuid)
                    .map_err(|_| Error::parse(Format::MountedDetect, n, "bad UUID"))?,
                label: cell(l, &cols, 5),
            })
        })
        .collect()
}

/// Parses `mounted.ocfs2 -f`.
pub fn parse_mounted_full(text: &str) -> Result<Vec<MountedVolume>> {
    let mut lines = data_lines(text);
    let Some((_, header)) = lines.next() else {
        return Ok(Vec::new());
    };
    let cols = columns(
        header,
        &["Device", "Stack", "Cluster", "F", "Nodes"],
        Format::MountedFull,
    )?;
    Ok(lines
        .map(|(_, l)| {
            let nodes = cell(l, &cols, 4);
            MountedVolume {
                device: cell(l, &cols, 0),
                stack: none_if(cell(l, &cols, 1), &["None"]),
                cluster: none_if(cell(l, &cols, 2), &[]),
                global_heartbeat: cell(l, &cols, 3) == "G",
                mounters: match nodes.as_str() {
                    "" => Mounters::Unknown,
                    "Not mounted" => Mounters::NotMounted,
                    list => Mounters::Nodes(list.split(',').map(|s| s.trim().to_owned()).collect()),
                },
            }
        })
        .collect())
}

/// The superblock facts of `debugfs.ocfs2 -R stats`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ocfs2Stats {
    /// `Label`.
    pub label: String,
    /// `UUID`.
    pub uuid: Region,
    /// `Max Node Slots`.
    pub node_slots: u16,
    /// `1 << Block Size Bits`.
    pub block_size: u32,
    /// `1 << Cluster Size Bits`.
    pub cluster_size: u32,
    /// `Cluster stack` (`o2cb`, `pcmk`, `classic o2cb` for volumes without cluster info).
    pub cluster_stack: Option<String>,
    /// `Cluster name`, for volumes made with `--cluster-name`.
    pub cluster_name: Option<String>,
    /// Feature names from the compat, incompat and ro-compat lines.
    pub features: Vec<String>,
}

impl Ocfs2Stats {
    /// True for volumes made with `-M local` (incompat feature `local`).
    pub fn is_local(&self) -> bool {
        self.features.iter().any(|f| f == "local")
    }
}

/// Parses `debugfs.ocfs2 -R stats` (tab-indented `Key: value` fields, several per line
/// separated by three spaces).
pub fn parse_debugfs_stats(text: &str) -> Result<Ocfs2Stats> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        for part in line.trim().split("   ") {
            if let Some((k, v)) = part.split_once(':') {
                fields.push((k.trim().to_owned(), v.trim().to_owned()));
            }
        }
    }
    let get = |k: &str| {
        fields
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let need =
        |k: &str, reason| get(k).ok_or_else(|| Error::parse(Format::DebugfsStats, 0, reason));
    let bits = |k: &str, reason| -> Result<u32> {
        need(k, reason)?
            .parse::<u32>()
            .ok()
            .filter(|b| *b < 32)
            .map(|b| 1u32 << b)
            .ok_or_else(|| Error::parse(Format::DebugfsStats, 0, reason))
    };
    let mut features = Vec::new();
    for k in ["Feature Compat", "Feature Incompat", "Feature RO compat"] {
        if let Some(v) = get(k) {
            features.extend(v.split_whitespace().skip(1).map(str::to_owned));
        }
    }
    Ok(Ocfs2Stats {
        label: get("Label").unwrap_or_default(),
        uuid: Region::parse(&need("UUID", "no UUID")?)
            .map_err(|_| Error::parse(Format::DebugfsStats, 0, "bad UUID"))?,
        node_slots: need("Max Node Slots", "no Max Node Slots")?
            .parse()
            .map_err(|_| Error::parse(Format::DebugfsStats, 0, "bad Max Node Slots"))?,
        block_size: bits("Block Size Bits", "bad Block Size Bits")?,
        cluster_size: bits("Cluster Size Bits", "bad Cluster Size Bits")?,
        cluster_stack: get("Cluster stack").filter(|s| !s.is_empty()),
        cluster_name: get("Cluster name").filter(|s| !s.is_empty()),
        features,
    })
}

/// `debugfs.ocfs2 -R stats DEV` (read-only).
pub fn debugfs_stats(dev: &TargetDevice) -> Command {
    Command::new("debugfs.ocfs2")
        .args(["-R", "stats"])
        .arg(dev.arg())
}
