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

This module runs the loop and a scrape's steps; the target and result types live in
`_scrape_target`, the HTTP request in `_scrape_http`, and the batch building (labels,
staleness markers) in `_scrape_batch`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from ._sample import ScrapedSample
from ._scrape_batch import SeriesKey, build_batch, stale_markers
from ._scrape_http import fetch, new_client
from ._scrape_target import ScrapeFailed, ScrapeResult, ScrapeTarget

__all__ = ["SampleSink", "ScrapeResult", "ScrapeTarget", "Scraper"]

logger = logging.getLogger("inferops.collectors.scraper")

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_SAMPLES = 200_000
MAX_CONNECTIONS = 1000
"""Connections the shared client may open at once (targets are added at runtime)."""
REPORT_SERIES = ("up", "scrape_duration_seconds", "scrape_samples_scraped")


class SampleSink(Protocol):
    """Where scraped samples go: `collectors.SampleStore`, or anything with a blocking `append`."""

    def append(self, samples: Sequence[ScrapedSample]) -> None: ...


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
        self._tasks: dict[ScrapeTarget, asyncio.Task[None]] = {}
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
        URL) so that targets spread out; a failure is logged and the loop goes on. The
        target set may change meanwhile (`set_targets`).
        """
        if self._running:
            raise RuntimeError("this Scraper is already running")
        self._running = True
        try:
            async with self._new_client() as client:
                self._client = client
                try:
                    for target in self._targets:
                        self._start(target)
                    await asyncio.Event().wait()  # until cancelled
                finally:
                    tasks = list(self._tasks.values())
                    self._tasks.clear()
                    for task in tasks:
                        task.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)
                    self._client = None
        finally:
            self._running = False

    async def set_targets(self, targets: Sequence[ScrapeTarget]) -> None:
        """Replace the target set, while running or not (service discovery calls this).

        New targets start scraping on their own phase; a removed target stops (after the
        scrape in flight, if any) and every series of its last scrape, its report series
        (`up`, ...) included, gets a staleness marker, as Prometheus does. A store error
        there is logged: the target set changes anyway.
        """
        wanted = tuple(dict.fromkeys(targets))
        keep = set(wanted)
        current = set(self._targets)
        removed = [target for target in self._targets if target not in keep]
        added = [target for target in wanted if target not in current]
        self._targets = wanted
        if self._running:
            for target in added:
                self._start(target)
        for target in removed:
            try:
                await self._stop(target)
            except Exception:
                logger.exception(
                    "could not write staleness markers for removed target %s (job %s)",
                    target.url,
                    target.job,
                )
        if added or removed:
            logger.info(
                "scrape targets changed: %d added, %d removed, %d now",
                len(added),
                len(removed),
                len(wanted),
            )

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
            failure: ScrapeFailed | None = None
            body, content_type = b"", ""
            # Outside run(), a one-off client (its setup is not part of the scrape's duration).
            client = self._client
            async with (
                contextlib.nullcontext(client) if client is not None else self._new_client()
            ) as client:
                started = time.perf_counter()
                try:
                    body, content_type = await fetch(client, target, self._max_body_bytes)
                except ScrapeFailed as exc:
                    failure = exc
                duration = time.perf_counter() - started
            series: dict[SeriesKey, tuple[str, dict[str, str]]] = {}
            batch: list[ScrapedSample] = []
            samples_scraped = 0
            if failure is None:
                try:
                    batch, series, samples_scraped = await asyncio.to_thread(
                        build_batch,
                        body,
                        content_type,
                        timestamp,
                        target_labels,
                        state.series,
                        self._max_samples,
                    )
                except ScrapeFailed as exc:
                    failure = exc
            error: str | None = None
            if failure is not None:
                error = str(failure)
                samples_scraped = failure.samples_scraped
                batch = stale_markers(state.series.values(), timestamp)
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
        # Sized for the largest target set discovery may bring, not just today's.
        return new_client(max(len(self._targets), MAX_CONNECTIONS))

    def _start(self, target: ScrapeTarget) -> None:
        self._tasks[target] = asyncio.create_task(
            self._scrape_forever(target), name=f"scrape {target.url}"
        )

    async def _stop(self, target: ScrapeTarget) -> None:
        """Stop scraping `target` and end its series with staleness markers."""
        state = self._states.get(target)
        task = self._tasks.pop(target, None)
        if task is not None:
            if state is not None:
                # Holding the lock, the task is sleeping or waiting for it: never mid-scrape.
                async with state.lock:
                    task.cancel()
            else:
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        state = self._states.pop(target, None)
        if state is None or state.last is None:
            return
        async with state.lock:
            timestamp = self._clock()
            labels = target.target_labels()
            markers = stale_markers(state.series.values(), timestamp)
            markers.extend(
                stale_markers(((name, dict(labels)) for name in REPORT_SERIES), timestamp)
            )
            await asyncio.to_thread(self._store.append, markers)

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


def _offset(target: ScrapeTarget) -> float:
    """A stable offset in [0, interval) so that targets do not all scrape at once."""
    seed = f"{target.job}\x00{target.url}\x00{sorted(target.labels.items())}"
    return zlib.crc32(seed.encode()) / 2**32 * target.interval_s

