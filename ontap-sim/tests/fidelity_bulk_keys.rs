//! Fidelity gaps found by netapp-ontap: multi-record POST (`{"records":[…]}`) of
//! snapshots with `*` as the volume key, and `+` meaning a space in path keys.

mod common;

use std::time::Duration;

use serde_json::{json, Value};

async fn two_volumes(env: &common::Env) -> anyhow::Result<(String, String)> {
    let a = env
        .create_volume(
            json!({"name": "bulk_a", "svm": {"name": "svm1"}, "aggregates": [{"name": "aggr1"}]}),
        )
        .await?;
    let b = env
        .create_volume(
            json!({"name": "bulk_b", "svm": {"name": "svm1"}, "aggregates": [{"name": "aggr1"}]}),
        )
        .await?;
    Ok((a, b))
}

fn volume_uuids(list: &Value) -> Vec<String> {
    let mut v: Vec<String> = list["records"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| r["volume"]["uuid"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test]
async fn snapshot_records_post_across_volumes_is_one_job() -> anyhow::Result<()> {
    let env = common::start().await?;
    let (a, b) = two_volumes(&env).await?;
    let r = env
        .post(
            "/api/storage/volumes/*/snapshots",
            json!({"records": [
                {"name": "daily", "svm": {"name": "svm1"}, "volume": {"uuid": a}},
                {"name": "daily", "svm": {"name": "svm1"}, "volume": {"uuid": b}},
            ]}),
        )
        .await?;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.header("location"), None);
    let job_uuid = r.body["job"]["uuid"].as_str().unwrap().to_string();
    assert_eq!(
        r.body["job"]["_links"],
        json!({"self": {"href": format!("/api/cluster/jobs/{job_uuid}")}})
    );
    assert_eq!(r.body.as_object().unwrap().len(), 1, "{}", r.body);
    let job = env.wait_job(&job_uuid).await?;
    assert_eq!(job["state"], "success");
    assert_eq!(job["description"], "POST /api/storage/volumes/*/snapshots");

    let l = env
        .get("/api/storage/volumes/*/snapshots?name=daily&fields=volume.uuid")
        .await?;
    assert_eq!(l.status, 200);
    assert_eq!(l.body["num_records"], 2);
    let mut want = vec![a.clone(), b.clone()];
    want.sort();
    assert_eq!(volume_uuids(&l.body), want);

    // The concrete volume still sees only its own.
    let one = env
        .get(&format!("/api/storage/volumes/{a}/snapshots?name=daily"))
        .await?;
    assert_eq!(one.body["num_records"], 1);

    // A query DELETE across volumes reaches both.
    let d = env
        .delete("/api/storage/volumes/*/snapshots?name=daily")
        .await?;
    assert_eq!(d.status, 202, "{}", d.body);
    assert_eq!(d.body["num_records"], 2);
    for j in d.body["jobs"].as_array().unwrap() {
        let done = env.wait_job(j["uuid"].as_str().unwrap()).await?;
        assert_eq!(done["state"], "success");
    }
    let after = env
        .get("/api/storage/volumes/*/snapshots?name=daily")
        .await?;
    assert_eq!(after.body["num_records"], 0);
    Ok(())
}

#[tokio::test]
async fn snapshot_records_post_is_refused_whole_when_one_record_is_bad() -> anyhow::Result<()> {
    let env = common::start().await?;
    let (a, _) = two_volumes(&env).await?;
    let r = env
        .post(
            "/api/storage/volumes/*/snapshots",
            json!({"records": [
                {"name": "s", "volume": {"uuid": a}},
                {"name": "s", "volume": {"uuid": "00000000-0000-0000-0000-000000000000"}},
            ]}),
        )
        .await?;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["error"]["code"], "917927");
    let twice = env
        .post(
            "/api/storage/volumes/*/snapshots",
            json!({"records": [
                {"name": "s", "volume": {"uuid": a}},
                {"name": "s", "volume": {"name": "bulk_a"}, "svm": {"name": "svm1"}},
            ]}),
        )
        .await?;
    assert_eq!(twice.status, 409, "{}", twice.body);
    let extra = env
        .post(
            "/api/storage/volumes/*/snapshots",
            json!({"records": [{"name": "s", "volume": {"uuid": a}}], "comment": "x"}),
        )
        .await?;
    assert_eq!(extra.status, 400);
    assert_eq!(extra.body["error"]["code"], "262179");
    assert_eq!(extra.body["error"]["target"], "comment");
    let empty = env
        .post("/api/storage/volumes/*/snapshots", json!({"records": []}))
        .await?;
    assert_eq!(empty.status, 400);
    assert_eq!(empty.body["error"]["code"], "262185");
    let l = env.get("/api/storage/volumes/*/snapshots?name=s").await?;
    assert_eq!(l.body["num_records"], 0);
    Ok(())
}

#[tokio::test]
async fn snapshot_records_job_fails_and_rolls_back_when_a_create_fails() -> anyhow::Result<()> {
    // Every job takes 300 ms, so the single create started first commits first.
    let env = common::start_with(
        ontap_sim::SimServer::builder()
            .job_duration(Duration::from_millis(300), Duration::from_millis(300)),
    )
    .await?;
    let (a, b) = two_volumes(&env).await?;
    let single = env
        .post(
            &format!("/api/storage/volumes/{b}/snapshots"),
            json!({"name": "late"}),
        )
        .await?;
    assert_eq!(single.status, 202);
    let r = env
        .post(
            "/api/storage/volumes/*/snapshots",
            json!({"records": [
                {"name": "late", "volume": {"uuid": a}},
                {"name": "late", "volume": {"uuid": b}},
            ]}),
        )
        .await?;
    assert_eq!(r.status, 202, "{}", r.body);
    let first = env
        .wait_job(single.body["job"]["uuid"].as_str().unwrap())
        .await?;
    assert_eq!(first["state"], "success");
    let job = env
        .wait_job(r.body["job"]["uuid"].as_str().unwrap())
        .await?;
    assert_eq!(job["state"], "failure", "{job}");
    assert_eq!(job["code"], 1);
    assert_eq!(job["message"], "Snapshot copy already exists.");
    let on_a = env
        .get(&format!("/api/storage/volumes/{a}/snapshots?name=late"))
        .await?;
    assert_eq!(on_a.body["num_records"], 0, "rolled back: {}", on_a.body);
    let all = env
        .get("/api/storage/volumes/*/snapshots?name=late")
        .await?;
    assert_eq!(all.body["num_records"], 1);
    Ok(())
}

#[tokio::test]
async fn snapshot_records_post_on_one_volume_with_return_timeout() -> anyhow::Result<()> {
    let env = common::start().await?;
    let (a, _) = two_volumes(&env).await?;
    let r = env
        .post(
            &format!("/api/storage/volumes/{a}/snapshots?return_timeout=30"),
            json!({"records": [{"name": "x1"}, {"name": "x2", "comment": "second"}]}),
        )
        .await?;
    assert_eq!(r.status, 201, "{}", r.body);
    let l = env
        .get(&format!(
            "/api/storage/volumes/{a}/snapshots?fields=comment&order_by=name"
        ))
        .await?;
    assert_eq!(l.body["num_records"], 2);
    assert_eq!(l.body["records"][0]["name"], "x1");
    assert_eq!(l.body["records"][1]["name"], "x2");
    assert_eq!(l.body["records"][1]["comment"], "second");
    Ok(())
}

#[tokio::test]
async fn plus_in_a_path_key_is_a_space_and_percent_2b_is_a_plus() -> anyhow::Result<()> {
    let env = common::start().await?;
    env.create_volume(
        json!({"name": "smb", "svm": {"name": "svm1"}, "aggregates": [{"name": "aggr1"}],
                              "nas": {"path": "/smb", "security_style": "ntfs"}}),
    )
    .await?;
    for name in ["x share", "a+b"] {
        let r = env
            .post(
                "/api/protocols/cifs/shares",
                json!({"name": name, "svm": {"name": "svm1"}, "path": "/smb"}),
            )
            .await?;
        assert_eq!(r.status, 201, "{name}: {}", r.body);
    }
    let svm_rec = env.find("/api/svm/svms", "svm1").await?;
    let svm_uuid = svm_rec["uuid"].as_str().unwrap();
    let by_name = env
        .get("/api/protocols/cifs/shares?name=x share&fields=comment,_links")
        .await?;
    // No comment was given, so none is shown (an empty one breaks netapp-ontap's schema).
    assert!(
        by_name.body["records"][0].get("comment").is_none(),
        "{}",
        by_name.body
    );
    assert_eq!(
        by_name.body["records"][0]["_links"]["self"]["href"],
        format!("/api/protocols/cifs/shares/{svm_uuid}/x%20share")
    );
    let svm = env.find("/api/svm/svms", "svm1").await?;
    let svm = svm["uuid"].as_str().unwrap();
    let g = env
        .get(&format!("/api/protocols/cifs/shares/{svm}/x+share"))
        .await?;
    assert_eq!(g.status, 200, "{}", g.body);
    assert_eq!(g.body["name"], "x share");
    let pct = env
        .get(&format!("/api/protocols/cifs/shares/{svm}/x%20share"))
        .await?;
    assert_eq!(pct.body["name"], "x share");
    let plus = env
        .get(&format!("/api/protocols/cifs/shares/{svm}/a%2Bb"))
        .await?;
    assert_eq!(plus.status, 200, "{}", plus.body);
    assert_eq!(plus.body["name"], "a+b");
    // `a+b` in the path means "a b", which does not exist.
    let space = env
        .get(&format!("/api/protocols/cifs/shares/{svm}/a+b"))
        .await?;
    assert_eq!(space.status, 404);
    let d = env
        .delete(&format!("/api/protocols/cifs/shares/{svm}/x+share"))
        .await?;
    assert_eq!(d.status, 200);
    let gone = env
        .get(&format!("/api/protocols/cifs/shares/{svm}/x+share"))
        .await?;
    assert_eq!(gone.status, 404);
    Ok(())
}
