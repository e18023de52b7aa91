//! Per-resource accessors on [`Client`](crate::Client).
//!
//! Each accessor returns an [`Api<T>`](crate::Api) for the resource's collection, so
//! `list`, `get`, `find`, `create`, `patch` and `delete` are always available; what is
//! specific to a resource (sub-collections, two-part keys, state changes) is added as
//! methods on that `Api<T>`.

mod cluster;
mod nas;
mod network;
mod nvme;
mod san;
mod snapmirror;
mod storage;

// Re-exported for lib.rs (`pub use resources::Singleton;`), so the type can be named.
#[allow(unused_imports)]
pub use cluster::Singleton;

use crate::query::encode_path_segment;

/// Joins the parts of a two-part key (`"{a}/{b}"`); [`crate::Api::item_path`] encodes each part.
fn pair_key(first: &str, second: &str) -> String {
    format!("{first}/{second}")
}

/// A sub-collection path: `{parent}/{encoded key}/{child}`.
fn sub_path(parent: &str, key: &str, child: &str) -> String {
    format!("{parent}/{}/{child}", encode_path_segment(key))
}
