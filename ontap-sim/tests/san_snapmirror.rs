//! SnapMirror relationships: creation, the state machine, transfers and failover.

mod common;

use reqwest::Method;
use serde_json::{json, Value};

const REL: &str = "/api/snapmirror/relationships";

async fn setup() -> anyhow::Result<common::Env> {
    let env = common::start().await?;
    env.create_volume(json!({"name": "src", "svm": {"name": "svm1"},
                             "aggregates": [{"name": "aggr1"}], "size": "1GB"}))
        .await?;
    env.create_volume(json!({"name": "dst", "svm": {"name": "svm1"}, "type": "dp",
                             "aggregates": [{"name": "aggr1"}], "size": "1GB"}))
        .await?;
    env.create_volume(json!({"name": "plain", "svm": {"name": "svm1"},
                             "aggregates": [{"name": "aggr1"}], "size": "1GB"}))
        .await?;
    Ok(env)
}

async fn rel(env: &common::Env, uuid: &str) -> anyhow::Result<Value> {
    let r = env.get(&format!("{REL}/{uuid}")).await?;
    anyhow::ensure!(
        r.status == 200,
        "relationship GET answered {}: {}",
        r.status,
        r.body
    );
    Ok(r.body)
}

async fn set_state(env: &common::Env, uuid: &str, state: &str) -> anyhow::Result<Value> {
    let (_, job) = env
        .run_job(
            Method::PATCH,
            &format!("{REL}/{uuid}"),
            Some(json!({"state": state})),
        )
        .await?;
    Ok(job)
}

async fn volume_type(env: &common::Env, name: &str) -> anyhow::Result<String> {
    let v = env.find("/api/storage/volumes", name).await?;
    Ok(v["type"].as_str().unwrap_or_default().to_string())
}

async fn mirror_snapshots(env: &common::Env, volume: &str) -> anyhow::Result<Vec<String>> {
    let v = env.find("/api/storage/volumes", volume).await?;
    let uuid = v["uuid"].as_str().unwrap_or_default();
    let r = env
        .get(&format!(
            "/api/storage/volumes/{uuid}/snapshots?name=snapmirror.*"
        ))
        .await?;
    Ok(r.body["records"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| s["name"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default())
}

#[tokio::test]
async fn relationship_state_machine() -> anyhow::Result<()> {
    let env = setup().await?;
    let r = env
        .post(
            REL,
            json!({"source": {"path": "svm1:src"}, "destination": {"path": "svm1:dst"}}),
        )
        .await?;
    assert_eq!(r.status, 202, "{}", r.body);
    let loc = r.header("location").unwrap().to_string();
    let job = env
        .wait_job(r.body["job"]["uuid"].as_str().unwrap())
        .await?;
    assert_eq!(job["state"], "success", "{job}");
    let uuid = loc
        .trim_start_matches("/api/snapmirror/relationships/")
        .to_string();
    let got = rel(&env, &uuid).await?;
    assert_eq!(got["state"], "uninitialized");
    assert_eq!(got["source"]["path"], "svm1:src");
    assert_eq!(got["destination"]["path"], "svm1:dst");
    assert_eq!(got["policy"]["name"], "MirrorAllSnapshots");

    // Invalid transitions are refused synchronously.
    for bad in ["broken_off", "paused"] {
        let p = env
            .patch(&format!("{REL}/{uuid}"), json!({"state": bad}))
            .await?;
        assert_eq!(
            (p.status, p.body["error"]["code"].as_str()),
            (400, Some("13303810")),
            "{bad}"
        );
    }
    let p = env
        .patch(&format!("{REL}/{uuid}"), json!({"state": "in_sync"}))
        .await?;
    assert_eq!(p.body["error"]["code"], "262185");

    // Initialize.
    assert_eq!(
        set_state(&env, &uuid, "snapmirrored").await?["state"],
        "success"
    );
    let got = rel(&env, &uuid).await?;
    assert_eq!(got["state"], "snapmirrored");
    assert_eq!(got["last_transfer_type"], "initialize");
    assert_eq!(got["healthy"], true);
    assert!(
        got["lag_time"]
            .as_str()
            .is_some_and(|l| l.starts_with("PT")),
        "{got}"
    );
    let first = mirror_snapshots(&env, "src").await?;
    assert_eq!(first.len(), 1);
    assert!(
        first[0].starts_with(&format!("snapmirror.{uuid}.")),
        "{first:?}"
    );
    assert_eq!(mirror_snapshots(&env, "dst").await?, first);

    // Update: a new snapshot replaces the old one.
    let t = env
        .post(&format!("{REL}/{uuid}/transfers"), json!({}))
        .await?;
    assert_eq!(t.status, 201, "{}", t.body);
    let got = rel(&env, &uuid).await?;
    assert_eq!(got["last_transfer_type"], "update");
    let second = mirror_snapshots(&env, "src").await?;
    assert_eq!(second.len(), 1);
    assert_ne!(second, first);
    let transfers = env
        .get(&format!("{REL}/{uuid}/transfers?fields=state,snapshot"))
        .await?;
    assert_eq!(transfers.body["num_records"], 2);
    assert_eq!(transfers.body["records"][0]["state"], "success");

    // Pause, then no transfers; break from paused makes the destination writable.
    assert_eq!(set_state(&env, &uuid, "paused").await?["state"], "success");
    assert_eq!(rel(&env, &uuid).await?["state"], "paused");
    let t = env
        .post(&format!("{REL}/{uuid}/transfers"), json!({}))
        .await?;
    assert_eq!(
        (t.status, t.body["error"]["code"].as_str()),
        (400, Some("13303810"))
    );
    assert_eq!(
        set_state(&env, &uuid, "snapmirrored").await?["state"],
        "success"
    );
    assert_eq!(rel(&env, &uuid).await?["last_transfer_type"], "update");
    assert_eq!(volume_type(&env, "dst").await?, "dp");
    assert_eq!(
        set_state(&env, &uuid, "broken_off").await?["state"],
        "success"
    );
    assert_eq!(rel(&env, &uuid).await?["state"], "broken_off");
    assert_eq!(volume_type(&env, "dst").await?, "rw");
    let p = env
        .patch(&format!("{REL}/{uuid}"), json!({"state": "paused"}))
        .await?;
    assert_eq!(p.body["error"]["code"], "13303810");

    // Resync: mirror again.
    assert_eq!(
        set_state(&env, &uuid, "snapmirrored").await?["state"],
        "success"
    );
    let got = rel(&env, &uuid).await?;
    assert_eq!(got["state"], "snapmirrored");
    assert_eq!(got["last_transfer_type"], "resync");
    assert_eq!(volume_type(&env, "dst").await?, "dp");

    // Delete: the destination volume stays.
    let (_, job) = env
        .run_job(Method::DELETE, &format!("{REL}/{uuid}"), None)
        .await?;
    assert_eq!(job["state"], "success");
    assert_eq!(env.get(&format!("{REL}/{uuid}")).await?.status, 404);
    assert_eq!(volume_type(&env, "dst").await?, "dp");
    Ok(())
}

#[tokio::test]
async fn create_destination_and_refusals() -> anyhow::Result<()> {
    let env = setup().await?;
    let (r, job) = env
        .run_job(
            Method::POST,
            REL,
            Some(
                json!({"source": {"path": "svm1:src"}, "destination": {"path": "svm1:src_mirror"},
                        "create_destination": {"enabled": true}, "state": "snapmirrored",
                        "policy": {"name": "MirrorAndVault"}}),
            ),
        )
        .await?;
    assert_eq!(job["state"], "success", "{job}");
    let uuid = r
        .header("location")
        .unwrap()
        .trim_start_matches("/api/snapmirror/relationships/")
        .to_string();
    let got = rel(&env, &uuid).await?;
    assert_eq!(got["state"], "snapmirrored");
    assert_eq!(got["policy"]["name"], "MirrorAndVault");
    assert_eq!(got["last_transfer_type"], "initialize");
    let mirror = env.find("/api/storage/volumes", "src_mirror").await?;
    assert_eq!(mirror["type"], "dp");
    assert_eq!(mirror["size"], 1u64 << 30);
    let listed = env
        .get(&format!("{REL}?destination.path=svm1:src_mirror"))
        .await?;
    assert_eq!(listed.body["num_records"], 1);

    let post = |body: Value| env.post(REL, body);
    let code = |r: &common::Resp| {
        (
            r.status,
            r.body["error"]["code"].as_str().unwrap_or("").to_string(),
        )
    };
    let r = post(json!({"source": {"path": "svm1:src"}, "destination": {"path": "svm1:plain"}}))
        .await?;
    assert_eq!(code(&r), (400, "13303841".into()));
    let r =
        post(json!({"source": {"path": "svm1:src"}, "destination": {"path": "svm1dst"}})).await?;
    assert_eq!(code(&r), (400, "13303852".into()));
    let r = post(
        json!({"source": {"path": "svm1:src"}, "destination": {"path": "svm1:dst"},
                        "state": "snapmirrored"}),
    )
    .await?;
    assert_eq!(code(&r), (400, "13303873".into()));
    let r =
        post(json!({"source": {"path": "svm1:nope"}, "destination": {"path": "svm1:dst"}})).await?;
    assert_eq!(code(&r), (404, "917927".into()));
    let r =
        post(json!({"source": {"path": "svm1:src"}, "destination": {"path": "svm1:nope"}})).await?;
    assert_eq!(code(&r), (404, "917927".into()));
    let r =
        post(json!({"source": {"path": "svm1:src"}, "destination": {"path": "svm1:src_mirror"}}))
            .await?;
    assert_eq!(code(&r), (409, "1".into()));
    let r = post(
        json!({"source": {"path": "svm1:src"}, "destination": {"path": "svm1:dst"},
                        "create_destination": {"enabled": true}}),
    )
    .await?;
    assert_eq!(code(&r), (409, "13303868".into()));
    Ok(())
}

#[tokio::test]
async fn busy_while_transferring() -> anyhow::Result<()> {
    let slow = std::time::Duration::from_millis(1000);
    let env = common::start_with(ontap_sim::SimServer::builder().job_duration(slow, slow)).await?;
    env.create_volume(json!({"name": "s", "svm": {"name": "svm1"},
                             "aggregates": [{"name": "aggr1"}], "size": "1GB"}))
        .await?;
    env.create_volume(json!({"name": "d", "svm": {"name": "svm1"}, "type": "dp",
                             "aggregates": [{"name": "aggr1"}], "size": "1GB"}))
        .await?;
    let (r, _) = env
        .run_job(
            Method::POST,
            REL,
            Some(json!({"source": {"path": "svm1:s"}, "destination": {"path": "svm1:d"}})),
        )
        .await?;
    let uuid = r
        .header("location")
        .unwrap()
        .trim_start_matches("/api/snapmirror/relationships/")
        .to_string();
    let init = env
        .patch(&format!("{REL}/{uuid}"), json!({"state": "snapmirrored"}))
        .await?;
    assert_eq!(init.status, 202);
    assert_eq!(rel(&env, &uuid).await?["transfer"]["state"], "transferring");
    let brk = env
        .patch(&format!("{REL}/{uuid}"), json!({"state": "broken_off"}))
        .await?;
    assert_eq!(
        (brk.status, brk.body["error"]["code"].as_str()),
        (409, Some("13303808"))
    );
    let upd = env
        .post(&format!("{REL}/{uuid}/transfers"), json!({}))
        .await?;
    assert_eq!(
        (upd.status, upd.body["error"]["code"].as_str()),
        (409, Some("13303812"))
    );
    let del = env.delete(&format!("{REL}/{uuid}")).await?;
    assert_eq!(del.body["error"]["code"], "13303812");
    let job = env
        .wait_job(init.body["job"]["uuid"].as_str().unwrap())
        .await?;
    assert_eq!(job["state"], "success");
    let got = rel(&env, &uuid).await?;
    assert_eq!(got["state"], "snapmirrored");
    assert_eq!(got["transfer"]["state"], "success");
    assert_eq!(
        env.post(&format!("{REL}/{uuid}/transfers"), json!({}))
            .await?
            .status,
        201
    );
    Ok(())
}
