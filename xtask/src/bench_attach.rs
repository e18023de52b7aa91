//! The attach part of `cargo xtask bench`: attach-to-ready and detach times of the facade per
//! protocol (NFS, SMB, iSCSI + OCFS2, NVMe/TCP + OCFS2) in one lab guest boot.
//!
//! Sets up the lab as `cargo xtask lab` does, builds kvmstor's `bench_lab_attach` test binary
//! (not a `lab_*` target, so the lab tier does not run it), boots the guest once with only that
//! binary and filter `bench_attach`, reads `bench-attach.jsonl` and writes
//! `target/bench/attach.md` with the medians. `LAB_BENCH_REPS=N` sets the repetitions (3).

use std::fmt::Write as _;
use std::fs;
use std::time::Instant;

use anyhow::Result;

use crate::lab;

const PROTOCOLS: [(&str, &str); 4] = [
    ("nfs", "NFS 4.1 (fstab), dir pool"),
    ("smb", "SMB 3.1.1 (fstab), dir pool"),
    (
        "iscsi-ocfs2",
        "iSCSI, 2 portals, dm-multipath, OCFS2, fs pool",
    ),
    (
        "nvme-ocfs2",
        "NVMe/TCP, 2 ports, native multipath, OCFS2, fs pool",
    ),
];

/// Runs the lab part; `Ok(false)` when a protocol has no measurement.
pub(crate) fn run() -> Result<bool> {
    let start = Instant::now();
    let _lab = lab::exclusive()?;
    lab::install_packages()?;
    let vmlinux = lab::guest_kernel()?;
    let vng = lab::virtme_ng()?;
    let virtiofsd = lab::virtiofsd();
    let sim = lab::build_sim()?;
    let bench = lab::build_test("kvmstor", "bench_lab_attach", false)?;
    let out = lab::fresh_out_dir("bench-attach-out")?;
    lab::write_plan(
        &out,
        &sim,
        std::slice::from_ref(&bench),
        Some("bench_attach"),
    )?;
    let reps = lab::bench_reps(&out, 3)?;

    let t = Instant::now();
    let status = lab::boot(&vng, &vmlinux, virtiofsd.as_deref(), &out)?;
    println!(
        "bench attach: guest run {:.1}s (vng exit: {status})",
        t.elapsed().as_secs_f64()
    );
    let name = bench
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let log =
        fs::read_to_string(out.join("results").join(format!("{name}.txt"))).unwrap_or_default();
    print!("{log}");
    let samples =
        read_samples(&fs::read_to_string(out.join("bench-attach.jsonl")).unwrap_or_default());
    let kernel = lab::guest_kernel_release(&out);
    let steps =
        read_steps(&fs::read_to_string(out.join("bench-attach-steps.jsonl")).unwrap_or_default());
    let table = format!(
        "{}\nWhere the time goes (median seconds per step, the slowest first):\n\n{}",
        table(&samples),
        breakdown(&steps)
    );
    print!("{table}");
    let dir = crate::target_dir().join("bench");
    fs::create_dir_all(&dir)?;
    let md = format!(
        "Measured by `cargo xtask bench attach`: guest kernel {kernel} under QEMU TCG (2 vCPU, \
         no KVM), one boot, the simulator's kernel backend (knfsd, samba, LIO, nvmet) on the \
         same guest over loopback; protocols interleaved per repetition, median of {reps}. \
         Attach: start of the facade's `run` to outcome `Applied` (ONTAP objects created, host \
         connected and mounted, libvirt pool defined and started). Detach: the full teardown, \
         ONTAP objects deleted.\n\n{table}"
    );
    fs::write(dir.join("attach.md"), &md)?;
    println!(
        "bench attach: total {:.1}s; wrote {}; logs in {}",
        start.elapsed().as_secs_f64(),
        dir.join("attach.md").display(),
        out.display()
    );
    let complete = PROTOCOLS.iter().all(|(p, _)| {
        samples
            .iter()
            .any(|s| s.protocol == *p && s.times.is_some())
    });
    Ok(complete && log.contains("test result: ok"))
}

/// One line of `bench-attach.jsonl`: times, or the error that stopped the protocol.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    protocol: String,
    /// (attach, detach) seconds; `None` for an error line.
    times: Option<(f64, f64)>,
}

fn read_samples(text: &str) -> Vec<Sample> {
    let field = crate::bench::json_field;
    text.lines()
        .filter_map(|l| {
            let protocol = field(l, "protocol")?;
            let times = match (field(l, "attach_s"), field(l, "detach_s")) {
                (Some(a), Some(d)) => Some((a.parse().ok()?, d.parse().ok()?)),
                _ if l.contains("\"error\":") => None,
                _ => return None,
            };
            Some(Sample { protocol, times })
        })
        .collect()
}

/// One line of `bench-attach-steps.jsonl`: (protocol, op, step kind, seconds).
fn read_steps(text: &str) -> Vec<(String, String, String, f64)> {
    let field = crate::bench::json_field;
    text.lines()
        .filter_map(|l| {
            Some((
                field(l, "protocol")?,
                field(l, "op")?,
                field(l, "step")?,
                field(l, "seconds")?.parse().ok()?,
            ))
        })
        .collect()
}

/// Per protocol and operation, the steps by median seconds, the slowest first (at most
/// five; the rest summed).
fn breakdown(steps: &[(String, String, String, f64)]) -> String {
    let mut t = String::from(
        "| protocol | operation | slowest steps (median) | other steps |\n|---|---|---|---:|\n",
    );
    for (proto, label) in PROTOCOLS {
        for op in ["attach", "detach"] {
            let mut kinds: Vec<&str> = Vec::new();
            for (p, o, k, _) in steps {
                if p == proto && o == op && !kinds.contains(&k.as_str()) {
                    kinds.push(k);
                }
            }
            if kinds.is_empty() {
                continue;
            }
            // One host: each step kind runs once per run, so its median is over repetitions.
            let mut per: Vec<(&str, f64)> = kinds
                .iter()
                .map(|k| {
                    let v: Vec<f64> = steps
                        .iter()
                        .filter(|(p, o, kk, _)| p == proto && o == op && kk == k)
                        .map(|s| s.3)
                        .collect();
                    (*k, crate::bench::median(v).unwrap_or(0.0))
                })
                .collect();
            per.sort_by(|a, b| b.1.total_cmp(&a.1));
            let top: Vec<String> = per
                .iter()
                .take(5)
                .map(|(k, s)| format!("{k} {s:.2} s"))
                .collect();
            // `+ 0.0`: an empty f64 sum is -0.0, which would print as "-0.00".
            let rest = per.iter().skip(5).map(|(_, s)| s).sum::<f64>() + 0.0;
            let _ = writeln!(t, "| {label} | {op} | {} | {rest:.2} s |", top.join(", "));
        }
    }
    t
}

fn table(samples: &[Sample]) -> String {
    let mut t = String::from(
        "| protocol | attach-to-ready (median) | detach (median) | min–max attach | n |\n\
         |---|---:|---:|---:|---:|\n",
    );
    for (proto, label) in PROTOCOLS {
        let times: Vec<(f64, f64)> = samples
            .iter()
            .filter(|s| s.protocol == proto)
            .filter_map(|s| s.times)
            .collect();
        let failed = samples
            .iter()
            .any(|s| s.protocol == proto && s.times.is_none());
        let attach: Vec<f64> = times.iter().map(|t| t.0).collect();
        let cell = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.2} s"));
        let range = match (
            attach.iter().copied().reduce(f64::min),
            attach.iter().copied().reduce(f64::max),
        ) {
            (Some(lo), Some(hi)) => format!("{lo:.2}–{hi:.2} s"),
            _ => "–".to_owned(),
        };
        let _ = writeln!(
            t,
            "| {label}{} | {} | {} | {range} | {} |",
            if failed { " (a run failed)" } else { "" },
            cell(crate::bench::median(attach.clone())),
            cell(crate::bench::median(times.iter().map(|t| t.1).collect())),
            times.len(),
        );
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_read_and_medians_taken() {
        let text = concat!(
            r#"{"attach_s":2.5,"detach_s":1.0,"protocol":"nfs","rep":0}"#,
            "\n",
            r#"{"attach_s":1.5,"detach_s":0.5,"protocol":"nfs","rep":1}"#,
            "\n",
            r#"{"attach_s":2.0,"detach_s":0.75,"protocol":"nfs","rep":2}"#,
            "\n",
            r#"{"error":"boom","protocol":"smb","rep":0}"#,
            "\nnot json\n"
        );
        let s = read_samples(text);
        assert_eq!(s.len(), 4);
        assert_eq!(
            s[3],
            Sample {
                protocol: "smb".into(),
                times: None
            }
        );
        let t = table(&s);
        assert!(
            t.contains("| NFS 4.1 (fstab), dir pool | 2.00 s | 0.75 s | 1.50–2.50 s | 3 |"),
            "{t}"
        );
        assert!(
            t.contains("| SMB 3.1.1 (fstab), dir pool (a run failed) | – | – | – | 0 |"),
            "{t}"
        );
    }

    #[test]
    fn step_times_are_ranked() {
        let mut text = String::new();
        for (step, secs) in [
            ("CreateVolume", [0.5, 0.7, 0.6]),
            ("MountNfs", [1.0, 3.0, 2.0]),
            ("DefinePool", [0.1, 0.1, 0.1]),
            ("A", [0.01; 3]),
            ("B", [0.02; 3]),
            ("C", [0.03; 3]),
        ] {
            for s in secs {
                text.push_str(&format!(
                    "{{\"op\":\"attach\",\"protocol\":\"nfs\",\"rep\":0,\"seconds\":{s},\"step\":\"{step}\"}}\n"
                ));
            }
        }
        text.push_str(
            r#"{"op":"detach","protocol":"nfs","rep":0,"seconds":1.0,"step":"UnmountNfs"}"#,
        );
        let steps = read_steps(&text);
        assert_eq!(steps.len(), 19);
        let t = breakdown(&steps);
        assert!(
            t.contains("| NFS 4.1 (fstab), dir pool | attach | MountNfs 2.00 s, CreateVolume 0.60 s, DefinePool 0.10 s, C 0.03 s, B 0.02 s | 0.01 s |"),
            "{t}"
        );
        assert!(
            t.contains("| NFS 4.1 (fstab), dir pool | detach | UnmountNfs 1.00 s | 0.00 s |"),
            "{t}"
        );
        assert!(!t.contains("SMB"), "{t}");
    }
}
