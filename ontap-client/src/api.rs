//! Generic typed access to one ONTAP collection.
//!
//! # Writing a resource accessor
//!
//! A resource accessor wraps an [`Api<T>`] for its record type and collection path, and adds
//! only what is specific to the resource (typed keys, convenience filters, body types):
//!
//! ```
//! use ontap_client::{Api, Client, Query, Result};
//! # #[derive(serde::Deserialize)] pub struct Volume { pub uuid: Option<String> }
//!
//! /// `client.volumes()`
//! pub struct Volumes(Api<Volume>);
//!
//! impl Volumes {
//!     pub fn new(client: &Client) -> Self {
//!         Volumes(Api::new(client, "/api/storage/volumes"))
//!     }
//!     pub async fn by_name(&self, svm: &str, name: &str) -> Result<Option<Volume>> {
//!         self.0.find(&Query::new().filter("svm.name", svm).filter("name", name)).await
//!     }
//! }
//! ```
//!
//! * `key` arguments are the path after the collection: a UUID, or `"a/b"` for two-key paths
//!   such as `/api/protocols/san/lun-maps/{lun.uuid}/{igroup.uuid}`. Each part is
//!   percent-encoded as one path segment (spaces, `:` in IQNs); the `/` between parts is kept.
//!   Sub-collections (`/api/storage/volumes/{uuid}/snapshots`) get their own `Api` built
//!   with the parent key already in the path.
//! * Mutations wait for ONTAP's job(s) (see [`crate::job`]) and return [`Completed`];
//!   [`Api::create`] also returns the created record when it can be found ([`Created`]).
//! * Errors are [`crate::Error`]; use `is_not_found()` / `is_conflict()` to make
//!   operations idempotent (a DELETE of something already gone is `is_not_found()`).

use std::marker::PhantomData;

use futures_util::stream::Stream;
use http::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::client::Client;
use crate::error::{Error, QueryError, Result};
use crate::mutation::{to_body, Completed, Created};
use crate::query::{encode_key, Query};

/// Typed access to the collection at one path (e.g. `/api/storage/volumes`).
pub struct Api<T> {
    client: Client,
    path: String,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for Api<T> {
    fn clone(&self) -> Self {
        Self {
            client: self.client.clone(),
            path: self.path.clone(),
            _t: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Api<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("path", &self.path)
            .field("client", &self.client)
            .finish()
    }
}

impl<T: DeserializeOwned + Send + 'static> Api<T> {
    /// Access to the collection at `collection_path` (starts with `/api/`, no trailing `/`).
    pub fn new(client: &Client, collection_path: impl Into<String>) -> Self {
        let mut path = collection_path.into();
        while path.len() > 1 && path.ends_with('/') {
            path.pop();
        }
        Self {
            client: client.clone(),
            path,
            _t: PhantomData,
        }
    }

    /// The collection path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The client used.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The path of one record: the collection path, `/`, and the encoded key.
    pub fn item_path(&self, key: &str) -> String {
        format!("{}/{}", self.path, encode_key(key))
    }

    /// Streams every matching record, page by page (see [`Client::list`]).
    pub fn list(&self, query: &Query) -> impl Stream<Item = Result<T>> + Send + 'static {
        self.client.list(&self.path, query)
    }

    /// Collects every matching record.
    pub async fn list_all(&self, query: &Query) -> Result<Vec<T>> {
        self.client.list_all(&self.path, query).await
    }

    /// Counts matching records (`return_records=false`, summed over pages).
    pub async fn count(&self, query: &Query) -> Result<u64> {
        self.client.count(&self.path, query).await
    }

    /// Fetches one record by key.
    pub async fn get(&self, key: &str, query: &Query) -> Result<T> {
        let path = query.append_to(&self.item_path(key))?;
        self.client.get_json(&path).await
    }

    /// The single record matching `query`, or `None`; [`Error::NotUnique`] if more match.
    ///
    /// A filtered lookup that does not set `return_timeout` is sent with the maximum (120 s):
    /// on large clusters ONTAP can end a filtered page at its default 15 s with zero records
    /// and no `next` link (CONTAP-677909), which would read as "not found".
    pub async fn find(&self, query: &Query) -> Result<Option<T>> {
        use futures_util::StreamExt;
        let query = if query.has_filters() {
            query
                .clone()
                .with_default_return_timeout(crate::query::MAX_RETURN_TIMEOUT)
        } else {
            query.clone()
        };
        let query = &query;
        let mut stream = std::pin::pin!(self.list(query));
        let Some(first) = stream.next().await.transpose()? else {
            return Ok(None);
        };
        match stream.next().await.transpose()? {
            None => Ok(Some(first)),
            Some(_) => Err(Error::NotUnique {
                path: query.append_to(&self.path)?,
                found: 2,
            }),
        }
    }

    /// Creates a record (`POST` with `return_records=true` and the configured
    /// `return_timeout`), waits for its job, and resolves the created record.
    pub async fn create<B: Serialize + ?Sized>(&self, body: &B) -> Result<Created<T>> {
        self.create_with(&Query::new(), body).await
    }

    /// [`Self::create`] with extra query parameters (they win over the defaults).
    pub async fn create_with<B: Serialize + ?Sized>(
        &self,
        query: &Query,
        body: &B,
    ) -> Result<Created<T>> {
        let body = to_body(&Method::POST, &self.path, body)?;
        let scope = crate::mutation::scope_of_body(&body);
        let query = query.clone().with_default_return_records(true);
        let outcome = self
            .client
            .mutate(Method::POST, &self.path, &query, Some(body))
            .await?;
        outcome
            .wait(&self.client)
            .await?
            .into_created_in(&self.client, &scope)
            .await
    }

    /// Modifies one record and waits for the job, if any.
    pub async fn patch<B: Serialize + ?Sized>(&self, key: &str, body: &B) -> Result<Completed> {
        let path = self.item_path(key);
        let body = to_body(&Method::PATCH, &path, body)?;
        self.client
            .mutate(Method::PATCH, &path, &Query::new(), Some(body))
            .await?
            .wait(&self.client)
            .await
    }

    /// Deletes one record and waits for the job, if any.
    pub async fn delete(&self, key: &str) -> Result<Completed> {
        let path = self.item_path(key);
        self.client
            .mutate(Method::DELETE, &path, &Query::new(), None)
            .await?
            .wait(&self.client)
            .await
    }

    /// Modifies every record matching `query` (which needs at least one filter) and waits
    /// for all jobs.
    pub async fn patch_where<B: Serialize + ?Sized>(
        &self,
        query: &Query,
        body: &B,
    ) -> Result<Completed> {
        if !query.has_filters() {
            return Err(QueryError::MissingFilter.into());
        }
        let body = to_body(&Method::PATCH, &self.path, body)?;
        self.client
            .mutate(Method::PATCH, &self.path, query, Some(body))
            .await?
            .wait(&self.client)
            .await
    }

    /// Deletes every record matching `query` (which needs at least one filter) and waits
    /// for all jobs.
    pub async fn delete_where(&self, query: &Query) -> Result<Completed> {
        if !query.has_filters() {
            return Err(QueryError::MissingFilter.into());
        }
        self.client
            .mutate(Method::DELETE, &self.path, query, None)
            .await?
            .wait(&self.client)
            .await
    }
}

impl Client {
    /// Typed access to the collection at `collection_path`.
    pub fn api<T: DeserializeOwned + Send + 'static>(&self, collection_path: &str) -> Api<T> {
        Api::new(self, collection_path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_paths() {
        let c = Client::builder("https://c1").build().unwrap();
        let a: Api<serde_json::Value> = Api::new(&c, "/api/protocols/cifs/shares/");
        assert_eq!(a.path(), "/api/protocols/cifs/shares");
        assert_eq!(
            a.item_path("9f4f-11/my share"),
            "/api/protocols/cifs/shares/9f4f-11/my%20share"
        );
        let i: Api<serde_json::Value> = c.api("/api/protocols/san/igroups/u1/initiators");
        assert_eq!(
            i.item_path("iqn.1993-08.org.debian:01:abc"),
            "/api/protocols/san/igroups/u1/initiators/iqn.1993-08.org.debian%3A01%3Aabc"
        );
    }

    #[tokio::test]
    async fn query_mutations_need_a_filter() {
        let c = Client::builder("http://127.0.0.1:9").build().unwrap();
        let a: Api<serde_json::Value> = c.api("/api/storage/volumes");
        assert!(matches!(
            a.delete_where(&Query::new().max_records(5)).await,
            Err(Error::Query(QueryError::MissingFilter))
        ));
        assert!(matches!(
            a.patch_where(&Query::new(), &serde_json::json!({})).await,
            Err(Error::Query(QueryError::MissingFilter))
        ));
    }

    #[tokio::test]
    async fn bad_return_timeout_is_not_sent() {
        // Port 9 (discard) is not listened on here; a sent request would be a transport error.
        let c = Client::builder("http://127.0.0.1:9").build().unwrap();
        let a: Api<serde_json::Value> = c.api("/api/storage/volumes");
        assert!(matches!(
            a.get("x", &Query::new().return_timeout(121)).await,
            Err(Error::Query(QueryError::ReturnTimeoutOutOfRange {
                value: 121
            }))
        ));
    }
}
