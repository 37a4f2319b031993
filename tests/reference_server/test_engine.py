"""The engine: continuous batching on its thread, sampling, stop conditions, cancellation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest

from reference_server._engine import Engine, EngineConfig, EngineStopped
from reference_server._model import ModelConfig, TinyTransformer, load_model
from reference_server._sequence import RequestHandle, SamplingParams, Sequence
from reference_server._tokenizer import EOS_ID, ByteTokenizer

TINY = ModelConfig(n_layers=2, d_model=64, n_heads=4, context_len=128)
TOK = ByteTokenizer()


@pytest.fixture(scope="module")
def model() -> TinyTransformer:
    return load_model(TINY, device="cpu")


class FakeMetrics:
    def __init__(self) -> None:
        self.running: list[int] = []
        self.waiting: list[int] = []
        self.kv: list[float] = []
        self.prefix_queries = 0
        self.prefix_hits = 0
        self.preemptions = 0

    def set_running(self, n: int) -> None:
        self.running.append(n)

    def set_waiting(self, n: int) -> None:
        self.waiting.append(n)

    def set_kv_cache_usage(self, ratio: float) -> None:
        self.kv.append(ratio)

    def count_prefix_cache(self, queries_tokens: int, hits_tokens: int) -> None:
        self.prefix_queries += queries_tokens
        self.prefix_hits += hits_tokens

    def count_preemptions(self, n: int) -> None:
        self.preemptions += n


class FakeGpu:
    def __init__(self) -> None:
        self.work: list[tuple[float, float]] = []

    def record_work(self, busy_fraction: float, memory_used_fraction: float) -> None:
        self.work.append((busy_fraction, memory_used_fraction))


EngineFactory = Callable[..., Engine]


@pytest.fixture
async def make_engine(model: TinyTransformer) -> AsyncIterator[EngineFactory]:
    engines: list[Engine] = []

    def make(config: EngineConfig | None = None, **kwargs: object) -> Engine:
        engine = Engine(model, config or EngineConfig(kv_cache_tokens=1024), **kwargs)  # type: ignore[arg-type]
        engine.start()
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        await asyncio.to_thread(engine.stop)


async def collect(handle: RequestHandle) -> tuple[str, str | None]:
    text, reason = "", None
    async for delta in handle.deltas():
        text += delta.text
        reason = delta.finish_reason
    return text, reason


async def generate(engine: Engine, prompt: str, **params: object) -> tuple[str, str | None]:
    return await collect(engine.submit(TOK.encode(prompt), SamplingParams(**params)))  # type: ignore[arg-type]


async def test_greedy_is_deterministic(make_engine: EngineFactory) -> None:
    engine = make_engine()
    first = await generate(engine, "GPU node health check report:", max_tokens=24, temperature=0)
    second = await generate(engine, "GPU node health check report:", max_tokens=24, temperature=0)
    assert first == second
    assert first[1] in ("length", "stop")


async def test_seeded_sampling_is_reproducible(make_engine: EngineFactory) -> None:
    engine = make_engine()
    a = await generate(engine, "x", max_tokens=30, temperature=1.0, top_p=0.9, seed=7)
    b = await generate(engine, "x", max_tokens=30, temperature=1.0, top_p=0.9, seed=7)
    c = await generate(engine, "x", max_tokens=30, temperature=1.0, top_p=0.9, seed=8)
    assert a == b
    assert a != c


async def test_concurrent_requests_decode_in_one_batch(make_engine: EngineFactory) -> None:
    metrics = FakeMetrics()
    engine = make_engine(metrics=metrics)
    handles = [
        engine.submit(TOK.encode(f"prompt {i}"), SamplingParams(max_tokens=20, temperature=0))
        for i in range(4)
    ]
    results = await asyncio.gather(*(collect(h) for h in handles))
    stats = engine.stats()
    assert stats.prefills == 4
    assert stats.max_decode_batch > 1, stats
    assert stats.max_decode_batch == 4  # submitted together, admitted together
    assert stats.decode_tokens + stats.prefills == sum(h.completion_tokens for h in handles)
    assert all(reason in ("length", "stop") for _, reason in results)
    assert max(metrics.running) == 4
    assert max(metrics.kv) > 0
    # the last step is reported too (just after it delivered the last delta)
    deadline = time.monotonic() + 5
    while metrics.running[-1] != 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert metrics.running[-1] == 0


async def test_batch_is_bounded_by_max_num_seqs(make_engine: EngineFactory) -> None:
    metrics = FakeMetrics()
    engine = make_engine(EngineConfig(max_num_seqs=2, kv_cache_tokens=1024), metrics=metrics)
    handles = [
        engine.submit(TOK.encode(f"p{i}"), SamplingParams(max_tokens=12, temperature=0))
        for i in range(5)
    ]
    await asyncio.gather(*(collect(h) for h in handles))
    assert engine.stats().max_decode_batch == 2
    assert max(metrics.running) == 2
    assert max(metrics.waiting) >= 3
    # later requests queued: their queue time is measured
    assert all(h.queue_time_s is not None for h in handles)
    assert max(h.queue_time_s or 0 for h in handles) > 0


async def test_a_full_kv_cache_preempts_the_newest_request_and_recomputes_it(
    make_engine: EngineFactory,
) -> None:
    # 8 blocks of 16 tokens; two requests of 3 + 100 tokens need 7 blocks each: the newer one
    # is preempted when the cache runs out, waits, is recomputed, and still answers the same
    alone = make_engine(EngineConfig(kv_cache_tokens=1024))
    params = SamplingParams(max_tokens=100, temperature=0)
    expected = [await collect(alone.submit(TOK.encode(f"p{i}"), params)) for i in range(2)]
    metrics = FakeMetrics()
    engine = make_engine(EngineConfig(kv_cache_tokens=128), metrics=metrics)
    handles = [engine.submit(TOK.encode(f"p{i}"), params) for i in range(2)]
    results = await asyncio.gather(*(collect(h) for h in handles))
    assert results == expected
    stats = engine.stats()
    assert stats.max_decode_batch == 2
    assert stats.preemptions >= 1
    assert stats.prefills == 2 + stats.preemptions
    assert [h.completion_tokens for h in handles] == [100, 100]
    assert engine.kv_cache_usage == 0.0
    assert metrics.preemptions == stats.preemptions


async def test_stop_string_cuts_the_text(make_engine: EngineFactory) -> None:
    engine = make_engine()
    text, _ = await generate(engine, "abc", max_tokens=40, temperature=0)
    assert len(text) >= 4
    stop = text[2:4]  # greedy is deterministic: this occurs at index 2 (or earlier)
    cut, cut_reason = await generate(engine, "abc", max_tokens=40, temperature=0, stop=(stop,))
    assert cut_reason == "stop"
    assert cut == text[: text.index(stop)]


def test_sequence_finishes_on_eos_and_holds_back_stop_prefixes() -> None:
    handle = RequestHandle(2, SamplingParams(max_tokens=10, stop=("XY",)), lambda h: None)
    loop = asyncio.new_event_loop()
    loop.close()  # never used: accept() only computes what to deliver
    seq = Sequence(handle, [1, 2], loop)
    assert seq.accept(ord("a"), 0.0).text == "a"
    assert seq.accept(ord("X"), 0.1).text == ""  # might become "XY"
    assert seq.accept(ord("b"), 0.2).text == "Xb"
    last = seq.accept(EOS_ID, 0.3)
    assert (last.text, last.finish_reason) == ("", "stop")
    assert handle.completion_tokens == 4
    assert handle.inter_token_latencies_s() == pytest.approx((0.1, 0.1, 0.1))


async def test_cancel_frees_the_sequence(make_engine: EngineFactory) -> None:
    metrics = FakeMetrics()
    engine = make_engine(metrics=metrics)
    handle = engine.submit(TOK.encode("long"), SamplingParams(max_tokens=120, temperature=0))
    await handle.next_delta()
    handle.cancel()
    deadline = time.monotonic() + 10
    while engine.stats().cancelled == 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert engine.stats().cancelled == 1
    assert engine.num_running == 0
    assert engine.kv_cache_usage == 0.0
    assert handle.completion_tokens < 120


async def test_busy_engine_drives_the_simulated_gpu(make_engine: EngineFactory) -> None:
    gpu = FakeGpu()
    engine = make_engine(EngineConfig(kv_cache_tokens=1024, report_interval_s=0.01), gpu=gpu)
    await asyncio.gather(*(generate(engine, f"q{i}", max_tokens=100, temperature=0)
                           for i in range(4)))
    assert max(busy for busy, _ in gpu.work) > 0
    assert all(0 <= busy <= 1 and 0 < memory <= 1 for busy, memory in gpu.work)
    assert max(memory for _, memory in gpu.work) > EngineConfig().model_memory_fraction
    await asyncio.sleep(1.2)  # idle: the busy share decays to 0 over the last second
    assert gpu.work[-1][0] == 0.0


async def test_submit_validates_and_stop_aborts(make_engine: EngineFactory) -> None:
    engine = make_engine()
    with pytest.raises(ValueError, match="exceeds the context"):
        engine.submit(TOK.encode("x"), SamplingParams(max_tokens=128))
    with pytest.raises(ValueError, match="at least one token"):
        engine.submit([], SamplingParams())
    with pytest.raises(ValueError, match="temperature"):
        SamplingParams(temperature=2.5)
    await asyncio.to_thread(engine.stop)
    with pytest.raises(EngineStopped):
        engine.submit(TOK.encode("x"), SamplingParams())


def test_kv_budget_must_hold_a_context(model: TinyTransformer) -> None:
    with pytest.raises(ValueError, match="kv_cache_tokens"):
        Engine(model, EngineConfig(kv_cache_tokens=64))
