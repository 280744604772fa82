"""The OpenAPI schema is generated from the doors' models and describes every route."""

from __future__ import annotations

from typing import Any

import httpx
from starlette.routing import Route
from switchyard.server.http.app import create_app
from switchyard.server.http.feedback import FeedbackBody
from switchyard.server.http.messages.wire import CountTokensRequest, MessagesRequest
from switchyard.server.http.openai_types import ChatCompletionRequest
from switchyard.server.http.openapi import openapi_schema
from switchyard.server.http.responses.wire import ResponsesRequest


def test_every_route_the_app_serves_is_described(config_factory: Any) -> None:
    app = create_app(config_factory())
    served = {(r.path, m.lower()) for r in app.routes if isinstance(r, Route)
              for m in (r.methods or ()) if m != "HEAD" and r.path != "/openapi.json"}
    described = {(path, method) for path, ops in openapi_schema()["paths"].items()
                 for method in ops}
    assert served == described


def test_request_bodies_are_the_models_the_doors_validate_with() -> None:
    schema = openapi_schema()
    paths, schemas = schema["paths"], schema["components"]["schemas"]
    for path, model in (("/v1/chat/completions", ChatCompletionRequest),
                        ("/v1/responses", ResponsesRequest), ("/v1/feedback", FeedbackBody),
                        ("/v1/messages", MessagesRequest),
                        ("/v1/messages/count_tokens", CountTokensRequest)):
        body = paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": f"#/components/schemas/{model.__name__}"}
        generated = schemas[model.__name__]
        assert set(generated["properties"]) == set(model.model_fields)
        assert set(generated.get("required", [])) == {
            n for n, f in model.model_fields.items() if f.is_required()}
    assert schemas["ChatCompletionRequest"]["properties"]["messages"]["items"] == {
        "$ref": "#/components/schemas/Message"}
    assert schemas["FeedbackBody"]["additionalProperties"] is False  # extra="forbid"


def test_messages_doors_answer_errors_in_anthropic_shape() -> None:
    schema = openapi_schema()
    paths, schemas = schema["paths"], schema["components"]["schemas"]
    for path in ("/v1/messages", "/v1/messages/count_tokens"):
        error = paths[path]["post"]["responses"]["400"]["content"]["application/json"]["schema"]
        assert error == {"$ref": "#/components/schemas/AnthropicError"}
    chat_error = paths["/v1/chat/completions"]["post"]["responses"]["400"]
    assert chat_error["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorResponse"}
    assert schemas["MessagesRequest"]["properties"]["messages"]["items"] == {
        "$ref": "#/components/schemas/AnthropicInputMessage"}
    assert schemas["AnthropicInputMessage"]["properties"]["role"]["enum"] == ["user", "assistant"]


def test_served_schema_is_the_generated_one(proxy: Any) -> None:
    root = proxy.base_url.removesuffix("/v1")
    r = httpx.get(root + "/openapi.json", timeout=10)
    assert r.status_code == 200 and r.json() == openapi_schema()
