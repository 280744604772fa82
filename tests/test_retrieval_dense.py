"""Dense: FAISS against brute-force numpy, flat and HNSW, deletion and persistence."""

from __future__ import annotations

import numpy as np
import pytest
from switchyard.retrieval.faiss_index import DenseParams, DenseShard


def _unit(rng: np.random.Generator, n: int, dim: int = 384) -> np.ndarray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_flat_index_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    vectors = _unit(rng, 500)
    ids = np.arange(1000, 1500)
    shard = DenseShard()
    shard.add(ids.tolist(), vectors)
    assert not shard.is_hnsw
    for q in _unit(rng, 20):
        expected = ids[np.argsort(-(vectors @ q), kind="stable")[:10]]
        hits = shard.search(q, 10)
        assert hits.ids.tolist() == expected.tolist()
        np.testing.assert_allclose(hits.scores, np.sort(vectors @ q)[::-1][:10], rtol=1e-5)
    # a stored vector is its own nearest neighbour
    assert shard.search(vectors[42], 1).ids.tolist() == [1042]


def test_hnsw_above_threshold_finds_exact_neighbours_and_handles_deletes(tmp_path) -> None:
    rng = np.random.default_rng(1)
    vectors = _unit(rng, 600)
    shard = DenseShard(DenseParams(hnsw_threshold=200, ef_search=128))
    shard.add(list(range(300)), vectors[:300])
    assert shard.is_hnsw  # switched when it passed the threshold
    shard.add(list(range(300, 600)), vectors[300:])
    found = sum(shard.search(vectors[i], 1).ids.tolist() == [i] for i in range(0, 600, 10))
    assert found >= 58  # approximate, but a stored vector finds itself
    shard.delete([5, 6])  # tombstones: HNSW cannot remove
    assert 5 not in shard.search(vectors[5], 10).ids.tolist()
    assert len(shard) == 598
    shard.save(tmp_path / "dense.faiss")
    loaded = DenseShard.load(tmp_path / "dense.faiss", DenseParams(hnsw_threshold=200))
    assert loaded.is_hnsw and len(loaded) == 598
    assert loaded.search(vectors[7], 1).ids.tolist() == [7]
    assert 6 not in loaded.ids().tolist()


def test_many_tombstones_trigger_a_rebuild() -> None:
    rng = np.random.default_rng(2)
    vectors = _unit(rng, 300)
    shard = DenseShard(DenseParams(hnsw_threshold=100, rebuild_ratio=0.1))
    shard.add(list(range(300)), vectors)
    shard.delete(list(range(40)))
    assert len(shard._tombstones) == 0 and len(shard) == 260
    assert shard.search(vectors[100], 1).ids.tolist() == [100]


def test_flat_delete_removes_vectors() -> None:
    rng = np.random.default_rng(3)
    vectors = _unit(rng, 50)
    shard = DenseShard()
    shard.add(list(range(50)), vectors)
    shard.delete([3])
    assert 3 not in shard.search(vectors[3], 50).ids.tolist()
    assert len(shard) == 49


@pytest.mark.parametrize("k", [1, 5])
def test_empty_index_returns_nothing(k: int) -> None:
    assert len(DenseShard().search(np.ones(384, np.float32), k)) == 0


@pytest.mark.parametrize("threshold", [10_000, 100])  # flat, HNSW
def test_a_mapped_index_searches_then_copies_itself_to_change(tmp_path, threshold: int) -> None:
    rng = np.random.default_rng(4)
    vectors = _unit(rng, 300)
    params = DenseParams(hnsw_threshold=threshold, ef_search=128)
    shard = DenseShard(params)
    shard.add(list(range(300)), vectors)
    shard.save(tmp_path / "index.faiss")
    mapped = DenseShard.load(tmp_path / "index.faiss", params)
    plain = DenseShard.load(tmp_path / "index.faiss", params, mmap=False)
    assert mapped._mapped and not plain._mapped and mapped.is_hnsw == (threshold == 100)
    for i in (0, 150, 299):
        assert mapped.search(vectors[i], 5).ids.tolist() == plain.search(vectors[i], 5).ids.tolist()
        assert mapped.search(vectors[i], 1).ids.tolist() == [i]
    # FAISS aborts the process when a mapped array grows: the shard copies it first
    extra = _unit(rng, 2)
    mapped.add([900, 901], extra)
    mapped.delete([150])
    assert not mapped._mapped and len(mapped) == 301
    assert mapped.search(extra[1], 1).ids.tolist() == [901]
    assert 150 not in mapped.search(vectors[150], 10).ids.tolist()
    mapped.save(tmp_path / "again.faiss")
    reopened = DenseShard.load(tmp_path / "again.faiss", params)
    assert reopened.search(extra[0], 1).ids.tolist() == [900] and len(reopened) == 301
