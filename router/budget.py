"""The learned reasoning budget: targets for the budget head and its left-out evaluation.

The target is how long a *correct* chain was: BBH's chain-of-thought length and MMLU-Pro's
thinking-model answer length. Sources write at different lengths, so the head learns the
length's percentile within its source (a scale-free "how much reasoning, relative to its
kind"); rows without a recorded chain fall back to the difficulty grade at a small weight.

Evaluation on held-out families, per source with chain lengths:
- Spearman correlation between the predicted budget grade and the length the correct chain
  actually used;
- tokens saved against a fixed high budget. Both policies are set on training rows to
  cover `COVER` of correct chains: the fixed one is that quantile of all chain tokens; the
  learned one splits requests into `TIERS` tiers at the quartiles of the training rows'
  predicted grades (the four efforts) and gives each tier that quantile of its own
  training chains. Tokens are chars / 4.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from switchyard.router.data import RouterExample
from switchyard.router.eval_metrics import spearman

COVER = 0.9
CHARS_PER_TOKEN = 4.0
TIERS = 4


def has_chain(e: RouterExample) -> bool:
    return math.isfinite(e.budget_chars) and e.budget_chars > 0


def budget_targets(
    examples: Sequence[RouterExample], fallback_weight: float
) -> tuple[np.ndarray, np.ndarray]:
    """(target grade in [0, 1], weight) per row for the budget head."""
    target = np.array([e.grade for e in examples], dtype=np.float64)
    weight = np.array([e.grade_weight for e in examples], dtype=np.float64) * fallback_weight
    for source in {e.source for e in examples}:
        rows = [i for i, e in enumerate(examples) if e.source == source and has_chain(e)]
        if not rows:
            continue
        chars = np.array([examples[i].budget_chars for i in rows])
        order = np.argsort(np.argsort(chars, kind="stable"), kind="stable")
        target[rows] = (order + 0.5) / len(rows)
        weight[rows] = 1.0
    return target, weight


def tier_budgets(tokens: np.ndarray, grades: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(grade cut points, budget per tier): each tier's `COVER` quantile of chain tokens."""
    cuts = np.quantile(grades, np.linspace(0.0, 1.0, TIERS + 1)[1:-1])
    tier = np.searchsorted(cuts, grades, side="right")
    fixed = float(np.quantile(tokens, COVER))
    budgets = np.array([float(np.quantile(tokens[tier == t], COVER)) if (tier == t).any()
                        else fixed for t in range(TIERS)])
    return cuts, budgets


def evaluate_budget(
    train: Sequence[RouterExample], train_grades: np.ndarray,
    held: Sequence[RouterExample], held_grades: np.ndarray,
) -> dict[str, dict[str, Any]]:
    """source -> {spearman, tokens_saved, coverage_learned, coverage_fixed, rows}."""
    out: dict[str, dict[str, Any]] = {}
    for source in sorted({e.source for e in held if has_chain(e)}):
        tr = [i for i, e in enumerate(train) if e.source == source and has_chain(e)]
        va = [i for i, e in enumerate(held) if e.source == source and has_chain(e)]
        if len(tr) < 10 or len(va) < 10:
            continue
        tr_tokens = np.array([train[i].budget_chars for i in tr]) / CHARS_PER_TOKEN
        va_tokens = np.array([held[i].budget_chars for i in va]) / CHARS_PER_TOKEN
        fixed = float(np.quantile(tr_tokens, COVER))
        cuts, budgets = tier_budgets(tr_tokens, train_grades[tr])
        learned = budgets[np.searchsorted(cuts, held_grades[va], side="right")]
        out[source] = {
            "spearman": spearman(held_grades[va], va_tokens),
            "tokens_saved": float(1.0 - learned.sum() / (fixed * len(va))),
            "coverage_learned": float((learned >= va_tokens).mean()),
            "coverage_fixed": float((fixed >= va_tokens).mean()),
            "fixed_budget_tokens": fixed,
            "rows": len(va),
        }
    return out
