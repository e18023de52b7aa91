//! Lab tier: NVMe/TCP against nvmet configured by ontap-sim's kernel backend (two ports),
//! native NVMe multipath, the namespace found by UUID, path failure and return, clean
//! disconnect. Run by `cargo xtask lab`.

mod lab_common;

use std::io::{Read, Seek, SeekFrom, Write};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use host_storage::files::HostRoot;
use host_storage::nvmeof::{ConnectOptions, Controller, Nvme, Transport};
use host_storage::wait::{DeviceId, DeviceWaiter};
use host_storage::{HostName, Nqn, SystemRunner};
use lab_common::{payload, post, sh, sim, step, Volume};
use serde_json::json;

fn states(nvme: &Nvme<SystemRunner>, nqn: &Nqn) -> Result<Vec<(String, String)>> {
    let mut v: Vec<(String, String)> = nvme
        .controllers()?
        .into_iter()
        .filter(|c: &Controller| c.subsysnqn == nqn.as_str())
        .map(|c| {
            (
                c.address.split(',').next().unwrap_or_default().to_owned(),
                c.state,
            )
        })
        .collect();
    v.sort();
    Ok(v)
}

async fn wait_states(
    nvme: &Nvme<SystemRunner>,
    nqn: &Nqn,
    want: &[(&str, &str)],
    within: Duration,
) -> Result<()> {
    let deadline = Instant::now() + within;
    loop {
        let now = states(nvme, nqn)?;
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(a, s)| (a.to_string(), s.to_string()))
            .collect();
        if now == want {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "controllers {now:?}, wanted {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn write_at(dev: &std::path::Path, offset: u64, data: &[u8]) -> Result<()> {
    let mut f = std::fs::OpenOptions::new().write(true).open(dev)?;
    f.seek(SeekFrom::Start(offset))?;
    f.write_all(data)?;
    f.sync_all()?;
    Ok(())
}

fn read_at(path: &std::path::Path, offset: u64, len: usize) -> Result<Vec<u8>> {
    let mut f = std::fs::File::open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = vec![0; len];
    f.read_exact(&mut buf)?;
    Ok(buf)
}

#[tokio::test]
#[ignore = "lab tier: needs the lab guest kernel (run by cargo xtask lab)"]
async fn lab_nvme_tcp_two_paths_native_multipath() -> Result<()> {
    step("start");
    let c = sim()?;
    let root = HostRoot::system();
    let hostnqn = std::fs::read_to_string("/etc/nvme/hostnqn")?
        .trim()
        .to_owned();
    let vol = Volume::create(&c, "lab_nvme", "1G", false).await?;
    let sub = post(
        &c,
        "/api/protocols/nvme/subsystems",
        json!({"svm": {"name": "svm1"}, "name": "lab_sub", "os_type": "linux", "hosts": [{"nqn": hostnqn}]}),
    )
    .await?;
    let nqn = Nqn::parse(sub[0]["target_nqn"].as_str().context("target nqn")?)?;
    let ns = post(
        &c,
        "/api/storage/namespaces",
        json!({"svm": {"name": "svm1"}, "name": "/vol/lab_nvme/ns1", "os_type": "linux", "space": {"size": "64M"}}),
    )
    .await?;
    let ns_uuid: uuid::Uuid = ns[0]["uuid"].as_str().context("ns uuid")?.parse()?;
    post(
        &c,
        "/api/protocols/nvme/subsystem-maps",
        json!({"svm": {"name": "svm1"}, "subsystem": {"name": "lab_sub"}, "namespace": {"name": "/vol/lab_nvme/ns1"}}),
    )
    .await?;
    step("subsystem configured");

    let nvme = Nvme::new(SystemRunner::new(), root.clone());
    assert_eq!(nvme.native_multipath()?, Some(true));
    let p1 = Transport::tcp(HostName::parse("127.0.1.5")?);
    let p2 = Transport::tcp(HostName::parse("127.0.1.6")?);
    let found = nvme.discover(&p1).await?;
    assert!(
        found
            .iter()
            .any(|r| r.is_io_subsystem() && r.subnqn == nqn.as_str()),
        "{found:?}"
    );
    let opts = ConnectOptions {
        ctrl_loss_tmo: None,
        ..ConnectOptions::default()
    };
    let c1 = nvme.connect(&nqn, &p1, &opts).await?;
    let c2 = nvme.connect(&nqn, &p2, &opts).await?;
    assert_eq!((c1.controllers.len(), c2.controllers.len()), (1, 1));
    assert!(
        nvme.connect(&nqn, &p1, &opts).await?.controllers.is_empty(),
        "second connect is a no-op"
    );
    wait_states(
        &nvme,
        &nqn,
        &[("traddr=127.0.1.5", "live"), ("traddr=127.0.1.6", "live")],
        Duration::from_secs(20),
    )
    .await?;

    let waiter = DeviceWaiter::new(root.clone());
    let dev = waiter
        .wait(&DeviceId::NvmeUuid(ns_uuid), Duration::from_secs(30))
        .await?;
    step(&format!(
        "namespace {} found by UUID via {:?}",
        dev.name, dev.via
    ));
    let topo = nvme.topology().await?;
    assert!(format!("{topo:?}").contains(nqn.as_str()), "{topo:?}");
    let v = sh("nvme", &["version"])?;
    lab_common::keep_fixture(
        "nvme-list-subsys.json",
        "nvme list-subsys -o json",
        &v,
        &sh("nvme", &["list-subsys", "-o", "json"])?,
    )?;
    lab_common::keep_fixture(
        "nvme-discover.json",
        "nvme discover -t tcp -a 127.0.1.5 -s 4420 -o json",
        &v,
        &sh(
            "nvme",
            &[
                "discover",
                "-t",
                "tcp",
                "-a",
                "127.0.1.5",
                "-s",
                "4420",
                "-o",
                "json",
            ],
        )?,
    )?;

    let backend = vol.backend_dir().join("ns1");
    let data = payload("nvme");
    write_at(&dev.dev_node, 0, &data)?;
    assert_eq!(read_at(&backend, 0, data.len())?, data);

    // Path failure while writing: drop the second port's traffic; I/O goes on through the first.
    let rule = [
        "-p",
        "tcp",
        "-d",
        "127.0.1.6",
        "--dport",
        "4420",
        "-j",
        "DROP",
    ];
    let mut add = vec!["-I", "INPUT"];
    add.extend(rule);
    sh("iptables", &add)?;
    let writer = {
        let node = dev.dev_node.clone();
        std::thread::spawn(move || -> Result<()> {
            for i in 0..20u64 {
                write_at(&node, (2 + i) << 20, &payload(&format!("nv{i}")))?;
                std::thread::sleep(Duration::from_millis(500));
            }
            Ok(())
        })
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let s = states(&nvme, &nqn)?;
        if s.iter()
            .any(|(a, st)| a == "traddr=127.0.1.6" && st != "live")
        {
            break;
        }
        ensure!(Instant::now() < deadline, "second path never failed: {s:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    step("second path down, I/O goes on");
    let mut del = vec!["-D", "INPUT"];
    del.extend(rule);
    sh("iptables", &del)?;
    writer.join().expect("writer thread")?;
    for i in 0..20u64 {
        assert_eq!(
            read_at(&backend, (2 + i) << 20, 1 << 20)?,
            payload(&format!("nv{i}")),
            "block {i}"
        );
    }
    wait_states(
        &nvme,
        &nqn,
        &[("traddr=127.0.1.5", "live"), ("traddr=127.0.1.6", "live")],
        Duration::from_secs(120),
    )
    .await?;
    step("path reconnected");

    assert!(nvme.disconnect(&c2).await?.is_changed());
    assert!(nvme.disconnect(&c1).await?.is_changed());
    waiter.wait_gone(&dev.name, Duration::from_secs(30)).await?;
    assert_eq!(states(&nvme, &nqn)?, Vec::<(String, String)>::new());
    assert!(waiter.scan(&DeviceId::NvmeUuid(ns_uuid))?.is_none());
    step("per-controller disconnect done");

    // Both paths at once, then one disconnect by NQN (every controller is ours).
    let both = nvme
        .connect_paths(&nqn, &[p1.clone(), p2.clone()], &opts)
        .await?;
    assert_eq!(both.controllers.len(), 2, "{both:?}");
    assert!(
        nvme.connect_paths(&nqn, &[p1, p2], &opts)
            .await?
            .controllers
            .is_empty(),
        "second connect_paths is a no-op"
    );
    let dev = waiter
        .wait(&DeviceId::NvmeUuid(ns_uuid), Duration::from_secs(30))
        .await?;
    assert!(nvme.disconnect(&both).await?.is_changed());
    waiter.wait_gone(&dev.name, Duration::from_secs(30)).await?;
    assert_eq!(states(&nvme, &nqn)?, Vec::<(String, String)>::new());
    assert!(!nvme.disconnect(&both).await?.is_changed());
    step("end");
    Ok(())
}
