"""exporters: measure GPUs and requests, export them under dcgm-exporter's and vLLM's names.

Measuring is kept apart from exporting: a `GpuBackend` (real NVML or a simulation driven by
the node's engine) produces `GpuSample`s; `GpuCollector` turns them into dcgm-exporter-named
families at scrape time; `RequestMetrics` records requests under vLLM's metric names. Always
on an explicit `CollectorRegistry`, never the global one.
"""

from ._exceptions import ExporterConfigError, ExporterError, GpuBackendUnavailable
from ._gpu_collector import GpuCollector
from ._gpu_sample import GpuBackend, GpuSample
from ._gpu_specs import GPU_SPECS, GpuSpec
from ._nvml_gpu import NvmlGpuBackend
from ._request_metrics import RequestMetrics, RequestOutcome
from ._select import select_gpu_backend
from ._server import GpuExporterHandle, serve_gpu_exporter
from ._sim_gpu import SimulatedGpuBackend

__all__ = [
    "GPU_SPECS",
    "ExporterConfigError",
    "ExporterError",
    "GpuBackend",
    "GpuBackendUnavailable",
    "GpuCollector",
    "GpuExporterHandle",
    "GpuSample",
    "GpuSpec",
    "NvmlGpuBackend",
    "RequestMetrics",
    "RequestOutcome",
    "SimulatedGpuBackend",
    "select_gpu_backend",
    "serve_gpu_exporter",
]
