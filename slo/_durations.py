"""Durations as Prometheus writes them (`30d`, `1h30m`, `500ms`), in seconds."""

from __future__ import annotations

import re

_UNIT_SECONDS = {
    "y": 365 * 86_400.0,
    "w": 7 * 86_400.0,
    "d": 86_400.0,
    "h": 3_600.0,
    "m": 60.0,
    "s": 1.0,
    "ms": 1.0,
}
_DURATION = re.compile("".join(rf"(?:(?P<{unit}>\d+(?:\.\d+)?){unit})?" for unit in _UNIT_SECONDS))


def parse_duration(text: str) -> float:
    """`1h30m` -> 5400.0 seconds.

    Prometheus syntax (units y, w, d, h, m, s, ms, largest first), also accepting decimals
    such as `2.5s` because latency thresholds are rarely whole seconds. Raises `ValueError`
    with the text when it is not a duration.
    """
    match = _DURATION.fullmatch(text.strip())
    if not text.strip() or match is None:
        raise ValueError(
            f"not a duration: {text!r} (expected Prometheus syntax such as 30d, 1h30m, 500ms)"
        )
    seconds = 0.0
    for unit, count in match.groupdict().items():
        if count is not None:
            # Dividing keeps `500ms` exactly 0.5 where multiplying by 0.001 would not.
            seconds += float(count) / 1000 if unit == "ms" else float(count) * _UNIT_SECONDS[unit]
    return seconds
