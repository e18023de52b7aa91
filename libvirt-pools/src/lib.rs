//! # libvirt-pools
//!
//! Typed, idempotent libvirt storage pools and volumes over the `virt` crate.
//!
//! This crate is filled by the libvirt-pools issue; today it only reserves its place in the
//! layering so that dependents can be wired up.
//!
//! ```
//! assert_eq!(libvirt_pools::LAYER, "libvirt-pools");
//! ```

/// Name of this layer, as used in logs and plans.
pub const LAYER: &str = "libvirt-pools";
