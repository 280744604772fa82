"""Proxy overhead: the same load sent straight to the fake upstream and through Switchyard.

Each side runs in its own process (fake upstream, proxy, load generator), all on loopback.
Prints requests/s, p50 and p99 per concurrency and mode, and the ratios against the direct
baseline measured in the same run. Usage: python bench/proxy.py [--requests 2000] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parent.parent
BODY = {"model": "switchyard/auto",
        "messages": [{"role": "system", "content": "You are a helpful coding agent."},
                     {"role": "user", "content": "Rename the function parse_cfg to parse_config "
                      "in src/app/config.py and update its callers."}]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60, ok_only: bool = False) -> None:
    """Until `url` answers (with 200 when `ok_only`)."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200 or not ok_only:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def chat_body(stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = dict(BODY, stream=stream)
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


async def load(url: str, body: dict[str, Any], concurrency: int, total: int) -> list[float]:
    """`total` POSTs of `body` from `concurrency` workers; per-request latencies in seconds."""
    latencies: list[float] = []
    queue = iter(range(total))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def worker() -> None:
            for _ in queue:
                t0 = time.perf_counter()
                async with session.post(url, json=body) as r:
                    await r.read()
                    if r.status != 200:
                        raise RuntimeError(f"HTTP {r.status}: {await r.text()}")
                latencies.append(time.perf_counter() - t0)
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def measure(url: str, body: dict[str, Any], concurrency: int, total: int,
            warmup: int = 0) -> dict[str, float]:
    if warmup:
        asyncio.run(load(url, body, concurrency, warmup))
    t0 = time.perf_counter()
    lat = sorted(asyncio.run(load(url, body, concurrency, total)))
    elapsed = time.perf_counter() - t0
    return {"rps": total / elapsed, "p50_ms": statistics.median(lat) * 1000,
            "p99_ms": lat[max(int(len(lat) * 0.99) - 1, 0)] * 1000}


@contextlib.contextmanager
def fake_upstream_process() -> Iterator[int]:
    """The fake upstream in its own process (so it does not share the proxy's GIL); its port."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tests.fake_upstream", str(port)],
                            cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}/v1/models")
        yield port
    finally:
        proc.terminate()


@contextlib.contextmanager
def proxy_process(upstream_port: int, router: str, data_dir: Path,
                  extra: dict[str, Any] | None = None, *,
                  deployment: dict[str, Any] | None = None) -> Iterator[int]:
    """`switchyard serve` in its own process on the fake upstream (plus `extra` top-level
    config sections, and `deployment` settings for both deployments, e.g. responses_api);
    its HTTP port."""
    port = free_port()
    base = f"http://127.0.0.1:{upstream_port}/v1"
    more = deployment or {}
    config = {
        "server": {"http_port": port, "grpc_port": free_port(), "data_dir": str(data_dir)},
        "models": {"thinking": [{"model": "openai/fake-think", "api_base": base, **more}],
                   "non_thinking": [{"model": "openai/fake-fast", "api_base": base,
                                     **more}]},
        "routing": {"router": router},
        **(extra or {}),
    }
    path = data_dir / f"config-{router}.yaml"
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "switchyard.server.cli.main", "serve", "--config", str(path)]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz", timeout=300, ok_only=True)  # warm
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def write_results(name: str, figures: dict[str, Any]) -> Path:
    """bench/results/<name>.json with the commit and the CPU count beside the figures."""
    out = ROOT / "bench" / "results" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], check=False, cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    out.write_text(json.dumps({"commit": commit, "cpus": os.cpu_count(), **figures}, indent=2))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--quick", action="store_true", help="300 requests per cell")
    parser.add_argument("--routers", nargs="+", default=["off", "mlp"])
    args = parser.parse_args()
    total = 300 if args.quick else args.requests

    results = []
    with fake_upstream_process() as upstream_port, tempfile.TemporaryDirectory() as tmp:
        direct = f"http://127.0.0.1:{upstream_port}/v1/chat/completions"
        for router in args.routers:
            with proxy_process(upstream_port, router, Path(tmp) / router) as port:
                via = f"http://127.0.0.1:{port}/v1/chat/completions"
                for stream in (False, True):
                    for c in args.concurrency:
                        body = chat_body(stream)
                        base = measure(direct, body, c, total, warmup=50)
                        prox = measure(via, body, c, total, warmup=50)
                        results.append({
                            "router": router, "stream": stream, "concurrency": c,
                            "direct": base, "proxy": prox,
                            "added_p50_ms": prox["p50_ms"] - base["p50_ms"],
                            "throughput_ratio": prox["rps"] / base["rps"]})
                        r = results[-1]
                        print(f"router={router:4} stream={stream!s:5} c={c:3} | direct "
                              f"{base['rps']:7.0f} rps p50 {base['p50_ms']:6.2f} ms | proxy "
                              f"{prox['rps']:7.0f} rps p50 {prox['p50_ms']:6.2f} ms p99 "
                              f"{prox['p99_ms']:6.2f} ms | added p50 "
                              f"{r['added_p50_ms']:+6.2f} ms, throughput x"
                              f"{r['throughput_ratio']:.2f}", flush=True)
    write_results("proxy", {"results": results})


if __name__ == "__main__":
    main()
