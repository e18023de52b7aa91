//! The scripted runner for unit tests.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use super::{Command, Output, Runner};
use crate::error::{Error, Result};

#[derive(Debug, Clone)]
enum ArgsMatch {
    Exact(Vec<String>),
    Any,
}

#[derive(Debug, Clone)]
enum Reply {
    Output(Output),
    Timeout,
}

/// One scripted call of a [`FakeRunner`]: what must be run, and what it answers.
///
/// ```
/// use host_storage::Expect;
/// let e = Expect::new("iscsiadm", ["-m", "session"]).exit(21, "", "iscsiadm: No active sessions.");
/// assert_eq!(e.to_string(), "iscsiadm -m session");
/// ```
#[derive(Debug, Clone)]
pub struct Expect {
    program: String,
    args: ArgsMatch,
    stdin: Option<String>,
    reply: Reply,
}

impl Expect {
    /// Expects `program` with exactly these arguments (secret arguments are compared by
    /// value); answers exit code 0 with no output unless told otherwise.
    pub fn new<I, S>(program: &str, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Expect {
            program: program.to_owned(),
            args: ArgsMatch::Exact(args.into_iter().map(Into::into).collect()),
            stdin: None,
            reply: Reply::Output(Output::success("")),
        }
    }

    /// Expects `program` with any arguments.
    pub fn any_args(program: &str) -> Self {
        Expect {
            program: program.to_owned(),
            args: ArgsMatch::Any,
            stdin: None,
            reply: Reply::Output(Output::success("")),
        }
    }

    /// Also requires this exact standard input (data or secret).
    pub fn stdin(mut self, data: impl Into<String>) -> Self {
        self.stdin = Some(data.into());
        self
    }

    /// Answers exit code 0 with this standard output.
    pub fn stdout(mut self, stdout: impl Into<String>) -> Self {
        self.reply = Reply::Output(Output::success(stdout));
        self
    }

    /// Answers this exit code, standard output and standard error.
    pub fn exit(mut self, code: i32, stdout: impl Into<String>, stderr: impl Into<String>) -> Self {
        self.reply = Reply::Output(Output::exit(code, stdout, stderr));
        self
    }

    /// Answers as if the command's timeout expired.
    pub fn timeout(mut self) -> Self {
        self.reply = Reply::Timeout;
        self
    }

    fn matches(&self, cmd: &Command) -> bool {
        if self.program != cmd.program() {
            return false;
        }
        if let ArgsMatch::Exact(want) = &self.args {
            let got = cmd.get_args();
            if want.len() != got.len() || want.iter().zip(got).any(|(w, g)| w != g.expose()) {
                return false;
            }
        }
        match &self.stdin {
            None => true,
            Some(want) => cmd.get_stdin().map(|s| s.expose()) == Some(want.as_str()),
        }
    }
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.program)?;
        match &self.args {
            ArgsMatch::Exact(a) if a.is_empty() => Ok(()),
            ArgsMatch::Exact(a) => write!(f, " {}", a.join(" ")),
            ArgsMatch::Any => f.write_str(" <any args>"),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    script: VecDeque<Expect>,
    calls: Vec<String>,
    verified: bool,
}

/// A [`Runner`] that answers from a script and checks that exactly the scripted calls were
/// made, in order.
///
/// An unscripted or out-of-order call fails with [`Error::UnexpectedCall`] naming it. Calls
/// scripted but never made are reported by [`FakeRunner::verify`], and a fake dropped with
/// unmet expectations panics listing them (unless the thread is already panicking).
///
/// ```
/// use host_storage::{Command, Expect, FakeRunner, Runner};
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let fake = FakeRunner::new();
/// fake.expect(Expect::new("systemctl", ["reload", "autofs"]));
/// fake.run(&Command::new("systemctl").args(["reload", "autofs"])).await.unwrap();
/// fake.verify();
/// # }
/// ```
#[derive(Debug, Default)]
pub struct FakeRunner {
    state: Mutex<State>,
}

impl FakeRunner {
    /// An empty script.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends one expected call.
    pub fn expect(&self, e: Expect) -> &Self {
        let mut st = self.lock();
        st.script.push_back(e);
        st.verified = false;
        self
    }

    /// The calls made so far, as shown by [`Command`]'s `Display` (secrets redacted).
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    /// The scripted calls not made yet.
    pub fn unmet(&self) -> Vec<String> {
        self.lock().script.iter().map(|e| e.to_string()).collect()
    }

    /// Panics listing every scripted call that was not made.
    pub fn verify(&self) {
        let unmet = self.unmet();
        self.lock().verified = true;
        assert!(
            unmet.is_empty(),
            "FakeRunner: expected calls not made: {unmet:#?}"
        );
    }
}

impl Drop for FakeRunner {
    fn drop(&mut self) {
        let st = self.lock();
        if !st.verified && !st.script.is_empty() && !std::thread::panicking() {
            let unmet: Vec<String> = st.script.iter().map(|e| e.to_string()).collect();
            drop(st);
            panic!("FakeRunner dropped with expected calls not made: {unmet:#?}");
        }
    }
}

#[async_trait::async_trait]
impl Runner for FakeRunner {
    async fn run(&self, cmd: &Command) -> Result<Output> {
        let reply = {
            let mut st = self.lock();
            st.calls.push(cmd.to_string());
            match st.script.front() {
                Some(e) if e.matches(cmd) => st.script.pop_front().map(|e| e.reply),
                next => {
                    let expected = next.map_or_else(|| "nothing".to_owned(), |e| e.to_string());
                    return Err(Error::UnexpectedCall {
                        call: cmd.to_string(),
                        expected,
                    });
                }
            }
        };
        match reply {
            Some(Reply::Output(out)) => cmd.check(out),
            Some(Reply::Timeout) | None => {
                let after: Duration = cmd.get_timeout();
                Err(Error::Timeout {
                    program: cmd.program().to_owned(),
                    args: cmd.args_redacted(),
                    after,
                })
            }
        }
    }
}
