"""The gRPC edge against a test double of the pipeline: conversion, validation, error mapping,
cancellation. A real grpc.aio server on 127.0.0.1:0 and a real grpc.aio client channel.

`RecordingPipeline` is a hand-written test double of server.pipeline.Pipeline (the contract in
DESIGN.md): it records what the servicer hands it and answers scripted values, so these tests
pin the wire <-> type conversion independently of the real pipeline (tested end to end in
tests/test_grpc_e2e.py).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from switchyard.compaction.result import Compaction
from switchyard.core.errors import ChatFormatError
from switchyard.core.messages import Message, ToolCall
from switchyard.core.trafficlog.schema import Attempt
from switchyard.retrieval.chunk import Chunk
from switchyard.retrieval.index import Hit
from switchyard.router.decision import RouteDecision
from switchyard.server.auth import Authenticator
from switchyard.server.errors import (
    MissingCredentials,
    NotFound,
    NotImplementedYet,
    UpstreamError,
    UpstreamTimeout,
)
from switchyard.server.limits import ConcurrencyLimiter
from switchyard.server.pipeline_types import (
    ChatRequest,
    ChatResult,
    StreamDelta,
    ToolCallDelta,
    Usage,
)
from switchyard.server.prometheus import Metrics
from switchyard.server.traffic.recorder import Recorder
from switchyard.v1 import gateway_pb2 as pb
from switchyard.v1 import gateway_pb2_grpc

from tests.grpc_support import serving, user

DECISION = RouteDecision(model="thinking", thinking=True, reasoning_effort="medium",
                         budget_tokens=None, p_hard=0.8, policy_version="mlp-v1",
                         reason="p_hard 0.80 >= 0.5", overridden=False)


@dataclass
class FakeStream:
    deltas: list[StreamDelta]
    hang_after: bool = False  # block forever after the scripted deltas (until cancelled)
    fail_after: BaseException | None = None
    request_id: str = "req-s"
    session_id: str = "sess-s"
    decision: RouteDecision = DECISION
    tokens_before: int = 100
    tokens_after: int = 60
    closed: bool = False
    cancelled: bool = False

    def __aiter__(self) -> AsyncIterator[StreamDelta]:
        return self._run()

    async def _run(self) -> AsyncIterator[StreamDelta]:
        for d in self.deltas:
            yield d
        if self.fail_after is not None:
            raise self.fail_after
        if self.hang_after:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                self.cancelled = True
                raise

    async def aclose(self) -> None:
        self.closed = True


@dataclass
class RecordingPipeline:
    """Test double of the Pipeline contract: records calls, returns scripted answers."""

    calls: list[tuple[str, Any]] = field(default_factory=list)
    raise_error: BaseException | None = None
    chat_delay: float = 0.0
    chat_cancelled: bool = False
    stream: FakeStream | None = None
    # What the edge guard takes from a real pipeline: local mode, the default limit.
    auth: Authenticator = field(default_factory=lambda: Authenticator("local", None))
    limiter: ConcurrencyLimiter = field(default_factory=lambda: ConcurrencyLimiter(64))
    metrics: Metrics = field(default_factory=Metrics)
    # Requests the servicer refuses are logged through it (no log file here).
    recorder: Recorder = field(default_factory=lambda: Recorder(None, Metrics(),
                                                                log_bodies=True))

    def _enter(self, name: str, arg: Any) -> None:
        self.calls.append((name, arg))
        if self.raise_error is not None:
            raise self.raise_error

    async def chat(self, request: ChatRequest) -> ChatResult:
        self._enter("chat", request)
        if self.chat_delay:
            try:
                await asyncio.sleep(self.chat_delay)
            except asyncio.CancelledError:
                self.chat_cancelled = True
                raise
        answer = Message(role="assistant", content=None,
                         tool_calls=(ToolCall("call_9", "grep", '{"q": "x"}'),))
        return ChatResult(
            request_id="req-1", session_id="sess-1", model="openai/o4-mini", message=answer,
            finish_reason="tool_calls", usage=Usage(10, 20, 15, 4), decision=DECISION,
            created=1_700_000_000, tokens_before=100, tokens_after=60,
            attempts=(Attempt("openai/o4-mini", "thinking", "ok", 12.5, 200),
                      Attempt("openai/o3", "thinking", "UpstreamTimeout", 30.0)),
            cost_usd=0.0012,
        )

    async def open_stream(self, request: ChatRequest) -> FakeStream:
        self._enter("open_stream", request)
        assert self.stream is not None
        return self.stream

    async def route(self, request: ChatRequest) -> RouteDecision:
        self._enter("route", request)
        return RouteDecision(model="non_thinking", thinking=False, reasoning_effort=None,
                             budget_tokens=None, p_hard=None, policy_version="off",
                             reason="routing off: default model non_thinking")

    async def compact(self, messages: list[Message], *, budget: int | None, model: str | None,
                      session_id: str) -> Compaction:
        self._enter("compact", {"messages": messages, "budget": budget, "model": model,
                                    "session_id": session_id})
        return Compaction(messages[-1:], ["c2"], ["c1"], 500, 120, "[dropped 1 message]",
                          strategy="learned")

    async def recall(self, query: str, *, namespaces: list[str], k: int, mode: str) -> list[Hit]:
        self._enter("recall", {"query": query, "namespaces": namespaces, "k": k, "mode": mode})
        chunk = Chunk(id="abc", namespace="docs", text="def f(): pass", source="a.py",
                      start_line=3, tokens=5)
        return [Hit("abc", 0.03, {"dense": 2, "bm25": 1}, chunk)]

    async def index(self, namespace: str, documents: list[tuple[str, str]]) -> list[str]:
        self._enter("index", {"namespace": namespace, "documents": documents})
        return [f"id{i}" for i in range(len(documents))]

    async def feedback(self, request_id: str, *, label: str | None, score: float | None,
                       source: str, weight: float) -> None:
        self._enter("feedback", {"request_id": request_id, "label": label, "score": score,
                                     "source": source, "weight": weight})


@pytest.fixture
def pipeline() -> RecordingPipeline:
    return RecordingPipeline()


@pytest.fixture
async def channel(pipeline: RecordingPipeline) -> AsyncIterator[grpc.aio.Channel]:
    async with serving(pipeline) as ch:
        yield ch


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> gateway_pb2_grpc.GatewayStub:
    return gateway_pb2_grpc.GatewayStub(channel)


def tool_round_trip() -> list[pb.ChatMessage]:
    return [
        pb.ChatMessage(role=pb.ROLE_SYSTEM, content="be brief"),
        user("find x"),
        pb.ChatMessage(role=pb.ROLE_ASSISTANT,
                       tool_calls=[pb.ToolCall(id="call_1", name="grep", arguments='{"q":"x"}')]),
        pb.ChatMessage(role=pb.ROLE_TOOL, tool_call_id="call_1", content="x.py:3"),
    ]


async def expect_status(call: Any, code: grpc.StatusCode) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        if isinstance(call, grpc.aio.UnaryStreamCall):
            async for _ in call:
                pass
        else:
            await call
    assert info.value.code() == code, info.value.details()
    return info.value.details() or ""


# ---------------------------------------------------------------- Chat


async def test_chat_converts_the_request_both_ways(stub, pipeline) -> None:
    request = pb.ChatRequest(
        messages=tool_round_trip(),
        tools=[pb.ToolDefinition(name="grep", description="search",
                                 parameters_json='{"type": "object"}')],
        params=pb.SamplingParams(temperature=0.0, max_tokens=50, stop=["END"],
                                 tool_choice_json='"auto"'),
        overrides=pb.RouteOverrides(thinking=True, max_effort=pb.EFFORT_LOW),
        session_id="s-42", request_id="r-1", compact_budget=4000, tags=["ci"],
    )
    reply = await stub.Chat(request, metadata=(("authorization", "Bearer sk-test"),))

    (name, got), = pipeline.calls
    assert name == "chat"
    assert got.model == "switchyard/auto" and not got.stream
    assert [m.role for m in got.messages] == ["system", "user", "assistant", "tool"]
    assert got.messages[2].tool_calls == (ToolCall("call_1", "grep", '{"q":"x"}'),)
    assert got.messages[2].content is None and got.messages[3].tool_call_id == "call_1"
    assert got.tools[0].name == "grep" and json.loads(got.tools[0].parameters_json)
    assert got.params.temperature == 0.0 and got.params.top_p is None
    assert got.params.max_tokens == 50 and got.params.stop == ("END",)
    assert got.params.to_openai()["tool_choice"] == "auto"
    assert got.overrides.thinking is True and got.overrides.max_effort == "low"
    assert got.overrides.model is None and got.overrides.reasoning_effort is None
    assert (got.session_id, got.request_id, got.compact_budget, got.tags) == (
        "s-42", "r-1", 4000, ("ci",))
    assert got.api_key_id is None  # keys arrive with issue 7
    assert got.deadline is None  # the client set no deadline

    assert (reply.request_id, reply.session_id) == ("req-1", "sess-1")
    assert reply.model == "openai/o4-mini"
    assert reply.message.role == pb.ROLE_ASSISTANT and not reply.message.HasField("content")
    assert reply.message.tool_calls[0].id == "call_9"
    assert reply.finish_reason == "tool_calls"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens, reply.usage.reasoning_tokens,
            reply.usage.cached_tokens, reply.usage.total_tokens) == (10, 20, 15, 4, 30)
    d = reply.decision
    assert (d.model, d.thinking, d.reasoning_effort, d.policy_version) == (
        "thinking", True, pb.EFFORT_MEDIUM, "mlp-v1")
    assert d.HasField("p_hard") and d.p_hard == pytest.approx(0.8)
    assert not d.HasField("budget_tokens")
    assert (reply.compaction.tokens_before, reply.compaction.tokens_after) == (100, 60)
    assert [a.outcome for a in reply.attempts] == ["ok", "UpstreamTimeout"]
    assert reply.attempts[0].status == 200 and not reply.attempts[1].HasField("status")
    assert reply.cost_usd == pytest.approx(0.0012)


async def test_the_callers_deadline_reaches_the_request(stub, pipeline) -> None:
    before = time.monotonic()
    await stub.Chat(pb.ChatRequest(messages=[user("hi")], model="gpt-x"), timeout=30)
    got = pipeline.calls[0][1]
    assert got.model == "gpt-x"
    # gRPC rounds the grpc-timeout header up to three significant figures (30 s: up to 0.1 s)
    assert before + 25 < got.deadline <= time.monotonic() + 31


async def test_a_deadline_cancels_the_pipeline_call(stub, pipeline) -> None:
    pipeline.chat_delay = 30
    started = time.monotonic()
    await expect_status(stub.Chat(pb.ChatRequest(messages=[user("hi")]), timeout=0.3),
                        grpc.StatusCode.DEADLINE_EXCEEDED)
    assert time.monotonic() - started < 5
    for _ in range(100):  # the server notices the expiry a moment after the client
        if pipeline.chat_cancelled:
            break
        await asyncio.sleep(0.02)
    assert pipeline.chat_cancelled


@pytest.mark.parametrize(
    ("messages", "fragment"),
    [
        ([], "messages must be a non-empty list"),
        ([pb.ChatMessage(content="no role")], "messages[0].role must be one of ROLE_SYSTEM"),
        ([pb.ChatMessage(role=42, content="?")], "got 42"),
        ([user("hi"), pb.ChatMessage(role=pb.ROLE_TOOL, tool_call_id="nope", content="r")],
         "messages[1] is a tool result for 'nope'"),
        ([user("hi"), pb.ChatMessage(role=pb.ROLE_TOOL, content="r")], "no tool_call_id"),
        ([pb.ChatMessage(role=pb.ROLE_USER, tool_calls=[pb.ToolCall(id="a", name="f")])],
         "only assistant messages"),
        ([user("hi"), pb.ChatMessage(role=pb.ROLE_ASSISTANT,
                                     tool_calls=[pb.ToolCall(id="a", name="f")])],
         "no tool message answering it"),
        ([pb.ChatMessage(role=pb.ROLE_USER, attachments=[pb.Attachment(type="image_url",
                                                                       payload_json="[1")])],
         "payload_json is not valid JSON"),
    ],
)
async def test_bad_messages_are_invalid_argument(stub, pipeline, messages, fragment) -> None:
    details = await expect_status(stub.Chat(pb.ChatRequest(messages=messages)),
                                  grpc.StatusCode.INVALID_ARGUMENT)
    assert fragment in details
    assert pipeline.calls == []


@pytest.mark.parametrize(
    ("request_kwargs", "fragment"),
    [
        ({"tools": [pb.ToolDefinition(name="f", parameters_json="[]")]},
         "tools[0].parameters_json must be a JSON object"),
        ({"tools": [pb.ToolDefinition(description="nameless")]}, "tools[0].name"),
        ({"params": pb.SamplingParams(response_format_json="{bad")}, "not valid JSON"),
        ({"overrides": pb.RouteOverrides(reasoning_effort=9)}, "overrides.reasoning_effort"),
        ({"overrides": pb.RouteOverrides(budget_tokens=-1)}, "budget_tokens must be positive"),
        ({"compact_budget": 0}, "compact_budget must be positive"),
    ],
)
async def test_bad_fields_are_invalid_argument(stub, pipeline, request_kwargs, fragment) -> None:
    request = pb.ChatRequest(messages=[user("hi")], **request_kwargs)
    details = await expect_status(stub.Chat(request), grpc.StatusCode.INVALID_ARGUMENT)
    assert fragment in details
    assert pipeline.calls == []


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (NotImplementedYet("Recall needs retrieval/index.py, which has not landed"),
         grpc.StatusCode.UNIMPLEMENTED),
        (UpstreamTimeout("upstream took longer than 2.0 s"), grpc.StatusCode.DEADLINE_EXCEEDED),
        (MissingCredentials("model openai/o4-mini has no credentials: set OPENAI_API_KEY"),
         grpc.StatusCode.FAILED_PRECONDITION),
        (UpstreamError("all deployments failed"), grpc.StatusCode.UNAVAILABLE),
        (ChatFormatError("messages[3] is odd", "messages[3]"), grpc.StatusCode.INVALID_ARGUMENT),
        (NotFound("no request r-9"), grpc.StatusCode.NOT_FOUND),
    ],
)
async def test_pipeline_errors_map_to_status_codes(stub, pipeline, error, code) -> None:
    pipeline.raise_error = error
    details = await expect_status(stub.Chat(pb.ChatRequest(messages=[user("hi")])), code)
    assert details == error.message


async def test_an_unexpected_error_is_internal_without_its_text(stub, pipeline) -> None:
    pipeline.raise_error = KeyError("secret internals")
    details = await expect_status(stub.Chat(pb.ChatRequest(messages=[user("hi")])),
                                  grpc.StatusCode.INTERNAL)
    assert "secret" not in details


@pytest.mark.parametrize("value", ["Basic abc", "Bearer ", "sk-no-scheme"])
async def test_malformed_authorization_is_unauthenticated(stub, pipeline, value) -> None:
    call = stub.Chat(pb.ChatRequest(messages=[user("hi")]), metadata=(("authorization", value),))
    details = await expect_status(call, grpc.StatusCode.UNAUTHENTICATED)
    assert "Bearer <key>" in details
    assert "abc" not in details and "sk-no-scheme" not in details  # never echo a credential
    assert pipeline.calls == []


# ---------------------------------------------------------------- StreamChat


def scripted_deltas() -> list[StreamDelta]:
    return [
        StreamDelta(content="Hel", model="m"),
        StreamDelta(content="lo", tool_calls=(ToolCallDelta(0, "call_1", "grep", '{"q"'),)),
        StreamDelta(tool_calls=(ToolCallDelta(0, arguments=': 1}'),)),
        StreamDelta(finish_reason="tool_calls", usage=Usage(5, 7, 3, 0)),
    ]


async def test_stream_chat_sends_start_then_deltas(stub, pipeline) -> None:
    pipeline.stream = FakeStream(scripted_deltas())
    events = [e async for e in stub.StreamChat(pb.ChatRequest(messages=[user("hi")]))]

    assert pipeline.calls[0][1].stream and pipeline.calls[0][1].include_usage
    assert [e.WhichOneof("event") for e in events] == ["start"] + ["delta"] * 4
    assert all((e.request_id, e.session_id) == ("req-s", "sess-s") for e in events)
    start = events[0].start
    assert start.decision.model == "thinking" and start.compaction.tokens_after == 60
    deltas = [e.delta for e in events[1:]]
    assert "".join(d.content for d in deltas) == "Hello"
    assert deltas[1].tool_calls[0].id == "call_1" and deltas[1].tool_calls[0].name == "grep"
    assert not deltas[2].tool_calls[0].HasField("id")
    assert "".join(t.arguments for d in deltas for t in d.tool_calls) == '{"q": 1}'
    assert not deltas[0].HasField("finish_reason") and not deltas[0].HasField("usage")
    assert deltas[-1].finish_reason == "tool_calls"
    assert deltas[-1].usage.total_tokens == 12 and deltas[-1].usage.reasoning_tokens == 3
    assert pipeline.stream.closed


async def test_cancelling_a_stream_cancels_and_closes_it(stub, pipeline) -> None:
    pipeline.stream = FakeStream(scripted_deltas()[:1], hang_after=True)
    call = stub.StreamChat(pb.ChatRequest(messages=[user("hi")]))
    assert (await call.read()).WhichOneof("event") == "start"
    assert (await call.read()).delta.content == "Hel"
    call.cancel()
    for _ in range(100):
        if pipeline.stream.closed:
            break
        await asyncio.sleep(0.02)
    assert pipeline.stream.cancelled and pipeline.stream.closed


async def test_a_stream_error_after_deltas_ends_with_its_status(stub, pipeline) -> None:
    pipeline.stream = FakeStream(scripted_deltas()[:2], fail_after=UpstreamError("cut mid-way"))
    call = stub.StreamChat(pb.ChatRequest(messages=[user("hi")]))
    received = []
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for event in call:
            received.append(event)
    assert len(received) == 3
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert info.value.details() == "cut mid-way"
    assert pipeline.stream.closed


async def test_stream_chat_rejects_bad_input_before_opening(stub, pipeline) -> None:
    call = stub.StreamChat(pb.ChatRequest())
    details = await expect_status(call, grpc.StatusCode.INVALID_ARGUMENT)
    assert "non-empty" in details and pipeline.calls == []


# ---------------------------------------------------------------- the other RPCs


async def test_route(stub, pipeline) -> None:
    reply = await stub.Route(pb.ChatRequest(messages=[user("2+2?")],
                                            overrides=pb.RouteOverrides(model="gpt-x")))
    assert pipeline.calls[0][1].overrides.model == "gpt-x"
    assert reply.decision.policy_version == "off" and not reply.decision.HasField("p_hard")
    assert reply.decision.reasoning_effort == pb.EFFORT_UNSPECIFIED


async def test_compact(stub, pipeline) -> None:
    reply = await stub.Compact(pb.CompactRequest(messages=[user("a"), user("b")], budget=300,
                                                 session_id="s1"))
    assert pipeline.calls[0][1]["budget"] == 300 and pipeline.calls[0][1]["model"] is None
    assert pipeline.calls[0][1]["session_id"] == "s1"
    assert [m.content for m in reply.messages] == ["b"]
    assert (list(reply.kept_ids), list(reply.dropped_ids)) == (["c2"], ["c1"])
    assert (reply.tokens_before, reply.tokens_after, reply.summary) == (
        500, 120, "[dropped 1 message]")


async def test_compact_rejects_no_messages(stub, pipeline) -> None:
    await expect_status(stub.Compact(pb.CompactRequest(session_id="s")),
                        grpc.StatusCode.INVALID_ARGUMENT)


async def test_recall_defaults_and_hits(stub, pipeline) -> None:
    reply = await stub.Recall(pb.RecallRequest(query="def f", namespaces=["docs"]))
    assert pipeline.calls[0][1] == {"query": "def f", "namespaces": ["docs"], "k": 10,
                                    "mode": "hybrid"}
    hit, = reply.hits
    assert (hit.chunk_id, hit.text, hit.source, hit.namespace, hit.start_line) == (
        "abc", "def f(): pass", "a.py", "docs", 3)
    assert [(r.retriever, r.rank) for r in hit.retrievers] == [("bm25", 1), ("dense", 2)]
    assert not hit.HasField("role") and not hit.HasField("message_index")
    await expect_status(stub.Recall(pb.RecallRequest(query="q", k=-1)),
                        grpc.StatusCode.INVALID_ARGUMENT)


async def test_index(stub, pipeline) -> None:
    reply = await stub.Index(pb.IndexRequest(namespace="docs", documents=[
        pb.Document(text="alpha", source="a.md"), pb.Document(text="beta")]))
    assert pipeline.calls[0][1] == {"namespace": "docs",
                                        "documents": [("alpha", "a.md"), ("beta", "")]}
    assert list(reply.chunk_ids) == ["id0", "id1"]


async def test_feedback(stub, pipeline) -> None:
    await stub.Feedback(pb.FeedbackRequest(request_id="r-1", label="pass",
                                           source=pb.FEEDBACK_SOURCE_VERIFIER))
    assert pipeline.calls[0][1] == {"request_id": "r-1", "label": "pass", "score": None,
                                        "source": "verifier", "weight": 1.0}


@pytest.mark.parametrize(
    ("request_kwargs", "fragment"),
    [
        ({"label": "pass", "source": pb.FEEDBACK_SOURCE_USER}, "request_id is required"),
        ({"request_id": "r", "source": pb.FEEDBACK_SOURCE_USER}, "label, a score"),
        ({"request_id": "r", "score": 1.0}, "source must be one of FEEDBACK_SOURCE_VERIFIER"),
        ({"request_id": "r", "score": 1.0, "source": pb.FEEDBACK_SOURCE_JUDGE, "weight": -1},
         "weight must be"),
    ],
)
async def test_bad_feedback(stub, pipeline, request_kwargs, fragment) -> None:
    details = await expect_status(stub.Feedback(pb.FeedbackRequest(**request_kwargs)),
                                  grpc.StatusCode.INVALID_ARGUMENT)
    assert fragment in details and pipeline.calls == []


async def test_unimplemented_component_names_what_is_missing(stub, pipeline) -> None:
    pipeline.raise_error = NotImplementedYet("Recall needs the retrieval index (issue 5)")
    details = await expect_status(stub.Recall(pb.RecallRequest(query="q")),
                                  grpc.StatusCode.UNIMPLEMENTED)
    assert "retrieval index" in details


# ---------------------------------------------------------------- health, reflection, garbage


async def test_health_is_serving(channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "switchyard.v1.Gateway"):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    await expect_status(health.Check(health_pb2.HealthCheckRequest(service="nope")),
                        grpc.StatusCode.NOT_FOUND)


async def test_reflection_lists_and_describes_the_gateway(channel) -> None:
    reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="switchyard.v1.Gateway"),
    ]
    replies = [r async for r in reflect.ServerReflectionInfo(iter(requests))]
    names = {s.name for s in replies[0].list_services_response.service}
    assert {"switchyard.v1.Gateway", "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection"} <= names
    files = replies[1].file_descriptor_response.file_descriptor_proto
    assert files and b"switchyard.v1" in files[0]


async def test_garbage_bytes_get_a_clean_status_and_the_server_lives_on(channel, stub) -> None:
    raw = channel.unary_unary("/switchyard.v1.Gateway/Chat")  # no serializer: bytes on the wire
    raw_stream = channel.unary_stream("/switchyard.v1.Gateway/StreamChat")
    valid = pb.ChatRequest(messages=tool_round_trip()).SerializeToString()
    rng = random.Random(7)
    payloads = [valid[: len(valid) // 2], valid[:-1], b"\xff" * 64,
                *(rng.randbytes(rng.randint(1, 300)) for _ in range(20))]
    codes = set()
    for payload in payloads:
        try:
            await raw(payload, timeout=5)
        except grpc.aio.AioRpcError as exc:
            codes.add(exc.code())
        else:
            pytest.fail("garbage was accepted as a valid chat request")
    assert codes == {grpc.StatusCode.INVALID_ARGUMENT}
    details = await expect_status(raw_stream(b"\x0a\xff\x01", timeout=5),
                                  grpc.StatusCode.INVALID_ARGUMENT)
    assert "not a valid switchyard.v1.ChatRequest" in details
    reply = await stub.Route(pb.ChatRequest(messages=[user("still there?")]), timeout=5)
    assert reply.decision.policy_version == "off"
