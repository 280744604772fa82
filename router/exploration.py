"""Exploration: the epsilon-uniform logging policy over the two model groups.

A configured share of routed requests goes to a uniformly random group, and every routed
request carries the propensity of the group it got. Logged with the row, the propensity
lets replay (router/replay.py) weigh a logged outcome when it estimates another policy.
Overridden and pinned requests are never explored: the caller chose their model.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import NamedTuple

from switchyard.router.decision import MODEL_GROUPS, RouteDecision
from switchyard.router.errors import RoutingError


class Exploration(NamedTuple):
    decision: RouteDecision
    propensity: float | None  # P(this group) under the logging policy; None when not routed
    explored: bool  # the group was drawn at random (it may still equal the router's)


class Explorer:
    def __init__(self, share: float, seed: int | None = None) -> None:
        if not 0 <= share <= 1:
            raise RoutingError(f"exploration share must be in [0, 1]; got {share}", "share")
        self.share = share
        self._rng = random.Random(seed)

    def explore(self, decision: RouteDecision) -> Exploration:
        share = self.share
        if share <= 0 or decision.overridden or decision.model not in MODEL_GROUPS:
            return Exploration(decision, None, False)
        explored = self._rng.random() < share
        chosen = self._rng.choice(MODEL_GROUPS) if explored else decision.model
        propensity = (1 - share) * (chosen == decision.model) + share / len(MODEL_GROUPS)
        if chosen != decision.model:
            decision = switched(decision, chosen)
        return Exploration(decision, propensity, explored)


def switched(decision: RouteDecision, group: str) -> RouteDecision:
    thinking = group == "thinking"
    return replace(decision, model=group, thinking=thinking,
                   reasoning_effort=decision.reasoning_effort if thinking else None,
                   budget_tokens=decision.budget_tokens if thinking else None,
                   reason=f"exploration: random group {group} ({decision.reason})")
