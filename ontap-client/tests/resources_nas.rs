//! Accessors for NFS export policies/rules and SMB shares.

mod common;

use common::MockOntap;
use ontap_client::models::*;
use ontap_client::{Api, Query};
use serde_json::json;

#[tokio::test]
async fn export_policy_create_with_rule() {
    let mock = MockOntap::start().await;
    mock.on(
        "POST",
        "/api/protocols/nfs/export-policies",
        201,
        json!({"num_records": 1, "records": [{"id": 8589934594u64, "name": "kvm",
               "svm": {"name": "svm1"}}]}),
    );
    let created = mock
        .client()
        .export_policies()
        .create(
            &ExportPolicyCreate::new("kvm", "svm1").rule(
                ExportRuleCreate::new()
                    .client("10.0.0.0/24")
                    .ro([NfsSecurityFlavor::Sys])
                    .rw([NfsSecurityFlavor::Sys])
                    .superuser([NfsSecurityFlavor::Sys])
                    .protocols([ExportProtocol::Nfs]),
            ),
        )
        .await
        .unwrap();
    assert_eq!(created.record.unwrap().id, Some(8_589_934_594));
    let req = mock.single();
    assert_eq!(req.params(), ["return_records=true", "return_timeout=30"]);
    assert_eq!(
        req.body,
        Some(json!({"name": "kvm", "svm": {"name": "svm1"}, "rules": [{
            "clients": [{"match": "10.0.0.0/24"}], "ro_rule": ["sys"], "rw_rule": ["sys"],
            "superuser": ["sys"], "protocols": ["nfs"]}]}))
    );
}

#[tokio::test]
async fn export_rule_add_list_delete() {
    let mock = MockOntap::start().await;
    let rules = "/api/protocols/nfs/export-policies/8589934594/rules";
    mock.on(
        "POST",
        rules,
        201,
        json!({"num_records": 1, "records": [{"index": 2,
        "clients": [{"match": "10.0.0.7"}], "rw_rule": ["sys"]}]}),
    );
    mock.on(
        "GET",
        rules,
        200,
        json!({"num_records": 2, "records": [
        {"index": 1, "clients": [{"match": "10.0.0.0/24"}]},
        {"index": 2, "clients": [{"match": "10.0.0.7"}], "rw_rule": ["sys"]}]}),
    );
    mock.on("DELETE", &format!("{rules}/2"), 200, json!({}));
    let policies = mock.client().export_policies();
    let added = policies
        .add_rule(
            8_589_934_594,
            &ExportRuleCreate::new()
                .client("10.0.0.7")
                .rw([NfsSecurityFlavor::Sys]),
        )
        .await
        .unwrap()
        .record
        .unwrap();
    assert_eq!(added.index, Some(2));
    let all = policies
        .rules(8_589_934_594)
        .list_all(&Query::new())
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(
        all[1].clients.as_ref().unwrap()[0].match_.as_deref(),
        Some("10.0.0.7")
    );
    assert_eq!(all[1].rw_rule, Some(vec![NfsSecurityFlavor::Sys]));
    policies.rules(8_589_934_594).delete("2").await.unwrap();
    let seen = mock.recorded();
    assert_eq!(
        seen.iter()
            .map(|r| (r.method.as_str(), r.path.as_str()))
            .collect::<Vec<_>>(),
        [
            ("POST", rules),
            ("GET", rules),
            (
                "DELETE",
                "/api/protocols/nfs/export-policies/8589934594/rules/2"
            )
        ]
    );
    assert_eq!(
        seen[0].body,
        Some(json!({"clients": [{"match": "10.0.0.7"}], "rw_rule": ["sys"]}))
    );
}

#[tokio::test]
async fn export_policy_by_name() {
    let mock = MockOntap::start().await;
    mock.on(
        "GET",
        "/api/protocols/nfs/export-policies",
        200,
        json!({"num_records": 1, "records": [{"id": 5, "name": "default"}]}),
    );
    let p = mock
        .client()
        .export_policies()
        .by_name("svm1", "default")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.id, Some(5));
    assert_eq!(
        mock.single().params(),
        ["name=default", "return_timeout=120", "svm.name=svm1"]
    );
}

#[tokio::test]
async fn cifs_share_keyed_by_svm_and_name() {
    let mock = MockOntap::start().await;
    let item = "/api/protocols/cifs/shares/s-u/vm%20store";
    mock.on("POST", "/api/protocols/cifs/shares", 201, json!({}));
    mock.on(
        "GET",
        item,
        200,
        json!({
        "name": "vm store", "path": "/vmstore", "svm": {"uuid": "s-u", "name": "svm1"},
        "continuously_available": true,
        "acls": [{"user_or_group": "Everyone", "permission": "full_control", "type": "windows"}]}),
    );
    mock.on("DELETE", item, 200, json!({}));
    let shares = mock.client().cifs_shares();
    shares
        .create(&CifsShareCreate::new("vm store", "svm1", "/vmstore").continuously_available(true))
        .await
        .unwrap();
    let share = shares
        .get_share("s-u", "vm store", &Query::new())
        .await
        .unwrap();
    assert_eq!(share.continuously_available, Some(true));
    let acl = &share.acls.as_ref().unwrap()[0];
    assert_eq!(acl.permission, Some(CifsPermission::FullControl));
    assert_eq!(acl.kind, Some(CifsAclType::Windows));
    shares.delete_share("s-u", "vm store").await.unwrap();
    assert_eq!(
        Api::<CifsShare>::share_key("s-u", "vm store"),
        "s-u/vm store"
    );
    assert_eq!(shares.item_path("s-u/vm store"), item);
    let seen = mock.recorded();
    assert_eq!(
        seen[0].body,
        Some(
            json!({"name": "vm store", "svm": {"name": "svm1"}, "path": "/vmstore",
                    "continuously_available": true})
        )
    );
    // The space goes over the wire as %20; the `/` between the key parts stays.
    assert_eq!(
        (seen[1].method.as_str(), seen[1].path.as_str()),
        ("GET", item)
    );
    assert_eq!(
        (seen[2].method.as_str(), seen[2].path.as_str()),
        ("DELETE", item)
    );
}
