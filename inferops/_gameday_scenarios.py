"""Game-day scenarios as data: what to break, when, and what the control plane must do.

A scenario is a list of timed steps (offsets from the fault time) and an `Expectation`.
The runner (`_gameday.py`) performs the steps against a live fleet; the report
(`_gameday_report.py`) judges the outcome against the expectation. Keeping them as data
means a new drill is a few lines here, and the verdict rules live in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from ._exceptions import DemoError

StepKind = Literal["inject", "clear", "block-scrape", "unblock-scrape", "stop-webhook",
                   "start-webhook", "kill-control-plane"]
"""`kill-control-plane` waits (up to 25 s) until an action on `node` is in flight, SIGKILLs
the control plane process and starts it again one second later."""


@dataclass(frozen=True, slots=True)
class FaultStep:
    """One thing the runner does `at_s` seconds after the scenario's fault time."""

    at_s: float
    kind: StepKind
    node: str | None = None
    fault: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Expectation:
    """What a correct control plane does. `None` limits are not judged.

    - `detect_alerts`: an alert of one of these names must fire naming a faulty node;
      empty: nothing has to be detected.
    - `mitigate`: a faulty node must be taken out (a succeeded drain) — `False` for drills
      where the right answer is to do nothing to the node (monitoring broken, node fine).
    - `max_detect_s` / `max_mitigate_s`: the issue's targets, seconds after the fault.
    - `max_nodes_out`: how many nodes the control plane may have taken out at once (the
      disruption budget the game day configures).
    - `max_drains_per_node`: succeeded drains of one node (a flapping node is drained once).
    - `notifications_complete`: every alert transition reached the webhook receiver.
    - `refused_by`: a guard of this name must have refused at least one action.
    - `resumes_action`: after a SIGKILL mid-action and a restart, the action is neither lost
      (the node ends drained) nor repeated (no second drain of an already drained node).
    """

    detect_alerts: tuple[str, ...] = ()
    mitigate: bool = True
    max_detect_s: float | None = None
    max_mitigate_s: float | None = None
    max_nodes_out: int = 1
    max_drains_per_node: int = 1
    notifications_complete: bool = False
    refused_by: str | None = None
    resumes_action: bool = False


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    faulty_nodes: tuple[str, ...]
    """Nodes the scenario really breaks; any other node taken out is an unsafe action."""
    steps: tuple[FaultStep, ...]
    expect: Expectation
    observe_s: float = 40.0
    """Seconds after the fault before the scenario is judged (`--short` halves it, >= 20 s)."""
    webhook: bool = False
    """Route alerts to a local webhook receiver (the receiver-down drill)."""
    control_plane_process: bool = False
    """Run the control plane as `inferops run` in its own process (the kill drill)."""

    def observe_for_s(self, *, short: bool) -> float:
        return max(20.0, self.observe_s / 2) if short else self.observe_s


_NODE_ALERTS = ("NodeDown", "NodeUnhealthy", "NodeHighErrorRate", "NodeHighLatency",
                "GpuXidError", "GpuThermalSlowdown", "KvCacheExhausted")


_ERROR_ALERTS = ("NodeHighErrorRate", "NodeUnhealthy")
"""A node failing its requests shows in its own error rate, or first in the router ejecting it
(an ejected node gets no traffic, so its error-rate series has gaps)."""


def _timed(*alerts: str) -> Expectation:
    """The issue's targets for crash, hang, error burst and GPU XID: detect <= 10 s,
    mitigate <= 15 s."""
    return Expectation(alerts, max_detect_s=10.0, max_mitigate_s=15.0)


def _inject(node: str, kind: str, at_s: float = 0.0, **params: object) -> FaultStep:
    return FaultStep(at_s, "inject", node, {"kind": kind, **params})


def _flaps(node: str, *, count: int, on_s: float, off_s: float) -> tuple[FaultStep, ...]:
    steps: list[FaultStep] = []
    for i in range(count):
        start = i * (on_s + off_s)
        steps.append(_inject(node, "error-burst", start, ratio=1.0))
        steps.append(FaultStep(start + on_s, "clear", node))
    return tuple(steps)


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("node-crash", "node-1's process exits", ("node-1",),
                 (_inject("node-1", "crash"),),
                 _timed("NodeDown")),
        Scenario("node-hang", "node-1's engine stops stepping: requests hang, /health 503",
                 ("node-1",), (_inject("node-1", "hang"),),
                 _timed(*_NODE_ALERTS)),
        Scenario("error-burst", "node-1 answers 500 to every request", ("node-1",),
                 (_inject("node-1", "error-burst", ratio=1.0),),
                 _timed(*_ERROR_ALERTS)),
        Scenario("slow-kernel", "a regressed kernel: 400 extra matmuls per step on node-1",
                 ("node-1",), (_inject("node-1", "slow-kernel", layer=0, matmuls=400),),
                 Expectation(("NodeHighLatency",))),
        Scenario("gpu-xid", "node-1's GPU reports XID 79 (fallen off the bus)", ("node-1",),
                 (_inject("node-1", "gpu-xid", code=79),),
                 _timed("GpuXidError")),
        Scenario("thermal-throttle", "node-1's GPU cooling fails; it throttles its clocks",
                 ("node-1",), (_inject("node-1", "thermal"),), Expectation(_NODE_ALERTS)),
        Scenario("kv-cache-leak", "node-1 never frees KV blocks; requests queue", ("node-1",),
                 (_inject("node-1", "kv-leak"),), Expectation(_NODE_ALERTS)),
        Scenario("two-nodes", "node-1 and node-2 fail every request at once; the disruption "
                 "budget (1 node) must stop the second drain", ("node-1", "node-2"),
                 (_inject("node-1", "error-burst", ratio=1.0),
                  _inject("node-2", "error-burst", ratio=1.0)),
                 Expectation(_ERROR_ALERTS, refused_by="disruption-budget")),
        Scenario("flapping-node", "node-1 fails for 5 s, recovers for 5 s, four times",
                 ("node-1",), _flaps("node-1", count=4, on_s=5.0, off_s=5.0),
                 Expectation(_ERROR_ALERTS)),
        Scenario("scrape-down", "node-1's /metrics is unreachable (its scrape proxy stops) "
                 "while the node serves normally: no remediation", (),
                 (FaultStep(0.0, "block-scrape", "node-1"),),
                 Expectation(mitigate=False)),
        Scenario("webhook-down", "the webhook receiver is down while node-1 fails; every "
                 "notification arrives after it returns", ("node-1",),
                 (FaultStep(-1.0, "stop-webhook"),
                  _inject("node-1", "error-burst", ratio=1.0),
                  FaultStep(15.0, "start-webhook")),
                 Expectation(_ERROR_ALERTS, notifications_complete=True),
                 webhook=True),
        Scenario("control-plane-killed", "the control plane is SIGKILLed while it drains "
                 "node-1 (error burst), then restarted on the same store", ("node-1",),
                 (_inject("node-1", "error-burst", ratio=1.0),
                  FaultStep(0.0, "kill-control-plane", "node-1")),
                 Expectation(_ERROR_ALERTS, resumes_action=True),
                 control_plane_process=True),
    )
}

NOT_IMPLEMENTED: dict[str, str] = {}
"""Scenarios of the issue this runner cannot drive yet, and why (reported, never skipped
silently)."""


def select_scenarios(name: str) -> list[Scenario]:
    """`all` or one scenario name; DemoError naming the choices otherwise."""
    if name == "all":
        return list(SCENARIOS.values())
    if name in NOT_IMPLEMENTED:
        raise DemoError(f"--scenario: {name} is not implemented: {NOT_IMPLEMENTED[name]}")
    if name not in SCENARIOS:
        raise DemoError(
            f"--scenario: unknown scenario {name!r}; choose all or one of {', '.join(SCENARIOS)}"
        )
    return [SCENARIOS[name]]
