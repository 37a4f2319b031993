"""Choosing the GPU backend: real NVML, simulated, or whichever this machine allows."""

from __future__ import annotations

import logging

from ._exceptions import ExporterConfigError, GpuBackendUnavailable
from ._gpu_sample import GpuBackend
from ._gpu_specs import gpu_spec
from ._nvml_gpu import NvmlGpuBackend
from ._sim_gpu import SimulatedGpuBackend

logger = logging.getLogger("exporters")

BACKEND_KINDS = ("auto", "nvml", "sim")


def select_gpu_backend(
    kind: str, *, gpus: int = 1, gpu_type: str = "H100-SXM5-80GB", hostname: str
) -> GpuBackend:
    """`nvml`: real GPUs or GpuBackendUnavailable; `sim`: `gpus` simulated `gpu_type` GPUs;
    `auto`: NVML when it initialises, else simulated. Logs (INFO, logger `exporters`) which
    backend it chose and why. `gpus` and `gpu_type` apply to the simulation only."""
    if kind not in BACKEND_KINDS:
        raise ExporterConfigError(
            f"unknown GPU backend {kind!r}; choices: {', '.join(BACKEND_KINDS)}"
        )
    if kind != "nvml":
        gpu_spec(gpu_type)  # a bad --gpu-type fails alike on GPU and CPU machines
    if kind == "sim":
        backend: GpuBackend = SimulatedGpuBackend(gpus=gpus, gpu_type=gpu_type, hostname=hostname)
        logger.info("GPU backend sim (as asked): %s", _simulated(gpus, gpu_type))
        return backend
    try:
        nvml = NvmlGpuBackend(hostname)
    except GpuBackendUnavailable as error:
        if kind == "nvml":
            raise
        backend = SimulatedGpuBackend(gpus=gpus, gpu_type=gpu_type, hostname=hostname)
        logger.info("NVML unavailable (%s); using %s", error.reason, _simulated(gpus, gpu_type))
        return backend
    names = nvml.model_names
    logger.info("GPU backend nvml%s: NVML initialised, %d GPU%s (%s)",
                " (auto)" if kind == "auto" else "", len(names), "" if len(names) == 1 else "s",
                ", ".join(names))
    return nvml


def _simulated(gpus: int, gpu_type: str) -> str:
    return f"{gpus} simulated {gpu_type} GPU{'' if gpus == 1 else 's'}"
