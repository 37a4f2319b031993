"""Burn-rate window sets: the shipped ones, files given by path, and bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from slo import BurnRateWindow, SloSpecError, load_burn_rate_windows


def test_the_workbook_set_is_the_sre_workbook_table() -> None:
    assert load_burn_rate_windows("sre-workbook-v1") == [
        BurnRateWindow(severity="page", long_window_s=3600, short_window_s=300, burn_rate=14.4),
        BurnRateWindow(severity="page", long_window_s=21600, short_window_s=1800, burn_rate=6),
        BurnRateWindow(severity="ticket", long_window_s=86400, short_window_s=7200, burn_rate=3),
        BurnRateWindow(severity="ticket", long_window_s=259200, short_window_s=21600, burn_rate=1),
    ]


def test_the_demo_set_scales_the_windows_down_to_seconds() -> None:
    assert load_burn_rate_windows("demo-v1") == [
        BurnRateWindow(severity="page", long_window_s=10, short_window_s=5, burn_rate=14.4),
        BurnRateWindow(severity="page", long_window_s=30, short_window_s=5, burn_rate=6),
        BurnRateWindow(severity="ticket", long_window_s=120, short_window_s=10, burn_rate=3),
        BurnRateWindow(severity="ticket", long_window_s=360, short_window_s=30, burn_rate=1),
    ]


GOOD_FILE = """\
version: inferops/v1
windows:
  - severity: page
    burn_rate: 10
    long_window: 1h
    short_window: 5m
    for: 2m
"""


def test_a_file_given_by_path_is_read(tmp_path: Path) -> None:
    path = tmp_path / "windows.yaml"
    path.write_text(GOOD_FILE, encoding="utf-8")
    assert load_burn_rate_windows(str(path)) == [
        BurnRateWindow(
            severity="page", long_window_s=3600, short_window_s=300, burn_rate=10, for_s=120
        )
    ]


BAD_FILES = [
    (
        "a short window longer than the long one",
        GOOD_FILE.replace("short_window: 5m", "short_window: 2h"),
        "windows.yaml:5: windows[0].long_window: must be longer than short_window",
    ),
    (
        "a burn rate of zero",
        GOOD_FILE.replace("burn_rate: 10", "burn_rate: 0"),
        "windows.yaml:4: windows[0].burn_rate: must be above zero, got 0",
    ),
    (
        "a missing severity",
        GOOD_FILE.replace("  - severity: page\n    burn_rate", "  - burn_rate"),
        "windows.yaml:3: windows[0].severity: required but missing",
    ),
    (
        "two windows of one severity with different waits",
        GOOD_FILE + GOOD_FILE.split("windows:\n")[1].replace("for: 2m", "for: 5m"),
        "windows.yaml:12: windows[1].for: windows of severity 'page' must share one 'for' "
        "(they become one alert rule), got 300s and 120s",
    ),
]


@pytest.mark.parametrize(
    ("text", "message"), [case[1:] for case in BAD_FILES], ids=[case[0] for case in BAD_FILES]
)
def test_a_bad_windows_file_is_refused_naming_line_and_field(
    tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / "windows.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(SloSpecError) as caught:
        load_burn_rate_windows(str(tmp_path / "windows.yaml"))
    assert str(caught.value) == f"{tmp_path}/{message}"


def test_an_unknown_name_lists_the_shipped_sets() -> None:
    with pytest.raises(SloSpecError) as caught:
        load_burn_rate_windows("sre-workbook-v2")
    assert str(caught.value) == (
        "sre-workbook-v2: not a shipped window set (demo-v1, sre-workbook-v1) and not a "
        "readable file (No such file or directory)"
    )
