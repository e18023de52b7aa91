//! `cargo xtask demo`: the whole kvmstor story in the lab guest.
//!
//! Does all the set-up the lab needs (packages, guest kernel, virtme-ng, virtiofsd: the
//! functions of [`crate::lab`]), takes the lab lock, builds the `demo` binary, boots the
//! guest with `lab/guest-init.sh` in demo mode (the daemons as for the lab tests, but no
//! separate simulator: the demo starts its own, in-process, with the kernel backend), and
//! streams the demo's output to the terminal while the guest runs. Exits with the demo's
//! status.
//!
//! `cargo xtask demo --ontap-only` runs the ONTAP-level demo on this machine instead
//! (an in-process simulator, no guest, no root).

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

/// Runs the demo; `Ok(false)` when it failed.
pub(crate) fn run(args: &[String]) -> Result<bool> {
    match args {
        [] => in_guest(),
        [flag] if flag == "--ontap-only" => ontap_only(),
        _ => bail!("usage: cargo xtask demo [--ontap-only]"),
    }
}

fn ontap_only() -> Result<bool> {
    let mut cmd = crate::cargo();
    cmd.args([
        "run",
        "-q",
        "-p",
        "kvmstor-examples",
        "--bin",
        "demo",
        "--",
        "--ontap-only",
    ]);
    let started = Instant::now();
    let status = cmd.status()?;
    println!(
        "demo {} in {:.1}s",
        if status.success() {
            "finished"
        } else {
            "FAILED"
        },
        started.elapsed().as_secs_f64()
    );
    Ok(status.success())
}

fn in_guest() -> Result<bool> {
    let start = Instant::now();
    let _lab = crate::lab::exclusive()?;

    let t = Instant::now();
    crate::lab::install_packages()?;
    let vmlinux = crate::lab::guest_kernel()?;
    let vng = crate::lab::virtme_ng()?;
    let virtiofsd = crate::lab::virtiofsd();
    println!("demo: lab setup {:.1}s", t.elapsed().as_secs_f64());

    let t = Instant::now();
    let demo = crate::lab::build_bin("kvmstor-examples", "demo")?;
    println!("demo: build {:.1}s", t.elapsed().as_secs_f64());

    let out = crate::lab::fresh_out_dir("demo")?;
    write_plan(&out, &demo)?;

    println!("demo: booting the lab guest (QEMU TCG, about 1.5 min before the first step)");
    let t = Instant::now();
    let guest = {
        let (vng, vmlinux, virtiofsd, out) = (vng.clone(), vmlinux.clone(), virtiofsd, out.clone());
        std::thread::spawn(move || crate::lab::boot(&vng, &vmlinux, virtiofsd.as_deref(), &out))
    };
    let transcript = out.join("demo.txt");
    let mut shown = 0u64;
    while !guest.is_finished() {
        shown = show_new(&transcript, shown)?;
        std::thread::sleep(Duration::from_millis(250));
    }
    let booted = guest
        .join()
        .map_err(|_| anyhow::anyhow!("the guest thread panicked"))??;
    show_new(&transcript, shown)?;
    println!(
        "demo: guest run {:.1}s (vng exit: {booted}); total {:.1}s; transcript {}",
        t.elapsed().as_secs_f64(),
        start.elapsed().as_secs_f64(),
        transcript.display()
    );
    let rc = fs::read_to_string(out.join("demo.rc")).unwrap_or_default();
    match rc.trim() {
        "0" => Ok(true),
        "" => {
            eprintln!(
                "demo: the demo did not run; see {}",
                out.join("guest.log").display()
            );
            Ok(false)
        }
        code => {
            eprintln!("demo: exited with {code}");
            Ok(false)
        }
    }
}

fn write_plan(out: &Path, demo: &Path) -> Result<()> {
    let quote = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
    let plan = format!(
        "LAB_MODE=demo\nLAB_DEMO_BIN={}\nLAB_SIM_BIN=''\nLAB_TESTS=''\nLAB_FILTER=''\n",
        quote(&demo.display().to_string())
    );
    fs::write(out.join("plan.env"), plan)?;
    Ok(())
}

/// Prints what `file` gained since byte `from`; returns the new offset.
fn show_new(file: &Path, from: u64) -> Result<u64> {
    let Ok(mut f) = fs::File::open(file) else {
        return Ok(from);
    };
    f.seek(SeekFrom::Start(from))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    if buf.is_empty() {
        return Ok(from);
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&buf)?;
    stdout.flush()?;
    Ok(from + buf.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_puts_the_guest_in_demo_mode() {
        let dir = std::env::temp_dir().join(format!("xtask-demo-plan-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        write_plan(&dir, Path::new("/t/debug/demo")).unwrap();
        assert_eq!(
            fs::read_to_string(dir.join("plan.env")).unwrap(),
            "LAB_MODE=demo\nLAB_DEMO_BIN='/t/debug/demo'\nLAB_SIM_BIN=''\nLAB_TESTS=''\nLAB_FILTER=''\n"
        );
        fs::write(dir.join("t.txt"), "ab").unwrap();
        assert_eq!(show_new(&dir.join("t.txt"), 0).unwrap(), 2);
        assert_eq!(show_new(&dir.join("t.txt"), 2).unwrap(), 2);
        assert_eq!(show_new(&dir.join("missing"), 5).unwrap(), 5);
        fs::remove_dir_all(&dir).unwrap();
    }
}
