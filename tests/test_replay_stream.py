"""Streaming a Parquet log (router/replay_data.iter_parquet): replay read in small batches
gives exactly the in-memory replay of the same log, skipped counts and training examples
included."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from switchyard.core.trafficlog.outcomes import Outcome, record_outcome
from switchyard.core.trafficlog.schema import TrafficRecord, connect
from switchyard.router.log_training import examples_from_batches, examples_from_traffic
from switchyard.router.replay import parse_policy, replay, replay_batches
from switchyard.router.replay_data import concat, iter_parquet, iter_traffic, load_log
from switchyard.server.cli.main import app
from switchyard.server.traffic.export import export_dataset
from switchyard.server.traffic.replay_requests import replay_body
from switchyard.server.traffic.writer import TrafficLog
from typer.testing import CliRunner

T0 = 1_796_083_200.0  # 2026-12-01 00:00 UTC
POLICIES = ("logged", "never", "always", "random:share=0.4", "mlp:share=0.3",
            "mlp:threshold=0.5")


def _mixed_log(path: Path, n: int = 60, seed: int = 3) -> Path:
    """Primaries over three days with shadows (some on the same arm), exploration
    propensities, several outcome sources, errors, bodiless rows and orphan shadows."""
    rng = random.Random(seed)
    log, outcomes = TrafficLog(path), []
    for i in range(n):
        when = T0 + i * 4000.0
        body = json.dumps({"messages": [{"role": "user", "content": f"q{i} {rng.random()}"}]})
        thinking = rng.random() < 0.4
        rid = f"r{i}"
        log.write_sync(TrafficRecord(
            rid, f"s{i // 5}", "test", created_at=when, thinking=thinking,
            prompt_tokens=30 + i, completion_tokens=500 if thinking else 90,
            cost_usd=0.003 if thinking else 0.0003, request_json=None if i % 17 == 5 else body,
            status="error" if i % 13 == 4 else "ok",
            propensity=0.8 if i % 3 else None, overridden=i % 11 == 0))
        outcomes.append(Outcome(rid, "verifier", score=float(rng.random() < 0.7)))
        if i % 4 == 0:
            outcomes.append(Outcome(rid, "user", label="up" if i % 8 else "down",
                                    created_at=when + 2))
        if i % 2 == 0:  # a shadow; every tenth one repeats the primary's arm
            log.write_sync(TrafficRecord(
                f"x{i}", f"s{i // 5}", "shadow", created_at=when + 1,
                thinking=thinking if i % 10 == 0 else not thinking, prompt_tokens=30 + i,
                completion_tokens=90 if thinking else 500, request_json=body,
                cost_usd=0.0003 if thinking else 0.003, shadow_of=rid, overridden=True))
            outcomes.append(Outcome(f"x{i}", "verifier", score=float(rng.random() < 0.6)))
    log.write_sync(TrafficRecord("x-orphan", "s", "shadow", created_at=T0 + 5, shadow_of="nope",
                                 request_json="{}"))
    # A Responses body the converter cannot read, with a shadow: skipped, its shadow orphaned.
    log.write_sync(TrafficRecord("bad", "s", "http.responses", created_at=T0 + 7,
                                 request_json='{"input": 7}'))
    log.write_sync(TrafficRecord("x-bad", "s", "shadow", created_at=T0 + 8, shadow_of="bad",
                                 thinking=True, request_json="{}"))
    log.close()
    db = connect(path)
    for o in outcomes:
        record_outcome(db, o)
    db.close()
    return path


@pytest.fixture
def exported(tmp_path: Path) -> tuple[Path, Path]:
    log = _mixed_log(tmp_path / "t.sqlite")
    export_dataset(log, tmp_path / "pq")
    return log, tmp_path / "pq"


@pytest.mark.parametrize("batch_rows", [1, 7, 10_000])
def test_streamed_replay_equals_the_in_memory_replay(exported: tuple[Path, Path],
                                                     batch_rows: int) -> None:
    log, pq = exported
    policies = [parse_policy(p) for p in POLICIES]
    in_memory = load_log(log, convert=replay_body)
    batches = list(iter_parquet(pq, convert=replay_body, batch_rows=batch_rows))
    assert len(batches) >= len(in_memory) / batch_rows  # (the unreadable row leaves a gap)
    assert max(len(b) for b in batches) <= batch_rows
    streamed, estimates = replay_batches(iter(batches), policies)
    assert streamed.skipped == in_memory.skipped
    assert list(streamed.skipped) == list(in_memory.skipped) == [
        "errors", "no_body", "unreadable", "orphan_shadows"]
    assert streamed.bodies == []  # only numbers are kept once a batch is scored
    assert [e.to_dict() for e in estimates] == [e.to_dict() for e in replay(in_memory, policies)]
    assert concat(batches).request_ids == in_memory.request_ids
    assert np.array_equal(concat(batches).quality, in_memory.quality, equal_nan=True)


def test_training_examples_stream_too(exported: tuple[Path, Path]) -> None:
    log, pq = exported
    whole = examples_from_traffic(load_log(log, convert=replay_body))
    assert examples_from_batches(iter_traffic(pq, convert=replay_body, batch_rows=4)) == whole
    assert len(whole[0]) > 10 and whole[1]["unpaired"] > 0


def test_cli_replay_of_a_parquet_dir_matches_the_log(exported: tuple[Path, Path]) -> None:
    log, pq = exported
    args = ["replay", "--json", "--no-progress", "--limit", "25", "-p", "logged", "-p",
            "mlp:share=0.5"]
    from_log = CliRunner().invoke(app, [*args, "--log", str(log)])
    from_pq = CliRunner().invoke(app, [*args, "--parquet", str(pq)])
    assert from_log.exit_code == 0 and from_pq.exit_code == 0, from_pq.output
    a, b = json.loads(from_log.output), json.loads(from_pq.output)
    assert a["estimates"] == b["estimates"] and b["estimates"][0]["n_requests"] == 25
    assert b["notes"][0] == "source: parquet, 25 requests replayed"
