//! # ontap-sim
//!
//! A stateful simulator of the NetApp ONTAP REST API.
//!
//! ```
//! assert!(true);
//! ```
