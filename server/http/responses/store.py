"""Stored responses for `previous_response_id`: one SQLite file under the data dir.

Each row holds one response's own turn: the input items the caller sent and the output items
the model produced, plus the id of the response it continued. A follow-up's conversation is
the chain of turns walked back from its `previous_response_id`, so storage grows with the
conversation, not with its square. `instructions` are deliberately not stored: as in OpenAI's
API, a follow-up's instructions replace the earlier ones.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from switchyard.core.db import Schema
from switchyard.server.errors import NotFound

SCHEMA = Schema("the response store", key="responses")


@SCHEMA.migration
def m001_initial(db: sqlite3.Connection) -> None:
    # Files from before migrations carry PRAGMA user_version=1 and this same table.
    db.execute("""
        CREATE TABLE IF NOT EXISTS responses (
            id TEXT PRIMARY KEY,
            previous_response_id TEXT,
            created_at REAL NOT NULL,
            model TEXT NOT NULL,
            status TEXT NOT NULL,
            input_items_json TEXT NOT NULL,
            output_items_json TEXT NOT NULL,
            response_json TEXT NOT NULL
        )""")


_UPSERT = """
INSERT INTO responses VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET previous_response_id = excluded.previous_response_id,
    created_at = excluded.created_at, model = excluded.model, status = excluded.status,
    input_items_json = excluded.input_items_json, output_items_json = excluded.output_items_json,
    response_json = excluded.response_json
"""
MAX_CHAIN = 10_000  # a guard against a cycle written by hand into the file


@dataclass(frozen=True, slots=True)
class StoredResponse:
    id: str
    model: str
    status: str
    input_items: list[dict[str, Any]]
    output_items: list[dict[str, Any]]
    response: dict[str, Any]
    previous_response_id: str | None = None
    created_at: float = field(default_factory=time.time)


class ResponseStore:
    """Thread-safe: handlers call it through `asyncio.to_thread`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = SCHEMA.open(path)
        self._lock = threading.Lock()

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> ResponseStore:
        return cls(data_dir / "responses.sqlite")

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def _change(self, sql: str, params: tuple[Any, ...]) -> None:
        """Run one write (PgResponseStore runs the same SQL on PostgreSQL)."""
        with self._lock:
            self._db.execute(sql, params)

    def put(self, stored: StoredResponse) -> None:
        row = (stored.id, stored.previous_response_id, stored.created_at, stored.model,
               stored.status, json.dumps(stored.input_items), json.dumps(stored.output_items),
               json.dumps(stored.response))
        self._change(_UPSERT, row)

    def get(self, response_id: str) -> StoredResponse | None:
        rows = self._rows(
            "SELECT id, model, status, input_items_json, output_items_json, response_json, "
            "previous_response_id, created_at FROM responses WHERE id = ?", (response_id,))
        if not rows:
            return None
        row = rows[0]
        return StoredResponse(row[0], row[1], row[2], json.loads(row[3]), json.loads(row[4]),
                              json.loads(row[5]), row[6], row[7])

    def conversation(self, response_id: str) -> list[dict[str, Any]]:
        """Every item up to and including `response_id`'s output, oldest first.

        Raises NotFound (param previous_response_id) when the id, or one it continued, is
        not stored here.
        """
        turns: list[StoredResponse] = []
        current: str | None = response_id
        while current is not None and len(turns) < MAX_CHAIN:
            stored = self.get(current)
            if stored is None:
                raise NotFound(_missing_message(response_id, current),
                               param="previous_response_id", code="previous_response_not_found")
            turns.append(stored)
            current = stored.previous_response_id
        items: list[dict[str, Any]] = []
        for turn in reversed(turns):
            items.extend(turn.input_items)
            items.extend(turn.output_items)
        return items

    def count(self) -> int:
        return int(self._rows("SELECT count(*) FROM responses")[0][0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _missing_message(asked: str, missing: str) -> str:
    if asked == missing:
        return (f"Previous response with id {asked!r} not found. Responses are stored only "
                "when the request had store: true (the default), on this Switchyard's data dir; "
                "send the full conversation in `input` instead.")
    return (f"Previous response with id {asked!r} continues {missing!r}, which is not stored "
            "here; send the full conversation in `input` instead.")
