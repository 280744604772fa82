"""From a difficulty grade to each provider's reasoning knob.

The grade (0 = the shortest reasoning, 1 = the longest: the learned budget's percentile,
router/budget.py) picks an OpenAI-style `reasoning_effort`;
the effort picks a thinking budget through LiteLLM's own table (the one it uses to turn
`reasoning_effort` into Anthropic's `thinking.budget_tokens`), so a decision means the same
thing whichever provider serves it. The upstream maps a decision to each provider's kwargs
(server/upstream/providers.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from switchyard.core.litellm_loader import load_litellm
from switchyard.router.decision import EFFORTS, Effort
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


@cache
def budget_for_effort(effort: Effort) -> int:
    """LiteLLM's thinking budget for an effort (its reasoning_effort -> Anthropic mapping)."""
    if effort not in EFFORTS:
        raise RoutingError(f"unknown effort {effort!r}; valid: {', '.join(EFFORTS)}", "effort")
    load_litellm()
    from litellm.llms.anthropic.chat.transformation import AnthropicConfig

    thinking = AnthropicConfig._map_reasoning_effort(
        effort, model=_BUDGET_REFERENCE_MODEL, custom_llm_provider="anthropic"
    )
    if thinking is None or "budget_tokens" not in thinking:  # pragma: no cover - litellm change
        raise RoutingError(f"LiteLLM has no thinking budget for effort {effort!r}", "effort")
    return int(thinking["budget_tokens"])
