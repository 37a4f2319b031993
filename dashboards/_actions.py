"""Actions behind auth: the dashboard reviews pending approvals through the control-plane
API (CONTRACTS3.md), never by writing the store itself.

The engineer pastes the API token once per browser session; the dashboard keeps it on the
server, keyed by a random session id (the only thing the browser holds, in session
storage, gone when the tab closes), and sends it as the bearer token with
`X-InferOps-Actor: dashboard:<name>`, so the audit trail names the person.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from typing import Any

import httpx

from ._exceptions import ControlPlaneError

__all__ = ["ControlPlaneClient", "PendingApproval", "TokenSessions"]

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
    ) -> dict[str, Any]:
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
            answer: dict[str, Any] = response.json()
        except ValueError:
            answer = {}
        if response.status_code != 200:
            message = answer.get("error") or response.reason_phrase
            raise ControlPlaneError(
                f"the control-plane API answered {response.status_code}: {message}"
            )
        return answer

    def check(self, credential: Credential) -> None:
        """Raises `ControlPlaneError` unless the API takes the token."""
        self._call(credential, "GET", "/api/v1/remediation/status")

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
