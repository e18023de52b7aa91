//! NFS attach/detach against the in-process ONTAP simulator, scratch host roots and
//! libvirt's `test:///default`: a failure injected at every step k, a crash at every step k
//! followed by `recover`, idempotent re-apply, detach, plan, locks.
//!
//! This machine has no NFS client, so host mount steps run through `FakeMounts`, a fake
//! runner that plays the kernel: `mount` adds a line to the scratch root's mountinfo,
//! `umount` removes it. The lab runs the real path.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kvmstor::nfs::{NfsDatastore, NfsStep, Persist, PoolKind};
use kvmstor::saga::{
    ActionKind, LockKey, LockRegistry, RecoverMode, RunOutcome, RunStatus, Saga, StepState,
};
use kvmstor::{Env, Error};
use libvirt_pools::{Libvirt, PoolDef};
use ontap_client::Client;
use ontap_sim::{ApiError, Fault, SimServer};
use support::{crash, crash_cases, labels as steps_of, rpc_failure, Frozen, TreeOpts, FSTAB};

const AUTO_MASTER: &str = "+dir:/etc/auto.master.d\n+auto.master\n";

/// A scratch host (see `support::MountHost`): its root, fake kernel and `Host`.
type TestHost = support::MountHost;

/// Host `name` at `address` with `fstab`; a failed mount says what mount.nfs says.
fn test_host(name: &str, address: &str, fstab: &str) -> TestHost {
    support::MountHost::new(
        name,
        address,
        &[("etc/fstab", fstab), ("etc/auto.master", AUTO_MASTER)],
        "mount.nfs: Connection refused",
    )
}

struct World {
    /// libvirt's test driver keeps its state only while a connection is open.
    _lv: Libvirt,
    sim: SimServer,
    client: Client,
    hosts: Vec<TestHost>,
    env: Env,
    pool: String,
}

async fn world(pool: &str, fstab: &str) -> World {
    let (sim, client) = support::sim().await;
    let hosts = vec![test_host("kvm1", "192.0.2.101", fstab)];
    let env = Env::new(client.clone()).host(hosts[0].host.clone());
    World {
        _lv: Libvirt::connect("test:///default").await.unwrap(),
        sim,
        client,
        hosts,
        env,
        pool: pool.to_owned(),
    }
}

impl World {
    fn datastore(&self) -> NfsDatastore {
        NfsDatastore::new("svm1", &self.pool, "aggr1", 10 << 30)
            .hosts(self.hosts.iter().map(|h| h.host.name().to_owned()))
            .mount_point(self.hosts[0].mount_point(&self.pool))
    }

    async fn volume_exists(&self) -> bool {
        self.client
            .volumes()
            .by_name("svm1", &self.pool.replace('-', "_"))
            .await
            .unwrap()
            .is_some()
    }

    async fn policy_exists(&self) -> bool {
        self.client
            .export_policies()
            .by_name("svm1", &format!("kvmstor_{}", self.pool.replace('-', "_")))
            .await
            .unwrap()
            .is_some()
    }

    async fn pool_def(&self) -> Option<PoolDef> {
        support::pool_def(&self.pool).await
    }

    /// Nothing of the datastore anywhere; host files exactly as `fstab` / before.
    async fn assert_clean(&self, fstab: &str, context: &str) {
        let fstabs = vec![fstab; self.hosts.len()];
        self.assert_clean_hosts(&fstabs, context).await;
    }

    /// As `assert_clean`, with each host's own fstab.
    async fn assert_clean_hosts(&self, fstabs: &[&str], context: &str) {
        assert!(!self.volume_exists().await, "{context}: volume left");
        assert!(!self.policy_exists().await, "{context}: export policy left");
        assert!(self.pool_def().await.is_none(), "{context}: pool left");
        for (h, fstab) in self.hosts.iter().zip(fstabs) {
            support::assert_host_files(&h.root, fstab, context);
            assert_eq!(
                h.read("etc/auto.master").as_deref(),
                Some(AUTO_MASTER),
                "{context}: auto.master"
            );
            assert_eq!(h.read("etc/auto.kvmstor"), None, "{context}: autofs map");
        }
        assert!(
            !self.hosts[0].mount_point(&self.pool).exists(),
            "{context}: mount point left"
        );
    }

    /// Everything of the datastore in place.
    async fn assert_attached(&self, context: &str) {
        assert!(self.volume_exists().await, "{context}: no volume");
        assert!(self.policy_exists().await, "{context}: no policy");
        let h = &self.hosts[0];
        let mp = h.mount_point(&self.pool);
        let fstab = h.read("etc/fstab").unwrap();
        assert!(
            fstab.ends_with(&format!(
                "# kvmstor:kvmstor-{} (managed by kvmstor; removed by its undo)\n192.0.2.10:/{} {} nfs vers=4.1,nconnect=4,hard,_netdev 0 0\n",
                self.pool,
                self.pool.replace('-', "_"),
                mp.display()
            )),
            "{context}: fstab is {fstab:?}"
        );
        assert!(h
            .read("proc/self/mountinfo")
            .unwrap()
            .contains(&format!(" {} ", mp.display())));
        let def = self.pool_def().await.expect("pool defined");
        assert_eq!(def.target.as_deref(), Some(mp.to_str().unwrap()));
    }
}

#[tokio::test]
async fn attach_plan_lists_every_action_and_run_applies_it() {
    let w = world("ds-plan", FSTAB).await;
    let saga = w.datastore().attach(&w.env).await.unwrap();
    let mp = w.hosts[0].mount_point("ds-plan");
    assert_eq!(
        steps_of(&saga),
        [
            "CreateExportPolicy svm1/kvmstor_ds_plan",
            "AddExportRule svm1/kvmstor_ds_plan for kvm1",
            "CreateVolume svm1/ds_plan",
            &format!("MountNfs kvm1:{}", mp.display()),
            "PersistFstab kvm1:kvmstor-ds-plan",
            "DefinePool kvm1:ds-plan",
        ]
    );
    let plan = saga.plan();
    assert_eq!(plan.actions.len(), 6);
    assert_eq!(
        plan.actions[0].action,
        ActionKind::OntapCall {
            method: "POST".into(),
            path: "/api/protocols/nfs/export-policies".into(),
            summary: "create export policy kvmstor_ds_plan in SVM svm1".into(),
        }
    );
    assert_eq!(
        plan.actions[3].action,
        ActionKind::HostCommand {
            host: "kvm1".into(),
            command: format!(
                "mount -t nfs -o vers=4.1,nconnect=4,hard 192.0.2.10:/ds_plan {}",
                mp.display()
            ),
        }
    );
    assert_eq!(
        plan.actions[4].action,
        ActionKind::FileChange {
            host: "kvm1".into(),
            path: "/etc/fstab".into(),
            line: format!(
                "192.0.2.10:/ds_plan {} nfs vers=4.1,nconnect=4,hard,_netdev 0 0",
                mp.display()
            ),
        }
    );
    let ActionKind::LibvirtDefinition { xml, .. } = &plan.actions[5].action else {
        panic!("not a definition: {:?}", plan.actions[5]);
    };
    assert!(
        xml.contains("<pool type='dir'>") || xml.contains("<pool type=\"dir\">"),
        "{xml}"
    );
    let text = plan.to_string();
    assert!(text.starts_with("plan for nfs-attach svm1/ds_plan as pool ds-plan (6 steps)\n"));
    // Planning touched nothing.
    w.assert_clean(FSTAB, "after plan").await;
    assert!(w.hosts[0].kernel.calls().is_empty());

    let report = saga.run(&w.env).await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Applied { changed: 6 });
    assert_eq!(report.journal.status, RunStatus::Completed);
    w.assert_attached("after attach").await;
    let posted: Vec<String> = w
        .sim
        .requests()
        .iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        posted,
        [
            "POST /api/protocols/nfs/export-policies",
            &format!(
                "POST /api/protocols/nfs/export-policies/{}/rules",
                w.client
                    .export_policies()
                    .by_name("svm1", "kvmstor_ds_plan")
                    .await
                    .unwrap()
                    .unwrap()
                    .id
                    .unwrap()
            ),
            "POST /api/storage/volumes",
        ]
    );

    // Applying again changes nothing and says so.
    let again = w.datastore().attach(&w.env).await.unwrap();
    assert_eq!(
        again.run(&w.env).await.unwrap().outcome,
        RunOutcome::AlreadyApplied
    );

    // Detach keeps the ONTAP objects by default...
    let detach = w.datastore().detach(&w.env).await.unwrap();
    assert_eq!(
        steps_of(&detach),
        [
            "RemovePool kvm1:ds-plan",
            "RemoveFstab kvm1:kvmstor-ds-plan",
            &format!("UnmountNfs kvm1:{}", mp.display()),
        ]
    );
    assert_eq!(
        detach.run(&w.env).await.unwrap().outcome,
        RunOutcome::Applied { changed: 3 }
    );
    assert!(w.volume_exists().await && w.policy_exists().await);
    assert!(w.pool_def().await.is_none());
    // ...and deletes them when asked; then everything is as before. Detaching what is not
    // attached changes nothing and says so.
    for outcome in [
        RunOutcome::Applied { changed: 2 },
        RunOutcome::AlreadyApplied,
    ] {
        let detach = w
            .datastore()
            .delete_ontap_objects(true)
            .detach(&w.env)
            .await
            .unwrap();
        assert_eq!(detach.run(&w.env).await.unwrap().outcome, outcome);
        w.assert_clean(FSTAB, &format!("after detach ({outcome})"))
            .await;
    }
    assert_eq!(
        w.hosts[0].kernel.calls(),
        [
            format!(
                "mount -t nfs -o vers=4.1,nconnect=4,hard 192.0.2.10:/ds_plan {}",
                mp.display()
            ),
            format!("umount {}", mp.display()),
        ]
    );
}

/// How step k of the single-host fstab/dir attach is made to fail.
async fn inject(w: &World, k: usize) {
    match k {
        0 => w
            .sim
            .faults()
            .add(rpc_failure("POST", "/api/protocols/nfs/export-policies")),
        1 => w.sim.faults().add(Fault::error(
            Some("POST"),
            "/api/protocols/nfs/export-policies/*/rules",
            ApiError::new(400, "1704036", "Invalid clientmatch"),
        )),
        2 => w.sim.faults().add(support::no_space()),
        3 => w.hosts[0].kernel.fail("mount", 1),
        4 => {} // a foreign fstab line for the mount point: see fstab_for
        // A pool of the same name, defined otherwise: someone else's.
        5 => support::define_foreign_pool(&w.pool).await,
        _ => unreachable!(),
    }
}

fn fstab_for(k: usize, pool: &str, root: &Path) -> String {
    if k == 4 {
        foreign_fstab(&root.join("mnt").join(pool))
    } else {
        FSTAB.to_owned()
    }
}

#[tokio::test]
async fn attach_failure_at_every_step_leaves_a_clean_slate() {
    for k in 0..6 {
        let pool = format!("ds-fail-{k}");
        // The fstab depends on the root, which is made by `world`: build, then rewrite.
        let w = world(&pool, FSTAB).await;
        let fstab = fstab_for(k, &pool, &w.hosts[0].root);
        std::fs::write(w.hosts[0].root.join("etc/fstab"), &fstab).unwrap();
        inject(&w, k).await;
        let saga = w.datastore().attach(&w.env).await.unwrap();
        let err = saga.run(&w.env).await.unwrap_err();
        match &err {
            Error::StepFailed { index, .. } => assert_eq!(*index, k, "{err}"),
            other => panic!("step {k}: {other}"),
        }
        if k == 5 {
            // The foreign pool is untouched; ours was never made.
            let def = w.pool_def().await.unwrap();
            assert_eq!(
                def.target.as_deref(),
                Some(format!("/srv/someone-elses/{pool}").as_str())
            );
            support::remove_pool(&pool).await;
        }
        assert!(w.pool_def().await.is_none(), "step {k}: pool left");
        w.assert_clean(&fstab, &format!("failure at step {k}"))
            .await;
    }
}

#[tokio::test]
async fn crash_at_every_step_then_recover_unwinds_or_finishes() {
    for c in crash_cases(6) {
        let (k, point, mode) = (c.k, c.point, c.mode);
        let w = world(&format!("ds-crash-{}", c.tag()), FSTAB).await;
        let saga = w.datastore().attach(&w.env).await.unwrap();
        let crashed = crash(saga, &w.env, &c).await;
        // The journal on disk shows step k started and not finished.
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&crashed.journal).unwrap()).unwrap();
        assert_eq!(doc["status"], "running");
        assert_eq!(doc["steps"][k]["state"]["state"], "started");
        // A second run on the same journal is refused until recovered.
        let again = w
            .datastore()
            .attach(&w.env)
            .await
            .unwrap()
            .journal_file(&crashed.journal);
        assert!(matches!(
            again.run(&w.env).await.unwrap_err(),
            Error::JournalUnfinished { .. }
        ));

        let report = crashed
            .recover::<NfsStep>(&w.env, mode, LockRegistry::global())
            .await;
        let context = format!("crash {point:?}, recover {mode:?}");
        match mode {
            RecoverMode::Unwind => {
                assert!(
                    matches!(report.outcome, RunOutcome::Unwound { .. }),
                    "{context}"
                );
                assert_eq!(report.journal.status, RunStatus::Unwound);
                assert!(w.pool_def().await.is_none(), "{context}: pool left");
                w.assert_clean(FSTAB, &context).await;
            }
            RecoverMode::Resume => {
                assert_eq!(report.journal.status, RunStatus::Completed, "{context}");
                w.assert_attached(&context).await;
                // The finished journal needs nothing more.
                let again = crashed
                    .recover::<NfsStep>(&w.env, mode, LockRegistry::global())
                    .await;
                assert_eq!(again.outcome, RunOutcome::NothingToRecover);
                w.detach_all().await;
                w.assert_clean(FSTAB, &format!("{context}, detached")).await;
            }
        }
    }
}

#[tokio::test]
async fn failed_undo_needs_attention_and_recover_finishes_the_unwind() {
    let w = world("ds-attn", FSTAB).await;
    // The pool step fails (foreign pool), and the volume's undo fails once (DELETE answers
    // 500): unwinding stops at the volume.
    inject(&w, 5).await;
    w.sim
        .faults()
        .add(rpc_failure("DELETE", "/api/storage/volumes/*"));
    let journal_dir = tempfile::tempdir().unwrap();
    let journal = journal_dir.path().join("attach.json");
    let saga = w
        .datastore()
        .attach(&w.env)
        .await
        .unwrap()
        .journal_file(&journal);
    let err = saga.run(&w.env).await.unwrap_err();
    let Error::NeedsAttention {
        index,
        undo,
        remaining,
        ..
    } = &err
    else {
        panic!("{err}");
    };
    assert_eq!(*index, 5);
    let undo = undo.as_deref().unwrap();
    assert_eq!(undo.step, "CreateVolume svm1/ds_attn");
    assert!(
        undo.error
            .as_deref()
            .unwrap()
            .contains("HTTP 500, code 65552"),
        "{undo:?}"
    );
    assert_eq!(
        remaining,
        &[
            "CreateExportPolicy svm1/kvmstor_ds_attn",
            "AddExportRule svm1/kvmstor_ds_attn for kvm1",
            "CreateVolume svm1/ds_attn",
        ]
    );
    assert!(err
        .to_string()
        .contains("then undoing CreateVolume svm1/ds_attn failed"));
    // The host side was already unwound.
    assert_eq!(w.hosts[0].read("etc/fstab").as_deref(), Some(FSTAB));
    let doc = kvmstor::saga::Journal::<NfsStep>::read(&journal).unwrap();
    assert_eq!(doc.status, RunStatus::NeedsAttention);
    assert!(matches!(doc.steps[2].state, StepState::UndoFailed { .. }));

    // The fault fired once; recover completes the unwind.
    let report = support::recover_run::<NfsStep>(&journal, &w.env, RecoverMode::Resume).await;
    assert_eq!(report.journal.status, RunStatus::Unwound);
    support::remove_pool("ds-attn").await;
    w.assert_clean(FSTAB, "after recover").await;
}

#[tokio::test]
async fn autofs_and_netfs_variants_unwind_at_every_step() {
    // autofs + dir: policy, rule, volume, autofs entry, pool.
    for k in 0..5 {
        let pool = format!("ds-autofs-{k}");
        let w = world(&pool, FSTAB).await;
        let ds = w.datastore().persist(Persist::Autofs);
        let saga = ds.attach(&w.env).await.unwrap();
        assert_eq!(saga.steps().len(), 5);
        if k < 3 {
            inject(&w, k).await;
        } else if k == 3 {
            // A foreign auto.master line for our map path.
            std::fs::write(
                w.hosts[0].root.join("etc/auto.master"),
                format!("{AUTO_MASTER}/- /etc/auto.kvmstor --timeout=60\n"),
            )
            .unwrap();
        } else {
            inject(&w, 5).await;
        }
        let err = saga.run(&w.env).await.unwrap_err();
        assert!(
            matches!(err, Error::StepFailed { index, .. } if index == k),
            "{k}: {err}"
        );
        if k == 3 {
            assert_eq!(
                w.hosts[0].read("etc/auto.master").unwrap(),
                format!("{AUTO_MASTER}/- /etc/auto.kvmstor --timeout=60\n")
            );
            std::fs::write(w.hosts[0].root.join("etc/auto.master"), AUTO_MASTER).unwrap();
        }
        if k == 4 {
            support::remove_pool(&pool).await;
        }
        w.assert_clean(FSTAB, &format!("autofs step {k}")).await;
    }

    // autofs happy path writes the map and master line; detach removes them.
    let w = world("ds-autofs-ok", FSTAB).await;
    let ds = w.datastore().persist(Persist::Autofs);
    ds.attach(&w.env).await.unwrap().run(&w.env).await.unwrap();
    let mp = w.hosts[0].mount_point("ds-autofs-ok");
    assert_eq!(
        w.hosts[0].read("etc/auto.kvmstor").unwrap(),
        format!(
            "# kvmstor:kvmstor-ds-autofs-ok (managed by kvmstor; removed by its undo)\n{} -fstype=nfs,vers=4.1,nconnect=4,hard 192.0.2.10:/ds_autofs_ok\n",
            mp.display()
        )
    );
    ds.clone()
        .delete_ontap_objects(true)
        .detach(&w.env)
        .await
        .unwrap()
        .run(&w.env)
        .await
        .unwrap();
    assert!(w.pool_def().await.is_none());
    w.assert_clean(FSTAB, "autofs detached").await;

    // netfs: no host mount or fstab step; libvirt mounts with the options.
    let w = world("ds-netfs", FSTAB).await;
    let ds = w.datastore().pool_kind(PoolKind::Netfs);
    let saga = ds.attach(&w.env).await.unwrap();
    assert_eq!(
        steps_of(&saga),
        [
            "CreateExportPolicy svm1/kvmstor_ds_netfs",
            "AddExportRule svm1/kvmstor_ds_netfs for kvm1",
            "CreateVolume svm1/ds_netfs",
            "DefinePool kvm1:ds-netfs",
        ]
    );
    let plan = saga.plan();
    let ActionKind::LibvirtDefinition { xml, .. } = &plan.actions[3].action else {
        panic!();
    };
    assert!(xml.contains("nconnect=4"), "{xml}");
    assert!(xml.contains("192.0.2.10"), "{xml}");
    inject(&w, 5).await;
    let err = saga.run(&w.env).await.unwrap_err();
    assert!(matches!(err, Error::StepFailed { index: 3, .. }), "{err}");
    support::remove_pool("ds-netfs").await;
    w.assert_clean(FSTAB, "netfs").await;
}

#[tokio::test]
async fn two_hosts_get_one_rule_each_and_trunking_with_two_lifs() {
    let _lv = Libvirt::connect("test:///default").await.unwrap();
    let (_sim, client) = support::sim().await;
    // A second data_nfs LIF.
    client
        .raw()
        .post(
            "/api/network/ip/interfaces",
            &ontap_client::Query::new(),
            Some(
                &serde_json::json!({"name": "lif_nfs2", "svm": {"name": "svm1"},
                "ip": {"address": "192.0.2.12", "netmask": "24"},
                "location": {"home_node": {"name": "sim-cluster-02"}},
                "service_policy": {"name": "default-data-files"}}),
            ),
        )
        .await
        .unwrap();
    let h1 = test_host("kvm1", "192.0.2.101", FSTAB);
    let h2 = test_host("kvm2", "192.0.2.102", FSTAB);
    let env = Env::new(client.clone())
        .host(h1.host.clone())
        .host(h2.host.clone());
    let ds = NfsDatastore::new("svm1", "ds-two", "aggr1", 1 << 30)
        .hosts(["kvm1", "kvm2"])
        .mount_point(h1.mount_point("ds-two"));
    let lifs = ds.lif_addresses(&env).await.unwrap();
    assert_eq!(lifs, ["192.0.2.10", "192.0.2.12"]);
    let saga = ds.attach(&env).await.unwrap();
    assert_eq!(saga.steps().len(), 10);
    let plan = saga.plan();
    let mount = format!(
        "mount -t nfs -o vers=4.1,nconnect=4,max_connect=2,trunkdiscovery,hard 192.0.2.10:/ds_two {}",
        h1.mount_point("ds-two").display()
    );
    for (step, host) in [(4, "kvm1"), (7, "kvm2")] {
        assert_eq!(
            plan.actions[step].action,
            ActionKind::HostCommand {
                host: host.into(),
                command: mount.clone(),
            }
        );
    }
    let keys = saga.lock_keys();
    assert!(keys.contains(&LockKey::host("kvm1")) && keys.contains(&LockKey::host("kvm2")));
    saga.run(&env).await.unwrap();
    let policy = client
        .export_policies()
        .by_name("svm1", "kvmstor_ds_two")
        .await
        .unwrap()
        .unwrap();
    let rules = client
        .export_rules(policy.id.unwrap())
        .list_all(&ontap_client::Query::new().fields(["index", "clients"]))
        .await
        .unwrap();
    let clients: Vec<Vec<String>> = rules
        .iter()
        .map(|r| {
            r.clients
                .iter()
                .flatten()
                .filter_map(|c| c.match_.clone())
                .collect()
        })
        .collect();
    assert_eq!(clients, [["192.0.2.101"], ["192.0.2.102"]]);
    assert_eq!(h1.kernel.calls(), vec![mount.clone()]);
    assert_eq!(h2.kernel.calls(), vec![mount]);
    ds.clone()
        .delete_ontap_objects(true)
        .detach(&env)
        .await
        .unwrap()
        .run(&env)
        .await
        .unwrap();
    assert!(client
        .export_policies()
        .by_name("svm1", "kvmstor_ds_two")
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn runs_on_the_same_targets_do_not_interleave() {
    let locks = Arc::new(LockRegistry::new());
    let held = locks.acquire([LockKey::host("kvm1")]).await;
    assert!(locks.is_held(&LockKey::host("kvm1")));
    let w = world("ds-lock", FSTAB).await;
    let saga = w
        .datastore()
        .attach(&w.env)
        .await
        .unwrap()
        .lock_registry(locks.clone());
    let env = w.env.clone();
    let run = tokio::spawn(async move { saga.run(&env).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Blocked on kvm1: nothing happened yet.
    assert!(!run.is_finished());
    assert!(!w.policy_exists().await);
    drop(held);
    let report = run.await.unwrap().unwrap();
    assert_eq!(report.outcome, RunOutcome::Applied { changed: 6 });
    w.detach_all().await;
    w.assert_clean(FSTAB, "lock").await;
}

#[tokio::test]
async fn a_journal_file_is_locked_against_a_second_process() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("j.json");
    let first = kvmstor::saga::JournalLock::acquire(&journal).unwrap();
    assert!(matches!(
        kvmstor::saga::JournalLock::acquire(&journal),
        Err(Error::JournalBusy { .. })
    ));
    drop(first);
    kvmstor::saga::JournalLock::acquire(&journal).unwrap();
}

async fn world2(pool: &str) -> World {
    let mut w = world(pool, FSTAB).await;
    let h2 = test_host("kvm2", "192.0.2.102", FSTAB);
    w.env = w.env.clone().host(h2.host.clone());
    w.hosts.push(h2);
    w
}

fn foreign_fstab(mount_point: &Path) -> String {
    format!(
        "{FSTAB}filer:/other {} nfs defaults 0 0\n",
        mount_point.display()
    )
}

#[tokio::test]
async fn two_host_attach_failure_at_every_step_leaves_a_clean_slate() {
    // 0 policy, 1-2 rules, 3 volume, 4-6 kvm1 mount/fstab/pool, 7-9 kvm2 mount/fstab/pool.
    // Both hosts share libvirt's in-process test driver, so kvm2's pool step finds kvm1's
    // pool (unchanged) and cannot fail on its own: k = 9 is not injected.
    for k in 0..9 {
        let pool = format!("ds-two-fail-{k}");
        let w = world2(&pool).await;
        let mp = w.hosts[0].mount_point(&pool);
        let mut fstabs = [FSTAB.to_owned(), FSTAB.to_owned()];
        match k {
            0 => inject(&w, 0).await,
            1 => inject(&w, 1).await,
            2 => w.sim.faults().add(
                Fault::error(
                    Some("POST"),
                    "/api/protocols/nfs/export-policies/*/rules",
                    ApiError::new(400, "1704036", "Invalid clientmatch"),
                )
                .nth(2),
            ),
            3 => inject(&w, 2).await,
            4 => w.hosts[0].kernel.fail("mount", 1),
            5 | 8 => {
                let i = usize::from(k == 8);
                fstabs[i] = foreign_fstab(&mp);
                std::fs::write(w.hosts[i].root.join("etc/fstab"), &fstabs[i]).unwrap();
            }
            6 => inject(&w, 5).await,
            7 => w.hosts[1].kernel.fail("mount", 1),
            _ => unreachable!(),
        }
        let saga = w.datastore().attach(&w.env).await.unwrap();
        assert_eq!(saga.steps().len(), 10);
        let err = saga.run(&w.env).await.unwrap_err();
        assert!(
            matches!(err, Error::StepFailed { index, .. } if index == k),
            "{k}: {err}"
        );
        if k == 6 {
            support::remove_pool(&pool).await;
        }
        let fstabs: Vec<&str> = fstabs.iter().map(String::as_str).collect();
        w.assert_clean_hosts(&fstabs, &format!("two hosts, failure at step {k}"))
            .await;
    }
}

#[tokio::test]
async fn detach_failure_unwinds_to_attached_or_resumes_past_the_volume_delete() {
    // 2 UnmountNfs, 3 DeleteVolume, 4 DeleteExportPolicy.
    detach_failure_matrix("ds-detach", &[2, 3, 4]).await;
}

#[tokio::test]
async fn the_journal_holds_no_secret() {
    let w = world("ds-secret", FSTAB).await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("attach.json");
    w.datastore()
        .attach(&w.env)
        .await
        .unwrap()
        .journal_file(&journal)
        .run(&w.env)
        .await
        .unwrap();
    let text = std::fs::read_to_string(&journal).unwrap();
    use secrecy::ExposeSecret;
    assert!(!text.contains(w.sim.password().expose_secret()));
    assert!(!text.contains("admin"));
    assert!(text.contains("\"status\": \"completed\""));
    w.detach_all().await;
}

#[tokio::test]
async fn a_flexclone_of_an_nfs_datastore_attaches_as_a_new_pool() {
    let w = world("ds-parent", FSTAB).await;
    w.datastore()
        .attach(&w.env)
        .await
        .unwrap()
        .run(&w.env)
        .await
        .unwrap();
    let parent = kvmstor::ops::DatastoreVolume::new("svm1", "ds_parent");
    kvmstor::ops::snapshot(&w.env, &parent, "golden", &kvmstor::ops::Freeze::None)
        .await
        .unwrap();
    kvmstor::ops::flexclone(&w.env, &parent, "ds_parent_dev", Some("golden"))
        .await
        .unwrap();
    let mp = w.hosts[0].root.join("mnt/ds-parent-dev");
    let clone = NfsDatastore::new("svm1", "ds-parent-dev", "aggr1", 10 << 30)
        .volume_name("ds_parent_dev")
        .hosts(["kvm1"])
        .mount_point(&mp);
    let report = clone
        .attach(&w.env)
        .await
        .unwrap()
        .run(&w.env)
        .await
        .unwrap();
    // The volume was there: found, not created (and never deleted by an unwind).
    assert!(report
        .journal
        .steps
        .iter()
        .any(
            |e| kvmstor::saga::Step::label(&e.step) == "CreateVolume svm1/ds_parent_dev"
                && matches!(e.state, StepState::Done { changed: false, .. })
        ));
    let mounts = w.hosts[0].read("proc/self/mountinfo").unwrap();
    assert!(
        mounts.contains(&format!(
            " {} rw,relatime - nfs4 192.0.2.10:/ds_parent_dev ",
            mp.display()
        )),
        "{mounts}"
    );
    let def = support::pool_def("ds-parent-dev").await.unwrap();
    assert_eq!(def.target.as_deref(), Some(mp.to_str().unwrap()));
    clone
        .delete_ontap_objects(true)
        .detach(&w.env)
        .await
        .unwrap()
        .run(&w.env)
        .await
        .unwrap();
    assert!(w
        .client
        .volumes()
        .by_name("svm1", "ds_parent_dev")
        .await
        .unwrap()
        .is_none());
    w.assert_attached("parent after the clone's detach").await;
    w.detach_all().await;
    w.assert_clean(FSTAB, "parent detached").await;
}

// ---- Detach: a failure at every step, a crash at every step ----

impl World {
    /// The host's whole scratch root (fstab, mountinfo, auto.master, the mount point).
    fn shape(&self) -> BTreeMap<String, String> {
        support::tree(&self.hosts[0].root, &TreeOpts::default())
    }

    /// Attaches; returns the host's [`World::shape`] then and the detach planned, deleting
    /// the ONTAP objects or not.
    async fn attached_detach(
        &self,
        delete_ontap_objects: bool,
    ) -> (BTreeMap<String, String>, Saga<NfsStep>) {
        self.datastore()
            .attach(&self.env)
            .await
            .unwrap()
            .run(&self.env)
            .await
            .unwrap();
        self.assert_attached("attached").await;
        let before = self.shape();
        let detach = self
            .datastore()
            .delete_ontap_objects(delete_ontap_objects)
            .detach(&self.env)
            .await
            .unwrap();
        (before, detach)
    }

    /// Detaches, deleting the ONTAP objects.
    async fn detach_all(&self) {
        self.datastore()
            .delete_ontap_objects(true)
            .detach(&self.env)
            .await
            .unwrap()
            .run(&self.env)
            .await
            .unwrap();
    }
}

/// Makes step `k` of the detach that deletes the ONTAP objects fail (0 RemovePool,
/// 1 RemoveFstab, 2 UnmountNfs, 3 DeleteVolume, 4 DeleteExportPolicy); returns the
/// environment to run it with and the frozen directory, if any.
fn inject_detach(w: &World, k: usize) -> (Env, Option<Frozen>) {
    let h = &w.hosts[0];
    match k {
        // libvirtd cannot be reached.
        0 => {
            let host = support::without_libvirtd(&h.host);
            return (Env::new(w.client.clone()).host(host), None);
        }
        1 => return (w.env.clone(), Some(Frozen::new(&h.root.join("etc")))),
        2 => h.kernel.fail("umount", 1),
        3 => w.sim.faults().add(support::volume_busy()),
        4 => w.sim.faults().add(rpc_failure(
            "DELETE",
            "/api/protocols/nfs/export-policies/*",
        )),
        _ => unreachable!(),
    }
    (w.env.clone(), None)
}

/// The detach that deletes the ONTAP objects, made to fail at each step of `steps` (see
/// `inject_detach`) in a world named `PREFIX-k`: it unwinds back to exactly attached and a
/// second detach finishes, or, once the volume is gone, it stops and recovering finishes
/// forward.
async fn detach_failure_matrix(prefix: &str, steps: &[usize]) {
    for &k in steps {
        let w = world(&format!("{prefix}-{k}"), FSTAB).await;
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("detach.json");
        let (before, detach) = w.attached_detach(true).await;
        let detach = detach.journal_file(&journal);
        let (pool, volume) = (&w.pool, w.pool.replace('-', "_"));
        assert_eq!(
            steps_of(&detach),
            [
                format!("RemovePool kvm1:{pool}"),
                format!("RemoveFstab kvm1:kvmstor-{pool}"),
                format!("UnmountNfs kvm1:{}", w.hosts[0].mount_point(pool).display()),
                format!("DeleteVolume svm1/{volume}"),
                format!("DeleteExportPolicy svm1/kvmstor_{volume}"),
            ]
        );
        let (env, frozen) = inject_detach(&w, k);
        let err = detach.run(&env).await.unwrap_err();
        drop(frozen);
        let context = format!("detach failure at step {k}");
        if k == 0 {
            // Without libvirt the failed step's own undo (define the pool again, should it
            // have been half removed) fails too: the run stops and says so; once libvirt is
            // back, recovering finishes the unwind.
            assert!(err.needs_attention(), "{context}: {err}");
            let report =
                support::recover_run::<NfsStep>(&journal, &w.env, RecoverMode::Unwind).await;
            assert_eq!(report.journal.status, RunStatus::Unwound, "{context}");
        } else if k < 4 {
            assert!(
                matches!(err, Error::StepFailed { index, .. } if index == k),
                "{context}: {err}"
            );
        }
        if k < 4 {
            // Back to exactly attached; a second detach finishes.
            assert_eq!(err.needs_attention(), k == 0, "{context}: {err}");
            w.assert_attached(&context).await;
            assert_eq!(w.shape(), before, "{context}");
            w.detach_all().await;
        } else {
            // The volume is gone (no way back): it stops, and recovering finishes forward.
            assert!(err.needs_attention(), "{context}: {err}");
            assert!(!w.volume_exists().await, "{context}");
            let report =
                support::recover_run::<NfsStep>(&journal, &w.env, RecoverMode::Unwind).await;
            assert_eq!(report.journal.status, RunStatus::Completed, "{context}");
        }
        w.assert_clean(FSTAB, &format!("{context}, finished")).await;
    }
}

#[tokio::test]
async fn detach_failure_at_every_step_unwinds_to_attached_with_fake_kernel() {
    detach_failure_matrix("ds-dfail", &[0, 1, 2, 3, 4]).await;
}

/// A detach crashed before or after each of its steps, then recovered both ways. With
/// `delete_ontap_objects` it has five steps (0 RemovePool, 1 RemoveFstab, 2 UnmountNfs,
/// 3 DeleteVolume, no way back once started, 4 DeleteExportPolicy); without, the first three,
/// and the volume and export policy stay.
async fn detach_crash_matrix(delete_ontap_objects: bool) {
    let steps = if delete_ontap_objects { 5 } else { 3 };
    let (name, what) = if delete_ontap_objects {
        ("dcrash", "detach")
    } else {
        ("dkeep", "detach (volume kept)")
    };
    for c in crash_cases(steps) {
        let (point, mode) = (c.point, c.mode);
        let w = world(&format!("ds-{name}-{}", c.tag()), FSTAB).await;
        let (before, detach) = w.attached_detach(delete_ontap_objects).await;
        assert_eq!(detach.steps().len(), steps);
        let crashed = crash(detach, &w.env, &c).await;
        let report = crashed
            .recover::<NfsStep>(&w.env, mode, LockRegistry::global())
            .await;
        let context = format!("{what} crash {point:?}, recover {mode:?}");
        // Once the volume delete has started it may have happened and cannot be undone:
        // recovering goes forward whatever the mode.
        let past_the_volume_delete = delete_ontap_objects && c.k >= 3;
        let unwound = mode == RecoverMode::Unwind && !past_the_volume_delete;
        if unwound {
            assert_eq!(report.journal.status, RunStatus::Unwound, "{context}");
            w.assert_attached(&context).await;
            assert_eq!(w.shape(), before, "{context}");
        } else {
            // Resumed, or unwinding past the deleted volume: finished forward.
            assert_eq!(report.journal.status, RunStatus::Completed, "{context}");
        }
        if !unwound && !delete_ontap_objects {
            // Detached from the host; the volume and export policy stay.
            assert!(w.volume_exists().await, "{context}: volume");
            assert!(w.policy_exists().await, "{context}: policy");
            assert!(w.pool_def().await.is_none(), "{context}: pool");
            let h = &w.hosts[0];
            support::assert_host_files(&h.root, FSTAB, &context);
            assert!(!h.mount_point(&w.pool).exists(), "{context}: mount point");
        }
        if unwound || !delete_ontap_objects {
            w.detach_all().await;
        }
        w.assert_clean(FSTAB, &format!("{context}, detached")).await;
    }
}

#[tokio::test]
async fn detach_crash_at_every_step_then_recover_with_fake_kernel() {
    detach_crash_matrix(true).await;
}

#[tokio::test]
async fn detach_keeping_the_volume_crash_at_every_step_then_recover_with_fake_kernel() {
    detach_crash_matrix(false).await;
}
