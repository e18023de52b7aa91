use super::*;

fn name(s: &str) -> PoolName {
    PoolName::new(s).unwrap()
}

fn iscsi_src() -> IscsiSource {
    IscsiSource {
        host: "192.0.2.10".into(),
        port: Some(3260),
        target: "iqn.1992-08.com.netapp:sn.123:vs.4".into(),
        initiator: Some("iqn.2024-01.lab.client:kvm1".into()),
        auth: Some(ChapAuth {
            username: "chapuser".into(),
            secret: SecretRef::Usage("ds1-chap".into()),
        }),
    }
}

/// One definition of every type, with every optional part that type has.
fn all_types() -> Vec<PoolDef> {
    let mut nfs = PoolDef::nfs(
        name("nfs"),
        "filer",
        "/vol/ds1",
        Some(4),
        "/var/lib/kvmstor/nfs",
    );
    if let PoolSource::Netfs { mount_options, .. } = &mut nfs.source {
        mount_options.extend(["nconnect=8".to_owned(), "hard".to_owned()]);
    }
    vec![
        PoolDef::dir(name("dir"), "/var/lib/kvmstor/dir")
            .with_uuid("d5609ced-94b1-489e-b218-eff35c30336a")
            .with_permissions(Permissions {
                mode: Some(0o711),
                owner: Some(0),
                group: Some(107),
                label: Some("system_u:object_r:virt_image_t:s0".into()),
            }),
        PoolDef::fs(name("fs-ext4"), "/dev/loop3", FsFormat::Ext4, "/mnt/fs"),
        PoolDef::fs(
            name("fs-ocfs2"),
            "/dev/mapper/mpatha",
            FsFormat::Ocfs2,
            "/mnt/o",
        ),
        PoolDef::fs(
            name("fs-gfs2"),
            "/dev/mapper/mpathb",
            FsFormat::Gfs2,
            "/mnt/g",
        ),
        PoolDef::fs(name("fs-xfs"), "/dev/sdb", FsFormat::Xfs, "/mnt/x"),
        nfs,
        PoolDef::cifs(name("cifs"), "smb.example.com", "share", "/mnt/cifs"),
        PoolDef::logical(
            name("vg"),
            "vg_kvm",
            vec!["/dev/mapper/mpatha".into(), "/dev/mapper/mpathb".into()],
        ),
        PoolDef::disk(name("disk"), "/dev/loop5", DiskLabel::Gpt),
        PoolDef::iscsi(name("iscsi"), iscsi_src()),
        PoolDef::iscsi_direct(name("iscsi-direct"), iscsi_src()),
        PoolDef::mpath(name("mpath")),
        PoolDef::scsi(
            name("fc"),
            ScsiAdapter::FcHost {
                parent: Some("scsi_host5".into()),
                wwnn: "20000000c9831b4b".into(),
                wwpn: "10000000c9831b4b".into(),
                managed: Some(true),
            },
        ),
        PoolDef::scsi(
            name("scsihost"),
            ScsiAdapter::ScsiHost {
                name: "scsi_host1".into(),
            },
        ),
    ]
}

#[test]
fn every_type_validates_and_round_trips() {
    for def in all_types() {
        def.validate()
            .unwrap_or_else(|e| panic!("{}: {e}", def.name));
        let xml = def.to_xml();
        let back = PoolDef::from_xml(&xml).unwrap_or_else(|e| panic!("{xml}: {e}"));
        assert_eq!(back, def, "{xml}");
        assert!(def.differences(&back).is_empty());
    }
}

#[test]
fn nfs_with_version_and_mount_options_renders_exactly() {
    let def = all_types()
        .into_iter()
        .find(|d| d.name.as_str() == "nfs")
        .unwrap();
    assert_eq!(
        def.to_xml(),
        "<pool type=\"netfs\" xmlns:fs=\"http://libvirt.org/schemas/storagepool/fs/1.0\">\n  \
         <name>nfs</name>\n  <source>\n    <host name=\"filer\"/>\n    <dir path=\"/vol/ds1\"/>\n    \
         <format type=\"nfs\"/>\n    <protocol ver=\"4\"/>\n  </source>\n  <target>\n    \
         <path>/var/lib/kvmstor/nfs</path>\n  </target>\n  <fs:mount_opts>\n    \
         <fs:option name=\"nconnect=8\"/>\n    <fs:option name=\"hard\"/>\n  </fs:mount_opts>\n</pool>"
    );
}

#[test]
fn iscsi_direct_with_chap_renders_exactly() {
    let def = PoolDef::iscsi_direct(name("id1"), iscsi_src());
    assert_eq!(
        def.to_xml(),
        "<pool type=\"iscsi-direct\">\n  <name>id1</name>\n  <source>\n    \
         <host name=\"192.0.2.10\" port=\"3260\"/>\n    \
         <device path=\"iqn.1992-08.com.netapp:sn.123:vs.4\"/>\n    <initiator>\n      \
         <iqn name=\"iqn.2024-01.lab.client:kvm1\"/>\n    </initiator>\n    \
         <auth type=\"chap\" username=\"chapuser\">\n      <secret usage=\"ds1-chap\"/>\n    \
         </auth>\n  </source>\n</pool>"
    );
}

#[test]
fn dir_with_permissions_renders_octal_mode() {
    let xml = all_types()[0].to_xml();
    assert!(
        xml.contains("<permissions>\n      <mode>0711</mode>\n      <owner>0</owner>\n      <group>107</group>"),
        "{xml}"
    );
}

// Samples from libvirt tests/storagepoolxml2xmlin (shared/samples/libvirt-pool-xml-and-mount-argv.txt).

#[test]
fn parses_libvirt_netfs_cifs_sample() {
    let xml = r#"<pool type='netfs'>
  <source>
    <host name='example.com'/>
    <format type='cifs'/>
    <dir path='samba_share'/>
  </source>
  <name>netfs-cifs</name>
  <uuid>d5609ced-94b1-489e-b218-eff35c30336a</uuid>
  <target>
    <path>/mnt/cifs</path>
  </target>
</pool>"#;
    let def = PoolDef::from_xml(xml).unwrap();
    let want = PoolDef::cifs(
        name("netfs-cifs"),
        "example.com",
        "samba_share",
        "/mnt/cifs",
    )
    .with_uuid("d5609ced-94b1-489e-b218-eff35c30336a");
    assert_eq!(def, want);
    def.validate_for(Protocol::Smb).unwrap();
}

#[test]
fn parses_libvirt_netfs_mount_opts_sample() {
    let xml = r#"<pool type='netfs' xmlns:fs='http://libvirt.org/schemas/storagepool/fs/1.0'>
  <name>nfsimages</name>
  <uuid>7641d5a8-af11-f730-a34e-0a7dfcede71f</uuid>
  <capacity>0</capacity>
  <allocation>0</allocation>
  <available>0</available>
  <source>
    <host name='localhost'/>
    <dir path='/var/lib/libvirt/images'/>
    <format type='nfs'/>
    <protocol ver='3'/>
  </source>
  <target>
    <path>/mnt</path>
    <permissions>
      <mode>0700</mode>
      <owner>0</owner>
      <group>0</group>
    </permissions>
  </target>
  <fs:mount_opts>
    <fs:option name='sync'/>
    <fs:option name='lazytime'/>
  </fs:mount_opts>
</pool>"#;
    let def = PoolDef::from_xml(xml).unwrap();
    assert_eq!(
        def.source,
        PoolSource::Netfs {
            host: "localhost".into(),
            dir: "/var/lib/libvirt/images".into(),
            format: NetfsFormat::Nfs,
            protocol_version: Some(3),
            mount_options: vec!["sync".into(), "lazytime".into()],
        }
    );
    assert_eq!(
        def.permissions,
        Some(Permissions {
            mode: Some(0o700),
            owner: Some(0),
            group: Some(0),
            label: None
        })
    );
    def.validate_for(Protocol::Nfs).unwrap();
}

#[test]
fn parses_libvirt_iscsi_auth_sample() {
    let xml = r#"<pool type='iscsi'>
  <source>
    <auth type='chap' username='admin'>
      <secret uuid='2ec115d7-3a88-3ceb-bc12-0ac909a6fd87'/>
    </auth>
    <device path="demo-target"/>
    <host name="iscsi.example.com"/>
  </source>
  <uuid>e9392370-2917-565e-692b-d057f46512d6</uuid>
  <target>
    <permissions>
      <owner>0</owner>
      <mode>0700</mode>
      <group>0</group>
    </permissions>
    <path>/dev/disk/by-path</path>
  </target>
  <name>virtimages</name>
</pool>"#;
    let def = PoolDef::from_xml(xml).unwrap();
    assert_eq!(
        def.source,
        PoolSource::Iscsi(IscsiSource {
            host: "iscsi.example.com".into(),
            port: None,
            target: "demo-target".into(),
            initiator: None,
            auth: Some(ChapAuth {
                username: "admin".into(),
                secret: SecretRef::Uuid("2ec115d7-3a88-3ceb-bc12-0ac909a6fd87".into()),
            }),
        })
    );
    assert_eq!(def.target.as_deref(), Some("/dev/disk/by-path"));
}

#[test]
fn parses_libvirt_logical_mpath_and_fc_samples() {
    let logical = PoolDef::from_xml(
        r#"<pool type='logical'>
  <name>HostVG</name>
  <source>
    <device path="/dev/sdb1"/>
    <device path="/dev/sdb2"/>
    <device path="/dev/sdb3"/>
  </source>
  <target><path>/dev/HostVG</path></target>
</pool>"#,
    )
    .unwrap();
    assert_eq!(
        logical.source,
        PoolSource::Logical {
            vg: "HostVG".into(),
            devices: vec!["/dev/sdb1".into(), "/dev/sdb2".into(), "/dev/sdb3".into()],
        }
    );

    let mpath = PoolDef::from_xml(
        r#"<pool type="mpath"><name>mpath</name>
  <uuid>e9392370-2917-565e-692b-d057f46512d6</uuid>
  <target><path>/dev/mapper</path></target></pool>"#,
    )
    .unwrap();
    assert_eq!(
        mpath,
        PoolDef::mpath(name("mpath")).with_uuid("e9392370-2917-565e-692b-d057f46512d6")
    );

    let fc = PoolDef::from_xml(
        r#"<pool type='scsi'>
  <name>hba0</name>
  <source>
    <adapter type='fc_host' parent='scsi_host5' wwnn='20000000c9831b4b' wwpn='10000000c9831b4b'/>
  </source>
  <target><path>/dev/disk/by-path</path></target>
</pool>"#,
    )
    .unwrap();
    assert_eq!(
        fc.source,
        PoolSource::Scsi(ScsiAdapter::FcHost {
            parent: Some("scsi_host5".into()),
            wwnn: "20000000c9831b4b".into(),
            wwpn: "10000000c9831b4b".into(),
            managed: None,
        })
    );
    fc.validate_for(Protocol::FibreChannel).unwrap();
}

#[test]
fn support_matrix_refuses_mismatches_with_a_typed_error() {
    let cases: Vec<(PoolDef, Protocol)> = vec![
        (PoolDef::dir(name("a"), "/x"), Protocol::Nfs),
        (PoolDef::cifs(name("b"), "h", "share", "/m"), Protocol::Nfs),
        (
            PoolDef::nfs(name("c"), "h", "/e", None, "/m"),
            Protocol::Smb,
        ),
        (
            PoolDef::iscsi(name("d"), iscsi_src()),
            Protocol::FibreChannel,
        ),
        (PoolDef::mpath(name("e")), Protocol::NvmeTcp),
        (PoolDef::mpath(name("f")), Protocol::Local),
        (
            PoolDef::nfs(name("g"), "h", "/e", Some(3), "/m"),
            Protocol::Iscsi,
        ),
    ];
    for (def, protocol) in cases {
        match def.validate_for(protocol) {
            Err(Error::ProtocolMismatch {
                pool,
                pool_type,
                protocol: p,
            }) => {
                assert_eq!(pool, def.name.as_str());
                assert_eq!(pool_type, def.pool_type());
                assert_eq!(p, protocol);
            }
            other => panic!("{} over {protocol}: {other:?}", def.pool_type()),
        }
    }
    // And the fits.
    PoolDef::iscsi_direct(name("h"), iscsi_src())
        .validate_for(Protocol::Iscsi)
        .unwrap();
    PoolDef::mpath(name("i"))
        .validate_for(Protocol::FibreChannel)
        .unwrap();
    PoolDef::fs(name("j"), "/dev/nvme0n1", FsFormat::Gfs2, "/m")
        .validate_for(Protocol::NvmeTcp)
        .unwrap();
    assert_eq!(
        Protocol::Nfs.pool_types(),
        &[PoolType::Netfs],
        "NFS only fits netfs"
    );
}

fn invalid_field(def: &PoolDef) -> &'static str {
    match def.validate() {
        Err(Error::InvalidDefinition { field, .. }) => field,
        other => panic!("expected InvalidDefinition, got {other:?}"),
    }
}

#[test]
fn inconsistent_definitions_are_refused() {
    let mut no_initiator = iscsi_src();
    no_initiator.initiator = None;
    assert_eq!(
        invalid_field(&PoolDef::iscsi_direct(name("a"), no_initiator)),
        "source.initiator"
    );
    assert_eq!(
        invalid_field(&PoolDef::new(name("b"), PoolSource::Dir, None)),
        "target"
    );
    assert_eq!(
        invalid_field(&PoolDef::dir(name("c"), "relative/path")),
        "target"
    );
    assert_eq!(
        invalid_field(&PoolDef::cifs(name("d"), "h", "/share", "/m")),
        "source.dir"
    );
    let mut cifs_version = PoolDef::cifs(name("e"), "h", "share", "/m");
    if let PoolSource::Netfs {
        protocol_version, ..
    } = &mut cifs_version.source
    {
        *protocol_version = Some(4);
    }
    assert_eq!(invalid_field(&cifs_version), "source.protocol_version");
    let mut bad_opt = PoolDef::nfs(name("f"), "h", "/e", None, "/m");
    if let PoolSource::Netfs { mount_options, .. } = &mut bad_opt.source {
        mount_options.push("rw,exec".into());
    }
    assert_eq!(invalid_field(&bad_opt), "mount_options");
    assert_eq!(
        invalid_field(&PoolDef::scsi(
            name("g"),
            ScsiAdapter::FcHost {
                parent: None,
                wwnn: "2000".into(),
                wwpn: "10000000c9831b4b".into(),
                managed: None
            }
        )),
        "source.adapter.wwnn"
    );
    assert_eq!(
        invalid_field(&PoolDef::dir(name("h"), "/x").with_uuid("not-a-uuid")),
        "uuid"
    );
    let mut mpath_elsewhere = PoolDef::mpath(name("i"));
    mpath_elsewhere.target = Some("/dev/disk/by-id".into());
    assert_eq!(invalid_field(&mpath_elsewhere), "target");
}

#[test]
fn differences_ignore_what_the_caller_left_open() {
    let want = PoolDef::iscsi_direct(
        name("p"),
        IscsiSource {
            port: None,
            ..iscsi_src()
        },
    );
    // libvirt reports a uuid and the default port.
    let have = PoolDef::iscsi_direct(name("p"), iscsi_src())
        .with_uuid("034d66fc-f507-437a-b552-c479ffd63820");
    assert!(want.differences(&have).is_empty());

    let want_dir = PoolDef::dir(name("d"), "/a").with_permissions(Permissions {
        mode: Some(0o755),
        ..Permissions::default()
    });
    let have_dir = PoolDef::dir(name("d"), "/b").with_permissions(Permissions {
        mode: Some(0o711),
        owner: Some(0),
        group: Some(0),
        label: None,
    });
    assert_eq!(
        want_dir.differences(&have_dir),
        vec!["target", "permissions"]
    );
    let nfs = PoolDef::nfs(name("d"), "h", "/e", None, "/a");
    assert_eq!(nfs.differences(&have_dir), vec!["type", "target"]);
    let other_export = PoolDef::nfs(name("d"), "h", "/other", None, "/a");
    assert_eq!(nfs.differences(&other_export), vec!["source"]);
}

#[test]
fn parse_errors_name_the_element() {
    let err = PoolDef::from_xml("<pool type='zfs'><name>z</name></pool>").unwrap_err();
    assert!(
        matches!(&err, Error::XmlShape { document: "pool", element, problem: XmlProblem::UnknownValue } if element == "pool@type"),
        "{err:?}"
    );
    let err = PoolDef::from_xml("<pool type='fs'><name>z</name><source/></pool>").unwrap_err();
    assert!(
        matches!(&err, Error::XmlShape { element, problem: XmlProblem::Missing, .. } if element == "source/device@path"),
        "{err:?}"
    );
    let err = PoolDef::from_xml("<pool type='dir'><name>a/b</name></pool>").unwrap_err();
    assert!(matches!(err, Error::InvalidName { .. }), "{err:?}");
}
