//! `ontap-client` against `ontap-sim` over HTTPS: NFS export policies and rules, SMB
//! shares, LUNs, igroups and initiators, LUN maps, iSCSI services and CHAP credentials,
//! NVMe services, namespaces, subsystems, hosts and maps, SnapMirror relationships and
//! transfers, and multi-admin verification.

mod common;

use common::{err, ok, Env, AGGR1, SVM};
use ontap_client::models::{
    CifsAclType, CifsPermission, CifsShareCreate, ExportPolicyCreate, ExportProtocol,
    ExportRuleCreate, IgroupCreate, IgroupOsType, IgroupProtocol, IscsiAuthType,
    IscsiCredentialsCreate, IscsiServiceCreate, LunCreate, LunMapCreate, LunOsType,
    MavRequestState, NamespaceCreate, NfsSecurityFlavor, NvmeOsType, SnapmirrorCreate,
    SnapmirrorState, SnapmirrorTransferState, SubsystemCreate, SubsystemMapCreate, VolumeCreate,
    VolumeType, GIB,
};
use ontap_client::{Api, Client, Error, Query, SecretString};
use serde_json::json;

const IQN1: &str = "iqn.1994-05.com.redhat:kvm-host-1";
const IQN2: &str = "iqn.1994-05.com.redhat:kvm-host-2";
const NQN1: &str = "nqn.2014-08.org.nvmexpress:uuid:3f1a5e2c-0000-4000-8000-000000000001";
const NQN2: &str = "nqn.2014-08.org.nvmexpress:uuid:3f1a5e2c-0000-4000-8000-000000000002";

async fn create_volume(client: &Client, body: &VolumeCreate) -> String {
    ok(client.volumes().create(body).await)
        .record
        .and_then(|v| v.uuid)
        .expect("created volume has a UUID")
}

async fn svm_uuid(env: &Env) -> String {
    ok(env.client.svms().by_name(SVM).await)
        .and_then(|s| s.uuid)
        .expect("svm1")
}

#[tokio::test]
async fn export_policies_and_rules() {
    let env = common::start().await;
    let c = &env.client;
    let policies = c.export_policies();

    let created = ok(policies
        .create(
            &ExportPolicyCreate::new("kvm_hosts", SVM).rule(
                ExportRuleCreate::new()
                    .client("192.0.2.50")
                    .ro([NfsSecurityFlavor::Sys])
                    .rw([NfsSecurityFlavor::Sys])
                    .superuser([NfsSecurityFlavor::Sys])
                    .protocols([ExportProtocol::Nfs3, ExportProtocol::Nfs4]),
            ),
        )
        .await);
    let id = created.record.and_then(|p| p.id).expect("policy id");
    let found = ok(policies.by_name(SVM, "kvm_hosts").await).expect("by name");
    assert_eq!(found.id, Some(id));
    let mut names: Vec<_> = ok(policies
        .list_all(&Query::new().filter("svm.name", SVM))
        .await)
    .into_iter()
    .filter_map(|p| p.name)
    .collect();
    names.sort();
    assert_eq!(names, ["default", "kvm_hosts"]);

    let rules = ok(policies
        .rules(id)
        .list_all(&Query::new().fields(["*"]))
        .await);
    assert_eq!(rules.len(), 1);
    let r = &rules[0];
    assert_eq!(r.index, Some(1));
    let clients: Vec<_> = r
        .clients
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| c.match_)
        .collect();
    assert_eq!(clients, ["192.0.2.50"]);
    assert_eq!(r.rw_rule, Some(vec![NfsSecurityFlavor::Sys]));
    assert_eq!(r.superuser, Some(vec![NfsSecurityFlavor::Sys]));
    assert_eq!(
        r.protocols,
        Some(vec![ExportProtocol::Nfs3, ExportProtocol::Nfs4])
    );
    assert_eq!(r.anonymous_user.as_deref(), Some("65534"));

    // A second rule gets index 2; a rule for the same clients is refused.
    let second = ok(policies
        .add_rule(
            id,
            &ExportRuleCreate::new()
                .client("198.51.100.0/24")
                .ro([NfsSecurityFlavor::Any]),
        )
        .await);
    assert_eq!(second.record.and_then(|r| r.index), Some(2));
    let e = err(policies
        .add_rule(id, &ExportRuleCreate::new().client("192.0.2.50"))
        .await);
    assert_eq!((e.status(), e.ontap_code()), (Some(409), Some("1704070")));
    assert!(e.is_conflict());

    // Deleting rule 1 renumbers the rest.
    ok(policies.rules(id).delete("1").await);
    let rules = ok(policies
        .rules(id)
        .list_all(&Query::new().fields(["*"]))
        .await);
    let left: Vec<_> = rules
        .iter()
        .map(|r| {
            (
                r.index,
                r.clients.clone().unwrap_or_default()[0].match_.clone(),
            )
        })
        .collect();
    assert_eq!(left, [(Some(1), Some("198.51.100.0/24".to_owned()))]);

    // A volume exported with the policy pins it.
    let vol = create_volume(
        c,
        &VolumeCreate::flexvol("exported", SVM, AGGR1)
            .junction_path("/exported")
            .export_policy("kvm_hosts"),
    )
    .await;
    let v = ok(c.volumes().get(&vol, &Query::new()).await);
    let ep = v.nas.and_then(|n| n.export_policy).expect("export policy");
    assert_eq!((ep.name.as_deref(), ep.id), (Some("kvm_hosts"), Some(id)));
    let e = err(policies.delete(&id.to_string()).await);
    assert_eq!((e.status(), e.ontap_code()), (Some(409), Some("1703945")));
    ok(c.volumes().delete(&vol).await);
    ok(policies.delete(&id.to_string()).await);
    assert!(ok(policies.by_name(SVM, "kvm_hosts").await).is_none());

    // The default policy cannot be deleted.
    let default = ok(policies.by_name(SVM, "default").await)
        .and_then(|p| p.id)
        .expect("default");
    let e = err(policies.delete(&default.to_string()).await);
    assert_eq!((e.status(), e.ontap_code()), (Some(400), Some("1703947")));
    assert!(err(policies.get("999", &Query::new()).await).is_not_found());
}

#[tokio::test]
async fn cifs_shares() {
    let env = common::start().await;
    let c = &env.client;
    let svm = svm_uuid(&env).await;
    create_volume(
        c,
        &VolumeCreate::flexvol("smbvol", SVM, AGGR1).junction_path("/smbvol"),
    )
    .await;
    let shares = c.cifs_shares();
    let created = ok(shares
        .create(
            &CifsShareCreate::new("vmstore", SVM, "/smbvol/images")
                .comment("VM images")
                .continuously_available(true)
                .acl("Everyone", CifsAclType::Windows, CifsPermission::Read)
                .acl(
                    "KVM\\admins",
                    CifsAclType::Windows,
                    CifsPermission::FullControl,
                ),
        )
        .await);
    assert_eq!(
        created.record.and_then(|s| s.name).as_deref(),
        Some("vmstore")
    );
    let s = ok(shares.get_share(&svm, "vmstore", &Query::new()).await);
    assert_eq!(s.path.as_deref(), Some("/smbvol/images"));
    assert_eq!(s.comment.as_deref(), Some("VM images"));
    assert_eq!(s.continuously_available, Some(true));
    let acls: Vec<_> = s
        .acls
        .unwrap_or_default()
        .into_iter()
        .map(|a| (a.user_or_group.unwrap_or_default(), a.permission))
        .collect();
    assert_eq!(
        acls,
        [
            ("Everyone".to_owned(), Some(CifsPermission::Read)),
            ("KVM\\admins".to_owned(), Some(CifsPermission::FullControl)),
        ]
    );
    // A path outside any junction is refused; so is a duplicate name.
    let e = err(shares
        .create(&CifsShareCreate::new("nowhere", SVM, "/nosuch/dir"))
        .await);
    assert_eq!((e.status(), e.ontap_code()), (Some(400), Some("655551")));
    let e = err(shares
        .create(&CifsShareCreate::new("vmstore", SVM, "/smbvol"))
        .await);
    assert!(e.is_conflict(), "{e:?}");

    // A name with a space travels percent-encoded in the instance path.
    ok(shares
        .create(&CifsShareCreate::new("vm images", SVM, "/smbvol"))
        .await);
    let spaced = ok(shares.get_share(&svm, "vm images", &Query::new()).await);
    assert_eq!(spaced.name.as_deref(), Some("vm images"));
    assert_eq!(spaced.path.as_deref(), Some("/smbvol"));
    ok(shares.delete_share(&svm, "vm images").await);

    ok(shares.delete_share(&svm, "vmstore").await);
    assert!(err(shares.get_share(&svm, "vmstore", &Query::new()).await).is_not_found());
    assert!(ok(shares.list_all(&Query::new()).await).is_empty());
}

#[tokio::test]
async fn luns_igroups_initiators_and_maps() {
    let env = common::start().await;
    let c = &env.client;
    let vol = create_volume(
        c,
        &VolumeCreate::flexvol("lunvol", SVM, AGGR1).size(10 * GIB),
    )
    .await;

    // LUN
    let lun = ok(c
        .luns()
        .create(&LunCreate::new(SVM, "/vol/lunvol/lun0", LunOsType::Linux, 2 * GIB).comment("boot"))
        .await)
    .record
    .expect("LUN record in the answer");
    let lun_uuid = lun.uuid.clone().expect("uuid");
    let serial = lun.serial_number.clone().expect("serial");
    assert_eq!(serial.len(), 12);
    let hex: String = serial.bytes().map(|b| format!("{b:02x}")).collect();
    assert_eq!(lun.naa_wwid(), Some(format!("600a0980{hex}")));
    let got = ok(c.luns().get(&lun_uuid, &Query::new()).await);
    assert_eq!(got.name.as_deref(), Some("/vol/lunvol/lun0"));
    assert_eq!(got.os_type, Some(LunOsType::Linux));
    assert_eq!(got.size(), Some(2 * GIB));
    assert_eq!(got.comment.as_deref(), Some("boot"));
    assert_eq!(got.serial_number.as_deref(), Some(serial.as_str()));
    let loc = got.location.clone().expect("location");
    assert_eq!(loc.logical_unit.as_deref(), Some("lun0"));
    assert_eq!(loc.volume.and_then(|v| v.name).as_deref(), Some("lunvol"));
    assert_eq!(got.status.and_then(|s| s.mapped), Some(false));
    assert_eq!(
        ok(c.luns().by_name(SVM, "/vol/lunvol/lun0").await).and_then(|l| l.uuid),
        Some(lun_uuid.clone())
    );
    ok(c.luns().resize(&lun_uuid, 4 * GIB).await);
    assert_eq!(
        ok(c.luns().get(&lun_uuid, &Query::new()).await).size(),
        Some(4 * GIB)
    );
    let e = err(c.luns().resize(&lun_uuid, GIB).await);
    assert_eq!((e.status(), e.ontap_code()), (Some(400), Some("5374892")));
    let e = err(c
        .luns()
        .create(&LunCreate::new(
            SVM,
            "/vol/lunvol/lun0",
            LunOsType::Linux,
            GIB,
        ))
        .await);
    assert_eq!((e.status(), e.ontap_code()), (Some(409), Some("5374242")));
    assert!(e.is_conflict());

    // Igroup and initiators (IQNs contain ':' and are percent-encoded in paths).
    let ig = ok(c
        .igroups()
        .create(
            &IgroupCreate::new("kvm_hosts", SVM, IgroupProtocol::Iscsi, IgroupOsType::Linux)
                .initiator(IQN1),
        )
        .await)
    .record
    .expect("igroup record");
    let ig_uuid = ig.uuid.clone().expect("uuid");
    assert!(ig.has_initiator(IQN1));
    ok(c.igroups().add_initiators(&ig_uuid, [IQN2]).await);
    let names: Vec<_> = ok(c
        .igroups()
        .initiators(&ig_uuid)
        .list_all(&Query::new())
        .await)
    .into_iter()
    .filter_map(|i| i.name)
    .collect();
    assert_eq!(names, [IQN1, IQN2]);
    let one = ok(c
        .igroups()
        .initiators(&ig_uuid)
        .get(IQN2, &Query::new())
        .await);
    assert_eq!(one.name.as_deref(), Some(IQN2));
    let e = err(c.igroups().add_initiators(&ig_uuid, [IQN1]).await);
    assert_eq!((e.status(), e.ontap_code()), (Some(409), Some("5374035")));
    ok(c.igroups().remove_initiator(&ig_uuid, IQN2).await);
    let ig = ok(c.igroups().get(&ig_uuid, &Query::new()).await);
    assert!(ig.has_initiator(IQN1) && !ig.has_initiator(IQN2));
    assert_eq!(ig.protocol, Some(IgroupProtocol::Iscsi));
    assert_eq!(
        ok(c.igroups().by_name(SVM, "kvm_hosts").await).and_then(|g| g.uuid),
        Some(ig_uuid.clone())
    );

    // Maps: the lowest free LUN id is assigned; a second map of the same pair is refused.
    let map = ok(c
        .lun_maps()
        .create(&LunMapCreate::new(SVM, "/vol/lunvol/lun0", "kvm_hosts"))
        .await)
    .record
    .expect("map record");
    assert_eq!(map.logical_unit_number, Some(0));
    let lun1 = ok(c
        .luns()
        .create(&LunCreate::new(
            SVM,
            "/vol/lunvol/lun1",
            LunOsType::Linux,
            GIB,
        ))
        .await)
    .record
    .and_then(|l| l.uuid)
    .expect("lun1");
    let map1 = ok(c
        .lun_maps()
        .create(&LunMapCreate::new(SVM, "/vol/lunvol/lun1", "kvm_hosts"))
        .await)
    .record
    .expect("map record");
    assert_eq!(map1.logical_unit_number, Some(1));
    let e = err(c
        .lun_maps()
        .create(&LunMapCreate::new(SVM, "/vol/lunvol/lun0", "kvm_hosts"))
        .await);
    assert_eq!((e.status(), e.ontap_code()), (Some(409), Some("1254207")));
    let got = ok(c.lun_maps().get_map(&lun_uuid, &ig_uuid).await);
    assert_eq!(got.logical_unit_number, Some(0));
    assert_eq!(
        got.igroup.and_then(|g| g.name).as_deref(),
        Some("kvm_hosts")
    );
    assert_eq!(
        Api::<ontap_client::models::LunMap>::map_key(&lun_uuid, &ig_uuid),
        format!("{lun_uuid}/{ig_uuid}")
    );
    let lun = ok(c.luns().get(&lun_uuid, &Query::new()).await);
    assert_eq!(lun.status.and_then(|s| s.mapped), Some(true));
    let lun_maps: Vec<_> = lun
        .lun_maps
        .unwrap_or_default()
        .into_iter()
        .map(|m| (m.igroup.and_then(|g| g.name), m.logical_unit_number))
        .collect();
    assert_eq!(lun_maps, [(Some("kvm_hosts".to_owned()), Some(0))]);

    // A mapped LUN is not deleted; the volume with LUNs is not deleted.
    let e = err(c.luns().delete(&lun_uuid).await);
    assert_eq!((e.status(), e.ontap_code()), (Some(409), Some("1254197")));
    let e = err(c.volumes().delete(&vol).await);
    assert_eq!(e.ontap_code(), Some("8"), "{e:?}");

    // Clean up in reverse order.
    ok(c.lun_maps().unmap(&lun_uuid, &ig_uuid).await);
    ok(c.lun_maps().unmap(&lun1, &ig_uuid).await);
    assert!(err(c.lun_maps().get_map(&lun_uuid, &ig_uuid).await).is_not_found());
    ok(c.luns().delete(&lun_uuid).await);
    ok(c.luns().delete(&lun1).await);
    ok(c.igroups().delete(&ig_uuid).await);
    ok(c.volumes().delete(&vol).await);
    for coll in ["luns", "igroups", "lun_maps", "volumes"] {
        assert!(env.stored(coll).is_empty(), "{coll} left behind");
    }
}

#[tokio::test]
async fn lun_map_with_requested_id() {
    let env = common::start().await;
    let c = &env.client;
    create_volume(c, &VolumeCreate::flexvol("v", SVM, AGGR1).size(4 * GIB)).await;
    for n in ["a", "b"] {
        ok(c.luns()
            .create(&LunCreate::new(
                SVM,
                format!("/vol/v/{n}"),
                LunOsType::Linux,
                GIB,
            ))
            .await);
    }
    ok(c.igroups()
        .create(&IgroupCreate::new(
            "g",
            SVM,
            IgroupProtocol::Iscsi,
            IgroupOsType::Linux,
        ))
        .await);
    let m = ok(c
        .lun_maps()
        .create(&LunMapCreate::new(SVM, "/vol/v/a", "g").logical_unit_number(5))
        .await);
    assert_eq!(m.record.and_then(|m| m.logical_unit_number), Some(5));
    let e = err(c
        .lun_maps()
        .create(&LunMapCreate::new(SVM, "/vol/v/b", "g").logical_unit_number(5))
        .await);
    assert_eq!((e.status(), e.ontap_code()), (Some(409), Some("1254324")));
    let m = ok(c
        .lun_maps()
        .create(&LunMapCreate::new(SVM, "/vol/v/b", "g"))
        .await);
    assert_eq!(m.record.and_then(|m| m.logical_unit_number), Some(0));
    let ids: Vec<_> = ok(c
        .lun_maps()
        .list_all(
            &Query::new()
                .fields(["logical_unit_number"])
                .order_by("logical_unit_number"),
        )
        .await)
    .into_iter()
    .map(|m| m.logical_unit_number)
    .collect();
    assert_eq!(ids, [Some(0), Some(5)]);
}

#[tokio::test]
async fn iscsi_service_and_chap_credentials() {
    let env = common::start().await;
    let c = &env.client;
    let svm = svm_uuid(&env).await;

    let svc = ok(c.iscsi_services().get(&svm, &Query::new()).await);
    assert_eq!(svc.enabled, Some(true));
    let target = svc.target.clone().expect("target");
    let iqn = target.name.clone().expect("target IQN");
    assert!(iqn.starts_with("iqn.1992-08.com.netapp:sn."), "{iqn}");
    assert!(iqn.ends_with(":vs.3"), "{iqn}");
    assert_eq!(target.alias.as_deref(), Some(SVM));
    assert_eq!(
        ok(c.iscsi_services().list_all(&Query::new()).await).len(),
        1
    );
    ok(c.iscsi_services()
        .patch(&svm, &IscsiServiceCreate::patch().alias("kvm_target"))
        .await);
    let svc = ok(c.iscsi_services().get(&svm, &Query::new()).await);
    assert_eq!(
        svc.target.and_then(|t| t.alias).as_deref(),
        Some("kvm_target")
    );
    let e = err(c
        .iscsi_services()
        .create(&IscsiServiceCreate::new(SVM))
        .await);
    assert_eq!((e.status(), e.ontap_code()), (Some(409), Some("5374077")));

    // CHAP: the secrets go in the POST body and never come back.
    let inbound = "Chap-In-Secret-81f2";
    let outbound = "Chap-Out-Secret-7c3d";
    let body = IscsiCredentialsCreate::chap(SVM, IQN1, "host1", SecretString::from(inbound))
        .outbound("target1", SecretString::from(outbound));
    assert!(!format!("{body:?}").contains(inbound));
    ok(c.iscsi_credentials().create(&body).await);
    let key = Api::<ontap_client::models::IscsiCredentials>::credentials_key(&svm, IQN1);
    let creds = ok(c
        .iscsi_credentials()
        .get(&key, &Query::new().fields(["**"]))
        .await);
    assert_eq!(creds.initiator.as_deref(), Some(IQN1));
    assert_eq!(creds.authentication_type, Some(IscsiAuthType::Chap));
    let chap = creds.chap.clone().expect("chap");
    assert_eq!(chap.inbound.and_then(|u| u.user).as_deref(), Some("host1"));
    assert_eq!(
        chap.outbound.and_then(|u| u.user).as_deref(),
        Some("target1")
    );
    let raw = ok(c
        .raw()
        .get(
            "/api/protocols/san/iscsi/credentials",
            &Query::new().fields(["**"]),
        )
        .await)
    .to_string();
    for secret in [inbound, outbound] {
        assert!(!raw.contains(secret), "secret returned: {raw}");
        assert!(!format!("{creds:?}").contains(secret));
        let log = serde_json::to_string(&env.sim.requests()).expect("json");
        assert!(!log.contains(secret), "secret in the request log: {log}");
    }
    let e = err(c.iscsi_credentials().create(&body).await);
    assert_eq!((e.status(), e.ontap_code()), (Some(409), Some("5374142")));

    ok(c.iscsi_credentials()
        .patch(&key, &IscsiCredentialsCreate::patch(IscsiAuthType::None))
        .await);
    let creds = ok(c.iscsi_credentials().get(&key, &Query::new()).await);
    assert_eq!(creds.authentication_type, Some(IscsiAuthType::None));
    ok(c.iscsi_credentials().delete(&key).await);
    assert!(err(c.iscsi_credentials().get(&key, &Query::new()).await).is_not_found());

    // The service is deleted only once disabled; then it can be made again.
    let e = err(c.iscsi_services().delete(&svm).await);
    assert_eq!((e.status(), e.ontap_code()), (Some(409), Some("5373960")));
    ok(c.iscsi_services()
        .patch(&svm, &IscsiServiceCreate::patch().enabled(false))
        .await);
    assert_eq!(
        ok(c.iscsi_services().get(&svm, &Query::new()).await).enabled,
        Some(false)
    );
    ok(c.iscsi_services().delete(&svm).await);
    assert!(err(c.iscsi_services().get(&svm, &Query::new()).await).is_not_found());
    ok(c.iscsi_services()
        .create(&IscsiServiceCreate::new(SVM).enabled(true))
        .await);
    let svc = ok(c.iscsi_services().get(&svm, &Query::new()).await);
    assert_eq!(svc.enabled, Some(true));
    assert!(svc
        .target
        .and_then(|t| t.name)
        .is_some_and(|n| n.starts_with("iqn.1992-08.com.netapp:sn.")));
}

#[tokio::test]
async fn nvme_namespaces_subsystems_hosts_and_maps() {
    let env = common::start().await;
    let c = &env.client;
    let svm = svm_uuid(&env).await;
    let svc = ok(c.nvme_services().get(&svm, &Query::new()).await);
    assert_eq!(svc.enabled, Some(true));
    assert_eq!(svc.svm.and_then(|s| s.name).as_deref(), Some(SVM));

    let e = err(c.nvme_services().delete(&svm).await);
    assert_eq!((e.status(), e.ontap_code()), (Some(409), Some("72090028")));
    ok(c.nvme_services()
        .patch(
            &svm,
            &ontap_client::models::NvmeServiceCreate::patch().enabled(false),
        )
        .await);
    ok(c.nvme_services().delete(&svm).await);
    assert!(err(c.nvme_services().get(&svm, &Query::new()).await).is_not_found());
    ok(c.nvme_services()
        .create(&ontap_client::models::NvmeServiceCreate::new(SVM).enabled(true))
        .await);
    assert_eq!(
        ok(c.nvme_services().get(&svm, &Query::new()).await).enabled,
        Some(true)
    );

    let vol = create_volume(
        c,
        &VolumeCreate::flexvol("nsvol", SVM, AGGR1).size(10 * GIB),
    )
    .await;
    let ns = ok(c
        .namespaces()
        .create(
            &NamespaceCreate::new(SVM, "/vol/nsvol/ns0", NvmeOsType::Linux, GIB).block_size(4096),
        )
        .await)
    .record
    .expect("namespace record");
    let ns_uuid = ns.uuid.clone().expect("uuid");
    let got = ok(c.namespaces().get(&ns_uuid, &Query::new()).await);
    assert_eq!(got.name.as_deref(), Some("/vol/nsvol/ns0"));
    assert_eq!(got.os_type, Some(NvmeOsType::Linux));
    let space = got.space.clone().expect("space");
    assert_eq!((space.size, space.block_size), (Some(GIB), Some(4096)));
    let loc = got.location.clone().expect("location");
    assert_eq!(loc.namespace.as_deref(), Some("ns0"));
    assert_eq!(loc.volume.and_then(|v| v.name).as_deref(), Some("nsvol"));
    ok(c.namespaces().resize(&ns_uuid, 2 * GIB).await);
    let got = ok(c.namespaces().get(&ns_uuid, &Query::new()).await);
    assert_eq!(got.space.and_then(|s| s.size), Some(2 * GIB));
    assert_eq!(
        ok(c.namespaces().by_name(SVM, "/vol/nsvol/ns0").await).and_then(|n| n.uuid),
        Some(ns_uuid.clone())
    );

    let sub = ok(c
        .nvme_subsystems()
        .create(&SubsystemCreate::new("kvm_sub", SVM, NvmeOsType::Linux).host(NQN1))
        .await)
    .record
    .expect("subsystem record");
    let sub_uuid = sub.uuid.clone().expect("uuid");
    let sub = ok(c.nvme_subsystems().get(&sub_uuid, &Query::new()).await);
    let target = sub.target_nqn.clone().expect("target NQN");
    assert!(target.starts_with("nqn.1992-08.com.netapp:sn."), "{target}");
    assert!(target.ends_with(":subsystem.kvm_sub"), "{target}");
    assert!(sub.has_host(NQN1));
    ok(c.nvme_subsystems().add_hosts(&sub_uuid, [NQN2]).await);
    let hosts: Vec<_> = ok(c
        .nvme_subsystems()
        .hosts(&sub_uuid)
        .list_all(&Query::new())
        .await)
    .into_iter()
    .filter_map(|h| h.nqn)
    .collect();
    assert_eq!(hosts, [NQN1, NQN2]);
    let e = err(c
        .nvme_subsystems()
        .add_hosts(&sub_uuid, ["not-an-nqn"])
        .await);
    assert_eq!((e.status(), e.ontap_code()), (Some(400), Some("72089772")));
    ok(c.nvme_subsystems().remove_host(&sub_uuid, NQN2).await);
    let sub = ok(c.nvme_subsystems().get(&sub_uuid, &Query::new()).await);
    assert!(sub.has_host(NQN1) && !sub.has_host(NQN2));
    assert_eq!(
        ok(c.nvme_subsystems().by_name(SVM, "kvm_sub").await).and_then(|s| s.uuid),
        Some(sub_uuid.clone())
    );

    let map = ok(c
        .nvme_subsystem_maps()
        .create(&SubsystemMapCreate::new(SVM, "kvm_sub", "/vol/nsvol/ns0"))
        .await)
    .record
    .expect("map record");
    assert_eq!(
        map.subsystem.and_then(|s| s.name).as_deref(),
        Some("kvm_sub")
    );
    assert!(map.nsid.is_some());
    let got = ok(c
        .namespaces()
        .get(&ns_uuid, &Query::new().fields(["**"]))
        .await);
    let sm = got.subsystem_map.expect("namespace shows its map");
    assert_eq!(
        sm.subsystem.and_then(|s| s.name).as_deref(),
        Some("kvm_sub")
    );
    // A namespace maps into one subsystem only.
    ok(c.nvme_subsystems()
        .create(&SubsystemCreate::new("other_sub", SVM, NvmeOsType::Linux))
        .await);
    let e = err(c
        .nvme_subsystem_maps()
        .create(&SubsystemMapCreate::new(SVM, "other_sub", "/vol/nsvol/ns0"))
        .await);
    assert_eq!((e.status(), e.ontap_code()), (Some(409), Some("72089790")));

    ok(c.nvme_subsystem_maps().unmap(&sub_uuid, &ns_uuid).await);
    ok(c.namespaces().delete(&ns_uuid).await);
    // A subsystem with hosts is kept unless told otherwise.
    let e = err(c.nvme_subsystems().delete(&sub_uuid).await);
    assert_eq!((e.status(), e.ontap_code()), (Some(409), Some("72090024")));
    ok(c.nvme_subsystems().remove_host(&sub_uuid, NQN1).await);
    ok(c.nvme_subsystems().delete(&sub_uuid).await);
    ok(c.volumes().delete(&vol).await);
    assert!(env.stored("nvme_namespaces").is_empty());
    assert!(env.stored("nvme_subsystem_maps").is_empty());
}

#[tokio::test]
async fn snapmirror_initialize_break_resync() {
    let env = common::start().await;
    let c = &env.client;
    create_volume(c, &VolumeCreate::flexvol("src", SVM, AGGR1).size(2 * GIB)).await;
    let rels = c.snapmirror_relationships();
    let created = ok(rels
        .create(&SnapmirrorCreate::new("svm1:src", "svm1:src_dst").create_destination(true))
        .await);
    let rel_uuid = created
        .record
        .and_then(|r| r.uuid)
        .expect("relationship record");
    let rel = ok(rels.get(&rel_uuid, &Query::new()).await);
    assert_eq!(rel.state, Some(SnapmirrorState::Uninitialized));
    assert_eq!(rel.source.and_then(|s| s.path).as_deref(), Some("svm1:src"));
    assert_eq!(
        rel.destination.and_then(|d| d.path).as_deref(),
        Some("svm1:src_dst")
    );
    let dst = ok(c.volumes().by_name(SVM, "src_dst").await)
        .and_then(|v| v.uuid)
        .expect("destination created");
    let dst_type = |v: ontap_client::models::Volume| v.kind;
    assert_eq!(
        dst_type(ok(c.volumes().get(&dst, &Query::new()).await)),
        Some(VolumeType::Dp)
    );
    assert_eq!(
        ok(rels.by_destination("svm1:src_dst").await).and_then(|r| r.uuid),
        Some(rel_uuid.clone())
    );

    // Breaking a relationship that never transferred is refused.
    let e = err(rels.break_off(&rel_uuid).await);
    assert_eq!((e.status(), e.ontap_code()), (Some(400), Some("13303810")));

    ok(rels.initialize(&rel_uuid).await);
    let rel = ok(rels.get(&rel_uuid, &Query::new()).await);
    assert_eq!(rel.state, Some(SnapmirrorState::Snapmirrored));
    assert_eq!(rel.healthy, Some(true));
    let transfers = ok(rels
        .transfers(&rel_uuid)
        .list_all(&Query::new().fields(["*"]))
        .await);
    assert_eq!(transfers.len(), 1);
    assert_eq!(transfers[0].state, Some(SnapmirrorTransferState::Success));

    let update = ok(rels.update(&rel_uuid).await);
    assert!(update.record.and_then(|t| t.uuid).is_some());
    let transfers = ok(rels.transfers(&rel_uuid).list_all(&Query::new()).await);
    assert_eq!(transfers.len(), 2);

    ok(rels.break_off(&rel_uuid).await);
    let rel = ok(rels.get(&rel_uuid, &Query::new()).await);
    assert_eq!(rel.state, Some(SnapmirrorState::BrokenOff));
    assert_eq!(
        dst_type(ok(c.volumes().get(&dst, &Query::new()).await)),
        Some(VolumeType::Rw)
    );

    ok(rels.resync(&rel_uuid).await);
    let rel = ok(rels.get(&rel_uuid, &Query::new()).await);
    assert_eq!(rel.state, Some(SnapmirrorState::Snapmirrored));
    assert_eq!(
        dst_type(ok(c.volumes().get(&dst, &Query::new()).await)),
        Some(VolumeType::Dp)
    );

    // Pause and resume.
    ok(rels.pause(&rel_uuid).await);
    assert_eq!(
        ok(rels.get(&rel_uuid, &Query::new()).await).state,
        Some(SnapmirrorState::Paused)
    );
    ok(rels.resume(&rel_uuid).await);
    assert_eq!(
        ok(rels.get(&rel_uuid, &Query::new()).await).state,
        Some(SnapmirrorState::Snapmirrored)
    );

    // A destination that is not a DP volume is refused.
    create_volume(c, &VolumeCreate::flexvol("plain", SVM, AGGR1)).await;
    let e = err(rels
        .create(&SnapmirrorCreate::new("svm1:src", "svm1:plain"))
        .await);
    assert_eq!((e.status(), e.ontap_code()), (Some(400), Some("13303841")));
    // A second relationship to the same destination is a conflict.
    let e = err(rels
        .create(&SnapmirrorCreate::new("svm1:src", "svm1:src_dst"))
        .await);
    assert_eq!((e.status(), e.ontap_code()), (Some(409), Some("1")));

    ok(rels.delete(&rel_uuid).await);
    assert!(err(rels.get(&rel_uuid, &Query::new()).await).is_not_found());
}

#[tokio::test]
async fn multi_admin_verify_approval_lets_the_retry_through() {
    let env = common::start().await;
    let c = &env.client;
    create_volume(
        c,
        &VolumeCreate::flexvol("mavvol", SVM, AGGR1).size(4 * GIB),
    )
    .await;
    let lun = ok(c
        .luns()
        .create(&LunCreate::new(
            SVM,
            "/vol/mavvol/lun0",
            LunOsType::Linux,
            GIB,
        ))
        .await)
    .record
    .and_then(|l| l.uuid)
    .expect("lun");
    let lun2 = ok(c
        .luns()
        .create(&LunCreate::new(
            SVM,
            "/vol/mavvol/lun1",
            LunOsType::Linux,
            GIB,
        ))
        .await)
    .record
    .and_then(|l| l.uuid)
    .expect("lun");

    // Protect `lun delete`, then turn MAV on.
    ok(c.raw()
        .post(
            "/api/security/multi-admin-verify/rules",
            &Query::new(),
            Some(&json!({"operation": "lun delete"})),
        )
        .await);
    ok(c.raw()
        .patch(
            "/api/security/multi-admin-verify",
            &Query::new(),
            Some(&json!({"enabled": true})),
        )
        .await);

    let e = err(c.luns().delete(&lun).await);
    match &e {
        Error::ApprovalRequired {
            method,
            path,
            request_index,
            message,
        } => {
            assert_eq!(method.as_str(), "DELETE");
            assert!(
                path.starts_with(&format!("/api/storage/luns/{lun}")),
                "{path}"
            );
            assert_eq!(*request_index, Some(1));
            assert_eq!(
                message,
                "The security multi-admin-verify request (index 1) requires approval."
            );
        }
        other => panic!("expected ApprovalRequired, got {other:?}"),
    }
    assert_eq!(e.ontap_code(), Some("262325"));
    // Asking again names the same pending request.
    let e = err(c.luns().delete(&lun).await);
    assert!(
        matches!(
            e,
            Error::ApprovalRequired {
                request_index: Some(1),
                ..
            }
        ),
        "{e:?}"
    );

    let req = ok(c.mav_requests().get("1", &Query::new()).await);
    assert_eq!(req.index, Some(1));
    assert_eq!(req.state, Some(MavRequestState::Pending));
    assert_eq!(req.operation.as_deref(), Some("lun delete"));

    ok(c.mav_requests().approve(1).await);
    assert_eq!(
        ok(c.mav_requests().get("1", &Query::new()).await).state,
        Some(MavRequestState::Approved)
    );
    ok(c.luns().delete(&lun).await);
    assert!(err(c.luns().get(&lun, &Query::new()).await).is_not_found());
    assert_eq!(
        ok(c.mav_requests().get("1", &Query::new()).await).state,
        Some(MavRequestState::Executed)
    );

    // Another LUN needs its own approval; a vetoed request does not let it through.
    let e = err(c.luns().delete(&lun2).await);
    assert!(
        matches!(
            e,
            Error::ApprovalRequired {
                request_index: Some(2),
                ..
            }
        ),
        "{e:?}"
    );
    ok(c.mav_requests().veto(2).await);
    assert_eq!(
        ok(c.mav_requests().get("2", &Query::new()).await).state,
        Some(MavRequestState::Vetoed)
    );
    // The vetoed request is spent: asking again opens a new one.
    let e = err(c.luns().delete(&lun2).await);
    assert!(
        matches!(
            e,
            Error::ApprovalRequired {
                request_index: Some(3),
                ..
            }
        ),
        "{e:?}"
    );
    assert!(ok(c.luns().get(&lun2, &Query::new()).await).uuid.is_some());
}

#[tokio::test]
async fn multi_admin_verify_guards_snapmirror_break() {
    let env = common::start().await;
    let c = &env.client;
    create_volume(c, &VolumeCreate::flexvol("src", SVM, AGGR1)).await;
    let rels = c.snapmirror_relationships();
    let uuid = ok(rels
        .create(&SnapmirrorCreate::new("svm1:src", "svm1:src_dr").create_destination(true))
        .await)
    .record
    .and_then(|r| r.uuid)
    .expect("relationship");
    ok(rels.initialize(&uuid).await);
    ok(c.raw()
        .post(
            "/api/security/multi-admin-verify/rules",
            &Query::new(),
            Some(&json!({"operation": "snapmirror break"})),
        )
        .await);
    ok(c.raw()
        .patch(
            "/api/security/multi-admin-verify",
            &Query::new(),
            Some(&json!({"enabled": true})),
        )
        .await);
    let e = err(rels.break_off(&uuid).await);
    let Error::ApprovalRequired { request_index, .. } = e else {
        panic!("expected ApprovalRequired, got {e:?}")
    };
    let index = request_index.expect("index");
    let req = ok(c
        .mav_requests()
        .get(&index.to_string(), &Query::new())
        .await);
    assert_eq!(req.operation.as_deref(), Some("snapmirror break"));
    assert_eq!(req.query.as_deref(), Some("-destination-path svm1:src_dr"));
    // Still mirrored until approved.
    assert_eq!(
        ok(rels.get(&uuid, &Query::new()).await).state,
        Some(SnapmirrorState::Snapmirrored)
    );
    ok(c.mav_requests().approve(index).await);
    ok(rels.break_off(&uuid).await);
    assert_eq!(
        ok(rels.get(&uuid, &Query::new()).await).state,
        Some(SnapmirrorState::BrokenOff)
    );
    // Turning MAV off is itself protected while it is on.
    let e = err(c
        .raw()
        .patch(
            "/api/security/multi-admin-verify",
            &Query::new(),
            Some(&json!({"enabled": false})),
        )
        .await);
    assert!(matches!(e, Error::ApprovalRequired { .. }), "{e:?}");
}

/// Turns MAV on with rules for `operations`.
async fn protect(c: &Client, operations: &[&str]) {
    for op in operations {
        ok(c.raw()
            .post(
                "/api/security/multi-admin-verify/rules",
                &Query::new(),
                Some(&json!({ "operation": op })),
            )
            .await);
    }
    ok(c.raw()
        .patch(
            "/api/security/multi-admin-verify",
            &Query::new(),
            Some(&json!({"enabled": true})),
        )
        .await);
}

#[tokio::test]
async fn multi_admin_verify_guards_volume_and_snapshot_deletes() {
    let env = common::start().await;
    let c = &env.client;
    let vol = create_volume(c, &VolumeCreate::flexvol("precious", SVM, AGGR1)).await;
    let snap = ok(c
        .snapshots(&vol)
        .create(&ontap_client::models::SnapshotCreate::new("daily"))
        .await)
    .record
    .and_then(|s| s.uuid)
    .expect("snapshot");
    protect(c, &["volume delete", "volume snapshot delete"]).await;

    let e = err(c.snapshots(&vol).delete(&snap).await);
    let Error::ApprovalRequired { request_index, .. } = e else {
        panic!("expected ApprovalRequired, got {e:?}")
    };
    let snap_req = request_index.expect("index");
    let req = ok(c
        .mav_requests()
        .get(&snap_req.to_string(), &Query::new())
        .await);
    assert_eq!(req.operation.as_deref(), Some("volume snapshot delete"));
    assert_eq!(
        req.query.as_deref(),
        Some("-vserver svm1 -volume precious -snapshot daily")
    );

    let e = err(c.volumes().delete(&vol).await);
    let Error::ApprovalRequired { request_index, .. } = e else {
        panic!("expected ApprovalRequired, got {e:?}")
    };
    let vol_req = request_index.expect("index");
    assert_ne!(vol_req, snap_req);
    let req = ok(c
        .mav_requests()
        .get(&vol_req.to_string(), &Query::new())
        .await);
    assert_eq!(req.operation.as_deref(), Some("volume delete"));
    assert_eq!(req.query.as_deref(), Some("-vserver svm1 -volume precious"));
    let pending = ok(c
        .mav_requests()
        .count(&Query::new().filter("state", "pending"))
        .await);
    assert_eq!(pending, 2);

    // Nothing was deleted while waiting for approval.
    assert!(ok(c.snapshots(&vol).by_name("daily").await).is_some());
    ok(c.mav_requests().approve(snap_req).await);
    ok(c.snapshots(&vol).delete(&snap).await);
    ok(c.mav_requests().approve(vol_req).await);
    ok(c.volumes().delete(&vol).await);
    assert!(env.stored("volumes").is_empty());
    let executed = ok(c
        .mav_requests()
        .count(&Query::new().filter("state", "executed"))
        .await);
    assert_eq!(executed, 2);
}

/// A thin LUN (`space.guarantee.requested=false`, ONTAP's default) takes volume space only
/// as it is written; a space-reserved LUN takes its whole size at creation.
#[tokio::test]
async fn thin_luns_reserve_nothing_and_thick_luns_their_size() {
    let env = common::start().await;
    let c = &env.client;
    let vol = create_volume(
        c,
        &VolumeCreate::flexvol("spacevol", SVM, AGGR1).size(10 * GIB),
    )
    .await;
    let available = |v: ontap_client::models::Volume| {
        v.space.and_then(|s| s.available).expect("space.available")
    };
    let before = available(ok(c.volumes().get(&vol, &Query::new()).await));
    ok(c.luns()
        .create(&LunCreate::new(
            SVM,
            "/vol/spacevol/thin",
            LunOsType::Linux,
            4 * GIB,
        ))
        .await);
    let after_thin = available(ok(c.volumes().get(&vol, &Query::new()).await));
    let thick = ok(c
        .luns()
        .create(
            &LunCreate::new(SVM, "/vol/spacevol/thick", LunOsType::Linux, 2 * GIB)
                .space_reserved(true),
        )
        .await)
    .record
    .expect("LUN record");
    let reserved = thick
        .space
        .and_then(|s| s.guarantee)
        .and_then(|g| g.reserved);
    let after_thick = available(ok(c.volumes().get(&vol, &Query::new()).await));
    assert_eq!(
        (after_thin, after_thick),
        (before, before - 2 * GIB),
        "volume space.available: {before} before, {after_thin} after a 4 GiB thin LUN, \
         {after_thick} after a 2 GiB thick LUN (reserved: {reserved:?})"
    );
}

/// ONTAP reports namespaces as not space-reserved: creating one leaves the volume's
/// `space.available` unchanged until data is written.
#[tokio::test]
async fn namespaces_reserve_no_volume_space() {
    let env = common::start().await;
    let c = &env.client;
    let vol = create_volume(
        c,
        &VolumeCreate::flexvol("nsspace", SVM, AGGR1).size(10 * GIB),
    )
    .await;
    let available = |v: ontap_client::models::Volume| {
        v.space.and_then(|s| s.available).expect("space.available")
    };
    let before = available(ok(c.volumes().get(&vol, &Query::new()).await));
    let ns = ok(c
        .namespaces()
        .create(&NamespaceCreate::new(
            SVM,
            "/vol/nsspace/ns0",
            NvmeOsType::Linux,
            4 * GIB,
        ))
        .await)
    .record
    .expect("namespace record");
    let reserved = ns.space.and_then(|s| s.guarantee).and_then(|g| g.reserved);
    assert_eq!(reserved, Some(false));
    let after = available(ok(c.volumes().get(&vol, &Query::new()).await));
    assert_eq!(
        after, before,
        "a 4 GiB namespace (reserved=false) took volume space"
    );
}
