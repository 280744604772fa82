"""What every strategy shares: input checks, segmentation, the unchanged fast path, and the
`Compaction` built from a selection. Strategies only decide the order of preference."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from collections.abc import Sequence as SequenceABC
from dataclasses import dataclass
from typing import Any

from switchyard.compaction.errors import InvalidHistory
from switchyard.compaction.options import CompactionOptions
from switchyard.compaction.result import Compaction, Run
from switchyard.compaction.segment import Segmentation, segment
from switchyard.compaction.select import Selector
from switchyard.compaction.terms import terms_of
from switchyard.core.messages import ROLES, Message, validate_tool_pairing
from switchyard.core.tokens import TokenCounter, counter_for
from switchyard.retrieval.chunk import Chunk

# Dropped chunks are frozen and an agent's next call drops mostly the same ones: reuse them.
_CHUNKS: dict[tuple[str, str, str, int], Chunk] = {}
_MAX_CHUNKS = 100_000


@dataclass(slots=True)
class Prepared:
    seg: Segmentation
    counter: TokenCounter
    options: CompactionOptions
    tokens_before: int
    namespace: str
    ahead: Any = None  # what the strategy's `ahead(seg)` returned


def check_history(messages: object, budget: object) -> list[Message]:
    if isinstance(messages, (str, bytes, dict)) or not isinstance(messages, SequenceABC):
        raise InvalidHistory(
            f"messages must be a list of Message values; got {type(messages).__name__} "
            "(parse raw JSON with retrieval.chat.parse_messages)", "messages"
        )
    if not messages:
        raise InvalidHistory("messages must not be empty", "messages")
    for i, m in enumerate(messages):
        if not isinstance(m, Message):
            raise InvalidHistory(
                f"messages[{i}] is a {type(m).__name__}, not a Message "
                "(parse raw JSON with retrieval.chat.parse_messages)", f"messages[{i}]"
            )
        if m.role not in ROLES:
            raise InvalidHistory(
                f"messages[{i}].role must be one of {', '.join(ROLES)}; got {m.role!r}",
                f"messages[{i}].role",
            )
    if isinstance(budget, bool) or not isinstance(budget, int) or budget <= 0:
        raise InvalidHistory(f"budget must be a positive int; got {budget!r}", "budget")
    validate_tool_pairing(messages)  # ChatFormatError for tool results without calls
    return list(messages)


def prepare(
    messages: Sequence[Message], budget: int, model: str | None,
    options: CompactionOptions | None, namespace: str,
    ahead: Callable[[Segmentation], Any] | None = None, ahead_share: float = 0.0,
) -> Prepared:
    """Check and segment the history. `ahead(seg)` (the strategy's work that needs no token
    counts) runs while the tokenizer works on worker threads, and `ahead_share` of the
    tokenizing is left to this thread for after it (`segment`'s `overlap_share`); without
    it, extractive summaries get every span's terms extracted there."""
    msgs = check_history(messages, budget)
    opts = options or CompactionOptions()
    counter = counter_for(model)
    got: list[Any] = [None]

    def overlap(seg: Segmentation) -> None:
        if ahead is not None:
            got[0] = ahead(seg)
        elif opts.extractive_summary:
            terms_of.many([s.text for s in seg.spans])

    seg = segment(msgs, counter, chunk_max_tokens=opts.chunk_max_tokens,
                  keep_last_groups=opts.keep_last_groups, namespace=namespace, overlap=overlap,
                  overlap_share=ahead_share)
    return Prepared(seg, counter, opts, seg.tokens(), namespace, got[0])


def unchanged(p: Prepared, strategy: str) -> Compaction:
    """Already within budget: nothing to do (compacting twice changes nothing)."""
    ids = [s.id for s in p.seg.spans]
    return Compaction(list(p.seg.messages), ids, [], p.tokens_before, p.tokens_before, "",
                      strategy, budget=p.tokens_before)


def selector(p: Prepared, budget: int) -> Selector:
    return Selector(p.seg, budget, p.counter, p.options)


def finish(p: Prepared, sel: Selector, strategy: str) -> Compaction:
    # the kept ids and dropped chunks are made while the tokenizer counts the output
    asm, _kept, tokens, (kept_ids, dropped) = sel.finish(lambda keep: _split(p, keep))
    summary = "\n".join(x for x in asm.summaries if x)
    runs = [Run(at, [s.id for s in spans], mentions, n)
            for at, spans, mentions, n in zip(asm.placeholders, asm.runs, asm.mentions,
                                              asm.dropped_messages)]
    return Compaction(asm.messages, kept_ids, [c.id for c in dropped], p.tokens_before, tokens,
                      summary, strategy, dropped, runs, sel.budget)


def _split(p: Prepared, keep: set[int]) -> tuple[list[str], list[Chunk]]:
    """The kept span ids and the dropped chunks."""
    seg = p.seg
    present = seg.mandatory
    kept_ids: list[str] = []
    dropped: list[Chunk] = []
    if len(_CHUNKS) > _MAX_CHUNKS:
        _CHUNKS.clear()
    for s in seg.spans:
        if s.group in present or s.index in keep:
            kept_ids.append(s.id)
            continue
        role = seg.messages[s.message_index].role
        key = (s.id, p.namespace, role, s.tokens)  # the id hashes text and position
        chunk = _CHUNKS.get(key)
        if chunk is None:
            chunk = _CHUNKS[key] = Chunk(
                id=s.id, namespace=p.namespace, text=s.text, role=role,
                message_index=s.message_index, tokens=s.tokens, created_at=0.0)
        dropped.append(chunk)
    return kept_ids, dropped
