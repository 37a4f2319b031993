"""The reference_server package's exception tree, written once."""

from __future__ import annotations

from collections.abc import Sequence


class ReferenceServerError(Exception):
    """Base of every error this package raises."""


class FleetConfigError(ReferenceServerError, ValueError):
    """A fleet setting is invalid; `field` names it and the message says why."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class TracingConfigError(ReferenceServerError, ValueError):
    """A tracing setting is invalid (an OTLP endpoint that is not a URL, a sample ratio out of
    [0, 1]); `field` names it."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class FleetStartError(ReferenceServerError):
    """The fleet could not start (a port is taken, every node died while starting)."""


class SupervisorError(ReferenceServerError):
    """A node process could not be started, stopped or restarted; the message says why."""


class UnknownNodeError(ReferenceServerError, LookupError):
    """A node name the fleet does not know; `known` lists the names it does know."""

    def __init__(self, node: str, known: Sequence[str]) -> None:
        self.node = node
        self.known = tuple(known)
        super().__init__(unknown_node_message(node, self.known))

    def __str__(self) -> str:  # LookupError would quote the message
        return unknown_node_message(self.node, self.known)


class CycleError(ReferenceServerError):
    """A cycle (drain, restart, wait healthy, undrain) stopped at `step`; the node stays
    drained. `status_code` is what the admin API answers (500, or 504 for a time-out)."""

    def __init__(
        self, node: str, step: str, problem: str, *, status_code: int = 500,
        left_drained: bool = True,
    ) -> None:
        self.node = node
        self.step = step
        self.status_code = status_code
        message = f"cycle {node}: {step} failed: {problem}"
        super().__init__(f"{message}; {node} stays drained" if left_drained else message)


def unknown_node_message(node: str, known: Sequence[str]) -> str:
    """The sentence of the router's 404 (remediation parses its `known:` list)."""
    return f"unknown node {node!r}; known: {', '.join(known) or '(none)'}"


class UpstreamError(ReferenceServerError):
    """A relayed request to a node failed in transport (the router's upstream pool); the
    subclass says where, as the retry and outlier accounting need to know."""


class UpstreamConnectError(UpstreamError):
    """The node refused or failed the connection (nothing was sent)."""


class UpstreamConnectTimeout(UpstreamConnectError):
    """The node did not accept the connection within the connect timeout."""


class UpstreamReadError(UpstreamError):
    """The connection broke, or the node spoke malformed HTTP, while sending or reading."""


class UpstreamReadTimeout(UpstreamError):
    """The node sent nothing for the read (or write) timeout."""
