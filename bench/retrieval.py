"""Retrieval benchmark: quality of each retriever and of the fusions, speed against rank-bm25.

    .venv/bin/python bench/retrieval.py [--quick] [--scale 100000]

Sets (built here, from real data):
- code-search: docstring first line -> the function (docstring removed from the indexed
  code, as in CodeSearchNet), over starlette, httpx and pydantic from the venv.
- history-recall: tau-bench airline trajectories; a later message's reference (an id, a
  number, an identifier) with its surrounding words -> the earliest message containing it.
  Only messages before the later one count (the recall step looks at the compacted past).
Dense documents are encoded at 128 tokens (MiniLM costs ~linear in tokens on 2 CPU cores).
The scale test uses synthetic chunks with random unit vectors for the documents; queries go
through the real MiniLM encoder. Results are printed and written to bench/results/.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from retrieval import Chunk, Index, IndexConfig, chunk_id
from retrieval.bm25 import Bm25Params, Bm25Shard
from retrieval.fuse import fuse, query_shape, weights_for
from retrieval.tokenize import tokenize

TRAJ = Path("/work/shared/data/trajectories/tau-bench/gpt-4o-airline.json")
RETRIEVERS = ("bm25", "grep", "dense", "hybrid-rrf", "hybrid-convex")


@dataclass
class Query:
    text: str
    namespace: str
    gold: str  # chunk id
    before: int | None = None  # only chunks with message_index < before count


@dataclass
class Benchmark:
    name: str
    chunks: list[Chunk] = field(default_factory=list)
    queries: list[Query] = field(default_factory=list)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- data sets ------------------------------------------------------------------------
def code_search(limit: int, seed: int = 0) -> Benchmark:
    import site

    bench = Benchmark("code-search")
    roots = [Path(p) / pkg for p in site.getsitepackages() for pkg in ("starlette", "httpx",
                                                                        "pydantic")]
    seen: set[str] = set()
    for root in roots:
        for path in sorted(root.rglob("*.py")) if root.is_dir() else []:
            try:
                source = path.read_text()
                tree = ast.parse(source)
            except (SyntaxError, UnicodeDecodeError):
                continue
            lines = source.splitlines()
            for node in ast.walk(tree):
                if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                doc = ast.get_docstring(node)
                if not doc or not node.body or node.end_lineno is None:
                    continue
                first = doc.strip().splitlines()[0].strip()
                if len(first.split()) < 4 or first in seen or len(node.body) < 2:
                    continue
                seen.add(first)
                body0 = node.body[0]
                code = lines[node.lineno - 1 : body0.lineno - 1] + \
                    lines[(body0.end_lineno or body0.lineno) : node.end_lineno]
                text = "\n".join(code)[:4000]
                rel = f"{root.name}/{path.relative_to(root).as_posix()}"
                cid = chunk_id("code", text, rel, node.lineno)
                bench.chunks.append(Chunk(id=cid, namespace="code", text=text, source=rel,
                                          start_line=node.lineno))
                bench.queries.append(Query(first, "code", cid))
    rng = random.Random(seed)
    pairs = list(zip(bench.chunks, bench.queries))
    rng.shuffle(pairs)
    pairs = pairs[:limit]
    bench.chunks = [c for c, _ in pairs]
    bench.queries = [q for _, q in pairs]
    return bench


_REF = re.compile(r"\b(?=[A-Za-z0-9_]*\d)[A-Za-z0-9_]{5,}\b|\b[a-z]+_[a-z_]+\d*\b")


def _message_text(m: dict) -> str:
    parts = [m.get("content") or ""]
    for call in m.get("tool_calls") or []:
        fn = call.get("function", {})
        parts.append(f"{fn.get('name')}({fn.get('arguments')})")
    return "\n".join(p for p in parts if isinstance(p, str))


def history_recall(n_traj: int, per_traj: int = 4, seed: int = 0) -> Benchmark:
    bench = Benchmark("history-recall")
    rng = random.Random(seed)
    trajectories = json.loads(TRAJ.read_text())
    for t_i, traj in enumerate(trajectories[:n_traj]):
        ns = f"traj-{t_i}"
        texts = [_message_text(m) for m in traj["traj"]]
        ids = []
        for i, (m, text) in enumerate(zip(traj["traj"], texts)):
            if i == 0 or not text.strip():  # the system policy is never compacted away
                ids.append(None)
                continue
            cid = chunk_id(ns, text, position=i)
            ids.append(cid)
            bench.chunks.append(Chunk(id=cid, namespace=ns, text=text[:6000], role=m["role"],
                                      message_index=i))
        first_seen: dict[str, int] = {}
        candidates = []
        for i, text in enumerate(texts):
            if ids[i] is None:
                continue
            for ref in set(_REF.findall(text)):
                if ref not in first_seen:
                    first_seen[ref] = i
                elif i - first_seen[ref] >= 3:
                    candidates.append((ref, i, first_seen[ref]))
        rng.shuffle(candidates)
        used: set[str] = set()
        for ref, later, origin in candidates:
            if ref in used or len(used) >= per_traj:
                continue
            used.add(ref)
            words = texts[later].split()
            at = next((w for w, tok in enumerate(words) if ref in tok), 0)
            window = " ".join(words[max(0, at - 8) : at + 9])
            bench.queries.append(Query(window, ns, ids[origin], before=later))
    return bench


# -- evaluation -----------------------------------------------------------------------
def _search_all(index: Index, q: Query, depth: int) -> dict[str, list[str]]:
    """Each retriever's ranking, and both fusions of the same three rankings."""
    from retrieval.select import Hits

    shards = index._validate(q.text, [q.namespace], depth, "hybrid")[q.namespace]
    from retrieval.grep import compile_literals
    from retrieval.index import HYBRID_MAX_MATCHES

    results: dict[str, Hits] = {"bm25": shards.bm25.search(q.text, depth)}
    shape = query_shape(q.text)
    weights = weights_for(shape).as_dict()
    # Grep alone is run on the query's literals, or the whole query when it has none.
    literals = shape.literals or (q.text,)
    grep = shards.grep.search(compile_literals(literals), depth, HYBRID_MAX_MATCHES)
    results["grep"] = grep
    qvec = index._encoder().encode([q.text])[0]
    results["dense"] = index._dense(q.namespace, shards).search(qvec, depth)
    fused_in = {k: v for k, v in results.items() if k != "grep" or weights["grep"] > 0}
    ranked = {name: hits.ids.tolist() for name, hits in results.items()}
    ranked["hybrid-rrf"] = fuse(fused_in, weights, depth, "rrf").ids.tolist()
    ranked["hybrid-convex"] = fuse(fused_in, weights, depth, "convex").ids.tolist()
    rowids = {r for ids in ranked.values() for r in ids}
    chunks = index.store.get_rows(list(rowids))
    out = {}
    for name, ids in ranked.items():
        keep = [chunks[r] for r in ids if r in chunks]
        if q.before is not None:
            keep = [c for c in keep if (c.message_index or 0) < q.before]
        out[name] = [c.id for c in keep[:10]]
    return out


def evaluate(bench: Benchmark, index: Index) -> dict[str, dict[str, float]]:
    recall = {r: 0.0 for r in RETRIEVERS}
    ndcg = {r: 0.0 for r in RETRIEVERS}
    for q in bench.queries:
        for name, ids in _search_all(index, q, depth=50).items():
            if q.gold in ids:
                recall[name] += 1
                ndcg[name] += 1 / math.log2(ids.index(q.gold) + 2)
    n = max(len(bench.queries), 1)
    return {r: {"recall@10": recall[r] / n, "ndcg@10": ndcg[r] / n} for r in RETRIEVERS}


def build(bench: Benchmark, data_dir: Path, encoder) -> tuple[Index, dict[str, float]]:
    index = Index.open(data_dir, IndexConfig(), encoder=lambda: encoder)
    t0 = time.monotonic()
    index.add(bench.chunks)
    namespaces = sorted({c.namespace for c in bench.chunks})
    for ns in namespaces:
        index._load(ns)
    t1 = time.monotonic()
    for ns in namespaces:
        index._dense(ns, index._load(ns))
    t2 = time.monotonic()
    return index, {"store+bm25+grep_s": t1 - t0, "dense_s": t2 - t1,
                   "chunks": len(bench.chunks), "queries": len(bench.queries)}


# -- speed ----------------------------------------------------------------------------
def bm25_vs_rank_bm25(bench: Benchmark) -> dict[str, float]:
    from rank_bm25 import BM25Okapi

    texts = [c.text for c in bench.chunks]
    queries = [q.text for q in bench.queries]
    shard = Bm25Shard(Bm25Params(method="atire", idf_method="robertson"))
    shard.add(list(enumerate(texts)))
    shard.merge()
    shard.search(queries[0], 10)  # compile numba outside the timing
    reference = BM25Okapi([tokenize(t) for t in texts], epsilon=0)
    t0 = time.monotonic()
    ours = [shard.search(q, 10) for q in queries]
    t_ours = time.monotonic() - t0
    t0 = time.monotonic()
    ref_scores = [reference.get_scores(tokenize(q)) for q in queries]
    ref_top = [np.argsort(-s, kind="stable")[:10] for s in ref_scores]
    t_ref = time.monotonic() - t0
    equal = 0
    for hits, scores, top in zip(ours, ref_scores, ref_top):
        cut = scores[top[-1]]
        strict_ref = set(np.flatnonzero(scores > cut + 1e-4).tolist())
        got = hits.ids.tolist()
        equal += strict_ref <= set(got) and all(scores[g] >= cut - 1e-4 for g in got)
    return {"docs": len(texts), "queries": len(queries),
            "bm25s_qps": len(queries) / t_ours, "rank_bm25_qps": len(queries) / t_ref,
            "speedup": t_ref / t_ours, "top10_equal_share": equal / len(queries)}


class _ScaleEncoder:
    """Random unit vectors for bulk documents; the real MiniLM for queries (one text)."""

    def __init__(self, real) -> None:
        self.real = real
        self.rng = np.random.default_rng(0)

    def encode(self, texts):
        if len(texts) == 1:
            return self.real.encode(texts)
        x = self.rng.standard_normal((len(texts), 384)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)


def scale_test(n: int, real_encoder, n_queries: int = 60) -> dict[str, float]:
    rng = random.Random(1)
    words = [f"{a}{b}" for a in ("get", "set", "load", "parse", "user", "flight", "cache",
                                 "request", "token", "error") for b in
             ("", "_id", "Name", "_path", "Count", "_list", "Handler", "42", "Config")]
    words += ["the", "a", "refund", "booking", "reservation", "cancel", "delayed", "payment", "baggage", "seat"]
    with tempfile.TemporaryDirectory() as tmp:
        index = Index.open(Path(tmp), encoder=lambda: _ScaleEncoder(real_encoder))
        t0 = time.monotonic()
        chunks = []
        for i in range(n):
            text = " ".join(rng.choices(words, k=rng.randint(20, 80))) + f" ref{i}"
            chunks.append(Chunk(id=chunk_id("big", text, position=i), namespace="big",
                                text=text))
        index.add(chunks)
        shards = index._load("big")
        t1 = time.monotonic()
        index._dense("big", shards)
        t2 = time.monotonic()
        queries = [f"why did {rng.choice(words)} fail for the {rng.choice(words)} booking"
                   if i % 2 else f"ref{rng.randrange(n)} {rng.choice(words)}"
                   for i in range(n_queries)]
        encode_times, total_times = [], []
        for q in queries:
            e0 = time.monotonic()
            real_encoder.encode([q + " (uncached)"])
            encode_times.append(time.monotonic() - e0)
        for q in queries:
            s0 = time.monotonic()
            index.search(q, namespaces=["big"], k=10)
            total_times.append(time.monotonic() - s0)
        retrieval_times = []
        for q in queries:  # the query vectors are cached now: retrieval alone
            s0 = time.monotonic()
            index.search(q, namespaces=["big"], k=10)
            retrieval_times.append(time.monotonic() - s0)
        hnsw = index._load("big").dense.is_hnsw
        index.close()
    ms = lambda xs: 1000 * float(np.median(xs))
    return {"chunks": n, "hnsw": hnsw, "build_bm25_grep_store_s": t1 - t0,
            "build_dense_index_s": t2 - t1, "hybrid_p50_ms": ms(total_times),
            "hybrid_p50_ms_cached_query_vector": ms(retrieval_times),
            "query_encode_p50_ms": ms(encode_times),
            "hybrid_p95_ms": 1000 * float(np.percentile(total_times, 95))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sets, 20k scale test")
    parser.add_argument("--scale", type=int, default=None, help="chunks in the scale test")
    parser.add_argument("--code", type=int, default=None, help="functions in code-search")
    parser.add_argument("--traj", type=int, default=None, help="tau-bench trajectories")
    parser.add_argument("--scale-only", action="store_true", help="only the scale test")
    args = parser.parse_args()
    n_code = args.code or (300 if args.quick else 1500)
    n_traj = args.traj or (10 if args.quick else 40)
    n_scale = args.scale or (20_000 if args.quick else 100_000)

    from retrieval.embedding import Encoder

    encoder = Encoder(max_tokens=128)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=False).stdout.strip()
    report: dict = {"commit": commit, "sets": {}}
    sets = () if args.scale_only else (code_search(n_code), history_recall(n_traj))
    for bench in sets:
        with tempfile.TemporaryDirectory() as tmp:
            index, build_stats = build(bench, Path(tmp), encoder)
            quality = evaluate(bench, index)
            index.close()
        report["sets"][bench.name] = {"build": build_stats, "quality": quality}
        print(f"\n{bench.name}: {build_stats['chunks']} chunks, {build_stats['queries']} "
              f"queries; build {build_stats['store+bm25+grep_s']:.1f} s (+ dense "
              f"{build_stats['dense_s']:.1f} s)")
        print(f"  {'retriever':<15}{'recall@10':>10}{'nDCG@10':>10}")
        for name, q in quality.items():
            print(f"  {name:<15}{q['recall@10']:>10.3f}{q['ndcg@10']:>10.3f}")
    speed = report["bm25_speed"] = bm25_vs_rank_bm25(code_search(n_code))
    print(f"\nBM25 on {speed['docs']} docs: bm25s {speed['bm25s_qps']:.0f} q/s vs rank-bm25 "
          f"{speed['rank_bm25_qps']:.1f} q/s = {speed['speedup']:.0f}x; "
          f"top-10 equal (up to ties) on {100 * speed['top10_equal_share']:.0f}% of queries")
    report["scale"] = scale = scale_test(n_scale, encoder)
    print(f"\nscale {scale['chunks']} chunks (HNSW={scale['hnsw']}): hybrid p50 "
          f"{scale['hybrid_p50_ms']:.1f} ms (p95 {scale['hybrid_p95_ms']:.1f}); with the query "
          f"vector cached {scale['hybrid_p50_ms_cached_query_vector']:.1f} ms; MiniLM query "
          f"encode p50 {scale['query_encode_p50_ms']:.1f} ms; build {scale['build_bm25_grep_store_s']:.1f}"
          f" s + dense index {scale['build_dense_index_s']:.1f} s")
    report["peak_rss_mb"] = peak_rss_mb()
    print(f"peak RSS {report['peak_rss_mb']:.0f} MB")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    path = out / f"retrieval-{int(time.time())}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
