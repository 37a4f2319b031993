"""The remediation routes of the control-plane API: act, approve, pause, read the audit trail.

`create_remediation_router(engine, log, incidents)` gives a FastAPI `APIRouter`; the control
plane's app puts the bearer-token check in front of every route. A person's request takes the
same path as an alert's (`RemediationEngine.execute`): the same guards, the same audit trail,
with the caller (`X-InferOps-Actor`, "api" when absent) as the actor. A refusal is an answer,
not an error: 200 with outcome "refused" and the guard named. Errors answer
`{"error": "<message naming the field and value>"}`: 400 bad body or query, 404 unknown node,
decision or incident, 409 a decision that is not pending approval (or no engine to act), 413
a body over the limit. A rejected request stores nothing.

Without an engine (remediation disabled in the control plane) the read routes and the kill
switch still work: the switch lives in the database, so a person can pause automation that a
second control plane runs.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from ._decision_log import Decision, DecisionLog, Outcome
from ._engine import RemediationEngine
from ._exceptions import DecisionNotFound, NotPendingApproval, RemediationError, UnknownNodeError
from ._incidents import Incident, IncidentLog
from ._policy import ACTIONS, PolicyStep
from ._switches import BreakerState, KillSwitch, SwitchBoard

logger = logging.getLogger("remediation.api")

ACTOR_HEADER = "X-InferOps-Actor"
"""Who calls (`cli:alice`, `dashboard:bob`), for the audit trail; "api" when absent."""
MAX_BODY_BYTES = 64 * 1024
MAX_LIMIT = 1000
NO_ENGINE = (
    "remediation is not enabled in this control plane (set remediation.policy_file and the "
    "fleet admin token, and remediation.enabled: true)"
)


class ActionRequest(BaseModel):
    """`POST /api/v1/remediation/actions`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    action: str
    node: str = Field(min_length=1)
    reason: str = ""
    dry_run: bool = False
    params: dict[str, str] = Field(default_factory=dict)


class ReasonRequest(BaseModel):
    """The body of approve, deny and pause."""

    model_config = ConfigDict(extra="forbid", strict=True)

    reason: str = ""


def decision_json(decision: Decision) -> dict[str, Any]:
    """A decision as the API answers it: its fields, `outcome` as its string."""
    return {
        "id": decision.id,
        "action": decision.action,
        "node": decision.node,
        "outcome": str(decision.outcome),
        "reason": decision.reason,
        "guard": decision.guard,
        "actor": decision.actor,
        "alertname": decision.alertname,
        "alert_fingerprint": decision.alert_fingerprint,
        "started_at_s": decision.started_at_s,
        "finished_at_s": decision.finished_at_s,
        "params": dict(decision.params),
        "evidence": decision.evidence,
        "incident_id": decision.incident_id,
        "approved_by": decision.approved_by,
    }


def incident_json(incident: Incident) -> dict[str, Any]:
    """An incident with its timeline (decisions, oldest first) and notes."""
    return {
        "id": incident.id,
        "title": incident.title,
        "node": incident.node,
        "alertname": incident.alertname,
        "alert_fingerprint": incident.alert_fingerprint,
        "opened_at_s": incident.opened_at_s,
        "closed_at_s": incident.closed_at_s,
        "decisions": [decision_json(decision) for decision in incident.decisions],
        "notes": list(incident.notes),
    }


def status_json(switch: KillSwitch, breaker: BreakerState) -> dict[str, Any]:
    return {
        "paused": switch.paused,
        "since_s": switch.since_s,
        "actor": switch.actor,
        "reason": switch.reason,
        "breaker": {
            "open": breaker.open, "reason": breaker.reason, "opened_at_s": breaker.opened_at_s,
        },
    }


def _error(status_code: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status_code)


def _caller(request: Request) -> str:
    return request.headers.get(ACTOR_HEADER, "").strip() or "api"


async def _body(request: Request, model: type[BaseModel]) -> tuple[Any, JSONResponse | None]:
    """The request body validated as `model` (an empty body is `{}`), or the error answer."""
    declared = request.headers.get("content-length")
    too_big = _error(413, f"body: over {MAX_BODY_BYTES} bytes")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None, too_big
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            return None, too_big
    try:
        data = json.loads(raw) if raw.strip() else {}
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return None, _error(400, f"body: not JSON: {error}")
    if not isinstance(data, Mapping):
        return None, _error(400, f"body: expected a JSON object, got {type(data).__name__}")
    try:
        return model.model_validate(data), None
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        value = first.get("input")
        shown = f" (got {value!r})" if where != "body" and first["type"] != "missing" else ""
        return None, _error(400, f"{where}: {first['msg']}{shown}")


def create_remediation_router(
    engine: RemediationEngine | None, log: DecisionLog, incidents: IncidentLog
) -> APIRouter:
    """The routes of CONTRACTS3.md; `engine` None: reads and the kill switch only."""
    router = APIRouter()
    switches = SwitchBoard(log.database)

    def status() -> dict[str, Any]:
        if engine is not None:
            return status_json(engine.kill_switch(), engine.breaker())
        return status_json(switches.kill_switch(), switches.breaker())

    @router.get("/api/v1/remediation/decisions")
    def decisions(
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
        node: str | None = None,
        outcome: str | None = None,
    ) -> Any:
        if outcome:
            try:
                Outcome(outcome)
            except ValueError:
                known = ", ".join(str(o) for o in Outcome)
                return _error(400, f"outcome: unknown outcome {outcome!r}; expected one of: "
                                   f"{known}")
        found = log.recent(limit, node=node or None, outcome=outcome or None)
        return {"decisions": [decision_json(d) for d in found]}

    @router.get("/api/v1/remediation/decisions/{decision_id}")
    def decision(decision_id: int) -> Any:
        found = log.get(decision_id)
        if found is None:
            return _error(404, str(DecisionNotFound(decision_id)))
        return {"decision": decision_json(found)}

    @router.post("/api/v1/remediation/actions")
    async def act(request: Request) -> Any:
        body, problem = await _body(request, ActionRequest)
        if problem is not None:
            return problem
        assert isinstance(body, ActionRequest)
        if body.action not in ACTIONS:
            return _error(400, f"action: unknown action {body.action!r}; expected one of: "
                               f"{', '.join(ACTIONS)}")
        try:
            PolicyStep(body.action, body.params)
        except ValueError as error:
            return _error(400, f"params: {error}")
        if engine is None:
            return _error(409, NO_ENGINE)
        who = _caller(request)
        try:
            taken = await run_in_threadpool(
                engine.execute, body.action, body.node, actor=who,
                reason=body.reason or f"manual {body.action}", params=body.params,
                dry_run=True if body.dry_run else None,
            )
        except UnknownNodeError as error:
            return _error(404, str(error))
        except RemediationError as error:
            return _error(400, str(error))
        return {"decision": decision_json(taken)}

    async def _review(request: Request, decision_id: int, verdict: str) -> Any:
        body, problem = await _body(request, ReasonRequest)
        if problem is not None:
            return problem
        assert isinstance(body, ReasonRequest)
        if engine is None:
            return _error(409, NO_ENGINE)
        who = _caller(request)
        try:
            if verdict == "approve":
                reviewed = await run_in_threadpool(engine.approve, decision_id, actor=who)
            else:
                reviewed = await run_in_threadpool(
                    engine.deny, decision_id, actor=who, reason=body.reason)
        except DecisionNotFound as error:
            return _error(404, str(error))
        except NotPendingApproval as error:
            return _error(409, str(error))
        return {"decision": decision_json(reviewed)}

    @router.post("/api/v1/remediation/decisions/{decision_id}/approve")
    async def approve(decision_id: int, request: Request) -> Any:
        return await _review(request, decision_id, "approve")

    @router.post("/api/v1/remediation/decisions/{decision_id}/deny")
    async def deny(decision_id: int, request: Request) -> Any:
        return await _review(request, decision_id, "deny")

    @router.post("/api/v1/remediation/pause")
    async def pause(request: Request) -> Any:
        body, problem = await _body(request, ReasonRequest)
        if problem is not None:
            return problem
        assert isinstance(body, ReasonRequest)
        who = _caller(request)
        if engine is not None:
            engine.pause(actor=who, reason=body.reason)
        else:
            switches.pause(actor=who, reason=body.reason, at_s=time.time())
            logger.warning("remediation paused by %s: %s", who, body.reason)
        return status()

    @router.post("/api/v1/remediation/resume")
    async def resume(request: Request) -> Any:
        _, problem = await _body(request, ReasonRequest)
        if problem is not None:
            return problem
        who = _caller(request)
        if engine is not None:
            engine.resume(actor=who)
        else:
            switches.resume(actor=who, at_s=time.time())
            logger.warning("remediation resumed by %s", who)
        return status()

    @router.get("/api/v1/remediation/status")
    def remediation_status() -> Any:
        return status()

    @router.get("/api/v1/incidents")
    def incident_list(limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50) -> Any:
        return {"incidents": [incident_json(i) for i in incidents.list(limit)]}

    @router.get("/api/v1/incidents/{incident_id}")
    def incident(incident_id: int) -> Any:
        found = incidents.get(incident_id)
        if found is None:
            return _error(404, f"no incident with id {incident_id}")
        return {"incident": incident_json(found)}

    return router
