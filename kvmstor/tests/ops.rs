//! Everyday datastore operations against the in-process ONTAP simulator: snapshots with and
//! without a guest freeze (thaw guaranteed), listing, locks, file clones from templates and
//! from snapshots, FlexClones, growing, SnapMirror protection and failover to a second SVM.
//! `virsh` runs through a fake runner that records the calls and fails the ones asked.

mod support;

use std::sync::{Arc, Mutex};

use host_storage::{Command, Output, Runner};
use kvmstor::ops::{self, DatastoreVolume, Freeze};
use kvmstor::{Env, Error, Host};
use ontap_client::models::VolumeCreate;
use ontap_client::{Client, Query};
use ontap_sim::SimServer;

#[derive(Debug, Default)]
struct FakeVirsh {
    calls: Mutex<Vec<String>>,
    fail: Mutex<Vec<String>>,
    stdout: Mutex<Vec<(String, String)>>,
}

#[async_trait::async_trait]
impl Runner for FakeVirsh {
    async fn run(&self, cmd: &Command) -> host_storage::Result<Output> {
        let line = cmd.to_string();
        self.calls.lock().unwrap().push(line.clone());
        assert_eq!(cmd.program(), "virsh", "{line}");
        if self.fail.lock().unwrap().iter().any(|f| line.ends_with(f)) {
            return cmd.check(Output::exit(1, "", "error: Guest agent is not responding"));
        }
        let out = self
            .stdout
            .lock()
            .unwrap()
            .iter()
            .find(|(k, _)| line.ends_with(k))
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        cmd.check(Output::success(out))
    }
}

struct World {
    sim: SimServer,
    client: Client,
    virsh: Arc<FakeVirsh>,
    env: Env,
    vol: DatastoreVolume,
}

async fn world(volume: &str) -> World {
    let (sim, client) = support::sim().await;
    client
        .volumes()
        .create(
            &VolumeCreate::flexvol(volume, "svm1", "aggr1")
                .size(10 << 30)
                .junction_path(format!("/{volume}")),
        )
        .await
        .unwrap();
    let virsh = Arc::new(FakeVirsh::default());
    let env = Env::new(client.clone()).host(
        Host::new("kvm1", virsh.clone())
            .address("192.0.2.101")
            .libvirt_uri("qemu:///system"),
    );
    World {
        sim,
        client,
        virsh,
        env,
        vol: DatastoreVolume::new("svm1", volume),
    }
}

impl World {
    fn calls(&self) -> Vec<String> {
        self.virsh.calls.lock().unwrap().clone()
    }

    async fn volume_uuid(&self, name: &str) -> String {
        self.client
            .volumes()
            .by_name("svm1", name)
            .await
            .unwrap()
            .unwrap()
            .uuid
            .unwrap()
    }

    async fn add_file(&self, path: &str) {
        let uuid = self.volume_uuid(&self.vol.volume).await;
        self.client
            .raw()
            .post(
                &format!("/api/storage/volumes/{uuid}/files/{path}"),
                &Query::new(),
                Some(&serde_json::json!({})),
            )
            .await
            .unwrap();
    }

    async fn files(&self) -> Vec<String> {
        let uuid = self.volume_uuid(&self.vol.volume).await;
        let v: serde_json::Value = self
            .client
            .raw()
            .get(
                &format!("/api/storage/volumes/{uuid}/files/"),
                &Query::new(),
            )
            .await
            .unwrap();
        let mut names: Vec<String> = v["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                r["name"]
                    .as_str()
                    .or(r["path"].as_str())
                    .unwrap()
                    .to_owned()
            })
            .collect();
        names.sort();
        names
    }
}

fn freeze(domains: &[&str]) -> Freeze {
    Freeze::Domains {
        host: "kvm1".into(),
        domains: domains.iter().map(|d| (*d).to_owned()).collect(),
    }
}

#[tokio::test]
async fn snapshot_list_and_lock() {
    let w = world("ops_snap").await;
    let s1 = ops::snapshot(&w.env, &w.vol, "daily1", &Freeze::None)
        .await
        .unwrap();
    assert_eq!(s1.name, "daily1");
    assert!(s1.locked_until.is_none());
    // The same name again is the same snapshot, not a second one.
    let again = ops::snapshot(&w.env, &w.vol, "daily1", &Freeze::None)
        .await
        .unwrap();
    assert_eq!(again.uuid, s1.uuid);
    ops::snapshot(&w.env, &w.vol, "daily2", &Freeze::None)
        .await
        .unwrap();
    let names: Vec<String> = ops::list_snapshots(&w.env, &w.vol)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["daily1", "daily2"]);

    let locked = ops::lock_snapshot(&w.env, &w.vol, "daily1", "2099-01-01T00:00:00Z")
        .await
        .unwrap();
    assert!(
        locked
            .locked_until
            .as_deref()
            .is_some_and(|t| t.starts_with("2099-01-01")),
        "{locked:?}"
    );
    // A locked snapshot cannot be deleted.
    let vol_uuid = w.volume_uuid("ops_snap").await;
    let err = w
        .client
        .snapshots(&vol_uuid)
        .delete(&locked.uuid)
        .await
        .unwrap_err();
    assert!(!err.is_not_found(), "{err}");
    assert_eq!(ops::list_snapshots(&w.env, &w.vol).await.unwrap().len(), 2);
    assert!(w.calls().is_empty());
}

#[tokio::test]
async fn snapshot_freezes_then_thaws_guests_even_when_the_snapshot_fails() {
    let w = world("ops_freeze").await;
    ops::snapshot(&w.env, &w.vol, "s1", &freeze(&["vm1", "vm2"]))
        .await
        .unwrap();
    assert_eq!(
        w.calls(),
        [
            "virsh -c qemu:///system domfsfreeze vm1",
            "virsh -c qemu:///system domfsfreeze vm2",
            "virsh -c qemu:///system domfsthaw vm2",
            "virsh -c qemu:///system domfsthaw vm1",
        ]
    );
    // The snapshot fails: both guests are thawed anyway, and the error is the snapshot's.
    w.virsh.calls.lock().unwrap().clear();
    w.sim.faults().add(support::rpc_failure(
        "POST",
        "/api/storage/volumes/*/snapshots",
    ));
    let err = ops::snapshot(&w.env, &w.vol, "s2", &freeze(&["vm1", "vm2"]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Operation { .. }), "{err}");
    assert_eq!(w.calls().len(), 4);
    assert!(w.calls()[3].ends_with("domfsthaw vm1"));
    // Freezing vm2 fails: vm1 is thawed, no snapshot is taken.
    w.virsh.calls.lock().unwrap().clear();
    w.virsh.fail.lock().unwrap().push("domfsfreeze vm2".into());
    let err = ops::snapshot(&w.env, &w.vol, "s3", &freeze(&["vm1", "vm2"]))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "freeze domain vm2 on kvm1 failed");
    assert_eq!(
        w.calls(),
        [
            "virsh -c qemu:///system domfsfreeze vm1",
            "virsh -c qemu:///system domfsfreeze vm2",
            "virsh -c qemu:///system domfsthaw vm1",
        ]
    );
    // A thaw that fails is reported, with the snapshot taken.
    w.virsh.fail.lock().unwrap().clear();
    w.virsh.fail.lock().unwrap().push("domfsthaw vm1".into());
    let err = ops::snapshot(&w.env, &w.vol, "s4", &freeze(&["vm1"]))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "host kvm1: thawing vm1 failed (snapshot taken)"
    );
    let names: Vec<String> = ops::list_snapshots(&w.env, &w.vol)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["s1", "s4"]);
}

#[tokio::test]
async fn clone_from_template_and_restore_from_snapshot() {
    let w = world("ops_files").await;
    w.add_file("templates/debian12.qcow2").await;
    ops::clone_file(&w.env, &w.vol, "templates/debian12.qcow2", "vm1.qcow2")
        .await
        .unwrap();
    assert!(w.files().await.contains(&"vm1.qcow2".to_owned()));
    // An existing disk is never overwritten by a clone.
    let err = ops::clone_file(&w.env, &w.vol, "templates/debian12.qcow2", "vm1.qcow2")
        .await
        .unwrap_err();
    assert!(err
        .to_string()
        .contains("clone templates/debian12.qcow2 to vm1.qcow2"));

    ops::snapshot(&w.env, &w.vol, "before-upgrade", &Freeze::None)
        .await
        .unwrap();
    ops::restore_file(&w.env, &w.vol, "before-upgrade", "/vm1.qcow2")
        .await
        .unwrap();
    ops::restore_file_as(
        &w.env,
        &w.vol,
        "before-upgrade",
        "vm1.qcow2",
        "vm1-restored.qcow2",
    )
    .await
    .unwrap();
    let bodies: Vec<serde_json::Value> = w
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/api/storage/file/clone")
        .filter_map(|r| r.body)
        .collect();
    assert_eq!(bodies.len(), 4);
    assert_eq!(
        bodies[2]["source_path"],
        ".snapshot/before-upgrade/vm1.qcow2"
    );
    assert_eq!(bodies[2]["destination_path"], "vm1.qcow2");
    assert_eq!(bodies[2]["overwrite_destination"], true);
    assert_eq!(bodies[3]["destination_path"], "vm1-restored.qcow2");
    assert_eq!(bodies[3]["overwrite_destination"], false);
    assert!(w.files().await.contains(&"vm1-restored.qcow2".to_owned()));
    // No such snapshot: refused before any clone.
    let err = ops::restore_file(&w.env, &w.vol, "nope", "vm1.qcow2")
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "restore vm1.qcow2 from snapshot nope of svm1:ops_files failed"
    );
}

#[tokio::test]
async fn flexclone_and_grow() {
    let w = world("ops_clone").await;
    ops::snapshot(&w.env, &w.vol, "golden", &Freeze::None)
        .await
        .unwrap();
    let uuid = ops::flexclone(&w.env, &w.vol, "ops_clone_dev", Some("golden"))
        .await
        .unwrap();
    assert_eq!(
        ops::flexclone(&w.env, &w.vol, "ops_clone_dev", Some("golden"))
            .await
            .unwrap(),
        uuid
    );
    let clone = w
        .client
        .volumes()
        .get(&uuid, &Query::new().fields(["clone", "nas.path", "name"]))
        .await
        .unwrap();
    assert_eq!(clone.junction_path(), Some("/ops_clone_dev"));
    let c = clone.clone.unwrap();
    assert_eq!(c.is_flexclone, Some(true));
    assert_eq!(
        c.parent_volume.and_then(|p| p.name).as_deref(),
        Some("ops_clone")
    );

    ops::grow_volume(&w.env, &w.vol, 20 << 30).await.unwrap();
    let v = w
        .client
        .volumes()
        .find(
            &Query::new()
                .filter("name", "ops_clone")
                .fields(["space.size"]),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v.space.unwrap().size, Some(20 << 30));
    let err = ops::grow_volume(&w.env, &w.vol, 1 << 30).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid size \"1073741824\": a datastore only grows"
    );
}

#[tokio::test]
async fn protect_to_a_second_svm_and_fail_over() {
    let w = world("ops_dr").await;
    // The default seed has one SVM; make the second through the API.
    w.client
        .raw()
        .post(
            "/api/svm/svms",
            &Query::new(),
            Some(&serde_json::json!({"name": "svm_dr", "aggregates": [{"name": "aggr1"}]})),
        )
        .await
        .unwrap();
    let dest = DatastoreVolume::new("svm_dr", "ops_dr_dst");
    let rel = ops::protect(&w.env, &w.vol, &dest, None).await.unwrap();
    assert_eq!(
        ops::protect(&w.env, &w.vol, &dest, None).await.unwrap(),
        rel
    );
    let r = w
        .client
        .snapmirror_relationships()
        .get(
            &rel,
            &Query::new().fields(["state", "source", "destination"]),
        )
        .await
        .unwrap();
    assert_eq!(r.state.unwrap().to_string(), "snapmirrored");
    ops::failover(&w.env, &dest).await.unwrap();
    let r = w
        .client
        .snapmirror_relationships()
        .get(&rel, &Query::new().fields(["state"]))
        .await
        .unwrap();
    assert_eq!(r.state.unwrap().to_string(), "broken_off");
    // Failing over again changes nothing.
    ops::failover(&w.env, &dest).await.unwrap();
    let v: serde_json::Value = w
        .client
        .raw()
        .get(
            "/api/storage/volumes",
            &Query::new()
                .filter("name", "ops_dr_dst")
                .fields(["type", "svm.name"]),
        )
        .await
        .unwrap();
    assert_eq!(v["records"][0]["type"], "rw");
    assert_eq!(v["records"][0]["svm"]["name"], "svm_dr");
}

#[tokio::test]
async fn domains_on_a_datastore_are_found_by_their_disks() {
    let w = world("ops_doms").await;
    w.virsh.stdout.lock().unwrap().extend([
        ("list --name --state-running".to_owned(), "vm1\nvm2\n\n".to_owned()),
        (
            "domblklist vm1 --details".to_owned(),
            " Type   Device   Target   Source\n----------------------------------\n file   disk     vda      /var/lib/kvmstor/mnt/ds1/vm1.qcow2\n".to_owned(),
        ),
        (
            "domblklist vm2 --details".to_owned(),
            " Type   Device   Target   Source\n----------------------------------\n file   disk     vda      /var/lib/kvmstor/mnt/ds10/vm2.qcow2\n file   cdrom    sda      -\n".to_owned(),
        ),
    ]);
    let host = w.env.find_host("kvm1").unwrap();
    let found = ops::domains_on(host, std::path::Path::new("/var/lib/kvmstor/mnt/ds1"))
        .await
        .unwrap();
    assert_eq!(found, ["vm1"]);
}
