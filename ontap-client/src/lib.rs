//! # ontap-client
//!
//! Typed async client for the NetApp ONTAP REST API.
//!
//! ```
//! assert!(true);
//! ```

pub mod models;
mod resources;
