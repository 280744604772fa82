"""Export the traffic log to Parquet, column for column, from SQLite or PostgreSQL.

`export_parquet` writes one file. `export_dataset` writes a Hive-partitioned dataset that
DuckDB, Spark and Ray Data read as they are:

    OUT/requests/day=2026-12-05/part-0-0.parquet     (partitioned by created_at, UTC)
    OUT/outcomes/day=2026-12-05/part-0-0.parquet

Rows stream from the store in batches of `BATCH` (a server-side cursor on PostgreSQL), so
a log bigger than memory exports in constant memory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from switchyard.core.trafficlog.schema import COLUMNS, SCHEMA, TrafficRecord, connect
from switchyard.server.errors import InvalidRequest

BATCH = 50_000
OUTCOME_TYPES = {"request_id": "str", "source": "str", "label": "str | None",
                 "score": "float | None", "weight": "float", "created_at": "float"}
OUTCOME_COLUMNS = tuple(OUTCOME_TYPES)


def export_parquet(log_path: Path, out: Path, database_url: str | None = None) -> int:
    import pyarrow.parquet as pq

    out.parent.mkdir(parents=True, exist_ok=True)
    writer = None
    rows = 0
    try:
        for table in _tables(_batches(log_path, database_url, "requests", COLUMNS), COLUMNS,
                             day=False):
            writer = writer or pq.ParquetWriter(out, table.schema)
            writer.write_table(table)
            rows += table.num_rows
    finally:
        if writer is not None:
            writer.close()
    if writer is None:  # an empty log still gives a readable file with every column
        pq.write_table(_table([], COLUMNS, day=False), out)
    return rows


def export_dataset(log_path: Path, out: Path, database_url: str | None = None) -> dict[str, int]:
    """Requests and outcomes as Parquet datasets partitioned by day; rows written per table."""
    import pyarrow.parquet as pq

    if out.exists() and any(out.iterdir()):
        raise InvalidRequest(f"{out} is not empty; export into a new directory", param="out")
    counts = {}
    for name, columns in (("requests", COLUMNS), ("outcomes", OUTCOME_COLUMNS)):
        counts[name] = 0
        for i, table in enumerate(_tables(_batches(log_path, database_url, name, columns),
                                          columns)):
            pq.write_to_dataset(table, out / name, partition_cols=["day"],
                                basename_template=f"part-{i}-{{i}}.parquet")
            counts[name] += table.num_rows
    return counts


def _batches(log_path: Path, database_url: str | None, table: str,
             columns: Sequence[str]) -> Iterator[list[tuple[Any, ...]]]:
    sql = f"SELECT {', '.join(columns)} FROM {table} ORDER BY created_at"
    if database_url is not None:
        from switchyard.server.stores.postgres import POSTGRESQL

        # The log's schema, migrated as `connect` does a file; a named (server-side) cursor
        # streams the rows.
        pg = SCHEMA.open(database_url, engine=POSTGRESQL)
        with contextlib.closing(pg), pg.conn.transaction(), \
                pg.conn.cursor(name=f"export_{table}") as cur:
            cur.execute(sql)
            while rows := cur.fetchmany(BATCH):
                yield rows
        return
    db = connect(log_path)
    with contextlib.closing(db):
        cur = db.execute(sql)
        while rows := cur.fetchmany(BATCH):
            yield rows


def _tables(batches: Iterator[list[tuple[Any, ...]]], columns: Sequence[str],
            day: bool = True) -> Iterator[Any]:
    for rows in batches:
        yield _table(rows, columns, day)


def _table(rows: list[tuple[Any, ...]], columns: Sequence[str], day: bool = True) -> Any:
    """One batch with a fixed schema (a column all NULL in one batch keeps its type), and
    with `day` (UTC, from created_at), the partition column, unless told not to."""
    import pyarrow as pa

    kinds = {"str": pa.string(), "float": pa.float64(), "int": pa.int64(), "bool": pa.bool_()}
    # A column named apart from its field holds the field as JSON text (stage_ms_json).
    declared = {**{c: str(f.type) if c == f.name else "str"
                   for c, f in zip(COLUMNS, dataclasses.fields(TrafficRecord))}, **OUTCOME_TYPES}
    values = list(zip(*rows)) or [()] * len(columns)
    arrays, fields = [], []
    for name, column in zip(columns, values):
        kind = declared[name].split(" | ")[0]
        data = [None if v is None else bool(v) for v in column] if kind == "bool" else column
        fields.append(pa.field(name, kinds[kind], nullable="None" in declared[name]))
        arrays.append(pa.array(list(data), type=kinds[kind]))
    index = list(columns).index("created_at")
    if not day:
        return pa.Table.from_arrays(arrays, schema=pa.schema(fields))
    fields.append(pa.field("day", pa.string()))
    arrays.append(pa.array([dt.datetime.fromtimestamp(r[index], dt.UTC).date().isoformat()
                            for r in rows], type=pa.string()))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))
