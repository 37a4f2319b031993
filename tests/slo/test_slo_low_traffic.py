"""Low traffic and thresholds between buckets, the same in the native engine and promtool.

`min_events` keeps the burn-rate alerts quiet while the long window holds fewer events than
that (Pyrra's users were paged by one error in a handful of requests); a latency threshold
between two bucket bounds is interpolated as `histogram_quantile` does.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from slo_replay import Scenario, expand, parse_series, run_native, write_promtool_test

from collectors import SampleStore, ScrapedSample, StoreSource
from slo import BurnRateWindow, load_burn_rate_windows, parse_slo_specs

PAGE = [w for w in load_burn_rate_windows("sre-workbook-v1") if w.severity == "page"]
SPEC = """\
version: inferops/v1
slos:
  - name: api-availability
    objective: 0.999
{min_events}    sli:
      ratio:
        bad: http_requests_total{{status="5xx"}}
        total: http_requests_total
"""
# Sampled every 10 s for 64 minutes: a request every 6 minutes until 54 min (times
# `scale`), then at 60 min one (times `scale`) that fails: 1 error in 10 requests over the
# hour, the only request of the last 5 minutes (error ratio 1.0 there).


def low_traffic_series(scale: int) -> dict[str, str]:
    ok = " ".join(f"{i * scale}x35" for i in range(9)) + f" {9 * scale}x59"
    return {
        'http_requests_total{status="2xx"}': ok,
        'http_requests_total{status="5xx"}': f"0x359 {scale}x24",
    }


LOW_TRAFFIC = {
    "one error in 10 requests pages without a minimum": (0, 1, True),
    "one error in 10 requests does not page with min_events 20": (20, 1, False),
    "ten errors in 100 requests still page with min_events 20": (20, 10, True),
}


@pytest.mark.parametrize(
    ("min_events", "scale", "pages"), LOW_TRAFFIC.values(), ids=LOW_TRAFFIC.keys()
)
def test_a_minimum_event_count_keeps_a_single_error_from_paging(
    tmp_path: Path,
    promtool: Callable[..., subprocess.CompletedProcess[str]],
    min_events: int,
    scale: int,
    pages: bool,
) -> None:
    line = f"    min_events: {min_events}\n" if min_events else ""
    [spec] = parse_slo_specs(SPEC.format(min_events=line))
    assert spec.min_events == min_events
    expected = frozenset({"page"}) if pages else frozenset()
    checks = {3570.0: frozenset(), 3640.0: expected, 3780.0: expected}
    scenario = Scenario(
        spec, PAGE, 10, 70, low_traffic_series(scale), checks, {3640.0: {300.0: 1.0}}
    )
    native = run_native(tmp_path, scenario)
    assert native.firing == checks
    assert native.ratios == {3640.0: {300.0: 1.0}}
    write_promtool_test(tmp_path, scenario)
    result = promtool("test", "rules", "slo-test.yaml")
    assert result.stdout == "Unit Testing:  slo-test.yaml\n  SUCCESS\n\n", result.stdout


H = "vllm:e2e_request_latency_seconds"
INTERPOLATED = f"""\
version: inferops/v1
slos:
  - name: chat-latency
    objective: 0.99
    sli:
      latency:
        histogram: {H}
        threshold: {{threshold}}
        buckets: [0.5, 1, 2.5, 5]
"""
# 70 requests every 7 s: from 21 minutes, 60 under 0.5 s and 10 between 1 and 2.5 s.
LATENCY_SERIES = {
    f'{H}_bucket{{le="0.5"}}': "0+70x180 12660+60x179",
    f'{H}_bucket{{le="1.0"}}': "0+70x180 12660+60x179",
    f'{H}_bucket{{le="2.5"}}': "0+70x360",
    f'{H}_bucket{{le="5.0"}}': "0+70x360",
    f'{H}_bucket{{le="+Inf"}}': "0+70x360",
    f"{H}_count": "0+70x360",
}
BETWEEN = {
    # 2 s is 2/3 of the way from 1 to 2.5: good = 60 + 10 x 2/3, bad = 10/3 of 70.
    "between two bounds": ("2s", 1 / 21),
    # 0.25 s is half of the first bucket, which histogram_quantile starts at 0.
    "below the first bound": ("0.25s", 0.5 + (10 / 70) * 0.5),
    "on a bound": ("2.5s", 0.0),
}


@pytest.mark.parametrize(("threshold", "ratio"), BETWEEN.values(), ids=BETWEEN.keys())
def test_a_threshold_between_buckets_is_interpolated_like_histogram_quantile(
    tmp_path: Path,
    promtool: Callable[..., subprocess.CompletedProcess[str]],
    threshold: str,
    ratio: float,
) -> None:
    [spec] = parse_slo_specs(INTERPOLATED.format(threshold=threshold))
    windows = [BurnRateWindow("page", long_window_s=1800, short_window_s=300, burn_rate=1.0)]
    firing = frozenset({"page"}) if ratio > 0.01 else frozenset()
    checks = {2450.0: firing}
    scenario = Scenario(spec, windows, 7, 70, LATENCY_SERIES, checks, {2450.0: {300.0: ratio}})
    native = run_native(tmp_path, scenario)
    assert native.firing == checks
    assert native.ratios[2450.0][300.0] == pytest.approx(ratio, rel=1e-12)
    if ratio > 0:
        # The share under the threshold is the quantile whose histogram_quantile is the
        # threshold: the two interpolations are one.
        database = sa.create_engine(f"sqlite:///{tmp_path / 'quantile.db'}")
        store = SampleStore(database)
        store.append(
            [
                ScrapedSample(*parse_series(text), value, index * 7.0)
                for text, notation in LATENCY_SERIES.items()
                for index, value in enumerate(expand(notation))
            ]
        )
        [answer] = StoreSource(store).query(
            f"histogram_quantile({1 - ratio!r}, sum by (le) (rate({H}_bucket[5m])))", 2450.0
        )
        database.dispose()
        assert answer.value == pytest.approx(spec.sli.threshold_s, rel=1e-9)  # type: ignore[union-attr]
    write_promtool_test(tmp_path, Scenario(spec, windows, 7, 70, LATENCY_SERIES, checks))
    result = promtool("test", "rules", "slo-test.yaml")
    assert result.stdout == "Unit Testing:  slo-test.yaml\n  SUCCESS\n\n", result.stdout
