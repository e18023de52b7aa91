//! # libvirt-pools
//!
//! Typed, idempotent libvirt storage pools and volumes over the [`virt`] crate: every ONTAP
//! datastore ends as a storage pool, every VM disk as one of its volumes.
//!
//! * [`PoolDef`] models dir, fs (ext4, xfs, ocfs2, gfs2 …), netfs (NFS with protocol version
//!   and mount options, CIFS), logical, disk, iscsi, iscsi-direct (with CHAP), mpath and scsi
//!   (`fc_host`) pools; it renders and parses libvirt pool XML. [`Protocol::pool_types`] is
//!   the support matrix, and [`PoolDef::validate_for`] turns a mismatch into
//!   [`Error::ProtocolMismatch`].
//! * [`Libvirt`] opens a connection by URI (`qemu:///system`, `qemu+ssh://host/system`,
//!   `test:///default`); each blocking libvirt call runs on tokio's blocking pool.
//! * [`Pools`] covers the lifecycle (define, build, start, autostart, refresh, info, destroy,
//!   delete, undefine) plus [`Pools::ensure`] and [`Pools::remove`], which are idempotent and
//!   report an [`Outcome`]. A pool that exists with another definition is
//!   [`Error::PoolConflict`] and is never changed.
//! * [`Volumes`] lists, creates (qcow2 or raw, sparse or preallocated, with a backing store),
//!   clones, resizes, wipes, deletes, uploads and downloads volumes.
//! * [`DiskDef`] renders the domain `<disk>` that hands a volume or a multipath LUN to a VM.
//! * Names with `/` or control characters, zero sizes and pool types that do not fit the
//!   protocol are refused before libvirt is called.
//!
//! ## Example
//!
//! Against the in-process test driver (runs as a doctest; the same code works against
//! `qemu:///system`):
//!
//! ```
//! use libvirt_pools::{
//!     Libvirt, Outcome, PoolDef, PoolName, PoolSpec, Protocol, RemoveMode, VolumeDef,
//!     VolumeFormat, VolumeName,
//! };
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), libvirt_pools::Error> {
//! let lv = Libvirt::connect("test:///default").await?;
//! let name = PoolName::new("doc-images")?;
//! let spec = PoolSpec::new(PoolDef::dir(name.clone(), "/var/lib/kvmstor/doc-images"))
//!     .for_protocol(Protocol::Local);
//! assert_eq!(lv.pools().ensure(&spec).await?, Outcome::Changed);
//! assert_eq!(lv.pools().ensure(&spec).await?, Outcome::Unchanged);
//!
//! let vols = lv.volumes(&name);
//! let disk = VolumeDef::new(VolumeName::new("vm1.qcow2")?, 1 << 30, VolumeFormat::Qcow2);
//! assert_eq!(vols.create(&disk).await?, Outcome::Changed);
//! assert_eq!(vols.list().await?[0].capacity, 1 << 30);
//!
//! // A pool type that does not fit the protocol is refused before libvirt sees it.
//! let wrong = PoolSpec::new(PoolDef::dir(PoolName::new("doc-nfs")?, "/mnt/x"))
//!     .for_protocol(Protocol::Nfs);
//! assert!(lv.pools().ensure(&wrong).await.unwrap_err().is_invalid_input());
//!
//! vols.delete(&disk.name).await?;
//! assert_eq!(lv.pools().remove(&name, RemoveMode::KeepData).await?, Outcome::Changed);
//! assert_eq!(lv.pools().remove(&name, RemoveMode::KeepData).await?, Outcome::Unchanged);
//! # Ok(())
//! # }
//! ```
//!
//! Against a real daemon: an iSCSI datastore through libiscsi with CHAP (the secret is defined
//! by `ensure` and removed by `remove`), and the `<disk>` that hands one of its LUNs to a VM:
//!
//! ```no_run
//! use libvirt_pools::{
//!     ChapAuth, DiskDef, IscsiSource, Libvirt, PoolDef, PoolName, PoolSpec, Protocol,
//!     SecretRef, VolumeFormat,
//! };
//! use secrecy::SecretString;
//!
//! # async fn demo() -> Result<(), libvirt_pools::Error> {
//! let lv = Libvirt::connect("qemu+ssh://root@kvm1.example.com/system").await?;
//! let name = PoolName::new("ds-iscsi-01")?;
//! let def = PoolDef::iscsi_direct(
//!     name.clone(),
//!     IscsiSource {
//!         host: "192.0.2.10".into(),
//!         port: None,
//!         target: "iqn.1992-08.com.netapp:sn.4082367740:vs.3".into(),
//!         initiator: Some("iqn.2024-01.com.example:kvm1".into()),
//!         auth: Some(ChapAuth {
//!             username: "kvm1".into(),
//!             secret: SecretRef::Usage("ds-iscsi-01-chap".into()),
//!         }),
//!     },
//! );
//! let spec = PoolSpec::new(def)
//!     .for_protocol(Protocol::Iscsi)
//!     .with_chap_password(SecretString::from(std::env::var("CHAP").unwrap_or_default()));
//! lv.pools().ensure(&spec).await?;
//! let lun = &lv.volumes(&name).list().await?[0];
//! let disk = DiskDef::virtio_scsi_volume(name, lun.name.clone(), "sdb", VolumeFormat::Raw);
//! println!("{}", disk.to_xml()?);
//! # Ok(())
//! # }
//! ```

mod client;
mod disk;
mod error;
mod names;
mod pool;
mod pools;
mod secrets;
mod volume;
mod volumes;
mod xml;

pub use client::{Libvirt, PoolInfo, PoolState};
pub use disk::{
    virtio_scsi_controller_xml, CacheMode, DiskBus, DiskDef, DiskDevice, DiskSource, IoMode,
};
pub use error::{Error, NameKind, NameProblem, Operation, Result, XmlProblem};
pub use names::{Outcome, PoolName, VolumeName};
pub use pool::{
    ChapAuth, DiskLabel, FsFormat, IscsiSource, NetfsFormat, Permissions, PoolDef, PoolSource,
    PoolType, Protocol, ScsiAdapter, SecretRef,
};
pub use pools::{BuildMode, PoolSpec, PoolSummary, Pools, RemoveMode};
pub use secrets::{iscsi_secret_xml, Secrets, SECRET_DESCRIPTION};
/// The `virt` crate this one is built on, for callers who need a raw call.
pub use virt;
pub use volume::{Allocation, BackingStore, VolumeDef, VolumeFormat, VolumeInfo};
pub use volumes::Volumes;

/// Name of this layer, as used in logs and plans.
pub const LAYER: &str = "libvirt-pools";
