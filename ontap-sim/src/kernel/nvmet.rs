//! The NVMe target (nvmet) through configfs: a subsystem per ONTAP subsystem (NQN =
//! `target_nqn`, no "allow any host"), allowed hosts, a namespace per subsystem map (NSID
//! from the map, `device_path` = the namespace's file, `device_uuid` = the ONTAP namespace
//! UUID), and a TCP port per NVMe/TCP LIF with the SVM's subsystems linked.
//!
//! [`reconcile`] owns subsystems named like ONTAP's ([`SUBSYSTEM_PREFIX`]) and ports with
//! ids from [`PORT_BASE`] on.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;

use super::configfs::Configfs;
use super::KernelError;

/// NQN prefix of the subsystems the simulator owns.
pub const SUBSYSTEM_PREFIX: &str = "nqn.1992-08.com.netapp:sn.";
/// First nvmet port id the simulator uses; it owns `PORT_BASE..PORT_BASE + 1000`.
pub const PORT_BASE: u16 = 1000;
/// NVMe/TCP service id.
pub const NVME_TCP_PORT: u16 = 4420;
/// Model string ONTAP controllers report.
pub const MODEL: &str = "NetApp ONTAP Controller";

/// One namespace of a subsystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    /// The backing file.
    pub file: PathBuf,
    /// The ONTAP namespace UUID (reported as the namespace UUID and NGUID).
    pub uuid: String,
}

/// One subsystem.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subsystem {
    /// Serial number shown to hosts (ONTAP's subsystem serial).
    pub serial: Option<String>,
    /// Allowed host NQNs.
    pub hosts: BTreeSet<String>,
    /// NSID → namespace.
    pub namespaces: BTreeMap<u32, Namespace>,
    /// Addresses of the NVMe/TCP LIFs it is reachable on.
    pub ports: BTreeSet<IpAddr>,
}

/// Everything nvmet should show: subsystems by NQN.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NvmetModel {
    /// Subsystems by NQN.
    pub subsystems: BTreeMap<String, Subsystem>,
}

const ROOT: &str = "nvmet";

fn owned_port(name: &str) -> Option<u16> {
    name.parse::<u16>()
        .ok()
        .filter(|p| (PORT_BASE..PORT_BASE + 1000).contains(p))
}

/// The NGUID nvmet shows for an ONTAP namespace: its UUID (same 16 bytes).
pub fn nguid(uuid: &str) -> String {
    uuid.to_ascii_lowercase()
}

/// Makes configfs match `model`.
pub fn reconcile(cfs: &Configfs, model: &NvmetModel) -> Result<(), KernelError> {
    let want_addrs: BTreeSet<IpAddr> = model
        .subsystems
        .values()
        .flat_map(|s| s.ports.iter().copied())
        .collect();
    // Ports: drop those whose address is no longer a LIF, find the others.
    let mut ports: BTreeMap<IpAddr, u16> = BTreeMap::new();
    for name in cfs.list_dirs(&format!("{ROOT}/ports")) {
        let Some(id) = owned_port(&name) else {
            continue;
        };
        let dir = format!("{ROOT}/ports/{name}");
        let addr = cfs
            .read(&format!("{dir}/addr_traddr"))?
            .and_then(|a| a.parse::<IpAddr>().ok());
        match addr {
            Some(a) if want_addrs.contains(&a) && !ports.contains_key(&a) => {
                ports.insert(a, id);
            }
            _ => {
                for l in cfs.list_links(&format!("{dir}/subsystems")) {
                    cfs.unlink(&format!("{dir}/subsystems/{l}"))?;
                }
                cfs.rmdir(&dir)?;
            }
        }
    }
    for a in &want_addrs {
        if ports.contains_key(a) {
            continue;
        }
        let used: BTreeSet<u16> = ports.values().copied().collect();
        let id = (PORT_BASE..PORT_BASE + 1000)
            .find(|i| !used.contains(i) && !cfs.exists(&format!("{ROOT}/ports/{i}")))
            .unwrap_or(PORT_BASE);
        let dir = format!("{ROOT}/ports/{id}");
        cfs.mkdir(&format!("{dir}/subsystems"))?;
        cfs.write(&format!("{dir}/addr_trtype"), "tcp")?;
        cfs.write(
            &format!("{dir}/addr_adrfam"),
            if a.is_ipv4() { "ipv4" } else { "ipv6" },
        )?;
        cfs.write(&format!("{dir}/addr_traddr"), &a.to_string())?;
        cfs.write(&format!("{dir}/addr_trsvcid"), &NVME_TCP_PORT.to_string())?;
        ports.insert(*a, id);
    }
    // Port links of owned subsystems that should not be there.
    let mut dropped_hosts = BTreeSet::new();
    for port in cfs.list_dirs(&format!("{ROOT}/ports")) {
        let links = format!("{ROOT}/ports/{port}/subsystems");
        let addr = cfs
            .read(&format!("{ROOT}/ports/{port}/addr_traddr"))?
            .and_then(|a| a.parse::<IpAddr>().ok());
        for nqn in cfs.list_links(&links) {
            if !nqn.starts_with(SUBSYSTEM_PREFIX) {
                continue;
            }
            let keep = owned_port(&port).is_some()
                && model
                    .subsystems
                    .get(&nqn)
                    .is_some_and(|s| addr.is_some_and(|a| s.ports.contains(&a)));
            if !keep {
                cfs.unlink(&format!("{links}/{nqn}"))?;
            }
        }
    }
    // Subsystems no longer wanted.
    for nqn in cfs.list_dirs(&format!("{ROOT}/subsystems")) {
        if nqn.starts_with(SUBSYSTEM_PREFIX) && !model.subsystems.contains_key(&nqn) {
            let dir = format!("{ROOT}/subsystems/{nqn}");
            for h in cfs.list_links(&format!("{dir}/allowed_hosts")) {
                cfs.unlink(&format!("{dir}/allowed_hosts/{h}"))?;
                dropped_hosts.insert(h);
            }
            for ns in cfs.list_dirs(&format!("{dir}/namespaces")) {
                remove_namespace(cfs, &format!("{dir}/namespaces/{ns}"))?;
            }
            cfs.rmdir(&dir)?;
        }
    }
    for (nqn, sub) in &model.subsystems {
        let dir = format!("{ROOT}/subsystems/{nqn}");
        cfs.mkdir(&format!("{dir}/allowed_hosts"))?;
        cfs.mkdir(&format!("{dir}/namespaces"))?;
        cfs.write(&format!("{dir}/attr_allow_any_host"), "0")?;
        if let Some(s) = &sub.serial {
            if cfs.read(&format!("{dir}/attr_serial"))?.as_deref() != Some(s.as_str()) {
                // Refused by the kernel once a host is connected; the serial is cosmetic.
                let _ = cfs.write_if_present(&format!("{dir}/attr_serial"), s);
            }
        }
        if cfs.read(&format!("{dir}/attr_model"))?.as_deref() != Some(MODEL) {
            let _ = cfs.write_if_present(&format!("{dir}/attr_model"), MODEL);
        }
        for h in cfs.list_links(&format!("{dir}/allowed_hosts")) {
            if !sub.hosts.contains(&h) {
                cfs.unlink(&format!("{dir}/allowed_hosts/{h}"))?;
                dropped_hosts.insert(h);
            }
        }
        for h in &sub.hosts {
            cfs.mkdir(&format!("{ROOT}/hosts/{h}"))?;
            cfs.symlink(
                &format!("{ROOT}/hosts/{h}"),
                &format!("{dir}/allowed_hosts/{h}"),
            )?;
        }
        for ns in cfs.list_dirs(&format!("{dir}/namespaces")) {
            let ns_dir = format!("{dir}/namespaces/{ns}");
            let keep = ns
                .parse::<u32>()
                .ok()
                .and_then(|id| sub.namespaces.get(&id));
            let same = match keep {
                Some(n) => {
                    cfs.read(&format!("{ns_dir}/device_path"))?.as_deref()
                        == Some(&*n.file.to_string_lossy())
                        && cfs.read(&format!("{ns_dir}/enable"))?.as_deref() == Some("1")
                }
                None => false,
            };
            if !same {
                remove_namespace(cfs, &ns_dir)?;
            }
        }
        for (id, ns) in &sub.namespaces {
            let ns_dir = format!("{dir}/namespaces/{id}");
            if cfs.read(&format!("{ns_dir}/enable"))?.as_deref() == Some("1") {
                continue;
            }
            cfs.mkdir(&ns_dir)?;
            cfs.write(&format!("{ns_dir}/device_path"), &ns.file.to_string_lossy())?;
            cfs.write(&format!("{ns_dir}/device_uuid"), &ns.uuid)?;
            cfs.write(&format!("{ns_dir}/device_nguid"), &nguid(&ns.uuid))?;
            // Direct I/O, not buffered: with buffered_io the 6.1 file backend first reads
            // with IOCB_NOWAIT and answers a partial read (some pages cached, some not, as
            // on a fresh FlexClone's file) with Internal Error (sc 0x6) instead of retrying.
            cfs.write_if_present(&format!("{ns_dir}/buffered_io"), "0")?;
            cfs.write(&format!("{ns_dir}/enable"), "1")?;
        }
        for a in &sub.ports {
            if let Some(id) = ports.get(a) {
                cfs.symlink(&dir, &format!("{ROOT}/ports/{id}/subsystems/{nqn}"))?;
            }
        }
    }
    let still: BTreeSet<&String> = model
        .subsystems
        .values()
        .flat_map(|s| s.hosts.iter())
        .collect();
    for h in dropped_hosts {
        if !still.contains(&h) {
            // Another (foreign) subsystem may still allow it: then it stays.
            let _ = cfs.rmdir(&format!("{ROOT}/hosts/{h}"));
        }
    }
    // Ports with nothing linked are kept only while some subsystem wants the address.
    Ok(())
}

fn remove_namespace(cfs: &Configfs, dir: &str) -> Result<(), KernelError> {
    let _ = cfs.write_if_present(&format!("{dir}/enable"), "0");
    cfs.rmdir(dir)
}
