"""The PromQL an SLI turns into: checked selectors and error-ratio expressions.

One place writes these strings so the native engine, the evaluator and the generated
Prometheus rules all run the very same queries.
"""

from __future__ import annotations

import re

import promql_parser
from prometheus_client.utils import floatToGoString

from ._rules import format_duration

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
# MatchOp values are not hashable, so this is a list searched with ==.
_MATCH_OPERATORS = [
    (promql_parser.MatchOp.Equal, "="),
    (promql_parser.MatchOp.NotEqual, "!="),
    (promql_parser.MatchOp.Re, "=~"),
    (promql_parser.MatchOp.NotRe, "!~"),
]
_EXAMPLE = 'such as http_requests_total{job="router",status="5xx"}'


def is_metric_name(text: str) -> bool:
    return _METRIC_NAME.fullmatch(text) is not None


def _parse_selector(text: str) -> promql_parser.VectorSelector | str:
    """The parsed selector, or why `text` is not a plain PromQL vector selector."""
    try:
        expr = promql_parser.parse(text)
    except ValueError as error:
        return f"not valid PromQL ({error}): {text!r}"
    if not isinstance(expr, promql_parser.VectorSelector):
        return f"must be a PromQL vector selector {_EXAMPLE}, got {text!r}"
    if expr.offset is not None or expr.at is not None:
        return f"must be a vector selector without offset or @, got {text!r}"
    if expr.matchers.or_matchers:
        return f"must be a vector selector without 'or' between matchers, got {text!r}"
    return expr


def check_vector_selector(text: str) -> str | None:
    """Why `text` is not a plain PromQL vector selector (None when it is one)."""
    parsed = _parse_selector(text)
    return parsed if isinstance(parsed, str) else None


def check_label_selector(text: str) -> str | None:
    """Why `text` is not a metric-less selector such as `{job="router"}` (None when it is)."""
    if text.strip() in ("", "{}"):
        return None
    parsed = _parse_selector(text)
    if isinstance(parsed, str):
        return parsed.replace(_EXAMPLE, 'such as {job="router"}')
    names = [matcher.name for matcher in parsed.matchers.matchers]
    if parsed.name is not None or "__name__" in names:
        return f'must name labels only, not a metric (like {{job="router"}}), got {text!r}'
    if "le" in names:
        return f"must not match 'le': the threshold picks the bucket, got {text!r}"
    return None


def _operator(op: promql_parser.MatchOp) -> str:
    return next(text for candidate, text in _MATCH_OPERATORS if candidate == op)


def _quoted(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def label_matchers(selector: str) -> list[str]:
    """`{job="router"}` -> [`job="router"`] (the selector must have passed the check)."""
    if selector.strip() in ("", "{}"):
        return []
    parsed = _parse_selector(selector)
    if isinstance(parsed, str):
        raise ValueError(parsed)
    return [
        f"{matcher.name}{_operator(matcher.op)}{_quoted(matcher.value)}"
        for matcher in parsed.matchers.matchers
    ]


def le_label(threshold_s: float) -> str:
    """The `le` value Prometheus clients write for a bucket bound: 2.5 -> "2.5", 1 -> "1.0"."""
    return str(floatToGoString(threshold_s))  # type: ignore[no-untyped-call]


def selector(metric: str, matchers: list[str]) -> str:
    return f"{metric}{{{','.join(matchers)}}}" if matchers else metric


def rate_sum(vector_selector: str, window_s: float, by: tuple[str, ...] = ()) -> str:
    """`sum(rate(SELECTOR[w]))`: events per second over `window_s`, all series together (or
    per value of the `by` labels)."""
    grouping = f" by ({', '.join(by)}) " if by else ""
    return f"sum{grouping}(rate({vector_selector.strip()}[{format_duration(window_s)}]))"
