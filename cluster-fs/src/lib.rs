//! # cluster-fs
//!
//! Cluster filesystems for block datastores shared by several KVM hosts: OCFS2 with the o2cb
//! stack, and GFS2 with corosync and DLM.
//!
//! This crate is filled by the cluster-fs issue; today it only reserves its place in the
//! layering so that dependents can be wired up.
//!
//! ```
//! assert_eq!(cluster_fs::LAYER, "cluster-fs");
//! ```

/// Name of this layer, as used in logs and plans.
pub const LAYER: &str = "cluster-fs";
