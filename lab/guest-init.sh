#!/bin/bash
# Runs inside the lab guest (virtme-ng: the host's root read-only, tmpfs over /etc /var /tmp).
# Prepares the kernel targets and daemons, starts ontap-sim with the kernel backend, then
# runs the lab test binaries. Everything else is Rust: see xtask/src/lab.rs and
# host-storage/tests/lab_*.rs.
#   usage: guest-init.sh OUT_DIR     (OUT_DIR/plan.env is written by `cargo xtask lab`)
# Demo mode (`cargo xtask demo`: LAB_MODE=demo, LAB_DEMO_BIN in plan.env): the same daemons,
# but no separate simulator; the demo binary starts its own (in-process, kernel backend)
# and its output goes to OUT_DIR/demo.txt, its exit code to OUT_DIR/demo.rc.
set -u
OUT=$1
. "$OUT/plan.env" # LAB_SIM_BIN, LAB_TESTS (one binary path per line), LAB_FILTER
LAB_MODE=${LAB_MODE:-test}
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp/home LC_ALL=C
mkdir -p "$HOME" "$OUT/results" "$OUT/fixtures"
exec >"$OUT/guest.log" 2>&1
t() { echo "[$(cut -d' ' -f1 /proc/uptime)] $*"; }
t "guest up: $(uname -r)"

for m in configfs loop btrfs nfsd nfs nfsv4 cifs iscsi_tcp target_core_mod target_core_file iscsi_target_mod \
    nvme_tcp nvmet nvmet_tcp dm_multipath dm_round_robin autofs4 ocfs2 ocfs2_stack_o2cb ocfs2_dlmfs dlm gfs2; do
  modprobe "$m" || t "modprobe $m failed"
done
mountpoint -q /sys/kernel/config || mount -t configfs configfs /sys/kernel/config
t "modules loaded"
# virtme-ng bind-mounts a file over /etc/fstab; fstab edits write a temporary file and
# rename it over /etc/fstab, which a mount point refuses (EBUSY): keep a plain file.
if grep -q ' /etc/fstab ' /proc/self/mountinfo; then
  cp /etc/fstab /run/fstab.virtme && umount /etc/fstab && cat /run/fstab.virtme >/etc/fstab
fi
# ocfs2-tools hard-code ocfs2_dlmfs at /dlm (the directory is created on the host by xtask)
mount -t ocfs2_dlmfs ocfs2_dlmfs /dlm || t "ocfs2_dlmfs mount failed"

# udev: /dev/disk/by-* and the events host-storage's DeviceWaiter listens to
/lib/systemd/systemd-udevd --daemon && udevadm trigger --action=add && udevadm settle -t 30
t "udevd started"

# NFS server: short lease and grace so that v4 mounts do not wait 90 s
mkdir -p /run/rpcbind /var/lib/nfs/v4recovery /etc/exports.d
mountpoint -q /proc/fs/nfsd || mount -t nfsd nfsd /proc/fs/nfsd
echo 10 >/proc/fs/nfsd/nfsv4leasetime
echo 10 >/proc/fs/nfsd/nfsv4gracetime
# lockd's grace (default 5 x nlm_timeout = 50 s) also holds NFSv4 locks back: qemu-img's
# first lock on an NFS datastore waited ~50 s for it in an early run (the demo).
[ -w /proc/sys/fs/nfs/nlm_grace_period ] && echo 10 >/proc/sys/fs/nfs/nlm_grace_period
: >/etc/exports
rpcbind -w && exportfs -ra && rpc.mountd && rpc.nfsd 8
t "knfsd started"

# samba: the simulator writes shares into the include file
mkdir -p /var/lib/samba/private /var/cache/samba /run/samba /var/log/samba
: >/etc/samba/kvmstor-sim.conf
cat >/etc/samba/smb.conf <<'SMB'
[global]
   server role = standalone server
   server min protocol = SMB3
   server multi channel support = yes
   map to guest = never
   # share defaults: the lab user writes as root into the simulator's subvolumes
   force user = root
   log file = /var/log/samba/log.%m
   include = /etc/samba/kvmstor-sim.conf
SMB
useradd -M -s /usr/sbin/nologin labsmb
printf 'lab-smb-pass-1\nlab-smb-pass-1\n' | smbpasswd -a -s labsmb >/dev/null
smbd -D && t "smbd started"

# autofs: an empty master map; host-storage adds its `/-` line and sends SIGHUP
echo "# kvmstor lab" >/etc/auto.master
automount -p /run/autofs.pid && t "automount started"

# initiators
mkdir -p /etc/iscsi /run/lock/iscsi /var/lib/iscsi /etc/nvme /run/multipathd
echo "InitiatorName=iqn.1994-05.com.redhat:kvmstor-lab" >/etc/iscsi/initiatorname.iscsi
# nvme gen-hostnqn would derive all zeros from QEMU's DMI product UUID
echo "nqn.2014-08.org.nvmexpress:uuid:$(cat /proc/sys/kernel/random/uuid)" >/etc/nvme/hostnqn
cat /proc/sys/kernel/random/uuid >/etc/nvme/hostid
iscsid && t "iscsid started"
printf 'defaults {\n    user_friendly_names no\n    find_multipaths no\n}\nblacklist {\n    devnode "^(vd|loop|sr|nvme|ram|nbd)"\n}\n' >/etc/multipath.conf
multipathd && t "multipathd started"

# libvirtd for libvirt-pools' lab tests (no systemd: the daemon forks itself)
mkdir -p /var/log/libvirt/qemu /run/libvirt
libvirtd -d && t "libvirtd started"

# the simulator, kernel backend, lab seed (LIFs 127.0.1.1-6 on lo)
# The kernel root must be exportable by knfsd: the /var overlay is not, a tmpfs is.
mkdir -p /var/lib/ontap-sim && mount -t tmpfs -o size=4G,mode=0755 ontap-sim /var/lib/ontap-sim
if [ "$LAB_MODE" = demo ]; then
  t "run demo"
  RUST_BACKTRACE=0 "$LAB_DEMO_BIN" >"$OUT/demo.txt" 2>&1
  echo "$?" >"$OUT/demo.rc"
else
  export ONTAP_SIM_PASSWORD=netapp1!
  "$LAB_SIM_BIN" --listen 127.0.0.1:8443 --lab-seed --backend kernel --kernel-root /var/lib/ontap-sim \
    --kernel-loop-size 4G --cert-out /tmp/sim-ca.pem >"$OUT/ontap-sim.log" 2>&1 &
  sim=$!
  for _ in $(seq 240); do [ -s /tmp/sim-ca.pem ] && kill -0 $sim 2>/dev/null && break; kill -0 $sim 2>/dev/null || break; sleep 0.5; done
  if kill -0 $sim 2>/dev/null; then t "ontap-sim up"; else t "ontap-sim failed: $(tail -3 "$OUT/ontap-sim.log")"; fi

  export LAB_SIM_URL=https://127.0.0.1:8443 LAB_SIM_CA=/tmp/sim-ca.pem LAB_SIM_USER=admin \
    LAB_SIM_PASSWORD=netapp1! LAB_SMB_USER=labsmb LAB_SMB_PASSWORD=lab-smb-pass-1 LAB_OUT="$OUT" RUST_BACKTRACE=0
  unset ONTAP_SIM_PASSWORD
  while read -r bin; do
    [ -n "$bin" ] || continue
    name=$(basename "$bin")
    t "run $name"
    # shellcheck disable=SC2086
    "$bin" --ignored --test-threads=1 $LAB_FILTER >"$OUT/results/$name.txt" 2>&1
    echo "$?" >"$OUT/results/$name.rc"
  done <<<"$LAB_TESTS"
fi
t "done"
dmesg >"$OUT/dmesg.txt"
