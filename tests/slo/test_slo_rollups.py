"""Roll-ups (per-minute counts, prefix sums) agree with the PromQL path on the same data:
exactly over steady minutes, within 0.3 % where PromQL extrapolates a window's edge."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from slo_replay import expand

from collectors import SampleStore, ScrapedSample, StoreSource
from slo import (
    EventRollups,
    SloEvaluator,
    load_burn_rate_windows,
    minute_increases,
    parse_slo_specs,
)

SPEC = """\
version: inferops/v1
slos:
  - name: api-availability
    objective: 0.999
    sli:
      ratio:
        bad: http_requests_total{status="5xx"}
        total: http_requests_total
"""
# The Workbook scenario: 6 hours at 100 requests/s every 10 s, 15% errors for 10 minutes.
OK = "10000+1000x2160 2170850+850x59 2222000+1000x239"
FAILED = "100+0x2160 250+150x59 9100+0x239"


def test_roll_up_ratios_match_the_promql_evaluator_on_the_same_samples(tmp_path: Path) -> None:
    [spec] = parse_slo_specs(SPEC)
    ok, failed = np.array(expand(OK)), np.array(expand(FAILED))
    times = np.arange(len(ok), dtype=np.float64) * 10.0
    minutes = int(times[-1] // 60)
    bad = minute_increases(times, failed, 0.0, minutes)
    total = np.add(bad, minute_increases(times, ok, 0.0, minutes))
    # 100 requests/s: 6,000 a minute; the first minute misses the delta before sample 0.
    assert total[1] == 6000.0 and bad[359] == 0.0 and bad[360] == 900.0

    database = sa.create_engine(f"sqlite:///{tmp_path / 'rollups.db'}")
    store = SampleStore(database)
    store.append(
        [
            ScrapedSample("http_requests_total", {"status": "2xx"}, v, t)
            for t, v in zip(times, ok, strict=True)
        ]
        + [
            ScrapedSample("http_requests_total", {"status": "5xx"}, v, t)
            for t, v in zip(times, failed, strict=True)
        ]
    )
    evaluator = SloEvaluator(StoreSource(store))
    rollups = EventRollups(1, capacity_minutes=minutes)
    try:
        compared = 0
        for minute in range(minutes):
            rollups.append_minute(bad[minute : minute + 1], total[minute : minute + 1])
            at_s = (minute + 1) * 60.0
            if at_s not in (21_900.0, 22_200.0, 22_500.0, 23_400.0):
                continue
            for window_s in (300.0, 3600.0):
                promql = evaluator.error_ratio(spec, window_s, at_s)
                rolled = rollups.error_ratios(round(window_s / 60))[0]
                assert rolled == pytest.approx(promql, rel=0.005, abs=1e-9), (at_s, window_s)
                compared += 1
    finally:
        database.dispose()
    assert compared == 8


def test_the_roll_ups_page_when_the_rules_do() -> None:
    # Two SLOs, 99.9%: the first fails every request from minute 60 on, the second never.
    rollups = EventRollups(2, capacity_minutes=4320)
    page = [w for w in load_burn_rate_windows("sre-workbook-v1") if w.severity == "page"]
    objectives = np.array([0.999, 0.999])
    paged_at = None
    for minute in range(62):
        failing = 6000.0 if minute >= 60 else 0.0
        rollups.append_minute(np.array([failing, 0.0]), np.array([6000.0, 6000.0]))
        firing = rollups.burning(objectives, page)["page"]
        if firing[0] and paged_at is None:
            paged_at = minute
        assert not firing[1]
    # The first whole minute of the outage already spends 1/60 > 1.44% of the hour.
    assert paged_at == 60
    quiet = rollups.burning(objectives, page, min_events=np.array([1e9, 1e9]))["page"]
    assert quiet.tolist() == [False, False]
