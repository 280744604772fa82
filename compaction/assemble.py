"""Build the compacted message list from a set of kept spans.

Kept groups come out whole in structure (every tool call with its result), with elided
content ranges replaced by inline markers; each maximal run of dropped groups becomes one
`user` placeholder message. The output always passes `validate_tool_pairing`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from compaction.segment import Segmentation, Span
from compaction.summary import extractive_summary, fit_placeholder, marker_text
from retrieval.chat import Message
from retrieval.tokens import TokenCounter

Summarize = Callable[[str], Awaitable[str]]


@dataclass(slots=True)
class Assembled:
    messages: list[Message]
    runs: list[list[Span]]  # the spans of each dropped run, in order
    placeholders: list[int]  # index in `messages` of each run's placeholder
    summaries: list[str]


def kept_groups(seg: Segmentation, keep: set[int]) -> list[bool]:
    kept = [g in seg.mandatory for g in range(len(seg.groups))]
    for s in keep:
        kept[seg.spans[s].group] = True
    return kept


def _content(seg: Segmentation, m: int, keep: set[int], force: bool, max_ids: int) -> str | None:
    own = seg.message_spans[m]
    if not own:
        return seg.messages[m].content
    if force or all(s in keep for s in own):
        return seg.messages[m].content
    pieces: list[str] = []
    elided: list[Span] = []
    for s in own:
        if s in keep:
            if elided:
                pieces.append(marker_text(elided, max_ids))
                elided = []
            pieces.append(seg.spans[s].text)
        else:
            elided.append(seg.spans[s])
    if elided:
        pieces.append(marker_text(elided, max_ids))
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
    priority: dict[str, float] | None = None,
) -> Assembled:
    kept = kept_groups(seg, keep)
    out: list[Message] = []
    runs: list[list[Span]] = []
    placeholders: list[int] = []
    summaries: list[str] = []
    pending: list[int] = []  # dropped groups of the current run

    def flush() -> None:
        if not pending:
            return
        spans = [seg.spans[s] for g in pending for s in seg.group_spans(g)]
        n_msgs = sum(seg.groups[g].stop - seg.groups[g].start for g in pending)
        summary = (extractive_summary(seg, spans, placeholder_cap * 4, priority)
                   if summarize else "")
        text = fit_placeholder(n_msgs, summary, [s.id for s in spans], max_ids, counter,
                               placeholder_cap)
        runs.append(spans)
        placeholders.append(len(out))
        summaries.append(summary)
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
            content = _content(seg, m, keep, force, marker_ids or max_ids)
            out.append(msg if content == msg.content else replace(msg, content=content))
    flush()
    return Assembled(out, runs, placeholders, summaries)
