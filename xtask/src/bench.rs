//! `cargo xtask bench [client] [clone] [attach]` (every part when none is named):
//!
//! * `client`: `ontap-client` (Rust) against NetApp's `netapp-ontap` (Python), same work, same
//!   simulator instance, HTTPS for both; `target/bench/ontap-client.md`.
//! * `clone`: 20 VM disks cloned with ONTAP file clone beside libvirt's `vol-clone`, on this
//!   host (root, btrfs, libvirtd); `target/bench/clone.md` (see `bench_clone.rs`).
//! * `attach`: attach-to-ready and detach times of the facade per protocol in one lab guest
//!   boot; `target/bench/attach.md` (see `bench_attach.rs`).
//!
//! In `client`, each side is a separate process that prints one JSON line with its wall time
//! and its own peak RSS (`VmHWM` / `ru_maxrss`), so neither measures the other nor the
//! simulator.

use std::fmt::Write as _;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::proc::{output_of, run_streamed, SimDaemon};
use crate::{cargo, repo_root, setup, target_dir};

// Declared here, not in main.rs: the benches are one command.
#[path = "bench_attach.rs"]
mod attach;
#[path = "bench_clone.rs"]
mod clone;

/// Volume counts the streaming bench runs at; peak memory must not grow with them.
const STREAM_SIZES: &[u64] = &[10_000, 100_000];
/// LUN create + map + unmap + delete cycles.
const LUN_CYCLES: u64 = 1_000;
/// Records per page for both clients.
const PAGE_SIZE: u64 = 1_000;

/// One client's result for one workload, as its JSON line reported it.
#[derive(Debug, Clone, Copy)]
struct Measure {
    /// Records streamed or cycles completed.
    items: u64,
    seconds: f64,
    peak_rss_kib: u64,
}

struct Row {
    workload: String,
    unit: &'static str,
    rust: Measure,
    python: Measure,
}

/// The parts of `cargo xtask bench [client] [clone] [attach]` (all when none is named).
const PARTS: &[&str] = &["client", "clone", "attach"];

pub(crate) fn run(named: &[String]) -> Result<bool> {
    if let Some(bad) = named.iter().find(|a| !PARTS.contains(&a.as_str())) {
        bail!("unknown bench part {bad}; parts: {}", PARTS.join(", "));
    }
    let wanted = |part: &str| named.is_empty() || named.iter().any(|a| a == part);
    if wanted("client") {
        client_bench()?;
    }
    if wanted("clone") {
        clone::run()?;
    }
    let mut complete = true;
    if wanted("attach") {
        complete &= attach::run()?;
    }
    Ok(complete)
}

/// `ontap-client` against `netapp-ontap`: target/bench/ontap-client.md.
fn client_bench() -> Result<()> {
    println!("==> building release binaries (ontap-sim, bench_ontap)");
    let release = build_release(&[
        ("ontap-sim", "ontap-sim"),
        ("kvmstor-examples", "bench_ontap"),
    ])?;
    println!("==> python venv");
    setup::python_venv()?;

    let sim_bin = release.join("ontap-sim");
    let mut rows = Vec::new();
    for &size in STREAM_SIZES {
        let bulk = size.to_string();
        let sim = SimDaemon::start(
            &sim_bin,
            &format!("bench-{size}"),
            &["--bulk-volumes", &bulk],
        )?;
        let page = PAGE_SIZE.to_string();
        let args = ["stream", "--page-size", page.as_str()];
        let rust = measure(&sim, Side::Rust, &args)?;
        let python = measure(&sim, Side::Python, &args)?;
        if rust.items != python.items || rust.items < size {
            bail!(
                "streamed record counts disagree: ontap-client {} and netapp-ontap {}, \
                 expected at least {size}",
                rust.items,
                python.items
            );
        }
        rows.push(Row {
            workload: format!("stream {} volumes", group(rust.items)),
            unit: "records",
            rust,
            python,
        });
        if size == *STREAM_SIZES.last().expect("sizes are listed") {
            let cycles = LUN_CYCLES.to_string();
            let args = ["lun-cycles", "--count", cycles.as_str()];
            let rust = measure(&sim, Side::Rust, &args)?;
            let python = measure(&sim, Side::Python, &args)?;
            for (side, m) in [("ontap-client", rust), ("netapp-ontap", python)] {
                if m.items != LUN_CYCLES {
                    bail!("{side} completed {} LUN cycles, not {LUN_CYCLES}", m.items);
                }
            }
            rows.push(Row {
                workload: format!("{} LUN create+map+unmap+delete", group(LUN_CYCLES)),
                unit: "cycles",
                rust,
                python,
            });
        }
    }

    let report = render(&rows)?;
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("ontap-client.md");
    std::fs::write(&path, &report)?;
    println!("\n{report}");
    println!("written to {}", path.display());
    Ok(())
}

#[derive(Clone, Copy)]
enum Side {
    Rust,
    Python,
}

fn measure(sim: &SimDaemon, side: Side, args: &[&str]) -> Result<Measure> {
    let mut cmd = match side {
        Side::Rust => Command::new(target_dir().join("release").join("bench_ontap")),
        Side::Python => {
            let mut cmd = Command::new(setup::venv_python());
            cmd.arg(repo_root().join("tests/python/bench_netapp_ontap.py"));
            cmd
        }
    };
    cmd.current_dir(repo_root()).args(args);
    sim.configure_client(&mut cmd);
    let name = match side {
        Side::Rust => "ontap-client",
        Side::Python => "netapp-ontap",
    };
    println!("==> {name}: {}", args.join(" "));
    let stdout = output_of(&mut cmd)
        .with_context(|| format!("{name} bench failed; simulator log:\n{}", sim.log_tail()))?;
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .with_context(|| format!("{name} bench printed no JSON line:\n{stdout}"))?;
    println!("{line}");
    let field = |key: &str| {
        json_number(line, key).with_context(|| format!("{name}: no numeric `{key}` in {line}"))
    };
    Ok(Measure {
        items: field("items")? as u64,
        seconds: field("seconds")?,
        peak_rss_kib: field("peak_rss_kib")? as u64,
    })
}

/// Builds each `(package, bin)` optimised, output streamed; returns the release directory.
pub(crate) fn build_release(bins: &[(&str, &str)]) -> Result<std::path::PathBuf> {
    for (package, bin) in bins {
        let mut cmd = cargo();
        cmd.args(["build", "--release", "-p", package, "--bin", bin]);
        if !run_streamed(&mut cmd)?.success {
            bail!("cargo build --release -p {package} --bin {bin} failed");
        }
    }
    Ok(target_dir().join("release"))
}

/// The median of `v`; `None` when empty. Shared by the lab benches' tables.
pub(crate) fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// The value after `"key":` in a flat JSON object (string or number, quotes dropped);
/// enough for the JSON lines the lab benches write.
pub(crate) fn json_field(line: &str, key: &str) -> Option<String> {
    let start = line.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = line[start..].trim_start();
    let end = rest.find([',', '}'])?;
    Some(rest[..end].trim().trim_matches('"').to_owned())
}

/// The number after `"key":` in a flat JSON object; enough for the benches' own output.
pub(crate) fn json_number(line: &str, key: &str) -> Option<f64> {
    let needle = format!("\"{key}\"");
    let rest = &line[line.find(&needle)? + needle.len()..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

fn render(rows: &[Row]) -> Result<String> {
    let mut out = String::new();
    let date =
        output_of(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"])).unwrap_or_default();
    writeln!(
        out,
        "Measured by `cargo xtask bench` on {}: both clients in turn against one release-build \
         `ontap-sim` over HTTPS on loopback (2-core machine), {PAGE_SIZE} records per page. \
         Peak RSS is each client process's own high-water mark.\n",
        date.trim()
    )?;
    writeln!(
        out,
        "| workload | ontap-client (Rust) | netapp-ontap 9.19.1.0 (Python) | ratio |"
    )?;
    writeln!(out, "|---|---|---|---|")?;
    for row in rows {
        let rate = |m: &Measure| m.items as f64 / m.seconds.max(1e-9);
        writeln!(
            out,
            "| {} — wall time | {:.2} s ({} {}/s) | {:.2} s ({} {}/s) | {:.1}× the throughput |",
            row.workload,
            row.rust.seconds,
            group(rate(&row.rust).round() as u64),
            row.unit,
            row.python.seconds,
            group(rate(&row.python).round() as u64),
            row.unit,
            rate(&row.rust) / rate(&row.python).max(1e-9),
        )?;
        writeln!(
            out,
            "| {} — peak RSS | {:.1} MiB | {:.1} MiB | {:.1}× less memory |",
            row.workload,
            row.rust.peak_rss_kib as f64 / 1024.0,
            row.python.peak_rss_kib as f64 / 1024.0,
            row.python.peak_rss_kib as f64 / (row.rust.peak_rss_kib.max(1) as f64),
        )?;
    }
    Ok(out)
}

/// 100000 → "100,000".
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_numbers_are_read() {
        let line = r#"{"client":"ontap-client","workload":"stream","items":100000,"seconds":1.25e0,"peak_rss_kib":10240}"#;
        assert_eq!(json_number(line, "items"), Some(100000.0));
        assert_eq!(json_number(line, "seconds"), Some(1.25));
        assert_eq!(json_number(line, "peak_rss_kib"), Some(10240.0));
        assert_eq!(json_number(line, "client"), None);
        assert_eq!(json_number(line, "missing"), None);
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(group(1_000), "1,000");
        assert_eq!(group(100_000), "100,000");
        assert_eq!(group(999), "999");
        assert_eq!(group(1_234_567), "1,234,567");
    }
}
