"""One way to open a store: connect, tune, migrate. Every database file Switchyard keeps (the
traffic log, API keys, stored responses, chunks) opens through here.

Migrations follow simonw/llm: each store declares a `Schema` and registers functions on it,
in order, with `@schema.migration` (`m001_initial`, `m002_...`). The `_switchyard_migrations
(name, applied_at)` table records what has run; opening a file runs the rest, each in its
own transaction. A recorded name this version does not know means a newer Switchyard wrote
the file: it is refused (`NewerSchemaError`), never misread. Never edit, rename or reorder a
migration that has shipped; add one. A store's first migration copes with tables that
already exist, so files written before the store had migrations open the same way.
One store per file: two schemas in one file would each refuse the other's names.

SQLite is the only engine today. The bookkeeping uses DB-API calls only and takes its
parameter marker and its write-locking BEGIN from the engine, so another engine (PostgreSQL,
issue #18) plugs in as an `Engine` that opens its own connections.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

MIGRATIONS_TABLE = "_switchyard_migrations"
Migration = Callable[[Any], None]


class NewerSchemaError(RuntimeError):
    """The file was written by a newer Switchyard: refuse rather than misread it."""


class Engine(Protocol):
    param: str  # the driver's parameter marker
    begin: str  # starts a transaction that holds the write lock from its first statement

    def connect(self, target: str | Path, *, autocommit: bool = True,
                timeout: float = 5.0) -> Any: ...


class SQLite:
    param = "?"
    begin = "BEGIN IMMEDIATE"

    def connect(self, target: str | Path, *, autocommit: bool = True,
                timeout: float = 5.0) -> sqlite3.Connection:
        """WAL, so readers never block the writer. `autocommit=False` keeps sqlite3's own
        transactions (`with db:` commits a batch); `timeout` is how long a writer waits."""
        path = Path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(path), check_same_thread=False, timeout=timeout,
                             isolation_level=None if autocommit else "DEFERRED")
        db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit survives a killed process (not a power cut) without fsync.
        db.execute("PRAGMA synchronous=NORMAL")
        return db


SQLITE = SQLite()


class Schema:
    """A store's migrations, in order; `store` names it in errors ("the traffic log")."""

    def __init__(self, store: str) -> None:
        self.store = store
        self.migrations: list[Migration] = []

    def migration(self, fn: Migration) -> Migration:
        self.migrations.append(fn)
        return fn

    def open(self, target: str | Path, *, engine: Engine = SQLITE, **options: Any) -> Any:
        """Connect and migrate: new and old files take the same path."""
        db = engine.connect(target, **options)
        self.migrate(db, engine)
        return db

    def migrate(self, db: Any, engine: Engine = SQLITE) -> None:
        db.execute(f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} "
                   "(name TEXT PRIMARY KEY, applied_at REAL)")
        db.commit()
        applied = _applied(db)
        unknown = sorted(applied - {fn.__name__ for fn in self.migrations})
        if unknown:
            raise NewerSchemaError(
                f"{self.store} has migrations this version of Switchyard does not know "
                f"({', '.join(unknown)}); upgrade Switchyard or point it at another file")
        for fn in self.migrations:
            if fn.__name__ not in applied:
                _run(db, fn, engine)


def _applied(db: Any) -> set[str]:
    return {row[0] for row in db.execute(f"SELECT name FROM {MIGRATIONS_TABLE}")}


def _run(db: Any, fn: Migration, engine: Engine) -> None:
    # The write lock comes first, so two processes opening one new file cannot both run a
    # migration: the second waits, then finds it recorded.
    db.execute(engine.begin)
    try:
        if fn.__name__ not in _applied(db):
            fn(db)
            db.execute(f"INSERT INTO {MIGRATIONS_TABLE} VALUES ({engine.param}, {engine.param})",
                       (fn.__name__, time.time()))
    except BaseException:
        db.rollback()
        raise
    db.commit()
