"""The inference engine: continuous batching on one dedicated thread.

Each step (iteration-level scheduling, as vLLM's scheduler): cancelled requests are freed,
waiting requests are admitted while the running batch has room (`max_num_seqs`) and the KV
budget (`kv_cache_tokens`, reserved as prompt + max_tokens) allows, each admitted one is
prefilled (its first token), then every other running sequence advances by one token in a
single batched decode pass. A request finishes on its own (max_tokens, EOS, a stop string) and
its slot goes to the next waiting request at the next step.

Results reach asyncio consumers through `loop.call_soon_threadsafe` into per-request queues.
Every step reports running/waiting/KV usage to the request metrics, and the engine's busy
share of wall time drives a simulated GPU (`record_work`).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Protocol

import torch

from ._model import TinyTransformer
from ._sequence import Delta, RequestHandle, SamplingParams, Sequence, sample

logger = logging.getLogger("reference_server.engine")


class EngineMetrics(Protocol):
    """What the engine reports to (exporters.RequestMetrics satisfies it)."""

    def set_running(self, n: int) -> None: ...
    def set_waiting(self, n: int) -> None: ...
    def set_kv_cache_usage(self, ratio: float) -> None: ...


class WorkRecorder(Protocol):
    """A simulated GPU that follows the engine (exporters.SimulatedGpuBackend)."""

    def record_work(self, busy_fraction: float, memory_used_fraction: float) -> None: ...


@dataclass(frozen=True, slots=True)
class EngineConfig:
    max_num_seqs: int = 8
    """The most sequences in the running batch."""
    kv_cache_tokens: int = 4096
    """KV budget in tokens across running sequences; requests wait while it is reserved."""
    model_memory_fraction: float = 0.25
    """Share of the simulated GPU's memory the weights and runtime take."""
    kv_memory_fraction: float = 0.65
    """Share of the simulated GPU's memory the KV cache takes when full."""
    report_interval_s: float = 0.1
    """How often the simulated GPU hears the busy fraction (also when idle)."""

    def __post_init__(self) -> None:
        if self.max_num_seqs < 1:
            raise ValueError(f"max_num_seqs must be >= 1, got {self.max_num_seqs}")
        if self.kv_cache_tokens < 1:
            raise ValueError(f"kv_cache_tokens must be >= 1, got {self.kv_cache_tokens}")


@dataclass(slots=True)
class EngineStats:
    """Counters since start; `decode_batch_sizes[n]` counts decode steps that advanced n
    sequences at once (continuous batching at work when n > 1)."""

    steps: int = 0
    prefills: int = 0
    decode_steps: int = 0
    decode_tokens: int = 0
    finished: int = 0
    cancelled: int = 0
    max_decode_batch: int = 0
    decode_batch_sizes: dict[int, int] = field(default_factory=dict)


class EngineStopped(RuntimeError):
    """submit() after stop()."""


class Engine:
    def __init__(
        self,
        model: TinyTransformer,
        config: EngineConfig | None = None,
        *,
        metrics: EngineMetrics | None = None,
        gpu: WorkRecorder | None = None,
    ) -> None:
        self.model = model
        self.config = config = config or EngineConfig()
        if config.kv_cache_tokens < model.config.context_len:
            raise ValueError(
                f"kv_cache_tokens ({config.kv_cache_tokens}) must hold at least one full context "
                f"({model.config.context_len} tokens)"
            )
        self.context_len = model.config.context_len
        self._metrics = metrics
        self._gpu = gpu
        self._cache = model.new_cache(config.max_num_seqs)
        self._free_slots = list(range(config.max_num_seqs - 1, -1, -1))
        self._lock = threading.Condition()
        self._inbox: collections.deque[Sequence] = collections.deque()
        self._cancelled: set[int] = set()
        self._waiting: collections.deque[Sequence] = collections.deque()
        self._running: list[Sequence] = []
        self._reserved = 0
        self._held = 0
        self._busy: collections.deque[tuple[float, float]] = collections.deque()
        self._last_report = 0.0
        self._stats = EngineStats()
        self._stopping = False
        self._thread: threading.Thread | None = None

    # ---- the asyncio side -------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="engine", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        with self._lock:
            self._stopping = True
            self._lock.notify()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def submit(self, prompt: list[int], params: SamplingParams) -> RequestHandle:
        """Queue a request (from a running event loop); iterate the handle for its output."""
        if not prompt:
            raise ValueError("prompt must have at least one token")
        if len(prompt) + params.max_tokens > self.context_len:
            raise ValueError(
                f"prompt ({len(prompt)} tokens) + max_tokens ({params.max_tokens}) exceeds the "
                f"context of {self.context_len} tokens"
            )
        loop = asyncio.get_running_loop()
        handle = RequestHandle(len(prompt), params, self._cancel)
        with self._lock:
            if self._stopping:
                raise EngineStopped("the engine is stopped")
            self._inbox.append(Sequence(handle, list(prompt), loop))
            self._lock.notify()
        return handle

    def _cancel(self, handle: RequestHandle) -> None:
        with self._lock:
            self._cancelled.add(handle.request_id)
            self._lock.notify()

    @property
    def num_running(self) -> int:
        return len(self._running)

    @property
    def num_waiting(self) -> int:
        return len(self._waiting) + len(self._inbox)

    @property
    def kv_cache_usage(self) -> float:
        """Tokens held in the KV cache / kv_cache_tokens."""
        return min(1.0, self._held / self.config.kv_cache_tokens)

    def stats(self) -> EngineStats:
        s = self._stats
        return EngineStats(s.steps, s.prefills, s.decode_steps, s.decode_tokens, s.finished,
                           s.cancelled, s.max_decode_batch, dict(s.decode_batch_sizes))

    def busy_fraction(self, now_s: float | None = None, window_s: float = 1.0) -> float:
        """Share of the last `window_s` the engine thread spent computing."""
        now_s = time.monotonic() if now_s is None else now_s
        start = now_s - window_s
        busy = sum(max(0.0, min(b, now_s) - max(a, start)) for a, b in list(self._busy))
        return min(1.0, busy / window_s)

    # ---- the engine thread ------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._lock:
                if not (self._stopping or self._inbox or self._cancelled or self._waiting
                        or self._running):
                    self._lock.wait(self.config.report_interval_s)
                if self._stopping:
                    break
                inbox, self._inbox = list(self._inbox), collections.deque()
                cancelled, self._cancelled = self._cancelled, set()
            self._waiting.extend(inbox)
            if cancelled:
                self._drop(cancelled)
            if self._waiting or self._running:
                self._step_safely()
            self._report()
        self._abort_all("the engine stopped")
        self._report(force=True)

    def _step_safely(self) -> None:
        started = time.monotonic()
        try:
            with torch.inference_mode():
                self._step()
        except Exception as exc:  # a bug or a device error must not kill the engine thread
            logger.exception("engine step failed; failing the running requests")
            for seq in list(self._running):
                self._finish(seq, seq.finish("error", time.monotonic(), error=repr(exc), tokens=0))
        finally:
            self._busy.append((started, time.monotonic()))
            while self._busy and self._busy[0][1] < started - 1.0:
                self._busy.popleft()

    def _step(self) -> None:
        self._stats.steps += 1
        admitted: list[Sequence] = []
        while self._waiting and len(self._running) < self.config.max_num_seqs:
            seq = self._waiting[0]
            if self._reserved + seq.reserved > self.config.kv_cache_tokens:
                break
            self._waiting.popleft()
            seq.slot = self._free_slots.pop()
            seq.handle.admitted_at_s = time.monotonic()
            self._reserved += seq.reserved
            self._running.append(seq)
            admitted.append(seq)
        decoding = [s for s in self._running if s not in admitted]
        device = self.model.device
        for seq in admitted:
            tokens = torch.tensor(seq.prompt, device=device)
            logits = self.model.prefill(tokens, self._cache, seq.slot)
            seq.length = len(seq.prompt)
            self._held += seq.length
            self._stats.prefills += 1
            self._accept(seq, sample(logits[None].cpu(), [seq])[0])
        if decoding:
            logits = self.model.decode(
                torch.tensor([s.pending for s in decoding], device=device),
                self._cache,
                torch.tensor([s.slot for s in decoding], device=device),
                torch.tensor([s.length for s in decoding], device=device),
            )
            n = len(decoding)
            self._held += n
            for seq in decoding:
                seq.length += 1
            stats = self._stats
            stats.decode_steps += 1
            stats.decode_tokens += n
            stats.max_decode_batch = max(stats.max_decode_batch, n)
            stats.decode_batch_sizes[n] = stats.decode_batch_sizes.get(n, 0) + 1
            for seq, token in zip(decoding, sample(logits.cpu(), decoding), strict=True):
                self._accept(seq, token)

    def _accept(self, seq: Sequence, token: int) -> None:
        delta = seq.accept(token, time.monotonic())
        if delta.finish_reason is not None:
            self._finish(seq, delta)
        else:
            self._deliver(seq, delta)

    def _finish(self, seq: Sequence, delta: Delta) -> None:
        self._release(seq)
        self._stats.finished += 1
        self._deliver(seq, delta)

    def _release(self, seq: Sequence) -> None:
        if seq in self._running:
            self._running.remove(seq)
            self._free_slots.append(seq.slot)
            self._reserved -= seq.reserved
            self._held -= seq.length
            seq.slot = -1

    def _deliver(self, seq: Sequence, delta: Delta) -> None:
        try:
            seq.loop.call_soon_threadsafe(seq.handle._put, delta)
        except RuntimeError:  # the consumer's event loop is closed: nobody will read this
            seq.finished = True
            self._release(seq)

    def _drop(self, request_ids: set[int]) -> None:
        for seq in [s for s in self._running if s.handle.request_id in request_ids]:
            self._release(seq)
            self._stats.cancelled += 1
        kept = [s for s in self._waiting if s.handle.request_id not in request_ids]
        self._stats.cancelled += len(self._waiting) - len(kept)
        self._waiting = collections.deque(kept)

    def _abort_all(self, why: str) -> None:
        with self._lock:
            self._waiting.extend(self._inbox)
            self._inbox.clear()
        for seq in [*self._running, *self._waiting]:
            self._release(seq)
            self._deliver(seq, seq.finish("abort", time.monotonic(), error=why, tokens=0))
        self._waiting.clear()

    def _report(self, *, force: bool = False) -> None:
        if self._metrics is not None:
            self._metrics.set_running(self.num_running)
            self._metrics.set_waiting(self.num_waiting)
            self._metrics.set_kv_cache_usage(self.kv_cache_usage)
        now = time.monotonic()
        config = self.config
        if self._gpu is not None and (force or now - self._last_report >= config.report_interval_s):
            self._last_report = now
            memory = config.model_memory_fraction + config.kv_memory_fraction * self.kv_cache_usage
            try:
                self._gpu.record_work(self.busy_fraction(now), min(1.0, memory))
            except Exception:
                logger.exception("recording work on the simulated GPU failed")
