//! Typed ONTAP records and request bodies.
//!
//! Response records keep every field optional (ONTAP returns only the fields asked for),
//! keep unknown fields in `extra` so a decode/encode round trip loses nothing, and keep the
//! HAL `_links` in `links`. Enums are string enums with an `Unknown(String)` arm, so a value
//! from a newer ONTAP decodes and re-encodes unchanged. Request bodies are built with a
//! constructor and chainable setters and serialize to exactly the JSON ONTAP expects.
//!
//! ```
//! use ontap_client::models::{Volume, VolumeCreate, VolumeStyle, GIB};
//!
//! let body = VolumeCreate::flexgroup("fg1", "svm1", &["aggr1", "aggr2"]).size(100 * GIB);
//! let json = serde_json::to_value(&body).unwrap();
//! assert_eq!(json["style"], "flexgroup");
//! assert_eq!(json["aggregates"][1]["name"], "aggr2");
//!
//! let v: Volume = serde_json::from_str(r#"{"name":"fg1","style":"flexgroup","new_field":1}"#).unwrap();
//! assert_eq!(v.style, Some(VolumeStyle::Flexgroup));
//! assert_eq!(v.extra["new_field"], 1);
//! ```

pub(crate) mod common;

mod aggregate;
mod cifs;
mod cluster;
mod file_clone;
mod job;
mod mav;
mod network;
mod nfs;
mod nvme;
mod san;
mod snapmirror;
mod snapshot;
mod svm;
mod volume;

pub use aggregate::*;
pub use cifs::*;
pub use cluster::*;
pub use common::{Href, Links, NamedRef, GIB, KIB, MIB, PIB, TIB};
pub use file_clone::*;
pub use job::*;
pub use mav::*;
pub use network::*;
pub use nfs::*;
pub use nvme::*;
pub use san::*;
pub use snapmirror::*;
pub use snapshot::*;
pub use svm::*;
pub use volume::*;
