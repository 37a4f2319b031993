"""What a scraper scrapes (`ScrapeTarget`) and what one scrape did (`ScrapeResult`)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import urlsplit

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


@dataclass(frozen=True)
class ScrapeTarget:
    """One endpoint to scrape. `labels` are static target labels, added to every sample.

    `job` and `instance` (host:port of `url`) are added as Prometheus adds them; a `job` or
    `instance` key in `labels` takes precedence, as a static config's labels do in Prometheus.
    """

    job: str
    url: str
    labels: Mapping[str, str]
    interval_s: float
    timeout_s: float

    def __post_init__(self) -> None:
        if not self.job:
            raise ValueError("a scrape target needs a job name")
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"scrape target URL must be http(s)://host[:port]/path, got {self.url!r}"
            )
        if not (self.interval_s > 0 and math.isfinite(self.interval_s)):
            raise ValueError(
                f"interval_s must be a positive number of seconds, got {self.interval_s!r}"
            )
        if not (self.timeout_s > 0 and math.isfinite(self.timeout_s)):
            raise ValueError(
                f"timeout_s must be a positive number of seconds, got {self.timeout_s!r}"
            )
        labels = dict(self.labels)
        for name, value in labels.items():
            if not isinstance(name, str) or _LABEL_NAME.fullmatch(name) is None:
                raise ValueError(f"invalid target label name {name!r} for {self.url}")
            if name.startswith("__"):
                raise ValueError(
                    f"target label {name!r} for {self.url}: names starting with '__' are reserved"
                )
            if not isinstance(value, str):
                raise ValueError(
                    f"target label {name!r} for {self.url}: value must be a string, got {value!r}"
                )
        object.__setattr__(self, "labels", MappingProxyType(labels))

    def __hash__(self) -> int:
        return hash(
            (self.job, self.url, frozenset(self.labels.items()), self.interval_s, self.timeout_s)
        )

    @property
    def instance(self) -> str:
        """host:port of the URL (as written there; no default port is added)."""
        return urlsplit(self.url).netloc.rpartition("@")[2]

    def target_labels(self) -> dict[str, str]:
        """The labels every sample of this target gets: job, instance and the static labels."""
        labels = {"instance": self.instance, "job": self.job}
        labels.update(self.labels)
        return {name: value for name, value in sorted(labels.items()) if value}


@dataclass(frozen=True)
class ScrapeResult:
    """What one scrape of one target did. `error` says why when `up` is False.

    `samples_scraped` counts the samples in the body; 0 when it could not be read, and
    `max_samples + 1` when the sample limit stopped parsing there.
    """

    target: ScrapeTarget
    up: bool
    duration_s: float
    samples_scraped: int
    error: str | None
    timestamp_s: float


class ScrapeFailed(Exception):
    """Why one scrape failed; `samples_scraped` is what the result reports for it."""

    def __init__(self, message: str, *, samples_scraped: int = 0) -> None:
        super().__init__(message)
        self.samples_scraped = samples_scraped
