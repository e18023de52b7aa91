//! The `ontap-sim` binary: `listening on URL`, `--cert-out`, `--state` persistence
//! round trip, `--bulk-volumes`.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};

struct Proc {
    child: Child,
    url: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(args: &[&str]) -> anyhow::Result<Proc> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ontap-sim"))
        .args(["--listen", "127.0.0.1:0", "--job-ms", "10"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let url = line
        .trim_end()
        .strip_prefix("listening on ")
        .ok_or_else(|| anyhow::anyhow!("unexpected first line {line:?}"))?
        .to_string();
    Ok(Proc { child, url })
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ontap-sim-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn client(cert: &Path) -> anyhow::Result<reqwest::Client> {
    let pem = std::fs::read(cert)?;
    Ok(reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem)?])
        .build()?)
}

async fn get(c: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    Ok(c.get(url)
        .basic_auth("admin", Some("netapp1!"))
        .send()
        .await?
        .json()
        .await?)
}

#[tokio::test]
async fn state_survives_a_restart() -> anyhow::Result<()> {
    let dir = scratch("state");
    let state = dir.join("state.json");
    let cert = dir.join("cert.pem");
    let p = spawn(&[
        "--state",
        state.to_str().unwrap(),
        "--cert-out",
        cert.to_str().unwrap(),
    ])?;
    assert!(p.url.starts_with("https://127.0.0.1:"), "{}", p.url);
    let c = client(&cert)?;
    let r = c
        .post(format!("{}/api/storage/volumes?return_timeout=30", p.url))
        .basic_auth("admin", Some("netapp1!"))
        .json(&json!({"name": "persisted", "svm": {"name": "svm1"}, "aggregates": [{"name": "aggr1"}], "size": "2GB"}))
        .send()
        .await?;
    assert_eq!(r.status(), 201);
    let before = get(
        &c,
        &format!(
            "{}/api/storage/volumes?name=persisted&fields=uuid,size",
            p.url
        ),
    )
    .await?;
    assert_eq!(before["num_records"], 1);
    drop(p);

    let p = spawn(&[
        "--state",
        state.to_str().unwrap(),
        "--cert-out",
        cert.to_str().unwrap(),
    ])?;
    let c = client(&cert)?;
    let after = get(
        &c,
        &format!(
            "{}/api/storage/volumes?name=persisted&fields=uuid,size",
            p.url
        ),
    )
    .await?;
    assert_eq!(after["records"][0]["uuid"], before["records"][0]["uuid"]);
    assert_eq!(after["records"][0]["size"], 2u64 * 1024 * 1024 * 1024);
    let aggr = get(
        &c,
        &format!("{}/api/storage/aggregates?name=aggr1&fields=space", p.url),
    )
    .await?;
    assert_eq!(
        aggr["records"][0]["space"]["block_storage"]["used"],
        2u64 * 1024 * 1024 * 1024
    );
    let doc: Value = serde_json::from_slice(&std::fs::read(&state)?)?;
    assert_eq!(doc["format"], "ontap-sim-state/1");
    drop(p);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::test]
async fn plain_http_seed_and_bulk_volumes() -> anyhow::Result<()> {
    let dir = scratch("seed");
    let seed = dir.join("seed.json");
    std::fs::write(
        &seed,
        serde_json::to_vec(
            &json!({"cluster": {"name": "lab", "version": {"full": "NetApp Release 9.14.1", "generation": 9, "major": 14, "minor": 1}},
                                   "volumes": [{"name": "seeded", "svm": {"name": "svm1"}, "aggregates": [{"name": "aggr2"}]}]}),
        )?,
    )?;
    let p = spawn(&[
        "--http",
        "--seed",
        seed.to_str().unwrap(),
        "--bulk-volumes",
        "250",
    ])?;
    assert!(p.url.starts_with("http://127.0.0.1:"));
    let c = reqwest::Client::builder().no_proxy().build()?;
    let cl = get(&c, &format!("{}/api/cluster", p.url)).await?;
    assert_eq!(cl["name"], "lab");
    assert_eq!(cl["version"]["minor"], 1);
    let n = get(
        &c,
        &format!("{}/api/storage/volumes?return_records=false", p.url),
    )
    .await?;
    assert_eq!(n["num_records"], 251);
    let s = get(
        &c,
        &format!("{}/api/storage/volumes?name=bench_000250", p.url),
    )
    .await?;
    assert_eq!(s["num_records"], 1);
    drop(p);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
