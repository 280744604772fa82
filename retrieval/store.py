"""The chunk store: one SQLite file (WAL) holding every chunk of every namespace.

Row ids (INTEGER PRIMARY KEY AUTOINCREMENT, never reused) are the ids the BM25 and FAISS
indexes use; chunk ids (content-derived strings) are what callers see. Within a namespace a
text is stored once: adding the same content again returns the stored chunk's id.
Migrations run through the stores' one helper (core/db.py).
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from switchyard.core.db import SQLITE, Schema

from .chunk import Chunk
from .errors import ChunkTooLarge, InvalidQuery
from .persist import RowKeys, content_keys

MAX_CHUNK_CHARS = 100_000  # about 25k tokens: bigger than any sensible chunk

SCHEMA = Schema("the chunk store", key="chunks")


@SCHEMA.migration
def m001_initial(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE IF NOT EXISTS chunks (
            rowid INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            namespace TEXT NOT NULL,
            text TEXT NOT NULL,
            role TEXT,
            message_index INTEGER,
            source TEXT NOT NULL DEFAULT '',
            start_line INTEGER NOT NULL DEFAULT 1,
            tokens INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            content_hash TEXT NOT NULL
        )"""
    )
    db.execute(
        "CREATE UNIQUE INDEX IF NOT EXISTS chunks_ns_hash ON chunks(namespace, content_hash)"
    )


@SCHEMA.migration
def m002_one_migrations_table(db: sqlite3.Connection) -> None:
    """Migrations were recorded in a table of the store's own; core/db.py keeps one for all."""
    db.execute("DROP TABLE IF EXISTS _retrieval_migrations")


class SharedStore(Protocol):
    """What a chunk store that other processes also write offers on top of ChunkStore's
    methods (server/stores/pg_chunks.py), so an Index can catch up with their writes."""

    def stamp(self, namespace: str) -> tuple[int, int]:
        """(version, deletes): any write changes the first, a delete both."""
        ...

    def rows_after(self, namespace: str, rowid: int) -> list[tuple[int, Chunk]]:
        """A namespace's chunks above `rowid`, ascending."""
        ...


def content_hash(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


_COLUMNS = "rowid, id, namespace, text, role, message_index, source, start_line, tokens, created_at"


def _row_to_chunk(row: tuple) -> tuple[int, Chunk]:
    rowid, cid, ns, text, role, mi, source, start_line, tokens, created = row
    return rowid, Chunk(
        id=cid, namespace=ns, text=text, role=role, message_index=mi, source=source,
        start_line=start_line, tokens=tokens, created_at=created,
    )


class ChunkStore:
    """SQLite chunk store. One connection per thread; writes are serialised by a lock."""

    shared = False  # one process owns it: an Index trusts its in-memory indexes

    def __init__(self, path: Path, max_chunk_chars: int = MAX_CHUNK_CHARS) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_chunk_chars = max_chunk_chars
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        SCHEMA.migrate(self._db())

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = SQLITE.connect(self.path, autocommit=False, timeout=30)
            self._local.db = db
            with self._all_lock:
                self._all.append(db)
        return db

    def close(self) -> None:
        with self._all_lock:
            for db in self._all:
                db.close()
            self._all.clear()
        self._local = threading.local()

    def add(self, chunks: Sequence[Chunk]) -> tuple[list[str], list[tuple[int, Chunk]]]:
        """Store chunks; returns (the stored id for each input, the rows actually inserted)."""
        for c in chunks:
            if len(c.text) > self.max_chunk_chars:
                raise ChunkTooLarge(
                    f"chunk {c.id} has {len(c.text)} characters, over the limit of "
                    f"{self.max_chunk_chars}: split it before storing", param="chunks",
                )
            if not c.namespace:
                raise InvalidQuery(f"chunk {c.id} has an empty namespace", param="namespace")
        ids: list[str] = []
        inserted: list[tuple[int, Chunk]] = []
        db = self._db()
        with self._write_lock, db:
            for c in chunks:
                h = content_hash(c.text)
                row = db.execute(
                    "SELECT id FROM chunks WHERE namespace = ? AND content_hash = ?",
                    (c.namespace, h),
                ).fetchone() or db.execute("SELECT id FROM chunks WHERE id = ?", (c.id,)).fetchone()
                if row is not None:
                    ids.append(row[0])
                    continue
                cur = db.execute(
                    "INSERT INTO chunks (id, namespace, text, role, message_index, source, "
                    "start_line, tokens, created_at, content_hash) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (c.id, c.namespace, c.text, c.role, c.message_index, c.source,
                     c.start_line, c.tokens, c.created_at, h),
                )
                ids.append(c.id)
                inserted.append((int(cur.lastrowid or 0), c))
        return ids, inserted

    def delete(self, ids: Sequence[str]) -> list[tuple[int, str]]:
        """Delete by chunk id; returns the (rowid, namespace) of each deleted row."""
        db = self._db()
        gone: list[tuple[int, str]] = []
        with self._write_lock, db:
            for cid in ids:
                row = db.execute(
                    "SELECT rowid, namespace FROM chunks WHERE id = ?", (cid,)
                ).fetchone()
                if row is not None:
                    db.execute("DELETE FROM chunks WHERE rowid = ?", (row[0],))
                    gone.append((int(row[0]), row[1]))
        return gone

    def get(self, ids: Sequence[str]) -> list[Chunk]:
        """Chunks by id, in the order asked; unknown ids are skipped."""
        found: dict[str, Chunk] = {}
        for batch in _batches(list(ids)):
            marks = ",".join("?" * len(batch))
            for row in self._db().execute(
                f"SELECT {_COLUMNS} FROM chunks WHERE id IN ({marks})", batch
            ):
                _, chunk = _row_to_chunk(row)
                found[chunk.id] = chunk
        return [found[i] for i in ids if i in found]

    def get_rows(self, rowids: Sequence[int]) -> dict[int, Chunk]:
        out: dict[int, Chunk] = {}
        for batch in _batches([int(r) for r in rowids]):
            marks = ",".join("?" * len(batch))
            for row in self._db().execute(
                f"SELECT {_COLUMNS} FROM chunks WHERE rowid IN ({marks})", batch
            ):
                rowid, chunk = _row_to_chunk(row)
                out[rowid] = chunk
        return out

    def iter_texts(self, namespace: str) -> Iterator[tuple[int, str]]:
        """(rowid, text) of a namespace's chunks in insertion order."""
        cur = self._db().execute(
            "SELECT rowid, text FROM chunks WHERE namespace = ? ORDER BY rowid", (namespace,)
        )
        yield from cur

    def row_keys(self, namespace: str) -> RowKeys:
        """(row ids, content keys) of a namespace, ascending: what saved indexes are checked
        against. Served from the (namespace, content_hash) index, which holds the row id."""
        rows = self._db().execute(
            "SELECT rowid, substr(content_hash, 1, 16) FROM chunks WHERE namespace = ?",
            (namespace,)).fetchall()
        if not rows:
            return RowKeys.empty()
        rowids = np.fromiter((r for r, _ in rows), dtype=np.int64, count=len(rows))
        keys = content_keys([h for _, h in rows])
        order = np.argsort(rowids, kind="stable")
        return RowKeys(rowids[order], keys[order])

    def texts(self, namespace: str, rowids: Sequence[int] | None = None) -> list[tuple[int, str]]:
        """(rowid, text) of a namespace's chunks (or of the given rows), by rowid."""
        if rowids is None:
            return list(self.iter_texts(namespace))
        out: list[tuple[int, str]] = []
        for batch in _batches([int(r) for r in rowids]):
            marks = ",".join("?" * len(batch))
            out.extend(self._db().execute(
                f"SELECT rowid, text FROM chunks WHERE namespace = ? AND rowid IN ({marks})",
                [namespace, *batch]))
        out.sort()
        return out

    def namespaces(self) -> list[str]:
        return [r[0] for r in self._db().execute("SELECT DISTINCT namespace FROM chunks ORDER BY 1")]

    def has_chunks(self, namespace: str) -> bool:
        row = self._db().execute(
            "SELECT 1 FROM chunks WHERE namespace = ? LIMIT 1", (namespace,)
        ).fetchone()
        return row is not None

    def is_history(self, namespace: str) -> bool:
        """Whether the namespace holds a session's messages (chunks with a message index)
        rather than a corpus of files or documents. One row answers, through the namespace
        index (a session's chunks all carry message indexes, a corpus's none); asking for
        any such row would scan a whole corpus (~250 ms at 100k chunks)."""
        row = self._db().execute(
            "SELECT message_index IS NOT NULL FROM chunks WHERE namespace = ? LIMIT 1",
            (namespace,)).fetchone()
        return bool(row and row[0])

    def positions(self, namespace: str) -> dict[int, int]:
        """Row id -> message index of a session's chunks: their order in the conversation
        (row ids are not: a message kept by one compaction may be dropped by a later one)."""
        return dict(self._db().execute(
            "SELECT rowid, message_index FROM chunks WHERE namespace = ? "
            "AND message_index IS NOT NULL", (namespace,)))

    def count(self, namespace: str) -> int:
        row = self._db().execute(
            "SELECT count(*) FROM chunks WHERE namespace = ?", (namespace,)
        ).fetchone()
        return int(row[0])


def _batches(items: list, size: int = 500) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
