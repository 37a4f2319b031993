"""Durable delivery: notifications are outbox rows written with the alert changes, sent by a
worker with backoff until the receiver takes them, each with its dedup key."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alerting_doubles import RecordingNotifier, ScriptedSource, WebhookServer, free_port, sample

from alerting import (
    DEDUP_HEADER,
    SIGNATURE_HEADER,
    AlertEngine,
    AlertStore,
    DeliveryWorker,
    NotifierSender,
    Outbox,
    WebhookNotifier,
    signature,
)
from slo import AlertingRule

EXPR = 'up{job="nodes"} == 0'
RULE = AlertingRule("NodeDown", EXPR, labels={"severity": "page"})
HERE = Path(__file__).parent


class Clock:
    def __init__(self, now_s: float = 1000.0) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture
def receiver() -> Iterator[WebhookServer]:
    server = WebhookServer().start()
    yield server
    server.stop()


def firing_then_resolved(source: ScriptedSource, engine: AlertEngine) -> None:
    source.script(EXPR, {0: [sample(0.0, 0, job="nodes", node="node-1")]})
    engine.evaluate(0)
    engine.evaluate(1)


def test_each_notification_is_one_outbox_row_per_durable_receiver(
    source: ScriptedSource, store: AlertStore, notifier: RecordingNotifier
) -> None:
    engine = AlertEngine(source, store, [RULE], [notifier], outbox_receivers=("ops", "chat"))
    firing_then_resolved(source, engine)
    rows = Outbox(store.engine).entries()
    assert [(row.receiver, row.payload["status"], row.attempts, row.delivered_at_s)
            for row in rows] == [
        ("ops", "firing", 0, None), ("chat", "firing", 0, None),
        ("ops", "resolved", 0, None), ("chat", "resolved", 0, None),
    ]
    assert [row.payload for row in rows[::2]] == notifier.payloads
    assert rows[0].dedup_key == rows[1].dedup_key != rows[2].dedup_key


def test_a_repeat_of_an_unchanged_group_gets_a_new_dedup_key(
    source: ScriptedSource, store: AlertStore
) -> None:
    source.script(EXPR, {t: [sample(0.0, t, job="nodes", node="node-1")] for t in range(3)})
    engine = AlertEngine(source, store, [RULE], repeat_interval_s=2.0, outbox_receivers=("ops",))
    for t in range(3):
        engine.evaluate(t)
    rows = Outbox(store.engine).entries()
    assert [row.payload["status"] for row in rows] == ["firing", "firing"]
    assert len({row.dedup_key for row in rows}) == 2


def test_an_engine_without_durable_receivers_writes_no_outbox_rows(
    source: ScriptedSource, store: AlertStore, notifier: RecordingNotifier
) -> None:
    firing_then_resolved(source, AlertEngine(source, store, [RULE], [notifier]))
    assert Outbox(store.engine).entries() == []
    assert [body["status"] for body in notifier.payloads] == ["firing", "resolved"]


def test_the_worker_sends_each_row_signed_with_its_dedup_key_and_marks_it_delivered(
    source: ScriptedSource, store: AlertStore, receiver: WebhookServer
) -> None:
    engine = AlertEngine(source, store, [RULE], outbox_receivers=("ops",))
    firing_then_resolved(source, engine)
    clock = Clock()
    with WebhookNotifier(receiver.url, secret="s3cret", attempts=1) as webhook:
        worker = DeliveryWorker(store.engine, {"ops": webhook}, clock=clock)
        assert worker.deliver_due() == 2
    rows = worker.outbox.entries()
    assert [(r.attempts, r.delivered_at_s, r.last_error) for r in rows] == [
        (1, 1000.0, None), (1, 1000.0, None)
    ]
    assert [request.headers[DEDUP_HEADER] for request in receiver.requests] == [
        row.dedup_key for row in rows
    ]
    assert [request.json()["status"] for request in receiver.requests] == ["firing", "resolved"]
    for request in receiver.requests:
        assert request.headers[SIGNATURE_HEADER] == signature("s3cret", request.body)
    assert worker.deliver_due() == 0
    assert len(receiver.requests) == 2


@pytest.mark.parametrize("status", [503, 400], ids=["a 5xx", "a 4xx"])
def test_a_failed_row_is_kept_and_retried_after_its_backoff_with_later_rows_waiting(
    status: int, source: ScriptedSource, store: AlertStore
) -> None:
    server = WebhookServer(statuses=[status]).start()
    try:
        engine = AlertEngine(source, store, [RULE], outbox_receivers=("ops",))
        firing_then_resolved(source, engine)
        clock = Clock()
        with WebhookNotifier(server.url, attempts=1) as webhook:
            worker = DeliveryWorker(store.engine, {"ops": webhook}, clock=clock, jitter=lambda: 1.0)
            assert worker.deliver_due() == 0
            first, second = worker.outbox.entries()
            assert (first.attempts, first.next_attempt_at_s, second.attempts) == (1, 1001.0, 0)
            assert first.last_error is not None and f"{status} (" in first.last_error
            clock.now_s = 1000.5
            assert worker.deliver_due() == 0  # not due yet, and the later row waits behind it
            clock.now_s = 1001.0
            assert worker.deliver_due() == 2
        assert [r.json()["status"] for r in server.requests] == ["firing", "firing", "resolved"]
        assert worker.outbox.entries(undelivered_only=True) == []
    finally:
        server.stop()


BACKOFFS = [
    ("the first retry waits the initial backoff", 1, 1.0, 1.0),
    ("each failure doubles the wait", 4, 1.0, 8.0),
    ("the wait is capped", 7, 1.0, 60.0),
    ("long outages stay at the cap", 40, 1.0, 60.0),
    ("jitter takes off up to half", 4, 0.0, 4.0),
]


@pytest.mark.parametrize(
    ("attempts", "jitter", "expected_s"), [b[1:] for b in BACKOFFS], ids=[b[0] for b in BACKOFFS]
)
def test_backoff_is_exponential_with_jitter_and_capped_at_a_minute(
    attempts: int, jitter: float, expected_s: float, database: sa.Engine
) -> None:
    worker = DeliveryWorker(database, {}, jitter=lambda: jitter)
    assert worker.backoff_s(attempts) == expected_s


def test_rows_of_a_receiver_no_longer_configured_wait_and_are_logged_once(
    source: ScriptedSource, store: AlertStore, caplog: pytest.LogCaptureFixture
) -> None:
    engine = AlertEngine(source, store, [RULE], outbox_receivers=("gone",))
    firing_then_resolved(source, engine)
    worker = DeliveryWorker(store.engine, {}, clock=Clock())
    with caplog.at_level(logging.WARNING, logger="alerting.delivery"):
        worker.deliver_due()
        worker.deliver_due()
    assert caplog.messages == [
        "outbox rows for receiver 'gone' wait: no such receiver is configured"
    ]
    assert len(worker.outbox.entries(undelivered_only=True)) == 2


def test_an_in_process_notifier_can_be_a_durable_receiver(
    source: ScriptedSource, store: AlertStore, notifier: RecordingNotifier
) -> None:
    engine = AlertEngine(source, store, [RULE], outbox_receivers=("remediation",))
    firing_then_resolved(source, engine)
    worker = DeliveryWorker(store.engine, {"remediation": NotifierSender(notifier)})
    assert worker.deliver_due() == 2
    assert [body["status"] for body in notifier.payloads] == ["firing", "resolved"]


def _wait_for(what: str, condition: object, deadline_s: float = 60.0) -> None:
    """Poll `condition()` until true; fail naming `what` after a generous deadline."""
    assert callable(condition)
    give_up = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > give_up:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)


def _start(database_file: Path, state_file: Path, url: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, str(HERE / "outbox_process.py"), str(database_file), str(state_file),
         url],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONPATH": str(HERE.parents[1])},
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    return process


def _rows(database_file: Path) -> list[tuple[str, str, int]]:
    engine = sa.create_engine(f"sqlite:///{database_file}")
    try:
        return [
            (row.payload["alerts"][0]["labels"]["node"], row.payload["status"], row.attempts)
            for row in Outbox(engine).entries()
        ]
    except sa.exc.OperationalError:  # the process has not created the tables yet
        return []
    finally:
        engine.dispose()


@pytest.mark.integration
def test_no_notification_is_lost_to_a_kill_9_while_the_receiver_is_down(
    tmp_path: Path,
) -> None:
    database_file, state_file = tmp_path / "inferops.db", tmp_path / "down.json"
    state_file.write_text(json.dumps(["node-1", "node-2"]), encoding="utf-8")
    port = free_port()
    receiver = WebhookServer(port=port)
    url = f"http://127.0.0.1:{port}/hooks/inferops"

    first = _start(database_file, state_file, url)
    try:
        _wait_for("both firing notifications stored and a delivery failed", lambda: (
            rows := _rows(database_file)
        ) and sorted((node, status) for node, status, _ in rows) == [
            ("node-1", "firing"), ("node-2", "firing")
        ] and rows[0][2] >= 1)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)

    state_file.write_text("[]", encoding="utf-8")
    second = _start(database_file, state_file, url)
    try:
        _wait_for("the restarted process to resolve both alerts", lambda: sorted(
            (node, status) for node, status, _ in _rows(database_file)
        ) == [("node-1", "firing"), ("node-1", "resolved"),
              ("node-2", "firing"), ("node-2", "resolved")])
        receiver.start()
        engine = sa.create_engine(f"sqlite:///{database_file}")
        try:
            outbox = Outbox(engine)
            _wait_for("every row to be delivered",
                      lambda: outbox.entries(undelivered_only=True) == [])
            keys = {row.dedup_key for row in outbox.entries()}
        finally:
            engine.dispose()
    finally:
        second.send_signal(signal.SIGKILL)
        second.wait(10)
        receiver.stop()

    received = [
        (body["alerts"][0]["labels"]["node"], body["status"])
        for body in (request.json() for request in receiver.requests)
    ]
    assert sorted(set(received)) == [
        ("node-1", "firing"), ("node-1", "resolved"), ("node-2", "firing"), ("node-2", "resolved")
    ]
    per_key = Counter(request.headers[DEDUP_HEADER] for request in receiver.requests)
    assert set(per_key) == keys
    assert max(per_key.values()) <= 2
