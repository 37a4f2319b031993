"""The Kubernetes driver: the official `kubernetes` client against a fake API server over real
HTTP (tests/remediation/fake_kubernetes.py) — node status from conditions and cordons, drain
as cordon + eviction honouring PodDisruptionBudgets (429 retried until a deadline), undrain,
cycle with replacement pods, and clear errors. No real cluster is involved."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fake_kubernetes import (
    NAMESPACE,
    TOKEN,
    FakeKubernetes,
    FakePdb,
    FakePod,
    serve_fake_kubernetes,
)
from remediation_doubles import free_port

from remediation import (
    DecisionLog,
    FleetDriverError,
    KubernetesFleetDriver,
    NodeState,
    NodeStatus,
    Outcome,
    RemediationEngine,
    RemediationPolicy,
    UnknownNodeError,
)

SELECTED = {"app": "llm-serving"}


@pytest.fixture(scope="module")
def served() -> Iterator[FakeKubernetes]:
    yield from serve_fake_kubernetes(FakeKubernetes.fleet())


@pytest.fixture
def cluster(served: FakeKubernetes) -> FakeKubernetes:
    served.reset()
    return served


def driver_for(url: str, *, token: str = TOKEN, **options: float) -> KubernetesFleetDriver:
    settings: dict[str, float] = {"eviction_deadline_s": 5.0, "eviction_backoff_s": 0.05,
                                  "replacement_timeout_s": 5.0, "poll_interval_s": 0.05,
                                  "request_timeout_s": 5.0, **options}
    return KubernetesFleetDriver.connect(
        url, token=token, namespace=NAMESPACE, pod_selector="app=llm-serving",
        node_selector="pool=llm", **settings,  # type: ignore[arg-type]
    )


@pytest.fixture
def driver(cluster: FakeKubernetes) -> Iterator[KubernetesFleetDriver]:
    driver = driver_for(cluster.url)
    yield driver
    driver.close()


def test_node_status_comes_from_the_ready_condition_and_the_cordon(
    cluster: FakeKubernetes, driver: KubernetesFleetDriver
) -> None:
    cluster.nodes["gpu-1"]["unschedulable"] = True  # cordoned, its pod still there
    cluster.nodes["gpu-2"].update(unschedulable=True)
    del cluster.pods["llm-serving-2"]  # cordoned and empty
    cluster.nodes["gpu-3"] = {"ready": False, "unschedulable": False, "labels": {"pool": "llm"}}
    cluster.nodes["cpu-0"] = {"ready": True, "unschedulable": False, "labels": {"pool": "web"}}

    assert driver.nodes() == [
        NodeState("gpu-0", NodeStatus.SERVING, healthy=True, in_flight=0),
        NodeState("gpu-1", NodeStatus.DRAINING, healthy=True, in_flight=0),
        NodeState("gpu-2", NodeStatus.DRAINED, healthy=True, in_flight=0),
        NodeState("gpu-3", NodeStatus.DOWN, healthy=False, in_flight=0),
    ]


def test_drain_cordons_and_evicts_the_serving_pods_on_the_node(
    cluster: FakeKubernetes, driver: KubernetesFleetDriver
) -> None:
    cluster.pods["sidecar-1"] = FakePod("sidecar-1", "gpu-1", {"app": "log-shipper"})

    driver.drain("gpu-1")

    assert cluster.nodes["gpu-1"]["unschedulable"] is True
    assert sorted((pod.name, pod.node) for pod in cluster.pods.values()) == [
        ("llm-serving-0", "gpu-0"), ("llm-serving-2", "gpu-2"), ("llm-serving-r1", "gpu-0"),
        ("sidecar-1", "gpu-1"),
    ]
    assert [call for call in cluster.seen if not call.startswith("GET")] == [
        "PATCH /api/v1/nodes/gpu-1",
        f"POST /api/v1/namespaces/{NAMESPACE}/pods/llm-serving-1/eviction",
    ]
    assert {s.name: s.status for s in driver.nodes()}["gpu-1"] == NodeStatus.DRAINED


def test_an_eviction_the_pdb_refuses_is_retried_until_the_budget_allows_it(
    cluster: FakeKubernetes, driver: KubernetesFleetDriver
) -> None:
    cluster.pdbs.append(FakePdb("llm-serving", SELECTED, min_available=2))
    cluster.pods["llm-serving-2"].ready_at_s = time.time() + 0.6  # still starting

    driver.drain("gpu-1")

    evictions = [c for c in cluster.seen if c.endswith("/llm-serving-1/eviction")]
    assert len(evictions) >= 2  # the first ones were answered 429
    assert "llm-serving-1" not in cluster.pods
    assert cluster.nodes["gpu-1"]["unschedulable"] is True


def test_a_pdb_that_never_allows_it_is_reported_after_the_deadline_and_the_node_stays_cordoned(
    cluster: FakeKubernetes,
) -> None:
    cluster.pdbs.append(FakePdb("llm-serving", SELECTED, min_available=3))
    driver = driver_for(cluster.url, eviction_deadline_s=0.5)

    with pytest.raises(FleetDriverError) as raised:
        driver.drain("gpu-1")
    driver.close()

    assert str(raised.value) == (
        f"gpu-1 is cordoned, but the PodDisruptionBudget still refused to evict "
        f"{NAMESPACE}/llm-serving-1 (Cannot evict pod as it would violate the pod's disruption "
        "budget.) after retrying for 0.5 s")
    assert cluster.nodes["gpu-1"]["unschedulable"] is True
    assert "llm-serving-1" in cluster.pods


def test_undrain_uncordons(cluster: FakeKubernetes, driver: KubernetesFleetDriver) -> None:
    cluster.nodes["gpu-0"]["unschedulable"] = True

    driver.undrain("gpu-0")

    assert cluster.nodes["gpu-0"]["unschedulable"] is False


def test_cycle_drains_waits_for_the_replacement_to_be_ready_then_uncordons(
    cluster: FakeKubernetes, driver: KubernetesFleetDriver
) -> None:
    cluster.replacement_ready_after_s = 0.3

    driver.cycle("gpu-2")

    assert cluster.nodes["gpu-2"]["unschedulable"] is False
    assert sorted(cluster.pods) == ["llm-serving-0", "llm-serving-1", "llm-serving-r1"]
    assert all(pod.ready() for pod in cluster.pods.values())


def test_a_cycle_whose_replacement_never_comes_fails_and_leaves_the_node_cordoned(
    cluster: FakeKubernetes,
) -> None:
    cluster.replace_evicted = False
    driver = driver_for(cluster.url, replacement_timeout_s=0.3)

    with pytest.raises(FleetDriverError) as raised:
        driver.cycle("gpu-2")
    driver.close()

    assert str(raised.value) == (
        "gpu-2 was drained, but only 2 of 3 pods of 'app=llm-serving' were ready 0.3 s later; "
        "gpu-2 stays cordoned")
    assert cluster.nodes["gpu-2"]["unschedulable"] is True


@pytest.mark.parametrize("action", ["drain", "undrain", "cycle"])
def test_an_unknown_node_is_named_with_the_known_ones(
    cluster: FakeKubernetes, driver: KubernetesFleetDriver, action: str
) -> None:
    with pytest.raises(UnknownNodeError) as raised:
        getattr(driver, action)("gpu-9")
    assert str(raised.value) == "unknown node 'gpu-9'; known: gpu-0, gpu-1, gpu-2"
    assert not any(call.startswith(("PATCH", "POST")) for call in cluster.seen)


def test_a_wrong_token_and_an_unreachable_api_are_clear_errors(cluster: FakeKubernetes) -> None:
    wrong = driver_for(cluster.url, token="wrong")
    with pytest.raises(FleetDriverError) as refused:
        wrong.nodes()
    wrong.close()
    assert str(refused.value) == (
        f"the Kubernetes API at {cluster.url} answered list nodes with 401: Unauthorized")

    url = f"http://127.0.0.1:{free_port()}"
    down = driver_for(url, request_timeout_s=2.0)
    with pytest.raises(FleetDriverError) as unreachable:
        down.nodes()
    down.close()
    assert str(unreachable.value).startswith(
        f"cannot reach the Kubernetes API at {url} (list nodes): ")


def test_reroute_and_profile_say_kubernetes_cannot(driver: KubernetesFleetDriver) -> None:
    with pytest.raises(FleetDriverError, match=r"^reroute is not supported by the Kubernetes"):
        driver.set_weight("gpu-0", 0.0)
    with pytest.raises(FleetDriverError, match=r"^profile is not supported by the Kubernetes"):
        driver.profile("gpu-0", 1.0)


def test_the_engine_drains_through_it_with_its_guards_and_verification(
    cluster: FakeKubernetes, driver: KubernetesFleetDriver, log: DecisionLog
) -> None:
    engine = RemediationEngine(driver, log, RemediationPolicy(rules=()), verify_timeout_s=5.0,
                               min_healthy_nodes=2)

    drained = engine.execute("drain", "gpu-1", actor="cli:alice", reason="bad DIMM")
    refused = engine.execute("drain", "gpu-0", actor="cli:alice", reason="also")
    engine.close()

    assert (drained.outcome, drained.reason) == (
        Outcome.SUCCEEDED, "bad DIMM: gpu-1 is now drained")
    assert (refused.outcome, refused.guard, refused.reason) == (
        Outcome.REFUSED, "disruption-budget",
        "also: draining gpu-0 would leave 1 node serving and healthy (gpu-2); the disruption "
        "budget needs at least 2")
    assert cluster.nodes["gpu-0"]["unschedulable"] is False
