"""Grep over chunk text with RE2: linear time, so user patterns cannot hang the server.

A namespace's texts are joined into one bytes buffer and scanned once per query; match
offsets map back to chunks with a binary search. Matches that would straddle two chunks
are dropped. Chunks rank by matches (distinct patterns first, then count); ties go to the
earlier chunk, since the first mention of an identifier is usually where it is defined.
In a session's history (an `Origin` gives the conversation order) that rule leads: the
chunk that introduces a name the query uses (its first mention: the tool result that
returned an id, the listing that showed a path) outranks every chunk that only repeats it,
rarer names first. A history query's reference is usually to where the name came from.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InvalidQuery
from .select import Hits, topk_indices

MAX_MATCHES = 100_000  # a pattern matching more than this is not a useful search
_SEP = b"\n\x00\n"


@dataclass(frozen=True)
class Origin:
    """Where each pattern first appears, for ranking a history's chunks: `position` maps row
    ids to conversation positions (message indexes); `rows` is the namespace's size (for the
    patterns' idf). `groups`: the patterns whose every match was scanned (None: all), since
    a first mention among a prefiltered subset is not the first mention."""

    position: Callable[[np.ndarray], np.ndarray]
    rows: int
    groups: frozenset[int] | None = None


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

    def search_in(self, compiled: Any, rowids: np.ndarray, k: int,
                  origin: Origin | None = None) -> Hits:
        """Like `search`, but scanning only the given chunks (candidates from an index)."""
        rows, texts = [], []
        with self._lock:
            for r in rowids.tolist():
                text = self._text_of(r)
                if text is not None:
                    rows.append(r)
                    texts.append(text)
        buffer, starts, ends = _join(texts)
        matches = _scan(compiled, buffer, starts, ends, np.asarray(rows, np.int64), MAX_MATCHES)
        return _rank(*matches, k, compiled.groups, origin)

    def _snapshot(self) -> tuple[bytes, np.ndarray, np.ndarray, np.ndarray]:
        with self._lock:
            if self._joined is None:
                buffer, starts, ends = _join(self._texts)
                self._joined = (buffer, starts, ends, np.asarray(self._rowids, dtype=np.int64))
            return self._joined

    def search(self, compiled: Any, k: int, max_matches: int = MAX_MATCHES,
               origin: Origin | None = None) -> Hits:
        """Top-k chunks by matches; each segment's scan stops after `max_matches`."""
        with self._lock:
            base = (self._base, self._base_starts, self._base_ends, self._base_ids,
                    self._base_alive)
        parts = [_scan(compiled, *base[:4], max_matches, alive=base[4])] \
            if base[3].size else []
        if self._rowids:
            parts.append(_scan(compiled, *self._snapshot(), max_matches))
        if not parts:
            return Hits.empty()
        rows, groups = (np.concatenate(x) for x in zip(*parts))
        return _rank(rows, groups, k, compiled.groups, origin)

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


def _scan(compiled: Any, buffer: bytes, starts: np.ndarray, ends: np.ndarray, ids: np.ndarray,
          max_matches: int, alive: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Scan the buffer once: (row id, pattern group) of each match inside one live chunk."""
    none = (np.empty(0, np.int64), np.empty(0, np.int64))
    if not ids.size:
        return none
    begin: list[int] = []
    finish: list[int] = []
    group: list[int] = []
    several = compiled.groups > 1  # lastindex costs a call per match: only when needed
    for m in compiled.finditer(buffer):
        begin.append(m.start())
        finish.append(m.end())
        group.append(m.lastindex or 0 if several else 1)  # literal i is group i + 1
        if len(begin) >= max_matches:
            break
    if not begin:
        return none
    doc = np.searchsorted(starts, np.asarray(begin, dtype=np.int64), side="right") - 1
    inside = np.asarray(finish, dtype=np.int64) <= ends[doc]
    if alive is not None:
        inside &= alive[doc]
    return ids[doc[inside]], np.asarray(group, dtype=np.int64)[inside]


def _rank(rows: np.ndarray, groups: np.ndarray, k: int, n_groups: int,
          origin: Origin | None = None) -> Hits:
    """Score chunks by distinct patterns matched, then count (in (0, 1)); with an origin,
    add each pattern's weight (_introduced) where the chunk introduces it, which outweighs
    any count. Ties go to the lower row id (the earlier chunk)."""
    if not rows.size:
        return Hits.empty()
    ids, doc = np.unique(rows, return_inverse=True)
    counts = np.bincount(doc, minlength=ids.size).astype(np.float64)
    pairs = np.unique(np.stack([doc, groups]), axis=1)  # (chunk, pattern), each once
    distinct = np.bincount(pairs[0], minlength=ids.size).astype(np.float64)
    scores = distinct + counts / (counts + 1.0)
    if origin is not None:
        scores += _introduced(ids, pairs, origin, max(n_groups, 1))
    top = topk_indices(scores, k)
    return Hits(ids[top], scores[top].astype(np.float32))


def _introduced(ids: np.ndarray, pairs: np.ndarray, origin: Origin, n_groups: int) -> np.ndarray:
    """Per chunk, for each pattern whose first mention (lowest conversation position, then
    row id) it holds: the pattern's idf, log(1 + rows / df), in units of the lowest possible
    idf (log 2, a pattern in every chunk) times n_groups + 1, so introducing even the
    commonest pattern outweighs matching all of them (distinct + count < n_groups + 1), and
    introducing a rare id outweighs introducing a key that every record repeats."""
    doc, grp = pairs
    if origin.groups is not None:
        keep = np.isin(grp, np.fromiter(origin.groups, np.int64, len(origin.groups)))
        doc, grp = doc[keep], grp[keep]
    out = np.zeros(ids.size, dtype=np.float64)
    if not doc.size:
        return out
    order = np.lexsort((ids[doc], origin.position(ids)[doc], grp))  # by pattern, then age
    grp_sorted = grp[order]
    first = np.ones(order.size, dtype=bool)
    first[1:] = grp_sorted[1:] != grp_sorted[:-1]
    df = np.bincount(grp, minlength=int(grp.max()) + 1)[grp_sorted[first]]
    weight = (n_groups + 1) * np.log1p(origin.rows / df) / np.log(2.0)
    np.add.at(out, doc[order][first], weight)
    return out
