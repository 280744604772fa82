"""Soak: a bounded loopback load through a real `switchyard serve` process, with random
upstream faults (500, 429 + retry-after, hangs past the timeout, malformed bodies, cut
streams) injected by the fake upstream. Prints requests served, outcomes by kind, lost
log rows (client-observed 200s without a row: must be 0) and the server's RSS over time.

    python bench/soak.py                 # 10 minutes
    python bench/soak.py --seconds 90 --concurrency 16 --fault-rate 0.1
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.fake_upstream import FakeUpstream

BODY = {"model": "switchyard/auto", "messages": [{"role": "user", "content": "soak test turn"}]}


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start_server(data: Path, fake: FakeUpstream, port: int) -> subprocess.Popen[bytes]:
    deployment = {"api_base": fake.base_url, "timeout": 1.0, "context_window": 32000}
    config = {"server": {"data_dir": str(data)},
              "models": {"thinking": [{"model": "openai/fake-think", "name": "fake-think",
                                       **deployment}],
                         "non_thinking": [{"model": "openai/fake-fast", "name": "fake-fast",
                                           **deployment}]},
              "routing": {"router": "off"}, "compaction": {"enabled": False},
              "recall": {"enabled": False},
              "upstream": {"num_retries": 1, "backoff_base": 0.02, "cooldown_seconds": 1.0}}
    path = data.parent / "soak.yaml"
    path.write_text(yaml.safe_dump(config))
    cli = Path(sys.executable).with_name("switchyard")
    proc = subprocess.Popen([str(cli), "serve", "--config", str(path), "--http-port", str(port),
                             "--grpc-port", "0"], stdout=(data.parent / "server.log").open("wb"),
                            stderr=subprocess.STDOUT,
                            env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


async def worker(wid: int, url: str, until: float, answered: list[str],
                 outcomes: collections.Counter[str]) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        i = 0
        while time.monotonic() < until:
            i += 1
            rid, stream = f"soak-{wid}-{i}", i % 5 == 0
            try:
                if stream:
                    async with client.stream("POST", url, json={**BODY, "stream": True},
                                             headers={"x-request-id": rid}) as r:
                        last = ""
                        async for line in r.aiter_lines():
                            last = line or last
                        kind = f"stream {r.status_code}"
                        if r.status_code == 200 and '"error"' in last:
                            kind = "stream 200 + error event"
                else:
                    r = await client.post(url, json=BODY, headers={"x-request-id": rid})
                    kind = str(r.status_code)
                    if r.status_code >= 400:
                        kind += " " + r.json()["error"]["type"]
            except httpx.HTTPError as exc:
                outcomes[f"client error {type(exc).__name__}"] += 1
                continue
            outcomes[kind] += 1
            if r.status_code == 200:
                answered.append(rid)


async def load(url: str, seconds: float, concurrency: int, pid: int) -> dict[str, object]:
    answered: list[str] = []
    outcomes: collections.Counter[str] = collections.Counter()
    until = time.monotonic() + seconds
    rss: list[float] = [rss_mib(pid)]

    async def sample() -> None:
        while time.monotonic() < until:
            await asyncio.sleep(min(10.0, seconds / 6))
            rss.append(rss_mib(pid))

    await asyncio.gather(sample(), *(worker(w, url, until, answered, outcomes)
                                     for w in range(concurrency)))
    return {"answered": answered, "outcomes": outcomes, "rss": rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--fault-rate", type=float, default=0.1)
    parser.add_argument("--port", type=int, default=18431)
    args = parser.parse_args()
    fake = FakeUpstream(record=False, latency=0.01, fault_rate=args.fault_rate, fault_hang=1.5,
                        seed=7).start()
    tmp = Path(tempfile.mkdtemp(prefix="switchyard-soak-"))
    proc = start_server(tmp / "data", fake, args.port)
    url = f"http://127.0.0.1:{args.port}/v1/chat/completions"
    try:
        for _ in range(50):  # warm-up, so RSS at start is after first-request allocations
            httpx.post(url, json=BODY, timeout=10)
        started = time.monotonic()
        result = asyncio.run(load(url, args.seconds, args.concurrency, proc.pid))
        elapsed = time.monotonic() - started
        metrics = httpx.get(f"http://127.0.0.1:{args.port}/metrics", timeout=10).text
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        fake.stop()
    db = sqlite3.connect(tmp / "data" / "traffic.sqlite")
    rows = {r[0]: r[1] for r in db.execute("SELECT request_id, status FROM requests")}
    answered, outcomes, rss = result["answered"], result["outcomes"], result["rss"]
    lost = [rid for rid in answered if rid not in rows]  # type: ignore[union-attr]
    soak_rows = sum(1 for rid in rows if rid.startswith("soak-"))
    served = sum(outcomes.values())  # type: ignore[attr-defined]
    report = {
        "seconds": round(elapsed, 1), "concurrency": args.concurrency,
        "fault_rate": args.fault_rate, "requests": served,
        "requests_per_s": round(served / elapsed, 1), "answered_200": len(answered),
        "outcomes": dict(outcomes.most_common()),  # type: ignore[attr-defined]
        "log_rows": soak_rows, "lost_log_rows": len(lost),
        "rss_mib_start": round(rss[0], 1), "rss_mib_end": round(rss[-1], 1),  # type: ignore[index]
        "rss_mib_samples": [round(x, 1) for x in rss],  # type: ignore[union-attr]
        "upstream_errors": [line for line in metrics.splitlines()
                            if line.startswith("switchyard_upstream_errors_total{")],
        "fallbacks": [line for line in metrics.splitlines()
                      if line.startswith("switchyard_fallbacks_total ")],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
