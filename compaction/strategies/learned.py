"""The learned strategy: cover the terms later steps will likely need, then the newest text.

The scorer gives each droppable term P(the next step uses it). The budget is spent in three
passes. Spans are kept verbatim, greedily by the weight of the terms they newly make visible
per token (lazy greedy for weighted coverage: a span repeating covered terms gains nothing),
while `ledger_share` of the freed budget is held back. Then the likeliest-needed terms no
kept span shows are listed, within that share, in the ledger of the placeholder (or marker)
standing where they were dropped. Leftover budget goes to the newest spans.

One rule comes before the scores: a term the final message names that only one dropped
span holds makes that span the likely answer to a lookup ("what is setting_42 set to?"),
so it is kept verbatim first.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from switchyard.compaction.features import TermTable, build_table
from switchyard.compaction.options import CompactionOptions
from switchyard.compaction.result import Compaction
from switchyard.compaction.segment import Segmentation
from switchyard.compaction.select import Selector
from switchyard.compaction.strategies.base import finish, prepare, unchanged
from switchyard.compaction.summary import listable, term_cost
from switchyard.compaction.terms import terms_of
from switchyard.core.messages import Message

if TYPE_CHECKING:
    from switchyard.compaction.scorer import Scorer

NAME = "learned"
T = TypeVar("T")
_OVERHEAD = 6.0  # rough tokens a kept span adds beyond its own (markers, joins)
_RECENT_BONUS = 0.5  # gain per latest-turn term a span repeats (does not deplete)
_MAX_MISSES = 64  # refused offers after which a pass stops (the cover pass: in a row)
_LOOKUP_BONUS = 5.0  # gain per final-message term a span alone holds (above any term weight)
# The share of the history this thread tokenizes itself once `_ahead` is done: about what
# it can encode while one worker does the rest (128k tokens, 2 cores: `_ahead` takes about
# as long as the worker's 0.85).
_AHEAD_SHARE = 0.15


def compact(
    messages: Sequence[Message], budget: int, *, model: str | None = None,
    options: CompactionOptions | None = None, namespace: str = "",
    scorer: Scorer | None = None,
) -> Compaction:
    if scorer is None:
        from switchyard.compaction.scorer import Scorer

        scorer = Scorer.load()
    # The term table, its scores and the lookup bonus need no token counts: all are made
    # while the tokenizer runs on worker threads.
    p = prepare(messages, budget, model, options, namespace, ahead=lambda seg: _ahead(seg, scorer),
                ahead_share=_AHEAD_SHARE)
    if p.tokens_before <= budget:
        return unchanged(p, NAME)
    table, weight, lookup = p.ahead
    ledger = p.options.extractive_summary and p.options.ledger_share > 0
    sel = Selector(p.seg, budget, p.counter, p.options, ledger=ledger)
    if ledger:
        sel.reserve = sel.ledger_cap
    covered = _cover(sel, table, weight, lookup)
    sel.reserve = 0.0
    if ledger:
        _list_terms(sel, table, weight, covered)
    _fill_newest(sel)
    return finish(p, sel, NAME)


def _ahead(seg: Segmentation, scorer: Scorer) -> tuple[TermTable, np.ndarray, list[float]]:
    table = build_table(seg)
    return table, scorer.predict(table.x).astype(np.float64), _lookup_bonus(seg, table)


def _cover(sel: Selector, table: TermTable, weight: np.ndarray, lookup: list[float]
           ) -> list[bool]:
    """Lazy greedy weighted coverage by spans; returns which terms ended up visible. It
    stops after _MAX_MISSES refusals in a row: the room is spent (what little is left goes
    to the ledger and the newest spans), and costing every remaining span is most of the
    pass's time on a long history."""
    seg = sel.seg
    covered = [False] * len(table.terms)
    w = weight.tolist()  # plain floats: spans hold few terms, numpy per span costs more
    bonus_arr = np.asarray(lookup) + _RECENT_BONUS * np.asarray(
        table.span_recent, dtype=np.float64)
    bonus = bonus_arr.tolist()
    tokens = np.fromiter((s.tokens for s in seg.spans), np.float64, len(seg.spans))
    density = (table.span_weight(weight) + bonus_arr) / (tokens + _OVERHEAD)
    live = np.flatnonzero((np.diff(table.span_ends, prepend=0) > 0) | (bonus_arr > 0))
    heap = list(zip((-density[live]).tolist(), live.tolist()))
    heapq.heapify(heap)
    misses = 0
    while heap and misses <= _MAX_MISSES:
        _neg, s = heapq.heappop(heap)
        own = [i for i in table.span_terms[s] if not covered[i]]
        if not own and not bonus[s]:
            continue
        density = (sum(w[i] for i in own) + bonus[s]) / (seg.spans[s].tokens + _OVERHEAD)
        if heap and density < -heap[0][0] - 1e-12:
            heapq.heappush(heap, (-density, s))  # stale: its terms were partly covered
            continue
        if sel.offer([s]):
            misses = 0
            for i in own:
                covered[i] = True
        else:
            misses += 1
    return covered


def _lookup_bonus(seg: Segmentation, table: TermTable) -> list[float]:
    """Per span, _LOOKUP_BONUS for each term of the final message that no other dropped
    span holds."""
    bonus = [0.0] * len(seg.spans)
    named = terms_of(seg.messages[-1].text()) - table.system
    if not named:
        return bonus
    holders: dict[str, list[int]] = {}
    for s in seg.spans:
        if s.group not in seg.mandatory:
            for t in terms_of(s.text) & named:
                holders.setdefault(t, []).append(s.index)
    for spans in holders.values():
        if len(spans) == 1:
            bonus[spans[0]] += _LOOKUP_BONUS
    return bonus


def _list_terms(sel: Selector, table: TermTable, weight: np.ndarray, covered: list[bool]) -> None:
    """The ledger: terms no kept span shows, by weight per token, while its share lasts."""
    order = sorted((-w / term_cost(t), t) for t, w, c in zip(table.terms, weight.tolist(), covered)
                   if not c and listable(t))  # term_cost is memoised: offer_term reuses it
    _offer_until_full((t for _d, t in order), sel.offer_term)


def _fill_newest(sel: Selector) -> None:
    """Spend what is left on the newest spans (recency is the best prior left)."""
    seg = sel.seg
    _offer_until_full((s.index for s in reversed(seg.spans)
                       if s.index not in sel.keep and s.group not in seg.mandatory),
                      lambda s: sel.offer([s]))


def _offer_until_full(items: Iterable[T], offer: Callable[[T], bool]) -> None:
    """Offer items in order until _MAX_MISSES were refused: nothing small enough is left
    to fit (or, for ledger terms, the share is spent)."""
    misses = 0
    for item in items:
        if not offer(item):
            misses += 1
            if misses > _MAX_MISSES:
                break
