//! Parsers on real captures (tests/fixtures, each with its `# SOURCE:` header).

use std::path::PathBuf;

use host_storage::parse::dmsetup::{parse_dmsetup_status, GroupState};
use host_storage::parse::iscsi::{
    parse_discoverydb, parse_initiator_name, parse_sessions, parse_sessions_p3,
};
use host_storage::parse::mountinfo::parse_mountinfo;
use host_storage::parse::multipath::{parse_multipath_ll, parse_multipathd_maps_json};
use host_storage::parse::nvme::{
    parse_address, parse_hostid, parse_hostnqn, parse_list_subsys, parse_ontap_devices,
    parse_show_topology,
};
use host_storage::parse::{Hctl, Portal};
use host_storage::{Error, Format, Iqn, LunSerial};

/// The fixture's sample: the text after the `---` line, or after the leading `#` lines when
/// the file has no `---`.
fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("# SOURCE") || text.starts_with("# Source"),
        "{name} lost its header"
    );
    match text.split_once("\n---\n") {
        Some((_, body)) => body.to_owned(),
        None => text
            .lines()
            .skip_while(|l| l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect(),
    }
}

/// Splits a sample into sections headed by lines starting with `marker`; lines starting with
/// `# ` inside a section are notes and dropped.
fn sections(text: &str, marker: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(title) = line.strip_prefix(marker) {
            out.push((title.to_owned(), String::new()));
        } else if let Some((_, body)) = out.last_mut() {
            if !line.starts_with("# ") {
                body.push_str(line);
                body.push('\n');
            }
        }
    }
    out
}

fn section(text: &str, marker: &str, title_start: &str) -> String {
    sections(text, marker)
        .into_iter()
        .find(|(t, _)| t.starts_with(title_start))
        .unwrap_or_else(|| panic!("no section {title_start:?}"))
        .1
}

fn portal(a: &str, p: u16) -> Portal {
    Portal {
        address: a.into(),
        port: p,
    }
}

// ---------------------------------------------------------------- iSCSI

#[test]
fn iscsi_sessions_real_ontap_lines() {
    let text = fixture("iscsiadm-m-session_trident_osbrick.txt");
    let real: String = text.lines().take(2).map(|l| format!("{l}\n")).collect();
    let s = parse_sessions(&real).unwrap();
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].transport, "tcp");
    assert_eq!(s[0].sid, 3);
    assert_eq!(s[0].portal, portal("10.0.207.7", 3260));
    assert_eq!(s[0].tpgt, 1028);
    assert_eq!(
        s[0].target,
        "iqn.1992-08.com.netapp:sn.afbb1784f77411e582f8080027e22798:vs.3"
    );
    assert!(!s[0].flash);
    assert_eq!(s[1].sid, 4);
    assert_eq!(s[1].portal, portal("10.0.207.9", 3260));
    assert_eq!(s[1].tpgt, 1029);
    assert_eq!(s[0].target_iqn().unwrap(), s[1].target_iqn().unwrap());
}

#[test]
fn iscsi_sessions_edge_cases_of_osbrick_fixture() {
    // The os-brick fixture uses placeholders (`[session1]`, `ip1:port1`): they are not
    // real output and must be refused with the line number.
    let text = fixture("iscsiadm-m-session_trident_osbrick.txt");
    let placeholders: String = text
        .lines()
        .filter(|l| l.starts_with("tcp: [session"))
        .map(|l| format!("{l}\n"))
        .collect();
    match parse_sessions(&placeholders).unwrap_err() {
        Error::Parse { format, line, .. } => {
            assert_eq!(format, Format::IscsiSession);
            assert_eq!(line, 1);
        }
        other => panic!("unexpected {other:?}"),
    }
    // The shapes it covers, with real values: tpgt -1, no `(non-flash)`, IPv6, flash.
    let s = parse_sessions(
        "tcp: [12] 10.0.0.2:3260,-1 iqn.1992-08.com.netapp:sn.1:vs.2 (non-flash)\n\
         tcp: [13] 10.0.0.3:3260,1 iqn.1992-08.com.netapp:sn.1:vs.2\n\
         tcp: [14] [fd00::7]:3260,1030 iqn.1992-08.com.netapp:sn.1:vs.2 (non-flash)\n\
         iser: [15] 10.0.0.4:3260,1 iqn.1992-08.com.netapp:sn.1:vs.2 (flash)\n",
    )
    .unwrap();
    assert_eq!(s[0].tpgt, -1);
    assert_eq!(s[1].tpgt, 1);
    assert!(!s[1].flash);
    assert_eq!(s[2].portal, portal("fd00::7", 3260));
    assert_eq!(s[2].portal.to_string(), "[fd00::7]:3260");
    assert_eq!(s[3].transport, "iser");
    assert!(s[3].flash);
    assert_eq!(parse_sessions("").unwrap(), vec![]);
}

#[test]
fn iscsi_session_p3_real_ovirt_capture() {
    let s = parse_sessions_p3(&fixture("iscsiadm-m-session-P3_ovirt.txt")).unwrap();
    assert_eq!(s.len(), 2);
    let a = &s[0];
    assert_eq!(a.target, "iqn.2017-10.com.redhat.stirabos:data");
    assert_eq!(a.current_portal, Some(portal("192.168.1.125", 3260)));
    assert_eq!(a.persistent_portal, Some(portal("192.168.1.125", 3260)));
    assert_eq!(a.tpgt, Some(1));
    assert_eq!(a.iface_name.as_deref(), Some("default"));
    assert_eq!(a.iface_transport.as_deref(), Some("tcp"));
    assert_eq!(
        a.iface_initiator.as_deref(),
        Some("iqn.1994-05.com.redhat:6a4517b3773a")
    );
    assert_eq!(a.iface_ip.as_deref(), Some("192.168.1.14"));
    assert_eq!(a.sid, 1);
    assert_eq!(a.connection_state.as_deref(), Some("LOGGED IN"));
    assert_eq!(a.session_state.as_deref(), Some("LOGGED_IN"));
    assert_eq!(a.recovery_timeout, Some(5));
    assert_eq!(a.host_number, Some(3));
    let disks: Vec<(String, Option<&str>, Option<&str>)> = a
        .disks
        .iter()
        .map(|d| (d.hctl.to_string(), d.disk.as_deref(), d.state.as_deref()))
        .collect();
    assert_eq!(
        disks,
        [
            ("3:0:0:2".to_owned(), Some("sdb"), Some("running")),
            ("3:0:0:3".to_owned(), Some("sdc"), Some("running")),
        ]
    );
    let b = &s[1];
    assert_eq!(b.target, "iqn.2017-10.com.redhat.stirabos:he");
    assert_eq!(b.sid, 4);
    assert_eq!(b.host_number, Some(6));
    assert_eq!(
        b.disks.iter().map(|d| d.hctl).collect::<Vec<_>>(),
        [
            Hctl {
                host: 6,
                channel: 0,
                target: 0,
                lun: 0
            },
            Hctl {
                host: 6,
                channel: 0,
                target: 0,
                lun: 1
            },
        ]
    );
    assert_eq!(b.disks[1].disk.as_deref(), Some("sde"));
    // CHAP values are not kept anywhere.
    assert!(!format!("{s:?}").contains("********"));
}

#[test]
fn iscsi_discoverydb_p1_osbrick_capture() {
    let recs = parse_discoverydb(&fixture("iscsiadm-discoverydb-P1_osbrick.txt")).unwrap();
    assert_eq!(
        recs.iter()
            .map(|r| r.address.to_string())
            .collect::<Vec<_>>(),
        ["192.168.1.33:3260", "192.168.1.2:3260", "192.168.1.38:3260"]
    );
    assert!(recs[0].targets.is_empty());
    assert!(recs[2].targets.is_empty());
    let t = &recs[1].targets;
    assert_eq!(t.len(), 2);
    assert_eq!(
        t[0].target,
        "iqn.2004-04.com.qnap:ts-831x:iscsi.cinder-20170531114245.9eff88"
    );
    assert_eq!(
        t[1].target,
        "iqn.2004-04.com.qnap:ts-831x:iscsi.cinder-20170531114447.9eff88"
    );
    for target in t {
        assert_eq!(
            target
                .portals
                .iter()
                .map(|p| (p.portal.to_string(), p.tpgt, p.iface.as_deref()))
                .collect::<Vec<_>>(),
            [
                ("192.168.1.3:3260".to_owned(), 1, Some("default")),
                ("192.168.1.2:3260".to_owned(), 1, Some("default")),
            ]
        );
    }
}

#[test]
fn initiator_name_file_variants() {
    let text = fixture("initiatorname-hostnqn-nvme-fabrics-conf.txt");
    let file = section(&text, "### ", "/etc/iscsi/initiatorname.iscsi");
    assert!(file.contains("## DO NOT EDIT"));
    assert_eq!(
        parse_initiator_name(&file).unwrap(),
        Iqn::parse("iqn.2005-03.org.open-iscsi:123abc456de").unwrap()
    );
    // Tolerated forms named in the sample's note.
    for v in [
        "InitiatorName = iqn.2005-03.org.open-iscsi:123abc456de",
        "   InitiatorName=iqn.2005-03.org.open-iscsi:123abc456de",
        "InitiatorName=iqn.2005-03.org.open-iscsi:123abc456de #comment",
        "#InitiatorName=iqn.1994-05.demo.netapp.com\nInitiatorName=iqn.2005-03.org.open-iscsi:123abc456de\nInitiatorName=iqn.1994-05.demo.netapp.com",
    ] {
        assert_eq!(
            parse_initiator_name(v).unwrap().as_str(),
            "iqn.2005-03.org.open-iscsi:123abc456de",
            "{v:?}"
        );
    }
    assert!(matches!(
        parse_initiator_name("## only comments\n"),
        Err(Error::Parse {
            format: Format::InitiatorName,
            ..
        })
    ));
    assert!(matches!(
        parse_initiator_name("InitiatorName=not-an-iqn"),
        Err(Error::Invalid { .. })
    ));
}

// ---------------------------------------------------------------- multipath

#[test]
fn multipath_ll_real_ontap_healthy_alua() {
    let text = fixture("multipath-ll_netapp_ontap_real.txt");
    let maps = parse_multipath_ll(&section(&text, "### ", "(c)")).unwrap();
    assert_eq!(maps.len(), 1);
    let m = &maps[0];
    assert_eq!(m.wwid.as_str(), "3600a0980774f6a34663f57396c4f6b37");
    assert_eq!(m.wwid, LunSerial::parse("wOj4f?W9lOk7").unwrap().naa_wwid());
    assert_eq!(m.alias, None);
    assert_eq!(m.name(), "3600a0980774f6a34663f57396c4f6b37");
    assert_eq!(m.dm.as_deref(), Some("dm-2"));
    assert_eq!(m.vendor, "NETAPP");
    assert_eq!(m.product, "LUN C-Mode");
    assert_eq!(m.size.as_deref(), Some("12G"));
    assert_eq!(
        m.features.as_deref(),
        Some("3 queue_if_no_path pg_init_retries 50")
    );
    assert_eq!(m.hwhandler.as_deref(), Some("1 alua"));
    assert_eq!(m.write_protect.as_deref(), Some("rw"));
    assert_eq!(m.groups.len(), 2);
    assert_eq!(
        (
            m.groups[0].policy.as_str(),
            m.groups[0].prio,
            m.groups[0].status.as_str()
        ),
        ("service-time 0", 50, "active")
    );
    assert_eq!(
        (
            m.groups[1].policy.as_str(),
            m.groups[1].prio,
            m.groups[1].status.as_str()
        ),
        ("service-time 0", 10, "enabled")
    );
    assert_eq!(
        m.groups[0]
            .paths
            .iter()
            .map(|p| p.dev.as_str())
            .collect::<Vec<_>>(),
        ["sdc", "sdd"]
    );
    assert_eq!(
        m.groups[1]
            .paths
            .iter()
            .map(|p| p.dev.as_str())
            .collect::<Vec<_>>(),
        ["sdb", "sde", "sdh", "sdf", "sdg", "sdi"]
    );
    let last = &m.groups[1].paths[5];
    assert_eq!(
        last.hctl,
        Hctl {
            host: 40,
            channel: 0,
            target: 0,
            lun: 0
        }
    );
    assert_eq!(last.dev_t, "8:128");
    assert_eq!(
        (
            last.dm_state.as_str(),
            last.checker_state.as_str(),
            last.dev_state.as_str()
        ),
        ("active", "ready", "running")
    );
    assert_eq!(m.paths().count(), 8);
    assert!(!m.all_paths_failed());
}

#[test]
fn multipath_ll_real_ontap_all_sections() {
    let text = fixture("multipath-ll_netapp_ontap_real.txt");
    // The whole file minus headers: four maps in a row.
    let all: String = sections(&text, "### ")
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    let maps = parse_multipath_ll(&all).unwrap();
    assert_eq!(
        maps.iter()
            .map(|m| (
                m.wwid.as_str(),
                m.dm.as_deref().unwrap(),
                m.size.as_deref().unwrap(),
                m.paths().count()
            ))
            .collect::<Vec<_>>(),
        [
            ("3600a0980774f6a34663f57396c4f6b37", "dm-2", "12G", 8),
            ("3600a0980774f6a34712b572d41767173", "dm-3", "2.0G", 2),
            ("3600a0980383147586e5d536f7839776d", "dm-12", "50G", 2),
            ("3600a0980383138452d2b55794670776d", "dm-0", "256G", 1),
        ]
    );
    // (a) stale map: every path failed faulty.
    let stale = &maps[2];
    assert!(stale.all_paths_failed());
    assert_eq!(
        stale.groups.iter().map(|g| g.prio).collect::<Vec<_>>(),
        [0, 0]
    );
    assert_eq!(
        stale
            .paths()
            .map(|p| (
                p.hctl.to_string(),
                p.dm_state.as_str(),
                p.checker_state.as_str()
            ))
            .collect::<Vec<_>>(),
        [
            ("3:0:0:2".to_owned(), "failed", "faulty"),
            ("4:0:0:2".to_owned(), "failed", "faulty"),
        ]
    );
    assert_eq!(
        stale.wwid.netapp_lun_serial().unwrap().as_str(),
        "81GXn]Sox9wm"
    );
    // (b) degraded single path.
    assert_eq!(maps[3].groups.len(), 1);
    assert!(!maps[3].all_paths_failed());
    assert!(maps.iter().all(|m| m.wwid.is_netapp()));
}

#[test]
fn multipath_l_osbrick_fixtures_with_aliases_and_noise() {
    let text = fixture("multipath-l_osbrick_fixtures.txt");
    let s = sections(&text, "## ");
    assert_eq!(s.len(), 5);
    let parsed: Vec<_> = s
        .iter()
        .map(|(t, b)| (t.clone(), parse_multipath_ll(b).unwrap()))
        .collect();

    let (_, threepar) = &parsed[0];
    assert_eq!(threepar[0].alias.as_deref(), Some("mpath6"));
    assert_eq!(threepar[0].wwid.as_str(), "350002ac20398383d");
    assert_eq!(threepar[0].name(), "mpath6");
    assert_eq!(threepar[0].vendor, "3PARdata");
    assert_eq!(threepar[0].product, "VV");
    assert_eq!(threepar[0].groups[0].prio, -1);
    assert_eq!(threepar[0].groups[0].policy, "round-robin 0");
    assert_eq!(threepar[0].groups[0].paths[0].checker_state, "undef");
    assert!(!threepar[0].all_paths_failed());

    let (_, svc) = &parsed[1];
    assert_eq!(svc[0].features.as_deref(), Some("1 queue_if_no_path"));
    assert_eq!(svc[0].hwhandler.as_deref(), Some("0"));
    assert_eq!(svc[0].groups.len(), 2);
    assert_eq!(svc[0].groups[1].paths[1].hctl.to_string(), "6:0:5:0");

    // Timestamped log lines before the map are skipped.
    for (title, maps) in &parsed[2..4] {
        assert_eq!(maps.len(), 1, "{title}");
        assert_eq!(maps[0].wwid.as_str(), "36005076303ffc48e0000000000000101");
        assert_eq!(
            maps[0]
                .paths()
                .map(|p| p.hctl.to_string())
                .collect::<Vec<_>>(),
            ["6:0:2:0", "6:1:0:3"]
        );
    }
    let (_, pure) = &parsed[4];
    assert_eq!(pure.len(), 1);
    assert_eq!(pure[0].dm.as_deref(), Some("dm-84"));
    assert_eq!(pure[0].vendor, "PURE");
    assert_eq!(pure[0].product, "FlashArray");
    assert_eq!(pure[0].groups[0].paths[1].dev, "sdac");
    assert_eq!(pure[0].groups[0].paths[1].dev_t, "65:192");
}

#[test]
fn multipath_ll_refuses_garbage_with_line() {
    let err = parse_multipath_ll(
        "3600a0980774f6a34663f57396c4f6b37 dm-2 NETAPP,LUN C-Mode\n`- not a path\n",
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Parse {
                format: Format::MultipathLl,
                line: 2,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(parse_multipath_ll("").unwrap(), vec![]);
    // multipath prints `create:` when it builds a map.
    let m =
        parse_multipath_ll("create: 3600a0980383138452d2b55794670776d dm-0 NETAPP,LUN C-Mode\n")
            .unwrap();
    assert_eq!(m[0].dm.as_deref(), Some("dm-0"));
}

#[test]
fn multipathd_maps_json_from_template() {
    let doc =
        parse_multipathd_maps_json(&fixture("multipathd-show-maps-json_constructed.json.txt"))
            .unwrap();
    assert_eq!((doc.major_version, doc.minor_version), (0, 1));
    let m = &doc.maps[0];
    assert_eq!(m.uuid.as_str(), "3600a0980774f6a34712b572d41767173");
    assert_eq!(m.sysfs, "dm-3");
    assert_eq!(m.paths, 2);
    assert_eq!(m.dm_st, "active");
    assert_eq!(m.vend.as_deref(), Some("NETAPP"));
    assert_eq!(m.prod.as_deref(), Some("LUN C-Mode"));
    let g = &m.path_groups[0];
    assert_eq!(
        (g.selector.as_str(), g.pri, g.group),
        ("service-time 0", 50, 1)
    );
    assert_eq!(
        g.paths
            .iter()
            .map(|p| (
                p.dev.as_str(),
                p.dev_t.as_str(),
                p.chk_st.as_str(),
                p.target_wwpn.as_deref()
            ))
            .collect::<Vec<_>>(),
        [
            ("sdc", "8:32", "ready", Some("10.0.207.7")),
            ("sdb", "8:16", "ready", Some("10.0.207.9"))
        ]
    );
    assert!(matches!(
        parse_multipathd_maps_json("{\"maps\": 3}"),
        Err(Error::Json {
            format: Format::MultipathdJson,
            ..
        })
    ));
}

#[test]
fn dmsetup_status_vdsm_capture() {
    let text = fixture("dmsetup-status-multipath_vdsm.txt");
    let sample: String = text
        .lines()
        .filter(|l| !l.starts_with("# "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(sample.ends_with("No devices found\n"));
    let s = parse_dmsetup_status(&sample).unwrap();
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].name, "360014053d0b83eff3d347c48509fc426");
    assert_eq!(s[0].sectors, 104857600);
    assert_eq!(s[0].groups.len(), 3);
    assert!(s[0].groups.iter().all(|g| g.state == GroupState::Enabled));
    assert_eq!(
        s[0].groups
            .iter()
            .flat_map(|g| &g.paths)
            .map(|p| (p.dev_t.as_str(), p.active, p.fail_count))
            .collect::<Vec<_>>(),
        [
            ("67:16", false, 4),
            ("65:240", true, 84),
            ("66:64", true, 39)
        ]
    );
    assert_eq!(s[0].active_paths(), 2);
    assert_eq!(s[1].groups[0].state, GroupState::Active);
    assert_eq!(
        s[1].groups
            .iter()
            .flat_map(|g| &g.paths)
            .map(|p| (p.dev_t.as_str(), p.active, p.fail_count))
            .collect::<Vec<_>>(),
        [
            ("65:224", true, 0),
            ("65:160", true, 0),
            ("66:176", false, 1)
        ]
    );
    assert_eq!(parse_dmsetup_status("No devices found\n").unwrap(), vec![]);
    // Non-multipath targets are skipped; a truncated multipath line is refused.
    assert_eq!(
        parse_dmsetup_status("vg-root: 0 2048 linear \n").unwrap(),
        vec![]
    );
    assert!(matches!(
        parse_dmsetup_status("x: 0 8 multipath 2 0 1 0 3 2 E 0 1 1 67:16\n"),
        Err(Error::Parse {
            format: Format::DmsetupStatus,
            line: 1,
            ..
        })
    ));
}

// ---------------------------------------------------------------- NVMe

#[test]
fn nvme_list_subsys_array_and_object_shapes() {
    let text = fixture("nvme-list-subsys-json_trident_mocks.json.txt");
    let s = sections(&text, "// ");
    assert_eq!(s.len(), 2);
    for (title, body) in &s {
        let hosts = parse_list_subsys(body).unwrap();
        assert_eq!(hosts.len(), 1, "{title}");
        let h = &hosts[0];
        assert_eq!(
            h.host_nqn.as_deref(),
            Some("nqn.2014-08.org.mock:uuid:a48f0944-3ab0-4e5b-8019-79192500a44e")
        );
        assert_eq!(h.subsystems.len(), 1);
        let sub = &h.subsystems[0];
        assert_eq!(
            (sub.name.as_str(), sub.nqn.as_str()),
            ("nvme-subsys0", "mock-nqn")
        );
        assert_eq!(sub.io_policy.as_deref(), Some("numa"));
        assert_eq!(
            sub.paths
                .iter()
                .map(|p| p.address.as_deref().unwrap())
                .collect::<Vec<_>>(),
            ["mock-address-1", "mock-address-2"]
        );
    }
}

#[test]
fn nvme_list_subsys_v1_alternating_layout_and_v2_fields() {
    // nvme-cli 1.x layout (constructed after its json_print_nvme_subsystem_list): each
    // subsystem is followed by a separate object holding only its paths.
    let v1 = r#"{
  "Subsystems" : [
    {"Name" : "nvme-subsys0", "NQN" : "nqn.1992-08.com.netapp:sn.1a3ca52d792611ec802600a098fd4ca6:subsystem.subsys_145"},
    {"Paths" : [{"Name" : "nvme0", "Transport" : "fc", "Address" : "traddr=nn-0x202400a098fd4ca6:pn-0x202500a098fd4ca6 host_traddr=nn-0x200000109b579d5e:pn-0x100000109b579d5e", "State" : "live"}]}
  ]
}"#;
    let h = parse_list_subsys(v1).unwrap();
    assert_eq!(h[0].host_nqn, None);
    let sub = &h[0].subsystems[0];
    assert_eq!(sub.paths.len(), 1);
    assert_eq!(
        sub.paths[0].address_field("traddr"),
        Some("nn-0x202400a098fd4ca6:pn-0x202500a098fd4ca6")
    );
    assert_eq!(
        sub.paths[0].address_field("host_traddr"),
        Some("nn-0x200000109b579d5e:pn-0x100000109b579d5e")
    );
    assert!(sub.paths[0].is_live());
    assert_eq!(sub.paths[0].ana_state, None);

    let v2 = r#"[{"HostNQN":"nqn.2014-08.org.nvmexpress:uuid:12372496-59c4-4d1b-be09-74362c0c1afc","HostID":"d2df33b9-3eed-4a71-93bd-54a0f92fc9e3","Subsystems":[{"Name":"nvme-subsys28","NQN":"nqn.1992-08.com.netapp:sn.b81bb6bdc1d911ec81a400a098fd4ca6:subsystem.nvme_chat-16-117_3","IOPolicy":"round-robin","Paths":[{"Name":"nvme28","Transport":"fc","Address":"traddr=nn-0x204800a098fd4ca6:pn-0x204a00a098fd4ca6,host_traddr=nn-0x20000090fa94298d:pn-0x10000090fa94298d","State":"live","ANAState":"optimized"}]}]}]"#;
    let h = parse_list_subsys(v2).unwrap();
    assert_eq!(
        h[0].host_id.as_deref(),
        Some("d2df33b9-3eed-4a71-93bd-54a0f92fc9e3")
    );
    let p = &h[0].subsystems[0].paths[0];
    assert_eq!(p.ana_state.as_deref(), Some("optimized"));
    assert_eq!(
        p.address_field("host_traddr"),
        Some("nn-0x20000090fa94298d:pn-0x10000090fa94298d")
    );
    assert!(matches!(
        parse_list_subsys(r#"{"Subsystems":[{"Paths":[]}]}"#),
        Err(Error::Parse {
            format: Format::NvmeListSubsys,
            ..
        })
    ));
}

#[test]
fn nvme_address_text_forms_of_both_versions() {
    // The 1.x and 2.x text captures write the same address with a space or a comma.
    let text = fixture("nvme-show-topology-and-list-subsys_text.txt");
    let addrs: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" fc traddr="))
        .map(|l| {
            l.split(" fc ")
                .nth(1)
                .unwrap()
                .rsplit_once(" live")
                .unwrap()
                .0
        })
        .collect();
    assert_eq!(addrs.len(), 2);
    let v1 = parse_address(addrs[0]);
    let v2 = parse_address(addrs[1]);
    assert_eq!(
        v1.get("traddr"),
        Some(&"nn-0x202400a098fd4ca6:pn-0x202500a098fd4ca6")
    );
    assert_eq!(
        v1.get("host_traddr"),
        Some(&"nn-0x200000109b579d5e:pn-0x100000109b579d5e")
    );
    assert_eq!(
        v2.get("traddr"),
        Some(&"nn-0x204800a098fd4ca6:pn-0x204a00a098fd4ca6")
    );
    assert_eq!(
        v2.get("host_traddr"),
        Some(&"nn-0x20000090fa94298d:pn-0x10000090fa94298d")
    );
}

#[test]
fn nvme_show_topology_ontap_capture() {
    let hosts = parse_show_topology(&fixture("nvme-show-topology-json_ontap.json.txt")).unwrap();
    assert_eq!(hosts.len(), 1);
    assert_eq!(
        hosts[0].host_nqn.as_deref(),
        Some("nqn.2014-08.org.nvmexpress:uuid:12372496-59c4-4d1b-be09-74362c0c1afc")
    );
    assert_eq!(
        hosts[0].host_id.as_deref(),
        Some("d2df33b9-3eed-4a71-93bd-54a0f92fc9e3")
    );
    let sub = &hosts[0].subsystems[0];
    assert_eq!(sub.name, "nvme-subsys1");
    assert_eq!(
        sub.nqn,
        "nqn.1992-08.com.netapp:sn.48391d66c0a611ecaaa5d039ea165514:subsystem.subsys_CLIENT116"
    );
    let ns = &sub.namespaces[0];
    assert_eq!(ns.nsid, 2);
    assert_eq!(
        ns.paths
            .iter()
            .map(|p| (
                p.name.as_deref().unwrap(),
                p.address_field("traddr").unwrap(),
                p.ana_state.as_deref()
            ))
            .collect::<Vec<_>>(),
        [
            ("nvme1", "192.168.2.117", Some("non-optimized")),
            ("nvme2", "192.168.1.117", Some("non-optimized")),
            ("nvme3", "192.168.2.116", Some("optimized")),
            ("nvme4", "192.168.1.116", None),
        ]
    );
    assert!(ns.paths[..3]
        .iter()
        .all(|p| p.is_live() && p.transport.as_deref() == Some("tcp")));
    assert_eq!(
        ns.paths[0].address_field("host_traddr"),
        Some("192.168.1.16")
    );
}

#[test]
fn nvme_netapp_ontapdevices_fields() {
    let d = parse_ontap_devices(&fixture("nvme-netapp-ontapdevices-json_FIELDS.txt")).unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].device, "/dev/nvme0n1");
    assert_eq!(d[0].vserver, "<svm>");
    assert_eq!(d[0].subsystem.as_deref(), Some("<subsystem name>"));
    assert_eq!(d[0].namespace_path, "/vol/<vol>/<ns>");
    assert_eq!(d[0].nsid, 1);
    assert_eq!(d[0].lba_size, 4096);
    assert_eq!(d[0].size, 10737418240);
    assert_eq!(d[0].used_bytes, Some(0));
    assert_eq!(parse_ontap_devices("").unwrap(), vec![]);
}

#[test]
fn nvme_host_files() {
    let text = fixture("initiatorname-hostnqn-nvme-fabrics-conf.txt");
    let nqn = section(&text, "### ", "/etc/nvme/hostnqn");
    assert_eq!(
        parse_hostnqn(&nqn).unwrap().as_str(),
        "nqn.2014-08.org.nvmexpress:uuid:12372496-59c4-4d1b-be09-74362c0c1afc"
    );
    let id = section(&text, "### ", "/etc/nvme/hostid");
    assert_eq!(
        parse_hostid(&id).unwrap(),
        "d2df33b9-3eed-4a71-93bd-54a0f92fc9e3"
    );
    assert_eq!(
        parse_hostid("D2DF33B9-3EED-4A71-93BD-54A0F92FC9E3\n").unwrap(),
        "d2df33b9-3eed-4a71-93bd-54a0f92fc9e3"
    );
    assert!(parse_hostid("not-a-uuid").is_err());
    assert!(parse_hostnqn("\n").is_err());
}

// ---------------------------------------------------------------- mounts

#[test]
fn mountinfo_own_capture_and_kernel_example() {
    let m = parse_mountinfo(&fixture("mountinfo_own-run.txt")).unwrap();
    assert_eq!(m.len(), 21);
    let root = m
        .iter()
        .find(|e| e.mount_point.to_str() == Some("/"))
        .unwrap();
    assert_eq!((root.id, root.parent, root.dev.as_str()), (27, 1, "254:0"));
    assert_eq!(
        (root.fstype.as_str(), root.source.as_str()),
        ("ext4", "/dev/vda")
    );
    assert_eq!(root.super_option("resuid"), Some("65534"));
    assert!(root.optional.is_empty());

    let k = &m[19];
    assert_eq!(k.root.to_str(), Some("/mnt1"));
    assert_eq!(k.mount_point.to_str(), Some("/mnt2"));
    assert_eq!(k.mount_options, "rw,noatime");
    assert_eq!(k.optional, ["master:1"]);
    assert_eq!(
        (k.fstype.as_str(), k.source.as_str()),
        ("ext3", "/dev/root")
    );
    assert_eq!(k.super_options, "rw,errors=continue");

    let nfs = &m[20];
    assert_eq!(nfs.mount_point.to_str(), Some("/mnt/vm store"));
    assert_eq!(nfs.fstype, "nfs4");
    assert_eq!(nfs.source, "10.0.0.5:/vol/vm");
    assert_eq!(nfs.super_option("vers"), Some("4.1"));
    assert_eq!(nfs.super_option("nconnect"), Some("4"));
    assert_eq!(nfs.super_option("hard"), None);

    assert!(matches!(
        parse_mountinfo("1 2 3\n"),
        Err(Error::Parse {
            format: Format::MountInfo,
            line: 1,
            ..
        })
    ));
}
