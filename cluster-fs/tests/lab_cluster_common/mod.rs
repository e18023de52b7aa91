//! Shared by the lab tests that put a cluster file system on a simulator LUN: cluster-fs's
//! own (`lab_cluster_fs.rs`) and libvirt-pools' `fs` pools (`lab_pools_cluster_fs.rs`).
//! Needs `mod lab_common;` (host-storage/tests/lab_common) at the including crate's root.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use cluster_fs::gfs2::{CorosyncConf, CorosyncNode, DlmConf};
use cluster_fs::ocfs2::{ClusterConf, HeartbeatMode, Ocfs2Cluster, Ocfs2Node};
use cluster_fs::{ClusterHost, ClusterName, NodeName};
use host_storage::files::HostRoot;
use host_storage::identity::initiator_iqn;
use host_storage::iscsi::{ConnectUndo, Iscsi, IscsiTarget, NodeSettings};
use host_storage::multipath::{MapRef, Multipath};
use host_storage::parse::Portal;
use host_storage::{Change, Iqn, LunSerial, SystemRunner};
use ontap_client::{Client, Query};
use serde_json::json;

use crate::lab_common::{delete, get, map_lun_to_lab_igroup, post, sh, Volume};

/// A daemon started by the test, killed when dropped.
pub struct Daemon(std::process::Child);

impl Daemon {
    /// Starts `program args` with its output in `$LAB_OUT/<log>`.
    pub fn start(program: &str, args: &[&str], log: &str) -> Result<Daemon> {
        let out = std::env::var("LAB_OUT").unwrap_or_else(|_| "/tmp".into());
        let f = std::fs::File::create(std::path::Path::new(&out).join(log))?;
        let child = std::process::Command::new(program)
            .args(args)
            .stdout(f.try_clone()?)
            .stderr(f)
            .spawn()
            .with_context(|| format!("starting {program}"))?;
        Ok(Daemon(child))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `program args` until it exits 0.
pub async fn wait_ok(program: &str, args: &[&str], within: Duration) -> Result<String> {
    let deadline = Instant::now() + within;
    loop {
        match sh(program, args) {
            Ok(out) => return Ok(out),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// The portal the tests discover the simulator's target through (the other is 127.0.1.4).
const DISCOVERY_PORTAL: &str = "127.0.1.3";

/// Logs in to both portals and waits for the LUN's two-path map.
pub async fn attach(
    iqn: &Iqn,
    serial: &LunSerial,
    lun_id: u64,
) -> Result<(
    Iscsi<SystemRunner>,
    ConnectUndo,
    Multipath<SystemRunner>,
    MapRef,
)> {
    let root = HostRoot::system();
    let iscsi = Iscsi::new(SystemRunner::new(), root.clone());
    let found = iscsi
        .discover(&Portal {
            address: DISCOVERY_PORTAL.into(),
            port: 3260,
        })
        .await?;
    let target = IscsiTarget::from_discovery(iqn, &found)?;
    let conn = iscsi
        .connect(&target, &NodeSettings::default(), None)
        .await?;
    iscsi
        .attach_lun(iqn, lun_id, serial, Duration::from_secs(30))
        .await?;
    let mp = Multipath::new(SystemRunner::new(), root);
    let map = wait_map(&mp, serial).await?;
    Ok((iscsi, conn, mp, map))
}

/// Waits for the multipath map of `serial` with two paths.
pub async fn wait_map(mp: &Multipath<SystemRunner>, serial: &LunSerial) -> Result<MapRef> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(m) = mp.find_lun_map(serial)? {
            if m.paths.len() == 2 {
                return Ok(m);
            }
        }
        ensure!(
            Instant::now() < deadline,
            "no multipath map with 2 paths for {serial}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Maps `lun` (a LUN path such as `/vol/v/lun1`) as `lun_id` to the igroup `lab_ig` of this
/// host (created when missing); returns the target IQN.
pub async fn map_lun(c: &Client, lun: &str, lun_id: u64) -> Result<Iqn> {
    let initiator = initiator_iqn(&HostRoot::system())?.context("no initiator name")?;
    let iqn = map_lun_to_lab_igroup(c, lun, lun_id, initiator.as_str()).await?;
    Ok(Iqn::parse(&iqn)?)
}

/// A LUN `/vol/<vol>/lun1` in a new volume, mapped as `lun_id` to the igroup of this host.
pub async fn mapped_lun(
    c: &Client,
    vol: &str,
    lun_id: u64,
    (size_vol, size_lun): (&str, &str),
) -> Result<(Iqn, LunSerial)> {
    Volume::create(c, vol, size_vol, false).await?;
    let lun = post(
        c,
        "/api/storage/luns",
        json!({"svm": {"name": "svm1"}, "name": format!("/vol/{vol}/lun1"), "os_type": "linux",
               "space": {"size": size_lun}}),
    )
    .await?;
    let serial = LunSerial::parse(lun[0]["serial_number"].as_str().context("serial")?)?;
    let iqn = map_lun(c, &format!("/vol/{vol}/lun1"), lun_id).await?;
    Ok((iqn, serial))
}

/// Deletes what [`mapped_lun`] made on the simulator: the LUN's maps, the LUN and the
/// volume. Whatever is already gone is skipped, so it may run after a failure at any point.
pub async fn delete_mapped_lun(c: &Client, vol: &str) -> Result<()> {
    let lun = format!("/vol/{vol}/lun1");
    let maps = get(
        c,
        "/api/protocols/san/lun-maps",
        &Query::new()
            .filter("lun.name", &lun)
            .fields(["lun.uuid", "igroup.uuid"]),
    )
    .await?;
    for m in &maps {
        let lun_uuid = m["lun"]["uuid"].as_str().context("map lun uuid")?;
        let ig = m["igroup"]["uuid"].as_str().context("map igroup uuid")?;
        delete(c, &format!("/api/protocols/san/lun-maps/{lun_uuid}/{ig}")).await?;
    }
    let luns = get(c, "/api/storage/luns", &Query::new().filter("name", &lun)).await?;
    for l in &luns {
        let uuid = l["uuid"].as_str().context("lun uuid")?;
        delete(c, &format!("/api/storage/luns/{uuid}")).await?;
    }
    let vols = get(c, "/api/storage/volumes", &Query::new().filter("name", vol)).await?;
    for v in &vols {
        let uuid = v["uuid"].as_str().context("volume uuid")?;
        delete(c, &format!("/api/storage/volumes/{uuid}")).await?;
    }
    Ok(())
}

/// A one-node o2cb cluster named `name`, with this host as node 0 on 127.0.0.1 and local
/// heartbeat, written to cluster.conf by cluster-fs and registered.
pub struct O2cb {
    /// The host, to format and mount with.
    pub node: ClusterHost<SystemRunner>,
    /// The cluster.
    pub cluster: ClusterName,
    /// Whether writing cluster.conf changed it.
    pub conf_written: Change,
    /// Whether registering changed anything (`Unchanged`: an earlier test registered it).
    pub registered: Change,
    /// How to put cluster.conf back.
    conf_undo: cluster_fs::host::FileUndo,
}

/// o2cb runs one cluster per kernel: a test that registered `labcl` unregisters it and
/// restores cluster.conf when it ends (after its OCFS2 mounts are gone), so later lab tests
/// (the facade's own cluster `kvmstor`) find the guest as it was.
impl Drop for O2cb {
    fn drop(&mut self) {
        if self.registered == Change::Changed {
            let _ = std::process::Command::new("o2cb")
                .arg("--config-file=/etc/ocfs2/cluster.conf")
                .args(["unregister-cluster", self.cluster.as_str()])
                .status();
        }
        let _ = cluster_fs::host::undo_file(&self.conf_undo);
    }
}

/// Brings up (or finds up) the one-node o2cb cluster `name`.
pub async fn o2cb_one_node(name: &str) -> Result<O2cb> {
    let host = sh("hostname", &[])?;
    let cl = ClusterName::parse(name)?;
    let mut conf = ClusterConf::default();
    ensure!(
        conf.add_cluster(Ocfs2Cluster::new(cl.clone(), HeartbeatMode::Local))? == Change::Changed
    );
    let added = conf.add_node(Ocfs2Node::new(
        cl.clone(),
        NodeName::parse(host.trim())?,
        0,
        "127.0.0.1".parse()?,
    )?)?;
    ensure!(added == Change::Changed);
    let node = ClusterHost::new(SystemRunner::new());
    let written = node.write_cluster_conf(&conf)?;
    let registered = node.register_cluster(&cl).await?;
    ensure!(node.cluster_online(&cl).await?, "cluster {cl} not online");
    ensure!(node.list_clusters().await? == vec![cl.clone()]);
    Ok(O2cb {
        node,
        cluster: cl,
        conf_written: written.change,
        registered: registered.change,
        conf_undo: written,
    })
}

/// Single-node corosync and dlm_controld from the files cluster-fs writes; killed on drop
/// (dlm_controld first).
pub struct Gfs2Stack {
    /// The host, to format and mount with.
    pub node: ClusterHost<SystemRunner>,
    /// The corosync configuration written.
    pub corosync: CorosyncConf,
    /// Whether writing corosync.conf changed it.
    pub corosync_written: Change,
    /// Whether writing dlm.conf changed it, and whether writing it again did.
    pub dlm_written: (Change, Change),
    dlm_controld: Daemon,
    corosync_daemon: Daemon,
}

/// Starts corosync (cluster `name`, this host as node 1 on 127.0.0.1) and dlm_controld
/// without fencing, and waits until corosync is quorate and dlm_controld answers.
pub async fn gfs2_one_node(name: &str) -> Result<Gfs2Stack> {
    // The package's sample corosync.conf (another cluster) is removed first: the guest's
    // /etc is a tmpfs, and an earlier test's file would be merged with.
    let _ = std::fs::remove_file("/etc/corosync/corosync.conf");
    for d in [
        "/var/log/corosync",
        "/var/lib/corosync",
        "/run/dlm",
        "/etc/dlm",
    ] {
        std::fs::create_dir_all(d)?;
    }
    let host = sh("hostname", &[])?;
    let cl = ClusterName::parse(name)?;
    let mut coro = CorosyncConf::new(cl);
    ensure!(
        coro.add_node(CorosyncNode::new(
            1,
            NodeName::parse(host.trim())?,
            "127.0.0.1".parse()?
        )?)? == Change::Changed
    );
    let node = ClusterHost::new(SystemRunner::new());
    let corosync_written = node.write_corosync(&coro)?.change;
    let dlm = DlmConf {
        enable_fencing: false,
        ..DlmConf::default()
    };
    let first = node.write_dlm_conf(&dlm)?.change;
    let second = node.write_dlm_conf(&dlm)?.change;
    let corosync_daemon = Daemon::start("corosync", &["-f"], &format!("corosync-{name}.log"))?;
    wait_ok("corosync-quorumtool", &["-s"], Duration::from_secs(60)).await?;
    let dlm_controld = Daemon::start(
        "dlm_controld",
        &["--foreground"],
        &format!("dlm_controld-{name}.log"),
    )?;
    wait_ok("dlm_tool", &["status"], Duration::from_secs(60)).await?;
    Ok(Gfs2Stack {
        node,
        corosync: coro,
        corosync_written,
        dlm_written: (first, second),
        dlm_controld,
        corosync_daemon,
    })
}
