"""`switchyard replay`: routing policies (or compaction strategies) over logged traffic.

    switchyard replay --log traffic.sqlite --policy mlp:share=0.2 --policy always --html r.html
    switchyard replay --parquet export.parquet --outcomes-parquet outcomes.parquet ...
    switchyard replay --dataset mmlu --policy mlp:share=0.5 --policy random:share=0.5
    switchyard replay --compaction --log traffic.sqlite --strategy learned --strategy truncate
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from switchyard.server.cli.support import guard

DEFAULT_POLICIES = ("logged", "never", "always", "mlp:share=0.25", "mlp:share=0.5",
                    "mlp:share=0.75")


def register(app: typer.Typer) -> None:
    app.command("replay")(replay)


def replay(
    log: Annotated[Path | None, typer.Option("--log", help="Traffic log (SQLite).")] = None,
    parquet: Annotated[Path | None, typer.Option(
        "--parquet", help="Parquet export of the requests table, or the directory "
        "'log export --out' wrote (read with DuckDB).")] = None,
    outcomes_parquet: Annotated[Path | None, typer.Option(
        "--outcomes-parquet", help="Parquet export of the outcomes table.")] = None,
    dataset: Annotated[str | None, typer.Option(
        "--dataset", help="mmlu or dcrouter: a router data set as offline traffic.")] = None,
    data_dir: Annotated[Path | None, typer.Option(
        "--data-dir", envvar="SWITCHYARD_ROUTER_DATA", help="Router data folder.")] = None,
    policy: Annotated[list[str] | None, typer.Option(
        "--policy", "-p", help="mlp[@CKPT][:share=S|:threshold=T], always, never, "
        "random[:share=S], logged; repeat for several.")] = None,
    html: Annotated[Path | None, typer.Option("--html", help="Write an HTML report.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON, not a table.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=0, help="First N requests (0: all).")] = 0,
    compaction: Annotated[bool, typer.Option(
        "--compaction", help="Replay compaction strategies instead of routing.")] = False,
    strategy: Annotated[list[str] | None, typer.Option(
        "--strategy", help="Compaction strategy (repeat); default: all.")] = None,
    budget_share: Annotated[float, typer.Option(
        "--budget-share", min=0.01, max=1.0,
        help="Compaction budget as a share of each history.")] = 0.5,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """Re-decide logged requests under candidate policies; estimate quality, tokens, cost."""
    if sum(x is not None for x in (log, parquet, dataset)) > 1:
        raise typer.BadParameter("give one of --log, --parquet, --dataset")
    if compaction:
        guard(lambda: _replay_compaction(log, strategy, budget_share, limit, as_json,
                                          progress))
        return
    guard(lambda: _replay_routing(log, parquet, outcomes_parquet, dataset, data_dir,
                                   policy, html, as_json, limit, progress))


def _replay_routing(log: Path | None, parquet: Path | None, outcomes_parquet: Path | None,
                    dataset: str | None, data_dir: Path | None, policies: list[str] | None,
                    html: Path | None, as_json: bool, limit: int, progress: bool) -> None:
    from switchyard.router.replay import format_table, parse_policy, replay_batches
    from switchyard.router.replay_data import iter_parquet, load_dataset, load_log
    from switchyard.server.traffic.replay_requests import replay_body

    parsed = [parse_policy(p) for p in (policies or DEFAULT_POLICIES)]
    if dataset is not None:
        batches = iter([load_dataset(dataset, data_dir, limit=limit)])
    elif parquet is not None:  # streams: a Parquet log may not fit in memory
        batches = iter_parquet(parquet, outcomes_parquet, convert=replay_body)
    else:
        batches = iter([load_log(log or _default_log(), convert=replay_body)])
    traffic, estimates = replay_batches(batches, parsed, progress=progress, limit=limit)
    notes = [f"source: {traffic.source}, {len(traffic)} requests replayed"]
    notes += [f"skipped {n} {why.replace('_', ' ')}" for why, n in traffic.skipped.items()]
    if as_json:
        typer.echo(json.dumps({"notes": notes, "estimates": [e.to_dict() for e in estimates]},
                              indent=1))
    else:
        typer.echo("\n".join(notes))
        typer.echo(format_table(estimates))
    if html is not None:
        from switchyard.router.report import write_html

        write_html(estimates, html, notes=notes)
        typer.echo(f"wrote {html}", err=as_json)


def _replay_compaction(log: Path | None, strategies: list[str] | None, budget_share: float,
                       limit: int, as_json: bool, progress: bool) -> None:
    from switchyard.server.cli.replay_compaction import (
        DEFAULT_STRATEGIES,
        format_compaction,
        logged_histories,
        replay_compaction,
    )

    histories = logged_histories(log or _default_log(), limit)
    totals = replay_compaction(histories, strategies or DEFAULT_STRATEGIES,
                               budget_share=budget_share, progress=progress)
    if as_json:
        typer.echo(json.dumps([{"strategy": t.strategy, "requests": t.requests,
                                "compacted": t.compacted, "tokens_saved": t.saved,
                                "saved_share": t.saved_share, "per_request": t.per_request(),
                                "per_session": t.per_session(), "sessions": len(t.sessions),
                                "errors": t.errors} for t in totals], indent=1))
    else:
        typer.echo(f"{len(histories)} logged histories, budget {budget_share:.0%} of each")
        typer.echo(format_compaction(totals))


def _default_log() -> Path:
    from switchyard.server.config import load_config

    return load_config(None).server.traffic_log_path


