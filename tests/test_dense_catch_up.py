"""Chunks a compaction stores are encoded off the request path: a search may ask to encode
none (BM25 and grep still see them), and the catch-up encodes them once, for later calls."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from switchyard.retrieval import Chunk, Index, IndexConfig, chunk_id
from switchyard.retrieval.bm25 import Bm25Params
from switchyard.retrieval.embedding import get_encoder

TEXTS = [
    "The user asked to cancel reservation 4WQ150 on flight UA123.",
    "def get_user_name(user_id):\n    return USERS[user_id].name\n",
    "Refunds go back to the original payment method within 7 days.",
]


class Counting:
    """The real encoder, counting the texts it is asked to encode."""

    def __init__(self) -> None:
        self.texts = 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.texts += len(texts)
        return get_encoder().encode(list(texts))


def _chunks(namespace: str) -> list[Chunk]:
    return [Chunk(id=chunk_id(namespace, t, position=i), namespace=namespace, text=t,
                  role="user", message_index=i) for i, t in enumerate(TEXTS)]


def test_search_with_encode_limit_zero_encodes_nothing_new(tmp_path: Path) -> None:
    counting = Counting()
    config = IndexConfig(bm25=Bm25Params(backend="numpy"))
    with Index.open(tmp_path, config, encoder=lambda: counting) as ix:
        ix.add(_chunks("s"))
        hits = ix.search("refunds payment method", namespaces=["s"], k=3, encode_limit=0)
        assert counting.texts == 1  # the query alone
        assert hits[0].chunk.text == TEXTS[2] and "dense" not in hits[0].ranks  # BM25 found it
        ix.catch_up_dense("s")
        assert counting.texts == 1 + len(TEXTS)
        dense = ix.search("money back", namespaces=["s"], k=1, mode="dense", encode_limit=0)
        assert dense[0].chunk.text == TEXTS[2]
        ix.search("money back", namespaces=["s"], k=1, mode="dense")  # caught up
        assert counting.texts == 1 + len(TEXTS) + 2  # the two queries; no chunk again
        ix.catch_up_dense("unknown namespace")  # nothing stored: a no-op


def test_encode_limit_bounds_each_call(tmp_path: Path) -> None:
    counting = Counting()
    with Index.open(tmp_path, encoder=lambda: counting) as ix:
        ix.add(_chunks("s"))
        ix.search("user", namespaces=["s"], k=3, mode="dense", encode_limit=2)
        assert counting.texts == 1 + 2
        ix.search("user", namespaces=["s"], k=3, mode="dense")
        assert counting.texts == 1 + 2 + 1 + 1  # the last chunk, then the query


async def test_a_compaction_schedules_the_catch_up_off_the_request(pipeline_factory) -> None:
    from switchyard.core.messages import Message
    from switchyard.server.pipeline_types import ChatRequest

    pipeline = pipeline_factory()
    steps = [Message("user" if i % 2 else "assistant",
                     f"step {i}: read src/mod_{i}.py, saw ValueError at line {i} in load_{i}()")
             for i in range(120)]
    request = ChatRequest(messages=[Message("system", "Fix the bug."), *steps,
                                    Message("user", "where was load_3 failing?")],
                          model="switchyard/auto", session_id="s1", compact_budget=300)
    prepared = await pipeline.prepare_only(request)
    assert prepared.dropped_ids
    await asyncio.gather(*pipeline.catch_ups.values())  # scheduled, not awaited by prepare
    index = pipeline.retrieval
    assert index is not None
    hits = index.search("load_3 ValueError", namespaces=["s1"], k=3, mode="dense",
                        encode_limit=0)
    assert hits  # encoded in the background: a search that encodes nothing finds them
