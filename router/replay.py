"""Replay: re-decide logged traffic under candidate policies and estimate quality and cost.

Each request's arm under a policy comes from the router's scores (batched), a threshold
(explicit, or calibrated on this traffic for a thinking share) and the caller's overrides
(a pinned request keeps its logged arm). Estimates, per policy:
- direct, on requests whose two arms both have outcomes (shadow pairs, data sets);
- inverse-propensity-weighted, on the other requests with an outcome for their logged arm
  and a logged propensity (exploration): mean of 1[policy arm = logged arm] * r / p, which
  is unbiased for the policy's mean whenever p > 0 for every arm the policy may pick.
Both say how many requests they rest on; the headline value pools them by count.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from switchyard.router.errors import RoutingError
from switchyard.router.replay_data import Traffic, concat, log_order

POLICY_ROUTERS = ("mlp", "always", "never", "random", "logged")
MIN_PAIRS_FOR_METRICS = 10
SCORE_BATCH = 2048  # requests per router call


@dataclass(frozen=True)
class Policy:
    """A candidate: `mlp[@checkpoint][:share=S | :threshold=T]`, `always`, `never`,
    `random[:share=S]`, or `logged` (what was served)."""

    router: str = "mlp"
    checkpoint: Path | None = None
    threshold: float | None = None
    thinking_share: float | None = None

    @property
    def name(self) -> str:
        out = self.router + (f"@{self.checkpoint.name}" if self.checkpoint else "")
        if self.threshold is not None:
            out += f":threshold={self.threshold:g}"
        if self.thinking_share is not None:
            out += f":share={self.thinking_share:g}"
        return out


def parse_policy(spec: str) -> Policy:
    head, _, params = spec.strip().partition(":")
    router, _, checkpoint = head.partition("@")
    if router not in POLICY_ROUTERS:
        raise RoutingError(f"unknown policy {spec!r}; valid routers: "
                           f"{', '.join(POLICY_ROUTERS)} (e.g. mlp:share=0.3, "
                           "mlp@ckpt.safetensors:threshold=0.6, always, never, random:share=0.5)",
                           "policy")
    values: dict[str, float] = {}
    for part in filter(None, params.split(",")):
        key, _, raw = part.partition("=")
        if key not in ("share", "threshold"):
            raise RoutingError(f"policy {spec!r}: unknown parameter {key!r}; use share= or "
                               "threshold=", "policy")
        try:
            values[key] = float(raw)
        except ValueError:
            raise RoutingError(f"policy {spec!r}: {key} must be a number", "policy") from None
        if not 0.0 <= values[key] <= 1.0:
            raise RoutingError(f"policy {spec!r}: {key} must be in [0, 1]", "policy")
    return Policy(router, Path(checkpoint) if checkpoint else None,
                  values.get("threshold"), values.get("share"))


@dataclass(frozen=True)
class Estimate:
    policy: str
    thinking_share: float  # share of replayed requests the policy sends to thinking
    quality: float | None  # pooled; None when no request supports an estimate
    tokens: float | None  # mean tokens per request
    cost: float | None  # mean USD per request
    method: str  # "direct", "ipw", "direct+ipw" or "none"
    n_requests: int
    n_direct: int
    n_ipw: int
    n_ipw_matched: int  # IPW requests whose logged arm is the policy's arm
    quality_direct: float | None
    quality_ipw: float | None
    apgr: float | None = None
    cpt50: float | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def score_traffic(traffic: Traffic, checkpoint: Path | None = None, *, batch: int = SCORE_BATCH,
                  progress: bool = False) -> np.ndarray:
    """p_hard for every request, scored in batches by the checkpoint's router."""
    from switchyard.router.learned import LearnedRouter

    return _score(LearnedRouter.from_checkpoint(checkpoint), traffic, batch, progress)


def _score(router: Any, traffic: Traffic, batch: int, progress: bool) -> np.ndarray:
    from tqdm.auto import tqdm

    out = np.empty(len(traffic), dtype=np.float64)
    for start in tqdm(range(0, len(traffic), batch), desc="replay: scoring",
                      disable=not progress, unit="batch"):
        rows = list(range(start, min(start + batch, len(traffic))))
        out[start:start + len(rows)] = router.score_batch(traffic.requests(rows)).p_hard
    return out


def default_threshold(checkpoint: Path | None) -> float:
    from switchyard.router.checkpoint import load_checkpoint

    return float(load_checkpoint(checkpoint)[1].calibration.threshold)


def choose(policy: Policy, traffic: Traffic, scores: np.ndarray | None,
           seed: int = 0) -> np.ndarray:
    """The arm (0 non-thinking, 1 thinking) the policy gives every request."""
    n = len(traffic)
    if policy.router == "logged":
        return traffic.logged.copy()
    if policy.router in ("always", "never"):
        arm = np.full(n, int(policy.router == "always"), dtype=np.int64)
    elif policy.router == "random":
        share = 0.5 if policy.thinking_share is None else policy.thinking_share
        arm = (np.random.default_rng(seed).random(n) < share).astype(np.int64)
    else:
        if scores is None:
            raise RoutingError("an mlp policy needs scores", "scores")
        arm = (scores >= _threshold(policy, scores)).astype(np.int64)
    return np.where(traffic.overridden, traffic.logged, arm)


def _threshold(policy: Policy, scores: np.ndarray) -> float:
    from switchyard.router.calibrate import threshold_for_share

    if policy.threshold is not None:
        return policy.threshold
    if policy.thinking_share is not None:
        return threshold_for_share(scores, policy.thinking_share)
    return default_threshold(policy.checkpoint)


def estimate(traffic: Traffic, arm: np.ndarray, policy: str = "",
             scores: np.ndarray | None = None) -> Estimate:
    q, tok, cost = traffic.quality, traffic.tokens, traffic.cost
    rows = np.arange(len(traffic))
    paired = ~np.isnan(q).any(axis=1)
    logged_q = q[rows, traffic.logged]
    p = traffic.propensity
    ipw = ~paired & ~np.isnan(logged_q) & np.isfinite(p) & (p > 0)
    direct = [_mean(v[rows[paired], arm[paired]]) for v in (q, tok, cost)]
    weights = np.where(arm[ipw] == traffic.logged[ipw], 1.0 / p[ipw], 0.0)
    n_d, n_i = int(paired.sum()), int(ipw.sum())
    ipw_est = [float(np.mean(weights * v[rows[ipw], traffic.logged[ipw]])) if n_i else None
               for v in (q, tok, cost)]
    pooled = [_pool(d, n_d, i, n_i) for d, i in zip(direct, ipw_est)]
    method = "+".join(m for m, k in (("direct", n_d), ("ipw", n_i)) if k) or "none"
    apgr = cpt50 = None
    if scores is not None and n_d >= MIN_PAIRS_FOR_METRICS:
        weak, strong = q[paired, 0], q[paired, 1]
        if abs(strong.mean() - weak.mean()) > 1e-9:
            from switchyard.router.eval_metrics import evaluate_scores

            m = evaluate_scores(scores[paired], weak, strong)
            apgr, cpt50 = m.apgr, m.cpt50
    return Estimate(policy=policy, thinking_share=float(arm.mean()) if len(arm) else 0.0,
                    quality=pooled[0], tokens=pooled[1], cost=pooled[2], method=method,
                    n_requests=len(traffic), n_direct=n_d, n_ipw=n_i,
                    n_ipw_matched=int((weights > 0).sum()), quality_direct=direct[0],
                    quality_ipw=ipw_est[0], apgr=apgr, cpt50=cpt50)


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if values.size else None


def _pool(a: float | None, n_a: int, b: float | None, n_b: int) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return (a * n_a + b * n_b) / (n_a + n_b)


def replay(traffic: Traffic, policies: Sequence[Policy], *, progress: bool = False,
           seed: int = 0) -> list[Estimate]:
    """Estimates for each policy; each checkpoint's scores are computed once."""
    scores: dict[Path | None, np.ndarray] = {}
    for policy in policies:
        if policy.router == "mlp" and policy.checkpoint not in scores:
            scores[policy.checkpoint] = score_traffic(traffic, policy.checkpoint,
                                                      progress=progress)
    return _estimates(traffic, policies, scores, seed)


def replay_batches(batches: Iterable[Traffic], policies: Sequence[Policy], *,
                   progress: bool = False, seed: int = 0,
                   limit: int = 0) -> tuple[Traffic, list[Estimate]]:
    """`replay` over traffic read in batches (same estimates): each batch is scored, then
    only its numbers are kept (arms, outcomes, tokens, cost, scores: ~100 bytes a request),
    never its request bodies. Share thresholds and APGR need every score, so the numbers
    stay; the replayed Traffic comes back without its texts. `limit`: the first N requests
    in log order (0: all); batches may come in any order, so every one is scored."""
    from switchyard.router.learned import LearnedRouter

    routers = {p.checkpoint: LearnedRouter.from_checkpoint(p.checkpoint)
               for p in policies if p.router == "mlp"}
    parts: dict[Path | None, list[np.ndarray]] = {c: [] for c in routers}
    kept = []
    for batch in batches:
        for checkpoint, router in routers.items():
            parts[checkpoint].append(_score(router, batch, SCORE_BATCH, progress))
        kept.append(replace(batch, request_ids=[], sessions=[], bodies=[], texts=[]))
    traffic, order = concat(kept), log_order(kept)  # batches may come in any order
    scores = {c: np.concatenate(v)[order] if v else np.zeros(0) for c, v in parts.items()}
    if limit:
        traffic, scores = traffic.head(limit), {c: v[:limit] for c, v in scores.items()}
    return traffic, _estimates(traffic, policies, scores, seed)


def _estimates(traffic: Traffic, policies: Sequence[Policy],
               scores: dict[Path | None, np.ndarray], seed: int) -> list[Estimate]:
    out = []
    for policy in policies:
        s = scores[policy.checkpoint] if policy.router == "mlp" else None
        out.append(estimate(traffic, choose(policy, traffic, s, seed), policy.name, s))
    return out


def format_table(estimates: Sequence[Estimate]) -> str:
    head = (f"{'policy':<28}{'think%':>7}{'quality':>9}{'tokens':>10}{'cost$':>11}"
            f"{'APGR':>7}{'CPT50':>7}  method (n direct / ipw, matched)")
    lines = [head]
    for e in estimates:
        lines.append(
            f"{e.policy[:27]:<28}{e.thinking_share * 100:>6.1f}%{_f(e.quality, '.3f'):>9}"
            f"{_f(e.tokens, ',.0f'):>10}{_f(e.cost, '.6f'):>11}{_f(e.apgr, '.3f'):>7}"
            f"{_f(e.cpt50, '.1f'):>7}  {e.method} ({e.n_direct} / {e.n_ipw}, "
            f"{e.n_ipw_matched})")
    return "\n".join(lines)


def _f(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)
