"""A standalone GPU exporter, as dcgm-exporter runs on each GPU node (`inferops exporter gpu`)."""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server

from ._gpu_collector import GpuCollector
from ._gpu_sample import GpuBackend


class GpuExporterHandle:
    """A running exporter: `.port` (the bound port, useful with port 0), `.url`, `.stop()`."""

    def __init__(self, server: WSGIServer, thread: threading.Thread, registry: CollectorRegistry,
                 collector: GpuCollector, backend: GpuBackend, host: str) -> None:
        self._server = server
        self._thread = thread
        self.collector = collector
        self.backend = backend
        self.registry = registry
        self.host = host
        self.port: int = server.server_port
        self._stopped = False
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def stop(self) -> None:
        """Stop serving, stop the poller and close the backend. Idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5.0)
        self.collector.close()
        self.backend.close()


def serve_gpu_exporter(
    backend: GpuBackend, *, host: str, port: int, hostname: str, poll_interval_s: float | None
) -> GpuExporterHandle:
    """Serve `backend`'s GPUs at `http://host:port/metrics` (port 0: any free port) from a
    registry of its own, in a daemon thread. The handle's `stop()` also closes the backend."""
    registry = CollectorRegistry()
    collector = GpuCollector(backend, hostname=hostname, poll_interval_s=poll_interval_s)
    try:
        registry.register(collector)
        # prometheus_client >= 0.20: start_http_server(port, addr, registry) -> (server, thread)
        server, thread = start_http_server(port, addr=host, registry=registry)
    except BaseException:
        collector.close()
        raise
    return GpuExporterHandle(server, thread, registry, collector, backend, host)
