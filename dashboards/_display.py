"""How numbers and instants read on the page: one place, so every table says it the same way.

Missing data is a dash, never `0` or `nan`, so an engineer does not mistake "no data" for
"all quiet".
"""

from __future__ import annotations

import datetime
import math

NO_VALUE = "\N{EN DASH}"


def format_number(value: float | None, *, decimals: int = 2) -> str:
    if value is None or math.isnan(value):
        return NO_VALUE
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:.{decimals}f}"


def format_count(value: float | None) -> str:
    """A gauge that counts things (queued requests): whole numbers without decimals."""
    if value is not None and math.isfinite(value) and value.is_integer():
        return str(int(value))
    return format_number(value, decimals=1)


def format_seconds(value: float | None) -> str:
    """Latencies: milliseconds under a second, seconds above."""
    if value is None or math.isnan(value):
        return NO_VALUE
    if math.isinf(value):
        return "> largest bucket"
    if abs(value) < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.2f} s"


def format_ratio_percent(value: float | None, *, decimals: int = 1) -> str:
    """A 0..1 ratio as a percentage."""
    if value is None or math.isnan(value):
        return NO_VALUE
    return f"{value * 100:.{decimals}f} %"


def format_percent(value: float | None) -> str:
    """A value already in percent (DCGM utilization)."""
    if value is None or math.isnan(value):
        return NO_VALUE
    return f"{value:.0f} %"


def format_instant(timestamp_s: float | None) -> str:
    """Unix seconds as UTC wall-clock time; the page headers say UTC."""
    if timestamp_s is None or not math.isfinite(timestamp_s):
        return NO_VALUE
    moment = datetime.datetime.fromtimestamp(timestamp_s, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def format_age(seconds: float | None) -> str:
    """A duration as an engineer says it: `45s`, `2m 5s`, `1h 3m`, `2d 4h`."""
    if seconds is None or not math.isfinite(seconds):
        return NO_VALUE
    total = max(0, round(seconds))
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


GIB = 1024**3


def format_memory(used_bytes: float | None, total_bytes: float | None) -> str:
    """GPU memory as `used / total GiB`, or just `used GiB` when the total is unknown."""
    if used_bytes is None or not math.isfinite(used_bytes):
        return NO_VALUE
    if total_bytes is None or not math.isfinite(total_bytes) or total_bytes <= 0:
        return f"{used_bytes / GIB:.1f} GiB"
    return f"{used_bytes / GIB:.1f} / {total_bytes / GIB:.0f} GiB"


def format_celsius(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return NO_VALUE
    return f"{value:.0f} \N{DEGREE SIGN}C"


def format_watts(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return NO_VALUE
    return f"{value:.0f} W"
