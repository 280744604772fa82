"""The `switchyard` command line: serve, logs, and the components' own commands."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated, Any

import typer
from switchyard.server.cli.support import fail, guard, missing_extra

app = typer.Typer(
    help="Switchyard: learned routing, compaction and retrieval in front of your LLMs.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)
logs_app = typer.Typer(help="The traffic log: where it is, recent requests, exports.",
                       no_args_is_help=True)
app.add_typer(logs_app, name="log")
app.add_typer(logs_app, name="logs", hidden=True)

# Components register their commands from their own modules (each stays small).
COMMAND_MODULES = tuple(f"switchyard.server.cli.{group}"
                        for group in ("router", "compaction", "retrieval", "keys", "replay"))


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"switchyard {version('switchyard')}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Show the version and exit."),
) -> None:
    """Switchyard: learned routing, compaction and retrieval in front of your LLMs."""


ConfigOption = Annotated[Path | None, typer.Option(
    "--config", "-c", envvar="SWITCHYARD_CONFIG",
    help="YAML config file (default: built-in defaults).")]


@app.command()
def serve(
    config: ConfigOption = None,
    http_port: Annotated[int | None, typer.Option(
        "--http-port", help="HTTP port (default 8080).")] = None,
    grpc_port: Annotated[int | None, typer.Option(
        "--grpc-port", help="gRPC port (default 50051).")] = None,
    data_dir: Annotated[Path | None, typer.Option(
        "--data-dir", help="Where the SQLite log and indexes live.")] = None,
    host: Annotated[str | None, typer.Option(
        "--host", help="Bind address (default 127.0.0.1).")] = None,
    database_url: Annotated[str | None, typer.Option(
        "--database-url", envvar="SWITCHYARD_DATABASE_URL",
        help="postgresql://... shared by replicas (default: SQLite under the data dir).")] = None,
    redis_url: Annotated[str | None, typer.Option(
        "--redis-url", envvar="SWITCHYARD_REDIS_URL",
        help="redis://... for limits and cooldowns shared by replicas.")] = None,
    workers: Annotated[int | None, typer.Option(
        "--workers", help="Worker processes sharing the HTTP port (gRPC: worker 0).")] = None,
) -> None:
    """Serve the OpenAI-compatible HTTP proxy and the gRPC sidecar."""
    from switchyard.server.config import load_config
    from switchyard.server.serve import run_server

    flags: dict[str, Any] = {
        "server.http_port": http_port, "server.grpc_port": grpc_port,
        "server.data_dir": str(data_dir) if data_dir else None, "server.host": host,
        "server.database_url": database_url, "server.redis_url": redis_url,
        "server.workers": workers}
    settings = guard(lambda: load_config(config, **flags))
    guard(lambda: run_server(settings))


@logs_app.command("path")
def logs_path(config: ConfigOption = None) -> None:
    """Print the path of the traffic log (or the database holding it, password hidden)."""
    from switchyard.server.config import load_config
    from switchyard.server.stores.postgres import redacted

    server = guard(lambda: load_config(config)).server
    typer.echo(redacted(server.database_url) if server.database_url
               else str(server.traffic_log_path))


@logs_app.command("export")
def logs_export(
    parquet: Annotated[Path | None, typer.Option(
        "--parquet", help="Write the requests table to this one Parquet file.")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Write requests/ and outcomes/ under this new directory as Parquet "
        "datasets partitioned by day (DuckDB, Spark and Ray Data read them).")] = None,
    config: ConfigOption = None,
    log: Annotated[Path | None, typer.Option(
        "--log", help="Traffic log file (default: config).")] = None,
    database_url: Annotated[str | None, typer.Option(
        "--database-url", envvar="SWITCHYARD_DATABASE_URL",
        help="Export from this PostgreSQL instead (default: config server.database_url).")] = None,
) -> None:
    """Export the traffic log to Parquet (for DuckDB, pandas, Spark, Ray Data)."""
    from switchyard.server.config import load_config
    from switchyard.server.traffic.export import export_dataset, export_parquet

    if (parquet is None) == (out is None):
        fail("give one of --parquet FILE or --out DIR")
    settings = guard(lambda: load_config(config))
    url = database_url or (None if log else settings.server.database_url)
    path = log or settings.server.traffic_log_path
    if url is None and not path.exists():
        fail(f"no traffic log at {path}")
    if parquet is not None:
        rows = guard(lambda: export_parquet(path, parquet, url))
        typer.echo(f"exported {rows} rows to {parquet}")
        return
    assert out is not None
    counts = guard(lambda: export_dataset(path, out, url))
    typer.echo(f"exported {counts['requests']} requests and {counts['outcomes']} outcomes "
               f"to {out} (partitioned by day)")


def _register_components() -> None:
    from switchyard.server.cli import log

    log.register(logs_app)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(app)


_register_components()


def main() -> None:
    try:
        app()
    except ModuleNotFoundError as exc:
        message = missing_extra(exc)
        if message is None:
            raise
        typer.echo(f"Error: {message}", err=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
