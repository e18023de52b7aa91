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
use clap::{Parser, Subcommand};
use kvmstor::smb::SmbDatastore;
use kvmstor_examples::cli::{self, ConnectArgs, HostArgs};
use ontap_client::SecretString;

#[derive(Debug, Parser)]
#[command(
    name = "smb_datastore",
    about = "Plan, attach or detach an SMB datastore"
)]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
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

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Print what attach would do; changes nothing.
    Plan,
    /// Attach the datastore to this host.
    Attach,
    /// Detach it from this host.
    Detach,
}

/// The SMB account's password: `SMB_PASSWORD_FILE` (first line), else `SMB_PASSWORD`.
fn smb_password() -> anyhow::Result<SecretString> {
    if let Ok(path) = std::env::var("SMB_PASSWORD_FILE") {
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        return Ok(SecretString::from(
            text.lines().next().unwrap_or_default().to_owned(),
        ));
    }
    let p = std::env::var("SMB_PASSWORD").context("set SMB_PASSWORD_FILE or SMB_PASSWORD")?;
    Ok(SecretString::from(p))
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

    let result = match args.cmd {
        Cmd::Plan => cli::plan_or_run(ds.attach(&env).await?, &env, true).await,
        Cmd::Attach => cli::plan_or_run(ds.attach(&env).await?, &env, false).await,
        Cmd::Detach => cli::plan_or_run(ds.detach(&env).await?, &env, false).await,
    };
    conn.close().await;
    result
}
