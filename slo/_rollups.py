"""Per-minute event roll-ups of many SLOs, as prefix sums: any window's error ratio in O(1).

Evaluating 1,000 SLOs over 4 window pairs with PromQL reads every raw sample of every
window each round. Instead, each round adds one minute of bad and total event counts per
SLO (`EventRollups.append_minute`, the counters' increase in that minute, from
`minute_increases` over raw samples) to a ring of cumulative sums; a window's events are then
the difference of two columns, for all SLOs at once (`error_ratios`, `burning`).
Windows are whole minutes ending at the last appended minute; the PromQL path
(`SloEvaluator`) stays the reference, and the two agree on the same data up to PromQL's
extrapolation at a window's edges (tests/slo/test_slo_rollups.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from ._exceptions import SloError
from ._windows import BurnRateWindow

FloatArray = npt.NDArray[np.float64]
MINUTE_S = 60.0


def minute_increases(
    timestamps_s: FloatArray, values: FloatArray, start_s: float, minutes: int
) -> FloatArray:
    """A counter's increase in each of `minutes` minutes from `start_s`, from its raw samples.

    Each increase between two consecutive samples counts in the minute of the later one,
    minutes closed on the right like PromQL's ranges: minute k is (start + 60k,
    start + 60(k + 1)]. A drop is a counter reset, after which the whole new value is the
    increase (as `rate`).
    """
    if len(timestamps_s) < 2:
        return np.zeros(minutes)
    deltas = np.diff(values)
    deltas = np.where(deltas < 0, values[1:], deltas)
    index = np.ceil((timestamps_s[1:] - start_s) / MINUTE_S).astype(np.int64) - 1
    inside = (index >= 0) & (index < minutes)
    counts = np.bincount(index[inside], weights=deltas[inside], minlength=minutes)
    return np.asarray(counts[:minutes], dtype=np.float64)


class EventRollups:
    """Cumulative bad and total events of `slos` SLOs over the last `capacity_minutes`."""

    def __init__(self, slos: int, *, capacity_minutes: int) -> None:
        if slos < 1 or capacity_minutes < 1:
            raise ValueError(
                f"need at least one SLO and one minute, got {slos}, {capacity_minutes}"
            )
        self._size = capacity_minutes + 1
        self._bad = np.zeros((self._size, slos))
        self._total = np.zeros((self._size, slos))
        self._minutes = 0  # appended so far; column (minutes % size) holds the newest sums

    @property
    def minutes(self) -> int:
        return self._minutes

    def append_minute(self, bad: FloatArray, total: FloatArray) -> None:
        """The next minute's events, one value per SLO."""
        last = self._minutes % self._size
        slot = (self._minutes + 1) % self._size
        self._bad[slot] = self._bad[last] + bad
        self._total[slot] = self._total[last] + total
        self._minutes += 1

    def window_events(self, window_minutes: int) -> tuple[FloatArray, FloatArray]:
        """(bad, total) events per SLO over the last `window_minutes` (fewer if not filled)."""
        if window_minutes >= self._size:
            raise SloError(
                f"a {window_minutes}-minute window is longer than the roll-ups keep "
                f"({self._size - 1} minutes)"
            )
        newest = self._minutes % self._size
        oldest = max(self._minutes - window_minutes, 0) % self._size
        return self._bad[newest] - self._bad[oldest], self._total[newest] - self._total[oldest]

    def error_ratios(self, window_minutes: int) -> FloatArray:
        """Bad over total events per SLO over the window; NaN without events."""
        bad, total = self.window_events(window_minutes)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, bad / total, np.nan)

    def burning(
        self,
        objectives: FloatArray,
        windows: Sequence[BurnRateWindow],
        *,
        min_events: FloatArray | None = None,
    ) -> dict[str, npt.NDArray[np.bool_]]:
        """Per severity, which SLOs' multi-window burn-rate alert holds now (as the rules)."""
        ratios: dict[int, FloatArray] = {}
        budget = 1.0 - objectives
        firing: dict[str, npt.NDArray[np.bool_]] = {}
        for window in windows:
            long_m = round(window.long_window_s / MINUTE_S)
            short_m = round(window.short_window_s / MINUTE_S)
            for minutes in (long_m, short_m):
                if minutes not in ratios:
                    ratios[minutes] = self.error_ratios(minutes)
            threshold = window.burn_rate * budget
            with np.errstate(invalid="ignore"):
                holds = (ratios[long_m] > threshold) & (ratios[short_m] > threshold)
            if min_events is not None:
                holds &= self.window_events(long_m)[1] >= min_events
            firing[window.severity] = firing.get(window.severity, np.zeros_like(holds)) | holds
        return firing
