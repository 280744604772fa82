"""The ledger (terms of dropped text listed in placeholders, paid for within the budget)
and the lookup rule (the span holding what the final message names is kept verbatim)."""

from __future__ import annotations

import pytest
from switchyard.compaction import CompactionOptions, Compactor
from switchyard.compaction.evidence import evaluate, visible_terms
from switchyard.compaction.summary import MARK, listable, render_mentions, strip_marked
from switchyard.compaction.terms import extract_terms, terms_of
from switchyard.compaction.trajectories import is_held_out, load_all
from switchyard.core.messages import Message, ToolCall, validate_tool_pairing
from switchyard.core.tokens import count_message_tokens

from tests.data import TRAJECTORIES


def test_mentions_read_back_as_the_same_terms() -> None:
    terms = ["src/app/parse.py", "parse_date", "4711", "flights", "open()", "economy class",
             "ValueError: invalid literal for int() with base 10: 'x'", "NO6JO3"]
    assert set(terms) <= extract_terms(render_mentions(terms))


def test_mentions_read_back_on_real_trajectory_terms() -> None:
    trajs = load_all(TRAJECTORIES)[:20]
    terms = sorted({t for tr in trajs for m in tr.messages for t in terms_of(m.text())
                    if listable(t)})
    for start in range(0, len(terms), 200):
        batch = terms[start:start + 200]
        missing = set(batch) - extract_terms(render_mentions(batch))
        assert not missing, sorted(missing)[:5]


def test_strip_marked_keeps_only_verbatim_text() -> None:
    text = "\n".join(["kept line_1", f"{MARK} 3 lines compacted; recall chunk abc]",
                      "kept line_2", f"{MARK} 9 lines compacted; recall chunk def",
                      "mentions: hidden_term", "ValueError: gone", "]", "kept line_3"])
    assert strip_marked(text) == "kept line_1\nkept line_2\nkept line_3"


def history() -> list[Message]:
    msgs = [Message("system", "You are a coding agent."),
            Message("user", "Find why the nightly export fails.")]
    for i in range(30):
        call = ToolCall(f"c{i}", "bash", f'{{"cmd": "cat logs/part_{i}.log"}}')
        out = "\n".join(f"{j}: worker_{i}_{j} finished batch_{i * 100 + j}" for j in range(40))
        msgs += [Message("assistant", f"Reading part {i}.", tool_calls=(call,)),
                 Message("tool", out, tool_call_id=f"c{i}")]
    msgs.append(Message("user", "Which worker finished batch_107?"))
    return msgs


@pytest.mark.parametrize("share", [0.0, 0.5, 1.0])
def test_ledger_stays_in_budget_and_format(share: float) -> None:
    msgs = history()
    budget = count_message_tokens(msgs) // 4
    out = Compactor.load(options=CompactionOptions(ledger_share=share)).compact(msgs, budget)
    assert out.tokens_after <= budget
    validate_tool_pairing(out.messages)
    # a ledger is a line of its own; share 0 leaves only the capped inline summary
    ledger_lines = [line for m in out.messages for line in m.text().split("\n")
                    if line.startswith("mentions: ")]
    assert (not ledger_lines) == (share == 0.0)


def test_ledger_lists_each_hidden_term_once_and_never_a_shown_one() -> None:
    msgs = history()
    out = Compactor.load().compact(msgs, count_message_tokens(msgs) // 4)
    shown = visible_terms(out.messages, verbatim=True)
    listed: list[str] = []
    for m in out.messages:
        for line in m.text().split("\n"):
            if line.startswith("mentions: "):
                listed += line.removeprefix("mentions: ").split(", ")
    assert listed
    assert len(listed) == len(set(listed))
    assert not set(listed) & shown


def test_ledger_keeps_more_evidence_than_text_alone() -> None:
    """On real held-out trajectories at 4x, listing terms of dropped text keeps more of what
    the next step uses than spending the same budget on text alone."""
    held = [t.messages for t in load_all(TRAJECTORIES) if is_held_out(t)][:3]
    shares = {}
    for share in (0.0, 0.5):
        comp = Compactor.load(options=CompactionOptions(ledger_share=share))
        rep = evaluate(held, comp.compact, ratios=(4.0,))
        assert rep.points[4.0] > 5
        shares[share] = rep.share(4.0)
    assert shares[0.5] > shares[0.0]


@pytest.mark.parametrize("ratio", [2, 4, 8])
def test_the_line_a_final_question_names_is_kept_verbatim(ratio: int) -> None:
    """batch_107 occurs once, deep in the dropped part: its line is the answer."""
    msgs = history()
    out = Compactor.load().compact(msgs, count_message_tokens(msgs) // ratio)
    assert "worker_1_7" in visible_terms(out.messages, verbatim=True)
