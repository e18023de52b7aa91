//! Lab tier: the demo and the workflow examples, run as their binaries inside the lab guest
//! (`cargo xtask lab lab_examples`) against the guest's simulator (kernel backend), found
//! through the `ONTAP_*` variables a user would set.
//!
//! The demo runs with its ONTAP side pointed at the guest's running simulator instead of
//! starting its own: a kernel backend owns `/var/lib/ontap-sim`, the exports file, the samba
//! include and the LIO/nvmet configfs trees, so a second one in the same kernel would fight
//! the first over them. `cargo xtask demo` runs the demo with its embedded simulator.
//!
//! FC has no fabric in the lab: its example is checked by `plan` only
//! (`tests/example_plans.rs`).

use std::process::Command;

use anyhow::{Context, Result};

fn env(name: &str) -> Result<String> {
    std::env::var(name)
        .with_context(|| format!("{name} is not set: run this test through `cargo xtask lab`"))
}

/// Runs an example binary against the guest's simulator; returns (exit code, transcript).
fn run(bin: &str, args: &[&str], extra_env: &[(&str, String)]) -> Result<(i32, String)> {
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .env("ONTAP_URL", env("LAB_SIM_URL")?)
        .env("ONTAP_CA", env("LAB_SIM_CA")?)
        .env("ONTAP_USER", env("LAB_SIM_USER")?)
        .env("ONTAP_PASSWORD", env("LAB_SIM_PASSWORD")?)
        .env_remove("ONTAP_PASSWORD_FILE");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let out = cmd.output().with_context(|| format!("running {bin}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "$ {} {}\n{text}",
        bin.rsplit('/').next().unwrap_or(bin),
        args.join(" ")
    );
    Ok((out.status.code().unwrap_or(-1), text))
}

fn mounted(path: &str) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(path))
}

fn pool_defined(name: &str) -> bool {
    Command::new("virsh")
        .args(["-c", "qemu:///system", "pool-info", name])
        .output()
        .is_ok_and(|o| o.status.success())
}

async fn volume_exists(name: &str) -> Result<bool> {
    let ca = std::fs::read(env("LAB_SIM_CA")?)?;
    let c = ontap_client::Client::builder(env("LAB_SIM_URL")?)
        .add_ca_pem(ca)
        .basic_auth(
            env("LAB_SIM_USER")?,
            ontap_client::SecretString::from(env("LAB_SIM_PASSWORD")?),
        )
        .build()?;
    Ok(c.volumes().by_name("svm1", name).await?.is_some())
}

/// The `<== Step` lines of the demo's transcript, in order.
fn finished_steps(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("<== "))
        .map(|l| l.split([':', ' ']).next().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
#[ignore = "lab tier: needs the lab guest kernel (run by cargo xtask lab)"]
async fn lab_examples_demo_whole_story_against_the_guest_simulator() -> Result<()> {
    let (code, text) = run(env!("CARGO_BIN_EXE_demo"), &["--prefix", "lab-demo"], &[])?;
    assert_eq!(code, 0, "{text}");
    assert_eq!(
        finished_steps(&text),
        [
            "AttachNfsDatastore",
            "CreateVmDisk",
            "SnapshotDatastore",
            "CloneDiskFromSnapshot",
            "AttachIscsiOcfs2Datastore",
            "CreateVmDiskOnOcfs2",
            "DetachIscsiDatastore",
            "DetachNfsDatastore",
        ]
    );
    assert!(text.trim_end().ends_with("result SUCCESS"), "{text}");
    assert!(
        text.contains("    [ 6/6] done ("),
        "facade progress lines: {text}"
    );
    // Nothing left behind: mounts, pools, volumes.
    for pool in ["lab-demo-nfs", "lab-demo-iscsi"] {
        assert!(!mounted(&format!("/var/lib/kvmstor/mnt/{pool}")), "{pool}");
        assert!(!pool_defined(pool), "{pool}");
    }
    assert!(!volume_exists("lab_demo_nfs").await?);
    assert!(!volume_exists("lab_demo_iscsi").await?);
    Ok(())
}

/// Attaches with an example, checks the mount and the pool, detaches deleting the ONTAP
/// objects, checks that all of it is gone.
async fn attach_then_detach(
    bin: &str,
    pool: &str,
    args: &[&str],
    extra: &[(&str, String)],
) -> Result<()> {
    let volume = pool.replace('-', "_");
    let mount = format!("/var/lib/kvmstor/mnt/{pool}");
    let mut attach = vec!["attach", pool];
    attach.extend(args);
    let (code, text) = run(bin, &attach, extra)?;
    let attached = code == 0 && mounted(&mount) && pool_defined(pool);
    let mut detach = vec!["detach", pool, "--delete-ontap-objects"];
    detach.extend(args);
    let (dcode, dtext) = run(bin, &detach, extra)?;
    assert!(
        attached,
        "attach: code {code}, mounted {}, pool {}\n{text}",
        mounted(&mount),
        pool_defined(pool)
    );
    assert!(text.trim_end().ends_with("step(s) changed)"), "{text}");
    assert_eq!(dcode, 0, "{dtext}");
    assert!(!mounted(&mount), "still mounted after detach");
    assert!(!pool_defined(pool), "pool still defined after detach");
    assert!(
        !volume_exists(&volume).await?,
        "volume {volume} still there"
    );
    Ok(())
}

#[tokio::test]
#[ignore = "lab tier: needs the lab guest kernel (run by cargo xtask lab)"]
async fn lab_examples_nfs_datastore_attach_detach() -> Result<()> {
    attach_then_detach(
        env!("CARGO_BIN_EXE_nfs_datastore"),
        "lab-ex-nfs",
        &["--size", "1G"],
        &[],
    )
    .await
}

#[tokio::test]
#[ignore = "lab tier: needs the lab guest kernel (run by cargo xtask lab)"]
async fn lab_examples_smb_datastore_attach_detach() -> Result<()> {
    let user = env("LAB_SMB_USER")?;
    let extra = [("SMB_PASSWORD", env("LAB_SMB_PASSWORD")?)];
    attach_then_detach(
        env!("CARGO_BIN_EXE_smb_datastore"),
        "lab-ex-smb",
        &["--size", "1G", "--smb-user", &user],
        &extra,
    )
    .await
}

#[tokio::test]
#[ignore = "lab tier: needs the lab guest kernel (run by cargo xtask lab)"]
async fn lab_examples_block_datastore_iscsi_ocfs2_attach_detach() -> Result<()> {
    attach_then_detach(
        env!("CARGO_BIN_EXE_block_datastore"),
        "lab-ex-iscsi",
        &["--protocol", "iscsi", "--fs", "ocfs2", "--size", "2G"],
        &[],
    )
    .await
}

#[tokio::test]
#[ignore = "lab tier: needs the lab guest kernel (run by cargo xtask lab)"]
async fn lab_examples_block_datastore_nvme_ocfs2_attach_detach() -> Result<()> {
    attach_then_detach(
        env!("CARGO_BIN_EXE_block_datastore"),
        "lab-ex-nvme",
        &["--protocol", "nvme", "--fs", "ocfs2", "--size", "2G"],
        &[],
    )
    .await
}
