//! `cargo xtask lab [FILTER]`: the lab tier, a real Linux kernel under QEMU (virtme-ng, TCG).
//!
//! 1. Installs what is missing: Debian packages for QEMU 7.2 (with the `qemu-utils`
//!    downgrade it needs), the target and initiator tools the guest runs (the guest's `/`
//!    is the host's), the Debian 6.1 kernel package extracted into `target/lab/kernel`
//!    with an uncompressed `vmlinux` (PVH boot, twice as fast under TCG), virtme-ng in a
//!    venv and the Rust virtiofsd (9p is used when that cannot be built).
//! 2. Builds `ontap-sim` and the `lab_*` test binaries on the host.
//! 3. Boots the guest once; `lab/guest-init.sh` starts the daemons and the simulator with
//!    its kernel backend and runs every lab binary with `--ignored FILTER`.
//! 4. Reads the libtest output the guest left in `target/lab/out/results`, prints one line
//!    per test and fails when any test failed or none ran.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Packages the host needs: QEMU and the build deps of virtiofsd, plus everything the
/// guest runs (it sees the host's root file system).
const PACKAGES: &[&str] = &[
    "kmod",
    "busybox-static",
    "udev",
    "python3-venv",
    "libseccomp-dev",
    "libcap-ng-dev",
    "btrfs-progs",
    "rpcbind",
    "nfs-common",
    "nfs-kernel-server",
    "autofs",
    "samba",
    "cifs-utils",
    "open-iscsi",
    "multipath-tools",
    "nvme-cli",
    "ocfs2-tools",
    "gfs2-utils",
    "corosync",
    "dlm-controld",
    "libvirt-daemon-system",
    "qemu-utils",
];

/// Crates whose `lab_*` integration tests run in the guest.
const LAB_CRATES: &[&str] = &[
    "host-storage",
    "cluster-fs",
    "libvirt-pools",
    "kvmstor",
    "kvmstor-examples",
];

/// Wall-clock limit for one guest run.
const GUEST_TIMEOUT: Duration = Duration::from_secs(20 * 60);

pub(crate) fn lab_dir() -> PathBuf {
    crate::target_dir().join("lab")
}

/// Holds the lab for one run: the guest's out directory and the loop/configfs state inside
/// it are per boot, so concurrent `cargo xtask lab*` runs (several engineers on one
/// machine) wait for each other here instead of clobbering `target/lab/out`.
pub(crate) fn exclusive() -> Result<fs::File> {
    fs::create_dir_all(lab_dir())?;
    let path = lab_dir().join("lab.lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    if file.try_lock().is_err() {
        println!("lab: another lab run holds {}; waiting", path.display());
        file.lock()
            .with_context(|| format!("locking {}", path.display()))?;
    }
    Ok(file)
}

/// Runs the lab tier; `Ok(false)` when a test failed.
pub(crate) fn run(args: &[String]) -> Result<bool> {
    let filter = match args {
        [] => None,
        [f] => Some(f.as_str()),
        _ => bail!("usage: cargo xtask lab [FILTER]"),
    };
    run_counted(filter).map(|(ok, _)| ok)
}

/// The lab tier as a step of `cargo xtask test`: success and the test counts.
pub(crate) fn run_counted(filter: Option<&str>) -> Result<(bool, crate::summary::Counts)> {
    let start = Instant::now();
    let _lab = exclusive()?;

    let t = Instant::now();
    install_packages()?;
    let vmlinux = guest_kernel()?;
    let vng = virtme_ng()?;
    let virtiofsd = virtiofsd();
    println!("lab: setup {:.1}s", t.elapsed().as_secs_f64());

    let t = Instant::now();
    let sim = build_sim()?;
    let tests = build_tests()?;
    println!(
        "lab: build {:.1}s ({} test binaries)",
        t.elapsed().as_secs_f64(),
        tests.len()
    );

    let out = fresh_out_dir("out")?;
    write_plan(&out, &sim, &tests, filter)?;

    let t = Instant::now();
    let booted = boot(&vng, &vmlinux, virtiofsd.as_deref(), &out)?;
    let guest_secs = t.elapsed().as_secs_f64();
    println!("lab: guest run {guest_secs:.1}s (vng exit: {booted})");

    let report = collect(&out, &tests)?;
    print!("{}", report.text);
    println!(
        "lab: {} passed, {} failed; total {:.1}s; logs in {}",
        report.passed,
        report.failed,
        start.elapsed().as_secs_f64(),
        out.display()
    );
    let counts = crate::summary::Counts {
        passed: report.passed as u64,
        failed: report.failed as u64,
        skipped: 0,
    };
    if report.passed + report.failed == 0 {
        eprintln!("lab: no test ran; see {}", out.join("guest.log").display());
        return Ok((false, counts));
    }
    Ok((report.failed == 0 && report.binaries_ok, counts))
}

fn dpkg_installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .stderr(Stdio::null())
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "install ok installed")
        .unwrap_or(false)
}

fn apt(args: &[&str]) -> Result<()> {
    let status = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("running apt-get")?;
    if !status.success() {
        bail!("apt-get {} failed with {status}", args.join(" "));
    }
    Ok(())
}

pub(crate) fn install_packages() -> Result<()> {
    // ocfs2-tools hard-code ocfs2_dlmfs at `/dlm`; the guest's `/` is the host's, read-only,
    // so the mount point must exist on the host.
    if !Path::new("/dlm").is_dir() {
        fs::create_dir("/dlm").context("creating /dlm (the ocfs2_dlmfs mount point)")?;
    }
    let missing: Vec<&str> = PACKAGES
        .iter()
        .copied()
        .filter(|p| !dpkg_installed(p))
        .collect();
    let need_qemu = !dpkg_installed("qemu-system-x86");
    if missing.is_empty() && !need_qemu {
        return Ok(());
    }
    apt(&["update", "-qq"])?;
    if !missing.is_empty() {
        println!("lab: installing {}", missing.join(" "));
        let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
        args.extend(&missing);
        apt(&args)?;
    }
    if need_qemu {
        // qemu-system-x86 7.2 (bookworm) Breaks a backported qemu-utils: install both at
        // the bookworm version, downgrading qemu-utils when needed.
        let madison =
            crate::proc::output_of(Command::new("apt-cache").args(["madison", "qemu-utils"]))?;
        let version = madison
            .lines()
            .filter(|l| l.contains(" bookworm/main "))
            .filter_map(|l| l.split('|').nth(1))
            .map(str::trim)
            .next()
            .context("no bookworm qemu-utils in apt-cache madison")?;
        let system = format!("qemu-system-x86={version}");
        let utils = format!("qemu-utils={version}");
        apt(&[
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "--allow-downgrades",
            &system,
            &utils,
        ])?;
    }
    Ok(())
}

/// The guest kernel: the Debian package linux-image-amd64 depends on, extracted (modules
/// included: vng finds them next to the kernel) plus an uncompressed `vmlinux`.
pub(crate) fn guest_kernel() -> Result<PathBuf> {
    let dir = lab_dir().join("kernel");
    let root = dir.join("root");
    let boot = root.join("boot");
    if let Some(v) = find_vmlinux(&boot) {
        return Ok(v);
    }
    fs::create_dir_all(&dir)?;
    if !root.join("lib/modules").is_dir() {
        let deps = crate::proc::output_of(
            Command::new("apt-cache").args(["depends", "linux-image-amd64"]),
        )?;
        let pkg = deps
            .lines()
            .filter_map(|l| l.trim().strip_prefix("Depends: "))
            .find(|p| p.starts_with("linux-image-6"))
            .context("linux-image-amd64 depends on no linux-image-6.*")?
            .to_owned();
        println!("lab: downloading {pkg}");
        let status = Command::new("apt-get")
            .args(["download", "-qq", &pkg])
            .current_dir(&dir)
            .status()?;
        if !status.success() {
            bail!("apt-get download {pkg} failed with {status}");
        }
        let deb = fs::read_dir(&dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|e| e == "deb"))
            .context("the downloaded .deb is missing")?;
        let status = Command::new("dpkg")
            .arg("-x")
            .arg(&deb)
            .arg(&root)
            .status()?;
        if !status.success() {
            bail!("dpkg -x {} failed with {status}", deb.display());
        }
        fs::remove_file(&deb)?;
    }
    let vmlinuz = fs::read_dir(&boot)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinuz-"))
        })
        .context("no vmlinuz in the kernel package")?;
    let name = vmlinuz
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let vmlinux = boot.join(name.replacen("vmlinuz-", "vmlinux-", 1));
    // The bzImage payload is an xz stream; the ELF inside boots through PVH.
    let status = Command::new("python3")
        .args([
            "-c",
            "import lzma,sys\nd=open(sys.argv[1],'rb').read();i=d.find(b'\\xfd7zXZ\\x00')\n\
             open(sys.argv[2]+'.part','wb').write(lzma.LZMADecompressor().decompress(d[i:]))",
        ])
        .arg(&vmlinuz)
        .arg(&vmlinux)
        .status()?;
    if !status.success() {
        bail!("extracting vmlinux from {} failed", vmlinuz.display());
    }
    let mut part = vmlinux.clone().into_os_string();
    part.push(".part");
    fs::rename(&part, &vmlinux)?;
    Ok(vmlinux)
}

fn find_vmlinux(boot: &Path) -> Option<PathBuf> {
    fs::read_dir(boot)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinux-") && !n.ends_with(".part"))
        })
}

pub(crate) fn virtme_ng() -> Result<PathBuf> {
    let venv = lab_dir().join("venv");
    let vng = venv.join("bin/vng");
    if vng.exists() {
        return Ok(vng);
    }
    println!("lab: installing virtme-ng into {}", venv.display());
    let status = Command::new("python3")
        .arg("-m")
        .arg("venv")
        .arg(&venv)
        .status()?;
    if !status.success() {
        bail!("python3 -m venv failed with {status}");
    }
    let status = Command::new(venv.join("bin/pip"))
        .args(["install", "-q", "virtme-ng"])
        .status()?;
    if !status.success() {
        bail!("pip install virtme-ng failed with {status}");
    }
    Ok(vng)
}

/// The Rust virtiofsd's directory, or `None` (vng then shares `/` over 9p, twice as slow).
pub(crate) fn virtiofsd() -> Option<PathBuf> {
    let root = lab_dir().join("virtiofsd");
    let bin = root.join("bin");
    if bin.join("virtiofsd").exists() {
        return Some(bin);
    }
    println!("lab: cargo install virtiofsd (once)");
    let ok = crate::cargo()
        .args(["install", "-q", "--locked", "virtiofsd", "--root"])
        .arg(&root)
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .is_ok_and(|s| s.success());
    if ok && bin.join("virtiofsd").exists() {
        Some(bin)
    } else {
        eprintln!("lab: virtiofsd could not be built; the guest root falls back to 9p");
        None
    }
}

pub(crate) fn build_sim() -> Result<PathBuf> {
    build_bin("ontap-sim", "ontap-sim")
}

/// `target/lab/<name>`, emptied (a previous run's results would mislead) and created.
pub(crate) fn fresh_out_dir(name: &str) -> Result<PathBuf> {
    let out = lab_dir().join(name);
    if out.exists() {
        fs::remove_dir_all(&out).with_context(|| format!("removing {}", out.display()))?;
    }
    fs::create_dir_all(&out)?;
    Ok(out)
}

/// The benches' repetitions: `LAB_BENCH_REPS`, else `default`; written to
/// `<out>/bench-reps` for the guest.
pub(crate) fn bench_reps(out: &Path, default: usize) -> Result<usize> {
    let reps: usize = match std::env::var("LAB_BENCH_REPS") {
        Ok(r) => r.parse().context("LAB_BENCH_REPS must be a number")?,
        Err(_) => default,
    };
    fs::write(out.join("bench-reps"), format!("{reps}\n"))?;
    Ok(reps)
}

/// The guest kernel's version as the guest log's `guest up: ` line names it (empty when
/// the guest never came up).
pub(crate) fn guest_kernel_release(out: &Path) -> String {
    fs::read_to_string(out.join("guest.log"))
        .ok()
        .and_then(|l| {
            l.lines()
                .find_map(|l| l.split("guest up: ").nth(1).map(str::to_owned))
        })
        .unwrap_or_default()
}

/// Builds binary `bin` of `package` (debug) and returns its path.
pub(crate) fn build_bin(package: &str, bin: &str) -> Result<PathBuf> {
    let status = crate::cargo()
        .args(["build", "-q", "-p", package, "--bin", bin])
        .status()?;
    if !status.success() {
        bail!("building {bin} ({package}) failed with {status}");
    }
    Ok(crate::target_dir().join("debug").join(bin))
}

/// Builds test target `test` of `package` (optimised when `release`) and returns its
/// executable.
pub(crate) fn build_test(package: &str, test: &str, release: bool) -> Result<PathBuf> {
    let mut cmd = crate::cargo();
    cmd.args([
        "test",
        "--no-run",
        "--message-format=json-render-diagnostics",
    ]);
    if release {
        cmd.arg("--release");
    }
    cmd.args(["-p", package, "--test", test]);
    let json = crate::proc::output_of(&mut cmd)?;
    test_executable(&json, test)
        .map(PathBuf::from)
        .with_context(|| format!("no {test} test executable in cargo's output"))
}

/// The executable of test target `test` in cargo's JSON messages.
fn test_executable<'a>(json: &'a str, test: &str) -> Option<&'a str> {
    json.lines()
        .filter(|l| {
            l.contains("\"reason\":\"compiler-artifact\"")
                && l.contains("\"kind\":[\"test\"]")
                && json_str(l, "\"name\":\"") == Some(test)
        })
        .find_map(|l| json_str(l, "\"executable\":\""))
}

/// Builds the lab crates' tests and returns the `lab_*` test executables.
fn build_tests() -> Result<Vec<PathBuf>> {
    let mut cmd = crate::cargo();
    cmd.args([
        "test",
        "--no-run",
        "--message-format=json-render-diagnostics",
    ]);
    for krate in LAB_CRATES {
        cmd.args(["-p", krate]);
    }
    let json = crate::proc::output_of(&mut cmd)?;
    let tests = lab_executables(&json);
    if tests.is_empty() {
        bail!("no lab_* test target found in {}", LAB_CRATES.join(", "));
    }
    Ok(tests)
}

/// Picks the executables of test targets named `lab_*` out of cargo's JSON messages.
fn lab_executables(json: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for line in json.lines() {
        if !line.contains("\"reason\":\"compiler-artifact\"")
            || !line.contains("\"kind\":[\"test\"]")
        {
            continue;
        }
        let (Some(name), Some(exe)) = (
            json_str(line, "\"name\":\""),
            json_str(line, "\"executable\":\""),
        ) else {
            continue;
        };
        if name.starts_with("lab_") {
            found.push(PathBuf::from(exe));
        }
    }
    found.sort();
    found.dedup();
    found
}

/// The string value after `key` (paths and target names carry no escapes here).
pub(crate) fn json_str<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.find(key)? + key.len();
    let len = line[start..].find('"')?;
    Some(&line[start..start + len])
}

pub(crate) fn write_plan(
    out: &Path,
    sim: &Path,
    tests: &[PathBuf],
    filter: Option<&str>,
) -> Result<()> {
    let mut plan = String::new();
    let quote = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
    writeln!(plan, "LAB_SIM_BIN={}", quote(&sim.display().to_string()))?;
    let list: Vec<String> = tests.iter().map(|t| t.display().to_string()).collect();
    writeln!(plan, "LAB_TESTS={}", quote(&list.join("\n")))?;
    writeln!(plan, "LAB_FILTER={}", quote(filter.unwrap_or("")))?;
    fs::write(out.join("plan.env"), plan)?;
    Ok(())
}

/// Boots the guest and waits for it; the guest's console goes to `target/lab/out/vng.log`.
pub(crate) fn boot(
    vng: &Path,
    vmlinux: &Path,
    virtiofsd: Option<&Path>,
    out: &Path,
) -> Result<String> {
    let init = crate::repo_root().join("lab/guest-init.sh");
    let log = fs::File::create(out.join("vng.log"))?;
    // vng runs `virtme-run` from its venv and looks for virtiofsd on PATH.
    let mut dirs: Vec<PathBuf> = vng.parent().map(Path::to_path_buf).into_iter().collect();
    dirs.extend(virtiofsd.map(Path::to_path_buf));
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    let path = std::env::join_paths(dirs)?;
    let mut child = Command::new(vng)
        .arg("--run")
        .arg(vmlinux)
        // 4 GiB: the simulator's btrfs image lives on a tmpfs in the guest (knfsd cannot
        // export the overlay), so the volumes' blocks are guest RAM.
        .args(["--disable-kvm", "--cpus", "2", "--memory", "4G", "--rwdir"])
        .arg(out)
        .arg("--exec")
        .arg(format!("{} {}", init.display(), out.display()))
        .env("PATH", path)
        .current_dir(crate::repo_root())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting vng")?;
    let deadline = Instant::now() + GUEST_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status.to_string());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the guest ran longer than {GUEST_TIMEOUT:?} and was killed");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// What the guest's test runs said.
struct Report {
    text: String,
    passed: usize,
    failed: usize,
    binaries_ok: bool,
}

fn collect(out: &Path, tests: &[PathBuf]) -> Result<Report> {
    let mut report = Report {
        text: String::new(),
        passed: 0,
        failed: 0,
        binaries_ok: true,
    };
    for test in tests {
        let name = test
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let results = out.join("results");
        let Ok(text) = fs::read_to_string(results.join(format!("{name}.txt"))) else {
            writeln!(report.text, "  {name}: did not run")?;
            report.binaries_ok = false;
            continue;
        };
        let rc = fs::read_to_string(results.join(format!("{name}.rc"))).unwrap_or_default();
        let lines = test_lines(&text);
        for (test, ok) in &lines {
            let mark = if *ok { "ok  " } else { "FAIL" };
            writeln!(report.text, "  {mark} {test}")?;
            if *ok {
                report.passed += 1;
            } else {
                report.failed += 1;
            }
        }
        if rc.trim() != "0" {
            report.binaries_ok = false;
            if lines.iter().all(|(_, ok)| *ok) {
                writeln!(report.text, "  {name}: exited with {}", rc.trim())?;
            }
        }
    }
    Ok(report)
}

/// `test lab_x ... ok` / `... FAILED` lines of libtest's output (test name, passed).
fn test_lines(text: &str) -> Vec<(String, bool)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("test "))
        .filter_map(|l| {
            let (name, verdict) = l.split_once(" ... ")?;
            match verdict.trim() {
                "ok" => Some((name.to_owned(), true)),
                "FAILED" => Some((name.to_owned(), false)),
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtest_verdicts_are_read() {
        let out = "running 3 tests\ntest lab_nfs_v41 ... ok\ntest lab_iscsi ... FAILED\n\
                   test lab_x ... ignored\ntest result: FAILED. 1 passed; 1 failed\n";
        assert_eq!(
            test_lines(out),
            vec![
                ("lab_nfs_v41".to_owned(), true),
                ("lab_iscsi".to_owned(), false)
            ]
        );
    }

    #[test]
    fn only_lab_test_targets_are_picked() {
        let json = concat!(
            r#"{"reason":"compiler-artifact","target":{"kind":["test"],"name":"lab_nfs"},"executable":"/t/debug/deps/lab_nfs-1"}"#,
            "\n",
            r#"{"reason":"compiler-artifact","target":{"kind":["test"],"name":"parsers"},"executable":"/t/debug/deps/parsers-2"}"#,
            "\n",
            r#"{"reason":"compiler-artifact","target":{"kind":["lib"],"name":"lab_lib"},"executable":null}"#,
            "\n"
        );
        assert_eq!(
            lab_executables(json),
            vec![PathBuf::from("/t/debug/deps/lab_nfs-1")]
        );
    }

    #[test]
    fn a_test_executable_is_found_by_its_exact_target_name() {
        let json = concat!(
            r#"{"reason":"compiler-artifact","target":{"kind":["test"],"name":"bench_lab_attach"},"executable":"/t/debug/deps/bench_lab_attach-1"}"#,
            "\n",
            r#"{"reason":"compiler-artifact","target":{"kind":["lib"],"name":"bench_lab"},"executable":"/t/debug/deps/lib-2"}"#,
            "\n",
            r#"{"reason":"compiler-artifact","target":{"kind":["test"],"name":"bench_lab"},"executable":"/t/release/deps/bench_lab-3"}"#,
            "\n"
        );
        assert_eq!(
            test_executable(json, "bench_lab"),
            Some("/t/release/deps/bench_lab-3")
        );
        assert_eq!(
            test_executable(json, "bench_lab_attach"),
            Some("/t/debug/deps/bench_lab_attach-1")
        );
        assert_eq!(test_executable(json, "bench"), None);
    }
}
