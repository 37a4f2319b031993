"""What the engine reports each step: request metrics, simulated GPU work; the clock it reads."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ._engine_interface import EngineConfig, EngineMetrics, WorkRecorder

logger = logging.getLogger("reference_server.engine")

__all__ = ["EngineReporter"]


class EngineReporter:
    """Pushes the engine's load to its metrics (every step) and to the simulated GPU (every
    `report_interval_s`), reading the GPU clock ratio back at the same pace."""

    def __init__(
        self,
        config: EngineConfig,
        metrics: EngineMetrics | None,
        gpu: WorkRecorder | None,
        clock_ratio: Callable[[], float] | None,
    ) -> None:
        self._config = config
        self._metrics = metrics
        self._gpu = gpu
        self._clock_ratio_source = clock_ratio
        self.clock_ratio = 1.0
        """The GPU's clock / its maximum as last read (1.0: unthrottled)."""
        self._last_report = 0.0
        self._reported = (0, 0, 0)

    def report(
        self,
        *,
        running: int,
        waiting: int,
        kv_cache_usage: float,
        prefix_queries_tokens: int,
        prefix_hits_tokens: int,
        preemptions: int,
        busy_fraction: Callable[[float], float],
        force: bool = False,
    ) -> None:
        if self._metrics is not None:
            self._metrics.set_running(running)
            self._metrics.set_waiting(waiting)
            self._metrics.set_kv_cache_usage(kv_cache_usage)
            counts = (prefix_queries_tokens, prefix_hits_tokens, preemptions)
            queries, hits, new_preemptions = (a - b for a, b in zip(counts, self._reported,
                                                                   strict=True))
            if queries or hits:
                self._metrics.count_prefix_cache(queries, hits)
            if new_preemptions:
                self._metrics.count_preemptions(new_preemptions)
            self._reported = counts
        now = time.monotonic()
        config = self._config
        if force or now - self._last_report >= config.report_interval_s:
            self._last_report = now
            self._refresh_clock_ratio()
            if self._gpu is not None:
                memory = (config.model_memory_fraction
                          + config.kv_memory_fraction * kv_cache_usage)
                try:
                    self._gpu.record_work(busy_fraction(now), min(1.0, memory))
                except Exception:
                    logger.exception("recording work on the simulated GPU failed")

    def _refresh_clock_ratio(self) -> None:
        if self._clock_ratio_source is None:
            return
        try:
            self.clock_ratio = min(1.0, max(0.05, float(self._clock_ratio_source())))
        except Exception:
            logger.exception("reading the GPU clock ratio failed")
