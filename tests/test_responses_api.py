"""POST /v1/responses through the real openai SDK, a real server and the fake upstream."""

from __future__ import annotations

import json
import sqlite3
import time

import httpx
import openai
import pytest

from tests.conftest import ServerThread
from tests.fake_upstream import FakeUpstream, Fault

TOOLS = [{"type": "function", "name": "search_code", "description": "Search the repository",
          "parameters": {"type": "object", "properties": {"query": {"type": "string"}},
                         "required": ["query"]}}]

# The contract clients rely on (Codex CLI reads these in this order).
TEXT_EVENTS = ["response.created", "response.in_progress", "response.output_item.added",
               "response.content_part.added", "response.output_text.delta",
               "response.output_text.done", "response.content_part.done",
               "response.output_item.done", "response.completed"]
CALL_EVENTS = ["response.created", "response.in_progress", "response.output_item.added",
               "response.function_call_arguments.delta",
               "response.function_call_arguments.done", "response.output_item.done",
               "response.completed"]


def client(proxy: ServerThread) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.base_url, api_key="unused", max_retries=0)


def log_rows(proxy: ServerThread) -> list[dict]:
    db = sqlite3.connect(proxy.config.server.traffic_log_path)  # type: ignore[attr-defined]
    db.row_factory = sqlite3.Row
    rows = [dict(r) for r in db.execute("SELECT * FROM requests ORDER BY created_at")]
    db.close()
    return rows


def stored_ids(proxy: ServerThread) -> list[str]:
    path = proxy.config.server.data_dir / "responses.sqlite"  # type: ignore[attr-defined]
    if not path.exists():
        return []
    db = sqlite3.connect(path)
    ids = [r[0] for r in db.execute("SELECT id FROM responses")]
    db.close()
    return ids


def dedupe(kinds: list[str]) -> list[str]:
    """Event types with runs of repeated deltas collapsed to one."""
    return [k for i, k in enumerate(kinds) if i == 0 or kinds[i - 1] != k]


def test_plain_response_with_usage_headers_and_log(proxy: ServerThread,
                                                   fake_upstream: FakeUpstream) -> None:
    raw = client(proxy).responses.with_raw_response.create(
        model="switchyard/auto", input="hello there", instructions="Be terse.")
    resp = raw.parse()
    assert resp.id.startswith("resp_") and resp.status == "completed"
    assert resp.output_text == "You said: hello there"
    assert resp.output[0].type == "message" and resp.output[0].role == "assistant"
    assert resp.usage is not None and resp.usage.input_tokens > 0
    assert resp.usage.total_tokens == resp.usage.input_tokens + resp.usage.output_tokens
    assert resp.usage.output_tokens_details.reasoning_tokens == 0
    assert resp.instructions == "Be terse."
    assert raw.headers["x-switchyard-model"] == "non_thinking"
    upstream = fake_upstream.requests[-1]
    assert upstream["messages"] == [{"role": "system", "content": "Be terse."},
                                    {"role": "user", "content": "hello there"}]
    rows = log_rows(proxy)
    assert len(rows) == 1 and rows[0]["endpoint"] == "http.responses"
    assert rows[0]["request_id"] == raw.headers["x-request-id"]
    assert json.loads(rows[0]["request_json"])["input"] == "hello there"
    assert stored_ids(proxy) == [resp.id]


def test_streaming_text_event_order(proxy: ServerThread) -> None:
    events = list(client(proxy).responses.create(
        model="switchyard/auto", input="count one two three", stream=True))
    kinds = [e.type for e in events]
    assert dedupe(kinds) == TEXT_EVENTS
    assert kinds.count("response.output_text.delta") == 6
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "You said: count one two three"
    done = events[-1].response
    assert done.status == "completed" and done.output_text == text
    assert done.usage.input_tokens > 0 and done.usage.output_tokens > 0
    added = events[2].item
    assert added.id == done.output[0].id == events[-2].item.id
    assert events[0].response.id == done.id and events[0].response.status == "in_progress"
    assert stored_ids(proxy) == [done.id]
    assert log_rows(proxy)[0]["stream"] == 1


def test_function_call_round_trip_plain_and_streamed(proxy: ServerThread,
                                                      fake_upstream: FakeUpstream) -> None:
    c = client(proxy)
    first = c.responses.create(model="switchyard/auto", tools=TOOLS,
                               input="use the tool to find parse_config")
    (call,) = first.output
    assert call.type == "function_call" and call.name == "search_code"
    assert json.loads(call.arguments)["query"].startswith("use the tool")
    assert fake_upstream.requests[-1]["tools"][0]["function"]["name"] == "search_code"

    events = list(c.responses.create(model="switchyard/auto", tools=TOOLS, stream=True,
                                     input="use the tool to find parse_config"))
    assert dedupe([e.type for e in events]) == CALL_EVENTS
    args = "".join(e.delta for e in events
                   if e.type == "response.function_call_arguments.delta")
    assert args == call.arguments
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert done.name == "search_code" and done.arguments == args

    second = c.responses.create(model="switchyard/auto", tools=TOOLS, input=[
        {"role": "user", "content": "use the tool to find parse_config"},
        {"type": "function_call", "call_id": call.call_id, "name": call.name,
         "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id,
         "output": "found in config.py:12"}])
    assert second.output_text == "The tool returned: found in config.py:12"
    sent = fake_upstream.requests[-1]["messages"]
    assert sent[1]["tool_calls"][0]["id"] == call.call_id
    assert sent[2] == {"role": "tool", "tool_call_id": call.call_id,
                       "content": "found in config.py:12"}


def test_previous_response_id_continues_and_store_false_stores_nothing(
        proxy: ServerThread, fake_upstream: FakeUpstream) -> None:
    c = client(proxy)
    first = c.responses.create(model="switchyard/auto", tools=TOOLS,
                               input="use the tool to read main.py", instructions="old rules")
    call = first.output[0]
    second = c.responses.create(
        model="switchyard/auto", tools=TOOLS, previous_response_id=first.id,
        instructions="new rules",
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "def main()"}])
    assert second.output_text == "The tool returned: def main()"
    assert second.previous_response_id == first.id
    sent = fake_upstream.requests[-1]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool"]
    assert sent[0]["content"] == "new rules"  # instructions are not carried over
    third = c.responses.create(model="switchyard/auto", previous_response_id=second.id,
                               input="thanks", store=False)
    assert [m["role"] for m in fake_upstream.requests[-1]["messages"]] == \
        ["user", "assistant", "tool", "assistant", "user"]
    assert set(stored_ids(proxy)) == {first.id, second.id}  # store: false kept nothing
    with pytest.raises(openai.NotFoundError) as info:
        c.responses.create(model="switchyard/auto", previous_response_id=third.id, input="more")
    assert info.value.body["param"] == "previous_response_id"
    assert third.id in info.value.body["message"]


def test_unknown_previous_response_id_is_404_with_param(proxy: ServerThread) -> None:
    r = httpx.post(proxy.base_url + "/responses", json={
        "model": "switchyard/auto", "input": "hi", "previous_response_id": "resp_nope"})
    assert r.status_code == 404
    err = r.json()["error"]
    assert err["param"] == "previous_response_id" and err["type"] == "not_found_error"
    assert err["code"] == "previous_response_not_found" and "resp_nope" in err["message"]


def test_reasoning_effort_is_an_override(proxy: ServerThread,
                                         fake_upstream: FakeUpstream) -> None:
    raw = client(proxy).responses.with_raw_response.create(
        model="fake-think", input="prove it", reasoning={"effort": "high"})
    resp = raw.parse()
    assert raw.headers["x-switchyard-reasoning-effort"] == "high"
    assert raw.headers["x-switchyard-overridden"] == "true"
    assert raw.headers["x-switchyard-thinking"] == "true"
    assert fake_upstream.requests[-1]["reasoning_effort"] == "high"
    assert resp.usage.output_tokens_details.reasoning_tokens == 1024
    assert resp.reasoning.effort == "high"
    assert log_rows(proxy)[0]["reasoning_effort"] == "high"


def test_sampling_fields_reach_upstream(proxy: ServerThread,
                                        fake_upstream: FakeUpstream) -> None:
    client(proxy).responses.create(
        model="switchyard/auto", input="use the tool please", tools=TOOLS,
        max_output_tokens=77, temperature=0.3, top_p=0.9,
        tool_choice={"type": "function", "name": "search_code"},
        text={"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}}})
    sent = fake_upstream.requests[-1]
    assert sent["max_tokens"] == 77 and sent["temperature"] == 0.3 and sent["top_p"] == 0.9
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "search_code"}}
    assert sent["response_format"] == {"type": "json_schema",
                                       "json_schema": {"name": "out", "schema": {"type": "object"}}}


@pytest.mark.parametrize("body,param", [
    (b"{not json", None),
    (b'{"model": "switchyard/auto"}', "input"),
    (b'{"model": "switchyard/auto", "input": []}', "input"),
    (b'{"model": "switchyard/auto", "input": [{"type": "web_search_call", "id": "x"}]}',
     "input[0].type"),
    (b'{"model": "switchyard/auto", "input": [{"role": "wizard", "content": "x"}]}',
     "input[0].role"),
    ((b'{"model": "switchyard/auto", "input": [{"role": "user", "content": "x"},'
     b' {"type": "function_call_output", "call_id": "nope", "output": "y"}]}'),
     "input[1].call_id"),
    (b'{"model": "switchyard/auto", "input": "x", "tools": [{"type": "namespace"}]}',
     "tools[0].name"),
    (b'{"model": "switchyard/auto", "input": "x", "temperature": 7}', "temperature"),
])
def test_bad_input_gets_openai_error(proxy: ServerThread, body: bytes, param: str | None) -> None:
    r = httpx.post(proxy.base_url + "/responses", content=body,
                   headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["type"] == "invalid_request_error" and err["message"]
    assert err["param"] == param
    assert r.headers["x-request-id"]


def test_upstream_429_streams_response_failed(proxy_factory,  # type: ignore[no-untyped-def]
                                              fake_upstream: FakeUpstream) -> None:
    proxy = proxy_factory(**{"upstream.num_retries": 0, "upstream.fallback_groups": False})
    fake_upstream.enqueue(Fault(status=429, retry_after=0.01))
    events = list(client(proxy).responses.create(model="switchyard/auto", input="hi",
                                                 stream=True))
    assert [e.type for e in events] == ["response.created", "response.in_progress",
                                        "response.failed"]
    failed = events[-1].response
    assert failed.status == "failed" and failed.error.code == "rate_limit_exceeded"
    assert stored_ids(proxy) == []
    deadline = time.monotonic() + 5
    while not log_rows(proxy) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert log_rows(proxy)[0]["status"] == "error"


def test_context_length_error_code_passes_through(proxy: ServerThread,
                                                  fake_upstream: FakeUpstream) -> None:
    fake_upstream.enqueue(Fault(status=400, code="context_length_exceeded"))
    events = list(client(proxy).responses.create(model="switchyard/auto", input="hi",
                                                 stream=True))
    assert events[-1].type == "response.failed"
    assert events[-1].response.error.code == "context_length_exceeded"
    fake_upstream.enqueue(Fault(status=400, code="context_length_exceeded"))
    with pytest.raises(openai.BadRequestError) as info:
        client(proxy).responses.create(model="switchyard/auto", input="hi")
    assert info.value.body["code"] == "context_length_exceeded"


def test_stream_cut_midway_ends_with_response_failed(proxy: ServerThread,
                                                     fake_upstream: FakeUpstream) -> None:
    fake_upstream.enqueue(Fault(cut_after=3))
    events = list(client(proxy).responses.create(
        model="switchyard/auto", input="one two three four five six", stream=True))
    assert events[-1].type == "response.failed"
    # the cut surfaces from the pipeline as an unmapped error, hence the generic code
    assert events[-1].response.error.code in ("stream_error", "server_error")
    assert events[-1].response.status == "failed" and events[-1].response.error.message
    assert "response.completed" not in [e.type for e in events]


def test_sdk_stream_helper_accumulates_our_events(proxy: ServerThread) -> None:
    """The SDK's `responses.stream()` rebuilds the response from the events and checks them."""
    c = client(proxy)
    with c.responses.stream(model="switchyard/auto", input="one two") as stream:
        texts = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(texts) == final.output_text == "You said: one two"
    with c.responses.stream(model="switchyard/auto", input="use the tool now",
                            tools=TOOLS) as stream:
        final = stream.get_final_response()
    assert final.output[0].type == "function_call" and final.output[0].name == "search_code"
    assert json.loads(final.output[0].arguments) == {"query": "use the tool now"}


def test_client_leaving_mid_stream_cancels_upstream(proxy: ServerThread,
                                                    fake_upstream: FakeUpstream) -> None:
    fake_upstream.latency = 0.6  # then 30 ms between the upstream's chunks
    body = {"model": "switchyard/auto", "stream": True,
            "input": " ".join(f"word{i}" for i in range(60))}
    with httpx.stream("POST", proxy.base_url + "/responses", json=body, timeout=10) as r:
        assert r.status_code == 200
        lines = r.iter_lines()
        assert next(lines) == "event: response.created"
    deadline = time.monotonic() + 5
    while fake_upstream.cancelled == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake_upstream.cancelled == 1 and fake_upstream.completed == 0
    while not log_rows(proxy) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert log_rows(proxy)[0]["status"] == "cancelled"
