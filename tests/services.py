"""Real PostgreSQL and Redis servers on loopback, for tests and bench/scale.py.

PostgreSQL is started with `initdb` + `pg_ctl` on a temp directory (as the `postgres` user
when we are root: the server refuses to run as root), Redis as a plain `redis-server`
process without persistence. Both listen on a free loopback port and are stopped by
`close()`. Missing binaries raise `ServiceUnavailable`, which the fixtures turn into a skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

PG_BIN_DIRS = ("/usr/local/bin", "/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin")


class ServiceUnavailable(RuntimeError):
    """A server binary is not installed here."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_binary(name: str) -> str:
    found = shutil.which(name) or next(
        (str(Path(d) / name) for d in PG_BIN_DIRS if (Path(d) / name).exists()), None)
    if found is None:
        raise ServiceUnavailable(f"PostgreSQL's {name} is not installed "
                                 "(apt-get install postgresql)")
    return found


def _as_postgres(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: drop to the `postgres` user when we are root."""
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


@dataclass
class Postgres:
    root: Path
    port: int
    url: str = ""
    admin_url: str = ""
    _dbs: int = field(default=0, repr=False)

    @classmethod
    def start(cls) -> Postgres:
        initdb, pg_ctl = _pg_binary("initdb"), _pg_binary("pg_ctl")
        root = Path(tempfile.mkdtemp(prefix="switchyard-pg-"))
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
        data = root / "data"
        _run(_as_postgres([initdb, "-D", str(data), "-U", "postgres", "-A", "trust",
                           "--no-sync", "-E", "UTF8"]))
        port = free_port()
        # fsync stays on: the scale bench measures durable commits, as SQLite's writer makes.
        options = (f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c max_connections=200 "
                   "-c shared_buffers=128MB")
        _run(_as_postgres([pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "log"),
                           "-w", "-t", "60", "start"]))
        pg = cls(root, port)
        pg.admin_url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        pg.url = pg.create_database("switchyard")
        return pg

    def create_database(self, name: str | None = None) -> str:
        """A fresh, empty database; returns its URL."""
        import psycopg

        if name is None:
            self._dbs += 1
            name = f"t{self._dbs}_{os.getpid()}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def close(self) -> None:
        subprocess.run(_as_postgres([_pg_binary("pg_ctl"), "-D", str(self.root / "data"),
                                     "-m", "immediate", "stop"]), check=False,
                       capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Redis:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @classmethod
    def start(cls) -> Redis:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServiceUnavailable("redis-server is not installed (apt-get install "
                                     "redis-server)")
        port = free_port()
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return cls(port, process)
            except OSError:
                time.sleep(0.05)
        process.kill()
        raise RuntimeError(f"redis-server did not answer on port {port} within 20 s")

    def flush(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(b"FLUSHALL\r\n")
            s.recv(16)

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): "
                           f"{(done.stderr or done.stdout).strip()[-2000:]}")
