"""What a dropped run or an elided range turns into: short, clearly marked text.

Placeholders name the chunk ids so retrieval can bring the text back; the extractive
summary says what was there: the tool calls made, then its specific terms. The terms come
either from a ledger (the learned strategy chose them, and paid for each, like any span)
or, for the baselines, the most frequent ones within the placeholder cap.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Sequence

from switchyard.compaction.segment import Segmentation, Span
from switchyard.compaction.terms import reads_as_itself, terms_of
from switchyard.core.tokens import TokenCounter

MARK = "[switchyard:"
_PIECE = re.compile(r"[A-Z]?[a-z]{1,7}|[A-Z]{1,4}|\d{1,3}|[^A-Za-z\d\s]")
_ERROR_WORD = re.compile(r"\b\w*(?:Error|Exception)\b")  # as terms.py's error lines
_SPACE = re.compile(r"\s")


@functools.lru_cache(maxsize=200_000)
def term_cost(term: str) -> float:
    """Estimated tokens a term adds to a mentions list, separator included (cl100k splits
    digits in threes and words in pieces; within about a token of the real count, unbiased;
    the selector's exact count settles the rest)."""
    return len(_PIECE.findall(term)) + 1.5


def listable(term: str) -> bool:
    """Whether a mentions list can show the term as itself (an error line cut at 120
    characters may end in a space, which reading back strips)."""
    return term == term.strip()


def render_mentions(terms: Sequence[str]) -> str:
    """A mentions list that reads back as the same terms: identifiers comma-separated,
    quoted text (a word or phrase) in backticks, error lines each on a line of their own."""
    words: list[str] = []
    lines: list[str] = []
    for t in terms:
        if not _SPACE.search(t) and reads_as_itself(t):
            words.append(t)
        elif "`" not in t and len(t) <= 80 and not _ERROR_WORD.search(t):
            words.append(f"`{t}`")
        else:
            lines.append(t)
    out = "mentions: " + ", ".join(words) if words else ""
    return "\n".join([out, *lines] if out else lines)


def strip_marked(text: str) -> str:
    """The text without placeholders and markers (what was kept verbatim). A marked block
    is one line starting with MARK and ending in "]", or, with mentions, up to a "]" line."""
    out: list[str] = []
    inside = False
    for line in text.split("\n"):
        if inside:
            inside = line != "]"
        elif line.startswith(MARK):
            inside = not line.endswith("]")
        else:
            out.append(line)
    return "\n".join(out)


def id_list(ids: Sequence[str], max_ids: int) -> str:
    shown = ", ".join(ids[:max_ids])
    more = len(ids) - max_ids
    return f"{shown} (+{more} more)" if more > 0 else shown


def marker_text(spans: Sequence[Span], max_ids: int, mentions: str = "") -> str:
    """Inline marker for an elided range inside a kept message."""
    lines = sum(s.text.count("\n") + 1 for s in spans)
    tail = f"\n{mentions}\n" if mentions else ""
    return (f"{MARK} {lines} lines compacted; recall chunk "
            f"{id_list([s.id for s in spans], max_ids)}{tail}]")


def worst_marker_tokens(counter: TokenCounter, max_ids: int) -> int:
    fake = f"{MARK} 99999 lines compacted; recall chunk " + ", ".join(["f" * 20] * max_ids)
    return counter.count(fake + " (+9999 more)]") + 2


def extractive_summary(
    seg: Segmentation, spans: Sequence[Span], max_chars: int, with_terms: bool = True
) -> str:
    """Tool calls made in the run, then (`with_terms`) its most frequent specific terms,
    within max_chars."""
    parts: list[str] = []
    for s in spans:
        if s.kind != "calls":
            continue
        for c in seg.messages[s.message_index].tool_calls:
            parts.append(f"`{c.name} {c.arguments[:40]}`")
    out = "tool calls: " + ", ".join(parts) if parts else ""
    if with_terms:
        counts: Counter[str] = Counter()
        for s in spans:
            counts.update(t for t in terms_of(s.text) if len(t) <= 60)
        terms = [t for t, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
        if terms:
            out += ("; " if out else "") + "mentions: " + ", ".join(terms[:40])
    return out[:max_chars]


def placeholder_text(
    n_messages: int, summary: str, ids: Sequence[str], max_ids: int, mentions: str = ""
) -> str:
    what = f"{n_messages} earlier message{'s' if n_messages != 1 else ''} compacted"
    body = f" — {summary}" if summary else ""
    tail = f"\n{mentions}\n" if mentions else ""
    return f"{MARK} {what}{body} — recall with chunk ids {id_list(list(ids), max_ids)}{tail}]"


def fit_placeholder(
    n_messages: int, summary: str, ids: Sequence[str], max_ids: int, counter: TokenCounter,
    cap: int, mentions: str = "",
) -> str:
    """The placeholder text, its summary shortened until the text without `mentions` (the
    ledger's terms, paid for separately) fits `cap` tokens."""
    text = placeholder_text(n_messages, summary, ids, max_ids)
    while summary and counter.count(text) > cap:
        summary = summary[: int(len(summary) * 0.7)].rsplit(" ", 1)[0]
        text = placeholder_text(n_messages, summary, ids, max_ids)
    return placeholder_text(n_messages, summary, ids, max_ids, mentions) if mentions else text
