"""Fusing the retrievers' rankings, with weights picked by the shape of the query.

Two fusions: reciprocal rank fusion (RRF, Cormack et al. 2009) uses only ranks; the convex
combination uses min-max normalised scores, so a retriever that is confident (a large gap
between its first hit and the rest) counts for more. The default ("auto") takes the fusion
and its weights by the query's shape, from one of two tables (tuned by bench/retrieval.py):
SHAPE_FUSION for corpora (code, documents) and HISTORY_FUSION for session histories, where
ids are copied verbatim between turns and the first mention of one is usually the chunk
that matters: there grep ranks first mentions first (grep.Origin), and every query naming
something (a lookup, a question, a log, a record) takes grep's order, BM25 filling after.
Corpora measured best with the convex combination, histories with a steep RRF.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np

from .select import Hits, topk_indices

FusionName = Literal["rrf", "convex"]
FUSIONS: tuple[str, ...] = ("rrf", "convex")
# "auto": the fusion and weights of the query's row in the namespace kind's table. The
# alternatives (RRF only, c=60, one table for all, a history row per shape) each lost on
# some set held out (bench/results/tuning-notes.md).
DEFAULT_FUSION = "auto"
RRF_C = 60  # the usual RRF constant: rank 1 scores 1/61, rank 10 scores 1/70
# A steep RRF: with c=1 rank 1 scores 1/2, rank 2 1/3, rank 10 1/11, so a retriever's first
# hits count far more than its tail; c=60 lets many middling ranks outvote one retriever's
# sure first hit. The constant is chosen with the weights by bench/retrieval.py.
HISTORY_RRF_C = 1  # session histories (HISTORY_FUSION)
RECORD_LITERALS = 3  # a prose-less query naming more literals than this is a record
DENSE_LITERALS = 0.25  # literals per word above which a prose query counts as "technical"
LONG_QUERY = 14  # words: a passage (a tool result, a log) rather than a question

_QUOTED = re.compile(r"\"([^\"]+)\"|'([^']+)'|`([^`]+)`")
_PATH = re.compile(r"(?:[\w.\-~]*[/\\][\w.\-/\\]+|\b[\w\-]+\.[A-Za-z]{1,5}\b)")
_IDENT = re.compile(
    r"\b(?:[A-Za-z_]\w*_\w+"  # snake_case
    r"|[a-z]+[A-Z]\w*"  # camelCase
    r"|[A-Z][a-z]+[A-Z]\w*"  # PascalCase with two humps
    r"|[A-Za-z]+\d\w*|\d+[A-Za-z]\w*"  # letters and digits mixed: UA123, 4WQ150, v2
    r"|[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+"  # dotted.name
    r"|\d{3,})\b"  # ids, ports, line numbers
)


ShapeKind = Literal["prose", "mixed", "technical", "literal", "record"]
SHAPE_KINDS: tuple[str, ...] = ("prose", "mixed", "technical", "literal", "record")
# What a namespace holds: a session's history (chunks of messages, in conversation order)
# or a corpus (files, documents). Index tells them apart by the chunks' message indexes.
NamespaceKind = Literal["corpus", "history"]
NAMESPACE_KINDS: tuple[str, ...] = ("corpus", "history")
# Each table's rows: a corpus's fusion differs by shape; in a history, every shape that
# names something is answered alike (by where the names first appeared), so one row,
# "named", serves them: fewer weights to fit, the same on held-out queries as in-sample.
TABLE_ROWS: dict[str, tuple[str, ...]] = {"corpus": SHAPE_KINDS, "history": ("prose", "named")}


def table_row(kind: str, namespace: str) -> str:
    """The row of the namespace kind's table that a query shape uses (TABLE_ROWS)."""
    if namespace not in TABLE_ROWS:
        raise ValueError(f"unknown namespace kind {namespace!r}; choose one of "
                         f"{NAMESPACE_KINDS}")
    return "named" if namespace == "history" and kind != "prose" else kind


@dataclass(frozen=True)
class QueryShape:
    literals: tuple[str, ...]  # exact strings worth grepping for
    natural: bool  # does the query read as prose (more than the literals)?
    literal_share: float = 0.0  # literals per whitespace-separated word
    words: int = 0  # whitespace-separated words
    quoted: int = 0  # literals written in quotes or backticks (documentation style)

    @property
    def kind(self) -> ShapeKind:
        """prose: no literals; mixed: a question naming a few; technical: prose dense with
        them, or a long passage holding some (a tool result, a log); literal: hardly any
        prose, a few names (a lookup); record: hardly any prose, many names (a JSON object,
        a call's arguments, a table row), where a rare id matters more than the common keys
        every record repeats, so BM25's idf suits it better than grep's count."""
        if not self.literals:
            return "prose"
        if not self.natural:
            return "record" if len(self.literals) > RECORD_LITERALS else "literal"
        bare = len(self.literals) > self.quoted  # ids amid words: a log, not a question
        technical = self.literal_share > DENSE_LITERALS or (self.words >= LONG_QUERY and bare)
        return "technical" if technical else "mixed"


@dataclass(frozen=True)
class Weights:
    bm25: float
    grep: float
    dense: float

    def as_dict(self) -> dict[str, float]:
        return {"bm25": self.bm25, "grep": self.grep, "dense": self.dense}


@dataclass(frozen=True)
class ShapeFusion:
    method: FusionName
    weights: Weights
    rrf_c: int = RRF_C  # RRF only


# Tuned by bench/retrieval.py: per table, one fusion (RRF with a constant of 1, 2, 3, 5 or
# 10, or convex) and per row the weights (grid 0, .5, 1) that maximise the worst held-out
# margin of the fusion over each set's best single retriever; corpora on code search,
# histories on tau-bench and SWE-agent. Figures: README "Benchmarks" and
# bench/results/tuning-notes.md.
SHAPE_FUSION: dict[str, ShapeFusion] = {
    "prose": ShapeFusion("convex", Weights(bm25=0.5, grep=0.0, dense=1.0)),
    "mixed": ShapeFusion("convex", Weights(bm25=0.5, grep=0.0, dense=1.0)),
    "technical": ShapeFusion("convex", Weights(bm25=0.5, grep=0.0, dense=1.0)),
    "literal": ShapeFusion("convex", Weights(bm25=1.0, grep=1.0, dense=1.0)),
    "record": ShapeFusion("convex", Weights(bm25=1.0, grep=1.0, dense=1.0)),  # as "literal":
}  # no code-search query is a record
# In a history a query naming something is grep's: weight 0 still fills after grep's hits,
# in BM25's order. No history query of the bench sets is prose: that row is the corpus one.
HISTORY_FUSION: dict[str, ShapeFusion] = {
    "prose": ShapeFusion("convex", Weights(bm25=0.5, grep=0.0, dense=1.0)),
    "named": ShapeFusion("rrf", Weights(bm25=0.0, grep=0.5, dense=0.0), HISTORY_RRF_C),
}
FUSION_TABLES: dict[str, dict[str, ShapeFusion]] = {"corpus": SHAPE_FUSION,
                                                    "history": HISTORY_FUSION}


def query_shape(query: str) -> QueryShape:
    """Quoted strings, paths and identifiers in the query; whether the rest is prose."""
    literals: list[str] = []
    rest = query
    for m in _QUOTED.finditer(query):
        quoted_text = next(g for g in m.groups() if g)
        if quoted_text not in literals:  # a record repeats its keys: one pattern each
            literals.append(quoted_text)
    quoted = len(literals)
    rest = _QUOTED.sub(" ", rest)
    for rx in (_PATH, _IDENT):
        for m in rx.finditer(rest):
            value = m.group().strip(".")
            if value and value not in literals:
                literals.append(value)
        rest = rx.sub(" ", rest)
    prose_words = re.findall(r"[A-Za-z]{2,}", rest)
    words = len(query.split())
    return QueryShape(literals=tuple(literals), natural=len(prose_words) >= 2,
                      literal_share=len(literals) / max(words, 1), words=words, quoted=quoted)


def shape_fusion(shape: QueryShape, namespace: str = "corpus") -> ShapeFusion:
    """The tuned fusion for the query's shape over a corpus or a history (FUSION_TABLES)."""
    row = table_row(shape.kind, namespace)  # checks the namespace kind
    return FUSION_TABLES[namespace][row]


def weights_for(shape: QueryShape, namespace: str = "corpus") -> Weights:
    """The fusion weights for the query's shape (SHAPE_FUSION, or HISTORY_FUSION)."""
    return shape_fusion(shape, namespace).weights


def fusion_for(shape: QueryShape, configured: str = DEFAULT_FUSION,
               namespace: str = "corpus") -> str:
    """The fusion to use: the configured one, or the shape's own under "auto"."""
    return fusion_params(shape, configured, namespace)[0]


def fusion_params(shape: QueryShape, configured: str = DEFAULT_FUSION,
                  namespace: str = "corpus") -> tuple[str, int]:
    """(fusion, RRF constant): the shape's own under "auto" (from the namespace kind's
    table), else the configured fusion with the classic RRF constant."""
    if configured == "auto":
        spec = shape_fusion(shape, namespace)
        return spec.method, spec.rrf_c
    if configured not in FUSIONS:
        raise ValueError(f"unknown fusion {configured!r}; choose auto or one of {FUSIONS}")
    return configured, RRF_C


class Fused(NamedTuple):
    ids: np.ndarray
    scores: np.ndarray
    ranks: list[dict[str, int]]  # per hit: retriever -> 1-based rank


def _ranks(results: Mapping[str, Hits]) -> dict[int, dict[str, int]]:
    out: dict[int, dict[str, int]] = {}
    for name, hits in results.items():
        for rank, rowid in enumerate(hits.ids.tolist(), start=1):
            out.setdefault(int(rowid), {})[name] = rank
    return out


def _finish(candidates: dict[int, dict[str, int]], totals: dict[int, float], k: int) -> Fused:
    ids = np.fromiter(totals.keys(), dtype=np.int64, count=len(totals))
    scores = np.fromiter(totals.values(), dtype=np.float64, count=len(totals))
    top = topk_indices(scores, k)
    ids_top = ids[top]
    return Fused(ids_top, scores[top].astype(np.float32),
                 [candidates[int(i)] for i in ids_top.tolist()])


def rrf(results: Mapping[str, Hits], weights: Mapping[str, float], k: int,
        c: int = RRF_C) -> Fused:
    """sum_r w_r / (c + rank_r): rank-only, robust to incomparable scores."""
    candidates = _ranks(results)
    totals = {
        rowid: sum(weights.get(name, 0.0) / (c + rank) for name, rank in ranks.items())
        for rowid, ranks in candidates.items()
    }
    return _finish(candidates, totals, k)


def minmax(scores: np.ndarray) -> np.ndarray:
    """Scale to [0, 1]; a single or constant list maps to 1 (it was found, nothing beat it)."""
    if scores.size == 0:
        return scores.astype(np.float64)
    lo, hi = float(scores.min()), float(scores.max())
    if hi - lo <= 1e-12:
        return np.ones(scores.size, dtype=np.float64)
    return (scores.astype(np.float64) - lo) / (hi - lo)


def convex(results: Mapping[str, Hits], weights: Mapping[str, float], k: int) -> Fused:
    """sum_r w_r * minmax(score_r): uses how far ahead each retriever puts its hits."""
    candidates = _ranks(results)
    totals = {rowid: 0.0 for rowid in candidates}
    for name, hits in results.items():
        w = weights.get(name, 0.0)
        for rowid, s in zip(hits.ids.tolist(), minmax(hits.scores).tolist()):
            totals[int(rowid)] += w * s
    return _finish(candidates, totals, k)


def fuse(results: Mapping[str, Hits], weights: Mapping[str, float], k: int,
         method: str = "convex", rrf_c: int = RRF_C) -> Fused:
    """Fuse with `method`. Equal totals go to the hit first found by the most trusted
    retriever: under convex a retriever's last hit normalises to 0, which must not drop it
    behind hits that only zero-weight retrievers returned."""
    results = dict(sorted(results.items(), key=lambda item: -weights.get(item[0], 0.0)))
    if method == "rrf":
        return rrf(results, weights, k, rrf_c)
    if method == "convex":
        return convex(results, weights, k)
    raise ValueError(f"unknown fusion {method!r}; choose one of {FUSIONS}")
