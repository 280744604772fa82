"""The traffic log survives `kill -9` under load: a real `switchyard serve` process, killed
mid-load and restarted on the same data dir, has a complete row for every request that got a
200, no partial row, and starts cleanly."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import yaml

from tests.fake_upstream import FakeUpstream
from tests.services import free_port

BODY = {"model": "switchyard/auto", "messages": [{"role": "user", "content": "durable?"}]}


def start_server(config: Path, port: int, log: Path, *flags: str) -> subprocess.Popen[bytes]:
    cli = Path(sys.executable).with_name("switchyard")
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    proc = subprocess.Popen([str(cli), "serve", "--config", str(config), "--http-port",
                             str(port), "--grpc-port", "0", *flags], env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("switchyard serve did not start: " + log.read_text()[-3000:])


def write_config(tmp_path: Path, fake: FakeUpstream) -> Path:
    deployment = {"api_base": fake.base_url, "timeout": 5, "context_window": 32000}
    config = {
        "server": {"data_dir": str(tmp_path / "data")},
        "models": {"thinking": [{"model": "openai/fake-think", "name": "fake-think",
                                 **deployment}],
                   "non_thinking": [{"model": "openai/fake-fast", "name": "fake-fast",
                                     **deployment}]},
        "routing": {"router": "off"},
        "compaction": {"enabled": False},
        "recall": {"enabled": False},
    }
    path = tmp_path / "switchyard.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_kill_9_under_load_loses_no_answered_request(tmp_path: Path,
                                                     fake_upstream: FakeUpstream) -> None:
    fake_upstream.latency = 0.005
    config, port, log = write_config(tmp_path, fake_upstream), free_port(), tmp_path / "srv.log"
    proc = start_server(config, port, log)
    answered: list[str] = []
    stop = threading.Event()

    def client(worker: int) -> None:
        with httpx.Client(timeout=5) as http:
            for i in range(10_000):
                if stop.is_set():
                    return
                rid = f"w{worker}-{i}"
                try:
                    r = http.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=BODY,
                                  headers={"x-request-id": rid})
                except httpx.HTTPError:
                    return  # the server died under us
                if r.status_code == 200:
                    answered.append(rid)

    workers = [threading.Thread(target=client, args=(w,)) for w in range(8)]
    for w in workers:
        w.start()
    deadline = time.monotonic() + 20
    while len(answered) < 150 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # mid-load, no chance to flush or close anything
    proc.wait(10)
    stop.set()
    for w in workers:
        w.join(10)
    assert len(answered) >= 50, log.read_text()[-2000:]

    proc = start_server(config, port, log)  # restarts cleanly on the same data dir
    try:
        assert httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=BODY,
                          timeout=10).status_code == 200
    finally:
        proc.terminate()
        proc.wait(20)
    db = sqlite3.connect(tmp_path / "data" / "traffic.sqlite")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    rows = {r[0]: r for r in db.execute(
        "SELECT request_id, status, http_status, finished_at, upstream_model, attempts "
        "FROM requests")}
    missing = [rid for rid in answered if rid not in rows]
    assert missing == []
    for rid in answered:  # complete rows: finished, answered, by a named deployment
        _, status, http_status, finished_at, upstream_model, attempts = rows[rid]
        assert (status, http_status) == ("ok", 200) and finished_at > 0
        assert upstream_model and attempts == 1
    # A clean shutdown after restart (uvicorn re-raises the SIGTERM it handled: -15).
    assert proc.returncode in (0, -signal.SIGTERM), log.read_text()[-2000:]
    assert "Traceback" not in log.read_text()
