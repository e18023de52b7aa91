//! `kvmstor-cli`: plan, attach, detach, status, snapshot and clone NFS datastores from the
//! shell, over the kvmstor facade.
//!
//! Exit codes: 0 done; 1 failed, rolled back cleanly (nothing left behind); 2 needs
//! attention (an undo failed, steps remain applied); 64 usage error. `--json` prints one
//! JSON document on stdout; progress goes to stderr, one line per step.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use kvmstor::nfs::NfsStep;
use kvmstor::ops::{self, DatastoreVolume, Freeze};
use kvmstor::saga::Journal;
use kvmstor_cli::endpoint::{ConfigFile, Endpoint, PasswordSource, PASSWORD_ENV};
use kvmstor_cli::report::{chain, error_json, report_json, ExitKind};
use kvmstor_cli::world::{self, parse_size, HostMode, HostSpec, NfsSpec};
use ontap_client::Query;
use serde_json::{json, Value};

/// Attach ONTAP NFS datastores to KVM hosts, transactionally.
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
    /// Attach an NFS datastore (rolled back on failure).
    Attach {
        #[command(flatten)]
        ds: DatastoreArgs,
    },
    /// Detach an NFS datastore.
    Detach {
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
        /// Volume (default: the pool's name with - as _).
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
    /// Clone a VM disk inside a datastore's volume (ONTAP file clone).
    Clone {
        /// SVM.
        #[arg(long, default_value = "svm1")]
        svm: String,
        /// Volume.
        #[arg(long)]
        volume: String,
        /// Template disk, relative to the volume root.
        template: String,
        /// New disk, relative to the volume root.
        disk: String,
    },
}

#[derive(Debug, Args)]
struct DatastoreArgs {
    /// Pool (datastore) name.
    #[arg(long)]
    name: String,
    /// SVM.
    #[arg(long, default_value = "svm1")]
    svm: String,
    /// Aggregate.
    #[arg(long, default_value = "aggr1")]
    aggregate: String,
    /// Volume size (e.g. 500G).
    #[arg(long, default_value = "100G", value_parser = parse_size_arg)]
    size: u64,
    /// Volume name (default: the pool's name with - as _).
    #[arg(long)]
    volume: Option<String>,
    /// A host, NAME=ADDRESS (repeatable).
    #[arg(long = "host", required = true)]
    hosts: Vec<HostSpec>,
    /// Mount point.
    #[arg(long)]
    mount_point: Option<PathBuf>,
    /// fstab or autofs.
    #[arg(long, default_value = "fstab")]
    persist: String,
    /// dir or netfs.
    #[arg(long, default_value = "dir")]
    pool_kind: String,
    /// Detach: delete the volume and export policy too.
    #[arg(long)]
    delete_ontap_objects: bool,
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
                "\nNEEDS ATTENTION: still applied: {}; fix the cause, then run the same command again",
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

fn spec(ds: &DatastoreArgs) -> NfsSpec {
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
    let client = ctx
        .endpoint
        .connect()
        .context("connecting to ONTAP")
        .map_err(Failure::from)?;
    match &cli.command {
        Cmd::Plan { detach, ds } => {
            let env =
                world::env(client, &ds.hosts, &mode(ds)).map_err(|e| Failure::usage(chain(&e)))?;
            let d = spec(ds)
                .datastore(sim_root(ds).as_deref())
                .map_err(|e| Failure::usage(chain(&e)))?;
            let saga = if *detach {
                d.detach(&env).await
            } else {
                d.attach(&env).await
            }
            .map_err(|e| Failure::workflow(&e))?;
            let plan = saga.plan();
            let text = plan.to_string();
            Ok((serde_json::to_value(&plan).unwrap_or(Value::Null), text))
        }
        Cmd::Attach { ds } | Cmd::Detach { ds } => {
            let attach = matches!(cli.command, Cmd::Attach { .. });
            let env =
                world::env(client, &ds.hosts, &mode(ds)).map_err(|e| Failure::usage(chain(&e)))?;
            let d = spec(ds)
                .datastore(sim_root(ds).as_deref())
                .map_err(|e| Failure::usage(chain(&e)))?;
            std::fs::create_dir_all(&ctx.journal_dir)
                .with_context(|| format!("creating {}", ctx.journal_dir.display()))
                .map_err(Failure::from)?;
            let journal = ctx.journal_dir.join(format!("{}.json", ds.name));
            let saga = if attach {
                d.attach(&env).await
            } else {
                d.detach(&env).await
            }
            .map_err(|e| Failure::workflow(&e))?
            .journal_file(&journal);
            let report = saga.run(&env).await.map_err(|e| Failure::workflow(&e))?;
            let mut v = report_json(&report);
            v["journal"] = json!(journal.display().to_string());
            let text = format!(
                "{} {}: {}",
                if attach { "attached" } else { "detached" },
                ds.name,
                report.outcome
            );
            Ok((v, text))
        }
        Cmd::Status { name, svm, volume } => {
            let journal = ctx.journal_dir.join(format!("{name}.json"));
            let run = if journal.exists() {
                let doc = Journal::<NfsStep>::read(&journal).map_err(|e| Failure::workflow(&e))?;
                Some(doc)
            } else {
                None
            };
            let vol_name = volume
                .clone()
                .unwrap_or_else(|| name.replace(['-', '.'], "_"));
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
                Some(doc) => {
                    text.push_str(&format!("last run: {} ({})\n", doc.workflow, doc.status));
                    let steps = kvmstor_cli::report::steps_json(doc);
                    for s in steps.as_array().into_iter().flatten() {
                        text.push_str(&format!(
                            "  {:<12} {}\n",
                            s["state"].as_str().unwrap_or("?"),
                            s["label"].as_str().unwrap_or("?")
                        ));
                    }
                    json!({"workflow": doc.workflow, "run_id": doc.run_id.to_string(),
                           "status": doc.status.to_string(), "steps": steps})
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
            template,
            disk,
        } => {
            let env = kvmstor::Env::new(client);
            let vol = DatastoreVolume::new(svm.clone(), volume.clone());
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
