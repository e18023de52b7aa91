//! Request bodies serialize to exactly the JSON ONTAP expects.

use ontap_client::models::*;
use ontap_client::SecretString;
use serde::Serialize;
use serde_json::{json, Value};

fn to_json<T: Serialize>(body: &T) -> Value {
    serde_json::to_value(body).unwrap()
}

#[test]
fn volume_create_matches_netapp_example() {
    // swagger 9.7: {"name": "vol1", "aggregates":[{"name":"aggr1"}], "svm":{"name" : "vs1"}}
    assert_eq!(
        to_json(&VolumeCreate::flexvol("vol1", "vs1", "aggr1")),
        json!({"name": "vol1", "aggregates": [{"name": "aggr1"}], "svm": {"name": "vs1"}})
    );
}

#[test]
fn volume_create_every_setter() {
    let body = VolumeCreate::flexvol("vol1", NamedRef::uuid("svm-u"), "aggr1")
        .size(10 * GIB)
        .kind(VolumeType::Dp)
        .comment("c")
        .junction_path("/vol1")
        .export_policy("p")
        .security_style(SecurityStyle::Unix)
        .unix_owner(0, 0, 755)
        .guarantee(GuaranteeType::None)
        .snapshot_policy("none")
        .efficiency(EfficiencyMode::Inline, EfficiencyMode::Both)
        .tiering_policy(TieringPolicy::Auto)
        .encryption(true)
        .anti_ransomware(AntiRansomwareState::DryRun)
        .snapshot_locking_enabled(true)
        .qos_policy("pg1")
        .autosize(AutosizeMode::Grow, 20 * GIB)
        .snapshot_reserve_percent(5);
    assert_eq!(
        to_json(&body),
        json!({
            "name": "vol1",
            "svm": {"uuid": "svm-u"},
            "aggregates": [{"name": "aggr1"}],
            "size": 10737418240u64,
            "type": "dp",
            "comment": "c",
            "nas": {"path": "/vol1", "security_style": "unix", "export_policy": {"name": "p"},
                    "uid": 0, "gid": 0, "unix_permissions": 755},
            "guarantee": {"type": "none"},
            "snapshot_policy": {"name": "none"},
            "efficiency": {"compression": "inline", "dedupe": "both"},
            "tiering": {"policy": "auto"},
            "encryption": {"enabled": true},
            "anti_ransomware": {"state": "dry_run"},
            "snapshot_locking_enabled": true,
            "qos": {"policy": {"name": "pg1"}},
            "autosize": {"mode": "grow", "maximum": 21474836480u64},
            "space": {"snapshot": {"reserve_percent": 5}}
        })
    );
}

#[test]
fn flexgroup_create() {
    let body = VolumeCreate::flexgroup("fg", "svm1", &["aggr1", "aggr2"])
        .constituents_per_aggregate(4)
        .size(TIB);
    assert_eq!(
        to_json(&body),
        json!({"name": "fg", "svm": {"name": "svm1"},
               "aggregates": [{"name": "aggr1"}, {"name": "aggr2"}],
               "style": "flexgroup", "constituents_per_aggregate": 4, "size": 1099511627776u64})
    );
    let by_uuid = VolumeCreate::flexgroup("fg", "svm1", &[NamedRef::uuid("a-1")]);
    assert_eq!(to_json(&by_uuid)["aggregates"], json!([{"uuid": "a-1"}]));
}

#[test]
fn flexclone_create_matches_netapp_intent() {
    // swagger 9.7 intended body (the original is malformed JSON).
    assert_eq!(
        to_json(&FlexCloneCreate::new("vol1_clone", "vs0", "vol1")),
        json!({"name": "vol1_clone", "clone": {"parent_volume": {"name": "vol1"}, "is_flexclone": true},
               "svm": {"name": "vs0"}})
    );
    let full = FlexCloneCreate::new("c", "vs1", NamedRef::uuid("pv"))
        .parent_snapshot("s1")
        .parent_svm("vs0")
        .comment("vm template")
        .junction_path("/c")
        .guarantee(GuaranteeType::None);
    assert_eq!(
        to_json(&full),
        json!({"name": "c", "svm": {"name": "vs1"},
               "clone": {"is_flexclone": true, "parent_volume": {"uuid": "pv"},
                         "parent_snapshot": {"name": "s1"}, "parent_svm": {"name": "vs0"}},
               "comment": "vm template", "nas": {"path": "/c"}, "guarantee": {"type": "none"}})
    );
}

#[test]
fn volume_patches() {
    assert_eq!(serde_json::to_string(&VolumePatch::new()).unwrap(), "{}");
    assert_eq!(
        to_json(&VolumePatch::split_clone()),
        json!({"clone": {"split_initiated": true}})
    );
    assert_eq!(
        to_json(&VolumePatch::new().split_initiated(true)),
        to_json(&VolumePatch::split_clone())
    );
    let body = VolumePatch::new()
        .name("v2")
        .size(5 * GIB)
        .state(VolumeState::Offline)
        .comment("x")
        .snapshot_policy("default")
        .snapshot_locking_enabled(true)
        .efficiency(EfficiencyMode::None, EfficiencyMode::Background)
        .tiering_policy(TieringPolicy::None)
        .encryption(false)
        .anti_ransomware(AntiRansomwareState::Enabled)
        .export_policy("exp")
        .junction_path("/v2")
        .qos_policy(NamedRef::uuid("q"))
        .autosize(AutosizeMode::GrowShrink, 8 * GIB)
        .guarantee(GuaranteeType::Volume);
    assert_eq!(
        to_json(&body),
        json!({"name": "v2", "size": 5368709120u64, "state": "offline", "comment": "x",
               "nas": {"path": "/v2", "export_policy": {"name": "exp"}},
               "efficiency": {"compression": "none", "dedupe": "background"},
               "snapshot_policy": {"name": "default"}, "tiering": {"policy": "none"},
               "encryption": {"enabled": false}, "anti_ransomware": {"state": "enabled"},
               "snapshot_locking_enabled": true, "qos": {"policy": {"uuid": "q"}},
               "autosize": {"mode": "grow_shrink", "maximum": 8589934592u64},
               "guarantee": {"type": "volume"}})
    );
}

#[test]
fn snapshot_bodies() {
    // swagger 9.7: {"name": "snapshot_copy", "comment": "Store this copy." }
    assert_eq!(
        to_json(&SnapshotCreate::new("snapshot_copy").comment("Store this copy.")),
        json!({"name": "snapshot_copy", "comment": "Store this copy."})
    );
    let full = SnapshotCreate::new("s")
        .expiry_time("2030-01-01T00:00:00Z")
        .snapmirror_label("daily")
        .snaplock_expiry_time("2031-01-01T00:00:00Z")
        .snaplock_expiry("2032-01-01T00:00:00Z");
    assert_eq!(
        to_json(&full),
        json!({"name": "s", "expiry_time": "2030-01-01T00:00:00Z", "snapmirror_label": "daily",
               "snaplock_expiry_time": "2031-01-01T00:00:00Z",
               "snaplock": {"expiry_time": "2032-01-01T00:00:00Z"}})
    );
    assert_eq!(
        to_json(&SnapshotPatch::new().snaplock_expiry_time("2030-05-01T00:00:00Z")),
        json!({"snaplock_expiry_time": "2030-05-01T00:00:00Z"})
    );
    assert_eq!(
        to_json(
            &SnapshotPatch::new()
                .name("n")
                .comment("c")
                .expiry_time("e")
                .snapmirror_label("l")
        ),
        json!({"name": "n", "comment": "c", "expiry_time": "e", "snapmirror_label": "l"})
    );
}

#[test]
fn file_clone_body() {
    let body = FileCloneCreate::new(
        NamedRef::uuid("vu"),
        "images/base.qcow2",
        "images/vm1.qcow2",
    )
    .svm("svm1")
    .range(0, 0, 100)
    .range(200, 100, 50)
    .autodelete(false)
    .is_backup(true)
    .overwrite_destination(true)
    .token_uuid("t");
    assert_eq!(
        to_json(&body),
        json!({"volume": {"uuid": "vu"}, "source_path": "images/base.qcow2",
               "destination_path": "images/vm1.qcow2", "svm": {"name": "svm1"},
               "range": ["0:0:100", "200:100:50"], "autodelete": false, "is_backup": true,
               "overwrite_destination": true, "token_uuid": "t"})
    );
}

#[test]
fn export_bodies() {
    let rule = ExportRuleCreate::new()
        .client("10.0.0.0/24")
        .client("host1.example.com")
        .ro([NfsSecurityFlavor::Sys, NfsSecurityFlavor::Krb5])
        .rw([NfsSecurityFlavor::Sys])
        .superuser([NfsSecurityFlavor::Sys])
        .protocols([ExportProtocol::Nfs3, ExportProtocol::Nfs4])
        .anonymous_user("65534")
        .allow_suid(false)
        .index(1);
    assert_eq!(
        to_json(&rule),
        json!({"clients": [{"match": "10.0.0.0/24"}, {"match": "host1.example.com"}],
               "ro_rule": ["sys", "krb5"], "rw_rule": ["sys"], "superuser": ["sys"],
               "protocols": ["nfs3", "nfs4"], "anonymous_user": "65534", "allow_suid": false,
               "index": 1})
    );
    assert_eq!(
        to_json(&ExportPolicyCreate::new("p1", NamedRef::uuid("s-u"))),
        json!({"name": "p1", "svm": {"uuid": "s-u"}})
    );
}

#[test]
fn cifs_share_body() {
    let body = CifsShareCreate::new("vmstore", "svm1", "/vmstore")
        .comment("Hyper-V")
        .acl("Everyone", CifsAclType::Windows, CifsPermission::Read)
        .acl("root", CifsAclType::UnixUser, CifsPermission::FullControl)
        .oplocks(false)
        .encryption(true)
        .continuously_available(true)
        .access_based_enumeration(false)
        .show_snapshot(true)
        .unix_symlink(UnixSymlink::Widelink);
    assert_eq!(
        to_json(&body),
        json!({"name": "vmstore", "svm": {"name": "svm1"}, "path": "/vmstore", "comment": "Hyper-V",
               "acls": [
                   {"user_or_group": "Everyone", "permission": "read", "type": "windows"},
                   {"user_or_group": "root", "permission": "full_control", "type": "unix_user"}],
               "oplocks": false, "encryption": true, "continuously_available": true,
               "access_based_enumeration": false, "show_snapshot": true, "unix_symlink": "widelink"})
    );
}

#[test]
fn lun_bodies() {
    // swagger 9.7 example asks for "300G"; this client always sends bytes.
    assert_eq!(
        to_json(&LunCreate::new(
            "svm1",
            "/vol/vol1/lun1",
            LunOsType::Linux,
            300 * GIB
        )),
        json!({"svm": {"name": "svm1"}, "os_type": "linux", "space": {"size": 322122547200u64},
               "name": "/vol/vol1/lun1"})
    );
    let full = LunCreate::new("svm1", "/vol/v/l", LunOsType::Vmware, GIB)
        .comment("c")
        .qos_policy("q")
        .space_reserved(false)
        .scsi_thin_provisioning(true)
        .clone_of("/vol/v/gold");
    assert_eq!(
        to_json(&full),
        json!({"svm": {"name": "svm1"}, "name": "/vol/v/l", "os_type": "vmware",
               "space": {"size": 1073741824u64, "guarantee": {"requested": false},
                         "scsi_thin_provisioning_support_enabled": true},
               "comment": "c", "qos_policy": {"name": "q"},
               "clone": {"source": {"name": "/vol/v/gold"}}})
    );
    assert_eq!(
        to_json(
            &LunPatch::new()
                .name("/vol/v/l2")
                .comment("c")
                .enabled(false)
                .size(MIB)
                .qos_policy("q")
        ),
        json!({"name": "/vol/v/l2", "comment": "c", "enabled": false, "space": {"size": 1048576},
               "qos_policy": {"name": "q"}})
    );
}

#[test]
fn igroup_bodies() {
    let body = IgroupCreate::new("esx", "svm1", IgroupProtocol::Fcp, IgroupOsType::Vmware)
        .initiator("20:00:00:25:b5:00:00:01")
        .initiator("20:00:00:25:b5:00:00:02")
        .comment("cluster A");
    assert_eq!(
        to_json(&body),
        json!({"name": "esx", "svm": {"name": "svm1"}, "protocol": "fcp", "os_type": "vmware",
               "initiators": [{"name": "20:00:00:25:b5:00:00:01"}, {"name": "20:00:00:25:b5:00:00:02"}],
               "comment": "cluster A"})
    );
    assert_eq!(
        to_json(&IgroupInitiator::new("iqn.x").comment("h1")),
        json!({"name": "iqn.x", "comment": "h1"})
    );
}

#[test]
fn lun_map_body() {
    assert_eq!(
        to_json(&LunMapCreate::new(
            NamedRef::uuid("s"),
            NamedRef::uuid("l"),
            NamedRef::uuid("i")
        )),
        json!({"svm": {"uuid": "s"}, "lun": {"uuid": "l"}, "igroup": {"uuid": "i"}})
    );
}

#[test]
fn iscsi_bodies() {
    assert_eq!(
        to_json(&IscsiServiceCreate::patch().enabled(false)),
        json!({"enabled": false})
    );
    let body = IscsiCredentialsCreate::chap(
        "svm1",
        "iqn.1994-05.com.redhat:h1",
        "in-user",
        SecretString::from("inbound-secret-1"),
    )
    .outbound("out-user", SecretString::from("outbound-secret-2"));
    assert_eq!(
        to_json(&body),
        json!({"svm": {"name": "svm1"}, "initiator": "iqn.1994-05.com.redhat:h1",
               "authentication_type": "chap",
               "chap": {"inbound": {"user": "in-user", "password": "inbound-secret-1"},
                        "outbound": {"user": "out-user", "password": "outbound-secret-2"}}})
    );
    let debug = format!("{body:?}");
    assert!(!debug.contains("inbound-secret-1"), "{debug}");
    assert!(!debug.contains("outbound-secret-2"), "{debug}");
    assert!(debug.contains("in-user"), "{debug}");
    assert_eq!(
        to_json(&IscsiCredentialsCreate::new(
            "svm1",
            "default",
            IscsiAuthType::Deny
        )),
        json!({"svm": {"name": "svm1"}, "initiator": "default", "authentication_type": "deny"})
    );
    assert_eq!(
        to_json(&IscsiCredentialsCreate::patch(IscsiAuthType::None)),
        json!({"authentication_type": "none"})
    );
}

#[test]
fn nvme_bodies() {
    assert_eq!(
        to_json(&NvmeServiceCreate::new("svm1").enabled(true)),
        json!({"svm": {"name": "svm1"}, "enabled": true})
    );
    assert_eq!(
        to_json(
            &NamespaceCreate::new("svm1", "/vol/v/ns1", NvmeOsType::Linux, 10 * GIB).comment("vm")
        ),
        json!({"svm": {"name": "svm1"}, "name": "/vol/v/ns1", "os_type": "linux",
               "space": {"size": 10737418240u64}, "comment": "vm"})
    );
    assert_eq!(
        to_json(&NamespacePatch::new().comment("c")),
        json!({"comment": "c"})
    );
    assert_eq!(
        to_json(&SubsystemCreate::new("ss", "svm1", NvmeOsType::Linux).comment("c")),
        json!({"name": "ss", "svm": {"name": "svm1"}, "os_type": "linux", "comment": "c"})
    );
}

#[test]
fn snapmirror_bodies() {
    assert_eq!(
        to_json(&SnapmirrorCreate::new("vs0:v", "vs1:v_dst")),
        json!({"source": {"path": "vs0:v"}, "destination": {"path": "vs1:v_dst"}})
    );
    let states = [
        (SnapmirrorPatch::initialize(), "snapmirrored"),
        (SnapmirrorPatch::break_off(), "broken_off"),
        (SnapmirrorPatch::resync(), "snapmirrored"),
        (SnapmirrorPatch::pause(), "paused"),
        (SnapmirrorPatch::resume(), "snapmirrored"),
        (SnapmirrorPatch::state(SnapmirrorState::InSync), "in_sync"),
    ];
    for (patch, state) in states {
        assert_eq!(to_json(&patch), json!({ "state": state }));
    }
    assert_eq!(
        to_json(&SnapmirrorPatch::resync().policy("Sync")),
        json!({"state": "snapmirrored", "policy": {"name": "Sync"}})
    );
    assert_eq!(
        to_json(
            &SnapmirrorTransferCreate::new()
                .source_snapshot("s1")
                .storage_efficiency_enabled(true)
        ),
        json!({"source_snapshot": "s1", "storage_efficiency_enabled": true})
    );
}

#[test]
fn mav_bodies() {
    assert_eq!(
        to_json(&MavRequestPatch::veto()),
        json!({"state": "vetoed"})
    );
    assert_eq!(
        to_json(
            &MavRequestCreate::new("volume delete")
                .comment("c")
                .execute_on_approval(true)
        ),
        json!({"operation": "volume delete", "comment": "c", "execute_on_approval": true})
    );
}
