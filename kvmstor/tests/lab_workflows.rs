//! Lab tier: the facade's full workflows against the simulator's kernel backend (real knfsd,
//! samba, LIO and nvmet behind ONTAP's REST API), through the public API only: attach
//! (and an attach again that changes nothing), the real result on the guest kernel, a VM
//! disk made and written through libvirt, a snapshot, a clone holding the snapshot's bytes,
//! and a detach that leaves a clean slate on the host and in ONTAP. Run by `cargo xtask lab`
//! (`cargo xtask lab lab_workflow` for these alone).

#[path = "../../host-storage/tests/lab_common/mod.rs"]
mod lab_common;

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use kvmstor::block::{BlockDatastore, BlockProtocol};
use kvmstor::nfs::{NfsDatastore, Persist};
use kvmstor::ops::{self, DatastoreVolume, Freeze};
use kvmstor::saga::{RunOutcome, Saga, Step};
use kvmstor::smb::SmbDatastore;
use kvmstor::{Env, Host};
use lab_common::{get, payload, sh, sim, step};
use libvirt_pools::{Libvirt, Outcome, PoolName, VolumeDef, VolumeFormat, VolumeName};
use ontap_client::{Client, Query, SecretString};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const SVM: &str = "svm1";
const AGGR: &str = "aggr1";
/// OCFS2's `vmstore` type wants at least 2 GiB; the LUN and namespace files are sparse.
const BLOCK_SIZE: u64 = 3 * GIB;
/// The VM disk made in every pool.
const DISK: &str = "vm1.raw";
const DISK_SIZE: u64 = 4 * MIB;
const SNAPSHOT: &str = "wf_snap";

/// The guest as the one KVM host: o2cb names nodes by host name, so the host is named as
/// the kernel is; the export rule admits the loopback source address.
fn lab_env() -> Result<(Env, String)> {
    let name = sh("hostname", &[])?.trim().to_owned();
    let env = Env::new(sim()?).host(Host::local(name.clone()).address("127.0.0.1"));
    Ok((env, name))
}

/// A journal directory per test (the journal files are kept until the test ends).
fn journals() -> Result<tempfile::TempDir> {
    Ok(tempfile::Builder::new().prefix("kvmstor-lab-").tempdir()?)
}

/// Prints the plan, runs the saga journaled to `journal` and returns the outcome.
async fn run<S: Step<Env = Env>>(saga: Saga<S>, env: &Env, journal: &Path) -> Result<RunOutcome> {
    let saga = saga.journal_file(journal);
    println!("{}", saga.plan());
    let report = saga.run(env).await?;
    println!("{}: {}", report.journal.workflow, report.outcome);
    Ok(report.outcome)
}

fn applied(outcome: RunOutcome) -> bool {
    matches!(outcome, RunOutcome::Applied { changed } if changed > 0)
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

/// The filesystem type and source of the mount at `target` that is not an autofs trigger,
/// and its super options.
fn mounted(target: &Path) -> Result<Option<(String, String, String)>> {
    for line in lab_common::mountinfo_lines(target)? {
        let Some((_, sb)) = line.split_once(" - ") else {
            continue;
        };
        let mut it = sb.split(' ');
        let (fs, source, opts) = (
            it.next().unwrap_or_default(),
            it.next().unwrap_or_default(),
            it.next().unwrap_or_default(),
        );
        if fs != "autofs" {
            return Ok(Some((fs.to_owned(), source.to_owned(), opts.to_owned())));
        }
    }
    Ok(None)
}

/// The line kvmstor owns under marker `id` in `file`, if any.
fn owned_line(file: &str, id: &str) -> Result<Option<String>> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let marker = format!("# kvmstor:{id} ");
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        if l.starts_with(&marker) {
            return Ok(lines.next().map(str::to_owned));
        }
    }
    Ok(None)
}

/// The pool is running and starts with libvirtd.
async fn assert_pool_active(lv: &Libvirt, pool: &str) -> Result<()> {
    let info = lv.pools().info(&PoolName::new(pool)?).await?;
    ensure!(
        info.active && info.autostart && info.persistent,
        "pool {pool}: {info:?}"
    );
    Ok(())
}

async fn assert_no_pool(lv: &Libvirt, pool: &str) -> Result<()> {
    let def = lv.pools().get(&PoolName::new(pool)?).await?;
    ensure!(def.is_none(), "pool {pool} still defined: {def:?}");
    Ok(())
}

/// No record named `name` left in the collection at `path`.
async fn assert_none(c: &Client, path: &str, name: &str) -> Result<()> {
    let found = get(c, path, &Query::new().filter("name", name)).await?;
    ensure!(found.is_empty(), "{path} still has {name}: {found:?}");
    Ok(())
}

/// Creates the VM disk in `pool` through libvirt and writes `data` into it.
async fn create_disk(lv: &Libvirt, pool: &str, data: &[u8]) -> Result<()> {
    let vols = lv.volumes(&PoolName::new(pool)?);
    let def = VolumeDef::new(VolumeName::new(DISK)?, DISK_SIZE, VolumeFormat::Raw);
    assert_eq!(vols.create(&def).await?, Outcome::Changed);
    write_disk(lv, pool, DISK, data).await
}

/// Streams `data` into volume `name` of `pool` from offset 0.
async fn write_disk(lv: &Libvirt, pool: &str, name: &str, data: &[u8]) -> Result<()> {
    let vols = lv.volumes(&PoolName::new(pool)?);
    let sent = vols
        .upload(
            &VolumeName::new(name)?,
            Cursor::new(data.to_vec()),
            data.len() as u64,
        )
        .await?;
    assert_eq!(sent, data.len() as u64);
    Ok(())
}

/// Downloads volume `name` of `pool` (after a pool refresh, so that files made behind
/// libvirt's back are seen) and checks that it starts with `want`.
async fn assert_disk_holds(lv: &Libvirt, pool: &str, name: &str, want: &[u8]) -> Result<()> {
    let pool_name = PoolName::new(pool)?;
    lv.pools().refresh(&pool_name).await?;
    let vols = lv.volumes(&pool_name);
    let info = vols.info(&VolumeName::new(name)?).await?;
    assert_eq!(info.capacity, DISK_SIZE, "{info:?}");
    let (bytes, n) = vols.download(&VolumeName::new(name)?, Vec::new()).await?;
    assert_eq!(n, DISK_SIZE, "{pool}/{name}");
    ensure!(
        bytes[..want.len()] == *want,
        "{pool}/{name} does not hold the expected bytes"
    );
    Ok(())
}

/// Takes the datastore's snapshot the way an operator would with no VM running: the
/// freeze is skipped (there is nothing to freeze), and says so.
async fn snapshot(env: &Env, host: &str, mount: &Path, vol: &DatastoreVolume) -> Result<()> {
    let running = ops::domains_on(env.find_host(host)?, mount).await?;
    assert!(running.is_empty(), "{running:?}");
    println!(
        "no running VM has a disk under {}: guest freeze skipped",
        mount.display()
    );
    let snap = ops::snapshot(env, vol, SNAPSHOT, &Freeze::None).await?;
    assert_eq!(snap.name, SNAPSHOT);
    let all = ops::list_snapshots(env, vol).await?;
    ensure!(all.iter().any(|s| s.name == SNAPSHOT), "{all:?}");
    Ok(())
}

/// The VM disk part of an NFS or SMB datastore: a disk written through libvirt, a
/// snapshot, a template clone (ONTAP file clone: a reflink in the kernel backend), new
/// data, then the disk restored from the snapshot beside the original and in place.
async fn file_datastore_disks(
    env: &Env,
    host: &str,
    pool: &str,
    mount: &Path,
    vol: &DatastoreVolume,
    cached_behind_leases: bool,
) -> Result<()> {
    let lv = libvirt().await?;
    let (v1, v2) = (payload("first"), payload("second"));
    create_disk(&lv, pool, &v1).await?;
    assert_disk_holds(&lv, pool, DISK, &v1).await?;
    step("disk created and written through libvirt");

    snapshot(env, host, mount, vol).await?;
    ops::clone_file(env, vol, DISK, "vm2.raw").await?;
    write_disk(&lv, pool, DISK, &v2).await?;
    step("snapshot, template clone, new data");

    ops::restore_file_as(env, vol, SNAPSHOT, DISK, "vm1-restored.raw").await?;
    assert_disk_holds(&lv, pool, DISK, &v2).await?;
    assert_disk_holds(&lv, pool, "vm2.raw", &v1).await?;
    assert_disk_holds(&lv, pool, "vm1-restored.raw", &v1).await?;
    step("restored beside the disk");
    ops::restore_file(env, vol, SNAPSHOT, DISK).await?;
    if cached_behind_leases {
        // The simulator replaces the file behind samba's back, so no lease is broken and
        // this host would read the bytes it cached; ONTAP, the SMB server itself, breaks
        // the lease. Dropping the clean cache stands in for that break.
        sh("sync", &[])?;
        std::fs::write("/proc/sys/vm/drop_caches", "3")?;
    }
    assert_disk_holds(&lv, pool, DISK, &v1).await?;
    step("template clone and restores hold the snapshot's bytes");
    Ok(())
}

#[tokio::test]
#[ignore = "lab tier: needs the lab guest kernel (run by cargo xtask lab)"]
async fn lab_workflow_nfs() -> Result<()> {
    step("start");
    let (env, host) = lab_env()?;
    let dir = journals()?;
    let pool = "wf-nfs";
    let ds = NfsDatastore::new(SVM, pool, AGGR, GIB)
        .hosts([host.as_str()])
        .persist(Persist::Fstab)
        .delete_ontap_objects(true);
    let mount = PathBuf::from(format!("/var/lib/kvmstor/mnt/{pool}"));
    let journal = dir.path().join("attach.json");

    assert!(applied(run(ds.attach(&env).await?, &env, &journal).await?));
    assert_eq!(
        run(ds.attach(&env).await?, &env, &journal).await?,
        RunOutcome::AlreadyApplied
    );
    step("attached; attach again changed nothing");

    let (fs, source, opts) = mounted(&mount)?.context("nothing mounted")?;
    assert_eq!(
        (fs.as_str(), source.as_str()),
        ("nfs4", "127.0.1.1:/wf_nfs")
    );
    for o in ["vers=4.1", "nconnect=4", "hard", "max_connect=2"] {
        ensure!(opts.split(',').any(|x| x == o), "{o} not in {opts}");
    }
    let line = owned_line("/etc/fstab", "kvmstor-wf-nfs")?.context("no fstab line")?;
    assert_eq!(
        line,
        "127.0.1.1:/wf_nfs /var/lib/kvmstor/mnt/wf-nfs nfs \
         vers=4.1,nconnect=4,max_connect=2,trunkdiscovery,hard,_netdev 0 0"
    );
    let lv = libvirt().await?;
    assert_pool_active(&lv, pool).await?;
    step("mount, fstab line and pool checked");

    let vol = DatastoreVolume::new(SVM, ds.volume());
    file_datastore_disks(&env, &host, pool, &mount, &vol, false).await?;

    let outcome = run(
        ds.detach(&env).await?,
        &env,
        &dir.path().join("detach.json"),
    )
    .await?;
    assert!(applied(outcome));
    assert_eq!(mounted(&mount)?, None);
    assert_eq!(owned_line("/etc/fstab", "kvmstor-wf-nfs")?, None);
    assert!(!mount.exists(), "mount point left behind");
    assert_no_pool(&lv, pool).await?;
    let c = env.ontap();
    assert_none(c, "/api/storage/volumes", ds.volume()).await?;
    assert_none(c, "/api/protocols/nfs/export-policies", &ds.export_policy()).await?;
    step("detached: clean slate");
    Ok(())
}

#[tokio::test]
#[ignore = "lab tier: needs the lab guest kernel (run by cargo xtask lab)"]
async fn lab_workflow_smb() -> Result<()> {
    step("start");
    ensure_automount()?;
    let (env, host) = lab_env()?;
    let dir = journals()?;
    let pool = "wf-smb";
    let user = std::env::var("LAB_SMB_USER").context("LAB_SMB_USER")?;
    let pass = std::env::var("LAB_SMB_PASSWORD").context("LAB_SMB_PASSWORD")?;
    let ds = SmbDatastore::new(SVM, pool, AGGR, GIB)
        .hosts([host.as_str()])
        .account(&user, None, SecretString::from(pass.clone()))
        .persist(Persist::Autofs)
        .max_channels(2)
        .delete_ontap_objects(true);
    let env = ds.env_with_secret(&env);
    let mount = PathBuf::from(format!("/var/lib/kvmstor/mnt/{pool}"));
    let journal = dir.path().join("attach.json");

    let saga = ds.attach(&env).await?;
    ensure!(
        !saga.plan().to_string().contains(&pass),
        "the password is in the plan"
    );
    assert!(applied(run(saga, &env, &journal).await?));
    ensure!(
        !std::fs::read_to_string(&journal)?.contains(&pass),
        "the password is in the journal"
    );
    assert_eq!(
        run(ds.attach(&env).await?, &env, &journal).await?,
        RunOutcome::AlreadyApplied
    );
    step("attached; attach again changed nothing");

    let master = owned_line("/etc/auto.master", "kvmstor")?.context("no auto.master line")?;
    ensure!(master.starts_with("/- /etc/auto.kvmstor "), "{master}");
    let entry = owned_line("/etc/auto.kvmstor", "kvmstor-wf-smb")?.context("no autofs entry")?;
    ensure!(
        entry.starts_with("/var/lib/kvmstor/mnt/wf-smb -fstype=cifs,")
            && entry.ends_with(" ://127.0.1.1/wf-smb"),
        "{entry}"
    );
    // autofs mounts on the first walk into the mount point (listing the trigger itself
    // does not mount).
    let listed = std::fs::read_dir(mount.join(".")).map(Iterator::count);
    let (fs, source, opts) = mounted(&mount)?.with_context(|| {
        let autofs: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("autofs") || l.contains("kvmstor"))
            .map(str::to_owned)
            .collect();
        format!(
            "nothing mounted at {} (listing: {listed:?}); autofs mounts: {autofs:#?}; \
             pid file: {:?}; auto.master: {:?}; auto.kvmstor: {:?}",
            mount.display(),
            std::fs::read_to_string("/run/autofs.pid"),
            std::fs::read_to_string("/etc/auto.master"),
            std::fs::read_to_string("/etc/auto.kvmstor"),
        )
    })?;
    assert_eq!(
        (fs.as_str(), source.as_str()),
        ("cifs", "//127.0.1.1/wf-smb")
    );
    for o in ["vers=3.1.1", "multichannel", "max_channels=2"] {
        ensure!(opts.split(',').any(|x| x == o), "{o} not in {opts}");
    }
    ensure!(!opts.contains(&pass), "the password is in the mount table");
    let cred = Path::new("/etc/kvmstor/cifs/kvmstor-wf-smb.cred");
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(cred)?.permissions().mode() & 0o777, 0o600);
    }
    let lv = libvirt().await?;
    assert_pool_active(&lv, pool).await?;
    step("mount, autofs entry, credentials file and pool checked");

    let vol = DatastoreVolume::new(SVM, ds.volume());
    file_datastore_disks(&env, &host, pool, &mount, &vol, true).await?;

    let outcome = run(
        ds.detach(&env).await?,
        &env,
        &dir.path().join("detach.json"),
    )
    .await?;
    assert!(applied(outcome));
    assert_eq!(mounted(&mount)?, None);
    assert!(lab_common::mountinfo_lines(&mount)?.is_empty());
    assert_eq!(owned_line("/etc/auto.kvmstor", "kvmstor-wf-smb")?, None);
    assert_eq!(owned_line("/etc/auto.master", "kvmstor")?, None);
    assert!(!cred.exists(), "credentials file left behind");
    assert_no_pool(&lv, pool).await?;
    let c = env.ontap();
    assert_none(c, "/api/storage/volumes", ds.volume()).await?;
    assert_none(c, "/api/protocols/cifs/shares", ds.share()).await?;
    step("detached: clean slate");
    Ok(())
}

/// What a block datastore's test checks after its detach.
struct BlockSlate {
    pool: String,
    mount: PathBuf,
    /// The stable device path mounted (`/dev/mapper/<wwid>` or the namespace's by-id link).
    device: PathBuf,
}

/// automount 5.1.8 exits when a reload leaves its master map without entries (reproduced
/// outside the lab: empty `/etc/auto.master` + SIGHUP → the daemon is gone), which is what an
/// earlier lab test's autofs undo does when its line was the only one. A host's autofs
/// service is the administrator's; here the lab stands in for it and starts the daemon the
/// way guest-init does when an earlier test left it stopped, and says so.
fn ensure_automount() -> Result<()> {
    let running = std::fs::read_to_string("/run/autofs.pid")
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
        .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
    if !running {
        println!("automount was not running (an earlier autofs undo emptied the master map); starting it");
        let status = std::process::Command::new("automount")
            .args(["-p", "/run/autofs.pid"])
            .status()?;
        ensure!(status.success(), "automount failed to start: {status}");
    }
    Ok(())
}

/// An OCFS2 file system is mounted at `mount`, from `device` (through udev's stable link).
fn assert_mounted_ocfs2(mount: &Path, device: &Path) -> Result<()> {
    let (fs, source, opts) = mounted(mount)?.context("nothing mounted")?;
    assert_eq!(fs, "ocfs2", "{source} {opts}");
    ensure!(
        std::fs::canonicalize(&source)? == std::fs::canonicalize(device)?,
        "{} is mounted from {source}, not {}",
        mount.display(),
        device.display()
    );
    Ok(())
}

/// Earlier lab tests (cluster-fs's, libvirt-pools') leave their one-node o2cb cluster
/// registered (target/BUGS.md), and o2cb runs one cluster per host. With no OCFS2 mounted
/// it is only a leftover: it is taken down, and said so.
fn take_down_leftover_o2cb() -> Result<()> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")?;
    if mounts.lines().any(|l| l.contains(" - ocfs2 ")) {
        return Ok(());
    }
    let Ok(dir) = std::fs::read_dir("/sys/kernel/config/cluster") else {
        return Ok(());
    };
    for e in dir {
        let name = e?.file_name().to_string_lossy().into_owned();
        if name != "kvmstor" {
            println!("o2cb cluster {name} was left registered by an earlier test: unregistering");
            sh("o2cb", &["unregister-cluster", &name])?;
        }
    }
    Ok(())
}

/// Runs the block workflow; when it fails, detaches what it left (the clone first: a
/// parent cannot go while its FlexClone exists) so that the next test starts clean.
async fn block_workflow(protocol: BlockProtocol, pool: &str) -> Result<()> {
    let result = block_workflow_steps(protocol, pool).await;
    if result.is_err() {
        let (env, host) = lab_env()?;
        for p in [format!("{pool}-clone"), pool.to_owned()] {
            let ds = BlockDatastore::new(protocol, SVM, &p, AGGR, BLOCK_SIZE)
                .hosts([host.as_str()])
                .delete_ontap_objects(true);
            let cleaned = match ds.detach(&env).await {
                Ok(saga) => saga.run(&env).await.map(|r| r.outcome.to_string()),
                Err(e) => Err(e),
            };
            println!("cleanup after the failure, {p}: {cleaned:?}");
        }
    }
    result
}

/// The OCFS2 datastore part: attach, checks, disk, snapshot, FlexClone attached beside the
/// parent with a new UUID, the clone's pool holding the snapshot's bytes, both detached.
async fn block_workflow_steps(protocol: BlockProtocol, pool: &str) -> Result<()> {
    step("start");
    take_down_leftover_o2cb()?;
    let (env, host) = lab_env()?;
    let dir = journals()?;
    let c = env.ontap().clone();
    let ds = BlockDatastore::new(protocol, SVM, pool, AGGR, BLOCK_SIZE)
        .hosts([host.as_str()])
        .delete_ontap_objects(true);
    let mount = PathBuf::from(format!("/var/lib/kvmstor/mnt/{pool}"));
    let id = format!("kvmstor-{pool}");
    let journal = dir.path().join("attach.json");

    assert!(applied(run(ds.attach(&env).await?, &env, &journal).await?));
    assert_eq!(
        run(ds.attach(&env).await?, &env, &journal).await?,
        RunOutcome::AlreadyApplied
    );
    step("attached; attach again changed nothing");

    let device = stable_device(&c, protocol, &ds.disk_path()).await?;
    assert_mounted_ocfs2(&mount, &device)?;
    let (_, source, _) = mounted(&mount)?.context("nothing mounted")?;
    if protocol == BlockProtocol::Iscsi {
        assert_eq!(Path::new(&source), device, "mounted by its WWID name");
    }
    let line = owned_line("/etc/fstab", &id)?.context("no fstab line")?;
    assert_eq!(
        line,
        format!(
            "{} {} ocfs2 _netdev,noatime 0 0",
            device.display(),
            mount.display()
        )
    );
    let lv = libvirt().await?;
    assert_pool_active(&lv, pool).await?;
    step("mount, fstab line and pool checked");

    let (v1, v2) = (payload("first"), payload("second"));
    create_disk(&lv, pool, &v1).await?;
    assert_disk_holds(&lv, pool, DISK, &v1).await?;
    // The disk's pages are in this host's cache until written back: the LUN (and so the
    // ONTAP snapshot) sees them only then.
    sh("sync", &[])?;
    let vol = DatastoreVolume::new(SVM, ds.volume());
    snapshot(&env, &host, &mount, &vol).await?;
    write_disk(&lv, pool, DISK, &v2).await?;
    sh("sync", &[])?;
    step("disk written, snapshot, new data");

    // The FlexClone of the snapshot, attached beside the parent as a second pool with a new
    // OCFS2 UUID.
    let clone_pool = format!("{pool}-clone");
    let clone_vol = kvmstor::default_volume_name(&clone_pool);
    let parent_uuid = blkid(&device, "UUID")?;
    ops::flexclone(&env, &vol, &clone_vol, Some(SNAPSHOT)).await?;
    step("FlexClone made");
    let clone = BlockDatastore::new(protocol, SVM, &clone_pool, AGGR, BLOCK_SIZE)
        .hosts([host.as_str()])
        .cloned_ocfs2(parent_uuid.clone())
        .delete_ontap_objects(true);
    let clone_mount = PathBuf::from(format!("/var/lib/kvmstor/mnt/{clone_pool}"));
    let clone_journal = dir.path().join("clone-attach.json");
    assert!(applied(
        run(clone.attach(&env).await?, &env, &clone_journal).await?
    ));
    assert_eq!(
        run(clone.attach(&env).await?, &env, &clone_journal).await?,
        RunOutcome::AlreadyApplied
    );
    step("FlexClone attached");
    let clone_device = stable_device(&c, protocol, &clone.disk_path()).await?;
    assert_mounted_ocfs2(&clone_mount, &clone_device)?;
    assert_mounted_ocfs2(&mount, &device)?;
    assert_ne!(blkid(&clone_device, "UUID")?, parent_uuid);
    // tunefs' label for a clone; relabeling waits for a replay of its journals.
    assert_eq!(blkid(&clone_device, "LABEL")?, format!("{pool}-cloned"));
    assert_pool_active(&lv, &clone_pool).await?;
    assert_disk_holds(&lv, &clone_pool, DISK, &v1).await?;
    assert_disk_holds(&lv, pool, DISK, &v2).await?;
    step("FlexClone attached beside the parent; it holds the snapshot's bytes");

    let outcome = run(
        clone.detach(&env).await?,
        &env,
        &dir.path().join("clone-detach.json"),
    )
    .await?;
    assert!(applied(outcome));
    assert_block_slate(
        &env,
        &lv,
        protocol,
        &clone,
        &BlockSlate {
            pool: clone_pool.clone(),
            mount: clone_mount,
            device: clone_device,
        },
    )
    .await?;
    assert_mounted_ocfs2(&mount, &device)?;
    step("clone detached; the parent stays");

    let outcome = run(
        ds.detach(&env).await?,
        &env,
        &dir.path().join("detach.json"),
    )
    .await?;
    assert!(applied(outcome));
    assert_block_slate(
        &env,
        &lv,
        protocol,
        &ds,
        &BlockSlate {
            pool: pool.to_owned(),
            mount,
            device,
        },
    )
    .await?;
    // Nothing of the cluster stack or the SAN paths is left once no datastore uses them.
    let registered = sh("o2cb", &["list-clusters"]).unwrap_or_default();
    ensure!(
        !registered.lines().any(|l| l.trim() == "kvmstor"),
        "o2cb cluster kvmstor still registered"
    );
    match protocol {
        BlockProtocol::Iscsi => {
            let target = iscsi_target(&c).await?;
            ensure!(
                !iscsi_sessions_to(&target)?,
                "an iSCSI session to {target} is left"
            );
        }
        _ => {
            let nqn = format!(":subsystem.{}", ds.initiator_group());
            ensure!(
                !nvme_controllers_for(&nqn)?,
                "an NVMe controller for {nqn} is left"
            );
        }
    }
    step("detached: clean slate");
    Ok(())
}

/// The value of the file-system tag `tag` (`UUID`, `LABEL`) that blkid reads on `device`.
fn blkid(device: &Path, tag: &str) -> Result<String> {
    let device = device.display().to_string();
    Ok(sh("blkid", &["-o", "value", "-s", tag, &device])?
        .trim()
        .to_owned())
}

/// The stable device path of a LUN (`/dev/mapper/<NAA WWID>`) or namespace
/// (`/dev/disk/by-id/nvme-uuid.<uuid>`), from ONTAP's record.
async fn stable_device(c: &Client, protocol: BlockProtocol, path: &str) -> Result<PathBuf> {
    match protocol {
        BlockProtocol::NvmeTcp => {
            let ns = get(
                c,
                "/api/storage/namespaces",
                &Query::new().filter("name", path).fields(["uuid"]),
            )
            .await?;
            let uuid = ns
                .first()
                .and_then(|n| n["uuid"].as_str())
                .context("namespace uuid")?;
            Ok(PathBuf::from(format!("/dev/disk/by-id/nvme-uuid.{uuid}")))
        }
        _ => {
            let luns = get(
                c,
                "/api/storage/luns",
                &Query::new().filter("name", path).fields(["serial_number"]),
            )
            .await?;
            let serial = luns
                .first()
                .and_then(|l| l["serial_number"].as_str())
                .context("LUN serial")?;
            // The map as multipath names it: by the LUN's WWID (LIO reports its own NAA,
            // not NetApp's), found through the serial of its paths.
            let serial = host_storage::LunSerial::parse(serial)?;
            let mp = host_storage::multipath::Multipath::new(
                host_storage::SystemRunner::new(),
                host_storage::files::HostRoot::system(),
            );
            let map = mp
                .find_lun_map(&serial)?
                .with_context(|| format!("no multipath map for LUN serial {serial}"))?;
            Ok(PathBuf::from(format!("/dev/mapper/{}", map.name)))
        }
    }
}

async fn iscsi_target(c: &Client) -> Result<String> {
    let svc = get(
        c,
        "/api/protocols/san/iscsi/services",
        &Query::new().filter("svm.name", SVM).fields(["target"]),
    )
    .await?;
    Ok(svc
        .first()
        .and_then(|s| s["target"]["name"].as_str())
        .context("iSCSI target name")?
        .to_owned())
}

/// Whether a `/sys/class/<class>/*/<attr>` file satisfies `pred`.
fn sysfs_any(class: &str, attr: &str, pred: impl Fn(&str) -> bool) -> Result<bool> {
    let Ok(dir) = std::fs::read_dir(format!("/sys/class/{class}")) else {
        return Ok(false);
    };
    for e in dir {
        let p = e?.path().join(attr);
        if let Ok(v) = std::fs::read_to_string(&p) {
            if pred(v.trim()) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

fn iscsi_sessions_to(target: &str) -> Result<bool> {
    sysfs_any("iscsi_session", "targetname", |t| t == target)
}

fn nvme_controllers_for(nqn_suffix: &str) -> Result<bool> {
    sysfs_any("nvme", "subsysnqn", |n| n.ends_with(nqn_suffix))
}

/// After a block datastore's detach: no mount, fstab line, device, map or pool on the
/// host; no volume, disk, igroup or subsystem in ONTAP.
async fn assert_block_slate(
    env: &Env,
    lv: &Libvirt,
    protocol: BlockProtocol,
    ds: &BlockDatastore,
    s: &BlockSlate,
) -> Result<()> {
    assert_eq!(mounted(&s.mount)?, None);
    assert!(!s.mount.exists(), "mount point left behind");
    assert_eq!(
        owned_line("/etc/fstab", &format!("kvmstor-{}", s.pool))?,
        None
    );
    ensure!(
        !s.device.exists(),
        "{} still exists after the detach",
        s.device.display()
    );
    if protocol == BlockProtocol::Iscsi {
        let wwid = s
            .device
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let maps = sh("dmsetup", &["ls"]).unwrap_or_default();
        ensure!(!maps.contains(wwid), "dm map {wwid} left: {maps}");
    } else {
        let nqn = format!(":subsystem.{}", ds.initiator_group());
        ensure!(
            !nvme_controllers_for(&nqn)?,
            "an NVMe controller for {nqn} is left"
        );
    }
    assert_no_pool(lv, &s.pool).await?;
    let c = env.ontap();
    assert_none(c, "/api/storage/volumes", ds.volume()).await?;
    match protocol {
        BlockProtocol::NvmeTcp => {
            assert_none(c, "/api/storage/namespaces", &ds.disk_path()).await?;
            assert_none(c, "/api/protocols/nvme/subsystems", &ds.initiator_group()).await?;
        }
        _ => {
            assert_none(c, "/api/storage/luns", &ds.disk_path()).await?;
            assert_none(c, "/api/protocols/san/igroups", &ds.initiator_group()).await?;
        }
    }
    Ok(())
}

#[tokio::test]
#[ignore = "lab tier: needs the lab guest kernel (run by cargo xtask lab)"]
async fn lab_workflow_iscsi_ocfs2() -> Result<()> {
    block_workflow(BlockProtocol::Iscsi, "wf-iscsi").await
}

#[tokio::test]
#[ignore = "lab tier: needs the lab guest kernel (run by cargo xtask lab)"]
async fn lab_workflow_nvme_ocfs2() -> Result<()> {
    block_workflow(BlockProtocol::NvmeTcp, "wf-nvme").await
}
