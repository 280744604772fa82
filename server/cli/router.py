"""`switchyard train-router` and `switchyard route`: the router's commands.

Heavy imports (torch, the encoder) happen inside the command bodies.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from switchyard.server.cli.support import cleanly


def _print_metrics(validation: dict[str, dict[str, dict[str, Any]]]) -> None:
    typer.echo("left-out families (RouteLLM metrics; CPT in % strong calls):")
    for source, routers in validation.items():
        held = routers["mlp"].get("families", [])
        families = f"{len(held)} families" if source == "all" else ", ".join(held)
        typer.echo(f"  {source}  [held out: {families}]")
        typer.echo(f"    {'router':<14}{'APGR':>8}{'CPT(50%)':>10}{'CPT(80%)':>10}")
        for name, m in routers.items():
            typer.echo(f"    {name:<14}{m['apgr']:>8.3f}{m['cpt50']:>9.1f}%{m['cpt80']:>9.1f}%")


def _print_budget(budget: dict[str, dict[str, Any]]) -> None:
    typer.echo("reasoning budget on left-out families (correct chains; tokens = chars/4):")
    for source, m in budget.items():
        typer.echo(f"  {source:<10}Spearman {m['spearman']:.3f}  tokens saved vs fixed P90 "
                   f"{m['tokens_saved']:+.1%}  coverage {m['coverage_learned']:.1%} "
                   f"(fixed {m['coverage_fixed']:.1%})")


def train_router(
    data_dir: Annotated[Path | None, typer.Option(
        "--data-dir", envvar="SWITCHYARD_ROUTER_DATA",
        help="Folder with the router data sets (router/data.py FILES).")] = None,
    hidden: Annotated[int, typer.Option(
        "--hidden", min=0, help="0: linear heads fitted by ridge (default); N: an MLP.")] = 0,
    ridge_alpha: Annotated[float, typer.Option("--ridge-alpha", min=0.0)] = 100.0,
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="MLP epochs.")] = 40,
    output: Annotated[Path, typer.Option(
        "--output", "-o", help="Checkpoint path (.safetensors; the .json config goes beside it).",
    )] = Path("router-checkpoint.safetensors"),
    seed: Annotated[int, typer.Option("--seed")] = 0,
    thinking_share: Annotated[float, typer.Option(
        "--thinking-share", min=0.0, max=1.0,
        help="Default share of thinking calls to calibrate.")] = 0.5,
    limit: Annotated[int, typer.Option(
        "--limit", min=0, help="Use only N rows per source (0: all).")] = 0,
    crossval: Annotated[int, typer.Option(
        "--crossval", min=0,
        help="Also validate on N left-out-family splits (seeds) and record mean/spread.",
    )] = 5,
    from_log: Annotated[Path | None, typer.Option(
        "--from-log", help="Retrain on this traffic log's paired outcomes (plus the data sets; "
        "a SQLite log, or a Parquet export from 'log export') "
        "and compare with the current checkpoint on the same held-out sessions.")] = None,
    checkpoint: Annotated[Path | None, typer.Option(
        "--checkpoint", help="With --from-log: the checkpoint to compare with (default: bundled).",
    )] = None,
    write: Annotated[bool, typer.Option(
        "--write", help="With --from-log: save the new checkpoint to --output.")] = False,
    log_only: Annotated[bool, typer.Option(
        "--log-only", help="With --from-log: leave the shipped data sets out.")] = False,
    cues: Annotated[bool, typer.Option(
        "--cues", help="Add the lexical task-kind cues (router/cues.py) to the features.")] = False,
    encoder: Annotated[str, typer.Option(
        "--encoder", help="none (default: counts only), minilm-static or minilm.")] = "none",
    device: Annotated[str | None, typer.Option(
        "--device", help="cuda or cpu (default: CUDA when present).")] = None,
    refit_all: Annotated[bool, typer.Option(
        "--refit-all/--split-only",
        help="Save a model refitted on every family (metrics stay the split's).")] = True,
) -> None:
    """Train the router; print PGR/APGR/CPT on left-out families vs random and prompt length."""
    if from_log is not None:
        _train_from_log(from_log, checkpoint, None if log_only else data_dir, output, write,
                        with_datasets=not log_only, seed=seed, hidden=hidden, ridge_alpha=ridge_alpha, epochs=epochs,
                        thinking_share=thinking_share)
        return
    from switchyard.router.checkpoint import save_checkpoint
    from switchyard.router.cues import LEXICAL
    from switchyard.router.data import load_all
    from switchyard.router.errors import RoutingError
    from switchyard.router.features import WITH_REASONING, FeatureSpec
    from switchyard.router.train import TrainConfig, pick_device, train

    try:
        spec = FeatureSpec(encoder=encoder,
                           structural=WITH_REASONING + (LEXICAL if cues else ()))
        import torch

        pick_device(device, torch.cuda.is_available())
    except RoutingError as exc:
        raise typer.BadParameter(exc.message) from exc
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--device") from exc
    examples, data_hash = load_all(data_dir)
    if limit:
        examples = _limit_per_source(examples, limit, seed)
    cfg = TrainConfig(hidden=hidden, ridge_alpha=ridge_alpha, epochs=epochs, seed=seed,
                      default_thinking_share=thinking_share, features=spec, device=device,
                      refit_all=refit_all)
    from switchyard.router.train import featurize_examples

    features = featurize_examples(examples, cfg.features)
    result = train(examples, cfg, data_hash=data_hash, features=features)
    _print_metrics(result.validation)
    _print_budget(result.budget)
    config = result.config
    if crossval:
        config = _with_crossval(examples, cfg, features, seed, crossval, config)
    path = save_checkpoint(result.model, config, output)
    typer.echo(f"trained on {result.device} at {result.samples_per_s:,.0f} samples/s; "
               f"policy {result.config.policy_version}; saved {path}")


def _train_from_log(log: Path, checkpoint: Path | None, data_dir: Path | None, output: Path,
                    write: bool, *, with_datasets: bool, **settings: Any) -> None:
    """Retrain on logged outcomes; write only when asked, after showing the comparison."""
    from switchyard.router.checkpoint import save_checkpoint
    from switchyard.router.log_training import retrain_from_log
    from switchyard.router.train import TrainConfig
    from switchyard.server.traffic.replay_requests import replay_body

    cfg = TrainConfig(seed=settings["seed"], hidden=settings["hidden"],
                      ridge_alpha=settings["ridge_alpha"], epochs=settings["epochs"],
                      default_thinking_share=settings["thinking_share"])
    out = retrain_from_log(log, cfg, checkpoint=checkpoint, data_dir=data_dir,
                           with_datasets=with_datasets, convert=replay_body)
    skipped = ", ".join(f"{k} {v}" for k, v in out.skipped.items()) or "none"
    typer.echo(f"log: {out.paired} requests with outcomes for both models (skipped: {skipped})")
    typer.echo("new checkpoint:")
    _print_metrics(out.result.validation)
    typer.echo("current checkpoint, same held-out rows:")
    _print_metrics(out.current)
    if not write:
        typer.echo(f"not written; pass --write to save it to {output}")
        return
    path = save_checkpoint(out.result.model, out.result.config, output)
    typer.echo(f"policy {out.result.config.policy_version}; saved {path}")


def _with_crossval(examples: list[Any], cfg: Any, features: Any, seed: int, n: int,
                   config: Any) -> Any:
    """Run `n` left-out-family splits, print mean/spread, record them in the config."""
    from dataclasses import replace

    from switchyard.router.crossval import cross_validate

    cv = cross_validate(examples, cfg, features, seeds=range(seed, seed + n))
    typer.echo(f"left-out families over {n} splits (mean +- std):")
    summary: dict[str, Any] = {"seeds": cv.seeds}
    for source, routers in cv.routing.items():
        for name, m in routers.items():
            typer.echo(f"  {source:<12}{name:<14}APGR {m['apgr']['mean']:.3f} +- "
                       f"{m['apgr']['std']:.3f}  CPT(50%) {m['cpt50']['mean']:.1f}% +- "
                       f"{m['cpt50']['std']:.1f}  CPT(80%) {m['cpt80']['mean']:.1f}%")
            summary.setdefault(source, {})[name] = {
                k: {"mean": v["mean"], "std": v["std"]} for k, v in m.items()}
    for source, m in cv.budget.items():
        typer.echo(f"  budget {source:<10}Spearman {m['spearman']['mean']:.3f} +- "
                   f"{m['spearman']['std']:.3f}  tokens saved {m['tokens_saved']['mean']:+.1%}"
                   f" +- {m['tokens_saved']['std']:.1%}")
    summary["budget"] = {source: {k: {"mean": v["mean"], "std": v["std"]} for k, v in m.items()}
                         for source, m in cv.budget.items()}
    return replace(config, training={**config.training, "left_out_crossval": summary})


def _limit_per_source(examples: list[Any], limit: int, seed: int) -> list[Any]:
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for source in sorted({e.source for e in examples}):
        rows = [e for e in examples if e.source == source]
        keep = sorted(rng.choice(len(rows), size=min(limit, len(rows)), replace=False))
        out += [rows[i] for i in keep]
    return out


def _bad_line(path: Path, n: int, message: str) -> NoReturn:
    """One `Error:` line naming the input line; exit 2, as for any bad parameter."""
    typer.echo(f"Error: {path} line {n}: {message}", err=True)
    raise typer.Exit(2)


def _read_requests(path: Path) -> list[tuple[Any, str | None]]:
    """(RouteRequest, draft) per line: a chat request body, plus an optional `draft`, the
    cheap model's answer text."""
    from switchyard.core.errors import ParamError
    from switchyard.core.messages import parse_messages, parse_tools
    from switchyard.router.decision import RouteRequest

    requests = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            body = json.loads(line)
        except json.JSONDecodeError as exc:
            _bad_line(path, n, f"not JSON ({exc})")
        if not isinstance(body, dict):
            _bad_line(path, n, f"a chat request body must be a JSON object; got "
                               f"{type(body).__name__}")
        if "messages" not in body:
            _bad_line(path, n, "missing field 'messages' (the chat request's messages)")
        draft = body.get("draft")
        if draft is not None and not isinstance(draft, str):
            _bad_line(path, n, f"'draft' must be a string (the cheap model's answer text); "
                               f"got {type(draft).__name__}")
        fmt = body.get("response_format")
        try:
            requests.append((RouteRequest(
                messages=tuple(parse_messages(body.get("messages"))),
                tools=tuple(parse_tools(body.get("tools") or [])),
                response_format=fmt.get("type") if isinstance(fmt, dict) else None), draft))
        except ParamError as exc:
            _bad_line(path, n, str(exc))
    return requests


def route(
    input: Annotated[Path, typer.Option(
        "--input", "-i", exists=True, dir_okay=False,
        help="JSONL: one OpenAI chat request body per line.")],
    thinking_share: Annotated[float | None, typer.Option(
        "--thinking-share", min=0.0, max=1.0)] = None,
    checkpoint: Annotated[Path | None, typer.Option(
        "--checkpoint", help="Default: the bundled one.")] = None,
    router_name: Annotated[str, typer.Option(
        "--router", help="mlp, random, always, never, off.")] = "mlp",
    escalation_share: Annotated[float | None, typer.Option(
        "--escalation-share", min=0.0, max=1.0,
        help="Cascade: calibrate `escalate` to this share (default: the checkpoint's).")] = None,
    escalation_checkpoint: Annotated[Path | None, typer.Option(
        "--escalation-checkpoint", help="Cascade scorer; default: the bundled one.")] = None,
) -> None:
    """Print one JSON routing decision per request line: p_hard, and p_escalate when the
    line carries a "draft" (the cheap model's answer) to score for cascade mode."""
    from switchyard.router import DraftInput, EscalationScorer
    from switchyard.router.loader import load_router

    lines = _read_requests(input)
    router = load_router(router_name, checkpoint=checkpoint, thinking_share=thinking_share)
    scorer = None
    if any(draft is not None for _, draft in lines):
        scorer = EscalationScorer.load(escalation_checkpoint, escalation_share)
    decisions = router.decide_batch([request for request, _ in lines])
    for (request, draft), d in zip(lines, decisions):
        out = {"model": d.model, "thinking": d.thinking, "p_hard": d.p_hard,
               "reasoning_effort": d.reasoning_effort, "budget_tokens": d.budget_tokens,
               "policy_version": d.policy_version}
        if draft is not None and scorer is not None:
            e = scorer.decide(DraftInput(request.messages, draft, tools=request.tools,
                                         response_format=request.response_format))
            out.update(p_escalate=e.p_escalate, escalate=e.escalate,
                       escalation_policy_version=e.policy_version)
        typer.echo(json.dumps(out))


def register(app: typer.Typer) -> None:
    app.command("train-router")(cleanly(train_router))  # no data: one Error: line
    app.command("route")(route)
