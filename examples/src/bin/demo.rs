//! The ONTAP-level demo (`cargo xtask demo`): provisions, exports, snapshots, clones and
//! maps storage, printing each step with its duration, then cleans up everything it made.
//!
//! ```text
//! demo                                   against an embedded simulator (HTTPS, in-process)
//! ONTAP_URL=https://cluster1 ONTAP_USER=admin ONTAP_PASSWORD_FILE=/run/secrets/ontap \
//!     demo --ca /etc/kvmstor/cluster1-ca.pem --svm svm1
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
use kvmstor_examples::{run_demo, DemoOptions, Target};
use ontap_client::{Client, SecretString};

/// ONTAP-level kvmstor demo: volume, export, snapshot, FlexClone, file clone, LUN,
/// igroup and map, then cleanup.
#[derive(Debug, Parser)]
#[command(name = "demo")]
struct Args {
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

fn options(args: Args) -> Result<DemoOptions> {
    let url = args.url.or_else(|| std::env::var("ONTAP_URL").ok());
    let real = url.is_some();
    let target = match url {
        None => Target::EmbeddedSimulator,
        Some(url) => {
            let user = std::env::var("ONTAP_USER").unwrap_or_else(|_| "admin".into());
            let mut builder = Client::builder(url)
                .basic_auth(user, password_from_env()?)
                .application("kvmstor-demo", env!("CARGO_PKG_VERSION"));
            if let Some(ca) = &args.ca {
                let pem = std::fs::read(ca)
                    .with_context(|| format!("reading the CA file {}", ca.display()))?;
                builder = builder.add_ca_pem(pem);
            }
            Target::Client(builder.build().context("building the ONTAP client")?)
        }
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

#[tokio::main]
async fn main() -> ExitCode {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let args = Args::parse();
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
