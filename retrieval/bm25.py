"""BM25 over one namespace, with bm25s as the engine and cheap incremental updates.

Layout (Lucene-like segments, two of them): a *main* bm25s index built over most documents,
plus a small *delta* holding documents added since. The delta's score matrix is rebuilt on
every add, with the combined statistics (N, avgdl, df of main + delta), so its scores stay
comparable with the main's. When the delta or the deleted documents pass a fraction of the
main, everything is merged into a fresh main. Deletions are tombstones (an alive mask).
Saved as bm25s `.npy` arrays + JSON and memory-mapped on load.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .select import Hits, topk_positive
from .tokenize import tokenize

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Bm25Params:
    k1: float = 1.5
    b: float = 0.75
    method: str = "lucene"  # bm25s names: robertson, lucene, atire
    idf_method: str | None = None  # None: same as method
    merge_min: int = 2_000  # a delta below this size is never worth a merge
    merge_ratio: float = 0.1  # merge when delta + tombstones exceed this share of main
    backend: str = "auto"  # "numba" (compiled scorer, when installed), "numpy" or "auto"

    def __post_init__(self) -> None:
        # bm25l/bm25+ add a non-occurrence term the delta segment does not model.
        methods = ("robertson", "lucene", "atire")
        for value in (self.method, self.idf_method or self.method):
            if value not in methods:
                raise ValueError(f"unknown BM25 method {value!r}; choose one of {methods}")
        if self.backend not in ("auto", "numba", "numpy"):
            raise ValueError(f"unknown backend {self.backend!r}; choose auto, numba or numpy")


_numba_scorer: Any = None
_numba_lock = threading.Lock()


def _engine(params: Bm25Params) -> Any:
    """A bm25s.BM25 configured from params; numba's scorer is compiled once per process."""
    import bm25s

    engine = bm25s.BM25(
        k1=params.k1, b=params.b, method=params.method, idf_method=params.idf_method,
        backend="numpy", csc_backend="numpy",
    )
    if params.backend in ("auto", "numba") and _numba_available(params.backend == "numba"):
        global _numba_scorer
        with _numba_lock:
            if _numba_scorer is None:
                from bm25s.scoring import _compute_relevance_from_scores_jit_ready
                from numba import njit

                _numba_scorer = njit(_compute_relevance_from_scores_jit_ready)
        engine._compute_relevance_from_scores = _numba_scorer
    return engine


def _numba_available(required: bool) -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        if required:
            raise ImportError("backend='numba' needs numba: pip install 'switchyard[numba]'")
        return False
    return True


class Bm25Shard:
    """BM25 index of one namespace. Row ids come from the chunk store. Thread-safe."""

    def __init__(self, params: Bm25Params | None = None) -> None:
        self.params = params or Bm25Params()
        self.vocab: dict[str, int] = {}
        self._lock = threading.RLock()
        # main segment
        self._main: Any = None
        self._main_rowids = np.empty(0, dtype=np.int64)
        self._main_alive = np.empty(0, dtype=bool)
        self._main_vocab = 0
        self._main_df = np.empty(0, dtype=np.int64)
        self._main_len = 0  # total tokens in main
        self._main_tokens: list[np.ndarray] = []
        # delta segment
        self._delta_rowids: list[int] = []
        self._delta_tokens: list[np.ndarray] = []
        self._delta: Any = None

    # -- size -------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self._main_alive.sum()) + len(self._delta_rowids)

    def main_rowids(self) -> np.ndarray:
        """Row ids held by the main segment (tombstoned ones included)."""
        return self._main_rowids

    @property
    def delta_size(self) -> int:
        return len(self._delta_rowids)

    # -- updates ----------------------------------------------------------------------
    def add(self, rows: Sequence[tuple[int, str]]) -> None:
        """Index (rowid, text) pairs; rebuilds only the delta (or merges when it is big)."""
        if not rows:
            return
        with self._lock:
            for rowid, text in rows:
                self._delta_rowids.append(int(rowid))
                self._delta_tokens.append(self._ids_for(tokenize(text), grow=True))
            if self._needs_merge():
                self.merge()
            else:
                self._rebuild_delta()

    def delete(self, rowids: Sequence[int]) -> None:
        with self._lock:
            gone = {int(r) for r in rowids}
            if self._main_rowids.size:
                pos = np.searchsorted(self._main_rowids, list(gone))
                pos = pos[pos < self._main_rowids.size]
                hit = pos[np.isin(self._main_rowids[pos], list(gone))]
                if hit.size:
                    if not self._main_alive.flags.writeable:
                        self._main_alive = self._main_alive.copy()
                    self._main_alive[hit] = False
            if any(r in gone for r in self._delta_rowids):
                keep = [i for i, r in enumerate(self._delta_rowids) if r not in gone]
                self._delta_rowids = [self._delta_rowids[i] for i in keep]
                self._delta_tokens = [self._delta_tokens[i] for i in keep]
                self._rebuild_delta()
            if self._needs_merge():
                self.merge()

    def _needs_merge(self) -> bool:
        dead = int(self._main_alive.size - self._main_alive.sum())
        pending = len(self._delta_rowids) + dead
        return pending > max(self.params.merge_min, self.params.merge_ratio * self._main_alive.size)

    def merge(self) -> None:
        """Fold the delta and the tombstones into a fresh main segment."""
        with self._lock:
            alive = np.flatnonzero(self._main_alive)
            tokens = [self._main_tokens[i] for i in alive] + self._delta_tokens
            rowids = np.concatenate(
                [self._main_rowids[alive], np.asarray(self._delta_rowids, dtype=np.int64)]
            )
            self._build_main(rowids, tokens)

    def _build_main(self, rowids: np.ndarray, tokens: list[np.ndarray]) -> None:
        # bm25s wants Python lists of ids; the vocab is the shard's (ids stay stable).
        main = _engine(self.params)
        if tokens:
            main.index(
                ([t.tolist() for t in tokens], dict(self.vocab)),
                create_empty_token=False, show_progress=False,
            )
        self._main = main if tokens else None
        self._main_rowids = rowids.astype(np.int64)
        self._main_alive = np.ones(len(tokens), dtype=bool)
        self._main_vocab = len(self.vocab)
        self._main_tokens = list(tokens)
        self._main_df = _doc_freqs(tokens, self._main_vocab)
        self._main_len = int(sum(t.size for t in tokens))
        self._delta_rowids, self._delta_tokens, self._delta = [], [], None

    def _rebuild_delta(self) -> None:
        """Score matrix of the delta documents under the combined corpus statistics."""
        if not self._delta_tokens:
            self._delta = None
            return
        import bm25s.scoring as sc

        n_vocab = len(self.vocab)
        df = _doc_freqs(self._delta_tokens, n_vocab)
        df[: self._main_df.size] += self._main_df
        n_docs = self._main_alive.size + len(self._delta_tokens)
        avgdl = (self._main_len + sum(t.size for t in self._delta_tokens)) / max(n_docs, 1)
        idf_fn = sc._select_idf_scorer(self.params.idf_method or self.params.method)
        tfc_fn = sc._select_tfc_scorer(self.params.method)
        idf = np.zeros(n_vocab, dtype=np.float32)
        used = np.unique(np.concatenate(self._delta_tokens))  # only the delta's terms matter
        idf[used] = [idf_fn(int(d), N=n_docs) for d in df[used]]
        data, docs, cols = [], [], []
        for d, toks in enumerate(self._delta_tokens):
            if toks.size == 0:
                continue
            uniq, tf = np.unique(toks, return_counts=True)
            tfc = tfc_fn(tf_array=tf.astype(np.float32), l_d=toks.size, l_avg=avgdl,
                         k1=self.params.k1, b=self.params.b, delta=None)
            data.append(idf[uniq] * tfc)
            docs.append(np.full(uniq.size, d, dtype=np.int32))
            cols.append(uniq.astype(np.int32))
        engine = _engine(self.params)
        if data:
            d_arr, r_arr, c_arr = np.concatenate(data), np.concatenate(docs), np.concatenate(cols)
        else:
            d_arr = np.empty(0, np.float32)
            r_arr = c_arr = np.empty(0, np.int32)
        order = np.argsort(c_arr, kind="stable")
        indptr = np.zeros(n_vocab + 1, dtype=np.int64)
        np.cumsum(np.bincount(c_arr, minlength=n_vocab), out=indptr[1:])
        engine.scores = {
            "data": d_arr[order].astype(np.float32), "indices": r_arr[order],
            "indptr": indptr, "num_docs": len(self._delta_tokens),
        }
        engine.vocab_dict = self.vocab
        engine.nonoccurrence_array = None  # only bm25l/bm25+ need it; Bm25Params rejects them
        self._delta = engine

    # -- search -----------------------------------------------------------------------
    def _ids_for(self, tokens: list[str], grow: bool = False) -> np.ndarray:
        if grow:
            vocab = self.vocab
            return np.fromiter((vocab.setdefault(t, len(vocab)) for t in tokens), dtype=np.int32)
        return np.asarray([self.vocab[t] for t in tokens if t in self.vocab], dtype=np.int32)

    def scores(self, query: str) -> tuple[np.ndarray, np.ndarray]:
        """(row ids, scores) over every live document; a score of 0 means no match."""
        with self._lock:
            qids = self._ids_for(tokenize(query))
            parts_ids, parts_scores = [], []
            if self._main is not None:
                s = self._main.get_scores_from_ids(qids[qids < self._main_vocab])
                parts_scores.append(np.where(self._main_alive, s, 0.0))
                parts_ids.append(self._main_rowids)
            if self._delta is not None:
                parts_scores.append(self._delta.get_scores_from_ids(qids))
                parts_ids.append(np.asarray(self._delta_rowids, dtype=np.int64))
        if not parts_ids:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        return np.concatenate(parts_ids), np.concatenate(parts_scores).astype(np.float32)

    def search(self, query: str, k: int) -> Hits:
        ids, scores = self.scores(query)
        return topk_positive(scores, ids, k)

    def containing(self, tokens: Sequence[str]) -> np.ndarray | None:
        """Row ids of live documents holding every token (from the posting lists), or None
        when a token was never seen. Used to narrow grep to candidate chunks."""
        with self._lock:
            if any(t not in self.vocab for t in tokens):
                return None
            result: np.ndarray | None = None
            for tid in sorted({self.vocab[t] for t in tokens}):
                rows = self._postings(tid)
                result = rows if result is None else np.intersect1d(result, rows, assume_unique=True)
                if result.size == 0:
                    break
            return result

    def _postings(self, tid: int) -> np.ndarray:
        parts = []
        if self._main is not None and tid < self._main_vocab:
            sc = self._main.scores
            docs = np.asarray(sc["indices"][sc["indptr"][tid] : sc["indptr"][tid + 1]])
            parts.append(self._main_rowids[docs[self._main_alive[docs]]])
        if self._delta is not None:
            sc = self._delta.scores
            docs = sc["indices"][sc["indptr"][tid] : sc["indptr"][tid + 1]]
            parts.append(np.asarray(self._delta_rowids, dtype=np.int64)[docs])
        # A posting list names each document once, and row ids grow with insertion order
        # (main, then delta), so the concatenation is already sorted and unique.
        return np.concatenate(parts) if parts else np.empty(0, np.int64)

    # -- persistence ------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        """Merge, then write the bm25s arrays plus our row ids and token lists."""
        with self._lock:
            if self._delta_rowids or not self._main_alive.all():
                self.merge()
            directory.mkdir(parents=True, exist_ok=True)
            if self._main is not None:
                self._main.save(str(directory), show_progress=False)
            lengths = np.asarray([t.size for t in self._main_tokens], dtype=np.int64)
            flat = (np.concatenate(self._main_tokens) if self._main_tokens
                    else np.empty(0, np.int32)).astype(np.int32)
            np.save(directory / "rowids.npy", self._main_rowids)
            np.save(directory / "doc_tokens.npy", flat)
            np.save(directory / "doc_lengths.npy", lengths)
            meta = {"version": FORMAT_VERSION, "params": asdict(self.params), "vocab": self.vocab}
            (directory / "shard.json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, directory: Path, live_rowids: np.ndarray | None = None) -> Bm25Shard:
        """Memory-map a saved shard; rows missing from `live_rowids` become tombstones."""
        import bm25s

        meta = json.loads((directory / "shard.json").read_text())
        shard = cls(Bm25Params(**meta["params"]))
        shard.vocab = meta["vocab"]
        rowids = np.load(directory / "rowids.npy")
        flat = np.load(directory / "doc_tokens.npy", mmap_mode="r")
        lengths = np.load(directory / "doc_lengths.npy")
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        shard._main_tokens = [flat[offsets[i] : offsets[i + 1]] for i in range(lengths.size)]
        if lengths.size:
            main = bm25s.BM25.load(str(directory), mmap=True, show_progress=False)
            fresh = _engine(shard.params)
            main._compute_relevance_from_scores = fresh._compute_relevance_from_scores
            shard._main = main
        shard._main_rowids = rowids.astype(np.int64)
        shard._main_alive = (np.isin(rowids, live_rowids) if live_rowids is not None
                             else np.ones(rowids.size, dtype=bool))
        shard._main_vocab = len(shard.vocab)
        shard._main_df = _doc_freqs(shard._main_tokens, shard._main_vocab)
        shard._main_len = int(lengths.sum())
        return shard


def _doc_freqs(tokens: Sequence[np.ndarray], n_vocab: int) -> np.ndarray:
    df = np.zeros(n_vocab, dtype=np.int64)
    if tokens:
        uniq = np.concatenate([np.unique(t) for t in tokens])
        df += np.bincount(uniq.astype(np.int64), minlength=n_vocab)[:n_vocab]
    return df
