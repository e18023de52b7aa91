//! # host-storage
//!
//! Host-side steps of attaching ONTAP storage to a KVM host (placeholder overview, completed below).

pub mod change;
pub mod error;
pub mod ids;
pub mod parse;
pub mod runner;

pub use change::Change;
pub use error::{Error, Format, IoOp, Result, ValueKind};
pub use ids::{ConfigToken, HostName, Iqn, LunSerial, Nqn, Wwid, Wwnn, Wwpn};
pub use runner::{Command, Exit, Expect, FakeRunner, Output, Runner, SystemRunner};

/// Name of this layer, as used in logs and plans.
pub const LAYER: &str = "host-storage";
