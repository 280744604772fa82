"""OpenAI wire types for the HTTP proxy, and their translation to the pipeline's types.

Unknown request fields are accepted (clients send new ones all the time) and logged once, as
vLLM does. Switchyard-only controls travel in `x-switchyard-*` headers, listed in
`OVERRIDE_HEADERS`, so request bodies stay exactly OpenAI's.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from switchyard.core.messages import parse_messages, parse_tools
from switchyard.router.decision import EFFORTS, RouteOverrides
from switchyard.server.errors import InvalidRequest
from switchyard.server.pipeline_types import ChatRequest, ChatResult, SamplingParams, StreamDelta

logger = logging.getLogger(__name__)
_warned_fields: set[str] = set()
BodyT = TypeVar("BodyT", bound=BaseModel)

OVERRIDE_HEADERS = {
    "x-switchyard-thinking": "true/false: force the thinking or non-thinking group",
    "x-switchyard-reasoning-effort": "minimal/low/medium/high: exact effort",
    "x-switchyard-max-effort": "minimal/low/medium/high: cap on the routed effort",
    "x-switchyard-budget-tokens": "integer: exact thinking budget (Anthropic style)",
    "x-switchyard-session-id": "session id for compaction and recall (default: derived)",
    "x-switchyard-compact-budget": "integer: compact the history to this many tokens",
    "x-switchyard-cascade": "on/off: draft with the non-thinking model, escalate if needed",
}


class OpenAIBaseModel(BaseModel):
    """Accepts unknown fields but logs each new one once."""

    model_config = ConfigDict(extra="allow")

    @model_validator(mode="after")
    def _log_extra(self) -> OpenAIBaseModel:
        for name in (self.model_extra or {}):
            if name not in _warned_fields:
                _warned_fields.add(name)
                logger.info("ignoring unsupported request field %r", name)
        return self


class StreamOptions(OpenAIBaseModel):
    include_usage: bool = False


class ChatCompletionRequest(OpenAIBaseModel):
    # Fields in the order of the OpenAI reference.
    messages: list[Any]
    model: str
    max_completion_tokens: int | None = Field(None, ge=1)
    max_tokens: int | None = Field(None, ge=1)
    n: int = Field(1, ge=1, le=1, description="Switchyard serves one choice per request")
    parallel_tool_calls: bool | None = None
    reasoning_effort: Literal["minimal", "low", "medium", "high"] | None = None
    response_format: dict[str, Any] | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    tool_choice: str | dict[str, Any] | None = None
    tools: list[Any] | None = None
    top_p: float | None = Field(None, ge=0, le=1)
    user: str | None = None


def parse_body(raw: bytes, model: type[BodyT]) -> BodyT:
    """A JSON request body validated as `model`; errors name the offending field."""
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}", code="invalid_json")
    if not isinstance(data, dict):
        raise InvalidRequest("the request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InvalidRequest(f"{where}: {err['msg']}", param=where) from None


def parse_chat_request(raw: bytes, headers: Mapping[str, str]) -> ChatRequest:
    body = parse_body(raw, ChatCompletionRequest)
    stop = (body.stop,) if isinstance(body.stop, str) else tuple(body.stop) if body.stop else None
    params = SamplingParams(
        temperature=body.temperature, top_p=body.top_p,
        max_tokens=body.max_completion_tokens or body.max_tokens, stop=stop, seed=body.seed,
        tool_choice_json=json.dumps(body.tool_choice) if body.tool_choice is not None else None,
        parallel_tool_calls=body.parallel_tool_calls,
        response_format_json=(json.dumps(body.response_format)
                              if body.response_format is not None else None),
        user=body.user)
    return ChatRequest(
        messages=parse_messages(body.messages), model=body.model,
        tools=parse_tools(body.tools), params=params,
        overrides=header_overrides(headers, body.reasoning_effort), stream=body.stream,
        include_usage=bool(body.stream_options and body.stream_options.include_usage),
        session_id=headers.get("x-switchyard-session-id", ""),
        compact_budget=int_header(headers, "x-switchyard-compact-budget"),
        raw_json=raw.decode("utf-8", errors="replace"), cascade=cascade_header(headers))


def cascade_header(headers: Mapping[str, str]) -> bool | None:
    value = headers.get("x-switchyard-cascade")
    if value is None:
        return None
    if value.lower() not in ("on", "off"):
        raise InvalidRequest(f"x-switchyard-cascade must be on or off; got {value!r}",
                             param="x-switchyard-cascade")
    return value.lower() == "on"


def header_overrides(headers: Mapping[str, str], body_effort: str | None) -> RouteOverrides:
    thinking = headers.get("x-switchyard-thinking")
    if thinking is not None and thinking.lower() not in ("true", "false", "1", "0"):
        raise InvalidRequest("x-switchyard-thinking must be true or false",
                             param="x-switchyard-thinking")
    return RouteOverrides(
        thinking=None if thinking is None else thinking.lower() in ("true", "1"),
        reasoning_effort=_effort(headers, "x-switchyard-reasoning-effort") or body_effort,  # type: ignore[arg-type]
        max_effort=_effort(headers, "x-switchyard-max-effort"),  # type: ignore[arg-type]
        budget_tokens=int_header(headers, "x-switchyard-budget-tokens"),
    )


def _effort(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None and value not in EFFORTS:
        raise InvalidRequest(f"{name} must be one of {', '.join(EFFORTS)}; got {value!r}",
                             param=name)
    return value


def int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    if not value.isdigit() or int(value) <= 0:
        raise InvalidRequest(f"{name} must be a positive integer; got {value!r}", param=name)
    return int(value)


def completion_body(result: ChatResult) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{result.request_id}",
        "object": "chat.completion",
        "created": result.created,
        "model": result.model,
        "choices": [{"index": 0, "message": result.message.to_openai(), "logprobs": None,
                     "finish_reason": result.finish_reason}],
        "usage": result.usage.to_openai(),
        "system_fingerprint": None,
    }


def chunk_body(request_id: str, model: str, delta: StreamDelta, first: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"role": "assistant"} if first else {}
    if delta.content or first:
        out["content"] = delta.content
    if delta.tool_calls:
        calls = []
        for c in delta.tool_calls:
            call: dict[str, Any] = {"index": c.index}
            if c.id:
                call["id"], call["type"] = c.id, "function"
            fn: dict[str, str] = {"arguments": c.arguments}
            if c.name:
                fn["name"] = c.name
            call["function"] = fn
            calls.append(call)
        out["tool_calls"] = calls
    return {"id": f"chatcmpl-{request_id}", "object": "chat.completion.chunk",
            "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "delta": out, "logprobs": None,
                         "finish_reason": delta.finish_reason}]}


def usage_chunk_body(request_id: str, model: str, delta: StreamDelta) -> dict[str, Any]:
    assert delta.usage is not None
    return {"id": f"chatcmpl-{request_id}", "object": "chat.completion.chunk",
            "created": int(time.time()), "model": model, "choices": [],
            "usage": delta.usage.to_openai()}
