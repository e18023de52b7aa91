//! Steps on a scratch host root with a synthetic sysfs and a scripted runner: the safety
//! refusals, idempotence and undo of each step.

use std::path::{Path, PathBuf};

use cluster_fs::error::{SignatureKind, Step};
use cluster_fs::gfs2::{CorosyncConf, CorosyncNode, Gfs2Format};
use cluster_fs::host::WipeData;
use cluster_fs::ocfs2::{
    ClusterConf, FsckMode, HeartbeatMode, O2cbDefaults, Ocfs2Cluster, Ocfs2Format, Ocfs2Mode,
    Ocfs2Node, Region,
};
use cluster_fs::{
    ClusterHost, ClusterMount, ClusterName, Error, FsKind, Identity, Label, LockTable, NodeName,
    TargetDevice, Undo,
};
use host_storage::files::{EntryId, HostRoot};
use host_storage::{Change, Expect, FakeRunner};

const W: &str = "3600a0980774f6a34663f57396c4f6b37";
const DEV: &str = "/nonexistent-dev/dm-3";

struct Host {
    dir: tempfile::TempDir,
    runner: FakeRunner,
}

impl Host {
    /// A root with dm-3 = mpath-W in sysfs, an empty mountinfo and /etc.
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = HostRoot::new(dir.path());
        std::fs::create_dir_all(root.path("/sys/block/dm-3/dm")).unwrap();
        std::fs::write(root.path("/sys/block/dm-3/dm/uuid"), format!("mpath-{W}\n")).unwrap();
        std::fs::create_dir_all(root.path("/proc/self")).unwrap();
        std::fs::write(
            root.path("/proc/self/mountinfo"),
            "27 1 254:0 / / rw - ext4 /dev/vda rw\n",
        )
        .unwrap();
        std::fs::create_dir_all(root.path("/etc")).unwrap();
        Host {
            dir,
            runner: FakeRunner::new(),
        }
    }

    fn root(&self) -> HostRoot {
        HostRoot::new(self.dir.path())
    }

    fn path(&self, p: &str) -> PathBuf {
        self.root().path(p)
    }

    fn node(&self) -> ClusterHost<&FakeRunner> {
        ClusterHost::new(&self.runner).with_root(self.root())
    }

    fn o2cb_arg(&self) -> String {
        format!(
            "--config-file={}",
            self.path("/etc/ocfs2/cluster.conf").display()
        )
    }

    fn expect(&self, e: Expect) {
        self.runner.expect(e);
    }
}

fn lun() -> TargetDevice {
    TargetDevice::new(DEV, Identity::wwid(W).unwrap()).unwrap()
}

fn cl() -> ClusterName {
    ClusterName::parse("kvmcl").unwrap()
}

fn ocfs2_format() -> Ocfs2Format {
    Ocfs2Format::new(lun(), Label::parse("vmstore").unwrap(), cl(), 2).unwrap()
}

fn blkid() -> Expect {
    Expect::new("blkid", ["-p", "-o", "export", DEV])
}

fn two_node_conf() -> ClusterConf {
    let mut conf = ClusterConf::default();
    assert_eq!(
        conf.add_cluster(Ocfs2Cluster::new(cl(), HeartbeatMode::Local))
            .unwrap(),
        Change::Changed
    );
    for (n, ip) in [(0u8, "10.0.0.11"), (1, "10.0.0.12")] {
        let name = NodeName::parse(&format!("kvm{}", n + 1)).unwrap();
        let node = Ocfs2Node::new(cl(), name, n, ip.parse().unwrap()).unwrap();
        assert_eq!(conf.add_node(node).unwrap(), Change::Changed);
    }
    conf
}

#[tokio::test]
async fn format_refuses_a_device_with_a_file_system() {
    let h = Host::new();
    h.expect(
        blkid().stdout("DEVNAME=/dev/dm-3\nLABEL=data\nUUID=1\nTYPE=ext4\nUSAGE=filesystem\n"),
    );
    let err = h.node().format_ocfs2(&ocfs2_format()).await.unwrap_err();
    match &err {
        Error::HasSignature {
            device,
            kind,
            found,
            label,
        } => {
            assert_eq!(device, Path::new(DEV));
            assert_eq!(*kind, SignatureKind::FileSystem);
            assert_eq!(found, "ext4");
            assert_eq!(label.as_deref(), Some("data"));
        }
        e => panic!("unexpected {e:?}"),
    }
    assert!(err.is_refusal());
    assert_eq!(
        err.to_string(),
        "refusing to format /nonexistent-dev/dm-3: it carries a file-system signature \"ext4\" (overwrite not asked)"
    );
    // No mkfs was run: the script ended at blkid.
    h.runner.verify();
    assert_eq!(
        h.runner.calls(),
        vec!["blkid -p -o export /nonexistent-dev/dm-3"]
    );
}

#[tokio::test]
async fn format_refuses_a_partition_table_and_ambivalent_probes() {
    let h = Host::new();
    h.expect(blkid().stdout("DEVNAME=/dev/dm-3\nPTTYPE=gpt\n"));
    let err = h.node().format_ocfs2(&ocfs2_format()).await.unwrap_err();
    assert!(
        matches!(err, Error::HasSignature { kind: SignatureKind::PartitionTable, ref found, .. } if found == "gpt")
    );
    h.expect(blkid().exit(8, "", ""));
    let err = h.node().format_ocfs2(&ocfs2_format()).await.unwrap_err();
    assert!(matches!(err, Error::HasSignature { ref found, .. } if found == "ambivalent"));
    h.runner.verify();
}

#[tokio::test]
async fn format_checks_identity_before_anything_runs() {
    let h = Host::new();
    let wrong = TargetDevice::new(
        DEV,
        Identity::wwid("3600a0980774f6a34663f57396c4f6b99").unwrap(),
    )
    .unwrap();
    let f = Ocfs2Format::new(wrong, Label::parse("vmstore").unwrap(), cl(), 2)
        .unwrap()
        .overwrite(true);
    let err = h.node().format_ocfs2(&f).await.unwrap_err();
    assert!(matches!(err, Error::IdentityMismatch { .. }), "{err:?}");
    // Not even blkid ran.
    assert!(h.runner.calls().is_empty());
    // A block device path with the image-file bypass is refused too.
    let bypass = TargetDevice::image_file(DEV).unwrap();
    let f = Ocfs2Format::new(bypass, Label::parse("vmstore").unwrap(), cl(), 2).unwrap();
    assert!(matches!(
        h.node().format_ocfs2(&f).await.unwrap_err(),
        Error::NotAnImageFile { .. }
    ));
    assert!(h.runner.calls().is_empty());
}

#[tokio::test]
async fn format_blank_device_then_retry_is_unchanged() {
    let h = Host::new();
    h.expect(blkid().exit(2, "", ""));
    h.expect(Expect::new(
        "mkfs.ocfs2",
        [
            "-L",
            "vmstore",
            "-N",
            "2",
            "-T",
            "vmstore",
            "--fs-features=sparse,unwritten,inline-data,refcount,xattr,indexed-dirs,metaecc",
            "--cluster-stack=o2cb",
            "--cluster-name=kvmcl",
            DEV,
        ],
    ));
    h.expect(
        blkid().stdout("TYPE=ocfs2\nLABEL=vmstore\nUUID=329e6070-f06b-425e-afc1-45816b197431\n"),
    );
    let f = h.node().format_ocfs2(&ocfs2_format()).await.unwrap();
    assert_eq!(f.change, Change::Changed);
    assert_eq!(f.kind, FsKind::Ocfs2);
    assert_eq!(f.label, "vmstore");
    assert_eq!(
        f.uuid.as_deref(),
        Some("329e6070-f06b-425e-afc1-45816b197431")
    );
    // A retry finds its own file system and leaves it alone, even with overwrite.
    h.expect(
        blkid().stdout("TYPE=ocfs2\nLABEL=vmstore\nUUID=329e6070-f06b-425e-afc1-45816b197431\n"),
    );
    let again = h
        .node()
        .format_ocfs2(&ocfs2_format().overwrite(true))
        .await
        .unwrap();
    assert_eq!(again.change, Change::Unchanged);
    // Undo keeps the data; only an explicit wipe erases it.
    assert_eq!(
        h.node().undo(&Undo::from(f.clone())).await.unwrap(),
        Change::Unchanged
    );
    assert_eq!(
        h.node().undo_format(&f, WipeData::No).await.unwrap(),
        Change::Unchanged
    );
    assert_eq!(
        h.node().undo_format(&again, WipeData::Yes).await.unwrap(),
        Change::Unchanged
    );
    h.expect(blkid().stdout("TYPE=ocfs2\nLABEL=vmstore\n"));
    h.expect(Expect::new("wipefs", ["-a", DEV]));
    assert_eq!(
        h.node().undo_format(&f, WipeData::Yes).await.unwrap(),
        Change::Changed
    );
    h.runner.verify();
}

#[tokio::test]
async fn overwrite_passes_force_and_local_mode() {
    let h = Host::new();
    let f = Ocfs2Format::with_mode(lun(), Label::parse("scratch").unwrap(), Ocfs2Mode::Local, 1)
        .unwrap()
        .node_slots(2)
        .unwrap()
        .block_size(4096)
        .unwrap()
        .cluster_size(1 << 20)
        .unwrap()
        .journal_mib(64)
        .unwrap()
        .features(["sparse", "unwritten"])
        .unwrap()
        .overwrite(true);
    h.expect(blkid().stdout("TYPE=xfs\n"));
    h.expect(Expect::new(
        "mkfs.ocfs2",
        [
            "-L",
            "scratch",
            "-N",
            "2",
            "-T",
            "vmstore",
            "-b",
            "4096",
            "-C",
            "1M",
            "-J",
            "size=64M",
            "--fs-features=sparse,unwritten",
            "-M",
            "local",
            "-F",
            DEV,
        ],
    ));
    h.expect(blkid().stdout("TYPE=ocfs2\nLABEL=scratch\n"));
    assert_eq!(
        h.node().format_ocfs2(&f).await.unwrap().change,
        Change::Changed
    );
    h.runner.verify();
}

#[test]
fn slot_and_size_limits() {
    let err = ocfs2_format().node_slots(1).unwrap_err();
    match &err {
        Error::TooFewSlots {
            label,
            slots,
            hosts,
        } => {
            assert_eq!((label.as_str(), *slots, *hosts), ("vmstore", 1, 2));
        }
        e => panic!("unexpected {e:?}"),
    }
    assert!(err.is_refusal());
    assert!(ocfs2_format().node_slots(256).is_err());
    assert!(ocfs2_format().block_size(8192).is_err());
    assert!(ocfs2_format().cluster_size(3000).is_err());
    assert!(ocfs2_format().cluster_size(2 << 20).is_err());
    assert!(ocfs2_format().features(["Bad"]).is_err());
    assert!(Ocfs2Format::new(lun(), Label::parse("x").unwrap(), cl(), 0).is_err());
    let table = LockTable::parse("kvmcl:vmstore").unwrap();
    match Gfs2Format::new(lun(), table.clone(), 3)
        .unwrap()
        .journals(2)
        .unwrap_err()
    {
        Error::TooFewJournals {
            lock_table,
            journals,
            hosts,
        } => {
            assert_eq!(
                (lock_table.as_str(), journals, hosts),
                ("kvmcl:vmstore", 2, 3)
            );
        }
        e => panic!("unexpected {e:?}"),
    }
    assert!(Gfs2Format::new(lun(), table, 0).is_err());
}

#[tokio::test]
async fn gfs2_format_lock_table_and_journals() {
    let h = Host::new();
    let table = LockTable::parse("kvmcl:vmstore").unwrap();
    let f = Gfs2Format::new(lun(), table.clone(), 2)
        .unwrap()
        .journals(3)
        .unwrap();
    h.expect(blkid().exit(2, "", ""));
    h.expect(Expect::new(
        "mkfs.gfs2",
        [
            "-O",
            "-p",
            "lock_dlm",
            "-t",
            "kvmcl:vmstore",
            "-j",
            "3",
            DEV,
        ],
    ));
    h.expect(
        blkid()
            .stdout("TYPE=gfs2\nLABEL=kvmcl:vmstore\nUUID=4e6eca39-0362-44bd-8afb-6575294e3906\n"),
    );
    let done = h.node().format_gfs2(&f).await.unwrap();
    assert_eq!(
        (done.kind, done.change, done.label.as_str()),
        (FsKind::Gfs2, Change::Changed, "kvmcl:vmstore")
    );

    // Lock table change and its undo.
    let list = |t: &str| {
        format!("File system volume name: {t}\nFile system UUID: 4e6eca39-0362-44bd-8afb-6575294e3906\nBlock size: 4096\nLock protocol: lock_dlm\nLock table: {t}\n")
    };
    let new = LockTable::parse("kvmcl:vm2").unwrap();
    h.expect(Expect::new("tunegfs2", ["-l", DEV]).stdout(list("kvmcl:vmstore")));
    h.expect(Expect::new("tunegfs2", ["-o", "locktable=kvmcl:vm2", DEV]));
    let r = h.node().set_gfs2_lock_table(&lun(), &new).await.unwrap();
    assert_eq!(
        (r.change, r.previous.as_str()),
        (Change::Changed, "kvmcl:vmstore")
    );
    h.expect(Expect::new("tunegfs2", ["-l", DEV]).stdout(list("kvmcl:vm2")));
    h.expect(Expect::new(
        "tunegfs2",
        ["-o", "locktable=kvmcl:vmstore", DEV],
    ));
    assert_eq!(h.node().undo(&r.into()).await.unwrap(), Change::Changed);

    // Journals for a third and fourth host.
    let mnt = Path::new("/var/lib/vmstore");
    assert_eq!(
        h.node().add_gfs2_journals(mnt, 3, 3).await.unwrap(),
        Change::Unchanged
    );
    h.expect(Expect::new("gfs2_jadd", ["-j", "1", "/var/lib/vmstore"]));
    assert_eq!(
        h.node().add_gfs2_journals(mnt, 3, 4).await.unwrap(),
        Change::Changed
    );

    h.expect(Expect::new("fsck.gfs2", ["-n", DEV]).exit(4, "errors", ""));
    let rep = h
        .node()
        .fsck_gfs2(&lun(), FsckMode::CheckOnly)
        .await
        .unwrap();
    assert_eq!(
        (rep.clean, rep.exit_code, rep.change),
        (false, 4, Change::Unchanged)
    );
    h.runner.verify();
}

const STATS: &str = "\tLabel: vmstore\n\tUUID: 329E6070F06B425EAFC145816B197431\n\tMax Node Slots: 4\n\tBlock Size Bits: 12   Cluster Size Bits: 20\n\tCluster stack: o2cb\n\tCluster name: kvmcl\n";

fn stats(label: &str, uuid: &str, slots: u16) -> String {
    STATS
        .replace("Label: vmstore", &format!("Label: {label}"))
        .replace("329E6070F06B425EAFC145816B197431", uuid)
        .replace("Slots: 4", &format!("Slots: {slots}"))
}

fn debugfs() -> Expect {
    Expect::new("debugfs.ocfs2", ["-R", "stats", DEV])
}

#[tokio::test]
async fn cloned_volume_gets_a_new_uuid_once() {
    let h = Host::new();
    let parent = Region::parse("329E6070F06B425EAFC145816B197431").unwrap();
    h.expect(debugfs().stdout(stats("vmstore", parent.as_str(), 4)));
    h.expect(Expect::new("tunefs.ocfs2", ["--cloned-volume", "-y", DEV]));
    h.expect(debugfs().stdout(stats(
        "vmstore-cloned",
        "54380809519F4F8CBE54D06B427E490E",
        4,
    )));
    let r = h.node().reuuid_cloned_ocfs2(&lun(), &parent).await.unwrap();
    assert_eq!(r.change, Change::Changed);
    assert_eq!(r.uuid.as_str(), "54380809519F4F8CBE54D06B427E490E");
    assert_eq!(r.label, "vmstore-cloned");
    // Retried: the UUID already differs from the parent's.
    h.expect(debugfs().stdout(stats(
        "vmstore-cloned",
        "54380809519F4F8CBE54D06B427E490E",
        4,
    )));
    h.expect(debugfs().stdout(stats(
        "vmstore-cloned",
        "54380809519F4F8CBE54D06B427E490E",
        4,
    )));
    assert_eq!(
        h.node()
            .reuuid_cloned_ocfs2(&lun(), &parent)
            .await
            .unwrap()
            .change,
        Change::Unchanged
    );
    h.runner.verify();
}

#[tokio::test]
async fn slots_grow_never_shrink() {
    let h = Host::new();
    let u = "329E6070F06B425EAFC145816B197431";
    assert!(matches!(
        h.node().set_ocfs2_slots(&lun(), 2, 3).await.unwrap_err(),
        Error::TooFewSlots {
            slots: 2,
            hosts: 3,
            ..
        }
    ));
    h.expect(debugfs().stdout(stats("vmstore", u, 4)));
    match h.node().set_ocfs2_slots(&lun(), 3, 3).await.unwrap_err() {
        Error::WouldShrink {
            current, requested, ..
        } => assert_eq!((current, requested), (4, 3)),
        e => panic!("unexpected {e:?}"),
    }
    h.expect(debugfs().stdout(stats("vmstore", u, 4)));
    assert_eq!(
        h.node().set_ocfs2_slots(&lun(), 4, 3).await.unwrap(),
        Change::Unchanged
    );
    h.expect(debugfs().stdout(stats("vmstore", u, 4)));
    h.expect(Expect::new("tunefs.ocfs2", ["-N", "6", DEV]));
    assert_eq!(
        h.node().set_ocfs2_slots(&lun(), 6, 3).await.unwrap(),
        Change::Changed
    );
    h.runner.verify();
}

#[tokio::test]
async fn label_change_and_undo() {
    let h = Host::new();
    let u = "329E6070F06B425EAFC145816B197431";
    h.expect(debugfs().stdout(stats("vmstore", u, 4)));
    h.expect(Expect::new("tunefs.ocfs2", ["-L", "vmprod", DEV]));
    let r = h
        .node()
        .set_ocfs2_label(&lun(), &Label::parse("vmprod").unwrap())
        .await
        .unwrap();
    assert_eq!(
        (r.change, r.previous.as_str()),
        (Change::Changed, "vmstore")
    );
    h.expect(debugfs().stdout(stats("vmprod", u, 4)));
    h.expect(Expect::new("tunefs.ocfs2", ["-L", "vmstore", DEV]));
    assert_eq!(h.node().undo(&r.into()).await.unwrap(), Change::Changed);
    // A tunefs failure (cluster offline) keeps the command's error as the source.
    h.expect(debugfs().stdout(stats("vmstore", u, 4)));
    h.expect(Expect::new("tunefs.ocfs2", ["-L", "vmprod", DEV]).exit(
        3,
        "",
        "tunefs.ocfs2: Unable to access cluster service while opening device \"/dev/dm-3\"",
    ));
    let err = h
        .node()
        .set_ocfs2_label(&lun(), &Label::parse("vmprod").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Host {
            step: Step::Tune,
            ..
        }
    ));
    assert!(err.is_exit_code(3));
    h.runner.verify();
}

#[tokio::test]
async fn fsck_ocfs2_modes() {
    let h = Host::new();
    h.expect(Expect::new("fsck.ocfs2", ["-n", DEV]).stdout("clean"));
    let r = h
        .node()
        .fsck_ocfs2(&lun(), FsckMode::CheckOnly)
        .await
        .unwrap();
    assert_eq!(
        (r.clean, r.exit_code, r.change, r.output.as_str()),
        (true, 0, Change::Unchanged, "clean")
    );
    h.expect(Expect::new("fsck.ocfs2", ["-y", DEV]).exit(1, "fixed", ""));
    let r = h.node().fsck_ocfs2(&lun(), FsckMode::Repair).await.unwrap();
    assert_eq!(
        (r.clean, r.exit_code, r.change),
        (false, 1, Change::Changed)
    );
    // Repair of the wrong device never runs.
    let wrong = TargetDevice::new(
        DEV,
        Identity::wwid("3600a0980774f6a34663f57396c4f6b99").unwrap(),
    )
    .unwrap();
    assert!(matches!(
        h.node()
            .fsck_ocfs2(&wrong, FsckMode::Repair)
            .await
            .unwrap_err(),
        Error::IdentityMismatch { .. }
    ));
    h.expect(Expect::new("fsck.ocfs2", ["-n", DEV]).exit(8, "", "operational error"));
    assert!(h
        .node()
        .fsck_ocfs2(&lun(), FsckMode::CheckOnly)
        .await
        .unwrap_err()
        .is_exit_code(8));
    h.runner.verify();
}

#[tokio::test]
async fn cluster_conf_write_merge_and_undo() {
    let h = Host::new();
    let node = h.node();
    let conf_path = h.path("/etc/ocfs2/cluster.conf");
    let first = node.write_cluster_conf(&two_node_conf()).unwrap();
    assert_eq!(
        (first.change, first.previous.is_none()),
        (Change::Changed, true)
    );
    let text = std::fs::read_to_string(&conf_path).unwrap();
    assert!(
        text.starts_with("cluster:\n\tname = kvmcl\n\theartbeat_mode = local\n\tnode_count = 2\n")
    );
    assert_eq!(
        node.write_cluster_conf(&two_node_conf()).unwrap().change,
        Change::Unchanged
    );

    let mut third = ClusterConf::default();
    assert_eq!(
        third
            .add_cluster(Ocfs2Cluster::new(cl(), HeartbeatMode::Local))
            .unwrap(),
        Change::Changed
    );
    let n3 = Ocfs2Node::new(
        cl(),
        NodeName::parse("kvm3").unwrap(),
        2,
        "10.0.0.13".parse().unwrap(),
    )
    .unwrap();
    assert_eq!(third.add_node(n3).unwrap(), Change::Changed);
    let second = node.write_cluster_conf(&third).unwrap();
    assert_eq!(second.change, Change::Changed);
    assert_eq!(node.read_cluster_conf().unwrap().nodes_of(&cl()).count(), 3);

    // A conflicting node leaves the file untouched.
    let mut clash = third.clone();
    let bad = Ocfs2Node::new(
        cl(),
        NodeName::parse("kvm9").unwrap(),
        1,
        "10.0.0.19".parse().unwrap(),
    )
    .unwrap();
    assert_eq!(clash.add_node(bad).unwrap(), Change::Changed);
    let before = std::fs::read_to_string(&conf_path).unwrap();
    assert!(matches!(
        node.write_cluster_conf(&clash).unwrap_err(),
        Error::ClusterConflict { .. }
    ));
    assert_eq!(std::fs::read_to_string(&conf_path).unwrap(), before);

    // Undo in reverse: back to two nodes, then gone.
    assert_eq!(
        node.undo(&second.clone().into()).await.unwrap(),
        Change::Changed
    );
    assert_eq!(std::fs::read_to_string(&conf_path).unwrap(), text);
    assert_eq!(node.undo(&second.into()).await.unwrap(), Change::Unchanged);
    assert_eq!(
        node.undo(&first.clone().into()).await.unwrap(),
        Change::Changed
    );
    assert!(!conf_path.exists());
    assert_eq!(node.undo(&first.into()).await.unwrap(), Change::Unchanged);
}

#[tokio::test]
async fn o2cb_defaults_write_is_validated_and_idempotent() {
    let h = Host::new();
    let node = h.node();
    let bad = O2cbDefaults {
        keepalive_delay_ms: 40_000,
        ..O2cbDefaults::enabled(cl())
    };
    assert!(matches!(
        node.write_o2cb_defaults(&bad).unwrap_err(),
        Error::O2cbSettings { .. }
    ));
    assert!(!h.path("/etc/default/o2cb").exists());
    let good = O2cbDefaults::enabled(cl()).heartbeat_timeout(std::time::Duration::from_secs(120));
    let w = node.write_o2cb_defaults(&good).unwrap();
    assert_eq!(w.change, Change::Changed);
    assert_eq!(
        node.write_o2cb_defaults(&good).unwrap().change,
        Change::Unchanged
    );
    let text = std::fs::read_to_string(h.path("/etc/default/o2cb")).unwrap();
    assert!(text.contains("\nO2CB_HEARTBEAT_THRESHOLD=61\n"));
    assert_eq!(node.undo(&w.into()).await.unwrap(), Change::Changed);
    assert!(!h.path("/etc/default/o2cb").exists());
}

#[tokio::test]
async fn register_cluster_status_and_unregister() {
    let h = Host::new();
    let node = h.node();
    let arg = h.o2cb_arg();
    // Not in cluster.conf: refused before o2cb runs.
    assert!(matches!(
        node.register_cluster(&cl()).await.unwrap_err(),
        Error::UnknownCluster { .. }
    ));
    let _ = node.write_cluster_conf(&two_node_conf()).unwrap();
    h.expect(Expect::new("o2cb", [arg.as_str(), "cluster-status", "kvmcl"]).stdout("online\n"));
    let r = node.register_cluster(&cl()).await.unwrap();
    assert_eq!(r.change, Change::Unchanged);
    // Undo of a registration that changed nothing leaves the cluster online.
    assert_eq!(node.undo(&r.into()).await.unwrap(), Change::Unchanged);
    h.expect(
        Expect::new("o2cb", [arg.as_str(), "cluster-status", "kvmcl"]).exit(1, "offline\n", ""),
    );
    h.expect(Expect::new(
        "o2cb",
        [arg.as_str(), "register-cluster", "kvmcl"],
    ));
    let r = node.register_cluster(&cl()).await.unwrap();
    assert_eq!(r.change, Change::Changed);
    // Already offline again: undo is Unchanged.
    h.expect(
        Expect::new("o2cb", [arg.as_str(), "cluster-status", "kvmcl"]).exit(1, "offline\n", ""),
    );
    assert_eq!(
        node.undo(&r.clone().into()).await.unwrap(),
        Change::Unchanged
    );
    h.expect(Expect::new(
        "o2cb",
        [arg.as_str(), "cluster-status", "kvmcl"],
    ));
    h.expect(Expect::new(
        "o2cb",
        [arg.as_str(), "unregister-cluster", "kvmcl"],
    ));
    assert_eq!(node.undo(&r.into()).await.unwrap(), Change::Changed);
    h.expect(Expect::new("o2cb", [arg.as_str(), "list-clusters"]).stdout("kvmcl\n"));
    assert_eq!(node.list_clusters().await.unwrap(), vec![cl()]);
    h.runner.verify();
}

#[tokio::test]
async fn corosync_write_merges_nodes() {
    let h = Host::new();
    let node = h.node();
    let n = |id, name: &str, ip: &str| {
        CorosyncNode::new(id, NodeName::parse(name).unwrap(), ip.parse().unwrap()).unwrap()
    };
    let mut a = CorosyncConf::new(cl());
    assert_eq!(
        a.add_node(n(1, "kvm1", "10.0.0.11")).unwrap(),
        Change::Changed
    );
    let w1 = node.write_corosync(&a).unwrap();
    assert_eq!(w1.change, Change::Changed);
    assert_eq!(node.write_corosync(&a).unwrap().change, Change::Unchanged);
    let mut b = CorosyncConf::new(cl());
    assert_eq!(
        b.add_node(n(2, "kvm2", "10.0.0.12")).unwrap(),
        Change::Changed
    );
    let w2 = node.write_corosync(&b).unwrap();
    assert_eq!(w2.change, Change::Changed);
    let text = std::fs::read_to_string(h.path("/etc/corosync/corosync.conf")).unwrap();
    let parsed = CorosyncConf::parse(&text).unwrap();
    assert_eq!(parsed.nodes().len(), 2);
    assert!(text.contains("\ttwo_node: 1\n"));
    assert!(matches!(
        node.write_corosync(&CorosyncConf::new(ClusterName::parse("other").unwrap()))
            .unwrap_err(),
        Error::ClusterConflict { .. }
    ));
    assert_eq!(node.undo(&w2.into()).await.unwrap(), Change::Changed);
    assert_eq!(node.undo(&w1.into()).await.unwrap(), Change::Changed);
    assert!(!h.path("/etc/corosync/corosync.conf").exists());
}

#[tokio::test]
async fn mount_fstab_and_undo() {
    let h = Host::new();
    let node = h.node();
    let target = h.dir.path().join("var/lib/vmstore");
    let t = target.to_str().unwrap().to_owned();
    let m = ClusterMount::new(DEV, &target, FsKind::Gfs2).unwrap();
    h.expect(Expect::new(
        "mount",
        ["-t", "gfs2", "-o", "_netdev,noatime", DEV, t.as_str()],
    ));
    let mounted = node.mount(&m).await.unwrap();
    assert_eq!(
        (mounted.change, mounted.created_dir),
        (Change::Changed, true)
    );
    assert!(target.is_dir());
    let id = EntryId::parse("vmstore").unwrap();
    let line = node.add_fstab(&id, &m).unwrap();
    assert_eq!(line.change, Change::Changed);
    assert_eq!(node.add_fstab(&id, &m).unwrap().change, Change::Unchanged);
    assert_eq!(
        std::fs::read_to_string(h.path("/etc/fstab")).unwrap(),
        format!("# kvmstor:vmstore (managed by kvmstor; removed by its undo)\n{DEV} {t} gfs2 _netdev,noatime 0 0\n")
    );

    // Now the kernel lists it: a second mount is Unchanged, another source is an error.
    std::fs::write(
        h.path("/proc/self/mountinfo"),
        format!("27 1 254:0 / / rw - ext4 /dev/vda rw\n90 27 253:3 / {t} rw - gfs2 {DEV} rw\n"),
    )
    .unwrap();
    assert_eq!(node.mount(&m).await.unwrap().change, Change::Unchanged);
    let other = ClusterMount::new("/dev/dm-9", &target, FsKind::Gfs2).unwrap();
    let err = node.mount(&other).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Host {
                step: Step::Mount,
                source: host_storage::Error::MountedElsewhere { .. },
                ..
            }
        ),
        "{err:?}"
    );

    assert_eq!(node.undo(&line.into()).await.unwrap(), Change::Changed);
    assert_eq!(std::fs::read_to_string(h.path("/etc/fstab")).unwrap(), "");
    h.expect(Expect::new("umount", [t.as_str()]));
    assert_eq!(node.undo(&mounted.into()).await.unwrap(), Change::Changed);
    assert!(!target.exists());
    h.runner.verify();
}

#[tokio::test]
async fn failed_mount_removes_the_mount_point_it_made() {
    let h = Host::new();
    let target = h.dir.path().join("mnt/x");
    let m = ClusterMount::new(DEV, &target, FsKind::Ocfs2).unwrap();
    h.expect(Expect::any_args("mount").exit(32, "", "mount: unknown filesystem type 'ocfs2'"));
    let err = h.node().mount(&m).await.unwrap_err();
    assert!(err.is_exit_code(32));
    assert!(!target.exists());
    h.runner.verify();
}

#[test]
fn mount_options_are_validated() {
    assert!(ClusterMount::new(DEV, "relative/path", FsKind::Ocfs2).is_err());
    let m = ClusterMount::new(DEV, "/mnt/a", FsKind::Ocfs2).unwrap();
    assert!(m.clone().option("a b").is_err());
    assert_eq!(
        m.option("coherency=buffered")
            .unwrap()
            .fstab_entry()
            .unwrap()
            .line(),
        "/nonexistent-dev/dm-3 /mnt/a ocfs2 _netdev,noatime,coherency=buffered 0 0"
    );
}

#[tokio::test]
async fn dlm_conf_write_and_undo() {
    use cluster_fs::gfs2::{DlmConf, DlmProtocol};
    let h = Host::new();
    let node = h.node();
    let c = DlmConf {
        enable_fencing: false,
        protocol: DlmProtocol::Tcp,
    };
    let w = node.write_dlm_conf(&c).unwrap();
    assert_eq!(w.change, Change::Changed);
    assert_eq!(
        std::fs::read_to_string(h.path("/etc/dlm/dlm.conf")).unwrap(),
        "# Written by kvmstor.\nenable_fencing=0\nprotocol=tcp\n"
    );
    assert_eq!(node.write_dlm_conf(&c).unwrap().change, Change::Unchanged);
    assert!(DlmConf::parse("protocol=udp\n").is_err());
    assert_eq!(node.undo(&w.into()).await.unwrap(), Change::Changed);
    assert!(!h.path("/etc/dlm/dlm.conf").exists());
}

#[tokio::test]
async fn gfs2_format_refuses_a_lock_table_of_another_cluster() {
    let h = Host::new();
    let mut c = CorosyncConf::new(cl());
    let n1 = CorosyncNode::new(
        1,
        NodeName::parse("kvm1").unwrap(),
        "10.0.0.11".parse().unwrap(),
    )
    .unwrap();
    assert_eq!(c.add_node(n1).unwrap(), Change::Changed);
    let _ = h.node().write_corosync(&c).unwrap();
    let f = Gfs2Format::new(lun(), LockTable::parse("other:vmstore").unwrap(), 1).unwrap();
    match h.node().format_gfs2(&f).await.unwrap_err() {
        Error::ClusterConflict {
            cluster, reason, ..
        } => {
            assert_eq!(cluster, "kvmcl");
            assert_eq!(
                reason,
                "the lock table names another cluster than corosync's cluster_name"
            );
        }
        e => panic!("unexpected {e:?}"),
    }
    assert!(h.runner.calls().is_empty());
}

#[test]
fn heartbeat_regions_add_and_remove() {
    let mut conf = two_node_conf();
    let r = Region::parse("77d95ef5-1c01-49d2-8236-74fcc162cf8b").unwrap();
    let hb = cluster_fs::ocfs2::HeartbeatRegion {
        cluster: cl(),
        region: r.clone(),
    };
    assert_eq!(conf.add_heartbeat(hb.clone()).unwrap(), Change::Changed);
    assert_eq!(conf.add_heartbeat(hb).unwrap(), Change::Unchanged);
    assert!(conf.render().contains(
        "heartbeat:\n\tcluster = kvmcl\n\tregion = 77D95EF51C0149D2823674FCC162CF8B\n\n"
    ));
    assert_eq!(conf.remove_heartbeat(&cl(), &r), Change::Changed);
    assert_eq!(conf.remove_heartbeat(&cl(), &r), Change::Unchanged);
    assert!(!conf.render().contains("heartbeat:"));
}
