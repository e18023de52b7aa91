//! NVMe: services, namespaces, subsystems, hosts and subsystem maps over HTTPS.

mod common;

use serde_json::{json, Value};

const HOST1: &str = "nqn.2014-08.org.nvmexpress:uuid:12372496-59c4-4d1b-be09-74362c0c1afc";
const HOST2: &str = "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-0000-0000-000000000002";

async fn setup() -> anyhow::Result<(common::Env, String)> {
    let env = common::start().await?;
    let vol = env
        .create_volume(json!({"name": "nsvol", "svm": {"name": "svm1"},
                              "aggregates": [{"name": "aggr1"}], "size": "10GB"}))
        .await?;
    Ok((env, vol))
}

async fn create_ns(env: &common::Env, name: &str) -> anyhow::Result<Value> {
    let r = env
        .post(
            "/api/storage/namespaces?return_records=true",
            json!({"svm": {"name": "svm1"}, "name": name, "os_type": "linux",
                   "space": {"size": "1G"}}),
        )
        .await?;
    anyhow::ensure!(
        r.status == 201,
        "namespace create answered {}: {}",
        r.status,
        r.body
    );
    Ok(r.body["records"][0].clone())
}

async fn create_sub(env: &common::Env, name: &str, hosts: &[&str]) -> anyhow::Result<common::Resp> {
    let hosts: Vec<Value> = hosts.iter().map(|h| json!({"nqn": h})).collect();
    env.post(
        "/api/protocols/nvme/subsystems?return_records=true",
        json!({"svm": {"name": "svm1"}, "name": name, "os_type": "linux", "hosts": hosts}),
    )
    .await
}

#[tokio::test]
async fn namespaces_share_paths_with_luns() -> anyhow::Result<()> {
    let (env, vol) = setup().await?;
    let ns = create_ns(&env, "/vol/nsvol/ns1").await?;
    assert_eq!(ns["space"]["size"], 1u64 << 30);
    assert_eq!(ns["space"]["block_size"], 4096);
    assert_eq!(ns["location"]["namespace"], "ns1");
    assert_eq!(ns["location"]["volume"]["uuid"], json!(vol));
    assert_eq!(ns["status"]["mapped"], false);
    let uuid = ns["uuid"].as_str().unwrap();
    assert_eq!(uuid.len(), 36);

    let lun = env
        .post(
            "/api/storage/luns",
            json!({"svm": {"name": "svm1"}, "name": "/vol/nsvol/ns1",
                                           "os_type": "linux", "space": {"size": "1M"}}),
        )
        .await?;
    assert_eq!(
        (lun.status, lun.body["error"]["code"].as_str()),
        (409, Some("5374242"))
    );
    let dup = env
        .post(
            "/api/storage/namespaces",
            json!({"svm": {"name": "svm1"}, "name": "/vol/nsvol/ns1",
                                                 "os_type": "linux", "space": {"size": "1M"}}),
        )
        .await?;
    assert_eq!(
        (dup.status, dup.body["error"]["code"].as_str()),
        (409, Some("72089725"))
    );
    let bs = env
        .post(
            "/api/storage/namespaces",
            json!({"svm": {"name": "svm1"}, "name": "/vol/nsvol/ns2",
                                                 "os_type": "linux",
                                                 "space": {"size": "1M", "block_size": 1024}}),
        )
        .await?;
    assert_eq!(bs.body["error"]["code"], "262185");
    let small = env
        .post(
            "/api/storage/namespaces",
            json!({"svm": {"name": "svm1"}, "name": "/vol/nsvol/ns2",
                                                 "os_type": "linux", "space": {"size": 10}}),
        )
        .await?;
    assert_eq!(small.body["error"]["code"], "72089723");
    let grow = env
        .patch(
            &format!("/api/storage/namespaces/{uuid}"),
            json!({"space": {"size": "2G"}}),
        )
        .await?;
    assert_eq!(grow.status, 200);
    // Namespaces are thin: growing one reserves nothing in the volume.
    let v = env
        .get(&format!("/api/storage/volumes/{vol}?fields=space.used"))
        .await?;
    assert_eq!(v.body["space"]["used"], 0);
    let del = env
        .delete(&format!("/api/storage/namespaces/{uuid}"))
        .await?;
    assert_eq!(del.status, 200);
    let gone = env
        .delete(&format!("/api/storage/namespaces/{uuid}"))
        .await?;
    assert_eq!(
        (gone.status, gone.body["error"]["code"].as_str()),
        (404, Some("72090006"))
    );
    Ok(())
}

#[tokio::test]
async fn subsystems_hosts_and_maps() -> anyhow::Result<()> {
    let (env, _) = setup().await?;
    let svm = env.find("/api/svm/svms", "svm1").await?;
    let svm_hex: String = svm["uuid"].as_str().unwrap().replace('-', "");

    let r = create_sub(&env, "kvm1", &[HOST1]).await?;
    assert_eq!(r.status, 201, "{}", r.body);
    let sub = r.body["records"][0].clone();
    let sub_uuid = sub["uuid"].as_str().unwrap().to_string();
    assert_eq!(
        sub["target_nqn"],
        json!(format!(
            "nqn.1992-08.com.netapp:sn.{svm_hex}:subsystem.kvm1"
        ))
    );
    assert_eq!(sub["hosts"][0]["nqn"], HOST1);
    assert_eq!(sub["serial_number"].as_str().map(str::len), Some(20));

    let dup = create_sub(&env, "kvm1", &[]).await?;
    assert_eq!(
        (dup.status, dup.body["error"]["code"].as_str()),
        (409, Some("72090025"))
    );
    let bad = create_sub(&env, "kvm2", &["iqn.1994-05.com.redhat:x"]).await?;
    assert_eq!(bad.body["error"]["code"], "72089772");
    let bad_date = create_sub(&env, "kvm2", &["nqn.14-08.org.x"]).await?;
    assert_eq!(bad_date.body["error"]["code"], "72089773");
    let twice = create_sub(&env, "kvm2", &[HOST2, HOST2]).await?;
    assert_eq!(twice.body["error"]["code"], "72090036");

    let hosts = format!("/api/protocols/nvme/subsystems/{sub_uuid}/hosts");
    let add = env.post(&hosts, json!({"nqn": HOST2})).await?;
    assert_eq!(add.status, 201);
    let again = env.post(&hosts, json!({"nqn": HOST2})).await?;
    assert_eq!(
        (again.status, again.body["error"]["code"].as_str()),
        (409, Some("72089705"))
    );
    let list = env.get(&hosts).await?;
    assert_eq!(list.body["num_records"], 2);

    let ns1 = create_ns(&env, "/vol/nsvol/a").await?;
    let ns2 = create_ns(&env, "/vol/nsvol/b").await?;
    let m1 = env
        .post(
            "/api/protocols/nvme/subsystem-maps?return_records=true",
            json!({"svm": {"name": "svm1"}, "subsystem": {"name": "kvm1"},
                     "namespace": {"name": "/vol/nsvol/a"}}),
        )
        .await?;
    assert_eq!(m1.status, 201, "{}", m1.body);
    assert_eq!(m1.body["records"][0]["nsid"], "00000001h");
    assert_eq!(m1.body["records"][0]["anagrpid"], "00000001h");
    let m2 = env
        .post(
            "/api/protocols/nvme/subsystem-maps?return_records=true",
            json!({"subsystem": {"uuid": sub_uuid}, "namespace": {"uuid": ns2["uuid"]}}),
        )
        .await?;
    assert_eq!(m2.body["records"][0]["nsid"], "00000002h");

    // A namespace maps to one subsystem only.
    let other = create_sub(&env, "kvm2", &[]).await?;
    assert_eq!(other.status, 201);
    let again = env
        .post(
            "/api/protocols/nvme/subsystem-maps",
            json!({"svm": {"name": "svm1"}, "subsystem": {"name": "kvm2"},
                     "namespace": {"name": "/vol/nsvol/a"}}),
        )
        .await?;
    assert_eq!(
        (again.status, again.body["error"]["code"].as_str()),
        (409, Some("72089790"))
    );
    let missing = env
        .post(
            "/api/protocols/nvme/subsystem-maps",
            json!({"svm": {"name": "svm1"}, "subsystem": {"name": "nope"},
                     "namespace": {"name": "/vol/nsvol/a"}}),
        )
        .await?;
    assert_eq!(
        (missing.status, missing.body["error"]["code"].as_str()),
        (404, Some("72090021"))
    );

    let ns1u = ns1["uuid"].as_str().unwrap().to_string();
    let got = env.get(&format!("/api/storage/namespaces/{ns1u}")).await?;
    assert_eq!(got.body["status"]["mapped"], true);
    assert_eq!(got.body["subsystem_map"]["nsid"], "00000001h");
    assert_eq!(got.body["subsystem_map"]["subsystem"]["name"], "kvm1");
    let s = env
        .get(&format!(
            "/api/protocols/nvme/subsystems/{sub_uuid}?fields=subsystem_maps"
        ))
        .await?;
    assert_eq!(s.body["subsystem_maps"].as_array().map(Vec::len), Some(2));

    // Delete refusals, then unmap and force.
    let d = env
        .delete(&format!("/api/protocols/nvme/subsystems/{sub_uuid}"))
        .await?;
    assert_eq!(
        (d.status, d.body["error"]["code"].as_str()),
        (409, Some("72090023"))
    );
    let d = env
        .delete(&format!(
            "/api/protocols/nvme/subsystems/{sub_uuid}?allow_delete_while_mapped=true"
        ))
        .await?;
    assert_eq!(d.body["error"]["code"], "72090024");
    let ns_del = env
        .delete(&format!("/api/storage/namespaces/{ns1u}"))
        .await?;
    assert_eq!(
        (ns_del.status, ns_del.body["error"]["code"].as_str()),
        (409, Some("8"))
    );
    let un = env
        .delete(&format!(
            "/api/protocols/nvme/subsystem-maps/{sub_uuid}/{ns1u}"
        ))
        .await?;
    assert_eq!(un.status, 200);
    let un2 = env
        .delete(&format!(
            "/api/protocols/nvme/subsystem-maps/{sub_uuid}/{ns1u}"
        ))
        .await?;
    assert_eq!(
        (un2.status, un2.body["error"]["code"].as_str()),
        (404, Some("72090019"))
    );
    let remap = env
        .post(
            "/api/protocols/nvme/subsystem-maps?return_records=true",
            json!({"svm": {"name": "svm1"}, "subsystem": {"name": "kvm1"},
                     "namespace": {"name": "/vol/nsvol/a"}}),
        )
        .await?;
    assert_eq!(remap.body["records"][0]["nsid"], "00000001h");
    let d = env
        .delete(&format!(
            "/api/protocols/nvme/subsystems/{sub_uuid}?allow_delete_while_mapped=true&allow_delete_with_hosts=true"
        ))
        .await?;
    assert_eq!(d.status, 200);
    let maps = env.get("/api/protocols/nvme/subsystem-maps").await?;
    assert_eq!(maps.body["num_records"], 0);
    let got = env.get(&format!("/api/storage/namespaces/{ns1u}")).await?;
    assert_eq!(got.body["status"]["mapped"], false);
    assert!(got.body.get("subsystem_map").is_none());
    Ok(())
}

#[tokio::test]
async fn nvme_service_lifecycle() -> anyhow::Result<()> {
    let env = common::start().await?;
    let svm = env.find("/api/svm/svms", "svm1").await?;
    let u = svm["uuid"].as_str().unwrap().to_string();
    let svc = env
        .get(&format!("/api/protocols/nvme/services/{u}"))
        .await?;
    assert_eq!(svc.status, 200);
    assert_eq!(svc.body["enabled"], true);
    let dup = env
        .post(
            "/api/protocols/nvme/services",
            json!({"svm": {"name": "svm1"}}),
        )
        .await?;
    assert_eq!(
        (dup.status, dup.body["error"]["code"].as_str()),
        (409, Some("72089650"))
    );
    let on = env
        .delete(&format!("/api/protocols/nvme/services/{u}"))
        .await?;
    assert_eq!(on.body["error"]["code"], "72090028");
    create_sub(&env, "s1", &[]).await?;
    let off = env
        .patch(
            &format!("/api/protocols/nvme/services/{u}"),
            json!({"enabled": false}),
        )
        .await?;
    assert_eq!(off.status, 200);
    let busy = env
        .delete(&format!("/api/protocols/nvme/services/{u}"))
        .await?;
    assert_eq!(busy.body["error"]["code"], "72089653");
    let subs = env.get("/api/protocols/nvme/subsystems?name=s1").await?;
    let s1 = subs.body["records"][0]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        env.delete(&format!("/api/protocols/nvme/subsystems/{s1}"))
            .await?
            .status,
        200
    );
    assert_eq!(
        env.delete(&format!("/api/protocols/nvme/services/{u}"))
            .await?
            .status,
        200
    );
    let none = env
        .get(&format!("/api/protocols/nvme/services/{u}"))
        .await?;
    assert_eq!(
        (none.status, none.body["error"]["code"].as_str()),
        (404, Some("72089651"))
    );
    let no_svc = create_sub(&env, "s2", &[]).await?;
    assert_eq!(no_svc.body["error"]["code"], "72090029");
    let back = env
        .post(
            "/api/protocols/nvme/services",
            json!({"svm": {"name": "svm1"}}),
        )
        .await?;
    assert_eq!(back.status, 201);
    Ok(())
}
