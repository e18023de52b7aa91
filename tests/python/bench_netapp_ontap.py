"""The netapp-ontap side of `cargo xtask bench`: the same work as examples/src/bin/bench_ontap.rs.

    bench_netapp_ontap.py stream [--page-size N]
        stream every volume through get_collection() paging (fields=name,size)
    bench_netapp_ontap.py lun-cycles [--count N]
        N times: create a LUN, map it to an igroup, unmap it, delete it

The simulator's address comes from ONTAP_SIM_URL, ONTAP_SIM_CA, ONTAP_SIM_USER and
ONTAP_SIM_PASSWORD. Prints one JSON line: client, workload, items, seconds, peak_rss_kib (this
process's own high-water mark, from getrusage).
"""

import argparse
import json
import os
import resource
import sys
import time
import urllib.parse

import netapp_ontap
from netapp_ontap import HostConnection, config
from netapp_ontap.resources import Igroup, Lun, LunMap, Volume

MIB = 1024 * 1024


def connect():
    url = urllib.parse.urlsplit(os.environ["ONTAP_SIM_URL"])
    config.CONNECTION = HostConnection(
        url.hostname,
        port=url.port or 443,
        username=os.environ["ONTAP_SIM_USER"],
        password=os.environ["ONTAP_SIM_PASSWORD"],
        verify=os.environ["ONTAP_SIM_CA"],
        poll_interval=1,
        poll_timeout=120,
    )


def stream(page_size):
    count = 0
    started = time.perf_counter()
    for volume in Volume.get_collection(fields="name,size", max_records=page_size):
        if volume.name:
            count += 1
    return count, time.perf_counter() - started


def lun_cycles(count):
    tag = f"bpy{os.getpid()}"
    volume = Volume(
        name=f"{tag}_vol", svm={"name": "svm1"}, aggregates=[{"name": "aggr1"}], size=1024 * MIB
    )
    volume.post(poll=True)
    igroup = Igroup(
        name=f"{tag}_ig",
        svm={"name": "svm1"},
        protocol="iscsi",
        os_type="linux",
        initiators=[{"name": f"iqn.1994-05.com.redhat:{tag}"}],
    )
    igroup.post(poll=True)
    done = 0
    started = time.perf_counter()
    for i in range(count):
        lun = Lun(
            svm={"name": "svm1"},
            name=f"/vol/{tag}_vol/lun{i}",
            os_type="linux",
            space={"size": 16 * MIB},
        )
        lun.post(poll=True)
        lun_map = LunMap(svm={"name": "svm1"}, lun={"name": lun.name}, igroup={"name": igroup.name})
        lun_map.post(poll=True)
        lun_map.delete(poll=True)
        lun.delete(poll=True)
        done += 1
    elapsed = time.perf_counter() - started
    igroup.delete(poll=True)
    volume.delete(poll=True)
    return done, elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="workload", required=True)
    p_stream = sub.add_parser("stream")
    p_stream.add_argument("--page-size", type=int, default=1000)
    p_luns = sub.add_parser("lun-cycles")
    p_luns.add_argument("--count", type=int, default=1000)
    args = parser.parse_args()

    connect()
    if args.workload == "stream":
        items, seconds = stream(args.page_size)
        workload = "stream"
    else:
        items, seconds = lun_cycles(args.count)
        workload = "lun_cycles"
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "client": "netapp-ontap",
                "version": netapp_ontap.__version__,
                "workload": workload,
                "items": items,
                "seconds": round(seconds, 4),
                "peak_rss_kib": peak_kib,
            }
        )
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
