//! What the facade's workflow tests share (`mod support;` in each test file): the simulator
//! and its client, scratch host roots and a fake kernel that mounts on a scratch mountinfo,
//! a read-only directory guard, a snapshot of a scratch root, the crash-then-recover cases
//! and the failures the tests inject (ONTAP faults, a foreign libvirt pool, a host without
//! libvirtd).
//!
//! Each test binary compiles this module and uses a part of it, hence the module-wide
//! `allow(dead_code)`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use host_storage::{Command, Output, Runner};
use kvmstor::saga::{recover, CrashPoint, LockRegistry, RecoverMode, RunReport, Saga, Step};
use kvmstor::{Env, Error, Host};
use libvirt_pools::{Libvirt, PoolDef, PoolName, PoolSpec, RemoveMode};
use ontap_client::Client;
use ontap_sim::{ApiError, Fault, SimServer};

/// The scratch host's mountinfo before anything is mounted.
pub const ROOT_MOUNT: &str = "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n";
/// The scratch host's fstab before anything is attached.
pub const FSTAB: &str = "UUID=1234 / ext4 defaults 0 1\n";

/// An in-process simulator over plain HTTP (jobs finish within 5 ms) and a client for it.
pub async fn sim() -> (SimServer, Client) {
    let sim = SimServer::builder()
        .http()
        .job_duration(Duration::ZERO, Duration::from_millis(5))
        .start()
        .await
        .unwrap();
    let client = Client::builder(sim.url())
        .basic_auth("admin", sim.password())
        .build()
        .unwrap();
    (sim, client)
}

/// A scratch host root: the directories `dirs` and the files `files` (relative path,
/// content; parents made as needed). The root goes when the `TempDir` drops.
pub fn scratch_root(dirs: &[&str], files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    for d in dirs {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    for (path, text) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    (dir, root)
}

/// Plays the kernel for `mount -t TYPE -o OPTS SOURCE TARGET` (a line added to the scratch
/// mountinfo) and `umount TARGET` (its lines removed); records every call and fails the
/// `nth` call of a program when asked (exit 32, as mount.nfs and mount.cifs do).
#[derive(Debug)]
pub struct FakeMounts {
    mountinfo: PathBuf,
    /// The stderr of a failed call.
    refusal: &'static str,
    state: Mutex<MountsState>,
}

#[derive(Debug, Default)]
struct MountsState {
    calls: Vec<String>,
    fail: Option<(String, usize)>,
    seen: usize,
}

impl FakeMounts {
    /// Mounts on `mountinfo`; a failed call says `refusal` on stderr.
    pub fn new(mountinfo: PathBuf, refusal: &'static str) -> FakeMounts {
        FakeMounts {
            mountinfo,
            refusal,
            state: Mutex::new(MountsState::default()),
        }
    }

    /// Fails the `nth` call (from now, 1-based) of `program`, and that one only.
    pub fn fail(&self, program: &str, nth: usize) {
        let mut st = self.state.lock().unwrap();
        st.fail = Some((program.to_owned(), nth));
        st.seen = 0;
    }

    /// Every command run so far, as shown.
    pub fn calls(&self) -> Vec<String> {
        self.state.lock().unwrap().calls.clone()
    }
}

#[async_trait::async_trait]
impl Runner for FakeMounts {
    async fn run(&self, cmd: &Command) -> host_storage::Result<Output> {
        let args: Vec<String> = cmd
            .get_args()
            .iter()
            .map(|a| a.expose().to_owned())
            .collect();
        {
            let mut st = self.state.lock().unwrap();
            st.calls.push(cmd.to_string());
            if let Some((program, nth)) = st.fail.clone() {
                if program == cmd.program() {
                    st.seen += 1;
                    if st.seen == nth {
                        return cmd.check(Output::exit(32, "", self.refusal));
                    }
                }
            }
        }
        match (cmd.program(), args.as_slice()) {
            ("mount", [_, fstype, _, opts, source, target]) => {
                // The tests mount NFS 4.x, which the kernel lists as nfs4.
                let fstype = if fstype == "nfs" { "nfs4" } else { fstype };
                add_mount(&self.mountinfo, "0:99", fstype, source, target, opts);
            }
            ("umount", [target]) => remove_mount(&self.mountinfo, target),
            (program, args) => panic!("unexpected command {program} {args:?}"),
        }
        cmd.check(Output::success(""))
    }
}

/// What `mount -t FSTYPE -o OPTS SOURCE TARGET` adds to `mountinfo` (device `dev`).
pub fn add_mount(
    mountinfo: &Path,
    dev: &str,
    fstype: &str,
    source: &str,
    target: &str,
    opts: &str,
) {
    let text = std::fs::read_to_string(mountinfo).unwrap();
    let line = format!("900 22 {dev} / {target} rw,relatime - {fstype} {source} rw,{opts}\n");
    std::fs::write(mountinfo, text + &line).unwrap();
}

/// What `umount TARGET` removes from `mountinfo`.
pub fn remove_mount(mountinfo: &Path, target: &str) {
    let text = std::fs::read_to_string(mountinfo).unwrap();
    let needle = format!(" {target} ");
    let kept: String = text
        .lines()
        .filter(|l| !l.contains(&needle))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(mountinfo, kept).unwrap();
}

/// Host files as before any attach: `etc/fstab` is `fstab`, the mountinfo holds `/` only.
pub fn assert_host_files(root: &Path, fstab: &str, context: &str) {
    let read = |path: &str| std::fs::read_to_string(root.join(path)).ok();
    assert_eq!(
        read("etc/fstab").as_deref(),
        Some(fstab),
        "{context}: fstab"
    );
    assert_eq!(
        read("proc/self/mountinfo").as_deref(),
        Some(ROOT_MOUNT),
        "{context}: mounts"
    );
}

/// A scratch host whose mounts are played by [`FakeMounts`]: libvirt's `test:///default`,
/// no automount (autofs maps are checked as files; `autofs_workflow.rs` plays automount).
pub struct MountHost {
    /// Keeps the root alive.
    pub dir: tempfile::TempDir,
    /// The host's `/`.
    pub root: PathBuf,
    /// The fake kernel.
    pub kernel: Arc<FakeMounts>,
    /// The host as the workflows see it.
    pub host: Host,
}

impl MountHost {
    /// Host `name` at `address` whose root holds `files` and a mountinfo with `/` only; a
    /// failed mount or umount says `refusal`.
    pub fn new(
        name: &str,
        address: &str,
        files: &[(&str, &str)],
        refusal: &'static str,
    ) -> MountHost {
        let mut all = vec![("proc/self/mountinfo", ROOT_MOUNT)];
        all.extend_from_slice(files);
        let (dir, root) = scratch_root(&[], &all);
        let kernel = Arc::new(FakeMounts::new(root.join("proc/self/mountinfo"), refusal));
        let host = Host::new(name, kernel.clone())
            .address(address)
            .libvirt_uri("test:///default")
            .root(&root)
            .autofs_reload(host_storage::autofs::Reload::Never);
        MountHost {
            dir,
            root,
            kernel,
            host,
        }
    }

    /// Where datastore `pool` is mounted on this host.
    pub fn mount_point(&self, pool: &str) -> PathBuf {
        self.root.join("mnt").join(pool)
    }

    /// The content of `path` (relative to the root), if there is such a file.
    pub fn read(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.root.join(path)).ok()
    }
}

/// The same host, with a libvirt connection that fails (libvirtd cannot be reached).
pub fn without_libvirtd(host: &Host) -> Host {
    host.clone()
        .libvirt_uri("test:///nonexistent/kvmstor-no-libvirtd.xml")
}

/// A directory that refuses new and removed entries, also to root (mode 0555 and, where the
/// caller may set it, the immutable attribute), as on a read-only `/etc`: a step that writes
/// or removes a file there fails. Thawed to its old mode on drop, panics included.
pub struct Frozen(PathBuf, u32);

impl Frozen {
    /// Freezes `dir`; panics when it cannot (no chattr and running as root).
    pub fn new(dir: &Path) -> Frozen {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir).unwrap().permissions().mode() & 0o7777;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        // Root ignores the mode; the immutable attribute stops it (it needs
        // CAP_LINUX_IMMUTABLE, which a non-root runner lacks and does not need).
        let _ = std::process::Command::new("chattr")
            .arg("+i")
            .arg(dir)
            .output();
        let frozen = Frozen(dir.to_owned(), mode);
        assert!(
            std::fs::write(dir.join(".kvmstor-probe"), "").is_err(),
            "cannot make {} read-only here (no chattr?)",
            dir.display()
        );
        frozen
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .output();
        let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(self.1));
    }
}

/// What [`tree`] records of a scratch root besides each path.
#[derive(Debug, Default, Clone, Copy)]
pub struct TreeOpts<'a> {
    /// Entries of the root left out, with all below them (e.g. a synthetic `sys`, whose
    /// kernel names change with every login).
    pub skip: &'a [&'a str],
    /// Each entry's mode (octal) before its content.
    pub modes: bool,
    /// A secret written as `<password>` wherever a file holds it.
    pub mask: Option<&'a str>,
}

/// Every directory (`path/`) and file under `root`, relative to it, with its content (and
/// mode, as `opts` says): what a detach changes and its unwind must put back.
pub fn tree(root: &Path, opts: &TreeOpts<'_>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    walk(root, root, opts, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, opts: &TreeOpts<'_>, out: &mut BTreeMap<String, String>) {
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        let rel = p.strip_prefix(root).unwrap().display().to_string();
        if opts.skip.contains(&rel.as_str()) {
            continue;
        }
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777;
        let mode = if opts.modes {
            format!("{mode:o}")
        } else {
            String::new()
        };
        if p.is_dir() {
            out.insert(format!("{rel}/"), mode);
            walk(root, &p, opts, out);
        } else {
            let mut text = String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned();
            if let Some(secret) = opts.mask {
                text = text.replace(secret, "<password>");
            }
            let value = if opts.modes {
                format!("{mode} {text}")
            } else {
                text
            };
            out.insert(rel, value);
        }
    }
}

/// One case of a crash matrix: the run stops at `point` (before or after step `k`), and
/// `recover` is called with `mode`.
#[derive(Debug, Clone, Copy)]
pub struct CrashCase {
    /// The step the run stops at.
    pub k: usize,
    /// 0 before step `k` is applied, 1 after.
    pub p: usize,
    /// Where the run stops.
    pub point: CrashPoint,
    /// How it is recovered.
    pub mode: RecoverMode,
}

impl CrashCase {
    /// `k-p-unwind`: a part of a name no other case of the matrix has.
    pub fn tag(&self) -> String {
        format!("{}-{}-{}", self.k, self.p, self.mode == RecoverMode::Unwind)
    }
}

/// Every case of a run of `steps` steps: each step, before and after it is applied, then
/// unwound and resumed.
pub fn crash_cases(steps: usize) -> Vec<CrashCase> {
    let mut cases = Vec::new();
    for k in 0..steps {
        for (p, point) in [CrashPoint::BeforeApply(k), CrashPoint::AfterApply(k)]
            .into_iter()
            .enumerate()
        {
            for mode in [RecoverMode::Unwind, RecoverMode::Resume] {
                cases.push(CrashCase { k, p, point, mode });
            }
        }
    }
    cases
}

/// A run stopped by a crash, with its journal (in a directory of its own, kept until this
/// drops).
pub struct Crashed {
    _dir: tempfile::TempDir,
    /// The journal file.
    pub journal: PathBuf,
}

impl Crashed {
    /// Recovers the run with `mode`, taking `locks`.
    pub async fn recover<S: Step<Env = Env>>(
        &self,
        env: &Env,
        mode: RecoverMode,
        locks: Arc<LockRegistry>,
    ) -> RunReport<S> {
        recover::<S>(&self.journal, env, mode, locks).await.unwrap()
    }

    /// The journal as written.
    pub fn text(&self) -> String {
        std::fs::read_to_string(&self.journal).unwrap()
    }
}

/// Runs `saga`, journaled to a scratch file, until it stops at `case.point`; checks it says it
/// was interrupted at step `case.k`.
pub async fn crash<S: Step<Env = Env>>(saga: Saga<S>, env: &Env, case: &CrashCase) -> Crashed {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.json");
    let err = saga
        .journal_file(&journal)
        .crash_at(case.point)
        .run(env)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Interrupted { index, .. } if index == case.k),
        "{case:?}: {err}"
    );
    Crashed { _dir: dir, journal }
}

/// Recovers the run journaled at `journal` with `mode`, through the process-wide locks.
pub async fn recover_run<S: Step<Env = Env>>(
    journal: &Path,
    env: &Env,
    mode: RecoverMode,
) -> RunReport<S> {
    recover::<S>(journal, env, mode, LockRegistry::global())
        .await
        .unwrap()
}

/// The labels of `saga`'s steps.
pub fn labels<S: Step>(saga: &Saga<S>) -> Vec<String> {
    saga.steps().iter().map(Step::label).collect()
}

/// ONTAP answers `method` on `path` with HTTP 500, code 65552 (RPC failure).
pub fn rpc_failure(method: &str, path: &str) -> Fault {
    Fault::error(
        Some(method),
        path,
        ApiError::new(500, "65552", "RPC failure"),
    )
}

/// The volume create job fails: no space in the aggregate.
pub fn no_space() -> Fault {
    Fault::fail_job(
        Some("POST"),
        "/api/storage/volumes",
        917_536,
        "Insufficient space in aggregate",
    )
}

/// The volume delete job fails: the volume is busy.
pub fn volume_busy() -> Fault {
    Fault::fail_job(
        Some("DELETE"),
        "/api/storage/volumes/*",
        917_718,
        "Volume busy",
    )
}

fn pool_name(pool: &str) -> PoolName {
    PoolName::new(pool.to_owned()).unwrap()
}

/// Libvirt's (`test:///default`) definition of pool `pool`, if any.
pub async fn pool_def(pool: &str) -> Option<PoolDef> {
    let lv = Libvirt::connect("test:///default").await.unwrap();
    lv.pools().get(&pool_name(pool)).await.unwrap()
}

/// Someone else's pool named `pool`: a directory pool on `/srv/someone-elses/POOL`.
pub async fn define_foreign_pool(pool: &str) {
    let lv = Libvirt::connect("test:///default").await.unwrap();
    let spec = PoolSpec::new(PoolDef::dir(
        pool_name(pool),
        format!("/srv/someone-elses/{pool}"),
    ));
    lv.pools().ensure(&spec).await.unwrap();
}

/// Removes pool `pool`'s definition, keeping its data.
pub async fn remove_pool(pool: &str) {
    let lv = Libvirt::connect("test:///default").await.unwrap();
    lv.pools()
        .remove(&pool_name(pool), RemoveMode::KeepData)
        .await
        .unwrap();
}
