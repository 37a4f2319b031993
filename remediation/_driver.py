"""The seam between the remediation engine and whatever runs the nodes."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ._diagnosis import ProfileTable


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
    """Implementations: the reference fleet's router admin API; Kubernetes."""

    def nodes(self) -> list[NodeState]: ...

    def drain(self, node: str) -> None: ...

    def undrain(self, node: str) -> None: ...

    def cycle(self, node: str) -> None: ...

    def set_weight(self, node: str, weight: float) -> None:
        """The `reroute` action: the node's routing weight in its pool (0: no new traffic)."""
        ...

    def profile(self, node: str, seconds: float) -> ProfileTable:
        """A kernel profile of `seconds` of the node's serving (the `profile` action)."""
        ...
