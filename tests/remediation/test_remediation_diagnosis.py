"""Diagnosis of a latency alert: kernel profiles of the suspect and a healthy peer, diffed,
the top regressed ops attached to the incident. The integration test runs the real fleet with
its slow-kernel fault on node-1 and expects the injected op (`aten::mm`) to rank first."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from remediation_doubles import InMemoryFleet, SetClock, alert, webhook

from remediation import (
    DecisionLog,
    OpRegression,
    Outcome,
    PolicyRule,
    PolicyStep,
    ProfileOp,
    ProfileTable,
    ReferenceFleetDriver,
    RemediationEngine,
    RemediationPolicy,
    diff_profiles,
)

PROFILE_ON_LATENCY = RemediationPolicy(rules=(PolicyRule(
    "diagnose", {"alertname": "NodeHighLatency"}, {},
    steps=(PolicyStep("profile", {"seconds": "3"}),)),))


def table(node: str, *shares: tuple[str, float]) -> ProfileTable:
    return ProfileTable(node, "cpu", "self_cpu_time",
                        tuple(ProfileOp(name, 10, share * 100, share) for name, share in shares))


@pytest.mark.parametrize(
    ("suspect", "peer", "expected"),
    [
        (table("node-1", ("aten::mm", 0.7), ("aten::addmm", 0.2), ("aten::softmax", 0.1)),
         table("node-0", ("aten::addmm", 0.6), ("aten::softmax", 0.3), ("aten::mm", 0.1)),
         [OpRegression("aten::mm", 0.7, 0.1)]),
        (table("node-1", ("aten::bmm", 0.5), ("aten::addmm", 0.5)),
         table("node-0", ("aten::addmm", 1.0)),
         [OpRegression("aten::bmm", 0.5, 0.0)]),
        (table("node-1", ("aten::addmm", 0.5), ("aten::mm", 0.5)),
         table("node-0", ("aten::addmm", 0.5), ("aten::mm", 0.5)),
         []),
        (table("node-1", ("b", 0.3), ("a", 0.3), ("c", 0.4)), table("node-0", ("c", 1.0)),
         [OpRegression("a", 0.3, 0.0), OpRegression("b", 0.3, 0.0)]),
    ],
    ids=["the op whose share rose most ranks first", "an op the peer never ran counts from 0",
         "identical profiles: nothing regressed", "ties rank by name"],
)
def test_the_diff_ranks_ops_by_the_rise_of_their_share(
    suspect: ProfileTable, peer: ProfileTable, expected: list[OpRegression]
) -> None:
    assert diff_profiles(suspect, peer) == expected


def test_a_profile_step_diffs_the_suspect_against_a_healthy_peer_into_the_incident(
    fleet: InMemoryFleet, log: DecisionLog, clock: SetClock
) -> None:
    fleet.profiles = {
        "node-1": table("node-1", ("aten::mm", 0.62), ("aten::addmm", 0.30), ("aten::add", 0.08)),
        "node-0": table("node-0", ("aten::addmm", 0.70), ("aten::mm", 0.12), ("aten::add", 0.18)),
    }
    engine = RemediationEngine(fleet, log, PROFILE_ON_LATENCY, clock=clock)

    (decision,) = engine.handle_notification(
        webhook(alert("NodeHighLatency", node="node-1", fingerprint="l1")))

    assert (decision.action, decision.outcome, decision.params, decision.reason) == (
        "profile", Outcome.SUCCEEDED, {"seconds": "3"},
        "alert NodeHighLatency fired for node-1 (policy diagnose): profiled node-1 and peer "
        "node-0 for 3 s; top regressed op: aten::mm (12.0% -> 62.0%)")
    incident = engine.incidents.get(1)
    assert incident is not None and incident.notes == (
        "kernel profile diff node-1 vs healthy peer node-0 (cpu, share of self cpu time), "
        "top regressed ops:\n  1. aten::mm: 12.0% -> 62.0% (+50.0%)",)
    assert sorted(fleet.calls) == [("profile", "node-0"), ("profile", "node-1")]


# --- the real fleet -------------------------------------------------------------------------

TOKEN = "remediation-diagnosis-token-9c1e"


def free_port_block(count: int) -> int:
    for _ in range(200):
        base = random.randint(20000, 60000)
        socks = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no free block of ports")


@pytest.fixture
def real_fleet(tmp_path: Path) -> Iterator[int]:
    """`inferops fleet up` with two torch nodes on the CPU; yields the router's port."""
    port = free_port_block(3)
    log_path = tmp_path / "fleet.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "inferops", "fleet", "up", "--nodes", "2", "--port", str(port),
             "--gpu-backend", "sim", "--device", "cpu"],
            env={**os.environ, "INFEROPS_ADMIN_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            with ReferenceFleetDriver(f"http://127.0.0.1:{port}", admin_token=TOKEN) as driver:
                deadline = time.monotonic() + 150
                while True:
                    assert process.poll() is None, log_path.read_text(errors="replace")
                    try:
                        if [n.healthy for n in driver.nodes()] == [True, True]:
                            break
                    except Exception:
                        pass
                    assert time.monotonic() < deadline, log_path.read_text(errors="replace")
                    time.sleep(0.5)
            yield port
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


@pytest.mark.integration
def test_the_slow_kernel_fault_is_found_by_diffing_kernel_profiles(
    real_fleet: int, log: DecisionLog
) -> None:
    router = f"http://127.0.0.1:{real_fleet}"
    admin = {"Authorization": f"Bearer {TOKEN}"}
    injected = httpx.post(f"{router}/admin/nodes/node-1/faults", headers=admin, timeout=10,
                          json={"kind": "slow-kernel", "layer": 0, "matmuls": 128})
    assert injected.status_code == 200, injected.text
    stop = threading.Event()

    def load(node_port: int) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{node_port}", timeout=30) as client:
            while not stop.is_set():
                client.post("/v1/completions", json={"prompt": "load", "max_tokens": 8})

    loaders = [threading.Thread(target=load, args=(real_fleet + 1 + index % 2,))
               for index in range(2)]
    for loader in loaders:
        loader.start()
    try:
        with ReferenceFleetDriver(router, admin_token=TOKEN) as driver:
            engine = RemediationEngine(driver, log, RemediationPolicy(rules=(PolicyRule(
                "diagnose", {"alertname": "NodeHighLatency"}, {},
                steps=(PolicyStep("profile", {"seconds": "2"}),)),)))
            (decision,) = engine.handle_notification(
                webhook(alert("NodeHighLatency", node="node-1", fingerprint="sk1")))
    finally:
        stop.set()
        for loader in loaders:
            loader.join(30)

    assert decision.outcome == Outcome.SUCCEEDED, decision.reason
    assert "profiled node-1 and peer node-0 for 2 s; top regressed op: aten::mm (" in (
        decision.reason)
    incident = engine.incidents.get(1)
    assert incident is not None
    (note,) = incident.notes
    assert note.splitlines()[:2][0] == ("kernel profile diff node-1 vs healthy peer node-0 "
                                        "(cpu, share of self cpu time), top regressed ops:")
    assert note.splitlines()[1].startswith("  1. aten::mm: ")
