"""The HTTP proxy through the real openai SDK, a real server and the fake upstream."""

from __future__ import annotations

import json
import sqlite3
import time

import httpx
import openai
import pytest

from tests.conftest import ServerThread
from tests.fake_upstream import FakeUpstream, Fault

TOOLS = [{"type": "function", "function": {
    "name": "search_code", "description": "Search the repository",
    "parameters": {"type": "object", "properties": {"query": {"type": "string"}},
                   "required": ["query"]}}}]


def client(proxy: ServerThread, **kw) -> openai.OpenAI:  # type: ignore[no-untyped-def]
    return openai.OpenAI(base_url=proxy.base_url, api_key="unused", max_retries=0, **kw)


def log_rows(proxy: ServerThread) -> list[dict]:
    path = proxy.config.server.traffic_log_path  # type: ignore[attr-defined]
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    rows = [dict(r) for r in db.execute("SELECT * FROM requests ORDER BY created_at")]
    db.close()
    return rows


def test_plain_completion_with_usage_and_decision_headers(proxy: ServerThread) -> None:
    raw = client(proxy).chat.completions.with_raw_response.create(
        model="switchyard/auto", messages=[{"role": "user", "content": "hello there"}])
    completion = raw.parse()
    assert completion.choices[0].message.content == "You said: hello there"
    assert completion.usage is not None and completion.usage.prompt_tokens > 0
    assert raw.headers["x-switchyard-model"] == "non_thinking"
    assert raw.headers["x-switchyard-thinking"] == "false"
    assert raw.headers["x-switchyard-policy-version"] == "off"
    assert raw.headers["x-request-id"].startswith("req_")
    rows = log_rows(proxy)
    assert len(rows) == 1
    assert rows[0]["request_id"] == raw.headers["x-request-id"]
    assert rows[0]["prompt_tokens"] == completion.usage.prompt_tokens
    assert rows[0]["cost_usd"] > 0 and rows[0]["status"] == "ok"


def test_pinned_thinking_model_reports_reasoning_tokens(proxy: ServerThread,
                                                        fake_upstream: FakeUpstream) -> None:
    raw = client(proxy).chat.completions.with_raw_response.create(
        model="fake-think", messages=[{"role": "user", "content": "prove it"}],
        extra_headers={"x-switchyard-reasoning-effort": "high"})
    completion = raw.parse()
    assert raw.headers["x-switchyard-thinking"] == "true"
    assert raw.headers["x-switchyard-overridden"] == "true"
    assert completion.usage.completion_tokens_details.reasoning_tokens == 1024
    assert fake_upstream.requests[-1]["reasoning_effort"] == "high"
    assert fake_upstream.requests[-1]["model"] == "fake-think"
    row = log_rows(proxy)[0]
    assert row["reasoning_tokens"] == 1024 and row["thinking"] == 1


def test_streaming_with_usage(proxy: ServerThread) -> None:
    stream = client(proxy).chat.completions.create(
        model="switchyard/auto", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "count one two three"}])
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "You said: count one two three"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    rows = log_rows(proxy)
    assert len(rows) == 1 and rows[0]["stream"] == 1 and rows[0]["completion_tokens"] > 0


def test_tool_call_round_trip_plain_and_streamed(proxy: ServerThread) -> None:
    c = client(proxy)
    messages = [{"role": "user", "content": "use the tool to find parse_config"}]
    first = c.chat.completions.create(model="switchyard/auto", messages=messages, tools=TOOLS)
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "search_code"
    assert json.loads(call.function.arguments)["query"].startswith("use the tool")

    streamed = list(c.chat.completions.create(model="switchyard/auto", messages=messages,
                                              tools=TOOLS, stream=True))
    args = "".join(ch.choices[0].delta.tool_calls[0].function.arguments or ""
                   for ch in streamed if ch.choices and ch.choices[0].delta.tool_calls)
    assert args == call.function.arguments

    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "found in config.py:12"}]
    second = c.chat.completions.create(model="switchyard/auto", messages=messages, tools=TOOLS)
    assert second.choices[0].message.content == "The tool returned: found in config.py:12"
    assert len(log_rows(proxy)) == 3


def test_models_and_health(proxy: ServerThread) -> None:
    ids = [m.id for m in client(proxy).models.list()]
    assert ids[0] == "switchyard/auto" and "fake-think" in ids and "fake-fast" in ids
    health = httpx.get(proxy.base_url.replace("/v1", "/healthz"))
    assert health.status_code == 200 and health.json()["status"] == "ok"


@pytest.mark.parametrize("body,param", [
    (b"{not json", None),
    (b'{"model": "switchyard/auto", "messages": []}', "messages"),
    (b'{"model": "switchyard/auto", "messages": [{"role": "wizard", "content": "x"}]}',
     "messages[0].role"),
    ((b'{"model": "switchyard/auto", "messages": [{"role": "user", "content": "x"},'
      b' {"role": "tool", "tool_call_id": "nope", "content": "y"}]}'), "messages[1].tool_call_id"),
    ((b'{"model": "switchyard/auto", "messages": [{"role": "user", "content": "x"}],'
      b' "temperature": 7}'), "temperature"),
])
def test_bad_input_gets_openai_error(proxy: ServerThread, body: bytes, param: str | None) -> None:
    r = httpx.post(proxy.base_url + "/chat/completions", content=body,
                   headers={"content-type": "application/json"})
    assert r.status_code == 400
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["type"] == "invalid_request_error" and err["message"]
    assert err["param"] == param
    assert r.headers["x-request-id"]


def test_unknown_model_is_404_and_body_over_limit_is_413(proxy_factory) -> None:  # type: ignore[no-untyped-def]
    proxy = proxy_factory(**{"limits.max_body_bytes": 2000})
    with pytest.raises(openai.NotFoundError) as info:
        client(proxy).chat.completions.create(
            model="gpt-nonexistent", messages=[{"role": "user", "content": "hi"}])
    assert info.value.body["code"] == "model_not_found"
    big = {"model": "switchyard/auto", "messages": [{"role": "user", "content": "x" * 5000}]}
    r = httpx.post(proxy.base_url + "/chat/completions", json=big)
    assert r.status_code == 413 and "max_body_bytes=2000" in r.json()["error"]["message"]


def test_upstream_errors_map_to_openai_errors(proxy: ServerThread,
                                              fake_upstream: FakeUpstream) -> None:
    fake_upstream.enqueue(*[Fault(status=400, code="context_length_exceeded")])
    with pytest.raises(openai.BadRequestError) as info:
        client(proxy).chat.completions.create(
            model="switchyard/auto", messages=[{"role": "user", "content": "hi"}])
    assert info.value.body["code"] == "context_length_exceeded"
    rows = log_rows(proxy)
    assert rows[-1]["status"] == "error" and rows[-1]["http_status"] == 400


def test_a_failed_request_keeps_its_routing_decision_in_the_log(
        proxy: ServerThread, fake_upstream: FakeUpstream) -> None:
    fake_upstream.enqueue(Fault(status=400, code="context_length_exceeded"))
    with pytest.raises(openai.BadRequestError):
        client(proxy).chat.completions.create(
            model="switchyard/auto", messages=[{"role": "user", "content": "hi there"}])
    row = log_rows(proxy)[-1]
    assert row["status"] == "error" and row["error_type"] == "UpstreamRejected"
    assert (row["model"], row["policy_version"]) == ("non_thinking", "off")
    assert row["tokens_before"] > 0 and row["tokens_after"] == row["tokens_before"]
    assert set(json.loads(row["stage_ms_json"])) == {"admit", "compact", "recall", "route"}
    assert row["attempts"] == 1


def test_retry_then_fallback_is_visible(proxy: ServerThread, fake_upstream: FakeUpstream) -> None:
    # non_thinking fails 3 times (1 try + 2 retries), then the thinking group answers.
    fake_upstream.enqueue(Fault(status=500), Fault(status=429, retry_after=0.01), Fault(status=502))
    raw = client(proxy).chat.completions.with_raw_response.create(
        model="switchyard/auto", messages=[{"role": "user", "content": "hi"}])
    assert raw.parse().choices[0].message.content == "You said: hi"
    assert raw.headers["x-switchyard-attempts"] == "4"
    assert raw.headers["x-switchyard-upstream"] == "fake-think"
    row = log_rows(proxy)[0]
    assert row["fallback"] == 1 and row["attempts"] == 4
    outcomes = [a["outcome"] for a in json.loads(row["attempts_json"])]
    assert outcomes == ["UpstreamError", "UpstreamRateLimited", "UpstreamError", "ok"]


def test_missing_credentials_named_in_error(proxy_factory) -> None:  # type: ignore[no-untyped-def]
    proxy = proxy_factory(**{
        "models.thinking": [{"model": "openai/o4-mini", "api_key_env": "NO_SUCH_KEY"}],
        "models.non_thinking": [{"model": "openai/gpt-4.1-mini", "api_key_env": "NO_SUCH_KEY"}],
    })
    with pytest.raises(openai.AuthenticationError) as info:
        client(proxy).chat.completions.create(
            model="switchyard/auto", messages=[{"role": "user", "content": "hi"}])
    assert "NO_SUCH_KEY" in info.value.body["message"]
    assert "gpt-4.1-mini" in info.value.body["message"]


def test_stream_cut_midway_ends_with_error_event(proxy: ServerThread,
                                                 fake_upstream: FakeUpstream) -> None:
    fake_upstream.enqueue(Fault(cut_after=3))
    with pytest.raises(openai.APIError):
        list(client(proxy).chat.completions.create(
            model="switchyard/auto", stream=True,
            messages=[{"role": "user", "content": "one two three four five six"}]))
    deadline = time.monotonic() + 5
    while not log_rows(proxy) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert log_rows(proxy)[0]["status"] == "error"
