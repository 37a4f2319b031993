"""Actions behind auth: the dashboard reviews pending approvals through the control-plane
API (CONTRACTS3.md), never by writing the store itself.

The engineer pastes the API token once per browser session; the dashboard keeps it on the
server, keyed by a random session id (the only thing the browser holds, in session
storage, gone when the tab closes), and sends it as the bearer token with
`X-InferOps-Actor: dashboard:<name>`, so the audit trail names the person.
"""

from __future__ import annotations

import datetime
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

from ._exceptions import ControlPlaneError

__all__ = ["ControlPlaneClient", "PendingApproval", "SilenceRow", "TokenSessions", "parse_matchers"]

TIMEOUT_S = 5.0
VERDICTS = ("approve", "deny")


@dataclass(frozen=True, slots=True)
class PendingApproval:
    id: int
    action: str
    node: str
    reason: str
    alertname: str | None
    started_at_s: float


@dataclass(frozen=True, slots=True)
class Credential:
    token: str
    actor: str
    """`dashboard:<name>`, what the audit trail records."""


class TokenSessions:
    """Session id -> credential, in this process only (a restart signs everyone out)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_session: dict[str, Credential] = {}

    def sign_in(self, credential: Credential) -> str:
        session = secrets.token_urlsafe(24)
        with self._lock:
            self._by_session[session] = credential
        return session

    def credential(self, session: str | None) -> Credential | None:
        if not session:
            return None
        with self._lock:
            return self._by_session.get(session)

    def sign_out(self, session: str | None) -> None:
        with self._lock:
            self._by_session.pop(session or "", None)


class ControlPlaneClient:
    """The control-plane API's remediation routes; every call bounded by `timeout_s`.

    `client` is for tests and custom transports (its own timeout applies); by default one
    `httpx.Client` on `base_url` with `timeout_s` is made.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = TIMEOUT_S,
        client: httpx.Client | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._client = client or httpx.Client(base_url=self._base_url, timeout=timeout_s)

    @property
    def base_url(self) -> str:
        return self._base_url

    def close(self) -> None:
        self._client.close()

    def _call(
        self, credential: Credential, method: str, path: str, body: dict[str, Any] | None = None
    ) -> Any:
        headers = {
            "Authorization": f"Bearer {credential.token}",
            "X-InferOps-Actor": credential.actor,
        }
        try:
            response = self._client.request(method, path, json=body, headers=headers)
        except httpx.HTTPError as error:
            raise ControlPlaneError(
                f"the control-plane API at {self._base_url} did not answer ({type(error).__name__})"
            ) from None
        try:
            answer: Any = response.json()
        except ValueError:
            answer = {}
        if response.status_code != 200:
            message = (answer.get("error") if isinstance(answer, dict) else None) or (
                response.reason_phrase
            )
            raise ControlPlaneError(
                f"the control-plane API answered {response.status_code}: {message}",
                status_code=response.status_code,
            )
        return answer

    def check(self, credential: Credential) -> None:
        """Raises `ControlPlaneError` unless the API takes the token, asked on a read-only
        route of remediation, else of alerting (a control plane may serve only one)."""
        for path in ("/api/v1/remediation/status", "/api/v2/silences"):
            try:
                self._call(credential, "GET", path)
                return
            except ControlPlaneError as error:
                if error.status_code != 404:
                    raise
        raise ControlPlaneError(
            f"{self._base_url} serves neither remediation nor alerting routes", status_code=404
        )

    def pending_approvals(self, credential: Credential) -> list[PendingApproval]:
        answer = self._call(
            credential, "GET", "/api/v1/remediation/decisions?outcome=pending_approval&limit=50"
        )
        return [
            PendingApproval(
                id=int(decision["id"]),
                action=str(decision["action"]),
                node=str(decision["node"]),
                reason=str(decision["reason"]),
                alertname=decision.get("alertname"),
                started_at_s=float(decision["started_at_s"]),
            )
            for decision in answer.get("decisions", [])
        ]

    def silences(self, credential: Credential) -> list[SilenceRow]:
        """Every silence the API keeps, active and pending first, then expired."""
        found = self._call(credential, "GET", "/api/v2/silences")
        rows = [
            SilenceRow(
                id=str(one["id"]),
                state=str(one["status"]["state"]),
                matchers=_matchers_text(one["matchers"]),
                ends_at=str(one["endsAt"]),
                created_by=str(one["createdBy"]),
                comment=str(one["comment"]),
            )
            for one in found
        ]
        order = {"active": 0, "pending": 1}
        return sorted(rows, key=lambda row: (order.get(row.state, 2), row.ends_at))

    def create_silence(
        self, credential: Credential, matchers: str, duration_s: float, comment: str
    ) -> str:
        """A silence from now for `duration_s`, by the signed-in engineer; its id."""
        now_s = time.time()
        answer = self._call(
            credential,
            "POST",
            "/api/v2/silences",
            {
                "matchers": parse_matchers(matchers),
                "startsAt": _rfc3339(now_s),
                "endsAt": _rfc3339(now_s + duration_s),
                "createdBy": credential.actor,
                "comment": comment,
            },
        )
        return str(answer["silenceID"])

    def expire_silence(self, credential: Credential, silence_id: str) -> None:
        self._call(credential, "DELETE", f"/api/v2/silence/{silence_id}")

    def review(self, credential: Credential, decision_id: int, verdict: str, reason: str) -> str:
        """Approve or deny; the decision's outcome after it."""
        if verdict not in VERDICTS:
            raise ValueError(f"verdict must be approve or deny, got {verdict!r}")
        answer = self._call(
            credential,
            "POST",
            f"/api/v1/remediation/decisions/{decision_id}/{verdict}",
            {"reason": reason},
        )
        return str(answer["decision"]["outcome"])


@dataclass(frozen=True, slots=True)
class SilenceRow:
    id: str
    state: str
    matchers: str
    """As typed: `node="node-1", alertname=~"Node.*"`."""
    ends_at: str
    created_by: str
    comment: str


_OPERATORS = (("!~", True, False), ("=~", True, True), ("!=", False, False), ("=", False, True))


def parse_matchers(text: str) -> list[dict[str, Any]]:
    """`node=node-1, alertname=~Node.*` -> Alertmanager v2 matchers; a clear error naming
    the part that is not `name<op>value`."""
    matchers = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        for operator, is_regex, is_equal in _OPERATORS:
            name, found, value = part.partition(operator)
            if found and name.strip():
                matchers.append(
                    {
                        "name": name.strip(),
                        "value": value.strip().strip('"'),
                        "isRegex": is_regex,
                        "isEqual": is_equal,
                    }
                )
                break
        else:
            raise ValueError(f"matchers: {part!r} is not name=value (or !=, =~, !~)")
    if not matchers:
        raise ValueError("matchers: at least one is needed, e.g. node=node-1")
    return matchers


def _matchers_text(matchers: list[dict[str, Any]]) -> str:
    def operator(m: dict[str, Any]) -> str:
        return next(
            op
            for op, regex, equal in _OPERATORS
            if regex == bool(m.get("isRegex")) and equal == bool(m.get("isEqual", True))
        )

    return ", ".join(f'{m["name"]}{operator(m)}"{m["value"]}"' for m in matchers)


def _rfc3339(at_s: float) -> str:
    return datetime.datetime.fromtimestamp(at_s, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
