"""The escalation scorer: p_escalate from a draft's verifiable signals, by a small logistic
model that serves with numpy.

p_escalate estimates P(the draft is wrong and the thinking model is right). The weights of
the signals seen in training (`draft_signals.LEARNED`) are fitted offline (`fit`, run by
bench/cascade.py on the MMLU-Pro drafts); the signals no training draft has (`FIXED`: a
truncated draft, invalid tool arguments or JSON, a failed verifier, low logprobs) carry
hand-set logit weights, stored in the same checkpoint. The threshold is the score quantile
that escalates a target share of drafts, as router/calibrate.py does for p_hard.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from switchyard.router.calibrate import (
    score_quantiles,
    threshold_for_share,
    threshold_from_quantiles,
)
from switchyard.router.draft_signals import (
    FIXED,
    LEARNED,
    SIGNALS,
    DraftInput,
    Signals,
    draft_signals,
)
from switchyard.router.errors import CheckpointError

FORMAT_VERSION = 1
DEFAULT_CHECKPOINT = Path(__file__).parent / "checkpoints" / "escalation.json"
# Logit added per unit of a FIXED signal: each is a verified failure, enough on its own to
# put a draft above any calibrated threshold (the learned logits span about -5..+4).
# arith_wrong (per wrong statement, up to 3) is moderate: fitted on the MMLU-Pro drafts it
# gets ~0, since a wrong step there rarely changes which option the model picks (it takes
# the closest), while in free-answer math the wrong step is the answer; the hand
# check on held-out math (missing answer, wrong annotation, hedges) scored APGR 0.679.
FIXED_WEIGHTS = {"arith_wrong": 1.5, "truncated": 8.0, "tool_args_invalid": 12.0,
                 "json_invalid": 8.0, "verifier_failed": 8.0, "low_logprob": 4.0}
_LEARNED_AT = [SIGNALS.index(n) for n in LEARNED]
_FIXED_AT = [SIGNALS.index(n) for n in FIXED]


@dataclass(frozen=True)
class EscalationModel:
    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    fixed: dict[str, float]
    quantiles: list[float] = field(default_factory=list)
    default_share: float = 0.3
    info: dict[str, Any] = field(default_factory=dict)  # data hash, metrics, when trained

    @property
    def version(self) -> str:
        blob = json.dumps([self.weights.tolist(), self.bias, self.fixed]).encode()
        return "esc-" + hashlib.blake2b(blob, digest_size=4).hexdigest()

    def logits(self, rows: np.ndarray) -> np.ndarray:
        """Logits for rows of signal values, columns in `SIGNALS` order."""
        learned = ((rows[:, _LEARNED_AT] - self.mean) / self.scale) @ self.weights
        fixed = rows[:, _FIXED_AT] @ np.array([self.fixed[n] for n in FIXED])
        return learned + fixed + self.bias

    def score_signals(self, signals: Signals) -> float:
        return _sigmoid(float(self.logits(np.array([signals.vector()]))[0]))

    def threshold(self, share: float | None = None) -> float:
        return threshold_from_quantiles(self.quantiles, self.default_share if share is None
                                        else share)


@dataclass(frozen=True, slots=True)
class Escalation:
    """The scorer's verdict on one draft."""

    p_escalate: float
    threshold: float
    escalate: bool
    failed: tuple[str, ...]  # verified failures found in the draft
    final_answer: str | None
    policy_version: str


class ShareCalibration:
    """The threshold that escalated `share` of one draft model's recent drafts.

    The checkpoint's table is calibrated on its training drafts, pooled over two draft
    models; a deployment's own drafts score higher or lower (left out, 42% and 15% for a
    30% target), so after `warmup` drafts the quantile of its last `window` scores wins."""

    def __init__(self, share: float, fallback: float, *, window: int = 1000,
                 warmup: int = 100) -> None:
        self.share, self.fallback, self.warmup = share, fallback, warmup
        self._scores: deque[float] = deque(maxlen=window)
        self._cached: float | None = None

    def observe(self, p: float) -> None:
        self._scores.append(p)
        self._cached = None

    @property
    def threshold(self) -> float:
        if len(self._scores) < self.warmup:
            return self.fallback
        if self._cached is None:
            self._cached = threshold_for_share(np.fromiter(self._scores, float), self.share)
        return self._cached


class EscalationScorer:
    """Loads a checkpoint once; `decide` scores a draft against the threshold calibrated
    to the target share, per draft model (`key`) once it has seen enough of its drafts."""

    def __init__(self, model: EscalationModel, share: float | None = None) -> None:
        self.model = model
        self.share = model.default_share if share is None else share
        self.threshold = model.threshold(self.share)
        self._by_key: dict[str, ShareCalibration] = {}

    @classmethod
    def load(cls, path: Path | None = None, share: float | None = None) -> EscalationScorer:
        return cls(load_model(path or DEFAULT_CHECKPOINT), share)

    def score(self, x: DraftInput) -> float:
        return self.model.score_signals(draft_signals(x))

    def decide(self, x: DraftInput, *, tool_calls_args_only: bool = True,
               key: str | None = None) -> Escalation:
        """Agent turns whose draft is a tool call escalate on invalid arguments only, unless
        `tool_calls_args_only` is False (then they are scored like any draft)."""
        signals = draft_signals(x)
        p = self.model.score_signals(signals)
        threshold = self.threshold
        if key is not None:
            calibration = self._by_key.setdefault(key, ShareCalibration(self.share,
                                                                        self.threshold))
            threshold = calibration.threshold
        if x.tool_calls and tool_calls_args_only:
            escalate = signals.values["tool_args_invalid"] > 0
        else:
            escalate = p >= threshold
            if key is not None:
                calibration.observe(p)
        return Escalation(p, threshold, escalate, tuple(signals.failed()),
                          signals.final_answer, self.model.version)


def fit(rows: np.ndarray, labels: np.ndarray, groups: np.ndarray | None = None, *,
        l2: float = 1.0, iterations: int = 50
        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """L2-regularised logistic regression by Newton's method on standardised columns, with
    one intercept per group (the draft model). Returns (mean, scale, weights, bias).

    Per-group intercepts keep the slopes within a model: pooled, a weak model's short drafts
    (44% escalations) against a strong model's long ones (18%) taught "short is bad", while
    within each model longer drafts are the wrong ones. A deployment is scored alone, so the
    served bias is the size-weighted mean of the group intercepts (ranking ignores it)."""
    groups = np.zeros(len(rows), dtype=int) if groups is None else groups
    names, index = np.unique(groups, return_inverse=True)
    mean = rows.mean(axis=0)
    scale = rows.std(axis=0)
    scale[scale == 0] = 1.0
    x = np.hstack([(rows - mean) / scale, np.eye(len(names))[index]])
    y = labels.astype(np.float64)
    beta = np.zeros(x.shape[1])
    penalty = np.full(x.shape[1], l2)
    penalty[rows.shape[1]:] = 0.0  # intercepts are not shrunk
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(x @ beta)))
        grad = x.T @ (p - y) + penalty * beta
        hessian = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty)
        step = np.linalg.solve(hessian, grad)
        beta -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    k = rows.shape[1]
    bias = float(beta[k:] @ np.bincount(index) / len(rows))
    return mean, scale, beta[:k], bias


def build_model(rows: np.ndarray, labels: np.ndarray, groups: np.ndarray | None = None, *,
                calibrate_on: np.ndarray | None = None, l2: float = 1.0,
                default_share: float = 0.3, info: dict[str, Any] | None = None
                ) -> EscalationModel:
    """Fit the LEARNED columns of `rows` (all `SIGNALS`); the quantile table comes from the
    scores of `calibrate_on` (default: the same rows), the drafts as the server sees them."""
    mean, scale, weights, bias = fit(rows[:, _LEARNED_AT], labels, groups, l2=l2)
    model = EscalationModel(LEARNED, mean, scale, weights, bias, dict(FIXED_WEIGHTS),
                            default_share=default_share, info=info or {})
    scores = 1.0 / (1.0 + np.exp(-model.logits(rows if calibrate_on is None else calibrate_on)))
    return replace(model, quantiles=score_quantiles(scores))


def save_model(model: EscalationModel, path: Path) -> Path:
    payload = {
        "format_version": FORMAT_VERSION, "policy_version": model.version,
        "features": list(model.features), "mean": model.mean.tolist(),
        "scale": model.scale.tolist(), "weights": model.weights.tolist(), "bias": model.bias,
        "fixed": model.fixed, "default_share": model.default_share,
        "quantiles": model.quantiles, "info": model.info,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    return path


def load_model(path: Path) -> EscalationModel:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CheckpointError(f"cannot read the escalation checkpoint {path}: "
                              f"{exc.strerror}", str(path)) from None
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"escalation checkpoint {path} is not JSON: {exc.msg}",
                              str(path)) from None
    if not isinstance(raw, dict) or raw.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"escalation checkpoint {path} is not format version "
                              f"{FORMAT_VERSION}; retrain it with bench/cascade.py --write",
                              str(path))
    features = tuple(raw.get("features", ()))
    fixed = raw.get("fixed", {})
    if features != LEARNED or set(FIXED) - set(fixed):
        raise CheckpointError(f"escalation checkpoint {path} names signals this version "
                              "does not compute; retrain it", str(path))
    return EscalationModel(features, np.array(raw["mean"]), np.array(raw["scale"]),
                           np.array(raw["weights"]), float(raw["bias"]),
                           {k: float(v) for k, v in fixed.items()}, list(raw["quantiles"]),
                           float(raw["default_share"]), dict(raw.get("info", {})))


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
