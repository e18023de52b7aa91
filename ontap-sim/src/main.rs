//! The `ontap-sim` binary: serves the simulator until interrupted.
//!
//! Prints exactly one line, `listening on URL`, to stdout once ready; logs go to stderr.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use ontap_sim::{Seed, SimError, SimServer};
use secrecy::SecretString;

/// A stateful simulator of the NetApp ONTAP REST API.
#[derive(Debug, Parser)]
#[command(name = "ontap-sim", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// Write the self-signed certificate (PEM) to this file.
    #[arg(long)]
    cert_out: Option<PathBuf>,
    /// Serve plain HTTP instead of HTTPS.
    #[arg(long)]
    http: bool,
    /// Basic-auth user name.
    #[arg(long, default_value = "admin")]
    username: String,
    /// Basic-auth password (visible in the process list: prefer --password-file or
    /// ONTAP_SIM_PASSWORD).
    #[arg(long)]
    password: Option<String>,
    /// Read the basic-auth password from this file (first line) instead of the default
    /// `netapp1!`; environment variable ONTAP_SIM_PASSWORD also works.
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// Persist state to this file and reload it at start.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Seed document (JSON) describing the initial cluster.
    #[arg(long)]
    seed: Option<PathBuf>,
    /// Add this many thin 1 MiB volumes `bench_NNNNNN` in svm1/aggr1 to the seed.
    #[arg(long)]
    bulk_volumes: Option<u64>,
    /// Job duration upper bound in milliseconds.
    #[arg(long, default_value_t = 200)]
    job_ms: u64,
    /// Seconds finished jobs are kept.
    #[arg(long, default_value_t = 300)]
    job_ttl: u64,
    /// Extra certificate subject names (DNS names or IP addresses).
    #[arg(long)]
    cert_name: Vec<String>,
}

fn read_file(path: &PathBuf) -> Result<String, SimError> {
    std::fs::read_to_string(path).map_err(|source| SimError::File {
        action: "read",
        path: path.clone(),
        source,
    })
}

async fn run(args: Args) -> Result<(), SimError> {
    let mut seed = match &args.seed {
        Some(p) => Seed::from_json(&read_file(p)?).map_err(|source| SimError::Document {
            what: "seed",
            path: p.clone(),
            source,
        })?,
        None => Seed::default(),
    };
    if let Some(n) = args.bulk_volumes {
        seed.bulk_volumes = Some(
            serde_json::from_value(serde_json::json!({"svm": "svm1", "aggregate": "aggr1",
                "prefix": "bench", "count": n, "size": 1048576}))
            .map_err(|source| SimError::Document {
                what: "seed",
                path: PathBuf::from("--bulk-volumes"),
                source,
            })?,
        );
    }
    let password = match (&args.password_file, std::env::var("ONTAP_SIM_PASSWORD")) {
        _ if args.password.is_some() => args.password.clone().unwrap_or_default(),
        (Some(p), _) => read_file(p)?.lines().next().unwrap_or_default().to_string(),
        (None, Ok(p)) => p,
        (None, Err(_)) => "netapp1!".to_string(),
    };
    let mut b = SimServer::builder()
        .listen(args.listen)
        .seed(seed)
        .credentials(&args.username, SecretString::from(password))
        .job_duration(
            std::time::Duration::ZERO,
            std::time::Duration::from_millis(args.job_ms),
        )
        .job_ttl(std::time::Duration::from_secs(args.job_ttl));
    if args.http {
        b = b.http();
    }
    if let Some(s) = args.state {
        b = b.state_file(s);
    }
    for n in &args.cert_name {
        b = b.certificate_name(n);
    }
    let sim = b.start().await?;
    if let (Some(path), Some(pem)) = (&args.cert_out, sim.ca_pem()) {
        std::fs::write(path, pem).map_err(|source| SimError::File {
            action: "write",
            path: path.clone(),
            source,
        })?;
    }
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on {}", sim.url());
        let _ = out.flush();
    }
    tracing::info!(url = sim.url(), "ontap-sim ready");
    let _ = tokio::signal::ctrl_c().await;
    sim.shutdown().await;
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ONTAP_SIM_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            eprintln!("ontap-sim: {msg}");
            std::process::ExitCode::FAILURE
        }
    }
}
