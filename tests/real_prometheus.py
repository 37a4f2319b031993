"""A real Prometheus on 127.0.0.1 for the tests that compare against it: started in a folder,
optionally backfilled by promtool, and stopped on exit. One place, so every caller starts it
the same way and waits for it the same way."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest

from collectors import ScrapedSample

__all__ = ["backfill", "openmetrics", "running_prometheus"]

NOT_INSTALLED = "prometheus/promtool are not installed (Debian package 'prometheus')"


def openmetrics(samples: list[ScrapedSample]) -> str:
    """The samples as OpenMetrics text, the input promtool's backfill takes."""
    by_series: dict[tuple[str, tuple[tuple[str, str], ...]], list[ScrapedSample]] = {}
    for one in samples:
        by_series.setdefault((one.name, tuple(sorted(one.labels.items()))), []).append(one)
    lines = []
    for (name, labels), series in by_series.items():
        text = ",".join(f'{key}="{value}"' for key, value in labels)
        lines += [f"{name}{{{text}}} {one.value!r} {one.timestamp_s:.3f}" for one in series]
    return "\n".join([*lines, "# EOF", ""])


def backfill(folder: Path, samples: list[ScrapedSample]) -> None:
    """Write the samples into `folder/tsdb` as blocks (promtool), for a Prometheus to serve.
    OpenMetrics names may not hold ':'; promtool takes them as Prometheus does."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip(NOT_INSTALLED)
    (folder / "data.om").write_text(openmetrics(samples))
    done = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", "data.om", "tsdb"],
        cwd=folder, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr


@contextlib.contextmanager
def running_prometheus(
    folder: Path,
    config_yaml: str = "global:\n  scrape_interval: 1m\n",
    extra_args: Sequence[str] = ("--storage.tsdb.retention.time=30d",),
) -> Iterator[str]:
    """Start Prometheus on `folder/tsdb` with this config, wait until it is ready, yield its
    URL; stop it on exit. Skips the test when Prometheus is not installed."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip(NOT_INSTALLED)
    (folder / "prometheus.yml").write_text(config_yaml)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log_path = folder / "log.txt"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [binary, "--config.file=prometheus.yml", "--storage.tsdb.path=tsdb",
             f"--web.listen-address=127.0.0.1:{port}", *extra_args],
            cwd=folder, stdout=subprocess.DEVNULL, stderr=log,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"prometheus did not start: {log_path.read_text()[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
