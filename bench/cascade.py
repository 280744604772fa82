"""Cascade benchmark: the escalation scorer on left-out MMLU-Pro categories.

    .venv/bin/python bench/cascade.py [--splits 5] [--holdout 3] [--write]

For each split, whole categories are held out; the scorer is fitted on the rest (each draft
twice: with and without the second cheap sample) and judged on the held-out drafts of each
draft model with RouteLLM's metrics, where the "strong" outcome is the thinking model's
(Gemini-3.1-Pro) and the "weak" one the draft's: APGR, and CPT(50%) = the escalation share
that recovers half the gap. Baselines in the same run: random, prompt length, draft length,
an unweighted hand check (missing final answer + wrong arithmetic + hedges) and the oracle
(escalate exactly the drafts that are wrong where the thinking model is right).
`--write` fits on every category and saves router/checkpoints/escalation.json.
Results go to bench/results/cascade.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

HAND_CHECK = ("no_final_answer", "answer_off_format", "arith_wrong", "hedges")


def _metrics(scores: np.ndarray, weak: np.ndarray, strong: np.ndarray) -> dict[str, float]:
    from switchyard.router.eval_metrics import evaluate_scores

    m = evaluate_scores(scores, weak, strong)
    return {"apgr": m.apgr, "cpt50": m.cpt50, "cpt80": m.cpt80}


def _splits(categories: list[str], n: int, holdout: int, seed: int) -> list[list[str]]:
    names = sorted(set(categories))
    rng = np.random.default_rng(seed)
    return [sorted(rng.choice(names, size=holdout, replace=False).tolist()) for _ in range(n)]


def _fit(rows_plain, rows_second, labels, models, l2: float):
    from switchyard.router.escalation import build_model

    # Calibrated on drafts without a second sample: the default config draws none.
    return build_model(np.vstack([rows_plain, rows_second]), np.concatenate([labels, labels]),
                       np.concatenate([models, models]), calibrate_on=rows_plain, l2=l2)


def _scores(model, rows: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-model.logits(rows)))


def evaluate_split(data: dict, held: list[str], l2: float, share: float, seed: int) -> dict:
    from switchyard.router.draft_signals import SIGNALS

    test = np.isin(data["category"], held)
    model = _fit(data["plain"][~test], data["second"][~test], data["label"][~test],
                 data["model"][~test], l2)
    threshold = model.threshold(share)
    rng = np.random.default_rng(seed)
    hand = [SIGNALS.index(n) for n in HAND_CHECK]
    out: dict = {}
    for draft_model in sorted(set(data["model"])):
        rows = test & (data["model"] == draft_model)
        weak, strong = data["draft_correct"][rows], data["thinking_correct"][rows]
        plain = _scores(model, data["plain"][rows])
        noise = rng.random(rows.sum()) * 1e-6  # ties broken at random, as RouteLLM's qcut
        candidates = {
            "scorer": plain,
            "scorer+second": _scores(model, data["second"][rows]),
            "random": rng.random(rows.sum()),
            "prompt_length": data["prompt_chars"][rows] + noise,
            "draft_length": data["draft_chars"][rows] + noise,
            "hand_check": np.sign(data["plain"][rows][:, hand]).sum(axis=1) + noise,
            "oracle": (~weak.astype(bool) & strong.astype(bool)) + noise,
        }
        out[draft_model] = {name: _metrics(s, weak, strong) for name, s in candidates.items()}
        out[draft_model]["scorer"]["escalated_at_threshold"] = float((plain >= threshold).mean())
        out[draft_model]["scorer"]["escalated_online"] = _online_share(plain, threshold, share,
                                                                       rng)
    return out


def _online_share(scores: np.ndarray, fallback: float, share: float, rng) -> float:
    """The share escalated when the server calibrates on the deployment's own recent drafts
    (router/escalation.py ShareCalibration), drafts arriving in random order."""
    from switchyard.router.escalation import ShareCalibration

    calibration = ShareCalibration(share, fallback)
    escalated = 0
    for p in scores[rng.permutation(len(scores))]:
        escalated += p >= calibration.threshold
        calibration.observe(float(p))
    return escalated / len(scores)


def _summary(per_split: list[dict]) -> dict:
    summary: dict = {}
    for draft_model in per_split[0]:
        for name in per_split[0][draft_model]:
            for key in per_split[0][draft_model][name]:
                values = [s[draft_model][name][key] for s in per_split]
                summary.setdefault(draft_model, {}).setdefault(name, {})[key] = {
                    "mean": float(np.mean(values)), "std": float(np.std(values)),
                    "min": float(np.min(values)), "max": float(np.max(values))}
    return summary


def bench_speed(examples, model, n: int = 2000) -> dict[str, float]:
    """p50/p99 of one score (signals + logistic model) on real drafts, with their prompts."""
    from switchyard.router.escalation import EscalationScorer

    scorer = EscalationScorer(model)
    inputs = [e.to_input(with_second=False) for e in examples[:n]]
    for x in inputs[:50]:
        scorer.score(x)  # warm up
    lat, cpu = [], []
    for x in inputs:
        t, c = time.perf_counter(), time.thread_time()
        scorer.score(x)
        lat.append((time.perf_counter() - t) * 1e3)
        cpu.append((time.thread_time() - c) * 1e3)
    return {"p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)),
            "max_ms": float(np.max(lat)), "cpu_p99_ms": float(np.percentile(cpu, 99)),
            "drafts": len(lat),
            "mean_draft_chars": float(np.mean([len(x.draft) for x in inputs]))}


def main() -> None:
    from switchyard.router.escalation import DEFAULT_CHECKPOINT, save_model
    from switchyard.router.escalation_data import load_drafts, signal_rows

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path)
    ap.add_argument("--splits", type=int, default=5)
    ap.add_argument("--holdout", type=int, default=3, help="categories held out per split")
    ap.add_argument("--l2", type=float, default=1.0)
    ap.add_argument("--share", type=float, default=0.3, help="escalation share to calibrate")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--target", choices=("cascade", "draft_wrong"), default="cascade",
                    help="label to fit: draft wrong and thinking right, or draft wrong")
    ap.add_argument("--write", action="store_true", help="save the checkpoint fitted on all")
    ap.add_argument("--json", type=Path, default=Path("bench/results/cascade.json"))
    args = ap.parse_args()

    t0 = time.monotonic()
    examples, data_hash = load_drafts(args.data_dir)
    data = {
        "category": np.array([e.category for e in examples]),
        "model": np.array([e.model for e in examples]),
        "label": np.array([e.label if args.target == "cascade" else not e.draft_correct
                           for e in examples], dtype=np.float64),
        "draft_correct": np.array([e.draft_correct for e in examples], dtype=np.float64),
        "thinking_correct": np.array([e.thinking_correct for e in examples], dtype=np.float64),
        "prompt_chars": np.array([len(e.prompt) for e in examples], dtype=np.float64),
        "draft_chars": np.array([len(e.draft) for e in examples], dtype=np.float64),
        "plain": signal_rows(examples, with_second=False),
        "second": signal_rows(examples, with_second=True),
    }
    featurize_s = time.monotonic() - t0
    splits = _splits(list(data["category"]), args.splits, args.holdout, args.seed)
    per_split = [evaluate_split(data, held, args.l2, args.share, args.seed + i)
                 for i, held in enumerate(splits)]
    summary = _summary(per_split)
    result = {
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], check=False,
                                 capture_output=True, text=True).stdout.strip(),
        "data_hash": data_hash, "drafts": len(examples), "splits": splits,
        "l2": args.l2, "share": args.share, "target": args.target, "featurize_s": featurize_s,
        "left_out": summary, "per_split": per_split,
    }
    model = _fit(data["plain"], data["second"], data["label"], data["model"], args.l2)
    model = replace(model, default_share=args.share, info={
        "data_hash": data_hash, "trained_on": "mmlu_pro_drafts.jsonl (all categories)",
        "target": args.target, "l2": args.l2,
        "left_out": {m: {k: v["apgr"] for k, v in s.items()} for m, s in summary.items()}})
    result["policy_version"] = model.version
    if args.write:
        result["checkpoint"] = str(save_model(model, DEFAULT_CHECKPOINT))
    result["speed"] = bench_speed(examples, model)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    _print(result)


def _print(r: dict) -> None:
    print(f"cascade on left-out MMLU-Pro categories @ {r['commit']}: {len(r['splits'])} splits "
          f"of {len(r['splits'][0])} categories; {r['drafts']} drafts")
    for draft_model, methods in r["left_out"].items():
        print(f"  draft model {draft_model} (thinking model gemini-3.1-pro)")
        print(f"    {'method':<15}{'APGR':>8}{'+-':>7}{'CPT(50%)':>10}{'+-':>6}{'CPT(80%)':>10}")
        for name, m in methods.items():
            print(f"    {name:<15}{m['apgr']['mean']:>8.3f}{m['apgr']['std']:>7.3f}"
                  f"{m['cpt50']['mean']:>9.1f}%{m['cpt50']['std']:>6.1f}"
                  f"{m['cpt80']['mean']:>9.1f}%")
        esc = methods["scorer"]["escalated_at_threshold"]
        online = methods["scorer"]["escalated_online"]
        print(f"    calibrated to escalate {r['share']:.0%}: left-out share "
              f"{esc['mean']:.1%} +- {esc['std']:.1%} (checkpoint table), "
              f"{online['mean']:.1%} +- {online['std']:.1%} (per-deployment, online)")
    s = r["speed"]
    print(f"  scoring: p50 {s['p50_ms']:.2f} ms, p99 {s['p99_ms']:.2f} ms (on-CPU p99 "
          f"{s['cpu_p99_ms']:.2f} ms) over {s['drafts']} "
          f"drafts (mean {s['mean_draft_chars']:.0f} chars); featurizing all: "
          f"{r['featurize_s']:.0f} s")


if __name__ == "__main__":
    main()
