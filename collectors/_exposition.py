"""The Prometheus text exposition format (0.0.4), and OpenMetrics text tolerated, parsed fast.

Every sample line first meets one regular expression that covers what exporters actually
write (prometheus_client, vLLM, dcgm-exporter): a name, simple quoted label values without
escapes, a value and an optional timestamp. A line it does not match (escapes in a label
value, an exemplar, a malformed line) goes through a character-by-character parser that
either reads it or raises `ExpositionError` naming the line and what is wrong with it.
OpenMetrics exemplars (`... # {trace_id="..."} value [timestamp]`) are kept (`Exemplar`);
one whose label set is longer than OpenMetrics's 128 characters is dropped, as Prometheus
drops it.

For the scraper, `parse_keyed_samples` also gives each sample a key of its label set's
text, and its labels as a shared (cached) dict, so that a steady scrape builds no new
label dicts at all.

Semantics follow Prometheus's own text parser where it is stricter or laxer than
prometheus_client's: sample names are kept as written (no `_total` munging), `_created`
lines are ordinary samples, unknown escapes in label values are kept verbatim (`\\t` stays
two characters), timestamps are integer milliseconds (OpenMetrics: seconds), and `# HELP`
text is not kept (the store has no use for it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Hashable

from ._exceptions import ExpositionError
from ._sample import Exemplar, ScrapedSample

__all__ = [
    "KeyedSample",
    "RawSample",
    "SampleLimitExceeded",
    "parse_exposition",
    "parse_keyed_samples",
    "parse_raw_samples",
]

RawSample = tuple[str, dict[str, str], float, float | None]
"""(name, labels, value, timestamp in seconds or None when the exposition gave none)."""

KeyedSample = tuple[str, Hashable, dict[str, str], float, float | None, Exemplar | None]
"""(name, key of the label set, labels, value, timestamp or None, exemplar or None).

The key is the label set's text as written (a tuple of sorted pairs when the line needed
the exact parser); the labels dict may be shared with other samples: never change it.
"""

EXEMPLAR_LABELS_MAX_CHARS = 128
"""OpenMetrics: an exemplar's label names and values together, at most this many characters."""

_METRIC_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL_NAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
_SIMPLE_LABEL = _LABEL_NAME + r'="[^"\\]*"'
# A float as Go's strconv.ParseFloat reads it in decimal (what Prometheus accepts), and the
# special values in any case; hexadecimal floats fall through to the slow path.
_FLOAT = r"[-+]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|(?i:inf(?:inity)?|nan))"

# What exporters write: a name, an optional `{...}` with no `}` inside, a value token and an
# optional integer timestamp. The label set and the value are checked after the match.
_FAST_SAMPLE = re.compile(
    rf"[ \t]*({_METRIC_NAME})(?:\{{([^}}]*)\}}[ \t]*|[ \t]+)([^ \t\r]+)"
    r"(?:[ \t]+([-+]?[0-9]+))?[ \t\r]*"
)
# A label set without escapes or blanks around `=`: safe to split at its quotes.
_SIMPLE_LABELS = re.compile(
    rf"[ \t]*(?:{_SIMPLE_LABEL}(?:[ \t]*,[ \t]*{_SIMPLE_LABEL})*[ \t]*,?[ \t]*)?"
)
# Label sets repeat from scrape to scrape: the parsed form of recent ones, by their text.
_LABEL_CACHE: dict[str, dict[str, str]] = {}
_LABEL_CACHE_SIZE = 100_000
# And the text of recent lines up to their value (`name{...} `): name, key and labels, so
# that a line seen in the previous scrape costs a dict lookup and a float().
_PREFIX_CACHE: dict[str, tuple[str, str, dict[str, str]]] = {}

# `# HELP name text` and `# TYPE name type` as every exporter writes them: nothing to check.
_SIMPLE_COMMENT = re.compile(
    rf"# HELP {_METRIC_NAME}(?: .*)?|# TYPE {_METRIC_NAME} "
    r"(?:counter|gauge|histogram|summary|untyped)"
)
_METRIC_NAME_AT = re.compile(_METRIC_NAME)
_LABEL_NAME_AT = re.compile(_LABEL_NAME)
_BLANKS = re.compile(r"[ \t]*")
_QUOTE_OR_BACKSLASH = re.compile(r'["\\]')
_TOKEN_SPLIT = re.compile(r"[ \t]+")
_FLOAT_FULL = re.compile(_FLOAT)
_INT_FULL = re.compile(r"[-+]?[0-9]+")

_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}
_TYPES_TEXT = frozenset({"counter", "gauge", "histogram", "summary", "untyped"})
_TYPES_OPENMETRICS = _TYPES_TEXT | {"info", "stateset", "gaugehistogram", "unknown"}
_EXCERPT_CHARS = 80


class SampleLimitExceeded(Exception):
    """`parse_raw_samples` stopped: the exposition has more samples than its `limit`."""

    def __init__(self, limit: int, line: int) -> None:
        self.limit = limit
        self.line = line
        super().__init__(f"sample limit exceeded: more than {limit} samples (at line {line})")


def parse_exposition(
    text: str, *, default_timestamp_s: float, openmetrics: bool | None = None
) -> list[ScrapedSample]:
    """Parse a /metrics body into samples, in the order written.

    A sample without a timestamp gets `default_timestamp_s`; one with a timestamp keeps it
    (milliseconds in the text format, seconds in OpenMetrics). `openmetrics=None` treats the
    body as OpenMetrics when its last line is `# EOF`. `ExpositionError(..., line=N)` names
    the first bad line.
    """
    return [
        ScrapedSample(
            name, labels.copy(), value, default_timestamp_s if ts is None else ts, False, exemplar
        )
        for name, _, labels, value, ts, exemplar in parse_keyed_samples(
            text, openmetrics=openmetrics
        )
    ]


def is_openmetrics(text: str) -> bool:
    """Whether the body ends with OpenMetrics's `# EOF` line."""
    tail = text[-64:].rstrip()
    return tail == "# EOF" or tail.endswith("\n# EOF")


def parse_raw_samples(
    text: str, *, openmetrics: bool | None = None, limit: int | None = None
) -> list[RawSample]:
    """Like `parse_exposition`, but tuples, with `None` where the line had no timestamp.

    With `limit`, raises `SampleLimitExceeded` as soon as more than `limit` samples are read.
    """
    return [
        (name, labels.copy(), value, ts)
        for name, _, labels, value, ts, _ in parse_keyed_samples(
            text, openmetrics=openmetrics, limit=limit
        )
    ]


def parse_keyed_samples(
    text: str, *, openmetrics: bool | None = None, limit: int | None = None
) -> list[KeyedSample]:
    """The parser itself: every sample with its label-set key and exemplar (see KeyedSample)."""
    if openmetrics is None:
        openmetrics = is_openmetrics(text)
    ms_timestamps = not openmetrics
    fast_match = _FAST_SAMPLE.fullmatch
    cached_labels = _LABEL_CACHE.get
    known_prefix = _PREFIX_CACHE.get
    samples: list[KeyedSample] = []
    append = samples.append
    no_labels: dict[str, str] = {}
    # A body cannot hold more samples than lines: no counting needed when it has few lines.
    remaining = limit if limit is not None and text.count("\n") >= limit else -1
    eof_line = 0
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line:
            continue
        if eof_line:
            if line.strip(" \t\r"):
                raise ExpositionError(
                    f"content after '# EOF' (line {eof_line}): {_excerpt(line)}", line=lineno
                )
            continue
        if line[0] == "#":
            if line.startswith(("# HELP ", "# TYPE ")) and _SIMPLE_COMMENT.fullmatch(line):
                continue  # the common, well-formed case: nothing to check further
            if _read_comment(line.strip(" \t\r"), lineno, openmetrics):
                eof_line = lineno
            continue
        # A line seen before, but for its value: everything up to the value is known.
        cut = line.rfind(" ") + 1
        if cut:
            known = known_prefix(line[:cut])
            if known is not None:
                raw_value = line[cut:]
                if "_" not in raw_value and raw_value.isascii():
                    try:
                        value = float(raw_value)
                    except ValueError:
                        pass
                    else:
                        append((known[0], known[1], known[2], value, None, None))
                        if remaining >= 0:
                            remaining -= 1
                            if remaining < 0:
                                raise SampleLimitExceeded(limit or 0, lineno)
                        continue
        match = fast_match(line)
        if match is not None:
            name, block, raw_value, raw_ts = match.groups()
            labels: dict[str, str] | None
            if not block:
                labels = no_labels
                block = ""
            else:
                labels = cached_labels(block)
                if labels is None:
                    labels = _simple_labels(block)
            if labels is not None and "_" not in raw_value and raw_value.isascii():
                try:
                    value = float(raw_value)
                except ValueError:
                    pass
                else:
                    if raw_ts is None:
                        append((name, block, labels, value, None, None))
                        if line[match.start(3) - 1] == " ":
                            if len(_PREFIX_CACHE) >= _LABEL_CACHE_SIZE:
                                _PREFIX_CACHE.clear()
                            _PREFIX_CACHE[line[: match.start(3)]] = (name, block, labels)
                    elif ms_timestamps:
                        append((name, block, labels, value, int(raw_ts) / 1000.0, None))
                    else:
                        append((name, block, labels, value, float(raw_ts), None))
                    if remaining >= 0:
                        remaining -= 1
                        if remaining < 0:
                            raise SampleLimitExceeded(limit or 0, lineno)
                    continue
        stripped = line.strip(" \t\r")
        if not stripped:
            continue
        if stripped[0] == "#":
            if _read_comment(stripped, lineno, openmetrics):
                eof_line = lineno
            continue
        append(_parse_sample_line(stripped, lineno, ms_timestamps))
        if remaining >= 0:
            remaining -= 1
            if remaining < 0:
                raise SampleLimitExceeded(limit or 0, lineno)
    return samples


def _simple_labels(block: str) -> dict[str, str] | None:
    """Parse (and cache) a label set the fast way; None when it needs the exact parser."""
    if _SIMPLE_LABELS.fullmatch(block) is None:
        return None
    # Values hold no quotes, so the pieces between quotes alternate names and values.
    parts = block.split('"')
    labels = dict(zip([p.strip(", \t=") for p in parts[0:-1:2]], parts[1::2], strict=True))
    if len(labels) != len(parts) // 2 or "__name__" in labels:
        return None  # duplicate or reserved: the exact parser says which
    if len(_LABEL_CACHE) >= _LABEL_CACHE_SIZE:
        _LABEL_CACHE.clear()
    _LABEL_CACHE[block] = labels
    return labels


def _read_comment(line: str, lineno: int, openmetrics: bool) -> bool:
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
            f"invalid metric name {_excerpt(name)} in '# {keyword}' line", line=lineno
        )
    if keyword == "TYPE":
        if len(parts) < 4 or not parts[3].strip():
            raise ExpositionError(f"'# TYPE {name}' without a type", line=lineno)
        kind = parts[3].strip(" \t")
        allowed = _TYPES_OPENMETRICS if openmetrics else _TYPES_TEXT
        if kind.lower() not in allowed:
            raise ExpositionError(
                f"unknown metric type {_excerpt(kind)} for {name} "
                f"(expected one of {', '.join(sorted(allowed))})",
                line=lineno,
            )
    return False


def _parse_sample_line(line: str, lineno: int, ms_timestamps: bool) -> KeyedSample:
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
        raise ExpositionError(f"invalid metric name at the start of {_excerpt(line)}", line=lineno)
    name = match.group()
    i = match.end()
    labels: dict[str, str] = {}
    if i < n and line[i] == "{":
        i = _parse_labels(line, i + 1, lineno, name, labels)
    elif i < n and line[i] not in " \t":
        raise ExpositionError(
            f"invalid character {line[i]!r} in metric name {_excerpt(line[: i + 1])}",
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
            f"unexpected text after the timestamp of {what}{name}: "
            f"{_excerpt(' '.join(tokens[2:]))}",
            line=lineno,
        )
    value = _parse_float(tokens[0])
    if value is None:
        raise ExpositionError(
            f"invalid value {_excerpt(tokens[0])} for {what}{name}", line=lineno
        )
    ts: float | None = None
    if len(tokens) == 2:
        raw_ts = tokens[1]
        if ms_timestamps:
            if _INT_FULL.fullmatch(raw_ts) is None:
                raise ExpositionError(
                    f"invalid timestamp {_excerpt(raw_ts)} for {what}{name} "
                    "(expected integer milliseconds)",
                    line=lineno,
                )
            ts = int(raw_ts) / 1000.0
        else:
            ts = _parse_float(raw_ts)
            if ts is None or not math.isfinite(ts):
                raise ExpositionError(
                    f"invalid timestamp {_excerpt(raw_ts)} for {what}{name} (expected seconds)",
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
            f"invalid exemplar of {name}: expected '{{' after '#', found {_excerpt(text[i:])}",
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
                f"invalid label name at column {i + 1} of {name}: {_excerpt(line[i:])}",
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
            f"expected ',' or '}}' after the value of label {label!r}, found {_excerpt(line[i:])}",
            line=lineno,
        )


def _parse_float(token: str) -> float | None:
    if _FLOAT_FULL.fullmatch(token) is None:
        return None
    return float(token)


def _excerpt(text: str) -> str:
    if len(text) > _EXCERPT_CHARS:
        text = text[:_EXCERPT_CHARS] + "..."
    return repr(text)
