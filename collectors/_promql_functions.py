"""Numeric kernels of the PromQL engine, each over every evaluation step at once.

Times are integer milliseconds, as in Prometheus. A range function gets one series' samples
(staleness markers already removed), the index range [lo, hi) of the samples in each step's
window (t - range, t], and gives back (values, present) per step. The formulas follow
Prometheus's promql/functions.go and promql/quantile.go, operation for operation where the
rounding could show.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Kernel = Callable[..., tuple[FloatArray, BoolArray]]


def exact_sum(values: FloatArray | Sequence[float]) -> float:
    """A correctly rounded sum; infinities and NaN propagate as in plain addition."""
    items = values.tolist() if isinstance(values, np.ndarray) else list(values)
    if all(math.isfinite(v) for v in items):
        return math.fsum(items)
    return float(np.sum(np.asarray(items, dtype=np.float64)))


def extrapolated_rate(
    ts: IntArray,
    values: FloatArray,
    lo: IntArray,
    hi: IntArray,
    at: IntArray,
    range_ms: int,
    *,
    is_counter: bool,
    is_rate: bool,
    raw_from_ms: int | None = None,
) -> tuple[FloatArray, BoolArray]:
    """rate() / increase() / delta(): Prometheus's extrapolatedRate for float samples.

    `at` is each step's range end (evaluation time less the offset). Samples before
    `raw_from_ms` are 1-minute roll-ups: in a window that starts in roll-ups and ends in
    raw samples, the average interval that decides how far to extrapolate is taken from
    the roll-ups at the start and from the raw samples at the end. Prometheus's one average
    over both would be far below the roll-ups' spacing, stop the extrapolation at the start
    short, and under-read the rate (a steady counter by up to ~0.2 % over 6 h). Windows of
    one resolution are computed exactly as Prometheus does.
    """
    steps = len(at)
    out = np.full(steps, np.nan)
    count = hi - lo
    present = count >= 2
    if not present.any():
        return out, present
    idx = np.nonzero(present)[0]
    first = lo[idx]
    last = hi[idx] - 1
    first_v = values[first]
    result = values[last] - first_v
    if is_counter:
        result = result + _counter_corrections(values, first, last)
    first_t = ts[first]
    last_t = ts[last]
    range_end = at[idx]
    range_start = range_end - range_ms
    duration_to_start = (first_t - range_start) / 1000
    duration_to_end = (range_end - last_t) / 1000
    sampled_interval = (last_t - first_t) / 1000
    average_between = sampled_interval / (count[idx] - 1)
    average_at_start = average_at_end = average_between
    if raw_from_ms is not None:
        average_at_start, average_at_end = _averages_across_resolutions(
            ts, first, last, average_between, raw_from_ms
        )
    threshold = average_at_start * 1.1
    duration_to_start = np.where(
        duration_to_start >= threshold, average_at_start / 2, duration_to_start
    )
    if is_counter:
        to_zero = np.where(
            (result > 0) & (first_v >= 0),
            sampled_interval * (first_v / result),
            duration_to_start,
        )
        duration_to_start = np.where(to_zero < duration_to_start, to_zero, duration_to_start)
    threshold = average_at_end * 1.1
    duration_to_end = np.where(duration_to_end >= threshold, average_at_end / 2, duration_to_end)
    factor = (sampled_interval + duration_to_start + duration_to_end) / sampled_interval
    if is_rate:
        factor = factor / (range_ms / 1000)
    out[idx] = result * factor
    return out, present


ROLLUP_INTERVAL_S = 60.0
"""The spacing of roll-ups, for a window that holds a single one."""


def _averages_across_resolutions(
    ts: IntArray, first: IntArray, last: IntArray, average: FloatArray, raw_from_ms: int
) -> tuple[FloatArray, FloatArray]:
    """Per window: the average sample interval at its start and at its end (seconds).

    Where a window holds roll-ups (before `raw_from_ms`) and raw samples, the start's is
    the roll-ups' average (60 s for a single one) and the end's the raw samples' (the
    window's own for a single one); elsewhere both are the window's average.
    """
    split = np.searchsorted(ts, raw_from_ms, side="left")  # the first raw sample
    mixed = (first < split) & (last >= split)
    if not mixed.any():
        return average, average
    at_start = average.copy()
    at_end = average.copy()
    rolled = split - first  # roll-ups in the window
    raw = last - split + 1  # raw samples in the window
    last_rolled = np.maximum(split - 1, 0)
    many_rolled = mixed & (rolled >= 2)
    at_start[mixed] = ROLLUP_INTERVAL_S
    at_start[many_rolled] = (
        (ts[last_rolled] - ts[first])[many_rolled] / 1000 / (rolled[many_rolled] - 1)
    )
    many_raw = mixed & (raw >= 2)
    split_at = min(int(split), len(ts) - 1)
    at_end[many_raw] = (ts[last] - ts[split_at])[many_raw] / 1000 / (raw[many_raw] - 1)
    return at_start, at_end


def _counter_corrections(values: FloatArray, first: IntArray, last: IntArray) -> FloatArray:
    """For each window [first, last]: the sum of the values just before each decrease."""
    if len(values) < 2:
        return np.zeros(len(first))
    drops = np.where(values[1:] < values[:-1], values[:-1], 0.0)
    if not drops.any():
        return np.zeros(len(first))
    cumulative = np.concatenate(([0.0], np.cumsum(drops)))
    corrections = cumulative[last] - cumulative[first]
    # The running sum rounds; windows with a reset get an exact sum of their own drops.
    for i in np.nonzero((corrections != 0) | np.isnan(corrections))[0]:
        corrections[i] = exact_sum(drops[first[i] : last[i]])
    return corrections


def instant_value(
    ts: IntArray, values: FloatArray, lo: IntArray, hi: IntArray, *, is_rate: bool
) -> tuple[FloatArray, BoolArray]:
    """irate() / idelta(): from the last two samples of each window."""
    out = np.full(len(lo), np.nan)
    present = (hi - lo) >= 2
    idx = np.nonzero(present)[0]
    if len(idx) == 0:
        return out, present
    previous = hi[idx] - 2
    last = hi[idx] - 1
    interval = ts[last] - ts[previous]
    keep = interval != 0
    present[idx[~keep]] = False
    idx, previous, last, interval = idx[keep], previous[keep], last[keep], interval[keep]
    v0, v1 = values[previous], values[last]
    if is_rate:
        result = np.where(v1 < v0, v1, v1 - v0)  # a counter reset: the increase is v1
        result = result / (interval / 1000)
    else:
        result = v1 - v0
    out[idx] = result
    return out, present


def _per_window(
    values: FloatArray, lo: IntArray, hi: IntArray, reduce: Callable[[FloatArray], float]
) -> tuple[FloatArray, BoolArray]:
    out = np.full(len(lo), np.nan)
    present = hi > lo
    for i in np.nonzero(present)[0]:
        out[i] = reduce(values[lo[i] : hi[i]])
    return out, present


def _nan_aware_max(window: FloatArray) -> float:
    """Prometheus's max_over_time: NaN only when every value is NaN."""
    real = window[~np.isnan(window)]
    return float(real.max()) if len(real) else math.nan


def _nan_aware_min(window: FloatArray) -> float:
    real = window[~np.isnan(window)]
    return float(real.min()) if len(real) else math.nan


def _variance(window: FloatArray) -> float:
    mean = exact_sum(window) / len(window)
    return exact_sum((window - mean) ** 2) / len(window)


def over_time(
    name: str, values: FloatArray, lo: IntArray, hi: IntArray
) -> tuple[FloatArray, BoolArray]:
    """The `<aggregation>_over_time()` functions that need only the window's values."""
    if name == "count_over_time":
        present = hi > lo
        return np.where(present, (hi - lo).astype(np.float64), np.nan), present
    if name == "present_over_time":
        present = hi > lo
        return np.where(present, 1.0, np.nan), present
    if name == "last_over_time":
        present = hi > lo
        out = np.full(len(lo), np.nan)
        out[present] = values[hi[present] - 1]
        return out, present
    reducers: dict[str, Callable[[FloatArray], float]] = {
        "sum_over_time": exact_sum,
        "avg_over_time": lambda w: exact_sum(w) / len(w),
        "max_over_time": _nan_aware_max,
        "min_over_time": _nan_aware_min,
        "stdvar_over_time": _variance,
        "stddev_over_time": lambda w: math.sqrt(_variance(w)),
    }
    return _per_window(values, lo, hi, reducers[name])


def quantile_over_time(
    q: FloatArray, values: FloatArray, lo: IntArray, hi: IntArray
) -> tuple[FloatArray, BoolArray]:
    out = np.full(len(lo), np.nan)
    present = hi > lo
    for i in np.nonzero(present)[0]:
        out[i] = quantile(float(q[i]), values[lo[i] : hi[i]].tolist())
    return out, present


def changes_or_resets(
    name: str, values: FloatArray, lo: IntArray, hi: IntArray
) -> tuple[FloatArray, BoolArray]:
    """changes(): value changed (NaN to NaN is no change); resets(): value decreased."""
    present = hi > lo
    if len(values) < 2:
        return np.where(present, 0.0, np.nan), present
    previous, current = values[:-1], values[1:]
    if name == "changes":
        events = (current != previous) & ~(np.isnan(current) & np.isnan(previous))
    else:
        events = current < previous
    cumulative = np.concatenate(([0], np.cumsum(events.astype(np.int64))))
    first = np.minimum(lo, len(values) - 1)
    last = np.maximum(hi - 1, first)
    counts = (cumulative[last] - cumulative[first]).astype(np.float64)
    return np.where(present, counts, np.nan), present


def quantile(q: float, values: Sequence[float]) -> float:
    """Prometheus's quantile(): linear between the two nearest ranks."""
    if not values or math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = sorted(values, key=_value_sort_key)
    n = len(ordered)
    rank = q * (n - 1)
    lower = max(0.0, math.floor(rank))
    upper = min(n - 1.0, lower + 1)
    weight = rank - math.floor(rank)
    return ordered[int(lower)] * (1 - weight) + ordered[int(upper)] * weight


def _value_sort_key(value: float) -> tuple[int, float]:
    """Go's sort of samples by value puts NaN first."""
    return (0, 0.0) if math.isnan(value) else (1, value)


def bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus's bucketQuantile over classic buckets (upper bound, cumulative count).

    Sorted by bound, buckets with the same bound merged, counts that differ by float noise
    (1e-12 relative) equalized, any decrease removed (monotonicity forced), then linear
    interpolation inside the bucket holding the rank; a lower bound of 0 is assumed for the
    first bucket when its bound is positive; a rank in the +Inf bucket gives the highest
    finite bound.
    """
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = sorted(buckets, key=lambda b: b[0])
    if not ordered or not (math.isinf(ordered[-1][0]) and ordered[-1][0] > 0):
        return math.nan
    merged: list[list[float]] = []
    for bound, count in ordered:
        if merged and merged[-1][0] == bound:
            merged[-1][1] += count
        else:
            merged.append([bound, count])
    _correct_precision_errors(merged, 1e-12)
    _ensure_monotonic(merged)
    if len(merged) < 2:
        return math.nan
    observations = merged[-1][1]
    if observations == 0:
        return math.nan
    rank = q * observations
    # sort.Search over all but the last bucket: the first whose count >= rank.
    b = next((i for i in range(len(merged) - 1) if merged[i][1] >= rank), len(merged) - 1)
    if b == len(merged) - 1:
        return merged[-2][0]
    if b == 0 and merged[0][0] <= 0:
        return merged[0][0]
    bucket_start = 0.0
    bucket_end = merged[b][0]
    count = merged[b][1]
    if b > 0:
        bucket_start = merged[b - 1][0]
        count -= merged[b - 1][1]
        rank -= merged[b - 1][1]
    return bucket_start + (bucket_end - bucket_start) * (rank / count)


def _correct_precision_errors(buckets: list[list[float]], tolerance: float) -> None:
    previous = buckets[0][1]
    for bucket in buckets[1:]:
        current = bucket[1]
        delta = abs(current - previous)
        if delta == 0:
            continue
        if current != 0 and delta / current <= tolerance:
            bucket[1] = previous
        else:
            previous = current


def _ensure_monotonic(buckets: list[list[float]]) -> None:
    highest = buckets[0][1]
    for bucket in buckets[1:]:
        if bucket[1] > highest:
            highest = bucket[1]
        elif bucket[1] < highest:
            bucket[1] = highest
