"""The engine's contract with callers: its settings, counters, error and the ports it reports to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["EngineConfig", "EngineMetrics", "EngineStats", "EngineStopped", "WorkRecorder"]


class EngineMetrics(Protocol):
    """What the engine reports to (exporters.RequestMetrics satisfies it)."""

    def set_running(self, n: int) -> None: ...
    def set_waiting(self, n: int) -> None: ...
    def set_kv_cache_usage(self, ratio: float) -> None: ...
    def count_prefix_cache(self, queries_tokens: int, hits_tokens: int) -> None: ...
    def count_preemptions(self, n: int) -> None: ...


class WorkRecorder(Protocol):
    """A simulated GPU that follows the engine (exporters.SimulatedGpuBackend)."""

    def record_work(self, busy_fraction: float, memory_used_fraction: float) -> None: ...


@dataclass(frozen=True, slots=True)
class EngineConfig:
    max_num_seqs: int = 8
    """The most sequences in the running batch."""
    kv_cache_tokens: int = 4096
    """KV-cache size in tokens: `kv_cache_tokens // block_size` blocks."""
    block_size: int = 16
    """Tokens per KV-cache block (vLLM's default on CUDA)."""
    prefix_caching: bool = True
    """Reuse the cached blocks of a shared prompt prefix (vLLM's `enable_prefix_caching`)."""
    model_memory_fraction: float = 0.25
    """Share of the simulated GPU's memory the weights and runtime take."""
    kv_memory_fraction: float = 0.65
    """Share of the simulated GPU's memory the KV cache takes when full."""
    report_interval_s: float = 0.1
    """How often the simulated GPU hears the busy fraction (also when idle)."""
    stall_timeout_s: float = 5.0
    """A step running this long with requests in the batch makes the engine unhealthy."""

    def __post_init__(self) -> None:
        for name in ("max_num_seqs", "kv_cache_tokens", "block_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.stall_timeout_s <= 0:
            raise ValueError(f"stall_timeout_s must be > 0, got {self.stall_timeout_s}")


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
    preemptions: int = 0
    prefix_queries_tokens: int = 0
    prefix_hits_tokens: int = 0


class EngineStopped(RuntimeError):
    """submit() after stop()."""
