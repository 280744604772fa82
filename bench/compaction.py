"""Compaction benchmark: evidence kept vs compression (learned vs truncation vs observation
masking, on held-out trajectories), a needle probe, and timing on a 128k-token history.

    .venv/bin/python bench/compaction.py [--quick | --timing]

Prints a table and writes bench/results/compaction.json (with the commit id).
"""

from __future__ import annotations

import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from switchyard.compaction import CompactionOptions, Compactor
from switchyard.compaction.evidence import compactable_budget, evaluate, whole_budget
from switchyard.compaction.terms import terms_of
from switchyard.compaction.trajectories import is_held_out, load_all
from switchyard.core.messages import Message, ToolCall
from switchyard.core.tokens import counter_for

RATIOS = (2.0, 4.0, 8.0)


def compactors() -> dict[str, Compactor]:
    no_sum = {"extractive_summary": False}
    return {
        "learned": Compactor.load(),
        "learned (no ledger)": Compactor.load(options=CompactionOptions(ledger_share=0.0)),
        "learned (no summary)": Compactor.load(options=CompactionOptions(**no_sum)),
        "truncate": Compactor.load(options=CompactionOptions(strategy="truncate", **no_sum)),
        "observation_mask": Compactor.load(
            options=CompactionOptions(strategy="observation_mask", **no_sum)),
    }


def evidence(comps: dict[str, Compactor], held: list[list[Message]], mode: str) -> dict:
    budget_of = compactable_budget if mode == "compactable" else whole_budget
    out = {}
    for name, c in comps.items():
        rep = evaluate(held, lambda h, b, c=c: c.compact(h, b), RATIOS, budget_of=budget_of)
        out[name] = rep.to_json()
    return out


def needle_history(rng: random.Random, n_groups: int, n_needles: int) -> tuple[list[Message], list[str]]:
    """Facts planted early in a long agent history; the final question names their keys."""
    msgs = [Message("system", "You are a coding agent with a bash tool."),
            Message("user", "Audit the service configuration and report the settings I ask for.")]
    keys = [f"setting_{rng.randrange(10**6):06d}" for _ in range(n_needles)]
    values = [f"VAL{rng.randrange(16**6):06X}" for _ in range(n_needles)]
    for g in range(n_groups):
        lines = [f"{rng.randrange(10**4)}: cfg_{rng.randrange(10**5)} = item_{rng.randrange(10**5)}"
                 for _ in range(60)]
        if g < n_needles:  # planted in the first groups
            lines.insert(rng.randrange(60), f"{keys[g]} = {values[g]}")
        call = ToolCall(f"call_{g}", "bash", json.dumps({"cmd": f"cat conf/part_{g}.ini"}))
        msgs += [Message("assistant", f"Reading part {g}.", tool_calls=(call,)),
                 Message("tool", "\n".join(lines), tool_call_id=f"call_{g}")]
    msgs.append(Message("user", "What are " + ", ".join(keys) + " set to?"))
    return msgs, values


def needle(comps: dict[str, Compactor], trials: int) -> dict:
    rng = random.Random(0)
    cases = [needle_history(rng, 40, 3) for _ in range(trials)]
    counter = counter_for(None)
    out: dict = {}
    for name, c in comps.items():
        out[name] = {}
        for r in RATIOS:
            found = total = 0
            for msgs, values in cases:
                res = c.compact(msgs, counter.messages(msgs) // int(r))
                visible = set().union(*(terms_of(m.text()) for m in res.messages))
                found += sum(v in visible for v in values)
                total += len(values)
            out[name][str(r)] = round(found / total, 4)
    return out


def needle_with_recall(comp: Compactor, trials: int, recall_tokens: int = 1500) -> dict:
    """The pipeline's path: dropped chunks go to a real Index, and the final question recalls
    them (hybrid search, the recall step's token budget) before the model sees the history."""
    import tempfile

    from switchyard.retrieval import Index

    rng = random.Random(0)
    cases = [needle_history(rng, 40, 3) for _ in range(trials)]
    counter = counter_for(None)
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp, Index.open(Path(tmp)) as index:
        for r in RATIOS:
            found = total = 0
            for i, (msgs, values) in enumerate(cases):
                ns = f"needle-{r}-{i}"
                res = comp.compact(msgs, counter.messages(msgs) // int(r), namespace=ns,
                                   sink=index)
                texts = [m.text() for m in res.messages]
                if index.has_chunks(ns):
                    spent = 0
                    for hit in index.search(msgs[-1].content or "", namespaces=[ns], k=8):
                        spent += counter.count(hit.chunk.text)
                        if spent > recall_tokens:
                            break
                        texts.append(hit.chunk.text)
                visible = set().union(*(terms_of(t) for t in texts))
                found += sum(v in visible for v in values)
                total += len(values)
            out[str(r)] = round(found / total, 4)
    return out


def long_history(trajs, target: int) -> list[Message]:
    """A ~target-token agent history stitched from real tool outputs and actions."""
    counter = counter_for(None)
    msgs = [m for m in trajs[0].messages[:2]]
    bodies = [m.content or "" for t in trajs for m in t.messages[2:] if m.role in ("tool", "user")
              and len(m.content or "") > 400]
    i = 0
    while counter.messages(msgs) < target:
        call = ToolCall(f"call_{i}", "bash", json.dumps({"cmd": f"step {i}"}))
        msgs += [Message("assistant", f"Step {i}: looking further.", tool_calls=(call,)),
                 Message("tool", bodies[i % len(bodies)] + f"\n(step {i})", tool_call_id=f"call_{i}")]
        i += 1
    return msgs


def _clear_caches(counter) -> None:
    """Cold: nothing counted, parsed, split or featurised yet."""
    from switchyard.compaction import features, segment, summary
    from switchyard.compaction import terms as terms_mod
    from switchyard.compaction.strategies import base

    counter.clear()
    summary.term_cost.cache_clear()
    terms_mod.terms_of._cache.clear()
    segment._SPLITS.clear()
    segment._IDS.clear()
    segment._MESSAGES.clear()
    features._VOCAB.clear()
    base._CHUNKS.clear()


def _timed(fn) -> tuple[float, float]:
    """Wall and CPU (all threads of the process) milliseconds of one call."""
    t0, c0 = time.monotonic(), time.process_time()
    fn()
    return (time.monotonic() - t0) * 1000, (time.process_time() - c0) * 1000


def timing(comps: dict[str, Compactor], trajs, reps: int) -> dict:
    """Cold (caches cleared) and repeat calls (agent loop: same history plus one new turn);
    best, median and worst wall time of several runs, since the machine is shared, and the
    median CPU time (the tokenizer's worker threads included), which load disturbs less."""
    msgs = long_history(trajs, 128_000)
    counter = counter_for(None)
    tokens = counter.messages(msgs)
    out = {"history_tokens": tokens, "messages": len(msgs)}
    for name in ("learned", "truncate", "observation_mask"):
        c = comps[name]
        cold, warm = [], []
        for _ in range(reps):
            _clear_caches(counter)
            cold.append(_timed(lambda c=c: c.compact(msgs, tokens // 4)))
        for k in range(reps):
            nxt = msgs + [Message("assistant", f"Next step {k}.")]
            warm.append(_timed(lambda c=c, nxt=nxt: c.compact(nxt, tokens // 4)))
        out[name] = {}
        for kind, runs in (("cold", cold), ("warm", warm)):
            walls = [w for w, _ in runs]
            for stat, f in (("best", min), ("median", statistics.median), ("worst", max)):
                out[name][f"{kind}_{stat}_ms"] = round(f(walls), 1)
            out[name][f"{kind}_cpu_median_ms"] = round(statistics.median(c for _, c in runs), 1)
    out["learned_vs_truncate_warm_best"] = round(
        out["learned"]["warm_best_ms"] / out["truncate"]["warm_best_ms"], 2)
    out["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return out


def timing_only() -> None:
    """`--timing`: only the 128k timing, written into the existing results file."""
    out = Path(__file__).parent / "results" / "compaction.json"
    results = json.loads(out.read_text()) if out.is_file() else {}
    results["timing"] = timing(compactors(), load_all(), 21)
    results["timing"]["commit"] = commit()
    print("timing:", json.dumps(results["timing"], indent=1))
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def table(title: str, rows: dict, key: str) -> None:
    print(f"\n{title}")
    print(f"{'strategy':24}" + "".join(f"{str(r) + 'x':>10}" for r in RATIOS))
    for name, per in rows.items():
        print(f"{name:24}" + "".join(
            f"{(per[str(r)][key] if isinstance(per[str(r)], dict) else per[str(r)]):>10.3f}"
            for r in RATIOS))


def main() -> None:
    if "--timing" in sys.argv:
        timing_only()
        return
    quick = "--quick" in sys.argv
    trajs = load_all()
    held = [t.messages for t in trajs if is_held_out(t)]
    if quick:
        held = held[:12]
    comps = compactors()
    t0 = time.monotonic()
    results = {"commit": commit(), "held_out_trajectories": len(held)}
    results["evidence_compactable"] = evidence(comps, held, "compactable")
    results["evidence_whole"] = evidence(comps, held, "whole")
    results["needle"] = needle(comps, 5 if quick else 20)
    results["needle"]["learned + recall"] = needle_with_recall(comps["learned"], 5 if quick else 20)
    results["timing"] = timing(comps, trajs, 3 if quick else 7)
    results["bench_seconds"] = round(time.monotonic() - t0, 1)
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    ev = results["evidence_compactable"]
    table("evidence kept (ratio on the compactable part)", ev, "evidence_kept")
    table("evidence kept, droppable terms only", ev, "droppable_evidence_kept")
    table("evidence kept verbatim (placeholders and their ledgers not counted)", ev,
          "verbatim_evidence_kept")
    table("evidence kept (ratio on the whole history, feasible points)",
          results["evidence_whole"], "evidence_kept")
    table("needle facts surviving", results["needle"], "")
    any_r = str(RATIOS[0])
    print(f"\ncut points: {ev['learned'][any_r]['cut_points']} compactable, "
          f"{results['evidence_whole']['learned'][any_r]['cut_points']} whole@2x")
    print("timing:", json.dumps(results["timing"]))
    out = Path(__file__).parent / "results" / "compaction.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
