"""Router benchmark: decisions/s, single-request p99, left-out-family quality, training speed.

    .venv/bin/python bench/router.py [--checkpoint P] [--compare-rows 1200] [--json out.json]

Quality is RouteLLM's (APGR, CPT) on the left-out families of the checkpoint's own split,
against the random and prompt-length routers scored in the same run. The encoder comparison
trains the same MLP on full-MiniLM and on static-MiniLM features of one subsample.
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


def _requests(texts):
    from retrieval.chat import Message
    from router.decision import RouteRequest

    return [RouteRequest(messages=(Message(role="user", content=t),)) for t in texts]


def bench_speed(router, texts: list[str], seed: int) -> dict[str, float]:
    """Batched decisions/s on fresh texts, and single 4k-token request latency."""
    rng = np.random.default_rng(seed)
    router.decide_batch(_requests(texts[:32]))  # warm up the tokenizer and torch
    batch = _requests([f"{t} #{i}" for i, t in enumerate(texts[:1024])])
    start = time.monotonic()
    router.decide_batch(batch)
    per_s = len(batch) / (time.monotonic() - start)
    words = texts[0].split() * 400
    lat = []
    for i in range(200):
        rng.shuffle(words)  # a new 4k-token text each time: no cache hit
        req = _requests([" ".join(words[:3000]) + f" ({i})"])
        t = time.monotonic()
        router.decide(req[0])
        lat.append((time.monotonic() - t) * 1e3)
    from retrieval.tokens import count_tokens

    return {"decisions_per_s": per_s, "p50_ms": float(np.percentile(lat, 50)),
            "p99_ms": float(np.percentile(lat, 99)),
            "single_request_tokens": count_tokens(" ".join(words[:3000]))}


def bench_quality(router, examples, seed: int) -> dict:
    from router.data import split_families
    from router.train import featurize_examples, validate

    cfg = router.config.training["config"]
    _, val_idx = split_families(examples, cfg["holdout_share"], cfg["seed"])
    val = [examples[i] for i in val_idx]
    x = featurize_examples(val, router.spec)
    return validate(val, router.score_features(x).p_hard, seed)


def bench_encoders(examples, rows: int, seed: int) -> dict:
    """Same training on full-MiniLM vs static-MiniLM features of one subsample."""
    from router.features import FeatureSpec
    from router.train import TrainConfig, featurize_examples, train

    rng = np.random.default_rng(seed)
    sub = [examples[i] for i in sorted(rng.choice(len(examples), rows, replace=False))]
    out = {}
    for mode in ("minilm-static", "minilm"):
        spec = replace(FeatureSpec(), encoder=mode)
        t = time.monotonic()
        x = featurize_examples(sub, spec)
        feat_s = len(sub) / (time.monotonic() - t)
        res = train(sub, TrainConfig(features=spec, progress=False, seed=seed),
                    data_hash="bench", features=x)
        out[mode] = {"featurize_per_s": feat_s, **{
            src: {"apgr": d["mlp"]["apgr"], "cpt50": d["mlp"]["cpt50"]}
            for src, d in res.validation.items()}}
    return out


def bench_training(examples, seed: int) -> dict:
    from router.features import FeatureSpec
    from router.train import TrainConfig, featurize_examples, fit

    sub = examples[:4000]
    x = featurize_examples(sub, FeatureSpec())
    cols = [np.array([getattr(e, f) for e in sub]) for f in ("hard", "grade", "grade_weight")]
    _, rate, device = fit(x, *cols, TrainConfig(epochs=5, progress=False, seed=seed))
    return {"device": device, "samples_per_s": rate}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", type=Path, default=None)
    ap.add_argument("--compare-rows", type=int, default=1200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    import torch

    from router.data import load_all
    from router.mlp import MLPRouter

    examples, _ = load_all()
    router = MLPRouter.from_checkpoint(args.checkpoint)
    texts = [e.text for e in examples[:: max(1, len(examples) // 2000)]]
    result = {
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], check=False,
                                 capture_output=True,
                                 text=True).stdout.strip(),
        "torch_threads": torch.get_num_threads(),
        "policy_version": router.config.policy_version,
        "speed": bench_speed(router, texts, args.seed),
        "quality_left_out": bench_quality(router, examples, args.seed),
        "training": bench_training(examples, args.seed),
    }
    if args.compare_rows:
        result["encoders"] = bench_encoders(examples, args.compare_rows, args.seed)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    _print(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


def _print(r: dict) -> None:
    s = r["speed"]
    print(f"router {r['policy_version']} @ {r['commit']} ({r['torch_threads']} threads)")
    print(f"  batched: {s['decisions_per_s']:.0f} decisions/s (target >= 500; RouteLLM MF ~155)")
    print(f"  single {s['single_request_tokens']}-token request: p50 {s['p50_ms']:.2f} ms, "
          f"p99 {s['p99_ms']:.2f} ms (target < 10)")
    for src, routers in r["quality_left_out"].items():
        base = routers["prompt_length"]["apgr"]
        print(f"  {src} left-out: " + ", ".join(
            f"{n} APGR {m['apgr']:.3f} CPT50 {m['cpt50']:.1f}% CPT80 {m['cpt80']:.1f}%"
            for n, m in routers.items()) + f"; mlp/prompt_length APGR ratio "
            f"{routers['mlp']['apgr'] / base:.2f}")
    t = r["training"]
    print(f"  training on {t['device']}: {t['samples_per_s']:.0f} samples/s")
    for mode, m in r.get("encoders", {}).items():
        print(f"  encoder {mode}: featurize {m['featurize_per_s']:.0f}/s; " + ", ".join(
            f"{src} APGR {v['apgr']:.3f} CPT50 {v['cpt50']:.1f}%"
            for src, v in m.items() if isinstance(v, dict)))
    print(f"  peak RSS {r['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    import sys

    # This file is named router.py: put the repo root, not bench/, first on the path so
    # `import router` finds the package.
    sys.path[0] = str(Path(__file__).resolve().parents[1])
    main()
