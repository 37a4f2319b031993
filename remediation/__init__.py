"""Act on the fleet — drain, undrain, cycle — guarded and accountable.

Alerts (or a person) ask; a policy maps alerts to actions; guards (disruption budget,
cooldown, unknown node) decide; the driver acts; the fleet's own view verifies; and every
decision, taken or refused, is stored with its reason.
"""

from ._decision_log import Decision, DecisionLog, Outcome
from ._driver import FleetDriver, NodeState, NodeStatus
from ._engine import RemediationEngine
from ._exceptions import FleetDriverError, PolicyError, RemediationError, UnknownNodeError
from ._policy import PolicyRule, RemediationPolicy
from ._policy_file import load_remediation_policy, parse_remediation_policy
from ._reference_driver import ReferenceFleetDriver

__all__ = [
    "Decision",
    "DecisionLog",
    "FleetDriver",
    "FleetDriverError",
    "NodeState",
    "NodeStatus",
    "Outcome",
    "PolicyError",
    "PolicyRule",
    "ReferenceFleetDriver",
    "RemediationEngine",
    "RemediationError",
    "RemediationPolicy",
    "UnknownNodeError",
    "load_remediation_policy",
    "parse_remediation_policy",
]
