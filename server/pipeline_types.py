"""The pipeline's own request and result types; HTTP and gRPC translate to and from these."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from switchyard.core.messages import Message, ToolDefinition
from switchyard.core.trafficlog.schema import Attempt
from switchyard.router.decision import RouteDecision, RouteOverrides


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """OpenAI request fields passed upstream unchanged (JSON-compatible values)."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] | None = None
    seed: int | None = None
    tool_choice_json: str | None = None  # "auto" / "none" / "required" / {"type": "function", ...}
    parallel_tool_calls: bool | None = None
    response_format_json: str | None = None
    user: str | None = None

    def to_openai(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("temperature", "top_p", "max_tokens", "seed", "parallel_tool_calls", "user"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.stop is not None:
            out["stop"] = list(self.stop)
        if self.tool_choice_json is not None:
            out["tool_choice"] = json.loads(self.tool_choice_json)
        if self.response_format_json is not None:
            out["response_format"] = json.loads(self.response_format_json)
        return out

    @property
    def response_format_type(self) -> str | None:
        if self.response_format_json is None:
            return None
        fmt = json.loads(self.response_format_json)
        return fmt.get("type") if isinstance(fmt, dict) else None


@dataclass(frozen=True, slots=True)
class ChatRequest:
    messages: list[Message]
    model: str  # "switchyard/auto" routes; a configured model or group name pins it
    tools: list[ToolDefinition] = field(default_factory=list)
    params: SamplingParams = field(default_factory=SamplingParams)
    overrides: RouteOverrides = field(default_factory=RouteOverrides)
    stream: bool = False
    include_usage: bool = False
    request_id: str = ""  # assigned at admission when empty
    session_id: str = ""  # from the caller, else derived from the first messages
    compact_budget: int | None = None  # caller-requested token budget for the history
    api_key_id: str | None = None
    tags: tuple[str, ...] = ()
    deadline: float | None = None  # absolute time.monotonic() the caller stops waiting
    endpoint: str = "http.chat.completions"  # which front door, for the log
    raw_json: str | None = None  # the caller's body as received, for the log and replay
    shadow_of: str | None = None  # the primary request id, when this is its shadow call
    cascade: bool | None = None  # x-switchyard-cascade / gRPC field: on, off, or routing.mode

    def to_openai(self) -> dict[str, Any]:
        """This request as a Chat Completions body: how doors without JSON bodies (gRPC)
        keep their request in the log, and how replay reads every door's rows."""
        body: dict[str, Any] = {"model": self.model,
                                "messages": [m.to_openai() for m in self.messages]}
        if self.tools:
            body["tools"] = [t.to_openai() for t in self.tools]
        body.update(self.params.to_openai())
        if self.stream:
            body["stream"] = True
        return body


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_openai(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
        }

    @classmethod
    def from_openai(cls, raw: Any) -> Usage:
        if not isinstance(raw, dict):
            return cls()
        completion_details = raw.get("completion_tokens_details") or {}
        prompt_details = raw.get("prompt_tokens_details") or {}
        return cls(
            prompt_tokens=int(raw.get("prompt_tokens") or 0),
            completion_tokens=int(raw.get("completion_tokens") or 0),
            reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0),
            cached_tokens=int(prompt_details.get("cached_tokens") or 0),
        )


@dataclass(slots=True)
class Prepared:
    """A request after admit, compact, recall and route: ready to send upstream."""

    request: ChatRequest
    messages: list[Message]  # what goes upstream (compacted, with recalled context)
    decision: RouteDecision
    tokens_before: int
    tokens_after: int
    recalled_ids: list[str] = field(default_factory=list)
    dropped_ids: list[str] = field(default_factory=list)
    stage_ms: dict[str, float] = field(default_factory=dict)
    started_at: float = 0.0
    propensity: float | None = None  # P(this group) under the logging policy, if exploring
    explored: bool = False
    cascade: dict[str, Any] | None = None  # cascade mode: the draft's log entry


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True, slots=True)
class StreamDelta:
    """One streamed piece: text and/or tool-call fragments, or the final finish/usage."""

    content: str = ""
    reasoning: str = ""
    tool_calls: tuple[ToolCallDelta, ...] = ()
    finish_reason: str | None = None
    usage: Usage | None = None
    model: str = ""


@dataclass(frozen=True, slots=True)
class ChatResult:
    request_id: str
    session_id: str
    model: str  # the upstream model that answered
    message: Message
    finish_reason: str
    usage: Usage
    decision: RouteDecision
    created: int
    tokens_before: int
    tokens_after: int
    attempts: tuple[Attempt, ...] = ()
    cost_usd: float = 0.0
    reasoning: str = ""  # the model's visible reasoning (reasoning_content), if it sent any
