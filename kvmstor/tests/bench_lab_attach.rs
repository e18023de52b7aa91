//! Lab bench (run by `cargo xtask bench attach`, not by the lab tier): attach-to-ready and
//! detach times of the facade for NFS, SMB, iSCSI + OCFS2 and NVMe/TCP + OCFS2, in one guest
//! boot, against the simulator's kernel backend.
//!
//! Attach is timed from the start of `run` to its outcome `Applied`: the ONTAP objects made,
//! the host connected and mounted, the libvirt pool defined and started (checked active
//! afterwards, untimed). Detach is the full teardown, ONTAP objects deleted. The protocols
//! are interleaved per repetition (`$LAB_OUT/bench-reps`, default 3); one JSON line per
//! measurement goes to `$LAB_OUT/bench-attach.jsonl`, one per step (from the saga's observer)
//! to `$LAB_OUT/bench-attach-steps.jsonl`. A repetition that fails is written as an `error`
//! line and cleaned up, and the bench goes on; the test fails at the end.

#[path = "../../host-storage/tests/lab_common/mod.rs"]
mod lab_common;

use std::io::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use kvmstor::block::{BlockDatastore, BlockProtocol};
use kvmstor::nfs::{NfsDatastore, Persist};
use kvmstor::saga::{Observer, RunOutcome, Saga, Step, StepEvent, StepProgress};
use kvmstor::smb::SmbDatastore;
use kvmstor::{Env, Host};
use lab_common::{sh, sim, step};
use libvirt_pools::{Libvirt, PoolName};
use ontap_client::SecretString;

const SVM: &str = "svm1";
const AGGR: &str = "aggr1";
const GIB: u64 = 1 << 30;
/// OCFS2's `vmstore` type wants at least 2 GiB; the LUN and namespace files are sparse.
const BLOCK_SIZE: u64 = 3 * GIB;
const PROTOCOLS: [&str; 4] = ["nfs", "smb", "iscsi-ocfs2", "nvme-ocfs2"];

fn out_dir() -> Result<String> {
    std::env::var("LAB_OUT").context("LAB_OUT is not set: run through `cargo xtask bench attach`")
}

fn reps() -> usize {
    std::env::var("LAB_OUT")
        .ok()
        .and_then(|o| std::fs::read_to_string(Path::new(&o).join("bench-reps")).ok())
        .and_then(|r| r.trim().parse().ok())
        .unwrap_or(3)
}

fn record(line: &serde_json::Value) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(Path::new(&out_dir()?).join("bench-attach.jsonl"))?;
    writeln!(f, "{line}")?;
    Ok(())
}

/// The guest as the one KVM host, as the lab workflows name it.
fn lab_env() -> Result<(Env, String)> {
    let name = sh("hostname", &[])?.trim().to_owned();
    let env = Env::new(sim()?).host(Host::local(name.clone()).address("127.0.0.1"));
    Ok((env, name))
}

async fn libvirt() -> Result<Libvirt> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match Libvirt::connect("qemu:///system").await {
            Ok(lv) => return Ok(lv),
            Err(e) if Instant::now() >= deadline => return Err(e.into()),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// Where a run's time went: (step kind, seconds) in step order.
type StepTimes = Arc<Mutex<Vec<(String, f64)>>>;

/// Runs `saga` journaled to `journal`, timing each step through the saga's observer; the
/// seconds the whole run took, failing unless it applied.
async fn timed<S: Step<Env = Env>>(
    saga: Saga<S>,
    env: &Env,
    journal: &Path,
    steps: &StepTimes,
) -> Result<f64> {
    let started: Arc<Mutex<Option<Instant>>> = Arc::default();
    let sink = steps.clone();
    let saga = saga
        .journal_file(journal)
        .observe(Observer::new(move |e: &StepEvent<'_>| {
            let mut at = started.lock().unwrap_or_else(|p| p.into_inner());
            match e.progress {
                StepProgress::Started => *at = Some(Instant::now()),
                StepProgress::Done { .. } => {
                    if let Some(t) = at.take() {
                        let kind = e.label.split_whitespace().next().unwrap_or_default();
                        sink.lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push((kind.to_owned(), t.elapsed().as_secs_f64()));
                    }
                }
                _ => {}
            }
        }));
    let t = Instant::now();
    let report = saga.run(env).await?;
    let secs = t.elapsed().as_secs_f64();
    ensure!(
        matches!(report.outcome, RunOutcome::Applied { changed } if changed > 0),
        "{}: {}",
        report.journal.workflow,
        report.outcome
    );
    Ok(secs)
}

/// Writes one `bench-attach-steps.jsonl` line per timed step.
fn record_steps(protocol: &str, rep: usize, op: &str, steps: &StepTimes) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(Path::new(&out_dir()?).join("bench-attach-steps.jsonl"))?;
    let steps = std::mem::take(&mut *steps.lock().unwrap_or_else(|p| p.into_inner()));
    for (step, seconds) in steps {
        let line = serde_json::json!({
            "protocol": protocol, "rep": rep, "op": op, "step": step, "seconds": seconds,
        });
        writeln!(f, "{line}")?;
    }
    Ok(())
}

fn nfs_ds(pool: &str, host: &str) -> NfsDatastore {
    NfsDatastore::new(SVM, pool, AGGR, GIB)
        .hosts([host])
        .persist(Persist::Fstab)
        .delete_ontap_objects(true)
}

fn smb_ds(pool: &str, host: &str) -> Result<SmbDatastore> {
    let user = std::env::var("LAB_SMB_USER").context("LAB_SMB_USER")?;
    let pass = std::env::var("LAB_SMB_PASSWORD").context("LAB_SMB_PASSWORD")?;
    Ok(SmbDatastore::new(SVM, pool, AGGR, GIB)
        .hosts([host])
        .account(&user, None, SecretString::from(pass))
        .persist(Persist::Fstab)
        .max_channels(2)
        .delete_ontap_objects(true))
}

fn block_ds(protocol: &str, pool: &str, host: &str) -> BlockDatastore {
    let p = if protocol == "iscsi-ocfs2" {
        BlockProtocol::Iscsi
    } else {
        BlockProtocol::NvmeTcp
    };
    BlockDatastore::new(p, SVM, pool, AGGR, BLOCK_SIZE)
        .hosts([host])
        .delete_ontap_objects(true)
}

/// One attach and detach of `protocol`: (attach seconds, detach seconds); the step times
/// go to `bench-attach-steps.jsonl`.
async fn once(
    protocol: &str,
    rep: usize,
    env: &Env,
    host: &str,
    lv: &Libvirt,
) -> Result<(f64, f64)> {
    let (at, dt): (StepTimes, StepTimes) = Default::default();
    let dir = tempfile::Builder::new()
        .prefix("kvmstor-bench-")
        .tempdir()?;
    let (attach, detach) = (
        dir.path().join("attach.json"),
        dir.path().join("detach.json"),
    );
    let pool = format!("bench-{protocol}");
    let (a, d) = match protocol {
        "nfs" => {
            let ds = nfs_ds(&pool, host);
            let a = timed(ds.attach(env).await?, env, &attach, &at).await?;
            assert_active(lv, &pool).await?;
            (a, timed(ds.detach(env).await?, env, &detach, &dt).await?)
        }
        "smb" => {
            let ds = smb_ds(&pool, host)?;
            let env = ds.env_with_secret(env);
            let a = timed(ds.attach(&env).await?, &env, &attach, &at).await?;
            assert_active(lv, &pool).await?;
            (a, timed(ds.detach(&env).await?, &env, &detach, &dt).await?)
        }
        _ => {
            let ds = block_ds(protocol, &pool, host);
            let a = timed(ds.attach(env).await?, env, &attach, &at).await?;
            assert_active(lv, &pool).await?;
            (a, timed(ds.detach(env).await?, env, &detach, &dt).await?)
        }
    };
    let def = lv.pools().get(&PoolName::new(pool.clone())?).await?;
    ensure!(def.is_none(), "pool {pool} still defined after detach");
    record_steps(protocol, rep, "attach", &at)?;
    record_steps(protocol, rep, "detach", &dt)?;
    Ok((a, d))
}

/// After a failed repetition: detach what is left (untimed), so the next one starts clean.
async fn clean_up(protocol: &str, env: &Env, host: &str) -> Result<()> {
    let pool = format!("bench-{protocol}");
    match protocol {
        "nfs" => {
            nfs_ds(&pool, host).detach(env).await?.run(env).await?;
        }
        "smb" => {
            let ds = smb_ds(&pool, host)?;
            let env = ds.env_with_secret(env);
            ds.detach(&env).await?.run(&env).await?;
        }
        _ => {
            block_ds(protocol, &pool, host)
                .detach(env)
                .await?
                .run(env)
                .await?;
        }
    }
    Ok(())
}

/// The simulator's btrfs image lives on a tmpfs in the guest's memory: give back what the
/// last datastore's deleted volume held (untimed), or memory runs out after a few block
/// datastores (each mkfs.ocfs2 writes its journals into the image).
fn reclaim() {
    for (program, args) in [
        (
            "btrfs",
            &["subvolume", "sync", "/var/lib/ontap-sim/mnt"][..],
        ),
        ("fstrim", &["/var/lib/ontap-sim/mnt"][..]),
    ] {
        if let Err(e) = sh(program, args) {
            println!("reclaim: {program} failed: {e:#}");
        }
    }
}

async fn assert_active(lv: &Libvirt, pool: &str) -> Result<()> {
    let info = lv.pools().info(&PoolName::new(pool)?).await?;
    ensure!(
        info.active,
        "pool {pool} is not active after attach: {info:?}"
    );
    Ok(())
}

#[tokio::test]
#[ignore = "lab bench: needs the lab guest kernel (run by cargo xtask bench attach)"]
async fn bench_attach_every_protocol() -> Result<()> {
    let (env, host) = lab_env()?;
    let lv = libvirt().await?;
    let mut failed = Vec::new();
    for rep in 0..reps() {
        for protocol in PROTOCOLS {
            step(&format!("{protocol} rep {rep}"));
            match once(protocol, rep, &env, &host, &lv).await {
                Ok((attach, detach)) => {
                    println!("{protocol} rep {rep}: attach {attach:.2} s, detach {detach:.2} s");
                    record(&serde_json::json!({
                        "protocol": protocol, "rep": rep, "attach_s": attach, "detach_s": detach,
                    }))?;
                }
                Err(e) => {
                    println!("{protocol} rep {rep} failed: {e:#}");
                    record(&serde_json::json!({
                        "protocol": protocol, "rep": rep, "error": format!("{e:#}"),
                    }))?;
                    failed.push((protocol, rep, format!("{e:#}")));
                    if let Err(e) = clean_up(protocol, &env, &host).await {
                        println!("{protocol} rep {rep}: cleaning up failed too: {e:#}");
                    }
                }
            }
            reclaim();
        }
    }
    ensure!(failed.is_empty(), "failed: {failed:?}");
    Ok(())
}
