"""What the router is asked and what it answers: the typed boundary with the pipeline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from switchyard.core.messages import Message, ToolDefinition

Effort = Literal["minimal", "low", "medium", "high"]
EFFORTS: tuple[Effort, ...] = ("minimal", "low", "medium", "high")
MODEL_GROUPS = ("thinking", "non_thinking")


@dataclass(frozen=True, slots=True)
class RouteOverrides:
    """Caller choices that always win over the policy (HTTP x-switchyard-* headers, gRPC fields)."""

    model: str | None = None  # a concrete configured model name or a group name: pins it
    thinking: bool | None = None  # force the thinking / non-thinking group
    reasoning_effort: Effort | None = None  # exact effort the caller asked for
    max_effort: Effort | None = None  # cap on the policy's effort
    budget_tokens: int | None = None  # exact thinking budget (Anthropic style)

    def any(self) -> bool:
        return any(
            v is not None
            for v in (self.model, self.thinking, self.reasoning_effort, self.max_effort,
                      self.budget_tokens)
        )


@dataclass(frozen=True, slots=True)
class RouteRequest:
    messages: Sequence[Message]
    tools: Sequence[ToolDefinition] = ()
    overrides: RouteOverrides = field(default_factory=RouteOverrides)
    response_format: str | None = None  # "json_object" / "json_schema" / None


@dataclass(frozen=True, slots=True)
class RouteDecision:
    model: str  # the model group ("thinking" / "non_thinking") or a pinned model name
    thinking: bool
    reasoning_effort: Effort | None
    budget_tokens: int | None
    p_hard: float | None  # None when no learned policy scored the request
    policy_version: str
    reason: str
    overridden: bool = False
