"""The HTTP side of a scrape: one GET of a target, within its timeout and the body size limit."""

from __future__ import annotations

import asyncio

import httpx

from ._scrape_target import ScrapeFailed, ScrapeTarget

# As Prometheus 3 asks: OpenMetrics preferred (exemplars come with it), names as written
# (`escaping=allow-utf-8`: prometheus_client would otherwise turn `vllm:` into `vllm_` in
# OpenMetrics), then the text format for targets that only write that.
_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
    "application/openmetrics-text;version=0.0.1;q=0.5,"
    "text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)
_USER_AGENT = "inferops-scraper/0.1"


def new_client(target_count: int) -> httpx.AsyncClient:
    """A client for scraping `target_count` targets (shared by all of them)."""
    return httpx.AsyncClient(
        headers={"Accept": _ACCEPT, "User-Agent": _USER_AGENT},
        follow_redirects=True,
        trust_env=False,
        limits=httpx.Limits(max_connections=max(10, target_count)),
    )


async def fetch(
    client: httpx.AsyncClient, target: ScrapeTarget, max_body_bytes: int
) -> tuple[bytes, str]:
    """The body and Content-Type of `target`'s response; `ScrapeFailed` says why not."""
    limit = max_body_bytes
    headers = {"X-Prometheus-Scrape-Timeout-Seconds": f"{target.timeout_s:g}"}
    try:
        async with asyncio.timeout(target.timeout_s):
            async with client.stream(
                "GET", target.url, headers=headers, timeout=target.timeout_s
            ) as response:
                if response.status_code != 200:
                    raise ScrapeFailed(
                        f"server returned HTTP status {response.status_code} "
                        f"{response.reason_phrase}".rstrip()
                    )
                # A declared length over the limit fails early; compressed bodies are
                # measured as they are decoded (the limit is on the uncompressed size).
                declared = response.headers.get("content-length", "")
                encoded = response.headers.get("content-encoding", "identity") != "identity"
                if not encoded and declared.isdigit() and int(declared) > limit:
                    raise ScrapeFailed(body_limit_message(limit, declared=int(declared)))
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise ScrapeFailed(body_limit_message(limit))
                    chunks.append(chunk)
                return b"".join(chunks), response.headers.get("content-type", "")
    except TimeoutError:
        raise ScrapeFailed(f"scrape timed out after {target.timeout_s:g}s") from None
    except httpx.TimeoutException:
        raise ScrapeFailed(f"scrape timed out after {target.timeout_s:g}s") from None
    except httpx.HTTPError as exc:
        raise ScrapeFailed(describe(exc)) from None
    except OSError as exc:
        raise ScrapeFailed(describe(exc)) from None


def body_limit_message(limit: int, *, declared: int | None = None) -> str:
    detail = f" (Content-Length {declared})" if declared is not None else ""
    return f"body size limit exceeded: more than {limit} bytes (max_body_bytes){detail}"


def describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
