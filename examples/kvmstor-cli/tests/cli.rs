//! Runs the `kvmstor-cli` binary against an in-process ONTAP simulator over HTTPS (its CA
//! written to a file, the password in a 0600 file), with the host side simulated
//! (`--sim-host-root`: scratch roots, a fake kernel for mount/umount, libvirt
//! `test:///default`), and checks output, JSON and exit codes.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use ontap_sim::{ApiError, Fault, SimServer};
use secrecy::ExposeSecret;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_kvmstor-cli");

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

    async fn nfs(&self, cmd: &str, pool: &str, extra: &[&str]) -> Output {
        let root = self.path("hosts");
        let root = root.to_str().unwrap();
        let mut args = vec![
            cmd,
            "--name",
            pool,
            "--size",
            "10G",
            "--host",
            "kvm1=192.0.2.101",
            "--sim-host-root",
            root,
        ];
        args.extend_from_slice(extra);
        self.cli(&args).await
    }

    fn host_file(&self, file: &str) -> String {
        std::fs::read_to_string(self.path("hosts/kvm1").join(file)).unwrap()
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
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json(&out);
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
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json(&out);
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
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json(&out);
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
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json(&out);
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
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json(&out)["result"]["name"], "before-upgrade");
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
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["result"]["volume"], "svm1:vmstore");
    assert_eq!(v["result"]["disk"], "vms/web1.qcow2");

    let out = w
        .nfs("detach", "vmstore", &["--delete-ontap-objects"])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("detached vmstore: applied"));
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
    w.sim.faults().add(Fault::error(
        Some("POST"),
        "/api/storage/volumes",
        ApiError::new(400, "917927", "Aggregate is offline"),
    ));
    let out = w.nfs("attach", "failing", &["--json"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["ok"], false);
    assert_eq!(v["exit_code"], 1);
    let e = &v["error"];
    assert_eq!(e["kind"], "step_failed");
    assert_eq!(e["rollback"], "clean");
    assert_eq!(e["ontap_code"], "917927");
    assert_eq!(e["http_status"], 400);
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

    w.sim.faults().add(Fault::error(
        Some("POST"),
        "/api/storage/volumes",
        ApiError::new(400, "917927", "Aggregate is offline"),
    ));
    let out = w.nfs("attach", "failing", &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("rolled back cleanly"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_undo_needs_attention_and_exits_2() {
    let w = World::new().await;
    w.sim.faults().add(Fault::error(
        Some("POST"),
        "/api/storage/volumes",
        ApiError::new(400, "917927", "Aggregate is offline"),
    ));
    w.sim.faults().add(
        Fault::error(
            Some("DELETE"),
            "/api/protocols/nfs/export-policies/*",
            ApiError::new(400, "1703954", "policy in use"),
        )
        .times(0),
    );
    let out = w.nfs("attach", "stuck", &["--json"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let v = json(&out);
    let e = &v["error"];
    assert_eq!(e["kind"], "needs_attention");
    assert_eq!(e["rollback"], "incomplete");
    assert_eq!(e["ontap_code"], "917927");
    let remaining = e["remaining"].as_array().unwrap();
    assert!(!remaining.is_empty());
    assert!(
        e["failed_undo"]["step"].as_str().unwrap().contains("stuck"),
        "{e}"
    );

    let out = w.cli(&["status", "--name", "stuck", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json(&out)["result"]["run"]["status"], "needs attention");

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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_env_password() {
    let w = World::new().await;
    std::fs::write(w.path("pw"), "nope\n").unwrap();
    let out = w.cli(&["status", "--name", "x", "--json"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v = json(&out);
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
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json(&out)["result"]["volume"], Value::Null);
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
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["command"], "snapshot");
    assert_eq!(v["error"]["kind"], "operation_failed");
    assert_eq!(v["error"]["rollback"], "none");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("nope"),
        "{v}"
    );
}
