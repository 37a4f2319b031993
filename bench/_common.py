"""What every benchmark shares: options, the machine's facts, statistics, the result file."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import statistics
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Options:
    quick: bool = False
    """Fewer repetitions: every benchmark well under a minute."""
    device: str = "auto"
    """engine_throughput: `auto` (CUDA when torch sees one), `cpu` or `cuda`."""
    threads: int = 1
    """engine_throughput: torch intra-op threads on CPU."""


@dataclass
class Result:
    params: dict[str, Any]
    results: dict[str, Any]
    table: list[tuple[str, str]] = field(default_factory=list)
    """(what, value) rows printed after the run."""


def machine_facts() -> dict[str, Any]:
    """What the numbers depend on: CPU, cores, Python, torch, the CUDA device if any, load."""
    facts: dict[str, Any] = {
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "load_average_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency of the reference server
        facts["torch"] = None
        facts["cuda_device"] = None
        return facts
    facts["torch"] = torch.__version__
    facts["cuda_device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return facts


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    for line in text.splitlines():
        if line.lower().startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50 / p99 / mean / min of durations, in milliseconds."""
    return {
        "p50_ms": percentile(seconds, 50) * 1000,
        "p99_ms": percentile(seconds, 99) * 1000,
        "mean_ms": statistics.fmean(seconds) * 1000 if seconds else math.nan,
        "min_ms": min(seconds) * 1000 if seconds else math.nan,
    }


def rate(count: float, seconds: float) -> float:
    return count / seconds if seconds > 0 else math.inf


def fmt_rate(value: float, unit: str) -> str:
    return f"{value:,.0f} {unit}"


def fmt_ms(value: float) -> str:
    return f"{value:.3f} ms" if value < 1 else f"{value:,.1f} ms"


def write_result(
    out_dir: Path, name: str, options: Options, result: Result, duration_s: float
) -> Path:
    """`<out_dir>/<name>.json`, written atomically (a `.tmp` file renamed into place)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    body = {
        "benchmark": name,
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "duration_s": round(duration_s, 3),
        "quick": options.quick,
        "machine": machine_facts(),
        "params": result.params,
        "results": result.results,
    }
    path = out_dir / f"{name}.json"
    with tempfile.NamedTemporaryFile(
        "w", dir=out_dir, prefix=f".{name}.", suffix=".tmp", delete=False
    ) as handle:
        json.dump(body, handle, indent=2)
        handle.write("\n")
    os.chmod(handle.name, 0o644)  # NamedTemporaryFile creates it 0600
    os.replace(handle.name, path)
    return path


def print_table(name: str, result: Result, duration_s: float) -> None:
    width = max((len(what) for what, _ in result.table), default=0)
    print(f"\n{name}  ({duration_s:.1f} s)")
    for what, value in result.table:
        print(f"  {what.ljust(width)}  {value}")
