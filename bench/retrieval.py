"""Retrieval benchmark: quality of each retriever and of the fusions, speed against rank-bm25.

    .venv/bin/python bench/retrieval.py [--quick] [--scale 100000] [--repeat 3]

Quality sets (built here, from real data), split in two halves by trajectory / function;
the fusion's weights per table row (and one fusion per table: RRF with its constant, or
convex) are tuned on one half and reported on the other, then the halves swap (2-fold
cross-validation: every query is held out once). There are two tables, by namespace kind:
"corpus" (a row per query shape, tuned on code search) and "history" (rows "prose" and
"named", tuned on the trajectory sets); "hybrid-one-table" is the same procedure with one
table for all, as shipped in round 3. The tuning objective is robust: the worst margin, over
sets and metrics, of the fusion over each set's best single retriever (not the pooled mean,
which one big set rules):
- code-search: docstring first line -> the function (docstring removed from the indexed
  code, as in CodeSearchNet), over starlette, httpx and pydantic from the venv.
- history-tau / history-swe: tau-bench airline (the first 40 runs; history-tau-all: all 200,
  trials of one task in one half) and SWE-agent trajectories; a later message's
  reference (an id, a number, an identifier) with its surrounding words -> the earliest chunk
  containing it. Only chunks before the later message count (the recall step looks back).
Speed: BM25 against rank-bm25 on a real code corpus (functions, classes and module docstrings
of installed packages; tens of thousands of documents), single queries and batches; the
hybrid query at 100k chunks of that corpus, stage by stage. Scale documents get random unit
vectors (encoding 100k texts with MiniLM takes ~5 min on 2 cores); queries use the real
encoder, reported separately. Each timing is taken `--repeat` times: best and spread.
Results are printed and written to bench/results/.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import itertools
import json
import math
import random
import re
import resource
import site
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from switchyard.retrieval import Chunk, Index, IndexConfig, chunk_id
from switchyard.retrieval.bm25 import Bm25Params, Bm25Shard
from switchyard.retrieval.faiss_index import DenseShard
from switchyard.retrieval.fuse import (
    FUSION_TABLES,
    NAMESPACE_KINDS,
    TABLE_ROWS,
    fuse,
    query_shape,
    table_row,
)
from switchyard.retrieval.grep import compile_literals
from switchyard.retrieval.index import _grep
from switchyard.retrieval.select import Hits
from switchyard.retrieval.tokenize import tokenize

DATA = Path("/work/shared/data/trajectories")
TAU = DATA / "tau-bench/gpt-4o-airline.json"
SWE = DATA / "swe-agent"
SINGLE = ("bm25", "grep", "dense")
PACKAGES = ("numpy", "scipy", "torch", "transformers", "litellm", "pydantic", "starlette",
            "httpx", "sympy")
GRID = (0.0, 0.5, 1.0)  # coarse on purpose: 26 weightings per shape, not 124
RRF_CS = (1, 2, 3, 5, 10)  # RRF constants the auto procedure chooses from (per table)


@dataclass
class Query:
    text: str
    namespace: str
    gold: str  # chunk id
    before: int | None = None  # only chunks with message_index < before count
    split: str = "test"  # "dev" (tuning) or "test" (reported)


@dataclass
class Benchmark:
    name: str
    chunks: list[Chunk] = field(default_factory=list)
    queries: list[Query] = field(default_factory=list)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _split(key: str) -> str:
    return "dev" if hashlib.blake2b(key.encode(), digest_size=2).digest()[0] % 2 else "test"


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, list[float]]:
    """(best, all) wall seconds of `repeat` runs: the machine is shared, the best is the
    least disturbed."""
    runs = []
    for _ in range(repeat):
        t0 = time.monotonic()
        fn()
        runs.append(time.monotonic() - t0)
    return min(runs), runs


# -- data sets ------------------------------------------------------------------------
def _parsed(root: Path):
    """(path relative to root's parent, source lines, AST) of each parseable .py under root."""
    for path in sorted(root.rglob("*.py")) if root.is_dir() else []:
        try:
            source = path.read_text()
            tree = ast.parse(source)
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        yield f"{root.name}/{path.relative_to(root).as_posix()}", source.splitlines(), tree


def _functions(roots: Sequence[Path]):
    """(relative path, line, docstring first line, code without the docstring) per function."""
    for root in roots:
        for rel, lines, tree in _parsed(root):
            for node in ast.walk(tree):
                if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                doc = ast.get_docstring(node)
                if not doc or len(node.body) < 2 or node.end_lineno is None:
                    continue
                body0 = node.body[0]
                code = lines[node.lineno - 1 : body0.lineno - 1] + \
                    lines[(body0.end_lineno or body0.lineno) : node.end_lineno]
                yield rel, node.lineno, doc.strip().splitlines()[0].strip(), "\n".join(code)


def code_search(limit: int, seed: int = 0) -> Benchmark:
    bench = Benchmark("code-search")
    roots = [Path(p) / pkg for p in site.getsitepackages()
             for pkg in ("starlette", "httpx", "pydantic")]
    seen: set[str] = set()
    pairs = []
    for rel, line, first, code in _functions(roots):
        if len(first.split()) < 4 or first in seen:
            continue
        seen.add(first)
        text = code[:4000]
        cid = chunk_id("code", text, rel, line)
        pairs.append((Chunk(id=cid, namespace="code", text=text, source=rel, start_line=line),
                      Query(first, "code", cid, split=_split(cid))))
    random.Random(seed).shuffle(pairs)
    bench.chunks = [c for c, _ in pairs[:limit]]
    bench.queries = [q for _, q in pairs[:limit]]
    return bench


_REF = re.compile(r"\b(?=[A-Za-z0-9_]*\d)[A-Za-z0-9_]{5,}\b|\b[a-z]+_[a-z_]+\d*\b")


def _message_text(m: dict) -> str:
    content = m.get("content") or ""
    if isinstance(content, list):
        content = "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
    parts = [content]
    for call in m.get("tool_calls") or []:
        fn = call.get("function", {})
        parts.append(f"{fn.get('name')}({fn.get('arguments')})")
    return "\n".join(p for p in parts if isinstance(p, str))


def _pieces(text: str, size: int = 4000) -> list[str]:
    """A long message (a file view, a test log) as chunks of whole lines, as stored."""
    out, cur = [], ""
    for line in text.splitlines(keepends=True):
        if cur and len(cur) + len(line) > size:
            out.append(cur)
            cur = ""
        cur += line[:size]
    return [*out, cur] if cur.strip() else out


def history_set(name: str, trajectories: Sequence[list[dict]], per_traj: int,
                seed: int = 0, groups: Sequence[int] | None = None) -> Benchmark:
    """Each trajectory is a namespace; a query is a later message's words around a reference
    first seen >= 3 messages earlier; the gold is the chunk where it was first seen.
    `groups`: trajectories of one group (trials of one task) fall in the same CV half."""
    bench = Benchmark(name)
    rng = random.Random(seed)
    for t_i, messages in enumerate(trajectories):
        ns = f"{name}-{t_i}"
        split = _split(f"{name}-{groups[t_i] if groups else t_i}")
        first_seen: dict[str, tuple[int, str]] = {}
        candidates = []
        for i, m in enumerate(messages):
            text = _message_text(m)
            if i == 0 or not text.strip():  # the system prompt is never compacted away
                continue
            refs_here: set[str] = set()
            for p_i, piece in enumerate(_pieces(text)):
                cid = chunk_id(ns, piece, position=i * 1000 + p_i)
                bench.chunks.append(Chunk(id=cid, namespace=ns, text=piece, role=m["role"],
                                          message_index=i))
                for ref in _REF.findall(piece):
                    first_seen.setdefault(ref, (i, cid))
                    refs_here.add(ref)
            for ref in sorted(refs_here):  # sorted: set order changes with the hash seed
                if i - first_seen[ref][0] >= 3:
                    candidates.append((ref, i, text))
        rng.shuffle(candidates)
        used: set[str] = set()
        for ref, later, text in candidates:
            if ref in used or len(used) >= per_traj:
                continue
            used.add(ref)
            words = text.split()
            at = next((w for w, tok in enumerate(words) if ref in tok), 0)
            window = " ".join(words[max(0, at - 8) : at + 9])
            bench.queries.append(Query(window, ns, first_seen[ref][1], before=later,
                                       split=split))
    return bench


def history_tau(n_traj: int, name: str = "history-tau") -> Benchmark:
    """The first `n_traj` of 200 runs (50 tasks, then their 2nd, 3rd and 4th trials)."""
    runs = json.loads(TAU.read_text())[:n_traj]
    return history_set(name, [t["traj"] for t in runs], per_traj=4,
                       groups=[int(t["task_id"]) for t in runs])


def history_swe(n_traj: int) -> Benchmark:
    trajectories = [json.loads(p.read_text())["history"] for p in sorted(SWE.glob("*.traj"))]
    return history_set("history-swe", trajectories[:n_traj], per_traj=12)


# -- evaluation -----------------------------------------------------------------------
@dataclass
class Ranked:
    """One query's rankings: what hybrid search fuses, plus grep run on its own."""

    query: Query
    kind: str
    results: dict[str, Hits]
    grep_alone: Hits
    table: str = "corpus"  # the namespace kind: which fusion table the query uses

    @property
    def label(self) -> str:
        """The table row the query uses: "table:row" (TABLE_ROWS)."""
        return f"{self.table}:{table_row(self.kind, self.table)}"


def collect(bench: Benchmark, index: Index, depth: int = 50) -> list[Ranked]:
    out = []
    for q in bench.queries:
        results, _ = index.rankings(q.text, namespaces=[q.namespace], depth=depth)
        shape = query_shape(q.text)
        # Grep alone runs on the query's literals, or on the whole query when it has none.
        grep = _grep(index._load(q.namespace), compile_literals(shape.literals or (q.text,)),
                     (), depth)
        out.append(Ranked(q, shape.kind, results, grep, index.namespace_kind([q.namespace])))
    return out


class Judge:
    """recall@10 and nDCG@10 of a ranking of store row ids against a query's gold chunk."""

    def __init__(self, index: Index) -> None:
        rows = index.store._db().execute("SELECT rowid, id, message_index FROM chunks")
        self.rows = {r: (cid, mi) for r, cid, mi in rows}

    def __call__(self, ids: np.ndarray, q: Query) -> tuple[float, float]:
        keep = [self.rows[r] for r in ids.tolist() if r in self.rows]
        if q.before is not None:
            keep = [c for c in keep if (c[1] or 0) < q.before]
        top = [cid for cid, _ in keep[:10]]
        if q.gold not in top:
            return 0.0, 0.0
        return 1.0, 1 / math.log2(top.index(q.gold) + 2)


FUSED_DEPTH = 50


def weight_options() -> list[dict[str, float]]:
    return [{"bm25": b, "grep": g, "dense": d} for b, g, d in itertools.product(GRID, repeat=3)
            if b or g or d]


Variant = tuple[str, int]  # (fusion method, RRF constant; 0 for convex)


@dataclass
class Options:
    """Held-out metrics of every fusion option on every query: per set, an array
    (queries x options x [recall@10, nDCG@10]). An option is (variant, weights)."""

    options: list[tuple[Variant, dict[str, float]]]
    per_set: dict[str, np.ndarray]


def score_options(ranked: dict[str, list[Ranked]], judges: dict[str, Judge],
                  variants: Sequence[Variant]) -> Options:
    options = [(v, w) for v in variants for w in weight_options()]
    per_set = {}
    for name, rs in ranked.items():
        out = np.zeros((len(rs), len(options), 2))
        for qi, r in enumerate(rs):
            seen: dict[tuple, tuple[float, float]] = {}
            for oi, ((method, c), w) in enumerate(options):
                live = {n: (w[n] if n in r.results else 0.0) for n in w}  # no literals: no grep
                key = (method, c, *live.values())
                if key not in seen:
                    seen[key] = judges[name](fuse(r.results, live, FUSED_DEPTH, method, c).ids,
                                             r.query) if any(live.values()) else (0.0, 0.0)
                out[qi, oi] = seen[key]
        per_set[name] = out
    return Options(options, per_set)


def single_scores(ranked: dict[str, list[Ranked]], judges: dict[str, Judge]) -> dict:
    """Per set, (queries x [bm25, grep, dense] x [recall@10, nDCG@10])."""
    out = {}
    for name, rs in ranked.items():
        runs = [[judges[name](ids, r.query) for ids in
                 (r.results["bm25"].ids, r.grep_alone.ids, r.results["dense"].ids)] for r in rs]
        out[name] = np.asarray(runs, dtype=np.float64).reshape(len(rs), len(SINGLE), 2)
    return out


def _held(options: Options, ranked: dict[str, list[Ranked]], choice: dict[str, int],
          rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Mean [recall, nDCG] per set of the chosen option per shape, over the given queries."""
    out = {}
    for name, rs in ranked.items():
        picks = np.asarray([choice[rs[q].label] for q in rows[name]], dtype=np.int64)
        out[name] = options.per_set[name][rows[name], picks].mean(axis=0)
    return out


def _objective(options: Options, ranked, singles, choice, rows) -> tuple[float, ...]:
    """The margins of the fusion over each set's best single retriever (every set, both
    metrics), sorted worst first, compared lexicographically (leximin): the worst margin
    decides, then the next; a table that wins on average by losing one set scores low."""
    got = _held(options, ranked, choice, rows)
    margins = np.concatenate([got[n] - singles[n][rows[n]].mean(axis=0).max(axis=0)
                              for n in ranked])
    return tuple(np.round(np.sort(margins), 9).tolist())


def tune_robust(options: Options, ranked: dict[str, list[Ranked]], singles: dict,
                rows: dict[str, np.ndarray]) -> tuple[dict[str, int], tuple[float, ...]]:
    """Per fusion table (corpus, history), tuned on the sets that use it: per row, the
    option maximising the margins (leximin), with one fusion variant (RRF and its constant,
    or convex) for the table. Rows no query of a table uses take one by design
    (_fill_empty)."""
    choice: dict[str, int] = {}
    margins: list[float] = []
    for table in NAMESPACE_KINDS:
        names = [n for n, rs in ranked.items() if rs and rs[0].table == table]
        assert all(r.table == table for n in names for r in ranked[n]), "one table per set"
        if names:
            part, score = _tune_table(options, {n: ranked[n] for n in names}, singles, rows,
                                      table)
            choice.update(part)
            margins.extend(score)
    _fill_empty(options, choice)
    return choice, tuple(sorted(margins))


def _tune_table(options: Options, ranked: dict[str, list[Ranked]], singles: dict,
                rows: dict[str, np.ndarray], table: str) -> tuple[dict[str, int], tuple]:
    """Coordinate ascent over the table's rows (the objective is not a sum over them)."""
    present = [k for k in TABLE_ROWS[table]
               if any(ranked[n][q].label == f"{table}:{k}" for n in ranked for q in rows[n])]
    best: tuple[dict[str, int], tuple[float, ...]] | None = None
    for variant in dict.fromkeys(v for v, _ in options.options):
        allowed = {kind: [i for i, (v, w) in enumerate(options.options)
                          if v == variant and _fits_design(kind, w)] for kind in present}
        start = next(i for i, (v, w) in enumerate(options.options)
                     if v == variant and set(w.values()) == {GRID[-1]})
        choice = {f"{table}:{kind}": start for kind in TABLE_ROWS[table]}
        score = _objective(options, ranked, singles, choice, rows)
        for _ in range(4):
            improved = False
            for kind in present:
                for i in allowed[kind]:
                    trial = {**choice, f"{table}:{kind}": i}
                    value = _objective(options, ranked, singles, trial, rows)
                    if value > score:
                        choice, score, improved = trial, value, True
            if not improved:
                break
        if best is None or score > best[1]:
            best = (choice, score)
    assert best is not None
    present_labels = {f"{table}:{k}" for k in present}
    return {k: v for k, v in best[0].items() if k in present_labels}, best[1]


def _fill_empty(options: Options, choice: dict[str, int]) -> None:
    """Rows without queries to tune on: a corpus shape takes the corpus "literal" row (a
    record is literals too), else equal weights; a history row takes the corpus row of its
    name ("named": the corpus "literal" row), since a history differs where queries name
    things, which the tuned "named" row covers."""
    equal = next(i for i, (v, w) in enumerate(options.options) if set(w.values()) == {GRID[-1]})
    for kind in TABLE_ROWS["corpus"]:
        choice.setdefault(f"corpus:{kind}", choice.get("corpus:literal", equal))
    for kind in TABLE_ROWS["history"]:
        choice.setdefault(f"history:{kind}", choice.get(f"corpus:{kind}",
                                                        choice["corpus:literal"]))


def _fits_design(kind: str, weights: dict[str, float]) -> bool:
    """DESIGN.md: a query that is only a few literals (an identifier, a path, a quoted
    string) is grep's first; the others may add to it, and with a weight of 0 they still
    fill the list after grep's hits (RRF gives them 0, in BM25's order). In a history a
    query naming something ("named") takes grep's order outright (first mentions first),
    the others only filling: letting BM25 in (.5 to grep's 1) won in-sample on 40 tau runs
    and lost held out on both history sets. Other rows are free."""
    if kind == "named":
        return weights["grep"] > 0 and weights["bm25"] == weights["dense"] == 0
    if kind != "literal":
        return True
    return weights["grep"] >= max(weights["bm25"], weights["dense"])


def cross_validate(options: Options, ranked: dict[str, list[Ranked]],
                   singles: dict) -> tuple[dict[str, np.ndarray], list[dict]]:
    """2-fold: tune on one half (by trajectory / function), measure the other, swap."""
    split = {n: np.asarray([r.query.split for r in rs]) for n, rs in ranked.items()}
    totals = {n: np.zeros(2) for n in ranked}
    tables = []
    for train, held in (("dev", "test"), ("test", "dev")):
        fit = {n: np.flatnonzero(split[n] == train) for n in ranked}
        out = {n: np.flatnonzero(split[n] == held) for n in ranked}
        choice, _ = tune_robust(options, ranked, singles, fit)
        tables.append(table_of(options, choice))
        for name, value in _held(options, ranked, choice, out).items():
            totals[name] += value * out[name].size / max(len(ranked[name]), 1)
    return totals, tables


def table_of(options: Options, choice: dict[str, int]) -> dict:
    """{table: {row: {method, rrf_c, weights}}} of a choice keyed "table:row"."""
    out: dict[str, dict] = {t: {} for t in NAMESPACE_KINDS}
    for label, i in sorted(choice.items()):
        table, kind = label.split(":")
        (method, c), weights = options.options[i]
        out[table][kind] = {"method": method, "rrf_c": c, "weights": weights}
    return out


def quality(benches: Sequence[Benchmark], encoder, tau_traj: int) -> dict:
    """The fusion evaluated on the three sets (history-tau: its first `tau_traj` runs), and
    again with every tau run as history-tau-all (more queries, the same procedure)."""
    ranked, judges, builds = rank_all(benches, encoder)
    base = {**ranked, "history-tau": [r for r in ranked["history-tau"]
                                      if int(r.query.namespace.rsplit("-", 1)[1]) < tau_traj]}
    tau_build = {**builds["history-tau"], "queries": len(base["history-tau"]),
                 "note": f"chunks and build: all tau runs; queries: the first {tau_traj}"}
    out = evaluate_ranked(base, judges, {**builds, "history-tau": tau_build})
    wide = {("history-tau-all" if n == "history-tau" else n): rs for n, rs in ranked.items()}
    rename = {"history-tau-all": "history-tau"}
    out["with_tau_all"] = evaluate_ranked(
        wide, {n: judges[rename.get(n, n)] for n in wide},
        {n: builds[rename.get(n, n)] for n in wide})
    return out


def rank_all(benches: Sequence[Benchmark],
             encoder) -> tuple[dict[str, list[Ranked]], dict[str, Judge], dict[str, dict]]:
    """Index each set and collect every query's rankings."""
    ranked: dict[str, list[Ranked]] = {}
    judges: dict[str, Judge] = {}
    builds: dict[str, dict] = {}
    for bench in benches:
        with tempfile.TemporaryDirectory() as tmp:
            index = Index.open(Path(tmp), IndexConfig(), encoder=lambda: encoder)
            t0 = time.monotonic()
            index.add(bench.chunks)
            namespaces = sorted({c.namespace for c in bench.chunks})
            for ns in namespaces:
                index._load(ns)
            t1 = time.monotonic()
            for ns in namespaces:
                index._dense(ns, index._load(ns))
            builds[bench.name] = {"chunks": len(bench.chunks), "queries": len(bench.queries),
                                  "store+bm25+grep_s": t1 - t0,
                                  "dense_s": time.monotonic() - t1}
            ranked[bench.name] = collect(bench, index)
            judges[bench.name] = Judge(index)
            index.close()
    return ranked, judges, builds


RRF_VARIANTS: tuple[Variant, ...] = tuple(("rrf", c) for c in RRF_CS)
CONVEX: Variant = ("convex", 0)
# (name, fusion variants tried per table, one table per namespace kind): the shipped
# procedure (each table picks RRF with its constant, or convex), the same with one table for
# corpora and histories alike (round 3's), and one-method baselines: steep RRF only (round
# 4's), classic RRF (c=60), convex only
PROCEDURES = (("hybrid-auto", (*RRF_VARIANTS, CONVEX), True),
              ("hybrid-one-table", (*RRF_VARIANTS, CONVEX), False),
              ("hybrid-rrf", RRF_VARIANTS, True), ("hybrid-rrf60", (("rrf", 60),), True),
              ("hybrid-convex", (CONVEX,), True))


def evaluate_ranked(ranked: dict[str, list[Ranked]], judges: dict[str, Judge],
                    builds: dict[str, dict]) -> dict:
    """Each procedure cross-validated (every query held out once); the table to ship is the
    hybrid-auto procedure tuned on all queries; 'shipped' is FUSION_TABLES (in-sample)."""
    singles = single_scores(ranked, judges)
    every = {n: np.arange(len(rs)) for n, rs in ranked.items()}
    per_set: dict[str, dict] = {n: {} for n in ranked}
    for n in ranked:
        for j, name in enumerate(SINGLE):
            m = singles[n].mean(axis=0)[j]
            per_set[n][name] = {"recall@10": m[0], "ndcg@10": m[1]}
    out: dict = {"grid": GRID, "rrf_constants": RRF_CS, "fold_tables": {}}
    for proc, variants, by_namespace in PROCEDURES:
        options = score_options(ranked, judges, variants)
        held, tables = cross_validate(options, ranked if by_namespace else {
            n: [replace(r, table="corpus") for r in rs] for n, rs in ranked.items()}, singles)
        out["fold_tables"][proc] = tables
        for n, m in held.items():
            per_set[n][proc] = {"recall@10": m[0], "ndcg@10": m[1]}
        if proc == "hybrid-auto":
            choice, score = tune_robust(options, ranked, singles, every)
            out["auto"] = table_of(options, choice)
            out["auto_in_sample_margin"] = {"worst": score[0], "mean": float(np.mean(score))}
    for n, rs in ranked.items():
        specs = [FUSION_TABLES[r.table][table_row(r.kind, r.table)] for r in rs]
        runs = [judges[n](fuse(r.results, f.weights.as_dict(), FUSED_DEPTH, f.method,
                               f.rrf_c).ids, r.query) for r, f in zip(rs, specs)]
        m = np.asarray(runs).mean(axis=0)
        per_set[n]["shipped"] = {"recall@10": m[0], "ndcg@10": m[1]}
    out["sets"] = {}
    for n, rs in ranked.items():
        t = per_set[n]
        out["sets"][n] = {"build": builds[n], "test_queries": len(rs),
                          "test_shapes": {k: sum(r.label == k for r in rs)
                                          for k in sorted({r.label for r in rs})},
                          "test": t,
                          "gain": {m: t["hybrid-auto"][m] - max(t[r][m] for r in SINGLE)
                                   for m in ("recall@10", "ndcg@10")}}
    out["mean_gain"] = {m: float(np.mean([s["gain"][m] for s in out["sets"].values()]))
                        for m in ("recall@10", "ndcg@10")}
    out["worst_gain"] = float(min(min(s["gain"].values()) for s in out["sets"].values()))
    return out


# -- speed ----------------------------------------------------------------------------
def code_corpus(n: int) -> list[tuple[str, int, str]]:
    """(path, line, text) of functions, classes and module docstrings of installed packages,
    cached in the temp dir (parsing ~10k files takes minutes on 2 busy cores)."""
    cache = Path(tempfile.gettempdir()) / f"switchyard-bench-code-{n}.json"
    if cache.exists():
        return [tuple(u) for u in json.loads(cache.read_text())]  # type: ignore[misc]
    sp = Path(site.getsitepackages()[0])
    out: list[tuple[str, int, str]] = []
    for pkg in PACKAGES:
        for rel, lines, tree in _parsed(sp / pkg):
            if doc := ast.get_docstring(tree):
                out.append((rel, 1, doc[:4000]))
            for node in ast.walk(tree):
                kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
                if isinstance(node, kinds) and node.end_lineno:
                    out.append((rel, node.lineno,
                                "\n".join(lines[node.lineno - 1 : node.end_lineno])[:4000]))
            if len(out) >= n:
                cache.write_text(json.dumps(out[:n]))
                return out[:n]
    cache.write_text(json.dumps(out))
    return out


def _same_top10(hits: Hits, scores: np.ndarray) -> bool:
    """Our top-10 equals rank-bm25's up to ties at the cut."""
    top = np.argsort(-scores, kind="stable")[:10]
    cut = scores[top[-1]]
    strict = set(np.flatnonzero(scores > cut + 1e-4).tolist())
    got = hits.ids.tolist()
    return strict <= set(got) and all(scores[g] >= cut - 1e-4 for g in got)


def bm25_speed(units: Sequence[tuple[str, int, str]], queries: Sequence[str], n_ref: int,
               repeat: int, numba: bool) -> dict:
    """bm25s (as rank-bm25's Okapi) vs rank-bm25 on the same corpus and queries."""
    from rank_bm25 import BM25Okapi

    texts = [t for _, _, t in units]
    okapi = {"method": "atire", "idf_method": "robertson"}
    t0 = time.monotonic()
    shard = Bm25Shard(Bm25Params(**okapi))
    shard.add(list(enumerate(texts)))
    shard.merge()
    t_ours = time.monotonic() - t0
    t0 = time.monotonic()
    reference = BM25Okapi([tokenize(t) for t in texts], epsilon=0)
    t_ref_build = time.monotonic() - t0
    sample = list(queries[:n_ref])
    t0 = time.monotonic()
    ref_scores = [reference.get_scores(tokenize(q)) for q in sample]
    ref_qps = len(sample) / (time.monotonic() - t0)
    single = lambda: [shard.search(q, 10) for q in queries]
    batch = lambda: shard.search_many(queries, 10)
    best_single, runs_single = timed(single, repeat)
    best_batch, runs_batch = timed(batch, repeat)
    out = {"docs": len(texts), "queries": len(queries), "rank_bm25_queries": len(sample),
           "build_s": t_ours, "rank_bm25_build_s": t_ref_build, "rank_bm25_qps": ref_qps,
           "single_qps": len(queries) / best_single,
           "single_qps_runs": [len(queries) / r for r in runs_single],
           "batch_qps": len(queries) / best_batch,
           "batch_qps_runs": [len(queries) / r for r in runs_batch],
           "top10_equal_single": np.mean([_same_top10(shard.search(q, 10), s)
                                          for q, s in zip(sample, ref_scores)]),
           "top10_equal_batch": np.mean([_same_top10(h, s) for h, s in
                                         zip(shard.search_many(sample, 10), ref_scores)])}
    if numba:
        jit = Bm25Shard(Bm25Params(**okapi, backend="numba"))
        jit._main, jit._main_rowids, jit._main_alive, jit._main_vocab = (
            shard._main, shard._main_rowids, shard._main_alive, shard._main_vocab)
        jit.vocab = shard.vocab
        t0 = time.monotonic()
        jit.search_many(queries[:2], 10, n_threads=2)  # compile outside the timing
        out["numba_compile_s"] = time.monotonic() - t0
        best, runs = timed(lambda: jit.search_many(queries, 10, n_threads=2), repeat)
        out["numba_batch_qps"] = len(queries) / best
        out["numba_batch_qps_runs"] = [len(queries) / r for r in runs]
        out["top10_equal_numba"] = np.mean([_same_top10(h, s) for h, s in
                                            zip(jit.search_many(sample, 10), ref_scores)])
    for key in [k for k in out if k.endswith("qps")]:
        if key != "rank_bm25_qps":
            out[key.replace("qps", "speedup")] = out[key] / ref_qps
    return {k: float(v) if isinstance(v, np.floating) else v for k, v in out.items()}


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


def scale_queries(units: Sequence[tuple[str, int, str]], prose: Sequence[str], n: int,
                  seed: int = 1) -> list[str]:
    """Half prose (docstring first lines), half naming an identifier defined in the corpus."""
    rng = random.Random(seed)
    names = sorted({m for _, _, t in units for m in re.findall(r"def ([a-z]+_\w+)", t[:200])})
    out = []
    for i in range(n):
        if i % 2:
            out.append(rng.choice(prose))
        else:
            out.append(f"where is {rng.choice(names)} called and what does it return")
    return out


def _stage_times(index: Index, shards, dense, q: str, encoder, stages: dict) -> None:
    """Time each step of one hybrid search (as Index.search runs them) into `stages`."""
    from switchyard.retrieval.index import _plan

    clock = [time.monotonic()]

    def lap(name: str) -> None:
        now = time.monotonic()
        stages.setdefault(name, []).append(now - clock[0])
        clock[0] = now

    plan = _plan(q, "hybrid", None)
    hits = {"bm25": shards.bm25.search(q, 50)}
    lap("bm25")
    if plan.pattern is not None:
        hits["grep"] = _grep(shards, plan.pattern, plan.literals, 50)
    lap("grep")
    qvec = encoder.encode([q])[0]
    lap("encode_cached")
    hits["dense"] = dense.search(qvec, 50)
    lap("dense")
    fused = fuse(hits, plan.weights, 10, plan.fusion, plan.rrf_c)
    lap("fuse")
    index._hits(fused.ids, fused.scores, fused.ranks, plan.pattern)
    lap("hydrate")


def _p50(xs: Sequence[float]) -> float:
    return 1000 * float(np.median(xs))


def scale_test(units: Sequence[tuple[str, int, str]], queries: Sequence[str], real_encoder,
               repeat: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        index = Index.open(Path(tmp), encoder=lambda: _ScaleEncoder(real_encoder))
        t0 = time.monotonic()
        index.add([Chunk(id=chunk_id("big", t, s, line), namespace="big", text=t, source=s,
                         start_line=line) for s, line, t in units])
        shards = index._load("big")
        t1 = time.monotonic()
        dense = index._dense("big", shards)
        t2 = time.monotonic()
        index.flush()
        t3 = time.monotonic()
        index.close()
        index = Index.open(Path(tmp), encoder=lambda: _ScaleEncoder(real_encoder))
        shards = index._load("big")
        dense = index._dense("big", shards)
        t4 = time.monotonic()
        dense_file = index._dir("big") / "dense" / "index.faiss"  # both from the page cache
        load_read, _ = timed(lambda: DenseShard.load(dense_file, dense.params, mmap=False),
                             repeat)
        load_mmap, _ = timed(lambda: DenseShard.load(dense_file, dense.params), repeat)
        search = lambda q: index.search(q, namespaces=["big"], k=10)
        for q in queries:  # warm: query vectors cached, pages mapped
            search(q)
        passes: list[list[float]] = []
        for _ in range(repeat):
            times = []
            for q in queries:
                s0 = time.monotonic()
                search(q)
                times.append(time.monotonic() - s0)
            passes.append(times)
        with_encode: list[float] = []
        for q in queries:
            real_encoder._cache.clear()
            s0 = time.monotonic()
            search(q)
            with_encode.append(time.monotonic() - s0)
        real_encoder.encode(list(queries))  # cached again: stages time retrieval alone
        stages: dict[str, list[float]] = {}
        for q in queries:
            _stage_times(index, shards, dense, q, real_encoder, stages)
        index.close()
    p50s = [_p50(p) for p in passes]
    return {"chunks": len(units), "queries": len(queries), "hnsw": dense.is_hnsw,
            "build_store_bm25_grep_s": t1 - t0, "build_dense_index_s": t2 - t1,
            "save_s": t3 - t2, "reopen_s": t4 - t3,
            "dense_load_s": {"read": load_read, "mmap": load_mmap},
            "hybrid_p50_ms": min(p50s), "hybrid_p50_ms_runs": p50s,
            "hybrid_p95_ms": 1000 * float(np.percentile(passes[int(np.argmin(p50s))], 95)),
            "hybrid_p50_ms_with_query_encode": _p50(with_encode),
            "stage_p50_ms": {k: _p50(v) for k, v in stages.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sets, 20k scale test")
    parser.add_argument("--scale", type=int, default=None, help="chunks in the scale test")
    parser.add_argument("--code", type=int, default=None, help="functions in code-search")
    parser.add_argument("--traj", type=int, default=None, help="trajectories per history set")
    parser.add_argument("--tau-all", type=int, default=None,
                        help="tau runs in the extended history-tau-all set (of 200)")
    parser.add_argument("--corpus", type=int, default=None, help="documents in the BM25 test")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs (best, spread)")
    parser.add_argument("--only", choices=("quality", "bm25", "scale"), default=None)
    parser.add_argument("--no-numba", action="store_true", help="skip bm25s's numba batch")
    parser.add_argument("--compare-torch", action="store_true",
                        help="quality again with the upstream torch encoder (train extra)")
    args = parser.parse_args()
    n_code = args.code or (300 if args.quick else 1500)
    n_traj = args.traj or (10 if args.quick else 40)
    n_tau_all = max(n_traj, args.tau_all or (20 if args.quick else 200))
    n_scale = args.scale or (20_000 if args.quick else 100_000)
    n_corpus = args.corpus or (20_000 if args.quick else 100_000)

    from switchyard.retrieval.embedding import Encoder

    encoder = Encoder(max_tokens=128)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=False).stdout.strip()
    report: dict = {"commit": commit, "args": vars(args)}
    code = code_search(n_code)
    if args.only in (None, "quality"):
        report["quality"] = q = quality([code, history_tau(n_tau_all), history_swe(n_traj)],
                                        encoder, n_traj)
        print_quality(q)
        print(f"\nagain with {n_tau_all} tau runs as history-tau-all:")
        print_quality(q["with_tau_all"])
        if args.compare_torch:
            from switchyard.retrieval.embedding_torch import TorchEncoder

            ref = quality([code, history_tau(n_tau_all), history_swe(n_traj)],
                          TorchEncoder(max_tokens=128), n_traj)
            report["torch_ndcg_gap"] = print_encoder_gap(q, ref)
    units = code_corpus(max(n_corpus, n_scale)) if args.only != "quality" else []
    prose = [x.text for x in code.queries]
    if args.only in (None, "bm25"):
        report["bm25_speed"] = s = bm25_speed(units[:n_corpus], prose, 100, args.repeat,
                                              numba=not args.no_numba)
        print(f"\nBM25 on {s['docs']} code documents, {s['queries']} queries (rank-bm25: "
              f"{s['rank_bm25_queries']}): rank-bm25 {s['rank_bm25_qps']:.1f} q/s; ours single "
              f"{s['single_qps']:.0f} q/s = {s['single_speedup']:.0f}x (runs "
              f"{_fmt(s['single_qps_runs'])}), batched {s['batch_qps']:.0f} q/s = "
              f"{s['batch_speedup']:.0f}x (runs {_fmt(s['batch_qps_runs'])})")
        if "numba_batch_qps" in s:
            print(f"  bm25s numba batch (2 threads) {s['numba_batch_qps']:.0f} q/s = "
                  f"{s['numba_batch_speedup']:.0f}x (compile {s['numba_compile_s']:.1f} s)")
        print(f"  top-10 equal to rank-bm25 (up to ties): single "
              f"{100 * s['top10_equal_single']:.0f}%, batch {100 * s['top10_equal_batch']:.0f}%"
              f"; build {s['build_s']:.1f} s vs rank-bm25 {s['rank_bm25_build_s']:.1f} s")
    if args.only in (None, "scale"):
        report["scale"] = c = scale_test(units[:n_scale], scale_queries(units, prose, 60),
                                         encoder, args.repeat)
        print(f"\nscale {c['chunks']} chunks (HNSW={c['hnsw']}): hybrid p50 "
              f"{c['hybrid_p50_ms']:.2f} ms (runs {_fmt(c['hybrid_p50_ms_runs'], 2)}; p95 "
              f"{c['hybrid_p95_ms']:.1f}) with the query vector cached; "
              f"{c['hybrid_p50_ms_with_query_encode']:.1f} ms with MiniLM query encoding")
        print("  stage p50 ms: " + ", ".join(f"{k} {v:.2f}"
                                            for k, v in c["stage_p50_ms"].items()))
        print(f"  build: store+bm25+grep {c['build_store_bm25_grep_s']:.1f} s, dense index "
              f"{c['build_dense_index_s']:.1f} s, save {c['save_s']:.1f} s, reopen "
              f"{c['reopen_s']:.2f} s (FAISS load alone: read "
              f"{1000 * c['dense_load_s']['read']:.0f} ms, memory-mapped "
              f"{1000 * c['dense_load_s']['mmap']:.0f} ms)")
    report["peak_rss_mb"] = peak_rss_mb()
    print(f"peak RSS {report['peak_rss_mb']:.0f} MB")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    path = out / f"retrieval-{int(time.time())}.json"
    path.write_text(json.dumps(report, indent=2, default=float))
    print(f"wrote {path}")


def _fmt(xs: Sequence[float], digits: int = 0) -> str:
    return "/".join(f"{x:.{digits}f}" for x in xs)


def print_encoder_gap(ours: dict, ref: dict) -> dict:
    """nDCG@10 of the served (ONNX) encoder minus the torch path's, per set and retriever."""
    print("\nheld-out nDCG@10, ONNX encoder minus the torch path (same sets and procedure):")
    gaps = {}
    for q, r in ((ours, ref), (ours["with_tau_all"], ref["with_tau_all"])):
        for name, s in q["sets"].items():
            gaps[name] = {k: round(m["ndcg@10"] - r["sets"][name]["test"][k]["ndcg@10"], 4)
                          for k, m in s["test"].items()}
            print(f"  {name:<16}" + "  ".join(f"{k} {v:+.4f}" for k, v in gaps[name].items()))
    return gaps


def print_quality(q: dict) -> None:
    for table, name in (("corpus", "SHAPE_FUSION"), ("history", "HISTORY_FUSION")):
        print(f"fusion per table row, tuned on all queries (paste into {name}):")
        for kind in TABLE_ROWS[table]:
            t = q["auto"][table][kind]
            w = t["weights"]
            print(f'    "{kind}": ShapeFusion("{t["method"]}", Weights(bm25={w["bm25"]}, '
                  f'grep={w["grep"]}, dense={w["dense"]}), rrf_c={t["rrf_c"]}),')
    print(f"  in-sample margins: worst {q['auto_in_sample_margin']['worst']:+.3f}, "
          f"mean {q['auto_in_sample_margin']['mean']:+.3f}")
    for name, s in q["sets"].items():
        b = s["build"]
        print(f"\n{name}: {b['chunks']} chunks, {b['queries']} queries, each held out once "
              f"(2-fold; shapes {s['test_shapes']}; 'shipped' is in-sample); build "
              f"{b['store+bm25+grep_s']:.1f} s (+ dense {b['dense_s']:.1f} s)")
        print(f"  {'retriever':<15}{'recall@10':>10}{'nDCG@10':>10}")
        for name_r, m in s["test"].items():
            print(f"  {name_r:<15}{m['recall@10']:>10.3f}{m['ndcg@10']:>10.3f}")
    print("\nhybrid-auto minus the best single retriever (held out; recall@10, nDCG@10):")
    for name, s in q["sets"].items():
        g = s["gain"]
        print(f"  {name:<15}{g['recall@10']:>+8.3f}{g['ndcg@10']:>+8.3f}")
    print(f"  {'mean':<15}{q['mean_gain']['recall@10']:>+8.3f}{q['mean_gain']['ndcg@10']:>+8.3f}"
          f"   (worst {q['worst_gain']:+.3f})")


if __name__ == "__main__":
    main()
