"""The learned router end to end on CPU: tiny training, checkpoint round trip, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import typer
from switchyard.core.messages import Message
from switchyard.router import RouteRequest, load_router
from switchyard.router.checkpoint import DEFAULT_CHECKPOINT, load_checkpoint, save_checkpoint
from switchyard.router.data import RouterExample, load_dcrouter, load_mmlu, split_families
from switchyard.router.features import (
    WITH_REASONING,
    FeatureSpec,
    featurize,
    structural_features,
)
from switchyard.router.learned import LearnedRouter
from switchyard.router.train import TrainConfig, train
from switchyard.server.cli.router import register
from typer.testing import CliRunner

from tests.data import ROUTER_DATA as DATA
from tests.router_support import assert_same_decisions


def torch_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _tiny(n: int = 300) -> list[RouterExample]:
    rng = np.random.default_rng(0)
    rows = load_mmlu(DATA / "routellm_mmlu.csv") + load_dcrouter(DATA / "dcrouter_train.jsonl")
    return [rows[i] for i in sorted(rng.choice(len(rows), n, replace=False))]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    result = train(_tiny(), TrainConfig(epochs=5, progress=False), data_hash="tiny")
    path = save_checkpoint(result.model, result.config,
                           tmp_path_factory.mktemp("ckpt") / "tiny.safetensors")
    return path


def test_structural_features_see_tools_code_and_format() -> None:
    req = RouteRequest(
        messages=(Message(role="system", content="Be brief."),
                  Message(role="user", content="```py\nx = 1\n```\nReturn JSON: $x^2$?")),
        response_format="json_object",
    )
    f = structural_features(req)
    assert f["code_blocks"] == 1.0 and f["json_requested"] == 1.0 and f["has_system"] == 1.0
    assert f["math_marks"] > 0 and f["questions"] > 0
    x = featurize([req], FeatureSpec())
    assert x.shape == (1, len(WITH_REASONING)) and np.isfinite(x).all()  # default: no encoder
    static = featurize([req], FeatureSpec(encoder="minilm-static"))
    assert static.shape == (1, 384 + len(WITH_REASONING))
    assert abs(np.linalg.norm(static[0, :384]) - 1) < 1e-4


def test_leave_families_out_split_is_disjoint() -> None:
    rows = _tiny(800)
    tr, va = split_families(rows, 0.2, seed=0)
    fam_tr = {(rows[i].source, rows[i].family) for i in tr}
    fam_va = {(rows[i].source, rows[i].family) for i in va}
    assert fam_tr.isdisjoint(fam_va) and fam_va and len(tr) + len(va) == len(rows)


def test_tiny_training_run_saves_a_loadable_checkpoint(trained: Path) -> None:
    model, config = load_checkpoint(trained)
    assert config.training["data_hash"] == "tiny" and config.weights_sha256
    for source in ("mmlu", "dcrouter"):
        m = config.validation[source]["mlp"]
        assert 0 <= m["cpt50"] <= 100 and np.isfinite(m["apgr"])
    assert model.predict(np.zeros((2, config.features.dim)))[0].shape == (2,)


def test_training_is_reproducible() -> None:
    rows = _tiny(200)
    cfg = TrainConfig(epochs=3, progress=False, seed=7)
    a, b = (train(rows, cfg, data_hash="x") for _ in range(2))
    for (ka, va), (kb, vb) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert ka == kb and np.array_equal(va.numpy(), vb.numpy())


def test_decisions_are_deterministic_for_a_fixed_checkpoint(trained: Path) -> None:
    reqs = [RouteRequest(messages=(Message(role="user", content=t),))
            for t in ("hi", "Prove that there are infinitely many primes.", "Sort [3,1,2]")]
    r1 = LearnedRouter.from_checkpoint(trained)
    r2 = LearnedRouter.from_checkpoint(trained)
    one = [r1.decide(r) for r in reqs]
    batch = r1.decide_batch(reqs)
    assert batch == r2.decide_batch(reqs)  # one checkpoint, one batch: bit-identical
    assert_same_decisions(one, batch)
    assert all(d.policy_version == r1.config.policy_version for d in one)


def test_thinking_share_moves_the_threshold(trained: Path) -> None:
    low = LearnedRouter.from_checkpoint(trained, thinking_share=0.1)
    high = LearnedRouter.from_checkpoint(trained, thinking_share=0.9)
    assert low.threshold > high.threshold


def test_bundled_checkpoint_loads_with_metrics() -> None:
    r = load_router("mlp")
    assert isinstance(r, LearnedRouter), "the bundled checkpoint must load"
    cfg = r.config
    assert cfg.training["data_hash"] and "apgr" in cfg.validation["mmlu"]["mlp"]
    assert cfg.version == 3 and cfg.features.encoder == "none"
    crossval = cfg.training["left_out_crossval"]  # several left-out splits, not one
    assert len(crossval["seeds"]) >= 5 and "std" in crossval["all"]["mlp"]["apgr"]
    for source in ("mmlu", "dcrouter", "mmlu_pro", "bbh", "routerbench", "all"):
        assert "family_oracle" in crossval[source]
    assert set(crossval["budget"]) == {"bbh", "mmlu_pro"}
    assert DEFAULT_CHECKPOINT.stat().st_size < 5_000_000


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def test_cli_route_prints_one_json_line_per_request(tmp_path: Path) -> None:
    bodies = [{"model": "x", "messages": [{"role": "user", "content": "hello"}]},
              {"model": "x", "messages": [{"role": "user", "content": "Integrate x^2 sin x"}],
               "tools": [{"type": "function", "function": {"name": "calc"}}]}]
    path = tmp_path / "requests.jsonl"
    path.write_text("\n".join(json.dumps(b) for b in bodies) + "\n")
    result = CliRunner().invoke(_app(), ["route", "--input", str(path),
                                         "--thinking-share", "0.5"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.strip().splitlines()]
    assert len(lines) == 2
    for d in lines:
        assert set(d) == {"model", "thinking", "p_hard", "reasoning_effort", "budget_tokens",
                          "policy_version"}
        assert (d["reasoning_effort"] is not None) == d["thinking"]


@pytest.mark.parametrize(("line", "fragment"), [
    ('{"messages": [{"role": "wizard", "content": "x"}]}', "line 2: messages[0].role"),
    ("[1, 2]", "line 2: a chat request body must be a JSON object"),
    ("not json", "line 2: not JSON"),
])
def test_cli_route_names_the_bad_line(tmp_path: Path, line: str, fragment: str) -> None:
    path = tmp_path / "requests.jsonl"
    path.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n' + line + "\n")
    result = CliRunner().invoke(_app(), ["route", "--input", str(path)])
    assert result.exit_code == 2
    assert fragment in " ".join(result.output.replace("│", " ").split())


def test_cli_train_router_prints_metrics(tmp_path: Path) -> None:
    out = tmp_path / "r.safetensors"
    result = CliRunner().invoke(_app(), ["train-router", "--epochs", "2", "--limit", "150",
                                         "--output", str(out), "--data-dir", str(DATA)])
    assert result.exit_code == 0, result.output
    assert "APGR" in result.output and "prompt_length" in result.output
    assert "CPT(50%)" in result.output and out.is_file() and out.with_suffix(".json").is_file()
    assert "family_oracle" in result.output and "all  [held out" in result.output
    assert "Spearman" in result.output and "over 5 splits" in result.output


def test_training_with_cues_round_trips_its_feature_names(tmp_path: Path) -> None:
    from switchyard.router.features import WITH_CUES

    spec = FeatureSpec(structural=WITH_CUES)
    result = train(_tiny(), TrainConfig(progress=False, features=spec), data_hash="tiny")
    path = save_checkpoint(result.model, result.config, tmp_path / "cues.safetensors")
    router = LearnedRouter.from_checkpoint(path)
    assert router.spec.structural == WITH_CUES
    req = RouteRequest(messages=(Message(role="user", content="Write a function to add."),))
    assert_same_decisions([router.decide(req)], router.decide_batch([req]))
    assert FeatureSpec().structural != WITH_CUES  # the default stays the measured winner


def _rejected(tmp_path: Path, *args: str) -> str:
    result = CliRunner().invoke(_app(), ["train-router", "--data-dir", str(tmp_path), *args])
    assert result.exit_code == 2
    return " ".join(result.output.replace("│", " ").split())


def test_cli_train_router_rejects_an_unknown_encoder_in_one_line(tmp_path: Path) -> None:
    assert "unknown encoder mode 'bogus'" in _rejected(tmp_path, "--encoder", "bogus")


@pytest.mark.skipif(torch_cuda(), reason="CUDA present: the device is valid here")
def test_cli_train_router_rejects_cuda_without_a_gpu_in_one_line(tmp_path: Path) -> None:
    assert "CUDA is not available" in _rejected(tmp_path, "--device", "cuda")
