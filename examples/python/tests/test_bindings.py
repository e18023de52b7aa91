"""The `kvmstor` extension against ontap-sim. Host steps run on the *simulated* host side
(`add_simulated_host`: scratch roots, a fake kernel for mount/umount, libvirt
test:///default); every ONTAP call is real."""

import threading
import time
import uuid

import pytest

import kvmstor


def unique(prefix):
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def test_module_exports_exceptions_with_a_common_base():
    for cls in (kvmstor.OntapError, kvmstor.StepFailed, kvmstor.NeedsAttention):
        assert issubclass(cls, kvmstor.KvmstorError)
    assert issubclass(kvmstor.KvmstorError, Exception)


def test_connect_basic_lists_volumes(ontap, sim):
    assert ontap.url == sim.url
    vols = ontap.list_volumes("svm1")
    assert isinstance(vols, list)
    assert all(v["svm"] == "svm1" for v in vols)


def test_wrong_password_is_an_ontap_error_with_status(sim):
    bad = kvmstor.connect(sim.url, password="wrong", ca_file=str(sim.ca))
    with pytest.raises(kvmstor.OntapError) as info:
        bad.list_volumes()
    assert info.value.status == 401


def test_missing_certificate_files_give_a_typed_error(sim, tmp_path):
    with pytest.raises(kvmstor.KvmstorError, match="cannot read certificate"):
        kvmstor.connect(sim.url, ca_file=str(sim.ca), cert_file=str(tmp_path / "nope.pem"),
                        key_file=str(tmp_path / "nope.key"))
    with pytest.raises(kvmstor.KvmstorError, match="needs both"):
        kvmstor.connect(sim.url, ca_file=str(sim.ca), cert_file=str(sim.ca))


def test_bad_datastore_keywords_are_refused():
    with pytest.raises(kvmstor.KvmstorError, match="persist"):
        kvmstor.NfsDatastore("svm1", "x", "aggr1", "1G", ["kvm1"], persist="tape")
    with pytest.raises(kvmstor.KvmstorError, match="size"):
        kvmstor.NfsDatastore("svm1", "x", "aggr1", "lots", ["kvm1"])
    ds = kvmstor.NfsDatastore("svm1", "my-pool", "aggr1", "10G", ["kvm1"])
    assert (ds.name, ds.volume, ds.size) == ("my-pool", "my_pool", 10 << 30)


def test_plan_changes_nothing(ontap, hosts_root):
    ontap.add_simulated_host("kvm1", "192.0.2.101", hosts_root)
    name = unique("plan")
    ds = kvmstor.NfsDatastore("svm1", name, "aggr1", "10G", ["kvm1"])
    plan = ontap.plan_attach(ds)
    assert plan["workflow"] == f"nfs-attach svm1/{name} as pool {name}"
    assert plan["steps"][0] == f"CreateExportPolicy svm1/kvmstor_{name}"
    assert f"CreateVolume svm1/{name}" in plan["steps"]
    assert plan["actions"]
    assert not [v for v in ontap.list_volumes("svm1") if v["name"] == name]


def test_attach_snapshot_clone_detach_with_simulated_host_side(ontap, hosts_root, tmp_path):
    ontap.add_simulated_host("kvm1", "192.0.2.101", hosts_root)
    assert ontap.hosts() == ["kvm1"]
    name = unique("ds")
    ds = kvmstor.NfsDatastore("svm1", name, "aggr1", "10G", ["kvm1"], delete_ontap_objects=True)
    report = ontap.attach(ds, journal=str(tmp_path / "journal.json"))
    assert report["outcome"] == "applied"
    assert report["status"] == "completed"
    assert [s["state"] for s in report["steps"]] == ["done"] * len(report["steps"])
    assert (tmp_path / "journal.json").exists()

    vols = [v for v in ontap.list_volumes("svm1") if v["name"] == name]
    assert len(vols) == 1 and vols[0]["size"] == 10 << 30
    table = (hosts_root / "kvm1" / "proc/self/mountinfo").read_text()
    assert f" {hosts_root / 'mnt' / name} " in table
    pools = [p["name"] for p in kvmstor.list_pools("test:///default")]
    assert name in pools

    snap = ontap.snapshot("svm1", name, "nightly")
    assert snap["name"] == "nightly"
    assert [s["name"] for s in ontap.list_snapshots("svm1", name)] == ["nightly"]
    ontap.clone_file("svm1", name, "templates/base.qcow2", "vms/web1.qcow2")

    report = ontap.detach(ds)
    assert report["outcome"] == "applied"
    assert not [v for v in ontap.list_volumes("svm1") if v["name"] == name]
    assert " - nfs4 " not in (hosts_root / "kvm1" / "proc/self/mountinfo").read_text()
    assert name not in [p["name"] for p in kvmstor.list_pools("test:///default")]


def test_step_failure_rolls_back_and_carries_the_ontap_code(ontap, sim, hosts_root):
    ontap.add_simulated_host("kvm1", "192.0.2.101", hosts_root)
    name = unique("fail")
    sim.fault(method="POST", path="/api/storage/volumes",
              action={"kind": "error", "status": 400, "code": "917927",
                      "message": "Aggregate is offline"})
    ds = kvmstor.NfsDatastore("svm1", name, "aggr1", "10G", ["kvm1"])
    with pytest.raises(kvmstor.StepFailed) as info:
        ontap.attach(ds)
    e = info.value
    assert e.step == f"CreateVolume svm1/{name}"
    assert e.rollback == "clean"
    assert e.ontap_code == "917927"
    assert "Aggregate is offline" in e.cause
    assert e.remaining == []
    assert e.undone == 2  # the export rule and the policy
    assert "kvmstor_" + name not in str(sim.admin("GET", "/__sim/state"))


def test_failed_undo_needs_attention(ontap, sim, hosts_root):
    ontap.add_simulated_host("kvm1", "192.0.2.101", hosts_root)
    name = unique("stuck")
    sim.fault(method="POST", path="/api/storage/volumes",
              action={"kind": "error", "status": 400, "code": "917927", "message": "offline"})
    sim.fault(method="DELETE", path="/api/protocols/nfs/export-policies/*", times=0,
              action={"kind": "error", "status": 400, "code": "1703954", "message": "in use"})
    ds = kvmstor.NfsDatastore("svm1", name, "aggr1", "10G", ["kvm1"])
    with pytest.raises(kvmstor.NeedsAttention) as info:
        ontap.attach(ds)
    e = info.value
    assert e.rollback == "incomplete"
    # The rule's DELETE is under the policy's path too: the first undo already fails.
    assert e.remaining == [f"CreateExportPolicy svm1/kvmstor_{name}",
                           f"AddExportRule svm1/kvmstor_{name} for kvm1"]
    assert e.failed_undo["step"] == f"AddExportRule svm1/kvmstor_{name} for kvm1"
    assert "in use" in e.failed_undo["error"]
    assert isinstance(e, kvmstor.KvmstorError)


def test_operation_error_is_an_ontap_error(ontap, sim):
    sim.fault(method="GET", path="/api/storage/volumes",
              action={"kind": "error", "status": 403, "code": "6", "message": "not authorized"})
    with pytest.raises(kvmstor.OntapError) as info:
        ontap.list_volumes()
    assert (info.value.code, info.value.status) == ("6", 403)
    assert "not authorized" in info.value.message


def test_long_calls_release_the_gil(ontap, sim):
    sim.fault(method="GET", path="/api/storage/volumes", action={"kind": "delay", "ms": 1500})
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.01)

    t = threading.Thread(target=ticker)
    t.start()
    start = time.monotonic()
    ontap.list_volumes()
    elapsed = time.monotonic() - start
    stop.set()
    t.join()
    assert elapsed >= 1.4
    during = [x for x in ticks if start < x < start + elapsed]
    # Holding the GIL for 1.5 s would leave the ticker a handful of ticks at most.
    assert len(during) > 50, len(during)


def test_type_stubs_are_shipped():
    import importlib.resources
    pkg = importlib.resources.files("kvmstor")
    assert (pkg / "py.typed").is_file()
    stubs = (pkg / "__init__.pyi").read_text()
    assert "class NeedsAttention(KvmstorError):" in stubs
    for cls in ("NfsDatastore", "SmbDatastore", "BlockDatastore"):
        assert f"class {cls}:" in stubs
        assert hasattr(kvmstor, cls)
    assert "def connect(" in stubs
