"""SMB and block datastores, FlexClones, recovery and certificate authentication through the
`kvmstor` extension against ontap-sim. Host steps run on *simulated* hosts
(`add_simulated_host`: scratch roots, a fake kernel whose synthetic sysfs shows what ONTAP
maps to the host, libvirt test:///default); every ONTAP call is real."""

import os
import stat
import uuid

import pytest

import kvmstor

SMB_PASSWORD = "Tr0ub4dor&3 horse"


def unique(prefix):
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def vol_names(ontap):
    return {v["name"] for v in ontap.list_volumes("svm1")}


def mounts(root, host):
    return (root / host / "proc/self/mountinfo").read_text()


def test_smb_attach_snapshot_clone_detach_with_simulated_host(ontap, hosts_root, tmp_path):
    host = unique("kvm")
    ontap.add_simulated_host(host, "192.0.2.101", hosts_root)
    name = unique("smb")
    pw = tmp_path / "smb.pw"
    pw.write_text(SMB_PASSWORD + "\n")
    ds = kvmstor.SmbDatastore("svm1", name, "aggr1", "10G", [host], username="svc_kvm",
                              domain="CORP", password_file=str(pw), delete_ontap_objects=True)
    assert SMB_PASSWORD not in repr(ds)
    assert (ds.name, ds.share, ds.volume, ds.size) == (name, name, name, 10 << 30)

    plan = ontap.plan_attach(ds)
    assert plan["workflow"] == f"smb-attach svm1/{name} as pool {name}"
    assert plan["steps"][:3] == [f"CreateVolume svm1/{name}", f"CreateShare svm1/{name}",
                                 f"WriteCredentials {host}:kvmstor-{name}"]
    assert SMB_PASSWORD not in str(plan)

    journal = tmp_path / "smb.json"
    report = ontap.attach(ds, journal=str(journal))
    assert report["outcome"] == "applied"
    assert report["changed"] == len(report["steps"]) == 6
    assert SMB_PASSWORD not in journal.read_text()
    cred = hosts_root / host / f"etc/kvmstor/cifs/kvmstor-{name}.cred"
    assert stat.S_IMODE(os.stat(cred).st_mode) == 0o600
    assert cred.read_text() == f"username=svc_kvm\npassword={SMB_PASSWORD}\ndomain=CORP\n"
    assert " - cifs " in mounts(hosts_root, host)
    assert name in [p["name"] for p in kvmstor.list_pools("test:///default")]

    assert ontap.snapshot("svm1", name, "hourly")["name"] == "hourly"
    assert [s["name"] for s in ontap.list_snapshots("svm1", name)] == ["hourly"]
    ontap.clone_file("svm1", name, "tpl/win.qcow2", "vms/w1.qcow2")

    # Detach without the password.
    bare = kvmstor.SmbDatastore("svm1", name, "aggr1", "10G", [host], username="svc_kvm",
                                domain="CORP", delete_ontap_objects=True)
    report = ontap.detach(bare)
    assert report["outcome"] == "applied"
    assert not cred.exists()
    assert " - cifs " not in mounts(hosts_root, host)
    assert name not in vol_names(ontap)


def test_smb_share_name_and_acl_with_simulated_host(ontap, sim, hosts_root):
    host = unique("kvm")
    ontap.add_simulated_host(host, "192.0.2.101", hosts_root)
    name = unique("smbacl")
    share = unique("VMStore-")
    ds = kvmstor.SmbDatastore("svm1", name, "aggr1", "1G", [host], username="svc_kvm",
                              password=SMB_PASSWORD, share_name=share, delete_ontap_objects=True,
                              share_acl=[("CORP\\vm-admins", "change"),
                                         ("backup", "unix_user", "read")])
    assert (ds.name, ds.share, ds.volume) == (name, share, name)
    plan = ontap.plan_attach(ds)
    assert plan["steps"][1:4] == [f"CreateShare svm1/{share}",
                                  f"AddShareAcl svm1/{share}:CORP\\vm-admins",
                                  f"AddShareAcl svm1/{share}:backup"]
    assert ontap.attach(ds)["outcome"] == "applied"
    shares = sim.admin("GET", f"/api/protocols/cifs/shares?svm.name=svm1&name={share}&fields=path,acls")
    assert [(r["name"], r["path"]) for r in shares["records"]] == [(share, f"/{name}")]
    acls = sorted((a["user_or_group"], a["type"], a["permission"])
                  for a in shares["records"][0]["acls"])
    assert acls == [("CORP\\vm-admins", "windows", "change"),
                    ("backup", "unix_user", "read"),
                    ("svc_kvm", "windows", "full_control")]
    assert ontap.detach(ds)["outcome"] == "applied"
    shares = sim.admin("GET", f"/api/protocols/cifs/shares?svm.name=svm1&name={share}")
    assert shares["num_records"] == 0


def test_bad_smb_share_acl_entries_are_refused():
    def smb(acl):
        return kvmstor.SmbDatastore("svm1", "x", "aggr1", "1G", ["h"], username="u",
                                    share_acl=acl)
    with pytest.raises(kvmstor.KvmstorError, match="share ACL permission"):
        smb([("Everyone", "everything")])
    with pytest.raises(kvmstor.KvmstorError, match="share ACL type"):
        smb([("backup", "unix", "read")])
    with pytest.raises(kvmstor.KvmstorError, match="invalid share ACL entry"):
        smb([("Everyone",)])


def test_smb_share_failure_rolls_back_with_simulated_host(ontap, sim, hosts_root):
    host = unique("kvm")
    ontap.add_simulated_host(host, "192.0.2.101", hosts_root)
    name = unique("smbf")
    sim.fault(method="POST", path="/api/protocols/cifs/shares",
              action={"kind": "error", "status": 400, "code": "655551",
                      "message": "share path not found"})
    ds = kvmstor.SmbDatastore("svm1", name, "aggr1", "1G", [host], username="svc_kvm",
                              password=SMB_PASSWORD)
    with pytest.raises(kvmstor.StepFailed) as info:
        ontap.attach(ds)
    e = info.value
    assert (e.step, e.index, e.ontap_code, e.rollback, e.undone) == (
        f"CreateShare svm1/{name}", 1, "655551", "clean", 1)
    assert SMB_PASSWORD not in str(e)
    assert name not in vol_names(ontap)


def test_block_iscsi_ocfs2_two_simulated_hosts_and_flexclone(ontap, hosts_root):
    hosts = [unique("kvm"), unique("kvm")]
    for i, h in enumerate(hosts):
        ontap.add_simulated_host(h, f"192.0.2.11{i}", hosts_root)
    name = unique("blk")
    ds = kvmstor.BlockDatastore("svm1", name, "aggr1", "10G", hosts, device_wait=5,
                                delete_ontap_objects=True)
    assert (ds.protocol, ds.disk_path) == ("iscsi", f"/vol/{name}/lun0")
    report = ontap.attach(ds)
    assert report["outcome"] == "applied"
    assert report["workflow"] == f"iscsi-ocfs2-attach svm1/{name} as pool {name}"
    labels = [s["label"] for s in report["steps"]]
    assert labels[:4] == [f"CreateVolume svm1/{name}", f"CreateLun svm1:/vol/{name}/lun0",
                          f"CreateIgroup svm1/kvmstor_{name}",
                          f"MapLun svm1:/vol/{name}/lun0 to kvmstor_{name}"]
    assert [x for x in labels if x.startswith("Format")] == [
        f"FormatOcfs2 {hosts[0]}:/vol/{name}/lun0"]
    for h in hosts:
        assert f" {hosts_root / 'mnt' / name} " in mounts(hosts_root, h)
        assert " - ocfs2 /dev/mapper/3600a0980" in mounts(hosts_root, h)
    vols = {v["name"]: v for v in ontap.list_volumes("svm1")}
    assert vols[name]["size"] == 11 << 30

    assert ontap.snapshot("svm1", name, "golden")["name"] == "golden"
    clone = f"{name}_c"
    uuid1 = ontap.flexclone("svm1", name, clone, snapshot="golden")
    assert uuid1 == ontap.flexclone("svm1", name, clone, snapshot="golden")  # idempotent
    assert clone in vol_names(ontap)

    # Detach keeping the ONTAP objects (the clone depends on the volume).
    keep = kvmstor.BlockDatastore("svm1", name, "aggr1", "10G", hosts, device_wait=5)
    report = ontap.detach(keep)
    assert report["outcome"] == "applied"
    for h in hosts:
        assert " - ocfs2 " not in mounts(hosts_root, h)
        assert not list((hosts_root / h / "sys/class/iscsi_session").iterdir())
    assert name in vol_names(ontap)


def test_block_nvme_gfs2_with_simulated_hosts(ontap, hosts_root):
    hosts = [unique("kvm"), unique("kvm")]
    for i, h in enumerate(hosts):
        ontap.add_simulated_host(h, f"192.0.2.12{i}", hosts_root)
    name = unique("nv")
    ds = kvmstor.BlockDatastore("svm1", name, "aggr1", "4G", hosts, protocol="nvme", fs="gfs2",
                                device_wait=5, delete_ontap_objects=True)
    assert (ds.protocol, ds.disk_path) == ("nvme-tcp", f"/vol/{name}/ns0")
    report = ontap.attach(ds)
    assert report["outcome"] == "applied"
    assert report["workflow"] == f"nvme-tcp-gfs2-attach svm1/{name} as pool {name}"
    for h in hosts:
        assert " - gfs2 /dev/disk/by-id/nvme-uuid." in mounts(hosts_root, h)
    report = ontap.detach(ds)
    assert report["outcome"] == "applied"
    assert name not in vol_names(ontap)
    for h in hosts:
        assert " - gfs2 " not in mounts(hosts_root, h)


def test_block_fc_with_simulated_hba(ontap, hosts_root):
    host = unique("kvm")
    ontap.add_simulated_host(host, "192.0.2.130", hosts_root, fc_svm="svm1")
    name = unique("fc")
    ds = kvmstor.BlockDatastore("svm1", name, "aggr1", "2G", [host], protocol="fc",
                                device_wait=5, delete_ontap_objects=True)
    report = ontap.attach(ds)
    assert report["workflow"] == f"fcp-ocfs2-attach svm1/{name} as pool {name}"
    assert " - ocfs2 /dev/mapper/3600a0980" in mounts(hosts_root, host)
    assert ontap.detach(ds)["outcome"] == "applied"
    assert name not in vol_names(ontap)


def test_block_disk_too_small_for_ocfs2_is_refused_before_anything_runs(ontap, hosts_root):
    host = unique("kvm")
    ontap.add_simulated_host(host, "192.0.2.130", hosts_root)
    name = unique("bt")
    ds = kvmstor.BlockDatastore("svm1", name, "aggr1", "1G", [host])
    with pytest.raises(kvmstor.KvmstorError) as info:
        ontap.attach(ds)
    assert str(info.value) == ('invalid size "1073741824": mkfs.ocfs2 -T vmstore needs a disk '
                               'of at least 2 GiB (2147483648 bytes)')
    assert name not in vol_names(ontap)


def test_block_lun_failure_rolls_back_with_simulated_host(ontap, sim, hosts_root):
    host = unique("kvm")
    ontap.add_simulated_host(host, "192.0.2.140", hosts_root)
    name = unique("bf")
    sim.fault(method="POST", path="/api/storage/luns",
              action={"kind": "error", "status": 400, "code": "5374860",
                      "message": "LUN size too large"})
    ds = kvmstor.BlockDatastore("svm1", name, "aggr1", "2G", [host])
    with pytest.raises(kvmstor.StepFailed) as info:
        ontap.attach(ds)
    e = info.value
    assert (e.step, e.index, e.ontap_code, e.rollback, e.undone, e.remaining) == (
        f"CreateLun svm1:/vol/{name}/lun0", 1, "5374860", "clean", 1, [])
    assert "LUN size too large" in e.cause
    assert name not in vol_names(ontap)


def test_block_failed_undo_needs_attention_then_recover_with_simulated_host(ontap, sim, hosts_root, tmp_path):
    host = unique("kvm")
    ontap.add_simulated_host(host, "192.0.2.150", hosts_root)
    name = unique("bs")
    sim.fault(method="POST", path="/api/storage/luns",
              action={"kind": "error", "status": 400, "code": "5374860", "message": "too large"})
    sim.fault(method="DELETE", path="/api/storage/volumes/*", times=0,
              action={"kind": "error", "status": 409, "code": "917536", "message": "volume busy"})
    ds = kvmstor.BlockDatastore("svm1", name, "aggr1", "2G", [host])
    journal = tmp_path / "blk.json"
    with pytest.raises(kvmstor.NeedsAttention) as info:
        ontap.attach(ds, journal=str(journal))
    e = info.value
    assert (e.step, e.rollback, e.ontap_code) == (
        f"CreateLun svm1:/vol/{name}/lun0", "incomplete", "5374860")
    assert e.remaining == [f"CreateVolume svm1/{name}"]
    assert e.failed_undo["step"] == f"CreateVolume svm1/{name}"
    assert "volume busy" in e.failed_undo["error"]
    assert name in vol_names(ontap)

    sim.clear_faults()
    report = ontap.recover(ds, str(journal))
    assert (report["outcome"], report["status"]) == ("unwound", "unwound")
    assert name not in vol_names(ontap)
    with pytest.raises(kvmstor.KvmstorError, match="mode"):
        ontap.recover(ds, str(journal), mode="sideways")


def test_bad_block_and_smb_keywords_are_refused():
    with pytest.raises(kvmstor.KvmstorError, match="protocol"):
        kvmstor.BlockDatastore("svm1", "x", "aggr1", "1G", ["h"], protocol="scsi-over-carrier")
    with pytest.raises(kvmstor.KvmstorError, match="file system"):
        kvmstor.BlockDatastore("svm1", "x", "aggr1", "1G", ["h"], fs="ext4")
    with pytest.raises(kvmstor.KvmstorError, match="not both"):
        kvmstor.SmbDatastore("svm1", "x", "aggr1", "1G", ["h"], username="u", password="p",
                             password_file="/nonexistent")
    with pytest.raises(TypeError):
        kvmstor.SmbDatastore("svm1", "x", "aggr1", "1G", ["h"])  # username is required


def test_certificate_auth_end_to_end_with_simulated_host(cert_sim, client_pki, hosts_root):
    ontap = kvmstor.connect(cert_sim.url, ca_file=str(cert_sim.ca),
                            cert_file=str(client_pki["cert"]), key_file=str(client_pki["key"]))
    # Authenticated by the certificate alone: no password was given.
    assert isinstance(ontap.list_volumes("svm1"), list)
    host = unique("kvm")
    ontap.add_simulated_host(host, "192.0.2.160", hosts_root)
    name = unique("cert")
    ds = kvmstor.NfsDatastore("svm1", name, "aggr1", "1G", [host], delete_ontap_objects=True)
    assert ontap.attach(ds)["outcome"] == "applied"
    assert name in vol_names(ontap)
    assert ontap.detach(ds)["outcome"] == "applied"

    # No certificate and no password: 401.
    anon = kvmstor.connect(cert_sim.url, ca_file=str(cert_sim.ca))
    with pytest.raises(kvmstor.OntapError) as info:
        anon.list_volumes()
    assert info.value.status == 401
    # A certificate from another CA: the TLS handshake fails (no HTTP status).
    forged = kvmstor.connect(cert_sim.url, ca_file=str(cert_sim.ca),
                             cert_file=str(client_pki["other_cert"]),
                             key_file=str(client_pki["other_key"]))
    with pytest.raises(kvmstor.KvmstorError) as info:
        forged.list_volumes()
    assert getattr(info.value, "status", None) is None
