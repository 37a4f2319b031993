"""Kernel profiles kept in the database: the engine's profile step, through
`ProfilingDriver`, stores the suspect's and the peer's, and `latest_per_node` reads each
node's newest back whole (what the dashboard's kernels page shows)."""

from __future__ import annotations

import sqlalchemy as sa
from remediation_doubles import InMemoryFleet, SetClock, alert, webhook
from test_remediation_diagnosis import PROFILE_ON_LATENCY, table

from remediation import (
    DecisionLog,
    Outcome,
    ProfileLog,
    ProfileOp,
    ProfileTable,
    ProfilingDriver,
    RemediationEngine,
    StoredProfile,
)


def test_the_profile_step_stores_the_suspects_and_the_peers_profiles(
    fleet: InMemoryFleet, log: DecisionLog, clock: SetClock, database: sa.Engine
) -> None:
    suspect = table("node-1", ("aten::mm", 0.62), ("aten::addmm", 0.38))
    peer = table("node-0", ("aten::addmm", 0.70), ("aten::mm", 0.30))
    fleet.profiles = {"node-1": suspect, "node-0": peer}
    profiles = ProfileLog(database)
    engine = RemediationEngine(
        ProfilingDriver(fleet, profiles, clock=clock), log, PROFILE_ON_LATENCY, clock=clock
    )

    (decision,) = engine.handle_notification(
        webhook(alert("NodeHighLatency", node="node-1", fingerprint="l1")))

    assert decision.outcome is Outcome.SUCCEEDED
    stored = profiles.latest_per_node()
    assert [(p.table, p.taken_at_s, p.seconds) for p in stored] == [
        (peer, clock(), 3.0), (suspect, clock(), 3.0)]


def test_only_the_newest_profile_of_each_node_is_the_latest(database: sa.Engine) -> None:
    profiles = ProfileLog(database)
    old = ProfileTable("node-0", "cuda:0", "self_device_time",
                       (ProfileOp("aten::mm", 4, 12.5, 1.0),))
    new = ProfileTable("node-0", "cuda:0", "self_device_time",
                       (ProfileOp("ampere_sgemm", 8, 30.25, 0.75),
                        ProfileOp("aten::add", 2, 10.0, 0.25)))
    other = ProfileTable("node-1", "cpu", "self_cpu_time", ())
    first = profiles.record(old, taken_at_s=100.0, seconds=2.0)
    second = profiles.record(new, taken_at_s=160.0, seconds=5.0)
    third = profiles.record(other, taken_at_s=130.0, seconds=1.0)

    assert (first, second, third) == (1, 2, 3)
    assert ProfileLog(database).latest_per_node() == [
        StoredProfile(2, 160.0, 5.0, new), StoredProfile(3, 130.0, 1.0, other)]


def test_the_wrapped_driver_passes_every_other_call_through(fleet: InMemoryFleet,
                                                            database: sa.Engine) -> None:
    driver = ProfilingDriver(fleet, ProfileLog(database))
    driver.drain("node-0")
    driver.undrain("node-0")
    driver.set_weight("node-1", 0.5)
    assert fleet.calls == [("drain", "node-0"), ("undrain", "node-0"), ("weight=0.5", "node-1")]
    assert [state.name for state in driver.nodes()] == [state.name for state in fleet.nodes()]
    assert ProfileLog(database).latest_per_node() == []
