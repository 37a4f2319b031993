"""The exposition line grammar, character by character: the exact path for lines the fast one skips.

`parse_keyed_samples` (`_exposition`) reads the lines exporters usually write with one
regular expression; a line it does not match (escapes in a label value, an exemplar, a
malformed line, a comment other than a plain `# HELP`/`# TYPE`) comes here, which either
reads it as Prometheus's own text parser would or raises `ExpositionError` naming the line
and what is wrong with it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Hashable

from ._exceptions import ExpositionError
from ._sample import Exemplar

__all__ = [
    "EXEMPLAR_LABELS_MAX_CHARS",
    "FLOAT_PATTERN",
    "LABEL_NAME_PATTERN",
    "METRIC_NAME_PATTERN",
    "KeyedSample",
    "excerpt",
    "parse_sample_line",
    "read_comment",
]

KeyedSample = tuple[str, Hashable, dict[str, str], float, float | None, Exemplar | None]
"""(name, key of the label set, labels, value, timestamp or None, exemplar or None).

The key is the label set's text as written (a tuple of sorted pairs when the line needed
the exact parser); the labels dict may be shared with other samples: never change it.
"""

EXEMPLAR_LABELS_MAX_CHARS = 128
"""OpenMetrics: an exemplar's label names and values together, at most this many characters."""

METRIC_NAME_PATTERN = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL_NAME_PATTERN = r"[a-zA-Z_][a-zA-Z0-9_]*"
# A float as Go's strconv.ParseFloat reads it in decimal (what Prometheus accepts), and the
# special values in any case; hexadecimal floats fall through to the slow path.
FLOAT_PATTERN = r"[-+]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|(?i:inf(?:inity)?|nan))"

_METRIC_NAME_AT = re.compile(METRIC_NAME_PATTERN)
_LABEL_NAME_AT = re.compile(LABEL_NAME_PATTERN)
_BLANKS = re.compile(r"[ \t]*")
_QUOTE_OR_BACKSLASH = re.compile(r'["\\]')
_TOKEN_SPLIT = re.compile(r"[ \t]+")
_FLOAT_FULL = re.compile(FLOAT_PATTERN)
_INT_FULL = re.compile(r"[-+]?[0-9]+")

_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}
_TYPES_TEXT = frozenset({"counter", "gauge", "histogram", "summary", "untyped"})
_TYPES_OPENMETRICS = _TYPES_TEXT | {"info", "stateset", "gaugehistogram", "unknown"}
_EXCERPT_CHARS = 80


def read_comment(line: str, lineno: int, openmetrics: bool) -> bool:
    """Check a `#` line; True when it ends an OpenMetrics body. Other comments are ignored."""
    parts = _TOKEN_SPLIT.split(line, maxsplit=3)
    if parts[0] != "#" or len(parts) < 2:
        return False  # "#text": a plain comment
    keyword = parts[1]
    if keyword == "EOF" and len(parts) == 2:
        return openmetrics  # in the text format, just a comment
    if keyword not in ("HELP", "TYPE", "UNIT"):
        return False
    if len(parts) < 3 or not parts[2]:
        raise ExpositionError(f"'# {keyword}' without a metric name", line=lineno)
    name = parts[2]
    if _METRIC_NAME_AT.fullmatch(name) is None:
        raise ExpositionError(
            f"invalid metric name {excerpt(name)} in '# {keyword}' line", line=lineno
        )
    if keyword == "TYPE":
        if len(parts) < 4 or not parts[3].strip():
            raise ExpositionError(f"'# TYPE {name}' without a type", line=lineno)
        kind = parts[3].strip(" \t")
        allowed = _TYPES_OPENMETRICS if openmetrics else _TYPES_TEXT
        if kind.lower() not in allowed:
            raise ExpositionError(
                f"unknown metric type {excerpt(kind)} for {name} "
                f"(expected one of {', '.join(sorted(allowed))})",
                line=lineno,
            )
    return False


def parse_sample_line(line: str, lineno: int, ms_timestamps: bool) -> KeyedSample:
    """The slow, exact path: read one sample line or say precisely what is wrong with it."""
    n = len(line)
    i = _BLANKS.match(line).end()  # type: ignore[union-attr]  # `*` always matches
    match = _METRIC_NAME_AT.match(line, i)
    if match is None:
        if i < n and line[i] == "{":
            raise ExpositionError(
                "missing metric name before '{' (quoted metric names are not supported)",
                line=lineno,
            )
        raise ExpositionError(f"invalid metric name at the start of {excerpt(line)}", line=lineno)
    name = match.group()
    i = match.end()
    labels: dict[str, str] = {}
    if i < n and line[i] == "{":
        i = _parse_labels(line, i + 1, lineno, name, labels)
    elif i < n and line[i] not in " \t":
        raise ExpositionError(
            f"invalid character {line[i]!r} in metric name {excerpt(line[: i + 1])}",
            line=lineno,
        )
    # Values and timestamps hold no `#`: the first one after the labels starts an exemplar.
    rest, hash_mark, exemplar_text = line[i:].partition("#")
    value, ts = _value_and_timestamp(rest, lineno, name, ms_timestamps)
    exemplar = _parse_exemplar(exemplar_text, lineno, name) if hash_mark else None
    return (name, tuple(sorted(labels.items())), labels, value, ts, exemplar)


def _value_and_timestamp(
    text: str, lineno: int, name: str, ms_timestamps: bool, what: str = ""
) -> tuple[float, float | None]:
    tokens = _TOKEN_SPLIT.split(text.strip(" \t\r"))
    if not tokens or not tokens[0]:
        raise ExpositionError(f"missing value for {what}{name}", line=lineno)
    if len(tokens) > 2:
        raise ExpositionError(
            f"unexpected text after the timestamp of {what}{name}: {excerpt(' '.join(tokens[2:]))}",
            line=lineno,
        )
    value = _parse_float(tokens[0])
    if value is None:
        raise ExpositionError(f"invalid value {excerpt(tokens[0])} for {what}{name}", line=lineno)
    ts: float | None = None
    if len(tokens) == 2:
        raw_ts = tokens[1]
        if ms_timestamps:
            if _INT_FULL.fullmatch(raw_ts) is None:
                raise ExpositionError(
                    f"invalid timestamp {excerpt(raw_ts)} for {what}{name} "
                    "(expected integer milliseconds)",
                    line=lineno,
                )
            ts = int(raw_ts) / 1000.0
        else:
            ts = _parse_float(raw_ts)
            if ts is None or not math.isfinite(ts):
                raise ExpositionError(
                    f"invalid timestamp {excerpt(raw_ts)} for {what}{name} (expected seconds)",
                    line=lineno,
                )
    return value, ts


def _parse_exemplar(text: str, lineno: int, name: str) -> Exemplar | None:
    """`{labels} value [timestamp]` after a sample's `#`; None when it is too long to keep.

    An exemplar's timestamp is in seconds, in either format (only OpenMetrics defines it).
    """
    i = _BLANKS.match(text).end()  # type: ignore[union-attr]
    if i >= len(text) or text[i] != "{":
        raise ExpositionError(
            f"invalid exemplar of {name}: expected '{{' after '#', found {excerpt(text[i:])}",
            line=lineno,
        )
    labels: dict[str, str] = {}
    i = _parse_labels(text, i + 1, lineno, f"the exemplar of {name}", labels)
    value, ts = _value_and_timestamp(text[i:], lineno, name, False, "the exemplar of ")
    if sum(len(k) + len(v) for k, v in labels.items()) > EXEMPLAR_LABELS_MAX_CHARS:
        return None
    return Exemplar(labels, value, ts)


def _parse_labels(line: str, i: int, lineno: int, name: str, labels: dict[str, str]) -> int:
    """Read `name="value", ...}` from `i` (just past `{`) into `labels`; the index past `}`."""
    n = len(line)
    while True:
        i = _BLANKS.match(line, i).end()  # type: ignore[union-attr]
        if i >= n:
            raise ExpositionError(f"unterminated label set of {name} (missing '}}')", line=lineno)
        if line[i] == "}":
            return i + 1
        match = _LABEL_NAME_AT.match(line, i)
        if match is None:
            if line[i] == '"':
                raise ExpositionError(
                    f"quoted label names are not supported (column {i + 1})", line=lineno
                )
            raise ExpositionError(
                f"invalid label name at column {i + 1} of {name}: {excerpt(line[i:])}",
                line=lineno,
            )
        label = match.group()
        i = _BLANKS.match(line, match.end()).end()  # type: ignore[union-attr]
        if i >= n or line[i] != "=":
            raise ExpositionError(f"expected '=' after label name {label!r}", line=lineno)
        i = _BLANKS.match(line, i + 1).end()  # type: ignore[union-attr]
        if i >= n or line[i] != '"':
            raise ExpositionError(
                f"the value of label {label!r} must be in double quotes", line=lineno
            )
        i += 1
        pieces: list[str] = []
        while True:
            stop = _QUOTE_OR_BACKSLASH.search(line, i)
            if stop is None or (stop.group() == "\\" and stop.start() + 1 >= n):
                raise ExpositionError(
                    f"unterminated quoted value of label {label!r} of {name}", line=lineno
                )
            j = stop.start()
            pieces.append(line[i:j])
            if stop.group() == '"':
                i = j + 1
                break
            escaped = line[j + 1]
            pieces.append(_ESCAPES.get(escaped, "\\" + escaped))
            i = j + 2
        if label in labels:
            raise ExpositionError(f"duplicate label name {label!r} in {name}", line=lineno)
        if label == "__name__":
            raise ExpositionError(
                "label name '__name__' is reserved (the metric name goes before '{')",
                line=lineno,
            )
        labels[label] = "".join(pieces)
        i = _BLANKS.match(line, i).end()  # type: ignore[union-attr]
        if i < n and line[i] == ",":
            i += 1
            continue
        if i < n and line[i] == "}":
            return i + 1
        if i >= n:
            raise ExpositionError(f"unterminated label set of {name} (missing '}}')", line=lineno)
        raise ExpositionError(
            f"expected ',' or '}}' after the value of label {label!r}, found {excerpt(line[i:])}",
            line=lineno,
        )


def _parse_float(token: str) -> float | None:
    if _FLOAT_FULL.fullmatch(token) is None:
        return None
    return float(token)


def excerpt(text: str) -> str:
    if len(text) > _EXCERPT_CHARS:
        text = text[:_EXCERPT_CHARS] + "..."
    return repr(text)
