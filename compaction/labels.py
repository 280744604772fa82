"""Training signal without an LLM: a term was needed if a later step refers back to it.

A later assistant step "refers back" when its text or tool-call arguments use a salient term
(identifier, path, number, quoted text, error line) found earlier in the history. Terms of the
system prompt are generic (command docs), so they never count as evidence.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from switchyard.compaction.features import TermTable
from switchyard.compaction.terms import terms_of
from switchyard.core.messages import Message


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


def label_terms(table: TermTable, future: Sequence[Message], horizon: int = 1) -> np.ndarray:
    """1.0 for each droppable term of the table that a later step uses, else 0.0."""
    wanted = future_terms(future, horizon)
    return np.fromiter((t in wanted for t in table.terms), dtype=np.float32,
                       count=len(table.terms))
