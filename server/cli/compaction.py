"""`switchyard compact` and `switchyard train-compactor` (wired in by server/cli/main.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from switchyard.server.cli.support import cleanly, guard


def register(app: typer.Typer) -> None:
    app.command("compact")(compact)
    app.command("train-compactor")(cleanly(train_compactor))


def compact(
    input: Annotated[Path, typer.Option("--input", "-i", help="JSON: {'messages': [...]} or a list")],
    budget: Annotated[int, typer.Option("--budget", "-b", help="token budget for the history")],
    model: Annotated[str | None, typer.Option("--model", "-m", envvar="SWITCHYARD_MODEL",
                                                 help="target model (picks the tokenizer)")] = None,
    strategy: Annotated[str, typer.Option("--strategy", "-s",
                                          help="learned, truncate or observation_mask")] = "learned",
    checkpoint: Annotated[Path | None, typer.Option("--checkpoint",
                                                       help="scorer checkpoint")] = None,
    ledger_share: Annotated[float, typer.Option(
        "--ledger-share", min=0.0, max=1.0,
        help="learned: share of the freed budget spent listing dropped terms")] = 0.5,
) -> None:
    """Compact a chat history to a token budget; prints {"messages": [...], "stats": {...}}."""
    from switchyard.compaction import CompactionOptions, Compactor
    from switchyard.core.messages import parse_messages

    try:
        raw = json.loads(input.read_text())
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(f"cannot read JSON from {input}: {exc}", param_hint="--input")
    if isinstance(raw, dict):
        raw = raw.get("messages")
    messages = guard(lambda: parse_messages(raw))
    compactor = guard(lambda: Compactor.load(checkpoint, CompactionOptions(
        strategy=strategy, ledger_share=ledger_share)))
    result = guard(lambda: compactor.compact(messages, budget, model=model))
    typer.echo(json.dumps(result.to_json(), ensure_ascii=False))


def train_compactor(
    out: Annotated[Path | None, typer.Option("--out", help="checkpoint (.json + .safetensors)")] = None,
    data: Annotated[Path | None, typer.Option("--data", envvar="SWITCHYARD_TRAJECTORIES",
                                                 help="trajectories folder")] = None,
    epochs: Annotated[int, typer.Option("--epochs")] = 30,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Retrain the compactor's scorer on real trajectories (the bundled checkpoint by default)."""
    from switchyard.compaction.train import TrainConfig, train

    scorer = train(out, root=data, cfg=TrainConfig(epochs=epochs, seed=seed))
    typer.echo(json.dumps(scorer.meta["metrics"], indent=2))
