"""Alertmanager's label matchers: `name=value`, `name!=value`, `name=~regex`, `name!~regex`.

As in Alertmanager, a regex is anchored (it must match the whole value) and a label the alert
lacks has the value "" (so `team!="db"` matches an alert without a `team` label).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ._exceptions import MatcherError

_LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MATCHER = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*")


class MatchOp(enum.StrEnum):
    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"


@dataclass(frozen=True, slots=True)
class Matcher:
    """One label matcher; `Matcher.parse('node=~"node-[12]"')` reads Alertmanager's syntax."""

    name: str
    value: str
    op: MatchOp = MatchOp.EQUAL
    _regex: re.Pattern[str] | None = field(default=None, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not _LABEL_NAME.fullmatch(self.name):
            raise MatcherError(f"matcher {self}: {self.name!r} is not a valid label name")
        op = MatchOp(self.op)
        object.__setattr__(self, "op", op)
        if op in (MatchOp.REGEX, MatchOp.NOT_REGEX):
            try:
                object.__setattr__(self, "_regex", re.compile(self.value))
            except re.error as error:
                raise MatcherError(
                    f"matcher {self}: {self.value!r} is not a valid regular expression: {error}"
                ) from None

    def __str__(self) -> str:
        return f'{self.name}{self.op}"{self.value}"'

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """`name OP value`, the value optionally in double quotes."""
        found = _MATCHER.fullmatch(text)
        if found is None:
            raise MatcherError(
                f"matcher {text!r}: expected name=value, name!=value, name=~regex or "
                "name!~regex"
            )
        name, op, value = found.groups()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        return cls(name, value, MatchOp(op))

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.name, "")
        if self.op == MatchOp.EQUAL:
            return value == self.value
        if self.op == MatchOp.NOT_EQUAL:
            return value != self.value
        assert self._regex is not None
        found = self._regex.fullmatch(value) is not None
        return found if self.op == MatchOp.REGEX else not found

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "value": self.value, "op": str(self.op)}

    @classmethod
    def from_json(cls, data: Mapping[str, str]) -> Matcher:
        return cls(str(data["name"]), str(data["value"]), MatchOp(data["op"]))


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    return all(matcher.matches(labels) for matcher in matchers)
