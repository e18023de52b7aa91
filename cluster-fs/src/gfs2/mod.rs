//! GFS2 with corosync and DLM: `corosync.conf`, `dlm.conf`, `mkfs.gfs2 -p lock_dlm`, `tunegfs2`,
//! `gfs2_jadd`, `fsck.gfs2`.

pub mod corosync;
pub mod dlm;
pub mod tools;

pub use corosync::{CorosyncConf, CorosyncNode, Crypto, Transport, COROSYNC_CONF};
pub use dlm::{DlmConf, DlmProtocol, DLM_CONF};
pub use tools::{Gfs2Format, Gfs2Info};
