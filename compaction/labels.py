"""Training signal without an LLM: a span was needed if a later step refers back to it.

A later assistant step "refers back" when it uses a salient term (identifier, path, number,
quoted text, error line) that appears in the span. Terms of the system prompt are generic
(command docs), so they never count as evidence.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from compaction.segment import Segmentation
from compaction.terms import terms_of
from retrieval.chat import Message


def system_terms(messages: Sequence[Message]) -> set[str]:
    out: set[str] = set()
    for m in messages:
        if m.role in ("system", "developer"):
            out |= terms_of(m.text())
    return out


def future_terms(future: Sequence[Message], horizon: int) -> set[str]:
    """Terms used by the next `horizon` assistant steps."""
    out: set[str] = set()
    steps = 0
    for m in future:
        if m.role == "assistant":
            out |= terms_of(m.text())
            steps += 1
            if steps >= horizon:
                break
    return out


def label_spans(seg: Segmentation, future: Sequence[Message], horizon: int = 3) -> np.ndarray:
    """1.0 for each span of seg whose terms a later step uses, else 0.0."""
    wanted = future_terms(future, horizon) - system_terms(seg.messages)
    return np.array(
        [1.0 if terms_of(s.text) & wanted else 0.0 for s in seg.spans], dtype=np.float32
    )
