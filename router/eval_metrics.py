"""RouteLLM's router metrics, exactly as routellm/evals/evaluate.py computes them.

A router's scores give thresholds at the deciles (`pd.qcut(scores, 10, retbins=True)`);
each threshold routes rows with score >= t (> t for the last) to the strong model, giving
one (strong-call %, quality) point. Then:
- PGR(q) = (quality - weak) / (strong - weak);
- APGR = (AUC - weak AUC) / (strong AUC - weak AUC), trapezoids over call share in [0, 1];
- CPT(x%) = the strong-call % where quality reaches weak + x * (strong - weak), by np.interp.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

NUM_RESULTS = 10


@dataclass(frozen=True)
class RouterMetrics:
    apgr: float
    cpt50: float  # percent of strong calls
    cpt80: float
    auc: float
    weak_quality: float  # percent
    strong_quality: float
    strong_pct: list[float]
    quality: list[float]

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def quality_curve(
    scores: np.ndarray, weak: np.ndarray, strong: np.ndarray, num_results: int = NUM_RESULTS
) -> tuple[np.ndarray, np.ndarray]:
    """(strong-call %, quality %) per decile threshold, sorted by strong-call %."""
    scores = np.asarray(scores, dtype=np.float64)
    thresholds = np.quantile(scores, np.linspace(0.0, 1.0, num_results + 1))
    pct, qual = [], []
    for i, t in enumerate(thresholds):
        chosen = scores >= t if i != len(thresholds) - 1 else scores > t
        pct.append(chosen.mean() * 100)
        qual.append(np.where(chosen, strong, weak).mean() * 100)
    order = np.argsort(pct, kind="stable")
    return np.asarray(pct)[order], np.asarray(qual)[order]


def pgr(quality: float, weak_quality: float, strong_quality: float) -> float:
    return (quality - weak_quality) / (strong_quality - weak_quality)


def evaluate_scores(
    scores: Sequence[float] | np.ndarray,
    weak: Sequence[float] | np.ndarray,
    strong: Sequence[float] | np.ndarray,
    num_results: int = NUM_RESULTS,
) -> RouterMetrics:
    weak, strong = np.asarray(weak, dtype=np.float64), np.asarray(strong, dtype=np.float64)
    pct, qual = quality_curve(np.asarray(scores), weak, strong, num_results)
    weak_q, strong_q = weak.mean() * 100, strong.mean() * 100
    x = pct / 100
    auc = float(np.trapezoid(qual, x))
    weak_auc = float(np.trapezoid(np.full_like(x, weak_q), x))
    strong_auc = float(np.trapezoid(np.full_like(x, strong_q), x))
    cpt = [float(np.interp(p * (strong_q - weak_q) + weak_q, qual, pct)) for p in (0.5, 0.8)]
    return RouterMetrics(
        # Undefined where the two models score alike (a tiny held-out group): NaN, not a crash.
        apgr=(auc - weak_auc) / (strong_auc - weak_auc) if strong_auc != weak_auc else math.nan,
        cpt50=cpt[0], cpt80=cpt[1], auc=auc, weak_quality=float(weak_q),
        strong_quality=float(strong_q), strong_pct=[float(v) for v in pct],
        quality=[float(v) for v in qual],
    )


def random_scores(n: int, seed: int = 0) -> np.ndarray:
    """RouteLLM's random router: a uniform score per request."""
    return np.random.default_rng(seed).random(n)


def prompt_length_scores(texts: Sequence[str]) -> np.ndarray:
    """The length baseline: longer prompts are assumed harder."""
    return np.array([len(t) for t in texts], dtype=np.float64)


def family_oracle_scores(families: Sequence[str], weak: np.ndarray,
                         strong: np.ndarray) -> np.ndarray:
    """The ceiling of a router that knows each family's true mean gain and nothing finer."""
    names = np.asarray(families)
    gain = np.asarray(strong, dtype=np.float64) - np.asarray(weak, dtype=np.float64)
    out = np.zeros(len(names))
    for f in np.unique(names):
        rows = names == f
        out[rows] = gain[rows].mean()
    return out


def _ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (ties share their mean rank)."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x), dtype=np.float64)
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return sums[inverse] / counts[inverse]


def spearman(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Spearman's rank correlation (0.0 when either side is constant)."""
    ra, rb = _ranks(np.asarray(a)), _ranks(np.asarray(b))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = math.sqrt(float((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / denom) if denom > 0 else 0.0
