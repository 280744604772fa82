import asyncio
import json
import sqlite3
from pathlib import Path

import pytest
from switchyard.core.db import NewerSchemaError
from switchyard.core.trafficlog.schema import (
    COLUMNS,
    SCHEMA,
    Attempt,
    TrafficRecord,
    connect,
    iter_records,
)
from switchyard.server.traffic.export import export_parquet
from switchyard.server.traffic.writer import TrafficLog


def test_migrating_a_blank_db_gives_the_expected_columns(tmp_path: Path) -> None:
    db = connect(tmp_path / "t.sqlite")
    cols = [r[1] for r in db.execute("PRAGMA table_info(requests)")]
    assert tuple(cols) == COLUMNS
    assert COLUMNS[-9:] == ("request_json", "propensity", "explored", "shadow_of",
                            "p_escalate", "escalated", "draft_cost_usd", "cascade_json",
                            "request_bytes")
    outcome_cols = [r[1] for r in db.execute("PRAGMA table_info(outcomes)")]
    assert outcome_cols == ["request_id", "source", "label", "score", "weight", "created_at"]
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    migrated = [r[0] for r in db.execute("SELECT name FROM _switchyard_migrations")]
    assert migrated == ["m001_initial", "m002_outcomes", "m003_cascade", "m004_request_bytes"]


def test_m003_adds_the_cascade_columns_to_a_log_with_rows(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite"
    old = sqlite3.connect(path, isolation_level=None)
    old.execute("CREATE TABLE _switchyard_migrations (name TEXT PRIMARY KEY, applied_at REAL)")
    for fn in SCHEMA.migrations[:2]:  # the log as m002 left it, with one row
        fn(old)
        old.execute("INSERT INTO _switchyard_migrations VALUES (?, 0)", (fn.__name__,))
    row = TrafficRecord("r1", "s1", "test").as_row()
    m002 = [c for c in COLUMNS if c not in ("p_escalate", "escalated", "draft_cost_usd",
                                            "cascade_json", "request_bytes")]
    old.execute(f"INSERT INTO requests ({', '.join(m002)}) VALUES "
                f"({', '.join('?' * len(m002))})", [row[c] for c in m002])
    old.close()
    [record] = list(iter_records(connect(path)))
    assert (record.request_id, record.p_escalate, record.escalated, record.draft_cost_usd,
            record.cascade_json, record.request_bytes) == ("r1", None, False, 0.0, None, None)


def test_reopening_is_idempotent_and_keeps_rows(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite"
    log = TrafficLog(path)
    log.write_sync(TrafficRecord("r1", "s1", "test", prompt_tokens=5))
    log.close()
    db = connect(path)
    rows = list(iter_records(db))
    assert [(r.request_id, r.prompt_tokens, r.thinking) for r in rows] == [("r1", 5, False)]


def test_stage_timings_and_attempts_are_typed_and_stored_as_json(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite"
    log = TrafficLog(path)
    tries = [Attempt("a", "thinking", "UpstreamTimeout", 30.00049, None),
             Attempt("b", "thinking", "ok", 12.5, 200, budget_tokens=2048)]
    log.write_sync(TrafficRecord("r1", "s1", "test", stage_ms={"route": 1.23456},
                                 attempt_log=tries))
    log.close()
    raw = sqlite3.connect(path).execute("SELECT stage_ms_json, attempts_json FROM requests")
    stages, attempts = raw.fetchone()
    assert json.loads(stages) == {"route": 1.235}
    assert json.loads(attempts) == [
        {"deployment": "a", "group": "thinking", "outcome": "UpstreamTimeout", "latency_ms": 30.0,
         "status": None, "stage": "answer", "budget_tokens": None},
        {"deployment": "b", "group": "thinking", "outcome": "ok", "latency_ms": 12.5, "status": 200,
         "stage": "answer", "budget_tokens": 2048}]
    (row,) = iter_records(connect(path))
    assert row.stage_ms == {"route": 1.235}
    assert row.attempt_log == [Attempt("a", "thinking", "UpstreamTimeout", 30.0, None), tries[1]]


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite"
    connect(path).execute("INSERT INTO _switchyard_migrations VALUES ('m999_future', 0)")
    with pytest.raises(NewerSchemaError, match="m999_future"):
        connect(path)


async def test_concurrent_writes_are_group_committed(tmp_path: Path) -> None:
    log = TrafficLog(tmp_path / "t.sqlite")
    await asyncio.gather(*(log.write(TrafficRecord(f"r{i}", "s", "test")) for i in range(200)))
    count = sqlite3.connect(tmp_path / "t.sqlite").execute("SELECT count(*) FROM requests")
    assert count.fetchone()[0] == 200
    log.close()


def test_parquet_export(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    log = TrafficLog(tmp_path / "t.sqlite")
    for i in range(3):
        log.write_sync(TrafficRecord(f"r{i}", "s", "test", cost_usd=0.5 * i))
    log.close()
    assert export_parquet(tmp_path / "t.sqlite", tmp_path / "out.parquet") == 3
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.column_names == list(COLUMNS)
    assert table.column("cost_usd").to_pylist() == [0.0, 0.5, 1.0]
