"""The Index facade: store round trips, reload from disk, bad input, hybrid with MiniLM."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from switchyard import retrieval
from switchyard.retrieval import (
    Chunk,
    ChunkTooLarge,
    Index,
    IndexConfig,
    InvalidQuery,
    UnknownNamespace,
    chunk_id,
)
from switchyard.retrieval.bm25 import Bm25Params

TEXTS = [
    "The user asked to cancel reservation 4WQ150 on flight UA123.",
    "def get_user_name(user_id):\n    return USERS[user_id].name\n",
    "Traceback: KeyError: 'user_42' in src/app/users.py line 17",
    "Weather in Paris is sunny and warm this week.",
    "Refunds go back to the original payment method within 7 days.",
]
CONFIG = IndexConfig(bm25=Bm25Params(backend="numpy"))


def _chunks(namespace: str, texts: list[str] = TEXTS) -> list[Chunk]:
    return [Chunk(id=chunk_id(namespace, t, position=i), namespace=namespace, text=t,
                  role="user", message_index=i) for i, t in enumerate(texts)]


def _no_encoder() -> None:
    raise AssertionError("bm25 and grep searches must not load the encoder")


@pytest.fixture()
def index(tmp_path: Path):
    with Index.open(tmp_path, CONFIG, encoder=_no_encoder) as ix:
        yield ix


def test_add_search_delete_reload(tmp_path: Path) -> None:
    ix = Index.open(tmp_path, CONFIG, encoder=_no_encoder)
    originals = _chunks("s1")
    ids = ix.add(originals)
    assert len(ids) == 5 and ix.has_chunks("s1") and not ix.has_chunks("s2")
    hits = ix.search("cancel reservation", namespaces=["s1"], k=3, mode="bm25")
    assert hits[0].chunk_id == ids[0] and hits[0].ranks == {"bm25": 1}
    assert hits[0].chunk.text == TEXTS[0]
    assert ix.delete([ids[0], "no-such-id"]) == 1
    assert ids[0] not in [h.chunk_id for h in ix.search("reservation", namespaces=["s1"],
                                                          mode="bm25")]
    ix.add(_chunks("s1", ["A new note about the reservation desk."]))
    ix.close()
    assert (tmp_path / "chunks.sqlite").exists()
    with Index.open(tmp_path, CONFIG, encoder=_no_encoder) as again:
        assert again.namespaces() == ["s1"]
        hits = again.search("reservation", namespaces=["s1"], mode="bm25")
        assert [h.chunk.text for h in hits] == ["A new note about the reservation desk."]
        assert again.get([ids[1], ids[0]]) == [originals[1]]
        # the saved BM25 arrays are memory-mapped on load
        shards = again._load("s1")
        assert len(shards.bm25) == 5


def test_duplicates_by_content_are_skipped(index: Index) -> None:
    first = index.add(_chunks("s1"))
    again = index.add([Chunk(id="other-id", namespace="s1", text=TEXTS[2])])
    assert again == [first[2]]
    assert index.store.count("s1") == 5
    index.add(_chunks("s2", TEXTS[:1]))  # the same text in another namespace is stored
    assert index.store.count("s2") == 1


def test_grep_mode_literal_regex_and_line_numbers(index: Index) -> None:
    index.add(_chunks("s1"))
    hits = index.search("USERS[user_id]", namespaces=["s1"], mode="grep")
    assert [h.chunk.text for h in hits] == [TEXTS[1]] and hits[0].lines == (2,)
    hits = index.search(r"/user_\d+/", namespaces=["s1"], mode="grep")
    assert [h.chunk.text for h in hits] == [TEXTS[2]]
    with pytest.raises(InvalidQuery, match="invalid regular expression"):
        index.search("/(unclosed/", namespaces=["s1"], mode="grep")


def test_searches_several_namespaces(index: Index) -> None:
    index.add(_chunks("s1", TEXTS[:2]))
    index.add(_chunks("docs", TEXTS[2:]))
    hits = index.search("user", namespaces=["s1", "docs"], k=10, mode="bm25")
    assert {h.chunk.namespace for h in hits} == {"s1", "docs"}


def test_bad_input(index: Index) -> None:
    index.add(_chunks("s1"))
    with pytest.raises(InvalidQuery, match="empty query"):
        index.search("   ", namespaces=["s1"])
    with pytest.raises(UnknownNamespace, match="nope") as info:
        index.search("user", namespaces=["nope"])
    assert info.value.param == "namespaces" and isinstance(info.value, retrieval.RetrievalError)
    with pytest.raises(InvalidQuery, match="mode"):
        index.search("user", namespaces=["s1"], mode="fuzzy")  # type: ignore[arg-type]
    for k in (0, -1, 10_000, True):
        with pytest.raises(InvalidQuery, match="k must be"):
            index.search("user", namespaces=["s1"], k=k)
    with pytest.raises(InvalidQuery, match="namespaces"):
        index.search("user", namespaces="s1")
    big = Chunk(id="big", namespace="s1", text="x" * (index.store.max_chunk_chars + 1))
    with pytest.raises(ChunkTooLarge, match="over the limit"):
        index.add([big])


def test_schema_and_migrations(tmp_path: Path) -> None:
    Index.open(tmp_path, CONFIG).close()
    Index.open(tmp_path, CONFIG).close()  # a second open runs nothing twice
    db = sqlite3.connect(tmp_path / "chunks.sqlite")
    assert [r[0] for r in db.execute("SELECT name FROM _switchyard_migrations")] == [
        "m001_initial", "m002_one_migrations_table"]
    cols = [r[1] for r in db.execute("PRAGMA table_info(chunks)")]
    assert cols == ["rowid", "id", "namespace", "text", "role", "message_index", "source",
                    "start_line", "tokens", "created_at", "content_hash"]
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_index_path_honours_gitignore(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "build").mkdir()
    (repo / ".gitignore").write_text("build/\n*.log\n")
    (repo / "pkg" / "app.py").write_text("def handler(event):\n    return parse_event(event)\n")
    (repo / "pkg" / ".gitignore").write_text("secret.py\n")
    (repo / "pkg" / "secret.py").write_text("TOKEN = 'parse_event'\n")
    (repo / "build" / "out.py").write_text("parse_event = None\n")
    (repo / "run.log").write_text("parse_event failed\n")
    (repo / "blob.bin").write_bytes(b"\x00\x01parse_event")
    with Index.open(tmp_path / "data", CONFIG, encoder=_no_encoder) as ix:
        stats = ix.index_path(repo, "repo", dense=False)
        assert (stats.files, stats.files_skipped, stats.added) == (4, 1, 3)
        hits = ix.search("parse_event", namespaces=["repo"], mode="grep")
        assert [(h.chunk.source, h.lines) for h in hits] == [("pkg/app.py", (2,))]


@pytest.fixture(scope="module")
def encoder():
    from switchyard.retrieval.embedding import get_encoder

    enc = get_encoder()  # about 5 s once per test session
    return lambda: enc


def test_hybrid_and_dense_with_minilm(tmp_path: Path, encoder) -> None:
    with Index.open(tmp_path, CONFIG, encoder=encoder) as ix:
        ix.add(_chunks("s1"))
        dense = ix.search("how long until I get my money back", namespaces=["s1"], k=2,
                          mode="dense")
        assert dense[0].chunk.text == TEXTS[4] and dense[0].ranks == {"dense": 1}
        hybrid = ix.search("where is get_user_name defined", namespaces=["s1"], k=3)
        assert hybrid[0].chunk.text == TEXTS[1]
        assert set(hybrid[0].ranks) == {"bm25", "grep", "dense"}
        # dense vectors catch up with later adds and deletes
        [new] = ix.add(_chunks("s1", ["Lost luggage claims need the bag tag number."]))
        assert ix.search("my suitcase never arrived", namespaces=["s1"], k=1,
                         mode="dense")[0].chunk_id == new
        ix.delete([new])
        assert new not in [h.chunk_id for h in ix.search("suitcase", namespaces=["s1"],
                                                          mode="dense")]
    with Index.open(tmp_path, CONFIG, encoder=encoder) as again:  # dense.faiss reloaded
        assert again.search("refund timing", namespaces=["s1"], k=1,
                            mode="dense")[0].chunk.text == TEXTS[4]


def test_rankings_are_what_hybrid_fuses(tmp_path: Path, encoder) -> None:
    from switchyard.retrieval.fuse import fuse, fusion_for, query_shape

    query = "KeyError user_42 in src/app/users.py"
    with Index.open(tmp_path, CONFIG, encoder=encoder) as ix:
        ix.add(_chunks("s1"))
        results, weights = ix.rankings(query, namespaces=["s1"])  # search's depth
        assert set(results) == {"bm25", "grep", "dense"}  # literals: grep runs
        assert results["grep"].ids[0] == results["bm25"].ids[0]  # the traceback chunk
        fused = fuse(results, weights, 3, fusion_for(query_shape(query)))
        hits = ix.search(query, namespaces=["s1"], k=3)
        rows = ix.store.get_rows(fused.ids.tolist())
        assert [h.chunk_id for h in hits] == [rows[r].id for r in fused.ids.tolist()]
        assert hits[0].chunk.text == TEXTS[2] and hits[0].lines == (1,)
        prose, _ = ix.rankings("how long do refunds take", namespaces=["s1"])
        assert "grep" not in prose  # no literal: grep is not run
