"""PostgreSQL as the shared store of N replicas: one pool, one schema, one migration list.

`Database(url)` opens a psycopg 3 pool and migrates the schema on open, like the SQLite
stores do. The migrations carry the SQLite stores' names where they make the same change
(`m001_initial` and `m002_outcomes` are the traffic log's), are recorded in
`_switchyard_migrations`, and a database holding a migration this version does not know was
written by a newer Switchyard: it is refused, as a newer SQLite log is.

Stores written against SQLite take `?` placeholders; `Database.rows` and `Database.change`
take the same SQL and turn them into psycopg's `%s`, so a query is written once.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from switchyard.core.trafficlog.schema import NewerSchemaError
from switchyard.server.errors import ConfigError

if TYPE_CHECKING:
    import psycopg

Migration = Callable[["psycopg.Connection[Any]"], None]
MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    MIGRATIONS.append(fn)
    return fn


@migration
def m001_initial(conn: psycopg.Connection[Any]) -> None:
    """The traffic log's requests table (router/traffic.py m001), PostgreSQL types."""
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS requests (
            request_id TEXT PRIMARY KEY,
            session_id TEXT NOT NULL,
            endpoint TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            finished_at DOUBLE PRECISION NOT NULL,
            api_key_id TEXT,
            requested_model TEXT NOT NULL,
            model TEXT NOT NULL,
            upstream_model TEXT NOT NULL,
            thinking BOOLEAN NOT NULL,
            reasoning_effort TEXT,
            budget_tokens INTEGER,
            p_hard DOUBLE PRECISION,
            policy_version TEXT NOT NULL,
            route_reason TEXT NOT NULL,
            overridden BOOLEAN NOT NULL,
            stream BOOLEAN NOT NULL,
            status TEXT NOT NULL,
            http_status INTEGER NOT NULL,
            error_type TEXT,
            prompt_tokens INTEGER NOT NULL,
            completion_tokens INTEGER NOT NULL,
            reasoning_tokens INTEGER NOT NULL,
            cached_tokens INTEGER NOT NULL,
            cost_usd DOUBLE PRECISION NOT NULL,
            latency_ms DOUBLE PRECISION NOT NULL,
            tokens_before INTEGER NOT NULL,
            tokens_after INTEGER NOT NULL,
            dropped_chunks INTEGER NOT NULL,
            recalled_chunks INTEGER NOT NULL,
            attempts INTEGER NOT NULL,
            fallback BOOLEAN NOT NULL,
            stage_ms_json TEXT NOT NULL,
            attempts_json TEXT NOT NULL,
            request_json TEXT
        )
        """
    )
    conn.execute("CREATE INDEX IF NOT EXISTS requests_session ON requests (session_id)")
    conn.execute("CREATE INDEX IF NOT EXISTS requests_created ON requests (created_at)")


@migration
def m002_outcomes(conn: psycopg.Connection[Any]) -> None:
    """The traffic log's m002: replay columns and the outcomes table."""
    for column, ddl in (("propensity", "DOUBLE PRECISION"),
                        ("explored", "BOOLEAN NOT NULL DEFAULT FALSE"), ("shadow_of", "TEXT")):
        conn.execute(f"ALTER TABLE requests ADD COLUMN IF NOT EXISTS {column} {ddl}")
    conn.execute("CREATE INDEX IF NOT EXISTS requests_shadow_of ON requests (shadow_of)")
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS outcomes (
            request_id TEXT NOT NULL,
            source TEXT NOT NULL CHECK (source IN ('verifier', 'user', 'judge')),
            label TEXT,
            score DOUBLE PRECISION,
            weight DOUBLE PRECISION NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (request_id, source)
        )
        """
    )


@migration
def m003_api_keys(conn: psycopg.Connection[Any]) -> None:
    """server/auth.py's keys table."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS api_keys (key_id TEXT PRIMARY KEY, name TEXT NOT NULL, "
        "key_sha256 TEXT NOT NULL, last4 TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL, "
        "revoked_at DOUBLE PRECISION)")


@migration
def m004_responses(conn: psycopg.Connection[Any]) -> None:
    """server/responses_store.py's table (its SQLite schema version 1)."""
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS responses (
            id TEXT PRIMARY KEY,
            previous_response_id TEXT,
            created_at DOUBLE PRECISION NOT NULL,
            model TEXT NOT NULL,
            status TEXT NOT NULL,
            input_items_json TEXT NOT NULL,
            output_items_json TEXT NOT NULL,
            response_json TEXT NOT NULL
        )
        """
    )


@migration
def m005_chunks(conn: psycopg.Connection[Any]) -> None:
    """retrieval/store.py's chunk table, plus one row per namespace whose `version` every
    add or delete bumps in the same transaction: what replicas poll to catch up."""
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS chunks (
            rowid BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            namespace TEXT NOT NULL,
            text TEXT NOT NULL,
            role TEXT,
            message_index INTEGER,
            source TEXT NOT NULL DEFAULT '',
            start_line INTEGER NOT NULL DEFAULT 1,
            tokens INTEGER NOT NULL DEFAULT 0,
            created_at DOUBLE PRECISION NOT NULL,
            content_hash TEXT NOT NULL
        )
        """
    )
    conn.execute("CREATE UNIQUE INDEX IF NOT EXISTS chunks_ns_hash "
                 "ON chunks (namespace, content_hash) INCLUDE (rowid)")
    conn.execute("CREATE INDEX IF NOT EXISTS chunks_ns_rowid ON chunks (namespace, rowid)")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS chunk_namespaces (namespace TEXT PRIMARY KEY, "
        "version BIGINT NOT NULL DEFAULT 0, deletes BIGINT NOT NULL DEFAULT 0)")


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
                migrate(conn)
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
            return conn.execute(_pg(sql), params).fetchall()

    def change(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""
        with self.pool.connection() as conn:
            return conn.execute(_pg(sql), params).rowcount

    def close(self) -> None:
        self.pool.close()


def migrate(conn: psycopg.Connection[Any]) -> None:
    """Run the migrations this database lacks, in one transaction, under an advisory lock so
    replicas starting together migrate once (PostgreSQL's DDL is transactional)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(7410315)")  # any constant, ours alone
        conn.execute("CREATE TABLE IF NOT EXISTS _switchyard_migrations "
                     "(name TEXT PRIMARY KEY, applied_at DOUBLE PRECISION)")
        applied = {r[0] for r in conn.execute("SELECT name FROM _switchyard_migrations")}
        unknown = sorted(applied - {fn.__name__ for fn in MIGRATIONS})
        if unknown:
            raise NewerSchemaError(
                f"the database has migrations this version does not know ({', '.join(unknown)})"
                "; upgrade Switchyard or point --database-url at another database")
        for fn in MIGRATIONS:
            if fn.__name__ not in applied:
                fn(conn)
                conn.execute("INSERT INTO _switchyard_migrations VALUES (%s, %s)",
                             (fn.__name__, time.time()))


def redacted(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def _pg(sql: str) -> str:
    """SQLite's `?` placeholders as psycopg's `%s` (our SQL holds no other `?` or `%`)."""
    return sql.replace("?", "%s")
