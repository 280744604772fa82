"""Fusion tables per namespace kind (corpus / history) and the "record" query shape."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
from switchyard.retrieval import Chunk, Index, IndexConfig, chunk_id
from switchyard.retrieval.bm25 import Bm25Params
from switchyard.retrieval.fuse import (
    HISTORY_FUSION,
    SHAPE_FUSION,
    SHAPE_KINDS,
    fuse,
    fusion_params,
    query_shape,
    shape_fusion,
    table_row,
    weights_for,
)
from switchyard.retrieval.select import Hits

CONFIG = IndexConfig(bm25=Bm25Params(backend="numpy"))
RECORD = ('{"reservation_id": "ZX81QK", "user_id": "ana_lee_1", "origin": "JFK", '
          '"destination": "SFO", "cabin": "economy"}')


def _hits(ids: list[int]) -> Hits:
    return Hits(np.asarray(ids, np.int64), np.linspace(1.0, 0.5, len(ids)).astype(np.float32))


def _fused(results: dict[str, Hits], query: str, namespace: str) -> list[int]:
    spec = shape_fusion(query_shape(query), namespace)
    return fuse(results, spec.weights.as_dict(), 4, spec.method, spec.rrf_c).ids.tolist()


class _BagOfWords:
    """A deterministic encoder: hashed word counts, unit rows (real FAISS, no MiniLM)."""

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), 384), np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[row, hashlib.blake2b(word.encode(), digest_size=2).digest()[0] % 384] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def test_record_is_a_prose_less_query_of_many_literals() -> None:
    assert query_shape(RECORD).kind == "record"
    assert query_shape("get_user_name src/app/main.py").kind == "literal"
    assert query_shape('"ZX81QK"').kind == "literal"


def test_history_rows_are_prose_and_named() -> None:
    assert set(SHAPE_FUSION) == set(SHAPE_KINDS)
    assert set(HISTORY_FUSION) == {"prose", "named"}
    for kind in SHAPE_KINDS:
        assert table_row(kind, "corpus") == kind
        assert table_row(kind, "history") == ("prose" if kind == "prose" else "named")
    # every shape naming something takes one row in a history
    for query in (RECORD, "ZX81QK ana_lee_1", "can reservation ZX81QK be changed"):
        assert shape_fusion(query_shape(query), "history") == HISTORY_FUSION["named"]


def test_history_naming_an_id_keeps_grep_order() -> None:
    # A question naming an id: BM25 and dense prefer the later chunk that echoes the
    # question; grep ties both matches and keeps the earlier one (the first mention) first.
    query = "can reservation ZX81QK be changed to a later flight"
    results = {"bm25": _hits([7, 3]), "grep": _hits([3, 7]), "dense": _hits([7, 3])}
    assert query_shape(query).kind == "mixed"
    assert _fused(results, query, "corpus")[0] == 7
    assert _fused(results, query, "history")[0] == 3


def test_zero_weight_retrievers_fill_after_weighted_hits_in_bm25_order() -> None:
    results = {"bm25": _hits([3, 4]), "grep": _hits([1]), "dense": _hits([5, 4])}
    fused = fuse(results, {"bm25": 0.0, "grep": 0.5, "dense": 0.0}, 4, "rrf", 1)
    assert fused.ids.tolist() == [1, 3, 4, 5]


def test_convex_keeps_a_weighted_retrievers_last_hit_before_unweighted_ones() -> None:
    # min-max maps grep's last hit (2) to 0, as if not found: it still leads BM25's fill.
    results = {"bm25": _hits([3, 4]), "grep": _hits([1, 2]), "dense": _hits([5])}
    fused = fuse(results, {"bm25": 0.0, "grep": 1.0, "dense": 0.0}, 5, "convex")
    assert fused.ids.tolist() == [1, 2, 3, 4, 5]


def test_unknown_namespace_kind_is_an_error() -> None:
    shape = query_shape("where is get_user_name defined")
    assert weights_for(shape) == SHAPE_FUSION["mixed"].weights
    assert fusion_params(shape, "auto", "history")[1] == HISTORY_FUSION["named"].rrf_c
    with pytest.raises(ValueError, match="namespace kind"):
        shape_fusion(shape, "session")


TEXTS = [
    "Booking confirmed: reservation ZX81QK for Ana Lee, flight HAT204 on May 3.",
    "The weather in Paris is sunny and warm this week.",
    "The user asks again whether reservation ZX81QK can be changed to a later flight.",
]


def _history(ns: str, texts: list[str] = TEXTS) -> list[Chunk]:
    return [Chunk(id=chunk_id(ns, t, position=i), namespace=ns, text=t, role="user",
                  message_index=i) for i, t in enumerate(texts)]


def _corpus(ns: str, texts: list[str] = TEXTS) -> list[Chunk]:
    return [Chunk(id=chunk_id(ns, t, "notes.txt", i), namespace=ns, text=t,
                  source="notes.txt", start_line=i + 1) for i, t in enumerate(texts)]


def test_index_picks_the_table_by_namespace_kind(tmp_path: Path) -> None:
    query = "can reservation ZX81QK be changed to a later flight"
    encoder = _BagOfWords()
    with Index.open(tmp_path, CONFIG, encoder=lambda: encoder) as ix:
        ix.add(_history("session-1") + _corpus("docs"))
        assert ix.namespace_kind(["session-1"]) == "history"
        assert ix.namespace_kind(["docs"]) == "corpus"
        assert ix.namespace_kind(["session-1", "docs"]) == "corpus"
        assert ix.search(query, namespaces=["session-1"], k=1)[0].chunk.text == TEXTS[0]
        assert ix.search(query, namespaces=["docs"], k=1)[0].chunk.text == TEXTS[2]
        _, weights = ix.rankings(query, namespaces=["session-1"])
        assert weights == HISTORY_FUSION["named"].weights.as_dict()
    with Index.open(tmp_path, CONFIG, encoder=lambda: encoder) as again:  # from the store
        assert again.namespace_kind(["session-1"]) == "history"
        assert again.namespace_kind(["docs"]) == "corpus"
        assert again.search(query, namespaces=["session-1"], k=1)[0].chunk.text == TEXTS[0]


def test_a_namespace_loaded_while_empty_takes_its_first_chunks_kind(tmp_path: Path) -> None:
    encoder = _BagOfWords()
    with Index.open(tmp_path, CONFIG, encoder=lambda: encoder) as ix:
        assert ix.namespace_kind(["session-1", "docs"]) == "corpus"  # loaded, still empty
        ix.add(_history("session-1") + _corpus("docs"))
        assert ix.namespace_kind(["session-1"]) == "history"
        assert ix.namespace_kind(["docs"]) == "corpus"


RECORD_HISTORY = [  # a session: the tool result that returned the id, then turns repeating it
    "user: I want to move my JFK to SFO flight, economy. My user id is ana_lee_1.",
    'tool get_user_details -> {"user_id": "ana_lee_1", "reservations": ["ZX81QK", "M20IZO"]}',
    ('assistant: update_reservation_flights({"reservation_id": "ZX81QK", "user_id": '
     '"ana_lee_1", "origin": "JFK", "destination": "SFO", "cabin": "economy"})'),
    ('tool -> {"reservation_id": "ZX81QK", "user_id": "ana_lee_1", "origin": "JFK", '
     '"destination": "SFO", "cabin": "economy", "status": "updated"}'),
]


def test_history_record_finds_where_its_ids_came_from(tmp_path: Path) -> None:
    # The last turn repeats the record word for word (BM25, dense and grep's counts all
    # prefer it) but introduces nothing; the earlier three introduce its names: the user's
    # turn (ana_lee_1, JFK, SFO, economy), the tool result (user_id, ZX81QK) and the call
    # (the record's keys).
    encoder = _BagOfWords()
    ns = "session-9"
    with Index.open(tmp_path, CONFIG, encoder=lambda: encoder) as ix:
        ix.add(_history(ns, RECORD_HISTORY)[::-1] + _corpus("docs", RECORD_HISTORY))  # stored newest first: order comes from message indexes
        ranked = [h.chunk.text for h in ix.search(RECORD, namespaces=[ns], k=4)]
        assert set(ranked[:3]) == set(RECORD_HISTORY[:3]) and ranked[3] == RECORD_HISTORY[3]
        assert ix.search(RECORD, namespaces=["docs"], k=1)[0].chunk.text in RECORD_HISTORY[2:]
    with Index.open(tmp_path, CONFIG, encoder=lambda: encoder) as again:  # order from the store
        ranked = [h.chunk.text for h in again.search(RECORD, namespaces=[ns], k=4)]
        assert set(ranked[:3]) == set(RECORD_HISTORY[:3]) and ranked[3] == RECORD_HISTORY[3]
        first = again.search("ZX81QK", namespaces=[ns], k=1, mode="grep")[0]
        assert first.chunk.text == RECORD_HISTORY[1]  # grep mode: the first mention leads
