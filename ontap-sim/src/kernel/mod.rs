//! The kernel backend: ONTAP objects become real targets on the host running the simulator.
//!
//! | ONTAP object | on the host |
//! |---|---|
//! | volume | btrfs subvolume `<root>/mnt/vols/<volume uuid>` on a loop-mounted image `<root>/btrfs.img` |
//! | snapshot | read-only btrfs snapshot `<root>/mnt/snaps/<volume uuid>/<snapshot uuid>` |
//! | FlexClone | writable btrfs snapshot of the parent snapshot (or of the parent volume) |
//! | file clone | `cp --reflink=always` inside the subvolume |
//! | junction path + export policy | bind mount `<export root>/<junction>` + a knfsd exports file (`fsid=<volume uuid>`) and `exportfs -ra` |
//! | CIFS share | a `[share]` section in a samba include file + `smbcontrol smbd reload-config` |
//! | LIF | its address is used as is: lab seeds use loopback addresses (`127.0.1.x`), which `lo` answers without configuration |
//! | iSCSI service, LUN, igroup, LUN map, CHAP | LIO through configfs (see [`lio`]): fileio backstore per LUN with the ONTAP serial in VPD 0x80, one target per SVM with a portal per iSCSI LIF, node ACLs, mapped LUNs with the ONTAP LUN id, CHAP per ACL |
//! | NVMe subsystem, namespace, host, map | nvmet through configfs (see [`nvmet`]) |
//!
//! LUNs and namespaces are sparse files in their volume's subvolume (`<volume>/<name>`).
//! Names from the API never reach a path or a configuration line unchecked ([`names`]):
//! volumes, snapshots and backstores live under their UUIDs.
//!
//! Every change is applied in steps; derived configuration (bind mounts, exports, smb,
//! LIO, nvmet) is *reconciled* from the whole state, so applying twice changes nothing. When
//! a step fails, the steps done are undone, the derived configuration is reconciled back
//! to the state before the change, and the change is refused with a [`BackendError`].
//!
//! ## What the host must provide
//!
//! * root; `loop` and `btrfs` in the kernel; `btrfs-progs` (`mkfs.btrfs`, `btrfs`),
//!   `mount`/`umount`, `cp` (coreutils, for `--reflink=always`).
//! * NFS: `nfsd` (and `/proc/fs/nfsd` mounted), `nfs-kernel-server` (`exportfs`,
//!   `rpc.mountd`, `rpc.nfsd`), `rpcbind`; `/etc/exports.d/` is read by `exportfs -ra`.
//! * CIFS: samba with `smbd` running and `include = /etc/samba/kvmstor-sim.conf` in the
//!   `[global]` section of `smb.conf` (`smbcontrol smbd reload-config` must succeed).
//! * iSCSI: configfs mounted at `/sys/kernel/config`, modules `target_core_mod`,
//!   `target_core_file`, `iscsi_target_mod`. LIO's `wwn/vendor_id` and `wwn/product_id`
//!   (Linux ≥ 5.0 / 5.9, so 6.1 has both) are set to `NETAPP` / `LUN C-Mode` when present.
//!   The VPD 0x83 NAA identifier is LIO's own (`6001405…`), not NetApp's `600a0980…`.
//! * NVMe/TCP: configfs, modules `nvmet`, `nvmet_tcp`.
//! * LIFs: use loopback addresses (`Seed::lab`): nothing to configure.
//!
//! A protocol whose kernel part is missing can be left out ([`KernelConfig::lio`],
//! [`KernelConfig::nvmet`], [`KernelConfig::exports_file`], [`KernelConfig::smb_include`];
//! binary: `--kernel-skip iscsi` …). In the lab guest, after the modules are loaded and the
//! daemons started:
//!
//! ```text
//! ontap-sim --listen 127.0.0.1:8443 --lab-seed --backend kernel \
//!     --kernel-root /var/lib/ontap-sim --kernel-loop-size 8G --state /var/lib/ontap-sim/state.json
//! ```
//!
//! NFSv4 clients mount `127.0.1.1:/vol1` (the export root is the `fsid=0` pseudo root);
//! NFSv3 clients use the full path below the export root. CHAP passwords are kept in
//! memory only: after a restart a CHAP initiator is denied until its credential is set
//! again. A running LIO backstore or nvmet namespace keeps the size it was enabled with
//! (the file grows on resize; reconnect to see it).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use ontap_sim::kernel::{KernelBackend, KernelConfig};
//! use ontap_sim::{Seed, SimServer};
//!
//! let cfg = KernelConfig::new("/var/lib/ontap-sim").loop_size(8 << 30);
//! let backend = Arc::new(KernelBackend::system(cfg));
//! let sim = SimServer::builder()
//!     .seed(Seed::lab())
//!     .backend(backend.clone())
//!     .start()
//!     .await?;
//! println!("{}", sim.url());
//! sim.shutdown().await;
//! backend.teardown().await?;
//! # Ok(()) }
//! ```

pub mod configfs;
pub mod lio;
pub mod names;
pub mod nfs;
pub mod nvmet;
pub mod smb;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use host_storage::{Command, Runner, SystemRunner};
use secrecy::SecretString;
use serde_json::Value;

use crate::backend::{Backend, BackendError, Change};
use crate::store::{coll, str_at, u64_at, Store};

use configfs::Configfs;

/// ONTAP error code reported when the host refuses a change.
pub const BACKEND_FAILURE_CODE: i64 = 13_001;

/// Why the kernel backend could not realise a change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KernelError {
    /// A file system operation failed.
    #[error("cannot {op} {path}")]
    Io {
        /// The operation (`mkdir`, `write`, `symlink`, ...).
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A configuration file could not be replaced.
    #[error("cannot write {path}")]
    File {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: host_storage::Error,
    },
    /// A host command failed.
    #[error("{step} failed")]
    Command {
        /// What the command was for (`create subvolume`, `exportfs`, ...).
        step: &'static str,
        /// The runner's error (program, redacted arguments, status, stderr tail).
        #[source]
        source: host_storage::Error,
    },
    /// A name from the API cannot be used on the host.
    #[error("{what} {value:?} cannot be used on the host: {reason}")]
    Name {
        /// What the name is.
        what: &'static str,
        /// The name (at most 200 characters).
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A record the change refers to is not known to the backend.
    #[error("{what} {key} is not known to the kernel backend")]
    Missing {
        /// What kind of record.
        what: &'static str,
        /// Its key.
        key: String,
    },
}

impl From<KernelError> for BackendError {
    fn from(e: KernelError) -> Self {
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg.push_str(&format!(": {s}"));
            src = s.source();
        }
        BackendError::new(BACKEND_FAILURE_CODE, format!("kernel backend: {msg}"))
    }
}

/// Where the kernel backend keeps things and which protocols it realises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelConfig {
    root: PathBuf,
    loop_size: u64,
    export_root: Option<PathBuf>,
    exports_file: Option<PathBuf>,
    smb_include: Option<PathBuf>,
    configfs: Configfs,
    lio: bool,
    nvmet: bool,
}

/// Default size of the btrfs image (sparse).
pub const DEFAULT_LOOP_SIZE: u64 = 16 << 30;
/// Default knfsd exports file.
pub const DEFAULT_EXPORTS_FILE: &str = "/etc/exports.d/kvmstor-sim.exports";
/// Default samba include file (`include = …` it from `smb.conf`).
pub const DEFAULT_SMB_INCLUDE: &str = "/etc/samba/kvmstor-sim.conf";

impl KernelConfig {
    /// Everything under `root`; NFS, CIFS, LIO and nvmet enabled with the system paths.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        KernelConfig {
            root: root.into(),
            loop_size: DEFAULT_LOOP_SIZE,
            export_root: None,
            exports_file: Some(DEFAULT_EXPORTS_FILE.into()),
            smb_include: Some(DEFAULT_SMB_INCLUDE.into()),
            configfs: Configfs::new(configfs::SYSTEM_ROOT),
            lio: true,
            nvmet: true,
        }
    }

    /// Volumes, snapshots, clones and LUN/namespace files only: no exports, samba, LIO or
    /// nvmet (junction bind mounts are still made).
    pub fn volumes_only(mut self) -> Self {
        self.exports_file = None;
        self.smb_include = None;
        self.lio = false;
        self.nvmet = false;
        self
    }

    /// Size of the sparse btrfs image created at the first start.
    pub fn loop_size(mut self, bytes: u64) -> Self {
        self.loop_size = bytes;
        self
    }

    /// Directory holding the junction bind mounts (default `<root>/export`).
    pub fn export_root(mut self, dir: impl Into<PathBuf>) -> Self {
        self.export_root = Some(dir.into());
        self
    }

    /// knfsd exports file to manage (`None`: no NFS exports).
    pub fn exports_file(mut self, file: Option<PathBuf>) -> Self {
        self.exports_file = file;
        self
    }

    /// samba include file to manage (`None`: no samba shares).
    pub fn smb_include(mut self, file: Option<PathBuf>) -> Self {
        self.smb_include = file;
        self
    }

    /// The configfs tree for LIO and nvmet (default `/sys/kernel/config`).
    pub fn configfs(mut self, cfs: Configfs) -> Self {
        self.configfs = cfs;
        self
    }

    /// Realise iSCSI objects with LIO.
    pub fn lio(mut self, on: bool) -> Self {
        self.lio = on;
        self
    }

    /// Realise NVMe objects with nvmet.
    pub fn nvmet(mut self, on: bool) -> Self {
        self.nvmet = on;
        self
    }

    /// The state directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The btrfs image file.
    pub fn image(&self) -> PathBuf {
        self.root.join("btrfs.img")
    }

    /// Where the btrfs file system is mounted.
    pub fn mount_point(&self) -> PathBuf {
        self.root.join("mnt")
    }

    /// The directory holding junction bind mounts.
    pub fn export_dir(&self) -> PathBuf {
        self.export_root
            .clone()
            .unwrap_or_else(|| self.root.join("export"))
    }

    /// A volume's subvolume.
    pub fn volume_path(&self, volume_uuid: &str) -> PathBuf {
        self.mount_point().join("vols").join(volume_uuid)
    }

    /// A snapshot's read-only subvolume.
    pub fn snapshot_path(&self, volume_uuid: &str, snapshot_uuid: &str) -> PathBuf {
        self.mount_point()
            .join("snaps")
            .join(volume_uuid)
            .join(snapshot_uuid)
    }
}

/// Records by collection and key, as the backend last realised them.
#[derive(Debug, Clone, Default)]
struct Mirror(BTreeMap<String, BTreeMap<String, Value>>);

fn mirror_key(collection: &str, r: &Value) -> String {
    let svm = str_at(r, "/svm/uuid");
    match collection {
        "lun_maps" => format!("{}/{}", str_at(r, "/lun/uuid"), str_at(r, "/igroup/uuid")),
        "nvme_subsystem_maps" => format!(
            "{}/{}",
            str_at(r, "/subsystem/uuid"),
            str_at(r, "/namespace/uuid")
        ),
        coll::ISCSI_SERVICES
        | coll::NVME_SERVICES
        | coll::NFS_SERVICES
        | coll::CIFS_SERVICES
        | coll::FCP_SERVICES => svm,
        "iscsi_credentials" => format!("{svm}/{}", str_at(r, "/initiator")),
        coll::CIFS_SHARES => format!("{svm}/{}", str_at(r, "/name")),
        coll::EXPORT_POLICIES => format!("{svm}/{}", r["id"]),
        _ => match r.get("uuid").and_then(Value::as_str) {
            Some(u) => u.to_string(),
            None => str_at(r, "/name"),
        },
    }
}

impl Mirror {
    fn from_store(s: &Store) -> Self {
        let mut m = Mirror::default();
        for c in s.collection_names() {
            for (_, v) in s.iter(&c) {
                m.insert(&c, v.clone());
            }
        }
        m
    }

    fn insert(&mut self, c: &str, v: Value) {
        let k = mirror_key(c, &v);
        self.0.entry(c.to_string()).or_default().insert(k, v);
    }

    fn remove(&mut self, c: &str, v: &Value) {
        if let Some(m) = self.0.get_mut(c) {
            m.remove(&mirror_key(c, v));
        }
    }

    fn apply(&mut self, change: &Change) {
        match change {
            Change::Created { collection, record } => self.insert(collection, record.clone()),
            Change::Modified {
                collection,
                before,
                after,
            } => {
                self.remove(collection, before);
                self.insert(collection, after.clone());
            }
            Change::Deleted { collection, record } => self.remove(collection, record),
            _ => {}
        }
    }

    fn iter(&self, c: &str) -> impl Iterator<Item = &Value> {
        self.0.get(c).into_iter().flat_map(|m| m.values())
    }

    fn get(&self, c: &str, key: &str) -> Option<&Value> {
        self.0.get(c)?.get(key)
    }
}

/// CHAP passwords of one credential (memory only).
#[derive(Clone, Default)]
struct ChapPasswords {
    inbound: Option<SecretString>,
    outbound: Option<SecretString>,
}

#[derive(Default)]
struct State {
    mirror: Mirror,
    chap: BTreeMap<String, ChapPasswords>,
    /// Bind mounts made: mount point → source (empty when found at start).
    binds: BTreeMap<PathBuf, PathBuf>,
    exports_text: Option<String>,
    smb_text: Option<String>,
}

/// Which derived configurations a change touches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Areas {
    nas: bool,
    lio: bool,
    nvmet: bool,
}

impl Areas {
    const ALL: Areas = Areas {
        nas: true,
        lio: true,
        nvmet: true,
    };

    fn of(change: &Change) -> Areas {
        if matches!(change, Change::ChapSet { .. }) {
            return Areas {
                lio: true,
                ..Areas::default()
            };
        }
        if matches!(change, Change::FileCloned { .. }) {
            return Areas::default();
        }
        match change.collection() {
            coll::VOLUMES
            | coll::EXPORT_POLICIES
            | coll::CIFS_SHARES
            | coll::NFS_SERVICES
            | coll::CIFS_SERVICES => Areas {
                nas: true,
                ..Areas::default()
            },
            "luns" | "igroups" | "lun_maps" | "iscsi_credentials" | coll::ISCSI_SERVICES => Areas {
                lio: true,
                ..Areas::default()
            },
            "nvme_namespaces" | "nvme_subsystems" | "nvme_subsystem_maps" | coll::NVME_SERVICES => {
                Areas {
                    nvmet: true,
                    ..Areas::default()
                }
            }
            coll::SNAPSHOTS => Areas::default(),
            _ => Areas::ALL,
        }
    }
}

/// A step to undo when a later step fails.
#[derive(Debug)]
enum Undo {
    DeleteSubvolume(PathBuf),
    RemoveFile(PathBuf),
    /// Move the file back: (where it is now, where it was).
    Rename(PathBuf, PathBuf),
}

/// The kernel backend. See the [module documentation](self).
pub struct KernelBackend {
    cfg: KernelConfig,
    runner: Arc<dyn Runner>,
    state: tokio::sync::Mutex<State>,
}

impl fmt::Debug for KernelBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KernelBackend")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> KernelError {
    let path = path.to_path_buf();
    move |source| KernelError::Io { op, path, source }
}

fn lossy(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Mount points listed in a `/proc/self/mountinfo` text (octal escapes decoded).
pub fn mount_points(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape_octal(m)))
        .collect()
}

fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        // The kernel writes space, tab, newline and backslash as `\ooo`.
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let n = b[i + 1..i + 4]
                .iter()
                .fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
            if let Ok(n) = u8::try_from(n) {
                out.push(n);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn current_mounts() -> Vec<PathBuf> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|t| mount_points(&t))
        .unwrap_or_default()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn enabled(v: &Value) -> bool {
    v.get("enabled").and_then(Value::as_bool).unwrap_or(true)
}

fn has_service(lif: &Value, service: &str) -> bool {
    strings(&lif["services"]).iter().any(|s| s == service)
}

impl KernelBackend {
    /// A backend running host commands through `runner`.
    pub fn new(cfg: KernelConfig, runner: Arc<dyn Runner>) -> Self {
        KernelBackend {
            cfg,
            runner,
            state: tokio::sync::Mutex::new(State::default()),
        }
    }

    /// A backend running host commands with [`SystemRunner`].
    pub fn system(cfg: KernelConfig) -> Self {
        Self::new(cfg, Arc::new(SystemRunner::new()))
    }

    /// The configuration.
    pub fn config(&self) -> &KernelConfig {
        &self.cfg
    }

    async fn run(&self, step: &'static str, cmd: Command) -> Result<(), KernelError> {
        tracing::debug!(%cmd, step, "kernel backend");
        self.runner
            .run(&cmd)
            .await
            .map(|_| ())
            .map_err(|source| KernelError::Command { step, source })
    }

    async fn subvolume_delete(&self, path: &Path) -> Result<(), KernelError> {
        if std::fs::symlink_metadata(path).is_err() {
            return Ok(());
        }
        self.run(
            "delete subvolume",
            Command::new("btrfs").args(["subvolume", "delete", &lossy(path)]),
        )
        .await
    }

    /// Unmounts a junction; one that is no longer mounted counts as done.
    ///
    /// Right after an export is withdrawn and its client unmounted, knfsd can still hold
    /// the file system for a moment (export caches, the NFSv4 state of that client): a busy
    /// junction gets `exportfs -f` (flush the kernel's export caches) once and up to ten
    /// retries 200 ms apart before the error stands.
    async fn unmount(&self, path: &Path) -> Result<(), KernelError> {
        let mut retries = 0;
        loop {
            match self
                .run("unmount junction", Command::new("umount").arg(lossy(path)))
                .await
            {
                Ok(()) => return Ok(()),
                Err(_) if !current_mounts().iter().any(|m| m == path) => return Ok(()),
                Err(e) if retries >= 10 => return Err(e),
                Err(_) => {
                    if retries == 0 && self.cfg.exports_file.is_some() {
                        let _ = self
                            .run("exportfs -f", Command::new("exportfs").arg("-f"))
                            .await;
                    }
                    retries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
            }
        }
    }

    /// Unmounts the junction bind mounts and the btrfs file system (the loop device goes
    /// with it). The image and the state stay; a later start mounts them again.
    pub async fn teardown(&self) -> Result<(), KernelError> {
        let mut st = self.state.lock().await;
        let mut binds: Vec<PathBuf> = st.binds.keys().cloned().collect();
        binds.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for b in binds {
            self.unmount(&b).await?;
            st.binds.remove(&b);
        }
        let mnt = self.cfg.mount_point();
        if current_mounts().contains(&mnt) {
            self.run("unmount btrfs", Command::new("umount").arg(lossy(&mnt)))
                .await?;
        }
        Ok(())
    }

    async fn mount_btrfs(&self) -> Result<(), KernelError> {
        let root = &self.cfg.root;
        std::fs::create_dir_all(root).map_err(io("mkdir", root))?;
        let mnt = self.cfg.mount_point();
        std::fs::create_dir_all(&mnt).map_err(io("mkdir", &mnt))?;
        if !current_mounts().contains(&mnt) {
            let img = self.cfg.image();
            if !img.exists() {
                let f = std::fs::File::create(&img).map_err(io("create", &img))?;
                f.set_len(self.cfg.loop_size)
                    .map_err(io("truncate", &img))?;
                drop(f);
                self.run(
                    "mkfs.btrfs",
                    Command::new("mkfs.btrfs").args(["-q", "-f", &lossy(&img)]),
                )
                .await?;
            }
            self.run(
                "mount btrfs",
                Command::new("mount").args([
                    "-t",
                    "btrfs",
                    // discard: blocks freed by deleted volumes go back to the image's
                    // file system (a tmpfs in the lab would otherwise keep them in RAM).
                    "-o",
                    "loop,discard=async",
                    &lossy(&img),
                    &lossy(&mnt),
                ]),
            )
            .await?;
        }
        for d in ["vols", "snaps"] {
            let p = mnt.join(d);
            std::fs::create_dir_all(&p).map_err(io("mkdir", &p))?;
        }
        Ok(())
    }

    fn volume_dir(&self, vol_uuid: &str) -> Result<PathBuf, KernelError> {
        Ok(self.cfg.volume_path(names::uuid("volume uuid", vol_uuid)?))
    }

    /// The file of a LUN or namespace record (`location.logical_unit` or
    /// `location.namespace`, in its volume and optional qtree).
    fn block_file(&self, rec: &Value) -> Result<PathBuf, KernelError> {
        let mut p = self.volume_dir(&str_at(rec, "/location/volume/uuid"))?;
        if let Some(q) = rec.pointer("/location/qtree/name").and_then(Value::as_str) {
            if !q.is_empty() {
                p.push(names::component("qtree", q)?);
            }
        }
        let name = rec
            .pointer("/location/logical_unit")
            .or_else(|| rec.pointer("/location/namespace"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        p.push(names::component("LUN or namespace name", name)?);
        Ok(p)
    }

    fn size_of(rec: &Value) -> u64 {
        rec.pointer("/space/size")
            .and_then(Value::as_u64)
            .unwrap_or_else(|| u64_at(rec, "/size"))
    }

    async fn create_volume(&self, rec: &Value, undo: &mut Vec<Undo>) -> Result<(), KernelError> {
        let dst = self.volume_dir(&str_at(rec, "/uuid"))?;
        if dst.exists() {
            return Ok(());
        }
        let cmd = if rec.pointer("/clone/is_flexclone") == Some(&Value::Bool(true)) {
            let parent = str_at(rec, "/clone/parent_volume/uuid");
            let parent_dir = self.volume_dir(&parent)?;
            let snap = str_at(rec, "/clone/parent_snapshot/uuid");
            let src = if snap.is_empty() {
                parent_dir
            } else {
                self.cfg
                    .snapshot_path(&parent, names::uuid("snapshot uuid", &snap)?)
            };
            Command::new("btrfs").args(["subvolume", "snapshot", &lossy(&src), &lossy(&dst)])
        } else {
            Command::new("btrfs").args(["subvolume", "create", &lossy(&dst)])
        };
        self.run("create subvolume", cmd).await?;
        undo.push(Undo::DeleteSubvolume(dst));
        Ok(())
    }

    async fn delete_volume(&self, rec: &Value) -> Result<(), KernelError> {
        let uuid = str_at(rec, "/uuid");
        let dir = self.volume_dir(&uuid)?;
        let snaps = self.cfg.mount_point().join("snaps").join(&uuid);
        for s in std::fs::read_dir(&snaps)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.path())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
        {
            self.subvolume_delete(&s).await?;
        }
        if snaps.exists() {
            std::fs::remove_dir(&snaps).map_err(io("rmdir", &snaps))?;
        }
        self.subvolume_delete(&dir).await
    }

    async fn create_snapshot(&self, rec: &Value, undo: &mut Vec<Undo>) -> Result<(), KernelError> {
        let vol = str_at(rec, "/volume/uuid");
        let src = self.volume_dir(&vol)?;
        let dst = self
            .cfg
            .snapshot_path(&vol, names::uuid("snapshot uuid", &str_at(rec, "/uuid"))?);
        if dst.exists() {
            return Ok(());
        }
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent).map_err(io("mkdir", parent))?;
        }
        self.run(
            "create snapshot",
            Command::new("btrfs").args(["subvolume", "snapshot", "-r", &lossy(&src), &lossy(&dst)]),
        )
        .await?;
        undo.push(Undo::DeleteSubvolume(dst));
        Ok(())
    }

    async fn clone_file(
        &self,
        volume: &Value,
        source: &str,
        source_snapshot: Option<&str>,
        dest: &str,
    ) -> Result<(), KernelError> {
        let vol_uuid = str_at(volume, "/uuid");
        let base = self.volume_dir(&vol_uuid)?;
        let rel_to = |root: &Path, what: &'static str, p: &str| -> Result<PathBuf, KernelError> {
            let parts = names::abs_path(what, &format!("/{}", p.trim_start_matches('/')))?;
            if parts.is_empty() {
                return Err(KernelError::Name {
                    what,
                    value: p.to_string(),
                    reason: "empty path",
                });
            }
            Ok(parts.iter().fold(root.to_path_buf(), |acc, c| acc.join(c)))
        };
        let src_root = match source_snapshot {
            Some(snap) => self
                .cfg
                .snapshot_path(&vol_uuid, names::uuid("snapshot uuid", snap)?),
            None => base.clone(),
        };
        let src = rel_to(&src_root, "source path", source)?;
        let dst = rel_to(&base, "destination path", dest)?;
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent).map_err(io("mkdir", parent))?;
        }
        self.run(
            "clone file",
            Command::new("cp").args(["--reflink=always", "--", &lossy(&src), &lossy(&dst)]),
        )
        .await
    }

    fn create_block_file(&self, rec: &Value, undo: &mut Vec<Undo>) -> Result<(), KernelError> {
        let path = self.block_file(rec)?;
        if let Some(parent) = path.parent() {
            if !parent.exists() {
                return Err(KernelError::Missing {
                    what: "volume directory",
                    key: lossy(parent),
                });
            }
        }
        let existed = path.exists();
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io("create", &path))?;
        let size = Self::size_of(rec);
        if f.metadata().map(|m| m.len()).unwrap_or(0) < size {
            f.set_len(size).map_err(io("truncate", &path))?;
        }
        if !existed {
            undo.push(Undo::RemoveFile(path));
        }
        Ok(())
    }

    /// Renames a file; across subvolumes (where btrfs refuses a rename) it is reflinked and
    /// the original removed.
    async fn move_file(&self, from: &Path, to: &Path) -> Result<(), KernelError> {
        match std::fs::rename(from, to) {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(18) => {
                self.run(
                    "move file",
                    Command::new("cp").args(["--reflink=always", "--", &lossy(from), &lossy(to)]),
                )
                .await?;
                std::fs::remove_file(from).map_err(io("remove", from))
            }
            Err(e) => Err(io("rename", from)(e)),
        }
    }

    fn remove_block_file(&self, rec: &Value) -> Result<(), KernelError> {
        let path = self.block_file(rec)?;
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("remove", &path)(e)),
            _ => Ok(()),
        }
    }

    /// Steps that come before the derived configuration (creations).
    async fn pre_steps(&self, change: &Change, undo: &mut Vec<Undo>) -> Result<(), KernelError> {
        match change {
            Change::Created { collection, record } => match collection.as_str() {
                coll::VOLUMES => self.create_volume(record, undo).await,
                coll::SNAPSHOTS => self.create_snapshot(record, undo).await,
                "luns" | "nvme_namespaces" => self.create_block_file(record, undo),
                _ => Ok(()),
            },
            Change::Modified {
                collection,
                before,
                after,
            } if matches!(collection.as_str(), "luns" | "nvme_namespaces") => {
                let (from, to) = (self.block_file(before)?, self.block_file(after)?);
                if from != to && from.exists() {
                    self.move_file(&from, &to).await?;
                    undo.push(Undo::Rename(to, from));
                }
                // Growing only: the file keeps its data. (A running LIO backstore or
                // nvmet namespace keeps the size it was enabled with.)
                self.create_block_file(after, undo)
            }
            Change::FileCloned {
                volume,
                source_path,
                source_snapshot,
                destination_path,
            } => {
                self.clone_file(
                    volume,
                    source_path,
                    source_snapshot.as_deref(),
                    destination_path,
                )
                .await
            }
            _ => Ok(()),
        }
    }

    /// Steps that come after the derived configuration stopped using a thing (deletions).
    async fn post_steps(&self, change: &Change) -> Result<(), KernelError> {
        match change {
            Change::Deleted { collection, record } => match collection.as_str() {
                coll::VOLUMES => self.delete_volume(record).await,
                coll::SNAPSHOTS => {
                    let vol = str_at(record, "/volume/uuid");
                    let path = self.cfg.snapshot_path(
                        names::uuid("volume uuid", &vol)?,
                        names::uuid("snapshot uuid", &str_at(record, "/uuid"))?,
                    );
                    self.subvolume_delete(&path).await
                }
                "luns" | "nvme_namespaces" => self.remove_block_file(record),
                _ => Ok(()),
            },
            _ => Ok(()),
        }
    }

    async fn undo(&self, steps: Vec<Undo>) {
        for s in steps.into_iter().rev() {
            let r = match &s {
                Undo::DeleteSubvolume(p) => self.subvolume_delete(p).await,
                Undo::RemoveFile(p) => std::fs::remove_file(p).map_err(io("remove", p)),
                Undo::Rename(now, was) => self.move_file(now, was).await,
            };
            if let Err(e) = r {
                tracing::error!(step = ?s, error = %e, "kernel backend: undo failed; needs attention");
            }
        }
    }

    // ------------------------------------------------------------------ NAS

    /// Junction mount point → volume subvolume, for every volume with a junction path.
    fn desired_binds(&self, m: &Mirror) -> Result<BTreeMap<PathBuf, PathBuf>, KernelError> {
        let mut out = BTreeMap::new();
        let root = self.cfg.export_dir();
        for v in m.iter(coll::VOLUMES) {
            let j = str_at(v, "/nas/path");
            if j.is_empty() {
                continue;
            }
            let parts = names::abs_path("junction path", &j)?;
            if parts.is_empty() {
                continue;
            }
            let dst = parts.iter().fold(root.clone(), |acc, c| acc.join(c));
            out.insert(dst, self.volume_dir(&str_at(v, "/uuid"))?);
        }
        Ok(out)
    }

    fn exports(
        &self,
        m: &Mirror,
        binds: &BTreeMap<PathBuf, PathBuf>,
    ) -> Result<Vec<nfs::Export>, KernelError> {
        let mut out = Vec::new();
        let root = self.cfg.export_dir();
        for v in m.iter(coll::VOLUMES) {
            let j = str_at(v, "/nas/path");
            let Ok(parts) = names::abs_path("junction path", &j) else {
                continue;
            };
            if parts.is_empty() {
                continue;
            }
            let path = parts.iter().fold(root.clone(), |acc, c| acc.join(c));
            if !binds.contains_key(&path) {
                continue;
            }
            let svm = str_at(v, "/svm/uuid");
            let pname = v
                .pointer("/nas/export_policy/name")
                .and_then(Value::as_str)
                .unwrap_or("default");
            let Some(policy) = m
                .iter(coll::EXPORT_POLICIES)
                .find(|p| str_at(p, "/svm/uuid") == svm && str_at(p, "/name") == pname)
            else {
                continue;
            };
            let mut clients = Vec::new();
            for rule in policy["rules"].as_array().into_iter().flatten() {
                let matches: Vec<String> = rule["clients"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c["match"].as_str())
                    .map(|c| names::export_client("export client", c).map(str::to_string))
                    .collect::<Result<_, _>>()?;
                clients.extend(nfs::rule_clients(rule, &matches));
            }
            out.push(nfs::Export {
                path,
                fsid: names::uuid("volume uuid", &str_at(v, "/uuid"))?.to_string(),
                clients,
            });
        }
        Ok(out)
    }

    fn shares(&self, m: &Mirror) -> Result<Vec<smb::Share>, KernelError> {
        let root = self.cfg.export_dir();
        let mut out = Vec::new();
        for s in m.iter(coll::CIFS_SHARES) {
            let name = names::smb_word("share name", &str_at(s, "/name"))?.to_string();
            let parts = names::abs_path("share path", &str_at(s, "/path"))?;
            let path = parts.iter().fold(root.clone(), |acc, c| acc.join(c));
            let (read_only, valid_users) =
                smb::acl_access(s, |u| names::smb_word("share user", u).map(str::to_string))?;
            out.push(smb::Share {
                name,
                path,
                read_only,
                valid_users,
            });
        }
        Ok(out)
    }

    /// Renders the exports of `binds` and re-exports when the file changes.
    async fn sync_exports(
        &self,
        st: &mut State,
        m: &Mirror,
        binds: &BTreeMap<PathBuf, PathBuf>,
    ) -> Result<(), KernelError> {
        if let Some(file) = &self.cfg.exports_file {
            let text = nfs::render(&self.cfg.export_dir(), &self.exports(m, binds)?);
            if st.exports_text.as_deref() != Some(text.as_str()) {
                write_file(file, &text)?;
                st.exports_text = Some(text);
                self.run("exportfs", Command::new("exportfs").arg("-ra"))
                    .await?;
            }
        }
        Ok(())
    }

    async fn reconcile_nas(&self, st: &mut State, m: &Mirror) -> Result<(), KernelError> {
        let want = self.desired_binds(m)?;
        // Unmount deepest first what is no longer wanted (or points elsewhere).
        let mut gone: Vec<PathBuf> = st
            .binds
            .iter()
            .filter(|(dst, src)| want.get(*dst) != Some(*src))
            .map(|(d, _)| d.clone())
            .collect();
        gone.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        if !gone.is_empty() {
            // knfsd holds an exported mount busy: withdraw the exports of what goes before
            // unmounting it, or the unmount fails (seen in the lab on Linux 6.1).
            let kept: BTreeMap<PathBuf, PathBuf> = st
                .binds
                .iter()
                .filter(|(d, _)| !gone.contains(d))
                .map(|(d, src)| (d.clone(), src.clone()))
                .collect();
            self.sync_exports(st, m, &kept).await?;
        }
        for d in gone {
            self.unmount(&d).await?;
            st.binds.remove(&d);
            // Only empty directories we made go; a volume's own directory stays.
            let _ = std::fs::remove_dir(&d);
        }
        let mut new: Vec<(&PathBuf, &PathBuf)> = want
            .iter()
            .filter(|(d, _)| !st.binds.contains_key(*d))
            .collect();
        new.sort_by_key(|(p, _)| p.components().count());
        for (dst, src) in new {
            std::fs::create_dir_all(dst).map_err(io("mkdir", dst))?;
            self.run(
                "mount junction",
                Command::new("mount").args(["--bind", &lossy(src), &lossy(dst)]),
            )
            .await?;
            st.binds.insert(dst.clone(), src.clone());
        }
        let binds = st.binds.clone();
        self.sync_exports(st, m, &binds).await?;
        if let Some(file) = &self.cfg.smb_include {
            let text = smb::render(&self.shares(m)?);
            if st.smb_text.as_deref() != Some(text.as_str()) {
                write_file(file, &text)?;
                st.smb_text = Some(text);
                self.run(
                    "reload samba",
                    Command::new("smbcontrol").args(["smbd", "reload-config"]),
                )
                .await?;
            }
        }
        Ok(())
    }

    // ------------------------------------------------------------------ SAN

    fn lif_addrs(m: &Mirror, svm: &str, service: &str) -> Result<BTreeSet<IpAddr>, KernelError> {
        m.iter(coll::IP_INTERFACES)
            .filter(|l| str_at(l, "/svm/uuid") == svm && enabled(l) && has_service(l, service))
            .map(|l| names::ip("LIF address", &str_at(l, "/ip/address")))
            .collect()
    }

    fn lio_model(
        &self,
        m: &Mirror,
        chap: &BTreeMap<String, ChapPasswords>,
    ) -> Result<lio::LioModel, KernelError> {
        let mut model = lio::LioModel::default();
        for lun in m.iter("luns") {
            let name = names::uuid("LUN uuid", &str_at(lun, "/uuid"))?.to_string();
            let serial = str_at(lun, "/serial_number");
            if serial.is_empty() || !serial.chars().all(|c| c.is_ascii_graphic()) {
                return Err(KernelError::Name {
                    what: "LUN serial",
                    value: serial,
                    reason: "printable ASCII without white space",
                });
            }
            model.backstores.insert(
                name.clone(),
                lio::Backstore {
                    name,
                    file: self.block_file(lun)?,
                    size: Self::size_of(lun),
                    serial,
                },
            );
        }
        for svc in m.iter(coll::ISCSI_SERVICES) {
            if !enabled(svc) {
                continue;
            }
            let svm = str_at(svc, "/svm/uuid");
            let iqn = names::iscsi_name("target name", &str_at(svc, "/target/name"))?.to_string();
            let mut t = lio::Target {
                iqn: iqn.clone(),
                portals: Self::lif_addrs(m, &svm, "data_iscsi")?,
                acls: BTreeMap::new(),
            };
            let mut igroup_inits: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for ig in m.iter("igroups") {
                if str_at(ig, "/svm/uuid") != svm
                    || !matches!(str_at(ig, "/protocol").as_str(), "iscsi" | "mixed" | "")
                {
                    continue;
                }
                let mut inits = Vec::new();
                for i in ig["initiators"].as_array().into_iter().flatten() {
                    let n = str_at(i, "/name");
                    if n.starts_with("iqn.") || n.starts_with("eui.") {
                        inits.push(names::iscsi_name("initiator", &n)?.to_string());
                    }
                }
                igroup_inits.insert(str_at(ig, "/uuid"), inits);
            }
            for inits in igroup_inits.values() {
                for i in inits {
                    t.acls.entry(i.clone()).or_default();
                }
            }
            for map in m.iter("lun_maps") {
                if str_at(map, "/svm/uuid") != svm {
                    continue;
                }
                let lun = str_at(map, "/lun/uuid");
                if !model.backstores.contains_key(&lun) {
                    continue;
                }
                let id = map["logical_unit_number"].as_u64().unwrap_or(0) as u32;
                for i in igroup_inits
                    .get(&str_at(map, "/igroup/uuid"))
                    .into_iter()
                    .flatten()
                {
                    t.acls
                        .entry(i.clone())
                        .or_default()
                        .luns
                        .insert(id, lun.clone());
                }
            }
            // Credentials: CHAP needs its passwords (kept in memory only); deny drops the ACL.
            let inits: Vec<String> = t.acls.keys().cloned().collect();
            for i in inits {
                let key = format!("{svm}/{i}");
                let Some(cred) = m.get("iscsi_credentials", &key) else {
                    continue;
                };
                match str_at(cred, "/authentication_type").as_str() {
                    "deny" => {
                        t.acls.remove(&i);
                    }
                    "chap" => {
                        let pw = chap.get(&key);
                        match pw.and_then(|p| p.inbound.clone()) {
                            Some(password) => {
                                let user = names::chap_user(
                                    "CHAP user",
                                    &str_at(cred, "/chap/inbound/user"),
                                )?
                                .to_string();
                                let ou = str_at(cred, "/chap/outbound/user");
                                let mutual =
                                    match (ou.is_empty(), pw.and_then(|p| p.outbound.clone())) {
                                        (false, Some(op)) => Some((
                                            names::chap_user("CHAP outbound user", &ou)?
                                                .to_string(),
                                            op,
                                        )),
                                        _ => None,
                                    };
                                if let Some(a) = t.acls.get_mut(&i) {
                                    a.chap = Some(lio::AclChap {
                                        user,
                                        password,
                                        mutual,
                                    });
                                }
                            }
                            None => {
                                tracing::warn!(initiator = %i, "CHAP password unknown (set before a restart?): initiator denied until the credential is set again");
                                t.acls.remove(&i);
                            }
                        }
                    }
                    _ => {}
                }
            }
            model.targets.insert(iqn, t);
        }
        Ok(model)
    }

    fn nvmet_model(&self, m: &Mirror) -> Result<nvmet::NvmetModel, KernelError> {
        let mut model = nvmet::NvmetModel::default();
        for svc in m.iter(coll::NVME_SERVICES) {
            if !enabled(svc) {
                continue;
            }
            let svm = str_at(svc, "/svm/uuid");
            let ports = Self::lif_addrs(m, &svm, "data_nvme_tcp")?;
            for sub in m.iter("nvme_subsystems") {
                if str_at(sub, "/svm/uuid") != svm {
                    continue;
                }
                let nqn = names::nqn("subsystem NQN", &str_at(sub, "/target_nqn"))?.to_string();
                let hosts = sub["hosts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|h| names::nqn("host NQN", &str_at(h, "/nqn")).map(str::to_string))
                    .collect::<Result<_, _>>()?;
                let sub_uuid = str_at(sub, "/uuid");
                let mut namespaces = BTreeMap::new();
                for map in m.iter("nvme_subsystem_maps") {
                    if str_at(map, "/subsystem/uuid") != sub_uuid {
                        continue;
                    }
                    let nsid = str_at(map, "/nsid");
                    let Some(id) = nsid
                        .strip_suffix('h')
                        .and_then(|h| u32::from_str_radix(h, 16).ok())
                    else {
                        return Err(KernelError::Name {
                            what: "NSID",
                            value: nsid,
                            reason: "expected 8 hex digits and \"h\"",
                        });
                    };
                    let ns_uuid = str_at(map, "/namespace/uuid");
                    let Some(ns) = m.get("nvme_namespaces", &ns_uuid) else {
                        return Err(KernelError::Missing {
                            what: "namespace",
                            key: ns_uuid,
                        });
                    };
                    namespaces.insert(
                        id,
                        nvmet::Namespace {
                            file: self.block_file(ns)?,
                            uuid: names::uuid("namespace uuid", &ns_uuid)?.to_string(),
                        },
                    );
                }
                let serial = str_at(sub, "/serial_number");
                model.subsystems.insert(
                    nqn,
                    nvmet::Subsystem {
                        serial: (!serial.is_empty()
                            && serial.chars().all(|c| c.is_ascii_graphic()))
                        .then_some(serial),
                        hosts,
                        namespaces,
                        ports: ports.clone(),
                    },
                );
            }
        }
        Ok(model)
    }

    async fn reconcile(&self, st: &mut State, m: &Mirror, areas: Areas) -> Result<(), KernelError> {
        if areas.nas {
            self.reconcile_nas(st, m).await?;
        }
        if areas.lio && self.cfg.lio {
            let model = self.lio_model(m, &st.chap)?;
            lio::reconcile(&self.cfg.configfs, &model)?;
        }
        if areas.nvmet && self.cfg.nvmet {
            let model = self.nvmet_model(m)?;
            nvmet::reconcile(&self.cfg.configfs, &model)?;
        }
        Ok(())
    }

    async fn realise(
        &self,
        st: &mut State,
        next: &Mirror,
        change: &Change,
    ) -> Result<(), KernelError> {
        let areas = Areas::of(change);
        let mut undo = Vec::new();
        let mut result = self.pre_steps(change, &mut undo).await;
        if result.is_ok() {
            result = self.reconcile(st, next, areas).await;
        }
        if result.is_ok() {
            result = self.post_steps(change).await;
        }
        if let Err(e) = &result {
            tracing::warn!(error = %e, "kernel backend: change refused; undoing its steps");
            let before = st.mirror.clone();
            if let Err(e2) = self.reconcile(st, &before, areas).await {
                tracing::error!(error = %e2, "kernel backend: restoring the previous configuration failed; needs attention");
            }
            self.undo(undo).await;
        }
        result
    }
}

fn write_file(path: &Path, text: &str) -> Result<(), KernelError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io("mkdir", parent))?;
    }
    host_storage::files::atomic_write(path, text.as_bytes(), 0o644).map_err(|source| {
        KernelError::File {
            path: path.to_path_buf(),
            source,
        }
    })
}

#[async_trait]
impl Backend for KernelBackend {
    async fn start(&self, state: &Store) -> Result<(), BackendError> {
        self.mount_btrfs().await?;
        let mut st = self.state.lock().await;
        let mirror = Mirror::from_store(state);
        // Bind mounts left by an earlier run are taken over (and remade).
        let export_dir = self.cfg.export_dir();
        for mp in current_mounts() {
            if mp.starts_with(&export_dir) && mp != export_dir {
                st.binds.insert(mp, PathBuf::new());
            }
        }
        // Subvolumes of volumes the state no longer has go; missing ones are made.
        let known: BTreeSet<String> = mirror
            .iter(coll::VOLUMES)
            .map(|v| str_at(v, "/uuid"))
            .collect();
        let mut undo = Vec::new();
        let mut vols: Vec<&Value> = mirror.iter(coll::VOLUMES).collect();
        // Parents before their FlexClones.
        vols.sort_by_key(|v| v.pointer("/clone/is_flexclone") == Some(&Value::Bool(true)));
        for v in vols {
            self.create_volume(v, &mut undo).await?;
        }
        for s in mirror.iter(coll::SNAPSHOTS) {
            self.create_snapshot(s, &mut undo).await?;
        }
        for r in mirror.iter("luns").chain(mirror.iter("nvme_namespaces")) {
            self.create_block_file(r, &mut undo)?;
        }
        let vols_dir = self.cfg.mount_point().join("vols");
        let stale: Vec<PathBuf> = std::fs::read_dir(&vols_dir)
            .map_err(io("read", &vols_dir))?
            .filter_map(Result::ok)
            .filter(|e| !known.contains(&*e.file_name().to_string_lossy()))
            .map(|e| e.path())
            .collect();
        self.reconcile(&mut st, &mirror, Areas::ALL).await?;
        for p in stale {
            let snaps = self
                .cfg
                .mount_point()
                .join("snaps")
                .join(p.file_name().unwrap_or_default());
            for s in std::fs::read_dir(&snaps)
                .map(|rd| {
                    rd.filter_map(Result::ok)
                        .map(|e| e.path())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
            {
                self.subvolume_delete(&s).await?;
            }
            let _ = std::fs::remove_dir(&snaps);
            self.subvolume_delete(&p).await?;
        }
        st.mirror = mirror;
        Ok(())
    }

    async fn apply(&self, change: &Change) -> Result<(), BackendError> {
        let mut st = self.state.lock().await;
        if let Change::ChapSet {
            svm_uuid,
            initiator,
            inbound_password,
            outbound_password,
            ..
        } = change
        {
            let key = format!("{svm_uuid}/{initiator}");
            let old = st.chap.get(&key).cloned();
            let mut pw = old.clone().unwrap_or_default();
            if let Some(p) = inbound_password {
                pw.inbound = Some(p.secret().clone());
            }
            if let Some(p) = outbound_password {
                pw.outbound = Some(p.secret().clone());
            }
            st.chap.insert(key.clone(), pw);
            let m = st.mirror.clone();
            if let Err(e) = self.realise(&mut st, &m, change).await {
                match old {
                    Some(o) => st.chap.insert(key, o),
                    None => st.chap.remove(&key),
                };
                // realise restored the configuration with the new passwords; put
                // the old ones back too.
                if let Err(e2) = self.reconcile(&mut st, &m, Areas::of(change)).await {
                    tracing::error!(error = %e2, "kernel backend: restoring CHAP failed; needs attention");
                }
                return Err(e.into());
            }
            return Ok(());
        }
        let mut next = st.mirror.clone();
        next.apply(change);
        self.realise(&mut st, &next, change).await?;
        st.mirror = next;
        if let Change::Deleted { collection, record } = change {
            if collection == "iscsi_credentials" {
                let key = format!(
                    "{}/{}",
                    str_at(record, "/svm/uuid"),
                    str_at(record, "/initiator")
                );
                st.chap.remove(&key);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_mount_points_are_unescaped() {
        let text = "36 25 0:32 / /sys/kernel/config rw,nosuid - configfs configfs rw\n\
                    90 36 7:0 / /tmp/a\\040b rw - btrfs /dev/loop0 rw\n\
                    91 36 7:0 / /tmp/\\134x\\09 rw - btrfs /dev/loop0 rw\n";
        assert_eq!(
            mount_points(text),
            vec![
                PathBuf::from("/sys/kernel/config"),
                PathBuf::from("/tmp/a b"),
                PathBuf::from("/tmp/\\x\\09"),
            ]
        );
    }

    #[test]
    fn backend_errors_carry_code_and_cause_without_secrets() {
        let e = KernelError::Name {
            what: "share name",
            value: "a]b".into(),
            reason: "bad",
        };
        let b = BackendError::from(e);
        assert_eq!(b.code, BACKEND_FAILURE_CODE);
        assert_eq!(
            b.message,
            "kernel backend: share name \"a]b\" cannot be used on the host: bad"
        );
    }
}
