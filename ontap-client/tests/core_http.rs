//! Transport, paging, jobs, retries and headers against a scripted in-test HTTP server.

mod core_support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use core_support::{job_link, job_poll, start_dropping_server, Reply, Server};
use futures_util::TryStreamExt;
use ontap_client::{
    Api, Client, ClientBuilder, Error, JobState, JobWaitConfig, OutcomeKind, Query, RetryPolicy,
    SecretString, TimeoutKind,
};
use serde::Deserialize;
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Vol {
    uuid: String,
    name: String,
}

fn fast_jobs() -> JobWaitConfig {
    JobWaitConfig::default().with_poll_backoff(
        Duration::from_millis(5),
        1.5,
        Duration::from_millis(20),
    )
}

fn builder(server: &Server) -> ClientBuilder {
    Client::builder(&server.base)
        .retry_policy(RetryPolicy::new(
            3,
            Duration::from_millis(5),
            Duration::from_millis(20),
        ))
        .job_wait(fast_jobs())
}

fn client(server: &Server) -> Client {
    builder(server).build().unwrap()
}

fn vol(i: u64) -> serde_json::Value {
    json!({"uuid": format!("u{i}"), "name": format!("v{i}")})
}

// ---------------------------------------------------------------- pagination

#[tokio::test]
async fn pages_follow_next_link_verbatim() {
    let server = Server::start(|req, _| {
        let next = |href: &str| json!({"next": {"href": href}, "self": {"href": "/x"}});
        match req.target.as_str() {
            "/api/storage/volumes?fields=name&name=v*&max_records=3" => Reply::json(
                200,
                json!({"records": [vol(1), vol(2), vol(3)], "num_records": 3,
                       "_links": next("/api/storage/volumes?start.uuid=u3&fields=name&name=v*&max_records=3")}),
            ),
            // A short page.
            "/api/storage/volumes?start.uuid=u3&fields=name&name=v*&max_records=3" => Reply::json(
                200,
                json!({"records": [vol(4)], "num_records": 1,
                       "_links": next("/api/storage/volumes?start.uuid=u4&opaque=1")}),
            ),
            // An empty page that still has a next link.
            "/api/storage/volumes?start.uuid=u4&opaque=1" => Reply::json(
                200,
                json!({"records": [], "num_records": 0,
                       "_links": next("/api/storage/volumes?start.uuid=u4&opaque=2")}),
            ),
            // The final page: no next link.
            "/api/storage/volumes?start.uuid=u4&opaque=2" => Reply::json(
                200,
                json!({"records": [vol(5), vol(6)], "num_records": 2, "_links": {"self": {"href": "/x"}}}),
            ),
            other => Reply::json(404, json!({"error": {"message": other, "code": "4"}})),
        }
    })
    .await;
    let api: Api<Vol> = client(&server).api("/api/storage/volumes");
    let q = Query::new()
        .fields(["name"])
        .filter("name", "v*")
        .max_records(3);
    let got: Vec<String> = api.list(&q).map_ok(|v| v.name).try_collect().await.unwrap();
    assert_eq!(got, vec!["v1", "v2", "v3", "v4", "v5", "v6"]);
    assert_eq!(
        server.lines(),
        vec![
            "GET /api/storage/volumes?fields=name&name=v*&max_records=3",
            "GET /api/storage/volumes?start.uuid=u3&fields=name&name=v*&max_records=3",
            "GET /api/storage/volumes?start.uuid=u4&opaque=1",
            "GET /api/storage/volumes?start.uuid=u4&opaque=2",
        ]
    );
}

#[tokio::test]
async fn list_is_lazy_and_stops_on_error() {
    let server = Server::start(|req, _| match req.target.as_str() {
        "/api/storage/volumes" => Reply::json(
            200,
            json!({"records": [vol(1)], "_links": {"next": {"href": "/api/storage/volumes?p=2"}}}),
        ),
        _ => Reply::json(
            500,
            json!({"error": {"message": "RPC timed out", "code": "65541"}}),
        ),
    })
    .await;
    let api: Api<Vol> = client(&server).api("/api/storage/volumes");
    let stream = api.list(&Query::new());
    assert!(
        server.lines().is_empty(),
        "nothing is fetched before polling"
    );
    let mut stream = std::pin::pin!(stream);
    assert_eq!(stream.try_next().await.unwrap().unwrap().name, "v1");
    assert_eq!(
        server.lines().len(),
        1,
        "the second page is fetched only when needed"
    );
    let err = stream.try_next().await.unwrap_err();
    assert_eq!(err.ontap_code(), Some("65541"));
    assert_eq!(err.status(), Some(500));
    assert!(
        stream.try_next().await.unwrap().is_none(),
        "the stream ends after an error"
    );
    assert_eq!(server.lines().len(), 2, "500 on GET is not retried");
}

#[tokio::test]
async fn count_sums_num_records_over_pages() {
    let server = Server::start(|req, _| match req.target.as_str() {
        "/api/storage/luns?svm.name=vs0&return_records=false" => Reply::json(
            200,
            json!({"num_records": 5, "_links": {"next": {"href": "/api/storage/luns?start=5&svm.name=vs0&return_records=false"}}}),
        ),
        "/api/storage/luns?start=5&svm.name=vs0&return_records=false" => Reply::json(
            200,
            json!({"num_records": 0, "_links": {"next": {"href": "/api/storage/luns?start=6&svm.name=vs0&return_records=false"}}}),
        ),
        "/api/storage/luns?start=6&svm.name=vs0&return_records=false" => {
            Reply::json(200, json!({"num_records": 3}))
        }
        other => Reply::json(404, json!({"error": {"message": other, "code": "4"}})),
    })
    .await;
    let api: Api<serde_json::Value> = client(&server).api("/api/storage/luns");
    assert_eq!(
        api.count(&Query::new().filter("svm.name", "vs0"))
            .await
            .unwrap(),
        8
    );
    assert_eq!(server.lines().len(), 3);
}

#[tokio::test]
async fn streaming_memory_stays_flat() {
    const TOTAL: u64 = 100_000;
    const PAGE: u64 = 1_000;
    let consumed = Arc::new(AtomicU64::new(0));
    let served = Arc::new(AtomicU64::new(0));
    let max_outstanding = Arc::new(AtomicU64::new(0));
    let (c, s, m) = (consumed.clone(), served.clone(), max_outstanding.clone());
    let server = Server::start(move |req, _| {
        // Records handed out but not yet consumed by the test when the next page is asked for.
        let outstanding = s.load(Ordering::SeqCst) - c.load(Ordering::SeqCst);
        m.fetch_max(outstanding, Ordering::SeqCst);
        let start: u64 = req
            .target
            .split("start=")
            .nth(1)
            .map(|v| v.split('&').next().unwrap().parse().unwrap())
            .unwrap_or(0);
        let end = (start + PAGE).min(TOTAL);
        let records: Vec<_> = (start..end).map(vol).collect();
        s.fetch_add(end - start, Ordering::SeqCst);
        let mut body = json!({"records": records, "num_records": end - start});
        if end < TOTAL {
            body["_links"] = json!({"next": {"href": format!("/api/storage/volumes?start={end}&max_records={PAGE}")}});
        }
        Reply::json(200, body)
    })
    .await;
    let api: Api<Vol> = client(&server).api("/api/storage/volumes");
    let started = Instant::now();
    let mut stream = std::pin::pin!(api.list(&Query::new().max_records(PAGE)));
    let mut n = 0u64;
    while let Some(v) = stream.try_next().await.unwrap() {
        assert_eq!(v.uuid, format!("u{n}"));
        n += 1;
        consumed.fetch_add(1, Ordering::SeqCst);
        // The client never holds more than one page.
        assert!(served.load(Ordering::SeqCst) - n <= PAGE);
    }
    assert_eq!(n, TOTAL);
    assert_eq!(server.lines().len(), (TOTAL / PAGE) as usize);
    assert_eq!(
        max_outstanding.load(Ordering::SeqCst),
        0,
        "a page was requested before the previous one was consumed"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

// ---------------------------------------------------------------- jobs and mutations

#[tokio::test]
async fn create_waits_for_job_and_resolves_location_query() {
    let server = Server::start(
        |req, i| match (req.method.as_str(), req.target.as_str(), i) {
            ("POST", "/api/storage/volumes?return_records=true&return_timeout=30", _) => {
                Reply::json(202, job_link("j1")).header("location", "/api/storage/volumes/?name=c1")
            }
            ("GET", t, 1 | 2) if t.starts_with("/api/cluster/jobs/j1?") => Reply::json(
                200,
                json!({"uuid": "j1", "state": if i == 1 { "queued" } else { "running" }}),
            ),
            ("GET", t, 3) if t.starts_with("/api/cluster/jobs/j1?") => Reply::json(
                200,
                json!({"uuid": "j1", "state": "success", "code": 0, "message": "success"}),
            ),
            ("GET", "/api/storage/volumes/?name=c1", _) => Reply::json(
                200,
                json!({"records": [{"uuid": "c1-uuid", "name": "c1"}], "num_records": 1}),
            ),
            (m, t, _) => Reply::json(
                400,
                json!({"error": {"message": format!("{m} {t}"), "code": "2"}}),
            ),
        },
    )
    .await;
    let api: Api<Vol> = client(&server).api("/api/storage/volumes");
    let created = api
        .create(&json!({"name": "c1", "clone": {"parent_volume": {"name": "v1"}}}))
        .await
        .unwrap();
    assert_eq!(
        created.record,
        Some(Vol {
            uuid: "c1-uuid".into(),
            name: "c1".into()
        })
    );
    assert_eq!(created.completed.outcome.kind, OutcomeKind::Accepted);
    assert_eq!(created.completed.jobs.len(), 1);
    assert_eq!(created.completed.jobs[0].state, Some(JobState::Success));
    assert_eq!(
        server.lines(),
        vec![
            "POST /api/storage/volumes?return_records=true&return_timeout=30".to_owned(),
            job_poll("j1"),
            job_poll("j1"),
            job_poll("j1"),
            "GET /api/storage/volumes/?name=c1".to_owned(),
        ]
    );
    let post = &server.seen()[0];
    assert_eq!(
        post.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&post.body).unwrap(),
        json!({"name": "c1", "clone": {"parent_volume": {"name": "v1"}}})
    );
}

#[tokio::test]
async fn return_timeout_fast_path_makes_no_job_poll() {
    let server = Server::start(|req, _| match req.method.as_str() {
        "POST" => Reply::json(
            201,
            json!({"num_records": 1, "records": [{"uuid": "l1", "name": "/vol/v1/l1"}],
                   "job": {"uuid": "j9", "_links": {"self": {"href": "/api/cluster/jobs/j9"}}}}),
        ),
        _ => Reply::json(
            500,
            json!({"error": {"message": "unexpected", "code": "1"}}),
        ),
    })
    .await;
    let api: Api<Vol> = client(&server).api("/api/storage/luns");
    let created = api.create(&json!({"name": "/vol/v1/l1"})).await.unwrap();
    assert_eq!(created.record.unwrap().uuid, "l1");
    assert_eq!(created.completed.outcome.kind, OutcomeKind::Done);
    assert!(created.completed.jobs.is_empty());
    assert_eq!(
        server.lines(),
        vec!["POST /api/storage/luns?return_records=true&return_timeout=30"]
    );
    assert!(!server
        .lines()
        .iter()
        .any(|l| l.contains("/api/cluster/jobs")));
}

#[tokio::test]
async fn create_resolves_instance_location() {
    let server = Server::start(|req, _| match (req.method.as_str(), req.target.as_str()) {
        ("POST", _) => {
            Reply::json(201, json!({})).header("location", "/api/protocols/san/igroups/ig-1")
        }
        ("GET", "/api/protocols/san/igroups/ig-1") => {
            Reply::json(200, json!({"uuid": "ig-1", "name": "ig"}))
        }
        _ => Reply::json(404, json!({"error": {"message": "no", "code": "4"}})),
    })
    .await;
    let api: Api<Vol> = client(&server).api("/api/protocols/san/igroups");
    let created = api.create(&json!({"name": "ig"})).await.unwrap();
    assert_eq!(created.record.unwrap().uuid, "ig-1");
    assert_eq!(server.lines().len(), 2);
}

#[tokio::test]
async fn create_with_ambiguous_location_is_not_unique() {
    let server = Server::start(|req, _| match req.method.as_str() {
        "POST" => Reply::json(201, json!({})).header("location", "/api/storage/volumes/?name=c*"),
        _ => Reply::json(200, json!({"records": [vol(1), vol(2)], "num_records": 2})),
    })
    .await;
    let api: Api<Vol> = client(&server).api("/api/storage/volumes");
    match api.create(&json!({"name": "c1"})).await {
        Err(Error::NotUnique { found, path }) => {
            assert_eq!(found, 2);
            assert_eq!(path, "/api/storage/volumes/?name=c*");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn created_record_missing_at_location() {
    let server = Server::start(|req, _| match req.method.as_str() {
        "POST" => Reply::json(201, json!({})).header("location", "/api/storage/volumes/?name=c1"),
        _ => Reply::json(200, json!({"records": [], "num_records": 0})),
    })
    .await;
    let api: Api<Vol> = client(&server).api("/api/storage/volumes");
    match api.create(&json!({"name": "c1"})).await {
        Err(Error::CreatedRecordMissing { location }) => {
            assert_eq!(location, "/api/storage/volumes/?name=c1")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn failed_job_is_job_failed() {
    let server = Server::start(|req, _| match req.method.as_str() {
        "DELETE" => Reply::json(202, job_link("jf")),
        _ => Reply::json(
            200,
            json!({"uuid": "jf", "description": "DELETE /api/storage/volumes/v1/snapshots/s1",
                   "state": "failure", "code": 1638555,
                   "message": "Snapshot copy \"s1\" has not expired or is locked."}),
        ),
    })
    .await;
    let api: Api<Vol> = client(&server).api("/api/storage/volumes/v1/snapshots");
    match api.delete("s1").await {
        Err(Error::JobFailed {
            uuid,
            state,
            code,
            message,
            description,
        }) => {
            assert_eq!(uuid, "jf");
            assert_eq!(state, JobState::Failure);
            assert_eq!(code.as_deref(), Some("1638555"));
            assert_eq!(
                message.as_deref(),
                Some("Snapshot copy \"s1\" has not expired or is locked.")
            );
            assert_eq!(
                description.as_deref(),
                Some("DELETE /api/storage/volumes/v1/snapshots/s1")
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        server.lines(),
        vec![
            "DELETE /api/storage/volumes/v1/snapshots/s1?return_timeout=30".to_owned(),
            job_poll("jf")
        ]
    );
}

#[tokio::test]
async fn cancelled_job_is_a_failure() {
    let server = Server::start(|req, _| match req.method.as_str() {
        "PATCH" => Reply::json(202, job_link("jc")),
        _ => Reply::json(200, json!({"uuid": "jc", "state": "cancelled"})),
    })
    .await;
    let api: Api<Vol> = client(&server).api("/api/storage/volumes");
    match api.patch("v1", &json!({"size": 1})).await {
        Err(Error::JobFailed { state, .. }) => assert_eq!(state, JobState::Cancelled),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn job_record_404_is_job_gone() {
    let server = Server::start(|req, _| match req.method.as_str() {
        "PATCH" => Reply::json(202, job_link("jg")),
        _ => Reply::json(
            404,
            json!({"error": {"message": "entry doesn't exist", "code": "4"}}),
        ),
    })
    .await;
    let api: Api<Vol> = client(&server).api("/api/storage/volumes");
    match api.patch("v1", &json!({"comment": "x"})).await {
        Err(e @ Error::JobGone { .. }) => {
            assert_eq!(
                e.to_string(),
                "job jg: job record expired or was deleted; outcome unknown"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn job_deadline_is_job_timeout() {
    let server = Server::start(|req, _| match req.method.as_str() {
        "PATCH" => Reply::json(202, job_link("jt")),
        _ => Reply::json(200, json!({"uuid": "jt", "state": "running"})),
    })
    .await;
    let client = builder(&server)
        .job_wait(fast_jobs().with_deadline(Duration::from_millis(120)))
        .build()
        .unwrap();
    let api: Api<Vol> = client.api("/api/storage/volumes");
    let started = Instant::now();
    match api.patch("v1", &json!({"comment": "x"})).await {
        Err(Error::JobTimeout {
            uuid,
            last_state,
            waited,
        }) => {
            assert_eq!(uuid, "jt");
            assert_eq!(last_state, JobState::Running);
            assert!(waited >= Duration::from_millis(120), "{waited:?}");
        }
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    let polls = server
        .lines()
        .iter()
        .filter(|l| l.contains("/api/cluster/jobs/jt"))
        .count();
    assert!(polls >= 3, "polled {polls} times");
}

#[tokio::test]
async fn delete_where_waits_for_every_job() {
    let server = Server::start(|req, _| match req.method.as_str() {
        "DELETE" => Reply::json(
            200,
            json!({"jobs": [{"uuid": "a", "_links": {"self": {"href": "/api/cluster/jobs/a"}}},
                            {"uuid": "b", "_links": {"self": {"href": "/api/cluster/jobs/b"}}}],
                   "num_records": 2}),
        ),
        _ => Reply::json(200, json!({"state": "success"})),
    })
    .await;
    let api: Api<Vol> = client(&server)
        .with_svm_uuid("85ebedff")
        .api("/api/storage/volumes");
    let done = api
        .delete_where(&Query::new().filter("name", "tmp_*"))
        .await
        .unwrap();
    assert_eq!(done.outcome.kind, OutcomeKind::Batch);
    assert_eq!(done.outcome.num_records, Some(2));
    assert_eq!(done.jobs.len(), 2);
    assert_eq!(
        server.lines(),
        vec![
            "DELETE /api/storage/volumes?name=tmp_*&return_timeout=30".to_owned(),
            job_poll("a"),
            job_poll("b"),
        ]
    );
    assert_eq!(
        server.seen()[0].header("x-dot-svm-uuid").as_deref(),
        Some("85ebedff")
    );
}

#[tokio::test]
async fn find_get_and_keys() {
    let server = Server::start(|req, _| match req.target.as_str() {
        "/api/storage/volumes?name=one&return_timeout=120" => {
            Reply::json(200, json!({"records": [vol(1)]}))
        }
        "/api/storage/volumes?name=none&return_timeout=120" => {
            Reply::json(200, json!({"records": []}))
        }
        "/api/storage/volumes?name=v*&return_timeout=120" => {
            Reply::json(200, json!({"records": [vol(1), vol(2)]}))
        }
        "/api/protocols/cifs/shares/svm-1/my%20share?fields=path" => {
            Reply::json(200, json!({"uuid": "s", "name": "my share"}))
        }
        _ => Reply::json(
            404,
            json!({"error": {"message": "entry doesn't exist", "code": "4"}}),
        ),
    })
    .await;
    let c = client(&server);
    let vols: Api<Vol> = c.api("/api/storage/volumes");
    assert_eq!(
        vols.find(&Query::new().filter("name", "one"))
            .await
            .unwrap()
            .unwrap()
            .uuid,
        "u1"
    );
    assert!(vols
        .find(&Query::new().filter("name", "none"))
        .await
        .unwrap()
        .is_none());
    assert!(matches!(
        vols.find(&Query::new().filter("name", "v*")).await,
        Err(Error::NotUnique { found: 2, .. })
    ));
    let shares: Api<Vol> = c.api("/api/protocols/cifs/shares");
    let share = shares
        .get("svm-1/my share", &Query::new().fields(["path"]))
        .await
        .unwrap();
    assert_eq!(share.name, "my share");
    let err = vols.get("nope", &Query::new()).await.unwrap_err();
    assert!(err.is_not_found());
    match &err {
        Error::Api(api) => {
            assert_eq!(api.path, "/api/storage/volumes/nope");
            assert_eq!(api.method, http::Method::GET);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn raw_access() {
    let server = Server::start(|req, _| match (req.method.as_str(), req.target.as_str()) {
        ("GET", "/api/cluster?fields=version") => {
            Reply::json(200, json!({"version": {"full": "NetApp Release 9.7"}}))
        }
        ("POST", "/api/storage/volumes?return_timeout=30") => Reply::json(202, job_link("rj")),
        ("GET", _) => Reply::json(200, json!({"state": "success"})),
        _ => Reply::json(400, json!({"error": {"message": "bad", "code": "2"}})),
    })
    .await;
    let c = client(&server);
    let v = c
        .raw()
        .get("/api/cluster", &Query::new().fields(["version"]))
        .await
        .unwrap();
    assert_eq!(v["version"]["full"], "NetApp Release 9.7");
    let outcome = c
        .raw()
        .post(
            "/api/storage/volumes",
            &Query::new(),
            Some(&json!({"name": "v"})),
        )
        .await
        .unwrap();
    assert_eq!(outcome.kind, OutcomeKind::Accepted);
    assert_eq!(
        server.lines().len(),
        2,
        "raw mutations do not wait by themselves"
    );
    let done = outcome.wait(&c).await.unwrap();
    assert_eq!(done.jobs.len(), 1);
    assert_eq!(server.lines()[2], job_poll("rj"));
}

// ---------------------------------------------------------------- retries and deadlines

#[tokio::test]
async fn get_503_then_200_is_retried() {
    let server = Server::start(|_, i| {
        if i == 0 {
            Reply::json(503, json!({"error": {"message": "busy", "code": "65552"}}))
        } else {
            Reply::json(200, json!({"records": [vol(1)]}))
        }
    })
    .await;
    let api: Api<Vol> = client(&server).api("/api/storage/volumes");
    assert_eq!(api.list_all(&Query::new()).await.unwrap().len(), 1);
    assert_eq!(server.lines().len(), 2);
}

#[tokio::test]
async fn post_503_is_retried_but_500_is_not() {
    // 503: ONTAP refused before acting, so even a POST may be repeated.
    let server = Server::start(|_, i| {
        if i == 0 {
            Reply::json(503, json!({"error": {"message": "busy"}})).header("retry-after", "0")
        } else {
            Reply::json(201, json!({"records": [vol(7)]}))
        }
    })
    .await;
    let api: Api<Vol> = client(&server).api("/api/storage/volumes");
    let created = api.create(&json!({"name": "v7"})).await.unwrap();
    assert_eq!(created.record.unwrap().uuid, "u7");
    assert_eq!(server.lines().len(), 2);

    let server = Server::start(|_, _| {
        Reply::json(
            500,
            json!({"error": {"message": "RPC timed out", "code": "65541"}}),
        )
    })
    .await;
    let api: Api<Vol> = client(&server).api("/api/storage/volumes");
    let err = api.create(&json!({"name": "v7"})).await.unwrap_err();
    assert_eq!(err.ontap_code(), Some("65541"));
    assert!(!err.is_retryable());
    assert_eq!(server.lines().len(), 1);
}

#[tokio::test]
async fn patch_502_is_not_retried_but_get_502_is() {
    let server = Server::start(|_, _| Reply::json(502, json!({}))).await;
    let c = client(&server);
    let api: Api<Vol> = c.api("/api/storage/volumes");
    assert_eq!(
        api.patch("v", &json!({})).await.unwrap_err().status(),
        Some(502)
    );
    assert_eq!(server.lines().len(), 1);
    assert_eq!(
        api.get("v", &Query::new()).await.unwrap_err().status(),
        Some(502)
    );
    assert_eq!(server.lines().len(), 1 + 3, "GET uses all 3 attempts");
}

#[tokio::test]
async fn post_on_dropped_connection_is_not_retried() {
    let (base, count) = start_dropping_server().await;
    let c = Client::builder(&base)
        .retry_policy(RetryPolicy::new(
            3,
            Duration::from_millis(5),
            Duration::from_millis(10),
        ))
        .build()
        .unwrap();
    let err = c
        .raw()
        .post(
            "/api/storage/volumes",
            &Query::new(),
            Some(&json!({"name": "v"})),
        )
        .await
        .unwrap_err();
    match &err {
        Error::Transport {
            may_have_been_sent,
            method,
            path,
            ..
        } => {
            assert!(*may_have_been_sent);
            assert_eq!(*method, http::Method::POST);
            assert_eq!(path, "/api/storage/volumes?return_timeout=30");
        }
        other => panic!("{other:?}"),
    }
    assert!(!err.is_retryable());
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(count.load(Ordering::SeqCst), 1, "POST was sent once");

    // The same failure on a GET is repeated.
    let err = c
        .raw()
        .get("/api/cluster", &Query::new())
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Transport {
            may_have_been_sent: true,
            ..
        }
    ));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(count.load(Ordering::SeqCst), 1 + 3);
}

#[tokio::test]
async fn connection_refused_is_not_sent() {
    // Bind then drop a listener to get a port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c = Client::builder(format!("http://127.0.0.1:{port}"))
        .retry_policy(RetryPolicy::new(
            2,
            Duration::from_millis(1),
            Duration::from_millis(2),
        ))
        .build()
        .unwrap();
    let err = c
        .raw()
        .post("/api/storage/volumes", &Query::new(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Transport {
                may_have_been_sent: false,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert_eq!(
        err.to_string(),
        "POST /api/storage/volumes?return_timeout=30: transport error (the request was not sent)"
    );
}

#[tokio::test]
async fn request_and_overall_deadlines() {
    let server =
        Server::start(|_, _| Reply::json(200, json!({})).delay(Duration::from_millis(800))).await;
    let c = builder(&server)
        .retry_policy(RetryPolicy::never())
        .request_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    match c.raw().get("/api/cluster", &Query::new()).await {
        Err(Error::Timeout { which, path, .. }) => {
            assert_eq!(which, TimeoutKind::Request);
            assert_eq!(path, "/api/cluster");
        }
        other => panic!("{other:?}"),
    }
    let c = builder(&server)
        .operation_timeout(Duration::from_millis(150))
        .build()
        .unwrap();
    let started = Instant::now();
    match c.raw().get("/api/cluster", &Query::new()).await {
        Err(Error::Timeout { which, .. }) => assert_eq!(which, TimeoutKind::Overall),
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_millis(700));
}

#[tokio::test]
async fn in_flight_cap_is_respected() {
    let server =
        Server::start(|_, _| Reply::json(200, json!({})).delay(Duration::from_millis(80))).await;
    let c = builder(&server).max_in_flight(2).build().unwrap();
    let calls = (0..8).map(|_| {
        let c = c.with_svm_name("svm1"); // clones share the cap
        async move { c.raw().get("/api/cluster", &Query::new()).await }
    });
    for r in futures_util::future::join_all(calls).await {
        r.unwrap();
    }
    assert_eq!(server.lines().len(), 8);
    assert_eq!(server.max_concurrent.load(Ordering::SeqCst), 2);
}

// ---------------------------------------------------------------- headers

#[tokio::test]
async fn headers_basic_auth_and_svm() {
    let server = Server::start(|_, _| Reply::json(200, json!({}))).await;
    let c = builder(&server)
        .basic_auth("admin", SecretString::from("netapp1!"))
        .build()
        .unwrap();
    c.raw().get("/api/cluster", &Query::new()).await.unwrap();
    c.with_svm_name("svm1")
        .raw()
        .get("/api/cluster", &Query::new())
        .await
        .unwrap();
    let seen = server.seen();
    assert_eq!(
        seen[0].header("accept").as_deref(),
        Some("application/hal+json")
    );
    assert_eq!(
        seen[0].header("x-dot-client-app"),
        Some(format!("kvmstor/{}", env!("CARGO_PKG_VERSION")))
    );
    // base64("admin:netapp1!")
    assert_eq!(
        seen[0].header("authorization").as_deref(),
        Some("Basic YWRtaW46bmV0YXBwMSE=")
    );
    assert_eq!(seen[0].header("x-dot-svm-name"), None);
    assert_eq!(seen[1].header("x-dot-svm-name").as_deref(), Some("svm1"));
    assert_eq!(seen[1].header("x-dot-svm-uuid"), None);
    assert_eq!(
        seen[0].header("content-type"),
        None,
        "no body, no content type"
    );
}

#[tokio::test]
async fn headers_bearer_and_app_and_default_svm() {
    let server = Server::start(|_, _| Reply::json(200, json!({}))).await;
    let c = builder(&server)
        .bearer_token(SecretString::from("eyJhbGciOi.payload.sig"))
        .application("provisioner", "2.1")
        .svm_name("vs0")
        .build()
        .unwrap();
    c.raw().get("/api/cluster", &Query::new()).await.unwrap();
    c.without_svm()
        .raw()
        .get("/api/cluster", &Query::new())
        .await
        .unwrap();
    let seen = server.seen();
    assert_eq!(
        seen[0].header("authorization").as_deref(),
        Some("Bearer eyJhbGciOi.payload.sig")
    );
    assert_eq!(
        seen[0].header("x-dot-client-app").as_deref(),
        Some("provisioner/2.1")
    );
    assert_eq!(seen[0].header("x-dot-svm-name").as_deref(), Some("vs0"));
    assert_eq!(seen[1].header("x-dot-svm-name"), None);
}

#[tokio::test]
async fn approval_required_from_server() {
    let server = Server::start(|_, _| {
        Reply::json(
            403,
            json!({"error": {"message": "The security multi-admin-verify request (index 3) requires approval.", "code": "262325"}}),
        )
    })
    .await;
    let api: Api<Vol> = client(&server).api("/api/storage/volumes");
    match api.delete("v1").await {
        Err(e @ Error::ApprovalRequired { .. }) => {
            let Error::ApprovalRequired { request_index, .. } = &e else {
                unreachable!()
            };
            assert_eq!(*request_index, Some(3));
            assert_eq!(e.ontap_code(), Some("262325"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.lines().len(), 1);
}

// ---------------------------------------------------------------- redaction

#[derive(Clone, Default)]
struct LogBuf(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
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

// The default (current-thread) test runtime keeps the client on this thread, so the
// thread-local subscriber below sees every event the client emits.
#[tokio::test]
async fn secrets_never_appear_in_debug_errors_or_logs() {
    const PASSWORD: &str = "PLANTED-PASSWORD-7f3a";
    const TOKEN: &str = "PLANTED-TOKEN-91bc";
    const KEY: &str = "PLANTED-KEY-55d1";
    let logs = LogBuf::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = Server::start(|_, _| {
        Reply::json(
            401,
            json!({"error": {"message": "User is not authorized", "code": "6"}}),
        )
    })
    .await;
    let mut texts: Vec<String> = Vec::new();

    let with_key = Client::builder(&server.base)
        .basic_auth("admin", SecretString::from(PASSWORD))
        .client_identity(ontap_client::ClientIdentity::from_pem(
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_vec(),
            SecretString::from(format!(
                "-----BEGIN PRIVATE KEY-----\n{KEY}\n-----END PRIVATE KEY-----\n"
            )),
        ));
    texts.push(format!("{with_key:?}"));
    let err = with_key.build().unwrap_err();
    texts.push(format!("{err:?} {err}"));

    let basic = builder(&server)
        .basic_auth("admin", SecretString::from(PASSWORD))
        .danger_accept_invalid_certs(true);
    texts.push(format!("{basic:?}"));
    let basic = basic.build().unwrap();
    texts.push(format!("{basic:?}"));
    let err = basic
        .raw()
        .get("/api/cluster", &Query::new())
        .await
        .unwrap_err();
    texts.push(format!("{err:?} {err}"));
    let api: Api<Vol> = basic.api("/api/storage/volumes");
    let err = api.create(&json!({"name": "v"})).await.unwrap_err();
    texts.push(format!("{err:?} {err} {api:?}"));

    let bearer = builder(&server).bearer_token(SecretString::from(TOKEN));
    texts.push(format!("{bearer:?}"));
    let bearer = bearer.build().unwrap();
    texts.push(format!("{bearer:?}"));
    let err = bearer
        .raw()
        .get("/api/cluster", &Query::new())
        .await
        .unwrap_err();
    texts.push(format!("{err:?} {err}"));

    let seen = server.seen();
    let basic_header = seen[0].header("authorization").unwrap();
    let bearer_header = seen.last().unwrap().header("authorization").unwrap();
    assert!(bearer_header.contains(TOKEN), "the token was really sent");
    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logged.contains("ONTAP response"),
        "logs were captured:\n{logged}"
    );
    assert!(
        logged.contains("DISABLED"),
        "the danger option warns:\n{logged}"
    );
    texts.push(logged);

    let base64_payload = basic_header.trim_start_matches("Basic ");
    for text in &texts {
        for secret in [PASSWORD, TOKEN, KEY, base64_payload] {
            assert!(!text.contains(secret), "{secret} leaked into:\n{text}");
        }
    }
}

#[tokio::test]
async fn query_operators_on_the_wire() {
    let server = Server::start(|_, _| Reply::json(200, json!({"records": []}))).await;
    let api: Api<Vol> = client(&server).api("/api/storage/volumes");
    let q = Query::new()
        .fields(["name", "space.size"])
        .filter("name", "vol*|!db*")
        .filter("space.size", ">1GB")
        .filter("comment", "a b+c&d")
        .order_by("size desc");
    api.list_all(&q).await.unwrap();
    // The url crate always percent-encodes `<`, `>` and `"` in queries (WHATWG URL rules);
    // ONTAP decodes them like any other escape. Everything else is sent as encoded by Query.
    assert_eq!(
        server.lines(),
        vec!["GET /api/storage/volumes?fields=name,space.size&name=vol*|!db*&space.size=%3E1GB&comment=a%20b%2Bc%26d&order_by=size%20desc"]
    );
}
