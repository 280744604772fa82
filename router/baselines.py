"""Routers that learn nothing: the random and constant baselines, and "routing off"."""

from __future__ import annotations

from typing import Any

import numpy as np
from switchyard.router.base import Router, validate_group
from switchyard.router.decision import RouteDecision, RouteRequest
from switchyard.router.knobs import DEFAULT_EFFORT, budget_for_effort


class RandomRouter(Router):
    """Thinking for a random share of requests (RouteLLM's random baseline); seeded."""

    name = "random"

    def __init__(self, *, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._rng = np.random.default_rng(seed)

    def score(self, request: RouteRequest) -> float:
        return float(self._rng.random())


class AlwaysRouter(Router):
    """Every request to the thinking group."""

    name = "always"

    def score(self, request: RouteRequest) -> float:
        return 1.0


class NeverRouter(Router):
    """Every request to the non-thinking group."""

    name = "never"

    def score(self, request: RouteRequest) -> float:
        return 0.0


class OffRouter(Router):
    """Routing off: the configured default group, no score; caller overrides still apply."""

    name = "off"

    def __init__(self, *, default_group: str = "non_thinking", **kwargs: Any) -> None:
        kwargs["policy_version"] = "off"
        super().__init__(**kwargs)
        self.default_group = validate_group(default_group)

    def score(self, request: RouteRequest) -> float:
        return 1.0 if self.default_group == "thinking" else 0.0

    def _policy(self, p_hard: float, grade: float) -> RouteDecision:
        thinking = self.default_group == "thinking"
        effort = DEFAULT_EFFORT if thinking else None
        return RouteDecision(
            model=self.default_group,
            thinking=thinking,
            reasoning_effort=effort,
            budget_tokens=budget_for_effort(effort) if effort else None,
            p_hard=None,
            policy_version="off",
            reason=f"routing off: default model {self.default_group}",
        )
