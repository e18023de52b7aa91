//! SystemRunner against real programs, FakeRunner scripting.

use std::time::{Duration, Instant};

use host_storage::{Command, Error, Exit, Expect, FakeRunner, Runner, SystemRunner};
use secrecy::SecretString;

#[tokio::test]
async fn true_succeeds_with_empty_output() {
    let out = SystemRunner::new()
        .run(&Command::new("true"))
        .await
        .unwrap();
    assert_eq!(out.status, Exit::Code(0));
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr, "");
}

#[tokio::test]
async fn false_fails_with_typed_error() {
    let err = SystemRunner::new()
        .run(&Command::new("false").arg("--ignored"))
        .await
        .unwrap_err();
    match err {
        Error::Command {
            program,
            args,
            status,
            stderr_tail,
        } => {
            assert_eq!(program, "false");
            assert_eq!(args, "--ignored");
            assert_eq!(status, Exit::Code(1));
            assert_eq!(stderr_tail, "");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn accepted_nonzero_code_is_ok() {
    let out = SystemRunner::new()
        .run(
            &Command::new("sh")
                .args(["-c", "echo out; echo err >&2; exit 3"])
                .ok_codes([0, 3]),
        )
        .await
        .unwrap();
    assert_eq!(out.status, Exit::Code(3));
    assert_eq!(out.stdout, "out\n");
    assert_eq!(out.stderr, "err\n");
}

#[tokio::test]
async fn environment_is_clean_and_c_locale() {
    let out = SystemRunner::new()
        .run(&Command::new("env").env("KVMSTOR_X", "1"))
        .await
        .unwrap();
    let mut lines: Vec<&str> = out.stdout.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        [
            "KVMSTOR_X=1",
            "LANG=C",
            "LC_ALL=C",
            "PATH=/usr/sbin:/usr/bin:/sbin:/bin"
        ]
    );
}

#[tokio::test]
async fn stderr_tail_names_the_failure() {
    let err = SystemRunner::new()
        .run(&Command::new("sh").args([
            "-c",
            "echo first >&2; echo 'mount: permission denied' >&2; exit 32",
        ]))
        .await
        .unwrap_err();
    assert!(err.is_exit_code(32));
    assert_eq!(
        err.to_string(),
        "command `sh -c 'echo first >&2; echo '\\''mount: permission denied'\\'' >&2; exit 32'` failed with exit code 32: first\nmount: permission denied"
            .replace("'\\''", "'")
    );
}

#[tokio::test]
async fn paths_and_unknown_programs_are_refused() {
    let r = SystemRunner::new();
    assert!(matches!(
        r.run(&Command::new("/bin/true")).await,
        Err(Error::Invalid { .. })
    ));
    match r.run(&Command::new("kvmstor-no-such-program")).await {
        Err(Error::ProgramNotFound { program, searched }) => {
            assert_eq!(program, "kvmstor-no-such-program");
            assert_eq!(searched.len(), 4);
        }
        other => panic!("unexpected {other:?}"),
    }
    let p = r.resolve("sh").unwrap();
    assert!(p.starts_with("/usr/bin") || p.starts_with("/bin"), "{p:?}");
    assert_eq!(r.resolve("sh").unwrap(), p);
}

#[tokio::test]
async fn secret_goes_by_stdin_and_never_in_args() {
    let cmd = Command::new("cat").stdin_secret(SecretString::from("hunter2"));
    assert_eq!(cmd.to_string(), "cat");
    assert!(!format!("{cmd:?}").contains("hunter2"));
    let out = SystemRunner::new().run(&cmd).await.unwrap();
    assert_eq!(out.stdout, "hunter2");
}

fn process_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // A zombie waiting for its new parent to reap it is dead too.
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|s| s.trim_start().starts_with('Z')),
    }
}

#[tokio::test]
async fn timeout_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("grandchild.pid");
    let script = format!("sleep 5 & echo $! > {}; wait", pidfile.display());
    let started = Instant::now();
    let err = SystemRunner::new()
        .run(
            &Command::new("sh")
                .args(["-c", &script])
                .timeout(Duration::from_millis(200)),
        )
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    match &err {
        Error::Timeout {
            program,
            args: _,
            after,
        } => {
            assert_eq!(program, "sh");
            assert_eq!(*after, Duration::from_millis(200));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.is_timeout());
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    while !process_gone(pid) {
        assert!(
            Instant::now() < deadline,
            "grandchild sleep {pid} survived the timeout"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn fake_answers_in_order_and_verifies() {
    let fake = FakeRunner::new();
    fake.expect(
        Expect::new("iscsiadm", ["-m", "session"])
            .stdout("tcp: [1] 10.0.0.1:3260,1 iqn.1992-08.com.netapp:sn.1:vs.3 (non-flash)\n"),
    )
    .expect(Expect::new("iscsiadm", ["-m", "node"]).exit(21, "", "iscsiadm: No records found"))
    .expect(Expect::any_args("mount").timeout());
    let out = fake
        .run(&Command::new("iscsiadm").args(["-m", "session"]))
        .await
        .unwrap();
    assert!(out.stdout.starts_with("tcp: [1]"));
    let err = fake
        .run(&Command::new("iscsiadm").args(["-m", "node"]))
        .await
        .unwrap_err();
    assert!(err.is_exit_code(21));
    assert_eq!(
        err.to_string(),
        "command `iscsiadm -m node` failed with exit code 21: iscsiadm: No records found"
    );
    let err = fake
        .run(
            &Command::new("mount")
                .args(["-t", "nfs"])
                .timeout(Duration::from_secs(7)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { after, .. } if after == Duration::from_secs(7)));
    assert_eq!(
        fake.calls(),
        ["iscsiadm -m session", "iscsiadm -m node", "mount -t nfs"]
    );
    fake.verify();
}

#[tokio::test]
async fn fake_rejects_unexpected_calls_naming_them() {
    let fake = FakeRunner::new();
    fake.expect(Expect::new("systemctl", ["reload", "autofs"]));
    let err = fake
        .run(&Command::new("systemctl").args(["restart", "autofs"]))
        .await
        .unwrap_err();
    match &err {
        Error::UnexpectedCall { call, expected } => {
            assert_eq!(call, "systemctl restart autofs");
            assert_eq!(expected, "systemctl reload autofs");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(fake.unmet(), ["systemctl reload autofs"]);
    fake.run(&Command::new("systemctl").args(["reload", "autofs"]))
        .await
        .unwrap();
    let err = fake.run(&Command::new("true")).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "unexpected command `true` (next expected: nothing)"
    );
    fake.verify();
}

#[tokio::test]
async fn fake_matches_secret_stdin_and_redacts_calls() {
    let fake = FakeRunner::new();
    fake.expect(Expect::new("tool", ["--user", "admin", "--password-stdin"]).stdin("pw2"));
    let cmd = Command::new("tool")
        .args(["--user", "admin", "--password-stdin"])
        .stdin_secret(SecretString::from("pw2"));
    fake.run(&cmd).await.unwrap();
    assert_eq!(fake.calls(), ["tool --user admin --password-stdin"]);
    assert!(!format!("{cmd:?}").contains("pw2"));
    fake.verify();
}

#[test]
fn fake_verify_lists_unmet_expectations() {
    let fake = FakeRunner::new();
    fake.expect(Expect::new("multipath", ["-ll"]))
        .expect(Expect::any_args("nvme"));
    let msg = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fake.verify()))
        .unwrap_err()
        .downcast::<String>()
        .unwrap();
    assert!(msg.contains("\"multipath -ll\""), "{msg}");
    assert!(msg.contains("\"nvme <any args>\""), "{msg}");
}

#[test]
fn fake_dropped_with_unmet_expectations_panics() {
    let result = std::panic::catch_unwind(|| {
        let fake = FakeRunner::new();
        fake.expect(Expect::new("dmsetup", ["status"]));
        drop(fake);
    });
    let msg = result.unwrap_err().downcast::<String>().unwrap();
    assert!(msg.contains("dmsetup status"), "{msg}");
}
