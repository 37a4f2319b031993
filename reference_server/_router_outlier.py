"""Passive outlier ejection (Envoy's outlier detection, consecutive-failure kind).

The active health check asks a node every half second whether it is fine; a node can answer
its /health and still fail every request, or accept connections and never send a byte. So
the router also watches the answers it relays: `consecutive_failures` failures in a row
(a 5xx answer, a connect or read error, no first byte within the first-byte timeout) eject
the node for `base_ejection_s` x the number of times it was ejected (at most
`max_ejection_s`). While ejected it gets no new requests; when the time is up it returns if
the active health check still passes. At most `max_ejection_percent` of the fleet, and of
any model pool the node belongs to, is ejected at once (rounded down), and never the last
node, so a fleet-wide failure degrades into errors rather than into no fleet at all.

State lives on the pooled nodes and is touched only on the router's event loop.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from ._exceptions import FleetConfigError

logger = logging.getLogger("reference_server.router")

EJECTION_REASONS = ("5xx", "connect", "read", "timeout", "first_byte_timeout")
"""The `reason` label of `inferops_router_ejections_total`: the last failure's kind."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OutlierPolicy:
    """When the router ejects a node on its own. `consecutive_failures=0` turns ejection off
    (the first-byte timeout still applies)."""

    consecutive_failures: int = 3
    base_ejection_s: float = 5.0
    max_ejection_s: float = 300.0
    max_ejection_percent: float = 50.0
    first_byte_timeout_s: float = 10.0
    """How long a streamed request waits for its first byte (the node's first token) before
    the attempt counts as failed and moves to another node. A non-streamed answer's first
    byte comes only when it is complete, so it is bounded by the read timeout instead."""

    def __post_init__(self) -> None:
        failures = self.consecutive_failures
        if isinstance(failures, bool) or not isinstance(failures, int) or failures < 0:
            raise FleetConfigError("outlier.consecutive_failures",
                                   f"must be an integer >= 0 (0: off), got {failures!r}")
        for name in ("base_ejection_s", "max_ejection_s", "first_byte_timeout_s"):
            value = getattr(self, name)
            if (isinstance(value, bool) or not isinstance(value, int | float)
                    or not math.isfinite(value) or value <= 0):
                raise FleetConfigError(f"outlier.{name}",
                                       f"must be a positive number of seconds, got {value!r}")
        if self.max_ejection_s < self.base_ejection_s:
            raise FleetConfigError("outlier.max_ejection_s", f"must be at least base_ejection_s "
                                   f"({self.base_ejection_s:g}), got {self.max_ejection_s!r}")
        percent = self.max_ejection_percent
        if (isinstance(percent, bool) or not isinstance(percent, int | float)
                or not 0 <= percent <= 100):
            raise FleetConfigError("outlier.max_ejection_percent",
                                   f"must be a number in 0..100, got {percent!r}")


class OutlierState:
    """One node's record: failures in a row, how often it was ejected, until when."""

    __slots__ = ("ejections", "failures", "returned_s", "until_s")

    def __init__(self) -> None:
        self.failures = 0
        self.ejections = 0
        self.until_s: float | None = None
        """Monotonic time the current ejection ends; None when not ejected."""
        self.returned_s: float | None = None


class _Member(Protocol):
    """What the detector needs of a pooled node (structural, to avoid an import cycle)."""

    @property
    def name(self) -> str: ...

    @property
    def outlier(self) -> OutlierState: ...


class OutlierDetector:
    """Counts failures and successes per node and ejects by `policy`. `groups(node)` names
    the sets of nodes the ejection percentage applies to (the fleet and the node's model
    pools); `on_eject(node, reason)` counts an ejection."""

    def __init__(self, policy: OutlierPolicy, *,
                 groups: Callable[[str], Iterable[Iterable[_Member]]],
                 on_eject: Callable[[str, str], None] = lambda _node, _reason: None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self._groups = groups
        self._on_eject = on_eject
        self.clock = clock

    def ejected(self, state: OutlierState) -> bool:
        """Whether the node is out now (an expired ejection ends here, lazily)."""
        until = state.until_s
        if until is None:
            return False
        if self.clock() < until:
            return True
        self._end(state)
        return False

    def expire(self, name: str, state: OutlierState) -> None:
        """End an ejection whose time is up, and say so (the health checker calls this)."""
        if state.until_s is not None and self.clock() >= state.until_s:
            self._end(state)
            logger.info("%s returns from ejection (ejected %d time(s))", name, state.ejections)

    def _end(self, state: OutlierState) -> None:
        state.returned_s = state.until_s  # when it returned, even if noticed later
        state.until_s = None
        state.failures = 0

    def success(self, state: OutlierState) -> None:
        state.failures = 0

    def failure(self, node: _Member, reason: str) -> bool:
        """Count one failed attempt on `node`; True when this failure ejected it."""
        state = node.outlier
        if self.policy.consecutive_failures == 0 or self.ejected(state):
            return False
        state.failures += 1
        if state.failures < self.policy.consecutive_failures:
            return False
        blocker = self._blocked_by(node)
        if blocker is not None:
            logger.warning("%s failed %d times in a row (%s) but is not ejected: %s",
                           node.name, state.failures, reason, blocker)
            return False
        now = self.clock()
        if state.returned_s is not None and now - state.returned_s >= self.policy.max_ejection_s:
            state.ejections = 0  # well behaved for a long while: start the multiplier over
        state.ejections += 1
        seconds = min(self.policy.base_ejection_s * state.ejections, self.policy.max_ejection_s)
        state.until_s = now + seconds
        state.failures = 0
        logger.warning("%s ejected for %g s after %d consecutive failures (last: %s); "
                       "ejection #%d", node.name, seconds, self.policy.consecutive_failures,
                       reason, state.ejections)
        self._on_eject(node.name, reason)
        return True

    def _blocked_by(self, node: _Member) -> str | None:
        for group in self._groups(node.name):
            members = list(group)
            out = sum(1 for m in members if m is not node and self.ejected(m.outlier))
            allowed = math.floor(len(members) * self.policy.max_ejection_percent / 100 + 1e-9)
            if out + 1 >= len(members):
                return f"it would leave no node of {len(members)} in"
            if out + 1 > allowed:
                return (f"{out} of {len(members)} node(s) already ejected, at most "
                        f"{self.policy.max_ejection_percent:g} % may be")
        return None

    def until_unix_s(self, state: OutlierState) -> float | None:
        """When the ejection ends, as a Unix time (for the admin API); None when in."""
        if not self.ejected(state) or state.until_s is None:
            return None
        return time.time() + (state.until_s - self.clock())
