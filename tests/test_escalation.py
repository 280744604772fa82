"""The escalation scorer: each verifiable draft signal, the logistic fit, the checkpoint."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from switchyard.core.messages import Message, ToolCall, ToolDefinition
from switchyard.router.draft_signals import (
    LEARNED,
    SIGNALS,
    DraftInput,
    arithmetic_errors,
    draft_signals,
    final_answers,
    tool_call_errors,
)
from switchyard.router.errors import CheckpointError
from switchyard.router.escalation import (
    EscalationScorer,
    build_model,
    fit,
    load_model,
    save_model,
)

MCQ = "Which value is right?\nA. 20\nB. 21\nC. 22\nD. 23"
WEATHER = ToolDefinition("weather", parameters_json=json.dumps({
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}))


def signals(draft: str, prompt: str = MCQ, **kw: object) -> dict[str, float]:
    return draft_signals(DraftInput([Message("user", prompt)], draft, **kw)).values  # type: ignore[arg-type]


def test_final_answer_parsed_against_the_offered_options() -> None:
    assert final_answers("so 3*7 = 21. The answer is (B).", ["A", "B", "C"]) == ["B"]
    assert signals("3*7 = 21. The answer is (B).")["no_final_answer"] == 0
    missing = signals("It must be twenty-one, I reckon.")
    assert (missing["no_final_answer"], missing["answer_off_format"]) == (1, 0)  # disjoint
    assert signals("The answer is (H).")["answer_off_format"] == 1  # only A-D offered
    assert signals("The answer is (A). Wait, the answer is (C).")["answers_conflict"] == 1


def test_free_form_answers_and_requested_formats() -> None:
    gsm = "Tom has 3 bags of 4 apples. How many? End with '#### <number>'."
    assert final_answers("3 * 4 = 12\n#### 12") == ["12"]
    assert final_answers("so \\boxed{12}") == ["12"]
    assert signals("3 * 4 = 12\n#### 12", gsm)["answer_off_format"] == 0
    assert signals("3 * 4 = 12. The answer is 12.", gsm)["answer_off_format"] == 1
    assert signals("3 * 4 = 12, so twelve apples.", "How many apples?")["no_final_answer"] == 1


def test_arithmetic_is_recomputed() -> None:
    assert arithmetic_errors("2 + 2 = 5 and 3 x 4 = 12, (2+3)*4 = 20") == (1, 3)
    assert arithmetic_errors("She pays <<4*5=21>>21 dollars") == (1, 1)  # checked once
    assert arithmetic_errors("1,200 / 3 = 400.0 and 10 / 3 = 3.33") == (0, 2)
    assert arithmetic_errors("so 3x + 2 = 5 and 2^10") == (0, 0)  # algebra is not checked
    assert signals("6 * 7 = 41. The answer is (B).")["arith_wrong"] == 1
    assert arithmetic_errors(r"\[ 100 \times (1 - 0.30) = 70 \]") == (0, 1)  # LaTeX times
    assert arithmetic_errors("$7,000 x 3 + $10,000 x 7 = $63,000") == (1, 1)  # currency
    assert arithmetic_errors("0.0045 = 0.45% = 4.5/100 = 4.5%") == (0, 0)  # chains skipped


def test_a_long_number_dense_draft_is_scored_quickly() -> None:
    draft = " ".join(f"{i},{i:03d}.5 + 1 - 2 * 3 / 4" for i in range(2000)) + " = 7"
    start = time.perf_counter()
    signals(draft)
    assert time.perf_counter() - start < 1.0  # a backtracking regex took minutes here


def test_answer_backed_by_the_drafts_own_work() -> None:
    assert signals("3 * 7 = 21. The answer is (B).")["answer_unsupported"] == -1
    assert signals("Roughly, the closest is 22. The answer is (B).")["answer_unsupported"] == 1
    words = "Which word?\nA. red\nB. blue"
    assert signals("The answer is (B).", words)["answer_unsupported"] == 0


def test_tool_arguments_checked_against_the_offered_schema() -> None:
    good = ToolCall("c1", "weather", '{"city": "Oslo"}')
    assert tool_call_errors([good], [WEATHER]) == []
    errors = tool_call_errors([ToolCall("c2", "weather", '{"town": "Oslo"}'),
                               ToolCall("c3", "weather", "{not json"),
                               ToolCall("c4", "stocks", "{}")], [WEATHER])
    assert len(errors) == 3 and "'city' is a required property" in errors[0]
    assert "not JSON" in errors[1] and "not an offered tool" in errors[2]
    bad = signals("", "weather?", tools=[WEATHER], tool_calls=[ToolCall("c", "weather", "{}")])
    assert bad["tool_args_invalid"] == 1 and bad["no_final_answer"] == 0


def test_requested_letter_form_and_looping_drafts() -> None:
    asked = 'Finish with "the answer is (X)".\n' + MCQ
    assert signals("Answer: B", asked)["answer_off_format"] == 1
    assert signals("so the answer is (B)", asked)["answer_off_format"] == 0
    loop = "The value is 21 per unit here. " * 4 + "The answer is (B)."
    assert signals(loop)["repeats"] == pytest.approx(0.75)  # 4 sentences, 1 distinct


def test_finish_reason_json_logprobs_hedges_and_second_sample() -> None:
    assert signals("The answer is", finish_reason="length")["truncated"] == 1
    assert signals("{'a': 1}", "give JSON", response_format="json_object")["json_invalid"] == 1
    assert signals('{"a": 1}', "give JSON", response_format="json_object")["json_invalid"] == 0
    assert signals("x", logprobs=[-0.01, -0.02])["low_logprob"] == 0
    assert signals("x", logprobs=[-2.0, -1.0])["low_logprob"] == pytest.approx(1.2)
    assert signals("I think it is probably B, maybe.")["hedges"] == pytest.approx(np.log1p(3))
    agree = signals("The answer is (B).", second_draft="so the answer is (B)")
    differ = signals("The answer is (B).", second_draft="The answer is (C).")
    assert (agree["disagrees"], differ["disagrees"], signals("x")["disagrees"]) == (-1, 1, 0)


def test_fit_recovers_a_signal_and_per_group_intercepts_keep_slopes_within_groups() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    group = rng.integers(0, 2, n)
    length = rng.normal(size=n) - 2.0 * group  # group 1 drafts are shorter...
    # ...and fail more often, while within each group the longer drafts fail.
    logit = 1.5 * length + 3.0 * group - 1.0
    y = rng.random(n) < 1 / (1 + np.exp(-logit))
    _, _, pooled, _ = fit(length[:, None], y)
    _, scale, within, _ = fit(length[:, None], y, group)
    assert within[0] / scale[0] == pytest.approx(1.5, abs=0.2)
    assert pooled[0] < within[0]  # pooling confounds length with the group


def _tiny_model(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    rows = rng.normal(size=(500, len(SIGNALS)))
    rows[:, [SIGNALS.index(n) for n in SIGNALS if n not in LEARNED]] = 0  # no failures
    labels = rows[:, 0] + 0.3 * rng.normal(size=500) > 0.5
    return save_model(build_model(rows, labels, default_share=0.25), tmp_path / "esc.json")


def test_checkpoint_round_trip_and_calibrated_threshold(tmp_path: Path) -> None:
    path = _tiny_model(tmp_path)
    model = load_model(path)
    assert model.features == LEARNED and set(model.fixed) == set(SIGNALS) - set(LEARNED)
    rows = np.random.default_rng(2).normal(size=(4000, len(SIGNALS)))
    rows[:, [SIGNALS.index(n) for n in SIGNALS if n not in LEARNED]] = 0
    scores = 1 / (1 + np.exp(-model.logits(rows)))
    assert (scores >= model.threshold()).mean() == pytest.approx(0.25, abs=0.04)
    assert (scores >= model.threshold(0.6)).mean() == pytest.approx(0.6, abs=0.04)


def test_share_calibration_follows_the_deployments_own_scores() -> None:
    from switchyard.router.escalation import ShareCalibration

    calibration = ShareCalibration(0.3, fallback=0.9, window=1000, warmup=100)
    scores = np.random.default_rng(3).beta(2, 8, 3000)  # far below the fallback threshold
    escalated = []
    for p in scores:
        escalated.append(p >= calibration.threshold)
        calibration.observe(float(p))
    assert not any(escalated[:100])  # the checkpoint's threshold until warm
    assert np.mean(escalated[100:]) == pytest.approx(0.3, abs=0.03)


def test_bad_checkpoints_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(CheckpointError, match="not JSON"):
        load_model(bad)
    bad.write_text(json.dumps({"format_version": 99}))
    with pytest.raises(CheckpointError, match="format version"):
        load_model(bad)
    with pytest.raises(CheckpointError, match="cannot read"):
        load_model(tmp_path / "missing.json")


def test_bundled_scorer_ranks_verified_failures_first() -> None:
    scorer = EscalationScorer.load()
    assert scorer.model.info["data_hash"]  # trained on the drafts, not set by hand
    work = "3 * 7 = 21, so 21 it is. The answer is (B)."
    p_ok = scorer.score(DraftInput([Message("user", MCQ)], work))
    p_missing = scorer.score(DraftInput([Message("user", MCQ)], "Hard to say, maybe 22."))
    p_cut = scorer.score(DraftInput([Message("user", MCQ)], work, finish_reason="length"))
    assert p_ok < scorer.threshold <= p_missing and p_cut > p_ok


def test_tool_call_drafts_escalate_only_on_invalid_arguments() -> None:
    scorer = EscalationScorer.load()
    ask = [Message("user", "weather in Oslo? " * 200)]
    valid = DraftInput(ask, "", tools=[WEATHER], tool_calls=[ToolCall("c", "weather",
                                                                       '{"city": "Oslo"}')])
    invalid = DraftInput(ask, "", tools=[WEATHER], tool_calls=[ToolCall("c", "weather", "{}")])
    assert not scorer.decide(valid).escalate
    assert scorer.decide(invalid).escalate
    assert "tool_args_invalid" in scorer.decide(invalid).failed
