"""What the dashboard reads from the alert store and the remediation log.

Structural types, so the dashboard depends on the fields it shows rather than on the
classes behind them: `alerting.AlertStore` and `remediation.DecisionLog` satisfy these, and
so does anything else that keeps the same records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol


class AlertRecord(Protocol):
    """One alert as `alerting.Alert` carries it."""

    @property
    def fingerprint(self) -> str: ...

    @property
    def labels(self) -> Mapping[str, str]: ...

    @property
    def annotations(self) -> Mapping[str, str]: ...

    @property
    def state(self) -> str: ...

    @property
    def active_at_s(self) -> float: ...

    @property
    def fired_at_s(self) -> float | None: ...

    @property
    def resolved_at_s(self) -> float | None: ...


class AlertReader(Protocol):
    """The read side of `alerting.AlertStore`."""

    def active(self) -> Sequence[AlertRecord]: ...

    def recent(self, limit: int) -> Sequence[AlertRecord]: ...


class DecisionRecord(Protocol):
    """One remediation decision as `remediation.Decision` carries it."""

    @property
    def id(self) -> object: ...

    @property
    def action(self) -> str: ...

    @property
    def node(self) -> str: ...

    @property
    def outcome(self) -> str: ...

    @property
    def reason(self) -> str: ...

    @property
    def guard(self) -> str | None: ...

    @property
    def actor(self) -> str: ...

    @property
    def alertname(self) -> str | None: ...

    @property
    def alert_fingerprint(self) -> str | None: ...

    @property
    def started_at_s(self) -> float: ...

    @property
    def finished_at_s(self) -> float | None: ...


class DecisionReader(Protocol):
    """The read side of `remediation.DecisionLog`."""

    def recent(self, limit: int) -> Sequence[DecisionRecord]: ...
