"""Replay estimators: hand-computed values on a small log, IPW unbiasedness on synthetic
logs with known propensities, policy parsing, and clear errors for bad inputs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from switchyard.core.db import NewerSchemaError
from switchyard.core.trafficlog.outcomes import Outcome, record_outcome
from switchyard.core.trafficlog.schema import TrafficRecord, connect
from switchyard.router.errors import RouterDataError, RoutingError
from switchyard.router.replay import Policy, choose, estimate, parse_policy
from switchyard.router.replay_data import Traffic, load_log, load_parquet, write_outcomes_parquet
from switchyard.server.traffic.export import export_parquet
from switchyard.server.traffic.writer import TrafficLog

BODY = '{"messages": [{"role": "user", "content": "q"}]}'


def _traffic(quality, logged, propensity, tokens=None, cost=None, overridden=None) -> Traffic:
    q = np.array(quality, dtype=float)
    n = len(q)
    return Traffic(
        request_ids=[f"r{i}" for i in range(n)], sessions=["s"] * n, bodies=[BODY] * n,
        texts=[""] * n, logged=np.array(logged), propensity=np.array(propensity, dtype=float),
        overridden=np.zeros(n, bool) if overridden is None else np.array(overridden),
        quality=q, tokens=np.array(tokens if tokens is not None else np.ones((n, 2))),
        cost=np.array(cost if cost is not None else np.ones((n, 2))), source="test")


def test_direct_and_ipw_match_hand_computed_values() -> None:
    nan = np.nan
    t = _traffic(
        quality=[[0, 1], [1, 1], [1, nan], [nan, 0], [nan, 1]],
        logged=[0, 1, 0, 1, 1], propensity=[nan, nan, 0.8, 0.25, 0.5],
        tokens=[[10, 100], [20, 200], [30, 300], [40, 400], [50, 500]])
    arm = np.array([1, 0, 0, 1, 0])
    e = estimate(t, arm, "hand")
    # Direct on rows 0-1: quality (1 + 1) / 2; tokens (100 + 20) / 2.
    assert e.n_direct == 2 and e.quality_direct == pytest.approx(1.0)
    # IPW on rows 2-4: arm matches logged on rows 2 (r=1, p=.8) and 3 (r=0, p=.25).
    assert e.n_ipw == 3 and e.n_ipw_matched == 2
    assert e.quality_ipw == pytest.approx((1 / 0.8 + 0 / 0.25 + 0) / 3)
    assert e.quality == pytest.approx((2 * 1.0 + 3 * (1.25 / 3)) / 5)
    tokens_ipw = (30 / 0.8 + 400 / 0.25 + 0) / 3
    assert e.tokens == pytest.approx((2 * 60 + 3 * tokens_ipw) / 5)
    assert e.method == "direct+ipw" and e.thinking_share == pytest.approx(0.4)


def test_ipw_is_unbiased_with_known_propensities() -> None:
    """Log with an epsilon-greedy policy; estimate a different policy's mean quality."""
    n, eps = 400, 0.3
    truth_rng = np.random.default_rng(123)
    x = truth_rng.random(n)
    p_success = np.stack([0.9 - 0.8 * x, 0.6 + 0.3 * x], axis=1)  # fast fails on hard x
    target = (x > 0.6).astype(int)  # candidate policy: thinking on the hard 40%
    truth = p_success[np.arange(n), target].mean()
    estimates = []
    for seed in range(300):
        rng = np.random.default_rng(seed)
        greedy = (x > 0.3).astype(int)  # the logging policy's own choice
        explore = rng.random(n) < eps
        logged = np.where(explore, rng.integers(0, 2, n), greedy)
        prop = (1 - eps) * (logged == greedy) + eps / 2
        reward = (rng.random(n) < p_success[np.arange(n), logged]).astype(float)
        q = np.full((n, 2), np.nan)
        q[np.arange(n), logged] = reward
        estimates.append(estimate(_traffic(q, logged, prop), target).quality)
    mean, sem = np.mean(estimates), np.std(estimates) / np.sqrt(len(estimates))
    assert abs(mean - truth) < 4 * sem + 1e-3, (mean, truth, sem)
    assert sem < 0.01  # 300 logs pin the mean to within about 0.02


def test_choose_keeps_overridden_requests_on_their_logged_arm() -> None:
    t = _traffic([[1, 1]] * 4, [1, 1, 0, 0], [np.nan] * 4, overridden=[True, False, True, False])
    assert choose(Policy("never"), t, None).tolist() == [1, 0, 0, 0]
    assert choose(Policy("always"), t, None).tolist() == [1, 1, 0, 1]
    scores = np.array([0.1, 0.9, 0.8, 0.2])
    assert choose(Policy("mlp", thinking_share=0.5), t, scores).tolist() == [1, 1, 0, 0]
    assert choose(Policy("mlp", threshold=0.15), t, scores).tolist() == [1, 1, 0, 1]


def test_parse_policy() -> None:
    p = parse_policy("mlp@ckpt/x.pt:share=0.3")
    assert (p.router, p.checkpoint, p.thinking_share) == ("mlp", Path("ckpt/x.pt"), 0.3)
    assert parse_policy("mlp:threshold=0.6").threshold == 0.6
    for bad, fragment in (("bert", "valid routers"), ("mlp:share=2", r"in \[0, 1\]"),
                          ("mlp:temp=1", "unknown parameter"), ("mlp:share=x", "number")):
        with pytest.raises(RoutingError, match=fragment):
            parse_policy(bad)


def _small_log(path: Path) -> None:
    log = TrafficLog(path)
    rows = [TrafficRecord("a", "s1", "t", thinking=False, prompt_tokens=10, completion_tokens=5,
                          cost_usd=0.1, request_json=BODY, propensity=0.9),
            TrafficRecord("b", "s1", "t", thinking=True, prompt_tokens=10, completion_tokens=50,
                          cost_usd=1.0, request_json=BODY),
            TrafficRecord("b-shadow", "s1", "shadow", thinking=False, prompt_tokens=10,
                          completion_tokens=6, cost_usd=0.2, request_json=BODY, shadow_of="b",
                          overridden=True),
            TrafficRecord("c", "s2", "t", status="error", request_json=BODY)]
    for r in rows:
        log.write_sync(r)
    log.close()
    db = connect(path)
    for rid, source, score in (("a", "verifier", 1.0), ("a", "user", 0.0), ("b", "user", 1.0),
                               ("b-shadow", "judge", 0.0)):
        record_outcome(db, Outcome(rid, source, score=score))  # type: ignore[arg-type]
    db.close()


def test_log_loading_pairs_shadows_and_weights_sources(tmp_path: Path) -> None:
    _small_log(tmp_path / "t.sqlite")
    t = load_log(tmp_path / "t.sqlite")
    assert t.request_ids == ["a", "b"] and t.skipped == {"errors": 1}
    # a: verifier 1.0 (weight 1) and user 0.0 (weight .3) -> 1 / 1.3.
    assert t.quality[0, 0] == pytest.approx(1 / 1.3) and np.isnan(t.quality[0, 1])
    assert t.quality[1].tolist() == [0.0, 1.0]  # shadow's judge outcome is arm 0
    assert t.tokens[1].tolist() == [16.0, 60.0] and t.cost[1].tolist() == [0.2, 1.0]
    assert t.propensity[0] == pytest.approx(0.9)


def test_parquet_round_trip_and_malformed_file(tmp_path: Path) -> None:
    _small_log(tmp_path / "t.sqlite")
    export_parquet(tmp_path / "t.sqlite", tmp_path / "req.parquet")
    write_outcomes_parquet(connect(tmp_path / "t.sqlite"), tmp_path / "out.parquet")
    t = load_parquet(tmp_path / "req.parquet", tmp_path / "out.parquet")
    assert t.request_ids == ["a", "b"] and t.quality[1].tolist() == [0.0, 1.0]
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(RouterDataError, match="cannot read .*bad.parquet as Parquet"):
        load_parquet(tmp_path / "bad.parquet")
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"request_id": ["x"]}), tmp_path / "other.parquet")
    with pytest.raises(RouterDataError, match="missing columns session_id"):
        load_parquet(tmp_path / "other.parquet")


def test_newer_schema_log_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite"
    connect(path).execute("INSERT INTO _switchyard_migrations VALUES ('m003_future', 0)")
    with pytest.raises(NewerSchemaError, match="m003_future"):
        load_log(path)
    with pytest.raises(RouterDataError, match="no traffic log"):
        load_log(tmp_path / "missing.sqlite")


def test_migrating_an_m001_log_with_rows(tmp_path: Path) -> None:
    from switchyard.core.trafficlog.schema import SCHEMA

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE _switchyard_migrations (name TEXT PRIMARY KEY, applied_at REAL)")
    SCHEMA.migrations[0](db)
    db.execute("INSERT INTO _switchyard_migrations VALUES ('m001_initial', 0)")
    db.execute("INSERT INTO requests VALUES ('old', 's', 't', 0, 0, NULL, '', '', '', 0, NULL, "
               "NULL, NULL, '', '', 0, 0, 'ok', 200, NULL, 1, 2, 0, 0, 0.5, 1, 0, 0, 0, 0, 1, 0, "
               "'{}', '[]', ?)", (BODY,))
    db.commit()
    db.close()
    t = load_log(path)
    assert t.request_ids == ["old"] and np.isnan(t.propensity[0]) and not t.overridden[0]
