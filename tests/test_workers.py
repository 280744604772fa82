"""`switchyard serve --workers 2`: two real processes answer on one port and every answered
request has its row in the one shared traffic log."""

from __future__ import annotations

import asyncio
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import httpx
from switchyard.server.workers import listening_socket

from tests.fake_upstream import FakeUpstream
from tests.services import free_port
from tests.test_reliability_durability import BODY, start_server, write_config


def _workers(parent: int) -> list[int]:
    """The parent's spawned worker processes (not multiprocessing's resource tracker)."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return [int(pid) for pid in children
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]


def _holds_open(pid: int, path: Path) -> bool:
    fds = Path(f"/proc/{pid}/fd")
    return any(fd.resolve() == path.resolve() for fd in fds.iterdir() if fd.is_symlink())


def test_two_workers_share_the_port_and_the_traffic_log(tmp_path: Path,
                                                        fake_upstream: FakeUpstream) -> None:
    config, port, log = write_config(tmp_path, fake_upstream), free_port(), tmp_path / "srv.log"
    proc = start_server(config, port, log, "--workers", "2")
    traffic = tmp_path / "data" / "traffic.sqlite"
    answered: list[str] = []

    def client(thread: int) -> None:
        for i in range(40):  # a fresh connection each time, so the kernel spreads them
            rid = f"t{thread}-{i}"
            r = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=BODY,
                           headers={"x-request-id": rid}, timeout=20)
            assert r.status_code == 200, r.text
            answered.append(rid)

    try:
        threads = [threading.Thread(target=client, args=(t,)) for t in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        workers = _workers(proc.pid)
        assert len(workers) == 2, log.read_text()[-2000:]
        assert all(_holds_open(pid, traffic) for pid in workers)  # each its own writer
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert len(answered) == 240
    db = sqlite3.connect(traffic)
    rows = {r[0]: r[1] for r in db.execute("SELECT request_id, http_status FROM requests")}
    assert {rid: rows.get(rid) for rid in answered} == {rid: 200 for rid in answered}
    assert [p for p in workers if Path(f"/proc/{p}").exists()] == []  # SIGTERM stopped all


def test_a_worker_that_cannot_start_stops_the_others(tmp_path: Path,
                                                     fake_upstream: FakeUpstream) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "traffic.sqlite").write_text("not a database")
    config, log = write_config(tmp_path, fake_upstream), tmp_path / "srv.log"
    cli = Path(sys.executable).with_name("switchyard")
    done = subprocess.run([str(cli), "serve", "--config", str(config), "--http-port",
                           str(free_port()), "--grpc-port", "0", "--workers", "2"],
                          check=False, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                          timeout=120)
    assert done.returncode == 1
    assert log.read_text().splitlines()[-1].startswith("Error: worker ")


async def test_worker_sockets_answer_without_nagle_delay() -> None:
    """asyncio turns Nagle off only on sockets that say TCP; a worker's must (else ~40 ms)."""
    nodelay: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def on_connect(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        nodelay.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(on_connect, sock=listening_socket("127.0.0.1", 0))
    async with server:
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(nodelay, 10) == 1
        writer.close()
