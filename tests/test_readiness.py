"""Ready means warm: /healthz is liveness; /readyz and gRPC health wait for the warm-up;
requests before ready wait or get 503 + retry-after, as configured."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from switchyard.server import readiness as readiness_module
from switchyard.server.config import Config
from switchyard.server.grpc.server import start_grpc_server
from switchyard.server.http.app import create_app
from switchyard.server.pipeline import Pipeline
from switchyard.server.readiness import Readiness, warm_up
from switchyard.v1 import gateway_pb2 as pb
from switchyard.v1 import gateway_pb2_grpc as pb_grpc

from tests.conftest import ServerThread

CHAT = {"model": "switchyard/auto", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """The warm-up blocks until the test sets the returned event."""
    release = threading.Event()

    async def blocked(pipeline: Pipeline) -> dict[str, float]:
        await asyncio.to_thread(release.wait, 30)
        return {"held": 1.0}

    monkeypatch.setattr(readiness_module, "warm_up", blocked)
    yield release
    release.set()


def _server(config_factory: Callable[..., Config], **overrides: Any) -> ServerThread:
    config = config_factory(**{"server.warm_up": True, **overrides})
    return ServerThread(create_app(config)).__enter__()


def _root(server: ServerThread) -> str:
    return f"http://127.0.0.1:{server.port}"


def test_reject_mode_answers_503_with_retry_after_until_warm(config_factory, held) -> None:
    server = _server(config_factory, **{"server.before_ready": "reject"})
    try:
        with httpx.Client(base_url=_root(server), timeout=10) as client:
            assert client.get("/healthz").status_code == 200  # alive while warming
            ready = client.get("/readyz")
            assert ready.status_code == 503 and ready.headers["retry-after"] == "1"
            assert ready.json()["status"] == "warming"
            early = client.post("/v1/chat/completions", json=CHAT)
            assert early.status_code == 503 and early.headers["retry-after"] == "1"
            assert early.json()["error"]["code"] == "warming_up"
            held.set()
            deadline = time.monotonic() + 10
            while client.get("/readyz").status_code != 200:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            body = client.get("/readyz").json()
            assert body["status"] == "ready" and body["warm_up_ms"] == {"held": 1.0}
            assert body["seconds_to_ready"] > 0
            assert client.post("/v1/chat/completions", json=CHAT).status_code == 200
    finally:
        server.__exit__(None, None, None)


def test_wait_mode_holds_the_request_until_warm(config_factory, held) -> None:
    server = _server(config_factory)  # before_ready: wait (the default)
    try:
        with httpx.Client(base_url=_root(server), timeout=20) as client:
            threading.Timer(0.5, held.set).start()
            t0 = time.monotonic()
            response = client.post("/v1/chat/completions", json=CHAT)
            assert response.status_code == 200 and time.monotonic() - t0 >= 0.4
    finally:
        server.__exit__(None, None, None)


def test_wait_mode_gives_up_with_503_after_its_timeout(config_factory, held) -> None:
    server = _server(config_factory, **{"server.ready_timeout_s": 0.2})
    try:
        with httpx.Client(base_url=_root(server), timeout=10) as client:
            response = client.post("/v1/chat/completions", json=CHAT)
            assert response.status_code == 503 and "retry-after" in response.headers
    finally:
        server.__exit__(None, None, None)


async def test_grpc_health_is_not_serving_until_warm(pipeline_factory, held) -> None:
    pipeline = pipeline_factory(**{"server.warm_up": True, "server.before_ready": "reject"})
    readiness = Readiness.from_config(pipeline.config)
    server, port = await start_grpc_server(pipeline, "127.0.0.1", 0, readiness=readiness)
    readiness.start(pipeline)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for service in ("", "switchyard.v1.Gateway"):
                reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
                assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
            stub = pb_grpc.GatewayStub(channel)
            request = pb.ChatRequest(messages=[pb.ChatMessage(role=pb.ROLE_USER, content="hi")])
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.Route(request)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            assert ("retry-after", "1") in tuple(err.value.trailing_metadata() or ())
            held.set()
            deadline = time.monotonic() + 10
            while (await health.Check(health_pb2.HealthCheckRequest(service=""))).status \
                    != health_pb2.HealthCheckResponse.SERVING:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
            assert (await stub.Route(request)).decision.model
    finally:
        await readiness.stop()
        await server.stop(None)


@pytest.mark.slow
async def test_real_warm_up_runs_every_path_and_leaves_no_trace(pipeline_factory) -> None:
    pipeline = pipeline_factory(**{"routing.router": "mlp"})
    steps = await warm_up(pipeline)
    assert {"encoder", "indexes", "short_chat", "long_chat", "recall"} <= set(steps)
    assert pipeline.retrieval is not None and pipeline.retrieval.namespaces() == []
    assert pipeline.compactor is not None and type(pipeline.router).__name__ == "LearnedRouter"
