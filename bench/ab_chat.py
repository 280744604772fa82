"""Paired A/B of the chat path of two checkouts: does a change cost `/v1/chat/completions`?

Serves both builds at once on one fake upstream and sends them alternating blocks of
sequential requests (concurrency 1), so a busy shared host slows both alike. Reports each
build's median p50 over the blocks and its proxy CPU seconds per 1000 requests (from
/proc, Linux). Run it with the same build twice (A/A) to see the noise floor.

    git worktree add --detach /tmp/sy-main main
    python bench/ab_chat.py --a PYTHON_A:/tmp/sy-main --b .venv/bin/python:. [--blocks 16]

A's interpreter must import `switchyard` from A's checkout (its own editable install).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.proxy import (
    chat_body,
    fake_upstream_process,
    free_port,
    measure,
    wait_http,
    write_results,
)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def serve(python: str, root: Path, upstream_port: int, data_dir: Path) -> tuple[Any, int]:
    port, base = free_port(), f"http://127.0.0.1:{upstream_port}/v1"
    config = {"server": {"http_port": port, "grpc_port": free_port(), "data_dir": str(data_dir)},
              "models": {"thinking": [{"model": "openai/fake-think", "api_base": base}],
                         "non_thinking": [{"model": "openai/fake-fast", "api_base": base}]},
              "routing": {"router": "off"}}
    data_dir.mkdir(parents=True)
    path = data_dir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.Popen([python, "-m", "switchyard.server.cli.main", "serve", "--config",
                             str(path)], cwd=root, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{port}/healthz")
    return proc, port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", required=True, help="PYTHON:ROOT of build A (the baseline)")
    parser.add_argument("--b", required=True, help="PYTHON:ROOT of build B")
    parser.add_argument("--blocks", type=int, default=16, help="alternating blocks per side")
    parser.add_argument("--per-block", type=int, default=300, help="requests per block")
    args = parser.parse_args()
    builds = {name: spec.split(":", 1) for name, spec in (("A", args.a), ("B", args.b))}
    figures: dict[str, Any] = {}
    with fake_upstream_process() as upstream, tempfile.TemporaryDirectory() as tmp:
        servers = {name: serve(py, Path(root).resolve(), upstream, Path(tmp) / name)
                   for name, (py, root) in builds.items()}
        try:
            for stream in (False, True):
                p50s: dict[str, list[float]] = {name: [] for name in servers}
                cpu = dict.fromkeys(servers, 0.0)
                urls = {n: f"http://127.0.0.1:{port}/v1/chat/completions"
                        for n, (_, port) in servers.items()}
                for url in urls.values():
                    measure(url, chat_body(stream), 1, 100, warmup=100)
                for block in range(args.blocks):
                    order = list(servers) if block % 2 == 0 else list(reversed(servers))
                    for name in order:
                        pid = servers[name][0].pid
                        before = cpu_seconds(pid)
                        m = measure(urls[name], chat_body(stream), 1, args.per_block)
                        cpu[name] += cpu_seconds(pid) - before
                        p50s[name].append(m["p50_ms"])
                total = args.blocks * args.per_block
                for name in servers:
                    row = {"p50_ms": statistics.median(p50s[name]),
                           "cpu_ms_per_1000": cpu[name] / total * 1e6}
                    figures[f"{name}_stream={stream}"] = row
                    print(f"stream={stream!s:5} {name} ({builds[name][1]}): p50 "
                          f"{row['p50_ms']:.3f} ms, proxy CPU {row['cpu_ms_per_1000']:.0f} ms "
                          "per 1000 requests")
                ratio = figures[f"B_stream={stream}"]["cpu_ms_per_1000"] / \
                    figures[f"A_stream={stream}"]["cpu_ms_per_1000"]
                print(f"stream={stream!s:5} B/A proxy CPU per request: {ratio:.3f}")
        finally:
            for proc, _ in servers.values():
                proc.terminate()
    write_results("ab_chat", {"a": args.a, "b": args.b, "blocks": args.blocks,
                              "per_block": args.per_block, **figures})


if __name__ == "__main__":
    main()
