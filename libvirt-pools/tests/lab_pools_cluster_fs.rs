//! Lab tier: libvirt `fs` pools on cluster file systems. A LUN of the simulator is attached
//! over two iSCSI portals, its multipath map found by serial, the cluster stack brought up
//! and the file system made by cluster-fs (OCFS2 on o2cb, GFS2 on corosync + dlm_controld);
//! then libvirtd (started by `lab/guest-init.sh`) defines, builds and starts an `fs` pool on
//! the map: libvirt runs `mount -t ocfs2|gfs2` itself. Run by `cargo xtask lab lab_pools`.

#[path = "../../cluster-fs/tests/lab_cluster_common/mod.rs"]
mod lab_cluster_common;
#[path = "../../host-storage/tests/lab_common/mod.rs"]
mod lab_common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, ensure, Context, Result};
use cluster_fs::gfs2::Gfs2Format;
use cluster_fs::ocfs2::Ocfs2Format;
use cluster_fs::{Identity, Label, LockTable, TargetDevice};
use host_storage::iscsi::{ConnectUndo, Iscsi};
use host_storage::multipath::Multipath;
use host_storage::{Change, Iqn, LunSerial, SystemRunner};
use lab_cluster_common::{attach, delete_mapped_lun, gfs2_one_node, mapped_lun, o2cb_one_node};
use lab_common::{payload, sh, sim, step};
use libvirt_pools::{
    FsFormat, Libvirt, Outcome, PoolDef, PoolName, PoolSpec, PoolState, Protocol, RemoveMode,
    VolumeDef, VolumeFormat, VolumeName,
};

const MIB: u64 = 1 << 20;
/// LUN numbers of the two pool LUNs (host-storage uses 3 and 4, cluster-fs 10, 11 and 13,
/// lab_pools.rs 12).
const OCFS2_LUN_ID: u64 = 14;
const GFS2_LUN_ID: u64 = 15;
/// Virtual size of the qcow2 volume made in each pool.
const DISK_SIZE: u64 = 64 * MIB;

async fn libvirt() -> Result<Libvirt> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match Libvirt::connect("qemu:///system").await {
            Ok(lv) => return Ok(lv),
            Err(e) if Instant::now() >= deadline => return Err(e.into()),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// `statvfs` of a mounted directory, as `stat -f` prints it: fragment size, total blocks,
/// blocks available to unprivileged users.
fn statvfs(dir: &Path) -> Result<(u64, u64, u64)> {
    let out = sh(
        "stat",
        &["-f", "-c", "%S %b %a", &dir.display().to_string()],
    )?;
    let v = out
        .split_whitespace()
        .map(str::parse::<u64>)
        .collect::<Result<Vec<_>, _>>()?;
    ensure!(v.len() == 3, "stat -f printed {out:?}");
    Ok((v[0], v[1], v[2]))
}

/// One `fs` pool to exercise.
struct FsPool {
    name: PoolName,
    target: PathBuf,
    format: FsFormat,
    /// The map, `/dev/mapper/<wwid>`.
    device: String,
    /// Size of the LUN under the file system.
    lun_size: u64,
    /// How much less than the LUN the file system reports as its size (statvfs blocks):
    /// OCFS2 counts every cluster of the device (journals and system files show as
    /// allocation); GFS2 leaves out its first blocks and the resource group headers.
    overhead: std::ops::RangeInclusive<u64>,
    /// The DLM lockspace the mount must join (GFS2 with lock_dlm).
    lockspace: Option<&'static str>,
}

/// The libvirt part, on a device that already holds the cluster file system: ensure
/// (defines, builds the mount point, starts = mounts), a qcow2 volume uploaded and
/// downloaded through libvirt streams, pool info against statvfs and the LUN size, then
/// destroy (unmounts), undefine and remove.
async fn pool_round_trip(lv: Libvirt, p: FsPool) -> Result<()> {
    let spec = PoolSpec::new(PoolDef::fs(
        p.name.clone(),
        p.device.clone(),
        p.format,
        p.target.display().to_string(),
    ))
    .for_protocol(Protocol::Iscsi)
    .with_autostart(false);
    assert_eq!(lv.pools().ensure(&spec).await?, Outcome::Changed);
    assert_eq!(lv.pools().ensure(&spec).await?, Outcome::Unchanged);
    let lines = lab_common::mountinfo_lines(&p.target)?;
    assert_eq!(lines.len(), 1, "{lines:?}");
    let fields: Vec<&str> = lines[0].split(' ').collect();
    let sep = fields.iter().position(|f| *f == "-").context("mountinfo")?;
    assert_eq!(
        (fields[sep + 1], fields[sep + 2]),
        (p.format.as_str(), p.device.as_str()),
        "{lines:?}"
    );
    // libvirt's default options for the mounts it makes.
    let opts: Vec<&str> = fields[5].split(',').collect();
    for o in ["nosuid", "nodev", "noexec"] {
        assert!(opts.contains(&o), "{o} not in {opts:?}");
    }
    if let Some(ls) = p.lockspace {
        let lockspaces = sh("dlm_tool", &["ls"])?;
        assert!(
            lockspaces
                .lines()
                .any(|l| l.split_whitespace().eq(["name", ls])),
            "{lockspaces}"
        );
    }
    step("pool started: libvirt mounted the cluster fs");

    let info = lv.pools().info(&p.name).await?;
    assert_eq!((info.active, info.state), (true, PoolState::Running));
    let (frsize, blocks, avail) = statvfs(&p.target)?;
    assert_eq!(info.capacity, frsize * blocks, "{info:?}");
    assert_eq!(info.available, frsize * avail, "{info:?}");
    let overhead = p
        .lun_size
        .checked_sub(info.capacity)
        .context("fs larger than LUN")?;
    assert!(
        p.overhead.contains(&overhead),
        "capacity {} of a {} byte LUN: {overhead} bytes less, expected {:?}",
        info.capacity,
        p.lun_size,
        p.overhead
    );
    assert_eq!(overhead % frsize, 0);
    assert!(
        0 < info.allocation && info.allocation < info.capacity,
        "{info:?}"
    );
    step(&format!(
        "pool info: capacity {} allocation {} available {} (LUN {}, fragment {frsize})",
        info.capacity, info.allocation, info.available, p.lun_size
    ));

    // A qcow2 volume made by libvirt (qemu-img), then replaced through an upload stream by
    // a qcow2 image holding a known payload, downloaded again and compared.
    let vols = lv.volumes(&p.name);
    let disk = VolumeDef::new(
        VolumeName::new("vm1.qcow2")?,
        DISK_SIZE,
        VolumeFormat::Qcow2,
    );
    assert_eq!(vols.create(&disk).await?, Outcome::Changed);
    assert_eq!(vols.create(&disk).await?, Outcome::Unchanged);
    let file = p.target.join("vm1.qcow2");
    let head = std::fs::read(&file).with_context(|| file.display().to_string())?;
    assert_eq!(&head[..4], b"QFI\xfb");

    let work = PathBuf::from(format!("/tmp/{}-work", p.name));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let data = payload(p.format.as_str());
    let raw = work.join("src.raw");
    std::fs::write(&raw, &data)?;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&raw)?
        .set_len(DISK_SIZE)?;
    let image = work.join("src.qcow2");
    sh(
        "qemu-img",
        &[
            "convert",
            "-f",
            "raw",
            "-O",
            "qcow2",
            &raw.display().to_string(),
            &image.display().to_string(),
        ],
    )?;
    let image_bytes = std::fs::read(&image)?;
    // The upload writes from offset 0 without truncating: the image must cover the file.
    assert!(image_bytes.len() > head.len());
    let sent = vols.upload_file(&disk.name, &image).await?;
    assert_eq!(sent, image_bytes.len() as u64);
    lv.pools().refresh(&p.name).await?;
    let vi = vols.info(&disk.name).await?;
    assert_eq!(
        (vi.capacity, vi.format),
        (DISK_SIZE, Some(VolumeFormat::Qcow2)),
        "{vi:?}"
    );
    assert_eq!(std::fs::read(&file)?, image_bytes, "file on the cluster fs");
    let back = work.join("back.qcow2");
    let got = vols.download_file(&disk.name, &back).await?;
    assert_eq!(got, image_bytes.len() as u64);
    assert_eq!(std::fs::read(&back)?, image_bytes);
    let back_raw = work.join("back.raw");
    sh(
        "qemu-img",
        &[
            "convert",
            "-f",
            "qcow2",
            "-O",
            "raw",
            &back.display().to_string(),
            &back_raw.display().to_string(),
        ],
    )?;
    let guest_view = std::fs::read(&back_raw)?;
    assert_eq!(guest_view.len() as u64, DISK_SIZE);
    assert!(guest_view[..data.len()] == data[..], "payload differs");
    assert!(guest_view[data.len()..].iter().all(|b| *b == 0));
    std::fs::remove_dir_all(&work)?;
    step("qcow2 volume uploaded and downloaded through libvirt");

    assert_eq!(vols.delete(&disk.name).await?, Outcome::Changed);
    assert!(!file.exists());
    assert_eq!(vols.delete(&disk.name).await?, Outcome::Unchanged);

    assert_eq!(lv.pools().destroy(&p.name).await?, Outcome::Changed);
    assert!(lab_common::mountinfo_lines(&p.target)?.is_empty());
    assert_eq!(lv.pools().destroy(&p.name).await?, Outcome::Unchanged);
    assert_eq!(lv.pools().undefine(&p.name).await?, Outcome::Changed);
    assert_eq!(lv.pools().get(&p.name).await?, None);
    assert_eq!(
        lv.pools().remove(&p.name, RemoveMode::KeepData).await?,
        Outcome::Unchanged
    );
    step("pool destroyed (unmounted), undefined");
    Ok(())
}

/// Runs [`pool_round_trip`] as its own task so that a failed assertion still reaches the
/// clean-up: the pool removed and its file system unmounted, whatever happened.
async fn pool_round_trip_then_clean(lv: &Libvirt, p: FsPool) -> Result<()> {
    let (name, target) = (p.name.clone(), p.target.clone());
    let outcome = tokio::spawn(pool_round_trip(lv.clone(), p)).await;
    let cleaned = async {
        lv.pools().remove(&name, RemoveMode::KeepData).await?;
        if !lab_common::mountinfo_lines(&target)?.is_empty() {
            sh("umount", &[&target.display().to_string()])?;
        }
        anyhow::Ok(())
    }
    .await;
    match outcome {
        Ok(result) => result.and(cleaned),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(anyhow!("pool task: {e}")),
    }
}

/// The map's device and its identity, checked against sysfs by cluster-fs before mkfs.
fn map_device(map_name: &str) -> Result<TargetDevice> {
    Ok(TargetDevice::new(
        format!("/dev/mapper/{map_name}"),
        Identity::wwid(map_name)?,
    )?)
}

/// Detaches the LUN (map, paths, the sessions this test made) and deletes it on the
/// simulator.
async fn detach_and_delete(
    c: &ontap_client::Client,
    vol: &str,
    (iscsi, conn, mp, iqn): (
        Iscsi<SystemRunner>,
        ConnectUndo,
        Multipath<SystemRunner>,
        Iqn,
    ),
    serial: &LunSerial,
) -> Result<()> {
    mp.remove_lun(serial).await?;
    assert!(mp.find_lun_map(serial)?.is_none());
    iscsi.disconnect(&conn).await?;
    // No other lab test holds a session on this target while this one runs
    // (--test-threads=1, and each test logs out what it logged in).
    assert!(iscsi.target_sessions(&iqn)?.is_empty());
    delete_mapped_lun(c, vol).await?;
    Ok(())
}

#[tokio::test]
#[ignore = "lab tier: needs the lab guest kernel (run by cargo xtask lab)"]
async fn lab_pools_fs_on_ocfs2_multipath_lun() -> Result<()> {
    step("start");
    let c = sim()?;
    let vol = "lab_poolocfs2";
    // The OCFS2 `vmstore` type needs at least 2 GiB (the LUN file is sparse).
    let lun_size = 3 << 30;
    let (iqn, serial) = mapped_lun(&c, vol, OCFS2_LUN_ID, ("4G", "3G")).await?;
    let (iscsi, conn, mp, map) = attach(&iqn, &serial, OCFS2_LUN_ID).await?;
    step("LUN on a two-path multipath map");

    // cluster-fs's lab test may have registered the same cluster earlier in this boot.
    let was_online = std::path::Path::new("/sys/kernel/config/cluster/labcl").exists();
    let o2cb = o2cb_one_node("labcl").await?;
    let expected = if was_online {
        Change::Unchanged
    } else {
        Change::Changed
    };
    assert_eq!(o2cb.registered, expected);
    let dev = map_device(&map.name)?;
    let format = Ocfs2Format::new(
        dev.clone(),
        Label::parse("labpool")?,
        o2cb.cluster.clone(),
        2,
    )?;
    assert_eq!(
        o2cb.node.format_ocfs2(&format).await?.change,
        Change::Changed
    );
    step("o2cb cluster online, OCFS2 made");

    let lv = libvirt().await?;
    let result = pool_round_trip_then_clean(
        &lv,
        FsPool {
            name: PoolName::new("lab-fs-ocfs2")?,
            target: PathBuf::from("/tmp/lab-pool-ocfs2"),
            format: FsFormat::Ocfs2,
            device: dev.arg(),
            lun_size,
            // 1 MiB clusters on a 3 GiB LUN: all of it.
            overhead: 0..=0,
            lockspace: None,
        },
    )
    .await;
    let cleaned = detach_and_delete(&c, vol, (iscsi, conn, mp, iqn), &serial).await;
    result.and(cleaned)?;
    step("end");
    Ok(())
}

#[tokio::test]
#[ignore = "lab tier: needs the lab guest kernel (run by cargo xtask lab)"]
async fn lab_pools_fs_on_gfs2_multipath_lun() -> Result<()> {
    step("start");
    let c = sim()?;
    let vol = "lab_poolgfs2";
    let lun_size = 512 * MIB;
    let (iqn, serial) = mapped_lun(&c, vol, GFS2_LUN_ID, ("1G", "512M")).await?;
    let (iscsi, conn, mp, map) = attach(&iqn, &serial, GFS2_LUN_ID).await?;
    step("LUN on a two-path multipath map");

    let stack = gfs2_one_node("labpgfs").await?;
    let dev = map_device(&map.name)?;
    let table = LockTable::parse("labpgfs:poolfs")?;
    stack.corosync.check_lock_table(&table)?;
    let format = Gfs2Format::new(dev.clone(), table, 1)?;
    assert_eq!(
        stack.node.format_gfs2(&format).await?.change,
        Change::Changed
    );
    step("corosync quorate, dlm_controld up, GFS2 made");

    let lv = libvirt().await?;
    let result = pool_round_trip_then_clean(
        &lv,
        FsPool {
            name: PoolName::new("lab-fs-gfs2")?,
            target: PathBuf::from("/tmp/lab-pool-gfs2"),
            format: FsFormat::Gfs2,
            device: dev.arg(),
            lun_size,
            // 112 KiB with gfs2-utils 3.5 on 512 MiB; allow up to 1 MiB.
            overhead: 4096..=MIB,
            lockspace: Some("poolfs"),
        },
    )
    .await;
    // The lockspace goes with the unmount, before dlm_controld and corosync are killed.
    let lockspaces = sh("dlm_tool", &["ls"]);
    drop(stack);
    let cleaned = detach_and_delete(&c, vol, (iscsi, conn, mp, iqn), &serial).await;
    result.and(cleaned)?;
    let lockspaces = lockspaces?;
    assert!(
        !lockspaces
            .lines()
            .any(|l| l.split_whitespace().eq(["name", "poolfs"])),
        "{lockspaces}"
    );
    step("end");
    Ok(())
}
