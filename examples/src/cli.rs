//! What the workflow examples (`examples/src/bin/*_datastore.rs`, `datastore_ops.rs`)
//! share: where ONTAP is, which host this is, and running a workflow with progress.
//!
//! The endpoint comes from flags or the environment: `--url` / `ONTAP_URL`, `--user` /
//! `ONTAP_USER` (default `admin`), the password from the file named by
//! `ONTAP_PASSWORD_FILE`, else `ONTAP_PASSWORD`, else a prompt on the terminal (never a
//! flag: argv is visible to every user of the machine), `--ca` / `ONTAP_CA` (a PEM file,
//! then the only CA trusted), `--client-cert` and `--client-key` for certificate
//! authentication. With no URL, the example starts an embedded simulator (memory backend,
//! the default seed: SVM `svm1` with NFS, CIFS, iSCSI, NVMe and FC LIFs), enough
//! for `plan`; the host steps of `attach` and `detach` need a real kernel and root.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use kvmstor::saga::{Observer, Saga, Step, StepProgress};
use kvmstor::{Env, Host};
use ontap_client::tls::ClientIdentity;
use ontap_client::{Client, SecretString};
use ontap_sim::SimServer;

use crate::format_duration;

/// Where ONTAP is (flatten into an example's clap arguments).
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectArgs {
    /// Cluster management URL (default `ONTAP_URL`; neither: an embedded simulator).
    #[arg(long, global = true)]
    pub url: Option<String>,
    /// User (default `ONTAP_USER`, else admin). The password comes from the file named by
    /// `ONTAP_PASSWORD_FILE`, else `ONTAP_PASSWORD`, else a prompt: never a flag.
    #[arg(long, global = true)]
    pub user: Option<String>,
    /// PEM file of the CA to trust, and only it (default `ONTAP_CA`; neither: system trust).
    #[arg(long, global = true, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// PEM client certificate (certificate authentication, with --client-key).
    #[arg(long, global = true, value_name = "FILE", requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// PEM key of --client-cert.
    #[arg(long, global = true, value_name = "FILE", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
}

/// Which host this is (flatten into an example's clap arguments).
#[derive(Debug, Clone, clap::Args)]
pub struct HostArgs {
    /// This host's name (default: `uname -n`; OCFS2 and GFS2 need exactly that).
    #[arg(long, global = true)]
    pub host: Option<String>,
    /// This host's address: NFS export rule client and cluster interconnect.
    #[arg(long, global = true, default_value = "127.0.0.1")]
    pub address: String,
    /// Read the host's identity files (initiator name, host NQN) under this directory
    /// instead of `/` (plans on a machine that is not the host).
    #[arg(long, global = true, value_name = "DIR")]
    pub host_root: Option<PathBuf>,
}

/// A connected ONTAP, and the embedded simulator behind it when there is no URL.
#[derive(Debug)]
pub struct Connection {
    /// The client.
    pub client: Client,
    /// The embedded simulator, if one was started.
    pub sim: Option<SimServer>,
}

impl Connection {
    /// Stops the embedded simulator, if any.
    pub async fn close(self) {
        if let Some(sim) = self.sim {
            sim.shutdown().await;
        }
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A secret from the environment, never a flag: the first line of the file that variable
/// `file_var` names, else variable `var`, else none (empty variables count as unset).
pub fn secret_from_env(file_var: &str, var: &str) -> Result<Option<SecretString>> {
    if let Some(path) = env_var(file_var) {
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("reading {file_var} {path}"))?;
        return Ok(Some(SecretString::from(
            text.lines().next().unwrap_or_default().to_owned(),
        )));
    }
    Ok(env_var(var).map(SecretString::from))
}

/// The password: `ONTAP_PASSWORD_FILE` (first line), `ONTAP_PASSWORD`, or a prompt.
fn password() -> Result<SecretString> {
    if let Some(p) = secret_from_env("ONTAP_PASSWORD_FILE", "ONTAP_PASSWORD")? {
        return Ok(p);
    }
    let p = rpassword::prompt_password("ONTAP password: ")
        .context("no ONTAP_PASSWORD_FILE or ONTAP_PASSWORD, and no terminal to ask on")?;
    Ok(SecretString::from(p))
}

/// Connects as the flags and environment say, or starts an embedded simulator.
pub async fn connect(args: &ConnectArgs, app: &str) -> Result<Connection> {
    let Some(url) = args.url.clone().or_else(|| env_var("ONTAP_URL")) else {
        let sim = SimServer::builder()
            .job_duration(Duration::ZERO, Duration::from_millis(20))
            .start()
            .await
            .context("starting the embedded simulator")?;
        let client = Client::builder(sim.url())
            .add_ca_pem(sim.ca_pem().unwrap_or_default().as_bytes().to_vec())
            .trust_only_added_cas(true)
            .basic_auth(sim.username(), sim.password())
            .application(app, env!("CARGO_PKG_VERSION"))
            .build()?;
        return Ok(Connection {
            client,
            sim: Some(sim),
        });
    };
    let mut b = Client::builder(url).application(app, env!("CARGO_PKG_VERSION"));
    let ca = args
        .ca
        .clone()
        .or_else(|| env_var("ONTAP_CA").map(PathBuf::from));
    if let Some(ca) = ca {
        let pem = std::fs::read(&ca).with_context(|| format!("reading CA {}", ca.display()))?;
        b = b.add_ca_pem(pem).trust_only_added_cas(true);
    }
    match (&args.client_cert, &args.client_key) {
        (Some(cert), Some(key)) => {
            let cert =
                std::fs::read(cert).with_context(|| format!("reading {}", cert.display()))?;
            let key = std::fs::read_to_string(key)
                .with_context(|| format!("reading {}", key.display()))?;
            b = b.client_identity(ClientIdentity::from_pem(cert, SecretString::from(key)));
        }
        _ => {
            let user = args
                .user
                .clone()
                .or_else(|| env_var("ONTAP_USER"))
                .unwrap_or_else(|| "admin".into());
            b = b.basic_auth(user, password()?);
        }
    }
    Ok(Connection {
        client: b.build().context("building the ONTAP client")?,
        sim: None,
    })
}

impl HostArgs {
    /// The host's name: `--host`, else `uname -n`.
    pub fn name(&self) -> String {
        self.host.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_else(|_| "localhost".into())
        })
    }

    /// The facade's environment: this ONTAP and this one host (run locally).
    pub fn env(&self, client: &Client) -> Env {
        let mut host = Host::local(self.name()).address(self.address.clone());
        if let Some(root) = &self.host_root {
            host = host.root(root.clone());
        }
        Env::new(client.clone()).host(host)
    }
}

/// Parses `512M`, `10G`, `1T` or bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let (num, shift) = match s.trim().chars().last() {
        Some('K' | 'k') => (&s[..s.len() - 1], 10),
        Some('M' | 'm') => (&s[..s.len() - 1], 20),
        Some('G' | 'g') => (&s[..s.len() - 1], 30),
        Some('T' | 't') => (&s[..s.len() - 1], 40),
        _ => (s, 0),
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("invalid size {s:?} (e.g. 512M, 10G)"))
}

/// An observer printing each facade step as it starts and ends, with its duration.
pub fn progress() -> Observer {
    let started = Arc::new(Mutex::new(None::<Instant>));
    Observer::new(move |e| {
        let mut t = started.lock().unwrap_or_else(|p| p.into_inner());
        let n = format!("[{:>2}/{}]", e.index + 1, e.count);
        match e.progress {
            StepProgress::Started => {
                *t = Some(Instant::now());
                println!("{n} {} ...", e.label);
            }
            StepProgress::Undoing => {
                *t = Some(Instant::now());
                println!("{n} undo {} ...", e.label);
            }
            p => {
                let took = t.take().map(|s| format_duration(s.elapsed()));
                let took = took.unwrap_or_default();
                match p {
                    StepProgress::Done { changed: true } => println!("{n} done ({took})"),
                    StepProgress::Done { changed: false } => println!("{n} already so ({took})"),
                    StepProgress::Undone => println!("{n} undone ({took})"),
                    StepProgress::Failed { error } | StepProgress::UndoFailed { error } => {
                        println!("{n} FAILED ({took}): {error}")
                    }
                    _ => {}
                }
            }
        }
    })
}

/// The subcommands of the workflow examples (NFS, SMB, block datastores).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Subcommand)]
pub enum Workflow {
    /// Print what attach would do; changes nothing.
    Plan,
    /// Attach the datastore to this host.
    Attach,
    /// Detach it from this host.
    Detach,
}

/// `plan`: prints the workflow's plan. Otherwise runs it with [`progress`] and prints how
/// it ended; on failure the facade has unwound it (or says what needs attention).
pub async fn plan_or_run<S: Step>(saga: Saga<S>, env: &S::Env, plan_only: bool) -> Result<()> {
    if plan_only {
        let text = saga.plan().to_string();
        print!("{text}");
        if !text.ends_with('\n') {
            println!();
        }
        return Ok(());
    }
    match saga.observe(progress()).run(env).await {
        Ok(report) => {
            println!("{}", report.outcome);
            Ok(())
        }
        Err(e) if e.needs_attention() => bail!("needs attention: {e}"),
        Err(e) => bail!("failed and unwound, nothing left behind: {e}"),
    }
}

/// The exit code of an example: 0, or 1 after printing the error's chain on stderr.
pub fn exit_code(result: Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("10G"), Ok(10 << 30));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("0").is_err());
        assert!(parse_size("ten").is_err());
    }

    #[test]
    fn secret_from_env_prefers_the_file_and_treats_empty_as_unset() {
        // Names of this test only: the process's other tests never read them.
        let (file_var, var) = ("KVMSTOR_EX_TEST_SECRET_FILE", "KVMSTOR_EX_TEST_SECRET");
        std::env::remove_var(file_var);
        std::env::set_var(var, "");
        assert!(secret_from_env(file_var, var).unwrap().is_none());
        std::env::set_var(var, "s3cret");
        assert!(secret_from_env(file_var, var).unwrap().is_some());
        // The file wins over the variable: a missing file is an error naming it.
        std::env::set_var(file_var, "/nonexistent/kvmstor-secret");
        let e = secret_from_env(file_var, var).unwrap_err();
        assert_eq!(
            e.to_string(),
            "reading KVMSTOR_EX_TEST_SECRET_FILE /nonexistent/kvmstor-secret"
        );
        assert!(!format!("{e:#}").contains("s3cret"));
        std::env::remove_var(file_var);
        std::env::remove_var(var);
    }
}
