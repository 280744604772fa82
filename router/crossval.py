"""Left-out-family validation over several seeds: mean and spread, not one lucky split.

Each seed holds out different whole families of every source (MMLU subjects, DC-Router
tasks, MMLU-Pro categories, BBH tasks, RouterBench families), trains on the rest and scores
the held-out rows per source and pooled, with the router, the random and prompt-length
routers and the family oracle (router/train.py `validate`), and the budget head on the
held-out chains (router/budget.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from switchyard.router.data import RouterExample
from switchyard.router.train import TrainConfig, train

METRICS = ("apgr", "cpt50", "cpt80")
BUDGET_METRICS = ("spearman", "tokens_saved", "coverage_learned", "coverage_fixed")


@dataclass(frozen=True)
class CrossValidation:
    seeds: list[int]
    routing: dict[str, dict[str, dict[str, Any]]]  # source -> router -> metric -> summary
    budget: dict[str, dict[str, Any]]  # source -> budget metric -> summary


def _summary(values: list[float]) -> dict[str, Any]:
    finite = [v for v in values if np.isfinite(v)] or [float("nan")]  # NaN: undefined APGR
    return {"mean": float(np.mean(finite)), "std": float(np.std(finite)), "runs": values}


def cross_validate(
    examples: Sequence[RouterExample], cfg: TrainConfig, features: np.ndarray,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
) -> CrossValidation:
    """Mean and spread over the seeds' left-out-family splits."""
    runs: dict[str, dict[str, dict[str, list[float]]]] = {}
    budget_runs: dict[str, dict[str, list[float]]] = {}
    for seed in seeds:
        result = train(examples, replace(cfg, seed=seed, progress=False, refit_all=False),
                       data_hash="crossval", features=features)
        for source, routers in result.validation.items():
            for name, m in routers.items():
                slot = runs.setdefault(source, {}).setdefault(name, {k: [] for k in METRICS})
                for k in METRICS:
                    slot[k].append(float(m[k]))
        for source, m in result.budget.items():
            slot = budget_runs.setdefault(source, {k: [] for k in BUDGET_METRICS})
            for k in BUDGET_METRICS:
                slot[k].append(float(m[k]))
    return CrossValidation(
        seeds=list(seeds),
        routing={source: {name: {k: _summary(v) for k, v in ms.items()}
                          for name, ms in routers.items()}
                 for source, routers in runs.items()},
        budget={source: {k: _summary(v) for k, v in ms.items()}
                for source, ms in budget_runs.items()},
    )
