"""Which alert leads to which action on which node: the policy the engine follows."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

ACTIONS: tuple[str, ...] = ("drain", "undrain", "cycle")
"""Every action a policy or a person can ask for; each maps to one `FleetDriver` method."""


@dataclass(frozen=True, slots=True)
class PolicyRule:
    """Alerts whose labels match `match` (equal) and `match_re` (fully matching regex, as in
    Prometheus; a missing label reads as "") lead to `action` on the node named by the
    alert's `node_label` label."""

    name: str
    match: Mapping[str, str]
    match_re: Mapping[str, str]
    action: str
    node_label: str = "node"
    dry_run: bool = False

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(
                f"policy {self.name!r}: unknown action {self.action!r}; "
                f"expected one of: {', '.join(ACTIONS)}"
            )
        for label, pattern in self.match_re.items():
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(
                    f"policy {self.name!r}: match_re.{label}: invalid regex {pattern!r}: {error}"
                ) from None

    def matches(self, labels: Mapping[str, str]) -> bool:
        """True when every matcher accepts the alert's labels."""
        if any(labels.get(label, "") != value for label, value in self.match.items()):
            return False
        return all(
            re.fullmatch(pattern, labels.get(label, "")) is not None
            for label, pattern in self.match_re.items()
        )


@dataclass(frozen=True, slots=True)
class RemediationPolicy:
    """Rules in the order they were written; the first that matches an alert decides."""

    rules: tuple[PolicyRule, ...]

    def match(self, labels: Mapping[str, str]) -> PolicyRule | None:
        """The first rule that matches `labels`, or None when no rule does."""
        return next((rule for rule in self.rules if rule.matches(labels)), None)
