"""Router policy: overrides, calibration, knobs vs LiteLLM, registry, loader fallbacks."""

from __future__ import annotations

import json
import logging
import os

import numpy as np
import pytest
from switchyard import router
from switchyard.core.messages import Message
from switchyard.router import (
    ROUTERS,
    CheckpointError,
    RouteDecision,
    RouteOverrides,
    RouteRequest,
    RoutingError,
    apply_overrides,
    budget_for_effort,
    load_router,
)
from switchyard.router.baselines import AlwaysRouter, NeverRouter, OffRouter, RandomRouter
from switchyard.router.calibrate import (
    score_quantiles,
    threshold_for_cost,
    threshold_for_share,
    threshold_from_quantiles,
)
from switchyard.router.checkpoint import load_checkpoint
from switchyard.router.eval_metrics import evaluate_scores
from switchyard.router.knobs import cap_effort, effort_for_grade

KNOWN = {"gpt-5": "thinking", "gpt-4.1-mini": "non_thinking"}
REQ = RouteRequest(messages=(Message(role="user", content="What is 2 + 2?"),))


def _policy(thinking: bool = False) -> RouteDecision:
    return RouteDecision(
        model="thinking" if thinking else "non_thinking", thinking=thinking,
        reasoning_effort="high" if thinking else None,
        budget_tokens=budget_for_effort("high") if thinking else None, p_hard=0.3,
        policy_version="mlp-test", reason="policy",
    )


def test_public_surface_matches_all() -> None:
    exported = {n for n in dir(router) if not n.startswith("_")}
    assert set(router.__all__) <= exported
    assert set(ROUTERS) == {"mlp", "random", "always", "never", "off"}


def test_no_overrides_is_identity() -> None:
    d = _policy()
    assert apply_overrides(d, RouteOverrides(), known_models=KNOWN) is d


def test_pinned_model_name_sets_group_from_config() -> None:
    d = apply_overrides(_policy(False), RouteOverrides(model="gpt-5"), known_models=KNOWN)
    assert (d.model, d.thinking, d.overridden) == ("gpt-5", True, True)
    assert d.reasoning_effort == "medium" and d.budget_tokens == budget_for_effort("medium")
    assert "overridden by caller (model=gpt-5)" in d.reason
    d = apply_overrides(_policy(True), RouteOverrides(model="gpt-4.1-mini"), known_models=KNOWN)
    assert (d.model, d.thinking, d.reasoning_effort, d.budget_tokens) == (
        "gpt-4.1-mini", False, None, None)


def test_pinned_group_and_forced_thinking() -> None:
    d = apply_overrides(_policy(True), RouteOverrides(model="non_thinking"), known_models={})
    assert (d.model, d.thinking) == ("non_thinking", False)
    d = apply_overrides(_policy(False), RouteOverrides(thinking=True), known_models={})
    assert (d.model, d.thinking, d.p_hard) == ("thinking", True, 0.3)


def test_unknown_pinned_model_lists_valid_names() -> None:
    with pytest.raises(RoutingError) as err:
        apply_overrides(_policy(), RouteOverrides(model="gpt-9"), known_models=KNOWN)
    assert "gpt-4.1-mini" in err.value.message and "thinking" in err.value.message
    assert err.value.param == "model"


def test_effort_exact_cap_and_budget() -> None:
    d = apply_overrides(_policy(True), RouteOverrides(max_effort="low"), known_models={})
    assert d.reasoning_effort == "low" and d.budget_tokens == budget_for_effort("low")
    d = apply_overrides(_policy(False), RouteOverrides(reasoning_effort="minimal"),
                        known_models={})
    assert d.thinking and d.reasoning_effort == "minimal"
    d = apply_overrides(_policy(True), RouteOverrides(budget_tokens=5000), known_models={})
    assert d.budget_tokens == 5000 and d.reasoning_effort == "high"
    d = apply_overrides(_policy(True), RouteOverrides(reasoning_effort="high", max_effort="low"),
                        known_models={})
    assert d.reasoning_effort == "low"  # the cap wins over the exact effort


def test_conflicting_overrides_raise() -> None:
    with pytest.raises(RoutingError):
        apply_overrides(_policy(), RouteOverrides(model="gpt-4.1-mini", thinking=True),
                        known_models=KNOWN)
    with pytest.raises(RoutingError):
        apply_overrides(_policy(), RouteOverrides(thinking=False, budget_tokens=100),
                        known_models={})
    with pytest.raises(RoutingError):
        apply_overrides(_policy(), RouteOverrides(budget_tokens=0), known_models={})


def test_overrides_win_through_router_decide() -> None:
    never = NeverRouter(known_models=KNOWN)
    req = RouteRequest(messages=REQ.messages, overrides=RouteOverrides(model="gpt-5"))
    d = never.decide(req)
    assert d.model == "gpt-5" and d.thinking and d.overridden
    assert not never.decide(REQ).thinking and AlwaysRouter().decide(REQ).thinking


def test_effort_mapping_and_cap() -> None:
    assert [effort_for_grade(g) for g in (0.0, 0.3, 0.6, 0.9)] == [
        "minimal", "low", "medium", "high"]
    assert cap_effort("high", "low") == "low" and cap_effort("low", None) == "low"
    with pytest.raises(RoutingError):
        effort_for_grade(0.5, (0.9, 0.1, 0.5))


def test_budgets_follow_litellm_anthropic_mapping() -> None:
    from litellm.llms.anthropic.chat.transformation import AnthropicConfig

    for effort in ("minimal", "low", "medium", "high"):
        mapped = AnthropicConfig._map_reasoning_effort(effort, "claude-3-7-sonnet-20250219",
                                                       "anthropic")
        assert budget_for_effort(effort) == mapped["budget_tokens"]
    assert budget_for_effort("low") < budget_for_effort("medium") < budget_for_effort("high")


def test_calibration_hits_requested_share_on_held_data() -> None:
    rng = np.random.default_rng(0)
    calib, held = rng.beta(2, 5, 20_000), rng.beta(2, 5, 20_000)
    table = score_quantiles(calib)
    for share in (0.1, 0.3, 0.5, 0.8):
        t = threshold_for_share(calib, share)
        assert abs((held >= t).mean() - share) < 0.015
        assert abs((held >= threshold_from_quantiles(table, share)).mean() - share) < 0.015
    assert (held >= threshold_for_share(calib, 0.0)).mean() == 0.0
    t = threshold_for_cost(calib, target_cost=3.0, thinking_cost=5.0, non_thinking_cost=1.0)
    assert abs((held >= t).mean() - 0.5) < 0.015
    with pytest.raises(RoutingError):
        threshold_for_share(calib, 1.5)


def test_routellm_metrics_on_known_curves() -> None:
    rng = np.random.default_rng(1)
    weak = (rng.random(5000) < 0.5).astype(float)
    strong = np.maximum(weak, (rng.random(5000) < 0.6).astype(float))
    gain = strong - weak
    oracle = evaluate_scores(gain + rng.random(5000) * 1e-3, weak, strong)
    rand = evaluate_scores(rng.random(5000), weak, strong)
    assert oracle.apgr > 0.85 and oracle.cpt50 < rand.cpt50
    assert abs(rand.apgr - 0.5) < 0.05 and abs(rand.cpt50 - 50) < 6
    assert oracle.strong_pct[0] == 0.0 and oracle.strong_pct[-1] == 100.0


def test_random_router_is_seeded_and_off_router_says_so() -> None:
    a = [RandomRouter(seed=3).decide(REQ).p_hard for _ in range(2)]
    assert a[0] == a[1]
    d = OffRouter(default_group="thinking").decide(REQ)
    assert d.model == "thinking" and d.p_hard is None and d.policy_version == "off"
    assert d.reason == "routing off: default model thinking"


def test_bad_names_and_thresholds_raise() -> None:
    with pytest.raises(RoutingError, match="valid: mlp, random"):
        load_router("gpt")
    with pytest.raises(RoutingError):
        NeverRouter(threshold=1.5)
    with pytest.raises(RoutingError):
        load_router("off", default_group="medium")


def test_missing_checkpoint_warns_and_routes_off(tmp_path, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="switchyard.router.loader"):
        r = load_router("mlp", checkpoint=tmp_path / "nope.pt", default_group="thinking")
    assert isinstance(r, OffRouter) and "routing off" in caplog.text
    assert r.decide(REQ).model == "thinking"
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")


def test_corrupt_checkpoint_warns_and_routes_off(tmp_path, caplog) -> None:
    from switchyard.router.checkpoint import DEFAULT_CHECKPOINT, paths_for

    weights, meta = paths_for(DEFAULT_CHECKPOINT)
    bad = tmp_path / "bad.safetensors"
    data = weights.read_bytes()
    bad.write_bytes(data[: len(data) // 2])  # truncated
    (tmp_path / "bad.json").write_text(meta.read_text())
    with pytest.raises(CheckpointError, match="do not match the hash"):
        load_checkpoint(bad)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(bad)
    cfg = json.loads(meta.read_text())
    cfg["version"] = 99
    (tmp_path / "bad.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="version"):
        load_checkpoint(bad)
    with caplog.at_level(logging.WARNING, logger="switchyard.router.loader"):
        r = load_router("mlp", checkpoint=bad)
    assert isinstance(r, OffRouter) and "checkpoint unusable" in caplog.text
    assert os.path.exists(weights)  # the bundled checkpoint itself is untouched
