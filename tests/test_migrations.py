"""The stores' one connect-and-migrate helper (core/db.py), and old files of each store."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from switchyard.core.db import SQLITE, NewerSchemaError, Schema, SQLite
from switchyard.core.trafficlog import schema as traffic
from switchyard.retrieval import Chunk, chunk_id
from switchyard.retrieval import store as chunks
from switchyard.retrieval.store import ChunkStore
from switchyard.server import auth
from switchyard.server.auth import KeyStore
from switchyard.server.http.responses import store as responses
from switchyard.server.http.responses.store import ResponseStore, StoredResponse


def _names(path: Path) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return [r[0] for r in db.execute("SELECT name FROM _switchyard_migrations ORDER BY rowid")]
    finally:
        db.close()


def _columns(path: Path, table: str) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return [r[1] for r in db.execute(f"PRAGMA table_info({table})")]
    finally:
        db.close()


# -- the helper ------------------------------------------------------------------------------
def _schema(calls: list[str]) -> Schema:
    schema = Schema("the test store", key="test")

    @schema.migration
    def m001_initial(db: sqlite3.Connection) -> None:
        calls.append("m001")
        db.execute("CREATE TABLE IF NOT EXISTS t (a TEXT)")

    @schema.migration
    def m002_add_b(db: sqlite3.Connection) -> None:
        calls.append("m002")
        db.execute("ALTER TABLE t ADD COLUMN b INTEGER")

    return schema


def test_migrations_run_once_in_order(tmp_path: Path) -> None:
    calls: list[str] = []
    schema = _schema(calls)
    schema.open(tmp_path / "s.sqlite").close()
    schema.open(tmp_path / "s.sqlite").close()
    assert calls == ["m001", "m002"]
    assert _names(tmp_path / "s.sqlite") == ["m001_initial", "m002_add_b"]
    assert _columns(tmp_path / "s.sqlite", "t") == ["a", "b"]


def test_a_failing_migration_leaves_nothing_recorded(tmp_path: Path) -> None:
    schema = Schema("the test store", key="test")

    @schema.migration
    def m001_broken(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE t (a TEXT)")
        raise RuntimeError("half done")

    with pytest.raises(RuntimeError, match="half done"):
        schema.open(tmp_path / "s.sqlite")
    assert _names(tmp_path / "s.sqlite") == []
    assert _columns(tmp_path / "s.sqlite", "t") == []  # the DDL rolled back too


def test_a_newer_file_is_refused_with_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    _schema([]).open(path).execute("INSERT INTO _switchyard_migrations VALUES ('m003_x', 0)")
    with pytest.raises(NewerSchemaError, match=r"the test store .*\(m003_x\); upgrade"):
        _schema([]).open(path)


def test_a_transactional_connection_migrates_too(tmp_path: Path) -> None:
    calls: list[str] = []
    db = SQLITE.connect(tmp_path / "s.sqlite", autocommit=False, timeout=1)
    _schema(calls).migrate(db)
    assert calls == ["m001", "m002"] and not db.in_transaction
    db.close()
    assert _names(tmp_path / "s.sqlite") == ["m001_initial", "m002_add_b"]


def test_a_database_shared_by_stores_keeps_each_stores_names_apart(tmp_path: Path) -> None:
    """PostgreSQL holds every store in one database (Engine.shared): names go under each
    schema's key, and a schema refuses only unknown names under its own key."""
    class Shared(SQLite):
        shared = True

    engine, path = Shared(), tmp_path / "shared.sqlite"
    calls: list[str] = []
    other = Schema("the other store", key="other")

    @other.migration
    def m001_initial(db: sqlite3.Connection) -> None:
        calls.append("other")

    db = engine.connect(path)
    _schema(calls).migrate(db, engine)
    other.migrate(db, engine)
    _schema(calls).migrate(db, engine)  # the other store's name is not refused
    assert calls == ["m001", "m002", "other"]
    assert sorted(r[0] for r in db.execute("SELECT name FROM _switchyard_migrations")) == [
        "other.m001_initial", "test.m001_initial", "test.m002_add_b"]
    db.execute("INSERT INTO _switchyard_migrations VALUES ('test.m003_x', 0)")
    other.migrate(db, engine)
    with pytest.raises(NewerSchemaError, match=r"\(test.m003_x\); .* another database"):
        _schema(calls).migrate(db, engine)
    db.close()


# -- every store: blank files, files from before the helper, newer files ---------------------
STORES: dict[str, tuple[Schema, Callable[[Path], object]]] = {
    "traffic": (traffic.SCHEMA, traffic.connect),
    "keys": (auth.SCHEMA, KeyStore),
    "responses": (responses.SCHEMA, ResponseStore),
    "chunks": (chunks.SCHEMA, ChunkStore),
}


@pytest.mark.parametrize("store", STORES)
def test_every_store_opens_through_the_helper(store: str, tmp_path: Path) -> None:
    schema, open_store = STORES[store]
    path = tmp_path / f"{store}.sqlite"
    opened = open_store(path)
    opened.close()  # type: ignore[attr-defined]
    assert _names(path) == [fn.__name__ for fn in schema.migrations]
    db = sqlite3.connect(path)
    db.execute("INSERT INTO _switchyard_migrations VALUES ('m999_new', 0)")
    db.commit()
    db.close()
    with pytest.raises(NewerSchemaError, match="m999_new"):
        open_store(path)


def test_a_key_store_from_before_migrations_keeps_its_keys(tmp_path: Path) -> None:
    path = tmp_path / "keys.sqlite"
    store = KeyStore(path)
    info, secret = store.create("ci")
    store.close()
    db = sqlite3.connect(path)  # as the store left files before it had migrations
    db.execute("DROP TABLE _switchyard_migrations")
    db.commit()
    db.close()
    store = KeyStore(path)
    assert store.verify(secret) == info.key_id
    assert [k.name for k in store.list()] == ["ci"]
    store.close()
    assert _names(path) == ["m001_initial"]
    assert _columns(path, "api_keys") == ["key_id", "name", "key_sha256", "last4", "created_at",
                                          "revoked_at"]


def test_a_response_store_with_user_version_opens(tmp_path: Path) -> None:
    path = tmp_path / "responses.sqlite"
    db = sqlite3.connect(path)  # the old scheme: the table plus PRAGMA user_version=1
    db.execute("""CREATE TABLE responses (id TEXT PRIMARY KEY, previous_response_id TEXT,
                  created_at REAL NOT NULL, model TEXT NOT NULL, status TEXT NOT NULL,
                  input_items_json TEXT NOT NULL, output_items_json TEXT NOT NULL,
                  response_json TEXT NOT NULL)""")
    db.execute("INSERT INTO responses VALUES ('resp_1', NULL, 1.0, 'm', 'completed', "
               "'[{\"type\": \"message\"}]', '[]', '{\"id\": \"resp_1\"}')")
    db.execute("PRAGMA user_version=1")
    db.commit()
    db.close()
    store = ResponseStore(path)
    got = store.get("resp_1")
    assert got is not None and got.input_items == [{"type": "message"}]
    store.put(StoredResponse("resp_2", "m", "completed", [], [], {"id": "resp_2"}, "resp_1"))
    assert store.count() == 2
    store.close()
    assert _names(path) == ["m001_initial"]


def test_a_chunk_store_with_its_own_migrations_table_opens(tmp_path: Path) -> None:
    path = tmp_path / "chunks.sqlite"
    db = sqlite3.connect(path)  # the old scheme: chunks migrations in _retrieval_migrations
    db.execute("CREATE TABLE _retrieval_migrations (name TEXT PRIMARY KEY, applied_at REAL)")
    chunks.m001_initial(db)
    db.execute("INSERT INTO _retrieval_migrations VALUES ('m001_initial', 0)")
    db.execute("INSERT INTO chunks (id, namespace, text, created_at, content_hash) "
               "VALUES ('c1', 'ns', 'old text', 0, ?)", (chunks.content_hash("old text"),))
    db.commit()
    db.close()
    store = ChunkStore(path)
    ids, _ = store.add([Chunk(chunk_id("ns", "new text"), "ns", "new text")])
    assert len(ids) == 1 and {t for _, t in store.texts("ns")} == {"old text", "new text"}
    assert [c.text for c in store.get(["c1"])] == ["old text"]
    store.close()
    assert _names(path) == ["m001_initial", "m002_one_migrations_table"]
    tables = {r[0] for r in sqlite3.connect(path).execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "_retrieval_migrations" not in tables
