"""Replay against a log the real pipeline wrote: HTTP traffic through the proxy to the fake
upstream, with exploration, shadow calls and a verifier on, and user feedback posted through
POST /v1/feedback; then `switchyard replay` reads it back."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
import typer
from switchyard.server.cli.replay import register
from typer.testing import CliRunner

from tests.data import ROUTER_DATA

SETTINGS = {
    "compaction.enabled": False,
    "outcomes.exploration_share": 0.5,
    "outcomes.shadow_share": 1.0,
    "outcomes.max_concurrency": 64,
    "outcomes.seed": 7,
    "outcomes.verifiers": [{"name": "echo", "kind": "regex", "pattern": "^You said"}],
}


def _wait(db_path: Path, sql: str, want: int, seconds: float = 20.0) -> int:
    deadline = time.monotonic() + seconds
    got = -1
    while time.monotonic() < deadline:
        got = sqlite3.connect(db_path).execute(sql).fetchone()[0]
        if got >= want:
            return got
        time.sleep(0.05)
    return got


def _cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    app.command("noop", hidden=True)(lambda: None)  # keep `replay` a subcommand
    return app


@pytest.mark.timeout(90)
def test_replay_of_a_live_log(proxy_factory) -> None:
    proxy = proxy_factory(**SETTINGS)
    log = proxy.config.server.traffic_log_path
    served = []
    for i in range(6):
        r = httpx.post(f"{proxy.base_url}/chat/completions", timeout=10, json={
            "model": "switchyard/auto", "messages": [{"role": "user", "content": f"q {i}"}]})
        assert r.status_code == 200
        served.append((r.headers["x-request-id"], r.headers["x-switchyard-thinking"] == "true"))
    feedback = httpx.post(f"{proxy.base_url}/feedback", timeout=5, json={
        "request_id": served[0][0], "score": 0.0, "source": "user"})
    assert feedback.status_code == 200
    assert _wait(log, "SELECT count(*) FROM requests WHERE shadow_of IS NOT NULL", 6) == 6
    assert _wait(log, "SELECT count(*) FROM outcomes WHERE source = 'verifier'", 12) == 12

    db = sqlite3.connect(log)
    rows = db.execute("SELECT thinking, propensity, explored FROM requests "
                      "WHERE shadow_of IS NULL").fetchall()
    # Routing off picks non_thinking; epsilon 0.5 over 2 groups: 0.75 kept, 0.25 switched.
    assert {(bool(t), p) for t, p, _ in rows} <= {(False, 0.75), (True, 0.25)}
    pairs = db.execute("SELECT r.thinking, s.thinking FROM requests r JOIN requests s "
                       "ON s.shadow_of = r.request_id").fetchall()
    assert len(pairs) == 6 and all(a != b for a, b in pairs)

    result = CliRunner().invoke(_cli(), ["replay", "--log", str(log), "--json",
                                         "--no-progress", "-p", "never", "-p", "always",
                                         "-p", "logged"])
    assert result.exit_code == 0, result.output
    by_name = {e["policy"]: e for e in json.loads(result.output)["estimates"]}
    first_arm = int(served[0][1])
    low = 1 / 1.3  # verifier 1.0 (weight 1) with user 0.0 (weight 0.3) on request 0
    for name, arm in (("never", 0), ("always", 1)):
        e = by_name[name]
        assert (e["n_direct"], e["n_ipw"], e["method"]) == (6, 0, "direct")
        assert e["quality"] == pytest.approx((5 + (low if arm == first_arm else 1)) / 6)
    assert by_name["logged"]["quality"] == pytest.approx((5 + low) / 6)
    assert by_name["always"]["tokens"] > by_name["never"]["tokens"]  # reasoning tokens


def test_replay_cli_dataset_html_and_errors(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = CliRunner().invoke(_cli(), [
        "replay", "--dataset", "mmlu", "--data-dir", str(ROUTER_DATA), "--limit", "120",
        "--no-progress", "--html", str(out),
        "-p", "never", "-p", "always", "-p", "mlp:share=0.5"])
    assert result.exit_code == 0, result.output
    assert "mlp:share=0.5" in result.output and "direct (120 / 0" in result.output
    page = out.read_text()
    assert page.count("data:image/png;base64,") == 3 and "<table>" in page
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"nope")
    from switchyard.router.errors import RouterDataError

    result = CliRunner().invoke(_cli(), ["replay", "--parquet", str(bad), "-p", "never"])
    assert isinstance(result.exception, RouterDataError)
    assert "as Parquet" in str(result.exception)
