"""Compactor surface: errors, policy, placeholders, sink, abstractive summary, registry."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from switchyard import compaction
from switchyard.compaction import (
    BudgetTooSmall,
    CompactionOptions,
    CompactionPolicy,
    Compactor,
    InvalidHistory,
    UnknownStrategy,
)
from switchyard.compaction.segment import split_lines
from switchyard.compaction.summary import MARK
from switchyard.compaction.terms import extract_terms
from switchyard.core.errors import ChatFormatError
from switchyard.core.messages import Message, ToolCall, validate_tool_pairing
from switchyard.retrieval.chunk import Chunk


class MemorySink:
    def __init__(self) -> None:
        self.chunks: dict[str, Chunk] = {}

    def add(self, chunks):
        for c in chunks:
            self.chunks.setdefault(c.id, c)
        return [c.id for c in chunks]


def history(n_steps: int = 12) -> list[Message]:
    msgs = [Message("system", "You are a coding agent."),
            Message("user", "Fix the bug in src/app/parse.py where parse_date fails.")]
    for i in range(n_steps):
        call = ToolCall(f"c{i}", "bash", f'{{"cmd": "cat file_{i}.py"}}')
        out = "\n".join(f"{j}: value_{i}_{j} = compute_{j}({i * 100 + j})" for j in range(60))
        msgs += [Message("assistant", f"Looking at file_{i}.py", tool_calls=(call,)),
                 Message("tool", out, tool_call_id=f"c{i}")]
    msgs.append(Message("assistant", "The bug is value_3_7 in file_3.py."))
    return msgs


@pytest.fixture(scope="module")
def learned() -> Compactor:
    return Compactor.load()


def test_all_is_pinned() -> None:
    assert sorted(compaction.__all__) == sorted(
        n for n in dir(compaction) if not n.startswith("_") and n[0].isupper() or
        n in ("get_strategy",))


def test_placeholders_name_stored_chunks(learned: Compactor) -> None:
    sink = MemorySink()
    msgs = history()
    out = learned.compact(msgs, 2500, namespace="s1", sink=sink)
    assert out.tokens_after <= 2500 < out.tokens_before
    assert set(sink.chunks) == set(out.dropped_ids)
    assert all(c.namespace == "s1" for c in sink.chunks.values())
    marked = [m for m in out.messages if MARK in (m.content or "")]
    assert marked
    listed = {w.strip(",()]") for m in marked for w in (m.content or "").split()}
    assert listed & set(out.dropped_ids)  # placeholders name ids the store now holds
    validate_tool_pairing(out.messages)
    assert out.stats()["tokens_before"] == out.tokens_before


def test_strategies_differ_and_unknown_name_lists_valid() -> None:
    msgs = history()
    results = {n: Compactor.load(options=CompactionOptions(strategy=n)).compact(msgs, 2500)
               for n in ("learned", "truncate", "observation_mask")}
    assert len({tuple(r.messages) for r in results.values()}) == 3
    with pytest.raises(UnknownStrategy, match="learned, truncate, observation_mask"):
        Compactor.load(options=CompactionOptions(strategy="lru"))


def test_options_reject_typos() -> None:
    with pytest.raises(ValueError, match="keep_lats"):
        CompactionOptions(keep_lats=3)  # type: ignore[call-arg]


@pytest.mark.parametrize("bad", ["hello", {"role": "user"}, [{"role": "user", "content": "x"}],
                                 [Message("robot", "x")]])  # type: ignore[arg-type]
def test_bad_input_is_rejected(learned: Compactor, bad: object) -> None:
    with pytest.raises(InvalidHistory):
        learned.compact(bad, 100)  # type: ignore[arg-type]


def test_tool_result_without_call_is_rejected(learned: Compactor) -> None:
    msgs = [Message("system", "s"), Message("user", "u"), Message("tool", "x", tool_call_id="z")]
    with pytest.raises(ChatFormatError, match="no tool call"):
        learned.compact(msgs, 100)


def test_budget_too_small_states_minimum(learned: Compactor) -> None:
    with pytest.raises(BudgetTooSmall) as info:
        learned.compact(history(), 50)
    assert info.value.minimum > 50 and f"at least {info.value.minimum}" in str(info.value)
    learned.compact(history(), info.value.minimum)


async def test_abstractive_summary_stays_in_budget(learned: Compactor) -> None:
    calls: list[str] = []

    async def summarize(text: str) -> str:
        calls.append(text)
        return "Read many files; value_3_7 looked suspicious."

    out = await learned.acompact(history(), 1200, summarize=summarize)
    assert calls and out.tokens_after <= 1200
    assert "value_3_7 looked suspicious" in out.summary
    assert any("looked suspicious" in (m.content or "") for m in out.messages)
    extractive = learned.compact(history(), 1200)
    for run, before in zip(out.runs, extractive.runs, strict=True):
        assert run.dropped_messages == before.dropped_messages > 0
        count = f"{run.dropped_messages} earlier message"
        assert count in (out.messages[run.at].content or "")
        assert count in (extractive.messages[run.at].content or "")


def test_policy() -> None:
    p = CompactionPolicy()
    assert p.budget_for(1000, 10_000, None) is None
    assert p.budget_for(8000, 10_000, None) == 4000
    assert p.budget_for(8000, 10_000, 9000) is None
    assert p.budget_for(8000, 10_000, 2000) == 2000
    with pytest.raises(ValueError, match="target_share"):
        CompactionPolicy(trigger_share=0.3, target_share=0.5)


def test_split_lines_round_trips() -> None:
    text = "\n".join(f"line {i} " * 5 for i in range(200))
    pieces = split_lines(text, 50)
    assert len(pieces) > 1 and "\n".join(pieces) == text


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(st.text(alphabet="ab \t", max_size=90), max_size=40),
       max_tokens=st.integers(1, 20))
def test_split_lines_packs_whole_lines_greedily(lines: list[str], max_tokens: int) -> None:
    text, limit = "\n".join(lines), max_tokens * 4
    pieces = split_lines(text, max_tokens)
    assert "\n".join(pieces) == text
    for piece, after in itertools.pairwise(pieces):
        assert len(piece) <= limit or "\n" not in piece  # only a single line may be longer
        next_line = after.split("\n", 1)[0]
        assert len(piece) + 1 + len(next_line) > limit  # the next line did not fit


def test_terms() -> None:
    got = extract_terms('open src/a.py; user_id mia_li_3668 got 345 "exact quote" plain words')
    assert {"src/a.py", "mia_li_3668", "345", "exact quote"} <= got
    assert "plain" not in got and "words" not in got


def test_dropped_chunks_land_in_the_real_store(learned: Compactor, tmp_path) -> None:
    index_mod = pytest.importorskip("switchyard.retrieval.index")
    store = index_mod.Index.open(tmp_path / "store")
    out = learned.compact(history(), 1200, namespace="s1", sink=store)
    got = store.get(out.dropped_ids[:5])
    assert [c.id for c in got] == out.dropped_ids[:5]


@pytest.mark.parametrize("last", ["tool", "user"])
def test_every_tool_call_is_a_calls_span_on_fresh_and_memoised_segmentation(last: str) -> None:
    from switchyard.compaction.segment import segment
    from switchyard.core.tokens import counter_for

    msgs = history(6)
    if last == "user":
        msgs.append(Message("user", "go on"))
    with_calls = {i for i, m in enumerate(msgs) if m.tool_calls}
    for _ in range(2):  # the second call reuses memoised spans
        seg = segment(msgs, counter_for(None), chunk_max_tokens=48, keep_last_groups=2,
                      namespace=f"calls-{last}")
        assert set(seg.calls_span) == with_calls
        assert all(seg.spans[s].kind == "calls" for s in seg.calls_span.values())
        assert not any(seg.spans[s].kind == "calls" for own in seg.message_spans for s in own)
