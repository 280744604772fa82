"""Offline traffic for replay: the traffic log (SQLite), a Parquet export (DuckDB), or a
router data set, as arrays with both arms' outcomes where known.

Arm 0 is the non-thinking group, arm 1 the thinking group. A logged request gives its own
arm's tokens and cost, and its quality when an outcome was attached; a shadow call
(`shadow_of` = the primary id) gives the other arm's. Unknowns are NaN.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from switchyard.core.trafficlog.outcomes import (
    SOURCE_WEIGHTS,
    Outcome,
    Quality,
    iter_outcomes,
    quality_by_request,
)
from switchyard.router.decision import RouteRequest
from switchyard.router.errors import RouterDataError

REQUIRED = ("request_id", "session_id", "thinking", "overridden", "status", "prompt_tokens",
            "completion_tokens", "cost_usd", "request_json")
OPTIONAL = {"propensity": None, "explored": 0, "shadow_of": None, "created_at": 0.0,
            "endpoint": "http.chat.completions"}
# (endpoint, stored request JSON) -> that request as a Chat Completions body (JSON text);
# raises ValueError when the row cannot be read. The server supplies it, per front door.
Convert = Callable[[str, str], str]


@dataclass
class Traffic:
    request_ids: list[str]
    sessions: list[str]
    bodies: list[str | None]  # request JSON (None for data sets: see `texts`)
    texts: list[str]  # data sets: the prompt; logs: "" (built from bodies)
    logged: np.ndarray  # int arm served (0/1)
    overridden: np.ndarray  # bool: the caller pinned the arm; replay keeps it
    propensity: np.ndarray  # P(logged arm) under the logging policy; NaN unknown
    quality: np.ndarray  # (n, 2) in [0, 1]; NaN unknown
    tokens: np.ndarray  # (n, 2)
    cost: np.ndarray  # (n, 2) USD
    source: str
    skipped: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.request_ids)

    def requests(self, rows: Sequence[int] | None = None) -> list[RouteRequest]:
        from switchyard.core.messages import Message, parse_messages, parse_tools

        out = []
        for i in range(len(self)) if rows is None else rows:
            body = self.bodies[i]
            if body is None:
                out.append(RouteRequest(messages=(Message(role="user", content=self.texts[i]),)))
                continue
            raw = json.loads(body)
            fmt = (raw.get("response_format") or {}).get("type")
            out.append(RouteRequest(messages=tuple(parse_messages(raw.get("messages"))),
                                    tools=tuple(parse_tools(raw.get("tools") or [])),
                                    response_format=fmt))
        return out


def from_rows(rows: Iterable[Mapping[str, Any]], qualities: Mapping[str, Quality],
              source: str, convert: Convert | None = None) -> Traffic:
    """Primaries with their shadows folded in as the other arm; bodies in chat form."""
    primaries: list[Mapping[str, Any]] = []
    shadows: dict[str, Mapping[str, Any]] = {}
    skipped = {"errors": 0, "no_body": 0, "unreadable": 0, "orphan_shadows": 0}
    for row in rows:
        if row["status"] != "ok":
            skipped["errors"] += 1
        elif row.get("shadow_of"):
            shadows[row["shadow_of"]] = row
        elif row["request_json"] is None:
            skipped["no_body"] += 1
        elif convert is None:
            primaries.append(row)
        else:
            try:
                body = convert(row.get("endpoint") or "", row["request_json"])
            except ValueError:
                skipped["unreadable"] += 1
                continue
            primaries.append({**row, "request_json": body})
    n = len(primaries)
    quality, tokens, cost = (np.full((n, 2), np.nan) for _ in range(3))
    logged = np.zeros(n, dtype=np.int64)
    for i, row in enumerate(primaries):
        arm = logged[i] = int(bool(row["thinking"]))
        _fill_arm(i, arm, row, qualities, quality, tokens, cost)
        shadow = shadows.pop(row["request_id"], None)
        if shadow is not None and int(bool(shadow["thinking"])) != arm:
            _fill_arm(i, 1 - arm, shadow, qualities, quality, tokens, cost)
    skipped["orphan_shadows"] = len(shadows)
    prop = np.array([np.nan if r.get("propensity") is None else float(r["propensity"])
                     for r in primaries])
    return Traffic(
        request_ids=[r["request_id"] for r in primaries],
        sessions=[r["session_id"] for r in primaries],
        bodies=[r["request_json"] for r in primaries], texts=[""] * n, logged=logged,
        overridden=np.array([bool(r["overridden"]) for r in primaries], dtype=bool),
        propensity=prop, quality=quality, tokens=tokens, cost=cost, source=source,
        skipped={k: v for k, v in skipped.items() if v})


def _fill_arm(i: int, arm: int, row: Mapping[str, Any], qualities: Mapping[str, Quality],
              quality: np.ndarray, tokens: np.ndarray, cost: np.ndarray) -> None:
    q = qualities.get(row["request_id"])
    if q is not None:
        quality[i, arm] = q.value
    tokens[i, arm] = float(row["prompt_tokens"]) + float(row["completion_tokens"])
    cost[i, arm] = float(row["cost_usd"])


def load_log(path: Path, source_weights: Mapping[str, float] = SOURCE_WEIGHTS,
             convert: Convert | None = None) -> Traffic:
    """The traffic log; a log from a newer Switchyard raises NewerSchemaError."""
    from switchyard.core.trafficlog.schema import connect

    if not Path(path).is_file():
        raise RouterDataError(f"no traffic log at {path}; pass --log PATH or check "
                              "server.traffic_log in the config", "log")
    db = connect(Path(path))
    try:
        qualities = quality_by_request(iter_outcomes(db), source_weights)
        cursor = db.execute(f"SELECT {', '.join((*REQUIRED, *OPTIONAL))} FROM requests "
                            "ORDER BY created_at")
        names = [d[0] for d in cursor.description]
        return from_rows((dict(zip(names, r)) for r in cursor), qualities, "log", convert)
    finally:
        db.close()


def load_traffic(path: Path, source_weights: Mapping[str, float] = SOURCE_WEIGHTS,
                 convert: Convert | None = None) -> Traffic:
    """A traffic log (SQLite) or a Parquet export of one (a file, or the directory that
    `switchyard log export --out` writes)."""
    if Path(path).is_dir() or Path(path).suffix == ".parquet":
        return load_parquet(path, source_weights=source_weights, convert=convert)
    return load_log(path, source_weights, convert)


def load_parquet(path: Path, outcomes_path: Path | None = None,
                 source_weights: Mapping[str, float] = SOURCE_WEIGHTS,
                 convert: Convert | None = None) -> Traffic:
    """A Parquet export of the requests table (and optionally of the outcomes table). A
    directory from `log export --out` brings both: DuckDB reads its day partitions."""
    if (Path(path) / "requests").is_dir():
        if outcomes_path is None and (Path(path) / "outcomes").is_dir():
            outcomes_path = Path(path) / "outcomes"
        path = Path(path) / "requests"
    rows = _read_parquet(path, REQUIRED, "requests")
    names = set(rows[0]) if rows else set(REQUIRED)
    for key, default in OPTIONAL.items():
        if key not in names:
            for r in rows:
                r[key] = default
    qualities: dict[str, Quality] = {}
    if outcomes_path is not None:
        raw = _read_parquet(outcomes_path, ("request_id", "source", "label", "score",
                                            "weight", "created_at"), "outcomes")
        try:
            qualities = quality_by_request((Outcome(**r) for r in raw), source_weights)
        except (TypeError, ValueError) as exc:
            raise RouterDataError(f"{outcomes_path}: bad outcome row: {exc}") from None
    return from_rows(rows, qualities, "parquet", convert)


def _read_parquet(path: Path, required: Sequence[str], what: str) -> list[dict[str, Any]]:
    import duckdb

    source = str(path)
    if Path(path).is_dir():  # a dataset: every file under it, day=... read as a column
        source = str(Path(path) / "**" / "*.parquet")
    elif not Path(path).is_file():
        raise RouterDataError(f"no Parquet file at {path}", "parquet")
    try:
        con = duckdb.connect()
        rel = con.execute("SELECT * EXCLUDE (day) FROM read_parquet(?, hive_partitioning = "
                          "true, union_by_name = true) ORDER BY created_at"
                          if Path(path).is_dir() else "SELECT * FROM read_parquet(?)", [source])
        names = [d[0] for d in rel.description]
        missing = [c for c in required if c not in names]
        if missing:
            raise RouterDataError(
                f"{path} is not a Switchyard {what} export: missing columns "
                f"{', '.join(missing)} (write one with 'switchyard log export --parquet')")
        return [dict(zip(names, r)) for r in rel.fetchall()]
    except duckdb.Error as exc:
        first = str(exc).splitlines()[0]
        raise RouterDataError(f"cannot read {path} as Parquet: {first}", "parquet") from None


@dataclass(frozen=True)
class AssumedCosts:
    """Data sets carry correctness, not usage: tokens and prices per arm are assumptions
    (defaults: the config's default models' prices; completion sizes are typical)."""

    completion_tokens: tuple[int, int] = (256, 256 + 1024)  # thinking adds reasoning tokens
    input_per_m: tuple[float, float] = (0.40, 1.10)
    output_per_m: tuple[float, float] = (1.60, 4.40)


def load_dataset(name: str, directory: Path | None = None,
                 costs: AssumedCosts = AssumedCosts(), limit: int = 0) -> Traffic:
    """A router data set as offline traffic: both arms' quality known (direct estimates)."""
    from switchyard.core.tokens import count_tokens_batch
    from switchyard.router.data import DCROUTER_FILE, MMLU_FILE, data_dir, load_dcrouter, load_mmlu

    loaders = {"mmlu": (load_mmlu, MMLU_FILE), "dcrouter": (load_dcrouter, DCROUTER_FILE)}
    if name not in loaders:
        raise RouterDataError(f"unknown data set {name!r}; valid: {', '.join(loaders)}",
                              "dataset")
    load, filename = loaders[name]
    examples = load(data_dir(directory) / filename)
    if limit:
        examples = examples[:limit]
    n = len(examples)
    prompt = np.array(count_tokens_batch([e.text for e in examples]), dtype=np.float64)
    tokens = np.stack([prompt + c for c in costs.completion_tokens], axis=1)
    cost = np.stack([(prompt * costs.input_per_m[a] + costs.completion_tokens[a]
                      * costs.output_per_m[a]) / 1e6 for a in (0, 1)], axis=1)
    return Traffic(
        request_ids=[f"{name}-{i}" for i in range(n)], sessions=[e.family for e in examples],
        bodies=[None] * n, texts=[e.text for e in examples], logged=np.zeros(n, np.int64),
        overridden=np.zeros(n, bool), propensity=np.full(n, np.nan),
        quality=np.array([[e.weak, e.strong] for e in examples], dtype=np.float64).reshape(n, 2),
        tokens=tokens, cost=cost, source=name)


def write_outcomes_parquet(db: sqlite3.Connection, out: Path) -> int:
    """The outcomes table as Parquet (pairs with 'switchyard log export --parquet')."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = list(iter_outcomes(db))
    table = pa.table({k: [getattr(o, k) for o in rows] for k in
                      ("request_id", "source", "label", "score", "weight", "created_at")})
    pq.write_table(table, out)
    return table.num_rows
