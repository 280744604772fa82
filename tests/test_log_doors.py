"""Every door logs the same way: gRPC rows labelled grpc.* with their request, refused
requests with one row (capped body and size) and one access line, and replay reads every
door's rows (a Responses row used to stop it with `messages must be a non-empty list`)."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from switchyard.server.cli.replay import register
from switchyard.server.traffic.replay_requests import replay_body
from switchyard.v1 import gateway_pb2 as pb
from switchyard.v1 import gateway_pb2_grpc
from typer.testing import CliRunner

from tests.conftest import ServerThread
from tests.grpc_support import serving, user

DATA = Path(__file__).parent / "data" / "clients"


def rows(log: Path) -> list[dict[str, Any]]:
    db = sqlite3.connect(log)
    db.row_factory = sqlite3.Row
    out = [dict(r) for r in db.execute("SELECT * FROM requests ORDER BY created_at")]
    db.close()
    return out


def access_lines(caplog: pytest.LogCaptureFixture, n: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 5
    while True:
        lines = [r.fields for r in caplog.records if r.name == "switchyard.access"]
        if len(lines) >= n or time.monotonic() > deadline:
            return lines
        time.sleep(0.01)


async def test_grpc_rows_are_labelled_and_keep_their_request(pipeline_factory: Any) -> None:
    pipeline = pipeline_factory()
    async with serving(pipeline) as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        await stub.Chat(pb.ChatRequest(model="switchyard/auto", messages=[user("plain")]))
        async for _ in stub.StreamChat(pb.ChatRequest(model="switchyard/auto",
                                                      messages=[user("streamed")])):
            pass
    logged = rows(pipeline.config.server.traffic_log_path)
    assert [r["endpoint"] for r in logged] == ["grpc.Chat", "grpc.StreamChat"]
    for row, text in zip(logged, ("plain", "streamed")):
        body = json.loads(replay_body(row["endpoint"], row["request_json"]))
        assert body["messages"] == [{"role": "user", "content": text}]


def test_replay_reads_responses_and_grpc_rows(proxy: ServerThread) -> None:
    codex = json.loads((DATA / "codex_0171_request.json").read_text())
    assert httpx.post(proxy.base_url + "/responses", json=codex, timeout=30).status_code == 200
    assert httpx.post(proxy.base_url + "/chat/completions", timeout=30, json={
        "model": "switchyard/auto", "messages": [{"role": "user", "content": "hi"}]}
    ).status_code == 200
    log = proxy.config.server.traffic_log_path  # type: ignore[attr-defined]
    app = typer.Typer()
    register(app)
    app.command("noop", hidden=True)(lambda: None)
    result = CliRunner().invoke(app, ["replay", "--log", str(log), "--json", "--no-progress",
                                      "-p", "never", "-p", "always"])
    assert result.exit_code == 0, result.output
    notes = json.loads(result.output)["notes"]
    assert notes[0].endswith("2 requests replayed"), notes
    body = json.loads(replay_body("http.responses", rows(log)[0]["request_json"]))
    assert body["messages"][-1] == {"role": "user", "content": "say hi"}
    assert any(t["function"]["name"] == "multi_agent_v1__spawn_agent" for t in body["tools"])


def test_unreadable_rows_are_skipped_not_fatal() -> None:
    with pytest.raises(ValueError):
        replay_body("http.messages", json.dumps({"system": "x"}))
    anthropic = {"model": "claude-opus-4-8", "max_tokens": 64, "messages": [
        {"role": "user", "content": "hi"}],
        "tools": [{"name": "Bash", "input_schema": {"type": "object"}}]}
    with pytest.raises(ValueError):  # a Messages body is not Chat Completions, though close
        replay_body("http.other", json.dumps(anthropic))
    converted = json.loads(replay_body("http.messages", json.dumps(anthropic)))  # its door's
    assert converted["messages"] == [{"role": "user", "content": "hi"}]
    assert converted["tools"][0]["function"]["name"] == "Bash"
    with pytest.raises(ValueError):
        replay_body("http.responses", json.dumps({"model": "m"}))  # no input
    with pytest.raises(ValueError):
        replay_body("http.chat.completions", '{"model": "m", "messages": [{"ro')  # capped


def test_a_refused_request_gets_one_capped_row_and_one_access_line(
        proxy_factory: Any, caplog: pytest.LogCaptureFixture) -> None:
    proxy = proxy_factory(**{"limits.max_body_bytes": 200_000})
    big = json.dumps({"model": "switchyard/auto", "messages": [
        {"role": "user", "content": "x" * 300_000}]}).encode()
    bad = b'{"model": "switchyard/auto", "input": "x", "temperature": 9}'
    with caplog.at_level(logging.INFO, logger="switchyard.access"):
        r1 = httpx.post(proxy.base_url + "/chat/completions", content=big, timeout=30,
                        headers={"content-type": "application/json"})
        r2 = httpx.post(proxy.base_url + "/responses", content=bad, timeout=30,
                        headers={"content-type": "application/json"})
        access_lines(caplog, 2)  # written just after the last byte: wait for both
    assert (r1.status_code, r2.status_code) == (413, 400)
    logged = {r["request_id"]: r for r in rows(proxy.config.server.traffic_log_path)}
    assert set(logged) == {r1.headers["x-request-id"], r2.headers["x-request-id"]}
    large, invalid = logged[r1.headers["x-request-id"]], logged[r2.headers["x-request-id"]]
    assert (large["status"], large["http_status"], large["endpoint"]) == \
        ("error", 413, "http.chat.completions")
    assert len(large["request_json"]) <= 64 * 1024 and large["request_bytes"] == len(big)
    assert large["request_json"].startswith('{"model": "switchyard/auto"')
    assert (invalid["http_status"], invalid["endpoint"]) == (400, "http.responses")
    assert invalid["request_json"] == bad.decode() and invalid["request_bytes"] == len(bad)
    access = [r.fields for r in caplog.records if r.name == "switchyard.access"]
    assert [(a["path"], a["status"]) for a in access] == [
        ("/v1/chat/completions", 413), ("/v1/responses", 400)]
    assert "temperature" in access[1]["error"]


async def test_an_admitted_then_refused_request_keeps_only_64_kb(pipeline_factory: Any) -> None:
    from switchyard.core.messages import Message
    from switchyard.server.errors import PayloadTooLarge
    from switchyard.server.pipeline_types import ChatRequest

    pipeline = pipeline_factory(**{"limits.max_total_tokens": 1000})
    raw = json.dumps({"messages": [{"role": "user", "content": "word " * 30_000}]})
    request = ChatRequest([Message("user", "word " * 30_000)], "switchyard/auto", raw_json=raw)
    with pytest.raises(PayloadTooLarge):
        await pipeline.chat(request)
    (row,) = rows(pipeline.config.server.traffic_log_path)
    assert row["http_status"] == 413 and row["request_bytes"] == len(raw.encode())
    assert len(row["request_json"].encode()) == 64 * 1024


async def test_grpc_calls_get_an_access_line(pipeline_factory: Any,
                                             caplog: pytest.LogCaptureFixture) -> None:
    import grpc

    pipeline = pipeline_factory()
    with caplog.at_level(logging.INFO, logger="switchyard.access"):
        async with serving(pipeline) as channel:
            stub = gateway_pb2_grpc.GatewayStub(channel)
            await stub.Chat(pb.ChatRequest(model="switchyard/auto", messages=[user("hi")]))
            with pytest.raises(grpc.aio.AioRpcError):
                await stub.Chat(pb.ChatRequest(model="switchyard/auto"))
    lines = [r.fields for r in caplog.records if r.name == "switchyard.access"]
    assert [(f["method"], f["grpc_status"]) for f in lines] == [
        ("/switchyard.v1.Gateway/Chat", "OK"), ("/switchyard.v1.Gateway/Chat", "INVALID_ARGUMENT")]
    assert "messages must be a non-empty list" in lines[1]["error"]
    refused = rows(pipeline.config.server.traffic_log_path)[-1]  # the refusal has its row too
    assert (refused["endpoint"], refused["http_status"]) == ("grpc.Chat", 400)
    assert json.loads(refused["request_json"]) == {"model": "switchyard/auto"}
