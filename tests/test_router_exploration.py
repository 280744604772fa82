"""The epsilon-uniform exploration policy: propensities, pinned requests, seeding."""

from __future__ import annotations

import pytest
from switchyard.router.decision import RouteDecision
from switchyard.router.errors import RoutingError
from switchyard.router.exploration import Explorer

ROUTED = RouteDecision("thinking", True, "medium", 4096, 0.8, "mlp-v1", "p_hard 0.80")


def test_no_share_keeps_the_decision_and_logs_no_propensity() -> None:
    assert Explorer(0.0).explore(ROUTED) == (ROUTED, None, False)


def test_propensities_match_the_epsilon_uniform_policy() -> None:
    explorer = Explorer(0.2, seed=1)
    seen = [explorer.explore(ROUTED) for _ in range(400)]
    for decision, propensity, _ in seen:
        expected = 0.8 + 0.1 if decision.model == "thinking" else 0.1
        assert propensity == pytest.approx(expected)
    switched = [d for d, _, _ in seen if d.model == "non_thinking"]
    assert 10 < len(switched) < 80  # about 0.2 * 0.5 * 400 = 40
    assert all(not d.thinking and d.reasoning_effort is None and d.budget_tokens is None
               and d.reason.startswith("exploration:") for d in switched)
    assert any(explored and d.model == "thinking" for d, _, explored in seen)


def test_overridden_and_pinned_decisions_are_never_explored() -> None:
    explorer = Explorer(1.0, seed=0)
    overridden = RouteDecision("thinking", True, "high", None, None, "v", "override",
                               overridden=True)
    pinned = RouteDecision("gpt-4.1-mini", False, None, None, None, "v", "pinned")
    assert explorer.explore(overridden) == (overridden, None, False)
    assert explorer.explore(pinned) == (pinned, None, False)


def test_a_seed_repeats_the_draws() -> None:
    draws = [[Explorer(0.5, seed=7).explore(ROUTED) for _ in range(20)] for _ in range(2)]
    assert draws[0] == draws[1]


def test_a_share_outside_zero_one_is_rejected() -> None:
    with pytest.raises(RoutingError, match=r"in \[0, 1\]"):
        Explorer(1.5)
