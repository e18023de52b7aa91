//! Accessors for NVMe services, namespaces, subsystems, maps, and SnapMirror.

mod common;

use common::MockOntap;
use ontap_client::models::*;
use serde_json::json;

#[tokio::test]
async fn nvme_service_and_namespace() {
    let mock = MockOntap::start().await;
    mock.on("POST", "/api/protocols/nvme/services", 201, json!({}));
    mock.on(
        "POST",
        "/api/storage/namespaces",
        202,
        json!({"job": {"uuid": "j-ns", "_links": {"self": {"href": "/api/cluster/jobs/j-ns"}}},
               "num_records": 1,
               "records": [{"uuid": "ns-u", "name": "/vol/v/ns1", "os_type": "linux",
                            "space": {"size": 10737418240u64, "block_size": 4096}}]}),
    );
    mock.on(
        "GET",
        "/api/cluster/jobs/j-ns",
        200,
        json!({"uuid": "j-ns", "state": "success", "code": 0}),
    );
    mock.on("PATCH", "/api/storage/namespaces/ns-u", 200, json!({}));
    let c = mock.client();
    c.nvme_services()
        .create(&NvmeServiceCreate::new("svm1"))
        .await
        .unwrap();
    let ns = c
        .namespaces()
        .create(
            &NamespaceCreate::new("svm1", "/vol/v/ns1", NvmeOsType::Linux, 10 * GIB)
                .block_size(4096),
        )
        .await
        .unwrap();
    assert_eq!(ns.completed.jobs.len(), 1);
    let ns = ns.record.unwrap();
    assert_eq!(ns.space.unwrap().block_size, Some(4096));
    c.namespaces().resize("ns-u", 20 * GIB).await.unwrap();
    let seen = mock.recorded();
    assert_eq!(seen[0].body, Some(json!({"svm": {"name": "svm1"}})));
    assert_eq!(
        seen[1].body,
        Some(
            json!({"svm": {"name": "svm1"}, "name": "/vol/v/ns1", "os_type": "linux",
                    "space": {"size": 10737418240u64, "block_size": 4096}})
        )
    );
    assert_eq!(seen[2].path, "/api/cluster/jobs/j-ns");
    assert_eq!(
        seen[3].body,
        Some(json!({"space": {"size": 21474836480u64}}))
    );
}

#[tokio::test]
async fn subsystem_hosts_and_maps() {
    let mock = MockOntap::start().await;
    mock.on(
        "POST",
        "/api/protocols/nvme/subsystems",
        201,
        json!({"num_records": 1,
        "records": [{"uuid": "ss-u", "name": "ss1",
                     "target_nqn": "nqn.1992-08.com.netapp:sn.x:subsystem.ss1"}]}),
    );
    let hosts = "/api/protocols/nvme/subsystems/ss-u/hosts";
    mock.on("POST", hosts, 201, json!({}));
    let host_item = format!("{hosts}/nqn.2014-08.org.nvmexpress%3Auuid%3Ah2");
    mock.on("DELETE", &host_item, 200, json!({}));
    mock.on(
        "POST",
        "/api/protocols/nvme/subsystem-maps",
        201,
        json!({"num_records": 1,
        "records": [{"nsid": "00000001h", "anagrpid": "00000002h",
                     "subsystem": {"uuid": "ss-u"}, "namespace": {"uuid": "ns-u"}}]}),
    );
    mock.on(
        "DELETE",
        "/api/protocols/nvme/subsystem-maps/ss-u/ns-u",
        200,
        json!({}),
    );
    let c = mock.client();
    let ss = c
        .nvme_subsystems()
        .create(
            &SubsystemCreate::new("ss1", "svm1", NvmeOsType::Linux)
                .host("nqn.2014-08.org.nvmexpress:uuid:h1"),
        )
        .await
        .unwrap()
        .record
        .unwrap();
    assert_eq!(
        ss.target_nqn.as_deref(),
        Some("nqn.1992-08.com.netapp:sn.x:subsystem.ss1")
    );
    c.nvme_subsystems()
        .add_hosts("ss-u", ["nqn.2014-08.org.nvmexpress:uuid:h2"])
        .await
        .unwrap();
    c.nvme_subsystems()
        .remove_host("ss-u", "nqn.2014-08.org.nvmexpress:uuid:h2")
        .await
        .unwrap();
    let map = c
        .nvme_subsystem_maps()
        .create(&SubsystemMapCreate::new("svm1", "ss1", "/vol/v/ns1"))
        .await
        .unwrap()
        .record
        .unwrap();
    assert_eq!(map.nsid.as_deref(), Some("00000001h"));
    assert_eq!(map.anagrpid.as_deref(), Some("00000002h"));
    c.nvme_subsystem_maps().unmap("ss-u", "ns-u").await.unwrap();
    let seen = mock.recorded();
    assert_eq!(
        seen[0].body,
        Some(
            json!({"name": "ss1", "svm": {"name": "svm1"}, "os_type": "linux",
                    "hosts": [{"nqn": "nqn.2014-08.org.nvmexpress:uuid:h1"}]})
        )
    );
    assert_eq!(seen[1].path, hosts);
    assert_eq!(
        seen[1].body,
        Some(json!({"records": [{"nqn": "nqn.2014-08.org.nvmexpress:uuid:h2"}]}))
    );
    assert_eq!(
        (seen[2].method.as_str(), seen[2].path.as_str()),
        ("DELETE", host_item.as_str())
    );
    assert_eq!(
        seen[3].body,
        Some(
            json!({"svm": {"name": "svm1"}, "subsystem": {"name": "ss1"}, "namespace": {"name": "/vol/v/ns1"}})
        )
    );
    assert_eq!(
        (seen[4].method.as_str(), seen[4].path.as_str()),
        ("DELETE", "/api/protocols/nvme/subsystem-maps/ss-u/ns-u")
    );
}

#[tokio::test]
async fn subsystem_by_name() {
    let mock = MockOntap::start().await;
    mock.on(
        "GET",
        "/api/protocols/nvme/subsystems",
        200,
        json!({"num_records": 2, "records": [
        {"uuid": "a", "name": "ss1"}, {"uuid": "b", "name": "ss1"}]}),
    );
    let err = mock
        .client()
        .nvme_subsystems()
        .by_name("svm1", "ss1")
        .await
        .unwrap_err();
    assert!(
        matches!(err, ontap_client::Error::NotUnique { found: 2, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn snapmirror_create_and_state_changes() {
    let mock = MockOntap::start().await;
    mock.on_job("POST", "/api/snapmirror/relationships", "j-sm");
    let item = "/api/snapmirror/relationships/r-u";
    for n in 0..5 {
        mock.on_job("PATCH", item, &format!("j-p{n}"));
    }
    let transfers = "/api/snapmirror/relationships/r-u/transfers";
    mock.on(
        "POST",
        transfers,
        201,
        json!({"num_records": 1,
        "records": [{"uuid": "t-u", "state": "transferring"}]}),
    );
    mock.on("GET", "/api/snapmirror/relationships", 200, json!({"num_records": 1, "records": [{
        "uuid": "r-u", "source": {"path": "vs0:vol1"}, "destination": {"path": "vs1:vol1_dst"},
        "state": "snapmirrored", "healthy": false,
        "unhealthy_reason": [{"code": "6621444", "message": "Failed to complete update operation on one or more item relationships."}],
        "policy": {"name": "MirrorAllSnapshots", "type": "async"},
        "transfer": {"uuid": "t-u", "state": "transferring", "bytes_transferred": 1024}}]}));
    let rels = mock.client().snapmirror_relationships();
    let created = rels
        .create(
            &SnapmirrorCreate::new("vs0:vol1", "vs1:vol1_dst")
                .policy("MirrorAllSnapshots")
                .create_destination(true),
        )
        .await
        .unwrap();
    assert_eq!(created.completed.jobs[0].uuid.as_deref(), Some("j-sm"));
    rels.initialize("r-u").await.unwrap();
    rels.break_off("r-u").await.unwrap();
    rels.resync("r-u").await.unwrap();
    rels.pause("r-u").await.unwrap();
    rels.resume("r-u").await.unwrap();
    let t = rels.update("r-u").await.unwrap().record.unwrap();
    assert_eq!(t.state, Some(SnapmirrorTransferState::Transferring));
    let rel = rels.by_destination("vs1:vol1_dst").await.unwrap().unwrap();
    assert_eq!(rel.state, Some(SnapmirrorState::Snapmirrored));
    assert_eq!(rel.healthy, Some(false));
    assert_eq!(
        rel.unhealthy_reason.unwrap()[0].code.as_deref(),
        Some("6621444")
    );
    assert_eq!(rel.policy.unwrap().kind, Some(SnapmirrorPolicyType::Async));
    assert_eq!(rel.transfer.unwrap().bytes_transferred, Some(1024));

    let seen = mock.recorded();
    assert_eq!(
        seen[0].body,
        Some(
            json!({"source": {"path": "vs0:vol1"}, "destination": {"path": "vs1:vol1_dst"},
                    "policy": {"name": "MirrorAllSnapshots"}, "create_destination": {"enabled": true}})
        )
    );
    let patches: Vec<_> = seen
        .iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| {
            assert_eq!(r.path, item);
            r.body.clone().unwrap()["state"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        patches,
        [
            "snapmirrored",
            "broken_off",
            "snapmirrored",
            "paused",
            "snapmirrored"
        ]
    );
    let post_transfer = seen.iter().find(|r| r.path == transfers).unwrap();
    assert_eq!(post_transfer.body, Some(json!({})));
    let lookup = seen.last().unwrap();
    assert_eq!(
        lookup.query.as_deref(),
        Some("destination.path=vs1:vol1_dst&return_timeout=120")
    );
    assert_eq!(rels.transfers("r-u").path(), transfers);
}
