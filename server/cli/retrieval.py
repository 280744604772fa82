"""`switchyard index` and `switchyard search`: the retrieval commands (wired by cli/main.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from switchyard.server.cli.support import guard

if TYPE_CHECKING:
    from switchyard.retrieval import Index

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", envvar="SWITCHYARD_DATA_DIR",
                 help="Where the chunk store lives (default: ~/.local/share/switchyard)."),
]


def _open_index(value: Path | None) -> Index:
    """The chunk store under --data-dir (or the default); ConfigError if it is unusable."""
    from switchyard.retrieval import Index
    from switchyard.server.config import default_data_dir, unusable_data_dir

    path = value if value is not None else default_data_dir()
    try:
        return Index.open(path)
    except OSError as exc:
        raise unusable_data_dir(path, exc) from None


def _fail(exc: Exception) -> None:
    """RetrievalError -> a usage error (exit code 2); SWITCHYARD_RAISE_ERRORS=1 re-raises it."""
    if os.environ.get("SWITCHYARD_RAISE_ERRORS"):
        raise exc
    # typer vendors its own click: its BadParameter (a UsageError) is what exits with code 2.
    param = getattr(exc, "param", None)
    raise typer.BadParameter(str(exc), param_hint=param) from None


def index_command(
    path: Annotated[Path, typer.Argument(help="A file or directory to index.")],
    namespace: Annotated[str, typer.Option("--namespace", "-n", help="Namespace to fill.")],
    data_dir: DataDir = None,
    dense: Annotated[bool, typer.Option(help="Compute dense vectors now (slow on CPU).")] = True,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Index files under PATH into a namespace, honouring .gitignore."""
    from switchyard.retrieval import RetrievalError

    try:
        with guard(lambda: _open_index(data_dir)) as index:
            stats = index.index_path(path, namespace, progress=progress, dense=dense)
    except RetrievalError as exc:
        _fail(exc)
        return
    typer.echo(f"indexed {stats.files} files ({stats.files_skipped} skipped): {stats.chunks} "
               f"chunks, {stats.added} new, in {stats.seconds:.1f} s -> namespace {namespace!r}")


def search_command(
    query: Annotated[str, typer.Argument(help="Text, identifier, path or /regex/.")],
    namespace: Annotated[list[str], typer.Option("--namespace", "-n", help="Repeatable.")],
    mode: Annotated[str, typer.Option(help="bm25, grep, dense or hybrid.")] = "hybrid",
    k: Annotated[int, typer.Option("-k", help="How many hits.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array.")] = False,
    regex: Annotated[bool, typer.Option("--regex", help="Grep QUERY as an RE2 regex.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Search namespaces and print ranked hits with the retrievers that found each."""
    from switchyard.retrieval import RetrievalError

    try:
        with guard(lambda: _open_index(data_dir)) as index:
            hits = index.search(query, namespaces=namespace, k=k, mode=mode,  # type: ignore[arg-type]
                                regex=True if regex else None)
    except RetrievalError as exc:
        _fail(exc)
        return
    if as_json:
        typer.echo(json.dumps([{
            "chunk_id": h.chunk_id, "score": h.score, "ranks": dict(h.ranks),
            "namespace": h.chunk.namespace, "source": h.chunk.source,
            "start_line": h.chunk.start_line, "lines": list(h.lines), "text": h.chunk.text,
        } for h in hits], indent=2))
        return
    for i, h in enumerate(hits, start=1):
        found = " ".join(f"{name}#{rank}" for name, rank in sorted(h.ranks.items()))
        where = h.chunk.source or f"message {h.chunk.message_index}"
        line = h.lines[0] if h.lines else h.chunk.start_line
        first = h.chunk.text.strip().splitlines()[0][:100] if h.chunk.text.strip() else ""
        typer.echo(f"{i:>3}. {h.score:.4f}  {where}:{line}  [{found}]  {h.chunk_id}\n     {first}")
    if not hits:
        typer.echo("no hits")


def register(app: typer.Typer) -> None:
    app.command("index")(index_command)
    app.command("search")(search_command)
