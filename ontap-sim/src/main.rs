//! The `ontap-sim` binary: serves the simulator until interrupted.
//!
//! Prints exactly one line, `listening on URL`, to stdout once ready; logs go to stderr.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;
use ontap_sim::kernel::configfs::Configfs;
use ontap_sim::kernel::{KernelBackend, KernelConfig};
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
    /// Certificate authentication: trust client certificates signed by this CA (PEM). A
    /// client certificate whose CN is the user name authenticates its requests without a
    /// password; one from another CA fails the TLS handshake.
    #[arg(long, conflicts_with = "http")]
    client_ca: Option<PathBuf>,
    /// Extra certificate subject names (DNS names or IP addresses).
    #[arg(long)]
    cert_name: Vec<String>,
    /// Start from the lab seed (LIFs on 127.0.1.1-6) instead of the default one.
    #[arg(long, conflicts_with = "seed")]
    lab_seed: bool,
    /// How changes are realised: `memory` (nothing on the host) or `kernel` (btrfs
    /// subvolumes, knfsd exports, samba shares, LIO and nvmet; needs root).
    #[arg(long, value_enum, default_value_t = BackendKind::Memory)]
    backend: BackendKind,
    /// Kernel backend: state directory (btrfs image, mount point, junction mounts).
    #[arg(long, default_value = "/var/lib/ontap-sim")]
    kernel_root: PathBuf,
    /// Kernel backend: size of the sparse btrfs image made at the first start (bytes, or
    /// with a K/M/G/T suffix).
    #[arg(long, default_value = "16G", value_parser = parse_size)]
    kernel_loop_size: u64,
    /// Kernel backend: directory of the junction bind mounts (default KERNEL_ROOT/export).
    #[arg(long)]
    kernel_export_root: Option<PathBuf>,
    /// Kernel backend: knfsd exports file to manage.
    #[arg(long, default_value = ontap_sim::kernel::DEFAULT_EXPORTS_FILE)]
    kernel_exports_file: PathBuf,
    /// Kernel backend: samba include file to manage (include it from smb.conf).
    #[arg(long, default_value = ontap_sim::kernel::DEFAULT_SMB_INCLUDE)]
    kernel_smb_include: PathBuf,
    /// Kernel backend: configfs mount point (LIO and nvmet).
    #[arg(long, default_value = ontap_sim::kernel::configfs::SYSTEM_ROOT)]
    kernel_configfs: PathBuf,
    /// Kernel backend: protocols not to realise (repeatable): nfs, cifs, iscsi, nvme.
    #[arg(long, value_enum)]
    kernel_skip: Vec<Protocol>,
    /// Kernel backend: unmount the junctions and the btrfs file system on exit.
    #[arg(long)]
    kernel_teardown: bool,
}

/// Backend choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum BackendKind {
    Memory,
    Kernel,
}

/// A protocol the kernel backend can skip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Protocol {
    Nfs,
    Cifs,
    Iscsi,
    Nvme,
}

/// `4096`, `512M`, `16G`, `1T` (binary units).
fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, shift) = match s.chars().last() {
        Some('K' | 'k') => (&s[..s.len() - 1], 10),
        Some('M' | 'm') => (&s[..s.len() - 1], 20),
        Some('G' | 'g') => (&s[..s.len() - 1], 30),
        Some('T' | 't') => (&s[..s.len() - 1], 40),
        _ => (s, 0),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1u64 << shift))
        .ok_or_else(|| format!("invalid size {s:?}"))
}

fn kernel_backend(args: &Args) -> Arc<KernelBackend> {
    let skip = |p: Protocol| args.kernel_skip.contains(&p);
    let mut cfg = KernelConfig::new(&args.kernel_root)
        .loop_size(args.kernel_loop_size)
        .exports_file((!skip(Protocol::Nfs)).then(|| args.kernel_exports_file.clone()))
        .smb_include((!skip(Protocol::Cifs)).then(|| args.kernel_smb_include.clone()))
        .configfs(Configfs::new(&args.kernel_configfs))
        .lio(!skip(Protocol::Iscsi))
        .nvmet(!skip(Protocol::Nvme));
    if let Some(d) = &args.kernel_export_root {
        cfg = cfg.export_root(d);
    }
    Arc::new(KernelBackend::system(cfg))
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
        None if args.lab_seed => Seed::lab(),
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
    let kernel = (args.backend == BackendKind::Kernel).then(|| kernel_backend(&args));
    if let Some(k) = &kernel {
        b = b.backend(k.clone());
    }
    if let Some(s) = args.state {
        b = b.state_file(s);
    }
    for n in &args.cert_name {
        b = b.certificate_name(n);
    }
    if let Some(p) = &args.client_ca {
        b = b.client_ca_pem(read_file(p)?);
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
    if let (Some(k), true) = (&kernel, args.kernel_teardown) {
        if let Err(e) = k.teardown().await {
            tracing::error!(error = %e, "kernel backend teardown failed");
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_with_binary_suffixes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("16G"), Ok(16 << 30));
        assert_eq!(parse_size("1t"), Ok(1 << 40));
        assert!(parse_size("G").is_err());
        assert!(parse_size("99999999999T").is_err());
    }

    #[test]
    fn kernel_flags_build_the_config() {
        let args = Args::parse_from([
            "ontap-sim",
            "--backend",
            "kernel",
            "--lab-seed",
            "--kernel-root",
            "/lab/sim",
            "--kernel-skip",
            "cifs",
            "--kernel-skip",
            "nvme",
        ]);
        assert_eq!(args.backend, BackendKind::Kernel);
        let k = kernel_backend(&args);
        let want = KernelConfig::new("/lab/sim")
            .smb_include(None)
            .nvmet(false)
            .loop_size(16 << 30);
        assert_eq!(k.config(), &want);
    }
}
