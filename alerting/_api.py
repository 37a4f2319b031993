"""The alerting routes of the control-plane API, in Alertmanager's v2 shapes so `amtool` works.

`create_alerting_router(...)` gives a FastAPI `APIRouter` (the control plane's app adds the
bearer-token check to every route):

- `POST /api/v1/alerts/webhook`: a real Alertmanager's version-4 webhooks in (size limit,
  schema check, then `on_webhook`, e.g. into the remediation engine);
- `GET|POST /api/v2/silences`, `GET|DELETE /api/v2/silence/{id}`: silences over the
  `SilenceStore`, as Alertmanager's API v2 takes and answers them;
- `GET /api/v2/alerts`: the firing alerts, as Alertmanager's `GettableAlert`s.

Errors answer `{"error": "<message naming the field and value>"}` with 400/404/409/413, and a
rejected request stores nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.concurrency import run_in_threadpool

from ._alert import Alert, AlertState
from ._exceptions import MatcherError, SilenceError
from ._matcher import Matcher, MatchOp, matches_all
from ._payload import rfc3339
from ._receiver import DEFAULT_MAX_BODY_BYTES, WEBHOOK_PATH, WebhookBody
from ._silence import Silence, SilenceState, SilenceStore

logger = logging.getLogger("alerting.api")

ACTOR_HEADER = "X-InferOps-Actor"
"""Who calls the API, for the audit trail (`cli:alice`); "api" when absent."""

_OPS = {
    (False, True): MatchOp.EQUAL,
    (False, False): MatchOp.NOT_EQUAL,
    (True, True): MatchOp.REGEX,
    (True, False): MatchOp.NOT_REGEX,
}


class ApiMatcher(BaseModel):
    """Alertmanager v2's matcher: `isEqual` defaults to true, as in Alertmanager."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str
    value: str
    isRegex: bool
    isEqual: bool = True


class PostableSilence(BaseModel):
    """Alertmanager v2's `PostableSilence`; with an `id`, it replaces that silence."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    matchers: list[ApiMatcher]
    startsAt: datetime
    endsAt: datetime
    createdBy: str
    comment: str


def api_error(status_code: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status_code)


def _field(location: Sequence[int | str]) -> str:
    text = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in location)
    return text[1:] or "(body)"


def _validation_message(error: ValidationError) -> str:
    first = error.errors()[0]
    return f"{_field(tuple(first['loc']))}: {first['msg']}"


async def _read_json(request: Request, max_body_bytes: int) -> tuple[Any, JSONResponse | None]:
    declared = request.headers.get("content-length")
    too_big = api_error(413, f"body: over {max_body_bytes} bytes")
    if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
        return None, too_big
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_body_bytes:
            return None, too_big
    try:
        return json.loads(body), None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return None, api_error(400, f"body: not JSON: {error}")


def silence_json(silence: Silence, at_s: float) -> dict[str, Any]:
    """A silence as Alertmanager v2's `GettableSilence`."""
    return {
        "id": silence.id,
        "status": {"state": str(silence.state(at_s))},
        "updatedAt": rfc3339(silence.created_at_s),
        "matchers": [
            {
                "name": m.name,
                "value": m.value,
                "isRegex": m.op in (MatchOp.REGEX, MatchOp.NOT_REGEX),
                "isEqual": m.op in (MatchOp.EQUAL, MatchOp.REGEX),
            }
            for m in silence.matchers
        ],
        "startsAt": rfc3339(silence.starts_at_s),
        "endsAt": rfc3339(silence.ends_at_s),
        "createdBy": silence.created_by,
        "comment": silence.comment,
    }


def alert_json(alert: Alert, receiver: str) -> dict[str, Any]:
    """A firing alert as Alertmanager v2's `GettableAlert`."""
    muted = bool(alert.silenced_by or alert.inhibited_by)
    updated = alert.last_evaluated_at_s or alert.fired_at_s or alert.active_at_s
    return {
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "startsAt": rfc3339(alert.fired_at_s or alert.active_at_s),
        "endsAt": "0001-01-01T00:00:00.000Z",
        "updatedAt": rfc3339(updated),
        "fingerprint": alert.fingerprint,
        "generatorURL": alert.generator_url,
        "receivers": [{"name": receiver}],
        "status": {
            "state": "suppressed" if muted else "active",
            "silencedBy": list(alert.silenced_by),
            "inhibitedBy": list(alert.inhibited_by),
        },
    }


_Filter = Annotated[list[str] | None, Query(alias="filter")]
"""Alertmanager's `filter` query parameter: matchers, repeatable."""


def _filters(filter_: list[str]) -> tuple[list[Matcher], JSONResponse | None]:
    try:
        return [Matcher.parse(text.strip("{}")) for text in filter_], None
    except MatcherError as error:
        return [], api_error(400, f"filter: {error}")


def create_alerting_router(
    *,
    silences: SilenceStore,
    active_alerts: Callable[[], Sequence[Alert]],
    on_webhook: Callable[[Mapping[str, Any]], object] | None,
    clock: Callable[[], float],
    receiver: str = "inferops",
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> APIRouter:
    """The alerting routes; `on_webhook` runs on a worker thread (it may block, as the
    remediation engine does while it verifies an action); None answers 409."""
    router = APIRouter()

    @router.post(WEBHOOK_PATH)
    async def webhook(request: Request) -> JSONResponse:
        raw, problem = await _read_json(request, max_body_bytes)
        if problem is not None:
            return problem
        try:
            WebhookBody.model_validate(raw)
        except ValidationError as error:
            return api_error(400, _validation_message(error))
        if on_webhook is None:
            return api_error(409, "remediation is disabled: nothing takes alert webhooks")
        try:
            await run_in_threadpool(on_webhook, raw)
        except Exception:
            logger.exception("handling a %s webhook of %d alert(s) failed",
                             raw["status"], len(raw["alerts"]))
            return JSONResponse({"error": "the notification could not be handled; retry"},
                                status_code=500)
        return JSONResponse({"status": "accepted", "alerts": len(raw["alerts"])})

    @router.get("/api/v2/silences")
    def list_silences(filter_: _Filter = None) -> JSONResponse:
        matchers, problem = _filters(filter_ or [])
        if problem is not None:
            return problem
        now = clock()
        found = [
            silence_json(s, now)
            for s in silences.list(include_expired=True)
            if matches_all(matchers, {m.name: m.value for m in s.matchers})
        ]
        return JSONResponse(found)

    @router.post("/api/v2/silences")
    async def post_silence(request: Request) -> JSONResponse:
        raw, problem = await _read_json(request, max_body_bytes)
        if problem is not None:
            return problem
        try:
            body = PostableSilence.model_validate(raw)
            matchers = [
                Matcher(m.name, m.value, _OPS[(m.isRegex, m.isEqual)]) for m in body.matchers
            ]
        except ValidationError as error:
            return api_error(400, _validation_message(error))
        except MatcherError as error:
            return api_error(400, f"matchers: {error}")
        created_by = body.createdBy or request.headers.get(ACTOR_HEADER, "api")
        now = clock()
        try:
            if body.id is not None:
                old = silences.get(body.id)
                if old.state(now) == SilenceState.EXPIRED:
                    return api_error(409, f"id: silence {body.id!r} has expired")
            silence = silences.create(
                matchers, starts_at_s=max(body.startsAt.timestamp(), now),
                ends_at_s=body.endsAt.timestamp(), created_by=created_by,
                comment=body.comment, now_s=now,
            )
        except SilenceError as error:
            status = 404 if str(error).startswith("id:") else 400
            return api_error(status, str(error))
        if body.id is not None:
            silences.expire(body.id, now_s=now)
        logger.info("silence %s created by %s: %s", silence.id, created_by,
                    ", ".join(map(str, silence.matchers)))
        return JSONResponse({"silenceID": silence.id})

    @router.get("/api/v2/silence/{silence_id}")
    def get_silence(silence_id: str) -> JSONResponse:
        try:
            return JSONResponse(silence_json(silences.get(silence_id), clock()))
        except SilenceError as error:
            return api_error(404, str(error))

    @router.delete("/api/v2/silence/{silence_id}")
    def delete_silence(silence_id: str, request: Request) -> Response:
        try:
            silence = silences.expire(silence_id, now_s=clock())
        except SilenceError as error:
            return api_error(404, str(error))
        logger.info("silence %s expired by %s", silence.id,
                    request.headers.get(ACTOR_HEADER, "api"))
        return Response(status_code=200)

    @router.get("/api/v2/alerts")
    def list_alerts(
        filter_: _Filter = None,
        active: bool = True,
        silenced: bool = True,
        inhibited: bool = True,
    ) -> JSONResponse:
        matchers, problem = _filters(filter_ or [])
        if problem is not None:
            return problem
        shown = []
        for alert in active_alerts():
            if alert.state != AlertState.FIRING or not matches_all(matchers, alert.labels):
                continue
            muted = bool(alert.silenced_by or alert.inhibited_by)
            if (not muted and not active) or (alert.silenced_by and not silenced) or (
                alert.inhibited_by and not inhibited
            ):
                continue
            shown.append(alert_json(alert, receiver))
        return JSONResponse(shown)

    return router
