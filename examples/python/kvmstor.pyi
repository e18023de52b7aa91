"""Type stubs of the `kvmstor` extension module (Python bindings of the kvmstor crate)."""

from os import PathLike
from typing import Any, Literal, TypedDict

class KvmstorError(Exception):
    """Base class of every kvmstor error."""

class OntapError(KvmstorError):
    """ONTAP refused a call."""
    code: str | None
    """ONTAP error code, e.g. "917927"."""
    message: str
    status: int | None
    """HTTP status."""
    details: dict[str, Any] | None

class StepFailed(KvmstorError):
    """A step failed; every earlier step was undone."""
    step: str
    index: int
    cause: str | None
    rollback: Literal["clean"]
    ontap_code: str | None
    undone: int
    remaining: list[str]
    failed_undo: None
    details: dict[str, Any]

class FailedUndo(TypedDict):
    step: str
    error: str | None

class NeedsAttention(KvmstorError):
    """A step failed and an undo failed too: `remaining` steps are still applied."""
    step: str
    index: int
    cause: str | None
    rollback: Literal["incomplete"]
    ontap_code: str | None
    undone: None
    remaining: list[str]
    failed_undo: FailedUndo | None
    details: dict[str, Any]

class PlannedAction(TypedDict):
    step: int
    step_label: str
    action: Any

class Plan(TypedDict):
    workflow: str
    steps: list[str]
    actions: list[PlannedAction]

class StepReport(TypedDict):
    label: str
    state: str
    changed: bool | None

class RunReport(TypedDict):
    outcome: Literal["applied", "already_applied", "unwound", "nothing_to_recover"]
    changed: int
    workflow: str
    run_id: str
    status: str
    steps: list[StepReport]

class Snapshot(TypedDict):
    name: str
    uuid: str
    create_time: str | None
    locked_until: str | None

class VolumeInfo(TypedDict):
    name: str | None
    uuid: str | None
    svm: str | None
    size: int | None

class PoolInfo(TypedDict):
    name: str
    active: bool
    persistent: bool
    autostart: bool

class NfsDatastore:
    """An NFS datastore: an ONTAP volume exported to the hosts, mounted, and a libvirt pool."""
    def __init__(
        self,
        svm: str,
        name: str,
        aggregate: str,
        size: int | str,
        hosts: list[str],
        *,
        volume: str | None = None,
        mount_point: str | PathLike[str] | None = None,
        persist: Literal["fstab", "autofs"] = "fstab",
        pool_kind: Literal["dir", "netfs"] = "dir",
        delete_ontap_objects: bool = False,
    ) -> None: ...
    @property
    def name(self) -> str: ...
    @property
    def volume(self) -> str: ...
    @property
    def size(self) -> int: ...

class SmbDatastore:
    """An SMB datastore: an ONTAP volume (NTFS or mixed security) shared over SMB 3.1.1 with
    the account given full control in the share's ACL; per host a 0600 credentials file
    (the only place the password goes), a multichannel mount and a libvirt pool."""
    def __init__(
        self,
        svm: str,
        name: str,
        aggregate: str,
        size: int | str,
        hosts: list[str],
        *,
        username: str,
        domain: str | None = None,
        password: str | None = None,
        password_file: str | PathLike[str] | None = None,
        mount_point: str | PathLike[str] | None = None,
        persist: Literal["fstab", "autofs"] = "fstab",
        mixed_security: bool = False,
        encryption: bool = False,
        max_channels: int | None = None,
        delete_ontap_objects: bool = False,
        share_name: str | None = None,
        share_acl: list[tuple[str, str] | tuple[str, str, str]] | None = None,
    ) -> None:
        """`password` (or the first line of `password_file`) is needed to attach; a detach
        works without it. It never appears in repr(), plans, journals or errors.

        `share_name` names the share (default: `name`). `share_acl` adds entries beside the
        account's full control: `(who, permission)` for a Windows user or group, or
        `(who, kind, permission)` with kind `windows`, `unix_user` or `unix_group`;
        permission `no_access`, `read`, `change` or `full_control`. A bad kind or
        permission raises KvmstorError here; a duplicate entry, or one naming the mount
        account, when the attach is planned."""
    @property
    def name(self) -> str: ...
    @property
    def share(self) -> str: ...
    @property
    def volume(self) -> str: ...
    @property
    def size(self) -> int: ...

class BlockDatastore:
    """A block datastore: a LUN (iSCSI, FC) or NVMe namespace (NVMe/TCP) shared by every host,
    formatted once with OCFS2 (o2cb) or GFS2 (corosync + DLM), mounted on each host, and a
    libvirt pool. The hosts' IQNs, WWPNs or NQNs are read from the hosts."""
    def __init__(
        self,
        svm: str,
        name: str,
        aggregate: str,
        size: int | str,
        hosts: list[str],
        *,
        protocol: Literal["iscsi", "fc", "fcp", "nvme", "nvme-tcp"] = "iscsi",
        fs: Literal["ocfs2", "gfs2"] = "ocfs2",
        mount_point: str | PathLike[str] | None = None,
        cluster: str | None = None,
        thick: bool = False,
        device_wait: float | None = None,
        delete_ontap_objects: bool = False,
    ) -> None: ...
    @property
    def name(self) -> str: ...
    @property
    def volume(self) -> str: ...
    @property
    def size(self) -> int:
        """The disk's size; the volume is 10% larger."""
    @property
    def protocol(self) -> Literal["iscsi", "fcp", "nvme-tcp"]: ...
    @property
    def disk_path(self) -> str: ...

Datastore = NfsDatastore | SmbDatastore | BlockDatastore

class Ontap:
    """One ONTAP cluster and the hosts workflows may touch. Calls release the GIL."""
    @property
    def url(self) -> str: ...
    def add_host(self, name: str, address: str, *, libvirt_uri: str = "qemu:///system") -> None: ...
    def add_simulated_host(
        self, name: str, address: str, root: str | PathLike[str], *, fc_svm: str | None = None
    ) -> None:
        """A host whose side is simulated (scratch root, fake kernel, libvirt test:///default);
        ONTAP stays real."""
    def hosts(self) -> list[str]: ...
    def plan_attach(self, datastore: Datastore) -> Plan: ...
    def plan_detach(self, datastore: Datastore) -> Plan: ...
    def attach(self, datastore: Datastore, *, journal: str | PathLike[str] | None = None) -> RunReport: ...
    def detach(self, datastore: Datastore, *, journal: str | PathLike[str] | None = None) -> RunReport: ...
    def recover(
        self,
        datastore: Datastore,
        journal: str | PathLike[str],
        *,
        mode: Literal["unwind", "resume"] = "unwind",
    ) -> RunReport: ...
    def snapshot(self, svm: str, volume: str, name: str) -> Snapshot: ...
    def list_snapshots(self, svm: str, volume: str) -> list[Snapshot]: ...
    def clone_file(self, svm: str, volume: str, template: str, disk: str) -> None: ...
    def flexclone(self, svm: str, volume: str, clone: str, *, snapshot: str | None = None) -> str:
        """FlexClone of the whole volume; returns its UUID."""
    def list_volumes(self, svm: str | None = None) -> list[VolumeInfo]: ...

def connect(
    url: str,
    *,
    username: str = "admin",
    password: str | None = None,
    password_file: str | PathLike[str] | None = None,
    ca_file: str | PathLike[str] | None = None,
    cert_file: str | PathLike[str] | None = None,
    key_file: str | PathLike[str] | None = None,
) -> Ontap: ...

def list_pools(uri: str = "qemu:///system") -> list[PoolInfo]: ...
