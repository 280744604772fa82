"""Loaders on the real trajectory files, labels, a short training run, the bundled checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
from switchyard.compaction.errors import CheckpointError, TrajectoryFormatError
from switchyard.compaction.features import FEATURE_VERSION, N_FEATURES
from switchyard.compaction.scorer import CHECKPOINT_VERSION, DEFAULT_CHECKPOINT, Scorer
from switchyard.compaction.train import TrainConfig, auc, examples, fit
from switchyard.compaction.trajectories import default_root, is_held_out, load_all, load_swe_agent
from switchyard.core.messages import validate_tool_pairing

from tests.data import TRAJECTORIES


@pytest.fixture(scope="module")
def trajs():
    return load_all(TRAJECTORIES)


def check_loaded(trajs, tau_bench: int, swe_agent: int) -> None:
    sources = {t.source for t in trajs}
    assert sources == {"swe-agent", "tau-bench"}
    assert sum(t.source == "tau-bench" for t in trajs) == tau_bench
    assert sum(t.source == "swe-agent" for t in trajs) == swe_agent
    native = [t for t in trajs if t.source == "swe-agent" and any(m.tool_calls for m in t.messages)]
    assert native  # some SWE-agent files use native tool calls
    for t in trajs:
        validate_tool_pairing(t.messages)
        assert t.messages[0].role == "system"
    assert 0 < sum(is_held_out(t) for t in trajs) < len(trajs)


def test_loaders_read_both_formats(trajs) -> None:
    check_loaded(trajs, tau_bench=18, swe_agent=9)


@pytest.mark.skipif(not default_root().is_dir(), reason=(
    f"needs the full trajectory sets, not at {default_root()}: set SWITCHYARD_TRAJECTORIES "
    "to shared/data/trajectories (see README, Test it)"))
def test_loaders_read_the_full_sets() -> None:
    check_loaded(load_all(), tau_bench=200, swe_agent=22)


def test_bad_trajectory_file(tmp_path) -> None:
    bad = tmp_path / "x.traj"
    bad.write_text(json.dumps({"history": [{"role": "tool", "content": "x"}]}))
    with pytest.raises(TrajectoryFormatError, match="x.traj"):
        load_swe_agent(bad)
    with pytest.raises(TrajectoryFormatError, match="SWITCHYARD_TRAJECTORIES"):
        load_all(tmp_path / "missing")


def test_labels_and_short_training_learn_something(trajs, tmp_path) -> None:
    train = [t for t in trajs if t.source == "tau-bench"][:12]
    val = [t for t in trajs if t.source == "tau-bench"][-6:]
    x, y = examples(train, horizon=3)
    xv, yv = examples(val, horizon=3)
    assert x.shape[1] == N_FEATURES and 0.005 < y.mean() < 0.5  # terms the next steps use
    model = fit(x, y, TrainConfig(epochs=5), progress=False)
    scorer = Scorer.from_model(model, {"version": CHECKPOINT_VERSION, "feature_version": FEATURE_VERSION,
                            "input_dim": N_FEATURES, "hidden": 32})
    assert auc(scorer.predict(xv), yv) > 0.6
    scorer.save(tmp_path / "s.json")
    again = Scorer.load(tmp_path / "s.json")
    np.testing.assert_allclose(again.predict(xv[:20]), scorer.predict(xv[:20]), rtol=1e-6)


def test_bundled_checkpoint_has_metadata() -> None:
    scorer = Scorer.load()
    meta = json.loads(DEFAULT_CHECKPOINT.read_text())
    assert meta["data_hash"] and meta["metrics"]["val_auc"] > 0.7
    assert scorer.predict(np.zeros((3, N_FEATURES), np.float32)).shape == (3,)


def test_missing_checkpoint_says_how_to_fix(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="train-compactor"):
        Scorer.load(tmp_path / "none.json")
