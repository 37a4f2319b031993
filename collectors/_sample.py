"""The unit that flows from the scraper (and the control plane's own recordings) to the store."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ScrapedSample:
    """One sample of one series. `labels` exclude `__name__` (that is `name`).

    `stale` marks a Prometheus staleness marker: the series ended here (its target failed,
    or the series vanished from the target's exposition); queries stop looking back past it.
    """

    name: str
    labels: Mapping[str, str]
    value: float
    timestamp_s: float
    stale: bool = False
