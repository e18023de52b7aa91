//! `cargo xtask`: project automation.
//!
//! * `cargo xtask test [STEP...]` installs what the test tiers need (Debian packages, a Python
//!   venv), then runs formatting, clippy, the workspace tests, the host tier (root: the ignored
//!   `host_*` tests with a libvirtd started here), the Python fidelity tier and the Python
//!   bindings tier, and closes with a summary table and the line `N passed, N failed`.
//! * `cargo xtask demo` sets up the lab and runs the whole kvmstor story in its guest
//!   (`examples/src/bin/demo.rs`); `--ontap-only` runs the ONTAP-level demo here.
//! * `cargo xtask bench [client|clone|attach]` compares `ontap-client` with NetApp's
//!   `netapp-ontap` against the simulator (`target/bench/ontap-client.md`), ONTAP file
//!   clones with libvirt's vol-clone (`target/bench/clone.md`) and times the facade's
//!   attach/detach per protocol in the lab (`target/bench/attach.md`); all three by default.
//!
//! Kept to std + anyhow so that it compiles in seconds on a fresh machine.

mod bench;
mod demo;
mod lab;
mod lab_bench;
mod proc;
mod setup;
mod summary;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Result};

use crate::proc::{run_streamed, SimDaemon};
use crate::summary::{Counts, Outcome, Summary};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  test [STEP...]   install what the tests need, then run every step (or only the named ones):
                   install, fmt, clippy, unit, host, python, bindings, lab
  lab [FILTER]     boot a Debian kernel under QEMU (virtme-ng) with the simulator's kernel
                   backend and run the lab_* tests inside (NFS, SMB, iSCSI, NVMe/TCP)
  lab-bench [iscsi|nvme]  attach/detach times of host-storage, the bare kernel path and os-brick
                   in one lab guest boot; writes target/bench/lab.md
  demo [--ontap-only]
                   set up the lab and run the whole story in its guest: NFS datastore, VM
                   disk, snapshot, clone, iSCSI + OCFS2 datastore, detach (examples/src/bin/
                   demo.rs); --ontap-only: the ONTAP-level demo here, no guest
  bench [PART]     PART client: ontap-client vs netapp-ontap (target/bench/ontap-client.md);
                   clone: 20 ONTAP file clones vs libvirt vol-clone (target/bench/clone.md);
                   attach: facade attach/detach per protocol in the lab (target/bench/attach.md);
                   all three without PART
  help             print this text
";

/// The steps of `cargo xtask test`, in the order they run.
const TEST_STEPS: &[&str] = &[
    "install", "fmt", "clippy", "unit", "host", "python", "bindings", "lab",
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("demo") => demo::run(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("lab") => lab::run(&args[1..]),
        Some("lab-bench") => lab_bench::run(&args[1..]),
        Some("help" | "-h" | "--help") | None => {
            print!("{USAGE}");
            Ok(true)
        }
        Some(other) => {
            eprint!("unknown command `{other}`\n\n{USAGE}");
            Ok(false)
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The repository root: xtask lives in `<root>/xtask`.
pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask has a parent directory")
        .to_path_buf()
}

/// Cargo's target directory, as cargo itself would choose it.
pub(crate) fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                repo_root().join(dir)
            }
        }
        None => repo_root().join("target"),
    }
}

/// The `cargo` that runs us, so that the same toolchain builds everything.
pub(crate) fn cargo() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(repo_root());
    cmd
}

fn test(args: &[String]) -> Result<bool> {
    for arg in args {
        if !TEST_STEPS.contains(&arg.as_str()) {
            bail!(
                "unknown test step `{arg}`; steps are {}",
                TEST_STEPS.join(", ")
            );
        }
    }
    let wanted = |step: &str| args.is_empty() || args.iter().any(|a| a == step);
    let mut summary = Summary::default();

    if wanted("install") {
        let tiers: Vec<&str> = setup::TIERS.iter().map(|t| t.name).collect();
        summary.record("install packages", || setup::install_packages(&tiers));
    }
    if wanted("fmt") {
        summary.record("cargo fmt --check", || {
            let mut cmd = cargo();
            cmd.args(["fmt", "--all", "--", "--check"]);
            Ok(check_step(run_streamed(&mut cmd)?.success))
        });
    }
    if wanted("clippy") {
        summary.record("cargo clippy", || {
            let mut cmd = cargo();
            cmd.args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]);
            Ok(check_step(run_streamed(&mut cmd)?.success))
        });
    }
    if wanted("unit") {
        summary.record("cargo test --workspace", || {
            let mut cmd = cargo();
            cmd.args(["test", "--workspace", "--no-fail-fast"]);
            let run = run_streamed(&mut cmd)?;
            let counts = summary::parse_cargo_test(&run.stdout);
            Ok(test_step(run.success, counts))
        });
    }
    if wanted("host") {
        summary.record("host tier (root, daemons)", host_tier);
    }
    if wanted("python") {
        python_tier(&mut summary);
    }
    if wanted("bindings") {
        summary.record("python bindings (run-tests.sh)", bindings_tier);
    }
    if wanted("lab") {
        summary.record("lab tier (QEMU guest kernel)", || {
            let (ok, counts) = lab::run_counted(None)?;
            Ok(test_step(ok, Some(counts)))
        });
    }

    summary.print();
    Ok(summary.all_passed())
}

/// A step that checks something but runs no tests.
fn check_step(success: bool) -> Outcome {
    if success {
        Outcome::Passed(None)
    } else {
        Outcome::Failed(None)
    }
}

/// A step that runs tests: a non-zero exit fails the step even when every parsed test passed.
fn test_step(success: bool, counts: Option<Counts>) -> Outcome {
    match (success, counts) {
        (true, Some(c)) if c.failed == 0 && c.passed > 0 => Outcome::Passed(Some(c)),
        (true, Some(c)) if c.passed == 0 && c.failed == 0 => Outcome::Failed(Some(c)),
        (true, None) => Outcome::Failed(None),
        (_, counts) => Outcome::Failed(counts),
    }
}

/// The host tier: the `#[ignore]`d `host_*` tests of every crate, as root, against a libvirtd
/// started here (and stopped after, whatever happens). Each test starts any other daemon it
/// needs (automount, systemd-udevd, tgtd) and holds its loop devices and mounts in guards.
fn host_tier() -> Result<Outcome> {
    if !proc::is_root() {
        return Ok(Outcome::Skipped(
            "needs root (loop devices, mount, daemons)".to_owned(),
        ));
    }
    let libvirtd = proc::Libvirtd::start()?;
    let mut cmd = cargo();
    // `--tests`: no doc-test run, which could only filter everything out.
    cmd.args([
        "test",
        "--workspace",
        "--tests",
        "--no-fail-fast",
        "--",
        "--ignored",
        "host_",
    ])
    .env("KVMSTOR_LIBVIRT_URI", proc::LIBVIRT_URI)
    .env("KVMSTOR_LIBVIRTD_PIDFILE", libvirtd.pid_file());
    let run = run_streamed(&mut cmd)?;
    drop(libvirtd);
    Ok(test_step(
        run.success,
        summary::parse_cargo_test(&run.stdout),
    ))
}

/// The Python bindings tier: `examples/python/run-tests.sh` builds the extension with maturin
/// into its own venv and runs its pytest suite against the simulator binary.
fn bindings_tier() -> Result<Outcome> {
    let mut cmd = Command::new("bash");
    cmd.current_dir(repo_root())
        .arg("examples/python/run-tests.sh")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("CURL_CA_BUNDLE");
    let run = run_streamed(&mut cmd)?;
    Ok(test_step(run.success, summary::parse_pytest(&run.stdout)))
}

/// The Python fidelity tier: NetApp's own `netapp-ontap` library against our simulator.
fn python_tier(summary: &mut Summary) {
    let venv_ok = summary.record("python venv + pip install", || {
        setup::python_venv().map(|_| Outcome::Passed(None))
    });
    let build_ok = summary.record("cargo build -p ontap-sim", || {
        let mut cmd = cargo();
        cmd.args(["build", "-p", "ontap-sim", "--bin", "ontap-sim"]);
        Ok(check_step(run_streamed(&mut cmd)?.success))
    });
    if !(venv_ok && build_ok) {
        summary.skipped("pytest tests/python", "prerequisite step failed");
        summary.skipped(
            "ontap-sim python_client + san_python",
            "prerequisite step failed",
        );
        return;
    }
    summary.record("pytest tests/python", || {
        let sim_bin = target_dir().join("debug").join("ontap-sim");
        let sim = SimDaemon::start(&sim_bin, "pytest", &[])?;
        let mut cmd = Command::new(setup::venv_python());
        cmd.current_dir(repo_root()).args([
            "-m",
            "pytest",
            "-v",
            "-p",
            "no:cacheprovider",
            "tests/python",
        ]);
        sim.configure_client(&mut cmd);
        cmd.env("PYTHONDONTWRITEBYTECODE", "1");
        let run = run_streamed(&mut cmd)?;
        let counts = summary::parse_pytest(&run.stdout);
        if !run.success {
            println!("simulator log: {}", sim.log_file().display());
        }
        // pytest exits 5 when it collected no test: that is a failure of the tier.
        if run.code == Some(5) {
            eprintln!("xtask: pytest collected no tests");
            return Ok(Outcome::Failed(counts));
        }
        Ok(test_step(run.success, counts))
    });
    // ontap-sim's own tests that drive netapp-ontap from Rust (ignored without a Python).
    summary.record("ontap-sim python_client + san_python", || {
        let mut cmd = cargo();
        cmd.args([
            "test",
            "-p",
            "ontap-sim",
            "--test",
            "python_client",
            "--test",
            "san_python",
            "--",
            "--ignored",
        ])
        .env("ONTAP_SIM_PYTHON", setup::venv_python())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("CURL_CA_BUNDLE");
        let run = run_streamed(&mut cmd)?;
        Ok(test_step(
            run.success,
            summary::parse_cargo_test(&run.stdout),
        ))
    });
}
