"""A standalone GPU exporter, as dcgm-exporter runs on each GPU node (`inferops exporter gpu`).

It serves `GpuCollector.exposition()`, the directly written text (the same bytes
prometheus_client's `generate_latest` would write for the collector, several times faster),
from a small threaded HTTP server of the standard library. The collector is also registered
on `handle.registry`, for a caller that wants prometheus_client's generic path.
"""

from __future__ import annotations

import gzip
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry

from ._exposition_gpu import CONTENT_TYPE
from ._gpu_attribution import ProcessAttribution
from ._gpu_collector import GpuCollector
from ._gpu_sample import GpuBackend

logger = logging.getLogger("exporters.server")

REQUEST_TIMEOUT_S = 10.0
"""A client that sends nothing for this long is dropped (a stuck scraper never pins a thread)."""
METRICS_PATHS = ("/metrics", "/")


class _MetricsServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], collector: GpuCollector) -> None:
        self.collector = collector
        if ":" in address[0]:  # an IPv6 literal such as ::1
            self.address_family = socket.AF_INET6
        super().__init__(address, _MetricsHandler)


class _MetricsHandler(BaseHTTPRequestHandler):
    server: _MetricsServer
    timeout = REQUEST_TIMEOUT_S
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._answer(with_body=True)

    def do_HEAD(self) -> None:
        self._answer(with_body=False)

    def _answer(self, *, with_body: bool) -> None:
        path = self.path.split("?", 1)[0]
        if path not in METRICS_PATHS:
            body = f"not found: {path}; the metrics are at /metrics\n".encode()
            self._send(404, "text/plain; charset=utf-8", body, with_body=with_body)
            return
        try:
            body = self.server.collector.exposition()
        except Exception:  # never expected (the collector catches backend errors); log, go on
            logger.exception("rendering /metrics failed")
            self._send(500, "text/plain; charset=utf-8", b"rendering the metrics failed\n",
                       with_body=with_body)
            return
        encoding = None
        if "gzip" in self.headers.get("Accept-Encoding", ""):
            body, encoding = gzip.compress(body), "gzip"
        self._send(200, CONTENT_TYPE, body, with_body=with_body, encoding=encoding)

    def _send(self, status: int, content_type: str, body: bytes, *, with_body: bool,
              encoding: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if encoding:
            self.send_header("Content-Encoding", encoding)
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)


class GpuExporterHandle:
    """A running exporter: `.port` (the bound port, useful with port 0), `.url`, `.stop()`."""

    def __init__(self, server: _MetricsServer, thread: threading.Thread,
                 registry: CollectorRegistry, collector: GpuCollector, backend: GpuBackend,
                 host: str) -> None:
        self._server = server
        self._thread = thread
        self.collector = collector
        self.backend = backend
        self.registry = registry
        self.host = host
        self.port: int = server.server_address[1]
        self._stopped = False
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def stop(self) -> None:
        """Stop serving, stop the poller, close the backend and the attribution. Idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5.0)
        self.collector.close()
        self.backend.close()
        if self.collector.attribution is not None:
            self.collector.attribution.close()


def serve_gpu_exporter(
    backend: GpuBackend,
    *,
    host: str,
    port: int,
    hostname: str,
    poll_interval_s: float | None,
    attribution: ProcessAttribution | None = None,
) -> GpuExporterHandle:
    """Serve `backend`'s GPUs at `http://host:port/metrics` (port 0: any free port) in a daemon
    thread; `attribution` names each GPU process's node and model. The handle's `stop()` also
    closes the backend and the attribution."""
    registry = CollectorRegistry()
    collector = GpuCollector(backend, hostname=hostname, poll_interval_s=poll_interval_s,
                             attribution=attribution)
    try:
        registry.register(collector)
        server = _MetricsServer((host, port), collector)
    except BaseException:
        collector.close()
        raise
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                              name="gpu-exporter-http", daemon=True)
    thread.start()
    return GpuExporterHandle(server, thread, registry, collector, backend, host)
