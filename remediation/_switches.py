"""The kill switch and the circuit breaker, stored in the database.

Both stop automation for the whole fleet, so both must be seen by every process (the control
plane, the CLI, the API) and survive a restart: a paused engine that forgets it was paused
after a crash would act at the worst moment. One row per switch in `remediation_switches`.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

KILL_SWITCH = "kill-switch"
BREAKER = "circuit-breaker"


@dataclass(frozen=True, slots=True)
class KillSwitch:
    """`paused`: no automated action runs; who paused it, when and why."""

    paused: bool
    since_s: float | None
    actor: str | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class BreakerState:
    """`open`: too much of the pool was remediated recently, automation stops until the
    fleet has been healthy for a while. `closed_at_s`: when it last closed (alerts that fired
    while it was open are held to a stricter standard after that)."""

    open: bool
    reason: str | None
    opened_at_s: float | None
    closed_at_s: float | None = None


_metadata = sa.MetaData()
_switches = sa.Table(
    "remediation_switches",
    _metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("engaged", sa.Boolean, nullable=False),
    sa.Column("since_s", sa.Double, nullable=True),
    sa.Column("actor", sa.String(255), nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("released_at_s", sa.Double, nullable=True),
)


class SwitchBoard:
    """Reads and flips the two switches; each flip is one transaction."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        _metadata.create_all(engine, checkfirst=True)

    def kill_switch(self) -> KillSwitch:
        row = self._row(KILL_SWITCH)
        if row is None or not row["engaged"]:
            return KillSwitch(False, None, None, None)
        return KillSwitch(True, row["since_s"], row["actor"], row["reason"])

    def pause(self, *, actor: str, reason: str, at_s: float) -> KillSwitch:
        current = self.kill_switch()
        if not current.paused:
            self._write(KILL_SWITCH, engaged=True, since_s=at_s, actor=actor, reason=reason,
                        released_at_s=None)
        return self.kill_switch()

    def resume(self, *, actor: str, at_s: float) -> KillSwitch:
        self._write(KILL_SWITCH, engaged=False, since_s=None, actor=actor, reason=None,
                    released_at_s=at_s)
        return self.kill_switch()

    def breaker(self) -> BreakerState:
        row = self._row(BREAKER)
        if row is None:
            return BreakerState(False, None, None, None)
        if not row["engaged"]:
            return BreakerState(False, None, row["since_s"], row["released_at_s"])
        return BreakerState(True, row["reason"], row["since_s"], row["released_at_s"])

    def open_breaker(self, *, reason: str, at_s: float) -> BreakerState:
        self._write(BREAKER, engaged=True, since_s=at_s, actor="engine", reason=reason,
                    released_at_s=None)
        return self.breaker()

    def close_breaker(self, *, at_s: float) -> BreakerState:
        current = self.breaker()
        self._write(BREAKER, engaged=False, since_s=current.opened_at_s, actor="engine",
                    reason=None, released_at_s=at_s)
        return self.breaker()

    def _row(self, name: str) -> sa.RowMapping | None:
        with self._engine.connect() as connection:
            row = connection.execute(
                sa.select(_switches).where(_switches.c.name == name)
            ).one_or_none()
        return None if row is None else row._mapping

    def _write(self, name: str, **values: object) -> None:
        with self._engine.begin() as connection:
            updated = connection.execute(
                sa.update(_switches).where(_switches.c.name == name).values(**values)
            )
            if updated.rowcount == 0:
                connection.execute(sa.insert(_switches).values(name=name, **values))
