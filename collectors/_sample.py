"""The unit that flows from the scraper (and the control plane's own recordings) to the store."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Exemplar:
    """An OpenMetrics exemplar: one traced observation behind a bucket or counter sample.

    `labels` (e.g. `trace_id`) identify the trace; `value` is the observed value;
    `timestamp_s` is when it was observed, None when the exposition did not say.
    """

    labels: Mapping[str, str]
    value: float
    timestamp_s: float | None = None


@dataclass(frozen=True, slots=True)
class ScrapedSample:
    """One sample of one series. `labels` exclude `__name__` (that is `name`).

    `stale` marks a Prometheus staleness marker: the series ended here (its target failed,
    or the series vanished from the target's exposition); queries stop looking back past it.
    `exemplar`: the OpenMetrics exemplar written on the sample's line, if any.
    """

    name: str
    labels: Mapping[str, str]
    value: float
    timestamp_s: float
    stale: bool = False
    exemplar: Exemplar | None = None


class FrozenLabels(dict[str, str]):
    """A label set that refuses changes: what the scraper builds once per series and reuses
    on every scrape. Being immutable, it lets the store cache the series id by the object's
    identity instead of hashing its labels on every append."""

    __slots__ = ()

    def _refuse(self, *_args: object, **_kwargs: object) -> None:
        raise TypeError("a scraped label set cannot be changed: copy it with dict(labels)")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _refuse  # type: ignore[assignment]
    __ior__ = _refuse  # type: ignore[assignment]

    def __reduce__(self) -> tuple[type[dict[str, str]], tuple[dict[str, str]]]:
        return (dict, (dict(self),))
