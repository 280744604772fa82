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
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .select import Hits, topk_indices
from .tokenize import tokenize

FORMAT_VERSION = 1
PRUNE_SHARE = 1 / 16  # "rare" terms: their postings together under this share of documents


@dataclass(frozen=True)
class Bm25Params:
    k1: float = 1.5
    b: float = 0.75
    method: str = "lucene"  # bm25s names: robertson, lucene, atire
    idf_method: str | None = None  # None: same as method
    merge_min: int = 2_000  # a delta below this size is never worth a merge
    merge_ratio: float = 0.1  # merge when delta + tombstones exceed this share of main
    # Batched search: "numba" = bm25s's compiled, multi-threaded retrieval (compiles once per
    # process); "numpy"/"auto" = one scipy sparse product (the `batch` extra). Single queries
    # never compile.
    backend: str = "auto"

    def __post_init__(self) -> None:
        # bm25l/bm25+ add a non-occurrence term the delta segment does not model.
        methods = ("robertson", "lucene", "atire")
        for value in (self.method, self.idf_method or self.method):
            if value not in methods:
                raise ValueError(f"unknown BM25 method {value!r}; choose one of {methods}")
        if self.backend not in ("auto", "numba", "numpy"):
            raise ValueError(f"unknown backend {self.backend!r}; choose auto, numba or numpy")


def _engine(params: Bm25Params) -> Any:
    """A bm25s.BM25 configured from params: it builds the (terms x documents) score arrays.
    Queries are scored here by summing the query terms' posting slices (`_sparse_sums`):
    no per-process JIT compile (numba's took 13-50 s on 2 busy cores), and the cost follows
    the posting lists rather than the number of documents."""
    import bm25s

    return bm25s.BM25(k1=params.k1, b=params.b, method=params.method,
                      idf_method=params.idf_method, backend="numpy", csc_backend="numpy")


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
        # the main documents' token ids, end to end, and where each starts (n + 1 offsets):
        # two arrays (memory-mapped after load) rather than a list of n small ones
        self._main_flat = np.empty(0, dtype=np.int32)
        self._main_offsets = np.zeros(1, dtype=np.int64)
        self._main_matrix: Any = None  # scipy CSR of the main scores, for batched search
        self._main_bounds: tuple[np.ndarray, np.ndarray] | None = None  # per-term min, max
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
            flat, offsets = self._main_flat, self._main_offsets
            tokens = [flat[offsets[i] : offsets[i + 1]] for i in alive.tolist()]
            tokens += self._delta_tokens
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
        self._main_matrix = self._main_bounds = None
        self._main_rowids = rowids.astype(np.int64)
        self._main_alive = np.ones(len(tokens), dtype=bool)
        self._main_vocab = len(self.vocab)
        lengths = np.fromiter((t.size for t in tokens), dtype=np.int64, count=len(tokens))
        self._main_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self._main_flat = (np.concatenate(tokens) if tokens else np.empty(0)).astype(np.int32)
        self._main_df = _doc_freqs(tokens, self._main_vocab)
        self._main_len = int(lengths.sum())
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

    def _query_ids(self, query: str) -> np.ndarray:
        return self._ids_for(tokenize(query))

    def scores(self, query: str) -> tuple[np.ndarray, np.ndarray]:
        """(row ids, scores) over every live document; a score of 0 means no match."""
        with self._lock:
            qids = self._query_ids(query)
            parts_ids, parts_scores = [], []
            if self._main is not None:
                s = _column_sums(self._main.scores, qids, self._main_alive.size)
                parts_scores.append(np.where(self._main_alive, s, 0.0))
                parts_ids.append(self._main_rowids)
            if self._delta is not None:
                parts_scores.append(_column_sums(self._delta.scores, qids,
                                                 len(self._delta_rowids)))
                parts_ids.append(np.asarray(self._delta_rowids, dtype=np.int64))
        if not parts_ids:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        return np.concatenate(parts_ids), np.concatenate(parts_scores).astype(np.float32)

    def search(self, query: str, k: int) -> Hits:
        """Top-k live documents. Only documents holding a query term are ranked: the cost
        follows the query terms' posting lists, not the namespace size."""
        with self._lock:
            return self._search_ids(self._query_ids(query), k)

    def search_many(self, queries: Sequence[str], k: int, n_threads: int = 1) -> list[Hits]:
        """Top-k for a batch of queries: bm25s's numba retrieval (backend "numba"), else one
        sparse product (queries x terms) @ (terms x documents) for the main segment."""
        tokenised = [tokenize(q) for q in queries]
        with self._lock:
            qids = [self._ids_for(t) for t in tokenised]
            if self._main is None or len(qids) < 2:
                return [self._search_ids(q, k) for q in qids]
            if self.params.backend == "numba":
                docs, values = _numba_batch(self._main.scores, qids, self._main_vocab,
                                            self._main_alive, k, n_threads)
                return [self._merge_delta(d.astype(np.int64), v.astype(np.float64), q, k)
                        for d, v, q in zip(docs, values, qids)]
            if self._main_matrix is None:
                self._main_matrix = _term_matrix(self._main.scores, self._main_vocab,
                                                 self._main_alive.size)
            main = _batch_scores(self._main_matrix, qids)
            out = []
            for i, q in enumerate(qids):
                row = slice(main.indptr[i], main.indptr[i + 1])
                out.append(self._merge_delta(main.indices[row], main.data[row], q, k))
            return out

    def _search_ids(self, qids: np.ndarray, k: int) -> Hits:
        if self._main is None:
            return self._merge_delta(np.empty(0, np.int64), np.empty(0), qids, k)
        if self._main_bounds is None:
            self._main_bounds = _term_bounds(self._main.scores, self._main_vocab)
        pruned = _pruned_sums(self._main.scores, qids, self._main_alive, self._main_bounds, k)
        docs, values = pruned or _sparse_sums(self._main.scores, qids, self._main_alive.size)
        return self._merge_delta(docs, values, qids, k)

    def _merge_delta(self, docs: np.ndarray, values: np.ndarray, qids: np.ndarray,
                     k: int) -> Hits:
        """Main-segment matches (positions, scores) -> top-k row ids, plus the delta's."""
        if self._dead:
            live = self._main_alive[docs]
            docs, values = docs[live], values[live]
        top = topk_indices(values, k)
        top = top[values[top] > 0]
        hits = Hits(self._main_rowids[docs[top]], values[top].astype(np.float32))
        if self._delta is None:
            return hits
        d_docs, d_values = _sparse_sums(self._delta.scores, qids, len(self._delta_rowids))
        d_top = topk_indices(d_values, k)
        delta = Hits(np.asarray(self._delta_rowids, np.int64)[d_docs[d_top]],
                     d_values[d_top].astype(np.float32))
        return Hits.merge([hits, delta], k)

    @property
    def _dead(self) -> bool:
        return not self._main_alive.all()

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
    def save(self, directory: Path) -> np.ndarray:
        """Merge, then write the bm25s arrays plus our row ids and token lists; returns the
        row ids written."""
        with self._lock:
            if self._delta_rowids or not self._main_alive.all():
                self.merge()
            directory.mkdir(parents=True, exist_ok=True)
            if self._main is not None:
                self._main.save(str(directory), show_progress=False)
            np.save(directory / "rowids.npy", self._main_rowids)
            np.save(directory / "doc_tokens.npy", self._main_flat)
            np.save(directory / "doc_lengths.npy", np.diff(self._main_offsets))
            np.save(directory / "doc_freqs.npy", self._main_df)
            meta = {"version": FORMAT_VERSION, "params": asdict(self.params), "vocab": self.vocab}
            (directory / "shard.json").write_text(json.dumps(meta))
            return self._main_rowids.copy()

    @classmethod
    def load(cls, directory: Path, live_rowids: np.ndarray | None = None) -> Bm25Shard:
        """Memory-map a saved shard; rows missing from `live_rowids` become tombstones.
        Reads the bm25s score arrays directly (bm25s.BM25.load would parse the vocabulary a
        second time: about a second at 100k documents)."""
        meta = json.loads((directory / "shard.json").read_text())
        shard = cls(Bm25Params(**meta["params"]))
        shard.vocab = meta["vocab"]
        shard._main_vocab = len(shard.vocab)
        rowids = np.load(directory / "rowids.npy")
        lengths = np.load(directory / "doc_lengths.npy")
        # plain ndarray views of the maps: slicing a np.memmap costs ~40 us per slice
        shard._main_flat = np.load(directory / "doc_tokens.npy", mmap_mode="r").view(np.ndarray)
        shard._main_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        if rowids.size != lengths.size or shard._main_flat.size != shard._main_offsets[-1]:
            raise ValueError(f"inconsistent BM25 index in {directory}")
        if lengths.size:
            main = _engine(shard.params)
            main.scores = {name: np.load(directory / f"{name}.csc.index.npy", mmap_mode="r")
                           for name in ("data", "indices", "indptr")}
            main.scores["num_docs"] = int(lengths.size)
            main.vocab_dict = shard.vocab
            main.nonoccurrence_array = None
            shard._main = main
        shard._main_rowids = rowids.astype(np.int64)
        shard._main_alive = (np.isin(rowids, live_rowids) if live_rowids is not None
                             else np.ones(rowids.size, dtype=bool))
        freqs = directory / "doc_freqs.npy"
        shard._main_df = (np.load(freqs) if freqs.exists() else _doc_freqs(
            [shard._main_flat[a:b] for a, b in zip(shard._main_offsets[:-1].tolist(),
                                                  shard._main_offsets[1:].tolist())],
            shard._main_vocab))
        shard._main_len = int(lengths.sum())
        return shard


def _postings_of(scores: Mapping[str, Any], qids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(document positions, score contributions) of the query terms, repeats included."""
    indptr, indices, data = scores["indptr"], scores["indices"], scores["data"]
    qids = qids[qids < indptr.shape[0] - 1]
    bounds = [(int(indptr[t]), int(indptr[t + 1])) for t in qids.tolist()]
    if len(bounds) == 1:
        a, b = bounds[0]
        return np.asarray(indices[a:b]), np.asarray(data[a:b])
    if not bounds:
        return np.empty(0, np.int64), np.empty(0, np.float32)
    return (np.concatenate([indices[a:b] for a, b in bounds]),
            np.concatenate([data[a:b] for a, b in bounds]))


def _sparse_sums(scores: Mapping[str, Any], qids: np.ndarray,
                 num_docs: int) -> tuple[np.ndarray, np.ndarray]:
    """Documents matching any query term and their BM25 scores (the sum over terms)."""
    docs, contrib = _postings_of(scores, qids)
    if docs.size == 0 or len(qids) == 1:  # one term: its posting list is already unique
        return docs.astype(np.int64), contrib.astype(np.float64)
    sums = np.bincount(docs, weights=contrib, minlength=num_docs)
    hit = np.flatnonzero(sums)
    return hit, sums[hit]


def _term_bounds(scores: Mapping[str, Any], n_vocab: int) -> tuple[np.ndarray, np.ndarray]:
    """Each term's smallest and largest score contribution (0 for unused terms)."""
    indptr, data = np.asarray(scores["indptr"]), np.asarray(scores["data"])
    lo, hi = np.zeros(n_vocab, np.float32), np.zeros(n_vocab, np.float32)
    used = np.flatnonzero(indptr[1 : n_vocab + 1] > indptr[:n_vocab])
    if used.size:  # columns are contiguous, so reduceat over the used ones' starts is exact
        lo[used] = np.minimum.reduceat(data, indptr[used])
        hi[used] = np.maximum.reduceat(data, indptr[used])
    return lo, hi


def _pruned_sums(scores: Mapping[str, Any], qids: np.ndarray, alive: np.ndarray,
                 bounds: tuple[np.ndarray, np.ndarray],
                 k: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Exact top-k candidates without summing the common terms' long posting lists (MaxScore,
    Turtle & Flood 1995): score the rare terms' documents, take the k-th best partial score
    as a floor; if the common terms together cannot lift any other document over it, only
    the candidates need the common terms, found by binary search in their sorted postings.
    None when that bound does not hold (or a term can score below 0): sum everything then."""
    indptr, indices, data = scores["indptr"], scores["indices"], scores["data"]
    terms, mult = np.unique(qids[qids < indptr.shape[0] - 1], return_counts=True)
    lo, hi = bounds
    if terms.size < 2 or lo[terms].min() < 0:
        return None
    df = indptr[terms + 1] - indptr[terms]
    order = np.argsort(df, kind="stable")
    n_rare = max(1, int(np.searchsorted(np.cumsum(df[order]), alive.size * PRUNE_SHARE,
                                        side="right")))
    if n_rare >= terms.size:
        return None  # no common term: the plain sum is cheap
    rare, common = order[:n_rare], order[n_rare:]
    spans = [(int(indptr[terms[j]]), int(indptr[terms[j] + 1]), int(mult[j])) for j in rare]
    docs = np.concatenate([indices[a:b] for a, b, _ in spans])
    cand, inverse = np.unique(docs, return_inverse=True)
    sums = np.bincount(inverse, weights=np.concatenate([data[a:b] * m for a, b, m in spans]))
    live = alive[cand]
    cand, sums = cand[live], sums[live]
    if cand.size < k:
        return None
    floor = np.partition(sums, cand.size - k)[cand.size - k]
    if float((hi[terms[common]] * mult[common]).sum()) >= floor:
        return None
    for j in common:
        a, b = int(indptr[terms[j]]), int(indptr[terms[j] + 1])
        column = indices[a:b]
        pos = np.minimum(np.searchsorted(column, cand), b - a - 1)
        found = column[pos] == cand
        sums[found] += data[a:b][pos[found]] * mult[j]
    return cand.astype(np.int64), sums


def _column_sums(scores: Mapping[str, Any], qids: np.ndarray, num_docs: int) -> np.ndarray:
    """Dense score vector over all documents (0 = no match)."""
    docs, contrib = _postings_of(scores, qids)
    return np.bincount(docs, weights=contrib, minlength=num_docs)[:num_docs]


def _sparse() -> Any:
    """scipy.sparse, which only batched search needs (serving searches one query at a time)."""
    try:
        import scipy.sparse as sp
    except ImportError:
        raise ImportError("batched BM25 search needs scipy: pip install 'switchyard[batch]'"
                          ) from None
    return sp


def _term_matrix(scores: Mapping[str, Any], n_vocab: int, num_docs: int) -> Any:
    """The bm25s score arrays as a (terms x documents) CSR matrix."""
    sp = _sparse()
    return sp.csr_matrix((np.asarray(scores["data"]), np.asarray(scores["indices"]),
                          np.asarray(scores["indptr"])), shape=(n_vocab, num_docs))


def _batch_scores(terms: Any, qids: Sequence[np.ndarray]) -> Any:
    """CSR matrix (queries x documents) of BM25 scores: Q @ S with S the term matrix."""
    sp = _sparse()
    n_vocab = terms.shape[0]
    rows = np.repeat(np.arange(len(qids)), [q.size for q in qids])
    cols = np.concatenate(qids).astype(np.int64) if rows.size else np.empty(0, np.int64)
    keep = cols < n_vocab
    query = sp.csr_matrix((np.ones(int(keep.sum()), np.float32), (rows[keep], cols[keep])),
                          shape=(len(qids), n_vocab))  # duplicates sum: a repeated term counts twice
    return (query @ terms).tocsr()


def _numba_batch(scores: Mapping[str, Any], qids: Sequence[np.ndarray], n_vocab: int,
                 alive: np.ndarray, k: int, n_threads: int) -> tuple[np.ndarray, np.ndarray]:
    """bm25s's jitted batch retrieval: (queries x k) document positions and scores."""
    _numba_available(required=True)
    from bm25s.numba.retrieve_utils import _retrieve_numba_functional

    weight = None if alive.all() else alive.astype(np.float32)
    docs, values = _retrieve_numba_functional(
        [q[q < n_vocab].tolist() for q in qids], scores, k=min(k, alive.size), sorted=True,
        show_progress=False, n_threads=n_threads, weight_mask=weight, dtype="float32",
        int_dtype="int32", nonoccurrence_array=None)
    return docs, values


def _numba_available(required: bool) -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        if required:
            raise ImportError("backend='numba' needs numba: pip install 'switchyard[numba]'")
        return False
    return True


def _doc_freqs(tokens: Sequence[np.ndarray], n_vocab: int) -> np.ndarray:
    df = np.zeros(n_vocab, dtype=np.int64)
    if tokens:
        uniq = np.concatenate([np.unique(t) for t in tokens])
        df += np.bincount(uniq.astype(np.int64), minlength=n_vocab)[:n_vocab]
    return df
