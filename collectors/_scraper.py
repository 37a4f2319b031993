"""Scrape Prometheus endpoints on their intervals, as Prometheus does, into a sample store.

Per target: GET the URL (one shared `httpx.AsyncClient`, the target's timeout over the whole
request), parse the body, attach the target's labels (`job`, `instance`, static labels;
`honor_labels: false`, so a scraped label that collides is kept as `exported_<name>`), stamp
the samples with the scrape's start time unless the exposition gave one, and append one batch
to the store: the samples, staleness markers for the series that vanished, and the report
series `up`, `scrape_duration_seconds`, `scrape_samples_scraped`.

A failed scrape (connection error, timeout, non-200 status, body or sample limit, parse error)
writes `up` 0 and a staleness marker for every series of the last successful scrape. Samples
that carry their own timestamp are left out of staleness tracking, as in Prometheus.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from ._exceptions import ExpositionError
from ._exposition import RawSample, SampleLimitExceeded, parse_raw_samples
from ._sample import ScrapedSample

__all__ = ["SampleSink", "ScrapeResult", "ScrapeTarget", "Scraper"]

logger = logging.getLogger("inferops.collectors.scraper")

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_SAMPLES = 200_000

_ACCEPT = "text/plain;version=0.0.4;q=1,*/*;q=0.1"
_USER_AGENT = "inferops-scraper/0.1"
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_EXPORTED_PREFIX = "exported_"
_NAN = math.nan

SeriesKey = tuple[str, frozenset[tuple[str, str]]]


class SampleSink(Protocol):
    """Where scraped samples go: `collectors.SampleStore`, or anything with a blocking `append`."""

    def append(self, samples: Sequence[ScrapedSample]) -> None: ...


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


class _ScrapeFailed(Exception):
    def __init__(self, message: str, *, samples_scraped: int = 0) -> None:
        super().__init__(message)
        self.samples_scraped = samples_scraped


@dataclass
class _TargetState:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    series: dict[SeriesKey, tuple[str, dict[str, str]]] = field(default_factory=dict)
    up: bool | None = None
    last: ScrapeResult | None = None


class Scraper:
    """Scrapes `targets` into `store` (anything with a blocking, thread-safe `append`).

    `clock` gives the scrape timestamps (unix seconds); durations are measured with a
    monotonic clock. A body larger than `max_body_bytes` (uncompressed) or with more than
    `max_samples` samples fails that scrape.
    """

    def __init__(
        self,
        targets: Sequence[ScrapeTarget],
        store: SampleSink,
        *,
        clock: Callable[[], float] = time.time,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_samples: int = DEFAULT_MAX_SAMPLES,
    ) -> None:
        if max_body_bytes <= 0:
            raise ValueError(f"max_body_bytes must be positive, got {max_body_bytes}")
        if max_samples < 0:
            raise ValueError(f"max_samples must not be negative, got {max_samples}")
        self._targets = tuple(dict.fromkeys(targets))  # a target listed twice is scraped once
        self._store = store
        self._clock = clock
        self._max_body_bytes = max_body_bytes
        self._max_samples = max_samples
        self._states: dict[ScrapeTarget, _TargetState] = {}
        self._client: httpx.AsyncClient | None = None
        self._running = False

    @property
    def targets(self) -> tuple[ScrapeTarget, ...]:
        return self._targets

    def last_result(self, target: ScrapeTarget) -> ScrapeResult | None:
        """The latest scrape of `target`, or None before its first."""
        state = self._states.get(target)
        return state.last if state is not None else None

    async def run(self) -> None:
        """Scrape every target on its own interval until cancelled.

        Each target starts at a fixed offset within its interval (derived from its job and
        URL) so that targets spread out; a failure is logged and the loop goes on.
        """
        if self._running:
            raise RuntimeError("this Scraper is already running")
        self._running = True
        try:
            async with self._new_client() as client:
                self._client = client
                try:
                    async with asyncio.TaskGroup() as group:
                        for target in self._targets:
                            group.create_task(
                                self._scrape_forever(target), name=f"scrape {target.url}"
                            )
                        if not self._targets:
                            await asyncio.Event().wait()  # nothing to scrape: wait to be cancelled
                finally:
                    self._client = None
        finally:
            self._running = False

    async def scrape_once(self, target: ScrapeTarget) -> ScrapeResult:
        """Scrape `target` now, append the batch to the store, and say what happened.

        Target failures come back as a result with `up` False; an error of the store itself
        propagates.
        """
        state = self._states.get(target)
        if state is None:
            state = self._states[target] = _TargetState()
        async with state.lock:
            timestamp = self._clock()
            target_labels = target.target_labels()
            failure: _ScrapeFailed | None = None
            body, content_type = b"", ""
            # Outside run(), a one-off client (its setup is not part of the scrape's duration).
            client = self._client
            async with (
                contextlib.nullcontext(client) if client is not None else self._new_client()
            ) as client:
                started = time.perf_counter()
                try:
                    body, content_type = await self._fetch(client, target)
                except _ScrapeFailed as exc:
                    failure = exc
                duration = time.perf_counter() - started
            series: dict[SeriesKey, tuple[str, dict[str, str]]] = {}
            batch: list[ScrapedSample] = []
            samples_scraped = 0
            if failure is None:
                try:
                    batch, series, samples_scraped = await asyncio.to_thread(
                        self._build_batch,
                        body,
                        content_type,
                        timestamp,
                        target_labels,
                        state.series,
                    )
                except _ScrapeFailed as exc:
                    failure = exc
            error: str | None = None
            if failure is not None:
                error = str(failure)
                samples_scraped = failure.samples_scraped
                batch = _stale_markers(state.series.values(), timestamp)
            up = error is None
            batch.extend(
                [
                    ScrapedSample("up", dict(target_labels), 1.0 if up else 0.0, timestamp),
                    ScrapedSample(
                        "scrape_duration_seconds", dict(target_labels), duration, timestamp
                    ),
                    ScrapedSample(
                        "scrape_samples_scraped",
                        dict(target_labels),
                        float(samples_scraped),
                        timestamp,
                    ),
                ]
            )
            await asyncio.to_thread(self._store.append, batch)
            state.series = series
            result = ScrapeResult(target, up, duration, samples_scraped, error, timestamp)
            self._log_transition(state, result)
            state.last = result
            return result

    # -- internals -----------------------------------------------------------------------

    def _new_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            headers={"Accept": _ACCEPT, "User-Agent": _USER_AGENT},
            follow_redirects=True,
            trust_env=False,
            limits=httpx.Limits(max_connections=max(10, len(self._targets))),
        )

    async def _fetch(self, client: httpx.AsyncClient, target: ScrapeTarget) -> tuple[bytes, str]:
        limit = self._max_body_bytes
        headers = {"X-Prometheus-Scrape-Timeout-Seconds": f"{target.timeout_s:g}"}
        try:
            async with asyncio.timeout(target.timeout_s):
                async with client.stream(
                    "GET", target.url, headers=headers, timeout=target.timeout_s
                ) as response:
                    if response.status_code != 200:
                        raise _ScrapeFailed(
                            f"server returned HTTP status {response.status_code} "
                            f"{response.reason_phrase}".rstrip()
                        )
                    # A declared length over the limit fails early; compressed bodies are
                    # measured as they are decoded (the limit is on the uncompressed size).
                    declared = response.headers.get("content-length", "")
                    encoded = response.headers.get("content-encoding", "identity") != "identity"
                    if not encoded and declared.isdigit() and int(declared) > limit:
                        raise _ScrapeFailed(_body_limit_message(limit, declared=int(declared)))
                    chunks: list[bytes] = []
                    size = 0
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > limit:
                            raise _ScrapeFailed(_body_limit_message(limit))
                        chunks.append(chunk)
                    return b"".join(chunks), response.headers.get("content-type", "")
        except TimeoutError:
            raise _ScrapeFailed(f"scrape timed out after {target.timeout_s:g}s") from None
        except httpx.TimeoutException:
            raise _ScrapeFailed(f"scrape timed out after {target.timeout_s:g}s") from None
        except httpx.HTTPError as exc:
            raise _ScrapeFailed(_describe(exc)) from None
        except OSError as exc:
            raise _ScrapeFailed(_describe(exc)) from None

    def _build_batch(
        self,
        body: bytes,
        content_type: str,
        timestamp: float,
        target_labels: dict[str, str],
        previous: Mapping[SeriesKey, tuple[str, dict[str, str]]],
    ) -> tuple[list[ScrapedSample], dict[SeriesKey, tuple[str, dict[str, str]]], int]:
        """Parse and label one body (in a worker thread): the batch, its series, its size."""
        raw = _parse_body(body, content_type, self._max_samples)
        target_names = frozenset(target_labels)
        batch: list[ScrapedSample] = []
        append = batch.append
        series: dict[SeriesKey, tuple[str, dict[str, str]]] = {}
        timestamped: set[tuple[SeriesKey, float]] = set()
        duplicates = 0
        for name, labels, value, ts in raw:
            if target_names.isdisjoint(labels) and "" not in labels.values():
                labels.update(target_labels)
            else:
                labels = _merge_labels(labels, target_labels)
            key: SeriesKey = (name, frozenset(labels.items()))
            if ts is None:
                if key in series:
                    duplicates += 1
                    continue
                series[key] = (name, labels)
                append(ScrapedSample(name, labels, value, timestamp))
            else:
                if (key, ts) in timestamped:
                    duplicates += 1
                    continue
                timestamped.add((key, ts))
                append(ScrapedSample(name, labels, value, ts))
        if duplicates:
            logger.debug(
                "dropped %d duplicate samples (the first of each series was kept)", duplicates
            )
        batch.extend(
            _stale_markers(
                (entry for key, entry in previous.items() if key not in series), timestamp
            )
        )
        return batch, series, len(raw)

    async def _scrape_forever(self, target: ScrapeTarget) -> None:
        loop = asyncio.get_running_loop()
        interval = target.interval_s
        next_at = loop.time() + _offset(target)
        while True:
            delay = next_at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                await self.scrape_once(target)
            except Exception:
                logger.exception(
                    "scraping %s (job %s) failed; trying again next interval",
                    target.url,
                    target.job,
                )
            next_at += interval
            now = loop.time()
            if next_at <= now:  # fell behind: skip the missed slots, keep the phase
                next_at += (math.floor((now - next_at) / interval) + 1) * interval

    @staticmethod
    def _log_transition(state: _TargetState, result: ScrapeResult) -> None:
        target = result.target
        if not result.up:
            if state.up is not False:
                logger.warning(
                    "target %s (job %s) is down: %s", target.url, target.job, result.error
                )
            else:
                logger.debug(
                    "target %s (job %s) still down: %s", target.url, target.job, result.error
                )
        elif state.up is False:
            logger.info("target %s (job %s) is up again", target.url, target.job)
        state.up = result.up


def _parse_body(body: bytes, content_type: str, max_samples: int) -> list[RawSample]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body.count(b"\n", 0, exc.start) + 1
        raise _ScrapeFailed(f"invalid exposition: line {line}: invalid UTF-8") from None
    media_type = content_type.partition(";")[0].strip().lower()
    openmetrics: bool | None = None
    if media_type == "application/openmetrics-text":
        openmetrics = True
    elif media_type == "text/plain":
        openmetrics = False
    try:
        return parse_raw_samples(text, openmetrics=openmetrics, limit=max_samples)
    except SampleLimitExceeded as exc:
        raise _ScrapeFailed(
            f"sample limit exceeded: more than {max_samples} samples (max_samples)",
            samples_scraped=exc.limit + 1,
        ) from None
    except ExpositionError as exc:
        raise _ScrapeFailed(f"invalid exposition: {exc}") from None


def _merge_labels(scraped: dict[str, str], target_labels: Mapping[str, str]) -> dict[str, str]:
    """Prometheus's honor_labels=false: target labels win, clashing scraped ones are renamed.

    Empty values count as absent (and are dropped); `target_labels` is sorted by name, and
    clashes are renamed shortest name first, adding `exported_` until the name is free.
    """
    labels = {name: value for name, value in scraped.items() if value}
    clashes: list[tuple[str, str]] = []
    for name, value in target_labels.items():
        existing = labels.get(name)
        if existing:
            clashes.append((name, existing))
        labels[name] = value
    clashes.sort(key=lambda clash: len(clash[0]))
    for name, value in clashes:
        new_name = name
        while True:
            new_name = _EXPORTED_PREFIX + new_name
            if not labels.get(new_name):
                labels[new_name] = value
                break
    return labels


def _stale_markers(
    series: Iterable[tuple[str, dict[str, str]]], timestamp: float
) -> list[ScrapedSample]:
    return [ScrapedSample(name, labels, _NAN, timestamp, stale=True) for name, labels in series]


def _offset(target: ScrapeTarget) -> float:
    """A stable offset in [0, interval) so that targets do not all scrape at once."""
    seed = f"{target.job}\x00{target.url}\x00{sorted(target.labels.items())}"
    return zlib.crc32(seed.encode()) / 2**32 * target.interval_s


def _body_limit_message(limit: int, *, declared: int | None = None) -> str:
    detail = f" (Content-Length {declared})" if declared is not None else ""
    return f"body size limit exceeded: more than {limit} bytes (max_body_bytes){detail}"


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
