//! # host-storage
//!
//! Every host-side step of attaching ONTAP storage to a KVM host: NFS and SMB mounts (now, in
//! `/etc/fstab`, or through autofs direct maps), iSCSI, Fibre Channel and NVMe-oF sessions,
//! multipath and udev device discovery. Each mutating call reports whether it changed anything
//! and has an undo.
//!
//! This crate is filled by the host-storage issue; today it only reserves its place in the
//! layering so that dependents can be wired up.
//!
//! ```
//! // The crate compiles and can be depended upon.
//! assert_eq!(host_storage::LAYER, "host-storage");
//! ```

/// Name of this layer, as used in logs and plans.
pub const LAYER: &str = "host-storage";
