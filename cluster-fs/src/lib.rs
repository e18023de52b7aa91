//! # cluster-fs
//!
//! Cluster file systems for block datastores shared by several KVM hosts: **OCFS2** with the
//! o2cb stack, and **GFS2** with corosync and DLM.
//!
//! - **Names** ([`names`]): validated [`ClusterName`], [`NodeName`], [`Label`], [`FsName`],
//!   [`LockTable`].
//! - **OCFS2** ([`ocfs2`]): the typed `/etc/ocfs2/cluster.conf` ([`ocfs2::ClusterConf`], read,
//!   merged, rendered as `o2cb` writes it), `/etc/default/o2cb` with its validated timeouts
//!   ([`ocfs2::O2cbDefaults`]), the `o2cb` commands, `mkfs.ocfs2` options suited to VM images
//!   ([`ocfs2::Ocfs2Format`]), `tunefs.ocfs2` (label, slots, `--cloned-volume`),
//!   `fsck.ocfs2`, and parsers for `mounted.ocfs2 -d/-f` and `debugfs.ocfs2 -R stats`.
//! - **GFS2** ([`gfs2`]): `corosync.conf` ([`gfs2::CorosyncConf`]: cluster name, nodes,
//!   transport, votequorum), `dlm.conf` ([`gfs2::DlmConf`]), `mkfs.gfs2 -p lock_dlm -t
//!   cluster:fs -j N` ([`gfs2::Gfs2Format`]), `tunegfs2` (lock table = label), `gfs2_jadd`
//!   when hosts are added, `fsck.gfs2`.
//! - **Safety** ([`device`]): before any destructive step the device's WWID or NVMe
//!   namespace UUID is read from sysfs and compared with what the caller expects
//!   ([`TargetDevice`], [`Identity`]); a device with any file-system or partition-table
//!   signature is never formatted unless overwriting was asked; a multipath path (a device
//!   with holders) is never touched; node slots and journals are at least the number of
//!   hosts, and are never shrunk. Each refusal is its own [`Error`] variant
//!   ([`Error::is_refusal`]).
//! - **Steps** ([`host`]): [`ClusterHost`] runs each step through a
//!   [`host_storage::Runner`]; every step is idempotent, says whether it changed anything and
//!   returns its undo ([`Undo`]: restore a file, remove the fstab line, unmount, unregister
//!   the cluster). No undo destroys data; wiping a fresh format is a separate, explicit call
//!   ([`ClusterHost::undo_format`] with [`host::WipeData::Yes`]).
//!
//! ## Example
//!
//! One host of a two-host OCFS2 cluster, on a scratch host root with a synthetic sysfs and a
//! scripted runner (on a real host: [`ClusterHost::new`] with
//! [`host_storage::SystemRunner`]):
//!
//! ```
//! use cluster_fs::ocfs2::{ClusterConf, HeartbeatMode, O2cbDefaults, Ocfs2Cluster, Ocfs2Format, Ocfs2Node};
//! use cluster_fs::{ClusterHost, ClusterMount, ClusterName, FsKind, Identity, Label, NodeName, TargetDevice, Undo};
//! use host_storage::files::{EntryId, HostRoot};
//! use host_storage::{Change, Expect, FakeRunner};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let host = tempfile::tempdir().unwrap();
//! let root = HostRoot::new(host.path());
//! // sysfs says which LUN dm-3 is; /proc/self/mountinfo shows nothing mounted yet.
//! std::fs::create_dir_all(root.path("/sys/block/dm-3/dm")).unwrap();
//! std::fs::write(root.path("/sys/block/dm-3/dm/uuid"), "mpath-3600a0980774f6a34663f57396c4f6b37\n").unwrap();
//! std::fs::create_dir_all(root.path("/proc/self")).unwrap();
//! std::fs::write(root.path("/proc/self/mountinfo"), "27 1 254:0 / / rw - ext4 /dev/vda rw\n").unwrap();
//! std::fs::create_dir_all(root.path("/etc")).unwrap();
//!
//! let cl = ClusterName::parse("kvmcl")?;
//! let mut conf = ClusterConf::default();
//! conf.add_cluster(Ocfs2Cluster::new(cl.clone(), HeartbeatMode::Local))?;
//! for (n, ip) in [(0u8, "10.0.0.11"), (1, "10.0.0.12")] {
//!     let name = NodeName::parse(&format!("kvm{}", n + 1))?;
//!     conf.add_node(Ocfs2Node::new(cl.clone(), name, n, ip.parse().unwrap())?)?;
//! }
//! let lun = TargetDevice::new("/dev/dm-3", Identity::wwid("3600a0980774f6a34663f57396c4f6b37")?)?;
//! let format = Ocfs2Format::new(lun.clone(), Label::parse("vmstore")?, cl.clone(), 2)?;
//! let target = host.path().join("var/lib/vmstore");
//! let mount = ClusterMount::new("/dev/dm-3", &target, FsKind::Ocfs2)?;
//!
//! let runner = FakeRunner::new();
//! let conf_file = root.path("/etc/ocfs2/cluster.conf").display().to_string();
//! runner
//!     .expect(Expect::new("o2cb", [format!("--config-file={conf_file}").as_str(), "cluster-status", "kvmcl"])
//!         .exit(1, "offline\n", ""))
//!     .expect(Expect::new("o2cb", [format!("--config-file={conf_file}").as_str(), "register-cluster", "kvmcl"]))
//!     .expect(Expect::new("blkid", ["-p", "-o", "export", "/dev/dm-3"]).exit(2, "", ""))
//!     .expect(Expect::any_args("mkfs.ocfs2"))
//!     .expect(Expect::new("blkid", ["-p", "-o", "export", "/dev/dm-3"])
//!         .stdout("TYPE=ocfs2\nLABEL=vmstore\nUUID=329e6070-f06b-425e-afc1-45816b197431\n"))
//!     .expect(Expect::new("mount", ["-t", "ocfs2", "-o", "_netdev,noatime", "/dev/dm-3", target.to_str().unwrap()]));
//!
//! let node = ClusterHost::new(&runner).with_root(root.clone());
//! let mut undo: Vec<Undo> = Vec::new();
//! undo.push(node.write_cluster_conf(&conf)?.into());
//! undo.push(node.write_o2cb_defaults(&O2cbDefaults::enabled(cl.clone()))?.into());
//! undo.push(node.register_cluster(&cl).await?.into());
//! let formatted = node.format_ocfs2(&format).await?;
//! assert_eq!(formatted.change, Change::Changed);
//! assert_eq!(formatted.uuid.as_deref(), Some("329e6070-f06b-425e-afc1-45816b197431"));
//! undo.push(formatted.into());
//! undo.push(node.mount(&mount).await?.into());
//! undo.push(node.add_fstab(&EntryId::parse("vmstore")?, &mount)?.into());
//! let fstab = std::fs::read_to_string(root.path("/etc/fstab")).unwrap();
//! assert!(fstab.ends_with(&format!("/dev/dm-3 {} ocfs2 _netdev,noatime 0 0\n", target.display())));
//! runner.verify();
//!
//! // Unwind in reverse: remove the fstab line, unmount, unregister, restore the files.
//! // (The format is kept: undo never destroys data.)
//! std::fs::write(root.path("/proc/self/mountinfo"), format!(
//!     "27 1 254:0 / / rw - ext4 /dev/vda rw\n90 27 253:3 / {} rw - ocfs2 /dev/dm-3 rw\n", target.display())).unwrap();
//! runner
//!     .expect(Expect::new("umount", [target.to_str().unwrap()]))
//!     .expect(Expect::new("o2cb", [format!("--config-file={conf_file}").as_str(), "cluster-status", "kvmcl"]))
//!     .expect(Expect::new("o2cb", [format!("--config-file={conf_file}").as_str(), "unregister-cluster", "kvmcl"]));
//! for u in undo.iter().rev() {
//!     node.undo(u).await?;
//! }
//! runner.verify();
//! assert!(!root.path("/etc/ocfs2/cluster.conf").exists());
//! assert!(!root.path("/etc/default/o2cb").exists());
//! assert!(!target.exists());
//! # Ok(()) }
//! ```

pub mod device;
pub mod error;
pub mod gfs2;
pub mod host;
pub mod names;
pub mod ocfs2;

pub use device::{Identity, Signature, TargetDevice};
pub use error::{Error, Result};
pub use host::{ClusterHost, ClusterMount, FsKind, Undo};
pub use names::{ClusterName, FsName, Label, LockTable, NodeName};

/// Name of this layer, as used in logs and plans.
pub const LAYER: &str = "cluster-fs";
