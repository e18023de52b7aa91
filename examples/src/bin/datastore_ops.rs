//! Everyday operations on a datastore's volume with the kvmstor facade: snapshot, list,
//! lock, restore a VM disk from a snapshot, clone a VM disk from a template (ONTAP file
//! clone), FlexClone the whole datastore.
//!
//! ```text
//! datastore_ops snapshot  --volume vmstore nightly
//! datastore_ops list      --volume vmstore
//! datastore_ops lock      --volume vmstore nightly --until 2027-01-01T00:00:00Z
//! datastore_ops restore   --volume vmstore nightly vm1.qcow2 --as vm1-restored.qcow2
//! datastore_ops clone-file --volume vmstore templates/debian12.qcow2 vm7.qcow2
//! datastore_ops flexclone --volume vmstore vmstore_test --snapshot nightly
//! ```
//!
//! Paths are relative to the volume's root (the datastore's mount point). Against the
//! embedded simulator (no `ONTAP_URL`) the volume and its snapshot `nightly` are created
//! first, so every command has something to work on; file clones there accept any source. Against a real cluster the
//! volume and files must exist (`nfs_datastore attach` makes one).

use clap::{Parser, Subcommand};
use kvmstor::ops::{self, DatastoreVolume, Freeze};
use kvmstor_examples::cli::{self, ConnectArgs, HostArgs};
use ontap_client::models::{GuaranteeType, VolumeCreate};

#[derive(Debug, Parser)]
#[command(
    name = "datastore_ops",
    about = "Snapshot, list, lock, restore, clone, FlexClone"
)]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
    /// The SVM.
    #[arg(long, global = true, default_value = "svm1")]
    svm: String,
    /// The datastore's volume.
    #[arg(long, global = true, default_value = "vmstore")]
    volume: String,
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(flatten)]
    host: HostArgs,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Take a snapshot (kept as it is if one of that name exists).
    Snapshot {
        /// Snapshot name.
        name: String,
        /// Freeze these running VMs (QEMU guest agent) around the snapshot.
        #[arg(long = "freeze", value_name = "DOMAIN")]
        freeze: Vec<String>,
    },
    /// List the snapshots, oldest first.
    List,
    /// Lock a snapshot against deletion until a time (tamper-proof; cannot be undone).
    Lock {
        /// Snapshot name.
        name: String,
        /// ISO-8601 time, e.g. 2027-01-01T00:00:00Z.
        #[arg(long)]
        until: String,
    },
    /// Restore a VM disk from a snapshot (in place, or beside it with --as).
    Restore {
        /// Snapshot name.
        snapshot: String,
        /// The disk, relative to the volume root.
        file: String,
        /// Restore as this new file instead of over FILE.
        #[arg(long = "as", value_name = "FILE")]
        destination: Option<String>,
    },
    /// Clone a VM disk from a template (ONTAP file clone: shares blocks, near-instant).
    CloneFile {
        /// The template, relative to the volume root.
        template: String,
        /// The new disk (must not exist).
        disk: String,
    },
    /// FlexClone the whole volume (a new datastore to attach beside it).
    Flexclone {
        /// The clone's name.
        clone: String,
        /// From this snapshot (default: a new one ONTAP takes).
        #[arg(long)]
        snapshot: Option<String>,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    cli::exit_code(run().await)
}

async fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    let conn = cli::connect(&args.connect, "datastore_ops").await?;
    let env = args.host.env(&conn.client);
    let vol = DatastoreVolume::new(args.svm.as_str(), args.volume.as_str());

    if conn.sim.is_some() {
        // Embedded simulator: make the volume, and snapshot `nightly`, to work on.
        let body = VolumeCreate::flexvol(args.volume.as_str(), args.svm.as_str(), "aggr1")
            .size(10 << 30)
            .guarantee(GuaranteeType::None)
            .junction_path(format!("/{}", args.volume));
        conn.client.volumes().create(&body).await?;
        ops::snapshot(&env, &vol, "nightly", &Freeze::None).await?;
    }

    let result = async {
        match &args.cmd {
            Cmd::Snapshot { name, freeze } => {
                let freeze = if freeze.is_empty() {
                    Freeze::None
                } else {
                    Freeze::Domains {
                        host: args.host.name(),
                        domains: freeze.clone(),
                    }
                };
                let s = ops::snapshot(&env, &vol, name, &freeze).await?;
                println!("snapshot {} of {}", s.name, vol.path());
            }
            Cmd::List => {
                for s in ops::list_snapshots(&env, &vol).await? {
                    let locked = s.locked_until.map(|t| format!(", locked until {t}"));
                    let time = s.create_time.unwrap_or_default();
                    println!("{}  {time}{}", s.name, locked.unwrap_or_default());
                }
            }
            Cmd::Lock { name, until } => {
                let s = ops::lock_snapshot(&env, &vol, name, until).await?;
                let until = s.locked_until.unwrap_or_default();
                println!("snapshot {} of {} locked until {until}", s.name, vol.path());
            }
            Cmd::Restore {
                snapshot,
                file,
                destination: None,
            } => {
                ops::restore_file(&env, &vol, snapshot, file).await?;
                println!("{file} restored from snapshot {snapshot}");
            }
            Cmd::Restore {
                snapshot,
                file,
                destination: Some(dest),
            } => {
                ops::restore_file_as(&env, &vol, snapshot, file, dest).await?;
                println!("{file} of snapshot {snapshot} restored as {dest}");
            }
            Cmd::CloneFile { template, disk } => {
                ops::clone_file(&env, &vol, template, disk).await?;
                println!("{template} cloned to {disk} in {}", vol.path());
            }
            Cmd::Flexclone { clone, snapshot } => {
                ops::flexclone(&env, &vol, clone, snapshot.as_deref()).await?;
                let from = snapshot.as_deref().unwrap_or("a new snapshot");
                println!(
                    "FlexClone {clone} of {} from {from}, junction /{clone}",
                    vol.path()
                );
            }
        }
        anyhow::Ok(())
    }
    .await;
    conn.close().await;
    result
}
