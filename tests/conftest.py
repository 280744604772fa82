"""Shared fixtures: a temp data dir for every test, the fake upstream, configs and servers."""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, Self

import pytest
import uvicorn
from switchyard.server.config import Config, load_config

from tests.fake_upstream import FakeUpstream


def pytest_configure(config: pytest.Config) -> None:
    sys._called_from_test = True  # type: ignore[attr-defined]


# Where the full shared data sets are (README, "Test it"): kept, so that the tests which
# need the full sets can be pointed at them; every other test reads tests/data.
FULL_DATA_VARIABLES = ("SWITCHYARD_TRAJECTORIES", "SWITCHYARD_ROUTER_DATA")


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own data dir and no stray SWITCHYARD_* or provider settings."""
    import os

    for key in list(os.environ):
        if key in FULL_DATA_VARIABLES:
            continue
        if key.startswith("SWITCHYARD_") or key.endswith("_API_KEY"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("SWITCHYARD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture
def fake_upstream() -> Iterator[FakeUpstream]:
    fake = FakeUpstream().start()
    yield fake
    fake.stop()


def fake_config(fake: FakeUpstream, tmp_path: Path, **overrides: Any) -> Config:
    """Two model groups on the fake upstream; routing off unless a test asks otherwise."""
    settings: dict[str, Any] = {
        "models.thinking": [{"model": "openai/fake-think", "name": "fake-think",
                             "api_base": fake.base_url, "timeout": 5, "context_window": 32000}],
        "models.non_thinking": [{"model": "openai/fake-fast", "name": "fake-fast",
                                 "api_base": fake.base_url, "timeout": 5,
                                 "context_window": 32000}],
        "prices": {"fake-think": {"input": 2.0, "output": 8.0},
                   "fake-fast": {"input": 0.5, "output": 1.5}},
        "routing.router": "off",
        "upstream.backoff_base": 0.01,
        "server.data_dir": str(tmp_path / "data"),
        "server.warm_up": False,  # ready once loaded; tests/test_readiness.py warms up
    }
    settings.update(overrides)
    return load_config(None, environ={}, **settings)


@pytest.fixture
def config_factory(fake_upstream: FakeUpstream, tmp_path: Path) -> Callable[..., Config]:
    return lambda **overrides: fake_config(fake_upstream, tmp_path, **overrides)


@pytest.fixture
async def pipeline_factory(config_factory: Callable[..., Config]) -> AsyncIterator[Callable[..., Any]]:
    from switchyard.server.pipeline import Pipeline

    made: list[Pipeline] = []

    def make(**overrides: Any) -> Pipeline:
        pipeline = Pipeline.from_config(config_factory(**overrides))
        made.append(pipeline)
        return pipeline

    yield make
    for pipeline in made:
        await pipeline.aclose()


class ServerThread:
    """A real uvicorn server for an ASGI app, on 127.0.0.1 and an ephemeral port."""

    def __init__(self, app: Any) -> None:
        # proto=IPPROTO_TCP makes asyncio set TCP_NODELAY on accepted connections; with the
        # default proto 0 it does not, and every response stalls 40 ms on delayed ACKs.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]},
                                       daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("proxy did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


@pytest.fixture
def proxy_factory(config_factory: Callable[..., Config]) -> Iterator[Callable[..., ServerThread]]:
    from switchyard.server.http.app import create_app

    running: list[ServerThread] = []

    def start(**overrides: Any) -> ServerThread:
        config = config_factory(**overrides)
        server = ServerThread(create_app(config)).__enter__()
        server.config = config  # type: ignore[attr-defined]
        running.append(server)
        return server

    yield start
    for server in running:
        server.__exit__(None, None, None)


@pytest.fixture
def proxy(proxy_factory: Callable[..., ServerThread]) -> ServerThread:
    return proxy_factory()


# -- real PostgreSQL and Redis (tests/services.py), one of each per test session ------------
def _service(name: str, client_module: str) -> Any:
    """A started server, or a skip saying what is missing (CI installs both)."""
    import importlib

    from tests import services

    try:
        importlib.import_module(client_module)
    except ImportError:
        pytest.skip(f"{client_module} is not installed (pip install 'switchyard[scale]')")
    try:
        return getattr(services, name).start()
    except services.ServiceUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    server = _service("Postgres", "psycopg")
    yield server
    server.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Any]:
    server = _service("Redis", "redis")
    yield server
    server.close()


@pytest.fixture
def pg_url(postgres_server: Any) -> str:
    """A fresh, empty database on the session's PostgreSQL."""
    return str(postgres_server.create_database())


@pytest.fixture
def redis_url(redis_server: Any) -> str:
    """The session's Redis, emptied for this test."""
    redis_server.flush()
    return str(redis_server.url)
