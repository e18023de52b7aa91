//! NFS and SMB datastores persisted with autofs against a fake automount: what the lab's
//! real automount showed. Its reload is asynchronous (the direct-map trigger appears a
//! moment after the signal), and removing an entry drops an idle trigger only, never the
//! file system it mounted. So attach waits for the trigger before the pool is built on the
//! path, and detach unmounts what automount mounted before it removes the entry.
//!
//! `FakeAutomount` plays both the kernel (`mount`, `umount` on a scratch mountinfo) and
//! automount behind `systemctl try-reload-or-restart autofs.service` (the host has
//! `/run/systemd/system`): it sets up a trigger for every entry of `/etc/auto.kvmstor`
//! after a delay and drops the triggers of removed entries unless something is mounted on
//! them.

mod support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use host_storage::autofs::Reload;
use host_storage::{Command, Output, Runner};
use kvmstor::nfs::{NfsDatastore, Persist};
use kvmstor::saga::{RunOutcome, Step as _};
use kvmstor::smb::SmbDatastore;
use kvmstor::{Env, Error, Host, StepError};
use ontap_client::{Client, SecretString};
use ontap_sim::SimServer;
use support::ROOT_MOUNT;

/// How long the fake automount takes to set up a trigger after a reload.
const SETUP_DELAY: Duration = Duration::from_millis(300);

#[derive(Debug)]
struct FakeAutomount {
    root: PathBuf,
    calls: Mutex<Vec<String>>,
    /// Whether `systemctl is-active autofs.service` says active.
    running: AtomicBool,
}

impl FakeAutomount {
    fn mountinfo(&self) -> PathBuf {
        self.root.join("proc/self/mountinfo")
    }

    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(self.mountinfo())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn save(&self, lines: &[String]) {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(self.mountinfo(), text).unwrap();
    }

    fn at(line: &str) -> &str {
        line.split(' ').nth(4).unwrap_or_default()
    }

    /// The targets of the direct map's entries (as on the host: under the scratch root).
    fn entries(&self) -> Vec<String> {
        std::fs::read_to_string(self.root.join("etc/auto.kvmstor"))
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
            .collect()
    }

    /// automount re-reading its maps.
    fn reload(&self) {
        let wanted = self.entries();
        let mut lines = self.lines();
        // Removed entries: idle triggers go, busy ones (a mount on top) stay.
        let busy = |lines: &[String], t: &str| {
            lines
                .iter()
                .any(|l| Self::at(l) == t && !l.contains(" - autofs "))
        };
        let snapshot = lines.clone();
        lines.retain(|l| {
            !(l.contains(" - autofs ")
                && !wanted.iter().any(|w| w == Self::at(l))
                && !busy(&snapshot, Self::at(l)))
        });
        self.save(&lines);
        // New entries: the trigger appears a moment later.
        let missing: Vec<String> = wanted
            .into_iter()
            .filter(|w| {
                !lines
                    .iter()
                    .any(|l| Self::at(l) == w && l.contains(" - autofs "))
            })
            .collect();
        if missing.is_empty() {
            return;
        }
        let path = self.mountinfo();
        std::thread::spawn(move || {
            std::thread::sleep(SETUP_DELAY);
            let mut text = std::fs::read_to_string(&path).unwrap();
            for t in missing {
                text.push_str(&format!(
                    "800 22 0:60 / {t} rw,relatime - autofs /etc/auto.kvmstor rw,direct\n"
                ));
            }
            std::fs::write(&path, text).unwrap();
        });
    }

    /// What automount does on the first access of a trigger: mounts `source` on it.
    fn access(&self, target: &Path, fstype: &str, source: &str) {
        let mut lines = self.lines();
        let t = target.display().to_string();
        assert!(
            lines
                .iter()
                .any(|l| Self::at(l) == t && l.contains(" - autofs ")),
            "no trigger at {t}: {lines:?}"
        );
        lines.push(format!("900 800 0:99 / {t} rw - {fstype} {source} rw"));
        self.save(&lines);
    }
}

#[async_trait::async_trait]
impl Runner for FakeAutomount {
    async fn run(&self, cmd: &Command) -> host_storage::Result<Output> {
        self.calls.lock().unwrap().push(cmd.to_string());
        let args: Vec<String> = cmd
            .get_args()
            .iter()
            .map(|a| a.expose().to_owned())
            .collect();
        match cmd.program() {
            "systemctl" if args[0] == "is-active" => {
                return Ok(if self.running.load(Ordering::SeqCst) {
                    Output::success("active\n")
                } else {
                    Output::exit(3, "inactive\n", "")
                });
            }
            "systemctl" => self.reload(),
            "umount" => {
                // The mount on top goes.
                let mut lines = self.lines();
                let i = lines
                    .iter()
                    .rposition(|l| Self::at(l) == args[0])
                    .expect("umount of something mounted");
                lines.remove(i);
                self.save(&lines);
            }
            other => panic!("unexpected program {other}"),
        }
        Ok(Output::success(""))
    }
}

struct World {
    _sim: SimServer,
    client: Client,
    _dir: tempfile::TempDir,
    root: PathBuf,
    runner: Arc<FakeAutomount>,
    env: Env,
}

async fn world() -> World {
    let (sim, client) = support::sim().await;
    let (dir, root) = support::scratch_root(
        &["run/systemd/system"],
        &[
            ("etc/auto.master", "+auto.master\n"),
            ("proc/self/mountinfo", ROOT_MOUNT),
        ],
    );
    let runner = Arc::new(FakeAutomount {
        root: root.clone(),
        calls: Mutex::new(Vec::new()),
        running: AtomicBool::new(true),
    });
    let host = Host::new("kvm1", runner.clone())
        .address("192.0.2.101")
        .libvirt_uri("test:///default")
        .root(&root)
        .autofs_reload(Reload::Systemd);
    World {
        _sim: sim,
        client: client.clone(),
        _dir: dir,
        root,
        runner,
        env: Env::new(client).host(host),
    }
}

impl World {
    /// The master map as it was, no kvmstor map, and none of `volumes` in ONTAP.
    async fn assert_untouched(&self, master_before: &str, volumes: &[&str]) {
        assert_eq!(
            std::fs::read_to_string(self.root.join("etc/auto.master")).unwrap(),
            master_before
        );
        assert!(!self.root.join("etc/auto.kvmstor").exists());
        for v in volumes {
            let found = self.client.volumes().by_name("svm1", v).await.unwrap();
            assert!(found.is_none(), "volume {v} is left");
        }
    }

    fn at(&self, target: &Path) -> Vec<String> {
        let t = target.display().to_string();
        self.runner
            .lines()
            .into_iter()
            .filter(|l| FakeAutomount::at(l) == t)
            .collect()
    }
}

#[tokio::test]
async fn nfs_autofs_attach_waits_for_the_trigger_and_detach_unmounts_with_fake_automount() {
    let w = world().await;
    let mount = w.root.join("mnt/auto-nfs");
    let ds = NfsDatastore::new("svm1", "auto-nfs", "aggr1", 1 << 30)
        .hosts(["kvm1"])
        .mount_point(&mount)
        .persist(Persist::Autofs)
        .delete_ontap_objects(true);
    let report = ds.attach(&w.env).await.unwrap().run(&w.env).await.unwrap();
    assert!(matches!(report.outcome, RunOutcome::Applied { .. }));
    // The pool step ran after the trigger was there.
    let at = w.at(&mount);
    assert_eq!(at.len(), 1, "{at:?}");
    assert!(at[0].contains(" - autofs /etc/auto.kvmstor "), "{at:?}");

    let lifs = ds.lif_addresses(&w.env).await.unwrap();
    w.runner
        .access(&mount, "nfs4", &format!("{}:/auto_nfs", lifs[0]));
    let report = ds.detach(&w.env).await.unwrap().run(&w.env).await.unwrap();
    assert!(matches!(report.outcome, RunOutcome::Applied { .. }));
    assert_eq!(w.at(&mount), Vec::<String>::new(), "mount and trigger gone");
    let calls = w.runner.calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        [
            // Planned: automount runs; the step checks again right before it writes.
            "systemctl is-active autofs.service".to_owned(),
            "systemctl is-active autofs.service".to_owned(),
            "systemctl try-reload-or-restart autofs.service".to_owned(),
            format!("umount {}", mount.display()),
            "systemctl try-reload-or-restart autofs.service".to_owned(),
            // The trigger is awaited only from a running automount.
            "systemctl is-active autofs.service".to_owned(),
        ]
    );
}

#[tokio::test]
async fn smb_autofs_attach_waits_for_the_trigger_and_detach_unmounts_with_fake_automount() {
    let w = world().await;
    let mount = w.root.join("mnt/auto-smb");
    let ds = SmbDatastore::new("svm1", "auto-smb", "aggr1", 1 << 30)
        .hosts(["kvm1"])
        .mount_point(&mount)
        .account("svc_kvm", None, SecretString::from("s3cret-pass"))
        .persist(Persist::Autofs)
        .delete_ontap_objects(true);
    let env = ds.env_with_secret(&w.env);
    let report = ds.attach(&env).await.unwrap().run(&env).await.unwrap();
    assert!(matches!(report.outcome, RunOutcome::Applied { .. }));
    let at = w.at(&mount);
    assert_eq!(at.len(), 1, "{at:?}");
    assert!(at[0].contains(" - autofs "), "{at:?}");

    let lif = ds.lif_address(&env).await.unwrap();
    w.runner
        .access(&mount, "cifs", &format!("//{lif}/auto-smb"));
    let report = ds.detach(&env).await.unwrap().run(&env).await.unwrap();
    assert!(matches!(report.outcome, RunOutcome::Applied { .. }));
    assert_eq!(w.at(&mount), Vec::<String>::new(), "mount and trigger gone");
    let umounts = w
        .runner
        .calls
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.starts_with("umount "))
        .count();
    assert_eq!(umounts, 1);
}

/// The host error at the bottom of a plan or step failure.
fn host_source(err: &Error) -> &host_storage::Error {
    let step = match err {
        Error::Plan { source, .. } | Error::StepFailed { source, .. } => source.as_ref(),
        other => panic!("not a plan or step failure: {other:?}"),
    };
    match step {
        StepError::Host { source, .. } => source,
        other => panic!("not a host failure: {other:?}"),
    }
}

#[tokio::test]
async fn autofs_attach_is_refused_before_anything_when_automount_is_not_running_with_fake_automount(
) {
    let w = world().await;
    w.runner.running.store(false, Ordering::SeqCst);
    let master_before = std::fs::read_to_string(w.root.join("etc/auto.master")).unwrap();
    let nfs = NfsDatastore::new("svm1", "auto-nfs", "aggr1", 1 << 30)
        .hosts(["kvm1"])
        .mount_point(w.root.join("mnt/auto-nfs"))
        .persist(Persist::Autofs);
    let err = nfs.attach(&w.env).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "planning nfs-attach svm1/auto_nfs as pool auto-nfs failed"
    );
    assert!(
        matches!(host_source(&err), host_storage::Error::NotRunning { daemon: "automount", evidence }
            if evidence == "systemctl is-active autofs.service: inactive"),
        "{err:?}"
    );
    let smb = SmbDatastore::new("svm1", "auto-smb", "aggr1", 1 << 30)
        .hosts(["kvm1"])
        .mount_point(w.root.join("mnt/auto-smb"))
        .account("svc_kvm", None, SecretString::from("s3cret-pass"))
        .persist(Persist::Autofs);
    let err = smb.attach(&smb.env_with_secret(&w.env)).await.unwrap_err();
    assert!(
        matches!(host_source(&err), host_storage::Error::NotRunning { .. }),
        "{err:?}"
    );
    // Nothing was touched: only the two questions were asked.
    assert_eq!(
        *w.runner.calls.lock().unwrap(),
        ["systemctl is-active autofs.service"; 2]
    );
    w.assert_untouched(&master_before, &["auto_nfs", "auto_smb"])
        .await;
}

#[tokio::test]
async fn autofs_step_fails_and_unwinds_when_automount_stopped_after_planning_with_fake_automount() {
    let w = world().await;
    let master_before = std::fs::read_to_string(w.root.join("etc/auto.master")).unwrap();
    let ds = NfsDatastore::new("svm1", "auto-nfs", "aggr1", 1 << 30)
        .hosts(["kvm1"])
        .mount_point(w.root.join("mnt/auto-nfs"))
        .persist(Persist::Autofs);
    let saga = ds.attach(&w.env).await.unwrap();
    let index = saga
        .steps()
        .iter()
        .position(|s| s.label().starts_with("PersistAutofs "))
        .unwrap();
    // automount stops (or is stopped) between planning and running.
    w.runner.running.store(false, Ordering::SeqCst);
    let err = saga.run(&w.env).await.unwrap_err();
    assert!(
        matches!(err, Error::StepFailed { index: i, .. } if i == index),
        "{err:?}"
    );
    assert!(
        matches!(host_source(&err), host_storage::Error::NotRunning { .. }),
        "{err:?}"
    );
    // The entry was never written and the ONTAP objects made before it are undone.
    w.assert_untouched(&master_before, &["auto_nfs"]).await;
    assert!(!w
        .runner
        .calls
        .lock()
        .unwrap()
        .iter()
        .any(|c| c.contains("try-reload")));
}
