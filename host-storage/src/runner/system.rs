//! The real runner: tokio processes in their own process group.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::AsyncWriteExt;

use super::{Command, Exit, Output, Runner};
use crate::error::{Error, Result, ValueKind};

/// The only directories programs are taken from, in this order.
pub const PROGRAM_DIRS: [&str; 4] = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/// Runs programs on this host.
///
/// - No shell: the program is a bare name resolved once from [`PROGRAM_DIRS`] and cached.
/// - The environment is emptied, then `PATH` (the same directories), `LC_ALL=C` and `LANG=C`
///   are set, then the command's own variables.
/// - The child leads a new process group; on timeout the whole group gets `SIGKILL`.
/// - Standard input is written (and closed) while output is read, so large data and secrets
///   cannot deadlock.
///
/// ```no_run
/// use host_storage::{Command, Runner, SystemRunner};
/// # async fn demo() -> Result<(), host_storage::Error> {
/// let runner = SystemRunner::new();
/// let out = runner.run(&Command::new("uname").arg("-r")).await?;
/// println!("kernel {}", out.stdout.trim());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct SystemRunner {
    dirs: Vec<PathBuf>,
    cache: Mutex<HashMap<String, PathBuf>>,
}

impl Default for SystemRunner {
    fn default() -> Self {
        Self::new()
    }
}

impl SystemRunner {
    /// A runner searching [`PROGRAM_DIRS`].
    pub fn new() -> Self {
        SystemRunner {
            dirs: PROGRAM_DIRS.iter().map(PathBuf::from).collect(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Finds `program` in the fixed directories (cached after the first success).
    pub fn resolve(&self, program: &str) -> Result<PathBuf> {
        if program.is_empty()
            || program.contains('/')
            || program.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(Error::invalid(
                ValueKind::Program,
                program,
                "must be a bare program name",
            ));
        }
        if let Some(p) = self.lock_cache().get(program) {
            return Ok(p.clone());
        }
        for dir in &self.dirs {
            let candidate = dir.join(program);
            if is_executable(&candidate) {
                self.lock_cache()
                    .insert(program.to_owned(), candidate.clone());
                return Ok(candidate);
            }
        }
        Err(Error::ProgramNotFound {
            program: program.to_owned(),
            searched: self.dirs.clone(),
        })
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, PathBuf>> {
        // A poisoned cache only holds resolved paths; keep using it.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn search_path(&self) -> String {
        self.dirs
            .iter()
            .map(|d| d.to_string_lossy())
            .collect::<Vec<_>>()
            .join(":")
    }
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[async_trait::async_trait]
impl Runner for SystemRunner {
    async fn run(&self, cmd: &Command) -> Result<Output> {
        let path = self.resolve(cmd.program())?;
        let shown = path.display().to_string();
        let mut c = tokio::process::Command::new(&path);
        c.args(cmd.get_args().iter().map(|a| a.expose()))
            .env_clear()
            .env("PATH", self.search_path())
            .env("LC_ALL", "C")
            .env("LANG", "C");
        for (k, v) in cmd.get_env() {
            c.env(k, v);
        }
        c.stdin(if cmd.get_stdin().is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);

        tracing::debug!(command = %cmd, "running");
        let mut child = c.spawn().map_err(|source| Error::Spawn {
            program: shown.clone(),
            source,
        })?;
        let pgid = child.id().and_then(|id| i32::try_from(id).ok());
        let stdin = child.stdin.take();
        let feed = async {
            if let (Some(mut pipe), Some(data)) = (stdin, cmd.get_stdin()) {
                // A program that exits without reading gives EPIPE; its exit status tells more.
                let _ = pipe.write_all(data.expose().as_bytes()).await;
                let _ = pipe.shutdown().await;
            }
        };
        let work = async {
            let ((), out) = tokio::join!(feed, child.wait_with_output());
            out
        };
        match tokio::time::timeout(cmd.get_timeout(), work).await {
            Ok(Ok(out)) => {
                let status = match (
                    out.status.code(),
                    std::os::unix::process::ExitStatusExt::signal(&out.status),
                ) {
                    (Some(c), _) => Exit::Code(c),
                    (None, Some(s)) => Exit::Signal(s),
                    (None, None) => Exit::Code(-1),
                };
                let output = Output {
                    status,
                    stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                };
                tracing::debug!(command = %cmd, %status, "finished");
                cmd.check(output)
            }
            Ok(Err(source)) => Err(Error::Spawn {
                program: shown,
                source,
            }),
            Err(_elapsed) => {
                if let Some(pgid) = pgid {
                    // ESRCH means the group is already gone, which is what we want.
                    let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
                }
                tracing::warn!(command = %cmd, timeout = ?cmd.get_timeout(), "timed out, process group killed");
                Err(Error::Timeout {
                    program: cmd.program().to_owned(),
                    args: cmd.args_redacted(),
                    after: cmd.get_timeout(),
                })
            }
        }
    }
}
