//! Host tier: a real libvirtd (started by `cargo xtask test`, root, no systemd). Run with
//! `cargo test -p libvirt-pools -- --ignored`. URI from `KVMSTOR_LIBVIRT_URI`
//! (default `qemu:///system`).

mod common;

use std::path::Path;

use common::{host_uri, path_str, run, sparse_file, temp_dir, unique, LoopDevice, PoolGuard, Tgtd};
use libvirt_pools::{
    Allocation, BackingStore, BuildMode, ChapAuth, Error, FsFormat, IscsiSource, Libvirt,
    Operation, Outcome, PoolDef, PoolName, PoolSource, PoolSpec, PoolState, Protocol, RemoveMode,
    SecretRef, VolumeDef, VolumeFormat, VolumeName,
};
use secrecy::SecretString;

const MIB: u64 = 1 << 20;

async fn lv() -> Libvirt {
    Libvirt::connect(&host_uri())
        .await
        .expect("libvirtd must be running (cargo xtask test starts it)")
}

fn pool_name(prefix: &str) -> PoolName {
    PoolName::new(unique(prefix)).unwrap()
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 4096) as u8).collect()
}

fn is_mounted(mountpoint: &Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let want = path_str(mountpoint);
    mounts
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(want.as_str()))
}

fn qemu_img_backing(path: &str) -> Option<String> {
    let out = run("qemu-img", &["info", "-U", "--output=json", path]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("qemu-img JSON");
    v["backing-filename"].as_str().map(str::to_owned)
}

#[tokio::test]
#[ignore = "host tier: needs libvirtd (started by cargo xtask test)"]
async fn host_dir_pool_volumes_backing_clone_resize_upload_download() -> anyhow::Result<()> {
    let lv = lv().await;
    let tmp = temp_dir();
    let target = tmp.path().join("pool");
    let name = pool_name("dir");
    let _guard = PoolGuard::new(&lv, &name, RemoveMode::DeleteData);
    let spec = PoolSpec::new(PoolDef::dir(name.clone(), path_str(&target)))
        .for_protocol(Protocol::Local)
        .with_autostart(false);

    assert_eq!(lv.pools().ensure(&spec).await?, Outcome::Changed);
    assert!(target.is_dir(), "build made the directory");
    assert_eq!(lv.pools().ensure(&spec).await?, Outcome::Unchanged);
    assert_eq!(lv.pools().info(&name).await?.state, PoolState::Running);

    let vols = lv.volumes(&name);

    // A raw base with known content, uploaded as a stream.
    let base = VolumeDef::new(VolumeName::new("base.img")?, 64 * MIB, VolumeFormat::Raw);
    assert_eq!(vols.create(&base).await?, Outcome::Changed);
    let data = pattern(MIB as usize + 123);
    let sent = vols
        .upload(
            &base.name,
            std::io::Cursor::new(data.clone()),
            data.len() as u64,
        )
        .await?;
    assert_eq!(sent, data.len() as u64);
    let (out, received) = vols.download(&base.name, Vec::new()).await?;
    assert_eq!(received, 64 * MIB);
    assert_eq!(&out[..data.len()], &data[..]);
    assert!(out[data.len()..].iter().all(|b| *b == 0));
    let base_path = vols.info(&base.name).await?.path;
    assert_eq!(base_path, path_str(&target.join("base.img")));

    // A qcow2 overlay on it.
    let overlay = VolumeDef::new(VolumeName::new("vm1.qcow2")?, 64 * MIB, VolumeFormat::Qcow2)
        .with_backing(base_path.clone(), VolumeFormat::Raw);
    assert_eq!(vols.create(&overlay).await?, Outcome::Changed);
    assert_eq!(vols.create(&overlay).await?, Outcome::Unchanged);
    let info = vols.info(&overlay.name).await?;
    assert_eq!(info.format, Some(VolumeFormat::Qcow2));
    assert_eq!(
        info.backing,
        Some(BackingStore {
            path: base_path.clone(),
            format: VolumeFormat::Raw
        })
    );
    assert_eq!(qemu_img_backing(&info.path), Some(base_path.clone()));

    // libvirt's clone (qemu-img convert) flattens the overlay into a raw image.
    let flat = VolumeName::new("vm1-flat.img")?;
    assert_eq!(
        vols.clone_volume(&overlay.name, &flat, Some(VolumeFormat::Raw))
            .await?,
        Outcome::Changed
    );
    let flat_info = vols.info(&flat).await?;
    assert_eq!(flat_info.backing, None);
    assert_eq!(flat_info.capacity, 64 * MIB);
    let (flat_data, _) = vols.download(&flat, Vec::new()).await?;
    assert_eq!(&flat_data[..data.len()], &data[..]);

    // Resize grows, is idempotent, refuses to shrink.
    assert_eq!(vols.resize(&base.name, 128 * MIB).await?, Outcome::Changed);
    assert_eq!(
        vols.resize(&base.name, 128 * MIB).await?,
        Outcome::Unchanged
    );
    assert_eq!(vols.info(&base.name).await?.capacity, 128 * MIB);
    assert_eq!(std::fs::metadata(&base_path)?.len(), 128 * MIB);
    assert!(matches!(
        vols.resize(&base.name, MIB).await,
        Err(Error::ShrinkRefused { .. })
    ));

    // Wipe zeroes the data.
    vols.wipe(&flat).await?;
    let (wiped, _) = vols.download(&flat, Vec::new()).await?;
    assert!(wiped.iter().all(|b| *b == 0));

    // Download to and upload from files.
    let file = tmp.path().join("dl.img");
    assert_eq!(vols.download_file(&base.name, &file).await?, 128 * MIB);
    assert_eq!(std::fs::metadata(&file)?.len(), 128 * MIB);
    assert_eq!(vols.upload_file(&flat, &file).await?, 128 * MIB);

    // A fully preallocated raw volume takes its space up front.
    let full = VolumeDef::new(VolumeName::new("full.img")?, 16 * MIB, VolumeFormat::Raw)
        .with_allocation(Allocation::Full);
    vols.create(&full).await?;
    let full_info = vols.info(&full.name).await?;
    assert!(full_info.allocation >= 16 * MIB, "{full_info:?}");
    // qcow2 with metadata preallocation.
    let meta = VolumeDef::new(
        VolumeName::new("meta.qcow2")?,
        16 * MIB,
        VolumeFormat::Qcow2,
    )
    .with_allocation(Allocation::Metadata);
    assert_eq!(vols.create(&meta).await?, Outcome::Changed);

    let names: Vec<String> = vols
        .list()
        .await?
        .into_iter()
        .map(|v| v.name.to_string())
        .collect();
    assert_eq!(
        names,
        [
            "base.img",
            "full.img",
            "meta.qcow2",
            "vm1-flat.img",
            "vm1.qcow2"
        ]
    );

    for n in &names {
        assert_eq!(
            vols.delete(&VolumeName::new(n.as_str())?).await?,
            Outcome::Changed
        );
    }
    assert_eq!(
        lv.pools().remove(&name, RemoveMode::DeleteData).await?,
        Outcome::Changed
    );
    assert!(!target.exists(), "pool-delete removed the directory");
    assert_eq!(
        lv.pools().remove(&name, RemoveMode::DeleteData).await?,
        Outcome::Unchanged
    );
    Ok(())
}

#[tokio::test]
#[ignore = "host tier: needs libvirtd (started by cargo xtask test)"]
async fn host_fs_pool_ext4_on_a_loop_device() -> anyhow::Result<()> {
    let lv = lv().await;
    let tmp = temp_dir();
    let image = tmp.path().join("fs.img");
    sparse_file(&image, 256 * MIB);
    run("mkfs.ext4", &["-q", "-F", &path_str(&image)]);
    let dev = LoopDevice::attach(&image);
    let mnt = tmp.path().join("mnt");
    let name = pool_name("fs");
    let _guard = PoolGuard::new(&lv, &name, RemoveMode::KeepData);

    let spec = PoolSpec::new(PoolDef::fs(
        name.clone(),
        dev.path.clone(),
        FsFormat::Ext4,
        path_str(&mnt),
    ))
    .for_protocol(Protocol::Iscsi) // an ext4 on a LUN is a valid fs-pool use
    .with_autostart(false);
    assert_eq!(lv.pools().ensure(&spec).await?, Outcome::Changed);
    assert!(is_mounted(&mnt), "libvirt mounted the device");
    assert_eq!(lv.pools().ensure(&spec).await?, Outcome::Unchanged);
    let info = lv.pools().info(&name).await?;
    assert!(
        info.capacity > 200 * MIB && info.capacity < 256 * MIB,
        "{info:?}"
    );

    let vols = lv.volumes(&name);
    let v = VolumeDef::new(VolumeName::new("d.qcow2")?, 100 * MIB, VolumeFormat::Qcow2);
    assert_eq!(vols.create(&v).await?, Outcome::Changed);
    assert!(mnt.join("d.qcow2").is_file());
    assert_eq!(vols.delete(&v.name).await?, Outcome::Changed);

    assert_eq!(
        lv.pools().remove(&name, RemoveMode::KeepData).await?,
        Outcome::Changed
    );
    assert!(!is_mounted(&mnt), "destroy unmounted it");
    Ok(())
}

#[tokio::test]
#[ignore = "host tier: needs libvirtd (started by cargo xtask test)"]
async fn host_fs_pool_build_formats_only_an_empty_device() -> anyhow::Result<()> {
    let lv = lv().await;
    let tmp = temp_dir();
    let image = tmp.path().join("blank.img");
    sparse_file(&image, 128 * MIB);
    let dev = LoopDevice::attach(&image);
    let mnt = tmp.path().join("mnt");
    let name = pool_name("fsbuild");
    let _guard = PoolGuard::new(&lv, &name, RemoveMode::KeepData);
    let spec = PoolSpec::new(PoolDef::fs(
        name.clone(),
        dev.path.clone(),
        FsFormat::Ext4,
        path_str(&mnt),
    ))
    .with_build(Some(BuildMode::FormatIfEmpty))
    .with_autostart(false);
    assert_eq!(lv.pools().ensure(&spec).await?, Outcome::Changed);
    assert!(is_mounted(&mnt));
    let blkid = run("blkid", &["-o", "value", "-s", "TYPE", &dev.path]);
    assert_eq!(blkid.trim(), "ext4");
    lv.pools().remove(&name, RemoveMode::KeepData).await?;

    // Now the device holds a file system: a no-overwrite build refuses to touch it.
    lv.pools().define(&spec.def).await?;
    let err = lv
        .pools()
        .build(&name, BuildMode::FormatIfEmpty)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Libvirt {
                operation: Operation::BuildPool,
                ..
            }
        ),
        "{err:?}"
    );
    Ok(())
}

#[tokio::test]
#[ignore = "host tier: needs libvirtd (started by cargo xtask test)"]
async fn host_netfs_definition_keeps_version_and_mount_options() -> anyhow::Result<()> {
    // The host kernel has no NFS client, so this only defines (the lab tier mounts).
    let lv = lv().await;
    let name = pool_name("nfsdef");
    let _guard = PoolGuard::new(&lv, &name, RemoveMode::KeepData);
    let mut def = PoolDef::nfs(
        name.clone(),
        "192.0.2.20",
        "/vol/ds1",
        Some(4),
        "/mnt/nfsdef",
    );
    if let PoolSource::Netfs { mount_options, .. } = &mut def.source {
        mount_options.extend(["nconnect=8".to_owned(), "hard".to_owned()]);
    }
    def.validate_for(Protocol::Nfs)?;
    assert_eq!(lv.pools().define(&def).await?, Outcome::Changed);
    assert_eq!(lv.pools().define(&def).await?, Outcome::Unchanged);
    let back = lv.pools().get(&name).await?.expect("defined");
    assert_eq!(back.source, def.source);
    Ok(())
}

#[tokio::test]
#[ignore = "host tier: needs libvirtd (started by cargo xtask test)"]
async fn host_iscsi_direct_with_chap_against_tgtd() -> anyhow::Result<()> {
    let lv = lv().await;
    let tmp = temp_dir();
    let lun = tmp.path().join("lun1.img");
    sparse_file(&lun, 64 * MIB);
    let iqn = "iqn.2024-01.kvmstor.test:lvp-chap";
    let tgt = Tgtd::start(47, 3263, iqn, &lun, Some(("chapuser", "chapsecret1234")));

    let usage = unique("chap");
    let name = pool_name("iscsid");
    let _guard = PoolGuard::new(&lv, &name, RemoveMode::KeepData);
    let def = PoolDef::iscsi_direct(
        name.clone(),
        IscsiSource {
            host: "127.0.0.1".into(),
            port: Some(tgt.portal_port),
            target: iqn.into(),
            initiator: Some("iqn.2024-01.kvmstor.test:client".into()),
            auth: Some(ChapAuth {
                username: "chapuser".into(),
                secret: SecretRef::Usage(usage.clone()),
            }),
        },
    );

    // A wrong password: the start fails and says which pool.
    let wrong = PoolSpec::new(def.clone())
        .for_protocol(Protocol::Iscsi)
        .with_build(None)
        .with_autostart(false)
        .with_chap_password(SecretString::from("not-the-secret"));
    let err = lv.pools().ensure(&wrong).await.unwrap_err();
    assert!(
        matches!(&err, Error::Libvirt { operation: Operation::StartPool, pool: Some(p), .. } if p == name.as_str()),
        "{err:?}"
    );
    assert!(!format!("{err:?} {err}").contains("not-the-secret"));

    // The right one: the same definition, so no conflict; the secret value is replaced.
    let spec = PoolSpec {
        chap_password: Some(SecretString::from("chapsecret1234")),
        ..wrong
    };
    assert!(!format!("{spec:?}").contains("chapsecret1234"));
    assert_eq!(lv.pools().ensure(&spec).await?, Outcome::Changed);
    assert_eq!(lv.pools().info(&name).await?.state, PoolState::Running);
    let vols = lv.volumes(&name).list().await?;
    // LUN 0 is tgt's controller; LUN 1 the file. libvirt's iscsi-direct backend sizes a LUN as
    // block size x last LBA, one block short of the 64 MiB file.
    let listed: Vec<(&str, u64)> = vols.iter().map(|v| (v.name.as_str(), v.capacity)).collect();
    assert_eq!(listed, [("unit:0:0:0", 0), ("unit:0:0:1", 64 * MIB - 512)]);
    assert_eq!(
        vols[1].path,
        format!("ip-127.0.0.1:{}-iscsi-{iqn}-lun-1", tgt.portal_port)
    );
    assert!(lv.secrets().iscsi_uuid(&usage).await?.is_some());

    assert_eq!(
        lv.pools().remove(&name, RemoveMode::KeepData).await?,
        Outcome::Changed
    );
    assert_eq!(
        lv.secrets().iscsi_uuid(&usage).await?,
        None,
        "remove undefined our secret"
    );
    drop(tgt);
    Ok(())
}
