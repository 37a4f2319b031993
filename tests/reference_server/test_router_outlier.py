"""Passive outlier ejection in the router's node pool, on a test-driven clock: when a node
is ejected, for how long, what caps it, and when it returns."""

from __future__ import annotations

import logging

import pytest

from reference_server import FleetConfig, FleetConfigError, NodeSpec, OutlierPolicy
from reference_server._router_pool import NodePool


class Clock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def make_pool(count: int, clock: Clock, ejected: list[tuple[str, str]] | None = None, *,
              pools: dict[str, list[str]] | None = None, **policy: float) -> NodePool:
    made = NodePool([NodeSpec(f"node-{i}", "127.0.0.1", 9000 + i) for i in range(count)],
                    pools=pools, outlier=OutlierPolicy(**policy),  # type: ignore[arg-type]
                    on_eject=lambda node, reason: (ejected if ejected is not None else []).append(
                        (node, reason)),
                    clock=clock)
    for node in made.nodes:
        made.set_health(node, True)
    return made


def fail(pool: NodePool, name: str, times: int, reason: str = "5xx") -> list[bool]:
    return [pool.failed(pool.get(name), reason) for _ in range(times)]


def picks(pool: NodePool, count: int) -> list[str]:
    chosen = [pool.pick() for _ in range(count)]
    return [node.name if node is not None else "none" for node in chosen]


def test_three_failures_in_a_row_eject_a_node_which_then_gets_no_requests(
        caplog: pytest.LogCaptureFixture) -> None:
    clock, ejected = Clock(), []
    pool = make_pool(3, clock, ejected)
    with caplog.at_level(logging.WARNING, logger="reference_server.router"):
        assert fail(pool, "node-1", 3, "first_byte_timeout") == [False, False, True]
    assert ejected == [("node-1", "first_byte_timeout")]
    assert caplog.messages == ["node-1 ejected for 5 s after 3 consecutive failures "
                               "(last: first_byte_timeout); ejection #1"]
    assert pool.get("node-1").ejected
    assert picks(pool, 6) == ["node-0", "node-2"] * 3


def test_a_success_between_failures_ends_the_streak() -> None:
    clock = Clock()
    pool = make_pool(3, clock)
    node = pool.get("node-0")
    assert fail(pool, "node-0", 2) == [False, False]
    pool.succeeded(node)
    assert fail(pool, "node-0", 2) == [False, False]
    assert not node.ejected
    assert node.outlier.failures == 2


def test_an_ejected_node_returns_when_its_time_is_up_and_the_time_grows_per_ejection() -> None:
    clock = Clock()
    pool = make_pool(3, clock, base_ejection_s=5.0, max_ejection_s=12.0)
    node = pool.get("node-2")
    durations = []
    for _ in range(4):
        assert fail(pool, "node-2", 3)[-1] is True
        start = clock.now_s
        while node.ejected:
            clock.now_s += 0.5
        durations.append(clock.now_s - start)
        assert "node-2" in picks(pool, 3)
    assert durations == [5.0, 10.0, 12.0, 12.0]  # base x ejections, capped at max_ejection_s
    assert node.outlier.ejections == 4


def test_a_returned_node_that_stays_in_for_max_ejection_s_starts_the_multiplier_over() -> None:
    clock = Clock()
    pool = make_pool(2, clock, base_ejection_s=5.0, max_ejection_s=60.0)
    node = pool.get("node-0")
    fail(pool, "node-0", 3)
    clock.now_s += 5.0
    fail(pool, "node-0", 3)
    assert node.outlier.until_s == clock.now_s + 10.0  # second ejection: twice the base
    clock.now_s += 10.0 + 60.0  # back, and well for max_ejection_s
    fail(pool, "node-0", 3)
    assert node.outlier.until_s == clock.now_s + 5.0
    assert node.outlier.ejections == 1


def test_a_returned_node_is_out_again_only_after_a_fresh_streak() -> None:
    clock = Clock()
    pool = make_pool(3, clock)
    fail(pool, "node-0", 3)
    assert fail(pool, "node-0", 2) == [False, False]  # failures while out are not counted
    clock.now_s += 5.0
    assert fail(pool, "node-0", 3) == [False, False, True]


def test_a_node_still_failing_health_checks_does_not_return_with_its_ejection_ending() -> None:
    clock = Clock()
    pool = make_pool(2, clock)
    node = pool.get("node-1")
    fail(pool, "node-1", 3)
    pool.set_health(node, False, "/health answered 503")
    clock.now_s += 5.0
    assert not node.ejected
    assert picks(pool, 2) == ["node-0", "node-0"]
    pool.set_health(node, True)
    assert sorted(picks(pool, 2)) == ["node-0", "node-1"]


@pytest.mark.parametrize(("nodes", "percent", "failing", "ejected"), [
    (3, 50.0, ["node-0", "node-1"], ["node-0"]),  # 50 % of 3 is one node
    (4, 50.0, ["node-0", "node-1", "node-2"], ["node-0", "node-1"]),
    (1, 100.0, ["node-0"], []),  # never the last node
    (2, 100.0, ["node-0", "node-1"], ["node-0"]),  # never the last node, whatever the percent
    (3, 0.0, ["node-0"], []),  # 0 %: ejection off
    (10, 10.0, ["node-3", "node-7"], ["node-3"]),
])
def test_at_most_max_ejection_percent_of_the_fleet_is_ejected_and_never_the_last_node(
        nodes: int, percent: float, failing: list[str], ejected: list[str]) -> None:
    clock, counted = Clock(), []
    pool = make_pool(nodes, clock, counted, max_ejection_percent=percent)
    for name in failing:
        fail(pool, name, 3)
    assert [n.name for n in pool.nodes if n.ejected] == ejected
    assert [name for name, _ in counted] == ejected


def test_the_percentage_also_holds_within_a_model_pool() -> None:
    clock = Clock()
    pool = make_pool(4, clock, pools={"big": ["node-0", "node-1"], "small": ["node-2", "node-3"]})
    for name in ("node-0", "node-1", "node-2"):
        fail(pool, name, 3)
    # 50 % of the fleet (2 nodes), but only one of each two-node pool
    assert [n.name for n in pool.nodes if n.ejected] == ["node-0", "node-2"]


def test_consecutive_failures_zero_turns_ejection_off() -> None:
    pool = make_pool(3, Clock(), consecutive_failures=0)
    assert fail(pool, "node-0", 10) == [False] * 10
    assert picks(pool, 3) == ["node-0", "node-1", "node-2"]


def test_ejection_shows_in_the_admin_json_as_a_unix_time() -> None:
    clock = Clock()
    pool = make_pool(3, clock)
    fail(pool, "node-0", 3)
    shown = pool.get("node-0").as_json()
    assert shown["ejections"] == 1 and shown["consecutive_failures"] == 0
    assert isinstance(shown["ejected_until_s"], float)
    assert pool.get("node-1").as_json()["ejected_until_s"] is None
    clock.now_s += 5.0
    assert pool.get("node-0").as_json()["ejected_until_s"] is None


@pytest.mark.parametrize(("policy", "message"), [
    ({"consecutive_failures": -1},
     "outlier.consecutive_failures: must be an integer >= 0 (0: off), got -1"),
    ({"base_ejection_s": 0}, "outlier.base_ejection_s: must be a positive number of seconds, "
                             "got 0"),
    ({"first_byte_timeout_s": float("nan")},
     "outlier.first_byte_timeout_s: must be a positive number of seconds, got nan"),
    ({"max_ejection_s": 1.0}, "outlier.max_ejection_s: must be at least base_ejection_s (5), "
                              "got 1.0"),
    ({"max_ejection_percent": 150}, "outlier.max_ejection_percent: must be a number in 0..100, "
                                    "got 150"),
])
def test_a_bad_outlier_setting_is_refused_naming_the_field(
        policy: dict[str, float], message: str) -> None:
    with pytest.raises(FleetConfigError) as caught:
        OutlierPolicy(**policy)  # type: ignore[arg-type]
    assert str(caught.value) == message


def test_the_fleet_config_carries_the_defaults() -> None:
    config = FleetConfig(admin_token="t")
    assert config.outlier == OutlierPolicy(consecutive_failures=3, base_ejection_s=5.0,
                                           max_ejection_s=300.0, max_ejection_percent=50.0,
                                           first_byte_timeout_s=10.0)


def test_fleet_up_refuses_a_bad_first_byte_timeout_naming_the_setting(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from inferops.cli import main

    monkeypatch.setenv("INFEROPS_ADMIN_TOKEN", "not-used")
    monkeypatch.setenv("INFEROPS_API_KEYS", "sk-inferops-test-key-0123456789abcdef")
    monkeypatch.setattr("sys.argv", ["inferops", "fleet", "up", "--first-byte-timeout", "0"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    assert capsys.readouterr().err == ("error: outlier.first_byte_timeout_s: must be a positive "
                                       "number of seconds, got 0.0\n")
