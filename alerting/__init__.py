"""Alerting rules to alerts to notifications.

`AlertEngine` evaluates Prometheus-shaped `slo.AlertingRule`s over any
`collectors.MetricSource` with Prometheus's semantics (pending for `for`, then firing, then
resolved), keeps every alert instance in an `AlertStore` (SQLAlchemy: SQLite or
PostgreSQL), and hands each group of changes to its `Notifier`s as the version-4 webhook body
Alertmanager sends (`alertmanager_payload`), so anything that takes Alertmanager webhooks
(the remediation engine included) takes these. `WebhookNotifier` POSTs the body, signed with
HMAC-SHA256 when a secret is set, retrying on connection errors, timeouts and 5xx.
"""

from ._alert import Alert, AlertState, Notifier
from ._engine import DEFAULT_REPEAT_INTERVAL_S, AlertEngine
from ._exceptions import AlertingError, NotificationError, RuleEvaluationError
from ._fingerprint import fingerprint
from ._payload import alertmanager_payload, generator_url, rfc3339
from ._store import AlertStore
from ._template import expand_template
from ._webhook import SIGNATURE_HEADER, WebhookNotifier, signature

__all__ = [
    "DEFAULT_REPEAT_INTERVAL_S",
    "SIGNATURE_HEADER",
    "Alert",
    "AlertEngine",
    "AlertState",
    "AlertStore",
    "AlertingError",
    "NotificationError",
    "Notifier",
    "RuleEvaluationError",
    "WebhookNotifier",
    "alertmanager_payload",
    "expand_template",
    "fingerprint",
    "generator_url",
    "rfc3339",
    "signature",
]
