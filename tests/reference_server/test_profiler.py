"""Kernel profiling of engine steps: the op table, duty cycling, the slow-kernel fault's op."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from reference_server._engine import Engine, EngineConfig
from reference_server._model import ModelConfig, TinyTransformer, load_model
from reference_server._openai_schema import ApiError
from reference_server._profiler import (
    ProfileRequest,
    ProfileResult,
    parse_profile_request,
    run_profile,
)
from reference_server._sequence import SamplingParams
from reference_server._tokenizer import ByteTokenizer

TINY = ModelConfig(n_layers=2, d_model=64, n_heads=4, context_len=128)
TOK = ByteTokenizer()


@pytest.fixture(scope="module")
def model() -> TinyTransformer:
    return load_model(TINY, device="cpu")


@pytest.fixture
async def engine(model: TinyTransformer) -> AsyncIterator[Engine]:
    running = Engine(model, EngineConfig(kv_cache_tokens=1024))
    running.start()
    yield running
    await asyncio.to_thread(running.stop)
    model.set_slow_kernel(None)


async def profile_under_load(engine: Engine, request: ProfileRequest,
                             trace_path: Path | None = None) -> ProfileResult:
    """Profile while four clients keep the engine busy."""
    stop = asyncio.Event()

    async def client(i: int) -> None:
        while not stop.is_set():
            handle = engine.submit(TOK.encode(f"load {i}: node health summary"),
                                   SamplingParams(max_tokens=24, temperature=0))
            async for _ in handle.deltas():
                pass

    clients = [asyncio.create_task(client(i)) for i in range(4)]
    try:
        return await run_profile(engine.faults, request, device=engine.model.device,
                                 trace_path=trace_path)
    finally:
        stop.set()
        await asyncio.gather(*clients)


def share(result: ProfileResult, op: str) -> float:
    return next((row.share for row in result.ops if row.name == op), 0.0)


async def test_a_profile_tables_the_ops_of_the_steps_and_saves_a_chrome_trace(
    engine: Engine, tmp_path: Path
) -> None:
    trace = tmp_path / "profiles" / "node.trace.json"
    result = await profile_under_load(engine, ProfileRequest(steps=5, top=500), trace)
    assert (result.device, result.steps_profiled, result.complete) == ("cpu", 5, True)
    assert result.steps_seen == 5 and result.share_of == "self_cpu_time"
    names = {row.name for row in result.ops}
    assert {"aten::addmm", "aten::scaled_dot_product_attention"} & names
    assert all(row.calls >= 1 and row.self_cpu_ms >= 0 for row in result.ops)
    assert sum(row.share for row in result.ops) == pytest.approx(1.0)
    assert [row.share for row in result.ops] == sorted((row.share for row in result.ops),
                                                       reverse=True)
    assert result.trace_file == str(trace)
    assert "traceEvents" in json.loads(trace.read_text())


async def test_a_duty_cycled_profile_samples_one_step_in_every_n(engine: Engine) -> None:
    result = await profile_under_load(engine, ProfileRequest(steps=3, every_steps=10, top=3))
    assert (result.steps_profiled, result.steps_seen, result.every_steps) == (3, 21, 10)
    assert result.as_dict()["duty"] == 0.1 and len(result.ops) == 3


async def test_the_slow_kernel_fault_shows_up_as_the_top_op(
    engine: Engine, model: TinyTransformer
) -> None:
    healthy = await profile_under_load(engine, ProfileRequest(steps=6, top=500))
    engine.faults.set_slow_kernel(1, 64)
    faulty = await profile_under_load(engine, ProfileRequest(steps=6, top=500))
    # Shares of CPU time move with the machine's load; the rise and the ranking do not.
    assert share(faulty, "aten::mm") > share(healthy, "aten::mm") + 0.2
    assert "aten::mm" in [row.name for row in faulty.ops[:2]]
    calls = {row.name: row.calls for row in faulty.ops}
    assert calls["aten::mm"] >= 6 * 64  # 64 extra matmuls in one layer on every step


async def test_a_seconds_profile_of_an_idle_engine_ends_with_no_steps(engine: Engine) -> None:
    result = await run_profile(engine.faults, ProfileRequest(seconds=0.3),
                               device=engine.model.device, trace_path=None)
    assert (result.steps_profiled, result.ops, result.trace_file) == (0, [], None)


async def test_only_one_profile_runs_at_a_time(engine: Engine) -> None:
    first = asyncio.create_task(run_profile(engine.faults, ProfileRequest(seconds=0.5),
                                            device=engine.model.device, trace_path=None))
    await asyncio.sleep(0.05)
    with pytest.raises(ApiError, match="already running") as raised:
        await run_profile(engine.faults, ProfileRequest(steps=1), device=engine.model.device,
                          trace_path=None)
    assert raised.value.status_code == 409
    await first


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        ({}, "steps", "needs steps or seconds"),
        ({"steps": 0}, "steps", "an integer in 1..100000, got 0"),
        ({"steps": 2.5}, "steps", "an integer"),
        ({"seconds": -1}, "seconds", "a number in 0.01..600"),
        ({"seconds": 2, "every_steps": 0}, "every_steps", "got 0"),
        ({"steps": 1, "top": True}, "top", "an integer"),
        ({"steps": 1, "duty": 0.01}, "duty", "unknown field"),
    ],
)
def test_bad_profile_bodies_name_the_field(
    body: dict[str, object], param: str, fragment: str
) -> None:
    with pytest.raises(ApiError) as raised:
        parse_profile_request(body)
    assert raised.value.param == param and fragment in raised.value.message
    assert raised.value.status_code == 400


def test_a_good_body_becomes_a_profile_request() -> None:
    assert parse_profile_request({"steps": 1, "every_steps": 100}) == ProfileRequest(
        steps=1, every_steps=100)
    assert parse_profile_request({"seconds": 2}).seconds == 2.0
