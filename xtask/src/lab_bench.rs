//! `cargo xtask lab-bench`: attach/detach times of host-storage beside the bare kernel
//! path and os-brick, on the same iSCSI LUN and NVMe namespace in one lab guest boot.
//!
//! 1. Sets up the lab as `cargo xtask lab` does, plus os-brick in a venv
//!    (`target/lab/osbrick-venv`, `pip install os-brick`; the guest sees it read-only).
//! 2. Builds the `bench_lab` test binary of host-storage and boots the guest once with
//!    `lab/guest-init.sh`, which runs its `bench_lab` tests; they call
//!    `lab/bench_osbrick.py` for the os-brick column and write `bench.jsonl`.
//! 3. Prints medians and ratios to bare, and writes `target/bench/lab.md`.

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::lab;

const METHODS: [&str; 3] = ["host-storage", "bare", "os-brick"];
const PROTOCOLS: [(&str, &str); 2] = [
    ("iscsi", "iSCSI, 2 portals → dm-multipath map"),
    ("nvme", "NVMe/TCP, 2 ports → namespace, native multipath"),
];

/// Runs the benchmark; `Ok(false)` when a measurement is missing.
pub(crate) fn run(args: &[String]) -> Result<bool> {
    let protocols = protocols(args)?;
    let start = Instant::now();
    let _lab = lab::exclusive()?;
    lab::install_packages()?;
    let vmlinux = lab::guest_kernel()?;
    let vng = lab::virtme_ng()?;
    let virtiofsd = lab::virtiofsd();
    let python = osbrick_venv();

    let sim = lab::build_sim()?;
    // Optimised like `cargo bench`: the peers are C programs and Python, not a debug build.
    let bench = lab::build_test("host-storage", "bench_lab", true)?;
    let out = lab::fresh_out_dir("bench-out")?;
    let filter = protocols
        .iter()
        .map(|p| format!("bench_lab_{p}_"))
        .collect::<Vec<_>>()
        .join(" ");
    lab::write_plan(&out, &sim, std::slice::from_ref(&bench), Some(&filter))?;
    let reps = lab::bench_reps(&out, 5)?;
    match &python {
        Ok(python) => {
            let script = crate::repo_root().join("lab/bench_osbrick.py");
            let conf = format!(
                "{{\"python\": \"{}\", \"script\": \"{}\"}}\n",
                python.display(),
                script.display()
            );
            fs::write(out.join("osbrick.json"), conf)?;
        }
        Err(err) => eprintln!("lab-bench: no os-brick column: {err:#}"),
    }

    let load_before = loadavg();
    let t = Instant::now();
    let status = lab::boot(&vng, &vmlinux, virtiofsd.as_deref(), &out)?;
    let load_after = loadavg();
    println!(
        "lab-bench: guest run {:.1}s (vng exit: {status})",
        t.elapsed().as_secs_f64()
    );
    let name = bench
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let results = out.join("results").join(format!("{name}.txt"));
    let log = fs::read_to_string(&results).unwrap_or_default();
    print!("{log}");

    let samples = read_samples(&fs::read_to_string(out.join("bench.jsonl")).unwrap_or_default());
    let table = table(&samples);
    print!("{table}");
    let dir = crate::target_dir().join("bench");
    fs::create_dir_all(&dir)?;
    let kernel = lab::guest_kernel_release(&out);
    let laps: String = fs::read_to_string(out.join("steps.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            l.contains(" laps: ") || l.contains(" attach: connect ") || l.contains(" diag: ")
        })
        .map(|l| format!("    {l}\n"))
        .collect();
    let md = format!(
        "# Lab benchmark: attach/detach, host-storage vs bare kernel path vs os-brick\n\n\
         Guest kernel {kernel} under QEMU TCG (2 vCPU), one boot, same LUN and namespace for \
         all three methods, interleaved per repetition; median seconds. {reps} repetitions; \
         host load average (1/5/15 min) {load_before} before the guest booted, {load_after} \
         after it stopped.\n\n{table}\nSub-steps (end times from the start of attach, \
         then of detach):\n\n{laps}"
    );
    fs::write(dir.join("lab.md"), md)?;
    println!(
        "lab-bench: total {:.1}s; wrote {}; logs in {}",
        start.elapsed().as_secs_f64(),
        dir.join("lab.md").display(),
        out.display()
    );
    let complete = protocols.iter().all(|p| {
        ["host-storage", "bare"]
            .iter()
            .all(|m| samples.iter().any(|s| s.protocol == *p && s.method == *m))
    });
    Ok(complete && log.contains("test result: ok"))
}

const USAGE: &str = "usage: cargo xtask lab-bench [iscsi|nvme]...   \
                     (LAB_BENCH_REPS=N sets the repetitions, 5)";

/// The protocols to measure: those named, or all.
fn protocols(args: &[String]) -> Result<Vec<&'static str>> {
    if args.is_empty() {
        return Ok(PROTOCOLS.iter().map(|(p, _)| *p).collect());
    }
    args.iter()
        .map(|a| {
            PROTOCOLS
                .iter()
                .map(|(p, _)| *p)
                .find(|p| p == a)
                .with_context(|| format!("unknown protocol {a:?}\n{USAGE}"))
        })
        .collect()
}

/// The host's load averages, `1/5/15` minutes (other work shares the cores).
fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join("/"))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The venv's python with os-brick, created once.
fn osbrick_venv() -> Result<PathBuf> {
    let venv = lab::lab_dir().join("osbrick-venv");
    let python = venv.join("bin/python");
    let has = |p: &PathBuf| {
        Command::new(p)
            .args(["-c", "import os_brick"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if python.exists() && has(&python) {
        return Ok(python);
    }
    println!("lab-bench: installing os-brick into {}", venv.display());
    let status = Command::new("python3")
        .arg("-m")
        .arg("venv")
        .arg(&venv)
        .status()?;
    if !status.success() {
        bail!("python3 -m venv failed with {status}");
    }
    let status = Command::new(venv.join("bin/pip"))
        .args(["install", "-q", "os-brick"])
        .status()?;
    if !status.success() || !has(&python) {
        bail!("pip install os-brick failed ({status})");
    }
    Ok(python)
}

/// One measurement from `bench.jsonl`.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    protocol: String,
    method: String,
    attach: f64,
    detach: f64,
}

/// Reads the JSON lines the bench test wrote (flat objects of strings and numbers).
fn read_samples(text: &str) -> Vec<Sample> {
    let field = crate::bench::json_field;
    text.lines()
        .filter_map(|l| {
            Some(Sample {
                protocol: field(l, "protocol")?,
                method: field(l, "method")?,
                attach: field(l, "attach_s")?.parse().ok()?,
                detach: field(l, "detach_s")?.parse().ok()?,
            })
        })
        .collect()
}

/// The Markdown table: median attach and detach per method, and the ratios to bare.
fn table(samples: &[Sample]) -> String {
    let mut t = String::from(
        "| operation | host-storage | bare kernel | os-brick | host-storage / bare | os-brick / bare | os-brick / host-storage | n |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for (proto, label) in PROTOCOLS {
        if !samples.iter().any(|s| s.protocol == proto) {
            continue; // not measured in this run
        }
        for (op, pick) in [
            ("attach", (|s: &Sample| s.attach) as fn(&Sample) -> f64),
            ("detach", |s: &Sample| s.detach),
        ] {
            let med: Vec<Option<f64>> = METHODS
                .iter()
                .map(|m| {
                    crate::bench::median(
                        samples
                            .iter()
                            .filter(|s| s.protocol == proto && s.method == *m)
                            .map(pick)
                            .collect(),
                    )
                })
                .collect();
            let n = samples
                .iter()
                .filter(|s| s.protocol == proto && s.method == "bare")
                .count();
            let cell = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.2} s"));
            let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
                (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
                _ => "–".to_owned(),
            };
            let _ = writeln!(
                t,
                "| {label}: {op} | {} | {} | {} | {} | {} | {} | {n} |",
                cell(med[0]),
                cell(med[1]),
                cell(med[2]),
                ratio(med[0], med[1]),
                ratio(med[2], med[1]),
                ratio(med[2], med[0]),
            );
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_default_to_all_and_unknown_ones_are_refused() {
        assert_eq!(protocols(&[]).unwrap(), ["iscsi", "nvme"]);
        assert_eq!(protocols(&["nvme".to_owned()]).unwrap(), ["nvme"]);
        let err = protocols(&["fc".to_owned()]).unwrap_err().to_string();
        assert!(
            err.starts_with("unknown protocol \"fc\"\nusage: cargo xtask lab-bench"),
            "{err}"
        );
    }

    #[test]
    fn samples_are_read_and_medians_taken() {
        let text = concat!(
            r#"{"attach_s":1.5,"detach_s":0.5,"method":"bare","protocol":"iscsi","rep":0}"#,
            "\n",
            r#"{"attach_s":2.5,"detach_s":0.7,"method":"bare","protocol":"iscsi","rep":1}"#,
            "\n",
            r#"{"attach_s":1.0,"detach_s":0.4,"method":"bare","protocol":"iscsi","rep":2}"#,
            "\n",
            r#"{"attach_s":3.0,"detach_s":1.0,"method":"host-storage","protocol":"iscsi","rep":0}"#,
            "\n",
            r#"{"attach_s":6.0,"detach_s":4.0,"method":"os-brick","protocol":"nvme","rep":0}"#,
            "\n",
            r#"{"attach_s":2.0,"detach_s":1.0,"method":"host-storage","protocol":"nvme","rep":0}"#,
            "\n",
            r#"{"attach_s":3.0,"detach_s":2.0,"method":"bare","protocol":"nvme","rep":0}"#,
            "\nnot json\n"
        );
        let s = read_samples(text);
        assert_eq!(s.len(), 7);
        assert_eq!(
            s[0],
            Sample {
                protocol: "iscsi".into(),
                method: "bare".into(),
                attach: 1.5,
                detach: 0.5
            }
        );
        assert_eq!(crate::bench::median(vec![2.5, 1.0, 1.5]), Some(1.5));
        assert_eq!(crate::bench::median(vec![2.0, 1.0]), Some(1.5));
        assert_eq!(crate::bench::median(vec![]), None);
        let t = table(&s);
        assert!(
            t.contains("| iSCSI, 2 portals → dm-multipath map: attach | 3.00 s | 1.50 s | – | 2.00 | – | – | 3 |"),
            "{t}"
        );
        assert!(
            t.contains("| iSCSI, 2 portals → dm-multipath map: detach | 1.00 s | 0.50 s | – | 2.00 | – | – | 3 |"),
            "{t}"
        );
        assert!(
            t.contains("| NVMe/TCP, 2 ports → namespace, native multipath: detach | 1.00 s | 2.00 s | 4.00 s | 0.50 | 2.00 | 4.00 | 1 |"),
            "{t}"
        );
    }
}
