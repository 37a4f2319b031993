"""The kernels page's rows: each node's latest kernel profile and its diff against a
healthy peer's, from the profiles the remediation engine stored (`remediation.ProfileLog`).

The diff is remediation's own (`diff_profiles`): the page ranks ops exactly as the
incident note did. A healthy peer is a profiled node with no active alert naming it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from remediation import StoredProfile, diff_profiles

from ._node_order import natural_sort_key

TOP_OPS = 3

__all__ = ["KernelDiffRow", "KernelRow", "ProfileReader", "kernel_rows"]


class ProfileReader(Protocol):
    """The read side of stored kernel profiles (`remediation.ProfileLog` is one)."""

    def latest_per_node(self) -> Sequence[StoredProfile]: ...


@dataclass(frozen=True, slots=True)
class KernelRow:
    node: str
    taken_at_s: float
    seconds: float
    device: str
    top_ops: str
    """The largest ops by share of self time, e.g. `aten::mm 62.0%, aten::addmm 30.0%`."""


@dataclass(frozen=True, slots=True)
class KernelDiffRow:
    node: str
    peer: str | None
    """None: no healthy peer has a stored profile."""
    regressed_ops: str
    """Ops whose share rose most against the peer, e.g. `aten::mm 12.0% -> 62.0%`."""


def kernel_rows(
    profiles: Sequence[StoredProfile], alerting_nodes: Collection[str]
) -> tuple[list[KernelRow], list[KernelDiffRow]]:
    """Latest profile per node and, for each, the diff against the first healthy peer."""
    ordered = sorted(profiles, key=lambda stored: natural_sort_key(stored.table.node))
    latest = [
        KernelRow(
            node=stored.table.node,
            taken_at_s=stored.taken_at_s,
            seconds=stored.seconds,
            device=stored.table.device,
            top_ops=", ".join(f"{op.name} {op.share:.1%}" for op in stored.table.ops[:TOP_OPS])
            or "no ops recorded",
        )
        for stored in ordered
    ]
    healthy = [stored for stored in ordered if stored.table.node not in alerting_nodes]
    diffs = []
    for stored in ordered:
        peer = next((p for p in healthy if p.table.node != stored.table.node), None)
        if peer is None:
            diffs.append(KernelDiffRow(stored.table.node, None, "no healthy peer profiled"))
            continue
        regressions = diff_profiles(stored.table, peer.table, top=TOP_OPS)
        text = ", ".join(
            f"{row.name} {row.peer_share:.1%} \N{RIGHTWARDS ARROW} {row.suspect_share:.1%}"
            for row in regressions
        )
        diffs.append(KernelDiffRow(stored.table.node, peer.table.node, text or "no op rose"))
    return latest, diffs
