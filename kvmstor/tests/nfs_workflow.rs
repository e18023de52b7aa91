//! NFS attach/detach against the in-process ONTAP simulator, scratch host roots and
//! libvirt's `test:///default`: a failure injected at every step k, a crash at every step k
//! followed by `recover`, idempotent re-apply, detach, plan, locks.
//!
//! This machine has no NFS client, so host mount steps run through `FakeKernelRunner`, a
//! fake runner that plays the kernel: `mount` adds a line to the scratch root's mountinfo,
//! `umount` removes it. The lab runs the real path.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use host_storage::{Command, Output, Runner};
use kvmstor::nfs::{NfsDatastore, NfsStep, Persist, PoolKind};
use kvmstor::saga::{
    recover, ActionKind, CrashPoint, LockKey, LockRegistry, RecoverMode, RunOutcome, RunStatus,
    StepState,
};
use kvmstor::{Env, Error, Host};
use libvirt_pools::{Libvirt, PoolDef, PoolName, PoolSpec, RemoveMode};
use ontap_client::Client;
use ontap_sim::{ApiError, Fault, SimServer};

const ROOT_MOUNT: &str = "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n";
const FSTAB: &str = "UUID=1234 / ext4 defaults 0 1\n";
const AUTO_MASTER: &str = "+dir:/etc/auto.master.d\n+auto.master\n";

/// Plays the kernel for `mount -t nfs` / `umount` on a scratch mountinfo file, and fails
/// the `fail_nth` call of `fail_program` (exit 32, as mount.nfs does).
#[derive(Debug)]
struct FakeKernelRunner {
    mountinfo: PathBuf,
    state: Mutex<RunnerState>,
}

#[derive(Debug, Default)]
struct RunnerState {
    calls: Vec<String>,
    fail: Option<(String, usize)>,
    seen: usize,
}

impl FakeKernelRunner {
    fn new(mountinfo: PathBuf) -> Self {
        FakeKernelRunner {
            mountinfo,
            state: Mutex::new(RunnerState::default()),
        }
    }

    fn fail(&self, program: &str, nth: usize) {
        let mut st = self.state.lock().unwrap();
        st.fail = Some((program.to_owned(), nth));
        st.seen = 0;
    }

    fn calls(&self) -> Vec<String> {
        self.state.lock().unwrap().calls.clone()
    }
}

#[async_trait::async_trait]
impl Runner for FakeKernelRunner {
    async fn run(&self, cmd: &Command) -> host_storage::Result<Output> {
        let args: Vec<String> = cmd
            .get_args()
            .iter()
            .map(|a| a.expose().to_owned())
            .collect();
        {
            let mut st = self.state.lock().unwrap();
            st.calls.push(cmd.to_string());
            if let Some((program, nth)) = st.fail.clone() {
                if program == cmd.program() {
                    st.seen += 1;
                    if st.seen == nth {
                        return cmd.check(Output::exit(32, "", "mount.nfs: Connection refused"));
                    }
                }
            }
        }
        let text = std::fs::read_to_string(&self.mountinfo).unwrap();
        match cmd.program() {
            "mount" => {
                // mount -t nfs -o OPTS SOURCE TARGET
                let (source, target) = (&args[4], &args[5]);
                let line = format!(
                    "900 22 0:99 / {target} rw,relatime - nfs4 {source} rw,{}\n",
                    args[3]
                );
                std::fs::write(&self.mountinfo, text + &line).unwrap();
            }
            "umount" => {
                let target = format!(" {} ", args[0]);
                let kept: String = text
                    .lines()
                    .filter(|l| !l.contains(&target))
                    .map(|l| format!("{l}\n"))
                    .collect();
                std::fs::write(&self.mountinfo, kept).unwrap();
            }
            other => panic!("unexpected program {other}"),
        }
        Ok(Output::success(""))
    }
}

/// A scratch host: its root, runner and `Host`.
struct TestHost {
    _dir: tempfile::TempDir,
    root: PathBuf,
    runner: Arc<FakeKernelRunner>,
    host: Host,
}

impl TestHost {
    fn new(name: &str, address: &str, fstab: &str) -> TestHost {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(root.join("proc/self")).unwrap();
        std::fs::write(root.join("etc/fstab"), fstab).unwrap();
        std::fs::write(root.join("etc/auto.master"), AUTO_MASTER).unwrap();
        std::fs::write(root.join("proc/self/mountinfo"), ROOT_MOUNT).unwrap();
        let runner = Arc::new(FakeKernelRunner::new(root.join("proc/self/mountinfo")));
        // No automount runs on a fake host: autofs maps are checked as files here;
        // autofs_workflow.rs plays automount.
        let host = Host::new(name, runner.clone())
            .address(address)
            .libvirt_uri("test:///default")
            .root(&root)
            .autofs_reload(host_storage::autofs::Reload::Never);
        TestHost {
            _dir: dir,
            root,
            runner,
            host,
        }
    }

    fn mount_point(&self, pool: &str) -> PathBuf {
        self.root.join("mnt").join(pool)
    }

    fn read(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.root.join(path)).ok()
    }
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
    let sim = SimServer::builder()
        .http()
        .job_duration(Duration::ZERO, Duration::from_millis(5))
        .start()
        .await
        .unwrap();
    let client = Client::builder(sim.url())
        .basic_auth("admin", sim.password())
        .build()
        .unwrap();
    let hosts = vec![TestHost::new("kvm1", "192.0.2.101", fstab)];
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
        let lv = Libvirt::connect("test:///default").await.unwrap();
        lv.pools()
            .get(&PoolName::new(self.pool.clone()).unwrap())
            .await
            .unwrap()
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
            assert_eq!(
                h.read("etc/fstab").as_deref(),
                Some(*fstab),
                "{context}: fstab"
            );
            assert_eq!(
                h.read("proc/self/mountinfo").as_deref(),
                Some(ROOT_MOUNT),
                "{context}: mounts"
            );
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

fn steps_of(saga: &kvmstor::saga::Saga<NfsStep>) -> Vec<String> {
    saga.steps()
        .iter()
        .map(kvmstor::saga::Step::label)
        .collect()
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
    assert!(w.hosts[0].runner.calls().is_empty());

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
    // ...and deletes them when asked; then everything is as before.
    let detach = w
        .datastore()
        .delete_ontap_objects(true)
        .detach(&w.env)
        .await
        .unwrap();
    assert_eq!(
        detach.run(&w.env).await.unwrap().outcome,
        RunOutcome::Applied { changed: 2 }
    );
    w.assert_clean(FSTAB, "after detach").await;
    // Detaching what is not attached changes nothing and says so.
    let again = w
        .datastore()
        .delete_ontap_objects(true)
        .detach(&w.env)
        .await
        .unwrap();
    assert_eq!(
        again.run(&w.env).await.unwrap().outcome,
        RunOutcome::AlreadyApplied
    );
    assert_eq!(
        w.hosts[0].runner.calls(),
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
        0 => w.sim.faults().add(Fault::error(
            Some("POST"),
            "/api/protocols/nfs/export-policies",
            ApiError::new(500, "65552", "RPC failure"),
        )),
        1 => w.sim.faults().add(Fault::error(
            Some("POST"),
            "/api/protocols/nfs/export-policies/*/rules",
            ApiError::new(400, "1704036", "Invalid clientmatch"),
        )),
        2 => w.sim.faults().add(Fault::fail_job(
            Some("POST"),
            "/api/storage/volumes",
            917_536,
            "Insufficient space in aggregate",
        )),
        3 => w.hosts[0].runner.fail("mount", 1),
        4 => {} // a foreign fstab line for the mount point: see fstab_for
        5 => {
            // A pool of the same name, defined otherwise: someone else's.
            let lv = Libvirt::connect("test:///default").await.unwrap();
            let spec = PoolSpec::new(PoolDef::dir(
                PoolName::new(w.pool.clone()).unwrap(),
                format!("/srv/someone-elses/{}", w.pool),
            ));
            lv.pools().ensure(&spec).await.unwrap();
        }
        _ => unreachable!(),
    }
}

fn fstab_for(k: usize, pool: &str, root: &Path) -> String {
    if k == 4 {
        format!(
            "{FSTAB}filer:/other {} nfs defaults 0 0\n",
            root.join("mnt").join(pool).display()
        )
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
            let lv = Libvirt::connect("test:///default").await.unwrap();
            lv.pools()
                .remove(&def.name, RemoveMode::KeepData)
                .await
                .unwrap();
        }
        assert!(w.pool_def().await.is_none(), "step {k}: pool left");
        w.assert_clean(&fstab, &format!("failure at step {k}"))
            .await;
    }
}

#[tokio::test]
async fn crash_at_every_step_then_recover_unwinds_or_finishes() {
    for k in 0..6 {
        for (p, point) in [CrashPoint::BeforeApply(k), CrashPoint::AfterApply(k)]
            .into_iter()
            .enumerate()
        {
            for mode in [RecoverMode::Unwind, RecoverMode::Resume] {
                let pool = format!("ds-crash-{k}-{p}-{}", mode == RecoverMode::Unwind);
                let w = world(&pool, FSTAB).await;
                let journal_dir = tempfile::tempdir().unwrap();
                let journal = journal_dir.path().join("attach.json");
                let saga = w
                    .datastore()
                    .attach(&w.env)
                    .await
                    .unwrap()
                    .journal_file(&journal)
                    .crash_at(point);
                let err = saga.run(&w.env).await.unwrap_err();
                assert!(
                    matches!(err, Error::Interrupted { index, .. } if index == k),
                    "{err}"
                );
                // The journal on disk shows step k started and not finished.
                let doc: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(&journal).unwrap()).unwrap();
                assert_eq!(doc["status"], "running");
                assert_eq!(doc["steps"][k]["state"]["state"], "started");
                // A second run on the same journal is refused until recovered.
                let again = w
                    .datastore()
                    .attach(&w.env)
                    .await
                    .unwrap()
                    .journal_file(&journal);
                assert!(matches!(
                    again.run(&w.env).await.unwrap_err(),
                    Error::JournalUnfinished { .. }
                ));

                let report = recover::<NfsStep>(&journal, &w.env, mode, LockRegistry::global())
                    .await
                    .unwrap();
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
                        let again =
                            recover::<NfsStep>(&journal, &w.env, mode, LockRegistry::global())
                                .await
                                .unwrap();
                        assert_eq!(again.outcome, RunOutcome::NothingToRecover);
                        w.datastore()
                            .delete_ontap_objects(true)
                            .detach(&w.env)
                            .await
                            .unwrap()
                            .run(&w.env)
                            .await
                            .unwrap();
                        w.assert_clean(FSTAB, &format!("{context}, detached")).await;
                    }
                }
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
    w.sim.faults().add(Fault::error(
        Some("DELETE"),
        "/api/storage/volumes/*",
        ApiError::new(500, "65552", "RPC failure"),
    ));
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
    let report = recover::<NfsStep>(
        &journal,
        &w.env,
        RecoverMode::Resume,
        LockRegistry::global(),
    )
    .await
    .unwrap();
    assert_eq!(report.journal.status, RunStatus::Unwound);
    let lv = Libvirt::connect("test:///default").await.unwrap();
    lv.pools()
        .remove(&PoolName::new("ds-attn").unwrap(), RemoveMode::KeepData)
        .await
        .unwrap();
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
            let lv = Libvirt::connect("test:///default").await.unwrap();
            lv.pools()
                .remove(&PoolName::new(pool.clone()).unwrap(), RemoveMode::KeepData)
                .await
                .unwrap();
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
    let lv = Libvirt::connect("test:///default").await.unwrap();
    lv.pools()
        .remove(&PoolName::new("ds-netfs").unwrap(), RemoveMode::KeepData)
        .await
        .unwrap();
    w.assert_clean(FSTAB, "netfs").await;
}

#[tokio::test]
async fn two_hosts_get_one_rule_each_and_trunking_with_two_lifs() {
    let _lv = Libvirt::connect("test:///default").await.unwrap();
    let sim = SimServer::builder()
        .http()
        .job_duration(Duration::ZERO, Duration::from_millis(5))
        .start()
        .await
        .unwrap();
    let client = Client::builder(sim.url())
        .basic_auth("admin", sim.password())
        .build()
        .unwrap();
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
    let h1 = TestHost::new("kvm1", "192.0.2.101", FSTAB);
    let h2 = TestHost::new("kvm2", "192.0.2.102", FSTAB);
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
    assert_eq!(h1.runner.calls(), vec![mount.clone()]);
    assert_eq!(h2.runner.calls(), vec![mount]);
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
    w.datastore()
        .delete_ontap_objects(true)
        .detach(&w.env)
        .await
        .unwrap()
        .run(&w.env)
        .await
        .unwrap();
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
    let h2 = TestHost::new("kvm2", "192.0.2.102", FSTAB);
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
            4 => w.hosts[0].runner.fail("mount", 1),
            5 | 8 => {
                let i = usize::from(k == 8);
                fstabs[i] = foreign_fstab(&mp);
                std::fs::write(w.hosts[i].root.join("etc/fstab"), &fstabs[i]).unwrap();
            }
            6 => inject(&w, 5).await,
            7 => w.hosts[1].runner.fail("mount", 1),
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
            let lv = Libvirt::connect("test:///default").await.unwrap();
            lv.pools()
                .remove(&PoolName::new(pool.clone()).unwrap(), RemoveMode::KeepData)
                .await
                .unwrap();
        }
        let fstabs: Vec<&str> = fstabs.iter().map(String::as_str).collect();
        w.assert_clean_hosts(&fstabs, &format!("two hosts, failure at step {k}"))
            .await;
    }
}

#[tokio::test]
async fn detach_failure_unwinds_to_attached_or_resumes_past_the_volume_delete() {
    // 0 RemovePool, 1 RemoveFstab, 2 UnmountNfs, 3 DeleteVolume, 4 DeleteExportPolicy.
    for k in [2, 3, 4] {
        let pool = format!("ds-detach-{k}");
        let w = world(&pool, FSTAB).await;
        w.datastore()
            .attach(&w.env)
            .await
            .unwrap()
            .run(&w.env)
            .await
            .unwrap();
        match k {
            2 => w.hosts[0].runner.fail("umount", 1),
            3 => w.sim.faults().add(Fault::fail_job(
                Some("DELETE"),
                "/api/storage/volumes/*",
                917_718,
                "Volume busy",
            )),
            _ => w.sim.faults().add(Fault::error(
                Some("DELETE"),
                "/api/protocols/nfs/export-policies/*",
                ApiError::new(500, "65552", "RPC failure"),
            )),
        }
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("detach.json");
        let detach = w
            .datastore()
            .delete_ontap_objects(true)
            .detach(&w.env)
            .await
            .unwrap()
            .journal_file(&journal);
        assert_eq!(detach.steps().len(), 5);
        let err = detach.run(&w.env).await.unwrap_err();
        if k < 4 {
            assert!(
                matches!(err, Error::StepFailed { index, .. } if index == k),
                "{k}: {err}"
            );
            // Back to attached: pool, fstab line and mount are there again.
            w.assert_attached(&format!("detach failure at step {k}"))
                .await;
            w.datastore()
                .delete_ontap_objects(true)
                .detach(&w.env)
                .await
                .unwrap()
                .run(&w.env)
                .await
                .unwrap();
        } else {
            // The volume is gone (no way back): stop, then finish forward.
            assert!(err.needs_attention(), "{err}");
            assert!(!w.volume_exists().await);
            let report = recover::<NfsStep>(
                &journal,
                &w.env,
                RecoverMode::Unwind,
                LockRegistry::global(),
            )
            .await
            .unwrap();
            assert_eq!(report.journal.status, RunStatus::Completed);
        }
        w.assert_clean(FSTAB, &format!("detach k={k}, finished"))
            .await;
    }
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
    w.datastore()
        .delete_ontap_objects(true)
        .detach(&w.env)
        .await
        .unwrap()
        .run(&w.env)
        .await
        .unwrap();
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
    let lv = Libvirt::connect("test:///default").await.unwrap();
    let def = lv
        .pools()
        .get(&PoolName::new("ds-parent-dev").unwrap())
        .await
        .unwrap()
        .unwrap();
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
    w.datastore()
        .delete_ontap_objects(true)
        .detach(&w.env)
        .await
        .unwrap()
        .run(&w.env)
        .await
        .unwrap();
    w.assert_clean(FSTAB, "parent detached").await;
}

// ---- Detach: a failure at every step, a crash at every step ----

/// A directory that refuses new and removed entries, also to root (mode 0555 and, where the
/// caller may set it, the immutable attribute), as on a read-only `/etc`: a step that writes
/// or removes a file there fails. Thawed to its old mode on drop, panics included.
struct Frozen(PathBuf, u32);

impl Frozen {
    fn new(dir: &Path) -> Frozen {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir).unwrap().permissions().mode() & 0o7777;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        // Root ignores the mode; the immutable attribute stops it.
        let _ = std::process::Command::new("chattr")
            .arg("+i")
            .arg(dir)
            .output();
        let frozen = Frozen(dir.to_owned(), mode);
        assert!(
            std::fs::write(dir.join(".kvmstor-probe"), "").is_err(),
            "cannot make {} read-only here (no chattr?)",
            dir.display()
        );
        frozen
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .output();
        let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(self.1));
    }
}

/// Every file and directory under `dir` (relative to `root`) with its content.
fn tree(root: &Path, dir: &Path, out: &mut std::collections::BTreeMap<String, String>) {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for p in names {
        let rel = p.strip_prefix(root).unwrap().display().to_string();
        if p.is_dir() {
            out.insert(format!("{rel}/"), String::new());
            tree(root, &p, out);
        } else {
            out.insert(rel, std::fs::read_to_string(&p).unwrap());
        }
    }
}

impl World {
    /// The host's whole scratch root (fstab, mountinfo, auto.master, the mount point).
    fn shape(&self) -> std::collections::BTreeMap<String, String> {
        let mut out = std::collections::BTreeMap::new();
        tree(&self.hosts[0].root, &self.hosts[0].root, &mut out);
        out
    }

    async fn attach_now(&self) {
        self.datastore()
            .attach(&self.env)
            .await
            .unwrap()
            .run(&self.env)
            .await
            .unwrap();
        self.assert_attached("attached").await;
    }
}

/// Makes step `k` of the detach that deletes the ONTAP objects fail (0 RemovePool,
/// 1 RemoveFstab, 2 UnmountNfs, 3 DeleteVolume, 4 DeleteExportPolicy); returns the
/// environment to run it with and the frozen directory, if any.
fn inject_detach(w: &World, k: usize) -> (Env, Option<Frozen>) {
    let h = &w.hosts[0];
    match k {
        0 => {
            // libvirtd cannot be reached: the same host, with a connection that fails.
            let host = Host::new(h.host.name(), h.runner.clone())
                .address("192.0.2.101")
                .libvirt_uri("test:///nonexistent/kvmstor-no-libvirtd.xml")
                .root(&h.root);
            return (Env::new(w.client.clone()).host(host), None);
        }
        1 => return (w.env.clone(), Some(Frozen::new(&h.root.join("etc")))),
        2 => h.runner.fail("umount", 1),
        3 => w.sim.faults().add(Fault::fail_job(
            Some("DELETE"),
            "/api/storage/volumes/*",
            917_718,
            "Volume busy",
        )),
        4 => w.sim.faults().add(Fault::error(
            Some("DELETE"),
            "/api/protocols/nfs/export-policies/*",
            ApiError::new(500, "65552", "RPC failure"),
        )),
        _ => unreachable!(),
    }
    (w.env.clone(), None)
}

#[tokio::test]
async fn detach_failure_at_every_step_unwinds_to_attached_with_fake_kernel() {
    for k in 0..5 {
        let w = world(&format!("ds-dfail-{k}"), FSTAB).await;
        w.attach_now().await;
        let before = w.shape();
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("detach.json");
        let detach = w
            .datastore()
            .delete_ontap_objects(true)
            .detach(&w.env)
            .await
            .unwrap()
            .journal_file(&journal);
        assert_eq!(
            steps_of(&detach),
            [
                format!("RemovePool kvm1:ds-dfail-{k}"),
                format!("RemoveFstab kvm1:kvmstor-ds-dfail-{k}"),
                format!(
                    "UnmountNfs kvm1:{}",
                    w.hosts[0].mount_point(&w.pool).display()
                ),
                format!("DeleteVolume svm1/ds_dfail_{k}"),
                format!("DeleteExportPolicy svm1/kvmstor_ds_dfail_{k}"),
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
            let report = recover::<NfsStep>(
                &journal,
                &w.env,
                RecoverMode::Unwind,
                LockRegistry::global(),
            )
            .await
            .unwrap();
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
            w.datastore()
                .delete_ontap_objects(true)
                .detach(&w.env)
                .await
                .unwrap()
                .run(&w.env)
                .await
                .unwrap();
        } else {
            // The volume is gone (no way back): it stops, and recovering finishes forward.
            assert!(err.needs_attention(), "{context}: {err}");
            assert!(!w.volume_exists().await, "{context}");
            let report = recover::<NfsStep>(
                &journal,
                &w.env,
                RecoverMode::Unwind,
                LockRegistry::global(),
            )
            .await
            .unwrap();
            assert_eq!(report.journal.status, RunStatus::Completed, "{context}");
        }
        w.assert_clean(FSTAB, &format!("{context}, finished")).await;
    }
}

#[tokio::test]
async fn detach_crash_at_every_step_then_recover_with_fake_kernel() {
    // The detach that deletes the ONTAP objects: 0 RemovePool, 1 RemoveFstab, 2 UnmountNfs,
    // 3 DeleteVolume (no way back once started), 4 DeleteExportPolicy.
    for k in 0..5 {
        for (p, point) in [CrashPoint::BeforeApply(k), CrashPoint::AfterApply(k)]
            .into_iter()
            .enumerate()
        {
            for mode in [RecoverMode::Unwind, RecoverMode::Resume] {
                let w = world(
                    &format!("ds-dcrash-{k}-{p}-{}", mode == RecoverMode::Unwind),
                    FSTAB,
                )
                .await;
                w.attach_now().await;
                let before = w.shape();
                let dir = tempfile::tempdir().unwrap();
                let journal = dir.path().join("detach.json");
                let err = w
                    .datastore()
                    .delete_ontap_objects(true)
                    .detach(&w.env)
                    .await
                    .unwrap()
                    .journal_file(&journal)
                    .crash_at(point)
                    .run(&w.env)
                    .await
                    .unwrap_err();
                assert!(
                    matches!(err, Error::Interrupted { index, .. } if index == k),
                    "{err}"
                );
                let report = recover::<NfsStep>(&journal, &w.env, mode, LockRegistry::global())
                    .await
                    .unwrap();
                let context = format!("detach crash {point:?}, recover {mode:?}");
                // Once the volume delete has started it may have happened and cannot be
                // undone: recovering goes forward whatever the mode.
                let past_the_volume_delete = k >= 3;
                if mode == RecoverMode::Unwind && !past_the_volume_delete {
                    assert_eq!(report.journal.status, RunStatus::Unwound, "{context}");
                    w.assert_attached(&context).await;
                    assert_eq!(w.shape(), before, "{context}");
                    w.datastore()
                        .delete_ontap_objects(true)
                        .detach(&w.env)
                        .await
                        .unwrap()
                        .run(&w.env)
                        .await
                        .unwrap();
                } else {
                    // Resumed, or unwinding past the deleted volume: finished forward.
                    assert_eq!(report.journal.status, RunStatus::Completed, "{context}");
                }
                w.assert_clean(FSTAB, &format!("{context}, detached")).await;
            }
        }
    }
}

#[tokio::test]
async fn detach_keeping_the_volume_crash_at_every_step_then_recover_with_fake_kernel() {
    // 0 RemovePool, 1 RemoveFstab, 2 UnmountNfs; the volume and export policy stay.
    for k in 0..3 {
        for (p, point) in [CrashPoint::BeforeApply(k), CrashPoint::AfterApply(k)]
            .into_iter()
            .enumerate()
        {
            for mode in [RecoverMode::Unwind, RecoverMode::Resume] {
                let w = world(
                    &format!("ds-dkeep-{k}-{p}-{}", mode == RecoverMode::Unwind),
                    FSTAB,
                )
                .await;
                w.attach_now().await;
                let before = w.shape();
                let dir = tempfile::tempdir().unwrap();
                let journal = dir.path().join("detach.json");
                let detach = w
                    .datastore()
                    .detach(&w.env)
                    .await
                    .unwrap()
                    .journal_file(&journal)
                    .crash_at(point);
                assert_eq!(detach.steps().len(), 3);
                let err = detach.run(&w.env).await.unwrap_err();
                assert!(
                    matches!(err, Error::Interrupted { index, .. } if index == k),
                    "{err}"
                );
                let report = recover::<NfsStep>(&journal, &w.env, mode, LockRegistry::global())
                    .await
                    .unwrap();
                let context = format!("detach (volume kept) crash {point:?}, recover {mode:?}");
                if mode == RecoverMode::Unwind {
                    assert_eq!(report.journal.status, RunStatus::Unwound, "{context}");
                    w.assert_attached(&context).await;
                    assert_eq!(w.shape(), before, "{context}");
                } else {
                    assert_eq!(report.journal.status, RunStatus::Completed, "{context}");
                    assert!(w.volume_exists().await, "{context}: volume");
                    assert!(w.policy_exists().await, "{context}: policy");
                    assert!(w.pool_def().await.is_none(), "{context}: pool");
                    let h = &w.hosts[0];
                    assert_eq!(h.read("etc/fstab").as_deref(), Some(FSTAB), "{context}");
                    assert_eq!(
                        h.read("proc/self/mountinfo").as_deref(),
                        Some(ROOT_MOUNT),
                        "{context}"
                    );
                    assert!(!h.mount_point(&w.pool).exists(), "{context}: mount point");
                }
                w.datastore()
                    .delete_ontap_objects(true)
                    .detach(&w.env)
                    .await
                    .unwrap()
                    .run(&w.env)
                    .await
                    .unwrap();
                w.assert_clean(FSTAB, &format!("{context}, detached")).await;
            }
        }
    }
}
