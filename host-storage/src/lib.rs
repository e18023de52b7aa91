//! # host-storage
//!
//! Every host-side step of attaching ONTAP storage to a KVM host, done by code that is safe
//! to re-run and that undoes exactly what it did.
//!
//! - **Vocabulary** ([`ids`]): validated [`Iqn`], [`Nqn`], [`Wwpn`]/[`Wwnn`], [`Wwid`],
//!   [`LunSerial`] (with [`LunSerial::naa_wwid`], the ONTAP `3600a0980…` WWID), [`HostName`]
//!   and [`ConfigToken`]. Bad input is refused with [`Error::Invalid`] before anything is
//!   touched.
//! - **Commands** ([`runner`]): the narrow async [`Runner`] trait, the real [`SystemRunner`]
//!   (no shell, fixed program directories, `LC_ALL=C`, process-group kill on timeout,
//!   secrets on stdin and redacted everywhere) and the scripted [`FakeRunner`] for tests.
//! - **Parsers** ([`parse`]): pure functions over `iscsiadm`, `multipath`, `multipathd`,
//!   `dmsetup`, `nvme` output, `/proc/self/mountinfo` and identity files, tested on real
//!   captures.
//! - **NFS and SMB** ([`nfs`], [`cifs`]): validated option models rendered to a `mount -o`
//!   string, an fstab line or an autofs map entry; CIFS passwords only ever go to a 0600
//!   credentials file.
//! - **Host facts** ([`facts`], [`identity`]): distribution family and the exact packages
//!   each protocol needs ([`facts::preflight`]), the iSCSI IQN, FC ports and NVMe host NQN/ID.
//! - **Making it stick** ([`mount`], [`fstab`], [`autofs`], [`files`]): mount now, an
//!   `/etc/fstab` line, or an autofs direct map, each idempotent. Shared files are rewritten
//!   atomically and kvmstor touches only lines it marked as its own.
//! - **Block protocols**: [`iscsi`] (SendTargets discovery that creates nothing, node
//!   records and settings, CHAP and mutual CHAP written into the 0600 record file instead of
//!   argv, login to every portal, targeted scans, serial-verified paths, logout only of
//!   sessions nothing else uses), [`multipath`] (NetApp drop-in next to the administrator's
//!   `multipath.conf`, multipathd JSON, maps by WWID or serial, flush and path removal in
//!   the safe order), [`nvmeof`] (discovery, connect and connect-all over TCP with RDMA and
//!   FC addresses modelled, `discovery.conf`, native multipath, disconnect of only the
//!   controllers kvmstor created) and [`fc`] (HBAs, remote ports, targeted scans, LIP on
//!   request), all reading the kernel through [`sysfs`]; [`service`] enables `iscsid` or
//!   `multipathd`.
//! - **Waiting for devices** ([`wait`]): udev events (`udev` monitor) when a udev daemon
//!   runs, sysfs polling otherwise, always under a deadline; every device is matched by its
//!   serial, WWID, UUID or NGUID read from sysfs, never by its name.
//!
//! Every mutating call returns an undo value saying whether it changed anything
//! ([`Change`]); running it twice changes nothing the second time, and undoing a call that
//! changed nothing does nothing.
//!
//! ## Example
//!
//! An NFS datastore mounted now and made permanent in `/etc/fstab`, then rolled back, here
//! on a scratch host root with a scripted runner (on a real host: [`files::HostRoot::system`]
//! and [`SystemRunner`]):
//!
//! ```
//! use host_storage::files::{EntryId, HostRoot};
//! use host_storage::fstab::Fstab;
//! use host_storage::mount::Mounter;
//! use host_storage::nfs::{NfsMount, NfsOptions, NfsServers, NfsVersion, Recovery};
//! use host_storage::{Change, Expect, FakeRunner, HostName};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), host_storage::Error> {
//! let host = tempfile::tempdir().unwrap();
//! std::fs::create_dir(host.path().join("etc")).unwrap();
//! std::fs::write(host.path().join("mountinfo"), "27 1 254:0 / / rw - ext4 /dev/vda rw\n").unwrap();
//! let target = host.path().join("mnt/vmstore");
//!
//! // Validated before anything runs: nconnect 17 or a comma in a path would be refused here.
//! let vmstore = NfsMount::new(
//!     NfsServers::One(HostName::parse("10.0.0.5")?),
//!     "/vm_datastore",
//!     &target,
//!     NfsOptions::new(NfsVersion::V4_1).nconnect(4).recovery(Recovery::Hard).netdev(true),
//! )?;
//!
//! let runner = FakeRunner::new();
//! runner.expect(Expect::new("mount", [
//!     "-t", "nfs", "-o", "vers=4.1,nconnect=4,hard", "10.0.0.5:/vm_datastore",
//!     target.to_str().unwrap(),
//! ]));
//! let mounter = Mounter::new(&runner).with_mountinfo(host.path().join("mountinfo"));
//! let mounted = mounter.mount_nfs(&vmstore).await?;
//! assert_eq!(mounted.change, Change::Changed);
//!
//! let fstab = Fstab::new(&HostRoot::new(host.path()));
//! let id = EntryId::parse("vmstore")?;
//! let line = fstab.add_nfs(&id, &vmstore)?;
//! assert_eq!(line.change, Change::Changed);
//! assert_eq!(fstab.add_nfs(&id, &vmstore)?.change, Change::Unchanged);
//!
//! // Unwind in reverse order. (The kernel lists the mount now; on a real host
//! // /proc/self/mountinfo says so by itself.)
//! fstab.undo(&line)?;
//! assert!(fstab.owned()?.is_empty());
//! std::fs::write(
//!     host.path().join("mountinfo"),
//!     format!("812 27 0:88 / {} rw - nfs4 10.0.0.5:/vm_datastore rw\n", target.display()),
//! ).unwrap();
//! runner.expect(Expect::new("umount", [target.to_str().unwrap()]));
//! assert_eq!(mounter.undo(&mounted).await?, Change::Changed);
//! assert!(!target.exists()); // the mount point it created is gone too
//! runner.verify();
//! # Ok(()) }
//! ```

pub mod autofs;
pub mod change;
pub mod cifs;
pub mod error;
pub mod facts;
pub mod fc;
pub mod files;
pub mod fstab;
pub mod identity;
pub mod ids;
pub mod iscsi;
pub mod mount;
pub mod multipath;
pub mod nfs;
pub mod nvmeof;
pub mod parse;
pub mod runner;
pub mod service;
pub mod sysfs;
pub mod wait;

pub use change::Change;
pub use error::{Error, Format, IoOp, Result, ValueKind};
pub use ids::{ConfigToken, HostName, Iqn, LunSerial, Nqn, Wwid, Wwnn, Wwpn};
pub use runner::{Command, Exit, Expect, FakeRunner, Output, Runner, SystemRunner};

/// Name of this layer, as used in logs and plans.
pub const LAYER: &str = "host-storage";
