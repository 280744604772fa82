"""The gRPC sidecar end to end: a real grpc.aio client -> the real pipeline -> the fake upstream
(a real HTTP server on 127.0.0.1). Routing is off (the configured default group)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from switchyard.v1 import gateway_pb2 as pb
from switchyard.v1 import gateway_pb2_grpc

from tests.fake_upstream import FakeUpstream
from tests.grpc_support import serving, user


@pytest.fixture
async def channel(pipeline_factory: Any) -> AsyncIterator[grpc.aio.Channel]:
    async with serving(pipeline_factory()) as ch:
        yield ch


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> gateway_pb2_grpc.GatewayStub:
    return gateway_pb2_grpc.GatewayStub(channel)


async def wait_for(predicate: Any, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return predicate()


async def test_health_and_reflection_listing(channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    reply = await health.Check(health_pb2.HealthCheckRequest(service="switchyard.v1.Gateway"))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    replies = [r async for r in reflect.ServerReflectionInfo(iter([request]))]
    names = {s.name for s in replies[0].list_services_response.service}
    assert "switchyard.v1.Gateway" in names and "grpc.health.v1.Health" in names


async def test_chat(stub, fake_upstream: FakeUpstream) -> None:
    reply = await stub.Chat(pb.ChatRequest(messages=[user("hello there")]), timeout=10)
    assert reply.message.role == pb.ROLE_ASSISTANT
    assert reply.message.content == "You said: hello there"
    assert reply.finish_reason == "stop"
    assert reply.request_id and reply.session_id
    assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0
    assert reply.decision.policy_version == "off" and not reply.decision.HasField("p_hard")
    assert [a.outcome for a in reply.attempts] == ["ok"]
    assert fake_upstream.requests[-1]["messages"][-1]["content"] == "hello there"


async def test_chat_tool_call_round_trip(stub) -> None:
    tools = [pb.ToolDefinition(name="search", description="search the repo",
                               parameters_json='{"type": "object", "properties": {}}')]
    first = await stub.Chat(pb.ChatRequest(messages=[user("use a tool please")], tools=tools),
                            timeout=10)
    assert first.finish_reason == "tool_calls"
    call, = first.message.tool_calls
    assert call.name == "search" and call.id
    history = [user("use a tool please"), first.message,
               pb.ChatMessage(role=pb.ROLE_TOOL, tool_call_id=call.id, content="3 hits")]
    second = await stub.Chat(pb.ChatRequest(messages=history, tools=tools), timeout=10)
    assert second.message.content == "The tool returned: 3 hits"


async def test_thinking_pin_reports_reasoning_tokens(stub) -> None:
    request = pb.ChatRequest(messages=[user("prove it")],
                             overrides=pb.RouteOverrides(thinking=True,
                                                         reasoning_effort=pb.EFFORT_LOW))
    reply = await stub.Chat(request, timeout=10)
    assert reply.decision.thinking and reply.decision.overridden
    assert reply.decision.reasoning_effort == pb.EFFORT_LOW
    assert reply.usage.reasoning_tokens == 64  # the fake's figure for effort "low"


async def test_stream_chat(stub) -> None:
    events = [e async for e in stub.StreamChat(
        pb.ChatRequest(messages=[user("one two three")]), timeout=10)]
    assert events[0].WhichOneof("event") == "start"
    assert events[0].start.decision.policy_version == "off"
    deltas = [e.delta for e in events[1:]]
    assert "".join(d.content for d in deltas) == "You said: one two three"
    # One last delta carries both finish_reason and usage (gateway.proto), no other either.
    assert [i for i, d in enumerate(deltas) if d.HasField("finish_reason")] == [len(deltas) - 1]
    assert [i for i, d in enumerate(deltas) if d.HasField("usage")] == [len(deltas) - 1]
    assert deltas[-1].finish_reason == "stop" and deltas[-1].usage.completion_tokens > 0
    assert len({e.request_id for e in events}) == 1


async def test_cancelling_a_stream_cancels_the_upstream_request(stub, fake_upstream) -> None:
    fake_upstream.latency = 0.4  # the fake then sleeps 20 ms between chunks
    words = " ".join(f"w{i}" for i in range(400))  # ~8 s of chunks
    call = stub.StreamChat(pb.ChatRequest(messages=[user(words)]), timeout=30)
    assert (await call.read()).WhichOneof("event") == "start"
    assert (await call.read()).WhichOneof("event") == "delta"
    call.cancel()
    assert await wait_for(lambda: fake_upstream.cancelled == 1)
    assert fake_upstream.completed == 0


async def test_a_deadline_shorter_than_the_upstream_gives_deadline_exceeded(
        stub, fake_upstream) -> None:
    fake_upstream.latency = 2.0
    started = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Chat(pb.ChatRequest(messages=[user("slow")]), timeout=0.5)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 1.5


async def test_a_stream_deadline_cancels_the_upstream_request(stub, fake_upstream) -> None:
    fake_upstream.latency = 0.2  # 10 ms between chunks: ~4 s for the whole answer
    words = " ".join(f"w{i}" for i in range(400))
    call = stub.StreamChat(pb.ChatRequest(messages=[user(words)]), timeout=1.0)
    received = []
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for event in call:
            received.append(event)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert len(received) > 2  # it was streaming when the deadline hit
    assert await wait_for(lambda: fake_upstream.cancelled == 1)
    assert fake_upstream.completed == 0


@pytest.mark.parametrize(
    ("messages", "fragment"),
    [
        ([], "non-empty"),
        ([pb.ChatMessage(role=17, content="x")], "role must be one of"),
        ([user("hi"), pb.ChatMessage(role=pb.ROLE_TOOL, tool_call_id="call_x", content="r")],
         "no tool call with that id"),
    ],
)
async def test_bad_input_is_invalid_argument(stub, fake_upstream, messages, fragment) -> None:
    for call in (stub.Chat(pb.ChatRequest(messages=messages), timeout=5),
                 stub.Route(pb.ChatRequest(messages=messages), timeout=5)):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert fragment in (info.value.details() or "")
    assert fake_upstream.requests == []


async def test_random_and_truncated_bytes_get_a_clean_status(channel, stub) -> None:
    import random

    valid = pb.ChatRequest(messages=[user("hello")]).SerializeToString()
    rng = random.Random(11)
    payloads = [valid[:3], valid[:-2], *(rng.randbytes(rng.randint(1, 200)) for _ in range(10))]
    for method in ("Chat", "Route", "Compact", "Recall", "Index", "Feedback"):
        raw = channel.unary_unary(f"/switchyard.v1.Gateway/{method}")
        for payload in payloads:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await raw(payload, timeout=5)
            assert info.value.code() in (grpc.StatusCode.INVALID_ARGUMENT,
                                         grpc.StatusCode.UNIMPLEMENTED), (method, info.value)
    reply = await stub.Chat(pb.ChatRequest(messages=[user("still alive")]), timeout=10)
    assert reply.message.content == "You said: still alive"


async def test_route_without_upstream(stub, fake_upstream) -> None:
    reply = await stub.Route(pb.ChatRequest(messages=[user("2+2?")]), timeout=5)
    assert reply.decision.policy_version == "off" and reply.decision.model
    assert fake_upstream.requests == []


async def test_index_then_recall(stub) -> None:
    docs = [pb.Document(text="def parse_config(path): return yaml.safe_load(path)",
                        source="config.py"),
            pb.Document(text="The weather today is sunny with light wind.", source="notes.md")]
    indexed = await stub.Index(pb.IndexRequest(namespace="repo", documents=docs), timeout=30)
    ids = indexed.chunk_ids
    assert len(ids) == 2
    reply = await stub.Recall(pb.RecallRequest(query="parse_config", namespaces=["repo"], k=5,
                                               mode="bm25"), timeout=30)
    assert reply.hits and reply.hits[0].chunk_id == ids[0]
    assert reply.hits[0].source == "config.py" and reply.hits[0].namespace == "repo"
    assert [r.retriever for r in reply.hits[0].retrievers] == ["bm25"]


async def test_feedback_for_an_unknown_request_is_not_found(stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Feedback(pb.FeedbackRequest(request_id="req_1", label="pass",
                                               source=pb.FEEDBACK_SOURCE_USER), timeout=5)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert "req_1" in (info.value.details() or "")
