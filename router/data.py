"""Training data for the router: five sources, one example type.

- RouteLLM's MMLU pairs (source "mmlu", family = subject);
- DC-Router's 9-model scores ("dcrouter", family = task);
- MMLU-Pro with a thinking model against eight non-thinking ones ("mmlu_pro", category);
- BIG-Bench Hard, one model answering directly and with a chain of thought ("bbh", task);
- RouterBench's ARC / MBPP / Winogrande rows ("routerbench", family).

Each row becomes a `RouterExample` with the two outcomes the RouteLLM metrics need
(`weak`, `strong`: the non-thinking and thinking stand-ins' scores), a p_hard target, a
difficulty grade and, where a source has one, the length of a correct reasoning chain
(the budget target). The data directory is `--data-dir`, else $SWITCHYARD_ROUTER_DATA, else
../shared/data/router beside the repository.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from switchyard.router.errors import RouterDataError

MMLU_FILE = "routellm_mmlu.csv"
DCROUTER_FILE = "dcrouter_train.jsonl"
MMLU_PRO_FILE = "mmlu_pro.jsonl"
BBH_FILE = "bbh_cot_vs_direct.jsonl"
ROUTERBENCH_FILE = "routerbench_subset.csv"
FILES = (MMLU_FILE, DCROUTER_FILE, MMLU_PRO_FILE, BBH_FILE, ROUTERBENCH_FILE)
# DC-Router's 9 models: 7-9B instruct models stand in for the non-thinking group and the
# two Nemotron 49B/51B models (the reasoning-tuned ones) for the thinking group.
DC_WEAK = ("qwen2.5-7b-instruct", "llama-3.1-8b-instruct", "gemma-2-9b-it",
           "mistral-7b-instruct-v0.3")
DC_STRONG = ("llama-3.3-nemotron-super-49b-v1", "llama-3.1-nemotron-51b-instruct")
MMLU_GRADE_WEIGHT = 0.25  # two models give a coarse grade; the 9-model one counts more
# MMLU-Pro: the one thinking model against the mean of the non-thinking ones (a graded
# "cheap answer fails" rather than one model's coin flips).
MMLU_PRO_THINKING = "gemini-3.1-pro"
# RouterBench: GPT-4-1106 as the strong side, the three smallest chat models as the weak one.
RB_STRONG = "gpt-4-1106-preview"
RB_WEAK = ("mistralai/mistral-7b-chat", "WizardLM/WizardLM-13B-V1.2", "meta/llama-2-70b-chat")


@dataclass(frozen=True, slots=True)
class RouterExample:
    text: str
    source: str  # "mmlu", "dcrouter", "mmlu_pro", "bbh" or "routerbench" (or "log")
    family: str  # subject, task or category: the unit held out in validation
    weak: float  # non-thinking stand-in's score in [0, 1]
    strong: float  # thinking stand-in's score in [0, 1]
    hard: float  # p_hard target: P(weak fails and strong succeeds)
    grade: float  # share of models that fail, in [0, 1] (the budget head's fallback target)
    grade_weight: float
    budget_chars: float = math.nan  # length of a correct reasoning chain, NaN if unknown


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
            f"{', '.join(FILES)}",
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
    for n, row in _jsonl(path):
        try:
            scores = {k: float(v) for k, v in row["scores"].items()}
            weak = float(np.mean([scores[m] for m in DC_WEAK]))
            strong = float(np.mean([scores[m] for m in DC_STRONG]))
            out.append(_example(row["question"], "dcrouter", row["task_name"], weak, strong,
                                grade=1.0 - float(np.mean(list(scores.values())))))
        except (KeyError, TypeError, ValueError) as exc:
            raise RouterDataError(f"{path} line {n}: {exc}") from exc
    return out


def _jsonl(path: Path):
    """(line number, parsed object) for each non-empty line."""
    with _require(Path(path)).open(encoding="utf-8") as f:
        for i, line in enumerate(f):
            if line.strip():
                try:
                    yield i + 1, json.loads(line)
                except json.JSONDecodeError as exc:
                    raise RouterDataError(f"{path} line {i + 1}: {exc}") from exc


def _example(text: str, source: str, family: str, weak: float, strong: float, grade: float,
             budget: float = math.nan) -> RouterExample:
    return RouterExample(text=text, source=source, family=family, weak=weak, strong=strong,
                         hard=(1.0 - weak) * strong, grade=grade, grade_weight=1.0,
                         budget_chars=budget)


def load_mmlu_pro(path: Path) -> list[RouterExample]:
    """Gemini-3.1-Pro (thinking) vs the mean of the non-thinking models; budget = its answer
    length when right (visible answer only: the file has no hidden-thinking counts)."""
    out = []
    for n, row in _jsonl(path):
        try:
            correct = {k: float(v) for k, v in row["correct"].items()}
            if MMLU_PRO_THINKING not in correct:
                continue  # no record for the thinking model: no label
            strong = correct.pop(MMLU_PRO_THINKING)
            weak = float(np.mean(list(correct.values()))) if correct else 0.0
            chars = float(row["output_chars"][MMLU_PRO_THINKING]) if strong else math.nan
            out.append(_example(row["prompt"], "mmlu_pro", row["category"], weak, strong,
                                grade=1.0 - (weak * len(correct) + strong) / (len(correct) + 1),
                                budget=chars))
        except (KeyError, TypeError, ValueError) as exc:
            raise RouterDataError(f"{path} line {n}: {exc}") from exc
    return out


def load_bbh(path: Path) -> list[RouterExample]:
    """Direct answer (weak) vs chain of thought (strong); budget = the chain's length when
    the chain was right."""
    out = []
    for n, row in _jsonl(path):
        try:
            weak, strong = float(row["direct_correct"]), float(row["cot_correct"])
            budget = float(row["cot_chars"]) if strong else math.nan
            out.append(_example(row["prompt"], "bbh", row["task"], weak, strong,
                                grade=(2.0 - weak - strong) / 2, budget=budget))
        except (KeyError, TypeError, ValueError) as exc:
            raise RouterDataError(f"{path} line {n}: {exc}") from exc
    return out


def load_routerbench(path: Path) -> list[RouterExample]:
    """GPT-4-1106 vs the mean of the small chat models; rows without its outcome are skipped."""
    out = []
    with _require(Path(path)).open(newline="", encoding="utf-8") as f:
        for i, row in enumerate(csv.DictReader(f)):
            try:
                cells = {k[: -len("|correct")]: v for k, v in row.items()
                         if k.endswith("|correct") and v not in ("", None)}
                weak_cells = [float(cells[m]) for m in RB_WEAK if m in cells]
                if RB_STRONG not in cells or not weak_cells:
                    continue
                strong, weak = float(cells[RB_STRONG]), float(np.mean(weak_cells))
                grade = 1.0 - float(np.mean([float(v) for v in cells.values()]))
                out.append(_example(row["prompt"], "routerbench", row["family"], weak,
                                    strong, grade))
            except (KeyError, ValueError) as exc:
                raise RouterDataError(f"{path} row {i + 2}: {exc}") from exc
    return out


LOADERS = {MMLU_FILE: load_mmlu, DCROUTER_FILE: load_dcrouter, MMLU_PRO_FILE: load_mmlu_pro,
           BBH_FILE: load_bbh, ROUTERBENCH_FILE: load_routerbench}


def load_all(directory: Path | str | None = None) -> tuple[list[RouterExample], str]:
    """Every source and the SHA-256 of their bytes (recorded in the checkpoint)."""
    d = data_dir(directory)
    paths = [_require(d / name) for name in FILES]
    digest = hashlib.sha256()
    for p in paths:
        digest.update(p.read_bytes())
    return [e for p in paths for e in LOADERS[p.name](p)], digest.hexdigest()


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
