//! Shared helpers for kvmstor's runnable examples.
//!
//! [`run_demo`] is the ONTAP-level demo behind `cargo xtask demo`
//! (`examples/src/bin/demo.rs`): against an in-process simulator or a real cluster it
//! shows the cluster, picks an SVM and an aggregate, provisions and exports a volume,
//! snapshots and FlexClones it, clones a file, creates a LUN and an igroup and maps them,
//! then removes everything it created in reverse order, also when a step fails.
//!
//! The run is a linear saga: before a step that creates something runs, its undo is
//! recorded (names are chosen up front, so an undo can find what a half-finished step
//! left behind), and undos treat "already gone" as success.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use kvmstor_examples::{run_demo, DemoOptions, Target};
//!
//! let report = run_demo(DemoOptions::new(Target::EmbeddedSimulator)).await?;
//! assert!(report.succeeded());
//! println!("{} steps, LUN {:?}", report.steps.len(), report.lun);
//! # Ok(()) }
//! ```

pub mod cli;
pub mod story;

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use ontap_client::models::{
    EfficiencyMode, ExportPolicyCreate, ExportProtocol, ExportRuleCreate, FileCloneCreate,
    FlexCloneCreate, GuaranteeType, IgroupCreate, IgroupOsType, IgroupProtocol, LunCreate,
    LunMapCreate, LunOsType, NamedRef, NfsSecurityFlavor, SnapshotCreate, VolumeCreate,
    VolumePatch, GIB, KIB, MIB, TIB,
};
use ontap_client::{Client, Query};
use ontap_sim::SimServer;

/// Where the demo runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Target {
    /// An in-process simulator over HTTPS (its generated CA trusted), started for the run
    /// and stopped after it.
    EmbeddedSimulator,
    /// An existing client: a real ONTAP cluster, or a simulator the caller runs.
    Client(Client),
}

/// What the demo does, and where.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DemoOptions {
    /// Where to run.
    pub target: Target,
    /// SVM to use; default: the first running SVM with NFS and iSCSI enabled.
    pub svm: Option<String>,
    /// Aggregate for the volume; default: the SVM's aggregate with the most free space.
    pub aggregate: Option<String>,
    /// Prefix of every object name (`PREFIX_vol`, `PREFIX_clone`, ...).
    pub prefix: String,
    /// Size of the volume in bytes (thin).
    pub volume_size: u64,
    /// Size of the LUN in bytes.
    pub lun_size: u64,
    /// The host's iSCSI initiator name, put in the igroup.
    pub host_iqn: String,
    /// The host's address, put in the export rule.
    pub host_address: String,
    /// A file (path inside the volume) to file-clone in the FlexClone; `None` skips the
    /// step. The in-memory simulator accepts any path; on a real cluster it must exist.
    pub clone_file: Option<String>,
    /// Print each step to stdout as it finishes, and the final report.
    pub print: bool,
}

impl DemoOptions {
    /// Defaults: SVM and aggregate picked automatically, prefix `kvmstor_demo`, a 1 GiB
    /// volume, a 512 MiB LUN, host `iqn.1994-05.com.redhat:kvmstor-demo` at `192.0.2.100`,
    /// file clone of `disk0.img`, printing on.
    pub fn new(target: Target) -> Self {
        Self {
            target,
            svm: None,
            aggregate: None,
            prefix: "kvmstor_demo".into(),
            volume_size: GIB,
            lun_size: 512 * MIB,
            host_iqn: "iqn.1994-05.com.redhat:kvmstor-demo".into(),
            host_address: "192.0.2.100".into(),
            clone_file: Some("disk0.img".into()),
            print: true,
        }
    }
}

/// How a step or an undo ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StepOutcome {
    /// Done; what it did.
    Done(String),
    /// Not run; why.
    Skipped(String),
    /// Failed; the error (its whole chain, one line).
    Failed(String),
}

impl StepOutcome {
    /// True for [`StepOutcome::Failed`].
    pub fn is_failed(&self) -> bool {
        matches!(self, Self::Failed(_))
    }
}

/// One step (or undo) of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StepRecord {
    /// Verb-noun name, e.g. `CreateVolume`.
    pub name: &'static str,
    /// How long it took.
    pub duration: Duration,
    /// How it ended.
    pub outcome: StepOutcome,
}

/// The mapped LUN as a host will see it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LunSummary {
    /// LUN path, `/vol/VOLUME/NAME`.
    pub path: String,
    /// The LUN id in the igroup.
    pub id: u32,
    /// ONTAP's serial number.
    pub serial: String,
    /// The WWID Linux shows (`multipath -ll`, `/dev/disk/by-id/wwn-0x…` without the `3`):
    /// `3600a0980` + the hex of the serial.
    pub wwid: String,
}

/// What a run did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Report {
    /// Base URL of the cluster or simulator.
    pub target: String,
    /// The forward steps, in order; the last one failed when the run failed.
    pub steps: Vec<StepRecord>,
    /// The undos, in the order they ran (reverse of creation).
    pub cleanup: Vec<StepRecord>,
    /// The mapped LUN, when mapping succeeded.
    pub lun: Option<LunSummary>,
    /// Wall time of the whole run.
    pub total: Duration,
}

impl Report {
    /// True when no step and no undo failed.
    pub fn succeeded(&self) -> bool {
        !self
            .steps
            .iter()
            .chain(&self.cleanup)
            .any(|s| s.outcome.is_failed())
    }

    /// Names of the forward steps.
    pub fn step_names(&self) -> Vec<&'static str> {
        self.steps.iter().map(|s| s.name).collect()
    }

    /// Names of the undos, in the order they ran.
    pub fn cleanup_names(&self) -> Vec<&'static str> {
        self.cleanup.iter().map(|s| s.name).collect()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = |v: &[StepRecord], pred: fn(&StepOutcome) -> bool| {
            v.iter().filter(|s| pred(&s.outcome)).count()
        };
        let done = |o: &StepOutcome| matches!(o, StepOutcome::Done(_));
        let skipped = |o: &StepOutcome| matches!(o, StepOutcome::Skipped(_));
        writeln!(f, "Report")?;
        writeln!(f, "  target   {}", self.target)?;
        writeln!(
            f,
            "  steps    {} done, {} skipped, {} failed (of {})",
            count(&self.steps, done),
            count(&self.steps, skipped),
            count(&self.steps, StepOutcome::is_failed),
            self.steps.len()
        )?;
        writeln!(
            f,
            "  cleanup  {} done, {} skipped, {} failed (of {})",
            count(&self.cleanup, done),
            count(&self.cleanup, skipped),
            count(&self.cleanup, StepOutcome::is_failed),
            self.cleanup.len()
        )?;
        if let Some(l) = &self.lun {
            writeln!(f, "  LUN      {} id {}, WWID {}", l.path, l.id, l.wwid)?;
        }
        writeln!(f, "  time     {}", format_duration(self.total))?;
        write!(
            f,
            "  result   {}",
            if self.succeeded() {
                "SUCCESS"
            } else {
                "FAILURE"
            }
        )
    }
}

/// `12 ms`, `1.24 s`.
pub fn format_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

/// `512 MiB`, `1.0 TiB`.
pub fn format_size(bytes: u64) -> String {
    let units = [(TIB, "TiB"), (GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")];
    for (unit, name) in units {
        if bytes >= unit {
            return if bytes % unit == 0 {
                format!("{} {name}", bytes / unit)
            } else {
                format!("{:.1} {name}", bytes as f64 / unit as f64)
            };
        }
    }
    format!("{bytes} B")
}

/// The NAA WWID a Linux host shows for a NetApp LUN with this serial number.
pub fn linux_wwid(serial: &str) -> String {
    let hex: String = serial.bytes().map(|b| format!("{b:02x}")).collect();
    format!("3600a0980{hex}")
}

/// Object names, chosen before anything is created.
#[derive(Debug, Clone)]
struct Names {
    volume: String,
    clone: String,
    policy: String,
    snapshot: String,
    lun: String,
    igroup: String,
}

impl Names {
    fn new(prefix: &str) -> Self {
        let volume = format!("{prefix}_vol");
        Self {
            lun: format!("/vol/{volume}/lun0"),
            clone: format!("{prefix}_clone"),
            policy: format!("{prefix}_hosts"),
            snapshot: format!("{prefix}_snap"),
            igroup: format!("{prefix}_hosts"),
            volume,
        }
    }
}

/// How to take back one forward step. Each is idempotent: what is already gone is fine.
#[derive(Debug, Clone)]
enum Undo {
    DeleteVolume { name: String },
    DeleteExportPolicy { name: String },
    RemoveExportRule { policy: String, client: String },
    UnexportVolume { volume: String },
    DeleteSnapshot { volume: String, name: String },
    DeleteLun { path: String },
    DeleteIgroup { name: String },
    UnmapLun { lun: String, igroup: String },
}

impl Undo {
    fn name(&self) -> &'static str {
        match self {
            Self::DeleteVolume { .. } => "DeleteVolume",
            Self::DeleteExportPolicy { .. } => "DeleteExportPolicy",
            Self::RemoveExportRule { .. } => "RemoveExportRule",
            Self::UnexportVolume { .. } => "UnexportVolume",
            Self::DeleteSnapshot { .. } => "DeleteSnapshot",
            Self::DeleteLun { .. } => "DeleteLun",
            Self::DeleteIgroup { .. } => "DeleteIgroup",
            Self::UnmapLun { .. } => "UnmapLun",
        }
    }

    async fn run(&self, c: &Client, svm: &str) -> Result<String> {
        const GONE: &str = "already gone";
        let gone_ok = |r: ontap_client::Result<_>, what: String| match r {
            Ok(_) => Ok(what),
            Err(e) if e.is_not_found() => Ok(GONE.to_owned()),
            Err(e) => Err(anyhow::Error::new(e)),
        };
        match self {
            Self::DeleteVolume { name } => {
                let Some(uuid) = c.volumes().by_name(svm, name).await?.and_then(|v| v.uuid) else {
                    return Ok(GONE.into());
                };
                gone_ok(c.volumes().delete(&uuid).await, name.clone())
            }
            Self::DeleteExportPolicy { name } => {
                let Some(id) = c
                    .export_policies()
                    .by_name(svm, name)
                    .await?
                    .and_then(|p| p.id)
                else {
                    return Ok(GONE.into());
                };
                gone_ok(
                    c.export_policies().delete(&id.to_string()).await,
                    name.clone(),
                )
            }
            Self::RemoveExportRule { policy, client } => {
                let Some(id) = c
                    .export_policies()
                    .by_name(svm, policy)
                    .await?
                    .and_then(|p| p.id)
                else {
                    return Ok(GONE.into());
                };
                let rules = c
                    .export_rules(id)
                    .list_all(&Query::new().fields(["clients"]))
                    .await?;
                let index = rules.iter().find_map(|r| {
                    let hit = r
                        .clients
                        .iter()
                        .flatten()
                        .any(|m| m.match_.as_deref() == Some(client.as_str()));
                    if hit {
                        r.index
                    } else {
                        None
                    }
                });
                let Some(index) = index else {
                    return Ok(GONE.into());
                };
                gone_ok(
                    c.export_rules(id).delete(&index.to_string()).await,
                    format!("rule {index} ({client}) of {policy}"),
                )
            }
            Self::UnexportVolume { volume } => {
                let Some(uuid) = c.volumes().by_name(svm, volume).await?.and_then(|v| v.uuid)
                else {
                    return Ok(GONE.into());
                };
                gone_ok(
                    c.volumes()
                        .patch(&uuid, &VolumePatch::new().export_policy("default"))
                        .await,
                    format!("{volume} back on export policy default"),
                )
            }
            Self::DeleteSnapshot { volume, name } => {
                let Some(vol) = c.volumes().by_name(svm, volume).await?.and_then(|v| v.uuid) else {
                    return Ok(GONE.into());
                };
                let snaps = c.snapshots(&vol);
                let Some(uuid) = snaps.by_name(name).await?.and_then(|s| s.uuid) else {
                    return Ok(GONE.into());
                };
                gone_ok(snaps.delete(&uuid).await, format!("{volume}@{name}"))
            }
            Self::DeleteLun { path } => {
                let Some(uuid) = c.luns().by_name(svm, path).await?.and_then(|l| l.uuid) else {
                    return Ok(GONE.into());
                };
                gone_ok(c.luns().delete(&uuid).await, path.clone())
            }
            Self::DeleteIgroup { name } => {
                let Some(uuid) = c.igroups().by_name(svm, name).await?.and_then(|g| g.uuid) else {
                    return Ok(GONE.into());
                };
                gone_ok(c.igroups().delete(&uuid).await, name.clone())
            }
            Self::UnmapLun { lun, igroup } => {
                let l = c.luns().by_name(svm, lun).await?.and_then(|l| l.uuid);
                let g = c.igroups().by_name(svm, igroup).await?.and_then(|g| g.uuid);
                let (Some(l), Some(g)) = (l, g) else {
                    return Ok(GONE.into());
                };
                gone_ok(
                    c.lun_maps().unmap(&l, &g).await,
                    format!("{lun} from {igroup}"),
                )
            }
        }
    }
}

/// The run's log: steps, undos to run, printing.
struct Run {
    print: bool,
    steps: Vec<StepRecord>,
    undo: Vec<Undo>,
}

impl Run {
    /// Records that `undo` takes back the step about to run.
    fn will_undo(&mut self, undo: Undo) {
        self.undo.push(undo);
    }

    /// Runs one step, records and prints it; `None` when it failed.
    async fn step<T>(
        &mut self,
        name: &'static str,
        work: impl Future<Output = Result<(T, String)>>,
    ) -> Option<T> {
        let started = Instant::now();
        let result = work.await;
        let duration = started.elapsed();
        let (value, outcome) = match result {
            Ok((v, detail)) => (Some(v), StepOutcome::Done(detail)),
            Err(e) => (None, StepOutcome::Failed(format!("{e:#}"))),
        };
        let record = StepRecord {
            name,
            duration,
            outcome,
        };
        if self.print {
            print_row(self.steps.len() + 1, &record);
        }
        self.steps.push(record);
        value
    }

    fn skip(&mut self, name: &'static str, why: &str) {
        let record = StepRecord {
            name,
            duration: Duration::ZERO,
            outcome: StepOutcome::Skipped(why.to_owned()),
        };
        if self.print {
            print_row(self.steps.len() + 1, &record);
        }
        self.steps.push(record);
    }
}

const NAME_WIDTH: usize = 19;

fn print_header(title: &str) {
    println!();
    println!("{title}");
    println!(
        "{:>3}  {:<NAME_WIDTH$} {:>9}  {:<7} detail",
        "#", "step", "time", "result"
    );
    println!("{}", "-".repeat(78));
}

fn print_row(n: usize, r: &StepRecord) {
    let (word, detail) = match &r.outcome {
        StepOutcome::Done(d) => ("ok", d.as_str()),
        StepOutcome::Skipped(d) => ("skipped", d.as_str()),
        StepOutcome::Failed(d) => ("FAILED", d.as_str()),
    };
    println!(
        "{n:>3}  {:<NAME_WIDTH$} {:>9}  {word:<7} {detail}",
        r.name,
        format_duration(r.duration)
    );
}

/// What the forward steps found or made that later steps and the report need.
#[derive(Default)]
struct Found {
    svm: Option<String>,
    lun: Option<LunSummary>,
}

/// Runs the demo and returns its report. `Err` only when the run cannot start (the
/// embedded simulator does not come up); a failing step or undo is in the report
/// ([`Report::succeeded`] is then false) after everything created was cleaned up.
pub async fn run_demo(opts: DemoOptions) -> Result<Report> {
    let started = Instant::now();
    let (client, sim) = match &opts.target {
        Target::Client(c) => (c.clone(), None),
        Target::EmbeddedSimulator => {
            let sim = SimServer::builder()
                .job_duration(Duration::ZERO, Duration::from_millis(50))
                .start()
                .await
                .context("starting the embedded ONTAP simulator")?;
            let pem = sim
                .ca_pem()
                .ok_or_else(|| anyhow!("the embedded simulator serves no certificate"))?;
            let client = Client::builder(sim.url())
                .add_ca_pem(pem.as_bytes().to_vec())
                .trust_only_added_cas(true)
                .basic_auth(sim.username(), sim.password())
                .application("kvmstor-demo", env!("CARGO_PKG_VERSION"))
                .build()
                .context("building the ONTAP client")?;
            (client, Some(sim))
        }
    };
    let target = match sim {
        Some(_) => format!("{} (embedded simulator)", client.base_url()),
        None => client.base_url().to_owned(),
    };
    if opts.print {
        println!("kvmstor ONTAP demo");
        println!("target: {target}");
        print_header("Steps");
    }
    let names = Names::new(&opts.prefix);
    let mut run = Run {
        print: opts.print,
        steps: Vec::new(),
        undo: Vec::new(),
    };
    let mut found = Found::default();
    forward(&client, &opts, &names, &mut run, &mut found).await;

    if opts.print {
        print_header("Cleanup (reverse order)");
    }
    let mut cleanup = Vec::new();
    let svm = found.svm.clone().unwrap_or_default();
    let mut failed = false;
    while let Some(undo) = run.undo.pop() {
        let record = if failed {
            // As in a saga: after a failed undo, stop and leave the rest for a person.
            StepRecord {
                name: undo.name(),
                duration: Duration::ZERO,
                outcome: StepOutcome::Skipped("not attempted after a failed cleanup step".into()),
            }
        } else {
            let t = Instant::now();
            let outcome = match undo.run(&client, &svm).await {
                Ok(detail) => StepOutcome::Done(detail),
                Err(e) => {
                    failed = true;
                    StepOutcome::Failed(format!("{e:#}"))
                }
            };
            StepRecord {
                name: undo.name(),
                duration: t.elapsed(),
                outcome,
            }
        };
        if opts.print {
            print_row(cleanup.len() + 1, &record);
        }
        cleanup.push(record);
    }
    if let Some(sim) = sim {
        sim.shutdown().await;
    }
    let report = Report {
        target,
        steps: run.steps,
        cleanup,
        lun: found.lun,
        total: started.elapsed(),
    };
    if opts.print {
        println!();
        println!("{report}");
    }
    Ok(report)
}

/// The forward steps; returns at the first failure.
async fn forward(c: &Client, opts: &DemoOptions, n: &Names, run: &mut Run, found: &mut Found) {
    let Some(_) = run
        .step("ShowCluster", async {
            let cluster = c.cluster().get().await?;
            let version = cluster.version.clone().unwrap_or_default();
            let name = cluster.name.unwrap_or_else(|| "(unnamed)".into());
            Ok(((), format!("{name}, ONTAP {version}")))
        })
        .await
    else {
        return;
    };

    let Some(svm) = run.step("PickSvm", pick_svm(c, opts.svm.as_deref())).await else {
        return;
    };
    found.svm = Some(svm.clone());

    let Some(aggr) = run
        .step(
            "PickAggregate",
            pick_aggregate(c, &svm, opts.aggregate.as_deref()),
        )
        .await
    else {
        return;
    };

    run.will_undo(Undo::DeleteVolume {
        name: n.volume.clone(),
    });
    let Some(vol_uuid) = run
        .step("CreateVolume", async {
            let body = VolumeCreate::flexvol(n.volume.as_str(), svm.as_str(), aggr.as_str())
                .size(opts.volume_size)
                .guarantee(GuaranteeType::None)
                .junction_path(format!("/{}", n.volume))
                .efficiency(EfficiencyMode::Inline, EfficiencyMode::Inline)
                .snapshot_policy("default")
                .comment("kvmstor demo");
            let created = c.volumes().create(&body).await?;
            let uuid = created
                .record
                .and_then(|v| v.uuid)
                .ok_or_else(|| anyhow!("ONTAP did not return the new volume"))?;
            Ok((
                uuid,
                format!(
                    "{} on {aggr}: {} thin, /{}, efficiency inline, snapshots default",
                    n.volume,
                    format_size(opts.volume_size),
                    n.volume
                ),
            ))
        })
        .await
    else {
        return;
    };

    run.will_undo(Undo::DeleteExportPolicy {
        name: n.policy.clone(),
    });
    let Some(policy_id) = run
        .step("CreateExportPolicy", async {
            let created = c
                .export_policies()
                .create(&ExportPolicyCreate::new(n.policy.as_str(), svm.as_str()))
                .await?;
            let id = created
                .record
                .and_then(|p| p.id)
                .ok_or_else(|| anyhow!("ONTAP did not return the policy id"))?;
            Ok((id, format!("{} (id {id})", n.policy)))
        })
        .await
    else {
        return;
    };

    run.will_undo(Undo::RemoveExportRule {
        policy: n.policy.clone(),
        client: opts.host_address.clone(),
    });
    let Some(_) = run
        .step("AddExportRule", async {
            let rule = ExportRuleCreate::new()
                .client(opts.host_address.as_str())
                .ro([NfsSecurityFlavor::Sys])
                .rw([NfsSecurityFlavor::Sys])
                .superuser([NfsSecurityFlavor::Sys])
                .protocols([ExportProtocol::Nfs3, ExportProtocol::Nfs4]);
            let created = c.export_policies().add_rule(policy_id, &rule).await?;
            let index = created.record.and_then(|r| r.index).unwrap_or_default();
            Ok((
                (),
                format!("rule {index}: {} rw, sys, NFSv3/v4", opts.host_address),
            ))
        })
        .await
    else {
        return;
    };

    run.will_undo(Undo::UnexportVolume {
        volume: n.volume.clone(),
    });
    let Some(_) = run
        .step("ExportVolume", async {
            c.volumes()
                .patch(
                    &vol_uuid,
                    &VolumePatch::new().export_policy(n.policy.as_str()),
                )
                .await?;
            Ok(((), format!("{} exported with {}", n.volume, n.policy)))
        })
        .await
    else {
        return;
    };

    run.will_undo(Undo::DeleteSnapshot {
        volume: n.volume.clone(),
        name: n.snapshot.clone(),
    });
    let Some(_) = run
        .step("CreateSnapshot", async {
            c.snapshots(&vol_uuid)
                .create(&SnapshotCreate::new(n.snapshot.as_str()).comment("kvmstor demo"))
                .await?;
            Ok(((), format!("{}@{}", n.volume, n.snapshot)))
        })
        .await
    else {
        return;
    };

    run.will_undo(Undo::DeleteVolume {
        name: n.clone.clone(),
    });
    let Some(clone_uuid) = run
        .step("CloneVolume", async {
            let body = FlexCloneCreate::new(n.clone.as_str(), svm.as_str(), n.volume.as_str())
                .parent_snapshot(n.snapshot.as_str())
                .junction_path(format!("/{}", n.clone));
            let created = c.volumes().create_flexclone(&body).await?;
            let uuid = created
                .record
                .and_then(|v| v.uuid)
                .ok_or_else(|| anyhow!("ONTAP did not return the FlexClone"))?;
            Ok((
                uuid,
                format!("FlexClone {} of {}@{}", n.clone, n.volume, n.snapshot),
            ))
        })
        .await
    else {
        return;
    };

    match &opts.clone_file {
        None => run.skip(
            "CloneFile",
            "no --clone-file given (on a real cluster the source file must exist)",
        ),
        Some(source) => {
            let Some(_) = run
                .step("CloneFile", async {
                    let destination = copy_name(source);
                    let body =
                        FileCloneCreate::new(NamedRef::uuid(&clone_uuid), source, &destination)
                            .svm(svm.as_str());
                    c.file_clone(&body).await?;
                    Ok((
                        (),
                        format!("{source} -> {destination} in {} (goes with it)", n.clone),
                    ))
                })
                .await
            else {
                return;
            };
        }
    }

    run.will_undo(Undo::DeleteLun {
        path: n.lun.clone(),
    });
    let Some(_) = run
        .step("CreateLun", async {
            let body = LunCreate::new(
                svm.as_str(),
                n.lun.as_str(),
                LunOsType::Linux,
                opts.lun_size,
            )
            .comment("kvmstor demo");
            c.luns().create(&body).await?;
            Ok((
                (),
                format!("{} {} linux", n.lun, format_size(opts.lun_size)),
            ))
        })
        .await
    else {
        return;
    };

    run.will_undo(Undo::DeleteIgroup {
        name: n.igroup.clone(),
    });
    let Some(_) = run
        .step("CreateIgroup", async {
            let body = IgroupCreate::new(
                n.igroup.as_str(),
                svm.as_str(),
                IgroupProtocol::Iscsi,
                IgroupOsType::Linux,
            )
            .initiator(opts.host_iqn.as_str());
            c.igroups().create(&body).await?;
            Ok(((), format!("{} iscsi linux: {}", n.igroup, opts.host_iqn)))
        })
        .await
    else {
        return;
    };

    run.will_undo(Undo::UnmapLun {
        lun: n.lun.clone(),
        igroup: n.igroup.clone(),
    });
    let Some(lun) = run
        .step("MapLun", async {
            let map = c
                .lun_maps()
                .create(&LunMapCreate::new(
                    svm.as_str(),
                    n.lun.as_str(),
                    n.igroup.as_str(),
                ))
                .await?;
            let id = map
                .record
                .and_then(|m| m.logical_unit_number)
                .ok_or_else(|| anyhow!("ONTAP did not return the LUN id"))?;
            let lun = c
                .luns()
                .find(
                    &Query::new()
                        .filter("svm.name", svm.as_str())
                        .filter("name", n.lun.as_str())
                        .fields(["serial_number"]),
                )
                .await?
                .ok_or_else(|| anyhow!("LUN {} vanished", n.lun))?;
            let serial = lun
                .serial_number
                .ok_or_else(|| anyhow!("LUN {} has no serial number", n.lun))?;
            let summary = LunSummary {
                path: n.lun.clone(),
                id,
                wwid: linux_wwid(&serial),
                serial,
            };
            let detail = format!(
                "{} -> {}: LUN id {}, serial {}, WWID {}",
                n.lun, n.igroup, summary.id, summary.serial, summary.wwid
            );
            Ok((summary, detail))
        })
        .await
    else {
        return;
    };
    found.lun = Some(lun);
}

/// `dir/disk0.img` → `dir/disk0-copy.img`.
fn copy_name(source: &str) -> String {
    let (dir, file) = match source.rsplit_once('/') {
        Some((d, f)) => (format!("{d}/"), f),
        None => (String::new(), source),
    };
    match file.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{dir}{stem}-copy.{ext}"),
        _ => format!("{dir}{file}-copy"),
    }
}

async fn pick_svm(c: &Client, wanted: Option<&str>) -> Result<(String, String)> {
    if let Some(name) = wanted {
        let svm = c
            .svms()
            .by_name(name)
            .await?
            .ok_or_else(|| anyhow!("SVM {name:?} does not exist"))?;
        let name = svm.name.unwrap_or_else(|| name.to_owned());
        return Ok((name.clone(), format!("{name} (as asked)")));
    }
    let svms = c
        .svms()
        .list_all(&Query::new().fields(["name", "state", "nfs.enabled", "iscsi.enabled"]))
        .await?;
    let enabled = |p: &Option<ontap_client::models::SvmProtocol>| {
        p.as_ref().and_then(|p| p.enabled).unwrap_or(false)
    };
    let svm = svms
        .iter()
        .find(|s| {
            s.state == Some(ontap_client::models::SvmState::Running)
                && enabled(&s.nfs)
                && enabled(&s.iscsi)
        })
        .and_then(|s| s.name.clone())
        .ok_or_else(|| {
            anyhow!(
                "none of the {} SVMs runs with NFS and iSCSI enabled; choose one with --svm",
                svms.len()
            )
        })?;
    Ok((
        svm.clone(),
        format!("{svm} (first running SVM with NFS and iSCSI)"),
    ))
}

async fn pick_aggregate(c: &Client, svm: &str, wanted: Option<&str>) -> Result<(String, String)> {
    let aggrs = c
        .aggregates()
        .list_all(&Query::new().fields(["name", "space.block_storage.available"]))
        .await?;
    let free = |a: &ontap_client::models::Aggregate| {
        a.space
            .as_ref()
            .and_then(|s| s.block_storage.as_ref())
            .and_then(|b| b.available)
            .unwrap_or(0)
    };
    if let Some(name) = wanted {
        let a = aggrs
            .iter()
            .find(|a| a.name.as_deref() == Some(name))
            .ok_or_else(|| anyhow!("aggregate {name:?} does not exist"))?;
        return Ok((
            name.to_owned(),
            format!("{name}, {} free", format_size(free(a))),
        ));
    }
    // An SVM without an aggregate list may use any aggregate.
    let assigned: Vec<String> = c
        .svms()
        .by_name(svm)
        .await?
        .and_then(|s| s.aggregates)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|a| a.name)
        .collect();
    let best = aggrs
        .iter()
        .filter(|a| assigned.is_empty() || a.name.as_ref().is_some_and(|n| assigned.contains(n)))
        // Most free space; ties go to the first name, so runs are repeatable.
        .max_by(|a, b| free(a).cmp(&free(b)).then_with(|| b.name.cmp(&a.name)))
        .ok_or_else(|| anyhow!("SVM {svm} has no aggregate to provision on"))?;
    let name = best.name.clone().unwrap_or_default();
    let detail = format!(
        "{name}, {} free (most of {})",
        format_size(free(best)),
        aggrs.len()
    );
    Ok((name, detail))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ontap_sim::{ApiError, Fault};

    const STEPS: [&str; 13] = [
        "ShowCluster",
        "PickSvm",
        "PickAggregate",
        "CreateVolume",
        "CreateExportPolicy",
        "AddExportRule",
        "ExportVolume",
        "CreateSnapshot",
        "CloneVolume",
        "CloneFile",
        "CreateLun",
        "CreateIgroup",
        "MapLun",
    ];
    const CLEANUP: [&str; 9] = [
        "UnmapLun",
        "DeleteIgroup",
        "DeleteLun",
        "DeleteVolume",
        "DeleteSnapshot",
        "UnexportVolume",
        "RemoveExportRule",
        "DeleteExportPolicy",
        "DeleteVolume",
    ];

    async fn sim_and_options() -> (SimServer, DemoOptions) {
        let sim = SimServer::builder()
            .job_duration(Duration::ZERO, Duration::from_millis(10))
            .start()
            .await
            .expect("simulator");
        let client = Client::builder(sim.url())
            .add_ca_pem(sim.ca_pem().expect("https").as_bytes().to_vec())
            .trust_only_added_cas(true)
            .basic_auth(sim.username(), sim.password())
            .build()
            .expect("client");
        let mut opts = DemoOptions::new(Target::Client(client));
        opts.print = false;
        (sim, opts)
    }

    /// Panics unless the simulator holds nothing the demo made.
    fn assert_clean(sim: &SimServer) {
        let state = sim.state();
        let coll = |name: &str| {
            state["collections"][name]
                .as_object()
                .map(|m| m.values().cloned().collect::<Vec<_>>())
                .unwrap_or_default()
        };
        for name in ["volumes", "snapshots", "luns", "igroups", "lun_maps"] {
            assert_eq!(
                coll(name),
                Vec::<serde_json::Value>::new(),
                "{name} left behind"
            );
        }
        let policies: Vec<_> = coll("export_policies")
            .iter()
            .map(|p| p["name"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(policies, ["default"]);
    }

    #[tokio::test]
    async fn demo_runs_every_step_and_leaves_nothing_behind() {
        let (sim, opts) = sim_and_options().await;
        let report = run_demo(opts).await.expect("run");
        assert!(report.succeeded(), "{report:#?}");
        assert_eq!(report.step_names(), STEPS);
        assert_eq!(report.cleanup_names(), CLEANUP);
        assert_eq!(
            report.steps[0].outcome,
            StepOutcome::Done("sim-cluster, ONTAP 9.16.1".into())
        );
        assert_eq!(
            report.steps[1].outcome,
            StepOutcome::Done("svm1 (first running SVM with NFS and iSCSI)".into())
        );
        assert_eq!(
            report.steps[2].outcome,
            StepOutcome::Done("aggr1, 1 TiB free (most of 2)".into())
        );
        let lun = report.lun.clone().expect("LUN summary");
        assert_eq!(lun.path, "/vol/kvmstor_demo_vol/lun0");
        assert_eq!(lun.id, 0);
        assert_eq!(lun.serial.len(), 12);
        assert_eq!(lun.wwid, linux_wwid(&lun.serial));
        assert!(lun.wwid.starts_with("3600a0980"));
        assert_eq!(lun.wwid.len(), 9 + 24);
        for r in &report.cleanup {
            assert!(
                matches!(&r.outcome, StepOutcome::Done(d) if d != "already gone"),
                "{r:?}"
            );
        }
        assert_clean(&sim);
        let text = report.to_string();
        assert!(text.ends_with("result   SUCCESS"), "{text}");
        assert!(
            text.contains("steps    13 done, 0 skipped, 0 failed (of 13)"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_failing_step_is_reported_and_everything_is_cleaned_up() {
        let (sim, opts) = sim_and_options().await;
        sim.faults().add(Fault::error(
            Some("POST"),
            "/api/protocols/san/lun-maps",
            ApiError::new(500, "65552", "RPC failure"),
        ));
        let report = run_demo(opts).await.expect("run");
        assert!(!report.succeeded());
        assert_eq!(report.step_names(), STEPS);
        match &report.steps[12].outcome {
            StepOutcome::Failed(e) => assert!(e.contains("code 65552"), "{e}"),
            other => panic!("{other:?}"),
        }
        assert!(report.lun.is_none());
        assert_eq!(report.cleanup_names(), CLEANUP);
        assert_eq!(
            report.cleanup[0].outcome,
            StepOutcome::Done("already gone".into()),
            "the map was never made"
        );
        assert!(report.cleanup[1..]
            .iter()
            .all(|r| matches!(&r.outcome, StepOutcome::Done(d) if d != "already gone")));
        assert_clean(&sim);
        assert!(report.to_string().ends_with("result   FAILURE"));
    }

    #[tokio::test]
    async fn a_failing_job_midway_unwinds_the_steps_before_it() {
        let (sim, opts) = sim_and_options().await;
        sim.faults().add(
            Fault::fail_job(
                Some("POST"),
                "/api/storage/volumes",
                917537,
                "Not enough space.",
            )
            .nth(2),
        );
        let report = run_demo(opts).await.expect("run");
        assert_eq!(report.step_names(), &STEPS[..9]);
        assert!(report.steps[8].outcome.is_failed(), "{:?}", report.steps[8]);
        assert_eq!(
            report.cleanup_names(),
            [
                "DeleteVolume",
                "DeleteSnapshot",
                "UnexportVolume",
                "RemoveExportRule",
                "DeleteExportPolicy",
                "DeleteVolume"
            ]
        );
        assert_eq!(
            report.cleanup[0].outcome,
            StepOutcome::Done("already gone".into())
        );
        assert!(report.cleanup.iter().all(|r| !r.outcome.is_failed()));
        assert_clean(&sim);
    }

    #[tokio::test]
    async fn without_a_file_to_clone_the_step_is_skipped() {
        let (sim, mut opts) = sim_and_options().await;
        opts.clone_file = None;
        let report = run_demo(opts).await.expect("run");
        assert!(report.succeeded(), "{report:#?}");
        assert_eq!(report.step_names(), STEPS);
        assert!(matches!(report.steps[9].outcome, StepOutcome::Skipped(_)));
        assert!(report
            .to_string()
            .contains("steps    12 done, 1 skipped, 0 failed (of 13)"));
        assert_clean(&sim);
    }

    #[tokio::test]
    async fn embedded_simulator_run_succeeds() {
        let mut opts = DemoOptions::new(Target::EmbeddedSimulator);
        opts.print = false;
        opts.prefix = "embedded".into();
        let report = run_demo(opts).await.expect("run");
        assert!(report.succeeded(), "{report:#?}");
        assert!(report.target.ends_with("(embedded simulator)"));
        assert_eq!(report.step_names(), STEPS);
        assert_eq!(
            report.lun.map(|l| l.path).as_deref(),
            Some("/vol/embedded_vol/lun0")
        );
    }

    #[test]
    fn helpers() {
        assert_eq!(copy_name("disk0.img"), "disk0-copy.img");
        assert_eq!(copy_name("a/b/disk.qcow2"), "a/b/disk-copy.qcow2");
        assert_eq!(copy_name("noext"), "noext-copy");
        assert_eq!(copy_name(".hidden"), ".hidden-copy");
        assert_eq!(format_size(GIB), "1 GiB");
        assert_eq!(format_size(512 * MIB), "512 MiB");
        assert_eq!(format_size(3 * GIB / 2), "1.5 GiB");
        assert_eq!(format_size(100), "100 B");
        assert_eq!(format_duration(Duration::from_millis(12)), "12 ms");
        assert_eq!(format_duration(Duration::from_millis(1240)), "1.24 s");
        assert_eq!(
            linux_wwid("wf0Iq+N4uck3"),
            "3600a098077663049712b4e3475636b33"
        );
    }
}
