//! `PATCH /api/cluster/jobs/{uuid}?action=…` (9.7 swagger `job_modify`).

mod common;

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn cancel_before_the_work_runs_fails_the_job_and_changes_nothing() -> anyhow::Result<()> {
    let env = common::start_with(
        ontap_sim::SimServer::builder()
            .job_duration(Duration::from_millis(400), Duration::from_millis(400)),
    )
    .await?;
    let r = env
        .post(
            "/api/storage/volumes",
            json!({"name": "never", "svm": {"name": "svm1"}, "aggregates": [{"name": "aggr1"}]}),
        )
        .await?;
    assert_eq!(r.status, 202);
    let job = r.body["job"]["uuid"].as_str().unwrap().to_string();
    let path = format!("/api/cluster/jobs/{job}");

    let pause = env
        .call(Method::PATCH, &format!("{path}?action=pause"), None)
        .await?;
    assert_eq!(pause.status, 400);
    assert_eq!(pause.body["error"]["code"], "458783");
    let bogus = env
        .call(Method::PATCH, &format!("{path}?action=stop"), None)
        .await?;
    assert_eq!(bogus.status, 400);
    assert_eq!(bogus.body["error"]["code"], "262185");
    let none = env.call(Method::PATCH, &path, None).await?;
    assert_eq!(none.status, 400);
    assert_eq!(none.body["error"]["code"], "262177");

    let c = env
        .call(Method::PATCH, &format!("{path}?action=cancel"), None)
        .await?;
    assert_eq!(c.status, 200, "{}", c.body);
    let done = env.wait_job(&job).await?;
    assert_eq!(done["state"], "failure");
    assert_eq!(done["code"], 458784);
    assert_eq!(done["message"], "The job was cancelled.");
    let l = env.get("/api/storage/volumes?name=never").await?;
    assert_eq!(l.body["num_records"], 0);

    let again = env
        .call(Method::PATCH, &format!("{path}?action=cancel"), None)
        .await?;
    assert_eq!(again.status, 400);
    assert_eq!(again.body["error"]["code"], "458762");
    assert_eq!(
        again.body["error"]["message"],
        "Job is already in a terminal state."
    );
    let missing = env
        .call(
            Method::PATCH,
            "/api/cluster/jobs/00000000-0000-0000-0000-000000000000?action=cancel",
            None,
        )
        .await?;
    assert_eq!(missing.status, 404);
    Ok(())
}
