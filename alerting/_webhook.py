"""Deliver notifications to an HTTP receiver as Alertmanager's webhook does, signed."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from importlib import metadata
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from ._exceptions import NotificationError
from ._outbox import DEDUP_HEADER

logger = logging.getLogger("alerting.webhook")

SIGNATURE_HEADER = "X-InferOps-Signature"
"""`sha256=<hex HMAC-SHA256 of the exact body bytes>`, keyed with the receiver's secret."""


def _version() -> str:
    try:
        return metadata.version("inferops")
    except metadata.PackageNotFoundError:
        return "0+unknown"


USER_AGENT = f"InferOps/{_version()}"


def signature(secret: str, body: bytes) -> str:
    """The `X-InferOps-Signature` value of `body` under `secret`."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def redacted_url(url: str) -> str:
    """`url` with the password of any `user:password@` masked, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class _ServerError(Exception):
    """A 5xx answer: worth another attempt."""

    def __init__(self, status_code: int, detail: str) -> None:
        self.status_code = status_code
        self.detail = detail
        super().__init__(f"{status_code} {detail}")


class WebhookNotifier:
    """POSTs each body as compact UTF-8 JSON to `url`. Connection errors, timeouts and 5xx
    answers are retried (`attempts` in all, exponential backoff from `backoff_s` up to
    `max_backoff_s`, with jitter); any other non-2xx answer fails at once. Failure raises
    `NotificationError` naming the URL; the secret never appears in messages or logs."""

    def __init__(
        self,
        url: str,
        *,
        secret: str | None = None,
        timeout_s: float = 5.0,
        attempts: int = 3,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
    ) -> None:
        if attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {attempts!r}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s!r}")
        if urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"expected an http(s) URL, got {redacted_url(url)!r}")
        self._url = url
        self._shown_url = redacted_url(url)
        self._secret = secret or None
        self._timeout_s = timeout_s
        self._attempts = attempts
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._client = httpx.Client(timeout=timeout_s, follow_redirects=False)

    @property
    def url(self) -> str:
        return self._shown_url

    def __repr__(self) -> str:
        return f"WebhookNotifier({self._shown_url!r})"

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> WebhookNotifier:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _request(
        self, payload: Mapping[str, Any], dedup_key: str | None
    ) -> tuple[bytes, dict[str, str]]:
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = signature(self._secret, body)
        if dedup_key is not None:
            headers[DEDUP_HEADER] = dedup_key
        return body, headers

    def deliver(self, payload: Mapping[str, Any], *, dedup_key: str) -> None:
        """One attempt, with `X-InferOps-Dedup-Key` set (the outbox's `DeliveryWorker`
        retries); raises `NotificationError` when the receiver did not take it."""
        body, headers = self._request(payload, dedup_key)
        what = f"the webhook {self._shown_url}"
        try:
            self._post(body, headers)
        except _ServerError as error:
            raise NotificationError(
                f"{what} answered {error.status_code} ({error.detail})",
                url=self._shown_url, status_code=error.status_code,
            ) from None
        except httpx.TimeoutException:
            raise NotificationError(
                f"{what} did not answer within {self._timeout_s:g} s", url=self._shown_url
            ) from None
        except httpx.HTTPError as error:
            raise NotificationError(
                f"cannot reach {what}: {type(error).__name__}: {error}", url=self._shown_url
            ) from None

    def notify(self, payload: Mapping[str, Any]) -> None:
        body, headers = self._request(payload, None)
        retrying = Retrying(
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential(multiplier=self._backoff_s, max=self._max_backoff_s)
            + wait_random(0, self._backoff_s),
            retry=retry_if_exception_type((httpx.TransportError, _ServerError)),
            before_sleep=self._log_retry,
            reraise=True,
        )
        what = f"the webhook {self._shown_url}"
        tries = f"{self._attempts} attempt{'s' if self._attempts > 1 else ''}"
        try:
            for attempt in retrying:
                with attempt:
                    self._post(body, headers)
        except _ServerError as error:
            raise NotificationError(
                f"{what} answered {error.status_code} ({error.detail}) after {tries}",
                url=self._shown_url, status_code=error.status_code,
            ) from None
        except httpx.TimeoutException:
            raise NotificationError(
                f"{what} did not answer within {self._timeout_s:g} s, {tries}",
                url=self._shown_url,
            ) from None
        except httpx.HTTPError as error:
            raise NotificationError(
                f"cannot reach {what} after {tries}: {type(error).__name__}: {error}",
                url=self._shown_url,
            ) from None

    def _post(self, body: bytes, headers: dict[str, str]) -> None:
        response = self._client.post(self._url, content=body, headers=headers)
        if response.is_success:
            return
        detail = response.text[:200].strip() or response.reason_phrase or "(empty body)"
        if response.status_code >= 500:
            raise _ServerError(response.status_code, detail)
        raise NotificationError(
            f"the webhook {self._shown_url} refused the notification: "
            f"{response.status_code} ({detail})",
            url=self._shown_url, status_code=response.status_code,
        )

    def _log_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        wait_s = state.next_action.sleep if state.next_action is not None else 0.0
        logger.warning(
            "webhook %s: attempt %d of %d failed (%s); retrying in %.2f s",
            self._shown_url, state.attempt_number, self._attempts,
            error if isinstance(error, _ServerError) else type(error).__name__, wait_s,
        )
