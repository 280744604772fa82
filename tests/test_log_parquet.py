"""`switchyard log export --out`: the traffic log (SQLite or PostgreSQL) as Parquet datasets
partitioned by day, read back by replay and retraining through DuckDB."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from switchyard.core.trafficlog.outcomes import Outcome, record_outcome
from switchyard.core.trafficlog.schema import TrafficRecord, connect
from switchyard.router.log_training import examples_from_traffic
from switchyard.router.replay_data import load_log, load_parquet, load_traffic
from switchyard.server.cli.main import app
from switchyard.server.traffic.export import export_dataset
from switchyard.server.traffic.writer import TrafficLog
from typer.testing import CliRunner

DAY = 86_400.0
T0 = 1_796_083_200.0  # 2026-12-01 00:00 UTC


def _records() -> tuple[list[TrafficRecord], list[Outcome]]:
    records, outcomes = [], []
    for i in range(6):
        body = json.dumps({"model": "switchyard/auto",
                           "messages": [{"role": "user", "content": f"question {i}"}]})
        rid = f"r{i}"
        when = T0 + (i // 2) * DAY + 3600  # two requests a day, three days
        records.append(TrafficRecord(rid, f"s{i}", "test", created_at=when, request_json=body))
        records.append(TrafficRecord(f"{rid}-shadow", f"s{i}", "test", created_at=when + 1,
                                     thinking=True, request_json=body, shadow_of=rid))
        outcomes += [Outcome(rid, "verifier", score=float(i % 2 == 0), created_at=when + 2),
                     Outcome(f"{rid}-shadow", "verifier", score=1.0, created_at=when + 2)]
    return records, outcomes


def _sqlite_log(path: Path) -> Path:
    records, outcomes = _records()
    log = TrafficLog(path)
    for r in records:
        log.write_sync(r)
    log.close()
    db = connect(path)
    for o in outcomes:
        record_outcome(db, o)
    db.close()
    return path


def _same(a, b) -> None:  # type: ignore[no-untyped-def]
    assert a.request_ids == b.request_ids
    assert a.bodies == b.bodies
    assert np.array_equal(a.logged, b.logged)
    assert np.allclose(a.quality, b.quality, equal_nan=True)


def test_export_partitions_by_day_and_replay_reads_it_back(tmp_path: Path) -> None:
    log = _sqlite_log(tmp_path / "t.sqlite")
    result = CliRunner().invoke(app, ["log", "export", "--out", str(tmp_path / "pq"),
                                      "--log", str(log)])
    assert result.exit_code == 0, result.output
    assert "12 requests and 12 outcomes" in result.output
    days = sorted(p.name for p in (tmp_path / "pq" / "requests").iterdir())
    assert days == ["day=2026-12-01", "day=2026-12-02", "day=2026-12-03"]
    from_parquet = load_parquet(tmp_path / "pq")
    _same(from_parquet, load_log(log))
    assert len(examples_from_traffic(load_traffic(tmp_path / "pq"))[0]) == 6  # paired rows


def test_export_refuses_a_directory_in_use(tmp_path: Path) -> None:
    from switchyard.server.errors import InvalidRequest

    log = _sqlite_log(tmp_path / "t.sqlite")
    (tmp_path / "pq").mkdir()
    (tmp_path / "pq" / "other.txt").write_text("keep me")
    with pytest.raises(InvalidRequest, match="not empty"):
        export_dataset(log, tmp_path / "pq")


def test_export_from_postgres_matches_the_sqlite_export(tmp_path: Path, pg_url: str) -> None:
    from switchyard.server.stores.pg_stores import PgTrafficLog
    from switchyard.server.stores.postgres import Database

    records, outcomes = _records()
    database = Database(pg_url)
    log = PgTrafficLog(database)
    for r in records:
        log.write_sync(r)
    for o in outcomes:
        log.record_outcome(o)
    log.close()
    database.close()
    counts = export_dataset(tmp_path / "unused.sqlite", tmp_path / "pg", pg_url)
    assert counts == {"requests": 12, "outcomes": 12}
    _same(load_parquet(tmp_path / "pg"), load_log(_sqlite_log(tmp_path / "t.sqlite")))
