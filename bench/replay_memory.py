"""Replay memory: peak RSS of `replay --parquet` streaming a day-partitioned Parquet log
(router/replay_data.iter_parquet) versus the same log held in memory, at two log sizes.

    .venv/bin/python bench/replay_memory.py [--rows 100000 400000] [--policy mlp:share=0.5]

Each size is synthesised (bench/replay.py's log: shadow pairs, propensities, outcomes),
exported with `export_dataset`, then replayed in a fresh process per mode so that each
peak RSS is its own. Baseline: the in-memory mode (load_parquet + replay), same run.
Writes bench/results/replay_memory.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from replay import synth_log  # bench/replay.py, next to this script


def child(mode: str, directory: Path, policies: list[str]) -> None:
    from switchyard.router.replay import parse_policy, replay, replay_batches
    from switchyard.router.replay_data import iter_parquet, load_parquet

    parsed = [parse_policy(p) for p in policies]
    start_mb = _peak_rss_mb()
    t0 = time.monotonic()
    if mode == "stream":
        traffic, estimates = replay_batches(iter_parquet(directory), parsed)
    else:
        traffic = load_parquet(directory)
        estimates = replay(traffic, parsed)
    print(json.dumps({"mode": mode, "requests": len(traffic),
                      "seconds": round(time.monotonic() - t0, 1),
                      "rss_after_imports_mb": start_mb, "peak_rss_mb": _peak_rss_mb(),
                      "estimates": [e.to_dict() for e in estimates]}))


def _peak_rss_mb() -> int:
    """This process's peak RSS. Not getrusage's ru_maxrss: Linux carries that over exec
    from the parent, which just built the log."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024)
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, nargs="+", default=[100_000, 400_000])
    ap.add_argument("--policy", action="append")
    ap.add_argument("--child", nargs=2, metavar=("MODE", "DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    policies = args.policy or ["logged", "never", "always", "mlp:share=0.5"]
    if args.child:
        child(args.child[0], Path(args.child[1]), policies)
        return
    from switchyard.server.traffic.export import export_dataset

    runs = []
    for rows in args.rows:
        with tempfile.TemporaryDirectory() as tmp:
            synth_log(Path(tmp) / "t.sqlite", rows)
            export_dataset(Path(tmp) / "t.sqlite", Path(tmp) / "pq")
            (Path(tmp) / "t.sqlite").unlink()
            by_mode = {}
            for mode in ("stream", "memory"):
                out = subprocess.run(
                    [sys.executable, __file__, "--child", mode, str(Path(tmp) / "pq"),
                     *(f"--policy={p}" for p in policies)],
                    check=False, capture_output=True, text=True)
                if out.returncode:
                    sys.exit(f"Error: {mode} replay of {rows} rows failed:\n{out.stderr}")
                by_mode[mode] = json.loads(out.stdout.strip().splitlines()[-1])
        same = by_mode["stream"].pop("estimates") == by_mode["memory"].pop("estimates")
        runs.append({"rows": rows, "same_estimates": same, **by_mode})
        print(json.dumps(runs[-1]), flush=True)
    if len(runs) > 1:
        first, last = runs[0], runs[-1]
        summary = {"rows_ratio": round(last["rows"] / first["rows"], 1),
                   **{f"{mode}_peak_ratio": round(last[mode]["peak_rss_mb"]
                                                  / first[mode]["peak_rss_mb"], 2)
                      for mode in ("stream", "memory")}}
        print(json.dumps(summary))
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], check=False,
                                capture_output=True, text=True).stdout.strip()
        out = Path(__file__).parent / "results" / "replay_memory.json"
        out.write_text(json.dumps({"commit": commit, "runs": runs, "summary": summary},
                                  indent=1) + "\n")


if __name__ == "__main__":
    main()
