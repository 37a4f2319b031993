"""The kernels page: each node's latest stored kernel profile and its diff against a
healthy peer (a profiled node no active alert names), read from a real `ProfileLog`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from dashboards_doubles import (
    Alert,
    AlertBook,
    DecisionBook,
    ScriptedSource,
    SetClock,
    table_message,
    table_rows,
)
from test_dashboards_app import Page

from collectors import open_database
from dashboards import DashboardData, ElementId, KernelDiffRow, KernelRow, create_app
from remediation import ProfileLog, ProfileOp, ProfileTable

NOW_S = 1_700_000_000.0
ARROW = "\N{RIGHTWARDS ARROW}"


def profile(node: str, *shares: tuple[str, float]) -> ProfileTable:
    return ProfileTable(node, "cuda:0", "self_device_time",
                        tuple(ProfileOp(name, 10, share * 100, share) for name, share in shares))


@pytest.fixture
def database(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = open_database(f"sqlite:///{tmp_path / 'inferops.db'}")
    yield engine
    engine.dispose()


@pytest.fixture
def profiles(database: sa.Engine) -> ProfileLog:
    log = ProfileLog(database)
    log.record(profile("node-1", ("aten::addmm", 0.7), ("aten::mm", 0.3)), taken_at_s=NOW_S - 900,
               seconds=3.0)
    log.record(profile("node-1", ("aten::mm", 0.62), ("aten::addmm", 0.30), ("aten::add", 0.08)),
               taken_at_s=NOW_S - 60, seconds=3.0)
    log.record(profile("node-0", ("aten::addmm", 0.70), ("aten::mm", 0.12), ("aten::add", 0.18)),
               taken_at_s=NOW_S - 60, seconds=3.0)
    log.record(profile("node-2", ("aten::addmm", 1.0)), taken_at_s=NOW_S - 30, seconds=5.0)
    return log


def data_with(profiles: ProfileLog | None, alerting: list[str]) -> DashboardData:
    active = [Alert(f"a{i}", {"alertname": "NodeHighLatency", "node": node}, "firing",
                    NOW_S - 120) for i, node in enumerate(alerting)]
    return DashboardData(ScriptedSource(), AlertBook(active=active), DecisionBook([]),
                         clock=SetClock(NOW_S), profiles=profiles)


def test_each_node_shows_its_latest_profile_and_its_diff_against_a_healthy_peer(
    profiles: ProfileLog,
) -> None:
    latest, diffs = data_with(profiles, ["node-1"]).kernels()
    assert latest == [
        KernelRow("node-0", NOW_S - 60, 3.0, "cuda:0", "aten::addmm 70.0%, aten::mm 12.0%, "
                  "aten::add 18.0%"),
        KernelRow("node-1", NOW_S - 60, 3.0, "cuda:0", "aten::mm 62.0%, aten::addmm 30.0%, "
                  "aten::add 8.0%"),
        KernelRow("node-2", NOW_S - 30, 5.0, "cuda:0", "aten::addmm 100.0%"),
    ]
    assert diffs == [
        # node-1 alerts, so node-0's first healthy peer is node-2.
        KernelDiffRow("node-0", "node-2", f"aten::add 0.0% {ARROW} 18.0%, "
                      f"aten::mm 0.0% {ARROW} 12.0%"),
        KernelDiffRow("node-1", "node-0", f"aten::mm 12.0% {ARROW} 62.0%"),
        KernelDiffRow("node-2", "node-0", f"aten::addmm 70.0% {ARROW} 100.0%"),
    ]


def test_with_every_profiled_node_alerting_there_is_no_healthy_peer(
    profiles: ProfileLog,
) -> None:
    _, diffs = data_with(profiles, ["node-0", "node-1", "node-2"]).kernels()
    assert [(d.node, d.peer, d.regressed_ops) for d in diffs] == [
        (node, None, "no healthy peer profiled") for node in ("node-0", "node-1", "node-2")]


def test_the_kernels_page_shows_both_tables(profiles: ProfileLog) -> None:
    answer = Page(create_app(data_with(profiles, ["node-1"]))).update(
        (ElementId.KERNELS_TABLE, "children"))
    latest = table_rows(answer[ElementId.KERNELS_TABLE]["children"])
    assert [row.key for row in latest] == ["node-0", "node-1", "node-2"]
    assert {k: text for k, (text, _) in latest[1].cells.items()} == {
        "node": "node-1", "taken_at_s": "2023-11-14 22:12:20", "seconds": "3 s",
        "device": "cuda:0", "top_ops": "aten::mm 62.0%, aten::addmm 30.0%, aten::add 8.0%"}
    diff = table_rows(answer[ElementId.KERNEL_DIFF_TABLE]["children"])
    assert diff[1].cells["regressed_ops"][0] == f"aten::mm 12.0% {ARROW} 62.0%"


def test_without_stored_profiles_the_page_says_where_they_come_from() -> None:
    answer = Page(create_app(data_with(None, []))).update((ElementId.KERNELS_TABLE, "children"))
    assert table_message(answer[ElementId.KERNELS_TABLE]["children"]) == (
        "no kernel profiles stored yet (the remediation profile step stores them)", 5)
