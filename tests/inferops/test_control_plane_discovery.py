"""The control plane follows a file_sd file at runtime and compacts its store in the background."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from inferops import ControlPlane, load_settings


class Exporter:
    def __init__(self) -> None:
        registry = CollectorRegistry()
        Gauge("gpu_temp_celsius", "T.", registry=registry).set(41.0)
        self.httpd, self.thread = start_http_server(0, addr="127.0.0.1", registry=registry)
        self.address = f"127.0.0.1:{self.httpd.server_port}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def exporters() -> Iterator[tuple[Exporter, Exporter]]:
    first, second = Exporter(), Exporter()
    yield first, second
    first.stop()
    second.stop()


def write_targets(path: Path, addresses: list[str], mtime_ns: int) -> None:
    path.write_text(json.dumps([{"targets": addresses, "labels": {"pool": "h100"}}]))
    os.utime(path, ns=(mtime_ns, mtime_ns))


async def test_targets_follow_the_file_and_removed_ones_go_stale(
    tmp_path: Path, exporters: tuple[Exporter, Exporter]
) -> None:
    first, second = exporters
    targets = tmp_path / "sd" / "nodes.json"
    targets.parent.mkdir()
    write_targets(targets, [first.address], 10**18)
    config = tmp_path / "inferops.yaml"
    config.write_text(
        f"""\
store:
  url: sqlite:///{tmp_path}/store.db
  compaction_interval: 50ms
global:
  scrape_interval: 100ms
  scrape_timeout: 1s
  evaluation_interval: 100ms
scrape_configs:
  - job_name: nodes
    file_sd_configs:
      - files: [sd/*.json]
        refresh_interval: 50ms
"""
    )
    plane = ControlPlane(load_settings(config, environ={}))
    assert [t.url for t in plane.scraper.targets] == [f"http://{first.address}/metrics"]
    running = asyncio.create_task(plane.run())

    async def wait_for(check: object) -> None:
        assert callable(check)
        for _ in range(400):
            if await check():
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the control plane never got there")

    try:

        async def first_scraped() -> bool:
            frame = await asyncio.to_thread(plane.store.select, "up", 0, 2e9)
            return bool(len(frame))

        await wait_for(first_scraped)
        write_targets(targets, [second.address], 10**18 + 1)

        async def switched() -> bool:
            frame = await asyncio.to_thread(plane.store.select, "up", 0, 2e9)
            instances = {labels["instance"] for labels in frame["labels"]}
            ended = frame[frame["stale"]]
            return second.address in instances and any(
                labels["instance"] == first.address for labels in ended["labels"]
            )

        await wait_for(switched)
        assert [t.url for t in plane.scraper.targets] == [f"http://{second.address}/metrics"]
        assert {dict(t.labels)["pool"] for t in plane.scraper.targets} == {"h100"}
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        plane.close()
    # The background compaction ran (a fresh store: nothing older than 6 h to roll up).
    with plane.database.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM metric_retention").scalar() == 1
