"""Service level objectives: specs, error budgets, burn rates and the rules that alert on them.

Specs are YAML (`load_slo_specs`, format in `slo._spec_loader`); `SloEvaluator` reports the
SLI, the budget left and burn rates through any `collectors.MetricSource`;
`burn_rate_alert_rules` gives the native alert engine self-contained multi-window,
multi-burn-rate alerts, and `generate_rules` the same alerts plus recording rules for a real
Prometheus.
"""

from ._alert_rules import burn_rate_alert_rules
from ._durations import parse_duration
from ._evaluator import SloEvaluator, SloStatus
from ._exceptions import SloError, SloSpecError
from ._prometheus_rules import generate_rules, render_rules_yaml
from ._rollups import EventRollups, minute_increases
from ._rule_file import load_alerting_rules
from ._rules import AlertingRule, RecordingRule, RuleGroup, format_duration
from ._spec import LatencySli, RatioSli, Sli, SloSpec
from ._spec_loader import load_slo_specs, parse_slo_specs
from ._timeslice_sli import (
    CostSli,
    PercentileSli,
    ThresholdSli,
    ThroughputSli,
    dollars_per_second_expr,
)
from ._windows import BurnRateWindow, load_burn_rate_windows

__all__ = [
    "AlertingRule",
    "BurnRateWindow",
    "CostSli",
    "EventRollups",
    "LatencySli",
    "PercentileSli",
    "RatioSli",
    "RecordingRule",
    "RuleGroup",
    "Sli",
    "SloError",
    "SloEvaluator",
    "SloSpec",
    "SloSpecError",
    "SloStatus",
    "ThresholdSli",
    "ThroughputSli",
    "burn_rate_alert_rules",
    "dollars_per_second_expr",
    "format_duration",
    "generate_rules",
    "load_alerting_rules",
    "load_burn_rate_windows",
    "load_slo_specs",
    "minute_increases",
    "parse_duration",
    "parse_slo_specs",
    "render_rules_yaml",
]
