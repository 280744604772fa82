"""One way to open a store: connect, tune, migrate. Every database file Switchyard keeps (the
traffic log, API keys, stored responses, chunks) opens through here.

Migrations follow simonw/llm: each store declares a `Schema` and registers functions on it,
in order, with `@schema.migration` (`m001_initial`, `m002_...`). The `_switchyard_migrations
(name, applied_at)` table records what has run; opening a file runs the rest, each in its
own transaction. A recorded name this version does not know means a newer Switchyard wrote
the file: it is refused (`NewerSchemaError`), never misread. Never edit, rename or reorder a
migration that has shipped; add one. A store's first migration copes with tables that
already exist, so files written before the store had migrations open the same way.
One store per SQLite file: two schemas in one file would each refuse the other's names.

Two engines run the same migrations: SQLite, and PostgreSQL (server/stores/postgres.py),
whose connection takes their SQLite SQL as written (`?` markers, type names). The bookkeeping
uses DB-API calls only and takes its parameter marker and its write-locking BEGIN from the
engine. A PostgreSQL database holds every store at once (`Engine.shared`), so there each
name is recorded under its schema's key (`log.m001_initial`) and a schema refuses only the
unknown names under its own key. A migration that adds columns to a table that may have them
already calls `add_columns()`, which both engines answer.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

MIGRATIONS_TABLE = "_switchyard_migrations"
Migration = Callable[[Any], None]


class NewerSchemaError(RuntimeError):
    """The file was written by a newer Switchyard: refuse rather than misread it."""


class Engine(Protocol):
    param: str  # the driver's parameter marker
    begin: str  # starts a transaction that holds the write lock from its first statement
    shared: bool  # one database holds every store: names are recorded under a schema's key

    def connect(self, target: str | Path, *, autocommit: bool = True,
                timeout: float = 5.0) -> Any: ...


class SQLite:
    param = "?"
    begin = "BEGIN IMMEDIATE"
    shared = False

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
    """A store's migrations, in order; `store` names it in errors ("the traffic log"), `key`
    prefixes its names in a database that holds every store."""

    def __init__(self, store: str, *, key: str) -> None:
        self.store = store
        self.key = key
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
        # Under the write lock too: PostgreSQL refuses two sessions creating one table at once.
        with _transaction(db, engine):
            db.execute(f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} "
                       "(name TEXT PRIMARY KEY, applied_at REAL)")
        applied = self._applied(db, engine)
        unknown = sorted(applied - {self._name(fn, engine) for fn in self.migrations})
        if unknown:
            raise NewerSchemaError(
                f"{self.store} has migrations this version of Switchyard does not know "
                f"({', '.join(unknown)}); upgrade Switchyard or point it at another "
                f"{'database' if engine.shared else 'file'}")
        for fn in self.migrations:
            # The write lock comes first, so two processes opening one new file cannot both
            # run a migration: the second waits, then finds it recorded.
            name = self._name(fn, engine)
            if name in applied:
                continue
            with _transaction(db, engine):
                if name not in self._applied(db, engine):
                    fn(db)
                    db.execute(f"INSERT INTO {MIGRATIONS_TABLE} "
                               f"VALUES ({engine.param}, {engine.param})", (name, time.time()))

    def _name(self, fn: Migration, engine: Engine) -> str:
        return f"{self.key}.{fn.__name__}" if engine.shared else fn.__name__

    def _applied(self, db: Any, engine: Engine) -> set[str]:
        names = {row[0] for row in db.execute(f"SELECT name FROM {MIGRATIONS_TABLE}")}
        return {n for n in names if n.startswith(f"{self.key}.")} if engine.shared else names


@contextmanager
def _transaction(db: Any, engine: Engine) -> Iterator[None]:
    db.execute(engine.begin)
    try:
        yield
    except BaseException:
        db.rollback()
        raise
    db.commit()


def columns(db: Any, table: str) -> list[str]:
    """A table's column names, in order, on either engine (from the cursor's description,
    so an empty table answers too)."""
    return [d[0] for d in db.execute(f"SELECT * FROM {table} LIMIT 0").description]


def add_columns(db: Any, table: str, ddl: dict[str, str]) -> None:
    """ALTER TABLE ADD COLUMN, in order, for each column of `ddl` the table lacks."""
    existing = columns(db, table)
    for column, definition in ddl.items():
        if column not in existing:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
