"""Codex CLI 0.171's own requests, captured from the real binary, replayed through /v1/responses.

tests/data/clients/codex_0171_request.json is the first request of `codex exec "say hi"`
(seven function tools, the `multi_agent_v1` namespace, hosted `web_search`);
codex_0171_tool_turn.json is the second request of a turn where the model ran
`exec_command` (function_call and function_call_output items in the input).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from switchyard.server.http.responses.events import ResponseEvents
from switchyard.server.http.responses.tools import flat_name, plan_tools
from switchyard.server.http.responses.wire import Turn, input_items, parse_responses_request
from switchyard.server.pipeline_types import StreamDelta, ToolCallDelta

from tests.conftest import ServerThread
from tests.fake_upstream import FakeUpstream

DATA = Path(__file__).parent / "data" / "clients"
NAMESPACE_MEMBERS = ["close_agent", "resume_agent", "send_input", "spawn_agent", "wait_agent"]


def captured(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text())


def post(proxy: ServerThread, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(proxy.base_url + "/responses", json=body, timeout=30,
                      headers={"authorization": "Bearer unused"})


def sse_events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


def test_plan_flattens_the_namespace_and_leaves_out_web_search() -> None:
    plan = plan_tools(captured("codex_0171_request.json")["tools"])
    names = [t.name for t in plan.tools]
    assert len(names) == 7 + len(NAMESPACE_MEMBERS) and len(set(names)) == len(names)
    assert [n for n in names if n.startswith("multi_agent_v1__")] == \
        [f"multi_agent_v1__{m}" for m in NAMESPACE_MEMBERS]
    assert plan.dropped == ["web_search"]
    for member in NAMESPACE_MEMBERS:  # reversible: flat name -> (namespace, name) -> flat
        flat = plan.flat("multi_agent_v1", member)
        assert plan.client_call(flat) == ("multi_agent_v1", member)
    assert plan.client_call("exec_command") == (None, "exec_command")


def test_flat_names_stay_valid_and_distinct() -> None:
    long_name = flat_name("n" * 40, "t" * 40)
    assert len(long_name) <= 64 and long_name == flat_name("n" * 40, "t" * 40)
    assert flat_name("a.b", "c") != flat_name("a_b", "c")
    # A plain function already named like the flattened member: the member is renamed.
    plan = plan_tools([{"type": "function", "name": "ns__f", "parameters": {}},
                       {"type": "namespace", "name": "ns", "tools": [
                           {"type": "function", "name": "f", "parameters": {}}]}])
    plain, member = (t.name for t in plan.tools)
    assert plain == "ns__f" and member != "ns__f"
    assert plan.client_call(member) == ("ns", "f") and plan.client_call("ns__f") == (None, "ns__f")


def test_streamed_namespaced_call_goes_back_with_its_namespace() -> None:
    body = parse_responses_request(json.dumps(captured("codex_0171_request.json")).encode())
    turn = Turn(body, input_items(body))
    events = ResponseEvents(turn, "m")
    chunks = events.start()
    chunks += events.on_delta(StreamDelta(tool_calls=(
        ToolCallDelta(0, "call_9", "multi_agent_v1__spawn_agent", '{"message": "x"}'),)))
    closing, final = events.finish()
    (item,) = final["output"]
    assert (item["name"], item["namespace"]) == ("spawn_agent", "multi_agent_v1")
    done = [e for e in sse_events(b"".join(chunks + closing).decode())
            if e["type"] == "response.output_item.done"]
    assert done[0]["item"]["namespace"] == "multi_agent_v1"


def test_captured_codex_request_is_answered_2xx_and_streamed(
        proxy: ServerThread, fake_upstream: FakeUpstream,
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="switchyard.access"):
        r = post(proxy, captured("codex_0171_request.json"))
        deadline = time.monotonic() + 5  # the line follows the stream's last byte
        while not any(rec.name == "switchyard.access" for rec in caplog.records):
            assert time.monotonic() < deadline, "no access line"
            time.sleep(0.01)
    assert r.status_code == 200, r.text
    assert r.headers["x-switchyard-dropped-tools"] == "web_search"
    (access,) = [rec.fields for rec in caplog.records if rec.name == "switchyard.access"]
    assert access["dropped_tools"] == "web_search" and access["status"] == 200
    kinds = [e["type"] for e in sse_events(r.text)]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    sent = fake_upstream.requests[-1]
    names = [t["function"]["name"] for t in sent["tools"]]
    assert "multi_agent_v1__spawn_agent" in names and "exec_command" in names
    assert all(t["type"] == "function" for t in sent["tools"])
    assert sent["messages"][-1] == {"role": "user", "content": "say hi"}


def test_captured_tool_turn_pairs_call_and_output(proxy: ServerThread,
                                                  fake_upstream: FakeUpstream) -> None:
    body = captured("codex_0171_tool_turn.json")
    r = post(proxy, body)
    assert r.status_code == 200, r.text
    call, result = fake_upstream.requests[-1]["messages"][-2:]
    assert call["tool_calls"][0]["function"]["name"] == "exec_command"
    assert result["role"] == "tool" and result["tool_call_id"] == call["tool_calls"][0]["id"]
    assert "hi" in result["content"]


@pytest.mark.parametrize("stream", [False, True])
def test_namespaced_call_round_trip(proxy: ServerThread, fake_upstream: FakeUpstream,
                                    stream: bool) -> None:
    body = captured("codex_0171_request.json")
    body.update(stream=stream, tool_choice={"type": "function", "name": "spawn_agent",
                                            "namespace": "multi_agent_v1"})
    r = post(proxy, body)
    assert r.status_code == 200, r.text
    assert fake_upstream.requests[-1]["tool_choice"] == {
        "type": "function", "function": {"name": "multi_agent_v1__spawn_agent"}}
    if stream:
        done = [e for e in sse_events(r.text) if e["type"] == "response.completed"]
        output = done[0]["response"]["output"]
    else:
        output = r.json()["output"]
    (item,) = output
    assert item["type"] == "function_call"
    assert (item["name"], item["namespace"]) == ("spawn_agent", "multi_agent_v1")
    # Codex sends the call back in the next turn's history: it goes upstream flattened.
    body = captured("codex_0171_request.json")
    body["input"] += [{k: item[k] for k in ("type", "call_id", "name", "namespace", "arguments")},
                      {"type": "function_call_output", "call_id": item["call_id"],
                       "output": "agent spawned"}]
    assert post(proxy, body).status_code == 200
    call, result = fake_upstream.requests[-1]["messages"][-2:]
    assert call["tool_calls"][0]["function"]["name"] == "multi_agent_v1__spawn_agent"
    assert result == {"role": "tool", "tool_call_id": item["call_id"], "content": "agent spawned"}
