"""The chunk store on PostgreSQL: `retrieval.ChunkStore`'s methods over the shared `chunks`
table, so every replica's `Index` reads and writes one store (its BM25 and FAISS files are
a cache of it).

Writers of a namespace first bump its row in `chunk_namespaces`, which row-locks it until
commit: the writers of one namespace take turns, so its row ids become visible in
ascending order, and a replica that has read a namespace up to row id N catches up by
reading the rows above N (`rows_after`). A delete also bumps `deletes`, which tells a
replica to rebuild that namespace from the store instead.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from switchyard.retrieval.chunk import Chunk
from switchyard.retrieval.errors import ChunkTooLarge, InvalidQuery
from switchyard.retrieval.persist import RowKeys, content_keys
from switchyard.retrieval.store import MAX_CHUNK_CHARS, content_hash
from switchyard.server.stores.postgres import Database

_COLUMNS = "rowid, id, namespace, text, role, message_index, source, start_line, tokens, created_at"
_BUMP = ("INSERT INTO chunk_namespaces AS n (namespace, version, deletes) VALUES (%s, 1, %s) "
         "ON CONFLICT (namespace) DO UPDATE SET version = n.version + 1, "
         "deletes = n.deletes + excluded.deletes")


def _chunk(row: tuple[Any, ...]) -> tuple[int, Chunk]:
    rowid, cid, ns, text, role, mi, source, start_line, tokens, created = row
    return int(rowid), Chunk(id=cid, namespace=ns, text=text, role=role, message_index=mi,
                             source=source, start_line=start_line, tokens=tokens,
                             created_at=created)


class PgChunkStore:
    shared = True  # other processes write it too: Index polls `stamp` before it trusts a cache

    def __init__(self, database: Database, max_chunk_chars: int = MAX_CHUNK_CHARS) -> None:
        self.database = database
        self.max_chunk_chars = max_chunk_chars

    def close(self) -> None:
        """The database is the pipeline's; it closes it."""

    # -- writes ---------------------------------------------------------------------------
    def add(self, chunks: Sequence[Chunk]) -> tuple[list[str], list[tuple[int, Chunk]]]:
        """Store chunks; returns (the stored id for each input, the rows actually inserted)."""
        for c in chunks:
            if len(c.text) > self.max_chunk_chars:
                raise ChunkTooLarge(
                    f"chunk {c.id} has {len(c.text)} characters, over the limit of "
                    f"{self.max_chunk_chars}: split it before storing", param="chunks")
            if not c.namespace:
                raise InvalidQuery(f"chunk {c.id} has an empty namespace", param="namespace")
        hashes = [content_hash(c.text) for c in chunks]
        stored: dict[tuple[str, str], str] = {}  # (namespace, hash) -> id kept
        inserted: list[tuple[int, Chunk]] = []
        with self.database.connection() as conn, conn.transaction(), conn.cursor() as cur:
            for ns in sorted({c.namespace for c in chunks}):  # one lock order: no deadlock
                cur.execute(_BUMP, (ns, 0))
                wanted = [h for c, h in zip(chunks, hashes) if c.namespace == ns]
                cur.execute("SELECT content_hash, id FROM chunks WHERE namespace = %s "
                            "AND content_hash = ANY(%s)", (ns, wanted))
                stored.update(((ns, h), cid) for h, cid in cur.fetchall())
            cur.execute("SELECT id FROM chunks WHERE id = ANY(%s)", ([c.id for c in chunks],))
            taken = {r[0] for r in cur.fetchall()}
            new: list[tuple[Chunk, str]] = []
            for c, h in zip(chunks, hashes):
                if (c.namespace, h) in stored or c.id in taken:
                    continue
                stored[(c.namespace, h)] = c.id
                taken.add(c.id)
                new.append((c, h))
            if new:
                cur.executemany(
                    "INSERT INTO chunks (id, namespace, text, role, message_index, source, "
                    "start_line, tokens, created_at, content_hash) VALUES "
                    "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING rowid",
                    [(c.id, c.namespace, c.text, c.role, c.message_index, c.source,
                      c.start_line, c.tokens, c.created_at, h) for c, h in new],
                    returning=True)
                rowids = []
                while True:
                    rowids.append(int(cur.fetchone()[0]))  # type: ignore[index]
                    if not cur.nextset():
                        break
                inserted = list(zip(rowids, (c for c, _ in new)))
        ids = [stored.get((c.namespace, h), c.id) for c, h in zip(chunks, hashes)]
        return ids, inserted

    def delete(self, ids: Sequence[str]) -> list[tuple[int, str]]:
        """Delete by chunk id; returns the (rowid, namespace) of each deleted row."""
        with self.database.connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT DISTINCT namespace FROM chunks WHERE id = ANY(%s)", (list(ids),))
            for (ns,) in sorted(cur.fetchall()):
                cur.execute(_BUMP, (ns, 1))
            cur.execute("DELETE FROM chunks WHERE id = ANY(%s) RETURNING rowid, namespace",
                        (list(ids),))
            return [(int(r), ns) for r, ns in cur.fetchall()]

    # -- reads ----------------------------------------------------------------------------
    def get(self, ids: Sequence[str]) -> list[Chunk]:
        rows = self.database.rows(f"SELECT {_COLUMNS} FROM chunks WHERE id = ANY(%s)",
                                  (list(ids),))
        found = {chunk.id: chunk for _, chunk in map(_chunk, rows)}
        return [found[i] for i in ids if i in found]

    def get_rows(self, rowids: Sequence[int]) -> dict[int, Chunk]:
        rows = self.database.rows(f"SELECT {_COLUMNS} FROM chunks WHERE rowid = ANY(%s)",
                                  ([int(r) for r in rowids],))
        return dict(map(_chunk, rows))

    def iter_texts(self, namespace: str) -> Iterator[tuple[int, str]]:
        yield from self.texts(namespace)

    def texts(self, namespace: str, rowids: Sequence[int] | None = None) -> list[tuple[int, str]]:
        if rowids is None:
            return self._pairs("SELECT rowid, text FROM chunks WHERE namespace = %s "
                               "ORDER BY rowid", (namespace,))
        return self._pairs("SELECT rowid, text FROM chunks WHERE namespace = %s AND "
                           "rowid = ANY(%s) ORDER BY rowid", (namespace, [int(r) for r in rowids]))

    def rows_after(self, namespace: str, rowid: int) -> list[tuple[int, Chunk]]:
        """A namespace's chunks above `rowid`, ascending: what a replica has not seen."""
        rows = self.database.rows(f"SELECT {_COLUMNS} FROM chunks WHERE namespace = %s "
                                  "AND rowid > %s ORDER BY rowid", (namespace, rowid))
        return list(map(_chunk, rows))

    def stamp(self, namespace: str) -> tuple[int, int]:
        """(version, deletes) of a namespace: any write changes the first, a delete both."""
        rows = self.database.rows("SELECT version, deletes FROM chunk_namespaces "
                                  "WHERE namespace = %s", (namespace,))
        return (int(rows[0][0]), int(rows[0][1])) if rows else (0, 0)

    def row_keys(self, namespace: str) -> RowKeys:
        rows = self.database.rows("SELECT rowid, substr(content_hash, 1, 16) FROM chunks "
                                  "WHERE namespace = %s ORDER BY rowid", (namespace,))
        if not rows:
            return RowKeys.empty()
        rowids = np.fromiter((r for r, _ in rows), dtype=np.int64, count=len(rows))
        return RowKeys(rowids, content_keys([h for _, h in rows]))

    def namespaces(self) -> list[str]:
        return [r[0] for r in self.database.rows(
            "SELECT namespace FROM chunk_namespaces n WHERE EXISTS "
            "(SELECT 1 FROM chunks c WHERE c.namespace = n.namespace) ORDER BY 1")]

    def has_chunks(self, namespace: str) -> bool:
        return bool(self.database.rows("SELECT 1 FROM chunks WHERE namespace = %s LIMIT 1",
                                       (namespace,)))

    def is_history(self, namespace: str) -> bool:
        rows = self.database.rows("SELECT message_index IS NOT NULL FROM chunks "
                                  "WHERE namespace = %s LIMIT 1", (namespace,))
        return bool(rows and rows[0][0])

    def positions(self, namespace: str) -> dict[int, int]:
        return dict(self.database.rows(
            "SELECT rowid, message_index FROM chunks WHERE namespace = %s "
            "AND message_index IS NOT NULL", (namespace,)))  # type: ignore[arg-type]

    def count(self, namespace: str) -> int:
        return int(self.database.rows("SELECT count(*) FROM chunks WHERE namespace = %s",
                                      (namespace,))[0][0])

    def _pairs(self, sql: str, params: tuple[Any, ...]) -> list[tuple[int, str]]:
        return [(int(r), t) for r, t in self.database.rows(sql, params)]
