"""Anthropic Messages API wire types and response bodies (the `/v1/messages` door).

Request bodies are validated as `MessagesRequest`; unknown fields are accepted and logged
once (the base class), since Claude Code sends new beta fields often. Content blocks stay
plain dicts here: translate.py checks each block where it turns it into a chat
message, so an error can name the exact block. Response bodies follow the SDK's `Message`,
`Usage` and error models (anthropic-sdk-python `types/`).
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Literal

from pydantic import Field
from switchyard.core.messages import Message
from switchyard.server.errors import SwitchyardError
from switchyard.server.http.openai_types import OpenAIBaseModel
from switchyard.server.pipeline_types import Usage

# Chat Completions finish_reason -> Messages stop_reason.
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                "function_call": "tool_use", "content_filter": "refusal"}
# HTTP status -> Anthropic error type (docs.anthropic.com "Errors"); others are api_error.
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
               403: "permission_error", 404: "not_found_error", 413: "request_too_large",
               429: "rate_limit_error", 504: "timeout_error", 529: "overloaded_error"}


class ThinkingParam(OpenAIBaseModel):
    type: Literal["enabled", "disabled", "adaptive"]
    budget_tokens: int | None = Field(None, ge=1)


class ToolChoiceParam(OpenAIBaseModel):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class OutputConfig(OpenAIBaseModel):
    effort: str | None = None  # the router decides the effort; logged, not obeyed
    format: dict[str, Any] | None = None  # {"type": "json_schema", "schema": {...}}


class MessagesRequest(OpenAIBaseModel):
    # Fields in the order of the Anthropic reference.
    model: str
    messages: list[Any]
    max_tokens: int = Field(ge=1)
    context_management: dict[str, Any] | None = None  # server-side edits: nothing to edit here
    metadata: dict[str, Any] | None = None
    output_config: OutputConfig | None = None
    stop_sequences: list[str] | None = None
    stream: bool = False
    system: Any = None  # a string or text blocks, checked where it is translated
    temperature: float | None = Field(None, ge=0, le=1)
    thinking: ThinkingParam | None = None
    tool_choice: ToolChoiceParam | None = None
    tools: list[Any] | None = None
    top_k: int | None = Field(None, ge=0)  # no Chat Completions equivalent: dropped
    top_p: float | None = Field(None, ge=0, le=1)


class CountTokensRequest(OpenAIBaseModel):
    """`/v1/messages/count_tokens`: a Messages body without max_tokens or stream."""

    model: str
    messages: list[Any]
    system: Any = None
    thinking: ThinkingParam | None = None
    tool_choice: ToolChoiceParam | None = None
    tools: list[Any] | None = None


# -- response bodies -----------------------------------------------------------------------
def message_id() -> str:
    return f"msg_{uuid.uuid4().hex[:24]}"


def usage_body(usage: Usage) -> dict[str, Any]:
    """Anthropic counts cache reads apart from input tokens; chat usage includes them."""
    return {"input_tokens": max(usage.prompt_tokens - usage.cached_tokens, 0),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": usage.cached_tokens,
            "output_tokens": usage.completion_tokens}


def stop_reason(finish_reason: str | None) -> str:
    return STOP_REASONS.get(finish_reason or "stop", "end_turn")


def tool_input(arguments: str) -> dict[str, Any]:
    """A tool call's JSON arguments as the `input` object Anthropic clients expect."""
    try:
        value = json.loads(arguments or "{}")
    except ValueError:
        return {"raw_arguments": arguments}  # the model's invalid JSON, kept for the client
    return value if isinstance(value, dict) else {"value": value}


def content_blocks(message: Message, reasoning: str) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if reasoning:
        # No signature: the text did not come from Anthropic, so none can be verified.
        blocks.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    if message.content:
        blocks.append({"type": "text", "text": message.content})
    blocks += [{"type": "tool_use", "id": c.id, "name": c.name, "input": tool_input(c.arguments)}
               for c in message.tool_calls]
    return blocks


def message_body(msg_id: str, model: str, content: list[dict[str, Any]],
                 finish_reason: str | None, usage: Usage) -> dict[str, Any]:
    return {"id": msg_id, "type": "message", "role": "assistant", "model": model,
            "content": content,
            "stop_reason": None if finish_reason is None else stop_reason(finish_reason),
            "stop_sequence": None, "usage": usage_body(usage)}


def error_body(err: SwitchyardError, request_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "error", "error": {"type": error_type(err),
                                                       "message": err.message}}
    if request_id:
        body["request_id"] = request_id
    return body


def error_type(err: SwitchyardError) -> str:
    return ERROR_TYPES.get(err.status, "api_error")
