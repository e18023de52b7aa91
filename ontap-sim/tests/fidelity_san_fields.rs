//! LUN bulk create (`{"records":[…]}` forces a job) and what the simulator does with
//! field names it does not know.

mod common;

use std::time::Duration;

use serde_json::json;

#[tokio::test]
async fn lun_records_post_is_one_job_and_a_plain_post_stays_synchronous() -> anyhow::Result<()> {
    let env = common::start().await?;
    env.create_volume(
        json!({"name": "lv", "svm": {"name": "svm1"}, "aggregates": [{"name": "aggr1"}]}),
    )
    .await?;
    let plain = env
        .post(
            "/api/storage/luns",
            json!({"svm": {"name": "svm1"}, "name": "/vol/lv/plain", "os_type": "linux",
                   "space": {"size": 4096}}),
        )
        .await?;
    assert_eq!(plain.status, 201);
    assert!(plain.body.get("job").is_none());

    let r = env
        .post(
            "/api/storage/luns?return_records=true",
            json!({"records": [
                {"svm": {"name": "svm1"}, "name": "/vol/lv/b1", "os_type": "linux", "space": {"size": 4096}},
                {"svm": {"name": "svm1"}, "name": "/vol/lv/b2", "os_type": "vmware", "space": {"size": 8192}},
            ]}),
        )
        .await?;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.header("location"), None);
    assert_eq!(r.body["num_records"], 2);
    assert_eq!(r.body["records"][1]["name"], "/vol/lv/b2");
    let job = env
        .wait_job(r.body["job"]["uuid"].as_str().unwrap())
        .await?;
    assert_eq!(job["state"], "success");
    assert_eq!(
        job["description"],
        "POST /api/storage/luns?return_records=true"
    );
    let l = env
        .get("/api/storage/luns?name=/vol/lv/b*&fields=os_type,space.size&order_by=name")
        .await?;
    assert_eq!(l.body["num_records"], 2);
    assert_eq!(l.body["records"][0]["os_type"], "linux");
    assert_eq!(l.body["records"][1]["os_type"], "vmware");
    assert_eq!(l.body["records"][1]["space"]["size"], 8192);

    // Validation errors answer the request; nothing is made.
    let bad = env
        .post(
            "/api/storage/luns",
            json!({"records": [
                {"svm": {"name": "svm1"}, "name": "/vol/lv/c1", "os_type": "linux", "space": {"size": 4096}},
                {"svm": {"name": "svm1"}, "name": "/vol/lv/c2", "os_type": "linux"},
            ]}),
        )
        .await?;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["error"]["code"], "262177");
    let twice = env
        .post(
            "/api/storage/luns",
            json!({"records": [
                {"svm": {"name": "svm1"}, "name": "/vol/lv/d", "os_type": "linux", "space": {"size": 4096}},
                {"svm": {"name": "svm1"}, "name": "/vol/lv/d", "os_type": "linux", "space": {"size": 4096}},
            ]}),
        )
        .await?;
    assert_eq!(twice.status, 409);
    assert_eq!(twice.body["error"]["code"], "5374242");
    let all = env.get("/api/storage/luns?order_by=name").await?;
    assert_eq!(all.body["num_records"], 3, "{}", all.body);
    assert_eq!(all.body["records"][2]["name"], "/vol/lv/plain");
    Ok(())
}

#[tokio::test]
async fn lun_records_job_rolls_back_when_a_later_lun_fails() -> anyhow::Result<()> {
    let env = common::start_with(
        ontap_sim::SimServer::builder()
            .job_duration(Duration::from_millis(300), Duration::from_millis(300)),
    )
    .await?;
    env.create_volume(
        json!({"name": "rv", "svm": {"name": "svm1"}, "aggregates": [{"name": "aggr1"}],
               "size": 100 * 1024 * 1024}),
    )
    .await?;
    let before = env.find("/api/storage/volumes", "rv").await?;
    let r = env
        .post(
            "/api/storage/luns",
            json!({"records": [
                {"svm": {"name": "svm1"}, "name": "/vol/rv/first", "os_type": "linux",
                 "space": {"size": 1024 * 1024, "guarantee": {"requested": true}}},
                {"svm": {"name": "svm1"}, "name": "/vol/rv/second", "os_type": "linux", "space": {"size": 4096}},
            ]}),
        )
        .await?;
    assert_eq!(r.status, 202, "{}", r.body);
    // Someone takes the second path before the job runs.
    let other = env
        .post(
            "/api/storage/luns",
            json!({"svm": {"name": "svm1"}, "name": "/vol/rv/second", "os_type": "linux",
                   "space": {"size": 4096}}),
        )
        .await?;
    assert_eq!(other.status, 201);
    let job = env
        .wait_job(r.body["job"]["uuid"].as_str().unwrap())
        .await?;
    assert_eq!(job["state"], "failure", "{job}");
    assert_eq!(job["code"], 5374242);
    let first = env.get("/api/storage/luns?name=/vol/rv/first").await?;
    assert_eq!(first.body["num_records"], 0);
    let after = env.find("/api/storage/volumes", "rv").await?;
    assert_eq!(after["space"]["used"], before["space"]["used"]);
    assert_eq!(after["space"]["available"], before["space"]["available"]);
    Ok(())
}

/// Real ONTAP refuses unknown names in `fields` with 400 / 262197
/// (`The value "fru" is invalid for field "fields" (<field,...>)`, centreon-plugins
/// #5432). The simulator has no per-resource schema to tell an unknown field from a
/// known one that is unset, so it stays lenient: unknown fields are left out, and a
/// filter on one matches nothing. This test pins that choice.
#[tokio::test]
async fn unknown_field_names_are_lenient() -> anyhow::Result<()> {
    let env = common::start().await?;
    env.create_volume(
        json!({"name": "fv", "svm": {"name": "svm1"}, "aggregates": [{"name": "aggr1"}]}),
    )
    .await?;
    let f = env
        .get("/api/storage/volumes?name=fv&fields=no_such_field")
        .await?;
    assert_eq!(f.status, 200);
    assert_eq!(f.body["num_records"], 1);
    assert!(f.body["records"][0].get("no_such_field").is_none());
    assert_eq!(f.body["records"][0]["name"], "fv");
    let q = env
        .get("/api/storage/volumes?name=fv&no_such_field=1")
        .await?;
    assert_eq!(q.status, 200);
    assert_eq!(q.body["num_records"], 0);
    Ok(())
}
