"""Drives ontap-sim with NetApp's official `netapp-ontap` Python client.

Run by tests/python_client.rs (ignored by default; see there)."""
import netapp_ontap
from netapp_ontap import config, HostConnection, NetAppRestError
from netapp_ontap.resources import Volume, Snapshot, Svm, Cluster, Aggregate, IpInterface, ExportPolicy, CifsShare, FileClone, Job
netapp_ontap.utils.DEBUG = 0
import os
conn = HostConnection(os.environ["SIM_HOST"], port=int(os.environ["SIM_PORT"]), username="admin", password=os.environ["SIM_PASSWORD"], verify=True, poll_interval=0.1)
config.CONNECTION = conn
c = Cluster(); c.get(); print("cluster", c.name, c.version.full)
print("svms", [s.name for s in Svm.get_collection()])
print("aggrs", sorted((a.name, a.space.block_storage.available) for a in Aggregate.get_collection(fields="space")))
v = Volume(name="pyvol", svm={"name": "svm1"}, aggregates=[{"name": "aggr1"}], size="5GB", nas={"path": "/pyvol"})
r = v.post(hydrate=True)
print("post", r.http_response.status_code, v.uuid, v.size, v.nas.path)
print("count", Volume.count_collection())
print("list", [x.name for x in Volume.get_collection(max_records=1)])
v.size = 10*1024**3
v.patch()
v.get(); print("resized", v.size)
clone = Volume(name="pyclone", svm={"name": "svm1"}, clone={"parent_volume": {"name": "pyvol"}, "is_flexclone": True})
clone.post(); print("clone uuid", clone.uuid)
s = Snapshot(v.uuid, name="pysnap"); s.post(); print("snap", s.uuid)
print("snaps", [x.name for x in Snapshot.get_collection(v.uuid)])
fc = FileClone(volume={"name": "pyvol"}, source_path="a.img", destination_path="b.img"); fc.post(); print("file clone done")
ep = ExportPolicy(name="pyexp", svm={"name": "svm1"}, rules=[{"clients": [{"match": "0.0.0.0/0"}], "ro_rule": ["any"], "rw_rule": ["any"]}])
ep.post(); print("exp id", ep.id)
sh = CifsShare(name="pyshare", svm={"name": "svm1"}, path="/pyvol"); sh.post(); print("share", sh.name)
lifs = IpInterface.get_collection(services="data_nvme_tcp", fields="ip.address")
print("nvme lifs", sorted(l.ip.address for l in lifs))
try:
    Volume(uuid="00000000-0000-0000-0000-000000000000").get()
except NetAppRestError as e:
    print("err", e.http_err_response.http_response.status_code, e.response_body if hasattr(e,'response_body') else e)
try:
    v.delete()
except NetAppRestError as e:
    print("delete failed as expected:", e)
clone.delete(); print("clone deleted")
Volume.delete_collection(name="pyvol"); print("deleted by query")
print("final count", Volume.count_collection())
