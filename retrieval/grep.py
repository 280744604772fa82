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
    """The texts of one namespace, scanned as one buffer. Thread-safe."""

    def __init__(self) -> None:
        self._rowids: list[int] = []
        self._texts: list[bytes] = []
        self._lock = threading.Lock()
        self._buffer: bytes | None = None
        self._positions: dict[int, int] | None = None
        self._starts = np.empty(0, dtype=np.int64)
        self._ends = np.empty(0, dtype=np.int64)
        self._ids = np.empty(0, dtype=np.int64)

    def __len__(self) -> int:
        return len(self._rowids)

    def rowids(self) -> np.ndarray:
        with self._lock:
            return np.asarray(self._rowids, dtype=np.int64)

    def add(self, rows: Sequence[tuple[int, str]]) -> None:
        with self._lock:
            for rowid, text in rows:
                self._rowids.append(int(rowid))
                self._texts.append(text.encode())
            self._buffer = None
            self._positions = None

    def delete(self, rowids: Sequence[int]) -> None:
        gone = {int(r) for r in rowids}
        with self._lock:
            keep = [i for i, r in enumerate(self._rowids) if r not in gone]
            if len(keep) != len(self._rowids):
                self._rowids = [self._rowids[i] for i in keep]
                self._texts = [self._texts[i] for i in keep]
                self._buffer = None
                self._positions = None

    def search_in(self, compiled: Any, rowids: np.ndarray, k: int) -> Hits:
        """Like `search`, but scanning only the given chunks (candidates from an index)."""
        with self._lock:
            if self._positions is None:
                self._positions = {r: i for i, r in enumerate(self._rowids)}
            pos = self._positions
            rows = [r for r in rowids.tolist() if r in pos]
            texts = [self._texts[pos[r]] for r in rows]
        buffer, starts, ends = _join(texts)
        return _rank(compiled, buffer, starts, ends, np.asarray(rows, np.int64), k, MAX_MATCHES)

    def _snapshot(self) -> tuple[bytes, np.ndarray, np.ndarray, np.ndarray]:
        with self._lock:
            if self._buffer is None:
                self._buffer, self._starts, self._ends = _join(self._texts)
                self._ids = np.asarray(self._rowids, dtype=np.int64)
            return self._buffer, self._starts, self._ends, self._ids

    def search(self, compiled: Any, k: int, max_matches: int = MAX_MATCHES) -> Hits:
        """Top-k chunks by matches; the scan stops after `max_matches` (latency bound)."""
        buffer, starts, ends, ids = self._snapshot()
        return _rank(compiled, buffer, starts, ends, ids, k, max_matches)


def _join(texts: Sequence[bytes]) -> tuple[bytes, np.ndarray, np.ndarray]:
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    starts = np.zeros(len(lengths), dtype=np.int64)
    if len(lengths) > 1:
        starts[1:] = np.cumsum(lengths[:-1] + len(_SEP))
    return _SEP.join(texts), starts, starts + lengths


def _rank(compiled: Any, buffer: bytes, starts: np.ndarray, ends: np.ndarray, ids: np.ndarray,
          k: int, max_matches: int) -> Hits:
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
    top = topk_indices(scores, k)
    top = top[scores[top] > 0]
    return Hits(ids[top], scores[top].astype(np.float32))
