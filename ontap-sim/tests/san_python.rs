//! SAN, NVMe, SnapMirror and MAV endpoints driven by NetApp's official Python client.
//!
//! Ignored by default because it needs Python with `netapp-ontap` installed; run with
//! `ONTAP_SIM_PYTHON=/path/to/python cargo test -p ontap-sim --test san_python -- --ignored`.

mod common;

use std::process::Command;

use secrecy::ExposeSecret;

const SCRIPT: &str = r#"
import os
import netapp_ontap
from netapp_ontap import config, HostConnection, NetAppRestError
from netapp_ontap.resources import (Volume, Lun, Igroup, LunMap, IscsiCredentials, NvmeNamespace,
    NvmeSubsystem, NvmeSubsystemMap, SnapmirrorRelationship, SnapmirrorTransfer,
    MultiAdminVerifyConfig, MultiAdminVerifyRule, MultiAdminVerifyRequest)
config.CONNECTION = HostConnection(os.environ["SIM_HOST"], port=int(os.environ["SIM_PORT"]),
    username="admin", password=os.environ["SIM_PASSWORD"], verify=True, poll_interval=0.1)
Volume(name="pv", svm={"name": "svm1"}, aggregates=[{"name": "aggr1"}], size="4GB").post()
Volume(name="pv_dst", svm={"name": "svm1"}, aggregates=[{"name": "aggr1"}], size="4GB", type="dp").post()
lun = Lun(svm={"name": "svm1"}, name="/vol/pv/l1", os_type="linux", space={"size": "1G"})
lun.post(hydrate=True)
print("lun", lun.name, len(lun.serial_number), lun.space.size, lun.status.mapped)
ig = Igroup(svm={"name": "svm1"}, name="pyig", os_type="linux", protocol="iscsi",
            initiators=[{"name": "iqn.1994-05.com.redhat:py"}])
ig.post(hydrate=True)
print("igroup", ig.name, [i.name for i in ig.initiators])
m = LunMap(svm={"name": "svm1"}, lun={"name": "/vol/pv/l1"}, igroup={"name": "pyig"})
m.post(hydrate=True)
print("map", m.logical_unit_number, m.lun.name, m.igroup.name)
lun.get(); print("mapped", lun.status.mapped)
try:
    lun.delete()
except NetAppRestError as e:
    print("lun delete refused", e.http_err_response.http_response.status_code, e.response_body["error"]["code"])
cred = IscsiCredentials(svm={"name": "svm1"}, initiator="iqn.1994-05.com.redhat:py",
    authentication_type="chap", chap={"inbound": {"user": "u", "password": "pysecret1234"}})
cred.post()
got = IscsiCredentials.get_collection(fields="*")
print("chap", [(c.initiator, c.chap.inbound.user, hasattr(c.chap.inbound, "password")) for c in got])
ns = NvmeNamespace(svm={"name": "svm1"}, name="/vol/pv/ns1", os_type="linux", space={"size": "1G"})
ns.post(hydrate=True)
print("namespace", ns.name, ns.space.block_size)
sub = NvmeSubsystem(svm={"name": "svm1"}, name="pysub", os_type="linux",
    hosts=[{"nqn": "nqn.2014-08.org.nvmexpress:uuid:py"}])
sub.post(hydrate=True)
print("subsystem", sub.target_nqn.split(":")[-1])
sm = NvmeSubsystemMap(svm={"name": "svm1"}, subsystem={"name": "pysub"}, namespace={"name": "/vol/pv/ns1"})
sm.post(hydrate=True)
print("nsid", sm.nsid)
rel = SnapmirrorRelationship(source={"path": "svm1:pv"}, destination={"path": "svm1:pv_dst"})
rel.post(hydrate=True)
print("relationship", rel.state)
rel.state = "snapmirrored"; rel.patch(); rel.get()
print("initialized", rel.state, rel.last_transfer_type)
SnapmirrorTransfer(rel.uuid).post()
rel.get(); print("updated", rel.last_transfer_type)
rel.state = "broken_off"; rel.patch(); rel.get()
print("broken", rel.state, Volume.find(name="pv_dst").type)
c = MultiAdminVerifyConfig(); c.get(); print("mav", c.enabled)
MultiAdminVerifyRule(operation="lun delete").post()
c.enabled = True; c.patch()
try:
    lun.delete(allow_delete_while_mapped="true")
except NetAppRestError as e:
    print("mav", e.response_body["error"]["code"], e.response_body["error"]["message"])
req = MultiAdminVerifyRequest(index=1); req.get(); print("request", req.state, req.operation)
req.state = "approved"; req.patch()
lun.delete(allow_delete_while_mapped="true")
req.get(); print("request", req.state)
print("luns left", Lun.count_collection())
"#;

#[tokio::test]
#[ignore = "needs ONTAP_SIM_PYTHON: a Python with netapp-ontap installed"]
async fn netapp_ontap_python_client_drives_san() -> anyhow::Result<()> {
    let python = std::env::var("ONTAP_SIM_PYTHON")
        .map_err(|_| anyhow::anyhow!("set ONTAP_SIM_PYTHON to a python with netapp-ontap"))?;
    let env = common::start().await?;
    let dir = std::env::temp_dir();
    let cert = dir.join(format!("ontap-sim-san-py-{}.pem", std::process::id()));
    let script = dir.join(format!("ontap-sim-san-py-{}.py", std::process::id()));
    std::fs::write(&cert, env.sim.ca_pem().expect("https"))?;
    std::fs::write(&script, SCRIPT)?;
    let addr = env.sim.addr();
    let pw = env.sim.password();
    let script_arg = script.clone();
    let cert_env = cert.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(&script_arg)
            .env("SIM_HOST", addr.ip().to_string())
            .env("SIM_PORT", addr.port().to_string())
            .env("SIM_PASSWORD", pw.expose_secret())
            .env("REQUESTS_CA_BUNDLE", &cert_env)
            .output()
    })
    .await??;
    let _ = std::fs::remove_file(&cert);
    let _ = std::fs::remove_file(&script);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "lun /vol/pv/l1 12 1073741824 False",
        "igroup pyig ['iqn.1994-05.com.redhat:py']",
        "map 0 /vol/pv/l1 pyig",
        "mapped True",
        "lun delete refused 409 1254197",
        "chap [('iqn.1994-05.com.redhat:py', 'u', False)]",
        "namespace /vol/pv/ns1 4096",
        "subsystem subsystem.pysub",
        "nsid 00000001h",
        "relationship uninitialized",
        "initialized snapmirrored initialize",
        "updated update",
        "broken broken_off rw",
        "mav False",
        "mav 262325 The security multi-admin-verify request (index 1) requires approval.",
        "request pending lun delete",
        "request executed",
        "luns left 0",
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "missing {line:?} in:\n{stdout}"
        );
    }
    Ok(())
}
