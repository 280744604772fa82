"""The abstract router: subclasses score a request; the policy is written once, here.

`decide` = score -> threshold (thinking or not) -> difficulty grade to effort and budget ->
caller overrides. Like RouteLLM's `Router.route`, the threshold comparison lives only here.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import ClassVar, NamedTuple

import numpy as np
from switchyard.router.decision import MODEL_GROUPS, RouteDecision, RouteRequest
from switchyard.router.errors import RoutingError
from switchyard.router.knobs import DEFAULT_EFFORT_CUTS, budget_for_effort, effort_for_grade
from switchyard.router.overrides import apply_overrides


class Scores(NamedTuple):
    """Per-request p_hard in [0, 1] and difficulty grade in [0, 1], as arrays."""

    p_hard: np.ndarray
    grade: np.ndarray


def validate_threshold(threshold: float) -> float:
    if math.isnan(threshold) or not 0.0 <= float(threshold) <= 1.0:
        raise RoutingError(
            f"threshold must be a number in [0, 1], got {threshold!r}", param="threshold"
        )
    return float(threshold)


def validate_group(group: str) -> str:
    if group not in MODEL_GROUPS:
        raise RoutingError(
            f"unknown model group {group!r}; valid: {', '.join(MODEL_GROUPS)}", "default_group"
        )
    return group


class Router(ABC):
    """Scores requests; `decide` turns a score into a `RouteDecision`."""

    name: ClassVar[str]

    def __init__(
        self,
        *,
        threshold: float = 0.5,
        known_models: Mapping[str, str] | None = None,
        effort_cuts: Sequence[float] = DEFAULT_EFFORT_CUTS,
        policy_version: str | None = None,
    ) -> None:
        self.threshold = validate_threshold(threshold)
        self.known_models = dict(known_models or {})
        self.effort_cuts = tuple(effort_cuts)
        self.policy_version = policy_version or self.name
        effort_for_grade(0.0, self.effort_cuts)  # validates the cuts now, not per request

    @abstractmethod
    def score(self, request: RouteRequest) -> float:
        """P(the non-thinking answer fails where the thinking answer succeeds), in [0, 1]."""

    def score_batch(self, requests: Sequence[RouteRequest]) -> Scores:
        """Scores for many requests; learned routers override this to batch the work."""
        p = np.array([self.score(r) for r in requests], dtype=np.float64)
        return Scores(p_hard=p, grade=p.copy())

    def decide(self, request: RouteRequest) -> RouteDecision:
        return self.decide_batch([request])[0]

    route = decide  # RouteLLM's name for the same step

    def decide_batch(self, requests: Sequence[RouteRequest]) -> list[RouteDecision]:
        requests = list(requests)
        if not requests:
            return []
        scores = self.score_batch(requests)
        return [
            apply_overrides(self._policy(float(p), float(g)), r.overrides,
                            known_models=self.known_models)
            for r, p, g in zip(requests, scores.p_hard, scores.grade)
        ]

    def _policy(self, p_hard: float, grade: float) -> RouteDecision:
        if p_hard < self.threshold:
            return RouteDecision(
                model="non_thinking", thinking=False, reasoning_effort=None,
                budget_tokens=None, p_hard=p_hard, policy_version=self.policy_version,
                reason=f"p_hard {p_hard:.3f} < threshold {self.threshold:.3f}",
            )
        effort = effort_for_grade(grade, self.effort_cuts)
        return RouteDecision(
            model="thinking", thinking=True, reasoning_effort=effort,
            budget_tokens=budget_for_effort(effort), p_hard=p_hard,
            policy_version=self.policy_version,
            reason=f"p_hard {p_hard:.3f} >= threshold {self.threshold:.3f}; "
                   f"grade {grade:.2f} -> effort {effort}",
        )
