"""`inferops query`: PromQL against the configured source, printed as `promtool query` does.

The same command a user reaches for as `promtool query instant|range`: the text output is
Prometheus's own `String()` of the result (`metric => value @[unix seconds]`, series
blocks for a range query, `scalar: v @[t]`), and `--json` prints the HTTP API's answer
(`{"status": "success", "data": {"resultType": ..., "result": ...}}`), so scripts written
against Prometheus read it unchanged. The expression is checked by the parser first, so a
typo is reported the same way (with its position where one can be told) for both sources.

Exit codes: 0 a result (also an empty one), 1 the source failed (unreachable, refused),
2 bad usage: an invalid expression, time, step or settings file.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._exceptions import ConfigError
from ._settings import Settings, load_settings, parse_duration

if TYPE_CHECKING:  # imported when a query runs, so that `inferops --help` stays fast
    from collectors import InstantSample, MetricSource, RangeSeries

__all__ = [
    "expression_type",
    "format_instant",
    "format_range",
    "instant_json",
    "parse_time",
    "query_command",
    "range_json",
    "validate_expression",
]

_RELATIVE = re.compile(r"^now\s*(?:([+-])\s*(\S+))?$")
DEFAULT_RANGE_S = 300.0
"""promtool's default range when --start is left out: five minutes before --end."""


def parse_time(text: str, *, now_s: float, option: str = "--time") -> float:
    """RFC3339 (`2026-11-25T12:00:00Z`), unix seconds (`1764072000.5`), `now`, `now-1h`.

    Raises `ValueError` naming the option and the value.
    """
    value = text.strip()
    relative = _RELATIVE.match(value)
    if relative:
        sign, duration = relative.groups()
        if sign is None:
            return now_s
        try:
            offset = parse_duration(duration)
        except ValueError as error:
            raise ValueError(f"{option} {text!r}: {error}") from None
        return now_s - offset if sign == "-" else now_s + offset
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise ValueError(f"{option} {text!r}: expected a finite time")
        return seconds
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{option} {text!r}: expected RFC3339 (2026-11-25T12:00:00Z), unix seconds, "
            "now or now-DURATION (now-1h)"
        ) from None
    if moment.tzinfo is None:
        raise ValueError(f"{option} {text!r}: an RFC3339 time needs a zone (Z or +01:00)")
    return moment.timestamp()


def _unclosed_position(expr: str, opener: str, closer: str) -> int | None:
    """0-based index of the last unmatched `opener` outside string literals (of an
    unterminated string's quote, when `opener` is a quote)."""
    stack: list[int] = []
    quote: int | None = None
    escaped = False
    for index, char in enumerate(expr):
        if quote is not None:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == expr[quote]:
                quote = None
        elif char in "\"'`":
            quote = index
            if char == opener:
                stack.append(index)
        elif char == opener:
            stack.append(index)
        elif char == closer and stack:
            stack.pop()
    if opener in "\"'`":
        return quote
    return stack[-1] if stack else None


def _error_position(expr: str, message: str) -> int | None:
    """Where the parser's message points, for the messages that say enough to tell."""
    unexpected = re.search(r"unexpected character inside (brackets|braces): '(.)'", message)
    if unexpected:
        opener, closer = ("[", "]") if unexpected.group(1) == "brackets" else ("{", "}")
        start = _unclosed_position(expr, opener, closer)
        found = expr.find(unexpected.group(2), start) if start is not None else -1
        return found if found >= 0 else None
    if "unclosed left parenthesis" in message:
        return _unclosed_position(expr, "(", ")")
    if "unterminated quoted string" in message:
        quote = message.rstrip()[-1:]
        return _unclosed_position(expr, quote, quote) if quote in "\"'`" else None
    if "end of input" in message:
        return len(expr.rstrip())
    return None


def _line_column(expr: str, index: int) -> str:
    line = expr.count("\n", 0, index) + 1
    column = index - (expr.rfind("\n", 0, index) + 1) + 1
    return f"{line}:{column}"


def validate_expression(expr: str) -> Any:
    """The parsed expression; `QueryError` with the parser's message, prefixed with the
    position (`line:column`, as Prometheus writes it) when the message locates one."""
    import promql_parser as pp

    from collectors import QueryError

    if not expr.strip():
        raise QueryError("empty PromQL expression")
    try:
        return pp.parse(expr)
    except Exception as error:  # the parser raises ValueError, or its own kinds
        message = str(error)
        index = _error_position(expr, message)
        where = f"{_line_column(expr, index)}: " if index is not None else ""
        raise QueryError(f"invalid PromQL {expr!r}: {where}parse error: {message}") from None


def expression_type(node: Any) -> str:
    """PromQL's static type of a parsed expression: scalar, vector, matrix or string."""
    import promql_parser as pp

    if isinstance(node, pp.NumberLiteral):
        return "scalar"
    if isinstance(node, pp.StringLiteral):
        return "string"
    if isinstance(node, pp.ParenExpr | pp.UnaryExpr):
        return expression_type(node.expr)
    if isinstance(node, pp.MatrixSelector | pp.SubqueryExpr):
        return "matrix"
    if isinstance(node, pp.Call):
        return str(node.func.return_type).rsplit(".", 1)[-1].lower()
    if isinstance(node, pp.BinaryExpr):
        both_scalar = expression_type(node.lhs) == expression_type(node.rhs) == "scalar"
        return "scalar" if both_scalar else "vector"
    return "vector"  # selectors and aggregations


def _value(value: float) -> str:
    """Go's strconv.FormatFloat(v, 'f', -1, 64), as Prometheus writes sample values."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    import numpy as np

    return str(np.format_float_positional(value, unique=True, trim="-"))


def _timestamp(seconds: float) -> str:
    """model.Time's String(): milliseconds, printed as seconds without trailing zeros."""
    return _value(round(seconds * 1000) / 1000)


def _json_timestamp(seconds: float) -> float | int:
    millis = round(seconds * 1000)
    return millis // 1000 if millis % 1000 == 0 else millis / 1000


def _metric(labels: Mapping[str, str]) -> str:
    """model.Metric's String(): `name{a="x", b="y"}`, `{}` without labels."""
    name = labels.get("__name__", "")
    pairs = sorted(
        f"{key}={json.dumps(value, ensure_ascii=False)}"
        for key, value in labels.items()
        if key != "__name__"
    )
    if not pairs:
        return name or "{}"
    return f"{name}{{{', '.join(pairs)}}}"


def format_instant(samples: Sequence[InstantSample], result_type: str) -> str:
    """An instant result as promtool prints it, one sample a line."""
    if result_type == "scalar" and samples:
        sample = samples[0]
        return f"scalar: {_value(sample.value)} @[{_timestamp(sample.timestamp_s)}]"
    return "\n".join(
        f"{_metric(s.labels)} => {_value(s.value)} @[{_timestamp(s.timestamp_s)}]"
        for s in samples
    )


def format_range(series: Sequence[RangeSeries]) -> str:
    """A range result as promtool prints it: `metric =>` then `value @[t]` lines."""
    blocks = []
    for one in series:
        points = [
            f"{_value(v)} @[{_timestamp(t)}]"
            for t, v in zip(one.timestamps_s, one.values, strict=True)
        ]
        blocks.append("\n".join([f"{_metric(one.labels)} =>", *points]))
    return "\n".join(blocks)


def instant_json(samples: Sequence[InstantSample], result_type: str) -> dict[str, Any]:
    """Prometheus's `/api/v1/query` answer for these samples."""
    if result_type == "scalar" and samples:
        sample = samples[0]
        result: Any = [_json_timestamp(sample.timestamp_s), _value(sample.value)]
    else:
        result_type = "vector"
        result = [
            {
                "metric": dict(sorted(s.labels.items())),
                "value": [_json_timestamp(s.timestamp_s), _value(s.value)],
            }
            for s in samples
        ]
    return {"status": "success", "data": {"resultType": result_type, "result": result}}


def range_json(series: Sequence[RangeSeries]) -> dict[str, Any]:
    """Prometheus's `/api/v1/query_range` answer for these series."""
    result = [
        {
            "metric": dict(sorted(one.labels.items())),
            "values": [
                [_json_timestamp(t), _value(v)]
                for t, v in zip(one.timestamps_s, one.values, strict=True)
            ],
        }
        for one in series
    ]
    return {"status": "success", "data": {"resultType": "matrix", "result": result}}


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _open(settings: Settings) -> tuple[MetricSource, Callable[[], None]]:
    from collectors import PrometheusSource, SampleStore, open_database

    from ._sources import open_metric_source

    if settings.source.kind == "prometheus":
        source = open_metric_source(settings, None)
        assert isinstance(source, PrometheusSource)
        return source, source.close
    database = open_database(settings.store.url)
    return open_metric_source(settings, SampleStore(database)), database.dispose


def query_command(
    expr: Annotated[str, typer.Argument(help="A PromQL expression.")],
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="Settings YAML (its `source`).", envvar="INFEROPS_CONFIG"
        ),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(
            "--time", "--at", help="Instant query time: RFC3339, unix seconds, now, now-1h."
        ),
    ] = None,
    start: Annotated[str | None, typer.Option(help="Range query start (default end-5m).")] = None,
    end: Annotated[str | None, typer.Option(help="Range query end (default now).")] = None,
    step: Annotated[
        str | None, typer.Option(help="Range query step, a duration (default range/250, >=1s).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print Prometheus's HTTP API JSON answer.")
    ] = False,
) -> None:
    """Evaluate PromQL against the configured source (the store, or Prometheus)."""
    from collectors import QueryError

    ranged = start is not None or end is not None or step is not None
    if ranged and at is not None:
        raise _fail("--time is for an instant query; use --start/--end/--step or --time", 2)
    now = time.time()
    try:
        settings = load_settings(config)
        node = validate_expression(expr)
        if ranged:
            end_s = parse_time(end, now_s=now, option="--end") if end is not None else now
            start_s = (
                parse_time(start, now_s=now, option="--start")
                if start is not None
                else end_s - DEFAULT_RANGE_S
            )
            if end_s < start_s:
                raise ValueError(f"--end ({end}) is before --start ({start})")
            step_s = max(math.floor((end_s - start_s) / 250), 1.0)
            if step is not None:
                try:
                    step_s = parse_duration(step)
                except ValueError as error:
                    raise ValueError(f"--step {step!r}: {error}") from None
                if step_s <= 0:
                    raise ValueError(f"--step {step!r}: must be positive")
        else:
            at_s = parse_time(at, now_s=now) if at is not None else now
    except (ConfigError, ValueError, QueryError) as error:
        raise _fail(str(error), 2) from None
    source, close = _open(settings)
    try:
        if ranged:
            series = source.query_range(expr, start_s, end_s, step_s)
            text = json.dumps(range_json(series)) if as_json else format_range(series)
        else:
            result_type = expression_type(node)
            samples = source.query(expr, at_s)
            if as_json:
                text = json.dumps(instant_json(samples, result_type))
            else:
                text = format_instant(samples, result_type)
    except QueryError as error:
        raise _fail(str(error), 1) from None
    finally:
        close()
    if text:
        typer.echo(text)
    elif not as_json:
        typer.echo("(empty result)", err=True)
