"""One process, two front doors: the HTTP proxy (uvicorn) and the gRPC sidecar share a pipeline."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket

from switchyard.server.auth import check_bind
from switchyard.server.config import Config
from switchyard.server.heap import freeze_after_slow_full_collections, freeze_heap

logger = logging.getLogger("switchyard")


async def serve(config: Config, sock: socket.socket | None = None, grpc: bool = True) -> None:
    """Serve until SIGINT / SIGTERM. `sock`: a bound HTTP socket (a worker of several);
    `grpc=False`: no gRPC door in this process (another worker serves it)."""
    import uvicorn
    from switchyard.server.grpc.server import start_grpc_server
    from switchyard.server.http.app import create_app
    from switchyard.server.pipeline import Pipeline
    from switchyard.server.readiness import Readiness

    check_bind(config.auth.mode, config.server.host)  # local mode (no keys): loopback only
    pipeline = Pipeline.from_config(config)
    await pipeline.start()
    await asyncio.to_thread(pipeline.upstream.warm_up)
    readiness = Readiness.from_config(config)  # one warm-up; the HTTP app's start-up runs it
    try:
        grpc_server, grpc_port = await start_grpc_server(
            pipeline, config.server.host, config.server.grpc_port,
            max_message_bytes=config.limits.max_body_bytes,
            readiness=readiness) if grpc else (None, 0)
    except BaseException:  # e.g. the port is taken: close what we opened, then say why
        await pipeline.aclose()
        raise
    app = create_app(config, pipeline, readiness)
    http = uvicorn.Server(uvicorn.Config(
        app, host=config.server.host, port=config.server.http_port, log_level="warning",
        access_log=False, lifespan="on", timeout_graceful_shutdown=10,
        log_config=None))  # uvicorn logs through our JSON, redacting handler
    logger.info("HTTP on http://%s:%d/v1, gRPC on %s:%d, data in %s", config.server.host,
                config.server.http_port, config.server.host, grpc_port, config.server.data_dir)
    readiness.on_ready(freeze_heap)  # warm: what the request paths load is loaded
    freeze_after_slow_full_collections()
    try:
        # returns on SIGINT / SIGTERM (uvicorn installs the handlers)
        await http.serve(sockets=[sock] if sock else None)
    finally:
        if grpc_server is not None:
            await grpc_server.stop(grace=5)
        await pipeline.aclose()


def run_server(config: Config) -> None:
    from switchyard.server.log_setup import setup_logging

    setup_logging(config)
    if config.server.workers > 1:
        from switchyard.server.workers import run_workers

        run_workers(config, serve_worker)
    else:
        asyncio.run(serve(config))


def serve_worker(config: Config, index: int) -> None:
    """One of `--workers N` (a spawned process): its own socket on the shared port."""
    from switchyard.server.log_setup import setup_logging
    from switchyard.server.workers import listening_socket

    setup_logging(config)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent turns Ctrl-C into SIGTERM
    sock = listening_socket(config.server.host, config.server.http_port)
    asyncio.run(serve(config, sock=sock, grpc=index == 0))
