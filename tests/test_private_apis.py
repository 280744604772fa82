"""tiktoken and bm25s private APIs that retrieval/ relies on (pyproject bounds both to the
tested releases). When a new release changes one, these fail and say what moved: check the
code named in the message, then move the bound in pyproject.toml."""

from __future__ import annotations

import importlib.metadata
import inspect
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from switchyard.core.tokens import get_encoding
from switchyard.retrieval.bm25 import Bm25Params, Bm25Shard, _engine


def moved(package: str, what: str, user: str) -> str:
    version = importlib.metadata.version(package)
    return (f"{package} {version} changed a private API: {what}; {user} relies on it. "
            f"Adapt {user}, then move the {package} bound in pyproject.toml.")


def test_tiktoken_private_encoding_api() -> None:
    enc = get_encoding("cl100k_base")
    user = "core/tokens.py"
    for name in ("_mergeable_ranks", "_special_tokens", "_core_bpe"):
        assert hasattr(enc, name), moved("tiktoken", f"Encoding.{name} is gone", user)
    ranks, specials = enc._mergeable_ranks, enc._special_tokens
    assert isinstance(ranks, dict) and all(isinstance(k, bytes) for k in list(ranks)[:10]), \
        moved("tiktoken", "Encoding._mergeable_ranks is no longer bytes -> rank", user)
    assert specials.get("<|endoftext|>") == enc.eot_token, \
        moved("tiktoken", "Encoding._special_tokens is no longer text -> token", user)
    text = "def f(x):\n    return x  # <|endoftext|> é 日本"
    core = enc._core_bpe
    assert list(core.encode_ordinary(text)) == enc.encode_ordinary(text), \
        moved("tiktoken", "_core_bpe.encode_ordinary differs from Encoding.encode_ordinary", user)
    joined = "alpha<|endoftext|>beta"
    buf = core.encode_to_tiktoken_buffer(joined, {"<|endoftext|>"})
    assert np.frombuffer(buf, dtype=np.uint32).tolist() == enc.encode(
        joined, allowed_special={"<|endoftext|>"}), \
        moved("tiktoken", "_core_bpe.encode_to_tiktoken_buffer no longer gives uint32 ids", user)


def _keywords(fn: Callable[..., object]) -> set[str]:
    return set(inspect.signature(fn).parameters)


def test_bm25s_private_scoring_api() -> None:
    import bm25s.scoring as sc

    user = "retrieval/bm25.py (Bm25Shard._rebuild_delta)"
    for name in ("_select_idf_scorer", "_select_tfc_scorer"):
        assert hasattr(sc, name), moved("bm25s", f"bm25s.scoring.{name} is gone", user)
    idf, tfc = sc._select_idf_scorer("lucene"), sc._select_tfc_scorer("lucene")
    assert {"N"} <= _keywords(idf), moved("bm25s", "the idf scorer lost its N keyword", user)
    assert {"tf_array", "l_d", "l_avg", "k1", "b", "delta"} <= _keywords(tfc), \
        moved("bm25s", "the tfc scorer's keywords changed", user)
    got = tfc(tf_array=np.array([1.0, 3.0], np.float32), l_d=10, l_avg=10.0, k1=1.5, b=0.75,
              delta=None)
    assert np.allclose(got, [1 / (1 + 1.5), 3 / (3 + 1.5)]), \
        moved("bm25s", "the lucene tfc formula changed", user)


def test_bm25s_score_arrays_and_saved_files(tmp_path: Path) -> None:
    user = "retrieval/bm25.py (Bm25Shard.load and the batched search)"
    engine = _engine(Bm25Params())
    engine.index(([[0, 1], [1, 2, 2]], {"a": 0, "b": 1, "c": 2}), create_empty_token=False,
                 show_progress=False)
    scores = engine.scores
    assert {"data", "indices", "indptr", "num_docs"} <= set(scores), \
        moved("bm25s", f"BM25.scores keys are now {sorted(scores)}", user)
    assert len(scores["indptr"]) == 4 and scores["num_docs"] == 2, \
        moved("bm25s", "BM25.scores is no longer a (terms x documents) CSR layout", user)
    for name in ("vocab_dict", "nonoccurrence_array"):
        assert hasattr(engine, name), moved("bm25s", f"BM25.{name} is gone", user)
    engine.save(str(tmp_path), show_progress=False)
    for name in ("data", "indices", "indptr"):
        assert (tmp_path / f"{name}.csc.index.npy").is_file(), \
            moved("bm25s", f"BM25.save no longer writes {name}.csc.index.npy", user)


def test_a_saved_shard_reads_back_through_the_score_arrays(tmp_path: Path) -> None:
    shard = Bm25Shard()
    shard.add([(1, "alpha beta"), (2, "beta gamma gamma"), (3, "delta gamma")])
    shard.merge()
    shard.save(tmp_path)
    want, got = shard.search("gamma", 2), Bm25Shard.load(tmp_path).search("gamma", 2)
    assert got.ids.tolist() == want.ids.tolist() and want.ids.size == 2
    np.testing.assert_allclose(got.scores, want.scores)


def test_bm25s_private_numba_api() -> None:
    pytest.importorskip("numba", reason="the numba extra is not installed")
    from bm25s.numba import retrieve_utils

    assert hasattr(retrieve_utils, "_retrieve_numba_functional"), moved(
        "bm25s", "bm25s.numba.retrieve_utils._retrieve_numba_functional is gone",
        "retrieval/bm25.py (_numba_batch)")
