"""The router's model: p_hard and budget-grade heads over [embedding | structural features].

The grade is the reasoning budget's percentile (router/budget.py): its quartiles pick the
effort. The embedding block is empty when the checkpoint serves on counts alone.

Two shapes share one state_dict layout and one serving path:
- `hidden == 0`: linear heads, fitted in closed form (ridge, router/train.py). This is the
  default: on left-out families it beat the MLP (bench/router.py and the checkpoint JSON);
- `hidden > 0`: a small MLP trained by gradient descent.
The structural features are standardised inside the model (buffers in the state_dict), so
a checkpoint carries its own normalisation. The p_hard head's raw output goes through a
monotone Platt link, `sigmoid(hard_scale * raw + hard_bias)`, fitted on training rows, so
p_hard reads as a probability while the ranking (all the metrics see) is the head's.

Serving never runs torch: `NumpyModel` does the same maths in numpy, so a single decision
pays no torch dispatch or thread-pool cost (the budget is 10 ms on 2 busy cores).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch


def build_model(embed_dim: int, n_structural: int, hidden: int = 0, dropout: float = 0.0):
    """A `RouterModel` (the class is defined lazily so importing this module skips torch)."""
    return _router_model_class()(embed_dim, n_structural, hidden, dropout)


_CLASS = None


def _router_model_class():
    global _CLASS
    if _CLASS is not None:
        return _CLASS
    import torch
    from torch import nn

    class RouterModel(nn.Module):
        """[embedding | standardised structural] -> (raw p_hard score, grade logit)."""

        feat_mean: torch.Tensor  # buffers, registered in __init__
        feat_std: torch.Tensor
        hard_scale: torch.Tensor
        hard_bias: torch.Tensor
        trunk: nn.Module

        def __init__(self, embed_dim: int, n_structural: int, hidden: int, dropout: float):
            super().__init__()
            self.embed_dim = embed_dim
            self.n_structural = n_structural
            self.hidden = hidden
            self.register_buffer("feat_mean", torch.zeros(n_structural))
            self.register_buffer("feat_std", torch.ones(n_structural))
            self.register_buffer("hard_scale", torch.ones(()))
            self.register_buffer("hard_bias", torch.zeros(()))
            d = embed_dim + n_structural
            if hidden > 0:
                # tanh GELU: numpy has no erf, and serving must match training exactly.
                self.trunk = nn.Sequential(
                    nn.Linear(d, hidden), nn.GELU(approximate="tanh"), nn.Dropout(dropout),
                    nn.Linear(hidden, hidden // 2), nn.GELU(approximate="tanh"),
                    nn.Dropout(dropout),
                )
                d = hidden // 2
            else:
                self.trunk = nn.Identity()
            self.heads = nn.Linear(d, 2)  # column 0: p_hard score, column 1: grade

        def set_normalisation(self, mean: torch.Tensor, std: torch.Tensor) -> None:
            self.feat_mean.copy_(mean)
            self.feat_std.copy_(std.clamp(min=1e-6))

        def inputs(self, x: torch.Tensor) -> torch.Tensor:
            emb, struct = x[:, : self.embed_dim], x[:, self.embed_dim :]
            return torch.cat([emb, (struct - self.feat_mean) / self.feat_std], dim=1)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            out = self.heads(self.trunk(self.inputs(x)))
            return out[:, 0], out[:, 1]

        @torch.no_grad()
        def predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            """(p_hard, grade) in [0, 1]; call on an `.eval()` model."""
            hard, grade = self(x)
            p = torch.sigmoid(self.hard_scale * hard + self.hard_bias)
            g = torch.sigmoid(grade) if self.hidden > 0 else grade.clamp(0.0, 1.0)
            return p, g

    _CLASS = RouterModel
    return _CLASS


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60.0, 60.0)))


def _by_row(h: np.ndarray, w: np.ndarray) -> np.ndarray:
    """`h @ w` one row at a time: BLAS sums a 1-row and a many-row product in different
    orders (last-bit differences even in float64), and a decision must not depend on the
    batch it arrived in. Serving batches are small, so the loop costs microseconds."""
    return np.stack([row @ w for row in h]) if len(h) else np.zeros((0, w.shape[1]))


class NumpyModel:
    """`RouterModel.predict` in numpy, built from the model's state_dict.

    float64 throughout, and products taken row by row (`_by_row`): a decision must not
    depend on the batch it arrived in.
    """

    def __init__(self, state: Mapping[str, Any], embed_dim: int, hidden: int) -> None:
        def arr(key: str) -> np.ndarray:
            value = state[key]
            value = value.detach().cpu().numpy() if hasattr(value, "detach") else value
            return np.ascontiguousarray(np.asarray(value, dtype=np.float64))

        self.embed_dim = embed_dim
        self.hidden = hidden
        self.mean, self.std = arr("feat_mean"), arr("feat_std")
        self.scale = float(arr("hard_scale").reshape(-1)[0])
        self.bias = float(arr("hard_bias").reshape(-1)[0])
        self.layers = ([(arr("trunk.0.weight").T.copy(), arr("trunk.0.bias")),
                        (arr("trunk.3.weight").T.copy(), arr("trunk.3.bias"))]
                       if hidden > 0 else [])
        self.head_w, self.head_b = arr("heads.weight").T.copy(), arr("heads.bias")

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x, dtype=np.float64)
        h = np.concatenate([x[:, : self.embed_dim],
                            (x[:, self.embed_dim :] - self.mean) / self.std], axis=1)
        for w, b in self.layers:
            h = _gelu_tanh(_by_row(h, w) + b)
        out = _by_row(h, self.head_w) + self.head_b
        p = _sigmoid(self.scale * out[:, 0] + self.bias)
        g = _sigmoid(out[:, 1]) if self.hidden > 0 else np.clip(out[:, 1], 0.0, 1.0)
        return p.astype(np.float64), g.astype(np.float64)
