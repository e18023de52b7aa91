//! The kvmstor demo (`cargo xtask demo`).
//!
//! By default, the whole story on this host with the kvmstor facade
//! ([`kvmstor_examples::story`]): attach an NFS datastore, create a VM disk, snapshot,
//! clone the disk from the snapshot, attach an iSCSI datastore with OCFS2, detach both.
//! It needs root and a kernel with knfsd, LIO, iSCSI, dm-multipath and OCFS2, plus the
//! daemons: `cargo xtask demo` provides all of that in the lab guest. With `--ontap-only`
//! it runs the ONTAP-level demo instead (no host changes, works anywhere).
//!
//! ```text
//! demo                       story against an embedded simulator (kernel backend, lab seed)
//! demo --ontap-only          ONTAP-level demo against an embedded simulator (memory)
//! ONTAP_URL=https://cluster1 ONTAP_USER=admin ONTAP_PASSWORD_FILE=/run/secrets/ontap \
//!     demo --ontap-only --ca /etc/kvmstor/cluster1-ca.pem --svm svm1
//! ```
//!
//! The password of a real cluster comes only from `ONTAP_PASSWORD` or from the file named
//! by `ONTAP_PASSWORD_FILE`, never from a flag (flags show in `ps`). Logs go to stderr when
//! `RUST_LOG` is set, and are off otherwise. Exit code: 0 when every step and every cleanup
//! step succeeded, 1 when one failed, 2 when the demo could not start.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Parser;
use kvmstor_examples::story::{run_story, StoryOptions, StoryTarget};
use kvmstor_examples::{run_demo, DemoOptions, Target};
use ontap_client::{Client, SecretString};

/// kvmstor demo: NFS datastore, VM disk, snapshot, clone, iSCSI + OCFS2 datastore, detach
/// (root, lab kernel); or with --ontap-only the ONTAP-level demo: volume, export,
/// snapshot, FlexClone, file clone, LUN, igroup and map, then cleanup.
#[derive(Debug, Parser)]
#[command(name = "demo")]
struct Args {
    /// Only the ONTAP-level demo (no host changes; runs anywhere).
    #[arg(long)]
    ontap_only: bool,
    /// Cluster management URL (`https://host[:port]`); default `ONTAP_URL`, else an
    /// embedded simulator. Credentials: `ONTAP_USER` (default admin) and `ONTAP_PASSWORD`
    /// or `ONTAP_PASSWORD_FILE`.
    #[arg(long)]
    url: Option<String>,
    /// PEM file of the CA that signed the cluster's certificate (default: system trust).
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// SVM to use (default: first running SVM with NFS and iSCSI).
    #[arg(long)]
    svm: Option<String>,
    /// Aggregate for the volume (default: the SVM's with the most free space).
    #[arg(long)]
    aggregate: Option<String>,
    /// Prefix of the names of everything created.
    #[arg(long, default_value = "kvmstor_demo")]
    prefix: String,
    /// The host's iSCSI initiator name, for the igroup.
    #[arg(long)]
    host_iqn: Option<String>,
    /// The host's address, for the export rule.
    #[arg(long)]
    host_address: Option<String>,
    /// A file inside the volume to file-clone (default with the simulator: disk0.img;
    /// skipped on a real cluster unless given, as the file must exist there).
    #[arg(long, value_name = "PATH")]
    clone_file: Option<String>,
}

fn password_from_env() -> Result<SecretString> {
    if let Ok(p) = std::env::var("ONTAP_PASSWORD") {
        return Ok(SecretString::from(p));
    }
    if let Some(path) = std::env::var_os("ONTAP_PASSWORD_FILE") {
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "reading ONTAP_PASSWORD_FILE {}",
                PathBuf::from(&path).display()
            )
        })?;
        return Ok(SecretString::from(
            text.trim_end_matches(['\r', '\n']).to_owned(),
        ));
    }
    bail!("set ONTAP_PASSWORD or ONTAP_PASSWORD_FILE for a real cluster (no password flag, on purpose)")
}

/// The client for `--url` / `ONTAP_URL`, or `None` for an embedded simulator.
fn client(args: &Args) -> Result<Option<Client>> {
    let Some(url) = args.url.clone().or_else(|| std::env::var("ONTAP_URL").ok()) else {
        return Ok(None);
    };
    let user = std::env::var("ONTAP_USER").unwrap_or_else(|_| "admin".into());
    let mut builder = Client::builder(url)
        .basic_auth(user, password_from_env()?)
        .application("kvmstor-demo", env!("CARGO_PKG_VERSION"));
    let ca = args
        .ca
        .clone()
        .or_else(|| std::env::var_os("ONTAP_CA").map(PathBuf::from));
    if let Some(ca) = &ca {
        let pem =
            std::fs::read(ca).with_context(|| format!("reading the CA file {}", ca.display()))?;
        builder = builder.add_ca_pem(pem).trust_only_added_cas(true);
    }
    Ok(Some(builder.build().context("building the ONTAP client")?))
}

fn options(args: Args) -> Result<DemoOptions> {
    let client = client(&args)?;
    let real = client.is_some();
    let target = match client {
        None => Target::EmbeddedSimulator,
        Some(c) => Target::Client(c),
    };
    let mut opts = DemoOptions::new(target);
    opts.svm = args.svm;
    opts.aggregate = args.aggregate;
    opts.prefix = args.prefix;
    if let Some(iqn) = args.host_iqn {
        opts.host_iqn = iqn;
    }
    if let Some(addr) = args.host_address {
        opts.host_address = addr;
    }
    if args.clone_file.is_some() || real {
        opts.clone_file = args.clone_file;
    }
    Ok(opts)
}

/// The whole story; `--svm`, `--aggregate` and `--host-address` apply, `--prefix` only
/// when given (its default suits the ONTAP-level demo's object names).
fn story_options(args: &Args) -> Result<StoryOptions> {
    let target = match client(args)? {
        None => StoryTarget::embedded_kernel_sim(),
        Some(c) => StoryTarget::Client(c),
    };
    let mut opts = StoryOptions::new(target);
    if let Some(svm) = &args.svm {
        opts.svm = svm.clone();
    }
    if let Some(a) = &args.aggregate {
        opts.aggregate = a.clone();
    }
    if let Some(a) = &args.host_address {
        opts.address = a.clone();
    }
    if args.prefix != "kvmstor_demo" {
        opts.prefix = args.prefix.clone();
    }
    Ok(opts)
}

#[tokio::main]
async fn main() -> ExitCode {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let args = Args::parse();
    if !args.ontap_only {
        return match story_options(&args) {
            Ok(opts) => {
                if run_story(opts).await.succeeded() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                }
            }
            Err(e) => {
                eprintln!("demo: {e:#}");
                ExitCode::from(2)
            }
        };
    }
    let run = async { run_demo(options(args)?).await };
    match run.await {
        Ok(report) if report.succeeded() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(e) => {
            eprintln!("demo: {e:#}");
            ExitCode::from(2)
        }
    }
}
