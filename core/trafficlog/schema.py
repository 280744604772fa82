"""The traffic log's schema: one `TrafficRecord` per request, SQLite, versioned migrations.

The server writes it (server/traffic/writer.py); the router reads it for replay and retraining,
which is why the schema lives here. Migrations run through the stores' one helper (core/db.py).
Typed columns for what we query, JSON columns for the full request and the attempts.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from switchyard.core.db import Schema, add_columns

SCHEMA = Schema("the traffic log", key="log")


@dataclass(frozen=True, slots=True)
class Attempt:
    """One upstream try: which deployment, how it ended, how long it took."""

    deployment: str
    group: str
    outcome: str  # "ok" or the error class name
    latency_ms: float
    status: int | None = None
    stage: str = "answer"  # cascade mode: "draft", "second_sample" or "answer"
    budget_tokens: int | None = None  # the thinking budget sent, if the provider takes one


@dataclass(slots=True)
class TrafficRecord:
    request_id: str
    session_id: str
    endpoint: str  # "http.chat.completions", "grpc.Chat", ...
    created_at: float = field(default_factory=time.time)
    finished_at: float = 0.0
    api_key_id: str | None = None
    requested_model: str = ""
    model: str = ""  # the decision's model: group or pinned name
    upstream_model: str = ""  # the deployment that answered
    thinking: bool = False
    reasoning_effort: str | None = None
    budget_tokens: int | None = None
    p_hard: float | None = None
    policy_version: str = ""
    route_reason: str = ""
    overridden: bool = False
    stream: bool = False
    status: str = "ok"  # "ok" or "error"
    http_status: int = 200
    error_type: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    tokens_before: int = 0  # history tokens before compaction
    tokens_after: int = 0
    dropped_chunks: int = 0
    recalled_chunks: int = 0
    attempts: int = 0
    fallback: bool = False
    stage_ms: dict[str, float] = field(default_factory=dict)  # column stage_ms_json
    attempt_log: list[Attempt] = field(default_factory=list)  # column attempts_json
    request_json: str | None = None  # the caller's request body (for replay)
    # m002: counterfactual replay. `propensity` is P(the logged group | request) under the
    # logging policy (set while exploration is on); `explored` marks a randomised choice;
    # `shadow_of` is the primary request id of a shadow call to the other group.
    propensity: float | None = None
    explored: bool = False
    shadow_of: str | None = None
    # m003: cascade mode. The draft's score, whether it escalated, what the draft (and a
    # second sample) cost; `cascade_json` keeps the draft text and its failed checks.
    p_escalate: float | None = None
    escalated: bool = False
    draft_cost_usd: float = 0.0
    cascade_json: str | None = None
    # m004: a rejected request keeps only the first 64 KB of its body; this is its full size.
    request_bytes: int | None = None

    def as_row(self) -> dict[str, Any]:
        row = asdict(self)
        row["stage_ms_json"] = json.dumps({k: round(v, 3) for k, v in self.stage_ms.items()})
        row["attempts_json"] = json.dumps([
            {**asdict(a), "latency_ms": round(a.latency_ms, 3)} for a in self.attempt_log])
        del row["stage_ms"], row["attempt_log"]
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> TrafficRecord:
        values = dict(row)
        for key in ("thinking", "overridden", "stream", "fallback", "explored", "escalated"):
            values[key] = bool(values[key])
        values["stage_ms"] = json.loads(values.pop("stage_ms_json") or "{}")
        values["attempt_log"] = [Attempt(**a) for a in json.loads(values.pop("attempts_json")
                                                                  or "[]")]
        return cls(**values)


# The typed fields are stored as JSON text, in columns named for that.
_JSON_COLUMNS = {"stage_ms": "stage_ms_json", "attempt_log": "attempts_json"}
COLUMNS = tuple(_JSON_COLUMNS.get(f.name, f.name) for f in fields(TrafficRecord))


@SCHEMA.migration
def m001_initial(db: sqlite3.Connection) -> None:
    db.execute(
        """
        CREATE TABLE IF NOT EXISTS requests (
            request_id TEXT PRIMARY KEY,
            session_id TEXT NOT NULL,
            endpoint TEXT NOT NULL,
            created_at REAL NOT NULL,
            finished_at REAL NOT NULL,
            api_key_id TEXT,
            requested_model TEXT NOT NULL,
            model TEXT NOT NULL,
            upstream_model TEXT NOT NULL,
            thinking INTEGER NOT NULL,
            reasoning_effort TEXT,
            budget_tokens INTEGER,
            p_hard REAL,
            policy_version TEXT NOT NULL,
            route_reason TEXT NOT NULL,
            overridden INTEGER NOT NULL,
            stream INTEGER NOT NULL,
            status TEXT NOT NULL,
            http_status INTEGER NOT NULL,
            error_type TEXT,
            prompt_tokens INTEGER NOT NULL,
            completion_tokens INTEGER NOT NULL,
            reasoning_tokens INTEGER NOT NULL,
            cached_tokens INTEGER NOT NULL,
            cost_usd REAL NOT NULL,
            latency_ms REAL NOT NULL,
            tokens_before INTEGER NOT NULL,
            tokens_after INTEGER NOT NULL,
            dropped_chunks INTEGER NOT NULL,
            recalled_chunks INTEGER NOT NULL,
            attempts INTEGER NOT NULL,
            fallback INTEGER NOT NULL,
            stage_ms_json TEXT NOT NULL,
            attempts_json TEXT NOT NULL,
            request_json TEXT
        )
        """
    )
    db.execute("CREATE INDEX IF NOT EXISTS requests_session ON requests (session_id)")
    db.execute("CREATE INDEX IF NOT EXISTS requests_created ON requests (created_at)")


@SCHEMA.migration
def m002_outcomes(db: sqlite3.Connection) -> None:
    """Outcomes attached after the fact (core/trafficlog/outcomes.py) and the replay columns."""
    add_columns(db, "requests", {"propensity": "REAL", "explored": "INTEGER NOT NULL DEFAULT 0",
                                 "shadow_of": "TEXT"})
    db.execute("CREATE INDEX IF NOT EXISTS requests_shadow_of ON requests (shadow_of)")
    db.execute(
        """
        CREATE TABLE IF NOT EXISTS outcomes (
            request_id TEXT NOT NULL,
            source TEXT NOT NULL CHECK (source IN ('verifier', 'user', 'judge')),
            label TEXT,
            score REAL,
            weight REAL NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (request_id, source)
        )
        """
    )


@SCHEMA.migration
def m003_cascade(db: sqlite3.Connection) -> None:
    """Cascade mode: the draft's score and cost beside the answer's."""
    add_columns(db, "requests", {"p_escalate": "REAL", "escalated": "INTEGER NOT NULL DEFAULT 0",
                                 "draft_cost_usd": "REAL NOT NULL DEFAULT 0",
                                 "cascade_json": "TEXT"})


@SCHEMA.migration
def m004_request_bytes(db: sqlite3.Connection) -> None:
    """Rejected requests are logged too, with a capped body and its full size."""
    add_columns(db, "requests", {"request_bytes": "INTEGER"})


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) and migrate the log."""
    return SCHEMA.open(path)


def iter_records(db: sqlite3.Connection, where: str = "1=1",
                 params: tuple[Any, ...] = ()) -> Iterator[TrafficRecord]:
    cursor = db.execute(f"SELECT {', '.join(COLUMNS)} FROM requests WHERE {where} "
                        "ORDER BY created_at", params)
    for row in cursor:
        yield TrafficRecord.from_row(dict(zip(COLUMNS, row)))
