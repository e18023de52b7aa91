//! Pure parsers and renderers, on the shared sample and on captures from the real tools.

use cluster_fs::device::{parse_blkid_export, scsi_wwid_to_udev, verify_identity};
use cluster_fs::error::SignatureKind;
use cluster_fs::gfs2::tools::parse_tunegfs2_list;
use cluster_fs::gfs2::{CorosyncConf, CorosyncNode, Crypto, Transport};
use cluster_fs::ocfs2::o2cb::parse_list_clusters;
use cluster_fs::ocfs2::tools::{parse_debugfs_stats, parse_mounted_detect, parse_mounted_full};
use cluster_fs::ocfs2::{
    ClusterConf, HeartbeatMode, HeartbeatRegion, Mounters, O2cbDefaults, O2cbStack, Ocfs2Cluster,
    Ocfs2Node, Region,
};
use cluster_fs::{ClusterName, Error, Identity, NodeName, TargetDevice};
use host_storage::Change;

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Drops the first line (the capture header).
fn body(name: &str) -> String {
    let text = fixture(name);
    text.split_once('\n').unwrap().1.to_owned()
}

/// The part of the shared sample under `### <title>` up to the next `###`.
fn sample_section(title: &str) -> String {
    let text = fixture("sample-ocfs2-cluster.conf-o2cb-mounted.txt");
    let start = text.find(&format!("### {title}")).unwrap();
    let rest = &text[start..];
    let rest = &rest[rest.find('\n').unwrap() + 1..];
    rest[..rest.find("\n###").unwrap_or(rest.len())].to_owned()
}

fn cl(s: &str) -> ClusterName {
    ClusterName::parse(s).unwrap()
}

fn node(c: &str, name: &str, n: u8, ip: &str) -> Ocfs2Node {
    Ocfs2Node::new(
        cl(c),
        NodeName::parse(name).unwrap(),
        n,
        ip.parse().unwrap(),
    )
    .unwrap()
}

#[test]
fn cluster_conf_sample_parses() {
    let conf = ClusterConf::parse(&sample_section("/etc/ocfs2/cluster.conf")).unwrap();
    let web = cl("webcluster");
    let c = conf.cluster(&web).unwrap();
    assert_eq!(c.heartbeat_mode, HeartbeatMode::Global);
    let nodes: Vec<(u8, &str, String, u16)> = conf
        .nodes_of(&web)
        .map(|n| {
            (
                n.number,
                n.name.as_str(),
                n.ip_address.to_string(),
                n.ip_port,
            )
        })
        .collect();
    assert_eq!(
        nodes,
        vec![
            (7, "node7", "192.168.0.107".to_owned(), 7777),
            (6, "node6", "192.168.0.106".to_owned(), 7777),
            (10, "node10", "192.168.0.110".to_owned(), 7777),
        ]
    );
    let hb: Vec<&str> = conf
        .heartbeats_of(&web)
        .map(|h| h.region.as_str())
        .collect();
    assert_eq!(hb, vec!["77D95EF51C0149D2823674FCC162CF8B"]);
    // Rendered in o2cb's order: cluster, heartbeats, nodes; node_count recomputed.
    let text = conf.render();
    assert!(text.starts_with(
        "cluster:\n\tname = webcluster\n\theartbeat_mode = global\n\tnode_count = 3\n\nheartbeat:\n"
    ));
    assert_eq!(ClusterConf::parse(&text).unwrap(), conf);
}

#[test]
fn cluster_conf_renders_byte_for_byte_as_o2cb_writes_it() {
    let file = body("o2cb-written-cluster.conf");
    let conf = ClusterConf::parse(&file).unwrap();
    assert_eq!(conf.render(), file);

    // The same file built from the model.
    let mut built = ClusterConf::default();
    assert_eq!(
        built
            .add_cluster(Ocfs2Cluster::new(cl("kvmcl"), HeartbeatMode::Global))
            .unwrap(),
        Change::Changed
    );
    assert_eq!(
        built
            .add_heartbeat(HeartbeatRegion {
                cluster: cl("kvmcl"),
                region: Region::parse("329E6070F06B425EAFC145816B197431").unwrap(),
            })
            .unwrap(),
        Change::Changed
    );
    assert_eq!(
        built
            .add_node(node("kvmcl", "kvm1", 0, "10.0.0.11"))
            .unwrap(),
        Change::Changed
    );
    assert_eq!(
        built
            .add_node(node("kvmcl", "kvm2", 1, "10.0.0.12"))
            .unwrap(),
        Change::Changed
    );
    assert_eq!(built.render(), file);
}

#[test]
fn cluster_conf_merge_is_idempotent_and_refuses_conflicts() {
    let mut a = ClusterConf::parse(&body("o2cb-written-cluster.conf")).unwrap();
    let copy = a.clone();
    assert_eq!(a.merge(&copy).unwrap(), Change::Unchanged);

    let mut more = ClusterConf::default();
    assert_eq!(
        more.add_cluster(Ocfs2Cluster::new(cl("kvmcl"), HeartbeatMode::Global))
            .unwrap(),
        Change::Changed
    );
    assert_eq!(
        more.add_node(node("kvmcl", "kvm3", 2, "10.0.0.13"))
            .unwrap(),
        Change::Changed
    );
    assert_eq!(a.merge(&more).unwrap(), Change::Changed);
    assert_eq!(a.nodes_of(&cl("kvmcl")).count(), 3);
    assert!(a.render().contains("\tnode_count = 3\n"));

    // Same number, other node: refused, and nothing merged.
    let before = a.clone();
    let mut clash = more.clone();
    assert_eq!(
        clash
            .add_node(node("kvmcl", "kvm9", 0, "10.0.0.19"))
            .unwrap(),
        Change::Changed
    );
    match a.merge(&clash).unwrap_err() {
        Error::ClusterConflict {
            cluster,
            node,
            reason,
        } => {
            assert_eq!(cluster, "kvmcl");
            assert_eq!(node, "kvm9");
            assert_eq!(reason, "node number already used by another node");
        }
        e => panic!("unexpected {e:?}"),
    }
    assert_eq!(a, before);

    // Same name, other address.
    let err = a
        .add_node(node("kvmcl", "kvm1", 0, "10.0.0.99"))
        .unwrap_err();
    assert!(matches!(
        err,
        Error::ClusterConflict {
            reason: "a node of this name has another number or address",
            ..
        }
    ));
    // Other heartbeat mode.
    let err = a
        .add_cluster(Ocfs2Cluster::new(cl("kvmcl"), HeartbeatMode::Local))
        .unwrap_err();
    assert!(matches!(
        err,
        Error::ClusterConflict {
            reason: "heartbeat mode differs",
            ..
        }
    ));
    // Node of an unknown cluster.
    assert!(a.add_node(node("other", "x1", 0, "10.1.0.1")).is_err());
    assert_eq!(
        a.remove_node(&cl("kvmcl"), &NodeName::parse("kvm3").unwrap()),
        Change::Changed
    );
    assert_eq!(
        a.remove_node(&cl("kvmcl"), &NodeName::parse("kvm3").unwrap()),
        Change::Unchanged
    );
}

#[test]
fn cluster_conf_parse_errors_name_the_line() {
    let err = ClusterConf::parse("cluster:\n\tname = a\n\tnode_count = 0\n\nnode:\n\tname = x\n")
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Parse {
                line: 5,
                reason: "node without cluster",
                ..
            }
        ),
        "{err:?}"
    );
    let err = ClusterConf::parse("nodes:\n").unwrap_err();
    assert!(matches!(
        err,
        Error::Parse {
            line: 1,
            reason: "unknown stanza",
            ..
        }
    ));
    let err = ClusterConf::parse(
        "node:\n\tcluster = a\n\tnumber = 0\n\tip_address = 1.2.3.4\n\tname = n\n",
    )
    .unwrap_err();
    assert!(matches!(
        err,
        Error::Parse {
            reason: "node or heartbeat of a cluster without a cluster: stanza",
            ..
        }
    ));
    let err = ClusterConf::parse("cluster:\n\tname = a\n\nnode:\n\tcluster = a\n\tnumber = 255\n\tip_address = 1.2.3.4\n\tname = n\n").unwrap_err();
    assert!(matches!(
        err,
        Error::Parse {
            line: 4,
            reason: "number must be 0 to 254",
            ..
        }
    ));
}

#[test]
fn o2cb_defaults_from_debian_postinst_and_template() {
    let d = O2cbDefaults::parse(&fixture("etc-default-o2cb.txt")).unwrap();
    assert_eq!(
        d,
        O2cbDefaults {
            enabled: false,
            stack: O2cbStack::O2cb,
            boot_cluster: Some(cl("ocfs2")),
            heartbeat_threshold: 31,
            idle_timeout_ms: 30000,
            keepalive_delay_ms: 2000,
            reconnect_delay_ms: 2000,
        }
    );
    // The template form: ${O2CB_ENABLED:-false}, ${O2CB_BOOTCLUSTER} (empty).
    let t = O2cbDefaults::parse(&sample_section("/etc/default/o2cb")).unwrap();
    assert_eq!(t, O2cbDefaults::default());

    let mut mine = O2cbDefaults::enabled(cl("kvmcl"));
    mine.heartbeat_threshold = 61;
    let text = mine.render();
    assert!(text.contains("\nO2CB_ENABLED=true\n"));
    assert!(text.contains("\nO2CB_BOOTCLUSTER=kvmcl\n"));
    assert!(text.contains("\nO2CB_HEARTBEAT_THRESHOLD=61\n"));
    assert_eq!(O2cbDefaults::parse(&text).unwrap(), mine);
    assert_eq!(mine.dead_node_timeout().as_secs(), 120);
}

#[test]
fn o2cb_defaults_relationships_are_validated() {
    let ok = O2cbDefaults::enabled(cl("kvmcl"));
    ok.validate().unwrap();
    let cases: Vec<(O2cbDefaults, &str, u64, &str)> = vec![
        (
            O2cbDefaults {
                boot_cluster: None,
                ..ok.clone()
            },
            "O2CB_BOOTCLUSTER",
            0,
            "O2CB_ENABLED=true needs a boot cluster",
        ),
        (
            O2cbDefaults {
                heartbeat_threshold: 6,
                ..ok.clone()
            },
            "O2CB_HEARTBEAT_THRESHOLD",
            6,
            "below the minimum of 7",
        ),
        (
            O2cbDefaults {
                idle_timeout_ms: 4999,
                ..ok.clone()
            },
            "O2CB_IDLE_TIMEOUT_MS",
            4999,
            "below the minimum of 5000",
        ),
        (
            O2cbDefaults {
                keepalive_delay_ms: 999,
                ..ok.clone()
            },
            "O2CB_KEEPALIVE_DELAY_MS",
            999,
            "below the minimum of 1000",
        ),
        (
            O2cbDefaults {
                reconnect_delay_ms: 1999,
                ..ok.clone()
            },
            "O2CB_RECONNECT_DELAY_MS",
            1999,
            "below the minimum of 2000",
        ),
        (
            O2cbDefaults {
                keepalive_delay_ms: 30000,
                ..ok.clone()
            },
            "O2CB_KEEPALIVE_DELAY_MS",
            30000,
            "must be below O2CB_IDLE_TIMEOUT_MS",
        ),
        (
            O2cbDefaults {
                idle_timeout_ms: 5000,
                reconnect_delay_ms: 6000,
                ..ok.clone()
            },
            "O2CB_RECONNECT_DELAY_MS",
            6000,
            "must be below O2CB_IDLE_TIMEOUT_MS",
        ),
    ];
    for (d, want_setting, want_value, want_reason) in cases {
        match d.validate().unwrap_err() {
            Error::O2cbSettings {
                setting,
                value,
                reason,
            } => {
                assert_eq!(
                    (setting, value, reason),
                    (want_setting, want_value, want_reason)
                );
            }
            e => panic!("unexpected {e:?}"),
        }
    }
    // Disabled without boot cluster is fine.
    O2cbDefaults::default().validate().unwrap();
}

#[test]
fn mounted_ocfs2_detect_sample_and_capture() {
    let rows = parse_mounted_detect(&sample_section("mounted.ocfs2 -d")).unwrap();
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[0].device, "/dev/sdc1");
    assert_eq!(rows[0].stack, None);
    assert_eq!(rows[0].cluster, None);
    assert!(!rows[0].global_heartbeat);
    assert_eq!(rows[0].uuid.as_str(), "23878C320CF3478095D1318CB5C99EED");
    assert_eq!(rows[0].label, "localmount");
    assert_eq!(rows[1].stack.as_deref(), Some("o2cb"));
    assert_eq!(rows[1].cluster.as_deref(), Some("webcluster"));
    assert!(rows[1].global_heartbeat);
    assert_eq!(rows[4].label, "hb1");

    let real = parse_mounted_detect(&body("mounted.ocfs2-d.txt")).unwrap();
    assert_eq!(real.len(), 1);
    assert_eq!(real[0].device, "o.img");
    assert_eq!(real[0].stack.as_deref(), Some("o2cb"));
    assert_eq!(real[0].cluster.as_deref(), Some("kvmcl"));
    assert!(!real[0].global_heartbeat);
    assert_eq!(real[0].uuid.as_str(), "329E6070F06B425EAFC145816B197431");
    assert_eq!(real[0].label, "vmstore");
}

#[test]
fn mounted_ocfs2_full_sample_and_capture() {
    let rows = parse_mounted_full(&sample_section("mounted.ocfs2 -f")).unwrap();
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[0].mounters, Mounters::Unknown);
    assert_eq!(rows[0].stack, None);
    assert_eq!(
        rows[1].mounters,
        Mounters::Nodes(vec!["node1".into(), "node3".into(), "node10".into()])
    );
    assert_eq!(rows[3].device, "/dev/sdh1");
    assert_eq!(rows[3].mounters, Mounters::NotMounted);

    let real = parse_mounted_full(&body("mounted.ocfs2-f.txt")).unwrap();
    assert_eq!(real.len(), 1);
    assert_eq!(real[0].cluster.as_deref(), Some("kvmcl"));
    assert_eq!(real[0].mounters, Mounters::NotMounted);
}

#[test]
fn debugfs_stats_capture() {
    let s = parse_debugfs_stats(&body("debugfs.ocfs2-stats.txt")).unwrap();
    assert_eq!(s.label, "vmstore");
    assert_eq!(s.uuid.as_str(), "329E6070F06B425EAFC145816B197431");
    assert_eq!(s.node_slots, 4);
    assert_eq!(s.block_size, 4096);
    assert_eq!(s.cluster_size, 1 << 20);
    assert_eq!(s.cluster_stack.as_deref(), Some("o2cb"));
    assert_eq!(s.cluster_name.as_deref(), Some("kvmcl"));
    for f in [
        "sparse",
        "unwritten",
        "refcount",
        "metaecc",
        "xattr",
        "indexed-dirs",
        "backup-super",
    ] {
        assert!(
            s.features.iter().any(|x| x == f),
            "missing {f}: {:?}",
            s.features
        );
    }
    assert!(!s.is_local());
    assert!(matches!(
        parse_debugfs_stats("\tLabel: x\n").unwrap_err(),
        Error::Parse {
            reason: "no UUID",
            ..
        }
    ));
}

#[test]
fn blkid_captures_and_refusals() {
    let o = parse_blkid_export(&body("blkid-ocfs2.txt")).unwrap();
    assert_eq!(o.fs_type.as_deref(), Some("ocfs2"));
    assert_eq!(o.label.as_deref(), Some("vmstore"));
    assert_eq!(
        o.uuid.as_deref(),
        Some("329e6070-f06b-425e-afc1-45816b197431")
    );
    assert_eq!(o.usage.as_deref(), Some("filesystem"));
    match o.refusal(std::path::Path::new("/dev/x")).unwrap() {
        Error::HasSignature {
            device,
            kind,
            found,
            label,
        } => {
            assert_eq!(device.to_str(), Some("/dev/x"));
            assert_eq!(kind, SignatureKind::FileSystem);
            assert_eq!(found, "ocfs2");
            assert_eq!(label.as_deref(), Some("vmstore"));
        }
        e => panic!("unexpected {e:?}"),
    }
    let g = parse_blkid_export(&body("blkid-gfs2.txt")).unwrap();
    assert_eq!(g.fs_type.as_deref(), Some("gfs2"));
    assert_eq!(g.label.as_deref(), Some("kvmcl:vm3"));
    let p = parse_blkid_export(&body("blkid-dos-pt.txt")).unwrap();
    assert_eq!(p.pt_type.as_deref(), Some("dos"));
    assert!(matches!(
        p.refusal(std::path::Path::new("/dev/x")),
        Some(Error::HasSignature { kind: SignatureKind::PartitionTable, ref found, .. }) if found == "dos"
    ));
    let blank = parse_blkid_export("").unwrap();
    assert!(blank.is_blank());
    assert!(blank.refusal(std::path::Path::new("/dev/x")).is_none());
    assert!(matches!(
        parse_blkid_export("TYPE=ext4\ngarbage\n").unwrap_err(),
        Error::Parse { line: 2, .. }
    ));
}

#[test]
fn tunegfs2_list_capture() {
    let i = parse_tunegfs2_list(&body("tunegfs2-l.txt")).unwrap();
    assert_eq!(i.label, "kvmcl:vm3");
    assert_eq!(i.uuid.to_string(), "4e6eca39-0362-44bd-8afb-6575294e3906");
    assert_eq!(i.block_size, 4096);
    assert_eq!(i.lock_protocol, "lock_dlm");
    assert_eq!(i.lock_table.unwrap().to_string(), "kvmcl:vm3");
}

#[test]
fn o2cb_list_clusters() {
    assert_eq!(
        parse_list_clusters("kvmcl\nweb\n").unwrap(),
        vec![cl("kvmcl"), cl("web")]
    );
    assert!(parse_list_clusters("bad name\n").is_err());
}

#[test]
fn corosync_lab_config_parses_and_renders() {
    let c = CorosyncConf::parse(&body("corosync-lab.conf")).unwrap();
    assert_eq!(c.cluster_name.as_str(), "labc");
    assert_eq!(c.transport, Transport::Knet);
    assert_eq!(c.crypto, Crypto::None);
    assert_eq!(c.nodes().len(), 1);
    assert_eq!(c.nodes()[0].nodeid, 1);
    assert_eq!(c.nodes()[0].name.as_str(), "virtme-ng");
    assert_eq!(c.nodes()[0].ring0_addr.to_string(), "127.0.0.1");
    let text = c.render().unwrap();
    assert!(!text.contains("two_node"));
    assert_eq!(CorosyncConf::parse(&text).unwrap(), c);
}

#[test]
fn corosync_two_nodes_merge_and_conflicts() {
    let n = |id, name: &str, ip: &str| {
        CorosyncNode::new(id, NodeName::parse(name).unwrap(), ip.parse().unwrap()).unwrap()
    };
    let mut a = CorosyncConf::new(cl("kvmcl"));
    assert_eq!(
        a.add_node(n(1, "kvm1", "10.0.0.11")).unwrap(),
        Change::Changed
    );
    let mut b = CorosyncConf::new(cl("kvmcl"));
    assert_eq!(
        b.add_node(n(2, "kvm2", "10.0.0.12").ring1("10.1.0.12".parse().unwrap()))
            .unwrap(),
        Change::Changed
    );
    assert_eq!(a.merge(&b).unwrap(), Change::Changed);
    assert_eq!(a.merge(&b).unwrap(), Change::Unchanged);
    let text = a.render().unwrap();
    assert_eq!(
        text,
        "# Written by kvmstor.\ntotem {\n\tversion: 2\n\tcluster_name: kvmcl\n\ttransport: knet\n\tcrypto_cipher: none\n\tcrypto_hash: none\n}\n\n\
         nodelist {\n\tnode {\n\t\tring0_addr: 10.0.0.11\n\t\tname: kvm1\n\t\tnodeid: 1\n\t}\n\
         \tnode {\n\t\tring0_addr: 10.0.0.12\n\t\tring1_addr: 10.1.0.12\n\t\tname: kvm2\n\t\tnodeid: 2\n\t}\n}\n\n\
         quorum {\n\tprovider: corosync_votequorum\n\ttwo_node: 1\n}\n\nlogging {\n\tto_syslog: yes\n\tto_stderr: no\n}\n"
    );
    assert_eq!(CorosyncConf::parse(&text).unwrap(), a);
    assert!(matches!(
        a.add_node(n(2, "kvm3", "10.0.0.13")).unwrap_err(),
        Error::ClusterConflict {
            reason: "nodeid already used by another node",
            ..
        }
    ));
    assert!(matches!(
        a.merge(&CorosyncConf::new(cl("other"))).unwrap_err(),
        Error::ClusterConflict {
            reason: "cluster names differ",
            ..
        }
    ));
    assert!(CorosyncNode::new(
        0,
        NodeName::parse("x").unwrap(),
        "10.0.0.1".parse().unwrap()
    )
    .is_err());
    assert!(CorosyncConf::new(cl("e")).render().is_err());
    assert!(matches!(
        CorosyncConf::parse("totem {\n cluster_name: a\n").unwrap_err(),
        Error::Parse {
            reason: "unclosed section",
            ..
        }
    ));
    assert!(matches!(
        CorosyncConf::parse("totem {\n cluster_name: a\n}\nquorum {\n provider: other\n}\n")
            .unwrap_err(),
        Error::Parse {
            line: 4,
            reason: "quorum provider must be corosync_votequorum",
            ..
        }
    ));
}

// ---- identity on synthetic sysfs trees ----

fn sysfs_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let p = d.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    d
}

const W: &str = "3600a0980774f6a34663f57396c4f6b37";

#[test]
fn multipath_map_identity_on_synthetic_sysfs() {
    let sys = sysfs_with(&[(
        "block/dm-3/dm/uuid",
        "mpath-3600a0980774f6a34663f57396c4f6b37\n",
    )]);
    let ok = TargetDevice::new("/nonexistent-dev/dm-3", Identity::wwid(W).unwrap()).unwrap();
    verify_identity(sys.path(), &ok).unwrap();
    let other = TargetDevice::new(
        "/nonexistent-dev/dm-3",
        Identity::wwid("3600a0980774f6a34663f57396c4f6b38").unwrap(),
    )
    .unwrap();
    match verify_identity(sys.path(), &other).unwrap_err() {
        Error::IdentityMismatch {
            device,
            expected,
            actual,
        } => {
            assert_eq!(device.to_str(), Some("/nonexistent-dev/dm-3"));
            assert_eq!(expected, "wwid 3600a0980774f6a34663f57396c4f6b38");
            assert_eq!(actual, "dm uuid mpath-3600a0980774f6a34663f57396c4f6b37");
        }
        e => panic!("unexpected {e:?}"),
    }
}

#[test]
fn partition_map_is_not_the_lun_on_synthetic_sysfs() {
    let sys = sysfs_with(&[(
        "block/dm-4/dm/uuid",
        "part1-mpath-3600a0980774f6a34663f57396c4f6b37\n",
    )]);
    let dev = TargetDevice::new("/nonexistent-dev/dm-4", Identity::wwid(W).unwrap()).unwrap();
    assert!(matches!(
        verify_identity(sys.path(), &dev).unwrap_err(),
        Error::IdentityMismatch { .. }
    ));
}

#[test]
fn scsi_disk_identity_on_synthetic_sysfs() {
    assert_eq!(scsi_wwid_to_udev("t10.NETAPP  LUN"), "1netapp  lun");
    let sys = sysfs_with(&[(
        "block/sdb/device/wwid",
        "naa.600a0980774f6a34663f57396c4f6b37\n",
    )]);
    let dev = TargetDevice::new("/nonexistent-dev/sdb", Identity::wwid(W).unwrap()).unwrap();
    verify_identity(sys.path(), &dev).unwrap();
    let sdc = TargetDevice::new("/nonexistent-dev/sdc", Identity::wwid(W).unwrap()).unwrap();
    match verify_identity(sys.path(), &sdc).unwrap_err() {
        Error::IdentityUnknown { device, sysfs } => {
            assert_eq!(device.to_str(), Some("/nonexistent-dev/sdc"));
            assert_eq!(sysfs, sys.path().join("block"));
        }
        e => panic!("unexpected {e:?}"),
    }
}

#[test]
fn nvme_namespace_identity_on_synthetic_sysfs() {
    let u = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";
    let sys = sysfs_with(&[
        (
            "block/nvme0n1/uuid",
            "1b4e28ba-2fa1-11d2-883f-0016d3cca427\n",
        ),
        (
            "block/nvme1n1/wwid",
            "uuid.1b4e28ba-2fa1-11d2-883f-0016d3cca427\n",
        ),
        ("block/nvme2n1/wwid", "eui.0025388b91b1a1b2\n"),
    ]);
    for dev in ["nvme0n1", "nvme1n1"] {
        let d = TargetDevice::new(
            format!("/nonexistent-dev/{dev}"),
            Identity::nvme_namespace(u).unwrap(),
        )
        .unwrap();
        verify_identity(sys.path(), &d).unwrap();
    }
    let d = TargetDevice::new(
        "/nonexistent-dev/nvme2n1",
        Identity::nvme_namespace(u).unwrap(),
    )
    .unwrap();
    assert!(matches!(
        verify_identity(sys.path(), &d).unwrap_err(),
        Error::IdentityUnknown { .. }
    ));
    let wrong = TargetDevice::new(
        "/nonexistent-dev/nvme0n1",
        Identity::nvme_namespace("00000000-0000-0000-0000-000000000001").unwrap(),
    )
    .unwrap();
    match verify_identity(sys.path(), &wrong).unwrap_err() {
        Error::IdentityMismatch { actual, .. } => {
            assert_eq!(
                actual,
                "nvme namespace uuid 1b4e28ba-2fa1-11d2-883f-0016d3cca427"
            )
        }
        e => panic!("unexpected {e:?}"),
    }
}

#[test]
fn image_file_bypass_only_for_regular_files_on_synthetic_sysfs() {
    let sys = sysfs_with(&[]);
    let img = sys.path().join("x.img");
    std::fs::write(&img, b"").unwrap();
    verify_identity(sys.path(), &TargetDevice::image_file(&img).unwrap()).unwrap();
    // A directory, a missing path, a device node: refused.
    for p in [
        sys.path().to_owned(),
        sys.path().join("missing.img"),
        "/dev/null".into(),
    ] {
        let err = verify_identity(sys.path(), &TargetDevice::image_file(&p).unwrap()).unwrap_err();
        assert!(
            matches!(err, Error::NotAnImageFile { ref device } if device == &p),
            "{err:?}"
        );
        assert!(err.is_refusal());
    }
}

#[test]
fn multipath_path_with_holders_is_refused_on_synthetic_sysfs() {
    let sys = sysfs_with(&[
        (
            "block/sdb/device/wwid",
            "naa.600a0980774f6a34663f57396c4f6b37\n",
        ),
        ("block/sdb/holders/dm-3", ""),
        (
            "block/dm-3/dm/uuid",
            "mpath-3600a0980774f6a34663f57396c4f6b37\n",
        ),
        ("block/dm-3/holders/.keep", ""),
    ]);
    std::fs::remove_file(sys.path().join("block/dm-3/holders/.keep")).unwrap();
    let path = TargetDevice::new("/nonexistent-dev/sdb", Identity::wwid(W).unwrap()).unwrap();
    match verify_identity(sys.path(), &path).unwrap_err() {
        Error::DeviceInUse { device, holders } => {
            assert_eq!(device.to_str(), Some("/nonexistent-dev/sdb"));
            assert_eq!(holders, vec!["dm-3".to_owned()]);
        }
        e => panic!("unexpected {e:?}"),
    }
    // The map itself (empty holders directory) is accepted.
    let map = TargetDevice::new("/nonexistent-dev/dm-3", Identity::wwid(W).unwrap()).unwrap();
    verify_identity(sys.path(), &map).unwrap();
}
