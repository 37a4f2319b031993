"""Per-key request and token limits as token buckets, as API gateways enforce them.

A bucket holds at most one minute's allowance and refills continuously. A request takes one
request token up front; generated and prompt tokens are known only when the answer is
complete, so they are charged afterwards and may drive the token bucket below zero: the
next request is refused until it has refilled above zero (how OpenAI's and most gateways'
token-per-minute limits behave). The refusal says how long to wait (`Retry-After`).
Everything runs on the router's event loop; the clock is passed in so tests need no sleep.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ._api_keys import ApiKey


class TokenBucket:
    """`capacity` tokens at most, refilled at `refill_per_s`; the level may go negative."""

    def __init__(self, capacity: float, refill_per_s: float, now_s: float) -> None:
        if capacity <= 0 or refill_per_s <= 0:
            raise ValueError("a token bucket needs a positive capacity and refill rate")
        self.capacity = capacity
        self.refill_per_s = refill_per_s
        self._level = capacity
        self._at_s = now_s

    def level(self, now_s: float) -> float:
        elapsed = max(0.0, now_s - self._at_s)
        self._level = min(self.capacity, self._level + elapsed * self.refill_per_s)
        self._at_s = max(self._at_s, now_s)
        return self._level

    def wait_s(self, amount: float, now_s: float) -> float:
        """Seconds until `amount` tokens are there (0 when they are there now)."""
        missing = amount - self.level(now_s)
        return 0.0 if missing <= 0 else missing / self.refill_per_s

    def take(self, amount: float, now_s: float) -> None:
        self._level = self.level(now_s) - amount


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request was refused and when to come back (whole seconds, at least 1)."""

    limit: str  # "requests" or "tokens"
    limit_per_minute: float
    retry_after_s: int


class RateLimiter:
    """The buckets of every key that has a limit."""

    def __init__(self, keys: tuple[ApiKey, ...], now_s: float) -> None:
        self._requests: dict[str, TokenBucket] = {}
        self._tokens: dict[str, TokenBucket] = {}
        for key in keys:
            if key.requests_per_minute is not None:
                self._requests[key.name] = TokenBucket(
                    key.requests_per_minute, key.requests_per_minute / 60.0, now_s)
            if key.tokens_per_minute is not None:
                self._tokens[key.name] = TokenBucket(
                    key.tokens_per_minute, key.tokens_per_minute / 60.0, now_s)

    def admit(self, name: str, now_s: float) -> Refusal | None:
        """Take one request from `name`'s allowance, or say why not (taking nothing)."""
        tokens = self._tokens.get(name)
        if tokens is not None and tokens.level(now_s) <= 0:
            wait = tokens.wait_s(1.0, now_s)
            return Refusal("tokens", tokens.capacity, _whole_seconds(wait))
        requests = self._requests.get(name)
        if requests is not None:
            wait = requests.wait_s(1.0, now_s)
            if wait > 0:
                return Refusal("requests", requests.capacity, _whole_seconds(wait))
            requests.take(1.0, now_s)
        return None

    def charge_tokens(self, name: str, tokens: int, now_s: float) -> None:
        bucket = self._tokens.get(name)
        if bucket is not None and tokens > 0:
            bucket.take(float(tokens), now_s)


def _whole_seconds(wait_s: float) -> int:
    """`Retry-After` in whole seconds, at least 1 (float noise never adds a second)."""
    return max(1, math.ceil(wait_s - 1e-9))
