//! The parsers over real outputs captured in the lab guest (Debian 12 tools, Linux 6.1,
//! targets made by ontap-sim's kernel backend: LIO, nvmet, knfsd, samba). Each fixture in
//! `tests/fixtures/lab/` opens with a `# command: … | tool: … | kernel: … | date: …` line.

use std::path::PathBuf;

use host_storage::nvmeof::parse_discovery_json;
use host_storage::parse::iscsi::{parse_sessions, parse_sessions_p3};
use host_storage::parse::mountinfo::parse_mountinfo;
use host_storage::parse::multipath::{parse_multipath_ll, parse_multipathd_maps_json};
use host_storage::parse::nvme::parse_list_subsys;
use host_storage::parse::{Hctl, Portal};

const TARGET: &str = "iqn.1992-08.com.netapp:sn.7e49664cdb1f42a4847d9fbe19700eeb:vs.3";
const SUBSYS: &str = "nqn.1992-08.com.netapp:sn.7e49664cdb1f42a4847d9fbe19700eeb:subsystem.lab_sub";

/// The fixture's body, after checking its header line.
fn lab_fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/lab")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let (header, body) = text.split_once('\n').unwrap();
    assert!(header.starts_with("# command: "), "{name}: {header}");
    assert!(
        header.contains(" | kernel: 6.1.0-56-amd64 | date: 2026-11-26"),
        "{name}: {header}"
    );
    body.to_owned()
}

fn portal(a: &str) -> Portal {
    Portal {
        address: a.to_owned(),
        port: 3260,
    }
}

#[test]
fn iscsiadm_session_two_portals() {
    let s = parse_sessions(&lab_fixture("iscsiadm-session.txt")).unwrap();
    assert_eq!(s.len(), 2);
    assert_eq!(
        (s[0].sid, &s[0].portal, s[0].tpgt),
        (1, &portal("127.0.1.3"), 1)
    );
    assert_eq!(
        (s[1].sid, &s[1].portal, s[1].tpgt),
        (2, &portal("127.0.1.4"), 1)
    );
    assert!(s
        .iter()
        .all(|x| x.target == TARGET && x.transport == "tcp" && !x.flash));
    assert_eq!(s[0].target_iqn().unwrap().as_str(), TARGET);
}

#[test]
fn iscsiadm_session_p3_shows_the_lun_on_each_session() {
    let d = parse_sessions_p3(&lab_fixture("iscsiadm-session-P3.txt")).unwrap();
    assert_eq!(d.len(), 2);
    for (i, (addr, host, disk)) in [("127.0.1.3", 6, "sda"), ("127.0.1.4", 7, "sdb")]
        .into_iter()
        .enumerate()
    {
        let x = &d[i];
        assert_eq!(x.target, TARGET);
        assert_eq!(x.current_portal, Some(portal(addr)));
        assert_eq!(x.tpgt, Some(1));
        assert_eq!(x.sid, i as u32 + 1);
        assert_eq!(
            x.iface_initiator.as_deref(),
            Some("iqn.1994-05.com.redhat:kvmstor-lab")
        );
        assert_eq!(x.session_state.as_deref(), Some("LOGGED_IN"));
        assert_eq!(x.connection_state.as_deref(), Some("LOGGED IN"));
        assert_eq!(x.recovery_timeout, Some(5));
        assert_eq!(x.host_number, Some(host));
        assert_eq!(x.disks.len(), 1);
        assert_eq!(
            x.disks[0].hctl,
            Hctl {
                host,
                channel: 0,
                target: 0,
                lun: 3
            }
        );
        assert_eq!(x.disks[0].disk.as_deref(), Some(disk));
        assert_eq!(x.disks[0].state.as_deref(), Some("running"));
    }
}

#[test]
fn multipath_ll_of_a_lio_lun_with_netapp_identity() {
    let maps = parse_multipath_ll(&lab_fixture("multipath-ll.txt")).unwrap();
    assert_eq!(maps.len(), 1);
    let m = &maps[0];
    assert_eq!(m.wwid.as_str(), "3600140535e8ab0000000000000000000");
    assert!(!m.wwid.is_netapp(), "LIO's NAA, not 3600a0980");
    assert_eq!(m.alias, None);
    assert_eq!(m.dm.as_deref(), Some("dm-0"));
    assert_eq!(
        (m.vendor.as_str(), m.product.as_str()),
        ("NETAPP", "LUN C-Mode")
    );
    assert_eq!(m.size.as_deref(), Some("64M"));
    assert_eq!(m.hwhandler.as_deref(), Some("1 alua"));
    assert_eq!(m.groups.len(), 1);
    assert_eq!(
        (
            m.groups[0].policy.as_str(),
            m.groups[0].prio,
            m.groups[0].status.as_str()
        ),
        ("service-time 0", 50, "active")
    );
    let paths: Vec<(&str, Hctl, bool)> = m
        .paths()
        .map(|p| (p.dev.as_str(), p.hctl, p.is_healthy()))
        .collect();
    assert_eq!(
        paths,
        [
            (
                "sda",
                Hctl {
                    host: 6,
                    channel: 0,
                    target: 0,
                    lun: 3
                },
                true
            ),
            (
                "sdb",
                Hctl {
                    host: 7,
                    channel: 0,
                    target: 0,
                    lun: 3
                },
                true
            )
        ]
    );
    assert!(!m.all_paths_failed());
}

#[test]
fn multipathd_show_maps_json_from_the_lab() {
    let maps = parse_multipathd_maps_json(&lab_fixture("multipathd-show-maps-json.txt")).unwrap();
    assert_eq!((maps.major_version, maps.minor_version), (0, 1));
    assert_eq!(maps.maps.len(), 1);
    let m = &maps.maps[0];
    assert_eq!(m.name, "3600140535e8ab0000000000000000000");
    assert_eq!(m.uuid.as_str(), "3600140535e8ab0000000000000000000");
    assert_eq!(
        (m.sysfs.as_str(), m.paths, m.dm_st.as_str()),
        ("dm-0", 2, "active")
    );
    assert_eq!(m.queueing.as_deref(), Some("on"));
    assert_eq!(
        m.features.as_deref(),
        Some("3 queue_if_no_path pg_init_retries 50")
    );
}

#[test]
fn nvme_list_subsys_two_live_tcp_paths() {
    let hosts = parse_list_subsys(&lab_fixture("nvme-list-subsys.json")).unwrap();
    assert_eq!(hosts.len(), 1);
    assert_eq!(
        hosts[0].host_id.as_deref(),
        Some("db46f19d-f8bb-4164-856b-d7c838a88265")
    );
    assert_eq!(hosts[0].subsystems.len(), 1);
    let s = &hosts[0].subsystems[0];
    assert_eq!((s.name.as_str(), s.nqn.as_str()), ("nvme-subsys0", SUBSYS));
    let paths: Vec<(Option<&str>, Option<&str>, bool)> = s
        .paths
        .iter()
        .map(|p| (p.name.as_deref(), p.address_field("traddr"), p.is_live()))
        .collect();
    assert_eq!(
        paths,
        [
            (Some("nvme0"), Some("127.0.1.5"), true),
            (Some("nvme1"), Some("127.0.1.6"), true)
        ]
    );
    assert!(s.paths.iter().all(
        |p| p.transport.as_deref() == Some("tcp") && p.address_field("trsvcid") == Some("4420")
    ));
}

#[test]
fn nvme_discover_json_lists_the_subsystem_and_the_discovery_controller() {
    let recs = parse_discovery_json(&lab_fixture("nvme-discover.json")).unwrap();
    assert_eq!(recs.len(), 2);
    assert!(!recs[0].is_io_subsystem());
    assert_eq!(recs[0].subnqn, "nqn.2014-08.org.nvmexpress.discovery");
    assert!(recs[1].is_io_subsystem());
    assert_eq!(
        (
            recs[1].subnqn.as_str(),
            recs[1].traddr.as_str(),
            recs[1].trtype.as_str()
        ),
        (SUBSYS, "127.0.1.5", "tcp")
    );
}

#[test]
fn mountinfo_nfs41_with_nconnect() {
    let m = parse_mountinfo(&lab_fixture("mountinfo-nfs41-nconnect.txt")).unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].mount_point, PathBuf::from("/tmp/lab/nfs41"));
    assert_eq!(
        (m[0].fstype.as_str(), m[0].source.as_str()),
        ("nfs4", "127.0.1.1:/lab_nfs41")
    );
    assert!(m[0].super_options.split(',').any(|o| o == "nconnect=4"));
    assert!(m[0].super_options.split(',').any(|o| o == "vers=4.1"));
}

#[test]
fn mountinfo_trunked_mounts_share_one_superblock() {
    let m = parse_mountinfo(&lab_fixture("mountinfo-nfs41-trunked.txt")).unwrap();
    assert_eq!(m.len(), 2);
    // The mount through 127.0.1.2 joined the client of 127.0.1.1: same device, same source.
    assert_eq!(m[0].dev, m[1].dev);
    assert_eq!(m[1].source, "127.0.1.1:/lab_nfstrunk");
    assert!(m.iter().all(|e| e.super_options.contains("max_connect=2")));
}

#[test]
fn mountinfo_autofs_trigger_with_nfs_on_top() {
    let m = parse_mountinfo(&lab_fixture("mountinfo-autofs-nfs.txt")).unwrap();
    assert_eq!(m.len(), 2);
    assert_eq!(
        (m[0].fstype.as_str(), m[0].source.as_str()),
        ("autofs", "/etc/auto.kvmstorlab")
    );
    assert!(m[0].super_options.contains("direct"));
    assert_eq!(m[1].parent, m[0].id);
    assert_eq!(
        (m[1].fstype.as_str(), m[1].source.as_str()),
        ("nfs4", "127.0.1.2:/lab_nfsauto")
    );
}

#[test]
fn mountinfo_cifs_multichannel() {
    let m = parse_mountinfo(&lab_fixture("mountinfo-cifs-multichannel.txt")).unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!(
        (m[0].fstype.as_str(), m[0].source.as_str()),
        ("cifs", "//127.0.1.1/labshare")
    );
    let opts: Vec<&str> = m[0].super_options.split(',').collect();
    for o in [
        "vers=3.1.1",
        "multichannel",
        "max_channels=2",
        "username=labsmb",
    ] {
        assert!(opts.contains(&o), "{o} in {opts:?}");
    }
}
