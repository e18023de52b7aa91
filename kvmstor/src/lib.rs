//! # kvmstor
//!
//! The facade: transactional workflows that attach ONTAP datastores to KVM hosts and take
//! them away again, leaving either the finished result or nothing at all.
//!
//! * [`saga`]: the engine. A workflow is a linear list of typed steps ([`saga::Step`]), each
//!   with an apply and an idempotent undo. A journal (in memory, or a JSON file rewritten
//!   atomically) records each step as started before it runs; on failure the finished
//!   steps are undone in reverse; a failed undo stops the unwind with
//!   [`Error::NeedsAttention`] listing what remains; [`saga::recover`] finishes or unwinds
//!   a run interrupted by a crash. [`saga::Saga::plan`] lists every ONTAP call, host
//!   command, file line and libvirt definition first. Runs take per-target locks.
//! * [`nfs`]: NFS datastores: export policy with one rule per host, volume, mount options
//!   chosen for KVM (`vers=4.1`, `nconnect=4`, trunking over several LIFs, `hard`), mount
//!   now plus fstab, or autofs, and a libvirt `dir` or `netfs` pool; detach in the safe
//!   order, deleting ONTAP objects only when asked.
//! * [`block`]: block datastores over iSCSI, FC or NVMe/TCP, one workflow parameterised by
//!   [`block::BlockProtocol`]: LUN and igroup (or namespace and subsystem) holding every
//!   host's identity, map, login / scan / connect on every host, the device found by
//!   serial or UUID, OCFS2 made on the first host (identity checked) and mounted on all,
//!   a `dir` pool; detach in the safe order; growing; FlexClones attached beside their
//!   parent with a new OCFS2 UUID.
//! * [`smb`]: SMB datastores: NTFS (or mixed) volume, share and ACL, a 0600 credentials
//!   file per host (the password lives only in the [`Env`] and that file, never in a
//!   journal or plan), SMB 3.1.1 multichannel mount, fstab or autofs, `dir` pool.
//! * [`ops`]: everyday operations on a datastore's volume: snapshots (guests frozen through
//!   the QEMU guest agent, thaw guaranteed), listing, tamper-proof locks, disk restore from
//!   a snapshot and template clones (ONTAP file clone), FlexClones, growing, SnapMirror
//!   protection and failover.
//! * [`Env`] / [`Host`]: the ONTAP cluster and the hosts, each reached through a runner
//!   (local, or remote: a runner away) and a libvirt URI, plus named secrets.
//! * The layers below are re-exported: [`ontap`], [`host`], [`pools`], [`cluster_fs`].
//!
//! ## Example
//!
//! Attach an NFS datastore from SVM `svm1` to two hosts as pool `vmstore`, journaled to a
//! file so that a crash can be recovered:
//!
//! ```no_run
//! use std::sync::Arc;
//! use kvmstor::nfs::{NfsDatastore, Persist, PoolKind};
//! use kvmstor::saga::{recover, LockRegistry, RecoverMode, RunOutcome};
//! use kvmstor::{Env, Host};
//! use ontap_client::models::{EfficiencyMode, GIB};
//! use ontap_client::{Client, SecretString};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let ontap = Client::builder("https://cluster1.example.com")
//!     .basic_auth("admin", SecretString::from(std::env::var("ONTAP_PASSWORD")?))
//!     .build()?;
//! let env = Env::new(ontap)
//!     .host(Host::local("kvm1").address("192.0.2.101"))
//!     .host(Host::new("kvm2", Arc::new(host_storage::SystemRunner::new()))
//!         .address("192.0.2.102")
//!         .libvirt_uri("qemu+ssh://root@kvm2/system"));
//!
//! let ds = NfsDatastore::new("svm1", "vmstore", "aggr1", 500 * GIB)
//!     .hosts(["kvm1", "kvm2"])
//!     .efficiency(EfficiencyMode::Inline, EfficiencyMode::Inline)
//!     .persist(Persist::Fstab)
//!     .pool_kind(PoolKind::Dir);
//!
//! let journal = "/var/lib/kvmstor/journal/vmstore.json";
//! let saga = ds.attach(&env).await?.journal_file(journal);
//! println!("{}", saga.plan()); // every ONTAP call, command, file line and pool XML
//! match saga.run(&env).await {
//!     Ok(report) if report.outcome == RunOutcome::AlreadyApplied => println!("already attached"),
//!     Ok(report) => println!("{}", report.outcome),
//!     Err(e) if e.needs_attention() => eprintln!("{e}"),
//!     Err(e) => eprintln!("failed, nothing left behind: {e}"),
//! }
//!
//! // After a crash (another process, later):
//! let report = recover::<kvmstor::nfs::NfsStep>(
//!     journal.as_ref(), &env, RecoverMode::Unwind, LockRegistry::global()).await?;
//! println!("{}", report.outcome);
//!
//! // Detach: pools, fstab lines and mounts go; the volume stays unless asked.
//! ds.detach(&env).await?.run(&env).await?;
//! # Ok(()) }
//! ```

mod actions;
pub mod block;
mod datastore;
pub mod env;
pub mod error;
mod host_steps;
pub mod nfs;
mod ontap_steps;
pub mod ops;
pub mod saga;
pub mod smb;

pub use cluster_fs;
pub use env::{Env, Host};
pub use error::{Error, Result, StepError};
pub use host_storage as host;
pub use libvirt_pools as pools;
pub use ontap_client as ontap;

/// The ONTAP volume a datastore's pool is on unless it says otherwise: the pool's name with
/// `-` and `.` as `_` (ONTAP volume names allow letters, digits and `_`).
///
/// ```
/// assert_eq!(kvmstor::default_volume_name("vm-store.1"), "vm_store_1");
/// let ds = kvmstor::nfs::NfsDatastore::new("svm1", "vm-store.1", "aggr1", 1 << 30);
/// assert_eq!(ds.volume(), kvmstor::default_volume_name("vm-store.1"));
/// ```
pub fn default_volume_name(pool: &str) -> String {
    pool.replace(['-', '.'], "_")
}

/// Name of this layer, as used in logs and plans.
pub const LAYER: &str = "kvmstor";
