"""Prometheus-style HTTP service discovery (`http_sd_configs`).

An endpoint answers HTTP 200 with a JSON list of target groups, as Prometheus's http_sd
reads them (and as the reference router's `GET /sd/targets` serves them):

    [{"targets": ["127.0.0.1:18001"], "labels": {"node": "node-0"}}]

The URL is fetched every `refresh_interval_s`, each fetch bounded by `timeout_s` and
`max_body_bytes`. Semantics are `FileDiscovery`'s: a fetch that fails (unreachable,
not 200, not JSON, a malformed group) is logged with the URL and the reason and the last
good target groups are kept, so a router restarting never empties a job. `__meta_*`
labels are dropped (there is no relabelling), `__scheme__` and `__metrics_path__` kept.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

import httpx

from ._discovery import TargetGroup
from ._discovery import _group as target_group
from ._exceptions import DiscoveryError

__all__ = ["HttpDiscovery", "parse_http_target_groups"]

logger = logging.getLogger("inferops.collectors.http_discovery")

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024


def parse_http_target_groups(text: str, *, url: str) -> list[TargetGroup]:
    """The target groups of one http_sd answer; `DiscoveryError` names the URL, group and field."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise DiscoveryError(
            f"{url}: line {error.lineno} column {error.colno}: not valid JSON: {error.msg}"
        ) from None
    if not isinstance(raw, list):
        raise DiscoveryError(f"{url}: expected a list of target groups, got {type(raw).__name__}")
    return [target_group(entry, f"{url}[{index}]") for index, entry in enumerate(raw)]


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


class HttpDiscovery:
    """Target groups from an http_sd endpoint, fetched every `refresh_interval_s`.

    `refresh()` fetches now (True if the groups changed); `run(on_change)` fetches every
    `refresh_interval_s` and awaits `on_change(groups)` when the set changed. `error` is
    the last fetch's error message, None after a good fetch. `transport` is for tests.
    """

    def __init__(
        self,
        url: str,
        *,
        refresh_interval_s: float = 60.0,
        timeout_s: float = 10.0,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"http_sd url must be an http(s) URL, got {url!r}")
        for name, value in (("refresh_interval_s", refresh_interval_s), ("timeout_s", timeout_s)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if max_body_bytes <= 0:
            raise ValueError(f"max_body_bytes must be positive, got {max_body_bytes!r}")
        self.url = url
        self.shown_url = _without_credentials(url)
        """The URL as logs and errors show it: never a `user:password@` it may carry."""
        self.refresh_interval_s = refresh_interval_s
        self._max_body_bytes = max_body_bytes
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout_s),
            transport=transport,
            headers={"Accept": "application/json"},
        )
        self._groups: tuple[TargetGroup, ...] = ()
        self.error: str | None = None

    @property
    def groups(self) -> tuple[TargetGroup, ...]:
        """The groups of the last good fetch, in the endpoint's order."""
        return self._groups

    def close(self) -> None:
        self._client.close()

    def refresh(self) -> bool:
        """Fetch the endpoint now; on any failure log it and keep the last good groups."""
        try:
            groups = tuple(parse_http_target_groups(self._fetch(), url=self.shown_url))
        except DiscoveryError as error:
            self.error = str(error)
            logger.error(
                "http_sd %s; keeping the last good target groups (%d)",
                error,
                len(self._groups),
            )
            return False
        self.error = None
        changed = groups != self._groups
        self._groups = groups
        return changed

    def _fetch(self) -> str:
        try:
            with self._client.stream("GET", self.url) as response:
                if response.status_code != 200:
                    raise DiscoveryError(
                        f"{self.shown_url}: answered HTTP {response.status_code}, expected 200"
                    )
                body = bytearray()
                for chunk in response.iter_bytes():
                    body.extend(chunk)
                    if len(body) > self._max_body_bytes:
                        raise DiscoveryError(
                            f"{self.shown_url}: answer is larger than {self._max_body_bytes} bytes"
                        )
        except httpx.TimeoutException:
            raise DiscoveryError(f"{self.shown_url}: did not answer in time") from None
        except httpx.HTTPError as error:
            raise DiscoveryError(f"{self.shown_url}: cannot fetch: {error}") from None
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            raise DiscoveryError(f"{self.shown_url}: answer is not UTF-8") from None

    async def run(
        self, on_change: Callable[[tuple[TargetGroup, ...]], Awaitable[None]]
    ) -> None:
        """Refresh every `refresh_interval_s` until cancelled; errors are logged, never fatal."""
        while True:
            await asyncio.sleep(self.refresh_interval_s)
            try:
                if await asyncio.to_thread(self.refresh):
                    await on_change(self._groups)
            except Exception:
                logger.exception("http_sd refresh of %s failed; trying again", self.shown_url)
