//! Lab tier: an OCFS2 cluster file system (o2cb stack, one node) on an iSCSI LUN of the
//! simulator, attached over two portals with dm-multipath, formatted and mounted by
//! cluster-fs. Run by `cargo xtask lab` (the guest mounts `ocfs2_dlmfs` on `/dlm`).

#[path = "../../host-storage/tests/lab_common/mod.rs"]
mod lab_common;

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use cluster_fs::gfs2::{CorosyncConf, CorosyncNode, DlmConf, Gfs2Format};
use cluster_fs::ocfs2::{ClusterConf, HeartbeatMode, Ocfs2Cluster, Ocfs2Format, Ocfs2Node};
use cluster_fs::{
    ClusterHost, ClusterMount, ClusterName, FsKind, Identity, Label, LockTable, NodeName,
    TargetDevice,
};
use host_storage::files::HostRoot;
use host_storage::identity::initiator_iqn;
use host_storage::iscsi::{Iscsi, IscsiTarget, NodeSettings};
use host_storage::multipath::{MapRef, Multipath};
use host_storage::parse::Portal;
use host_storage::{Change, Iqn, LunSerial, SystemRunner};
use lab_common::{get, payload, post, sh, sim, step, Volume};
use ontap_client::Query;
use serde_json::json;

/// LUN number of the OCFS2 LUN (the host-storage lab tests use 3 and 4); the OCFS2
/// `vmstore` type needs at least 2 GiB (the LUN file is sparse).
const LUN_ID: u64 = 10;
/// LUN number of the OCFS2 LUN's FlexClone.
const CLONE_LUN_ID: u64 = 13;
/// LUN number of the GFS2 LUN.
const GFS2_LUN_ID: u64 = 11;

/// A daemon started by the test, killed when dropped.
struct Daemon(std::process::Child);

impl Daemon {
    fn start(program: &str, args: &[&str], log: &str) -> Result<Daemon> {
        let out = std::env::var("LAB_OUT").unwrap_or_else(|_| "/tmp".into());
        let f = std::fs::File::create(std::path::Path::new(&out).join(log))?;
        let child = std::process::Command::new(program)
            .args(args)
            .stdout(f.try_clone()?)
            .stderr(f)
            .spawn()
            .with_context(|| format!("starting {program}"))?;
        Ok(Daemon(child))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `program args` until it exits 0.
async fn wait_ok(program: &str, args: &[&str], within: Duration) -> Result<String> {
    let deadline = Instant::now() + within;
    loop {
        match sh(program, args) {
            Ok(out) => return Ok(out),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// Logs in to both portals and waits for the LUN's two-path map.
async fn attach(
    iqn: &Iqn,
    serial: &LunSerial,
    lun_id: u64,
) -> Result<(
    Iscsi<SystemRunner>,
    host_storage::iscsi::ConnectUndo,
    Multipath<SystemRunner>,
    MapRef,
)> {
    let root = HostRoot::system();
    let iscsi = Iscsi::new(SystemRunner::new(), root.clone());
    let found = iscsi
        .discover(&Portal {
            address: "127.0.1.3".into(),
            port: 3260,
        })
        .await?;
    let target = IscsiTarget::from_discovery(iqn, &found)?;
    let conn = iscsi
        .connect(&target, &NodeSettings::default(), None)
        .await?;
    iscsi
        .attach_lun(iqn, lun_id, serial, Duration::from_secs(30))
        .await?;
    let mp = Multipath::new(SystemRunner::new(), root);
    let map = wait_map(&mp, serial).await?;
    Ok((iscsi, conn, mp, map))
}

async fn wait_map(mp: &Multipath<SystemRunner>, serial: &LunSerial) -> Result<MapRef> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(m) = mp.find_lun_map(serial)? {
            if m.paths.len() == 2 {
                return Ok(m);
            }
        }
        ensure!(
            Instant::now() < deadline,
            "no multipath map with 2 paths for {serial}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// A LUN in a new volume, mapped as `lun_id` to the igroup of this host.
async fn mapped_lun(
    c: &ontap_client::Client,
    vol: &str,
    lun_id: u64,
    (size_vol, size_lun): (&str, &str),
) -> Result<(Iqn, LunSerial)> {
    let initiator = initiator_iqn(&HostRoot::system())?.context("no initiator name")?;
    Volume::create(c, vol, size_vol, false).await?;
    let lun = post(
        c,
        "/api/storage/luns",
        json!({"svm": {"name": "svm1"}, "name": format!("/vol/{vol}/lun1"), "os_type": "linux",
               "space": {"size": size_lun}}),
    )
    .await?;
    let serial = LunSerial::parse(lun[0]["serial_number"].as_str().context("serial")?)?;
    let igroups = get(
        c,
        "/api/protocols/san/igroups",
        &Query::new().filter("name", "lab_ig"),
    )
    .await?;
    if igroups.is_empty() {
        post(
            c,
            "/api/protocols/san/igroups",
            json!({"svm": {"name": "svm1"}, "name": "lab_ig", "os_type": "linux", "protocol": "iscsi",
                   "initiators": [{"name": initiator.as_str()}]}),
        )
        .await?;
    }
    post(
        c,
        "/api/protocols/san/lun-maps",
        json!({"svm": {"name": "svm1"}, "lun": {"name": format!("/vol/{vol}/lun1")},
               "igroup": {"name": "lab_ig"}, "logical_unit_number": lun_id}),
    )
    .await?;
    let svc = get(
        c,
        "/api/protocols/san/iscsi/services",
        &Query::new().fields(["target"]),
    )
    .await?;
    let iqn = Iqn::parse(svc[0]["target"]["name"].as_str().context("target iqn")?)?;
    Ok((iqn, serial))
}

#[tokio::test]
#[ignore = "lab tier: needs the lab guest kernel (run by cargo xtask lab)"]
async fn lab_cluster_fs_ocfs2_o2cb_on_multipath_lun() -> Result<()> {
    step("start");
    let c = sim()?;
    let (iqn, serial) = mapped_lun(&c, "lab_ocfs2", LUN_ID, ("4G", "3G")).await?;
    let (iscsi, conn, mp, map) = attach(&iqn, &serial, LUN_ID).await?;
    step("LUN on a two-path multipath map");

    // One-node o2cb cluster named after this host, registered from the written cluster.conf.
    let host = sh("hostname", &[])?;
    let cl = ClusterName::parse("labcl")?;
    let mut conf = ClusterConf::default();
    assert_eq!(
        conf.add_cluster(Ocfs2Cluster::new(cl.clone(), HeartbeatMode::Local))?,
        Change::Changed
    );
    let added = conf.add_node(Ocfs2Node::new(
        cl.clone(),
        NodeName::parse(host.trim())?,
        0,
        "127.0.0.1".parse()?,
    )?)?;
    assert_eq!(added, Change::Changed);
    let node = ClusterHost::new(SystemRunner::new());
    node.write_cluster_conf(&conf)?;
    let registered = node.register_cluster(&cl).await?;
    assert_eq!(registered.change, Change::Changed);
    assert!(node.cluster_online(&cl).await?);
    assert_eq!(node.list_clusters().await?, vec![cl.clone()]);
    step("o2cb cluster registered");

    // The map is named by its WWID; the identity is checked against sysfs before mkfs.
    let dev = TargetDevice::new(
        format!("/dev/mapper/{}", map.name),
        Identity::wwid(&map.name)?,
    )?;
    let wrong = TargetDevice::new(
        format!("/dev/mapper/{}", map.name),
        Identity::wwid("3600a0980774f6a34663f57396c4f6b37")?,
    )?;
    assert!(node.check_identity(&wrong).is_err());
    let format = Ocfs2Format::new(dev.clone(), Label::parse("labvm")?, cl.clone(), 2)?;
    let formatted = node.format_ocfs2(&format).await?;
    assert_eq!(formatted.change, Change::Changed);
    assert_eq!(formatted.label, "labvm");
    assert!(formatted.uuid.is_some(), "{formatted:?}");
    // A second format of the same label is a no-op.
    assert_eq!(node.format_ocfs2(&format).await?.change, Change::Unchanged);
    let stats = node.ocfs2_stats(&dev).await?;
    assert_eq!((stats.label.as_str(), stats.node_slots), ("labvm", 2));
    step("formatted");

    let target_dir = std::path::PathBuf::from("/tmp/lab-ocfs2");
    let mount = ClusterMount::new(dev.arg(), &target_dir, FsKind::Ocfs2)?;
    let undo = node.mount(&mount).await?;
    let lines = lab_common::mountinfo_lines(&target_dir)?;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains(" - ocfs2 "), "{lines:?}");
    let data = payload("ocfs2");
    std::fs::write(target_dir.join("vm.img"), &data)?;
    sh("sync", &[])?;
    assert_eq!(std::fs::read(target_dir.join("vm.img"))?, data);
    let mounters = node.ocfs2_mounters(Some(&dev)).await?;
    assert_eq!(mounters.len(), 1, "{mounters:?}");
    step("mounted, data round trip");

    assert_eq!(node.undo(&undo.into()).await?, Change::Changed);
    assert!(lab_common::mountinfo_lines(&target_dir)?.is_empty());
    // The data survives the unmount.
    let again = node.mount(&mount).await?;
    assert_eq!(std::fs::read(target_dir.join("vm.img"))?, data);
    assert_eq!(node.undo(&again.into()).await?, Change::Changed);
    step("unmounted, data kept");

    // A FlexClone of the volume: its LUN file is in the btrfs snapshot; the LUN record is
    // created on it (the sim keeps an existing file) with a new serial, and mapped.
    post(
        &c,
        "/api/storage/volumes",
        json!({"name": "lab_ocfs2_clone", "svm": {"name": "svm1"},
               "clone": {"is_flexclone": true, "parent_volume": {"name": "lab_ocfs2"}}}),
    )
    .await?;
    let lun = post(
        &c,
        "/api/storage/luns",
        json!({"svm": {"name": "svm1"}, "name": "/vol/lab_ocfs2_clone/lun1", "os_type": "linux",
               "space": {"size": "3G"}}),
    )
    .await?;
    let clone_serial = LunSerial::parse(lun[0]["serial_number"].as_str().context("serial")?)?;
    assert_ne!(clone_serial, serial);
    post(
        &c,
        "/api/protocols/san/lun-maps",
        json!({"svm": {"name": "svm1"}, "lun": {"name": "/vol/lab_ocfs2_clone/lun1"},
               "igroup": {"name": "lab_ig"}, "logical_unit_number": CLONE_LUN_ID}),
    )
    .await?;
    iscsi
        .attach_lun(&iqn, CLONE_LUN_ID, &clone_serial, Duration::from_secs(30))
        .await?;
    let clone_map = wait_map(&mp, &clone_serial).await?;
    let clone_dev = TargetDevice::new(
        format!("/dev/mapper/{}", clone_map.name),
        Identity::wwid(&clone_map.name)?,
    )?;
    let clone_before = node.ocfs2_stats(&clone_dev).await?;
    assert_eq!(clone_before.uuid, stats.uuid);
    step("FlexClone LUN attached, same OCFS2 UUID as its parent");

    let recloned = node.reuuid_cloned_ocfs2(&clone_dev, &stats.uuid).await?;
    assert_eq!(recloned.change, Change::Changed);
    assert_ne!(recloned.uuid, stats.uuid);
    assert_eq!(recloned.label, "labvm-cloned");
    assert_eq!(
        node.reuuid_cloned_ocfs2(&clone_dev, &stats.uuid)
            .await?
            .change,
        Change::Unchanged
    );
    assert_eq!(node.ocfs2_stats(&dev).await?.uuid, stats.uuid);

    // Parent and clone mounted side by side; the clone holds the parent's data.
    let parent = node.mount(&mount).await?;
    let clone_dir = std::path::PathBuf::from("/tmp/lab-ocfs2-clone");
    let clone_mount = ClusterMount::new(clone_dev.arg(), &clone_dir, FsKind::Ocfs2)?;
    let clone = node.mount(&clone_mount).await?;
    assert_eq!(std::fs::read(clone_dir.join("vm.img"))?, data);
    std::fs::write(clone_dir.join("only-in-clone"), b"clone")?;
    assert!(!target_dir.join("only-in-clone").exists());
    assert_eq!(std::fs::read(target_dir.join("vm.img"))?, data);
    step("clone relabelled and mounted beside the original");
    assert_eq!(node.undo(&clone.into()).await?, Change::Changed);
    assert_eq!(node.undo(&parent.into()).await?, Change::Changed);

    mp.remove_lun(&clone_serial).await?;
    mp.remove_lun(&serial).await?;
    iscsi.disconnect(&conn).await?;
    assert!(iscsi.target_sessions(&iqn)?.is_empty());
    step("end");
    Ok(())
}

#[tokio::test]
#[ignore = "lab tier: needs the lab guest kernel (run by cargo xtask lab)"]
async fn lab_cluster_fs_gfs2_lock_dlm_on_multipath_lun() -> Result<()> {
    step("start");
    let c = sim()?;
    let (iqn, serial) = mapped_lun(&c, "lab_gfs2", GFS2_LUN_ID, ("1G", "512M")).await?;
    let (iscsi, conn, mp, map) = attach(&iqn, &serial, GFS2_LUN_ID).await?;
    step("LUN on a two-path multipath map");

    // Single-node corosync and dlm_controld from the files cluster-fs writes. The package's
    // sample corosync.conf (another cluster) is removed first: the guest's /etc is a tmpfs.
    let _ = std::fs::remove_file("/etc/corosync/corosync.conf");
    for d in [
        "/var/log/corosync",
        "/var/lib/corosync",
        "/run/dlm",
        "/etc/dlm",
    ] {
        std::fs::create_dir_all(d)?;
    }
    let host = sh("hostname", &[])?;
    let cl = ClusterName::parse("labgfs")?;
    let mut coro = CorosyncConf::new(cl.clone());
    assert_eq!(
        coro.add_node(CorosyncNode::new(
            1,
            NodeName::parse(host.trim())?,
            "127.0.0.1".parse()?
        )?)?,
        Change::Changed
    );
    let node = ClusterHost::new(SystemRunner::new());
    assert_eq!(node.write_corosync(&coro)?.change, Change::Changed);
    let dlm = DlmConf {
        enable_fencing: false,
        ..DlmConf::default()
    };
    assert_eq!(node.write_dlm_conf(&dlm)?.change, Change::Changed);
    assert_eq!(node.write_dlm_conf(&dlm)?.change, Change::Unchanged);
    let corosync = Daemon::start("corosync", &["-f"], "corosync.log")?;
    wait_ok("corosync-quorumtool", &["-s"], Duration::from_secs(60)).await?;
    let dlm_controld = Daemon::start("dlm_controld", &["--foreground"], "dlm_controld.log")?;
    wait_ok("dlm_tool", &["status"], Duration::from_secs(60)).await?;
    step("corosync quorate, dlm_controld up");

    let dev = TargetDevice::new(
        format!("/dev/mapper/{}", map.name),
        Identity::wwid(&map.name)?,
    )?;
    let table = LockTable::parse("labgfs:labfs")?;
    coro.check_lock_table(&table)?;
    assert!(coro
        .check_lock_table(&LockTable::parse("other:labfs")?)
        .is_err());
    let format = Gfs2Format::new(dev.clone(), table.clone(), 1)?;
    let formatted = node.format_gfs2(&format).await?;
    assert_eq!(formatted.change, Change::Changed);
    assert_eq!(formatted.label, "labgfs:labfs");
    assert_eq!(node.format_gfs2(&format).await?.change, Change::Unchanged);
    let info = node.gfs2_info(&dev).await?;
    assert_eq!(
        (info.lock_protocol.as_str(), info.lock_table.as_ref()),
        ("lock_dlm", Some(&table))
    );
    step("formatted");

    let target_dir = std::path::PathBuf::from("/tmp/lab-gfs2");
    let mount = ClusterMount::new(dev.arg(), &target_dir, FsKind::Gfs2)?;
    let undo = node.mount(&mount).await?;
    let lines = lab_common::mountinfo_lines(&target_dir)?;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains(" - gfs2 "), "{lines:?}");
    let lockspaces = sh("dlm_tool", &["ls"])?;
    assert!(lockspaces.contains("labfs"), "{lockspaces}");
    let data = payload("gfs2");
    std::fs::write(target_dir.join("vm.img"), &data)?;
    sh("sync", &[])?;
    assert_eq!(std::fs::read(target_dir.join("vm.img"))?, data);
    step("mounted with lock_dlm, data round trip");
    assert_eq!(node.undo(&undo.into()).await?, Change::Changed);
    let again = node.mount(&mount).await?;
    assert_eq!(std::fs::read(target_dir.join("vm.img"))?, data);
    assert_eq!(node.undo(&again.into()).await?, Change::Changed);
    assert!(lab_common::mountinfo_lines(&target_dir)?.is_empty());
    drop(dlm_controld);
    drop(corosync);

    mp.remove_lun(&serial).await?;
    iscsi.disconnect(&conn).await?;
    assert!(iscsi.target_sessions(&iqn)?.is_empty());
    step("end");
    Ok(())
}
