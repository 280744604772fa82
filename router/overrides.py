"""Caller overrides (x-switchyard-* headers, gRPC fields): they always win over the policy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from switchyard.router.decision import EFFORTS, MODEL_GROUPS, Effort, RouteDecision, RouteOverrides
from switchyard.router.errors import RoutingError
from switchyard.router.knobs import DEFAULT_EFFORT, budget_for_effort, cap_effort


def _pinned(model: str, known_models: Mapping[str, str]) -> tuple[str, bool]:
    """(model, thinking) for a pinned name: a group name or a configured model name."""
    if model in MODEL_GROUPS:
        return model, model == "thinking"
    group = known_models.get(model)
    if group is None:
        valid = sorted(MODEL_GROUPS) + sorted(known_models)
        raise RoutingError(
            f"unknown model {model!r}; valid names: {', '.join(valid)}", param="model"
        )
    if group not in MODEL_GROUPS:
        raise RoutingError(
            f"model {model!r} is configured in group {group!r}; "
            f"groups must be one of {', '.join(MODEL_GROUPS)}",
            param="model",
        )
    return model, group == "thinking"


def _check_effort(value: str | None, param: str) -> None:
    if value is not None and value not in EFFORTS:
        raise RoutingError(f"unknown {param} {value!r}; valid: {', '.join(EFFORTS)}", param)


def _thinking_after(decision: RouteDecision, o: RouteOverrides, pinned: bool | None) -> bool:
    """Thinking after the model pin and the forced flag; exact knobs imply thinking."""
    forced = pinned if pinned is not None else o.thinking
    if pinned is not None and o.thinking is not None and pinned != o.thinking:
        raise RoutingError(
            f"model {o.model!r} conflicts with thinking={o.thinking}", param="thinking"
        )
    wants_knob = o.reasoning_effort is not None or o.budget_tokens is not None
    if forced is False and wants_knob:
        raise RoutingError(
            "reasoning_effort / budget_tokens need a thinking model, "
            "but the overrides pin a non-thinking one",
            param="reasoning_effort" if o.reasoning_effort else "budget_tokens",
        )
    if forced is not None:
        return forced
    return True if wants_knob else decision.thinking


def apply_overrides(
    decision: RouteDecision,
    overrides: RouteOverrides,
    *,
    known_models: Mapping[str, str],
) -> RouteDecision:
    """The policy's decision with every caller override applied; unchanged if there are none."""
    if not overrides.any():
        return decision
    _check_effort(overrides.reasoning_effort, "reasoning_effort")
    _check_effort(overrides.max_effort, "max_effort")
    if overrides.budget_tokens is not None and overrides.budget_tokens <= 0:
        raise RoutingError("budget_tokens must be a positive integer", "budget_tokens")

    model, pinned = (None, None) if overrides.model is None else _pinned(
        overrides.model, known_models
    )
    thinking = _thinking_after(decision, overrides, pinned)
    if model is None or model in MODEL_GROUPS:
        model = "thinking" if thinking else "non_thinking"

    effort: Effort | None = None
    budget: int | None = None
    if thinking:
        effort = overrides.reasoning_effort or decision.reasoning_effort or DEFAULT_EFFORT
        effort = cap_effort(effort, overrides.max_effort)
        if overrides.budget_tokens is not None:
            budget = overrides.budget_tokens
        elif effort == decision.reasoning_effort and decision.budget_tokens is not None:
            budget = decision.budget_tokens
        else:
            budget = budget_for_effort(effort)

    said = [f"{k}={v}" for k, v in _fields(overrides).items() if v is not None]
    return replace(
        decision,
        model=model,
        thinking=thinking,
        reasoning_effort=effort,
        budget_tokens=budget,
        reason=f"{decision.reason}; overridden by caller ({', '.join(said)})",
        overridden=True,
    )


def _fields(o: RouteOverrides) -> dict[str, object]:
    return {
        "model": o.model,
        "thinking": o.thinking,
        "reasoning_effort": o.reasoning_effort,
        "max_effort": o.max_effort,
        "budget_tokens": o.budget_tokens,
    }
