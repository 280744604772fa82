"""What a newcomer hit (issue 16, part 4), each pinned by a test."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import typer
from switchyard.core.trafficlog.schema import TrafficRecord
from switchyard.router.decision import RouteDecision
from switchyard.server.cli.log import register
from switchyard.server.errors import ConfigError
from switchyard.server.grpc.server import start_grpc_server
from switchyard.server.log_setup import setup_logging
from switchyard.server.pipeline import Pipeline
from switchyard.server.pipeline_types import StreamDelta, ToolCallDelta, Usage
from switchyard.server.streaming import merge_final
from switchyard.server.traffic.writer import TrafficLog
from switchyard.server.upstream.retry import Upstream
from typer.testing import CliRunner

from tests.conftest import ServerThread


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real command line in a subprocess (under pytest, the CLI re-raises on purpose)."""
    return subprocess.run([sys.executable, "-m", "switchyard.server.cli.main", *args],
                          capture_output=True, text=True, timeout=120, env=env, check=False)


async def test_a_second_grpc_server_on_a_busy_port_refuses_to_start(
        pipeline_factory: Any) -> None:
    pipeline = pipeline_factory()
    first, port = await start_grpc_server(pipeline, "127.0.0.1", 0)
    try:
        with pytest.raises(ConfigError, match=f"cannot bind the gRPC port 127.0.0.1:{port}"):
            await start_grpc_server(pipeline, "127.0.0.1", port)
    finally:
        await first.stop(None)


def test_an_unusable_data_dir_is_one_error_line(tmp_path: Path, config_factory: Any) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="cannot use the data directory"):
        Pipeline.from_config(config_factory(**{"server.data_dir": str(blocker / "sub")}))
    out = cli("serve", "--data-dir", str(blocker / "sub"), "--http-port", "0")
    assert out.returncode == 1
    expected = (f"Error: cannot use the data directory {blocker / 'sub'}: Not a directory; "
                "choose a writable folder with --data-dir or SWITCHYARD_DATA_DIR")
    assert out.stderr.strip().splitlines() == [expected]
    out = cli("index", str(blocker), "-n", "x", "--no-dense", "--data-dir", str(blocker / "sub"))
    assert (out.returncode, out.stderr.strip().splitlines()) == (1, [expected])


@pytest.mark.parametrize("args", [["train-router", "--data-dir", "{empty}"],
                                  ["train-compactor", "--data", "{empty}",
                                   "--out", "{empty}/scorer"]])
def test_training_without_data_is_one_error_line(tmp_path: Path, args: list[str]) -> None:
    out = cli(*(a.format(empty=tmp_path) for a in args))
    assert out.returncode == 1
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("Error: ") and str(tmp_path) in line


async def _deltas(*items: StreamDelta) -> Any:
    for item in items:
        yield item


async def test_finish_reason_and_usage_travel_on_one_last_delta() -> None:
    usage = Usage(3, 4)
    merged = [d async for d in merge_final(_deltas(
        StreamDelta(content="hi"), StreamDelta(finish_reason="stop"),
        StreamDelta(usage=usage, model="m")))]
    assert merged == [StreamDelta(content="hi"),
                      StreamDelta(finish_reason="stop", usage=usage, model="m")]
    # Nothing to merge with: each passes through unchanged, in order.
    calls = (ToolCallDelta(0, "c", "f", "{}"),)
    alone = [StreamDelta(finish_reason="tool_calls"), StreamDelta(tool_calls=calls)]
    assert [d async for d in merge_final(_deltas(*alone))] == alone


def test_budget_header_only_when_a_budget_was_sent(proxy: ServerThread) -> None:
    r = httpx.post(proxy.base_url + "/chat/completions", timeout=10, json={
        "model": "thinking", "messages": [{"role": "user", "content": "hi"}]},
        headers={"x-switchyard-budget-tokens": "4096"})
    assert r.status_code == 200
    assert r.headers["x-switchyard-thinking"] == "true"
    assert "x-switchyard-budget-tokens" not in r.headers  # an OpenAI deployment: effort only


async def test_attempt_records_the_budget_a_thinking_provider_was_sent(
        config_factory: Any) -> None:
    def anthropic_style(decision: RouteDecision, model: str) -> dict[str, Any]:
        return {"thinking": {"type": "enabled", "budget_tokens": 2048}}

    upstream = Upstream(config_factory(), provider_params=anthropic_style)
    decision = RouteDecision("thinking", True, "medium", 2048, None, "t", "pinned")
    try:
        outcome = await upstream.complete({"messages": [{"role": "user", "content": "x"}]},
                                          decision, None)
    finally:
        await upstream.aclose()
    assert outcome.attempts[-1].budget_tokens == 2048


def test_faiss_loader_info_lines_stay_out_of_the_server_log(config_factory: Any) -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    try:
        setup_logging(config_factory(), stream=stream)
        logging.getLogger("faiss.loader").info("Could not load library with AVX512 support")
        logging.getLogger("faiss.loader").warning("a real faiss problem")
    finally:
        root.handlers[:], root.level = before[0], before[1]
        logging.getLogger("faiss.loader").setLevel(logging.NOTSET)
    lines = [json.loads(line)["message"] for line in stream.getvalue().splitlines()]
    assert lines == ["a real faiss problem"]


def test_log_tail_and_show(tmp_path: Path) -> None:
    path = tmp_path / "traffic.sqlite"
    log = TrafficLog(path)
    for i in range(3):
        log.write_sync(TrafficRecord(f"req_{i}", "s", "http.responses", created_at=100.0 + i,
                                     model="non_thinking", upstream_model="fake-fast",
                                     request_json=json.dumps({"input": f"q{i}"})))
    log.write_sync(TrafficRecord("req_bad", "", "http.chat.completions", created_at=200.0,
                                 status="error", http_status=413, error_type="PayloadTooLarge",
                                 request_json='{"messages": [{"ro', request_bytes=9_700_000))
    log.close()
    app = typer.Typer()
    register(app)
    run = CliRunner().invoke
    out = run(app, ["tail", "-n", "2", "--log", str(path)])
    assert out.exit_code == 0, out.output
    assert [line.split()[2] for line in out.output.splitlines()] == ["req_2", "req_bad"]
    rows = json.loads(run(app, ["tail", "--errors", "--json", "--log", str(path)]).output)
    assert [(r["request_id"], r["http_status"]) for r in rows] == [("req_bad", 413)]
    shown = json.loads(run(app, ["show", "req_1", "--json", "--log", str(path)]).output)
    assert shown["request"] == {"input": "q1"} and shown["endpoint"] == "http.responses"
    capped = run(app, ["show", "req_bad", "--log", str(path)])
    assert "request_bytes      9700000" in capped.output and '{"messages": [{"ro' in capped.output
    missing = run(app, ["show", "req_nope", "--log", str(path)])
    assert missing.exit_code == 1 and "no request 'req_nope'" in missing.output


def test_index_shows_progress_while_embedding(capsys: pytest.CaptureFixture[str]) -> None:
    from switchyard.retrieval.index import EMBED_STEP, _encode

    class Encoder:
        calls = 0

        def encode(self, texts: list[str]) -> np.ndarray:
            Encoder.calls += 1
            return np.zeros((len(texts), 4), dtype=np.float32)

    texts = [f"chunk {i}" for i in range(EMBED_STEP * 2 + 5)]
    assert _encode(Encoder(), texts, progress=True).shape == (len(texts), 4)
    assert Encoder.calls == 3
    err = capsys.readouterr().err
    assert "embed" in err and f"{len(texts)}/{len(texts)}" in err
    assert _encode(Encoder(), texts, progress=False).shape == (len(texts), 4)
    assert Encoder.calls == 4 and "embed" not in capsys.readouterr().err
