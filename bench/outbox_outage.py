"""Durable delivery through a receiver outage with a kill -9 of the control plane in the middle.

A real `inferops run` scrapes a probe whose `flag{name=...}` series the scenario switches on
and off (rule `Flag: flag == 1`), and notifies one webhook receiver through the outbox. The
receiver is a real HTTP server counting what it gets by dedup key:

1. receiver up; alert `a` fires and is delivered;
2. receiver down; `a` resolves and `b` fires (both written to the outbox, undeliverable);
3. half-way through the outage: SIGKILL the control plane, start it again; `b` resolves and
   `c` fires;
4. the receiver comes back after the outage; every notification must arrive.

Claims checked: no firing or resolved notification lost, at most one duplicate per alert
and status, and the first delivery within `max_backoff + one poll` of the receiver's return
(60 s for the default cap). `python -m bench outbox_outage` runs the full 15-minute outage
with the default 60 s backoff cap; `--quick` runs a 20 s outage with a 2 s cap;
`python -m bench.outbox_outage --minutes 15` picks the length.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ._common import Options, Result

ALERTS = ("a", "b", "c")
EXPECTED = {("a", "firing"), ("a", "resolved"), ("b", "firing"), ("b", "resolved"),
            ("c", "firing")}
DEDUP_HEADER = "X-InferOps-Dedup-Key"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Probe:
    """`/metrics` with `flag{name="x"}` 1 for every name switched on, 0 for the others (an
    absent series would stay visible for the 5-minute lookback after a restart, as in
    Prometheus)."""

    def __init__(self) -> None:
        self.on: set[str] = set()
        probe = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = "".join(
                    f'flag{{name="{n}"}} {int(n in probe.on)}\n' for n in ALERTS
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Delivery:
    at_s: float
    dedup_key: str
    alerts: tuple[tuple[str, str], ...]


@dataclass
class Receiver:
    """A webhook receiver on a fixed port that can go down and come back."""

    port: int
    deliveries: list[Delivery] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def up(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                alerts = tuple(sorted(
                    (a["labels"].get("name", ""), a["status"]) for a in body["alerts"]
                ))
                with receiver._lock:
                    receiver.deliveries.append(
                        Delivery(time.time(), self.headers.get(DEDUP_HEADER, ""), alerts)
                    )
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def received(self) -> set[tuple[str, str]]:
        with self._lock:
            return {alert for d in self.deliveries for alert in d.alerts}

    def snapshot(self) -> list[Delivery]:
        with self._lock:
            return list(self.deliveries)


@dataclass(frozen=True)
class OutageReport:
    outage_s: float
    max_backoff_s: float
    received: list[tuple[str, str]]
    lost: list[tuple[str, str]]
    deliveries: int
    max_deliveries_per_key: int
    max_deliveries_per_alert_status: int
    first_delivery_after_return_s: float | None
    all_delivered_after_return_s: float | None


def _wait(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout_s:.0f} s for {what}")
        time.sleep(0.1)


@contextlib.contextmanager
def _control_plane(config: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("ab") as output:
        process = subprocess.Popen([sys.executable, "-m", "inferops", "run", "-c", str(config)],
                                   stdout=output, stderr=subprocess.STDOUT, env=env)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(15)


def _outbox_rows(database: Path) -> set[tuple[str, str]]:
    """(name, status) of every notification the control plane has written to its outbox."""
    import sqlite3

    if not database.exists():
        return set()
    try:
        with contextlib.closing(sqlite3.connect(database, timeout=5)) as connection:
            rows = connection.execute("SELECT payload FROM alert_outbox").fetchall()
    except sqlite3.OperationalError:  # the table is not there yet
        return set()
    return {(a["labels"].get("name", ""), a["status"])
            for (payload,) in rows for a in json.loads(payload)["alerts"]}


def run_outage(workdir: Path, *, outage_s: float, max_backoff_s: float) -> OutageReport:
    """The scenario above in `workdir`; raises TimeoutError if a step never happens."""
    probe = Probe()
    receiver = Receiver(free_port())
    database = workdir / "outage.db"
    (workdir / "rules.yaml").write_text(
        "groups:\n  - name: outage\n    rules:\n      - alert: Flag\n        expr: flag == 1\n",
        encoding="utf-8",
    )
    config = workdir / "inferops.yaml"
    config.write_text(json.dumps({
        "store": {"url": f"sqlite:///{database}"},
        "global": {"scrape_interval": "500ms", "scrape_timeout": "400ms",
                   "evaluation_interval": "500ms"},
        "scrape_configs": [{"job_name": "probe",
                            "static_configs": [{"targets": [f"127.0.0.1:{probe.port}"]}]}],
        "alerting": {
            "rule_files": ["rules.yaml"], "group_by": ["alertname", "name"], "watchdog": False,
            "delivery_initial_backoff": "500ms", "delivery_max_backoff": max_backoff_s,
            "receivers": [{"name": "sink", "url": f"http://127.0.0.1:{receiver.port}/hook",
                           "timeout": 2}],
        },
        "remediation": {"enabled": False},
        "api": {"enabled": False},
    }), encoding="utf-8")
    log = workdir / "control-plane.log"
    start_timeout_s = 90.0
    try:
        receiver.up()
        probe.on = {"a"}
        with _control_plane(config, log) as first:
            _wait(lambda: ("a", "firing") in receiver.received(), start_timeout_s,
                  "alert a to be delivered")
            receiver.down()
            outage_started = time.monotonic()
            outage_started_wall = time.time()
            probe.on = {"b"}
            _wait(lambda: {("a", "resolved"), ("b", "firing")} <= _outbox_rows(database), 30,
                  "a resolved and b firing in the outbox")
            time.sleep(max(0.0, outage_s / 2 - (time.monotonic() - outage_started)))
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        with _control_plane(config, log):
            probe.on = {"c"}
            _wait(lambda: {("b", "resolved"), ("c", "firing")} <= _outbox_rows(database),
                  start_timeout_s, "b resolved and c firing in the outbox")
            time.sleep(max(0.0, outage_s - (time.monotonic() - outage_started)))
            before = len(receiver.snapshot())
            returned_at = time.time()
            receiver.up()
            _wait(lambda: receiver.received() >= EXPECTED, max_backoff_s * 2 + 30,
                  "every notification after the receiver's return")
            time.sleep(1.0)  # a duplicate would come now, if at all
            deliveries = receiver.snapshot()
    finally:
        receiver.down()
        probe.close()
    after = deliveries[before:]
    per_key: dict[str, int] = {}
    per_alert: dict[tuple[str, str], int] = {}
    for delivery in deliveries:
        per_key[delivery.dedup_key] = per_key.get(delivery.dedup_key, 0) + 1
        for alert in delivery.alerts:
            per_alert[alert] = per_alert.get(alert, 0) + 1
    received = {alert for d in deliveries for alert in d.alerts}
    last_needed = max(
        (d.at_s for d in after if any(a in EXPECTED for a in d.alerts)), default=None
    )
    return OutageReport(
        outage_s=round(returned_at - outage_started_wall, 1),
        max_backoff_s=max_backoff_s,
        received=sorted(received),
        lost=sorted(EXPECTED - received),
        deliveries=len(deliveries),
        max_deliveries_per_key=max(per_key.values()),
        max_deliveries_per_alert_status=max(per_alert.values()),
        first_delivery_after_return_s=round(after[0].at_s - returned_at, 2) if after else None,
        all_delivered_after_return_s=(
            None if last_needed is None else round(last_needed - returned_at, 2)
        ),
    )


def run(options: Options) -> Result:
    outage_s, cap_s = (20.0, 2.0) if options.quick else (15 * 60.0, 60.0)
    return _result(outage_s, cap_s)


def _result(outage_s: float, cap_s: float) -> Result:
    with tempfile.TemporaryDirectory(prefix="inferops-outage-") as workdir:
        report = run_outage(Path(workdir), outage_s=outage_s, max_backoff_s=cap_s)
    first = report.first_delivery_after_return_s
    return Result(
        params={"outage_s": outage_s, "max_backoff_s": cap_s, "kill_9": "half-way"},
        results=report.__dict__,
        table=[
            ("outage (s), kill -9 half-way", f"{report.outage_s:.0f}"),
            ("notifications lost", str(len(report.lost))),
            ("max deliveries per dedup key", str(report.max_deliveries_per_key)),
            ("max deliveries per alert+status", str(report.max_deliveries_per_alert_status)),
            ("first delivery after return (s)", "-" if first is None else f"{first:.1f}"),
            ("all delivered after return (s)", str(report.all_delivered_after_return_s)),
        ],
    )


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.outbox_outage --minutes 15 [--max-backoff 60]`."""
    from ._common import print_table, write_result

    parser = argparse.ArgumentParser(prog="python -m bench.outbox_outage")
    parser.add_argument("--minutes", type=float, default=15.0, help="outage length")
    parser.add_argument("--max-backoff", type=float, default=60.0, help="delivery backoff cap (s)")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    result = _result(args.minutes * 60, args.max_backoff)
    duration_s = time.perf_counter() - started
    path = write_result(args.out, "outbox_outage", Options(quick=args.minutes < 15), result,
                        duration_s)
    print_table("outbox_outage", result, duration_s)
    print(f"  -> {path}")
    return 0 if not result.results["lost"] else 1


if __name__ == "__main__":
    sys.exit(main())
