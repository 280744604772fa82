"""`switchyard log tail` and `switchyard log show ID`: read recent requests from the log.

    switchyard log tail [-n 20] [--errors] [--json]
    switchyard log show req_0123abcd [--json]
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from switchyard.server.cli.support import fail, guard

TAIL_COLUMNS = ("created_at", "request_id", "endpoint", "status", "http_status", "model",
                "upstream_model", "prompt_tokens", "completion_tokens", "latency_ms",
                "error_type")
LogOption = Annotated[Path | None, typer.Option(
    "--log", help="Traffic log file (default: from the config).")]
ConfigOption = Annotated[Path | None, typer.Option(
    "--config", "-c", envvar="SWITCHYARD_CONFIG", help="YAML config file.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def register(logs_app: typer.Typer) -> None:
    logs_app.command("tail")(tail)
    logs_app.command("show")(show)


def tail(
    n: Annotated[int, typer.Option("-n", "--lines", min=1, help="How many requests.")] = 20,
    errors: Annotated[bool, typer.Option("--errors", help="Only failed or refused ones.")]
    = False,
    as_json: JsonOption = False,
    log: LogOption = None,
    config: ConfigOption = None,
) -> None:
    """The most recent requests, oldest first (one line each)."""
    where = "WHERE status != 'ok'" if errors else ""
    rows = _query(log, config, f"SELECT {', '.join(TAIL_COLUMNS)} FROM requests {where} "
                  "ORDER BY created_at DESC LIMIT ?", (n,))[::-1]
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    for r in rows:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["created_at"]))
        model = r["upstream_model"] or r["model"] or "-"
        outcome = r["status"] if r["status"] == "ok" else f"{r['status']}:{r['error_type']}"
        typer.echo(f"{when}  {r['request_id']}  {r['endpoint']:<22} {r['http_status']} "
                   f"{outcome:<24} {model:<24} {r['prompt_tokens']:>7}/"
                   f"{r['completion_tokens']:<6} {r['latency_ms']:8.1f} ms")
    if not rows:
        typer.echo("no requests logged yet")


def show(
    request_id: Annotated[str, typer.Argument(help="The x-request-id of the request.")],
    as_json: JsonOption = False,
    log: LogOption = None,
    config: ConfigOption = None,
) -> None:
    """Everything logged about one request, its body included."""
    rows = _query(log, config, "SELECT * FROM requests WHERE request_id = ?", (request_id,))
    if not rows:
        fail(f"no request {request_id!r} in the traffic log")
    row = rows[0]
    for key in ("stage_ms_json", "attempts_json", "request_json"):
        text = row.pop(key)
        try:
            row[key.removesuffix("_json")] = json.loads(text or "null")
        except ValueError:  # a refused request's body is cut at 64 KB
            row[key.removesuffix("_json")] = text
    if as_json:
        typer.echo(json.dumps(row, indent=1))
        return
    body = row.pop("request")
    for key, value in row.items():
        typer.echo(f"{key:<18} {json.dumps(value) if isinstance(value, list | dict) else value}")
    typer.echo("request:")
    typer.echo(body if isinstance(body, str) else json.dumps(body, indent=1))


def _query(log: Path | None, config: Path | None, sql: str,
           params: tuple[Any, ...]) -> list[dict[str, Any]]:
    from switchyard.core.trafficlog.schema import connect
    from switchyard.server.config import load_config

    path = log or guard(lambda: load_config(config)).server.traffic_log_path
    if not path.is_file():
        fail(f"no traffic log at {path}; start `switchyard serve` or pass --log")
    db = guard(lambda: connect(path))
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute(sql, params)]
    finally:
        db.close()
