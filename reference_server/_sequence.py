"""What the engine keeps per request: sampling parameters, sampling, stop strings, the handle
the asyncio side reads from."""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import torch

from ._tokenizer import BOS_ID, EOS_ID, StreamDecoder

MAX_STOP_STRINGS = 4


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """How one request samples. temperature 0 is greedy; `seed` makes sampling reproducible."""

    max_tokens: int = 16
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if not 0.0 <= self.temperature <= 2.0:
            raise ValueError(f"temperature must be in [0, 2], got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if len(self.stop) > MAX_STOP_STRINGS or any(not s for s in self.stop):
            raise ValueError(f"stop must be at most {MAX_STOP_STRINGS} non-empty strings")


@dataclass(frozen=True, slots=True)
class Delta:
    """One step's output of one request. `finish_reason` is set on the last one: "stop" (EOS or
    a stop string), "length" (max_tokens or the context), "abort" (the engine stopped) or
    "error" (with `error`)."""

    text: str
    tokens: int
    finish_reason: str | None
    time_s: float
    error: str | None = None


class RequestHandle:
    """The asyncio side of one request: iterate it for `Delta`s; `cancel()` frees it in the
    engine. Timings are `time.monotonic()` seconds, written by the engine thread before the
    delta that reveals them is delivered (plain attribute writes: tracing builds its spans from
    them after the request, so the engine's step loop never calls OpenTelemetry)."""

    _ids = itertools.count()

    def __init__(
        self, prompt_tokens: int, params: SamplingParams, cancel: Callable[[RequestHandle], None]
    ) -> None:
        self.request_id = next(self._ids)
        self.prompt_tokens = prompt_tokens
        self.params = params
        self.submitted_at_s = time.monotonic()
        self.admitted_at_s: float | None = None
        self.prefill_started_at_s: float | None = None
        """When the engine began this request's first prefill (after its queue wait)."""
        self.prefix_hit_blocks = 0
        """KV-cache blocks its first admission reused from the prefix cache."""
        self.preemptions = 0
        self.token_times_s: list[float] = []
        self.finish_reason: str | None = None
        self._queue: asyncio.Queue[Delta] = asyncio.Queue()
        self._cancel = cancel
        self._done = False

    @property
    def completion_tokens(self) -> int:
        return len(self.token_times_s)

    @property
    def queue_time_s(self) -> float | None:
        return None if self.admitted_at_s is None else self.admitted_at_s - self.submitted_at_s

    @property
    def first_token_at_s(self) -> float | None:
        return self.token_times_s[0] if self.token_times_s else None

    def inter_token_latencies_s(self) -> tuple[float, ...]:
        times = self.token_times_s
        return tuple(b - a for a, b in itertools.pairwise(times))

    async def next_delta(self) -> Delta:
        delta = await self._queue.get()
        if delta.finish_reason is not None:
            self._done = True
        return delta

    async def deltas(self) -> AsyncIterator[Delta]:
        """Every delta up to and including the one with a finish_reason."""
        while not self._done:
            yield await self.next_delta()

    @property
    def done(self) -> bool:
        return self._done

    def cancel(self) -> None:
        """The consumer went away: stop generating and free the request's cache."""
        if not self._done:
            self._done = True
            self._cancel(self)

    def _put(self, delta: Delta) -> None:  # on the event loop
        self._queue.put_nowait(delta)


class Sequence:
    """Engine-thread state of one request."""

    def __init__(self, handle: RequestHandle, prompt: list[int], loop: asyncio.AbstractEventLoop):
        self.handle = handle
        self.prompt = prompt
        self.params = handle.params
        self.loop = loop
        self.slot = -1
        self.length = 0  # tokens in the KV cache
        self.pending = -1  # sampled, not yet in the cache
        self.generated = 0
        self.output: list[int] = []  # every sampled token, in order
        self.blocks: list[int] = []  # KV-cache block table
        self.preemptions = 0
        self.finished = False
        self._decoder = StreamDecoder()
        self._text = ""
        self._emitted = 0
        self.generator: torch.Generator | None = None
        if handle.params.temperature > 0:
            seed = handle.params.seed
            self.generator = torch.Generator().manual_seed(
                seed if seed is not None else secrets.randbits(63)
            )

    def accept(self, token: int, now_s: float) -> Delta:
        """Take one sampled token; return what to send (its finish_reason ends the request)."""
        self.generated += 1
        self.output.append(token)
        self.pending = token
        self.handle.token_times_s.append(now_s)
        if token == EOS_ID:
            return self.finish("stop", now_s)
        previous = len(self._text)
        self._text += self._decoder.feed(token)
        if self._find_stop(previous):
            return self.finish("stop", now_s, flush=False)
        if self.generated >= self.params.max_tokens:
            return self.finish("length", now_s)
        return Delta(self._take(self._held_back()), 1, None, now_s)

    def cache_tokens(self) -> list[int]:
        """The tokens a (re-)prefill puts in the KV cache: the prompt, and after a preemption
        also every output token but the pending last one (recomputation, as vLLM preempts)."""
        return self.prompt + self.output[:-1]

    def finish(self, reason: str, now_s: float, *, flush: bool = True, error: str | None = None,
               tokens: int = 1) -> Delta:
        self.finished = True
        if flush:
            previous = len(self._text)
            self._text += self._decoder.flush()
            self._find_stop(previous)
        self.handle.finish_reason = reason
        return Delta(self._take(0), tokens, reason, now_s, error)

    def _find_stop(self, previous_len: int) -> bool:
        """Cut the text at the earliest stop string that ends after `previous_len`."""
        if not self.params.stop:
            return False
        start = max(0, previous_len - max(len(s) for s in self.params.stop) + 1)
        hits = [i for i in (self._text.find(s, start) for s in self.params.stop) if i >= 0]
        if not hits:
            return False
        self._text = self._text[: min(hits)]
        return True

    def _held_back(self) -> int:
        """Characters at the end that may still become a stop string: not sent yet."""
        for k in range(min(len(self._text), max((len(s) for s in self.params.stop), default=1) - 1),
                       0, -1):
            tail = self._text[-k:]
            if any(s.startswith(tail) for s in self.params.stop):
                return k
        return 0

    def _take(self, hold: int) -> str:
        end = max(self._emitted, len(self._text) - hold)
        piece = self._text[self._emitted : end]
        self._emitted = end
        return piece


def sample(logits: torch.Tensor, seqs: list[Sequence]) -> list[int]:
    """One token per row of logits [B, V] (float32, CPU): greedy where temperature is 0, else
    temperature + top-p (nucleus) with each request's own generator. BOS is never sampled."""
    logits[:, BOS_ID] = float("-inf")
    greedy = logits.argmax(dim=-1).tolist()
    tokens: list[int] = []
    for row, seq in enumerate(seqs):
        params = seq.params
        if params.temperature == 0 or seq.generator is None:
            tokens.append(int(greedy[row]))
            continue
        probs = torch.softmax(logits[row] / params.temperature, dim=-1)
        if params.top_p < 1.0:
            sorted_probs, order = probs.sort(descending=True)
            keep = (sorted_probs.cumsum(0) - sorted_probs) < params.top_p
            sorted_probs = torch.where(keep, sorted_probs, torch.zeros_like(sorted_probs))
            choice = torch.multinomial(sorted_probs, 1, generator=seq.generator)
            tokens.append(int(order[choice].item()))
        else:
            tokens.append(int(torch.multinomial(probs, 1, generator=seq.generator).item()))
    return tokens
