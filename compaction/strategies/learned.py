"""The learned strategy: keep spans by predicted future use until the budget is full."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from compaction.features import featurize
from compaction.options import CompactionOptions
from compaction.result import Compaction
from compaction.strategies.base import finish, prepare, selector, unchanged
from retrieval.chat import Message

if TYPE_CHECKING:
    from compaction.scorer import Scorer

NAME = "learned"


def compact(
    messages: Sequence[Message], budget: int, *, model: str | None = None,
    options: CompactionOptions | None = None, namespace: str = "",
    scorer: Scorer | None = None,
) -> Compaction:
    if scorer is None:
        from compaction.scorer import Scorer

        scorer = Scorer.load()
    p = prepare(messages, budget, model, options, namespace)
    if p.tokens_before <= budget:
        return unchanged(p, NAME)
    seg = p.seg
    sel = selector(p, budget)
    optional = [s for s in seg.spans if s.group not in seg.mandatory]
    if optional:
        scores = scorer.predict(featurize(seg))
        # Ties go to the later message, then the earlier span: deterministic.
        optional.sort(key=lambda s: (-float(scores[s.index]), -s.message_index, s.index))
        for s in optional:
            sel.offer([s.index])
    return finish(p, sel, NAME)
