"""Send the outbox's due rows, with exponential backoff and jitter, until each is delivered.

A receiver that is down must not lose notifications, and must get them soon after it is
back: the wait after the n-th failed attempt is `initial_backoff_s * 2**(n-1)` capped at
`max_backoff_s` (60 s by default, so delivery resumes within a minute of the receiver's
return), times a random factor in [0.5, 1) so many rows do not retry in lockstep. The first
failure of a receiver in a pass ends that receiver's pass, and a receiver's rows go in
order (a resolved notification never overtakes its firing one): its later rows wait behind
the oldest instead of each paying a timeout. Rows are never dropped, even for a receiver
that answers 4xx or has no sender configured any more: they stay undelivered, with the last
error, for an operator to see.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

import sqlalchemy as sa

from ._alert import Notifier
from ._outbox import Outbox, OutboxEntry

logger = logging.getLogger("alerting.delivery")


@runtime_checkable
class OutboxSender(Protocol):
    """Delivers one notification once (no retries: the worker retries), raising on failure;
    `dedup_key` goes with it so the receiver can drop a duplicate."""

    def deliver(self, payload: Mapping[str, Any], *, dedup_key: str) -> None: ...


class NotifierSender:
    """An `OutboxSender` over any in-process `Notifier` (the dedup key is not passed on)."""

    def __init__(self, notifier: Notifier) -> None:
        self._notifier = notifier

    def deliver(self, payload: Mapping[str, Any], *, dedup_key: str) -> None:
        self._notifier.notify(payload)


class DeliveryWorker:
    """Delivers the `outbox`'s rows to `senders` (by receiver name) on a thread of its own
    (`start()`/`stop()`), or one pass at a time with `deliver_due()`."""

    def __init__(
        self,
        outbox: Outbox | sa.Engine,
        senders: Mapping[str, OutboxSender],
        *,
        poll_interval_s: float = 0.5,
        initial_backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        batch_size: int = 100,
        clock: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        for name, value in (
            ("poll_interval_s", poll_interval_s), ("initial_backoff_s", initial_backoff_s),
            ("max_backoff_s", max_backoff_s),
        ):
            if value <= 0:
                raise ValueError(f"{name} must be > 0, got {value!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
        self._outbox = outbox if isinstance(outbox, Outbox) else Outbox(outbox)
        self._senders = dict(senders)
        self._poll_interval_s = poll_interval_s
        self._initial_backoff_s = initial_backoff_s
        self._max_backoff_s = max_backoff_s
        self._batch_size = batch_size
        self._clock = clock
        self._jitter = jitter
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._unknown_logged: set[str] = set()

    @property
    def outbox(self) -> Outbox:
        return self._outbox

    def backoff_s(self, attempts: int) -> float:
        """The wait after the `attempts`-th failed attempt (jitter included)."""
        base = min(self._max_backoff_s, self._initial_backoff_s * 2.0 ** max(0, attempts - 1))
        return base * (0.5 + 0.5 * self._jitter())

    def deliver_due(self) -> int:
        """One pass over the due rows; returns how many were delivered."""
        now = self._clock()
        stalled: set[str] = set()
        delivered = 0
        for entry in self._outbox.undelivered(self._batch_size):
            if self._stopping.is_set():
                break
            if entry.receiver in stalled:
                continue
            if entry.next_attempt_at_s > now:
                stalled.add(entry.receiver)
                continue
            sender = self._senders.get(entry.receiver)
            if sender is None:
                stalled.add(entry.receiver)
                if entry.receiver not in self._unknown_logged:
                    self._unknown_logged.add(entry.receiver)
                    logger.warning(
                        "outbox rows for receiver %r wait: no such receiver is configured",
                        entry.receiver,
                    )
                continue
            if self._send(entry, sender):
                delivered += 1
            else:
                stalled.add(entry.receiver)
        return delivered

    def _send(self, entry: OutboxEntry, sender: OutboxSender) -> bool:
        assert entry.id is not None
        attempts = entry.attempts + 1
        try:
            sender.deliver(entry.payload, dedup_key=entry.dedup_key)
        except Exception as error:
            wait_s = self.backoff_s(attempts)
            self._outbox.mark_failed(
                entry.id, attempts=attempts, next_attempt_at_s=self._clock() + wait_s,
                error=f"{type(error).__name__}: {error}",
            )
            logger.log(
                logging.WARNING if attempts == 1 else logging.DEBUG,
                "notification %s to %s failed (attempt %d): %s; next attempt in %.1f s",
                entry.dedup_key, entry.receiver, attempts, error, wait_s,
            )
            return False
        self._outbox.mark_delivered(entry.id, self._clock(), attempts=attempts)
        if attempts > 1:
            logger.info(
                "notification %s delivered to %s after %d attempts",
                entry.dedup_key, entry.receiver, attempts,
            )
        return True

    def wake(self) -> None:
        """Start the next pass now rather than at the next poll (new rows were written)."""
        self._wake.set()

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the delivery worker is already running")
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="alert-delivery", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop after the current delivery; undelivered rows stay for the next start."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.deliver_due()
            except Exception:
                logger.exception("outbox delivery pass failed; trying again")
            self._wake.wait(self._poll_interval_s)
            self._wake.clear()
