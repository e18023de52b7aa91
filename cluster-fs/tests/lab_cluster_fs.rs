//! Lab tier: an OCFS2 cluster file system (o2cb stack, one node) on an iSCSI LUN of the
//! simulator, attached over two portals with dm-multipath, formatted and mounted by
//! cluster-fs. Run by `cargo xtask lab` (the guest mounts `ocfs2_dlmfs` on `/dlm`).

mod lab_cluster_common;
#[path = "../../host-storage/tests/lab_common/mod.rs"]
mod lab_common;

use std::time::Duration;

use anyhow::{Context, Result};
use cluster_fs::gfs2::Gfs2Format;
use cluster_fs::ocfs2::Ocfs2Format;
use cluster_fs::{ClusterMount, FsKind, Identity, Label, LockTable, TargetDevice};
use host_storage::{Change, LunSerial};
use lab_cluster_common::{attach, gfs2_one_node, map_lun, mapped_lun, o2cb_one_node, wait_map};
use lab_common::{get, payload, post, sh, sim, step};
use ontap_client::Query;
use serde_json::json;

/// LUN number of the OCFS2 LUN (the host-storage lab tests use 3 and 4); the OCFS2
/// `vmstore` type needs at least 2 GiB (the LUN file is sparse).
const LUN_ID: u64 = 10;
/// LUN number of the OCFS2 LUN's FlexClone.
const CLONE_LUN_ID: u64 = 13;
/// LUN number of the GFS2 LUN.
const GFS2_LUN_ID: u64 = 11;

#[tokio::test]
#[ignore = "lab tier: needs the lab guest kernel (run by cargo xtask lab)"]
async fn lab_cluster_fs_ocfs2_o2cb_on_multipath_lun() -> Result<()> {
    step("start");
    let c = sim()?;
    let (iqn, serial) = mapped_lun(&c, "lab_ocfs2", LUN_ID, ("4G", "3G")).await?;
    let (iscsi, conn, mp, map) = attach(&iqn, &serial, LUN_ID).await?;
    step("LUN on a two-path multipath map");

    // One-node o2cb cluster named after this host, registered from the written cluster.conf.
    let o2cb = o2cb_one_node("labcl").await?;
    assert_eq!(o2cb.conf_written, Change::Changed);
    assert_eq!(o2cb.registered, Change::Changed);
    let (node, cl) = (&o2cb.node, o2cb.cluster.clone());
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

    // A FlexClone of the volume holds a copy of the LUN, as on ONTAP: a new serial,
    // unmapped; its file is in the clone's btrfs snapshot. Mapped, it is a LIO LUN.
    post(
        &c,
        "/api/storage/volumes",
        json!({"name": "lab_ocfs2_clone", "svm": {"name": "svm1"},
               "clone": {"is_flexclone": true, "parent_volume": {"name": "lab_ocfs2"}}}),
    )
    .await?;
    let cloned = get(
        &c,
        "/api/storage/luns",
        &Query::new()
            .filter("location.volume.name", "lab_ocfs2_clone")
            .fields(["serial_number", "space.size", "os_type", "status.mapped"]),
    )
    .await?;
    assert_eq!(cloned.len(), 1, "{cloned:?}");
    assert_eq!(cloned[0]["name"], "/vol/lab_ocfs2_clone/lun1");
    assert_eq!(
        (
            &cloned[0]["space"]["size"],
            &cloned[0]["os_type"],
            &cloned[0]["status"]["mapped"]
        ),
        (&json!(3u64 << 30), &json!("linux"), &json!(false))
    );
    let clone_serial = LunSerial::parse(cloned[0]["serial_number"].as_str().context("serial")?)?;
    assert_ne!(clone_serial, serial);
    map_lun(&c, "/vol/lab_ocfs2_clone/lun1", CLONE_LUN_ID).await?;
    iscsi
        .attach_lun(&iqn, CLONE_LUN_ID, &clone_serial, Duration::from_secs(30))
        .await?;
    let clone_map = wait_map(&mp, &clone_serial).await?;
    let clone_dev = TargetDevice::new(
        format!("/dev/mapper/{}", clone_map.name),
        Identity::wwid(&clone_map.name)?,
    )?;
    // The map was just made: udev and multipathd may still be setting it up, and an early
    // read of a fresh map has come back without the superblock on a loaded host. Settle and
    // read again, bounded; the data itself is never retried into shape.
    let mut tries = 0;
    let clone_before = loop {
        tries += 1;
        match node.ocfs2_stats(&clone_dev).await {
            Ok(s) => break s,
            Err(e) if tries < 20 => {
                println!("clone stats, try {tries}: {e}; settling udev");
                let _ = sh("udevadm", &["settle", "--timeout=10"]);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e.into()),
        }
    };
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

    // Single-node corosync and dlm_controld from the files cluster-fs writes.
    let stack = gfs2_one_node("labgfs").await?;
    assert_eq!(stack.corosync_written, Change::Changed);
    assert_eq!(stack.dlm_written, (Change::Changed, Change::Unchanged));
    let (node, coro) = (&stack.node, &stack.corosync);
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
    drop(stack);

    mp.remove_lun(&serial).await?;
    iscsi.disconnect(&conn).await?;
    assert!(iscsi.target_sessions(&iqn)?.is_empty());
    step("end");
    Ok(())
}
