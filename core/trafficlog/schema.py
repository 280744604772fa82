"""The traffic log's schema: one `TrafficRecord` per request, SQLite, versioned migrations.

The server writes it (server/traffic/writer.py); the router reads it for replay and retraining,
which is why the schema lives here. Migrations follow simonw/llm: functions registered in
order with `@migration`, recorded in `_switchyard_migrations`, never edited once shipped.
Typed columns for what we query, JSON columns for the full request and the attempts.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 3
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = []


def migration(fn: Callable[[sqlite3.Connection], None]) -> Callable[[sqlite3.Connection], None]:
    MIGRATIONS.append(fn)
    return fn


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
    stage_ms_json: str = "{}"
    attempts_json: str = "[]"
    request_json: str | None = None  # the caller's request body (for replay)
    # m002: counterfactual replay. `propensity` is P(the logged group | request) under the
    # logging policy (set while exploration is on); `explored` marks a randomised choice;
    # `shadow_of` is the primary request id of a shadow call to the other group.
    propensity: float | None = None
    explored: bool = False
    shadow_of: str | None = None
    # m003: a rejected request keeps only the first 64 KB of its body; this is its full size.
    request_bytes: int | None = None

    def as_row(self) -> dict[str, Any]:
        return asdict(self)


COLUMNS = tuple(f.name for f in fields(TrafficRecord))


@migration
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


@migration
def m002_outcomes(db: sqlite3.Connection) -> None:
    """Outcomes attached after the fact (core/trafficlog/outcomes.py) and the replay columns."""
    existing = {row[1] for row in db.execute("PRAGMA table_info(requests)")}
    for column, ddl in (("propensity", "REAL"), ("explored", "INTEGER NOT NULL DEFAULT 0"),
                        ("shadow_of", "TEXT")):
        if column not in existing:
            db.execute(f"ALTER TABLE requests ADD COLUMN {column} {ddl}")
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


@migration
def m003_request_bytes(db: sqlite3.Connection) -> None:
    """Rejected requests are logged too, with a capped body and its full size."""
    existing = {row[1] for row in db.execute("PRAGMA table_info(requests)")}
    if "request_bytes" not in existing:
        db.execute("ALTER TABLE requests ADD COLUMN request_bytes INTEGER")


class NewerSchemaError(RuntimeError):
    """The log was written by a newer Switchyard: refuse rather than misread it."""


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) and migrate the log; WAL so readers never block the writer."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode: a commit survives a killed process (not a power cut) without fsync.
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA busy_timeout=5000")
    migrate(db)
    return db


def migrate(db: sqlite3.Connection) -> None:
    db.execute(
        "CREATE TABLE IF NOT EXISTS _switchyard_migrations (name TEXT PRIMARY KEY, applied_at REAL)"
    )
    applied = {row[0] for row in db.execute("SELECT name FROM _switchyard_migrations")}
    known = {fn.__name__ for fn in MIGRATIONS}
    unknown = sorted(applied - known)
    if unknown:
        raise NewerSchemaError(
            f"the traffic log has migrations this version does not know ({', '.join(unknown)}); "
            "upgrade Switchyard or point it at another log file"
        )
    for fn in MIGRATIONS:
        if fn.__name__ not in applied:
            with db:
                db.execute("BEGIN")
                fn(db)
                db.execute("INSERT INTO _switchyard_migrations VALUES (?, ?)",
                           (fn.__name__, time.time()))


def iter_records(db: sqlite3.Connection, where: str = "1=1",
                 params: tuple[Any, ...] = ()) -> Iterator[TrafficRecord]:
    cursor = db.execute(f"SELECT {', '.join(COLUMNS)} FROM requests WHERE {where} "
                        "ORDER BY created_at", params)
    for row in cursor:
        values = dict(zip(COLUMNS, row))
        for key in ("thinking", "overridden", "stream", "fallback", "explored"):
            values[key] = bool(values[key])
        yield TrafficRecord(**values)


def stage_ms(record: TrafficRecord) -> dict[str, float]:
    return json.loads(record.stage_ms_json)
