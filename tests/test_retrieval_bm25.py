"""BM25: bm25s configured as rank-bm25's BM25Okapi gives the same scores and top-10."""

from __future__ import annotations

import random

import numpy as np
import pytest
from rank_bm25 import BM25Okapi
from switchyard.retrieval.bm25 import Bm25Params, Bm25Shard
from switchyard.retrieval.tokenize import split_identifier, tokenize

OKAPI = Bm25Params(method="atire", idf_method="robertson", backend="numpy")


def _corpus(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(400)]
    # Zipf-ish word choice, so some terms are common and some rare, as in real text.
    weights = [1.0 / (i + 1) for i in range(len(words))]
    docs = [" ".join(rng.choices(words, weights, k=rng.randint(3, 60))) for _ in range(n)]
    queries = [" ".join(rng.choices(words, weights, k=rng.randint(1, 5))) for _ in range(40)]
    return docs, queries


def _assert_same_top10(got: np.ndarray, expected: np.ndarray) -> None:
    """Equal top-10 up to ties: the same documents strictly above the 10th score."""
    cut = np.sort(expected)[-10]
    above_expected = set(np.flatnonzero(expected > cut + 1e-4).tolist())
    above_got = set(np.flatnonzero(got > cut + 1e-4).tolist())
    assert above_got == above_expected
    top_got = np.argsort(-got, kind="stable")[:10]
    assert np.all(expected[top_got] >= cut - 1e-4)


def _scores_by_row(shard: Bm25Shard, query: str, n: int) -> np.ndarray:
    ids, scores = shard.scores(query)
    out = np.zeros(n, dtype=np.float64)
    out[ids] = scores
    return out


@pytest.mark.parametrize("n_docs", [300, 3000])  # 3000 > merge_min: main + merge path
def test_same_scores_and_top10_as_rank_bm25(n_docs: int) -> None:
    docs, queries = _corpus(n_docs)
    shard = Bm25Shard(OKAPI)
    shard.add(list(enumerate(docs)))
    reference = BM25Okapi([tokenize(d) for d in docs], epsilon=0)
    for q in queries:
        expected = reference.get_scores(tokenize(q))
        got = _scores_by_row(shard, q, n_docs)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
        _assert_same_top10(got, expected)


def test_delta_segment_is_close_and_merge_is_exact() -> None:
    docs, queries = _corpus(2500, seed=1)
    shard = Bm25Shard(OKAPI)
    shard.add(list(enumerate(docs[:2400])))  # built as main (over merge_min)
    shard.add([(2400 + i, d) for i, d in enumerate(docs[2400:])])
    assert shard.delta_size == 100
    reference = BM25Okapi([tokenize(d) for d in docs], epsilon=0)
    for q in queries[:10]:
        expected = reference.get_scores(tokenize(q))
        got = _scores_by_row(shard, q, len(docs))
        # stale main statistics: close, not equal
        assert np.max(np.abs(got - expected)) < 0.05 * max(expected.max(), 1.0)
    shard.merge()
    assert shard.delta_size == 0
    for q in queries[:10]:
        np.testing.assert_allclose(_scores_by_row(shard, q, len(docs)),
                                   reference.get_scores(tokenize(q)), rtol=1e-4, atol=1e-4)


def test_tombstones_hide_deleted_rows_and_save_load_mmaps(tmp_path) -> None:
    docs, _ = _corpus(2200, seed=2)
    shard = Bm25Shard(OKAPI)
    shard.add(list(enumerate(docs)))
    target = docs[7]
    assert 7 in shard.search(target, 5).ids.tolist()
    shard.delete([7])
    assert 7 not in shard.search(target, 50).ids.tolist()
    shard.save(tmp_path / "bm25")
    live = np.asarray([i for i in range(len(docs)) if i not in (7, 8)], dtype=np.int64)
    loaded = Bm25Shard.load(tmp_path / "bm25", live)
    assert len(loaded) == len(docs) - 2
    assert isinstance(loaded._main.scores["data"], np.memmap)
    hits = loaded.search(docs[9], 10)
    assert hits.ids[0] == 9 and 8 not in hits.ids.tolist()


def test_code_aware_tokenizer() -> None:
    assert split_identifier("parseHTTPResponse_v2") == ["parse", "http", "response", "v", "2"]
    tokens = tokenize("getUserName() in src/app/main.py:404 raised KeyError")
    for expected in ("getusername", "get", "user", "name", "src/app/main.py", "main",
                     "404", "keyerror", "key", "error"):
        assert expected in tokens
    assert "the" not in tokenize("the user")


def test_unknown_params_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown BM25 method"):
        Bm25Params(method="bm25+")


def test_containing_uses_postings_of_main_and_delta() -> None:
    shard = Bm25Shard(OKAPI)
    docs, _ = _corpus(2100, seed=4)
    shard.add(list(enumerate(docs)))  # main
    shard.add([(5000, "get_user_name w1"), (5001, "get_user only")])  # delta
    assert shard.containing(["user", "name"]).tolist() == [5000]
    expected = [i for i, d in enumerate(docs) if "w1" in d.split()] + [5000]
    assert shard.containing(["w1"]).tolist() == expected
    shard.delete([expected[0]])
    assert expected[0] not in shard.containing(["w1"]).tolist()
    assert shard.containing(["never_seen"]) is None


def test_search_ranks_like_rank_bm25_with_main_delta_and_tombstones() -> None:
    docs, queries = _corpus(2600, seed=3)
    shard = Bm25Shard(OKAPI)
    shard.add(list(enumerate(docs[:2400])))  # main segment
    shard.add(list(enumerate(docs[2400:], start=2400)))  # delta segment
    shard.delete([5, 17, 2401])
    for q in queries:
        hits = shard.search(q, 10)
        ids, scores = shard.scores(q)
        expected = np.zeros(len(docs))
        expected[ids] = scores
        assert 5 not in hits.ids and 2401 not in hits.ids
        assert np.all(np.diff(hits.scores) <= 1e-6)  # best first
        _assert_same_top10(_dense_from_hits(hits, len(docs)), expected)


def _dense_from_hits(hits, n: int) -> np.ndarray:
    """Top-10 hits as a score vector; the rest strictly below every hit."""
    out = np.full(n, -1.0)
    out[hits.ids] = hits.scores
    return out


def test_search_many_equals_search() -> None:
    # (backend="numba" batches through bm25s's jitted retrieval; its compile takes 15-50 s
    # here, so bench/retrieval.py checks it against rank-bm25 instead.)
    backend = "numpy"
    docs, queries = _corpus(2600, seed=4)
    shard = Bm25Shard(Bm25Params(method="atire", idf_method="robertson", backend=backend))
    shard.add(list(enumerate(docs[:2400])))
    shard.add(list(enumerate(docs[2400:], start=2400)))
    shard.delete([3, 9, 2405])
    batch = shard.search_many([*queries, "zzz-unknown-term"], 10)
    for q, got in zip(queries, batch):
        want = shard.search(q, 10)
        np.testing.assert_allclose(np.sort(got.scores), np.sort(want.scores), rtol=1e-5)
        assert not {3, 9, 2405} & set(got.ids.tolist())
    assert len(batch[-1]) == 0


def test_pruned_top_k_equals_the_full_sum() -> None:
    """MaxScore pruning (lucene idf is never negative) returns the exhaustive top-10."""
    from switchyard.retrieval.bm25 import _pruned_sums, _term_bounds

    docs, _ = _corpus(3000, seed=5)
    rng = random.Random(6)
    common = [f"w{i}" for i in range(3)]
    rare = [f"w{i}" for i in range(150, 400)]
    queries = [" ".join([*rng.sample(common, 2), *rng.sample(rare, rng.randint(1, 2))])
               for _ in range(60)]
    shard = Bm25Shard(Bm25Params(backend="numpy"))
    shard.add(list(enumerate(docs)))
    shard.merge()
    shard.delete([int(x) for x in rng.sample(range(3000), 40)])
    bounds = _term_bounds(shard._main.scores, shard._main_vocab)
    pruned = 0
    for q in queries:
        qids = shard._ids_for(tokenize(q))
        pruned += _pruned_sums(shard._main.scores, qids, shard._main_alive, bounds, 10) is not None
        ids, scores = shard.scores(q)
        expected = np.zeros(3000)
        expected[ids] = scores
        _assert_same_top10(_dense_from_hits(shard.search(q, 10), 3000), expected)
    assert pruned > 10  # the bound held for these queries: the fast path was exercised
