"""Engine-side faults and step observers, applied on the engine thread between steps.

The event loop asks (`set_hang`, `set_slow_kernel`, `set_kv_leak`, `set_dead`, `observe`);
anything that touches the model or the KV cache becomes a command the engine thread runs
before its next step, so a step never sees a half-applied change.

- hang: the next step stops before its forward pass and stays stopped (requests are admitted
  and held, no token is produced), as an engine stuck in a kernel or a collective does;
- slow kernel: extra matmuls in one layer's MLP (`TinyTransformer.set_slow_kernel`);
- KV leak: blocks of finished requests are never freed (`BlockPool.leaking`);
- dead: an uncorrectable GPU error killed the engine: every request fails until cleared.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from typing import Protocol

from ._kv_cache import KvCacheManager
from ._model import TinyTransformer

logger = logging.getLogger("reference_server.engine")

__all__ = ["EngineFaults", "StepObserver"]

HANG_POLL_S = 0.1


class StepObserver(Protocol):
    """Watches engine steps on the engine thread (the profiler): `before_step` and
    `after_step` wrap each step; `tick` runs every loop turn, idle or not; a True from
    `after_step` or `tick` ends the observation; `abandon` when the engine stops first."""

    def before_step(self) -> None: ...
    def after_step(self) -> bool: ...
    def tick(self) -> bool: ...
    def abandon(self) -> None: ...


class EngineFaults:
    def __init__(
        self, lock: threading.Condition, model: TinyTransformer, kv: KvCacheManager
    ) -> None:
        self._lock = lock
        self._model = model
        self._kv = kv
        self._commands: collections.deque[Callable[[], None]] = collections.deque()
        self._hung = False
        self._stopped = False
        self.dead_reason: str | None = None
        self.observer: StepObserver | None = None
        self._next_observer: StepObserver | None = None

    # ---- the event loop's side ---------------------------------------------------------

    def _command(self, command: Callable[[], None]) -> None:
        with self._lock:
            self._commands.append(command)
            self._lock.notify_all()

    def set_hang(self, hung: bool) -> None:
        with self._lock:
            self._hung = hung
            self._lock.notify_all()

    @property
    def hung(self) -> bool:
        return self._hung

    def set_slow_kernel(self, layer: int | None, extra_matmuls: int = 0) -> None:
        """ValueError now (not on the engine thread) for a layer the model lacks."""
        n_layers = self._model.config.n_layers
        if layer is not None and not 0 <= layer < n_layers:
            raise ValueError(f"layer must be in 0..{n_layers - 1}, got {layer}")
        self._command(lambda: self._model.set_slow_kernel(layer, extra_matmuls))

    def set_kv_leak(self, leaking: bool) -> None:
        def apply() -> None:
            freed = self._kv.set_leaking(leaking)
            if freed:
                logger.info("KV leak cleared: %d leaked blocks freed", freed)
        self._command(apply)

    def set_dead(self, reason: str | None) -> None:
        with self._lock:
            self.dead_reason = reason
            self._lock.notify_all()

    def observe(self, observer: StepObserver) -> None:
        """Start `observer` at the next step; ValueError while another one watches."""
        with self._lock:
            if self.observer is not None or self._next_observer is not None:
                raise ValueError("a profile is already running on this engine")
            self._next_observer = observer
            self._lock.notify_all()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            self._lock.notify_all()

    # ---- the engine thread's side ------------------------------------------------------

    @property
    def has_commands(self) -> bool:
        return bool(self._commands) or self._next_observer is not None

    def run_commands(self) -> None:
        with self._lock:
            commands, self._commands = list(self._commands), collections.deque()
            if self._next_observer is not None:
                self.observer, self._next_observer = self._next_observer, None
        for command in commands:
            try:
                command()
            except Exception:
                logger.exception("an engine command failed")
        self.tick()

    def tick(self) -> None:
        if self.observer is not None:
            self._end_if(self.observer.tick)

    def after_step(self, observer: StepObserver) -> None:
        self._end_if(observer.after_step)

    def _end_if(self, check: Callable[[], bool]) -> None:
        try:
            done = check()
        except Exception:
            logger.exception("a step observer failed; it is dropped")
            done = True
        if done:
            self.observer = None

    def abandon_observer(self) -> None:
        if self.observer is not None:
            try:
                self.observer.abandon()
            except Exception:
                logger.exception("abandoning the step observer failed")
            self.observer = None

    def hold_while_hung(self, report: Callable[[], None]) -> None:
        """Block the step while the hang fault lasts (reporting the frozen batch meanwhile)."""
        if not self._hung:
            return
        logger.warning("hang fault: the engine step is stuck")
        while True:
            with self._lock:
                if not self._hung or self._stopped:
                    break
                self._lock.wait(HANG_POLL_S)
            report()
        logger.info("hang fault cleared: the engine step goes on")
