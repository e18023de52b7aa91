//! POST / PATCH / DELETE answers and waiting for them to take effect.
//!
//! ONTAP answers a mutation in one of three ways, all captured by [`MutationOutcome`]:
//!
//! * **200/201 — done.** The body may hold `records` (with `return_records=true`) and, when
//!   `return_timeout` let ONTAP wait for the job, a `job` link to the already finished job.
//!   Failures within `return_timeout` come back as error statuses, so such a job link is
//!   not polled.
//! * **202 — one job started**: `{"job":{"uuid":…,"_links":{"self":{"href":…}}}}`, with a
//!   `Location` header naming the new resource (sometimes as a query, e.g.
//!   `/api/storage/volumes/?name=vol1_clone`).
//! * **Query-based PATCH/DELETE** (`PATCH /api/storage/volumes?name=x`): a `jobs` array and
//!   `num_records`. Every listed job is polled.
//!
//! [`MutationOutcome::wait`] turns any of them into a [`Completed`];
//! [`Completed::resolve_created`] finds the record a POST created.

use bytes::Bytes;
use http::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::client::{decode, Client};
use crate::collection::href_to_path;
use crate::error::{Error, ResponseProblem, Result};
use crate::job::{Job, JobLink};
use crate::query::Query;

/// How ONTAP answered a mutation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OutcomeKind {
    /// 200/201: the work is done (any job link points to a finished job).
    Done,
    /// 202: one job was started and must be awaited.
    Accepted,
    /// A query-based PATCH/DELETE: a `jobs` array, each to be awaited.
    Batch,
}

/// The parsed answer to a POST, PATCH or DELETE.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct MutationOutcome {
    /// How ONTAP answered.
    pub kind: OutcomeKind,
    /// HTTP status (200, 201 or 202).
    pub status: u16,
    /// The `Location` header, if any (a path, possibly with a query).
    pub location: Option<String>,
    /// `records` from the body (present with `return_records=true`).
    pub records: Vec<Value>,
    /// `num_records` from the body.
    pub num_records: Option<u64>,
    /// The job link(s): none, the single `job`, or the `jobs` array.
    pub jobs: Vec<JobLink>,
}

#[derive(Deserialize)]
struct Body {
    #[serde(default)]
    records: Vec<Value>,
    #[serde(default)]
    num_records: Option<u64>,
    #[serde(default)]
    job: Option<JobLink>,
    #[serde(default)]
    jobs: Option<Vec<JobLink>>,
}

impl MutationOutcome {
    /// Parses a 2xx answer to a mutation.
    pub fn parse(
        method: &Method,
        path: &str,
        status: u16,
        location: Option<String>,
        body: &[u8],
    ) -> Result<Self> {
        let b: Body = decode(method, path, body)?;
        let (kind, jobs) = match (b.jobs, b.job) {
            (Some(jobs), _) => (OutcomeKind::Batch, jobs),
            (None, Some(job)) if status == 202 => (OutcomeKind::Accepted, vec![job]),
            (None, None) if status == 202 => {
                return Err(Error::UnexpectedResponse {
                    method: method.clone(),
                    path: path.to_owned(),
                    status,
                    problem: ResponseProblem::AcceptedWithoutJob,
                })
            }
            (None, job) => (OutcomeKind::Done, job.into_iter().collect()),
        };
        Ok(Self {
            kind,
            status,
            location,
            records: b.records,
            num_records: b.num_records,
            jobs,
        })
    }

    /// True when nothing remains to wait for.
    pub fn is_done(&self) -> bool {
        self.kind == OutcomeKind::Done
    }

    /// Waits for the job(s), if any, and returns the final state. The first failed job
    /// ends the wait with its error (later jobs of a batch are not awaited).
    pub async fn wait(self, client: &Client) -> Result<Completed> {
        let mut jobs = Vec::new();
        if self.kind != OutcomeKind::Done {
            for link in &self.jobs {
                jobs.push(client.wait_for_job(&link.uuid).await?);
            }
        }
        Ok(Completed {
            outcome: self,
            jobs,
        })
    }
}

/// A mutation that has taken effect.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Completed {
    /// The original answer.
    pub outcome: MutationOutcome,
    /// The final records of the jobs that were awaited (empty when ONTAP finished in time).
    pub jobs: Vec<Job>,
}

/// A POST that has taken effect, with the created record when it could be found.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Created<T> {
    /// The created record: from `records` in the answer, else fetched via `Location`;
    /// `None` when the answer offered neither.
    pub record: Option<T>,
    /// The completed mutation.
    pub completed: Completed,
}

impl Completed {
    /// Finds the record a POST created: the first of `records` in the answer if present;
    /// otherwise a GET on `Location` — a collection query (`/api/storage/volumes/?name=c1`)
    /// must match exactly one record, an instance path is fetched directly. `None` when
    /// the answer has neither.
    pub async fn resolve_created<T>(&self, client: &Client) -> Result<Option<T>>
    where
        T: DeserializeOwned + Send + 'static,
    {
        self.resolve_created_in(client, &Query::new()).await
    }

    /// [`Self::resolve_created`], narrowing a query-style `Location` with `scope`.
    ///
    /// ONTAP's `Location` for a FlexClone or snapshot is `…/?name=NAME` without the SVM,
    /// so a same-named record in another SVM would make the lookup ambiguous; the POST's
    /// own `svm` (see [`scope_of_body`]) disambiguates it.
    pub async fn resolve_created_in<T>(&self, client: &Client, scope: &Query) -> Result<Option<T>>
    where
        T: DeserializeOwned + Send + 'static,
    {
        if let Some(first) = self.outcome.records.first() {
            return decode_value(first.clone(), "records[0]").map(Some);
        }
        let Some(location) = &self.outcome.location else {
            return Ok(None);
        };
        let path = href_to_path(location);
        if path.contains('?') {
            use futures_util::StreamExt;
            let path = scope.append_to(&path)?;
            let found: Vec<Result<T>> = client.list(&path, &Query::new()).take(2).collect().await;
            let mut found = found.into_iter().collect::<Result<Vec<T>>>()?;
            match found.len() {
                0 => Err(Error::CreatedRecordMissing {
                    location: location.clone(),
                }),
                1 => Ok(found.pop()),
                n => Err(Error::NotUnique {
                    path,
                    found: n as u64,
                }),
            }
        } else {
            client.get_json(&path).await.map(Some)
        }
    }

    /// Waits-and-resolves in one step for POSTs: [`Self::resolve_created`].
    pub async fn into_created<T>(self, client: &Client) -> Result<Created<T>>
    where
        T: DeserializeOwned + Send + 'static,
    {
        self.into_created_in(client, &Query::new()).await
    }

    /// [`Self::into_created`] with a lookup scope: [`Self::resolve_created_in`].
    pub async fn into_created_in<T>(self, client: &Client, scope: &Query) -> Result<Created<T>>
    where
        T: DeserializeOwned + Send + 'static,
    {
        let record = self.resolve_created_in(client, scope).await?;
        Ok(Created {
            record,
            completed: self,
        })
    }
}

/// The SVM a POST body names (`svm.uuid` preferred, else `svm.name`) as a query filter, so
/// a query-style `Location` can be narrowed to it. Empty when the body names no SVM (the
/// client's SVM tunnel then scopes the lookup).
pub fn scope_of_body(body: &[u8]) -> Query {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return Query::new();
    };
    let svm = map.get("svm");
    let pick = |key: &str| svm.and_then(|s| s.get(key)).and_then(Value::as_str);
    if let Some(uuid) = pick("uuid") {
        Query::new().filter("svm.uuid", uuid)
    } else if let Some(name) = pick("name") {
        Query::new().filter("svm.name", name)
    } else {
        Query::new()
    }
}

fn decode_value<T: DeserializeOwned>(v: Value, what: &str) -> Result<T> {
    serde_path_to_error::deserialize(v).map_err(|e| Error::Decode {
        method: Method::POST,
        path: String::new(),
        json_path: format!("{what}.{}", e.path()),
        source: e.into_inner(),
    })
}

impl Client {
    /// Sends a mutation and parses the answer. `return_timeout` from the job configuration
    /// is added unless `query` sets one (0 disables it).
    pub(crate) async fn mutate(
        &self,
        method: Method,
        path: &str,
        query: &Query,
        body: Option<Bytes>,
    ) -> Result<MutationOutcome> {
        let mut query = query.clone();
        let rt = self.job_config().return_timeout();
        if rt > 0 {
            query = query.with_default_return_timeout(rt);
        }
        let full = query.append_to(path)?;
        let resp = self
            .execute(method.clone(), &full, body, query.get_return_timeout())
            .await?;
        MutationOutcome::parse(&method, &full, resp.status, resp.location, &resp.body)
    }
}

/// Serializes a request body once; retries reuse the bytes.
pub(crate) fn to_body<B: Serialize + ?Sized>(
    method: &Method,
    path: &str,
    body: &B,
) -> Result<Bytes> {
    serde_json::to_vec(body)
        .map(Bytes::from)
        .map_err(|source| Error::Encode {
            method: method.clone(),
            path: path.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_of_body_prefers_uuid_then_name() {
        let enc = |b: &str| scope_of_body(b.as_bytes()).encode().unwrap();
        assert_eq!(
            enc(r#"{"name":"c1","svm":{"name":"svm1","uuid":"u-1"}}"#),
            "svm.uuid=u-1"
        );
        assert_eq!(
            enc(r#"{"name":"c1","svm":{"name":"svm1"}}"#),
            "svm.name=svm1"
        );
        assert_eq!(enc(r#"{"name":"c1"}"#), "");
        assert_eq!(enc("not json"), "");
    }

    fn parse(status: u16, location: Option<&str>, body: &str) -> Result<MutationOutcome> {
        MutationOutcome::parse(
            &Method::POST,
            "/api/x",
            status,
            location.map(str::to_owned),
            body.as_bytes(),
        )
    }

    #[test]
    fn lun_201_with_records() {
        let body = r#"{"num_records": 1, "records": [{"uuid": "5a24ae5b-28af-47fb-b129-5adf6cfba0a6",
            "name": "/vol/vol1/lun1", "serial_number": "wf0Iq+N4uck3",
            "space": {"size": 322163441664, "used": 0}}]}"#;
        let o = parse(201, None, body).unwrap();
        assert_eq!(o.kind, OutcomeKind::Done);
        assert!(o.is_done());
        assert_eq!(o.status, 201);
        assert_eq!(o.num_records, Some(1));
        assert_eq!(o.records.len(), 1);
        assert_eq!(o.records[0]["serial_number"], "wf0Iq+N4uck3");
        assert!(o.jobs.is_empty());
    }

    #[test]
    fn volume_202_job_link() {
        let body = r#"{"job": {"uuid": "b89bc5dd-94a3-11e8-a7a3-0050568edf84",
            "_links": {"self": {"href": "/api/cluster/jobs/b89bc5dd-94a3-11e8-a7a3-0050568edf84"}}}}"#;
        let o = parse(202, Some("/api/storage/volumes/?name=vol1_clone"), body).unwrap();
        assert_eq!(o.kind, OutcomeKind::Accepted);
        assert!(!o.is_done());
        assert_eq!(
            o.location.as_deref(),
            Some("/api/storage/volumes/?name=vol1_clone")
        );
        assert_eq!(o.jobs.len(), 1);
        assert_eq!(o.jobs[0].uuid, "b89bc5dd-94a3-11e8-a7a3-0050568edf84");
        assert_eq!(
            o.jobs[0].href.as_deref(),
            Some("/api/cluster/jobs/b89bc5dd-94a3-11e8-a7a3-0050568edf84")
        );
    }

    #[test]
    fn snapshot_202_records_and_job() {
        let body = r#"{"num_records": 1,
          "records": [{"volume": {"name": "v2"}, "svm": {"uuid": "8139f958-3c6e-11e9-a45f-005056bbc848", "name": "vs0"},
                       "name": "snapshot_copy", "comment": "Store this copy."}],
          "job": {"uuid": "6f68c85b-45e1-11e9-8fc7-005056bbc848",
                  "_links": {"self": {"href": "/api/cluster/jobs/6f68c85b-45e1-11e9-8fc7-005056bbc848"}}}}"#;
        let o = parse(202, None, body).unwrap();
        assert_eq!(o.kind, OutcomeKind::Accepted);
        assert_eq!(o.records[0]["name"], "snapshot_copy");
        assert_eq!(o.jobs[0].uuid, "6f68c85b-45e1-11e9-8fc7-005056bbc848");
    }

    #[test]
    fn query_delete_jobs_array() {
        let body = r#"{"jobs":[{"uuid":"4acf3f58-c5d2-11e9-b97d-005056ac2211",
            "_links":{"self":{"href":"/api/cluster/jobs/4acf3f58-c5d2-11e9-b97d-005056ac2211"}}}],
          "num_records": 1, "_links":{"self":{"href":"/api/storage/volumes?name=vol1"}}}"#;
        let o = parse(200, None, body).unwrap();
        assert_eq!(o.kind, OutcomeKind::Batch);
        assert_eq!(o.num_records, Some(1));
        assert_eq!(o.jobs.len(), 1);
        assert_eq!(o.jobs[0].uuid, "4acf3f58-c5d2-11e9-b97d-005056ac2211");
    }

    #[test]
    fn done_with_finished_job_link() {
        let body = r#"{"job":{"uuid":"j1","_links":{"self":{"href":"/api/cluster/jobs/j1"}}}}"#;
        let o = parse(200, None, body).unwrap();
        assert_eq!(o.kind, OutcomeKind::Done);
        assert_eq!(
            o.jobs,
            vec![JobLink {
                uuid: "j1".into(),
                href: Some("/api/cluster/jobs/j1".into())
            }]
        );
    }

    #[test]
    fn empty_bodies() {
        let o = parse(200, None, "").unwrap();
        assert_eq!(o.kind, OutcomeKind::Done);
        assert!(o.records.is_empty() && o.jobs.is_empty());
        match parse(202, None, "{}") {
            Err(Error::UnexpectedResponse {
                status, problem, ..
            }) => {
                assert_eq!(status, 202);
                assert_eq!(problem, ResponseProblem::AcceptedWithoutJob);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_job_link_names_path() {
        match parse(202, None, r#"{"job":{"uuid":5}}"#) {
            Err(Error::Decode { json_path, .. }) => assert_eq!(json_path, "job.uuid"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn records_decode_error_names_path() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Lun {
            name: u32,
        }
        let e = decode_value::<Lun>(serde_json::json!({"name": "x"}), "records[0]").unwrap_err();
        match e {
            Error::Decode { json_path, .. } => assert_eq!(json_path, "records[0].name"),
            other => panic!("{other:?}"),
        }
    }
}
