//! Lab tier: iSCSI against LIO configured by ontap-sim's kernel backend (two portals,
//! CHAP), dm-multipath, path failure and return, clean detach. Run by `cargo xtask lab`.

mod lab_common;

use std::io::{Read, Seek, SeekFrom, Write};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use host_storage::files::HostRoot;
use host_storage::identity::initiator_iqn;
use host_storage::iscsi::{Chap, ChapCredentials, Iscsi, IscsiTarget, NodeSettings};
use host_storage::multipath::{MapRef, Multipath};
use host_storage::parse::Portal;
use host_storage::{Iqn, LunSerial, SystemRunner};
use lab_common::{payload, post, sh, sim, step, Volume};
use ontap_client::SecretString;
use serde_json::json;

const LUN_ID: u64 = 3;

async fn wait_map(
    mp: &Multipath<SystemRunner>,
    serial: &LunSerial,
    paths: usize,
) -> Result<MapRef> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(m) = mp.find_lun_map(serial)? {
            if m.paths.len() == paths {
                return Ok(m);
            }
        }
        ensure!(
            Instant::now() < deadline,
            "no multipath map with {paths} paths for {serial}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Paths multipathd reports active for the map (`dm_st` "active", `chk_st` "ready").
fn active_paths(map: &str) -> Result<usize> {
    let out = sh("multipathd", &["show", "paths", "format", "%m %t %T"])?;
    Ok(out
        .lines()
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() == 3 && f[0] == map && f[1] == "active" && f[2] == "ready"
        })
        .count())
}

async fn wait_active(map: &str, n: usize, within: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    while active_paths(map)? != n {
        ensure!(
            Instant::now() < deadline,
            "map {map}: not {n} active paths after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Ok(())
}

fn write_at(dev: &str, offset: u64, data: &[u8]) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(dev)
        .with_context(|| dev.to_owned())?;
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

/// A LUN of `size` in a new volume, mapped as `LUN_ID`-relative `lun_id` to the igroup of
/// this host's initiator; returns the target IQN, the LUN serial and the backend file.
async fn mapped_lun(
    c: &ontap_client::Client,
    vol: &str,
    lun_id: u64,
) -> Result<(Iqn, LunSerial, std::path::PathBuf, Iqn)> {
    let initiator = initiator_iqn(&HostRoot::system())?.context("no initiator name")?;
    let v = Volume::create(c, vol, "1G", false).await?;
    let lun = post(
        c,
        "/api/storage/luns",
        json!({"svm": {"name": "svm1"}, "name": format!("/vol/{vol}/lun1"), "os_type": "linux",
               "space": {"size": "64M"}}),
    )
    .await?;
    let serial = LunSerial::parse(lun[0]["serial_number"].as_str().context("serial")?)?;
    let iqn = lab_common::map_lun_to_lab_igroup(
        c,
        &format!("/vol/{vol}/lun1"),
        lun_id,
        initiator.as_str(),
    )
    .await?;
    let iqn = Iqn::parse(&iqn)?;
    Ok((iqn, serial, v.backend_dir().join("lun1"), initiator))
}

async fn discover_both(iscsi: &Iscsi<SystemRunner>, iqn: &Iqn) -> Result<IscsiTarget> {
    let found = iscsi
        .discover(&Portal {
            address: "127.0.1.3".into(),
            port: 3260,
        })
        .await?;
    let mut portals: Vec<String> = found
        .iter()
        .map(|t| format!("{}:{}", t.portal.address, t.portal.port))
        .collect();
    portals.sort();
    assert_eq!(portals, ["127.0.1.3:3260", "127.0.1.4:3260"]);
    Ok(IscsiTarget::from_discovery(iqn, &found)?)
}

#[tokio::test]
#[ignore = "lab tier: needs the lab guest kernel (run by cargo xtask lab)"]
async fn lab_iscsi_two_portals_multipath_path_failure() -> Result<()> {
    step("start");
    let c = sim()?;
    let root = HostRoot::system();
    let (iqn, serial, lun_file, _) = mapped_lun(&c, "lab_iscsi", LUN_ID).await?;
    step("target configured");

    let iscsi = Iscsi::new(SystemRunner::new(), root.clone());
    let target = discover_both(&iscsi, &iqn).await?;
    let conn = iscsi
        .connect(&target, &NodeSettings::default(), None)
        .await?;
    assert_eq!(conn.logins.len(), 2);
    let paths = iscsi
        .attach_lun(&iqn, LUN_ID, &serial, Duration::from_secs(30))
        .await?;
    assert_eq!((paths.paths.len(), paths.sessions), (2, 2));
    step("logged in, LUN on two paths");
    let v = sh("iscsiadm", &["--version"])?;
    lab_common::keep_fixture(
        "iscsiadm-session.txt",
        "iscsiadm -m session",
        &v,
        &sh("iscsiadm", &["-m", "session"])?,
    )?;
    lab_common::keep_fixture(
        "iscsiadm-session-P3.txt",
        "iscsiadm -m session -P 3",
        &v,
        &sh("iscsiadm", &["-m", "session", "-P", "3"])?,
    )?;

    let mp = Multipath::new(SystemRunner::new(), root.clone());
    let map = wait_map(&mp, &serial, 2).await?;
    let dev = format!("/dev/mapper/{}", map.name);
    wait_active(&map.name, 2, Duration::from_secs(30)).await?;
    step("multipath map with two active paths");
    let mpv = "multipath-tools 0.9.4 (Debian 12)";
    lab_common::keep_fixture(
        "multipath-ll.txt",
        "multipath -ll",
        mpv,
        &sh("multipath", &["-ll"])?,
    )?;
    lab_common::keep_fixture(
        "multipathd-show-maps-json.txt",
        "multipathd show maps json",
        mpv,
        &sh("multipathd", &["show", "maps", "json"])?,
    )?;
    let maps = mp.maps().await?;
    assert!(format!("{maps:?}").contains(&map.name), "{maps:?}");

    // Host writes through the map; the backend LUN file holds the bytes.
    let data = payload("iscsi");
    write_at(&dev, 0, &data)?;
    assert_eq!(read_at(&lun_file, 0, data.len())?, data);

    // Path failure while writing: drop the traffic of the second portal.
    let portal2 = [
        "-p",
        "tcp",
        "-d",
        "127.0.1.4",
        "--dport",
        "3260",
        "-j",
        "DROP",
    ];
    let mut add = vec!["-I", "INPUT"];
    add.extend(portal2);
    sh("iptables", &add)?;
    let writer = {
        let dev = dev.clone();
        std::thread::spawn(move || -> Result<()> {
            for i in 0..20u64 {
                write_at(&dev, (2 + i) << 20, &payload(&format!("io{i}")))?;
                std::thread::sleep(Duration::from_millis(500));
            }
            Ok(())
        })
    };
    wait_active(&map.name, 1, Duration::from_secs(60)).await?;
    step("one path failed, I/O goes on");
    let mut del = vec!["-D", "INPUT"];
    del.extend(portal2);
    sh("iptables", &del)?;
    writer.join().expect("writer thread")?;
    for i in 0..20u64 {
        assert_eq!(
            read_at(&lun_file, (2 + i) << 20, 1 << 20)?,
            payload(&format!("io{i}")),
            "block {i}"
        );
    }
    wait_active(&map.name, 2, Duration::from_secs(90)).await?;
    step("path reinstated");

    // Detach: map and paths, then the sessions and node records.
    let removed = mp.remove_lun(&serial).await?;
    assert_eq!(removed.map.as_deref(), Some(map.name.as_str()));
    assert_eq!(removed.paths.len(), 2);
    iscsi.disconnect(&conn).await?;
    assert!(iscsi.target_sessions(&iqn)?.is_empty());
    assert!(mp.find_lun_map(&serial)?.is_none());
    assert!(!std::path::Path::new(&dev).exists());
    for (p, _) in &target.portals {
        assert!(
            iscsi.record_file(&iqn, p).is_none(),
            "record left behind at {p}"
        );
    }
    step("end");
    Ok(())
}

/// Runs after the test above (libtest orders by name): once CHAP is set for the
/// initiator, LIO requires it on every login.
#[tokio::test]
#[ignore = "lab tier: needs the lab guest kernel (run by cargo xtask lab)"]
async fn lab_iscsi_with_chap_login() -> Result<()> {
    step("start");
    let c = sim()?;
    let root = HostRoot::system();
    let (iqn, serial, lun_file, initiator) = mapped_lun(&c, "lab_iscsichap", LUN_ID + 1).await?;
    post(
        &c,
        "/api/protocols/san/iscsi/credentials",
        json!({"svm": {"name": "svm1"}, "initiator": initiator.as_str(), "authentication_type": "chap",
               "chap": {"inbound": {"user": "labuser", "password": "lab-chap-secret-1"}}}),
    )
    .await?;
    let iscsi = Iscsi::new(SystemRunner::new(), root.clone());
    let target = discover_both(&iscsi, &iqn).await?;

    // A wrong secret is refused by the target and leaves nothing behind.
    let bad = Chap {
        initiator: ChapCredentials::new(
            "labuser",
            SecretString::from("wrong-secret-12".to_owned()),
        )?,
        target: None,
    };
    assert!(iscsi
        .connect(&target, &NodeSettings::default(), Some(&bad))
        .await
        .is_err());
    assert!(iscsi.target_sessions(&iqn)?.is_empty());
    for (p, _) in &target.portals {
        assert!(
            iscsi.record_file(&iqn, p).is_none(),
            "record left behind at {p}"
        );
    }
    step("wrong secret refused");

    let chap = Chap {
        initiator: ChapCredentials::new(
            "labuser",
            SecretString::from("lab-chap-secret-1".to_owned()),
        )?,
        target: None,
    };
    let conn = iscsi
        .connect(&target, &NodeSettings::default(), Some(&chap))
        .await;
    if conn.is_err() {
        let acl =
            format!("/sys/kernel/config/target/iscsi/{iqn}/tpgt_1/acls/{initiator}/auth/userid");
        step(&format!(
            "CHAP login refused; LIO ACL userid reads {:?}",
            std::fs::read_to_string(acl)
        ));
    }
    let conn = conn?;
    assert_eq!(conn.logins.len(), 2);
    let paths = iscsi
        .attach_lun(&iqn, LUN_ID + 1, &serial, Duration::from_secs(30))
        .await?;
    assert_eq!(paths.paths.len(), 2);
    let data = payload("chap");
    let disk = format!("/dev/{}", paths.paths[0].1);
    write_at(&disk, 0, &data)?;
    assert_eq!(read_at(&lun_file, 0, data.len())?, data);
    let mp = Multipath::new(SystemRunner::new(), root.clone());
    let _ = wait_map(&mp, &serial, 2).await?;
    mp.remove_lun(&serial).await?;
    iscsi.disconnect(&conn).await?;
    assert!(iscsi.target_sessions(&iqn)?.is_empty());
    lab_common::remove_chap(&c, initiator.as_str()).await?;
    step("end");
    Ok(())
}
