//! A block datastore on this KVM host: a LUN (iSCSI, FC) or namespace (NVMe/TCP) with a
//! cluster file system (OCFS2 or GFS2) as a libvirt `dir` pool; plan, attach or detach.
//!
//! ```text
//! block_datastore plan   vmblock --protocol iscsi --fs ocfs2 --host-root /tmp/fakehost
//! ONTAP_URL=https://cluster1 ONTAP_PASSWORD_FILE=/root/.ontap \
//!     block_datastore attach vmblock --protocol nvme --size 100G --address 192.0.2.11
//! block_datastore detach vmblock --protocol nvme --delete-ontap-objects
//! ```
//!
//! Attach: volume, LUN and igroup (or namespace and subsystem) with this host's identity
//! (`/etc/iscsi/initiatorname.iscsi`, online FC HBA ports, `/etc/nvme/hostnqn`), the map,
//! multipath and login (or NVMe connect), the device found by serial or UUID, the cluster
//! (o2cb, or corosync + DLM for GFS2), mkfs, mount, fstab and the pool. Detach reverses it.
//! `attach`/`detach` need root, the initiator tools, dm-multipath and the cluster stack.

use clap::{Parser, ValueEnum};
use kvmstor::block::{BlockDatastore, BlockProtocol};
use kvmstor_examples::cli::{self, ConnectArgs, HostArgs, Workflow};

#[derive(Debug, Parser)]
#[command(
    name = "block_datastore",
    about = "Plan, attach or detach a block datastore"
)]
struct Args {
    #[command(subcommand)]
    cmd: Workflow,
    /// The datastore (libvirt pool) name.
    #[arg(global = true, default_value = "vmblock")]
    name: String,
    /// How the host reaches the disk.
    #[arg(long, global = true, value_enum, default_value = "iscsi")]
    protocol: Protocol,
    /// The cluster file system.
    #[arg(long, global = true, value_enum, default_value = "ocfs2")]
    fs: Fs,
    /// The SVM.
    #[arg(long, global = true, default_value = "svm1")]
    svm: String,
    /// The aggregate of the new volume.
    #[arg(long, global = true, default_value = "aggr1")]
    aggregate: String,
    /// Size of the LUN or namespace (the volume is 10% larger).
    #[arg(long, global = true, default_value = "10G", value_parser = cli::parse_size)]
    size: u64,
    /// Detach also deletes the igroup or subsystem, the disk and the volume (and the data).
    #[arg(long, global = true)]
    delete_ontap_objects: bool,
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(flatten)]
    host: HostArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Protocol {
    Iscsi,
    Fc,
    Nvme,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Fs {
    Ocfs2,
    Gfs2,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    cli::exit_code(run().await)
}

async fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    let conn = cli::connect(&args.connect, "block_datastore").await?;
    let env = args.host.env(&conn.client);

    let protocol = match args.protocol {
        Protocol::Iscsi => BlockProtocol::Iscsi,
        Protocol::Fc => BlockProtocol::Fcp,
        Protocol::Nvme => BlockProtocol::NvmeTcp,
    };
    let mut ds = BlockDatastore::new(protocol, &args.svm, &args.name, &args.aggregate, args.size)
        .hosts([args.host.name()])
        .delete_ontap_objects(args.delete_ontap_objects);
    if matches!(args.fs, Fs::Gfs2) {
        ds = ds.gfs2();
    }

    let saga = match args.cmd {
        Workflow::Plan | Workflow::Attach => ds.attach(&env).await?,
        Workflow::Detach => ds.detach(&env).await?,
    };
    let result = cli::plan_or_run(saga, &env, args.cmd == Workflow::Plan).await;
    conn.close().await;
    result
}
