"""Inhibition rules, as Alertmanager has them, and the dead-man's-switch rule.

An inhibition rule mutes the target alerts while a source alert fires with the same values
of the `equal` labels: `InhibitRule(["alertname=NodeDown"], ["alertname=NodeHighLatency"],
["node"])` stops paging about a node's latency while that node is down. As in Alertmanager,
an alert that matches both sides of a rule is not muted by alerts that do too (so it cannot
mute itself), and a label missing on both sides counts as equal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from slo import AlertingRule

from ._exceptions import MatcherError
from ._matcher import Matcher, matches_all

WATCHDOG_ALERT = "Watchdog"


@dataclass(frozen=True, slots=True)
class InhibitRule:
    source_matchers: tuple[Matcher, ...]
    target_matchers: tuple[Matcher, ...]
    equal: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        source: Sequence[Matcher | str],
        target: Sequence[Matcher | str],
        equal: Sequence[str] = (),
    ) -> InhibitRule:
        """A rule from matchers as text (`'alertname="NodeDown"'`) or `Matcher`s."""
        if not source or not target:
            raise MatcherError(
                "inhibit rule: source_matchers and target_matchers each need a matcher"
            )
        return cls(_parsed(source), _parsed(target), tuple(equal))

    def inhibits(self, source: Mapping[str, str], target: Mapping[str, str]) -> bool:
        if not matches_all(self.target_matchers, target):
            return False
        if not matches_all(self.source_matchers, source):
            return False
        if matches_all(self.source_matchers, target) and matches_all(
            self.target_matchers, source
        ):
            return False
        return all(source.get(name, "") == target.get(name, "") for name in self.equal)


def _parsed(matchers: Sequence[Matcher | str]) -> tuple[Matcher, ...]:
    return tuple(m if isinstance(m, Matcher) else Matcher.parse(m) for m in matchers)


def inhibited_by(
    rules: Sequence[InhibitRule],
    target: Mapping[str, str],
    firing: Iterable[tuple[str, Mapping[str, str]]],
) -> tuple[str, ...]:
    """The fingerprints of the firing alerts (fingerprint, labels) that inhibit `target`."""
    if not rules:
        return ()
    return tuple(sorted({
        fingerprint for fingerprint, labels in firing
        if any(rule.inhibits(labels, target) for rule in rules)
    }))


def watchdog_rule(
    labels: Mapping[str, str] | None = None, annotations: Mapping[str, str] | None = None
) -> AlertingRule:
    """The dead-man's switch: an alert that always fires (`vector(1)`), so a receiver that
    stops getting it knows the pipeline (scrape, evaluation, notification) is down. Route it
    to a heartbeat service with a short `repeat_interval_s`, not to a pager."""
    return AlertingRule(
        WATCHDOG_ALERT,
        "vector(1)",
        labels=dict(labels) if labels is not None else {"severity": "none"},
        annotations=dict(annotations) if annotations is not None else {
            "summary": "Alerting pipeline is alive",
            "description": "This alert always fires. If it stops arriving, rule evaluation "
            "or notification delivery is broken.",
        },
    )
