"""`FleetDriver` over the reference fleet's router admin API (bearer-token HTTP)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from ._diagnosis import ProfileTable, profile_table
from ._driver import NodeState, NodeStatus
from ._exceptions import FleetDriverError, UnknownNodeError

PROFILE_EVERY_STEPS = 2
PROFILE_GRACE_S = 120.0
_KNOWN = re.compile(r"^unknown node .*; known: (?P<names>.*)$")
"""The router's 404 sentence for a node it does not know (`unknown_node_message`)."""


class ReferenceFleetDriver:
    """Talks to the router at `router_url`. `cycle` waits up to `cycle_timeout_s` because the
    router answers only once the restarted node serves again; every other call waits up to
    `timeout_s`. The admin token goes into a header and nowhere else."""

    def __init__(
        self,
        router_url: str,
        *,
        admin_token: str,
        timeout_s: float = 5.0,
        cycle_timeout_s: float = 90.0,
    ) -> None:
        if not admin_token:
            raise ValueError("admin_token must not be empty")
        self._url = router_url.rstrip("/")
        self._timeout_s = timeout_s
        self._cycle_timeout_s = cycle_timeout_s
        self._client = httpx.Client(
            base_url=self._url,
            headers={"Authorization": f"Bearer {admin_token}"},
            timeout=timeout_s,
        )

    def __repr__(self) -> str:
        return f"ReferenceFleetDriver({self._url!r})"

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ReferenceFleetDriver:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def nodes(self) -> list[NodeState]:
        body = self._call("GET", "/admin/nodes")
        nodes = body.get("nodes")
        if not isinstance(nodes, list):
            raise FleetDriverError(
                f"the fleet router at {self._url} answered GET /admin/nodes without a 'nodes' list"
            )
        return [self._node_state(node, "GET /admin/nodes") for node in nodes]

    def drain(self, node: str) -> None:
        self._node_action(node, "drain", self._timeout_s)

    def undrain(self, node: str) -> None:
        self._node_action(node, "undrain", self._timeout_s)

    def cycle(self, node: str) -> None:
        self._node_action(node, "cycle", self._cycle_timeout_s)

    def set_weight(self, node: str, weight: float) -> None:
        """`POST /admin/nodes/{node}/weight` {"weight": w}: 0 sends the node no new traffic."""
        self._node_action(node, "weight", self._timeout_s, {"weight": weight})

    def profile(self, node: str, seconds: float) -> ProfileTable:
        """`POST /admin/nodes/{node}/profile` {"seconds": s}, sampling one step in
        `PROFILE_EVERY_STEPS` (cheaper on a serving node, and the shares stay comparable);
        waits the profile out, plus `PROFILE_GRACE_S` to summarise it on a busy node."""
        path = f"/admin/nodes/{quote(node, safe='')}/profile"
        body = self._call(
            "POST", path, node=node, timeout_s=seconds + PROFILE_GRACE_S,
            json_body={"seconds": seconds, "top": 50, "every_steps": PROFILE_EVERY_STEPS},
        )
        return profile_table(node, body)

    def _node_action(self, node: str, action: str, timeout_s: float,
                     json_body: Mapping[str, Any] | None = None) -> None:
        path = f"/admin/nodes/{quote(node, safe='')}/{action}"
        body = self._call("POST", path, node=node, timeout_s=timeout_s, json_body=json_body)
        self._node_state(body.get("node"), f"POST {path}")

    def _call(
        self, method: str, path: str, *, node: str | None = None, timeout_s: float | None = None,
        json_body: Mapping[str, Any] | None = None,
    ) -> Mapping[str, Any]:
        what = f"{method} {path}"
        timeout = self._timeout_s if timeout_s is None else timeout_s
        try:
            response = self._client.request(method, path, timeout=timeout,
                                            json=None if json_body is None else dict(json_body))
        except httpx.TimeoutException:
            raise FleetDriverError(
                f"the fleet router at {self._url} did not answer {what} within {timeout:g} s"
            ) from None
        except httpx.HTTPError as error:
            raise FleetDriverError(
                f"cannot reach the fleet router at {self._url} ({what}): {error}"
            ) from None
        if response.status_code == 401:
            raise FleetDriverError(
                f"the fleet router at {self._url} refused the admin token ({what} answered 401)"
            )
        try:
            body = response.json()
        except ValueError:
            body = None
        message = _error_message(body)
        # Only the router's unknown-node sentence names an unknown node; any other 404 means
        # the URL is not the router's admin API, and is reported as it came, below.
        match = _KNOWN.search(message or "") if response.status_code == 404 else None
        if match is not None and node is not None:
            names = match.group("names")
            known = [] if names == "(none)" else names.split(", ")
            raise UnknownNodeError(node, known, message)
        if response.status_code != 200:
            detail = message or response.text[:200] or "(empty body)"
            raise FleetDriverError(
                f"the fleet router at {self._url} answered {what} with "
                f"{response.status_code}: {detail}"
            )
        if not isinstance(body, Mapping):
            raise FleetDriverError(
                f"the fleet router at {self._url} answered {what} with a body that is not JSON"
            )
        return body

    def _node_state(self, raw: object, what: str) -> NodeState:
        try:
            if not isinstance(raw, Mapping):
                raise TypeError(raw)
            return NodeState(
                name=str(raw["name"]),
                status=NodeStatus(raw["status"]),
                healthy=bool(raw["healthy"]),
                in_flight=int(raw["in_flight"]),
                url=str(raw.get("url", "")),
            )
        except (KeyError, ValueError, TypeError):
            raise FleetDriverError(
                f"the fleet router at {self._url} answered {what} with a node this driver "
                f"cannot read: {raw!r:.200}"
            ) from None


def _error_message(body: object) -> str | None:
    """The `error.message` of an OpenAI-shaped error body, if that is what `body` is."""
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping) and isinstance(error.get("message"), str):
            return str(error["message"])
    return None
