"""NetApp's own `netapp-ontap` library, unchanged, against `ontap-sim`.

Each test does what a netapp-ontap user does against a real cluster and asserts the exact
values the simulator must give back. A failure here means the simulator differs from ONTAP in
a way a real client notices. Run through `cargo xtask test python`.
"""

import datetime
import urllib.parse
import uuid

import pytest
from netapp_ontap.error import NetAppRestError
from netapp_ontap.resources import (
    CifsShare,
    Cluster,
    ExportPolicy,
    Igroup,
    Job,
    Lun,
    LunMap,
    NvmeNamespace,
    NvmeSubsystem,
    NvmeSubsystemMap,
    Snapshot,
    Svm,
    Volume,
)

MIB = 1024 * 1024
SVM = {"name": "svm1"}
AGGR = [{"name": "aggr1"}]


@pytest.fixture
def cleanup():
    """Resources to delete after the test, newest first; ones already gone are fine."""
    created = []
    yield created
    for resource in reversed(created):
        try:
            resource.delete(poll=True)
        except NetAppRestError as err:
            if err.status_code != 404:
                print(f"cleanup of {resource!r} failed: {err}")


def new_volume(cleanup, name, size=100 * MIB, **extra):
    volume = Volume(name=name, svm=SVM, aggregates=AGGR, size=size, **extra)
    volume.post(poll=True)
    cleanup.append(volume)
    return volume


def error_code(err):
    """The ONTAP error code (a JSON string) of a failed call."""
    return (err.response_body or {}).get("error", {}).get("code")


def test_cluster_version(conn):
    cluster = Cluster()
    cluster.get()
    assert cluster.name == "sim-cluster"
    assert cluster.version.generation == 9
    assert cluster.version.major == 16
    assert cluster.version.minor == 1
    assert cluster.version.full.startswith("NetApp Release 9.16.1")


def test_svm_collection(conn):
    svms = list(Svm.get_collection())
    assert "svm1" in [svm.name for svm in svms]
    for svm in svms:
        uuid.UUID(svm.uuid)

    only = list(Svm.get_collection(name="svm1", fields="state"))
    assert len(only) == 1
    assert only[0].name == "svm1"
    assert only[0].state == "running"


def test_volume_create_get_resize_delete(conn, cleanup, unique):
    volume = new_volume(cleanup, f"{unique}_v", size=100 * MIB)
    # post() resolved the new record's key from the Location header (after the job).
    uuid.UUID(volume.uuid)

    fetched = Volume(uuid=volume.uuid)
    fetched.get(fields="name,size,svm.name,aggregates.name,state,style,type")
    assert fetched.name == f"{unique}_v"
    assert fetched.size == 100 * MIB
    assert fetched.svm.name == "svm1"
    assert [a.name for a in fetched.aggregates] == ["aggr1"]
    assert fetched.state == "online"
    assert fetched.style == "flexvol"
    assert fetched.type == "rw"

    fetched.size = 200 * MIB
    fetched.patch(poll=True)
    again = Volume(uuid=volume.uuid)
    again.get(fields="size")
    assert again.size == 200 * MIB

    again.delete(poll=True)
    with pytest.raises(NetAppRestError) as raised:
        Volume(uuid=volume.uuid).get()
    assert raised.value.status_code == 404
    assert error_code(raised.value) == "4"


def test_instance_get_without_fields_returns_record(conn, cleanup, unique):
    volume = new_volume(cleanup, f"{unique}_d", size=64 * MIB)
    fetched = Volume(uuid=volume.uuid)
    fetched.get()
    assert fetched.name == f"{unique}_d"
    assert fetched.size == 64 * MIB
    assert fetched.svm.name == "svm1"


def test_missing_volume_is_404_code_4(conn):
    missing = str(uuid.uuid4())
    with pytest.raises(NetAppRestError) as raised:
        Volume(uuid=missing).get()
    err = raised.value
    assert err.status_code == 404
    assert error_code(err) == "4"
    assert err.response_body["error"]["message"]


def test_snapshot_create_list_delete(conn, cleanup, unique):
    volume = new_volume(cleanup, f"{unique}_s")
    snapshot = Snapshot(volume.uuid, name="snap1", comment="before upgrade")
    snapshot.post(poll=True)
    uuid.UUID(snapshot.uuid)

    names = [s.name for s in Snapshot.get_collection(volume.uuid)]
    assert names == ["snap1"]

    fetched = Snapshot(volume.uuid, uuid=snapshot.uuid)
    fetched.get(fields="name,comment,volume.name")
    assert fetched.name == "snap1"
    assert fetched.comment == "before upgrade"
    assert fetched.volume.name == f"{unique}_s"

    fetched.delete(poll=True)
    assert list(Snapshot.get_collection(volume.uuid)) == []


def test_snapshot_post_collection_quirk(conn, cleanup, unique):
    """README 9.15.1: POST to /storage/volumes/*/snapshots returns a job without a results link,
    so post_collection() polls the job and returns []; get_collection() then finds them."""
    first = new_volume(cleanup, f"{unique}_q1")
    second = new_volume(cleanup, f"{unique}_q2")
    records = [
        Snapshot(name=f"{unique}_snap", svm=SVM, volume={"uuid": first.uuid}),
        Snapshot(name=f"{unique}_snap", svm=SVM, volume={"uuid": second.uuid}),
    ]
    assert Snapshot.post_collection(records, "*") == []

    found = list(Snapshot.get_collection("*", name=f"{unique}_snap", fields="volume.uuid"))
    assert sorted(s.volume.uuid for s in found) == sorted([first.uuid, second.uuid])


def test_lun_post_collection_runs_as_one_job(conn, cleanup, unique):
    """A `records` body forces LUN creation into one job (9.19 lun.py: "wrap individual POST
    requests in a records array to force the operation to be asynchronous"); without a
    results link post_collection() returns [] and get_collection() finds the LUNs."""
    new_volume(cleanup, f"{unique}_bl", size=200 * MIB)
    records = [
        Lun(svm=SVM, name=f"/vol/{unique}_bl/l{i}", os_type="linux", space={"size": 8 * MIB})
        for i in range(2)
    ]
    assert Lun.post_collection(records) == []

    found = list(Lun.get_collection(name=f"/vol/{unique}_bl/*", fields="space.size"))
    cleanup.extend(found)
    assert sorted(lun.name for lun in found) == [f"/vol/{unique}_bl/l0", f"/vol/{unique}_bl/l1"]
    assert [lun.space.size for lun in found] == [8 * MIB, 8 * MIB]


def test_flexclone_create(conn, cleanup, unique):
    parent = new_volume(cleanup, f"{unique}_p")
    Snapshot(parent.uuid, name="base").post(poll=True)
    clone = Volume(
        name=f"{unique}_c",
        svm=SVM,
        clone={
            "parent_volume": {"name": f"{unique}_p"},
            "parent_snapshot": {"name": "base"},
            "is_flexclone": True,
        },
    )
    clone.post(poll=True)
    cleanup.append(clone)
    uuid.UUID(clone.uuid)
    assert clone.uuid != parent.uuid

    clone.get(fields="name,clone,size")
    assert clone.name == f"{unique}_c"
    assert clone.clone.is_flexclone is True
    assert clone.clone.parent_volume.name == f"{unique}_p"
    assert clone.clone.parent_snapshot.name == "base"
    assert clone.size == 100 * MIB


def test_lun_igroup_map(conn, cleanup, unique):
    new_volume(cleanup, f"{unique}_l", size=200 * MIB)
    lun = Lun(
        svm=SVM,
        name=f"/vol/{unique}_l/lun0",
        os_type="linux",
        space={"size": 50 * MIB},
    )
    lun.post(poll=True)
    cleanup.append(lun)
    uuid.UUID(lun.uuid)
    lun.get(fields="name,serial_number,space.size,status.mapped,os_type")
    assert lun.name == f"/vol/{unique}_l/lun0"
    assert len(lun.serial_number) == 12
    assert lun.space.size == 50 * MIB
    assert lun.status.mapped is False
    assert lun.os_type == "linux"

    # IQN strings allow only a-z, 0-9, '.', ':' and '-'.
    initiator = f"iqn.1994-05.com.redhat:{unique.replace('_', '-')}"
    igroup = Igroup(
        name=f"{unique}_ig",
        svm=SVM,
        protocol="iscsi",
        os_type="linux",
        initiators=[{"name": initiator}],
    )
    igroup.post(poll=True)
    cleanup.append(igroup)
    igroup.get(fields="name,protocol,initiators")
    assert igroup.protocol == "iscsi"
    assert [i.name for i in igroup.initiators] == [initiator]

    lun_map = LunMap(svm=SVM, lun={"name": lun.name}, igroup={"name": igroup.name})
    lun_map.post(hydrate=True)
    assert lun_map.logical_unit_number == 0
    assert lun_map.lun.uuid == lun.uuid
    assert lun_map.igroup.uuid == igroup.uuid

    mapped = Lun(uuid=lun.uuid)
    mapped.get(fields="status.mapped")
    assert mapped.status.mapped is True

    lun_map.delete()
    unmapped = Lun(uuid=lun.uuid)
    unmapped.get(fields="status.mapped")
    assert unmapped.status.mapped is False
    assert list(LunMap.get_collection(**{"lun.uuid": lun.uuid})) == []

    lun.delete(poll=True)
    igroup.delete(poll=True)
    with pytest.raises(NetAppRestError) as raised:
        Lun(uuid=lun.uuid).get()
    assert raised.value.status_code == 404


def test_nvme_subsystem_namespace_map(conn, cleanup, unique):
    new_volume(cleanup, f"{unique}_n", size=200 * MIB)
    host_nqn = f"nqn.2014-08.org.nvmexpress:uuid:{uuid.uuid4()}"
    subsystem = NvmeSubsystem(
        name=f"{unique}_ss", svm=SVM, os_type="linux", hosts=[{"nqn": host_nqn}]
    )
    subsystem.post(hydrate=True)
    cleanup.append(subsystem)
    assert subsystem.target_nqn.startswith("nqn.1992-08.com.netapp:sn.")
    assert subsystem.target_nqn.endswith(f":subsystem.{unique}_ss")
    assert [h.nqn for h in subsystem.hosts] == [host_nqn]

    namespace = NvmeNamespace(
        svm=SVM, name=f"/vol/{unique}_n/ns1", os_type="linux", space={"size": 20 * MIB}
    )
    namespace.post(poll=True)
    cleanup.append(namespace)
    namespace.get(fields="name,space.size,os_type")
    assert namespace.name == f"/vol/{unique}_n/ns1"
    assert namespace.space.size == 20 * MIB

    ns_map = NvmeSubsystemMap(
        svm=SVM, subsystem={"name": subsystem.name}, namespace={"name": namespace.name}
    )
    ns_map.post(hydrate=True)
    cleanup.append(ns_map)
    assert ns_map.subsystem.uuid == subsystem.uuid
    assert ns_map.namespace.uuid == namespace.uuid
    assert ns_map.nsid == "00000001h"
    assert ns_map.anagrpid

    ns_map.delete()
    assert list(NvmeSubsystemMap.get_collection(**{"subsystem.uuid": subsystem.uuid})) == []


def test_export_policy_with_rules(conn, cleanup, unique):
    policy = ExportPolicy(
        name=f"{unique}_ep",
        svm=SVM,
        rules=[
            {
                "clients": [{"match": "10.0.0.0/24"}],
                "ro_rule": ["sys"],
                "rw_rule": ["sys"],
                "superuser": ["none"],
                "protocols": ["nfs4"],
            },
            {
                "clients": [{"match": "192.168.1.10"}],
                "ro_rule": ["any"],
                "rw_rule": ["never"],
                "superuser": ["none"],
                "protocols": ["nfs3"],
            },
        ],
    )
    policy.post(hydrate=True)
    cleanup.append(policy)
    assert isinstance(policy.id, int)
    assert policy.name == f"{unique}_ep"
    assert [r.index for r in policy.rules] == [1, 2]
    assert [c.match for c in policy.rules[0].clients] == ["10.0.0.0/24"]
    assert policy.rules[0].rw_rule == ["sys"]
    assert policy.rules[1].protocols == ["nfs3"]

    found = list(ExportPolicy.get_collection(name=f"{unique}_ep"))
    assert [p.id for p in found] == [policy.id]


def test_cifs_share(conn, cleanup, unique):
    new_volume(cleanup, f"{unique}_cv", nas={"path": f"/{unique}_cv"})
    share = CifsShare(name=f"{unique}_share", svm=SVM, path=f"/{unique}_cv", comment="team")
    share.post(hydrate=True)
    cleanup.append(share)
    assert share.name == f"{unique}_share"
    assert share.path == f"/{unique}_cv"
    assert share.comment == "team"
    uuid.UUID(share.svm.uuid)

    found = list(CifsShare.get_collection(name=f"{unique}_share", fields="path"))
    assert [(s.name, s.path) for s in found] == [(f"{unique}_share", f"/{unique}_cv")]

    share.delete()
    with pytest.raises(NetAppRestError) as raised:
        CifsShare(**{"svm.uuid": share.svm.uuid, "name": f"{unique}_share"}).get()
    assert raised.value.status_code == 404


def test_cifs_share_name_with_space(conn, cleanup, unique):
    """netapp-ontap puts keys into the path with quote_plus, so the share "a b" is addressed as
    /api/protocols/cifs/shares/{svm.uuid}/a+b: a '+' in a key segment means a space (a real
    '+' arrives as %2B)."""
    new_volume(cleanup, f"{unique}_sp", nas={"path": f"/{unique}_sp"})
    share = CifsShare(name=f"{unique} share", svm=SVM, path=f"/{unique}_sp")
    share.post(hydrate=True)
    cleanup.append(share)
    assert share.name == f"{unique} share"
    assert share.path == f"/{unique}_sp"

    share.delete()
    with pytest.raises(NetAppRestError) as raised:
        CifsShare(**{"svm.uuid": share.svm.uuid, "name": f"{unique} share"}).get()
    assert raised.value.status_code == 404


def test_collection_paging_and_count(conn, cleanup, unique, requests_seen):
    names = [f"{unique}_pg{i}" for i in range(5)]
    for name in names:
        new_volume(cleanup, name, size=20 * MIB)
    requests_seen.clear()

    found = list(Volume.get_collection(name=f"{unique}_pg*", max_records=2))
    assert sorted(v.name for v in found) == names

    pages = [r for r in requests_seen if r[0] == "GET" and r[1] == "/api/storage/volumes"]
    assert len(pages) == 3
    for _method, _path, query in pages:
        params = urllib.parse.parse_qs(query)
        assert params["max_records"] == ["2"]
        assert params["name"] == [f"{unique}_pg*"]

    assert Volume.count_collection(name=f"{unique}_pg*") == 5

    # netapp-ontap sends the space in "name desc" as %20, as ONTAP wants it.
    requests_seen.clear()
    ordered = Volume.get_collection(name=f"{unique}_pg*", order_by="name desc", max_records=2)
    assert [v.name for v in ordered] == list(reversed(names))
    first_query = [r[2] for r in requests_seen if r[1] == "/api/storage/volumes"][0]
    assert "order_by=name%20desc" in first_query


def test_job_failure_surfaces_through_poll(conn, cleanup, unique):
    volume = new_volume(cleanup, f"{unique}_lk", snapshot_locking_enabled=True)
    expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
    snapshot = Snapshot(
        volume.uuid,
        name="locked",
        snaplock={"expiry_time": expiry.replace(microsecond=0)},
    )
    snapshot.post(poll=True)

    with pytest.raises(NetAppRestError) as raised:
        snapshot.delete(poll=True)
    assert str(raised.value).startswith("Job failed: ")
    assert "has not expired or is locked" in str(raised.value)

    failed = list(Job.get_collection(state="failure", fields="code,message,description"))
    ours = [j for j in failed if "has not expired or is locked" in (j.message or "")]
    assert ours, f"no failed job in {failed!r}"
    assert ours[-1].code == 1638555

    still_there = Snapshot(volume.uuid, uuid=snapshot.uuid)
    still_there.get(fields="name")
    assert still_there.name == "locked"
