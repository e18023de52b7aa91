//! SAN: LUNs, igroups, LUN maps, iSCSI services and CHAP credentials over HTTPS.

mod common;

use reqwest::Method;
use serde_json::{json, Value};

const GIB: u64 = 1024 * 1024 * 1024;
const SERIAL_CHARS: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-+?$/]";

async fn env_with_volume(name: &str, size: &str) -> anyhow::Result<(common::Env, String)> {
    let env = common::start().await?;
    let vol = env
        .create_volume(json!({"name": name, "svm": {"name": "svm1"},
                              "aggregates": [{"name": "aggr1"}], "size": size}))
        .await?;
    Ok((env, vol))
}

/// Creates a thick (space-reserved) LUN, so the volume accounts for its whole size.
async fn create_lun(env: &common::Env, path: &str, size: &str) -> anyhow::Result<Value> {
    let r = env
        .post(
            "/api/storage/luns?return_records=true",
            json!({"svm": {"name": "svm1"}, "name": path, "os_type": "linux",
                   "space": {"size": size, "guarantee": {"requested": true}}}),
        )
        .await?;
    anyhow::ensure!(
        r.status == 201,
        "LUN create answered {}: {}",
        r.status,
        r.body
    );
    Ok(r.body["records"][0].clone())
}

async fn create_igroup(
    env: &common::Env,
    name: &str,
    initiators: &[&str],
) -> anyhow::Result<String> {
    let inits: Vec<Value> = initiators.iter().map(|i| json!({"name": i})).collect();
    let r = env
        .post(
            "/api/protocols/san/igroups?return_records=true",
            json!({"svm": {"name": "svm1"}, "name": name, "os_type": "linux",
                   "protocol": "iscsi", "initiators": inits}),
        )
        .await?;
    anyhow::ensure!(
        r.status == 201,
        "igroup create answered {}: {}",
        r.status,
        r.body
    );
    Ok(r.body["records"][0]["uuid"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

async fn map(
    env: &common::Env,
    lun: &str,
    igroup: &str,
    id: Option<u64>,
) -> anyhow::Result<common::Resp> {
    let mut body =
        json!({"svm": {"name": "svm1"}, "lun": {"name": lun}, "igroup": {"name": igroup}});
    if let Some(id) = id {
        body["logical_unit_number"] = json!(id);
    }
    env.post("/api/protocols/san/lun-maps?return_records=true", body)
        .await
}

#[tokio::test]
async fn lun_create_has_serial_status_and_space() -> anyhow::Result<()> {
    let (env, vol) = env_with_volume("lunvol", "10GB").await?;
    let rec = create_lun(&env, "/vol/lunvol/lun1", "1G").await?;
    let uuid = rec["uuid"].as_str().unwrap().to_string();
    assert_eq!(rec["name"], "/vol/lunvol/lun1");
    assert_eq!(rec["location"]["logical_unit"], "lun1");
    assert_eq!(rec["location"]["volume"]["name"], "lunvol");
    assert_eq!(rec["location"]["volume"]["uuid"], json!(vol));
    assert_eq!(rec["space"]["size"], GIB);
    assert_eq!(rec["space"]["used"], 0);
    assert_eq!(rec["status"]["state"], "online");
    assert_eq!(rec["status"]["mapped"], false);
    assert_eq!(rec["os_type"], "linux");
    assert_eq!(rec["class"], "regular");
    assert_eq!(
        rec["_links"]["self"]["href"],
        json!(format!("/api/storage/luns/{uuid}"))
    );
    let serial = rec["serial_number"].as_str().unwrap();
    assert_eq!(serial.len(), 12);
    assert!(serial.chars().all(|c| SERIAL_CHARS.contains(c)), "{serial}");

    // The volume accounts for the LUN.
    let v = env
        .get(&format!("/api/storage/volumes/{vol}?fields=space"))
        .await?;
    assert_eq!(v.body["space"]["used"], GIB);

    // Default collection fields are uuid and name; filters work on LUN fields.
    let l = env.get("/api/storage/luns?svm.name=svm1").await?;
    assert_eq!(l.body["num_records"], 1);
    assert_eq!(l.body["records"][0]["name"], "/vol/lunvol/lun1");
    assert!(l.body["records"][0].get("serial_number").is_none());

    // Same path again: refused; a LUN via location{} gets a distinct serial.
    let dup = env
        .post(
            "/api/storage/luns",
            json!({"svm": {"name": "svm1"}, "name": "/vol/lunvol/lun1",
                                           "os_type": "linux", "space": {"size": 4096}}),
        )
        .await?;
    assert_eq!(
        (dup.status, dup.body["error"]["code"].as_str()),
        (409, Some("5374242"))
    );
    let r = env
        .post(
            "/api/storage/luns?return_records=true",
            json!({"svm": {"name": "svm1"}, "os_type": "windows",
                     "location": {"volume": {"name": "lunvol"}, "logical_unit": "lun2"},
                     "space": {"size": 1048576}}),
        )
        .await?;
    assert_eq!(r.status, 201);
    assert_eq!(r.body["records"][0]["name"], "/vol/lunvol/lun2");
    assert_ne!(r.body["records"][0]["serial_number"], json!(serial));
    Ok(())
}

#[tokio::test]
async fn lun_create_refusals() -> anyhow::Result<()> {
    let (env, _) = env_with_volume("small", "20MB").await?;
    let post = |body: Value| env.post("/api/storage/luns", body);
    let code = |r: &common::Resp| {
        (
            r.status,
            r.body["error"]["code"].as_str().unwrap_or("").to_string(),
        )
    };

    let r = post(
        json!({"svm": {"name": "svm1"}, "name": "/vol/small/l", "os_type": "linux",
                        "space": {"size": "1G", "guarantee": {"requested": true}}}),
    )
    .await?;
    assert_eq!(code(&r), (400, "917537".into()), "{}", r.body);
    let r = post(
        json!({"svm": {"name": "svm1"}, "name": "/vol/nosuch/l", "os_type": "linux",
                        "space": {"size": "1M"}}),
    )
    .await?;
    assert_eq!(code(&r), (404, "917927".into()));
    let r = post(json!({"svm": {"name": "svm1"}, "name": "/vol/small/l", "space": {"size": "1M"}}))
        .await?;
    assert_eq!(code(&r), (400, "262177".into()));
    assert_eq!(r.body["error"]["target"], "os_type");
    let r =
        post(json!({"svm": {"name": "svm1"}, "name": "/vol/small/l", "os_type": "linux"})).await?;
    assert_eq!(code(&r), (400, "262177".into()));
    let r = post(
        json!({"svm": {"name": "svm1"}, "name": "/vol/small/l", "os_type": "beos",
                        "space": {"size": "1M"}}),
    )
    .await?;
    assert_eq!(code(&r), (400, "262185".into()));
    let r = post(
        json!({"svm": {"name": "svm1"}, "name": "/vol/small/bad name", "os_type": "linux",
                        "space": {"size": "1M"}}),
    )
    .await?;
    assert_eq!(code(&r), (400, "5374121".into()));
    let r = post(
        json!({"svm": {"name": "svm1"}, "name": "small/l", "os_type": "linux",
                        "space": {"size": "1M"}}),
    )
    .await?;
    assert_eq!(code(&r), (400, "5374352".into()));
    let r = post(
        json!({"svm": {"name": "svm1"}, "name": "/vol/small/l", "os_type": "linux",
                        "space": {"size": 100}}),
    )
    .await?;
    assert_eq!(code(&r), (400, "5374124".into()));
    let r = post(
        json!({"svm": {"name": "svm1"}, "name": "/vol/small/l", "os_type": "linux",
                        "location": {"volume": {"name": "other"}}, "space": {"size": "1M"}}),
    )
    .await?;
    assert_eq!(code(&r), (400, "5374858".into()));
    let r = post(
        json!({"svm": {"name": "svm1"}, "name": "/vol/small/l", "os_type": "linux",
                        "space": {"size": "1M"}, "bogus": 1}),
    )
    .await?;
    assert_eq!(code(&r), (400, "262179".into()));
    let r = post(
        json!({"svm": {"name": "nosvm"}, "name": "/vol/small/l", "os_type": "linux",
                        "space": {"size": "1M"}}),
    )
    .await?;
    assert_eq!(r.status, 404);
    Ok(())
}

#[tokio::test]
async fn lun_resize_rename_and_delete() -> anyhow::Result<()> {
    let (env, vol) = env_with_volume("rv", "10GB").await?;
    let rec = create_lun(&env, "/vol/rv/a", "1G").await?;
    let uuid = rec["uuid"].as_str().unwrap().to_string();
    let path = format!("/api/storage/luns/{uuid}");

    let grow = env.patch(&path, json!({"space": {"size": "2G"}})).await?;
    assert_eq!(grow.status, 200);
    let shrink = env.patch(&path, json!({"space": {"size": "1G"}})).await?;
    assert_eq!(
        (shrink.status, shrink.body["error"]["code"].as_str()),
        (400, Some("5374892"))
    );
    let too_big = env.patch(&path, json!({"space": {"size": "20G"}})).await?;
    assert_eq!(too_big.body["error"]["code"], "917537");
    let v = env
        .get(&format!("/api/storage/volumes/{vol}?fields=space.used"))
        .await?;
    assert_eq!(v.body["space"]["used"], 2 * GIB);

    let rn = env
        .patch(&path, json!({"name": "/vol/rv/b", "comment": "data"}))
        .await?;
    assert_eq!(rn.status, 200);
    let got = env.get(&path).await?;
    assert_eq!(got.body["name"], "/vol/rv/b");
    assert_eq!(got.body["location"]["logical_unit"], "b");
    assert_eq!(got.body["comment"], "data");
    assert_eq!(got.body["space"]["size"], 2 * GIB);
    assert_eq!(got.body["serial_number"], rec["serial_number"]);
    let cross = env.patch(&path, json!({"name": "/vol/other/b"})).await?;
    assert_eq!(cross.body["error"]["code"], "5374858");

    // A volume holding a LUN cannot be deleted.
    let (_, job) = env
        .run_job(Method::DELETE, &format!("/api/storage/volumes/{vol}"), None)
        .await?;
    assert_eq!(job["state"], "failure");
    assert_eq!(job["code"], 8);

    let del = env.delete(&path).await?;
    assert_eq!(del.status, 200);
    let gone = env.get(&path).await?;
    assert_eq!(gone.status, 404);
    let again = env.delete(&path).await?;
    assert_eq!(
        (again.status, again.body["error"]["code"].as_str()),
        (404, Some("5374875"))
    );
    let v = env
        .get(&format!("/api/storage/volumes/{vol}?fields=space.used"))
        .await?;
    assert_eq!(v.body["space"]["used"], 0);
    let (_, job) = env
        .run_job(Method::DELETE, &format!("/api/storage/volumes/{vol}"), None)
        .await?;
    assert_eq!(job["state"], "success");
    Ok(())
}

#[tokio::test]
async fn igroups_validate_initiators() -> anyhow::Result<()> {
    let env = common::start().await?;
    let post = |body: Value| env.post("/api/protocols/san/igroups", body);
    let r = post(
        json!({"svm": {"name": "svm1"}, "name": "ig1", "os_type": "linux", "protocol": "iscsi",
                        "initiators": [{"name": "iqn.1994-05.com.redhat:host1"}]}),
    )
    .await?;
    assert_eq!(r.status, 201);
    let loc = r.header("location").unwrap().to_string();
    assert!(loc.starts_with("/api/protocols/san/igroups/"), "{loc}");
    let got = env.get(&loc).await?;
    assert_eq!(got.body["name"], "ig1");
    assert_eq!(got.body["protocol"], "iscsi");
    assert_eq!(
        got.body["initiators"][0]["name"],
        "iqn.1994-05.com.redhat:host1"
    );

    let dup = post(json!({"svm": {"name": "svm1"}, "name": "ig1", "os_type": "linux"})).await?;
    assert_eq!(
        (dup.status, dup.body["error"]["code"].as_str()),
        (409, Some("5374023"))
    );
    let wwpn = post(
        json!({"svm": {"name": "svm1"}, "name": "ig2", "os_type": "linux", "protocol": "iscsi",
                           "initiators": [{"name": "20:00:00:25:b5:00:00:01"}]}),
    )
    .await?;
    assert_eq!(wwpn.body["error"]["code"], "5374039");
    let iqn_fc = post(
        json!({"svm": {"name": "svm1"}, "name": "ig2", "os_type": "linux", "protocol": "fcp",
                             "initiators": [{"name": "iqn.1994-05.com.redhat:host1"}]}),
    )
    .await?;
    assert_eq!(iqn_fc.body["error"]["code"], "5374038");
    let bad_date = post(
        json!({"svm": {"name": "svm1"}, "name": "ig2", "os_type": "linux",
                               "initiators": [{"name": "iqn.94-05.com.redhat:x"}]}),
    )
    .await?;
    assert_eq!(bad_date.body["error"]["code"], "5373971");
    let conflict = post(
        json!({"svm": {"name": "svm1"}, "name": "ig2", "os_type": "windows",
                               "initiators": [{"name": "iqn.1994-05.com.redhat:host1"}]}),
    )
    .await?;
    assert_eq!(
        (conflict.status, conflict.body["error"]["code"].as_str()),
        (409, Some("5374732"))
    );
    let fc = post(
        json!({"svm": {"name": "svm1"}, "name": "ig2", "os_type": "linux", "protocol": "fcp",
                         "initiators": [{"name": "20:00:00:25:b5:00:00:01"}]}),
    )
    .await?;
    assert_eq!(fc.status, 201);

    // Initiators sub-resource.
    let ig = loc
        .trim_start_matches("/api/protocols/san/igroups/")
        .to_string();
    let base = format!("/api/protocols/san/igroups/{ig}/initiators");
    let add = env
        .post(
            &base,
            json!({"records": [{"name": "iqn.1994-05.com.redhat:host2"},
                                                   {"name": "iqn.1994-05.com.redhat:host3"}]}),
        )
        .await?;
    assert_eq!(add.status, 201);
    let again = env
        .post(&base, json!({"name": "iqn.1994-05.com.redhat:host2"}))
        .await?;
    assert_eq!(
        (again.status, again.body["error"]["code"].as_str()),
        (409, Some("5374035"))
    );
    let both = env
        .post(
            &base,
            json!({"name": "iqn.1994-05.com.redhat:h9", "records": []}),
        )
        .await?;
    assert_eq!(both.body["error"]["code"], "5374853");
    let l = env.get(&base).await?;
    assert_eq!(l.body["num_records"], 3);
    assert_eq!(l.body["records"][1]["name"], "iqn.1994-05.com.redhat:host2");
    let one = env
        .get(&format!("{base}/iqn.1994-05.com.redhat:host3"))
        .await?;
    assert_eq!(one.status, 200);
    assert_eq!(one.body["name"], "iqn.1994-05.com.redhat:host3");
    let rm = env
        .delete(&format!("{base}/iqn.1994-05.com.redhat:host3"))
        .await?;
    assert_eq!(rm.status, 200);
    let rm2 = env
        .delete(&format!("{base}/iqn.1994-05.com.redhat:host3"))
        .await?;
    assert_eq!(
        (rm2.status, rm2.body["error"]["code"].as_str()),
        (404, Some("5374034"))
    );
    let missing = env
        .get(&format!("{base}/iqn.1994-05.com.redhat:host3"))
        .await?;
    assert_eq!(
        (missing.status, missing.body["error"]["code"].as_str()),
        (404, Some("4"))
    );
    Ok(())
}

#[tokio::test]
async fn lun_maps_assign_ids_and_guard_deletes() -> anyhow::Result<()> {
    let (env, _) = env_with_volume("mv", "10GB").await?;
    let l1 = create_lun(&env, "/vol/mv/l1", "1G").await?;
    let l2 = create_lun(&env, "/vol/mv/l2", "1G").await?;
    create_lun(&env, "/vol/mv/l3", "1G").await?;
    let ig = create_igroup(&env, "host1", &["iqn.1994-05.com.redhat:host1"]).await?;
    let l1u = l1["uuid"].as_str().unwrap().to_string();

    let m1 = map(&env, "/vol/mv/l1", "host1", None).await?;
    assert_eq!(m1.status, 201, "{}", m1.body);
    assert_eq!(m1.body["records"][0]["logical_unit_number"], 0);
    assert_eq!(
        m1.header("location").map(str::to_string),
        Some(format!("/api/protocols/san/lun-maps/{l1u}/{ig}"))
    );
    let m3 = map(&env, "/vol/mv/l3", "host1", Some(5)).await?;
    assert_eq!(m3.body["records"][0]["logical_unit_number"], 5);
    let m2 = map(&env, "/vol/mv/l2", "host1", None).await?;
    assert_eq!(m2.body["records"][0]["logical_unit_number"], 1);
    let dup = map(&env, "/vol/mv/l1", "host1", None).await?;
    assert_eq!(
        (dup.status, dup.body["error"]["code"].as_str()),
        (409, Some("1254207"))
    );

    // Same id in another igroup is fine; a taken id in this one is not.
    create_igroup(&env, "host2", &["iqn.1994-05.com.redhat:host2"]).await?;
    let other = map(&env, "/vol/mv/l1", "host2", None).await?;
    assert_eq!(other.body["records"][0]["logical_unit_number"], 0);
    let taken = map(&env, "/vol/mv/l2", "host2", Some(0)).await?;
    assert_eq!(
        (taken.status, taken.body["error"]["code"].as_str()),
        (409, Some("1254324"))
    );
    let no_lun = map(&env, "/vol/mv/nope", "host2", None).await?;
    assert_eq!(
        (no_lun.status, no_lun.body["error"]["code"].as_str()),
        (404, Some("5374875"))
    );
    let no_ig = map(&env, "/vol/mv/l2", "nope", None).await?;
    assert_eq!(
        (no_ig.status, no_ig.body["error"]["code"].as_str()),
        (404, Some("5374852"))
    );

    let lun = env.get(&format!("/api/storage/luns/{l1u}")).await?;
    assert_eq!(lun.body["status"]["mapped"], true);
    assert_eq!(lun.body["lun_maps"].as_array().map(Vec::len), Some(2));
    assert_eq!(lun.body["lun_maps"][0]["igroup"]["name"], "host1");
    assert_eq!(lun.body["lun_maps"][0]["logical_unit_number"], 0);

    let list = env
        .get("/api/protocols/san/lun-maps?igroup.name=host1&fields=logical_unit_number")
        .await?;
    assert_eq!(list.body["num_records"], 3);
    let ids: Vec<u64> = list.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["logical_unit_number"].as_u64().unwrap())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, vec![0, 1, 5]);
    assert!(list.body["records"][0]["lun"]["name"].is_string());

    // Deleting mapped things is refused without allow_delete_while_mapped.
    let del = env.delete(&format!("/api/storage/luns/{l1u}")).await?;
    assert_eq!(
        (del.status, del.body["error"]["code"].as_str()),
        (409, Some("1254197"))
    );
    let del_ig = env
        .delete(&format!("/api/protocols/san/igroups/{ig}"))
        .await?;
    assert_eq!(
        (del_ig.status, del_ig.body["error"]["code"].as_str()),
        (409, Some("1254213"))
    );
    let rm_init = env
        .delete(&format!(
            "/api/protocols/san/igroups/{ig}/initiators/iqn.1994-05.com.redhat:host1"
        ))
        .await?;
    assert_eq!(rm_init.body["error"]["code"], "1254213");

    // Unmap one, then force the rest.
    let un = env
        .delete(&format!("/api/protocols/san/lun-maps/{l1u}/{ig}"))
        .await?;
    assert_eq!(un.status, 200);
    let un2 = env
        .delete(&format!("/api/protocols/san/lun-maps/{l1u}/{ig}"))
        .await?;
    assert_eq!(un2.status, 404);
    let reuse = map(&env, "/vol/mv/l1", "host1", None).await?;
    assert_eq!(reuse.body["records"][0]["logical_unit_number"], 0);
    let forced = env
        .delete(&format!(
            "/api/storage/luns/{l1u}?allow_delete_while_mapped=true"
        ))
        .await?;
    assert_eq!(forced.status, 200);
    let left = env.get("/api/protocols/san/lun-maps").await?;
    assert_eq!(left.body["num_records"], 2);
    let forced_ig = env
        .delete(&format!(
            "/api/protocols/san/igroups/{ig}?allow_delete_while_mapped=true"
        ))
        .await?;
    assert_eq!(forced_ig.status, 200);
    let left = env.get("/api/protocols/san/lun-maps").await?;
    assert_eq!(left.body["num_records"], 0);
    let l2u = l2["uuid"].as_str().unwrap();
    let l2g = env.get(&format!("/api/storage/luns/{l2u}")).await?;
    assert_eq!(l2g.body["status"]["mapped"], false);
    assert_eq!(l2g.body["lun_maps"], json!([]));
    Ok(())
}

#[tokio::test]
async fn iscsi_service_and_chap_never_return_passwords() -> anyhow::Result<()> {
    let env = common::start().await?;
    let svc = env
        .get("/api/protocols/san/iscsi/services?svm.name=svm1&fields=*")
        .await?;
    assert_eq!(svc.body["num_records"], 1);
    let target = svc.body["records"][0]["target"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(target.starts_with("iqn.1992-08.com.netapp:sn."), "{target}");
    let svm_uuid = svc.body["records"][0]["svm"]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let dup = env
        .post(
            "/api/protocols/san/iscsi/services",
            json!({"svm": {"name": "svm1"}}),
        )
        .await?;
    assert_eq!(
        (dup.status, dup.body["error"]["code"].as_str()),
        (409, Some("5374077"))
    );
    let on = env
        .delete(&format!("/api/protocols/san/iscsi/services/{svm_uuid}"))
        .await?;
    assert_eq!(on.body["error"]["code"], "5373960");

    let base = "/api/protocols/san/iscsi/credentials";
    let init = "iqn.1994-05.com.redhat:host1";
    let r = env
        .post(base, json!({"svm": {"name": "svm1"}, "initiator": init, "authentication_type": "chap",
                            "chap": {"inbound": {"user": "in-user", "password": "in-secret-123"},
                                     "outbound": {"user": "out-user", "password": "out-secret-456"}}}))
        .await?;
    assert_eq!(r.status, 201, "{}", r.body);
    let one = env
        .get(&format!("{base}/{svm_uuid}/{init}?fields=**"))
        .await?;
    assert_eq!(one.status, 200);
    assert_eq!(one.body["authentication_type"], "chap");
    assert_eq!(
        one.body["chap"],
        json!({"inbound": {"user": "in-user"}, "outbound": {"user": "out-user"}})
    );
    let all = env.get(&format!("{base}?fields=*")).await?;
    let text = all.body.to_string() + &one.body.to_string() + &env.sim.state().to_string();
    assert!(
        !text.contains("in-secret-123") && !text.contains("out-secret-456"),
        "{text}"
    );
    let logged = serde_json::to_string(&env.sim.requests())?;
    assert!(!logged.contains("in-secret-123"), "{logged}");

    let dup = env
        .post(
            base,
            json!({"svm": {"name": "svm1"}, "initiator": init, "authentication_type": "none"}),
        )
        .await?;
    assert_eq!(
        (dup.status, dup.body["error"]["code"].as_str()),
        (409, Some("5374142"))
    );
    let same = env
        .post(
            base,
            json!({"svm": {"name": "svm1"}, "initiator": "iqn.1994-05.com.redhat:h2",
                            "authentication_type": "chap",
                            "chap": {"inbound": {"user": "u", "password": "samesame12"},
                                     "outbound": {"user": "o", "password": "samesame12"}}}),
        )
        .await?;
    assert_eq!(same.body["error"]["code"], "5374147");
    assert!(!same.body.to_string().contains("samesame12"));
    let no_pw = env
        .post(
            base,
            json!({"svm": {"name": "svm1"}, "initiator": "iqn.1994-05.com.redhat:h2",
                            "authentication_type": "chap", "chap": {"inbound": {"user": "u"}}}),
        )
        .await?;
    assert_eq!(no_pw.body["error"]["code"], "5374149");
    let deny_chap = env
        .post(
            base,
            json!({"svm": {"name": "svm1"}, "initiator": "iqn.1994-05.com.redhat:h2",
                            "authentication_type": "deny", "chap": {"inbound": {"user": "u"}}}),
        )
        .await?;
    assert_eq!(deny_chap.body["error"]["code"], "5374900");
    let bad_iqn = env
        .post(
            base,
            json!({"svm": {"name": "svm1"}, "initiator": "host2", "authentication_type": "none"}),
        )
        .await?;
    assert_eq!(bad_iqn.body["error"]["code"], "5373997");

    let p = env
        .patch(
            &format!("{base}/{svm_uuid}/{init}"),
            json!({"authentication_type": "none"}),
        )
        .await?;
    assert_eq!(p.status, 200);
    let after = env.get(&format!("{base}/{svm_uuid}/{init}")).await?;
    assert_eq!(after.body["authentication_type"], "none");
    assert!(after.body.get("chap").is_none());
    let d = env.delete(&format!("{base}/{svm_uuid}/{init}")).await?;
    assert_eq!(d.status, 200);
    let d2 = env.delete(&format!("{base}/{svm_uuid}/{init}")).await?;
    assert_eq!(
        (d2.status, d2.body["error"]["code"].as_str()),
        (404, Some("5374895"))
    );
    Ok(())
}

#[tokio::test]
async fn fcp_service_lifecycle() -> anyhow::Result<()> {
    let env = common::start().await?;
    let svm = env.find("/api/svm/svms", "svm1").await?;
    let u = svm["uuid"].as_str().unwrap().to_string();
    let base = "/api/protocols/san/fcp/services";
    let none = env.get(&format!("{base}/{u}")).await?;
    assert_eq!(
        (none.status, none.body["error"]["code"].as_str()),
        (404, Some("5374083"))
    );
    let c = env.post(base, json!({"svm": {"name": "svm1"}})).await?;
    assert_eq!(c.status, 201);
    assert_eq!(
        c.header("location").map(str::to_string),
        Some(format!("{base}/{u}"))
    );
    let got = env.get(&format!("{base}/{u}")).await?;
    assert_eq!(got.body["enabled"], true);
    let wwnn = got.body["target"]["name"].as_str().unwrap();
    assert!(
        wwnn.starts_with("20:00:00:a0:98:") && wwnn.len() == 23,
        "{wwnn}"
    );
    let dup = env.post(base, json!({"svm": {"name": "svm1"}})).await?;
    assert_eq!(
        (dup.status, dup.body["error"]["code"].as_str()),
        (409, Some("5374082"))
    );
    let on = env.delete(&format!("{base}/{u}")).await?;
    assert_eq!(on.body["error"]["code"], "5373960");
    assert_eq!(
        env.patch(&format!("{base}/{u}"), json!({"enabled": false}))
            .await?
            .status,
        200
    );
    assert_eq!(env.delete(&format!("{base}/{u}")).await?.status, 200);
    let nosvm = env
        .get(&format!("{base}/00000000-0000-0000-0000-000000000000"))
        .await?;
    assert_eq!(nosvm.body["error"]["code"], "2621462");
    Ok(())
}

/// A backend that records changes and refuses to create LUNs named `/vol/*/refused`.
#[derive(Debug, Default)]
struct Picky {
    inner: ontap_sim::MemoryBackend,
}

#[async_trait::async_trait]
impl ontap_sim::Backend for Picky {
    async fn apply(&self, change: &ontap_sim::Change) -> Result<(), ontap_sim::BackendError> {
        if let ontap_sim::Change::Created { collection, record } = change {
            if collection == "luns"
                && record["name"]
                    .as_str()
                    .is_some_and(|n| n.ends_with("/refused"))
            {
                return Err(ontap_sim::BackendError::new(
                    5374863,
                    "backend refused the LUN",
                ));
            }
        }
        self.inner.apply(change).await
    }
}

#[tokio::test]
async fn backend_sees_every_san_change() -> anyhow::Result<()> {
    let backend = std::sync::Arc::new(Picky::default());
    let env = common::start_with(
        ontap_sim::SimServer::builder()
            .job_duration(
                std::time::Duration::ZERO,
                std::time::Duration::from_millis(5),
            )
            .backend(backend.clone()),
    )
    .await?;
    env.create_volume(json!({"name": "bv", "svm": {"name": "svm1"},
                             "aggregates": [{"name": "aggr1"}], "size": "1GB"}))
        .await?;
    let refused = env
        .post(
            "/api/storage/luns",
            json!({"svm": {"name": "svm1"}, "name": "/vol/bv/refused",
                                           "os_type": "linux", "space": {"size": "1M"}}),
        )
        .await?;
    assert_eq!(refused.body["error"]["code"], "5374863");
    assert_eq!(env.get("/api/storage/luns").await?.body["num_records"], 0);

    let lun = create_lun(&env, "/vol/bv/l1", "1M").await?;
    let ig = create_igroup(&env, "h1", &["iqn.1994-05.com.redhat:h1"]).await?;
    assert_eq!(map(&env, "/vol/bv/l1", "h1", None).await?.status, 201);
    let lun_uuid = lun["uuid"].as_str().unwrap();
    assert_eq!(
        env.delete(&format!("/api/protocols/san/lun-maps/{lun_uuid}/{ig}"))
            .await?
            .status,
        200
    );
    assert_eq!(
        env.delete(&format!("/api/storage/luns/{lun_uuid}"))
            .await?
            .status,
        200
    );

    let seen: Vec<String> = backend
        .inner
        .changes()
        .iter()
        .filter(|c| c.collection() != "volumes")
        .map(|c| match c {
            ontap_sim::Change::Created { collection, .. } => format!("+{collection}"),
            ontap_sim::Change::Deleted { collection, .. } => format!("-{collection}"),
            ontap_sim::Change::Modified { collection, .. } => format!("~{collection}"),
            _ => "?".to_string(),
        })
        .collect();
    assert_eq!(
        seen,
        vec!["+luns", "+igroups", "+lun_maps", "-lun_maps", "-luns"]
    );
    let created = backend.inner.changes();
    let rec = created
        .iter()
        .find_map(|c| match c {
            ontap_sim::Change::Created { collection, record } if collection == "lun_maps" => {
                Some(record.clone())
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(rec["logical_unit_number"], 0);
    assert_eq!(rec["igroup"]["name"], "h1");
    Ok(())
}

#[tokio::test]
async fn query_patch_and_delete() -> anyhow::Result<()> {
    let (env, _) = env_with_volume("qv", "10GB").await?;
    for n in ["a1", "a2", "b1"] {
        create_lun(&env, &format!("/vol/qv/{n}"), "1M").await?;
    }
    let none = env.delete("/api/storage/luns").await?;
    assert_eq!(
        (none.status, none.body["error"]["code"].as_str()),
        (405, Some("3"))
    );
    let p = env
        .patch(
            "/api/storage/luns?name=/vol/qv/a*",
            json!({"comment": "batch"}),
        )
        .await?;
    assert_eq!((p.status, p.body["num_records"].as_u64()), (200, Some(2)));
    let c = env.get("/api/storage/luns?comment=batch").await?;
    assert_eq!(c.body["num_records"], 2);
    create_igroup(&env, "qh", &["iqn.1994-05.com.redhat:qh"]).await?;
    assert_eq!(map(&env, "/vol/qv/a1", "qh", None).await?.status, 201);
    // The mapped LUN stops the batch: a2's turn never comes (key order is by UUID, so
    // only check that the refusal is reported and the mapped LUN is still there).
    let d = env.delete("/api/storage/luns?name=/vol/qv/a*").await?;
    assert_eq!(d.body["error"]["code"], "1254197");
    assert_eq!(
        env.get("/api/storage/luns?name=/vol/qv/a1").await?.body["num_records"],
        1
    );
    let d = env
        .delete("/api/storage/luns?name=/vol/qv/a*&allow_delete_while_mapped=true")
        .await?;
    assert_eq!(d.status, 200);
    let left = env.get("/api/storage/luns").await?;
    assert_eq!(left.body["num_records"], 1);
    assert_eq!(left.body["records"][0]["name"], "/vol/qv/b1");
    assert_eq!(
        env.get("/api/protocols/san/lun-maps").await?.body["num_records"],
        0
    );
    let d = env.delete("/api/protocols/san/igroups?name=qh").await?;
    assert_eq!((d.status, d.body["num_records"].as_u64()), (200, Some(1)));
    Ok(())
}

#[tokio::test]
async fn igroup_rename_and_os_type_follow_maps() -> anyhow::Result<()> {
    let (env, _) = env_with_volume("gv", "1GB").await?;
    let lun = create_lun(&env, "/vol/gv/l", "1M").await?;
    let ig = create_igroup(&env, "old", &["iqn.1994-05.com.redhat:g1"]).await?;
    create_igroup(&env, "taken", &[]).await?;
    assert_eq!(map(&env, "/vol/gv/l", "old", Some(7)).await?.status, 201);
    let path = format!("/api/protocols/san/igroups/{ig}");
    let dup = env.patch(&path, json!({"name": "taken"})).await?;
    assert_eq!(
        (dup.status, dup.body["error"]["code"].as_str()),
        (409, Some("5374023"))
    );
    assert_eq!(
        env.patch(&path, json!({"name": "new", "os_type": "vmware"}))
            .await?
            .status,
        200
    );
    let g = env.get(&path).await?;
    assert_eq!(
        (g.body["name"].as_str(), g.body["os_type"].as_str()),
        (Some("new"), Some("vmware"))
    );
    assert_eq!(g.body["lun_maps"][0]["logical_unit_number"], 7);
    assert_eq!(g.body["lun_maps"][0]["lun"]["name"], "/vol/gv/l");
    let l = env
        .get(&format!(
            "/api/storage/luns/{}",
            lun["uuid"].as_str().unwrap()
        ))
        .await?;
    assert_eq!(l.body["lun_maps"][0]["igroup"]["name"], "new");
    let m = env
        .get("/api/protocols/san/lun-maps?igroup.name=new")
        .await?;
    assert_eq!(m.body["num_records"], 1);
    // Another igroup with the same initiator must agree on the OS type.
    let clash = env
        .post(
            "/api/protocols/san/igroups",
            json!({"svm": {"name": "svm1"}, "name": "other", "os_type": "linux",
                     "initiators": [{"name": "iqn.1994-05.com.redhat:g1"}]}),
        )
        .await?;
    assert_eq!(clash.body["error"]["code"], "5374732");
    Ok(())
}
