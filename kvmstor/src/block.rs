//! Block datastores: a LUN (iSCSI, FC) or an NVMe namespace (NVMe/TCP) shared by every host
//! and formatted with a cluster file system (OCFS2 by default, GFS2 when asked), attached
//! as a libvirt `dir` pool; detach is the reverse, in the safe order, with ONTAP objects
//! deleted only when asked. One workflow, parameterised by [`BlockProtocol`] and
//! [`ClusterFsKind`]: the protocol decides how hosts reach the disk, the rest is shared.
//!
//! [`BlockDatastore`] is the request; [`BlockDatastore::attach`] and
//! [`BlockDatastore::detach`] look up the SVM's target and LIFs and the hosts' identities
//! and return a [`Saga`] of [`BlockStep`]s; [`BlockDatastore::grow`] grows an attached one.
//!
//! ## Attach, in order
//! 1. `CreateVolume`: a FlexVol without junction, its comment an ownership token.
//! 2. The disk and who may see it: `CreateLun` `/vol/<volume>/lun0` (`os_type linux`, thin
//!    unless asked), `CreateIgroup` `kvmstor_<pool>` (protocol iSCSI with every host's IQN
//!    from `/etc/iscsi/initiatorname.iscsi`, or FCP with every host's online HBA WWPNs
//!    from `/sys/class/fc_host`), `MapLun` with a LUN id no host already sees through
//!    another igroup; or for NVMe/TCP `CreateNamespace` `/vol/<volume>/ns0`,
//!    `CreateSubsystem` with every host's NQN (`/etc/nvme/hostnqn`), `MapNamespace`.
//! 3. Per host, the path: iSCSI `ConfigureMultipath` (the NetApp drop-in, `multipathd
//!    reconfigure`), `ConnectIscsi` (a node record and a login per `data_iscsi` LIF,
//!    manual scan), `AttachLun` (a targeted scan of the LUN id on every session, then the
//!    multipath map found by the NAA WWID derived from the LUN serial, or by the serial
//!    of its paths when the target reports another designator); FC
//!    `ConfigureMultipath`, `AttachLun` (a targeted scan behind every online remote port
//!    of the SVM's FC LIFs); NVMe/TCP `ConnectNvme` (one controller per `data_nvme_tcp`
//!    LIF, native multipath), `AttachNamespace` (the head device found by namespace UUID).
//! 4. Per host, the cluster: OCFS2 `ConfigureO2cb` (`cluster.conf` with every host, the
//!    o2cb boot settings) and `RegisterCluster`; GFS2 `ConfigureCorosync`
//!    (`corosync.conf`, `dlm.conf`) and `StartClusterServices` (corosync, DLM).
//! 5. On the first host only: `FormatOcfs2` / `FormatGfs2` (lock table
//!    `<cluster>:<pool>`, a journal per host), after the device identity (WWID or
//!    namespace UUID) is read from sysfs and compared with ONTAP's, and `blkid` finds no
//!    signature; for a FlexClone of an OCFS2 datastore `ReuuidOcfs2` instead.
//! 6. Per host: `MountOcfs2` / `MountGfs2` on the stable path (`/dev/mapper/<wwid>`, or
//!    `/dev/disk/by-id/nvme-uuid.<uuid>`; never `dm-N`), `PersistFstab`
//!    (`_netdev,noatime`), `DefinePool` (a `dir` pool on the mount point).
//!
//! ## Undo without a recorded result
//! A step interrupted by a crash is undone with no output; each undo then removes only what
//! is recognisably this workflow's: ONTAP objects carrying the token, the disk's own devices
//! (its serial or UUID is unique), sessions and controllers of the SVM that have no device
//! left, the multipath drop-in only when it is kvmstor's text and no NetApp map remains,
//! cluster configuration files only when they hold exactly what this workflow writes, and
//! the cluster stack only when no file system of its kind is mounted.
//!
//! ## Detach, in order
//! Per host: `RemovePool` (data kept), `RemoveFstab`, the unmount, `DetachLun` (flush and
//! remove the map, delete every SCSI path) and `DisconnectIscsi` (log out of sessions that
//! have no device left), or `DisconnectNvme`; then the cluster stack and host-wide settings,
//! only when nothing else uses them (`UnregisterCluster` and `RemoveO2cbConfig`, or
//! `StopClusterServices` and `RemoveCorosyncConfig`; `RemoveMultipathConfig`); then the
//! map; with [`BlockDatastore::delete_ontap_objects`] also the igroup or subsystem, the
//! disk and the volume (the last two cannot be undone).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use cluster_fs::gfs2::{CorosyncConf, CorosyncNode, DlmConf, Gfs2Format, COROSYNC_CONF, DLM_CONF};
use cluster_fs::ocfs2::{
    ClusterConf, HeartbeatMode, O2cbDefaults, Ocfs2Cluster, Ocfs2Format, Ocfs2Node,
};
use cluster_fs::{
    ClusterHost, ClusterMount, ClusterName, FsKind, Identity, Label, LockTable, NodeName,
    TargetDevice,
};
use host_storage::fc::Fc;
use host_storage::files::EntryId;
use host_storage::iscsi::{ConnectUndo, Iscsi, IscsiTarget, LoginUndo, NodeSettings, NodeUndo};
use host_storage::multipath::{
    Multipath, MultipathConfUndo, MultipathConfig, DROPIN_NAME, MINIMAL_MAIN_CONF,
};
use host_storage::nvmeof::{ConnectOptions, Nvme, NvmeConnectUndo, Transport};
use host_storage::parse::Portal;
use host_storage::service::{ServiceUndo, Services};
use host_storage::sysfs::Sysfs;
use host_storage::wait::{DeviceId, DeviceWaiter};
use host_storage::{Change, HostName, Iqn, LunSerial, Nqn, Wwpn};
use ontap_client::models::{
    IgroupCreate, IgroupOsType, IgroupProtocol, InterfaceState, IpService, LunCreate, LunMapCreate,
    LunOsType, NamespaceCreate, NvmeOsType, SubsystemCreate, SubsystemMapCreate,
};
use ontap_client::Query;
use serde::{Deserialize, Serialize};

use crate::actions::{file_change, host_cmd, ontap_call, pool_defined, pool_removed};
use crate::datastore;
use crate::env::{Env, Host};
use crate::error::{Error, Result, StepError};
use crate::host_steps::{self, ensure_pool, host_err, line_applied, remove_fstab, remove_pool};
use crate::nfs::{gone_ok, ontap_err, NfsOutput, PoolRequest, VolumeRequest};
use crate::ontap_steps::{self, create_once, delete_owned, Owned};
use crate::saga::{ActionKind, Applied, LockKey, Saga, Step};

/// How long a host waits for a LUN's paths and multipath map to appear.
pub const DEVICE_TIMEOUT: Duration = Duration::from_secs(60);

/// The iSCSI port.
pub const ISCSI_PORT: u16 = 3260;

/// The protocol a block datastore's hosts reach ONTAP with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BlockProtocol {
    /// iSCSI: a LUN, an igroup of IQNs, a login per `data_iscsi` LIF, dm-multipath.
    Iscsi,
    /// Fibre Channel: a LUN, an igroup of the hosts' online HBA WWPNs, a targeted scan
    /// behind the SVM's FC LIFs, dm-multipath.
    Fcp,
    /// NVMe/TCP: a namespace, a subsystem of host NQNs, a connect per `data_nvme_tcp` LIF,
    /// native NVMe multipath.
    NvmeTcp,
}

impl BlockProtocol {
    /// `iscsi`, `fcp`, `nvme-tcp`.
    pub fn as_str(self) -> &'static str {
        match self {
            BlockProtocol::Iscsi => "iscsi",
            BlockProtocol::Fcp => "fcp",
            BlockProtocol::NvmeTcp => "nvme-tcp",
        }
    }
}

/// The cluster file system of a block datastore.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ClusterFsKind {
    /// OCFS2 with the o2cb stack (the default: no fencing setup needed).
    #[default]
    Ocfs2,
    /// GFS2 with corosync and DLM (`lock_dlm`).
    Gfs2,
}

impl ClusterFsKind {
    fn kind(self) -> FsKind {
        match self {
            ClusterFsKind::Ocfs2 => FsKind::Ocfs2,
            ClusterFsKind::Gfs2 => FsKind::Gfs2,
        }
    }

    /// `ocfs2` or `gfs2`.
    pub fn as_str(self) -> &'static str {
        self.kind().as_str()
    }

    fn word(self) -> &'static str {
        match self {
            ClusterFsKind::Ocfs2 => "Ocfs2",
            ClusterFsKind::Gfs2 => "Gfs2",
        }
    }
}

/// One systemd unit a step enabled or started, as journaled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitState {
    /// The unit.
    pub unit: String,
    /// Whether the step enabled it.
    pub enabled: bool,
    /// Whether the step started it.
    pub started: bool,
}

/// The corosync and DLM units GFS2 needs.
pub const GFS2_UNITS: [&str; 2] = ["corosync.service", "dlm.service"];

/// The ONTAP disk under a block datastore, as journaled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum DiskRef {
    /// A LUN (iSCSI, FC): found on hosts by its serial (multipath WWID).
    Lun {
        /// SVM.
        svm: String,
        /// Path name, `/vol/<volume>/lun0`.
        path: String,
    },
    /// An NVMe namespace: found on hosts by its UUID.
    Namespace {
        /// SVM.
        svm: String,
        /// Path name, `/vol/<volume>/ns0`.
        path: String,
    },
}

impl DiskRef {
    /// The path name.
    pub fn path(&self) -> &str {
        match self {
            DiskRef::Lun { path, .. } | DiskRef::Namespace { path, .. } => path,
        }
    }

    fn placeholder(&self) -> String {
        match self {
            DiskRef::Lun { path, .. } => format!("/dev/mapper/<NAA WWID of {path}>"),
            DiskRef::Namespace { path, .. } => {
                format!("/dev/disk/by-id/nvme-uuid.<UUID of {path}>")
            }
        }
    }
}

/// How a host's SCSI layer reaches a LUN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ScsiPath {
    /// iSCSI sessions to the SVM's target.
    Iscsi {
        /// The SVM's target IQN.
        target: String,
    },
    /// FC remote ports of the SVM's FC LIFs.
    Fc {
        /// Their WWPNs.
        targets: Vec<String>,
    },
}

/// One node of the o2cb cluster, as journaled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterNode {
    /// The node's name (the host's name).
    pub name: String,
    /// Its number, 0 to 254.
    pub number: u8,
    /// Its interconnect address.
    pub address: IpAddr,
}

/// One step of the block workflows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
#[non_exhaustive]
pub enum BlockStep {
    /// Creates the volume that holds the LUN.
    CreateVolume {
        /// Cluster (lock key).
        cluster: String,
        /// SVM.
        svm: String,
        /// The volume.
        volume: VolumeRequest,
        /// Ownership token, written as the volume comment.
        token: String,
    },
    /// Creates the LUN.
    CreateLun {
        /// Cluster (lock key).
        cluster: String,
        /// SVM.
        svm: String,
        /// Path name, `/vol/<volume>/lun0`.
        lun: String,
        /// Size in bytes.
        size: u64,
        /// Space-reserved (thick).
        reserved: bool,
        /// Ownership token, written as the LUN comment.
        token: String,
    },
    /// Creates the igroup with every host's initiator.
    CreateIgroup {
        /// Cluster (lock key).
        cluster: String,
        /// SVM.
        svm: String,
        /// Igroup name.
        igroup: String,
        /// `iscsi` or `fcp`.
        protocol: BlockProtocol,
        /// Initiators (IQNs or WWPNs).
        initiators: Vec<String>,
        /// Ownership token, written as the igroup comment.
        token: String,
    },
    /// Creates the NVMe namespace.
    CreateNamespace {
        /// Cluster (lock key).
        cluster: String,
        /// SVM.
        svm: String,
        /// Path name, `/vol/<volume>/ns0`.
        namespace: String,
        /// Size in bytes.
        size: u64,
        /// Ownership token, written as the namespace comment.
        token: String,
    },
    /// Creates the NVMe subsystem with every host's NQN.
    CreateSubsystem {
        /// Cluster (lock key).
        cluster: String,
        /// SVM.
        svm: String,
        /// Subsystem name.
        subsystem: String,
        /// Host NQNs.
        hosts: Vec<String>,
        /// Ownership token, written as the subsystem comment.
        token: String,
    },
    /// Maps the namespace to the subsystem.
    MapNamespace {
        /// Cluster (lock key).
        cluster: String,
        /// SVM.
        svm: String,
        /// Namespace path name.
        namespace: String,
        /// Subsystem name.
        subsystem: String,
    },
    /// Connects to the subsystem through every NVMe/TCP LIF.
    ConnectNvme {
        /// The host.
        host: String,
        /// SVM.
        svm: String,
        /// Subsystem name (its NQN is read from ONTAP).
        subsystem: String,
        /// The LIF addresses.
        addresses: Vec<String>,
    },
    /// Waits for the namespace's block device (native multipath head) by UUID.
    AttachNamespace {
        /// The host.
        host: String,
        /// SVM.
        svm: String,
        /// Namespace path name.
        namespace: String,
        /// How long to wait, in seconds.
        wait_secs: u64,
    },
    /// Maps the LUN to the igroup.
    MapLun {
        /// Cluster (lock key).
        cluster: String,
        /// SVM.
        svm: String,
        /// LUN path name.
        lun: String,
        /// Igroup name.
        igroup: String,
    },
    /// Writes the NetApp multipath drop-in and tells multipathd.
    ConfigureMultipath {
        /// The host.
        host: String,
    },
    /// Creates node records and logs in to every portal of the SVM's target.
    ConnectIscsi {
        /// The host.
        host: String,
        /// The SVM's target IQN.
        target: String,
        /// `address:port` of each iSCSI LIF.
        portals: Vec<String>,
    },
    /// Scans the mapped LUN and waits for its multipath map.
    AttachLun {
        /// The host.
        host: String,
        /// SVM.
        svm: String,
        /// LUN path name.
        lun: String,
        /// Igroup name (to find the LUN id).
        igroup: String,
        /// How the host reaches the LUN.
        path: ScsiPath,
        /// How long to wait for the paths and the map, in seconds.
        wait_secs: u64,
    },
    /// Writes `cluster.conf` (every node) and the o2cb boot settings.
    ConfigureO2cb {
        /// The host.
        host: String,
        /// o2cb cluster name.
        cluster: String,
        /// Every node.
        nodes: Vec<ClusterNode>,
    },
    /// Brings the o2cb cluster online.
    RegisterCluster {
        /// The host.
        host: String,
        /// o2cb cluster name.
        cluster: String,
    },
    /// Makes the OCFS2 file system (one host only).
    FormatOcfs2 {
        /// The host.
        host: String,
        /// The disk.
        disk: DiskRef,
        /// File-system label.
        label: String,
        /// o2cb cluster name.
        cluster: String,
        /// Node slots.
        slots: u16,
    },
    /// Writes `corosync.conf` (every node) and `dlm.conf` for GFS2.
    ConfigureCorosync {
        /// The host.
        host: String,
        /// Cluster name (the first half of the lock table).
        cluster: String,
        /// Every node (corosync node id = number + 1).
        nodes: Vec<ClusterNode>,
    },
    /// Enables and starts corosync and DLM.
    StartClusterServices {
        /// The host.
        host: String,
    },
    /// Makes the GFS2 file system with `lock_dlm` (one host only).
    FormatGfs2 {
        /// The host.
        host: String,
        /// The disk.
        disk: DiskRef,
        /// `cluster:fsname`.
        lock_table: String,
        /// Journals (at least one per host).
        journals: u16,
    },
    /// Stops and disables corosync and DLM when no GFS2 file system is mounted and
    /// `corosync.conf` is exactly what the attach wrote.
    StopClusterServices {
        /// The host.
        host: String,
        /// Cluster name.
        cluster: String,
        /// Every node.
        nodes: Vec<ClusterNode>,
    },
    /// Removes `corosync.conf` and `dlm.conf` when they hold exactly what the attach wrote
    /// and no GFS2 file system is mounted.
    RemoveCorosyncConfig {
        /// The host.
        host: String,
        /// Cluster name.
        cluster: String,
        /// Every node.
        nodes: Vec<ClusterNode>,
    },
    /// Gives the OCFS2 volume on a FlexClone's disk a new UUID (`tunefs.ocfs2
    /// --cloned-volume`) and the datastore's label, so it mounts beside its parent (one
    /// host only). It has no undo: the parent's UUID must not come back.
    ReuuidOcfs2 {
        /// The host.
        host: String,
        /// The clone's disk.
        disk: DiskRef,
        /// The parent volume's OCFS2 UUID.
        parent_uuid: String,
        /// The label to set.
        label: String,
    },
    /// Mounts the file system now.
    MountOcfs2 {
        /// The host.
        host: String,
        /// The disk.
        disk: DiskRef,
        /// Mount point.
        target: PathBuf,
        /// The file system (OCFS2 when absent from an older journal).
        #[serde(default)]
        fs: ClusterFsKind,
    },
    /// Adds the owned `/etc/fstab` line.
    PersistFstab {
        /// The host.
        host: String,
        /// Owner id of the line.
        id: String,
        /// The disk.
        disk: DiskRef,
        /// Mount point.
        target: PathBuf,
        /// The file system (OCFS2 when absent from an older journal).
        #[serde(default)]
        fs: ClusterFsKind,
    },
    /// Defines, builds, starts and autostarts the libvirt pool.
    DefinePool {
        /// The host.
        host: String,
        /// The pool.
        pool: PoolRequest,
    },
    /// Stops and undefines the libvirt pool (data kept).
    RemovePool {
        /// The host.
        host: String,
        /// The pool.
        pool: PoolRequest,
    },
    /// Removes the owned `/etc/fstab` line.
    RemoveFstab {
        /// The host.
        host: String,
        /// Owner id of the line.
        id: String,
        /// The disk.
        disk: DiskRef,
        /// Mount point.
        target: PathBuf,
        /// The file system (OCFS2 when absent from an older journal).
        #[serde(default)]
        fs: ClusterFsKind,
    },
    /// Unmounts the file system.
    UnmountOcfs2 {
        /// The host.
        host: String,
        /// The disk.
        disk: DiskRef,
        /// Mount point.
        target: PathBuf,
        /// The file system (OCFS2 when absent from an older journal).
        #[serde(default)]
        fs: ClusterFsKind,
    },
    /// Flushes and removes the LUN's multipath map and SCSI paths.
    DetachLun {
        /// The host.
        host: String,
        /// SVM.
        svm: String,
        /// LUN path name.
        lun: String,
        /// Igroup name.
        igroup: String,
        /// How the host reaches the LUN.
        path: ScsiPath,
        /// How long an undo waits for the paths and the map, in seconds.
        wait_secs: u64,
    },
    /// Disconnects the controllers of the subsystem whose namespaces are unused.
    DisconnectNvme {
        /// The host.
        host: String,
        /// SVM.
        svm: String,
        /// Subsystem name.
        subsystem: String,
        /// The LIF addresses.
        addresses: Vec<String>,
    },
    /// Logs out of the target's sessions that have no device left; removes their records.
    DisconnectIscsi {
        /// The host.
        host: String,
        /// The SVM's target IQN.
        target: String,
        /// `address:port` of each iSCSI LIF.
        portals: Vec<String>,
    },
    /// Takes the o2cb cluster offline unless an OCFS2 file system is still mounted.
    UnregisterCluster {
        /// The host.
        host: String,
        /// o2cb cluster name.
        cluster: String,
    },
    /// Removes `cluster.conf` and the o2cb settings when they hold exactly what the attach
    /// wrote and no OCFS2 file system is mounted.
    RemoveO2cbConfig {
        /// The host.
        host: String,
        /// o2cb cluster name.
        cluster: String,
        /// Every node.
        nodes: Vec<ClusterNode>,
    },
    /// Removes the multipath drop-in when no NetApp map remains.
    RemoveMultipathConfig {
        /// The host.
        host: String,
    },
    /// Unmaps the LUN from the igroup.
    UnmapLun {
        /// Cluster (lock key).
        cluster: String,
        /// SVM.
        svm: String,
        /// LUN path name.
        lun: String,
        /// Igroup name.
        igroup: String,
    },
    /// Deletes the igroup.
    DeleteIgroup {
        /// Cluster (lock key).
        cluster: String,
        /// SVM.
        svm: String,
        /// Igroup name.
        igroup: String,
        /// `iscsi` or `fcp`.
        protocol: BlockProtocol,
        /// Initiators (to create it again on undo).
        initiators: Vec<String>,
    },
    /// Unmaps the namespace from the subsystem.
    UnmapNamespace {
        /// Cluster (lock key).
        cluster: String,
        /// SVM.
        svm: String,
        /// Namespace path name.
        namespace: String,
        /// Subsystem name.
        subsystem: String,
    },
    /// Deletes the subsystem.
    DeleteSubsystem {
        /// Cluster (lock key).
        cluster: String,
        /// SVM.
        svm: String,
        /// Subsystem name.
        subsystem: String,
        /// Host NQNs (to create it again on undo).
        hosts: Vec<String>,
    },
    /// Deletes the namespace and its data: cannot be undone.
    DeleteNamespace {
        /// Cluster (lock key).
        cluster: String,
        /// SVM.
        svm: String,
        /// Namespace path name.
        namespace: String,
    },
    /// Deletes the LUN and its data: cannot be undone.
    DeleteLun {
        /// Cluster (lock key).
        cluster: String,
        /// SVM.
        svm: String,
        /// LUN path name.
        lun: String,
    },
    /// Deletes the volume and its data: cannot be undone.
    DeleteVolume {
        /// Cluster (lock key).
        cluster: String,
        /// SVM.
        svm: String,
        /// Volume name.
        name: String,
    },
}

/// The state of one file before a step rewrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileBefore {
    /// Whether the step changed the file.
    pub changed: bool,
    /// Its text before (`None`: it did not exist).
    pub previous: Option<String>,
}

/// What a [`BlockStep`] hands to its undo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum BlockOutput {
    /// Nothing beyond the step itself.
    Nothing,
    /// The UUID of an ONTAP object made.
    Uuid {
        /// UUID.
        uuid: String,
    },
    /// The multipath configuration before.
    Multipath {
        /// Whether `/etc/multipath.conf` was created.
        created_main: bool,
        /// The drop-in before (`None`: it did not exist).
        previous_dropin: Option<String>,
    },
    /// What the iSCSI connect did per portal.
    Iscsi {
        /// Portals whose node record was created.
        created_records: Vec<String>,
        /// Portals logged in to.
        logins: Vec<String>,
        /// Settings changed on pre-existing records: portal, name, previous value.
        previous_settings: Vec<(String, String, String)>,
    },
    /// The LUN's device.
    Device {
        /// The LUN serial.
        serial: String,
        /// The multipath map (`dm-N`).
        dm: String,
    },
    /// The systemd units a step enabled or started.
    Units {
        /// The units, in the order they were handled.
        units: Vec<UnitState>,
    },
    /// The NVMe controllers a connect created.
    Controllers {
        /// `nvmeN`, in the order they appeared.
        controllers: Vec<String>,
    },
    /// Configuration files before.
    Files {
        /// `cluster.conf`.
        conf: FileBefore,
        /// The o2cb settings file.
        defaults: FileBefore,
    },
    /// A mount made now.
    Mount {
        /// Whether the mount point was created.
        created_dir: bool,
    },
    /// An owned file line.
    Line {
        /// The owned line before (replaced), if any.
        previous: Option<String>,
    },
}

fn cfs_err(host: &str, operation: String) -> impl FnOnce(cluster_fs::Error) -> StepError {
    let host = host.to_owned();
    move |source| StepError::ClusterFs {
        host,
        operation,
        source: Box::new(source),
    }
}

fn applied(changed: bool, output: BlockOutput) -> Applied<BlockOutput> {
    Applied { changed, output }
}

fn from_nfs(a: Applied<NfsOutput>) -> Applied<BlockOutput> {
    let output = match a.output {
        NfsOutput::Line { previous } => BlockOutput::Line { previous },
        NfsOutput::Mount { created_dir } => BlockOutput::Mount { created_dir },
        _ => BlockOutput::Nothing,
    };
    applied(a.changed, output)
}

fn cluster_host(host: &Host) -> ClusterHost<std::sync::Arc<dyn host_storage::Runner>> {
    ClusterHost::new(host.runner())
        .with_root(host.host_root().clone())
        .with_mountinfo(host.mountinfo_path())
}

fn iscsi(host: &Host) -> Iscsi<std::sync::Arc<dyn host_storage::Runner>> {
    Iscsi::new(host.runner(), host.host_root().clone())
}

fn parse_portal(host: &str, p: &str) -> Result<Portal, StepError> {
    let parsed = p.rsplit_once(':').and_then(|(addr, port)| {
        let addr = addr
            .strip_prefix('[')
            .and_then(|a| a.strip_suffix(']'))
            .unwrap_or(addr);
        Some(Portal {
            address: addr.to_owned(),
            port: port.parse().ok()?,
        })
    });
    parsed
        .filter(|x| !x.address.is_empty())
        .ok_or_else(|| StepError::Host {
            host: host.to_owned(),
            operation: format!("parse portal {p}"),
            source: Box::new(host_storage::Error::Invalid {
                kind: host_storage::ValueKind::HostName,
                value: p.to_owned(),
                reason: "not ADDRESS:PORT",
            }),
        })
}

// ---- ONTAP lookups ----

/// [`ontap_steps::create_once`]'s result as a step's: the object's UUID as output.
fn uuid_output(a: Applied<String>) -> Applied<BlockOutput> {
    applied(a.changed, BlockOutput::Uuid { uuid: a.output })
}

/// The volume `svm/name` as [`Owned`].
async fn find_owned_volume(env: &Env, svm: &str, name: &str) -> Result<Option<Owned>, StepError> {
    ontap_steps::owned_volume(env, svm, name, format!("get volume {svm}/{name}")).await
}

/// A LUN's UUID, serial and comment.
struct LunFacts {
    uuid: String,
    serial: Option<String>,
    comment: Option<String>,
}

async fn find_lun(env: &Env, svm: &str, lun: &str) -> Result<Option<LunFacts>, StepError> {
    let found = env
        .ontap()
        .luns()
        .find(
            &Query::new()
                .filter("svm.name", svm)
                .filter("name", lun)
                .fields(["uuid", "name", "serial_number", "comment"]),
        )
        .await
        .map_err(ontap_err(format!("get LUN {svm}:{lun}")))?;
    Ok(found.map(|l| LunFacts {
        uuid: l.uuid.unwrap_or_default(),
        serial: l.serial_number,
        comment: l.comment,
    }))
}

/// The LUN `svm:lun` as [`Owned`].
async fn owned_lun(env: &Env, svm: &str, lun: &str) -> Result<Option<Owned>, StepError> {
    Ok(find_lun(env, svm, lun).await?.map(|f| Owned {
        uuid: Some(f.uuid),
        comment: f.comment,
    }))
}

async fn lun_serial(env: &Env, svm: &str, lun: &str) -> Result<LunSerial, StepError> {
    let op = || format!("get serial of LUN {svm}:{lun}");
    let facts = find_lun(env, svm, lun)
        .await?
        .ok_or_else(|| StepError::MissingField {
            operation: op(),
            field: "record",
        })?;
    let serial = facts.serial.ok_or_else(|| StepError::MissingField {
        operation: op(),
        field: "serial_number",
    })?;
    LunSerial::parse(&serial).map_err(host_err("", op()))
}

async fn find_igroup(
    env: &Env,
    svm: &str,
    igroup: &str,
) -> Result<Option<ontap_client::models::Igroup>, StepError> {
    env.ontap()
        .igroups()
        .find(
            &Query::new()
                .filter("svm.name", svm)
                .filter("name", igroup)
                .fields(["uuid", "name", "comment", "initiators"]),
        )
        .await
        .map_err(ontap_err(format!("get igroup {svm}/{igroup}")))
}

/// The igroup `svm/igroup` as [`Owned`].
async fn owned_igroup(env: &Env, svm: &str, igroup: &str) -> Result<Option<Owned>, StepError> {
    Ok(find_igroup(env, svm, igroup).await?.map(|g| Owned {
        uuid: g.uuid,
        comment: g.comment,
    }))
}

/// The LUN id the map gave `lun` in `igroup`, if mapped.
async fn lun_id(env: &Env, svm: &str, lun: &str, igroup: &str) -> Result<Option<u64>, StepError> {
    let maps = env
        .ontap()
        .lun_maps()
        .list_all(
            &Query::new()
                .filter("svm.name", svm)
                .filter("lun.name", lun)
                .filter("igroup.name", igroup)
                .fields(["logical_unit_number", "lun", "igroup"]),
        )
        .await
        .map_err(ontap_err(format!("get map of {svm}:{lun} to {igroup}")))?;
    Ok(maps
        .iter()
        .find(|m| {
            m.lun.as_ref().and_then(|l| l.name.as_deref()) == Some(lun)
                && m.igroup.as_ref().and_then(|g| g.name.as_deref()) == Some(igroup)
        })
        .and_then(|m| m.logical_unit_number)
        .map(u64::from))
}

async fn create_igroup(
    env: &Env,
    svm: &str,
    igroup: &str,
    protocol: BlockProtocol,
    initiators: &[String],
    comment: Option<&str>,
) -> Result<Applied<BlockOutput>, StepError> {
    let proto = match protocol {
        BlockProtocol::Fcp => IgroupProtocol::Fcp,
        _ => IgroupProtocol::Iscsi,
    };
    let mut body = IgroupCreate::new(igroup, svm, proto, IgroupOsType::Linux);
    for i in initiators {
        body = body.initiator(i.as_str());
    }
    if let Some(c) = comment {
        body = body.comment(c);
    }
    let op = format!("create igroup {svm}/{igroup}");
    let find = || owned_igroup(env, svm, igroup);
    let igroups = env.ontap().igroups();
    create_once(op, comment, find, igroups.create(&body))
        .await
        .map(uuid_output)
}

async fn delete_igroup(
    env: &Env,
    svm: &str,
    igroup: &str,
    token: Option<&str>,
) -> Result<bool, StepError> {
    delete_owned(
        None,
        token,
        owned_igroup(env, svm, igroup),
        |uuid| async move { env.ontap().igroups().delete(&uuid).await },
        format!("delete igroup {svm}/{igroup}"),
    )
    .await
}

async fn map_lun(
    env: &Env,
    svm: &str,
    lun: &str,
    igroup: &str,
) -> Result<Applied<BlockOutput>, StepError> {
    if lun_id(env, svm, lun, igroup).await?.is_some() {
        return Ok(applied(false, BlockOutput::Nothing));
    }
    let id = free_lun_id(env, svm, igroup).await?;
    env.ontap()
        .lun_maps()
        .create(&LunMapCreate::new(svm, lun, igroup).logical_unit_number(id))
        .await
        .map_err(ontap_err(format!("map LUN {svm}:{lun} to {igroup}")))?;
    Ok(applied(true, BlockOutput::Nothing))
}

/// The lowest LUN id no initiator of `igroup` already sees through any igroup of the SVM.
/// A host whose IQN is in several igroups (one per datastore) must never be shown two LUNs
/// under one id, so the id is chosen here rather than left to per-igroup numbering.
async fn free_lun_id(env: &Env, svm: &str, igroup: &str) -> Result<u32, StepError> {
    let op = || format!("choose a LUN id for {svm}/{igroup}");
    let groups = env
        .ontap()
        .igroups()
        .list_all(
            &Query::new()
                .filter("svm.name", svm)
                .fields(["name", "initiators"]),
        )
        .await
        .map_err(ontap_err(op()))?;
    let names = |g: &ontap_client::models::Igroup| -> Vec<String> {
        g.initiators
            .iter()
            .flatten()
            .filter_map(|i| i.name.as_deref())
            .map(str::to_ascii_lowercase)
            .collect()
    };
    let ours: Vec<String> = groups
        .iter()
        .find(|g| g.name.as_deref() == Some(igroup))
        .map(names)
        .unwrap_or_default();
    let sharing: Vec<String> = groups
        .iter()
        .filter(|g| names(g).iter().any(|i| ours.contains(i)))
        .filter_map(|g| g.name.clone())
        .collect();
    let maps = env
        .ontap()
        .lun_maps()
        .list_all(
            &Query::new()
                .filter("svm.name", svm)
                .fields(["igroup", "logical_unit_number"]),
        )
        .await
        .map_err(ontap_err(op()))?;
    let used: std::collections::BTreeSet<u32> = maps
        .iter()
        .filter(|m| {
            m.igroup
                .as_ref()
                .and_then(|g| g.name.as_ref())
                .is_some_and(|n| sharing.contains(n))
        })
        .filter_map(|m| m.logical_unit_number)
        .collect();
    Ok((0..).find(|i| !used.contains(i)).unwrap_or(0))
}

async fn unmap_lun(env: &Env, svm: &str, lun: &str, igroup: &str) -> Result<bool, StepError> {
    if lun_id(env, svm, lun, igroup).await?.is_none() {
        return Ok(false);
    }
    let op = || format!("unmap LUN {svm}:{lun} from {igroup}");
    let lun_uuid = find_lun(env, svm, lun)
        .await?
        .map(|l| l.uuid)
        .unwrap_or_default();
    let ig_uuid = find_igroup(env, svm, igroup)
        .await?
        .and_then(|g| g.uuid)
        .unwrap_or_default();
    gone_ok(env.ontap().lun_maps().unmap(&lun_uuid, &ig_uuid).await).map_err(ontap_err(op()))
}

// ---- host steps ----

fn multipath_drop_in(host: &Host) -> Result<PathBuf, StepError> {
    Ok(MultipathConfig::new(host.host_root().clone())
        .config_dir()
        .map_err(host_err(host.name(), "read multipath config_dir".into()))?
        .join(DROPIN_NAME))
}

async fn configure_multipath(host: &Host) -> Result<Applied<BlockOutput>, StepError> {
    let err = || host_err(host.name(), "write multipath drop-in".into());
    let undo = MultipathConfig::new(host.host_root().clone())
        .ensure()
        .map_err(err())?;
    if undo.change.is_changed() {
        let mp = Multipath::new(host.runner(), host.host_root().clone());
        if mp.daemon_running().await.map_err(err())? {
            mp.reconfigure().await.map_err(err())?;
        }
    }
    Ok(applied(
        undo.change.is_changed(),
        BlockOutput::Multipath {
            created_main: undo.created_main,
            previous_dropin: undo.previous_dropin,
        },
    ))
}

async fn unconfigure_multipath(
    host: &Host,
    output: Option<&BlockOutput>,
) -> Result<bool, StepError> {
    let err = || host_err(host.name(), "restore multipath configuration".into());
    let conf = MultipathConfig::new(host.host_root().clone());
    let dropin = multipath_drop_in(host)?;
    let undo = match output {
        Some(BlockOutput::Multipath {
            created_main,
            previous_dropin,
        }) => MultipathConfUndo {
            created_main: *created_main,
            dropin,
            previous_dropin: previous_dropin.clone(),
            change: Change::Changed,
        },
        _ => {
            // Unknown what was there before: remove the drop-in only when it is kvmstor's
            // and no NetApp map (another datastore's LUN) remains.
            let sys = Sysfs::new(host.host_root().clone());
            for dm in sys.block_devices().map_err(err())? {
                if !dm.starts_with("dm-") {
                    continue;
                }
                if let Some(uuid) = sys.read(&format!("block/{dm}/dm/uuid")).map_err(err())? {
                    if uuid.starts_with("mpath-3600a0980") {
                        return Ok(false);
                    }
                }
            }
            let main = host.host_root().path("/etc/multipath.conf");
            let main_ours =
                std::fs::read_to_string(&main).ok().as_deref() == Some(MINIMAL_MAIN_CONF);
            let text = std::fs::read_to_string(&dropin).ok();
            if !text.is_some_and(|t| t.starts_with(host_storage::files::MARKER_PREFIX)) {
                return Ok(false);
            }
            MultipathConfUndo {
                created_main: main_ours,
                dropin,
                previous_dropin: None,
                change: Change::Changed,
            }
        }
    };
    Ok(conf.undo(&undo).map_err(err())?.is_changed())
}

fn iscsi_target(host: &str, target: &str, portals: &[String]) -> Result<IscsiTarget, StepError> {
    let op = || format!("iSCSI target {target}");
    let iqn = Iqn::parse(target).map_err(host_err(host, op()))?;
    let portals = portals
        .iter()
        .map(|p| Ok((parse_portal(host, p)?, None)))
        .collect::<Result<Vec<_>, StepError>>()?;
    IscsiTarget::new(iqn, portals).map_err(host_err(host, op()))
}

async fn connect_iscsi(
    host: &Host,
    target: &str,
    portals: &[String],
) -> Result<Applied<BlockOutput>, StepError> {
    let t = iscsi_target(host.name(), target, portals)?;
    let undo = iscsi(host)
        .connect(&t, &NodeSettings::default(), None)
        .await
        .map_err(host_err(host.name(), format!("connect to {target}")))?;
    let output = BlockOutput::Iscsi {
        created_records: undo
            .nodes
            .iter()
            .filter(|n| n.created)
            .map(|n| n.portal.to_string())
            .collect(),
        logins: undo
            .logins
            .iter()
            .filter(|l| l.change.is_changed())
            .map(|l| l.portal.to_string())
            .collect(),
        previous_settings: undo
            .nodes
            .iter()
            .flat_map(|n| {
                n.previous_settings
                    .iter()
                    .map(|(k, v)| (n.portal.to_string(), k.clone(), v.clone()))
            })
            .collect(),
    };
    Ok(applied(undo.change.is_changed(), output))
}

/// Logs out and removes records. With `output` `None` (unknown what the connect did), every
/// portal counts as logged in and created by kvmstor; sessions that still carry devices
/// (another datastore's LUN) are kept either way.
async fn disconnect_iscsi(
    host: &Host,
    target: &str,
    portals: &[String],
    output: Option<&BlockOutput>,
) -> Result<bool, StepError> {
    let t = iscsi_target(host.name(), target, portals)?;
    let (created, logins, previous) = match output {
        Some(BlockOutput::Iscsi {
            created_records,
            logins,
            previous_settings,
        }) => (
            created_records.clone(),
            logins.clone(),
            previous_settings.clone(),
        ),
        _ => (portals.to_vec(), portals.to_vec(), Vec::new()),
    };
    let mut undo = ConnectUndo {
        nodes: Vec::new(),
        logins: Vec::new(),
        change: Change::Changed,
    };
    for (portal, _) in &t.portals {
        let key = portal.to_string();
        let settings: Vec<(String, String)> = previous
            .iter()
            .filter(|(p, _, _)| *p == key)
            .map(|(_, k, v)| (k.clone(), v.clone()))
            .collect();
        let was_created = created.contains(&key);
        undo.nodes.push(NodeUndo {
            target: t.iqn.clone(),
            portal: portal.clone(),
            created: was_created,
            change: Change::from(was_created || !settings.is_empty()),
            previous_settings: settings,
            previous_record: None,
        });
        undo.logins.push(LoginUndo {
            target: t.iqn.clone(),
            portal: portal.clone(),
            change: Change::from(logins.contains(&key)),
        });
    }
    let done = iscsi(host)
        .disconnect(&undo)
        .await
        .map_err(host_err(host.name(), format!("disconnect from {target}")))?;
    Ok(done.change.is_changed())
}

async fn attach_lun(
    env: &Env,
    host: &Host,
    svm: &str,
    lun: &str,
    igroup: &str,
    path: &ScsiPath,
    wait_secs: u64,
) -> Result<Applied<BlockOutput>, StepError> {
    let timeout = Duration::from_secs(wait_secs);
    let serial = lun_serial(env, svm, lun).await?;
    let id = lun_id(env, svm, lun, igroup)
        .await?
        .ok_or_else(|| StepError::MissingField {
            operation: format!("get map of {svm}:{lun} to {igroup}"),
            field: "logical_unit_number",
        })?;
    let err = || host_err(host.name(), format!("attach LUN {lun} (serial {serial})"));
    let mp = Multipath::new(host.runner(), host.host_root().clone());
    let before = mp.find_lun_map(&serial).map_err(err())?;
    match path {
        ScsiPath::Iscsi { target } => {
            let iqn = Iqn::parse(target).map_err(err())?;
            iscsi(host)
                .attach_lun(&iqn, id, &serial, timeout)
                .await
                .map_err(err())?;
        }
        ScsiPath::Fc { targets } => {
            let wwpns = targets
                .iter()
                .map(|t| Wwpn::parse(t))
                .collect::<host_storage::Result<Vec<_>>>()
                .map_err(err())?;
            let scanned = Fc::new(host.host_root().clone())
                .scan_lun(&wwpns, id)
                .map_err(err())?;
            if scanned.is_empty() {
                // No online remote port of the SVM: a zoning problem, said plainly.
                return Err(err()(host_storage::Error::WaitTimeout {
                    what: format!("an online FC remote port among {}", targets.join(",")),
                    after: Duration::ZERO,
                }));
            }
        }
    }
    let found = wait_lun_map(&mp, &serial, timeout).await.map_err(err())?;
    Ok(applied(
        before.is_none(),
        BlockOutput::Device {
            serial: serial.as_str().to_owned(),
            dm: found.dm,
        },
    ))
}

/// Waits for the LUN's multipath map. It is found by the NAA WWID ONTAP derives from the
/// serial or, when a target reports another designator (LIO behind the simulator's kernel
/// backend names LUNs `36001405…`), by the unit serial of its paths: the serial is the
/// LUN's identity either way.
async fn wait_lun_map<R: host_storage::Runner>(
    mp: &Multipath<R>,
    serial: &LunSerial,
    timeout: Duration,
) -> host_storage::Result<host_storage::multipath::MapRef> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(map) = mp.find_lun_map(serial)? {
            return Ok(map);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(host_storage::Error::WaitTimeout {
                what: format!("multipath map of LUN serial {serial}"),
                after: timeout,
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The LUN's multipath map on `host`, if there (see [`wait_lun_map`]).
async fn host_lun_map(
    env: &Env,
    host: &Host,
    svm: &str,
    lun: &str,
) -> Result<(LunSerial, Option<host_storage::multipath::MapRef>), StepError> {
    let serial = lun_serial(env, svm, lun).await?;
    let map = Multipath::new(host.runner(), host.host_root().clone())
        .find_lun_map(&serial)
        .map_err(host_err(
            host.name(),
            format!("find the multipath map of LUN {lun} (serial {serial})"),
        ))?;
    Ok((serial, map))
}

async fn detach_lun(
    env: &Env,
    host: &Host,
    svm: &str,
    lun: &str,
    output: Option<&BlockOutput>,
) -> Result<bool, StepError> {
    let serial = match output {
        Some(BlockOutput::Device { serial, .. }) => LunSerial::parse(serial)
            .map_err(host_err(host.name(), format!("LUN serial {serial}")))?,
        _ => match find_lun(env, svm, lun).await? {
            Some(LunFacts {
                serial: Some(s), ..
            }) => LunSerial::parse(&s).map_err(host_err(host.name(), format!("LUN serial {s}")))?,
            // No LUN, no serial: nothing of it can be on the host.
            _ => return Ok(false),
        },
    };
    let removed = Multipath::new(host.runner(), host.host_root().clone())
        .remove_lun(&serial)
        .await
        .map_err(host_err(
            host.name(),
            format!("remove devices of LUN {lun} (serial {serial})"),
        ))?;
    Ok(removed.change.is_changed())
}

fn ocfs2_conf(
    cluster: &str,
    nodes: &[ClusterNode],
) -> Result<(ClusterName, ClusterConf), cluster_fs::Error> {
    let cl = ClusterName::parse(cluster)?;
    let mut conf = ClusterConf::default();
    let _ = conf.add_cluster(Ocfs2Cluster::new(cl.clone(), HeartbeatMode::Local))?;
    for n in nodes {
        let _ = conf.add_node(Ocfs2Node::new(
            cl.clone(),
            NodeName::parse(&n.name)?,
            n.number,
            n.address,
        )?)?;
    }
    Ok((cl, conf))
}

fn configure_o2cb(
    host: &Host,
    cluster: &str,
    nodes: &[ClusterNode],
) -> Result<Applied<BlockOutput>, StepError> {
    let err = || {
        cfs_err(
            host.name(),
            format!("write o2cb configuration for {cluster}"),
        )
    };
    let (cl, conf) = ocfs2_conf(cluster, nodes).map_err(err())?;
    let ch = cluster_host(host);
    let c = ch.write_cluster_conf(&conf).map_err(err())?;
    let d = ch
        .write_o2cb_defaults(&O2cbDefaults::enabled(cl))
        .map_err(err())?;
    Ok(files_written(c, d))
}

/// The output of a step that wrote a cluster configuration file and its companion
/// (o2cb's `cluster.conf` and defaults, or `corosync.conf` and `dlm.conf`): changed when
/// either changed, with what each held before.
fn files_written(
    conf: cluster_fs::host::FileUndo,
    defaults: cluster_fs::host::FileUndo,
) -> Applied<BlockOutput> {
    applied(
        conf.change.is_changed() || defaults.change.is_changed(),
        BlockOutput::Files {
            conf: FileBefore {
                changed: conf.change.is_changed(),
                previous: conf.previous,
            },
            defaults: FileBefore {
                changed: defaults.change.is_changed(),
                previous: defaults.previous,
            },
        },
    )
}

/// Puts each file back as `before` says it was (the undo of [`files_written`]), in order;
/// whether any changed.
fn restore_files<E>(
    files: [(PathBuf, FileBefore); 2],
    err: impl Fn() -> E,
) -> Result<bool, StepError>
where
    E: FnOnce(cluster_fs::Error) -> StepError,
{
    let mut changed = false;
    for (path, before) in files {
        let f = cluster_fs::host::FileUndo {
            path,
            previous: before.previous,
            change: Change::from(before.changed),
        };
        changed |= cluster_fs::host::undo_file(&f).map_err(err())?.is_changed();
    }
    Ok(changed)
}

/// Whether a file system of type `kind` is mounted on the host.
fn mounted_kind(host: &Host, kind: &str) -> bool {
    let needle = format!(" - {kind} ");
    std::fs::read_to_string(host.mountinfo_path())
        .unwrap_or_default()
        .lines()
        .any(|l| l.contains(&needle))
}

// ---- GFS2: corosync and DLM ----

fn corosync_conf(cluster: &str, nodes: &[ClusterNode]) -> Result<CorosyncConf, cluster_fs::Error> {
    let mut conf = CorosyncConf::new(ClusterName::parse(cluster)?);
    for n in nodes {
        let _ = conf.add_node(CorosyncNode::new(
            u32::from(n.number) + 1,
            NodeName::parse(&n.name)?,
            n.address,
        )?)?;
    }
    Ok(conf)
}

fn configure_corosync(
    host: &Host,
    cluster: &str,
    nodes: &[ClusterNode],
) -> Result<Applied<BlockOutput>, StepError> {
    let err = || {
        cfs_err(
            host.name(),
            format!("write corosync configuration for {cluster}"),
        )
    };
    let conf = corosync_conf(cluster, nodes).map_err(err())?;
    let ch = cluster_host(host);
    let c = ch.write_corosync(&conf).map_err(err())?;
    let d = ch.write_dlm_conf(&DlmConf::default()).map_err(err())?;
    Ok(files_written(c, d))
}

/// Restores `corosync.conf` and `dlm.conf`. With `output` `None`, removes them only when
/// they hold exactly what [`configure_corosync`] writes and no GFS2 is mounted.
fn unconfigure_corosync(
    host: &Host,
    cluster: &str,
    nodes: &[ClusterNode],
    output: Option<&BlockOutput>,
) -> Result<bool, StepError> {
    let err = || {
        cfs_err(
            host.name(),
            format!("restore corosync configuration for {cluster}"),
        )
    };
    let conf_path = host.host_root().path(COROSYNC_CONF);
    let dlm_path = host.host_root().path(DLM_CONF);
    let (conf, dlm) = match output {
        Some(BlockOutput::Files { conf, defaults }) => (conf.clone(), defaults.clone()),
        _ => {
            if mounted_kind(host, "gfs2") {
                return Ok(false);
            }
            let want = corosync_conf(cluster, nodes).map_err(err())?;
            let ours = std::fs::read_to_string(&conf_path)
                .ok()
                .and_then(|t| CorosyncConf::parse(&t).ok())
                .is_some_and(|c| c == want);
            let dlm_ours = std::fs::read_to_string(&dlm_path)
                .ok()
                .and_then(|t| DlmConf::parse(&t).ok())
                .is_some_and(|d| d == DlmConf::default());
            (
                FileBefore {
                    changed: ours,
                    previous: None,
                },
                FileBefore {
                    changed: ours && dlm_ours,
                    previous: None,
                },
            )
        }
    };
    restore_files([(conf_path, conf), (dlm_path, dlm)], err)
}

async fn start_services(host: &Host) -> Result<Applied<BlockOutput>, StepError> {
    let svc = Services::new(host.runner());
    let mut units = Vec::new();
    for unit in GFS2_UNITS {
        match svc.enable_now(unit).await {
            Ok(u) => units.push(UnitState {
                unit: u.unit,
                enabled: u.enabled,
                started: u.started,
            }),
            Err(e) => {
                // Leave nothing half-started; the step's undo repeats this.
                let _ = stop_units(host, &units).await;
                return Err(host_err(host.name(), format!("start {unit}"))(e));
            }
        }
    }
    let changed = units.iter().any(|u| u.enabled || u.started);
    Ok(applied(changed, BlockOutput::Units { units }))
}

async fn stop_units(host: &Host, units: &[UnitState]) -> Result<bool, StepError> {
    let svc = Services::new(host.runner());
    let mut changed = false;
    for u in units.iter().rev() {
        let undo = ServiceUndo {
            unit: u.unit.clone(),
            enabled: u.enabled,
            started: u.started,
            change: Change::from(u.enabled || u.started),
        };
        changed |= svc
            .undo(&undo)
            .await
            .map_err(host_err(host.name(), format!("stop {}", u.unit)))?
            .is_changed();
    }
    Ok(changed)
}

/// Stops what [`start_services`] started. With `output` `None` (unknown), stops and
/// disables both units only when no GFS2 is mounted and `corosync.conf` is exactly this
/// datastore's (another cluster's services are never touched).
async fn stop_services(
    host: &Host,
    cluster: &str,
    nodes: &[ClusterNode],
    output: Option<&BlockOutput>,
) -> Result<bool, StepError> {
    let units = match output {
        Some(BlockOutput::Units { units }) => units.clone(),
        _ => {
            if mounted_kind(host, "gfs2") {
                return Ok(false);
            }
            let want = corosync_conf(cluster, nodes)
                .map_err(cfs_err(host.name(), "stop cluster services".into()))?;
            let ours = std::fs::read_to_string(host.host_root().path(COROSYNC_CONF))
                .ok()
                .and_then(|t| CorosyncConf::parse(&t).ok())
                .is_some_and(|c| c == want);
            if !ours {
                return Ok(false);
            }
            GFS2_UNITS
                .iter()
                .map(|u| UnitState {
                    unit: (*u).to_owned(),
                    enabled: true,
                    started: true,
                })
                .collect()
        }
    };
    stop_units(host, &units).await
}

async fn format_gfs2(
    env: &Env,
    host: &Host,
    disk: &DiskRef,
    lock_table: &str,
    journals: u16,
) -> Result<Applied<BlockOutput>, StepError> {
    let d = host_disk(env, host, disk).await?;
    let op = || format!("format GFS2 on {} ({})", d.name, disk.path());
    let err = || cfs_err(host.name(), op());
    let dev = TargetDevice::new(
        host.host_root().path(format!("/dev/{}", d.name)),
        d.identity.clone(),
    )
    .map_err(err())?;
    let f = Gfs2Format::new(dev, LockTable::parse(lock_table).map_err(err())?, journals)
        .map_err(err())?;
    let done = cluster_host(host).format_gfs2(&f).await.map_err(err())?;
    Ok(applied(done.change.is_changed(), BlockOutput::Nothing))
}

fn unconfigure_o2cb(
    host: &Host,
    cluster: &str,
    nodes: &[ClusterNode],
    output: Option<&BlockOutput>,
) -> Result<bool, StepError> {
    let err = || {
        cfs_err(
            host.name(),
            format!("restore o2cb configuration for {cluster}"),
        )
    };
    let conf_path = host.host_root().path(cluster_fs::ocfs2::CLUSTER_CONF);
    let defaults_path = host
        .host_root()
        .path(cluster_fs::ocfs2::o2cb::O2CB_DEFAULTS_DEBIAN);
    let (conf, defaults) = match output {
        Some(BlockOutput::Files { conf, defaults }) => (conf.clone(), defaults.clone()),
        _ => {
            // Unknown what was there before: remove the files only when they hold exactly
            // what this workflow writes and no OCFS2 file system is mounted.
            if mounted_kind(host, "ocfs2") {
                return Ok(false);
            }
            let (_, want) = ocfs2_conf(cluster, nodes).map_err(err())?;
            let only_ours = cluster_host(host)
                .read_cluster_conf()
                .is_ok_and(|c| c.render() == want.render());
            let defaults_ours = std::fs::read_to_string(&defaults_path)
                .ok()
                .and_then(|t| O2cbDefaults::parse(&t).ok())
                .zip(ClusterName::parse(cluster).ok())
                .is_some_and(|(d, cl)| d == O2cbDefaults::enabled(cl));
            (
                FileBefore {
                    changed: only_ours && conf_path.exists(),
                    previous: None,
                },
                FileBefore {
                    changed: defaults_ours,
                    previous: None,
                },
            )
        }
    };
    restore_files([(conf_path, conf), (defaults_path, defaults)], err)
}

async fn register_cluster(host: &Host, cluster: &str) -> Result<Applied<BlockOutput>, StepError> {
    let err = || cfs_err(host.name(), format!("register o2cb cluster {cluster}"));
    let cl = ClusterName::parse(cluster).map_err(err())?;
    let ch = cluster_host(host);
    let r = match ch.register_cluster(&cl).await {
        Ok(r) => r,
        Err(e @ cluster_fs::Error::UnknownCluster { .. }) => return Err(err()(e)),
        Err(e) => {
            // o2cb says "Internal logic failure" when another cluster is up: name it (a
            // registered cluster is a directory in configfs).
            let online = std::fs::read_dir(host.host_root().path("/sys/kernel/config/cluster"))
                .into_iter()
                .flatten()
                .filter_map(|d| d.ok()?.file_name().into_string().ok())
                .find(|name| name.as_str() != cl.as_str());
            if let Some(other) = online {
                return Err(StepError::OtherO2cbCluster {
                    host: host.name().to_owned(),
                    online: other,
                    wanted: cluster.to_owned(),
                    source: Box::new(e),
                });
            }
            return Err(err()(e));
        }
    };
    Ok(applied(r.change.is_changed(), BlockOutput::Nothing))
}

async fn unregister_cluster(host: &Host, cluster: &str) -> Result<bool, StepError> {
    let err = || cfs_err(host.name(), format!("unregister o2cb cluster {cluster}"));
    // Never under a mounted OCFS2 file system (another datastore's).
    if mounted_kind(host, "ocfs2") {
        return Ok(false);
    }
    let cl = ClusterName::parse(cluster).map_err(err())?;
    let r = cluster_fs::host::Registered {
        cluster: cl,
        change: Change::Changed,
    };
    Ok(cluster_host(host)
        .undo(&cluster_fs::Undo::Registered(r))
        .await
        .map_err(err())?
        .is_changed())
}

/// A disk as one host sees it: its kernel name, identity and stable path.
struct HostDisk {
    name: String,
    identity: Identity,
    stable: String,
}

async fn namespace_uuid(env: &Env, svm: &str, ns: &str) -> Result<uuid::Uuid, StepError> {
    let op = || format!("get UUID of namespace {svm}:{ns}");
    let u = find_namespace(env, svm, ns)
        .await?
        .map(|n| n.uuid)
        .ok_or_else(|| StepError::MissingField {
            operation: op(),
            field: "record",
        })?;
    uuid::Uuid::parse_str(&u).map_err(|_| StepError::MissingField {
        operation: op(),
        field: "uuid",
    })
}

/// The stable device path of `disk` on `host` (for the mount and fstab): the LUN's
/// multipath map by its device-mapper name, `/dev/mapper/<wwid>` (multipath names maps by
/// WWID: `user_friendly_names no`; before the map exists, the WWID ONTAP's serial gives),
/// udev's `/dev/disk/by-id/nvme-uuid.<uuid>` for a namespace.
async fn stable_path(env: &Env, host: &Host, disk: &DiskRef) -> Result<String, StepError> {
    Ok(match disk {
        DiskRef::Lun { svm, path } => match host_lun_map(env, host, svm, path).await? {
            (_, Some(map)) => format!("/dev/mapper/{}", map.name),
            (serial, None) => format!("/dev/mapper/{}", serial.naa_wwid()),
        },
        DiskRef::Namespace { svm, path } => {
            format!(
                "/dev/disk/by-id/nvme-uuid.{}",
                namespace_uuid(env, svm, path).await?
            )
        }
    })
}

/// Finds `disk` on `host` by identity (never by name).
async fn host_disk(env: &Env, host: &Host, disk: &DiskRef) -> Result<HostDisk, StepError> {
    let op = || format!("find {} on the host", disk.path());
    let cerr = || cfs_err(host.name(), op());
    let missing = || StepError::MissingField {
        operation: op(),
        field: "block device",
    };
    match disk {
        DiskRef::Lun { svm, path } => {
            let map = host_lun_map(env, host, svm, path)
                .await?
                .1
                .ok_or_else(missing)?;
            Ok(HostDisk {
                identity: Identity::wwid(map.wwid.as_str()).map_err(cerr())?,
                stable: format!("/dev/mapper/{}", map.name),
                name: map.dm,
            })
        }
        DiskRef::Namespace { svm, path } => {
            let u = namespace_uuid(env, svm, path).await?;
            let (name, _) = DeviceWaiter::new(host.host_root().clone())
                .scan(&DeviceId::NvmeUuid(u))
                .map_err(host_err(host.name(), op()))?
                .ok_or_else(missing)?;
            Ok(HostDisk {
                name,
                identity: Identity::nvme_namespace(&u.to_string()).map_err(cerr())?,
                stable: stable_path(env, host, disk).await?,
            })
        }
    }
}

async fn cluster_mount(
    env: &Env,
    host: &Host,
    disk: &DiskRef,
    target: &std::path::Path,
    fs: ClusterFsKind,
) -> Result<ClusterMount, StepError> {
    ClusterMount::new(stable_path(env, host, disk).await?, target, fs.kind())
        .map_err(cfs_err(host.name(), format!("mount {}", target.display())))
}

async fn format_ocfs2(
    env: &Env,
    host: &Host,
    disk: &DiskRef,
    label: &str,
    cluster: &str,
    slots: u16,
) -> Result<Applied<BlockOutput>, StepError> {
    let d = host_disk(env, host, disk).await?;
    let op = || format!("format OCFS2 on {} ({})", d.name, disk.path());
    let err = || cfs_err(host.name(), op());
    tracing::debug!(device = %d.name, stable = %d.stable, "formatting");
    let dev = TargetDevice::new(
        host.host_root().path(format!("/dev/{}", d.name)),
        d.identity.clone(),
    )
    .map_err(err())?;
    let f = Ocfs2Format::new(
        dev,
        Label::parse(label).map_err(err())?,
        ClusterName::parse(cluster).map_err(err())?,
        slots,
    )
    .map_err(err())?;
    let done = cluster_host(host).format_ocfs2(&f).await.map_err(err())?;
    Ok(applied(done.change.is_changed(), BlockOutput::Nothing))
}

async fn reuuid_ocfs2(
    env: &Env,
    host: &Host,
    disk: &DiskRef,
    parent_uuid: &str,
) -> Result<Applied<BlockOutput>, StepError> {
    let d = host_disk(env, host, disk).await?;
    let op = || format!("give the cloned OCFS2 on {} a new UUID", d.name);
    let err = || cfs_err(host.name(), op());
    let dev = TargetDevice::new(
        host.host_root().path(format!("/dev/{}", d.name)),
        d.identity.clone(),
    )
    .map_err(err())?;
    let parent = cluster_fs::ocfs2::Region::parse(parent_uuid).map_err(err())?;
    let ch = cluster_host(host);
    // The identity check guards the one write to the clone's metadata.
    ch.check_identity(&dev).map_err(err())?;
    if ch.ocfs2_stats(&dev).await.map_err(err())?.uuid == parent {
        // `--cloned-volume` works without the cluster stack and labels the clone
        // `<parent label>-cloned`. A separate `tunefs.ocfs2 -L` takes cluster locks and
        // refuses a clone of a mounted file system, whose journals stay dirty until its
        // first mount replays them (and a mounted one cannot be relabeled): so no relabel.
        ch.reuuid_cloned_ocfs2(&dev, &parent).await.map_err(err())?;
        return Ok(applied(true, BlockOutput::Nothing));
    }
    // Given its new UUID (and label) earlier; it may be mounted by now, so nothing more is
    // written to it.
    Ok(applied(false, BlockOutput::Nothing))
}

async fn mount_ocfs2(
    env: &Env,
    host: &Host,
    disk: &DiskRef,
    target: &std::path::Path,
    fs: ClusterFsKind,
) -> Result<Applied<BlockOutput>, StepError> {
    let m = cluster_mount(env, host, disk, target, fs).await?;
    let u = cluster_host(host)
        .mount(&m)
        .await
        .map_err(cfs_err(host.name(), format!("mount {}", target.display())))?;
    Ok(applied(
        u.change.is_changed(),
        BlockOutput::Mount {
            created_dir: u.created_dir,
        },
    ))
}

/// Unmounts `target` if a file system of kind `fs` is mounted there, then removes the mount
/// point when `remove_dir` and it is empty.
async fn unmount_ocfs2(
    host: &Host,
    target: &std::path::Path,
    remove_dir: bool,
    fs: ClusterFsKind,
) -> Result<bool, StepError> {
    host_steps::unmount_if(host, target, remove_dir, |found| {
        found.fstype == fs.as_str()
    })
    .await
}

async fn add_fstab(
    env: &Env,
    host: &Host,
    id: &str,
    disk: &DiskRef,
    target: &std::path::Path,
    fs: ClusterFsKind,
) -> Result<Applied<BlockOutput>, StepError> {
    let m = cluster_mount(env, host, disk, target, fs).await?;
    let err = || cfs_err(host.name(), format!("add fstab line {id}"));
    let eid = EntryId::parse(id).map_err(host_err(host.name(), format!("add fstab line {id}")))?;
    let u = cluster_host(host).add_fstab(&eid, &m).map_err(err())?;
    Ok(from_nfs(line_applied(&u)))
}

async fn delete_lun(
    env: &Env,
    svm: &str,
    lun: &str,
    token: Option<&str>,
    uuid: Option<&str>,
) -> Result<bool, StepError> {
    delete_owned(
        uuid,
        token,
        owned_lun(env, svm, lun),
        |uuid| async move { env.ontap().luns().delete(&uuid).await },
        format!("delete LUN {svm}:{lun}"),
    )
    .await
}

async fn delete_volume(
    env: &Env,
    svm: &str,
    name: &str,
    token: Option<&str>,
    uuid: Option<&str>,
) -> Result<bool, StepError> {
    let lookup = format!("get volume {svm}/{name}");
    ontap_steps::delete_volume(env, svm, name, token, uuid, lookup).await
}

// ---- NVMe ----

/// A namespace's UUID and comment.
struct NsFacts {
    uuid: String,
    comment: Option<String>,
}

async fn find_namespace(env: &Env, svm: &str, ns: &str) -> Result<Option<NsFacts>, StepError> {
    let found = env
        .ontap()
        .namespaces()
        .find(
            &Query::new()
                .filter("svm.name", svm)
                .filter("name", ns)
                .fields(["uuid", "name", "comment"]),
        )
        .await
        .map_err(ontap_err(format!("get namespace {svm}:{ns}")))?;
    Ok(found.map(|n| NsFacts {
        uuid: n.uuid.unwrap_or_default(),
        comment: n.comment,
    }))
}

/// The namespace `svm:ns` as [`Owned`].
async fn owned_namespace(env: &Env, svm: &str, ns: &str) -> Result<Option<Owned>, StepError> {
    Ok(find_namespace(env, svm, ns).await?.map(|f| Owned {
        uuid: Some(f.uuid),
        comment: f.comment,
    }))
}

async fn find_subsystem(
    env: &Env,
    svm: &str,
    subsystem: &str,
) -> Result<Option<ontap_client::models::NvmeSubsystem>, StepError> {
    env.ontap()
        .nvme_subsystems()
        .find(
            &Query::new()
                .filter("svm.name", svm)
                .filter("name", subsystem)
                .fields(["uuid", "name", "comment", "hosts", "target_nqn"]),
        )
        .await
        .map_err(ontap_err(format!("get subsystem {svm}/{subsystem}")))
}

async fn create_subsystem(
    env: &Env,
    svm: &str,
    subsystem: &str,
    hosts: &[String],
    comment: Option<&str>,
) -> Result<Applied<BlockOutput>, StepError> {
    let mut body = SubsystemCreate::new(subsystem, svm, NvmeOsType::Linux);
    for h in hosts {
        body = body.host(h.as_str());
    }
    if let Some(c) = comment {
        body = body.comment(c);
    }
    let op = format!("create subsystem {svm}/{subsystem}");
    let find = || async {
        Ok(find_subsystem(env, svm, subsystem).await?.map(|x| Owned {
            uuid: x.uuid,
            comment: x.comment,
        }))
    };
    let subsystems = env.ontap().nvme_subsystems();
    create_once(op, comment, find, subsystems.create(&body))
        .await
        .map(uuid_output)
}

async fn delete_subsystem(
    env: &Env,
    svm: &str,
    subsystem: &str,
    token: Option<&str>,
) -> Result<bool, StepError> {
    let Some(x) = find_subsystem(env, svm, subsystem).await? else {
        return Ok(false);
    };
    if token.is_some() && x.comment.as_deref() != token {
        return Ok(false);
    }
    let uuid = x.uuid.unwrap_or_default();
    // ONTAP refuses to delete a subsystem that still has hosts (72090024) unless told to;
    // the hosts go first, one by one, so a retry after a crash finds fewer.
    for h in x.hosts.iter().flatten().filter_map(|h| h.nqn.as_deref()) {
        gone_ok(env.ontap().nvme_subsystems().remove_host(&uuid, h).await).map_err(ontap_err(
            format!("remove host {h} from subsystem {svm}/{subsystem}"),
        ))?;
    }
    gone_ok(env.ontap().nvme_subsystems().delete(&uuid).await)
        .map_err(ontap_err(format!("delete subsystem {svm}/{subsystem}")))
}

/// The subsystem and namespace UUIDs of the map of `ns` to `subsystem`, if mapped.
async fn ns_map(
    env: &Env,
    svm: &str,
    ns: &str,
    subsystem: &str,
) -> Result<Option<(String, String)>, StepError> {
    let maps = env
        .ontap()
        .nvme_subsystem_maps()
        .list_all(
            &Query::new()
                .filter("svm.name", svm)
                .filter("namespace.name", ns)
                .fields(["subsystem", "namespace"]),
        )
        .await
        .map_err(ontap_err(format!("get map of {svm}:{ns} to {subsystem}")))?;
    Ok(maps.iter().find_map(|m| {
        let sub = m.subsystem.as_ref()?;
        let nsr = m.namespace.as_ref()?;
        (sub.name.as_deref() == Some(subsystem) && nsr.name.as_deref() == Some(ns)).then(|| {
            (
                sub.uuid.clone().unwrap_or_default(),
                nsr.uuid.clone().unwrap_or_default(),
            )
        })
    }))
}

async fn map_namespace(
    env: &Env,
    svm: &str,
    ns: &str,
    subsystem: &str,
) -> Result<Applied<BlockOutput>, StepError> {
    if ns_map(env, svm, ns, subsystem).await?.is_some() {
        return Ok(applied(false, BlockOutput::Nothing));
    }
    env.ontap()
        .nvme_subsystem_maps()
        .create(&SubsystemMapCreate::new(svm, subsystem, ns))
        .await
        .map_err(ontap_err(format!(
            "map namespace {svm}:{ns} to {subsystem}"
        )))?;
    Ok(applied(true, BlockOutput::Nothing))
}

async fn unmap_namespace(
    env: &Env,
    svm: &str,
    ns: &str,
    subsystem: &str,
) -> Result<bool, StepError> {
    let Some((sub_uuid, ns_uuid)) = ns_map(env, svm, ns, subsystem).await? else {
        return Ok(false);
    };
    let (sub_uuid, ns_uuid) = if sub_uuid.is_empty() || ns_uuid.is_empty() {
        (
            find_subsystem(env, svm, subsystem)
                .await?
                .and_then(|x| x.uuid)
                .unwrap_or_default(),
            find_namespace(env, svm, ns)
                .await?
                .map(|n| n.uuid)
                .unwrap_or_default(),
        )
    } else {
        (sub_uuid, ns_uuid)
    };
    gone_ok(
        env.ontap()
            .nvme_subsystem_maps()
            .unmap(&sub_uuid, &ns_uuid)
            .await,
    )
    .map_err(ontap_err(format!(
        "unmap namespace {svm}:{ns} from {subsystem}"
    )))
}

async fn subsystem_nqn(env: &Env, svm: &str, subsystem: &str) -> Result<Option<Nqn>, StepError> {
    let op = || format!("get NQN of subsystem {svm}/{subsystem}");
    let Some(x) = find_subsystem(env, svm, subsystem).await? else {
        return Ok(None);
    };
    let nqn = x.target_nqn.ok_or_else(|| StepError::MissingField {
        operation: op(),
        field: "target_nqn",
    })?;
    Nqn::parse(&nqn).map(Some).map_err(host_err("", op()))
}

fn nvme(host: &Host) -> Nvme<std::sync::Arc<dyn host_storage::Runner>> {
    Nvme::new(host.runner(), host.host_root().clone())
}

fn transports(host: &str, addresses: &[String]) -> Result<Vec<Transport>, StepError> {
    addresses
        .iter()
        .map(|a| {
            HostName::parse(a)
                .map(Transport::tcp)
                .map_err(host_err(host, format!("NVMe/TCP address {a}")))
        })
        .collect()
}

async fn connect_nvme(
    env: &Env,
    host: &Host,
    svm: &str,
    subsystem: &str,
    addresses: &[String],
) -> Result<Applied<BlockOutput>, StepError> {
    let op = || format!("connect to subsystem {svm}/{subsystem}");
    let nqn = subsystem_nqn(env, svm, subsystem)
        .await?
        .ok_or_else(|| StepError::MissingField {
            operation: op(),
            field: "record",
        })?;
    let nv = nvme(host);
    let mut created = Vec::new();
    for t in transports(host.name(), addresses)? {
        match nv.connect(&nqn, &t, &ConnectOptions::default()).await {
            Ok(u) => created.extend(u.controllers),
            Err(e) => {
                // Leave nothing half-connected: what this call made goes (best effort; the
                // step's undo repeats it).
                let _ = nv
                    .disconnect(&NvmeConnectUndo {
                        controllers: created,
                        change: Change::Changed,
                    })
                    .await;
                return Err(host_err(host.name(), op())(e));
            }
        }
    }
    Ok(applied(
        !created.is_empty(),
        BlockOutput::Controllers {
            controllers: created,
        },
    ))
}

/// Disconnects the controllers a connect made; with `output` `None`, every controller of
/// the subsystem through these addresses (each only when its namespaces are unused).
async fn disconnect_nvme(
    env: &Env,
    host: &Host,
    svm: &str,
    subsystem: &str,
    addresses: &[String],
    output: Option<&BlockOutput>,
) -> Result<bool, StepError> {
    let op = || format!("disconnect from subsystem {svm}/{subsystem}");
    let nv = nvme(host);
    let controllers = match output {
        Some(BlockOutput::Controllers { controllers }) => controllers.clone(),
        _ => {
            let Some(nqn) = subsystem_nqn(env, svm, subsystem).await? else {
                return Ok(false);
            };
            let mut all = Vec::new();
            for t in transports(host.name(), addresses)? {
                all.extend(
                    nv.controllers_for(&nqn, &t)
                        .map_err(host_err(host.name(), op()))?
                        .into_iter()
                        .map(|c| c.name),
                );
            }
            all
        }
    };
    Ok(nv
        .disconnect(&NvmeConnectUndo {
            controllers,
            change: Change::Changed,
        })
        .await
        .map_err(host_err(host.name(), op()))?
        .is_changed())
}

async fn attach_namespace(
    env: &Env,
    host: &Host,
    svm: &str,
    ns: &str,
    wait_secs: u64,
) -> Result<Applied<BlockOutput>, StepError> {
    let u = namespace_uuid(env, svm, ns).await?;
    let found = DeviceWaiter::new(host.host_root().clone())
        .wait(&DeviceId::NvmeUuid(u), Duration::from_secs(wait_secs))
        .await
        .map_err(host_err(
            host.name(),
            format!("wait for namespace {ns} (UUID {u})"),
        ))?;
    tracing::info!(device = %found.name, namespace = ns, "namespace found");
    // Waiting changes nothing; the device goes with the controllers.
    Ok(applied(false, BlockOutput::Nothing))
}

async fn delete_namespace(
    env: &Env,
    svm: &str,
    ns: &str,
    token: Option<&str>,
    uuid: Option<&str>,
) -> Result<bool, StepError> {
    delete_owned(
        uuid,
        token,
        owned_namespace(env, svm, ns),
        |uuid| async move { env.ontap().namespaces().delete(&uuid).await },
        format!("delete namespace {svm}:{ns}"),
    )
    .await
}

fn uuid_of(output: Option<&BlockOutput>) -> Option<&str> {
    match output {
        Some(BlockOutput::Uuid { uuid }) => Some(uuid.as_str()),
        _ => None,
    }
}

#[async_trait::async_trait]
impl Step for BlockStep {
    type Env = Env;
    type Output = BlockOutput;

    fn label(&self) -> String {
        match self {
            BlockStep::CreateVolume { svm, volume, .. } => {
                format!("CreateVolume {svm}/{}", volume.name)
            }
            BlockStep::CreateLun { svm, lun, .. } => format!("CreateLun {svm}:{lun}"),
            BlockStep::CreateIgroup { svm, igroup, .. } => format!("CreateIgroup {svm}/{igroup}"),
            BlockStep::MapLun {
                svm, lun, igroup, ..
            } => format!("MapLun {svm}:{lun} to {igroup}"),
            BlockStep::CreateNamespace { svm, namespace, .. } => {
                format!("CreateNamespace {svm}:{namespace}")
            }
            BlockStep::CreateSubsystem { svm, subsystem, .. } => {
                format!("CreateSubsystem {svm}/{subsystem}")
            }
            BlockStep::MapNamespace {
                svm,
                namespace,
                subsystem,
                ..
            } => format!("MapNamespace {svm}:{namespace} to {subsystem}"),
            BlockStep::ConfigureMultipath { host } => format!("ConfigureMultipath {host}"),
            BlockStep::ConnectIscsi { host, target, .. } => {
                format!("ConnectIscsi {host} to {target}")
            }
            BlockStep::ConnectNvme {
                host, subsystem, ..
            } => format!("ConnectNvme {host} to {subsystem}"),
            BlockStep::AttachLun { host, lun, .. } => format!("AttachLun {host}:{lun}"),
            BlockStep::AttachNamespace {
                host, namespace, ..
            } => format!("AttachNamespace {host}:{namespace}"),
            BlockStep::ConfigureO2cb { host, cluster, .. } => {
                format!("ConfigureO2cb {host}:{cluster}")
            }
            BlockStep::RegisterCluster { host, cluster } => {
                format!("RegisterCluster {host}:{cluster}")
            }
            BlockStep::FormatOcfs2 { host, disk, .. } => {
                format!("FormatOcfs2 {host}:{}", disk.path())
            }
            BlockStep::ReuuidOcfs2 { host, disk, .. } => {
                format!("ReuuidOcfs2 {host}:{}", disk.path())
            }
            BlockStep::ConfigureCorosync { host, cluster, .. } => {
                format!("ConfigureCorosync {host}:{cluster}")
            }
            BlockStep::StartClusterServices { host } => format!("StartClusterServices {host}"),
            BlockStep::FormatGfs2 { host, disk, .. } => {
                format!("FormatGfs2 {host}:{}", disk.path())
            }
            BlockStep::StopClusterServices { host, .. } => format!("StopClusterServices {host}"),
            BlockStep::RemoveCorosyncConfig { host, cluster, .. } => {
                format!("RemoveCorosyncConfig {host}:{cluster}")
            }
            BlockStep::MountOcfs2 {
                host, target, fs, ..
            } => format!("Mount{} {host}:{}", fs.word(), target.display()),
            BlockStep::PersistFstab { host, id, .. } => format!("PersistFstab {host}:{id}"),
            BlockStep::DefinePool { host, pool } => format!("DefinePool {host}:{}", pool.name),
            BlockStep::RemovePool { host, pool } => format!("RemovePool {host}:{}", pool.name),
            BlockStep::RemoveFstab { host, id, .. } => format!("RemoveFstab {host}:{id}"),
            BlockStep::UnmountOcfs2 {
                host, target, fs, ..
            } => format!("Unmount{} {host}:{}", fs.word(), target.display()),
            BlockStep::DetachLun { host, lun, .. } => format!("DetachLun {host}:{lun}"),
            BlockStep::DisconnectNvme {
                host, subsystem, ..
            } => format!("DisconnectNvme {host} from {subsystem}"),
            BlockStep::DisconnectIscsi { host, target, .. } => {
                format!("DisconnectIscsi {host} from {target}")
            }
            BlockStep::UnregisterCluster { host, cluster } => {
                format!("UnregisterCluster {host}:{cluster}")
            }
            BlockStep::RemoveO2cbConfig { host, cluster, .. } => {
                format!("RemoveO2cbConfig {host}:{cluster}")
            }
            BlockStep::RemoveMultipathConfig { host } => format!("RemoveMultipathConfig {host}"),
            BlockStep::UnmapLun {
                svm, lun, igroup, ..
            } => format!("UnmapLun {svm}:{lun} from {igroup}"),
            BlockStep::DeleteIgroup { svm, igroup, .. } => format!("DeleteIgroup {svm}/{igroup}"),
            BlockStep::UnmapNamespace {
                svm,
                namespace,
                subsystem,
                ..
            } => format!("UnmapNamespace {svm}:{namespace} from {subsystem}"),
            BlockStep::DeleteSubsystem { svm, subsystem, .. } => {
                format!("DeleteSubsystem {svm}/{subsystem}")
            }
            BlockStep::DeleteLun { svm, lun, .. } => format!("DeleteLun {svm}:{lun}"),
            BlockStep::DeleteNamespace { svm, namespace, .. } => {
                format!("DeleteNamespace {svm}:{namespace}")
            }
            BlockStep::DeleteVolume { svm, name, .. } => format!("DeleteVolume {svm}/{name}"),
        }
    }

    fn planned(&self) -> Vec<ActionKind> {
        match self {
            BlockStep::CreateVolume { svm, volume, .. } => vec![ontap_call(
                "POST",
                "/api/storage/volumes",
                format!(
                    "create FlexVol {svm}/{} on {}, {} bytes{}, no junction",
                    volume.name,
                    volume.aggregate,
                    volume.size,
                    if volume.thin { " thin" } else { "" }
                ),
            )],
            BlockStep::CreateLun {
                svm,
                lun,
                size,
                reserved,
                ..
            } => vec![ontap_call(
                "POST",
                "/api/storage/luns",
                format!(
                    "create LUN {lun} in SVM {svm}, os_type linux, {size} bytes{}",
                    if *reserved { " space-reserved" } else { " thin" }
                ),
            )],
            BlockStep::CreateIgroup {
                svm,
                igroup,
                protocol,
                initiators,
                ..
            } => vec![ontap_call(
                "POST",
                "/api/protocols/san/igroups",
                format!(
                    "create igroup {igroup} in SVM {svm}, protocol {}, os_type linux, initiators {}",
                    protocol.as_str(),
                    initiators.join(",")
                ),
            )],
            BlockStep::MapLun { lun, igroup, .. } => vec![ontap_call(
                "POST",
                "/api/protocols/san/lun-maps",
                format!("map LUN {lun} to igroup {igroup}"),
            )],
            BlockStep::CreateNamespace {
                svm,
                namespace,
                size,
                ..
            } => vec![ontap_call(
                "POST",
                "/api/storage/namespaces",
                format!("create namespace {namespace} in SVM {svm}, os_type linux, {size} bytes"),
            )],
            BlockStep::CreateSubsystem {
                svm,
                subsystem,
                hosts,
                ..
            } => vec![ontap_call(
                "POST",
                "/api/protocols/nvme/subsystems",
                format!(
                    "create subsystem {subsystem} in SVM {svm}, os_type linux, hosts {}",
                    hosts.join(",")
                ),
            )],
            BlockStep::MapNamespace {
                namespace,
                subsystem,
                ..
            } => vec![ontap_call(
                "POST",
                "/api/protocols/nvme/subsystem-maps",
                format!("map namespace {namespace} to subsystem {subsystem}"),
            )],
            BlockStep::ConfigureMultipath { host } => vec![
                file_change(
                    host,
                    PathBuf::from("/etc/multipath/conf.d").join(DROPIN_NAME),
                    "devices { device { vendor \"NETAPP\" product \"LUN\" ... } }".into(),
                ),
                host_cmd(host, "multipathd reconfigure".into()),
            ],
            BlockStep::ConnectIscsi {
                host,
                target,
                portals,
            } => {
                let mut cmds: Vec<ActionKind> = portals
                    .iter()
                    .map(|p| {
                        host_cmd(
                            host,
                            format!("iscsiadm -m node -T {target} -p {p} -I default -o new (if no record; settings written into it)"),
                        )
                    })
                    .collect();
                if portals.len() < 2 {
                    cmds.extend(portals.iter().map(|p| {
                        host_cmd(host, format!("iscsiadm -m node -T {target} -p {p} --login"))
                    }));
                } else {
                    // host-storage's Iscsi::connect: one target-wide login when the node
                    // database holds exactly these portals' records.
                    cmds.push(host_cmd(
                        host,
                        format!("iscsiadm -m node -T {target} --login (when the node database holds exactly these {} portals; else -p PORTAL --login for each)", portals.len()),
                    ));
                }
                cmds
            }
            BlockStep::ConnectNvme {
                host,
                subsystem,
                addresses,
                ..
            } => addresses
                .iter()
                .map(|a| {
                    host_cmd(
                        host,
                        format!("nvme connect -t tcp -a {a} -s 4420 -n <NQN of {subsystem}> -l -1"),
                    )
                })
                .collect(),
            BlockStep::AttachLun {
                host, lun, path, ..
            } => vec![
                host_cmd(
                    host,
                    match path {
                        ScsiPath::Iscsi { target } => format!(
                            "echo '<C T> <LUN id of {lun}>' > /sys/class/scsi_host/host<each session of {target}>/scan"
                        ),
                        ScsiPath::Fc { targets } => format!(
                            "echo '<C T> <LUN id of {lun}>' > /sys/class/scsi_host/host<HBA>/scan behind {}",
                            targets.join(",")
                        ),
                    },
                ),
                host_cmd(
                    host,
                    format!("wait for /sys/block/dm-*/dm/uuid = mpath-<NAA WWID of {lun}>"),
                ),
            ],
            BlockStep::AttachNamespace {
                host, namespace, ..
            } => vec![host_cmd(
                host,
                format!("wait for /sys/block/nvme*n*/uuid = <UUID of {namespace}>"),
            )],
            BlockStep::ConfigureO2cb {
                host,
                cluster,
                nodes,
            } => vec![
                file_change(
                    host,
                    cluster_fs::ocfs2::CLUSTER_CONF,
                    format!(
                        "cluster {cluster}: {}",
                        nodes
                            .iter()
                            .map(|n| format!("{} #{} {}", n.name, n.number, n.address))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
                file_change(
                    host,
                    cluster_fs::ocfs2::o2cb::O2CB_DEFAULTS_DEBIAN,
                    format!("O2CB_ENABLED=true O2CB_BOOTCLUSTER={cluster}"),
                ),
            ],
            BlockStep::RegisterCluster { host, cluster } => {
                vec![host_cmd(host, format!("o2cb register-cluster {cluster}"))]
            }
            BlockStep::FormatOcfs2 {
                host,
                disk,
                label,
                cluster,
                slots,
            } => vec![host_cmd(
                host,
                format!(
                    "mkfs.ocfs2 -L {label} -N {slots} -T vmstore --cluster-stack=o2cb --cluster-name={cluster} /dev/<device of {}> (after identity and blkid checks)",
                    disk.path()
                ),
            )],
            BlockStep::ConfigureCorosync {
                host,
                cluster,
                nodes,
            } => vec![
                file_change(
                    host,
                    COROSYNC_CONF,
                    format!(
                        "cluster_name: {cluster}, knet, nodes {}",
                        nodes
                            .iter()
                            .map(|n| format!("{} #{} {}", n.name, u32::from(n.number) + 1, n.address))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
                file_change(host, DLM_CONF, "enable_fencing=1 protocol=detect".into()),
            ],
            BlockStep::StartClusterServices { host } => GFS2_UNITS
                .iter()
                .map(|u| host_cmd(host, format!("systemctl enable --now {u}")))
                .collect(),
            BlockStep::StopClusterServices { host, .. } => GFS2_UNITS
                .iter()
                .rev()
                .map(|u| {
                    host_cmd(
                        host,
                        format!("systemctl disable --now {u} (if no GFS2 is mounted)"),
                    )
                })
                .collect(),
            BlockStep::RemoveCorosyncConfig { host, .. } => vec![
                file_change(
                    host,
                    COROSYNC_CONF,
                    "(remove if exactly kvmstor's and no GFS2 is mounted)".into(),
                ),
                file_change(
                    host,
                    DLM_CONF,
                    "(remove if exactly kvmstor's and no GFS2 is mounted)".into(),
                ),
            ],
            BlockStep::FormatGfs2 {
                host,
                disk,
                lock_table,
                journals,
            } => vec![host_cmd(
                host,
                format!(
                    "mkfs.gfs2 -O -p lock_dlm -t {lock_table} -j {journals} /dev/<device of {}> (after identity and blkid checks)",
                    disk.path()
                ),
            )],
            BlockStep::ReuuidOcfs2 {
                host, disk, ..
            } => vec![host_cmd(
                host,
                format!(
                    "tunefs.ocfs2 --cloned-volume -y /dev/<device of {}> (if its UUID is the parent's; label <parent label>-cloned)",
                    disk.path()
                ),
            )],
            BlockStep::MountOcfs2 {
                host,
                disk,
                target,
                fs,
            } => vec![host_cmd(
                host,
                format!(
                    "mount -t {} -o _netdev,noatime {} {}",
                    fs.as_str(),
                    disk.placeholder(),
                    target.display()
                ),
            )],
            BlockStep::PersistFstab {
                host,
                disk,
                target,
                fs,
                ..
            }
            | BlockStep::RemoveFstab {
                host,
                disk,
                target,
                fs,
                ..
            } => {
                let tag = if matches!(self, BlockStep::RemoveFstab { .. }) {
                    "(remove) "
                } else {
                    ""
                };
                vec![file_change(
                    host,
                    "/etc/fstab",
                    format!(
                        "{tag}{} {} {} _netdev,noatime 0 0",
                        disk.placeholder(),
                        target.display(),
                        fs.as_str()
                    ),
                )]
            }
            BlockStep::DefinePool { host, pool } => vec![pool_defined(host, pool)],
            BlockStep::RemovePool { host, pool } => vec![pool_removed(host, pool)],
            BlockStep::UnmountOcfs2 { host, target, .. } => {
                vec![host_cmd(host, format!("umount {}", target.display()))]
            }
            BlockStep::DetachLun { host, lun, .. } => vec![
                host_cmd(host, format!("blockdev --flushbufs /dev/dm-<map of {lun}>")),
                host_cmd(host, format!("multipath -f <map of {lun}>")),
                host_cmd(
                    host,
                    format!("echo 1 > /sys/block/<each path of {lun}>/device/delete"),
                ),
            ],
            BlockStep::DisconnectNvme {
                host, subsystem, ..
            } => vec![host_cmd(
                host,
                format!("nvme disconnect -n <NQN of {subsystem}> (if its namespaces are unused; when every controller of the subsystem is kvmstor's, else nvme disconnect -d /dev/nvme<each of kvmstor's controllers>)"),
            )],
            BlockStep::DisconnectIscsi {
                host,
                target,
                portals,
            } if portals.len() >= 2 => vec![
                // host-storage's Iscsi::disconnect: target-wide when every session and node
                // record of the target is kvmstor's.
                host_cmd(
                    host,
                    format!("iscsiadm -m node -T {target} --logout (if no device remains; when every session and record of the target is kvmstor's, else -p PORTAL --logout for each of the {} portals)", portals.len()),
                ),
                host_cmd(
                    host,
                    format!("iscsiadm -m node -T {target} -o delete (the same way; else -p PORTAL -o delete for each)"),
                ),
            ],
            BlockStep::DisconnectIscsi {
                host,
                target,
                portals,
            } => portals
                .iter()
                .flat_map(|p| {
                    [
                        host_cmd(
                            host,
                            format!("iscsiadm -m node -T {target} -p {p} --logout (if no device remains)"),
                        ),
                        host_cmd(host, format!("iscsiadm -m node -T {target} -p {p} -o delete")),
                    ]
                })
                .collect(),
            BlockStep::UnregisterCluster { host, cluster } => vec![host_cmd(
                host,
                format!("o2cb unregister-cluster {cluster} (if no OCFS2 file system is mounted)"),
            )],
            BlockStep::RemoveO2cbConfig { host, .. } => vec![
                file_change(
                    host,
                    cluster_fs::ocfs2::CLUSTER_CONF,
                    "(remove if exactly kvmstor's and no OCFS2 is mounted)".into(),
                ),
                file_change(
                    host,
                    cluster_fs::ocfs2::o2cb::O2CB_DEFAULTS_DEBIAN,
                    "(remove if exactly kvmstor's and no OCFS2 is mounted)".into(),
                ),
            ],
            BlockStep::RemoveMultipathConfig { host } => vec![file_change(
                host,
                PathBuf::from("/etc/multipath/conf.d").join(DROPIN_NAME),
                "(remove if no NetApp map remains)".into(),
            )],
            BlockStep::UnmapLun { lun, igroup, .. } => vec![ontap_call(
                "DELETE",
                "/api/protocols/san/lun-maps/{lun uuid}/{igroup uuid}",
                format!("unmap LUN {lun} from igroup {igroup}"),
            )],
            BlockStep::DeleteIgroup { svm, igroup, .. } => vec![ontap_call(
                "DELETE",
                "/api/protocols/san/igroups/{uuid}",
                format!("delete igroup {svm}/{igroup}"),
            )],
            BlockStep::UnmapNamespace {
                namespace,
                subsystem,
                ..
            } => vec![ontap_call(
                "DELETE",
                "/api/protocols/nvme/subsystem-maps/{subsystem uuid}/{namespace uuid}",
                format!("unmap namespace {namespace} from subsystem {subsystem}"),
            )],
            BlockStep::DeleteSubsystem { svm, subsystem, .. } => vec![ontap_call(
                "DELETE",
                "/api/protocols/nvme/subsystems/{uuid}",
                format!("delete subsystem {svm}/{subsystem}"),
            )],
            BlockStep::DeleteLun { svm, lun, .. } => vec![ontap_call(
                "DELETE",
                "/api/storage/luns/{uuid}",
                format!("delete LUN {svm}:{lun} and its data"),
            )],
            BlockStep::DeleteNamespace { svm, namespace, .. } => vec![ontap_call(
                "DELETE",
                "/api/storage/namespaces/{uuid}",
                format!("delete namespace {svm}:{namespace} and its data"),
            )],
            BlockStep::DeleteVolume { svm, name, .. } => vec![ontap_call(
                "DELETE",
                "/api/storage/volumes/{uuid}",
                format!("delete volume {svm}/{name} and its data"),
            )],
        }
    }

    fn locks(&self) -> Vec<LockKey> {
        match self {
            BlockStep::CreateVolume {
                cluster,
                svm,
                volume,
                ..
            } => vec![LockKey::ontap(cluster, svm, "volume", &volume.name)],
            BlockStep::DeleteVolume { cluster, svm, name } => {
                vec![LockKey::ontap(cluster, svm, "volume", name)]
            }
            BlockStep::CreateLun {
                cluster, svm, lun, ..
            }
            | BlockStep::DeleteLun { cluster, svm, lun } => {
                vec![LockKey::ontap(cluster, svm, "lun", lun)]
            }
            BlockStep::CreateNamespace {
                cluster,
                svm,
                namespace,
                ..
            }
            | BlockStep::DeleteNamespace {
                cluster,
                svm,
                namespace,
            } => vec![LockKey::ontap(cluster, svm, "namespace", namespace)],
            BlockStep::CreateIgroup {
                cluster,
                svm,
                igroup,
                ..
            }
            | BlockStep::DeleteIgroup {
                cluster,
                svm,
                igroup,
                ..
            } => vec![LockKey::ontap(cluster, svm, "igroup", igroup)],
            BlockStep::CreateSubsystem {
                cluster,
                svm,
                subsystem,
                ..
            }
            | BlockStep::DeleteSubsystem {
                cluster,
                svm,
                subsystem,
                ..
            } => vec![LockKey::ontap(cluster, svm, "subsystem", subsystem)],
            BlockStep::MapLun {
                cluster,
                svm,
                lun,
                igroup,
            }
            | BlockStep::UnmapLun {
                cluster,
                svm,
                lun,
                igroup,
            } => vec![
                LockKey::ontap(cluster, svm, "lun", lun),
                LockKey::ontap(cluster, svm, "igroup", igroup),
            ],
            BlockStep::MapNamespace {
                cluster,
                svm,
                namespace,
                subsystem,
            }
            | BlockStep::UnmapNamespace {
                cluster,
                svm,
                namespace,
                subsystem,
            } => vec![
                LockKey::ontap(cluster, svm, "namespace", namespace),
                LockKey::ontap(cluster, svm, "subsystem", subsystem),
            ],
            BlockStep::ConfigureMultipath { host }
            | BlockStep::ConnectIscsi { host, .. }
            | BlockStep::ConnectNvme { host, .. }
            | BlockStep::AttachLun { host, .. }
            | BlockStep::AttachNamespace { host, .. }
            | BlockStep::ConfigureO2cb { host, .. }
            | BlockStep::RegisterCluster { host, .. }
            | BlockStep::FormatOcfs2 { host, .. }
            | BlockStep::ReuuidOcfs2 { host, .. }
            | BlockStep::ConfigureCorosync { host, .. }
            | BlockStep::StartClusterServices { host }
            | BlockStep::FormatGfs2 { host, .. }
            | BlockStep::StopClusterServices { host, .. }
            | BlockStep::RemoveCorosyncConfig { host, .. }
            | BlockStep::MountOcfs2 { host, .. }
            | BlockStep::PersistFstab { host, .. }
            | BlockStep::DefinePool { host, .. }
            | BlockStep::RemovePool { host, .. }
            | BlockStep::RemoveFstab { host, .. }
            | BlockStep::UnmountOcfs2 { host, .. }
            | BlockStep::DetachLun { host, .. }
            | BlockStep::DisconnectNvme { host, .. }
            | BlockStep::DisconnectIscsi { host, .. }
            | BlockStep::UnregisterCluster { host, .. }
            | BlockStep::RemoveO2cbConfig { host, .. }
            | BlockStep::RemoveMultipathConfig { host } => vec![LockKey::host(host)],
        }
    }

    fn reversible(&self) -> bool {
        !matches!(
            self,
            BlockStep::DeleteVolume { .. }
                | BlockStep::DeleteLun { .. }
                | BlockStep::DeleteNamespace { .. }
        )
    }

    async fn apply(&self, env: &Env) -> Result<Applied<BlockOutput>, StepError> {
        let none = |changed: bool| applied(changed, BlockOutput::Nothing);
        match self {
            BlockStep::CreateVolume {
                svm, volume, token, ..
            } => {
                let op = format!("create volume {svm}/{}", volume.name);
                let find = || find_owned_volume(env, svm, &volume.name);
                let volumes = env.ontap().volumes();
                create_once(
                    op,
                    Some(token),
                    find,
                    volumes.create(&volume.san_body(svm, token)),
                )
                .await
                .map(uuid_output)
            }
            BlockStep::CreateLun {
                svm,
                lun,
                size,
                reserved,
                token,
                ..
            } => {
                let op = format!("create LUN {svm}:{lun}");
                let body = LunCreate::new(svm, lun.as_str(), LunOsType::Linux, *size)
                    .comment(token.as_str())
                    .space_reserved(*reserved);
                let find = || owned_lun(env, svm, lun);
                let luns = env.ontap().luns();
                create_once(op, Some(token), find, luns.create(&body))
                    .await
                    .map(uuid_output)
            }
            BlockStep::CreateIgroup {
                svm,
                igroup,
                protocol,
                initiators,
                token,
                ..
            } => create_igroup(env, svm, igroup, *protocol, initiators, Some(token)).await,
            BlockStep::MapLun {
                svm, lun, igroup, ..
            } => map_lun(env, svm, lun, igroup).await,
            BlockStep::CreateNamespace {
                svm,
                namespace,
                size,
                token,
                ..
            } => {
                let op = format!("create namespace {svm}:{namespace}");
                let body = NamespaceCreate::new(svm, namespace.as_str(), NvmeOsType::Linux, *size)
                    .comment(token.as_str());
                let find = || owned_namespace(env, svm, namespace);
                let namespaces = env.ontap().namespaces();
                create_once(op, Some(token), find, namespaces.create(&body))
                    .await
                    .map(uuid_output)
            }
            BlockStep::CreateSubsystem {
                svm,
                subsystem,
                hosts,
                token,
                ..
            } => create_subsystem(env, svm, subsystem, hosts, Some(token)).await,
            BlockStep::MapNamespace {
                svm,
                namespace,
                subsystem,
                ..
            } => map_namespace(env, svm, namespace, subsystem).await,
            BlockStep::ConfigureMultipath { host } => {
                configure_multipath(env.find_host(host)?).await
            }
            BlockStep::ConnectIscsi {
                host,
                target,
                portals,
            } => connect_iscsi(env.find_host(host)?, target, portals).await,
            BlockStep::ConnectNvme {
                host,
                svm,
                subsystem,
                addresses,
            } => connect_nvme(env, env.find_host(host)?, svm, subsystem, addresses).await,
            BlockStep::AttachLun {
                host,
                svm,
                lun,
                igroup,
                path,
                wait_secs,
            } => {
                attach_lun(
                    env,
                    env.find_host(host)?,
                    svm,
                    lun,
                    igroup,
                    path,
                    *wait_secs,
                )
                .await
            }
            BlockStep::AttachNamespace {
                host,
                svm,
                namespace,
                wait_secs,
            } => attach_namespace(env, env.find_host(host)?, svm, namespace, *wait_secs).await,
            BlockStep::ConfigureO2cb {
                host,
                cluster,
                nodes,
            } => configure_o2cb(env.find_host(host)?, cluster, nodes),
            BlockStep::RegisterCluster { host, cluster } => {
                register_cluster(env.find_host(host)?, cluster).await
            }
            BlockStep::FormatOcfs2 {
                host,
                disk,
                label,
                cluster,
                slots,
            } => format_ocfs2(env, env.find_host(host)?, disk, label, cluster, *slots).await,
            BlockStep::ReuuidOcfs2 {
                host,
                disk,
                parent_uuid,
                ..
            } => reuuid_ocfs2(env, env.find_host(host)?, disk, parent_uuid).await,
            BlockStep::ConfigureCorosync {
                host,
                cluster,
                nodes,
            } => configure_corosync(env.find_host(host)?, cluster, nodes),
            BlockStep::StartClusterServices { host } => start_services(env.find_host(host)?).await,
            BlockStep::FormatGfs2 {
                host,
                disk,
                lock_table,
                journals,
            } => format_gfs2(env, env.find_host(host)?, disk, lock_table, *journals).await,
            BlockStep::StopClusterServices {
                host,
                cluster,
                nodes,
            } => Ok(none(
                stop_services(env.find_host(host)?, cluster, nodes, None).await?,
            )),
            BlockStep::RemoveCorosyncConfig {
                host,
                cluster,
                nodes,
            } => Ok(none(unconfigure_corosync(
                env.find_host(host)?,
                cluster,
                nodes,
                None,
            )?)),
            BlockStep::MountOcfs2 {
                host,
                disk,
                target,
                fs,
            } => mount_ocfs2(env, env.find_host(host)?, disk, target, *fs).await,
            BlockStep::PersistFstab {
                host,
                id,
                disk,
                target,
                fs,
            } => add_fstab(env, env.find_host(host)?, id, disk, target, *fs).await,
            BlockStep::DefinePool { host, pool } => {
                Ok(from_nfs(ensure_pool(env.find_host(host)?, pool).await?))
            }
            BlockStep::RemovePool { host, pool } => {
                Ok(none(remove_pool(env.find_host(host)?, pool, false).await?))
            }
            BlockStep::RemoveFstab { host, id, .. } => {
                Ok(none(remove_fstab(env.find_host(host)?, id)?))
            }
            BlockStep::UnmountOcfs2 {
                host, target, fs, ..
            } => Ok(none(
                unmount_ocfs2(env.find_host(host)?, target, true, *fs).await?,
            )),
            BlockStep::DetachLun { host, svm, lun, .. } => Ok(none(
                detach_lun(env, env.find_host(host)?, svm, lun, None).await?,
            )),
            BlockStep::DisconnectNvme {
                host,
                svm,
                subsystem,
                addresses,
            } => Ok(none(
                disconnect_nvme(env, env.find_host(host)?, svm, subsystem, addresses, None).await?,
            )),
            BlockStep::DisconnectIscsi {
                host,
                target,
                portals,
            } => Ok(none(
                disconnect_iscsi(env.find_host(host)?, target, portals, None).await?,
            )),
            BlockStep::UnregisterCluster { host, cluster } => Ok(none(
                unregister_cluster(env.find_host(host)?, cluster).await?,
            )),
            BlockStep::RemoveO2cbConfig {
                host,
                cluster,
                nodes,
            } => Ok(none(unconfigure_o2cb(
                env.find_host(host)?,
                cluster,
                nodes,
                None,
            )?)),
            BlockStep::RemoveMultipathConfig { host } => Ok(none(
                unconfigure_multipath(env.find_host(host)?, None).await?,
            )),
            BlockStep::UnmapLun {
                svm, lun, igroup, ..
            } => Ok(none(unmap_lun(env, svm, lun, igroup).await?)),
            BlockStep::DeleteIgroup { svm, igroup, .. } => {
                Ok(none(delete_igroup(env, svm, igroup, None).await?))
            }
            BlockStep::UnmapNamespace {
                svm,
                namespace,
                subsystem,
                ..
            } => Ok(none(unmap_namespace(env, svm, namespace, subsystem).await?)),
            BlockStep::DeleteSubsystem { svm, subsystem, .. } => {
                Ok(none(delete_subsystem(env, svm, subsystem, None).await?))
            }
            BlockStep::DeleteLun { svm, lun, .. } => {
                Ok(none(delete_lun(env, svm, lun, None, None).await?))
            }
            BlockStep::DeleteNamespace { svm, namespace, .. } => Ok(none(
                delete_namespace(env, svm, namespace, None, None).await?,
            )),
            BlockStep::DeleteVolume { svm, name, .. } => {
                Ok(none(delete_volume(env, svm, name, None, None).await?))
            }
        }
    }

    async fn undo(&self, env: &Env, output: Option<&BlockOutput>) -> Result<bool, StepError> {
        match self {
            BlockStep::CreateVolume {
                svm, volume, token, ..
            } => delete_volume(env, svm, &volume.name, Some(token), uuid_of(output)).await,
            BlockStep::CreateLun {
                svm, lun, token, ..
            } => delete_lun(env, svm, lun, Some(token), uuid_of(output)).await,
            BlockStep::CreateIgroup {
                svm, igroup, token, ..
            } => delete_igroup(env, svm, igroup, Some(token)).await,
            BlockStep::MapLun {
                svm, lun, igroup, ..
            } => unmap_lun(env, svm, lun, igroup).await,
            BlockStep::CreateNamespace {
                svm,
                namespace,
                token,
                ..
            } => delete_namespace(env, svm, namespace, Some(token), uuid_of(output)).await,
            BlockStep::CreateSubsystem {
                svm,
                subsystem,
                token,
                ..
            } => delete_subsystem(env, svm, subsystem, Some(token)).await,
            BlockStep::MapNamespace {
                svm,
                namespace,
                subsystem,
                ..
            } => unmap_namespace(env, svm, namespace, subsystem).await,
            BlockStep::ConfigureMultipath { host } => {
                unconfigure_multipath(env.find_host(host)?, output).await
            }
            BlockStep::ConnectIscsi {
                host,
                target,
                portals,
            } => disconnect_iscsi(env.find_host(host)?, target, portals, output).await,
            BlockStep::ConnectNvme {
                host,
                svm,
                subsystem,
                addresses,
            } => {
                disconnect_nvme(env, env.find_host(host)?, svm, subsystem, addresses, output).await
            }
            BlockStep::AttachLun { host, svm, lun, .. } => {
                detach_lun(env, env.find_host(host)?, svm, lun, output).await
            }
            // The namespace's device goes with the controllers (ConnectNvme's undo).
            BlockStep::AttachNamespace { .. } => Ok(false),
            BlockStep::ConfigureO2cb {
                host,
                cluster,
                nodes,
            } => unconfigure_o2cb(env.find_host(host)?, cluster, nodes, output),
            BlockStep::RegisterCluster { host, cluster } => {
                unregister_cluster(env.find_host(host)?, cluster).await
            }
            // Data is never destroyed by an undo; the disk this run created goes with its
            // own undo.
            BlockStep::FormatOcfs2 { .. } => Ok(false),
            // The parent's UUID must not come back; the clone's own undo (or the operator)
            // removes the clone.
            BlockStep::ReuuidOcfs2 { .. } => Ok(false),
            BlockStep::FormatGfs2 { .. } => Ok(false),
            BlockStep::ConfigureCorosync {
                host,
                cluster,
                nodes,
            } => unconfigure_corosync(env.find_host(host)?, cluster, nodes, output),
            BlockStep::StartClusterServices { host } => {
                // Without a recorded result, only this datastore's cluster is stopped.
                let h = env.find_host(host)?;
                match output {
                    Some(o) => stop_services(h, "", &[], Some(o)).await,
                    None => {
                        let units: Vec<UnitState> = GFS2_UNITS
                            .iter()
                            .map(|u| UnitState {
                                unit: (*u).to_owned(),
                                enabled: true,
                                started: true,
                            })
                            .collect();
                        if mounted_kind(h, "gfs2") {
                            return Ok(false);
                        }
                        stop_units(h, &units).await
                    }
                }
            }
            BlockStep::StopClusterServices { host, .. } => {
                Ok(start_services(env.find_host(host)?).await?.changed)
            }
            BlockStep::RemoveCorosyncConfig {
                host,
                cluster,
                nodes,
            } => Ok(configure_corosync(env.find_host(host)?, cluster, nodes)?.changed),
            BlockStep::MountOcfs2 {
                host, target, fs, ..
            } => {
                let remove_dir = match output {
                    Some(BlockOutput::Mount { created_dir }) => *created_dir,
                    _ => true,
                };
                unmount_ocfs2(env.find_host(host)?, target, remove_dir, *fs).await
            }
            BlockStep::PersistFstab { host, id, .. } => remove_fstab(env.find_host(host)?, id),
            BlockStep::DefinePool { host, pool } => {
                remove_pool(env.find_host(host)?, pool, true).await
            }
            BlockStep::RemovePool { host, pool } => {
                Ok(ensure_pool(env.find_host(host)?, pool).await?.changed)
            }
            BlockStep::RemoveFstab {
                host,
                id,
                disk,
                target,
                fs,
            } => Ok(add_fstab(env, env.find_host(host)?, id, disk, target, *fs)
                .await?
                .changed),
            BlockStep::UnmountOcfs2 {
                host,
                disk,
                target,
                fs,
            } => Ok(mount_ocfs2(env, env.find_host(host)?, disk, target, *fs)
                .await?
                .changed),
            BlockStep::DetachLun {
                host,
                svm,
                lun,
                igroup,
                path,
                wait_secs,
            } => Ok(attach_lun(
                env,
                env.find_host(host)?,
                svm,
                lun,
                igroup,
                path,
                *wait_secs,
            )
            .await?
            .changed),
            BlockStep::DisconnectNvme {
                host,
                svm,
                subsystem,
                addresses,
            } => Ok(
                connect_nvme(env, env.find_host(host)?, svm, subsystem, addresses)
                    .await?
                    .changed,
            ),
            BlockStep::DisconnectIscsi {
                host,
                target,
                portals,
            } => Ok(connect_iscsi(env.find_host(host)?, target, portals)
                .await?
                .changed),
            BlockStep::UnregisterCluster { host, cluster } => {
                Ok(register_cluster(env.find_host(host)?, cluster)
                    .await?
                    .changed)
            }
            BlockStep::RemoveO2cbConfig {
                host,
                cluster,
                nodes,
            } => Ok(configure_o2cb(env.find_host(host)?, cluster, nodes)?.changed),
            BlockStep::RemoveMultipathConfig { host } => {
                Ok(configure_multipath(env.find_host(host)?).await?.changed)
            }
            BlockStep::UnmapLun {
                svm, lun, igroup, ..
            } => Ok(map_lun(env, svm, lun, igroup).await?.changed),
            BlockStep::DeleteIgroup {
                svm,
                igroup,
                protocol,
                initiators,
                ..
            } => Ok(create_igroup(env, svm, igroup, *protocol, initiators, None)
                .await?
                .changed),
            BlockStep::UnmapNamespace {
                svm,
                namespace,
                subsystem,
                ..
            } => Ok(map_namespace(env, svm, namespace, subsystem).await?.changed),
            BlockStep::DeleteSubsystem {
                svm,
                subsystem,
                hosts,
                ..
            } => Ok(create_subsystem(env, svm, subsystem, hosts, None)
                .await?
                .changed),
            BlockStep::DeleteLun { .. }
            | BlockStep::DeleteNamespace { .. }
            | BlockStep::DeleteVolume { .. } => Err(StepError::Irreversible { step: self.label() }),
        }
    }
}

/// The request: a LUN (iSCSI, FC) or namespace (NVMe/TCP) on an SVM, shared by hosts,
/// formatted OCFS2 and attached as a libvirt `dir` pool.
///
/// ```
/// use kvmstor::block::{BlockDatastore, BlockProtocol};
/// let ds = BlockDatastore::iscsi_ocfs2("svm1", "vmblock", "aggr1", 100 << 30)
///     .hosts(["kvm1", "kvm2"])
///     .mount_point("/var/lib/kvmstor/mnt/vmblock");
/// assert_eq!(ds.initiator_group(), "kvmstor_vmblock");
/// assert_eq!(ds.disk_path(), "/vol/vmblock/lun0");
/// let nvme = BlockDatastore::new(BlockProtocol::NvmeTcp, "svm1", "vmns", "aggr1", 100 << 30);
/// assert_eq!(nvme.disk_path(), "/vol/vmns/ns0");
/// ```
#[derive(Debug, Clone)]
pub struct BlockDatastore {
    protocol: BlockProtocol,
    svm: String,
    pool: String,
    volume: VolumeRequest,
    disk_size: u64,
    hosts: Vec<String>,
    mount_point: PathBuf,
    o2cb_cluster: String,
    device_wait: Duration,
    clone_of: Option<String>,
    fs: ClusterFsKind,
    delete_ontap_objects: bool,
}

impl BlockDatastore {
    /// Pool `name` over `protocol` on a disk (LUN or namespace) of `size` bytes in a thin
    /// volume on `aggregate` of `svm`; the volume is 10% larger than the disk (room for
    /// its metadata and snapshots of a thin disk), OCFS2 in o2cb cluster `kvmstor`, mounted
    /// at `/var/lib/kvmstor/mnt/<name>`; no hosts yet.
    pub fn new(protocol: BlockProtocol, svm: &str, name: &str, aggregate: &str, size: u64) -> Self {
        BlockDatastore {
            protocol,
            svm: svm.to_owned(),
            pool: name.to_owned(),
            volume: VolumeRequest {
                name: crate::default_volume_name(name),
                aggregate: aggregate.to_owned(),
                size: size + size / 10,
                thin: true,
                efficiency: None,
                snapshot_policy: None,
                tiering: None,
                encryption: None,
                anti_ransomware: None,
            },
            disk_size: size,
            hosts: Vec::new(),
            mount_point: PathBuf::from(format!("/var/lib/kvmstor/mnt/{name}")),
            o2cb_cluster: "kvmstor".into(),
            device_wait: DEVICE_TIMEOUT,
            clone_of: None,
            fs: ClusterFsKind::Ocfs2,
            delete_ontap_objects: false,
        }
    }

    /// The datastore is a FlexClone (made with [`crate::ops::flexclone`]) of an OCFS2
    /// datastore whose file system has UUID `parent_uuid`: its volume and disk exist
    /// already (attach finds them and detach keeps them unless asked), and instead of a
    /// format the attach gives the clone's file system a new UUID (`tunefs.ocfs2
    /// --cloned-volume`, which labels it `<parent label>-cloned`: a clone of a mounted file
    /// system has dirty journals until its first mount, so it is not relabeled).
    #[must_use]
    pub fn cloned_ocfs2(mut self, parent_uuid: impl Into<String>) -> Self {
        self.clone_of = Some(parent_uuid.into());
        self
    }

    /// GFS2 (corosync, DLM, `lock_dlm`, one journal per host) instead of OCFS2. The
    /// cluster name ([`BlockDatastore::o2cb_cluster`]) is corosync's; the lock table is
    /// `<cluster>:<pool>` (at most 30 characters of letters, digits, `-` and `_`). DLM
    /// fencing stays on, as GFS2 needs: the hosts need a fencing setup (e.g. pacemaker with
    /// a STONITH agent) before a node failure can be recovered.
    #[must_use]
    pub fn gfs2(mut self) -> Self {
        self.fs = ClusterFsKind::Gfs2;
        self
    }

    /// [`BlockDatastore::new`] over iSCSI.
    pub fn iscsi_ocfs2(svm: &str, name: &str, aggregate: &str, size: u64) -> Self {
        Self::new(BlockProtocol::Iscsi, svm, name, aggregate, size)
    }

    /// The hosts (by name, as in the [`Env`]); the first formats the file system.
    #[must_use]
    pub fn hosts<I: IntoIterator<Item = S>, S: Into<String>>(mut self, hosts: I) -> Self {
        self.hosts = hosts.into_iter().map(Into::into).collect();
        self
    }

    /// The mount point on every host.
    #[must_use]
    pub fn mount_point(mut self, path: impl Into<PathBuf>) -> Self {
        self.mount_point = path.into();
        self
    }

    /// The o2cb cluster name (default `kvmstor`; a host runs one o2cb cluster, so every
    /// OCFS2 datastore of a host uses the same).
    #[must_use]
    pub fn o2cb_cluster(mut self, name: impl Into<String>) -> Self {
        self.o2cb_cluster = name.into();
        self
    }

    /// How long each host waits for the disk's device (default [`DEVICE_TIMEOUT`], at least
    /// one second).
    #[must_use]
    pub fn device_wait(mut self, wait: Duration) -> Self {
        self.device_wait = wait;
        self
    }

    /// Thick provisioning (a space-reserved LUN, a guaranteed volume) instead of thin.
    #[must_use]
    pub fn thick(mut self) -> Self {
        self.volume.thin = false;
        self
    }

    /// Detach also deletes the igroup or subsystem, the disk and the volume (and the data).
    /// Off by default.
    #[must_use]
    pub fn delete_ontap_objects(mut self, yes: bool) -> Self {
        self.delete_ontap_objects = yes;
        self
    }

    /// The protocol.
    pub fn protocol(&self) -> BlockProtocol {
        self.protocol
    }

    /// The igroup's or subsystem's name: `kvmstor_<pool>`.
    pub fn initiator_group(&self) -> String {
        format!("kvmstor_{}", self.pool.replace(['-', '.'], "_"))
    }

    /// The disk's path name: `/vol/<volume>/lun0` or `/vol/<volume>/ns0`.
    pub fn disk_path(&self) -> String {
        match self.protocol {
            BlockProtocol::NvmeTcp => format!("/vol/{}/ns0", self.volume.name),
            _ => format!("/vol/{}/lun0", self.volume.name),
        }
    }

    /// The disk as journaled.
    pub fn disk(&self) -> DiskRef {
        match self.protocol {
            BlockProtocol::NvmeTcp => DiskRef::Namespace {
                svm: self.svm.clone(),
                path: self.disk_path(),
            },
            _ => DiskRef::Lun {
                svm: self.svm.clone(),
                path: self.disk_path(),
            },
        }
    }

    /// The volume's name.
    pub fn volume(&self) -> &str {
        &self.volume.name
    }

    fn entry_id(&self) -> String {
        datastore::entry_id(&self.pool)
    }

    /// The GFS2 file-system name: the pool's, at most 30 of letters, digits, `-`, `_`.
    fn fs_name(&self) -> String {
        let mut n: String = self
            .pool
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        n.truncate(30);
        n
    }

    fn label(&self) -> String {
        let mut l: String = self
            .pool
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        l.truncate(63);
        l
    }

    fn workflow(&self, verb: &str) -> String {
        format!(
            "{}-{}-{verb} {}/{} as pool {}",
            self.protocol.as_str(),
            self.fs.as_str(),
            self.svm,
            self.volume.name,
            self.pool
        )
    }

    fn plan_err(&self, source: StepError) -> Error {
        Error::Plan {
            workflow: self.workflow("attach"),
            source: Box::new(source),
        }
    }

    fn ontap_plan_err(&self, operation: String) -> impl FnOnce(ontap_client::Error) -> Error + '_ {
        move |source| {
            self.plan_err(StepError::Ontap {
                operation,
                source: Box::new(source),
            })
        }
    }

    fn validate(&self, env: &Env) -> Result<()> {
        datastore::require_hosts(&self.hosts)?;
        if self.hosts.len() > 255 {
            return Err(Error::Invalid {
                field: "hosts",
                value: self.hosts.len().to_string(),
                reason: "OCFS2 has at most 255 node slots",
            });
        }
        for h in &self.hosts {
            env.find_host(h).map_err(|e| self.plan_err(e))?;
        }
        datastore::check_entry_id(&self.pool)?;
        // A clone is not formatted: its disk has the parent's size.
        if self.clone_of.is_none() && self.disk_size < self.min_disk_size() {
            return Err(Error::Invalid {
                field: "size",
                value: self.disk_size.to_string(),
                reason: match self.fs {
                    ClusterFsKind::Ocfs2 => {
                        "mkfs.ocfs2 -T vmstore needs a disk of at least 2 GiB (2147483648 bytes)"
                    }
                    ClusterFsKind::Gfs2 => {
                        "mkfs.gfs2 needs at least 16 MiB of disk per journal (one per host, at least 2)"
                    }
                },
            });
        }
        Ok(())
    }

    /// The smallest disk the file system's mkfs accepts for this datastore.
    ///
    /// OCFS2: `mkfs.ocfs2 -T vmstore` refuses a device under 2 GiB ("Selected file system
    /// type requires a device of at least 2 gigabytes"; 2047 MiB refused, 2048 MiB made
    /// with 4 slots, ocfs2-tools 1.8). More slots need somewhat more (16 slots fail at
    /// 2112 MiB): that is left to mkfs. GFS2: gfs2-utils 3.5.0 sizes journals after the
    /// device (8 MiB each below 512 MiB) and refuses ("gfs2 will not fit on this device")
    /// below 16 MiB per journal: measured 16, 32, 64, 128 and 256 MiB as the smallest
    /// devices for 1, 2, 4, 8 and 16 journals (32 journals fit in 456 MiB, so this is exact
    /// up to 16 hosts and slightly strict beyond).
    fn min_disk_size(&self) -> u64 {
        const MIB: u64 = 1 << 20;
        match self.fs {
            ClusterFsKind::Ocfs2 => 2048 * MIB,
            ClusterFsKind::Gfs2 => 16 * MIB * u64::from(self.gfs2_journals()),
        }
    }

    /// GFS2 journals: one per host, at least 2 (a second host can join without a grow).
    fn gfs2_journals(&self) -> u16 {
        u16::try_from(self.hosts.len().max(2)).unwrap_or(255)
    }

    /// The addresses of the SVM's LIFs offering `service` that are up and enabled, sorted
    /// by LIF name.
    async fn lif_addresses(&self, env: &Env, service: IpService) -> Result<Vec<String>> {
        let lifs = env
            .ontap()
            .ip_interfaces()
            .data_lifs(&self.svm, &service)
            .await
            .map_err(self.ontap_plan_err(format!("list {service} LIFs of {}", self.svm)))?;
        let mut up: Vec<(String, String)> = lifs
            .iter()
            .filter(|l| l.enabled != Some(false))
            .filter(|l| l.state.as_ref().is_none_or(|s| *s == InterfaceState::Up))
            .filter_map(|l| Some((l.name.clone().unwrap_or_default(), l.address()?.to_owned())))
            .collect();
        up.sort();
        if up.is_empty() {
            return Err(Error::NoServiceLif {
                svm: self.svm.clone(),
                service: service.to_string(),
            });
        }
        Ok(up.into_iter().map(|(_, a)| a).collect())
    }

    /// The SVM's iSCSI target name and the portals (`address:3260`) of its `data_iscsi`
    /// LIFs that are up and enabled, sorted by LIF name.
    pub async fn iscsi_target(&self, env: &Env) -> Result<(String, Vec<String>)> {
        let op = || format!("get iSCSI service of {}", self.svm);
        let svc = env
            .ontap()
            .iscsi_services()
            .find(
                &Query::new()
                    .filter("svm.name", &self.svm)
                    .fields(["svm", "enabled", "target"]),
            )
            .await
            .map_err(self.ontap_plan_err(op()))?;
        let target = svc
            .and_then(|s| s.target)
            .and_then(|t| t.name)
            .ok_or_else(|| {
                self.plan_err(StepError::MissingField {
                    operation: op(),
                    field: "target.name",
                })
            })?;
        let portals = self
            .lif_addresses(env, IpService::DataIscsi)
            .await?
            .into_iter()
            .map(|a| {
                if a.contains(':') {
                    format!("[{a}]:{ISCSI_PORT}")
                } else {
                    format!("{a}:{ISCSI_PORT}")
                }
            })
            .collect();
        Ok((target, portals))
    }

    /// The WWPNs of the SVM's enabled FC LIFs that serve FCP.
    pub async fn fc_targets(&self, env: &Env) -> Result<Vec<String>> {
        let lifs = env
            .ontap()
            .fc_interfaces()
            .of_svm(&self.svm)
            .await
            .map_err(self.ontap_plan_err(format!("list FC LIFs of {}", self.svm)))?;
        let mut out: Vec<String> = lifs
            .iter()
            .filter(|l| l.enabled != Some(false))
            .filter(|l| {
                l.data_protocol
                    .as_ref()
                    .is_none_or(|p| p.to_string() == "fcp")
            })
            .filter_map(|l| l.wwpn.clone())
            .collect();
        out.sort();
        if out.is_empty() {
            return Err(Error::NoServiceLif {
                svm: self.svm.clone(),
                service: "fcp".into(),
            });
        }
        Ok(out)
    }

    /// Each host's initiator identity: its IQN (iSCSI), its online HBA WWPNs (FC) or its
    /// host NQN (NVMe).
    fn initiators(&self, env: &Env) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for h in &self.hosts {
            let host = env.find_host(h).map_err(|e| self.plan_err(e))?;
            let herr = |operation: &str| {
                let operation = operation.to_owned();
                move |source| {
                    self.plan_err(StepError::Host {
                        host: h.clone(),
                        operation,
                        source: Box::new(source),
                    })
                }
            };
            let missing = |what| {
                self.plan_err(StepError::NoHostIdentity {
                    host: h.clone(),
                    what,
                })
            };
            match self.protocol {
                BlockProtocol::Iscsi => {
                    let iqn = host_storage::identity::initiator_iqn(host.host_root())
                        .map_err(herr("read /etc/iscsi/initiatorname.iscsi"))?
                        .ok_or_else(|| missing("iSCSI initiator name"))?;
                    out.push(iqn.as_str().to_owned());
                }
                BlockProtocol::Fcp => {
                    let ports: Vec<String> = host_storage::identity::fc_hosts(host.host_root())
                        .map_err(herr("list FC HBAs"))?
                        .into_iter()
                        .filter(host_storage::identity::FcHost::is_online)
                        .map(|p| p.wwpn.to_string())
                        .collect();
                    if ports.is_empty() {
                        return Err(missing("online FC HBA port"));
                    }
                    out.extend(ports);
                }
                BlockProtocol::NvmeTcp => {
                    let id = host_storage::identity::nvme_identity(host.host_root())
                        .map_err(herr("read /etc/nvme/hostnqn"))?
                        .ok_or_else(|| missing("NVMe host NQN"))?;
                    out.push(id.host_nqn.as_str().to_owned());
                }
            }
        }
        Ok(out)
    }

    fn cluster_nodes(&self, env: &Env) -> Result<Vec<ClusterNode>> {
        self.hosts
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let host = env.find_host(h).map_err(|e| self.plan_err(e))?;
                let address = host
                    .addresses()
                    .iter()
                    .find_map(|a| a.parse::<IpAddr>().ok())
                    .ok_or_else(|| {
                        self.plan_err(StepError::NoHostIdentity {
                            host: h.clone(),
                            what: "IP address for the o2cb interconnect",
                        })
                    })?;
                Ok(ClusterNode {
                    name: h.clone(),
                    number: u8::try_from(i).unwrap_or(254),
                    address,
                })
            })
            .collect()
    }

    fn pool_request(&self) -> PoolRequest {
        PoolRequest {
            name: self.pool.clone(),
            target: self.mount_point.clone(),
            netfs: None,
        }
    }

    fn wait_secs(&self) -> u64 {
        self.device_wait.as_secs().max(1)
    }

    /// How hosts reach the disk, looked up once per workflow.
    async fn reach(&self, env: &Env) -> Result<Reach> {
        Ok(match self.protocol {
            BlockProtocol::Iscsi => {
                let (target, portals) = self.iscsi_target(env).await?;
                Reach::Iscsi { target, portals }
            }
            BlockProtocol::Fcp => Reach::Fc {
                targets: self.fc_targets(env).await?,
            },
            BlockProtocol::NvmeTcp => Reach::Nvme {
                addresses: self.lif_addresses(env, IpService::DataNvmeTcp).await?,
            },
        })
    }

    /// The attach workflow (looks up the SVM's target and LIFs and the hosts' identities;
    /// nothing is changed).
    pub async fn attach(&self, env: &Env) -> Result<Saga<BlockStep>> {
        self.validate(env)?;
        let reach = self.reach(env).await?;
        let initiators = self.initiators(env)?;
        let nodes = self.cluster_nodes(env)?;
        let cluster = env.cluster().to_owned();
        let token = datastore::ownership_token(&self.pool);
        let (svm, disk, group) = (self.svm.clone(), self.disk_path(), self.initiator_group());
        let mut steps = vec![BlockStep::CreateVolume {
            cluster: cluster.clone(),
            svm: svm.clone(),
            volume: self.volume.clone(),
            token: token.clone(),
        }];
        if self.protocol == BlockProtocol::NvmeTcp {
            steps.push(BlockStep::CreateNamespace {
                cluster: cluster.clone(),
                svm: svm.clone(),
                namespace: disk.clone(),
                size: self.disk_size,
                token: token.clone(),
            });
            steps.push(BlockStep::CreateSubsystem {
                cluster: cluster.clone(),
                svm: svm.clone(),
                subsystem: group.clone(),
                hosts: initiators,
                token,
            });
            steps.push(BlockStep::MapNamespace {
                cluster,
                svm: svm.clone(),
                namespace: disk.clone(),
                subsystem: group.clone(),
            });
        } else {
            steps.push(BlockStep::CreateLun {
                cluster: cluster.clone(),
                svm: svm.clone(),
                lun: disk.clone(),
                size: self.disk_size,
                reserved: !self.volume.thin,
                token: token.clone(),
            });
            steps.push(BlockStep::CreateIgroup {
                cluster: cluster.clone(),
                svm: svm.clone(),
                igroup: group.clone(),
                protocol: self.protocol,
                initiators,
                token,
            });
            steps.push(BlockStep::MapLun {
                cluster,
                svm: svm.clone(),
                lun: disk.clone(),
                igroup: group.clone(),
            });
        }
        for h in &self.hosts {
            match &reach {
                Reach::Iscsi { target, portals } => {
                    steps.push(BlockStep::ConfigureMultipath { host: h.clone() });
                    steps.push(BlockStep::ConnectIscsi {
                        host: h.clone(),
                        target: target.clone(),
                        portals: portals.clone(),
                    });
                }
                Reach::Fc { .. } => steps.push(BlockStep::ConfigureMultipath { host: h.clone() }),
                Reach::Nvme { addresses } => steps.push(BlockStep::ConnectNvme {
                    host: h.clone(),
                    svm: svm.clone(),
                    subsystem: group.clone(),
                    addresses: addresses.clone(),
                }),
            }
            match reach.scsi_path() {
                Some(path) => steps.push(BlockStep::AttachLun {
                    host: h.clone(),
                    svm: svm.clone(),
                    lun: disk.clone(),
                    igroup: group.clone(),
                    path,
                    wait_secs: self.wait_secs(),
                }),
                None => steps.push(BlockStep::AttachNamespace {
                    host: h.clone(),
                    svm: svm.clone(),
                    namespace: disk.clone(),
                    wait_secs: self.wait_secs(),
                }),
            }
            match self.fs {
                ClusterFsKind::Gfs2 => {
                    steps.push(BlockStep::ConfigureCorosync {
                        host: h.clone(),
                        cluster: self.o2cb_cluster.clone(),
                        nodes: nodes.clone(),
                    });
                    steps.push(BlockStep::StartClusterServices { host: h.clone() });
                }
                ClusterFsKind::Ocfs2 => {
                    steps.push(BlockStep::ConfigureO2cb {
                        host: h.clone(),
                        cluster: self.o2cb_cluster.clone(),
                        nodes: nodes.clone(),
                    });
                    steps.push(BlockStep::RegisterCluster {
                        host: h.clone(),
                        cluster: self.o2cb_cluster.clone(),
                    });
                }
            }
        }
        steps.push(match &self.clone_of {
            _ if self.fs == ClusterFsKind::Gfs2 => BlockStep::FormatGfs2 {
                host: self.hosts[0].clone(),
                disk: self.disk(),
                lock_table: format!("{}:{}", self.o2cb_cluster, self.fs_name()),
                journals: self.gfs2_journals(),
            },
            Some(parent) => BlockStep::ReuuidOcfs2 {
                host: self.hosts[0].clone(),
                disk: self.disk(),
                parent_uuid: parent.clone(),
                label: self.label(),
            },
            None => BlockStep::FormatOcfs2 {
                host: self.hosts[0].clone(),
                disk: self.disk(),
                label: self.label(),
                cluster: self.o2cb_cluster.clone(),
                slots: u16::try_from(self.hosts.len().max(4)).unwrap_or(255),
            },
        });
        for h in &self.hosts {
            steps.push(BlockStep::MountOcfs2 {
                host: h.clone(),
                disk: self.disk(),
                target: self.mount_point.clone(),
                fs: self.fs,
            });
            steps.push(BlockStep::PersistFstab {
                host: h.clone(),
                id: self.entry_id(),
                disk: self.disk(),
                target: self.mount_point.clone(),
                fs: self.fs,
            });
            steps.push(BlockStep::DefinePool {
                host: h.clone(),
                pool: self.pool_request(),
            });
        }
        Ok(Saga::new(self.workflow("attach"), steps))
    }

    /// The detach workflow: per host the pool (data kept), the fstab line, the mount, the
    /// disk's devices and the sessions or controllers left without devices, the o2cb
    /// cluster and host-wide settings nothing else uses; then the map; only with
    /// [`BlockDatastore::delete_ontap_objects`] the igroup or subsystem, the disk and the
    /// volume.
    pub async fn detach(&self, env: &Env) -> Result<Saga<BlockStep>> {
        self.validate(env)?;
        let reach = self.reach(env).await?;
        let nodes = self.cluster_nodes(env)?;
        let cluster = env.cluster().to_owned();
        let (svm, disk, group) = (self.svm.clone(), self.disk_path(), self.initiator_group());
        let mut steps = Vec::new();
        for h in &self.hosts {
            steps.push(BlockStep::RemovePool {
                host: h.clone(),
                pool: self.pool_request(),
            });
            steps.push(BlockStep::RemoveFstab {
                host: h.clone(),
                id: self.entry_id(),
                disk: self.disk(),
                target: self.mount_point.clone(),
                fs: self.fs,
            });
            steps.push(BlockStep::UnmountOcfs2 {
                host: h.clone(),
                disk: self.disk(),
                target: self.mount_point.clone(),
                fs: self.fs,
            });
            if let Some(path) = reach.scsi_path() {
                steps.push(BlockStep::DetachLun {
                    host: h.clone(),
                    svm: svm.clone(),
                    lun: disk.clone(),
                    igroup: group.clone(),
                    path,
                    wait_secs: self.wait_secs(),
                });
            }
            match &reach {
                Reach::Iscsi { target, portals } => steps.push(BlockStep::DisconnectIscsi {
                    host: h.clone(),
                    target: target.clone(),
                    portals: portals.clone(),
                }),
                Reach::Fc { .. } => {}
                Reach::Nvme { addresses } => steps.push(BlockStep::DisconnectNvme {
                    host: h.clone(),
                    svm: svm.clone(),
                    subsystem: group.clone(),
                    addresses: addresses.clone(),
                }),
            }
            match self.fs {
                ClusterFsKind::Gfs2 => {
                    steps.push(BlockStep::StopClusterServices {
                        host: h.clone(),
                        cluster: self.o2cb_cluster.clone(),
                        nodes: nodes.clone(),
                    });
                    steps.push(BlockStep::RemoveCorosyncConfig {
                        host: h.clone(),
                        cluster: self.o2cb_cluster.clone(),
                        nodes: nodes.clone(),
                    });
                }
                ClusterFsKind::Ocfs2 => {
                    steps.push(BlockStep::UnregisterCluster {
                        host: h.clone(),
                        cluster: self.o2cb_cluster.clone(),
                    });
                    steps.push(BlockStep::RemoveO2cbConfig {
                        host: h.clone(),
                        cluster: self.o2cb_cluster.clone(),
                        nodes: nodes.clone(),
                    });
                }
            }
            if reach.scsi_path().is_some() {
                steps.push(BlockStep::RemoveMultipathConfig { host: h.clone() });
            }
        }
        if self.protocol == BlockProtocol::NvmeTcp {
            steps.push(BlockStep::UnmapNamespace {
                cluster: cluster.clone(),
                svm: svm.clone(),
                namespace: disk.clone(),
                subsystem: group.clone(),
            });
        } else {
            steps.push(BlockStep::UnmapLun {
                cluster: cluster.clone(),
                svm: svm.clone(),
                lun: disk.clone(),
                igroup: group.clone(),
            });
        }
        if self.delete_ontap_objects {
            let initiators = self.initiators(env)?;
            if self.protocol == BlockProtocol::NvmeTcp {
                steps.push(BlockStep::DeleteSubsystem {
                    cluster: cluster.clone(),
                    svm: svm.clone(),
                    subsystem: group,
                    hosts: initiators,
                });
                steps.push(BlockStep::DeleteNamespace {
                    cluster: cluster.clone(),
                    svm: svm.clone(),
                    namespace: disk,
                });
            } else {
                steps.push(BlockStep::DeleteIgroup {
                    cluster: cluster.clone(),
                    svm: svm.clone(),
                    igroup: group,
                    protocol: self.protocol,
                    initiators,
                });
                steps.push(BlockStep::DeleteLun {
                    cluster: cluster.clone(),
                    svm: svm.clone(),
                    lun: disk,
                });
            }
            steps.push(BlockStep::DeleteVolume {
                cluster,
                svm,
                name: self.volume.name.clone(),
            });
        }
        Ok(Saga::new(self.workflow("detach"), steps))
    }
}

impl BlockDatastore {
    /// Grows an attached datastore to a disk of `size` bytes: the volume (10% above the
    /// disk), the LUN or namespace, then on every host a rescan of the disk's paths and
    /// `multipathd resize map` (LUNs) or `nvme ns-rescan` on the subsystem's controllers
    /// (namespaces), then `tunefs.ocfs2 -S` on the first host (OCFS2 grows online, the other
    /// nodes see the new size through the cluster). Each stage finds done what is done, so
    /// a retry after a failure continues; shrinking is refused.
    pub async fn grow(&self, env: &Env, size: u64) -> Result<()> {
        self.validate(env)?;
        let op = |what: &str| format!("grow {} to {size} bytes: {what}", self.pool);
        let fail = |what: &str, source: StepError| Error::Operation {
            operation: op(what),
            source: Box::new(source),
        };
        let path = self.disk_path();
        let query = Query::new()
            .filter("svm.name", &self.svm)
            .filter("name", &path)
            .fields(["uuid", "space.size"]);
        let lookup_err = |what: &'static str| {
            let path = path.clone();
            move |e| fail(what, ontap_err(path)(e))
        };
        let missing = |what: &str| {
            fail(
                what,
                StepError::MissingField {
                    operation: path.clone(),
                    field: "record",
                },
            )
        };
        let (uuid, current) = match self.protocol {
            BlockProtocol::NvmeTcp => {
                let n = env
                    .ontap()
                    .namespaces()
                    .find(&query)
                    .await
                    .map_err(lookup_err("get namespace"))?
                    .ok_or_else(|| missing("get namespace"))?;
                (
                    n.uuid.unwrap_or_default(),
                    n.space.and_then(|s| s.size).unwrap_or(0),
                )
            }
            _ => {
                let l = env
                    .ontap()
                    .luns()
                    .find(&query)
                    .await
                    .map_err(lookup_err("get LUN"))?
                    .ok_or_else(|| missing("get LUN"))?;
                (l.uuid.clone().unwrap_or_default(), l.size().unwrap_or(0))
            }
        };
        if size < current {
            return Err(Error::Invalid {
                field: "size",
                value: size.to_string(),
                reason: "a datastore only grows",
            });
        }
        crate::ops::grow_volume(
            env,
            &crate::ops::DatastoreVolume::new(self.svm.clone(), self.volume.name.clone()),
            size + size / 10,
        )
        .await?;
        if size > current {
            let r = match self.protocol {
                BlockProtocol::NvmeTcp => env.ontap().namespaces().resize(&uuid, size).await,
                _ => env.ontap().luns().resize(&uuid, size).await,
            };
            r.map_err(|e| fail("resize the disk", ontap_err(path.clone())(e)))?;
        }
        let disk = self.disk();
        for h in &self.hosts {
            let host = env.find_host(h).map_err(|e| fail("find host", e))?;
            let d = host_disk(env, host, &disk)
                .await
                .map_err(|e| fail("find the device", e))?;
            let herr = |what: String| {
                let host = h.clone();
                move |source| StepError::Host {
                    host,
                    operation: what,
                    source: Box::new(source),
                }
            };
            let sys = Sysfs::new(host.host_root().clone());
            match self.protocol {
                BlockProtocol::NvmeTcp => {
                    let nv = nvme(host);
                    let nqn = subsystem_nqn(env, &self.svm, &self.initiator_group())
                        .await
                        .map_err(|e| fail("get the subsystem NQN", e))?;
                    let ctrls = nv.controllers().map_err(|e| {
                        fail("list controllers", herr("list controllers".into())(e))
                    })?;
                    for c in ctrls
                        .iter()
                        .filter(|c| nqn.as_ref().is_some_and(|n| c.subsysnqn == n.as_str()))
                    {
                        let dev = host.host_root().path(format!("/dev/{}", c.name));
                        host.runner()
                            .run(
                                &host_storage::Command::new("nvme")
                                    .args(["ns-rescan", &dev.display().to_string()]),
                            )
                            .await
                            .map_err(|e| {
                                fail("rescan", herr(format!("nvme ns-rescan {}", c.name))(e))
                            })?;
                    }
                }
                _ => {
                    let slaves = sys.slaves(&d.name).map_err(|e| {
                        fail("list paths", herr(format!("list paths of {}", d.name))(e))
                    })?;
                    for p in &slaves {
                        sys.write(&format!("block/{p}/device/rescan"), "1")
                            .map_err(|e| fail("rescan", herr(format!("rescan {p}"))(e)))?;
                    }
                    let name = sys
                        .dm_name(&d.name)
                        .map_err(|e| fail("rescan", herr(format!("name of {}", d.name))(e)))?
                        .unwrap_or_else(|| d.name.clone());
                    host.runner()
                        .run(&host_storage::Command::new("multipathd").args([
                            "resize",
                            "map",
                            name.as_str(),
                        ]))
                        .await
                        .map_err(|e| {
                            fail(
                                "resize the map",
                                herr(format!("multipathd resize map {name}"))(e),
                            )
                        })?;
                }
            }
        }
        let first = env
            .find_host(&self.hosts[0])
            .map_err(|e| fail("find host", e))?;
        let d = host_disk(env, first, &disk)
            .await
            .map_err(|e| fail("find the device", e))?;
        let dev = TargetDevice::new(
            first.host_root().path(format!("/dev/{}", d.name)),
            d.identity,
        )
        .map_err(|e| {
            fail(
                "grow the file system",
                cfs_err(first.name(), op("tunefs"))(e),
            )
        })?;
        if self.fs == ClusterFsKind::Gfs2 {
            // gfs2_grow works on the mounted file system, through its mount point.
            first
                .runner()
                .run(
                    &host_storage::Command::new("gfs2_grow")
                        .arg(self.mount_point.display().to_string())
                        .timeout(Duration::from_secs(1800)),
                )
                .await
                .map_err(|e| {
                    fail(
                        "grow the file system",
                        host_err(first.name(), "gfs2_grow".into())(e),
                    )
                })?;
            return Ok(());
        }
        // The identity check guards the one write to the device's metadata.
        cluster_host(first).check_identity(&dev).map_err(|e| {
            fail(
                "grow the file system",
                cfs_err(first.name(), op("tunefs"))(e),
            )
        })?;
        first
            .runner()
            .run(
                &host_storage::Command::new("tunefs.ocfs2")
                    .args(["-y", "-S", &dev.arg()])
                    .timeout(Duration::from_secs(1800)),
            )
            .await
            .map_err(|e| {
                fail(
                    "grow the file system",
                    host_err(first.name(), format!("tunefs.ocfs2 -S {}", d.name))(e),
                )
            })?;
        Ok(())
    }
}

/// How the hosts reach the disk.
enum Reach {
    Iscsi {
        target: String,
        portals: Vec<String>,
    },
    Fc {
        targets: Vec<String>,
    },
    Nvme {
        addresses: Vec<String>,
    },
}

impl Reach {
    fn scsi_path(&self) -> Option<ScsiPath> {
        match self {
            Reach::Iscsi { target, .. } => Some(ScsiPath::Iscsi {
                target: target.clone(),
            }),
            Reach::Fc { targets } => Some(ScsiPath::Fc {
                targets: targets.clone(),
            }),
            Reach::Nvme { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    //! What the lab's real kernel showed, kept as tests on synthetic sysfs and mount tables.

    use std::path::Path;

    use super::*;

    fn scratch_host(dir: &Path) -> Host {
        std::fs::create_dir_all(dir.join("proc/self")).unwrap();
        Host::local("kvm1").root(dir)
    }

    fn write(root: &Path, rel: &str, bytes: &[u8]) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }

    /// A multipath map `dm-0` named `wwid` over `sda`, whose VPD page 0x80 holds `serial`.
    fn synthetic_map(root: &Path, wwid: &str, serial: &str) {
        let mut pg80 = vec![0, 0x80, 0, u8::try_from(serial.len()).unwrap()];
        pg80.extend_from_slice(serial.as_bytes());
        write(root, "sys/block/sda/device/vpd_pg80", &pg80);
        write(root, "sys/block/sda/holders/dm-0", b"");
        write(
            root,
            "sys/block/dm-0/dm/uuid",
            format!("mpath-{wwid}\n").as_bytes(),
        );
        write(
            root,
            "sys/block/dm-0/dm/name",
            format!("{wwid}\n").as_bytes(),
        );
        write(root, "sys/block/dm-0/slaves/sda", b"");
    }

    #[tokio::test]
    async fn a_lun_map_named_by_another_naa_is_found_by_serial_on_synthetic_sysfs() {
        // LIO (the simulator's kernel backend) reports its own NAA, 6001405…, not NetApp's
        // 600a0980…: the map is still the LUN's, by the unit serial of its paths.
        let dir = tempfile::tempdir().unwrap();
        let host = scratch_host(dir.path());
        let serial = LunSerial::parse("3j67uk3AubSR").unwrap();
        let mp = Multipath::new(host.runner(), host.host_root().clone());
        let err = wait_lun_map(&mp, &serial, Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(
            matches!(err, host_storage::Error::WaitTimeout { .. }),
            "{err}"
        );
        synthetic_map(
            dir.path(),
            "36001405367a3b0000000000000000000",
            "3j67uk3AubSR",
        );
        let map = wait_lun_map(&mp, &serial, Duration::from_millis(300))
            .await
            .unwrap();
        assert_eq!(
            (map.dm.as_str(), map.name.as_str(), map.wwid.as_str()),
            (
                "dm-0",
                "36001405367a3b0000000000000000000",
                "36001405367a3b0000000000000000000"
            )
        );
        // Another LUN's map is never taken for this one.
        let other = LunSerial::parse("wOj4f?W9lOk7").unwrap();
        assert!(mp.find_lun_map(&other).unwrap().is_none());
    }

    /// Fails `o2cb register-cluster` as o2cb does while another cluster is up.
    #[derive(Debug)]
    struct O2cbBusy;

    #[async_trait::async_trait]
    impl host_storage::Runner for O2cbBusy {
        async fn run(
            &self,
            cmd: &host_storage::Command,
        ) -> host_storage::Result<host_storage::Output> {
            let args: Vec<String> = cmd
                .get_args()
                .iter()
                .map(|a| a.expose().to_owned())
                .collect();
            let out = match args.get(1).map(String::as_str) {
                Some("cluster-status") => host_storage::Output::exit(1, "offline\n", ""),
                Some("register-cluster") => host_storage::Output::exit(
                    1,
                    "",
                    "o2cb: Internal logic failure while registering cluster 'kvmstor'\n",
                ),
                _ => panic!("unexpected {cmd}"),
            };
            cmd.check(out)
        }
    }

    #[tokio::test]
    async fn registering_beside_another_o2cb_cluster_names_it_on_synthetic_configfs() {
        // What the lab showed when an earlier test left its cluster up: o2cb's message
        // says nothing of the cause.
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let mut conf = ClusterConf::default();
        let added = conf
            .add_cluster(Ocfs2Cluster::new(
                ClusterName::parse("kvmstor").unwrap(),
                HeartbeatMode::Local,
            ))
            .unwrap();
        assert_eq!(added, Change::Changed);
        write(root, "etc/ocfs2/cluster.conf", conf.render().as_bytes());
        let host = Host::new("kvm1", std::sync::Arc::new(O2cbBusy)).root(root);
        let plain = register_cluster(&host, "kvmstor").await.unwrap_err();
        assert!(matches!(plain, StepError::ClusterFs { .. }), "{plain}");
        std::fs::create_dir_all(root.join("sys/kernel/config/cluster/labcl")).unwrap();
        let named = register_cluster(&host, "kvmstor").await.unwrap_err();
        assert_eq!(
            named.to_string(),
            "host kvm1 runs o2cb cluster labcl, so kvmstor cannot be registered \
             (o2cb runs one cluster per host)"
        );
        assert!(matches!(
            named,
            StepError::OtherO2cbCluster { ref online, .. } if online == "labcl"
        ));
    }
}
