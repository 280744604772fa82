"""The traffic log, API keys and the Responses store on PostgreSQL.

Each is its SQLite class with the engine swapped: the same SQL through `Database.rows` /
`Database.change`, the same group-committing writer thread for the log (one transaction per
batch; `synchronous_commit` stays on, so a row is on disk before its waiter is released and
the response sent, as with SQLite).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from switchyard.core.trafficlog.outcomes import Outcome, UnknownRequest
from switchyard.core.trafficlog.schema import COLUMNS, TrafficRecord
from switchyard.server.auth import KeyStore
from switchyard.server.http.responses.store import ResponseStore
from switchyard.server.stores.postgres import Database
from switchyard.server.traffic.writer import TrafficLog

# One statement per batch: the rows travel as one JSON array that PostgreSQL expands into
# records of the table's own types (per-row INSERTs made the server the bottleneck).
_INSERT = (f"INSERT INTO requests ({', '.join(COLUMNS)}) "
           f"SELECT {', '.join(COLUMNS)} FROM jsonb_populate_recordset(NULL::requests, %s) "
           f"ON CONFLICT (request_id) DO UPDATE SET "
           + ", ".join(f"{c} = excluded.{c}" for c in COLUMNS if c != "request_id"))
# xmax = 0 only on a freshly inserted row: tells "new" from "replaced" in one statement.
_UPSERT_OUTCOME = """
INSERT INTO outcomes (request_id, source, label, score, weight, created_at)
SELECT %s, %s, %s, %s, %s, %s WHERE EXISTS (SELECT 1 FROM requests WHERE request_id = %s)
ON CONFLICT (request_id, source) DO UPDATE SET
    label = excluded.label, score = excluded.score, weight = excluded.weight,
    created_at = excluded.created_at
RETURNING (xmax = 0)
"""


class PgTrafficLog(TrafficLog):
    def __init__(self, database: Database) -> None:
        self.database = database
        self._start()

    def _commit(self, records: Sequence[TrafficRecord]) -> None:
        from psycopg.types.json import Jsonb

        latest = {r.request_id: _json_row(r) for r in records}  # a batch may repeat an id
        with self.database.connection() as conn:
            conn.execute(_INSERT, (Jsonb(list(latest.values())),))

    def record_outcome(self, outcome: Outcome) -> bool:
        rows = self.database.rows(_UPSERT_OUTCOME, (
            outcome.request_id, outcome.source, outcome.label, outcome.score, outcome.weight,
            outcome.created_at, outcome.request_id))
        if not rows:
            raise UnknownRequest(outcome.request_id)
        return bool(rows[0][0])

    def reader(self) -> Any:
        raise NotImplementedError("read a PostgreSQL log with `switchyard log export` or SQL")

    def _release(self) -> None:
        """The database is the pipeline's; it closes it."""


def _json_row(record: TrafficRecord) -> dict[str, Any]:
    """The record as JSON can carry it into the table: a NaN or infinite float becomes NULL,
    a bool 0 or 1 (the columns are the SQLite log's INTEGERs)."""
    return {k: _json_value(v) for k, v in record.as_row().items()}


def _json_value(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class PgKeyStore(KeyStore):
    def __init__(self, database: Database, *, owned: bool = False) -> None:
        """`owned`: close the database with the store (the CLI's); else it is the
        pipeline's, which closes it."""
        self.database = database
        self._owned = owned

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self.database.rows(sql, params)

    def _change(self, sql: str, params: tuple[Any, ...]) -> int:
        return self.database.change(sql, params)

    def close(self) -> None:
        if self._owned:
            self.database.close()


class PgResponseStore(ResponseStore):
    def __init__(self, database: Database) -> None:
        self.database = database

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self.database.rows(sql, params)

    def _change(self, sql: str, params: tuple[Any, ...]) -> None:
        self.database.change(sql, params)

    def close(self) -> None:
        """The database is the pipeline's; it closes it."""
