"""Training the router: featurise, fit the MLP (CUDA + autocast when present), validate on
held-out families against the random and prompt-length routers, calibrate, save.

Seeded and reproducible: one seed drives the split, the initial weights and the batch order.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from router.calibrate import score_quantiles, threshold_for_share
from router.checkpoint import Calibration, CheckpointConfig
from router.data import RouterExample, split_families
from router.decision import RouteRequest
from router.features import FeatureSpec, featurize
from router.knobs import DEFAULT_EFFORT_CUTS
from router.metrics import evaluate_scores, prompt_length_scores, random_scores

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 40
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-2
    hidden: int = 128
    dropout: float = 0.2
    grade_loss_weight: float = 0.5
    seed: int = 0
    holdout_share: float = 0.2
    default_thinking_share: float = 0.5
    features: FeatureSpec = field(default_factory=FeatureSpec)
    device: str | None = None  # None: CUDA when available, else CPU
    progress: bool = True


@dataclass
class TrainResult:
    model: Any
    config: CheckpointConfig
    validation: dict[str, dict[str, dict[str, Any]]]  # source -> router -> metrics
    samples_per_s: float
    device: str


def requests_for(examples: Sequence[RouterExample]) -> list[RouteRequest]:
    from retrieval.chat import Message

    return [RouteRequest(messages=(Message(role="user", content=e.text),)) for e in examples]


def featurize_examples(examples: Sequence[RouterExample], spec: FeatureSpec) -> np.ndarray:
    return featurize(requests_for(examples), spec)


def _seed_everything(seed: int) -> None:
    import torch

    np.random.seed(seed)
    torch.manual_seed(seed)


def fit(
    x: np.ndarray, hard: np.ndarray, grade: np.ndarray, grade_weight: np.ndarray,
    cfg: TrainConfig,
) -> tuple[Any, float, str]:
    """(model in eval mode, training samples/s, device) for features `x` and targets."""
    import torch
    from torch.nn.functional import binary_cross_entropy_with_logits as bce
    from tqdm.auto import tqdm

    from router.model import build_model

    _seed_everything(cfg.seed)
    device = cfg.device or ("cuda" if torch.cuda.is_available() else "cpu")
    spec = cfg.features
    model = build_model(384, len(spec.structural), cfg.hidden, cfg.dropout)
    struct = torch.from_numpy(x[:, 384:])
    model.set_normalisation(struct.mean(0), struct.std(0))
    model.to(device).train()
    tensors = [torch.from_numpy(np.asarray(a, dtype=np.float32)).to(device)
               for a in (x, hard, grade, grade_weight)]
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    n = len(x)
    start = time.monotonic()
    for _ in tqdm(range(cfg.epochs), desc="train-router", disable=not cfg.progress):
        for idx in torch.randperm(n, generator=gen).split(cfg.batch_size):
            xb, hb, gb, wb = (t[idx.to(device)] for t in tensors)
            # bf16 autocast on GPU only: on CPU it is slower than fp32 for a model this small.
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16,
                                enabled=device.startswith("cuda")):
                hard_logit, grade_logit = model(xb)
            loss = bce(hard_logit.float(), hb) + cfg.grade_loss_weight * (
                (bce(grade_logit.float(), gb, reduction="none") * wb).sum() / wb.sum().clamp(min=1)
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    rate = n * cfg.epochs / max(time.monotonic() - start, 1e-9)
    return model.cpu().eval(), rate, device


def predict(model: Any, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import torch

    p, g = model.predict(torch.from_numpy(np.asarray(x, dtype=np.float32)))
    return p.double().numpy(), g.double().numpy()


def validate(
    examples: Sequence[RouterExample], scores: np.ndarray, seed: int
) -> dict[str, dict[str, dict[str, Any]]]:
    """Per source: RouteLLM metrics of the router, the random and the prompt-length router."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for source in sorted({e.source for e in examples}):
        rows = [i for i, e in enumerate(examples) if e.source == source]
        weak = np.array([examples[i].weak for i in rows])
        strong = np.array([examples[i].strong for i in rows])
        candidates = {
            "mlp": scores[rows],
            "random": random_scores(len(rows), seed),
            "prompt_length": prompt_length_scores([examples[i].text for i in rows]),
        }
        out[source] = {name: evaluate_scores(s, weak, strong).to_dict()
                       for name, s in candidates.items()}
        out[source]["mlp"]["families"] = sorted({examples[i].family for i in rows})
    return out


def _effort_cuts(grades: np.ndarray) -> list[float]:
    """Grade quartiles on held data, so thinking requests spread over the four efforts."""
    if grades.size < 8:
        return list(DEFAULT_EFFORT_CUTS)
    return [float(v) for v in np.quantile(grades, [0.25, 0.5, 0.75])]


def train(
    examples: Sequence[RouterExample], cfg: TrainConfig, *, data_hash: str,
    features: np.ndarray | None = None,
) -> TrainResult:
    """Train on all but the held-out families; validate, calibrate and describe the result."""
    examples = list(examples)
    x = featurize_examples(examples, cfg.features) if features is None else features
    train_idx, val_idx = split_families(examples, cfg.holdout_share, cfg.seed)
    if len(train_idx) == 0 or len(val_idx) == 0:
        raise ValueError("need at least two families per source to hold some out")
    targets = [np.array([getattr(examples[i], f) for i in train_idx])
               for f in ("hard", "grade", "grade_weight")]
    model, rate, device = fit(x[train_idx], *targets, cfg)
    val_examples = [examples[i] for i in val_idx]
    p_val, g_val = predict(model, x[val_idx])
    validation = validate(val_examples, p_val, cfg.seed)
    threshold = threshold_for_share(p_val, cfg.default_thinking_share)
    thinking = p_val >= threshold
    calibration = Calibration(
        score_quantiles=score_quantiles(p_val),
        default_thinking_share=cfg.default_thinking_share,
        threshold=threshold,
        effort_cuts=_effort_cuts(g_val[thinking] if thinking.any() else g_val),
    )
    version = hashlib.sha256(f"{data_hash}:{cfg.seed}:{cfg.epochs}".encode()).hexdigest()[:10]
    config = CheckpointConfig(
        policy_version=f"mlp-{version}",
        features=cfg.features,
        model={"embed_dim": 384, "n_structural": len(cfg.features.structural),
               "hidden": cfg.hidden, "dropout": cfg.dropout},
        calibration=calibration,
        training={
            "data_hash": data_hash, "rows": len(train_idx), "validation_rows": len(val_idx),
            "seed": cfg.seed, "epochs": cfg.epochs, "device": device,
            "config": {k: v for k, v in asdict(cfg).items() if k != "features"},
        },
        validation=validation,
    )
    return TrainResult(model=model, config=config, validation=validation,
                       samples_per_s=rate, device=device)
