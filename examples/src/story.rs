//! The whole story behind `cargo xtask demo`, run on a real Linux host (the lab guest):
//! with the kvmstor facade it attaches an NFS datastore, creates a VM disk in its libvirt
//! pool, snapshots the datastore, clones the disk from the snapshot (ONTAP file clone),
//! attaches an iSCSI datastore with OCFS2 (an o2cb cluster of this one host), then detaches
//! both, deleting everything it created.
//!
//! Each top-level step prints when it starts and ends, with its duration; the facade's
//! own steps (the saga steps inside an attach or a detach) print as they run through a
//! [`kvmstor::saga::Observer`]. The run closes with a [`StoryReport`] table. When a step
//! fails, the facade has already unwound that workflow; the story then detaches the
//! datastores attached before it, so nothing is left behind either way.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use kvmstor_examples::story::{run_story, StoryOptions, StoryTarget};
//!
//! // Root only, on a host with knfsd, LIO, iscsid, multipathd, o2cb and libvirtd.
//! let report = run_story(StoryOptions::new(StoryTarget::embedded_kernel_sim())).await;
//! println!("{report}");
//! assert!(report.succeeded());
//! # Ok(()) }
//! ```

use std::fmt;
use std::future::Future;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use kvmstor::block::BlockDatastore;
use kvmstor::nfs::NfsDatastore;
use kvmstor::ops::{self, DatastoreVolume, Freeze};
use kvmstor::pools::{Libvirt, PoolName, VolumeDef, VolumeFormat, VolumeName};
use kvmstor::saga::{Observer, StepProgress};
use kvmstor::{Env, Host};
use ontap_client::models::{GIB, MIB};
use ontap_client::Client;
use ontap_sim::kernel::{KernelBackend, KernelConfig};
use ontap_sim::{Seed, SimServer};

use crate::format_duration;

/// Where the story's ONTAP side runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum StoryTarget {
    /// An in-process simulator with the kernel backend (root only): volumes are btrfs
    /// subvolumes under `root`, exported by knfsd, LUNs are LIO targets, with the lab seed
    /// (SVM `svm1`, LIFs on 127.0.1.1-6). Started for the run, torn down after it.
    EmbeddedKernelSim {
        /// The backend's root (must be exportable by knfsd: a tmpfs, not an overlay).
        root: PathBuf,
        /// Size of its sparse btrfs image.
        loop_size: u64,
    },
    /// A cluster (or a simulator with its kernel backend) someone else runs.
    Client(Client),
}

impl StoryTarget {
    /// [`StoryTarget::EmbeddedKernelSim`] at `/var/lib/ontap-sim` with a 4 GiB image, the
    /// places `ontap-sim --backend kernel` uses.
    pub fn embedded_kernel_sim() -> Self {
        StoryTarget::EmbeddedKernelSim {
            root: PathBuf::from("/var/lib/ontap-sim"),
            loop_size: 4 * GIB,
        }
    }
}

/// What the story does, and where.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StoryOptions {
    /// The ONTAP side.
    pub target: StoryTarget,
    /// The SVM (NFS and iSCSI enabled, with LIFs this host reaches).
    pub svm: String,
    /// The aggregate for both volumes.
    pub aggregate: String,
    /// This host's name as the o2cb cluster knows it: must be `uname -n`.
    pub host: String,
    /// This host's address: the NFS export rule's client and the o2cb interconnect.
    pub address: String,
    /// Prefix of the pools (`PREFIX-nfs`, `PREFIX-iscsi`) and volumes.
    pub prefix: String,
    /// Size of the NFS volume.
    pub nfs_size: u64,
    /// Size of the iSCSI LUN.
    pub lun_size: u64,
    /// Size of the VM disk (qcow2, thin).
    pub disk_size: u64,
    /// Print progress to stdout.
    pub print: bool,
}

impl StoryOptions {
    /// Defaults: SVM `svm1`, `aggr1`, this host by `uname -n` at `127.0.0.1` (the lab's
    /// LIFs are on loopback), prefix `kvmstor-demo`, a 1 GiB NFS volume, a 2 GiB LUN (the
    /// least `mkfs.ocfs2 -T vmstore` takes), an 8 GiB VM disk, printing on.
    pub fn new(target: StoryTarget) -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "localhost".into());
        StoryOptions {
            target,
            svm: "svm1".into(),
            aggregate: "aggr1".into(),
            host,
            address: "127.0.0.1".into(),
            prefix: "kvmstor-demo".into(),
            nfs_size: GIB,
            lun_size: 2 * GIB,
            disk_size: 8 * GIB,
            print: true,
        }
    }
}

/// How one story step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoryOutcome {
    /// Done; what it did.
    Done(String),
    /// Failed; the error chain, one line.
    Failed(String),
}

/// One story step (or a cleanup after a failure).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoryStep {
    /// Verb-noun name, e.g. `AttachNfsDatastore`.
    pub name: &'static str,
    /// How many facade (saga) steps ran inside it; 0 for a single operation.
    pub substeps: usize,
    /// How long it took.
    pub duration: Duration,
    /// How it ended.
    pub outcome: StoryOutcome,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct StoryReport {
    /// The ONTAP endpoint.
    pub target: String,
    /// The steps, in order; the last one failed when the run failed.
    pub steps: Vec<StoryStep>,
    /// After a failure: the detaches of what was attached before it.
    pub cleanup: Vec<StoryStep>,
    /// Stopping the embedded simulator, last of all.
    pub teardown: Vec<StoryStep>,
    /// Wall time.
    pub total: Duration,
}

impl StoryReport {
    /// True when no step and no cleanup failed.
    pub fn succeeded(&self) -> bool {
        !self
            .steps
            .iter()
            .chain(&self.cleanup)
            .chain(&self.teardown)
            .any(|s| matches!(s.outcome, StoryOutcome::Failed(_)))
    }

    /// Names of the steps, in order.
    pub fn step_names(&self) -> Vec<&'static str> {
        self.steps.iter().map(|s| s.name).collect()
    }
}

impl fmt::Display for StoryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Report ({})", self.target)?;
        writeln!(f, "  {:<28} {:>6} {:>10}  result", "step", "done", "time")?;
        let rows = self.steps.iter().chain(&self.cleanup).chain(&self.teardown);
        for s in rows {
            let (mark, detail) = match &s.outcome {
                StoryOutcome::Done(d) => ("ok", d.as_str()),
                StoryOutcome::Failed(e) => ("FAILED", e.as_str()),
            };
            let sub = if s.substeps == 0 {
                "-".to_owned()
            } else {
                s.substeps.to_string()
            };
            writeln!(
                f,
                "  {:<28} {:>6} {:>10}  {mark}: {detail}",
                s.name,
                sub,
                format_duration(s.duration)
            )?;
        }
        writeln!(f, "  total {}", format_duration(self.total))?;
        write!(
            f,
            "  result {}",
            if self.succeeded() {
                "SUCCESS"
            } else {
                "FAILURE"
            }
        )
    }
}

/// Prints the facade's step events with their durations, and counts them.
#[derive(Debug, Default)]
struct Progress {
    print: bool,
    started: Mutex<Option<Instant>>,
    done: Mutex<usize>,
}

impl Progress {
    fn observer(self: &Arc<Self>) -> Observer {
        let me = self.clone();
        Observer::new(move |e| {
            let now = Instant::now();
            let took = || {
                me.started
                    .lock()
                    .ok()
                    .and_then(|mut s| s.take())
                    .map(|t| format_duration(now - t))
                    .unwrap_or_default()
            };
            let line = match e.progress {
                StepProgress::Started | StepProgress::Undoing => {
                    if let Ok(mut s) = me.started.lock() {
                        *s = Some(now);
                    }
                    let verb = if e.progress == StepProgress::Undoing {
                        "undo "
                    } else {
                        ""
                    };
                    format!("    [{:>2}/{}] {verb}{} ...", e.index + 1, e.count, e.label)
                }
                StepProgress::Done { changed } => {
                    if let Ok(mut d) = me.done.lock() {
                        *d += 1;
                    }
                    let what = if changed { "done" } else { "already so" };
                    format!("    [{:>2}/{}] {what} ({})", e.index + 1, e.count, took())
                }
                StepProgress::Undone => {
                    format!("    [{:>2}/{}] undone ({})", e.index + 1, e.count, took())
                }
                StepProgress::Failed { error } | StepProgress::UndoFailed { error } => {
                    format!(
                        "    [{:>2}/{}] FAILED ({}): {error}",
                        e.index + 1,
                        e.count,
                        took()
                    )
                }
                _ => return,
            };
            if me.print {
                say(&line);
            }
        })
    }

    fn take_done(&self) -> usize {
        self.done
            .lock()
            .map(|mut d| std::mem::take(&mut *d))
            .unwrap_or(0)
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// What needs taking back when a later step fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attached {
    Nfs,
    Block,
}

struct Story {
    opts: StoryOptions,
    progress: Arc<Progress>,
    report: StoryReport,
}

impl Story {
    /// Runs one story step: prints its start and end, records it; `None` when it failed.
    async fn step<T>(
        &mut self,
        name: &'static str,
        work: impl Future<Output = Result<(T, String)>>,
    ) -> Option<T> {
        if self.opts.print {
            say(&format!("==> {name}"));
        }
        let started = Instant::now();
        let result = work.await;
        let duration = started.elapsed();
        let substeps = self.progress.take_done();
        let (value, outcome) = match result {
            Ok((v, detail)) => (Some(v), StoryOutcome::Done(detail)),
            Err(e) => (None, StoryOutcome::Failed(format!("{e:#}"))),
        };
        if self.opts.print {
            match &outcome {
                StoryOutcome::Done(d) => {
                    say(&format!("<== {name}: {d} ({})", format_duration(duration)))
                }
                StoryOutcome::Failed(e) => say(&format!(
                    "<== {name} FAILED after {}: {e}",
                    format_duration(duration)
                )),
            }
        }
        self.report.steps.push(StoryStep {
            name,
            substeps,
            duration,
            outcome,
        });
        value
    }
}

/// The two datastores, as the story asks for them.
fn datastores(o: &StoryOptions) -> (NfsDatastore, BlockDatastore) {
    let nfs = NfsDatastore::new(
        &o.svm,
        &format!("{}-nfs", o.prefix),
        &o.aggregate,
        o.nfs_size,
    )
    .hosts([o.host.clone()])
    .delete_ontap_objects(true);
    let block = BlockDatastore::iscsi_ocfs2(
        &o.svm,
        &format!("{}-iscsi", o.prefix),
        &o.aggregate,
        o.lun_size,
    )
    .hosts([o.host.clone()])
    .device_wait(Duration::from_secs(60))
    .delete_ontap_objects(true);
    (nfs, block)
}

/// Runs the story; never panics, always returns the report (see
/// [`StoryReport::succeeded`]).
pub async fn run_story(opts: StoryOptions) -> StoryReport {
    let started = Instant::now();
    let progress = Arc::new(Progress {
        print: opts.print,
        ..Progress::default()
    });
    let mut story = Story {
        opts: opts.clone(),
        progress,
        report: StoryReport::default(),
    };
    let mut sim: Option<(SimServer, Arc<KernelBackend>)> = None;
    let client = match &opts.target {
        StoryTarget::Client(c) => Some(c.clone()),
        StoryTarget::EmbeddedKernelSim { root, loop_size } => {
            let (root, size) = (root.clone(), *loop_size);
            let started = story
                .step("StartSimulator", async move {
                    let (server, kernel, client) = start_kernel_sim(root.clone(), size).await?;
                    let detail = format!(
                        "ontap-sim at {}, kernel backend in {}, lab seed",
                        server.url(),
                        root.display()
                    );
                    Ok(((server, kernel, client), detail))
                })
                .await;
            started.map(|(server, kernel, client)| {
                sim = Some((server, kernel));
                client
            })
        }
    };
    if let Some(client) = client {
        story.report.target = client.base_url().to_string();
        let mut attached = Vec::new();
        main_line(&mut story, &client, &mut attached).await;
        cleanup(&mut story, &client, &attached).await;
    }
    if let Some((server, kernel)) = sim {
        story
            .step("StopSimulator", async move {
                server.shutdown().await;
                kernel
                    .teardown()
                    .await
                    .context("unmounting the kernel backend")?;
                Ok(((), "stopped; btrfs image unmounted".to_owned()))
            })
            .await;
        // Not a story step: listed last, after any cleanup.
        let stop = story.report.steps.pop();
        story.report.teardown.extend(stop);
    }
    story.report.total = started.elapsed();
    if opts.print {
        say(&story.report.to_string());
    }
    story.report
}

/// The story's steps; stops at the first failure, leaving `attached` for [`cleanup`].
async fn main_line(story: &mut Story, client: &Client, attached: &mut Vec<Attached>) {
    let o = story.opts.clone();
    let env = Env::new(client.clone()).host(Host::local(o.host.clone()).address(o.address.clone()));
    let (nfs, block) = datastores(&o);
    let observer = story.progress.observer();
    let nfs_vol = DatastoreVolume::new(o.svm.clone(), nfs.volume());
    let nfs_pool = format!("{}-nfs", o.prefix);
    let block_pool = format!("{}-iscsi", o.prefix);
    let snapshot = "kvmstor_demo_snap";

    let ok = story
        .step("AttachNfsDatastore", async {
            let saga = nfs.attach(&env).await?.observe(observer.clone());
            let report = saga.run(&env).await?;
            Ok(((), format!("pool {nfs_pool}, {}", report.outcome)))
        })
        .await;
    if ok.is_none() {
        return;
    }
    attached.push(Attached::Nfs);

    let ok = story
        .step(
            "CreateVmDisk",
            create_disk(&nfs_pool, "vm1.qcow2", o.disk_size),
        )
        .await;
    if ok.is_none() {
        return;
    }

    let ok = story
        .step("SnapshotDatastore", async {
            let s = ops::snapshot(&env, &nfs_vol, snapshot, &Freeze::None).await?;
            Ok(((), format!("{}@{}", nfs_vol.path(), s.name)))
        })
        .await;
    if ok.is_none() {
        return;
    }

    let ok = story
        .step("CloneDiskFromSnapshot", async {
            ops::restore_file_as(&env, &nfs_vol, snapshot, "vm1.qcow2", "vm2.qcow2").await?;
            let lv = Libvirt::connect("qemu:///system").await?;
            let pool = PoolName::new(nfs_pool.as_str())?;
            lv.pools().refresh(&pool).await?;
            let clone = lv
                .volumes(&pool)
                .get(&VolumeName::new("vm2.qcow2")?)
                .await?
                .context("vm2.qcow2 is not in the pool after the file clone")?;
            if clone.capacity != o.disk_size {
                bail!(
                    "vm2.qcow2 has capacity {} in libvirt, expected {}",
                    clone.capacity,
                    o.disk_size
                );
            }
            Ok((
                (),
                format!(
                    "file clone of .snapshot/{snapshot}/vm1.qcow2 as {} ({} virtual)",
                    clone.path,
                    crate::format_size(clone.capacity)
                ),
            ))
        })
        .await;
    if ok.is_none() {
        return;
    }

    let ok = story
        .step("AttachIscsiOcfs2Datastore", async {
            let saga = block.attach(&env).await?.observe(observer.clone());
            let report = saga.run(&env).await?;
            Ok(((), format!("pool {block_pool}, {}", report.outcome)))
        })
        .await;
    if ok.is_none() {
        return;
    }
    attached.push(Attached::Block);

    let ok = story
        .step(
            "CreateVmDiskOnOcfs2",
            create_disk(&block_pool, "vm3.qcow2", 256 * MIB),
        )
        .await;
    if ok.is_none() {
        return;
    }

    let ok = story
        .step("DetachIscsiDatastore", async {
            let saga = block.detach(&env).await?.observe(observer.clone());
            let report = saga.run(&env).await?;
            Ok((
                (),
                format!("LUN, igroup and volume deleted, {}", report.outcome),
            ))
        })
        .await;
    if ok.is_none() {
        return;
    }
    attached.retain(|a| *a != Attached::Block);

    let ok = story
        .step("DetachNfsDatastore", async {
            let saga = nfs.detach(&env).await?.observe(observer.clone());
            let report = saga.run(&env).await?;
            Ok((
                (),
                format!(
                    "volume (disks, snapshot) and export policy deleted, {}",
                    report.outcome
                ),
            ))
        })
        .await;
    if ok.is_some() {
        attached.retain(|a| *a != Attached::Nfs);
    }
}

/// After a failure: detaches what is still attached, last first.
async fn cleanup(story: &mut Story, client: &Client, attached: &[Attached]) {
    let o = story.opts.clone();
    let env = Env::new(client.clone()).host(Host::local(o.host.clone()).address(o.address.clone()));
    let (nfs, block) = datastores(&o);
    for a in attached.iter().rev() {
        let observer = story.progress.observer();
        let (name, result) = match a {
            Attached::Block => {
                if o.print {
                    say("==> cleanup: DetachIscsiDatastore");
                }
                let t = Instant::now();
                let r = async {
                    block
                        .detach(&env)
                        .await?
                        .observe(observer)
                        .run(&env)
                        .await?;
                    anyhow::Ok(())
                }
                .await;
                ("DetachIscsiDatastore", (r, t.elapsed()))
            }
            Attached::Nfs => {
                if o.print {
                    say("==> cleanup: DetachNfsDatastore");
                }
                let t = Instant::now();
                let r = async {
                    nfs.detach(&env).await?.observe(observer).run(&env).await?;
                    anyhow::Ok(())
                }
                .await;
                ("DetachNfsDatastore", (r, t.elapsed()))
            }
        };
        let (r, duration) = result;
        story.report.cleanup.push(StoryStep {
            name,
            substeps: story.progress.take_done(),
            duration,
            outcome: match r {
                Ok(()) => StoryOutcome::Done("cleaned up after the failure".into()),
                Err(e) => StoryOutcome::Failed(format!("{e:#}")),
            },
        });
    }
}

/// Creates a thin qcow2 VM disk in a libvirt pool.
async fn create_disk(pool: &str, name: &str, size: u64) -> Result<((), String)> {
    let lv = Libvirt::connect("qemu:///system").await?;
    let pool = PoolName::new(pool)?;
    let def = VolumeDef::new(VolumeName::new(name)?, size, VolumeFormat::Qcow2);
    lv.volumes(&pool).create(&def).await?;
    let info = lv
        .volumes(&pool)
        .info(&VolumeName::new(name)?)
        .await
        .with_context(|| format!("{name} after creating it"))?;
    Ok((
        (),
        format!(
            "{} ({} qcow2, {} allocated)",
            info.path,
            crate::format_size(info.capacity),
            crate::format_size(info.allocation)
        ),
    ))
}

/// Starts the in-process simulator with the kernel backend and the lab seed on a free
/// loopback port, and a client trusting its generated CA.
async fn start_kernel_sim(
    root: PathBuf,
    loop_size: u64,
) -> Result<(SimServer, Arc<KernelBackend>, Client)> {
    let kernel = Arc::new(KernelBackend::system(
        KernelConfig::new(root).loop_size(loop_size),
    ));
    let server = SimServer::builder()
        .listen("127.0.0.1:0".parse()?)
        .seed(Seed::lab())
        .backend(kernel.clone())
        .start()
        .await
        .context("starting the simulator with its kernel backend (root only)")?;
    let client = Client::builder(server.url())
        .add_ca_pem(
            server
                .ca_pem()
                .context("the simulator serves HTTPS")?
                .as_bytes()
                .to_vec(),
        )
        .trust_only_added_cas(true)
        .basic_auth(server.username(), server.password())
        .application("kvmstor-demo", env!("CARGO_PKG_VERSION"))
        .build()
        .context("building the ONTAP client")?;
    Ok((server, kernel, client))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: &'static str, substeps: usize, ms: u64, outcome: StoryOutcome) -> StoryStep {
        StoryStep {
            name,
            substeps,
            duration: Duration::from_millis(ms),
            outcome,
        }
    }

    #[test]
    fn the_report_is_a_table_with_a_verdict() {
        let mut r = StoryReport {
            target: "https://127.0.0.1:8443".into(),
            steps: vec![
                step(
                    "AttachNfsDatastore",
                    6,
                    4210,
                    StoryOutcome::Done("pool p".into()),
                ),
                step("CreateVmDisk", 0, 80, StoryOutcome::Done("disk".into())),
            ],
            cleanup: Vec::new(),
            teardown: Vec::new(),
            total: Duration::from_millis(4300),
        };
        assert!(r.succeeded());
        assert_eq!(r.step_names(), ["AttachNfsDatastore", "CreateVmDisk"]);
        assert_eq!(
            r.to_string(),
            "Report (https://127.0.0.1:8443)\n\
             \x20 step                           done       time  result\n\
             \x20 AttachNfsDatastore                6     4.21 s  ok: pool p\n\
             \x20 CreateVmDisk                      -      80 ms  ok: disk\n\
             \x20 total 4.30 s\n\
             \x20 result SUCCESS"
        );
        r.cleanup.push(step(
            "DetachNfsDatastore",
            3,
            900,
            StoryOutcome::Failed("umount: busy".into()),
        ));
        assert!(!r.succeeded());
        assert!(r
            .to_string()
            .contains("  DetachNfsDatastore                3     900 ms  FAILED: umount: busy\n"));
        assert!(r.to_string().ends_with("result FAILURE"));
    }

    #[test]
    fn the_datastores_are_named_after_the_prefix() {
        let mut o = StoryOptions::new(StoryTarget::embedded_kernel_sim());
        o.host = "kvm1".into();
        let (nfs, block) = datastores(&o);
        assert_eq!(nfs.volume(), "kvmstor_demo_nfs");
        assert_eq!(nfs.export_policy(), "kvmstor_kvmstor_demo_nfs");
        assert_eq!(block.volume(), "kvmstor_demo_iscsi");
        assert_eq!(block.initiator_group(), "kvmstor_kvmstor_demo_iscsi");
        assert_eq!(block.disk_path(), "/vol/kvmstor_demo_iscsi/lun0");
    }
}
