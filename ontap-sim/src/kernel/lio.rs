//! LIO (the kernel SCSI target) through configfs: fileio backstores for LUNs, one iSCSI
//! target per SVM with a portal per iSCSI LIF (one TPG, so every portal is a path to the
//! same LUNs), node ACLs for igroup initiators, mapped LUNs with the ONTAP LUN id, and CHAP.
//!
//! [`reconcile`] makes the tree match a desired [`LioModel`]: it is idempotent, and only
//! touches the simulator's backstore HBA ([`HBA`]) and targets named like ONTAP's
//! ([`TARGET_PREFIX`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};

use super::configfs::Configfs;
use super::KernelError;

/// The backstore HBA directory holding the simulator's LUNs (`target/core/fileio_57`).
pub const HBA: &str = "target/core/fileio_57";
/// IQN prefix of the targets the simulator owns.
pub const TARGET_PREFIX: &str = "iqn.1992-08.com.netapp:sn.";
/// iSCSI port of every portal.
pub const ISCSI_PORT: u16 = 3260;
/// What LIO's `auth/*` attributes take to clear a CHAP user or password.
pub const AUTH_UNSET: &str = "NULL";
/// SCSI vendor string NetApp LUNs report.
pub const VENDOR: &str = "NETAPP";
/// SCSI product string NetApp LUNs report.
pub const PRODUCT: &str = "LUN C-Mode";

/// A LUN's file exported as a fileio backstore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backstore {
    /// Backstore name (the LUN UUID).
    pub name: String,
    /// The backing file.
    pub file: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// The 12-character ONTAP serial, reported in VPD page 0x80.
    pub serial: String,
}

/// CHAP settings of one node ACL.
#[derive(Clone)]
pub struct AclChap {
    /// Inbound (target authenticates initiator) user.
    pub user: String,
    /// Inbound password.
    pub password: SecretString,
    /// Mutual user and password.
    pub mutual: Option<(String, SecretString)>,
}

impl std::fmt::Debug for AclChap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AclChap")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("mutual_user", &self.mutual.as_ref().map(|m| &m.0))
            .finish()
    }
}

impl PartialEq for AclChap {
    fn eq(&self, o: &Self) -> bool {
        self.user == o.user
            && self.password.expose_secret() == o.password.expose_secret()
            && match (&self.mutual, &o.mutual) {
                (None, None) => true,
                (Some(a), Some(b)) => a.0 == b.0 && a.1.expose_secret() == b.1.expose_secret(),
                _ => false,
            }
    }
}

/// One node ACL: the LUNs an initiator sees.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Acl {
    /// LUN id → backstore name.
    pub luns: BTreeMap<u32, String>,
    /// CHAP, when the initiator has a CHAP credential.
    pub chap: Option<AclChap>,
}

/// One iSCSI target (an SVM's iSCSI service).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Target {
    /// Target IQN (the service's `target.name`).
    pub iqn: String,
    /// Portal addresses (iSCSI LIFs).
    pub portals: BTreeSet<std::net::IpAddr>,
    /// Initiator IQN → ACL.
    pub acls: BTreeMap<String, Acl>,
}

/// Everything LIO should show.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LioModel {
    /// Every LUN, mapped or not.
    pub backstores: BTreeMap<String, Backstore>,
    /// Targets by IQN.
    pub targets: BTreeMap<String, Target>,
}

fn portal_dir(ip: &std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(a) => format!("{a}:{ISCSI_PORT}"),
        std::net::IpAddr::V6(a) => format!("[{a}]:{ISCSI_PORT}"),
    }
}

/// Makes configfs match `model`: creates what is missing, removes what the simulator owns
/// and no longer wants, in an order configfs accepts.
pub fn reconcile(cfs: &Configfs, model: &LioModel) -> Result<(), KernelError> {
    // Backstores first: targets link to them.
    for bs in model.backstores.values() {
        ensure_backstore(cfs, bs)?;
    }
    for t in model.targets.values() {
        ensure_target(cfs, t)?;
    }
    for iqn in cfs.list_dirs("target/iscsi") {
        if iqn.starts_with(TARGET_PREFIX) && !model.targets.contains_key(&iqn) {
            remove_target(cfs, &iqn)?;
        }
    }
    for name in cfs.list_dirs(HBA) {
        if !model.backstores.contains_key(&name) {
            let dir = format!("{HBA}/{name}");
            let _ = cfs.write_if_present(&format!("{dir}/enable"), "0");
            cfs.rmdir(&dir)?;
        }
    }
    Ok(())
}

fn ensure_backstore(cfs: &Configfs, bs: &Backstore) -> Result<(), KernelError> {
    let dir = format!("{HBA}/{}", bs.name);
    if cfs.read(&format!("{dir}/enable"))?.as_deref() == Some("1") {
        return Ok(());
    }
    cfs.mkdir(&dir)?;
    let file = bs.file.to_string_lossy();
    cfs.write(
        &format!("{dir}/control"),
        &format!("fd_dev_name={file},fd_dev_size={}", bs.size),
    )?;
    cfs.write(&format!("{dir}/udev_path"), &file)?;
    // The serial must be set before the device is exported through a LUN.
    cfs.write(&format!("{dir}/wwn/vpd_unit_serial"), &bs.serial)?;
    // vendor_id exists since Linux 5.0, product_id since 5.9; older kernels say LIO-ORG.
    cfs.write_if_present(&format!("{dir}/wwn/vendor_id"), VENDOR)?;
    cfs.write_if_present(&format!("{dir}/wwn/product_id"), PRODUCT)?;
    cfs.write(&format!("{dir}/enable"), "1")
}

fn tpg(iqn: &str) -> String {
    format!("target/iscsi/{iqn}/tpgt_1")
}

fn ensure_target(cfs: &Configfs, t: &Target) -> Result<(), KernelError> {
    let tpg = tpg(&t.iqn);
    cfs.mkdir(&format!("{tpg}/np"))?;
    cfs.mkdir(&format!("{tpg}/lun"))?;
    cfs.mkdir(&format!("{tpg}/acls"))?;
    let want_np: BTreeSet<String> = t.portals.iter().map(portal_dir).collect();
    for np in cfs.list_dirs(&format!("{tpg}/np")) {
        if !want_np.contains(&np) {
            cfs.rmdir(&format!("{tpg}/np/{np}"))?;
        }
    }
    for np in &want_np {
        cfs.mkdir(&format!("{tpg}/np/{np}"))?;
    }
    // TPG LUNs: one per backstore mapped to any ACL of this target.
    let wanted: BTreeSet<&String> = t.acls.values().flat_map(|a| a.luns.values()).collect();
    let mut by_bs = tpg_luns(cfs, &tpg);
    // ACL pass 1: drop mapped LUNs and ACLs no longer wanted (they link to TPG LUNs).
    for init in cfs.list_dirs(&format!("{tpg}/acls")) {
        let acl_dir = format!("{tpg}/acls/{init}");
        let want = t.acls.get(&init);
        for ml in cfs.list_dirs(&acl_dir) {
            let Some(id) = ml.strip_prefix("lun_").and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let ml_dir = format!("{acl_dir}/{ml}");
            let target = cfs.readlink(&format!("{ml_dir}/lun"));
            let keep = want
                .and_then(|a| a.luns.get(&id))
                .and_then(|bs| by_bs.get(bs))
                .is_some_and(|idx| target.as_deref() == Some(&format!("{tpg}/lun/lun_{idx}")));
            if !keep {
                cfs.unlink(&format!("{ml_dir}/lun"))?;
                cfs.rmdir(&ml_dir)?;
            }
        }
        if want.is_none() {
            cfs.rmdir(&acl_dir)?;
        }
    }
    // TPG LUNs no longer wanted.
    let stale: Vec<(String, u32)> = by_bs
        .iter()
        .filter(|(bs, _)| !wanted.contains(bs))
        .map(|(bs, i)| (bs.clone(), *i))
        .collect();
    for (bs, idx) in stale {
        let dir = format!("{tpg}/lun/lun_{idx}");
        for l in cfs.list_links(&dir) {
            cfs.unlink(&format!("{dir}/{l}"))?;
        }
        cfs.rmdir(&dir)?;
        by_bs.remove(&bs);
    }
    for bs in wanted {
        if by_bs.contains_key(bs) {
            continue;
        }
        let used: BTreeSet<u32> = by_bs.values().copied().collect();
        let idx = (0..).find(|i| !used.contains(i)).unwrap_or(0);
        let dir = format!("{tpg}/lun/lun_{idx}");
        cfs.mkdir(&dir)?;
        cfs.symlink(&format!("{HBA}/{bs}"), &format!("{dir}/{bs}"))?;
        by_bs.insert(bs.clone(), idx);
    }
    // ACL pass 2: create ACLs, mapped LUNs and CHAP.
    let mut any_chap = false;
    for (init, acl) in &t.acls {
        let acl_dir = format!("{tpg}/acls/{init}");
        cfs.mkdir(&acl_dir)?;
        for (id, bs) in &acl.luns {
            let Some(idx) = by_bs.get(bs) else { continue };
            let ml_dir = format!("{acl_dir}/lun_{id}");
            cfs.mkdir(&ml_dir)?;
            cfs.symlink(&format!("{tpg}/lun/lun_{idx}"), &format!("{ml_dir}/lun"))?;
        }
        // Per-ACL enforcement where the kernel offers it (-1 would inherit the TPG's), so
        // initiators without a CHAP credential still log in next to CHAP ones.
        cfs.write_if_present(
            &format!("{acl_dir}/attrib/authentication"),
            if acl.chap.is_some() { "1" } else { "0" },
        )?;
        match &acl.chap {
            Some(c) => {
                any_chap = true;
                cfs.write_exact(&format!("{acl_dir}/auth/userid"), &c.user)?;
                cfs.write_exact(
                    &format!("{acl_dir}/auth/password"),
                    c.password.expose_secret(),
                )?;
                let (mu, mp) = c
                    .mutual
                    .as_ref()
                    .map(|(u, p)| (u.as_str(), p.expose_secret()))
                    .unwrap_or((AUTH_UNSET, AUTH_UNSET));
                cfs.write_exact(&format!("{acl_dir}/auth/userid_mutual"), mu)?;
                cfs.write_exact(&format!("{acl_dir}/auth/password_mutual"), mp)?;
            }
            None => {
                for f in ["userid", "password", "userid_mutual", "password_mutual"] {
                    if cfs.exists(&format!("{acl_dir}/auth/{f}")) {
                        cfs.write_exact(&format!("{acl_dir}/auth/{f}"), AUTH_UNSET)?;
                    }
                }
            }
        }
    }
    // Only explicit ACLs log in. The TPG-wide switch is the fallback for kernels without
    // the per-ACL attribute: CHAP for everyone as soon as one ACL has it.
    cfs.write(&format!("{tpg}/attrib/generate_node_acls"), "0")?;
    cfs.write(
        &format!("{tpg}/attrib/authentication"),
        if any_chap { "1" } else { "0" },
    )?;
    cfs.write(&format!("{tpg}/enable"), "1")
}

/// Backstore name → TPG LUN index, read from the links in `lun/lun_N/`.
fn tpg_luns(cfs: &Configfs, tpg: &str) -> BTreeMap<String, u32> {
    let mut out = BTreeMap::new();
    for d in cfs.list_dirs(&format!("{tpg}/lun")) {
        let Some(idx) = d.strip_prefix("lun_").and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let dir = format!("{tpg}/lun/{d}");
        for l in cfs.list_links(&dir) {
            if let Some(t) = cfs.readlink(&format!("{dir}/{l}")) {
                if let Some(bs) = t.strip_prefix(&format!("{HBA}/")) {
                    out.insert(bs.to_string(), idx);
                }
            }
        }
    }
    out
}

fn remove_target(cfs: &Configfs, iqn: &str) -> Result<(), KernelError> {
    let root = format!("target/iscsi/{iqn}");
    for tpgt in cfs.list_dirs(&root) {
        let tpg = format!("{root}/{tpgt}");
        if !tpgt.starts_with("tpgt_") {
            continue;
        }
        let _ = cfs.write_if_present(&format!("{tpg}/enable"), "0");
        for init in cfs.list_dirs(&format!("{tpg}/acls")) {
            let acl_dir = format!("{tpg}/acls/{init}");
            for ml in cfs.list_dirs(&acl_dir) {
                if ml.starts_with("lun_") {
                    let ml_dir = format!("{acl_dir}/{ml}");
                    for l in cfs.list_links(&ml_dir) {
                        cfs.unlink(&format!("{ml_dir}/{l}"))?;
                    }
                    cfs.rmdir(&ml_dir)?;
                }
            }
            cfs.rmdir(&acl_dir)?;
        }
        for l in cfs.list_dirs(&format!("{tpg}/lun")) {
            let dir = format!("{tpg}/lun/{l}");
            for link in cfs.list_links(&dir) {
                cfs.unlink(&format!("{dir}/{link}"))?;
            }
            cfs.rmdir(&dir)?;
        }
        for np in cfs.list_dirs(&format!("{tpg}/np")) {
            cfs.rmdir(&format!("{tpg}/np/{np}"))?;
        }
        cfs.rmdir(&tpg)?;
    }
    cfs.rmdir(&root)
}
