//! The kernel backend on synthetic configfs trees and temporary directories: LIO and nvmet
//! reconciliation (exact groups, attributes and links), and the whole simulator driving the
//! backend through the REST API with a runner that imitates btrfs with plain directories.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use host_storage::{Command, Output, Runner};
use ontap_sim::kernel::configfs::Configfs;
use ontap_sim::kernel::{lio, nvmet, KernelBackend, KernelConfig};
use ontap_sim::{Seed, SimServer};
use reqwest::Method;
use secrecy::SecretString;
use serde_json::json;

/// Every file, directory and link below `root`: `d path`, `f path = content`, `l path -> target`.
fn tree(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map(|rd| rd.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        entries.sort();
        for p in entries {
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.file_type().is_symlink() {
                let t = std::fs::read_link(&p).unwrap();
                let t = t
                    .strip_prefix(root)
                    .unwrap_or(&t)
                    .to_string_lossy()
                    .into_owned();
                out.push(format!("l {rel} -> {t}"));
            } else if m.is_dir() {
                out.push(format!("d {rel}"));
                walk(root, &p, out);
            } else {
                let c = std::fs::read_to_string(&p).unwrap();
                out.push(format!("f {rel} = {}", c.trim_end()));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out
}

const TGT: &str = "iqn.1992-08.com.netapp:sn.0123456789abcdef0123456789abcdef:vs.2";
const INIT: &str = "iqn.1994-05.com.redhat:host1";

fn lio_model(with_second_map: bool, chap: bool) -> lio::LioModel {
    let mut m = lio::LioModel::default();
    for (name, serial) in [("lun-a", "wCVF2]Wt/Bv8"), ("lun-b", "wCVF2]Wt/Bv9")] {
        m.backstores.insert(
            name.into(),
            lio::Backstore {
                name: name.into(),
                file: PathBuf::from(format!("/lab/mnt/vols/v/{name}")),
                size: 1 << 20,
                serial: serial.into(),
            },
        );
    }
    let mut acl = lio::Acl::default();
    acl.luns.insert(0, "lun-a".into());
    if with_second_map {
        acl.luns.insert(7, "lun-b".into());
    }
    if chap {
        acl.chap = Some(lio::AclChap {
            user: "in-user".into(),
            password: SecretString::from("in-secret-123"),
            mutual: Some(("out-user".into(), SecretString::from("out-secret-456"))),
        });
    }
    let mut t = lio::Target {
        iqn: TGT.into(),
        ..Default::default()
    };
    t.portals.insert("127.0.1.3".parse().unwrap());
    t.portals.insert("127.0.1.4".parse().unwrap());
    t.acls.insert(INIT.into(), acl);
    m.targets.insert(TGT.into(), t);
    m
}

#[test]
fn lio_reconcile_on_synthetic_configfs() {
    let dir = tempfile::tempdir().unwrap();
    let cfs = Configfs::synthetic(dir.path());
    // A target the simulator does not own stays untouched.
    cfs.mkdir("target/iscsi/iqn.2003-01.org.linux-iscsi.lab:other/tpgt_1")
        .unwrap();
    // Newer kernels offer vendor_id: it is set when present.
    cfs.write(&format!("{}/lun-a/wwn/vendor_id", lio::HBA), "LIO-ORG")
        .unwrap();
    // Kernels with per-ACL authentication create this attribute with the ACL (-1 = inherit).
    let tpg = format!("target/iscsi/{TGT}/tpgt_1");
    cfs.write(&format!("{tpg}/acls/{INIT}/attrib/authentication"), "-1")
        .unwrap();
    lio::reconcile(&cfs, &lio_model(true, true)).unwrap();
    let want: Vec<String> = [
        "d target".to_string(),
        "d target/core".into(),
        "d target/core/fileio_57".into(),
        "d target/core/fileio_57/lun-a".into(),
        "f target/core/fileio_57/lun-a/control = fd_dev_name=/lab/mnt/vols/v/lun-a,fd_dev_size=1048576".into(),
        "f target/core/fileio_57/lun-a/enable = 1".into(),
        "f target/core/fileio_57/lun-a/udev_path = /lab/mnt/vols/v/lun-a".into(),
        "d target/core/fileio_57/lun-a/wwn".into(),
        "f target/core/fileio_57/lun-a/wwn/vendor_id = NETAPP".into(),
        "f target/core/fileio_57/lun-a/wwn/vpd_unit_serial = wCVF2]Wt/Bv8".into(),
        "d target/core/fileio_57/lun-b".into(),
        "f target/core/fileio_57/lun-b/control = fd_dev_name=/lab/mnt/vols/v/lun-b,fd_dev_size=1048576".into(),
        "f target/core/fileio_57/lun-b/enable = 1".into(),
        "f target/core/fileio_57/lun-b/udev_path = /lab/mnt/vols/v/lun-b".into(),
        "d target/core/fileio_57/lun-b/wwn".into(),
        "f target/core/fileio_57/lun-b/wwn/vpd_unit_serial = wCVF2]Wt/Bv9".into(),
        "d target/iscsi".into(),
        format!("d target/iscsi/{TGT}"),
        format!("d {tpg}"),
        format!("d {tpg}/acls"),
        format!("d {tpg}/acls/{INIT}"),
        format!("d {tpg}/acls/{INIT}/attrib"),
        format!("f {tpg}/acls/{INIT}/attrib/authentication = 1"),
        format!("d {tpg}/acls/{INIT}/auth"),
        format!("f {tpg}/acls/{INIT}/auth/password = in-secret-123"),
        format!("f {tpg}/acls/{INIT}/auth/password_mutual = out-secret-456"),
        format!("f {tpg}/acls/{INIT}/auth/userid = in-user"),
        format!("f {tpg}/acls/{INIT}/auth/userid_mutual = out-user"),
        format!("d {tpg}/acls/{INIT}/lun_0"),
        format!("l {tpg}/acls/{INIT}/lun_0/lun -> {tpg}/lun/lun_0"),
        format!("d {tpg}/acls/{INIT}/lun_7"),
        format!("l {tpg}/acls/{INIT}/lun_7/lun -> {tpg}/lun/lun_1"),
        format!("d {tpg}/attrib"),
        format!("f {tpg}/attrib/authentication = 1"),
        format!("f {tpg}/attrib/generate_node_acls = 0"),
        format!("f {tpg}/enable = 1"),
        format!("d {tpg}/lun"),
        format!("d {tpg}/lun/lun_0"),
        format!("l {tpg}/lun/lun_0/lun-a -> target/core/fileio_57/lun-a"),
        format!("d {tpg}/lun/lun_1"),
        format!("l {tpg}/lun/lun_1/lun-b -> target/core/fileio_57/lun-b"),
        format!("d {tpg}/np"),
        format!("d {tpg}/np/127.0.1.3:3260"),
        format!("d {tpg}/np/127.0.1.4:3260"),
        "d target/iscsi/iqn.2003-01.org.linux-iscsi.lab:other".into(),
        "d target/iscsi/iqn.2003-01.org.linux-iscsi.lab:other/tpgt_1".into(),
    ]
    .into_iter()
    .collect();
    assert_eq!(tree(dir.path()), want);

    // Idempotent.
    lio::reconcile(&cfs, &lio_model(true, true)).unwrap();
    assert_eq!(tree(dir.path()), want);

    // Unmap LUN 7 and drop CHAP: its mapped LUN and TPG LUN go, auth is cleared.
    lio::reconcile(&cfs, &lio_model(false, false)).unwrap();
    let now = tree(dir.path());
    assert!(
        !now.iter()
            .any(|l| l.contains("lun_7") || l.contains("lun_1")),
        "{now:#?}"
    );
    assert!(now.contains(&format!("f {tpg}/acls/{INIT}/auth/password = NULL")));
    assert!(now.contains(&format!("f {tpg}/attrib/authentication = 0")));
    assert!(now.contains(&format!("f {tpg}/acls/{INIT}/attrib/authentication = 0")));
    assert!(now.contains(&format!("l {tpg}/acls/{INIT}/lun_0/lun -> {tpg}/lun/lun_0")));

    // Nothing wanted: the owned target and backstores go, the foreign target stays.
    lio::reconcile(&cfs, &lio::LioModel::default()).unwrap();
    assert_eq!(
        tree(dir.path()),
        vec![
            "d target",
            "d target/core",
            "d target/core/fileio_57",
            "d target/iscsi",
            "d target/iscsi/iqn.2003-01.org.linux-iscsi.lab:other",
            "d target/iscsi/iqn.2003-01.org.linux-iscsi.lab:other/tpgt_1",
        ]
    );
}

const SUB: &str = "nqn.1992-08.com.netapp:sn.0123456789abcdef0123456789abcdef:subsystem.kvm1";
const HOST: &str = "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555";
const NS: &str = "5b1f8a4c-2d3e-4f50-8a6b-7c8d9e0f1a2b";

fn nvmet_model(hosts: &[&str], ns: bool, ports: &[&str]) -> nvmet::NvmetModel {
    let mut sub = nvmet::Subsystem {
        serial: Some("81Jzp3oRNNlmAAAAAAAB".into()),
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        ..Default::default()
    };
    if ns {
        sub.namespaces.insert(
            1,
            nvmet::Namespace {
                file: "/lab/mnt/vols/v/ns1".into(),
                uuid: NS.into(),
            },
        );
    }
    sub.ports = ports.iter().map(|p| p.parse().unwrap()).collect();
    let mut m = nvmet::NvmetModel::default();
    m.subsystems.insert(SUB.into(), sub);
    m
}

#[test]
fn nvmet_reconcile_on_synthetic_configfs() {
    let dir = tempfile::tempdir().unwrap();
    let cfs = Configfs::synthetic(dir.path());
    // Attributes a 6.1 kernel creates with the subsystem.
    for a in ["attr_serial", "attr_model"] {
        cfs.write(&format!("nvmet/subsystems/{SUB}/{a}"), "")
            .unwrap();
    }
    nvmet::reconcile(
        &cfs,
        &nvmet_model(&[HOST], true, &["127.0.1.5", "127.0.1.6"]),
    )
    .unwrap();
    let s = format!("nvmet/subsystems/{SUB}");
    let want: Vec<String> = vec![
        "d nvmet".to_string(),
        "d nvmet/hosts".into(),
        format!("d nvmet/hosts/{HOST}"),
        "d nvmet/ports".into(),
        "d nvmet/ports/1000".into(),
        "f nvmet/ports/1000/addr_adrfam = ipv4".into(),
        "f nvmet/ports/1000/addr_traddr = 127.0.1.5".into(),
        "f nvmet/ports/1000/addr_trsvcid = 4420".into(),
        "f nvmet/ports/1000/addr_trtype = tcp".into(),
        "d nvmet/ports/1000/subsystems".into(),
        format!("l nvmet/ports/1000/subsystems/{SUB} -> {s}"),
        "d nvmet/ports/1001".into(),
        "f nvmet/ports/1001/addr_adrfam = ipv4".into(),
        "f nvmet/ports/1001/addr_traddr = 127.0.1.6".into(),
        "f nvmet/ports/1001/addr_trsvcid = 4420".into(),
        "f nvmet/ports/1001/addr_trtype = tcp".into(),
        "d nvmet/ports/1001/subsystems".into(),
        format!("l nvmet/ports/1001/subsystems/{SUB} -> {s}"),
        "d nvmet/subsystems".into(),
        format!("d {s}"),
        format!("d {s}/allowed_hosts"),
        format!("l {s}/allowed_hosts/{HOST} -> nvmet/hosts/{HOST}"),
        format!("f {s}/attr_allow_any_host = 0"),
        format!("f {s}/attr_model = NetApp ONTAP Controller"),
        format!("f {s}/attr_serial = 81Jzp3oRNNlmAAAAAAAB"),
        format!("d {s}/namespaces"),
        format!("d {s}/namespaces/1"),
        format!("f {s}/namespaces/1/device_nguid = {NS}"),
        format!("f {s}/namespaces/1/device_path = /lab/mnt/vols/v/ns1"),
        format!("f {s}/namespaces/1/device_uuid = {NS}"),
        format!("f {s}/namespaces/1/enable = 1"),
    ];
    assert_eq!(tree(dir.path()), want);
    nvmet::reconcile(
        &cfs,
        &nvmet_model(&[HOST], true, &["127.0.1.5", "127.0.1.6"]),
    )
    .unwrap();
    assert_eq!(tree(dir.path()), want);

    // Host removed, namespace unmapped, one LIF gone.
    nvmet::reconcile(&cfs, &nvmet_model(&[], false, &["127.0.1.6"])).unwrap();
    let now = tree(dir.path());
    assert!(
        !now.iter()
            .any(|l| l.contains(HOST) || l.contains("namespaces/1") || l.contains("ports/1000")),
        "{now:#?}"
    );
    assert!(now.contains(&format!("l nvmet/ports/1001/subsystems/{SUB} -> {s}")));

    nvmet::reconcile(&cfs, &nvmet::NvmetModel::default()).unwrap();
    assert_eq!(
        tree(dir.path()),
        vec![
            "d nvmet",
            "d nvmet/hosts",
            "d nvmet/ports",
            "d nvmet/subsystems"
        ]
    );
}

/// A FlexClone adds a subsystem beside the parent's. The kernel answers readlink on configfs
/// with a path relative to the link, so the parent's links are made relative here as the
/// kernel shows them: reconcile must leave them (a port link unlinked and made again drops
/// the port's live controllers).
#[test]
fn nvmet_flexclone_leaves_the_parents_links_alone_on_synthetic_configfs() {
    const CLONE: &str =
        "nqn.1992-08.com.netapp:sn.0123456789abcdef0123456789abcdef:subsystem.kvm1_clone";
    const CLONE_NS: &str = "0c2d3e4f-5a6b-4c7d-8e9f-a0b1c2d3e4f5";
    let dir = tempfile::tempdir().unwrap();
    let cfs = Configfs::synthetic(dir.path());
    let parent = nvmet_model(&[HOST], true, &["127.0.1.5", "127.0.1.6"]);
    nvmet::reconcile(&cfs, &parent).unwrap();
    let kernel_links = [
        (
            format!("nvmet/ports/1000/subsystems/{SUB}"),
            format!("../../../subsystems/{SUB}"),
        ),
        (
            format!("nvmet/ports/1001/subsystems/{SUB}"),
            format!("../../../subsystems/{SUB}"),
        ),
        (
            format!("nvmet/subsystems/{SUB}/allowed_hosts/{HOST}"),
            format!("../../../hosts/{HOST}"),
        ),
    ];
    for (link, target) in &kernel_links {
        let l = dir.path().join(link);
        std::fs::remove_file(&l).unwrap();
        std::os::unix::fs::symlink(target, &l).unwrap();
    }
    let before = tree(dir.path());

    // Nothing changed: nothing touched.
    nvmet::reconcile(&cfs, &parent).unwrap();
    assert_eq!(tree(dir.path()), before);

    let mut with_clone = parent.clone();
    let mut sub = parent.subsystems[SUB].clone();
    sub.namespaces.insert(
        1,
        nvmet::Namespace {
            file: "/lab/mnt/vols/c/ns1".into(),
            uuid: CLONE_NS.into(),
        },
    );
    with_clone.subsystems.insert(CLONE.into(), sub);
    nvmet::reconcile(&cfs, &with_clone).unwrap();
    let now = tree(dir.path());
    for (link, target) in &kernel_links {
        assert!(now.contains(&format!("l {link} -> {target}")), "{now:#?}");
    }
    let c = format!("nvmet/subsystems/{CLONE}");
    for line in [
        format!("l nvmet/ports/1000/subsystems/{CLONE} -> {c}"),
        format!("l nvmet/ports/1001/subsystems/{CLONE} -> {c}"),
        format!("l {c}/allowed_hosts/{HOST} -> nvmet/hosts/{HOST}"),
        format!("f {c}/namespaces/1/device_path = /lab/mnt/vols/c/ns1"),
        format!("f {c}/namespaces/1/device_uuid = {CLONE_NS}"),
        format!("f {c}/namespaces/1/enable = 1"),
    ] {
        assert!(now.contains(&line), "missing {line}: {now:#?}");
    }
    for line in &before {
        assert!(now.contains(line), "parent's {line} changed: {now:#?}");
    }
}

/// Imitates btrfs, mount and the daemons' tools with plain directories; records calls.
#[derive(Default)]
struct DirRunner {
    calls: Mutex<Vec<String>>,
    fail: Mutex<Option<String>>,
}

fn copy_tree(src: &Path, dst: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dst)?;
    for e in std::fs::read_dir(src)? {
        let e = e?;
        let to = dst.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_tree(&e.path(), &to)?;
        } else {
            std::fs::copy(e.path(), to)?;
        }
    }
    Ok(())
}

#[async_trait::async_trait]
impl Runner for DirRunner {
    async fn run(&self, cmd: &Command) -> host_storage::Result<Output> {
        let line = cmd.to_string();
        self.calls.lock().unwrap().push(line.clone());
        let args: Vec<&str> = cmd.get_args().iter().map(|a| a.expose()).collect();
        let fail = self
            .fail
            .lock()
            .unwrap()
            .as_ref()
            .is_some_and(|f| line.contains(f.as_str()));
        let out = if fail {
            Output::exit(1, "", "simulated failure")
        } else {
            let r = match (cmd.program(), args.as_slice()) {
                ("btrfs", ["subvolume", "create", p]) => std::fs::create_dir(p),
                ("btrfs", ["subvolume", "snapshot", "-r", s, d])
                | ("btrfs", ["subvolume", "snapshot", s, d]) => {
                    copy_tree(Path::new(s), Path::new(d))
                }
                ("btrfs", ["subvolume", "delete", p]) => std::fs::remove_dir_all(p),
                ("cp", ["--reflink=always", "--", s, d]) => std::fs::copy(s, d).map(|_| ()),
                ("mkfs.btrfs" | "mount" | "umount" | "exportfs" | "smbcontrol", _) => Ok(()),
                _ => Err(std::io::Error::other("unscripted")),
            };
            match r {
                Ok(()) => Output::success(""),
                Err(e) => Output::exit(1, "", e.to_string()),
            }
        };
        cmd.check(out)
    }
}

struct Lab {
    env: common::Env,
    runner: Arc<DirRunner>,
    dir: tempfile::TempDir,
}

impl Lab {
    fn root(&self) -> PathBuf {
        self.dir.path().join("state")
    }
    fn cfs(&self) -> PathBuf {
        self.dir.path().join("configfs")
    }
    fn calls(&self) -> Vec<String> {
        std::mem::take(&mut *self.runner.calls.lock().unwrap())
    }
    fn read(&self, p: &str) -> String {
        std::fs::read_to_string(self.cfs().join(p))
            .unwrap_or_else(|e| panic!("{p}: {e}"))
            .trim_end()
            .to_string()
    }
}

async fn lab() -> anyhow::Result<Lab> {
    let dir = tempfile::tempdir()?;
    let runner = Arc::new(DirRunner::default());
    let cfg = KernelConfig::new(dir.path().join("state"))
        .loop_size(1 << 20)
        .exports_file(Some(dir.path().join("etc/exports.d/kvmstor-sim.exports")))
        .smb_include(Some(dir.path().join("etc/samba/kvmstor-sim.conf")))
        .configfs(Configfs::synthetic(dir.path().join("configfs")));
    let backend = Arc::new(KernelBackend::new(cfg, runner.clone()));
    let env = common::start_with(
        SimServer::builder()
            .seed(Seed::lab())
            .backend(backend)
            .job_duration(Duration::ZERO, Duration::from_millis(5)),
    )
    .await?;
    Ok(Lab { env, runner, dir })
}

#[tokio::test]
async fn sim_with_kernel_backend_on_synthetic_configfs() -> anyhow::Result<()> {
    let lab = lab().await?;
    let root = lab.root();
    let r = root.display();
    assert_eq!(
        lab.calls(),
        vec![
            format!("mkfs.btrfs -q -f {r}/btrfs.img"),
            format!("mount -t btrfs -o loop,discard=async {r}/btrfs.img {r}/mnt"),
            // The managed files are written (empty) and loaded once at start.
            "exportfs -ra".to_string(),
            "smbcontrol smbd reload-config".to_string(),
        ]
    );
    let env = &lab.env;
    // An NFS rule on the default policy, then a volume with a junction.
    let pol = env
        .get("/api/protocols/nfs/export-policies?name=default")
        .await?;
    let pid = pol.body["records"][0]["id"].as_u64().unwrap();
    let rule = env
        .post(
            &format!("/api/protocols/nfs/export-policies/{pid}/rules"),
            json!({"clients": [{"match": "127.0.0.0/8"}], "ro_rule": ["sys"], "rw_rule": ["sys"],
                   "superuser": ["sys"], "protocols": ["nfs"]}),
        )
        .await?;
    assert_eq!(rule.status, 201, "{}", rule.body);
    assert_eq!(lab.calls(), Vec::<String>::new(), "no volume exported yet");
    let vol = env
        .create_volume(json!({"name": "vol1", "svm": {"name": "svm1"},
                              "aggregates": [{"name": "aggr1"}], "size": "1G",
                              "nas": {"path": "/vol1"}}))
        .await?;
    assert_eq!(
        lab.calls(),
        vec![
            format!("btrfs subvolume create {r}/mnt/vols/{vol}"),
            format!("mount --bind {r}/mnt/vols/{vol} {r}/export/vol1"),
            "exportfs -ra".to_string(),
        ]
    );
    let exports =
        std::fs::read_to_string(lab.dir.path().join("etc/exports.d/kvmstor-sim.exports"))?;
    assert_eq!(
        exports,
        format!(
            "{}{r}/export 127.0.0.0/8(ro,fsid=0,crossmnt,root_squash,no_subtree_check,insecure)\n\
             {r}/export/vol1 127.0.0.0/8(rw,no_root_squash,anonuid=65534,sec=sys,no_subtree_check,insecure,fsid={vol})\n",
            ontap_sim::kernel::nfs::HEADER
        )
    );
    // A CIFS share on the junction.
    let share = env
        .post(
            "/api/protocols/cifs/shares",
            json!({"svm": {"name": "svm1"}, "name": "data", "path": "/vol1"}),
        )
        .await?;
    assert_eq!(share.status, 201, "{}", share.body);
    assert_eq!(
        lab.calls(),
        vec!["smbcontrol smbd reload-config".to_string()]
    );
    assert_eq!(
        std::fs::read_to_string(lab.dir.path().join("etc/samba/kvmstor-sim.conf"))?,
        format!(
            "{}\n[data]\n   path = {r}/export/vol1\n   read only = no\n   browseable = yes\n",
            ontap_sim::kernel::smb::HEADER
        )
    );

    // iSCSI: LUN file + backstore, igroup ACL, map, CHAP.
    let lun = env
        .post(
            "/api/storage/luns?return_records=true",
            json!({"svm": {"name": "svm1"}, "name": "/vol/vol1/lun1", "os_type": "linux",
                     "space": {"size": "4M"}}),
        )
        .await?;
    assert_eq!(lun.status, 201, "{}", lun.body);
    let lun = lun.body["records"][0].clone();
    let (lun_uuid, serial) = (
        lun["uuid"].as_str().unwrap(),
        lun["serial_number"].as_str().unwrap(),
    );
    let lun_file = root.join(format!("mnt/vols/{vol}/lun1"));
    assert_eq!(std::fs::metadata(&lun_file)?.len(), 4 << 20);
    let bs = format!("{}/{lun_uuid}", lio::HBA);
    assert_eq!(lab.read(&format!("{bs}/wwn/vpd_unit_serial")), serial);
    assert_eq!(
        lab.read(&format!("{bs}/control")),
        format!("fd_dev_name={},fd_dev_size={}", lun_file.display(), 4 << 20)
    );
    // Rename and grow: the file follows (the running backstore keeps its open file).
    std::fs::write(&lun_file, b"block0")?;
    let p = env
        .patch(
            &format!("/api/storage/luns/{lun_uuid}"),
            json!({"name": "/vol/vol1/lun1b", "space": {"size": "8M"}}),
        )
        .await?;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(!lun_file.exists());
    let lun_file = root.join(format!("mnt/vols/{vol}/lun1b"));
    assert_eq!(std::fs::metadata(&lun_file)?.len(), 8 << 20);
    assert_eq!(&std::fs::read(&lun_file)?[..6], b"block0");
    let svc = env
        .get("/api/protocols/san/iscsi/services?fields=target")
        .await?;
    let iqn = svc.body["records"][0]["target"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let tpg = format!("target/iscsi/{iqn}/tpgt_1");
    let cfs = Configfs::synthetic(lab.cfs());
    assert_eq!(
        cfs.list_dirs(&format!("{tpg}/np")),
        vec!["127.0.1.3:3260", "127.0.1.4:3260"]
    );
    let ig = env
        .post(
            "/api/protocols/san/igroups",
            json!({"svm": {"name": "svm1"}, "name": "ig1",
               "os_type": "linux", "protocol": "iscsi", "initiators": [{"name": INIT}]}),
        )
        .await?;
    assert_eq!(ig.status, 201, "{}", ig.body);
    let m = env
        .post("/api/protocols/san/lun-maps", json!({"svm": {"name": "svm1"},
               "lun": {"name": "/vol/vol1/lun1b"}, "igroup": {"name": "ig1"}, "logical_unit_number": 3}))
        .await?;
    assert_eq!(m.status, 201, "{}", m.body);
    assert_eq!(
        cfs.readlink(&format!("{tpg}/acls/{INIT}/lun_3/lun")),
        Some(format!("{tpg}/lun/lun_0"))
    );
    assert_eq!(
        cfs.readlink(&format!("{tpg}/lun/lun_0/{lun_uuid}")),
        Some(bs.clone())
    );
    let cred = env
        .post(
            "/api/protocols/san/iscsi/credentials",
            json!({"svm": {"name": "svm1"}, "initiator": INIT, "authentication_type": "chap",
                     "chap": {"inbound": {"user": "in-user", "password": "in-secret-123"}}}),
        )
        .await?;
    assert_eq!(cred.status, 201, "{}", cred.body);
    assert_eq!(
        lab.read(&format!("{tpg}/acls/{INIT}/auth/userid")),
        "in-user"
    );
    assert_eq!(
        lab.read(&format!("{tpg}/acls/{INIT}/auth/password")),
        "in-secret-123"
    );
    assert_eq!(lab.read(&format!("{tpg}/attrib/authentication")), "1");
    let seen = env.sim.state().to_string() + &format!("{:?}", env.sim.requests());
    assert!(
        !seen.contains("in-secret-123"),
        "password leaked into state or request log"
    );
    // A PATCH renaming the user keeps the password.
    let svm_uuid = env.get("/api/svm/svms?name=svm1").await?.body["records"][0]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let p = env
        .patch(
            &format!("/api/protocols/san/iscsi/credentials/{svm_uuid}/{INIT}"),
            json!({"chap": {"inbound": {"user": "renamed"}}}),
        )
        .await?;
    assert_eq!(p.status, 200, "{}", p.body);
    assert_eq!(
        lab.read(&format!("{tpg}/acls/{INIT}/auth/userid")),
        "renamed"
    );
    assert_eq!(
        lab.read(&format!("{tpg}/acls/{INIT}/auth/password")),
        "in-secret-123"
    );

    // NVMe: subsystem, namespace, map.
    let sub = env
        .post("/api/protocols/nvme/subsystems?return_records=true",
              json!({"svm": {"name": "svm1"}, "name": "kvm1", "os_type": "linux", "hosts": [{"nqn": HOST}]}))
        .await?;
    assert_eq!(sub.status, 201, "{}", sub.body);
    let nqn = sub.body["records"][0]["target_nqn"]
        .as_str()
        .unwrap()
        .to_string();
    let ns = env
        .post(
            "/api/storage/namespaces?return_records=true",
            json!({"svm": {"name": "svm1"}, "name": "/vol/vol1/ns1", "os_type": "linux",
                     "space": {"size": "2M"}}),
        )
        .await?;
    assert_eq!(ns.status, 201, "{}", ns.body);
    let ns_uuid = ns.body["records"][0]["uuid"].as_str().unwrap().to_string();
    let nm = env
        .post("/api/protocols/nvme/subsystem-maps",
              json!({"svm": {"name": "svm1"}, "subsystem": {"name": "kvm1"}, "namespace": {"name": "/vol/vol1/ns1"}}))
        .await?;
    assert_eq!(nm.status, 201, "{}", nm.body);
    let s = format!("nvmet/subsystems/{nqn}");
    assert_eq!(
        lab.read(&format!("{s}/namespaces/1/device_path")),
        root.join(format!("mnt/vols/{vol}/ns1"))
            .display()
            .to_string()
    );
    assert_eq!(lab.read(&format!("{s}/namespaces/1/device_uuid")), ns_uuid);
    assert_eq!(lab.read(&format!("{s}/namespaces/1/enable")), "1");
    assert_eq!(lab.read(&format!("{s}/attr_allow_any_host")), "0");
    assert_eq!(
        cfs.readlink(&format!("{s}/allowed_hosts/{HOST}")),
        Some(format!("nvmet/hosts/{HOST}"))
    );
    assert_eq!(lab.read("nvmet/ports/1000/addr_traddr"), "127.0.1.5");
    assert_eq!(lab.read("nvmet/ports/1001/addr_traddr"), "127.0.1.6");
    assert_eq!(
        cfs.readlink(&format!("nvmet/ports/1001/subsystems/{nqn}")),
        Some(s.clone())
    );

    // Undo everything: the trees are clean again.
    let nm_del = env
        .delete(&format!(
            "/api/protocols/nvme/subsystem-maps/{}/{ns_uuid}",
            sub.body["records"][0]["uuid"].as_str().unwrap()
        ))
        .await?;
    assert_eq!(nm_del.status, 200, "{}", nm_del.body);
    assert!(!cfs.exists(&format!("{s}/namespaces/1")));
    for path in [
        format!("/api/storage/namespaces/{ns_uuid}"),
        format!(
            "/api/protocols/nvme/subsystems/{}?allow_delete_with_hosts=true",
            sub.body["records"][0]["uuid"].as_str().unwrap()
        ),
        format!("/api/protocols/san/iscsi/credentials/{svm_uuid}/{INIT}"),
        format!(
            "/api/protocols/san/lun-maps/{lun_uuid}/{}",
            ig_uuid(env).await?
        ),
        format!("/api/storage/luns/{lun_uuid}"),
        format!("/api/protocols/cifs/shares/{svm_uuid}/data"),
    ] {
        let d = env.delete(&path).await?;
        assert_eq!(d.status, 200, "{path}: {}", d.body);
    }
    assert!(!lun_file.exists());
    assert!(!root.join(format!("mnt/vols/{vol}/ns1")).exists());
    let t = tree(&lab.cfs());
    assert!(
        !t.iter().any(|l| l.contains(lun_uuid)
            || l.contains(&nqn)
            || l.contains("lun_3")
            || l.contains(HOST)),
        "{t:#?}"
    );
    assert!(
        t.contains(&format!("d {tpg}/acls/{INIT}")),
        "the igroup still holds the initiator"
    );
    lab.calls();
    let (_, job) = env
        .run_job(Method::DELETE, &format!("/api/storage/volumes/{vol}"), None)
        .await?;
    assert_eq!(job["state"], "success", "{job}");
    // The export is withdrawn before its junction is unmounted: knfsd holds an exported
    // mount busy.
    assert_eq!(
        lab.calls(),
        vec![
            "exportfs -ra".to_string(),
            format!("umount {r}/export/vol1"),
            format!("btrfs subvolume delete {r}/mnt/vols/{vol}"),
        ]
    );
    assert!(!root.join(format!("mnt/vols/{vol}")).exists());
    Ok(())
}

async fn ig_uuid(env: &common::Env) -> anyhow::Result<String> {
    Ok(env.find("/api/protocols/san/igroups", "ig1").await?["uuid"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

#[tokio::test]
async fn failed_step_undoes_the_volume_on_synthetic_configfs() -> anyhow::Result<()> {
    let lab = lab().await?;
    let r = lab.root();
    let r = r.display();
    lab.calls();
    *lab.runner.fail.lock().unwrap() = Some("mount --bind".into());
    let (resp, job) = lab
        .env
        .run_job(
            Method::POST,
            "/api/storage/volumes",
            Some(
                json!({"name": "bad", "svm": {"name": "svm1"}, "aggregates": [{"name": "aggr1"}],
                        "size": "1G", "nas": {"path": "/bad"}}),
            ),
        )
        .await?;
    assert_eq!(resp.status, 202);
    assert_eq!(job["state"], "failure", "{job}");
    assert_eq!(job["code"], 13001, "{job}");
    let msg = job["message"].as_str().unwrap_or_default();
    assert!(
        msg.starts_with("kernel backend: mount junction failed: command `mount --bind "),
        "{msg}"
    );
    let calls = lab.calls();
    assert_eq!(calls.len(), 3, "{calls:#?}");
    let vol_dir = calls[0]
        .strip_prefix("btrfs subvolume create ")
        .unwrap()
        .to_string();
    assert!(vol_dir.starts_with(&format!("{r}/mnt/vols/")));
    assert_eq!(calls[1], format!("mount --bind {vol_dir} {r}/export/bad"));
    assert_eq!(calls[2], format!("btrfs subvolume delete {vol_dir}"));
    assert!(!Path::new(&vol_dir).exists());
    let list = lab.env.get("/api/storage/volumes?name=bad").await?;
    assert_eq!(list.body["num_records"], 0);

    // An unusable name is refused before anything runs.
    *lab.runner.fail.lock().unwrap() = None;
    let share = lab
        .env
        .post(
            "/api/protocols/cifs/shares",
            json!({"svm": {"name": "svm1"}, "name": "we[ird", "path": "/"}),
        )
        .await?;
    assert_eq!(share.status, 500, "{}", share.body);
    assert_eq!(share.body["error"]["code"], "13001");
    assert_eq!(
        share.body["error"]["message"],
        "kernel backend: share name \"we[ird\" cannot be used on the host: only letters, digits, \"_\", \".\", \"$\", \"-\", \"@\" and \"\\\""
    );
    let listed = lab
        .env
        .get("/api/protocols/cifs/shares?name=we[ird")
        .await?;
    assert_eq!(listed.body["num_records"], 0);
    assert_eq!(
        std::fs::read_to_string(lab.dir.path().join("etc/samba/kvmstor-sim.conf"))?,
        ontap_sim::kernel::smb::HEADER
    );
    Ok(())
}

#[tokio::test]
async fn flexclone_lun_maps_as_lio_lun_on_its_snapshot_file_on_synthetic_configfs(
) -> anyhow::Result<()> {
    let lab = lab().await?;
    let root = lab.root();
    let env = &lab.env;
    let vol = env
        .create_volume(json!({"name": "base", "svm": {"name": "svm1"},
                              "aggregates": [{"name": "aggr1"}], "size": "1G"}))
        .await?;
    let lun = env
        .post(
            "/api/storage/luns?return_records=true",
            json!({"svm": {"name": "svm1"}, "name": "/vol/base/lun0", "os_type": "linux",
                     "space": {"size": "4M"}}),
        )
        .await?;
    assert_eq!(lun.status, 201, "{}", lun.body);
    let parent_file = root.join(format!("mnt/vols/{vol}/lun0"));
    std::fs::write(&parent_file, b"parent data")?;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&parent_file)?
        .set_len(4 << 20)?;
    lab.calls();

    let clone = env
        .create_volume(json!({"name": "base_clone", "svm": {"name": "svm1"},
                              "clone": {"parent_volume": {"name": "base"}}}))
        .await?;
    let r = root.display();
    // The snapshot is all the backend does: the LUN file comes with it.
    assert_eq!(
        lab.calls(),
        vec![format!(
            "btrfs subvolume snapshot {r}/mnt/vols/{vol} {r}/mnt/vols/{clone}"
        )]
    );
    let cloned = env
        .get("/api/storage/luns?location.volume.name=base_clone&fields=serial_number")
        .await?;
    assert_eq!(cloned.body["num_records"], 1, "{}", cloned.body);
    let rec = &cloned.body["records"][0];
    assert_eq!(rec["name"], "/vol/base_clone/lun0");
    let (uuid, serial) = (
        rec["uuid"].as_str().unwrap().to_string(),
        rec["serial_number"].as_str().unwrap().to_string(),
    );
    assert_ne!(
        serial,
        lun.body["records"][0]["serial_number"].as_str().unwrap()
    );
    let clone_file = root.join(format!("mnt/vols/{clone}/lun0"));
    assert_eq!(std::fs::metadata(&clone_file)?.len(), 4 << 20);
    assert_eq!(&std::fs::read(&clone_file)?[..11], b"parent data");
    // Its backstore is the clone's file, with the clone's serial number.
    let bs = format!("{}/{uuid}", lio::HBA);
    assert_eq!(lab.read(&format!("{bs}/wwn/vpd_unit_serial")), serial);
    assert_eq!(
        lab.read(&format!("{bs}/control")),
        format!(
            "fd_dev_name={},fd_dev_size={}",
            clone_file.display(),
            4 << 20
        )
    );

    // Mapped, it is a LUN of the target like any other.
    let ig = env
        .post(
            "/api/protocols/san/igroups",
            json!({"svm": {"name": "svm1"}, "name": "ig1",
               "os_type": "linux", "protocol": "iscsi", "initiators": [{"name": INIT}]}),
        )
        .await?;
    assert_eq!(ig.status, 201, "{}", ig.body);
    let m = env
        .post(
            "/api/protocols/san/lun-maps",
            json!({"svm": {"name": "svm1"},
               "lun": {"name": "/vol/base_clone/lun0"}, "igroup": {"name": "ig1"},
               "logical_unit_number": 5}),
        )
        .await?;
    assert_eq!(m.status, 201, "{}", m.body);
    let svc = env
        .get("/api/protocols/san/iscsi/services?fields=target")
        .await?;
    let iqn = svc.body["records"][0]["target"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let tpg = format!("target/iscsi/{iqn}/tpgt_1");
    let cfs = Configfs::synthetic(lab.cfs());
    assert_eq!(
        cfs.readlink(&format!("{tpg}/acls/{INIT}/lun_5/lun")),
        Some(format!("{tpg}/lun/lun_0"))
    );
    assert_eq!(cfs.readlink(&format!("{tpg}/lun/lun_0/{uuid}")), Some(bs));
    // The parent's file is untouched.
    assert_eq!(&std::fs::read(&parent_file)?[..11], b"parent data");
    Ok(())
}
