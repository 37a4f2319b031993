"""A read-through cache of series samples, so that repeated queries read only what changed.

The control plane asks the same rules every second, over windows up to the SLO's 30 days;
the dashboard redraws an hour every few seconds. Without a cache each of those reads the
whole window again. With it, a series' samples are read once; before each read the cache
asks the store's write log (`SampleStore.changes_since`) for the earliest sample time
written since it last looked, by any process, and forgets what it holds from that time on.
In steady state that is the last scrape or two, so a query reads a few rows per series.

The cache holds at most `max_samples` samples; past that the least recently used series are
dropped, and read again when needed. If the write log was pruned past what the cache saw,
it starts over.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ._store import BoolArray, FloatArray, SampleStore, SeriesSamples, StoredSeries


@dataclass(slots=True)
class _Entry:
    """A series' samples, complete (as of the last sync) for [covered_from, covered_to]."""

    series: StoredSeries
    timestamps_s: FloatArray
    values: FloatArray
    stale: BoolArray
    covered_from: float
    covered_to: float
    used: float = 0.0

    def forget_from(self, time_s: float) -> None:
        """Samples at or after `time_s` may have changed: drop them and the coverage."""
        if time_s > self.covered_to:
            return
        time_s = max(time_s, self.covered_from)
        keep = int(np.searchsorted(self.timestamps_s, time_s, side="left"))
        self.timestamps_s = self.timestamps_s[:keep]
        self.values = self.values[:keep]
        self.stale = self.stale[:keep]
        # Coverage now ends just before time_s; nextafter keeps a sample at time_s unread.
        self.covered_to = float(np.nextafter(time_s, -np.inf))


class SampleCache:
    def __init__(
        self,
        store: SampleStore,
        *,
        max_samples: int = 10_000_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._max_samples = max_samples
        self._clock = clock
        self._entries: dict[int, _Entry] = {}
        self._seen: int | None = None
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._seen = None

    @property
    def cached_samples(self) -> int:
        return sum(len(e.timestamps_s) for e in self._entries.values())

    def samples(
        self, series: Sequence[StoredSeries], start_s: float, end_s: float
    ) -> list[SeriesSamples]:
        """As `SampleStore.samples`: [start_s, end_s], both inclusive, series in order."""
        if not series or end_s < start_s:
            return []
        with self._lock:
            self._sync()
            fresh_ids = {s.id for s in series if s.id not in self._entries}
            if fresh_ids:
                fresh = [s for s in series if s.id in fresh_ids]
                loaded = {one.series.id: one for one in self._store.samples(fresh, start_s, end_s)}
                for one in fresh:
                    got = loaded.get(one.id)
                    self._entries[one.id] = _Entry(
                        one,
                        got.timestamps_s if got else np.empty(0),
                        got.values if got else np.empty(0),
                        got.stale if got else np.empty(0, dtype=np.bool_),
                        start_s,
                        end_s,
                    )
            known = [self._entries[s.id] for s in series if s.id not in fresh_ids]
            self._extend_front(known, start_s)
            self._extend_back(known, end_s)
            now = self._clock()
            result = []
            for one in series:
                entry = self._entries[one.id]
                entry.used = now
                lo = int(np.searchsorted(entry.timestamps_s, start_s, side="left"))
                hi = int(np.searchsorted(entry.timestamps_s, end_s, side="right"))
                if hi > lo:
                    result.append(
                        SeriesSamples(
                            one, entry.timestamps_s[lo:hi], entry.values[lo:hi], entry.stale[lo:hi]
                        )
                    )
            self._evict(keep={s.id for s in series})
            return result

    def _sync(self) -> None:
        """Learn from the write log what changed since the last read; forget it."""
        changes = self._store.changes_since(self._seen)
        if changes.truncated:
            self._entries.clear()
        elif changes.earliest_s is not None:
            for entry in self._entries.values():
                entry.forget_from(changes.earliest_s)
        self._seen = changes.latest

    def _extend_front(self, entries: list[_Entry], start_s: float) -> None:
        early = [e for e in entries if start_s < e.covered_from]
        if not early:
            return
        until = max(e.covered_from for e in early)
        loaded = {
            one.series.id: one
            for one in self._store.samples([e.series for e in early], start_s, until)
        }
        for entry in early:
            one = loaded.get(entry.series.id)
            if one is not None:
                keep = one.timestamps_s < entry.covered_from
                entry.timestamps_s = np.concatenate([one.timestamps_s[keep], entry.timestamps_s])
                entry.values = np.concatenate([one.values[keep], entry.values])
                entry.stale = np.concatenate([one.stale[keep], entry.stale])
            entry.covered_from = start_s

    def _extend_back(self, entries: list[_Entry], end_s: float) -> None:
        late = [e for e in entries if end_s > e.covered_to]
        if not late:
            return
        since = min(e.covered_to for e in late)
        loaded = {
            one.series.id: one
            for one in self._store.samples([e.series for e in late], since, end_s)
        }
        for entry in late:
            one = loaded.get(entry.series.id)
            if one is not None:
                new = one.timestamps_s > entry.covered_to
                entry.timestamps_s = np.concatenate([entry.timestamps_s, one.timestamps_s[new]])
                entry.values = np.concatenate([entry.values, one.values[new]])
                entry.stale = np.concatenate([entry.stale, one.stale[new]])
            entry.covered_to = end_s

    def _evict(self, keep: set[int]) -> None:
        total = self.cached_samples
        if total <= self._max_samples:
            return
        for entry in sorted(self._entries.values(), key=lambda e: e.used):
            if total <= self._max_samples // 2:
                break
            if entry.series.id in keep:
                continue
            total -= len(entry.timestamps_s)
            del self._entries[entry.series.id]
        if total > self._max_samples:
            # This one query alone needs more than the cap: keep none of it.
            for series_id in keep:
                self._entries.pop(series_id, None)
