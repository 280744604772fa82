"""The proxy's OpenAPI 3.1 schema, served at GET /openapi.json (and fuzzed by schemathesis).

Generated from the pydantic models the doors validate their bodies with, so a field added
to a door's model shows up here without a second copy. `DOORS` lists every endpoint;
tests/test_openapi.py fails when the app serves a route that `DOORS` does not describe.
The answer models below describe what the handlers write; they are loose (unknown fields
allowed), like the request models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import models_json_schema
from switchyard.server.http.feedback import FeedbackBody
from switchyard.server.http.messages.wire import CountTokensRequest, MessagesRequest
from switchyard.server.http.openai_types import ChatCompletionRequest
from switchyard.server.http.responses.wire import ResponsesRequest

_REF = "#/components/schemas/{model}"


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorInfo(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """Every error from the OpenAI doors, in the OpenAI shape."""

    error: ErrorInfo


class AnthropicErrorInfo(BaseModel):
    type: str
    message: str


class AnthropicError(BaseModel):
    """Every error from the Messages doors, in Anthropic's shape."""

    type: Literal["error"]
    error: AnthropicErrorInfo
    request_id: str | None = None


class ChatCompletion(_Loose):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[dict[str, Any]]
    usage: dict[str, Any] | None = None


class ResponseObject(_Loose):
    id: str
    object: Literal["response"]
    created_at: int
    status: str
    model: str
    output: list[dict[str, Any]]
    usage: dict[str, Any] | None = None


class AnthropicMessage(_Loose):
    id: str
    type: Literal["message"]
    role: Literal["assistant"]
    model: str
    content: list[dict[str, Any]]
    stop_reason: str | None
    stop_sequence: str | None = None
    usage: dict[str, Any]


class TokenCount(BaseModel):
    input_tokens: int


class FeedbackAck(BaseModel):
    object: Literal["feedback"]
    request_id: str
    source: str
    status: Literal["created", "replaced"]


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[dict[str, Any]]


class Health(_Loose):
    status: str


class Ready(_Loose):
    """The warm-up's state; the same body comes with 503 while warming."""

    status: Literal["ready", "warming"]


# The chat models type a message as Any (parse_messages checks it, with errors that name the
# field); the schema describes the shape, so the fuzzer also sends well-formed histories.
_MESSAGE = {
    "type": "object",
    "required": ["role"],
    "properties": {
        "role": {"type": "string",
                 "enum": ["system", "developer", "user", "assistant", "tool"]},
        "content": {"anyOf": [{"type": "string"}, {"type": "null"},
                              {"type": "array", "items": {"type": "object"}}]},
        "name": {"type": "string"},
        "tool_calls": {"type": "array", "items": {"type": "object"}},
        "tool_call_id": {"type": "string"},
    },
}
# The Messages doors' turns: user and assistant only, text or content blocks.
_ANTHROPIC_MESSAGE = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {
        "role": {"type": "string", "enum": ["user", "assistant"]},
        "content": {"anyOf": [{"type": "string"},
                              {"type": "array", "items": {"type": "object"}}]},
    },
}

_ERRORS = {400: "Invalid request", 401: "Missing, wrong or revoked API key",
           404: "Unknown model, or unknown request id (feedback)",
           413: "Over a size limit (body, messages, tokens)",
           429: "Over a limit (concurrency per key) or upstream rate limit",
           502: "Upstream failed", 504: "Upstream timed out"}


@dataclass(frozen=True, slots=True)
class Door:
    path: str
    method: Literal["get", "post"]
    operation_id: str
    summary: str
    answer: type[BaseModel] | None  # None: Prometheus text
    body: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()
    streams: bool = False
    secured: bool = True
    error: type[BaseModel] = ErrorResponse
    message: str = "Message"  # the schema of a `messages` item, if the body has that field


_UPSTREAM_ERRORS = (400, 401, 404, 413, 429, 502, 504)
DOORS = (
    Door("/v1/chat/completions", "post", "createChatCompletion",
         "OpenAI chat completions, routed, compacted and recalled", ChatCompletion,
         ChatCompletionRequest, _UPSTREAM_ERRORS, streams=True),
    Door("/v1/responses", "post", "createResponse",
         "OpenAI Responses API over the same pipeline", ResponseObject, ResponsesRequest,
         _UPSTREAM_ERRORS, streams=True),
    Door("/v1/messages", "post", "createMessage",
         "Anthropic Messages API over the same pipeline (Claude Code)", AnthropicMessage,
         MessagesRequest, _UPSTREAM_ERRORS, streams=True, error=AnthropicError,
         message="AnthropicInputMessage"),
    Door("/v1/messages/count_tokens", "post", "countMessageTokens",
         "A Messages body's prompt tokens, as admission counts them", TokenCount,
         CountTokensRequest, (400, 401, 413, 429), error=AnthropicError,
         message="AnthropicInputMessage"),
    Door("/v1/feedback", "post", "createFeedback",
         "Attach an outcome to a logged request", FeedbackAck, FeedbackBody, (400, 401, 404)),
    Door("/v1/models", "get", "listModels", "Models and groups", ModelList,
         errors=(401, 429)),
    Door("/healthz", "get", "health", "Serving", Health, secured=False),
    Door("/readyz", "get", "ready", "Warm (200); 503 with retry-after while warming", Ready,
         secured=False),
    Door("/", "get", "root", "Serving, behind the key check (Claude Code sends HEAD /)", Health,
         errors=(401, 429)),
    Door("/metrics", "get", "metrics", "Prometheus text format", None, secured=False),
)


def openapi_schema() -> dict[str, Any]:
    models: list[type[BaseModel]] = list(dict.fromkeys(
        [*(d.error for d in DOORS),
         *(m for d in DOORS for m in (d.body, d.answer) if m is not None)]))
    refs, defs = models_json_schema([(m, "validation") for m in models], ref_template=_REF)
    schemas = defs["$defs"]
    for door in DOORS:
        if door.body is not None and "messages" in schemas[door.body.__name__]["properties"]:
            schemas[door.body.__name__]["properties"]["messages"]["items"] = {
                "$ref": _REF.format(model=door.message)}
    schemas["Message"], schemas["AnthropicInputMessage"] = _MESSAGE, _ANTHROPIC_MESSAGE

    def ref(model: type[BaseModel]) -> dict[str, Any]:
        return refs[(model, "validation")]

    return {
        "openapi": "3.1.0",
        "info": {"title": "Switchyard proxy", "version": "1",
                 "description": "OpenAI-compatible and Anthropic Messages doors behind "
                                "learned routing, compaction and retrieval. With auth.mode "
                                "'keys', send 'Authorization: Bearer <key>' or "
                                "'x-api-key: <key>'."},
        "paths": {d.path: {d.method: _operation(d, ref)} for d in DOORS},
        "components": {"securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"}},
                       "schemas": schemas},
    }


def _operation(door: Door, ref: Any) -> dict[str, Any]:
    if door.answer is None:
        content: dict[str, Any] = {"text/plain": {"schema": {"type": "string"}}}
    else:
        content = {"application/json": {"schema": ref(door.answer)}}
    if door.streams:
        content["text/event-stream"] = {"schema": {"type": "string"}}
    op: dict[str, Any] = {
        "operationId": door.operation_id, "summary": door.summary,
        "security": [{"bearer": []}, {"apiKey": []}] if door.secured else [],
        "responses": {"200": {"description": door.summary, "content": content},
                      **{str(c): {"description": _ERRORS[c], "content": {
                          "application/json": {"schema": ref(door.error)}}}
                         for c in door.errors}}}
    if door.body is not None:
        op["requestBody"] = {"required": True,
                             "content": {"application/json": {"schema": ref(door.body)}}}
    return op
