//! Runs the `kvmstor-cli` binary against an in-process ONTAP simulator over HTTPS (its CA
//! written to a file, the password in a 0600 file), with the host side simulated
//! (`--sim-host-root`: scratch roots, a fake kernel for mount/umount, libvirt
//! `test:///default`), and checks output, JSON and exit codes.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use ontap_client::Query;
use ontap_sim::{ApiError, Fault, SimServer};
use secrecy::ExposeSecret;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_kvmstor-cli");
const SMB_PASSWORD: &str = "Tr0ub4dor&3 horse";

struct World {
    sim: SimServer,
    dir: tempfile::TempDir,
}

impl World {
    async fn new() -> World {
        let sim = SimServer::builder()
            .job_duration(Duration::ZERO, Duration::from_millis(5))
            .start()
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), sim.ca_pem().unwrap()).unwrap();
        std::fs::write(
            dir.path().join("pw"),
            format!("{}\n", sim.password().expose_secret()),
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("hosts")).unwrap();
        World { sim, dir }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// Runs the binary with the endpoint flags, then `args`.
    async fn cli(&self, args: &[&str]) -> Output {
        let mut cmd = std::process::Command::new(BIN);
        cmd.arg("--url")
            .arg(self.sim.url())
            .arg("--ca-file")
            .arg(self.path("ca.pem"))
            .arg("--password-file")
            .arg(self.path("pw"))
            .arg("--journal-dir")
            .arg(self.path("journal"))
            .args(args)
            .env_remove("KVMSTOR_ONTAP_PASSWORD");
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap()
    }

    /// `cmd` for datastore `pool` (`kind` flags, 10 GiB) on the simulated `hosts`, with
    /// `options`, then `extra`.
    async fn datastore(
        &self,
        cmd: &str,
        kind: &[&str],
        pool: &str,
        hosts: &[&str],
        options: &[&str],
        extra: &[&str],
    ) -> Output {
        let root = self.path("hosts");
        let mut args = vec![cmd];
        args.extend_from_slice(kind);
        args.extend_from_slice(&["--name", pool, "--size", "10G"]);
        for host in hosts {
            args.extend_from_slice(&["--host", host]);
        }
        args.extend_from_slice(options);
        args.extend_from_slice(&["--sim-host-root", root.to_str().unwrap()]);
        args.extend_from_slice(extra);
        self.cli(&args).await
    }

    /// `cmd` for an NFS datastore on simulated host kvm1.
    async fn nfs(&self, cmd: &str, pool: &str, extra: &[&str]) -> Output {
        self.datastore(cmd, &[], pool, &["kvm1=192.0.2.101"], &[], extra)
            .await
    }

    fn host_file(&self, file: &str) -> String {
        self.file_of("kvm1", file)
    }

    fn file_of(&self, host: &str, file: &str) -> String {
        std::fs::read_to_string(self.path("hosts").join(host).join(file)).unwrap()
    }

    /// `cmd` for an SMB datastore on simulated host kvm1 (password from a 0600 file).
    async fn smb(&self, cmd: &str, pool: &str, extra: &[&str]) -> Output {
        std::fs::write(self.path("smb-pw"), format!("{SMB_PASSWORD}\n")).unwrap();
        std::fs::set_permissions(
            self.path("smb-pw"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let pw = self.path("smb-pw");
        let options = [
            "--smb-user",
            "svc_kvm",
            "--smb-domain",
            "CORP",
            "--smb-password-file",
            pw.to_str().unwrap(),
        ];
        let hosts = ["kvm1=192.0.2.101"];
        self.datastore(cmd, &["--kind", "smb"], pool, &hosts, &options, extra)
            .await
    }

    /// `cmd` for a block datastore on simulated hosts kvm1 and kvm2.
    async fn block(&self, cmd: &str, pool: &str, extra: &[&str]) -> Output {
        let hosts = ["kvm1=192.0.2.101", "kvm2=192.0.2.102"];
        let options = ["--device-wait", "5"];
        self.datastore(cmd, &["--kind", "block"], pool, &hosts, &options, extra)
            .await
    }

    async fn volume_exists(&self, name: &str) -> bool {
        let state = self.sim.state();
        state.to_string().contains(&format!("\"name\":\"{name}\""))
    }
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The JSON document of a run that exited with `code`.
fn json_exit(out: &Output, code: i32) -> Value {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stderr: {}\nstdout: {}",
        stderr(out),
        String::from_utf8_lossy(&out.stdout)
    );
    json(out)
}

/// An ONTAP error answering `method` on `path`.
struct Refusal {
    method: &'static str,
    path: &'static str,
    status: u16,
    code: &'static str,
    message: &'static str,
}

const AGGREGATE_OFFLINE: Refusal = Refusal {
    method: "POST",
    path: "/api/storage/volumes",
    status: 400,
    code: "917927",
    message: "Aggregate is offline",
};

const LUN_TOO_LARGE: Refusal = Refusal {
    method: "POST",
    path: "/api/storage/luns",
    status: 400,
    code: "5374860",
    message: "LUN size too large",
};

const NO_SHARE_PATH: Refusal = Refusal {
    method: "POST",
    path: "/api/protocols/cifs/shares",
    status: 400,
    code: "655551",
    message: "share path not found",
};

/// An undo that cannot finish: the export policy stays in use.
const POLICY_IN_USE: Refusal = Refusal {
    method: "DELETE",
    path: "/api/protocols/nfs/export-policies/*",
    status: 400,
    code: "1703954",
    message: "policy in use",
};

/// An undo that cannot finish: the volume stays busy.
const VOLUME_BUSY: Refusal = Refusal {
    method: "DELETE",
    path: "/api/storage/volumes/*",
    status: 409,
    code: "917536",
    message: "volume busy",
};

impl Refusal {
    fn fault(&self) -> Fault {
        Fault::error(
            Some(self.method),
            self.path,
            ApiError::new(self.status, self.code, self.message),
        )
    }

    /// The next matching request is refused.
    fn inject(&self, w: &World) {
        w.sim.faults().add(self.fault());
    }

    /// Every matching request is refused, until the faults are cleared.
    fn persist(&self, w: &World) {
        w.sim.faults().add(self.fault().times(0));
    }
}

/// The `error` of a `--json` run that `refusal` made fail and that rolled back cleanly:
/// exit 1, ONTAP's status and code.
fn rolled_back(out: &Output, refusal: &Refusal) -> Value {
    let v = json_exit(out, 1);
    assert_eq!(v["ok"], false);
    assert_eq!(v["exit_code"], 1);
    let e = v["error"].clone();
    assert_eq!(e["kind"], "step_failed");
    assert_eq!(e["rollback"], "clean");
    assert_eq!(e["ontap_code"], refusal.code);
    assert_eq!(e["http_status"], refusal.status);
    e
}

/// The same failure in human output: exit 1, and stderr says nothing is left behind.
fn assert_rolled_back_text(out: &Output) {
    assert_eq!(out.status.code(), Some(1), "{}", stderr(out));
    assert!(
        stderr(out).contains("rolled back cleanly: nothing left behind"),
        "{}",
        stderr(out)
    );
}

/// The `error` of a `--json` attach of `name` that `refusal` made fail and whose unwind then
/// failed: exit 2, rollback incomplete; `status` says the run needs attention.
async fn needs_attention(w: &World, out: &Output, name: &str, refusal: &Refusal) -> Value {
    let v = json_exit(out, 2);
    assert_eq!(v["ok"], false);
    assert_eq!(v["exit_code"], 2);
    let e = v["error"].clone();
    assert_eq!(e["kind"], "needs_attention");
    assert_eq!(e["rollback"], "incomplete");
    assert_eq!(e["ontap_code"], refusal.code);
    let status = w.cli(&["status", "--name", name, "--json"]).await;
    assert_eq!(
        json_exit(&status, 0)["result"]["run"]["status"],
        "needs attention"
    );
    e
}

fn client_of(w: &World) -> ontap_client::Client {
    ontap_client::Client::builder(w.sim.url())
        .basic_auth("admin", w.sim.password())
        .add_ca_pem(w.sim.ca_pem().unwrap().as_bytes().to_vec())
        .build()
        .unwrap()
}

async fn volume(w: &World, name: &str) -> Option<ontap_client::models::Volume> {
    client_of(w)
        .volumes()
        .find(
            &ontap_client::Query::new()
                .filter("svm.name", "svm1")
                .filter("name", name)
                .fields(["uuid", "name", "size"]),
        )
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_prints_steps_and_changes_nothing() {
    let w = World::new().await;
    let out = w.nfs("plan", "plan-ds", &["--json"]).await;
    let v = json_exit(&out, 0);
    assert_eq!(v["command"], "plan");
    assert_eq!(v["ok"], true);
    assert_eq!(v["exit_code"], 0);
    let steps: Vec<&str> = v["result"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(steps.iter().any(|s| s.contains("plan_ds")), "{steps:?}");
    assert!(!v["result"]["actions"].as_array().unwrap().is_empty());
    assert!(volume(&w, "plan_ds").await.is_none());

    // Human output: the plan's text.
    let out = w.nfs("plan", "plan-ds", &[]).await;
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("plan for "), "{text}");
    assert!(!w.path("journal/plan-ds.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_status_snapshot_clone_detach_with_simulated_host_side() {
    let w = World::new().await;
    let out = w.nfs("attach", "vmstore", &["--json"]).await;
    let v = json_exit(&out, 0);
    assert_eq!(v["result"]["outcome"], "applied");
    assert_eq!(v["result"]["status"], "completed");
    let steps = v["result"]["steps"].as_array().unwrap();
    assert!(steps.iter().all(|s| s["state"] == "done"), "{steps:?}");
    assert_eq!(
        v["result"]["changed"].as_u64().unwrap() as usize,
        steps.len()
    );
    // Progress: one line per step on stderr.
    let err = stderr(&out);
    assert_eq!(err.matches("applying").count(), steps.len(), "{err}");

    let vol = volume(&w, "vmstore").await.expect("volume made");
    assert_eq!(vol.size, Some(10 << 30));
    let mountpoint = w.path("hosts/mnt/vmstore");
    let table = w.host_file("proc/self/mountinfo");
    assert!(
        table.contains(&format!(" {} ", mountpoint.display())),
        "{table}"
    );
    assert!(table.contains(" - nfs4 "), "{table}");
    assert!(w
        .host_file("etc/fstab")
        .contains(&mountpoint.display().to_string()));

    // Again: ONTAP, mount and fstab are already there.
    let out = w.nfs("attach", "vmstore", &["--json"]).await;
    let v = json_exit(&out, 0);
    let changed: Vec<&str> = v["result"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["changed"] == true)
        .map(|s| s["label"].as_str().unwrap())
        .collect();
    // Only the pool is made again: libvirt's test:///default forgets it with the process.
    assert_eq!(changed, ["DefinePool kvm1:vmstore"], "{}", v["result"]);

    let out = w.cli(&["status", "--name", "vmstore", "--json"]).await;
    let v = json_exit(&out, 0);
    assert_eq!(v["result"]["run"]["status"], "completed");
    assert_eq!(v["result"]["volume"]["name"], "vmstore");
    assert_eq!(v["result"]["volume"]["size"], 10u64 << 30);

    let out = w
        .cli(&[
            "snapshot",
            "--volume",
            "vmstore",
            "before-upgrade",
            "--json",
        ])
        .await;
    assert_eq!(json_exit(&out, 0)["result"]["name"], "before-upgrade");
    let out = w.cli(&["snapshot", "--volume", "vmstore"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "before-upgrade"
    );

    let out = w
        .cli(&[
            "clone",
            "--volume",
            "vmstore",
            "templates/base.qcow2",
            "vms/web1.qcow2",
            "--json",
        ])
        .await;
    let v = json_exit(&out, 0);
    assert_eq!(v["result"]["volume"], "svm1:vmstore");
    assert_eq!(v["result"]["disk"], "vms/web1.qcow2");

    let out = w
        .nfs("detach", "vmstore", &["--delete-ontap-objects"])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("detached nfs datastore vmstore: applied")
    );
    assert!(volume(&w, "vmstore").await.is_none());
    assert_eq!(
        w.host_file("proc/self/mountinfo"),
        kvmstor_cli::simhost::ROOT_MOUNT
    );
    assert_eq!(w.host_file("etc/fstab"), kvmstor_cli::simhost::FSTAB);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ontap_failure_rolls_back_and_exits_1() {
    let w = World::new().await;
    AGGREGATE_OFFLINE.inject(&w);
    let out = w.nfs("attach", "failing", &["--json"]).await;
    let e = rolled_back(&out, &AGGREGATE_OFFLINE);
    assert!(e["step"].as_str().unwrap().contains("failing"), "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("Aggregate is offline"),
        "{e}"
    );
    assert!(!w.volume_exists("failing").await);
    assert!(
        !w.sim.state().to_string().contains("kvmstor_failing"),
        "export policy left"
    );

    AGGREGATE_OFFLINE.inject(&w);
    assert_rolled_back_text(&w.nfs("attach", "failing", &[]).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_undo_needs_attention_and_exits_2() {
    let w = World::new().await;
    AGGREGATE_OFFLINE.inject(&w);
    POLICY_IN_USE.persist(&w);
    let out = w.nfs("attach", "stuck", &["--json"]).await;
    let e = needs_attention(&w, &out, "stuck", &AGGREGATE_OFFLINE).await;
    let remaining = e["remaining"].as_array().unwrap();
    assert!(!remaining.is_empty());
    assert!(
        e["failed_undo"]["step"].as_str().unwrap().contains("stuck"),
        "{e}"
    );

    w.sim.faults().clear();
    let out = w.nfs("attach", "stuck2", &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_exit_64_and_there_is_no_password_flag() {
    let w = World::new().await;
    let out = tokio::task::spawn_blocking(|| {
        std::process::Command::new(BIN)
            .args(["status", "--name", "x"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(
        stderr(&out).contains("no ONTAP endpoint"),
        "{}",
        stderr(&out)
    );

    let out = w
        .cli(&["--password", "hunter2", "status", "--name", "x"])
        .await;
    assert_eq!(out.status.code(), Some(64));
    assert!(stderr(&out).contains("--password"), "{}", stderr(&out));

    let out = w.nfs("attach", "x", &["--persist", "carrier-pigeon"]).await;
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));

    // An endpoint that cannot be built is a configuration error too.
    let url = w.sim.url().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(BIN)
            .args(["--url", &url, "--password-file", "/nonexistent/pw"])
            .args(["status", "--name", "x"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("ONTAP endpoint: cannot read password file /nonexistent/pw"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_env_password() {
    let w = World::new().await;
    std::fs::write(w.path("pw"), "nope\n").unwrap();
    let out = w.cli(&["status", "--name", "x", "--json"]).await;
    let v = json_exit(&out, 1);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("401"),
        "{v}"
    );
    assert!(
        !stderr(&out).contains("nope") && !String::from_utf8_lossy(&out.stdout).contains("nope")
    );

    let url = w.sim.url().to_owned();
    let ca = w.path("ca.pem");
    let pw = w.sim.password().expose_secret().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(BIN)
            .args([
                "--url",
                &url,
                "--ca-file",
                ca.to_str().unwrap(),
                "status",
                "--name",
                "x",
                "--json",
            ])
            .arg("--journal-dir")
            .arg(Path::new("/nonexistent-kvmstor"))
            .env("KVMSTOR_ONTAP_PASSWORD", pw)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(json_exit(&out, 0)["result"]["volume"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_file_supplies_the_endpoint() {
    let w = World::new().await;
    let config = w.path("kvmstor.json");
    std::fs::write(
        &config,
        serde_json::json!({
            "url": w.sim.url(),
            "password_env": "KVMSTOR_TEST_PW",
            "ca_file": w.path("ca.pem"),
            "journal_dir": w.path("journal"),
        })
        .to_string(),
    )
    .unwrap();
    let pw = w.sim.password().expose_secret().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(BIN)
            .arg("--config")
            .arg(&config)
            .args(["snapshot", "--volume", "nope", "--json"])
            .env("KVMSTOR_TEST_PW", pw)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    // Reached ONTAP (authenticated, trusted) and got a typed "no such volume" failure.
    let v = json_exit(&out, 1);
    assert_eq!(v["command"], "snapshot");
    assert_eq!(v["error"]["kind"], "operation_failed");
    assert_eq!(v["error"]["rollback"], "none");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("nope"),
        "{v}"
    );
}

fn labels(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s.as_str()
                .unwrap_or_else(|| s["label"].as_str().unwrap())
                .to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smb_attach_snapshot_clone_detach_with_simulated_host_side() {
    let w = World::new().await;
    let out = w.smb("plan", "smbstore", &["--json"]).await;
    let v = json_exit(&out, 0);
    assert_eq!(
        v["result"]["workflow"],
        "smb-attach svm1/smbstore as pool smbstore"
    );
    assert_eq!(
        labels(&v["result"]["steps"]),
        [
            "CreateVolume svm1/smbstore",
            "CreateShare svm1/smbstore",
            "WriteCredentials kvm1:kvmstor-smbstore",
            &format!("MountSmb kvm1:{}", w.path("hosts/mnt/smbstore").display()),
            "PersistFstab kvm1:kvmstor-smbstore",
            "DefinePool kvm1:smbstore",
        ]
    );

    let out = w.smb("attach", "smbstore", &["--json"]).await;
    let v = json_exit(&out, 0);
    assert_eq!(v["result"]["outcome"], "applied");
    assert_eq!(v["result"]["changed"], 6);
    let err = stderr(&out);
    assert_eq!(err.matches("applying").count(), 6, "{err}");
    // The password goes only into the 0600 credentials file.
    for text in [&err, &String::from_utf8_lossy(&out.stdout).into_owned()] {
        assert!(!text.contains(SMB_PASSWORD), "password printed: {text}");
    }
    let cred = w.path("hosts/kvm1/etc/kvmstor/cifs/kvmstor-smbstore.cred");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&cred).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(
        std::fs::read_to_string(&cred).unwrap(),
        format!("username=svc_kvm\npassword={SMB_PASSWORD}\ndomain=CORP\n")
    );
    let table = w.host_file("proc/self/mountinfo");
    assert!(table.contains(" - cifs "), "{table}");
    assert!(!table.contains(SMB_PASSWORD));
    assert!(
        !w.path("journal/smbstore.json").exists()
            || !std::fs::read_to_string(w.path("journal/smbstore.json"))
                .unwrap()
                .contains(SMB_PASSWORD)
    );

    let out = w.cli(&["status", "--name", "smbstore", "--json"]).await;
    let v = json_exit(&out, 0);
    assert_eq!(
        v["result"]["run"]["workflow"],
        "smb-attach svm1/smbstore as pool smbstore"
    );
    assert_eq!(v["result"]["run"]["status"], "completed");
    assert_eq!(v["result"]["volume"]["size"], 10u64 << 30);

    let out = w
        .cli(&["snapshot", "--volume", "smbstore", "daily", "--json"])
        .await;
    assert_eq!(json_exit(&out, 0)["result"]["name"], "daily");
    let out = w
        .cli(&[
            "clone",
            "--volume",
            "smbstore",
            "tpl/base.qcow2",
            "vms/a.qcow2",
        ])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "cloned tpl/base.qcow2 to vms/a.qcow2 in svm1:smbstore"
    );

    // Detach needs no password.
    let root = w.path("hosts");
    let out = w
        .cli(&[
            "detach",
            "--kind",
            "smb",
            "--name",
            "smbstore",
            "--host",
            "kvm1=192.0.2.101",
            "--smb-user",
            "svc_kvm",
            "--smb-domain",
            "CORP",
            "--delete-ontap-objects",
            "--sim-host-root",
            root.to_str().unwrap(),
        ])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "detached smb datastore smbstore: applied (5 step(s) changed)"
    );
    assert!(!cred.exists());
    assert!(volume(&w, "smbstore").await.is_none());
    assert_eq!(
        w.host_file("proc/self/mountinfo"),
        kvmstor_cli::simhost::ROOT_MOUNT
    );
    assert_eq!(w.host_file("etc/fstab"), kvmstor_cli::simhost::FSTAB);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smb_share_failure_rolls_back_and_exits_1_with_simulated_host() {
    let w = World::new().await;
    NO_SHARE_PATH.inject(&w);
    let out = w.smb("attach", "smbfail", &["--json"]).await;
    let e = rolled_back(&out, &NO_SHARE_PATH);
    assert_eq!(e["step"], "CreateShare svm1/smbfail");
    assert_eq!(e["undone"], 1);
    assert!(volume(&w, "smbfail").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smb_options_are_checked() {
    let w = World::new().await;
    let root = w.path("hosts");
    // No account.
    let out = w
        .cli(&[
            "plan",
            "--kind",
            "smb",
            "--name",
            "x",
            "--host",
            "kvm1=192.0.2.101",
            "--sim-host-root",
            root.to_str().unwrap(),
        ])
        .await;
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("needs --smb-user"),
        "{}",
        stderr(&out)
    );
    // Block options on an SMB datastore.
    let out = w.smb("plan", "x", &["--protocol", "nvme"]).await;
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("block or NFS options given for a smb datastore"),
        "{}",
        stderr(&out)
    );
    // No password flag exists.
    let out = w.smb("plan", "x", &["--smb-password", "hunter2"]).await;
    assert_eq!(out.status.code(), Some(64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smb_share_name_and_acl_flags_with_simulated_host() {
    let w = World::new().await;
    let flags = [
        "--share-name",
        "VMShare",
        "--share-acl",
        r"CORP\vm-admins=change",
        "--share-acl",
        "backup:unix_user=read",
        "--json",
    ];
    let out = w.smb("plan", "aclstore", &flags).await;
    let v = json_exit(&out, 0);
    assert_eq!(
        labels(&v["result"]["steps"])[1..4],
        [
            "CreateShare svm1/VMShare",
            r"AddShareAcl svm1/VMShare:CORP\vm-admins",
            "AddShareAcl svm1/VMShare:backup",
        ]
    );
    let out = w.smb("attach", "aclstore", &flags).await;
    assert_eq!(json_exit(&out, 0)["result"]["outcome"], "applied");
    let share = client_of(&w)
        .cifs_shares()
        .find(
            &Query::new()
                .filter("svm.name", "svm1")
                .filter("name", "VMShare")
                .fields(["path", "acls"]),
        )
        .await
        .unwrap()
        .expect("share VMShare");
    assert_eq!(share.path.as_deref(), Some("/aclstore"));
    let mut acls: Vec<(String, String, String)> = share
        .acls
        .unwrap_or_default()
        .into_iter()
        .map(|a| {
            (
                a.user_or_group.unwrap_or_default(),
                a.kind.map(|k| k.as_str().to_owned()).unwrap_or_default(),
                a.permission
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_default(),
            )
        })
        .collect();
    acls.sort();
    let want = |u: &str, k: &str, p: &str| (u.to_owned(), k.to_owned(), p.to_owned());
    assert_eq!(
        acls,
        [
            want(r"CORP\svc_kvm", "windows", "full_control"),
            want(r"CORP\vm-admins", "windows", "change"),
            want("backup", "unix_user", "read"),
        ]
    );
    let out = w
        .smb(
            "detach",
            "aclstore",
            &[&flags[..6], &["--delete-ontap-objects"]].concat(),
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(volume(&w, "aclstore").await.is_none());

    // Refused before anything runs: a bad entry, a bad permission, an SMB flag on NFS.
    for (extra, said) in [
        (&["--share-acl", "Everyone"][..], "invalid share ACL entry \"Everyone\""),
        (
            &["--share-acl", "Everyone=everything"],
            "invalid share ACL permission \"everything\" (expected one of no_access, read, change, full_control)",
        ),
        (
            &["--share-acl", "backup:unix=read"],
            "invalid share ACL type \"unix\" (expected one of windows, unix_user, unix_group)",
        ),
    ] {
        let out = w.smb("attach", "refused", extra).await;
        assert_eq!(out.status.code(), Some(64), "{extra:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(said), "{extra:?}: {}", stderr(&out));
    }
    let out = w.nfs("plan", "refused", &["--share-name", "x"]).await;
    assert_eq!(out.status.code(), Some(64));
    assert!(
        stderr(&out).contains("SMB or block options given for a nfs datastore"),
        "{}",
        stderr(&out)
    );
    assert!(volume(&w, "refused").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_names_the_volume_the_last_run_made_with_simulated_host() {
    let w = World::new().await;
    let out = w
        .nfs("attach", "namedvol", &["--volume", "vm_images"])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The pool's name would say namedvol; the journal says which volume the run made.
    let out = w.cli(&["status", "--name", "namedvol", "--json"]).await;
    let v = json_exit(&out, 0);
    assert_eq!(v["result"]["volume"]["name"], "vm_images");
    assert_eq!(v["result"]["volume"]["size"], 10u64 << 30);
    // --volume still wins.
    let out = w
        .cli(&[
            "status", "--name", "namedvol", "--volume", "other", "--json",
        ])
        .await;
    let v = json_exit(&out, 0);
    assert_eq!(v["result"]["volume"], Value::Null);
    // No journal: the pool's name with - and . as _.
    let out = w.cli(&["status", "--name", "no-such.pool"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "no journal\nvolume svm1/no_such_pool: absent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_iscsi_ocfs2_two_simulated_hosts_attach_snapshot_clone_detach() {
    let w = World::new().await;
    let out = w.block("attach", "blk", &["--json"]).await;
    let v = json_exit(&out, 0);
    assert_eq!(v["result"]["outcome"], "applied", "{v}");
    assert_eq!(
        v["result"]["workflow"],
        "iscsi-ocfs2-attach svm1/blk as pool blk"
    );
    let steps = labels(&v["result"]["steps"]);
    assert_eq!(
        steps[..4],
        [
            "CreateVolume svm1/blk",
            "CreateLun svm1:/vol/blk/lun0",
            "CreateIgroup svm1/kvmstor_blk",
            "MapLun svm1:/vol/blk/lun0 to kvmstor_blk"
        ],
        "{steps:?}"
    );
    assert_eq!(
        steps
            .iter()
            .filter(|s| s.starts_with("FormatOcfs2"))
            .count(),
        1
    );
    let mp = w.path("hosts/mnt/blk");
    for host in ["kvm1", "kvm2"] {
        let table = w.file_of(host, "proc/self/mountinfo");
        assert!(
            table.contains(&format!(" {} ", mp.display())),
            "{host}: {table}"
        );
        assert!(
            table.contains(" - ocfs2 /dev/mapper/3600a0980"),
            "{host}: {table}"
        );
        assert!(w.file_of(host, "etc/fstab").contains("_netdev"), "{host}");
    }
    // The igroup holds both hosts' IQNs, discovered from their initiatorname files.
    let state = w.sim.state().to_string();
    assert!(
        state.contains("iqn.1994-05.com.redhat:kvm1")
            && state.contains("iqn.1994-05.com.redhat:kvm2")
    );

    let out = w.cli(&["status", "--name", "blk"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.starts_with("last run: iscsi-ocfs2-attach svm1/blk as pool blk (completed)\n"),
        "{text}"
    );
    assert!(
        text.trim_end().ends_with(&format!(
            "volume svm1/blk: {} bytes",
            (10u64 << 30) + (1u64 << 30)
        )),
        "{text}"
    );

    let out = w
        .cli(&["snapshot", "--volume", "blk", "pre-patch", "--json"])
        .await;
    assert_eq!(json_exit(&out, 0)["result"]["name"], "pre-patch");
    let out = w
        .cli(&[
            "clone",
            "--volume",
            "blk",
            "--as",
            "blk_clone",
            "--snapshot",
            "pre-patch",
            "--json",
        ])
        .await;
    let v = json_exit(&out, 0);
    assert_eq!(v["result"]["clone"], "svm1:blk_clone");
    assert_eq!(v["result"]["snapshot"], "pre-patch");
    assert!(volume(&w, "blk_clone").await.is_some());

    // ONTAP refuses to delete a volume with a FlexClone: past the LUN's deletion (no way
    // back), the detach needs attention.
    let out = w
        .block("detach", "blk", &["--delete-ontap-objects", "--json"])
        .await;
    let e = &json_exit(&out, 2)["error"];
    assert_eq!(e["kind"], "needs_attention");
    assert_eq!(e["step"], "DeleteVolume svm1/blk");
    assert_eq!(e["ontap_code"], "8");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("FlexClone volumes (blk_clone)"),
        "{e}"
    );
    // Cause fixed (the clone split off and deleted by hand), recover finishes the detach.
    let c = client_of(&w);
    let lun = c
        .luns()
        .find(
            &ontap_client::Query::new()
                .filter("name", "/vol/blk_clone/lun0")
                .fields(["uuid"]),
        )
        .await
        .unwrap()
        .unwrap();
    c.luns().delete(lun.uuid.as_deref().unwrap()).await.unwrap();
    let clone = volume(&w, "blk_clone").await.unwrap();
    c.volumes()
        .delete(clone.uuid.as_deref().unwrap())
        .await
        .unwrap();
    let out = w
        .block(
            "recover",
            "blk",
            &["--mode", "resume", "--delete-ontap-objects"],
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("recovered block datastore blk: applied"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(volume(&w, "blk").await.is_none());
    for host in ["kvm1", "kvm2"] {
        assert_eq!(
            w.file_of(host, "proc/self/mountinfo"),
            kvmstor_cli::simhost::ROOT_MOUNT,
            "{host}"
        );
        assert_eq!(
            w.file_of(host, "etc/fstab"),
            kvmstor_cli::simhost::FSTAB,
            "{host}"
        );
        let sessions = w.path("hosts").join(host).join("sys/class/iscsi_session");
        assert_eq!(
            std::fs::read_dir(&sessions).map(|d| d.count()).unwrap_or(0),
            0,
            "{host}: sessions left"
        );
        assert!(
            !w.path("hosts")
                .join(host)
                .join("etc/ocfs2/cluster.conf")
                .exists(),
            "{host}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_nvme_gfs2_with_simulated_hosts() {
    let w = World::new().await;
    let extra = ["--protocol", "nvme", "--fs", "gfs2", "--json"];
    let out = w.block("attach", "nvds", &extra).await;
    let v = json_exit(&out, 0);
    assert_eq!(
        v["result"]["workflow"],
        "nvme-tcp-gfs2-attach svm1/nvds as pool nvds"
    );
    let steps = labels(&v["result"]["steps"]);
    assert!(
        steps.contains(&"CreateNamespace svm1:/vol/nvds/ns0".to_owned()),
        "{steps:?}"
    );
    assert_eq!(
        steps.iter().filter(|s| s.starts_with("FormatGfs2")).count(),
        1,
        "{steps:?}"
    );
    for host in ["kvm1", "kvm2"] {
        let table = w.file_of(host, "proc/self/mountinfo");
        assert!(
            table.contains(" - gfs2 /dev/disk/by-id/nvme-uuid."),
            "{host}: {table}"
        );
    }
    let out = w
        .block(
            "detach",
            "nvds",
            &[
                "--protocol",
                "nvme",
                "--fs",
                "gfs2",
                "--delete-ontap-objects",
            ],
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(volume(&w, "nvds").await.is_none());
    for host in ["kvm1", "kvm2"] {
        assert_eq!(
            w.file_of(host, "proc/self/mountinfo"),
            kvmstor_cli::simhost::ROOT_MOUNT,
            "{host}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_fc_igroup_holds_both_simulated_hosts_wwpns() {
    let w = World::new().await;
    let out = w
        .block("attach", "fcds", &["--protocol", "fc", "--json"])
        .await;
    let v = json_exit(&out, 0);
    assert_eq!(
        v["result"]["workflow"],
        "fcp-ocfs2-attach svm1/fcds as pool fcds"
    );
    let state = w.sim.state().to_string();
    for host in ["kvm1", "kvm2"] {
        let wwpn = kvmstor_cli::simhost::SimIdentity::of(host).wwpn;
        assert!(
            state.contains(&wwpn),
            "{host}'s WWPN {wwpn} not in an igroup"
        );
        let table = w.file_of(host, "proc/self/mountinfo");
        assert!(
            table.contains(" - ocfs2 /dev/mapper/3600a0980"),
            "{host}: {table}"
        );
    }
    let out = w
        .block(
            "detach",
            "fcds",
            &["--protocol", "fc", "--delete-ontap-objects"],
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(volume(&w, "fcds").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_lun_failure_rolls_back_and_exits_1_with_simulated_host() {
    let w = World::new().await;
    LUN_TOO_LARGE.inject(&w);
    let out = w.block("attach", "blkfail", &["--json"]).await;
    let e = rolled_back(&out, &LUN_TOO_LARGE);
    assert_eq!(e["step"], "CreateLun svm1:/vol/blkfail/lun0");
    assert_eq!(e["index"], 1);
    assert_eq!(e["undone"], 1);
    assert!(volume(&w, "blkfail").await.is_none());
    // Human text says so too.
    LUN_TOO_LARGE.inject(&w);
    assert_rolled_back_text(&w.block("attach", "blkfail", &[]).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_failed_undo_needs_attention_and_exits_2_then_recover_with_simulated_host() {
    let w = World::new().await;
    LUN_TOO_LARGE.inject(&w);
    VOLUME_BUSY.persist(&w);
    let out = w.block("attach", "blkstuck", &["--json"]).await;
    let e = needs_attention(&w, &out, "blkstuck", &LUN_TOO_LARGE).await;
    assert_eq!(e["step"], "CreateLun svm1:/vol/blkstuck/lun0");
    assert_eq!(
        e["remaining"],
        serde_json::json!(["CreateVolume svm1/blkstuck"])
    );
    assert_eq!(e["failed_undo"]["step"], "CreateVolume svm1/blkstuck");
    assert!(
        e["failed_undo"]["error"]
            .as_str()
            .unwrap()
            .contains("volume busy"),
        "{e}"
    );
    assert!(volume(&w, "blkstuck").await.is_some());

    // Not before the run is recovered.
    w.sim.faults().clear();
    let out = w.block("attach", "blkstuck", &["--json"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        json(&out)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("run recover first"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Cause fixed: recover unwinds what is left, then the attach goes through.
    let out = w.block("recover", "blkstuck", &["--json"]).await;
    let v = json_exit(&out, 0);
    assert_eq!(v["command"], "recover");
    assert_eq!(v["result"]["outcome"], "unwound");
    assert_eq!(v["result"]["status"], "unwound");
    assert!(volume(&w, "blkstuck").await.is_none());
    let out = w.block("attach", "blkstuck", &["--json"]).await;
    assert_eq!(json_exit(&out, 0)["result"]["outcome"], "applied");
}

/// A client CA (PEM) and a certificate for `cn` it signed: (CA, certificate, key).
fn client_pki(cn: &str) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(DnType::CommonName, "kvmstor-cli test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    let cert = p.signed_by(&key, &issuer).unwrap();
    (ca_pem, cert.pem(), key.serialize_pem())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_auth_from_the_config_file_with_simulated_host() {
    let (ca, cert, key) = client_pki("admin");
    let sim = SimServer::builder()
        .job_duration(Duration::ZERO, Duration::from_millis(5))
        .client_ca_pem(ca)
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = |f: &str| dir.path().join(f);
    std::fs::write(p("ca.pem"), sim.ca_pem().unwrap()).unwrap();
    std::fs::write(p("client.pem"), cert).unwrap();
    std::fs::write(p("client.key"), key).unwrap();
    std::fs::write(
        p("kvmstor.json"),
        serde_json::json!({
            "url": sim.url(),
            "ca_file": p("ca.pem"),
            "cert_file": p("client.pem"),
            "key_file": p("client.key"),
            "journal_dir": p("journal"),
        })
        .to_string(),
    )
    .unwrap();
    let run = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(BIN)
                .args(args)
                .env_remove("KVMSTOR_ONTAP_PASSWORD")
                .output()
                .unwrap()
        })
    };
    let config = p("kvmstor.json").display().to_string();
    // No password anywhere: the certificate authenticates; the volume is made for real.
    let out = run(vec![
        "--config".into(),
        config.clone(),
        "--json".into(),
        "attach".into(),
        "--name".into(),
        "certds".into(),
        "--size".into(),
        "1G".into(),
        "--host".into(),
        "kvm1=192.0.2.101".into(),
        "--sim-host-root".into(),
        p("hosts").display().to_string(),
    ])
    .await
    .unwrap();
    assert_eq!(json_exit(&out, 0)["result"]["outcome"], "applied");
    assert!(sim.state().to_string().contains("\"name\":\"certds\""));

    // Without the certificate (and no password source but an unset variable): 401.
    std::fs::write(
        p("nocert.json"),
        serde_json::json!({"url": sim.url(), "ca_file": p("ca.pem"),
                           "password_env": "KVMSTOR_TEST_EMPTY_PW"})
        .to_string(),
    )
    .unwrap();
    let nocert = p("nocert.json").display().to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(BIN)
            .args([
                "--config", &nocert, "--json", "snapshot", "--volume", "certds",
            ])
            .env("KVMSTOR_TEST_EMPTY_PW", "wrong")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let v = json_exit(&out, 1);
    assert_eq!(v["error"]["http_status"], 401, "{v}");
}
