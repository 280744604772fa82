"""POST /v1/messages through the real anthropic SDK, a real server and the fake upstream."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from tests.conftest import ServerThread
from tests.fake_upstream import FakeUpstream, Fault

CLIENTS = Path(__file__).parent / "data" / "clients"
CAPTURED = CLIENTS / "claude_code_request.json"  # its first request of `claude -p`
CAPTURED_TOOL_RESULT = CLIENTS / "claude_code_tool_result_request.json"  # after a Write call
TOOLS = [{"name": "search_code", "description": "Search the repository",
          "input_schema": {"type": "object", "properties": {"query": {"type": "string"}},
                           "required": ["query"]}}]
TEXT_EVENTS = ["message_start", "ping", "content_block_start", "content_block_delta",
               "content_block_stop", "message_delta", "message_stop"]
CLAUDE_ALIAS = {"aliases": {"claude-*": "switchyard/auto"}}


def client(proxy: ServerThread) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=proxy.base_url.removesuffix("/v1"), api_key="unused",
                               max_retries=0)


def log_rows(proxy: ServerThread) -> list[dict[str, Any]]:
    db = sqlite3.connect(proxy.config.server.traffic_log_path)  # type: ignore[attr-defined]
    db.row_factory = sqlite3.Row
    rows = [dict(r) for r in db.execute("SELECT * FROM requests ORDER BY created_at")]
    db.close()
    return rows


def sse(response: httpx.Response) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) pairs; the name line must agree with the data's type."""
    out = []
    for block in response.text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        data = json.loads(lines["data"])
        assert data["type"] == lines["event"]
        out.append((lines["event"], data))
    return out


def dedupe(kinds: list[str]) -> list[str]:
    return [k for i, k in enumerate(kinds) if i == 0 or kinds[i - 1] != k]


def post(proxy: ServerThread, body: dict[str, Any], path: str = "/messages",
         headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(proxy.base_url + path, json=body, headers=headers or {}, timeout=30)


# -- plain and streamed ----------------------------------------------------------------------
def test_plain_message_via_sdk_is_logged_for_replay(proxy: ServerThread,
                                                    fake_upstream: FakeUpstream) -> None:
    raw = client(proxy).messages.with_raw_response.create(
        model="switchyard/auto", max_tokens=200, system=[{"type": "text", "text": "Be terse."}],
        messages=[{"role": "user", "content": "hello there"}])
    msg = raw.parse()
    assert msg.id.startswith("msg_") and msg.role == "assistant" and msg.type == "message"
    assert [b.type for b in msg.content] == ["text"]
    assert msg.content[0].text == "You said: hello there"  # type: ignore[union-attr]
    assert msg.stop_reason == "end_turn" and msg.model == "fake-fast"
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens == 4
    assert raw.headers["x-switchyard-model"] == "non_thinking"
    upstream = fake_upstream.requests[-1]
    assert upstream["messages"] == [{"role": "system", "content": "Be terse."},
                                    {"role": "user", "content": "hello there"}]
    assert upstream["max_tokens"] == 200
    [row] = log_rows(proxy)
    assert row["endpoint"] == "http.messages" and row["status"] == "ok"
    assert row["request_id"] == raw.headers["x-request-id"]
    assert json.loads(row["request_json"])["messages"][0]["content"] == "hello there"


def test_streamed_message_event_sequence(proxy: ServerThread) -> None:
    with client(proxy).messages.stream(model="switchyard/auto", max_tokens=100,
                                       messages=[{"role": "user", "content": "one two three"}]
                                       ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "You said: one two three"
    assert final.content[0].text == text  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 5
    response = post(proxy, {"model": "switchyard/auto", "max_tokens": 100, "stream": True,
                            "messages": [{"role": "user", "content": "one two three"}]})
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse(response)
    assert dedupe([k for k, _ in events]) == TEXT_EVENTS
    start, delta = events[0][1], events[-2][1]
    assert start["message"]["content"] == [] and start["message"]["usage"]["input_tokens"] > 0
    assert delta["delta"]["stop_reason"] == "end_turn" and delta["usage"]["output_tokens"] == 5
    assert [r["endpoint"] for r in log_rows(proxy)] == ["http.messages"] * 2


# -- tools -----------------------------------------------------------------------------------
def test_tool_use_round_trip_plain_and_streamed(proxy: ServerThread,
                                                fake_upstream: FakeUpstream) -> None:
    sdk = client(proxy)
    ask = [{"role": "user", "content": "use the tool please"}]
    msg = sdk.messages.create(model="switchyard/auto", max_tokens=100, tools=TOOLS,
                              tool_choice={"type": "auto"}, messages=ask)
    assert msg.stop_reason == "tool_use"
    [call] = msg.content
    assert call.type == "tool_use" and call.name == "search_code"
    assert call.input == {"query": "use the tool please"}
    assert fake_upstream.requests[-1]["tools"][0]["function"]["name"] == "search_code"
    assert fake_upstream.requests[-1]["tool_choice"] == "auto"

    with sdk.messages.stream(model="switchyard/auto", max_tokens=100, tools=TOOLS,
                             messages=ask) as stream:
        streamed = stream.get_final_message()
    assert [b.type for b in streamed.content] == ["tool_use"]
    assert streamed.content[0].input == call.input  # type: ignore[union-attr]
    assert streamed.stop_reason == "tool_use"

    answer = sdk.messages.create(model="switchyard/auto", max_tokens=100, tools=TOOLS, messages=[
        *ask, {"role": "assistant", "content": [{"type": "text", "text": "Searching."},
                                                call.model_dump(exclude_none=True)]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                      "content": [{"type": "text", "text": "found it"}]}]}])
    assert answer.content[0].text == "The tool returned: found it"  # type: ignore[union-attr]
    sent = fake_upstream.requests[-1]["messages"]
    assert sent[1]["tool_calls"][0]["id"] == call.id and sent[1]["content"] == "Searching."
    assert json.loads(sent[1]["tool_calls"][0]["function"]["arguments"]) == call.input
    assert sent[2] == {"role": "tool", "content": "found it", "tool_call_id": call.id}


def test_images_pass_through_and_tool_result_images_follow(proxy: ServerThread,
                                                           fake_upstream: FakeUpstream) -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": "iVBORw0KGgo="}}
    client(proxy).messages.create(model="switchyard/auto", max_tokens=50, messages=[
        {"role": "user", "content": [{"type": "text", "text": "what is this"}, image]}])
    content = fake_upstream.requests[-1]["messages"][0]["content"]
    assert content == [{"type": "text", "text": "what is this"},
                       {"type": "image_url", "image_url": {"url": "data:image/png;base64,"
                                                                  "iVBORw0KGgo="}}]
    client(proxy).messages.create(model="switchyard/auto", max_tokens=50, tools=TOOLS, messages=[
        {"role": "user", "content": "look"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1",
                                           "name": "search_code", "input": {"query": "x"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                      "content": [{"type": "text", "text": "a chart"}, image]}]}])
    sent = fake_upstream.requests[-1]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "user"]
    assert sent[2]["content"].startswith("a chart\n[1 image(s)")
    assert sent[3]["content"][0]["type"] == "image_url"


def test_hosted_tools_are_left_out_and_named(proxy: ServerThread,
                                             fake_upstream: FakeUpstream) -> None:
    response = post(proxy, {"model": "switchyard/auto", "max_tokens": 50, "tools": [
        *TOOLS, {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}],
        "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200
    assert response.headers["x-switchyard-dropped-tools"] == "web_search"
    assert [t["function"]["name"] for t in fake_upstream.requests[-1]["tools"]] == ["search_code"]


# -- Claude Code -----------------------------------------------------------------------------
def test_captured_claude_code_request_streams_through(proxy_factory: Any,
                                                      fake_upstream: FakeUpstream) -> None:
    captured = json.loads(CAPTURED.read_text())
    assert captured["path"] == "/v1/messages?beta=true"
    body = captured["body"]
    headers = {k: v for k, v in captured["headers"].items() if k != "accept"}
    fast = {"model": "openai/fake-fast", "name": "fake-fast", "api_base": fake_upstream.base_url,
            "timeout": 5, "max_output_tokens": 16384}
    proxy = proxy_factory(**CLAUDE_ALIAS, **{"models.non_thinking": [fast]})
    assert httpx.head(f"http://127.0.0.1:{proxy.port}/").status_code == 200  # its first call
    response = httpx.post(f"http://127.0.0.1:{proxy.port}{captured['path']}", json=body,
                          headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    events = sse(response)
    assert dedupe([k for k, _ in events]) == TEXT_EVENTS
    # The fake answers with a call of the first tool (the last turn mentions tools).
    [start] = [d["content_block"] for k, d in events if k == "content_block_start"]
    assert start["type"] == "tool_use" and start["name"] == body["tools"][0]["name"]
    args = "".join(d["delta"]["partial_json"] for k, d in events if k == "content_block_delta")
    assert "query" in json.loads(args)
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
    upstream = fake_upstream.requests[-1]
    assert len(upstream["tools"]) == len(body["tools"]) == 24
    assert upstream["max_tokens"] == 16384 and upstream["stream"] is True  # capped for the model
    roles = [m["role"] for m in upstream["messages"]]
    assert roles == ["system", "user", "system"]  # mid-conversation system turn kept in place
    assert "say hi" in upstream["messages"][1]["content"]
    [row] = log_rows(proxy)
    assert row["endpoint"] == "http.messages" and row["requested_model"] == "claude-opus-4-8"
    assert row["session_id"] == headers["x-claude-code-session-id"]
    assert json.loads(row["request_json"]) == body  # replayable as sent


@pytest.mark.parametrize("stream", [False, True])
def test_captured_claude_code_tool_result_turn(proxy_factory: Any, fake_upstream: FakeUpstream,
                                              stream: bool) -> None:
    captured = json.loads(CAPTURED_TOOL_RESULT.read_text())
    body = {**captured["body"], "stream": stream}
    proxy = proxy_factory(**CLAUDE_ALIAS)
    response = httpx.post(f"http://127.0.0.1:{proxy.port}{captured['path']}", json=body,
                          timeout=30)
    assert response.status_code == 200, response.text
    if stream:
        text = "".join(d["delta"]["text"] for k, d in sse(response) if k == "content_block_delta")
    else:
        text = response.json()["content"][0]["text"]
    assert text.startswith("The tool returned: File created successfully")
    sent = fake_upstream.requests[-1]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "system", "assistant", "tool"]
    [call] = sent[3]["tool_calls"]
    assert call["function"]["name"] == "Write" and sent[4]["tool_call_id"] == call["id"]
    assert json.loads(call["function"]["arguments"]) == body["messages"][2]["content"][0]["input"]


def test_unknown_model_without_alias_is_an_anthropic_404(proxy: ServerThread) -> None:
    with pytest.raises(anthropic.NotFoundError) as err:
        client(proxy).messages.create(model="claude-opus-4-8", max_tokens=10,
                                      messages=[{"role": "user", "content": "hi"}])
    assert err.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    assert "claude-opus-4-8" in err.value.body["error"]["message"]  # type: ignore[index]


# -- errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("body", "status", "needle"), [
    (b"{not json", 400, "not valid JSON"),
    ({"model": "switchyard/auto", "messages": [{"role": "user", "content": "hi"}]}, 400,
     "max_tokens"),
    ({"model": "switchyard/auto", "max_tokens": 5, "messages": []}, 400, "non-empty"),
    ({"model": "switchyard/auto", "max_tokens": 5,
      "messages": [{"role": "user", "content": [{"type": "video", "url": "x"}]}]}, 400,
     "messages[0].content[0].type 'video'"),
    ({"model": "switchyard/auto", "max_tokens": 5, "thinking": {"type": "enabled"},
      "messages": [{"role": "user", "content": "hi"}]}, 400, "budget_tokens is required"),
    ({"model": "switchyard/auto", "max_tokens": 5, "messages": [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f",
                                           "input": {}}]},
        {"role": "user", "content": "no result"}]}, 400, "do not pair up"),
])
def test_bad_requests_get_one_line_anthropic_errors(proxy: ServerThread, body: Any, status: int,
                                                     needle: str) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = httpx.post(proxy.base_url + "/messages", content=content, timeout=30,
                          headers={"content-type": "application/json"})
    assert response.status_code == status
    error = response.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert needle in error["error"]["message"] and "\n" not in error["error"]["message"]
    assert error["request_id"] == response.headers["x-request-id"]


def test_upstream_rate_limit_maps_to_sdk_error(proxy: ServerThread,
                                               fake_upstream: FakeUpstream) -> None:
    fake_upstream.enqueue(*[Fault(status=429, retry_after=0.01)] * 12)
    with pytest.raises(anthropic.RateLimitError) as err:
        client(proxy).messages.create(model="fake-fast", max_tokens=10,
                                      messages=[{"role": "user", "content": "hi"}])
    assert err.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    fake_upstream.faults.clear()


# -- count_tokens ----------------------------------------------------------------------------
def test_count_tokens_counts_messages_system_and_tools(proxy: ServerThread) -> None:
    sdk = client(proxy)
    messages = [{"role": "user", "content": "count these few words please"}]
    plain = sdk.messages.count_tokens(model="switchyard/auto", messages=messages)  # type: ignore[arg-type]
    more = sdk.messages.count_tokens(model="switchyard/auto", messages=messages,  # type: ignore[arg-type]
                                     system="You are terse.", tools=TOOLS)  # type: ignore[arg-type]
    assert 5 < plain.input_tokens < more.input_tokens
    assert log_rows(proxy) == []  # counting calls no model


# -- thinking --------------------------------------------------------------------------------
def ask(proxy: ServerThread, thinking: dict[str, Any] | None, stream: bool = False,
        model: str = "switchyard/auto") -> httpx.Response:
    body: dict[str, Any] = {"model": model, "max_tokens": 8000, "stream": stream,
                            "messages": [{"role": "user", "content": "prove it"}]}
    if thinking is not None:
        body["thinking"] = thinking
    return post(proxy, body)


def test_router_decides_thinking_and_reasoning_comes_back_as_thinking_blocks(
        proxy_factory: Any, fake_upstream: FakeUpstream) -> None:
    fake_upstream.reasoning = "Let me think about this carefully."
    proxy = proxy_factory(**{"routing.router": "always"})
    plain = ask(proxy, {"type": "adaptive"})
    assert plain.headers["x-switchyard-model"] == "thinking"
    assert plain.headers["x-switchyard-overridden"] == "false"
    assert fake_upstream.requests[-1]["reasoning_effort"]  # the router's knob went upstream
    blocks = plain.json()["content"]
    assert [b["type"] for b in blocks] == ["thinking", "text"]
    assert blocks[0]["thinking"] == fake_upstream.reasoning
    events = sse(ask(proxy, {"type": "adaptive"}, stream=True))
    deltas = [d["delta"] for k, d in events if k == "content_block_delta"]
    assert "".join(d["thinking"] for d in deltas if d["type"] == "thinking_delta") == \
        fake_upstream.reasoning
    starts = [d["content_block"]["type"] for k, d in events if k == "content_block_start"]
    assert starts == ["thinking", "text"]
    assert [d["index"] for k, d in events if k == "content_block_stop"] == [0, 1]


def test_client_thinking_budget_overrides_the_router(proxy_factory: Any,
                                                     fake_upstream: FakeUpstream) -> None:
    proxy = proxy_factory(**{"routing.router": "never"})
    assert ask(proxy, {"type": "adaptive"}).headers["x-switchyard-model"] == "non_thinking"
    assert "reasoning_effort" not in fake_upstream.requests[-1]
    forced = ask(proxy, {"type": "enabled", "budget_tokens": 5000})
    assert forced.headers["x-switchyard-model"] == "thinking"
    # An OpenAI-style deployment takes an effort, not a budget: the header reports only
    # what was sent; the decision's budget is in the log.
    assert "x-switchyard-budget-tokens" not in forced.headers
    assert log_rows(proxy)[-1]["budget_tokens"] == 5000
    assert forced.headers["x-switchyard-overridden"] == "true"
    assert fake_upstream.requests[-1]["model"] == "fake-think"
    always = proxy_factory(**{"routing.router": "always"})
    off = ask(always, {"type": "disabled"})
    assert off.headers["x-switchyard-model"] == "non_thinking"
    assert off.headers["x-switchyard-overridden"] == "true"


# -- anthropic deployments and replay --------------------------------------------------------
def test_anthropic_deployment_gets_the_budget_as_anthropic_expects(config_factory: Any) -> None:
    from switchyard.router.decision import RouteDecision
    from switchyard.server.upstream.retry import Upstream

    config = config_factory(**{"models.thinking": [
        {"model": "anthropic/claude-sonnet-4-5", "api_key_env": "ANTHROPIC_API_KEY"}]})
    upstream = Upstream(config)
    decision = RouteDecision("thinking", True, "high", 6000, 0.9, "test", "test")
    [(deployment, group)] = upstream.plan(decision)[:1]
    payload = upstream._payload({"messages": [], "max_tokens": 2000, "temperature": 0.2,
                                 "top_p": 0.5}, decision, deployment, group)
    assert payload["thinking"] == {"type": "enabled", "budget_tokens": 6000}
    assert payload["max_tokens"] > 6000  # Anthropic: the budget must fit under max_tokens
    assert "temperature" not in payload and "top_p" not in payload  # refused with thinking


def test_aliases_route_unknown_names_and_must_point_somewhere(config_factory: Any) -> None:
    from switchyard.server.errors import ConfigError

    config = config_factory(aliases={"claude-haiku-*": "fake-fast", "claude-*": "switchyard/auto"})
    assert config.alias_for("claude-haiku-4-5") == "fake-fast"  # first match, in file order
    assert config.alias_for("claude-opus-4-8") == "switchyard/auto"
    assert config.alias_for("gpt-5") is None
    with pytest.raises(ConfigError, match="unknown: nowhere"):
        config_factory(aliases={"claude-*": "nowhere"})


def test_cascade_drafts_behind_a_claude_alias(proxy_factory: Any,
                                              fake_upstream: FakeUpstream) -> None:
    """routing.mode cascade applies to an aliased name (the alias means switchyard/auto), plain
    and streamed; x-switchyard-cascade: off turns it off for one request, as on the chat door."""
    proxy = proxy_factory(**{"routing.mode": "cascade"}, **CLAUDE_ALIAS)
    no_answer = "Pick one, maybe the closest.\nA. 20\nB. 21\nC. 22"  # the draft escalates
    body = {"model": "claude-sonnet-4-5", "max_tokens": 100, "thinking": {"type": "adaptive"},
            "messages": [{"role": "user", "content": no_answer}]}
    plain = post(proxy, body)
    assert plain.status_code == 200 and plain.json()["model"] == "fake-think"
    assert [r["model"] for r in fake_upstream.requests] == ["fake-fast", "fake-think"]
    streamed = post(proxy, {**body, "stream": True})
    assert sse(streamed)[0][1]["message"]["model"].endswith("fake-think")
    assert [r["model"] for r in fake_upstream.requests[2:]] == ["fake-fast", "fake-think"]
    off = post(proxy, body, headers={"x-switchyard-cascade": "off"})
    assert off.status_code == 200 and len(fake_upstream.requests) == 5
    bad = post(proxy, body, headers={"x-switchyard-cascade": "maybe"})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    assert [(r["escalated"], r["cascade_json"] is None, r["http_status"])
            for r in log_rows(proxy)] == [
        (1, False, 200), (1, False, 200), (0, True, 200),
        (0, True, 400)]  # the 400 never reached the pipeline: logged as refused


def test_logged_messages_body_converts_to_a_chat_body() -> None:
    from switchyard.core.messages import parse_messages, parse_tools
    from switchyard.server.errors import InvalidRequest
    from switchyard.server.http.messages.translate import replay_json

    body = json.loads(replay_json(json.dumps(json.loads(CAPTURED.read_text())["body"])))
    assert len(parse_messages(body["messages"])) == 3
    assert len(parse_tools(body["tools"])) == 24 and body["max_tokens"] == 64000
    with pytest.raises(InvalidRequest):
        replay_json('{"model": "x", "messages": []}')


def test_keys_mode_takes_x_api_key_and_refuses_in_anthropic_shape(proxy_factory: Any) -> None:
    from switchyard.server.auth import KeyStore, keys_path

    proxy = proxy_factory(**{"auth.mode": "keys"})
    store = KeyStore(keys_path(proxy.config))
    info, key = store.create("claude-code")
    store.close()
    with pytest.raises(anthropic.AuthenticationError) as err:
        client(proxy).messages.create(model="switchyard/auto", max_tokens=10,
                                      messages=[{"role": "user", "content": "hi"}])
    assert err.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    sdk = anthropic.Anthropic(base_url=proxy.base_url.removesuffix("/v1"), api_key=key,
                              max_retries=0)  # the SDK sends x-api-key, as Claude Code does
    msg = sdk.messages.create(model="switchyard/auto", max_tokens=10,
                              messages=[{"role": "user", "content": "hi"}])
    assert msg.content[0].text == "You said: hi"  # type: ignore[union-attr]
    assert [r["api_key_id"] for r in log_rows(proxy)] == [info.key_id]
    root = proxy.base_url.removesuffix("/v1")
    assert httpx.head(root + "/", headers={"x-api-key": key}).status_code == 200


class FakeAnthropic:
    """An Anthropic Messages endpoint that records bodies and thinks before it answers."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        async def messages(request: Request) -> JSONResponse:
            self.bodies.append(await request.json())
            return JSONResponse({
                "id": "msg_fake", "type": "message", "role": "assistant",
                "model": "claude-sonnet-4-5", "stop_reason": "end_turn", "stop_sequence": None,
                "content": [{"type": "thinking", "thinking": "Two plus two.", "signature": "s"},
                            {"type": "text", "text": "4"}],
                "usage": {"input_tokens": 12, "output_tokens": 9}})

        return Starlette(routes=[Route("/v1/messages", messages, methods=["POST"])])


def test_anthropic_deployment_through_litellm_gets_the_budget(proxy_factory: Any) -> None:
    fake = FakeAnthropic()
    with ServerThread(fake.app()) as anthropic_api:
        deployment = {"model": "anthropic/claude-sonnet-4-5", "name": "sonnet",
                      "api_base": f"http://127.0.0.1:{anthropic_api.port}", "api_key": "x",
                      "timeout": 20}
        proxy = proxy_factory(**{"models.thinking": [deployment], "routing.router": "never"})
        response = post(proxy, {"model": "switchyard/auto", "max_tokens": 1000,
                                "thinking": {"type": "enabled", "budget_tokens": 3000},
                                "messages": [{"role": "user", "content": "2+2?"}]})
        after_tool = post(proxy, {"model": "switchyard/auto", "max_tokens": 1000, "tools": TOOLS,
                                  "thinking": {"type": "enabled", "budget_tokens": 3000},
                                  "messages": [
            {"role": "user", "content": "look it up"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1",
                                               "name": "search_code", "input": {"query": "x"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                          "content": "x is 4"}]}]})
    assert response.status_code == 200, response.text
    assert after_tool.status_code == 200, after_tool.text
    # Signed thinking blocks do not survive chat messages: a history with tool calls goes
    # without thinking rather than into Anthropic's 400.
    assert "thinking" not in fake.bodies[1] and fake.bodies[1]["messages"][1]["role"] == "assistant"
    assert response.headers["x-switchyard-upstream"] == "sonnet"
    sent = fake.bodies[0]
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 3000}
    assert sent["max_tokens"] == 4000  # the caller's 1000 on top of the budget
    blocks = response.json()["content"]
    assert [(b["type"], b.get("thinking") or b.get("text")) for b in blocks] == [
        ("thinking", "Two plus two."), ("text", "4")]


def test_options_map_to_chat_completions(proxy: ServerThread, fake_upstream: FakeUpstream) -> None:
    pdf = {"type": "document", "title": "spec.pdf",
           "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}}
    response = post(proxy, {
        "model": "switchyard/auto", "max_tokens": 50, "temperature": 0.3, "top_k": 5,
        "stop_sequences": ["END"], "tools": TOOLS,
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "output_config": {"effort": "low", "format": {"type": "json_schema",
                                                      "schema": {"type": "object"}}},
        "metadata": {"user_id": "u1"}, "context_management": {"edits": []},
        "messages": [{"role": "user", "content": [{"type": "text", "text": "read it"}, pdf]}]})
    assert response.status_code == 200, response.text
    sent = fake_upstream.requests[-1]
    assert sent["tool_choice"] == "required" and sent["parallel_tool_calls"] is False
    assert sent["stop"] == ["END"] and sent["temperature"] == 0.3 and "top_k" not in sent
    assert sent["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "output", "schema": {"type": "object"}, "strict": True}}
    assert sent["messages"][0]["content"][1] == {"type": "file", "file": {
        "file_data": "data:application/pdf;base64,JVBERi0=", "filename": "spec.pdf"}}
    assert "metadata" not in sent and "reasoning_effort" not in sent  # effort: the router's
