//! Host tier, in its own test binary because it restarts the daemon (cargo runs test
//! binaries one after another, so no other test of this crate sees the restart).
//!
//! The daemon is found through its pid file (`KVMSTOR_LIBVIRTD_PIDFILE`, default
//! `/run/libvirtd-kvmstor.pid`, as `cargo xtask test` starts it) and restarted the same way:
//! `libvirtd -d --pid-file <file>`.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    host_uri, libvirtd_pid_file, path_str, run, sparse_file, temp_dir, unique, LoopDevice,
    PoolGuard,
};
use libvirt_pools::{
    FsFormat, Libvirt, Outcome, PoolDef, PoolName, PoolSpec, PoolState, RemoveMode,
};

/// libvirt autostarts once per host boot: the storage driver skips autostart while
/// `/run/libvirt/storage/autostarted` exists (libvirt's `virDriverShouldAutostart`).
/// Removing it between stop and start is what a reboot does to `/run`.
const AUTOSTART_MARKER: &str = "/run/libvirt/storage/autostarted";

fn restart_libvirtd(pid_file: &Path, simulate_boot: bool) {
    let pid = std::fs::read_to_string(pid_file)
        .unwrap_or_else(|e| panic!("{}: {e} (is libvirtd running?)", pid_file.display()));
    let pid = pid.trim().to_owned();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -TERM {pid}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Path::new(&format!("/proc/{pid}")).exists() {
        assert!(Instant::now() < deadline, "libvirtd {pid} did not exit");
        std::thread::sleep(Duration::from_millis(100));
    }
    if simulate_boot {
        match std::fs::remove_file(AUTOSTART_MARKER) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("{AUTOSTART_MARKER}: {e}"),
        }
    }
    let status = Command::new("libvirtd")
        .args(["-d", "--pid-file", &path_str(pid_file)])
        .status()
        .expect("libvirtd");
    assert!(status.success(), "libvirtd -d failed: {status}");
}

async fn connect_with_retry(uri: &str) -> Libvirt {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match Libvirt::connect(uri).await {
            Ok(lv) => match lv.pools().list().await {
                Ok(_) => return lv,
                Err(e) if Instant::now() > deadline => panic!("libvirtd not back: {e}"),
                Err(_) => {}
            },
            Err(e) if Instant::now() > deadline => panic!("libvirtd not back: {e}"),
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
#[ignore = "host tier: needs libvirtd (started by cargo xtask test)"]
async fn host_autostart_survives_a_daemon_restart() -> anyhow::Result<()> {
    let uri = host_uri();
    let lv = Libvirt::connect(&uri).await?;
    let tmp = temp_dir();
    // fs pools: libvirt decides at daemon start whether a dir pool is active by whether its
    // directory exists, so only a pool that must be mounted shows what autostart does.
    let mut devices = Vec::new();
    for img in ["a.img", "m.img"] {
        let image = tmp.path().join(img);
        sparse_file(&image, 64 << 20);
        run("mkfs.ext4", &["-q", "-F", &path_str(&image)]);
        devices.push(LoopDevice::attach(&image));
    }
    let auto = PoolName::new(unique("auto"))?;
    let manual = PoolName::new(unique("manual"))?;
    let fs = |name: &PoolName, dev: &LoopDevice, dir: &str| {
        PoolDef::fs(
            name.clone(),
            dev.path.clone(),
            FsFormat::Ext4,
            path_str(&tmp.path().join(dir)),
        )
    };
    let auto_spec = PoolSpec::new(fs(&auto, &devices[0], "a"));
    let manual_spec = PoolSpec::new(fs(&manual, &devices[1], "m")).with_autostart(false);
    let _guards = [
        PoolGuard::new(&lv, &auto, RemoveMode::KeepData),
        PoolGuard::new(&lv, &manual, RemoveMode::KeepData),
    ];
    assert_eq!(lv.pools().ensure(&auto_spec).await?, Outcome::Changed);
    assert_eq!(lv.pools().ensure(&manual_spec).await?, Outcome::Changed);
    // libvirtd keeps running pools running across a restart (state under /run/libvirt), so
    // stop both: only autostart may bring one back.
    assert_eq!(lv.pools().destroy(&auto).await?, Outcome::Changed);
    assert_eq!(lv.pools().destroy(&manual).await?, Outcome::Changed);
    drop(lv);

    // A daemon restart alone autostarts nothing (and keeps running pools running).
    restart_libvirtd(&libvirtd_pid_file(), false);
    let lv = connect_with_retry(&uri).await;
    assert_eq!(lv.pools().info(&auto).await?.state, PoolState::Inactive);
    drop(lv);

    // After a boot, the daemon's first start autostarts.
    restart_libvirtd(&libvirtd_pid_file(), true);
    let lv = connect_with_retry(&uri).await;
    let a = lv.pools().info(&auto).await?;
    assert_eq!(
        (a.state, a.autostart, a.persistent),
        (PoolState::Running, true, true)
    );
    let m = lv.pools().info(&manual).await?;
    assert_eq!(
        (m.state, m.autostart, m.persistent),
        (PoolState::Inactive, false, true)
    );
    // ensure brings the manual one up again, and reports that it did.
    assert_eq!(lv.pools().ensure(&manual_spec).await?, Outcome::Changed);
    assert_eq!(lv.pools().ensure(&auto_spec).await?, Outcome::Unchanged);
    Ok(())
}
