//! Host tier: the kernel backend on a real btrfs file system in a loop-mounted image
//! (volumes, snapshots, FlexClones, file clones, resize, LUN files, junction bind mounts).
//! Needs root, loop devices, btrfs and btrfs-progs; run by `cargo xtask test`, or
//! `cargo test -p ontap-sim --test kernel_btrfs -- --ignored`.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ontap_sim::kernel::{KernelBackend, KernelConfig};
use ontap_sim::{Seed, SimServer};
use reqwest::Method;
use serde_json::{json, Value};

/// Unmounts everything below the state directory (deepest first) and removes it, also when
/// the test panics.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let mut mounts: Vec<PathBuf> = std::fs::read_to_string("/proc/self/mountinfo")
            .map(|t| ontap_sim::kernel::mount_points(&t))
            .unwrap_or_default()
            .into_iter()
            .filter(|m| m.starts_with(&self.0))
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
        for m in mounts {
            let _ = std::process::Command::new("umount").arg(&m).status();
        }
        // Loop devices still backed by an image below the directory (mount -o loop sets
        // autoclear, so normally there are none).
        if let Ok(out) = std::process::Command::new("losetup")
            .args(["-n", "-O", "NAME,BACK-FILE", "-l"])
            .output()
        {
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                let mut f = line.split_whitespace();
                if let (Some(dev), Some(file)) = (f.next(), f.next()) {
                    if Path::new(file).starts_with(&self.0) {
                        let _ = std::process::Command::new("losetup")
                            .args(["-d", dev])
                            .status();
                    }
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `POST /api/storage/file/clone` in volume `vol1`; the finished job.
async fn file_clone(env: &common::Env, source: &str, dest: &str) -> anyhow::Result<Value> {
    let body = json!({"volume": {"name": "vol1"}, "source_path": source,
                      "destination_path": dest});
    let (_, job) = env
        .run_job(Method::POST, "/api/storage/file/clone", Some(body))
        .await?;
    Ok(job)
}

fn is_mount_point(p: &Path) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|t| ontap_sim::kernel::mount_points(&t).iter().any(|m| m == p))
        .unwrap_or(false)
}

fn is_subvolume(p: &Path) -> bool {
    std::process::Command::new("btrfs")
        .args(["subvolume", "show"])
        .arg(p)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A scratch directory, unmounted and removed by the guard.
fn scratch() -> anyhow::Result<(PathBuf, Cleanup)> {
    let root = tempfile::Builder::new()
        .prefix("ontap-sim-kernel-")
        .tempdir()?
        .keep();
    Ok((root.clone(), Cleanup(root)))
}

/// A simulator with the lab seed on a volumes-only kernel backend (512 MiB btrfs image) in
/// a scratch directory.
async fn volumes_only_sim(
) -> anyhow::Result<(Cleanup, KernelConfig, Arc<KernelBackend>, common::Env)> {
    let (root, cleanup) = scratch()?;
    let cfg = KernelConfig::new(&root).volumes_only().loop_size(512 << 20);
    let backend = Arc::new(KernelBackend::system(cfg.clone()));
    let env = common::start_with(
        SimServer::builder()
            .seed(Seed::lab())
            .backend(backend.clone())
            .job_duration(Duration::ZERO, Duration::from_millis(5)),
    )
    .await?;
    Ok((cleanup, cfg, backend, env))
}

#[tokio::test]
#[ignore = "host tier: needs root, loop and btrfs (run by cargo xtask test)"]
async fn host_volumes_snapshots_clones_on_real_btrfs() -> anyhow::Result<()> {
    let (_cleanup, cfg, backend, env) = volumes_only_sim().await?;
    assert!(is_mount_point(&cfg.mount_point()));

    // Volume → subvolume, junction → bind mount.
    let vol = env
        .create_volume(json!({"name": "vol1", "svm": {"name": "svm1"},
                              "aggregates": [{"name": "aggr1"}], "size": "1G",
                              "nas": {"path": "/vol1"}}))
        .await?;
    let vdir = cfg.volume_path(&vol);
    assert!(is_subvolume(&vdir), "{} is not a subvolume", vdir.display());
    let junction = cfg.export_dir().join("vol1");
    assert!(is_mount_point(&junction));
    std::fs::write(vdir.join("data.txt"), "hello from vol1\n")?;
    assert_eq!(
        std::fs::read_to_string(junction.join("data.txt"))?,
        "hello from vol1\n"
    );

    // Snapshot → read-only snapshot holding the file.
    let (_, job) = env
        .run_job(
            Method::POST,
            &format!("/api/storage/volumes/{vol}/snapshots"),
            Some(json!({"name": "s1"})),
        )
        .await?;
    assert_eq!(job["state"], "success", "{job}");
    let snaps = env
        .get(&format!("/api/storage/volumes/{vol}/snapshots?name=s1"))
        .await?;
    let snap = snaps.body["records"][0]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let sdir = cfg.snapshot_path(&vol, &snap);
    assert_eq!(
        std::fs::read_to_string(sdir.join("data.txt"))?,
        "hello from vol1\n"
    );
    let ro = std::fs::write(sdir.join("data.txt"), "changed");
    assert_eq!(ro.unwrap_err().raw_os_error(), Some(30), "EROFS expected");
    std::fs::write(vdir.join("data.txt"), "changed after s1\n")?;

    // FlexClone of s1 → writable and independent.
    let clone = env
        .create_volume(json!({"name": "clone1", "svm": {"name": "svm1"},
                              "clone": {"parent_volume": {"name": "vol1"},
                                        "parent_snapshot": {"name": "s1"}}}))
        .await?;
    let cdir = cfg.volume_path(&clone);
    assert!(is_subvolume(&cdir));
    assert_eq!(
        std::fs::read_to_string(cdir.join("data.txt"))?,
        "hello from vol1\n"
    );
    std::fs::write(cdir.join("data.txt"), "clone edit\n")?;
    assert_eq!(
        std::fs::read_to_string(vdir.join("data.txt"))?,
        "changed after s1\n"
    );
    assert_eq!(
        std::fs::read_to_string(sdir.join("data.txt"))?,
        "hello from vol1\n"
    );

    // File clone → reflink copy (cp --reflink=always fails where extents cannot be shared).
    let job = file_clone(&env, "data.txt", "dir/copy.txt").await?;
    assert_eq!(job["state"], "success", "{job}");
    assert_eq!(
        std::fs::read_to_string(vdir.join("dir/copy.txt"))?,
        "changed after s1\n"
    );
    let job = file_clone(&env, "missing.txt", "x.txt").await?;
    assert_eq!(job["state"], "failure", "{job}");
    assert_eq!(job["code"], 13001);

    // Single-file restore: the source is read from snapshot s1 (`.snapshot/s1/...`).
    let job = file_clone(&env, ".snapshot/s1/data.txt", "restored.txt").await?;
    assert_eq!(job["state"], "success", "{job}");
    assert_eq!(
        std::fs::read_to_string(vdir.join("restored.txt"))?,
        "hello from vol1\n"
    );

    // Resize is recorded.
    let (_, job) = env
        .run_job(
            Method::PATCH,
            &format!("/api/storage/volumes/{vol}"),
            Some(json!({"size": "2G"})),
        )
        .await?;
    assert_eq!(job["state"], "success", "{job}");
    let v = env
        .get(&format!("/api/storage/volumes/{vol}?fields=space.size"))
        .await?;
    assert_eq!(v.body["space"]["size"], 2u64 << 30);

    // A LUN is a sparse file of its size in the subvolume.
    let lun = env
        .post(
            "/api/storage/luns?return_records=true",
            json!({"svm": {"name": "svm1"}, "name": "/vol/vol1/lun1", "os_type": "linux",
                     "space": {"size": "64M"}}),
        )
        .await?;
    assert_eq!(lun.status, 201, "{}", lun.body);
    let lun_uuid = lun.body["records"][0]["uuid"].as_str().unwrap().to_string();
    let meta = std::fs::metadata(vdir.join("lun1"))?;
    assert_eq!(meta.len(), 64 << 20);
    assert!(
        std::os::unix::fs::MetadataExt::blocks(&meta) < 1024,
        "sparse"
    );
    assert_eq!(
        env.delete(&format!("/api/storage/luns/{lun_uuid}"))
            .await?
            .status,
        200
    );
    assert!(!vdir.join("lun1").exists());

    // Deletes undo: clone, snapshot, volume.
    let (_, job) = env
        .run_job(
            Method::DELETE,
            &format!("/api/storage/volumes/{clone}"),
            None,
        )
        .await?;
    assert_eq!(job["state"], "success", "{job}");
    assert!(!cdir.exists());
    let (_, job) = env
        .run_job(
            Method::DELETE,
            &format!("/api/storage/volumes/{vol}/snapshots/{snap}"),
            None,
        )
        .await?;
    assert_eq!(job["state"], "success", "{job}");
    assert!(!sdir.exists());
    let (_, job) = env
        .run_job(Method::DELETE, &format!("/api/storage/volumes/{vol}"), None)
        .await?;
    assert_eq!(job["state"], "success", "{job}");
    assert!(!vdir.exists());
    assert!(!is_mount_point(&junction));

    env.sim.shutdown().await;
    backend.teardown().await?;
    assert!(!is_mount_point(&cfg.mount_point()));
    Ok(())
}

#[tokio::test]
#[ignore = "host tier: needs root, loop and btrfs (run by cargo xtask test)"]
async fn host_restart_with_state_keeps_volumes_and_drops_strays() -> anyhow::Result<()> {
    let (root, _cleanup) = scratch()?;
    let cfg = KernelConfig::new(root.join("k"))
        .volumes_only()
        .loop_size(512 << 20);
    let state = root.join("state.json");
    let start = |b: Arc<KernelBackend>| {
        SimServer::builder()
            .seed(Seed::lab())
            .state_file(state.clone())
            .backend(b)
            .job_duration(Duration::ZERO, Duration::from_millis(5))
    };
    let b1 = Arc::new(KernelBackend::system(cfg.clone()));
    let env = common::start_with(start(b1.clone())).await?;
    let vol = env
        .create_volume(json!({"name": "keep", "svm": {"name": "svm1"},
                              "aggregates": [{"name": "aggr1"}], "size": "1G", "nas": {"path": "/keep"}}))
        .await?;
    std::fs::write(cfg.volume_path(&vol).join("f"), "x")?;
    env.sim.shutdown().await;
    b1.teardown().await?;
    assert!(!is_mount_point(&cfg.mount_point()));

    // A stray subvolume (from a run without --state) appears; a restart removes it.
    let b2 = Arc::new(KernelBackend::system(cfg.clone()));
    let env2 = common::start_with(start(b2.clone())).await?;
    assert_eq!(
        std::fs::read_to_string(cfg.volume_path(&vol).join("f"))?,
        "x"
    );
    assert!(is_mount_point(&cfg.export_dir().join("keep")));
    let stray = cfg.volume_path("00000000-0000-0000-0000-000000000000");
    assert!(std::process::Command::new("btrfs")
        .args(["subvolume", "create"])
        .arg(&stray)
        .output()?
        .status
        .success());
    env2.sim.shutdown().await;
    let b3 = Arc::new(KernelBackend::system(cfg.clone()));
    let env3 = common::start_with(start(b3.clone())).await?;
    assert!(!stray.exists());
    assert!(cfg.volume_path(&vol).exists());
    env3.sim.shutdown().await;
    b3.teardown().await?;
    b2.teardown().await?;
    Ok(())
}

#[tokio::test]
#[ignore = "host tier: needs root, loop and btrfs (run by cargo xtask test)"]
async fn host_binary_with_kernel_backend() -> anyhow::Result<()> {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let (root, _cleanup) = scratch()?;
    let kroot = root.join("k");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ontap-sim"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--http",
            "--job-ms",
            "5",
            "--lab-seed",
        ])
        .args([
            "--backend",
            "kernel",
            "--kernel-loop-size",
            "256M",
            "--kernel-teardown",
        ])
        .args([
            "--kernel-skip",
            "nfs",
            "--kernel-skip",
            "cifs",
            "--kernel-skip",
            "iscsi",
        ])
        .args(["--kernel-skip", "nvme", "--kernel-root"])
        .arg(&kroot)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line)?;
    let mut child = Kill(child);
    let url = line
        .trim_end()
        .strip_prefix("listening on ")
        .ok_or_else(|| anyhow::anyhow!("unexpected first line {line:?}"))?
        .to_string();
    let cfg = KernelConfig::new(&kroot);
    assert!(is_mount_point(&cfg.mount_point()));
    let http = reqwest::Client::builder().no_proxy().build()?;
    let r = http
        .post(format!("{url}/api/storage/volumes?return_timeout=10"))
        .basic_auth("admin", Some("netapp1!"))
        .json(
            &json!({"name": "v1", "svm": {"name": "svm1"}, "aggregates": [{"name": "aggr1"}],
                      "size": "1G", "nas": {"path": "/v1"}}),
        )
        .send()
        .await?;
    let status = r.status().as_u16();
    assert!(
        status == 201 || status == 200,
        "volume POST answered {status}"
    );
    let list: serde_json::Value = http
        .get(format!("{url}/api/storage/volumes?name=v1"))
        .basic_auth("admin", Some("netapp1!"))
        .send()
        .await?
        .json()
        .await?;
    let vol = list["records"][0]["uuid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(is_subvolume(&cfg.volume_path(&vol)));
    assert!(is_mount_point(&cfg.export_dir().join("v1")));
    // Ctrl-C: the binary stops and, with --kernel-teardown, unmounts.
    let pid = child.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()?
        .success());
    let exit = child.0.wait()?;
    assert!(exit.success(), "{exit}");
    assert!(!is_mount_point(&cfg.export_dir().join("v1")));
    assert!(!is_mount_point(&cfg.mount_point()));
    assert!(cfg.image().exists(), "the image stays for the next start");
    Ok(())
}

#[tokio::test]
#[ignore = "host tier: needs root, loop and btrfs (run by cargo xtask test)"]
async fn host_flexclone_of_a_snapshot_holds_the_lun_files_of_then() -> anyhow::Result<()> {
    use std::io::{Read, Seek, SeekFrom, Write};

    let (_cleanup, cfg, backend, env) = volumes_only_sim().await?;
    let vol = env
        .create_volume(json!({"name": "vol1", "svm": {"name": "svm1"},
                              "aggregates": [{"name": "aggr1"}], "size": "1G"}))
        .await?;
    let vdir = cfg.volume_path(&vol);
    let lun = |name: &str, size: &str| {
        json!({"svm": {"name": "svm1"}, "name": format!("/vol/vol1/{name}"),
               "os_type": "linux", "space": {"size": size}})
    };
    let mut uuids = std::collections::BTreeMap::new();
    for (name, size) in [("a", "64M"), ("d", "32M")] {
        let r = env
            .post("/api/storage/luns?return_records=true", lun(name, size))
            .await?;
        assert_eq!(r.status, 201, "{}", r.body);
        uuids.insert(
            name,
            r.body["records"][0]["uuid"].as_str().unwrap().to_string(),
        );
    }
    let write_at = |path: &Path, text: &str| -> anyhow::Result<()> {
        let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
        f.seek(SeekFrom::Start(4096))?;
        f.write_all(text.as_bytes())?;
        Ok(())
    };
    let read_at = |path: &Path, n: usize| -> anyhow::Result<String> {
        let mut f = std::fs::File::open(path)?;
        f.seek(SeekFrom::Start(4096))?;
        let mut buf = vec![0u8; n];
        f.read_exact(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    };
    write_at(&vdir.join("a"), "then")?;
    let (_, job) = env
        .run_job(
            Method::POST,
            &format!("/api/storage/volumes/{vol}/snapshots"),
            Some(json!({"name": "s1"})),
        )
        .await?;
    assert_eq!(job["state"], "success", "{job}");

    // After s1: b is made, a grows and changes, d goes.
    let r = env.post("/api/storage/luns", lun("b", "16M")).await?;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = env
        .patch(
            &format!("/api/storage/luns/{}", uuids["a"]),
            json!({"space": {"size": "128M"}}),
        )
        .await?;
    assert_eq!(r.status, 200, "{}", r.body);
    write_at(&vdir.join("a"), "now!")?;
    let r = env
        .delete(&format!("/api/storage/luns/{}", uuids["d"]))
        .await?;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(std::fs::metadata(vdir.join("a"))?.len(), 128 << 20);
    assert!(!vdir.join("d").exists());

    // The clone's records and its files are both those of s1.
    let clone = env
        .create_volume(json!({"name": "clone1", "svm": {"name": "svm1"},
                              "clone": {"parent_volume": {"name": "vol1"},
                                        "parent_snapshot": {"name": "s1"}}}))
        .await?;
    let cdir = cfg.volume_path(&clone);
    let r = env
        .get("/api/storage/luns?location.volume.name=clone1&fields=space.size&order_by=name")
        .await?;
    let recs: Vec<(String, u64)> = r.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["name"].as_str().unwrap().to_string(),
                l["space"]["size"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        recs,
        [
            ("/vol/clone1/a".to_string(), 64 << 20),
            ("/vol/clone1/d".to_string(), 32 << 20)
        ]
    );
    let mut files: Vec<(String, u64)> = std::fs::read_dir(&cdir)?
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    files.sort();
    assert_eq!(
        files,
        [("a".to_string(), 64 << 20), ("d".to_string(), 32 << 20)]
    );
    assert_eq!(read_at(&cdir.join("a"), 4)?, "then");
    assert_eq!(read_at(&vdir.join("a"), 4)?, "now!");

    // Clean up through the API: the clone's LUNs, the clone, s1, the parent's LUNs.
    let all = env
        .get("/api/storage/luns?fields=location.volume.name")
        .await?;
    let mut luns: Vec<(String, String)> = all.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["location"]["volume"]["name"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                l["uuid"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    luns.sort();
    for (_, uuid) in &luns {
        let r = env.delete(&format!("/api/storage/luns/{uuid}")).await?;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let (_, job) = env
        .run_job(
            Method::DELETE,
            &format!("/api/storage/volumes/{clone}"),
            None,
        )
        .await?;
    assert_eq!(job["state"], "success", "{job}");
    let (_, job) = env
        .run_job(Method::DELETE, &format!("/api/storage/volumes/{vol}"), None)
        .await?;
    assert_eq!(job["state"], "success", "{job}");
    assert!(!vdir.exists() && !cdir.exists());
    env.sim.shutdown().await;
    backend.teardown().await?;
    Ok(())
}
