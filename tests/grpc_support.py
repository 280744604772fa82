"""What the gRPC tests share: a real server on loopback around any pipeline, and messages."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc
from switchyard.server.grpc.server import start_grpc_server
from switchyard.v1 import gateway_pb2 as pb


@contextlib.asynccontextmanager
async def serving(pipeline: Any) -> AsyncIterator[grpc.aio.Channel]:
    """A grpc.aio server for `pipeline` on 127.0.0.1:<free port> and a channel to it."""
    server, port = await start_grpc_server(pipeline, "127.0.0.1", 0)
    assert port > 0
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel
    finally:
        await server.stop(None)


def user(text: str) -> pb.ChatMessage:
    return pb.ChatMessage(role=pb.ROLE_USER, content=text)
