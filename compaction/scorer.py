"""The learned scorer: a small MLP over `features.build_table` rows (one per term).

Checkpoints are the torch state_dict as safetensors (`scorer.safetensors`) plus a JSON file
(`scorer.json`) with the version, the feature version, the training data hash and validation
metrics. Serving loads and runs them with numpy alone; torch only trains (`switchyard[train]`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from switchyard.compaction.errors import CheckpointError
from switchyard.compaction.features import FEATURE_VERSION, N_FEATURES

if TYPE_CHECKING:
    import torch

CHECKPOINT_VERSION = 2
DEFAULT_CHECKPOINT = Path(__file__).parent / "checkpoints" / "scorer.json"
# OpenBLAS runs a matmul on its calling thread when m*n*k is below this.
_SINGLE_THREAD_WORK = 262_144


def build_model(input_dim: int = N_FEATURES, hidden: int = 32) -> torch.nn.Module:
    import torch
    from torch import nn

    class SpanScorer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(
                nn.Linear(input_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                nn.Linear(hidden, 1),
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x).squeeze(-1)  # logits

        @torch.no_grad()
        def predict(self, x: np.ndarray) -> np.ndarray:
            """P(a later step needs the span) for each row."""
            if len(x) == 0:
                return np.zeros(0, dtype=np.float32)
            return torch.sigmoid(self(torch.from_numpy(x))).numpy()

    return SpanScorer()


def _linear_params(state: Mapping[str, np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(weight, bias) of each nn.Linear in `net`, in order: `net.0`, `net.2`, `net.4`."""
    names = sorted({k.rsplit(".", 1)[0] for k in state}, key=lambda n: int(n.rsplit(".", 1)[1]))
    return [(state[n + ".weight"], state[n + ".bias"]) for n in names]


class Scorer:
    """A loaded scorer (its state_dict as numpy arrays) and its metadata."""

    def __init__(self, state: Mapping[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.state = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()}
        self.meta = meta
        # The forward pass in numpy: a few small matmuls, without torch's per-call overhead.
        self._layers = [(w.T.copy(), b.copy()) for w, b in _linear_params(self.state)]
        widest = max((w.shape[0] * w.shape[1] for w, _ in self._layers), default=1)
        self._block = max(1, (_SINGLE_THREAD_WORK - 1) // widest)

    @classmethod
    def from_model(cls, model: torch.nn.Module, meta: dict[str, Any]) -> Scorer:
        """A trained `build_model` module, as serving will load it."""
        return cls({k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}, meta)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """P(the next step uses the term) for each row of features."""
        h = np.asarray(x, dtype=np.float32)
        out = np.zeros(len(h), dtype=np.float32)
        # Blocks small enough that OpenBLAS stays on this thread: on a busy 2-core host a
        # multi-threaded matmul of this size waits milliseconds for its helper thread.
        for i in range(0, len(h), self._block):
            out[i:i + self._block] = self._forward(h[i:i + self._block])
        return out

    def _forward(self, h: np.ndarray) -> np.ndarray:
        last = len(self._layers) - 1
        for i, (w, b) in enumerate(self._layers):
            h = h @ w + b
            if i < last:
                np.maximum(h, 0.0, out=h)
        return 1.0 / (1.0 + np.exp(-h[:, 0]))

    @classmethod
    def load(cls, path: Path | None = None) -> Scorer:
        from safetensors.numpy import load_file

        meta_path = Path(path or DEFAULT_CHECKPOINT)
        if meta_path.suffix != ".json":
            meta_path = meta_path.with_suffix(".json")
        weights = meta_path.with_suffix(".safetensors")
        if not meta_path.is_file() or not weights.is_file():
            raise CheckpointError(
                f"no scorer checkpoint at {meta_path} (+ .safetensors); train one with "
                "'switchyard train-compactor' or pass strategy='truncate'", "checkpoint"
            )
        meta = json.loads(meta_path.read_text())
        if meta.get("version") != CHECKPOINT_VERSION or meta.get("feature_version") != FEATURE_VERSION:
            raise CheckpointError(
                f"checkpoint {meta_path} has version {meta.get('version')}/features "
                f"{meta.get('feature_version')}; this code needs {CHECKPOINT_VERSION}/"
                f"{FEATURE_VERSION} - retrain with 'switchyard train-compactor'", "checkpoint"
            )
        return cls(load_file(str(weights)), meta)

    def save(self, path: Path) -> None:
        from safetensors.numpy import save_file

        path = Path(path).with_suffix(".json")
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(self.state, str(path.with_suffix(".safetensors")))
        path.write_text(json.dumps(self.meta, indent=2, sort_keys=True) + "\n")
