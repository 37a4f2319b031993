"""Which alert leads to which steps on which node: the policy the engine follows."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

ACTIONS: tuple[str, ...] = ("drain", "undrain", "cycle", "reroute", "profile")
"""Every node action a policy or a person can ask for; each maps to a `FleetDriver` call."""
MESSAGE_STEPS: tuple[str, ...] = ("notify", "escalate")
"""Policy steps that tell people rather than touch a node (through the engine's notify hook)."""
STEP_KINDS: tuple[str, ...] = ACTIONS + MESSAGE_STEPS
MODES: tuple[str, ...] = ("auto", "dry-run", "approval")
"""auto: act; dry-run: decide and record only; approval: record as pending approval."""

STEP_PARAMS: Mapping[str, tuple[str, ...]] = {
    "drain": (), "undrain": (), "cycle": (), "reroute": ("weight",), "profile": ("seconds",),
    "notify": ("receiver", "message"), "escalate": ("receiver", "message"),
}
"""The parameters each step kind takes."""


@dataclass(frozen=True, slots=True)
class PolicyStep:
    """One step of a policy: a node action or a message, with its parameters as strings (as
    they are stored in the audit trail)."""

    action: str
    params: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.action not in STEP_KINDS:
            raise ValueError(
                f"unknown step {self.action!r}; expected one of: {', '.join(STEP_KINDS)}"
            )
        allowed = STEP_PARAMS[self.action]
        for name in self.params:
            if name not in allowed:
                raise ValueError(
                    f"step {self.action}: unknown parameter {name!r}; "
                    f"expected: {', '.join(allowed) or 'none'}"
                )
        if self.action == "reroute":
            weight = _number(self.params.get("weight", "0"), "reroute.weight")
            if weight < 0:
                raise ValueError(f"reroute.weight must be >= 0, got {weight:g}")
        if self.action == "profile":
            seconds = _number(self.params.get("seconds", "5"), "profile.seconds")
            if not 0 < seconds <= 600:
                raise ValueError(f"profile.seconds must be in (0, 600], got {seconds:g}")


def _number(text: str, field_name: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{field_name} must be a number, got {text!r}") from None


@dataclass(frozen=True, slots=True)
class PolicyRule:
    """Alerts whose labels match `match` (equal) and `match_re` (fully matching regex, as in
    Prometheus; a missing label reads as "") lead to `steps`, in order, on the node named by
    the alert's `node_label` label. The single-`action` form (`action="drain"`) is one step;
    `dry_run=True` is `mode="dry-run"`."""

    name: str
    match: Mapping[str, str]
    match_re: Mapping[str, str]
    action: str = ""
    node_label: str = "node"
    dry_run: bool = False
    steps: tuple[PolicyStep, ...] = ()
    mode: str = "auto"

    def __post_init__(self) -> None:
        if self.action and self.action not in ACTIONS:
            raise ValueError(
                f"policy {self.name!r}: unknown action {self.action!r}; "
                f"expected one of: {', '.join(ACTIONS)}"
            )
        if self.action and self.steps:
            raise ValueError(f"policy {self.name!r}: give either action or steps, not both")
        if not self.action and not self.steps:
            raise ValueError(f"policy {self.name!r}: needs an action or at least one step")
        if self.action:
            object.__setattr__(self, "steps", (PolicyStep(self.action),))
        else:
            object.__setattr__(self, "action", self.steps[0].action)
        if self.mode not in MODES:
            raise ValueError(
                f"policy {self.name!r}: unknown mode {self.mode!r}; "
                f"expected one of: {', '.join(MODES)}"
            )
        if self.dry_run:
            object.__setattr__(self, "mode", "dry-run")
        elif self.mode == "dry-run":
            object.__setattr__(self, "dry_run", True)
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
