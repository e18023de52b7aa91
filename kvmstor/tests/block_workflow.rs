//! Block datastore (iSCSI, FC, NVMe/TCP; OCFS2) attach/detach against the in-process ONTAP simulator,
//! scratch host roots with a synthetic sysfs, and libvirt's `test:///default`: a failure
//! injected at every step k, a crash at every step k followed by `recover`, idempotent
//! re-apply, detach, two hosts.
//!
//! This machine has no iSCSI initiator, multipathd, o2cb or mkfs.ocfs2 to spare, so host
//! commands run through `FakeKernel`, a fake runner that plays open-iscsi, the SCSI layer,
//! multipathd, nvme-cli, o2cb and the OCFS2 tools on the scratch root: a login makes the
//! session's sysfs tree, a write to a SCSI host's `scan` file (an iSCSI session's, or an FC
//! HBA's behind a remote port) makes the disks of the LUNs the simulator maps to the host's
//! IQN or WWPN (VPD serial, NAA WWID) and their multipath map, a write to a disk's `delete`
//! file removes it, `multipath -f` removes a map, `nvme connect` makes a controller and the
//! native-multipath head of every namespace the simulator maps to a subsystem holding the
//! host's NQN, `nvme disconnect` removes them, `mount`/`umount` edit the scratch mountinfo. The lab runs the real path (tests named
//! `..._with_fake_kernel`).

mod support;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use host_storage::{Command, Output, Runner};
use kvmstor::block::{BlockDatastore, BlockProtocol, BlockStep};
use kvmstor::saga::{recover, LockRegistry, RecoverMode, RunOutcome, RunReport, RunStatus, Saga};
use kvmstor::{Env, Error, Host};
use libvirt_pools::{Libvirt, PoolDef};
use ontap_client::{Client, Query};
use ontap_sim::{ApiError, Fault, SimServer};
use support::{
    crash, crash_cases, labels, rpc_failure, CrashCase, Frozen, TreeOpts, FSTAB, ROOT_MOUNT,
};

const TARGET: &str = "iqn.1992-08.com.netapp:sn";
const FOREIGN_COROSYNC: &str = "totem {\n\tversion: 2\n\tcluster_name: kvmstor\n\ttransport: knet\n\tcrypto_cipher: none\n\tcrypto_hash: none\n}\n\nnodelist {\n\tnode {\n\t\tname: other\n\t\tnodeid: 1\n\t\tring0_addr: 10.9.9.9\n\t}\n}\n\nquorum {\n\tprovider: corosync_votequorum\n}\n";

/// What the shared LUNs carry (a file system made on one host is seen by all).
#[derive(Debug, Default)]
struct San {
    /// Device identity (WWID or namespace UUID) -> (label, UUID) after mkfs.
    formatted: Mutex<HashMap<String, (String, String)>>,
    /// Device identity -> file-system type, for those made with mkfs.gfs2.
    gfs2: Mutex<std::collections::HashSet<String>>,
}

#[derive(Debug, Default)]
struct KState {
    calls: Vec<String>,
    fail: Option<(String, String, usize)>,
    seen: usize,
    /// (target, portal) -> settings.
    records: BTreeMap<(String, String), BTreeMap<String, String>>,
    /// (sid, target, portal).
    sessions: Vec<(u32, String, String)>,
    next_sid: u32,
    next_sd: u32,
    next_dm: u32,
    online: bool,
    /// systemd units: (enabled, active).
    units: BTreeMap<String, (bool, bool)>,
    /// Make no multipath map (the wait for it times out).
    no_map: bool,
    /// Show no namespace on NVMe connects (the wait for it times out).
    no_ns: bool,
    /// Answer this many `multipath -f` calls with "map in use" (udev probes still hold it).
    busy_flushes: usize,
    next_ctrl: u32,
}

/// Plays the kernel and the storage tools of one host on its scratch root.
#[derive(Debug)]
struct FakeKernel {
    root: PathBuf,
    /// IQN and FC WWPN.
    initiators: Vec<String>,
    nqn: String,
    client: Client,
    san: Arc<San>,
    st: Mutex<KState>,
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn mkdir(p: &Path) {
    std::fs::create_dir_all(p).unwrap();
}

fn list(p: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(p)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

impl FakeKernel {
    fn sys(&self, rel: &str) -> PathBuf {
        self.root.join("sys").join(rel)
    }

    /// Fail the `nth` call of `program` whose arguments contain `needle`.
    fn fail(&self, program: &str, needle: &str, nth: usize) {
        let mut st = self.st.lock().unwrap();
        st.fail = Some((program.into(), needle.into(), nth));
        st.seen = 0;
    }

    /// Whether this `multipath -f` answers "map in use" (counting it down).
    fn take_busy_flush(&self) -> bool {
        let mut st = self.st.lock().unwrap();
        let busy = st.busy_flushes > 0;
        st.busy_flushes = st.busy_flushes.saturating_sub(1);
        busy
    }

    fn calls(&self) -> Vec<String> {
        self.st.lock().unwrap().calls.clone()
    }

    fn online(&self) -> bool {
        self.st.lock().unwrap().online
    }

    fn records(&self) -> usize {
        self.st.lock().unwrap().records.len()
    }

    /// (LUN id, serial) of every LUN the simulator maps to an igroup holding this IQN.
    async fn mapped(&self) -> Vec<(u64, String)> {
        let groups = self
            .client
            .igroups()
            .list_all(&Query::new().fields(["name", "initiators"]))
            .await
            .unwrap();
        let names: Vec<String> = groups
            .iter()
            .filter(|g| self.initiators.iter().any(|i| g.has_initiator(i)))
            .filter_map(|g| g.name.clone())
            .collect();
        let maps = self
            .client
            .lun_maps()
            .list_all(&Query::new().fields(["lun", "igroup", "logical_unit_number"]))
            .await
            .unwrap();
        let mut out = Vec::new();
        for m in maps {
            let group = m.igroup.as_ref().and_then(|g| g.name.clone()).unwrap();
            if !names.contains(&group) {
                continue;
            }
            let lun = m.lun.as_ref().and_then(|l| l.name.clone()).unwrap();
            let found = self
                .client
                .luns()
                .find(
                    &Query::new()
                        .filter("name", &lun)
                        .fields(["serial_number", "name"]),
                )
                .await
                .unwrap();
            if let Some(serial) = found.and_then(|l| l.serial_number) {
                out.push((u64::from(m.logical_unit_number.unwrap()), serial));
            }
        }
        out
    }

    fn login(&self, target: &str, portal: &str) {
        let mut st = self.st.lock().unwrap();
        st.next_sid += 1;
        let sid = st.next_sid;
        let host = sid + 10;
        st.sessions.push((sid, target.into(), portal.into()));
        drop(st);
        let (addr, port) = portal.rsplit_once(':').unwrap();
        let s = self.sys(&format!("class/iscsi_session/session{sid}"));
        mkdir(&s);
        std::fs::write(s.join("targetname"), format!("{target}\n")).unwrap();
        std::fs::write(s.join("tpgt"), "1030\n").unwrap();
        std::fs::write(s.join("state"), "LOGGED_IN\n").unwrap();
        let dev = self.sys(&format!("devices/platform/host{host}/session{sid}"));
        mkdir(&dev);
        std::os::unix::fs::symlink(&dev, s.join("device")).unwrap();
        let c = self.sys(&format!("class/iscsi_connection/connection{sid}:0"));
        mkdir(&c);
        std::fs::write(c.join("persistent_address"), format!("{addr}\n")).unwrap();
        std::fs::write(c.join("persistent_port"), format!("{port}\n")).unwrap();
        let h = self.sys(&format!("class/scsi_host/host{host}"));
        mkdir(&h);
        std::fs::write(h.join("scan"), "").unwrap();
    }

    fn logout(&self, target: &str, portal: &str) {
        let mut st = self.st.lock().unwrap();
        let Some(i) = st
            .sessions
            .iter()
            .position(|(_, t, p)| t == target && p == portal)
        else {
            return;
        };
        let (sid, _, _) = st.sessions.remove(i);
        drop(st);
        let host = sid + 10;
        for rel in [
            format!("class/iscsi_session/session{sid}"),
            format!("class/iscsi_connection/connection{sid}:0"),
            format!("class/scsi_host/host{host}"),
            format!("devices/platform/host{host}"),
        ] {
            let _ = std::fs::remove_dir_all(self.sys(&rel));
        }
    }

    /// Makes the disk of LUN `lun` (serial `serial`) on session `sid`, and its map.
    fn add_disk(&self, sid: u32, lun: u64, serial: &str) {
        let host = sid + 10;
        self.add_disk_at(
            &self.sys(&format!(
                "devices/platform/host{host}/session{sid}/target{host}:0:0/{host}:0:0:{lun}"
            )),
            serial,
        );
    }

    /// Makes a SCSI disk at logical-unit directory `lun_dir`, and its map.
    fn add_disk_at(&self, lun_dir: &Path, serial: &str) {
        if lun_dir.exists() {
            return;
        }
        let (sd, no_map) = {
            let mut st = self.st.lock().unwrap();
            st.next_sd += 1;
            (
                format!("sd{}", char::from(b'a' + u8::try_from(st.next_sd).unwrap())),
                st.no_map,
            )
        };
        mkdir(&lun_dir.join("block").join(&sd));
        let mut page = vec![0u8, 0x80, 0, u8::try_from(serial.len()).unwrap()];
        page.extend_from_slice(serial.as_bytes());
        std::fs::write(lun_dir.join("vpd_pg80"), page).unwrap();
        std::fs::write(
            lun_dir.join("wwid"),
            format!("naa.600a0980{}\n", hex(serial)),
        )
        .unwrap();
        std::fs::write(lun_dir.join("delete"), "").unwrap();
        std::fs::write(lun_dir.join("rescan"), "").unwrap();
        let block = self.sys(&format!("block/{sd}"));
        mkdir(&block);
        std::os::unix::fs::symlink(lun_dir, block.join("device")).unwrap();
        if no_map {
            return;
        }
        let uuid = format!("mpath-3600a0980{}", hex(serial));
        let dm = list(&self.sys("block"))
            .into_iter()
            .filter(|n| n.starts_with("dm-"))
            .find(|n| {
                std::fs::read_to_string(self.sys(&format!("block/{n}/dm/uuid")))
                    .is_ok_and(|u| u.trim() == uuid)
            });
        let dm = dm.unwrap_or_else(|| {
            let n = {
                let mut st = self.st.lock().unwrap();
                st.next_dm += 1;
                st.next_dm
            };
            let name = format!("dm-{n}");
            let d = self.sys(&format!("block/{name}"));
            mkdir(&d.join("dm"));
            mkdir(&d.join("slaves"));
            mkdir(&d.join("holders"));
            std::fs::write(d.join("dm/uuid"), format!("{uuid}\n")).unwrap();
            std::fs::write(d.join("dm/name"), format!("3600a0980{}\n", hex(serial))).unwrap();
            name
        });
        std::fs::write(self.sys(&format!("block/{dm}/slaves/{sd}")), "").unwrap();
    }

    fn remove_disk(&self, sd: &str) {
        let block = self.sys(&format!("block/{sd}"));
        if let Ok(lun_dir) = std::fs::read_link(block.join("device")) {
            let _ = std::fs::remove_dir_all(lun_dir);
        }
        let _ = std::fs::remove_dir_all(&block);
        for n in list(&self.sys("block")) {
            let _ = std::fs::remove_file(self.sys(&format!("block/{n}/slaves/{sd}")));
        }
    }

    /// One round of the kernel's reactions to sysfs writes.
    async fn tick(&self) {
        for h in list(&self.sys("class/scsi_host")) {
            let scan = self.sys(&format!("class/scsi_host/{h}/scan"));
            let Ok(text) = std::fs::read_to_string(&scan) else {
                continue;
            };
            if text.trim().is_empty() {
                continue;
            }
            std::fs::write(&scan, "").unwrap();
            let host: u32 = h.trim_start_matches("host").parse().unwrap();
            // Writes append without a separator ("0 0 3" then "0 1 3" reads "0 0 30 1 3"):
            // the last word is the LUN; an FC HBA then scans behind every remote port.
            let words: Vec<&str> = text.split_whitespace().collect();
            let want = words.last().copied().unwrap_or("-").to_owned();
            for (id, serial) in self.mapped().await {
                if want != "-" && want != id.to_string() {
                    continue;
                }
                if host >= 10 {
                    self.add_disk(host - 10, id, &serial);
                } else {
                    for rp in list(&self.sys("class/fc_remote_ports")) {
                        let t = rp.rsplit('-').next().unwrap();
                        self.add_disk_at(
                            &self.sys(&format!(
                                "devices/pci0000:00/host{host}/{rp}/target{host}:0:{t}/{host}:0:{t}:{id}"
                            )),
                            &serial,
                        );
                    }
                }
            }
        }
        for sd in list(&self.sys("block")) {
            if !sd.starts_with("sd") {
                continue;
            }
            let del = self.sys(&format!("block/{sd}/device/delete"));
            if std::fs::read_to_string(&del).is_ok_and(|t| !t.is_empty()) {
                self.remove_disk(&sd);
            }
        }
    }

    /// The identity of a device: a map's WWID or a namespace's UUID.
    fn ident_of_dev(&self, dev: &str) -> Option<String> {
        let name = Path::new(dev).file_name()?.to_str()?;
        if let Ok(uuid) = std::fs::read_to_string(self.sys(&format!("block/{name}/uuid"))) {
            return Some(uuid.trim().to_owned());
        }
        let uuid = std::fs::read_to_string(self.sys(&format!("block/{name}/dm/uuid"))).ok()?;
        Some(uuid.trim().trim_start_matches("mpath-").to_owned())
    }

    /// UUIDs of the namespaces mapped to the subsystem `nqn` if it holds this host's NQN.
    async fn namespaces_for(&self, nqn: &str) -> Vec<String> {
        let subs = self
            .client
            .nvme_subsystems()
            .list_all(&Query::new().fields(["name", "hosts", "target_nqn"]))
            .await
            .unwrap();
        let Some(sub) = subs
            .iter()
            .find(|x| x.target_nqn.as_deref() == Some(nqn) && x.has_host(&self.nqn))
        else {
            return Vec::new();
        };
        let maps = self
            .client
            .nvme_subsystem_maps()
            .list_all(&Query::new().fields(["subsystem", "namespace"]))
            .await
            .unwrap();
        maps.iter()
            .filter(|m| m.subsystem.as_ref().and_then(|x| x.name.as_deref()) == sub.name.as_deref())
            .filter_map(|m| m.namespace.as_ref().and_then(|n| n.uuid.clone()))
            .collect()
    }

    async fn nvme_connect(&self, addr: &str, nqn: &str) {
        let (k, no_ns) = {
            let mut st = self.st.lock().unwrap();
            let k = st.next_ctrl;
            st.next_ctrl += 1;
            (k, st.no_ns)
        };
        let c = self.sys(&format!("class/nvme/nvme{k}"));
        mkdir(&c);
        std::fs::write(c.join("subsysnqn"), format!("{nqn}\n")).unwrap();
        std::fs::write(c.join("transport"), "tcp\n").unwrap();
        std::fs::write(c.join("address"), format!("traddr={addr},trsvcid=4420\n")).unwrap();
        std::fs::write(c.join("state"), "live\n").unwrap();
        if no_ns {
            return;
        }
        let subsys = self.sys("class/nvme-subsystem/nvme-subsys0");
        mkdir(&subsys);
        std::fs::write(subsys.join("subsysnqn"), format!("{nqn}\n")).unwrap();
        for (i, u) in self.namespaces_for(nqn).await.into_iter().enumerate() {
            let ns = format!("nvme0n{}", i + 1);
            mkdir(&subsys.join(&ns));
            let b = self.sys(&format!("block/{ns}"));
            mkdir(&b);
            std::fs::write(b.join("uuid"), format!("{u}\n")).unwrap();
            std::fs::write(b.join("dev"), format!("259:{i}\n")).unwrap();
        }
    }

    fn nvme_disconnect(&self, dev: &str) {
        let name = Path::new(dev).file_name().unwrap().to_str().unwrap();
        let c = self.sys(&format!("class/nvme/{name}"));
        let nqn = std::fs::read_to_string(c.join("subsysnqn")).unwrap_or_default();
        std::fs::remove_dir_all(&c).unwrap();
        let left = list(&self.sys("class/nvme")).into_iter().any(|n| {
            std::fs::read_to_string(self.sys(&format!("class/nvme/{n}/subsysnqn")))
                .is_ok_and(|x| x == nqn)
        });
        if !left {
            let subsys = self.sys("class/nvme-subsystem/nvme-subsys0");
            for ns in list(&subsys).into_iter().filter(|n| n.starts_with("nvme")) {
                let _ = std::fs::remove_dir_all(self.sys(&format!("block/{ns}")));
            }
            let _ = std::fs::remove_dir_all(subsys);
        }
    }

    fn mountinfo(&self) -> PathBuf {
        self.root.join("proc/self/mountinfo")
    }
}

#[async_trait::async_trait]
impl Runner for FakeKernel {
    async fn run(&self, cmd: &Command) -> host_storage::Result<Output> {
        let args: Vec<String> = cmd
            .get_args()
            .iter()
            .map(|a| a.expose().to_owned())
            .collect();
        {
            let mut st = self.st.lock().unwrap();
            st.calls.push(cmd.to_string());
            if let Some((program, needle, nth)) = st.fail.clone() {
                if program == cmd.program() && args.join(" ").contains(&needle) {
                    st.seen += 1;
                    if st.seen == nth {
                        return cmd.check(Output::exit(5, "", "injected failure"));
                    }
                }
            }
        }
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = match (cmd.program(), a.as_slice()) {
            ("multipathd", ["show", "daemon"]) => Output::success("pid 1234 running\n"),
            ("multipathd", ["reconfigure"]) => Output::success("ok\n"),
            ("multipathd", ["resize", "map", _]) => Output::success("ok\n"),
            ("tunefs.ocfs2", ["-y", "-S", _]) => Output::success(""),
            ("debugfs.ocfs2", ["-R", "stats", dev]) => {
                let id = self.ident_of_dev(dev).unwrap_or_default();
                let (label, uuid) = self
                    .san
                    .formatted
                    .lock()
                    .unwrap()
                    .get(&id)
                    .cloned()
                    .unwrap();
                Output::success(format!(
                    "\tRevision: 0.90\n\tLabel: {label}\n\tUUID: {}\n\tMax Node Slots: 4\n\tBlock Size Bits: 12   Cluster Size Bits: 20\n",
                    uuid.replace('-', "").to_ascii_uppercase()
                ))
            }
            ("tunefs.ocfs2", ["--cloned-volume", "-y", dev]) => {
                let id = self.ident_of_dev(dev).unwrap_or_default();
                let mut f = self.san.formatted.lock().unwrap();
                let e = f.get_mut(&id).unwrap();
                e.0 = format!("{}-cloned", e.0);
                e.1 = "0c1a2b3c-4d5e-4f60-8172-839405a6b7c8".into();
                Output::success("")
            }
            ("tunefs.ocfs2", ["-L", label, dev]) => {
                let id = self.ident_of_dev(dev).unwrap_or_default();
                self.san.formatted.lock().unwrap().get_mut(&id).unwrap().0 = (*label).to_owned();
                Output::success("")
            }
            ("nvme", ["ns-rescan", _]) => Output::success(""),
            ("iscsiadm", ["-m", "session"]) => {
                let st = self.st.lock().unwrap();
                if st.sessions.is_empty() {
                    Output::exit(21, "", "iscsiadm: No active sessions.\n")
                } else {
                    Output::success(
                        st.sessions
                            .iter()
                            .map(|(sid, t, p)| format!("tcp: [{sid}] {p},1030 {t} (non-flash)\n"))
                            .collect::<String>(),
                    )
                }
            }
            ("iscsiadm", ["-m", "node", "-T", t, "-p", p]) => {
                let st = self.st.lock().unwrap();
                match st.records.get(&((*t).into(), (*p).into())) {
                    Some(r) => Output::success(
                        r.iter()
                            .map(|(k, v)| format!("{k} = {v}\n"))
                            .collect::<String>(),
                    ),
                    None => Output::exit(21, "", "iscsiadm: No records found\n"),
                }
            }
            ("iscsiadm", ["-m", "node", "-T", t, "-p", p, "-I", "default", "-o", "new"]) => {
                let mut r = BTreeMap::new();
                r.insert("node.name".into(), (*t).to_owned());
                r.insert("node.session.scan".into(), "auto".into());
                self.st
                    .lock()
                    .unwrap()
                    .records
                    .insert(((*t).into(), (*p).into()), r);
                Output::success("New iSCSI node added\n")
            }
            ("iscsiadm", ["-m", "node", "-T", t, "-p", p, "-o", "update", "-n", n, "-v", v]) => {
                let mut st = self.st.lock().unwrap();
                st.records
                    .get_mut(&((*t).into(), (*p).into()))
                    .unwrap()
                    .insert((*n).into(), (*v).into());
                Output::success("")
            }
            ("iscsiadm", ["-m", "node", "-T", t, "-p", p, "-o", "delete"]) => {
                let removed = self
                    .st
                    .lock()
                    .unwrap()
                    .records
                    .remove(&((*t).into(), (*p).into()));
                if removed.is_some() {
                    Output::success("")
                } else {
                    Output::exit(21, "", "No records found\n")
                }
            }
            ("iscsiadm", ["-m", "node", "-T", t, "-p", p, "--login"]) => {
                self.login(t, p);
                Output::success("Login successful.\n")
            }
            ("iscsiadm", ["-m", "node", "-T", t, "-p", p, "--logout"]) => {
                self.logout(t, p);
                Output::success("Logout successful.\n")
            }
            ("blockdev", ["--flushbufs", _]) => Output::success(""),
            ("multipath", ["-f", name]) if self.take_busy_flush() => {
                Output::exit(1, "", format!("{name}: map in use\n"))
            }
            ("udevadm", ["settle", "--timeout=10"]) => Output::success(""),
            ("multipath", ["-f", name]) => {
                for n in list(&self.sys("block")) {
                    let dm_name = std::fs::read_to_string(self.sys(&format!("block/{n}/dm/name")))
                        .unwrap_or_default();
                    if dm_name.trim() == *name {
                        std::fs::remove_dir_all(self.sys(&format!("block/{n}"))).unwrap();
                    }
                }
                Output::success("")
            }
            ("o2cb", [_, "cluster-status", _]) => {
                if self.online() {
                    Output::success("online\n")
                } else {
                    Output::exit(1, "offline\n", "")
                }
            }
            ("o2cb", [_, "register-cluster", _]) => {
                self.st.lock().unwrap().online = true;
                Output::success("")
            }
            ("o2cb", [_, "unregister-cluster", _]) => {
                self.st.lock().unwrap().online = false;
                Output::success("")
            }
            ("blkid", ["-p", "-o", "export", dev]) => {
                let wwid = self.ident_of_dev(dev).unwrap_or_default();
                let fstype = if self.san.gfs2.lock().unwrap().contains(&wwid) {
                    "gfs2"
                } else {
                    "ocfs2"
                };
                match self.san.formatted.lock().unwrap().get(&wwid) {
                    Some((label, uuid)) => {
                        Output::success(format!("TYPE={fstype}\nLABEL={label}\nUUID={uuid}\n"))
                    }
                    None => Output::exit(2, "", ""),
                }
            }
            ("mkfs.gfs2", ["-O", "-p", "lock_dlm", "-t", table, "-j", _, dev]) => {
                let id = self.ident_of_dev(dev).expect("mkfs on a known device");
                self.san.formatted.lock().unwrap().insert(
                    id.clone(),
                    (
                        (*table).to_owned(),
                        "5d2a8c8e-3b7f-4b0e-9d35-3a3c3c0f9e11".into(),
                    ),
                );
                self.san.gfs2.lock().unwrap().insert(id);
                Output::success("")
            }
            ("gfs2_grow", [_]) => Output::success(""),
            ("systemctl", [verb, unit]) => {
                let mut st = self.st.lock().unwrap();
                let e = st.units.entry((*unit).to_owned()).or_default();
                match *verb {
                    "is-enabled" if e.0 => Output::success("enabled\n"),
                    "is-enabled" => Output::exit(1, "disabled\n", ""),
                    "is-active" if e.1 => Output::success("active\n"),
                    "is-active" => Output::exit(3, "inactive\n", ""),
                    "start" => {
                        e.1 = true;
                        Output::success("")
                    }
                    "stop" => {
                        e.1 = false;
                        Output::success("")
                    }
                    "disable" => {
                        e.0 = false;
                        Output::success("")
                    }
                    other => panic!("systemctl {other}"),
                }
            }
            ("systemctl", ["enable", "--now", unit]) => {
                self.st
                    .lock()
                    .unwrap()
                    .units
                    .insert((*unit).to_owned(), (true, true));
                Output::success("")
            }
            ("mkfs.ocfs2", rest) => {
                let dev = rest.last().unwrap();
                let label = rest[rest.iter().position(|x| *x == "-L").unwrap() + 1];
                let wwid = self.ident_of_dev(dev).expect("mkfs on a known device");
                self.san.formatted.lock().unwrap().insert(
                    wwid,
                    (label.into(), "329e6070-f06b-425e-afc1-45816b197431".into()),
                );
                Output::success("")
            }
            ("nvme", ["connect", "-t", "tcp", "-a", addr, "-s", "4420", "-n", nqn, "-l", "-1"]) => {
                self.nvme_connect(addr, nqn).await;
                Output::success("")
            }
            ("nvme", ["disconnect", "-d", dev]) => {
                self.nvme_disconnect(dev);
                Output::success("NQN:... disconnected 1 controller(s)\n")
            }
            // host-storage disconnects by NQN when every controller of it is its own.
            ("nvme", ["disconnect", "-n", nqn]) => {
                let ctrls: Vec<String> = list(&self.sys("class/nvme"))
                    .into_iter()
                    .filter(|c| {
                        std::fs::read_to_string(self.sys(&format!("class/nvme/{c}/subsysnqn")))
                            .is_ok_and(|x| x.trim() == *nqn)
                    })
                    .collect();
                for c in &ctrls {
                    self.nvme_disconnect(c);
                }
                Output::success(format!(
                    "NQN:{nqn} disconnected {} controller(s)\n",
                    ctrls.len()
                ))
            }
            ("mount", ["-t", fstype, "-o", opts, source, target]) => {
                support::add_mount(&self.mountinfo(), "253:1", fstype, source, target, opts);
                Output::success("")
            }
            ("umount", [target]) => {
                support::remove_mount(&self.mountinfo(), target);
                Output::success("")
            }
            (program, args) => panic!("unexpected command {program} {args:?}"),
        };
        cmd.check(out)
    }
}

/// A scratch host with its fake kernel (reacting to sysfs writes until dropped).
struct TestHost {
    _dir: tempfile::TempDir,
    root: PathBuf,
    kernel: Arc<FakeKernel>,
    ticker: tokio::task::JoinHandle<()>,
    host: Host,
}

impl Drop for TestHost {
    fn drop(&mut self) {
        self.ticker.abort();
    }
}

impl TestHost {
    fn new(
        name: &str,
        address: &str,
        client: &Client,
        san: &Arc<San>,
        fc_targets: &[String],
        n: u8,
    ) -> TestHost {
        let iqn = format!("iqn.1994-05.com.redhat:{name}");
        let hostid = format!("6b2f2a2c-4a3e-4c43-9c2b-1f0e8d7a00{n:02x}");
        let nqn = format!("nqn.2014-08.org.nvmexpress:uuid:{hostid}");
        let (dir, root) = support::scratch_root(
            &["sys/block"],
            &[
                ("etc/fstab", FSTAB),
                ("proc/self/mountinfo", ROOT_MOUNT),
                (
                    "etc/iscsi/initiatorname.iscsi",
                    &format!("InitiatorName={iqn}\n"),
                ),
                ("etc/nvme/hostnqn", &format!("{nqn}\n")),
                ("etc/nvme/hostid", &format!("{hostid}\n")),
            ],
        );
        let wwpn = format!("10:00:00:90:fa:00:00:{n:02x}");
        if !fc_targets.is_empty() {
            // One online HBA port, host5, logged in to each of the SVM's FC LIFs.
            let fc = root.join("sys/class/fc_host/host5");
            mkdir(&fc);
            std::fs::write(fc.join("port_name"), format!("0x10000090fa0000{n:02x}\n")).unwrap();
            std::fs::write(fc.join("node_name"), format!("0x20000090fa0000{n:02x}\n")).unwrap();
            std::fs::write(fc.join("port_state"), "Online\n").unwrap();
            let sh = root.join("sys/class/scsi_host/host5");
            mkdir(&sh);
            std::fs::write(sh.join("scan"), "").unwrap();
            for (t, w) in fc_targets.iter().enumerate() {
                let rp = root.join(format!("sys/class/fc_remote_ports/rport-5:0-{t}"));
                mkdir(&rp);
                let hex = w.replace(':', "");
                std::fs::write(rp.join("port_name"), format!("0x{hex}\n")).unwrap();
                std::fs::write(rp.join("node_name"), format!("0x{hex}\n")).unwrap();
                std::fs::write(rp.join("port_state"), "Online\n").unwrap();
                std::fs::write(rp.join("scsi_target_id"), format!("{t}\n")).unwrap();
                std::fs::write(rp.join("roles"), "FCP Target\n").unwrap();
            }
        }
        let kernel = Arc::new(FakeKernel {
            root: root.clone(),
            initiators: vec![iqn, wwpn],
            nqn,
            client: client.clone(),
            san: san.clone(),
            st: Mutex::new(KState::default()),
        });
        let k = kernel.clone();
        let ticker = tokio::spawn(async move {
            loop {
                k.tick().await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        let host = Host::new(name, kernel.clone())
            .address(address)
            .libvirt_uri("test:///default")
            .root(&root);
        TestHost {
            _dir: dir,
            root,
            kernel,
            ticker,
            host,
        }
    }

    fn read(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.root.join(path)).ok()
    }

    fn mount_point(&self, pool: &str) -> PathBuf {
        self.root.join("mnt").join(pool)
    }

    /// Nothing of any datastore on this host; fstab as `fstab`.
    fn assert_clean(&self, pool: &str, fstab: &str, context: &str) {
        support::assert_host_files(&self.root, fstab, context);
        assert!(
            list(&self.root.join("sys/block")).is_empty(),
            "{context}: block devices {:?}",
            list(&self.root.join("sys/block"))
        );
        assert!(
            list(&self.root.join("sys/class/iscsi_session")).is_empty(),
            "{context}: iSCSI sessions"
        );
        assert_eq!(self.kernel.records(), 0, "{context}: iSCSI node records");
        assert!(
            !self.root.join("etc/multipath.conf").exists(),
            "{context}: multipath.conf"
        );
        assert!(
            list(&self.root.join("etc/multipath/conf.d")).is_empty(),
            "{context}: multipath drop-in"
        );
        assert!(
            !self.root.join("etc/ocfs2/cluster.conf").exists(),
            "{context}: cluster.conf"
        );
        assert!(
            !self.root.join("etc/default/o2cb").exists(),
            "{context}: o2cb settings"
        );
        assert!(!self.kernel.online(), "{context}: o2cb cluster online");
        assert!(!self.mount_point(pool).exists(), "{context}: mount point");
        assert!(
            !self.root.join("etc/corosync/corosync.conf").exists(),
            "{context}: corosync.conf"
        );
        assert!(
            !self.root.join("etc/dlm/dlm.conf").exists(),
            "{context}: dlm.conf"
        );
        assert!(
            self.kernel
                .st
                .lock()
                .unwrap()
                .units
                .values()
                .all(|u| *u == (false, false)),
            "{context}: units {:?}",
            self.kernel.st.lock().unwrap().units
        );
        assert!(
            list(&self.root.join("sys/class/nvme")).is_empty(),
            "{context}: NVMe controllers"
        );
        assert!(
            list(&self.root.join("sys/class/nvme-subsystem")).is_empty(),
            "{context}: NVMe subsystems"
        );
    }
}

struct World {
    _lv: Libvirt,
    protocol: BlockProtocol,
    gfs2: bool,
    sim: SimServer,
    client: Client,
    san: Arc<San>,
    hosts: Vec<TestHost>,
    env: Env,
    pool: String,
    /// This world's lock registry. Every world's hosts are named kvm1.., so runs locking
    /// through the process-wide registry would wait on other tests' worlds (`host:kvm1`) and
    /// the whole binary would run one saga at a time.
    locks: Arc<LockRegistry>,
}

async fn world(pool: &str, hosts: usize) -> World {
    world_with(pool, hosts, BlockProtocol::Iscsi).await
}

async fn world_with(pool: &str, hosts: usize, protocol: BlockProtocol) -> World {
    let (sim, client) = support::sim().await;
    let san = Arc::new(San::default());
    let fc_targets: Vec<String> = if protocol == BlockProtocol::Fcp {
        client
            .fc_interfaces()
            .of_svm("svm1")
            .await
            .unwrap()
            .into_iter()
            .filter_map(|l| l.wwpn)
            .collect()
    } else {
        Vec::new()
    };
    let hosts: Vec<TestHost> = (1..=hosts)
        .map(|i| {
            TestHost::new(
                &format!("kvm{i}"),
                &format!("192.0.2.10{i}"),
                &client,
                &san,
                &fc_targets,
                u8::try_from(i).unwrap(),
            )
        })
        .collect();
    let mut env = Env::new(client.clone());
    for h in &hosts {
        env = env.host(h.host.clone());
    }
    World {
        _lv: Libvirt::connect("test:///default").await.unwrap(),
        protocol,
        gfs2: false,
        sim,
        client,
        san,
        hosts,
        env,
        pool: pool.to_owned(),
        locks: Arc::new(LockRegistry::new()),
    }
}

impl World {
    fn datastore(&self) -> BlockDatastore {
        let ds = BlockDatastore::new(self.protocol, "svm1", &self.pool, "aggr1", 10 << 30)
            .hosts(self.hosts.iter().map(|h| h.host.name().to_owned()))
            .mount_point(self.hosts[0].mount_point(&self.pool))
            .device_wait(Duration::from_secs(15));
        if self.gfs2 {
            ds.gfs2()
        } else {
            ds
        }
    }

    fn volume(&self) -> String {
        self.pool.replace('-', "_")
    }

    fn disk_path(&self) -> String {
        self.datastore().disk_path()
    }

    async fn count(&self, path: &str) -> usize {
        let q = match path {
            "/api/storage/volumes" => Query::new().filter("name", self.volume()),
            "/api/storage/luns" | "/api/storage/namespaces" => {
                Query::new().filter("name", self.disk_path())
            }
            "/api/protocols/san/igroups" | "/api/protocols/nvme/subsystems" => {
                Query::new().filter("name", format!("kvmstor_{}", self.volume()))
            }
            "/api/protocols/san/lun-maps" => Query::new().filter("lun.name", self.disk_path()),
            _ => Query::new().filter("namespace.name", self.disk_path()),
        };
        let v: serde_json::Value = self.client.raw().get(path, &q).await.unwrap();
        usize::try_from(v["num_records"].as_u64().unwrap()).unwrap()
    }

    async fn ontap_counts(&self) -> [usize; 4] {
        let paths = if self.protocol == BlockProtocol::NvmeTcp {
            [
                "/api/storage/volumes",
                "/api/storage/namespaces",
                "/api/protocols/nvme/subsystems",
                "/api/protocols/nvme/subsystem-maps",
            ]
        } else {
            [
                "/api/storage/volumes",
                "/api/storage/luns",
                "/api/protocols/san/igroups",
                "/api/protocols/san/lun-maps",
            ]
        };
        let mut out = [0; 4];
        for (o, p) in out.iter_mut().zip(paths) {
            *o = self.count(p).await;
        }
        out
    }

    /// The disk's identity on hosts and its stable device path.
    async fn disk_identity(&self) -> (String, String) {
        if self.protocol == BlockProtocol::NvmeTcp {
            let ns = self
                .client
                .namespaces()
                .find(
                    &Query::new()
                        .filter("name", self.disk_path())
                        .fields(["uuid"]),
                )
                .await
                .unwrap()
                .unwrap();
            let u = ns.uuid.unwrap();
            (u.clone(), format!("/dev/disk/by-id/nvme-uuid.{u}"))
        } else {
            let lun = self
                .client
                .luns()
                .find(
                    &Query::new()
                        .filter("name", self.disk_path())
                        .fields(["serial_number"]),
                )
                .await
                .unwrap()
                .unwrap();
            let wwid = format!("3600a0980{}", hex(lun.serial_number.as_deref().unwrap()));
            (wwid.clone(), format!("/dev/mapper/{wwid}"))
        }
    }

    async fn pool_def(&self) -> Option<PoolDef> {
        support::pool_def(&self.pool).await
    }

    async fn remove_pool(&self) {
        support::remove_pool(&self.pool).await;
    }

    async fn assert_clean(&self, fstabs: &[String], context: &str) {
        assert_eq!(
            self.ontap_counts().await,
            [0, 0, 0, 0],
            "{context}: ONTAP objects"
        );
        assert!(self.pool_def().await.is_none(), "{context}: pool left");
        for (h, f) in self.hosts.iter().zip(fstabs) {
            h.assert_clean(&self.pool, f, &format!("{context}, {}", h.host.name()));
        }
    }

    async fn assert_attached(&self, context: &str) {
        assert_eq!(
            self.ontap_counts().await,
            [1, 1, 1, 1],
            "{context}: ONTAP objects"
        );
        let (wwid, source) = self.disk_identity().await;
        let mp = self.hosts[0].mount_point(&self.pool);
        let fstype = if self.gfs2 { "gfs2" } else { "ocfs2" };
        for h in &self.hosts {
            let fstab = h.read("etc/fstab").unwrap();
            assert!(
                fstab.ends_with(&format!(
                    "# kvmstor:kvmstor-{} (managed by kvmstor; removed by its undo)\n{source} {} {fstype} _netdev,noatime 0 0\n",
                    self.pool,
                    mp.display()
                )),
                "{context}: fstab is {fstab:?}"
            );
            assert!(h.read("proc/self/mountinfo").unwrap().contains(&format!(
                " {} rw,relatime - {fstype} {source} ",
                mp.display()
            )));
            if self.gfs2 {
                let conf = h.read("etc/corosync/corosync.conf").unwrap();
                assert!(conf.contains("cluster_name: kvmstor"), "{conf}");
                assert!(h.read("etc/dlm/dlm.conf").is_some());
                let st = h.kernel.st.lock().unwrap();
                assert_eq!(st.units.get("corosync.service"), Some(&(true, true)));
                assert_eq!(st.units.get("dlm.service"), Some(&(true, true)));
            } else {
                assert!(h.kernel.online(), "{context}: o2cb offline");
                let conf = h.read("etc/ocfs2/cluster.conf").unwrap();
                assert!(conf.contains("name = kvmstor"), "{conf}");
            }
        }
        let want = if self.gfs2 {
            // GFS2 file-system names are at most 30 characters.
            format!("kvmstor:{}", &self.pool[..self.pool.len().min(30)])
        } else {
            self.pool.clone()
        };
        assert_eq!(
            self.san
                .formatted
                .lock()
                .unwrap()
                .get(&wwid)
                .map(|f| f.0.clone()),
            Some(want)
        );
        let def = self.pool_def().await.expect("pool defined");
        assert_eq!(def.target.as_deref(), Some(mp.to_str().unwrap()));
    }

    /// Runs `saga` through this world's lock registry.
    async fn run(&self, saga: Saga<BlockStep>) -> kvmstor::Result<RunReport<BlockStep>> {
        saga.lock_registry(self.locks.clone()).run(&self.env).await
    }

    /// Runs `saga` through this world's lock registry until it stops at `c.point`, then
    /// recovers it with `c.mode`.
    async fn crash_and_recover(
        &self,
        saga: Saga<BlockStep>,
        c: &CrashCase,
    ) -> RunReport<BlockStep> {
        let saga = saga.lock_registry(self.locks.clone());
        crash(saga, &self.env, c)
            .await
            .recover::<BlockStep>(&self.env, c.mode, self.locks.clone())
            .await
    }

    /// Attaches, through this world's lock registry.
    async fn attach_now(&self) {
        let saga = self.datastore().attach(&self.env).await.unwrap();
        self.run(saga).await.unwrap();
    }

    /// Detaches, deleting the ONTAP objects, through this world's lock registry.
    async fn detach_all(&self) {
        let saga = self
            .datastore()
            .delete_ontap_objects(true)
            .detach(&self.env)
            .await
            .unwrap();
        self.run(saga).await.unwrap();
    }
}

#[tokio::test]
async fn attach_plan_run_reapply_and_detach_with_fake_kernel() {
    let w = world("blk-plan", 1).await;
    let saga = w.datastore().attach(&w.env).await.unwrap();
    let mp = w.hosts[0].mount_point("blk-plan");
    let target = w
        .client
        .iscsi_services()
        .find(&Query::new().filter("svm.name", "svm1").fields(["target"]))
        .await
        .unwrap()
        .unwrap()
        .target
        .unwrap()
        .name
        .unwrap();
    assert!(target.starts_with(TARGET), "{target}");
    assert_eq!(
        labels(&saga),
        [
            "CreateVolume svm1/blk_plan".to_owned(),
            "CreateLun svm1:/vol/blk_plan/lun0".into(),
            "CreateIgroup svm1/kvmstor_blk_plan".into(),
            "MapLun svm1:/vol/blk_plan/lun0 to kvmstor_blk_plan".into(),
            "ConfigureMultipath kvm1".into(),
            format!("ConnectIscsi kvm1 to {target}"),
            "AttachLun kvm1:/vol/blk_plan/lun0".into(),
            "ConfigureO2cb kvm1:kvmstor".into(),
            "RegisterCluster kvm1:kvmstor".into(),
            "FormatOcfs2 kvm1:/vol/blk_plan/lun0".into(),
            format!("MountOcfs2 kvm1:{}", mp.display()),
            "PersistFstab kvm1:kvmstor-blk-plan".into(),
            "DefinePool kvm1:blk-plan".into(),
        ]
    );
    let plan = saga.plan().to_string();
    for p in ["192.0.2.21:3260", "192.0.2.22:3260"] {
        assert!(
            plan.contains(&format!(
                "kvm1$ iscsiadm -m node -T {target} -p {p} -I default -o new (if no record; settings written into it)\n"
            )),
            "{plan}"
        );
    }
    // One target-wide login (what host-storage runs when the node database holds exactly
    // kvmstor's records), with the per-portal fallback named.
    assert!(
        plan.contains(&format!(
            "kvm1$ iscsiadm -m node -T {target} --login (when the node database holds exactly these 2 portals; else -p PORTAL --login for each)\n"
        )),
        "{plan}"
    );
    assert!(!plan.contains("-p 192.0.2.21:3260 --login"), "{plan}");
    assert!(
        plan.contains("initiators iqn.1994-05.com.redhat:kvm1"),
        "{plan}"
    );
    // Planning touched nothing.
    w.assert_clean(&[FSTAB.into()], "after plan").await;
    assert!(w.hosts[0].kernel.calls().is_empty());

    let report = w.run(saga).await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Applied { changed: 13 });
    w.assert_attached("after attach").await;
    let lun = w
        .client
        .luns()
        .find(&Query::new().filter("name", "/vol/blk_plan/lun0").fields([
            "os_type",
            "serial_number",
            "comment",
        ]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lun.os_type.unwrap().to_string(), "linux");
    assert!(lun.comment.unwrap().starts_with("kvmstor:blk-plan:"));
    // Two sessions (one per iSCSI LIF), two paths, one map holding both.
    let dms: Vec<String> = list(&w.hosts[0].root.join("sys/block"));
    assert_eq!(dms, ["dm-1", "sdb", "sdc"]);
    assert_eq!(
        list(&w.hosts[0].root.join("sys/block/dm-1/slaves")),
        ["sdb", "sdc"]
    );
    assert!(w.hosts[0]
        .read("etc/multipath/conf.d/kvmstor-netapp.conf")
        .unwrap()
        .contains("vendor \"NETAPP\""));
    let mkfs: Vec<String> = w.hosts[0]
        .kernel
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("mkfs.ocfs2"))
        .collect();
    assert_eq!(mkfs.len(), 1, "{mkfs:?}");
    assert!(
        mkfs[0].starts_with("mkfs.ocfs2 -L blk-plan -N 4 "),
        "{}",
        mkfs[0]
    );
    assert!(mkfs[0].ends_with("/dev/dm-1"), "{}", mkfs[0]);

    // Applying again changes nothing and says so.
    let again = w.datastore().attach(&w.env).await.unwrap();
    assert_eq!(
        w.run(again).await.unwrap().outcome,
        RunOutcome::AlreadyApplied
    );

    // Detach keeps the volume, LUN and igroup by default (the map goes)...
    let detach = w.datastore().detach(&w.env).await.unwrap();
    let plan = detach.plan().to_string();
    assert!(
        plan.contains(&format!(
            "kvm1$ iscsiadm -m node -T {target} --logout (if no device remains; when every session and record of the target is kvmstor's, else -p PORTAL --logout for each of the 2 portals)\n"
        )),
        "{plan}"
    );
    assert!(
        plan.contains(&format!(
            "kvm1$ iscsiadm -m node -T {target} -o delete (the same way; else -p PORTAL -o delete for each)\n"
        )),
        "{plan}"
    );
    assert_eq!(
        labels(&detach),
        [
            "RemovePool kvm1:blk-plan".to_owned(),
            "RemoveFstab kvm1:kvmstor-blk-plan".into(),
            format!("UnmountOcfs2 kvm1:{}", mp.display()),
            "DetachLun kvm1:/vol/blk_plan/lun0".into(),
            format!("DisconnectIscsi kvm1 from {target}"),
            "UnregisterCluster kvm1:kvmstor".into(),
            "RemoveO2cbConfig kvm1:kvmstor".into(),
            "RemoveMultipathConfig kvm1".into(),
            "UnmapLun svm1:/vol/blk_plan/lun0 from kvmstor_blk_plan".into(),
        ]
    );
    assert_eq!(
        w.run(detach).await.unwrap().outcome,
        RunOutcome::Applied { changed: 9 }
    );
    assert_eq!(w.ontap_counts().await, [1, 1, 1, 0]);
    assert!(w.pool_def().await.is_none());
    w.hosts[0].assert_clean("blk-plan", FSTAB, "detached, ONTAP objects kept");
    // The safe order: unmount, flush, remove the map, delete paths, then log out.
    let calls = w.hosts[0].kernel.calls();
    let pos = |prefix: &str| {
        calls
            .iter()
            .rposition(|c| c.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in {calls:?}"))
    };
    assert!(pos("umount") < pos("blockdev --flushbufs"));
    assert!(pos("blockdev --flushbufs") < pos("multipath -f"));
    assert!(
        pos("multipath -f")
            < pos(&format!(
                "iscsiadm -m node -T {target} -p 192.0.2.22:3260 --logout"
            ))
    );
    // ...and deletes them when asked.
    w.detach_all().await;
    assert_eq!(w.ontap_counts().await, [0, 0, 0, 0]);
}

/// Makes the step labelled `label` (on the first host) fail. Returns the fstab the host
/// must be left with.
async fn inject(w: &World, label: &str) -> String {
    // The host a step acts on is the second word up to ':' ("MountOcfs2 kvm2:/mnt/x").
    let target = label
        .split_whitespace()
        .nth(1)
        .map(|t| t.split(':').next().unwrap_or(t))
        .unwrap_or_default();
    let h = w
        .hosts
        .iter()
        .find(|h| h.host.name() == target)
        .unwrap_or(&w.hosts[0]);
    let kind = label.split_whitespace().next().unwrap();
    let error = |path: &str, code: u16, ontap: &str, msg: &str| {
        w.sim.faults().add(Fault::error(
            Some("POST"),
            path,
            ApiError::new(code, ontap, msg),
        ));
    };
    match kind {
        "CreateVolume" => w.sim.faults().add(support::no_space()),
        "CreateLun" => error("/api/storage/luns", 400, "5374860", "LUN size too large"),
        "CreateNamespace" => error(
            "/api/storage/namespaces",
            400,
            "72090001",
            "namespace too large",
        ),
        "CreateIgroup" => error(
            "/api/protocols/san/igroups",
            400,
            "5374737",
            "invalid initiator",
        ),
        "CreateSubsystem" => error(
            "/api/protocols/nvme/subsystems",
            400,
            "72089705",
            "invalid host NQN",
        ),
        "MapLun" => w
            .sim
            .faults()
            .add(rpc_failure("POST", "/api/protocols/san/lun-maps")),
        "MapNamespace" => w
            .sim
            .faults()
            .add(rpc_failure("POST", "/api/protocols/nvme/subsystem-maps")),
        "ConfigureMultipath" => h.kernel.fail("multipathd", "reconfigure", 1),
        // The second portal's login (or connect) fails after the first succeeded.
        "ConnectIscsi" => h.kernel.fail("iscsiadm", "--login", 2),
        "ConnectNvme" => h.kernel.fail("nvme", "connect", 2),
        // No multipath map (namespace) appears: the wait times out with the paths there.
        "AttachLun" => h.kernel.st.lock().unwrap().no_map = true,
        "AttachNamespace" => h.kernel.st.lock().unwrap().no_ns = true,
        "ConfigureO2cb" => {
            // A cluster.conf whose node 0 is another machine: merging conflicts.
            mkdir(&h.root.join("etc/ocfs2"));
            std::fs::write(
                h.root.join("etc/ocfs2/cluster.conf"),
                "cluster:\n\tname = kvmstor\n\theartbeat_mode = local\n\tnode_count = 1\n\nnode:\n\tcluster = kvmstor\n\tnumber = 0\n\tip_port = 7777\n\tip_address = 10.9.9.9\n\tname = other\n\n",
            )
            .unwrap();
        }
        "RegisterCluster" => h.kernel.fail("o2cb", "register-cluster", 1),
        "FormatOcfs2" => h.kernel.fail("mkfs.ocfs2", "", 1),
        "MountOcfs2" | "MountGfs2" => h.kernel.fail("mount", "", 1),
        "FormatGfs2" => h.kernel.fail("mkfs.gfs2", "", 1),
        // corosync starts, then DLM fails: corosync is stopped again.
        "StartClusterServices" => h.kernel.fail("systemctl", "enable --now dlm.service", 1),
        "ConfigureCorosync" => {
            // A corosync.conf whose node 1 is another machine: merging conflicts.
            mkdir(&h.root.join("etc/corosync"));
            std::fs::write(h.root.join("etc/corosync/corosync.conf"), FOREIGN_COROSYNC).unwrap();
        }
        "PersistFstab" => {
            // Every host mounts at the first host's path (one datastore, one mount point).
            let fstab = format!(
                "{FSTAB}/dev/sdz {} xfs defaults 0 0\n",
                w.hosts[0].mount_point(&w.pool).display()
            );
            std::fs::write(h.root.join("etc/fstab"), &fstab).unwrap();
            return fstab;
        }
        "DefinePool" => support::define_foreign_pool(&w.pool).await,
        other => panic!("no injection for {other}"),
    }
    FSTAB.to_owned()
}

/// Step labels of the single-host attach over `protocol`.
async fn attach_labels(protocol: BlockProtocol, gfs2: bool) -> Vec<String> {
    let mut w = world_with("blk-labels", 1, protocol).await;
    w.gfs2 = gfs2;
    labels(&w.datastore().attach(&w.env).await.unwrap())
}

async fn failure_matrix(protocol: BlockProtocol, steps: usize) {
    failure_matrix_fs(protocol, false, steps).await;
}

async fn failure_matrix_fs(protocol: BlockProtocol, gfs2: bool, steps: usize) {
    let all = attach_labels(protocol, gfs2).await;
    assert_eq!(all.len(), steps, "{all:?}");
    let cases = all.iter().enumerate().map(|(k, label)| async move {
        let pool = format!("blk-fail-{}-{gfs2}-{k}", protocol.as_str());
        let mut w = world_with(&pool, 1, protocol).await;
        w.gfs2 = gfs2;
        let saga = w.datastore().attach(&w.env).await.unwrap();
        let fstab = inject(&w, label).await;
        let err = w.run(saga).await.unwrap_err();
        match &err {
            Error::StepFailed { index, step, .. } => {
                assert_eq!(
                    (*index, step.split_whitespace().next()),
                    (k, label.split_whitespace().next()),
                    "{err}"
                )
            }
            other => panic!("step {k} ({label}): {other}"),
        }
        if label.starts_with("ConfigureO2cb") {
            // The foreign cluster.conf is untouched.
            assert!(w.hosts[0]
                .read("etc/ocfs2/cluster.conf")
                .unwrap()
                .contains("name = other"));
            std::fs::remove_dir_all(w.hosts[0].root.join("etc/ocfs2")).unwrap();
        }
        if label.starts_with("ConfigureCorosync") {
            assert_eq!(
                w.hosts[0].read("etc/corosync/corosync.conf").as_deref(),
                Some(FOREIGN_COROSYNC)
            );
            std::fs::remove_dir_all(w.hosts[0].root.join("etc/corosync")).unwrap();
        }
        if label.starts_with("DefinePool") {
            let def = w.pool_def().await.unwrap();
            assert_eq!(
                def.target.as_deref(),
                Some(format!("/srv/someone-elses/{pool}").as_str())
            );
            w.remove_pool().await;
        }
        w.assert_clean(
            &[fstab],
            &format!("{}: failure at step {k} ({label})", protocol.as_str()),
        )
        .await;
    });
    run_cases(cases.collect()).await;
}

/// Matrix cases in flight at once. Each case has its own simulator, fake host and names, so
/// cases are independent; a case spends most of its time in the workflow's device polling, not
/// on the CPU. Few enough that the 1 s device waits never starve on a loaded 2-core runner.
const CASES_AT_ONCE: usize = 6;

/// Runs independent matrix cases, [`CASES_AT_ONCE`] at a time; a failing case panics the test.
async fn run_cases<F: std::future::Future<Output = ()>>(cases: Vec<F>) {
    use futures_util::StreamExt;
    futures_util::stream::iter(cases)
        .buffer_unordered(CASES_AT_ONCE)
        .collect::<Vec<()>>()
        .await;
}

async fn crash_matrix(protocol: BlockProtocol, steps: usize) {
    crash_matrix_fs(protocol, false, steps).await;
}

async fn crash_matrix_fs(protocol: BlockProtocol, gfs2: bool, steps: usize) {
    let cases = crash_cases(steps)
        .into_iter()
        .map(|c| crash_case(protocol, gfs2, c))
        .collect();
    run_cases(cases).await;
}

/// One case of the attach crash matrix: crash at `c.point`, then recover with `c.mode`.
async fn crash_case(protocol: BlockProtocol, gfs2: bool, c: CrashCase) {
    let (point, mode) = (c.point, c.mode);
    let pool = format!("blk-crash-{}-{gfs2}-{}", protocol.as_str(), c.tag());
    let mut w = world_with(&pool, 1, protocol).await;
    w.gfs2 = gfs2;
    let saga = w.datastore().attach(&w.env).await.unwrap();
    let report = w.crash_and_recover(saga, &c).await;
    let context = format!("{}: crash {point:?}, recover {mode:?}", protocol.as_str());
    match mode {
        RecoverMode::Unwind => {
            assert_eq!(report.journal.status, RunStatus::Unwound, "{context}");
            w.assert_clean(&[FSTAB.into()], &context).await;
        }
        RecoverMode::Resume => {
            assert_eq!(report.journal.status, RunStatus::Completed, "{context}");
            w.assert_attached(&context).await;
            w.detach_all().await;
            w.assert_clean(&[FSTAB.into()], &format!("{context}, detached"))
                .await;
        }
    }
}

#[tokio::test]
async fn attach_failure_at_every_step_leaves_a_clean_slate_with_fake_kernel() {
    failure_matrix(BlockProtocol::Iscsi, 13).await;
}

#[tokio::test]
async fn crash_at_every_step_then_recover_unwinds_or_finishes_with_fake_kernel() {
    crash_matrix(BlockProtocol::Iscsi, 13).await;
}

#[tokio::test]
async fn nvme_attach_failure_at_every_step_leaves_a_clean_slate_with_fake_kernel() {
    failure_matrix(BlockProtocol::NvmeTcp, 12).await;
}

#[tokio::test]
async fn nvme_crash_at_every_step_then_recover_unwinds_or_finishes_with_fake_kernel() {
    crash_matrix(BlockProtocol::NvmeTcp, 12).await;
}

#[tokio::test]
async fn fc_attach_failure_at_every_step_leaves_a_clean_slate_with_fake_kernel() {
    failure_matrix(BlockProtocol::Fcp, 12).await;
}

#[tokio::test]
async fn fc_crash_at_every_step_then_recover_unwinds_or_finishes_with_fake_kernel() {
    crash_matrix(BlockProtocol::Fcp, 12).await;
}

#[tokio::test]
async fn unwind_after_a_failed_mkfs_retries_the_flush_of_a_map_still_in_use_with_fake_kernel() {
    let w = world("blk-busy-map", 1).await;
    let saga = w.datastore().attach(&w.env).await.unwrap();
    let h = &w.hosts[0];
    h.kernel.fail("mkfs.ocfs2", "", 1);
    // udev's blkid probe after the failed mkfs still holds the map for three attempts.
    h.kernel.st.lock().unwrap().busy_flushes = 3;
    let err = w.run(saga).await.unwrap_err();
    match &err {
        Error::StepFailed { step, .. } => {
            assert_eq!(step.split_whitespace().next(), Some("FormatOcfs2"), "{err}")
        }
        other => panic!("expected the FormatOcfs2 failure, unwound clean: {other}"),
    }
    let calls = h.kernel.calls();
    let count = |p: &str| calls.iter().filter(|c| c.starts_with(p)).count();
    assert_eq!(count("multipath -f "), 4, "{calls:#?}");
    assert_eq!(count("udevadm settle --timeout=10"), 3, "{calls:#?}");
    assert_eq!(h.kernel.st.lock().unwrap().busy_flushes, 0);
    w.assert_clean(&[FSTAB.to_owned()], "busy map flushed on the 4th attempt")
        .await;
}

/// `Error::Invalid` for `size` as (value, reason), or a panic.
fn invalid_size(r: kvmstor::Result<kvmstor::saga::Saga<BlockStep>>) -> (String, &'static str) {
    match r {
        Err(Error::Invalid {
            field: "size",
            value,
            reason,
        }) => (value, reason),
        Err(other) => panic!("expected an invalid size: {other}"),
        Ok(_) => panic!("expected an invalid size, got a plan"),
    }
}

#[tokio::test]
async fn attach_refuses_a_disk_smaller_than_mkfs_accepts_before_anything_runs() {
    let w = world("blk-small", 3).await;
    let names: Vec<String> = w.hosts.iter().map(|h| h.host.name().to_owned()).collect();
    let ds = |size: u64| {
        BlockDatastore::iscsi_ocfs2("svm1", "blk-small", "aggr1", size).hosts(names.clone())
    };
    // OCFS2 -T vmstore: 2 GiB at least.
    assert_eq!(
        invalid_size(ds((2 << 30) - 1).attach(&w.env).await),
        (
            "2147483647".to_owned(),
            "mkfs.ocfs2 -T vmstore needs a disk of at least 2 GiB (2147483648 bytes)"
        )
    );
    assert_eq!(
        invalid_size(ds(1 << 30).attach(&w.env).await).0,
        "1073741824"
    );
    assert!(ds(2 << 30).attach(&w.env).await.is_ok());
    // GFS2: 16 MiB per journal, one journal per host (3 here).
    assert_eq!(
        invalid_size(ds((48 << 20) - 1).gfs2().attach(&w.env).await),
        (
            "50331647".to_owned(),
            "mkfs.gfs2 needs at least 16 MiB of disk per journal (one per host, at least 2)"
        )
    );
    assert!(ds(48 << 20).gfs2().attach(&w.env).await.is_ok());
    // One host still gets two journals: 32 MiB.
    let one = |size: u64| {
        BlockDatastore::iscsi_ocfs2("svm1", "blk-small", "aggr1", size)
            .hosts([names[0].clone()])
            .gfs2()
    };
    assert_eq!(
        invalid_size(one((32 << 20) - 1).attach(&w.env).await).0,
        "33554431"
    );
    assert!(one(32 << 20).attach(&w.env).await.is_ok());
    // Nothing was created and no host command ran.
    w.assert_clean(&[FSTAB.to_owned()], "refused sizes").await;
    for h in &w.hosts {
        assert_eq!(h.kernel.calls(), Vec::<String>::new());
    }
}

#[tokio::test]
async fn nvme_attach_plan_run_and_detach_with_fake_kernel() {
    let w = world_with("blk-nvme", 2, BlockProtocol::NvmeTcp).await;
    let saga = w.datastore().attach(&w.env).await.unwrap();
    let mp = w.hosts[0].mount_point("blk-nvme");
    let all = labels(&saga);
    assert_eq!(
        all[..8],
        [
            "CreateVolume svm1/blk_nvme".to_owned(),
            "CreateNamespace svm1:/vol/blk_nvme/ns0".into(),
            "CreateSubsystem svm1/kvmstor_blk_nvme".into(),
            "MapNamespace svm1:/vol/blk_nvme/ns0 to kvmstor_blk_nvme".into(),
            "ConnectNvme kvm1 to kvmstor_blk_nvme".into(),
            "AttachNamespace kvm1:/vol/blk_nvme/ns0".into(),
            "ConfigureO2cb kvm1:kvmstor".into(),
            "RegisterCluster kvm1:kvmstor".into(),
        ]
    );
    assert_eq!(all.len(), 4 + 4 * 2 + 1 + 3 * 2);
    let plan = saga.plan().to_string();
    assert!(
        plan.contains(
            "kvm1$ nvme connect -t tcp -a 192.0.2.31 -s 4420 -n <NQN of kvmstor_blk_nvme> -l -1"
        ),
        "{plan}"
    );
    assert!(
        plan.contains("kvm2$ nvme connect -t tcp -a 192.0.2.32 -s 4420"),
        "{plan}"
    );
    assert!(plan.contains(&format!(
        "mount -t ocfs2 -o _netdev,noatime /dev/disk/by-id/nvme-uuid.<UUID of /vol/blk_nvme/ns0> {}",
        mp.display()
    )), "{plan}");
    w.run(saga).await.unwrap();
    w.assert_attached("nvme attached").await;
    let sub = w
        .client
        .nvme_subsystems()
        .find(
            &Query::new()
                .filter("name", "kvmstor_blk_nvme")
                .fields(["hosts"]),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(sub.has_host(&w.hosts[0].kernel.nqn) && sub.has_host(&w.hosts[1].kernel.nqn));
    // Two controllers (one per LIF), one native-multipath head, no dm-multipath.
    for h in &w.hosts {
        assert_eq!(list(&h.root.join("sys/class/nvme")), ["nvme0", "nvme1"]);
        assert_eq!(list(&h.root.join("sys/block")), ["nvme0n1"]);
        assert!(!h.root.join("etc/multipath").exists());
    }
    let mkfs: Vec<String> = w.hosts[0]
        .kernel
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("mkfs.ocfs2"))
        .collect();
    assert_eq!(mkfs.len(), 1);
    assert!(mkfs[0].ends_with("/dev/nvme0n1"), "{}", mkfs[0]);
    let again = w.datastore().attach(&w.env).await.unwrap();
    assert_eq!(
        w.run(again).await.unwrap().outcome,
        RunOutcome::AlreadyApplied
    );
    let detach = w
        .datastore()
        .delete_ontap_objects(true)
        .detach(&w.env)
        .await
        .unwrap();
    assert!(
        detach.plan().to_string().contains(
            "kvm1$ nvme disconnect -n <NQN of kvmstor_blk_nvme> (if its namespaces are unused; when every controller of the subsystem is kvmstor's, else nvme disconnect -d /dev/nvme<each of kvmstor's controllers>)\n"
        ),
        "{}",
        detach.plan()
    );
    assert_eq!(
        labels(&detach)[..6],
        [
            "RemovePool kvm1:blk-nvme".to_owned(),
            "RemoveFstab kvm1:kvmstor-blk-nvme".into(),
            format!("UnmountOcfs2 kvm1:{}", mp.display()),
            "DisconnectNvme kvm1 from kvmstor_blk_nvme".into(),
            "UnregisterCluster kvm1:kvmstor".into(),
            "RemoveO2cbConfig kvm1:kvmstor".into(),
        ]
    );
    assert_eq!(
        labels(&detach)[12..],
        [
            "UnmapNamespace svm1:/vol/blk_nvme/ns0 from kvmstor_blk_nvme".to_owned(),
            "DeleteSubsystem svm1/kvmstor_blk_nvme".into(),
            "DeleteNamespace svm1:/vol/blk_nvme/ns0".into(),
            "DeleteVolume svm1/blk_nvme".into(),
        ]
    );
    w.run(detach).await.unwrap();
    w.assert_clean(&[FSTAB.into(), FSTAB.into()], "nvme detached")
        .await;
}

#[tokio::test]
async fn fc_attach_scans_behind_the_svm_ports_and_detaches_with_fake_kernel() {
    let w = world_with("blk-fc", 1, BlockProtocol::Fcp).await;
    let saga = w.datastore().attach(&w.env).await.unwrap();
    assert_eq!(
        labels(&saga)[..6],
        [
            "CreateVolume svm1/blk_fc".to_owned(),
            "CreateLun svm1:/vol/blk_fc/lun0".into(),
            "CreateIgroup svm1/kvmstor_blk_fc".into(),
            "MapLun svm1:/vol/blk_fc/lun0 to kvmstor_blk_fc".into(),
            "ConfigureMultipath kvm1".into(),
            "AttachLun kvm1:/vol/blk_fc/lun0".into(),
        ]
    );
    let plan = saga.plan().to_string();
    assert!(
        plan.contains("protocol fcp, os_type linux, initiators 10:00:00:90:fa:00:00:01"),
        "{plan}"
    );
    assert!(
        plan.contains("behind 20:01:00:50:56:bb:00:01,20:02:00:50:56:bb:00:02"),
        "{plan}"
    );
    w.run(saga).await.unwrap();
    w.assert_attached("fc attached").await;
    // One path behind each SVM port, one map.
    assert_eq!(
        list(&w.hosts[0].root.join("sys/block")),
        ["dm-1", "sdb", "sdc"]
    );
    assert!(w.hosts[0]
        .kernel
        .calls()
        .iter()
        .all(|c| !c.starts_with("iscsiadm")));
    w.detach_all().await;
    w.assert_clean(&[FSTAB.into()], "fc detached").await;
}

#[tokio::test]
async fn two_hosts_share_one_igroup_and_format_once_with_fake_kernel() {
    let w = world("blk-two", 2).await;
    let saga = w.datastore().attach(&w.env).await.unwrap();
    // 4 ONTAP, 5 per host, 1 format, 3 per host.
    assert_eq!(saga.steps().len(), 4 + 5 * 2 + 1 + 3 * 2);
    w.run(saga).await.unwrap();
    w.assert_attached("two hosts").await;
    let ig = w
        .client
        .igroups()
        .find(&Query::new().filter("name", "kvmstor_blk_two").fields([
            "initiators",
            "protocol",
            "os_type",
        ]))
        .await
        .unwrap()
        .unwrap();
    assert!(ig.has_initiator("iqn.1994-05.com.redhat:kvm1"));
    assert!(ig.has_initiator("iqn.1994-05.com.redhat:kvm2"));
    assert_eq!(ig.initiators.as_ref().unwrap().len(), 2);
    let mkfs = |h: &TestHost| {
        h.kernel
            .calls()
            .iter()
            .filter(|c| c.starts_with("mkfs.ocfs2"))
            .count()
    };
    assert_eq!((mkfs(&w.hosts[0]), mkfs(&w.hosts[1])), (1, 0));
    for h in &w.hosts {
        let conf = h.read("etc/ocfs2/cluster.conf").unwrap();
        assert!(
            conf.contains("name = kvm1") && conf.contains("name = kvm2"),
            "{conf}"
        );
        assert!(conf.contains("ip_address = 192.0.2.102"), "{conf}");
    }
    w.detach_all().await;
    w.assert_clean(&[FSTAB.into(), FSTAB.into()], "two hosts detached")
        .await;
}

#[tokio::test]
async fn two_host_attach_failure_on_the_second_host_unwinds_both_with_fake_kernel() {
    // 0-3 ONTAP, 4-8 kvm1, 9-13 kvm2, 14 format, 15-17 kvm1, 18-20 kvm2.
    for (k, what) in [(10, "login"), (13, "register"), (18, "mount")] {
        let pool = format!("blk-two-fail-{k}");
        let w = world(&pool, 2).await;
        match what {
            "login" => w.hosts[1].kernel.fail("iscsiadm", "--login", 1),
            "register" => w.hosts[1].kernel.fail("o2cb", "register-cluster", 1),
            _ => w.hosts[1].kernel.fail("mount", "", 1),
        }
        let err = w
            .datastore()
            .attach(&w.env)
            .await
            .unwrap()
            .lock_registry(w.locks.clone())
            .run(&w.env)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::StepFailed { index, .. } if index == k),
            "{k}: {err}"
        );
        w.assert_clean(
            &[FSTAB.into(), FSTAB.into()],
            &format!("two hosts, step {k}"),
        )
        .await;
    }
}

#[tokio::test]
async fn detach_failure_unwinds_back_to_attached_with_fake_kernel() {
    // 2 UnmountOcfs2, 3 DetachLun, 4 DisconnectIscsi, 5 UnregisterCluster, 8 UnmapLun.
    detach_failure_at(BlockProtocol::Iscsi, "blk-detach", &[2, 3, 4, 5, 8]).await;
}

#[tokio::test]
async fn grow_resizes_the_disk_rescans_every_path_and_grows_ocfs2_with_fake_kernel() {
    let w = world("blk-grow", 1).await;
    w.attach_now().await;
    let h = &w.hosts[0];
    let before = h.kernel.calls().len();
    w.datastore().grow(&w.env, 20 << 30).await.unwrap();
    let lun = w
        .client
        .luns()
        .find(
            &Query::new()
                .filter("name", "/vol/blk_grow/lun0")
                .fields(["space.size"]),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lun.size(), Some(20 << 30));
    let (wwid, _) = w.disk_identity().await;
    assert_eq!(
        h.kernel.calls()[before..],
        [
            format!("multipathd resize map {wwid}"),
            format!("tunefs.ocfs2 -y -S {}", h.root.join("dev/dm-1").display()),
        ]
    );
    for sd in ["sdb", "sdc"] {
        assert_eq!(
            h.read(&format!("sys/block/{sd}/device/rescan")).as_deref(),
            Some("1"),
            "{sd}"
        );
    }
    // Growing to the same size again only rescans; shrinking is refused.
    w.datastore().grow(&w.env, 20 << 30).await.unwrap();
    let err = w.datastore().grow(&w.env, 5 << 30).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid size \"5368709120\": a datastore only grows"
    );
    w.detach_all().await;
    w.assert_clean(&[FSTAB.into()], "grown, detached").await;
}

#[tokio::test]
async fn nvme_grow_rescans_the_controllers_with_fake_kernel() {
    let w = world_with("blk-nvgrow", 1, BlockProtocol::NvmeTcp).await;
    w.attach_now().await;
    let h = &w.hosts[0];
    let before = h.kernel.calls().len();
    w.datastore().grow(&w.env, 12 << 30).await.unwrap();
    assert_eq!(
        h.kernel.calls()[before..],
        [
            format!("nvme ns-rescan {}", h.root.join("dev/nvme0").display()),
            format!("nvme ns-rescan {}", h.root.join("dev/nvme1").display()),
            format!(
                "tunefs.ocfs2 -y -S {}",
                h.root.join("dev/nvme0n1").display()
            ),
        ]
    );
    w.detach_all().await;
    w.assert_clean(&[FSTAB.into()], "nvme grown, detached")
        .await;
}

#[tokio::test]
async fn a_flexclone_of_an_ocfs2_datastore_attaches_beside_its_parent_with_fake_kernel() {
    let w = world("blk-par", 1).await;
    w.attach_now().await;
    let (parent_wwid, _) = w.disk_identity().await;
    let parent_uuid = w.san.formatted.lock().unwrap()[&parent_wwid].1.clone();
    let clone_vol = kvmstor::ops::flexclone(
        &w.env,
        &kvmstor::ops::DatastoreVolume::new("svm1", "blk_par"),
        "blk_par_dev",
        None,
    )
    .await
    .unwrap();
    assert!(!clone_vol.is_empty());
    // ONTAP's clone carries the parent's LUN (with a new serial, unmapped) and its blocks;
    // the simulator clones the LUN record, and the fake kernel is told the blocks hold the
    // parent's file system.
    let serial = w
        .client
        .luns()
        .find(
            &Query::new()
                .filter("name", "/vol/blk_par_dev/lun0")
                .fields(["serial_number"]),
        )
        .await
        .unwrap()
        .unwrap()
        .serial_number
        .unwrap();
    let clone_wwid = format!("3600a0980{}", hex(&serial));
    assert_ne!(
        clone_wwid, parent_wwid,
        "the clone's LUN has its own serial"
    );
    w.san
        .formatted
        .lock()
        .unwrap()
        .insert(clone_wwid.clone(), ("blk-par".into(), parent_uuid.clone()));

    let clone = BlockDatastore::iscsi_ocfs2("svm1", "blk-par-dev", "aggr1", 10 << 30)
        .hosts(["kvm1"])
        .mount_point(w.hosts[0].mount_point("blk-par-dev"))
        .device_wait(Duration::from_secs(15))
        .cloned_ocfs2(parent_uuid.clone());
    let saga = clone.attach(&w.env).await.unwrap();
    let all = labels(&saga);
    assert_eq!(all[9], "ReuuidOcfs2 kvm1:/vol/blk_par_dev/lun0");
    assert!(!all.iter().any(|l| l.starts_with("FormatOcfs2")));
    let report = w.run(saga).await.unwrap();
    // The clone's LUN is found in the clone, as on ONTAP, not created.
    let create_lun = &report.journal.steps[1];
    assert_eq!(
        kvmstor::saga::Step::label(&create_lun.step),
        "CreateLun svm1:/vol/blk_par_dev/lun0"
    );
    assert!(matches!(
        create_lun.state,
        kvmstor::saga::StepState::Done { changed: false, .. }
    ));
    {
        let f = w.san.formatted.lock().unwrap();
        assert_eq!(
            f[&clone_wwid],
            (
                "blk-par-cloned".to_owned(),
                "0c1a2b3c-4d5e-4f60-8172-839405a6b7c8".to_owned()
            )
        );
        assert_eq!(f[&parent_wwid], ("blk-par".to_owned(), parent_uuid));
    }
    let h = &w.hosts[0];
    let mounts = h.read("proc/self/mountinfo").unwrap();
    assert!(mounts.contains(&format!("/dev/mapper/{parent_wwid} ")));
    assert!(mounts.contains(&format!("/dev/mapper/{clone_wwid} ")));
    let mkfs = h
        .kernel
        .calls()
        .iter()
        .filter(|c| c.starts_with("mkfs"))
        .count();
    assert_eq!(mkfs, 1, "the clone is never formatted");
    // A new UUID with tunefs' own `-cloned` label, and no `tunefs.ocfs2 -L`: a clone of a
    // mounted OCFS2 has dirty journals, which `-L` refuses (as the lab showed).
    let tunes: Vec<String> = h
        .kernel
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("tunefs.ocfs2"))
        .collect();
    assert_eq!(tunes.len(), 1, "{tunes:?}");
    assert!(
        tunes[0].starts_with("tunefs.ocfs2 --cloned-volume -y "),
        "{tunes:?}"
    );

    // Detaching the clone leaves the parent's host-wide state alone (o2cb online, its
    // sessions, its map, the drop-in); deleting the clone's objects keeps the parent's.
    clone
        .clone()
        .delete_ontap_objects(true)
        .detach(&w.env)
        .await
        .unwrap()
        .lock_registry(w.locks.clone())
        .run(&w.env)
        .await
        .unwrap();
    assert!(h.kernel.online());
    assert_eq!(list(&h.root.join("sys/class/iscsi_session")).len(), 2);
    w.assert_attached("parent after the clone's detach").await;
    assert!(w
        .client
        .volumes()
        .by_name("svm1", "blk_par_dev")
        .await
        .unwrap()
        .is_none());
    w.detach_all().await;
    w.assert_clean(&[FSTAB.into()], "parent detached").await;
}

#[tokio::test]
async fn detach_crash_at_every_step_then_recover_with_fake_kernel() {
    // 0 RemovePool .. 7 RemoveMultipathConfig, 8 UnmapLun (ONTAP objects kept).
    detach_crash_matrix(BlockProtocol::Iscsi, 9).await;
}

#[tokio::test]
async fn two_host_attach_failure_at_every_step_leaves_a_clean_slate_with_fake_kernel() {
    let all = {
        let w = world("blk-two-labels", 2).await;
        labels(&w.datastore().attach(&w.env).await.unwrap())
    };
    assert_eq!(all.len(), 21);
    let cases = all.iter().enumerate().map(|(k, label)| async move {
        // Both hosts share libvirt's in-process test driver, so kvm2's pool step finds
        // kvm1's pool (unchanged) and cannot fail on its own.
        if label.starts_with("DefinePool kvm2") {
            return;
        }
        let pool = "blk-two-all".to_owned() + &format!("-{k}");
        let w = world(&pool, 2).await;
        let saga = w.datastore().attach(&w.env).await.unwrap();
        let label = &labels(&saga)[k];
        let fstab = inject(&w, label).await;
        let err = w.run(saga).await.unwrap_err();
        assert!(
            matches!(&err, Error::StepFailed { index, .. } if *index == k),
            "{k} ({label}): {err}"
        );
        if label.starts_with("ConfigureO2cb") {
            // The foreign cluster.conf on the failing host is untouched; the other host's
            // (written by this run) was unwound.
            let h = w
                .hosts
                .iter()
                .find(|h| label.contains(h.host.name()))
                .unwrap();
            assert!(h
                .read("etc/ocfs2/cluster.conf")
                .unwrap()
                .contains("name = other"));
            std::fs::remove_dir_all(h.root.join("etc/ocfs2")).unwrap();
        }
        if label.starts_with("DefinePool") {
            w.remove_pool().await;
        }
        let fstabs: Vec<String> = w
            .hosts
            .iter()
            .map(|h| {
                if label.starts_with("PersistFstab") && label.contains(h.host.name()) {
                    fstab.clone()
                } else {
                    FSTAB.to_owned()
                }
            })
            .collect();
        w.assert_clean(&fstabs, &format!("two hosts, step {k} ({label})"))
            .await;
    });
    run_cases(cases.collect()).await;
}

#[tokio::test]
async fn gfs2_attach_failure_at_every_step_leaves_a_clean_slate_with_fake_kernel() {
    failure_matrix_fs(BlockProtocol::Iscsi, true, 13).await;
}

#[tokio::test]
async fn gfs2_crash_at_every_step_then_recover_unwinds_or_finishes_with_fake_kernel() {
    crash_matrix_fs(BlockProtocol::Iscsi, true, 13).await;
}

#[tokio::test]
async fn gfs2_attach_plan_run_grow_and_detach_with_fake_kernel() {
    let mut w = world("blk-gfs", 2).await;
    w.gfs2 = true;
    let saga = w.datastore().attach(&w.env).await.unwrap();
    let all = labels(&saga);
    assert_eq!(
        all[7..9],
        [
            "ConfigureCorosync kvm1:kvmstor".to_owned(),
            "StartClusterServices kvm1".into(),
        ]
    );
    assert_eq!(all[14], "FormatGfs2 kvm1:/vol/blk_gfs/lun0");
    assert!(all[15].starts_with("MountGfs2 kvm1:"));
    let plan = saga.plan().to_string();
    assert!(
        plan.contains("mkfs.gfs2 -O -p lock_dlm -t kvmstor:blk-gfs -j 2 "),
        "{plan}"
    );
    assert!(
        plan.contains("kvm2$ systemctl enable --now dlm.service"),
        "{plan}"
    );
    assert!(saga.workflow().starts_with("iscsi-gfs2-attach "));
    w.run(saga).await.unwrap();
    w.assert_attached("gfs2 attached").await;
    for h in &w.hosts {
        let conf = h.read("etc/corosync/corosync.conf").unwrap();
        assert!(
            conf.contains("ring0_addr: 192.0.2.101") && conf.contains("ring0_addr: 192.0.2.102"),
            "{conf}"
        );
        assert!(conf.contains("two_node: 1"), "{conf}");
        assert!(!h.root.join("etc/ocfs2").exists());
    }
    let mkfs = |h: &TestHost| {
        h.kernel
            .calls()
            .iter()
            .filter(|c| c.starts_with("mkfs"))
            .count()
    };
    assert_eq!((mkfs(&w.hosts[0]), mkfs(&w.hosts[1])), (1, 0));
    let before = w.hosts[0].kernel.calls().len();
    w.datastore().grow(&w.env, 20 << 30).await.unwrap();
    assert_eq!(
        w.hosts[0].kernel.calls()[before..].last().unwrap(),
        &format!("gfs2_grow {}", w.hosts[0].mount_point("blk-gfs").display())
    );
    let detach = w.datastore().detach(&w.env).await.unwrap();
    assert_eq!(
        labels(&detach)[..7],
        [
            "RemovePool kvm1:blk-gfs".to_owned(),
            "RemoveFstab kvm1:kvmstor-blk-gfs".into(),
            format!(
                "UnmountGfs2 kvm1:{}",
                w.hosts[0].mount_point("blk-gfs").display()
            ),
            "DetachLun kvm1:/vol/blk_gfs/lun0".into(),
            labels(&detach)[4].clone(),
            "StopClusterServices kvm1".into(),
            "RemoveCorosyncConfig kvm1:kvmstor".into(),
        ]
    );
    w.detach_all().await;
    w.assert_clean(&[FSTAB.into(), FSTAB.into()], "gfs2 detached")
        .await;
}

// ---- Detach matrices for every protocol: a failure at every step, a crash at every step ----

impl TestHost {
    /// Everything a detach changes on this host and its unwind must put back: every file
    /// outside `sys/` with its content (fstab, mountinfo, multipath, o2cb, the mount point),
    /// the iSCSI sessions and node records, units, the o2cb cluster state, and how many disks,
    /// maps and NVMe controllers there are (their kernel names change with a new login or
    /// connect, as on a real host; the stable names are in fstab and mountinfo).
    fn shape(&self) -> String {
        let opts = TreeOpts {
            skip: &["sys"],
            ..TreeOpts::default()
        };
        let files = support::tree(&self.root, &opts);
        let block = list(&self.root.join("sys/block"));
        let count = |prefix: &str| block.iter().filter(|b| b.starts_with(prefix)).count();
        let st = self.kernel.st.lock().unwrap();
        let sessions: Vec<(&String, &String)> = st.sessions.iter().map(|s| (&s.1, &s.2)).collect();
        format!(
            "files {files:#?}\nsessions {sessions:?}\nrecords {:?}\nunits {:?}\nonline {}\n\
             sd {} dm {} nvme-ns {} nvme-ctrl {}",
            st.records,
            st.units,
            st.online,
            count("sd"),
            count("dm-"),
            count("nvme"),
            list(&self.root.join("sys/class/nvme")).len(),
        )
    }
}

/// Makes detach step `label` fail; returns the environment to run the detach with and the
/// frozen directory, if any (thawed when the guard drops).
fn inject_detach(w: &World, label: &str) -> (Env, Option<Frozen>) {
    let h = &w.hosts[0];
    let delete = |path: &str| w.sim.faults().add(rpc_failure("DELETE", path));
    let mut frozen = None;
    match label.split_whitespace().next().unwrap() {
        "RemovePool" => {
            // libvirtd cannot be reached.
            let host = support::without_libvirtd(&h.host);
            return (Env::new(w.client.clone()).host(host), None);
        }
        "RemoveFstab" => frozen = Some(Frozen::new(&h.root.join("etc"))),
        "UnmountOcfs2" => h.kernel.fail("umount", "", 1),
        "DetachLun" => h.kernel.fail("multipath", "-f", 1),
        // The second portal's logout (controller's disconnect) fails after the first's.
        "DisconnectIscsi" => h.kernel.fail("iscsiadm", "--logout", 2),
        // (Both controllers are kvmstor's: one `nvme disconnect -n NQN`, which fails.)
        "DisconnectNvme" => h.kernel.fail("nvme", "disconnect", 1),
        "UnregisterCluster" => h.kernel.fail("o2cb", "unregister-cluster", 1),
        "RemoveO2cbConfig" => frozen = Some(Frozen::new(&h.root.join("etc/ocfs2"))),
        "RemoveMultipathConfig" => {
            let dropins: Vec<PathBuf> = list(&h.root.join("etc/multipath/conf.d"))
                .iter()
                .map(|n| h.root.join("etc/multipath/conf.d").join(n))
                .collect();
            assert_eq!(dropins.len(), 1, "{dropins:?}");
            frozen = Some(Frozen::new(&h.root.join("etc/multipath/conf.d")));
        }
        "UnmapLun" => delete("/api/protocols/san/lun-maps/*"),
        "UnmapNamespace" => delete("/api/protocols/nvme/subsystem-maps/*"),
        other => panic!("no detach injection for {other}"),
    }
    (w.env.clone(), frozen)
}

/// Step labels of the single-host detach (ONTAP objects kept) over `protocol`.
async fn detach_labels(protocol: BlockProtocol) -> Vec<String> {
    let w = world_with("blk-dlabels", 1, protocol).await;
    labels(&w.datastore().detach(&w.env).await.unwrap())
}

/// A detach failing at each of its `steps` steps unwinds back to exactly the attached state
/// (ONTAP objects, pool, fstab, mount, sessions or controllers, maps, o2cb), and a detach
/// run afterwards finishes cleanly.
async fn detach_failure_matrix(protocol: BlockProtocol, steps: usize) {
    let ks: Vec<usize> = (0..steps).collect();
    assert_eq!(detach_labels(protocol).await.len(), steps);
    detach_failure_at(protocol, "blk-dfail", &ks).await;
}

/// As [`detach_failure_matrix`], for steps `ks` only, in worlds named `PREFIX-PROTOCOL-k`.
async fn detach_failure_at(protocol: BlockProtocol, prefix: &str, ks: &[usize]) {
    let all = detach_labels(protocol).await;
    let cases = ks.iter().map(|&k| (k, &all[k])).map(|(k, label)| async move {
        let pool = format!("{prefix}-{}-{k}", protocol.as_str());
        let w = world_with(&pool, 1, protocol).await;
        w.attach_now().await;
        let context = format!("{}: detach failure at step {k} ({label})", protocol.as_str());
        w.assert_attached(&context).await;
        let before = w.hosts[0].shape();
        let (env, frozen) = inject_detach(&w, label);
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("detach.json");
        let err = w
            .datastore()
            .detach(&w.env)
            .await
            .unwrap()
            .journal_file(&journal)
            .lock_registry(w.locks.clone())
            .run(&env)
            .await
            .unwrap_err();
        drop(frozen);
        if label.starts_with("RemovePool") {
            // Without libvirt the failed step's own undo (define the pool again, should it
            // have been half removed) fails too: the run stops and says so; once libvirt is
            // back, recovering finishes the unwind.
            assert!(err.needs_attention(), "{context}: {err}");
            assert!(
                err.to_string().contains(&format!(
                    "step 0 (RemovePool kvm1:{pool}) failed, then undoing RemovePool kvm1:{pool} failed"
                )),
                "{context}: {err}"
            );
            let report = recover::<BlockStep>(&journal, &w.env, RecoverMode::Unwind, w.locks.clone())
                .await
                .unwrap();
            assert_eq!(report.journal.status, RunStatus::Unwound, "{context}");
        } else {
            match &err {
                Error::StepFailed { index, step, .. } => assert_eq!(
                    (*index, step.split_whitespace().next()),
                    (k, label.split_whitespace().next()),
                    "{context}: {err}"
                ),
                other => panic!("{context}: {other}"),
            }
            assert!(!err.needs_attention(), "{context}: {err}");
        }
        w.assert_attached(&context).await;
        assert_eq!(w.hosts[0].shape(), before, "{context}");
        w.detach_all().await;
        w.assert_clean(&[FSTAB.into()], &format!("{context}, detached"))
            .await;
    });
    run_cases(cases.collect()).await;
}

/// A detach crashed before or after each of its `steps` steps, recovered: `Unwind` ends
/// exactly attached, `Resume` ends detached with the ONTAP volume, disk and group kept and
/// the map gone.
async fn detach_crash_matrix(protocol: BlockProtocol, steps: usize) {
    assert_eq!(detach_labels(protocol).await.len(), steps);
    let cases = crash_cases(steps).into_iter().map(|c| async move {
        let (point, mode) = (c.point, c.mode);
        let pool = format!("blk-dcrash-{}-{}", protocol.as_str(), c.tag());
        let w = world_with(&pool, 1, protocol).await;
        w.attach_now().await;
        let before = w.hosts[0].shape();
        let saga = w.datastore().detach(&w.env).await.unwrap();
        let report = w.crash_and_recover(saga, &c).await;
        let context = format!(
            "{}: detach crash {point:?}, recover {mode:?}",
            protocol.as_str()
        );
        match mode {
            RecoverMode::Unwind => {
                assert_eq!(report.journal.status, RunStatus::Unwound, "{context}");
                w.assert_attached(&context).await;
                assert_eq!(w.hosts[0].shape(), before, "{context}");
            }
            RecoverMode::Resume => {
                assert_eq!(report.journal.status, RunStatus::Completed, "{context}");
                assert_eq!(w.ontap_counts().await, [1, 1, 1, 0], "{context}");
                assert!(w.pool_def().await.is_none(), "{context}: pool");
                w.hosts[0].assert_clean(&pool, FSTAB, &context);
            }
        }
        w.detach_all().await;
        w.assert_clean(&[FSTAB.into()], &format!("{context}, detached"))
            .await;
    });
    run_cases(cases.collect()).await;
}

#[tokio::test]
async fn iscsi_detach_failure_at_every_step_unwinds_to_attached_with_fake_kernel() {
    // RemovePool, RemoveFstab, UnmountOcfs2, DetachLun, DisconnectIscsi, UnregisterCluster,
    // RemoveO2cbConfig, RemoveMultipathConfig, UnmapLun.
    detach_failure_matrix(BlockProtocol::Iscsi, 9).await;
}

#[tokio::test]
async fn nvme_detach_failure_at_every_step_unwinds_to_attached_with_fake_kernel() {
    // RemovePool, RemoveFstab, UnmountOcfs2, DisconnectNvme, UnregisterCluster,
    // RemoveO2cbConfig, UnmapNamespace.
    detach_failure_matrix(BlockProtocol::NvmeTcp, 7).await;
}

#[tokio::test]
async fn nvme_detach_crash_at_every_step_then_recover_with_fake_kernel() {
    detach_crash_matrix(BlockProtocol::NvmeTcp, 7).await;
}

#[tokio::test]
async fn fc_detach_failure_at_every_step_unwinds_to_attached_with_fake_kernel_on_synthetic_sysfs() {
    // RemovePool, RemoveFstab, UnmountOcfs2, DetachLun, UnregisterCluster, RemoveO2cbConfig,
    // RemoveMultipathConfig, UnmapLun.
    detach_failure_matrix(BlockProtocol::Fcp, 8).await;
}

#[tokio::test]
async fn fc_detach_crash_at_every_step_then_recover_with_fake_kernel_on_synthetic_sysfs() {
    detach_crash_matrix(BlockProtocol::Fcp, 8).await;
}
