"""Training the router: featurise, fit the MLP (CUDA + autocast when present), validate on
held-out families against the random and prompt-length routers, calibrate, save.

Seeded and reproducible: one seed drives the split, the initial weights and the batch order.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from switchyard.router.calibrate import score_quantiles, threshold_for_share
from switchyard.router.checkpoint import Calibration, CheckpointConfig
from switchyard.router.data import RouterExample, split_families
from switchyard.router.decision import RouteRequest
from switchyard.router.eval_metrics import evaluate_scores, prompt_length_scores, random_scores
from switchyard.router.features import EMBED_DIM, STRUCTURAL, FeatureSpec, featurize
from switchyard.router.knobs import DEFAULT_EFFORT_CUTS

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    hidden: int = 0  # 0: linear heads fitted by ridge (the default); > 0: an MLP
    ridge_alpha: float = 100.0
    epochs: int = 40  # MLP only, like the four below
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-2
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
    from switchyard.core.messages import Message

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
    from switchyard.router.model import build_model

    _seed_everything(cfg.seed)
    device = cfg.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = build_model(EMBED_DIM, x.shape[1] - EMBED_DIM, cfg.hidden, cfg.dropout)
    struct = torch.from_numpy(np.asarray(x[:, EMBED_DIM:], dtype=np.float32))
    model.set_normalisation(struct.mean(0), struct.std(0))
    model.to(device)
    tensors = [torch.from_numpy(np.asarray(a, dtype=np.float32)).to(device)
               for a in (x, hard, grade, grade_weight)]
    start = time.monotonic()
    if cfg.hidden > 0:
        _fit_mlp(model, tensors, cfg, device)
    else:
        _fit_ridge(model, tensors, cfg)
    _fit_platt(model, tensors[0], tensors[1])
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    passes = cfg.epochs if cfg.hidden > 0 else 1
    rate = len(x) * passes / max(time.monotonic() - start, 1e-9)
    return model.cpu().eval(), rate, device


def _fit_ridge(model: Any, tensors: list[Any], cfg: TrainConfig) -> None:
    """Closed-form ridge for both linear heads, in float64 on the model's device.

    No autocast here: a normal-equations solve in bf16 loses the small embedding weights.
    """
    import torch
    from tqdm.auto import tqdm

    x, hard, grade, weight = tensors
    with torch.no_grad():
        z = model.inputs(x).double()
        a = torch.cat([z, torch.ones(len(z), 1, dtype=z.dtype, device=z.device)], dim=1)
        eye = torch.eye(a.shape[1], dtype=z.dtype, device=z.device) * cfg.ridge_alpha
        eye[-1, -1] = 0.0  # the intercept is not shrunk
        for col, (y, w) in enumerate(tqdm([(hard, torch.ones_like(hard)), (grade, weight)],
                                          desc="train-router", disable=not cfg.progress)):
            aw = a * w.double()[:, None]
            beta = torch.linalg.solve(a.T @ aw + eye, aw.T @ y.double())
            model.heads.weight[col].copy_(beta[:-1].float())
            model.heads.bias[col] = beta[-1].float()


def _fit_mlp(model: Any, tensors: list[Any], cfg: TrainConfig, device: str) -> None:
    import torch
    from torch.nn.functional import binary_cross_entropy_with_logits as bce
    from tqdm.auto import tqdm

    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    for _ in tqdm(range(cfg.epochs), desc="train-router", disable=not cfg.progress):
        for idx in torch.randperm(len(tensors[0]), generator=gen).split(cfg.batch_size):
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
    model.eval()


def _fit_platt(model: Any, x: Any, hard: Any, steps: int = 50) -> None:
    """Fit sigmoid(a * raw + b) to the p_hard targets (Newton steps on the mean BCE).

    Monotone in the raw score, so rankings and metrics are unchanged; p_hard becomes a
    probability a threshold can be read against.
    """
    import torch

    with torch.no_grad():
        raw = model(x)[0].double()
        y = hard.double()
        a, b = 1.0, 0.0
        for _ in range(steps):
            p = torch.sigmoid(a * raw + b)
            r, w = p - y, (p * (1 - p)).clamp(min=1e-9)
            grad = torch.stack([(r * raw).mean(), r.mean()])
            hess = torch.stack([torch.stack([(w * raw * raw).mean(), (w * raw).mean()]),
                                torch.stack([(w * raw).mean(), w.mean()])])
            step = torch.linalg.solve(hess + 1e-9 * torch.eye(2, dtype=hess.dtype,
                                                              device=hess.device), grad)
            a, b = a - float(step[0]), b - float(step[1])
        if not (math.isfinite(a) and math.isfinite(b) and a > 0):
            a, b = 1.0, 0.0  # degenerate targets: keep the raw score rather than flip it
        model.hard_scale.fill_(a)
        model.hard_bias.fill_(b)


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
    hard, grade, grade_weight = (np.array([getattr(examples[i], f) for i in train_idx])
                                 for f in ("hard", "grade", "grade_weight"))
    model, rate, device = fit(x[train_idx], hard, grade, grade_weight, cfg)
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
    # Feature names enter the version only when not the default, so old versions reproduce.
    names = "" if cfg.features.structural == STRUCTURAL else ":" + ",".join(cfg.features.structural)
    version = hashlib.sha256(f"{data_hash}:{cfg.seed}:{cfg.hidden}:{cfg.ridge_alpha}:"
                             f"{cfg.epochs}{names}".encode()).hexdigest()[:10]
    config = CheckpointConfig(
        policy_version=f"mlp-{version}",
        features=cfg.features,
        model={"embed_dim": EMBED_DIM, "n_structural": len(cfg.features.structural),
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
