"""Typed reading of a composed YAML document, every error naming file, line and field.

`yaml.safe_load` forgets where values were written; composing keeps each node's start mark,
so a wrong value can be reported as `slos.yaml:7: slos[0].objective: ...`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import yaml
from yaml.constructor import SafeConstructor

from ._durations import parse_duration
from ._exceptions import SloSpecError

FieldPath = tuple[str | int, ...]

_STR = "tag:yaml.org,2002:str"
_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")


def format_field(path: FieldPath) -> str:
    """`("slos", 0, "objective")` -> `slos[0].objective`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text or "<document>"


def shown(node: yaml.Node) -> str:
    """A value as the user wrote it, for `got ...` in messages."""
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if node.tag == _STR:
        return repr(node.value)
    return str(node.value) if node.value != "" else "nothing"


class YamlFields:
    """One YAML file: its root node and checked accessors for the values under it."""

    def __init__(self, text: str, filename: str) -> None:
        self.filename = filename
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as error:
            mark = error.problem_mark or error.context_mark
            line = mark.line + 1 if mark is not None else None
            problem = error.problem or error.context or "malformed"
            raise SloSpecError(f"invalid YAML: {problem}", filename=filename, line=line) from None
        except yaml.YAMLError as error:
            raise SloSpecError(f"invalid YAML: {error}", filename=filename) from None
        if root is None:
            raise SloSpecError("the file is empty", filename=filename, line=1)
        self.root: yaml.Node = root

    @classmethod
    def of_document(cls, root: yaml.Node, filename: str) -> YamlFields:
        """One document of a multi-document file, already composed (lines stay the file's)."""
        fields = cls.__new__(cls)
        fields.filename = filename
        fields.root = root
        return fields

    def error(self, node: yaml.Node, path: FieldPath, reason: str) -> SloSpecError:
        """The error at `node`; a mapping or list is reported on the line of its key."""
        if isinstance(node, yaml.CollectionNode):
            line = self.line_of(path)
        else:
            line = node.start_mark.line + 1
        return SloSpecError(reason, field=format_field(path), filename=self.filename, line=line)

    def mapping(
        self,
        node: yaml.Node,
        path: FieldPath,
        *,
        required: Sequence[str] = (),
        optional: Sequence[str] = (),
    ) -> dict[str, yaml.Node]:
        """The mapping's values by key; unknown, repeated and missing keys are errors."""
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, path, f"must be a mapping, got {shown(node)}")
        allowed = (*required, *optional)
        values: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str) or key not in allowed:
                raise self.error(
                    key_node,
                    (*path, str(key)),
                    f"unknown key (allowed: {', '.join(allowed)})",
                )
            if key in values:
                raise self.error(key_node, (*path, key), "repeated key")
            values[key] = value_node
        for key in required:
            if key not in values:
                raise self.error(node, (*path, key), "required but missing")
        return values

    def sequence(
        self, node: yaml.Node, path: FieldPath, *, non_empty: bool = False
    ) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.error(node, path, f"must be a list, got {shown(node)}")
        if non_empty and not node.value:
            raise self.error(node, path, "must not be empty")
        return list(node.value)

    def string(self, node: yaml.Node, path: FieldPath) -> str:
        if not isinstance(node, yaml.ScalarNode) or node.tag != _STR or not node.value.strip():
            raise self.error(node, path, f"must be a non-empty string, got {shown(node)}")
        return str(node.value)

    def number(self, node: yaml.Node, path: FieldPath) -> float:
        if not isinstance(node, yaml.ScalarNode) or node.tag not in _NUMBER_TAGS:
            raise self.error(node, path, f"must be a number, got {shown(node)}")
        value = float(SafeConstructor().construct_object(node))
        if not math.isfinite(value):
            raise self.error(node, path, f"must be a finite number, got {shown(node)}")
        return value

    def duration(self, node: yaml.Node, path: FieldPath, *, seconds_allowed: bool = False) -> float:
        """A duration string; a plain number (seconds) too where `seconds_allowed`."""
        if seconds_allowed and isinstance(node, yaml.ScalarNode) and node.tag in _NUMBER_TAGS:
            return self.number(node, path)
        if not isinstance(node, yaml.ScalarNode) or node.tag != _STR:
            raise self.error(
                node, path, f"must be a duration such as 30d, 1h30m or 500ms, got {shown(node)}"
            )
        try:
            return parse_duration(node.value)
        except ValueError as error:
            raise self.error(node, path, str(error)) from None

    def string_map(self, node: yaml.Node, path: FieldPath) -> dict[str, str]:
        """A mapping of strings to strings (labels, annotations)."""
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, path, f"must be a mapping, got {shown(node)}")
        values: dict[str, str] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _STR:
                raise self.error(key_node, (*path, key), "keys must be strings")
            if key in values:
                raise self.error(key_node, (*path, key), "repeated key")
            if not isinstance(value_node, yaml.ScalarNode) or value_node.tag != _STR:
                raise self.error(
                    value_node,
                    (*path, key),
                    f"must be a string (quote it), got {shown(value_node)}",
                )
            values[key] = str(value_node.value)
        return values

    def line_of(self, path: FieldPath) -> int:
        """1-based line of the deepest node along `path` (for errors found after parsing)."""
        node = self.root
        line = node.start_mark.line + 1
        for part in path:
            child: yaml.Node | None = None
            if isinstance(node, yaml.MappingNode):
                for key_node, value_node in node.value:
                    if isinstance(key_node, yaml.ScalarNode) and key_node.value == part:
                        child, line = value_node, key_node.start_mark.line + 1
                        break
            elif (
                isinstance(node, yaml.SequenceNode)
                and isinstance(part, int)
                and 0 <= part < len(node.value)
            ):
                child = node.value[part]
                line = child.start_mark.line + 1
            if child is None:
                break
            node = child
        return line
