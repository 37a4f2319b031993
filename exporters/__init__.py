"""exporters: measure GPUs and requests, export them under dcgm-exporter's and vLLM's names.

Measuring is kept apart from exporting: a `GpuBackend` (real NVML or a simulation driven by
the node's engine) produces `GpuSample`s; `GpuCollector` turns them into dcgm-exporter-named
families at scrape time (or, several times faster, `GpuExposition` / `GpuCollector.exposition()`
write the same text directly); `RequestMetrics` records requests under vLLM's metric names. Always
on an explicit `CollectorRegistry`, never the global one.
"""

from ._exceptions import ExporterConfigError, ExporterError, GpuBackendUnavailable
from ._exposition_gpu import CONTENT_TYPE, GpuExposition, render_gpu_exposition
from ._exposition_gpu_fields import HEALTH_REASONS, gpu_health
from ._gpu_attribution import (
    FileAttribution,
    ProcessAttribution,
    ProcessOwner,
    RegistryAttribution,
    StaticAttribution,
    parse_attribution,
)
from ._gpu_collector import GpuCollector
from ._gpu_sample import GpuBackend, GpuProcess, GpuSample
from ._gpu_specs import GPU_SPECS, GpuSpec
from ._nvml_gpu import NvmlGpuBackend
from ._request_metrics import RequestMetrics, RequestOutcome
from ._select import select_gpu_backend
from ._server import GpuExporterHandle, serve_gpu_exporter
from ._sim_gpu import SimulatedGpuBackend

__all__ = [
    "CONTENT_TYPE",
    "GPU_SPECS",
    "HEALTH_REASONS",
    "ExporterConfigError",
    "ExporterError",
    "FileAttribution",
    "GpuBackend",
    "GpuBackendUnavailable",
    "GpuCollector",
    "GpuExporterHandle",
    "GpuExposition",
    "GpuProcess",
    "GpuSample",
    "GpuSpec",
    "NvmlGpuBackend",
    "ProcessAttribution",
    "ProcessOwner",
    "RegistryAttribution",
    "RequestMetrics",
    "RequestOutcome",
    "SimulatedGpuBackend",
    "StaticAttribution",
    "gpu_health",
    "parse_attribution",
    "render_gpu_exposition",
    "select_gpu_backend",
    "serve_gpu_exporter",
]
