//! # kvmstor
//!
//! The facade: transactional attach and detach of ONTAP datastores on KVM hosts, and everyday
//! datastore operations. Today it re-exports the typed ONTAP client; the workflows arrive with
//! the facade issue.
//!
//! ```
//! assert_eq!(kvmstor::LAYER, "kvmstor");
//! ```

pub use ontap_client as ontap;

/// Name of this layer, as used in logs and plans.
pub const LAYER: &str = "kvmstor";
