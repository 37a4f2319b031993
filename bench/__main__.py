"""`python -m bench [NAME ...] [--quick] [--out bench/results] [--device auto] [--threads 1]`."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Sequence
from importlib import import_module
from pathlib import Path

from ._common import Options, Result, print_table, write_result

# name -> module bench.<name> (imported only when run: engine_throughput imports torch)
BENCHMARKS = (
    "exposition_parse",
    "gpu_render",
    "engine_throughput",
    "store_ingest",
    "promql_eval",
    "promql_30d",
    "nvml_render",
    "dashboard_first_paint",
    "profiler_cost",
    "router_overhead",
    "tracing_cost",
    "outbox_outage",
    "slo_eval",
)
NAMED_ONLY = frozenset({"outbox_outage"})
"""Run only when named: the full outbox outage takes about 16 minutes."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run InferOps benchmarks; write <out>/<name>.json and print a table.",
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"benchmarks to run (default: all but {', '.join(sorted(NAMED_ONLY))}): "
        f"{', '.join(BENCHMARKS)}",
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (< 60 s each)")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("bench/results"),
        help="directory for the JSON results (default: bench/results)",
    )
    parser.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="engine_throughput: where the model runs (default: auto)",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="engine_throughput: torch CPU threads (default: 1)"
    )
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    if args.threads < 1:
        parser.error("--threads must be >= 1")
    logging.basicConfig(level=logging.WARNING)
    options = Options(quick=args.quick, device=args.device, threads=args.threads)
    for name in args.names or [name for name in BENCHMARKS if name not in NAMED_ONLY]:
        runner: Callable[[Options], Result] = import_module(f"bench.{name}").run
        started = time.perf_counter()
        try:
            result = runner(options)
        except ValueError as error:  # a bad option for this machine, e.g. --device cuda
            print(f"python -m bench: {name}: {error}", file=sys.stderr)
            if args.names:
                return 2
            print(f"python -m bench: {name}: skipped on this machine", file=sys.stderr)
            continue
        duration_s = time.perf_counter() - started
        path = write_result(args.out, name, options, result, duration_s)
        print_table(name, result, duration_s)
        print(f"  -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
