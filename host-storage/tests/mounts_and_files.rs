//! NFS/CIFS option models, fstab and autofs files on a temporary host root, CIFS
//! credentials, and the Mounter with a scripted runner.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use host_storage::autofs::{Autofs, Reload};
use host_storage::cifs::{
    credentials_path, remove_credentials, undo_credentials, write_credentials, CifsCredentials,
    CifsMount, CifsOptions, CifsSec, SmbVersion,
};
use host_storage::files::{EntryId, HostRoot};
use host_storage::fstab::{Fstab, FstabEntry};
use host_storage::mount::Mounter;
use host_storage::nfs::{
    NfsMount, NfsOptions, NfsProto, NfsSec, NfsServers, NfsVersion, Recovery, Replica, XprtSec,
};
use host_storage::{Change, Error, Expect, FakeRunner, HostName, ValueKind};
use secrecy::SecretString;

fn id(s: &str) -> EntryId {
    EntryId::parse(s).unwrap()
}

fn host(s: &str) -> HostName {
    HostName::parse(s).unwrap()
}

fn nfs_one(target: &str) -> NfsMount {
    NfsMount::new(
        NfsServers::One(host("10.0.0.5")),
        "/vm_datastore",
        target,
        NfsOptions::new(NfsVersion::V4_1)
            .nconnect(4)
            .recovery(Recovery::Hard)
            .netdev(true),
    )
    .unwrap()
}

/// A temporary host root with an `etc/` holding a typical fstab.
fn host_root() -> (tempfile::TempDir, HostRoot) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("etc")).unwrap();
    std::fs::write(
        dir.path().join("etc/fstab"),
        "# /etc/fstab: static file system information.\n\
         UUID=5a1e7f7e-0000-4000-8000-000000000001 /               ext4    errors=remount-ro 0       1\n\
         /dev/vdb1 none swap sw 0 0\n",
    )
    .unwrap();
    let root = HostRoot::new(dir.path());
    (dir, root)
}

// ---------------------------------------------------------------- NFS options

#[test]
fn nfs_options_render_every_field_in_a_stable_order() {
    let o = NfsOptions::new(NfsVersion::V4_2)
        .read_only(true)
        .proto(NfsProto::Tcp)
        .nconnect(16)
        .max_connect(8)
        .trunkdiscovery(true)
        .sec(NfsSec::Krb5p)
        .xprtsec(XprtSec::Mtls)
        .recovery(Recovery::Soft)
        .timeo(100)
        .retrans(3)
        .rsize(1_048_576)
        .wsize(65_536)
        .noatime(true)
        .nosharecache(true)
        .netdev(true);
    o.validate().unwrap();
    let want = "vers=4.2,ro,proto=tcp,nconnect=16,max_connect=8,trunkdiscovery,sec=krb5p,xprtsec=mtls,soft,timeo=100,retrans=3,rsize=1048576,wsize=65536,noatime,nosharecache";
    assert_eq!(o.mount_options(), want);
    assert_eq!(o.fstab_options(), format!("{want},_netdev"));
    // The rendering parses back to the same model.
    assert_eq!(NfsOptions::parse(&o.fstab_options()).unwrap(), o);
}

#[test]
fn nfs_options_refuse_bad_values_before_anything_is_touched() {
    for (o, what) in [
        (NfsOptions::new(NfsVersion::V4_1).nconnect(0), "nconnect=0"),
        (
            NfsOptions::new(NfsVersion::V4_1).nconnect(17),
            "nconnect=17",
        ),
        (
            NfsOptions::new(NfsVersion::V4_1).max_connect(17),
            "max_connect=17",
        ),
        (NfsOptions::new(NfsVersion::V4_1).rsize(1000), "rsize=1000"),
        (
            NfsOptions::new(NfsVersion::V4_1).wsize(2_097_152),
            "wsize=2097152",
        ),
        (NfsOptions::new(NfsVersion::V4_1).timeo(0), "timeo=0"),
    ] {
        match o.validate() {
            Err(Error::Invalid {
                kind: ValueKind::NfsOption,
                value,
                ..
            }) => assert_eq!(value, what),
            other => panic!("{what}: {other:?}"),
        }
    }
    for o in [
        NfsOptions::new(NfsVersion::V3).max_connect(2),
        NfsOptions::new(NfsVersion::V4_0).trunkdiscovery(true),
        NfsOptions::new(NfsVersion::V4_1).nolock(true),
    ] {
        assert!(matches!(o.validate(), Err(Error::Conflict { .. })), "{o:?}");
    }
    for bad in [
        "nconnect=4", // no version
        "vers=4",     // minor version required
        "vers=4.1,nconnect=17",
        "vers=4.1,nconnect=x",
        "vers=4.1,sec=krb6",
        "vers=4.1,xprtsec=ssl",
        "vers=4.1,bogus",
        "vers=4.1,hard=1",
        "vers=4.1,,hard",
        "vers=4.1,hard\n/etc/passwd",
        "vers=4.1 hard",
        "vers=4.1,hard#x",
    ] {
        assert!(NfsOptions::parse(bad).is_err(), "{bad:?}");
    }
    assert_eq!(
        NfsOptions::parse("nfsvers=3,nolock,soft,timeo=100,retrans=3,nosharecache")
            .unwrap()
            .mount_options(),
        "vers=3,soft,timeo=100,retrans=3,nolock,nosharecache"
    );
}

#[test]
fn nfs_server_sets() {
    let m = nfs_one("/mnt/vmstore");
    assert_eq!(m.source().unwrap(), "10.0.0.5:/vm_datastore");
    assert_eq!(
        m.fstab_line(),
        "10.0.0.5:/vm_datastore /mnt/vmstore nfs vers=4.1,nconnect=4,hard,_netdev 0 0"
    );

    let v6 = NfsMount::new(
        NfsServers::One(host("fd00::5")),
        "/vm",
        "/mnt/v6",
        NfsOptions::new(NfsVersion::V4_2),
    )
    .unwrap();
    assert_eq!(v6.source().unwrap(), "[fd00::5]:/vm");
    assert_eq!(
        v6.autofs_entry(),
        "/mnt/v6 -fstype=nfs,vers=4.2 [fd00::5]:/vm"
    );

    let rep = NfsMount::new(
        NfsServers::Replicated(vec![
            Replica {
                host: host("filer1.example.com"),
                weight: Some(1),
            },
            Replica {
                host: host("filer2.example.com"),
                weight: None,
            },
        ]),
        "/iso",
        "/mnt/iso",
        NfsOptions::new(NfsVersion::V3).read_only(true),
    )
    .unwrap();
    assert_eq!(
        rep.autofs_entry(),
        "/mnt/iso -fstype=nfs,vers=3,ro filer1.example.com(1),filer2.example.com:/iso"
    );
    assert!(matches!(rep.source(), Err(Error::Conflict { .. })));
    assert!(rep.mount_command().is_err());

    let trunk = NfsMount::new(
        NfsServers::Trunked(vec![host("10.0.1.5"), host("10.0.2.5"), host("10.0.3.5")]),
        "/vm",
        "/mnt/trunk",
        NfsOptions::new(NfsVersion::V4_1).trunkdiscovery(true),
    )
    .unwrap();
    assert_eq!(trunk.options().get_max_connect(), Some(3));
    assert_eq!(
        trunk.mount_command().unwrap().to_string(),
        "mount -t nfs -o vers=4.1,max_connect=3,trunkdiscovery 10.0.1.5:/vm /mnt/trunk"
    );
    assert_eq!(
        trunk.trunk_addresses(),
        [host("10.0.2.5"), host("10.0.3.5")]
    );
    assert!(matches!(
        NfsMount::new(
            NfsServers::Trunked(vec![host("a"), host("b")]),
            "/vm",
            "/mnt/t",
            NfsOptions::new(NfsVersion::V3)
        ),
        Err(Error::Conflict { .. })
    ));
    for (export, target) in [
        ("vm", "/mnt/x"),
        ("/vm", "mnt/x"),
        ("/vm", "/mnt/a b"),
        ("/v,m", "/mnt/x"),
        ("/vm", "/mnt/x#1"),
        ("/vm\n", "/mnt/x"),
    ] {
        assert!(
            NfsMount::new(
                NfsServers::One(host("s")),
                export,
                target,
                NfsOptions::new(NfsVersion::V4_1)
            )
            .is_err(),
            "{export:?} {target:?}"
        );
    }
}

// ---------------------------------------------------------------- CIFS

#[test]
fn cifs_options_and_mount_never_carry_the_password() {
    let o = CifsOptions::new(SmbVersion::V3_1_1)
        .sec(CifsSec::Ntlmssp)
        .max_channels(4)
        .uid(107)
        .gid(108)
        .file_mode(0o660)
        .dir_mode(0o770)
        .seal(true)
        .netdev(true);
    let m = CifsMount::new(
        host("smb.example.com"),
        "vms/images",
        "/mnt/smb",
        o,
        Some(&id("smb1")),
    )
    .unwrap();
    let opts = "vers=3.1.1,sec=ntlmssp,multichannel,max_channels=4,uid=107,gid=108,file_mode=0660,dir_mode=0770,seal,credentials=/etc/kvmstor/cifs/smb1.cred";
    assert_eq!(m.mount_options(), opts);
    assert_eq!(
        m.fstab_line(),
        format!("//smb.example.com/vms/images /mnt/smb cifs {opts},_netdev 0 0")
    );
    assert_eq!(
        m.autofs_entry(),
        format!("/mnt/smb -fstype=cifs,{opts} ://smb.example.com/vms/images")
    );
    assert_eq!(
        m.mount_command().to_string(),
        format!("mount -t cifs -o {opts} //smb.example.com/vms/images /mnt/smb")
    );
    for share in ["", "/abs", "a b", "a,b", "a/../b", "a#b", "a\\b"] {
        assert!(
            CifsMount::new(
                host("s"),
                share,
                "/mnt/s",
                CifsOptions::new(SmbVersion::V3_0),
                None
            )
            .is_err(),
            "{share:?}"
        );
    }
    assert!(CifsOptions::new(SmbVersion::V3_0)
        .max_channels(0)
        .validate()
        .is_err());
    assert!(CifsOptions::new(SmbVersion::V3_0)
        .file_mode(0o17777)
        .validate()
        .is_err());
    assert!(matches!(
        CifsOptions::new(SmbVersion::V2_1)
            .multichannel(true)
            .validate(),
        Err(Error::Conflict { .. })
    ));
    let krb = CifsMount::new(
        host("s"),
        "share",
        "/mnt/k",
        CifsOptions::new(SmbVersion::V3_1_1).sec(CifsSec::Krb5),
        None,
    )
    .unwrap();
    assert_eq!(krb.mount_options(), "vers=3.1.1,sec=krb5");
}

#[test]
fn cifs_credentials_file_is_0600_idempotent_and_removable() {
    let (dir, root) = host_root();
    let creds = CifsCredentials::new(
        "svc_kvm",
        SecretString::from("S3cr=t, pass#word"),
        Some("CORP"),
    )
    .unwrap();
    let u = write_credentials(&root, &id("smb1"), &creds).unwrap();
    assert_eq!(u.change, Change::Changed);
    assert!(u.created);
    let path = dir.path().join("etc/kvmstor/cifs/smb1.cred");
    assert_eq!(u.path, path);
    assert_eq!(
        credentials_path(&id("smb1")),
        Path::new("/etc/kvmstor/cifs/smb1.cred")
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "username=svc_kvm\npassword=S3cr=t, pass#word\ndomain=CORP\n"
    );
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );

    let again = write_credentials(&root, &id("smb1"), &creds).unwrap();
    assert_eq!(again.change, Change::Unchanged);

    // A loosened mode is repaired.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(
        write_credentials(&root, &id("smb1"), &creds)
            .unwrap()
            .change,
        Change::Changed
    );
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let other = CifsCredentials::new("svc_kvm", SecretString::from("new"), None).unwrap();
    let u2 = write_credentials(&root, &id("smb1"), &other).unwrap();
    assert_eq!((u2.change, u2.created), (Change::Changed, false));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "username=svc_kvm\npassword=new\n"
    );

    assert_eq!(undo_credentials(&again).unwrap(), Change::Unchanged);
    assert!(path.exists());
    assert_eq!(undo_credentials(&u2).unwrap(), Change::Changed);
    assert!(!path.exists());
    assert_eq!(undo_credentials(&u2).unwrap(), Change::Unchanged);
    let _ = write_credentials(&root, &id("smb1"), &creds).unwrap();
    assert_eq!(
        remove_credentials(&root, &id("smb1")).unwrap(),
        Change::Changed
    );
    assert!(!path.exists());
    assert_eq!(
        remove_credentials(&root, &id("smb1")).unwrap(),
        Change::Unchanged
    );

    for bad in ["a b", "a,b", "a=b", ""] {
        assert!(
            CifsCredentials::new(bad, SecretString::from("p"), None).is_err(),
            "{bad:?}"
        );
    }
    assert!(CifsCredentials::new("u", SecretString::from("p"), Some("C ORP")).is_err());
}

// ---------------------------------------------------------------- fstab

#[test]
fn fstab_add_is_idempotent_and_undo_restores_the_file_byte_for_byte() {
    let (dir, root) = host_root();
    let path = dir.path().join("etc/fstab");
    let before = std::fs::read_to_string(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let fstab = Fstab::new(&root);

    let undo = fstab
        .add_nfs(&id("vmstore"), &nfs_one("/mnt/vmstore"))
        .unwrap();
    assert_eq!(undo.change, Change::Changed);
    let after = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        after,
        format!(
            "{before}# kvmstor:vmstore (managed by kvmstor; removed by its undo)\n\
             10.0.0.5:/vm_datastore /mnt/vmstore nfs vers=4.1,nconnect=4,hard,_netdev 0 0\n"
        )
    );
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o640
    );

    let second = fstab
        .add_nfs(&id("vmstore"), &nfs_one("/mnt/vmstore"))
        .unwrap();
    assert_eq!(second.change, Change::Unchanged);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), after);
    // Undoing the call that changed nothing changes nothing.
    assert_eq!(fstab.undo(&second).unwrap(), Change::Unchanged);

    assert_eq!(
        fstab.owned().unwrap(),
        [(
            "vmstore".to_owned(),
            "10.0.0.5:/vm_datastore /mnt/vmstore nfs vers=4.1,nconnect=4,hard,_netdev 0 0"
                .to_owned()
        )]
    );
    assert_eq!(fstab.undo(&undo).unwrap(), Change::Changed);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
    assert_eq!(fstab.undo(&undo).unwrap(), Change::Unchanged);
    assert_eq!(fstab.remove(&id("vmstore")).unwrap(), Change::Unchanged);
}

#[test]
fn fstab_update_undo_restores_the_previous_line() {
    let (dir, root) = host_root();
    let fstab = Fstab::new(&root);
    let first = fstab.add_nfs(&id("vm"), &nfs_one("/mnt/vm")).unwrap();
    let v2 = NfsMount::new(
        NfsServers::One(host("10.0.0.6")),
        "/vm2",
        "/mnt/vm",
        NfsOptions::new(NfsVersion::V4_2),
    )
    .unwrap();
    let update = fstab.add_nfs(&id("vm"), &v2).unwrap();
    assert_eq!(update.change, Change::Changed);
    assert_eq!(
        update.previous.as_deref(),
        Some(nfs_one("/mnt/vm").fstab_line().as_str())
    );
    let text = std::fs::read_to_string(dir.path().join("etc/fstab")).unwrap();
    assert!(
        text.ends_with("\n10.0.0.6:/vm2 /mnt/vm nfs vers=4.2 0 0\n"),
        "{text}"
    );
    assert_eq!(text.matches("# kvmstor:vm ").count(), 1);
    assert_eq!(fstab.undo(&update).unwrap(), Change::Changed);
    assert_eq!(fstab.owned().unwrap()[0].1, nfs_one("/mnt/vm").fstab_line());
    assert_eq!(fstab.undo(&first).unwrap(), Change::Changed);
    assert!(fstab.owned().unwrap().is_empty());
}

#[test]
fn fstab_refuses_a_mount_point_it_does_not_own() {
    let (dir, root) = host_root();
    let path = dir.path().join("etc/fstab");
    let fstab = Fstab::new(&root);
    let before = std::fs::read_to_string(&path).unwrap();
    let root_entry = FstabEntry::new("/dev/vdc1", "/", "ext4", "defaults").unwrap();
    match fstab.add(&id("evil"), &root_entry).unwrap_err() {
        Error::NotOwned { path: p, line, key } => {
            assert_eq!(p, path);
            assert_eq!(line, 2);
            assert_eq!(key, "/");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
    // Two owners cannot claim one mount point either.
    fstab.add_nfs(&id("a"), &nfs_one("/mnt/shared")).unwrap();
    assert!(matches!(
        fstab.add_nfs(&id("b"), &nfs_one("/mnt/shared")),
        Err(Error::NotOwned { .. })
    ));
    // Replicated sets only work with autofs.
    let rep = NfsMount::new(
        NfsServers::Replicated(vec![Replica {
            host: host("f1"),
            weight: None,
        }]),
        "/iso",
        "/mnt/iso",
        NfsOptions::new(NfsVersion::V3),
    )
    .unwrap();
    assert!(matches!(
        fstab.add_nfs(&id("iso"), &rep),
        Err(Error::Conflict { .. })
    ));
}

#[test]
fn fstab_missing_file_is_created_0644() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("etc")).unwrap();
    let fstab = Fstab::new(&HostRoot::new(dir.path()));
    let cifs = CifsMount::new(
        host("smb"),
        "share",
        "/mnt/smb",
        CifsOptions::new(SmbVersion::V3_1_1),
        Some(&id("smb")),
    )
    .unwrap();
    fstab.add_cifs(&id("smb"), &cifs).unwrap();
    let path = dir.path().join("etc/fstab");
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o644
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "# kvmstor:smb (managed by kvmstor; removed by its undo)\n//smb/share /mnt/smb cifs vers=3.1.1,credentials=/etc/kvmstor/cifs/smb.cred 0 0\n"
    );
    assert!(!std::fs::read_to_string(&path).unwrap().contains("password"));
}

// ---------------------------------------------------------------- autofs

fn autofs_root() -> (tempfile::TempDir, HostRoot) {
    let (dir, root) = host_root();
    std::fs::write(
        dir.path().join("etc/auto.master"),
        "#\n# Sample auto.master file\n/misc\t/etc/auto.misc\n/-\t/etc/auto.data\n+dir:/etc/auto.master.d\n+auto.master\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("run/systemd/system")).unwrap();
    (dir, root)
}

#[tokio::test]
async fn autofs_add_reloads_once_and_undo_removes_exactly_what_it_added() {
    let (dir, root) = autofs_root();
    let master_path = dir.path().join("etc/auto.master");
    let master_before = std::fs::read_to_string(&master_path).unwrap();
    let fake = FakeRunner::new();
    fake.expect(Expect::new(
        "systemctl",
        ["try-reload-or-restart", "autofs.service"],
    ));
    let autofs = Autofs::new(root.clone(), &fake, id("kvmstor")).timeout(60);

    let undo = autofs
        .add_nfs(&id("vmstore"), &nfs_one("/mnt/vmstore"))
        .await
        .unwrap();
    assert_eq!(undo.change, Change::Changed);
    assert_eq!(
        std::fs::read_to_string(&master_path).unwrap(),
        format!("{master_before}# kvmstor:kvmstor (managed by kvmstor; removed by its undo)\n/- /etc/auto.kvmstor --timeout=60\n")
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("etc/auto.kvmstor")).unwrap(),
        "# kvmstor:vmstore (managed by kvmstor; removed by its undo)\n/mnt/vmstore -fstype=nfs,vers=4.1,nconnect=4,hard 10.0.0.5:/vm_datastore\n"
    );
    fake.verify();

    // Second run: nothing written, no reload (the fake would reject a call).
    let again = autofs
        .add_nfs(&id("vmstore"), &nfs_one("/mnt/vmstore"))
        .await
        .unwrap();
    assert_eq!(again.change, Change::Unchanged);
    assert_eq!(autofs.undo(&again).await.unwrap(), Change::Unchanged);

    fake.expect(Expect::new(
        "systemctl",
        ["try-reload-or-restart", "autofs.service"],
    ));
    assert_eq!(autofs.undo(&undo).await.unwrap(), Change::Changed);
    assert_eq!(
        std::fs::read_to_string(&master_path).unwrap(),
        master_before
    );
    assert!(!dir.path().join("etc/auto.kvmstor").exists());
    fake.verify();
    assert_eq!(fake.calls().len(), 2);
}

#[tokio::test]
async fn automount_daemon_is_asked_of_systemd_or_found_by_pid_file() {
    let (dir, root) = autofs_root();
    let fake = FakeRunner::new();
    let autofs = Autofs::new(root.clone(), &fake, id("kvmstor"));

    // systemd is PID 1 on this root: systemctl answers.
    fake.expect(Expect::new("systemctl", ["is-active", "autofs.service"]).stdout("active\n"));
    assert_eq!(autofs.daemon().await.unwrap(), Some(true));
    fake.expect(
        Expect::new("systemctl", ["is-active", "autofs.service"]).exit(3, "inactive\n", ""),
    );
    let err = autofs.require_daemon().await.unwrap_err();
    assert!(
        matches!(&err, Error::NotRunning { daemon: "automount", evidence }
            if evidence == "systemctl is-active autofs.service: inactive"),
        "{err:?}"
    );
    fake.expect(
        Expect::new("systemctl", ["is-active", "autofs.service"]).exit(
            4,
            "inactive\n",
            "Unit autofs.service could not be found.\n",
        ),
    );
    assert_eq!(autofs.daemon().await.unwrap(), Some(false));
    fake.verify();

    // Without systemd: the pid files, first /run then /var/run; a dead pid is not running.
    std::fs::remove_dir_all(dir.path().join("run/systemd")).unwrap();
    let err = autofs.require_daemon().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "automount is not running: no pid file (/run/autofs.pid, /var/run/autofs.pid)"
    );
    std::fs::create_dir_all(dir.path().join("var/run")).unwrap();
    std::fs::write(dir.path().join("var/run/autofs.pid"), "77\n").unwrap();
    assert_eq!(
        autofs.require_daemon().await.unwrap_err().to_string(),
        "automount is not running: /var/run/autofs.pid names pid 77, which is gone"
    );
    std::fs::create_dir_all(dir.path().join("proc/77")).unwrap();
    std::fs::write(dir.path().join("proc/77/comm"), "automount\n").unwrap();
    assert_eq!(autofs.daemon().await.unwrap(), Some(true));

    // Never: the caller looks after automount; nothing is checked or run.
    let never = Autofs::new(root, &fake, id("kvmstor")).reload(Reload::Never);
    std::fs::remove_dir_all(dir.path().join("proc/77")).unwrap();
    assert_eq!(never.daemon().await.unwrap(), None);
    never.require_daemon().await.unwrap();
    assert_eq!(fake.calls().len(), 3);
}

#[tokio::test]
async fn autofs_keeps_master_line_while_entries_remain() {
    let (dir, root) = autofs_root();
    let fake = FakeRunner::new();
    for _ in 0..4 {
        fake.expect(Expect::new(
            "systemctl",
            ["try-reload-or-restart", "autofs.service"],
        ));
    }
    let autofs = Autofs::new(root, &fake, id("kvmstor"));
    let smb = CifsMount::new(
        host("smb"),
        "iso",
        "/mnt/smb",
        CifsOptions::new(SmbVersion::V3_1_1),
        Some(&id("smb")),
    )
    .unwrap();
    autofs.add_nfs(&id("a"), &nfs_one("/mnt/a")).await.unwrap();
    let b = autofs.add_cifs(&id("smb"), &smb).await.unwrap();
    assert_eq!(b.master.change, Change::Unchanged);
    assert_eq!(
        autofs
            .owned()
            .unwrap()
            .iter()
            .map(|(i, _)| i.as_str())
            .collect::<Vec<_>>(),
        ["a", "smb"]
    );
    assert_eq!(autofs.remove(&id("a")).await.unwrap(), Change::Changed);
    let master = std::fs::read_to_string(dir.path().join("etc/auto.master")).unwrap();
    assert!(master.contains("/- /etc/auto.kvmstor --timeout=300\n"));
    assert_eq!(autofs.remove(&id("smb")).await.unwrap(), Change::Changed);
    let master = std::fs::read_to_string(dir.path().join("etc/auto.master")).unwrap();
    assert!(!master.contains("kvmstor"));
    assert!(
        master.contains("/-\t/etc/auto.data\n"),
        "foreign direct map kept"
    );
    assert!(!dir.path().join("etc/auto.kvmstor").exists());
    assert_eq!(autofs.remove(&id("smb")).await.unwrap(), Change::Unchanged);
    fake.verify();
}

#[tokio::test]
async fn autofs_without_systemd_or_pidfile_needs_no_reload() {
    let (dir, root) = host_root();
    let fake = FakeRunner::new();
    let autofs = Autofs::new(root, &fake, id("kvmstor")).reload(Reload::Auto);
    let u = autofs.add_nfs(&id("a"), &nfs_one("/mnt/a")).await.unwrap();
    assert_eq!(u.change, Change::Changed);
    // A stale pid file (no such process) is not an error either.
    std::fs::create_dir_all(dir.path().join("run")).unwrap();
    std::fs::write(dir.path().join("run/autofs.pid"), "4194000\n").unwrap();
    assert_eq!(autofs.undo(&u).await.unwrap(), Change::Changed);
    fake.verify();
    assert!(fake.calls().is_empty());
}

// ---------------------------------------------------------------- Mounter

fn mountinfo_with(dir: &Path, extra: &str) -> std::path::PathBuf {
    let p = dir.join("mountinfo");
    std::fs::write(
        &p,
        format!("27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n{extra}"),
    )
    .unwrap();
    p
}

#[tokio::test]
async fn mounter_mounts_once_and_undo_unmounts_and_removes_its_dir() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("mnt/vmstore");
    let target_s = target.display().to_string();
    let mi = mountinfo_with(dir.path(), "");
    let m = nfs_one(&target_s);
    let fake = FakeRunner::new();
    fake.expect(Expect::new(
        "mount",
        [
            "-t",
            "nfs",
            "-o",
            "vers=4.1,nconnect=4,hard",
            "10.0.0.5:/vm_datastore",
            &target_s,
        ],
    ));
    let mounter = Mounter::new(&fake).with_mountinfo(&mi);
    let undo = mounter.mount_nfs(&m).await.unwrap();
    assert_eq!(undo.change, Change::Changed);
    assert!(undo.created_dir);
    assert!(target.is_dir());
    fake.verify();

    // The kernel now lists it: a second call does nothing.
    mountinfo_with(dir.path(), &format!("812 27 0:88 / {target_s} rw,relatime shared:400 - nfs4 10.0.0.5:/vm_datastore rw,vers=4.1\n"));
    let again = mounter.mount_nfs(&m).await.unwrap();
    assert_eq!(again.change, Change::Unchanged);
    assert_eq!(mounter.undo(&again).await.unwrap(), Change::Unchanged);

    fake.expect(Expect::new("umount", [target_s.as_str()]));
    assert_eq!(mounter.undo(&undo).await.unwrap(), Change::Changed);
    assert!(!target.exists());
    fake.verify();
}

#[tokio::test]
async fn mounter_refuses_a_foreign_mount_and_cleans_up_after_a_failed_mount() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("mnt/x");
    let target_s = target.display().to_string();
    let mi = mountinfo_with(
        dir.path(),
        &format!("90 27 0:99 / {target_s} rw - nfs4 10.9.9.9:/other rw\n"),
    );
    let fake = FakeRunner::new();
    let mounter = Mounter::new(&fake).with_mountinfo(&mi);
    match mounter.mount_nfs(&nfs_one(&target_s)).await.unwrap_err() {
        Error::MountedElsewhere {
            found_source,
            found_fstype,
            ..
        } => {
            assert_eq!(
                (found_source.as_str(), found_fstype.as_str()),
                ("10.9.9.9:/other", "nfs4")
            );
        }
        other => panic!("unexpected {other:?}"),
    }

    mountinfo_with(dir.path(), "");
    fake.expect(Expect::any_args("mount").exit(
        32,
        "",
        "mount.nfs: access denied by server while mounting 10.0.0.5:/vm_datastore",
    ));
    let err = mounter.mount_nfs(&nfs_one(&target_s)).await.unwrap_err();
    assert!(err.is_exit_code(32));
    assert!(
        !target.exists(),
        "the directory it created is removed again"
    );
    assert_eq!(mounter.unmount(&target).await.unwrap(), Change::Unchanged);
    fake.verify();
}

#[tokio::test]
async fn mounter_cifs_passes_no_password() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("smb");
    let target_s = target.display().to_string();
    let mi = mountinfo_with(dir.path(), "");
    let m = CifsMount::new(
        host("smb"),
        "share",
        &target_s,
        CifsOptions::new(SmbVersion::V3_1_1),
        Some(&id("smb")),
    )
    .unwrap();
    let fake = FakeRunner::new();
    fake.expect(Expect::new(
        "mount",
        [
            "-t",
            "cifs",
            "-o",
            "vers=3.1.1,credentials=/etc/kvmstor/cifs/smb.cred",
            "//smb/share",
            &target_s,
        ],
    ));
    Mounter::new(&fake)
        .with_mountinfo(&mi)
        .mount_cifs(&m)
        .await
        .unwrap();
    fake.verify();
}

// The bind-mount test needs root: `host_bind_mount_with_syscall` in tests/host_tier.rs.

#[test]
fn autofs_locations_follow_the_documented_grammar() {
    // tests/fixtures/autofs-maps.txt (auto.master(5), README.replicated-server).
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/autofs-maps.txt"
    ))
    .unwrap();
    let sample = text.split_once("\n---\n").unwrap().1;
    let weighted = sample
        .lines()
        .find(|l| l.starts_with("<path> host1(5)"))
        .unwrap()
        .strip_prefix("<path> ")
        .unwrap();
    let plain = sample
        .lines()
        .find(|l| l.starts_with("<path> host1,host2,hostn"))
        .unwrap()
        .strip_prefix("<path> ")
        .unwrap();
    let rep = |hosts: &[(&str, Option<u8>)]| {
        NfsMount::new(
            NfsServers::Replicated(
                hosts
                    .iter()
                    .map(|(h, w)| Replica {
                        host: host(h),
                        weight: *w,
                    })
                    .collect(),
            ),
            "/path/path",
            "/mnt/p",
            NfsOptions::new(NfsVersion::V3),
        )
        .unwrap()
    };
    assert_eq!(
        rep(&[("host1", Some(5)), ("host2", Some(6)), ("host3", Some(1))]).autofs_location(),
        weighted
    );
    assert_eq!(
        rep(&[("host1", None), ("host2", None), ("hostn", None)]).autofs_location(),
        plain
    );
    // Direct-map entries are `key [-options] location` with an absolute key, like the sample's
    // `/nfs/data/budgets\ttiger:/usr/local/budgets`.
    let direct = sample
        .lines()
        .find(|l| l.starts_with("/nfs/data/budgets"))
        .unwrap();
    let (key, location) = direct.split_once('\t').unwrap();
    let m = NfsMount::new(
        NfsServers::One(host("tiger")),
        "/usr/local/budgets",
        key,
        NfsOptions::new(NfsVersion::V4_2),
    )
    .unwrap();
    assert_eq!(
        m.autofs_entry(),
        format!("{key} -fstype=nfs,vers=4.2 {location}")
    );
}
