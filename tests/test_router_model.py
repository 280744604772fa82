"""The router model on synthetic features: ridge fit, Platt link, numpy serving, MLP, cross-val."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from switchyard.router.crossval import cross_validate
from switchyard.router.data import RouterExample
from switchyard.router.eval_metrics import evaluate_scores
from switchyard.router.features import EMBED_DIM, STRUCTURAL, FeatureSpec, embed
from switchyard.router.model import NumpyModel
from switchyard.router.train import TrainConfig, fit, train

N_STRUCT = len(STRUCTURAL)
# The synthetic rows carry a MiniLM-sized embedding block, as the static encoder gives.
SPEC = FeatureSpec(encoder="minilm-static", structural=STRUCTURAL)


def _synthetic(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features whose first structural column drives hardness (plus noise)."""
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(n, EMBED_DIM)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    struct = rng.normal(size=(n, N_STRUCT)).astype(np.float32) * 3 + 5
    p = 1 / (1 + np.exp(-(struct[:, 0] - 5)))
    hard = (rng.random(n) < p).astype(np.float32)
    return np.concatenate([emb, struct], axis=1), hard, p.astype(np.float32)


@pytest.mark.parametrize("hidden", [0, 16])
def test_numpy_serving_matches_torch(hidden: int) -> None:
    x, hard, grade = _synthetic()
    cfg = TrainConfig(hidden=hidden, epochs=3, progress=False, device="cpu", features=SPEC)
    model, rate, device = fit(x, hard, grade, np.ones_like(grade), cfg)
    assert device == "cpu" and rate > 0
    p_t, g_t = model.predict(torch.from_numpy(x))
    p_n, g_n = NumpyModel(model.state_dict(), EMBED_DIM, hidden).predict(x)
    np.testing.assert_allclose(p_n, p_t.numpy(), atol=1e-5)
    np.testing.assert_allclose(g_n, g_t.numpy(), atol=1e-5)
    assert ((0 <= p_n) & (p_n <= 1) & (0 <= g_n) & (g_n <= 1)).all()


def test_ridge_learns_the_signal_and_platt_keeps_the_ranking() -> None:
    x, hard, grade = _synthetic(2000)
    model, _, _ = fit(x, hard, grade, np.ones_like(grade),
                      TrainConfig(progress=False, features=SPEC))
    assert float(model.hard_scale) > 0  # monotone link: the head's ranking is kept
    xt, ht, _ = _synthetic(1000, seed=1)
    p, _ = NumpyModel(model.state_dict(), EMBED_DIM, 0).predict(xt)
    # Calibrated: mean p_hard near the base rate; ranking: clearly better than chance.
    assert abs(p.mean() - ht.mean()) < 0.05
    weak, strong = 1 - ht, np.ones_like(ht)  # strong always right, weak wrong when hard
    assert evaluate_scores(p, weak, strong).apgr > 0.65


def test_ridge_fit_is_deterministic() -> None:
    x, hard, grade = _synthetic()
    a, b = (fit(x, hard, grade, np.ones_like(grade), TrainConfig(progress=False, features=SPEC))[0]
            for _ in range(2))
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


def test_static_encoder_rows_are_unit_and_cached() -> None:
    spec = SPEC
    texts = ["Prove that sqrt(2) is irrational.", "hi", ""]
    first = embed(texts, spec)
    assert np.allclose(np.linalg.norm(first[:2], axis=1), 1, atol=1e-5)
    assert not first[2].any()  # no tokens: a zero row, never NaN
    assert np.array_equal(first, embed(texts, spec))
    assert np.array_equal(embed(texts[:1], spec)[0], first[0])


def test_cross_validate_reports_mean_and_spread_per_router() -> None:
    x, hard, _ = _synthetic(400)
    rng = np.random.default_rng(0)
    examples = [RouterExample(text="q" * int(5 + 50 * rng.random()), source=src,
                              family=f"f{i % 5}", weak=1 - h, strong=1.0, hard=h, grade=h,
                              grade_weight=1.0)
                for i, (h, src) in enumerate(zip(hard, ["a", "b"] * 200))]
    cv = cross_validate(examples, TrainConfig(features=SPEC), x, seeds=(0, 1))
    assert set(cv.routing) == {"a", "b", "all"} and cv.seeds == [0, 1]
    for routers in cv.routing.values():
        assert set(routers) == {"mlp", "random", "prompt_length", "family_oracle"}
        m = routers["mlp"]["apgr"]
        assert len(m["runs"]) == 2 and m["std"] >= 0
        assert m["mean"] > routers["random"]["apgr"]["mean"]


def test_tiny_train_on_synthetic_rows_records_its_shape() -> None:
    x, hard, _ = _synthetic(300)
    examples = [RouterExample(text="t", source="s", family=f"f{i % 4}", weak=1 - h,
                              strong=1.0, hard=h, grade=h, grade_weight=1.0)
                for i, h in enumerate(hard)]
    result = train(examples, TrainConfig(progress=False, features=SPEC), data_hash="syn",
                   features=x)
    assert result.config.model["hidden"] == 0
    assert result.config.training["config"]["ridge_alpha"] == 100.0


def test_lexical_cues_name_the_task_kind() -> None:
    from switchyard.router.cues import LEXICAL, lexical_cues

    code = lexical_cues('Write a function to sum a list.\n>>> f([1, 2])\n3')
    assert code["cue_write_code"] == 1.0 and code["cue_doctest"] == 1.0
    assert code["cue_code_words"] > 0 and code["cue_math_words"] > 0
    mc = lexical_cues("Which gas is inert?\nA. O2\nB. N2\nC. Ar\nD. H2\nAnswer:")
    assert mc["cue_options"] > lexical_cues("Which gas is inert?")["cue_options"]
    assert mc["cue_answer_suffix"] == 1.0 and mc["cue_wh_start"] == 1.0
    assert lexical_cues("dog, frisbee, catch, throw, park")["cue_word_list"] == 1.0
    for text in ("", "x" * 10_000, "how many more than half?"):
        values = lexical_cues(text)
        assert tuple(values) == LEXICAL and all(np.isfinite(v) for v in values.values())


def test_feature_spec_rejects_unknown_structural_names() -> None:
    from switchyard.router.errors import RoutingError
    from switchyard.router.features import WITH_CUES

    assert SPEC.dim == EMBED_DIM + len(STRUCTURAL)
    assert FeatureSpec(structural=WITH_CUES).dim == len(WITH_CUES)  # default encoder: none
    with pytest.raises(RoutingError, match="cue_nope"):
        FeatureSpec(structural=(*STRUCTURAL, "cue_nope"))
