//! What the test tiers need on a fresh Debian 12 machine: packages and the Python venv.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::proc::output_of;
use crate::summary::Outcome;

/// The Debian packages one test tier needs. Later tiers (host storage, libvirt) extend this
/// table with their own rows.
pub(crate) struct Tier {
    pub(crate) name: &'static str,
    pub(crate) packages: &'static [&'static str],
}

/// Every tier `cargo xtask test` runs, in order.
pub(crate) const TIERS: &[Tier] = &[
    Tier {
        // The workspace links libudev (`udev`) and libvirt (`virt`) through pkg-config; pyo3
        // (abi3 extension module) links no libpython but its build script asks python3.
        name: "unit",
        packages: &[
            "pkg-config",
            "ca-certificates",
            "libudev-dev",
            "libvirt-dev",
            "python3",
        ],
    },
    Tier {
        // Root + real daemons: libvirt-pools (libvirtd, tgtd, iscsi-direct), host-storage
        // (automount, systemd-udevd, loop devices), cluster-fs (mkfs/fsck of ocfs2 and gfs2),
        // ontap-sim's kernel backend (btrfs on a loop device). qemu-utils is added only when
        // no qemu-img exists: the lab tier pins its own version (see `install_packages`).
        name: "host",
        packages: &[
            "libvirt-daemon",
            "libvirt-daemon-system",
            "libvirt-daemon-driver-qemu",
            "libvirt-daemon-driver-storage-iscsi-direct",
            "libvirt-clients",
            "libvirt-dev",
            "pkg-config",
            "tgt",
            "libiscsi-bin",
            "libudev-dev",
            "autofs",
            "udev",
            "e2fsprogs",
            "util-linux",
            "ocfs2-tools",
            "gfs2-utils",
            "kmod",
            "btrfs-progs",
            // kill(1), to stop libvirtd; not in Debian's minimal images.
            "procps",
        ],
    },
    Tier {
        // python3-venv is added on demand, only when `python3 -m venv` fails.
        name: "python",
        packages: &["python3"],
    },
    Tier {
        // examples/python/run-tests.sh makes its own venv (python3 >= 3.10); the
        // certificate-auth test makes its PKI with openssl(1).
        name: "bindings",
        packages: &["python3", "python3-venv", "openssl"],
    },
];

/// Packages pinned to PyPI versions for the Python tiers.
pub(crate) fn requirements_file() -> PathBuf {
    crate::repo_root().join("tests/python/requirements.txt")
}

/// Installs the missing packages of the named tiers; one `apt-get update` at most.
pub(crate) fn install_packages(tiers: &[&str]) -> Result<Outcome> {
    let mut missing: Vec<&str> = Vec::new();
    for tier in TIERS.iter().filter(|t| tiers.contains(&t.name)) {
        for &pkg in tier.packages {
            if !missing.contains(&pkg) && !dpkg_installed(pkg) {
                missing.push(pkg);
            }
        }
    }
    // Any qemu-img will do for the host tests; installing qemu-utils over one that is there
    // could fight the version the lab tier's qemu-system-x86 needs.
    if tiers.contains(&"host") && !on_path("qemu-img") && !missing.contains(&"qemu-utils") {
        missing.push("qemu-utils");
    }
    if missing.is_empty() {
        println!("all packages present");
        return Ok(Outcome::Passed(None));
    }
    apt_install(&missing)?;
    Ok(Outcome::Passed(None))
}

/// True when `program` is an executable file in one of `$PATH`'s directories.
fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/bin".into()])
        .any(|dir| {
            std::fs::metadata(dir.join(program))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// True when dpkg says `pkg` is installed.
fn dpkg_installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .stderr(Stdio::null())
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "install ok installed")
        .unwrap_or(false)
}

fn apt_install(packages: &[&str]) -> Result<()> {
    let uid = output_of(Command::new("id").arg("-u"))?;
    if uid.trim() != "0" {
        bail!(
            "missing Debian packages {}; run as root or install them: apt-get install {}",
            packages.join(" "),
            packages.join(" ")
        );
    }
    println!("installing {}", packages.join(" "));
    let status = Command::new("apt-get")
        .arg("update")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("running apt-get update")?;
    if !status.success() {
        bail!("apt-get update failed with {status}");
    }
    let _no_starts = NoDaemonStarts::install()?;
    let status = Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("running apt-get install")?;
    if !status.success() {
        bail!(
            "apt-get install {} failed with {status}",
            packages.join(" ")
        );
    }
    Ok(())
}

/// Debian's hook that maintainer scripts ask before starting a service.
const POLICY_RC_D: &str = "/usr/sbin/policy-rc.d";

/// While alive, a `policy-rc.d` that answers 101 ("action forbidden") keeps the packages being
/// installed from starting their daemons (libvirtd, tgtd, automount): the host tier starts its
/// own, and one started by an init script would already hold their sockets and ports. An
/// existing `policy-rc.d` is left as it is.
struct NoDaemonStarts {
    created: bool,
}

impl NoDaemonStarts {
    fn install() -> Result<NoDaemonStarts> {
        use std::os::unix::fs::PermissionsExt;
        if Path::new(POLICY_RC_D).exists() {
            return Ok(NoDaemonStarts { created: false });
        }
        std::fs::write(
            POLICY_RC_D,
            "#!/bin/sh\n# cargo xtask test: no service starts\nexit 101\n",
        )
        .with_context(|| format!("writing {POLICY_RC_D}"))?;
        std::fs::set_permissions(POLICY_RC_D, std::fs::Permissions::from_mode(0o755))?;
        Ok(NoDaemonStarts { created: true })
    }
}

impl Drop for NoDaemonStarts {
    fn drop(&mut self) {
        if self.created {
            let _ = std::fs::remove_file(POLICY_RC_D);
        }
    }
}

/// Where the Python tiers' virtual environment lives.
pub(crate) fn venv_dir() -> PathBuf {
    crate::target_dir().join("py-venv")
}

/// The venv's interpreter.
pub(crate) fn venv_python() -> PathBuf {
    venv_dir().join("bin").join("python")
}

/// Creates `target/py-venv` (reused when present) and installs the pinned requirements.
pub(crate) fn python_venv() -> Result<()> {
    let dir = venv_dir();
    // Debian splits venv/ensurepip out of python3; add python3-venv only when needed.
    if !venv_python().exists() && !create_venv(&dir)? {
        let _ = std::fs::remove_dir_all(&dir);
        if !dpkg_installed("python3-venv") {
            apt_install(&["python3-venv"])?;
        }
        if !create_venv(&dir)? {
            bail!("python3 -m venv {} failed", dir.display());
        }
    }
    let requirements = requirements_file();
    // pip prints nothing when everything is already installed at the pinned versions.
    let status = Command::new(venv_python())
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
        ])
        .arg(&requirements)
        .status()
        .context("running pip")?;
    if !status.success() {
        bail!(
            "pip install -r {} failed with {status}",
            requirements.display()
        );
    }
    println!("venv ready: {}", dir.display());
    Ok(())
}

fn create_venv(dir: &Path) -> Result<bool> {
    println!("creating {}", dir.display());
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(dir)
        .status()
        .context("running python3 -m venv")?;
    Ok(status.success())
}
