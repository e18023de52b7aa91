//! SMB attach/detach against the in-process ONTAP simulator, scratch host roots and
//! libvirt's `test:///default`: a failure injected at every step k, a crash at every step k
//! followed by `recover`, the credentials file (0600, the only place the password goes),
//! journals and plans without the password, detach, autofs.
//!
//! Host mount steps run through a fake runner that plays the kernel for `mount -t cifs` and
//! `umount` on the scratch mountinfo (tests named `..._with_fake_kernel`); the lab runs the
//! real path.

mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;

use kvmstor::nfs::Persist;
use kvmstor::saga::{LockRegistry, RecoverMode, RunOutcome, RunStatus, Saga};
use kvmstor::smb::{SmbDatastore, SmbStep};
use kvmstor::{Env, Error, StepError};
use libvirt_pools::{Libvirt, PoolDef};
use ontap_client::models::{CifsAclType, CifsPermission, CifsShareCreate};
use ontap_client::{Client, Query, SecretString};
use ontap_sim::{ApiError, Fault, SimServer};
use support::{crash, crash_cases, labels, rpc_failure, FakeMounts, Frozen, TreeOpts, FSTAB};

const AUTO_MASTER: &str = "+auto.master\n";
const PASSWORD: &str = "Tr0ub4dor&3 horse";

struct World {
    _lv: Libvirt,
    _dir: tempfile::TempDir,
    root: PathBuf,
    kernel: Arc<FakeMounts>,
    sim: SimServer,
    client: Client,
    /// Without the password.
    bare: Env,
    pool: String,
}

async fn world(pool: &str) -> World {
    let (sim, client) = support::sim().await;
    let support::MountHost {
        dir,
        root,
        kernel,
        host,
    } = support::MountHost::new(
        "kvm1",
        "192.0.2.101",
        &[("etc/fstab", FSTAB), ("etc/auto.master", AUTO_MASTER)],
        "mount error(13): Permission denied",
    );
    World {
        _lv: Libvirt::connect("test:///default").await.unwrap(),
        _dir: dir,
        root,
        kernel,
        sim,
        bare: Env::new(client.clone()).host(host),
        client,
        pool: pool.to_owned(),
    }
}

impl World {
    fn datastore(&self) -> SmbDatastore {
        SmbDatastore::new("svm1", &self.pool, "aggr1", 10 << 30)
            .hosts(["kvm1"])
            .mount_point(self.root.join("mnt").join(&self.pool))
            .account("svc_kvm", Some("CORP"), SecretString::from(PASSWORD))
    }

    fn env(&self) -> Env {
        self.datastore().env_with_secret(&self.bare)
    }

    fn read(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.root.join(path)).ok()
    }

    fn cred_file(&self) -> PathBuf {
        self.root
            .join(format!("etc/kvmstor/cifs/kvmstor-{}.cred", self.pool))
    }

    async fn counts(&self) -> (usize, usize) {
        let vol: serde_json::Value = self
            .client
            .raw()
            .get(
                "/api/storage/volumes",
                &Query::new().filter("name", self.pool.replace('-', "_")),
            )
            .await
            .unwrap();
        let share: serde_json::Value = self
            .client
            .raw()
            .get(
                "/api/protocols/cifs/shares",
                &Query::new().filter("name", &self.pool),
            )
            .await
            .unwrap();
        (
            usize::try_from(vol["num_records"].as_u64().unwrap()).unwrap(),
            usize::try_from(share["num_records"].as_u64().unwrap()).unwrap(),
        )
    }

    async fn pool_def(&self) -> Option<PoolDef> {
        support::pool_def(&self.pool).await
    }

    async fn assert_clean(&self, fstab: &str, context: &str) {
        assert_eq!(self.counts().await, (0, 0), "{context}: ONTAP objects");
        assert!(self.pool_def().await.is_none(), "{context}: pool");
        support::assert_host_files(&self.root, fstab, context);
        assert_eq!(
            self.read("etc/auto.master").as_deref(),
            Some(AUTO_MASTER),
            "{context}: auto.master"
        );
        assert!(!self.cred_file().exists(), "{context}: credentials file");
        assert!(
            !self.root.join("mnt").join(&self.pool).exists(),
            "{context}: mount point"
        );
    }

    async fn assert_attached(&self, context: &str) {
        assert_eq!(self.counts().await, (1, 1), "{context}: ONTAP objects");
        let mp = self.root.join("mnt").join(&self.pool);
        assert_eq!(
            self.read("etc/fstab").unwrap(),
            format!(
                "{FSTAB}# kvmstor:kvmstor-{p} (managed by kvmstor; removed by its undo)\n//192.0.2.11/{p} {} cifs vers=3.1.1,multichannel,max_channels=4,credentials=/etc/kvmstor/cifs/kvmstor-{p}.cred,_netdev 0 0\n",
                mp.display(),
                p = self.pool
            ),
            "{context}"
        );
        assert!(self.read("proc/self/mountinfo").unwrap().contains(&format!(
            " {} rw,relatime - cifs //192.0.2.11/{} ",
            mp.display(),
            self.pool
        )));
        let cred = std::fs::read_to_string(self.cred_file()).unwrap();
        assert_eq!(
            cred,
            format!("username=svc_kvm\npassword={PASSWORD}\ndomain=CORP\n")
        );
        let mode = std::fs::metadata(self.cred_file())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{context}");
        assert!(self.pool_def().await.is_some(), "{context}: pool");
    }

    async fn detach_all(&self) {
        self.datastore()
            .delete_ontap_objects(true)
            .detach(&self.env())
            .await
            .unwrap()
            .run(&self.env())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn smb_attach_plan_run_and_detach_with_fake_kernel() {
    let w = world("smb-plan").await;
    let saga = w.datastore().attach(&w.env()).await.unwrap();
    let mp = w.root.join("mnt/smb-plan");
    assert_eq!(
        labels(&saga),
        [
            "CreateVolume svm1/smb_plan".to_owned(),
            "CreateShare svm1/smb-plan".into(),
            "WriteCredentials kvm1:kvmstor-smb-plan".into(),
            format!("MountSmb kvm1:{}", mp.display()),
            "PersistFstab kvm1:kvmstor-smb-plan".into(),
            "DefinePool kvm1:smb-plan".into(),
        ]
    );
    let plan = saga.plan().to_string();
    assert!(plan.contains("security style ntfs"), "{plan}");
    assert!(
        plan.contains("ACL CORP\\svc_kvm (windows) full_control"),
        "{plan}"
    );
    assert!(plan.contains(&format!(
        "kvm1$ mount -t cifs -o vers=3.1.1,multichannel,max_channels=4,credentials=/etc/kvmstor/cifs/kvmstor-smb-plan.cred //192.0.2.11/smb-plan {}",
        mp.display()
    )), "{plan}");
    assert!(
        plan.contains("password=<secret smb/smb-plan> domain=CORP (mode 0600)"),
        "{plan}"
    );
    assert!(!plan.contains(PASSWORD));
    assert!(!format!("{saga:?}").contains(PASSWORD));

    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("attach.json");
    let report = saga.journal_file(&journal).run(&w.env()).await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Applied { changed: 6 });
    w.assert_attached("attached").await;
    // The journal names the secret and never holds it.
    let text = std::fs::read_to_string(&journal).unwrap();
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(text.contains("\"secret\": \"smb/smb-plan\""), "{text}");
    let share = w
        .client
        .cifs_shares()
        .find(
            &Query::new()
                .filter("name", "smb-plan")
                .fields(["acls", "path", "comment"]),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(share.path.as_deref(), Some("/smb_plan"));
    let acls = share.acls.unwrap();
    assert!(acls
        .iter()
        .any(|a| a.user_or_group.as_deref() == Some("CORP\\svc_kvm")));
    let vol = w
        .client
        .volumes()
        .find(
            &Query::new()
                .filter("name", "smb_plan")
                .fields(["nas.security_style", "nas.path"]),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(vol.nas.unwrap().security_style.unwrap().to_string(), "ntfs");

    let again = w.datastore().attach(&w.env()).await.unwrap();
    assert_eq!(
        again.run(&w.env()).await.unwrap().outcome,
        RunOutcome::AlreadyApplied
    );

    // Detach keeps the share and the volume by default.
    let detach = w.datastore().detach(&w.env()).await.unwrap();
    assert_eq!(
        labels(&detach),
        [
            "RemovePool kvm1:smb-plan".to_owned(),
            "RemoveFstab kvm1:kvmstor-smb-plan".into(),
            format!("UnmountSmb kvm1:{}", mp.display()),
            "RemoveCredentials kvm1:kvmstor-smb-plan".into(),
        ]
    );
    detach.run(&w.env()).await.unwrap();
    assert_eq!(w.counts().await, (1, 1));
    assert!(!w.cred_file().exists());
    w.detach_all().await;
    w.assert_clean(FSTAB, "detached").await;
    assert_eq!(
        w.kernel.calls(),
        [
            format!("mount -t cifs -o vers=3.1.1,multichannel,max_channels=4,credentials=/etc/kvmstor/cifs/kvmstor-smb-plan.cred //192.0.2.11/smb-plan {}", mp.display()),
            format!("umount {}", mp.display()),
        ]
    );
}

/// Makes step k fail; returns the fstab the host must keep and the env to run with.
async fn inject(w: &World, k: usize) -> (String, Env) {
    match k {
        0 => w.sim.faults().add(support::no_space()),
        1 => w.sim.faults().add(Fault::error(
            Some("POST"),
            "/api/protocols/cifs/shares",
            ApiError::new(400, "655551", "share path does not exist"),
        )),
        // The password was not given: the credentials step cannot write the file.
        2 => return (FSTAB.into(), w.bare.clone()),
        3 => w.kernel.fail("mount", 1),
        4 => {
            let fstab = format!(
                "{FSTAB}//other/share {} cifs defaults 0 0\n",
                w.root.join("mnt").join(&w.pool).display()
            );
            std::fs::write(w.root.join("etc/fstab"), &fstab).unwrap();
            return (fstab, w.env());
        }
        5 => support::define_foreign_pool(&w.pool).await,
        _ => unreachable!(),
    }
    (FSTAB.into(), w.env())
}

#[tokio::test]
async fn smb_attach_failure_at_every_step_leaves_a_clean_slate_with_fake_kernel() {
    for k in 0..6 {
        let w = world(&format!("smb-fail-{k}")).await;
        let (fstab, env) = inject(&w, k).await;
        let err = w
            .datastore()
            .attach(&env)
            .await
            .unwrap()
            .run(&env)
            .await
            .unwrap_err();
        let Error::StepFailed { index, source, .. } = &err else {
            panic!("{k}: {err}");
        };
        assert_eq!(*index, k, "{err}");
        if k == 2 {
            assert!(
                matches!(source.as_ref(), StepError::MissingSecret { name } if name == "smb/smb-fail-2"),
                "{source}"
            );
        }
        if k == 5 {
            support::remove_pool(&w.pool).await;
        }
        w.assert_clean(&fstab, &format!("failure at step {k}"))
            .await;
    }
}

#[tokio::test]
async fn smb_crash_at_every_step_then_recover_unwinds_or_finishes_with_fake_kernel() {
    for c in crash_cases(6) {
        let (point, mode) = (c.point, c.mode);
        let w = world(&format!("smb-crash-{}", c.tag())).await;
        let saga = w.datastore().attach(&w.env()).await.unwrap();
        let crashed = crash(saga, &w.env(), &c).await;
        assert!(!crashed.text().contains(PASSWORD));
        // Another process recovers: it is given the secret again.
        let report = crashed
            .recover::<SmbStep>(&w.env(), mode, LockRegistry::global())
            .await;
        let context = format!("crash {point:?}, recover {mode:?}");
        match mode {
            RecoverMode::Unwind => {
                assert_eq!(report.journal.status, RunStatus::Unwound, "{context}");
                w.assert_clean(FSTAB, &context).await;
            }
            RecoverMode::Resume => {
                assert_eq!(report.journal.status, RunStatus::Completed, "{context}");
                w.assert_attached(&context).await;
                w.detach_all().await;
                w.assert_clean(FSTAB, &format!("{context}, detached")).await;
            }
        }
    }
}

#[tokio::test]
async fn smb_autofs_variant_writes_the_map_and_detaches_with_fake_kernel() {
    let w = world("smb-auto").await;
    let ds = w.datastore().persist(Persist::Autofs);
    let saga = ds.attach(&w.env()).await.unwrap();
    assert_eq!(saga.steps().len(), 5);
    saga.run(&w.env()).await.unwrap();
    let mp = w.root.join("mnt/smb-auto");
    assert_eq!(
        w.read("etc/auto.kvmstor").unwrap(),
        format!(
            "# kvmstor:kvmstor-smb-auto (managed by kvmstor; removed by its undo)\n{} -fstype=cifs,vers=3.1.1,multichannel,max_channels=4,credentials=/etc/kvmstor/cifs/kvmstor-smb-auto.cred ://192.0.2.11/smb-auto\n",
            mp.display()
        )
    );
    assert!(w.kernel.calls().is_empty(), "autofs mounts on access");
    ds.clone()
        .delete_ontap_objects(true)
        .detach(&w.env())
        .await
        .unwrap()
        .run(&w.env())
        .await
        .unwrap();
    assert_eq!(w.read("etc/auto.kvmstor"), None);
    w.assert_clean(FSTAB, "autofs detached").await;
}

#[tokio::test]
async fn smb_detach_failure_unwinds_to_attached_and_needs_the_secret_to_do_so_with_fake_kernel() {
    // 2 UnmountSmb, 4 DeleteShare.
    detach_failure_matrix("smb-detach", &[2, 4]).await;

    // Without the password the credentials file cannot be put back: unwinding stops there
    // and says so; recovering with the secret finishes the unwind.
    let w = world("smb-detach-nosecret").await;
    w.datastore()
        .attach(&w.env())
        .await
        .unwrap()
        .run(&w.env())
        .await
        .unwrap();
    w.sim
        .faults()
        .add(rpc_failure("DELETE", "/api/protocols/cifs/shares/*"));
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("detach.json");
    let err = w
        .datastore()
        .delete_ontap_objects(true)
        .detach(&w.bare)
        .await
        .unwrap()
        .journal_file(&journal)
        .run(&w.bare)
        .await
        .unwrap_err();
    assert!(err.needs_attention(), "{err}");
    assert!(
        err.to_string()
            .contains("then undoing RemoveCredentials kvm1:kvmstor-smb-detach-nosecret failed: no secret named smb/smb-detach-nosecret"),
        "{err}"
    );
    let report = support::recover_run::<SmbStep>(&journal, &w.env(), RecoverMode::Unwind).await;
    assert_eq!(report.journal.status, RunStatus::Unwound);
    w.assert_attached("recovered with the secret").await;
}

// ---- Detach: a failure at every step, a crash at every step ----

impl World {
    /// The host's whole scratch root (fstab, mountinfo, credentials, the mount point), with
    /// modes, the password masked.
    fn shape(&self) -> BTreeMap<String, String> {
        let opts = TreeOpts {
            modes: true,
            mask: Some(PASSWORD),
            ..TreeOpts::default()
        };
        support::tree(&self.root, &opts)
    }

    /// Attaches; returns the host's [`World::shape`] then and the detach planned, deleting
    /// the ONTAP objects or not.
    async fn attached_detach(
        &self,
        delete_ontap_objects: bool,
    ) -> (BTreeMap<String, String>, Saga<SmbStep>) {
        self.datastore()
            .attach(&self.env())
            .await
            .unwrap()
            .run(&self.env())
            .await
            .unwrap();
        self.assert_attached("attached").await;
        let before = self.shape();
        let detach = self
            .datastore()
            .delete_ontap_objects(delete_ontap_objects)
            .detach(&self.env())
            .await
            .unwrap();
        (before, detach)
    }
}

/// Makes step `k` of the detach that deletes the ONTAP objects fail (0 RemovePool,
/// 1 RemoveFstab, 2 UnmountSmb, 3 RemoveCredentials, 4 DeleteShare, 5 DeleteVolume);
/// returns the environment to run it with and the frozen directory, if any.
fn inject_detach(w: &World, k: usize) -> (Env, Option<Frozen>) {
    match k {
        // libvirtd cannot be reached.
        0 => {
            let host = support::without_libvirtd(&w.bare.hosts()[0]);
            let bare = Env::new(w.client.clone()).host(host);
            return (w.datastore().env_with_secret(&bare), None);
        }
        1 => return (w.env(), Some(Frozen::new(&w.root.join("etc")))),
        2 => w.kernel.fail("umount", 1),
        3 => {
            let dir = w.cred_file().parent().unwrap().to_owned();
            return (w.env(), Some(Frozen::new(&dir)));
        }
        4 => w
            .sim
            .faults()
            .add(rpc_failure("DELETE", "/api/protocols/cifs/shares/*")),
        5 => w.sim.faults().add(support::volume_busy()),
        _ => unreachable!(),
    }
    (w.env(), None)
}

/// The detach that deletes the ONTAP objects, made to fail at each step of `steps` (see
/// `inject_detach`) in a world named `PREFIX-k`: it unwinds back to exactly attached, and a
/// second detach finishes.
async fn detach_failure_matrix(prefix: &str, steps: &[usize]) {
    for &k in steps {
        let w = world(&format!("{prefix}-{k}")).await;
        let (before, detach) = w.attached_detach(true).await;
        let (pool, mp) = (&w.pool, w.root.join("mnt").join(&w.pool));
        assert_eq!(
            labels(&detach),
            [
                format!("RemovePool kvm1:{pool}"),
                format!("RemoveFstab kvm1:kvmstor-{pool}"),
                format!("UnmountSmb kvm1:{}", mp.display()),
                format!("RemoveCredentials kvm1:kvmstor-{pool}"),
                format!("DeleteShare svm1/{pool}"),
                format!("DeleteVolume svm1/{}", pool.replace('-', "_")),
            ]
        );
        let (env, frozen) = inject_detach(&w, k);
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("detach.json");
        let err = detach.journal_file(&journal).run(&env).await.unwrap_err();
        drop(frozen);
        let context = format!("detach failure at step {k}");
        if k == 0 {
            // Without libvirt the failed step's own undo (define the pool again, should it
            // have been half removed) fails too: the run stops and says so; once libvirt is
            // back, recovering finishes the unwind.
            assert!(err.needs_attention(), "{context}: {err}");
            let report =
                support::recover_run::<SmbStep>(&journal, &w.env(), RecoverMode::Unwind).await;
            assert_eq!(report.journal.status, RunStatus::Unwound, "{context}");
        } else {
            assert!(
                matches!(err, Error::StepFailed { index, .. } if index == k),
                "{context}: {err}"
            );
            assert!(!err.needs_attention(), "{context}: {err}");
        }
        w.assert_attached(&context).await;
        assert_eq!(w.shape(), before, "{context}");
        w.detach_all().await;
        w.assert_clean(FSTAB, &format!("{context}, finished")).await;
    }
}

#[tokio::test]
async fn smb_detach_failure_at_every_step_unwinds_to_attached_with_fake_kernel() {
    detach_failure_matrix("smb-dfail", &[0, 1, 2, 3, 4, 5]).await;
}

/// A detach crashed before or after each of its steps, then recovered both ways (by another
/// process, given the secret again; the journal never holds it). With
/// `delete_ontap_objects` it has six steps, the last DeleteVolume, no way back once started;
/// without, four (0 RemovePool, 1 RemoveFstab, 2 UnmountSmb, 3 RemoveCredentials), and the
/// volume and share stay.
async fn detach_crash_matrix(delete_ontap_objects: bool) {
    let steps = if delete_ontap_objects { 6 } else { 4 };
    let (name, what) = if delete_ontap_objects {
        ("dcrash", "detach")
    } else {
        ("dkeep", "detach (share kept)")
    };
    for c in crash_cases(steps) {
        let (point, mode) = (c.point, c.mode);
        let w = world(&format!("smb-{name}-{}", c.tag())).await;
        let (before, detach) = w.attached_detach(delete_ontap_objects).await;
        assert_eq!(detach.steps().len(), steps);
        let crashed = crash(detach, &w.env(), &c).await;
        assert!(!crashed.text().contains(PASSWORD));
        let report = crashed
            .recover::<SmbStep>(&w.env(), mode, LockRegistry::global())
            .await;
        let context = format!("{what} crash {point:?}, recover {mode:?}");
        // Once the volume delete (the last step) has started it may have happened and
        // cannot be undone: recovering goes forward whatever the mode.
        let past_the_volume_delete = delete_ontap_objects && c.k == 5;
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
            // Detached from the host; the volume and share stay.
            assert_eq!(w.counts().await, (1, 1), "{context}: ONTAP objects");
            assert!(w.pool_def().await.is_none(), "{context}: pool");
            support::assert_host_files(&w.root, FSTAB, &context);
            assert!(!w.cred_file().exists(), "{context}: credentials");
            assert!(
                !w.root.join("mnt").join(&w.pool).exists(),
                "{context}: mount point"
            );
        }
        if unwound || !delete_ontap_objects {
            w.detach_all().await;
        }
        w.assert_clean(FSTAB, &format!("{context}, detached")).await;
    }
}

#[tokio::test]
async fn smb_detach_crash_at_every_step_then_recover_with_fake_kernel() {
    detach_crash_matrix(true).await;
}

#[tokio::test]
async fn smb_detach_keeping_the_share_crash_at_every_step_then_recover_with_fake_kernel() {
    detach_crash_matrix(false).await;
}

/// The ACL of share `name` as (user_or_group, type, permission), sorted.
async fn share_acl(w: &World, name: &str) -> Vec<(String, String, String)> {
    let share = w
        .client
        .cifs_shares()
        .find(
            &Query::new()
                .filter("name", name)
                .fields(["acls", "svm.uuid"]),
        )
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no share {name}"));
    let svm = share.svm.unwrap().uuid.unwrap();
    let mut v: Vec<(String, String, String)> = w
        .client
        .cifs_shares()
        .acls(&svm, name)
        .list_all(&Query::new().fields(["user_or_group", "type", "permission"]))
        .await
        .unwrap()
        .into_iter()
        .map(|a| {
            (
                a.user_or_group.unwrap(),
                a.kind.unwrap().to_string(),
                a.permission.unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

async fn share_count(w: &World, name: &str) -> u64 {
    let v: serde_json::Value = w
        .client
        .raw()
        .get(
            "/api/protocols/cifs/shares",
            &Query::new().filter("name", name),
        )
        .await
        .unwrap();
    v["num_records"].as_u64().unwrap()
}

fn acl_row(who: &str, kind: &str, perm: &str) -> (String, String, String) {
    (who.to_owned(), kind.to_owned(), perm.to_owned())
}

/// `Error::Invalid` as (field, value, reason), or a panic.
fn invalid<T>(r: kvmstor::Result<T>) -> (&'static str, String, &'static str) {
    match r {
        Err(Error::Invalid {
            field,
            value,
            reason,
        }) => (field, value, reason),
        Err(other) => panic!("expected Invalid, got {other}"),
        Ok(_) => panic!("expected Invalid, got a plan"),
    }
}

#[tokio::test]
async fn smb_share_name_and_acl_entries_are_validated_before_anything_runs() {
    let w = world("smb-acl-check").await;
    let name_reason =
        "a share name cannot contain \" / \\ [ ] : | < > + = ; , * ? % or control characters";
    let mut bad_names: Vec<(String, &str)> = [
        "a/b", "a\\b", "a:b", "a*b", "a?b", "a\"b", "a<b", "a>b", "a|b", "a[b", "a;b", "a,b",
        "a=b", "a+b", "%w", "a\tb",
    ]
    .into_iter()
    .map(|bad| (bad.to_owned(), name_reason))
    .collect();
    let length_reason = "a share name has 1 to 80 characters";
    bad_names.push(("s".repeat(81), length_reason));
    bad_names.push((String::new(), length_reason));
    bad_names.push((
        " vm".to_owned(),
        "a share name cannot start or end with a space",
    ));
    for (bad, reason) in bad_names {
        assert_eq!(
            invalid(w.datastore().share_name(&bad).attach(&w.env()).await),
            ("share", bad.clone(), reason),
            "{bad:?}"
        );
    }
    for good in ["s".repeat(80), "vm$".to_owned()] {
        let planned = w.datastore().share_name(&good).attach(&w.env()).await;
        assert!(planned.is_ok(), "{good:?}");
    }

    // (ACL entries, the value the error names where checked, the reason)
    let acl_cases = [
        (
            vec![("corp\\SVC_KVM", CifsAclType::Windows, CifsPermission::Read)],
            Some("corp\\SVC_KVM (windows) read"),
            "the mount account has full control already",
        ),
        (
            vec![
                ("CORP\\ops", CifsAclType::Windows, CifsPermission::Read),
                ("corp\\OPS", CifsAclType::Windows, CifsPermission::Change),
            ],
            Some("corp\\OPS (windows) change"),
            "the ACL names this user or group twice",
        ),
        (
            vec![(" ", CifsAclType::UnixGroup, CifsPermission::Read)],
            Some("  (unix_group) read"),
            "an ACL entry names a user or group",
        ),
        (
            vec![("ops", CifsAclType::from("nis_group"), CifsPermission::Read)],
            None,
            "the ACL type is windows, unix_user or unix_group",
        ),
        (
            vec![("ops", CifsAclType::UnixUser, CifsPermission::from("write"))],
            None,
            "the permission is no_access, read, change or full_control",
        ),
    ];
    for (entries, value, reason) in acl_cases {
        let ds = entries
            .iter()
            .fold(w.datastore(), |ds, (who, kind, permission)| {
                ds.share_acl(who, kind.clone(), permission.clone())
            });
        let (field, named, why) = invalid(ds.attach(&w.env()).await);
        assert_eq!((field, why), ("share_acl", reason), "{entries:?}");
        if let Some(value) = value {
            assert_eq!(named, value, "{entries:?}");
        }
    }
    // The same name as another type is another principal.
    assert!(w
        .datastore()
        .share_acl("svc_kvm", CifsAclType::UnixUser, CifsPermission::Read)
        .attach(&w.env())
        .await
        .is_ok());
    assert_eq!(w.counts().await, (0, 0));
    assert!(w.kernel.calls().is_empty());
}

fn acl_datastore(w: &World) -> SmbDatastore {
    w.datastore()
        .share_name("kvm_images")
        .share_acl(
            "CORP\\vm-admins",
            CifsAclType::Windows,
            CifsPermission::Change,
        )
        .share_acl("kvm", CifsAclType::UnixGroup, CifsPermission::Read)
}

#[tokio::test]
async fn smb_share_name_and_acl_entries_reach_ontap_and_go_with_the_share_with_fake_kernel() {
    let w = world("smb-acl").await;
    let ds = acl_datastore(&w);
    assert_eq!(ds.share(), "kvm_images");
    let saga = ds.attach(&w.env()).await.unwrap();
    let mp = w.root.join("mnt/smb-acl");
    assert_eq!(
        labels(&saga),
        [
            "CreateVolume svm1/smb_acl".to_owned(),
            "CreateShare svm1/kvm_images".into(),
            "AddShareAcl svm1/kvm_images:CORP\\vm-admins".into(),
            "AddShareAcl svm1/kvm_images:kvm".into(),
            "WriteCredentials kvm1:kvmstor-smb-acl".into(),
            format!("MountSmb kvm1:{}", mp.display()),
            "PersistFstab kvm1:kvmstor-smb-acl".into(),
            "DefinePool kvm1:smb-acl".into(),
        ]
    );
    let plan = saga.plan().to_string();
    assert!(
        plan.contains("POST /api/protocols/cifs/shares/{svm uuid}/{share}/acls: add ACL CORP\\vm-admins (windows) change to share svm1/kvm_images (PATCH the permission if the entry exists)"),
        "{plan}"
    );
    let report = saga.run(&w.env()).await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Applied { changed: 8 });
    assert_eq!(
        share_acl(&w, "kvm_images").await,
        [
            acl_row("CORP\\svc_kvm", "windows", "full_control"),
            acl_row("CORP\\vm-admins", "windows", "change"),
            acl_row("kvm", "unix_group", "read"),
        ]
    );
    // The hosts mount the named share.
    assert!(w
        .read("etc/fstab")
        .unwrap()
        .contains(&format!("//192.0.2.11/kvm_images {} cifs ", mp.display())));
    assert_eq!(share_count(&w, "smb-acl").await, 0);

    let again = acl_datastore(&w).attach(&w.env()).await.unwrap();
    assert_eq!(
        again.run(&w.env()).await.unwrap().outcome,
        RunOutcome::AlreadyApplied
    );

    // Detach with the ONTAP objects: the share goes with its ACL.
    acl_datastore(&w)
        .delete_ontap_objects(true)
        .detach(&w.env())
        .await
        .unwrap()
        .run(&w.env())
        .await
        .unwrap();
    assert_eq!(share_count(&w, "kvm_images").await, 0);
    w.assert_clean(FSTAB, "detached").await;
}

#[tokio::test]
async fn smb_acl_unwind_restores_an_existing_entry_and_keeps_a_share_not_ours_with_fake_kernel() {
    let w = world("smb-acl-undo").await;
    // Someone else's share of that name, giving CORP\vm-admins read.
    w.client
        .cifs_shares()
        .create(
            &CifsShareCreate::new("kvm_images", "svm1", "/")
                .acl(
                    "Everyone",
                    CifsAclType::Windows,
                    CifsPermission::FullControl,
                )
                .acl(
                    "CORP\\vm-admins",
                    CifsAclType::Windows,
                    CifsPermission::Read,
                ),
        )
        .await
        .unwrap();
    let before = share_acl(&w, "kvm_images").await;
    assert_eq!(
        before,
        [
            acl_row("CORP\\vm-admins", "windows", "read"),
            acl_row("Everyone", "windows", "full_control"),
        ]
    );
    // The POST of the second entry (the first is a PATCH) fails.
    w.sim.faults().add(rpc_failure(
        "POST",
        "/api/protocols/cifs/shares/*/kvm_images/acls",
    ));
    let err = acl_datastore(&w)
        .attach(&w.env())
        .await
        .unwrap()
        .run(&w.env())
        .await
        .unwrap_err();
    match &err {
        Error::StepFailed {
            index,
            step,
            undone,
            ..
        } => {
            assert_eq!(
                (*index, step.as_str(), *undone),
                (3, "AddShareAcl svm1/kvm_images:kvm", 2),
                "{err}"
            );
        }
        other => panic!("expected StepFailed, got {other}"),
    }
    // vm-admins is back to read, the share (not ours) stays, the volume is gone.
    assert_eq!(share_acl(&w, "kvm_images").await, before);
    assert_eq!(w.counts().await, (0, 0));
    assert!(w.pool_def().await.is_none());
}
