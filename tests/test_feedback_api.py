"""Feedback through the real front doors: HTTP POST /v1/feedback and the gRPC Feedback RPC,
against a log the real pipeline wrote (fake upstream on loopback)."""

from __future__ import annotations

import sqlite3
from typing import Any

import grpc
import httpx
import pytest
from switchyard.core.trafficlog.outcomes import outcomes_for
from switchyard.server.grpc.server import start_grpc_server
from switchyard.v1 import gateway_pb2 as pb
from switchyard.v1 import gateway_pb2_grpc

# Compaction is not under test here; keeping it off keeps these tests about feedback.
NO_COMPACTION = {"compaction.enabled": False}


@pytest.fixture
def proxy(proxy_factory):  # type: ignore[no-untyped-def]
    return proxy_factory(**NO_COMPACTION)


def _chat(base_url: str, text: str) -> str:
    r = httpx.post(f"{base_url}/chat/completions", timeout=10, json={
        "model": "switchyard/auto", "messages": [{"role": "user", "content": text}]})
    assert r.status_code == 200, r.text
    return r.headers["x-request-id"]


def _rows(proxy: Any, request_id: str) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(proxy.config.server.traffic_log_path)
    return db.execute("SELECT source, label, score, weight FROM outcomes WHERE request_id = ?",
                      (request_id,)).fetchall()


def test_http_feedback_is_stored_and_idempotent(proxy) -> None:
    rid = _chat(proxy.base_url, "what is 2 + 2?")
    url = f"{proxy.base_url}/feedback"
    first = httpx.post(url, json={"request_id": rid, "label": "pass", "source": "user"}, timeout=5)
    assert first.status_code == 200 and first.json()["status"] == "created"
    again = httpx.post(url, json={"request_id": rid, "label": "fail", "score": 0.0,
                                  "source": "user", "weight": 2}, timeout=5)
    assert again.status_code == 200 and again.json()["status"] == "replaced"
    judge = httpx.post(url, json={"request_id": rid, "score": 0.75, "source": "judge"}, timeout=5)
    assert judge.status_code == 200
    assert sorted(_rows(proxy, rid)) == [("judge", None, 0.75, 1.0), ("user", "fail", 0.0, 2.0)]


@pytest.mark.parametrize("body, status, fragment", [
    ({"request_id": "req_missing", "label": "pass", "source": "user"}, 404, "req_missing"),
    ({"request_id": "R", "source": "user"}, 400, "label"),
    ({"request_id": "R", "score": 2.0, "source": "user"}, 400, "score"),
    ({"request_id": "R", "score": 1.0, "source": "oracle"}, 400, "source"),
    ({"request_id": "R", "score": 1.0, "weight": -1}, 400, "weight"),
    ({"label": "pass"}, 400, "request_id"),
])
def test_http_feedback_errors(proxy, body: dict[str, Any], status: int, fragment: str) -> None:
    if body.get("request_id") == "R":
        body = {**body, "request_id": _chat(proxy.base_url, "hello")}
    r = httpx.post(f"{proxy.base_url}/feedback", json=body, timeout=5)
    assert r.status_code == status, r.text
    assert fragment in r.json()["error"]["message"]


async def test_grpc_feedback_and_not_found(pipeline_factory) -> None:
    pipeline = pipeline_factory(**NO_COMPACTION)
    server, port = await start_grpc_server(pipeline, "127.0.0.1", 0)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = gateway_pb2_grpc.GatewayStub(channel)
            reply = await stub.Chat(pb.ChatRequest(messages=[
                pb.ChatMessage(role=pb.ROLE_USER, content="hi")]), timeout=10)
            await stub.Feedback(pb.FeedbackRequest(
                request_id=reply.request_id, score=1.0,
                source=pb.FEEDBACK_SOURCE_VERIFIER), timeout=5)
            await stub.Feedback(pb.FeedbackRequest(
                request_id=reply.request_id, score=1.0,
                source=pb.FEEDBACK_SOURCE_VERIFIER), timeout=5)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.Feedback(pb.FeedbackRequest(
                    request_id="req_nope", label="pass", source=pb.FEEDBACK_SOURCE_USER),
                    timeout=5)
            assert info.value.code() == grpc.StatusCode.NOT_FOUND
            assert "req_nope" in (info.value.details() or "")
    finally:
        await server.stop(None)
    db = sqlite3.connect(pipeline.config.server.traffic_log_path)
    got = outcomes_for(db, reply.request_id)
    assert [(o.source, o.score) for o in got] == [("verifier", 1.0)]
