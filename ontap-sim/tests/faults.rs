//! Fault injection (in-process and over /__sim) and the request log.

mod common;

use std::time::{Duration, Instant};

use ontap_sim::{ApiError, Fault};
use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::json;

#[tokio::test]
async fn error_fault_fires_on_nth_request_for_n_times() -> anyhow::Result<()> {
    let env = common::start().await?;
    env.sim.faults().add(
        Fault::error(
            Some("GET"),
            "/api/storage/aggregates*",
            ApiError::new(500, "65552", "generic RPC failure"),
        )
        .nth(2)
        .times(2),
    );
    let statuses = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(env.get("/api/storage/aggregates").await?);
        }
        v
    };
    let codes: Vec<u16> = statuses.iter().map(|r| r.status).collect();
    assert_eq!(codes, [200, 500, 500, 200]);
    assert_eq!(
        statuses[1].body,
        json!({"error": {"message": "generic RPC failure", "code": "65552"}})
    );
    assert!(env.sim.faults().active().is_empty());
    Ok(())
}

#[tokio::test]
async fn delay_and_close_connection() -> anyhow::Result<()> {
    let env = common::start().await?;
    env.sim.faults().add(Fault::delay(
        None,
        "/api/cluster",
        Duration::from_millis(300),
    ));
    let t = Instant::now();
    let r = env.get("/api/cluster").await?;
    assert_eq!(r.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    env.sim
        .faults()
        .add(Fault::close_connection(Some("GET"), "/api/cluster"));
    let err = env
        .get("/api/cluster")
        .await
        .expect_err("connection must drop");
    let msg = format!("{err:#}");
    assert!(msg.contains("sending to"), "{msg}");
    let r = env.get("/api/cluster").await?;
    assert_eq!(r.status, 200);
    Ok(())
}

#[tokio::test]
async fn failed_job_fault() -> anyhow::Result<()> {
    let env = common::start().await?;
    env.sim.faults().add(Fault::fail_job(
        Some("POST"),
        "/api/storage/volumes",
        917536,
        "injected failure",
    ));
    let (_, job) = env
        .run_job(
            Method::POST,
            "/api/storage/volumes",
            Some(json!({"name": "fj", "svm": {"name": "svm1"}, "aggregates": [{"name": "aggr1"}]})),
        )
        .await?;
    assert_eq!(job["state"], "failure");
    assert_eq!(job["code"], 917536);
    assert_eq!(job["message"], "injected failure");
    let r = env.get("/api/storage/volumes?name=fj").await?;
    assert_eq!(r.body["num_records"], 0);
    // One-shot: the retry succeeds.
    env.create_volume(
        json!({"name": "fj", "svm": {"name": "svm1"}, "aggregates": [{"name": "aggr1"}]}),
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn admin_endpoint_faults_requests_and_reset() -> anyhow::Result<()> {
    let env = common::start().await?;
    let r = env
        .post("/__sim/faults", json!({"method": "DELETE", "path": "/api/storage/volumes/*",
                                       "action": {"kind": "error", "status": 409, "code": "8", "message": "busy"}}))
        .await?;
    assert_eq!(r.status, 201);
    let active = env.get("/__sim/faults").await?;
    assert_eq!(active.body.as_array().unwrap().len(), 1);
    let r = env.delete("/api/storage/volumes/abc").await?;
    assert_eq!(r.status, 409);
    assert_eq!(r.body["error"]["message"], "busy");
    env.delete("/__sim/faults").await?;
    let r = env.delete("/api/storage/volumes/abc").await?;
    assert_eq!(r.status, 404);

    let r = env.get("/__sim/requests").await?;
    let recs = r.body["records"].as_array().unwrap();
    assert_eq!(recs.len(), 2);
    assert_eq!(
        recs[0],
        json!({"method": "DELETE", "path": "/api/storage/volumes/abc", "query": null})
    );
    env.call(
        Method::GET,
        "/api/storage/volumes?fields=size&name=a%20b",
        None,
    )
    .await?;
    let r = env.get("/__sim/requests").await?;
    assert_eq!(r.body["records"][2]["query"], "fields=size&name=a%20b");

    // Admin needs the same credentials.
    let url = format!("{}/__sim/requests", env.sim.url());
    let r = env.http.get(&url).send().await?;
    assert_eq!(r.status(), 401);
    let r = env
        .http
        .get(&url)
        .basic_auth(env.sim.username(), Some(env.sim.password().expose_secret()))
        .send()
        .await?;
    assert_eq!(r.status(), 200);

    env.create_volume(
        json!({"name": "gone", "svm": {"name": "svm1"}, "aggregates": [{"name": "aggr1"}]}),
    )
    .await?;
    let r = env.post("/__sim/reset", json!({})).await?;
    assert_eq!(r.status, 200);
    let r = env.get("/api/storage/volumes?name=gone").await?;
    assert_eq!(r.body["num_records"], 0);
    assert_eq!(env.sim.requests().len(), 1);
    Ok(())
}

#[tokio::test]
async fn secrets_in_bodies_are_redacted_in_the_request_log() -> anyhow::Result<()> {
    let env = common::start().await?;
    env.post(
        "/api/protocols/san/iscsi/credentials",
        json!({"initiator": "iqn.x", "chap": {"inbound": {"user": "u", "password": "s3cret!"}}}),
    )
    .await?;
    let log = serde_json::to_string(&env.sim.requests())?;
    assert!(!log.contains("s3cret!"));
    assert!(log.contains("<redacted>"));
    Ok(())
}
