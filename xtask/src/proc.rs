//! Child processes: commands whose output is shown and kept, and the simulator daemon.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// What a finished command left behind.
pub(crate) struct Run {
    pub(crate) success: bool,
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
}

/// Runs `cmd`, echoing its stdout line by line while keeping a copy to parse; stderr goes
/// straight to ours.
pub(crate) fn run_streamed(cmd: &mut Command) -> Result<Run> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {:?}", cmd.get_program()))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut kept = String::new();
    let mut out = std::io::stdout();
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading the child's stdout")?;
        let _ = writeln!(out, "{line}");
        kept.push_str(&line);
        kept.push('\n');
    }
    let status = child.wait()?;
    Ok(Run {
        success: status.success(),
        code: status.code(),
        stdout: kept,
    })
}

/// Runs `cmd` and returns its stdout, failing on a non-zero exit.
pub(crate) fn output_of(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot start {:?}", cmd.get_program()))?;
    if !out.status.success() {
        bail!("{:?} failed with {}", cmd.get_program(), out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Default credentials of `ontap-sim`.
pub(crate) const SIM_USER: &str = "admin";
pub(crate) const SIM_PASSWORD: &str = "netapp1!";

/// A running `ontap-sim`, killed and reaped when dropped (also on error paths and panics).
pub(crate) struct SimDaemon {
    child: Child,
    /// The base URL the simulator printed, e.g. `https://127.0.0.1:40123`.
    pub(crate) url: String,
    /// PEM of the simulator's self-signed certificate, to trust as a CA.
    pub(crate) ca_file: PathBuf,
    log_file: PathBuf,
}

impl SimDaemon {
    /// Starts `bin` on a free loopback port over HTTPS and waits for its `listening on URL`
    /// line. `label` names the log and certificate files under `target/xtask/`.
    pub(crate) fn start(bin: &Path, label: &str, extra_args: &[&str]) -> Result<SimDaemon> {
        let dir = crate::target_dir().join("xtask");
        std::fs::create_dir_all(&dir)?;
        let ca_file = dir.join(format!("ontap-sim-{label}.pem"));
        let log_file = dir.join(format!("ontap-sim-{label}.log"));
        let _ = std::fs::remove_file(&ca_file);
        let port = free_port()?;
        let listen = format!("127.0.0.1:{port}");
        let log = File::create(&log_file)?;
        let mut child = Command::new(bin)
            .arg("--listen")
            .arg(&listen)
            .arg("--cert-out")
            .arg(&ca_file)
            .args(extra_args)
            // The simulator also reads its password from here; pin it to what clients get.
            .env("ONTAP_SIM_PASSWORD", SIM_PASSWORD)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        println!(
            "started {} --listen {listen} (pid {})",
            bin.display(),
            child.id()
        );

        // Read stdout on a thread: it waits for the ready line, then keeps draining so the
        // simulator never blocks on a full pipe.
        let stdout = child.stdout.take().expect("stdout is piped");
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut ready_tx = Some(ready_tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.trim().strip_prefix("listening on ") {
                    if let Some(tx) = ready_tx.take() {
                        let _ = tx.send(url.trim().to_owned());
                    }
                }
            }
        });
        let mut daemon = SimDaemon {
            child,
            url: String::new(),
            ca_file,
            log_file,
        };
        // Seeding 100,000 volumes for the benchmark takes a while in a debug build.
        match ready_rx.recv_timeout(Duration::from_secs(300)) {
            Ok(url) => daemon.url = url.trim_end_matches('/').to_owned(),
            Err(_) => {
                let status = daemon.child.try_wait()?;
                bail!(
                    "ontap-sim did not print `listening on URL` (exit status {status:?}); \
                     log tail:\n{}",
                    daemon.log_tail()
                );
            }
        }
        if !daemon.ca_file.exists() {
            bail!(
                "ontap-sim is listening on {} but wrote no certificate to {}",
                daemon.url,
                daemon.ca_file.display()
            );
        }
        println!("ontap-sim ready at {}", daemon.url);
        Ok(daemon)
    }

    /// Points a client process (pytest, the bench binaries) at the simulator through its
    /// environment; the password travels there, never in argv.
    ///
    /// `REQUESTS_CA_BUNDLE` and `CURL_CA_BUNDLE` are removed: requests lets them override a
    /// session's `verify`, so netapp-ontap's `HostConnection(verify=CA)` would be ignored.
    pub(crate) fn configure_client(&self, cmd: &mut Command) {
        cmd.env("ONTAP_SIM_URL", &self.url)
            .env("ONTAP_SIM_CA", &self.ca_file)
            .env("ONTAP_SIM_USER", SIM_USER)
            .env("ONTAP_SIM_PASSWORD", SIM_PASSWORD)
            .env_remove("REQUESTS_CA_BUNDLE")
            .env_remove("CURL_CA_BUNDLE");
    }

    /// Where the simulator's stderr goes.
    pub(crate) fn log_file(&self) -> &Path {
        &self.log_file
    }

    /// The last lines of the simulator's stderr log.
    pub(crate) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log_file).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for SimDaemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// A loopback port that was free a moment ago.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a probe socket")?;
    Ok(listener.local_addr()?.port())
}

/// Where `cargo xtask test` keeps the pid of the libvirtd it starts; the libvirt-pools host
/// tests read it (`KVMSTOR_LIBVIRTD_PIDFILE`) and one of them restarts the daemon with it.
pub(crate) const LIBVIRTD_PID_FILE: &str = "/run/libvirtd-kvmstor.pid";

/// The URI the host tier's libvirt tests connect to (`KVMSTOR_LIBVIRT_URI`).
pub(crate) const LIBVIRT_URI: &str = "qemu:///system";

/// A libvirtd for the host tier, stopped when dropped (also on error paths and panics). A
/// daemon already running under the same pid file is used as it is and left running.
pub(crate) struct Libvirtd {
    pid_file: PathBuf,
    owned: bool,
}

impl Libvirtd {
    /// Starts `libvirtd -d --pid-file LIBVIRTD_PID_FILE` and waits until
    /// `virsh pool-list --all` answers (the storage driver is up, not just the socket).
    pub(crate) fn start() -> Result<Libvirtd> {
        let pid_file = PathBuf::from(LIBVIRTD_PID_FILE);
        if let Some(pid) = live_pid(&pid_file) {
            println!(
                "libvirtd already running (pid {pid} from {}); using it",
                pid_file.display()
            );
            let daemon = Libvirtd {
                pid_file,
                owned: false,
            };
            daemon.wait_ready()?;
            return Ok(daemon);
        }
        // libvirtd refuses to start without its qemu log directory.
        std::fs::create_dir_all("/var/log/libvirt/qemu")
            .context("creating /var/log/libvirt/qemu")?;
        let status = Command::new("libvirtd")
            .arg("-d")
            .arg("--pid-file")
            .arg(&pid_file)
            .stdin(Stdio::null())
            .status()
            .context("cannot start libvirtd")?;
        if !status.success() {
            bail!("libvirtd -d failed with {status}");
        }
        let daemon = Libvirtd {
            pid_file,
            owned: true,
        };
        daemon.wait_ready()?;
        println!(
            "libvirtd ready (pid {})",
            live_pid(&daemon.pid_file).unwrap_or_default()
        );
        Ok(daemon)
    }

    /// The pid file, for the tests' environment.
    pub(crate) fn pid_file(&self) -> &Path {
        &self.pid_file
    }

    fn wait_ready(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ok = Command::new("virsh")
                .args(["-c", LIBVIRT_URI, "pool-list", "--all"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("libvirtd did not answer `virsh -c {LIBVIRT_URI} pool-list --all` in 60 s");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops the daemon whose pid the pid file holds now: a test may have restarted it.
    fn stop(&self) -> Result<()> {
        let Some(pid) = live_pid(&self.pid_file) else {
            return Ok(());
        };
        signal(pid, "TERM")?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while pid_alive(pid) {
            if Instant::now() >= deadline {
                eprintln!("xtask: libvirtd (pid {pid}) ignored SIGTERM for 30 s; killing it");
                signal(pid, "KILL")?;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = std::fs::remove_file(&self.pid_file);
        println!("libvirtd (pid {pid}) stopped");
        Ok(())
    }
}

impl Drop for Libvirtd {
    fn drop(&mut self) {
        if self.owned {
            if let Err(err) = self.stop() {
                eprintln!("xtask: stopping libvirtd: {err:#}");
            }
        }
    }
}

/// The pid in `pid_file` when that process is alive.
fn live_pid(pid_file: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(pid_file)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    pid_alive(pid).then_some(pid)
}

/// True while `pid` exists and is not a zombie (a daemonised process is reaped by init).
fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name, which may itself hold spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Sends `SIGname` through kill(1): xtask stays std-only, with no unsafe code.
fn signal(pid: u32, name: &str) -> Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status()
        .context("running kill")?;
    // A non-zero exit means the process is already gone.
    if !status.success() && pid_alive(pid) {
        bail!("kill -{name} {pid} failed with {status}");
    }
    Ok(())
}

/// True when running as root (the host tier needs it: loop devices, mount, daemons).
pub(crate) fn is_root() -> bool {
    output_of(Command::new("id").arg("-u")).is_ok_and(|uid| uid.trim() == "0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_liveness_comes_from_proc() {
        assert!(pid_alive(std::process::id()));
        // Above the kernel's largest pid (2^22), so never a live process.
        assert!(!pid_alive(4_194_305));
        let dir = std::env::temp_dir().join(format!("xtask-pid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("daemon.pid");
        std::fs::write(&file, format!("{}\n", std::process::id())).unwrap();
        assert_eq!(live_pid(&file), Some(std::process::id()));
        std::fs::write(&file, "4194305\n").unwrap();
        assert_eq!(live_pid(&file), None);
        std::fs::write(&file, "not a pid\n").unwrap();
        assert_eq!(live_pid(&file), None);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(live_pid(&file), None);
    }
}
