//! Lab benchmark (`cargo xtask lab-bench`, not part of `cargo xtask lab`): attach and detach
//! times of host-storage, the bare kernel path (`iscsiadm` / `nvme connect`, then a sysfs
//! wait) and os-brick (`lab/bench_osbrick.py`), on the same LUN and namespace in one boot.
//!
//! Attach runs from the start of discovery/login (connect) to a multipath map with both
//! paths whose disks carry the LUN's serial, or to the NVMe namespace with the right UUID
//! and both controllers as paths. Detach runs until the map, disks, sessions and node
//! records (or controllers and namespace) are gone. Every detach starts from a settled
//! host (`udevadm settle` after attach, untimed), as a real detach long after attach does.
//! The three methods alternate within each repetition, host-storage and bare swapping
//! places every other repetition so neither always runs right after os-brick's cleanup.
//! One JSON line per measurement goes to `$LAB_OUT/bench.jsonl`.

mod lab_common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use host_storage::files::HostRoot;
use host_storage::identity::initiator_iqn;
use host_storage::iscsi::{Iscsi, IscsiTarget, NodeSettings};
use host_storage::multipath::Multipath;
use host_storage::nvmeof::{ConnectOptions, Nvme, Transport};
use host_storage::parse::Portal;
use host_storage::wait::{DeviceId, DeviceWaiter};
use host_storage::{HostName, Iqn, LunSerial, Nqn, SystemRunner};
use lab_common::{get, post, sh, sim, step, Volume};
use ontap_client::Query;
use serde_json::{json, Value};

const LUN_ID: u64 = 7;
const ISCSI_PORTALS: [&str; 2] = ["127.0.1.3:3260", "127.0.1.4:3260"];
const NVME_PORTS: [&str; 2] = ["127.0.1.5", "127.0.1.6"];
const WAIT: Duration = Duration::from_secs(90);

/// One attach/detach pair, in seconds.
struct Sample {
    attach: f64,
    detach: f64,
}

fn out_dir() -> Result<String> {
    std::env::var("LAB_OUT").context("LAB_OUT is not set: run through `cargo xtask lab-bench`")
}

fn record(protocol: &str, method: &str, rep: usize, s: &Sample) -> Result<()> {
    use std::io::Write as _;
    let line = json!({"protocol": protocol, "method": method, "rep": rep,
                      "attach_s": s.attach, "detach_s": s.detach});
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(Path::new(&out_dir()?).join("bench.jsonl"))?;
    writeln!(f, "{line}")?;
    step(&format!(
        "{protocol} {method} #{rep}: attach {:.3}s detach {:.3}s",
        s.attach, s.detach
    ));
    Ok(())
}

/// Lets udev finish the attach's events before a detach is timed (not timed itself).
fn settle() -> Result<()> {
    sh("udevadm", &["settle", "--timeout=60"])?;
    Ok(())
}

fn read_sys(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

/// Method-neutral check in sysfs: the multipath map (`dm-N`) whose slaves all carry
/// `serial` in VPD page 0x80, and its number of slaves.
fn sysfs_lun_map(serial: &str) -> Result<Option<(String, usize)>> {
    for e in std::fs::read_dir("/sys/block")? {
        let name = e?.file_name().to_string_lossy().into_owned();
        if !name.starts_with("dm-") {
            continue;
        }
        let base = Path::new("/sys/block").join(&name);
        let uuid = read_sys(&base.join("dm/uuid")).unwrap_or_default();
        if !uuid.starts_with("mpath-") {
            continue;
        }
        let slaves: Vec<String> = std::fs::read_dir(base.join("slaves"))?
            .filter_map(|s| s.ok().map(|s| s.file_name().to_string_lossy().into_owned()))
            .collect();
        let all_match = !slaves.is_empty()
            && slaves.iter().all(|s| {
                std::fs::read(format!("/sys/block/{s}/device/vpd_pg80"))
                    .is_ok_and(|v| v.len() > 4 && v[4..].starts_with(serial.as_bytes()))
            });
        if all_match {
            return Ok(Some((name, slaves.len())));
        }
    }
    Ok(None)
}

/// SCSI disks whose VPD serial is `serial`.
fn sysfs_scsi_disks(serial: &str) -> Result<Vec<String>> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/sys/block")? {
        let name = e?.file_name().to_string_lossy().into_owned();
        if name.starts_with("sd")
            && std::fs::read(format!("/sys/block/{name}/device/vpd_pg80"))
                .is_ok_and(|v| v.len() > 4 && v[4..].starts_with(serial.as_bytes()))
        {
            found.push(name);
        }
    }
    Ok(found)
}

/// Method-neutral check in sysfs: the NVMe namespace head with `uuid` and its paths.
fn sysfs_nvme_ns(uuid: &str) -> Result<Option<(String, usize)>> {
    for e in std::fs::read_dir("/sys/block")? {
        let name = e?.file_name().to_string_lossy().into_owned();
        if !name.starts_with("nvme") || name.contains('c') {
            continue;
        }
        let base = Path::new("/sys/block").join(&name);
        if read_sys(&base.join("uuid")).as_deref() != Some(uuid) {
            continue;
        }
        let paths = nvme_live_paths(&name)?;
        return Ok(Some((name, paths)));
    }
    Ok(None)
}

/// Live controllers that carry a path (`nvmeScKnN`) of the head `nvmeSnN` (kernel 6.1 has
/// no `multipath/` directory on the head; the path disks sit under their controllers).
fn nvme_live_paths(head: &str) -> Result<usize> {
    let rest = head.strip_prefix("nvme").context("head name")?;
    let (subsys, ns) = rest.split_once('n').context("head name")?;
    let mut n = 0;
    for e in std::fs::read_dir("/sys/class/nvme")? {
        let ctrl = e?.file_name().to_string_lossy().into_owned();
        let Some(k) = ctrl.strip_prefix("nvme") else {
            continue;
        };
        let base = Path::new("/sys/class/nvme").join(&ctrl);
        if read_sys(&base.join("state")).as_deref() == Some("live")
            && base.join(format!("nvme{subsys}c{k}n{ns}")).exists()
        {
            n += 1;
        }
    }
    Ok(n)
}

fn poll<T>(what: &str, mut f: impl FnMut() -> Result<Option<T>>) -> Result<T> {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = f()? {
            return Ok(v);
        }
        ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn iscsi_clean(iqn: &str, serial: &str) -> Result<()> {
    ensure!(sysfs_lun_map(serial)?.is_none(), "a map is left");
    ensure!(sysfs_scsi_disks(serial)?.is_empty(), "disks are left");
    let sessions = Command::new("iscsiadm").args(["-m", "session"]).output()?;
    ensure!(
        !String::from_utf8_lossy(&sessions.stdout).contains(iqn),
        "sessions are left"
    );
    ensure!(
        !Path::new("/etc/iscsi/nodes").join(iqn).exists(),
        "node records are left"
    );
    Ok(())
}

fn nvme_clean(nqn: &str, uuid: &str) -> Result<()> {
    ensure!(sysfs_nvme_ns(uuid)?.is_none(), "namespace is left");
    for e in std::fs::read_dir("/sys/class/nvme")? {
        let p = e?.path();
        ensure!(
            read_sys(&p.join("subsysnqn")).as_deref() != Some(nqn),
            "controller {} is left",
            p.display()
        );
    }
    Ok(())
}

// ---- host-storage ----

/// Sub-step end times, to see where a method spends its time.
#[derive(Default)]
struct Laps(Vec<String>);

impl Laps {
    fn lap(&mut self, what: &str, since: &Instant) {
        self.0
            .push(format!("{what} @{:.3}s", since.elapsed().as_secs_f64()));
    }
}

async fn hs_iscsi(iqn: &Iqn, serial: &LunSerial) -> Result<Sample> {
    let root = HostRoot::system();
    let iscsi = Iscsi::new(SystemRunner::new(), root.clone());
    let mp = Multipath::new(SystemRunner::new(), root);
    let t = Instant::now();
    let mut laps = Laps::default();
    let found = iscsi
        .discover(&Portal {
            address: "127.0.1.3".into(),
            port: 3260,
        })
        .await?;
    laps.lap("discover", &t);
    let target = IscsiTarget::from_discovery(iqn, &found)?;
    let conn = iscsi
        .connect(&target, &NodeSettings::default(), None)
        .await?;
    ensure!(
        conn.logins.iter().all(|l| l.change.is_changed()),
        "{conn:?}"
    );
    laps.lap("records+login", &t);
    let paths = iscsi
        .attach_lun(iqn, LUN_ID, serial, Duration::from_secs(60))
        .await?;
    ensure!(paths.paths.len() == 2, "{} paths", paths.paths.len());
    laps.lap("scan+disks", &t);
    let deadline = Instant::now() + WAIT;
    loop {
        if mp.find_lun_map(serial)?.is_some_and(|m| m.paths.len() == 2) {
            break;
        }
        ensure!(Instant::now() < deadline, "no map with two paths");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    laps.lap("map", &t);
    let attach = t.elapsed().as_secs_f64();
    ensure!(sysfs_lun_map(serial.as_str())?.map(|m| m.1) == Some(2));
    settle()?;

    let t = Instant::now();
    let removed = mp.remove_lun(serial).await?;
    ensure!(removed.paths.len() == 2);
    laps.lap("remove map+disks", &t);
    iscsi.disconnect(&conn).await?;
    laps.lap("logout+records", &t);
    let detach = t.elapsed().as_secs_f64();
    step(&format!("iscsi host-storage laps: {}", laps.0.join(", ")));
    iscsi_clean(iqn.as_str(), serial.as_str())?;
    Ok(Sample { attach, detach })
}

/// `diag`: also time the parts of a detach (scan, in-use check, one spawn) before it.
async fn hs_nvme(nqn: &Nqn, uuid: uuid::Uuid, diag: bool) -> Result<Sample> {
    let root = HostRoot::system();
    let nvme = Nvme::new(SystemRunner::new(), root.clone());
    let waiter = DeviceWaiter::new(root);
    let opts = ConnectOptions {
        ctrl_loss_tmo: None,
        ..ConnectOptions::default()
    };
    let paths = NVME_PORTS
        .iter()
        .map(|p| Ok(Transport::tcp(HostName::parse(p)?)))
        .collect::<Result<Vec<_>>>()?;
    let t = Instant::now();
    let undo = nvme.connect_paths(nqn, &paths, &opts).await?;
    let t_connect = t.elapsed();
    let dev = waiter
        .wait(&DeviceId::NvmeUuid(uuid), Duration::from_secs(60))
        .await?;
    ensure!(
        undo.controllers.len() == 2,
        "controllers {:?}",
        undo.controllers
    );
    // Both controllers as paths of the head: the same end point as the other methods.
    let deadline = Instant::now() + WAIT;
    while sysfs_nvme_ns(&uuid.to_string())?.map(|n| n.1) != Some(2) {
        ensure!(
            Instant::now() < deadline,
            "namespace not on both controllers"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let attach = t.elapsed().as_secs_f64();
    step(&format!(
        "nvme host-storage attach: connect {:.3}s, namespace on both paths {:.3}s",
        t_connect.as_secs_f64(),
        attach - t_connect.as_secs_f64()
    ));
    let neutral = sysfs_nvme_ns(&uuid.to_string())?;
    ensure!(
        neutral == Some((dev.name.clone(), 2)),
        "{neutral:?} vs {}",
        dev.name
    );
    settle()?;
    if diag {
        diag_nvme(&nvme, &undo.controllers).await?;
    }

    let t = Instant::now();
    let mut laps = Laps::default();
    ensure!(nvme.disconnect(&undo).await?.is_changed());
    laps.lap("disconnect", &t);
    waiter.wait_gone(&dev.name, Duration::from_secs(60)).await?;
    laps.lap("gone", &t);
    let detach = t.elapsed().as_secs_f64();
    step(&format!(
        "nvme host-storage detach laps: {}",
        laps.0.join(", ")
    ));
    nvme_clean(nqn.as_str(), &uuid.to_string())?;
    Ok(Sample { attach, detach })
}

/// Diagnostics, run in the last repetition only, before its (timed) detach: what the
/// parts of a host-storage detach cost beside the `nvme disconnect` both methods run (the
/// controller scan and the in-use check, and one spawn through `SystemRunner` and through
/// `std::process`).
async fn diag_nvme(nvme: &Nvme<SystemRunner>, ctrls: &[String]) -> Result<()> {
    use host_storage::{Command as HsCommand, Runner as _};
    let n = 5;
    let t = Instant::now();
    for _ in 0..n {
        nvme.controllers()?;
    }
    let scan = t.elapsed().as_secs_f64() / n as f64;
    let t = Instant::now();
    for _ in 0..n {
        for c in ctrls {
            nvme.users_of(c)?;
        }
    }
    let users = t.elapsed().as_secs_f64() / n as f64;
    let runner = SystemRunner::new();
    let t = Instant::now();
    for _ in 0..n {
        runner.run(&HsCommand::new("nvme").arg("version")).await?;
    }
    let tokio_spawn = t.elapsed().as_secs_f64() / n as f64;
    let t = Instant::now();
    for _ in 0..n {
        sh("nvme", &["version"])?;
    }
    let std_spawn = t.elapsed().as_secs_f64() / n as f64;
    step(&format!(
        "nvme diag: controllers() {:.1}ms, users_of x{} {:.1}ms, SystemRunner nvme version {:.1}ms, std nvme version {:.1}ms",
        scan * 1e3,
        ctrls.len(),
        users * 1e3,
        tokio_spawn * 1e3,
        std_spawn * 1e3
    ));
    Ok(())
}

// ---- bare kernel path ----

fn bare_iscsi(iqn: &str, serial: &str) -> Result<Sample> {
    let t = Instant::now();
    let mut laps = Laps::default();
    sh(
        "iscsiadm",
        &[
            "-m",
            "discovery",
            "-t",
            "sendtargets",
            "-p",
            ISCSI_PORTALS[0],
        ],
    )?;
    laps.lap("discover", &t);
    for p in ISCSI_PORTALS {
        sh("iscsiadm", &["-m", "node", "-T", iqn, "-p", p, "--login"])?;
    }
    laps.lap("logins", &t);
    poll("multipath map with two paths", || {
        Ok(sysfs_lun_map(serial)?.filter(|m| m.1 == 2))
    })?;
    laps.lap("map", &t);
    let attach = t.elapsed().as_secs_f64();
    settle()?;

    let t = Instant::now();
    let (dm, _) = sysfs_lun_map(serial)?.context("map vanished")?;
    let name = read_sys(Path::new(&format!("/sys/block/{dm}/dm/name"))).context("dm name")?;
    let disks = sysfs_scsi_disks(serial)?;
    sh("multipath", &["-f", &name])?;
    for d in &disks {
        std::fs::write(format!("/sys/block/{d}/device/delete"), "1")?;
    }
    laps.lap("remove map+disks", &t);
    for p in ISCSI_PORTALS {
        sh("iscsiadm", &["-m", "node", "-T", iqn, "-p", p, "--logout"])?;
    }
    sh("iscsiadm", &["-m", "node", "-o", "delete", "-T", iqn])?;
    laps.lap("logout+records", &t);
    let detach = t.elapsed().as_secs_f64();
    step(&format!("iscsi bare laps: {}", laps.0.join(", ")));
    iscsi_clean(iqn, serial)?;
    Ok(Sample { attach, detach })
}

fn bare_nvme(nqn: &str, uuid: &str) -> Result<Sample> {
    let t = Instant::now();
    for port in NVME_PORTS {
        sh(
            "nvme",
            &["connect", "-t", "tcp", "-a", port, "-s", "4420", "-n", nqn],
        )?;
    }
    let (name, _) = poll("namespace with two paths", || {
        Ok(sysfs_nvme_ns(uuid)?.filter(|n| n.1 == 2))
    })?;
    let attach = t.elapsed().as_secs_f64();
    settle()?;

    let t = Instant::now();
    let mut laps = Laps::default();
    sh("nvme", &["disconnect", "-n", nqn])?;
    laps.lap("disconnect", &t);
    poll("namespace gone", || {
        Ok((!Path::new("/sys/block").join(&name).exists()).then_some(()))
    })?;
    laps.lap("gone", &t);
    let detach = t.elapsed().as_secs_f64();
    step(&format!("nvme bare detach laps: {}", laps.0.join(", ")));
    nvme_clean(nqn, uuid)?;
    Ok(Sample { attach, detach })
}

// ---- os-brick ----

/// Runs `lab/bench_osbrick.py` once (its imports are not timed); `None` when the bench
/// was started without os-brick (no `$LAB_OUT/osbrick.json`).
fn osbrick(args: &Value) -> Result<Option<Sample>> {
    let conf = Path::new(&out_dir()?).join("osbrick.json");
    let Ok(text) = std::fs::read_to_string(&conf) else {
        return Ok(None);
    };
    let conf: Value = serde_json::from_str(&text)?;
    let out = Command::new(conf["python"].as_str().context("python")?)
        .arg(conf["script"].as_str().context("script")?)
        .arg(args.to_string())
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "os-brick run failed ({}): {}{}",
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .with_context(|| format!("os-brick output: {stdout}"))?;
    Ok(Some(Sample {
        attach: v["attach_s"].as_f64().context("attach_s")?,
        detach: v["detach_s"].as_f64().context("detach_s")?,
    }))
}

/// host-storage and bare in the order of repetition `rep` (os-brick runs after both).
fn order(rep: usize) -> [&'static str; 2] {
    if rep % 2 == 0 {
        ["host-storage", "bare"]
    } else {
        ["bare", "host-storage"]
    }
}

/// Repetitions: `$LAB_OUT/bench-reps` (written by `cargo xtask lab-bench` from
/// `LAB_BENCH_REPS`; the guest does not inherit the host's environment), else 5.
fn reps() -> usize {
    out_dir()
        .ok()
        .and_then(|o| std::fs::read_to_string(Path::new(&o).join("bench-reps")).ok())
        .and_then(|r| r.trim().parse().ok())
        .unwrap_or(5)
}

#[tokio::test]
#[ignore = "lab benchmark: run by cargo xtask lab-bench"]
async fn bench_lab_iscsi_attach_detach() -> Result<()> {
    let c = sim()?;
    let initiator = initiator_iqn(&HostRoot::system())?.context("no initiator name")?;
    Volume::create(&c, "bench_iscsi", "1G", false).await?;
    let lun = post(
        &c,
        "/api/storage/luns",
        json!({"svm": {"name": "svm1"}, "name": "/vol/bench_iscsi/lun1", "os_type": "linux",
               "space": {"size": "64M"}}),
    )
    .await?;
    let serial = LunSerial::parse(lun[0]["serial_number"].as_str().context("serial")?)?;
    post(
        &c,
        "/api/protocols/san/igroups",
        json!({"svm": {"name": "svm1"}, "name": "bench_ig", "os_type": "linux", "protocol": "iscsi",
               "initiators": [{"name": initiator.as_str()}]}),
    )
    .await?;
    post(
        &c,
        "/api/protocols/san/lun-maps",
        json!({"svm": {"name": "svm1"}, "lun": {"name": "/vol/bench_iscsi/lun1"},
               "igroup": {"name": "bench_ig"}, "logical_unit_number": LUN_ID}),
    )
    .await?;
    let svc = get(
        &c,
        "/api/protocols/san/iscsi/services",
        &Query::new().fields(["target"]),
    )
    .await?;
    let iqn = Iqn::parse(svc[0]["target"]["name"].as_str().context("target iqn")?)?;
    step("bench iscsi: target configured");
    let brick_args = json!({"protocol": "iscsi", "iqn": iqn.as_str(), "portals": ISCSI_PORTALS,
                            "lun": LUN_ID, "serial": serial.as_str()});
    for rep in 0..reps() {
        for method in order(rep) {
            let s = match method {
                "host-storage" => hs_iscsi(&iqn, &serial).await?,
                _ => bare_iscsi(iqn.as_str(), serial.as_str())?,
            };
            record("iscsi", method, rep, &s)?;
        }
        if let Some(s) = osbrick(&brick_args)? {
            iscsi_clean(iqn.as_str(), serial.as_str())?;
            record("iscsi", "os-brick", rep, &s)?;
        }
    }
    Ok(())
}

#[tokio::test]
#[ignore = "lab benchmark: run by cargo xtask lab-bench"]
async fn bench_lab_nvme_attach_detach() -> Result<()> {
    let c = sim()?;
    let hostnqn = std::fs::read_to_string("/etc/nvme/hostnqn")?
        .trim()
        .to_owned();
    Volume::create(&c, "bench_nvme", "1G", false).await?;
    let sub = post(
        &c,
        "/api/protocols/nvme/subsystems",
        json!({"svm": {"name": "svm1"}, "name": "bench_sub", "os_type": "linux", "hosts": [{"nqn": hostnqn}]}),
    )
    .await?;
    let nqn = Nqn::parse(sub[0]["target_nqn"].as_str().context("target nqn")?)?;
    let ns = post(
        &c,
        "/api/storage/namespaces",
        json!({"svm": {"name": "svm1"}, "name": "/vol/bench_nvme/ns1", "os_type": "linux", "space": {"size": "64M"}}),
    )
    .await?;
    let uuid: uuid::Uuid = ns[0]["uuid"].as_str().context("ns uuid")?.parse()?;
    post(
        &c,
        "/api/protocols/nvme/subsystem-maps",
        json!({"svm": {"name": "svm1"}, "subsystem": {"name": "bench_sub"}, "namespace": {"name": "/vol/bench_nvme/ns1"}}),
    )
    .await?;
    step("bench nvme: subsystem configured");
    let brick_args = json!({"protocol": "nvme", "nqn": nqn.as_str(), "ports": NVME_PORTS,
                            "uuid": uuid.to_string()});
    for rep in 0..reps() {
        for method in order(rep) {
            let s = match method {
                "host-storage" => hs_nvme(&nqn, uuid, rep + 1 == reps()).await?,
                _ => bare_nvme(nqn.as_str(), &uuid.to_string())?,
            };
            record("nvme", method, rep, &s)?;
        }
        if let Some(s) = osbrick(&brick_args)? {
            nvme_clean(nqn.as_str(), &uuid.to_string())?;
            record("nvme", "os-brick", rep, &s)?;
        }
    }
    Ok(())
}
