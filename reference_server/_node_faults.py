"""The faults a node can be told to have, for drills and the demo.

- `latency`: `seconds` extra before the first token of every new request;
- `error-burst`: a `ratio` (0..1) of new /v1 requests answer 500;
- `crash`: the process exits with status 1 shortly after answering;
- `gpu-xid`: the simulated GPU reports XID `code` (a real GPU cannot be faulted: 409).

Injecting a kind again replaces that kind's parameters. Touched only on the event loop.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from ._openai_schema import ApiError

FAULT_KINDS = ("latency", "error-burst", "crash", "gpu-xid")

_PARAMS: dict[str, tuple[str, ...]] = {
    "latency": ("seconds",),
    "error-burst": ("ratio",),
    "crash": (),
    "gpu-xid": ("code",),
}
MAX_LATENCY_S = 600.0


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
    for field in body:
        if field != "kind" and field not in expected:
            allowed = ", ".join(expected) or "no other field"
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
    return {"kind": kind}


class Faults:
    """The node's active faults."""

    def __init__(self, *, rng: Callable[[], float] | None = None) -> None:
        self._active: dict[str, dict[str, Any]] = {}
        self._random = rng or random.Random().random

    def set(self, fault: dict[str, Any]) -> None:
        self._active[fault["kind"]] = fault

    def clear(self) -> None:
        self._active.clear()

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
