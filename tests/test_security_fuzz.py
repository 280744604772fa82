"""Fuzzing the front doors: random JSON bodies and headers over HTTP (hypothesis), the
OpenAPI schema (schemathesis), random and truncated protobuf bytes over gRPC. With a
healthy fake upstream, a 5xx can only be Switchyard's fault: none is allowed, nor a hang."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import grpc
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from switchyard.v1 import gateway_pb2 as pb

FAST = {"compaction.enabled": False, "recall.enabled": False}
SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])

_scalars = st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats() | st.text(
    max_size=30)
_json = st.recursive(_scalars, lambda kids: st.lists(kids, max_size=4)
                     | st.dictionaries(st.text(max_size=10), kids, max_size=4), max_leaves=12)
_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "system", "assistant", "tool", "developer", "bogus"])},
    optional={"content": _json, "tool_calls": _json, "tool_call_id": _json, "name": _json})
_body = st.fixed_dictionaries(
    {"messages": st.lists(_message, max_size=4) | _json},
    optional={"model": st.sampled_from(["switchyard/auto", "fake-fast", "thinking", "nope"])
              | _json, "stream": _json, "tools": _json, "tool_choice": _json,
              "temperature": _json, "max_tokens": _json, "stop": _json,
              "response_format": _json, "stream_options": _json, "reasoning_effort": _json,
              "metadata": _json, "extra": _json}) | _json
_header_value = st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=40)
_headers = st.dictionaries(
    st.sampled_from(["x-request-id", "x-switchyard-session", "x-switchyard-effort",
                     "x-switchyard-model", "authorization", "content-type", "x-whatever"]),
    _header_value, max_size=4)


def test_random_bodies_and_headers_never_5xx(proxy_factory: Any) -> None:
    server = proxy_factory(**FAST)
    client = httpx.Client(timeout=10)

    @SETTINGS
    @given(body=_body, headers=_headers, raw=st.booleans())
    def check(body: Any, headers: dict[str, str], raw: bool) -> None:
        content = json.dumps(body).encode() if not raw else json.dumps(body).encode()[:-1]
        r = client.post(server.base_url + "/chat/completions", content=content,
                        headers=headers)
        assert r.status_code < 500, (body, headers, r.text)
        if r.status_code >= 400:
            error = r.json()["error"]
            assert error["message"] and error["type"]

    try:
        check()
    finally:
        client.close()


def test_schemathesis_against_openapi(proxy_factory: Any) -> None:
    schemathesis = pytest.importorskip("schemathesis")
    server = proxy_factory(**FAST)
    root = server.base_url.removesuffix("/v1")
    schema = schemathesis.openapi.from_url(root + "/openapi.json")
    from schemathesis.checks import not_a_server_error

    failures, reached = [], set()
    for result in schema.get_all_operations():
        operation = result.ok()
        reached.add(operation.label)

        @settings(max_examples=25, deadline=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            response = case.call(base_url=root, timeout=10)
            case.validate_response(response, checks=(not_a_server_error,))

        try:
            check()
        except Exception as exc:  # noqa: BLE001 - one report names every failing operation
            failures.append(f"{operation.label}: {exc}")
    assert failures == []
    assert {"POST /v1/chat/completions", "POST /v1/responses", "POST /v1/feedback",
            "POST /v1/messages", "POST /v1/messages/count_tokens"} <= reached


async def test_random_protobuf_bytes_get_clean_statuses(pipeline_factory: Any) -> None:
    from switchyard.server.grpc.server import start_grpc_server

    server, port = await start_grpc_server(pipeline_factory(**FAST), "127.0.0.1", 0)
    valid = pb.ChatRequest(messages=[pb.ChatMessage(role=pb.ROLE_USER, content="hi")],
                           tools=[pb.ToolDefinition(name="t", parameters_json="{}")])
    raw = valid.SerializeToString()
    ok_codes = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNIMPLEMENTED,
                grpc.StatusCode.NOT_FOUND, grpc.StatusCode.RESOURCE_EXHAUSTED}
    loop_results: list[Any] = []
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            methods = {m: channel.unary_unary(f"/switchyard.v1.Gateway/{m}")
                       for m in ("Chat", "Route", "Compact", "Recall", "Index", "Feedback")}
            stream = channel.unary_stream("/switchyard.v1.Gateway/StreamChat")

            @settings(max_examples=60, deadline=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            @given(payload=st.binary(max_size=300) | st.integers(0, len(raw)).map(
                lambda n: raw[:n]) | st.binary(max_size=20).map(lambda b: raw + b),
                   method=st.sampled_from([*methods, "StreamChat"]))
            def check(payload: bytes, method: str) -> None:
                loop_results.append((method, payload))

            check()
            for method, payload in loop_results:  # hypothesis drew; the loop sends
                try:
                    if method == "StreamChat":
                        [m async for m in stream(payload, timeout=10)]
                    else:
                        await methods[method](payload, timeout=10)
                except grpc.aio.AioRpcError as exc:
                    assert exc.code() in ok_codes, (method, payload, exc)
            reply = await channel.unary_unary("/switchyard.v1.Gateway/Chat")(raw, timeout=10)
            assert pb.ChatResponse.FromString(reply).message.content == "You said: hi"
    finally:
        await asyncio.wait_for(server.stop(None), 10)
