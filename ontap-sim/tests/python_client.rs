//! Compatibility with NetApp's official Python client (`netapp-ontap` on PyPI).
//!
//! Ignored by default because it needs Python with the package installed:
//! `python3 -m venv /tmp/v && /tmp/v/bin/pip install netapp-ontap`, then
//! `ONTAP_SIM_PYTHON=/tmp/v/bin/python cargo test -p ontap-sim --test python_client -- --ignored`.

mod common;

use std::process::Command;

use secrecy::ExposeSecret;

#[tokio::test]
#[ignore = "needs ONTAP_SIM_PYTHON: a Python with netapp-ontap installed"]
async fn netapp_ontap_python_client_works_unchanged() -> anyhow::Result<()> {
    let python = std::env::var("ONTAP_SIM_PYTHON")
        .map_err(|_| anyhow::anyhow!("set ONTAP_SIM_PYTHON to a python with netapp-ontap"))?;
    let env = common::start().await?;
    let cert = std::env::temp_dir().join(format!("ontap-sim-py-{}.pem", std::process::id()));
    std::fs::write(&cert, env.sim.ca_pem().expect("https"))?;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/netapp_ontap_smoke.py"
    );
    let addr = env.sim.addr();
    let pw = env.sim.password();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .env("SIM_HOST", addr.ip().to_string())
            .env("SIM_PORT", addr.port().to_string())
            .env("SIM_PASSWORD", pw.expose_secret())
            .env("REQUESTS_CA_BUNDLE", &cert)
            .output()
    })
    .await??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "cluster sim-cluster NetApp Release 9.16.1: Mon Sep 30 12:00:00 UTC 2024",
        "svms ['svm1']",
        "resized 10737418240",
        "snaps ['pysnap']",
        "nvme lifs ['192.0.2.31', '192.0.2.32']",
        "err 404 {'error': {'code': '4', 'message': \"entry doesn't exist\"}}",
        "delete failed as expected: Job failed: Volume \"pyvol\" in SVM \"svm1\" cannot be deleted because it has FlexClone volumes (pyclone).",
        "final count 0",
    ] {
        assert!(stdout.lines().any(|l| l == line), "missing {line:?} in:\n{stdout}");
    }
    Ok(())
}
