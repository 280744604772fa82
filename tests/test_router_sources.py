"""The five-source loaders, the reasoning cues, the budget head's evaluation, the training
device choice and decide/decide_batch agreement: all on tiny synthetic rows, no shared data."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from switchyard.core.messages import Message
from switchyard.router.budget import budget_targets, evaluate_budget
from switchyard.router.checkpoint import save_checkpoint
from switchyard.router.data import RouterExample, load_bbh, load_mmlu_pro, load_routerbench
from switchyard.router.decision import RouteRequest
from switchyard.router.errors import RouterDataError
from switchyard.router.eval_metrics import evaluate_scores, family_oracle_scores, spearman
from switchyard.router.learned import LearnedRouter
from switchyard.router.reasoning import REASONING, reasoning_features
from switchyard.router.train import TrainConfig, pick_device, source_weights, train

from tests.router_support import assert_same_decisions


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_mmlu_pro_pits_the_thinking_model_against_the_mean_of_the_others(tmp_path: Path) -> None:
    rows = [{"id": 1, "category": "math", "prompt": "2+2?\nA. 3\nB. 4", "answer": "B",
             "correct": {"gemini-3.1-pro": 1, "gpt-4o": 0, "llama": 1},
             "output_chars": {"gemini-3.1-pro": 400, "gpt-4o": 900, "llama": 300}},
            {"id": 2, "category": "law", "prompt": "x", "answer": "A",
             "correct": {"gemini-3.1-pro": 0, "gpt-4o": 0},
             "output_chars": {"gemini-3.1-pro": 50, "gpt-4o": 60}},
            {"id": 3, "category": "law", "prompt": "no thinking record", "answer": "A",
             "correct": {"gpt-4o": 1}, "output_chars": {"gpt-4o": 10}}]
    a, b = load_mmlu_pro(_jsonl(tmp_path / "p.jsonl", rows))  # the third has no label
    assert (a.source, a.family, a.weak, a.strong, a.hard) == ("mmlu_pro", "math", 0.5, 1.0, 0.5)
    assert a.budget_chars == 400.0  # a correct thinking answer's length
    assert b.strong == 0.0 and math.isnan(b.budget_chars)  # wrong: no budget target


def test_bbh_direct_is_weak_and_the_chain_is_strong(tmp_path: Path) -> None:
    rows = [{"task": "navigate", "idx": 0, "prompt": "p", "target": "Yes", "direct_correct": 0,
             "cot_correct": 1, "cot_chars": 777}]
    (e,) = load_bbh(_jsonl(tmp_path / "b.jsonl", rows))
    assert (e.family, e.weak, e.strong, e.hard, e.budget_chars) == ("navigate", 0, 1, 1, 777)
    bad = _jsonl(tmp_path / "bad.jsonl", [{"task": "x", "prompt": "p"}])
    with pytest.raises(RouterDataError, match="line 1"):
        load_bbh(bad)


def test_routerbench_skips_rows_without_the_strong_outcome(tmp_path: Path) -> None:
    cols = ["family", "split", "sample_id", "prompt", "gpt-4-1106-preview|correct",
            "mistralai/mistral-7b-chat|correct", "WizardLM/WizardLM-13B-V1.2|correct"]
    path = tmp_path / "rb.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        w.writerow(["mbpp", "train", "1", "Write a function", "1.0", "0.0", "1.0"])
        w.writerow(["mbpp", "train", "2", "Write another", "", "0.0", "1.0"])
    (e,) = load_routerbench(path)
    assert (e.source, e.family, e.weak, e.strong) == ("routerbench", "mbpp", 0.5, 1.0)


def test_reasoning_cues_count_quantities_and_steps() -> None:
    word_problem = ("Natalia sold clips to 48 friends in April, then half as many in May. "
                    "How many clips did she sell in total?")
    f = reasoning_features(word_problem)
    assert f["r_numbers"] > 0 and f["r_ask_compute"] > 0 and f["r_compare"] > 0
    assert f["r_sentences"] > reasoning_features("Hello there")["r_sentences"]
    code = reasoning_features("def f(x):\n    return x + 2 if x else {1: 2}")
    assert code["r_code"] > 0 and code["r_operators"] > 0
    assert reasoning_features("Let $x^2 + y = 3$; solve for y")["r_latex"] > 0
    for text in ("", "x" * 10_000, "1, 2, 3 %"):
        values = reasoning_features(text)
        assert tuple(values) == REASONING and all(np.isfinite(v) for v in values.values())


def test_family_oracle_and_spearman() -> None:
    fam = ["a", "a", "b", "b"]
    weak, strong = np.array([1, 0, 0, 0.0]), np.array([1, 1, 1, 1.0])
    assert family_oracle_scores(fam, weak, strong).tolist() == [0.5, 0.5, 1.0, 1.0]
    assert spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 1, 1], [1, 2, 3]) == 0.0
    assert evaluate_scores(family_oracle_scores(fam, weak, strong), weak, strong).apgr > 0.5


def test_source_weights_balance_sources_and_favour_thinking_pairs() -> None:
    rows = [RouterExample("t", s, "f", 0, 1, 1, 0, 1) for s in ["mmlu"] * 30 + ["bbh"] * 10]
    w = source_weights(rows, balance=True)
    assert w.mean() == pytest.approx(1.0)
    assert w[30:].sum() == pytest.approx(2 * w[:30].sum())  # bbh is a real thinking pair
    assert (source_weights(rows, balance=False) == 1).all()


def test_budget_targets_are_within_source_percentiles() -> None:
    rows = [RouterExample("t", "bbh", "f", 0, 1, 1, 0.3, 1.0, budget_chars=c)
            for c in (100, 300, 200)]
    rows.append(RouterExample("t", "mmlu", "g", 0, 1, 1, 0.7, 1.0))  # no chain: the grade
    target, weight = budget_targets(rows, fallback_weight=0.1)
    assert target[:3].argsort().tolist() == [0, 2, 1] and (weight[:3] == 1).all()
    assert target[3] == 0.7 and weight[3] == pytest.approx(0.1)


def test_budget_evaluation_rewards_a_grade_that_ranks_chain_lengths() -> None:
    rng = np.random.default_rng(0)
    chars = rng.lognormal(6, 0.8, 400)
    rows = [RouterExample("t", "bbh", f"f{i % 4}", 0, 1, 1, 0, 1, budget_chars=c)
            for i, c in enumerate(chars)]
    grades = np.argsort(np.argsort(np.log(chars) + rng.normal(0, 0.1, 400))) / 400
    out = evaluate_budget(rows[:200], grades[:200], rows[200:], grades[200:])["bbh"]
    assert out["spearman"] > 0.9
    assert out["tokens_saved"] > 0.2 and out["coverage_learned"] > 0.8
    noise = evaluate_budget(rows[:200], rng.random(200), rows[200:], rng.random(200))["bbh"]
    assert abs(noise["spearman"]) < 0.2 and noise["tokens_saved"] < out["tokens_saved"]


def test_training_device_is_cuda_when_present_else_cpu() -> None:
    assert pick_device(None, cuda_available=True) == "cuda"
    assert pick_device(None, cuda_available=False) == "cpu"
    assert pick_device("cpu", cuda_available=True) == "cpu"
    with pytest.raises(ValueError, match="CUDA is not available"):
        pick_device("cuda", cuda_available=False)


def _texts(n: int, seed: int) -> list[RouterExample]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        k = int(rng.integers(0, 6))
        hard = float(rng.random() < 0.15 + 0.12 * k)  # more quantities: harder
        text = "Tom has " + ", ".join(str(int(v)) for v in rng.integers(1, 99, k)) + \
            " apples. " + "How many in total? " * int(rng.integers(1, 3))
        out.append(RouterExample(text, "syn" if i % 2 else "bbh", f"f{i % 5}", 1 - hard, 1.0,
                                 hard, hard, 1.0, budget_chars=100.0 + 50 * k))
    return out


@pytest.mark.parametrize("hidden", [0, 8])
def test_decide_and_decide_batch_agree_to_1e_9(tmp_path: Path, hidden: int) -> None:
    rows = _texts(300, 0)
    result = train(rows, TrainConfig(hidden=hidden, epochs=2, progress=False), data_hash="syn")
    assert result.device == "cpu" and set(result.budget) <= {"bbh", "syn"}
    router = LearnedRouter.from_checkpoint(save_checkpoint(result.model, result.config,
                                                       tmp_path / "syn.pt"))
    reqs = [RouteRequest(messages=(Message(role="user", content=e.text),)) for e in rows[:40]]
    assert_same_decisions([router.decide(r) for r in reqs], router.decide_batch(reqs))
    assert_same_decisions(router.decide_batch(reqs[::-1])[::-1], router.decide_batch(reqs))
