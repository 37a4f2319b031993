"""Prometheus-shaped rules: what the SLO specs generate and what the alert engine evaluates.

The native engine and a real Prometheus run the very same expressions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


def format_duration(seconds: float) -> str:
    """Render seconds as a Prometheus duration (`90` -> `1m30s`)."""
    total_ms = round(seconds * 1000)
    if total_ms == 0:
        return "0s"
    parts: list[str] = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, total_ms = divmod(total_ms, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class AlertingRule:
    alert: str
    expr: str
    for_s: float = 0.0
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)

    def to_prometheus(self) -> dict[str, Any]:
        rule: dict[str, Any] = {"alert": self.alert, "expr": self.expr}
        if self.for_s:
            rule["for"] = format_duration(self.for_s)
        if self.labels:
            rule["labels"] = dict(self.labels)
        if self.annotations:
            rule["annotations"] = dict(self.annotations)
        return rule


@dataclass(frozen=True, slots=True)
class RecordingRule:
    record: str
    expr: str
    labels: Mapping[str, str] = field(default_factory=dict)

    def to_prometheus(self) -> dict[str, Any]:
        rule: dict[str, Any] = {"record": self.record, "expr": self.expr}
        if self.labels:
            rule["labels"] = dict(self.labels)
        return rule


@dataclass(frozen=True, slots=True)
class RuleGroup:
    name: str
    rules: tuple[AlertingRule | RecordingRule, ...]
    interval_s: float | None = None

    def to_prometheus(self) -> dict[str, Any]:
        group: dict[str, Any] = {"name": self.name}
        if self.interval_s:
            group["interval"] = format_duration(self.interval_s)
        group["rules"] = [rule.to_prometheus() for rule in self.rules]
        return group
