"""Top-k selection and the array-level result type shared by the retrievers.

`argpartition` picks the k winners in O(n); only those k are sorted (bm25s `_topk_numpy`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np


class Hits(NamedTuple):
    """Best-first results of one retriever: store row ids and their scores."""

    ids: np.ndarray  # int64 row ids of the chunk store
    scores: np.ndarray  # float32, same length, descending

    def __len__(self) -> int:  # type: ignore[override]
        return int(self.ids.shape[0])

    @classmethod
    def empty(cls) -> Hits:
        return cls(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32))

    @classmethod
    def merge(cls, parts: Sequence[Hits], k: int | None = None) -> Hits:
        """Union of results from several shards (namespaces), best first, cut to k."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        ids = np.concatenate([p.ids for p in parts])
        scores = np.concatenate([p.scores for p in parts])
        order = topk_indices(scores, k if k is not None else len(scores))
        return cls(ids[order], scores[order])


def topk_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest scores, best first (ties: lower index first)."""
    n = scores.shape[0]
    if k <= 0 or n == 0:
        return np.empty(0, dtype=np.int64)
    if k < n:
        part = np.argpartition(-scores, k - 1)[:k]
    else:
        part = np.arange(n)
    # lexsort's last key is primary: score descending, then index ascending for stable ties
    order = np.lexsort((part, -scores[part]))
    return part[order]


def topk_positive(scores: np.ndarray, ids: np.ndarray, k: int) -> Hits:
    """The k best entries with a score above zero (zero means 'no match' for BM25)."""
    top = topk_indices(scores, k)
    top = top[scores[top] > 0]
    return Hits(ids[top].astype(np.int64), scores[top].astype(np.float32))
