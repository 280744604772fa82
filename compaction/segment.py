"""Messages -> spans (the chunks the compactor scores, keeps or drops) and groups.

A group is what must be kept or dropped as a unit: an assistant message with tool calls plus
the tool messages answering it, or a single other message. Long texts are split at line
boundaries into spans of about `chunk_max_tokens`; a span knows its message and its group.
An assistant's tool calls form one "calls" span that is never elided (its JSON arguments
must stay whole); it is kept whenever its group is. A span's token count is its share of
its message's tokens (`retrieval.tokens.part_counts`): one encoding per message, and a
message's spans sum exactly to its count.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from switchyard.core.messages import Message
from switchyard.core.tokens import MESSAGE_OVERHEAD_TOKENS, TokenCounter
from switchyard.retrieval.chunk import chunk_id

_CHARS_PER_TOKEN = 4  # only to choose split points; every span is then counted


@dataclass(slots=True)
class Span:
    index: int
    message_index: int
    group: int
    part: int  # position among the content spans of its message (-1 for calls)
    kind: str  # "text" (elidable content), "calls" (tool calls), "whole" (attachments)
    text: str
    tokens: int = 0
    id: str = ""


@dataclass(slots=True)
class Group:
    index: int
    start: int  # first message index
    stop: int  # one past the last message index


@dataclass(slots=True)
class Segmentation:
    messages: list[Message]
    spans: list[Span]
    groups: list[Group]
    message_spans: list[list[int]]  # content spans of each message, in order
    calls_span: dict[int, int]  # message index -> its calls span
    group_of_message: list[int]
    mandatory: set[int] = field(default_factory=set)  # group indices always kept

    def tokens(self) -> int:
        """The history's exact count: a message's spans hold all of its tokens."""
        return sum(s.tokens for s in self.spans) + MESSAGE_OVERHEAD_TOKENS * len(self.messages)

    def group_spans(self, g: int) -> list[int]:
        grp = self.groups[g]
        out: list[int] = []
        for m in range(grp.start, grp.stop):
            out.extend(self.message_spans[m])
            if m in self.calls_span:
                out.append(self.calls_span[m])
        return out


def group_messages(messages: Sequence[Message]) -> list[Group]:
    groups: list[Group] = []
    for i, m in enumerate(messages):
        if m.role == "tool" and groups:
            groups[-1].stop = i + 1  # pairing was validated: it answers the group's call
        else:
            groups.append(Group(len(groups), i, i + 1))
    return groups


_SPLITS: dict[tuple[str, int], list[str]] = {}
_IDS: dict[tuple[str, str, int], str] = {}
_MAX_MEMO = 100_000  # agents resend the same texts: memoise splits and ids, bounded


def _memo_split(text: str, max_tokens: int) -> list[str]:
    key = (text, max_tokens)
    got = _SPLITS.get(key)
    if got is None:
        if len(_SPLITS) > _MAX_MEMO:
            _SPLITS.clear()
        got = _SPLITS[key] = split_lines(text, max_tokens)
    return got


def _memo_id(namespace: str, text: str, position: int) -> str:
    key = (namespace, text, position)
    got = _IDS.get(key)
    if got is None:
        if len(_IDS) > _MAX_MEMO:
            _IDS.clear()
        got = _IDS[key] = chunk_id(namespace, text, "", position)
    return got


def split_lines(text: str, max_tokens: int) -> list[str]:
    """Split at line boundaries into pieces of about max_tokens; "\\n".join restores text.
    Each piece takes as many whole lines as fit the limit; a longer line is a piece alone."""
    limit = max_tokens * _CHARS_PER_TOKEN
    pieces: list[str] = []
    start = 0
    while len(text) - start > limit:
        end = text.rfind("\n", start, start + limit + 1)  # the last line end that fits
        if end < 0:
            end = text.find("\n", start + limit + 1)
            if end < 0:
                break
        pieces.append(text[start:end])
        start = end + 1
    pieces.append(text[start:])
    return pieces


def mandatory_groups(messages: Sequence[Message], groups: list[Group], keep_last: int) -> set[int]:
    """System prompts, the first user task, the last user turn and the latest groups."""
    g_of = _group_index(groups, len(messages))
    keep = {g.index for g in groups[-keep_last:]}
    users = [i for i, m in enumerate(messages) if m.role == "user"]
    if users:
        keep.update((g_of[users[0]], g_of[users[-1]]))
    keep.update(g_of[i] for i, m in enumerate(messages) if m.role in ("system", "developer"))
    keep.add(0)  # the opening message frames the conversation
    return keep


def _group_index(groups: list[Group], n: int) -> list[int]:
    out = [0] * n
    for g in groups:
        for m in range(g.start, g.stop):
            out[m] = g.index
    return out


# (part, kind, text, id, tokens) of each span of one message
_Row = tuple[int, str, str, str, int]
# A message's spans, by (namespace, index, content, calls, attachments, chunk size): an agent
# resends its history with one more turn, so most messages come back at the same index.
_MESSAGES: dict[tuple[str, int, str | None, str | None, bool, int], tuple[_Row, ...]] = {}


def _calls_text(m: Message) -> str | None:
    if not m.tool_calls:
        return None
    return "\n".join(f"{c.name}({c.arguments})" for c in m.tool_calls)


def _fresh_rows(m: Message, calls: str | None, chunk_max_tokens: int) -> list[_Row]:
    """A message's spans, content pieces then its calls (ids and counts not known yet)."""
    if m.attachments:
        pieces, kind = [m.content or ""], "whole"
    else:
        pieces, kind = _memo_split(m.content or "", chunk_max_tokens), "text"
    rows = [(part, kind, piece, "", 0) for part, piece in enumerate(pieces)
            if piece or len(pieces) > 1]
    if calls is not None:
        rows.append((-1, "calls", calls, "", 0))
    return rows


def segment(
    messages: Sequence[Message],
    counter: TokenCounter,
    *,
    chunk_max_tokens: int,
    keep_last_groups: int,
    namespace: str = "",
    overlap: Callable[[Segmentation], object] | None = None,
    overlap_share: float = 0.0,
) -> Segmentation:
    """Spans and groups of `messages`, every span counted.

    Each message is encoded once, whole (its text is its spans joined by newlines), and its
    tokens are credited to its spans: a message's span counts sum exactly to its own count,
    which lands in the counter's cache. `overlap(seg)` runs while the tokenizer works on
    worker threads: the caller's own work that needs no counts (span and group structure,
    texts, ids and the mandatory groups are all set; spans' `tokens` are not, yet). With
    much of it, `overlap_share` of the text is left for this thread to encode afterwards
    (`encode_many_async`'s `caller_share`)."""
    groups = group_messages(messages)
    g_of = _group_index(groups, len(messages))
    spans: list[Span] = []
    message_spans: list[list[int]] = []
    calls_span: dict[int, int] = {}
    fresh: list[tuple[tuple, list[int]]] = []  # messages not memoised: key, their spans
    if len(_MESSAGES) > _MAX_MEMO:
        _MESSAGES.clear()
    made: list[tuple[tuple, bool, Sequence[_Row]]] = []  # key, memoised, rows per message
    for i, m in enumerate(messages):
        calls = _calls_text(m)
        key = (namespace, i, m.content, calls, bool(m.attachments), chunk_max_tokens)
        rows = _MESSAGES.get(key)
        made.append((key, rows is not None, rows or _fresh_rows(m, calls, chunk_max_tokens)))
    # the tokenizer starts before the spans are built
    wait = counter.parts_async([[r[2] for r in rows] for _, memo, rows in made
                                if not memo and rows], caller_share=overlap_share)
    for i, (key, memo, built) in enumerate(made):
        own = list(range(len(spans), len(spans) + len(built)))
        g = g_of[i]
        for s, (part, kind, text, sid, n) in zip(own, built):
            spans.append(Span(s, i, g, part, kind, text, n, sid))
        if not memo and built:
            fresh.append((key, own[:]))
        if built and built[-1][1] == "calls":
            calls_span[i] = own.pop()
        message_spans.append(own)
    for _, own in fresh:  # hashed while the tokenizer works
        for s in own:
            span = spans[s]
            span.id = _memo_id(namespace, span.text, span.message_index * 10_000 + span.part + 1)
    seg = Segmentation(list(messages), spans, groups, message_spans, calls_span, g_of)
    seg.mandatory = mandatory_groups(messages, groups, keep_last_groups)
    if overlap is not None:
        overlap(seg)
    for (key, own), counts in zip(fresh, wait()):
        for s, n in zip(own, counts):
            spans[s].tokens = n
        _MESSAGES[key] = tuple((spans[s].part, spans[s].kind, spans[s].text, spans[s].id,
                                spans[s].tokens) for s in own)
    return seg
