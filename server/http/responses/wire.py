"""Responses API wire types: the request body, and the `Turn` a call becomes."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field
from switchyard.server.errors import InvalidRequest
from switchyard.server.http.openai_types import OpenAIBaseModel, parse_body
from switchyard.server.http.responses.tools import ToolPlan, plan_tools


class ReasoningParams(OpenAIBaseModel):
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    summary: str | None = None


class ResponsesRequest(OpenAIBaseModel):
    # Fields in the order of the OpenAI reference.
    background: bool | None = None
    include: list[str] | None = None
    input: str | list[Any] | None = None
    instructions: str | None = None
    max_output_tokens: int | None = Field(None, ge=1)
    metadata: dict[str, str] | None = None
    model: str
    parallel_tool_calls: bool | None = None
    previous_response_id: str | None = None
    reasoning: ReasoningParams | None = None
    store: bool = True
    stream: bool = False
    temperature: float | None = Field(None, ge=0, le=2)
    text: dict[str, Any] | None = None
    tool_choice: str | dict[str, Any] | None = None
    tools: list[Any] | None = None
    top_p: float | None = Field(None, ge=0, le=1)
    truncation: str | None = None
    user: str | None = None


@dataclass(slots=True)
class Turn:
    """One Responses call: what it was asked, and what to echo back and store."""

    body: ResponsesRequest
    input_items: list[dict[str, Any]]
    id: str = field(default_factory=lambda: f"resp_{uuid.uuid4().hex}")
    created_at: int = field(default_factory=lambda: int(time.time()))
    plan: ToolPlan = field(init=False)

    def __post_init__(self) -> None:
        self.plan = plan_tools(self.body.tools)


def parse_responses_request(raw: bytes) -> ResponsesRequest:
    body = parse_body(raw, ResponsesRequest)
    if body.input is None or body.input == "" or body.input == []:
        raise InvalidRequest("input is required: a string or a non-empty list of input items",
                             param="input")
    if body.background:
        raise InvalidRequest("background responses are not supported by Switchyard; "
                             "omit background or set it to false", param="background")
    return body


def input_items(body: ResponsesRequest) -> list[dict[str, Any]]:
    """The caller's input as a list of item dicts (a plain string is one user message)."""
    if isinstance(body.input, str):
        return [{"type": "message", "role": "user", "content": body.input}]
    items = []
    for i, item in enumerate(body.input or []):
        if not isinstance(item, dict):
            raise InvalidRequest(f"input[{i}] must be an object", param=f"input[{i}]")
        items.append(item)
    return items
