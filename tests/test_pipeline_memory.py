"""Compaction and recall together: what the compactor drops is stored and comes back when a
later turn asks for it (DESIGN: "nothing is deleted")."""

from __future__ import annotations

import json
import sqlite3

from switchyard.core.messages import parse_messages
from switchyard.server.pipeline import RECALL_HEADER
from switchyard.server.pipeline_types import ChatRequest

FACT = "The deploy token for the staging cluster is ZEBRA-4471."


def _history(turns: int) -> list[dict]:
    messages: list[dict] = [
        {"role": "system", "content": "You are a careful DevOps agent."},
        {"role": "user", "content": "Audit the deployment scripts and report problems."},
    ]
    for i in range(turns):
        call = {"id": f"call_{i}", "type": "function",
                "function": {"name": "shell", "arguments": json.dumps({"cmd": f"cat step{i}.sh"})}}
        filler = "\n".join(f"echo 'step {i} line {j}: compiling module_{i}_{j}'" for j in range(40))
        if i == 3:
            filler = filler + "\n" + FACT + "\n" + filler
        messages += [{"role": "assistant", "content": None, "tool_calls": [call]},
                     {"role": "tool", "tool_call_id": f"call_{i}", "content": filler}]
    messages.append({"role": "user",
                     "content": "What is the deploy token for the staging cluster?"})
    return messages


async def test_dropped_facts_come_back_through_recall(pipeline_factory, fake_upstream) -> None:
    pipeline = pipeline_factory(**{"recall.k": 8, "recall.token_budget": 800})
    messages = parse_messages(_history(24))
    result = await pipeline.chat(ChatRequest(messages=messages, model="switchyard/auto",
                                             compact_budget=2500, session_id="ops-1"))
    assert result.tokens_after < result.tokens_before / 2
    sent = fake_upstream.requests[-1]["messages"]
    assert any(FACT in (m.get("content") or "") for m in sent)
    recalled = [m for m in sent if (m.get("content") or "").startswith(RECALL_HEADER)]
    assert len(recalled) <= 1  # one marked block, placed before the latest user turn
    assert sent[-1]["content"].startswith("What is the deploy token")

    db = sqlite3.connect(pipeline.config.server.traffic_log_path)
    dropped, before, after = db.execute(
        "SELECT dropped_chunks, tokens_before, tokens_after FROM requests").fetchone()
    db.close()
    assert dropped > 0 and before > after
    assert pipeline.retrieval is not None and pipeline.retrieval.has_chunks("ops-1")


async def test_log_lines_of_a_request_carry_its_id(pipeline_factory, fake_upstream) -> None:
    """gRPC has no HTTP edge to set the id: the pipeline sets it for the request's task."""
    import asyncio

    from switchyard.server.log_setup import REQUEST_ID

    pipeline = pipeline_factory()

    async def one() -> tuple[str, str | None]:
        result = await pipeline.chat(ChatRequest(
            messages=parse_messages([{"role": "user", "content": "hi"}]), model="switchyard/auto"))
        return result.request_id, REQUEST_ID.get()

    request_id, logged_id = await asyncio.create_task(one())
    assert logged_id == request_id and REQUEST_ID.get() is None
