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

import re

from ._exceptions import ExpositionError
from ._exposition_grammar import (
    LABEL_NAME_PATTERN,
    METRIC_NAME_PATTERN,
    KeyedSample,
    excerpt,
    parse_sample_line,
    read_comment,
)
from ._sample import ScrapedSample

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

_METRIC_NAME = METRIC_NAME_PATTERN
_LABEL_NAME = LABEL_NAME_PATTERN
_SIMPLE_LABEL = _LABEL_NAME + r'="[^"\\]*"'

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
                    f"content after '# EOF' (line {eof_line}): {excerpt(line)}", line=lineno
                )
            continue
        if line[0] == "#":
            if line.startswith(("# HELP ", "# TYPE ")) and _SIMPLE_COMMENT.fullmatch(line):
                continue  # the common, well-formed case: nothing to check further
            if read_comment(line.strip(" \t\r"), lineno, openmetrics):
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
            if read_comment(stripped, lineno, openmetrics):
                eof_line = lineno
            continue
        append(parse_sample_line(stripped, lineno, ms_timestamps))
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
