//! FlexClones hold their parent's LUNs and NVMe namespaces, as in ONTAP: same place,
//! size, OS type and comment, a new UUID (and LUN serial number), unmapped.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

const GIB: u64 = 1 << 30;

/// Records of a collection path filtered by `location.volume.name`, with every field.
async fn in_volume(env: &common::Env, path: &str, volume: &str) -> anyhow::Result<Vec<Value>> {
    let r = env
        .get(&format!("{path}?location.volume.name={volume}&fields=*"))
        .await?;
    anyhow::ensure!(r.status == 200, "{path} answered {}: {}", r.status, r.body);
    Ok(r.body["records"].as_array().cloned().unwrap_or_default())
}

/// Parent volume `p` with a thick mapped LUN `/vol/p/lun0` (1 GiB) and a mapped namespace
/// `/vol/p/ns0` (512 MiB); returns the parent's UUID.
async fn parent_with_blocks(env: &common::Env) -> anyhow::Result<String> {
    let p = env
        .create_volume(json!({"name": "p", "svm": {"name": "svm1"},
                              "aggregates": [{"name": "aggr1"}], "size": "4GB"}))
        .await?;
    let r = env
        .post(
            "/api/storage/luns",
            json!({"svm": {"name": "svm1"}, "name": "/vol/p/lun0", "os_type": "vmware",
                   "comment": "vm disks", "space": {"size": "1G", "guarantee": {"requested": true}}}),
        )
        .await?;
    anyhow::ensure!(r.status == 201, "{}", r.body);
    let r = env
        .post(
            "/api/protocols/san/igroups",
            json!({"svm": {"name": "svm1"}, "name": "ig", "os_type": "linux", "protocol": "iscsi",
                   "initiators": [{"name": "iqn.1994-05.com.redhat:h1"}]}),
        )
        .await?;
    anyhow::ensure!(r.status == 201, "{}", r.body);
    let r = env
        .post(
            "/api/protocols/san/lun-maps",
            json!({"svm": {"name": "svm1"}, "lun": {"name": "/vol/p/lun0"},
                   "igroup": {"name": "ig"}, "logical_unit_number": 3}),
        )
        .await?;
    anyhow::ensure!(r.status == 201, "{}", r.body);
    let r = env
        .post(
            "/api/storage/namespaces",
            json!({"svm": {"name": "svm1"}, "name": "/vol/p/ns0", "os_type": "linux",
                   "space": {"size": "512M", "block_size": 512}}),
        )
        .await?;
    anyhow::ensure!(r.status == 201, "{}", r.body);
    let r = env
        .post(
            "/api/protocols/nvme/subsystems",
            json!({"svm": {"name": "svm1"}, "name": "sub", "os_type": "linux",
                   "hosts": [{"nqn": "nqn.2014-08.org.nvmexpress:uuid:0d6f8a43-8d5e-4d2b-9e6a-3f1f0f7c2a11"}]}),
        )
        .await?;
    anyhow::ensure!(r.status == 201, "{}", r.body);
    let r = env
        .post(
            "/api/protocols/nvme/subsystem-maps",
            json!({"svm": {"name": "svm1"}, "subsystem": {"name": "sub"},
                   "namespace": {"name": "/vol/p/ns0"}}),
        )
        .await?;
    anyhow::ensure!(r.status == 201, "{}", r.body);
    Ok(p)
}

async fn clone_of_p(env: &common::Env, name: &str) -> anyhow::Result<Value> {
    let (_, job) = env
        .run_job(
            Method::POST,
            "/api/storage/volumes",
            Some(json!({"name": name, "svm": {"name": "svm1"},
                        "clone": {"parent_volume": {"name": "p"}, "is_flexclone": true}})),
        )
        .await?;
    Ok(job)
}

#[tokio::test]
async fn flexclone_holds_new_unmapped_copies_of_the_parents_luns_and_namespaces(
) -> anyhow::Result<()> {
    let env = common::start().await?;
    let p = parent_with_blocks(&env).await?;
    let job = clone_of_p(&env, "c").await?;
    assert_eq!(job["state"], "success", "{job}");
    let c = env.find("/api/storage/volumes", "c").await?;
    let cu = c["uuid"].as_str().unwrap().to_string();

    let parent_lun = &in_volume(&env, "/api/storage/luns", "p").await?[0];
    let luns = in_volume(&env, "/api/storage/luns", "c").await?;
    assert_eq!(luns.len(), 1, "{luns:?}");
    let lun = &luns[0];
    assert_eq!(lun["name"], "/vol/c/lun0");
    assert_eq!(
        lun["location"],
        json!({"logical_unit": "lun0",
               "volume": {"name": "c", "uuid": cu,
                          "_links": {"self": {"href": format!("/api/storage/volumes/{cu}")}}}})
    );
    assert_eq!(lun["svm"]["name"], "svm1");
    assert_eq!(lun["os_type"], "vmware");
    assert_eq!(lun["comment"], "vm disks");
    assert_eq!(lun["space"]["size"], GIB);
    assert_eq!(
        lun["space"]["guarantee"],
        json!({"requested": true, "reserved": true})
    );
    assert_eq!(lun["status"]["mapped"], false);
    assert_eq!(lun["lun_maps"], json!([]));
    let uuid = lun["uuid"].as_str().unwrap();
    assert_eq!(uuid.len(), 36);
    assert_ne!(lun["uuid"], parent_lun["uuid"]);
    assert_eq!(
        lun["_links"]["self"]["href"],
        format!("/api/storage/luns/{uuid}")
    );
    let serial = lun["serial_number"].as_str().unwrap();
    assert_eq!(serial.len(), 12);
    assert_ne!(lun["serial_number"], parent_lun["serial_number"]);
    // The parent keeps its map.
    assert_eq!(parent_lun["status"]["mapped"], true);
    assert_eq!(parent_lun["lun_maps"][0]["logical_unit_number"], 3);
    let r = env.get(&format!("/api/storage/luns/{uuid}")).await?;
    assert_eq!((r.status, &r.body["name"]), (200, &json!("/vol/c/lun0")));

    let parent_ns = &in_volume(&env, "/api/storage/namespaces", "p").await?[0];
    let nss = in_volume(&env, "/api/storage/namespaces", "c").await?;
    assert_eq!(nss.len(), 1, "{nss:?}");
    let ns = &nss[0];
    assert_eq!(ns["name"], "/vol/c/ns0");
    assert_eq!(ns["location"]["namespace"], "ns0");
    assert_eq!(ns["location"]["volume"]["uuid"], json!(cu));
    assert_eq!(ns["os_type"], "linux");
    assert_eq!(
        (&ns["space"]["size"], &ns["space"]["block_size"]),
        (&json!(512u64 << 20), &json!(512))
    );
    assert_eq!(ns["status"]["mapped"], false);
    assert_eq!(ns.get("subsystem_map"), None);
    assert_ne!(ns["uuid"], parent_ns["uuid"]);
    assert_eq!(parent_ns["status"]["mapped"], true);

    // The thick LUN's reservation is held in the clone too; the thin namespace holds none.
    let pv = env.find("/api/storage/volumes", "p").await?;
    let cv = env.find("/api/storage/volumes", "c").await?;
    assert_eq!(
        (&pv["space"]["used"], &cv["space"]["used"]),
        (&json!(GIB), &json!(GIB))
    );

    // The copy is a LUN like any other: it maps, with the lowest free LUN id.
    let r = env
        .post(
            "/api/protocols/san/lun-maps?return_records=true",
            json!({"svm": {"name": "svm1"}, "lun": {"name": "/vol/c/lun0"},
                   "igroup": {"name": "ig"}}),
        )
        .await?;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["records"][0]["logical_unit_number"], 0);

    // The clone cannot go while it holds them.
    let (_, job) = env
        .run_job(Method::DELETE, &format!("/api/storage/volumes/{cu}"), None)
        .await?;
    assert_eq!(
        (&job["state"], &job["code"]),
        (&json!("failure"), &json!(8))
    );
    assert_eq!(
        job["message"],
        "Volume \"c\" in SVM \"svm1\" cannot be deleted because it contains LUNs or NVMe namespaces (/vol/c/lun0, /vol/c/ns0)."
    );
    let r = env
        .delete(&format!(
            "/api/storage/luns/{uuid}?allow_delete_while_mapped=true"
        ))
        .await?;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = env
        .delete(&format!(
            "/api/storage/namespaces/{}",
            ns["uuid"].as_str().unwrap()
        ))
        .await?;
    assert_eq!(r.status, 200, "{}", r.body);
    let (_, job) = env
        .run_job(Method::DELETE, &format!("/api/storage/volumes/{cu}"), None)
        .await?;
    assert_eq!(job["state"], "success", "{job}");
    // The parent's LUN and namespace are untouched.
    assert_eq!(in_volume(&env, "/api/storage/luns", "p").await?.len(), 1);
    assert_eq!(
        in_volume(&env, "/api/storage/namespaces", "p").await?.len(),
        1
    );
    let _ = p;
    Ok(())
}

#[tokio::test]
async fn every_flexclone_gets_its_own_serial_numbers() -> anyhow::Result<()> {
    let env = common::start().await?;
    parent_with_blocks(&env).await?;
    for c in ["c1", "c2", "c3"] {
        assert_eq!(clone_of_p(&env, c).await?["state"], "success");
    }
    let r = env
        .get("/api/storage/luns?fields=serial_number&order_by=name")
        .await?;
    let names: Vec<&str> = r.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "/vol/c1/lun0",
            "/vol/c2/lun0",
            "/vol/c3/lun0",
            "/vol/p/lun0"
        ]
    );
    let mut serials: Vec<&str> = r.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["serial_number"].as_str().unwrap())
        .collect();
    serials.sort_unstable();
    serials.dedup();
    assert_eq!(serials.len(), 4);
    Ok(())
}

/// Records every change and refuses the creation of namespace `/vol/<clone>/ns0`.
#[derive(Debug, Default)]
struct RefuseClonedNamespace {
    seen: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl ontap_sim::Backend for RefuseClonedNamespace {
    async fn apply(&self, change: &ontap_sim::Change) -> Result<(), ontap_sim::BackendError> {
        let (what, record) = match change {
            ontap_sim::Change::Created { collection, record } => (format!("+{collection}"), record),
            ontap_sim::Change::Deleted { collection, record } => (format!("-{collection}"), record),
            _ => return Ok(()),
        };
        let name = record["name"].as_str().unwrap_or_default().to_string();
        self.seen.lock().unwrap().push(format!("{what}:{name}"));
        if what == "+nvme_namespaces" && name == "/vol/c/ns0" {
            return Err(ontap_sim::BackendError::new(
                13,
                "no room for the namespace",
            ));
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_refused_cloned_namespace_takes_back_the_whole_clone() -> anyhow::Result<()> {
    let backend = Arc::new(RefuseClonedNamespace::default());
    let env = common::start_with(
        ontap_sim::SimServer::builder()
            .backend(backend.clone())
            .job_duration(Duration::ZERO, Duration::from_millis(10)),
    )
    .await?;
    parent_with_blocks(&env).await?;
    backend.seen.lock().unwrap().clear();
    let job = clone_of_p(&env, "c").await?;
    assert_eq!(
        (&job["state"], &job["code"], &job["message"]),
        (
            &json!("failure"),
            &json!(13),
            &json!("no room for the namespace")
        )
    );
    assert_eq!(
        *backend.seen.lock().unwrap(),
        [
            "+volumes:c",
            "+luns:/vol/c/lun0",
            "+nvme_namespaces:/vol/c/ns0",
            "-luns:/vol/c/lun0",
            "-volumes:c",
        ]
    );
    let r = env.get("/api/storage/volumes?name=c").await?;
    assert_eq!(r.body["num_records"], 0);
    assert!(in_volume(&env, "/api/storage/luns", "c").await?.is_empty());
    assert!(in_volume(&env, "/api/storage/namespaces", "c")
        .await?
        .is_empty());
    let aggr = env.find("/api/storage/aggregates", "aggr1").await?;
    assert_eq!(aggr["space"]["block_storage"]["used"], 4 * GIB);
    Ok(())
}
