"""The router's node registry (`GET /sd/targets`): Prometheus http_sd target groups, read by
the control plane's http_sd discovery and by a real Prometheus."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from _router_support import (
    CLIENT,
    TOKEN,
    SupervisedFleet,
    free_port,
    standin_nodes,
    wait_until,
)

from exporters import ProcessOwner, RegistryAttribution
from inferops import ControlPlane, load_settings
from reference_server import Router, create_router_app

pytestmark = pytest.mark.integration


@contextlib.contextmanager
def serve_router(router: Router, port: int) -> Iterator[str]:
    """`router` served by uvicorn on a given port (a restarted fleet keeps its address)."""
    config = uvicorn.Config(
        create_router_app(router),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 10.0, "the router to start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def sd_targets(url: str) -> list[dict[str, object]]:
    answer = CLIENT.get(f"{url}/sd/targets", timeout=5.0)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert isinstance(body, list)
    return body


def expected_group(address: str, node: str, status: str, pid: int | None) -> dict[str, object]:
    labels = {"node": node, "model_name": "inferops-tiny", "__meta_inferops_status": status}
    if pid is not None:
        labels["__meta_inferops_pid"] = str(pid)
    return {"targets": [address], "labels": labels}


def test_the_registry_lists_every_node_with_its_status_and_pid_and_follows_a_cycle() -> None:
    with SupervisedFleet(2) as fleet:
        url = fleet.server.url
        supervisor = fleet.supervisor
        addresses = [f"127.0.0.1:{spec.port}" for spec in fleet.specs]
        first = {n: supervisor.pid(n) for n in ("node-0", "node-1")}
        assert sd_targets(url) == [
            expected_group(addresses[0], "node-0", "serving", first["node-0"]),
            expected_group(addresses[1], "node-1", "serving", first["node-1"]),
        ]
        httpx.post(
            f"{url}/admin/nodes/node-0/drain",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        ).raise_for_status()
        assert sd_targets(url)[0] == expected_group(
            addresses[0], "node-0", "drained", first["node-0"]
        )
        assert fleet.cycle("node-1").status_code == 200
        cycled = supervisor.pid("node-1")
        assert cycled is not None and cycled != first["node-1"]
        assert sd_targets(url)[1] == expected_group(addresses[1], "node-1", "serving", cycled)
        # Read only, no auth: nothing else is answered there.
        assert CLIENT.post(f"{url}/sd/targets", timeout=5.0).status_code == 405
        # A standalone GPU exporter on this host attributes the node processes from it.
        attribution = RegistryAttribution(f"{url}/sd/targets", refresh_interval_s=3600)
        try:
            assert attribution.owners() == {
                first["node-0"]: ProcessOwner("node-0", "inferops-tiny"),
                cycled: ProcessOwner("node-1", "inferops-tiny"),
            }
        finally:
            attribution.close()


def test_a_router_without_a_supervisor_lists_nodes_without_pids() -> None:
    with standin_nodes(1) as nodes:
        router = Router([nodes[0].spec], admin_token=TOKEN, health_interval_s=0.25)
        with serve_router(router, free_port()) as url:
            wait_until(lambda: router.pool.nodes[0].healthy, 10, "node-0 healthy")
            assert sd_targets(url) == [
                expected_group(f"127.0.0.1:{nodes[0].spec.port}", "node-0", "serving", None)
            ]


async def test_the_control_plane_scrapes_what_the_registry_lists(tmp_path: Path) -> None:
    """A fleet restarted with a node more: the scraper's targets follow; while the router
    is away the last good set stays."""
    port = free_port()
    config = tmp_path / "inferops.yaml"
    config.write_text(
        f"""\
store:
  url: sqlite:///{tmp_path}/store.db
global:
  scrape_interval: 100ms
  scrape_timeout: 1s
  evaluation_interval: 100ms
scrape_configs:
  - job_name: fleet
    http_sd_configs:
      - url: http://127.0.0.1:{port}/sd/targets
        refresh_interval: 50ms
        timeout: 1s
"""
    )
    settings = load_settings(config, environ={})

    async def targets_become(expected: list[tuple[str, dict[str, str]]]) -> None:
        for _ in range(200):
            now = [(t.url, dict(t.labels)) for t in plane.scraper.targets]
            if now == expected:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"scraper targets {now} never became {expected}")

    with standin_nodes(3) as nodes:
        specs = [node.spec for node in nodes]

        def target(i: int) -> tuple[str, dict[str, str]]:
            return (
                f"http://127.0.0.1:{specs[i].port}/metrics",
                {"node": f"node-{i}", "model_name": "inferops-tiny"},
            )

        with serve_router(Router(specs[:2], admin_token=TOKEN), port):
            plane = ControlPlane(settings)
        running = asyncio.create_task(plane.run())
        try:
            assert [(t.url, dict(t.labels)) for t in plane.scraper.targets] == [
                target(0),
                target(1),
            ]
            await asyncio.sleep(0.3)  # several refreshes against a router that is gone
            assert [(t.url, dict(t.labels)) for t in plane.scraper.targets] == [
                target(0),
                target(1),
            ]
            assert plane.discoveries[0][1].error is not None
            with serve_router(Router(specs, admin_token=TOKEN), port):
                await targets_become([target(0), target(1), target(2)])
            with serve_router(Router([specs[2]], admin_token=TOKEN), port):
                await targets_become([target(2)])
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            plane.close()


def test_a_real_prometheus_discovers_the_fleet_through_the_registry(tmp_path: Path) -> None:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed (Debian package 'prometheus')")
    with standin_nodes(2) as nodes:
        router = Router([n.spec for n in nodes], admin_token=TOKEN, health_interval_s=0.25)
        with serve_router(router, free_port()) as url:
            (tmp_path / "prometheus.yml").write_text(
                f"""\
scrape_configs:
  - job_name: fleet
    scrape_interval: 1m
    http_sd_configs:
      - url: {url}/sd/targets
        refresh_interval: 1s
"""
            )
            port = free_port()
            process = subprocess.Popen(
                [
                    binary,
                    "--config.file=prometheus.yml",
                    "--storage.tsdb.path=tsdb",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=(tmp_path / "log.txt").open("w"),
            )
            try:
                found: list[dict[str, object]] = []

                def discovered() -> bool:
                    nonlocal found
                    try:
                        answer = CLIENT.get(
                            f"http://127.0.0.1:{port}/api/v1/targets", timeout=1.0
                        ).json()
                    except (httpx.HTTPError, ValueError):
                        return False
                    found = answer["data"]["activeTargets"]
                    return len(found) == 2 and all(
                        t["discoveredLabels"].get("__meta_inferops_status") == "serving"
                        for t in found
                    )

                deadline = time.monotonic() + 60
                while not discovered():
                    assert process.poll() is None, (tmp_path / "log.txt").read_text()[-2000:]
                    assert time.monotonic() < deadline, f"prometheus found {found}"
                    time.sleep(0.2)
                by_node = sorted(found, key=lambda t: str(t["labels"]))
                for index, active in enumerate(by_node):
                    address = f"127.0.0.1:{nodes[index].spec.port}"
                    assert active["labels"] == {
                        "instance": address,
                        "job": "fleet",
                        "model_name": "inferops-tiny",
                        "node": f"node-{index}",
                    }
                    assert active["scrapeUrl"] == f"http://{address}/metrics"
                    discovered_labels = active["discoveredLabels"]
                    assert isinstance(discovered_labels, dict)
                    assert discovered_labels["__meta_url"] == f"{url}/sd/targets"
                    assert discovered_labels["__meta_inferops_status"] == "serving"
            finally:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
