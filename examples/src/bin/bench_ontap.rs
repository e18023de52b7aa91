//! The `ontap-client` side of `cargo xtask bench`; `tests/python/bench_netapp_ontap.py` does
//! the same work with NetApp's `netapp-ontap`.
//!
//! ```text
//! bench_ontap stream [--page-size N]     stream every volume through paging (fields=name,size)
//! bench_ontap lun-cycles [--count N]     N times: create a LUN, map it, unmap it, delete it
//! ```
//!
//! The simulator's address comes from `ONTAP_SIM_URL`, `ONTAP_SIM_CA`, `ONTAP_SIM_USER` and
//! `ONTAP_SIM_PASSWORD`. Prints one JSON line: client, workload, items, seconds, peak_rss_kib
//! (this process's own `VmHWM`).

use std::time::Instant;

use anyhow::{bail, Context, Result};
use futures_util::TryStreamExt;
use ontap_client::models::{
    IgroupCreate, IgroupOsType, IgroupProtocol, LunCreate, LunMapCreate, LunOsType, Volume,
    VolumeCreate, MIB,
};
use ontap_client::{Client, Query, SecretString};

const SVM: &str = "svm1";
const AGGREGATE: &str = "aggr1";

enum Workload {
    Stream { page_size: u64 },
    LunCycles { count: u64 },
}

fn parse_args() -> Result<Workload> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str, default: u64| -> Result<u64> {
        match args.iter().position(|a| a == name) {
            Some(i) => args
                .get(i + 1)
                .with_context(|| format!("{name} needs a value"))?
                .parse()
                .with_context(|| format!("{name} takes a number")),
            None => Ok(default),
        }
    };
    match args.first().map(String::as_str) {
        Some("stream") => Ok(Workload::Stream {
            page_size: flag("--page-size", 1000)?,
        }),
        Some("lun-cycles") => Ok(Workload::LunCycles {
            count: flag("--count", 1000)?,
        }),
        _ => bail!("usage: bench_ontap stream [--page-size N] | lun-cycles [--count N]"),
    }
}

fn env(name: &str) -> Result<String> {
    std::env::var(name).with_context(|| format!("{name} is not set (run via `cargo xtask bench`)"))
}

fn connect() -> Result<Client> {
    let ca = env("ONTAP_SIM_CA")?;
    let client = Client::builder(env("ONTAP_SIM_URL")?)
        .add_ca_pem(std::fs::read(&ca).with_context(|| format!("reading {ca}"))?)
        .basic_auth(
            env("ONTAP_SIM_USER")?,
            SecretString::from(env("ONTAP_SIM_PASSWORD")?),
        )
        .build()?;
    Ok(client)
}

async fn stream(client: &Client, page_size: u64) -> Result<(u64, f64)> {
    let query = Query::new().fields(["name", "size"]).max_records(page_size);
    let started = Instant::now();
    let volumes = client.volumes();
    let mut records = std::pin::pin!(volumes.list(&query));
    let mut count = 0u64;
    while let Some(volume) = records.try_next().await? {
        let volume: Volume = volume;
        if volume.name.is_some() {
            count += 1;
        }
    }
    Ok((count, started.elapsed().as_secs_f64()))
}

async fn lun_cycles(client: &Client, count: u64) -> Result<(u64, f64)> {
    let tag = format!("brs{}", std::process::id());
    let volume_name = format!("{tag}_vol");
    let volume = client
        .volumes()
        .create(&VolumeCreate::flexvol(&volume_name, SVM, AGGREGATE).size(1024 * MIB))
        .await?
        .record
        .and_then(|v| v.uuid)
        .context("the created volume has no uuid")?;
    let igroup_name = format!("{tag}_ig");
    let igroup = client
        .igroups()
        .create(
            &IgroupCreate::new(
                &igroup_name,
                SVM,
                IgroupProtocol::Iscsi,
                IgroupOsType::Linux,
            )
            .initiator(format!("iqn.1994-05.com.redhat:{tag}")),
        )
        .await?
        .record
        .and_then(|i| i.uuid)
        .context("the created igroup has no uuid")?;

    let started = Instant::now();
    let mut done = 0;
    for i in 0..count {
        let path = format!("/vol/{volume_name}/lun{i}");
        let lun = client
            .luns()
            .create(&LunCreate::new(SVM, &path, LunOsType::Linux, 16 * MIB))
            .await?
            .record
            .and_then(|l| l.uuid)
            .with_context(|| format!("the created LUN {path} has no uuid"))?;
        client
            .lun_maps()
            .create(&LunMapCreate::new(SVM, path.as_str(), igroup_name.as_str()))
            .await?;
        client.lun_maps().unmap(&lun, &igroup).await?;
        client.luns().delete(&lun).await?;
        done += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    client.igroups().delete(&igroup).await?;
    client.volumes().delete(&volume).await?;
    Ok((done, elapsed))
}

/// This process's peak resident set size in KiB (`VmHWM` in `/proc/self/status`).
fn peak_rss_kib() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .context("no VmHWM in /proc/self/status")
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let workload = parse_args()?;
    let client = connect()?;
    let (name, (items, seconds)) = match workload {
        Workload::Stream { page_size } => ("stream", stream(&client, page_size).await?),
        Workload::LunCycles { count } => ("lun_cycles", lun_cycles(&client, count).await?),
    };
    println!(
        "{{\"client\":\"ontap-client\",\"version\":\"{}\",\"workload\":\"{name}\",\"items\":{items},\"seconds\":{seconds:.4},\"peak_rss_kib\":{}}}",
        env!("CARGO_PKG_VERSION"),
        peak_rss_kib()?
    );
    Ok(())
}
