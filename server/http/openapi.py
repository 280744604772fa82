"""The proxy's OpenAPI 3 schema, served at GET /openapi.json (and fuzzed by schemathesis).

Written out by hand, small, and describing what the handlers accept and answer: the
OpenAI-compatible chat endpoint, the model list, health and metrics. Request schemas are
deliberately as loose as the handlers (unknown fields allowed), so a schema-valid request
is never rejected for a reason the schema cannot express except by a 4xx.
"""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}


def _error_responses(*codes: int) -> dict[str, Any]:
    text = {400: "Invalid request", 401: "Missing, wrong or revoked API key",
            404: "Unknown model", 413: "Over a size limit (body, messages, tokens)",
            429: "Over a limit (concurrency per key) or upstream rate limit",
            502: "Upstream failed", 504: "Upstream timed out"}
    return {str(c): {"description": text[c],
                     "content": {"application/json": {"schema": _ERROR}}} for c in codes}


_MESSAGE = {
    "type": "object",
    "required": ["role"],
    "properties": {
        "role": {"type": "string",
                 "enum": ["system", "developer", "user", "assistant", "tool"]},
        "content": {"oneOf": [{"type": "string"}, {"type": "null"},
                              {"type": "array", "items": {"type": "object"}}]},
        "name": {"type": "string"},
        "tool_calls": {"type": "array", "items": {"type": "object"}},
        "tool_call_id": {"type": "string"},
    },
}

_CHAT_REQUEST = {
    "type": "object",
    "required": ["messages"],
    "properties": {
        "model": {"type": "string", "description": "switchyard/auto, a group or a deployment"},
        "messages": {"type": "array", "items": {"$ref": "#/components/schemas/Message"}},
        "tools": {"type": "array", "items": {"type": "object"}},
        "tool_choice": {},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "top_p": {"type": "number", "minimum": 0, "maximum": 1},
        "max_tokens": {"type": "integer", "minimum": 1},
        "stream": {"type": "boolean"},
        "stream_options": {"type": "object"},
        "reasoning_effort": {"type": "string"},
        "user": {"type": "string"},
    },
}

_CHAT_RESPONSE = {
    "type": "object",
    "required": ["id", "object", "choices"],
    "properties": {
        "id": {"type": "string"},
        "object": {"type": "string"},
        "created": {"type": "integer"},
        "model": {"type": "string"},
        "choices": {"type": "array", "items": {"type": "object"}},
        "usage": {"type": "object"},
    },
}


def openapi_schema() -> dict[str, Any]:
    secured: list[dict[str, list[str]]] = [{"bearer": []}]
    return {
        "openapi": "3.0.3",
        "info": {"title": "Switchyard proxy", "version": "1",
                 "description": "OpenAI-compatible chat behind learned routing, compaction "
                                "and retrieval. With auth.mode 'keys', send "
                                "'Authorization: Bearer <key>'."},
        "paths": {
            "/v1/chat/completions": {"post": {
                "operationId": "createChatCompletion", "security": secured,
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/ChatRequest"}}}},
                "responses": {
                    "200": {"description": "A completion (or an SSE stream when stream=true)",
                            "content": {"application/json": {"schema": _CHAT_RESPONSE},
                                        "text/event-stream": {"schema": {"type": "string"}}}},
                    **_error_responses(400, 401, 404, 413, 429, 502, 504)}}},
            "/v1/models": {"get": {
                "operationId": "listModels", "security": secured,
                "responses": {"200": {"description": "Models and groups", "content": {
                    "application/json": {"schema": {"type": "object",
                                                    "required": ["object", "data"]}}}},
                    **_error_responses(401, 429)}}},
            "/healthz": {"get": {"operationId": "health", "security": [], "responses": {
                "200": {"description": "Serving", "content": {"application/json": {
                    "schema": {"type": "object", "required": ["status"]}}}}}}},
            "/metrics": {"get": {"operationId": "metrics", "security": [], "responses": {
                "200": {"description": "Prometheus text format",
                        "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Message": _MESSAGE,
                "ChatRequest": _CHAT_REQUEST,
                "Error": {"type": "object", "required": ["error"], "properties": {
                    "error": {"type": "object", "required": ["message", "type"], "properties": {
                        "message": {"type": "string"}, "type": {"type": "string"},
                        "param": {"type": "string", "nullable": True},
                        "code": {"type": "string", "nullable": True}}}}},
            },
        },
    }
