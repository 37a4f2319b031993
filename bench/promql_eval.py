"""`collectors.StoreSource` instant queries: the demo's node rules over a SQLite store.

The store holds 10 minutes of 1-s scrapes of 3 simulated reference nodes (as in
store_ingest). Each expression of `inferops/defaults/node-alerts.yaml` is asked once on a
fresh StoreSource (cold: its sample cache is empty) and then at each of the last N
seconds on a shared one (warm: what the alert engine's 1-s evaluations cost).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from collectors import SampleStore, StoreSource, open_database

from ._bodies import fleet_scrapes
from ._common import Options, Result, fmt_ms, summary_ms

NAME = "promql_eval"
NODES = 3
SECONDS = 600
START_S = 1_767_000_000.0
RULES = Path(__file__).resolve().parent.parent / "inferops" / "defaults" / "node-alerts.yaml"


def rule_exprs(path: Path = RULES) -> dict[str, str]:
    """alert (or record) name -> its expression, from a Prometheus rule file."""
    document = yaml.safe_load(path.read_text())
    exprs: dict[str, str] = {}
    for group in document["groups"]:
        for rule in group["rules"]:
            name = rule.get("alert") or rule.get("record")
            exprs[str(name)] = " ".join(str(rule["expr"]).split())
    return exprs


def run(options: Options) -> Result:
    evaluations = 30 if options.quick else 300
    exprs = rule_exprs()
    end_s = START_S + SECONDS - 1
    with tempfile.TemporaryDirectory(prefix="inferops-bench-") as tmp:
        engine = open_database(f"sqlite:///{Path(tmp) / 'samples.db'}")
        try:
            store = SampleStore(engine)
            samples = 0
            for batch in fleet_scrapes(nodes=NODES, seconds=SECONDS, start_s=START_S):
                store.append(batch)
                samples += len(batch)
            results: dict[str, Any] = {}
            table: list[tuple[str, str]] = []
            warm = StoreSource(store)
            for name, expr in exprs.items():
                cold = StoreSource(store)
                started = time.perf_counter()
                answer = cold.query(expr, end_s)
                cold_s = time.perf_counter() - started
                warm.query(expr, end_s - evaluations)  # fills the shared cache
                times = []
                for step in range(evaluations):
                    started = time.perf_counter()
                    warm.query(expr, end_s - evaluations + 1 + step)
                    times.append(time.perf_counter() - started)
                stats = summary_ms(times)
                results[name] = {
                    "expr": expr,
                    "series_in_answer": len(answer),
                    "cold_ms": cold_s * 1000,
                    "warm": stats,
                }
                table.append(
                    (
                        f"{name} cold / warm p50 / p99",
                        f"{fmt_ms(cold_s * 1000)} / {fmt_ms(stats['p50_ms'])} / "
                        f"{fmt_ms(stats['p99_ms'])}",
                    )
                )
            rounds = []
            for step in range(evaluations):
                started = time.perf_counter()
                for expr in exprs.values():
                    warm.query(expr, end_s - evaluations + 1 + step)
                rounds.append(time.perf_counter() - started)
            round_stats = summary_ms(rounds)
            results["all_rules_one_round"] = round_stats
            table.append(
                (
                    f"all {len(exprs)} rules, one round p50 / p99",
                    f"{fmt_ms(round_stats['p50_ms'])} / {fmt_ms(round_stats['p99_ms'])}",
                )
            )
        finally:
            engine.dispose()
    return Result(
        params={
            "nodes": NODES,
            "seconds_of_scrapes": SECONDS,
            "scrape_interval_s": 1,
            "samples_in_store": samples,
            "warm_evaluations": evaluations,
            "rules_file": "inferops/defaults/node-alerts.yaml",
            "database": "SQLite (WAL) in a temporary directory",
        },
        results=results,
        table=table,
    )
