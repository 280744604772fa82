"""Offline traffic for replay: the traffic log (SQLite), a Parquet export (DuckDB), or a
router data set, as arrays with both arms' outcomes where known.

Arm 0 is the non-thinking group, arm 1 the thinking group. A logged request gives its own
arm's tokens and cost, and its quality when an outcome was attached; a shadow call
(`shadow_of` = the primary id) gives the other arm's. Unknowns are NaN.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from switchyard.core.trafficlog.outcomes import (
    SOURCE_WEIGHTS,
    Outcome,
    Quality,
    combine,
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
SKIPPED = ("errors", "no_body", "unreadable", "orphan_shadows")  # why rows are not replayed
OUTCOME_FIELDS = ("request_id", "source", "label", "score", "weight", "created_at")
OUTCOME_VALUES = ("label", "score", "weight", "created_at")
BATCH_ROWS = 10_000  # primaries per Parquet batch: bounds replay's memory, not its result
DUCKDB_MEMORY = "128MB"  # the join and sort spill to a temp dir past this


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
    # Each row's rank in log order, where batches come in request-id order (iter_parquet).
    position: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.logged)

    def head(self, n: int) -> Traffic:
        """The first n requests (texts, if kept, included)."""
        return replace(self, request_ids=self.request_ids[:n], sessions=self.sessions[:n],
                       bodies=self.bodies[:n], texts=self.texts[:n], logged=self.logged[:n],
                       overridden=self.overridden[:n], propensity=self.propensity[:n],
                       quality=self.quality[:n], tokens=self.tokens[:n], cost=self.cost[:n],
                       position=None if self.position is None else self.position[:n])

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
    skipped = dict.fromkeys(SKIPPED, 0)
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
    return concat(iter_traffic(path, source_weights, convert))


def iter_traffic(path: Path, source_weights: Mapping[str, float] = SOURCE_WEIGHTS,
                 convert: Convert | None = None,
                 batch_rows: int = BATCH_ROWS) -> Iterator[Traffic]:
    """`load_traffic` in batches: a Parquet export streams; a SQLite log is one batch."""
    if Path(path).is_dir() or Path(path).suffix == ".parquet":
        return iter_parquet(path, source_weights=source_weights, convert=convert,
                            batch_rows=batch_rows)
    return iter([load_log(path, source_weights, convert)])


def load_parquet(path: Path, outcomes_path: Path | None = None,
                 source_weights: Mapping[str, float] = SOURCE_WEIGHTS,
                 convert: Convert | None = None) -> Traffic:
    """A Parquet export of the requests table (and optionally of the outcomes table), in
    memory: `iter_parquet`'s batches joined."""
    return concat(iter_parquet(path, outcomes_path, source_weights, convert))


def iter_parquet(path: Path, outcomes_path: Path | None = None,
                 source_weights: Mapping[str, float] = SOURCE_WEIGHTS,
                 convert: Convert | None = None,
                 batch_rows: int = BATCH_ROWS) -> Iterator[Traffic]:
    """A Parquet export as Traffic batches of at most `batch_rows` primaries, in request-id
    order, each row with its `position` in log order (`concat` restores that order).

    DuckDB reads only the columns replay uses and sorts three streams by request id (the
    primaries, the shadows with their outcomes, the outcomes) into tables of a scratch
    database on disk, one sort at a time; they are merged here batch by batch. Sorts spill
    past DUCKDB_MEMORY (joins of the whole log, or three sorts at once, ran out of it), so
    memory holds one batch, not the log. A directory from `log export --out` brings both tables,
    read across its day partitions. The first batch carries the skipped counts of the log.
    """
    import duckdb

    if (Path(path) / "requests").is_dir():
        if outcomes_path is None and (Path(path) / "outcomes").is_dir():
            outcomes_path = Path(path) / "outcomes"
        path = Path(path) / "requests"
    scratch = tempfile.TemporaryDirectory(prefix="switchyard-replay-")
    con = duckdb.connect(str(Path(scratch.name) / "sorted.duckdb"),
                         config={"memory_limit": DUCKDB_MEMORY})
    try:
        requests, order = _parquet_source(con, path, REQUIRED, "requests")
        outcomes = None
        if outcomes_path is not None:
            outcomes = _parquet_source(con, outcomes_path, OUTCOME_FIELDS, "outcomes")[0]
        skipped = _skipped_counts(con, requests)
        for statement in _sorted_tables_sql(requests, order, outcomes):
            con.execute(statement)
        primaries, shadows, own = (con.cursor().sql(f"SELECT * FROM {name}")
                                   .to_arrow_reader(batch_rows)
                                   for name in ("primaries", "shadows", "outcomes"))
        shadow_rows, outcome_rows = _Merge(shadows, "shadow_of"), _Merge(own, "request_id")
        first = True
        for batch in primaries:
            cols = batch.to_pydict()
            last = cols["request_id"][-1]
            yield _traffic_batch(cols, shadow_rows.until(last), outcome_rows.until(last),
                                 source_weights, convert, skipped if first else {})
            first = False
        if first:
            yield concat([], skipped)
    except duckdb.Error as exc:
        first_line = str(exc).splitlines()[0]
        raise RouterDataError(f"cannot read {path} as Parquet: {first_line}", "parquet") from None
    finally:
        con.close()
        scratch.cleanup()


def concat(batches: Iterable[Traffic], skipped: Mapping[str, int] | None = None) -> Traffic:
    """Batches as one Traffic in log order (their skipped counts summed)."""
    parts = list(batches)
    total = dict(skipped or {})
    for part in parts:
        add_counts(total, part.skipped)
    rank = {k: i for i, k in enumerate(SKIPPED)}  # notes list them in from_rows's order
    total = {k: total[k] for k in sorted(total, key=lambda k: rank.get(k, len(rank)))}
    order = log_order(parts)

    def joined(name: str, empty: np.ndarray) -> np.ndarray:
        return np.concatenate([getattr(t, name) for t in parts])[order] if parts else empty

    def listed(name: str) -> list[Any]:
        values = [v for t in parts for v in getattr(t, name)]
        return [values[i] for i in order] if values else []

    return Traffic(
        request_ids=listed("request_ids"), sessions=listed("sessions"),
        bodies=listed("bodies"), texts=listed("texts"),
        logged=joined("logged", np.zeros(0, np.int64)),
        overridden=joined("overridden", np.zeros(0, bool)),
        propensity=joined("propensity", np.zeros(0)),
        quality=joined("quality", np.zeros((0, 2))), tokens=joined("tokens", np.zeros((0, 2))),
        cost=joined("cost", np.zeros((0, 2))),
        source=parts[0].source if parts else "parquet", skipped=total)


def log_order(parts: Sequence[Traffic]) -> np.ndarray:
    """The permutation that puts the concatenated batches' rows in log order."""
    if not parts or any(t.position is None for t in parts):
        return np.arange(sum(len(t) for t in parts))
    return np.argsort(np.concatenate([t.position for t in parts]), kind="stable")


def add_counts(total: dict[str, int], more: Mapping[str, int]) -> None:
    for key, n in more.items():
        total[key] = total.get(key, 0) + n


def _parquet_source(con: Any, path: Path, required: Sequence[str],
                    what: str) -> tuple[str, str]:
    """A read_parquet(...) relation with every REQUIRED/OPTIONAL column (defaults for old
    exports) and the key that orders its rows as the log did."""
    if Path(path).is_dir():  # a dataset: every file under it, day=... read as a column
        glob = str(Path(path) / "**" / "*.parquet").replace("'", "''")
        scan = (f"read_parquet('{glob}', hive_partitioning = true, union_by_name = true, "
                "filename = true, file_row_number = true)")
        order = "created_at, filename, file_row_number"
    elif Path(path).is_file():
        scan = f"read_parquet('{str(path).replace(chr(39), chr(39) * 2)}', file_row_number = true)"
        order = "file_row_number"
    else:
        raise RouterDataError(f"no Parquet file at {path}", "parquet")
    names = [d[0] for d in con.sql(f"SELECT * FROM {scan} LIMIT 0").description]
    missing = [c for c in required if c not in names]
    if missing:
        raise RouterDataError(
            f"{path} is not a Switchyard {what} export: missing columns "
            f"{', '.join(missing)} (write one with 'switchyard log export --parquet')")
    if what == "outcomes":
        return scan, order
    defaults = ", ".join(f"{'NULL' if v is None else repr(v)} AS {k}"
                         for k, v in OPTIONAL.items() if k not in names)
    return f"(SELECT *{', ' + defaults if defaults else ''} FROM {scan})", order


_SHADOW = "status = 'ok' AND coalesce(shadow_of, '') <> ''"
_PRIMARY = "status = 'ok' AND coalesce(shadow_of, '') = '' AND request_json IS NOT NULL"


def _skipped_counts(con: Any, requests: str) -> dict[str, int]:
    """from_rows's counts, aggregated by DuckDB."""
    errors, no_body, orphans = con.execute(
        f"SELECT count(*) FILTER (WHERE status IS DISTINCT FROM 'ok'), "
        f"count(*) FILTER (WHERE status = 'ok' AND coalesce(shadow_of, '') = '' "
        f"AND request_json IS NULL), "
        f"(SELECT count(DISTINCT shadow_of) FROM {requests} WHERE {_SHADOW} AND shadow_of "
        f"NOT IN (SELECT request_id FROM {requests} WHERE {_PRIMARY})) "
        f"FROM {requests}").fetchall()[0]
    counts = {"errors": errors, "no_body": no_body, "orphan_shadows": orphans}
    return {k: int(v) for k, v in counts.items() if v}


def _sorted_tables_sql(requests: str, order: str, outcomes: str | None) -> list[str]:
    """Tables, each sorted by the primary's request id (a table keeps its rows' order): the
    primaries with their rank in log order (the rowid of a table sorted in log order, not a
    window: a window over the whole log did not spill), each request's last shadow
    (from_rows's rule) with the shadow's outcomes, and all outcomes, by source within a
    request (iter_outcomes's order: combine sums in that order)."""
    fields = ", ".join(OUTCOME_VALUES)
    scan = (f"(SELECT request_id, source, {fields} FROM {outcomes})" if outcomes else
            f"(SELECT NULL::VARCHAR AS request_id, NULL::VARCHAR AS source, "
            f"{', '.join('NULL AS ' + f for f in OUTCOME_VALUES)} LIMIT 0)")
    return [
        (f"CREATE TABLE logged AS SELECT request_id, session_id, thinking, overridden, "
        f"prompt_tokens, completion_tokens, cost_usd, request_json, propensity, endpoint "
        f"FROM {requests} WHERE {_PRIMARY} ORDER BY {order}"),
        "CREATE TABLE primaries AS SELECT *, rowid AS position FROM logged ORDER BY request_id",
        "DROP TABLE logged",
        (f"CREATE TABLE shadows AS SELECT s.*, o.source, "
        f"{', '.join('o.' + f for f in OUTCOME_VALUES)} FROM "
        f"(SELECT shadow_of, request_id, thinking, prompt_tokens, completion_tokens, cost_usd "
        f"FROM {requests} WHERE {_SHADOW} QUALIFY row_number() OVER "
        f"(PARTITION BY shadow_of ORDER BY {order} DESC) = 1) s "
        f"LEFT JOIN {scan} o ON o.request_id = s.request_id ORDER BY s.shadow_of, o.source"),
        f"CREATE TABLE outcomes AS SELECT * FROM {scan} ORDER BY request_id, source"]


class _Merge:
    """Rows of an Arrow reader sorted by `key`, taken in key order: a merge join with the
    primaries, so only the rows of the current batch's key range are held."""

    def __init__(self, reader: Any, key: str) -> None:
        self._batches, self._key = iter(reader), key
        self._rows: list[dict[str, Any]] = []
        self._at = 0
        self._previous = ""

    def until(self, last: str) -> dict[str, list[dict[str, Any]]]:
        """Every row whose key is at most `last`, by key."""
        out: dict[str, list[dict[str, Any]]] = {}
        while True:
            if self._at == len(self._rows):
                batch = next(self._batches, None)
                if batch is None:
                    return out
                self._rows, self._at = batch.to_pylist(), 0
                continue
            row = self._rows[self._at]
            if row[self._key] > last:
                return out
            if row[self._key] < self._previous:  # a merge on unsorted rows would drop some
                raise RouterDataError(f"replay: {self._key} rows out of order", "parquet")
            self._previous = row[self._key]
            out.setdefault(row[self._key], []).append(row)
            self._at += 1


def _traffic_batch(cols: Mapping[str, list[Any]], shadows: Mapping[str, list[dict[str, Any]]],
                   outcomes: Mapping[str, list[dict[str, Any]]],
                   source_weights: Mapping[str, float], convert: Convert | None,
                   skipped: Mapping[str, int]) -> Traffic:
    if convert is not None:
        cols = _converted(cols, convert, shadows, counts := dict(skipped))
        skipped = counts
    n = len(cols["request_id"])
    quality, tokens, cost = (np.full((n, 2), np.nan) for _ in range(3))
    logged = np.array([int(bool(t)) for t in cols["thinking"]], dtype=np.int64)
    for i, rid in enumerate(cols["request_id"]):
        arm = int(logged[i])
        primary = {k: cols[k][i] for k in ("prompt_tokens", "completion_tokens", "cost_usd")}
        sides = [(arm, primary, outcomes.get(rid, []))]
        shadow = shadows.get(rid)
        if shadow and int(bool(shadow[0]["thinking"])) != arm:
            sides.append((1 - arm, shadow[0], [r for r in shadow if r["source"] is not None]))
        for side, row, outs in sides:  # as from_rows's _fill_arm
            q = _combined(row.get("request_id", rid), outs, source_weights)
            if q is not None:
                quality[i, side] = q.value
            tokens[i, side] = float(row["prompt_tokens"]) + float(row["completion_tokens"])
            cost[i, side] = float(row["cost_usd"])
    return Traffic(
        request_ids=cols["request_id"], sessions=cols["session_id"],
        bodies=cols["request_json"], texts=[""] * n, logged=logged,
        overridden=np.array([bool(o) for o in cols["overridden"]], dtype=bool),
        propensity=np.array([np.nan if p is None else float(p) for p in cols["propensity"]]),
        quality=quality, tokens=tokens, cost=cost, source="parquet", skipped=dict(skipped),
        position=np.array(cols["position"], dtype=np.int64))


def _converted(cols: Mapping[str, list[Any]], convert: Convert,
               shadows: Mapping[str, list[dict[str, Any]]],
               skipped: dict[str, int]) -> dict[str, list[Any]]:
    """from_rows's conversion: bodies in chat form; an unreadable row is skipped (counted),
    and its shadow becomes an orphan."""
    keep, bodies = [], []
    for i, (endpoint, body) in enumerate(zip(cols["endpoint"], cols["request_json"])):
        try:
            bodies.append(convert(endpoint or "", body))
            keep.append(i)
        except ValueError:
            why = ["unreadable"] + (["orphan_shadows"] if cols["request_id"][i] in shadows
                                    else [])
            add_counts(skipped, dict.fromkeys(why, 1))
    out = {k: [v[i] for i in keep] for k, v in cols.items()}
    out["request_json"] = bodies
    return out


def _combined(rid: str, outs: list[dict[str, Any]],
              source_weights: Mapping[str, float]) -> Quality | None:
    if not outs:
        return None
    try:
        return combine((Outcome(rid, o["source"], **{f: o[f] for f in OUTCOME_VALUES})
                        for o in outs), source_weights)
    except (TypeError, ValueError) as exc:
        raise RouterDataError(f"bad outcome row for {rid}: {exc}", "outcomes") from None


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
