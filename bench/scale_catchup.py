"""How a replica's retrieval cache catches up with the shared chunk store (PostgreSQL).

Stores N chunks (default 100k: ~40-line pieces of the Python standard library's sources) in
one namespace of a PostgreSQL started on loopback, then times the first BM25 search of:
  - a new replica (no index files: reads every text, builds BM25 and grep);
  - a restarted replica whose index files are current (checks the store's row keys only);
  - a restarted replica that missed 1,000 chunks added while it was down (patches them in);
and, on a running replica, how long until a chunk another replica added is found.

    python bench/scale_catchup.py --chunks 100000
"""

from __future__ import annotations

import argparse
import json
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from switchyard.retrieval import Index
from switchyard.retrieval.chunk import Chunk, chunk_id
from switchyard.server.stores.pg_chunks import PgChunkStore
from switchyard.server.stores.postgres import Database

from bench.proxy import write_results
from tests.services import Postgres

NAMESPACE = "stdlib"


def pieces(limit: int, lines: int = 40) -> Iterator[tuple[str, str]]:
    root = Path(sysconfig.get_paths()["stdlib"])
    while True:  # the stdlib has ~40k pieces; later rounds shift the cut to stay unique
        for shift in range(0, lines, 7):
            for path in sorted(root.rglob("*.py")):
                try:
                    text = path.read_text(errors="replace").splitlines()
                except OSError:
                    continue
                for start in range(shift, len(text), lines):
                    piece = "\n".join(text[start:start + lines]).strip()
                    if piece and len(piece) < 8_000:  # a few stdlib files hold data blobs
                        yield piece, f"{path.relative_to(root)}:{start + 1}"
                        limit -= 1
                        if limit == 0:
                            return


def chunks(n: int, offset: int = 0) -> list[Chunk]:
    return [Chunk(chunk_id(NAMESPACE, text, source, offset + i), NAMESPACE, text,
                  source=source) for i, (text, source) in enumerate(pieces(n + offset))][offset:]


def first_search(data_dir: Path, store: PgChunkStore, query: str) -> tuple[float, Index]:
    index = Index.open(data_dir, store=store)
    t0 = time.monotonic()
    index.search(query, namespaces=[NAMESPACE], k=5, mode="bm25")
    return time.monotonic() - t0, index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    args = parser.parse_args()
    pg = Postgres.start()
    report: dict[str, object] = {"chunks": args.chunks}
    try:
        database = Database(pg.url)
        store = PgChunkStore(database)
        corpus = chunks(args.chunks + 1_000)
        t0 = time.monotonic()
        for start in range(0, args.chunks, 5_000):
            store.add(corpus[start:min(start + 5_000, args.chunks)])
        report["store_seconds"] = round(time.monotonic() - t0, 1)
        query = "def read_config_file(path, encoding)"
        root = Path(tempfile.mkdtemp(prefix="switchyard-catchup-"))

        cold, index = first_search(root / "a", store, query)
        index.close()  # writes its BM25 and grep files (the replica's cache)
        report["new_replica_s"] = round(cold, 2)
        warm, index = first_search(root / "a", store, query)
        index.close()
        report["restart_current_cache_s"] = round(warm, 2)
        store.add(corpus[args.chunks:])  # 1,000 chunks added while the replica was down
        missed, replica_b = first_search(root / "a", store, query)
        report["restart_missed_1000_s"] = round(missed, 2)

        writer = Index.open(root / "w", store=store)
        extra = Chunk(chunk_id(NAMESPACE, "zyzzyva_marker", "", -1), NAMESPACE,
                      "def zyzzyva_marker(): return 42", source="late.py")
        t0 = time.monotonic()
        writer.add([extra])
        hits = replica_b.search("zyzzyva_marker", namespaces=[NAMESPACE], k=1, mode="bm25")
        report["live_catch_up_ms"] = round((time.monotonic() - t0) * 1000, 1)
        assert hits and hits[0].chunk.source == "late.py"
        replica_b.close()
        database.close()
    finally:
        pg.close()
    print(json.dumps(report, indent=2))
    print(f"written to {write_results('scale-catchup', report)}")


if __name__ == "__main__":
    main()
