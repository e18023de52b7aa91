//! `ontap-client` against `ontap-sim` with injected faults: retries (what is repeated and
//! what is not), broken connections, ONTAP errors, failing and expired jobs, timeouts,
//! authentication, TLS trust and the redaction of secrets.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{assert_redacted, err, ok, Env, AGGR1, PLANTED_PASSWORD, SVM};
use ontap_client::models::{SnapshotCreate, VolumeCreate};
use ontap_client::{
    Client, Error, JobState, OutcomeKind, Query, RetryPolicy, SecretString, TimeoutKind,
};
use ontap_sim::{ApiError, Fault};

const VOLUMES: &str = "/api/storage/volumes";
const CLUSTER: &str = "/api/cluster";

fn unavailable() -> ApiError {
    ApiError::new(503, "65541", "The system is busy; retry later.")
}

#[tokio::test]
async fn get_failing_once_with_503_is_retried() {
    let env = common::start().await;
    env.sim
        .faults()
        .add(Fault::error(Some("GET"), CLUSTER, unavailable()));
    let cluster = ok(env.client.cluster().get().await);
    assert_eq!(cluster.name.as_deref(), Some("sim-cluster"));
    assert_eq!(env.count("GET", CLUSTER), 2);
    assert!(env.sim.faults().active().is_empty());
}

#[tokio::test]
async fn get_failing_twice_with_429_is_retried_twice() {
    let env = common::start().await;
    env.sim.faults().add(
        Fault::error(
            Some("GET"),
            "/api/storage/aggregates",
            ApiError::new(429, "0", "Too many requests"),
        )
        .times(2),
    );
    let aggrs = ok(env.client.aggregates().list_all(&Query::new()).await);
    assert_eq!(aggrs.len(), 2);
    assert_eq!(env.count("GET", "/api/storage/aggregates"), 3);
}

#[tokio::test]
async fn get_failing_with_503_gives_up_after_max_attempts() {
    let env = common::start().await;
    env.sim
        .faults()
        .add(Fault::error(Some("GET"), CLUSTER, unavailable()).times(0));
    let e = err(env.client.cluster().get().await);
    let Error::Api(api) = &e else {
        panic!("expected an API error, got {e:?}")
    };
    assert_eq!(api.status, 503);
    assert_eq!(api.code.as_deref(), Some("65541"));
    assert_eq!(api.message, "The system is busy; retry later.");
    assert_eq!(api.path, CLUSTER);
    assert!(e.is_retryable());
    assert_eq!(
        env.count("GET", CLUSTER),
        4,
        "RetryPolicy max_attempts is 4"
    );
}

/// The retry rule (`ontap-client/src/retry.rs`): HTTP 503 means ONTAP refused before
/// acting, so even a POST is repeated, and the resource is created exactly once.
#[tokio::test]
async fn post_failing_once_with_503_is_retried_and_creates_once() {
    let env = common::start().await;
    env.sim
        .faults()
        .add(Fault::error(Some("POST"), VOLUMES, unavailable()));
    let created = ok(env
        .client
        .volumes()
        .create(&VolumeCreate::flexvol("v503", SVM, AGGR1))
        .await);
    assert_eq!(created.record.and_then(|v| v.name).as_deref(), Some("v503"));
    assert_eq!(env.count("POST", VOLUMES), 2);
    assert_eq!(env.stored_names("volumes"), ["v503"]);

    // Refused every time: four attempts, then the 503 itself.
    env.sim
        .faults()
        .add(Fault::error(Some("POST"), VOLUMES, unavailable()).times(0));
    let e = err(env
        .client
        .volumes()
        .create(&VolumeCreate::flexvol("v503b", SVM, AGGR1))
        .await);
    assert_eq!((e.status(), e.ontap_code()), (Some(503), Some("65541")));
    assert_eq!(env.count("POST", VOLUMES), 2 + 4);
    assert_eq!(env.stored_names("volumes"), ["v503"]);
}

/// 502 and 504 come from a gateway: ONTAP may have acted, so only reads are repeated.
#[tokio::test]
async fn gateway_errors_repeat_reads_only() {
    let env = common::start().await;
    let bad_gateway = || ApiError::new(502, "0", "Bad gateway");
    env.sim
        .faults()
        .add(Fault::error(Some("GET"), CLUSTER, bad_gateway()));
    ok(env.client.cluster().get().await);
    assert_eq!(env.count("GET", CLUSTER), 2);

    env.sim
        .faults()
        .add(Fault::error(Some("POST"), VOLUMES, bad_gateway()));
    let e = err(env
        .client
        .volumes()
        .create(&VolumeCreate::flexvol("v502", SVM, AGGR1))
        .await);
    assert_eq!(e.status(), Some(502));
    assert_eq!(env.count("POST", VOLUMES), 1);

    // Any other error status is final, for reads too.
    env.sim.faults().add(Fault::error(
        Some("GET"),
        CLUSTER,
        ApiError::new(500, "65552", "RPC failure"),
    ));
    let e = err(env.client.cluster().get().await);
    assert_eq!((e.status(), e.ontap_code()), (Some(500), Some("65552")));
    assert!(!e.is_retryable());
    assert_eq!(env.count("GET", CLUSTER), 3);
}

#[tokio::test]
async fn closed_connection_on_get_is_retried() {
    let env = common::start().await;
    env.sim
        .faults()
        .add(Fault::close_connection(Some("GET"), CLUSTER));
    let version = ok(env.client.cluster().version().await);
    assert_eq!(version.triple(), (9, 16, 1));
    assert_eq!(env.count("GET", CLUSTER), 2);
}

#[tokio::test]
async fn closed_connection_on_post_is_not_retried() {
    let env = common::start().await;
    env.sim
        .faults()
        .add(Fault::close_connection(Some("POST"), VOLUMES));
    let e = err(env
        .client
        .volumes()
        .create(&VolumeCreate::flexvol("vclosed", SVM, AGGR1))
        .await);
    match &e {
        Error::Transport {
            method,
            path,
            may_have_been_sent,
            ..
        } => {
            assert_eq!(method.as_str(), "POST");
            assert_eq!(
                path,
                "/api/storage/volumes?return_records=true&return_timeout=30"
            );
            assert!(*may_have_been_sent);
        }
        other => panic!("expected Transport, got {other:?}"),
    }
    assert!(!e.is_retryable());
    assert_eq!(
        e.to_string(),
        "POST /api/storage/volumes?return_records=true&return_timeout=30: transport error \
         (the request may have reached the server)"
    );
    assert_eq!(env.count("POST", VOLUMES), 1);
    assert!(env.stored_names("volumes").is_empty());
}

#[tokio::test]
async fn injected_ontap_error_on_volume_post_is_a_typed_api_error() {
    let env = common::start().await;
    let message = "Failed to create volume: the aggregate is offline.";
    env.sim.faults().add(Fault::error(
        Some("POST"),
        VOLUMES,
        ApiError::new(400, "917534", message).with_target("aggregates"),
    ));
    let e = err(env
        .client
        .volumes()
        .create(&VolumeCreate::flexvol("vfail", SVM, AGGR1))
        .await);
    let Error::Api(api) = &e else {
        panic!("expected an API error, got {e:?}")
    };
    assert_eq!(api.status, 400);
    assert_eq!(api.code.as_deref(), Some("917534"));
    assert_eq!(api.message, message);
    assert_eq!(api.target.as_deref(), Some("aggregates"));
    assert_eq!(api.method.as_str(), "POST");
    assert_eq!(e.ontap_code(), Some("917534"));
    assert!(!e.is_retryable() && !e.is_not_found() && !e.is_conflict());
    assert_eq!(
        e.to_string(),
        format!(
            "POST /api/storage/volumes?return_records=true&return_timeout=30: ONTAP error \
             (HTTP 400, code 917534): {message} (target: aggregates)"
        )
    );
    assert_eq!(env.count("POST", VOLUMES), 1);
    assert!(env.stored_names("volumes").is_empty());
}

#[tokio::test]
async fn failing_job_surfaces_as_job_failed() {
    let env = common::start().await;
    let polling = common::client_builder(&env.sim)
        .job_wait(common::fast_jobs().with_return_timeout(0))
        .build()
        .expect("client");
    let message = "Insufficient space in aggregate \"aggr1\".";
    env.sim
        .faults()
        .add(Fault::fail_job(Some("POST"), VOLUMES, 917537, message));
    let e = err(polling
        .volumes()
        .create(&VolumeCreate::flexvol("vjob", SVM, AGGR1))
        .await);
    match &e {
        Error::JobFailed {
            uuid,
            state,
            code,
            message: got,
            description,
        } => {
            assert_eq!(*state, JobState::Failure);
            assert_eq!(code.as_deref(), Some("917537"));
            assert_eq!(got.as_deref(), Some(message));
            assert_eq!(
                description.as_deref(),
                Some("POST /api/storage/volumes?return_records=true")
            );
            assert_eq!(
                e.to_string(),
                format!("job {uuid} ended in state failure with code 917537: {message}")
            );
            // The job record says the same.
            let job = ok(env.client.get_job(uuid).await);
            assert_eq!(job.state, Some(JobState::Failure));
            assert_eq!(job.code, Some(917537));
        }
        other => panic!("expected JobFailed, got {other:?}"),
    }
    assert!(env.stored_names("volumes").is_empty());

    // With return_timeout ONTAP waits for the job and answers with its error instead.
    env.sim.faults().add(Fault::fail_job(
        Some("DELETE"),
        "/api/storage/volumes/*",
        8,
        "Volume is busy.",
    ));
    let uuid = ok(env
        .client
        .volumes()
        .create(&VolumeCreate::flexvol("vbusy", SVM, AGGR1))
        .await)
    .record
    .and_then(|v| v.uuid)
    .expect("uuid");
    let e = err(env.client.volumes().delete(&uuid).await);
    let Error::Api(api) = &e else {
        panic!("expected an API error, got {e:?}")
    };
    assert_eq!(
        (api.status, api.code.as_deref(), api.message.as_str()),
        (400, Some("8"), "Volume is busy.")
    );
    assert_eq!(env.stored_names("volumes"), ["vbusy"]);
}

#[tokio::test]
async fn expired_job_record_yields_job_gone() {
    let env = common::start_with(
        common::sim_builder().job_ttl(Duration::from_millis(100)),
        |b| b,
    )
    .await;
    let vol = ok(env
        .client
        .volumes()
        .create(&VolumeCreate::flexvol("vgone", SVM, AGGR1))
        .await)
    .record
    .and_then(|v| v.uuid)
    .expect("uuid");
    // Start a snapshot job without waiting for it...
    let outcome = ok(env
        .client
        .raw()
        .post(
            &format!("/api/storage/volumes/{vol}/snapshots"),
            &Query::new().return_timeout(0),
            Some(&serde_json::json!({"name": "late"})),
        )
        .await);
    assert_eq!(outcome.kind, OutcomeKind::Accepted);
    assert_eq!(outcome.status, 202);
    let job = outcome.jobs[0].uuid.clone();
    // ...and come back after the record expired.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let e = err(env.client.wait_for_job(&job).await);
    match &e {
        Error::JobGone { uuid } => assert_eq!(uuid, &job),
        other => panic!("expected JobGone, got {other:?}"),
    }
    assert_eq!(
        e.to_string(),
        format!("job {job}: job record expired or was deleted; outcome unknown")
    );
    assert!(!e.is_not_found(), "an unknown outcome is not 'not found'");
    let e = err(outcome.wait(&env.client).await);
    assert!(matches!(e, Error::JobGone { .. }), "{e:?}");
    // The work itself was done.
    let snaps = ok(env.client.snapshots(&vol).by_name("late").await);
    assert_eq!(snaps.and_then(|s| s.name).as_deref(), Some("late"));
}

/// A client with a 400 ms request timeout. Mutations carry no `return_timeout` (which
/// would raise the request deadline to `return_timeout + 15 s`).
fn impatient(env: &Env, retry: RetryPolicy) -> Client {
    common::client_builder(&env.sim)
        .request_timeout(Duration::from_millis(400))
        .job_wait(common::fast_jobs().with_return_timeout(0))
        .retry_policy(retry)
        .build()
        .expect("client")
}

#[tokio::test]
async fn delayed_answer_beyond_request_timeout_is_a_timeout() {
    let env = common::start().await;
    env.sim
        .faults()
        .add(Fault::delay(Some("GET"), CLUSTER, Duration::from_millis(1500)).times(0));
    let e = err(impatient(&env, RetryPolicy::never()).cluster().get().await);
    match &e {
        Error::Timeout {
            method,
            path,
            which,
        } => {
            assert_eq!(method.as_str(), "GET");
            assert_eq!(path, CLUSTER);
            assert_eq!(*which, TimeoutKind::Request);
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert_eq!(e.to_string(), "GET /api/cluster: request timeout expired");
    assert!(!e.is_retryable());
    assert_eq!(env.count("GET", CLUSTER), 1);

    // A read that timed out is repeated (it cannot do harm)...
    let e = err(impatient(&env, common::fast_retries())
        .cluster()
        .get()
        .await);
    assert!(
        matches!(
            e,
            Error::Timeout {
                which: TimeoutKind::Request,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(env.count("GET", CLUSTER), 1 + 4);

    // ...a POST is not (it may have run).
    env.sim.faults().add(Fault::delay(
        Some("POST"),
        VOLUMES,
        Duration::from_millis(1500),
    ));
    let e = err(impatient(&env, common::fast_retries())
        .volumes()
        .create(&VolumeCreate::flexvol("vslow", SVM, AGGR1))
        .await);
    assert!(
        matches!(
            e,
            Error::Timeout {
                which: TimeoutKind::Request,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(env.count("POST", VOLUMES), 1);
}

#[tokio::test]
async fn operation_deadline_covers_retries() {
    let env = common::start().await;
    env.sim.faults().add(Fault::delay(
        Some("GET"),
        CLUSTER,
        Duration::from_millis(1500),
    ));
    let client = common::client_builder(&env.sim)
        .request_timeout(Duration::from_secs(10))
        .operation_timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let e = err(client.cluster().get().await);
    assert!(
        matches!(
            e,
            Error::Timeout {
                which: TimeoutKind::Overall,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "GET /api/cluster: overall operation timeout expired"
    );
}

/// Captures `tracing` output (client and simulator run on the test's thread).
#[derive(Clone, Default)]
struct LogBuf(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuf {
    type Writer = LogBuf;
    fn make_writer(&'a self) -> LogBuf {
        self.clone()
    }
}

impl LogBuf {
    fn text(&self) -> String {
        self.0
            .lock()
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .unwrap_or_default()
    }
}

#[tokio::test]
async fn wrong_password_is_401_not_retried_and_never_shown() {
    let logs = LogBuf::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let env = common::start().await;
    let wrong = format!("{PLANTED_PASSWORD}-wrong");
    let client = common::client_builder(&env.sim)
        .basic_auth(common::USER, SecretString::from(wrong.clone()))
        .build()
        .expect("client");
    let e = err(client.cluster().get().await);
    let Error::Api(api) = &e else {
        panic!("expected an API error, got {e:?}")
    };
    assert_eq!(api.status, 401);
    assert_eq!(api.code.as_deref(), Some("6"));
    assert_eq!(
        api.message,
        "The credentials provided are invalid or the user is not authorized."
    );
    assert!(!e.is_retryable());

    // The right password works, through the same simulator.
    ok(env.client.cluster().get().await);

    let text = logs.text();
    // One exchange for the wrong password (401, not repeated), one for the right one.
    let responses: Vec<&str> = text
        .lines()
        .filter_map(|l| {
            l.split_once("ontap_client::client: ONTAP response ")
                .map(|(_, r)| r)
        })
        .collect();
    assert_eq!(responses.len(), 2, "{text}");
    assert!(responses[0].starts_with("status=401 "), "{responses:?}");
    assert!(responses[1].starts_with("status=200 "), "{responses:?}");
    assert!(!text.contains("retrying ONTAP request"), "{text}");
    for secret in [PLANTED_PASSWORD, wrong.as_str()] {
        assert!(!text.contains(secret), "a password is in the logs: {text}");
        for shown in [e.to_string(), format!("{e:?}"), format!("{client:?}")] {
            assert!(!shown.contains(secret), "a password is shown: {shown}");
        }
    }
    // Unauthenticated requests never reach the API (the request log only has the good one).
    assert_eq!(env.count("GET", CLUSTER), 1);

    // Bearer tokens are checked and hidden the same way.
    let token_client = common::client_builder(&env.sim)
        .bearer_token(SecretString::from(PLANTED_PASSWORD))
        .build()
        .expect("client");
    let e = err(token_client.cluster().get().await);
    assert_eq!(e.status(), Some(401));
    assert!(!format!("{token_client:?}").contains(PLANTED_PASSWORD));
}

#[tokio::test]
async fn bearer_token_is_accepted_when_configured() {
    let token = "Planted-Token-0b4c";
    let env = common::start_with(
        common::sim_builder().bearer_token(SecretString::from(token)),
        |b| b.bearer_token(SecretString::from(token)),
    )
    .await;
    let v = ok(env.client.cluster().version().await);
    assert_eq!(v.triple(), (9, 16, 1));
    assert!(!format!("{:?}", env.client).contains(token));
}

#[tokio::test]
async fn tls_trust_is_required_unless_explicitly_disabled() {
    let env = common::start().await;
    let without_ca = Client::builder(env.sim.url())
        .trust_only_added_cas(true)
        .basic_auth(common::USER, env.sim.password())
        .retry_policy(RetryPolicy::never())
        .build()
        .expect("client");
    let e = err(without_ca.cluster().get().await);
    match &e {
        Error::Transport {
            may_have_been_sent, ..
        } => assert!(!*may_have_been_sent, "a failed handshake sends nothing"),
        other => panic!("expected Transport, got {other:?}"),
    }
    assert!(e.is_retryable());

    // Another simulator's CA does not vouch for this one.
    let other = common::sim_builder().start().await.expect("second sim");
    let wrong_ca = Client::builder(env.sim.url())
        .add_ca_pem(other.ca_pem().expect("https").as_bytes().to_vec())
        .trust_only_added_cas(true)
        .basic_auth(common::USER, env.sim.password())
        .retry_policy(RetryPolicy::never())
        .build()
        .expect("client");
    let e = err(wrong_ca.cluster().get().await);
    assert!(
        matches!(
            e,
            Error::Transport {
                may_have_been_sent: false,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(env.count("GET", CLUSTER), 0, "nothing reached the API");

    // The one place verification is switched off: it then works against the untrusted cert.
    let insecure = Client::builder(env.sim.url())
        .danger_accept_invalid_certs(true)
        .basic_auth(common::USER, env.sim.password())
        .build()
        .expect("client");
    let cluster = ok(insecure.cluster().get().await);
    assert_eq!(cluster.name.as_deref(), Some("sim-cluster"));
    assert_eq!(env.count("GET", CLUSTER), 1);
}

#[tokio::test]
async fn no_error_of_a_failure_battery_shows_the_password() {
    let env = common::start().await;
    let c = &env.client;
    let mut errors: Vec<Error> = Vec::new();
    env.sim
        .faults()
        .add(Fault::close_connection(Some("POST"), VOLUMES));
    errors.extend(
        c.volumes()
            .create(&VolumeCreate::flexvol("a", SVM, AGGR1))
            .await
            .err(),
    );
    env.sim
        .faults()
        .add(Fault::error(Some("GET"), CLUSTER, unavailable()).times(0));
    errors.extend(c.cluster().get().await.err());
    env.sim.faults().clear();
    errors.extend(c.volumes().get("nosuch", &Query::new()).await.err());
    errors.extend(
        c.snapshots("nosuch")
            .create(&SnapshotCreate::new("s"))
            .await
            .err(),
    );
    errors.extend(c.raw().get("/api/nosuch", &Query::new()).await.err());
    errors.extend(c.raw().get("/nosuch", &Query::new()).await.err());
    errors.extend(
        c.volumes()
            .get("x", &Query::new().return_timeout(500))
            .await
            .err(),
    );
    env.sim.faults().add(Fault::delay(
        Some("GET"),
        CLUSTER,
        Duration::from_millis(800),
    ));
    errors.extend(
        impatient(&env, RetryPolicy::never())
            .cluster()
            .get()
            .await
            .err(),
    );
    assert_eq!(errors.len(), 8, "{errors:?}");
    for e in &errors {
        assert_redacted(e);
    }
    let kinds: Vec<&str> = errors
        .iter()
        .map(|e| match e {
            Error::Transport { .. } => "transport",
            Error::Api(_) => "api",
            Error::InvalidPath { .. } => "path",
            Error::Query(_) => "query",
            Error::Timeout { .. } => "timeout",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "transport",
            "api",
            "api",
            "api",
            "api",
            "path",
            "query",
            "timeout"
        ]
    );
}

#[tokio::test]
async fn silent_server_is_a_connect_timeout_and_is_retried() {
    // A TCP listener that accepts and then never speaks TLS.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let held = accepted.clone();
    let server = tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            if let Ok(mut v) = held.lock() {
                v.push(sock);
            }
        }
    });
    let client = Client::builder(format!("https://{addr}"))
        .basic_auth(common::USER, SecretString::from(PLANTED_PASSWORD))
        .connect_timeout(Duration::from_millis(200))
        .retry_policy(common::fast_retries())
        .build()
        .expect("client");
    let e = err(client.cluster().get().await);
    assert!(
        matches!(
            e,
            Error::Timeout {
                which: TimeoutKind::Connect,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.is_retryable());
    assert_eq!(e.to_string(), "GET /api/cluster: connect timeout expired");
    let connections = accepted.lock().map(|v| v.len()).unwrap_or_default();
    assert_eq!(
        connections, 4,
        "nothing was sent, so every attempt was made"
    );
    // Even a POST is repeated when nothing was sent.
    let e = err(client
        .volumes()
        .create(&VolumeCreate::flexvol("never", SVM, AGGR1))
        .await);
    assert!(
        matches!(
            e,
            Error::Timeout {
                which: TimeoutKind::Connect,
                ..
            }
        ),
        "{e:?}"
    );
    let connections = accepted.lock().map(|v| v.len()).unwrap_or_default();
    assert_eq!(connections, 8);
    server.abort();
}

#[tokio::test]
async fn job_still_running_at_the_deadline_is_job_timeout() {
    let env = common::start_with(
        common::sim_builder().job_duration(Duration::from_secs(5), Duration::from_secs(5)),
        |b| {
            b.job_wait(
                common::fast_jobs()
                    .with_return_timeout(0)
                    .with_deadline(Duration::from_millis(300)),
            )
        },
    )
    .await;
    let e = err(env
        .client
        .volumes()
        .create(&VolumeCreate::flexvol("slowjob", SVM, AGGR1))
        .await);
    match &e {
        Error::JobTimeout {
            last_state, waited, ..
        } => {
            assert_eq!(*last_state, JobState::Running);
            assert!(*waited >= Duration::from_millis(300), "{waited:?}");
            assert!(*waited < Duration::from_secs(3), "{waited:?}");
        }
        other => panic!("expected JobTimeout, got {other:?}"),
    }
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn in_flight_cap_serialises_requests() {
    let env = common::start().await;
    env.sim
        .faults()
        .add(Fault::delay(Some("GET"), CLUSTER, Duration::from_millis(300)).times(0));
    let timed = |cap: usize| {
        let client = common::client_builder(&env.sim)
            .max_in_flight(cap)
            .build()
            .expect("client");
        async move {
            let started = std::time::Instant::now();
            let cluster = client.cluster();
            let gets = (0..3).map(|_| cluster.get());
            for r in futures_util::future::join_all(gets).await {
                ok(r);
            }
            started.elapsed()
        }
    };
    let one_at_a_time = timed(1).await;
    let all_at_once = timed(3).await;
    assert!(
        one_at_a_time >= Duration::from_millis(900),
        "{one_at_a_time:?}"
    );
    assert!(
        all_at_once < one_at_a_time,
        "{all_at_once:?} vs {one_at_a_time:?}"
    );
    assert_eq!(env.count("GET", CLUSTER), 6);
}
