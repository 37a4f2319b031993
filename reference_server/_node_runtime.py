"""Everything one node serves with: model, engine, metrics registry, GPU backend, faults, drain."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from prometheus_client import CollectorRegistry

from exporters import (
    GpuBackend,
    GpuCollector,
    ProcessOwner,
    RequestMetrics,
    RequestOutcome,
    SimulatedGpuBackend,
    StaticAttribution,
    select_gpu_backend,
)

from ._engine import Engine, EngineConfig
from ._model import ModelConfig, load_model
from ._node_faults import GPU_FAULT_KINDS, Faults
from ._openai_schema import ApiError
from ._tokenizer import ByteTokenizer

logger = logging.getLogger("reference_server.node")

DEFAULT_MODEL_NAME = "inferops-tiny"
HW_THERMAL_SLOWDOWN = 0x40
"""NVML's nvmlClocksEventReasonHwThermalSlowdown bit of `GpuSample.throttle_reasons`."""


@dataclass(frozen=True, slots=True)
class NodeConfig:
    name: str = "node-0"
    model_name: str = DEFAULT_MODEL_NAME
    model: ModelConfig = field(default_factory=ModelConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    device: str = "auto"
    """auto | cpu | cuda (see `_model.resolve_device`)."""
    gpu_backend: str = "auto"
    """auto | sim | nvml (see `exporters.select_gpu_backend`)."""
    gpu_type: str = "H100-SXM5-80GB"
    default_max_tokens: int = 16
    """max_tokens when a request leaves it out (completions and chat alike)."""
    profile_dir: str | None = None
    """Where `POST /admin/profile` saves Chrome traces; None: a new temporary directory."""


class Node:
    """A node's state. `start()` starts the engine thread; `close()` stops it and releases the
    GPU backend. `gpu_backend` may be passed in (tests); else it is selected from the config."""

    def __init__(
        self,
        config: NodeConfig,
        *,
        admin_token: str,
        gpu_backend: GpuBackend | None = None,
    ) -> None:
        if not admin_token:
            raise ValueError("admin_token must not be empty")
        self.config = config
        self.admin_token = admin_token
        self.started_at = int(time.time())
        self.tokenizer = ByteTokenizer()
        self.model = load_model(config.model, device=config.device)
        self.registry = CollectorRegistry()
        self.metrics = RequestMetrics(self.registry, model_name=config.model_name)
        self.gpu = gpu_backend or select_gpu_backend(
            config.gpu_backend, gpus=1, gpu_type=config.gpu_type, hostname=config.name
        )
        # This process serves the node: its GPU memory is attributed to the node and model.
        self.gpu_collector = GpuCollector(
            self.gpu,
            hostname=config.name,
            attribution=StaticAttribution(
                {os.getpid(): ProcessOwner(config.name, config.model_name)}
            ),
        )
        self.registry.register(self.gpu_collector)
        self.engine = Engine(
            self.model,
            config.engine,
            metrics=self.metrics,
            gpu=self.simulated_gpu,
            clock_ratio=self._sim_clock_ratio if self.simulated_gpu is not None else None,
        )
        self.faults = Faults()
        self._profile_dir: Path | None = (
            None if config.profile_dir is None else Path(config.profile_dir))
        self._profiles = 0
        self.draining = False
        self._closed = False

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def model_name(self) -> str:
        return self.config.model_name

    @property
    def context_len(self) -> int:
        return self.model.config.context_len

    @property
    def simulated_gpu(self) -> SimulatedGpuBackend | None:
        """The GPU backend when it is simulated (it can be faulted); None for real GPUs."""
        return self.gpu if isinstance(self.gpu, SimulatedGpuBackend) else None

    def describe(self) -> str:
        return (
            f"{self.name}: model {self.model_name} ({self.model.config.n_layers} layers, "
            f"d_model {self.model.config.d_model}, context {self.context_len}) on "
            f"{self.model.device} {str(self.model.dtype).removeprefix('torch.')}, "
            f"GPU backend {self.gpu.name}, torch threads {torch.get_num_threads()}"
        )

    def start(self) -> None:
        self.engine.start()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.engine.stop()
        self.gpu_collector.close()
        self.gpu.close()

    def record(self, outcome: RequestOutcome) -> None:
        try:
            self.metrics.record(outcome)
        except Exception:  # metrics must never fail a request
            logger.exception("recording request metrics failed")

    def next_trace_path(self) -> Path:
        """A new Chrome trace file's path under the profile directory."""
        if self._profile_dir is None:
            self._profile_dir = Path(tempfile.mkdtemp(prefix=f"inferops-profiles-{self.name}-"))
        self._profiles += 1
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        return self._profile_dir / f"{self.name}-{stamp}-{self._profiles}.trace.json"

    def health(self) -> tuple[int, dict[str, object]]:
        """/health's status code and body: 503 while draining or while the engine cannot
        serve (dead, or a step stuck for `stall_timeout_s`: a hung engine must not look
        healthy to a load balancer; the check reads engine state, so it answers at once)."""
        problem = self.engine.health_problem()
        body: dict[str, object] = {
            "status": "unhealthy" if problem else "draining" if self.draining else "ok",
            "name": self.name,
            "model": self.model_name,
            "draining": self.draining,
            "running": self.engine.num_running,
            "waiting": self.engine.num_waiting,
        }
        if problem:
            body["problem"] = problem
        return (503 if problem or self.draining else 200), body

    def _sim_clock_ratio(self) -> float:
        """SM clock / its maximum while the simulated GPU is in thermal slowdown, else 1."""
        sim = self.simulated_gpu
        if sim is None:
            return 1.0
        sample = sim.sample()[0]
        if not sample.throttle_reasons & HW_THERMAL_SLOWDOWN:
            return 1.0
        return sample.sm_clock_mhz / sim.spec.sm_clock_max_mhz

    def apply_fault(self, fault: dict[str, Any]) -> None:
        """Make the node (and its simulated GPU) have `fault`; ApiError(409/400) when it
        cannot, with nothing changed."""
        kind = fault["kind"]
        sim = self.simulated_gpu
        if kind in GPU_FAULT_KINDS and sim is None:
            raise ApiError(409, f"{kind}: the GPU backend is {self.gpu.name}; a real GPU cannot "
                           "be faulted", param="kind")
        faults = self.engine.faults
        if kind == "slow-kernel":
            try:
                faults.set_slow_kernel(fault["layer"], fault["matmuls"])
            except ValueError as exc:
                raise ApiError(400, f"layer: {exc}", param="layer") from None
        elif kind == "hang":
            faults.set_hang(True)
        elif kind == "kv-leak":
            faults.set_kv_leak(True)
        elif sim is not None and kind == "gpu-xid":
            sim.inject_fault("xid", code=fault["code"])
        elif sim is not None and kind == "ecc-dbe":
            sim.inject_fault("ecc-dbe")
            faults.set_dead("CUDA error: uncorrectable ECC error encountered (XID 48)")
        elif sim is not None and kind == "thermal":
            sim.inject_fault("thermal")
        self.faults.set(fault)

    def clear_faults(self) -> None:
        """Every fault cleared: the engine resumes, leaked blocks are freed, the GPU is reset
        (a real node would be restarted; the simulated GPU cools with its inertia)."""
        faults = self.engine.faults
        faults.set_hang(False)
        faults.set_slow_kernel(None)
        faults.set_kv_leak(False)
        faults.set_dead(None)
        self.faults.clear()
        if (sim := self.simulated_gpu) is not None:
            sim.clear_faults()
