//! Decoding real ONTAP bodies (tests/fixtures, from shared/reference/ontap-examples.md).

mod common;

use common::fixture;
use ontap_client::models::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

/// Decodes `value` as `T`, and checks that encoding gives back the same JSON.
fn round_trip<T: DeserializeOwned + Serialize>(value: &Value) -> T {
    let decoded: T = serde_json::from_value(value.clone()).unwrap();
    assert_eq!(&serde_json::to_value(&decoded).unwrap(), value);
    decoded
}

#[test]
fn volume_instance() {
    let v: Volume = round_trip(&fixture("volume_get.json"));
    assert_eq!(
        v.uuid.as_deref(),
        Some("d0c3359c-5448-4a9b-a077-e3295a7e9057")
    );
    assert_eq!(v.name.as_deref(), Some("datavol"));
    assert_eq!(v.size, Some(20_971_520));
    assert_eq!(v.style, Some(VolumeStyle::Flexvol));
    assert_eq!(v.kind, Some(VolumeType::Rw));
    assert_eq!(v.state, Some(VolumeState::Online));
    assert_eq!(v.comment.as_deref(), Some("This is a data volume"));
    assert_eq!(v.language.as_deref(), Some("en_us"));
    assert_eq!(v.create_time.as_deref(), Some("2018-07-05T14:56:44+05:30"));
    let svm = v.svm.as_ref().unwrap();
    assert_eq!(svm.name.as_deref(), Some("vsdata"));
    assert_eq!(
        svm.uuid.as_deref(),
        Some("d61b69f5-7458-11e8-ad3f-0050569503ac")
    );
    let aggrs = v.aggregates.as_ref().unwrap();
    assert_eq!(aggrs.len(), 1);
    assert_eq!(aggrs[0].name.as_deref(), Some("data"));
    assert_eq!(
        aggrs[0].links.as_ref().unwrap().self_href(),
        Some("/api/cluster/aggregates/data")
    );
    let nas = v.nas.as_ref().unwrap();
    assert_eq!(nas.security_style, Some(SecurityStyle::Unix));
    assert_eq!(nas.uid, Some(1357));
    assert_eq!(nas.gid, Some(2468));
    assert_eq!(nas.unix_permissions, Some(4755));
    let policy = nas.export_policy.as_ref().unwrap();
    assert_eq!(policy.name.as_deref(), Some("default"));
    assert_eq!(policy.id, Some(8_589_934_593));
    assert_eq!(
        nas.junction_parent.as_ref().unwrap().uuid.as_deref(),
        Some("a2564f80-25fb-41e8-9b49-44de2600991f")
    );
    assert_eq!(v.junction_path(), None);
    assert_eq!(v.efficiency.as_ref().unwrap().ratio, Some(1.0));
    let enc = v.encryption.as_ref().unwrap();
    assert_eq!(enc.enabled, Some(false));
    assert_eq!(enc.kind, Some(EncryptionType::None));
    assert_eq!(enc.state, Some(EncryptionState::None));
    assert_eq!(enc.key_id.as_deref(), Some(""));
    assert_eq!(
        v.snapshot_policy.as_ref().unwrap().name.as_deref(),
        Some("default")
    );
    let qos = v.qos.as_ref().unwrap().policy.as_ref().unwrap();
    assert_eq!(qos.name.as_deref(), Some("pg1"));
    assert_eq!(
        qos.uuid.as_deref(),
        Some("228454af-5a8b-11e9-bd5b-005056ac6f1f")
    );
    let files = v.files.as_ref().unwrap();
    assert_eq!((files.maximum, files.used), (Some(566), Some(96)));
    let snaplock = v.snaplock.as_ref().unwrap();
    assert_eq!(snaplock.kind.as_deref(), Some("enterprise"));
    assert_eq!(
        snaplock.expiry_time.as_deref(),
        Some("2038-01-19T08:44:28+05:30")
    );
    assert_eq!(snaplock.extra["retention"]["maximum"], "P30Y");
    // Not modelled: kept verbatim.
    assert_eq!(v.extra["error_state"]["has_bad_blocks"], false);
    assert_eq!(v.extra["metric"]["flexcache"]["duration"], "PT1D");
    assert_eq!(v.extra["statistics"]["latency_raw"]["other"], 38298);
    assert!(!v.is_flexclone());
}

#[test]
fn volume_collection_records() {
    let value = fixture("volume_collection_records.json");
    let volumes: Vec<Volume> = round_trip(&value);
    let names: Vec<&str> = volumes.iter().filter_map(|v| v.name.as_deref()).collect();
    assert_eq!(
        names,
        ["vsdata_root", "vsfg_root", "svm_root", "fgvol", "datavol"]
    );
    assert_eq!(
        volumes[3].links.as_ref().unwrap().self_href(),
        Some("/api/storage/volumes/6802635b-8036-11e8-aae5-0050569503ac")
    );
    assert_eq!(volumes[3].size, None);
}

#[derive(serde::Deserialize, serde::Serialize)]
struct Collection<T> {
    records: Vec<T>,
    num_records: u64,
    #[serde(rename = "_links")]
    links: Links,
}

#[test]
fn volume_collection_raw() {
    let page: Collection<Volume> = round_trip(&fixture("volume_collection_raw.json"));
    assert_eq!(page.num_records, 2);
    assert_eq!(page.records[1].name.as_deref(), Some("vs1_root"));
    assert_eq!(
        page.records[1].uuid.as_deref(),
        Some("ed3b6ebf-d48e-11e9-bb29-005056bb7f42")
    );
    assert_eq!(page.links.self_href(), Some("/api/storage/volumes"));
    assert!(page.links.next.is_none());
}

fn check_lun(lun: &Lun) {
    assert_eq!(
        lun.uuid.as_deref(),
        Some("5a24ae5b-28af-47fb-b129-5adf6cfba0a6")
    );
    assert_eq!(lun.name.as_deref(), Some("/vol/vol1/lun1"));
    assert_eq!(lun.serial_number.as_deref(), Some("wf0Iq+N4uck3"));
    assert_eq!(
        lun.naa_wwid().as_deref(),
        Some("600a098077663049712b4e3475636b33")
    );
    assert_eq!(lun.os_type, Some(LunOsType::Linux));
    assert_eq!(lun.class, Some(LunClass::Regular));
    assert_eq!(lun.enabled, Some(true));
    assert_eq!(lun.size(), Some(322_163_441_664));
    let space = lun.space.as_ref().unwrap();
    assert_eq!(space.used, Some(0));
    let guarantee = space.guarantee.as_ref().unwrap();
    assert_eq!(
        (guarantee.requested, guarantee.reserved),
        (Some(false), Some(false))
    );
    let status = lun.status.as_ref().unwrap();
    assert_eq!(status.state.as_deref(), Some("online"));
    assert_eq!(status.container_state.as_deref(), Some("online"));
    assert_eq!(status.read_only, Some(false));
    let location = lun.location.as_ref().unwrap();
    assert_eq!(location.logical_unit.as_deref(), Some("lun1"));
    let volume = location.volume.as_ref().unwrap();
    assert_eq!(volume.name.as_deref(), Some("vol1"));
    assert_eq!(
        volume.uuid.as_deref(),
        Some("71cd0dba-2a1c-11e9-b682-005056bbc17d")
    );
    let svm = lun.svm.as_ref().unwrap();
    assert_eq!(svm.name.as_deref(), Some("svm1"));
    assert_eq!(
        svm.links.as_ref().unwrap().self_href(),
        Some("/api/svm/svms/6bf967fd-2a1c-11e9-b682-005056bbc17d")
    );
    assert_eq!(
        lun.links.as_ref().unwrap().self_href(),
        Some("/api/storage/luns/5a24ae5b-28af-47fb-b129-5adf6cfba0a6")
    );
}

#[test]
fn lun_hydrated() {
    let lun: Lun = round_trip(&fixture("lun_hydrated.json"));
    check_lun(&lun);
    assert_eq!(
        lun.space
            .as_ref()
            .unwrap()
            .scsi_thin_provisioning_support_enabled,
        Some(true)
    );
}

#[test]
fn lun_post_return_records() {
    let page: serde_json::Map<String, Value> =
        serde_json::from_value(fixture("lun_post_return_records.json")).unwrap();
    assert_eq!(page["num_records"], 1);
    let lun: Lun = round_trip(&page["records"][0]);
    check_lun(&lun);
    assert_eq!(
        lun.space
            .as_ref()
            .unwrap()
            .scsi_thin_provisioning_support_enabled,
        None
    );
}

#[test]
fn igroup_hydrated() {
    let ig: Igroup = round_trip(&fixture("igroup_hydrated.json"));
    assert_eq!(
        ig.uuid.as_deref(),
        Some("8f249e7d-ab9f-11e8-b8a3-005056bb7072")
    );
    assert_eq!(ig.name.as_deref(), Some("igroup1"));
    assert_eq!(ig.protocol, Some(IgroupProtocol::Iscsi));
    assert_eq!(ig.os_type, Some(IgroupOsType::Linux));
    assert_eq!(
        ig.svm.as_ref().unwrap().uuid.as_deref(),
        Some("02b0dfff-aa28-11e8-a653-005056bb7072")
    );
    assert!(ig.initiators.is_none());
    assert!(!ig.has_initiator("iqn.1994-05.com.redhat:x"));
}

#[test]
fn igroup_initiator_membership_ignores_case() {
    let ig: Igroup = serde_json::from_value(json!({
        "initiators": [{"name": "iqn.1994-05.com.redhat:ABC"}, {"name": "20:04:00:50:56:bb:a0:e0"}]
    }))
    .unwrap();
    assert!(ig.has_initiator("iqn.1994-05.com.redhat:abc"));
    assert!(ig.has_initiator("20:04:00:50:56:BB:A0:E0"));
    assert!(!ig.has_initiator("iqn.1994-05.com.redhat:abd"));
}

#[test]
fn iscsi_service_hydrated() {
    let svc: IscsiService = round_trip(&fixture("iscsi_service_hydrated.json"));
    assert_eq!(svc.enabled, Some(true));
    let target = svc.target.as_ref().unwrap();
    assert_eq!(
        target.name.as_deref(),
        Some("iqn.1992-08.com.netapp:sn.19d04b8e94d711e88370005056b48fd2:vs.4")
    );
    assert_eq!(target.alias.as_deref(), Some("svm1"));
    assert_eq!(
        svc.svm.as_ref().unwrap().uuid.as_deref(),
        Some("19d04b8e-94d7-11e8-8370-005056b48fd2")
    );
}

#[test]
fn fc_interface() {
    let lif: FcInterface = round_trip(&fixture("fc_interface_get.json"));
    assert_eq!(lif.name.as_deref(), Some("lif1"));
    assert_eq!(lif.wwpn.as_deref(), Some("20:04:00:50:56:bb:a0:e0"));
    assert_eq!(lif.wwnn.as_deref(), Some("20:00:00:50:56:bb:a0:e0"));
    assert_eq!(lif.port_address.as_deref(), Some("9da2cb1"));
    assert_eq!(lif.data_protocol, Some(FcDataProtocol::Fcp));
    assert_eq!(lif.state, Some(InterfaceState::Down));
    assert_eq!(lif.enabled, Some(true));
    let location = lif.location.as_ref().unwrap();
    let home_port = location.home_port.as_ref().unwrap();
    assert_eq!(home_port.name.as_deref(), Some("0a"));
    assert_eq!(
        home_port.node.as_ref().unwrap().name.as_deref(),
        Some("node1")
    );
    assert_eq!(
        location.home_node.as_ref().unwrap().uuid.as_deref(),
        Some("bafe9b9f-db81-11e8-bd46-005056bba0e0")
    );
}

#[test]
fn snapshot_example() {
    let s: Snapshot = round_trip(&fixture("snapshot_example.json"));
    assert_eq!(s.name.as_deref(), Some("snapshot_copy"));
    assert_eq!(s.comment.as_deref(), Some("Store this copy."));
    assert_eq!(s.volume.as_ref().unwrap().name.as_deref(), Some("v2"));
    assert_eq!(s.svm.as_ref().unwrap().name.as_deref(), Some("vs0"));
    assert!(!s.is_locked());
}

#[test]
fn snapshot_post_with_records_and_job() {
    let body = fixture("snapshot_post_records_job.json");
    let s: Snapshot = round_trip(&body["records"][0]);
    assert_eq!(
        s,
        serde_json::from_value(fixture("snapshot_example.json")).unwrap()
    );
    assert_eq!(body["job"]["uuid"], "6f68c85b-45e1-11e9-8fc7-005056bbc848");
}

#[test]
fn snapshot_lock_fields() {
    let s: Snapshot = round_trip(&json!({
        "name": "daily",
        "expiry_time": "2030-01-01T00:00:00+00:00",
        "snaplock_expiry_time": "2030-01-01T00:00:00+00:00",
        "snaplock": {"expiry_time": "2030-01-01T00:00:00+00:00", "expired": false, "time_until_expiry": "P1Y2M"}
    }));
    let lock = s.snaplock.as_ref().unwrap();
    assert_eq!(lock.expired, Some(false));
    assert_eq!(lock.time_until_expiry.as_deref(), Some("P1Y2M"));
    assert!(s.is_locked());
    let expired: Snapshot = serde_json::from_value(
        json!({"snaplock": {"expiry_time": "2020-01-01T00:00:00Z", "expired": true}}),
    )
    .unwrap();
    assert!(!expired.is_locked());
    let legacy: Snapshot =
        serde_json::from_value(json!({"snaplock_expiry_time": "2030-01-01T00:00:00Z"})).unwrap();
    assert!(legacy.is_locked());
}

#[test]
fn lun_map_records() {
    let maps: Vec<LunMap> = round_trip(&fixture("lun_map_records.json"));
    assert_eq!(maps.len(), 1);
    let map = &maps[0];
    assert_eq!(
        map.lun.as_ref().unwrap().name.as_deref(),
        Some("/vol/vol1/lun1")
    );
    assert_eq!(
        map.igroup.as_ref().unwrap().uuid.as_deref(),
        Some("40d98b2c-24c5-11e9-9ec1-005056bba643")
    );
    assert_eq!(map.svm.as_ref().unwrap().name.as_deref(), Some("svm1"));
    assert_eq!(map.logical_unit_number, None);
    assert_eq!(
        map.links.as_ref().unwrap().self_href(),
        Some("/api/protocols/san/lun-maps/a60d9862-9bee-49a6-8162-20d2421bb1a6/40d98b2c-24c5-11e9-9ec1-005056bba643")
    );
}

#[test]
fn jobs() {
    let running: Job = serde_json::from_value(fixture("job_running.json")).unwrap();
    assert_eq!(running.state, Some(JobState::Running));
    assert_eq!(running.code, Some(0));
    assert_eq!(running.message.as_deref(), Some("creating_node_backups"));
    assert_eq!(running.description.as_deref(), Some("Cluster Backup Job"));
    assert!(!running.state.unwrap().is_terminal());

    let done: Job = serde_json::from_value(fixture("snapshot_job_success.json")).unwrap();
    assert_eq!(done.state, Some(JobState::Success));

    let failed: Job = serde_json::from_value(fixture("job_failure_1.json")).unwrap();
    assert_eq!(failed.state, Some(JobState::Failure));
    assert_eq!(failed.code, Some(4));
    assert_eq!(failed.message.as_deref(), Some("entry doesn't exist"));
    assert_eq!(
        failed.start_time.as_deref(),
        Some("2021-04-10T09:51:13+00:00")
    );

    let locked: Job = serde_json::from_value(fixture("job_failure_2.json")).unwrap();
    assert_eq!(locked.code, Some(1_638_555));
    assert!(locked
        .message
        .as_deref()
        .unwrap()
        .contains("has not expired or is locked"));
}

#[test]
fn job_links() {
    for name in [
        "job_link_file_clone.json",
        "volume_post_job.json",
        "flexclone_post_job.json",
    ] {
        let body = fixture(name);
        let link: JobLink = serde_json::from_value(body["job"].clone()).unwrap();
        assert_eq!(
            link.href.as_deref(),
            Some(format!("/api/cluster/jobs/{}", link.uuid).as_str()),
            "{name}"
        );
    }
    let batch = fixture("delete_by_query_jobs.json");
    let links: Vec<JobLink> = serde_json::from_value(batch["jobs"].clone()).unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].uuid, "4acf3f58-c5d2-11e9-b97d-005056ac2211");
}

#[test]
fn unknown_fields_survive_round_trip() {
    let value = json!({
        "name": "v1",
        "nas": {"path": "/v1", "future_nas_flag": true},
        "clone": {"is_flexclone": true, "split_future": {"x": [1, 2]}},
        "_links": {"self": {"href": "/api/storage/volumes/u"}, "metrics": {"href": "/m"}},
        "brand_new": {"nested": "yes"}
    });
    let v: Volume = round_trip(&value);
    assert_eq!(v.extra["brand_new"]["nested"], "yes");
    assert_eq!(v.nas.as_ref().unwrap().extra["future_nas_flag"], true);
    assert_eq!(v.links.as_ref().unwrap().extra["metrics"]["href"], "/m");
    assert!(v.is_flexclone());
    assert_eq!(v.junction_path(), Some("/v1"));
}

#[test]
fn unknown_enum_values_are_kept() {
    let v: Volume = round_trip(&json!({"style": "flexcache_2030", "state": "online"}));
    assert_eq!(v.style, Some(VolumeStyle::Unknown("flexcache_2030".into())));
    assert_eq!(v.style.as_ref().unwrap().as_str(), "flexcache_2030");
    let r: SnapmirrorRelationship = round_trip(&json!({"state": "warping", "healthy": true}));
    assert_eq!(r.state, Some(SnapmirrorState::Unknown("warping".into())));
    let lun: Lun = round_trip(&json!({"os_type": "plan9"}));
    assert_eq!(lun.os_type.unwrap().to_string(), "plan9");
}

#[test]
fn enum_strings() {
    let cases: Vec<(String, String)> = vec![
        (VolumeStyle::Flexgroup.to_string(), "flexgroup".into()),
        (LunOsType::Windows2008.to_string(), "windows_2008".into()),
        (LunOsType::HyperV.to_string(), "hyper_v".into()),
        (IgroupProtocol::Mixed.to_string(), "mixed".into()),
        (SnapmirrorState::BrokenOff.to_string(), "broken_off".into()),
        (JobState::Cancelled.to_string(), "cancelled".into()),
        (NfsSecurityFlavor::Krb5p.to_string(), "krb5p".into()),
        (ExportProtocol::Nfs4.to_string(), "nfs4".into()),
        (
            TieringPolicy::SnapshotOnly.to_string(),
            "snapshot_only".into(),
        ),
        (EfficiencyMode::Background.to_string(), "background".into()),
        (AntiRansomwareState::DryRun.to_string(), "dry_run".into()),
        (NvmeOsType::Vmware.to_string(), "vmware".into()),
        (
            CifsPermission::FullControl.to_string(),
            "full_control".into(),
        ),
        (IpService::DataNvmeTcp.to_string(), "data_nvme_tcp".into()),
        (MavRequestState::Vetoed.to_string(), "vetoed".into()),
    ];
    for (got, want) in cases {
        assert_eq!(got, want);
    }
    assert_eq!(
        "windows_gpt".parse::<LunOsType>().unwrap(),
        LunOsType::WindowsGpt
    );
    assert_eq!(IgroupProtocol::from("fcp"), IgroupProtocol::Fcp);
    assert_eq!(
        serde_json::from_value::<Vec<NfsSecurityFlavor>>(json!(["sys", "never", "x"])).unwrap(),
        vec![
            NfsSecurityFlavor::Sys,
            NfsSecurityFlavor::Never,
            NfsSecurityFlavor::Unknown("x".into())
        ]
    );
}

#[test]
fn cluster_version() {
    let c: Cluster = round_trip(&json!({
        "name": "cluster1",
        "uuid": "8c5d4d2e-c5d2-11e9-b97d-005056ac2211",
        "version": {"full": "NetApp Release 9.14.1: Mon Oct 23 2023", "generation": 9, "major": 14, "minor": 1},
        "san_optimized": false
    }));
    let v = c.version.unwrap();
    assert!(v.at_least(9, 14, 0));
    assert!(v.at_least(9, 14, 1));
    assert!(!v.at_least(9, 14, 2));
    assert!(!v.at_least(9, 15, 0));
    assert!(v.at_least(9, 7, 5));
    assert!(!v.at_least(10, 0, 0));
    assert_eq!(v.to_string(), "9.14.1");
    assert_eq!(ClusterVersion::default().triple(), (0, 0, 0));
}

#[test]
fn ip_interface_services() {
    let lif: IpInterface = round_trip(&json!({
        "name": "lif_nvme",
        "ip": {"address": "192.168.1.20", "netmask": "24", "family": "ipv4"},
        "services": ["data_core", "data_nvme_tcp", "data_future"],
        "state": "up"
    }));
    assert!(lif.offers(&IpService::DataNvmeTcp));
    assert!(!lif.offers(&IpService::DataIscsi));
    assert!(lif.offers(&IpService::Unknown("data_future".into())));
    assert_eq!(lif.address(), Some("192.168.1.20"));
    assert_eq!(lif.ip.unwrap().family, Some(IpFamily::Ipv4));
}

#[test]
fn nvme_records() {
    let ss: NvmeSubsystem = round_trip(&json!({
        "uuid": "acde901a-a379-4a91-9ea6-1b728ed6696f",
        "name": "ss1",
        "os_type": "linux",
        "target_nqn": "nqn.1992-08.com.netapp:sn.d3b6:subsystem.ss1",
        "hosts": [{"nqn": "nqn.2014-08.org.nvmexpress:uuid:1"}]
    }));
    assert!(ss.has_host("nqn.2014-08.org.nvmexpress:uuid:1"));
    assert!(!ss.has_host("nqn.2014-08.org.nvmexpress:uuid:2"));
    let map: NvmeSubsystemMap = round_trip(&json!({
        "anagrpid": "00000001h", "nsid": "00000001h",
        "subsystem": {"name": "ss1"}, "namespace": {"name": "/vol/v/ns1"}
    }));
    assert_eq!(map.nsid.as_deref(), Some("00000001h"));
    let ns: NvmeNamespace = round_trip(&json!({
        "name": "/vol/v/ns1", "os_type": "linux",
        "space": {"size": 1073741824, "block_size": 4096},
        "subsystem_map": {"nsid": "00000001h", "subsystem": {"name": "ss1"}}
    }));
    assert_eq!(ns.space.as_ref().unwrap().block_size, Some(4096));
    assert_eq!(ns.subsystem_map.unwrap().nsid.as_deref(), Some("00000001h"));
}

#[test]
fn named_ref_helpers() {
    assert_eq!(NamedRef::uuid("u1").label(), Some("u1"));
    assert_eq!(NamedRef::name("n1").label(), Some("n1"));
    assert_eq!(NamedRef::default().label(), None);
    assert_eq!(serde_json::to_string(&NamedRef::default()).unwrap(), "{}");
    assert_eq!(KIB * 1024, MIB);
    assert_eq!(GIB, 1_073_741_824);
    assert_eq!(TIB / GIB, 1024);
    assert_eq!(PIB / TIB, 1024);
}

/// Every string enum: an unknown value decodes to `Unknown` and re-encodes verbatim, and a
/// known value survives `Display` -> `FromStr`.
macro_rules! check_enums {
    ($($ty:ty => $known:expr),+ $(,)?) => {$(
        let unknown: $ty = serde_json::from_value(json!("zz_from_the_future")).unwrap();
        assert_eq!(unknown.as_str(), "zz_from_the_future", stringify!($ty));
        assert_eq!(serde_json::to_value(&unknown).unwrap(), json!("zz_from_the_future"));
        let known: $ty = $known;
        let text = known.to_string();
        assert_ne!(text, "zz_from_the_future");
        assert_eq!(text.parse::<$ty>().unwrap(), known, stringify!($ty));
        assert_eq!(serde_json::to_value(&known).unwrap(), json!(text));
    )+};
}

#[test]
fn every_enum_keeps_unknown_values() {
    check_enums! {
        NodeState => NodeState::TakenOver,
        SvmState => SvmState::Running,
        SvmSubtype => SvmSubtype::DpDestination,
        AggregateState => AggregateState::Online,
        InterfaceState => InterfaceState::Up,
        InterfaceScope => InterfaceScope::Svm,
        IpFamily => IpFamily::Ipv6,
        IpService => IpService::DataNfs,
        FcDataProtocol => FcDataProtocol::FcNvme,
        VolumeStyle => VolumeStyle::Flexgroup,
        VolumeType => VolumeType::Dp,
        VolumeState => VolumeState::Restricted,
        SecurityStyle => SecurityStyle::Ntfs,
        GuaranteeType => GuaranteeType::None,
        AutosizeMode => AutosizeMode::GrowShrink,
        EfficiencyMode => EfficiencyMode::Mixed,
        TieringPolicy => TieringPolicy::Backup,
        EncryptionState => EncryptionState::Rekeying,
        EncryptionType => EncryptionType::Aggregate,
        AntiRansomwareState => AntiRansomwareState::DryRunPaused,
        SnapshotState => SnapshotState::Valid,
        NfsSecurityFlavor => NfsSecurityFlavor::Krb5i,
        ExportProtocol => ExportProtocol::Flexcache,
        CifsPermission => CifsPermission::NoAccess,
        CifsAclType => CifsAclType::UnixGroup,
        UnixSymlink => UnixSymlink::Disable,
        LunOsType => LunOsType::SolarisEfi,
        IgroupOsType => IgroupOsType::Xen,
        IgroupProtocol => IgroupProtocol::Iscsi,
        LunClass => LunClass::Vvol,
        IscsiAuthType => IscsiAuthType::Chap,
        NvmeOsType => NvmeOsType::Windows,
        SnapmirrorState => SnapmirrorState::OutOfSync,
        SnapmirrorTransferState => SnapmirrorTransferState::HardAborted,
        SnapmirrorPolicyType => SnapmirrorPolicyType::Sync,
        MavRequestState => MavRequestState::Executed,
    }
}
