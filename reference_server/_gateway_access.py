"""The gateway in front of `/v1/*`: client API keys, per-key limits, per-key token metering.

`Gateway.check` answers 401 (no or unknown key) or 429 (over a limit, with `Retry-After`) in
OpenAI's error shape before any node is asked. Token usage is read from what the node
answers: the `usage` of a JSON answer, or the usage chunk at the end of a stream. So that
every stream has one, the gateway asks the node for it (`stream_options.include_usage`) and,
when the client did not ask for it, takes that chunk out of what it relays.
Metrics carry the key's configured name (or a hash-derived id), never the key.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from starlette.responses import JSONResponse

from ._api_keys import ApiKey, ApiKeyring
from ._openai_schema import openai_error
from ._rate_limit import RateLimiter

logger = logging.getLogger("reference_server.gateway")

UNAUTHENTICATED = "(unauthenticated)"
"""The `api_key_name` label of requests refused for want of a valid key."""

_USAGE = b'"usage"'


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What the router reads from a request body it forwards (parsed once, if JSON)."""

    model: str | None = None
    session: str | None = None  # the `user` field, for session affinity
    stream: bool = False
    wants_usage: bool = False  # stream_options.include_usage as the client sent it


def read_request(body: bytes, headers: Mapping[str, str]) -> tuple[RequestFacts, Any]:
    """The facts of a request, and its parsed JSON object (None when it is not one)."""
    session = headers.get("x-session-id") or None
    parsed: Any = None
    if body[:1] == b"{" or body.lstrip()[:1] == b"{":
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
    if not isinstance(parsed, dict):
        return RequestFacts(session=session), None
    model = parsed.get("model")
    user = parsed.get("user")
    options = parsed.get("stream_options")
    wants = isinstance(options, dict) and options.get("include_usage") is True
    return RequestFacts(
        model=model if isinstance(model, str) else None,
        session=session or (user if isinstance(user, str) and user else None),
        stream=parsed.get("stream") is True, wants_usage=wants,
    ), parsed


def with_usage_requested(parsed: dict[str, Any]) -> bytes:
    """The body again, asking the node for the usage chunk at the end of the stream."""
    options = parsed.get("stream_options")
    options = dict(options) if isinstance(options, dict) else {}
    options["include_usage"] = True
    return json.dumps({**parsed, "stream_options": options}).encode()


def usage_of(document: bytes) -> tuple[int, int] | None:
    """(prompt_tokens, completion_tokens) of a JSON answer or SSE event, if it has them."""
    if _USAGE not in document:
        return None
    try:
        usage = json.loads(document).get("usage")
        prompt, completion = usage["prompt_tokens"], usage["completion_tokens"]
    except (ValueError, AttributeError, KeyError, TypeError):
        return None
    if isinstance(prompt, int) and isinstance(completion, int):
        return prompt, completion
    return None


def take_usage_events(chunk: bytes, strip: bool) -> tuple[bytes, tuple[int, int] | None]:
    """The usage carried by the SSE events of `chunk`; with `strip`, the chunk without the
    usage-only event (the one the client did not ask for)."""
    if _USAGE not in chunk:
        return chunk, None
    found: tuple[int, int] | None = None
    kept: list[bytes] = []
    for event in chunk.split(b"\n\n"):
        data = event.strip()
        if data.startswith(b"data:") and _USAGE in data:
            usage = usage_of(data[5:].strip())
            if usage is not None:
                found = usage
                if strip and b'"choices":[]' in data.replace(b" ", b""):
                    continue
        kept.append(event)
    return b"\n\n".join(kept), found


class Gateway:
    """Authenticates, limits and meters client requests; one per router."""

    def __init__(self, keys: Iterable[ApiKey], registry: CollectorRegistry,
                 *, clock: Callable[[], float] = time.monotonic) -> None:
        keys = tuple(keys)
        self._keyring = ApiKeyring(keys)
        self._clock = clock
        self._limiter = RateLimiter(keys, clock())
        self.requests = Counter(
            "inferops_gateway_requests", "Client requests by API key name and HTTP status "
            "(401: no valid key, 429: over a limit).", ["api_key_name", "status"],
            registry=registry,
        )
        self.tokens = Counter(
            "inferops_gateway_tokens", "Tokens metered per API key name, as the node reported "
            "them in usage (prompt or generation).", ["api_key_name", "kind"], registry=registry,
        )
        self.rate_limited = Counter(
            "inferops_gateway_rate_limited", "Requests refused with 429, by key name and limit "
            "(requests or tokens per minute).", ["api_key_name", "limit"], registry=registry,
        )

    def __len__(self) -> int:
        return len(self._keyring)

    def check(self, authorization: str | None) -> ApiKey | JSONResponse:
        """The caller's key, or the 401/429 answer to send instead (already counted)."""
        scheme, _, presented = (authorization or "").partition(" ")
        key = self._keyring.find(presented.strip()) if scheme.lower() == "bearer" else None
        if key is None:
            self.requests.labels(api_key_name=UNAUTHENTICATED, status="401").inc()
            return openai_error(
                401, "Incorrect or missing API key: send Authorization: Bearer <key> (keys "
                "come from INFEROPS_API_KEYS or the fleet's keys file).",
                "invalid_request_error", code="invalid_api_key",
                headers={"WWW-Authenticate": "Bearer"})
        refusal = self._limiter.admit(key.name, self._clock())
        if refusal is None:
            return key
        self.requests.labels(api_key_name=key.name, status="429").inc()
        self.rate_limited.labels(api_key_name=key.name, limit=refusal.limit).inc()
        logger.info("rate limited %s: over %g %s per minute; retry after %d s", key.name,
                    refusal.limit_per_minute, refusal.limit, refusal.retry_after_s)
        return openai_error(
            429, f"Rate limit reached for API key {key.name!r}: limit "
            f"{refusal.limit_per_minute:g} {refusal.limit} per minute. Please try again in "
            f"{refusal.retry_after_s}s.", refusal.limit, code="rate_limit_exceeded",
            headers={"Retry-After": str(refusal.retry_after_s)})

    def record(self, key: ApiKey, status: int) -> None:
        self.requests.labels(api_key_name=key.name, status=str(status)).inc()

    def meter(self, key: ApiKey, usage: tuple[int, int]) -> None:
        prompt, completion = usage
        self.tokens.labels(api_key_name=key.name, kind="prompt").inc(max(0, prompt))
        self.tokens.labels(api_key_name=key.name, kind="generation").inc(max(0, completion))
        self._limiter.charge_tokens(key.name, prompt + completion, self._clock())
