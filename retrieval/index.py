"""`Index`: the one facade over the chunk store and the three retrievers.

    index = Index.open(data_dir)
    index.add(chunks)                    # ChunkSink: the compactor's dropped chunks
    hits = index.search("why did the refund fail", namespaces=["session-1"], k=5)

Files: data_dir/chunks.sqlite, and data_dir/index/<namespace>/{bm25/, grep/, dense/}, each
memory-mapped or read back on reopen. The store is the truth; index files are caches keyed to
its rows (persist.py), patched or rebuilt from it when a namespace is first used, so chunks
added by another process show up after a reopen. Dense vectors are computed
lazily, on the first dense or hybrid search that needs them (or by `index_path`).
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal, Self, TypeVar, cast

import numpy as np

from .bm25 import Bm25Params, Bm25Shard
from .chunk import Chunk
from .errors import InvalidQuery, UnknownNamespace
from .faiss_index import DenseParams, DenseShard
from .files import ChunkingParams, chunk_file, iter_files, read_text
from .fuse import (
    DEFAULT_FUSION,
    RRF_C,
    NamespaceKind,
    fuse,
    fusion_params,
    query_shape,
    weights_for,
)
from .grep import GrepShard, Origin, compile_literals, compile_pattern, match_lines
from .persist import Reconcile, RowKeys, load_keys, reconcile, save_dir
from .select import Hits
from .store import MAX_CHUNK_CHARS, ChunkStore, SharedStore
from .tokenize import STOPWORDS, split_identifier

T = TypeVar("T")

Mode = Literal["bm25", "grep", "dense", "hybrid"]
MODES: tuple[str, ...] = ("bm25", "grep", "dense", "hybrid")
MAX_K = 1_000
# In hybrid search grep is one voice of three; an identifier matching more places than this
# does not single out a chunk, and scanning on would cost ~1 us per match in Python.
HYBRID_MAX_MATCHES = 5_000
_WORD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d+)*")
PREFILTER_MAX = 2_000  # a literal in more chunks than this is left to BM25 and dense
EMBED_STEP = 256  # chunks per progress-bar step while `switchyard index` embeds


@dataclass(frozen=True)
class Hit:
    """One search result: the chunk, its fused score and which retrievers found it."""

    chunk_id: str
    score: float
    ranks: Mapping[str, int]  # retriever ("bm25" / "grep" / "dense") -> 1-based rank
    chunk: Chunk
    lines: tuple[int, ...] = ()  # grep matches: line numbers in the chunk's source


@dataclass(frozen=True)
class IndexStats:
    files: int
    files_skipped: int
    chunks: int  # chunks cut from the files
    added: int  # new chunks (the rest were already stored)
    seconds: float


@dataclass(frozen=True)
class IndexConfig:
    bm25: Bm25Params = field(default_factory=Bm25Params)
    dense: DenseParams = field(default_factory=DenseParams)
    chunking: ChunkingParams = field(default_factory=ChunkingParams)
    fusion: str = DEFAULT_FUSION
    max_chunk_chars: int = MAX_CHUNK_CHARS
    depth: int = 50  # candidates each retriever hands to fusion


class _Shards:
    """In-memory indexes of one namespace, built or loaded from the store on first use."""

    def __init__(self, bm25: Bm25Shard, grep: GrepShard, history: bool | None = None) -> None:
        self.bm25 = bm25
        self.grep = grep
        # A session's messages, not a corpus: picks the fusion table. Set when loaded (a
        # namespace is one or the other, ChunkStore.is_history); None while it is empty,
        # until its first chunks are added.
        self.history = history
        self.positions: dict[int, int] = {}  # a history's row id -> message index (Origin)
        self.dense: DenseShard | None = None
        self.bm25_dirty = False
        self.grep_dirty = False
        self.dense_dirty = False
        self.dense_lock = threading.Lock()
        self.generation = 0  # bumped on every add/delete; dense catches up when it differs
        self.dense_generation = -1
        # A shared store (another replica writes it too): the store's (version, deletes) of
        # the namespace when last caught up, and the highest row id read from it.
        self.stamp: tuple[int, int] = (0, 0)
        self.seen_rowid = 0


def namespace_dirname(namespace: str) -> str:
    """A safe, unique directory name for an arbitrary namespace string."""
    safe = re.sub(r"[^\w.-]", "_", namespace)[:40]
    return f"{safe}-{hashlib.blake2b(namespace.encode(), digest_size=4).hexdigest()}"


class Index:
    """Chunk store + BM25 + grep + FAISS. Thread-safe; one per data directory per process."""

    def __init__(self, data_dir: Path, config: IndexConfig | None = None,
                 encoder: Callable[[], Any] | None = None, store: Any = None) -> None:
        """`store`: a shared chunk store with ChunkStore's methods plus `stamp` and
        `rows_after` (server/stores/pg_chunks.py); default: chunks.sqlite in data_dir."""
        from .embedding import get_encoder

        self.data_dir = Path(data_dir)
        self.config = config or IndexConfig()
        self.store = store or ChunkStore(self.data_dir / "chunks.sqlite",
                                         self.config.max_chunk_chars)
        self._encoder = encoder or get_encoder
        self._shards: dict[str, _Shards] = {}
        self._lock = threading.RLock()

    @classmethod
    def open(cls, data_dir: Path, config: IndexConfig | None = None,
             encoder: Callable[[], Any] | None = None, store: Any = None) -> Index:
        return cls(data_dir, config, encoder, store)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _dir(self, namespace: str) -> Path:
        return self.data_dir / "index" / namespace_dirname(namespace)

    # -- namespaces ---------------------------------------------------------------------
    def namespaces(self) -> list[str]:
        return self.store.namespaces()

    def has_chunks(self, namespace: str) -> bool:
        """Cheap (one indexed SQLite lookup): the pipeline asks this on every request."""
        return self.store.has_chunks(namespace)

    def namespace_kind(self, namespaces: Sequence[str]) -> NamespaceKind:
        """The fusion table a hybrid search over these namespaces uses: "history" when each
        holds a session's messages, else "corpus"."""
        return _kind({ns: self._load(ns) for ns in namespaces})

    def _load(self, namespace: str) -> _Shards:
        """The namespace's BM25 and grep indexes: the saved ones where they match the store
        (patched for rows added or deleted since), else built from the store's texts."""
        with self._lock:
            shards = self._shards.get(namespace)
            if shards is not None and self.store.shared:
                shards = self._catch_up(namespace, shards)
            if shards is not None:
                return shards
            stamp = cast(SharedStore, self.store).stamp(namespace) if self.store.shared else (0, 0)
            live = self.store.row_keys(namespace)
            folder = self._dir(namespace)
            bm25, bm25_plan = _open_saved(folder / "bm25", live, Bm25Shard.load)
            grep, grep_plan = _open_saved(folder / "grep", live, GrepShard.load)
            plans = (bm25_plan, grep_plan)
            if any(plan is None for plan in plans):
                rows = self.store.texts(namespace)  # something is rebuilt: read every text
            else:
                need = np.union1d(*(plan.missing for plan in plans if plan is not None))
                rows = self.store.texts(namespace, need.tolist()) if need.size else []
            shards = _Shards(_fill(bm25 or Bm25Shard(self.config.bm25), rows, bm25_plan),
                             _fill(grep or GrepShard(), rows, grep_plan),
                             self.store.is_history(namespace) if len(live.rowids) else None)
            shards.bm25_dirty = bm25_plan is None or not bm25_plan.current
            shards.grep_dirty = grep_plan is None or not grep_plan.current
            if shards.history:
                shards.positions = self.store.positions(namespace)
            shards.stamp, shards.seen_rowid = stamp, int(live.rowids.max(initial=0))
            self._shards[namespace] = shards
            return shards

    def _catch_up(self, namespace: str, shards: _Shards) -> _Shards | None:
        """A loaded namespace of a shared store, with what other replicas wrote since: the
        rows above the last one read, or None (reload from the store) after a delete."""
        store = cast(SharedStore, self.store)
        stamp = store.stamp(namespace)
        if stamp == shards.stamp:
            return shards
        if stamp[1] != shards.stamp[1]:
            del self._shards[namespace]
            return None
        rows = store.rows_after(namespace, shards.seen_rowid)
        if rows:
            fresh = ~np.isin(np.fromiter((r for r, _ in rows), np.int64, len(rows)),
                             shards.grep.rowids())  # rows this replica added are there
            self._index_rows(shards, [row for row, new in zip(rows, fresh) if new])
            shards.seen_rowid = rows[-1][0]
        shards.stamp = stamp
        return shards

    # -- writes ---------------------------------------------------------------------------
    def add(self, chunks: Sequence[Chunk]) -> list[str]:
        """Store chunks (content duplicates in a namespace are skipped) and index them."""
        return self._add(chunks)[0]

    def _add(self, chunks: Sequence[Chunk]) -> tuple[list[str], int]:
        ids, inserted = self.store.add(chunks)
        by_ns = self._loaded_by_namespace(
            (chunk.namespace, (rowid, chunk)) for rowid, chunk in inserted)
        for shards, added in by_ns:
            self._index_rows(shards, added)
        return ids, len(inserted)

    @staticmethod
    def _index_rows(shards: _Shards, added: Sequence[tuple[int, Chunk]]) -> None:
        if not added:
            return
        if shards.history is None:  # loaded while empty: its first chunk tells
            shards.history = added[0][1].message_index is not None
        if shards.history:
            shards.positions.update((rowid, chunk.message_index) for rowid, chunk in added
                                    if chunk.message_index is not None)
        rows = [(rowid, chunk.text) for rowid, chunk in added]
        shards.bm25.add(rows)
        shards.grep.add(rows)
        shards.bm25_dirty = shards.grep_dirty = True
        shards.generation += 1

    def delete(self, ids: Sequence[str]) -> int:
        gone = self.store.delete(ids)
        for shards, rowids in self._loaded_by_namespace((ns, rowid) for rowid, ns in gone):
            shards.bm25.delete(rowids)
            shards.grep.delete(rowids)
            for rowid in rowids:
                shards.positions.pop(rowid, None)
            shards.bm25_dirty = shards.grep_dirty = True
            shards.generation += 1
            with shards.dense_lock:
                if shards.dense is not None:
                    shards.dense.delete(rowids)
                    shards.dense_dirty = True
        return len(gone)

    def _loaded_by_namespace(self, items: Iterable[tuple[str, T]]) -> list[tuple[_Shards, list[T]]]:
        """Group (namespace, item) pairs per namespace, keeping only namespaces whose shards
        are loaded: the others rebuild from the store when first used."""
        by_ns: dict[str, list[T]] = {}
        for ns, item in items:
            by_ns.setdefault(ns, []).append(item)
        with self._lock:
            return [(self._shards[ns], rows) for ns, rows in by_ns.items() if ns in self._shards]

    def get(self, ids: Sequence[str]) -> list[Chunk]:
        return self.store.get(ids)

    # -- dense ----------------------------------------------------------------------------
    def _dense(self, namespace: str, shards: _Shards, limit: int | None = None,
               progress: bool = False) -> DenseShard:
        """The namespace's FAISS index, caught up with the store: missing chunks are encoded
        (outside the lock, so a search that asks for none never waits on an encoding), at
        most `limit` of them on this call (None: all)."""
        while True:
            with shards.dense_lock:
                if shards.dense is None:
                    shards.dense, shards.dense_dirty = self._open_dense(namespace)
                dense = shards.dense
                if shards.dense_generation == shards.generation:
                    return dense  # nothing changed since the last catch-up: skip the O(n) diff
                generation = shards.generation
                live = shards.grep.rowids()
                have = dense.ids()
                stale = have[~np.isin(have, live)]
                if stale.size:
                    dense.delete(stale.tolist())
                    shards.dense_dirty = True
                missing = live[~np.isin(live, have)]
                if not missing.size:
                    shards.dense_generation = generation
                    return dense
                if limit is not None and limit <= 0:
                    return dense  # searched as it is; a later call encodes the rest
                todo = (missing if limit is None else missing[:limit]).tolist()
            rows = self.store.get_rows(todo)
            order = [r for r in todo if r in rows]
            if not order:  # indexed but gone from the store: nothing to encode, stop here
                with shards.dense_lock:
                    shards.dense_generation = generation
                return dense
            vectors = _encode(self._encoder(), [rows[r].text for r in order], progress)
            with shards.dense_lock:
                keep = np.isin(order, shards.grep.rowids()) & ~np.isin(order, dense.ids())
                if keep.any():  # a concurrent call may have added some, or a delete removed
                    dense.add(np.asarray(order)[keep].tolist(), vectors[keep])
                    shards.dense_dirty = True
            if limit is not None:
                limit -= len(todo)

    def catch_up_dense(self, namespace: str) -> None:
        """Encode the namespace's chunks that its FAISS index lacks (off the request path:
        the pipeline runs it after a compaction stored the dropped chunks)."""
        if self.has_chunks(namespace):
            self._dense(namespace, self._load(namespace))

    # -- search ---------------------------------------------------------------------------
    def search(self, query: str, *, namespaces: Sequence[str], k: int = 10,
               mode: Mode = "hybrid", regex: bool | None = None,
               encode_limit: int | None = None) -> list[Hit]:
        """Ranked hits from the namespaces. `regex`: grep's query is an RE2 pattern (default:
        only when written as /pattern/), else a literal. `encode_limit`: at most this many
        not-yet-encoded chunks are encoded for the dense retriever on this call (None: all;
        0: dense searches what is encoded, BM25 and grep still see every chunk)."""
        shards = self._validate(query, namespaces, k, mode)
        plan = _plan(query, mode, regex, self.config.fusion, namespace=_kind(shards))
        depth = max(k, self.config.depth) if mode == "hybrid" else k
        results = self._retrieve(query, shards, plan, depth, encode_limit)
        if mode == "hybrid":
            fused = fuse(results, plan.weights, k, plan.fusion, plan.rrf_c)
            return self._hits(fused.ids, fused.scores, fused.ranks, plan.pattern)
        (name, hits), = results.items()  # one retriever: keep its own scores
        ranks = [{name: r} for r in range(1, len(hits) + 1)]
        return self._hits(hits.ids[:k], hits.scores[:k], ranks[:k], plan.pattern)

    def rankings(self, query: str, *, namespaces: Sequence[str],
                 depth: int | None = None) -> tuple[dict[str, Hits], dict[str, float]]:
        """What hybrid search fuses: each retriever's best-first row ids and scores, and the
        weights the query's shape gives them (for evaluation and fusion tuning: grep runs on
        the query's literals even where the shape's weights leave it out)."""
        depth = depth or self.config.depth
        shards = self._validate(query, namespaces, depth, "hybrid")
        plan = _plan(query, "hybrid", None, self.config.fusion, grep_always=True,
                     namespace=_kind(shards))
        return self._retrieve(query, shards, plan, depth), plan.weights

    def _retrieve(self, query: str, shards: dict[str, _Shards], plan: _Plan,
                  depth: int, encode_limit: int | None = None) -> dict[str, Hits]:
        results: dict[str, Hits] = {}
        if plan.mode in ("bm25", "hybrid"):
            results["bm25"] = Hits.merge([s.bm25.search(query, depth) for s in shards.values()],
                                         depth)
        if plan.pattern is not None:
            results["grep"] = Hits.merge([_grep(s, plan.pattern, plan.literals, depth)
                                          for s in shards.values()], depth)
        if plan.mode in ("dense", "hybrid"):
            qvec = self._encoder().encode([query])[0]
            results["dense"] = Hits.merge(
                [self._dense(ns, s, encode_limit).search(qvec, depth)
                 for ns, s in shards.items()], depth)
        return results

    def _validate(self, query: str, namespaces: Sequence[str], k: int,
                  mode: str) -> dict[str, _Shards]:
        if not isinstance(query, str) or not query.strip():
            raise InvalidQuery("empty query: pass the text to search for", param="query")
        if mode not in MODES:
            raise InvalidQuery(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}",
                               param="mode")
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
            raise InvalidQuery(f"k must be an integer from 1 to {MAX_K}, got {k!r}", param="k")
        if isinstance(namespaces, str) or not namespaces:
            raise InvalidQuery("namespaces must be a non-empty list of names",
                               param="namespaces")
        unknown = [ns for ns in namespaces if not self.has_chunks(ns)]
        if unknown:
            raise UnknownNamespace(
                f"no chunks in namespace(s) {', '.join(map(repr, unknown))}; index some first "
                f"(switchyard index PATH --namespace NAME) or pick one of: "
                f"{', '.join(self.namespaces()[:20]) or '(none)'}", param="namespaces")
        return {ns: self._load(ns) for ns in dict.fromkeys(namespaces)}

    def _hits(self, ids: np.ndarray, scores: np.ndarray, ranks: list[dict[str, int]],
              pattern: Any) -> list[Hit]:
        chunks = self.store.get_rows(ids.tolist())
        out = []
        for rowid, score, found in zip(ids.tolist(), scores.tolist(), ranks):
            chunk = chunks.get(rowid)
            if chunk is None:  # deleted by another thread since the search
                continue
            lines: tuple[int, ...] = ()
            if pattern is not None and "grep" in found:
                lines = tuple(chunk.start_line - 1 + n for n in match_lines(chunk.text, pattern))
            out.append(Hit(chunk.id, float(score), dict(found), chunk, lines))
        return out

    # -- files ----------------------------------------------------------------------------
    def index_path(self, path: Path, namespace: str, progress: bool = False,
                   dense: bool = True) -> IndexStats:
        """Chunk the files under `path` (honouring .gitignore) into `namespace`."""
        from tqdm import tqdm

        t0 = time.monotonic()
        root = Path(path)
        if not root.exists():
            raise InvalidQuery(f"no such file or directory: {root}", param="path")
        base = root if root.is_dir() else root.parent
        files = list(iter_files(root))
        n_chunks = added = skipped = 0
        for file in tqdm(files, desc=f"index {namespace}", unit="file", disable=not progress):
            text = read_text(file)
            if text is None:
                skipped += 1
                continue
            chunks = chunk_file(text, file.relative_to(base).as_posix(), namespace,
                                self.config.chunking)
            n_chunks += len(chunks)
            added += self._add(chunks)[1]
        if n_chunks:
            shards = self._load(namespace)
            if dense:
                self._dense(namespace, shards, progress=progress)
            self.flush()
        return IndexStats(len(files), skipped, n_chunks, added, time.monotonic() - t0)

    def _open_dense(self, namespace: str) -> tuple[DenseShard, bool]:
        """The saved FAISS index where it matches the store (stale rows removed; the caller
        encodes the missing ones), else an empty one; and whether it needs saving. An index
        saved before keys were kept (dense.faiss) is patched by row id alone, and saved
        again with keys: re-encoding every chunk would take minutes."""
        folder = self._dir(namespace)
        dense, plan = _open_saved(folder / "dense", self.store.row_keys(namespace),
                                  lambda d: DenseShard.load(d / "index.faiss", self.config.dense))
        if dense is not None:
            return dense, bool(plan and plan.stale.size)
        if (folder / "dense.faiss").exists():
            with _unreadable_is_none():
                return DenseShard.load(folder / "dense.faiss", self.config.dense), True
        return DenseShard(self.config.dense), False

    def flush(self) -> None:
        """Write changed index files (BM25 arrays, grep text, FAISS index) beside the store,
        each with the store keys of its rows (see persist.py)."""
        with self._lock:
            items = list(self._shards.items())
        for ns, shards in items:
            if not (shards.bm25_dirty or shards.grep_dirty or shards.dense_dirty):
                continue
            folder, live = self._dir(ns), self.store.row_keys(ns)
            if shards.bm25_dirty:
                shards.bm25_dirty = False  # cleared first: an add during the save sets it again
                save_dir(folder / "bm25", shards.bm25.save, live)
            if shards.grep_dirty:
                shards.grep_dirty = False
                save_dir(folder / "grep", shards.grep.save, live)
            with shards.dense_lock:
                if shards.dense is not None and shards.dense_dirty:
                    save_dir(folder / "dense", partial(_save_dense, shards.dense), live)
                    (folder / "dense.faiss").unlink(missing_ok=True)
                    shards.dense_dirty = False

    def close(self) -> None:
        self.flush()
        self.store.close()


S = TypeVar("S", Bm25Shard, GrepShard, DenseShard)
TextShard = TypeVar("TextShard", Bm25Shard, GrepShard)  # filled from (rowid, text) rows


def _open_saved(directory: Path, live: RowKeys,
                load: Callable[[Path], S]) -> tuple[S | None, Reconcile | None]:
    """A saved index and what it lacks, or (None, None) when it must be rebuilt: absent,
    without keys (an older format), unreadable, or mostly stale. Stale rows are removed."""
    saved = load_keys(directory)
    if saved is None:
        return None, None
    plan = reconcile(saved, live)
    if plan.rebuild:
        return None, None
    shard = None
    with _unreadable_is_none():
        shard = load(directory)
    if shard is None:
        return None, None
    if plan.stale.size:
        shard.delete(plan.stale.tolist())
    return shard, plan


@contextmanager
def _unreadable_is_none() -> Iterator[None]:
    """A truncated or foreign index file is a cache miss, not an error: rebuild it."""
    try:
        yield
    except (OSError, ValueError, KeyError, RuntimeError, EOFError):
        pass


def _save_dense(dense: DenseShard, directory: Path) -> np.ndarray:
    return dense.save(directory / "index.faiss")


def _fill(shard: TextShard, rows: Sequence[tuple[int, str]], plan: Reconcile | None
          ) -> TextShard:
    """Add the rows `plan` says the shard lacks (every row for a fresh shard)."""
    if plan is not None:
        if not plan.missing.size:
            return shard
        missing = set(plan.missing.tolist())
        rows = [row for row in rows if row[0] in missing]
    shard.add(rows)
    return shard


def _grep(shards: _Shards, pattern: Any, literals: Sequence[str], depth: int) -> Hits:
    """Grep a namespace. For hybrid literals, scan only chunks whose BM25 postings hold every
    word part of some literal (a scan of the whole namespace is O(bytes): ~60 ms at 100k
    chunks); literals found in over PREFILTER_MAX chunks are skipped (and, in a history,
    cannot claim a first mention: some of theirs went unscanned). A literal cut mid-word
    can miss here; grep mode always scans everything."""
    if not literals:
        return shards.grep.search(pattern, depth, origin=_origin(shards))
    candidates = []
    complete: set[int] = set()  # pattern groups (literal i is group i + 1) scanned in full
    for i, literal in enumerate(literals):
        parts = split_identifier_parts(literal)
        rows = shards.bm25.containing(parts) if parts else None
        if rows is None and parts:
            continue  # a word the namespace never saw: the literal cannot match
        if rows is None:  # no word parts (punctuation only): scan, bounded
            return shards.grep.search(pattern, depth, HYBRID_MAX_MATCHES, _origin(shards))
        if rows.size <= PREFILTER_MAX:  # a common literal singles nothing out: BM25 has it
            candidates.append(rows)
            complete.add(i + 1)
    if not candidates:
        return Hits.empty()
    return shards.grep.search_in(pattern, np.unique(np.concatenate(candidates)), depth,
                                 _origin(shards, frozenset(complete)))


def _origin(shards: _Shards, groups: frozenset[int] | None = None) -> Origin | None:
    """A history's conversation order, for grep's first-mention rule; None for a corpus."""
    if not shards.history:
        return None
    positions = shards.positions
    unknown = np.iinfo(np.int64).max  # a chunk without a message index never comes first

    def position(rowids: np.ndarray) -> np.ndarray:
        return np.fromiter((positions.get(r, unknown) for r in rowids.tolist()), np.int64,
                           rowids.size)

    return Origin(position, len(shards.grep), groups)


def split_identifier_parts(literal: str) -> list[str]:
    """The word parts BM25 indexed for any text containing `literal` at word boundaries.
    Whole identifiers are left out: `user_name` inside `get_user_name` is not its token."""
    parts: set[str] = set()
    for word in _WORD_RE.findall(literal):
        parts.update([word] if word[0].isdigit() else split_identifier(word))
    return sorted(parts - STOPWORDS)


@dataclass(frozen=True)
class _Plan:
    """Which retrievers a search runs, grep's pattern and the fusion weights."""

    mode: str
    weights: dict[str, float]
    fusion: str = "convex"
    rrf_c: int = RRF_C
    pattern: Any = None
    literals: tuple[str, ...] = ()  # hybrid grep: narrow to chunks holding their words


def _kind(shards: Mapping[str, _Shards]) -> NamespaceKind:
    return "history" if shards and all(s.history for s in shards.values()) else "corpus"


def _plan(query: str, mode: str, regex: bool | None, fusion: str = DEFAULT_FUSION,
          grep_always: bool = False, namespace: NamespaceKind = "corpus") -> _Plan:
    if mode == "grep":
        return _Plan(mode, {"grep": 1.0}, pattern=_grep_pattern(query, regex))
    if mode != "hybrid":
        return _Plan(mode, {mode: 1.0})
    shape = query_shape(query)
    weights = weights_for(shape, namespace).as_dict()
    method, rrf_c = fusion_params(shape, fusion, namespace)
    # grep only when the query names something, and its weight counts
    if shape.literals and (weights["grep"] > 0 or grep_always):
        return _Plan(mode, weights, method, rrf_c, compile_literals(shape.literals),
                     shape.literals)
    return _Plan(mode, weights, method, rrf_c)


def _grep_pattern(query: str, regex: bool | None) -> Any:
    text = query.strip()
    if regex is None and len(text) > 2 and text.startswith("/") and text.endswith("/"):
        return compile_pattern(text[1:-1], literal=False)
    return compile_pattern(query, literal=not regex)


def _encode(encoder: Any, texts: list[str], progress: bool) -> np.ndarray:
    """Vectors for `texts`; with `progress`, in steps under a tqdm bar (embedding a repo
    takes seconds to minutes on CPU, the longest silent stretch of `switchyard index`)."""
    if not progress or len(texts) <= EMBED_STEP:
        return encoder.encode(texts)
    from tqdm import tqdm

    parts = []
    with tqdm(total=len(texts), desc="embed", unit="chunk") as bar:
        for start in range(0, len(texts), EMBED_STEP):
            parts.append(encoder.encode(texts[start:start + EMBED_STEP]))
            bar.update(len(parts[-1]))
    return np.concatenate(parts)
