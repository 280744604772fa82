"""Hosted tools reach a deployment that runs them (`responses_api: true`), routed and logged;
without one they are left out and named (tests/test_responses_codex.py)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
from switchyard.core.messages import Message, ToolCall
from switchyard.server.http.responses.native import messages_to_items
from switchyard.server.http.responses.tools import plan_tools
from switchyard.server.http.responses.translate import items_to_messages

from tests.fake_upstream import FakeUpstream, Fault

DATA = Path(__file__).parent / "data" / "clients"


def native_config(fake: FakeUpstream) -> dict[str, Any]:
    """The thinking group speaks Responses natively; the non-thinking one does not."""
    return {
        "models.thinking": [{"model": "openai/fake-think", "name": "fake-think",
                             "api_base": fake.base_url, "timeout": 5, "responses_api": True}],
        "models.non_thinking": [{"model": "openai/fake-fast", "name": "fake-fast",
                                 "api_base": fake.base_url, "timeout": 5}],
    }


def codex_body(**changes: Any) -> dict[str, Any]:
    body = json.loads((DATA / "codex_0171_request.json").read_text())
    body.update(changes)
    return body


@pytest.mark.parametrize("stream", [False, True])
def test_hosted_tools_go_to_the_native_deployment(proxy_factory: Any,
                                                  fake_upstream: FakeUpstream,
                                                  stream: bool) -> None:
    proxy = proxy_factory(**native_config(fake_upstream))
    r = httpx.post(proxy.base_url + "/responses", timeout=30,
                   json=codex_body(stream=stream, model="thinking"))
    assert r.status_code == 200, r.text
    assert r.headers["x-switchyard-upstream-api"] == "responses"
    assert r.headers["x-switchyard-upstream"] == "fake-think"
    assert "x-switchyard-dropped-tools" not in r.headers
    assert "Native answer with web_search" in r.text
    sent = fake_upstream.native[-1]
    assert sent["model"] == "fake-think"  # the routed deployment, not the client's name
    assert {"type": "web_search", "external_web_access": False} in sent["tools"]
    assert any(t["type"] == "namespace" for t in sent["tools"])  # passed through as is
    assert sent["input"] == codex_body()["input"]  # nothing compacted: the client's items
    assert sent["reasoning"]["effort"]  # the routed effort
    assert not fake_upstream.requests  # no Chat Completions call
    db = sqlite3.connect(proxy.config.server.traffic_log_path)
    (row,) = db.execute("SELECT endpoint, status, upstream_model, prompt_tokens, "
                        "completion_tokens FROM requests").fetchall()
    assert row[:3] == ("http.responses", "ok", "fake-think") and row[4] == 5 and row[3] > 0


def test_non_native_group_falls_back_to_a_native_deployment(proxy_factory: Any,
                                                           fake_upstream: FakeUpstream) -> None:
    proxy = proxy_factory(**native_config(fake_upstream))
    r = httpx.post(proxy.base_url + "/responses", timeout=30,
                   json=codex_body(stream=False, model="switchyard/auto"))
    assert r.status_code == 200, r.text
    assert r.headers["x-switchyard-upstream"] == "fake-think"
    sent = fake_upstream.native[-1]  # served by the thinking deployment, sent no effort
    assert "reasoning" not in sent and "reasoning.encrypted_content" not in sent["include"]


def test_compacted_history_is_written_back_as_items(proxy_factory: Any,
                                                   fake_upstream: FakeUpstream) -> None:
    proxy = proxy_factory(**native_config(fake_upstream))
    body = codex_body(stream=False, model="thinking")
    body["input"] += [{"type": "message", "role": "user", "content": [
        {"type": "input_text", "text": f"log line {i}: " + "detail " * 40}]} for i in range(80)]
    body["input"].append({"type": "message", "role": "user", "content": "now the real task"})
    r = httpx.post(proxy.base_url + "/responses", timeout=60, json=body,
                   headers={"x-switchyard-compact-budget": "6000"})
    assert r.status_code == 200, r.text
    sent = fake_upstream.native[-1]
    assert sent["input"] != body["input"] and len(sent["input"]) < len(body["input"])
    assert sent["input"][-1] == {"type": "message", "role": "user", "content": [
        {"type": "input_text", "text": "now the real task"}]}
    assert {"type": "web_search", "external_web_access": False} in sent["tools"]


def test_native_failure_streams_response_failed(proxy_factory: Any,
                                                fake_upstream: FakeUpstream) -> None:
    proxy = proxy_factory(**native_config(fake_upstream), **{"upstream.num_retries": 0,
                                                             "upstream.fallback_groups": False})
    fake_upstream.enqueue(Fault(status=429))
    r = httpx.post(proxy.base_url + "/responses", timeout=30,
                   json=codex_body(stream=True, model="thinking"))
    assert r.status_code == 200
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]
    assert events[-1]["type"] == "response.failed"
    assert events[-1]["response"]["error"]["code"] == "rate_limit_exceeded"


def test_messages_to_items_inverts_items_to_messages() -> None:
    body = json.loads((DATA / "codex_0171_tool_turn.json").read_text())
    plan = plan_tools(body["tools"])
    items = [i for i in body["input"] if i.get("type") != "reasoning"]
    messages = items_to_messages(items, plan=plan)
    assert items_to_messages(messages_to_items(messages, plan), plan=plan) == messages
    spawn = Message("assistant", None, tool_calls=(
        ToolCall("c1", "multi_agent_v1__spawn_agent", "{}"),))
    (item,) = messages_to_items([spawn], plan)
    assert (item["name"], item["namespace"]) == ("spawn_agent", "multi_agent_v1")


def test_custom_calls_are_written_back_as_custom_items() -> None:
    plan = plan_tools([{"type": "custom", "name": "apply_patch"}])
    items = [{"type": "message", "role": "user", "content": "patch"},
             {"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch",
              "input": "*** Begin Patch"},
             {"type": "custom_tool_call_output", "call_id": "c1", "output": "Done!"}]
    back = messages_to_items(items_to_messages(items, plan=plan), plan)
    assert back[1:] == items[1:]
