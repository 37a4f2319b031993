"""Alerting rules evaluated as Prometheus evaluates them, notified as Alertmanager would.

Each round, for every rule: each element of the expression's result is an alert instance
whose labels are the element's labels (without `__name__`), then the rule's labels, then
`alertname`. A new instance is pending; once it has been active for the rule's `for` it
fires (`for: 0` fires at once); when it is no longer in the result it is resolved. A later
activation of the same labels is a new instance. A rule whose query fails is skipped for the
round and its alerts keep their state.

Alerts that fired or resolved in the round are grouped by the `group_by` labels and every
notifier gets one Alertmanager version-4 body per group; groups that keep firing are sent
again every `repeat_interval_s`. Instances are stored as they change, so a restarted engine
continues where the last one stopped.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from collectors import InstantSample, MetricSource
from slo import AlertingRule

from ._alert import Alert, AlertState, Notifier
from ._exceptions import RuleEvaluationError
from ._fingerprint import fingerprint
from ._grouping import NotificationPlanner, reached
from ._inhibition import InhibitRule
from ._outbox import OutboxEntry, outbox_entries
from ._payload import generator_url
from ._silence import SilenceStore
from ._store import AlertInstance, AlertStore
from ._template import expand_template

logger = logging.getLogger("alerting")

DEFAULT_REPEAT_INTERVAL_S = 4 * 3600.0
"""Alertmanager's default `repeat_interval`."""

_METRIC_NAME = "__name__"
_ALERT_NAME = "alertname"
_LabelKey = tuple[tuple[str, str], ...]


@dataclass(slots=True)
class _RuleState:
    rule: AlertingRule
    key: str
    generator_url: str
    active: dict[_LabelKey, AlertInstance] = field(default_factory=dict)
    failing: bool = False


@dataclass(slots=True)
class _Element:
    labels: dict[str, str]
    annotations: dict[str, str]
    value: float


def rule_key(rule: AlertingRule) -> str:
    """What ties a stored alert to its rule across restarts: the alert name, expression and
    labels (editing `for` or annotations keeps the rule's alerts)."""
    identity = json.dumps([rule.alert, rule.expr, sorted(rule.labels.items())])
    return hashlib.sha256(identity.encode("utf-8")).hexdigest()[:32]


def _label_key(labels: dict[str, str]) -> _LabelKey:
    return tuple(sorted(labels.items()))





class AlertEngine:
    """Evaluates `rules` against `source` on each `evaluate(at_s)`; state in `store`
    (an `AlertStore`, or a SQLAlchemy engine to make one on)."""

    def __init__(
        self,
        source: MetricSource,
        store: AlertStore | sa.Engine,
        rules: Sequence[AlertingRule],
        notifiers: Sequence[Notifier] = (),
        *,
        external_url: str = "http://127.0.0.1:8050",
        group_by: Sequence[str] = (_ALERT_NAME,),
        receiver: str = "inferops",
        repeat_interval_s: float = DEFAULT_REPEAT_INTERVAL_S,
        outbox_receivers: Sequence[str] = (),
        group_wait_s: float = 0.0,
        group_interval_s: float = 0.0,
        silences: SilenceStore | None = None,
        inhibit_rules: Sequence[InhibitRule] = (),
    ) -> None:
        if repeat_interval_s <= 0:
            raise ValueError(f"repeat_interval_s must be > 0, got {repeat_interval_s!r}")
        for rule in rules:
            if rule.for_s < 0:
                raise ValueError(
                    f"alerting rule {rule.alert}: for must be >= 0, got {rule.for_s!r}"
                )
        self._source = source
        self._store = store if isinstance(store, AlertStore) else AlertStore(store)
        self._notifiers = tuple(notifiers)
        self._external_url = external_url
        self._group_by = tuple(group_by)
        self._receiver = receiver
        self._repeat_interval_s = repeat_interval_s
        self._outbox_receivers = tuple(dict.fromkeys(outbox_receivers))
        self._planner = NotificationPlanner(
            group_by=group_by, receiver=receiver, external_url=external_url,
            repeat_interval_s=repeat_interval_s, group_wait_s=group_wait_s,
            group_interval_s=group_interval_s, silences=silences, inhibit_rules=inhibit_rules,
        )
        self._unsaved_outbox: list[OutboxEntry] = []
        self._lock = threading.Lock()
        self._rules: list[_RuleState] = []
        seen: dict[str, int] = {}
        for rule in rules:
            key = rule_key(rule)
            seen[key] = seen.get(key, 0) + 1
            if seen[key] > 1:  # the very same rule twice: Prometheus evaluates both
                key = f"{key}#{seen[key]}"
            self._rules.append(
                _RuleState(rule, key, generator_url(external_url, rule.expr))
            )
        self._orphans: list[AlertInstance] = []
        self._unsaved: list[AlertInstance] = []
        self._restore()

    @property
    def store(self) -> AlertStore:
        return self._store

    def _restore(self) -> None:
        by_key = {state.key: state for state in self._rules}
        restored = 0
        for instance in self._store.open_instances():
            state = by_key.get(instance.rule_key)
            if state is None:
                self._orphans.append(instance)
            else:
                state.active[_label_key(instance.labels)] = instance
                restored += 1
        if restored or self._orphans:
            logger.info(
                "restored %d open alert(s); %d belong to rules no longer configured and "
                "resolve at the next evaluation", restored, len(self._orphans),
            )

    def active(self) -> list[Alert]:
        """The engine's pending and firing alerts, in rule order; a firing alert muted in
        the last round carries the silences (`silenced_by`) and alerts (`inhibited_by`)
        that muted it."""
        with self._lock:
            return [
                self._shown(instance)
                for state in self._rules for instance in state.active.values()
            ]

    def _shown(self, instance: AlertInstance) -> Alert:
        alert = instance.to_alert()
        muting = self._planner.muting.get(instance.fingerprint)
        if muting is None or instance.state != AlertState.FIRING:
            return alert
        return dataclasses.replace(alert, silenced_by=muting[0], inhibited_by=muting[1])

    def evaluate(self, at_s: float) -> list[Alert]:
        """One round at `at_s` (unix seconds): the alerts whose state changed (new pending,
        fired, resolved), after storing them and notifying.

        A database error does not stop the round: it is logged, notifications still go out,
        and the unsaved alerts are written with the next round."""
        at_s = float(at_s)
        with self._lock:
            changed: list[AlertInstance] = []
            touched: list[AlertInstance] = []
            fired: list[AlertInstance] = []
            resolved: list[AlertInstance] = []
            for instance in self._orphans:
                self._resolve(instance, at_s, changed, resolved)
            touched.extend(self._orphans)
            self._orphans = []
            for state in self._rules:
                try:
                    elements = self._elements(state.rule, self._source.query(state.rule.expr, at_s))
                except Exception as error:
                    # Once per failure streak at WARNING: a broken rule must not flood the log.
                    logger.log(
                        logging.DEBUG if state.failing else logging.WARNING,
                        "skipping alerting rule %s this round: %s%s", state.rule.alert,
                        error if isinstance(error, RuleEvaluationError)
                        else f"query failed: {error!r}",
                        "" if state.failing else " (logged once until the rule works again)",
                    )
                    state.failing = True
                    continue
                if state.failing:
                    state.failing = False
                    logger.info("alerting rule %s evaluates again", state.rule.alert)
                self._apply(state, elements, at_s, changed, touched, fired, resolved)
            unsaved, self._unsaved = self._unsaved, []
            unsent, self._unsaved_outbox = self._unsaved_outbox, []
            firing = [
                instance for state in self._rules for instance in state.active.values()
                if instance.state == AlertState.FIRING
            ]
            sent, payloads = self._planner.plan(at_s, firing, resolved)
            entries = [
                entry for _, payload in payloads
                for entry in outbox_entries(self._outbox_receivers, payload, at_s)
            ]
            # With in-process notifiers, "notified" is stored only after they were called, so a
            # crash in between notifies them again after the restart (and the outbox gets that
            # group again under a new sequence); with the outbox alone, it is one transaction.
            at_once = not self._notifiers
            if at_once:
                _mark_notified(sent, at_s)
            self._save([*unsaved, *touched, *(sent if at_once else [])], [*unsent, *entries])
            for key, payload in payloads:
                self._deliver(key, payload)
            if sent and not at_once:
                _mark_notified(sent, at_s)
                self._save(sent, [])
            return [self._shown(instance) for instance in changed]

    def _save(self, instances: list[AlertInstance], entries: list[OutboxEntry]) -> None:
        """Alert changes and the outbox rows they cause, in one transaction."""
        unique = list({id(instance): instance for instance in instances}.values())
        try:
            self._store.save(unique, entries)
        except Exception:
            logger.exception(
                "could not store %d alert(s) and %d outbox notification(s); trying again with "
                "the next evaluation", len(unique), len(entries),
            )
            self._unsaved.extend(unique)
            self._unsaved_outbox.extend(entries)

    def _elements(
        self, rule: AlertingRule, samples: Iterable[InstantSample]
    ) -> dict[_LabelKey, _Element]:
        elements: dict[_LabelKey, _Element] = {}
        for sample in samples:
            sample_labels = {str(k): str(v) for k, v in sample.labels.items()}
            value = float(sample.value)

            def expand(text: str, labels: dict[str, str] = sample_labels, v: float = value) -> str:
                return expand_template(
                    text, labels=labels, value=v, external_url=self._external_url
                )

            labels = {k: v for k, v in sample_labels.items() if k != _METRIC_NAME}
            for name, template in rule.labels.items():
                labels[name] = expand(template)
            labels[_ALERT_NAME] = rule.alert
            labels = {k: v for k, v in sorted(labels.items()) if v != ""}
            key = _label_key(labels)
            if key in elements:
                raise RuleEvaluationError(
                    rule.alert,
                    "vector contains metrics with the same labelset after applying alert labels",
                )
            elements[key] = _Element(
                labels,
                {name: expand(template) for name, template in sorted(rule.annotations.items())},
                value,
            )
        return elements

    def _apply(
        self,
        state: _RuleState,
        elements: dict[_LabelKey, _Element],
        at_s: float,
        changed: list[AlertInstance],
        touched: list[AlertInstance],
        fired: list[AlertInstance],
        resolved: list[AlertInstance],
    ) -> None:
        for key, element in elements.items():
            instance = state.active.get(key)
            is_new = instance is None
            if instance is None:
                instance = AlertInstance(
                    rule_key=state.key,
                    fingerprint=fingerprint(element.labels),
                    labels=element.labels,
                    annotations=element.annotations,
                    state=AlertState.PENDING,
                    active_at_s=at_s,
                    last_evaluated_at_s=at_s,
                    generator_url=state.generator_url,
                    value=element.value,
                )
                state.active[key] = instance
            instance.annotations = element.annotations
            instance.value = element.value
            instance.last_evaluated_at_s = at_s
            touched.append(instance)
            if instance.state == AlertState.PENDING and reached(
                at_s - instance.active_at_s, state.rule.for_s
            ):
                instance.state = AlertState.FIRING
                instance.fired_at_s = at_s
                fired.append(instance)
                changed.append(instance)
                logger.info("alert %s firing: %s", state.rule.alert, _described(instance))
            elif is_new:
                changed.append(instance)
        for key in [key for key in state.active if key not in elements]:
            instance = state.active.pop(key)
            self._resolve(instance, at_s, changed, resolved)
            touched.append(instance)

    @staticmethod
    def _resolve(
        instance: AlertInstance, at_s: float, changed: list[AlertInstance],
        resolved: list[AlertInstance],
    ) -> None:
        if instance.state == AlertState.FIRING:
            resolved.append(instance)
            logger.info(
                "alert %s resolved: %s", instance.labels.get(_ALERT_NAME), _described(instance)
            )
        instance.state = AlertState.RESOLVED
        instance.resolved_at_s = at_s
        changed.append(instance)

    def _deliver(self, key: str, payload: dict[str, Any]) -> None:
        for notifier in self._notifiers:
            try:
                notifier.notify(copy.deepcopy(payload))
            except Exception:
                logger.exception(
                    "notifier %r failed to take the %s notification for group %s",
                    notifier, payload["status"], key,
                )


def _mark_notified(instances: list[AlertInstance], at_s: float) -> None:
    for instance in instances:
        instance.notified_at_s = at_s


def _described(instance: AlertInstance) -> str:
    labels = ", ".join(
        f"{name}={value}" for name, value in sorted(instance.labels.items())
        if name != _ALERT_NAME
    )
    return f"{{{labels}}} fingerprint {instance.fingerprint}"

