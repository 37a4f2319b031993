"""KV-cache blocks: accounting, prefix caching (same answers, fewer prefilled tokens), leak."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import torch

from reference_server._engine import Engine, EngineConfig
from reference_server._kv_blocks import BlockPool, block_hashes
from reference_server._model import ModelConfig, TinyTransformer, load_model
from reference_server._sequence import RequestHandle, SamplingParams
from reference_server._tokenizer import ByteTokenizer

TINY = ModelConfig(n_layers=2, d_model=64, n_heads=4, context_len=128)
TOK = ByteTokenizer()
SYSTEM = "You are the on-call assistant of a GPU inference fleet. Answer briefly. "


@pytest.fixture(scope="module")
def model() -> TinyTransformer:
    return load_model(TINY, device="cpu")


# ---- the block pool ---------------------------------------------------------------------


def test_block_hashes_chain_over_full_blocks_only() -> None:
    a = block_hashes(list(range(40)), 16)
    b = block_hashes([*range(16), *range(100, 124)], 16)
    assert len(a) == 2 and len(b) == 2  # the 8-token tail has no hash
    assert a[0] == b[0] and a[1] != b[1]
    # the same tokens after a different first block hash differently (a chain, not contents)
    assert block_hashes([*range(100, 116), *range(16, 32)], 16)[1] != a[1]


def test_pool_counts_blocks_and_reuses_a_cached_prefix() -> None:
    pool = BlockPool(4, 16)
    first = pool.allocate(2)
    assert (pool.num_free, pool.usage) == (2, 0.5)
    hashes = block_hashes(list(range(32)), 16)
    assert pool.register(first[0], hashes[0]) and pool.register(first[1], hashes[1])
    pool.release(first)
    assert (pool.num_free, pool.usage, pool.num_cached) == (4, 0.0, 2)
    match = pool.match_prefix(hashes, most_tokens=31)  # one token must be left to compute
    assert match.blocks == (first[0],) and match.tokens == 16
    assert pool.match_prefix(hashes, most_tokens=32).blocks == tuple(first)
    assert pool.can_allocate(3, match.blocks) and not pool.can_allocate(4, match.blocks)
    pool.take(match.blocks)
    assert pool.num_free == 3
    fresh = pool.allocate(3)  # the free cached block (first[1]) is reused: its prefix goes
    assert first[0] not in fresh and pool.num_free == 0 and pool.num_cached == 1
    with pytest.raises(ValueError, match="1 blocks asked for, 0 free"):
        pool.allocate(1)


def test_a_leaking_pool_keeps_released_blocks_until_the_leak_stops() -> None:
    pool = BlockPool(4, 16)
    pool.leaking = True
    pool.release(pool.allocate(3))
    assert (pool.num_free, pool.num_leaked, pool.usage) == (1, 3, 0.75)
    assert pool.stop_leaking() == 3
    assert (pool.num_free, pool.num_leaked, pool.usage, pool.leaking) == (4, 0, 0.0, False)


# ---- the model: a cached prefix computes what a full prefill does -----------------------


def test_prefill_after_a_copied_prefix_matches_a_full_prefill(model: TinyTransformer) -> None:
    prompt = torch.tensor(TOK.encode(SYSTEM + "Is node-3 healthy?"))
    cache = model.new_cache(2)
    full = model.prefill(prompt, cache, slot=0, all_logits=True)
    store = model.new_block_store(8, 16)
    store.save(cache, 0, 0, block=5)
    store.save(cache, 0, 1, block=2)
    store.load(cache, 1, (5, 2))
    torch.testing.assert_close(cache.k[:, 1, :32], cache.k[:, 0, :32])
    rest = model.prefill(prompt[32:], cache, slot=1, all_logits=True, start=32)
    torch.testing.assert_close(rest, full[32:], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(cache.v[:, 1, :len(prompt)], cache.v[:, 0, :len(prompt)],
                               rtol=1e-4, atol=1e-5)


# ---- the engine -------------------------------------------------------------------------


@pytest.fixture
async def engines(model: TinyTransformer) -> AsyncIterator[list[Engine]]:
    made: list[Engine] = []
    yield made
    for engine in made:
        await asyncio.to_thread(engine.stop)


def start(engines: list[Engine], model: TinyTransformer, config: EngineConfig) -> Engine:
    engine = Engine(model, config)
    engine.start()
    engines.append(engine)
    return engine


async def text_of(handle: RequestHandle) -> str:
    return "".join([d.text async for d in handle.deltas()])


async def test_a_shared_prefix_is_served_from_cache_with_the_same_answers(
    model: TinyTransformer, engines: list[Engine],
) -> None:
    questions = ["Is node-3 healthy?", "Why is p99 TTFT up?", "Drain node-1?"]
    params = SamplingParams(max_tokens=12, temperature=0)
    answers: dict[bool, list[str]] = {}
    for caching in (False, True):
        engine = start(engines, model, EngineConfig(kv_cache_tokens=1024, prefix_caching=caching))
        answers[caching] = [await text_of(engine.submit(TOK.encode(SYSTEM + q), params))
                            for q in questions]
        stats = engine.stats()
        if caching:
            prompt_tokens = [len(TOK.encode(SYSTEM + q)) for q in questions]
            shared_blocks = len(TOK.encode(SYSTEM)) // 16
            assert stats.prefix_queries_tokens == sum(prompt_tokens)
            assert stats.prefix_hits_tokens == 2 * shared_blocks * 16  # 2nd and 3rd requests
        else:
            assert (stats.prefix_queries_tokens, stats.prefix_hits_tokens) == (0, 0)
    assert answers[True] == answers[False]


async def test_kv_leak_fills_the_cache_until_requests_queue_and_clearing_recovers(
    model: TinyTransformer, engines: list[Engine],
) -> None:
    engine = start(engines, model, EngineConfig(kv_cache_tokens=256, prefix_caching=False))
    params = SamplingParams(max_tokens=20, temperature=0)
    engine.faults.set_kv_leak(True)
    usage = [engine.kv_cache_usage]
    for i in range(5):  # 2 blocks each, never freed: 10 of 16 blocks
        await text_of(engine.submit(TOK.encode(f"request {i}"), params))
        usage.append(engine.kv_cache_usage)
    assert usage == [0.0, 0.125, 0.25, 0.375, 0.5, 0.625]
    assert engine.num_running == 0
    # a prompt needing 7 blocks no longer fits: it queues behind the leaked blocks
    stuck = engine.submit(TOK.encode("y" * 100), SamplingParams(max_tokens=4, temperature=0))
    for _ in range(50):
        await asyncio.sleep(0.02)
    assert (engine.num_waiting, engine.num_running, stuck.completion_tokens) == (1, 0, 0)
    engine.faults.set_kv_leak(False)
    await text_of(stuck)
    assert stuck.finish_reason in ("length", "stop")
    assert engine.kv_cache_usage == 0.0
