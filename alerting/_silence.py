"""Silences, as Alertmanager has them: matchers, a time range, who and why; stored.

A silence mutes the notifications of every alert its matchers all match while it is active
(`starts_at_s <= t < ends_at_s`); the alert itself keeps its state and is shown as silenced.
Expiring a silence ends it now; silences are never deleted, so who muted what stays on
record. They live in table `alert_silences` of the shared database, so the CLI, an API and
the engine see the same ones.
"""

from __future__ import annotations

import builtins
import enum
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from ._exceptions import SilenceError
from ._matcher import Matcher, matches_all

_metadata = sa.MetaData()
_silences = sa.Table(
    "alert_silences",
    _metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("matchers", sa.Text, nullable=False),
    sa.Column("starts_at_s", sa.Double, nullable=False),
    sa.Column("ends_at_s", sa.Double, nullable=False),
    sa.Column("created_by", sa.String(255), nullable=False),
    sa.Column("comment", sa.Text, nullable=False),
    sa.Column("created_at_s", sa.Double, nullable=False),
    sa.Index("ix_alert_silences_ends", "ends_at_s"),
)


class SilenceState(enum.StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Silence:
    id: str
    matchers: tuple[Matcher, ...]
    starts_at_s: float
    ends_at_s: float
    created_by: str
    comment: str
    created_at_s: float

    def state(self, at_s: float) -> SilenceState:
        if at_s < self.starts_at_s:
            return SilenceState.PENDING
        return SilenceState.ACTIVE if at_s < self.ends_at_s else SilenceState.EXPIRED

    def mutes(self, labels: Mapping[str, str], at_s: float) -> bool:
        return self.state(at_s) == SilenceState.ACTIVE and matches_all(self.matchers, labels)


class SilenceStore:
    """Create, list and expire silences in table `alert_silences` (created when missing)."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        _metadata.create_all(engine, checkfirst=True)

    def create(
        self,
        matchers: Sequence[Matcher | str],
        *,
        ends_at_s: float,
        created_by: str,
        comment: str,
        starts_at_s: float | None = None,
        now_s: float | None = None,
    ) -> Silence:
        """A new silence (from now unless `starts_at_s`); matchers as `Matcher`s or text."""
        now = time.time() if now_s is None else now_s
        parsed = tuple(m if isinstance(m, Matcher) else Matcher.parse(m) for m in matchers)
        if not parsed:
            raise SilenceError("matchers: a silence needs at least one matcher")
        if all(matcher.matches({}) for matcher in parsed):
            raise SilenceError(
                "matchers: " + ", ".join(map(str, parsed)) + " would match every alert"
            )
        starts = now if starts_at_s is None else float(starts_at_s)
        if not ends_at_s > starts:
            raise SilenceError(f"ends_at_s: {ends_at_s!r} is not after starts_at_s {starts!r}")
        if not created_by.strip():
            raise SilenceError("created_by: say who creates the silence")
        if not comment.strip():
            raise SilenceError("comment: say why the alerts are silenced")
        silence = Silence(
            str(uuid.uuid4()), parsed, starts, float(ends_at_s), created_by.strip(),
            comment.strip(), now,
        )
        with self._engine.begin() as connection:
            connection.execute(sa.insert(_silences).values(
                id=silence.id,
                matchers=json.dumps([m.to_json() for m in parsed], ensure_ascii=False),
                starts_at_s=silence.starts_at_s, ends_at_s=silence.ends_at_s,
                created_by=silence.created_by, comment=silence.comment,
                created_at_s=silence.created_at_s,
            ))
        return silence

    def list(self, *, at_s: float | None = None, include_expired: bool = False) -> list[Silence]:
        """Pending and active silences at `at_s` (now), or all of them, newest first."""
        query = sa.select(_silences).order_by(
            _silences.c.created_at_s.desc(), _silences.c.id
        )
        if not include_expired:
            query = query.where(_silences.c.ends_at_s > (time.time() if at_s is None else at_s))
        with self._engine.connect() as connection:
            return [_silence(row) for row in connection.execute(query)]

    def active(self, at_s: float) -> builtins.list[Silence]:
        return [s for s in self.list(at_s=at_s) if s.state(at_s) == SilenceState.ACTIVE]

    def get(self, silence_id: str) -> Silence:
        with self._engine.connect() as connection:
            row = connection.execute(
                sa.select(_silences).where(_silences.c.id == silence_id)
            ).first()
        if row is None:
            raise SilenceError(f"id: no silence {silence_id!r}")
        return _silence(row)

    def expire(self, silence_id: str, *, now_s: float | None = None) -> Silence:
        """End the silence now (a pending one never starts); expiring it again is a no-op."""
        now = time.time() if now_s is None else now_s
        silence = self.get(silence_id)
        if silence.ends_at_s <= now:
            return silence
        starts = min(silence.starts_at_s, now)
        with self._engine.begin() as connection:
            connection.execute(
                sa.update(_silences).where(_silences.c.id == silence_id)
                .values(starts_at_s=starts, ends_at_s=now)
            )
        return self.get(silence_id)


def _silence(row: sa.Row[tuple[object, ...]]) -> Silence:
    mapping = row._mapping
    return Silence(
        id=str(mapping["id"]),
        matchers=tuple(Matcher.from_json(m) for m in json.loads(str(mapping["matchers"]))),
        starts_at_s=float(mapping["starts_at_s"]),
        ends_at_s=float(mapping["ends_at_s"]),
        created_by=str(mapping["created_by"]),
        comment=str(mapping["comment"]),
        created_at_s=float(mapping["created_at_s"]),
    )
