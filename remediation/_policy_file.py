"""Read a remediation policy from YAML, with errors that name the file, line and field.

The document is composed (not just loaded) so every value keeps the line it was written on;
a person fixing a policy at 3 a.m. gets `policy.yaml:7: policies[0].action: ...`.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from yaml.constructor import SafeConstructor

from ._exceptions import PolicyError
from ._policy import (
    ACTIONS,
    MODES,
    STEP_KINDS,
    STEP_PARAMS,
    PolicyRule,
    PolicyStep,
    RemediationPolicy,
)

VERSION = "inferops/v1"
_TOP_FIELDS = ("version", "policies")
_RULE_FIELDS = ("name", "match", "match_re", "action", "steps", "mode", "node_label", "dry_run")
_STR_TAG = "tag:yaml.org,2002:str"
_NULL_TAG = "tag:yaml.org,2002:null"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def load_remediation_policy(path: str | Path) -> RemediationPolicy:
    """Read and validate a policy file (`version: inferops/v1`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        problem = f"cannot read the file: {error.strerror}"
        raise PolicyError(str(path), None, None, problem) from None
    return parse_remediation_policy(text, filename=str(path))


def parse_remediation_policy(text: str, *, filename: str = "<string>") -> RemediationPolicy:
    """Validate a policy document given as text; `filename` only appears in errors."""
    return _PolicyReader(filename).read(text)


class _PolicyReader:
    def __init__(self, filename: str) -> None:
        self._filename = filename

    def _error(self, node: yaml.Node, field: str, problem: str) -> PolicyError:
        return PolicyError(self._filename, node.start_mark.line + 1, field, problem)

    def read(self, text: str) -> RemediationPolicy:
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as error:
            mark = error.problem_mark or error.context_mark
            line = mark.line + 1 if mark is not None else 1
            raise PolicyError(
                self._filename, line, "<document>", f"invalid YAML: {error.problem}"
            ) from None
        except yaml.YAMLError as error:
            raise PolicyError(self._filename, 1, "<document>", f"invalid YAML: {error}") from None
        if root is None:
            raise PolicyError(
                self._filename, 1, "<document>",
                f"the document is empty; expected 'version: {VERSION}' and 'policies'",
            )
        fields = self._mapping(root, "<document>", _TOP_FIELDS)
        if "version" not in fields:
            raise self._error(root, "version", f"missing; expected {VERSION!r}")
        version = self._string(fields["version"], "version")
        if version != VERSION:
            raise self._error(
                fields["version"], "version",
                f"unsupported version {version!r}; expected {VERSION!r}",
            )
        if "policies" not in fields:
            raise self._error(root, "policies", "missing; expected a list of policies")
        policies = fields["policies"]
        if not isinstance(policies, yaml.SequenceNode):
            raise self._error(policies, "policies", "expected a list of policies")
        rules: list[PolicyRule] = []
        first_line: dict[str, int] = {}
        for index, item in enumerate(policies.value):
            rule, name_node = self._rule(item, f"policies[{index}]")
            if rule.name in first_line:
                raise self._error(
                    name_node, f"policies[{index}].name",
                    f"duplicate policy name {rule.name!r} "
                    f"(first used on line {first_line[rule.name]})",
                )
            first_line[rule.name] = name_node.start_mark.line + 1
            rules.append(rule)
        return RemediationPolicy(rules=tuple(rules))

    def _rule(self, node: yaml.Node, path: str) -> tuple[PolicyRule, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            raise self._error(
                node, path, "expected a mapping with name, action and match or match_re"
            )
        fields = self._mapping(node, path, _RULE_FIELDS)
        if "name" not in fields:
            raise self._error(node, f"{path}.name", "missing")
        if "action" not in fields and "steps" not in fields:
            raise self._error(node, f"{path}.action", "missing (give action or steps)")
        if "action" in fields and "steps" in fields:
            raise self._error(fields["steps"], f"{path}.steps",
                              "give either action (one step) or steps, not both")
        name = self._string(fields["name"], f"{path}.name")
        if not name:
            raise self._error(fields["name"], f"{path}.name", "must not be empty")
        action = ""
        steps: tuple[PolicyStep, ...] = ()
        if "action" in fields:
            action = self._string(fields["action"], f"{path}.action")
            if action not in ACTIONS:
                raise self._error(
                    fields["action"], f"{path}.action",
                    f"unknown action {action!r}; expected one of: {', '.join(ACTIONS)}",
                )
        else:
            steps = self._steps(fields["steps"], f"{path}.steps")
        mode = "auto"
        if "mode" in fields:
            mode = self._string(fields["mode"], f"{path}.mode")
            if mode not in MODES:
                raise self._error(fields["mode"], f"{path}.mode",
                                  f"unknown mode {mode!r}; expected one of: {', '.join(MODES)}")
        match = self._labels(fields.get("match"), f"{path}.match", regex=False)
        match_re = self._labels(fields.get("match_re"), f"{path}.match_re", regex=True)
        if not match and not match_re:
            raise self._error(
                node, path,
                "needs at least one matcher in 'match' or 'match_re' "
                "(a rule without one would act on every alert)",
            )
        node_label = "node"
        if "node_label" in fields:
            node_label = self._string(fields["node_label"], f"{path}.node_label")
            if not _LABEL_NAME.fullmatch(node_label):
                raise self._error(
                    fields["node_label"], f"{path}.node_label", f"invalid label name {node_label!r}"
                )
        dry_run = False
        if "dry_run" in fields:
            dry_run = self._bool(fields["dry_run"], f"{path}.dry_run")
        if dry_run and mode not in ("auto", "dry-run"):
            raise self._error(fields["dry_run"], f"{path}.dry_run",
                              f"dry_run: true contradicts mode: {mode}")
        rule = PolicyRule(
            name=name, match=match, match_re=match_re, action=action,
            node_label=node_label, dry_run=dry_run, steps=steps, mode=mode,
        )
        return rule, fields["name"]

    def _steps(self, node: yaml.Node, path: str) -> tuple[PolicyStep, ...]:
        """`[drain, {reroute: {weight: 0}}, {notify: {message: ...}}]`: a step is its kind,
        or a one-key mapping of its kind to its parameters."""
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            raise self._error(node, path, "expected a non-empty list of steps")
        steps: list[PolicyStep] = []
        for index, item in enumerate(node.value):
            where = f"{path}[{index}]"
            params: dict[str, str] = {}
            if isinstance(item, yaml.MappingNode) and len(item.value) == 1:
                key, value = item.value[0]
                kind = str(key.value)
                where_params = f"{where}.{kind}"
                if kind in STEP_PARAMS and not STEP_PARAMS[kind]:
                    raise self._error(value, where_params, f"{kind} takes no parameters")
                if kind in STEP_PARAMS:
                    given = self._mapping(value, where_params, STEP_PARAMS[kind])
                    for name, param in given.items():
                        if not isinstance(param, yaml.ScalarNode) or param.tag == _NULL_TAG:
                            raise self._error(param, f"{where_params}.{name}",
                                              f"expected a value, got {_shown(param)}")
                        params[name] = str(param.value)
            elif isinstance(item, yaml.ScalarNode) and item.tag == _STR_TAG:
                kind = str(item.value)
            else:
                raise self._error(item, where,
                                  "expected a step name or a mapping of one step to its parameters")
            if kind not in STEP_KINDS:
                raise self._error(
                    item, where,
                    f"unknown step {kind!r}; expected one of: {', '.join(STEP_KINDS)}",
                )
            try:
                steps.append(PolicyStep(kind, params))
            except ValueError as error:
                raise self._error(item, where, str(error)) from None
        return tuple(steps)

    def _mapping(
        self, node: yaml.Node, path: str, allowed: tuple[str, ...]
    ) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            raise self._error(node, path, f"expected a mapping with {', '.join(allowed)}")
        fields: dict[str, yaml.Node] = {}
        for key, value in node.value:
            name = str(key.value)
            field = name if path == "<document>" else f"{path}.{name}"
            if name not in allowed:
                raise self._error(
                    key, field, f"unknown field; expected one of: {', '.join(allowed)}"
                )
            if name in fields:
                raise self._error(key, field, "duplicate field")
            fields[name] = value
        return fields

    def _string(self, node: yaml.Node, field: str) -> str:
        if not isinstance(node, yaml.ScalarNode) or node.tag != _STR_TAG:
            raise self._error(node, field, f"expected a string, got {_shown(node)}")
        return str(node.value)

    def _bool(self, node: yaml.Node, field: str) -> bool:
        if isinstance(node, yaml.ScalarNode) and node.tag == _BOOL_TAG:
            return bool(SafeConstructor.bool_values[str(node.value).lower()])
        raise self._error(node, field, f"expected true or false, got {_shown(node)}")

    def _labels(self, node: yaml.Node | None, path: str, *, regex: bool) -> dict[str, str]:
        if node is None or (isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG):
            return {}
        if not isinstance(node, yaml.MappingNode):
            raise self._error(node, path, "expected a mapping of label name to value")
        labels: dict[str, str] = {}
        for key, value in node.value:
            label = str(key.value)
            field = f"{path}.{label}"
            if not isinstance(key, yaml.ScalarNode) or not _LABEL_NAME.fullmatch(label):
                raise self._error(key, field, f"invalid label name {label!r}")
            if label in labels:
                raise self._error(key, field, "duplicate label")
            if not isinstance(value, yaml.ScalarNode) or value.tag == _NULL_TAG:
                raise self._error(value, field, f"expected a label value, got {_shown(value)}")
            if regex:
                try:
                    re.compile(value.value)
                except re.error as error:
                    raise self._error(
                        value, field, f"invalid regular expression {value.value!r}: {error}"
                    ) from None
            labels[label] = str(value.value)
        return labels


def _shown(node: yaml.Node) -> str:
    """How a wrong value reads in an error: a string quoted, another scalar as written (so
    `7` does not read as the string '7'), else its kind."""
    if isinstance(node, yaml.ScalarNode):
        if node.tag == _NULL_TAG:
            return "null"
        return repr(node.value) if node.tag == _STR_TAG else str(node.value)
    return "a list" if isinstance(node, yaml.SequenceNode) else "a mapping"
