"""Remediation notices (breaker pages, escalations, policy notify steps) out to people.

A notice becomes a firing alert in Alertmanager's version-4 body and goes through the same
durable outbox as every other notification, so a page sent while the receiver is down, or
just before the control plane is killed, is still delivered, signed and deduplicated.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from alerting import (
    Alert,
    AlertState,
    Outbox,
    OutboxEntry,
    alertmanager_payload,
    dedup_key,
    fingerprint,
)
from remediation import Notice

ALERTNAMES = {
    "page": "RemediationCircuitBreakerOpen",
    "escalate": "RemediationEscalation",
    "notify": "RemediationNotice",
}
"""The alert name each kind of notice is sent under; receivers route on it."""

SEVERITIES = {"page": "page", "escalate": "page", "notify": "info"}


class RemediationPager:
    """A `remediation.NotifyHook` that writes each notice into the outbox for the receiver it
    names, or for every webhook receiver when it names none. An unknown receiver raises
    (the engine records the notice as failed), so a typo in a policy never passes silently."""

    def __init__(
        self,
        outbox: Outbox,
        receivers: Sequence[str],
        *,
        external_url: str,
        wake: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._outbox = outbox
        self._receivers = tuple(receivers)
        self._external_url = external_url
        self._wake = wake
        self._clock = clock

    def __call__(self, notice: Notice) -> None:
        if notice.receiver is not None and notice.receiver not in self._receivers:
            raise ValueError(
                f"remediation {notice.kind}: unknown receiver {notice.receiver!r}; "
                f"configured: {', '.join(self._receivers) or 'none'}"
            )
        receivers = (notice.receiver,) if notice.receiver else self._receivers
        if not receivers:
            raise ValueError(
                f"remediation {notice.kind}: no webhook receiver is configured "
                "(alerting.receivers), so it could not be sent"
            )
        now_s = self._clock()
        alertname = ALERTNAMES.get(notice.kind, "RemediationNotice")
        labels = {
            "alertname": alertname,
            "severity": SEVERITIES.get(notice.kind, "info"),
            "source": "inferops-remediation",
        }
        if notice.node:
            labels["node"] = notice.node
        annotations = {"summary": notice.message}
        if notice.incident_id is not None:
            annotations["incident"] = str(notice.incident_id)
        alert = Alert(
            fingerprint=fingerprint(labels),
            labels=labels,
            annotations=annotations,
            state=AlertState.FIRING,
            active_at_s=now_s,
            fired_at_s=now_s,
        )
        entries = []
        for receiver in receivers:
            payload = alertmanager_payload(
                [alert],
                receiver=receiver,
                group_labels={"alertname": alertname},
                external_url=self._external_url,
            )
            key = dedup_key(payload, round(now_s * 1000))
            entries.append(OutboxEntry(receiver, key, payload, now_s, now_s))
        self._outbox.add(entries)
        self._wake()
