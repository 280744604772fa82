"""Responses front door vs Chat Completions front door, same proxy, same upstream, same run.

Both doors run the same pipeline; the difference is the Responses translation (items ->
messages, deltas -> typed SSE events) and the per-response store write. Prints p50/p99 and
requests/s per door for a short prompt and a 40-turn tool-calling history, plain and
streamed, and the ratio Responses/Chat. Also times the in-process translation of a 200-item
history. Usage: python bench/responses.py [--requests 400] [--concurrency 1 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.proxy import fake_upstream_process, load, measure, proxy_process, write_results

SYSTEM = "You are a helpful coding agent."
TASK = "Rename the function parse_cfg to parse_config in src/app/config.py and its callers."


def history(turns: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The same agent history as chat messages and as Responses items."""
    chat: list[dict[str, Any]] = [{"role": "user", "content": TASK}]
    items: list[dict[str, Any]] = [{"role": "user", "content": TASK}]
    for i in range(turns):
        call_id, args = f"call_{i}", json.dumps({"command": ["grep", "-rn", f"parse_cfg_{i}"]})
        out = f"src/app/module_{i}.py:{i + 10}: value = parse_cfg_{i}(path)\n" * 3
        chat += [{"role": "assistant", "content": None, "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": "shell",
                                                             "arguments": args}}]},
                 {"role": "tool", "tool_call_id": call_id, "content": out}]
        items += [{"type": "function_call", "call_id": call_id, "name": "shell",
                   "arguments": args},
                  {"type": "function_call_output", "call_id": call_id, "output": out}]
    chat.append({"role": "user", "content": "Now summarise."})
    items.append({"role": "user", "content": "Now summarise."})
    return chat, items


def bodies(turns: int) -> tuple[dict[str, Any], dict[str, Any]]:
    chat, items = history(turns)
    tool = {"name": "shell", "description": "Run a command",
            "parameters": {"type": "object", "properties": {"command": {"type": "array"}}}}
    return ({"model": "switchyard/auto", "messages": [{"role": "system", "content": SYSTEM},
                                                      *chat],
             "tools": [{"type": "function", "function": tool}]},
            {"model": "switchyard/auto", "instructions": SYSTEM, "input": items,
             "tools": [{"type": "function", **tool}], "store": True})


def measure_pair(a: tuple[str, dict[str, Any]], b: tuple[str, dict[str, Any]],
                 concurrency: int, total: int, rounds: int = 6) -> tuple[dict, dict]:
    """A and B in alternating rounds (ABAB...), so load from other processes hits both alike;
    each figure is the median over rounds."""
    for url, body in (a, b):
        asyncio.run(load(url, body, concurrency, 20))  # warm-up
    runs: tuple[list[dict[str, float]], list[dict[str, float]]] = ([], [])
    for _ in range(rounds):
        for side, (url, body) in enumerate((a, b)):
            runs[side].append(measure(url, body, concurrency, max(total // rounds, 10)))
    return tuple({k: statistics.median(r[k] for r in side) for k in side[0]}  # type: ignore[return-value]
                 for side in runs)


def translation_us(turns: int, reps: int = 200) -> tuple[float, float]:
    """In-process: Responses items -> messages vs parsing the same chat messages (µs)."""
    from switchyard.core.messages import parse_messages
    from switchyard.server.http.responses.translate import items_to_messages

    chat, items = history(turns)
    t0 = time.perf_counter()
    for _ in range(reps):
        items_to_messages(items)
    responses = (time.perf_counter() - t0) / reps * 1e6
    t0 = time.perf_counter()
    for _ in range(reps):
        parse_messages(chat)
    return responses, (time.perf_counter() - t0) / reps * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--compaction", action="store_true",
                        help="keep compaction on (off by default: both doors share it anyway)")
    args = parser.parse_args()
    if not args.compaction:  # the proxy subprocess reads its config overrides from the env
        os.environ["SWITCHYARD_COMPACTION__ENABLED"] = "false"
    resp_us, chat_us = translation_us(100)
    print(f"translate 200-item history: responses {resp_us:7.1f} us | chat parse "
          f"{chat_us:7.1f} us | ratio x{resp_us / chat_us:.2f}", flush=True)
    results = []
    with (fake_upstream_process() as upstream_port, tempfile.TemporaryDirectory() as tmp,
          proxy_process(upstream_port, "off", Path(tmp) / "off") as port):
        base = f"http://127.0.0.1:{port}/v1"
        for turns in (0, 40):
            chat_body, resp_body = bodies(turns)
            for stream in (False, True):
                cb = dict(chat_body, stream=stream)
                if stream:
                    cb["stream_options"] = {"include_usage": True}
                rb = dict(resp_body, stream=stream)
                for c in args.concurrency:
                    chat, resp = measure_pair((base + "/chat/completions", cb),
                                              (base + "/responses", rb), c,
                                              args.requests)
                    results.append({"turns": turns, "stream": stream, "concurrency": c,
                                    "chat": chat, "responses": resp,
                                    "p50_ratio": resp["p50_ms"] / chat["p50_ms"],
                                    "rps_ratio": resp["rps"] / chat["rps"]})
                    r = results[-1]
                    print(f"turns={turns:2} stream={stream!s:5} c={c:2} | chat "
                          f"{chat['rps']:6.0f} rps p50 {chat['p50_ms']:6.2f} ms | "
                          f"responses {resp['rps']:6.0f} rps p50 {resp['p50_ms']:6.2f} "
                          f"ms p99 {resp['p99_ms']:6.2f} ms | p50 x{r['p50_ratio']:.2f}"
                          f", rps x{r['rps_ratio']:.2f}", flush=True)
    write_results("responses", {"translate_us": {"responses": resp_us, "chat": chat_us},
                                "results": results})


if __name__ == "__main__":
    main()
