"""From a difficulty grade to each provider's reasoning knob.

The grade (0 = the shortest reasoning, 1 = the longest: the learned budget's percentile,
router/budget.py) picks an OpenAI-style `reasoning_effort`;
the effort picks a thinking budget through LiteLLM's own table (the one it uses to turn
`reasoning_effort` into Anthropic's `thinking.budget_tokens`), so a decision means the same
thing whichever provider serves it. `provider_params` gives the extra kwargs for
`litellm.acompletion` for one deployment.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cache, lru_cache
from typing import Any

from switchyard.router.decision import EFFORTS, Effort, RouteDecision
from switchyard.router.errors import RoutingError

# Grade cut points between minimal|low|medium|high; checkpoints may carry calibrated ones.
DEFAULT_EFFORT_CUTS: tuple[float, float, float] = (0.25, 0.5, 0.75)
DEFAULT_EFFORT: Effort = "medium"  # when thinking is forced without a grade or an effort
# The model whose mapping defines the provider-neutral budget: a non-adaptive Claude.
_BUDGET_REFERENCE_MODEL = "claude-3-7-sonnet-20250219"


def effort_for_grade(grade: float, cuts: Sequence[float] = DEFAULT_EFFORT_CUTS) -> Effort:
    """The effort for a grade in [0, 1]: the number of cut points at or below it."""
    if len(cuts) != len(EFFORTS) - 1 or list(cuts) != sorted(cuts):
        raise RoutingError(f"effort cuts must be 3 ascending grades, got {list(cuts)}", "cuts")
    level = sum(1 for c in cuts if grade >= c)
    return EFFORTS[level]


def cap_effort(effort: Effort, max_effort: Effort | None) -> Effort:
    if max_effort is None:
        return effort
    return EFFORTS[min(EFFORTS.index(effort), EFFORTS.index(max_effort))]


def _import_litellm() -> Any:
    # LiteLLM fetches its cost map over the network at import unless told not to.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    return litellm


@cache
def budget_for_effort(effort: Effort) -> int:
    """LiteLLM's thinking budget for an effort (its reasoning_effort -> Anthropic mapping)."""
    if effort not in EFFORTS:
        raise RoutingError(f"unknown effort {effort!r}; valid: {', '.join(EFFORTS)}", "effort")
    _import_litellm()
    from litellm.llms.anthropic.chat.transformation import AnthropicConfig

    thinking = AnthropicConfig._map_reasoning_effort(
        effort, model=_BUDGET_REFERENCE_MODEL, custom_llm_provider="anthropic"
    )
    if thinking is None or "budget_tokens" not in thinking:  # pragma: no cover - litellm change
        raise RoutingError(f"LiteLLM has no thinking budget for effort {effort!r}", "effort")
    return int(thinking["budget_tokens"])


@lru_cache(maxsize=1024)
def _provider_and_params(litellm_model: str) -> tuple[str, frozenset[str]]:
    litellm = _import_litellm()
    try:
        model, provider, _, _ = litellm.get_llm_provider(litellm_model)
    except Exception as exc:  # litellm raises bare BadRequestError subclasses here
        raise RoutingError(
            f"LiteLLM does not know the provider of {litellm_model!r}; "
            "write it as 'provider/model', e.g. 'openai/gpt-5-mini'",
            "model",
        ) from exc
    supported = litellm.get_supported_openai_params(model=model, custom_llm_provider=provider)
    return provider, frozenset(supported or ())


_THINKING_DICT_PROVIDERS = ("anthropic", "bedrock", "vertex_ai", "gemini")
_OPENAI_COMPATIBLE_PROVIDERS = ("openai", "hosted_vllm", "openai_like", "ollama_chat")


def provider_params(decision: RouteDecision, litellm_model: str) -> dict[str, Any]:
    """Extra kwargs for `litellm.acompletion(model=litellm_model, ...)` that carry the decision.

    OpenAI-style providers get `reasoning_effort`; Anthropic, Bedrock and Gemini get
    `thinking={"type": "enabled", "budget_tokens": N}` (LiteLLM turns it into Gemini's
    `thinkingBudget`). A non-thinking decision, or a model without a reasoning knob, gets {}.
    """
    if not decision.thinking:
        return {}
    effort = decision.reasoning_effort or DEFAULT_EFFORT
    if litellm_model.split("/", 1)[0] in _OPENAI_COMPATIBLE_PROVIDERS:
        # Known without asking LiteLLM (whose import costs seconds on the request path).
        return {"reasoning_effort": effort}
    provider, supported = _provider_and_params(litellm_model)
    if provider in _THINKING_DICT_PROVIDERS and "thinking" in supported:
        budget = decision.budget_tokens or budget_for_effort(effort)
        return {"thinking": {"type": "enabled", "budget_tokens": int(budget)}}
    if "reasoning_effort" in supported or provider in _OPENAI_COMPATIBLE_PROVIDERS:
        # A model on an OpenAI-compatible server (vLLM, Ollama, a gateway) is in the thinking
        # group because the operator says it reasons: the OpenAI knob is the one such
        # servers accept, whether or not LiteLLM knows the model.
        return {"reasoning_effort": effort}
    return {}
