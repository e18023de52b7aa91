//! Shared helpers for the `ontap_*` integration tests: an in-process simulator over HTTPS
//! and an `ontap-client` that trusts the simulator's generated certificate.
//!
//! Every test starts its own simulator (an ephemeral port, a fresh seed), so tests are
//! independent and can run in parallel. The simulator's password is [`PLANTED_PASSWORD`]
//! so that [`assert_redacted`] can check that no error ever shows it.
#![allow(dead_code)]

use std::time::Duration;

use ontap_client::{Client, ClientBuilder, JobWaitConfig, RetryPolicy, SecretString};
use ontap_sim::{SimServer, SimServerBuilder};

/// The simulator's basic-auth password: planted so that tests can look for leaks.
pub const PLANTED_PASSWORD: &str = "Planted-Pw-5e1d9c7a!";
/// The simulator's user name.
pub const USER: &str = "admin";
/// The SVM of the default seed.
pub const SVM: &str = "svm1";
/// The aggregates of the default seed.
pub const AGGR1: &str = "aggr1";
/// Second aggregate of the default seed (on the other node).
pub const AGGR2: &str = "aggr2";

/// A running simulator and a client for it.
pub struct Env {
    /// The simulator (dropping it stops serving).
    pub sim: SimServer,
    /// A client trusting only the simulator's certificate, with fast retries and polls.
    pub client: Client,
}

/// A simulator builder with the planted password and fast jobs (0–20 ms).
pub fn sim_builder() -> SimServerBuilder {
    SimServer::builder()
        .credentials(USER, SecretString::from(PLANTED_PASSWORD))
        .job_duration(Duration::ZERO, Duration::from_millis(20))
}

/// Fast retries: 4 attempts, waits 10–40 ms.
pub fn fast_retries() -> RetryPolicy {
    RetryPolicy::new(4, Duration::from_millis(10), Duration::from_millis(40))
}

/// Fast job polls (10 ms, ×1.5, at most 50 ms), 20 s deadline, default `return_timeout`.
pub fn fast_jobs() -> JobWaitConfig {
    JobWaitConfig::default()
        .with_poll_backoff(Duration::from_millis(10), 1.5, Duration::from_millis(50))
        .with_deadline(Duration::from_secs(20))
}

/// A client builder for `sim`: its CA (and only it) trusted, basic auth, fast retries
/// and job polls, 20 s request timeout.
pub fn client_builder(sim: &SimServer) -> ClientBuilder {
    let pem = sim
        .ca_pem()
        .expect("the simulator serves HTTPS")
        .as_bytes()
        .to_vec();
    Client::builder(sim.url())
        .add_ca_pem(pem)
        .trust_only_added_cas(true)
        .basic_auth(sim.username(), sim.password())
        .application("kvmstor-tests", "1")
        .retry_policy(fast_retries())
        .job_wait(fast_jobs())
        .request_timeout(Duration::from_secs(20))
}

/// Starts a default simulator and a client for it.
pub async fn start() -> Env {
    start_with(sim_builder(), |b| b).await
}

/// Starts the simulator from `builder` and a client configured by `configure`.
pub async fn start_with(
    builder: SimServerBuilder,
    configure: impl FnOnce(ClientBuilder) -> ClientBuilder,
) -> Env {
    let sim = builder.start().await.expect("simulator starts");
    let client = configure(client_builder(&sim))
        .build()
        .expect("client builds");
    Env { sim, client }
}

impl Env {
    /// Requests the simulator received with this method whose path (trailing `/`
    /// removed) equals `path`.
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.sim
            .requests()
            .iter()
            .filter(|r| r.method == method && r.path.trim_end_matches('/') == path)
            .count()
    }

    /// Keys of a store collection (`volumes`, `luns`, ...), from the simulator's state.
    pub fn stored(&self, collection: &str) -> Vec<serde_json::Value> {
        self.sim.state()["collections"][collection]
            .as_object()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Names (`name` field) of the records of a store collection, sorted.
    pub fn stored_names(&self, collection: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .stored(collection)
            .iter()
            .filter_map(|v| v["name"].as_str().map(str::to_owned))
            .collect();
        names.sort();
        names
    }
}

/// Panics if the planted password shows in the error's `Display`, `Debug` or any source.
pub fn assert_redacted(err: &(dyn std::error::Error + 'static)) {
    let mut texts = vec![err.to_string(), format!("{err:?}")];
    let mut source = err.source();
    while let Some(s) = source {
        texts.push(s.to_string());
        texts.push(format!("{s:?}"));
        source = s.source();
    }
    for t in texts {
        assert!(
            !t.contains(PLANTED_PASSWORD),
            "the planted password leaked into an error: {t}"
        );
    }
}

/// Unwraps `Ok`, or panics with the error (after checking it is redacted).
#[track_caller]
pub fn ok<T>(r: ontap_client::Result<T>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => {
            assert_redacted(&e);
            panic!("unexpected error: {e}\n{e:?}");
        }
    }
}

/// Unwraps `Err` (checking it is redacted), or panics.
#[track_caller]
pub fn err<T: std::fmt::Debug>(r: ontap_client::Result<T>) -> ontap_client::Error {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => {
            assert_redacted(&e);
            e
        }
    }
}

/// An RFC 3339 UTC timestamp `offset` from now (negative for the past), whole seconds.
pub fn rfc3339_from_now(offset_secs: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::seconds(offset_secs);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}
