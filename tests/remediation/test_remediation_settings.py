"""The `remediation:` settings section reaches the engine's guards unchanged, with sane
defaults, and a wrong value is named by file, line and field."""

from __future__ import annotations

import pytest

from inferops._control_plane import remediation_limits
from inferops._exceptions import ConfigError
from inferops._settings import parse_settings
from remediation import GuardLimits


def test_the_defaults_turn_the_breaker_and_the_share_budget_on() -> None:
    assert remediation_limits(parse_settings("")) == GuardLimits(
        breaker_max_share=0.5, breaker_window_s=600.0, breaker_close_after_s=300.0,
        max_unavailable="50%", node_capacity_requests=64, max_actions_per_hour=20,
        flap_threshold=4, flap_window_s=600.0, stale_after_s=15.0, escalate_after_cycles=2,
        ladder_window_s=3600.0)


def test_every_guard_setting_is_read_with_durations() -> None:
    settings = parse_settings("""
remediation:
  max_unavailable: "1"
  breaker_max_share: 0.34
  breaker_window: 15m
  breaker_close_after: 2m
  node_capacity_requests: 8
  max_actions_per_hour: 5
  flap_threshold: 3
  flap_window: 5m
  stale_after: 30s
  escalate_after_cycles: 3
  ladder_window: 6h
  recovery_deadline: 90s
""")
    assert remediation_limits(settings) == GuardLimits(
        breaker_max_share=0.34, breaker_window_s=900.0, breaker_close_after_s=120.0,
        max_unavailable="1", node_capacity_requests=8, max_actions_per_hour=5,
        flap_threshold=3, flap_window_s=300.0, stale_after_s=30.0, escalate_after_cycles=3,
        ladder_window_s=21600.0)
    assert settings.remediation.recovery_deadline == 90.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("remediation:\n  max_unavailable: half\n",
         "inferops.yaml:2: remediation.max_unavailable: String should match pattern "
         "'^\\d+%?$'"),
        ("remediation:\n  breaker_max_share: 2\n",
         "inferops.yaml:2: remediation.breaker_max_share: Input should be less than or equal "
         "to 1"),
        ("remediation:\n  flap_threshold: 0\n",
         "inferops.yaml:2: remediation.flap_threshold: Input should be greater than or equal "
         "to 1"),
    ],
)
def test_a_wrong_guard_setting_names_its_line_and_field(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_settings(text, filename="inferops.yaml")
    assert str(raised.value) == message
