"""Thresholds on p_hard for a target thinking share or a target cost (RouteLLM-style).

RouteLLM's calibrate_threshold.py takes `quantile(q = 1 - strong_pct)` of the router's
scores on held data; we do the same, and keep the quantile table in the checkpoint so any
share can be calibrated at load time without the data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from switchyard.router.errors import RoutingError

N_QUANTILES = 200


def _check_share(share: float) -> float:
    if math.isnan(share) or not 0.0 <= share <= 1.0:
        raise RoutingError(f"thinking share must be in [0, 1], got {share!r}", "thinking_share")
    return float(share)


def threshold_for_share(scores: Sequence[float] | np.ndarray, share: float) -> float:
    """The threshold that sends `share` of these scores to the thinking group (score >= t)."""
    share = _check_share(share)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        raise RoutingError("cannot calibrate on no scores", "scores")
    if share <= 0.0:
        return 1.0  # scores are probabilities: nothing but a certain 1.0 passes
    return float(np.quantile(scores, 1.0 - share))


def score_quantiles(scores: Sequence[float] | np.ndarray, n: int = N_QUANTILES) -> list[float]:
    """Scores at q = 0, 1/n, ..., 1: enough to calibrate any share later."""
    qs = np.quantile(np.asarray(scores, dtype=np.float64), np.linspace(0.0, 1.0, n + 1))
    return [float(v) for v in qs]


def threshold_from_quantiles(quantiles: Sequence[float], share: float) -> float:
    """Like `threshold_for_share`, read off a stored quantile table (linear interpolation)."""
    share = _check_share(share)
    table = np.asarray(quantiles, dtype=np.float64)
    if table.size < 2:
        raise RoutingError("the checkpoint's quantile table is empty", "score_quantiles")
    if share <= 0.0:
        return 1.0
    grid = np.linspace(0.0, 1.0, table.size)
    return float(np.interp(1.0 - share, grid, table))


def threshold_for_cost(
    scores: Sequence[float] | np.ndarray,
    *,
    target_cost: float,
    thinking_cost: float,
    non_thinking_cost: float,
) -> float:
    """The threshold whose mean cost per request meets `target_cost` (costs per request).

    The affordable thinking share is (target - cheap) / (dear - cheap), clipped to [0, 1].
    """
    if thinking_cost <= non_thinking_cost:
        raise RoutingError("thinking_cost must exceed non_thinking_cost", "thinking_cost")
    share = (target_cost - non_thinking_cost) / (thinking_cost - non_thinking_cost)
    return threshold_for_share(scores, min(max(share, 0.0), 1.0))
