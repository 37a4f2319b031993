"""Alerting rules to alerts to notifications.

`AlertEngine` evaluates Prometheus-shaped `slo.AlertingRule`s over any
`collectors.MetricSource` with Prometheus's semantics (pending for `for`, then firing, then
resolved), keeps every alert instance in an `AlertStore` (SQLAlchemy: SQLite or
PostgreSQL), and hands each group of changes to its `Notifier`s as the version-4 webhook body
Alertmanager sends (`alertmanager_payload`), so anything that takes Alertmanager webhooks
(the remediation engine included) takes these. `WebhookNotifier` POSTs the body, signed with
HMAC-SHA256 when a secret is set, retrying on connection errors, timeouts and 5xx.

Durable delivery: receivers named in the engine's `outbox_receivers` get their notifications
through the `Outbox` (table `alert_outbox`, written in the same transaction as the alert
changes), sent by a `DeliveryWorker` with backoff until delivered, each with its dedup key
in `X-InferOps-Dedup-Key`.

Muting, as Alertmanager does it: `SilenceStore` (matchers with regex, a time range, who and
why; create/list/expire), `InhibitRule` (a firing source alert mutes targets with equal
labels), and group timers (`group_wait_s`, `group_interval_s`, `repeat_interval_s`).
`watchdog_rule()` is the always-firing dead-man's switch.

`create_alerting_router(...)` serves the webhook receiver, silences and active alerts in
Alertmanager's API v2 shapes (so `amtool` works) inside the control plane's HTTP API.
"""

from ._alert import Alert, AlertState, Notifier
from ._api import ACTOR_HEADER, create_alerting_router
from ._delivery import DeliveryWorker, NotifierSender, OutboxSender
from ._engine import DEFAULT_REPEAT_INTERVAL_S, AlertEngine
from ._exceptions import (
    AlertingError,
    MatcherError,
    NotificationError,
    RuleEvaluationError,
    SilenceError,
)
from ._fingerprint import fingerprint
from ._inhibition import WATCHDOG_ALERT, InhibitRule, watchdog_rule
from ._matcher import Matcher, MatchOp
from ._outbox import DEDUP_HEADER, Outbox, OutboxEntry, dedup_key
from ._payload import alertmanager_payload, generator_url, rfc3339
from ._receiver import WEBHOOK_PATH, WebhookBody, create_alert_receiver_app
from ._silence import Silence, SilenceState, SilenceStore
from ._store import AlertStore
from ._template import expand_template
from ._webhook import SIGNATURE_HEADER, WebhookNotifier, signature

__all__ = [
    "ACTOR_HEADER",
    "DEDUP_HEADER",
    "DEFAULT_REPEAT_INTERVAL_S",
    "SIGNATURE_HEADER",
    "WATCHDOG_ALERT",
    "WEBHOOK_PATH",
    "Alert",
    "AlertEngine",
    "AlertState",
    "AlertStore",
    "AlertingError",
    "DeliveryWorker",
    "InhibitRule",
    "MatchOp",
    "Matcher",
    "MatcherError",
    "NotificationError",
    "Notifier",
    "NotifierSender",
    "Outbox",
    "OutboxEntry",
    "OutboxSender",
    "RuleEvaluationError",
    "Silence",
    "SilenceError",
    "SilenceState",
    "SilenceStore",
    "WebhookBody",
    "WebhookNotifier",
    "alertmanager_payload",
    "create_alert_receiver_app",
    "create_alerting_router",
    "dedup_key",
    "expand_template",
    "fingerprint",
    "generator_url",
    "rfc3339",
    "signature",
    "watchdog_rule",
]
