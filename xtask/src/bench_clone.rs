//! The clone part of `cargo xtask bench`: 20 VM disks of 4 GiB cloned from one template with
//! ONTAP file clone beside libvirt's own `vol-clone`, in one run, on this host.
//!
//! A release `ontap-sim --backend kernel` (volumes only: NFS, CIFS, iSCSI and NVMe skipped)
//! keeps its btrfs image under `target/bench/clone-sim`; its file clones are btrfs reflinks
//! (`cp --reflink=always`). The volume's junction is bind-mounted locally and a libvirt `dir`
//! pool (a libvirtd started here, `qemu:///system`) sits on it, so both sides copy the same
//! template on the same file system. `bench_clone` (kvmstor-examples) does the work and prints
//! one JSON line; this renders `target/bench/clone.md`. Everything is removed afterwards.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::json_number;
use crate::proc::{is_root, output_of, Libvirtd, SimDaemon, LIBVIRT_URI};
use crate::{repo_root, target_dir};

const COUNT: u64 = 20;
const SIZE_GIB: u64 = 4;
const WRITTEN_MIB: u64 = 1024;
/// The sparse btrfs image: the template's data once, the libvirt copies' data 20 times, slack.
const LOOP_SIZE: &str = "32G";
/// Free space wanted under `target/` before starting (the image fills to ~22 GiB).
const FREE_NEEDED: u64 = 28 << 30;

/// What `bench_clone` reported.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CloneResult {
    pub(crate) count: u64,
    pub(crate) size: u64,
    pub(crate) written: u64,
    pub(crate) ontap_seconds: f64,
    pub(crate) libvirt_seconds: f64,
    pub(crate) ontap_exclusive: u64,
    pub(crate) libvirt_exclusive: u64,
    pub(crate) ontap_used: u64,
    pub(crate) libvirt_used: u64,
}

impl CloneResult {
    fn parse(line: &str) -> Result<CloneResult> {
        let f = |key: &str| {
            json_number(line, key).with_context(|| format!("no numeric `{key}` in {line}"))
        };
        Ok(CloneResult {
            count: f("count")? as u64,
            size: f("size")? as u64,
            written: f("written")? as u64,
            ontap_seconds: f("ontap_seconds")?,
            libvirt_seconds: f("libvirt_seconds")?,
            ontap_exclusive: f("ontap_exclusive")? as u64,
            libvirt_exclusive: f("libvirt_exclusive")? as u64,
            ontap_used: f("ontap_used")? as u64,
            libvirt_used: f("libvirt_used")? as u64,
        })
    }
}

/// Unmounts what the simulator left mounted under `root` (a killed simulator does not tear
/// down), deepest first, then removes `root`.
fn remove_sim_root(root: &Path) -> Result<()> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")?;
    let mut points: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .map(PathBuf::from)
        .filter(|p| p.starts_with(root))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in &points {
        let status = Command::new("umount").arg(p).status()?;
        if !status.success() {
            bail!("umount {} failed with {status}", p.display());
        }
    }
    if root.exists() {
        std::fs::remove_dir_all(root).with_context(|| format!("removing {}", root.display()))?;
    }
    Ok(())
}

/// Removes the simulator's root when dropped (errors and panics included).
struct SimRoot(PathBuf);

impl Drop for SimRoot {
    fn drop(&mut self) {
        if let Err(e) = remove_sim_root(&self.0) {
            eprintln!("xtask: cleaning {}: {e:#}", self.0.display());
        }
    }
}

fn free_bytes(dir: &Path) -> Result<u64> {
    let out = output_of(Command::new("df").arg("-B1").arg("--output=avail").arg(dir))?;
    out.lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .with_context(|| format!("df printed {out:?}"))
}

pub(crate) fn run() -> Result<CloneResult> {
    if !is_root() {
        bail!("the clone bench needs root (loop device, btrfs, mounts, libvirtd)");
    }
    let release = super::build_release(&[
        ("ontap-sim", "ontap-sim"),
        ("kvmstor-examples", "bench_clone"),
    ])?;
    let bench_dir = target_dir().join("bench");
    std::fs::create_dir_all(&bench_dir)?;
    let root = bench_dir.join("clone-sim");
    // A previous run killed half-way may have left its mounts and image.
    remove_sim_root(&root)?;
    let free = free_bytes(&bench_dir)?;
    if free < FREE_NEEDED {
        bail!(
            "the clone bench needs {} GiB free under {}, there are {}",
            FREE_NEEDED >> 30,
            bench_dir.display(),
            free >> 30
        );
    }
    std::fs::create_dir_all(&root)?;
    let _cleanup = SimRoot(root.clone());
    let libvirtd = Libvirtd::start()?;
    let root_arg = root.display().to_string();
    let sim = SimDaemon::start(
        &release.join("ontap-sim"),
        "clone",
        &[
            "--backend",
            "kernel",
            "--kernel-root",
            &root_arg,
            "--kernel-loop-size",
            LOOP_SIZE,
            "--kernel-skip",
            "nfs",
            "--kernel-skip",
            "cifs",
            "--kernel-skip",
            "iscsi",
            "--kernel-skip",
            "nvme",
            // No simulated job latency: what is timed is the REST round trip and the clone.
            "--job-ms",
            "0",
        ],
    )?;
    let mut cmd = Command::new(release.join("bench_clone"));
    cmd.current_dir(repo_root())
        .arg("--export-dir")
        .arg(root.join("export"))
        .args(["--count", &COUNT.to_string()])
        .args(["--size-gib", &SIZE_GIB.to_string()])
        .args(["--written-mib", &WRITTEN_MIB.to_string()])
        .args(["--libvirt-uri", LIBVIRT_URI]);
    sim.configure_client(&mut cmd);
    println!("==> bench_clone: {COUNT} × {SIZE_GIB} GiB, {WRITTEN_MIB} MiB written");
    let stdout = output_of(&mut cmd)
        .with_context(|| format!("bench_clone failed; simulator log:\n{}", sim.log_tail()))?;
    drop(sim);
    drop(libvirtd);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .with_context(|| format!("bench_clone printed no JSON line:\n{stdout}"))?;
    println!("{line}");
    let result = CloneResult::parse(line)?;
    let report = render(&result)?;
    let path = bench_dir.join("clone.md");
    std::fs::write(&path, &report)?;
    println!("\n{report}");
    println!("written to {}", path.display());
    Ok(result)
}

fn gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / f64::from(1u32 << 30))
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20))
}

pub(crate) fn render(r: &CloneResult) -> Result<String> {
    let mut out = String::new();
    let date =
        output_of(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"])).unwrap_or_default();
    writeln!(
        out,
        "Measured by `cargo xtask bench` on {}: {} clones of a {} raw template holding {} of \
         random data (in 16 runs spread over the disk, the rest holes), each way in turn on one \
         btrfs file system (a loop image on the host's disk, 2-core machine). ONTAP side: \
         `POST /api/storage/file/clone` through ontap-client, one call and job each, to a \
         release `ontap-sim --backend kernel` (job latency set to 0) whose file clone is a \
         btrfs reflink. libvirt side: `vol-clone` through libvirt-pools \
         (`virStorageVolCreateXMLFrom` without `VIR_STORAGE_VOL_CREATE_REFLINK`) into a `dir` \
         pool on the volume's junction. Space: exclusive bytes of the clones (`btrfs \
         filesystem du`) and growth of the file system's used bytes. No NFS hop: the pool is \
         on the simulator's local bind mount, not an NFS mount of a real ONTAP.\n",
        date.trim(),
        r.count,
        gib(r.size),
        gib(r.written),
    )?;
    writeln!(
        out,
        "| {} clones of {} | ONTAP file clone | libvirt vol-clone | ratio |",
        r.count,
        gib(r.size)
    )?;
    writeln!(out, "|---|---|---|---|")?;
    writeln!(
        out,
        "| wall time | {:.3} s ({:.1} ms each) | {:.1} s ({:.2} s each) | {:.0}× faster |",
        r.ontap_seconds,
        r.ontap_seconds * 1000.0 / r.count as f64,
        r.libvirt_seconds,
        r.libvirt_seconds / r.count as f64,
        r.libvirt_seconds / r.ontap_seconds.max(1e-9),
    )?;
    writeln!(
        out,
        "| exclusive data of the clones | {} | {} | |",
        mib(r.ontap_exclusive),
        gib(r.libvirt_exclusive)
    )?;
    writeln!(
        out,
        "| file system used bytes added | {} | {} | |",
        mib(r.ontap_used),
        gib(r.libvirt_used)
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_result_line_is_read_and_rendered() {
        let line = r#"{"count":20,"libvirt_exclusive":21474836480,"libvirt_seconds":60.0,"libvirt_used":21474836480,"ontap_exclusive":0,"ontap_seconds":0.3,"ontap_used":1048576,"size":4294967296,"written":1073741824}"#;
        let r = CloneResult::parse(line).unwrap();
        assert_eq!(r.count, 20);
        assert_eq!(r.ontap_used, 1 << 20);
        let md = render(&r).unwrap();
        assert!(
            md.contains(
                "| wall time | 0.300 s (15.0 ms each) | 60.0 s (3.00 s each) | 200× faster |"
            ),
            "{md}"
        );
        assert!(md.contains("| exclusive data of the clones | 0.0 MiB | 20.00 GiB | |"));
        assert!(md.contains("| file system used bytes added | 1.0 MiB | 20.00 GiB | |"));
        assert!(CloneResult::parse(r#"{"count":20}"#).is_err());
    }
}
