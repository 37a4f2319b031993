"""Everything one node serves with: model, engine, metrics registry, GPU backend, faults, drain."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import torch
from prometheus_client import CollectorRegistry

from exporters import (
    GpuBackend,
    GpuCollector,
    RequestMetrics,
    RequestOutcome,
    SimulatedGpuBackend,
    select_gpu_backend,
)

from ._engine import Engine, EngineConfig
from ._model import ModelConfig, load_model
from ._node_faults import Faults
from ._tokenizer import ByteTokenizer

logger = logging.getLogger("reference_server.node")

DEFAULT_MODEL_NAME = "inferops-tiny"


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
        self.gpu_collector = GpuCollector(self.gpu, hostname=config.name)
        self.registry.register(self.gpu_collector)
        self.engine = Engine(
            self.model,
            config.engine,
            metrics=self.metrics,
            gpu=self.simulated_gpu,
        )
        self.faults = Faults()
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

    def health(self) -> dict[str, object]:
        return {
            "status": "draining" if self.draining else "ok",
            "name": self.name,
            "model": self.model_name,
            "draining": self.draining,
            "running": self.engine.num_running,
            "waiting": self.engine.num_waiting,
        }
