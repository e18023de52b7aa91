//! ONTAP jobs: the record, its states, and waiting for one to finish.
//!
//! Mutations first ask ONTAP to wait itself (`return_timeout`, default 30 s, at most 120):
//! if the work finishes in time the answer is 200/201 and no polling happens. Otherwise
//! the answer is 202 with a job link, and [`Client::wait_for_job`] polls
//! `GET /api/cluster/jobs/{uuid}` with jittered exponential backoff (250 ms, ×1.5, at most
//! 2 s) until a terminal state or the deadline (10 minutes).
//!
//! ONTAP deletes job records about 300 s after they finish, so a 404 while waiting is
//! reported as [`Error::JobGone`]: the outcome is unknown, not a failure.

use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::query::{encode_path_segment, MAX_RETURN_TIMEOUT};
use crate::retry::jitter_upper_half;

/// Fields asked for when polling a job.
pub const JOB_POLL_FIELDS: &str = "state,message,code,error,description,start_time,end_time";

/// State of an ONTAP job.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JobState {
    /// Waiting to run.
    Queued,
    /// Running.
    Running,
    /// Paused; may resume.
    Paused,
    /// Finished successfully.
    Success,
    /// Finished with an error.
    Failure,
    /// Cancelled (terminal).
    Cancelled,
    /// Expired before running (terminal).
    Expired,
    /// A state this client does not know; treated as not finished.
    Unknown(String),
}

impl JobState {
    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
            Self::Unknown(s) => s,
        }
    }

    /// Parses a wire name; unknown names become [`JobState::Unknown`].
    pub fn parse(s: &str) -> Self {
        match s {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "paused" => Self::Paused,
            "success" => Self::Success,
            "failure" => Self::Failure,
            "cancelled" => Self::Cancelled,
            "expired" => Self::Expired,
            other => Self::Unknown(other.to_owned()),
        }
    }

    /// True for success, failure, cancelled and expired.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::Success | Self::Failure | Self::Cancelled | Self::Expired
        )
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for JobState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(Self::parse(&s))
    }
}

impl Serialize for JobState {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A job record from `GET /api/cluster/jobs/{uuid}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[non_exhaustive]
pub struct Job {
    /// Job UUID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// What the job does, usually the request that started it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Current state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<JobState>,
    /// Progress or result message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Result code (an integer on the wire; 0 on success).
    #[serde(
        default,
        deserialize_with = "lenient_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub code: Option<i64>,
    /// Structured error (newer releases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<JobError>,
    /// Start time (ISO 8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// End time (ISO 8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
}

/// `error` object of a job record.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[non_exhaustive]
pub struct JobError {
    /// Error code (text).
    #[serde(
        default,
        deserialize_with = "lenient_code",
        skip_serializing_if = "Option::is_none"
    )]
    pub code: Option<String>,
    /// Error message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A link to a job, as found in 202 bodies (`job`) and query-based mutations (`jobs[]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct JobLink {
    /// Job UUID.
    pub uuid: String,
    /// `_links.self.href`, when present.
    #[serde(default, rename = "_links", deserialize_with = "self_href")]
    pub href: Option<String>,
}

impl JobLink {
    /// A link to the job with this UUID.
    pub fn new(uuid: impl Into<String>) -> Self {
        Self {
            uuid: uuid.into(),
            href: None,
        }
    }
}

fn self_href<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    struct Links {
        #[serde(rename = "self")]
        this: Option<Href>,
    }
    #[derive(Deserialize)]
    struct Href {
        href: String,
    }
    Ok(Option::<Links>::deserialize(d)?
        .and_then(|l| l.this)
        .map(|h| h.href))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrText {
    Int(i64),
    Uint(u64),
    Text(String),
}

/// Accepts a code as JSON string or number (or null) and keeps it as text.
pub(crate) fn lenient_code<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<String>, D::Error> {
    Ok(Option::<NumOrText>::deserialize(d)?.map(|c| match c {
        NumOrText::Int(i) => i.to_string(),
        NumOrText::Uint(u) => u.to_string(),
        NumOrText::Text(s) => s,
    }))
}

fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<i64>, D::Error> {
    use serde::de::Error as _;
    match Option::<NumOrText>::deserialize(d)? {
        None => Ok(None),
        Some(NumOrText::Int(i)) => Ok(Some(i)),
        Some(NumOrText::Uint(u)) => i64::try_from(u)
            .map(Some)
            .map_err(|_| D::Error::custom("job code out of range")),
        Some(NumOrText::Text(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| D::Error::custom(format!("job code {s:?} is not a number"))),
    }
}

/// How jobs are awaited.
#[derive(Debug, Clone, PartialEq)]
pub struct JobWaitConfig {
    return_timeout: u32,
    initial_interval: Duration,
    multiplier: f64,
    max_interval: Duration,
    deadline: Duration,
}

impl Default for JobWaitConfig {
    /// `return_timeout` 30 s; polls from 250 ms, ×1.5, at most 2 s; deadline 10 minutes.
    fn default() -> Self {
        Self {
            return_timeout: 30,
            initial_interval: Duration::from_millis(250),
            multiplier: 1.5,
            max_interval: Duration::from_secs(2),
            deadline: Duration::from_secs(600),
        }
    }
}

impl JobWaitConfig {
    /// `return_timeout` sent with mutations (clamped to 0..=120; 0 disables the fast path).
    pub fn with_return_timeout(mut self, secs: u32) -> Self {
        self.return_timeout = secs.min(MAX_RETURN_TIMEOUT);
        self
    }

    /// Poll backoff: first interval, growth factor (at least 1.0), largest interval.
    pub fn with_poll_backoff(mut self, initial: Duration, multiplier: f64, max: Duration) -> Self {
        self.initial_interval = initial;
        self.multiplier = if multiplier.is_finite() {
            multiplier.max(1.0)
        } else {
            1.0
        };
        self.max_interval = max.max(initial);
        self
    }

    /// How long to poll before giving up with [`Error::JobTimeout`].
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// The `return_timeout` sent with mutations.
    pub fn return_timeout(&self) -> u32 {
        self.return_timeout
    }

    /// The polling deadline.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// The un-jittered poll interval after `polls` polls (0 → the first interval).
    pub fn interval(&self, polls: u32) -> Duration {
        let mut d = self.initial_interval.as_secs_f64();
        let cap = self.max_interval.as_secs_f64();
        for _ in 0..polls {
            d = (d * self.multiplier).min(cap);
        }
        Duration::from_secs_f64(d.min(cap))
    }
}

/// Converts a terminal non-success job into [`Error::JobFailed`].
pub(crate) fn job_failed(uuid: &str, job: Job, state: JobState) -> Error {
    let (err_code, err_message) = match job.error {
        Some(e) => (e.code, e.message),
        None => (None, None),
    };
    Error::JobFailed {
        uuid: uuid.to_owned(),
        state,
        code: err_code.or_else(|| job.code.map(|c| c.to_string())),
        message: err_message.or(job.message),
        description: job.description,
    }
}

impl Client {
    /// Fetches a job record.
    pub async fn get_job(&self, uuid: &str) -> Result<Job> {
        self.get_json(&job_path(uuid)).await
    }

    /// Polls a job until it reaches a terminal state. Returns the final record on
    /// `success`; [`Error::JobFailed`] on failure, cancelled or expired;
    /// [`Error::JobGone`] if the record disappears (404); [`Error::JobTimeout`] after the
    /// configured deadline.
    pub async fn wait_for_job(&self, uuid: &str) -> Result<Job> {
        let cfg = self.job_config().clone();
        let path = job_path(uuid);
        let started = Instant::now();
        let deadline = started + cfg.deadline;
        let mut polls = 0u32;
        loop {
            let job: Job = match self.get_json(&path).await {
                Ok(job) => job,
                Err(e) if e.status() == Some(404) => {
                    return Err(Error::JobGone {
                        uuid: uuid.to_owned(),
                    })
                }
                Err(e) => return Err(e),
            };
            let state = job
                .state
                .clone()
                .unwrap_or_else(|| JobState::Unknown(String::new()));
            tracing::debug!(job = uuid, state = %state, "ONTAP job polled");
            match state {
                JobState::Success => return Ok(job),
                JobState::Failure | JobState::Cancelled | JobState::Expired => {
                    return Err(job_failed(uuid, job, state))
                }
                _ => {}
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::JobTimeout {
                    uuid: uuid.to_owned(),
                    last_state: state,
                    waited: now - started,
                });
            }
            let wait = jitter_upper_half(cfg.interval(polls)).min(deadline - now);
            polls = polls.saturating_add(1);
            tokio::time::sleep(wait).await;
        }
    }
}

fn job_path(uuid: &str) -> String {
    format!(
        "/api/cluster/jobs/{}?fields={JOB_POLL_FIELDS}",
        encode_path_segment(uuid)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip() {
        for s in [
            "queued",
            "running",
            "paused",
            "success",
            "failure",
            "cancelled",
            "expired",
        ] {
            assert_eq!(JobState::parse(s).as_str(), s);
            assert!(!matches!(JobState::parse(s), JobState::Unknown(_)));
        }
        assert_eq!(
            JobState::parse("zombie"),
            JobState::Unknown("zombie".into())
        );
        let terminal: Vec<bool> = [
            "queued",
            "running",
            "paused",
            "success",
            "failure",
            "cancelled",
            "expired",
            "x",
        ]
        .iter()
        .map(|s| JobState::parse(s).is_terminal())
        .collect();
        assert_eq!(
            terminal,
            vec![false, false, false, true, true, true, true, false]
        );
        assert_eq!(
            serde_json::to_string(&JobState::Cancelled).unwrap(),
            "\"cancelled\""
        );
    }

    #[test]
    fn running_job_fixture() {
        let body = r#"{
          "message": "creating_node_backups",
          "uuid": "b5145e1d-b53b-11e8-8252-005056bbd8f5",
          "description": "Cluster Backup Job",
          "_links": {"self": {"href": "/api/cluster/jobs/b5145e1d-b53b-11e8-8252-005056bbd8f5"}},
          "code": 0,
          "state": "running"
        }"#;
        let job: Job = serde_json::from_str(body).unwrap();
        assert_eq!(job.state, Some(JobState::Running));
        assert_eq!(job.code, Some(0));
        assert_eq!(job.message.as_deref(), Some("creating_node_backups"));
        assert_eq!(job.description.as_deref(), Some("Cluster Backup Job"));
    }

    #[test]
    fn failed_job_fixtures() {
        let body = r#"{"uuid": "493e64d1-99e2-11eb-9fc4-080027c8f2a7",
         "description": "PATCH /api/storage/volumes/7d2fd988-8277-11eb-9fc4-080027c8f2a7",
         "state": "failure", "message": "entry doesn't exist", "code": 4,
         "start_time": "2021-04-10T09:51:13+00:00", "end_time": "2021-04-10T09:51:13+00:00"}"#;
        let job: Job = serde_json::from_str(body).unwrap();
        let e = job_failed(
            "493e64d1-99e2-11eb-9fc4-080027c8f2a7",
            job,
            JobState::Failure,
        );
        match &e {
            Error::JobFailed {
                uuid,
                state,
                code,
                message,
                description,
            } => {
                assert_eq!(uuid, "493e64d1-99e2-11eb-9fc4-080027c8f2a7");
                assert_eq!(*state, JobState::Failure);
                assert_eq!(code.as_deref(), Some("4"));
                assert_eq!(message.as_deref(), Some("entry doesn't exist"));
                assert_eq!(
                    description.as_deref(),
                    Some("PATCH /api/storage/volumes/7d2fd988-8277-11eb-9fc4-080027c8f2a7")
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(e.is_not_found());

        let body = r#"{"uuid": "2453aafc-a9a6-11eb-9fc7-080027c8f2a7",
         "state": "failure",
         "message": "Snapshot copy \"s\" has not expired or is locked.",
         "code": 1638555}"#;
        let job: Job = serde_json::from_str(body).unwrap();
        let e = job_failed(
            "2453aafc-a9a6-11eb-9fc7-080027c8f2a7",
            job,
            JobState::Failure,
        );
        assert_eq!(e.ontap_code(), Some("1638555"));
        assert!(!e.is_not_found());
    }

    #[test]
    fn structured_error_wins() {
        let body = r#"{"state":"failure","message":"short","code":1,
            "error":{"code":"917536","message":"long"}}"#;
        let job: Job = serde_json::from_str(body).unwrap();
        let e = job_failed("u", job, JobState::Failure);
        assert_eq!(e.ontap_code(), Some("917536"));
        assert!(e.to_string().ends_with(": long"), "{e}");
    }

    #[test]
    fn code_as_string_or_number() {
        let job: Job = serde_json::from_str(r#"{"code":"42"}"#).unwrap();
        assert_eq!(job.code, Some(42));
        let job: Job = serde_json::from_str(r#"{"code":null}"#).unwrap();
        assert_eq!(job.code, None);
        assert!(serde_json::from_str::<Job>(r#"{"code":"x"}"#).is_err());
    }

    #[test]
    fn job_link_fixture() {
        let body = r#"{"uuid": "0d025fd9-c4dc-11eb-adb5-005056bbeb0b",
          "_links": {"self": {"href": "/api/cluster/jobs/0d025fd9-c4dc-11eb-adb5-005056bbeb0b"}}}"#;
        let link: JobLink = serde_json::from_str(body).unwrap();
        assert_eq!(link.uuid, "0d025fd9-c4dc-11eb-adb5-005056bbeb0b");
        assert_eq!(
            link.href.as_deref(),
            Some("/api/cluster/jobs/0d025fd9-c4dc-11eb-adb5-005056bbeb0b")
        );
        let bare: JobLink = serde_json::from_str(r#"{"uuid":"x"}"#).unwrap();
        assert_eq!(bare, JobLink::new("x"));
    }

    #[test]
    fn poll_intervals_grow_and_cap() {
        let c = JobWaitConfig::default();
        let ms: Vec<u128> = (0..7).map(|p| c.interval(p).as_millis()).collect();
        assert_eq!(ms, vec![250, 375, 562, 843, 1265, 1898, 2000]);
        assert_eq!(c.interval(100), Duration::from_secs(2));
        assert_eq!(c.return_timeout(), 30);
        assert_eq!(c.deadline(), Duration::from_secs(600));
        assert_eq!(
            JobWaitConfig::default()
                .with_return_timeout(500)
                .return_timeout(),
            120
        );
    }

    #[test]
    fn job_path_is_encoded() {
        assert_eq!(
            job_path("b5145e1d-b53b"),
            "/api/cluster/jobs/b5145e1d-b53b?fields=state,message,code,error,description,start_time,end_time"
        );
    }
}
