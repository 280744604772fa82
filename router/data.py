"""Training data for the router: RouteLLM's MMLU pairs and DC-Router's 9-model scores.

Each row becomes a `RouterExample` with the two outcomes the RouteLLM metrics need
(`weak`, `strong`: the non-thinking and thinking stand-ins' scores), a p_hard target and a
difficulty grade. The data directory is `--data-dir`, else $SWITCHYARD_ROUTER_DATA, else
../shared/data/router beside the repository.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from switchyard.router.errors import RouterDataError

MMLU_FILE = "routellm_mmlu.csv"
DCROUTER_FILE = "dcrouter_train.jsonl"
# DC-Router's 9 models: 7-9B instruct models stand in for the non-thinking group and the
# two Nemotron 49B/51B models (the reasoning-tuned ones) for the thinking group.
DC_WEAK = ("qwen2.5-7b-instruct", "llama-3.1-8b-instruct", "gemma-2-9b-it",
           "mistral-7b-instruct-v0.3")
DC_STRONG = ("llama-3.3-nemotron-super-49b-v1", "llama-3.1-nemotron-51b-instruct")
MMLU_GRADE_WEIGHT = 0.25  # two models give a coarse grade; the 9-model one counts more


@dataclass(frozen=True, slots=True)
class RouterExample:
    text: str
    source: str  # "mmlu" or "dcrouter"
    family: str  # MMLU subject or DC-Router task: the unit held out in validation
    weak: float  # non-thinking stand-in's score in [0, 1]
    strong: float  # thinking stand-in's score in [0, 1]
    hard: float  # p_hard target: P(weak fails and strong succeeds)
    grade: float  # share of models that fail, in [0, 1]
    grade_weight: float


def data_dir(path: Path | str | None = None) -> Path:
    if path is not None:
        return Path(path)
    env = os.environ.get("SWITCHYARD_ROUTER_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "data" / "router"


def _require(path: Path) -> Path:
    if not path.is_file():
        raise RouterDataError(
            f"router training data {path} not found; pass --data-dir or set "
            "SWITCHYARD_ROUTER_DATA to the folder holding "
            f"{MMLU_FILE} and {DCROUTER_FILE}",
            param="data_dir",
        )
    return path


def _flag(value: str, where: str) -> float:
    if value in ("True", "true", "1"):
        return 1.0
    if value in ("False", "false", "0"):
        return 0.0
    raise RouterDataError(f"{where}: expected True/False, got {value!r}")


def load_mmlu(path: Path) -> list[RouterExample]:
    out = []
    with _require(Path(path)).open(newline="", encoding="utf-8") as f:
        for i, row in enumerate(csv.DictReader(f)):
            where = f"{path} row {i + 2}"
            try:
                weak = _flag(row["weak_correct"], where)
                strong = _flag(row["strong_correct"], where)
                out.append(RouterExample(
                    text=row["prompt"], source="mmlu", family=row["subject"], weak=weak,
                    strong=strong, hard=(1.0 - weak) * strong, grade=(2.0 - weak - strong) / 2,
                    grade_weight=MMLU_GRADE_WEIGHT,
                ))
            except KeyError as exc:
                raise RouterDataError(f"{where}: missing column {exc}") from exc
    return out


def load_dcrouter(path: Path) -> list[RouterExample]:
    out = []
    with _require(Path(path)).open(encoding="utf-8") as f:
        for i, line in enumerate(f):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                scores = {k: float(v) for k, v in row["scores"].items()}
                weak = float(np.mean([scores[m] for m in DC_WEAK]))
                strong = float(np.mean([scores[m] for m in DC_STRONG]))
                out.append(RouterExample(
                    text=row["question"], source="dcrouter", family=row["task_name"],
                    weak=weak, strong=strong, hard=(1.0 - weak) * strong,
                    grade=1.0 - float(np.mean(list(scores.values()))), grade_weight=1.0,
                ))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise RouterDataError(f"{path} line {i + 1}: {exc}") from exc
    return out


def load_all(directory: Path | str | None = None) -> tuple[list[RouterExample], str]:
    """Both data sets and the SHA-256 of their bytes (recorded in the checkpoint)."""
    d = data_dir(directory)
    paths = [_require(d / MMLU_FILE), _require(d / DCROUTER_FILE)]
    digest = hashlib.sha256()
    for p in paths:
        digest.update(p.read_bytes())
    return load_mmlu(paths[0]) + load_dcrouter(paths[1]), digest.hexdigest()


def split_families(
    examples: Sequence[RouterExample], holdout_share: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) row indices; whole families of each source are held out."""
    rng = np.random.default_rng(seed)
    held: set[tuple[str, str]] = set()
    for source in sorted({e.source for e in examples}):
        families = sorted({e.family for e in examples if e.source == source})
        k = max(1, round(len(families) * holdout_share)) if len(families) > 1 else 0
        held |= {(source, f) for f in rng.choice(families, size=k, replace=False)}
    is_val = np.array([(e.source, e.family) in held for e in examples])
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)
