//! `kvmstor-cli`: plan, attach, detach, status, snapshot and clone NFS, SMB and block
//! (iSCSI, FC, NVMe/TCP with OCFS2 or GFS2) datastores from the shell, over the kvmstor
//! facade.
//!
//! Exit codes: 0 done; 1 failed, rolled back cleanly (nothing left behind); 2 needs
//! attention (an undo failed, steps remain applied); 64 usage error. `--json` prints one
//! JSON document on stdout; progress goes to stderr, one line per step.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use kvmstor::block::BlockStep;
use kvmstor::nfs::NfsStep;
use kvmstor::ops::{self, DatastoreVolume, Freeze};
use kvmstor::saga::{recover, Journal, JournalDoc, LockRegistry, RecoverMode, Saga, Step};
use kvmstor::smb::SmbStep;
use kvmstor::Env;
use kvmstor_cli::endpoint::{
    resolve_secret, ConfigFile, Endpoint, PasswordSource, PASSWORD_ENV, SMB_PASSWORD_ENV,
};
use kvmstor_cli::report::{chain, error_json, report_json, ExitKind};
use kvmstor_cli::world::{
    self, parse_size, AclSpec, BlockSpec, HostMode, HostSpec, NfsSpec, SmbSpec, WorldError,
};
use ontap_client::Query;
use serde_json::{json, Value};

/// Attach ONTAP datastores (NFS, SMB, or block with a cluster file system) to KVM hosts,
/// transactionally.
#[derive(Debug, Parser)]
#[command(name = "kvmstor-cli", version)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Args)]
struct Global {
    /// JSON config file (url, username, password_file, password_env, ca_file, cert_file,
    /// key_file, journal_dir); flags override it.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// ONTAP base URL, e.g. https://cluster1.example.com.
    #[arg(long, global = true)]
    url: Option<String>,
    /// ONTAP user.
    #[arg(long, global = true)]
    username: Option<String>,
    /// Read the ONTAP password from this file (first line).
    #[arg(long, global = true)]
    password_file: Option<PathBuf>,
    /// Read the ONTAP password from this environment variable (default
    /// KVMSTOR_ONTAP_PASSWORD; without either, prompt).
    #[arg(long, global = true)]
    password_env: Option<String>,
    /// Trust only this CA (PEM).
    #[arg(long, global = true)]
    ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for certificate authentication.
    #[arg(long, global = true)]
    cert_file: Option<PathBuf>,
    /// Key (PEM) of the client certificate.
    #[arg(long, global = true)]
    key_file: Option<PathBuf>,
    /// Where run journals live (default /var/lib/kvmstor/journal).
    #[arg(long, global = true)]
    journal_dir: Option<PathBuf>,
    /// Print one JSON document on stdout.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Show every ONTAP call, host command, file line and pool definition, changing nothing.
    Plan {
        /// Plan the detach instead of the attach.
        #[arg(long)]
        detach: bool,
        #[command(flatten)]
        ds: DatastoreArgs,
    },
    /// Attach a datastore (rolled back on failure).
    Attach {
        #[command(flatten)]
        ds: DatastoreArgs,
    },
    /// Detach a datastore.
    Detach {
        #[command(flatten)]
        ds: DatastoreArgs,
    },
    /// Finish or unwind the datastore's interrupted or needs-attention run (its journal),
    /// after fixing the cause. Give the same datastore options as to attach or detach.
    Recover {
        /// unwind (undo every applied step: a clean slate) or resume (apply the rest).
        #[arg(long, value_enum, default_value = "unwind")]
        mode: Mode,
        #[command(flatten)]
        ds: DatastoreArgs,
    },
    /// The datastore's last run (journal) and its ONTAP volume.
    Status {
        /// Pool name.
        #[arg(long)]
        name: String,
        /// SVM.
        #[arg(long, default_value = "svm1")]
        svm: String,
        /// Volume (default: the one the last run's journal names, else the pool's name with
        /// - and . as _).
        #[arg(long)]
        volume: Option<String>,
    },
    /// Take (or list) snapshots of a datastore's volume.
    Snapshot {
        /// SVM.
        #[arg(long, default_value = "svm1")]
        svm: String,
        /// Volume.
        #[arg(long)]
        volume: String,
        /// Snapshot name; without it, list the snapshots.
        snapshot: Option<String>,
    },
    /// Clone a VM disk inside a datastore's volume (ONTAP file clone: NFS, SMB), or with
    /// --as the whole volume (FlexClone: any kind; attach a block one with its new name).
    Clone {
        /// SVM.
        #[arg(long, default_value = "svm1")]
        svm: String,
        /// Volume.
        #[arg(long)]
        volume: String,
        /// FlexClone the volume as this new volume instead of cloning a file.
        #[arg(long = "as", value_name = "NEW_VOLUME", conflicts_with_all = ["template", "disk"])]
        flexclone: Option<String>,
        /// With --as: clone from this snapshot (default: a new one ONTAP takes).
        #[arg(long, requires = "flexclone")]
        snapshot: Option<String>,
        /// Template disk, relative to the volume root.
        #[arg(required_unless_present = "flexclone")]
        template: Option<String>,
        /// New disk, relative to the volume root.
        #[arg(required_unless_present = "flexclone")]
        disk: Option<String>,
    },
}

/// How `recover` treats the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Undo every step that may have been applied.
    Unwind,
    /// Apply the remaining steps.
    Resume,
}

/// What a datastore is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Kind {
    /// An exported volume mounted over NFS.
    Nfs,
    /// A volume shared over SMB 3.1.1 (multichannel), mounted with a credentials file.
    Smb,
    /// A LUN or NVMe namespace with a cluster file system (OCFS2, GFS2).
    Block,
}

#[derive(Debug, Args)]
struct DatastoreArgs {
    /// nfs, smb or block.
    #[arg(long, value_enum, default_value = "nfs")]
    kind: Kind,
    /// Pool (datastore) name.
    #[arg(long)]
    name: String,
    /// SVM.
    #[arg(long, default_value = "svm1")]
    svm: String,
    /// Aggregate.
    #[arg(long, default_value = "aggr1")]
    aggregate: String,
    /// Volume size (e.g. 500G); for block, the disk's (the volume is 10% larger).
    #[arg(long, default_value = "100G", value_parser = parse_size_arg)]
    size: u64,
    /// NFS: volume name (default: the pool's name with - as _).
    #[arg(long)]
    volume: Option<String>,
    /// A host, NAME=ADDRESS (repeatable).
    #[arg(long = "host", required = true)]
    hosts: Vec<HostSpec>,
    /// Mount point.
    #[arg(long)]
    mount_point: Option<PathBuf>,
    /// NFS, SMB: fstab or autofs.
    #[arg(long, default_value = "fstab")]
    persist: String,
    /// NFS: dir or netfs.
    #[arg(long, default_value = "dir")]
    pool_kind: String,
    /// Detach: delete the ONTAP objects too (export policy or share or igroup/subsystem,
    /// disk, volume: the data).
    #[arg(long)]
    delete_ontap_objects: bool,
    /// SMB: the account the hosts mount as (the share's ACL gives it full control).
    #[arg(long, value_name = "USER")]
    smb_user: Option<String>,
    /// SMB: the account's domain.
    #[arg(long, value_name = "DOMAIN")]
    smb_domain: Option<String>,
    /// SMB: read the account's password from this file (first line).
    #[arg(long, value_name = "FILE")]
    smb_password_file: Option<PathBuf>,
    /// SMB: read the account's password from this environment variable (default
    /// KVMSTOR_SMB_PASSWORD; without either, attach prompts).
    #[arg(long, value_name = "VAR")]
    smb_password_env: Option<String>,
    /// SMB: mixed security style (NFS clients share the volume) instead of NTFS.
    #[arg(long)]
    mixed_security: bool,
    /// SMB: encryption (seal).
    #[arg(long)]
    encrypt: bool,
    /// SMB: multichannel channels (0: off).
    #[arg(long)]
    max_channels: Option<u8>,
    /// SMB: the share's name (default: the pool's).
    #[arg(long, value_name = "NAME")]
    share_name: Option<String>,
    /// SMB: one more share ACL entry beside the account's full control, WHO=PERMISSION or
    /// WHO:KIND=PERMISSION (KIND windows, unix_user or unix_group; PERMISSION no_access,
    /// read, change or full_control); repeatable.
    #[arg(long, value_name = "ACL")]
    share_acl: Vec<String>,
    /// Block: iscsi, fc or nvme (NVMe/TCP).
    #[arg(long, default_value = "iscsi")]
    protocol: String,
    /// Block: ocfs2 or gfs2.
    #[arg(long, default_value = "ocfs2")]
    fs: String,
    /// Block: the o2cb (or corosync) cluster name (default kvmstor).
    #[arg(long)]
    cluster: Option<String>,
    /// Block: thick provisioning.
    #[arg(long)]
    thick: bool,
    /// Block: seconds each host waits for the disk's device (default 60).
    #[arg(long, value_name = "SECONDS")]
    device_wait: Option<u64>,
    /// libvirt URI of the (local) host.
    #[arg(long, default_value = "qemu:///system")]
    libvirt_uri: String,
    /// Simulate the host side: host NAME's files live under DIR/NAME, mount and umount
    /// only edit DIR/NAME/proc/self/mountinfo, libvirt is test:///default. ONTAP is real.
    #[arg(long, value_name = "DIR")]
    sim_host_root: Option<PathBuf>,
}

fn parse_size_arg(s: &str) -> Result<u64, String> {
    parse_size(s).map_err(|e| e.to_string())
}

/// A failure with its exit kind and JSON.
struct Failure {
    exit: ExitKind,
    json: Value,
    text: String,
}

impl Failure {
    fn usage(msg: impl Into<String>) -> Failure {
        let text = msg.into();
        Failure {
            exit: ExitKind::Usage,
            json: json!({"kind": "usage", "message": text, "rollback": "none"}),
            text,
        }
    }

    fn other(e: &anyhow::Error) -> Failure {
        let text = format!("{e:#}");
        Failure {
            exit: ExitKind::RolledBack,
            json: json!({"kind": "error", "message": text, "rollback": "none"}),
            text,
        }
    }

    fn workflow(e: &kvmstor::Error) -> Failure {
        let exit = ExitKind::of(e);
        let mut text = chain(e);
        match e {
            kvmstor::Error::StepFailed { .. } => {
                text.push_str("\nrolled back cleanly: nothing left behind")
            }
            kvmstor::Error::NeedsAttention { remaining, .. } => text.push_str(&format!(
                "\nNEEDS ATTENTION: still applied: {}; fix the cause, then run `kvmstor-cli recover` with the same options",
                remaining.join(", ")
            )),
            _ => {}
        }
        Failure {
            exit,
            json: error_json(e),
            text,
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Failure {
        match e.downcast_ref::<kvmstor::Error>() {
            Some(w) => Failure::workflow(w),
            None => Failure::other(&e),
        }
    }
}

fn command_name(c: &Cmd) -> &'static str {
    match c {
        Cmd::Plan { .. } => "plan",
        Cmd::Attach { .. } => "attach",
        Cmd::Detach { .. } => "detach",
        Cmd::Recover { .. } => "recover",
        Cmd::Status { .. } => "status",
        Cmd::Snapshot { .. } => "snapshot",
        Cmd::Clone { .. } => "clone",
    }
}

struct Ctx {
    endpoint: Endpoint,
    journal_dir: PathBuf,
}

fn context(g: &Global) -> Result<Ctx, Failure> {
    let file = match &g.config {
        Some(p) => ConfigFile::read(p).map_err(|e| Failure::usage(chain(&e)))?,
        None => ConfigFile::default(),
    };
    let url = g.url.clone().or(file.url).ok_or_else(|| {
        Failure::usage("no ONTAP endpoint: give --url or a config file with \"url\"")
    })?;
    let mut ep = Endpoint::new(url);
    if let Some(u) = g.username.clone().or(file.username) {
        ep.username = u;
    }
    ep.password = match (
        &g.password_file,
        &g.password_env,
        file.password_file,
        file.password_env,
    ) {
        (Some(p), _, _, _) => PasswordSource::File(p.clone()),
        (None, Some(v), _, _) => PasswordSource::Env(v.clone()),
        (None, None, Some(p), _) => PasswordSource::File(p),
        (None, None, None, Some(v)) => PasswordSource::Env(v),
        (None, None, None, None) => {
            let cert = g.cert_file.is_some() || file.cert_file.is_some();
            if std::env::var_os(PASSWORD_ENV).is_some() {
                PasswordSource::Env(PASSWORD_ENV.into())
            } else if cert {
                PasswordSource::None
            } else {
                PasswordSource::Prompt
            }
        }
    };
    ep.ca_file = g.ca_file.clone().or(file.ca_file);
    ep.cert_file = g.cert_file.clone().or(file.cert_file);
    ep.key_file = g.key_file.clone().or(file.key_file);
    Ok(Ctx {
        endpoint: ep,
        journal_dir: g
            .journal_dir
            .clone()
            .or(file.journal_dir)
            .unwrap_or_else(|| PathBuf::from("/var/lib/kvmstor/journal")),
    })
}

fn nfs_spec(ds: &DatastoreArgs) -> NfsSpec {
    NfsSpec {
        svm: ds.svm.clone(),
        name: ds.name.clone(),
        aggregate: ds.aggregate.clone(),
        size: ds.size,
        hosts: ds.hosts.iter().map(|h| h.name.clone()).collect(),
        volume: ds.volume.clone(),
        mount_point: ds.mount_point.clone(),
        persist: ds.persist.clone(),
        pool_kind: ds.pool_kind.clone(),
        delete_ontap_objects: ds.delete_ontap_objects,
    }
}

/// Flags of one kind given to another are refused rather than ignored.
fn check_kind(ds: &DatastoreArgs) -> Result<(), Failure> {
    let smb = ds.smb_user.is_some()
        || ds.smb_domain.is_some()
        || ds.smb_password_file.is_some()
        || ds.smb_password_env.is_some()
        || ds.mixed_security
        || ds.encrypt
        || ds.max_channels.is_some()
        || ds.share_name.is_some()
        || !ds.share_acl.is_empty();
    let block = ds.protocol != "iscsi"
        || ds.fs != "ocfs2"
        || ds.cluster.is_some()
        || ds.thick
        || ds.device_wait.is_some();
    let nfs = ds.volume.is_some() || ds.pool_kind != "dir";
    let wrong = match ds.kind {
        Kind::Nfs if smb || block => Some("SMB or block options"),
        Kind::Smb if block || nfs => Some("block or NFS options"),
        Kind::Block if smb || nfs || ds.persist != "fstab" => Some("SMB or NFS options"),
        _ => None,
    };
    match wrong {
        Some(w) => Err(Failure::usage(format!(
            "{w} given for a {} datastore",
            kind_name(ds.kind)
        ))),
        None => Ok(()),
    }
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Nfs => "nfs",
        Kind::Smb => "smb",
        Kind::Block => "block",
    }
}

/// The SMB account's password: the file, the variable (given, or KVMSTOR_SMB_PASSWORD if
/// set), else a prompt when `prompt` (attach), else none.
fn smb_password(
    ds: &DatastoreArgs,
    prompt: bool,
) -> Result<Option<ontap_client::SecretString>, Failure> {
    let source = match (&ds.smb_password_file, &ds.smb_password_env) {
        (Some(p), _) => PasswordSource::File(p.clone()),
        (None, Some(v)) => PasswordSource::Env(v.clone()),
        (None, None) if std::env::var_os(SMB_PASSWORD_ENV).is_some() => {
            PasswordSource::Env(SMB_PASSWORD_ENV.into())
        }
        (None, None) if prompt => PasswordSource::Prompt,
        (None, None) => PasswordSource::None,
    };
    let user = ds.smb_user.as_deref().unwrap_or_default();
    resolve_secret(&source, &format!("SMB password for {user}: "))
        .map_err(|e| Failure::usage(chain(&e)))
}

fn smb_spec(ds: &DatastoreArgs, prompt: bool) -> Result<SmbSpec, Failure> {
    let Some(user) = ds.smb_user.clone() else {
        return Err(Failure::usage("an SMB datastore needs --smb-user"));
    };
    Ok(SmbSpec {
        svm: ds.svm.clone(),
        name: ds.name.clone(),
        aggregate: ds.aggregate.clone(),
        size: ds.size,
        hosts: ds.hosts.iter().map(|h| h.name.clone()).collect(),
        mount_point: ds.mount_point.clone(),
        persist: ds.persist.clone(),
        username: user,
        domain: ds.smb_domain.clone(),
        password: smb_password(ds, prompt)?,
        mixed_security: ds.mixed_security,
        encryption: ds.encrypt,
        max_channels: ds.max_channels,
        delete_ontap_objects: ds.delete_ontap_objects,
        share_name: ds.share_name.clone(),
        share_acls: ds
            .share_acl
            .iter()
            .map(|a| AclSpec::parse(a))
            .collect::<Result<_, _>>()
            .map_err(|e| Failure::usage(e.to_string()))?,
    })
}

fn block_spec(ds: &DatastoreArgs) -> BlockSpec {
    BlockSpec {
        protocol: ds.protocol.clone(),
        fs: ds.fs.clone(),
        svm: ds.svm.clone(),
        name: ds.name.clone(),
        aggregate: ds.aggregate.clone(),
        size: ds.size,
        hosts: ds.hosts.iter().map(|h| h.name.clone()).collect(),
        mount_point: ds.mount_point.clone(),
        cluster: ds.cluster.clone(),
        thick: ds.thick,
        device_wait: ds.device_wait.map(std::time::Duration::from_secs),
        delete_ontap_objects: ds.delete_ontap_objects,
    }
}

fn usage_of(e: &WorldError) -> Failure {
    Failure::usage(chain(e))
}

/// What to do with a built saga.
enum Act<'a> {
    Plan,
    Run(&'a std::path::Path),
    /// Recover the run in this journal instead (the saga only gives its step type).
    Recover(&'a std::path::Path, RecoverMode),
}

/// Plans or runs `saga`: the plan's JSON and text, or the run report's.
async fn finish<S: Step<Env = Env>>(
    saga: Saga<S>,
    env: &Env,
    act: &Act<'_>,
) -> Result<(Value, String), Failure> {
    match act {
        Act::Plan => {
            let plan = saga.plan();
            let text = plan.to_string();
            Ok((serde_json::to_value(&plan).unwrap_or(Value::Null), text))
        }
        Act::Run(journal) => {
            let report = saga
                .journal_file(journal)
                .run(env)
                .await
                .map_err(|e| Failure::workflow(&e))?;
            let mut v = report_json(&report);
            v["journal"] = json!(journal.display().to_string());
            let text = report.outcome.to_string();
            Ok((v, text))
        }
        Act::Recover(journal, mode) => {
            drop(saga);
            let report = recover::<S>(journal, env, *mode, LockRegistry::global())
                .await
                .map_err(|e| Failure::workflow(&e))?;
            let mut v = report_json(&report);
            v["journal"] = json!(journal.display().to_string());
            Ok((v, report.outcome.to_string()))
        }
    }
}

/// The attach (`attach`) or detach saga of datastore `d` over `env`: one body for the three
/// datastore types, which share no trait.
macro_rules! saga_of {
    ($d:expr, $env:expr, $attach:expr) => {
        if $attach {
            $d.attach($env).await
        } else {
            $d.detach($env).await
        }
        .map_err(|e| Failure::workflow(&e))
    };
}

/// Builds the datastore of `ds` and its environment, then plans or runs the attach
/// (`attach`) or the detach.
async fn datastore_work(
    client: ontap_client::Client,
    ds: &DatastoreArgs,
    attach: bool,
    act: Act<'_>,
) -> Result<(Value, String), Failure> {
    check_kind(ds)?;
    let root = sim_root(ds);
    match ds.kind {
        Kind::Nfs => {
            let env = world::env(client, &ds.hosts, &mode(ds)).map_err(|e| usage_of(&e))?;
            let d = nfs_spec(ds)
                .datastore(root.as_deref())
                .map_err(|e| usage_of(&e))?;
            finish(saga_of!(d, &env, attach)?, &env, &act).await
        }
        Kind::Smb => {
            let prompt = attach && matches!(act, Act::Run(_));
            let spec = smb_spec(ds, prompt)?;
            let d = spec.datastore(root.as_deref()).map_err(|e| usage_of(&e))?;
            let env = world::env(client, &ds.hosts, &mode(ds)).map_err(|e| usage_of(&e))?;
            let env = spec.env(&d, &env);
            finish(saga_of!(d, &env, attach)?, &env, &act).await
        }
        Kind::Block => {
            let spec = block_spec(ds);
            let d = spec.datastore(root.as_deref()).map_err(|e| usage_of(&e))?;
            let w = world::block_env(client, &ds.hosts, &mode(ds), d.protocol(), &ds.svm)
                .await
                .map_err(|e| match e {
                    WorldError::FcTargets { .. } => Failure::other(&anyhow::Error::new(e)),
                    e => usage_of(&e),
                })?;
            finish(saga_of!(d, &w.env, attach)?, &w.env, &act).await
        }
    }
}

/// A past run, read from its journal.
struct PastRun {
    workflow: String,
    run_id: String,
    status: String,
    steps: Value,
    /// The ONTAP volume the run created or deleted, when it has such a step.
    volume: Option<String>,
}

/// The journal of a past run, whatever the datastore's kind.
fn read_journal(path: &std::path::Path) -> Result<PastRun, Failure> {
    fn typed<S: Step>(
        path: &std::path::Path,
        volume_of: fn(&S) -> Option<String>,
    ) -> Result<PastRun, Failure> {
        let doc: JournalDoc<S> = Journal::<S>::read(path).map_err(|e| Failure::workflow(&e))?;
        Ok(PastRun {
            workflow: doc.workflow.clone(),
            run_id: doc.run_id.to_string(),
            status: doc.status.to_string(),
            steps: kvmstor_cli::report::steps_json(&doc),
            volume: doc.steps.iter().find_map(|e| volume_of(&e.step)),
        })
    }
    let raw: Value = std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    let workflow = raw["workflow"].as_str().unwrap_or_default();
    if workflow.starts_with("nfs-") {
        typed::<NfsStep>(path, |s| match s {
            NfsStep::CreateVolume { volume, .. } => Some(volume.name.clone()),
            NfsStep::DeleteVolume { name, .. } => Some(name.clone()),
            _ => None,
        })
    } else if workflow.starts_with("smb-") {
        typed::<SmbStep>(path, |s| match s {
            SmbStep::CreateVolume { volume, .. } => Some(volume.name.clone()),
            SmbStep::DeleteVolume { name, .. } => Some(name.clone()),
            _ => None,
        })
    } else {
        typed::<BlockStep>(path, |s| match s {
            BlockStep::CreateVolume { volume, .. } => Some(volume.name.clone()),
            BlockStep::DeleteVolume { name, .. } => Some(name.clone()),
            _ => None,
        })
    }
}

/// The simulated hosts' root, absolute (mount points and fstab lines need absolute paths).
fn sim_root(ds: &DatastoreArgs) -> Option<PathBuf> {
    ds.sim_host_root
        .as_ref()
        .map(|r| std::path::absolute(r).unwrap_or_else(|_| r.clone()))
}

fn mode(ds: &DatastoreArgs) -> HostMode {
    match sim_root(ds) {
        Some(root) => HostMode::Simulated { root },
        None => HostMode::Local {
            libvirt_uri: ds.libvirt_uri.clone(),
        },
    }
}

/// Runs the command; returns the JSON result and the human text.
async fn run(cli: &Cli) -> Result<(Value, String), Failure> {
    let ctx = context(&cli.global)?;
    // Nothing is sent yet: every failure here is the endpoint's configuration (a missing
    // file or variable, half a client identity, an unreadable PEM).
    let client = ctx
        .endpoint
        .connect()
        .map_err(|e| Failure::usage(format!("ONTAP endpoint: {}", chain(&e))))?;
    match &cli.command {
        Cmd::Plan { detach, ds } => datastore_work(client, ds, !*detach, Act::Plan).await,
        Cmd::Attach { ds } | Cmd::Detach { ds } => {
            let attach = matches!(cli.command, Cmd::Attach { .. });
            std::fs::create_dir_all(&ctx.journal_dir)
                .with_context(|| format!("creating {}", ctx.journal_dir.display()))
                .map_err(Failure::from)?;
            let journal = ctx.journal_dir.join(format!("{}.json", ds.name));
            let (v, outcome) = datastore_work(client, ds, attach, Act::Run(&journal)).await?;
            let text = format!(
                "{} {} datastore {}: {outcome}",
                if attach { "attached" } else { "detached" },
                kind_name(ds.kind),
                ds.name,
            );
            Ok((v, text))
        }
        Cmd::Recover { mode, ds } => {
            let journal = ctx.journal_dir.join(format!("{}.json", ds.name));
            if !journal.exists() {
                return Err(Failure::usage(format!(
                    "no journal {}: nothing to recover",
                    journal.display()
                )));
            }
            let mode = match mode {
                Mode::Unwind => RecoverMode::Unwind,
                Mode::Resume => RecoverMode::Resume,
            };
            let (v, outcome) =
                datastore_work(client, ds, true, Act::Recover(&journal, mode)).await?;
            Ok((
                v,
                format!(
                    "recovered {} datastore {}: {outcome}",
                    kind_name(ds.kind),
                    ds.name
                ),
            ))
        }
        Cmd::Status { name, svm, volume } => {
            let journal = ctx.journal_dir.join(format!("{name}.json"));
            let run = if journal.exists() {
                Some(read_journal(&journal)?)
            } else {
                None
            };
            let vol_name = volume
                .clone()
                .or_else(|| run.as_ref().and_then(|r| r.volume.clone()))
                .unwrap_or_else(|| kvmstor::default_volume_name(name));
            let vol = client
                .volumes()
                .find(
                    &Query::new()
                        .filter("svm.name", svm.as_str())
                        .filter("name", vol_name.as_str())
                        .fields(["uuid", "name", "size", "state"]),
                )
                .await
                .with_context(|| format!("reading volume {svm}/{vol_name}"))
                .map_err(Failure::from)?;
            let mut text = String::new();
            let run_json = match &run {
                Some(PastRun {
                    workflow,
                    run_id,
                    status,
                    steps,
                    ..
                }) => {
                    text.push_str(&format!("last run: {workflow} ({status})\n"));
                    for s in steps.as_array().into_iter().flatten() {
                        text.push_str(&format!(
                            "  {:<12} {}\n",
                            s["state"].as_str().unwrap_or("?"),
                            s["label"].as_str().unwrap_or("?")
                        ));
                    }
                    json!({"workflow": workflow, "run_id": run_id,
                           "status": status, "steps": steps})
                }
                None => {
                    text.push_str("no journal\n");
                    Value::Null
                }
            };
            let vol_json = match &vol {
                Some(v) => {
                    text.push_str(&format!(
                        "volume {svm}/{vol_name}: {} bytes\n",
                        v.size.unwrap_or(0)
                    ));
                    json!({"name": vol_name, "uuid": v.uuid, "size": v.size})
                }
                None => {
                    text.push_str(&format!("volume {svm}/{vol_name}: absent\n"));
                    Value::Null
                }
            };
            Ok((
                json!({"name": name, "journal": journal.display().to_string(), "run": run_json, "volume": vol_json}),
                text.trim_end().to_owned(),
            ))
        }
        Cmd::Snapshot {
            svm,
            volume,
            snapshot,
        } => {
            let env = kvmstor::Env::new(client);
            let vol = DatastoreVolume::new(svm.clone(), volume.clone());
            match snapshot {
                Some(name) => {
                    let s = ops::snapshot(&env, &vol, name, &Freeze::None)
                        .await
                        .map_err(|e| Failure::workflow(&e))?;
                    let text = format!("snapshot {} of {}: {}", s.name, vol.path(), s.uuid);
                    Ok((serde_json::to_value(&s).unwrap_or(Value::Null), text))
                }
                None => {
                    let list = ops::list_snapshots(&env, &vol)
                        .await
                        .map_err(|e| Failure::workflow(&e))?;
                    let text = list
                        .iter()
                        .map(|s| s.name.clone())
                        .collect::<Vec<_>>()
                        .join("\n");
                    Ok((json!({"snapshots": list}), text))
                }
            }
        }
        Cmd::Clone {
            svm,
            volume,
            flexclone,
            snapshot,
            template,
            disk,
        } => {
            let env = kvmstor::Env::new(client);
            let vol = DatastoreVolume::new(svm.clone(), volume.clone());
            if let Some(clone) = flexclone {
                let uuid = ops::flexclone(&env, &vol, clone, snapshot.as_deref())
                    .await
                    .map_err(|e| Failure::workflow(&e))?;
                return Ok((
                    json!({"volume": vol.path(), "clone": format!("{svm}:{clone}"),
                           "uuid": uuid, "snapshot": snapshot}),
                    format!("cloned {} as {svm}:{clone} ({uuid})", vol.path()),
                ));
            }
            let (Some(template), Some(disk)) = (template, disk) else {
                return Err(Failure::usage("clone needs TEMPLATE and DISK, or --as"));
            };
            ops::clone_file(&env, &vol, template, disk)
                .await
                .map_err(|e| Failure::workflow(&e))?;
            Ok((
                json!({"volume": vol.path(), "template": template, "disk": disk}),
                format!("cloned {template} to {disk} in {}", vol.path()),
            ))
        }
    }
}

fn progress() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KVMSTOR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("kvmstor=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .with_ansi(false)
        .try_init();
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                ExitKind::Usage.code()
            } else {
                0
            };
            let _ = e.print();
            return ExitCode::from(code as u8);
        }
    };
    progress();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kvmstor-cli: cannot start the runtime: {e}");
            return ExitCode::from(ExitKind::RolledBack.code() as u8);
        }
    };
    let name = command_name(&cli.command);
    let result = rt.block_on(run(&cli));
    let (exit, doc, text) = match result {
        Ok((v, text)) => (
            ExitKind::Ok,
            json!({"command": name, "ok": true, "exit_code": 0, "result": v, "error": null}),
            text,
        ),
        Err(f) => (
            f.exit,
            json!({"command": name, "ok": false, "exit_code": f.exit.code(), "result": null, "error": f.json}),
            f.text,
        ),
    };
    if cli.global.json {
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else if exit == ExitKind::Ok {
        println!("{text}");
    } else {
        eprintln!("kvmstor-cli {name}: {text}");
    }
    ExitCode::from(exit.code() as u8)
}
