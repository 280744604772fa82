"""Retraining the router on logged outcomes: `switchyard train-router --from-log`.

Only requests whose two arms both have an outcome (the served answer plus its shadow) give
an honest label, "the non-thinking answer fails where the thinking one succeeds", so only
those become examples. Outcomes are combined per request with the source weights of
core/trafficlog/outcomes.py (a verifier counts more than a user's thumbs-up). Sessions are the
families: whole sessions are held out, and the new model and the current checkpoint are
scored on exactly the same held rows before anything is written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from switchyard.core.messages import latest_user_text
from switchyard.core.trafficlog.outcomes import SOURCE_WEIGHTS
from switchyard.router.data import RouterExample, load_all, split_families
from switchyard.router.errors import RouterDataError
from switchyard.router.replay_data import Convert, Traffic, add_counts, iter_traffic
from switchyard.router.train import (
    TrainConfig,
    TrainResult,
    featurize_examples,
    train,
    validate,
)

LOG_SOURCE = "log"
MIN_PAIRED = 20  # fewer paired requests than this cannot hold out a session and learn


@dataclass
class LogRetraining:
    result: TrainResult
    current: dict[str, dict[str, dict[str, Any]]]  # the current checkpoint on the same rows
    paired: int  # logged requests with both arms' outcomes (the examples)
    skipped: dict[str, int] = field(default_factory=dict)


def examples_from_traffic(traffic: Traffic) -> tuple[list[RouterExample], dict[str, int]]:
    """One example per request with both arms graded (arm 0 non-thinking, 1 thinking)."""
    paired = ~np.isnan(traffic.quality).any(axis=1)
    rows = np.flatnonzero(paired)
    requests = traffic.requests(rows.tolist())
    examples = []
    for i, request in zip(rows, requests):
        weak, strong = (float(q) for q in traffic.quality[i])
        examples.append(RouterExample(
            text=latest_user_text(request.messages), source=LOG_SOURCE,
            family=traffic.sessions[i], weak=weak, strong=strong,
            hard=(1.0 - weak) * strong, grade=1.0 - weak, grade_weight=0.25))
    skipped = {**traffic.skipped, "unpaired": int((~paired).sum())}
    return examples, {k: v for k, v in skipped.items() if v}


def examples_from_batches(batches: Iterable[Traffic]
                          ) -> tuple[list[RouterExample], dict[str, int]]:
    """`examples_from_traffic` over batches (a Parquet log streams), in log order."""
    examples: list[RouterExample] = []
    positions: list[int] = []
    skipped: dict[str, int] = {}
    for batch in batches:
        found, why = examples_from_traffic(batch)
        examples += found
        add_counts(skipped, why)
        if batch.position is not None:  # Parquet batches come in request-id order
            positions += batch.position[~np.isnan(batch.quality).any(axis=1)].tolist()
    if positions:
        examples = [examples[i] for i in np.argsort(positions, kind="stable")]
    return examples, skipped


def retrain_from_log(
    log_path: Path,
    cfg: TrainConfig,
    *,
    checkpoint: Path | None = None,
    data_dir: Path | None = None,
    with_datasets: bool = True,
    source_weights: Mapping[str, float] = SOURCE_WEIGHTS,
    convert: Convert | None = None,
) -> LogRetraining:
    """Train on the log's paired outcomes (plus the shipped data sets unless told not to)
    and score the current checkpoint on the same held-out rows."""
    examples, skipped = examples_from_batches(iter_traffic(log_path, source_weights, convert))
    if len(examples) < MIN_PAIRED:
        raise RouterDataError(
            f"the log has {len(examples)} requests with outcomes for both models; retraining "
            f"needs at least {MIN_PAIRED}: turn on outcomes.shadow_share and verifiers (or "
            "post feedback for shadow pairs) and let traffic accumulate", "log")
    data_hash = _hash_examples(examples)
    if with_datasets:
        shipped, shipped_hash = load_all(data_dir)
        examples = shipped + examples
        data_hash = hashlib.sha256(f"{shipped_hash}:{data_hash}".encode()).hexdigest()[:16]
    features = featurize_examples(examples, cfg.features)
    result = train(examples, cfg, data_hash=data_hash, features=features)
    _, val_idx = split_families(examples, cfg.holdout_share, cfg.seed)  # train()'s split
    current = _score_current(checkpoint, [examples[i] for i in val_idx], cfg.seed)
    paired = sum(e.source == LOG_SOURCE for e in examples)
    return LogRetraining(result=result, current=current, paired=paired, skipped=skipped)


def _score_current(checkpoint: Path | None, held: list[RouterExample],
                   seed: int) -> dict[str, dict[str, dict[str, Any]]]:
    from switchyard.router.checkpoint import load_checkpoint

    model, config = load_checkpoint(checkpoint)
    p_hard, _ = model.predict(featurize_examples(held, config.features))
    return validate(held, p_hard, seed)


def _hash_examples(examples: list[RouterExample]) -> str:
    h = hashlib.sha256()
    for e in examples:
        h.update(f"{e.family}\x00{e.text}\x00{e.weak}\x00{e.strong}\x00".encode())
    return h.hexdigest()[:16]
