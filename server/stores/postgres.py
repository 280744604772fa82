"""PostgreSQL as the shared store of N replicas: one pool, one database, the stores' own
schemas.

`Database(url)` migrates on open, like the SQLite stores do, and through the same path
(core/db.py): the traffic log's, keys', responses' and chunk store's `Schema`s, then
`REPLICAS` below, which adds what only a shared chunk store needs. Their migrations are
written once, for SQLite; `PgConnection` takes that SQL as written (`?` markers, SQLite's
type names in DDL). Booleans are stored as 0/1 integers, as in SQLite. A database holding a
migration this version does not know was written by a newer Switchyard: it is refused, as a
newer SQLite file is.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from switchyard.core.db import Schema
from switchyard.core.trafficlog.schema import SCHEMA as LOG
from switchyard.retrieval.store import SCHEMA as CHUNKS
from switchyard.server.auth import SCHEMA as KEYS
from switchyard.server.errors import ConfigError
from switchyard.server.http.responses.store import SCHEMA as RESPONSES

if TYPE_CHECKING:
    import psycopg

# SQLite's type names as PostgreSQL's: REAL is a 4-byte float there, and row ids are an
# identity column rather than SQLite's implicit rowid.
_TYPES = ((re.compile(r"\bINTEGER PRIMARY KEY AUTOINCREMENT\b"),
           "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"),
          (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"))
_DDL = re.compile(r"\s*(CREATE|ALTER)\b", re.IGNORECASE)
_LOCK = 7410315  # the advisory lock migrations take: any constant, ours alone


def to_postgres(sql: str) -> str:
    """The stores' SQLite SQL as PostgreSQL takes it: `?` markers as psycopg's `%s` (our SQL
    holds no other `?` or `%`), and in DDL, SQLite's type names as PostgreSQL's."""
    sql = sql.replace("?", "%s")
    if _DDL.match(sql):
        for pattern, name in _TYPES:
            sql = pattern.sub(name, sql)
    return sql


class PgConnection:
    """A psycopg connection (autocommit: a transaction is an explicit BEGIN) that runs the
    stores' SQLite SQL: what core/db.py's migrations are handed."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> psycopg.Cursor[Any]:
        # No params: the simple protocol, which runs `begin`'s two statements in one call.
        return self.conn.execute(to_postgres(sql), params)  # type: ignore[arg-type]

    def commit(self) -> None:
        self.conn.commit()

    def rollback(self) -> None:
        self.conn.rollback()

    def close(self) -> None:
        self.conn.close()


class PostgreSQL:
    """core/db.py's `Engine` for PostgreSQL."""

    param = "?"  # PgConnection turns it into psycopg's marker
    # One lock, ours alone, so replicas starting together migrate once.
    begin = f"BEGIN; SELECT pg_advisory_xact_lock({_LOCK})"
    shared = True

    def connect(self, target: str | Path, *, autocommit: bool = True,
                timeout: float = 5.0) -> PgConnection:
        """`target` is the database URL."""
        import psycopg

        target = str(target)
        try:  # libpq takes whole seconds, at least 2
            return PgConnection(psycopg.connect(target, autocommit=autocommit,
                                                connect_timeout=max(2, round(timeout))))
        except psycopg.OperationalError as e:
            reason = str(e).strip().splitlines()[0]
            raise ConfigError(f"cannot connect to PostgreSQL at {redacted(target)}: {reason}; "
                              "check server.database_url") from None


POSTGRESQL = PostgreSQL()

REPLICAS = Schema("the shared chunk store", key="replicas")


@REPLICAS.migration
def m001_namespace_versions(db: PgConnection) -> None:
    """One row per namespace whose `version` every add or delete bumps in the same
    transaction: what replicas poll to catch up (server/stores/pg_chunks.py). The indexes
    serve its reads: rows above a row id, and row keys without visiting the table."""
    db.execute("CREATE TABLE IF NOT EXISTS chunk_namespaces (namespace TEXT PRIMARY KEY, "
               "version BIGINT NOT NULL DEFAULT 0, deletes BIGINT NOT NULL DEFAULT 0)")
    db.execute("CREATE INDEX IF NOT EXISTS chunks_ns_rowid ON chunks (namespace, rowid)")
    db.execute("DROP INDEX IF EXISTS chunks_ns_hash")
    db.execute("CREATE UNIQUE INDEX chunks_ns_hash ON chunks (namespace, content_hash) "
               "INCLUDE (rowid)")


# In order: REPLICAS changes the chunk store's table.
SCHEMAS = (LOG, KEYS, RESPONSES, CHUNKS, REPLICAS)


class Database:
    """A psycopg 3 connection pool over a migrated database. Thread-safe."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 16,
                 connect_timeout: float = 30.0) -> None:
        try:
            from psycopg_pool import ConnectionPool, PoolTimeout
        except ImportError:
            raise ImportError("PostgreSQL needs psycopg 3 and its pool: "
                              "pip install 'switchyard[scale]'") from None
        self.url = url
        self.pool = ConnectionPool(url, min_size=min_size, max_size=max_size, open=False,
                                   kwargs={"autocommit": True})
        try:
            self.pool.open(wait=True, timeout=connect_timeout)
            with self.pool.connection() as conn:
                for schema in SCHEMAS:
                    schema.migrate(PgConnection(conn), POSTGRESQL)
        except PoolTimeout:
            self.pool.close()
            raise ConfigError(f"cannot reach PostgreSQL at {redacted(url)} within "
                              f"{connect_timeout:g} s; check server.database_url") from None
        except BaseException:
            self.pool.close()
            raise

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        with self.pool.connection() as conn:
            yield conn

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.pool.connection() as conn:
            return conn.execute(to_postgres(sql), params).fetchall()

    def change(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""
        with self.pool.connection() as conn:
            return conn.execute(to_postgres(sql), params).rowcount

    def close(self) -> None:
        self.pool.close()


def redacted(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)

