"""`switchyard serve --workers N`: N processes serve one HTTP port.

Each worker is a fresh interpreter (multiprocessing's spawn: nothing of the parent's state,
and no gRPC core forked mid-flight) that opens its own listening socket on the same port
with SO_REUSEPORT, so the kernel spreads new connections across the workers and a busy one
does not take more than its share. gRPC runs in worker 0 only. Every worker has its own
pipeline and its own traffic-log writer thread; they share the SQLite file (WAL: readers
never block; a writer waits for the lock up to the connection's busy timeout).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import signal
import socket
from collections.abc import Callable
from types import FrameType

from switchyard.server.config import Config
from switchyard.server.errors import ConfigError


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to `host:port` with SO_REUSEPORT, so other workers can bind it too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on sockets whose proto says TCP,
    # and with 0 here Nagle's algorithm added ~40 ms to every response.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def run_workers(config: Config, worker: Callable[[Config, int], None]) -> None:
    """Run `worker(config, index)` in `config.server.workers` processes until SIGINT /
    SIGTERM, or until one exits: then the rest stop too, rather than serve on at part
    capacity unnoticed. `worker` must be a module-level function (spawn pickles it)."""
    # Port 0 would give each worker its own port: hold one, and give every worker that one.
    holder = listening_socket(config.server.host, config.server.http_port)
    port = holder.getsockname()[1]
    config = config.model_copy(update={"server": config.server.model_copy(
        update={"http_port": port})})
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=worker, args=(config, i), name=f"switchyard-worker-{i}")
             for i in range(config.server.workers)]
    for proc in procs:
        proc.start()

    def stop(signum: int, _frame: FrameType | None) -> None:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        multiprocessing.connection.wait([proc.sentinel for proc in procs])
        stop(signal.SIGTERM, None)
        for proc in procs:
            proc.join()
    finally:
        holder.close()
    failed = [f"worker {i} exited with {proc.exitcode}" for i, proc in enumerate(procs)
              if proc.exitcode not in (0, -signal.SIGTERM)]
    if failed:
        raise ConfigError("; ".join(failed) + " (its log lines say why); the others were stopped")

