"""The reference node's engine: continuous batching against one request at a time.

The same model (`reference_server._model`, random weights from its seed), greedy sampling
and a fixed `max_tokens`. At each concurrency C, C clients each send their share of the
requests back to back (a closed loop). "batched" runs the engine with `max_num_seqs = C`
(continuous batching); "sequential" with `max_num_seqs = 1` (the same requests queue and
are served one at a time). Reported: generated tokens/s over the run's wall time, and time
to first token (submission to first token, queueing included) p50/p99.

`--device auto` uses CUDA (bfloat16) when torch sees a device, else the CPU (float32);
`--threads` sets torch's CPU threads (default 1, so that runs are comparable).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import torch

from reference_server._engine import Engine, EngineConfig
from reference_server._model import ModelConfig, TinyTransformer, load_model, resolve_device
from reference_server._sequence import SamplingParams
from reference_server._tokenizer import ByteTokenizer

from ._common import Options, Result, fmt_ms, percentile

NAME = "engine_throughput"
CONCURRENCIES = (1, 8, 16)
PROMPT = "Summarise the state of GPU node {i} of the inference fleet in one line: "


@dataclass
class Run:
    wall_s: float
    tokens: int
    requests: int
    ttft_s: list[float]
    finish_reasons: dict[str, int]
    max_decode_batch: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "tokens_per_s": self.tokens / self.wall_s,
            "requests_per_s": self.requests / self.wall_s,
            "ttft_p50_ms": percentile(self.ttft_s, 50) * 1000,
            "ttft_p99_ms": percentile(self.ttft_s, 99) * 1000,
            "wall_s": self.wall_s,
            "tokens": self.tokens,
            "requests": self.requests,
            "finish_reasons": self.finish_reasons,
            "max_decode_batch": self.max_decode_batch,
        }


async def _drive(
    engine: Engine, prompts: list[list[int]], params: SamplingParams, concurrency: int
) -> tuple[float, int, list[float], Counter[str]]:
    pending = list(reversed(prompts))
    ttfts: list[float] = []
    reasons: Counter[str] = Counter()
    tokens = 0

    async def client() -> None:
        nonlocal tokens
        while pending:
            handle = engine.submit(pending.pop(), params)
            async for delta in handle.deltas():
                if delta.error:
                    raise RuntimeError(f"the engine failed a request: {delta.error}")
            first = handle.first_token_at_s
            if first is not None:
                ttfts.append(first - handle.submitted_at_s)
            tokens += handle.completion_tokens
            reasons[handle.finish_reason or "none"] += 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return time.perf_counter() - started, tokens, ttfts, reasons


def _measure(
    model: TinyTransformer,
    *,
    max_num_seqs: int,
    concurrency: int,
    requests: int,
    params: SamplingParams,
    prompts: list[list[int]],
) -> Run:
    engine = Engine(model, EngineConfig(max_num_seqs=max_num_seqs))
    engine.start()
    try:
        # Warm-up: the first passes at each batch size pay for allocations (and CUDA kernels).
        warm = SamplingParams(max_tokens=4, temperature=0.0)
        asyncio.run(_drive(engine, prompts[:concurrency], warm, concurrency))
        wall_s, tokens, ttfts, reasons = asyncio.run(
            _drive(engine, prompts[:requests], params, concurrency)
        )
        max_batch = engine.stats().max_decode_batch
    finally:
        engine.stop()
    return Run(wall_s, tokens, requests, ttfts, dict(reasons), max_batch)


def run(options: Options) -> Result:
    torch_device, dtype = resolve_device(options.device)
    if torch_device.type == "cpu":
        torch.set_num_threads(options.threads)
    torch.manual_seed(0)
    model_config = ModelConfig()
    model = load_model(model_config, device=torch_device.type).eval()
    max_tokens = 32 if options.quick else 64
    per_client = 2 if options.quick else 4
    tokenizer = ByteTokenizer()
    most = max(CONCURRENCIES) * per_client
    prompts = [tokenizer.encode(PROMPT.format(i=i)) for i in range(max(most, 8))]
    params = SamplingParams(max_tokens=max_tokens, temperature=0.0)

    results: dict[str, Any] = {}
    table: list[tuple[str, str]] = []
    for concurrency in CONCURRENCIES:
        requests = max(8, concurrency * per_client)
        modes = {"batched": concurrency, "sequential": 1}
        row: dict[str, Any] = {}
        for mode, max_num_seqs in modes.items():
            if mode == "sequential" and concurrency == 1:
                row[mode] = row["batched"]  # max_num_seqs = 1 either way
                continue
            measured = _measure(
                model,
                max_num_seqs=max_num_seqs,
                concurrency=concurrency,
                requests=requests,
                params=params,
                prompts=prompts,
            )
            row[mode] = measured.as_dict()
        row["tokens_per_s_ratio"] = (
            row["batched"]["tokens_per_s"] / row["sequential"]["tokens_per_s"]
        )
        results[f"concurrency_{concurrency}"] = row
        for mode in modes if concurrency > 1 else ["batched"]:
            r = row[mode]
            label = mode if concurrency > 1 else "(max_num_seqs 1 either way)"
            table.append(
                (
                    f"c={concurrency:<2} {label}",
                    f"{r['tokens_per_s']:8,.0f} tok/s  TTFT p50 {fmt_ms(r['ttft_p50_ms'])}"
                    f"  p99 {fmt_ms(r['ttft_p99_ms'])}",
                )
            )
    ratio = results[f"concurrency_{max(CONCURRENCIES)}"]["tokens_per_s_ratio"]
    results["batched_over_sequential_at_16"] = ratio
    table.append((f"batched / sequential at c={max(CONCURRENCIES)}", f"{ratio:.1f}x tokens/s"))
    return Result(
        params={
            "device": str(torch_device),
            "dtype": str(dtype).removeprefix("torch."),
            "torch_threads": torch.get_num_threads(),
            "model": {
                "n_layers": model_config.n_layers,
                "d_model": model_config.d_model,
                "n_heads": model_config.n_heads,
                "context_len": model_config.context_len,
                "parameters": sum(p.numel() for p in model.parameters()),
            },
            "sampling": "greedy (temperature 0)",
            "max_tokens": max_tokens,
            "prompt_tokens": len(prompts[0]),
            "requests_per_client": per_client,
            "concurrencies": list(CONCURRENCIES),
        },
        results=results,
        table=table,
    )
