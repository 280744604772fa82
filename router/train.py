"""Training the router: featurise, fit (CUDA + bf16 autocast when present), validate on
held-out families against the random, prompt-length and family-oracle routers, calibrate.

Rows are weighted so each source counts alike (RouteLLM's MMLU has 14k rows, RouterBench 3k)
and the two real thinking-on/off pairs (MMLU-Pro's thinking model, BBH's chain of thought)
count double: that is the decision the router makes. The second head learns the reasoning
budget: where a source records the length of a correct chain (BBH, MMLU-Pro), its target is
that length's percentile within the source; elsewhere the difficulty grade stands in at a
small weight.

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
from switchyard.router.budget import budget_targets, evaluate_budget
from switchyard.router.calibrate import score_quantiles, threshold_for_share
from switchyard.router.checkpoint import Calibration, CheckpointConfig
from switchyard.router.data import RouterExample, split_families
from switchyard.router.decision import RouteRequest
from switchyard.router.eval_metrics import (
    evaluate_scores,
    family_oracle_scores,
    prompt_length_scores,
    random_scores,
)
from switchyard.router.features import WITH_REASONING, FeatureSpec, featurize
from switchyard.router.knobs import DEFAULT_EFFORT_CUTS

logger = logging.getLogger(__name__)

THINKING_PAIRS = ("mmlu_pro", "bbh")  # real thinking on/off outcomes: counted double
LENGTH_FEATURE = "log_user_chars"
GRADE_FALLBACK_WEIGHT = 0.1  # rows without a chain length: the grade stands in, lightly
POOLED = "all"  # the validation entry over every source's held-out rows together


@dataclass(frozen=True)
class TrainConfig:
    hidden: int = 0  # 0: linear heads fitted by ridge (the default); > 0: an MLP
    ridge_alpha: float = 100.0
    # Linear heads only: add this many score standard deviations per standard deviation of
    # log prompt length. Over 5 left-out-family splits 0.5 lifted MMLU 0.552 -> 0.562 and
    # DC-Router 1.243 -> 1.271 APGR (prompt length alone: 0.556 / 1.252) at a BBH cost
    # (0.584 -> 0.555, still far above length's 0.486): a monotone nudge towards the one
    # signal every held-out family shares.
    length_prior: float = 0.5
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
    balance_sources: bool = True
    # After validating on the split, refit on every family and ship that model (the
    # checkpoint keeps the split's metrics): a router meets families it never saw, and
    # more families seen is the one lever the left-out figures reward.
    refit_all: bool = False
    device: str | None = None  # None: CUDA when available, else CPU
    progress: bool = True


@dataclass
class TrainResult:
    model: Any
    config: CheckpointConfig
    validation: dict[str, dict[str, dict[str, Any]]]  # source -> router -> metrics
    budget: dict[str, dict[str, Any]]  # source -> budget metrics on held-out families
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


def pick_device(requested: str | None, cuda_available: bool) -> str:
    """The training device: the one asked for, else CUDA when present, else CPU."""
    if requested:
        if requested.startswith("cuda") and not cuda_available:
            raise ValueError(f"device {requested!r} asked for but CUDA is not available")
        return requested
    return "cuda" if cuda_available else "cpu"


def fit(
    x: np.ndarray, hard: np.ndarray, grade: np.ndarray, grade_weight: np.ndarray,
    cfg: TrainConfig, hard_weight: np.ndarray | None = None,
) -> tuple[Any, float, str]:
    """(model in eval mode, training samples/s, device) for features `x` and targets."""
    import torch
    from switchyard.router.model import build_model

    _seed_everything(cfg.seed)
    device = pick_device(cfg.device, torch.cuda.is_available())
    embed_dim = cfg.features.embed_dim
    model = build_model(embed_dim, x.shape[1] - embed_dim, cfg.hidden, cfg.dropout)
    struct = torch.from_numpy(np.asarray(x[:, embed_dim:], dtype=np.float32))
    model.set_normalisation(struct.mean(0), struct.std(0))
    model.to(device)
    if hard_weight is None:
        hard_weight = np.ones(len(x))
    tensors = [torch.from_numpy(np.asarray(a, dtype=np.float32)).to(device)
               for a in (x, hard, grade, grade_weight, hard_weight)]
    start = time.monotonic()
    if cfg.hidden > 0:
        _fit_mlp(model, tensors, cfg, device)
    else:
        _fit_ridge(model, tensors, cfg)
        _add_length_prior(model, tensors[0], cfg)
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

    x, hard, grade, weight, hard_weight = tensors
    with torch.no_grad():
        z = model.inputs(x).double()
        a = torch.cat([z, torch.ones(len(z), 1, dtype=z.dtype, device=z.device)], dim=1)
        eye = torch.eye(a.shape[1], dtype=z.dtype, device=z.device) * cfg.ridge_alpha
        eye[-1, -1] = 0.0  # the intercept is not shrunk
        for col, (y, w) in enumerate(tqdm([(hard, hard_weight), (grade, weight)],
                                          desc="train-router", disable=not cfg.progress)):
            aw = a * w.double()[:, None]
            beta = torch.linalg.solve(a.T @ aw + eye, aw.T @ y.double())
            model.heads.weight[col].copy_(beta[:-1].float())
            model.heads.bias[col] = beta[-1].float()


def _add_length_prior(model: Any, x: Any, cfg: TrainConfig) -> None:
    """Raise the p_hard head's weight on standardised log prompt length (see `length_prior`)."""
    import torch

    if cfg.length_prior == 0 or LENGTH_FEATURE not in cfg.features.structural:
        return
    col = cfg.features.embed_dim + cfg.features.structural.index(LENGTH_FEATURE)
    with torch.no_grad():
        spread = model(x)[0].double().std()
        model.heads.weight[0, col] += float(cfg.length_prior * spread)


def _fit_mlp(model: Any, tensors: list[Any], cfg: TrainConfig, device: str) -> None:
    import torch
    from torch.nn.functional import binary_cross_entropy_with_logits as bce
    from tqdm.auto import tqdm

    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    for _ in tqdm(range(cfg.epochs), desc="train-router", disable=not cfg.progress):
        for idx in torch.randperm(len(tensors[0]), generator=gen).split(cfg.batch_size):
            xb, hb, gb, wb, hw = (t[idx.to(device)] for t in tensors)
            # bf16 autocast on GPU only: on CPU it is slower than fp32 for a model this small.
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16,
                                enabled=device.startswith("cuda")):
                hard_logit, grade_logit = model(xb)
            loss = (bce(hard_logit.float(), hb, reduction="none") * hw).sum() / hw.sum().clamp(
                min=1) + cfg.grade_loss_weight * (
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
    """Per source and pooled over all of them ("all"): RouteLLM metrics of the router, the
    random and prompt-length routers, and the family oracle (each held-out family's true
    mean gain: the ceiling for a router that cannot tell requests of one family apart)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    sources = sorted({e.source for e in examples})
    groups = [(s, [i for i, e in enumerate(examples) if e.source == s]) for s in sources]
    if len(sources) > 1:
        groups.append((POOLED, list(range(len(examples)))))
    for name, rows in groups:
        weak = np.array([examples[i].weak for i in rows])
        strong = np.array([examples[i].strong for i in rows])
        families = [f"{examples[i].source}/{examples[i].family}" for i in rows]
        candidates = {
            "mlp": scores[rows],
            "random": random_scores(len(rows), seed),
            "prompt_length": prompt_length_scores([examples[i].text for i in rows]),
            "family_oracle": family_oracle_scores(families, weak, strong),
        }
        out[name] = {router: evaluate_scores(s, weak, strong).to_dict()
                     for router, s in candidates.items()}
        out[name]["mlp"]["families"] = sorted(set(families))
    return out


def source_weights(examples: Sequence[RouterExample], balance: bool) -> np.ndarray:
    """Per-row weights for the p_hard head: each source's rows sum to the same total
    (thinking pairs to twice that); mean weight 1."""
    if not balance:
        return np.ones(len(examples))
    sources = [e.source for e in examples]
    counts = {s: sources.count(s) for s in set(sources)}
    w = np.array([(2.0 if s in THINKING_PAIRS else 1.0) / counts[s] for s in sources])
    return w * len(w) / w.sum()


def _effort_cuts(grades: np.ndarray) -> list[float]:
    """Grade quartiles on held data, so thinking requests spread over the four efforts."""
    if grades.size < 8:
        return list(DEFAULT_EFFORT_CUTS)
    return [float(v) for v in np.quantile(grades, [0.25, 0.5, 0.75])]


def _fit_rows(x: np.ndarray, rows: Sequence[RouterExample],
              cfg: TrainConfig) -> tuple[Any, float, str]:
    hard = np.array([e.hard for e in rows])
    grade, grade_weight = budget_targets(rows, GRADE_FALLBACK_WEIGHT)
    return fit(x, hard, grade, grade_weight, cfg,
               hard_weight=source_weights(rows, cfg.balance_sources))


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
    train_examples = [examples[i] for i in train_idx]
    model, rate, device = _fit_rows(x[train_idx], train_examples, cfg)
    val_examples = [examples[i] for i in val_idx]
    p_val, g_val = predict(model, x[val_idx])
    validation = validate(val_examples, p_val, cfg.seed)
    budget = evaluate_budget(train_examples, predict(model, x[train_idx])[1], val_examples,
                             g_val)
    if cfg.refit_all:
        model, rate, device = _fit_rows(x, examples, cfg)
        p_val, g_val = predict(model, x[val_idx])  # the shipped model's score distribution
    threshold = threshold_for_share(p_val, cfg.default_thinking_share)
    thinking = p_val >= threshold
    calibration = Calibration(
        score_quantiles=score_quantiles(p_val),
        default_thinking_share=cfg.default_thinking_share,
        threshold=threshold,
        effort_cuts=_effort_cuts(g_val[thinking] if thinking.any() else g_val),
    )
    # Feature names enter the version only when not the default, so old versions reproduce.
    names = ("" if cfg.features.structural == WITH_REASONING
             else ":" + ",".join(cfg.features.structural))
    version = hashlib.sha256(f"{data_hash}:{cfg.seed}:{cfg.hidden}:{cfg.ridge_alpha}:"
                             f"{cfg.epochs}:{cfg.features.encoder}:{cfg.balance_sources}:"
                             f"{cfg.length_prior}:{cfg.refit_all}"
                             f"{names}".encode()).hexdigest()[:10]
    config = CheckpointConfig(
        policy_version=f"mlp-{version}",
        features=cfg.features,
        model={"embed_dim": cfg.features.embed_dim,
               "n_structural": len(cfg.features.structural),
               "hidden": cfg.hidden, "dropout": cfg.dropout},
        calibration=calibration,
        training={
            "data_hash": data_hash, "validation_rows": len(val_idx),
            "rows": len(examples) if cfg.refit_all else len(train_idx),
            "seed": cfg.seed, "epochs": cfg.epochs, "device": device,
            "config": {k: v for k, v in asdict(cfg).items() if k != "features"},
            "budget_left_out": budget,
        },
        validation=validation,
    )
    return TrainResult(model=model, config=config, validation=validation, budget=budget,
                       samples_per_s=rate, device=device)
