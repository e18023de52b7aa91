//! Snapshots (expiry, locking, clone dependencies) and file clones.

mod common;

use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn snapshot_create_list_patch_delete() -> anyhow::Result<()> {
    let env = common::start().await?;
    let vu = env
        .create_volume(
            json!({"name": "sv", "svm": {"name": "svm1"}, "aggregates": [{"name": "aggr1"}]}),
        )
        .await?;
    let r = env
        .call(
            Method::POST,
            &format!("/api/storage/volumes/{vu}/snapshots?return_records=true"),
            Some(json!({"name": "snap1", "comment": "Store this copy."})),
        )
        .await?;
    assert_eq!(r.status, 202);
    assert_eq!(
        r.header("location"),
        Some(format!("/api/storage/volumes/{vu}/snapshots/?name=snap1").as_str())
    );
    assert_eq!(r.body["num_records"], 1);
    assert_eq!(r.body["records"][0]["name"], "snap1");
    let job = env
        .wait_job(r.body["job"]["uuid"].as_str().unwrap())
        .await?;
    assert_eq!(job["state"], "success");
    assert_eq!(
        job["description"],
        format!("POST /api/storage/volumes/{vu}/snapshots/?name=snap1")
    );
    let l = env
        .get(&format!(
            "/api/storage/volumes/{vu}/snapshots/?name=snap1&fields=comment,volume.name,svm.name"
        ))
        .await?;
    assert_eq!(l.body["num_records"], 1);
    let s = &l.body["records"][0];
    assert_eq!(s["comment"], "Store this copy.");
    assert_eq!(s["volume"]["name"], "sv");
    let su = s["uuid"].as_str().unwrap().to_string();
    let p = env
        .patch(
            &format!("/api/storage/volumes/{vu}/snapshots/{su}"),
            json!({"comment": "changed"}),
        )
        .await?;
    assert_eq!(p.status, 200);
    let g = env
        .get(&format!("/api/storage/volumes/{vu}/snapshots/{su}"))
        .await?;
    assert_eq!(g.body["comment"], "changed");
    let dup = env
        .post(
            &format!("/api/storage/volumes/{vu}/snapshots"),
            json!({"name": "snap1"}),
        )
        .await?;
    assert_eq!(dup.status, 409);
    let (_, job) = env
        .run_job(
            Method::DELETE,
            &format!("/api/storage/volumes/{vu}/snapshots/{su}"),
            None,
        )
        .await?;
    assert_eq!(job["state"], "success");
    let g = env
        .get(&format!("/api/storage/volumes/{vu}/snapshots/{su}"))
        .await?;
    assert_eq!(g.status, 404);
    Ok(())
}

#[tokio::test]
async fn locked_and_clone_backing_snapshots_cannot_be_deleted() -> anyhow::Result<()> {
    let env = common::start().await?;
    let plain = env
        .create_volume(
            json!({"name": "plain", "svm": {"name": "svm1"}, "aggregates": [{"name": "aggr1"}]}),
        )
        .await?;
    let r = env
        .post(
            &format!("/api/storage/volumes/{plain}/snapshots"),
            json!({"name": "s", "snaplock": {"expiry_time": "2099-01-01T00:00:00+00:00"}}),
        )
        .await?;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["target"], "snaplock.expiry_time");

    let vu = env
        .create_volume(
            json!({"name": "locked", "svm": {"name": "svm1"}, "aggregates": [{"name": "aggr1"}],
                              "snapshot_locking_enabled": true}),
        )
        .await?;
    let (_, job) = env
        .run_job(
            Method::POST,
            &format!("/api/storage/volumes/{vu}/snapshots"),
            Some(json!({"name": "keep", "snaplock": {"expiry_time": "2099-01-01T00:00:00+00:00"}})),
        )
        .await?;
    assert_eq!(job["state"], "success");
    let s = env
        .find(&format!("/api/storage/volumes/{vu}/snapshots"), "keep")
        .await?;
    assert_eq!(s["snaplock"]["expiry_time"], "2099-01-01T00:00:00+00:00");
    assert_eq!(s["snaplock"]["expired"], false);
    let su = s["uuid"].as_str().unwrap();
    let (r, job) = env
        .run_job(
            Method::DELETE,
            &format!("/api/storage/volumes/{vu}/snapshots/{su}"),
            None,
        )
        .await?;
    assert_eq!(r.status, 202);
    assert_eq!(job["state"], "failure");
    assert_eq!(job["code"], 1638555);
    assert_eq!(
        job["message"],
        "Snapshot copy \"keep\" of volume \"locked\" on Vserver \"svm1\" has not expired or is locked. Use the \"snapshot show -fields owners, expiry-time\" command to view the expiry and lock status of the Snapshot copy."
    );
    // Shortening the lock is refused.
    let p = env
        .patch(
            &format!("/api/storage/volumes/{vu}/snapshots/{su}"),
            json!({"snaplock": {"expiry_time": "2098-01-01T00:00:00+00:00"}}),
        )
        .await?;
    assert_eq!(p.status, 400);
    // A plain expiry_time in the future also blocks deletion.
    let (_, _) = env
        .run_job(
            Method::POST,
            &format!("/api/storage/volumes/{plain}/snapshots"),
            Some(json!({"name": "exp", "expiry_time": "2099-01-01T00:00:00Z"})),
        )
        .await?;
    let s = env
        .find(&format!("/api/storage/volumes/{plain}/snapshots"), "exp")
        .await?;
    let (_, job) = env
        .run_job(
            Method::DELETE,
            &format!(
                "/api/storage/volumes/{plain}/snapshots/{}",
                s["uuid"].as_str().unwrap()
            ),
            None,
        )
        .await?;
    assert_eq!(job["code"], 1638555);

    // A snapshot backing a FlexClone is busy.
    let (_, _) = env
        .run_job(
            Method::POST,
            &format!("/api/storage/volumes/{plain}/snapshots"),
            Some(json!({"name": "base"})),
        )
        .await?;
    let base = env
        .find(&format!("/api/storage/volumes/{plain}/snapshots"), "base")
        .await?;
    env.create_volume(json!({"name": "cl", "svm": {"name": "svm1"},
                              "clone": {"parent_volume": {"name": "plain"}, "parent_snapshot": {"name": "base"}}}))
        .await?;
    let c = env.find("/api/storage/volumes", "cl").await?;
    assert_eq!(c["clone"]["parent_snapshot"]["name"], "base");
    let (_, job) = env
        .run_job(
            Method::DELETE,
            &format!(
                "/api/storage/volumes/{plain}/snapshots/{}",
                base["uuid"].as_str().unwrap()
            ),
            None,
        )
        .await?;
    assert_eq!(job["state"], "failure");
    assert_eq!(job["code"], 1638600);
    Ok(())
}

#[tokio::test]
async fn file_clone_records_files() -> anyhow::Result<()> {
    let env = common::start().await?;
    let vu = env
        .create_volume(
            json!({"name": "fc", "svm": {"name": "svm1"}, "aggregates": [{"name": "aggr1"}]}),
        )
        .await?;
    let r = env
        .post("/api/storage/file/clone",
              json!({"volume": {"name": "fc"}, "source_path": "base.qcow2", "destination_path": "vm1.qcow2"}))
        .await?;
    assert_eq!(r.status, 202);
    let job = env
        .wait_job(r.body["job"]["uuid"].as_str().unwrap())
        .await?;
    assert_eq!(job["state"], "success");
    assert_eq!(job["description"], "POST /api/storage/file/clone");
    let files = env.sim.state()["files"][&vu].clone();
    assert_eq!(files, json!(["base.qcow2", "vm1.qcow2"]));
    // Same destination again without overwrite: the job fails.
    let (_, job) = env
        .run_job(Method::POST, "/api/storage/file/clone",
                 Some(json!({"volume": {"uuid": vu}, "source_path": "base.qcow2", "destination_path": "vm1.qcow2"})))
        .await?;
    assert_eq!(job["state"], "failure");
    let (_, job) = env
        .run_job(
            Method::POST,
            "/api/storage/file/clone",
            Some(json!({"volume": {"uuid": vu}, "source_path": "base.qcow2",
                             "destination_path": "vm1.qcow2", "overwrite_destination": true})),
        )
        .await?;
    assert_eq!(job["state"], "success");
    let r = env
        .post(
            "/api/storage/file/clone",
            json!({"volume": {"name": "nope"}, "source_path": "a", "destination_path": "b"}),
        )
        .await?;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["error"]["code"], "917927");
    Ok(())
}

#[tokio::test]
async fn file_clone_reads_its_source_from_a_named_snapshot() -> anyhow::Result<()> {
    let env = common::start().await?;
    let vu = env
        .create_volume(
            json!({"name": "fr", "svm": {"name": "svm1"}, "aggregates": [{"name": "aggr1"}]}),
        )
        .await?;
    let (_, job) = env
        .run_job(
            Method::POST,
            &format!("/api/storage/volumes/{vu}/snapshots"),
            Some(json!({"name": "daily"})),
        )
        .await?;
    assert_eq!(job["state"], "success");
    // `./.snapshot/<name>/<path>` as in the 9.7 swagger's example: the destination is a
    // file of the live volume; the snapshot path itself is not recorded as a live file.
    let (_, job) = env
        .run_job(
            Method::POST,
            "/api/storage/file/clone",
            Some(
                json!({"volume": {"name": "fr"}, "source_path": "./.snapshot/daily/vm1.raw",
                        "destination_path": "vm1-restored.raw"}),
            ),
        )
        .await?;
    assert_eq!(job["state"], "success", "{job}");
    assert_eq!(env.sim.state()["files"][&vu], json!(["vm1-restored.raw"]));
    // A snapshot the volume does not have: not found, before any job starts.
    let r = env
        .post(
            "/api/storage/file/clone",
            json!({"volume": {"name": "fr"}, "source_path": ".snapshot/weekly/vm1.raw",
                   "destination_path": "x.raw"}),
        )
        .await?;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(
        r.body["error"]["message"],
        "Snapshot copy \"weekly\" does not exist in volume \"fr\"."
    );
    // The snapshot directory itself is not a file to clone.
    let r = env
        .post(
            "/api/storage/file/clone",
            json!({"volume": {"name": "fr"}, "source_path": ".snapshot/daily",
                   "destination_path": "x.raw"}),
        )
        .await?;
    assert_eq!(r.status, 400, "{}", r.body);
    Ok(())
}

#[tokio::test]
async fn volume_files_list_create_delete() -> anyhow::Result<()> {
    let env = common::start().await?;
    let vu = env
        .create_volume(
            json!({"name": "fs", "svm": {"name": "svm1"}, "aggregates": [{"name": "aggr1"}]}),
        )
        .await?;
    let r = env
        .post(
            &format!("/api/storage/volumes/{vu}/files/images"),
            json!({"type": "directory"}),
        )
        .await?;
    assert_eq!(r.status, 201);
    let r = env
        .post(
            &format!("/api/storage/volumes/{vu}/files/images%2Fbase.qcow2"),
            json!({}),
        )
        .await?;
    assert_eq!(r.status, 201);
    env.post(
        "/__sim/files",
        json!({"volume": {"name": "fs"}, "path": "top.txt"}),
    )
    .await?;
    let root = env
        .get(&format!("/api/storage/volumes/{vu}/files/%2E?fields=type"))
        .await?;
    assert_eq!(root.status, 200, "{}", root.body);
    let got: Vec<(String, String)> = root.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["path"].as_str().unwrap().to_string(),
                r["type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("images".to_string(), "directory".to_string()),
            ("top.txt".to_string(), "file".to_string())
        ]
    );
    let dir = env
        .get(&format!("/api/storage/volumes/{vu}/files/images"))
        .await?;
    assert_eq!(dir.body["num_records"], 1);
    assert_eq!(dir.body["records"][0]["name"], "base.qcow2");
    let (_, job) = env
        .run_job(Method::POST, "/api/storage/file/clone",
                 Some(json!({"volume": {"uuid": vu}, "source_path": "images/base.qcow2", "destination_path": "images/vm1.qcow2"})))
        .await?;
    assert_eq!(job["state"], "success");
    let dir = env
        .get(&format!("/api/storage/volumes/{vu}/files/images"))
        .await?;
    assert_eq!(dir.body["num_records"], 2);
    let d = env
        .delete(&format!("/api/storage/volumes/{vu}/files/images"))
        .await?;
    assert_eq!(d.status, 404);
    let d = env
        .delete(&format!(
            "/api/storage/volumes/{vu}/files/images?recurse=true"
        ))
        .await?;
    assert_eq!(d.status, 200);
    let gone = env
        .get(&format!("/api/storage/volumes/{vu}/files/images"))
        .await?;
    assert_eq!(gone.status, 404);
    Ok(())
}

#[tokio::test]
async fn snaplock_expiry_is_judged_when_read() -> anyhow::Result<()> {
    let env = common::start().await?;
    let vu = env
        .create_volume(
            json!({"name": "lk", "svm": {"name": "svm1"}, "aggregates": [{"name": "aggr1"}],
                   "snapshot_locking_enabled": true}),
        )
        .await?;
    let expiry =
        (time::OffsetDateTime::now_utc() + time::Duration::seconds(3)).replace_nanosecond(0)?;
    let soon = expiry.format(&time::format_description::well_known::Rfc3339)?;
    let (_, job) = env
        .run_job(
            Method::POST,
            &format!("/api/storage/volumes/{vu}/snapshots"),
            Some(json!({"name": "brief", "snaplock": {"expiry_time": soon}})),
        )
        .await?;
    assert_eq!(job["state"], "success");
    let path = format!("/api/storage/volumes/{vu}/snapshots");
    let s = env.find(&path, "brief").await?;
    let su = s["uuid"].as_str().unwrap().to_string();
    // What the read must say depends on when it happened (a loaded machine can be slow to
    // get here): before the expiry, not expired; after it, expired.
    let before = time::OffsetDateTime::now_utc();
    let one = env.get(&format!("{path}/{su}?fields=snaplock")).await?;
    let after = time::OffsetDateTime::now_utc();
    if after < expiry {
        assert_eq!(one.body["snaplock"]["expired"], false);
    } else if before > expiry {
        assert_eq!(one.body["snaplock"]["expired"], true);
    }
    let wait = expiry - time::OffsetDateTime::now_utc() + time::Duration::milliseconds(500);
    if wait.is_positive() {
        tokio::time::sleep(wait.unsigned_abs()).await;
    }
    let one = env.get(&format!("{path}/{su}?fields=snaplock")).await?;
    assert_eq!(one.body["snaplock"]["expired"], true);
    assert_eq!(one.body["snaplock"]["time_until_expiry"], "PT0S");
    // Filters see the state as of the read too.
    let listed = env.get(&format!("{path}?snaplock.expired=true")).await?;
    assert_eq!(listed.body["num_records"], 1);
    let (_, job) = env
        .run_job(Method::DELETE, &format!("{path}/{su}"), None)
        .await?;
    assert_eq!(job["state"], "success");
    Ok(())
}
