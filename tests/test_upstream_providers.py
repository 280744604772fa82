"""The upstream's provider mapping: one list of OpenAI-compatible providers decides both the
transport and the reasoning knob, and the knobs match what LiteLLM sends each provider."""

from __future__ import annotations

import pytest
from switchyard.router import RouteDecision, RouteOverrides, apply_overrides, budget_for_effort
from switchyard.server.config import Deployment
from switchyard.server.upstream.providers import (
    OPENAI_COMPATIBLE_PROVIDERS,
    provider_params,
    uses_openai_transport,
)

NOT_ROUTED = RouteDecision("non_thinking", False, None, None, 0.3, "mlp-test", "policy")


def _thinking(effort: str) -> RouteDecision:
    return apply_overrides(NOT_ROUTED, RouteOverrides(reasoning_effort=effort),
                           known_models={})


def test_provider_params_openai_matches_litellm_request() -> None:
    import litellm

    params = provider_params(_thinking("low"), "openai/gpt-5-mini")
    assert params == {"reasoning_effort": "low"}
    optional = litellm.get_optional_params(model="gpt-5-mini", custom_llm_provider="openai",
                                           **params)
    assert optional["reasoning_effort"] == "low"
    assert provider_params(NOT_ROUTED, "openai/gpt-5-mini") == {}


def test_provider_params_anthropic_matches_litellm_reasoning_effort_mapping() -> None:
    import litellm

    model = "claude-3-7-sonnet-20250219"
    for effort in ("low", "medium", "high"):
        params = provider_params(_thinking(effort), f"anthropic/{model}")
        via_effort = litellm.get_optional_params(
            model=model, custom_llm_provider="anthropic", reasoning_effort=effort)
        assert params == {"thinking": dict(via_effort["thinking"])}
        via_ours = litellm.get_optional_params(model=model, custom_llm_provider="anthropic",
                                               **params)
        assert via_ours["thinking"]["budget_tokens"] == budget_for_effort(effort)


def test_provider_params_gemini_reaches_thinking_budget() -> None:
    import litellm

    d = _thinking("medium")
    params = provider_params(d, "gemini/gemini-2.5-flash")
    optional = litellm.get_optional_params(model="gemini-2.5-flash",
                                           custom_llm_provider="gemini", **params)
    assert optional["thinkingConfig"]["thinkingBudget"] == d.budget_tokens


@pytest.mark.parametrize("provider", OPENAI_COMPATIBLE_PROVIDERS)
def test_one_list_decides_transport_and_knob(provider: str) -> None:
    model = f"{provider}/some-reasoner"
    assert uses_openai_transport(Deployment(model=model))
    assert provider_params(_thinking("high"), model) == {"reasoning_effort": "high"}


def test_other_providers_go_through_litellm_unless_told() -> None:
    for model in ("anthropic/claude-sonnet-4-5", "gemini/gemini-2.5-flash", "ollama_chat/qwen3"):
        assert not uses_openai_transport(Deployment(model=model))
    assert uses_openai_transport(Deployment(model="ollama_chat/qwen3", transport="openai"))
    assert not uses_openai_transport(Deployment(model="openai/gpt-5", transport="litellm"))


def test_ollama_takes_its_effort_through_litellm() -> None:
    assert provider_params(_thinking("low"), "ollama_chat/qwen3") == {"reasoning_effort": "low"}
