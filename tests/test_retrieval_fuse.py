"""Fusion ordering on hand-made rankings, and query-shape weights."""

from __future__ import annotations

import numpy as np
import pytest
from switchyard.retrieval.fuse import convex, fuse, minmax, query_shape, rrf, weights_for
from switchyard.retrieval.select import Hits, topk_indices


def _hits(ids: list[int], scores: list[float]) -> Hits:
    return Hits(np.asarray(ids, np.int64), np.asarray(scores, np.float32))


EQUAL = {"bm25": 1.0, "grep": 1.0, "dense": 1.0}


def test_rrf_rewards_agreement() -> None:
    results = {"bm25": _hits([1, 2, 3], [9, 8, 7]), "dense": _hits([2, 4, 1], [.9, .8, .7])}
    fused = rrf(results, EQUAL, k=4)
    # 2 is ranked 2nd and 1st; 1 is 1st and 3rd: 1/62+1/61 > 1/61+1/63
    assert fused.ids.tolist()[:2] == [2, 1]
    assert fused.ranks[0] == {"bm25": 2, "dense": 1}
    assert set(fused.ids.tolist()) == {1, 2, 3, 4}


def test_convex_uses_score_gaps_where_rrf_cannot() -> None:
    # bm25 is sure of 1 (huge gap); dense mildly prefers 2 over 1.
    results = {"bm25": _hits([1, 2, 3], [30, 2, 1]), "dense": _hits([2, 1, 3], [.50, .49, .10])}
    assert convex(results, EQUAL, k=3).ids.tolist()[0] == 1
    # RRF sees only ranks: 1 and 2 tie (1st+2nd each); the tie goes to the lower id.
    fused = rrf(results, EQUAL, k=3)
    assert fused.scores[0] == pytest.approx(fused.scores[1])


def test_weights_change_the_winner() -> None:
    results = {"grep": _hits([7], [1.0]), "bm25": _hits([8, 7], [5.0, 1.0])}
    assert fuse(results, {"grep": 1.0, "bm25": 0.2}, 2, "convex").ids.tolist()[0] == 7
    assert fuse(results, {"grep": 0.1, "bm25": 1.0}, 2, "convex").ids.tolist()[0] == 8
    with pytest.raises(ValueError, match="unknown fusion"):
        fuse(results, EQUAL, 2, "borda")


def test_minmax_edge_cases() -> None:
    assert minmax(np.asarray([3.0])).tolist() == [1.0]
    assert minmax(np.asarray([2.0, 4.0, 3.0])).tolist() == [0.0, 1.0, 0.5]


@pytest.mark.parametrize(("query", "literals", "natural"), [
    ('"connection reset by peer"', ("connection reset by peer",), False),
    ("src/app/main.py", ("src/app/main.py",), False),
    ("getUserName", ("getUserName",), False),
    ("where is get_user_name defined in the code", ("get_user_name",), True),
    ("why did the refund for the delayed flight fail", (), True),
    ("reservation 4WQ150 cancelled", ("4WQ150",), True),
    ("4WQ150", ("4WQ150",), False),
])
def test_query_shape(query: str, literals: tuple[str, ...], natural: bool) -> None:
    shape = query_shape(query)
    assert shape.literals == literals
    assert shape.natural == natural


def test_weights_follow_the_shape() -> None:
    prose = weights_for(query_shape("how do I refund a cancelled booking"))
    assert prose.grep == 0 and prose.dense > 0 and prose.bm25 > 0
    ident = weights_for(query_shape("getUserName"))
    assert ident.grep >= max(ident.bm25, ident.dense) > 0  # grep leads, with company


def test_topk_breaks_ties_by_position() -> None:
    scores = np.asarray([1.0, 3.0, 3.0, 2.0, 0.0])
    assert topk_indices(scores, 3).tolist() == [1, 2, 3]
    assert topk_indices(scores, 10).tolist() == [1, 2, 3, 0, 4]
    merged = Hits.merge([_hits([1, 2], [5, 1]), _hits([3], [3])], 2)
    assert merged.ids.tolist() == [1, 3]


@pytest.mark.parametrize(("query", "kind"), [
    ("how are refunds computed for cancelled flights", "prose"),
    ("where is get_user_name defined", "mixed"),
    ("Return the `Request` for `scope`", "technical"),  # literals are a third of the words
    ("get_user_name src/app/main.py", "literal"),
    (("the test failed with AssertionError in tests/test_io.py line 42 after the reader was "
      "closed twice"), "technical"),  # a long passage holding bare ids: tool output
])
def test_query_shape_kinds(query: str, kind: str) -> None:
    assert query_shape(query).kind == kind


def test_auto_fusion_follows_the_shape() -> None:
    from switchyard.retrieval.fuse import SHAPE_FUSION, fusion_for

    shape = query_shape("where is get_user_name defined")
    assert fusion_for(shape, "auto") == SHAPE_FUSION["mixed"].method
    assert fusion_for(shape, "rrf") == "rrf"
    with pytest.raises(ValueError, match="unknown fusion"):
        fusion_for(shape, "borda")


def test_steep_rrf_keeps_a_sure_first_hit() -> None:
    # A: 1st for bm25, 5th for dense; B: 2nd and 3rd. The classic c=60 flattens ranks and
    # prefers B (1/62 + 1/63 > 1/61 + 1/65); c=3 lets a first place count (1/4 + 1/8 > 1/5 + 1/6).
    a, b = 10, 20
    results = {"bm25": _hits([a, b, 1, 2], [9, 8, 7, 6]),
               "dense": _hits([3, 4, b, 5, a], [.9, .8, .7, .6, .5])}
    assert rrf(results, EQUAL, k=2).ids.tolist()[0] == b
    assert fuse(results, EQUAL, 2, "rrf", rrf_c=3).ids.tolist()[0] == a


def test_auto_fusion_is_per_table() -> None:
    from switchyard.retrieval.fuse import HISTORY_FUSION, RRF_C, SHAPE_FUSION, fusion_params

    shape = query_shape("how are refunds computed for cancelled flights")
    assert fusion_params(shape) == (SHAPE_FUSION["prose"].method, SHAPE_FUSION["prose"].rrf_c)
    named = query_shape("where is get_user_name defined")
    assert fusion_params(named, "auto", "history") == ("rrf", HISTORY_FUSION["named"].rrf_c)
    assert fusion_params(shape, "convex") == ("convex", RRF_C)
