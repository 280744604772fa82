"""Cascade mode end to end: the real openai SDK over HTTP and a real gRPC server, against the
fake upstream (which answers "You said: <last user message>", so the prompt decides what the
draft contains). One answer reaches the client; the log has both attempts and the draft."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import openai
import pytest
import typer
from switchyard.server.cli.router import register
from switchyard.v1 import gateway_pb2 as pb
from switchyard.v1 import gateway_pb2_grpc
from typer.testing import CliRunner

from tests.conftest import ServerThread
from tests.fake_upstream import FakeUpstream
from tests.grpc_support import serving, user

# The draft echoes these. KEEP states its answer, backed by correct arithmetic; ESCALATE
# offers options and never answers (no final answer: the strongest learned signal).
KEEP = "Check: 3 * 7 = 21. The answer is (B).\nA. 20\nB. 21\nC. 22"
ESCALATE = "Pick one, maybe the closest.\nA. 20\nB. 21\nC. 22"
WEATHER = {"type": "function", "function": {
    "name": "weather", "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}}, "required": ["city"]}}}


def log_rows(data_dir: Path) -> list[dict[str, Any]]:
    db = sqlite3.connect(data_dir / "traffic.sqlite")
    db.row_factory = sqlite3.Row
    rows = [dict(r) for r in db.execute("SELECT * FROM requests ORDER BY created_at")]
    db.close()
    return rows


def client(proxy: ServerThread, **headers: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.base_url, api_key="unused", max_retries=0,
                         default_headers=headers)


def ask(proxy: ServerThread, text: str, **headers: str) -> Any:
    return client(proxy, **headers).chat.completions.with_raw_response.create(
        model="switchyard/auto", messages=[{"role": "user", "content": text}])


def models_called(fake: FakeUpstream) -> list[str]:
    return [r["model"] for r in fake.requests]


def test_http_escalates_a_draft_without_an_answer(proxy_factory, fake_upstream) -> None:  # type: ignore[no-untyped-def]
    proxy = proxy_factory(**{"routing.mode": "cascade"})
    raw = ask(proxy, ESCALATE)
    completion = raw.parse()
    assert len(completion.choices) == 1
    assert completion.model == "fake-think"  # one answer: the thinking model's
    assert raw.headers["x-switchyard-thinking"] == "true"
    assert models_called(fake_upstream) == ["fake-fast", "fake-think"]
    [row] = log_rows(proxy.config.server.data_dir)
    attempts = json.loads(row["attempts_json"])
    assert [(a["stage"], a["deployment"]) for a in attempts] == [("draft", "fake-fast"),
                                                                ("answer", "fake-think")]
    assert row["attempts"] == 2 and not row["fallback"] and row["escalated"] == 1
    entry = json.loads(row["cascade_json"])
    assert entry["draft"].startswith("You said: Pick one") and "no_final_answer" in entry["failed"]
    assert row["p_escalate"] == entry["p_escalate"] >= entry["threshold"]
    assert 0 < row["draft_cost_usd"] < row["cost_usd"]  # both attempts are paid for


def test_http_keeps_a_verified_draft(proxy_factory, fake_upstream) -> None:  # type: ignore[no-untyped-def]
    proxy = proxy_factory(**{"routing.mode": "cascade"})
    completion = ask(proxy, KEEP).parse()
    assert completion.choices[0].message.content == f"You said: {KEEP}"
    assert models_called(fake_upstream) == ["fake-fast"]
    [row] = log_rows(proxy.config.server.data_dir)
    assert row["escalated"] == 0 and row["p_escalate"] < json.loads(row["cascade_json"])["threshold"]
    assert row["cost_usd"] == row["draft_cost_usd"] > 0
    assert "draft kept" in row["route_reason"]


def test_header_override_wins_both_ways(proxy_factory, fake_upstream) -> None:  # type: ignore[no-untyped-def]
    off_by_config = proxy_factory()  # routing.mode: route
    ask(off_by_config, ESCALATE, **{"x-switchyard-cascade": "on"})
    assert models_called(fake_upstream) == ["fake-fast", "fake-think"]
    fake_upstream.requests.clear()
    on_by_config = proxy_factory(**{"routing.mode": "cascade"})
    ask(on_by_config, ESCALATE, **{"x-switchyard-cascade": "off"})
    assert models_called(fake_upstream) == ["fake-fast"]
    row = log_rows(on_by_config.config.server.data_dir)[-1]  # both proxies share the dir
    assert row["attempts"] == 1 and row["p_escalate"] is None
    with pytest.raises(openai.BadRequestError, match="x-switchyard-cascade must be on or off"):
        ask(on_by_config, KEEP, **{"x-switchyard-cascade": "maybe"})


def test_streaming_buffers_the_draft(proxy_factory, fake_upstream) -> None:  # type: ignore[no-untyped-def]
    proxy = proxy_factory(**{"routing.mode": "cascade"})
    kept = client(proxy).chat.completions.create(
        model="switchyard/auto", messages=[{"role": "user", "content": KEEP}], stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in kept if c.choices) == \
        f"You said: {KEEP}"
    escalated = client(proxy).chat.completions.create(
        model="switchyard/auto", messages=[{"role": "user", "content": ESCALATE}], stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in escalated if c.choices)
    assert text == f"You said: {ESCALATE}"
    assert models_called(fake_upstream) == ["fake-fast", "fake-fast", "fake-think"]
    assert not fake_upstream.requests[0].get("stream") and fake_upstream.requests[2]["stream"]
    rows = log_rows(proxy.config.server.data_dir)
    assert [(r["attempts"], r["escalated"]) for r in rows] == [(1, 0), (2, 1)]


def test_tool_call_drafts_escalate_only_on_invalid_arguments(proxy_factory,  # type: ignore[no-untyped-def]
                                                             fake_upstream) -> None:
    proxy = proxy_factory(**{"routing.mode": "cascade"})
    # The fake calls the first tool with {"query": ...}: valid for a free-form tool...
    free = {"type": "function", "function": {"name": "search", "parameters": {
        "type": "object", "properties": {"query": {"type": "string"}}}}}
    reply = client(proxy).chat.completions.create(
        model="switchyard/auto", tools=[free],  # type: ignore[list-item]
        messages=[{"role": "user", "content": "use the tool please"}])
    assert reply.choices[0].message.tool_calls and models_called(fake_upstream) == ["fake-fast"]
    # ...and invalid for one that requires "city": the thinking model answers.
    client(proxy).chat.completions.create(
        model="switchyard/auto", tools=[WEATHER],  # type: ignore[list-item]
        messages=[{"role": "user", "content": "use the tool please"}])
    assert models_called(fake_upstream) == ["fake-fast", "fake-fast", "fake-think"]
    rows = log_rows(proxy.config.server.data_dir)
    assert "tool_args_invalid" in json.loads(rows[1]["cascade_json"])["failed"]


def test_second_sample_is_drawn_and_paid_for(proxy_factory, fake_upstream) -> None:  # type: ignore[no-untyped-def]
    proxy = proxy_factory(**{"routing.mode": "cascade", "routing.cascade.second_sample": True})
    ask(proxy, KEEP)
    assert models_called(fake_upstream)[:2] == ["fake-fast", "fake-fast"]
    assert fake_upstream.requests[1]["temperature"] == 1.0
    [row] = log_rows(proxy.config.server.data_dir)
    stages = [a["stage"] for a in json.loads(row["attempts_json"])]
    assert stages[:2] == ["draft", "second_sample"]
    assert json.loads(row["cascade_json"])["second_sample"] is True


def test_configured_verifiers_run_on_the_draft(proxy_factory, fake_upstream) -> None:  # type: ignore[no-untyped-def]
    proxy = proxy_factory(**{
        "routing.mode": "cascade", "routing.cascade.verifiers": ["says_done"],
        "outcomes.verifiers": [{"name": "says_done", "kind": "regex", "pattern": "DONE"}]})
    ask(proxy, "Reply DONE when finished.")  # the echo contains DONE: kept
    ask(proxy, "Reply when finished.")  # no DONE: the verifier fails, the draft escalates
    assert models_called(fake_upstream) == ["fake-fast", "fake-fast", "fake-think"]
    failed = json.loads(log_rows(proxy.config.server.data_dir)[1]["cascade_json"])["failed"]
    assert "verifier_failed" in failed


def test_unusable_cascade_verifiers_are_config_errors(config_factory) -> None:  # type: ignore[no-untyped-def]
    from switchyard.server.errors import ConfigError

    with pytest.raises(ConfigError, match="'nope' is not one of outcomes.verifiers"):
        config_factory(**{"routing.cascade.verifiers": ["nope"]})
    with pytest.raises(ConfigError, match="needs a reference answer"):
        config_factory(**{"routing.cascade.verifiers": ["num"],
                          "outcomes.verifiers": [{"name": "num", "kind": "numeric"}]})


def test_a_broken_escalation_checkpoint_is_a_server_error(proxy_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "esc.json"
    bad.write_text("{broken")
    proxy = proxy_factory(**{"routing.mode": "cascade", "routing.cascade.checkpoint": str(bad)})
    with pytest.raises(openai.InternalServerError, match="escalation checkpoint .* not JSON"):
        ask(proxy, KEEP)
    assert ask(proxy, KEEP, **{"x-switchyard-cascade": "off"}).parse().choices


async def grpc_chats(pipeline: Any, *requests: pb.ChatRequest) -> list[pb.ChatResponse]:
    async with serving(pipeline) as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        return [await stub.Chat(r, timeout=10) for r in requests]


async def test_grpc_cascade_field_and_log(pipeline_factory, fake_upstream) -> None:  # type: ignore[no-untyped-def]
    pipeline = pipeline_factory(**{"routing.mode": "route"})
    reply, plain = await grpc_chats(pipeline,
                                    pb.ChatRequest(messages=[user(ESCALATE)], cascade=True),
                                    pb.ChatRequest(messages=[user(ESCALATE)]))
    assert reply.model == "fake-think" and reply.decision.thinking
    assert [(a.stage, a.deployment) for a in reply.attempts] == [
        ("draft", "fake-fast"), ("answer", "fake-think")]
    assert [a.stage for a in plain.attempts] == ["answer"]
    rows = log_rows(pipeline.config.server.data_dir)
    assert [(r["attempts"], r["escalated"]) for r in rows] == [(2, 1), (1, 0)]
    assert models_called(fake_upstream) == ["fake-fast", "fake-think", "fake-fast"]


async def test_grpc_cascade_off_wins_over_config(pipeline_factory, fake_upstream) -> None:  # type: ignore[no-untyped-def]
    pipeline = pipeline_factory(**{"routing.mode": "cascade"})
    [reply] = await grpc_chats(pipeline, pb.ChatRequest(messages=[user(ESCALATE)],
                                                        cascade=False))
    assert reply.model == "fake-fast" and models_called(fake_upstream) == ["fake-fast"]


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def test_cli_route_scores_drafts(tmp_path: Path) -> None:
    mcq = [{"role": "user", "content": "Which?\nA. 20\nB. 21\nC. 22"}]
    lines = [{"messages": mcq},
             {"messages": mcq, "draft": "3 * 7 = 21. The answer is (B)."},
             {"messages": mcq, "draft": "Not sure, maybe 22?"}]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    result = CliRunner().invoke(_app(), ["route", "--input", str(path), "--router", "off"])
    assert result.exit_code == 0, result.output
    out = [json.loads(line) for line in result.output.strip().splitlines()]
    assert "p_hard" in out[0] and "p_escalate" not in out[0]
    assert 0 <= out[1]["p_escalate"] < out[2]["p_escalate"] <= 1
    assert (out[1]["escalate"], out[2]["escalate"]) == (False, True)


@pytest.mark.parametrize(("line", "fragment"), [
    ('{"messages": [{"role": "user", "content": "x"}], "draft": 7}',
     "line 2: 'draft' must be a string"),
    ('{"draft": "The answer is (A)."}', "line 2: missing field 'messages'"),
    ('{"messages": "hi", "draft": "x"}', "line 2: "),
])
def test_cli_route_bad_draft_lines_get_one_error_line(tmp_path: Path, line: str,
                                                      fragment: str) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"messages": [{"role": "user", "content": "hi"}], "draft": "ok"}\n'
                    + line + "\n")
    result = CliRunner().invoke(_app(), ["route", "--input", str(path), "--router", "off"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and fragment in lines[0]
