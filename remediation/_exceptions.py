"""The remediation package's exception tree, written once."""

from __future__ import annotations

from collections.abc import Sequence


class RemediationError(Exception):
    """Base of every error this package raises."""


class FleetDriverError(RemediationError):
    """The fleet could not be read or did not carry out an action; the message says why."""


class UnknownNodeError(FleetDriverError):
    """A node name the fleet does not know; callers can list the names it does know."""

    def __init__(self, node: str, known: Sequence[str], message: str | None = None) -> None:
        self.node = node
        self.known = tuple(known)
        super().__init__(message or unknown_node_message(node, self.known))


class PolicyError(RemediationError):
    """A remediation policy file is wrong; the message names the file, line and field."""

    def __init__(self, filename: str, line: int | None, field: str | None, problem: str) -> None:
        self.filename = filename
        self.line = line
        self.field = field
        self.problem = problem
        where = filename if line is None else f"{filename}:{line}"
        super().__init__(f"{where}: {field}: {problem}" if field else f"{where}: {problem}")


def unknown_node_message(node: str, known: Sequence[str]) -> str:
    """The same sentence the reference router answers a 404 with."""
    return f"unknown node {node!r}; known: {', '.join(known) or '(none)'}"


class DecisionNotFound(RemediationError):
    """No decision has this id; the API answers 404, the CLI exits 2."""

    def __init__(self, decision_id: int) -> None:
        self.decision_id = decision_id
        super().__init__(f"no remediation decision with id {decision_id}")


class NotPendingApproval(RemediationError):
    """Approve or deny of a decision that is not waiting for approval; the API answers 409."""

    def __init__(self, decision_id: int, outcome: str) -> None:
        self.decision_id = decision_id
        self.outcome = outcome
        super().__init__(
            f"decision {decision_id} is not pending approval (its outcome is {outcome})"
        )
