//! Tier 1: libvirt's in-process `test:///default` driver (no daemon, no root). The driver's
//! state is shared within the process, so every test uses unique names.

mod common;

use common::{unique, PoolGuard};
use libvirt_pools::virt::error::ErrorNumber;
use libvirt_pools::{
    ChapAuth, Error, FsFormat, IscsiSource, Libvirt, NetfsFormat, Outcome, PoolDef, PoolName,
    PoolSource, PoolSpec, PoolState, Protocol, RemoveMode, ScsiAdapter, SecretRef, VolumeDef,
    VolumeFormat, VolumeName,
};

const URI: &str = "test:///default";

async fn lv() -> Libvirt {
    Libvirt::connect(URI).await.expect("test driver")
}

fn pool_name(prefix: &str) -> PoolName {
    PoolName::new(unique(prefix)).unwrap()
}

#[tokio::test]
async fn ensure_is_idempotent_and_info_reports_the_state() -> anyhow::Result<()> {
    let lv = lv().await;
    let name = pool_name("idem");
    let _guard = PoolGuard::new(&lv, &name, RemoveMode::KeepData);
    let spec = PoolSpec::new(PoolDef::dir(name.clone(), format!("/srv/{name}")))
        .for_protocol(Protocol::Local);

    assert_eq!(lv.pools().ensure(&spec).await?, Outcome::Changed);
    assert_eq!(lv.pools().ensure(&spec).await?, Outcome::Unchanged);

    let info = lv.pools().info(&name).await?;
    assert_eq!(info.state, PoolState::Running);
    assert!(info.active && info.persistent && info.autostart);
    assert_eq!(info.pool_type, Some(libvirt_pools::PoolType::Dir));
    // The test driver reports a fake 100 GiB.
    assert_eq!(info.capacity, 100 << 30);

    // Turning autostart off is a change once, then not.
    let spec_off = spec.clone().with_autostart(false);
    assert_eq!(lv.pools().ensure(&spec_off).await?, Outcome::Changed);
    assert_eq!(lv.pools().ensure(&spec_off).await?, Outcome::Unchanged);
    assert!(!lv.pools().info(&name).await?.autostart);

    let summaries = lv.pools().list().await?;
    let me = summaries
        .iter()
        .find(|s| s.name == name.as_str())
        .expect("listed");
    assert!(me.active && me.persistent && !me.autostart);

    assert_eq!(
        lv.pools().remove(&name, RemoveMode::KeepData).await?,
        Outcome::Changed
    );
    assert_eq!(
        lv.pools().remove(&name, RemoveMode::KeepData).await?,
        Outcome::Unchanged
    );
    assert!(lv.pools().get(&name).await?.is_none());
    Ok(())
}

#[tokio::test]
async fn a_different_existing_pool_is_a_conflict_and_left_alone() -> anyhow::Result<()> {
    let lv = lv().await;
    let name = pool_name("conflict");
    let _guard = PoolGuard::new(&lv, &name, RemoveMode::KeepData);
    let original = PoolDef::dir(name.clone(), "/srv/original");
    lv.pools().ensure(&PoolSpec::new(original.clone())).await?;

    let moved = PoolSpec::new(PoolDef::dir(name.clone(), "/srv/elsewhere"));
    match lv.pools().ensure(&moved).await {
        Err(Error::PoolConflict { pool, differences }) => {
            assert_eq!(pool, name.as_str());
            assert_eq!(differences, vec!["target"]);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let nfs = PoolSpec::new(PoolDef::nfs(
        name.clone(),
        "filer",
        "/vol/x",
        Some(3),
        "/srv/original",
    ));
    let err = lv.pools().define(&nfs.def).await.unwrap_err();
    assert!(err.is_conflict(), "{err:?}");

    // Untouched.
    let now = lv.pools().get(&name).await?.expect("still defined");
    assert_eq!(now.target.as_deref(), Some("/srv/original"));
    assert!(original.differences(&now).is_empty());
    Ok(())
}

/// Every pool type goes through libvirt's parser and back unchanged. (The test driver
/// accepts any type without touching the host; it says nothing about whether the type works.)
#[tokio::test]
async fn every_pool_type_survives_libvirts_parser() -> anyhow::Result<()> {
    let lv = lv().await;
    let iscsi = IscsiSource {
        host: "192.0.2.10".into(),
        port: Some(3260),
        target: "iqn.1992-08.com.netapp:sn.1:vs.2".into(),
        initiator: Some("iqn.2024-01.lab.client:kvm1".into()),
        auth: Some(ChapAuth {
            username: "chapuser".into(),
            secret: SecretRef::Usage("tdchap".into()),
        }),
    };
    let defs = vec![
        PoolDef::dir(pool_name("t-dir"), "/srv/t-dir"),
        PoolDef::fs(
            pool_name("t-fs"),
            "/dev/mapper/mpatha",
            FsFormat::Ocfs2,
            "/srv/t-fs",
        ),
        PoolDef::nfs(
            pool_name("t-nfs"),
            "filer",
            "/vol/ds1",
            Some(4),
            "/srv/t-nfs",
        ),
        PoolDef::cifs(pool_name("t-cifs"), "smb", "share", "/srv/t-cifs"),
        PoolDef::logical(
            pool_name("t-lvm"),
            "vgkvm",
            vec!["/dev/mapper/mpathb".into()],
        ),
        PoolDef::iscsi(pool_name("t-iscsi"), iscsi.clone()),
        PoolDef::iscsi_direct(pool_name("t-iscsid"), iscsi),
        PoolDef::mpath(pool_name("t-mpath")),
        PoolDef::scsi(
            pool_name("t-fc"),
            ScsiAdapter::FcHost {
                parent: Some("scsi_host5".into()),
                wwnn: "20000000c9831b4b".into(),
                wwpn: "10000000c9831b4b".into(),
                managed: None,
            },
        ),
    ];
    for def in defs {
        let _guard = PoolGuard::new(&lv, &def.name, RemoveMode::KeepData);
        assert_eq!(
            lv.pools().define(&def).await?,
            Outcome::Changed,
            "{}",
            def.name
        );
        assert_eq!(
            lv.pools().define(&def).await?,
            Outcome::Unchanged,
            "{}",
            def.name
        );
        let back = lv.pools().get(&def.name).await?.expect("defined");
        assert_eq!(
            def.differences(&back),
            Vec::<&str>::new(),
            "{}",
            def.to_xml()
        );
        assert_eq!(back.source, def.source, "{}", def.pool_type());
    }
    Ok(())
}

/// The test driver keeps the NFS version but drops the `fs:mount_opts` namespace (only the
/// real storage driver registers it; `host_netfs_definition_keeps_mount_options` checks that).
/// A definition libvirt did not keep is then a conflict, never silently accepted.
#[tokio::test]
async fn netfs_version_is_kept_and_lost_mount_options_are_a_conflict() -> anyhow::Result<()> {
    let lv = lv().await;
    let name = pool_name("nfsopts");
    let _guard = PoolGuard::new(&lv, &name, RemoveMode::KeepData);
    let mut def = PoolDef::nfs(name.clone(), "filer", "/vol/ds1", Some(4), "/srv/nfsopts");
    if let PoolSource::Netfs { mount_options, .. } = &mut def.source {
        mount_options.push("nconnect=8".into());
    }
    assert_eq!(lv.pools().define(&def).await?, Outcome::Changed);
    let xml = lv.pools().xml(&name).await?;
    assert!(xml.contains("<protocol ver='4'/>"), "{xml}");
    let back = PoolDef::from_xml(&xml)?;
    match &back.source {
        PoolSource::Netfs {
            format,
            protocol_version,
            mount_options,
            ..
        } => {
            assert_eq!(*format, NetfsFormat::Nfs);
            assert_eq!(*protocol_version, Some(4));
            assert!(mount_options.is_empty(), "test driver dropped them: {xml}");
        }
        other => panic!("{other:?}"),
    }
    match lv.pools().define(&def).await {
        Err(Error::PoolConflict { differences, .. }) => assert_eq!(differences, vec!["source"]),
        other => panic!("expected a conflict, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn volumes_create_clone_delete_idempotently() -> anyhow::Result<()> {
    let lv = lv().await;
    let name = pool_name("vols");
    let _guard = PoolGuard::new(&lv, &name, RemoveMode::KeepData);
    lv.pools()
        .ensure(&PoolSpec::new(PoolDef::dir(
            name.clone(),
            format!("/srv/{name}"),
        )))
        .await?;
    let vols = lv.volumes(&name);
    let base = VolumeDef::new(VolumeName::new("base.qcow2")?, 1 << 30, VolumeFormat::Qcow2);
    assert_eq!(vols.create(&base).await?, Outcome::Changed);
    assert_eq!(vols.create(&base).await?, Outcome::Unchanged);

    let bigger = VolumeDef {
        capacity: 2 << 30,
        ..base.clone()
    };
    match vols.create(&bigger).await {
        Err(Error::VolumeConflict {
            pool,
            volume,
            differences,
        }) => {
            assert_eq!(
                (pool.as_str(), volume.as_str()),
                (name.as_str(), "base.qcow2")
            );
            assert_eq!(differences, vec!["capacity"]);
        }
        other => panic!("expected a volume conflict, got {other:?}"),
    }

    let copy = VolumeName::new("copy.qcow2")?;
    assert_eq!(
        vols.clone_volume(&base.name, &copy, None).await?,
        Outcome::Changed
    );
    assert_eq!(
        vols.clone_volume(&base.name, &copy, None).await?,
        Outcome::Unchanged
    );

    let listed = vols.list().await?;
    let names: Vec<&str> = listed.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, vec!["base.qcow2", "copy.qcow2"]);
    assert_eq!(listed[1].capacity, 1 << 30);
    assert_eq!(listed[1].format, Some(VolumeFormat::Qcow2));
    assert_eq!(listed[1].path, format!("/srv/{name}/copy.qcow2"));

    assert_eq!(vols.delete(&copy).await?, Outcome::Changed);
    assert_eq!(vols.delete(&copy).await?, Outcome::Unchanged);
    assert!(vols.get(&copy).await?.is_none());
    let missing = vols.info(&copy).await.unwrap_err();
    assert!(missing.is_not_found(), "{missing:?}");
    Ok(())
}

#[tokio::test]
async fn resize_is_unsupported_by_the_test_driver_and_says_so() -> anyhow::Result<()> {
    let lv = lv().await;
    let name = pool_name("resize");
    let _guard = PoolGuard::new(&lv, &name, RemoveMode::KeepData);
    lv.pools()
        .ensure(&PoolSpec::new(PoolDef::dir(
            name.clone(),
            format!("/srv/{name}"),
        )))
        .await?;
    let vols = lv.volumes(&name);
    let v = VolumeDef::new(VolumeName::new("r.img")?, 64 << 20, VolumeFormat::Raw);
    vols.create(&v).await?;
    // Same size: nothing to do, libvirt is not called.
    assert_eq!(vols.resize(&v.name, 64 << 20).await?, Outcome::Unchanged);
    // Shrinking is refused before libvirt.
    match vols.resize(&v.name, 32 << 20).await {
        Err(Error::ShrinkRefused {
            current, requested, ..
        }) => assert_eq!((current, requested), (64 << 20, 32 << 20)),
        other => panic!("{other:?}"),
    }
    let err = vols.resize(&v.name, 128 << 20).await.unwrap_err();
    assert_eq!(err.libvirt_code(), Some(ErrorNumber::NoSupport), "{err:?}");
    Ok(())
}

#[tokio::test]
async fn bad_input_is_refused_before_libvirt() -> anyhow::Result<()> {
    let lv = lv().await;
    let name = pool_name("badinput");
    let _guard = PoolGuard::new(&lv, &name, RemoveMode::KeepData);
    lv.pools()
        .ensure(&PoolSpec::new(PoolDef::dir(
            name.clone(),
            format!("/srv/{name}"),
        )))
        .await?;
    let vols = lv.volumes(&name);

    let zero = VolumeDef::new(VolumeName::new("zero.img")?, 0, VolumeFormat::Raw);
    let err = vols.create(&zero).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::ZeroSize {
                what: "volume capacity"
            }
        ),
        "{err:?}"
    );
    assert!(vols.list().await?.is_empty(), "nothing was created");

    assert!(PoolName::new("a/b").is_err());
    assert!(VolumeName::new("x\ny").is_err());

    // A pool type that does not fit the protocol: nothing is defined.
    let other = pool_name("mismatch");
    let spec = PoolSpec::new(PoolDef::iscsi_direct(
        other.clone(),
        IscsiSource {
            host: "h".into(),
            port: None,
            target: "iqn.2024-01.x:t".into(),
            initiator: Some("iqn.2024-01.x:i".into()),
            auth: None,
        },
    ))
    .for_protocol(Protocol::Nfs);
    let err = lv.pools().ensure(&spec).await.unwrap_err();
    assert!(matches!(err, Error::ProtocolMismatch { .. }), "{err:?}");
    assert!(lv.pools().get(&other).await?.is_none());

    let missing = pool_name("missing");
    let err = lv.pools().info(&missing).await.unwrap_err();
    assert!(
        matches!(&err, Error::PoolNotFound { pool } if pool == missing.as_str()),
        "{err:?}"
    );
    assert_eq!(lv.pools().destroy(&missing).await?, Outcome::Unchanged);
    assert_eq!(lv.pools().undefine(&missing).await?, Outcome::Unchanged);
    Ok(())
}

#[tokio::test]
async fn lifecycle_step_by_step() -> anyhow::Result<()> {
    let lv = lv().await;
    let name = pool_name("steps");
    let _guard = PoolGuard::new(&lv, &name, RemoveMode::KeepData);
    let def = PoolDef::dir(name.clone(), format!("/srv/{name}"));
    let pools = lv.pools();
    assert_eq!(pools.define(&def).await?, Outcome::Changed);
    assert_eq!(pools.info(&name).await?.state, PoolState::Inactive);
    let err = lv.volumes(&name).list().await.unwrap_err();
    assert!(matches!(err, Error::PoolInactive { .. }), "{err:?}");
    pools.build(&name, libvirt_pools::BuildMode::Plain).await?;
    assert_eq!(pools.start(&name).await?, Outcome::Changed);
    assert_eq!(pools.start(&name).await?, Outcome::Unchanged);
    pools.refresh(&name).await?;
    assert_eq!(pools.set_autostart(&name, true).await?, Outcome::Changed);
    assert_eq!(pools.set_autostart(&name, true).await?, Outcome::Unchanged);
    assert_eq!(pools.destroy(&name).await?, Outcome::Changed);
    assert_eq!(pools.destroy(&name).await?, Outcome::Unchanged);
    let err = pools.refresh(&name).await.unwrap_err();
    assert!(matches!(err, Error::PoolInactive { .. }), "{err:?}");
    assert_eq!(pools.undefine(&name).await?, Outcome::Changed);
    assert_eq!(pools.undefine(&name).await?, Outcome::Unchanged);
    Ok(())
}

#[tokio::test]
async fn connect_failure_names_the_uri() {
    let err = Libvirt::connect("bogus+nothing:///x").await.unwrap_err();
    match err {
        Error::Connect { uri, .. } => assert_eq!(uri, "bogus+nothing:///x"),
        other => panic!("{other:?}"),
    }
}

/// The test driver has no secret driver. The CHAP secret is the first step of `ensure`, so
/// its failure leaves nothing defined. (The host tier covers secrets for real.)
#[tokio::test]
async fn a_failing_chap_secret_step_defines_nothing() -> anyhow::Result<()> {
    let lv = lv().await;
    let name = pool_name("chap");
    let usage = unique("tdchap");
    let _guard = PoolGuard::new(&lv, &name, RemoveMode::KeepData);
    let def = PoolDef::iscsi_direct(
        name.clone(),
        IscsiSource {
            host: "192.0.2.10".into(),
            port: None,
            target: "iqn.2024-01.x:t".into(),
            initiator: Some("iqn.2024-01.x:i".into()),
            auth: Some(ChapAuth {
                username: "u".into(),
                secret: SecretRef::Usage(usage.clone()),
            }),
        },
    );
    let spec = PoolSpec::new(def)
        .for_protocol(Protocol::Iscsi)
        .with_chap_password(secrecy::SecretString::from("td-secret-value"));
    let err = lv.pools().ensure(&spec).await.unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Libvirt {
                operation: libvirt_pools::Operation::LookupSecret,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.libvirt_code(), Some(ErrorNumber::NoSupport));
    assert!(!format!("{err:?}").contains("td-secret-value"));
    assert!(lv.pools().get(&name).await?.is_none());
    Ok(())
}

#[tokio::test]
async fn the_pool_guard_cleans_up_after_a_panic() -> anyhow::Result<()> {
    let lv = lv().await;
    let name = pool_name("panic");
    let (lv2, name2) = (lv.clone(), name.clone());
    let joined = tokio::spawn(async move {
        let _guard = PoolGuard::new(&lv2, &name2, RemoveMode::KeepData);
        lv2.pools()
            .ensure(&PoolSpec::new(PoolDef::dir(name2.clone(), "/srv/panic")))
            .await
            .expect("ensure");
        panic!("test body fails while holding the guard");
    })
    .await;
    assert!(joined.unwrap_err().is_panic());
    assert!(
        lv.pools().get(&name).await?.is_none(),
        "guard removed the pool"
    );
    Ok(())
}
