"""Multi-window, multi-burn-rate alert rules for one SLO (SRE Workbook, ch. 5).

One rule per severity: it fires while, for any window pair of that severity, the error
ratio over both the long and the short window exceeds burn_rate x (1 - objective).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ._rules import AlertingRule, format_duration
from ._sli_queries import window_error_ratio_expr, window_events_expr
from ._spec import SloSpec
from ._windows import BurnRateWindow

ALERT_NAME = "SloErrorBudgetBurn"


@dataclass(frozen=True, slots=True)
class SeverityWindows:
    severity: str
    for_s: float
    windows: tuple[BurnRateWindow, ...]


def by_severity(windows: Sequence[BurnRateWindow]) -> list[SeverityWindows]:
    """Window pairs grouped by severity, in the order the severities first appear."""
    grouped: dict[str, list[BurnRateWindow]] = {}
    for window in windows:
        grouped.setdefault(window.severity, []).append(window)
    return [
        SeverityWindows(severity, max(w.for_s for w in pairs), tuple(pairs))
        for severity, pairs in grouped.items()
    ]


def number(value: float) -> str:
    """A PromQL number literal without float noise: 14.4 * (1 - 0.99) -> 0.144."""
    return f"{value:.12g}"


def burn_threshold(spec: SloSpec, window: BurnRateWindow) -> str:
    return number(window.burn_rate * (1.0 - spec.objective))


def multi_window_expr(
    spec: SloSpec, windows: Sequence[BurnRateWindow], ratio_over: Callable[[float], str]
) -> str:
    """`(long > t and short > t) or (...)`, `ratio_over(window_s)` writing each error ratio."""
    legs = []
    for window in windows:
        threshold = burn_threshold(spec, window)
        enough = ""
        if spec.min_events > 0:  # low traffic: too few events to mean anything yet
            events = window_events_expr(spec, window.long_window_s)
            on = f"on({', '.join(spec.group_by)})"
            enough = f"  and {on}\n  {events} >= {number(spec.min_events)}\n"
        legs.append(
            "(\n"
            f"  {ratio_over(window.long_window_s)} > {threshold}\n"
            "  and\n"
            f"  {ratio_over(window.short_window_s)} > {threshold}\n"
            f"{enough}"
            ")"
        )
    return "\nor\n".join(legs)


def alert_labels(spec: SloSpec, severity: str) -> dict[str, str]:
    return dict(sorted({**spec.labels, "slo": spec.name, "severity": severity}.items()))


def alert_annotations(spec: SloSpec, group: SeverityWindows) -> dict[str, str]:
    """Static text (no `{{ $value }}`) so Prometheus and the native engine say the same."""
    conditions = [
        f"{w.burn_rate:g}x the budget over both {format_duration(w.long_window_s)} and "
        f"{format_duration(w.short_window_s)}"
        for w in group.windows
    ]
    return {
        "summary": f"SLO {spec.name} is burning its error budget too fast",
        "description": (
            f"The error ratio is above {', or '.join(conditions)} "
            f"(objective {spec.objective * 100:.10g}% over {format_duration(spec.window_s)})."
        ),
    }


def burn_rate_alert_rules(spec: SloSpec, windows: Sequence[BurnRateWindow]) -> list[AlertingRule]:
    """Self-contained rules (the error ratios inline, no recording rules) for the native engine."""

    def ratio_over(window_s: float) -> str:
        return f"({window_error_ratio_expr(spec, window_s)})"

    return [
        AlertingRule(
            alert=ALERT_NAME,
            expr=multi_window_expr(spec, group.windows, ratio_over),
            for_s=group.for_s,
            labels=alert_labels(spec, group.severity),
            annotations=alert_annotations(spec, group),
        )
        for group in by_severity(windows)
    ]
