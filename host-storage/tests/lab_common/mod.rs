//! Shared by the `lab_*` tests: they run inside the lab guest (`cargo xtask lab`), where
//! `lab/guest-init.sh` started `ontap-sim` with its kernel backend and the daemons, and
//! exported `LAB_SIM_URL`, `LAB_SIM_CA`, `LAB_SIM_USER`, `LAB_SIM_PASSWORD`, `LAB_OUT`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ontap_client::{Client, Query, SecretString};
use serde_json::{json, Value};

/// Where the kernel backend keeps volumes: `<root>/mnt/vols/<volume uuid>`.
pub const SIM_ROOT: &str = "/var/lib/ontap-sim";

fn env(name: &str) -> Result<String> {
    std::env::var(name)
        .with_context(|| format!("{name} is not set: run this test through `cargo xtask lab`"))
}

/// A client for the simulator running in the guest.
pub fn sim() -> Result<Client> {
    let ca = std::fs::read(env("LAB_SIM_CA")?)?;
    Ok(Client::builder(env("LAB_SIM_URL")?)
        .add_ca_pem(ca)
        .basic_auth(
            env("LAB_SIM_USER")?,
            SecretString::from(env("LAB_SIM_PASSWORD")?),
        )
        .build()?)
}

/// POST and wait for the job; returns the answer's records.
pub async fn post(c: &Client, path: &str, body: Value) -> Result<Vec<Value>> {
    let q = Query::new().return_records(true);
    let out = c.raw().post(path, &q, Some(&body)).await?;
    let records = out.records.clone();
    out.wait(c).await.with_context(|| format!("POST {path}"))?;
    Ok(records)
}

/// GET a collection's records.
pub async fn get(c: &Client, path: &str, q: &Query) -> Result<Vec<Value>> {
    let v = c.raw().get(path, q).await?;
    Ok(v["records"].as_array().cloned().unwrap_or_default())
}

/// DELETE and wait for the job.
pub async fn delete(c: &Client, path: &str) -> Result<()> {
    c.raw()
        .delete(path, &Query::new(), None)
        .await?
        .wait(c)
        .await?;
    Ok(())
}

/// Maps the LUN at `lun` (`/vol/v/lun1`) as `lun_id` to the iSCSI igroup `lab_ig` of
/// `initiator` (created when missing); returns the target IQN.
pub async fn map_lun_to_lab_igroup(
    c: &Client,
    lun: &str,
    lun_id: u64,
    initiator: &str,
) -> Result<String> {
    let igroups = get(
        c,
        "/api/protocols/san/igroups",
        &Query::new().filter("name", "lab_ig"),
    )
    .await?;
    if igroups.is_empty() {
        post(
            c,
            "/api/protocols/san/igroups",
            json!({"svm": {"name": "svm1"}, "name": "lab_ig", "os_type": "linux", "protocol": "iscsi",
                   "initiators": [{"name": initiator}]}),
        )
        .await?;
    }
    post(
        c,
        "/api/protocols/san/lun-maps",
        json!({"svm": {"name": "svm1"}, "lun": {"name": lun},
               "igroup": {"name": "lab_ig"}, "logical_unit_number": lun_id}),
    )
    .await?;
    let svc = get(
        c,
        "/api/protocols/san/iscsi/services",
        &Query::new().fields(["target"]),
    )
    .await?;
    Ok(svc
        .first()
        .and_then(|s| s["target"]["name"].as_str())
        .context("target iqn")?
        .to_owned())
}

/// Deletes every CHAP credential of `initiator` (LIO then lets it log in without CHAP).
/// Tests that set CHAP call it when done, so the tests of other binaries do not depend on
/// the order the lab runs them in.
#[allow(dead_code)] // not every lab test binary sets CHAP
pub async fn remove_chap(c: &Client, initiator: &str) -> Result<()> {
    let creds = get(
        c,
        "/api/protocols/san/iscsi/credentials",
        &Query::new()
            .filter("initiator", initiator)
            .fields(["svm.uuid"]),
    )
    .await?;
    for cred in &creds {
        let svm = cred["svm"]["uuid"].as_str().context("credential svm")?;
        delete(
            c,
            &format!("/api/protocols/san/iscsi/credentials/{svm}/{initiator}"),
        )
        .await?;
    }
    Ok(())
}

/// Opens the default export policy to the loopback clients (idempotent).
pub async fn open_default_policy(c: &Client) -> Result<()> {
    let pol = get(
        c,
        "/api/protocols/nfs/export-policies",
        &Query::new().filter("name", "default"),
    )
    .await?;
    let id = pol
        .first()
        .and_then(|p| p["id"].as_u64())
        .context("no default export policy")?;
    let rules_path = format!("/api/protocols/nfs/export-policies/{id}/rules");
    let rules = get(c, &rules_path, &Query::new().fields(["clients"])).await?;
    if rules
        .iter()
        .any(|r| r["clients"][0]["match"] == "127.0.0.0/8")
    {
        return Ok(());
    }
    post(
        c,
        &rules_path,
        json!({"clients": [{"match": "127.0.0.0/8"}], "ro_rule": ["sys"], "rw_rule": ["sys"],
               "superuser": ["sys"], "protocols": ["any"]}),
    )
    .await?;
    Ok(())
}

/// A volume in svm1.
pub struct Volume {
    /// Its name.
    pub name: String,
    /// Its UUID.
    pub uuid: String,
}

impl Volume {
    /// Creates a volume, with a junction `/<name>` when `junction`.
    pub async fn create(c: &Client, name: &str, size: &str, junction: bool) -> Result<Volume> {
        let mut body = json!({"name": name, "svm": {"name": "svm1"},
                              "aggregates": [{"name": "aggr1"}], "size": size});
        if junction {
            body["nas"] = json!({"path": format!("/{name}")});
        }
        post(c, "/api/storage/volumes", body).await?;
        let vols = get(
            c,
            "/api/storage/volumes",
            &Query::new().filter("name", name),
        )
        .await?;
        let uuid = vols
            .first()
            .and_then(|v| v["uuid"].as_str())
            .context("created volume not found")?
            .to_owned();
        Ok(Volume {
            name: name.to_owned(),
            uuid,
        })
    }

    /// The volume's directory on the backend (the btrfs subvolume).
    pub fn backend_dir(&self) -> PathBuf {
        Path::new(SIM_ROOT).join("mnt/vols").join(&self.uuid)
    }
}

// No Drop that deletes the volume: the guest is thrown away after the run, and ontap-sim's
// kernel backend currently unmounts a junction before it re-exports, so knfsd keeps it
// busy and each DELETE waits for the umount to fail (about 60 s). Host-side cleanup, what
// these tests are about, is asserted by every test.

/// `/proc/self/mountinfo` lines whose mount point is `target`.
pub fn mountinfo_lines(target: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")?;
    let t = target.display().to_string();
    Ok(text
        .lines()
        .filter(|l| l.split(' ').nth(4) == Some(t.as_str()))
        .map(str::to_owned)
        .collect())
}

/// Runs a command and returns its stdout; fails on a non-zero exit.
pub fn sh(program: &str, args: &[&str]) -> Result<String> {
    let out = std::process::Command::new(program).args(args).output()?;
    if !out.status.success() {
        bail!(
            "{program} {args:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Keeps a real output as a parser fixture in `$LAB_OUT/fixtures/<name>` with a header line.
pub fn keep_fixture(name: &str, command: &str, tool_version: &str, body: &str) -> Result<()> {
    let Ok(out) = std::env::var("LAB_OUT") else {
        return Ok(());
    };
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")?;
    let date = sh("date", &["-u", "+%Y-%m-%d"])?;
    let header = format!(
        "# command: {command} | tool: {} | kernel: {} | date: {}\n",
        tool_version.trim().replace('\n', "; "),
        kernel.trim(),
        date.trim()
    );
    std::fs::write(Path::new(&out).join("fixtures").join(name), header + body)?;
    Ok(())
}

/// A unique, recognisable payload.
pub fn payload(tag: &str) -> Vec<u8> {
    let mut data = Vec::with_capacity(1 << 20);
    let mut n: u32 = 0x9e37_79b9;
    for b in tag.bytes().cycle().take(1 << 20) {
        n = n.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        data.push(b ^ (n >> 24) as u8);
    }
    data
}

/// Appends a line with the guest's uptime to `$LAB_OUT/steps.log` (where the time goes).
pub fn step(what: &str) {
    use std::io::Write as _;
    let up = std::fs::read_to_string("/proc/uptime").unwrap_or_default();
    let test = std::thread::current().name().unwrap_or("?").to_owned();
    let Ok(out) = std::env::var("LAB_OUT") else {
        return;
    };
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(Path::new(&out).join("steps.log"))
    {
        let _ = writeln!(
            f,
            "[{}] {test}: {what}",
            up.split(' ').next().unwrap_or("?")
        );
    }
}
