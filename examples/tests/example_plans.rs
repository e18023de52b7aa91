//! The workflow examples' `plan` (and the operations example) against their embedded
//! simulator: the whole output is compared with `tests/fixtures/*.txt`. The one value that
//! changes per run, the SVM UUID inside the iSCSI target name, is written as `<svm-uuid>`.
//! The host is a fake root (`--host-root`) with an iSCSI initiator name, an NVMe host NQN
//! and two FC HBA ports, so the plans do not depend on this machine.

use std::path::Path;
use std::process::Command;

fn fake_host_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let write = |rel: &str, text: &str| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    };
    write(
        "etc/iscsi/initiatorname.iscsi",
        "InitiatorName=iqn.1994-05.com.redhat:kvm1\n",
    );
    write(
        "etc/nvme/hostnqn",
        "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555\n",
    );
    write("etc/nvme/hostid", "11111111-2222-3333-4444-555555555555\n");
    for h in [3, 4] {
        let d = format!("sys/class/fc_host/host{h}");
        write(
            &format!("{d}/port_name"),
            &format!("0x10000090fa00000{h}\n"),
        );
        write(
            &format!("{d}/node_name"),
            &format!("0x20000090fa00000{h}\n"),
        );
        write(&format!("{d}/port_state"), "Online\n");
    }
    dir
}

/// Runs an example with no ONTAP_URL (embedded simulator); returns its stdout.
fn run(bin: &str, args: &[&str], root: &Path) -> String {
    let out = Command::new(bin)
        .args(args)
        .args(["--host", "kvm1", "--host-root"])
        .arg(root)
        .env_remove("ONTAP_URL")
        .env("SMB_PASSWORD", "example-pass-1")
        .output()
        .expect("run the example");
    assert!(
        out.status.success(),
        "{bin} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    normalise(&String::from_utf8(out.stdout).expect("utf-8"))
}

/// `sn.<32 hex>:vs.N` (the SVM UUID in the iSCSI target name) becomes `sn.<svm-uuid>:vs.N`.
fn normalise(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(":sn.") {
        let (head, tail) = rest.split_at(i + 4);
        out.push_str(head);
        let hex = tail.bytes().take_while(u8::is_ascii_hexdigit).count();
        if hex == 32 {
            out.push_str("<svm-uuid>");
            rest = &tail[32..];
        } else {
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn check(bin: &str, args: &[&str], name: &str) {
    let root = fake_host_root();
    let got = run(bin, args, root.path());
    let want = fixture(name);
    assert!(got == want, "{name} differs; got:\n{got}");
}

#[test]
fn nfs_datastore_plan() {
    check(
        env!("CARGO_BIN_EXE_nfs_datastore"),
        &["plan", "vmstore", "--size", "100G"],
        "nfs_datastore.plan.txt",
    );
}

#[test]
fn smb_datastore_plan() {
    check(
        env!("CARGO_BIN_EXE_smb_datastore"),
        &[
            "plan",
            "vmsmb",
            "--smb-user",
            "svc_kvm",
            "--smb-domain",
            "CORP",
        ],
        "smb_datastore.plan.txt",
    );
    // The account's password stays out of the plan (it shows as <secret smb/vmsmb>).
    assert!(!fixture("smb_datastore.plan.txt").contains("example-pass-1"));
}

#[test]
fn block_datastore_plan_iscsi_ocfs2() {
    check(
        env!("CARGO_BIN_EXE_block_datastore"),
        &["plan", "vmblock", "--protocol", "iscsi", "--fs", "ocfs2"],
        "block_datastore.iscsi-ocfs2.plan.txt",
    );
}

#[test]
fn block_datastore_plan_nvme_ocfs2() {
    check(
        env!("CARGO_BIN_EXE_block_datastore"),
        &["plan", "vmns", "--protocol", "nvme"],
        "block_datastore.nvme-ocfs2.plan.txt",
    );
}

/// FC: plan only, here and in the lab (no FC fabric to attach over).
#[test]
fn block_datastore_plan_fc_gfs2() {
    check(
        env!("CARGO_BIN_EXE_block_datastore"),
        &[
            "plan",
            "vmfc",
            "--protocol",
            "fc",
            "--fs",
            "gfs2",
            "--size",
            "1T",
        ],
        "block_datastore.fc-gfs2.plan.txt",
    );
}

#[test]
fn datastore_ops_each_operation() {
    let bin = env!("CARGO_BIN_EXE_datastore_ops");
    let root = fake_host_root();
    let cases: [(&[&str], &str); 6] = [
        (
            &["snapshot", "before-upgrade"],
            "snapshot before-upgrade of svm1:vmstore\n",
        ),
        (
            &["lock", "nightly", "--until", "2027-01-01T00:00:00Z"],
            "snapshot nightly of svm1:vmstore locked until 2027-01-01T00:00:00Z\n",
        ),
        (
            &["restore", "nightly", "vm1.qcow2"],
            "vm1.qcow2 restored from snapshot nightly\n",
        ),
        (
            &["restore", "nightly", "vm1.qcow2", "--as", "vm1-old.qcow2"],
            "vm1.qcow2 of snapshot nightly restored as vm1-old.qcow2\n",
        ),
        (
            &["clone-file", "templates/debian12.qcow2", "vm7.qcow2"],
            "templates/debian12.qcow2 cloned to vm7.qcow2 in svm1:vmstore\n",
        ),
        (
            &["flexclone", "vmstore_test", "--snapshot", "nightly"],
            "FlexClone vmstore_test of svm1:vmstore from nightly, junction /vmstore_test\n",
        ),
    ];
    for (args, want) in cases {
        assert_eq!(run(bin, args, root.path()), want, "{args:?}");
    }
    // `list`: the snapshot the embedded simulator starts with, and its creation time.
    let list = run(bin, &["list"], root.path());
    let (name, time) = list.trim_end().split_once("  ").expect("name  time");
    assert_eq!(name, "nightly");
    assert_eq!(time.len(), "2026-11-26T06:46:35+00:00".len(), "{list}");
    assert_eq!(list.lines().count(), 1, "{list}");
}

#[test]
fn a_wrong_snapshot_is_an_error_with_exit_code_1() {
    let out = Command::new(env!("CARGO_BIN_EXE_datastore_ops"))
        .args(["restore", "no-such-snap", "vm1.qcow2"])
        .env_remove("ONTAP_URL")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: restore vm1.qcow2 from snapshot no-such-snap of svm1:vmstore failed: \
         ONTAP get snapshot no-such-snap: the answer has no record\n"
    );
}

#[test]
fn normalise_replaces_only_svm_uuids() {
    assert_eq!(
        normalise("iqn.1992-08.com.netapp:sn.4f96b743d7f145869425019e37f478c5:vs.3 x:sn.12"),
        "iqn.1992-08.com.netapp:sn.<svm-uuid>:vs.3 x:sn.12"
    );
}
