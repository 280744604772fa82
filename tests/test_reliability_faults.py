"""Upstream faults, deadlines and limits through the real proxy and the fake upstream: each
ends in the documented status, with exactly one traffic-log row per request, and /metrics
counts what happened."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from typing import Any

import grpc
import httpx
import pytest
from switchyard.v1 import gateway_pb2 as pb
from switchyard.v1 import gateway_pb2_grpc

from tests.fake_upstream import FakeUpstream, Fault

FAST = {"compaction.enabled": False, "recall.enabled": False}
BODY = {"model": "switchyard/auto", "messages": [{"role": "user", "content": "hello there"}]}


def _rows(server: Any) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(server.config.server.traffic_log_path)
    try:
        return list(db.execute("SELECT request_id, status, http_status, error_type, attempts, "
                               "fallback, stream FROM requests ORDER BY created_at"))
    finally:
        db.close()


# (faults queued, expected status, expected attempts, fallback)
CASES = {
    "500 then ok": ([Fault(status=500)], 200, 2, False),
    "429 retry-after then ok": ([Fault(status=429, retry_after=0.2)], 200, 2, False),
    "malformed then ok": ([Fault(malformed=True)], 200, 2, False),
    "group exhausted -> fallback": ([Fault(status=500)] * 3, 200, 4, True),
    "everything fails -> 502": ([Fault(status=500)] * 6, 502, 6, True),
    "bad request is not retried": ([Fault(status=400)], 400, 1, False),
}


@pytest.mark.parametrize("name", list(CASES))
def test_fault_ends_in_documented_status_with_one_row(proxy_factory: Any,
                                                      fake_upstream: FakeUpstream,
                                                      name: str) -> None:
    faults, status, attempts, fallback = CASES[name]
    server = proxy_factory(**FAST)
    fake_upstream.enqueue(*faults)
    started = time.monotonic()
    r = httpx.post(server.base_url + "/chat/completions", json=BODY, timeout=20,
                   headers={"x-request-id": "r1"})
    assert r.status_code == status, r.text
    if status == 200:
        assert r.headers["x-switchyard-attempts"] == str(attempts)
    if "retry-after" in name:
        assert time.monotonic() - started >= 0.2  # the upstream's retry-after was honoured
    rows = _rows(server)
    assert len(rows) == 1 and rows[0][0] == "r1"
    assert rows[0][1:3] == (("ok", 200) if status == 200 else ("error", status))
    assert rows[0][4:6] == (attempts, int(fallback))


def test_hang_past_timeout_is_504_within_the_deadline(proxy_factory: Any,
                                                      fake_upstream: FakeUpstream) -> None:
    server = proxy_factory(**FAST, **{"upstream.num_retries": 0,
                                      "upstream.fallback_groups": False,
                                      "models.non_thinking": [{
                                          "model": "openai/fake-fast", "name": "fake-fast",
                                          "api_base": fake_upstream.base_url, "timeout": 0.5}]})
    fake_upstream.enqueue(Fault(hang=5))
    started = time.monotonic()
    r = httpx.post(server.base_url + "/chat/completions", json=BODY, timeout=10)
    assert r.status_code == 504 and r.json()["error"]["type"] == "timeout"
    assert time.monotonic() - started < 2.5
    assert [row[1:4] for row in _rows(server)] == [("error", 504, "UpstreamTimeout")]


def test_stream_cut_midway_ends_with_an_error_event_and_an_error_row(
        proxy_factory: Any, fake_upstream: FakeUpstream) -> None:
    server = proxy_factory(**FAST)
    fake_upstream.enqueue(Fault(cut_after=2))
    with httpx.stream("POST", server.base_url + "/chat/completions", timeout=10,
                      json={**BODY, "stream": True}) as r:
        assert r.status_code == 200
        events = [line for line in r.iter_lines() if line.startswith("data: ")]
    assert '"error"' in events[-1] and events[-1] != "data: [DONE]"
    rows = _rows(server)
    assert len(rows) == 1 and rows[0][1] == "error" and rows[0][6] == 1


async def test_grpc_deadline_past_upstream_hang_is_deadline_exceeded(
        pipeline_factory: Any, fake_upstream: FakeUpstream) -> None:
    from switchyard.server.grpc.server import start_grpc_server

    pipeline = pipeline_factory(**FAST)
    server, port = await start_grpc_server(pipeline, "127.0.0.1", 0)
    fake_upstream.enqueue(Fault(hang=5))
    started = time.monotonic()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = gateway_pb2_grpc.GatewayStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.Chat(pb.ChatRequest(
                    messages=[pb.ChatMessage(role=pb.ROLE_USER, content="hi")],
                    request_id="g1"), timeout=0.6)
            assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert time.monotonic() - started < 2.0
    finally:
        await server.stop(None)
    for _ in range(100):  # the cancelled handler writes its row just after the status
        rows = list(pipeline.log.reader().execute("SELECT request_id, status FROM requests"))
        if rows:
            break
        await asyncio.sleep(0.02)
    assert len(rows) == 1 and rows[0][0] == "g1" and rows[0][1] in ("error", "cancelled")


def test_concurrency_per_key_gives_429_naming_the_limit(proxy_factory: Any,
                                                        fake_upstream: FakeUpstream) -> None:
    server = proxy_factory(**FAST, **{"limits.max_concurrent_per_key": 2})
    fake_upstream.latency = 0.6
    results: list[int] = []

    def call() -> None:
        results.append(httpx.post(server.base_url + "/chat/completions", json=BODY,
                                  timeout=10).status_code)

    threads = [threading.Thread(target=call) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.3)  # both hold their slots now
    r = httpx.post(server.base_url + "/chat/completions", json=BODY, timeout=10)
    for t in threads:
        t.join(10)
    assert r.status_code == 429
    assert "max_concurrent_per_key=2" in r.json()["error"]["message"]
    assert sorted(results) == [200, 200]
    fake_upstream.latency = 0
    ok = httpx.post(server.base_url + "/chat/completions", json=BODY, timeout=10)
    assert ok.status_code == 200  # the slots were released
    assert len(_rows(server)) == 3


async def test_grpc_concurrency_limit_is_resource_exhausted(pipeline_factory: Any,
                                                            fake_upstream: FakeUpstream) -> None:
    from switchyard.server.grpc.server import start_grpc_server

    pipeline = pipeline_factory(**FAST, **{"limits.max_concurrent_per_key": 1})
    server, port = await start_grpc_server(pipeline, "127.0.0.1", 0)
    fake_upstream.latency = 0.5
    request = pb.ChatRequest(messages=[pb.ChatMessage(role=pb.ROLE_USER, content="hi")])
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = gateway_pb2_grpc.GatewayStub(channel)
            first = asyncio.ensure_future(stub.Chat(request, timeout=10))
            await asyncio.sleep(0.25)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.Chat(request, timeout=10)
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "max_concurrent_per_key=1" in (err.value.details() or "")
            assert (await first).message.content == "You said: hi"
            assert pipeline.limiter.in_flight(None) == 0
    finally:
        await server.stop(None)


def test_metrics_expose_requests_stages_tokens_decisions_errors_fallbacks(
        proxy_factory: Any, fake_upstream: FakeUpstream) -> None:
    server = proxy_factory(**FAST)
    url = server.base_url + "/chat/completions"
    fake_upstream.enqueue(Fault(status=500), Fault(status=500), Fault(status=500))
    assert httpx.post(url, json=BODY, timeout=10).status_code == 200  # via fallback
    assert httpx.post(url, json={**BODY, "model": "fake-fast"}, timeout=10).status_code == 200
    assert httpx.post(url, json={**BODY, "model": "nope"}, timeout=10).status_code == 404
    text = httpx.get(server.base_url.removesuffix("/v1") + "/metrics").text
    for line in (
        'switchyard_requests_total{endpoint="http.chat.completions",status="ok"} 2.0',
        'switchyard_requests_total{endpoint="http.chat.completions",status="error"} 1.0',
        'switchyard_http_requests_total{path="/v1/chat/completions",status="200"} 2.0',
        'switchyard_http_requests_total{path="/v1/chat/completions",status="404"} 1.0',
        'switchyard_upstream_errors_total{kind="UpstreamError"} 3.0',
        "switchyard_fallbacks_total 1.0",
        'switchyard_routing_decisions_total{group="fake-fast",overridden="true"} 1.0',
        'switchyard_routing_decisions_total{group="non_thinking",overridden="false"} 1.0',
        "switchyard_compaction_ratio_count 2.0",
    ):
        assert line in text, line
    for stage in ("admit", "compact", "recall", "route", "upstream"):
        assert f'switchyard_stage_duration_seconds_count{{stage="{stage}"}}' in text, stage
    assert 'switchyard_request_duration_seconds_bucket{endpoint="http.chat.completions"' in text
    assert 'switchyard_tokens_total{kind="reasoning"}' in text  # the thinking fallback's
    assert 'switchyard_tokens_total{kind="prompt"}' in text
    assert 'switchyard_tokens_total{kind="completion"}' in text
