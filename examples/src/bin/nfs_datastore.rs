//! An NFS datastore on this KVM host: plan, attach or detach it with the kvmstor facade.
//!
//! ```text
//! nfs_datastore plan   vmstore --size 100G           # what attach would do (embedded simulator)
//! ONTAP_URL=https://cluster1 ONTAP_PASSWORD_FILE=/root/.ontap ONTAP_CA=/etc/kvmstor/ca.pem \
//!     nfs_datastore attach vmstore --size 100G --svm svm1 --aggregate aggr1 --address 192.0.2.11
//! nfs_datastore detach vmstore --delete-ontap-objects
//! ```
//!
//! Attach: export policy with a rule for this host, a thin volume, an NFSv4.1 mount (fstab,
//! or autofs with `--autofs`) and a libvirt `dir` pool named like the datastore. Detach: the
//! pool, the fstab line and the mount; the volume only with `--delete-ontap-objects`.
//! `attach`/`detach` change this host: root, and the ONTAP LIFs reachable.

use clap::Parser;
use kvmstor::nfs::{NfsDatastore, Persist};
use kvmstor_examples::cli::{self, ConnectArgs, HostArgs, Workflow};

#[derive(Debug, Parser)]
#[command(
    name = "nfs_datastore",
    about = "Plan, attach or detach an NFS datastore"
)]
struct Args {
    #[command(subcommand)]
    cmd: Workflow,
    /// The datastore (libvirt pool) name; the volume is named like it with `_` for `-`.
    #[arg(global = true, default_value = "vmstore")]
    name: String,
    /// The SVM.
    #[arg(long, global = true, default_value = "svm1")]
    svm: String,
    /// The aggregate of the new volume.
    #[arg(long, global = true, default_value = "aggr1")]
    aggregate: String,
    /// Size of the (thin) volume.
    #[arg(long, global = true, default_value = "10G", value_parser = cli::parse_size)]
    size: u64,
    /// Mount through autofs instead of fstab.
    #[arg(long, global = true)]
    autofs: bool,
    /// Detach also deletes the volume and the export policy (and the data).
    #[arg(long, global = true)]
    delete_ontap_objects: bool,
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(flatten)]
    host: HostArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    cli::exit_code(run().await)
}

async fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    let conn = cli::connect(&args.connect, "nfs_datastore").await?;
    let env = args.host.env(&conn.client);

    // The request: one host, thin volume, mount persisted in fstab (or autofs).
    let ds = NfsDatastore::new(&args.svm, &args.name, &args.aggregate, args.size)
        .hosts([args.host.name()])
        .persist(if args.autofs {
            Persist::Autofs
        } else {
            Persist::Fstab
        })
        .delete_ontap_objects(args.delete_ontap_objects);

    // Each workflow is a saga: planned first, then run step by step; a failure unwinds.
    let saga = match args.cmd {
        Workflow::Plan | Workflow::Attach => ds.attach(&env).await?,
        Workflow::Detach => ds.detach(&env).await?,
    };
    let result = cli::plan_or_run(saga, &env, args.cmd == Workflow::Plan).await;
    conn.close().await;
    result
}
