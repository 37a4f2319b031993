"""The policy format's steps and modes: every form read, every mistake named by line and
field; the single-`action` form still reads as one step."""

from __future__ import annotations

import pytest
from remediation_doubles import REPOSITORY

from remediation import (
    PolicyError,
    PolicyRule,
    PolicyStep,
    RemediationPolicy,
    load_remediation_policy,
    parse_remediation_policy,
)


def test_the_staged_example_reads_as_ordered_steps_and_modes() -> None:
    policy = load_remediation_policy(
        REPOSITORY / "remediation" / "examples" / "staged-remediation.yaml")
    assert policy == RemediationPolicy(rules=(
        PolicyRule("diagnose-slow-node", {"alertname": "NodeHighLatency"}, {}, steps=(
            PolicyStep("profile", {"seconds": "3"}),
            PolicyStep("reroute", {"weight": "0"}),
            PolicyStep("notify", {"receiver": "oncall",
                                  "message": "latency regression; kernel profile diff attached"}),
        )),
        PolicyRule("cycle-on-xid", {"alertname": "GpuXidError"}, {},
                   steps=(PolicyStep("cycle"),)),
        PolicyRule("drain-erroring-node", {"alertname": "NodeHighErrorRate"}, {}, mode="approval",
                   steps=(PolicyStep("drain"), PolicyStep("escalate", {"receiver": "oncall"}))),
        PolicyRule("watch-down-nodes", {"alertname": "NodeDown"}, {}, "drain", mode="dry-run"),
    ))
    assert [rule.dry_run for rule in policy.rules] == [False, False, False, True]


def test_the_single_action_form_is_one_step() -> None:
    assert PolicyRule("p", {"alertname": "X"}, {}, "cycle").steps == (PolicyStep("cycle"),)
    assert PolicyRule("p", {"alertname": "X"}, {}, "cycle", dry_run=True).mode == "dry-run"


HEAD = "version: inferops/v1\npolicies:\n  - name: p\n    match: {alertname: X}\n"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("    steps: []\n", "<string>:5: policies[0].steps: expected a non-empty list of steps"),
        ("    steps: [reboot]\n",
         "<string>:5: policies[0].steps[0]: unknown step 'reboot'; expected one of: drain, "
         "undrain, cycle, reroute, profile, notify, escalate"),
        ("    steps:\n      - reroute: {weight: heavy}\n",
         "<string>:6: policies[0].steps[0]: reroute.weight must be a number, got 'heavy'"),
        ("    steps:\n      - reroute: {weight: -1}\n",
         "<string>:6: policies[0].steps[0]: reroute.weight must be >= 0, got -1"),
        ("    steps:\n      - profile: {seconds: 0}\n",
         "<string>:6: policies[0].steps[0]: profile.seconds must be in (0, 600], got 0"),
        ("    steps:\n      - drain: {weight: 0}\n",
         "<string>:6: policies[0].steps[0].drain: drain takes no parameters"),
        ("    steps:\n      - notify: {channel: ops}\n",
         "<string>:6: policies[0].steps[0].notify.channel: unknown field; expected one of: "
         "receiver, message"),
        ("    steps: [drain]\n    mode: yolo\n",
         "<string>:6: policies[0].mode: unknown mode 'yolo'; expected one of: auto, dry-run, "
         "approval"),
        ("    steps: [drain]\n    action: drain\n",
         "<string>:5: policies[0].steps: give either action (one step) or steps, not both"),
        ("    steps: [drain]\n    mode: approval\n    dry_run: true\n",
         "<string>:7: policies[0].dry_run: dry_run: true contradicts mode: approval"),
    ],
    ids=["no steps", "an unknown step", "a weight that is not a number", "a negative weight",
         "a zero-second profile", "a parameter drain does not take",
         "a parameter notify does not take", "an unknown mode", "both action and steps",
         "dry_run against approval"],
)
def test_a_wrong_step_or_mode_is_named_by_line_and_field(body: str, message: str) -> None:
    with pytest.raises(PolicyError) as raised:
        parse_remediation_policy(HEAD + body)
    assert str(raised.value) == message
