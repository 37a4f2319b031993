"""Prometheus rule files (`groups:` / `rules:`) read into alerting rules for the native
engine."""

from __future__ import annotations

import re
from pathlib import Path

import promql_parser
import yaml

from ._exceptions import SloSpecError
from ._rules import AlertingRule
from ._yaml_fields import FieldPath, YamlFields

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def load_alerting_rules(path: str | Path) -> list[AlertingRule]:
    """Every alerting rule of the file, groups in order; errors name file, line and field.

    Recording rules are refused for now: the native engine evaluates alerts only.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise SloSpecError(f"cannot read rule file: {error.strerror}", filename=str(path)) from None
    return parse_alerting_rules(text, filename=str(path))


def parse_alerting_rules(text: str, *, filename: str = "<string>") -> list[AlertingRule]:
    fields = YamlFields(text, filename)
    top = fields.mapping(fields.root, (), required=("groups",))
    rules: list[AlertingRule] = []
    group_names: set[str] = set()
    for index, group_node in enumerate(fields.sequence(top["groups"], ("groups",))):
        path: FieldPath = ("groups", index)
        group = fields.mapping(
            group_node, path, required=("name", "rules"), optional=("interval", "limit")
        )
        name = fields.string(group["name"], (*path, "name"))
        if name in group_names:
            raise fields.error(group["name"], (*path, "name"), f"duplicate group name {name!r}")
        group_names.add(name)
        if "interval" in group:
            fields.duration(group["interval"], (*path, "interval"))
        for rule_index, rule_node in enumerate(fields.sequence(group["rules"], (*path, "rules"))):
            rules.append(_read_rule(fields, rule_node, (*path, "rules", rule_index)))
    return rules


def _read_rule(fields: YamlFields, node: yaml.Node, path: FieldPath) -> AlertingRule:
    if isinstance(node, yaml.MappingNode) and any(
        isinstance(key, yaml.ScalarNode) and key.value == "record" for key, _ in node.value
    ):
        raise fields.error(
            node,
            (*path, "record"),
            "recording rules are not supported by the native engine yet: inline the "
            "expression in the alert, or run this file in Prometheus",
        )
    values = fields.mapping(
        node, path, required=("alert", "expr"), optional=("for", "labels", "annotations")
    )
    expr = fields.string(values["expr"], (*path, "expr"))
    try:
        promql_parser.parse(expr)
    except ValueError as error:
        raise fields.error(values["expr"], (*path, "expr"), f"not valid PromQL: {error}") from None
    labels = fields.string_map(values["labels"], (*path, "labels")) if "labels" in values else {}
    for name in labels:
        if _LABEL_NAME.fullmatch(name) is None:
            raise fields.error(
                values["labels"], (*path, "labels", name), "not a valid Prometheus label name"
            )
    return AlertingRule(
        alert=fields.string(values["alert"], (*path, "alert")),
        expr=expr,
        for_s=fields.duration(values["for"], (*path, "for")) if "for" in values else 0.0,
        labels=labels,
        annotations=(
            fields.string_map(values["annotations"], (*path, "annotations"))
            if "annotations" in values
            else {}
        ),
    )
