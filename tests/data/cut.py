"""Cut the small test fixtures under tests/data from the full shared sets.

    python tests/data/cut.py [SHARED_DATA]      # default: ../shared/data beside the repo

Deterministic: the same shared sets give the same bytes. What is kept, and why:
- trajectories/swe-agent: nine SWE-agent files (the `history` only, which is all the loader
  reads), among them the first held-out family (ctf web) and a native tool-calling replay;
- trajectories/tau-bench: the first 12 and the last 6 of the 200 airline logs (the first
  ones hold the two first held-out tasks; the compactor's training test trains on 12 and
  validates on 6);
- router: every 25th RouteLLM MMLU row, every 20th DC-Router row, every 80th MMLU-Pro row,
  every 40th BBH row and every 25th RouterBench row (every subject, task or family of each
  source, and at least 125 rows a source for `train-router --limit`).
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SWE_AGENT = [  # one file each; the names are long, so they are matched by their ends
    "*sweagenttestrepo-1c2844.traj",
    "*pydicom__pydicom-1458.traj",
    "*ctf__crypto__BabyEncryption.traj",
    "*ctf__crypto__eps.traj",
    "*ctf__misc__networking_1.traj",
    "*ctf__web__i_got_id_demo.traj",
    "*function_calling_simple.traj",
    "*humanevalfix-python-0.traj",
    "*marshmallow-1867__function_calling__install-1__marshmallow-code__marshmallow-1867.traj",
]
TAU_BENCH = "gpt-4o-airline.json"


def cut_trajectories(src: Path, dst: Path) -> None:
    (dst / "swe-agent").mkdir(parents=True, exist_ok=True)
    for pattern in SWE_AGENT:
        (path,) = (src / "swe-agent").glob(pattern)
        history = json.loads(path.read_text())["history"]
        (dst / "swe-agent" / path.name).write_text(json.dumps({"history": history}, indent=1))
    (dst / "tau-bench").mkdir(parents=True, exist_ok=True)
    logs = json.loads((src / "tau-bench" / TAU_BENCH).read_text())
    (dst / "tau-bench" / TAU_BENCH).write_text(json.dumps(logs[:12] + logs[-6:], indent=1))


# file -> keep every n-th row (CSV: data rows, the header is always kept)
ROUTER_EVERY = {"routellm_mmlu.csv": 25, "dcrouter_train.jsonl": 20, "mmlu_pro.jsonl": 80,
                "bbh_cot_vs_direct.jsonl": 40, "routerbench_subset.csv": 25}


def cut_router(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for name, every in ROUTER_EVERY.items():
        if name.endswith(".csv"):
            with (src / name).open(newline="", encoding="utf-8") as f:
                reader = csv.reader(f)
                header = next(reader)
                rows = [row for i, row in enumerate(reader) if i % every == 0]
            with (dst / name).open("w", newline="", encoding="utf-8") as f:
                csv.writer(f).writerows([header, *rows])
        else:
            lines = (src / name).read_text(encoding="utf-8").splitlines()
            (dst / name).write_text(
                "".join(line + "\n" for i, line in enumerate(lines) if i % every == 0),
                encoding="utf-8")


def main(argv: list[str]) -> None:
    shared = Path(argv[0]) if argv else HERE.parents[2] / "shared" / "data"
    if not shared.is_dir():
        sys.exit(f"Error: no shared data at {shared}; pass the folder holding router/ and "
                 "trajectories/")
    cut_trajectories(shared / "trajectories", HERE / "trajectories")
    cut_router(shared / "router", HERE / "router")


if __name__ == "__main__":
    main(sys.argv[1:])
