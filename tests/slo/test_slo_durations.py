"""Durations in Prometheus syntax, both ways."""

from __future__ import annotations

import pytest

from slo import format_duration, parse_duration

DURATIONS = [
    ("30d", 2_592_000.0),
    ("1h30m", 5_400.0),
    ("500ms", 0.5),
    ("1m30s500ms", 90.5),
    ("2w", 1_209_600.0),
    ("1y", 31_536_000.0),
    ("0s", 0.0),
]


@pytest.mark.parametrize(("text", "seconds"), DURATIONS, ids=[text for text, _ in DURATIONS])
def test_a_prometheus_duration_reads_as_seconds_and_back(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert format_duration(seconds) == {"2w": "14d", "1y": "365d"}.get(text, text)


def test_decimals_are_accepted_for_thresholds() -> None:
    assert parse_duration("2.5s") == 2.5


@pytest.mark.parametrize("text", ["", "5", "1h 30m", "30m1h", "1.5.0s", "-5s", "10 seconds"])
def test_anything_else_is_refused_with_the_text(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(text)
    assert str(caught.value) == (
        f"not a duration: {text!r} (expected Prometheus syntax such as 30d, 1h30m, 500ms)"
    )
