"""Each node fault changes the node's /metrics (vLLM and DCGM names) as the real failure does,
and DELETE /admin/faults restores the node. One tiny CPU node whose simulated GPU runs on a
test-driven clock (so minutes of heating take no time)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest
from _node_support import ADMIN_TOKEN, ServedNode, metric_values, serve_node, wait_until

from exporters import SimulatedGpuBackend
from exporters._gpu_specs import gpu_spec
from reference_server._engine import EngineConfig
from reference_server._model import ModelConfig
from reference_server._node_runtime import Node, NodeConfig

TINY_MODEL = ModelConfig(n_layers=2, d_model=64, n_heads=4, context_len=256)
H100 = gpu_spec("H100-SXM5-80GB")


class ManualClock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
def served(clock: ManualClock) -> Iterator[ServedNode]:
    config = NodeConfig(
        name="node-f", model=TINY_MODEL, device="cpu", gpu_backend="sim",
        engine=EngineConfig(kv_cache_tokens=512, stall_timeout_s=0.5, prefix_caching=False),
    )
    node = Node(config, admin_token=ADMIN_TOKEN,
                gpu_backend=SimulatedGpuBackend(hostname="node-f", clock=clock))
    with serve_node(node) as running:
        yield running


@pytest.fixture
def node(served: ServedNode) -> Iterator[ServedNode]:
    served.admin.delete("/admin/faults").raise_for_status()
    yield served
    served.admin.delete("/admin/faults")


def complete(node: ServedNode, prompt: str, max_tokens: int = 8) -> httpx.Response:
    return node.client.post("/v1/completions", json={
        "prompt": prompt, "max_tokens": max_tokens, "temperature": 0})


def inject(node: ServedNode, **fault: object) -> dict[str, object]:
    response = node.admin.post("/admin/faults", json=fault)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        ({"kind": "slow-kernel"}, "layer", "required for a slow-kernel fault"),
        ({"kind": "slow-kernel", "layer": 7}, "layer", "layer must be in 0..1, got 7"),
        ({"kind": "slow-kernel", "layer": "1"}, "layer", "must be an integer"),
        ({"kind": "slow-kernel", "layer": 0, "matmuls": 0}, "matmuls", "1..1000, got 0"),
        ({"kind": "hang", "seconds": 3}, "seconds", "unknown field for a hang fault"),
        ({"kind": "thermal", "gpu": 0}, "gpu", "unknown field for a thermal fault"),
    ],
)
def test_bad_new_fault_bodies_answer_400_naming_the_field(
    node: ServedNode, body: dict[str, object], param: str, fragment: str
) -> None:
    response = node.admin.post("/admin/faults", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and fragment in error["message"]
    assert node.node.faults.active() == []


def test_hang_accepts_requests_sends_no_token_and_fails_health(node: ServedNode) -> None:
    assert inject(node, kind="hang") == {"faults": [{"kind": "hang"}]}
    tokens_before = node.metric("vllm:generation_tokens_total")
    finished_before = node.node.engine.stats().finished
    answers: list[httpx.Response] = []
    client = threading.Thread(target=lambda: answers.append(complete(node, "stuck", 4)))
    client.start()
    wait_until(lambda: node.metric("vllm:num_requests_running") == 1,
               what="the hung request is running")
    wait_until(lambda: node.client.get("/health").status_code == 503,
               what="/health reports the hung engine")
    health = node.client.get("/health").json()
    assert health["status"] == "unhealthy" and health["running"] == 1
    assert str(health["problem"]).startswith("engine hung: one step has run for")
    assert answers == [] and node.node.engine.stats().finished == finished_before
    assert node.metric("vllm:generation_tokens_total") == tokens_before
    assert node.admin.delete("/admin/faults").json() == {"faults": []}
    client.join(30)
    assert answers[0].status_code == 200
    assert answers[0].json()["usage"]["completion_tokens"] >= 1
    assert node.client.get("/health").status_code == 200
    assert node.metric("vllm:generation_tokens_total") > tokens_before


def test_slow_kernel_raises_time_to_first_token(node: ServedNode) -> None:
    prompt = "Summarise the incident timeline of node-3 in one line: " * 2

    def ttft_sum_of_one_request() -> float:
        before = node.metric("vllm:time_to_first_token_seconds_sum")
        assert complete(node, prompt, 2).status_code == 200
        return node.metric("vllm:time_to_first_token_seconds_sum") - before

    ttft_sum_of_one_request()  # warm
    fast = min(ttft_sum_of_one_request() for _ in range(3))
    inject(node, kind="slow-kernel", layer=1, matmuls=400)
    slow = min(ttft_sum_of_one_request() for _ in range(2))
    assert slow > 3 * fast, (fast, slow)
    assert [b.extra_matmuls for b in node.node.model._layers()] == [0, 400]
    node.admin.delete("/admin/faults")
    wait_until(lambda: [b.extra_matmuls for b in node.node.model._layers()] == [0, 0],
               what="the slow kernel is removed")


def test_kv_leak_makes_kv_cache_usage_climb_until_cleared(node: ServedNode) -> None:
    assert node.metric("vllm:kv_cache_usage_perc") == 0.0
    inject(node, kind="kv-leak")
    usage = []
    for i in range(4):
        assert complete(node, f"leaky request {i}", 20).status_code == 200
        wait_until(lambda: node.node.engine.num_running == 0, what="the request is released")
        usage.append(node.metric("vllm:kv_cache_usage_perc"))
    assert usage == sorted(usage) and usage[0] > 0 and usage[-1] >= 4 * usage[0] * 0.99
    node.admin.delete("/admin/faults")
    wait_until(lambda: node.metric("vllm:kv_cache_usage_perc") == 0.0,
               what="the leaked blocks are freed")


def test_ecc_dbe_counts_on_the_gpu_and_kills_the_engine_until_cleared(node: ServedNode) -> None:
    dbe_before = node.metric("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL")
    inject(node, kind="ecc-dbe")
    text = node.scrape()
    assert metric_values(text, "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL") == dbe_before + 1
    assert metric_values(text, "DCGM_FI_DEV_XID_ERRORS") == 48
    response = complete(node, "after the ECC error")
    assert response.status_code == 500
    assert "uncorrectable ECC error" in response.json()["error"]["message"]
    health = node.client.get("/health")
    assert health.status_code == 503
    assert health.json()["problem"].startswith("engine dead: CUDA error: uncorrectable ECC")
    node.admin.delete("/admin/faults")
    assert node.client.get("/health").status_code == 200
    assert complete(node, "after the fix").status_code == 200
    text = node.scrape()
    assert metric_values(text, "DCGM_FI_DEV_XID_ERRORS") == 0
    assert metric_values(text, "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL") == dbe_before + 1  # a total


def test_thermal_heats_throttles_the_gpu_and_slows_the_engine(
    node: ServedNode, clock: ManualClock
) -> None:
    engine = node.node.engine
    assert engine.clock_ratio == 1.0
    cool = node.metric("DCGM_FI_DEV_GPU_TEMP")
    inject(node, kind="thermal")
    clock.now_s += 120.0  # two minutes of a failed cooler
    text = node.scrape()
    assert metric_values(text, "DCGM_FI_DEV_GPU_TEMP") >= H100.slowdown_temp_c > cool
    reasons = int(metric_values(text, "DCGM_FI_DEV_CLOCKS_EVENT_REASONS")
                  or metric_values(text, "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS"))
    assert reasons & 0x40  # HW thermal slowdown
    assert complete(node, "while hot").status_code == 200  # steps refresh the clock ratio
    wait_until(lambda: engine.clock_ratio == 0.5, what="the engine reads the throttled clock")
    assert metric_values(node.scrape(), "DCGM_FI_DEV_SM_CLOCK") <= H100.sm_clock_max_mhz / 2
    node.admin.delete("/admin/faults")
    clock.now_s += 600.0  # the repaired cooler brings it back under the hysteresis
    wait_until(lambda: engine.clock_ratio == 1.0, what="the engine runs at full clock again")
    assert node.metric("DCGM_FI_DEV_GPU_TEMP") < H100.slowdown_temp_c


def profile_under_load(node: ServedNode, body: dict[str, object]) -> dict[str, object]:
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=node.url, timeout=30) as client:
            while not stop.is_set():
                client.post("/v1/completions", json={"prompt": "load", "max_tokens": 16})

    loaders = [threading.Thread(target=load) for _ in range(2)]
    for loader in loaders:
        loader.start()
    try:
        response = node.admin.post("/admin/profile", json=body)
    finally:
        stop.set()
        for loader in loaders:
            loader.join(30)
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    return result


def mm_share(result: dict[str, object]) -> float:
    ops = result["ops"]
    assert isinstance(ops, list)
    return sum(float(op["share"]) for op in ops if op["name"] == "aten::mm")


def test_profile_endpoint_finds_the_slow_kernel(node: ServedNode) -> None:
    denied = node.client.post("/admin/profile", json={"steps": 1},
                              headers={"Authorization": "Bearer wrong"})
    assert denied.status_code == 401
    bad = node.admin.post("/admin/profile", json={"steps": "many"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "steps"
    healthy = profile_under_load(node, {"steps": 6, "top": 100})
    inject(node, kind="slow-kernel", layer=0, matmuls=128)
    faulty = profile_under_load(node, {"steps": 6, "top": 100})
    assert healthy["steps_profiled"] == faulty["steps_profiled"] == 6
    assert faulty["device"] == "cpu" and faulty["share_of"] == "self_cpu_time"
    ops = faulty["ops"]
    # Self CPU times on a loaded 2-core machine can swell one op by a preemption; the injected
    # matmuls still rank at the top (first or second) and their share rises clearly.
    assert isinstance(ops, list) and "aten::mm" in [op["name"] for op in ops[:2]]
    assert set(ops[0]) == {"name", "calls", "self_device_ms", "self_cpu_ms", "share"}
    assert mm_share(faulty) > mm_share(healthy) + 0.2
    trace = faulty["trace_file"]
    assert isinstance(trace, str) and trace.endswith(".trace.json")
    with open(trace) as handle:
        assert "traceEvents" in handle.read(4096)
