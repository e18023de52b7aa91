//! Running host programs: the [`Runner`] trait, the [`Command`] it runs, the real
//! [`SystemRunner`] and the scripted [`FakeRunner`].
//!
//! The trait is deliberately narrow (one method) so that a remote runner (over SSH, for
//! example) can implement it too.

mod fake;
mod system;

use std::fmt;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::error::{Error, Result};

pub use fake::{Expect, FakeRunner};
pub use system::{SystemRunner, PROGRAM_DIRS};

/// Default timeout of a [`Command`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// How a program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// It was killed by this signal.
    Signal(i32),
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit code {c}"),
            Exit::Signal(s) => write!(f, "signal {s}"),
        }
    }
}

/// What a finished program produced. Output is decoded as UTF-8, invalid bytes replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// How it ended.
    pub status: Exit,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

impl Output {
    /// Exit code 0 with this standard output and empty standard error.
    pub fn success(stdout: impl Into<String>) -> Self {
        Output {
            status: Exit::Code(0),
            stdout: stdout.into(),
            stderr: String::new(),
        }
    }

    /// Any exit code with this standard output and standard error.
    pub fn exit(code: i32, stdout: impl Into<String>, stderr: impl Into<String>) -> Self {
        Output {
            status: Exit::Code(code),
            stdout: stdout.into(),
            stderr: stderr.into(),
        }
    }

    /// The exit code, if the program was not killed by a signal.
    pub fn code(&self) -> Option<i32> {
        match self.status {
            Exit::Code(c) => Some(c),
            Exit::Signal(_) => None,
        }
    }
}

/// One argument of a [`Command`].
#[derive(Clone)]
pub enum Arg {
    /// An ordinary argument. There is deliberately no secret variant: argv is visible to
    /// every local user, so secrets go by [`Command::stdin_secret`] or a 0600 file.
    Plain(String),
}

impl Arg {
    /// The real value, for runner implementations only.
    pub fn expose(&self) -> &str {
        match self {
            Arg::Plain(s) => s,
        }
    }
}

impl fmt::Debug for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Plain(s) => fmt::Debug::fmt(s, f),
        }
    }
}

/// Data given to a program on standard input.
#[derive(Clone)]
pub enum Stdin {
    /// Ordinary data.
    Data(String),
    /// A secret (a password or key), never shown.
    Secret(SecretString),
}

impl Stdin {
    /// The real bytes, for runner implementations only.
    pub fn expose(&self) -> &str {
        match self {
            Stdin::Data(s) => s,
            Stdin::Secret(s) => s.expose_secret(),
        }
    }
}

impl fmt::Debug for Stdin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stdin::Data(s) => f.debug_tuple("Data").field(&s.len()).finish(),
            Stdin::Secret(_) => f.write_str("Secret(***)"),
        }
    }
}

/// A program invocation: a bare program name (resolved by the runner, never through a
/// shell), arguments, extra environment, standard input, a timeout and the exit codes that
/// count as success.
///
/// Secrets never go on argv (visible to every local user): give them on standard input
/// with [`Command::stdin_secret`], shown as `***` in `Debug`, logs and errors, or in a 0600
/// file.
///
/// ```
/// use host_storage::Command;
/// use secrecy::SecretString;
/// let cmd = Command::new("cryptsetup")
///     .args(["open", "--key-file=-", "/dev/sdb", "vault"])
///     .stdin_secret(SecretString::from("hunter2"))
///     .ok_codes([0]);
/// assert_eq!(cmd.to_string(), "cryptsetup open --key-file=- /dev/sdb vault");
/// assert!(!format!("{cmd:?}").contains("hunter2"));
/// ```
#[derive(Clone)]
pub struct Command {
    program: String,
    args: Vec<Arg>,
    env: Vec<(String, String)>,
    stdin: Option<Stdin>,
    timeout: Duration,
    ok_codes: Vec<i32>,
}

impl Command {
    /// A command running `program` (a bare name such as `mount`, looked up by the runner).
    pub fn new(program: impl Into<String>) -> Self {
        Command {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            stdin: None,
            timeout: DEFAULT_TIMEOUT,
            ok_codes: vec![0],
        }
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(Arg::Plain(arg.into()));
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args
            .extend(args.into_iter().map(|a| Arg::Plain(a.into())));
        self
    }

    /// Adds an environment variable (the runner starts from an empty environment with only
    /// `PATH` and `LC_ALL=C`).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Gives the program this data on standard input.
    pub fn stdin_data(mut self, data: impl Into<String>) -> Self {
        self.stdin = Some(Stdin::Data(data.into()));
        self
    }

    /// Gives the program a secret on standard input, the safe way to pass passwords.
    pub fn stdin_secret(mut self, secret: SecretString) -> Self {
        self.stdin = Some(Stdin::Secret(secret));
        self
    }

    /// Sets the timeout after which the whole process group is killed.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the exit codes that count as success (default `[0]`).
    pub fn ok_codes(mut self, codes: impl IntoIterator<Item = i32>) -> Self {
        self.ok_codes = codes.into_iter().collect();
        self
    }

    /// The program name.
    pub fn program(&self) -> &str {
        &self.program
    }

    /// The arguments.
    pub fn get_args(&self) -> &[Arg] {
        &self.args
    }

    /// The extra environment.
    pub fn get_env(&self) -> &[(String, String)] {
        &self.env
    }

    /// Standard input, if any.
    pub fn get_stdin(&self) -> Option<&Stdin> {
        self.stdin.as_ref()
    }

    /// The timeout.
    pub fn get_timeout(&self) -> Duration {
        self.timeout
    }

    /// The exit codes that count as success.
    pub fn get_ok_codes(&self) -> &[i32] {
        &self.ok_codes
    }

    /// The arguments joined with spaces, secrets as `***`.
    pub fn args_redacted(&self) -> String {
        let mut out = String::new();
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            match a {
                Arg::Plain(s) if s.is_empty() || s.contains(char::is_whitespace) => {
                    out.push('\'');
                    out.push_str(s);
                    out.push('\'');
                }
                Arg::Plain(s) => out.push_str(s),
            }
        }
        out
    }

    /// Turns an [`Output`] into the runner's result: `Ok` when its exit code is one of the
    /// accepted codes, otherwise [`Error::Command`] with the last lines of stderr (secrets of
    /// this command replaced by `***`). Every runner calls this, so real and fake agree.
    ///
    /// ```
    /// use host_storage::{Command, Output};
    /// let cmd = Command::new("iscsiadm").args(["-m", "session"]).ok_codes([0, 21]);
    /// assert!(cmd.check(Output::exit(21, "", "iscsiadm: No active sessions.")).is_ok());
    /// let err = cmd.check(Output::exit(1, "", "boom")).unwrap_err();
    /// assert_eq!(err.to_string(), "command `iscsiadm -m session` failed with exit code 1: boom");
    /// ```
    pub fn check(&self, output: Output) -> Result<Output> {
        if let Exit::Code(c) = output.status {
            if self.ok_codes.contains(&c) {
                return Ok(output);
            }
        }
        Err(Error::Command {
            program: self.program.clone(),
            args: self.args_redacted(),
            status: output.status,
            stderr_tail: self.redact(&tail(&output.stderr)),
        })
    }

    /// Replaces every secret value of this command found in `text` by `***`.
    pub fn redact(&self, text: &str) -> String {
        match &self.stdin {
            Some(Stdin::Secret(s)) if !s.expose_secret().is_empty() => {
                text.replace(s.expose_secret(), "***")
            }
            _ => text.to_owned(),
        }
    }
}

/// The last lines of a program's stderr, at most 10 lines and 2000 bytes.
fn tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.trim_end().lines().collect();
    let start = lines.len().saturating_sub(10);
    let mut out = lines[start..].join("\n");
    if out.len() > 2000 {
        let mut cut = out.len() - 2000;
        while !out.is_char_boundary(cut) {
            cut += 1;
        }
        out = out[cut..].to_owned();
    }
    out
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.program)?;
        if !self.args.is_empty() {
            f.write_str(" ")?;
            f.write_str(&self.args_redacted())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Command")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("env", &self.env)
            .field("stdin", &self.stdin)
            .field("timeout", &self.timeout)
            .field("ok_codes", &self.ok_codes)
            .finish()
    }
}

/// Runs commands on a host.
///
/// `run` returns `Ok` only when the exit code is one of [`Command::get_ok_codes`]; other
/// codes become [`Error::Command`], an expired timeout [`Error::Timeout`].
#[async_trait::async_trait]
pub trait Runner: Send + Sync {
    /// Runs `cmd` to completion.
    async fn run(&self, cmd: &Command) -> Result<Output>;
}

#[async_trait::async_trait]
impl<R: Runner + ?Sized> Runner for &R {
    async fn run(&self, cmd: &Command) -> Result<Output> {
        (**self).run(cmd).await
    }
}

#[async_trait::async_trait]
impl<R: Runner + ?Sized> Runner for std::sync::Arc<R> {
    async fn run(&self, cmd: &Command) -> Result<Output> {
        (**self).run(cmd).await
    }
}

#[async_trait::async_trait]
impl<R: Runner + ?Sized> Runner for Box<R> {
    async fn run(&self, cmd: &Command) -> Result<Output> {
        (**self).run(cmd).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_and_redacts() {
        let cmd = Command::new("mount").args(["-t", "cifs", "-o", "a b", ""]);
        assert_eq!(cmd.to_string(), "mount -t cifs -o 'a b' ''");
        assert_eq!(Command::new("true").to_string(), "true");
    }

    #[test]
    fn check_redacts_secrets_in_stderr_and_keeps_tail() {
        let cmd = Command::new("x")
            .arg("-")
            .stdin_secret(SecretString::from("t0ken"));
        let stderr: String = (1..=15)
            .map(|i| format!("line {i} t0ken t0ken\n"))
            .collect();
        let err = cmd.check(Output::exit(2, "", stderr)).unwrap_err();
        match err {
            Error::Command {
                program,
                args,
                status,
                stderr_tail,
            } => {
                assert_eq!(program, "x");
                assert_eq!(args, "-");
                assert_eq!(status, Exit::Code(2));
                assert_eq!(stderr_tail.lines().count(), 10);
                assert!(stderr_tail.starts_with("line 6 *** ***"));
                assert!(stderr_tail.ends_with("line 15 *** ***"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn signal_is_never_ok() {
        let cmd = Command::new("x");
        let out = Output {
            status: Exit::Signal(9),
            stdout: String::new(),
            stderr: String::new(),
        };
        assert!(matches!(
            cmd.check(out),
            Err(Error::Command {
                status: Exit::Signal(9),
                ..
            })
        ));
    }
}
