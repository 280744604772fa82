"""What a dropped run or an elided range turns into: short, clearly marked text.

Placeholders name the chunk ids so retrieval can bring the text back; the extractive
summary says what was there (tool calls made, the most frequent specific terms).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from compaction.segment import Segmentation, Span
from compaction.terms import terms_of
from retrieval.tokens import TokenCounter

MARK = "[switchyard:"


def id_list(ids: Sequence[str], max_ids: int) -> str:
    shown = ", ".join(ids[:max_ids])
    more = len(ids) - max_ids
    return f"{shown} (+{more} more)" if more > 0 else shown


def marker_text(spans: Sequence[Span], max_ids: int) -> str:
    """Inline marker for an elided range inside a kept message."""
    lines = sum(s.text.count("\n") + 1 for s in spans)
    return f"{MARK} {lines} lines compacted; recall chunk {id_list([s.id for s in spans], max_ids)}]"


def worst_marker_tokens(counter: TokenCounter, max_ids: int) -> int:
    fake = f"{MARK} 99999 lines compacted; recall chunk " + ", ".join(["f" * 20] * max_ids)
    return counter.count(fake + " (+9999 more)]") + 2


def extractive_summary(
    seg: Segmentation, spans: Sequence[Span], max_chars: int,
    priority: dict[str, float] | None = None,
) -> str:
    """Tool calls made in the run, then its specific terms, within max_chars: the most
    likely-needed first when `priority` (term -> weight, visible terms absent) is given,
    else the most frequent."""
    parts: list[str] = []
    for s in spans:
        if s.kind != "calls":
            continue
        for c in seg.messages[s.message_index].tool_calls:
            parts.append(f"`{c.name} {c.arguments[:40]}`")
    counts: Counter[str] = Counter()
    for s in spans:
        counts.update(t for t in terms_of(s.text) if len(t) <= 60)
    if priority is not None:
        ranked = sorted(((-priority[t], -n, t) for t, n in counts.items() if t in priority))
        terms = [t for _, _, t in ranked]
    else:
        terms = [t for t, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    out = ""
    if parts:
        out = "tool calls: " + ", ".join(parts)
    if terms:
        out += ("; " if out else "") + "mentions: " + ", ".join(terms[:40])
    return out[:max_chars]


def placeholder_text(n_messages: int, summary: str, ids: Sequence[str], max_ids: int) -> str:
    what = f"{n_messages} earlier message{'s' if n_messages != 1 else ''} compacted"
    body = f" — {summary}" if summary else ""
    return f"{MARK} {what}{body} — recall with chunk ids {id_list(list(ids), max_ids)}]"


def fit_placeholder(
    n_messages: int, summary: str, ids: Sequence[str], max_ids: int, counter: TokenCounter, cap: int
) -> str:
    """The placeholder text, its summary shortened until it fits `cap` tokens."""
    text = placeholder_text(n_messages, summary, ids, max_ids)
    while summary and counter.count(text) > cap:
        summary = summary[: int(len(summary) * 0.7)].rsplit(" ", 1)[0]
        text = placeholder_text(n_messages, summary, ids, max_ids)
    return text
