//! Preflight and identities on synthetic host trees (temporary directories shaped like the
//! real /etc and /sys).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use host_storage::facts::{parse_os_release, preflight, DistroFamily, Protocol};
use host_storage::files::HostRoot;
use host_storage::identity::{
    ensure_nvme_identity, fc_hosts, initiator_iqn, nvme_identity, undo_nvme_identity,
};
use host_storage::{Change, Error, Wwpn};

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn program(root: &Path, rel: &str) {
    write(root, rel, "#!/bin/sh\n");
    std::fs::set_permissions(root.join(rel), std::fs::Permissions::from_mode(0o755)).unwrap();
}

const RHEL9: &str = "NAME=\"Red Hat Enterprise Linux\"\nVERSION=\"9.4 (Plow)\"\nID=\"rhel\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"9.4\"\nPRETTY_NAME=\"Red Hat Enterprise Linux 9.4 (Plow)\"\n";
const UBUNTU2404: &str = "PRETTY_NAME=\"Ubuntu 24.04.1 LTS\"\nNAME=\"Ubuntu\"\nVERSION_ID=\"24.04\"\nVERSION=\"24.04.1 LTS (Noble Numbat)\"\nVERSION_CODENAME=noble\nID=ubuntu\nID_LIKE=debian\n";
const ARCH: &str = "NAME=\"Arch Linux\"\nPRETTY_NAME=\"Arch Linux\"\nID=arch\nBUILD_ID=rolling\n";

#[test]
fn os_release_families() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/os-release-debian12_own-run.txt"
    ))
    .unwrap();
    let debian = parse_os_release(text.split_once("\n---\n").unwrap().1).unwrap();
    assert_eq!(debian.id, "debian");
    assert_eq!(debian.version_id.as_deref(), Some("12"));
    assert_eq!(
        debian.pretty_name.as_deref(),
        Some("Debian GNU/Linux 12 (bookworm)")
    );
    assert_eq!(debian.family(), Some(DistroFamily::Debian));

    let rhel = parse_os_release(RHEL9).unwrap();
    assert_eq!(
        (rhel.id.as_str(), rhel.id_like.as_slice()),
        ("rhel", &["fedora".to_owned()][..])
    );
    assert_eq!(rhel.family(), Some(DistroFamily::Fedora));
    assert_eq!(
        parse_os_release(UBUNTU2404).unwrap().family(),
        Some(DistroFamily::Debian)
    );
    assert_eq!(
        parse_os_release(ARCH).unwrap().family(),
        Some(DistroFamily::Arch)
    );
    assert_eq!(
        parse_os_release("ID=opensuse-leap\nID_LIKE=\"suse opensuse\"\n")
            .unwrap()
            .family(),
        None
    );
    assert_eq!(
        parse_os_release("ID='alpine'\nPRETTY_NAME=\"A \\\"quoted\\\" name\"\n")
            .unwrap()
            .pretty_name
            .as_deref(),
        Some("A \"quoted\" name")
    );
    assert!(matches!(
        parse_os_release("ID=\"rhel\nX"),
        Err(Error::Parse { .. })
    ));
}

#[test]
fn preflight_names_the_exact_packages_per_family() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "etc/os-release", RHEL9);
    program(root, "usr/sbin/mount.nfs");
    program(root, "usr/sbin/multipath");
    write(root, "usr/sbin/multipathd", "not executable");
    let p = preflight(
        &HostRoot::new(root),
        &[Protocol::Nfs, Protocol::Iscsi, Protocol::NvmeOf],
    )
    .unwrap();
    assert_eq!(p.family, Some(DistroFamily::Fedora));
    assert!(!p.is_ready());
    assert_eq!(
        p.checks
            .iter()
            .map(|c| (
                c.requirement.program,
                c.found.as_ref().map(|f| f.display().to_string())
            ))
            .collect::<Vec<_>>(),
        [
            ("mount.nfs", Some("/usr/sbin/mount.nfs".to_owned())),
            ("iscsiadm", None),
            ("multipath", Some("/usr/sbin/multipath".to_owned())),
            ("multipathd", None),
            ("nvme", None),
        ]
    );
    assert_eq!(
        p.packages_to_install(),
        [
            "iscsi-initiator-utils",
            "device-mapper-multipath",
            "nvme-cli"
        ]
    );
    assert_eq!(p.services(), ["iscsid", "multipathd"]);

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "usr/lib/os-release", UBUNTU2404);
    let p = preflight(
        &HostRoot::new(root),
        &[
            Protocol::Nfs,
            Protocol::Smb,
            Protocol::Fc,
            Protocol::Ocfs2,
            Protocol::Gfs2,
        ],
    )
    .unwrap();
    assert_eq!(
        p.packages_to_install(),
        [
            "nfs-common",
            "cifs-utils",
            "multipath-tools",
            "ocfs2-tools",
            "gfs2-utils"
        ]
    );
    for path in [
        "sbin/mount.nfs",
        "usr/sbin/mount.cifs",
        "sbin/multipath",
        "sbin/multipathd",
        "sbin/mkfs.ocfs2",
        "usr/sbin/o2cb",
        "usr/sbin/mkfs.gfs2",
    ] {
        program(root, path);
    }
    let p = preflight(
        &HostRoot::new(root),
        &[
            Protocol::Nfs,
            Protocol::Smb,
            Protocol::Fc,
            Protocol::Ocfs2,
            Protocol::Gfs2,
        ],
    )
    .unwrap();
    assert!(p.is_ready(), "{:?}", p.missing());

    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "etc/os-release", ARCH);
    let p = preflight(
        &HostRoot::new(dir.path()),
        &[Protocol::Nfs, Protocol::Iscsi],
    )
    .unwrap();
    assert_eq!(
        p.packages_to_install(),
        ["nfs-utils", "open-iscsi", "multipath-tools"]
    );

    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "etc/os-release", "ID=gentoo\n");
    let p = preflight(&HostRoot::new(dir.path()), &[Protocol::Nfs]).unwrap();
    assert_eq!(p.family, None);
    assert!(!p.is_ready());
    assert!(p.checks.is_empty());
}

#[test]
fn iscsi_iqn_from_initiatorname_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = HostRoot::new(dir.path());
    assert_eq!(initiator_iqn(&root).unwrap(), None);
    write(
        dir.path(),
        "etc/iscsi/initiatorname.iscsi",
        "## DO NOT EDIT OR REMOVE THIS FILE!\nInitiatorName=iqn.1994-05.com.redhat:6a4517b3773a\n",
    );
    assert_eq!(
        initiator_iqn(&root).unwrap().unwrap().as_str(),
        "iqn.1994-05.com.redhat:6a4517b3773a"
    );
}

#[test]
fn fc_hosts_on_synthetic_sysfs() {
    let dir = tempfile::tempdir().unwrap();
    let root = HostRoot::new(dir.path());
    assert!(fc_hosts(&root).unwrap().is_empty());
    // Shaped like a two-port Emulex HBA (values from the ONTAP FC capture in the NVMe/FC sample).
    for (h, pn, nn, state, speed) in [
        (
            "host11",
            "0x10000090fa94298d",
            "0x20000090fa94298d",
            "Online",
            "16 Gbit",
        ),
        (
            "host2",
            "0x100000109b579d5e",
            "0x200000109b579d5e",
            "Linkdown",
            "unknown",
        ),
    ] {
        let d = format!("sys/class/fc_host/{h}");
        write(dir.path(), &format!("{d}/port_name"), &format!("{pn}\n"));
        write(dir.path(), &format!("{d}/node_name"), &format!("{nn}\n"));
        write(
            dir.path(),
            &format!("{d}/port_state"),
            &format!("{state}\n"),
        );
        write(dir.path(), &format!("{d}/speed"), &format!("{speed}\n"));
    }
    write(dir.path(), "sys/class/fc_host/power/whatever", "x");
    let hosts = fc_hosts(&root).unwrap();
    assert_eq!(hosts.iter().map(|h| h.host).collect::<Vec<_>>(), [2, 11]);
    assert_eq!(
        hosts[0].wwpn,
        Wwpn::parse("10:00:00:10:9b:57:9d:5e").unwrap()
    );
    assert_eq!(hosts[0].wwnn.to_sysfs(), "0x200000109b579d5e");
    assert!(!hosts[0].is_online());
    assert_eq!(hosts[0].speed, None);
    assert_eq!(hosts[1].wwpn.to_string(), "10:00:00:90:fa:94:29:8d");
    assert!(hosts[1].is_online());
    assert_eq!(hosts[1].speed.as_deref(), Some("16 Gbit"));
    write(
        dir.path(),
        "sys/class/fc_host/host3/port_name",
        "0xnothex\n",
    );
    write(
        dir.path(),
        "sys/class/fc_host/host3/node_name",
        "0x200000109b579d5e\n",
    );
    assert!(fc_hosts(&root).is_err());
}

#[test]
fn nvme_identity_generated_from_dmi_like_nvme_cli_and_undone() {
    let dir = tempfile::tempdir().unwrap();
    let root = HostRoot::new(dir.path());
    assert_eq!(nvme_identity(&root).unwrap(), None);
    write(
        dir.path(),
        "sys/class/dmi/id/product_uuid",
        "D2DF33B9-3EED-4A71-93BD-54A0F92FC9E3\n",
    );
    let (ident, undo) = ensure_nvme_identity(&root).unwrap();
    assert_eq!(ident.host_id, "d2df33b9-3eed-4a71-93bd-54a0f92fc9e3");
    assert_eq!(
        ident.host_nqn.as_str(),
        "nqn.2014-08.org.nvmexpress:uuid:d2df33b9-3eed-4a71-93bd-54a0f92fc9e3"
    );
    assert_eq!(undo.change, Change::Changed);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("etc/nvme/hostnqn")).unwrap(),
        "nqn.2014-08.org.nvmexpress:uuid:d2df33b9-3eed-4a71-93bd-54a0f92fc9e3\n"
    );
    assert_eq!(nvme_identity(&root).unwrap(), Some(ident.clone()));
    let (again, undo2) = ensure_nvme_identity(&root).unwrap();
    assert_eq!((again, undo2.change), (ident, Change::Unchanged));
    assert_eq!(undo_nvme_identity(&undo2).unwrap(), Change::Unchanged);
    assert_eq!(undo_nvme_identity(&undo).unwrap(), Change::Changed);
    assert!(!dir.path().join("etc/nvme/hostnqn").exists());
    assert!(!dir.path().join("etc/nvme/hostid").exists());
}

#[test]
fn nvme_identity_keeps_existing_nqn_and_derives_hostid() {
    let dir = tempfile::tempdir().unwrap();
    let root = HostRoot::new(dir.path());
    // The real pair of the nvme-cli ONTAP capture has an unrelated hostid; here only the NQN exists.
    write(
        dir.path(),
        "etc/nvme/hostnqn",
        "nqn.2014-08.org.nvmexpress:uuid:12372496-59c4-4d1b-be09-74362c0c1afc\n",
    );
    write(
        dir.path(),
        "sys/class/dmi/id/product_uuid",
        "00000000-0000-0000-0000-000000000000\n",
    );
    let (ident, undo) = ensure_nvme_identity(&root).unwrap();
    assert_eq!(ident.host_id, "12372496-59c4-4d1b-be09-74362c0c1afc");
    assert_eq!(undo.created, [dir.path().join("etc/nvme/hostid")]);

    // No DMI UUID (placeholder or absent) and no files: a random v4 UUID, consistent in both files.
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "sys/class/dmi/id/product_uuid",
        "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF\n",
    );
    let (ident, _) = ensure_nvme_identity(&HostRoot::new(dir.path())).unwrap();
    assert_ne!(ident.host_id, "ffffffff-ffff-ffff-ffff-ffffffffffff");
    assert_eq!(ident.host_id.as_bytes()[14], b'4');
    assert_eq!(ident.host_nqn.uuid(), Some(ident.host_id.as_str()));

    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "etc/nvme/hostnqn", "garbage\n");
    assert!(ensure_nvme_identity(&HostRoot::new(dir.path())).is_err());
}
