//! Test helpers: unique names and guards that clean up on drop, panics included.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use libvirt_pools::{Libvirt, PoolName, RemoveMode};

/// The URI of the real daemon for host-tier tests.
pub fn host_uri() -> String {
    std::env::var("KVMSTOR_LIBVIRT_URI").unwrap_or_else(|_| "qemu:///system".to_owned())
}

/// A name unique in this process and across concurrent test runs.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "kvmstor-{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs `fut` to completion on a fresh thread with its own runtime (usable from `Drop`,
/// also when the dropping thread is inside a tokio runtime).
pub fn block_on_fresh<F, T>(fut: F) -> T
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(fut)
    })
    .join()
    .expect("cleanup thread panicked")
}

/// Removes the pool (its volumes, its storage, its definition) on drop.
/// It opens its own connection, so it also works after a daemon restart.
pub struct PoolGuard {
    pub uri: String,
    pub name: PoolName,
    pub mode: RemoveMode,
}

impl PoolGuard {
    pub fn new(lv: &Libvirt, name: &PoolName, mode: RemoveMode) -> Self {
        PoolGuard {
            uri: lv.uri().to_owned(),
            name: name.clone(),
            mode,
        }
    }
}

impl Drop for PoolGuard {
    fn drop(&mut self) {
        let uri = self.uri.clone();
        let name = self.name.clone();
        let mode = self.mode;
        let result = block_on_fresh(async move {
            let lv = Libvirt::connect(&uri).await?;
            if mode == RemoveMode::DeleteData {
                if let Ok(vols) = lv.volumes(&name).list().await {
                    for v in vols {
                        let _ = lv.volumes(&name).delete(&v.name).await;
                    }
                }
            }
            match lv.pools().remove(&name, mode).await {
                Ok(o) => Ok(o),
                // Storage that cannot be deleted (not empty): at least undefine.
                Err(_) => lv.pools().remove(&name, RemoveMode::KeepData).await,
            }
        });
        if let Err(e) = result {
            eprintln!("cleanup of pool {}: {e}", self.name);
        }
    }
}

/// Runs a program, panicking with its stderr when it fails; returns stdout.
pub fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A loop device over an image file, detached on drop.
pub struct LoopDevice {
    pub path: String,
}

impl LoopDevice {
    pub fn attach(image: &Path) -> Self {
        let image = image.to_str().expect("utf-8 path");
        let path = run("losetup", &["-f", "--show", image]).trim().to_owned();
        assert!(path.starts_with("/dev/loop"), "losetup printed {path:?}");
        LoopDevice { path }
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.path]).status();
    }
}

/// A sparse file of `size` bytes.
pub fn sparse_file(path: &Path, size: u64) {
    let f = std::fs::File::create(path).expect("create image");
    f.set_len(size).expect("size image");
}

/// A userspace iSCSI target (tgtd in the foreground, on its own control port and portal),
/// with one file-backed LUN and a CHAP account. Torn down on drop.
pub struct Tgtd {
    child: Child,
    control_port: String,
    pub portal_port: u16,
    pub target_iqn: String,
}

impl Tgtd {
    pub fn start(
        control_port: u16,
        portal_port: u16,
        target_iqn: &str,
        lun_image: &Path,
        chap: Option<(&str, &str)>,
    ) -> Self {
        let child = Command::new("tgtd")
            .args([
                "-f",
                "-C",
                &control_port.to_string(),
                "--iscsi",
                &format!("portal=127.0.0.1:{portal_port}"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn tgtd");
        let tgt = Tgtd {
            child,
            control_port: control_port.to_string(),
            portal_port,
            target_iqn: target_iqn.to_owned(),
        };
        // Wait for the management socket.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !tgt.adm_ok(&["--op", "show", "--mode", "system"]) {
            assert!(Instant::now() < deadline, "tgtd did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
        let image = lun_image.to_str().expect("utf-8 path");
        tgt.adm(&[
            "--op", "new", "--mode", "target", "--tid", "1", "-T", target_iqn,
        ]);
        tgt.adm(&[
            "--op",
            "new",
            "--mode",
            "logicalunit",
            "--tid",
            "1",
            "--lun",
            "1",
            "-b",
            image,
        ]);
        tgt.adm(&[
            "--op", "bind", "--mode", "target", "--tid", "1", "-I", "ALL",
        ]);
        if let Some((user, password)) = chap {
            // Test fixture only: tgtadm takes the password on its command line.
            tgt.adm(&[
                "--op",
                "new",
                "--mode",
                "account",
                "--user",
                user,
                "--password",
                password,
            ]);
            tgt.adm(&[
                "--op", "bind", "--mode", "account", "--tid", "1", "--user", user,
            ]);
        }
        tgt
    }

    fn args<'a>(&'a self, rest: &[&'a str]) -> Vec<&'a str> {
        let mut a = vec!["-C", self.control_port.as_str(), "--lld", "iscsi"];
        a.extend_from_slice(rest);
        a
    }

    fn adm_ok(&self, rest: &[&str]) -> bool {
        Command::new("tgtadm")
            .args(self.args(rest))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn adm(&self, rest: &[&str]) {
        run("tgtadm", &self.args(rest));
    }
}

impl Drop for Tgtd {
    fn drop(&mut self) {
        // tgtd ignores SIGTERM while targets exist; delete the system, then make sure.
        let _ = self.adm_ok(&["--op", "delete", "--mode", "system"]);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A temporary directory under /var/tmp (not tmpfs-only /tmp surprises), removed on drop.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("kvmstor-lvp-")
        .tempdir_in("/var/tmp")
        .expect("tempdir")
}

/// Path helper.
pub fn path_str(p: &Path) -> String {
    p.to_str().expect("utf-8 path").to_owned()
}

/// The pid file of the daemon `cargo xtask test` starts.
pub fn libvirtd_pid_file() -> PathBuf {
    std::env::var_os("KVMSTOR_LIBVIRTD_PIDFILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/libvirtd-kvmstor.pid"))
}
