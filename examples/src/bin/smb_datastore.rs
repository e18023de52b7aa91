//! An SMB datastore on this KVM host: plan, attach or detach it with the kvmstor facade.
//!
//! ```text
//! SMB_PASSWORD=… smb_datastore plan vmsmb --smb-user svc_kvm --smb-domain CORP
//! ONTAP_URL=https://cluster1 ONTAP_PASSWORD_FILE=/root/.ontap SMB_PASSWORD_FILE=/root/.smb \
//!     smb_datastore attach vmsmb --size 100G --smb-user svc_kvm --smb-domain CORP
//! smb_datastore detach vmsmb --smb-user svc_kvm --delete-ontap-objects
//! ```
//!
//! Attach: an NTFS volume, a CIFS share with an ACL for the account, a 0600 credentials
//! file, an SMB 3.1.1 multichannel mount (fstab) and a libvirt `dir` pool. The account's
//! password comes from `SMB_PASSWORD_FILE` or `SMB_PASSWORD`, never a flag, and never
//! appears in a plan or a journal. `attach`/`detach` need root and `mount.cifs`.

use anyhow::Context;
use clap::Parser;
use kvmstor::smb::SmbDatastore;
use kvmstor_examples::cli::{self, ConnectArgs, HostArgs, Workflow};
use ontap_client::SecretString;

#[derive(Debug, Parser)]
#[command(
    name = "smb_datastore",
    about = "Plan, attach or detach an SMB datastore"
)]
struct Args {
    #[command(subcommand)]
    cmd: Workflow,
    /// The datastore (share and libvirt pool) name.
    #[arg(global = true, default_value = "vmsmb")]
    name: String,
    /// The SVM (with a CIFS server).
    #[arg(long, global = true, default_value = "svm1")]
    svm: String,
    /// The aggregate of the new volume.
    #[arg(long, global = true, default_value = "aggr1")]
    aggregate: String,
    /// Size of the (thin) volume.
    #[arg(long, global = true, default_value = "10G", value_parser = cli::parse_size)]
    size: u64,
    /// The SMB account the host mounts as.
    #[arg(long, global = true, default_value = "svc_kvm")]
    smb_user: String,
    /// Its domain (none: a local user of the CIFS server).
    #[arg(long, global = true)]
    smb_domain: Option<String>,
    /// Detach also deletes the share and the volume (and the data).
    #[arg(long, global = true)]
    delete_ontap_objects: bool,
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(flatten)]
    host: HostArgs,
}

/// The SMB account's password: `SMB_PASSWORD_FILE` (first line), else `SMB_PASSWORD`.
fn smb_password() -> anyhow::Result<SecretString> {
    cli::secret_from_env("SMB_PASSWORD_FILE", "SMB_PASSWORD")?
        .context("set SMB_PASSWORD_FILE or SMB_PASSWORD")
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    cli::exit_code(run().await)
}

async fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    let conn = cli::connect(&args.connect, "smb_datastore").await?;

    let ds = SmbDatastore::new(&args.svm, &args.name, &args.aggregate, args.size)
        .hosts([args.host.name()])
        .account(&args.smb_user, args.smb_domain.as_deref(), smb_password()?)
        .delete_ontap_objects(args.delete_ontap_objects);
    // The password travels in the Env (and the 0600 file on the host), not in the steps.
    let env = ds.env_with_secret(&args.host.env(&conn.client));

    let saga = match args.cmd {
        Workflow::Plan | Workflow::Attach => ds.attach(&env).await?,
        Workflow::Detach => ds.detach(&env).await?,
    };
    let result = cli::plan_or_run(saga, &env, args.cmd == Workflow::Plan).await;
    conn.close().await;
    result
}
