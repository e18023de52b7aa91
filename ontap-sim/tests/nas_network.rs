//! Export policies and rules, CIFS shares, IP interfaces.

mod common;

use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn export_policy_with_inline_rules() -> anyhow::Result<()> {
    let env = common::start().await?;
    let r = env
        .call(Method::POST, "/api/protocols/nfs/export-policies?return_records=true",
              Some(json!({"name": "kvm", "svm": {"name": "svm1"},
                          "rules": [{"clients": [{"match": "10.0.0.0/24"}], "ro_rule": ["sys"],
                                     "rw_rule": ["sys"], "superuser": ["sys"], "protocols": ["nfs4"]}]})))
        .await?;
    assert_eq!(r.status, 201);
    let p = &r.body["records"][0];
    let id = p["id"].as_u64().unwrap();
    assert_eq!(
        r.header("location"),
        Some(format!("/api/protocols/nfs/export-policies/{id}").as_str())
    );
    assert_eq!(p["rules"][0]["index"], 1);
    assert_eq!(p["rules"][0]["clients"], json!([{"match": "10.0.0.0/24"}]));
    // Add a rule at the front, list rules.
    let r = env
        .post(&format!("/api/protocols/nfs/export-policies/{id}/rules"),
              json!({"clients": [{"match": "host1"}], "ro_rule": ["any"], "rw_rule": ["never"], "index": 1}))
        .await?;
    assert_eq!(r.status, 201);
    let rules = env
        .get(&format!(
            "/api/protocols/nfs/export-policies/{id}/rules?fields=clients"
        ))
        .await?;
    let order: Vec<&str> = rules.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["clients"][0]["match"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["host1", "10.0.0.0/24"]);
    let dup = env
        .post(
            &format!("/api/protocols/nfs/export-policies/{id}/rules"),
            json!({"clients": [{"match": "host1"}], "ro_rule": ["any"], "rw_rule": ["any"]}),
        )
        .await?;
    assert_eq!(dup.status, 409);
    assert_eq!(dup.body["error"]["code"], "1704070");
    let bad = env
        .post(
            &format!("/api/protocols/nfs/export-policies/{id}/rules"),
            json!({"clients": [{"match": "h2"}], "ro_rule": ["plain"]}),
        )
        .await?;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["error"]["code"], "262185");
    let d = env
        .delete(&format!("/api/protocols/nfs/export-policies/{id}/rules/1"))
        .await?;
    assert_eq!(d.status, 200);
    let g = env
        .get(&format!("/api/protocols/nfs/export-policies/{id}/rules/1"))
        .await?;
    assert_eq!(g.body["clients"], json!([{"match": "10.0.0.0/24"}]));

    // A volume uses the policy: it cannot be deleted.
    env.create_volume(
        json!({"name": "nfsv", "svm": {"name": "svm1"}, "aggregates": [{"name": "aggr1"}],
                              "nas": {"path": "/nfsv", "export_policy": {"name": "kvm"}}}),
    )
    .await?;
    let v = env.find("/api/storage/volumes", "nfsv").await?;
    assert_eq!(v["nas"]["export_policy"], json!({"name": "kvm", "id": id}));
    let d = env
        .delete(&format!("/api/protocols/nfs/export-policies/{id}"))
        .await?;
    assert_eq!(d.status, 409);
    assert_eq!(d.body["error"]["code"], "1703945");
    let dup = env
        .post(
            "/api/protocols/nfs/export-policies",
            json!({"name": "kvm", "svm": {"name": "svm1"}}),
        )
        .await?;
    assert_eq!(dup.status, 409);
    let missing = env
        .post(
            "/api/storage/volumes",
            json!({"name": "x", "svm": {"name": "svm1"}, "aggregates": [{"name": "aggr1"}],
                                             "nas": {"export_policy": {"name": "nope"}}}),
        )
        .await?;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["error"]["code"], "1703954");
    Ok(())
}

#[tokio::test]
async fn cifs_shares() -> anyhow::Result<()> {
    let env = common::start().await?;
    let r = env
        .post(
            "/api/protocols/cifs/shares",
            json!({"name": "s1", "svm": {"name": "svm1"}, "path": "/nope"}),
        )
        .await?;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["code"], "655551");
    env.create_volume(
        json!({"name": "smb", "svm": {"name": "svm1"}, "aggregates": [{"name": "aggr1"}],
                              "nas": {"path": "/smb", "security_style": "ntfs"}}),
    )
    .await?;
    let r = env
        .post("/api/protocols/cifs/shares",
              json!({"name": "s1", "svm": {"name": "svm1"}, "path": "/smb",
                     "acls": [{"permission": "read", "type": "windows", "user_or_group": "Everyone"}]}))
        .await?;
    assert_eq!(r.status, 201);
    let loc = r.header("location").unwrap().to_string();
    let g = env.get(&loc).await?;
    assert_eq!(g.body["path"], "/smb");
    assert_eq!(
        g.body["acls"],
        json!([{"permission": "read", "type": "windows", "user_or_group": "Everyone"}])
    );
    let l = env.get("/api/protocols/cifs/shares?svm.name=svm1").await?;
    assert_eq!(l.body["num_records"], 1);
    assert_eq!(l.body["records"][0]["name"], "s1");
    assert_eq!(l.body["records"][0]["svm"]["name"], "svm1");
    let dup = env
        .post(
            "/api/protocols/cifs/shares",
            json!({"name": "S1", "svm": {"name": "svm1"}, "path": "/smb"}),
        )
        .await?;
    assert_eq!(dup.status, 409);
    let p = env
        .patch(&loc, json!({"comment": "hi", "unix_symlink": "widelink"}))
        .await?;
    assert_eq!(p.status, 200);
    let d = env.delete(&loc).await?;
    assert_eq!(d.status, 200);
    assert_eq!(env.get(&loc).await?.status, 404);
    Ok(())
}

#[tokio::test]
async fn ip_interfaces_create_and_delete() -> anyhow::Result<()> {
    let env = common::start().await?;
    let r = env
        .call(
            Method::POST,
            "/api/network/ip/interfaces?return_records=true",
            Some(json!({"name": "lif_new", "svm": {"name": "svm1"},
                          "ip": {"address": "192.0.2.50", "netmask": "24"},
                          "location": {"home_node": {"name": "sim-cluster-02"}},
                          "service_policy": {"name": "default-data-nvme-tcp"}})),
        )
        .await?;
    assert_eq!(r.status, 201);
    let rec = &r.body["records"][0];
    assert_eq!(rec["services"], json!(["data_core", "data_nvme_tcp"]));
    assert_eq!(rec["location"]["home_node"]["name"], "sim-cluster-02");
    let l = env
        .get("/api/network/ip/interfaces?services=data_nvme_tcp&svm.name=svm1&fields=ip.address")
        .await?;
    assert_eq!(l.body["num_records"], 3);
    let dup = env
        .post(
            "/api/network/ip/interfaces",
            json!({"name": "lif_other", "svm": {"name": "svm1"}, "ip": {"address": "192.0.2.50"}}),
        )
        .await?;
    assert_eq!(dup.status, 409);
    let d = env
        .delete(&format!(
            "/api/network/ip/interfaces/{}",
            rec["uuid"].as_str().unwrap()
        ))
        .await?;
    assert_eq!(d.status, 200);
    let l = env
        .get("/api/network/ip/interfaces?services=data_nvme_tcp")
        .await?;
    assert_eq!(l.body["num_records"], 2);
    Ok(())
}

#[tokio::test]
async fn svm_lifecycle_brings_protocol_services() -> anyhow::Result<()> {
    let env = common::start().await?;
    let r = env
        .get("/api/protocols/nfs/services?fields=protocol.v4_enabled")
        .await?;
    assert_eq!(r.body["num_records"], 1);
    assert_eq!(r.body["records"][0]["svm"]["name"], "svm1");
    assert_eq!(r.body["records"][0]["protocol"]["v4_enabled"], true);
    let (_, job) = env
        .run_job(
            Method::POST,
            "/api/svm/svms",
            Some(json!({"name": "svm2", "nfs": {"enabled": true}, "iscsi": {"enabled": true}})),
        )
        .await?;
    assert_eq!(job["state"], "success");
    let svm2 = env.find("/api/svm/svms", "svm2").await?;
    let u2 = svm2["uuid"].as_str().unwrap().to_string();
    let nfs = env
        .get(&format!("/api/protocols/nfs/services/{u2}"))
        .await?;
    assert_eq!(nfs.body["enabled"], true);
    let cifs = env
        .get(&format!("/api/protocols/cifs/services/{u2}"))
        .await?;
    assert_eq!(cifs.status, 404);
    let pol = env
        .get("/api/protocols/nfs/export-policies?svm.name=svm2&fields=name")
        .await?;
    assert_eq!(pol.body["records"][0]["name"], "default");
    let dup = env.post("/api/svm/svms", json!({"name": "svm2"})).await?;
    assert_eq!(dup.status, 409);

    let vu = env
        .create_volume(
            json!({"name": "v", "svm": {"name": "svm2"}, "aggregates": [{"name": "aggr1"}]}),
        )
        .await?;
    let (_, job) = env
        .run_job(Method::DELETE, &format!("/api/svm/svms/{u2}"), None)
        .await?;
    assert_eq!(job["state"], "failure");
    env.run_job(Method::DELETE, &format!("/api/storage/volumes/{vu}"), None)
        .await?;
    let (_, job) = env
        .run_job(Method::DELETE, &format!("/api/svm/svms/{u2}"), None)
        .await?;
    assert_eq!(job["state"], "success");
    assert_eq!(
        env.get(&format!("/api/protocols/nfs/services/{u2}"))
            .await?
            .status,
        404
    );
    let pol = env
        .get("/api/protocols/nfs/export-policies?svm.name=svm2")
        .await?;
    assert_eq!(pol.body["num_records"], 0);
    Ok(())
}

#[tokio::test]
async fn cifs_share_acls() -> anyhow::Result<()> {
    let env = common::start().await?;
    env.create_volume(
        json!({"name": "acl", "svm": {"name": "svm1"}, "aggregates": [{"name": "aggr1"}],
                              "nas": {"path": "/acl"}}),
    )
    .await?;
    let r = env
        .post(
            "/api/protocols/cifs/shares",
            json!({"name": "a1", "svm": {"name": "svm1"}, "path": "/acl"}),
        )
        .await?;
    let loc = r.header("location").unwrap().to_string();
    let r = env
        .post(
            &format!("{loc}/acls"),
            json!({"user_or_group": "kvm-admins", "permission": "change"}),
        )
        .await?;
    assert_eq!(r.status, 201);
    assert_eq!(
        r.header("location"),
        Some(format!("{loc}/acls/kvm-admins/windows").as_str())
    );
    let l = env
        .get(&format!(
            "{loc}/acls?fields=permission&order_by=user_or_group"
        ))
        .await?;
    let got: Vec<(&str, &str)> = l.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["user_or_group"].as_str().unwrap(),
                a["permission"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [("Everyone", "full_control"), ("kvm-admins", "change")]
    );
    let dup = env
        .post(
            &format!("{loc}/acls"),
            json!({"user_or_group": "KVM-admins", "permission": "read"}),
        )
        .await?;
    assert_eq!(dup.status, 409);
    let p = env
        .patch(
            &format!("{loc}/acls/Everyone/windows"),
            json!({"permission": "read"}),
        )
        .await?;
    assert_eq!(p.status, 200);
    let g = env.get(&format!("{loc}/acls/Everyone/windows")).await?;
    assert_eq!(g.body["permission"], "read");
    let d = env.delete(&format!("{loc}/acls/Everyone/windows")).await?;
    assert_eq!(d.status, 200);
    let g = env.get(&format!("{loc}/acls/Everyone/windows")).await?;
    assert_eq!(
        (g.status, g.body["error"]["code"].as_str()),
        (404, Some("655516"))
    );
    let share = env.get(&loc).await?;
    assert_eq!(
        share.body["acls"],
        json!([{"user_or_group": "kvm-admins", "type": "windows", "permission": "change"}])
    );
    Ok(())
}
