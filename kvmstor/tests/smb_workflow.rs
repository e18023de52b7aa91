//! SMB attach/detach against the in-process ONTAP simulator, scratch host roots and
//! libvirt's `test:///default`: a failure injected at every step k, a crash at every step k
//! followed by `recover`, the credentials file (0600, the only place the password goes),
//! journals and plans without the password, detach, autofs.
//!
//! Host mount steps run through a fake runner that plays the kernel for `mount -t cifs` and
//! `umount` on the scratch mountinfo (tests named `..._with_fake_kernel`); the lab runs the
//! real path.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use host_storage::{Command, Output, Runner};
use kvmstor::nfs::Persist;
use kvmstor::saga::{recover, CrashPoint, LockRegistry, RecoverMode, RunOutcome, RunStatus};
use kvmstor::smb::{SmbDatastore, SmbStep};
use kvmstor::{Env, Error, Host, StepError};
use libvirt_pools::{Libvirt, PoolDef, PoolName, PoolSpec, RemoveMode};
use ontap_client::models::{CifsAclType, CifsPermission, CifsShareCreate};
use ontap_client::{Client, Query, SecretString};
use ontap_sim::{ApiError, Fault, SimServer};

const ROOT_MOUNT: &str = "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n";
const FSTAB: &str = "UUID=1234 / ext4 defaults 0 1\n";
const AUTO_MASTER: &str = "+auto.master\n";
const PASSWORD: &str = "Tr0ub4dor&3 horse";

#[derive(Debug)]
struct FakeKernel {
    mountinfo: PathBuf,
    st: Mutex<(Vec<String>, Option<String>)>,
}

#[async_trait::async_trait]
impl Runner for FakeKernel {
    async fn run(&self, cmd: &Command) -> host_storage::Result<Output> {
        let args: Vec<String> = cmd
            .get_args()
            .iter()
            .map(|a| a.expose().to_owned())
            .collect();
        {
            let mut st = self.st.lock().unwrap();
            st.0.push(cmd.to_string());
            if st.1.as_deref() == Some(cmd.program()) {
                st.1 = None;
                return cmd.check(Output::exit(32, "", "mount error(13): Permission denied"));
            }
        }
        let text = std::fs::read_to_string(&self.mountinfo).unwrap();
        match (cmd.program(), args.as_slice()) {
            ("mount", [_, fstype, _, opts, source, target]) => std::fs::write(
                &self.mountinfo,
                format!("{text}901 22 0:77 / {target} rw,relatime - {fstype} {source} rw,{opts}\n"),
            )
            .unwrap(),
            ("umount", [target]) => {
                let needle = format!(" {target} ");
                let kept: String = text
                    .lines()
                    .filter(|l| !l.contains(&needle))
                    .map(|l| format!("{l}\n"))
                    .collect();
                std::fs::write(&self.mountinfo, kept).unwrap();
            }
            (p, a) => panic!("unexpected command {p} {a:?}"),
        }
        cmd.check(Output::success(""))
    }
}

struct World {
    _lv: Libvirt,
    _dir: tempfile::TempDir,
    root: PathBuf,
    kernel: Arc<FakeKernel>,
    sim: SimServer,
    client: Client,
    /// Without the password.
    bare: Env,
    pool: String,
}

async fn world(pool: &str) -> World {
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
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(root.join("proc/self")).unwrap();
    std::fs::write(root.join("etc/fstab"), FSTAB).unwrap();
    std::fs::write(root.join("etc/auto.master"), AUTO_MASTER).unwrap();
    std::fs::write(root.join("proc/self/mountinfo"), ROOT_MOUNT).unwrap();
    let kernel = Arc::new(FakeKernel {
        mountinfo: root.join("proc/self/mountinfo"),
        st: Mutex::new((Vec::new(), None)),
    });
    let host = Host::new("kvm1", kernel.clone())
        .address("192.0.2.101")
        .libvirt_uri("test:///default")
        .root(&root)
        .autofs_reload(host_storage::autofs::Reload::Never);
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
        let lv = Libvirt::connect("test:///default").await.unwrap();
        lv.pools()
            .get(&PoolName::new(self.pool.clone()).unwrap())
            .await
            .unwrap()
    }

    async fn assert_clean(&self, fstab: &str, context: &str) {
        assert_eq!(self.counts().await, (0, 0), "{context}: ONTAP objects");
        assert!(self.pool_def().await.is_none(), "{context}: pool");
        assert_eq!(
            self.read("etc/fstab").as_deref(),
            Some(fstab),
            "{context}: fstab"
        );
        assert_eq!(
            self.read("proc/self/mountinfo").as_deref(),
            Some(ROOT_MOUNT),
            "{context}: mounts"
        );
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

fn labels(saga: &kvmstor::saga::Saga<SmbStep>) -> Vec<String> {
    saga.steps()
        .iter()
        .map(kvmstor::saga::Step::label)
        .collect()
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
        w.kernel.st.lock().unwrap().0,
        [
            format!("mount -t cifs -o vers=3.1.1,multichannel,max_channels=4,credentials=/etc/kvmstor/cifs/kvmstor-smb-plan.cred //192.0.2.11/smb-plan {}", mp.display()),
            format!("umount {}", mp.display()),
        ]
    );
}

/// Makes step k fail; returns the fstab the host must keep and the env to run with.
async fn inject(w: &World, k: usize) -> (String, Env) {
    match k {
        0 => w.sim.faults().add(Fault::fail_job(
            Some("POST"),
            "/api/storage/volumes",
            917_536,
            "Insufficient space in aggregate",
        )),
        1 => w.sim.faults().add(Fault::error(
            Some("POST"),
            "/api/protocols/cifs/shares",
            ApiError::new(400, "655551", "share path does not exist"),
        )),
        // The password was not given: the credentials step cannot write the file.
        2 => return (FSTAB.into(), w.bare.clone()),
        3 => w.kernel.st.lock().unwrap().1 = Some("mount".into()),
        4 => {
            let fstab = format!(
                "{FSTAB}//other/share {} cifs defaults 0 0\n",
                w.root.join("mnt").join(&w.pool).display()
            );
            std::fs::write(w.root.join("etc/fstab"), &fstab).unwrap();
            return (fstab, w.env());
        }
        5 => {
            let lv = Libvirt::connect("test:///default").await.unwrap();
            lv.pools()
                .ensure(&PoolSpec::new(PoolDef::dir(
                    PoolName::new(w.pool.clone()).unwrap(),
                    format!("/srv/someone-elses/{}", w.pool),
                )))
                .await
                .unwrap();
        }
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
            let lv = Libvirt::connect("test:///default").await.unwrap();
            lv.pools()
                .remove(
                    &PoolName::new(w.pool.clone()).unwrap(),
                    RemoveMode::KeepData,
                )
                .await
                .unwrap();
        }
        w.assert_clean(&fstab, &format!("failure at step {k}"))
            .await;
    }
}

#[tokio::test]
async fn smb_crash_at_every_step_then_recover_unwinds_or_finishes_with_fake_kernel() {
    for k in 0..6 {
        for (p, point) in [CrashPoint::BeforeApply(k), CrashPoint::AfterApply(k)]
            .into_iter()
            .enumerate()
        {
            for mode in [RecoverMode::Unwind, RecoverMode::Resume] {
                let w = world(&format!(
                    "smb-crash-{k}-{p}-{}",
                    mode == RecoverMode::Unwind
                ))
                .await;
                let dir = tempfile::tempdir().unwrap();
                let journal = dir.path().join("attach.json");
                let err = w
                    .datastore()
                    .attach(&w.env())
                    .await
                    .unwrap()
                    .journal_file(&journal)
                    .crash_at(point)
                    .run(&w.env())
                    .await
                    .unwrap_err();
                assert!(
                    matches!(err, Error::Interrupted { index, .. } if index == k),
                    "{err}"
                );
                assert!(!std::fs::read_to_string(&journal)
                    .unwrap()
                    .contains(PASSWORD));
                // Another process recovers: it is given the secret again.
                let report = recover::<SmbStep>(&journal, &w.env(), mode, LockRegistry::global())
                    .await
                    .unwrap();
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
    assert!(
        w.kernel.st.lock().unwrap().0.is_empty(),
        "autofs mounts on access"
    );
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
    // 0 RemovePool, 1 RemoveFstab, 2 UnmountSmb, 3 RemoveCredentials, 4 DeleteShare,
    // 5 DeleteVolume.
    for k in [2, 4] {
        let w = world(&format!("smb-detach-{k}")).await;
        w.datastore()
            .attach(&w.env())
            .await
            .unwrap()
            .run(&w.env())
            .await
            .unwrap();
        if k == 2 {
            w.kernel.st.lock().unwrap().1 = Some("umount".into());
        } else {
            w.sim.faults().add(Fault::error(
                Some("DELETE"),
                "/api/protocols/cifs/shares/*",
                ApiError::new(500, "65552", "RPC failure"),
            ));
        }
        let detach = w
            .datastore()
            .delete_ontap_objects(true)
            .detach(&w.env())
            .await
            .unwrap();
        assert_eq!(detach.steps().len(), 6);
        let err = detach.run(&w.env()).await.unwrap_err();
        assert!(
            matches!(err, Error::StepFailed { index, .. } if index == k),
            "{k}: {err}"
        );
        w.assert_attached(&format!("detach failure at {k}")).await;
        w.detach_all().await;
        w.assert_clean(FSTAB, &format!("detach k={k}, finished"))
            .await;
    }

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
    w.sim.faults().add(Fault::error(
        Some("DELETE"),
        "/api/protocols/cifs/shares/*",
        ApiError::new(500, "65552", "RPC failure"),
    ));
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
    let report = recover::<SmbStep>(
        &journal,
        &w.env(),
        RecoverMode::Unwind,
        LockRegistry::global(),
    )
    .await
    .unwrap();
    assert_eq!(report.journal.status, RunStatus::Unwound);
    w.assert_attached("recovered with the secret").await;
}

// ---- Detach: a failure at every step, a crash at every step ----

/// A directory that refuses new and removed entries, also to root (mode 0555 and, where the
/// caller may set it, the immutable attribute), as on a read-only `/etc`: a step that writes
/// or removes a file there fails. Thawed to its old mode on drop, panics included.
struct Frozen(PathBuf, u32);

impl Frozen {
    fn new(dir: &std::path::Path) -> Frozen {
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
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .output();
        let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(self.1));
    }
}

/// Every file and directory under `dir` (relative to `root`) with its content and mode, the
/// password masked.
fn tree(
    root: &std::path::Path,
    dir: &std::path::Path,
    out: &mut std::collections::BTreeMap<String, String>,
) {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for p in names {
        let rel = p.strip_prefix(root).unwrap().display().to_string();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777;
        if p.is_dir() {
            out.insert(format!("{rel}/"), format!("{mode:o}"));
            tree(root, &p, out);
        } else {
            let text = std::fs::read_to_string(&p)
                .unwrap()
                .replace(PASSWORD, "<password>");
            out.insert(rel, format!("{mode:o} {text}"));
        }
    }
}

impl World {
    /// The host's whole scratch root (fstab, mountinfo, credentials, the mount point).
    fn shape(&self) -> std::collections::BTreeMap<String, String> {
        let mut out = std::collections::BTreeMap::new();
        tree(&self.root, &self.root, &mut out);
        out
    }

    async fn attach_now(&self) {
        self.datastore()
            .attach(&self.env())
            .await
            .unwrap()
            .run(&self.env())
            .await
            .unwrap();
        self.assert_attached("attached").await;
    }
}

/// Makes step `k` of the detach that deletes the ONTAP objects fail (0 RemovePool,
/// 1 RemoveFstab, 2 UnmountSmb, 3 RemoveCredentials, 4 DeleteShare, 5 DeleteVolume);
/// returns the environment to run it with and the frozen directory, if any.
fn inject_detach(w: &World, k: usize) -> (Env, Option<Frozen>) {
    match k {
        0 => {
            // libvirtd cannot be reached: the same host, with a connection that fails.
            let host = Host::new("kvm1", w.kernel.clone())
                .address("192.0.2.101")
                .libvirt_uri("test:///nonexistent/kvmstor-no-libvirtd.xml")
                .root(&w.root)
                .autofs_reload(host_storage::autofs::Reload::Never);
            let bare = Env::new(w.client.clone()).host(host);
            return (w.datastore().env_with_secret(&bare), None);
        }
        1 => return (w.env(), Some(Frozen::new(&w.root.join("etc")))),
        2 => w.kernel.st.lock().unwrap().1 = Some("umount".into()),
        3 => {
            let dir = w.cred_file().parent().unwrap().to_owned();
            return (w.env(), Some(Frozen::new(&dir)));
        }
        4 => w.sim.faults().add(Fault::error(
            Some("DELETE"),
            "/api/protocols/cifs/shares/*",
            ApiError::new(500, "65552", "RPC failure"),
        )),
        5 => w.sim.faults().add(Fault::fail_job(
            Some("DELETE"),
            "/api/storage/volumes/*",
            917_718,
            "Volume busy",
        )),
        _ => unreachable!(),
    }
    (w.env(), None)
}

#[tokio::test]
async fn smb_detach_failure_at_every_step_unwinds_to_attached_with_fake_kernel() {
    for k in 0..6 {
        let w = world(&format!("smb-dfail-{k}")).await;
        w.attach_now().await;
        let before = w.shape();
        let detach = w
            .datastore()
            .delete_ontap_objects(true)
            .detach(&w.env())
            .await
            .unwrap();
        let mp = w.root.join("mnt").join(&w.pool);
        assert_eq!(
            labels(&detach),
            [
                format!("RemovePool kvm1:smb-dfail-{k}"),
                format!("RemoveFstab kvm1:kvmstor-smb-dfail-{k}"),
                format!("UnmountSmb kvm1:{}", mp.display()),
                format!("RemoveCredentials kvm1:kvmstor-smb-dfail-{k}"),
                format!("DeleteShare svm1/smb-dfail-{k}"),
                format!("DeleteVolume svm1/smb_dfail_{k}"),
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
            let report = recover::<SmbStep>(
                &journal,
                &w.env(),
                RecoverMode::Unwind,
                LockRegistry::global(),
            )
            .await
            .unwrap();
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
async fn smb_detach_crash_at_every_step_then_recover_with_fake_kernel() {
    // The detach that deletes the ONTAP objects; DeleteVolume (5) is the last step and has no
    // way back once started.
    for k in 0..6 {
        for (p, point) in [CrashPoint::BeforeApply(k), CrashPoint::AfterApply(k)]
            .into_iter()
            .enumerate()
        {
            for mode in [RecoverMode::Unwind, RecoverMode::Resume] {
                let w = world(&format!(
                    "smb-dcrash-{k}-{p}-{}",
                    mode == RecoverMode::Unwind
                ))
                .await;
                w.attach_now().await;
                let before = w.shape();
                let dir = tempfile::tempdir().unwrap();
                let journal = dir.path().join("detach.json");
                let err = w
                    .datastore()
                    .delete_ontap_objects(true)
                    .detach(&w.env())
                    .await
                    .unwrap()
                    .journal_file(&journal)
                    .crash_at(point)
                    .run(&w.env())
                    .await
                    .unwrap_err();
                assert!(
                    matches!(err, Error::Interrupted { index, .. } if index == k),
                    "{err}"
                );
                assert!(!std::fs::read_to_string(&journal)
                    .unwrap()
                    .contains(PASSWORD));
                // Another process recovers, given the secret again.
                let report = recover::<SmbStep>(&journal, &w.env(), mode, LockRegistry::global())
                    .await
                    .unwrap();
                let context = format!("detach crash {point:?}, recover {mode:?}");
                // Once the volume delete (the last step) has started it may have happened
                // and cannot be undone: recovering goes forward whatever the mode.
                if mode == RecoverMode::Unwind && k < 5 {
                    assert_eq!(report.journal.status, RunStatus::Unwound, "{context}");
                    w.assert_attached(&context).await;
                    assert_eq!(w.shape(), before, "{context}");
                    w.detach_all().await;
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
async fn smb_detach_keeping_the_share_crash_at_every_step_then_recover_with_fake_kernel() {
    // 0 RemovePool, 1 RemoveFstab, 2 UnmountSmb, 3 RemoveCredentials; volume and share stay.
    for k in 0..4 {
        for (p, point) in [CrashPoint::BeforeApply(k), CrashPoint::AfterApply(k)]
            .into_iter()
            .enumerate()
        {
            for mode in [RecoverMode::Unwind, RecoverMode::Resume] {
                let w = world(&format!(
                    "smb-dkeep-{k}-{p}-{}",
                    mode == RecoverMode::Unwind
                ))
                .await;
                w.attach_now().await;
                let before = w.shape();
                let dir = tempfile::tempdir().unwrap();
                let journal = dir.path().join("detach.json");
                let detach = w
                    .datastore()
                    .detach(&w.env())
                    .await
                    .unwrap()
                    .journal_file(&journal)
                    .crash_at(point);
                assert_eq!(detach.steps().len(), 4);
                let err = detach.run(&w.env()).await.unwrap_err();
                assert!(
                    matches!(err, Error::Interrupted { index, .. } if index == k),
                    "{err}"
                );
                let report = recover::<SmbStep>(&journal, &w.env(), mode, LockRegistry::global())
                    .await
                    .unwrap();
                let context = format!("detach (share kept) crash {point:?}, recover {mode:?}");
                if mode == RecoverMode::Unwind {
                    assert_eq!(report.journal.status, RunStatus::Unwound, "{context}");
                    w.assert_attached(&context).await;
                    assert_eq!(w.shape(), before, "{context}");
                } else {
                    assert_eq!(report.journal.status, RunStatus::Completed, "{context}");
                    assert_eq!(w.counts().await, (1, 1), "{context}: ONTAP objects");
                    assert!(w.pool_def().await.is_none(), "{context}: pool");
                    assert_eq!(w.read("etc/fstab").as_deref(), Some(FSTAB), "{context}");
                    assert_eq!(
                        w.read("proc/self/mountinfo").as_deref(),
                        Some(ROOT_MOUNT),
                        "{context}"
                    );
                    assert!(!w.cred_file().exists(), "{context}: credentials");
                    assert!(
                        !w.root.join("mnt").join(&w.pool).exists(),
                        "{context}: mount point"
                    );
                }
                w.detach_all().await;
                w.assert_clean(FSTAB, &format!("{context}, detached")).await;
            }
        }
    }
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
    for bad in [
        "a/b", "a\\b", "a:b", "a*b", "a?b", "a\"b", "a<b", "a>b", "a|b", "a[b", "a;b", "a,b",
        "a=b", "a+b", "%w", "a\tb",
    ] {
        assert_eq!(
            invalid(w.datastore().share_name(bad).attach(&w.env()).await),
            ("share", bad.to_owned(), name_reason),
            "{bad:?}"
        );
    }
    let long = "s".repeat(81);
    assert_eq!(
        invalid(w.datastore().share_name(&long).attach(&w.env()).await),
        ("share", long.clone(), "a share name has 1 to 80 characters")
    );
    assert_eq!(
        invalid(w.datastore().share_name("").attach(&w.env()).await),
        (
            "share",
            String::new(),
            "a share name has 1 to 80 characters"
        )
    );
    assert_eq!(
        invalid(w.datastore().share_name(" vm").attach(&w.env()).await),
        (
            "share",
            " vm".to_owned(),
            "a share name cannot start or end with a space"
        )
    );
    assert!(w
        .datastore()
        .share_name(&"s".repeat(80))
        .attach(&w.env())
        .await
        .is_ok());
    assert!(w
        .datastore()
        .share_name("vm$")
        .attach(&w.env())
        .await
        .is_ok());

    assert_eq!(
        invalid(
            w.datastore()
                .share_acl("corp\\SVC_KVM", CifsAclType::Windows, CifsPermission::Read)
                .attach(&w.env())
                .await
        ),
        (
            "share_acl",
            "corp\\SVC_KVM (windows) read".to_owned(),
            "the mount account has full control already"
        )
    );
    assert_eq!(
        invalid(
            w.datastore()
                .share_acl("CORP\\ops", CifsAclType::Windows, CifsPermission::Read)
                .share_acl("corp\\OPS", CifsAclType::Windows, CifsPermission::Change)
                .attach(&w.env())
                .await
        ),
        (
            "share_acl",
            "corp\\OPS (windows) change".to_owned(),
            "the ACL names this user or group twice"
        )
    );
    assert_eq!(
        invalid(
            w.datastore()
                .share_acl(" ", CifsAclType::UnixGroup, CifsPermission::Read)
                .attach(&w.env())
                .await
        ),
        (
            "share_acl",
            "  (unix_group) read".to_owned(),
            "an ACL entry names a user or group"
        )
    );
    assert_eq!(
        invalid(
            w.datastore()
                .share_acl("ops", CifsAclType::from("nis_group"), CifsPermission::Read)
                .attach(&w.env())
                .await
        )
        .2,
        "the ACL type is windows, unix_user or unix_group"
    );
    assert_eq!(
        invalid(
            w.datastore()
                .share_acl("ops", CifsAclType::UnixUser, CifsPermission::from("write"))
                .attach(&w.env())
                .await
        )
        .2,
        "the permission is no_access, read, change or full_control"
    );
    // The same name as another type is another principal.
    assert!(w
        .datastore()
        .share_acl("svc_kvm", CifsAclType::UnixUser, CifsPermission::Read)
        .attach(&w.env())
        .await
        .is_ok());
    assert_eq!(w.counts().await, (0, 0));
    assert!(w.kernel.st.lock().unwrap().0.is_empty());
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
    w.sim.faults().add(Fault::error(
        Some("POST"),
        "/api/protocols/cifs/shares/*/kvm_images/acls",
        ApiError::new(500, "65552", "RPC failure"),
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
