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
        name: "unit",
        packages: &["pkg-config", "ca-certificates"],
    },
    Tier {
        // python3-venv is added on demand, only when `python3 -m venv` fails.
        name: "python",
        packages: &["python3"],
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
    if missing.is_empty() {
        println!("all packages present");
        return Ok(Outcome::Passed(None));
    }
    apt_install(&missing)?;
    Ok(Outcome::Passed(None))
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
