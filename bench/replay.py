"""Replay speed: a synthetic 100k-row traffic log (real SQLite, real request bodies, shadow
pairs and exploration propensities) replayed under several policies on this machine.

    .venv/bin/python bench/replay.py [--rows 100000]

Prints load / score / estimate seconds and requests/s; baseline = the policies that need
no scoring (always/never), timed in the same run.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import tempfile
import time
from pathlib import Path

from switchyard.core.trafficlog.outcomes import Outcome
from switchyard.core.trafficlog.schema import TrafficRecord, connect
from switchyard.router.replay import parse_policy, replay
from switchyard.router.replay_data import load_log
from switchyard.server.traffic.writer import _INSERT

TOPICS = ["prove that the sum of two even numbers is even", "write a haiku about rain",
          "fix this python traceback: KeyError 'id'", "what is the capital of Peru",
          "integrate x^2 sin(x) dx", "summarise this paragraph in one line"]


def synth_log(path: Path, rows: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    db = connect(path)
    records, outcomes = [], []
    for i in range(rows):
        text = f"{rng.choice(TOPICS)} (case {i}, {rng.randint(1, 10**6)})"
        body = json.dumps({"messages": [{"role": "user", "content": text}]})
        greedy = rng.random() < 0.3
        explored = rng.random() < 0.1
        thinking = rng.random() < 0.5 if explored else greedy
        prop = 0.9 * (thinking == greedy) + 0.05
        rid = f"r{i}"
        records.append(TrafficRecord(rid, f"s{i // 20}", "bench", thinking=thinking,
                                     prompt_tokens=40, completion_tokens=900 if thinking else 200,
                                     cost_usd=0.004 if thinking else 0.0004, request_json=body,
                                     propensity=prop, explored=explored))
        outcomes.append(Outcome(rid, "verifier", score=float(rng.random() < 0.8)))
        if i % 10 == 0:  # a 10% shadow share
            records.append(TrafficRecord(f"x{i}", f"s{i // 20}", "shadow",
                                         thinking=not thinking, prompt_tokens=40,
                                         completion_tokens=200 if thinking else 900,
                                         cost_usd=0.0004 if thinking else 0.004,
                                         request_json=body, shadow_of=rid, overridden=True))
            outcomes.append(Outcome(f"x{i}", "verifier", score=float(rng.random() < 0.7)))
    with db:
        db.execute("BEGIN")
        db.executemany(_INSERT, [r.as_row() for r in records])
        db.executemany("INSERT INTO outcomes VALUES (?, ?, ?, ?, ?, ?)",
                       [(o.request_id, o.source, o.label, o.score, o.weight, o.created_at)
                        for o in outcomes])
    db.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "traffic.sqlite"
        t0 = time.monotonic()
        synth_log(path, args.rows)
        t_synth = time.monotonic() - t0
        t0 = time.monotonic()
        traffic = load_log(path)
        t_load = time.monotonic() - t0
        t0 = time.monotonic()
        base = replay(traffic, [parse_policy(p) for p in ("never", "always", "logged")])
        t_base = time.monotonic() - t0
        t0 = time.monotonic()
        est = replay(traffic, [parse_policy(p) for p in
                               ("mlp:share=0.2", "mlp:share=0.5", "mlp:share=0.8")],
                     progress=True)
        t_mlp = time.monotonic() - t0
    n = len(traffic)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], check=False,
                            capture_output=True,
                            text=True).stdout.strip()
    result = {"commit": commit, "rows": n, "synth_s": round(t_synth, 2),
              "load_s": round(t_load, 2), "baseline_policies_s": round(t_base, 3),
              "mlp_3_policies_s": round(t_mlp, 2), "mlp_requests_per_s": round(n / t_mlp),
              "mlp_vs_baseline": round(t_mlp / max(t_base, 1e-9), 1),
              "estimates": [{"policy": e.policy, "quality": e.quality, "n_direct": e.n_direct,
                             "n_ipw": e.n_ipw, "share": e.thinking_share}
                            for e in (*base, *est)]}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
