//! Untyped escape hatch for any `/api/...` endpoint not (yet) covered by a typed accessor.
//!
//! ```no_run
//! # async fn demo(client: ontap_client::Client) -> ontap_client::Result<()> {
//! use ontap_client::Query;
//! let cluster = client.raw().get("/api/cluster", &Query::new().fields(["version"])).await?;
//! println!("{}", cluster["version"]["full"]);
//! # Ok(()) }
//! ```

use http::Method;
use serde_json::Value;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::mutation::{to_body, MutationOutcome};
use crate::query::Query;

/// Untyped access; see [`Client::raw`].
#[derive(Debug, Clone)]
pub struct Raw {
    client: Client,
}

impl Client {
    /// Untyped access to any `/api/...` path.
    pub fn raw(&self) -> Raw {
        Raw {
            client: self.clone(),
        }
    }
}

fn check(path: &str) -> Result<()> {
    if path.starts_with("/api/") {
        Ok(())
    } else {
        Err(Error::InvalidPath {
            path: path.to_owned(),
        })
    }
}

impl Raw {
    /// `GET path?query`, returning the JSON body.
    pub async fn get(&self, path: &str, query: &Query) -> Result<Value> {
        check(path)?;
        self.client.get_json(&query.append_to(path)?).await
    }

    /// `POST path?query` with an optional JSON body. Does not wait for jobs; call
    /// [`MutationOutcome::wait`] for that.
    pub async fn post(
        &self,
        path: &str,
        query: &Query,
        body: Option<&Value>,
    ) -> Result<MutationOutcome> {
        self.send(Method::POST, path, query, body).await
    }

    /// `PATCH path?query` with an optional JSON body. Does not wait for jobs.
    pub async fn patch(
        &self,
        path: &str,
        query: &Query,
        body: Option<&Value>,
    ) -> Result<MutationOutcome> {
        self.send(Method::PATCH, path, query, body).await
    }

    /// `DELETE path?query` with an optional JSON body. Does not wait for jobs.
    pub async fn delete(
        &self,
        path: &str,
        query: &Query,
        body: Option<&Value>,
    ) -> Result<MutationOutcome> {
        self.send(Method::DELETE, path, query, body).await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &Query,
        body: Option<&Value>,
    ) -> Result<MutationOutcome> {
        check(path)?;
        let body = body.map(|b| to_body(&method, path, b)).transpose()?;
        self.client.mutate(method, path, query, body).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rejects_non_api_paths() {
        let c = Client::builder("http://127.0.0.1:9").build().unwrap();
        for p in [
            "/docs/api",
            "api/cluster",
            "/apix/cluster",
            "https://evil/api/x",
            "/api",
        ] {
            match c.raw().get(p, &Query::new()).await {
                Err(Error::InvalidPath { path }) => assert_eq!(path, p),
                other => panic!("{p}: {other:?}"),
            }
        }
        assert!(matches!(
            c.raw().delete("/cluster", &Query::new(), None).await,
            Err(Error::InvalidPath { .. })
        ));
    }
}
