//! The clone bench of `cargo xtask bench`: N VM disks cloned from one template with ONTAP file
//! clone (`POST /api/storage/file/clone` through `ontap-client`) beside libvirt's own
//! `vol-clone` (`virStorageVolCreateXMLFrom` through `libvirt-pools`, without
//! `VIR_STORAGE_VOL_CREATE_REFLINK`), in one run, on one btrfs file system.
//!
//! ```text
//! bench_clone --export-dir DIR [--count N] [--size-gib G] [--written-mib M] [--libvirt-uri URI]
//! ```
//!
//! Needs root, an `ontap-sim --backend kernel` whose junction bind mounts are under DIR
//! (address from `ONTAP_SIM_URL`, `ONTAP_SIM_CA`, `ONTAP_SIM_USER`, `ONTAP_SIM_PASSWORD`) and
//! a libvirtd. Makes the volume `clonebench` (junction `/clonebench`), writes a sparse raw
//! template of G GiB holding M MiB of random data, clones it N times each way, measures
//! wall time and the space used (`btrfs filesystem du` exclusive bytes, and the file
//! system's used bytes before and after), checks the clones' content, then removes the pool
//! and the volume. Prints one JSON line.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use kvmstor::ontap::models::{FileCloneCreate, VolumeCreate, GIB};
use kvmstor::ontap::{Client, SecretString};
use kvmstor::pools::{Libvirt, PoolDef, PoolName, PoolSpec, RemoveMode, VolumeName};

const SVM: &str = "svm1";
const AGGREGATE: &str = "aggr1";
const VOLUME: &str = "clonebench";
const POOL: &str = "kvmstor-clonebench";
const TEMPLATE: &str = "template.img";
/// The template's data is written in this many runs, spread evenly over the disk.
const RUNS: u64 = 16;
const MIB: u64 = 1 << 20;

struct Args {
    export_dir: PathBuf,
    count: u32,
    size_gib: u64,
    written_mib: u64,
    libvirt_uri: String,
}

fn parse_args() -> Result<Args> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| -> Option<&String> {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
    };
    let number = |name: &str, default: u64| -> Result<u64> {
        value(name).map_or(Ok(default), |v| {
            v.parse()
                .with_context(|| format!("{name} takes a number, not {v}"))
        })
    };
    Ok(Args {
        export_dir: value("--export-dir")
            .context("usage: bench_clone --export-dir DIR [--count N] [--size-gib G] [--written-mib M] [--libvirt-uri URI]")?
            .into(),
        count: u32::try_from(number("--count", 20)?)?,
        size_gib: number("--size-gib", 4)?,
        written_mib: number("--written-mib", 1024)?,
        libvirt_uri: value("--libvirt-uri")
            .cloned()
            .unwrap_or_else(|| "qemu:///system".into()),
    })
}

fn env(name: &str) -> Result<String> {
    std::env::var(name).with_context(|| format!("{name} is not set (run via `cargo xtask bench`)"))
}

fn connect() -> Result<Client> {
    let ca = env("ONTAP_SIM_CA")?;
    Ok(Client::builder(env("ONTAP_SIM_URL")?)
        .add_ca_pem(std::fs::read(&ca).with_context(|| format!("reading {ca}"))?)
        .basic_auth(
            env("ONTAP_SIM_USER")?,
            SecretString::from(env("ONTAP_SIM_PASSWORD")?),
        )
        .build()?)
}

/// Deterministic pseudo-random bytes (xorshift64*): incompressible, not deduplicable.
struct Noise(u64);

impl Noise {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let v = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// Offsets of the template's data runs: `RUNS` runs of `written / RUNS` bytes, one at the
/// start of each `size / RUNS` stretch; the rest is holes.
fn runs(size: u64, written: u64) -> Vec<(u64, u64)> {
    let (stride, len) = (size / RUNS, written / RUNS);
    (0..RUNS).map(|i| (i * stride, len)).collect()
}

fn write_template(path: &Path, size: u64, written: u64) -> Result<()> {
    let mut f =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    f.set_len(size)?;
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    let mut buf = vec![0u8; (8 * MIB) as usize];
    for (offset, len) in runs(size, written) {
        f.seek(SeekFrom::Start(offset))?;
        let mut left = len;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            noise.fill(&mut buf[..n]);
            f.write_all(&buf[..n])?;
            left -= n as u64;
        }
    }
    f.sync_all()?;
    Ok(())
}

/// The first MiB of every data run and of the hole after it, as read from `path`.
fn sample(path: &Path, size: u64, written: u64) -> Result<Vec<u8>> {
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    ensure!(
        f.metadata()?.len() == size,
        "{} is {} bytes, not {size}",
        path.display(),
        f.metadata()?.len()
    );
    let mut out = Vec::new();
    for (offset, len) in runs(size, written) {
        for at in [offset, offset + len] {
            let mut buf = vec![0u8; MIB as usize];
            f.seek(SeekFrom::Start(at))?;
            f.read_exact(&mut buf)?;
            out.extend_from_slice(&buf);
        }
    }
    Ok(out)
}

fn run_tool(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .env("LC_ALL", "C")
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {} failed with {}: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Bytes used on the file system holding `dir`, after a btrfs commit.
fn used(dir: &Path) -> Result<u64> {
    let d = dir.to_string_lossy();
    run_tool("btrfs", &["filesystem", "sync", &d])?;
    let out = run_tool("df", &["-B1", "--output=used", &d])?;
    out.lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .with_context(|| format!("df printed {out:?}"))
}

/// Sum of the exclusive bytes of `files` (`btrfs filesystem du --raw -s`: data no other file
/// or snapshot shares).
fn exclusive(files: &[PathBuf]) -> Result<u64> {
    let mut args = vec!["filesystem", "du", "--raw", "-s"];
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    args.extend(names.iter().map(String::as_str));
    let out = run_tool("btrfs", &args)?;
    parse_exclusive(&out, files.len())
}

/// `btrfs filesystem du --raw -s` prints a header, then `Total Exclusive Set-shared Name`.
fn parse_exclusive(out: &str, files: usize) -> Result<u64> {
    let rows: Vec<u64> = out
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
        .collect();
    ensure!(rows.len() == files, "btrfs filesystem du printed {out:?}");
    Ok(rows.iter().sum())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = parse_args()?;
    let size = args.size_gib * GIB;
    let written = args.written_mib * MIB;
    ensure!(
        written <= size && written % RUNS == 0 && size % RUNS == 0,
        "--written-mib must fit the disk and split into {RUNS} runs"
    );
    let client = connect()?;
    let created = client
        .volumes()
        .create(
            &VolumeCreate::flexvol(VOLUME, SVM, AGGREGATE)
                .size((u64::from(args.count) + 2) * size)
                .junction_path(format!("/{VOLUME}")),
        )
        .await?;
    let uuid = created
        .record
        .and_then(|v| v.uuid)
        .context("the created volume has no uuid")?;
    let dir = args.export_dir.join(VOLUME);
    let result = bench(&args, &client, &dir, size, written).await;
    // Clean up whatever happened: the pool (its files go with the volume), then the volume.
    let lv = Libvirt::connect(&args.libvirt_uri).await?;
    lv.pools()
        .remove(&PoolName::new(POOL)?, RemoveMode::KeepData)
        .await?;
    client.volumes().delete(&uuid).await?;
    let line = result?;
    println!("{line}");
    Ok(())
}

async fn bench(
    args: &Args,
    client: &Client,
    dir: &Path,
    size: u64,
    written: u64,
) -> Result<String> {
    ensure!(
        dir.is_dir(),
        "the volume's junction {} is not mounted",
        dir.display()
    );
    let template = dir.join(TEMPLATE);
    let t = Instant::now();
    write_template(&template, size, written)?;
    eprintln!(
        "template: {} GiB raw, {} MiB of random data in {RUNS} runs, written in {:.1} s",
        args.size_gib,
        args.written_mib,
        t.elapsed().as_secs_f64()
    );
    let want = sample(&template, size, written)?;
    let before = used(dir)?;

    // ONTAP file clones: one REST call (and job) each.
    let ontap_files: Vec<PathBuf> = (1..=args.count)
        .map(|i| dir.join(format!("ontap-clone-{i:02}.img")))
        .collect();
    let t = Instant::now();
    for f in &ontap_files {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        client
            .file_clone(&FileCloneCreate::new(VOLUME, TEMPLATE, name).svm(SVM))
            .await
            .with_context(|| format!("file clone to {name}"))?;
    }
    let ontap_seconds = t.elapsed().as_secs_f64();
    let after_ontap = used(dir)?;
    let ontap_exclusive = exclusive(&ontap_files)?;
    eprintln!(
        "ontap file clone: {} clones in {ontap_seconds:.3} s",
        args.count
    );

    // libvirt vol-clone into a dir pool on the same directory.
    let lv = Libvirt::connect(&args.libvirt_uri).await?;
    let pool = PoolName::new(POOL)?;
    lv.pools()
        .ensure(&PoolSpec::new(PoolDef::dir(
            pool.clone(),
            dir.display().to_string(),
        )))
        .await?;
    lv.pools().refresh(&pool).await?;
    let volumes = lv.volumes(&pool);
    let source = VolumeName::new(TEMPLATE)?;
    let lv_files: Vec<PathBuf> = (1..=args.count)
        .map(|i| dir.join(format!("libvirt-clone-{i:02}.img")))
        .collect();
    let t = Instant::now();
    for f in &lv_files {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        volumes
            .clone_volume(&source, &VolumeName::new(name)?, None)
            .await
            .with_context(|| format!("vol-clone to {name}"))?;
    }
    let libvirt_seconds = t.elapsed().as_secs_f64();
    let after_libvirt = used(dir)?;
    let libvirt_exclusive = exclusive(&lv_files)?;
    eprintln!(
        "libvirt vol-clone: {} clones in {libvirt_seconds:.3} s",
        args.count
    );

    // Every clone holds the template's bytes: data runs and holes alike.
    for f in ontap_files.iter().chain(&lv_files) {
        ensure!(
            sample(f, size, written)? == want,
            "{} differs from the template",
            f.display()
        );
    }
    Ok(serde_json::json!({
        "count": args.count,
        "size": size,
        "written": written,
        "ontap_seconds": ontap_seconds,
        "libvirt_seconds": libvirt_seconds,
        "ontap_exclusive": ontap_exclusive,
        "libvirt_exclusive": libvirt_exclusive,
        "ontap_used": after_ontap.saturating_sub(before),
        "libvirt_used": after_libvirt.saturating_sub(after_ontap),
    })
    .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_runs_spread_over_the_disk() {
        assert_eq!(
            runs(4 * GIB, 1024 * MIB)[..3],
            [(0, 64 * MIB), (256 * MIB, 64 * MIB), (512 * MIB, 64 * MIB)]
        );
        assert_eq!(runs(4 * GIB, 1024 * MIB).len(), 16);
    }

    #[test]
    fn exclusive_bytes_are_summed() {
        let out = "     Total   Exclusive  Set shared  Filename\n4294967296  0  1073741824  /x/a.img\n4294967296  1073741824  -  /x/b.img\n";
        assert_eq!(parse_exclusive(out, 2).unwrap(), 1 << 30);
        assert!(parse_exclusive(out, 3).is_err());
    }

    #[test]
    fn noise_is_deterministic_and_not_zero() {
        let (mut a, mut b) = (Noise(7), Noise(7));
        let (mut x, mut y) = (vec![0u8; 64], vec![0u8; 64]);
        a.fill(&mut x);
        b.fill(&mut y);
        assert_eq!(x, y);
        assert!(x.iter().any(|&v| v != 0));
    }
}
