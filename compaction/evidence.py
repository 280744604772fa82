"""Evidence kept: the share of what the next step needs that survives compaction.

For a history and the assistant step that followed it, the evidence is the set of salient
terms the step uses that appear earlier in the (non-system) history. A term survives if it
is still visible in the compacted messages. `droppable` restricts the evidence to terms
found only outside the groups every strategy must keep (system, task, latest turns), which
is where strategies differ. `verbatim` counts only terms visible outside placeholders and
markers: the ledger of terms a placeholder lists keeps a term, not its context.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from switchyard.compaction.labels import system_terms
from switchyard.compaction.segment import group_messages, mandatory_groups
from switchyard.compaction.summary import strip_marked
from switchyard.compaction.terms import terms_of
from switchyard.core.messages import Message

if TYPE_CHECKING:
    from switchyard.compaction.result import Compaction


@dataclass(frozen=True, slots=True)
class Evidence:
    all: frozenset[str]
    droppable: frozenset[str]


def evidence_for(history: Sequence[Message], step: Message, keep_last_groups: int) -> Evidence:
    history_terms: set[str] = set()
    for m in history:
        if m.role not in ("system", "developer"):
            history_terms |= terms_of(m.text())
    needed = (terms_of(step.text()) & history_terms) - system_terms(history)
    groups = group_messages(history)
    fixed: set[str] = set()
    for g in mandatory_groups(history, groups, keep_last_groups):
        for m in history[groups[g].start : groups[g].stop]:
            fixed |= terms_of(m.text())
    return Evidence(frozenset(needed), frozenset(needed - fixed))


def visible_terms(messages: Sequence[Message], verbatim: bool = False) -> set[str]:
    out: set[str] = set()
    for m in messages:
        out |= terms_of(strip_marked(m.text()) if verbatim else m.text())
    return out


def kept_share(evidence: frozenset[str], visible: set[str]) -> tuple[int, int]:
    """(kept, total) counts, so callers can pool over many cut points."""
    return len(evidence & visible), len(evidence)


@dataclass
class EvidenceReport:
    """Pooled over cut points: kept/total evidence terms per compression ratio."""

    ratios: tuple[float, ...]
    kept: dict[float, int]
    total: dict[float, int]
    kept_droppable: dict[float, int]
    total_droppable: dict[float, int]
    points: dict[float, int]
    skipped: dict[float, int]
    kept_verbatim: dict[float, int]

    def share(self, r: float, droppable: bool = False, verbatim: bool = False) -> float:
        if droppable:
            k, t = self.kept_droppable[r], self.total_droppable[r]
        else:
            k, t = (self.kept_verbatim if verbatim else self.kept)[r], self.total[r]
        return k / t if t else 1.0

    def to_json(self) -> dict[str, object]:
        return {
            str(r): {
                "evidence_kept": round(self.share(r), 4),
                "droppable_evidence_kept": round(self.share(r, True), 4),
                "verbatim_evidence_kept": round(self.share(r, verbatim=True), 4),
                "evidence_terms": self.total[r], "droppable_terms": self.total_droppable[r],
                "cut_points": self.points[r], "skipped": self.skipped[r],
            }
            for r in self.ratios
        }


def evaluate(
    histories: Sequence[Sequence[Message]],
    compact: Callable[[Sequence[Message], int], Compaction],
    ratios: Sequence[float] = (2.0, 4.0, 8.0),
    *,
    keep_last_groups: int = 2,
    budget_of: Callable[[Sequence[Message], float], int | None] | None = None,
) -> EvidenceReport:
    """Run `compact` on every cut point of every history at each ratio and pool the evidence.

    `budget_of(history, ratio)` gives the budget (None skips the point); by default the
    ratio applies to the compactable part: minimum + (tokens - minimum) / ratio.
    """
    from switchyard.compaction.errors import BudgetTooSmall
    from switchyard.compaction.trajectories import cut_points

    budget_of = budget_of or compactable_budget
    rs = tuple(ratios)
    rep = EvidenceReport(rs, *({r: 0 for r in rs} for _ in range(7)))
    for messages in histories:
        msgs = list(messages)
        for t in cut_points(msgs):
            history, step = msgs[:t], msgs[t]
            ev = evidence_for(history, step, keep_last_groups)
            for r in rs:
                budget = budget_of(history, r)
                try:
                    if budget is None:
                        raise BudgetTooSmall(0, 0)
                    out = compact(history, budget)
                except BudgetTooSmall:
                    rep.skipped[r] += 1
                    continue
                vis = visible_terms(out.messages)
                k, n = kept_share(ev.all, vis)
                rep.kept[r] += k
                rep.total[r] += n
                k, n = kept_share(ev.droppable, vis)
                rep.kept_droppable[r] += k
                rep.total_droppable[r] += n
                rep.kept_verbatim[r] += kept_share(ev.all, visible_terms(out.messages, True))[0]
                rep.points[r] += 1
    return rep


def minimum_tokens(history: Sequence[Message], keep_last_groups: int = 2) -> tuple[int, int]:
    """(tokens of the history, tokens the invariants alone need)."""
    from switchyard.compaction.options import CompactionOptions
    from switchyard.compaction.segment import segment
    from switchyard.compaction.select import Selector
    from switchyard.core.tokens import counter_for

    opts = CompactionOptions(keep_last_groups=keep_last_groups)
    counter = counter_for(None)
    seg = segment(history, counter, chunk_max_tokens=opts.chunk_max_tokens,
                  keep_last_groups=keep_last_groups)
    return counter.messages(history), Selector(seg, 10**12, counter, opts).minimum


def compactable_budget(history: Sequence[Message], ratio: float) -> int | None:
    total, minimum = minimum_tokens(history)
    if total - minimum < 200:  # nothing worth compacting
        return None
    return minimum + int((total - minimum) / ratio)


def whole_budget(history: Sequence[Message], ratio: float) -> int | None:
    total, minimum = minimum_tokens(history)
    budget = int(total / ratio)
    return budget if budget >= minimum else None
