//! # ontap-client
//!
//! Typed async client for the NetApp ONTAP REST API.
//!
//! * [`Client`] / [`ClientBuilder`]: HTTPS with certificate verification on by default
//!   (extra CAs in PEM; turning verification off needs the loudly named
//!   [`ClientBuilder::danger_accept_invalid_certs`]); basic, bearer-token (ONTAP 9.14+) and
//!   client-certificate authentication with secrets held in [`SecretString`];
//!   `Accept: application/hal+json`, `X-Dot-Client-App`, SVM tunnelling
//!   ([`Client::with_svm_name`]); connect, request and operation deadlines; a cap on
//!   requests in flight (default 20); retries only where they cannot do harm
//!   ([`retry`]); a `tracing` debug span per request (never headers or bodies).
//! * [`Query`]: fields, filters with ONTAP operators, paging, ordering, `return_timeout`.
//! * [`Client::list`]: a lazy stream over a paged collection that follows `_links.next`.
//! * [`MutationOutcome`] / [`Completed`] / [`Created`]: POST/PATCH/DELETE answers; jobs are
//!   awaited with [`Client::wait_for_job`] ([`job`]).
//! * [`Api<T>`]: generic typed access to one collection, the base of the resource accessors.
//! * [`Client::raw`]: untyped access to any `/api/...` path.
//! * [`Error`]: one error type with predicates ([`Error::is_not_found`], …).
//!
//! ## Example
//!
//! ```no_run
//! use futures_util::TryStreamExt;
//! use ontap_client::{Api, Client, Query, SecretString};
//!
//! #[derive(Debug, serde::Deserialize)]
//! struct Volume {
//!     uuid: String,
//!     name: String,
//!     #[serde(default)]
//!     size: Option<u64>,
//! }
//!
//! # async fn run() -> Result<(), ontap_client::Error> {
//! let client = Client::builder("https://cluster1.example.com")
//!     .add_ca_pem(std::fs::read("/etc/kvmstor/cluster1-ca.pem").unwrap_or_default())
//!     .basic_auth("admin", SecretString::from(std::env::var("ONTAP_PASSWORD").unwrap_or_default()))
//!     .build()?;
//!
//! let volumes: Api<Volume> = client.api("/api/storage/volumes");
//! let query = Query::new()
//!     .fields(["name", "size"])
//!     .filter("svm.name", "svm1")
//!     .max_records(100);
//! let mut stream = std::pin::pin!(volumes.list(&query));
//! while let Some(volume) = stream.try_next().await? {
//!     println!("{} {} {:?}", volume.uuid, volume.name, volume.size);
//! }
//! println!("{} volumes", volumes.count(&Query::new().filter("svm.name", "svm1")).await?);
//! # Ok(())
//! # }
//! ```

pub mod api;
pub mod client;
pub mod collection;
pub mod error;
pub mod job;
pub mod models;
pub mod mutation;
pub mod query;
pub mod raw;
mod resources;
pub mod retry;
pub mod tls;

pub use api::Api;
pub use client::{Client, ClientBuilder, SvmScope};
pub use collection::Page;
pub use error::{ApiError, BuildError, Error, ErrorArgument, QueryError, Result, TimeoutKind};
pub use job::{Job, JobLink, JobState, JobWaitConfig};
pub use mutation::{Completed, Created, MutationOutcome, OutcomeKind};
pub use query::Query;
pub use raw::Raw;
pub use resources::Singleton;
pub use retry::RetryPolicy;
pub use secrecy::SecretString;
pub use tls::ClientIdentity;
