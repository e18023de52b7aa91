//! Jobs: 202 + Location, states, return_timeout, return_records, query PATCH/DELETE
//! with `jobs[]`, expiry.

mod common;

use std::time::Duration;

use ontap_sim::SimServer;
use reqwest::Method;
use serde_json::json;

fn vol(name: &str) -> serde_json::Value {
    json!({"name": name, "svm": {"name": "svm1"}, "aggregates": [{"name": "aggr1"}], "size": "1GB"})
}

#[tokio::test]
async fn job_is_running_then_success() -> anyhow::Result<()> {
    let env = common::start_with(
        SimServer::builder().job_duration(Duration::from_millis(300), Duration::from_millis(300)),
    )
    .await?;
    let r = env.post("/api/storage/volumes", vol("slow")).await?;
    assert_eq!(r.status, 202);
    let uuid = r.body["job"]["uuid"].as_str().unwrap();
    let j = env
        .get(&format!(
            "/api/cluster/jobs/{uuid}?fields=state,description"
        ))
        .await?;
    assert_eq!(j.body["state"], "running");
    assert_eq!(j.body["description"], "POST /api/storage/volumes");
    // Not visible until the job finished.
    let v = env.get("/api/storage/volumes?name=slow").await?;
    assert_eq!(v.body["num_records"], 0);
    let job = env.wait_job(uuid).await?;
    assert_eq!(job["state"], "success");
    assert_eq!(job["message"], "success");
    assert!(job["start_time"].as_str().unwrap().ends_with("+00:00"));
    assert!(job["end_time"].is_string());
    let list = env
        .get(&format!("/api/cluster/jobs?uuid={uuid}&fields=state"))
        .await?;
    assert_eq!(list.body["num_records"], 1);
    Ok(())
}

#[tokio::test]
async fn return_timeout_waits_and_answers_201() -> anyhow::Result<()> {
    let env = common::start().await?;
    let r = env
        .call(
            Method::POST,
            "/api/storage/volumes?return_timeout=10&return_records=true",
            Some(vol("rt")),
        )
        .await?;
    assert_eq!(r.status, 201);
    assert_eq!(r.body["num_records"], 1);
    assert_eq!(r.body["records"][0]["name"], "rt");
    let uuid = r.body["job"]["uuid"].as_str().unwrap();
    let j = env.get(&format!("/api/cluster/jobs/{uuid}")).await?;
    assert_eq!(j.body["state"], "success");
    let v = env.get("/api/storage/volumes?name=rt").await?;
    assert_eq!(v.body["num_records"], 1);
    let vu = v.body["records"][0]["uuid"].as_str().unwrap();
    let r = env
        .call(
            Method::PATCH,
            &format!("/api/storage/volumes/{vu}?return_timeout=10"),
            Some(json!({"comment": "x"})),
        )
        .await?;
    assert_eq!(r.status, 200);
    assert!(r.body["job"]["uuid"].is_string());
    let r = env
        .call(
            Method::POST,
            "/api/storage/volumes?return_timeout=121",
            Some(vol("no")),
        )
        .await?;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["code"], "262197");
    Ok(())
}

#[tokio::test]
async fn query_patch_and_delete_return_jobs() -> anyhow::Result<()> {
    let env = common::start().await?;
    for n in ["qa1", "qa2", "qb1"] {
        env.create_volume(vol(n)).await?;
    }
    let r = env
        .call(
            Method::PATCH,
            "/api/storage/volumes?name=qa*",
            Some(json!({"comment": "bulk"})),
        )
        .await?;
    assert_eq!(r.status, 202);
    assert_eq!(r.body["num_records"], 2);
    assert_eq!(
        r.body["_links"]["self"]["href"],
        "/api/storage/volumes?name=qa*"
    );
    for j in r.body["jobs"].as_array().unwrap() {
        let job = env.wait_job(j["uuid"].as_str().unwrap()).await?;
        assert_eq!(job["state"], "success");
    }
    let r = env
        .get("/api/storage/volumes?comment=bulk&order_by=name")
        .await?;
    let names: Vec<&str> = r.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["qa1", "qa2"]);
    let r = env
        .call(
            Method::DELETE,
            "/api/storage/volumes?name=qa*&return_timeout=10",
            None,
        )
        .await?;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["num_records"], 2);
    let r = env.get("/api/storage/volumes?name=q*").await?;
    assert_eq!(r.body["num_records"], 1);
    // Without a query: refused.
    let r = env
        .call(Method::DELETE, "/api/storage/volumes", None)
        .await?;
    assert_eq!(r.status, 405);
    Ok(())
}

#[tokio::test]
async fn finished_jobs_expire() -> anyhow::Result<()> {
    let env = common::start_with(
        SimServer::builder()
            .job_duration(Duration::ZERO, Duration::ZERO)
            .job_ttl(Duration::from_millis(200)),
    )
    .await?;
    let (r, job) = env
        .run_job(Method::POST, "/api/storage/volumes", Some(vol("exp")))
        .await?;
    assert_eq!(job["state"], "success");
    let uuid = r.body["job"]["uuid"].as_str().unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let j = env.get(&format!("/api/cluster/jobs/{uuid}")).await?;
    assert_eq!(j.status, 404);
    assert_eq!(
        j.body,
        json!({"error": {"message": "entry doesn't exist", "code": "4"}})
    );
    Ok(())
}
