//! Accessors for LUNs, igroups, LUN maps, iSCSI services/credentials and interfaces.

mod common;

use common::{fixture, MockOntap};
use ontap_client::models::*;
use ontap_client::{Query, SecretString};
use serde_json::json;

#[tokio::test]
async fn lun_create_returns_hydrated_record() {
    let mock = MockOntap::start().await;
    mock.on(
        "POST",
        "/api/storage/luns",
        201,
        fixture("lun_post_return_records.json"),
    );
    let created = mock
        .client()
        .luns()
        .create(&LunCreate::new(
            "svm1",
            "/vol/vol1/lun1",
            LunOsType::Linux,
            300 * GIB,
        ))
        .await
        .unwrap();
    let lun = created.record.unwrap();
    assert_eq!(lun.serial_number.as_deref(), Some("wf0Iq+N4uck3"));
    assert_eq!(lun.size(), Some(322_163_441_664));
    let req = mock.single();
    assert_eq!(req.params(), ["return_records=true", "return_timeout=30"]);
    assert_eq!(
        req.body,
        Some(
            json!({"svm": {"name": "svm1"}, "name": "/vol/vol1/lun1", "os_type": "linux",
                    "space": {"size": 322122547200u64}})
        )
    );
}

#[tokio::test]
async fn lun_by_name_resize_delete() {
    let mock = MockOntap::start().await;
    let lun = fixture("lun_hydrated.json");
    mock.on(
        "GET",
        "/api/storage/luns",
        200,
        json!({"num_records": 1, "records": [lun]}),
    );
    let item = "/api/storage/luns/5a24ae5b-28af-47fb-b129-5adf6cfba0a6";
    mock.on("PATCH", item, 200, json!({}));
    mock.on("DELETE", item, 200, json!({}));
    let luns = mock.client().luns();
    let found = luns
        .by_name("svm1", "/vol/vol1/lun1")
        .await
        .unwrap()
        .unwrap();
    let uuid = found.uuid.unwrap();
    luns.resize(&uuid, 400 * GIB).await.unwrap();
    luns.delete(&uuid).await.unwrap();
    let seen = mock.recorded();
    assert_eq!(
        seen[0].params(),
        ["name=/vol/vol1/lun1", "return_timeout=120", "svm.name=svm1"]
    );
    assert_eq!(
        (seen[1].method.as_str(), seen[1].path.as_str()),
        ("PATCH", item)
    );
    assert_eq!(
        seen[1].body,
        Some(json!({"space": {"size": 429496729600u64}}))
    );
    assert_eq!(
        (seen[2].method.as_str(), seen[2].path.as_str()),
        ("DELETE", item)
    );
}

#[tokio::test]
async fn igroup_create_and_initiators() {
    let mock = MockOntap::start().await;
    mock.on(
        "POST",
        "/api/protocols/san/igroups",
        201,
        json!({"num_records": 1, "records": [fixture("igroup_hydrated.json")]}),
    );
    let ig_uuid = "8f249e7d-ab9f-11e8-b8a3-005056bb7072";
    let initiators = format!("/api/protocols/san/igroups/{ig_uuid}/initiators");
    mock.on(
        "POST",
        &initiators,
        201,
        json!({"num_records": 2, "records": [
        {"name": "iqn.1994-05.com.redhat:h2"}, {"name": "iqn.1994-05.com.redhat:h3"}]}),
    );
    let one = format!("{initiators}/iqn.1994-05.com.redhat%3Ah2");
    mock.on("DELETE", &one, 200, json!({}));
    let igroups = mock.client().igroups();
    let created = igroups
        .create(
            &IgroupCreate::new(
                "igroup1",
                "svm1",
                IgroupProtocol::Iscsi,
                IgroupOsType::Linux,
            )
            .initiator("iqn.1994-05.com.redhat:h1"),
        )
        .await
        .unwrap();
    let ig = created.record.unwrap();
    assert_eq!(ig.uuid.as_deref(), Some(ig_uuid));
    assert_eq!(ig.protocol, Some(IgroupProtocol::Iscsi));
    let added = igroups
        .add_initiators(
            ig_uuid,
            ["iqn.1994-05.com.redhat:h2", "iqn.1994-05.com.redhat:h3"],
        )
        .await
        .unwrap();
    assert_eq!(
        added.record.unwrap().name.as_deref(),
        Some("iqn.1994-05.com.redhat:h2")
    );
    igroups
        .remove_initiator(ig_uuid, "iqn.1994-05.com.redhat:h2")
        .await
        .unwrap();
    let seen = mock.recorded();
    assert_eq!(
        seen[0].body,
        Some(
            json!({"name": "igroup1", "svm": {"name": "svm1"}, "protocol": "iscsi",
                    "os_type": "linux", "initiators": [{"name": "iqn.1994-05.com.redhat:h1"}]})
        )
    );
    assert_eq!(seen[1].path, initiators);
    assert_eq!(
        seen[1].body,
        Some(json!({"records": [{"name": "iqn.1994-05.com.redhat:h2"},
                                {"name": "iqn.1994-05.com.redhat:h3"}]}))
    );
    assert_eq!(
        (seen[2].method.as_str(), seen[2].path.as_str()),
        ("DELETE", one.as_str())
    );
}

#[tokio::test]
async fn lun_map_create_get_unmap() {
    let mock = MockOntap::start().await;
    let records = fixture("lun_map_records.json");
    let mut created = records[0].clone();
    created["logical_unit_number"] = json!(0);
    mock.on(
        "POST",
        "/api/protocols/san/lun-maps",
        201,
        json!({"num_records": 1, "records": [created.clone()]}),
    );
    let item = "/api/protocols/san/lun-maps/a60d9862-9bee-49a6-8162-20d2421bb1a6/40d98b2c-24c5-11e9-9ec1-005056bba643";
    mock.on("GET", item, 200, created);
    mock.on("DELETE", item, 200, json!({}));
    let maps = mock.client().lun_maps();
    let map = maps
        .create(&LunMapCreate::new("svm1", "/vol/vol1/lun1", "ig1"))
        .await
        .unwrap()
        .record
        .unwrap();
    assert_eq!(map.logical_unit_number, Some(0));
    let lun_uuid = "a60d9862-9bee-49a6-8162-20d2421bb1a6";
    let ig_uuid = "40d98b2c-24c5-11e9-9ec1-005056bba643";
    let got = maps.get_map(lun_uuid, ig_uuid).await.unwrap();
    assert_eq!(got.igroup.unwrap().name.as_deref(), Some("ig1"));
    maps.unmap(lun_uuid, ig_uuid).await.unwrap();
    let seen = mock.recorded();
    assert_eq!(
        seen[0].body,
        Some(
            json!({"svm": {"name": "svm1"}, "lun": {"name": "/vol/vol1/lun1"}, "igroup": {"name": "ig1"}})
        )
    );
    assert_eq!(
        (seen[1].method.as_str(), seen[1].path.as_str()),
        ("GET", item)
    );
    assert_eq!(
        (seen[2].method.as_str(), seen[2].path.as_str()),
        ("DELETE", item)
    );
}

#[tokio::test]
async fn iscsi_service_create_and_get() {
    let mock = MockOntap::start().await;
    let svm_uuid = "19d04b8e-94d7-11e8-8370-005056b48fd2";
    mock.on(
        "POST",
        "/api/protocols/san/iscsi/services",
        201,
        json!({"num_records": 1, "records": [fixture("iscsi_service_hydrated.json")]}),
    );
    mock.on(
        "GET",
        &format!("/api/protocols/san/iscsi/services/{svm_uuid}"),
        200,
        fixture("iscsi_service_hydrated.json"),
    );
    mock.on(
        "PATCH",
        &format!("/api/protocols/san/iscsi/services/{svm_uuid}"),
        200,
        json!({}),
    );
    let svcs = mock.client().iscsi_services();
    svcs.create(&IscsiServiceCreate::new("svm1").enabled(true).alias("svm1"))
        .await
        .unwrap();
    let svc = svcs
        .get(svm_uuid, &Query::new().fields(["target", "enabled"]))
        .await
        .unwrap();
    assert_eq!(
        svc.target.unwrap().name.as_deref(),
        Some("iqn.1992-08.com.netapp:sn.19d04b8e94d711e88370005056b48fd2:vs.4")
    );
    svcs.patch(svm_uuid, &IscsiServiceCreate::patch().enabled(false))
        .await
        .unwrap();
    let seen = mock.recorded();
    assert_eq!(
        seen[0].body,
        Some(json!({"svm": {"name": "svm1"}, "enabled": true, "target": {"alias": "svm1"}}))
    );
    assert_eq!(seen[1].query.as_deref(), Some("fields=target,enabled"));
    assert_eq!(seen[2].body, Some(json!({"enabled": false})));
}

#[tokio::test]
async fn iscsi_chap_credentials_secret_only_in_body() {
    let mock = MockOntap::start().await;
    mock.on(
        "POST",
        "/api/protocols/san/iscsi/credentials",
        201,
        json!({}),
    );
    let body = IscsiCredentialsCreate::chap(
        "svm1",
        "iqn.1994-05.com.redhat:h1",
        "chapuser",
        SecretString::from("Very-Secret-Chap-1"),
    );
    let created = mock
        .client()
        .iscsi_credentials()
        .create(&body)
        .await
        .unwrap();
    assert!(created.record.is_none());
    let req = mock.single();
    assert_eq!(
        req.query.as_deref(),
        Some("return_records=true&return_timeout=30")
    );
    assert_eq!(
        req.body,
        Some(
            json!({"svm": {"name": "svm1"}, "initiator": "iqn.1994-05.com.redhat:h1",
                    "authentication_type": "chap",
                    "chap": {"inbound": {"user": "chapuser", "password": "Very-Secret-Chap-1"}}})
        )
    );
    assert!(!format!("{body:?}").contains("Very-Secret-Chap-1"));
    assert!(!format!("{created:?}").contains("Very-Secret-Chap-1"));
}

#[tokio::test]
async fn data_lifs_filter_by_service() {
    let mock = MockOntap::start().await;
    mock.on(
        "GET",
        "/api/network/ip/interfaces",
        200,
        json!({"num_records": 2, "records": [
        {"uuid": "l1", "name": "lif1", "ip": {"address": "10.0.0.11"},
         "services": ["data_core", "data_iscsi"], "state": "up"},
        {"uuid": "l2", "name": "lif2", "ip": {"address": "10.0.0.12"},
         "services": ["data_core", "data_nfs"], "state": "up"}]}),
    );
    let lifs = mock
        .client()
        .ip_interfaces()
        .data_lifs("svm1", &IpService::DataIscsi)
        .await
        .unwrap();
    // lif2 does not offer data_iscsi (a server that ignored the filter): dropped.
    assert_eq!(lifs.len(), 1);
    assert_eq!(lifs[0].address(), Some("10.0.0.11"));
    assert_eq!(
        mock.single().query.as_deref(),
        Some("fields=name,svm,ip,services,state,enabled,location,uuid&svm.name=svm1&services=data_iscsi")
    );
}

#[tokio::test]
async fn fc_interfaces_of_svm() {
    let mock = MockOntap::start().await;
    mock.on(
        "GET",
        "/api/network/fc/interfaces",
        200,
        json!({"num_records": 1, "records": [fixture("fc_interface_get.json")]}),
    );
    let lifs = mock.client().fc_interfaces().of_svm("svm1").await.unwrap();
    assert_eq!(lifs[0].wwpn.as_deref(), Some("20:04:00:50:56:bb:a0:e0"));
    let req = mock.single();
    assert_eq!(
        req.query.as_deref(),
        Some("fields=name,svm,wwpn,wwnn,data_protocol,state,enabled,location&svm.name=svm1")
    );
}
