//! Accessors for cluster, SVMs, aggregates, volumes, snapshots, file clones, jobs, MAV.

mod common;

use common::{fixture, MockOntap};
use ontap_client::models::*;
use ontap_client::Query;
use serde_json::json;

#[tokio::test]
async fn cluster_singleton_and_version() {
    let mock = MockOntap::start().await;
    let body = json!({"name": "c1", "uuid": "cu",
        "version": {"full": "NetApp Release 9.12.1", "generation": 9, "major": 12, "minor": 1}});
    mock.on("GET", "/api/cluster", 200, body.clone());
    mock.on(
        "GET",
        "/api/cluster",
        200,
        json!({"version": body["version"].clone()}),
    );
    let client = mock.client();

    let cluster = client.cluster().get().await.unwrap();
    assert_eq!(cluster.name.as_deref(), Some("c1"));
    let version = client.cluster().version().await.unwrap();
    assert!(version.at_least(9, 12, 1));
    assert!(!version.at_least(9, 14, 0));

    let seen = mock.recorded();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("GET", "/api/cluster")
    );
    assert_eq!(seen[0].query, None);
    assert_eq!(seen[1].query.as_deref(), Some("fields=version"));
    assert_eq!(client.cluster().path(), "/api/cluster");
}

#[tokio::test]
async fn collection_paths() {
    let mock = MockOntap::start().await;
    let c = mock.client();
    assert_eq!(c.nodes().path(), "/api/cluster/nodes");
    assert_eq!(c.jobs().path(), "/api/cluster/jobs");
    assert_eq!(
        c.mav_requests().path(),
        "/api/security/multi-admin-verify/requests"
    );
    assert_eq!(c.svms().path(), "/api/svm/svms");
    assert_eq!(c.aggregates().path(), "/api/storage/aggregates");
    assert_eq!(c.volumes().path(), "/api/storage/volumes");
    assert_eq!(
        c.snapshots("v-1").path(),
        "/api/storage/volumes/v-1/snapshots"
    );
    assert_eq!(
        c.volumes().snapshots("v-1").path(),
        "/api/storage/volumes/v-1/snapshots"
    );
    assert_eq!(c.ip_interfaces().path(), "/api/network/ip/interfaces");
    assert_eq!(c.fc_interfaces().path(), "/api/network/fc/interfaces");
    assert_eq!(
        c.export_policies().path(),
        "/api/protocols/nfs/export-policies"
    );
    assert_eq!(
        c.export_rules(12).path(),
        "/api/protocols/nfs/export-policies/12/rules"
    );
    assert_eq!(
        c.export_policies().rules(12).path(),
        "/api/protocols/nfs/export-policies/12/rules"
    );
    assert_eq!(c.cifs_shares().path(), "/api/protocols/cifs/shares");
    assert_eq!(
        c.cifs_shares().acls("s-u", "my share").path(),
        "/api/protocols/cifs/shares/s-u/my%20share/acls"
    );
    assert_eq!(c.luns().path(), "/api/storage/luns");
    assert_eq!(c.igroups().path(), "/api/protocols/san/igroups");
    assert_eq!(
        c.igroups().initiators("ig-u").path(),
        "/api/protocols/san/igroups/ig-u/initiators"
    );
    assert_eq!(c.lun_maps().path(), "/api/protocols/san/lun-maps");
    assert_eq!(
        c.iscsi_services().path(),
        "/api/protocols/san/iscsi/services"
    );
    assert_eq!(
        c.iscsi_credentials().path(),
        "/api/protocols/san/iscsi/credentials"
    );
    assert_eq!(c.nvme_services().path(), "/api/protocols/nvme/services");
    assert_eq!(c.namespaces().path(), "/api/storage/namespaces");
    assert_eq!(c.nvme_subsystems().path(), "/api/protocols/nvme/subsystems");
    assert_eq!(
        c.nvme_subsystems().hosts("ss-u").path(),
        "/api/protocols/nvme/subsystems/ss-u/hosts"
    );
    assert_eq!(
        c.nvme_subsystem_maps().path(),
        "/api/protocols/nvme/subsystem-maps"
    );
    assert_eq!(
        c.snapmirror_relationships().path(),
        "/api/snapmirror/relationships"
    );
    assert_eq!(
        c.snapmirror_relationships().transfers("r-u").path(),
        "/api/snapmirror/relationships/r-u/transfers"
    );
    // Two-part keys keep their separator; each part is encoded.
    assert_eq!(
        c.lun_maps()
            .item_path(&ontap_client::Api::<LunMap>::map_key("l-u", "i-u")),
        "/api/protocols/san/lun-maps/l-u/i-u"
    );
    assert_eq!(
        c.iscsi_credentials()
            .item_path(&ontap_client::Api::<IscsiCredentials>::credentials_key(
                "s-u",
                "iqn.1994-05.com.redhat:h1"
            )),
        "/api/protocols/san/iscsi/credentials/s-u/iqn.1994-05.com.redhat%3Ah1"
    );
    assert!(mock.recorded().is_empty());
}

#[tokio::test]
async fn volume_get_decodes_fixture() {
    let mock = MockOntap::start().await;
    let uuid = "d0c3359c-5448-4a9b-a077-e3295a7e9057";
    mock.on(
        "GET",
        &format!("/api/storage/volumes/{uuid}"),
        200,
        fixture("volume_get.json"),
    );
    let v = mock
        .client()
        .volumes()
        .get(uuid, &Query::new().fields(["*"]))
        .await
        .unwrap();
    assert_eq!(v.name.as_deref(), Some("datavol"));
    assert_eq!(v.size, Some(20_971_520));
    let req = mock.single();
    assert_eq!(req.method, "GET");
    assert_eq!(req.query.as_deref(), Some("fields=*"));
    assert_eq!(req.body, None);
}

#[tokio::test]
async fn volume_list_follows_collection() {
    let mock = MockOntap::start().await;
    mock.on(
        "GET",
        "/api/storage/volumes",
        200,
        fixture("volume_collection_raw.json"),
    );
    let volumes = mock
        .client()
        .volumes()
        .list_all(&Query::new().filter("svm.name", "vs0"))
        .await
        .unwrap();
    let names: Vec<_> = volumes.iter().map(|v| v.name.clone().unwrap()).collect();
    assert_eq!(names, ["vs0_root", "vs1_root"]);
    assert_eq!(mock.single().query.as_deref(), Some("svm.name=vs0"));
}

#[tokio::test]
async fn volume_by_name() {
    let mock = MockOntap::start().await;
    mock.on(
        "GET",
        "/api/storage/volumes",
        200,
        json!({"records": [{"uuid": "u1", "name": "vol1"}], "num_records": 1}),
    );
    let v = mock
        .client()
        .volumes()
        .by_name("svm1", "vol1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v.uuid.as_deref(), Some("u1"));
    assert_eq!(
        mock.single().params(),
        ["name=vol1", "return_timeout=120", "svm.name=svm1"]
    );
}

#[tokio::test]
async fn volume_create_waits_for_job_and_resolves_record() {
    let mock = MockOntap::start().await;
    mock.on_with_location(
        "POST",
        "/api/storage/volumes",
        202,
        fixture("volume_post_job.json"),
        Some("/api/storage/volumes/?name=vol1"),
    );
    mock.on(
        "GET",
        "/api/cluster/jobs/b89bc5dd-94a3-11e8-a7a3-0050568edf84",
        200,
        json!({"uuid": "b89bc5dd-94a3-11e8-a7a3-0050568edf84", "state": "success", "code": 0}),
    );
    mock.on(
        "GET",
        "/api/storage/volumes/",
        200,
        json!({"records": [{"uuid": "new-u", "name": "vol1"}], "num_records": 1}),
    );
    let created = mock
        .client()
        .volumes()
        .create(&VolumeCreate::flexvol("vol1", "vs1", "aggr1").size(GIB))
        .await
        .unwrap();
    assert_eq!(created.record.unwrap().uuid.as_deref(), Some("new-u"));
    let seen = mock.recorded();
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path, "/api/storage/volumes");
    assert_eq!(
        seen[0].params(),
        ["return_records=true", "return_timeout=30"]
    );
    assert_eq!(
        seen[0].body,
        Some(
            json!({"name": "vol1", "svm": {"name": "vs1"}, "aggregates": [{"name": "aggr1"}],
                    "size": 1073741824u64})
        )
    );
    assert_eq!(seen[1].method, "GET");
    assert_eq!(
        seen[1].path,
        "/api/cluster/jobs/b89bc5dd-94a3-11e8-a7a3-0050568edf84"
    );
    assert_eq!(seen.len(), 3);
    // The Location's collection query is followed verbatim (trailing `/` included),
    // narrowed to the SVM the POST named: ONTAP's `?name=` Location carries no SVM.
    assert_eq!(seen[2].path, "/api/storage/volumes/");
    assert_eq!(seen[2].params(), ["name=vol1", "svm.name=vs1"]);
}

#[tokio::test]
async fn flexclone_create_body() {
    let mock = MockOntap::start().await;
    mock.on(
        "POST",
        "/api/storage/volumes",
        201,
        json!({"num_records": 1, "records": [{"uuid": "clone-u", "name": "vol1_clone",
            "clone": {"is_flexclone": true, "parent_volume": {"name": "vol1"}}}]}),
    );
    let created = mock
        .client()
        .volumes()
        .create_flexclone(&FlexCloneCreate::new("vol1_clone", "vs0", "vol1").parent_snapshot("s1"))
        .await
        .unwrap();
    let clone = created.record.unwrap();
    assert!(clone.is_flexclone());
    assert_eq!(
        mock.single().body,
        Some(json!({"name": "vol1_clone", "svm": {"name": "vs0"},
            "clone": {"is_flexclone": true, "parent_volume": {"name": "vol1"},
                      "parent_snapshot": {"name": "s1"}}}))
    );
}

#[tokio::test]
async fn volume_patches_send_expected_bodies() {
    let mock = MockOntap::start().await;
    let path = "/api/storage/volumes/v-u";
    for _ in 0..8 {
        mock.on("PATCH", path, 200, json!({}));
    }
    let volumes = mock.client().volumes();
    volumes.split_clone("v-u").await.unwrap();
    volumes.resize("v-u", 2 * GIB).await.unwrap();
    volumes
        .set_efficiency("v-u", EfficiencyMode::Inline, EfficiencyMode::Inline)
        .await
        .unwrap();
    volumes.set_snapshot_policy("v-u", "none").await.unwrap();
    volumes
        .set_tiering_policy("v-u", TieringPolicy::SnapshotOnly)
        .await
        .unwrap();
    volumes
        .set_anti_ransomware("v-u", AntiRansomwareState::Enabled)
        .await
        .unwrap();
    volumes.set_encryption("v-u", true).await.unwrap();
    volumes.set_snapshot_locking("v-u", true).await.unwrap();
    let bodies: Vec<_> = mock
        .recorded()
        .into_iter()
        .map(|r| {
            assert_eq!((r.method.as_str(), r.path.as_str()), ("PATCH", path));
            assert_eq!(r.params(), ["return_timeout=30"]);
            r.body.unwrap()
        })
        .collect();
    assert_eq!(
        bodies,
        [
            json!({"clone": {"split_initiated": true}}),
            json!({"size": 2147483648u64}),
            json!({"efficiency": {"compression": "inline", "dedupe": "inline"}}),
            json!({"snapshot_policy": {"name": "none"}}),
            json!({"tiering": {"policy": "snapshot_only"}}),
            json!({"anti_ransomware": {"state": "enabled"}}),
            json!({"encryption": {"enabled": true}}),
            json!({"snapshot_locking_enabled": true}),
        ]
    );
}

#[tokio::test]
async fn volume_delete_with_job() {
    let mock = MockOntap::start().await;
    mock.on_job("DELETE", "/api/storage/volumes/v-u", "j-del");
    let done = mock.client().volumes().delete("v-u").await.unwrap();
    assert_eq!(done.jobs.len(), 1);
    assert_eq!(done.jobs[0].state, Some(JobState::Success));
    let seen = mock.recorded();
    assert_eq!(seen[0].method, "DELETE");
    assert_eq!(seen[0].body, None);
    assert_eq!(seen[1].path, "/api/cluster/jobs/j-del");
}

#[tokio::test]
async fn snapshot_create_and_lock() {
    let mock = MockOntap::start().await;
    let base = "/api/storage/volumes/0353dc05-405f-11e9-acb6-005056bbc848/snapshots";
    mock.on("POST", base, 201, fixture("snapshot_post_records_job.json"));
    mock.on(
        "GET",
        "/api/cluster/jobs/6f68c85b-45e1-11e9-8fc7-005056bbc848",
        200,
        fixture("snapshot_job_success.json"),
    );
    mock.on("PATCH", &format!("{base}/s-u"), 200, json!({}));
    mock.on("PATCH", &format!("{base}/s-u"), 200, json!({}));
    let client = mock.client();
    let snaps = client.snapshots("0353dc05-405f-11e9-acb6-005056bbc848");
    let created = snaps
        .create(&SnapshotCreate::new("snapshot_copy").comment("Store this copy."))
        .await
        .unwrap();
    let record = created.record.unwrap();
    assert_eq!(record.name.as_deref(), Some("snapshot_copy"));
    assert_eq!(record.volume.unwrap().name.as_deref(), Some("v2"));
    snaps
        .lock_until("s-u", "2030-01-01T00:00:00Z")
        .await
        .unwrap();
    snaps
        .lock_until_legacy("s-u", "2030-01-01T00:00:00Z")
        .await
        .unwrap();
    let seen = mock.recorded();
    assert_eq!(
        seen[0].body,
        Some(json!({"name": "snapshot_copy", "comment": "Store this copy."}))
    );
    let patches: Vec<_> = seen.iter().filter(|r| r.method == "PATCH").collect();
    assert_eq!(
        patches[0].body,
        Some(json!({"snaplock": {"expiry_time": "2030-01-01T00:00:00Z"}}))
    );
    assert_eq!(
        patches[1].body,
        Some(json!({"snaplock_expiry_time": "2030-01-01T00:00:00Z"}))
    );
}

#[tokio::test]
async fn file_clone_posts_and_waits() {
    let mock = MockOntap::start().await;
    mock.on(
        "POST",
        "/api/storage/file/clone",
        202,
        fixture("job_link_file_clone.json"),
    );
    mock.on(
        "GET",
        "/api/cluster/jobs/0d025fd9-c4dc-11eb-adb5-005056bbeb0b",
        200,
        json!({"uuid": "0d025fd9-c4dc-11eb-adb5-005056bbeb0b", "state": "success", "code": 0}),
    );
    let done = mock
        .client()
        .file_clone(&FileCloneCreate::new("vol1", "base.img", "vm1.img"))
        .await
        .unwrap();
    assert_eq!(
        done.jobs[0].uuid.as_deref(),
        Some("0d025fd9-c4dc-11eb-adb5-005056bbeb0b")
    );
    let seen = mock.recorded();
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("POST", "/api/storage/file/clone")
    );
    assert_eq!(seen[0].params(), ["return_timeout=30"]);
    assert_eq!(
        seen[0].body,
        Some(
            json!({"volume": {"name": "vol1"}, "source_path": "base.img", "destination_path": "vm1.img"})
        )
    );
}

#[tokio::test]
async fn file_clone_job_failure_is_an_error() {
    let mock = MockOntap::start().await;
    mock.on(
        "POST",
        "/api/storage/file/clone",
        202,
        fixture("job_link_file_clone.json"),
    );
    let mut failed = fixture("job_failure_1.json");
    failed["uuid"] = json!("0d025fd9-c4dc-11eb-adb5-005056bbeb0b");
    mock.on(
        "GET",
        "/api/cluster/jobs/0d025fd9-c4dc-11eb-adb5-005056bbeb0b",
        200,
        failed,
    );
    let err = mock
        .client()
        .file_clone(&FileCloneCreate::new("vol1", "a", "b"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("entry doesn't exist"), "{err}");
}

#[tokio::test]
async fn svm_and_aggregate_lookups() {
    let mock = MockOntap::start().await;
    mock.on(
        "GET",
        "/api/svm/svms",
        200,
        json!({"records": [{"uuid": "s-u", "name": "svm1", "state": "running"}], "num_records": 1}),
    );
    mock.on(
        "GET",
        "/api/storage/aggregates",
        200,
        json!({"records": [], "num_records": 0}),
    );
    let c = mock.client();
    let svm = c.svms().by_name("svm1").await.unwrap().unwrap();
    assert_eq!(svm.state, Some(SvmState::Running));
    assert!(c.aggregates().by_name("nope").await.unwrap().is_none());
    let seen = mock.recorded();
    assert_eq!(
        seen[0].query.as_deref(),
        Some("name=svm1&return_timeout=120")
    );
    assert_eq!(
        seen[1].query.as_deref(),
        Some("name=nope&return_timeout=120")
    );
}

#[tokio::test]
async fn mav_approve_and_veto() {
    let mock = MockOntap::start().await;
    mock.on(
        "PATCH",
        "/api/security/multi-admin-verify/requests/7",
        200,
        json!({}),
    );
    mock.on(
        "PATCH",
        "/api/security/multi-admin-verify/requests/8",
        200,
        json!({}),
    );
    let mav = mock.client().mav_requests();
    mav.approve(7).await.unwrap();
    mav.veto(8).await.unwrap();
    let seen = mock.recorded();
    assert_eq!(seen[0].body, Some(json!({"state": "approved"})));
    assert_eq!(seen[1].body, Some(json!({"state": "vetoed"})));
}

#[tokio::test]
async fn jobs_get() {
    let mock = MockOntap::start().await;
    mock.on(
        "GET",
        "/api/cluster/jobs/b5145e1d-b53b-11e8-8252-005056bbd8f5",
        200,
        fixture("job_running.json"),
    );
    let job = mock
        .client()
        .jobs()
        .get("b5145e1d-b53b-11e8-8252-005056bbd8f5", &Query::new())
        .await
        .unwrap();
    assert_eq!(job.state, Some(JobState::Running));
    assert_eq!(job.description.as_deref(), Some("Cluster Backup Job"));
}
