//! Cluster singleton, nodes, jobs and multi-admin-verify requests.

use std::marker::PhantomData;

use http::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::client::Client;
use crate::error::Result;
use crate::models::{Cluster, ClusterVersion, Job, MavRequest, MavRequestPatch, Node};
use crate::mutation::{to_body, Completed};
use crate::query::Query;
use crate::Api;

/// Access to a singleton resource such as `/api/cluster` (no key, no collection).
pub struct Singleton<T> {
    client: Client,
    path: &'static str,
    _t: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for Singleton<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Singleton")
            .field("path", &self.path)
            .finish()
    }
}

impl<T> Clone for Singleton<T> {
    fn clone(&self) -> Self {
        Self {
            client: self.client.clone(),
            path: self.path,
            _t: PhantomData,
        }
    }
}

impl<T: DeserializeOwned> Singleton<T> {
    /// The resource path.
    pub fn path(&self) -> &str {
        self.path
    }

    /// Fetches the record with ONTAP's default fields.
    pub async fn get(&self) -> Result<T> {
        self.get_with(&Query::new()).await
    }

    /// Fetches the record with `query` (typically `fields`).
    pub async fn get_with(&self, query: &Query) -> Result<T> {
        self.client.get_json(&query.append_to(self.path)?).await
    }

    /// Modifies the record and waits for the job, if any.
    pub async fn patch<B: Serialize + ?Sized>(&self, body: &B) -> Result<Completed> {
        let body = to_body(&Method::PATCH, self.path, body)?;
        self.client
            .mutate(Method::PATCH, self.path, &Query::new(), Some(body))
            .await?
            .wait(&self.client)
            .await
    }
}

impl Singleton<Cluster> {
    /// The ONTAP release (`GET /api/cluster?fields=version`), for feature checks such as
    /// `version.at_least(9, 14, 0)`. A cluster record without a version reads as 0.0.0.
    pub async fn version(&self) -> Result<ClusterVersion> {
        let cluster = self.get_with(&Query::new().fields(["version"])).await?;
        Ok(cluster.version.unwrap_or_default())
    }
}

impl Client {
    /// The cluster singleton: `GET /api/cluster`.
    ///
    /// ```no_run
    /// # async fn run(client: ontap_client::Client) -> ontap_client::Result<()> {
    /// let version = client.cluster().version().await?;
    /// if version.at_least(9, 12, 1) {
    ///     // snapshot locking is available
    /// }
    /// # Ok(()) }
    /// ```
    pub fn cluster(&self) -> Singleton<Cluster> {
        Singleton {
            client: self.clone(),
            path: "/api/cluster",
            _t: PhantomData,
        }
    }

    /// Cluster nodes: `/api/cluster/nodes` (key: node UUID).
    pub fn nodes(&self) -> Api<Node> {
        Api::new(self, "/api/cluster/nodes")
    }

    /// Jobs: `/api/cluster/jobs` (key: job UUID).
    pub fn jobs(&self) -> Api<Job> {
        Api::new(self, "/api/cluster/jobs")
    }

    /// Multi-admin-verify requests: `/api/security/multi-admin-verify/requests`
    /// (key: request index; ONTAP 9.11+).
    pub fn mav_requests(&self) -> Api<MavRequest> {
        Api::new(self, "/api/security/multi-admin-verify/requests")
    }
}

impl Api<MavRequest> {
    /// Approves request `index` (`PATCH state=approved`).
    pub async fn approve(&self, index: u64) -> Result<Completed> {
        self.patch(&index.to_string(), &MavRequestPatch::approve())
            .await
    }

    /// Vetoes request `index` (`PATCH state=vetoed`).
    pub async fn veto(&self, index: u64) -> Result<Completed> {
        self.patch(&index.to_string(), &MavRequestPatch::veto())
            .await
    }
}
