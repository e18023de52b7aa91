//! iSCSI, multipath, device waiting and services with the scripted runner, on temporary
//! roots and synthetic sysfs trees shaped like real ones (this machine's kernel has no iSCSI,
//! SCSI or dm-multipath; the lab tier runs the same code against real kernels).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use host_storage::files::HostRoot;
use host_storage::iscsi::{
    parse_sendtargets, Chap, ChapCredentials, Iscsi, IscsiTarget, NodeSettings,
};
use host_storage::multipath::{Multipath, MultipathConfig, DROPIN_NAME, MINIMAL_MAIN_CONF};
use host_storage::parse::{Hctl, Portal};
use host_storage::service::Services;
use host_storage::sysfs::Sysfs;
use host_storage::wait::{DeviceId, DeviceWaiter, Via, WaitMode};
use host_storage::{Change, Error, Expect, FakeRunner, Iqn, LunSerial, ValueKind, Wwid};
use secrecy::SecretString;

const IQN: &str = "iqn.1992-08.com.netapp:sn.afbb1784f77411e582f8080027e22798:vs.3";
const SECRET: &str = "In1tiator-S3cret";
const TARGET_SECRET: &str = "Targ3t-S3cret-xyz";

fn iqn() -> Iqn {
    Iqn::parse(IQN).unwrap()
}

fn portal(a: &str) -> Portal {
    Portal {
        address: a.to_owned(),
        port: 3260,
    }
}

fn write(path: &Path, contents: impl AsRef<[u8]>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

fn vpd80(serial: &str) -> Vec<u8> {
    let mut v = vec![0x00, 0x80, 0x00, serial.len() as u8];
    v.extend_from_slice(serial.as_bytes());
    v
}

/// `/sys/block/<sd>` with the files a SCSI disk of an ONTAP LUN has.
fn synthetic_sd(root: &Path, sd: &str, serial: &str) {
    let dev = root.join("sys/block").join(sd).join("device");
    write(&dev.join("vpd_pg80"), vpd80(serial));
    let wwid = LunSerial::parse(serial).unwrap().naa_wwid();
    write(&dev.join("wwid"), format!("naa.{}\n", &wwid.as_str()[1..]));
    write(&dev.join("delete"), "");
    write(&dev.join("state"), "running\n");
}

/// A logged-in session `sid` on SCSI host `host`, portal `addr:3260`, with LUNs.
fn synthetic_session(root: &Path, sid: u32, host: u32, addr: &str, luns: &[(Hctl, &str)]) {
    let sdir = root.join(format!("sys/devices/platform/host{host}/session{sid}"));
    std::fs::create_dir_all(&sdir).unwrap();
    for (h, disk) in luns {
        let t = sdir.join(format!("target{}:{}:{}", h.host, h.channel, h.target));
        std::fs::create_dir_all(t.join(h.to_string()).join("block").join(disk)).unwrap();
    }
    let class = root.join(format!("sys/class/iscsi_session/session{sid}"));
    write(&class.join("targetname"), format!("{IQN}\n"));
    write(&class.join("state"), "LOGGED_IN\n");
    write(&class.join("tpgt"), "1028\n");
    std::os::unix::fs::symlink(&sdir, class.join("device")).unwrap();
    let conn = root.join(format!("sys/class/iscsi_connection/connection{sid}:0"));
    write(&conn.join("persistent_address"), format!("{addr}\n"));
    write(&conn.join("persistent_port"), "3260\n");
    write(
        &root.join(format!("sys/class/scsi_host/host{host}/scan")),
        "",
    );
}

/// What `iscsiadm -m node -T … -p …` prints for a fresh record (abridged, real names).
fn fresh_record(addr: &str) -> String {
    format!(
        "# BEGIN RECORD 2.1.8\nnode.name = {IQN}\nnode.tpgt = 1028\nnode.startup = automatic\n\
         node.session.scan = auto\nnode.session.auth.authmethod = None\n\
         node.session.timeo.replacement_timeout = 120\nnode.conn[0].address = {addr}\n\
         node.conn[0].port = 3260\nnode.conn[0].timeo.login_timeout = 15\n# END RECORD\n"
    )
}

fn tuned_record(addr: &str) -> String {
    fresh_record(addr)
        .replace("scan = auto", "scan = manual")
        .replace("replacement_timeout = 120", "replacement_timeout = 5")
        .replace("login_timeout = 15", "login_timeout = 10")
}

fn node(addr: &str) -> Vec<String> {
    ["-m", "node", "-T", IQN, "-p", &format!("{addr}:3260")]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn with(mut base: Vec<String>, more: &[&str]) -> Vec<String> {
    base.extend(more.iter().map(|s| s.to_string()));
    base
}

fn chap() -> Chap {
    Chap {
        initiator: ChapCredentials::new("kvm01", SecretString::from(SECRET)).unwrap(),
        target: Some(
            ChapCredentials::new("ontap-svm1", SecretString::from(TARGET_SECRET)).unwrap(),
        ),
    }
}

/// A temporary host root with a node database holding the record files iscsiadm would have
/// created for both portals.
fn iscsi_root() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let nodes = dir.path().join("etc/iscsi/nodes").join(IQN);
    for a in ["10.0.207.7", "10.0.207.9"] {
        let f = nodes.join(format!("{a},3260,1028/default"));
        write(&f, fresh_record(a));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let p = dir.path().to_owned();
    (dir, p)
}

/// Session id and SCSI host of the synthetic session at `addr` (one per portal).
fn sid_host(addr: &str) -> (u32, u32) {
    match addr {
        "10.0.207.7" => (3, 34),
        "10.0.207.9" => (4, 35),
        other => panic!("no synthetic session for {other}"),
    }
}

fn remove_session(root: &Path, addr: &str) {
    let (sid, host) = sid_host(addr);
    for rel in [
        format!("sys/class/iscsi_session/session{sid}"),
        format!("sys/class/iscsi_connection/connection{sid}:0"),
        format!("sys/devices/platform/host{host}/session{sid}"),
        format!("sys/class/scsi_host/host{host}"),
    ] {
        let _ = std::fs::remove_dir_all(root.join(rel));
    }
}

/// A runner that answers from the script, then does what iscsiadm and the kernel would on
/// the synthetic root: `-o new` writes the fresh record file (0600), a login makes the
/// session in sysfs (except at `refuse`, whose login the target rejects), a logout removes
/// it, `-o delete` removes record files. Target-wide calls (`-T` without `-p`) act on every
/// record or session of the target, as iscsiadm does.
struct IscsiKernel {
    fake: FakeRunner,
    root: PathBuf,
    refuse: Option<&'static str>,
}

impl IscsiKernel {
    fn new(root: &Path) -> Self {
        IscsiKernel {
            fake: FakeRunner::new(),
            root: root.to_owned(),
            refuse: None,
        }
    }

    fn nodes(&self) -> PathBuf {
        self.root.join("etc/iscsi/nodes").join(IQN)
    }

    /// Addresses of the target's records, or just `-p`'s.
    fn addresses(&self, args: &[&str]) -> Vec<String> {
        if let Some(i) = args.iter().position(|a| *a == "-p") {
            return vec![args[i + 1].split(':').next().unwrap().to_owned()];
        }
        let mut v: Vec<String> = std::fs::read_dir(self.nodes())
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| {
                        let n = e.file_name().into_string().unwrap();
                        n.split(',').next().unwrap().to_owned()
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

#[async_trait::async_trait]
impl host_storage::Runner for IscsiKernel {
    async fn run(&self, cmd: &host_storage::Command) -> host_storage::Result<host_storage::Output> {
        let out = self.fake.run(cmd).await;
        let args: Vec<&str> = cmd.get_args().iter().map(|a| a.expose()).collect();
        let last = args[args.len().saturating_sub(2)..].to_vec();
        if cmd.program() != "iscsiadm" || !args.starts_with(&["-m", "node"]) {
            return out;
        }
        if last == ["-o", "new"] {
            if out.is_ok() {
                let p = args[args.iter().position(|a| *a == "-p").unwrap() + 1];
                let (addr, rest) = p.split_once(':').unwrap();
                let dir = match rest.split_once(',') {
                    Some((port, tpgt)) => format!("{addr},{port},{tpgt}"),
                    None => format!("{addr},{rest},-1"),
                };
                let f = self.nodes().join(dir).join("default");
                write(&f, fresh_record(addr));
                std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
            }
        } else if last == ["-o", "delete"] && out.is_ok() {
            for a in self.addresses(&args) {
                for e in std::fs::read_dir(self.nodes()).unwrap() {
                    let e = e.unwrap();
                    if e.file_name()
                        .to_str()
                        .unwrap()
                        .starts_with(&format!("{a},"))
                    {
                        std::fs::remove_dir_all(e.path()).unwrap();
                    }
                }
            }
            if std::fs::read_dir(self.nodes()).is_ok_and(|mut rd| rd.next().is_none()) {
                std::fs::remove_dir(self.nodes()).unwrap();
            }
        } else if args.last() == Some(&"--login") {
            for a in self.addresses(&args) {
                if Some(a.as_str()) != self.refuse {
                    let (sid, host) = sid_host(&a);
                    synthetic_session(&self.root, sid, host, &a, &[]);
                }
            }
        } else if args.last() == Some(&"--logout") {
            let sessions = host_storage::sysfs::Sysfs::new(HostRoot::new(&self.root))
                .iscsi_sessions()
                .unwrap();
            for a in self.addresses(&args) {
                if sessions
                    .iter()
                    .any(|s| s.portal.as_ref().is_some_and(|p| p.address == a))
                {
                    remove_session(&self.root, &a);
                }
            }
        }
        out
    }
}

fn auth_lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.contains(".auth.")).collect()
}

#[tokio::test]
async fn iscsi_connect_every_portal_with_mutual_chap_off_argv_then_disconnect_on_synthetic_sysfs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    std::fs::create_dir_all(root.join("etc/iscsi/nodes")).unwrap();
    let kernel = IscsiKernel::new(&root);
    let fake = &kernel.fake;
    let portals = ["10.0.207.7", "10.0.207.9"];
    // One process per fresh record; every setting and CHAP go into the record file.
    for a in portals {
        fake.expect(Expect::new(
            "iscsiadm",
            [
                "-m",
                "node",
                "-T",
                IQN,
                "-p",
                &format!("{a}:3260,1028"),
                "-I",
                "default",
                "-o",
                "new",
            ],
        ));
    }
    // Every record of the target is one of ours, no session yet: one login for both.
    fake.expect(Expect::new(
        "iscsiadm",
        ["-m", "node", "-T", IQN, "--login"],
    ));
    let iscsi = Iscsi::new(&kernel, HostRoot::new(&root));
    let target = IscsiTarget::from_discovery(
        &iqn(),
        &parse_sendtargets(
            "10.0.207.7:3260,1028 iqn.1992-08.com.netapp:sn.afbb1784f77411e582f8080027e22798:vs.3\n\
             10.0.207.9:3260,1028 iqn.1992-08.com.netapp:sn.afbb1784f77411e582f8080027e22798:vs.3\n\
             10.0.9.9:3260,1 iqn.1992-08.com.netapp:sn.other:vs.9\n",
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(target.portals.len(), 2);
    let undo = iscsi
        .connect(&target, &NodeSettings::default(), Some(&chap()))
        .await
        .unwrap();
    fake.verify();
    assert_eq!(fake.calls().len(), 3);
    assert_eq!(undo.change, Change::Changed);
    assert!(undo.nodes.iter().all(|n| n.created));
    assert!(undo.nodes.iter().all(|n| n.previous_settings.is_empty()));
    assert_eq!(
        undo.logins
            .iter()
            .map(|l| (l.portal.address.as_str(), l.change))
            .collect::<Vec<_>>(),
        [
            ("10.0.207.7", Change::Changed),
            ("10.0.207.9", Change::Changed)
        ]
    );
    assert_eq!(iscsi.target_sessions(&iqn()).unwrap().len(), 2);

    // The secrets went into the 0600 record files, never into a command line or Debug.
    let calls = fake.calls().join("\n");
    assert!(!calls.contains(SECRET) && !calls.contains(TARGET_SECRET));
    assert!(!format!("{undo:?}{:?}", chap()).contains("S3cret"));
    for a in portals {
        let f = root.join(format!("etc/iscsi/nodes/{IQN}/{a},3260,1028/default"));
        let text = std::fs::read_to_string(&f).unwrap();
        assert_eq!(
            auth_lines(&text),
            [
                "node.session.auth.authmethod = CHAP",
                "node.session.auth.username = kvm01",
                &format!("node.session.auth.password = {SECRET}"),
                "node.session.auth.username_in = ontap-svm1",
                &format!("node.session.auth.password_in = {TARGET_SECRET}"),
            ]
        );
        // Settings and authmethod replaced in place, the new keys inserted before the end
        // marker; everything else as iscsiadm wrote it.
        assert_eq!(
            text,
            format!(
                "# BEGIN RECORD 2.1.8\nnode.name = {IQN}\nnode.tpgt = 1028\nnode.startup = automatic\n\
                 node.session.scan = manual\nnode.session.auth.authmethod = CHAP\n\
                 node.session.timeo.replacement_timeout = 5\nnode.conn[0].address = {a}\n\
                 node.conn[0].port = 3260\nnode.conn[0].timeo.login_timeout = 10\n\
                 node.session.auth.username = kvm01\nnode.session.auth.password = {SECRET}\n\
                 node.session.auth.username_in = ontap-svm1\n\
                 node.session.auth.password_in = {TARGET_SECRET}\n# END RECORD\n"
            )
        );
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    // Second run: records as wanted, sessions up: nothing runs at all.
    let again = iscsi
        .connect(&target, &NodeSettings::default(), Some(&chap()))
        .await
        .unwrap();
    assert_eq!(again.change, Change::Unchanged);
    assert!(again.nodes.iter().all(|n| !n.created));
    assert_eq!(
        iscsi.disconnect(&again).await.unwrap().change,
        Change::Unchanged
    );
    assert_eq!(fake.calls().len(), 3);

    // Undo: every session and record of the target is ours: one logout, one delete.
    fake.expect(Expect::new(
        "iscsiadm",
        ["-m", "node", "-T", IQN, "--logout"],
    ));
    fake.expect(Expect::new(
        "iscsiadm",
        ["-m", "node", "-T", IQN, "-o", "delete"],
    ));
    let done = iscsi.disconnect(&undo).await.unwrap();
    fake.verify();
    assert_eq!(done.change, Change::Changed);
    assert!(done.kept.is_empty());
    assert!(iscsi.target_sessions(&iqn()).unwrap().is_empty());
    assert!(!root.join("etc/iscsi/nodes").join(IQN).exists());
    // Undoing again finds nothing left and runs nothing.
    assert_eq!(
        iscsi.disconnect(&undo).await.unwrap().change,
        Change::Unchanged
    );
    assert_eq!(fake.calls().len(), 5);
}

/// One portal's login is refused: the session the other one made is logged out and both
/// records this call created are deleted before the error is returned.
#[tokio::test]
async fn iscsi_connect_unwinds_a_partial_login_on_synthetic_sysfs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    std::fs::create_dir_all(root.join("etc/iscsi/nodes")).unwrap();
    let mut kernel = IscsiKernel::new(&root);
    kernel.refuse = Some("10.0.207.9");
    let fake = &kernel.fake;
    for a in ["10.0.207.7", "10.0.207.9"] {
        fake.expect(Expect::new(
            "iscsiadm",
            with(node(a), &["-I", "default", "-o", "new"]),
        ));
    }
    fake.expect(
        Expect::new("iscsiadm", ["-m", "node", "-T", IQN, "--login"]).exit(
            24,
            "",
            "iscsiadm: Could not login to [iface: default, target: x, portal: 10.0.207.9,3260].\n\
             iscsiadm: initiator reported error (24 - iSCSI login failed due to authorization failure)\n",
        ),
    );
    fake.expect(Expect::new(
        "iscsiadm",
        with(node("10.0.207.7"), &["--logout"]),
    ));
    fake.expect(Expect::new(
        "iscsiadm",
        ["-m", "node", "-T", IQN, "-o", "delete"],
    ));
    let iscsi = Iscsi::new(&kernel, HostRoot::new(&root));
    let target = IscsiTarget::new(
        iqn(),
        vec![(portal("10.0.207.7"), None), (portal("10.0.207.9"), None)],
    )
    .unwrap();
    let err = iscsi
        .connect(&target, &NodeSettings::default(), None)
        .await
        .unwrap_err();
    assert!(err.is_exit_code(24), "{err}");
    fake.verify();
    assert!(iscsi.target_sessions(&iqn()).unwrap().is_empty());
    assert!(!root.join("etc/iscsi/nodes").join(IQN).exists());
}

#[tokio::test]
async fn iscsi_undo_restores_a_preexisting_record_and_its_settings() {
    let (_dir, root) = iscsi_root();
    let a = "10.0.207.7";
    let f = root.join(format!("etc/iscsi/nodes/{IQN}/{a},3260,1028/default"));
    let before = std::fs::read_to_string(&f).unwrap();
    // The record exists in the node database: it is read and edited as a file, and no
    // process runs.
    let fake = FakeRunner::new();
    let iscsi = Iscsi::new(&fake, HostRoot::new(&root));
    let settings = NodeSettings {
        replacement_timeout: 120,
        login_timeout: 15,
        ..NodeSettings::default()
    };
    let only_initiator = Chap {
        initiator: ChapCredentials::new("kvm01", SecretString::from(SECRET)).unwrap(),
        target: None,
    };
    let undo = iscsi
        .ensure_node(
            &iqn(),
            &portal(a),
            Some(1028),
            &settings,
            Some(&only_initiator),
        )
        .await
        .unwrap();
    assert!(!undo.created);
    assert_eq!(undo.change, Change::Changed);
    assert_eq!(
        undo.previous_settings,
        vec![("node.session.scan".to_owned(), "auto".to_owned())]
    );
    let text = std::fs::read_to_string(&f).unwrap();
    assert!(text.contains("auth.username = kvm01"));
    assert!(text.contains("node.session.scan = manual\n"));
    assert!(!format!("{undo:?}").contains(SECRET));
    assert_eq!(iscsi.undo_node(&undo).await.unwrap(), Change::Changed);
    assert_eq!(std::fs::read_to_string(&f).unwrap(), before);

    // Settings only, undone from the previous values alone (what kvmstor's saga keeps).
    let undo = iscsi
        .ensure_node(
            &iqn(),
            &portal(a),
            Some(1028),
            &NodeSettings::default(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        undo.previous_settings,
        vec![
            ("node.session.scan".to_owned(), "auto".to_owned()),
            (
                "node.session.timeo.replacement_timeout".to_owned(),
                "120".to_owned()
            ),
            (
                "node.conn[0].timeo.login_timeout".to_owned(),
                "15".to_owned()
            ),
        ]
    );
    assert!(undo.previous_record.is_none());
    assert_eq!(
        std::fs::read_to_string(&f).unwrap(),
        tuned_record(a).replace("10.0.207.7", a)
    );
    let again = iscsi
        .ensure_node(
            &iqn(),
            &portal(a),
            Some(1028),
            &NodeSettings::default(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(again.change, Change::Unchanged);
    assert_eq!(iscsi.undo_node(&undo).await.unwrap(), Change::Changed);
    assert_eq!(std::fs::read_to_string(&f).unwrap(), before);
    assert_eq!(
        std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(fake.calls().is_empty());
}

#[tokio::test]
async fn iscsi_logout_waits_until_no_device_of_the_session_remains_on_synthetic_sysfs() {
    let (_dir, root) = iscsi_root();
    let lun = Hctl {
        host: 34,
        channel: 0,
        target: 0,
        lun: 2,
    };
    synthetic_session(&root, 3, 34, "10.0.207.7", &[(lun, "sdb")]);
    let fake = FakeRunner::new(); // nothing may run
    let iscsi = Iscsi::new(&fake, HostRoot::new(&root));
    let login = host_storage::iscsi::LoginUndo {
        target: iqn(),
        portal: portal("10.0.207.7"),
        change: Change::Changed,
    };
    match iscsi.undo_login(&login).await.unwrap_err() {
        Error::InUse { resource, users } => {
            assert_eq!(resource, format!("{IQN} at 10.0.207.7:3260"));
            assert_eq!(users, ["sdb"]);
        }
        e => panic!("unexpected {e:?}"),
    }
    assert!(fake.calls().is_empty());
}

#[test]
fn iscsi_session_inventory_and_targeted_scan_on_synthetic_sysfs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let l2 = Hctl {
        host: 34,
        channel: 0,
        target: 0,
        lun: 2,
    };
    synthetic_session(root, 3, 34, "10.0.207.7", &[(l2, "sdb")]);
    synthetic_session(root, 4, 35, "10.0.207.9", &[]);
    let sys = Sysfs::new(HostRoot::new(root));
    let sessions = sys.iscsi_sessions().unwrap();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions[0].sid, 3);
    assert_eq!(sessions[0].target, iqn());
    assert_eq!(sessions[0].tpgt, Some(1028));
    assert_eq!(sessions[0].portal, Some(portal("10.0.207.7")));
    assert_eq!(sessions[0].host, Some(34));
    assert_eq!(sessions[0].luns, vec![(l2, Some("sdb".to_owned()))]);
    assert!(sessions[0].is_logged_in());
    assert_eq!(sessions[1].host, Some(35));
    assert!(sessions[1].luns.is_empty());

    let fake = FakeRunner::new();
    let iscsi = Iscsi::new(&fake, HostRoot::new(root));
    assert_eq!(iscsi.scan_lun(&iqn(), 5).unwrap(), vec![34, 35]);
    let scan = |h: u32| {
        std::fs::read_to_string(root.join(format!("sys/class/scsi_host/host{h}/scan"))).unwrap()
    };
    // Channel and target known from the session's existing LUN; wildcards otherwise.
    assert_eq!(scan(34), "0 0 5");
    assert_eq!(scan(35), "- - 5");
}

#[tokio::test]
async fn iscsi_bad_input_is_refused_before_anything_runs() {
    let fake = FakeRunner::new();
    let dir = tempfile::tempdir().unwrap();
    let iscsi = Iscsi::new(&fake, HostRoot::new(dir.path()));
    assert!(matches!(
        Iqn::parse("iqn.bad name"),
        Err(Error::Invalid {
            kind: ValueKind::Iqn,
            ..
        })
    ));
    assert!(IscsiTarget::new(iqn(), vec![]).is_err());
    assert!(IscsiTarget::new(
        iqn(),
        vec![(portal("10.0.0.1"), None), (portal("10.0.0.1"), Some(1))]
    )
    .is_err());
    assert!(IscsiTarget::new(
        iqn(),
        vec![(
            Portal {
                address: "10.0.0.1".into(),
                port: 0
            },
            None
        )]
    )
    .is_err());
    assert!(IscsiTarget::new(iqn(), vec![(portal("-o nonpersistent"), None)]).is_err());
    assert!(ChapCredentials::new("", SecretString::from("x")).is_err());
    match ChapCredentials::new("u", SecretString::from("line\nnode.startup = manual")) {
        Err(Error::Invalid { value, .. }) => assert_eq!(value, "***"),
        other => panic!("unexpected {other:?}"),
    }
    assert!(ChapCredentials::new("u", SecretString::from("x".repeat(257))).is_err());
    for bad in [
        NodeSettings {
            replacement_timeout: 0,
            ..NodeSettings::default()
        },
        NodeSettings {
            login_timeout: 0,
            ..NodeSettings::default()
        },
    ] {
        assert!(iscsi
            .ensure_node(&iqn(), &portal("10.0.0.1"), None, &bad, None)
            .await
            .is_err());
    }
    assert!(iscsi
        .ensure_node(
            &iqn(),
            &portal("bad host!"),
            None,
            &NodeSettings::default(),
            None
        )
        .await
        .is_err());
    assert!(iscsi.discover(&portal("a b")).await.is_err());
    assert!(fake.calls().is_empty());
}

/// Regression (lab, Debian 12 guest): a fresh host has no node database until iscsiadm
/// writes the first record, so CHAP must not be refused up front. When the record file
/// still cannot be found after `-o new`, the record made for it is deleted again.
#[tokio::test]
async fn iscsi_chap_on_a_host_without_node_database_creates_the_record_first() {
    let dir = tempfile::tempdir().unwrap();
    let a = "10.0.0.1";
    let fake = FakeRunner::new();
    fake.expect(Expect::new("iscsiadm", node(a)).exit(21, "", "iscsiadm: No records found"));
    fake.expect(Expect::new(
        "iscsiadm",
        with(node(a), &["-I", "default", "-o", "new"]),
    ));
    fake.expect(Expect::new("iscsiadm", with(node(a), &["-o", "delete"])));
    let iscsi = Iscsi::new(&fake, HostRoot::new(dir.path()));
    let err = iscsi
        .ensure_node(
            &iqn(),
            &portal(a),
            None,
            &NodeSettings::default(),
            Some(&chap()),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("/etc/iscsi/nodes"), "{err}");
    fake.verify();
}

/// Where the node database is not a known directory, only iscsiadm knows the records:
/// settings go through `iscsiadm -o update`, and sessions are still read from sysfs.
#[tokio::test]
async fn iscsi_without_a_readable_node_database_updates_through_iscsiadm() {
    let dir = tempfile::tempdir().unwrap();
    let a = "10.0.0.1";
    let fake = FakeRunner::new();
    fake.expect(Expect::new("iscsiadm", node(a)).exit(21, "", "iscsiadm: No records found"));
    fake.expect(Expect::new(
        "iscsiadm",
        with(node(a), &["-I", "default", "-o", "new"]),
    ));
    fake.expect(Expect::new("iscsiadm", node(a)).stdout(fresh_record(a)));
    for (n, v) in [
        ("node.session.scan", "manual"),
        ("node.session.timeo.replacement_timeout", "5"),
        ("node.conn[0].timeo.login_timeout", "10"),
    ] {
        fake.expect(Expect::new(
            "iscsiadm",
            with(node(a), &["-o", "update", "-n", n, "-v", v]),
        ));
    }
    fake.expect(Expect::new("iscsiadm", with(node(a), &["--login"])));
    let iscsi = Iscsi::new(&fake, HostRoot::new(dir.path()));
    let target = IscsiTarget::new(iqn(), vec![(portal(a), None)]).unwrap();
    let undo = iscsi
        .connect(&target, &NodeSettings::default(), None)
        .await
        .unwrap();
    fake.verify();
    assert!(undo.nodes[0].created);
    // The fake made no session in sysfs: the login is not counted as this call's.
    assert_eq!(undo.logins[0].change, Change::Unchanged);
    // Undo: no session to end; the record goes through iscsiadm too.
    fake.expect(Expect::new("iscsiadm", with(node(a), &["-o", "delete"])));
    assert_eq!(
        iscsi.disconnect(&undo).await.unwrap().change,
        Change::Changed
    );
    fake.verify();
}

/// dm-0 = the map of `serial` over `paths`, each an sd with that serial.
fn synthetic_map(root: &Path, serial: &str, paths: &[&str]) -> Wwid {
    let wwid = LunSerial::parse(serial).unwrap().naa_wwid();
    let dm = root.join("sys/block/dm-0");
    write(&dm.join("dm/uuid"), format!("mpath-{wwid}\n"));
    write(&dm.join("dm/name"), format!("{wwid}\n"));
    std::fs::create_dir_all(dm.join("holders")).unwrap();
    for p in paths {
        std::fs::create_dir_all(dm.join("slaves").join(p)).unwrap();
        synthetic_sd(root, p, serial);
    }
    wwid
}

/// Plays the kernel: removes dm-0 once `multipath -f` ran and each sd once `1` was written
/// to its `device/delete`.
fn fake_kernel(
    root: PathBuf,
    fake: Arc<FakeRunner>,
    paths: Vec<&'static str>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let end = std::time::Instant::now() + Duration::from_secs(10);
        let mut left = paths.len() + 1;
        while left > 0 && std::time::Instant::now() < end {
            let dm = root.join("sys/block/dm-0");
            if dm.exists() && fake.calls().iter().any(|c| c.starts_with("multipath -f")) {
                std::fs::remove_dir_all(&dm).unwrap();
                left -= 1;
            }
            for p in &paths {
                let d = root.join("sys/block").join(p);
                if std::fs::read_to_string(d.join("device/delete")).is_ok_and(|t| t == "1") {
                    std::fs::remove_dir_all(&d).unwrap();
                    left -= 1;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
}

#[tokio::test]
async fn multipath_remove_lun_flushes_the_map_then_deletes_verified_paths_on_synthetic_sysfs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let serial = LunSerial::parse("wOj4q+W-Avqs").unwrap();
    let wwid = synthetic_map(&root, serial.as_str(), &["sdb", "sdc"]);
    assert_eq!(wwid.as_str(), "3600a0980774f6a34712b572d41767173");
    let fake = Arc::new(FakeRunner::new());
    let mp = Multipath::new(fake.clone(), HostRoot::new(&root)).timeout(Duration::from_secs(5));
    let map = mp.find_lun_map(&serial).unwrap().unwrap();
    assert_eq!(
        (map.dm.as_str(), map.name.as_str(), map.paths.clone()),
        (
            "dm-0",
            wwid.as_str(),
            vec!["sdb".to_owned(), "sdc".to_owned()]
        )
    );

    fake.expect(Expect::new(
        "blockdev",
        ["--flushbufs", root.join("dev/dm-0").to_str().unwrap()],
    ));
    fake.expect(Expect::new("multipath", ["-f", wwid.as_str()]));
    let kernel = fake_kernel(root.clone(), fake.clone(), vec!["sdb", "sdc"]);
    let removed = mp.remove_lun(&serial).await.unwrap();
    kernel.join().unwrap();
    fake.verify();
    assert_eq!(removed.map.as_deref(), Some(wwid.as_str()));
    assert_eq!(removed.paths, ["sdb", "sdc"]);
    assert_eq!(removed.change, Change::Changed);
    assert!(!root.join("sys/block/sdb").exists() && !root.join("sys/block/sdc").exists());

    // Twice: nothing left, nothing run.
    let again = mp.remove_lun(&serial).await.unwrap();
    assert_eq!(again.change, Change::Unchanged);
    assert_eq!(fake.calls().len(), 2);
}

#[tokio::test]
async fn multipath_remove_refuses_a_path_of_another_lun_or_a_held_map_on_synthetic_sysfs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let serial = LunSerial::parse("wOj4q+W-Avqs").unwrap();
    synthetic_map(root, serial.as_str(), &["sdb"]);
    // The kernel lists sdd under our map but sdd reports another serial: stale data.
    std::fs::create_dir_all(root.join("sys/block/dm-0/slaves/sdd")).unwrap();
    synthetic_sd(root, "sdd", "80BJM+UV3uQ3");
    let fake = FakeRunner::new();
    let mp = Multipath::new(&fake, HostRoot::new(root));
    match mp.remove_lun(&serial).await.unwrap_err() {
        Error::DeviceMismatch {
            device,
            expected,
            found,
        } => {
            assert_eq!(device, "sdd");
            assert_eq!(expected, "SCSI disk with serial wOj4q+W-Avqs");
            assert_eq!(found, "80BJM+UV3uQ3");
        }
        e => panic!("unexpected {e:?}"),
    }
    std::fs::remove_dir(root.join("sys/block/dm-0/slaves/sdd")).unwrap();
    std::fs::create_dir_all(root.join("sys/block/dm-0/holders/dm-1")).unwrap();
    match mp.remove_lun(&serial).await.unwrap_err() {
        Error::InUse { users, .. } => assert_eq!(users, ["dm-1"]),
        e => panic!("unexpected {e:?}"),
    }
    assert!(fake.calls().is_empty());
    assert_eq!(
        std::fs::read_to_string(root.join("sys/block/sdb/device/delete")).unwrap(),
        ""
    );
}

#[tokio::test]
async fn multipath_maps_and_daemon_state_from_multipathd() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/multipathd-show-maps-json_constructed.json.txt"
    ))
    .unwrap();
    let json = text.split_once("\n---\n").unwrap().1.to_owned();
    let fake = FakeRunner::new();
    fake.expect(Expect::new("multipathd", ["show", "daemon"]).stdout("pid 1234 idle\n"));
    fake.expect(Expect::new("multipathd", ["show", "maps", "json"]).stdout(json));
    fake.expect(Expect::new("multipathd", ["show", "daemon"]).exit(1, "", "can't connect"));
    let dir = tempfile::tempdir().unwrap();
    let mp = Multipath::new(&fake, HostRoot::new(dir.path()));
    assert!(mp.daemon_running().await.unwrap());
    let maps = mp.maps().await.unwrap();
    assert_eq!(maps.maps.len(), 1);
    assert_eq!(
        maps.maps[0].uuid.netapp_lun_serial().unwrap().as_str(),
        "wOj4q+W-Avqs"
    );
    assert!(!mp.daemon_running().await.unwrap());
    fake.verify();
}

#[test]
fn multipath_conf_without_main_file_creates_both_and_undo_removes_both() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("etc")).unwrap();
    let conf = MultipathConfig::new(HostRoot::new(dir.path()));
    let undo = conf.ensure().unwrap();
    assert!(undo.created_main);
    let main = dir.path().join("etc/multipath.conf");
    assert_eq!(std::fs::read_to_string(&main).unwrap(), MINIMAL_MAIN_CONF);
    let dropin = dir.path().join("etc/multipath/conf.d").join(DROPIN_NAME);
    let text = std::fs::read_to_string(&dropin).unwrap();
    assert!(text.starts_with("# kvmstor:netapp"));
    assert!(text.contains("\t\tvendor \"NETAPP\"\n\t\tproduct \"LUN\"\n"));
    assert!(text.contains("\t\tno_path_retry \"queue\"\n"));
    assert_eq!(conf.find_multipaths().unwrap().as_deref(), Some("no"));
    assert_eq!(conf.ensure().unwrap().change, Change::Unchanged);
    assert_eq!(conf.undo(&undo).unwrap(), Change::Changed);
    assert!(!main.exists() && !dropin.exists());
    assert_eq!(conf.undo(&undo).unwrap(), Change::Unchanged);
}

#[test]
fn multipath_conf_honours_config_dir_and_never_edits_the_admins_file() {
    let dir = tempfile::tempdir().unwrap();
    let admin = "defaults {\n\tconfig_dir \"/etc/mp.d\"\n\tfind_multipaths yes\n}\nblacklist {\n\tdevnode \"^sda\"\n}\n";
    write(&dir.path().join("etc/multipath.conf"), admin);
    write(&dir.path().join("etc/mp.d").join(DROPIN_NAME), "old\n");
    let conf = MultipathConfig::new(HostRoot::new(dir.path()));
    let undo = conf.ensure().unwrap();
    assert!(!undo.created_main);
    assert_eq!(undo.previous_dropin.as_deref(), Some("old\n"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("etc/multipath.conf")).unwrap(),
        admin
    );
    assert_eq!(conf.find_multipaths().unwrap().as_deref(), Some("yes"));
    assert_eq!(conf.undo(&undo).unwrap(), Change::Changed);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("etc/mp.d").join(DROPIN_NAME)).unwrap(),
        "old\n"
    );
}

#[tokio::test]
async fn waiting_polls_sysfs_and_never_trusts_a_name_with_another_serial_on_synthetic_sysfs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    // sdb exists but is another LUN.
    synthetic_sd(&root, "sdb", "80BJM+UV3uQ3");
    let serial = LunSerial::parse("wOj4f?W9lOk7").unwrap();
    let waiter = DeviceWaiter::new(HostRoot::new(&root))
        .mode(WaitMode::Poll)
        .poll_interval(Duration::from_millis(20));
    assert_eq!(waiter.effective_mode(), WaitMode::Poll);
    let id = DeviceId::ScsiSerial(serial.clone());
    let late = {
        let root = root.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            synthetic_sd(&root, "sdc", "wOj4f?W9lOk7");
        })
    };
    let found = waiter.wait(&id, Duration::from_secs(5)).await.unwrap();
    late.join().unwrap();
    assert_eq!(found.name, "sdc");
    assert_eq!(found.via, Via::Poll);
    assert_eq!(found.dev_node, root.join("dev/sdc"));
    assert_eq!(found.identity.serial.as_deref(), Some("wOj4f?W9lOk7"));
    assert_eq!(
        found.identity.wwid.as_ref().map(|w| w.as_str()),
        Some("3600a0980774f6a34663f57396c4f6b37")
    );
    assert!(matches!(
        waiter.verify("sdb", &id),
        Err(Error::DeviceMismatch { .. })
    ));
    let by_wwid = DeviceId::ScsiWwid(serial.naa_wwid());
    assert_eq!(
        waiter
            .wait(&by_wwid, Duration::from_millis(10))
            .await
            .unwrap()
            .via,
        Via::Present
    );

    let missing = DeviceId::ontap_lun_map(&serial);
    match waiter.wait(&missing, Duration::from_millis(100)).await {
        Err(Error::WaitTimeout { what, after }) => {
            assert_eq!(
                what,
                "multipath map mpath-3600a0980774f6a34663f57396c4f6b37"
            );
            assert_eq!(after, Duration::from_millis(100));
        }
        other => panic!("unexpected {other:?}"),
    }
    // No udev daemon under this root: Auto falls back to polling.
    assert_eq!(
        DeviceWaiter::new(HostRoot::new(&root)).effective_mode(),
        WaitMode::Poll
    );
    waiter
        .wait_gone("sdz", Duration::from_millis(10))
        .await
        .unwrap();
    assert!(waiter
        .wait_gone("sdb", Duration::from_millis(50))
        .await
        .is_err());
}

#[tokio::test]
async fn waiting_for_nvme_namespaces_by_uuid_or_nguid_on_synthetic_sysfs() {
    let dir = tempfile::tempdir().unwrap();
    let ns = dir.path().join("sys/block/nvme0n1");
    write(&ns.join("uuid"), "3c4a1e7b-8d2f-4d36-9e1a-0b5c6d7e8f90\n");
    write(&ns.join("nguid"), "3c4a1e7b-8d2f-4d36-9e1a-0b5c6d7e8f90\n");
    write(
        &ns.join("wwid"),
        "uuid.3c4a1e7b-8d2f-4d36-9e1a-0b5c6d7e8f90\n",
    );
    let waiter = DeviceWaiter::new(HostRoot::new(dir.path())).mode(WaitMode::Poll);
    let uuid = uuid::Uuid::parse_str("3C4A1E7B-8D2F-4D36-9E1A-0B5C6D7E8F90").unwrap();
    let found = waiter
        .wait(&DeviceId::NvmeUuid(uuid), Duration::from_millis(50))
        .await
        .unwrap();
    assert_eq!((found.name.as_str(), found.via), ("nvme0n1", Via::Present));
    let nguid = DeviceId::nvme_nguid("3c4a1e7b8d2f4d369e1a0b5c6d7e8f90").unwrap();
    assert_eq!(
        waiter
            .wait(&nguid, Duration::from_millis(50))
            .await
            .unwrap()
            .name,
        "nvme0n1"
    );
    let other = DeviceId::NvmeUuid(uuid::Uuid::nil());
    assert!(waiter
        .wait(&other, Duration::from_millis(30))
        .await
        .is_err());
}

#[tokio::test]
async fn services_enable_once_and_undo_exactly() {
    let fake = FakeRunner::new();
    let s = Services::new(&fake);
    fake.expect(Expect::new("systemctl", ["is-enabled", "multipathd.service"]).stdout("enabled\n"));
    fake.expect(
        Expect::new("systemctl", ["is-active", "multipathd.service"]).exit(3, "inactive\n", ""),
    );
    fake.expect(Expect::new("systemctl", ["start", "multipathd.service"]));
    let undo = s.enable_now("multipathd.service").await.unwrap();
    assert_eq!((undo.enabled, undo.started), (false, true));
    fake.expect(Expect::new("systemctl", ["is-enabled", "multipathd.service"]).stdout("enabled\n"));
    fake.expect(Expect::new("systemctl", ["is-active", "multipathd.service"]).stdout("active\n"));
    assert_eq!(
        s.enable_now("multipathd.service").await.unwrap().change,
        Change::Unchanged
    );
    fake.expect(Expect::new("systemctl", ["is-active", "multipathd.service"]).stdout("active\n"));
    fake.expect(Expect::new("systemctl", ["stop", "multipathd.service"]));
    assert_eq!(s.undo(&undo).await.unwrap(), Change::Changed);
    fake.verify();
    assert!(s.enable_now("--now").await.is_err());
    assert!(s.enable_now("a b").await.is_err());
}

const SUBNQN: &str = "nqn.1992-08.com.netapp:sn.48391d66c0a611ecaaa5d039ea165514:subsystem.kvm";

/// `/sys/class/nvme/<ctrl>` of a fabrics controller, and its subsystem with namespace
/// `nvme0n1` (native multipath layout: the head lives under the subsystem).
fn synthetic_nvme_ctrl(root: &Path, ctrl: &str, traddr: &str, state: &str) {
    let c = root.join("sys/class/nvme").join(ctrl);
    write(&c.join("subsysnqn"), format!("{SUBNQN}\n"));
    write(&c.join("transport"), "tcp\n");
    write(
        &c.join("address"),
        format!("traddr={traddr},trsvcid=4420,src_addr=192.168.2.16\n"),
    );
    write(&c.join("state"), format!("{state}\n"));
    let s = root.join("sys/class/nvme-subsystem/nvme-subsys0");
    write(&s.join("subsysnqn"), format!("{SUBNQN}\n"));
    std::fs::create_dir_all(s.join("nvme0n1")).unwrap();
    let ns = root.join("sys/block/nvme0n1");
    write(&ns.join("dev"), "259:1\n");
    std::fs::create_dir_all(ns.join("holders")).unwrap();
}

/// A runner that answers from the script, then does what the kernel would: a successful
/// `nvme connect -a ADDR` creates the next controller, `nvme1`, for ADDR.
struct NvmeKernel {
    fake: Arc<FakeRunner>,
    root: PathBuf,
}

#[async_trait::async_trait]
impl host_storage::Runner for NvmeKernel {
    async fn run(&self, cmd: &host_storage::Command) -> host_storage::Result<host_storage::Output> {
        let out = self.fake.run(cmd).await?;
        let args: Vec<&str> = cmd.get_args().iter().map(|a| a.expose()).collect();
        if args.first() == Some(&"connect") {
            let addr = args[args.iter().position(|a| *a == "-a").unwrap() + 1];
            synthetic_nvme_ctrl(&self.root, "nvme1", addr, "live");
        }
        Ok(out)
    }
}

fn nvme_connect_args(traddr: &str) -> Vec<String> {
    [
        "connect", "-t", "tcp", "-a", traddr, "-s", "4420", "-n", SUBNQN, "-l", "-1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[tokio::test]
async fn nvme_connect_is_idempotent_and_disconnects_only_its_own_controller_on_synthetic_sysfs() {
    use host_storage::nvmeof::{ConnectOptions, Nvme, Transport};
    use host_storage::{HostName, Nqn};
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    write(
        &root.join("proc/self/mountinfo"),
        "27 1 254:0 / / rw - ext4 /dev/vda rw\n",
    );
    write(
        &root.join("sys/module/nvme_core/parameters/multipath"),
        "Y\n",
    );
    // The administrator's controller on the first LIF.
    synthetic_nvme_ctrl(&root, "nvme0", "192.168.2.117", "live");
    let nqn = Nqn::parse(SUBNQN).unwrap();
    let fake = Arc::new(FakeRunner::new());
    let kernel = NvmeKernel {
        fake: fake.clone(),
        root: root.clone(),
    };
    let nvme = Nvme::new(&kernel, HostRoot::new(&root));
    assert_eq!(nvme.native_multipath().unwrap(), Some(true));
    let opts = ConnectOptions::default();

    // First LIF: already connected by someone else, nothing to do.
    let lif1 = Transport::tcp(HostName::parse("192.168.2.117").unwrap());
    let u1 = nvme.connect(&nqn, &lif1, &opts).await.unwrap();
    assert_eq!(u1.change, Change::Unchanged);
    assert!(u1.controllers.is_empty());

    // Second LIF: connected by us; the "kernel" creates nvme1 when nvme connect succeeds.
    let lif2 = Transport::tcp(HostName::parse("192.168.2.118").unwrap());
    fake.expect(Expect::new("nvme", nvme_connect_args("192.168.2.118")));
    let u2 = nvme.connect(&nqn, &lif2, &opts).await.unwrap();
    assert_eq!(u2.controllers, ["nvme1"]);
    assert_eq!(u2.change, Change::Changed);
    assert_eq!(nvme.controllers_for(&nqn, &lif2).unwrap()[0].name, "nvme1");
    // Second time: the live controller is found, nothing runs.
    assert_eq!(
        nvme.connect(&nqn, &lif2, &opts).await.unwrap().change,
        Change::Unchanged
    );
    fake.verify();

    // In use (mounted): refused before any disconnect.
    write(
        &root.join("proc/self/mountinfo"),
        "27 1 254:0 / / rw - ext4 /dev/vda rw\n90 27 259:1 / /vm rw - xfs /dev/nvme0n1 rw\n",
    );
    match nvme.disconnect(&u2).await.unwrap_err() {
        Error::InUse { resource, users } => {
            assert_eq!(resource, "nvme1");
            assert_eq!(users, ["nvme0n1 mounted on /vm"]);
        }
        e => panic!("unexpected {e:?}"),
    }
    write(
        &root.join("proc/self/mountinfo"),
        "27 1 254:0 / / rw - ext4 /dev/vda rw\n",
    );
    fake.expect(Expect::new(
        "nvme",
        ["disconnect", "-d", root.join("dev/nvme1").to_str().unwrap()],
    ));
    assert_eq!(nvme.disconnect(&u2).await.unwrap(), Change::Changed);
    fake.verify();
    // Only the SDK's controller was named; the administrator's nvme0 was never touched.
    assert!(fake.calls().iter().all(|c| !c.contains("nvme0")));
    std::fs::remove_dir_all(root.join("sys/class/nvme/nvme1")).unwrap();
    assert_eq!(nvme.disconnect(&u2).await.unwrap(), Change::Unchanged);
    assert_eq!(nvme.disconnect(&u1).await.unwrap(), Change::Unchanged);
}

/// Like [`NvmeKernel`], with a new controller name per connect (`nvme1`, `nvme2`, …), a
/// connect to `192.168.2.119` refused, and `nvme disconnect -n NQN` removing every
/// controller of the subsystem.
struct NvmeKernelMany {
    fake: Arc<FakeRunner>,
    root: PathBuf,
}

#[async_trait::async_trait]
impl host_storage::Runner for NvmeKernelMany {
    async fn run(&self, cmd: &host_storage::Command) -> host_storage::Result<host_storage::Output> {
        let out = self.fake.run(cmd).await;
        let args: Vec<&str> = cmd.get_args().iter().map(|a| a.expose()).collect();
        let class = self.root.join("sys/class/nvme");
        if args.first() == Some(&"connect") {
            let addr = args[args.iter().position(|a| *a == "-a").unwrap() + 1];
            if addr != "192.168.2.119" {
                let n = std::fs::read_dir(&class).map_or(0, |rd| rd.count());
                synthetic_nvme_ctrl(&self.root, &format!("nvme{}", n + 1), addr, "live");
            }
        }
        if args.starts_with(&["disconnect", "-n"]) && out.is_ok() {
            for e in std::fs::read_dir(&class).unwrap() {
                let p = e.unwrap().path();
                if std::fs::read_to_string(p.join("subsysnqn")).unwrap().trim() == args[2] {
                    std::fs::remove_dir_all(p).unwrap();
                }
            }
        }
        out
    }
}

#[tokio::test]
async fn nvme_connect_paths_at_once_and_disconnect_by_subsystem_when_all_are_ours_on_synthetic_sysfs(
) {
    use host_storage::nvmeof::{ConnectOptions, Nvme, Transport};
    use host_storage::{HostName, Nqn};
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    write(
        &root.join("proc/self/mountinfo"),
        "27 1 254:0 / / rw - ext4 /dev/vda rw\n",
    );
    std::fs::create_dir_all(root.join("sys/class/nvme")).unwrap();
    let nqn = Nqn::parse(SUBNQN).unwrap();
    let fake = Arc::new(FakeRunner::new());
    let kernel = NvmeKernelMany {
        fake: fake.clone(),
        root: root.clone(),
    };
    let nvme = Nvme::new(&kernel, HostRoot::new(&root));
    let opts = ConnectOptions::default();
    let tcp = |a: &str| Transport::tcp(HostName::parse(a).unwrap());
    let paths = [tcp("192.168.2.117"), tcp("192.168.2.118")];
    fake.expect(Expect::new("nvme", nvme_connect_args("192.168.2.117")));
    fake.expect(Expect::new("nvme", nvme_connect_args("192.168.2.118")));
    let undo = nvme.connect_paths(&nqn, &paths, &opts).await.unwrap();
    fake.verify();
    assert_eq!(undo.controllers, ["nvme1", "nvme2"]);
    assert_eq!(undo.change, Change::Changed);
    // Again: both paths live, nothing runs.
    let again = nvme.connect_paths(&nqn, &paths, &opts).await.unwrap();
    assert_eq!(
        (again.change, again.controllers.len()),
        (Change::Unchanged, 0)
    );
    assert_eq!(fake.calls().len(), 2);

    // Every controller of the subsystem is ours: one disconnect by NQN.
    fake.expect(Expect::new("nvme", ["disconnect", "-n", SUBNQN]));
    assert_eq!(nvme.disconnect(&undo).await.unwrap(), Change::Changed);
    fake.verify();
    assert!(nvme.controllers().unwrap().is_empty());
    assert_eq!(nvme.disconnect(&undo).await.unwrap(), Change::Unchanged);

    // One path refused: the other one's controller is disconnected again (by itself, as
    // it is the only one), and the error is the connect's.
    let paths = [tcp("192.168.2.117"), tcp("192.168.2.119")];
    fake.expect(Expect::new("nvme", nvme_connect_args("192.168.2.117")));
    fake.expect(
        Expect::new("nvme", nvme_connect_args("192.168.2.119")).exit(
            1,
            "",
            "could not add new controller: failed to write to nvme-fabrics device\n",
        ),
    );
    fake.expect(Expect::new(
        "nvme",
        ["disconnect", "-d", root.join("dev/nvme1").to_str().unwrap()],
    ));
    let err = nvme.connect_paths(&nqn, &paths, &opts).await.unwrap_err();
    assert!(err.is_exit_code(1), "{err}");
    fake.verify();

    // A concurrent connect wins the race on one path: its controller is not this call's,
    // so the undo lists only the other one.
    // (The fake kernel keeps what `disconnect -d` named: start from no controller.)
    std::fs::remove_dir_all(root.join("sys/class/nvme")).unwrap();
    std::fs::create_dir_all(root.join("sys/class/nvme")).unwrap();
    let paths = [tcp("192.168.2.117"), tcp("192.168.2.118")];
    fake.expect(Expect::new("nvme", nvme_connect_args("192.168.2.117")));
    fake.expect(
        Expect::new("nvme", nvme_connect_args("192.168.2.118")).exit(
            1,
            "",
            "Failed to write to /dev/nvme-fabrics: Operation already in progress\nalready connected\n",
        ),
    );
    let undo = nvme.connect_paths(&nqn, &paths, &opts).await.unwrap();
    fake.verify();
    let names: Vec<(String, String)> = nvme
        .controllers()
        .unwrap()
        .into_iter()
        .map(|c| (c.name, c.address))
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    let mine: Vec<&String> = names
        .iter()
        .filter(|(_, a)| a.contains("traddr=192.168.2.117,"))
        .map(|(n, _)| n)
        .collect();
    assert_eq!(undo.controllers.iter().collect::<Vec<_>>(), mine);
    assert_eq!(undo.change, Change::Changed);
}

#[tokio::test]
async fn nvme_discovery_conf_and_discover_and_bad_input() {
    use host_storage::files::EntryId;
    use host_storage::nvmeof::{Nvme, Transport, NVME_DISCOVERY_PORT};
    use host_storage::HostName;
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("etc/nvme/discovery.conf"),
        "# admin\n--transport=tcp --traddr=10.1.1.1 --trsvcid=8009\n",
    );
    let fake = FakeRunner::new();
    let nvme = Nvme::new(&fake, HostRoot::new(dir.path()));
    let disc = Transport::Tcp {
        address: HostName::parse("192.168.2.117").unwrap(),
        port: NVME_DISCOVERY_PORT,
        host_address: None,
    };
    let id = EntryId::parse("lif1").unwrap();
    let undo = nvme.add_discovery_entry(&id, &disc).unwrap();
    assert_eq!(undo.change, Change::Changed);
    let conf = dir.path().join("etc/nvme/discovery.conf");
    assert!(std::fs::read_to_string(&conf).unwrap().ends_with(
        "--transport=tcp --traddr=10.1.1.1 --trsvcid=8009\n# kvmstor:lif1 (managed by kvmstor; removed by its undo)\n--transport=tcp --traddr=192.168.2.117 --trsvcid=8009\n"
    ));
    assert_eq!(
        nvme.add_discovery_entry(&id, &disc).unwrap().change,
        Change::Unchanged
    );
    assert_eq!(nvme.undo_discovery_entry(&undo).unwrap(), Change::Changed);
    assert_eq!(
        std::fs::read_to_string(&conf).unwrap(),
        "# admin\n--transport=tcp --traddr=10.1.1.1 --trsvcid=8009\n"
    );

    fake.expect(
        Expect::new("nvme", ["discover", "-t", "tcp", "-a", "192.168.2.117", "-s", "8009", "-o", "json"])
            .stdout(format!(
                r#"{{"genctr":2,"records":[{{"trtype":"tcp","adrfam":"ipv4","subtype":"current discovery subsystem","portid":1,"trsvcid":"8009","subnqn":"nqn.2014-08.org.nvmexpress.discovery","traddr":"192.168.2.117"}},{{"trtype":"tcp","adrfam":"ipv4","subtype":"nvme subsystem","portid":1,"trsvcid":"4420","subnqn":"{SUBNQN}","traddr":"192.168.2.117"}}]}}"#
            )),
    );
    let recs = nvme.discover(&disc).await.unwrap();
    let io: Vec<&str> = recs
        .iter()
        .filter(|r| r.is_io_subsystem())
        .map(|r| r.subnqn.as_str())
        .collect();
    assert_eq!(io, [SUBNQN]);
    fake.verify();

    let port0 = Transport::Tcp {
        address: HostName::parse("192.168.2.117").unwrap(),
        port: 0,
        host_address: None,
    };
    assert!(nvme.discover(&port0).await.is_err());
    assert!(nvme.add_discovery_entry(&id, &port0).is_err());
    assert!(HostName::parse("192.168.2.117 -o x").is_err());
    assert!(host_storage::Nqn::parse("nqn.bad nqn").is_err());
    assert_eq!(fake.calls().len(), 1);
}

fn synthetic_fc_host(root: &Path, host: u32, wwpn: &str, state: &str) {
    let h = root.join(format!("sys/class/fc_host/host{host}"));
    write(&h.join("port_name"), format!("{wwpn}\n"));
    write(&h.join("node_name"), "0x200000109b1c0f8e\n");
    write(&h.join("port_state"), format!("{state}\n"));
    write(&h.join("speed"), "16 Gbit\n");
    write(&h.join("issue_lip"), "");
    write(
        &root.join(format!("sys/class/scsi_host/host{host}/scan")),
        "",
    );
}

fn synthetic_rport(root: &Path, name: &str, wwpn: &str, state: &str, target_id: &str) {
    let r = root.join("sys/class/fc_remote_ports").join(name);
    write(&r.join("port_name"), format!("{wwpn}\n"));
    write(&r.join("node_name"), "0x200500a098d63c1f\n");
    write(&r.join("port_state"), format!("{state}\n"));
    write(&r.join("scsi_target_id"), format!("{target_id}\n"));
    write(&r.join("roles"), "FCP Target\n");
}

#[test]
fn fc_targeted_scan_and_lip_on_synthetic_sysfs() {
    use host_storage::fc::Fc;
    use host_storage::Wwpn;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    synthetic_fc_host(root, 7, "0x100000109b1c0f8e", "Online");
    synthetic_fc_host(root, 8, "0x100000109b1c0f8f", "Linkdown");
    let lif_a = "0x200600a098d63c1f";
    let lif_b = "0x200700a098d63c1f";
    synthetic_rport(root, "rport-7:0-2", lif_a, "Online", "0");
    synthetic_rport(root, "rport-7:0-3", lif_b, "Online", "1");
    synthetic_rport(root, "rport-7:0-4", "0x500a098800000001", "Online", "2"); // not ours
    synthetic_rport(root, "rport-8:0-2", lif_a, "Online", "0"); // HBA down
    synthetic_rport(root, "rport-7:0-5", "0x200800a098d63c1f", "Blocked", "3");
    let fc = Fc::new(HostRoot::new(root));
    let hbas = fc.hbas().unwrap();
    assert_eq!(hbas.len(), 2);
    assert!(hbas[0].is_online() && !hbas[1].is_online());
    let rports = fc.remote_ports().unwrap();
    assert_eq!(rports.len(), 5);
    assert_eq!(rports[0].name, "rport-7:0-2");
    assert_eq!(
        (rports[0].host, rports[0].channel, rports[0].scsi_target_id),
        (7, 0, Some(0))
    );
    assert_eq!(rports[0].roles, "FCP Target");

    let targets = [
        Wwpn::parse(lif_a).unwrap(),
        Wwpn::parse(lif_b).unwrap(),
        Wwpn::parse("0x200800a098d63c1f").unwrap(),
    ];
    let scans = fc.scan_lun(&targets, 4).unwrap();
    let got: Vec<(u32, &str)> = scans.iter().map(|s| (s.host, s.scan.as_str())).collect();
    assert_eq!(got, [(7, "0 0 4"), (7, "0 1 4")]);
    // Two writes (a real scan file takes each separately; the synthetic one appends).
    assert_eq!(
        std::fs::read_to_string(root.join("sys/class/scsi_host/host7/scan")).unwrap(),
        "0 0 40 1 4"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("sys/class/scsi_host/host8/scan")).unwrap(),
        ""
    );

    fc.issue_lip(7).unwrap();
    assert_eq!(
        std::fs::read_to_string(root.join("sys/class/fc_host/host7/issue_lip")).unwrap(),
        "1"
    );
    assert!(fc.issue_lip(3).is_err());
}

/// Adds LUN `lun` as disk `sd` (with `serial`) to synthetic session `sid` on `host`.
fn synthetic_lun(root: &Path, sid: u32, host: u32, lun: u64, sd: &str, serial: &str) {
    let d = root.join(format!(
        "sys/devices/platform/host{host}/session{sid}/target{host}:0:0/{host}:0:0:{lun}/block/{sd}"
    ));
    std::fs::create_dir_all(d).unwrap();
    synthetic_sd(root, sd, serial);
}

#[tokio::test]
async fn iscsi_attach_lun_scans_and_waits_for_a_verified_path_per_session_on_synthetic_sysfs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    synthetic_session(&root, 3, 34, "10.0.207.7", &[]);
    synthetic_session(&root, 4, 35, "10.0.207.9", &[]);
    // The kernel answers a scan of LUN 2 by adding the disk, a little later.
    let kernel = {
        let root = root.clone();
        std::thread::spawn(move || {
            let mut left = vec![(3u32, 34u32, "sdb"), (4, 35, "sdc")];
            for _ in 0..300 {
                left.retain(|(sid, host, sd)| {
                    let scan = std::fs::read_to_string(
                        root.join(format!("sys/class/scsi_host/host{host}/scan")),
                    )
                    .unwrap();
                    if scan.ends_with("- - 2") {
                        std::thread::sleep(Duration::from_millis(50));
                        synthetic_lun(&root, *sid, *host, 2, sd, "wOj4f?W9lOk7");
                        false
                    } else {
                        true
                    }
                });
                if left.is_empty() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let fake = FakeRunner::new();
    let iscsi = Iscsi::new(&fake, HostRoot::new(&root));
    let serial = LunSerial::parse("wOj4f?W9lOk7").unwrap();
    let got = iscsi
        .attach_lun(&iqn(), 2, &serial, Duration::from_secs(5))
        .await
        .unwrap();
    kernel.join().unwrap();
    let h = |host| Hctl {
        host,
        channel: 0,
        target: 0,
        lun: 2,
    };
    assert_eq!(
        got.paths,
        vec![(h(34), "sdb".to_owned()), (h(35), "sdc".to_owned())]
    );
    assert_eq!(got.sessions, 2);
    // Again: both paths present, found at once.
    assert_eq!(
        iscsi
            .attach_lun(&iqn(), 2, &serial, Duration::from_millis(10))
            .await
            .unwrap(),
        got
    );
    assert!(fake.calls().is_empty());

    // A disk at LUN 3 that reports another serial is never taken for ours.
    synthetic_lun(&root, 3, 34, 3, "sdd", "80BJM+UV3uQ3");
    match iscsi
        .attach_lun(&iqn(), 3, &serial, Duration::from_millis(10))
        .await
        .unwrap_err()
    {
        Error::DeviceMismatch { device, found, .. } => {
            assert_eq!((device.as_str(), found.as_str()), ("sdd", "80BJM+UV3uQ3"));
        }
        e => panic!("unexpected {e:?}"),
    }
    // Nothing at LUN 9: the deadline holds.
    match iscsi
        .attach_lun(&iqn(), 9, &serial, Duration::from_millis(100))
        .await
        .unwrap_err()
    {
        Error::WaitTimeout { what, .. } => {
            assert_eq!(what, format!("LUN 9 of {IQN} with serial wOj4f?W9lOk7"))
        }
        e => panic!("unexpected {e:?}"),
    }
}

#[tokio::test]
async fn iscsi_disconnect_keeps_a_session_and_record_another_lun_still_uses_on_synthetic_sysfs() {
    use host_storage::iscsi::{ConnectUndo, LoginUndo, NodeUndo};
    let (_dir, root) = iscsi_root();
    synthetic_session(&root, 3, 34, "10.0.207.7", &[]);
    synthetic_session(&root, 4, 35, "10.0.207.9", &[]);
    synthetic_lun(&root, 3, 34, 7, "sdf", "80BJM+UV3uQ3"); // someone else's LUN
    let node_undo = |a: &str| NodeUndo {
        target: iqn(),
        portal: portal(a),
        created: true,
        previous_settings: Vec::new(),
        previous_record: None,
        change: Change::Changed,
    };
    let login_undo = |a: &str| LoginUndo {
        target: iqn(),
        portal: portal(a),
        change: Change::Changed,
    };
    let undo = ConnectUndo {
        nodes: vec![node_undo("10.0.207.7"), node_undo("10.0.207.9")],
        logins: vec![login_undo("10.0.207.7"), login_undo("10.0.207.9")],
        change: Change::Changed,
    };
    // The kept session is another LUN's, so nothing target-wide: per portal.
    let kernel = IscsiKernel::new(&root);
    let fake = &kernel.fake;
    fake.expect(Expect::new(
        "iscsiadm",
        with(node("10.0.207.9"), &["--logout"]),
    ));
    fake.expect(Expect::new(
        "iscsiadm",
        with(node("10.0.207.9"), &["-o", "delete"]),
    ));
    let iscsi = Iscsi::new(&kernel, HostRoot::new(&root));
    let done = iscsi.disconnect(&undo).await.unwrap();
    fake.verify();
    let left: Vec<Option<Portal>> = iscsi
        .target_sessions(&iqn())
        .unwrap()
        .into_iter()
        .map(|s| s.portal)
        .collect();
    assert_eq!(left, [Some(portal("10.0.207.7"))]);
    assert!(root
        .join(format!(
            "etc/iscsi/nodes/{IQN}/10.0.207.7,3260,1028/default"
        ))
        .exists());
    assert!(!root
        .join(format!("etc/iscsi/nodes/{IQN}/10.0.207.9,3260,1028"))
        .exists());
    assert_eq!(done.change, Change::Changed);
    assert_eq!(
        done.kept,
        vec![(portal("10.0.207.7"), vec!["sdf".to_owned()])]
    );
}
