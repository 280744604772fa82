"""Saved indexes: reopening reads them instead of rebuilding, and a stale one is not trusted."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from switchyard.retrieval import Chunk, Index, IndexConfig, chunk_id
from switchyard.retrieval.bm25 import Bm25Params
from switchyard.retrieval.grep import GrepShard, compile_pattern
from switchyard.retrieval.persist import REBUILD_SHARE, RowKeys, reconcile
from switchyard.retrieval.store import ChunkStore

CONFIG = IndexConfig(bm25=Bm25Params(backend="numpy"))
WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta", "iota", "kappa", "lambda", "mu", "nu", "xi", "omicron", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega", "refund", "booking", "flight", "parser", "header"]


class HashEncoder:
    """Deterministic unit vectors from a text's hash; counts the texts it encodes."""

    def __init__(self) -> None:
        self.encoded = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        self.encoded += len(texts)
        out = np.empty((len(texts), 384), dtype=np.float32)
        for i, text in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")
            out[i] = np.random.default_rng(seed).standard_normal(384)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def _texts(n: int, seed: int = 0, tag: str = "") -> list[str]:
    rng = np.random.default_rng(seed)
    return [f"{tag}note_{i} " + " ".join(rng.choice(WORDS, size=12)) for i in range(n)]


def _chunks(ns: str, texts: list[str]) -> list[Chunk]:
    return [Chunk(id=chunk_id(ns, t, position=i), namespace=ns, text=t) for i, t in
            enumerate(texts)]


def _open(path: Path, encoder: HashEncoder) -> Index:
    return Index.open(path, CONFIG, encoder=lambda: encoder)


def _forbid_full_read(monkeypatch: pytest.MonkeyPatch) -> None:
    real = ChunkStore.texts

    def texts(self: ChunkStore, namespace: str, rowids=None):  # type: ignore[no-untyped-def]
        assert rowids is not None, "a reopen with current index files must not read every text"
        return real(self, namespace, rowids)

    monkeypatch.setattr(ChunkStore, "texts", texts)


def _all_ids(ix: Index, query: str, mode: str) -> list[str]:
    return [h.chunk_id for h in ix.search(query, namespaces=["s"], k=50, mode=mode)]


def test_reopen_uses_saved_indexes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    enc = HashEncoder()
    with _open(tmp_path, enc) as ix:
        ix.add(_chunks("s", _texts(60)))
        expected = {m: _all_ids(ix, "refund booking note_7", m) for m in
                    ("bm25", "grep", "dense", "hybrid")}
    files = {p.name for p in next((tmp_path / "index").iterdir()).iterdir()}
    assert files == {"bm25", "grep", "dense"}
    _forbid_full_read(monkeypatch)
    again_enc = HashEncoder()
    with _open(tmp_path, again_enc) as again:
        got = {m: _all_ids(again, "refund booking note_7", m) for m in expected}
        assert got == expected
        assert again_enc.encoded == 2  # the query, twice (dense and hybrid): no chunk
        grep_hits = again.search("note_7 ", namespaces=["s"], mode="grep")
        assert [h.lines for h in grep_hits] == [(1,)]


def test_rows_added_and_deleted_elsewhere_are_patched_in(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    enc = HashEncoder()
    with _open(tmp_path, enc) as ix:
        ids = ix.add(_chunks("s", _texts(40)))
        _all_ids(ix, "refund", "hybrid")  # builds and (on close) saves every index
    # another process adds and deletes without loading the namespace's indexes
    other = ChunkStore(tmp_path / "chunks.sqlite")
    other.add(_chunks("s", ["a fresh chunk about the zanzibar_gateway timeout"]))
    other.delete([ids[3]])
    other.close()
    _forbid_full_read(monkeypatch)
    enc.encoded = 0
    with _open(tmp_path, enc) as again:
        for mode in ("bm25", "grep", "dense", "hybrid"):
            found = _all_ids(again, "zanzibar_gateway", mode)
            assert ids[3] not in _all_ids(again, "note_3 " + " ".join(WORDS[:5]), mode)
            if mode != "dense":
                assert found and again.get(found[:1])[0].text.startswith("a fresh chunk")
        assert enc.encoded == 1 + 4  # the new chunk once, then a query vector per search
        assert len(again._load("s").bm25) == len(again._load("s").grep) == 40


def test_index_files_of_another_store_are_rebuilt(tmp_path: Path) -> None:
    """Same row ids, other texts: the content keys differ, so nothing saved is trusted."""
    enc = HashEncoder()
    with _open(tmp_path / "a", enc) as a:
        a.add(_chunks("s", _texts(30, seed=1, tag="old_")))
        _all_ids(a, "refund", "hybrid")
    with _open(tmp_path / "b", enc) as b:
        b.add(_chunks("s", _texts(30, seed=2, tag="new_")[::-1]))  # other texts at each row
        _all_ids(b, "refund", "hybrid")
    shutil.rmtree(tmp_path / "b" / "index")
    shutil.copytree(tmp_path / "a" / "index", tmp_path / "b" / "index")
    enc.encoded = 0
    with _open(tmp_path / "b", enc) as b:
        for mode in ("bm25", "grep"):
            top = b.search("new_note_4", namespaces=["s"], mode=mode)[0]
            assert top.chunk.text.startswith("new_note_4 ")
        b.search("new_note_4", namespaces=["s"], mode="dense")
        assert enc.encoded == 30 + 1  # every chunk re-encoded: the saved vectors were not used


def test_unreadable_index_files_are_rebuilt(tmp_path: Path) -> None:
    enc = HashEncoder()
    with _open(tmp_path, enc) as ix:
        ix.add(_chunks("s", _texts(30)))
        expected = _all_ids(ix, "note_5 refund", "bm25")
    folder = next((tmp_path / "index").iterdir())
    (folder / "grep" / "text.bin").write_bytes(b"truncated")
    (folder / "bm25" / "doc_lengths.npy").write_bytes(b"not an array")
    with _open(tmp_path, enc) as again:
        assert _all_ids(again, "note_5 refund", "bm25") == expected
        assert _all_ids(again, "note_5 ", "grep") == expected[:1]
    with _open(tmp_path, enc) as third:  # the rebuilt files were saved
        assert _all_ids(third, "note_5 ", "grep") == expected[:1]


def test_reconcile_plans() -> None:
    live = RowKeys(np.arange(1, 11, dtype=np.int64), np.arange(101, 111, dtype=np.int64))
    same = reconcile(live, live)
    assert same.current
    saved = RowKeys(np.asarray([1, 2, 3, 12], np.int64), np.asarray([101, 999, 103, 112],
                                                                  np.int64))
    plan = reconcile(saved, live)
    assert plan.stale.tolist() == [2, 12]  # other content; gone from the store
    assert plan.missing.tolist() == [2, 4, 5, 6, 7, 8, 9, 10]
    assert not plan.rebuild
    foreign = RowKeys(live.rowids, live.keys + 1)
    assert reconcile(foreign, live).rebuild and REBUILD_SHARE < 1


def test_saved_grep_matches_re_after_edits(tmp_path: Path) -> None:
    """A memory-mapped base plus chunks added and deleted since: the same hits as `re`."""
    texts = _texts(50, seed=3)
    shard = GrepShard()
    shard.add(list(enumerate(texts)))
    shard.save(tmp_path)
    loaded = GrepShard.load(tmp_path)
    extra = {100 + i: t for i, t in enumerate(_texts(10, seed=4, tag="late_"))}
    loaded.add(list(extra.items()))
    loaded.delete([0, 7, 103])
    live = {i: t for i, t in enumerate(texts) if i not in (0, 7)}
    live.update({r: t for r, t in extra.items() if r != 103})
    for pattern in (r"gamma\s+delta", r"^late_note_\d", "omega"):
        got = loaded.search(compile_pattern(pattern, literal=False), k=100)
        want = {r for r, t in live.items() if re.search(pattern, t, re.MULTILINE)}
        assert set(got.ids.tolist()) == want
    cand = np.asarray([1, 7, 101, 103], np.int64)
    got = loaded.search_in(compile_pattern("note", literal=True), cand, 10)
    assert sorted(got.ids.tolist()) == [1, 101]
    assert sorted(loaded.rowids().tolist()) == sorted(live)


def test_save_dir_swaps_atomically_and_keeps_a_racing_copy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from switchyard.retrieval import persist
    from switchyard.retrieval.persist import load_keys, save_dir

    live = RowKeys(np.asarray([1, 2], np.int64), np.asarray([11, 12], np.int64))

    def write(value: bytes):  # type: ignore[no-untyped-def]
        def run(directory: Path) -> np.ndarray:
            (directory / "data").write_bytes(value)
            return np.asarray([2, 9], np.int64)
        return run

    target = tmp_path / "grep"
    save_dir(target, write(b"one"), live)
    keys = load_keys(target)
    assert keys is not None and keys.rowids.tolist() == [2, 9]
    assert keys.keys.tolist() == [12, 0]  # row 9 is not in the store: it can never match
    mapped = open(target / "data", "rb")  # noqa: SIM115 - a reader holding the old file
    save_dir(target, write(b"two"), live)
    assert (target / "data").read_bytes() == b"two" and mapped.read() == b"one"
    mapped.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grep"]  # no leftovers

    real_replace = os.replace

    def racing_replace(src, dst):  # type: ignore[no-untyped-def]
        if Path(src).name.startswith("grep.tmp-"):  # another writer lands between our renames
            Path(dst).mkdir()
            (Path(dst) / "data").write_bytes(b"theirs")
        real_replace(src, dst)

    monkeypatch.setattr(persist.os, "replace", racing_replace)
    save_dir(target, write(b"ours"), live)
    assert (target / "data").read_bytes() == b"theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grep"]
