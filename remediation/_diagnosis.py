"""Diagnosis of a latency alert: profile the suspect node and a healthy peer, diff the two.

A latency regression from a slow kernel shows up as one op taking a larger share of the
step time on the suspect than on its peer; ranking ops by that rise names the kernel a
person should look at, and the ranking is attached to the incident.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._exceptions import FleetDriverError


@dataclass(frozen=True, slots=True)
class ProfileOp:
    name: str
    calls: int
    self_ms: float
    """Self device time on a GPU, self CPU time otherwise."""
    share: float
    """Of the profile's total self time."""


@dataclass(frozen=True, slots=True)
class ProfileTable:
    """One node's kernel profile: ops by self time, largest first."""

    node: str
    device: str
    share_of: str
    ops: tuple[ProfileOp, ...]


@dataclass(frozen=True, slots=True)
class OpRegression:
    name: str
    suspect_share: float
    peer_share: float

    @property
    def rise(self) -> float:
        return self.suspect_share - self.peer_share


def profile_table(node: str, body: Mapping[str, Any]) -> ProfileTable:
    """The node's `POST /admin/profile` answer (the reference server's `ProfileResult`)."""
    try:
        device = str(body["device"])
        share_of = str(body.get("share_of", "self_cpu_time"))
        key = "self_device_ms" if share_of == "self_device_time" else "self_cpu_ms"
        ops = tuple(
            ProfileOp(str(op["name"]), int(op["calls"]), float(op[key]), float(op["share"]))
            for op in body["ops"]
        )
    except (KeyError, TypeError, ValueError):
        raise FleetDriverError(
            f"the profile of {node} is not a profile table this engine can read: {body!r:.200}"
        ) from None
    return ProfileTable(node=node, device=device, share_of=share_of, ops=ops)


def diff_profiles(suspect: ProfileTable, peer: ProfileTable, *, top: int = 5
                  ) -> list[OpRegression]:
    """Ops whose share of self time rose most from `peer` to `suspect`, largest rise first;
    only ops that rose appear (an op absent on the peer counts from 0)."""
    peer_shares = {op.name: op.share for op in peer.ops}
    suspect_shares: dict[str, float] = {}
    for op in suspect.ops:
        suspect_shares[op.name] = suspect_shares.get(op.name, 0.0) + op.share
    rows = [
        OpRegression(name, share, peer_shares.get(name, 0.0))
        for name, share in suspect_shares.items()
    ]
    risen = [row for row in rows if row.rise > 0]
    risen.sort(key=lambda row: (-row.rise, row.name))
    return risen[:top]


def regression_note(suspect: ProfileTable, peer: ProfileTable,
                    regressions: Sequence[OpRegression]) -> str:
    """The incident note: which ops took a larger share of step time on the suspect."""
    if not regressions:
        return (f"kernel profile diff {suspect.node} vs {peer.node} ({suspect.device}): "
                "no op's share of self time rose")
    lines = [f"kernel profile diff {suspect.node} vs healthy peer {peer.node} "
             f"({suspect.device}, share of {suspect.share_of.replace('_', ' ')}), "
             "top regressed ops:"]
    for rank, row in enumerate(regressions, 1):
        lines.append(f"  {rank}. {row.name}: {row.peer_share:.1%} -> {row.suspect_share:.1%} "
                     f"(+{row.rise:.1%})")
    return "\n".join(lines)
