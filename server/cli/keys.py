"""`switchyard keys create / list / revoke`: API keys for auth.mode 'keys'."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

ConfigOption = typer.Option(None, "--config", "-c", envvar="SWITCHYARD_CONFIG",
                            help="YAML config file (the key store is under its data dir).")


def register(app: typer.Typer) -> None:
    keys_app = typer.Typer(help="API keys (auth.mode: keys): create, list, revoke.",
                           no_args_is_help=True)
    keys_app.command("create")(create)
    keys_app.command("list")(list_keys)
    keys_app.command("revoke")(revoke)
    app.add_typer(keys_app, name="keys")


def create(name: str = typer.Option("", "--name", help="A label to recognise the key by."),
           config: Path | None = ConfigOption) -> None:
    """Create a key and print it once: only its hash is stored."""
    store = _store(config)
    try:
        info, key = store.create(name)
    finally:
        store.close()
    typer.echo(key)
    typer.echo(f"created {info.key_id}{f' ({name})' if name else ''}; this is the only time "
               "the key is shown", err=True)


def list_keys(as_json: bool = typer.Option(False, "--json", help="One JSON list."),
              config: Path | None = ConfigOption) -> None:
    """List keys: id, name, created, revoked (never the key)."""
    store = _store(config)
    try:
        keys = store.list()
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps([k.as_json() for k in keys], indent=2))
        return
    for k in keys:
        state = "active" if k.active else f"revoked {_when(k.revoked_at)}"
        typer.echo(f"{k.key_id}  ...{k.last4}  {k.name or '-'}  created {_when(k.created_at)}  "
                   f"{state}")


def revoke(key_id: str = typer.Argument(..., help="The key id, e.g. key_0123456789."),
           config: Path | None = ConfigOption) -> None:
    """Revoke a key: the next request with it gets a 401."""
    from switchyard.server.cli.support import guard

    store = _store(config)
    try:
        info = guard(lambda: store.revoke(key_id))
    finally:
        store.close()
    typer.echo(f"revoked {info.key_id}")


def _store(config: Path | None):  # type: ignore[no-untyped-def]
    from switchyard.server.auth import KeyStore, keys_path
    from switchyard.server.cli.support import guard
    from switchyard.server.config import load_config

    settings = guard(lambda: load_config(config))
    url = settings.server.database_url
    if url:  # the replicas' shared keys
        from switchyard.server.stores.pg_stores import PgKeyStore
        from switchyard.server.stores.postgres import Database

        return PgKeyStore(guard(lambda: Database(url, max_size=1)), owned=True)
    return KeyStore(keys_path(settings))


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "-"
