"""`switchyard compact` and `switchyard train-compactor` (wired in by server/cli.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    app.command("compact")(compact)
    app.command("train-compactor")(train_compactor)


def compact(
    input: Path = typer.Option(..., "--input", "-i", help="JSON: {'messages': [...]} or a list"),
    budget: int = typer.Option(..., "--budget", "-b", help="token budget for the history"),
    model: Optional[str] = typer.Option(None, "--model", "-m", envvar="SWITCHYARD_MODEL",
                                        help="target model (picks the tokenizer)"),
    strategy: str = typer.Option("learned", "--strategy", "-s",
                                 help="learned, truncate or observation_mask"),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="scorer checkpoint"),
) -> None:
    """Compact a chat history to a token budget; prints {"messages": [...], "stats": {...}}."""
    from compaction import Compactor, CompactionOptions
    from retrieval.chat import parse_messages

    try:
        raw = json.loads(input.read_text())
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(f"cannot read JSON from {input}: {exc}", param_hint="--input")
    if isinstance(raw, dict):
        raw = raw.get("messages")
    messages = parse_messages(raw)
    compactor = Compactor.load(checkpoint, CompactionOptions(strategy=strategy))
    result = compactor.compact(messages, budget, model=model)
    typer.echo(json.dumps(result.to_json(), ensure_ascii=False))


def train_compactor(
    out: Optional[Path] = typer.Option(None, "--out", help="checkpoint path (.json + .pt)"),
    data: Optional[Path] = typer.Option(None, "--data", envvar="SWITCHYARD_TRAJECTORIES",
                                        help="trajectories folder"),
    epochs: int = typer.Option(30, "--epochs"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Retrain the compactor's scorer on real trajectories (the bundled checkpoint by default)."""
    from compaction.train import TrainConfig, train

    scorer = train(out, root=data, cfg=TrainConfig(epochs=epochs, seed=seed))
    typer.echo(json.dumps(scorer.meta["metrics"], indent=2))
