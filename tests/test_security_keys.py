"""API keys end to end: the key store, the `keys` CLI, HTTP and gRPC with auth.mode keys,
and no key or Authorization value in any log line, traffic-log row, metrics text or error."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import typer
from switchyard.server.auth import Authenticator, KeyStore, check_bind, is_loopback, keys_path
from switchyard.server.errors import ConfigError, NotFound, Unauthenticated
from switchyard.server.log_setup import REDACTED, JsonFormatter, Redactor
from switchyard.v1 import gateway_pb2 as pb
from switchyard.v1 import gateway_pb2_grpc
from typer.testing import CliRunner

KEYS = {"auth.mode": "keys", "compaction.enabled": False}
BODY = {"model": "switchyard/auto", "messages": [{"role": "user", "content": "hello"}]}


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Every log record of the test, formatted twice: raw and through our JSON formatter."""
    raw, root = io.StringIO(), logging.getLogger()
    plain = logging.StreamHandler(raw)
    plain.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    structured = logging.StreamHandler(raw)
    structured.setFormatter(JsonFormatter(Redactor()))
    old_level = root.level
    root.setLevel(logging.DEBUG)
    root.addHandler(plain)
    root.addHandler(structured)
    yield raw
    root.removeHandler(plain)
    root.removeHandler(structured)
    root.setLevel(old_level)


def _dump(db_path: Path) -> str:
    db = sqlite3.connect(db_path)
    try:
        return "\n".join(db.iterdump())
    finally:
        db.close()


# -- the store ------------------------------------------------------------------------------
def test_store_keeps_only_a_hash_and_revocation_applies_at_once(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.sqlite")
    info, key = store.create("ci")
    assert key.startswith(f"sy_{info.key_id}_") and len(key) > 50
    assert store.verify(key) == info.key_id
    other = KeyStore(tmp_path / "keys.sqlite")  # a second process, like the CLI
    other.revoke(info.key_id)
    with pytest.raises(Unauthenticated):
        store.verify(key)
    with pytest.raises(Unauthenticated):
        store.verify(key[:-1] + ("A" if key[-1] != "A" else "B"))  # right id, wrong secret
    with pytest.raises(NotFound):
        store.revoke("key_0000000000")
    assert [k.active for k in store.list()] == [False]
    store.close()
    other.close()
    for f in tmp_path.iterdir():  # the key is nowhere on disk (db, WAL, shm)
        assert key.encode() not in f.read_bytes()
        assert key.split("_", 3)[-1].encode() not in f.read_bytes()


def test_authenticator_refuses_malformed_credentials(tmp_path: Path) -> None:
    auth = Authenticator("keys", KeyStore(tmp_path / "k.sqlite"))
    _, key = auth.store.create()  # type: ignore[union-attr]
    assert auth.check([f"Bearer {key}"]) and auth.check([f"bearer  {key} "])
    for bad in ([], [key], ["Basic abc"], ["Bearer "], [f"Bearer {key}", f"Bearer {key}"],
                ["Bearer sy_key_zz_x"], ["Bearer " + "x" * 10_000]):
        with pytest.raises(Unauthenticated) as info:
            auth.check(bad)
        assert key not in info.value.message
    assert Authenticator("local", None).check([]) is None
    auth.close()


def test_local_mode_binds_loopback_only() -> None:
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        assert is_loopback(host)
        check_bind("local", host)
    for host in ("0.0.0.0", "::", "10.0.0.1", "example.com"):
        with pytest.raises(ConfigError, match="loopback"):
            check_bind("local", host)
        check_bind("keys", host)


def test_serve_refuses_a_public_host_in_local_mode(config_factory: Any) -> None:
    from switchyard.server.serve import serve

    with pytest.raises(ConfigError, match="auth.mode"):
        asyncio.run(serve(config_factory(**{"server.host": "0.0.0.0"})))


def test_redactor_removes_keys_bearer_values_and_configured_secrets() -> None:
    redactor = Redactor(["provider-secret-123"])
    line = ('auth failed for sy_key_0123456789_abcdefghijklmnopqrstuvwxyz headers '
            '{"authorization": "Bearer tok123456789"} Authorization: Basic Zm9vOmJhcg== '
            'upstream key provider-secret-123 sk-abcdefghijklmnopqrstuv')
    out = redactor.redact(line)
    for secret in ("abcdefghijklmnop", "tok123456789", "Zm9vOmJhcg", "provider-secret-123",
                   "sk-abcdefghijklmnopqrstuv"):
        assert secret not in out
    assert out.count(REDACTED) >= 4 and "auth failed for" in out


# -- the CLI --------------------------------------------------------------------------------
def test_keys_cli_create_list_revoke(tmp_path: Path) -> None:
    from switchyard.server.cli.keys import register

    app = typer.Typer()
    register(app)
    runner = CliRunner()
    created = runner.invoke(app, ["keys", "create", "--name", "laptop"])
    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[0]
    listed = runner.invoke(app, ["keys", "list", "--json"])
    rows = json.loads(listed.stdout)
    assert [(r["name"], r["active"]) for r in rows] == [("laptop", True)]
    assert key not in listed.stdout and rows[0]["key_id"] in key
    assert runner.invoke(app, ["keys", "revoke", rows[0]["key_id"]]).exit_code == 0
    text = runner.invoke(app, ["keys", "list"]).stdout
    assert "revoked" in text and key not in text
    missing = runner.invoke(app, ["keys", "revoke", "key_0000000000"])
    assert missing.exit_code != 0


# -- HTTP -----------------------------------------------------------------------------------
def test_http_keys_missing_wrong_revoked_valid(proxy_factory: Any,
                                               captured_logs: io.StringIO) -> None:
    server = proxy_factory(**KEYS)
    config = server.config
    store = KeyStore(keys_path(config))
    info, key = store.create("test")
    _, revoked = store.create("old")
    store.revoke(revoked.split("_")[1] + "_" + revoked.split("_")[2])
    url = server.base_url + "/chat/completions"
    root = server.base_url.removesuffix("/v1")
    bodies = []
    with httpx.Client(timeout=10) as client:
        for headers in ({}, {"authorization": "Bearer sy_key_0123456789_" + "x" * 43},
                        {"authorization": f"Bearer {revoked}"}, {"authorization": key},
                        {"authorization": f"Basic {key}"}):
            r = client.post(url, json=BODY, headers=headers)
            assert r.status_code == 401, (headers, r.text)
            assert r.json()["error"]["type"] == "authentication_error"
            bodies.append(r.text)
        assert client.get(server.base_url + "/models").status_code == 401
        ok = client.post(url, json=BODY, headers={"authorization": f"Bearer {key}",
                                                  "x-request-id": "req-with-key"})
        assert ok.status_code == 200, ok.text
        bodies.append(ok.text)
        assert client.get(root + "/healthz").status_code == 200  # open paths
        metrics = client.get(root + "/metrics").text
    rows = list(sqlite3.connect(config.server.traffic_log_path).execute(
        "SELECT request_id, api_key_id FROM requests"))
    assert rows == [("req-with-key", info.key_id)]  # refused requests never reach the log
    assert 'switchyard_auth_failures_total{door="http"} 6.0' in metrics
    _assert_no_secret([key, revoked], captured_logs.getvalue(), metrics, *bodies,
                      _dump(config.server.traffic_log_path))
    store.close()


def _assert_no_secret(keys: list[str], *texts: str) -> None:
    for text in texts:
        for key in keys:
            assert key not in text
            assert key.split("_", 3)[-1] not in text  # not even the secret part
        assert "Bearer sy_" not in text and "bearer sy_" not in text.lower()


# -- gRPC -----------------------------------------------------------------------------------
async def test_grpc_keys_missing_wrong_revoked_valid(pipeline_factory: Any,
                                                     captured_logs: io.StringIO) -> None:
    from switchyard.server.grpc.server import start_grpc_server

    pipeline = pipeline_factory(**KEYS)
    store = pipeline.auth.store
    info, key = store.create("grpc")
    _, revoked = store.create("old")
    store.revoke(store.list()[1].key_id)
    server, port = await start_grpc_server(pipeline, "127.0.0.1", 0)
    request = pb.ChatRequest(messages=[pb.ChatMessage(role=pb.ROLE_USER, content="hi")],
                             request_id="grpc-req-1")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = gateway_pb2_grpc.GatewayStub(channel)
            for metadata in ((), (("authorization", f"Bearer {revoked}"),),
                             (("authorization", "Bearer nonsense"),),
                             (("authorization", key),)):
                for call in (stub.Chat(request, metadata=metadata, timeout=5),
                             stub.Route(request, metadata=metadata, timeout=5)):
                    with pytest.raises(grpc.aio.AioRpcError) as err:
                        await call
                    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
                    assert key not in (err.value.details() or "")
                stream = stub.StreamChat(request, metadata=metadata, timeout=5)
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    [m async for m in stream]
                assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
            good = (("authorization", f"Bearer {key}"),)
            reply = await stub.Chat(request, metadata=good, timeout=10)
            assert reply.message.content == "You said: hi"
            events = [m async for m in stub.StreamChat(
                pb.ChatRequest(messages=request.messages, request_id="grpc-req-2"),
                metadata=good, timeout=10)]
            assert events
    finally:
        await server.stop(None)
    rows = dict(pipeline.log.reader().execute("SELECT request_id, api_key_id FROM requests"))
    assert rows == {"grpc-req-1": info.key_id, "grpc-req-2": info.key_id}
    metrics = pipeline.metrics.render().decode()
    assert 'switchyard_auth_failures_total{door="grpc"} 12.0' in metrics
    _assert_no_secret([key, revoked], captured_logs.getvalue(), metrics,
                      _dump(pipeline.config.server.traffic_log_path))


def test_responses_endpoint_needs_a_key_and_logs_its_id(proxy_factory: Any) -> None:
    server = proxy_factory(**KEYS)
    info, key = KeyStore(keys_path(server.config)).create("codex")
    url = server.base_url + "/responses"
    body = {"model": "switchyard/auto", "input": "hello"}
    with httpx.Client(timeout=10) as client:
        assert client.post(url, json=body).status_code == 401
        ok = client.post(url, json=body, headers={"authorization": f"Bearer {key}"})
    assert ok.status_code == 200, ok.text
    db = sqlite3.connect(server.config.server.traffic_log_path)
    rows = db.execute("SELECT api_key_id, endpoint FROM requests").fetchall()
    db.close()
    assert rows == [(info.key_id, "http.responses")]
