"""Notifications in: an HTTP endpoint that takes Alertmanager's version-4 webhooks.

`create_alert_receiver_app(on_payload, token=...)` serves `POST /api/v1/alerts/webhook`, so
a real Alertmanager (or our own engine's `WebhookNotifier`) can drive the remediation engine.
Every request needs `Authorization: Bearer <token>` (401 otherwise: it changes the fleet);
the body is read up to `max_body_bytes` (413 beyond), parsed and validated against the v4
schema (400 for bytes that are not JSON, 422 naming the field for a wrong shape) before
`on_payload` sees it, so a bad body stores and triggers nothing. `on_payload` gets the body
as it came (a dict, times still RFC 3339 strings); if it raises, the answer is 500 and
Alertmanager retries.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

logger = logging.getLogger("alerting.receiver")

WEBHOOK_PATH = "/api/v1/alerts/webhook"
DEFAULT_MAX_BODY_BYTES = 1 << 20


class WebhookAlert(BaseModel):
    """One alert of an Alertmanager v4 body (unknown fields are allowed: newer versions add
    some)."""

    model_config = ConfigDict(extra="allow", strict=False)

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime
    endsAt: datetime
    generatorURL: str = ""
    fingerprint: str = ""


class WebhookBody(BaseModel):
    """Alertmanager's version-4 webhook body."""

    model_config = ConfigDict(extra="allow", strict=False)

    version: Literal["4"]
    groupKey: str
    truncatedAlerts: int = Field(default=0, ge=0)
    status: Literal["firing", "resolved"]
    receiver: str
    groupLabels: dict[str, str]
    commonLabels: dict[str, str]
    commonAnnotations: dict[str, str]
    externalURL: str
    alerts: list[WebhookAlert]


def _error(status_code: int, detail: object, **headers: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status_code, headers=headers or None)


def _field(location: tuple[int | str, ...]) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in location)[
        1:
    ] or "(body)"


def create_alert_receiver_app(
    on_payload: Callable[[Mapping[str, Any]], object],
    *,
    token: str,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> FastAPI:
    """The webhook receiver app; `on_payload` runs on a worker thread (it may block, as the
    remediation engine does while it verifies an action)."""
    if not token:
        raise ValueError("token must be set: the webhook changes the fleet")
    if max_body_bytes < 1:
        raise ValueError(f"max_body_bytes must be >= 1, got {max_body_bytes!r}")
    expected = f"Bearer {token}".encode()
    app = FastAPI(title="InferOps alert receiver", docs_url=None, redoc_url=None)

    @app.post(WEBHOOK_PATH)
    async def receive(request: Request) -> JSONResponse:
        given = request.headers.get("authorization", "").encode("utf-8", "replace")
        if not hmac.compare_digest(given, expected):
            return _error(401, "missing or wrong bearer token", **{"WWW-Authenticate": "Bearer"})
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
            return _error(413, f"body over {max_body_bytes} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_body_bytes:
                return _error(413, f"body over {max_body_bytes} bytes")
        try:
            raw = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            return _error(400, f"body is not JSON: {error}")
        try:
            WebhookBody.model_validate(raw)
        except ValidationError as error:
            problems = [
                {"field": _field(tuple(e["loc"])), "error": e["msg"]} for e in error.errors()
            ]
            return _error(422, problems)
        alerts = len(raw["alerts"])
        try:
            await run_in_threadpool(on_payload, raw)
        except Exception:
            logger.exception("handling a %s notification of %d alert(s) failed",
                             raw["status"], alerts)
            return _error(500, "the notification could not be handled; retry")
        return JSONResponse({"status": "accepted", "alerts": alerts})

    return app
