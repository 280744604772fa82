"""Proxy overhead: the same load sent straight to the fake upstream, through Switchyard and,
where its proxy extras are installed, through the LiteLLM proxy.

Each side runs in its own process (fake upstream, proxies, load generator), all on loopback.
Prints requests/s, p50, p99 and p99.9 per concurrency and mode, and the ratios against the
direct baseline measured in the same run; `--workers 1 2` serves Switchyard with 1 then 2
worker processes. Usage: python bench/proxy.py [--requests 2000] [--quick] [--workers 1 2]
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
            "p99_ms": _quantile(lat, 0.99) * 1000, "p999_ms": _quantile(lat, 0.999) * 1000}


def _quantile(ordered: list[float], q: float) -> float:
    return ordered[max(int(len(ordered) * q) - 1, 0)]


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
                  extra: dict[str, Any] | None = None, workers: int = 1, *,
                  deployment: dict[str, Any] | None = None) -> Iterator[int]:
    """`switchyard serve` in its own process(es) on the fake upstream (plus `extra` top-level
    config sections, and `deployment` settings for both deployments, e.g. responses_api);
    its HTTP port."""
    port = free_port()
    base = f"http://127.0.0.1:{upstream_port}/v1"
    more = deployment or {}
    config = {
        "server": {"http_port": port, "grpc_port": free_port(), "data_dir": str(data_dir),
                   "workers": workers},
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
    with _running(command, f"http://127.0.0.1:{port}/readyz"):  # warm
        yield port


LITELLM_MISSING = "LiteLLM proxy: not measured, its extras are missing (pip install 'litellm[proxy]')"


def litellm_proxy_available(python: str) -> bool:
    probe = subprocess.run([python, "-c", "import litellm.proxy.proxy_server"],
                           cwd=ROOT, capture_output=True, check=False)
    return probe.returncode == 0


@contextlib.contextmanager
def litellm_proxy_process(python: str, upstream_port: int, data_dir: Path) -> Iterator[int]:
    """`litellm --config` (the installed package's proxy) on the fake upstream; its port."""
    port = free_port()
    base = f"http://127.0.0.1:{upstream_port}/v1"
    config = {"model_list": [{"model_name": BODY["model"], "litellm_params": {
        "model": "openai/fake-fast", "api_base": base, "api_key": "unused"}}]}
    path = data_dir / "litellm.yaml"
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    command = [python, "-m", "litellm.proxy.proxy_cli", "--config", str(path),
               "--host", "127.0.0.1", "--port", str(port)]
    with _running(command, f"http://127.0.0.1:{port}/health/liveliness"):
        yield port


@contextlib.contextmanager
def _running(command: list[str], ready_url: str) -> Iterator[None]:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_http(ready_url, timeout=300, ok_only=True)
        yield
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


def _row(name: str, m: dict[str, float], base: dict[str, float] | None = None) -> str:
    ratios = "" if base is None else (f" | p50 {m['p50_ms'] - base['p50_ms']:+6.2f} ms, "
                                      f"throughput x{m['rps'] / base['rps']:.2f}")
    return (f"  {name:18} {m['rps']:7.0f} rps  p50 {m['p50_ms']:7.2f}  p99 {m['p99_ms']:7.2f}  "
            f"p99.9 {m['p999_ms']:7.2f} ms  p99/p50 {m['p99_ms'] / m['p50_ms']:5.1f}{ratios}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--quick", action="store_true", help="300 requests per cell")
    parser.add_argument("--routers", nargs="+", default=["off", "mlp"])
    parser.add_argument("--workers", type=int, nargs="+", default=[1],
                        help="Switchyard worker counts to measure, e.g. 1 2")
    parser.add_argument("--no-litellm", action="store_true", help="skip the LiteLLM proxy")
    parser.add_argument("--litellm-python", default=sys.executable,
                        help="the interpreter whose litellm[proxy] to run (a venv of its own "
                             "keeps the proxy extras out of Switchyard's)")
    args = parser.parse_args()
    total = 300 if args.quick else args.requests
    cells = [(stream, c) for stream in (False, True) for c in args.concurrency]
    with_litellm = not args.no_litellm and litellm_proxy_available(args.litellm_python)
    if not args.no_litellm and not with_litellm:
        print(LITELLM_MISSING, flush=True)
    print(f"load average {os.getloadavg()[0]:.2f} at start", flush=True)

    results = []
    with fake_upstream_process() as upstream_port, tempfile.TemporaryDirectory() as tmp:
        direct = f"http://127.0.0.1:{upstream_port}/v1/chat/completions"
        litellm: dict[tuple[bool, int], dict[str, float]] = {}
        if with_litellm:
            with litellm_proxy_process(args.litellm_python, upstream_port,
                                       Path(tmp) / "litellm") as port:
                for stream, c in cells:
                    url = f"http://127.0.0.1:{port}/v1/chat/completions"
                    litellm[stream, c] = measure(url, chat_body(stream), c, total, warmup=50)
        for router in args.routers:
            for workers in args.workers:
                data = Path(tmp) / f"{router}-{workers}"
                with proxy_process(upstream_port, router, data, workers=workers) as port:
                    via = f"http://127.0.0.1:{port}/v1/chat/completions"
                    for stream, c in cells:
                        body = chat_body(stream)
                        base = measure(direct, body, c, total, warmup=50)
                        # every worker loads lazily on its own first requests
                        prox = measure(via, body, c, total, warmup=100 * workers)
                        results.append({
                            "router": router, "workers": workers, "stream": stream,
                            "concurrency": c, "direct": base, "proxy": prox,
                            "litellm": litellm.get((stream, c)),
                            "added_p50_ms": prox["p50_ms"] - base["p50_ms"],
                            "throughput_ratio": prox["rps"] / base["rps"]})
                        print(f"router={router} workers={workers} stream={stream} c={c} "
                              f"(load {os.getloadavg()[0]:.2f})", flush=True)
                        print(_row("direct", base), flush=True)
                        print(_row("switchyard", prox, base), flush=True)
                        if (stream, c) in litellm:
                            print(_row("litellm (earlier)", litellm[stream, c], base), flush=True)
    write_results("proxy", {"results": results, "litellm_measured": with_litellm})


if __name__ == "__main__":
    main()
