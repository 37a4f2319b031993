"""The control plane's alerting half as a real process, for the kill -9 test (not collected).

`python outbox_process.py DB_FILE STATE_FILE RECEIVER_URL` evaluates one rule every 0.1 s
(the nodes listed in the JSON file STATE_FILE are down) with the engine writing to the
outbox of the SQLite file DB_FILE, and a `DeliveryWorker` sending to RECEIVER_URL, until it
is killed.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from alerting import AlertEngine, AlertStore, DeliveryWorker, WebhookNotifier
from collectors import InstantSample, RangeSeries, open_database
from slo import AlertingRule

RULE = AlertingRule("NodeDown", 'up{job="nodes"} == 0', labels={"severity": "page"})


class StateFileSource:
    """A `MetricSource` answering `up == 0` for the nodes the state file lists."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def query(self, expr: str, at_s: float) -> list[InstantSample]:
        down = json.loads(self._path.read_text(encoding="utf-8"))
        return [
            InstantSample(labels={"job": "nodes", "node": node}, value=0.0, timestamp_s=at_s)
            for node in down
        ]

    def query_range(
        self, expr: str, start_s: float, end_s: float, step_s: float
    ) -> list[RangeSeries]:
        raise NotImplementedError("the alert engine only runs instant queries")


def main(database_file: str, state_file: str, receiver_url: str) -> None:
    database = open_database(f"sqlite:///{database_file}")
    store = AlertStore(database)
    engine = AlertEngine(
        StateFileSource(Path(state_file)), store, [RULE],
        group_by=("alertname", "node"), outbox_receivers=("ops",),
    )
    worker = DeliveryWorker(
        database, {"ops": WebhookNotifier(receiver_url, timeout_s=2.0, attempts=1)},
        poll_interval_s=0.1, initial_backoff_s=0.2, max_backoff_s=1.0,
    )
    worker.start()
    print("ready", flush=True)
    while True:
        engine.evaluate(time.time())
        worker.wake()
        time.sleep(0.1)


if __name__ == "__main__":
    main(*sys.argv[1:4])
