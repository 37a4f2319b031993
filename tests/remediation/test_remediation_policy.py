"""Remediation policies: which alert leads to which action, from YAML whose errors name the
file, the line and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
from remediation_doubles import EXAMPLE_POLICY, REPOSITORY

from remediation import (
    PolicyError,
    PolicyRule,
    RemediationPolicy,
    load_remediation_policy,
    parse_remediation_policy,
)

DRAIN_UNHEALTHY = PolicyRule(
    name="drain-unhealthy-node",
    match={},
    match_re={"alertname": "NodeDown|NodeHighErrorRate|NodeHighLatency|GpuXidError"},
    action="drain",
)

GOOD = """\
version: inferops/v1
policies:
  - name: drain-unhealthy-node
    match_re: {alertname: "NodeDown|GpuXidError"}
    action: drain
"""


DEFAULT_ALERTS = (
    "NodeDown|NodeUnhealthy|NodeHighErrorRate|NodeHighLatency|GpuXidError|GpuThermalSlowdown"
    "|KvCacheExhausted"
)


@pytest.mark.parametrize(
    ("path", "alertnames"),
    [
        (EXAMPLE_POLICY, "NodeDown|NodeHighErrorRate|NodeHighLatency|GpuXidError"),
        (REPOSITORY / "inferops" / "defaults" / "remediation-policy.yaml", DEFAULT_ALERTS),
    ],
    ids=["the example policy", "the default policy the demo uses"],
)
def test_the_shipped_policies_drain_a_node_an_alert_names_unhealthy(
    path: Path, alertnames: str
) -> None:
    expected = PolicyRule(
        name="drain-unhealthy-node", match={}, match_re={"alertname": alertnames},
        action="drain",
    )
    assert load_remediation_policy(path) == RemediationPolicy(rules=(expected,))


def test_every_field_of_a_rule_is_read() -> None:
    text = """\
version: inferops/v1
policies:
  - name: cycle-on-xid
    match: {alertname: GpuXidError, code: 79}
    match_re:
      severity: page|critical
    action: cycle
    node_label: instance_name
    dry_run: true
  - name: undrain-when-healthy
    match: {alertname: NodeHealthy}
    action: undrain
"""
    assert parse_remediation_policy(text) == RemediationPolicy(rules=(
        PolicyRule(
            name="cycle-on-xid", match={"alertname": "GpuXidError", "code": "79"},
            match_re={"severity": "page|critical"}, action="cycle", node_label="instance_name",
            dry_run=True,
        ),
        PolicyRule(name="undrain-when-healthy", match={"alertname": "NodeHealthy"}, match_re={},
                   action="undrain"),
    ))


def test_a_policy_with_an_empty_list_has_no_rules() -> None:
    assert parse_remediation_policy("version: inferops/v1\npolicies: []\n") == RemediationPolicy(
        rules=()
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "policy.yaml:1: <document>: the document is empty; expected "
             "'version: inferops/v1' and 'policies'"),
        ("# nothing here\n", "policy.yaml:1: <document>: the document is empty; expected "
                             "'version: inferops/v1' and 'policies'"),
        ("version: inferops/v1\npolicies: [\n",
         "policy.yaml:3: <document>: invalid YAML: expected the node content, but found "
         "'<stream end>'"),
        ("version: inferops/v1\npolicies:\n\t- name: x\n",
         "policy.yaml:3: <document>: invalid YAML: found character '\\t' that cannot start "
         "any token"),
        ("- version\n- policies\n",
         "policy.yaml:1: <document>: expected a mapping with version, policies"),
        ("policies: []\n", "policy.yaml:1: version: missing; expected 'inferops/v1'"),
        ("version: inferops/v2\npolicies: []\n",
         "policy.yaml:1: version: unsupported version 'inferops/v2'; expected 'inferops/v1'"),
        ("version: 1\npolicies: []\n", "policy.yaml:1: version: expected a string, got 1"),
        ("version: inferops/v1\n", "policy.yaml:1: policies: missing; expected a list of policies"),
        ("version: inferops/v1\npolicies: {drain: node-1}\n",
         "policy.yaml:2: policies: expected a list of policies"),
        ("version: inferops/v1\npolicies:\n",
         "policy.yaml:2: policies: expected a list of policies"),
        ("version: inferops/v1\npolicies: []\nrules: []\n",
         "policy.yaml:3: rules: unknown field; expected one of: version, policies"),
        ("version: inferops/v1\nversion: inferops/v1\npolicies: []\n",
         "policy.yaml:2: version: duplicate field"),
        ("version: inferops/v1\npolicies:\n  - drain\n",
         "policy.yaml:3: policies[0]: expected a mapping with name, action and match or match_re"),
        (GOOD.replace("  - name: drain-unhealthy-node\n    match_re", "  - match_re"),
         "policy.yaml:3: policies[0].name: missing"),
        (GOOD.replace("    action: drain\n", ""),
         "policy.yaml:3: policies[0].action: missing (give action or steps)"),
        (GOOD.replace("name: drain-unhealthy-node", 'name: ""'),
         "policy.yaml:3: policies[0].name: must not be empty"),
        (GOOD.replace("name: drain-unhealthy-node", "name: 7"),
         "policy.yaml:3: policies[0].name: expected a string, got 7"),
        (GOOD.replace("action: drain", "action: reboot"),
         "policy.yaml:5: policies[0].action: unknown action 'reboot'; expected one of: drain, "
         "undrain, cycle, reroute, profile"),
        (GOOD.replace("action: drain", "action: [drain]"),
         "policy.yaml:5: policies[0].action: expected a string, got a list"),
        (GOOD.replace('    match_re: {alertname: "NodeDown|GpuXidError"}\n', ""),
         "policy.yaml:3: policies[0]: needs at least one matcher in 'match' or 'match_re' "
         "(a rule without one would act on every alert)"),
        (GOOD.replace('match_re: {alertname: "NodeDown|GpuXidError"}', "match: {}"),
         "policy.yaml:3: policies[0]: needs at least one matcher in 'match' or 'match_re' "
         "(a rule without one would act on every alert)"),
        (GOOD.replace('"NodeDown|GpuXidError"', '"Node(Down"'),
         "policy.yaml:4: policies[0].match_re.alertname: invalid regular expression "
         "'Node(Down': missing ), unterminated subpattern at position 4"),
        (GOOD.replace("{alertname: ", '{"alert-name": '),
         "policy.yaml:4: policies[0].match_re.alert-name: invalid label name 'alert-name'"),
        (GOOD.replace('"NodeDown|GpuXidError"', "[NodeDown, GpuXidError]"),
         "policy.yaml:4: policies[0].match_re.alertname: expected a label value, got a list"),
        (GOOD.replace('"NodeDown|GpuXidError"', "null"),
         "policy.yaml:4: policies[0].match_re.alertname: expected a label value, got null"),
        (GOOD.replace('match_re: {alertname: "NodeDown|GpuXidError"}', "match: [alertname]"),
         "policy.yaml:4: policies[0].match: expected a mapping of label name to value"),
        (GOOD.replace('match_re: {alertname: "NodeDown|GpuXidError"}',
                      "match: {alertname: A, alertname: B}"),
         "policy.yaml:4: policies[0].match.alertname: duplicate label"),
        (GOOD + "    when: always\n",
         "policy.yaml:6: policies[0].when: unknown field; expected one of: name, match, "
         "match_re, action, steps, mode, node_label, dry_run"),
        (GOOD + "    action: cycle\n", "policy.yaml:6: policies[0].action: duplicate field"),
        (GOOD + '    node_label: "node name"\n',
         "policy.yaml:6: policies[0].node_label: invalid label name 'node name'"),
        (GOOD + "    node_label: 5\n",
         "policy.yaml:6: policies[0].node_label: expected a string, got 5"),
        (GOOD + '    dry_run: "true"\n',
         "policy.yaml:6: policies[0].dry_run: expected true or false, got 'true'"),
        (GOOD + "    dry_run: 1\n",
         "policy.yaml:6: policies[0].dry_run: expected true or false, got 1"),
        (GOOD + GOOD.split("policies:\n")[1],
         "policy.yaml:6: policies[1].name: duplicate policy name 'drain-unhealthy-node' "
         "(first used on line 3)"),
    ],
    ids=[
        "an empty document",
        "a document of comments only",
        "broken YAML",
        "a tab in the indentation",
        "a list instead of a mapping",
        "no version",
        "a version it does not know",
        "a version that is a number",
        "no policies",
        "policies as a mapping",
        "policies left empty",
        "an unknown top-level field",
        "a duplicate top-level field",
        "a policy that is a word",
        "a policy without a name",
        "a policy without an action",
        "an empty policy name",
        "a policy name that is a number",
        "an unknown action",
        "an action that is a list",
        "a policy without a matcher",
        "a policy with an empty matcher",
        "an invalid regular expression",
        "an invalid label name",
        "a label value that is a list",
        "a label value that is null",
        "a matcher that is a list",
        "a duplicate label in a matcher",
        "an unknown policy field",
        "a duplicate policy field",
        "a node label with a space",
        "a node label that is a number",
        "dry_run as a quoted string",
        "dry_run as a number",
        "a duplicate policy name",
    ],
)
def test_a_wrong_policy_is_refused_naming_file_line_and_field(text: str, message: str) -> None:
    with pytest.raises(PolicyError) as raised:
        parse_remediation_policy(text, filename="policy.yaml")
    assert str(raised.value) == message


def test_a_policy_error_carries_its_parts() -> None:
    with pytest.raises(PolicyError) as raised:
        parse_remediation_policy(GOOD.replace("action: drain", "action: reboot"),
                                 filename="policy.yaml")
    error = raised.value
    assert (error.filename, error.line, error.field, error.problem) == (
        "policy.yaml", 5, "policies[0].action",
        "unknown action 'reboot'; expected one of: drain, undrain, cycle, reroute, profile",
    )


def test_a_policy_file_error_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "remediation.yaml"
    path.write_text(GOOD.replace("action: drain", "action: reboot"), encoding="utf-8")
    with pytest.raises(PolicyError) as raised:
        load_remediation_policy(path)
    assert str(raised.value) == (
        f"{path}:5: policies[0].action: unknown action 'reboot'; expected one of: drain, "
        "undrain, cycle, reroute, profile"
    )


def test_a_missing_policy_file_says_so(tmp_path: Path) -> None:
    path = tmp_path / "missing.yaml"
    with pytest.raises(PolicyError) as raised:
        load_remediation_policy(path)
    assert str(raised.value) == f"{path}: cannot read the file: No such file or directory"


@pytest.mark.parametrize(
    ("rule", "labels", "matches"),
    [
        (DRAIN_UNHEALTHY, {"alertname": "NodeDown", "node": "node-1"}, True),
        (DRAIN_UNHEALTHY, {"alertname": "NodeDownSoon"}, False),
        (DRAIN_UNHEALTHY, {"alertname": "XNodeDown"}, False),
        (DRAIN_UNHEALTHY, {"severity": "page"}, False),
        (PolicyRule("p", {"alertname": "NodeDown", "severity": "page"}, {}, "drain"),
         {"alertname": "NodeDown", "severity": "page", "node": "node-1"}, True),
        (PolicyRule("p", {"alertname": "NodeDown", "severity": "page"}, {}, "drain"),
         {"alertname": "NodeDown", "severity": "ticket"}, False),
        (PolicyRule("p", {"team": ""}, {}, "drain"), {"alertname": "NodeDown"}, True),
        (PolicyRule("p", {}, {"team": "infra|"}, "drain"), {"alertname": "NodeDown"}, True),
        (PolicyRule("p", {}, {"team": ".+"}, "drain"), {"alertname": "NodeDown"}, False),
        (PolicyRule("p", {"alertname": "NodeDown"}, {"node": "node-[0-9]+"}, "drain"),
         {"alertname": "NodeDown", "node": "node-12"}, True),
        (PolicyRule("p", {"alertname": "NodeDown"}, {"node": "node-[0-9]+"}, "drain"),
         {"alertname": "NodeDown", "node": "gpu-node-12"}, False),
    ],
    ids=[
        "a regex alternative matches",
        "a regex matches the whole value, not a prefix",
        "a regex matches the whole value, not a suffix",
        "a missing label does not match a regex that needs text",
        "every equality matcher must match",
        "one differing label is enough to not match",
        "a missing label reads as empty for equality",
        "a missing label reads as empty for a regex",
        "a missing label does not match .+",
        "match and match_re together",
        "match_re anchors at both ends as in Prometheus",
    ],
)
def test_a_rule_matches_alert_labels_as_prometheus_matchers_do(
    rule: PolicyRule, labels: dict[str, str], matches: bool
) -> None:
    assert rule.matches(labels) is matches


def test_the_first_rule_that_matches_decides_and_none_when_none_does() -> None:
    first = PolicyRule("first", {"alertname": "NodeDown"}, {}, "cycle")
    second = PolicyRule("second", {}, {"alertname": "Node.*"}, "drain")
    policy = RemediationPolicy(rules=(first, second))

    assert policy.match({"alertname": "NodeDown"}) is first
    assert policy.match({"alertname": "NodeHighLatency"}) is second
    assert policy.match({"alertname": "GpuXidError"}) is None


@pytest.mark.parametrize(
    ("match_re", "action", "message"),
    [
        ({}, "reboot",
         "policy 'p': unknown action 'reboot'; expected one of: drain, undrain, cycle, "
         "reroute, profile"),
        ({"alertname": "Node(Down"}, "drain",
         "policy 'p': match_re.alertname: invalid regex 'Node(Down': missing ), unterminated "
         "subpattern at position 4"),
    ],
    ids=["an unknown action", "an invalid regular expression"],
)
def test_a_rule_built_in_code_is_checked_too(
    match_re: dict[str, str], action: str, message: str
) -> None:
    with pytest.raises(ValueError) as raised:
        PolicyRule("p", {"alertname": "NodeDown"}, match_re, action)
    assert str(raised.value) == message
