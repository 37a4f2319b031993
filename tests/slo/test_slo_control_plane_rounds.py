"""The control plane's round with the new SLO features: per-slice SLIs judged and stored
before the alert rules read them, and one recorded status per `group_by` group."""

from __future__ import annotations

from pathlib import Path

import pytest

from collectors import ScrapedSample
from inferops import ControlPlane, load_settings

SLOS = """\
version: inferops/v1
slos:
  - name: decode-throughput
    objective: 0.95
    sli:
      throughput:
        tokens: vllm:generation_tokens_total
        demand: vllm:num_requests_running
        min_tokens_per_s: 50
        slice: 10s
  - name: model-availability
    objective: 0.99
    group_by: [model_name]
    sli:
      ratio:
        bad: http_requests_total{status="5xx"}
        total: http_requests_total
"""
WINDOWS = """\
version: inferops/v1
windows:
  - {severity: page, burn_rate: 6, long_window: 1m, short_window: 20s}
"""


def test_a_round_records_the_slices_then_alerts_and_records_each_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("INFEROPS_STORE_URL", raising=False)
    (tmp_path / "slos.yaml").write_text(SLOS, encoding="utf-8")
    (tmp_path / "windows.yaml").write_text(WINDOWS, encoding="utf-8")
    settings_path = tmp_path / "inferops.yaml"
    settings_path.write_text(
        f"store:\n  url: sqlite:///{tmp_path / 'plane.db'}\n"
        "slo:\n  files: [slos.yaml]\n  windows: windows.yaml\n"
        "remediation:\n  enabled: false\n",
        encoding="utf-8",
    )
    plane = ControlPlane(load_settings(settings_path))
    try:
        # 2 s samples for 2 minutes: one request running, 10 tokens/s (under 50: every
        # slice bad); model a never fails, model b always does.
        samples = []
        for step in range(61):
            at_s = 1_000.0 + 2 * step
            samples += [
                ScrapedSample("vllm:generation_tokens_total", {}, 20.0 * step, at_s),
                ScrapedSample("vllm:num_requests_running", {}, 1.0, at_s),
                ScrapedSample(
                    "http_requests_total", {"model_name": "a", "status": "2xx"}, 4.0 * step, at_s
                ),
                ScrapedSample(
                    "http_requests_total", {"model_name": "b", "status": "5xx"}, 4.0 * step, at_s
                ),
            ]
        plane.store.append(samples)
        for at_s in (1_090.0, 1_100.0, 1_110.0, 1_120.0):
            plane.evaluate_once(at_s)
        frame = plane.store.select("slo:timeslice_bad:bool", 0.0, 2_000.0)
        recorded = [(dict(row.labels), row.timestamp_s, row.value) for row in frame.itertuples()]
        firing = sorted(
            (alert.labels["slo"], alert.labels.get("model_name", ""))
            for alert in plane.alert_engine.active()
            if "slo" in alert.labels  # not the always-firing Watchdog
        )
        statuses = [(s.name, dict(s.group), s.sli_value) for s in plane.last_slo_statuses]
    finally:
        plane.close()
    assert recorded == [
        ({"slo": "decode-throughput"}, at_s, 1.0) for at_s in (1_090.0, 1_100.0, 1_110.0, 1_120.0)
    ]
    assert firing == [("decode-throughput", ""), ("model-availability", "b")]
    assert statuses == [
        ("decode-throughput", {}, 0.0),
        ("model-availability", {"model_name": "a"}, 1.0),
        ("model-availability", {"model_name": "b"}, 0.0),
    ]
