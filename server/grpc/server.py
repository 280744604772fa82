"""Start the gRPC sidecar: the Gateway service plus standard health checking and reflection.

Reflection lets `grpcurl -plaintext HOST:PORT list` and `describe` work without .proto files;
health answers SERVING for "" (the whole server) and for "switchyard.v1.Gateway".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection
from switchyard.server.errors import ConfigError
from switchyard.server.grpc.servicer import GatewayServicer, rpc_handlers
from switchyard.server.security import guard_interceptor
from switchyard.v1 import gateway_pb2

if TYPE_CHECKING:
    from switchyard.server.pipeline import Pipeline
    from switchyard.server.readiness import Readiness

GATEWAY_SERVICE = gateway_pb2.DESCRIPTOR.services_by_name["Gateway"].full_name
HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # same default as limits.max_body_bytes


async def start_grpc_server(
    pipeline: Pipeline,
    host: str,
    port: int,
    *,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    readiness: Readiness | None = None,
) -> tuple[grpc.aio.Server, int]:
    """Serve `pipeline` on host:port (0 = an ephemeral port); return the server and bound port.

    With `readiness`, health says NOT_SERVING and Gateway RPCs wait (or get UNAVAILABLE)
    until the warm-up is done; without it, SERVING at once.

    Stop it with `await server.stop(grace_seconds)`: in-flight RPCs are cancelled after the
    grace period, which cancels their upstream calls too.
    """
    server = grpc.aio.server(options=[
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        # gRPC sets SO_REUSEPORT by default, so a second server on a busy port starts
        # silently and takes part of the traffic; without it, the bind fails as it should.
        ("grpc.so_reuseport", 0),
    ], interceptors=[guard_interceptor(pipeline),  # API key + per-key concurrency
                     *_ready_gate(readiness)])
    server.add_generic_rpc_handlers((rpc_handlers(GatewayServicer(pipeline)),))
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection(
        (GATEWAY_SERVICE, HEALTH_SERVICE, reflection.SERVICE_NAME), server
    )
    try:
        bound = server.add_insecure_port(_address(host, port))
    except RuntimeError:  # grpc raises RuntimeError (older versions return 0) on failure
        bound = 0
    if not bound:
        raise ConfigError(f"cannot bind the gRPC port {_address(host, port)}: it is in use or "
                          "not available; stop the other server or choose another port "
                          "(--grpc-port or server.grpc_port)")
    await server.start()

    async def serving() -> None:
        for service in ("", GATEWAY_SERVICE):
            await health.set(service, health_pb2.HealthCheckResponse.SERVING)

    if readiness is None:
        await serving()
    else:
        for service in ("", GATEWAY_SERVICE):
            await health.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)
        readiness.on_ready(serving)
    return server, bound


def _ready_gate(readiness: Readiness | None) -> list[grpc.aio.ServerInterceptor]:
    from switchyard.server.readiness import grpc_gate

    return [] if readiness is None else [grpc_gate(readiness)]


def _address(host: str, port: int) -> str:
    if ":" in host and not host.startswith("["):  # a bare IPv6 literal
        host = f"[{host}]"
    return f"{host}:{port}"
