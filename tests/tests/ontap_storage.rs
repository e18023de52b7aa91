//! `ontap-client` against `ontap-sim` over HTTPS: cluster, nodes, SVMs, aggregates,
//! network interfaces, volumes (FlexVol, FlexGroup, settings), snapshots with locks,
//! FlexClones, file clones, jobs, paging, filters and SVM tunnelling.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{err, ok, rfc3339_from_now, Env, AGGR1, AGGR2, SVM};
use ontap_client::models::{
    AggregateState, AntiRansomwareState, EfficiencyMode, EncryptionState, FcDataProtocol,
    FileCloneCreate, FlexCloneCreate, GuaranteeType, IpService, NodeState, SnapshotCreate,
    SnapshotState, SvmState, TieringPolicy, Volume, VolumeCreate, VolumeStyle, GIB, TIB,
};
use ontap_client::{Client, Error, JobState, Query};
use ontap_sim::Seed;
use serde_json::{json, Value};

/// Creates a volume and returns its UUID (checking the echoed name).
async fn create_volume(client: &Client, body: &VolumeCreate) -> String {
    let created = ok(client.volumes().create(body).await);
    let record = created.record.expect("the POST answer carries the record");
    assert_eq!(record.name.as_deref(), Some(body.name.as_str()));
    record.uuid.expect("created volume has a UUID")
}

/// A client for the same simulator that never lets ONTAP wait (`return_timeout=0`), so
/// every asynchronous mutation is answered 202 and its job is polled.
fn polling_client(env: &Env) -> Client {
    common::client_builder(&env.sim)
        .job_wait(common::fast_jobs().with_return_timeout(0))
        .build()
        .expect("client builds")
}

#[tokio::test]
async fn cluster_version_and_nodes() {
    let env = common::start().await;
    let c = &env.client;

    let cluster = ok(c.cluster().get().await);
    assert_eq!(cluster.name.as_deref(), Some("sim-cluster"));
    let version = cluster.version.expect("version is a default field");
    assert_eq!(
        version.full.as_deref(),
        Some("NetApp Release 9.16.1: Mon Sep 30 12:00:00 UTC 2024")
    );
    assert_eq!(version.triple(), (9, 16, 1));

    let version = ok(c.cluster().version().await);
    assert_eq!(version.to_string(), "9.16.1");
    assert!(version.at_least(9, 12, 1));
    assert!(version.at_least(9, 16, 1));
    assert!(!version.at_least(9, 17, 0));
    let last = env.sim.requests().pop().expect("request logged");
    assert_eq!(last.path, "/api/cluster");
    assert_eq!(last.query.as_deref(), Some("fields=version"));

    let nodes = ok(c.nodes().list_all(&Query::new().order_by("name")).await);
    let names: Vec<_> = nodes.iter().filter_map(|n| n.name.clone()).collect();
    assert_eq!(names, ["sim-cluster-01", "sim-cluster-02"]);
    let uuid = nodes[1].uuid.clone().expect("node uuid");
    let node = ok(c.nodes().get(&uuid, &Query::new()).await);
    assert_eq!(node.name.as_deref(), Some("sim-cluster-02"));
    assert_eq!(node.model.as_deref(), Some("SIMBOX"));
    assert_eq!(node.serial_number.as_deref(), Some("408236800002"));
    assert_eq!(node.state, Some(NodeState::Up));
    assert_eq!(node.version.map(|v| v.triple()), Some((9, 16, 1)));

    let missing = err(c
        .nodes()
        .get("00000000-0000-0000-0000-000000000000", &Query::new())
        .await);
    assert!(missing.is_not_found(), "{missing:?}");
}

#[tokio::test]
async fn svms_and_aggregates() {
    let env = common::start().await;
    let c = &env.client;

    let svm = ok(c.svms().by_name(SVM).await).expect("svm1 exists");
    let svm_uuid = svm.uuid.clone().expect("svm uuid");
    let svm = ok(c.svms().get(&svm_uuid, &Query::new()).await);
    assert_eq!(svm.name.as_deref(), Some(SVM));
    assert_eq!(svm.state, Some(SvmState::Running));
    for (proto, p) in [
        ("nfs", &svm.nfs),
        ("cifs", &svm.cifs),
        ("iscsi", &svm.iscsi),
        ("fcp", &svm.fcp),
        ("nvme", &svm.nvme),
    ] {
        assert_eq!(p.as_ref().and_then(|p| p.enabled), Some(true), "{proto}");
    }
    let aggrs: Vec<_> = svm
        .aggregates
        .unwrap_or_default()
        .into_iter()
        .filter_map(|a| a.name)
        .collect();
    assert_eq!(aggrs, [AGGR1, AGGR2]);
    assert_eq!(ok(c.svms().by_name("nosuch").await).map(|s| s.name), None);

    let all = ok(c.aggregates().list_all(&Query::new().fields(["*"])).await);
    let mut names: Vec<_> = all.iter().filter_map(|a| a.name.clone()).collect();
    names.sort();
    assert_eq!(names, [AGGR1, AGGR2]);
    let aggr1 = ok(c.aggregates().by_name(AGGR1).await).expect("aggr1");
    let aggr1 = ok(c
        .aggregates()
        .get(aggr1.uuid.as_deref().unwrap_or_default(), &Query::new())
        .await);
    assert_eq!(aggr1.state, Some(AggregateState::Online));
    assert_eq!(
        aggr1.node.and_then(|n| n.name).as_deref(),
        Some("sim-cluster-01")
    );
    let bs = aggr1.space.and_then(|s| s.block_storage).expect("space");
    assert_eq!(
        (bs.size, bs.available, bs.used),
        (Some(TIB), Some(TIB), Some(0))
    );
}

#[tokio::test]
async fn data_lifs_by_service_and_fc_wwpns() {
    let env = common::start().await;
    let lifs = env.client.ip_interfaces();
    for (service, expected) in [
        (IpService::DataNfs, vec![("lif_nfs", "192.0.2.10")]),
        (IpService::DataCifs, vec![("lif_cifs", "192.0.2.11")]),
        (
            IpService::DataIscsi,
            vec![("lif_iscsi1", "192.0.2.21"), ("lif_iscsi2", "192.0.2.22")],
        ),
        (
            IpService::DataNvmeTcp,
            vec![("lif_nvme1", "192.0.2.31"), ("lif_nvme2", "192.0.2.32")],
        ),
    ] {
        let found = ok(lifs.data_lifs(SVM, &service).await);
        let mut got: Vec<(String, String)> = found
            .iter()
            .map(|l| {
                assert!(l.offers(&service));
                (
                    l.name.clone().unwrap_or_default(),
                    l.address().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        got.sort();
        let expected: Vec<(String, String)> = expected
            .into_iter()
            .map(|(n, a)| (n.to_owned(), a.to_owned()))
            .collect();
        assert_eq!(got, expected, "{service}");
    }
    // The lookup filters on the server.
    let last = env.sim.requests().pop().expect("logged");
    assert!(
        last.query
            .as_deref()
            .is_some_and(|q| q.contains("services=data_nvme_tcp") && q.contains("svm.name=svm1")),
        "{last:?}"
    );
    assert!(ok(lifs.data_lifs("nosuch", &IpService::DataNfs).await).is_empty());

    let fc = ok(env.client.fc_interfaces().of_svm(SVM).await);
    let mut wwpns: Vec<_> = fc
        .iter()
        .map(|f| {
            assert_eq!(f.data_protocol, Some(FcDataProtocol::Fcp));
            (
                f.name.clone().unwrap_or_default(),
                f.wwpn.clone().unwrap_or_default(),
            )
        })
        .collect();
    wwpns.sort();
    assert_eq!(
        wwpns,
        [
            ("lif_fc1".to_owned(), "20:01:00:50:56:bb:00:01".to_owned()),
            ("lif_fc2".to_owned(), "20:02:00:50:56:bb:00:02".to_owned()),
        ]
    );
}

#[tokio::test]
async fn flexvol_create_with_every_setting_and_modify() {
    let env = common::start().await;
    let c = &env.client;
    let body = VolumeCreate::flexvol("db_vol", SVM, AGGR1)
        .size(10 * GIB)
        .junction_path("/db_vol")
        .efficiency(EfficiencyMode::Inline, EfficiencyMode::Background)
        .snapshot_policy("default-1weekly")
        .tiering_policy(TieringPolicy::SnapshotOnly)
        .anti_ransomware(AntiRansomwareState::DryRun)
        .encryption(true)
        .snapshot_locking_enabled(true)
        .guarantee(GuaranteeType::Volume)
        .comment("database");
    let uuid = create_volume(c, &body).await;
    let post = env
        .sim
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .expect("POST logged");
    assert_eq!(post.path, "/api/storage/volumes");
    assert_eq!(
        post.query.as_deref(),
        Some("return_records=true&return_timeout=30")
    );

    // ONTAP finished within return_timeout: no job was polled.
    assert!(env
        .sim
        .requests()
        .iter()
        .all(|r| !r.path.starts_with("/api/cluster/jobs")));
    let v = ok(c.volumes().get(&uuid, &Query::new()).await);
    assert_eq!(v.name.as_deref(), Some("db_vol"));
    assert_eq!(v.svm.as_ref().and_then(|s| s.name.as_deref()), Some(SVM));
    assert_eq!(v.style, Some(VolumeStyle::Flexvol));
    assert_eq!(v.size, Some(10 * GIB));
    assert_eq!(v.junction_path(), Some("/db_vol"));
    assert_eq!(v.comment.as_deref(), Some("database"));
    let eff = v.efficiency.clone().expect("efficiency");
    assert_eq!(eff.compression, Some(EfficiencyMode::Inline));
    assert_eq!(eff.dedupe, Some(EfficiencyMode::Background));
    assert_eq!(
        v.snapshot_policy.as_ref().and_then(|p| p.name.as_deref()),
        Some("default-1weekly")
    );
    assert_eq!(
        v.tiering.as_ref().and_then(|t| t.policy.clone()),
        Some(TieringPolicy::SnapshotOnly)
    );
    assert_eq!(
        v.anti_ransomware.as_ref().and_then(|a| a.state.clone()),
        Some(AntiRansomwareState::DryRun)
    );
    let enc = v.encryption.clone().expect("encryption");
    assert_eq!(
        (enc.enabled, enc.state),
        (Some(true), Some(EncryptionState::Encrypted))
    );
    assert_eq!(v.snapshot_locking_enabled, Some(true));
    assert!(!v.is_flexclone());
    // A thick 10 GiB volume takes 10 GiB from aggr1.
    let aggr1 = ok(c.aggregates().by_name(AGGR1).await).expect("aggr1");
    let aggr1 = ok(c
        .aggregates()
        .get(aggr1.uuid.as_deref().unwrap_or_default(), &Query::new())
        .await);
    let bs = aggr1.space.and_then(|s| s.block_storage).expect("space");
    assert_eq!(bs.available, Some(TIB - 10 * GIB));

    ok(c.volumes().resize(&uuid, 20 * GIB).await);
    ok(c.volumes()
        .set_efficiency(&uuid, EfficiencyMode::Both, EfficiencyMode::None)
        .await);
    ok(c.volumes().set_snapshot_policy(&uuid, "none").await);
    ok(c.volumes()
        .set_tiering_policy(&uuid, TieringPolicy::Auto)
        .await);
    ok(c.volumes()
        .set_anti_ransomware(&uuid, AntiRansomwareState::Enabled)
        .await);
    ok(c.volumes().set_encryption(&uuid, false).await);
    ok(c.volumes().set_snapshot_locking(&uuid, false).await);

    let v = ok(c.volumes().get(&uuid, &Query::new()).await);
    assert_eq!(v.size, Some(20 * GIB));
    assert_eq!(v.space.as_ref().and_then(|s| s.size), Some(20 * GIB));
    let eff = v.efficiency.clone().expect("efficiency");
    assert_eq!(eff.compression, Some(EfficiencyMode::Both));
    assert_eq!(eff.dedupe, Some(EfficiencyMode::None));
    assert_eq!(
        v.snapshot_policy.as_ref().and_then(|p| p.name.as_deref()),
        Some("none")
    );
    assert_eq!(
        v.tiering.as_ref().and_then(|t| t.policy.clone()),
        Some(TieringPolicy::Auto)
    );
    assert_eq!(
        v.anti_ransomware.as_ref().and_then(|a| a.state.clone()),
        Some(AntiRansomwareState::Enabled)
    );
    let enc = v.encryption.clone().expect("encryption");
    assert_eq!(
        (enc.enabled, enc.state),
        (Some(false), Some(EncryptionState::None))
    );
    assert_eq!(v.snapshot_locking_enabled, Some(false));

    // Shrinking below the minimum is refused by the job, with ONTAP's code.
    let e = err(c.volumes().resize(&uuid, 1024).await);
    assert_eq!(e.ontap_code(), Some("917536"), "{e:?}");

    // An unknown snapshot policy is refused synchronously.
    let e = err(c.volumes().set_snapshot_policy(&uuid, "nosuch").await);
    assert_eq!(e.status(), Some(404));
    assert_eq!(e.ontap_code(), Some("1638413"));

    // A duplicate name is a conflict.
    let e = err(c
        .volumes()
        .create(&VolumeCreate::flexvol("db_vol", SVM, AGGR1))
        .await);
    assert!(e.is_conflict(), "{e:?}");

    // The 20 GiB (after resize) are charged to aggr1.
    assert_eq!(aggr1_free(c).await, TIB - 20 * GIB);

    // Rename; the junction path of another volume cannot be taken.
    ok(c.volumes()
        .patch(
            &uuid,
            &ontap_client::models::VolumePatch::new().name("db_vol2"),
        )
        .await);
    assert_eq!(
        ok(c.volumes().by_name(SVM, "db_vol2").await).and_then(|v| v.uuid),
        Some(uuid.clone())
    );
    let other = create_volume(
        c,
        &VolumeCreate::flexvol("other", SVM, AGGR1).guarantee(GuaranteeType::None),
    )
    .await;
    let e = err(c
        .volumes()
        .patch(
            &other,
            &ontap_client::models::VolumePatch::new().junction_path("/db_vol"),
        )
        .await);
    assert_eq!((e.status(), e.ontap_code()), (Some(409), Some("1")));
    assert_eq!(
        e.to_string(),
        format!(
            "PATCH /api/storage/volumes/{other}?return_timeout=30: ONTAP error (HTTP 409, code 1): \
             Junction path \"/db_vol\" is already used by volume \"db_vol2\". (target: nas.path)"
        )
    );

    ok(c.volumes().delete(&uuid).await);
    let e = err(c.volumes().get(&uuid, &Query::new()).await);
    assert!(e.is_not_found());
    assert_eq!(ok(c.volumes().by_name(SVM, "db_vol2").await), None);
    // Deleting again: the volume is already gone.
    assert!(err(c.volumes().delete(&uuid).await).is_not_found());
    assert_eq!(aggr1_free(c).await, TIB, "space given back");
}

async fn aggr1_free(c: &Client) -> u64 {
    let a = ok(c
        .aggregates()
        .find(&Query::new().filter("name", AGGR1).fields(["space"]))
        .await)
    .expect("aggr1");
    a.space
        .and_then(|s| s.block_storage)
        .and_then(|b| b.available)
        .expect("available")
}

#[tokio::test]
async fn flexgroup_across_two_aggregates() {
    let env = common::start().await;
    let c = &env.client;
    let uuid = create_volume(
        c,
        &VolumeCreate::flexgroup("fg1", SVM, &[AGGR1, AGGR2])
            .size(100 * GIB)
            .guarantee(GuaranteeType::None),
    )
    .await;
    let v = ok(c.volumes().by_name(SVM, "fg1").await).expect("found by name");
    assert_eq!(v.uuid.as_deref(), Some(uuid.as_str()));
    let v = ok(c.volumes().get(&uuid, &Query::new()).await);
    assert_eq!(v.style, Some(VolumeStyle::Flexgroup));
    assert_eq!(v.size, Some(100 * GIB));
    let aggrs: Vec<_> = v
        .aggregates
        .unwrap_or_default()
        .into_iter()
        .filter_map(|a| a.name)
        .collect();
    assert_eq!(aggrs, [AGGR1, AGGR2]);
    ok(c.volumes().resize(&uuid, 200 * GIB).await);
    assert_eq!(
        ok(c.volumes().get(&uuid, &Query::new()).await).size,
        Some(200 * GIB)
    );

    // A FlexVol must name exactly one aggregate.
    let mut bad = VolumeCreate::flexgroup("fv2", SVM, &[AGGR1, AGGR2]);
    bad.style = Some(VolumeStyle::Flexvol);
    let e = err(c.volumes().create(&bad).await);
    assert_eq!((e.status(), e.ontap_code()), (Some(400), Some("918242")));
    assert_eq!(env.stored_names("volumes"), ["fg1"]);
}

#[tokio::test]
async fn locked_snapshot_refuses_delete_until_expiry() {
    let env = common::start().await;
    let c = &env.client;
    let vol = create_volume(
        c,
        &VolumeCreate::flexvol("locked", SVM, AGGR1).snapshot_locking_enabled(true),
    )
    .await;
    let snaps = c.snapshots(&vol);
    // Locked until four seconds from now (truncated to whole seconds: at least three).
    let until = rfc3339_from_now(4);
    let created = ok(snaps
        .create(
            &SnapshotCreate::new("hourly.0")
                .comment("before upgrade")
                .snaplock_expiry(until.clone()),
        )
        .await);
    let snap = created.record.expect("record echoed");
    assert_eq!(snap.name.as_deref(), Some("hourly.0"));
    let snap_uuid = snap.uuid.expect("uuid");
    let snap = ok(snaps.get(&snap_uuid, &Query::new()).await);
    assert_eq!(snap.comment.as_deref(), Some("before upgrade"));
    assert_eq!(snap.state, Some(SnapshotState::Valid));
    assert_eq!(
        snap.snaplock
            .as_ref()
            .and_then(|l| l.expiry_time.as_deref()),
        Some(until.as_str())
    );
    assert_eq!(snap.snaplock.as_ref().and_then(|l| l.expired), Some(false));
    assert!(snap.is_locked());
    assert_eq!(
        ok(snaps.by_name("hourly.0").await).and_then(|s| s.uuid),
        Some(snap_uuid.clone())
    );

    // A lock cannot be shortened.
    let e = err(snaps.lock_until(&snap_uuid, &rfc3339_from_now(-3600)).await);
    assert_eq!((e.status(), e.ontap_code()), (Some(400), Some("1638620")));

    // Delete before expiry: the job fails. Polled, it is JobFailed with the job's code...
    let polling = polling_client(&env);
    match err(polling.snapshots(&vol).delete(&snap_uuid).await) {
        Error::JobFailed {
            state,
            code,
            message,
            ..
        } => {
            assert_eq!(state, JobState::Failure);
            assert_eq!(code.as_deref(), Some("1638555"));
            let message = message.unwrap_or_default();
            assert!(
                message.starts_with(
                    "Snapshot copy \"hourly.0\" of volume \"locked\" on Vserver \"svm1\" has not expired or is locked."
                ),
                "{message}"
            );
        }
        other => panic!("expected JobFailed, got {other:?}"),
    }
    // ...and with return_timeout the same failure comes back as the HTTP answer.
    let e = err(snaps.delete(&snap_uuid).await);
    assert!(matches!(e, Error::Api(_)), "{e:?}");
    assert_eq!(e.ontap_code(), Some("1638555"));
    assert!(ok(snaps.by_name("hourly.0").await).is_some());

    // After expiry the delete goes through.
    tokio::time::sleep(Duration::from_millis(4100)).await;
    ok(snaps.delete(&snap_uuid).await);
    assert!(ok(snaps.by_name("hourly.0").await).is_none());
    assert!(err(snaps.get(&snap_uuid, &Query::new()).await).is_not_found());
}

/// `snaplock.expired` says whether the lock has run out *now*, as ONTAP computes it on
/// read; a client deciding whether it may delete relies on it (`Snapshot::is_locked`).
#[tokio::test]
async fn snaplock_expired_is_computed_when_read() {
    let env = common::start().await;
    let c = &env.client;
    let vol = create_volume(
        c,
        &VolumeCreate::flexvol("lockread", SVM, AGGR1).snapshot_locking_enabled(true),
    )
    .await;
    let snaps = c.snapshots(&vol);
    let created = ok(snaps
        .create(&SnapshotCreate::new("brief").snaplock_expiry(rfc3339_from_now(3)))
        .await);
    let uuid = created.record.and_then(|s| s.uuid).expect("uuid");
    let fresh = ok(snaps.get(&uuid, &Query::new()).await);
    assert_eq!(fresh.snaplock.as_ref().and_then(|l| l.expired), Some(false));
    assert!(fresh.is_locked());
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let later = ok(snaps.get(&uuid, &Query::new()).await);
    assert_eq!(
        later.snaplock.as_ref().and_then(|l| l.expired),
        Some(true),
        "the lock ran out but the record still says expired=false"
    );
    assert!(!later.is_locked());
}

#[tokio::test]
async fn snapshot_lock_needs_locking_enabled_volume() {
    let env = common::start().await;
    let c = &env.client;
    let vol = create_volume(c, &VolumeCreate::flexvol("plain", SVM, AGGR1)).await;
    let snaps = c.snapshots(&vol);
    let e = err(snaps
        .create(&SnapshotCreate::new("s1").snaplock_expiry(rfc3339_from_now(3600)))
        .await);
    assert_eq!((e.status(), e.ontap_code()), (Some(400), Some("1638619")));
    let snap = ok(snaps.create(&SnapshotCreate::new("s1")).await);
    let snap_uuid = snap.record.and_then(|s| s.uuid).expect("uuid");
    let e = err(snaps
        .lock_until_legacy(&snap_uuid, &rfc3339_from_now(3600))
        .await);
    assert_eq!(e.ontap_code(), Some("1638619"));
    // Turning locking on lets the 9.12-9.14 field lock it.
    ok(c.volumes().set_snapshot_locking(&vol, true).await);
    let until = rfc3339_from_now(3600);
    ok(snaps.lock_until_legacy(&snap_uuid, &until).await);
    let s = ok(snaps.get(&snap_uuid, &Query::new()).await);
    assert_eq!(s.snaplock_expiry_time.as_deref(), Some(until.as_str()));
    assert!(s.is_locked());
    // A duplicate name is a conflict.
    assert!(err(snaps.create(&SnapshotCreate::new("s1")).await).is_conflict());
    // A plain expiry time (no lock) also keeps a snapshot until then.
    let kept = ok(snaps
        .create(&SnapshotCreate::new("kept").expiry_time(rfc3339_from_now(3600)))
        .await);
    let kept = kept.record.and_then(|s| s.uuid).expect("uuid");
    let e = err(snaps.delete(&kept).await);
    assert_eq!(e.ontap_code(), Some("1638555"));
    assert!(ok(snaps.by_name("kept").await).is_some());
}

#[tokio::test]
async fn flexclone_from_snapshot_then_split() {
    let env = common::start().await;
    let c = &env.client;
    let parent = create_volume(
        c,
        &VolumeCreate::flexvol("gold", SVM, AGGR1)
            .size(4 * GIB)
            .junction_path("/gold"),
    )
    .await;
    let snap = ok(c
        .snapshots(&parent)
        .create(&SnapshotCreate::new("base"))
        .await);
    let snap_uuid = snap.record.and_then(|s| s.uuid).expect("uuid");

    let created = ok(c
        .volumes()
        .create_flexclone(
            &FlexCloneCreate::new("gold_clone", SVM, "gold")
                .parent_snapshot("base")
                .junction_path("/gold_clone"),
        )
        .await);
    let clone_uuid = created.record.and_then(|v| v.uuid).expect("clone record");
    let clone = ok(c.volumes().get(&clone_uuid, &Query::new()).await);
    assert!(clone.is_flexclone());
    assert_eq!(clone.size, Some(4 * GIB));
    assert_eq!(clone.junction_path(), Some("/gold_clone"));
    let info = clone.clone.clone().expect("clone info");
    assert_eq!(
        info.parent_volume.and_then(|p| p.name).as_deref(),
        Some("gold")
    );
    assert_eq!(
        info.parent_snapshot.and_then(|p| p.uuid).as_deref(),
        Some(snap_uuid.as_str())
    );
    assert_eq!(info.split_initiated, Some(false));

    // The snapshot backs the clone, and the parent has a clone: both deletes fail.
    let e = err(c.snapshots(&parent).delete(&snap_uuid).await);
    assert_eq!(e.ontap_code(), Some("1638600"), "{e:?}");
    let e = err(c.volumes().delete(&parent).await);
    assert_eq!(e.ontap_code(), Some("8"), "{e:?}");

    // Split: the clone becomes independent.
    ok(c.volumes().split_clone(&clone_uuid).await);
    let clone = ok(c.volumes().get(&clone_uuid, &Query::new()).await);
    assert!(!clone.is_flexclone());
    let info = clone.clone.expect("clone info");
    assert_eq!(
        (info.split_initiated, info.split_complete_percent),
        (Some(true), Some(100))
    );
    // Splitting a volume that is no clone is refused.
    let e = err(c.volumes().split_clone(&parent).await);
    assert_eq!((e.status(), e.ontap_code()), (Some(400), Some("2")));

    ok(c.snapshots(&parent).delete(&snap_uuid).await);
    ok(c.volumes().delete(&parent).await);
    assert_eq!(env.stored_names("volumes"), ["gold_clone"]);
    // Once split, the clone owns its blocks: its 4 GiB are charged to aggr1.
    assert_eq!(aggr1_free(c).await, TIB - 4 * GIB);
    ok(c.volumes().delete(&clone_uuid).await);
    assert_eq!(aggr1_free(c).await, TIB);
}

#[tokio::test]
async fn file_clone_inside_a_volume() {
    let env = common::start().await;
    let c = &env.client;
    let vol = create_volume(c, &VolumeCreate::flexvol("images", SVM, AGGR1)).await;

    ok(c.file_clone(
        &FileCloneCreate::new("images", "base/disk0.qcow2", "vm1/disk0.qcow2").svm(SVM),
    )
    .await);
    let files = env.sim.state()["files"][&vol].clone();
    assert_eq!(files, json!(["base/disk0.qcow2", "vm1/disk0.qcow2"]));

    // The destination exists now: refused unless overwriting.
    let again = FileCloneCreate::new("images", "base/disk0.qcow2", "vm1/disk0.qcow2").svm(SVM);
    let e = err(polling_client(&env).file_clone(&again).await);
    match &e {
        Error::JobFailed { code, message, .. } => {
            assert_eq!(code.as_deref(), Some("13"));
            assert_eq!(
                message.as_deref(),
                Some("Clone destination \"vm1/disk0.qcow2\" already exists in volume \"images\".")
            );
        }
        other => panic!("expected JobFailed, got {other:?}"),
    }
    ok(c.file_clone(&again.overwrite_destination(true)).await);

    // A volume that does not exist is an HTTP error.
    let e = err(c
        .file_clone(&FileCloneCreate::new("nosuch", "a", "b").svm(SVM))
        .await);
    assert_eq!((e.status(), e.ontap_code()), (Some(404), Some("917927")));
}

#[tokio::test]
async fn jobs_are_listed_and_fetched() {
    let env = common::start().await;
    let polling = polling_client(&env);
    let uuid = create_volume(&polling, &VolumeCreate::flexvol("jobvol", SVM, AGGR1)).await;
    // Polling happened: at least one GET on a job.
    let job_gets: Vec<_> = env
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.starts_with("/api/cluster/jobs/"))
        .collect();
    assert!(!job_gets.is_empty());
    assert_eq!(
        job_gets[0].query.as_deref(),
        Some("fields=state,message,code,error,description,start_time,end_time")
    );

    ok(polling.volumes().resize(&uuid, 2 * GIB).await);
    let jobs = ok(env
        .client
        .jobs()
        .list_all(&Query::new().fields(["description", "state", "code"]))
        .await);
    let mut descriptions: Vec<String> = jobs
        .iter()
        .map(|j| {
            assert_eq!(j.state, Some(JobState::Success), "{j:?}");
            assert_eq!(j.code, Some(0));
            j.description.clone().unwrap_or_default()
        })
        .collect();
    descriptions.sort();
    assert_eq!(descriptions.len(), 2, "{descriptions:?}");
    assert!(
        descriptions[0].starts_with("PATCH /api/storage/volumes/"),
        "{descriptions:?}"
    );
    assert!(
        descriptions[1].starts_with("POST /api/storage/volumes"),
        "{descriptions:?}"
    );
    let job_uuid = jobs[0].uuid.clone().expect("job uuid");
    let job = ok(env.client.get_job(&job_uuid).await);
    assert_eq!(job.uuid.as_deref(), Some(job_uuid.as_str()));
    assert_eq!(job.state, Some(JobState::Success));
    assert!(job.end_time.is_some());
    let waited = ok(env.client.wait_for_job(&job_uuid).await);
    assert_eq!(waited.state, Some(JobState::Success));
}

/// A seed with `svm2` (no LIFs) and 25 volumes `vol1`..`vol25` of `i` GiB in `svm1`, plus
/// `other1`/`other2` in `svm2`.
fn paging_seed() -> Seed {
    let mut doc = serde_json::to_value(Seed::default()).expect("seed serializes");
    doc["svms"]
        .as_array_mut()
        .expect("svms")
        .push(json!({"name": "svm2", "protocols": ["nfs"], "aggregates": [AGGR2]}));
    let mut volumes: Vec<Value> = (1..=25)
        .map(|i| {
            json!({"name": format!("vol{i}"), "svm": {"name": SVM},
                   "aggregates": [{"name": AGGR1}], "size": i * GIB,
                   "guarantee": {"type": "none"},
                   "comment": if i <= 10 { "tier one" } else { "tier two" }})
        })
        .collect();
    for name in ["other1", "other2"] {
        volumes.push(json!({"name": name, "svm": {"name": "svm2"},
                            "aggregates": [{"name": AGGR2}], "size": GIB}));
    }
    doc["volumes"] = Value::Array(volumes);
    Seed::from_json(&doc.to_string()).expect("seed parses")
}

fn names(vols: &[Volume]) -> Vec<String> {
    vols.iter().filter_map(|v| v.name.clone()).collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn expected(range: impl IntoIterator<Item = u64>) -> Vec<String> {
    sorted(range.into_iter().map(|i| format!("vol{i}")).collect())
}

#[tokio::test]
async fn paging_filters_and_svm_tunnelling() {
    let env = common::start_with(common::sim_builder().seed(paging_seed()), |b| b).await;
    let vols = env.client.volumes();
    let in_svm1 = Query::new().filter("svm.name", SVM);

    // One page per 4 records: 25 records in 7 GETs, each once, in the server's order.
    let unpaged = names(&ok(vols.list_all(&in_svm1).await));
    assert_eq!(unpaged.len(), 25);
    env.sim.clear_requests();
    let paged = names(&ok(vols.list_all(&in_svm1.clone().max_records(4)).await));
    assert_eq!(paged, unpaged);
    assert_eq!(paged.iter().collect::<BTreeSet<_>>().len(), 25);
    let gets = env.sim.requests();
    assert_eq!(gets.len(), 7, "{gets:?}");
    assert!(gets.iter().all(|r| r.path == "/api/storage/volumes"));
    assert_eq!(
        gets[0].query.as_deref(),
        Some("svm.name=svm1&max_records=4")
    );
    assert!(gets[1..].iter().all(|r| r
        .query
        .as_deref()
        .is_some_and(|q| q.contains("start.uuid="))));

    // Sorted by name, paged.
    let by_name = names(&ok(vols
        .list_all(&in_svm1.clone().order_by("name").max_records(4))
        .await));
    assert_eq!(by_name, expected(1..=25));
    let by_size_desc = names(&ok(vols
        .list_all(&in_svm1.clone().order_by("size desc").max_records(4))
        .await));
    assert_eq!(
        by_size_desc,
        (1..=25)
            .rev()
            .map(|i| format!("vol{i}"))
            .collect::<Vec<_>>()
    );

    // Counts sum over pages.
    assert_eq!(ok(vols.count(&in_svm1.clone().max_records(4)).await), 25);
    assert_eq!(ok(vols.count(&Query::new()).await), 27);

    // Filters with operators.
    let q = |f: &str, e: &str| in_svm1.clone().filter(f, e).max_records(4);
    assert_eq!(
        sorted(names(&ok(vols.list_all(&q("name", "vol1*")).await))),
        expected([1, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19])
    );
    assert_eq!(
        sorted(names(&ok(vols
            .list_all(&q("size", ">20GB").fields(["size"]))
            .await))),
        expected(21..=25)
    );
    assert_eq!(
        sorted(names(&ok(vols.list_all(&q("size", "<=3GB")).await))),
        expected(1..=3)
    );
    assert_eq!(
        sorted(names(&ok(vols.list_all(&q("size", "5GB..7GB")).await))),
        expected(5..=7)
    );
    assert_eq!(
        sorted(names(&ok(vols
            .list_all(&q("name", "vol3|vol7|vol25"))
            .await))),
        expected([3, 7, 25])
    );
    assert_eq!(
        sorted(names(&ok(vols.list_all(&q("name", "!vol1*")).await))),
        expected((2..=9).chain(20..=25))
    );
    assert_eq!(
        sorted(names(&ok(vols
            .list_all(&q("name", "vol2*").filter("size", ">=22GB"))
            .await))),
        expected(22..=25)
    );
    assert!(ok(vols.list_all(&q("name", "nomatch*")).await).is_empty());
    // A value with a space (sent as %20, repeated verbatim in the next links).
    assert_eq!(
        sorted(names(&ok(vols.list_all(&q("comment", "tier one")).await))),
        expected(1..=10)
    );
    assert_eq!(ok(vols.count(&q("comment", "tier t*")).await), 15);
    assert_eq!(ok(vols.count(&q("comment", "tier *")).await), 25);
    // A field inside an array.
    assert_eq!(
        sorted(names(&ok(vols
            .list_all(&Query::new().filter("aggregates.name", AGGR2).max_records(1))
            .await))),
        ["other1", "other2"]
    );

    // SVM tunnelling scopes every call to svm2.
    let svm2 = env.client.with_svm_name("svm2");
    let tunnelled = sorted(names(&ok(svm2.volumes().list_all(&Query::new()).await)));
    assert_eq!(tunnelled, ["other1", "other2"]);
    let last = env.sim.requests().pop().expect("logged");
    assert_eq!(last.svm_name.as_deref(), Some("svm2"));
    assert_eq!(ok(svm2.volumes().count(&Query::new()).await), 2);
    // Tunnelling by UUID scopes the same way.
    let svm2_uuid = ok(env.client.svms().by_name("svm2").await)
        .and_then(|s| s.uuid)
        .expect("svm2");
    let by_uuid = env.client.with_svm_uuid(svm2_uuid.as_str());
    assert_eq!(
        sorted(names(&ok(by_uuid.volumes().list_all(&Query::new()).await))),
        ["other1", "other2"]
    );
    // A svm1 volume is invisible through the svm2 tunnel.
    let vol1 = ok(vols.by_name(SVM, "vol1").await)
        .and_then(|v| v.uuid)
        .expect("vol1");
    assert!(err(svm2.volumes().get(&vol1, &Query::new()).await).is_not_found());
    // Creating through the tunnel works for svm2 and is refused for another SVM.
    let created = ok(svm2
        .volumes()
        .create(&VolumeCreate::flexvol("tunnelled", "svm2", AGGR2))
        .await);
    let uuid = created.record.and_then(|v| v.uuid).expect("uuid");
    let v = ok(env.client.volumes().get(&uuid, &Query::new()).await);
    assert_eq!(v.svm.and_then(|s| s.name).as_deref(), Some("svm2"));
    let e = err(svm2
        .volumes()
        .create(&VolumeCreate::flexvol("elsewhere", SVM, AGGR1))
        .await);
    assert_eq!((e.status(), e.ontap_code()), (Some(400), Some("2")));
    // An unknown SVM in the tunnel header is refused.
    let e = err(env
        .client
        .with_svm_name("nosuch")
        .volumes()
        .count(&Query::new())
        .await);
    assert_eq!((e.status(), e.ontap_code()), (Some(400), Some("2")));
}

#[tokio::test]
async fn concurrent_creates_then_query_patch_and_delete() {
    let env = common::start().await;
    let c = &env.client;
    // 25 creates at once: more than the in-flight cap of the client's default (20).
    let creates = (1..=25).map(|i| {
        let body = VolumeCreate::flexvol(format!("bulk{i:02}"), SVM, AGGR1)
            .size(GIB)
            .guarantee(GuaranteeType::None);
        async move { c.volumes().create(&body).await }
    });
    let created = ok(futures_util::future::try_join_all(creates).await);
    assert_eq!(created.len(), 25);
    let bulk = Query::new().filter("name", "bulk*");
    assert_eq!(ok(c.volumes().count(&bulk).await), 25);

    // A query lookup must be unique.
    match err(c.volumes().find(&bulk).await) {
        Error::NotUnique { path, found } => {
            assert_eq!(path, "/api/storage/volumes?name=bulk*&return_timeout=120");
            assert_eq!(found, 2);
        }
        other => panic!("expected NotUnique, got {other:?}"),
    }

    // Query PATCH: one job per record, all awaited.
    let done = ok(c
        .volumes()
        .patch_where(
            &Query::new().filter("name", "bulk1*"),
            &ontap_client::models::VolumePatch::new().comment("first ten"),
        )
        .await);
    // ONTAP finished within return_timeout (200), and the client still checks each job.
    assert_eq!(done.outcome.kind, ontap_client::OutcomeKind::Batch);
    assert_eq!(done.outcome.status, 200);
    assert_eq!(done.outcome.num_records, Some(10));
    assert_eq!(done.jobs.len(), 10);
    let commented = ok(c
        .volumes()
        .count(&Query::new().filter("comment", "first ten"))
        .await);
    assert_eq!(commented, 10);

    // Query DELETE through a polling client: a batch of jobs, each polled.
    let polling = polling_client(&env);
    let done = ok(polling
        .volumes()
        .delete_where(&Query::new().filter("name", "bulk*").filter("size", "<=1GB"))
        .await);
    assert_eq!(done.outcome.kind, ontap_client::OutcomeKind::Batch);
    assert_eq!(done.outcome.status, 202);
    assert_eq!(done.outcome.jobs.len(), 25);
    assert_eq!(done.jobs.len(), 25);
    assert!(done.jobs.iter().all(|j| j.state == Some(JobState::Success)));
    assert_eq!(ok(c.volumes().count(&bulk).await), 0);
    assert!(env.stored_names("volumes").is_empty());
}

#[tokio::test]
async fn created_record_is_resolved_through_location() {
    let env = common::start().await;
    let c = &env.client;
    let created = ok(c
        .volumes()
        .create_with(
            &Query::new().return_records(false),
            &VolumeCreate::flexvol("located", SVM, AGGR1),
        )
        .await);
    assert_eq!(
        created.completed.outcome.location.as_deref(),
        Some("/api/storage/volumes/?name=located")
    );
    assert!(created.completed.outcome.records.is_empty());
    let v = created.record.expect("resolved through Location");
    assert_eq!(v.name.as_deref(), Some("located"));
    let last = env.sim.requests().pop().expect("logged");
    assert_eq!(
        (
            last.method.as_str(),
            last.path.as_str(),
            last.query.as_deref()
        ),
        (
            "GET",
            "/api/storage/volumes/",
            Some("name=located&svm.name=svm1")
        )
    );
    let uuid = v.uuid.expect("uuid");
    assert_eq!(
        ok(c.volumes().get(&uuid, &Query::new().fields(["name"])).await)
            .name
            .as_deref(),
        Some("located")
    );
}

/// ONTAP's `Location` for a new volume is `/api/storage/volumes/?name=NAME`, without the
/// SVM. When another SVM has a volume of the same name, resolving it must not turn a
/// successful create into an error (a caller would retry and hit "duplicate").
#[tokio::test]
async fn location_lookup_with_a_same_named_volume_in_another_svm() {
    let env = common::start_with(common::sim_builder().seed(paging_seed()), |b| b).await;
    let c = &env.client;
    // svm2 already has `other1`; create `other1` in svm1 without records in the answer.
    let result = c
        .volumes()
        .create_with(
            &Query::new().return_records(false),
            &VolumeCreate::flexvol("other1", SVM, AGGR1),
        )
        .await;
    let created = ok(result);
    let v = created.record.expect("the new volume is resolved");
    let v = ok(c
        .volumes()
        .get(v.uuid.as_deref().unwrap_or_default(), &Query::new())
        .await);
    assert_eq!(v.svm.and_then(|s| s.name).as_deref(), Some(SVM));
}
