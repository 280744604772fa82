"""The router's torch model: a small MLP with a p_hard head and a difficulty-grade head.

Maths only: features come from router/features.py, weights from router/checkpoint.py.
The structural features are standardised inside the model (buffers saved in the
state_dict), so a checkpoint carries its own normalisation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def build_model(embed_dim: int, n_structural: int, hidden: int = 128, dropout: float = 0.1):
    """A `RouterMLP` (the class is defined lazily so importing this module skips torch)."""
    return _router_mlp_class()(embed_dim, n_structural, hidden, dropout)


_CLASS = None


def _router_mlp_class():
    global _CLASS
    if _CLASS is not None:
        return _CLASS
    import torch
    from torch import nn

    class RouterMLP(nn.Module):
        """[embedding | standardised structural] -> trunk -> (p_hard logit, grade logit)."""

        def __init__(self, embed_dim: int, n_structural: int, hidden: int, dropout: float):
            super().__init__()
            self.embed_dim = embed_dim
            self.n_structural = n_structural
            self.register_buffer("feat_mean", torch.zeros(n_structural))
            self.register_buffer("feat_std", torch.ones(n_structural))
            self.trunk = nn.Sequential(
                nn.Linear(embed_dim + n_structural, hidden),
                nn.GELU(),
                nn.Dropout(dropout),
                nn.Linear(hidden, hidden // 2),
                nn.GELU(),
                nn.Dropout(dropout),
            )
            self.hard_head = nn.Linear(hidden // 2, 1)
            self.grade_head = nn.Linear(hidden // 2, 1)

        def set_normalisation(self, mean: torch.Tensor, std: torch.Tensor) -> None:
            self.feat_mean.copy_(mean)
            self.feat_std.copy_(std.clamp(min=1e-6))

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            emb, struct = x[:, : self.embed_dim], x[:, self.embed_dim :]
            struct = (struct - self.feat_mean) / self.feat_std
            h = self.trunk(torch.cat([emb, struct], dim=1))
            return self.hard_head(h).squeeze(1), self.grade_head(h).squeeze(1)

        @torch.no_grad()
        def predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            """(p_hard, grade) probabilities in [0, 1]; call on an `.eval()` model."""
            hard, grade = self(x)
            return torch.sigmoid(hard), torch.sigmoid(grade)

    _CLASS = RouterMLP
    return _CLASS
