"""Baseline: keep the latest. Whole groups from the newest back until the budget is full."""

from __future__ import annotations

from collections.abc import Sequence

from switchyard.compaction.options import CompactionOptions
from switchyard.compaction.result import Compaction
from switchyard.compaction.strategies.base import finish, prepare, selector, unchanged
from switchyard.core.messages import Message

NAME = "truncate"


def compact(
    messages: Sequence[Message], budget: int, *, model: str | None = None,
    options: CompactionOptions | None = None, namespace: str = "", scorer: object = None,
) -> Compaction:
    p = prepare(messages, budget, model, options, namespace)
    if p.tokens_before <= budget:
        return unchanged(p, NAME)
    sel = selector(p, budget)
    for g in reversed(range(len(p.seg.groups))):
        if g not in p.seg.mandatory and not sel.offer(p.seg.group_spans(g)):
            break
    return finish(p, sel, NAME)
