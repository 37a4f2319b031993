"""The alerting package's exception tree, written once."""

from __future__ import annotations


class AlertingError(Exception):
    """Base of every error the alerting package raises."""


class RuleEvaluationError(AlertingError):
    """One alerting rule could not be evaluated this round (its query failed, or its result
    holds two elements with the same labels once the rule's labels are applied). The engine
    logs it and skips that rule for the round; its alerts keep their state."""

    def __init__(self, alertname: str, message: str) -> None:
        self.alertname = alertname
        super().__init__(f"alerting rule {alertname}: {message}")


class NotificationError(AlertingError):
    """A notification could not be delivered; the message names the receiver's URL (with
    any password in it masked), never the signing secret."""

    def __init__(self, message: str, *, url: str, status_code: int | None = None) -> None:
        self.url = url
        self.status_code = status_code
        super().__init__(message)


class MatcherError(AlertingError, ValueError):
    """A label matcher is malformed; the message quotes it and says what is wrong."""


class SilenceError(AlertingError, ValueError):
    """A silence cannot be created or expired as asked (no matchers, ends before it starts,
    unknown id); the message names the field and value."""
