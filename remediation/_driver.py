"""The seam between the remediation engine and whatever runs the nodes."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


class NodeStatus(enum.StrEnum):
    SERVING = "serving"
    DRAINING = "draining"
    DRAINED = "drained"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class NodeState:
    name: str
    status: NodeStatus
    healthy: bool
    in_flight: int
    url: str = ""


@runtime_checkable
class FleetDriver(Protocol):
    """Implementations: the reference fleet's router admin API; later Kubernetes."""

    def nodes(self) -> list[NodeState]: ...

    def drain(self, node: str) -> None: ...

    def undrain(self, node: str) -> None: ...

    def cycle(self, node: str) -> None: ...
