//! Lab tier: libvirt storage pools on the simulator's storage, with libvirtd running in the
//! lab guest (started by `lab/guest-init.sh`): a `netfs` pool on an NFS export, an `iscsi`
//! pool on a mapped LUN and the host's `mpath` pool. Run by `cargo xtask lab`.

#[path = "../../host-storage/tests/lab_common/mod.rs"]
mod lab_common;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use lab_common::{open_default_policy, post, sim, step, Volume};
use libvirt_pools::{
    IscsiSource, Libvirt, Outcome, PoolDef, PoolName, PoolSpec, Protocol, RemoveMode, VolumeDef,
    VolumeFormat, VolumeName,
};
use serde_json::json;

const MIB: u64 = 1 << 20;
/// LUN number of the pool LUN (host-storage uses 3 and 4, cluster-fs 10 and 11).
const LUN_ID: u64 = 12;

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

fn mounted(target: &Path) -> Result<bool> {
    Ok(!lab_common::mountinfo_lines(target)?.is_empty())
}

#[tokio::test]
#[ignore = "lab tier: needs the lab guest kernel (run by cargo xtask lab)"]
async fn lab_pools_netfs_on_sim_nfs_export() -> Result<()> {
    step("start");
    let c = sim()?;
    open_default_policy(&c).await?;
    let vol = Volume::create(&c, "lab_poolnfs", "1G", true).await?;
    let lv = libvirt().await?;
    step("libvirtd connected");

    let name = PoolName::new("lab-netfs")?;
    let target = Path::new("/tmp/lab-pool-netfs");
    let spec = PoolSpec::new(PoolDef::nfs(
        name.clone(),
        "127.0.1.1",
        "/lab_poolnfs",
        Some(4),
        target.display().to_string(),
    ))
    .for_protocol(Protocol::Nfs)
    .with_autostart(false);
    assert_eq!(lv.pools().ensure(&spec).await?, Outcome::Changed);
    assert_eq!(lv.pools().ensure(&spec).await?, Outcome::Unchanged);
    let lines = lab_common::mountinfo_lines(target)?;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains(" - nfs4 127.0.1.1:/lab_poolnfs "),
        "{lines:?}"
    );
    let info = lv.pools().info(&name).await?;
    assert!(info.active && info.capacity > 0, "{info:?}");
    step("netfs pool started");

    // A qcow2 volume made through libvirt is a file in the ONTAP volume.
    let vols = lv.volumes(&name);
    let disk = VolumeDef::new(VolumeName::new("vm1.qcow2")?, 64 * MIB, VolumeFormat::Qcow2);
    assert_eq!(vols.create(&disk).await?, Outcome::Changed);
    let listed = vols.list().await?;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        (listed[0].name.as_str(), listed[0].capacity),
        ("vm1.qcow2", 64 * MIB)
    );
    let backend = vol.backend_dir().join("vm1.qcow2");
    let head = std::fs::read(&backend).with_context(|| backend.display().to_string())?;
    assert_eq!(&head[..4], b"QFI\xfb");
    vols.delete(&disk.name).await?;
    assert!(!backend.exists());

    assert_eq!(
        lv.pools().remove(&name, RemoveMode::KeepData).await?,
        Outcome::Changed
    );
    assert!(!mounted(target)?);
    assert_eq!(
        lv.pools().remove(&name, RemoveMode::KeepData).await?,
        Outcome::Unchanged
    );
    step("end");
    Ok(())
}

#[tokio::test]
#[ignore = "lab tier: needs the lab guest kernel (run by cargo xtask lab)"]
async fn lab_pools_iscsi_and_mpath_on_sim_lun() -> Result<()> {
    step("start");
    let c = sim()?;
    let initiator = std::fs::read_to_string("/etc/iscsi/initiatorname.iscsi")?
        .trim()
        .strip_prefix("InitiatorName=")
        .context("initiator name")?
        .to_owned();
    // Whatever an earlier lab test left, this pool logs in without CHAP.
    lab_common::remove_chap(&c, &initiator).await?;
    Volume::create(&c, "lab_pooliscsi", "1G", false).await?;
    post(
        &c,
        "/api/storage/luns",
        json!({"svm": {"name": "svm1"}, "name": "/vol/lab_pooliscsi/lun1", "os_type": "linux",
               "space": {"size": "64M"}}),
    )
    .await?;
    let iqn = lab_common::map_lun_to_lab_igroup(&c, "/vol/lab_pooliscsi/lun1", LUN_ID, &initiator)
        .await?;
    let lv = libvirt().await?;
    step("LUN mapped, libvirtd connected");

    // libvirt logs in to the portal itself and lists the target's LUNs as volumes.
    let name = PoolName::new("lab-iscsi")?;
    let spec = PoolSpec::new(PoolDef::iscsi(
        name.clone(),
        IscsiSource {
            host: "127.0.1.3".into(),
            port: None,
            target: iqn.clone(),
            initiator: None,
            auth: None,
        },
    ))
    .for_protocol(Protocol::Iscsi)
    .with_autostart(false);
    assert_eq!(lv.pools().ensure(&spec).await?, Outcome::Changed);
    let suffix = format!("-iscsi-{iqn}-lun-{LUN_ID}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let lun = loop {
        lv.pools().refresh(&name).await?;
        let vols = lv.volumes(&name).list().await?;
        if let Some(v) = vols.into_iter().find(|v| v.path.ends_with(&suffix)) {
            break v;
        }
        ensure!(Instant::now() < deadline, "LUN {LUN_ID} not in the pool");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(lun.capacity, 64 * MIB);
    assert_eq!(
        lun.path,
        format!("/dev/disk/by-path/ip-127.0.1.3:3260{suffix}")
    );
    step("iscsi pool lists the LUN");

    // The same LUN through dm-multipath (one path: libvirt logged in to one portal).
    let wwid = lab_common::sh(
        "/lib/udev/scsi_id",
        &["--whitelisted", "--device", &lun.path],
    )?
    .trim()
    .to_owned();
    let mpath = PoolName::new("lab-mpath")?;
    let mspec = PoolSpec::new(PoolDef::mpath(mpath.clone()))
        .for_protocol(Protocol::Iscsi)
        .with_autostart(false);
    assert_eq!(lv.pools().ensure(&mspec).await?, Outcome::Changed);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mvol = loop {
        lv.pools().refresh(&mpath).await?;
        let vols = lv.volumes(&mpath).list().await?;
        let map = std::fs::canonicalize(format!("/dev/mapper/{wwid}")).ok();
        if let Some(v) = vols.into_iter().find(|v| {
            map.as_deref()
                .is_some_and(|m| std::fs::canonicalize(&v.path).ok().as_deref() == Some(m))
        }) {
            break v;
        }
        ensure!(
            Instant::now() < deadline,
            "map {wwid} not in the mpath pool"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(mvol.capacity, 64 * MIB);
    step("mpath pool lists the map");

    assert_eq!(
        lv.pools().remove(&mpath, RemoveMode::KeepData).await?,
        Outcome::Changed
    );
    let _ = lab_common::sh("multipath", &["-f", &wwid]);
    assert_eq!(
        lv.pools().remove(&name, RemoveMode::KeepData).await?,
        Outcome::Changed
    );
    let sessions = std::process::Command::new("iscsiadm")
        .args(["-m", "session"])
        .output()?;
    let text = String::from_utf8_lossy(&sessions.stdout);
    assert!(!text.contains("127.0.1.3:3260"), "{text}");
    step("end");
    Ok(())
}
