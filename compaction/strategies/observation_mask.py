"""Baseline: observation masking (as SWE-agent and OpenHands do).

Older environment outputs are replaced by a placeholder while the agent's own actions and
reasoning stay: first keep every non-observation message (newest first), then the
observations, newest first, until the budget is full.
"""

from __future__ import annotations

from collections.abc import Sequence

from switchyard.compaction.features import observation_messages
from switchyard.compaction.options import CompactionOptions
from switchyard.compaction.result import Compaction
from switchyard.compaction.strategies.base import finish, prepare, selector, unchanged
from switchyard.core.messages import Message

NAME = "observation_mask"


def compact(
    messages: Sequence[Message], budget: int, *, model: str | None = None,
    options: CompactionOptions | None = None, namespace: str = "", scorer: object = None,
) -> Compaction:
    p = prepare(messages, budget, model, options, namespace)
    if p.tokens_before <= budget:
        return unchanged(p, NAME)
    seg = p.seg
    obs = observation_messages(seg)
    sel = selector(p, budget)
    for g in reversed(range(len(seg.groups))):
        if g in seg.mandatory:
            continue
        unit = [s for s in seg.group_spans(g) if seg.spans[s].message_index not in obs]
        if unit and not sel.offer(unit):
            break
    for m in sorted(obs, reverse=True):
        if seg.group_of_message[m] not in seg.mandatory and not sel.offer(seg.message_spans[m]):
            break
    return finish(p, sel, NAME)
