//! A host whose side is simulated: files under a scratch root, a fake kernel for the
//! storage tools, libvirt's `test:///default`.
//!
//! Only ONTAP is real. This is what the tools' tests and the README's sessions use on a
//! machine without NFS, SMB, iSCSI, NVMe or cluster file-system clients; the names say so
//! (`--sim-host-root`, `add_simulated_host`), so it cannot be mistaken for a real attach.
//!
//! The fake kernel keeps all its state in files under the root, so a later process (the
//! `detach` after an `attach`) sees what an earlier one did:
//! * mounts: `ROOT/proc/self/mountinfo`;
//! * iSCSI sessions, SCSI disks, multipath maps, NVMe controllers and namespaces: a
//!   synthetic sysfs under `ROOT/sys`, made and removed as logins, scans, `delete` writes,
//!   `multipath -f` and `nvme connect`/`disconnect` happen. A scan finds the LUNs ONTAP maps
//!   to the host's IQN or WWPN, a connect the namespaces of a subsystem holding its NQN: the
//!   runner asks ONTAP, so the host sees exactly what the workflow arranged there;
//! * iSCSI node records, systemd units, the o2cb cluster: JSON files under
//!   `ROOT/var/lib/kvmstor-sim`;
//! * what was formatted on a shared disk: `san.json` beside the hosts' roots, shared by
//!   every simulated host under the same parent.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use host_storage::autofs::Reload;
use host_storage::{Command, Output, Runner};
use kvmstor::Host;
use ontap_client::{Client, Query};
use serde::{Deserialize, Serialize};

/// The mount table a fresh scratch root starts with.
pub const ROOT_MOUNT: &str = "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n";
/// The fstab a fresh scratch root starts with.
pub const FSTAB: &str = "UUID=1234 / ext4 defaults 0 1\n";
/// The autofs master map a fresh scratch root starts with.
pub const AUTO_MASTER: &str = "+dir:/etc/auto.master.d\n+auto.master\n";
/// The libvirt URI of simulated hosts.
pub const SIM_LIBVIRT_URI: &str = "test:///default";
/// How often the fake kernel reacts to sysfs writes (SCSI scans, disk deletes).
pub const REACTION_PERIOD: Duration = Duration::from_millis(5);

/// A simulated host's initiator identities, derived from its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimIdentity {
    /// iSCSI initiator name, `iqn.1994-05.com.redhat:<name>`.
    pub iqn: String,
    /// NVMe host NQN, `nqn.2014-08.org.nvmexpress:uuid:<hostid>`.
    pub nqn: String,
    /// NVMe host id (a UUID derived from the name).
    pub hostid: String,
    /// The FC HBA port's WWPN, `10:00:00:90:fa:xx:xx:xx` (derived from the name).
    pub wwpn: String,
}

impl SimIdentity {
    /// The identities of host `name` (the same name gives the same identities).
    pub fn of(name: &str) -> SimIdentity {
        // FNV-1a, twice with different offsets: stable across runs and platforms.
        let fnv = |seed: u64| {
            name.bytes().fold(seed, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
            })
        };
        let (a, b) = (fnv(0xcbf2_9ce4_8422_2325), fnv(0x8422_2325_cbf2_9ce4));
        let hostid = format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            (b >> 48) & 0xfff,
            b & 0xffff_ffff_ffff
        );
        let w = b.to_be_bytes();
        SimIdentity {
            iqn: format!("iqn.1994-05.com.redhat:{name}"),
            nqn: format!("nqn.2014-08.org.nvmexpress:uuid:{hostid}"),
            hostid,
            wwpn: format!("10:00:00:90:fa:{:02x}:{:02x}:{:02x}", w[5], w[6], w[7]),
        }
    }
}

/// What a `mkfs` left on a shared disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Formatted {
    fstype: String,
    label: String,
    uuid: String,
}

/// Plays the kernel and the storage tools on a scratch root (see the module docs):
/// `mount`/`umount`, `systemctl`, `iscsiadm`, `multipathd`/`multipath`, `blockdev`,
/// `nvme`, `o2cb`, `blkid`, `mkfs.ocfs2`/`mkfs.gfs2`, `tunefs.ocfs2`, `debugfs.ocfs2`,
/// `gfs2_grow`; every other program fails with exit 127 (not simulated). Records each
/// command line.
#[derive(Debug)]
pub struct SimKernelRunner {
    root: PathBuf,
    san: PathBuf,
    identity: Option<SimIdentity>,
    ontap: Option<Client>,
    calls: Mutex<Vec<String>>,
    /// Serialises read-modify-write of the state files.
    state: Mutex<()>,
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn read_trim(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok().map(|s| s.trim().to_owned())
}

/// The number after `prefix` in each of `names`, the largest, plus one.
fn next_index(names: &[String], prefix: &str) -> u32 {
    names
        .iter()
        .filter_map(|n| n.strip_prefix(prefix))
        .filter_map(|n| n.split(':').next()?.parse::<u32>().ok())
        .max()
        .map_or(0, |m| m + 1)
}

impl SimKernelRunner {
    /// A fake kernel for the scratch root `root` that only mounts (no block devices).
    pub fn new(root: &Path) -> Self {
        let san = root
            .parent()
            .map_or_else(|| root.join("san.json"), |p| p.join("san.json"));
        SimKernelRunner {
            root: root.to_owned(),
            san,
            identity: None,
            ontap: None,
            calls: Mutex::new(Vec::new()),
            state: Mutex::new(()),
        }
    }

    /// Also plays block storage for a host with `identity`, asking `ontap` what it maps to
    /// the host.
    #[must_use]
    pub fn with_block(mut self, identity: SimIdentity, ontap: Client) -> Self {
        self.identity = Some(identity);
        self.ontap = Some(ontap);
        self
    }

    /// The command lines run so far (secrets redacted as by [`Command`]'s `Display`).
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    fn sys(&self, rel: &str) -> PathBuf {
        self.root.join("sys").join(rel)
    }

    fn state_file(&self, name: &str) -> PathBuf {
        self.root.join("var/lib/kvmstor-sim").join(name)
    }

    fn load<T: serde::de::DeserializeOwned + Default>(&self, path: &Path) -> T {
        std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn store<T: Serialize>(&self, path: &Path, v: &T) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, serde_json::to_vec_pretty(v).unwrap_or_default())
    }

    fn fail(&self, cmd: &Command, what: &str) -> host_storage::Result<Output> {
        cmd.check(Output::exit(32, "", format!("simulated kernel: {what}")))
    }

    // ---- mounts ----

    fn mount(&self, fstype: &str, opts: &str, source: &str, target: &str) -> std::io::Result<()> {
        let table = std::fs::read_to_string(self.root.join("proc/self/mountinfo"))?;
        let kind = if fstype == "nfs" { "nfs4" } else { fstype };
        let line = format!("900 22 0:99 / {target} rw,relatime - {kind} {source} rw,{opts}\n");
        std::fs::write(self.root.join("proc/self/mountinfo"), table + &line)
    }

    fn umount(&self, target: &str) -> std::io::Result<()> {
        let path = self.root.join("proc/self/mountinfo");
        let table = std::fs::read_to_string(&path)?;
        let needle = format!(" {target} ");
        let kept: String = table
            .lines()
            .filter(|l| !l.contains(&needle))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(path, kept)
    }

    // ---- systemd ----

    fn systemctl(&self, args: &[&str]) -> std::io::Result<Output> {
        let path = self.state_file("units.json");
        let mut units: BTreeMap<String, (bool, bool)> = self.load(&path);
        let out = match args {
            ["enable", "--now", unit] => {
                units.insert((*unit).to_owned(), (true, true));
                Output::success("")
            }
            [verb, unit] => {
                let e = units.entry((*unit).to_owned()).or_default();
                match *verb {
                    "is-enabled" if e.0 => Output::success("enabled\n"),
                    "is-enabled" => Output::exit(1, "disabled\n", ""),
                    "is-active" if e.1 => Output::success("active\n"),
                    "is-active" => Output::exit(3, "inactive\n", ""),
                    "start" | "restart" => {
                        e.1 = true;
                        Output::success("")
                    }
                    "stop" => {
                        e.1 = false;
                        Output::success("")
                    }
                    "enable" => {
                        e.0 = true;
                        Output::success("")
                    }
                    "disable" => {
                        e.0 = false;
                        Output::success("")
                    }
                    // reload, daemon-reload, ...: nothing to remember.
                    _ => Output::success(""),
                }
            }
            _ => Output::success(""),
        };
        units.retain(|_, u| *u != (false, false));
        self.store(&path, &units)?;
        Ok(out)
    }

    // ---- iSCSI ----

    fn sessions(&self) -> Vec<(u32, String, String)> {
        names(&self.sys("class/iscsi_session"))
            .into_iter()
            .filter_map(|s| {
                let sid: u32 = s.strip_prefix("session")?.parse().ok()?;
                let target = read_trim(&self.sys(&format!("class/iscsi_session/{s}/targetname")))?;
                let c = self.sys(&format!("class/iscsi_connection/connection{sid}:0"));
                let addr = read_trim(&c.join("persistent_address"))?;
                let port = read_trim(&c.join("persistent_port"))?;
                Some((sid, target, format!("{addr}:{port}")))
            })
            .collect()
    }

    fn login(&self, target: &str, portal: &str) -> std::io::Result<()> {
        if self
            .sessions()
            .iter()
            .any(|(_, t, p)| t == target && p == portal)
        {
            return Ok(());
        }
        let sid = next_index(&names(&self.sys("class/iscsi_session")), "session").max(1);
        let host = sid + 10;
        let (addr, port) = portal.rsplit_once(':').unwrap_or((portal, "3260"));
        let s = self.sys(&format!("class/iscsi_session/session{sid}"));
        std::fs::create_dir_all(&s)?;
        std::fs::write(s.join("targetname"), format!("{target}\n"))?;
        std::fs::write(s.join("tpgt"), "1030\n")?;
        std::fs::write(s.join("state"), "LOGGED_IN\n")?;
        let dev = self.sys(&format!("devices/platform/host{host}/session{sid}"));
        std::fs::create_dir_all(&dev)?;
        std::os::unix::fs::symlink(&dev, s.join("device"))?;
        let c = self.sys(&format!("class/iscsi_connection/connection{sid}:0"));
        std::fs::create_dir_all(&c)?;
        std::fs::write(c.join("persistent_address"), format!("{addr}\n"))?;
        std::fs::write(c.join("persistent_port"), format!("{port}\n"))?;
        let h = self.sys(&format!("class/scsi_host/host{host}"));
        std::fs::create_dir_all(&h)?;
        std::fs::write(h.join("scan"), "")
    }

    fn logout(&self, target: &str, portal: &str) {
        let Some((sid, _, _)) = self
            .sessions()
            .into_iter()
            .find(|(_, t, p)| t == target && p == portal)
        else {
            return;
        };
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

    fn iscsiadm(&self, a: &[&str]) -> std::io::Result<Output> {
        let path = self.state_file("iscsi-nodes.json");
        let mut nodes: BTreeMap<String, BTreeMap<String, String>> = self.load(&path);
        let key = |t: &str, p: &str| format!("{t} {p}");
        let out = match a {
            ["-m", "session"] => {
                let s = self.sessions();
                if s.is_empty() {
                    Output::exit(21, "", "iscsiadm: No active sessions.\n")
                } else {
                    Output::success(
                        s.iter()
                            .map(|(sid, t, p)| format!("tcp: [{sid}] {p},1030 {t} (non-flash)\n"))
                            .collect::<String>(),
                    )
                }
            }
            ["-m", "node", "-T", t, "-p", p] => match nodes.get(&key(t, p)) {
                Some(r) => Output::success(
                    r.iter()
                        .map(|(k, v)| format!("{k} = {v}\n"))
                        .collect::<String>(),
                ),
                None => Output::exit(21, "", "iscsiadm: No records found\n"),
            },
            ["-m", "node", "-T", t, "-p", p, "-I", "default", "-o", "new"] => {
                let mut r = BTreeMap::new();
                r.insert("node.name".to_owned(), (*t).to_owned());
                r.insert("node.session.scan".to_owned(), "auto".to_owned());
                nodes.insert(key(t, p), r);
                Output::success("New iSCSI node added\n")
            }
            ["-m", "node", "-T", t, "-p", p, "-o", "update", "-n", n, "-v", v] => {
                match nodes.get_mut(&key(t, p)) {
                    Some(r) => {
                        r.insert((*n).to_owned(), (*v).to_owned());
                        Output::success("")
                    }
                    None => Output::exit(21, "", "iscsiadm: No records found\n"),
                }
            }
            ["-m", "node", "-T", t, "-p", p, "-o", "delete"] => {
                if nodes.remove(&key(t, p)).is_some() {
                    Output::success("")
                } else {
                    Output::exit(21, "", "iscsiadm: No records found\n")
                }
            }
            ["-m", "node", "-T", t, "-p", p, "--login"] => {
                if !nodes.contains_key(&key(t, p)) {
                    return Ok(Output::exit(21, "", "iscsiadm: No records found\n"));
                }
                self.login(t, p)?;
                Output::success("Login successful.\n")
            }
            ["-m", "node", "-T", t, "-p", p, "--logout"] => {
                self.logout(t, p);
                Output::success("Logout successful.\n")
            }
            _ => Output::exit(
                127,
                "",
                "simulated host: this iscsiadm call is not simulated",
            ),
        };
        self.store(&path, &nodes)?;
        Ok(out)
    }

    // ---- SCSI disks and multipath ----

    /// (LUN id, serial) of every LUN ONTAP maps to an igroup holding this host's IQN or
    /// WWPN.
    async fn mapped_luns(&self) -> Vec<(u64, String)> {
        let (Some(client), Some(id)) = (&self.ontap, &self.identity) else {
            return Vec::new();
        };
        let Ok(groups) = client
            .igroups()
            .list_all(&Query::new().fields(["name", "initiators"]))
            .await
        else {
            return Vec::new();
        };
        let mine: Vec<String> = groups
            .iter()
            .filter(|g| g.has_initiator(&id.iqn) || g.has_initiator(&id.wwpn))
            .filter_map(|g| g.name.clone())
            .collect();
        let Ok(maps) = client
            .lun_maps()
            .list_all(&Query::new().fields(["lun", "igroup", "logical_unit_number"]))
            .await
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for m in maps {
            let group = m.igroup.as_ref().and_then(|g| g.name.clone());
            if !group.is_some_and(|g| mine.contains(&g)) {
                continue;
            }
            let (Some(lun), Some(id)) = (
                m.lun.as_ref().and_then(|l| l.name.clone()),
                m.logical_unit_number,
            ) else {
                continue;
            };
            let found = client
                .luns()
                .find(
                    &Query::new()
                        .filter("name", &lun)
                        .fields(["serial_number", "name"]),
                )
                .await;
            if let Ok(Some(serial)) = found.map(|l| l.and_then(|l| l.serial_number)) {
                out.push((u64::from(id), serial));
            }
        }
        out
    }

    /// A SCSI disk of LUN serial `serial` at logical-unit directory `lun_dir`, and its
    /// multipath map.
    fn add_disk(&self, lun_dir: &Path, serial: &str) -> std::io::Result<()> {
        if lun_dir.exists() {
            return Ok(());
        }
        let block = names(&self.sys("block"));
        // The first free kernel name: sdb .. sdz, then sdaa, sdab, ... (sda is the root).
        let sd = (1usize..)
            .map(|i| {
                let mut name = String::new();
                let mut n = i;
                loop {
                    name.insert(0, char::from(b'a' + (n % 26) as u8));
                    if n < 26 {
                        break;
                    }
                    n = n / 26 - 1;
                }
                format!("sd{name}")
            })
            .find(|n| !block.contains(n))
            .unwrap_or_else(|| "sdzz".to_owned());
        std::fs::create_dir_all(lun_dir.join("block").join(&sd))?;
        let mut page = vec![0u8, 0x80, 0, serial.len() as u8];
        page.extend_from_slice(serial.as_bytes());
        std::fs::write(lun_dir.join("vpd_pg80"), page)?;
        std::fs::write(
            lun_dir.join("wwid"),
            format!("naa.600a0980{}\n", hex(serial)),
        )?;
        std::fs::write(lun_dir.join("delete"), "")?;
        std::fs::write(lun_dir.join("rescan"), "")?;
        let b = self.sys(&format!("block/{sd}"));
        std::fs::create_dir_all(&b)?;
        std::os::unix::fs::symlink(lun_dir, b.join("device"))?;
        let uuid = format!("mpath-3600a0980{}", hex(serial));
        let existing = block.iter().filter(|n| n.starts_with("dm-")).find(|n| {
            read_trim(&self.sys(&format!("block/{n}/dm/uuid"))).is_some_and(|u| u == uuid)
        });
        let dm = match existing {
            Some(d) => d.clone(),
            None => {
                let d = format!("dm-{}", next_index(&block, "dm-").max(1));
                let p = self.sys(&format!("block/{d}"));
                std::fs::create_dir_all(p.join("dm"))?;
                std::fs::create_dir_all(p.join("slaves"))?;
                std::fs::create_dir_all(p.join("holders"))?;
                std::fs::write(p.join("dm/uuid"), format!("{uuid}\n"))?;
                std::fs::write(p.join("dm/name"), format!("3600a0980{}\n", hex(serial)))?;
                d
            }
        };
        std::fs::write(self.sys(&format!("block/{dm}/slaves/{sd}")), "")
    }

    fn remove_disk(&self, sd: &str) {
        let block = self.sys(&format!("block/{sd}"));
        if let Ok(lun_dir) = std::fs::read_link(block.join("device")) {
            let _ = std::fs::remove_dir_all(lun_dir);
        }
        let _ = std::fs::remove_dir_all(&block);
        for n in names(&self.sys("block")) {
            let _ = std::fs::remove_file(self.sys(&format!("block/{n}/slaves/{sd}")));
        }
    }

    /// One round of the kernel's reactions to sysfs writes: a SCSI host's `scan` file
    /// (an iSCSI session's, or an FC HBA's: behind every remote port) makes the disks of
    /// the LUNs mapped to this host; a disk's `delete` file removes it.
    pub async fn react(&self) {
        for h in names(&self.sys("class/scsi_host")) {
            let scan = self.sys(&format!("class/scsi_host/{h}/scan"));
            let Ok(text) = std::fs::read_to_string(&scan) else {
                continue;
            };
            if text.trim().is_empty() {
                continue;
            }
            let _ = std::fs::write(&scan, "");
            let Ok(host) = h.trim_start_matches("host").parse::<u32>() else {
                continue;
            };
            // Writes append without a separator ("0 0 3" then "0 1 3" reads "0 0 30 1 3"):
            // the last word is the LUN id.
            let want = text.split_whitespace().last().unwrap_or("-").to_owned();
            let mapped = self.mapped_luns().await;
            // sysfs changes under the state lock, so a command never sees half a disk.
            let Ok(_guard) = self.state.lock() else {
                return;
            };
            for (id, serial) in mapped {
                if want != "-" && want != id.to_string() {
                    continue;
                }
                if host >= 10 {
                    let sid = host - 10;
                    let dir = self.sys(&format!(
                        "devices/platform/host{host}/session{sid}/target{host}:0:0/{host}:0:0:{id}"
                    ));
                    let _ = self.add_disk(&dir, &serial);
                } else {
                    for rp in names(&self.sys("class/fc_remote_ports")) {
                        let t = rp.rsplit('-').next().unwrap_or("0");
                        let dir = self.sys(&format!(
                            "devices/pci0000:00/host{host}/{rp}/target{host}:0:{t}/{host}:0:{t}:{id}"
                        ));
                        let _ = self.add_disk(&dir, &serial);
                    }
                }
            }
        }
        let Ok(_guard) = self.state.lock() else {
            return;
        };
        for sd in names(&self.sys("block")) {
            if !sd.starts_with("sd") {
                continue;
            }
            let del = self.sys(&format!("block/{sd}/device/delete"));
            if std::fs::read_to_string(&del).is_ok_and(|t| !t.is_empty()) {
                self.remove_disk(&sd);
            }
        }
    }

    /// Reacts to sysfs writes every [`REACTION_PERIOD`] until the task is dropped.
    pub async fn react_forever(self: Arc<Self>) {
        loop {
            self.react().await;
            tokio::time::sleep(REACTION_PERIOD).await;
        }
    }

    fn flush_map(&self, name: &str) {
        for n in names(&self.sys("block")) {
            if read_trim(&self.sys(&format!("block/{n}/dm/name"))).as_deref() == Some(name) {
                let _ = std::fs::remove_dir_all(self.sys(&format!("block/{n}")));
            }
        }
    }

    // ---- NVMe/TCP ----

    /// UUIDs of the namespaces mapped to subsystem `nqn` if it admits this host's NQN.
    async fn namespaces_for(&self, nqn: &str) -> Vec<String> {
        let (Some(client), Some(id)) = (&self.ontap, &self.identity) else {
            return Vec::new();
        };
        let Ok(subs) = client
            .nvme_subsystems()
            .list_all(&Query::new().fields(["name", "hosts", "target_nqn"]))
            .await
        else {
            return Vec::new();
        };
        let Some(sub) = subs
            .iter()
            .find(|s| s.target_nqn.as_deref() == Some(nqn) && s.has_host(&id.nqn))
        else {
            return Vec::new();
        };
        let Ok(maps) = client
            .nvme_subsystem_maps()
            .list_all(&Query::new().fields(["subsystem", "namespace"]))
            .await
        else {
            return Vec::new();
        };
        maps.iter()
            .filter(|m| m.subsystem.as_ref().and_then(|s| s.name.as_deref()) == sub.name.as_deref())
            .filter_map(|m| m.namespace.as_ref().and_then(|n| n.uuid.clone()))
            .collect()
    }

    fn nvme_connect(&self, addr: &str, nqn: &str, namespaces: &[String]) -> std::io::Result<()> {
        let k = next_index(&names(&self.sys("class/nvme")), "nvme");
        let c = self.sys(&format!("class/nvme/nvme{k}"));
        std::fs::create_dir_all(&c)?;
        std::fs::write(c.join("subsysnqn"), format!("{nqn}\n"))?;
        std::fs::write(c.join("transport"), "tcp\n")?;
        std::fs::write(c.join("address"), format!("traddr={addr},trsvcid=4420\n"))?;
        std::fs::write(c.join("state"), "live\n")?;
        let subsys = self.sys("class/nvme-subsystem/nvme-subsys0");
        std::fs::create_dir_all(&subsys)?;
        std::fs::write(subsys.join("subsysnqn"), format!("{nqn}\n"))?;
        for (i, u) in namespaces.iter().enumerate() {
            let ns = format!("nvme0n{}", i + 1);
            std::fs::create_dir_all(subsys.join(&ns))?;
            let b = self.sys(&format!("block/{ns}"));
            std::fs::create_dir_all(&b)?;
            std::fs::write(b.join("uuid"), format!("{u}\n"))?;
            std::fs::write(b.join("dev"), format!("259:{i}\n"))?;
        }
        Ok(())
    }

    fn nvme_disconnect(&self, dev: &str) {
        let name = Path::new(dev)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let c = self.sys(&format!("class/nvme/{name}"));
        let nqn = read_trim(&c.join("subsysnqn")).unwrap_or_default();
        let _ = std::fs::remove_dir_all(&c);
        let left = names(&self.sys("class/nvme")).into_iter().any(|n| {
            read_trim(&self.sys(&format!("class/nvme/{n}/subsysnqn"))).is_some_and(|x| x == nqn)
        });
        if !left {
            let subsys = self.sys("class/nvme-subsystem/nvme-subsys0");
            for ns in names(&subsys).into_iter().filter(|n| n.starts_with("nvme")) {
                let _ = std::fs::remove_dir_all(self.sys(&format!("block/{ns}")));
            }
            let _ = std::fs::remove_dir_all(subsys);
        }
    }

    // ---- shared disks' file systems ----

    /// The identity of a device path: a multipath map's WWID or a namespace's UUID.
    fn identity_of(&self, dev: &str) -> Option<String> {
        let name = Path::new(dev).file_name()?.to_str()?;
        if let Some(u) = name.strip_prefix("nvme-uuid.") {
            return Some(u.to_owned());
        }
        let block = names(&self.sys("block"));
        let node = if block.iter().any(|b| b == name) {
            name.to_owned()
        } else {
            // /dev/mapper/<map name>
            block.into_iter().find(|b| {
                read_trim(&self.sys(&format!("block/{b}/dm/name"))).as_deref() == Some(name)
            })?
        };
        if let Some(u) = read_trim(&self.sys(&format!("block/{node}/uuid"))) {
            return Some(u);
        }
        let u = read_trim(&self.sys(&format!("block/{node}/dm/uuid")))?;
        Some(u.trim_start_matches("mpath-").to_owned())
    }

    fn san(&self) -> BTreeMap<String, Formatted> {
        self.load(&self.san)
    }

    fn format(&self, dev: &str, f: Formatted) -> std::io::Result<Output> {
        let Some(id) = self.identity_of(dev) else {
            return Ok(Output::exit(1, "", format!("{dev}: no such device\n")));
        };
        let mut san = self.san();
        san.insert(id, f);
        self.store(&self.san, &san)?;
        Ok(Output::success(""))
    }

    fn fs_tools(&self, program: &str, a: &[&str]) -> std::io::Result<Output> {
        let dev_of = |d: &str| self.identity_of(d).unwrap_or_default();
        Ok(match (program, a) {
            ("blkid", ["-p", "-o", "export", dev]) => match self.san().get(&dev_of(dev)) {
                Some(f) => Output::success(format!(
                    "TYPE={}\nLABEL={}\nUUID={}\n",
                    f.fstype, f.label, f.uuid
                )),
                None => Output::exit(2, "", ""),
            },
            ("mkfs.ocfs2", rest) => {
                let dev = rest.last().copied().unwrap_or_default();
                let label = rest
                    .iter()
                    .position(|x| *x == "-L")
                    .and_then(|i| rest.get(i + 1))
                    .copied()
                    .unwrap_or_default();
                return self.format(
                    dev,
                    Formatted {
                        fstype: "ocfs2".into(),
                        label: label.to_owned(),
                        uuid: "329e6070-f06b-425e-afc1-45816b197431".into(),
                    },
                );
            }
            ("mkfs.gfs2", ["-O", "-p", "lock_dlm", "-t", table, "-j", _, dev]) => {
                return self.format(
                    dev,
                    Formatted {
                        fstype: "gfs2".into(),
                        label: (*table).to_owned(),
                        uuid: "5d2a8c8e-3b7f-4b0e-9d35-3a3c3c0f9e11".into(),
                    },
                );
            }
            ("debugfs.ocfs2", ["-R", "stats", dev]) => match self.san().get(&dev_of(dev)) {
                Some(f) => Output::success(format!(
                    "\tRevision: 0.90\n\tLabel: {}\n\tUUID: {}\n\tMax Node Slots: 4\n",
                    f.label,
                    f.uuid.replace('-', "").to_ascii_uppercase()
                )),
                None => Output::exit(1, "", "debugfs.ocfs2: bad magic number\n"),
            },
            ("tunefs.ocfs2", ["--cloned-volume", "-y", dev]) => {
                let mut san = self.san();
                if let Some(f) = san.get_mut(&dev_of(dev)) {
                    f.label = format!("{}-cloned", f.label);
                    f.uuid = "0c1a2b3c-4d5e-4f60-8172-839405a6b7c8".into();
                }
                self.store(&self.san, &san)?;
                Output::success("")
            }
            ("tunefs.ocfs2", ["-L", label, dev]) => {
                let mut san = self.san();
                if let Some(f) = san.get_mut(&dev_of(dev)) {
                    f.label = (*label).to_owned();
                }
                self.store(&self.san, &san)?;
                Output::success("")
            }
            ("tunefs.ocfs2", _) | ("gfs2_grow", _) => Output::success(""),
            _ => Output::exit(
                127,
                "",
                format!("simulated host: {program} is not simulated"),
            ),
        })
    }

    async fn dispatch(&self, program: &str, a: &[&str]) -> std::io::Result<Output> {
        let block = self.identity.is_some();
        // What ONTAP says is asked before the state lock is taken (it is not held across
        // an await).
        let namespaces = match (program, a) {
            ("nvme", ["connect", "-t", "tcp", "-a", _, "-s", _, "-n", nqn, ..]) if block => {
                self.namespaces_for(nqn).await
            }
            _ => Vec::new(),
        };
        let _guard = self.state.lock().map_err(|_| std::io::ErrorKind::Other)?;
        Ok(match (program, a) {
            ("mount", [_, fstype, _, opts, source, target]) => {
                self.mount(fstype, opts, source, target)?;
                Output::success("")
            }
            ("umount", [target, ..]) => {
                self.umount(target)?;
                Output::success("")
            }
            ("systemctl", args) => self.systemctl(args)?,
            ("multipathd", ["show", "daemon"]) if block => Output::success("pid 1234 running\n"),
            ("multipathd", _) if block => Output::success("ok\n"),
            ("multipath", ["-f", name]) if block => {
                self.flush_map(name);
                Output::success("")
            }
            ("blockdev", _) if block => Output::success(""),
            ("iscsiadm", args) if block => self.iscsiadm(args)?,
            ("o2cb", [_, verb, _]) if block => {
                let flag = self.state_file("o2cb-online");
                match *verb {
                    "cluster-status" if flag.exists() => Output::success("online\n"),
                    "cluster-status" => Output::exit(1, "offline\n", ""),
                    "register-cluster" => {
                        if let Some(d) = flag.parent() {
                            std::fs::create_dir_all(d)?;
                        }
                        std::fs::write(&flag, "")?;
                        Output::success("")
                    }
                    "unregister-cluster" => {
                        let _ = std::fs::remove_file(&flag);
                        Output::success("")
                    }
                    _ => Output::exit(127, "", "simulated host: o2cb call not simulated"),
                }
            }
            ("nvme", ["connect", "-t", "tcp", "-a", addr, "-s", _, "-n", nqn, ..]) if block => {
                self.nvme_connect(addr, nqn, &namespaces)?;
                Output::success("")
            }
            ("nvme", ["disconnect", "-d", dev]) if block => {
                self.nvme_disconnect(dev);
                Output::success("NQN: disconnected 1 controller(s)\n")
            }
            ("nvme", ["disconnect", "-n", nqn]) if block => {
                let ctrls: Vec<String> = names(&self.sys("class/nvme"))
                    .into_iter()
                    .filter(|c| {
                        read_trim(&self.sys(&format!("class/nvme/{c}/subsysnqn")))
                            .is_some_and(|x| x == *nqn)
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
            ("nvme", ["ns-rescan", _]) if block => Output::success(""),
            (p, args) if block => self.fs_tools(p, args)?,
            (p, _) => Output::exit(127, "", format!("simulated host: {p} is not simulated")),
        })
    }
}

#[async_trait::async_trait]
impl Runner for SimKernelRunner {
    async fn run(&self, cmd: &Command) -> host_storage::Result<Output> {
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(cmd.to_string());
        }
        let args: Vec<String> = cmd
            .get_args()
            .iter()
            .map(|a| a.expose().to_owned())
            .collect();
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        match self.dispatch(cmd.program(), &a).await {
            Ok(out) => cmd.check(out),
            Err(e) => self.fail(cmd, &format!("scratch root: {e}")),
        }
    }
}

fn seed_files(root: &Path, files: &[(&str, String)]) -> std::io::Result<()> {
    for (file, text) in files {
        let p = root.join(file);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d)?;
        }
        if !p.exists() {
            std::fs::write(p, text)?;
        }
    }
    Ok(())
}

fn base_files() -> Vec<(&'static str, String)> {
    vec![
        ("etc/fstab", FSTAB.to_owned()),
        ("etc/auto.master", AUTO_MASTER.to_owned()),
        ("proc/self/mountinfo", ROOT_MOUNT.to_owned()),
    ]
}

/// Prepares `root` as a host root (fstab, autofs master map, mount table, each only if
/// missing, so a later run sees the earlier run's state) and returns the simulated host
/// `name` with export address `address` and its runner (file systems only: NFS, SMB).
pub fn simulated_host(
    name: &str,
    address: &str,
    root: &Path,
) -> std::io::Result<(Host, Arc<SimKernelRunner>)> {
    seed_files(root, &base_files())?;
    let runner = Arc::new(SimKernelRunner::new(root));
    // No automount runs on a simulated host: autofs entries are written to its map file
    // and nobody is told (a real host's attach requires a running automount).
    let host = Host::new(name, runner.clone())
        .address(address)
        .libvirt_uri(SIM_LIBVIRT_URI)
        .root(root)
        .autofs_reload(Reload::Never);
    Ok((host, runner))
}

/// As [`simulated_host`], for block datastores too: the host has the initiator identities
/// [`SimIdentity::of`] `name` (`/etc/iscsi/initiatorname.iscsi`, `/etc/nvme/hostnqn` and
/// `hostid`, and with `fc_targets` an online FC HBA `host5` logged in to each of those
/// target WWPNs), and its runner asks `ontap` what is mapped to it. Spawn
/// [`SimKernelRunner::react_forever`] on the runner while workflows run.
pub fn simulated_block_host(
    name: &str,
    address: &str,
    root: &Path,
    ontap: Client,
    fc_targets: &[String],
) -> std::io::Result<(Host, Arc<SimKernelRunner>)> {
    let id = SimIdentity::of(name);
    let mut files = base_files();
    files.push((
        "etc/iscsi/initiatorname.iscsi",
        format!("InitiatorName={}\n", id.iqn),
    ));
    files.push(("etc/nvme/hostnqn", format!("{}\n", id.nqn)));
    files.push(("etc/nvme/hostid", format!("{}\n", id.hostid)));
    seed_files(root, &files)?;
    std::fs::create_dir_all(root.join("sys/block"))?;
    if !fc_targets.is_empty() {
        let port = id.wwpn.replace(':', "");
        let fc = root.join("sys/class/fc_host/host5");
        std::fs::create_dir_all(&fc)?;
        std::fs::write(fc.join("port_name"), format!("0x{port}\n"))?;
        std::fs::write(fc.join("node_name"), format!("0x2{}\n", &port[1..]))?;
        std::fs::write(fc.join("port_state"), "Online\n")?;
        let sh = root.join("sys/class/scsi_host/host5");
        std::fs::create_dir_all(&sh)?;
        if !sh.join("scan").exists() {
            std::fs::write(sh.join("scan"), "")?;
        }
        for (t, w) in fc_targets.iter().enumerate() {
            let rp = root.join(format!("sys/class/fc_remote_ports/rport-5:0-{t}"));
            std::fs::create_dir_all(&rp)?;
            let hex = w.replace(':', "");
            std::fs::write(rp.join("port_name"), format!("0x{hex}\n"))?;
            std::fs::write(rp.join("node_name"), format!("0x{hex}\n"))?;
            std::fs::write(rp.join("port_state"), "Online\n")?;
            std::fs::write(rp.join("scsi_target_id"), format!("{t}\n"))?;
            std::fs::write(rp.join("roles"), "FCP Target\n")?;
        }
    }
    let runner = Arc::new(SimKernelRunner::new(root).with_block(id, ontap));
    // No automount runs on a simulated host: autofs entries are written to its map file
    // and nobody is told (a real host's attach requires a running automount).
    let host = Host::new(name, runner.clone())
        .address(address)
        .libvirt_uri(SIM_LIBVIRT_URI)
        .root(root)
        .autofs_reload(Reload::Never);
    Ok((host, runner))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn mount_and_umount_edit_the_scratch_table() {
        let dir = tempfile::tempdir().unwrap();
        let (_host, runner) = simulated_host("kvm1", "192.0.2.1", dir.path()).unwrap();
        let table = dir.path().join("proc/self/mountinfo");
        runner
            .run(&Command::new("mount").args([
                "-t",
                "nfs",
                "-o",
                "vers=4.1",
                "10.0.0.1:/v",
                "/mnt/v",
            ]))
            .await
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(&table).unwrap(),
            format!(
                "{ROOT_MOUNT}900 22 0:99 / /mnt/v rw,relatime - nfs4 10.0.0.1:/v rw,vers=4.1\n"
            )
        );
        runner
            .run(&Command::new("umount").arg("/mnt/v"))
            .await
            .unwrap();
        assert_eq!(std::fs::read_to_string(&table).unwrap(), ROOT_MOUNT);
        // Without block support, the block tools are not simulated.
        assert!(runner
            .run(&Command::new("iscsiadm").arg("-m"))
            .await
            .is_err());
        assert_eq!(runner.calls().len(), 3);
    }

    #[test]
    fn identities_are_stable_and_distinct() {
        let a = SimIdentity::of("kvm1");
        assert_eq!(a, SimIdentity::of("kvm1"));
        let b = SimIdentity::of("kvm2");
        assert_ne!(a.nqn, b.nqn);
        assert_ne!(a.wwpn, b.wwpn);
        assert_eq!(a.iqn, "iqn.1994-05.com.redhat:kvm1");
        assert!(a.nqn.starts_with("nqn.2014-08.org.nvmexpress:uuid:"));
        assert_eq!(a.hostid.len(), 36);
        assert_eq!(a.wwpn.len(), 23);
    }

    #[tokio::test]
    async fn iscsi_records_sessions_and_units_outlive_the_runner() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("kvm1");
        let client = Client::builder("http://127.0.0.1:9").build().unwrap();
        let (_h, r) =
            simulated_block_host("kvm1", "192.0.2.1", &root, client.clone(), &[]).unwrap();
        let t = "iqn.1992-08.com.netapp:sn.1";
        let p = "127.0.1.3:3260";
        r.run(
            &Command::new("iscsiadm")
                .args(["-m", "node", "-T", t, "-p", p, "-I", "default", "-o", "new"]),
        )
        .await
        .unwrap();
        r.run(&Command::new("iscsiadm").args(["-m", "node", "-T", t, "-p", p, "--login"]))
            .await
            .unwrap();
        r.run(&Command::new("systemctl").args(["enable", "--now", "o2cb"]))
            .await
            .unwrap();
        // A second runner (the next process) sees the session, the record and the unit.
        let (_h, r2) = simulated_block_host("kvm1", "192.0.2.1", &root, client, &[]).unwrap();
        let out = r2
            .run(&Command::new("iscsiadm").args(["-m", "session"]))
            .await
            .unwrap();
        assert_eq!(out.stdout, format!("tcp: [1] {p},1030 {t} (non-flash)\n"));
        let out = r2
            .run(&Command::new("iscsiadm").args(["-m", "node", "-T", t, "-p", p]))
            .await
            .unwrap();
        assert_eq!(
            out.stdout,
            format!("node.name = {t}\nnode.session.scan = auto\n")
        );
        let out = r2
            .run(&Command::new("systemctl").args(["is-active", "o2cb"]))
            .await
            .unwrap();
        assert_eq!(out.stdout, "active\n");
        r2.run(&Command::new("iscsiadm").args(["-m", "node", "-T", t, "-p", p, "--logout"]))
            .await
            .unwrap();
        assert!(r2
            .run(&Command::new("iscsiadm").args(["-m", "session"]))
            .await
            .is_err());
        assert_eq!(
            std::fs::read_to_string(root.join("etc/iscsi/initiatorname.iscsi")).unwrap(),
            "InitiatorName=iqn.1994-05.com.redhat:kvm1\n"
        );
    }
}
