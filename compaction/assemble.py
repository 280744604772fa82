"""Build the compacted message list from a set of kept spans.

Kept groups come out whole in structure (every tool call with its result), with elided
content ranges replaced by inline markers; each maximal run of dropped groups becomes one
`user` placeholder message. The output always passes `validate_tool_pairing`. Ledger terms
(chosen by the learned strategy) are listed where their first hidden occurrence was, unless
a kept span shows them anyway.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

from switchyard.compaction.segment import Segmentation, Span
from switchyard.compaction.summary import (
    extractive_summary,
    fit_placeholder,
    marker_text,
    render_mentions,
)
from switchyard.compaction.terms import terms_of
from switchyard.core.messages import Message
from switchyard.core.tokens import TokenCounter

Summarize = Callable[[str], Awaitable[str]]


@dataclass(slots=True)
class Assembled:
    messages: list[Message]
    runs: list[list[Span]]  # the spans of each dropped run, in order
    placeholders: list[int]  # index in `messages` of each run's placeholder
    summaries: list[str]
    mentions: list[str]  # each run's rendered ledger terms ("" without a ledger)
    dropped_messages: list[int]  # how many messages each run stands for


def kept_groups(seg: Segmentation, keep: set[int]) -> list[bool]:
    kept = [g in seg.mandatory for g in range(len(seg.groups))]
    for s in keep:
        kept[seg.spans[s].group] = True
    return kept


class _Ledger:
    """Where each ledger term is listed: at its first hidden occurrence."""

    def __init__(self, seg: Segmentation, kept: list[bool], keep: set[int],
                 terms: Sequence[str]) -> None:
        self.at: dict[int, list[str]] = {}
        left = set(terms)
        if not left:
            return
        mandatory = seg.mandatory
        left.difference_update(*[
            terms_of(s.text) for s in seg.spans if s.index in keep or s.group in mandatory
            or (kept[s.group] and s.kind != "text")])
        rank = {t: i for i, t in enumerate(terms)}
        for s in seg.spans:
            if not left:
                break
            if s.index in keep or s.group in mandatory:
                continue
            here = terms_of(s.text) & left
            if here:
                self.at[s.index] = sorted(here, key=rank.__getitem__)
                left -= here

    def mentions(self, spans: Sequence[Span]) -> str:
        terms = [t for s in spans for t in self.at.get(s.index, ())]
        return render_mentions(terms) if terms else ""


def _content(seg: Segmentation, m: int, keep: set[int], force: bool, max_ids: int,
             ledger: _Ledger | None) -> str | None:
    own = seg.message_spans[m]
    if not own:
        return seg.messages[m].content
    if force or all(s in keep for s in own):
        return seg.messages[m].content
    pieces: list[str] = []
    elided: list[Span] = []

    def mark() -> None:
        pieces.append(marker_text(elided, max_ids, ledger.mentions(elided) if ledger else ""))

    for s in own:
        if s in keep:
            if elided:
                mark()
                elided = []
            pieces.append(seg.spans[s].text)
        else:
            elided.append(seg.spans[s])
    if elided:
        mark()
    return "\n".join(pieces)


def assemble(
    seg: Segmentation,
    keep: set[int],
    counter: TokenCounter,
    *,
    max_ids: int,
    placeholder_cap: int,
    summarize: bool,
    marker_ids: int | None = None,
    ledger: Sequence[str] | None = None,
) -> Assembled:
    """`ledger`: the terms to list in place of each run's most frequent ones (None: the
    frequency summary, capped like the rest of the placeholder)."""
    kept = kept_groups(seg, keep)
    where = _Ledger(seg, kept, keep, ledger) if ledger is not None and summarize else None
    asm = Assembled([], [], [], [], [], [])
    out = asm.messages
    pending: list[int] = []  # dropped groups of the current run

    def flush() -> None:
        if not pending:
            return
        spans = [seg.spans[s] for g in pending for s in seg.group_spans(g)]
        n_msgs = sum(seg.groups[g].stop - seg.groups[g].start for g in pending)
        summary = (extractive_summary(seg, spans, placeholder_cap * 4, where is None)
                   if summarize else "")
        mentions = where.mentions(spans) if where else ""
        text = fit_placeholder(n_msgs, summary, [s.id for s in spans], max_ids, counter,
                               placeholder_cap, mentions)
        asm.runs.append(spans)
        asm.placeholders.append(len(out))
        asm.summaries.append(summary)
        asm.mentions.append(mentions)
        asm.dropped_messages.append(n_msgs)
        out.append(Message(role="user", content=text))
        pending.clear()

    for g, grp in enumerate(seg.groups):
        if not kept[g]:
            pending.append(g)
            continue
        flush()
        force = g in seg.mandatory
        for m in range(grp.start, grp.stop):
            msg = seg.messages[m]
            content = _content(seg, m, keep, force, marker_ids or max_ids, where)
            out.append(msg if content == msg.content else replace(msg, content=content))
    flush()
    return asm
