"""File-based service discovery: Prometheus's file_sd format, reloads, and a changing target set."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from collectors import (
    DiscoveryError,
    FileDiscovery,
    ScrapedSample,
    Scraper,
    ScrapeTarget,
    TargetGroup,
    parse_target_groups,
)

NOW = 1_767_000_000.0


def groups_of(groups: Sequence[TargetGroup]) -> list[tuple[list[str], dict[str, str]]]:
    return [(list(g.targets), dict(g.labels)) for g in groups]


def write(path: Path, text: str, *, mtime_ns: int) -> None:
    """Write and set the modification time, so that a change is seen whatever the clock."""
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(mtime_ns, mtime_ns))


# -- the file format ---------------------------------------------------------------------------


def test_a_json_file_gives_its_target_groups_in_order() -> None:
    text = json.dumps(
        [
            {"targets": ["10.0.0.1:9400", "10.0.0.2:9400"], "labels": {"pool": "h100"}},
            {"targets": ["[::1]:8000"]},
        ]
    )
    groups = parse_target_groups(text, filename="nodes.json")
    assert groups_of(groups) == [
        (["10.0.0.1:9400", "10.0.0.2:9400"], {"pool": "h100"}),
        (["[::1]:8000"], {}),
    ]
    assert [g.source for g in groups] == ["nodes.json:0", "nodes.json:1"]


def test_a_yaml_file_reads_the_same_and_meta_labels_are_dropped() -> None:
    text = """\
- targets: [gpu-node-1:9400]
  labels:
    pool: a100
    __meta_generator: terraform
    __metrics_path__: /dcgm/metrics
"""
    assert groups_of(parse_target_groups(text, filename="nodes.yaml")) == [
        (["gpu-node-1:9400"], {"pool": "a100", "__metrics_path__": "/dcgm/metrics"})
    ]
    assert parse_target_groups("", filename="empty.yml") == []


@pytest.mark.parametrize(
    ("filename", "text", "message"),
    [
        ("a.json", '[{"targets": ["x:1"]', "a.json:1: not valid JSON: Expecting ',' delimiter"),
        ("a.yaml", "- targets: [x:1\n", "a.yaml:2: not valid YAML"),
        ("a.json", '{"targets": ["x:1"]}', "a.json: expected a list of target groups, got dict"),
        ("a.json", '["x:1"]', "a.json:0: a target group must be a mapping, got 'x:1'"),
        ("a.json", '[{"targets": "x:1"}]', "a.json:0: targets must be a list of host:port"),
        ("a.json", '[{"targets": ["x"]}]', "a.json:0: targets: expected host:port, got 'x'"),
        (
            "a.json",
            '[{"targets": ["http://x:1/metrics"]}]',
            "a.json:0: targets: expected host:port, got 'http://x:1/metrics'",
        ),
        (
            "a.json",
            '[{"targets": ["x:1"], "labels": {"bad-name": "v"}}]',
            "a.json:0: labels: invalid label name 'bad-name'",
        ),
        (
            "a.json",
            '[{"targets": ["x:1"], "labels": {"gpu": 3}}]',
            "a.json:0: labels: value of 'gpu' must be a string, got 3",
        ),
        (
            "a.json",
            '[{"targets": ["x:1"], "label": {}}]',
            "a.json:0: unknown field 'label' (expected targets, labels)",
        ),
    ],
)
def test_a_malformed_file_is_refused_naming_file_group_and_reason(
    filename: str, text: str, message: str
) -> None:
    with pytest.raises(DiscoveryError) as caught:
        parse_target_groups(text, filename=filename)
    assert str(caught.value).startswith(message)


# -- reloading ---------------------------------------------------------------------------------


def test_files_are_reread_only_when_they_change_and_a_bad_one_keeps_its_last_good_groups(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    nodes = tmp_path / "nodes.json"
    write(nodes, json.dumps([{"targets": ["a:1"], "labels": {"pool": "x"}}]), mtime_ns=10**18)
    discovery = FileDiscovery(["*.json"], refresh_interval_s=1, base_dir=tmp_path)
    assert discovery.refresh() is True
    assert groups_of(discovery.groups) == [(["a:1"], {"pool": "x"})]
    assert discovery.refresh() is False  # unchanged

    write(nodes, '[{"targets": ["a:1", "b:2"]', mtime_ns=10**18 + 1)  # half written
    with caplog.at_level(logging.ERROR, logger="inferops.collectors.discovery"):
        assert discovery.refresh() is False
    assert groups_of(discovery.groups) == [(["a:1"], {"pool": "x"})]
    assert [r.getMessage() for r in caplog.records] == [
        f"file_sd {nodes}: {nodes}:1: not valid JSON: Expecting ',' delimiter; "
        "keeping its last good target groups (1)"
    ]
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="inferops.collectors.discovery"):
        assert discovery.refresh() is False  # the same bad file is not logged again
    assert caplog.records == []

    write(nodes, json.dumps([{"targets": ["a:1", "b:2"]}]), mtime_ns=10**18 + 2)
    assert discovery.refresh() is True
    assert groups_of(discovery.groups) == [(["a:1", "b:2"], {})]

    write(tmp_path / "more.json", json.dumps([{"targets": ["c:3"]}]), mtime_ns=10**18)
    assert discovery.refresh() is True  # a new file matching the glob
    assert groups_of(discovery.groups) == [(["c:3"], {}), (["a:1", "b:2"], {})]

    nodes.unlink()
    assert discovery.refresh() is True  # a deleted file takes its targets with it
    assert groups_of(discovery.groups) == [(["c:3"], {})]


def test_a_bad_file_seen_first_gives_no_targets(tmp_path: Path) -> None:
    write(tmp_path / "nodes.yml", "targets: nope\n", mtime_ns=10**18)
    discovery = FileDiscovery([str(tmp_path / "nodes.yml")])
    assert discovery.refresh() is False
    assert discovery.groups == ()


@pytest.mark.parametrize(
    ("patterns", "interval", "message"),
    [
        ([], 1.0, "file discovery needs at least one file pattern"),
        (["a.json"], 0.0, "refresh_interval_s must be a positive number of seconds, got 0.0"),
        (["a.json"], math.inf, "refresh_interval_s must be a positive number of seconds, got inf"),
    ],
)
def test_discovery_arguments_are_checked(
    patterns: list[str], interval: float, message: str
) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(")):
        FileDiscovery(patterns, refresh_interval_s=interval)


async def test_run_calls_back_when_a_file_changes(tmp_path: Path) -> None:
    nodes = tmp_path / "nodes.json"
    write(nodes, json.dumps([{"targets": ["a:1"]}]), mtime_ns=10**18)
    discovery = FileDiscovery([str(nodes)], refresh_interval_s=0.02)
    discovery.refresh()
    seen: asyncio.Queue[tuple[TargetGroup, ...]] = asyncio.Queue()

    async def on_change(groups: tuple[TargetGroup, ...]) -> None:
        await seen.put(groups)

    task = asyncio.create_task(discovery.run(on_change))
    try:
        write(nodes, json.dumps([{"targets": ["b:2"]}]), mtime_ns=10**18 + 1)
        groups = await asyncio.wait_for(seen.get(), 30)
        assert groups_of(groups) == [(["b:2"], {})]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


# -- the scraper's target set changing at runtime ---------------------------------------------


class ListStore:
    def __init__(self) -> None:
        self.batches: list[list[ScrapedSample]] = []
        self.appended = threading.Event()
        self._lock = threading.Lock()

    def append(self, samples: Sequence[ScrapedSample]) -> None:
        with self._lock:
            self.batches.append(list(samples))
        self.appended.set()

    def scraped_instances(self) -> set[str]:
        with self._lock:
            return {s.labels["instance"] for b in self.batches for s in b if s.name == "up"}


class Exporter:
    def __init__(self, value: float) -> None:
        self.registry = CollectorRegistry()
        Gauge("gpu_temp_celsius", "T.", ["gpu"], registry=self.registry).labels("0").set(value)
        self.httpd, self.thread = start_http_server(0, addr="127.0.0.1", registry=self.registry)
        self.address = f"127.0.0.1:{self.httpd.server_port}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def exporters() -> Iterator[list[Exporter]]:
    started = [Exporter(40.0), Exporter(50.0)]
    yield started
    for exporter in started:
        exporter.stop()


def target(address: str) -> ScrapeTarget:
    return ScrapeTarget("nodes", f"http://{address}/metrics", {}, 0.05, 5.0)


async def until(condition: object, store: ListStore) -> None:
    """Wait (bounded) for the scraper to have written what `condition` checks."""
    assert callable(condition)
    for _ in range(600):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the scraper never wrote what the test waits for")


async def test_targets_added_at_runtime_are_scraped_and_removed_ones_end_stale(
    exporters: list[Exporter],
) -> None:
    first, second = (target(e.address) for e in exporters)
    store = ListStore()
    scraper = Scraper([first], store, clock=lambda: NOW)
    running = asyncio.create_task(scraper.run())
    try:
        await until(lambda: store.scraped_instances() == {first.instance}, store)
        await scraper.set_targets([first, second])
        assert scraper.targets == (first, second)
        await until(lambda: second.instance in store.scraped_instances(), store)

        await scraper.set_targets([second])
        assert scraper.targets == (second,)
        markers = [
            b for b in store.batches if all(s.stale for s in b) and b[0].labels.get("instance")
            == first.instance
        ]
        assert len(markers) == 1
        labels = {"instance": first.instance, "job": "nodes"}
        assert sorted((s.name, dict(s.labels), s.timestamp_s) for s in markers[0]) == [
            ("gpu_temp_celsius", {**labels, "gpu": "0"}, NOW),
            ("scrape_duration_seconds", labels, NOW),
            ("scrape_samples_scraped", labels, NOW),
            ("up", labels, NOW),
        ]
        written = len(store.batches)
        await until(lambda: len(store.batches) >= written + 3, store)
        after = store.batches[written:]
        assert {s.labels["instance"] for b in after for s in b} == {second.instance}
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def test_a_target_never_scraped_is_removed_without_markers(exporters: list[Exporter]) -> None:
    store = ListStore()
    scraper = Scraper([target(exporters[0].address)], store)
    await scraper.set_targets([])
    assert scraper.targets == ()
    assert store.batches == []
