"""Budgeted selection shared by every strategy.

A strategy offers units (lists of spans) in its order of preference; the selector accepts a
unit when its estimated cost still fits the budget. The estimate tracks exactly how many
placeholders and markers the output will have (a span between two elided neighbours adds a
marker, one that joins two kept neighbours removes one) and bounds their size from above.
`finish()` then assembles and counts exactly, and gives back the last accepted units while
the real count is over budget, so the budget holds whatever the tokenizer does at joins.
A unit is either spans or one ledger term (listed in a placeholder or marker, at an
estimated cost: `summary.term_cost`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeAlias

from switchyard.compaction.assemble import Assembled, assemble
from switchyard.compaction.errors import BudgetTooSmall
from switchyard.compaction.options import CompactionOptions
from switchyard.compaction.segment import Segmentation
from switchyard.compaction.summary import term_cost, worst_marker_tokens
from switchyard.core.tokens import MESSAGE_OVERHEAD_TOKENS, TokenCounter

_JOIN_SLACK = 1  # a join of two texts can tokenise one token longer than its parts
Unit: TypeAlias = "list[int] | str"  # spans, or one ledger term


class Selector:
    def __init__(
        self, seg: Segmentation, budget: int, counter: TokenCounter, options: CompactionOptions,
        *, ledger: bool = False,
    ) -> None:
        """`ledger`: placeholders list only the terms offered with `offer_term`, instead of
        each run's most frequent terms."""
        self.seg, self.budget, self.counter, self.options = seg, budget, counter, options
        self.marker_cost = worst_marker_tokens(counter, options.marker_max_ids)
        self.ledger: list[str] | None = [] if ledger else None
        self.ledger_used = 0.0
        self.placeholder_cost = options.placeholder_max_tokens + MESSAGE_OVERHEAD_TOKENS
        self.kept_group = [g in seg.mandatory for g in range(len(seg.groups))]
        self.keep: set[int] = set()
        self.accepted: list[Unit] = []
        self._undo: list[tuple[str, int]] = []
        base = self._assemble(set())
        self.minimum = counter.messages(base.messages)
        if self.minimum > budget:
            raise BudgetTooSmall(budget, self.minimum)
        self.used: float = self.minimum
        self.ledger_cap = options.ledger_share * (budget - self.minimum)
        self.reserve = 0.0  # tokens `offer` leaves free (for the ledger)

    def _assemble(self, keep: set[int]) -> Assembled:
        o = self.options
        return assemble(self.seg, keep, self.counter, max_ids=o.placeholder_max_ids,
                        marker_ids=o.marker_max_ids, placeholder_cap=o.placeholder_max_tokens,
                        summarize=o.extractive_summary, ledger=self.ledger)

    def _group_is_kept(self, g: int) -> bool:
        return 0 <= g < len(self.kept_group) and self.kept_group[g]

    def _group_cost(self, g: int) -> int:
        """Cost of bringing group g back: its messages framed, calls whole, content markers."""
        seg, cost = self.seg, 0
        left = g == 0 or self._group_is_kept(g - 1)
        right = g == len(seg.groups) - 1 or self._group_is_kept(g + 1)
        if not left and not right:
            cost += self.placeholder_cost  # the run splits in two
        elif left and right:
            cost -= self.placeholder_cost  # the run was this group alone
        grp = seg.groups[g]
        for m in range(grp.start, grp.stop):
            cost += MESSAGE_OVERHEAD_TOKENS
            if m in seg.calls_span:
                cost += seg.spans[seg.calls_span[m]].tokens + _JOIN_SLACK
            if seg.message_spans[m]:
                cost += self.marker_cost
        return cost

    def _span_cost(self, s: int) -> int:
        """Cost of keeping span s (its group kept): its tokens, and a marker more or less."""
        seg = self.seg
        span = seg.spans[s]
        if span.kind == "calls":
            return 0
        own = seg.message_spans[span.message_index]
        pos = span.part  # content spans are numbered by their position in the message
        left_elided = pos > 0 and own[pos - 1] not in self.keep
        right_elided = pos < len(own) - 1 and own[pos + 1] not in self.keep
        cost = span.tokens + _JOIN_SLACK
        if left_elided and right_elided:
            cost += self.marker_cost
        elif not left_elided and not right_elided:
            cost -= self.marker_cost
        return cost

    def _add_span(self, s: int) -> int:
        g = self.seg.spans[s].group
        cost = 0
        if not self.kept_group[g]:
            cost += self._group_cost(g)
            self.kept_group[g] = True
            self._undo.append(("g", g))
        cost += self._span_cost(s)
        self.keep.add(s)
        self._undo.append(("s", s))
        return cost

    def _fits(self, cost: float) -> bool:
        """Spans fit while they leave the reserve (held for the ledger) free."""
        return self.used + cost <= self.budget - self.reserve

    def offer(self, unit: Iterable[int]) -> bool:
        """Keep the unit's spans if they fit; returns whether they were kept."""
        unit = [s for s in unit if s not in self.keep and self.seg.spans[s].group not in
                self.seg.mandatory]
        if not unit:
            return True
        if len(unit) == 1:  # its cost is known before anything changes: no undo
            s = unit[0]
            g = self.seg.spans[s].group
            cost = self._span_cost(s) + (0 if self.kept_group[g] else self._group_cost(g))
            if not self._fits(cost):
                return False
            self.kept_group[g] = True
            self.keep.add(s)
        else:
            self._undo.clear()
            cost = sum(self._add_span(s) for s in unit)
            if not self._fits(cost):
                for kind, i in reversed(self._undo):
                    if kind == "g":
                        self.kept_group[i] = False
                    else:
                        self.keep.discard(i)
                return False
        self.used += cost
        self.accepted.append(unit)
        return True

    def offer_term(self, term: str) -> bool:
        """List `term` in the placeholder or marker where it was hidden, if it fits."""
        assert self.ledger is not None, "offer_term needs Selector(..., ledger=True)"
        cost = term_cost(term)
        if self.used + cost > self.budget or self.ledger_used + cost > self.ledger_cap:
            return False
        self.used += cost
        self.ledger_used += cost
        self.ledger.append(term)
        self.accepted.append(term)
        return True

    def finish(
        self, meanwhile: Callable[[set[int]], Any] | None = None
    ) -> tuple[Assembled, set[int], int, Any]:
        """Assemble, count exactly, and give back units until the budget holds. Returns the
        output, the kept spans, its exact count and what `meanwhile(kept spans)` returned
        (it runs while the tokenizer counts the output on worker threads)."""
        while True:
            asm = self._assemble(self.keep)
            wait = self.counter.messages_async(asm.messages)
            keep = set(self.keep)
            side = meanwhile(keep) if meanwhile is not None else None
            tokens = wait()
            if tokens <= self.budget or not self.accepted:
                return asm, keep, tokens, side
            # Give back the latest units until their tokens cover the excess (one recount
            # per round instead of one per unit).
            freed, over = 0.0, tokens - self.budget
            while self.accepted and freed < over:
                unit = self.accepted.pop()
                if isinstance(unit, str):  # terms are accepted and given back in order
                    assert self.ledger is not None and self.ledger[-1] == unit
                    self.ledger.pop()
                    self.ledger_used -= term_cost(unit)
                    freed += term_cost(unit)
                    continue
                for s in unit:
                    self.keep.discard(s)
                    # a span given back may leave a marker in its place
                    freed += max(self.seg.spans[s].tokens - self.marker_cost, 1)
