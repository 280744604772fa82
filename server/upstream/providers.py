"""Providers: which transport serves a deployment, and the kwargs that carry a routing
decision to its provider.

One list says which providers speak the OpenAI wire format. Those are called directly by the
openai transport, and they take `reasoning_effort` without asking LiteLLM (whose import
costs seconds on the request path). Every other provider goes through LiteLLM, which knows
its parameters.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from switchyard.core.litellm_loader import load_litellm
from switchyard.router.decision import RouteDecision
from switchyard.router.errors import RoutingError
from switchyard.router.knobs import DEFAULT_EFFORT, budget_for_effort
from switchyard.server.config import Deployment

# LiteLLM provider prefixes of OpenAI-compatible servers (OpenAI, vLLM, any OpenAI-like
# gateway). `openai_compatible` is not LiteLLM's: it is our alias of `openai_like`. Ollama's
# `ollama_chat` is not here: it speaks Ollama's own API.
OPENAI_COMPATIBLE_PROVIDERS = ("openai", "hosted_vllm", "openai_like", "openai_compatible")
THINKING_DICT_PROVIDERS = ("anthropic", "bedrock", "vertex_ai", "gemini")


def prefix_of(litellm_model: str) -> str:
    return litellm_model.split("/", 1)[0] if "/" in litellm_model else ""


def uses_openai_transport(d: Deployment) -> bool:
    if d.transport != "auto":
        return d.transport == "openai"
    return prefix_of(d.model) in OPENAI_COMPATIBLE_PROVIDERS


def provider_params(decision: RouteDecision, litellm_model: str) -> dict[str, Any]:
    """Extra kwargs for `litellm.acompletion(model=litellm_model, ...)` that carry the decision.

    OpenAI-style providers get `reasoning_effort`; Anthropic, Bedrock and Gemini get
    `thinking={"type": "enabled", "budget_tokens": N}` (LiteLLM turns it into Gemini's
    `thinkingBudget`). A non-thinking decision, or a model without a reasoning knob, gets {}.
    """
    if not decision.thinking:
        return {}
    effort = decision.reasoning_effort or DEFAULT_EFFORT
    if prefix_of(litellm_model) in OPENAI_COMPATIBLE_PROVIDERS:
        return {"reasoning_effort": effort}
    provider, supported = _provider_and_params(litellm_model)
    if provider in THINKING_DICT_PROVIDERS and "thinking" in supported:
        budget = decision.budget_tokens or budget_for_effort(effort)
        return {"thinking": {"type": "enabled", "budget_tokens": int(budget)}}
    if "reasoning_effort" in supported or provider in OPENAI_COMPATIBLE_PROVIDERS:
        # A model on an OpenAI-compatible server (vLLM, a gateway) is in the thinking
        # group because the operator says it reasons: the OpenAI knob is the one such
        # servers accept, whether or not LiteLLM knows the model.
        return {"reasoning_effort": effort}
    return {}


@lru_cache(maxsize=1024)
def _provider_and_params(litellm_model: str) -> tuple[str, frozenset[str]]:
    litellm = load_litellm()
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
