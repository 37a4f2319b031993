"""The faults a node can be told to have, for drills and the demo.

- `latency`: `seconds` extra before the first token of every new request;
- `error-burst`: a `ratio` (0..1) of new /v1 requests answer 500;
- `crash`: the process exits with status 1 shortly after answering;
- `gpu-xid`: the simulated GPU reports XID `code` (a real GPU cannot be faulted: 409);
- `hang`: the engine accepts requests and never sends a token; /health answers 503 once a
  step has been stuck for the engine's `stall_timeout_s` (see `Node.health_problem`);
- `slow-kernel`: `matmuls` extra matmuls (default 16) in layer `layer`'s MLP on every step;
- `kv-leak`: KV blocks of finished requests are never freed, until requests queue;
- `ecc-dbe`: the simulated GPU counts a double-bit ECC error (and XID 48) and the engine
  dies with it: every request fails and /health answers 503 until cleared;
- `thermal`: the simulated GPU's cooling fails: it heats up, throttles its SM clock and the
  engine's steps slow down by the same ratio.

Injecting a kind again replaces that kind's parameters. Touched only on the event loop.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from ._openai_schema import ApiError

FAULT_KINDS = ("latency", "error-burst", "crash", "gpu-xid", "hang", "slow-kernel", "kv-leak",
               "ecc-dbe", "thermal")
GPU_FAULT_KINDS = ("gpu-xid", "ecc-dbe", "thermal")
"""Faults the simulated GPU shows; a real GPU cannot be faulted (409)."""

_PARAMS: dict[str, tuple[str, ...]] = {
    "latency": ("seconds",),
    "error-burst": ("ratio",),
    "crash": (),
    "gpu-xid": ("code",),
    "hang": (),
    "slow-kernel": ("layer",),
    "kv-leak": (),
    "ecc-dbe": (),
    "thermal": (),
}
_OPTIONAL: dict[str, tuple[str, ...]] = {"slow-kernel": ("matmuls",)}
MAX_LATENCY_S = 600.0
DEFAULT_SLOW_KERNEL_MATMULS = 16
MAX_SLOW_KERNEL_MATMULS = 1000


def _number(body: dict[str, Any], field: str, low: float, high: float) -> float:
    value = body.get(field)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ApiError(400, f"{field}: must be a number", param=field)
    if not low <= value <= high:
        raise ApiError(400, f"{field}: must be between {low:g} and {high:g}, got {value}",
                       param=field)
    return float(value)


def parse_fault(body: dict[str, Any]) -> dict[str, Any]:
    """The normalised fault of a `POST /admin/faults` body; ApiError(400) naming the field."""
    kind = body.get("kind")
    if kind not in FAULT_KINDS:
        raise ApiError(400, f"kind: must be one of {', '.join(FAULT_KINDS)}, got {kind!r}",
                       param="kind")
    expected = _PARAMS[kind]
    optional = _OPTIONAL.get(kind, ())
    for field in body:
        if field != "kind" and field not in expected + optional:
            allowed = ", ".join(expected + optional) or "no other field"
            raise ApiError(400, f"{field}: unknown field for a {kind} fault (takes {allowed})",
                           param=field)
    for field in expected:
        if field not in body:
            raise ApiError(400, f"{field}: required for a {kind} fault", param=field)
    if kind == "latency":
        return {"kind": kind, "seconds": _number(body, "seconds", 0.0, MAX_LATENCY_S)}
    if kind == "error-burst":
        return {"kind": kind, "ratio": _number(body, "ratio", 0.0, 1.0)}
    if kind == "gpu-xid":
        code = body["code"]
        if isinstance(code, bool) or not isinstance(code, int) or not 1 <= code <= 999:
            raise ApiError(400, f"code: must be an XID code (an integer 1..999), got {code!r}",
                           param="code")
        return {"kind": kind, "code": code}
    if kind == "slow-kernel":
        return {"kind": kind, "layer": _integer(body, "layer", 0, 1_000),
                "matmuls": _integer(body, "matmuls", 1, MAX_SLOW_KERNEL_MATMULS,
                                    default=DEFAULT_SLOW_KERNEL_MATMULS)}
    return {"kind": kind}


def _integer(body: dict[str, Any], field: str, low: int, high: int, *,
             default: int | None = None) -> int:
    value = body.get(field, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ApiError(400, f"{field}: must be an integer {low}..{high}, got {value!r}",
                       param=field)
    return value


class Faults:
    """The node's active faults."""

    def __init__(self, *, rng: Callable[[], float] | None = None) -> None:
        self._active: dict[str, dict[str, Any]] = {}
        self._random = rng or random.Random().random

    def set(self, fault: dict[str, Any]) -> None:
        self._active[fault["kind"]] = fault

    def clear(self) -> None:
        self._active.clear()

    def has(self, kind: str) -> bool:
        return kind in self._active

    def active(self) -> list[dict[str, Any]]:
        return [dict(f) for f in self._active.values()]

    @property
    def latency_s(self) -> float:
        fault = self._active.get("latency")
        return float(fault["seconds"]) if fault else 0.0

    def should_fail(self) -> bool:
        """Whether this new request is one of the error burst's failures."""
        fault = self._active.get("error-burst")
        return fault is not None and self._random() < fault["ratio"]
