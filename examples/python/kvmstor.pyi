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

class Ontap:
    """One ONTAP cluster and the hosts workflows may touch. Calls release the GIL."""
    @property
    def url(self) -> str: ...
    def add_host(self, name: str, address: str, *, libvirt_uri: str = "qemu:///system") -> None: ...
    def add_simulated_host(self, name: str, address: str, root: str | PathLike[str]) -> None: ...
    def hosts(self) -> list[str]: ...
    def plan_attach(self, datastore: NfsDatastore) -> Plan: ...
    def plan_detach(self, datastore: NfsDatastore) -> Plan: ...
    def attach(self, datastore: NfsDatastore, *, journal: str | PathLike[str] | None = None) -> RunReport: ...
    def detach(self, datastore: NfsDatastore, *, journal: str | PathLike[str] | None = None) -> RunReport: ...
    def snapshot(self, svm: str, volume: str, name: str) -> Snapshot: ...
    def list_snapshots(self, svm: str, volume: str) -> list[Snapshot]: ...
    def clone_file(self, svm: str, volume: str, template: str, disk: str) -> None: ...
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
