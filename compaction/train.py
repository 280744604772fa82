"""Train the span scorer on real trajectories (PyTorch; CUDA when present, else CPU).

Examples: at every assistant step t of a training trajectory, each droppable term of
messages[:t] is a row (features of that history) labelled by whether the next step uses it. Whole trajectory families are held out for validation.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from switchyard.compaction.features import FEATURE_VERSION, N_FEATURES, build_table
from switchyard.compaction.labels import label_terms
from switchyard.compaction.options import CompactionOptions
from switchyard.compaction.scorer import CHECKPOINT_VERSION, DEFAULT_CHECKPOINT, Scorer, build_model
from switchyard.compaction.segment import segment
from switchyard.compaction.trajectories import Trajectory, cut_points, is_held_out, load_all
from switchyard.core.tokens import counter_for


@dataclass
class TrainConfig:
    epochs: int = 30
    hidden: int = 32
    lr: float = 3e-3
    batch_size: int = 512
    weight_decay: float = 1e-4
    seed: int = 0
    horizon: int = 1  # the evidence metric scores the next step


def examples(trajs: Sequence[Trajectory], horizon: int) -> tuple[np.ndarray, np.ndarray]:
    opts = CompactionOptions()
    counter = counter_for(None)
    xs, ys = [], []
    for t in trajs:
        for cut in cut_points(t.messages):
            seg = segment(t.messages[:cut], counter, chunk_max_tokens=opts.chunk_max_tokens,
                          keep_last_groups=opts.keep_last_groups)
            table = build_table(seg)
            if not table.terms:
                continue
            xs.append(table.x)
            ys.append(label_terms(table, t.messages[cut:], horizon))
    if not xs:
        return np.zeros((0, N_FEATURES), np.float32), np.zeros(0, np.float32)
    return np.concatenate(xs), np.concatenate(ys)


def data_hash(trajs: Sequence[Trajectory]) -> str:
    h = hashlib.sha256()
    for t in trajs:
        h.update(t.name.encode())
        for m in t.messages:
            h.update(m.text().encode())
    return h.hexdigest()[:16]


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC by the rank-sum formula (ties averaged)."""
    pos = labels > 0.5
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if not n_pos or not n_neg:
        return float("nan")
    order = scores.argsort(kind="stable")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    for v in np.unique(scores[order]):  # average ranks of ties
        tie = scores == v
        if tie.sum() > 1:
            ranks[tie] = ranks[tie].mean()
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def fit(x: np.ndarray, y: np.ndarray, cfg: TrainConfig, progress: bool = True) -> Any:
    import torch
    from tqdm import tqdm

    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = build_model(N_FEATURES, cfg.hidden).to(device)
    pos = float(y.sum())
    weight = torch.tensor(max((len(y) - pos) / max(pos, 1.0), 1.0), device=device)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=weight)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    xt = torch.from_numpy(x).to(device)
    yt = torch.from_numpy(y).to(device)
    gen = torch.Generator().manual_seed(cfg.seed)
    for _ in tqdm(range(cfg.epochs), desc="train compactor", disable=not progress):
        model.train()
        for idx in torch.randperm(len(xt), generator=gen).split(cfg.batch_size):
            idx = idx.to(device)
            opt.zero_grad()
            loss_fn(model(xt[idx]), yt[idx]).backward()
            opt.step()
    return model.cpu().eval()


def train(
    out: Path | None = None, *, root: Path | None = None, cfg: TrainConfig | None = None,
    progress: bool = True,
) -> Scorer:
    """Train on the training families, validate on held-out ones, save the checkpoint."""
    cfg = cfg or TrainConfig()
    trajs = load_all(root)
    train_set = [t for t in trajs if not is_held_out(t)]
    val_set = [t for t in trajs if is_held_out(t)]
    x, y = examples(train_set, cfg.horizon)
    xv, yv = examples(val_set, cfg.horizon)
    model = fit(x, y, cfg, progress)
    scorer = Scorer.from_model(model, {})
    scorer.meta = {
        "version": CHECKPOINT_VERSION, "feature_version": FEATURE_VERSION,
        "input_dim": N_FEATURES, "hidden": cfg.hidden, "data_hash": data_hash(trajs),
        "config": vars(cfg),
        "metrics": {
            "train_rows": len(y), "val_rows": len(yv),
            "train_positive_share": round(float(y.mean()), 4) if len(y) else 0.0,
            "train_auc": round(auc(scorer.predict(x), y), 4),
            "val_auc": round(auc(scorer.predict(xv), yv), 4),
            "val_trajectories": len(val_set),
        },
    }
    scorer.save(Path(out or DEFAULT_CHECKPOINT))
    return scorer
