"""`switchyard serve --workers N`: N processes serve one HTTP port.

Each worker is a fresh interpreter (multiprocessing's spawn: nothing of the parent's state,
and no gRPC core forked mid-flight) that opens its own listening socket on the same port
with SO_REUSEPORT, so the kernel spreads new connections across the workers and a busy one
does not take more than its share. gRPC runs in worker 0 only. Every worker has its own
pipeline and its own traffic-log writer thread; they share the SQLite file (WAL: readers
never block; a writer waits for the lock up to the connection's busy timeout).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
import socket
from types import FrameType

from switchyard.server.config import Config


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to `host:port` with SO_REUSEPORT, so other workers can bind it too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def run_workers(config: Config) -> None:
    """Start `config.server.workers` workers and wait for them; SIGINT / SIGTERM stop all."""
    # Port 0 would give each worker its own port: hold one, and give every worker that one.
    holder = listening_socket(config.server.host, config.server.http_port)
    port = holder.getsockname()[1]
    config = config.model_copy(update={"server": config.server.model_copy(
        update={"http_port": port})})
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=_worker, args=(config, i), name=f"switchyard-worker-{i}")
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
        for proc in procs:
            proc.join()
    finally:
        holder.close()


def _worker(config: Config, index: int) -> None:
    from switchyard.server.log_setup import setup_logging
    from switchyard.server.serve import serve

    setup_logging(config)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent turns Ctrl-C into SIGTERM
    sock = listening_socket(config.server.host, config.server.http_port)
    asyncio.run(serve(config, sock=sock, grpc=index == 0))
