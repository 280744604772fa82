"""Grep over chunk text with RE2: linear time, so user patterns cannot hang the server.

A namespace's texts are joined into one bytes buffer and scanned once per query; match
offsets map back to chunks with a binary search. Matches that would straddle two chunks
are dropped. Chunks rank by matches (distinct patterns first, then count); ties go to the
earlier chunk, since the first mention of an identifier is usually where it is defined.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InvalidQuery
from .select import Hits, topk_indices

MAX_MATCHES = 100_000  # a pattern matching more than this is not a useful search
_SEP = b"\n\x00\n"


def compile_pattern(pattern: str, *, literal: bool) -> Any:
    """An RE2 pattern over bytes; a bad pattern raises InvalidQuery with RE2's message."""
    import re2

    if not pattern:
        raise InvalidQuery("empty grep pattern", param="query")
    options = re2.Options()
    options.log_errors = False
    options.max_mem = 64 << 20
    # (?m): ^ and $ match at line ends, as in grep; chunk boundaries are line ends too.
    source = re2.escape(pattern) if literal else "(?m)" + pattern
    try:
        return re2.compile(source.encode(), options)
    except re2.error as exc:
        msg = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise InvalidQuery(f"invalid regular expression {pattern!r}: {msg}", param="query") from None


def alternation(literals: Sequence[str]) -> str:
    """One RE2 pattern matching any of the literals (escaped), with a group per literal."""
    import re2

    return "|".join(f"({re2.escape(x)})" for x in literals)


def compile_literals(literals: Sequence[str]) -> Any:
    """Literals only (no quantifiers, so no backtracking blow-up): Python's `re` is safe here
    and iterates matches ~20x cheaper than the RE2 binding, which re-enters per match."""
    if not literals or not all(literals):
        raise InvalidQuery("empty grep pattern", param="query")
    return re.compile("|".join(f"({re.escape(x)})" for x in literals).encode())


def match_lines(text: str, compiled: Any, limit: int = 20) -> tuple[int, ...]:
    """1-based line numbers (within `text`) of the first `limit` matches."""
    data = text.encode()
    lines: list[int] = []
    for m in compiled.finditer(data):
        line = data.count(b"\n", 0, m.start()) + 1
        if not lines or lines[-1] != line:
            lines.append(line)
        if len(lines) >= limit:
            break
    return tuple(lines)


class GrepShard:
    """The texts of one namespace, scanned as one buffer. Thread-safe.

    Two segments: a *base* buffer (a memory-mapped file after `load`, so a reopen reads no
    text) with a mask of deleted chunks, and the chunks added since, joined on first scan."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._base: Any = b""
        self._base_ids = np.empty(0, dtype=np.int64)  # ascending
        self._base_starts = np.empty(0, dtype=np.int64)
        self._base_ends = np.empty(0, dtype=np.int64)
        self._base_alive = np.empty(0, dtype=bool)
        self._rowids: list[int] = []
        self._texts: list[bytes] = []
        self._joined: tuple[bytes, np.ndarray, np.ndarray, np.ndarray] | None = None
        self._positions: dict[int, int] | None = None
        self._file: Any = None  # the open file behind a mapped base

    def __len__(self) -> int:
        return int(self._base_alive.sum()) + len(self._rowids)

    def rowids(self) -> np.ndarray:
        with self._lock:
            return np.concatenate([self._base_ids[self._base_alive],
                                   np.asarray(self._rowids, dtype=np.int64)])

    def add(self, rows: Sequence[tuple[int, str]]) -> None:
        with self._lock:
            for rowid, text in rows:
                self._rowids.append(int(rowid))
                self._texts.append(text.encode())
            self._joined = None
            self._positions = None

    def delete(self, rowids: Sequence[int]) -> None:
        gone = {int(r) for r in rowids}
        with self._lock:
            if self._base_ids.size:
                hit = np.isin(self._base_ids, list(gone)) & self._base_alive
                if hit.any():
                    self._base_alive = self._base_alive & ~hit
            keep = [i for i, r in enumerate(self._rowids) if r not in gone]
            if len(keep) != len(self._rowids):
                self._rowids = [self._rowids[i] for i in keep]
                self._texts = [self._texts[i] for i in keep]
                self._joined = None
                self._positions = None

    def _text_of(self, rowid: int) -> bytes | None:
        """One chunk's bytes (caller holds the lock)."""
        if self._positions is None:
            self._positions = {r: i for i, r in enumerate(self._rowids)}
        i = self._positions.get(rowid)
        if i is not None:
            return self._texts[i]
        b = int(np.searchsorted(self._base_ids, rowid))
        if b < self._base_ids.size and self._base_ids[b] == rowid and self._base_alive[b]:
            return bytes(self._base[int(self._base_starts[b]) : int(self._base_ends[b])])
        return None

    def search_in(self, compiled: Any, rowids: np.ndarray, k: int) -> Hits:
        """Like `search`, but scanning only the given chunks (candidates from an index)."""
        rows, texts = [], []
        with self._lock:
            for r in rowids.tolist():
                text = self._text_of(r)
                if text is not None:
                    rows.append(r)
                    texts.append(text)
        buffer, starts, ends = _join(texts)
        return _rank(compiled, buffer, starts, ends, np.asarray(rows, np.int64), k, MAX_MATCHES)

    def _snapshot(self) -> tuple[bytes, np.ndarray, np.ndarray, np.ndarray]:
        with self._lock:
            if self._joined is None:
                buffer, starts, ends = _join(self._texts)
                self._joined = (buffer, starts, ends, np.asarray(self._rowids, dtype=np.int64))
            return self._joined

    def search(self, compiled: Any, k: int, max_matches: int = MAX_MATCHES) -> Hits:
        """Top-k chunks by matches; each segment's scan stops after `max_matches`."""
        with self._lock:
            base = (self._base, self._base_starts, self._base_ends, self._base_ids,
                    self._base_alive)
        parts = [_rank(compiled, *base[:4], k, max_matches, alive=base[4])] \
            if base[3].size else []
        if self._rowids:
            parts.append(_rank(compiled, *self._snapshot(), k, max_matches))
        return Hits.merge(parts, k)

    # -- persistence ------------------------------------------------------------------
    def save(self, directory: Path) -> np.ndarray:
        """Write every live chunk, by row id, as one text file plus offsets; returns the row
        ids written."""
        with self._lock:
            items = [(int(r), int(s), int(e)) for r, s, e, a in zip(
                self._base_ids, self._base_starts, self._base_ends, self._base_alive) if a]
            extra = sorted(zip(self._rowids, self._texts))
            base = self._base
        rowids = np.asarray([r for r, _, _ in items] + [r for r, _ in extra], dtype=np.int64)
        order = np.argsort(rowids, kind="stable")
        pieces = [(lambda s=s, e=e: base[s:e]) for _, s, e in items] + \
                 [(lambda t=t: t) for _, t in extra]
        starts = np.zeros(rowids.size, np.int64)
        ends = np.zeros(rowids.size, np.int64)
        directory.mkdir(parents=True, exist_ok=True)
        with open(directory / "text.bin", "wb") as out:
            pos = 0
            for n, i in enumerate(order.tolist()):
                if n:
                    out.write(_SEP)
                    pos += len(_SEP)
                data = pieces[i]()
                out.write(data)
                starts[n], ends[n] = pos, pos + len(data)
                pos += len(data)
        np.save(directory / "rowids.npy", rowids[order])
        np.save(directory / "offsets.npy", np.stack([starts, ends]))
        return rowids[order]

    @classmethod
    def load(cls, directory: Path) -> GrepShard:
        """Memory-map a saved shard: its text is read from the page cache as scans need it."""
        import mmap

        shard = cls()
        rowids = np.load(directory / "rowids.npy")
        offsets = np.load(directory / "offsets.npy")
        if rowids.ndim != 1 or offsets.shape != (2, rowids.size):
            raise ValueError(f"inconsistent grep index in {directory}")
        if rowids.size:
            shard._file = open(directory / "text.bin", "rb")  # noqa: SIM115 - lives with the map
            shard._base = mmap.mmap(shard._file.fileno(), 0, access=mmap.ACCESS_READ)
            if len(shard._base) < int(offsets[1].max()):
                raise ValueError(f"truncated grep index in {directory}")
        shard._base_ids = rowids.astype(np.int64)
        shard._base_starts, shard._base_ends = offsets[0], offsets[1]
        shard._base_alive = np.ones(rowids.size, dtype=bool)
        return shard


def _join(texts: Sequence[bytes]) -> tuple[bytes, np.ndarray, np.ndarray]:
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    starts = np.zeros(len(lengths), dtype=np.int64)
    if len(lengths) > 1:
        starts[1:] = np.cumsum(lengths[:-1] + len(_SEP))
    return _SEP.join(texts), starts, starts + lengths


def _rank(compiled: Any, buffer: bytes, starts: np.ndarray, ends: np.ndarray, ids: np.ndarray,
          k: int, max_matches: int, alive: np.ndarray | None = None) -> Hits:
    """Scan the buffer once; score chunks by distinct alternatives matched, then count."""
    if not ids.size:
        return Hits.empty()
    begin: list[int] = []
    finish: list[int] = []
    group: list[int] = []
    several = compiled.groups > 1  # lastindex costs a call per match: only when needed
    for m in compiled.finditer(buffer):
        begin.append(m.start())
        finish.append(m.end())
        group.append(m.lastindex or 0 if several else 0)
        if len(begin) >= max_matches:
            break
    if not begin:
        return Hits.empty()
    b = np.asarray(begin, dtype=np.int64)
    doc = np.searchsorted(starts, b, side="right") - 1
    inside = np.asarray(finish, dtype=np.int64) <= ends[doc]
    doc, grp = doc[inside], np.asarray(group, dtype=np.int64)[inside]
    if not doc.size:
        return Hits.empty()
    counts = np.bincount(doc, minlength=ids.size).astype(np.float64)
    distinct = np.zeros(ids.size, dtype=np.float64)
    pairs = np.unique(np.stack([doc, grp]), axis=1)
    np.add.at(distinct, pairs[0], 1.0)
    scores = distinct + counts / (counts + 1.0)  # distinct patterns dominate, then count
    if alive is not None:
        scores[~alive] = 0.0
    top = topk_indices(scores, k)
    top = top[scores[top] > 0]
    return Hits(ids[top], scores[top].astype(np.float32))
