"""Scale-out, for real: PostgreSQL and Redis on loopback (tests/services.py: initdb/pg_ctl and
redis-server from the Debian packages), three `switchyard serve` replicas on them behind
HAProxy, and a fake upstream in its own process.

1. req/s through HAProxy with 1, 2 and 3 replicas in its backend (same load each time);
2. a run on 3 replicas during which one is killed with -9: answered requests (HTTP 200 with
   an x-request-id) against rows in PostgreSQL, and what clients saw. Clients retry a failed
   request with the same x-request-id, as an agent harness would, so a retried request is
   still one row;
3. one replica on SQLite vs one on PostgreSQL at concurrency 32, in alternated runs (the
   issue's target: PG at >= 70% of SQLite). Both commit every answered request before it is
   sent; PostgreSQL keeps `synchronous_commit` on, so its commits are also fsynced.

    python bench/scale.py                        # ~3 minutes on 2 cores
    python bench/scale.py --seconds 20 --concurrency 32
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.proxy import fake_upstream_process, write_results
from tests.services import Postgres, Redis, free_port

BODY = {"model": "switchyard/auto", "messages": [{"role": "user", "content": "scale test turn"}]}


@dataclass
class Replica:
    name: str
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Load:
    answered: list[str] = field(default_factory=list)
    client_errors: collections.Counter[str] = field(default_factory=collections.Counter)
    gave_up: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.answered) / self.seconds if self.seconds else 0.0


def start_replica(root: Path, name: str, upstream: str, database_url: str | None,
                  redis_url: str | None) -> Replica:
    deployment = {"api_base": upstream, "timeout": 5.0, "context_window": 32000}
    config = {"server": {"data_dir": str(root / name)},
              "models": {"thinking": [{"model": "openai/fake-think", "name": "fake-think",
                                       **deployment}],
                         "non_thinking": [{"model": "openai/fake-fast", "name": "fake-fast",
                                           **deployment}]},
              "routing": {"router": "off"}, "compaction": {"enabled": False},
              "recall": {"enabled": False}, "limits": {"max_concurrent_per_key": 1000}}
    if database_url:
        config["server"]["database_url"] = database_url
    if redis_url:
        config["server"]["redis_url"] = redis_url
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    cli = Path(sys.executable).with_name("switchyard")
    proc = subprocess.Popen(
        [str(cli), "serve", "--config", str(path), "--http-port", str(port), "--grpc-port", "0"],
        stdout=(root / f"{name}.log").open("wb"), stderr=subprocess.STDOUT,
        env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    return Replica(name, port, proc)


def wait_healthy(replicas: list[Replica], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    for r in replicas:
        while True:
            if r.proc.poll() is not None:
                raise RuntimeError(f"replica {r.name} exited ({r.proc.returncode}); see its log")
            try:
                if httpx.get(f"{r.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"replica {r.name} did not start")
            time.sleep(0.2)


def start_haproxy(root: Path, name: str, replicas: list[Replica]) -> tuple[subprocess.Popen[bytes],
                                                                            int]:
    """HAProxy in front of `replicas`: health checks every 500 ms; a request whose replica
    died before answering is retried on another (retry-on), so clients rarely see it."""
    port = free_port()
    servers = "\n".join(f"    server {r.name} 127.0.0.1:{r.port} check inter 500 fall 2 rise 1"
                        for r in replicas)
    cfg = root / f"{name}.cfg"
    cfg.write_text(f"""global
    maxconn 4096
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response response-timeout 502 503
    option http-buffer-request
frontend front
    bind 127.0.0.1:{port}
    default_backend replicas
backend replicas
    balance roundrobin
    option httpchk GET /healthz
{servers}
""")
    proc = subprocess.Popen(["haproxy", "-f", str(cfg)], stdout=subprocess.DEVNULL,
                            stderr=(root / f"{name}.haproxy.log").open("wb"))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc, port
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"haproxy {name} did not start; see {name}.haproxy.log")


async def run_load(base: str, seconds: float, concurrency: int, tag: str,
                   during: tuple[float, object] | None = None) -> Load:
    """`concurrency` clients for `seconds`; each retries a failed request (same id) up to 5
    times. `during`: (after how many seconds, a callable) run once mid-way (the kill)."""
    out = Load()
    until = time.monotonic() + seconds
    url = f"{base}/v1/chat/completions"

    async def client(wid: int, http: httpx.AsyncClient) -> None:
        i = 0
        while time.monotonic() < until:
            i += 1
            rid = f"{tag}-{wid}-{i}-{uuid.uuid4().hex[:6]}"
            for attempt in range(6):
                try:
                    r = await http.post(url, json=BODY, headers={"x-request-id": rid})
                    if r.status_code == 200:
                        out.answered.append(rid)
                        break
                    out.client_errors[f"HTTP {r.status_code}"] += 1
                except httpx.HTTPError as exc:
                    out.client_errors[type(exc).__name__] += 1
                await asyncio.sleep(0.05 * (attempt + 1))
            else:
                out.gave_up += 1

    async def trigger() -> None:
        if during is not None:
            await asyncio.sleep(during[0])
            await asyncio.to_thread(during[1])  # type: ignore[arg-type]

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:
        started = time.monotonic()
        await asyncio.gather(trigger(), *(client(w, http) for w in range(concurrency)))
        out.seconds = time.monotonic() - started
    return out


def logged(database_url: str, ids: list[str]) -> set[str]:
    import psycopg

    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT request_id FROM requests WHERE status = 'ok' AND "
                            "request_id = ANY(%s)", (ids,)).fetchall()
    return {r[0] for r in rows}


def warm(base: str, n: int = 20) -> None:
    for _ in range(n):
        httpx.post(f"{base}/v1/chat/completions", json=BODY, timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="per measured phase")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3,
                        help="SQLite vs PostgreSQL: alternated runs of seconds/2 each")
    args = parser.parse_args()
    if not shutil.which("haproxy"):
        sys.exit("Error: haproxy is not installed (apt-get install haproxy)")
    root = Path(tempfile.mkdtemp(prefix="switchyard-scale-"))
    pg, redis = Postgres.start(), Redis.start()
    fake = fake_upstream_process()
    upstream = f"http://127.0.0.1:{fake.__enter__()}/v1"
    replicas: list[Replica] = []
    proxies: list[subprocess.Popen[bytes]] = []
    report: dict[str, object] = {"concurrency": args.concurrency, "seconds": args.seconds}
    try:
        replicas = [start_replica(root, f"r{i}", upstream, pg.url, redis.url) for i in (1, 2, 3)]
        wait_healthy(replicas)
        fronts = []
        for n in (1, 2, 3):
            proc, port = start_haproxy(root, f"lb{n}", replicas[:n])
            proxies.append(proc)
            fronts.append(f"http://127.0.0.1:{port}")
        warm(fronts[2], 60)
        rates = {}
        for n, front in zip((1, 2, 3), fronts):
            load = asyncio.run(run_load(front, args.seconds, args.concurrency, f"n{n}"))
            rates[n] = round(load.rate, 1)
            print(f"{n} replica(s): {load.rate:.1f} req/s", flush=True)
        report["req_per_s_by_replicas"] = rates

        victim = replicas[2]
        load = asyncio.run(run_load(fronts[2], args.seconds, args.concurrency, "kill",
                                    during=(args.seconds / 2, victim.kill)))
        found = logged(pg.url, load.answered)
        report["kill_9"] = {
            "killed": victim.name, "killed_exit_code": victim.proc.returncode,
            "answered": len(load.answered), "logged": len(found),
            "answered_not_logged": len(set(load.answered) - found),
            "client_errors_retried": dict(load.client_errors), "gave_up": load.gave_up,
            "req_per_s": round(load.rate, 1)}
        print(json.dumps(report["kill_9"]), flush=True)
        for r in replicas:
            r.stop()
        for p in proxies:
            p.terminate()
        proxies = []

        singles = {engine: start_replica(root, f"single-{engine}", upstream, url, None)
                   for engine, url in (("sqlite", None), ("postgresql", pg.url))}
        replicas += singles.values()
        wait_healthy(list(singles.values()))
        runs: dict[str, list[float]] = {engine: [] for engine in singles}
        for single in singles.values():
            warm(single.url, 60)
        for round_ in range(args.rounds):  # alternated: a busy host slows both alike
            for engine, single in singles.items():
                load = asyncio.run(run_load(single.url, args.seconds / 2, args.concurrency,
                                            f"{engine}{round_}"))
                runs[engine].append(round(load.rate, 1))
                print(f"one replica on {engine}: {load.rate:.1f} req/s", flush=True)
        engines = {engine: statistics.median(rates) for engine, rates in runs.items()}
        report["one_replica_req_per_s"] = {"median": engines, "runs": runs}
        report["postgresql_vs_sqlite"] = round(engines["postgresql"] / engines["sqlite"], 3)
    finally:
        for r in replicas:
            r.stop()
        for p in proxies:
            p.terminate()
        fake.__exit__(None, None, None)
        redis.close()
        pg.close()
    print(json.dumps(report, indent=2))
    print(f"written to {write_results('scale', report)}")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
