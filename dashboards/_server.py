"""Serving the dashboard: a threaded werkzeug server, blocking or in the background.

Not `Dash.run`: that reads `HOST`, `PORT` and `DASH_*` environment variables and starts a
debug reloader; this takes its host and port as arguments and nothing else.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType
from typing import Any

import dash
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from ._exceptions import DashboardArgumentError

_LOG = logging.getLogger(__name__)

STOP_TIMEOUT_S = 10.0


class _QuietRequestHandler(WSGIRequestHandler):
    """Request lines at DEBUG: the page polls every few seconds and would flood INFO."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        _LOG.debug('"%s" %s %s', self.requestline, code, size)


class DashboardServer:
    """The app on `host:port` (port 0 picks a free one); `start()` serves in a thread.

    The socket is bound on construction, so `url` is right before `start()`.
    """

    def __init__(self, app: dash.Dash, *, host: str = "127.0.0.1", port: int = 8050) -> None:
        if not 0 <= port <= 65535:
            raise DashboardArgumentError(f"port must be 0..65535, got {port!r}")
        self._server: BaseWSGIServer = make_server(
            host, port, app.server, threaded=True, request_handler=_QuietRequestHandler
        )
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return str(self._server.host)

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def serve_forever(self) -> None:
        """Serve in this thread until `stop()` (from another thread) or Ctrl-C."""
        try:
            self._server.serve_forever()
        except KeyboardInterrupt:
            _LOG.info("dashboard on %s stopped by interrupt", self.url)
        finally:
            self._server.server_close()

    def start(self) -> None:
        """Serve in a daemon thread; `stop()` ends it."""
        if self._thread is not None:
            raise RuntimeError("the dashboard server is already started")
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"dashboard-{self.port}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket; waits for the serving thread."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(STOP_TIMEOUT_S)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> DashboardServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
        *_: Any,
    ) -> None:
        self.stop()


def serve_dashboard(app: dash.Dash, *, host: str = "127.0.0.1", port: int = 8050) -> None:
    """Serve `app` on `host:port` until interrupted (blocking)."""
    server = DashboardServer(app, host=host, port=port)
    _LOG.info("dashboard on %s", server.url)
    server.serve_forever()
