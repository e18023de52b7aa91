//! Host tier: the real ocfs2-tools and gfs2-utils on sparse image files (no root, no
//! kernel modules: formatting, tuning, checking and superblock queries only; mounting is the
//! lab's). Run by `cargo xtask test` as `cargo test -p cluster-fs -- --ignored`.
//!
//! Every image lives in a temporary directory removed on drop, panics included.

use std::path::{Path, PathBuf};

use cluster_fs::error::{SignatureKind, Step};
use cluster_fs::gfs2::Gfs2Format;
use cluster_fs::host::WipeData;
use cluster_fs::ocfs2::tools::parse_mounted_detect;
use cluster_fs::ocfs2::{
    ClusterConf, FsckMode, HeartbeatMode, Mounters, Ocfs2Cluster, Ocfs2Format, Ocfs2Mode,
    Ocfs2Node, Ocfs2Usage, Region,
};
use cluster_fs::{ClusterHost, ClusterName, Error, Label, LockTable, NodeName, TargetDevice};
use host_storage::files::HostRoot;
use host_storage::{Change, SystemRunner};

/// A scratch directory with sparse image files; removed on drop.
struct Images {
    dir: tempfile::TempDir,
}

impl Images {
    fn new() -> Self {
        Images {
            dir: tempfile::Builder::new()
                .prefix("cluster-fs-host-")
                .tempdir()
                .unwrap(),
        }
    }

    fn image(&self, name: &str, mib: u64) -> PathBuf {
        let p = self.dir.path().join(name);
        let f = std::fs::File::create(&p).unwrap();
        f.set_len(mib << 20).unwrap();
        p
    }

    /// A host whose config files live under the scratch directory (o2cb gets
    /// `--config-file` there), so the real `/etc` is never touched.
    fn host(&self) -> ClusterHost<SystemRunner> {
        ClusterHost::new(SystemRunner::new()).with_root(HostRoot::new(self.dir.path().join("root")))
    }
}

fn cl() -> ClusterName {
    ClusterName::parse("kvmcl").unwrap()
}

fn label(s: &str) -> Label {
    Label::parse(s).unwrap()
}

fn img(p: &Path) -> TargetDevice {
    TargetDevice::image_file(p).unwrap()
}

#[tokio::test]
#[ignore = "host tier: needs ocfs2-tools/gfs2-utils (installed by cargo xtask test)"]
async fn host_mkfs_ocfs2_o2cb_then_query_detect_fsck() {
    let imgs = Images::new();
    let dev = img(&imgs.image("o.img", 256));
    let host = imgs.host();
    let f = Ocfs2Format::new(dev.clone(), label("vmstore"), cl(), 3)
        .unwrap()
        .node_slots(4)
        .unwrap()
        .block_size(4096)
        .unwrap()
        .cluster_size(1 << 20)
        .unwrap()
        .journal_mib(16)
        .unwrap();
    let done = host.format_ocfs2(&f).await.unwrap();
    assert_eq!(done.change, Change::Changed);
    let uuid = done.uuid.clone().unwrap();
    // Retried: found as it was left, not formatted again.
    let again = host.format_ocfs2(&f).await.unwrap();
    assert_eq!(
        (again.change, again.uuid.as_deref()),
        (Change::Unchanged, Some(uuid.as_str()))
    );

    let s = host.ocfs2_stats(&dev).await.unwrap();
    assert_eq!(s.label, "vmstore");
    assert_eq!(s.uuid, Region::parse(&uuid).unwrap());
    assert_eq!(
        (s.node_slots, s.block_size, s.cluster_size),
        (4, 4096, 1 << 20)
    );
    assert_eq!(s.cluster_stack.as_deref(), Some("o2cb"));
    assert_eq!(s.cluster_name.as_deref(), Some("kvmcl"));
    for feat in [
        "sparse",
        "unwritten",
        "refcount",
        "metaecc",
        "xattr",
        "indexed-dirs",
        "inline-data",
    ] {
        assert!(
            s.features.iter().any(|x| x == feat),
            "missing {feat}: {:?}",
            s.features
        );
    }

    let detected = host.detect_ocfs2(Some(&dev)).await.unwrap();
    assert_eq!(detected.len(), 1);
    assert_eq!(detected[0].uuid, s.uuid);
    assert_eq!(detected[0].label, "vmstore");
    assert_eq!(detected[0].cluster.as_deref(), Some("kvmcl"));
    let mounters = host.ocfs2_mounters(Some(&dev)).await.unwrap();
    assert_eq!(mounters[0].mounters, Mounters::NotMounted);

    let rep = host.fsck_ocfs2(&dev, FsckMode::CheckOnly).await.unwrap();
    assert!(rep.clean, "{}", rep.output);
    assert!(rep.output.contains("is clean"), "{}", rep.output);

    // Outside a running cluster tunefs -L cannot lock an o2cb volume (see lab.md).
    let err = host
        .set_ocfs2_label(&dev, &label("other"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Host {
                step: Step::Tune,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(host.ocfs2_stats(&dev).await.unwrap().label, "vmstore");
}

#[tokio::test]
#[ignore = "host tier: needs ocfs2-tools/gfs2-utils (installed by cargo xtask test)"]
async fn host_refuses_to_format_over_signatures() {
    let imgs = Images::new();
    let host = imgs.host();
    // A GFS2 volume is not formatted over without overwrite.
    let path = imgs.image("g.img", 256);
    let dev = img(&path);
    let g = Gfs2Format::new(dev.clone(), LockTable::parse("kvmcl:keep").unwrap(), 1)
        .unwrap()
        .journal_mib(8)
        .unwrap();
    assert_eq!(host.format_gfs2(&g).await.unwrap().change, Change::Changed);
    let f = Ocfs2Format::new(dev.clone(), label("vmstore"), cl(), 2)
        .unwrap()
        .cluster_size(1 << 20)
        .unwrap();
    match host.format_ocfs2(&f).await.unwrap_err() {
        Error::HasSignature {
            kind, found, label, ..
        } => {
            assert_eq!(
                (kind, found.as_str(), label.as_deref()),
                (SignatureKind::FileSystem, "gfs2", Some("kvmcl:keep"))
            );
        }
        e => panic!("unexpected {e:?}"),
    }
    assert_eq!(host.gfs2_info(&dev).await.unwrap().label, "kvmcl:keep");
    // With overwrite it is replaced.
    let done = host.format_ocfs2(&f.overwrite(true)).await.unwrap();
    assert_eq!(done.change, Change::Changed);
    assert_eq!(
        host.probe(&dev).await.unwrap().fs_type.as_deref(),
        Some("ocfs2")
    );

    // A partition table (a hand-written MBR with one partition) is refused too.
    let pt = imgs.image("p.img", 64);
    let mut mbr = std::fs::read(&pt).unwrap()[..512].to_vec();
    mbr[446 + 4] = 0x83;
    mbr[446 + 8..446 + 12].copy_from_slice(&2048u32.to_le_bytes());
    mbr[446 + 12..446 + 16].copy_from_slice(&32768u32.to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    {
        use std::io::{Seek, Write};
        let mut fh = std::fs::OpenOptions::new().write(true).open(&pt).unwrap();
        fh.seek(std::io::SeekFrom::Start(0)).unwrap();
        fh.write_all(&mbr).unwrap();
    }
    let f = Ocfs2Format::new(img(&pt), label("vmstore"), cl(), 2)
        .unwrap()
        .cluster_size(1 << 20)
        .unwrap();
    match host.format_ocfs2(&f).await.unwrap_err() {
        Error::HasSignature { kind, found, .. } => {
            assert_eq!(
                (kind, found.as_str()),
                (SignatureKind::PartitionTable, "dos")
            )
        }
        e => panic!("unexpected {e:?}"),
    }
    assert!(host.probe(&img(&pt)).await.unwrap().fs_type.is_none());

    // Explicit wipe undoes a format; the default undo keeps it.
    assert_eq!(
        host.undo(&done.clone().into()).await.unwrap(),
        Change::Unchanged
    );
    assert_eq!(
        host.undo_format(&done, WipeData::Yes).await.unwrap(),
        Change::Changed
    );
    assert!(host.probe(&dev).await.unwrap().is_blank());
    assert_eq!(
        host.undo_format(&done, WipeData::Yes).await.unwrap(),
        Change::Unchanged
    );
}

#[tokio::test]
#[ignore = "host tier: needs ocfs2-tools/gfs2-utils (installed by cargo xtask test)"]
async fn host_cloned_volume_gets_new_uuid_beside_parent() {
    let imgs = Images::new();
    let host = imgs.host();
    let parent_path = imgs.image("parent.img", 256);
    let parent = img(&parent_path);
    let f = Ocfs2Format::new(parent.clone(), label("vmstore"), cl(), 2)
        .unwrap()
        .cluster_size(1 << 20)
        .unwrap()
        .journal_mib(16)
        .unwrap();
    let done = host.format_ocfs2(&f).await.unwrap();
    let parent_uuid = Region::parse(done.uuid.as_deref().unwrap()).unwrap();
    // What an ONTAP FlexClone gives the host: a block-for-block copy.
    let clone_path = imgs.dir.path().join("clone.img");
    std::fs::copy(&parent_path, &clone_path).unwrap();
    let clone = img(&clone_path);
    assert_eq!(host.ocfs2_stats(&clone).await.unwrap().uuid, parent_uuid);

    let r = host
        .reuuid_cloned_ocfs2(&clone, &parent_uuid)
        .await
        .unwrap();
    assert_eq!(r.change, Change::Changed);
    assert_ne!(r.uuid, parent_uuid);
    assert_eq!(r.label, "vmstore-cloned");
    let again = host
        .reuuid_cloned_ocfs2(&clone, &parent_uuid)
        .await
        .unwrap();
    assert_eq!((again.change, &again.uuid), (Change::Unchanged, &r.uuid));
    // The parent is untouched, and both are told apart by mounted.ocfs2.
    assert_eq!(host.ocfs2_stats(&parent).await.unwrap().uuid, parent_uuid);
    // mounted.ocfs2 -d (one device per call) tells them apart.
    let mut uuids = Vec::new();
    for d in [&parent, &clone] {
        let rows = host.detect_ocfs2(Some(d)).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].device, d.arg());
        uuids.push(rows[0].uuid.clone());
    }
    assert_eq!(uuids, vec![parent_uuid, r.uuid]);
    assert!(parse_mounted_detect("").unwrap().is_empty());
}

/// Runs a read-only query through the real runner.
struct SystemRunnerExt;

impl SystemRunnerExt {
    async fn run_out(argv: &[&str]) -> String {
        use host_storage::{Command, Runner};
        let cmd = Command::new(argv[0]).args(argv[1..].iter().copied());
        SystemRunner::new().run(&cmd).await.unwrap().stdout
    }
}

#[tokio::test]
#[ignore = "host tier: needs ocfs2-tools/gfs2-utils (installed by cargo xtask test)"]
async fn host_local_volume_label_slots_and_undo() {
    let imgs = Images::new();
    let host = imgs.host();
    let dev = img(&imgs.image("l.img", 256));
    let f = Ocfs2Format::with_mode(dev.clone(), label("scratch"), Ocfs2Mode::Local, 1)
        .unwrap()
        .usage(Ocfs2Usage::Mail)
        .journal_mib(8)
        .unwrap();
    assert_eq!(host.format_ocfs2(&f).await.unwrap().change, Change::Changed);
    let s = host.ocfs2_stats(&dev).await.unwrap();
    assert!(s.is_local(), "{:?}", s.features);
    assert_eq!(s.node_slots, 1);

    let r = host
        .set_ocfs2_label(&dev, &label("scratch2"))
        .await
        .unwrap();
    assert_eq!(
        (r.change, r.previous.as_str()),
        (Change::Changed, "scratch")
    );
    assert_eq!(host.ocfs2_stats(&dev).await.unwrap().label, "scratch2");
    assert_eq!(
        host.set_ocfs2_label(&dev, &label("scratch2"))
            .await
            .unwrap()
            .change,
        Change::Unchanged
    );
    assert_eq!(host.undo(&r.into()).await.unwrap(), Change::Changed);
    assert_eq!(host.ocfs2_stats(&dev).await.unwrap().label, "scratch");

    assert_eq!(
        host.set_ocfs2_slots(&dev, 3, 2).await.unwrap(),
        Change::Changed
    );
    assert_eq!(host.ocfs2_stats(&dev).await.unwrap().node_slots, 3);
    assert_eq!(
        host.set_ocfs2_slots(&dev, 3, 2).await.unwrap(),
        Change::Unchanged
    );
    assert!(matches!(
        host.set_ocfs2_slots(&dev, 2, 2).await.unwrap_err(),
        Error::WouldShrink {
            current: 3,
            requested: 2,
            ..
        }
    ));
    assert!(
        host.fsck_ocfs2(&dev, FsckMode::CheckOnly)
            .await
            .unwrap()
            .clean
    );
}

#[tokio::test]
#[ignore = "host tier: needs ocfs2-tools/gfs2-utils (installed by cargo xtask test)"]
async fn host_gfs2_mkfs_tunegfs2_fsck() {
    let imgs = Images::new();
    let host = imgs.host();
    let dev = img(&imgs.image("g.img", 256));
    let table = LockTable::parse("kvmcl:vmstore").unwrap();
    let f = Gfs2Format::new(dev.clone(), table.clone(), 2)
        .unwrap()
        .journals(3)
        .unwrap()
        .journal_mib(16)
        .unwrap();
    let done = host.format_gfs2(&f).await.unwrap();
    assert_eq!(done.change, Change::Changed);
    assert_eq!(
        host.format_gfs2(&f).await.unwrap().change,
        Change::Unchanged
    );
    let info = host.gfs2_info(&dev).await.unwrap();
    assert_eq!(info.lock_protocol, "lock_dlm");
    assert_eq!(info.lock_table.as_ref(), Some(&table));
    assert_eq!(info.block_size, 4096);
    assert_eq!(Some(info.uuid.to_string()), done.uuid);

    let new = LockTable::parse("kvmcl:vm2").unwrap();
    let r = host.set_gfs2_lock_table(&dev, &new).await.unwrap();
    assert_eq!(
        (r.change, r.previous.as_str()),
        (Change::Changed, "kvmcl:vmstore")
    );
    assert_eq!(
        host.gfs2_info(&dev).await.unwrap().lock_table,
        Some(new.clone())
    );
    assert_eq!(
        host.set_gfs2_lock_table(&dev, &new).await.unwrap().change,
        Change::Unchanged
    );
    assert_eq!(host.undo(&r.into()).await.unwrap(), Change::Changed);
    assert_eq!(host.gfs2_info(&dev).await.unwrap().lock_table, Some(table));

    let rep = host.fsck_gfs2(&dev, FsckMode::CheckOnly).await.unwrap();
    assert!(rep.clean, "{}", rep.output);
}

#[tokio::test]
#[ignore = "host tier: needs ocfs2-tools/gfs2-utils (installed by cargo xtask test)"]
async fn host_o2cb_reads_the_cluster_conf_we_write() {
    let imgs = Images::new();
    let host = imgs.host();
    let mut conf = ClusterConf::default();
    assert_eq!(
        conf.add_cluster(Ocfs2Cluster::new(cl(), HeartbeatMode::Local))
            .unwrap(),
        Change::Changed
    );
    for (n, ip) in [(0u8, "10.0.0.11"), (1, "10.0.0.12")] {
        let node = Ocfs2Node::new(
            cl(),
            NodeName::parse(&format!("kvm{}", n + 1)).unwrap(),
            n,
            ip.parse().unwrap(),
        )
        .unwrap();
        assert_eq!(conf.add_node(node).unwrap(), Change::Changed);
    }
    let w = host.write_cluster_conf(&conf).unwrap();
    assert_eq!(host.list_clusters().await.unwrap(), vec![cl()]);
    // No cluster stack runs here: o2cb reports it offline.
    assert!(!host.cluster_online(&cl()).await.unwrap());

    // o2cb itself adds a node to our file; we read its edit back and it merges cleanly.
    let conf_path = imgs.dir.path().join("root/etc/ocfs2/cluster.conf");
    let arg = format!("--config-file={}", conf_path.display());
    SystemRunnerExt::run_out(&[
        "o2cb",
        &arg,
        "add-node",
        "--ip",
        "10.0.0.13",
        "--port",
        "7777",
        "--number",
        "2",
        "kvmcl",
        "kvm3",
    ])
    .await;
    let read = host.read_cluster_conf().unwrap();
    let names: Vec<&str> = read.nodes_of(&cl()).map(|n| n.name.as_str()).collect();
    assert_eq!(names, vec!["kvm1", "kvm2", "kvm3"]);
    assert_eq!(
        host.write_cluster_conf(&conf).unwrap().change,
        Change::Unchanged
    );
    assert_eq!(read.render(), std::fs::read_to_string(&conf_path).unwrap());

    assert_eq!(host.undo(&w.into()).await.unwrap(), Change::Changed);
    assert!(!conf_path.exists());
}
