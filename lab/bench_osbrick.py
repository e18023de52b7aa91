#!/usr/bin/env python3
"""One os-brick attach/detach for the lab benchmark (host-storage/tests/bench_lab.rs).

Runs inside the lab guest as root with the venv `cargo xtask lab-bench` prepares
(target/lab/osbrick-venv, `pip install os-brick`). os-brick's privileged calls go through
oslo.privsep; `set_client_mode(False)` runs them in this process (we are already root)
instead of starting a privsep daemon through sudo/rootwrap.

    usage: bench_osbrick.py JSON
      {"protocol": "iscsi", "iqn": ..., "portals": ["ip:port", ...], "lun": N, "serial": ...}
      {"protocol": "nvme", "nqn": ..., "ports": ["ip", ...], "uuid": ...}

Prints one JSON line: {"attach_s": ..., "detach_s": ...}. Attach ends when the device is
ready with both paths (the map's two disks carry the serial / the namespace head with the
UUID has two paths); imports and setup are not timed, nor the `udevadm settle` between
attach and detach (every method's detach starts from a settled host).
"""

import json
import os
import subprocess
import sys
import time


def setup():
    from oslo_concurrency import lockutils
    from oslo_config import cfg

    import os_brick
    from os_brick import privileged

    lock_path = "/tmp/osbrick-locks"
    os.makedirs(lock_path, exist_ok=True)
    cfg.CONF([], project="kvmstor-bench")
    lockutils.set_defaults(lock_path)
    os_brick.setup(cfg.CONF)
    privileged.default.set_client_mode(False)
    privileged.brick_privsep_hide_output.set_client_mode(False)


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def lun_map(serial):
    """(dm name, number of slaves) of the multipath map whose disks carry `serial`."""
    for name in os.listdir("/sys/block"):
        if not name.startswith("dm-"):
            continue
        uuid = (read(f"/sys/block/{name}/dm/uuid") or b"").decode().strip()
        if not uuid.startswith("mpath-"):
            continue
        slaves = os.listdir(f"/sys/block/{name}/slaves")
        ok = slaves and all(
            (read(f"/sys/block/{s}/device/vpd_pg80") or b"")[4:].startswith(serial.encode())
            for s in slaves
        )
        if ok:
            return name, len(slaves)
    return None


def nvme_ns(uuid):
    """(head name, number of paths) of the namespace head with `uuid`."""
    for name in os.listdir("/sys/block"):
        if not name.startswith("nvme") or "c" in name:
            continue
        if (read(f"/sys/block/{name}/uuid") or b"").decode().strip() != uuid:
            continue
        return name, live_paths(name)
    return None


def live_paths(head):
    """Live controllers carrying a path (nvmeScKnN) of the head nvmeSnN."""
    subsys, ns = head[len("nvme"):].split("n", 1)
    n = 0
    for ctrl in os.listdir("/sys/class/nvme"):
        k = ctrl[len("nvme"):]
        base = f"/sys/class/nvme/{ctrl}"
        state = (read(f"{base}/state") or b"").decode().strip()
        if state == "live" and os.path.exists(f"{base}/nvme{subsys}c{k}n{ns}"):
            n += 1
    return n


def settle():
    subprocess.run(["udevadm", "settle", "--timeout=60"], check=True)


def poll(what, f, timeout=90):
    deadline = time.monotonic() + timeout
    while True:
        v = f()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


def main():
    args = json.loads(sys.argv[1])
    setup()
    from os_brick.initiator import connector

    if args["protocol"] == "iscsi":
        conn = connector.InitiatorConnector.factory(
            "ISCSI", None, use_multipath=True, device_scan_attempts=10
        )
        n = len(args["portals"])
        props = {
            "target_portals": args["portals"],
            "target_iqns": [args["iqn"]] * n,
            "target_luns": [args["lun"]] * n,
            "target_discovered": False,
        }
        serial = args["serial"]
        t = time.monotonic()
        info = conn.connect_volume(props)
        poll("map with two paths", lambda: (lun_map(serial) or (None, 0))[1] == 2)
        attach = time.monotonic() - t
        settle()
        t = time.monotonic()
        conn.disconnect_volume(props, info, force=False, ignore_errors=False)
        poll("map gone", lambda: lun_map(serial) is None)
        detach = time.monotonic() - t
    elif args["protocol"] == "nvme":
        conn = connector.InitiatorConnector.factory(
            "NVME", None, use_multipath=True, device_scan_attempts=10
        )
        props = {
            "target_nqn": args["nqn"],
            "vol_uuid": args["uuid"],
            "portals": [[p, "4420", "tcp"] for p in args["ports"]],
        }
        uuid = args["uuid"]
        t = time.monotonic()
        info = conn.connect_volume(props)
        poll("namespace with two paths", lambda: (nvme_ns(uuid) or (None, 0))[1] == 2)
        attach = time.monotonic() - t
        settle()
        t = time.monotonic()
        conn.disconnect_volume(props, info, force=False, ignore_errors=False)
        poll("namespace gone", lambda: nvme_ns(uuid) is None)
        detach = time.monotonic() - t
    else:
        raise SystemExit(f"unknown protocol {args['protocol']}")
    print(json.dumps({"attach_s": attach, "detach_s": detach, "device": info.get("path")}))


if __name__ == "__main__":
    main()
