"""Alerts as the engine hands them on, and the notifier seam."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


class AlertState(enum.StrEnum):
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert instance: a rule's output element with the rule's labels added.

    `value` is the sample value of the latest evaluation that saw the alert (None when it
    was NaN); `last_evaluated_at_s` is when that evaluation ran. A pending alert that went
    away before it fired is `resolved` with `fired_at_s` None.
    """

    fingerprint: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    state: AlertState
    active_at_s: float
    fired_at_s: float | None = None
    resolved_at_s: float | None = None
    generator_url: str = ""
    value: float | None = None
    last_evaluated_at_s: float | None = None
    silenced_by: tuple[str, ...] = ()
    inhibited_by: tuple[str, ...] = ()


@runtime_checkable
class Notifier(Protocol):
    """Receives an Alertmanager version-4 webhook body (a dict)."""

    def notify(self, payload: Mapping[str, Any]) -> None: ...
