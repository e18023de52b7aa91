//! Host tier: root, loop devices, mount syscalls, a real `automount` daemon and a real
//! `systemd-udevd`. Every test is `#[ignore]`d in the plain tier and run by `cargo xtask
//! test` (`cargo test -p host-storage -- --ignored`) after it installed `autofs`, `udev`,
//! `libudev-dev` and `e2fsprogs`.
//!
//! Each test starts and stops its own daemon instance and holds every loop device, mount and
//! daemon in a guard that cleans up on drop, panics included.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use host_storage::autofs::{Autofs, Reload};
use host_storage::files::{EntryId, HostRoot};
use host_storage::fstab::{Fstab, FstabEntry};
use host_storage::mount::Mounter;
use host_storage::parse::mountinfo::parse_mountinfo;
use host_storage::sysfs::Sysfs;
use host_storage::wait::{DeviceId, DeviceWaiter, Via, WaitMode};
use host_storage::{Change, ConfigToken, Error, FakeRunner};
use nix::mount::{umount2, MntFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

fn run(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("spawn {program}"))?;
    ensure!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn mounts_under(dir: &Path) -> Vec<(PathBuf, String)> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    parse_mountinfo(&text)
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m.mount_point.starts_with(dir))
        .map(|m| (m.mount_point, m.fstype))
        .collect()
}

fn poll_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}

/// A scratch directory that, on drop, lazily unmounts anything left mounted below it
/// (deepest first) before it is removed.
struct Scratch(tempfile::TempDir);

impl Scratch {
    fn new() -> Result<Self> {
        Ok(Scratch(tempfile::tempdir()?))
    }
    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let mut left = mounts_under(self.path());
        left.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
        for (p, _) in left {
            let _ = umount2(&p, MntFlags::MNT_DETACH);
        }
    }
}

/// A loop device attached to an image file, detached on drop.
struct LoopDev {
    dev: PathBuf,
}

impl LoopDev {
    fn attach(image: &Path) -> Result<Self> {
        let out = run("losetup", &["--find", "--show", image.to_str().unwrap()])?;
        Ok(LoopDev {
            dev: PathBuf::from(out.trim()),
        })
    }
    fn name(&self) -> &str {
        self.dev.file_name().unwrap().to_str().unwrap()
    }
}

impl Drop for LoopDev {
    fn drop(&mut self) {
        let _ = Command::new("losetup")
            .args(["-d", self.dev.to_str().unwrap()])
            .status();
    }
}

/// An ext4 image holding `marker` = `text`.
fn ext4_image(dir: &Path, text: &str) -> Result<PathBuf> {
    let content = dir.join("content");
    std::fs::create_dir_all(&content)?;
    std::fs::write(content.join("marker"), text)?;
    let img = dir.join("disk.img");
    std::fs::File::create(&img)?.set_len(16 << 20)?;
    run(
        "mkfs.ext4",
        &[
            "-q",
            "-F",
            "-d",
            content.to_str().unwrap(),
            img.to_str().unwrap(),
        ],
    )?;
    Ok(img)
}

/// Our own automount instance (own master map and pid file), stopped on drop.
struct Automount {
    pid: Pid,
}

impl Automount {
    fn start(master: &Path, pidfile: &Path) -> Result<Self> {
        run(
            "/usr/sbin/automount",
            &["-p", pidfile.to_str().unwrap(), master.to_str().unwrap()],
        )?;
        let mut pid = None;
        poll_until(Duration::from_secs(10), || {
            pid = std::fs::read_to_string(pidfile)
                .ok()
                .and_then(|t| t.trim().parse::<i32>().ok());
            pid.is_some()
        });
        let pid = pid.context("automount wrote no pid file")?;
        Ok(Automount {
            pid: Pid::from_raw(pid),
        })
    }
}

impl Drop for Automount {
    fn drop(&mut self) {
        let _ = kill(self.pid, Signal::SIGTERM);
        let gone = poll_until(Duration::from_secs(10), || kill(self.pid, None).is_err());
        if !gone {
            let _ = kill(self.pid, Signal::SIGKILL);
        }
    }
}

/// A `systemd-udevd` we started (in the foreground, as our child), or nothing when one
/// already runs. On drop it is stopped and its stale control socket removed.
struct Udevd {
    child: Option<Child>,
    made_run_udev: bool,
}

impl Udevd {
    fn ensure() -> Result<Self> {
        let probe = DeviceWaiter::new(HostRoot::system());
        if probe.udev_running() {
            return Ok(Udevd {
                child: None,
                made_run_udev: false,
            });
        }
        let made_run_udev = !Path::new("/run/udev").exists();
        let child = Command::new("/lib/systemd/systemd-udevd")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start systemd-udevd")?;
        let guard = Udevd {
            child: Some(child),
            made_run_udev,
        };
        if !poll_until(Duration::from_secs(10), || probe.udev_running()) {
            bail!("systemd-udevd did not open /run/udev/control");
        }
        Ok(guard)
    }
}

impl Drop for Udevd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            let _ = child.wait();
            let _ = std::fs::remove_file("/run/udev/control");
            if self.made_run_udev {
                let _ = std::fs::remove_dir_all("/run/udev");
            }
        }
    }
}

#[tokio::test]
#[ignore = "host tier: needs root + mount(2) (run by cargo xtask test)"]
async fn host_bind_mount_with_syscall() {
    let dir = Scratch::new().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("marker"), "x").unwrap();
    let target = dir.path().join("bind");
    let fake = FakeRunner::new();
    let mounter = Mounter::new(&fake);
    let undo = mounter.bind(&src, &target).unwrap();
    assert_eq!(undo.change, Change::Changed);
    assert_eq!(std::fs::read_to_string(target.join("marker")).unwrap(), "x");
    assert_eq!(
        mounter.bind(&src, &target).unwrap().change,
        Change::Unchanged
    );
    assert_eq!(mounter.undo(&undo).await.unwrap(), Change::Changed);
    assert!(mounter.find(&target).unwrap().is_none());
    assert!(!target.exists());
    assert_eq!(mounter.undo(&undo).await.unwrap(), Change::Unchanged);
}

#[tokio::test]
#[ignore = "host tier: needs root + loop devices + automount (run by cargo xtask test)"]
async fn host_automount_mounts_a_loop_device_through_the_sdk_map() {
    let dir = Scratch::new().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(root.join("run")).unwrap();
    // The scratch root sees this machine's process table, as a real host root does.
    std::os::unix::fs::symlink("/proc", root.join("proc")).unwrap();
    let img = ext4_image(dir.path(), "hello from ext4\n").unwrap();
    let lo = LoopDev::attach(&img).unwrap();

    let fake = FakeRunner::new();
    // Signal reload: SIGHUP to the pid in <root>/run/autofs.pid, i.e. our daemon.
    let autofs = Autofs::new(
        HostRoot::new(&root),
        &fake,
        EntryId::parse("kvmstor").unwrap(),
    )
    .timeout(5)
    .reload(Reload::Signal);
    let ext4 = ConfigToken::parse("ext4").unwrap();
    let ro = ConfigToken::parse("ro").unwrap();
    let data = dir.path().join("mnt/data");
    let first = autofs
        .add_local(
            &EntryId::parse("data").unwrap(),
            &data,
            &ext4,
            std::slice::from_ref(&ro),
            &lo.dev,
        )
        .await
        .unwrap();
    assert_eq!(first.change, Change::Changed);

    // automount reads our master map, which names the direct map the SDK wrote.
    let map = root.join("etc/auto.kvmstor");
    let master = dir.path().join("auto.master");
    std::fs::write(&master, format!("/- {} --timeout=5\n", map.display())).unwrap();
    assert_eq!(
        autofs.daemon().await.unwrap(),
        Some(false),
        "not started yet"
    );
    let daemon = Automount::start(&master, &root.join("run/autofs.pid")).unwrap();
    // The real daemon is found through its pid file and /proc/<pid>/comm.
    assert_eq!(autofs.daemon().await.unwrap(), Some(true));

    assert!(poll_until(Duration::from_secs(10), || mounts_under(&data)
        .iter()
        .any(|(_, t)| t == "autofs")));
    // Access triggers the mount.
    assert_eq!(
        std::fs::read_to_string(data.join("marker")).unwrap(),
        "hello from ext4\n"
    );
    let mounted = mounts_under(&data);
    assert!(
        mounted.iter().any(|(p, t)| p == &data && t == "ext4"),
        "{mounted:?}"
    );

    // A second entry added while the daemon runs reaches it through the SDK's reload.
    let second = dir.path().join("mnt/second");
    let added = autofs
        .add_local(
            &EntryId::parse("second").unwrap(),
            &second,
            &ext4,
            &[ro],
            &lo.dev,
        )
        .await
        .unwrap();
    assert_eq!(added.change, Change::Changed);
    assert!(poll_until(Duration::from_secs(10), || {
        std::fs::read_to_string(second.join("marker")).is_ok_and(|t| t == "hello from ext4\n")
    }));

    // Undo of the second entry reloads the daemon; the idle mount expires after the
    // 5 s timeout and is not mounted again, since the map no longer has the key.
    assert_eq!(autofs.undo(&added).await.unwrap(), Change::Changed);
    assert_eq!(autofs.owned().unwrap().len(), 1);
    let expired = poll_until(Duration::from_secs(30), || {
        !mounts_under(&second).iter().any(|(_, t)| t == "ext4")
    });
    assert!(expired, "{:?}", mounts_under(&second));
    // automount keeps the trigger of a removed key while it is mounted; once idle, the
    // next reload takes it away.
    autofs.do_reload().await.unwrap();
    assert!(
        poll_until(Duration::from_secs(10), || mounts_under(&second).is_empty()),
        "{:?}",
        mounts_under(&second)
    );

    drop(daemon);
    assert!(poll_until(Duration::from_secs(10), || mounts_under(&data).is_empty()));
    // Stopped, its pid file may stay behind: the pid is no automount any more.
    let err = autofs.require_daemon().await.unwrap_err();
    assert!(
        matches!(
            err,
            host_storage::Error::NotRunning {
                daemon: "automount",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(autofs.undo(&first).await.unwrap(), Change::Changed);
    assert!(!map.exists());
    fake.verify();
}

#[tokio::test]
#[ignore = "host tier: needs root + loop devices + mount (run by cargo xtask test)"]
async fn host_fstab_line_written_by_the_sdk_mounts_with_the_real_mount_program() {
    let dir = Scratch::new().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    let img = ext4_image(dir.path(), "fstab\n").unwrap();
    let lo = LoopDev::attach(&img).unwrap();
    let target = dir.path().join("mnt/fstab");
    std::fs::create_dir_all(&target).unwrap();
    let fstab = Fstab::new(&HostRoot::new(&root));
    let entry = FstabEntry::new(lo.dev.to_str().unwrap(), &target, "ext4", "ro,noatime").unwrap();
    let id = EntryId::parse("loopdata").unwrap();
    let line = fstab.add(&id, &entry).unwrap();
    assert_eq!(line.change, Change::Changed);
    assert_eq!(fstab.add(&id, &entry).unwrap().change, Change::Unchanged);

    // util-linux mount reads the SDK's file and finds the line by its mount point.
    run(
        "mount",
        &[
            "--fstab",
            fstab.path().to_str().unwrap(),
            target.to_str().unwrap(),
        ],
    )
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(target.join("marker")).unwrap(),
        "fstab\n"
    );
    let m = mounts_under(&target);
    assert_eq!(m, vec![(target.clone(), "ext4".to_owned())]);
    umount2(&target, MntFlags::empty()).unwrap();
    assert_eq!(fstab.undo(&line).unwrap(), Change::Changed);
    assert!(fstab.owned().unwrap().is_empty());
}

#[tokio::test]
#[ignore = "host tier: needs root + loop devices + systemd-udevd (run by cargo xtask test)"]
async fn host_udev_event_from_systemd_udevd_names_the_verified_loop_device() {
    let _udevd = Udevd::ensure().unwrap();
    let dir = Scratch::new().unwrap();
    let img = ext4_image(dir.path(), "udev\n").unwrap();
    let img = std::fs::canonicalize(img).unwrap();
    let waiter = DeviceWaiter::new(HostRoot::system()).mode(WaitMode::Auto);
    assert_eq!(waiter.effective_mode(), WaitMode::Udev);

    let id = DeviceId::LoopBackingFile(img.clone());
    let task = {
        let waiter = waiter.clone();
        let id = id.clone();
        tokio::spawn(async move { waiter.wait(&id, Duration::from_secs(20)).await })
    };
    // The waiter subscribes before it scans; attach once it has had time to subscribe.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let lo = LoopDev::attach(&img).unwrap();
    let found = task.await.unwrap().unwrap();
    assert_eq!(found.name, lo.name());
    assert_eq!(found.via, Via::Udev);
    assert_eq!(found.dev_node, lo.dev);
    assert_eq!(found.identity.backing_file.as_deref(), Some(img.as_path()));

    // Already there: found at once, and verified by identity, not by name.
    let again = waiter.wait(&id, Duration::from_secs(1)).await.unwrap();
    assert_eq!((again.name.as_str(), again.via), (lo.name(), Via::Present));
    let sys = Sysfs::new(HostRoot::system());
    assert_eq!(
        sys.identity(lo.name()).unwrap().backing_file.as_deref(),
        Some(img.as_path())
    );
    let other = DeviceId::LoopBackingFile(dir.path().join("other.img"));
    match waiter.verify(lo.name(), &other).unwrap_err() {
        Error::DeviceMismatch {
            device, found: f, ..
        } => {
            assert_eq!(device, lo.name());
            assert_eq!(f, img.display().to_string());
        }
        e => panic!("unexpected {e:?}"),
    }

    // The deadline holds when nothing comes.
    let started = Instant::now();
    let err = waiter
        .wait(&other, Duration::from_millis(700))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::WaitTimeout { .. }), "{err:?}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_secs(5),
        "{took:?}"
    );

    // Detaching: the device loses its backing file, wait_gone is not about that, but a
    // fresh wait no longer finds it.
    drop(lo);
    assert!(poll_until(Duration::from_secs(5), || sys
        .identity(&found.name)
        .map(|i| i.backing_file.is_none())
        .unwrap_or(true)));
}
