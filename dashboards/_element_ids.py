"""The ids of the pages' elements: stable, because tests and users script against them.

Every page is in the document at once (only the current one is shown), so each id below
is always there to find, whichever page the browser is on.
"""

from __future__ import annotations

import enum


class ElementId(enum.StrEnum):
    PAGE = "dashboard"
    LOCATION = "url"
    NAVIGATION = "page-nav"
    LAST_UPDATED = "last-updated"
    TIME_RANGE = "time-range"
    REFRESH = "refresh-interval"
    # the fleet page
    FLEET_PAGE = "page-fleet"
    FLEET_TABLE = "fleet-table"
    REQUESTS_CHART = "requests-chart"
    LATENCY_CHART = "latency-chart"
    ERRORS_CHART = "errors-chart"
    GPU_CHART = "gpu-chart"
    # the SLOs page
    SLOS_PAGE = "page-slos"
    SLO_TABLE = "slo-table"
    BUDGET_CHART = "slo-budget-chart"
    # the alerts page
    ALERTS_PAGE = "page-alerts"
    ALERTS_TABLE = "alerts-table"
    """Active alerts: firing, then pending."""
    RECENT_ALERTS_TABLE = "recent-alerts-table"
    """Resolved alerts, most recent first."""
    SILENCES_TABLE = "silences-table"
    SILENCE_MATCHERS_INPUT = "silence-matchers-input"
    SILENCE_HOURS_INPUT = "silence-hours-input"
    SILENCE_COMMENT_INPUT = "silence-comment-input"
    CREATE_SILENCE_BUTTON = "create-silence-button"
    SILENCE_ID_INPUT = "silence-id-input"
    EXPIRE_SILENCE_BUTTON = "expire-silence-button"
    SILENCE_STATUS = "silence-status"
    # the remediation page
    REMEDIATION_PAGE = "page-remediation"
    INCIDENTS = "incident-timelines"
    REMEDIATIONS_TABLE = "remediations-table"
    """The audit trail: every decision, taken or refused, newest first."""
    SESSION = "api-session"
    """Session storage: the random id the dashboard keeps the API token under."""
    API_TOKEN_INPUT = "api-token-input"
    API_NAME_INPUT = "api-name-input"
    SIGN_IN_BUTTON = "sign-in-button"
    SIGN_IN_STATUS = "sign-in-status"
    APPROVALS_TABLE = "approvals-table"
    DECISION_ID_INPUT = "decision-id-input"
    REVIEW_REASON_INPUT = "review-reason-input"
    APPROVE_BUTTON = "approve-button"
    DENY_BUTTON = "deny-button"
    REVIEW_STATUS = "review-status"
    # the cost page
    COST_PAGE = "page-cost"
    COST_TABLE = "cost-table"
    """Per node: GPU dollars per hour, per request, per 1k output tokens."""
    COST_MODELS_TABLE = "cost-models-table"
    COST_REQUEST_CHART = "cost-per-request-chart"
    COST_TOKENS_CHART = "cost-per-1k-tokens-chart"
    # the kernels page
    KERNELS_PAGE = "page-kernels"
    KERNELS_TABLE = "kernels-table"
    KERNEL_DIFF_TABLE = "kernel-diff-table"
