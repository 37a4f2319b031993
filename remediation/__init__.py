"""Act on the fleet — drain, undrain, cycle, reroute, profile — guarded and accountable.

Alerts (or a person) ask; a policy maps alerts to ordered steps; guards (kill switch,
circuit breaker, flapping and stale evidence, cooldown, disruption budget, capacity, rate
limit) decide; the driver acts; the fleet's own view and the alert's condition verify; and
every decision, taken, refused, pending approval or rolled back, is stored with its reason
and grouped into incidents.
"""

from ._api import create_remediation_router, decision_json, incident_json
from ._backtest import BacktestRow, HistoricAlert, HistoricalFleet, backtest
from ._decision_log import Decision, DecisionLog, Outcome
from ._diagnosis import OpRegression, ProfileOp, ProfileTable, diff_profiles
from ._driver import FleetDriver, NodeState, NodeStatus
from ._engine import RemediationEngine
from ._engine_steps import Notice, NotifyHook
from ._exceptions import (
    DecisionNotFound,
    FleetDriverError,
    NotPendingApproval,
    PolicyError,
    RemediationError,
    UnknownNodeError,
)
from ._fleet_guards import GuardLimits
from ._incidents import Incident, IncidentLog
from ._kubernetes_driver import KubernetesFleetDriver
from ._policy import ACTIONS, MODES, PolicyRule, PolicyStep, RemediationPolicy
from ._policy_file import load_remediation_policy, parse_remediation_policy
from ._profile_log import ProfileLog, ProfilingDriver, StoredProfile
from ._reference_driver import ReferenceFleetDriver
from ._switches import BreakerState, KillSwitch

__all__ = [
    "ACTIONS",
    "MODES",
    "BacktestRow",
    "BreakerState",
    "Decision",
    "DecisionLog",
    "DecisionNotFound",
    "FleetDriver",
    "FleetDriverError",
    "GuardLimits",
    "HistoricAlert",
    "HistoricalFleet",
    "Incident",
    "IncidentLog",
    "KillSwitch",
    "KubernetesFleetDriver",
    "NodeState",
    "NodeStatus",
    "NotPendingApproval",
    "Notice",
    "NotifyHook",
    "OpRegression",
    "Outcome",
    "PolicyError",
    "PolicyRule",
    "PolicyStep",
    "ProfileLog",
    "ProfileOp",
    "ProfileTable",
    "ProfilingDriver",
    "ReferenceFleetDriver",
    "RemediationEngine",
    "RemediationError",
    "RemediationPolicy",
    "StoredProfile",
    "UnknownNodeError",
    "backtest",
    "create_remediation_router",
    "decision_json",
    "diff_profiles",
    "incident_json",
    "load_remediation_policy",
    "parse_remediation_policy",
]
