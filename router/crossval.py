"""Left-out-family validation over several seeds: mean and spread, not one lucky split.

Each seed holds out different whole families (MMLU subjects, DC-Router tasks), trains on
the rest and scores the held-out rows with the router, the random router and the
prompt-length router (router/train.py `validate`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from switchyard.router.data import RouterExample
from switchyard.router.train import TrainConfig, train

METRICS = ("apgr", "cpt50", "cpt80")


def cross_validate(
    examples: Sequence[RouterExample], cfg: TrainConfig, features: np.ndarray,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
) -> dict[str, dict[str, dict[str, Any]]]:
    """source -> router -> {metric: {"mean", "std", "runs"}} over the seeds' splits."""
    runs: dict[str, dict[str, dict[str, list[float]]]] = {}
    for seed in seeds:
        result = train(examples, replace(cfg, seed=seed, progress=False),
                       data_hash="crossval", features=features)
        for source, routers in result.validation.items():
            for name, m in routers.items():
                slot = runs.setdefault(source, {}).setdefault(name, {k: [] for k in METRICS})
                for k in METRICS:
                    slot[k].append(float(m[k]))
    return {
        source: {name: {k: {"mean": float(np.mean(v)), "std": float(np.std(v)), "runs": v}
                        for k, v in ms.items()}
                 for name, ms in routers.items()}
        for source, routers in runs.items()
    }
