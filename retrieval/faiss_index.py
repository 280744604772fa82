"""Dense retrieval over one namespace with FAISS (inner product on unit vectors = cosine).

Small namespaces use an exact `IndexIDMap2(IndexFlatIP)`. Above `hnsw_threshold` vectors the
index becomes `IndexIDMap2(IndexHNSWFlat)`: approximate, but a query costs about log(n)
instead of n. HNSW cannot remove vectors, so deletions are tombstones filtered out of an
over-fetched result; the graph is rebuilt once tombstones pass a share of the index.
faiss-gpu is used for exact search when it finds a GPU (extra `gpu`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .select import Hits

try:  # an availability flag, not an import-time failure (bm25s `selection.topk`)
    import importlib.util

    FAISS_AVAILABLE = importlib.util.find_spec("faiss") is not None
except ValueError:  # pragma: no cover
    FAISS_AVAILABLE = False


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as exc:
        raise ImportError(
            "dense retrieval needs FAISS: pip install faiss-cpu (or 'switchyard[gpu]' for "
            "faiss-gpu on CUDA machines)"
        ) from exc
    return faiss


def _single_thread_search(index: Any, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """One query gains nothing from OpenMP threads, and on a busy machine their spin-waits
    cost more than the search (measured: 25 ms vs a few ms at 20k vectors on 2 cores)."""
    faiss = _faiss()
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        return index.search(q, k)
    finally:
        faiss.omp_set_num_threads(before)


@dataclass(frozen=True)
class DenseParams:
    dim: int = 384
    hnsw_threshold: int = 20_000  # exact search below this many vectors
    hnsw_m: int = 32
    ef_construction: int = 80
    ef_search: int = 64
    rebuild_ratio: float = 0.2  # rebuild HNSW when tombstones exceed this share
    use_gpu: bool = True  # only where faiss-gpu sees a GPU


class DenseShard:
    """FAISS index of one namespace, keyed by chunk-store row id. Thread-safe."""

    def __init__(self, params: DenseParams | None = None) -> None:
        self.params = params or DenseParams()
        self._lock = threading.RLock()
        self._index: Any = None
        self._hnsw = False
        self._tombstones: set[int] = set()
        self._gpu: Any = None  # a GPU copy of a flat index, dropped on every change
        self._mapped = False  # the index's arrays are a read-only view of its saved file

    def __len__(self) -> int:
        return 0 if self._index is None else int(self._index.ntotal) - len(self._tombstones)

    @property
    def is_hnsw(self) -> bool:
        return self._hnsw

    def ids(self) -> np.ndarray:
        """Row ids with a live vector."""
        if self._index is None:
            return np.empty(0, dtype=np.int64)
        faiss = _faiss()
        ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        if self._tombstones:
            ids = ids[~np.isin(ids, list(self._tombstones))]
        return ids

    def _new_index(self, hnsw: bool) -> Any:
        faiss = _faiss()
        if hnsw:
            inner = faiss.IndexHNSWFlat(self.params.dim, self.params.hnsw_m,
                                        faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = self.params.ef_construction
            inner.hnsw.efSearch = self.params.ef_search
        else:
            inner = faiss.IndexFlatIP(self.params.dim)
        return faiss.IndexIDMap2(inner)

    def add(self, rowids: Sequence[int], vectors: np.ndarray) -> None:
        if len(rowids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        ids = np.asarray(rowids, dtype=np.int64)
        with self._lock:
            if self._index is None:
                self._index = self._new_index(hnsw=False)
            self._tombstones.difference_update(ids.tolist())
            self._own()
            self._index.add_with_ids(vectors, ids)
            self._gpu = None
            if not self._hnsw and self._index.ntotal > self.params.hnsw_threshold:
                self._rebuild(hnsw=True)

    def delete(self, rowids: Sequence[int]) -> None:
        with self._lock:
            if self._index is None or not len(rowids):
                return
            ids = np.asarray(rowids, dtype=np.int64)
            if self._hnsw:
                self._tombstones.update(ids.tolist())
                if len(self._tombstones) > self.params.rebuild_ratio * self._index.ntotal:
                    self._rebuild(hnsw=True)
            else:
                self._own()
                self._index.remove_ids(ids)
            self._gpu = None

    def _rebuild(self, hnsw: bool) -> None:
        """Re-create the index from its live vectors (the flat->HNSW switch, or a purge)."""
        ids = self.ids()
        vectors = (self._index.reconstruct_batch(ids) if ids.size
                   else np.empty((0, self.params.dim), np.float32))
        index = self._new_index(hnsw=hnsw)
        if ids.size:
            index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
        self._index, self._hnsw, self._tombstones = index, hnsw, set()
        self._mapped = False

    def _own(self) -> None:
        """Copy a memory-mapped index into memory before FAISS changes it: growing or
        shrinking a mapped array is a failed assertion that aborts the process."""
        if not self._mapped:
            return
        faiss = _faiss()
        self._index = faiss.deserialize_index(faiss.serialize_index(self._index))
        self._mapped = False
        self._tune()

    def _tune(self) -> None:
        """Search settings are not saved with an HNSW index: set them after a load."""
        if self._hnsw:
            faiss = _faiss()
            faiss.downcast_index(self._index.index).hnsw.efSearch = self.params.ef_search

    def _searcher(self) -> Any:
        if self._hnsw or not self.params.use_gpu:
            return self._index
        faiss = _faiss()
        gpu_ready = self._gpu is None and hasattr(faiss, "StandardGpuResources")
        if gpu_ready and faiss.get_num_gpus() > 0:  # pragma: no cover - needs CUDA
            self._gpu = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, self._index)
        return self._gpu or self._index

    def search(self, query: np.ndarray, k: int) -> Hits:
        with self._lock:
            if self._index is None or self._index.ntotal == 0:
                return Hits.empty()
            fetch = min(int(self._index.ntotal), k + len(self._tombstones))
            q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
            scores, ids = _single_thread_search(self._searcher(), q, fetch)
            dead = self._tombstones
        keep = ids[0] >= 0
        if dead:
            keep &= ~np.isin(ids[0], list(dead))
        ids0, scores0 = ids[0][keep][:k], scores[0][keep][:k]
        return Hits(ids0.astype(np.int64), scores0.astype(np.float32))

    def save(self, path: Path) -> np.ndarray:
        """Write the FAISS index (HNSW graph included); returns the row ids written."""
        with self._lock:
            if self._index is None:
                self._index = self._new_index(hnsw=False)
            if self._tombstones:
                self._rebuild(hnsw=self._hnsw)
            path.parent.mkdir(parents=True, exist_ok=True)
            _faiss().write_index(self._index, str(path))
            return self.ids()

    @classmethod
    def load(cls, path: Path, params: DenseParams | None = None,
             mmap: bool = True) -> DenseShard:
        """Open a saved index, memory-mapped where FAISS can (IO_FLAG_MMAP_IFC): vectors and
        graph are paged in as searches touch them, so a reopen does not read the whole file
        (measured in bench/retrieval.py's scale test). The first add or removal copies it
        into memory. The file is never written in place (persist.py swaps directories), so
        the mapping stays valid."""
        shard = cls(params)
        faiss = _faiss()
        flag = getattr(faiss, "IO_FLAG_MMAP_IFC", None) if mmap else None
        shard._index = (faiss.read_index(str(path)) if flag is None
                        else faiss.read_index(str(path), flag))
        shard._mapped = flag is not None
        shard._hnsw = isinstance(faiss.downcast_index(shard._index.index), faiss.IndexHNSWFlat)
        shard._tune()
        return shard
