//! The library side of `kvmstor-cli`, shared with the Python bindings (`examples/python`):
//!
//! * [`endpoint`]: how to reach ONTAP (URL, user, password source, CA, client certificate)
//!   and building the [`ontap_client::Client`] from it;
//! * [`world`]: plain values (flags, Python arguments) to the facade's environment and
//!   NFS, SMB and block datastores;
//! * [`simhost`]: a host whose side is *simulated*: its files live under a scratch root
//!   and a fake kernel ([`simhost::SimKernelRunner`]) plays `mount` / `umount`, iSCSI,
//!   SCSI scans, multipath, NVMe/TCP and the cluster file-system tools on that root (a
//!   synthetic sysfs showing what ONTAP maps to the host), with libvirt's
//!   `test:///default`. It lets the tools run end to end on a machine without storage
//!   clients (tests, demos); ONTAP is still driven for real;
//! * [`report`]: what the tools print: stable JSON documents for outcomes and errors, the
//!   exit code of an error ([`report::ExitKind`]).
//!
//! ```no_run
//! use kvmstor_cli::endpoint::{Endpoint, PasswordSource};
//! # async fn run() -> anyhow::Result<()> {
//! let ep = Endpoint::new("https://cluster1.example.com")
//!     .password(PasswordSource::Env("KVMSTOR_ONTAP_PASSWORD".into()));
//! let client = ep.connect()?;
//! # let _ = client; Ok(()) }
//! ```

pub mod endpoint;
pub mod report;
pub mod simhost;
pub mod world;
