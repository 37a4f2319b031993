"""A bounded load generator: real OpenAI-style requests against the fleet's router.

The demo uses it to give the fleet real work and to count what users would have seen.
Every request is recorded, so the report can say how many succeeded after mitigation.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from dataclasses import dataclass

import httpx

logger = logging.getLogger("inferops.load")

_PROMPTS = (
    "The on-call engineer opened the dashboard and saw",
    "Summarize the incident timeline in one sentence:",
    "GPU node health check report:",
    "Explain continuous batching to a new SRE:",
)


@dataclass(frozen=True, slots=True)
class RequestRecord:
    started_at_s: float
    finished_at_s: float
    ok: bool
    status_code: int
    stream: bool
    error: str | None = None


class LoadGenerator:
    """`concurrency` workers, each sending one request after another until stopped."""

    def __init__(
        self,
        router_url: str,
        *,
        concurrency: int = 4,
        max_tokens: int = 12,
        model: str = "inferops-tiny",
        api_key: str | None = None,
        timeout_s: float = 30.0,
        pause_s: float = 0.05,
    ) -> None:
        self._url = router_url.rstrip("/")
        self._concurrency = concurrency
        self._max_tokens = max_tokens
        self._model = model
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout_s = timeout_s
        self._pause_s = pause_s
        self._stopping = asyncio.Event()
        self.records: list[RequestRecord] = []

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        async with httpx.AsyncClient(
            timeout=httpx.Timeout(self._timeout_s, connect=2.0), headers=self._headers
        ) as client:
            counter = itertools.count()
            await asyncio.gather(*(self._worker(client, counter) for _ in range(self._concurrency)))

    async def _worker(self, client: httpx.AsyncClient, counter: itertools.count[int]) -> None:
        while not self._stopping.is_set():
            n = next(counter)
            stream = n % 2 == 1
            started = time.time()
            try:
                status, ok, error = await self._one(client, n, stream)
            except httpx.HTTPError as exc:
                status, ok, error = 0, False, f"{type(exc).__name__}: {exc}"
            self.records.append(RequestRecord(started, time.time(), ok, status, stream, error))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self._pause_s)

    async def _one(
        self, client: httpx.AsyncClient, n: int, stream: bool
    ) -> tuple[int, bool, str | None]:
        prompt = _PROMPTS[n % len(_PROMPTS)]
        if n % 3 == 0:
            path = "/v1/chat/completions"
            body: dict[str, object] = {"messages": [{"role": "user", "content": prompt}]}
        else:
            path = "/v1/completions"
            body = {"prompt": prompt}
        body |= {"model": self._model, "max_tokens": self._max_tokens, "stream": stream}
        if not stream:
            response = await client.post(self._url + path, json=body)
            return response.status_code, response.status_code == 200, _error_of(response)
        async with client.stream("POST", self._url + path, json=body) as response:
            if response.status_code != 200:
                await response.aread()
                return response.status_code, False, _error_of(response)
            done = False
            async for line in response.aiter_lines():
                if line.strip() == "data: [DONE]":
                    done = True
            return 200, done, None if done else "stream ended without [DONE]"


def _error_of(response: httpx.Response) -> str | None:
    if response.status_code == 200:
        return None
    try:
        return str(json.loads(response.text)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200]
