"""Retraining from logged paired outcomes (router/log_training.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from switchyard.core.trafficlog.outcomes import Outcome, record_outcome
from switchyard.core.trafficlog.schema import TrafficRecord, connect
from switchyard.router.errors import RouterDataError
from switchyard.router.log_training import examples_from_traffic, retrain_from_log
from switchyard.router.replay_data import load_log
from switchyard.router.train import TrainConfig
from switchyard.server.traffic.writer import TrafficLog

EASY = ["What is the capital of {}?", "Translate 'hello' into {}.", "Say hi to {}."]
HARD = ["Prove that there are infinitely many primes of the form 4k+3, case {}.",
        "Solve the recurrence T(n) = 3T(n/4) + n log n and bound case {} exactly.",
        "Find all integer solutions of x^3 + y^3 = z^3 + {} and prove none are missed."]
NAMES = ["France", "Peru", "Kenya", "Japan", "Chile", "Norway", "Egypt", "Fiji",
         "Spain", "Ghana", "Laos", "Oman"]


def _log(path: Path, n_pairs: int, *, shadows: bool = True) -> None:
    """n_pairs requests served by the cheap model, each with a thinking shadow and
    verifier outcomes: the cheap model fails exactly on the hard prompts."""
    log = TrafficLog(path)
    outcomes = []
    for i in range(n_pairs):
        hard = i % 2 == 1
        text = (HARD if hard else EASY)[i % 3].format(NAMES[i % len(NAMES)] + str(i))
        body = json.dumps({"model": "switchyard/auto",
                           "messages": [{"role": "user", "content": text}]})
        rid = f"r{i}"
        log.write_sync(TrafficRecord(rid, f"s{i}", "test", thinking=False, request_json=body))
        outcomes.append(Outcome(rid, "verifier", score=0.0 if hard else 1.0))
        if shadows:
            log.write_sync(TrafficRecord(f"{rid}-shadow", f"s{i}", "test", thinking=True,
                                         request_json=body, shadow_of=rid))
            outcomes.append(Outcome(f"{rid}-shadow", "verifier", score=1.0))
    log.close()
    db = connect(path)
    for outcome in outcomes:
        record_outcome(db, outcome)
    db.close()


def test_only_paired_requests_become_examples(tmp_path: Path) -> None:
    _log(tmp_path / "t.sqlite", 6)
    examples, skipped = examples_from_traffic(load_log(tmp_path / "t.sqlite"))
    assert len(examples) == 6 and not skipped
    assert [e.hard for e in examples] == [0.0, 1.0] * 3
    assert all(e.source == "log" and e.family.startswith("s") for e in examples)


def test_retrain_compares_with_the_current_checkpoint_on_the_same_rows(tmp_path: Path) -> None:
    _log(tmp_path / "t.sqlite", 60)
    out = retrain_from_log(tmp_path / "t.sqlite", TrainConfig(seed=0, progress=False),
                           with_datasets=False)
    assert out.paired == 60
    new, current = out.result.validation["log"]["mlp"], out.current["log"]["mlp"]
    assert new["families"] == current["families"]  # the same held-out sessions
    assert 0.0 <= current["apgr"] <= 1.0 and new["apgr"] > 0.5


def test_a_log_without_pairs_is_refused_with_the_fix(tmp_path: Path) -> None:
    _log(tmp_path / "t.sqlite", 30, shadows=False)
    with pytest.raises(RouterDataError, match="shadow_share"):
        retrain_from_log(tmp_path / "t.sqlite", TrainConfig(progress=False), with_datasets=False)


def test_cli_from_log_writes_only_when_asked(tmp_path: Path) -> None:
    import typer
    from switchyard.server.cli.router import register
    from typer.testing import CliRunner

    app = typer.Typer()
    register(app)
    _log(tmp_path / "t.sqlite", 40)
    out = tmp_path / "new.safetensors"
    # The shipped data sets are mixed in by default; a handful of rows keeps this fast.
    args = ["train-router", "--from-log", str(tmp_path / "t.sqlite"), "--output", str(out),
            "--limit", "0"]
    result = CliRunner().invoke(app, args + ["--data-dir", str(tmp_path / "none")])
    assert result.exit_code != 0  # no data sets there: a clear error, not a silent success
    assert "not found" in str(result.exception or result.output)
    assert not out.exists()

    shown = CliRunner().invoke(app, args + ["--log-only"])
    assert shown.exit_code == 0, shown.output
    assert "current checkpoint, same held-out rows" in shown.output
    assert "not written" in shown.output and not out.exists()
    written = CliRunner().invoke(app, args + ["--log-only", "--write"])
    assert written.exit_code == 0, written.output
    assert out.exists() and out.with_suffix(".json").exists()
