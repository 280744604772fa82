"""Replicas on one real PostgreSQL and one real Redis (tests/services.py, on loopback): what
one replica wrote or saw, another one uses. Each "replica" is its own app or pipeline with
its own data dir, as a separate `switchyard serve` process would have."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from switchyard.core.db import NewerSchemaError
from switchyard.core.trafficlog.schema import TrafficRecord
from switchyard.server.stores.pg_stores import PgTrafficLog
from switchyard.server.stores.postgres import SCHEMAS, Database

from tests.conftest import ServerThread
from tests.fake_upstream import FakeUpstream, Fault

NO_COMPACTION = {"compaction.enabled": False}


def _replica(factory: Callable[..., Any], tmp_path: Path, name: str, **overrides: Any) -> Any:
    return factory(**{"server.data_dir": str(tmp_path / name), **NO_COMPACTION, **overrides})


def _chat(base_url: str, text: str, key: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.post(f"{base_url}/chat/completions", timeout=10, headers=headers, json={
        "model": "switchyard/auto", "messages": [{"role": "user", "content": text}]})


# -- schema ---------------------------------------------------------------------------------
def test_migrations_on_postgres_make_every_table_once(pg_url: str) -> None:
    Database(pg_url).close()
    Database(pg_url).close()  # a second replica: nothing left to run
    with psycopg.connect(pg_url) as conn:
        applied = [r[0] for r in conn.execute(
            "SELECT name FROM _switchyard_migrations ORDER BY name")]
        tables = {r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}
    # every store's own migrations, each name under its store's key
    assert applied == sorted(f"{s.key}.{fn.__name__}" for s in SCHEMAS for fn in s.migrations)
    assert "log.m001_initial" in applied and "chunks.m001_initial" in applied
    assert tables == {"_switchyard_migrations", "requests", "outcomes", "api_keys", "responses",
                      "chunks", "chunk_namespaces"}


def test_one_schema_gives_both_engines_the_same_tables(pg_url: str, tmp_path: Path) -> None:
    """The SQLite stores' migrations, run on PostgreSQL, make the same columns in the same
    order; SQLite's REAL is a double there, and row ids an identity column."""
    import sqlite3

    from switchyard.core.db import columns
    from switchyard.core.trafficlog.schema import COLUMNS

    Database(pg_url).close()
    with psycopg.connect(pg_url) as conn:
        def pg(table: str) -> list[tuple[str, str]]:
            return [(r[0], r[1]) for r in conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = %s ORDER BY ordinal_position", (table,))]

        for schema in SCHEMAS[:-1]:  # the last one is PostgreSQL's own (chunk versions)
            lite = sqlite3.connect(tmp_path / f"{schema.key}.sqlite")
            schema.migrate(lite)
            for (table,) in lite.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                         "AND name NOT LIKE 'sqlite%'"):
                assert [c for c, _ in pg(table)] == columns(lite, table), table
            lite.close()
        requests = pg("requests")
        rowid = conn.execute("SELECT is_identity FROM information_schema.columns WHERE "
                             "table_name = 'chunks' AND column_name = 'rowid'").fetchone()
    assert [c for c, _ in requests] == list(COLUMNS)
    types = dict(requests)
    assert types["created_at"] == types["p_hard"] == "double precision"
    assert types["thinking"] == "integer"  # 0/1, as in SQLite
    assert rowid == ("YES",)


def test_a_database_from_a_newer_version_is_refused(pg_url: str) -> None:
    Database(pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO _switchyard_migrations VALUES ('log.m999_from_the_future', 0)")
    with pytest.raises(NewerSchemaError, match="m999_from_the_future"):
        Database(pg_url)


def test_serve_refuses_a_newer_database_with_one_line(pg_url: str, tmp_path: Path) -> None:
    from switchyard.server.cli.main import app
    from typer.testing import CliRunner

    Database(pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO _switchyard_migrations VALUES ('log.m999_from_the_future', 0)")
    result = CliRunner().invoke(app, ["serve", "--database-url", pg_url, "--http-port", "0",
                                      "--grpc-port", "0", "--data-dir", str(tmp_path)])
    assert result.exit_code != 0
    assert "m999_from_the_future" in str(result.output) + str(result.exception)


def test_log_path_names_the_database_without_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    from switchyard.server.cli.main import app
    from typer.testing import CliRunner

    monkeypatch.setenv("SWITCHYARD_SERVER__DATABASE_URL", "postgresql://sy:s3cret@db:5432/log")
    out = CliRunner().invoke(app, ["log", "path"]).output.strip()
    assert out == "postgresql://sy:***@db:5432/log"


def test_log_group_commit_and_outcomes_on_postgres(pg_url: str) -> None:
    from switchyard.core.trafficlog.outcomes import Outcome, UnknownRequest

    database = Database(pg_url)
    log = PgTrafficLog(database)

    async def write_many() -> None:
        await asyncio.gather(*(log.write(TrafficRecord(f"r{i}", "s", "test", thinking=i % 2 == 0))
                               for i in range(50)))
        # the same id twice in one batch (a client's retry), and a float JSON cannot carry
        await asyncio.gather(log.write(TrafficRecord("twice", "s", "test", latency_ms=1.0)),
                             log.write(TrafficRecord("twice", "s", "test", latency_ms=2.0,
                                                     p_hard=float("nan"))))

    asyncio.run(write_many())
    assert log.record_outcome(Outcome("r3", "user", "pass")) is True
    assert log.record_outcome(Outcome("r3", "user", "fail")) is False  # replaced
    with pytest.raises(UnknownRequest):
        log.record_outcome(Outcome("nope", "user", "pass"))
    log.close()
    rows = database.rows("SELECT count(*), sum(thinking) FROM requests")
    assert rows == [(51, 25)]
    assert database.rows("SELECT latency_ms, p_hard FROM requests WHERE request_id = 'twice'") \
        == [(2.0, None)]
    assert database.rows("SELECT label FROM outcomes WHERE request_id = 'r3'") == [("fail",)]
    database.close()


# -- two replicas, one PostgreSQL -----------------------------------------------------------
def test_feedback_for_a_request_served_by_another_replica(
        proxy_factory: Callable[..., ServerThread], tmp_path: Path, pg_url: str) -> None:
    a = _replica(proxy_factory, tmp_path, "a", **{"server.database_url": pg_url})
    b = _replica(proxy_factory, tmp_path, "b", **{"server.database_url": pg_url})
    answered = _chat(a.base_url, "what is 2 + 2?")
    assert answered.status_code == 200
    rid = answered.headers["x-request-id"]
    r = httpx.post(f"{b.base_url}/feedback", timeout=5,
                   json={"request_id": rid, "label": "pass", "source": "user"})
    assert r.status_code == 200 and r.json()["status"] == "created", r.text
    missing = httpx.post(f"{b.base_url}/feedback", timeout=5,
                         json={"request_id": "req_never", "label": "pass", "source": "user"})
    assert missing.status_code == 404
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT label FROM outcomes WHERE request_id = %s",
                            (rid,)).fetchall() == [("pass",)]
        assert conn.execute("SELECT status FROM requests WHERE request_id = %s",
                            (rid,)).fetchall() == [("ok",)]
    assert not (tmp_path / "a" / "traffic.sqlite").exists()  # nothing kept on the replica


def test_previous_response_id_works_on_any_replica(
        proxy_factory: Callable[..., ServerThread], tmp_path: Path, pg_url: str,
        fake_upstream: FakeUpstream) -> None:
    a = _replica(proxy_factory, tmp_path, "a", **{"server.database_url": pg_url})
    b = _replica(proxy_factory, tmp_path, "b", **{"server.database_url": pg_url})
    first = httpx.post(f"{a.base_url}/responses", timeout=10,
                       json={"model": "switchyard/auto", "input": "remember the word heron"})
    assert first.status_code == 200, first.text
    second = httpx.post(f"{b.base_url}/responses", timeout=10, json={
        "model": "switchyard/auto", "input": "which word?",
        "previous_response_id": first.json()["id"]})
    assert second.status_code == 200, second.text
    sent = fake_upstream.requests[-1]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[0]["content"] == "remember the word heron"


def test_a_key_created_once_works_on_every_replica(
        proxy_factory: Callable[..., ServerThread], tmp_path: Path, pg_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import typer
    from switchyard.server.cli.keys import register
    from typer.testing import CliRunner

    cli = typer.Typer()
    register(cli)
    monkeypatch.setenv("SWITCHYARD_SERVER__DATABASE_URL", pg_url)  # `keys` on the shared store
    created = CliRunner().invoke(cli, ["keys", "create", "--name", "agents"])
    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[0]
    shared = {"server.database_url": pg_url, "auth.mode": "keys"}
    a = _replica(proxy_factory, tmp_path, "a", **shared)
    b = _replica(proxy_factory, tmp_path, "b", **shared)
    assert _chat(a.base_url, "hi", key).status_code == 200
    assert _chat(b.base_url, "hi", key).status_code == 200
    key_id = key.split("_")[1] + "_" + key.split("_")[2]
    assert CliRunner().invoke(cli, ["keys", "revoke", key_id]).exit_code == 0
    assert _chat(b.base_url, "hi", key).status_code == 401
    assert not (tmp_path / "data" / "keys.sqlite").exists()


# -- Redis: limits and cooldowns across replicas ---------------------------------------------
def test_per_key_concurrency_limit_holds_across_replicas(
        proxy_factory: Callable[..., ServerThread], tmp_path: Path, redis_url: str,
        fake_upstream: FakeUpstream) -> None:
    shared = {"server.redis_url": redis_url, "limits.max_concurrent_per_key": 1}
    a = _replica(proxy_factory, tmp_path, "a", **shared)
    b = _replica(proxy_factory, tmp_path, "b", **shared)
    fake_upstream.enqueue(Fault(hang=1.5))
    slow: list[httpx.Response] = []
    holder = threading.Thread(target=lambda: slow.append(_chat(a.base_url, "slow one")))
    holder.start()
    deadline = time.monotonic() + 5
    while not fake_upstream.requests and time.monotonic() < deadline:
        time.sleep(0.02)  # A's request has its slot and is at the upstream
    refused = _chat(b.base_url, "meanwhile on b")
    holder.join()
    assert refused.status_code == 429, refused.text
    assert "across all replicas" in refused.json()["error"]["message"]
    assert slow[0].status_code == 200
    assert _chat(b.base_url, "after").status_code == 200  # A's slot was given back


def _not_near_a_minute_boundary() -> None:
    """Per-minute counts start afresh each minute: start a count well inside one."""
    if time.time() % 60 > 56:
        time.sleep(61 - time.time() % 60)


def test_requests_per_minute_limit_holds_across_replicas(
        proxy_factory: Callable[..., ServerThread], tmp_path: Path, redis_url: str) -> None:
    shared = {"server.redis_url": redis_url, "limits.max_requests_per_minute_per_key": 3}
    a = _replica(proxy_factory, tmp_path, "a", **shared)
    b = _replica(proxy_factory, tmp_path, "b", **shared)
    _not_near_a_minute_boundary()
    assert [_chat(url, "hi").status_code for url in (a.base_url, b.base_url, a.base_url)] == \
        [200, 200, 200]
    refused = _chat(b.base_url, "one too many")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "max_requests_per_minute_per_key"


async def test_requests_per_minute_limit_without_redis() -> None:
    from switchyard.server.errors import LimitExceeded
    from switchyard.server.limits import ConcurrencyLimiter

    limiter = ConcurrencyLimiter(10, per_minute=2)
    _not_near_a_minute_boundary()
    for _ in range(2):
        await (await limiter.acquire("key_a")).release()
    with pytest.raises(LimitExceeded, match="max_requests_per_minute_per_key=2"):
        await limiter.acquire("key_a")
    await (await limiter.acquire("key_b")).release()  # another key has its own count


async def test_a_cooldown_seen_by_one_replica_cools_the_deployment_on_all(
        pipeline_factory: Callable[..., Any], tmp_path: Path, redis_url: str) -> None:
    shared = {"server.redis_url": redis_url, "upstream.cooldown_failures": 1}
    a = _replica(pipeline_factory, tmp_path, "a", **shared)
    b = _replica(pipeline_factory, tmp_path, "b", **shared)
    await a.start()
    await b.start()
    fast = a.config.models.non_thinking[0]
    assert not b.upstream._cooling(fast)
    a.upstream._record(fast, ok=False)  # A saw it fail: cooled on A at once
    deadline = time.monotonic() + 2
    while not b.upstream._cooling(fast) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert b.upstream._cooling(fast)
    late = _replica(pipeline_factory, tmp_path, "c", **shared)  # started afterwards
    await late.start()
    assert late.upstream._cooling(fast)


# -- retrieval: one shared chunk store, a local cache per replica ----------------------------
async def test_a_document_indexed_on_one_replica_is_recalled_on_another(
        pipeline_factory: Callable[..., Any], tmp_path: Path, pg_url: str) -> None:
    shared = {"server.database_url": pg_url}
    a = _replica(pipeline_factory, tmp_path, "a", **shared)
    b = _replica(pipeline_factory, tmp_path, "b", **shared)
    await a.index("docs", [("the heron nests by the quarry lake", "birds.md")])
    hits = await b.recall("heron quarry", namespaces=["docs"], k=3, mode="bm25")
    assert [h.chunk.source for h in hits] == ["birds.md"]
    # B has the namespace loaded now; a later write on A must reach it within a second
    await a.index("docs", [("the kingfisher dives at the weir", "river.md")])
    t0 = time.monotonic()
    hits = await b.recall("kingfisher weir", namespaces=["docs"], k=3, mode="bm25")
    assert [h.chunk.source for h in hits][:1] == ["river.md"]
    assert time.monotonic() - t0 < 1.0
    grep = await b.recall("kingfisher", namespaces=["docs"], k=3, mode="grep")
    assert [h.chunk.source for h in grep] == ["river.md"]
    # a delete on A: B rebuilds the namespace from the store
    a.retrieval.delete([hits[0].chunk_id])
    left = await b.recall("kingfisher heron", namespaces=["docs"], k=3, mode="bm25")
    assert [h.chunk.source for h in left] == ["birds.md"]
    assert not any((tmp_path / name / "chunks" / "chunks.sqlite").exists()
                   for name in ("a", "b"))


# -- kill -9: two `switchyard serve` processes on one PostgreSQL ------------------------------
def test_kill_9_of_one_replica_loses_no_answered_request(
        tmp_path: Path, pg_url: str, redis_url: str, fake_upstream: FakeUpstream) -> None:
    """Clients spread over two replicas and retry a failed request, with the same id, on the
    other one (as behind a load balancer); one replica is killed with -9 mid-load. Every
    answered request is in PostgreSQL, complete."""
    import yaml

    from tests.services import free_port
    from tests.test_reliability_durability import BODY, start_server

    fake_upstream.latency = 0.005
    deployment = {"api_base": fake_upstream.base_url, "timeout": 5, "context_window": 32000}
    procs, ports = [], []
    for name in ("a", "b"):
        config = {"server": {"data_dir": str(tmp_path / name), "database_url": pg_url,
                             "redis_url": redis_url},
                  "models": {"thinking": [{"model": "openai/fake-think", **deployment}],
                             "non_thinking": [{"model": "openai/fake-fast", **deployment}]},
                  "routing": {"router": "off"}, "compaction": {"enabled": False},
                  "recall": {"enabled": False}}
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config))
        ports.append(free_port())
        procs.append(start_server(path, ports[-1], tmp_path / f"{name}.log"))
    answered: list[str] = []
    stop = threading.Event()

    def client(worker: int) -> None:
        with httpx.Client(timeout=5) as http:
            for i in range(10_000):
                if stop.is_set():
                    return
                rid = f"w{worker}-{i}"
                for attempt in range(4):  # this replica, then the other, ...
                    port = ports[(worker + i + attempt) % 2]
                    try:
                        r = http.post(f"http://127.0.0.1:{port}/v1/chat/completions",
                                      json=BODY, headers={"x-request-id": rid})
                    except httpx.HTTPError:
                        continue
                    if r.status_code == 200:
                        answered.append(rid)
                        break

    workers = [threading.Thread(target=client, args=(w,)) for w in range(8)]
    for w in workers:
        w.start()
    deadline = time.monotonic() + 20
    while len(answered) < 150 and time.monotonic() < deadline:
        time.sleep(0.05)
    procs[0].kill()  # SIGKILL, mid-load
    procs[0].wait(10)
    killed_at = len(answered)
    while len(answered) < killed_at + 100 and time.monotonic() < deadline + 20:
        time.sleep(0.05)  # the survivor carries on
    stop.set()
    for w in workers:
        w.join(10)
    procs[1].terminate()
    procs[1].wait(20)
    assert len(answered) >= killed_at + 100
    with psycopg.connect(pg_url) as conn:
        rows = {r[0]: r[1:] for r in conn.execute(
            "SELECT request_id, status, http_status, finished_at FROM requests "
            "WHERE request_id = ANY(%s)", (answered,))}
    assert [rid for rid in answered if rid not in rows] == []
    assert all(status == "ok" and code == 200 and done > 0 for status, code, done in
               (rows[rid] for rid in answered))
