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

logger = logging.getLogger("inferops.notify")

_STOP = object()


class RemediationNotifier:
    """Feeds alert notifications to the remediation engine, as a webhook receiver would."""

    def __init__(self, engine: RemediationEngine) -> None:
        self._engine = engine

    def notify(self, payload: Mapping[str, Any]) -> None:
        self._engine.handle_notification(payload)


class BackgroundNotifier:
    """A `Notifier` that queues payloads for `inner` on a dedicated thread."""

    def __init__(self, inner: Notifier, *, name: str) -> None:
        self._inner = inner
        self._name = name
        self._queue: queue.Queue[object] = queue.Queue()
        self._thread = threading.Thread(target=self._drain, name=f"notify-{name}", daemon=True)
        self._thread.start()

    def notify(self, payload: Mapping[str, Any]) -> None:
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
                assert isinstance(item, Mapping)
                self._inner.notify(item)
            except Exception:
                logger.exception("receiver %s failed to handle a notification", self._name)
            finally:
                self._queue.task_done()
