"""WebhookNotifier against a real HTTP server on 127.0.0.1 that records every request."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import pytest
from alerting_doubles import FIXTURE, WebhookServer, running

from alerting import NotificationError, WebhookNotifier

SECRET = "s3cr3t-do-not-print"
PAYLOAD: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))


def fast(
    url: str, *, secret: str | None = None, timeout_s: float = 5.0, attempts: int = 3
) -> WebhookNotifier:
    """A notifier whose retries wait milliseconds, not seconds."""
    return WebhookNotifier(
        url, secret=secret, timeout_s=timeout_s, attempts=attempts, backoff_s=0.01,
        max_backoff_s=0.05,
    )


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[WebhookServer]:
    options = getattr(request, "param", {})
    yield from running(WebhookServer(**options))


def test_the_body_is_compact_utf8_json_signed_with_the_secret(server: WebhookServer) -> None:
    payload = {**PAYLOAD, "commonAnnotations": {"summary": "nœud-1 répond mal"}}
    with WebhookNotifier(server.url, secret=SECRET, timeout_s=5.0) as notifier:
        notifier.notify(payload)

    [request] = server.requests
    assert (request.method, request.path) == ("POST", "/hooks/inferops")
    assert request.json() == payload
    assert request.body == json.dumps(
        payload, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"].startswith("InferOps/")
    expected = hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-InferOps-Signature"] == f"sha256={expected}"


def test_without_a_secret_there_is_no_signature(server: WebhookServer) -> None:
    with WebhookNotifier(server.url) as notifier:
        notifier.notify(PAYLOAD)
    [request] = server.requests
    assert "X-InferOps-Signature" not in request.headers


RETRIES = [
    ("a 503 is retried and the next attempt delivers", [503], 2, None),
    ("a 500 twice is retried twice", [500, 500], 3, None),
    ("a 503 on every attempt fails after the last one", [503, 503, 503], 3, 503),
    ("a 400 is not retried", [400], 1, 400),
    ("a 404 is not retried", [404], 1, 404),
]


@pytest.mark.parametrize(
    ("server", "attempts_seen", "failed_with"),
    [({"statuses": case[1]}, case[2], case[3]) for case in RETRIES],
    ids=[case[0] for case in RETRIES],
    indirect=["server"],
)
def test_server_errors_are_retried_and_client_errors_are_not(
    server: WebhookServer, attempts_seen: int, failed_with: int | None
) -> None:
    notifier = fast(server.url, secret=SECRET, attempts=3)
    if failed_with is None:
        notifier.notify(PAYLOAD)
    else:
        with pytest.raises(NotificationError) as caught:
            notifier.notify(PAYLOAD)
        assert caught.value.status_code == failed_with
        assert server.url in str(caught.value)
        assert SECRET not in str(caught.value)
    notifier.close()
    assert len(server.requests) == attempts_seen
    bodies = {request.body for request in server.requests}
    signatures = {request.headers["X-InferOps-Signature"] for request in server.requests}
    assert len(bodies) == len(signatures) == 1  # every attempt sends the very same bytes


@pytest.mark.parametrize(
    "server", [{"slow": {0}, "delay_s": 1.0}], ids=["the first answer is late"], indirect=True
)
def test_a_timeout_is_retried(server: WebhookServer) -> None:
    with fast(server.url, timeout_s=0.2, attempts=2) as notifier:
        notifier.notify(PAYLOAD)
    assert len(server.requests) == 2


def test_a_receiver_that_is_gone_fails_naming_the_url_and_not_the_secret() -> None:
    server = WebhookServer().start()
    url = server.url
    server.stop()
    with (
        fast(url, secret=SECRET, timeout_s=1.0, attempts=2) as notifier,
        pytest.raises(NotificationError) as caught,
    ):
        notifier.notify(PAYLOAD)
    message = str(caught.value)
    assert message.startswith(f"cannot reach the webhook {url} after 2 attempts: ConnectError")
    assert SECRET not in message
    assert caught.value.url == url


def test_a_password_in_the_url_is_masked_in_errors() -> None:
    server = WebhookServer().start()
    port = server.url.split(":")[2].split("/")[0]
    server.stop()
    url = f"http://alert:hunter2@127.0.0.1:{port}/hook"
    with WebhookNotifier(url, attempts=1) as notifier, pytest.raises(NotificationError) as caught:
        notifier.notify(PAYLOAD)
    assert "hunter2" not in str(caught.value)
    assert f"http://alert:***@127.0.0.1:{port}/hook" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "keywords", "message"),
    [
        ("ftp://example.com/hook", {}, "expected an http"),
        ("http://127.0.0.1:1/hook", {"attempts": 0}, "attempts must be >= 1"),
        ("http://127.0.0.1:1/hook", {"timeout_s": 0.0}, "timeout_s must be > 0"),
    ],
    ids=["a URL that is not http", "zero attempts", "a zero timeout"],
)
def test_bad_webhook_settings_are_refused(url: str, keywords: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WebhookNotifier(url, **keywords)
