//! Volumes, FlexClones and aggregate space accounting.

mod common;

use reqwest::Method;
use serde_json::json;

const GIB: u64 = 1024 * 1024 * 1024;
const TIB: u64 = 1024 * GIB;

#[tokio::test]
async fn create_returns_job_location_and_accounts_space() -> anyhow::Result<()> {
    let env = common::start().await?;
    let r = env
        .post(
            "/api/storage/volumes",
            json!({"name":"vol1","svm":{"name":"svm1"},"aggregates":[{"name":"aggr1"}],
                   "size":"10GB","nas":{"path":"/vol1"}}),
        )
        .await?;
    assert_eq!(r.status, 202);
    assert_eq!(
        r.header("location"),
        Some("/api/storage/volumes/?name=vol1")
    );
    assert_eq!(r.header("server"), Some("libzapid-httpd"));
    let uuid = r.body["job"]["uuid"].as_str().unwrap().to_string();
    assert_eq!(
        r.body["job"]["_links"]["self"]["href"],
        json!(format!("/api/cluster/jobs/{uuid}"))
    );
    let job = env.wait_job(&uuid).await?;
    assert_eq!(job["state"], "success");
    assert_eq!(job["code"], 0);
    assert_eq!(job["description"], "POST /api/storage/volumes");
    // The Location works, trailing slash and all.
    let got = env
        .get("/api/storage/volumes/?name=vol1&fields=size,nas.path,style")
        .await?;
    assert_eq!(got.status, 200);
    let rec = &got.body["records"][0];
    assert_eq!(rec["size"], 10 * GIB);
    assert_eq!(rec["nas"], json!({"path": "/vol1"}));
    assert_eq!(rec["style"], "flexvol");
    let aggr = env.find("/api/storage/aggregates", "aggr1").await?;
    assert_eq!(aggr["space"]["block_storage"]["used"], 10 * GIB);
    assert_eq!(aggr["space"]["block_storage"]["available"], TIB - 10 * GIB);

    // Duplicate name in the same SVM.
    let dup = env
        .post(
            "/api/storage/volumes",
            json!({"name":"vol1","svm":{"name":"svm1"},"aggregates":[{"name":"aggr1"}]}),
        )
        .await?;
    assert_eq!(dup.status, 409);
    assert_eq!(dup.body["error"]["code"], "1");
    assert_eq!(dup.body["error"]["target"], "name");

    // Too big for the aggregate: the job fails.
    let (_, job) = env
        .run_job(
            Method::POST,
            "/api/storage/volumes",
            Some(
                json!({"name":"huge","svm":{"name":"svm1"},"aggregates":[{"name":"aggr1"}],
                        "size":"2TB"}),
            ),
        )
        .await?;
    assert_eq!(job["state"], "failure");
    assert_eq!(job["code"], 917537);
    assert!(job["message"]
        .as_str()
        .unwrap()
        .contains("not enough space in aggregate \"aggr1\""));

    // Resize up, then delete: space comes back.
    let (_, job) = env
        .run_job(
            Method::PATCH,
            &format!("/api/storage/volumes/{}", rec["uuid"].as_str().unwrap()),
            Some(json!({"size": "20GB"})),
        )
        .await?;
    assert_eq!(job["state"], "success", "{job}");
    let aggr = env.find("/api/storage/aggregates", "aggr1").await?;
    assert_eq!(aggr["space"]["block_storage"]["used"], 20 * GIB);
    let (_, job) = env
        .run_job(
            Method::DELETE,
            &format!("/api/storage/volumes/{}", rec["uuid"].as_str().unwrap()),
            None,
        )
        .await?;
    assert_eq!(job["state"], "success");
    let aggr = env.find("/api/storage/aggregates", "aggr1").await?;
    assert_eq!(aggr["space"]["block_storage"]["used"], 0);
    Ok(())
}

#[tokio::test]
async fn unexpected_field_and_bad_enum_are_refused() -> anyhow::Result<()> {
    let env = common::start().await?;
    let r = env
        .post(
            "/api/storage/volumes",
            json!({"name":"v","svm":{"name":"svm1"},"aggregates":[{"name":"aggr1"}],"colour":"red"}),
        )
        .await?;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        json!({"error":{"message":"Unexpected argument \"colour\".","code":"262179","target":"colour"}})
    );
    let r = env
        .post(
            "/api/storage/volumes",
            json!({"name":"v","svm":{"name":"svm1"},"aggregates":[{"name":"aggr1"}],
                   "efficiency":{"compression":"zip"}}),
        )
        .await?;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["code"], "262185");
    assert_eq!(r.body["error"]["target"], "efficiency.compression");
    let r = env
        .post(
            "/api/storage/volumes",
            json!({"name":"v","aggregates":[{"name":"aggr1"}]}),
        )
        .await?;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["code"], "262177");
    let r = env
        .get("/api/storage/volumes/00000000-0000-0000-0000-000000000000")
        .await?;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.body,
        json!({"error":{"message":"entry doesn't exist","code":"4"}})
    );
    Ok(())
}

#[tokio::test]
async fn flexgroup_when_several_aggregates() -> anyhow::Result<()> {
    let env = common::start().await?;
    let uuid = env
        .create_volume(json!({"name":"fg","svm":{"name":"svm1"},
                              "aggregates":[{"name":"aggr1"},{"name":"aggr2"}],"size":"100GB"}))
        .await?;
    let v = env.get(&format!("/api/storage/volumes/{uuid}")).await?;
    assert_eq!(v.body["style"], "flexgroup");
    assert_eq!(v.body["aggregates"].as_array().unwrap().len(), 2);
    for a in ["aggr1", "aggr2"] {
        let aggr = env.find("/api/storage/aggregates", a).await?;
        assert_eq!(aggr["space"]["block_storage"]["used"], 50 * GIB);
    }
    let r = env
        .post(
            "/api/storage/volumes",
            json!({"name":"fv","svm":{"name":"svm1"},"style":"flexvol",
                   "aggregates":[{"name":"aggr1"},{"name":"aggr2"}]}),
        )
        .await?;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["code"], "918242");
    Ok(())
}

#[tokio::test]
async fn flexclone_create_split_and_delete_rules() -> anyhow::Result<()> {
    let env = common::start().await?;
    let parent = env
        .create_volume(json!({"name":"base","svm":{"name":"svm1"},"aggregates":[{"name":"aggr1"}],"size":"1GB"}))
        .await?;
    let r = env
        .post(
            "/api/storage/volumes",
            json!({"name":"base_clone","svm":{"name":"svm1"},
                   "clone":{"parent_volume":{"name":"base"},"is_flexclone":true}}),
        )
        .await?;
    assert_eq!(r.status, 202);
    assert_eq!(
        r.header("location"),
        Some("/api/storage/volumes/?name=base_clone")
    );
    let job = env
        .wait_job(r.body["job"]["uuid"].as_str().unwrap())
        .await?;
    assert_eq!(job["state"], "success");
    let c = env.find("/api/storage/volumes", "base_clone").await?;
    assert_eq!(c["clone"]["is_flexclone"], true);
    assert_eq!(c["clone"]["parent_volume"]["name"], "base");
    assert_eq!(c["clone"]["parent_volume"]["uuid"], json!(parent));
    assert_eq!(c["size"], GIB);
    // Only the parent is charged.
    let aggr = env.find("/api/storage/aggregates", "aggr1").await?;
    assert_eq!(aggr["space"]["block_storage"]["used"], GIB);
    let r = env
        .get("/api/storage/volumes?clone.is_flexclone=true")
        .await?;
    assert_eq!(r.body["num_records"], 1);

    // The parent cannot go while the clone exists.
    let (_, job) = env
        .run_job(
            Method::DELETE,
            &format!("/api/storage/volumes/{parent}"),
            None,
        )
        .await?;
    assert_eq!(job["state"], "failure");
    assert_eq!(job["code"], 8);
    assert_eq!(
        job["message"],
        "Volume \"base\" in SVM \"svm1\" cannot be deleted because it has FlexClone volumes (base_clone)."
    );

    // Split: the clone becomes independent and is charged.
    let cu = c["uuid"].as_str().unwrap();
    let (_, job) = env
        .run_job(
            Method::PATCH,
            &format!("/api/storage/volumes/{cu}"),
            Some(json!({"clone":{"split_initiated":true}})),
        )
        .await?;
    assert_eq!(job["state"], "success");
    let c = env
        .get(&format!("/api/storage/volumes/{cu}?fields=clone"))
        .await?;
    assert_eq!(c.body["clone"]["is_flexclone"], false);
    let aggr = env.find("/api/storage/aggregates", "aggr1").await?;
    assert_eq!(aggr["space"]["block_storage"]["used"], 2 * GIB);
    let (_, job) = env
        .run_job(
            Method::DELETE,
            &format!("/api/storage/volumes/{parent}"),
            None,
        )
        .await?;
    assert_eq!(job["state"], "success");

    // Splitting a non-clone is refused synchronously.
    let r = env
        .patch(
            &format!("/api/storage/volumes/{cu}"),
            json!({"clone":{"split_initiated":true}}),
        )
        .await?;
    assert_eq!(r.status, 400);
    Ok(())
}

/// A backend that refuses volumes larger than 5 GiB, as a kernel backend short of disk would.
#[derive(Debug, Default)]
struct SmallDisk {
    seen: std::sync::Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl ontap_sim::Backend for SmallDisk {
    async fn apply(&self, change: &ontap_sim::Change) -> Result<(), ontap_sim::BackendError> {
        if let ontap_sim::Change::Created { collection, record } = change {
            self.seen.lock().unwrap().push(format!(
                "{collection}:{}",
                record["name"].as_str().unwrap_or("")
            ));
            if collection == "volumes" && record["size"].as_u64().unwrap_or(0) > 5 * GIB {
                return Err(ontap_sim::BackendError::new(13, "backing store is full"));
            }
        }
        Ok(())
    }
}

#[tokio::test]
async fn backend_refusal_fails_the_job_and_commits_nothing() -> anyhow::Result<()> {
    let backend = std::sync::Arc::new(SmallDisk::default());
    let env = common::start_with(
        ontap_sim::SimServer::builder()
            .backend(backend.clone())
            .job_duration(
                std::time::Duration::ZERO,
                std::time::Duration::from_millis(10),
            ),
    )
    .await?;
    let (_, job) = env
        .run_job(Method::POST, "/api/storage/volumes",
                 Some(json!({"name":"big","svm":{"name":"svm1"},"aggregates":[{"name":"aggr1"}],"size":"6GB"})))
        .await?;
    assert_eq!(job["state"], "failure");
    assert_eq!(job["code"], 13);
    assert_eq!(job["message"], "backing store is full");
    let aggr = env.find("/api/storage/aggregates", "aggr1").await?;
    assert_eq!(aggr["space"]["block_storage"]["used"], 0);
    env.create_volume(
        json!({"name":"small","svm":{"name":"svm1"},"aggregates":[{"name":"aggr1"}],"size":"1GB"}),
    )
    .await?;
    assert_eq!(
        *backend.seen.lock().unwrap(),
        ["volumes:big", "volumes:small"]
    );
    Ok(())
}

#[tokio::test]
async fn a_volume_patch_keeps_the_volumes_files() -> anyhow::Result<()> {
    let env = common::start().await?;
    let vu = env
        .create_volume(json!({"name": "fv", "svm": {"name": "svm1"},
                              "aggregates": [{"name": "aggr1"}], "size": "1GB"}))
        .await?;
    let r = env
        .post(
            "/__sim/files",
            json!({"volume": {"name": "fv"}, "path": "disk.raw"}),
        )
        .await?;
    assert_eq!(r.status, 201, "{}", r.body);
    let (_, job) = env
        .run_job(
            Method::PATCH,
            &format!("/api/storage/volumes/{vu}"),
            Some(json!({"size": "2GB", "comment": "grown"})),
        )
        .await?;
    assert_eq!(job["state"], "success", "{job}");
    let root = env
        .get(&format!("/api/storage/volumes/{vu}/files/%2E"))
        .await?;
    assert_eq!(root.status, 200, "{}", root.body);
    let names: Vec<&str> = root.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["disk.raw"]);
    assert_eq!(env.sim.state()["files"][&vu], json!(["disk.raw"]));
    Ok(())
}
