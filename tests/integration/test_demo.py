"""`inferops demo` closes the loop for every fault kind, on CPU, as `make demo` runs it.

Each run starts the real fleet (torch model, router, node processes), the control plane, a
load generator and (once) the dashboard, and checks the report the issue specifies.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

EXPECTED_ALERTS = {
    # The node's own signal, or the router's view of it (a failed health check, or an
    # ejection after consecutive failures): whichever fires first detects the fault.
    "error-burst": {"NodeHighErrorRate", "NodeUnhealthy"},
    "latency": {"NodeHighLatency"},
    "crash": {"NodeDown", "NodeUnhealthy"},
    "gpu-xid": {"GpuXidError"},
}


@pytest.mark.parametrize(
    ("fault", "dashboard"),
    [("error-burst", True), ("latency", False), ("crash", False), ("gpu-xid", False)],
    ids=[
        "an error burst is detected and the node drained, dashboard up",
        "added latency is detected and the node drained",
        "a crashed node is detected and drained",
        "a GPU XID error is detected and the node drained",
    ],
)
def test_the_demo_closes_the_loop(fault: str, dashboard: bool, tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    argv = [
        sys.executable,
        "-m",
        "inferops",
        "demo",
        "--fault",
        fault,
        "--duration",
        "45",
        "--report",
        str(report_path),
    ]
    if not dashboard:
        argv.append("--no-dashboard")
    env = {k: v for k, v in os.environ.items() if k != "INFEROPS_ADMIN_TOKEN"}
    result = subprocess.run(
        argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    report = json.loads(report_path.read_text())

    assert report["fault"]["kind"] == fault
    assert report["fault"]["node"] == "node-1"
    assert report["detection"]["node"] == "node-1"
    assert report["detection"]["alert"] in EXPECTED_ALERTS[fault]
    drained = [
        r for r in report["remediation"] if r["action"] == "drain" and r["outcome"] == "succeeded"
    ]
    assert [r["node"] for r in drained] == ["node-1"], report["remediation"]
    assert 0 < report["time_to_detect_s"] <= 15
    assert report["time_to_detect_s"] <= report["time_to_mitigate_s"] <= 20
    assert report["requests"]["succeeded"] > 0
    assert (
        report["requests"]["total"]
        == report["requests"]["succeeded"] + report["requests"]["failed"]
    )
    assert [s["name"] for s in report["slos"]] == ["router-availability", "router-latency"]
    assert "verdict:      loop closed" in output
    assert (tmp_path / ".inferops" / "admin-token").stat().st_mode & 0o777 == 0o600
    if dashboard:
        assert "Dashboard: http://127.0.0.1:" in output
