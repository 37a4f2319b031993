"""Hand notifications to a worker thread so a slow receiver never stalls rule evaluation.

A webhook that retries for seconds, or a remediation that waits to verify a drain, must not
delay the next evaluation round: each receiver gets its own queue and thread. The thread
catches, logs and goes on.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Mapping
from typing import Any

from alerting import Notifier
from remediation import RemediationEngine

from ._control_plane_tracing import ControlPlaneTracing

logger = logging.getLogger("inferops.notify")

_STOP = object()


class RemediationNotifier:
    """Feeds alert notifications to the remediation engine, as a webhook receiver would."""

    def __init__(self, engine: RemediationEngine, *,
                 tracing: ControlPlaneTracing | None = None) -> None:
        self._engine = engine
        self._tracing = tracing

    def notify(self, payload: Mapping[str, Any]) -> None:
        decisions = self._engine.handle_notification(payload)
        if self._tracing is not None:
            self._tracing.decisions(decisions)


class BackgroundNotifier:
    """A `Notifier` that queues payloads for `inner` on a dedicated thread."""

    def __init__(self, inner: Notifier, *, name: str,
                 tracing: ControlPlaneTracing | None = None) -> None:
        self._inner = inner
        self._name = name
        self._tracing = tracing
        self._queue: queue.Queue[object] = queue.Queue()
        self._thread = threading.Thread(target=self._drain, name=f"notify-{name}", daemon=True)
        self._thread.start()

    def notify(self, payload: Mapping[str, Any]) -> None:
        if self._tracing is not None:  # traced on the thread, under the round that raised it
            self._queue.put((payload, self._tracing.dispatch_context()))
            return
        self._queue.put(payload)

    def close(self, timeout_s: float = 5.0) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout_s)

    def wait_idle(self) -> None:
        """Block until every queued payload was handled (tests and the demo's shutdown)."""
        self._queue.join()

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                if isinstance(item, tuple) and self._tracing is not None:
                    payload, context = item
                    with self._tracing.dispatch(self._name, payload, context):
                        self._inner.notify(payload)
                    continue
                assert isinstance(item, Mapping)
                self._inner.notify(item)
            except Exception:
                logger.exception("receiver %s failed to handle a notification", self._name)
            finally:
                self._queue.task_done()
