//! OCFS2 with the o2cb stack: `cluster.conf`, `/etc/default/o2cb`, the `o2cb` commands,
//! `mkfs.ocfs2`, `tunefs.ocfs2`, `fsck.ocfs2`, and parsers for `mounted.ocfs2` and
//! `debugfs.ocfs2`.

pub mod conf;
pub mod o2cb;
pub mod tools;

pub use conf::{
    ClusterConf, HeartbeatMode, HeartbeatRegion, Ocfs2Cluster, Ocfs2Node, Region, CLUSTER_CONF,
    DEFAULT_PORT,
};
pub use o2cb::{O2cbCommands, O2cbDefaults, O2cbStack};
pub use tools::{
    DetectedVolume, FsckMode, MountedVolume, Mounters, Ocfs2Format, Ocfs2Mode, Ocfs2Stats,
    Ocfs2Usage,
};
