"""The inference engine: continuous batching on one dedicated thread.

Each step (iteration-level scheduling, as vLLM's scheduler): cancelled requests are freed,
waiting requests are admitted in order while the running batch has room (`max_num_seqs`) and
the KV cache has blocks for their prompts (a shared prompt prefix reuses cached blocks, see
`_kv_cache`), each admitted one is prefilled (its first token), then every other running
sequence advances by one token in a single batched decode pass. A decoding sequence that needs
a new block when none is free preempts the newest running request, which goes back to the
head of the queue and is recomputed later (vLLM's recompute preemption). A request finishes on
its own (max_tokens, EOS, a stop string) and its blocks and slot go to the next waiting one.

Results reach asyncio consumers through `loop.call_soon_threadsafe` into per-request queues.
Every step reports running/waiting/KV usage to the request metrics, and the engine's busy
share of wall time drives a simulated GPU (`record_work`). Faults and profiling reach the
engine thread as commands run between steps (`_engine_faults`).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from collections.abc import Callable

import torch

from ._engine_faults import EngineFaults, StepObserver
from ._engine_interface import (
    EngineConfig,
    EngineMetrics,
    EngineStats,
    EngineStopped,
    WorkRecorder,
)
from ._engine_reporting import EngineReporter
from ._kv_cache import Admission, KvCacheManager, prefill_tokens
from ._model import TinyTransformer
from ._sequence import Delta, RequestHandle, SamplingParams, Sequence, sample

logger = logging.getLogger("reference_server.engine")

__all__ = ["Engine", "EngineConfig", "EngineMetrics", "EngineStats", "EngineStopped",
           "StepObserver", "WorkRecorder"]


class Engine:
    def __init__(
        self,
        model: TinyTransformer,
        config: EngineConfig | None = None,
        *,
        metrics: EngineMetrics | None = None,
        gpu: WorkRecorder | None = None,
        clock_ratio: Callable[[], float] | None = None,
    ) -> None:
        """`clock_ratio` (a simulated GPU's SM clock / its maximum, 1.0 unthrottled) makes
        every step take 1/ratio as long, as a throttled GPU's kernels do."""
        self.model = model
        self.config = config = config or EngineConfig()
        blocks = config.kv_cache_tokens // config.block_size
        if blocks * config.block_size < model.config.context_len:
            raise ValueError(
                f"kv_cache_tokens ({config.kv_cache_tokens}, {blocks} blocks of "
                f"{config.block_size}) must hold at least one full context "
                f"({model.config.context_len} tokens)"
            )
        self.context_len = model.config.context_len
        self._reporter = EngineReporter(config, metrics, gpu, clock_ratio)
        self._cache = model.new_cache(config.max_num_seqs)
        self.kv = KvCacheManager(model, self._cache, num_blocks=blocks,
                                 block_size=config.block_size,
                                 prefix_caching=config.prefix_caching)
        self._free_slots = list(range(config.max_num_seqs - 1, -1, -1))
        self._lock = threading.Condition()
        self._inbox: collections.deque[Sequence] = collections.deque()
        self._cancelled: set[int] = set()
        self._waiting: collections.deque[Sequence] = collections.deque()
        self._running: list[Sequence] = []
        self._busy: collections.deque[tuple[float, float]] = collections.deque()
        self._step_started: float | None = None
        self._stats = EngineStats()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.faults = EngineFaults(self._lock, model, self.kv)

    # ---- the asyncio side -------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="engine", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        self.faults.stop()
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
            self._lock.notify_all()
        return handle

    def _cancel(self, handle: RequestHandle) -> None:
        with self._lock:
            self._cancelled.add(handle.request_id)
            self._lock.notify_all()

    @property
    def num_running(self) -> int:
        return len(self._running)

    @property
    def num_waiting(self) -> int:
        return len(self._waiting) + len(self._inbox)

    @property
    def kv_cache_usage(self) -> float:
        """Share of KV-cache blocks held (cached-but-unused blocks count as free)."""
        return self.kv.usage

    @property
    def clock_ratio(self) -> float:
        """The GPU's clock / its maximum as last read (1.0: unthrottled); steps take 1/ratio."""
        return self._reporter.clock_ratio

    def stats(self) -> EngineStats:
        s = self._stats
        return EngineStats(s.steps, s.prefills, s.decode_steps, s.decode_tokens, s.finished,
                           s.cancelled, s.max_decode_batch, dict(s.decode_batch_sizes),
                           s.preemptions, self.kv.prefix_queries_tokens,
                           self.kv.prefix_hits_tokens)

    def health_problem(self, now_s: float | None = None) -> str | None:
        """Why the engine cannot serve, or None: it died (an uncorrectable GPU error), or a
        step has run for `stall_timeout_s` with requests in the batch (hung)."""
        if (dead := self.faults.dead_reason) is not None:
            return f"engine dead: {dead}"
        started = self._step_started
        now_s = time.monotonic() if now_s is None else now_s
        if started is not None and self._running and now_s - started >= self.config.stall_timeout_s:
            return (f"engine hung: one step has run for {now_s - started:.1f} s with "
                    f"{len(self._running)} requests running")
        return None

    def busy_fraction(self, now_s: float | None = None, window_s: float = 1.0) -> float:
        """Share of the last `window_s` the engine thread spent computing (a step still
        running counts up to now)."""
        now_s = time.monotonic() if now_s is None else now_s
        start = now_s - window_s
        intervals = list(self._busy)
        if (open_since := self._step_started) is not None:
            intervals.append((open_since, now_s))
        busy = sum(max(0.0, min(b, now_s) - max(a, start)) for a, b in intervals)
        return min(1.0, busy / window_s)

    # ---- the engine thread ------------------------------------------------------------

    def _run(self) -> None:
        idle = True
        while True:
            with self._lock:
                if idle and not (self._stopping or self._inbox or self._cancelled
                                 or self.faults.has_commands):
                    self._lock.wait(self.config.report_interval_s)
                if self._stopping:
                    break
                inbox, self._inbox = list(self._inbox), collections.deque()
                cancelled, self._cancelled = self._cancelled, set()
            self.faults.run_commands()
            self._waiting.extend(inbox)
            if cancelled:
                self._drop(cancelled)
            idle = True
            if self._waiting or self._running:
                idle = not self._step_safely()
            self._report()
        self.faults.abandon_observer()
        self._abort_all("the engine stopped")
        self._report(force=True)

    def _step_safely(self) -> bool:
        """One step; False when it could do nothing (the queue waits for blocks)."""
        started = self._step_started = time.monotonic()
        observer = self.faults.observer
        worked = False
        try:
            if observer is not None:
                observer.before_step()
            with torch.inference_mode():
                worked = self._step()
        except Exception as exc:  # a bug or a device error must not kill the engine thread
            logger.exception("engine step failed; failing the running requests")
            self._fail_running(repr(exc))
        finally:
            if observer is not None:
                self.faults.after_step(observer)
            ratio = self._reporter.clock_ratio
            if worked and ratio < 1.0:  # a throttled GPU runs every kernel slower
                time.sleep((time.monotonic() - started) * (1.0 / ratio - 1.0))
            ended = time.monotonic()
            self._step_started = None
            if worked:
                self._busy.append((started, ended))
            while self._busy and self._busy[0][1] < started - 1.0:
                self._busy.popleft()
        return worked

    def _step(self) -> bool:
        if (dead := self.faults.dead_reason) is not None:
            self._fail_running(dead)
            for seq in list(self._waiting):
                self._deliver(seq, seq.finish("error", time.monotonic(), error=dead, tokens=0))
            self._waiting.clear()
            return False
        admitted = self._admit()
        if not self._running:
            return False
        self._stats.steps += 1
        self.faults.hold_while_hung(self._report)
        decoding = [s for s in self._running if s not in admitted]
        device = self.model.device
        for seq, admission in admitted.items():
            if seq.handle.prefill_started_at_s is None:
                seq.handle.prefill_started_at_s = time.monotonic()
            self.kv.load_prefix(seq, admission)
            logits = self.model.prefill(prefill_tokens(admission, device), self._cache,
                                        seq.slot, start=admission.match.tokens)
            self.kv.register_prefill(seq, admission)
            seq.length = len(admission.tokens)
            self._stats.prefills += 1
            if seq.generated == 0:
                self._accept(seq, sample(logits[None].cpu(), [seq])[0])
        decoding = self._make_room(decoding)
        if decoding:
            logits = self.model.decode(
                torch.tensor([s.pending for s in decoding], device=device),
                self._cache,
                torch.tensor([s.slot for s in decoding], device=device),
                torch.tensor([s.length for s in decoding], device=device),
            )
            n = len(decoding)
            for seq in decoding:
                seq.length += 1
            stats = self._stats
            stats.decode_steps += 1
            stats.decode_tokens += n
            stats.max_decode_batch = max(stats.max_decode_batch, n)
            stats.decode_batch_sizes[n] = stats.decode_batch_sizes.get(n, 0) + 1
            for seq, token in zip(decoding, sample(logits.cpu(), decoding), strict=True):
                self._accept(seq, token)
        return True

    def _admit(self) -> dict[Sequence, Admission]:
        admitted: dict[Sequence, Admission] = {}
        while self._waiting and len(self._running) < self.config.max_num_seqs:
            seq = self._waiting[0]
            admission = self.kv.try_admit(seq)
            if admission is None:
                break  # first come, first served: the head waits for blocks
            self._waiting.popleft()
            seq.slot = self._free_slots.pop()
            if seq.handle.admitted_at_s is None:
                seq.handle.admitted_at_s = time.monotonic()
                seq.handle.prefix_hit_blocks = len(admission.match.blocks)
            self._running.append(seq)
            admitted[seq] = admission
        return admitted

    def _make_room(self, decoding: list[Sequence]) -> list[Sequence]:
        """A block for each decoding sequence's next token; when none is free, the newest
        running request is preempted (possibly the one asking)."""
        for seq in decoding:
            while seq in self._running and not self.kv.grow(seq):
                self._preempt(self._running[-1])
        return [s for s in decoding if s in self._running]

    def _preempt(self, seq: Sequence) -> None:
        self._release(seq)
        seq.length = 0
        seq.preemptions += 1
        seq.handle.preemptions += 1
        self._stats.preemptions += 1
        self._waiting.appendleft(seq)
        logger.info("preempted request %d (KV cache full); it will be recomputed",
                    seq.handle.request_id)

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

    def _fail_running(self, error: str) -> None:
        for seq in list(self._running):
            self._finish(seq, seq.finish("error", time.monotonic(), error=error, tokens=0))

    def _release(self, seq: Sequence) -> None:
        if seq in self._running:
            self._running.remove(seq)
            self._free_slots.append(seq.slot)
            self.kv.release(seq)
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
        self._reporter.report(
            running=self.num_running,
            waiting=self.num_waiting,
            kv_cache_usage=self.kv_cache_usage,
            prefix_queries_tokens=self.kv.prefix_queries_tokens,
            prefix_hits_tokens=self.kv.prefix_hits_tokens,
            preemptions=self._stats.preemptions,
            busy_fraction=self.busy_fraction,
            force=force,
        )
