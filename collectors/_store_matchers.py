"""Label matchers as PromQL has them: `=`, `!=`, `=~`, `!~`, on `__name__` too."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import promql_parser

from ._exceptions import QueryError

METRIC_NAME = "__name__"

_OPERATORS = ("=", "!=", "=~", "!~")
# promql_parser's MatchOp values are not hashable: compare with ==.
_FROM_PARSER = [
    (promql_parser.MatchOp.Equal, "="),
    (promql_parser.MatchOp.NotEqual, "!="),
    (promql_parser.MatchOp.Re, "=~"),
    (promql_parser.MatchOp.NotRe, "!~"),
]


@lru_cache(maxsize=1024)
def _anchored(pattern: str) -> re.Pattern[str]:
    """PromQL regexes are fully anchored and `.` matches newlines (Go's `^(?s:...)$`)."""
    try:
        return re.compile(f"(?s:{pattern})")
    except re.error as error:
        raise QueryError(
            f"invalid regular expression {pattern!r} in a label matcher: {error}"
        ) from None


@dataclass(frozen=True, slots=True)
class LabelMatcher:
    """One matcher. A missing label matches as the empty string, as in Prometheus."""

    name: str
    op: str
    value: str
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.op not in _OPERATORS:
            raise QueryError(f"unknown label matcher operator {self.op!r} (expected one of "
                             f"{', '.join(_OPERATORS)})")
        if self.op in ("=~", "!~"):
            object.__setattr__(self, "_regex", _anchored(self.value))

    def matches(self, value: str) -> bool:
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        assert self._regex is not None
        found = self._regex.fullmatch(value) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{self.op}"{escaped}"'


@dataclass(frozen=True, slots=True)
class SeriesMatcher:
    """What one vector selector selects: all of `matchers`, or any of `alternatives`.

    `alternatives` is PromQL's `{a="1" or b="2"}`: each inner tuple is one AND-group.
    """

    alternatives: tuple[tuple[LabelMatcher, ...], ...]

    @property
    def metric_names(self) -> frozenset[str] | None:
        """The metric names that can match (SQL filters on them), or None for any name."""
        names: set[str] = set()
        for group in self.alternatives:
            exact = [m.value for m in group if m.name == METRIC_NAME and m.op == "="]
            if not exact:
                return None
            names.add(exact[0])
        return frozenset(names)

    def matches(self, name: str, labels: Mapping[str, str]) -> bool:
        for group in self.alternatives:
            if all(
                m.matches(name if m.name == METRIC_NAME else labels.get(m.name, ""))
                for m in group
            ):
                return True
        return False

    def __str__(self) -> str:
        return " or ".join(
            "{" + ",".join(str(m) for m in group) + "}" for group in self.alternatives
        )


def _operator(op: promql_parser.MatchOp) -> str:
    for candidate, text in _FROM_PARSER:
        if candidate == op:
            return text
    raise QueryError(f"unsupported label matcher operator {op!r}")


def from_vector_selector(selector: promql_parser.VectorSelector) -> SeriesMatcher:
    """The matchers of a parsed selector, its metric name as a `__name__` matcher."""
    named = (
        (LabelMatcher(METRIC_NAME, "=", selector.name),) if selector.name is not None else ()
    )
    plain = tuple(
        LabelMatcher(m.name, _operator(m.op), m.value) for m in selector.matchers.matchers
    )
    groups = [
        tuple(LabelMatcher(m.name, _operator(m.op), m.value) for m in group)
        for group in selector.matchers.or_matchers
    ]
    if not groups:
        return SeriesMatcher(((*named, *plain),))
    return SeriesMatcher(tuple((*named, *plain, *group) for group in groups))


def parse_matchers(selector: str | Sequence[LabelMatcher] | SeriesMatcher) -> SeriesMatcher:
    """A selector string (`up{job="nodes"}`), a sequence of `LabelMatcher`s, or as it is."""
    if isinstance(selector, SeriesMatcher):
        return selector
    if isinstance(selector, str):
        try:
            parsed = promql_parser.parse(selector)
        except ValueError as error:
            raise QueryError(f"invalid selector {selector!r}: {error}") from None
        if not isinstance(parsed, promql_parser.VectorSelector):
            raise QueryError(f"not a vector selector: {selector!r}")
        return from_vector_selector(parsed)
    matchers = tuple(selector)
    if not matchers:
        raise QueryError("at least one label matcher is needed")
    return SeriesMatcher((matchers,))
