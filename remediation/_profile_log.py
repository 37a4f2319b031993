"""Kernel profiles kept in the database, so the dashboard can show the latest per node and
diff it against a healthy peer after the incident note was written.

`ProfilingDriver` wraps any `FleetDriver` and records every profile its `profile` step
takes (the suspect's and the peer's), so the engine's diagnosis stores them without a
change to how it profiles.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from ._diagnosis import ProfileOp, ProfileTable
from ._driver import FleetDriver, NodeState

__all__ = ["ProfileLog", "ProfilingDriver", "StoredProfile"]


@dataclass(frozen=True, slots=True)
class StoredProfile:
    id: int
    taken_at_s: float
    seconds: float
    """How long the profile ran."""
    table: ProfileTable


_metadata = sa.MetaData()
_profiles = sa.Table(
    "remediation_profiles",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("node", sa.String(255), nullable=False, index=True),
    sa.Column("taken_at_s", sa.Double, nullable=False),
    sa.Column("seconds", sa.Double, nullable=False),
    sa.Column("device", sa.String(255), nullable=False),
    sa.Column("share_of", sa.String(64), nullable=False),
    sa.Column("ops_json", sa.Text, nullable=False),
)


class ProfileLog:
    """Profiles in table `remediation_profiles`, one row per profile taken."""

    def __init__(self, database: sa.Engine) -> None:
        self._engine = database
        _metadata.create_all(database, checkfirst=True)

    def record(self, table: ProfileTable, *, taken_at_s: float, seconds: float) -> int:
        ops = [
            {"name": op.name, "calls": op.calls, "self_ms": op.self_ms, "share": op.share}
            for op in table.ops
        ]
        with self._engine.begin() as connection:
            result = connection.execute(
                _profiles.insert().values(
                    node=table.node,
                    taken_at_s=taken_at_s,
                    seconds=seconds,
                    device=table.device,
                    share_of=table.share_of,
                    ops_json=json.dumps(ops),
                )
            )
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def latest_per_node(self) -> list[StoredProfile]:
        """Each node's most recent profile, by node name."""
        newest = (
            sa.select(sa.func.max(_profiles.c.id).label("id"))
            .group_by(_profiles.c.node)
            .subquery()
        )
        query = (
            sa.select(_profiles)
            .where(_profiles.c.id.in_(sa.select(newest.c.id)))
            .order_by(_profiles.c.node)
        )
        with self._engine.connect() as connection:
            return [_stored(row._mapping) for row in connection.execute(query)]


def _stored(row: sa.RowMapping) -> StoredProfile:
    ops = tuple(
        ProfileOp(str(op["name"]), int(op["calls"]), float(op["self_ms"]), float(op["share"]))
        for op in json.loads(row["ops_json"])
    )
    return StoredProfile(
        id=int(row["id"]),
        taken_at_s=float(row["taken_at_s"]),
        seconds=float(row["seconds"]),
        table=ProfileTable(
            node=str(row["node"]),
            device=str(row["device"]),
            share_of=str(row["share_of"]),
            ops=ops,
        ),
    )


class ProfilingDriver:
    """A `FleetDriver` that records every profile `driver` takes into `log`."""

    def __init__(
        self, driver: FleetDriver, log: ProfileLog, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._driver = driver
        self._log = log
        self._clock = clock

    def nodes(self) -> list[NodeState]:
        return self._driver.nodes()

    def drain(self, node: str) -> None:
        self._driver.drain(node)

    def undrain(self, node: str) -> None:
        self._driver.undrain(node)

    def cycle(self, node: str) -> None:
        self._driver.cycle(node)

    def set_weight(self, node: str, weight: float) -> None:
        self._driver.set_weight(node, weight)

    def profile(self, node: str, seconds: float) -> ProfileTable:
        table = self._driver.profile(node, seconds)
        self._log.record(table, taken_at_s=self._clock(), seconds=seconds)
        return table
