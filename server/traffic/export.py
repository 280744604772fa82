"""Export the traffic log to Parquet, column for column."""

from __future__ import annotations

from pathlib import Path

from switchyard.core.trafficlog.schema import COLUMNS, connect


def export_parquet(log_path: Path, out: Path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    db = connect(log_path)
    try:
        rows = db.execute(f"SELECT {', '.join(COLUMNS)} FROM requests ORDER BY created_at")
        columns = list(zip(*rows.fetchall())) or [()] * len(COLUMNS)
    finally:
        db.close()
    table = pa.table({name: list(values) for name, values in zip(COLUMNS, columns)})
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out)
    return table.num_rows
