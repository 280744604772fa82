"""The learned router: which model group serves a request and how hard it should think.

Importing this package loads no model; `load_router` does, on first call.
"""

from switchyard.router.base import Router, Scores
from switchyard.router.decision import EFFORTS, Effort, RouteDecision, RouteOverrides, RouteRequest
from switchyard.router.draft_signals import DraftInput
from switchyard.router.errors import CheckpointError, RouterDataError, RoutingError
from switchyard.router.escalation import Escalation, EscalationScorer
from switchyard.router.knobs import budget_for_effort, effort_for_grade
from switchyard.router.loader import load_router
from switchyard.router.overrides import apply_overrides
from switchyard.router.registry import ROUTERS

__all__ = [
    "EFFORTS",
    "ROUTERS",
    "CheckpointError",
    "DraftInput",
    "Effort",
    "Escalation",
    "EscalationScorer",
    "RouteDecision",
    "RouteOverrides",
    "RouteRequest",
    "Router",
    "RouterDataError",
    "RoutingError",
    "Scores",
    "apply_overrides",
    "budget_for_effort",
    "effort_for_grade",
    "load_router",
]
