//! A FlexClone made from a snapshot holds the LUNs and NVMe namespaces its parent had
//! when the snapshot was taken, as ONTAP clones the snapshot: a LUN made later is not in
//! it, one deleted, resized or renamed later is there as it was. What a snapshot keeps
//! is no resource: no GET shows it.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// Records of a collection path in volume `volume`, every field, ordered by name.
async fn in_volume(env: &common::Env, path: &str, volume: &str) -> anyhow::Result<Vec<Value>> {
    let r = env
        .get(&format!(
            "{path}?location.volume.name={volume}&fields=*&order_by=name"
        ))
        .await?;
    anyhow::ensure!(r.status == 200, "{path} answered {}: {}", r.status, r.body);
    Ok(r.body["records"].as_array().cloned().unwrap_or_default())
}

/// A simulator that keeps its state in `state` (and loads it from there when it exists).
fn with_state_file(state: &std::path::Path) -> ontap_sim::SimServerBuilder {
    ontap_sim::SimServer::builder()
        .state_file(state.to_owned())
        .job_duration(Duration::ZERO, Duration::from_millis(10))
}

fn names(recs: &[Value]) -> Vec<&str> {
    recs.iter().map(|r| r["name"].as_str().unwrap()).collect()
}

fn sizes(recs: &[Value]) -> Vec<u64> {
    recs.iter()
        .map(|r| r["space"]["size"].as_u64().unwrap())
        .collect()
}

/// Volume `name` (8 GB, so thick LUNs fit) in svm1; returns its UUID.
async fn volume(env: &common::Env, name: &str) -> anyhow::Result<String> {
    env.create_volume(json!({"name": name, "svm": {"name": "svm1"},
                             "aggregates": [{"name": "aggr1"}], "size": "8GB"}))
        .await
}

/// LUN `path` of `size` (thick or thin); returns its record with every field.
async fn lun(env: &common::Env, path: &str, size: &str, thick: bool) -> anyhow::Result<Value> {
    let r = env
        .post(
            "/api/storage/luns",
            json!({"svm": {"name": "svm1"}, "name": path, "os_type": "linux",
                   "space": {"size": size, "guarantee": {"requested": thick}}}),
        )
        .await?;
    anyhow::ensure!(r.status == 201, "LUN {path}: {}", r.body);
    env.find("/api/storage/luns", path).await
}

/// Namespace `path` of `size`; returns its record with every field.
async fn namespace(env: &common::Env, path: &str, size: &str) -> anyhow::Result<Value> {
    let r = env
        .post(
            "/api/storage/namespaces",
            json!({"svm": {"name": "svm1"}, "name": path, "os_type": "linux",
                   "space": {"size": size}}),
        )
        .await?;
    anyhow::ensure!(r.status == 201, "namespace {path}: {}", r.body);
    env.find("/api/storage/namespaces", path).await
}

/// Snapshot `name` of volume `vol`; returns its UUID.
async fn snapshot(env: &common::Env, vol: &str, name: &str) -> anyhow::Result<String> {
    let (_, job) = env
        .run_job(
            Method::POST,
            &format!("/api/storage/volumes/{vol}/snapshots"),
            Some(json!({"name": name})),
        )
        .await?;
    anyhow::ensure!(job["state"] == "success", "snapshot {name}: {job}");
    let r = env
        .get(&format!("/api/storage/volumes/{vol}/snapshots?name={name}"))
        .await?;
    Ok(r.body["records"][0]["uuid"].as_str().unwrap().to_string())
}

/// FlexClone `name` of volume `parent`, of its snapshot `snap` when given, with `size`
/// when given; returns the job.
async fn flexclone(
    env: &common::Env,
    name: &str,
    parent: &str,
    snap: Option<&str>,
    size: Option<&str>,
) -> anyhow::Result<Value> {
    let mut body = json!({"name": name, "svm": {"name": "svm1"},
                          "clone": {"parent_volume": {"name": parent}, "is_flexclone": true}});
    if let Some(s) = snap {
        body["clone"]["parent_snapshot"] = json!({"name": s});
    }
    if let Some(s) = size {
        body["size"] = json!(s);
    }
    let (_, job) = env
        .run_job(Method::POST, "/api/storage/volumes", Some(body))
        .await?;
    Ok(job)
}

async fn space_used(env: &common::Env, vol: &str) -> anyhow::Result<Value> {
    Ok(env.find("/api/storage/volumes", vol).await?["space"]["used"].clone())
}

/// The names (sorted) of the LUNs and namespaces the store keeps with snapshot `uuid`, or
/// `None`.
fn kept(env: &common::Env, uuid: &str) -> Option<(Vec<String>, Vec<String>)> {
    let state = env.sim.state();
    let b = state.get("snapshot_blocks")?.get(uuid)?;
    let of = |c: &str| -> Vec<String> {
        let mut names: Vec<String> = b["records"][c]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect();
        names.sort_unstable();
        names
    };
    Some((of("luns"), of("nvme_namespaces")))
}

#[tokio::test]
async fn flexclone_of_a_snapshot_holds_the_luns_the_parent_had_then() -> anyhow::Result<()> {
    let env = common::start().await?;
    volume(&env, "p").await?;
    let a = lun(&env, "/vol/p/a", "1G", true).await?;
    let d = lun(&env, "/vol/p/d", "256M", false).await?;
    let r = lun(&env, "/vol/p/r", "128M", false).await?;
    let ig = env
        .post(
            "/api/protocols/san/igroups",
            json!({"svm": {"name": "svm1"}, "name": "ig", "os_type": "linux",
                   "protocol": "iscsi", "initiators": [{"name": "iqn.1994-05.com.redhat:h1"}]}),
        )
        .await?;
    assert_eq!(ig.status, 201, "{}", ig.body);
    let map = env
        .post(
            "/api/protocols/san/lun-maps",
            json!({"svm": {"name": "svm1"}, "lun": {"name": "/vol/p/a"},
                   "igroup": {"name": "ig"}, "logical_unit_number": 5}),
        )
        .await?;
    assert_eq!(map.status, 201, "{}", map.body);
    let pu = env.find("/api/storage/volumes", "p").await?["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let s1 = snapshot(&env, &pu, "s1").await?;

    // After the snapshot: a new LUN, a grown one, a deleted one, a renamed one.
    lun(&env, "/vol/p/b", "512M", true).await?;
    let au = a["uuid"].as_str().unwrap();
    let grow = env
        .patch(
            &format!("/api/storage/luns/{au}"),
            json!({"space": {"size": "2G"}}),
        )
        .await?;
    assert_eq!(grow.status, 200, "{}", grow.body);
    let gone = env
        .delete(&format!(
            "/api/storage/luns/{}",
            d["uuid"].as_str().unwrap()
        ))
        .await?;
    assert_eq!(gone.status, 200, "{}", gone.body);
    let renamed = env
        .patch(
            &format!("/api/storage/luns/{}", r["uuid"].as_str().unwrap()),
            json!({"name": "/vol/p/r2"}),
        )
        .await?;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    let parent = in_volume(&env, "/api/storage/luns", "p").await?;
    assert_eq!(names(&parent), ["/vol/p/a", "/vol/p/b", "/vol/p/r2"]);
    assert_eq!(space_used(&env, "p").await?, json!(2 * GIB + 512 * MIB));

    // The clone of s1: a (at 1 GiB), d and r as they were; no b.
    let job = flexclone(&env, "c1", "p", Some("s1"), None).await?;
    assert_eq!(job["state"], "success", "{job}");
    let c1 = env.find("/api/storage/volumes", "c1").await?;
    assert_eq!(c1["clone"]["parent_snapshot"]["uuid"], json!(s1));
    let luns = in_volume(&env, "/api/storage/luns", "c1").await?;
    assert_eq!(names(&luns), ["/vol/c1/a", "/vol/c1/d", "/vol/c1/r"]);
    assert_eq!(sizes(&luns), [GIB, 256 * MIB, 128 * MIB]);
    let ca = &luns[0];
    assert_eq!(
        ca["location"],
        json!({"logical_unit": "a",
               "volume": {"name": "c1", "uuid": c1["uuid"],
                          "_links": {"self": {"href": format!("/api/storage/volumes/{}",
                                                              c1["uuid"].as_str().unwrap())}}}})
    );
    assert_eq!(
        ca["space"]["guarantee"],
        json!({"requested": true, "reserved": true})
    );
    assert_eq!(ca["status"]["mapped"], false);
    assert_eq!(ca["lun_maps"], json!([]));
    assert_eq!(ca["serial_number"].as_str().unwrap().len(), 12);
    assert_ne!(ca["serial_number"], a["serial_number"]);
    assert_ne!(ca["uuid"], a["uuid"]);
    assert_eq!(luns[1]["space"]["guarantee"]["requested"], false);
    assert_ne!(luns[1]["uuid"], d["uuid"]);
    assert_ne!(luns[1]["serial_number"], d["serial_number"]);
    assert_eq!(luns[2]["location"]["logical_unit"], "r");
    // Only the thick a is reserved, at its size of then.
    assert_eq!(space_used(&env, "c1").await?, json!(GIB));
    // Every serial number in the system is distinct.
    let all = env.get("/api/storage/luns?fields=serial_number").await?;
    let serials: BTreeSet<&str> = all.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["serial_number"].as_str().unwrap())
        .collect();
    assert_eq!(
        (all.body["num_records"].as_u64(), serials.len()),
        (Some(6), 6)
    );

    // The clone of the volume itself holds the LUNs of now.
    let job = flexclone(&env, "c2", "p", None, None).await?;
    assert_eq!(job["state"], "success", "{job}");
    let luns = in_volume(&env, "/api/storage/luns", "c2").await?;
    assert_eq!(names(&luns), ["/vol/c2/a", "/vol/c2/b", "/vol/c2/r2"]);
    assert_eq!(sizes(&luns), [2 * GIB, 512 * MIB, 128 * MIB]);
    assert_eq!(
        luns.iter()
            .map(|l| &l["status"]["mapped"])
            .collect::<Vec<_>>(),
        [&json!(false); 3]
    );
    assert_eq!(space_used(&env, "c2").await?, json!(2 * GIB + 512 * MIB));

    // The parent is as it was.
    let after = in_volume(&env, "/api/storage/luns", "p").await?;
    assert_eq!(after, parent);
    Ok(())
}

#[tokio::test]
async fn space_for_a_snapshots_clone_is_what_the_snapshot_held() -> anyhow::Result<()> {
    let env = common::start().await?;
    let pu = volume(&env, "p").await?;
    let a = lun(&env, "/vol/p/a", "1G", true).await?;
    snapshot(&env, &pu, "s1").await?;
    let grow = env
        .patch(
            &format!("/api/storage/luns/{}", a["uuid"].as_str().unwrap()),
            json!({"space": {"size": "4G"}}),
        )
        .await?;
    assert_eq!(grow.status, 200, "{}", grow.body);

    // A 2 GB clone has room for a's 1 GiB of then ...
    let job = flexclone(&env, "small1", "p", Some("s1"), Some("2GB")).await?;
    assert_eq!(job["state"], "success", "{job}");
    assert_eq!(space_used(&env, "small1").await?, json!(GIB));
    let luns = in_volume(&env, "/api/storage/luns", "small1").await?;
    assert_eq!(sizes(&luns), [GIB]);

    // ... but not for its 4 GiB of now.
    let job = flexclone(&env, "small2", "p", None, Some("2GB")).await?;
    let avail = 2 * GIB - 2 * GIB / 100 * 5;
    assert_eq!(
        (&job["state"], &job["code"], &job["message"]),
        (
            &json!("failure"),
            &json!(917537),
            &json!(format!(
                "Not enough space in volume \"small2\" for a LUN of {} bytes ({avail} bytes available).",
                4 * GIB
            ))
        )
    );
    assert_eq!(
        env.get("/api/storage/volumes?name=small2").await?.body["num_records"],
        0
    );
    assert!(in_volume(&env, "/api/storage/luns", "small2")
        .await?
        .is_empty());
    Ok(())
}

#[tokio::test]
async fn flexclone_of_a_snapshot_holds_the_namespaces_the_parent_had_then() -> anyhow::Result<()> {
    let env = common::start().await?;
    let pu = volume(&env, "p").await?;
    let na = namespace(&env, "/vol/p/na", "512M").await?;
    let nd = namespace(&env, "/vol/p/nd", "256M").await?;
    let sub = env
        .post(
            "/api/protocols/nvme/subsystems",
            json!({"svm": {"name": "svm1"}, "name": "sub", "os_type": "linux",
                   "hosts": [{"nqn": "nqn.2014-08.org.nvmexpress:uuid:0d6f8a43-8d5e-4d2b-9e6a-3f1f0f7c2a11"}]}),
        )
        .await?;
    assert_eq!(sub.status, 201, "{}", sub.body);
    let map = env
        .post(
            "/api/protocols/nvme/subsystem-maps",
            json!({"svm": {"name": "svm1"}, "subsystem": {"name": "sub"},
                   "namespace": {"name": "/vol/p/na"}}),
        )
        .await?;
    assert_eq!(map.status, 201, "{}", map.body);
    let s1 = snapshot(&env, &pu, "s1").await?;
    assert_eq!(
        kept(&env, &s1),
        Some((vec![], vec!["/vol/p/na".into(), "/vol/p/nd".into()]))
    );

    namespace(&env, "/vol/p/nb", "128M").await?;
    let grow = env
        .patch(
            &format!("/api/storage/namespaces/{}", na["uuid"].as_str().unwrap()),
            json!({"space": {"size": "1G"}}),
        )
        .await?;
    assert_eq!(grow.status, 200, "{}", grow.body);
    let gone = env
        .delete(&format!(
            "/api/storage/namespaces/{}",
            nd["uuid"].as_str().unwrap()
        ))
        .await?;
    assert_eq!(gone.status, 200, "{}", gone.body);

    let job = flexclone(&env, "c1", "p", Some("s1"), None).await?;
    assert_eq!(job["state"], "success", "{job}");
    let nss = in_volume(&env, "/api/storage/namespaces", "c1").await?;
    assert_eq!(names(&nss), ["/vol/c1/na", "/vol/c1/nd"]);
    assert_eq!(sizes(&nss), [512 * MIB, 256 * MIB]);
    assert_eq!(nss[0]["location"]["namespace"], "na");
    assert_eq!(nss[0]["status"]["mapped"], false);
    assert_eq!(nss[0].get("subsystem_map"), None);
    assert_ne!(nss[0]["uuid"], na["uuid"]);
    assert_ne!(nss[1]["uuid"], nd["uuid"]);
    assert_eq!(
        nss[0]["_links"]["self"]["href"],
        format!(
            "/api/storage/namespaces/{}",
            nss[0]["uuid"].as_str().unwrap()
        )
    );

    let job = flexclone(&env, "c2", "p", None, None).await?;
    assert_eq!(job["state"], "success", "{job}");
    let nss = in_volume(&env, "/api/storage/namespaces", "c2").await?;
    assert_eq!(names(&nss), ["/vol/c2/na", "/vol/c2/nb"]);
    assert_eq!(sizes(&nss), [GIB, 128 * MIB]);
    let parent = in_volume(&env, "/api/storage/namespaces", "p").await?;
    assert_eq!(names(&parent), ["/vol/p/na", "/vol/p/nb"]);
    assert_eq!(parent[0]["status"]["mapped"], true);
    Ok(())
}

#[tokio::test]
async fn deleting_a_snapshot_drops_what_it_kept() -> anyhow::Result<()> {
    let env = common::start().await?;
    let pu = volume(&env, "p").await?;
    lun(&env, "/vol/p/a", "64M", false).await?;
    let s1 = snapshot(&env, &pu, "s1").await?;
    lun(&env, "/vol/p/b", "64M", false).await?;
    assert_eq!(kept(&env, &s1), Some((vec!["/vol/p/a".into()], vec![])));

    // A rename keeps them; the delete drops them.
    let r = env
        .patch(
            &format!("/api/storage/volumes/{pu}/snapshots/{s1}"),
            json!({"name": "old"}),
        )
        .await?;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(kept(&env, &s1), Some((vec!["/vol/p/a".into()], vec![])));
    let (_, job) = env
        .run_job(
            Method::DELETE,
            &format!("/api/storage/volumes/{pu}/snapshots/{s1}"),
            None,
        )
        .await?;
    assert_eq!(job["state"], "success", "{job}");
    assert_eq!(kept(&env, &s1), None);
    assert_eq!(env.sim.state().get("snapshot_blocks"), None);

    // A new s1 holds the LUNs of its own time.
    let s1b = snapshot(&env, &pu, "s1").await?;
    assert_ne!(s1b, s1);
    let job = flexclone(&env, "c", "p", Some("s1"), None).await?;
    assert_eq!(job["state"], "success", "{job}");
    let luns = in_volume(&env, "/api/storage/luns", "c").await?;
    assert_eq!(names(&luns), ["/vol/c/a", "/vol/c/b"]);

    // Bulk create keeps them per snapshot; a volume delete drops its snapshots' ones,
    // and kept LUNs do not hold the volume.
    let qu = volume(&env, "q").await?;
    let x = lun(&env, "/vol/q/x", "64M", false).await?;
    let (_, job) = env
        .run_job(
            Method::POST,
            "/api/storage/volumes/*/snapshots",
            Some(json!({"records": [
                {"name": "bulk", "volume": {"name": "p"}, "svm": {"name": "svm1"}},
                {"name": "bulk", "volume": {"name": "q"}, "svm": {"name": "svm1"}}]})),
        )
        .await?;
    assert_eq!(job["state"], "success", "{job}");
    let snaps = env
        .get("/api/storage/volumes/*/snapshots?name=bulk&fields=volume.name&order_by=volume.name")
        .await?;
    let uuid_of = |i: usize| {
        snaps.body["records"][i]["uuid"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (bp, bq) = (uuid_of(0), uuid_of(1));
    assert_eq!(
        kept(&env, &bp),
        Some((vec!["/vol/p/a".into(), "/vol/p/b".into()], vec![]))
    );
    assert_eq!(kept(&env, &bq), Some((vec!["/vol/q/x".into()], vec![])));
    let r = env
        .delete(&format!(
            "/api/storage/luns/{}",
            x["uuid"].as_str().unwrap()
        ))
        .await?;
    assert_eq!(r.status, 200, "{}", r.body);
    let (_, job) = env
        .run_job(Method::DELETE, &format!("/api/storage/volumes/{qu}"), None)
        .await?;
    assert_eq!(job["state"], "success", "{job}");
    assert_eq!(kept(&env, &bq), None);
    assert_eq!(
        kept(&env, &bp),
        Some((vec!["/vol/p/a".into(), "/vol/p/b".into()], vec![]))
    );
    Ok(())
}

/// Every GET a client could make of the things involved, with every field.
async fn all_gets(env: &common::Env, vol: &str, snap: &str) -> anyhow::Result<String> {
    let mut out = String::new();
    for path in [
        "/api/storage/luns?fields=*".to_string(),
        "/api/storage/namespaces?fields=*".to_string(),
        "/api/storage/volumes?fields=*".to_string(),
        format!("/api/storage/volumes/{vol}?fields=*"),
        format!("/api/storage/volumes/{vol}/snapshots?fields=*"),
        "/api/storage/volumes/*/snapshots?fields=*".to_string(),
        format!("/api/storage/volumes/{vol}/snapshots/{snap}"),
        format!("/api/storage/volumes/{vol}/snapshots/{snap}?fields=*"),
        "/api/protocols/san/lun-maps?fields=*".to_string(),
        "/api/protocols/san/igroups?fields=*".to_string(),
        "/api/protocols/nvme/subsystem-maps?fields=*".to_string(),
        "/api/protocols/nvme/subsystems?fields=*".to_string(),
        "/api/cluster/jobs?fields=*".to_string(),
    ] {
        let r = env.get(&path).await?;
        anyhow::ensure!(r.status == 200, "{path} answered {}: {}", r.status, r.body);
        out.push_str(&r.body.to_string());
    }
    Ok(out)
}

#[tokio::test]
async fn kept_records_are_no_resource_and_survive_a_state_file() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let state = dir.path().join("state.json");
    let start = || with_state_file(&state);
    let env = common::start_with(start()).await?;
    let pu = volume(&env, "p").await?;
    lun(&env, "/vol/p/a", "64M", false).await?;
    let d = lun(&env, "/vol/p/d", "64M", false).await?;
    let nd = namespace(&env, "/vol/p/nd", "64M").await?;
    let before: BTreeSet<String> = env.sim.state()["collections"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let s1 = snapshot(&env, &pu, "s1").await?;
    for path in [
        format!("/api/storage/luns/{}", d["uuid"].as_str().unwrap()),
        format!("/api/storage/namespaces/{}", nd["uuid"].as_str().unwrap()),
    ] {
        let r = env.delete(&path).await?;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    lun(&env, "/vol/p/b", "64M", false).await?;

    // d and nd live on only in what s1 keeps: no GET, collection or request shows them.
    let d_serial = d["serial_number"].as_str().unwrap();
    let d_uuid = d["uuid"].as_str().unwrap();
    let nd_uuid = nd["uuid"].as_str().unwrap();
    let seen = all_gets(&env, &pu, &s1).await?;
    for hidden in [d_serial, d_uuid, nd_uuid] {
        assert!(!seen.contains(hidden), "{hidden} shows in a GET");
    }
    let r = env.get(&format!("/api/storage/luns/{d_uuid}")).await?;
    assert_eq!((r.status, &r.body["error"]["code"]), (404, &json!("4")));
    let r = env
        .get(&format!("/api/storage/namespaces/{nd_uuid}"))
        .await?;
    assert_eq!((r.status, &r.body["error"]["code"]), (404, &json!("4")));
    let state_now = env.sim.state();
    let after: BTreeSet<String> = state_now["collections"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let mut expected = before.clone();
    expected.insert("snapshots".into());
    assert_eq!(after, expected);
    assert!(!state_now["collections"].to_string().contains(d_serial));
    assert_eq!(
        state_now["snapshot_blocks"]
            .to_string()
            .matches(d_serial)
            .count(),
        1
    );
    assert!(!format!("{:?}", env.sim.requests()).contains(d_serial));
    assert_eq!(
        kept(&env, &s1),
        Some((
            vec!["/vol/p/a".into(), "/vol/p/d".into()],
            vec!["/vol/p/nd".into()]
        ))
    );
    env.sim.shutdown().await;

    // The state file keeps them, beside the collections.
    let doc: Value = serde_json::from_slice(&std::fs::read(&state)?)?;
    assert_eq!(
        doc["store"]["snapshot_blocks"][&s1]["volume_uuid"],
        json!(pu)
    );
    assert_eq!(doc["store"]["collections"].get("snapshot_blocks"), None);

    // After a restart from it, a clone of s1 still holds a, d and nd, and no GET shows
    // the kept records.
    let env = common::start_with(start()).await?;
    let seen = all_gets(&env, &pu, &s1).await?;
    for hidden in [d_serial, d_uuid, nd_uuid] {
        assert!(
            !seen.contains(hidden),
            "{hidden} shows in a GET after restart"
        );
    }
    let job = flexclone(&env, "c1", "p", Some("s1"), None).await?;
    assert_eq!(job["state"], "success", "{job}");
    let luns = in_volume(&env, "/api/storage/luns", "c1").await?;
    assert_eq!(names(&luns), ["/vol/c1/a", "/vol/c1/d"]);
    assert_ne!(luns[1]["serial_number"], json!(d_serial));
    let nss = in_volume(&env, "/api/storage/namespaces", "c1").await?;
    assert_eq!(names(&nss), ["/vol/c1/nd"]);
    env.sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_snapshot_from_an_older_state_file_clones_the_current_luns() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let state = dir.path().join("state.json");
    let start = || with_state_file(&state);
    let env = common::start_with(start()).await?;
    let pu = volume(&env, "p").await?;
    lun(&env, "/vol/p/a", "64M", false).await?;
    let s1 = snapshot(&env, &pu, "s1").await?;
    lun(&env, "/vol/p/b", "64M", false).await?;
    env.sim.shutdown().await;

    // As a state file written before snapshots kept their LUNs.
    let mut doc: Value = serde_json::from_slice(&std::fs::read(&state)?)?;
    let removed = doc["store"]
        .as_object_mut()
        .unwrap()
        .remove("snapshot_blocks");
    assert_eq!(removed.map(|b| b.as_object().unwrap().len()), Some(1));
    std::fs::write(&state, serde_json::to_vec(&doc)?)?;

    let env = common::start_with(start()).await?;
    assert_eq!(kept(&env, &s1), None);
    for c in ["c1", "c2"] {
        let job = flexclone(&env, c, "p", Some("s1"), None).await?;
        assert_eq!(job["state"], "success", "{job}");
        let luns = in_volume(&env, "/api/storage/luns", c).await?;
        assert_eq!(names(&luns), [format!("/vol/{c}/a"), format!("/vol/{c}/b")]);
    }
    env.sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_snapmirror_transfer_snapshot_keeps_the_luns_of_its_time() -> anyhow::Result<()> {
    let env = common::start().await?;
    let src = volume(&env, "msrc").await?;
    env.create_volume(
        json!({"name": "mdst", "svm": {"name": "svm1"}, "type": "dp",
                             "aggregates": [{"name": "aggr1"}], "size": "8GB"}),
    )
    .await?;
    lun(&env, "/vol/msrc/a", "64MB", false).await?;
    let r = env
        .post(
            "/api/snapmirror/relationships",
            json!({"source": {"path": "svm1:msrc"}, "destination": {"path": "svm1:mdst"}}),
        )
        .await?;
    assert_eq!(r.status, 202, "{}", r.body);
    let loc = r.header("location").unwrap().to_string();
    let job = env
        .wait_job(r.body["job"]["uuid"].as_str().unwrap())
        .await?;
    assert_eq!(job["state"], "success", "{job}");
    let (_, job) = env
        .run_job(Method::PATCH, &loc, Some(json!({"state": "snapmirrored"})))
        .await?;
    assert_eq!(job["state"], "success", "{job}");
    let snaps = env
        .get(&format!(
            "/api/storage/volumes/{src}/snapshots?name=snapmirror.*"
        ))
        .await?;
    let transfer = &snaps.body["records"][0];
    let (name, uuid) = (
        transfer["name"].as_str().unwrap().to_string(),
        transfer["uuid"].as_str().unwrap().to_string(),
    );
    assert_eq!(
        kept(&env, &uuid),
        Some((vec!["/vol/msrc/a".into()], vec![]))
    );

    // A LUN made after the transfer is not in a FlexClone of the transfer snapshot.
    lun(&env, "/vol/msrc/b", "64MB", false).await?;
    let job = flexclone(&env, "mclone", "msrc", Some(&name), None).await?;
    assert_eq!(job["state"], "success", "{job}");
    assert_eq!(
        names(&in_volume(&env, "/api/storage/luns", "mclone").await?),
        ["/vol/mclone/a"]
    );
    Ok(())
}
