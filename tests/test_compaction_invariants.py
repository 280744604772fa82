"""Property tests: every invariant of every strategy over generated agent histories."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from switchyard.compaction import BudgetTooSmall, CompactionOptions, Compactor
from switchyard.compaction.segment import group_messages
from switchyard.core.messages import Message, ToolCall, validate_tool_pairing
from switchyard.core.tokens import count_message_tokens

WORDS = ["the", "file", "open", "error", "value", "check", "run", "test", "line", "fix"]
IDENTS = ["foo_bar", "src/app/main.py", "TimeDelta", "NO6JO3", "user_42", "12345", "x.y.z"]


@st.composite
def texts(draw, max_lines: int = 6) -> str:
    lines = []
    for _ in range(draw(st.integers(1, max_lines))):
        n = draw(st.integers(1, 12))
        lines.append(" ".join(draw(st.sampled_from(WORDS + IDENTS)) for _ in range(n)))
    return "\n".join(lines)


@st.composite
def histories(draw) -> list[Message]:
    msgs = [Message("system", "You are an agent. Use the tools."), Message("user", draw(texts()))]
    call = 0
    for _ in range(draw(st.integers(1, 10))):
        kind = draw(st.sampled_from(["chat", "tools", "obs"]))
        if kind == "chat":
            msgs += [Message("assistant", draw(texts())), Message("user", draw(texts()))]
        elif kind == "obs":
            msgs += [Message("assistant", draw(texts(2))), Message("user", draw(texts(60)))]
        else:
            calls = []
            for _ in range(draw(st.integers(1, 2))):
                call += 1
                calls.append(ToolCall(f"call_{call}", "bash", '{"cmd": "grep foo_bar"}'))
            content = draw(st.one_of(st.none(), texts(2)))
            msgs.append(Message("assistant", content, tool_calls=tuple(calls)))
            for c in calls:
                msgs.append(Message("tool", draw(texts(60)), tool_call_id=c.id))
    if draw(st.booleans()):
        msgs.append(Message("assistant", draw(texts(3))))
    return msgs


COMPACTORS = {name: Compactor.load(options=CompactionOptions(strategy=name))
              for name in ("learned", "truncate", "observation_mask")}


def _check(name: str, msgs: list[Message], budget: int) -> None:
    comp = COMPACTORS[name]
    try:
        out = comp.compact(msgs, budget)
    except BudgetTooSmall as exc:
        assert exc.minimum > budget
        assert str(exc.minimum) in str(exc)
        out = comp.compact(msgs, exc.minimum)  # the budget can be met at the stated minimum
        budget = exc.minimum
    # budget, and the figure reported is the real count
    assert out.tokens_after == count_message_tokens(out.messages)
    assert out.tokens_after <= budget
    assert out.tokens_before == count_message_tokens(msgs)
    # valid for the OpenAI API: tool pairs intact
    validate_tool_pairing(out.messages)
    # system prompt and first user task kept verbatim, in front
    assert out.messages[0] == msgs[0]
    first_user = next(m for m in msgs if m.role == "user")
    assert first_user in out.messages
    # latest turns kept verbatim at the end
    groups = group_messages(msgs)
    tail = msgs[groups[-2].start:] if len(groups) >= 2 else msgs
    assert out.messages[-len(tail):] == tail
    # every dropped chunk is accounted for, none both kept and dropped
    assert not set(out.kept_ids) & set(out.dropped_ids)
    assert {c.id for c in out.dropped_chunks} == set(out.dropped_ids)
    # deterministic, and compacting again within budget changes nothing
    assert comp.compact(msgs, budget).messages == out.messages
    again = comp.compact(out.messages, budget)
    assert again.messages == out.messages and not again.dropped_ids


@pytest.mark.parametrize("name", list(COMPACTORS))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(msgs=histories(), share=st.floats(0.05, 1.2))
def test_invariants_hold(name: str, msgs: list[Message], share: float) -> None:
    budget = max(1, int(count_message_tokens(msgs) * share))
    _check(name, msgs, budget)


@settings(max_examples=25, deadline=None)
@given(msgs=histories())
def test_budget_is_met_above_the_minimum(msgs: list[Message]) -> None:
    comp = COMPACTORS["learned"]
    try:
        comp.compact(msgs, 1)
    except BudgetTooSmall as exc:
        minimum = exc.minimum
    else:
        pytest.fail("a 1-token budget cannot hold the system prompt")
    total = count_message_tokens(msgs)
    for budget in sorted({minimum, (minimum + total) // 2, max(total - 1, minimum)}):
        out = comp.compact(msgs, budget)
        assert out.tokens_after <= budget
