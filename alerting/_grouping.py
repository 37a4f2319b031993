"""Which notifications a round sends: grouping, group timers, silences and inhibition.

Alerts are grouped by the `group_by` labels, as Alertmanager's root route does. A group with
news (an alert that fires and was not notified yet, or a notified alert that resolved) is
sent `group_wait_s` after the group first appeared, then at most every `group_interval_s`;
a group without news whose alerts keep firing is sent again once an alert's last
notification is `repeat_interval_s` old. With both timers at 0 (the default, which keeps
detection in the demo fast) each round's news goes out at once and only the news is in the
body, plus the whole group when its repeat is due; with a timer set, every body holds the
whole group, as Alertmanager's do.

A firing alert that an active silence matches, or that an inhibition rule mutes, is left
out of the bodies (it keeps its state and is reported as silenced or inhibited); once the
silence ends it counts as news. A resolved alert is sent only if its firing was.

Group timers live in memory: after a restart a group waits `group_wait_s` again, as after an
Alertmanager restart; the repeat clock (`notified_at_s`) is stored with the alert.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ._alert import AlertState
from ._inhibition import InhibitRule, inhibited_by
from ._payload import alertmanager_payload, group_key, group_labels
from ._silence import Silence, SilenceStore
from ._store import AlertInstance

logger = logging.getLogger("alerting")

Muting = tuple[tuple[str, ...], tuple[str, ...]]
"""(ids of the silences, fingerprints of the inhibiting alerts) of one alert."""


def reached(elapsed_s: float, for_s: float) -> bool:
    """`elapsed >= for`, in whole milliseconds as Prometheus keeps time (float noise in
    unix-second timestamps must not delay anything by a round)."""
    return round(elapsed_s * 1000) >= round(for_s * 1000)


@dataclass(slots=True)
class _Group:
    first_seen_at_s: float
    last_sent_at_s: float | None = None
    resolved: list[AlertInstance] = field(default_factory=list)


class NotificationPlanner:
    """Decides each round's bodies; the engine stores and delivers them."""

    def __init__(
        self,
        *,
        group_by: Sequence[str],
        receiver: str,
        external_url: str,
        repeat_interval_s: float,
        group_wait_s: float = 0.0,
        group_interval_s: float = 0.0,
        silences: SilenceStore | None = None,
        inhibit_rules: Sequence[InhibitRule] = (),
    ) -> None:
        for name, value in (("group_wait_s", group_wait_s),
                            ("group_interval_s", group_interval_s)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value!r}")
        self._group_by = tuple(group_by)
        self._receiver = receiver
        self._external_url = external_url
        self._repeat_interval_s = repeat_interval_s
        self._group_wait_s = group_wait_s
        self._group_interval_s = group_interval_s
        self._whole_groups = group_wait_s > 0 or group_interval_s > 0
        self._silences = silences
        self._inhibit_rules = tuple(inhibit_rules)
        self._groups: dict[str, _Group] = {}
        self._silences_failing = False
        self.muting: dict[str, Muting] = {}
        """The last round's muted firing alerts, by fingerprint."""

    def _active_silences(self, at_s: float) -> list[Silence]:
        if self._silences is None:
            return []
        try:
            silences = self._silences.active(at_s)
        except Exception as error:  # better a page too many than a page lost
            if not self._silences_failing:
                logger.warning("cannot read silences, notifying without them: %r", error)
            self._silences_failing = True
            return []
        self._silences_failing = False
        return silences

    def _muting(self, firing: Sequence[AlertInstance], at_s: float) -> dict[str, Muting]:
        silences = self._active_silences(at_s)
        sources = [(instance.fingerprint, instance.labels) for instance in firing]
        muting: dict[str, Muting] = {}
        for instance in firing:
            silenced = tuple(s.id for s in silences if s.mutes(instance.labels, at_s))
            inhibited = inhibited_by(self._inhibit_rules, instance.labels, sources)
            if silenced or inhibited:
                muting[instance.fingerprint] = (silenced, inhibited)
        return muting

    def plan(
        self, at_s: float, firing: Sequence[AlertInstance], resolved: Sequence[AlertInstance]
    ) -> tuple[list[AlertInstance], list[tuple[str, dict[str, Any]]]]:
        """The bodies to send now as (group key, body), and the firing instances in them
        (for the caller to mark notified once they went out)."""
        self.muting = self._muting(firing, at_s)
        members: dict[str, tuple[dict[str, str], list[AlertInstance]]] = {}
        for instance in firing:
            if instance.fingerprint in self.muting:
                continue
            labels = group_labels(instance.labels, self._group_by)
            key = group_key(labels)
            members.setdefault(key, (labels, []))[1].append(instance)
            self._groups.setdefault(key, _Group(first_seen_at_s=at_s))
        for instance in resolved:
            if instance.notified_at_s is None:
                continue
            labels = group_labels(instance.labels, self._group_by)
            key = group_key(labels)
            members.setdefault(key, (labels, []))
            self._groups.setdefault(key, _Group(first_seen_at_s=at_s)).resolved.append(instance)
        sent: list[AlertInstance] = []
        payloads: list[tuple[str, dict[str, Any]]] = []
        for key, (labels, group_firing) in sorted(members.items()):
            group = self._groups[key]
            chosen = self._due(at_s, group, group_firing)
            if chosen is None:
                continue
            chosen.sort(key=lambda instance: sorted(instance.labels.items()))
            payloads.append((key, alertmanager_payload(
                [instance.to_alert() for instance in chosen],
                receiver=self._receiver, group_labels=labels, external_url=self._external_url,
            )))
            sent.extend(i for i in chosen if i.state == AlertState.FIRING)
            group.last_sent_at_s = at_s
            group.resolved = []
        for key in [key for key, group in self._groups.items()
                    if not members.get(key, ({}, []))[1] and not group.resolved]:
            del self._groups[key]
        return sent, payloads

    def _due(
        self, at_s: float, group: _Group, firing: list[AlertInstance]
    ) -> list[AlertInstance] | None:
        news = [instance for instance in firing if instance.notified_at_s is None]
        repeat_due = any(
            instance.notified_at_s is not None
            and reached(at_s - instance.notified_at_s, self._repeat_interval_s)
            for instance in firing
        )
        if news or group.resolved:
            if group.last_sent_at_s is None:
                ready = reached(at_s - group.first_seen_at_s, self._group_wait_s)
            else:
                ready = reached(at_s - group.last_sent_at_s, self._group_interval_s)
        else:
            ready = repeat_due
        if not ready:
            return None
        chosen = list(firing) if self._whole_groups or repeat_due else news
        return [*chosen, *group.resolved]
