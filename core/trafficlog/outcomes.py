"""Outcomes: what happened to a request's answer, attached after the fact.

One row per (request id, source) in the traffic log's `outcomes` table (migration
m002_outcomes): a label and/or a score in [0, 1], the source (`verifier`, `user`,
`judge`) and a weight. Writing twice for the same request and source replaces the row,
so a retried feedback call is idempotent. Verifiable outcomes are worth more than
preferences; `SOURCE_WEIGHTS` says by how much when sources are combined.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from switchyard.core.errors import OutcomeError

Source = Literal["verifier", "user", "judge"]
SOURCES: tuple[Source, ...] = ("verifier", "user", "judge")
# How much one unit of weight from each source counts when sources disagree.
SOURCE_WEIGHTS: dict[str, float] = {"verifier": 1.0, "judge": 0.5, "user": 0.3}
# Labels that mean a score when no score is given (lower-cased).
LABEL_SCORES: dict[str, float] = {
    "pass": 1.0, "passed": 1.0, "correct": 1.0, "good": 1.0, "yes": 1.0, "accept": 1.0,
    "accepted": 1.0, "thumbs_up": 1.0, "1": 1.0, "true": 1.0,
    "fail": 0.0, "failed": 0.0, "incorrect": 0.0, "wrong": 0.0, "bad": 0.0, "no": 0.0,
    "reject": 0.0, "rejected": 0.0, "thumbs_down": 0.0, "0": 0.0, "false": 0.0,
}


class UnknownRequest(OutcomeError):
    """An outcome for a request id the traffic log does not hold."""

    def __init__(self, request_id: str) -> None:
        super().__init__(
            f"no request with id {request_id!r} in the traffic log; use the x-request-id "
            "header (or request_id field) of a response this server logged", "request_id")
        self.request_id = request_id


@dataclass(frozen=True, slots=True)
class Outcome:
    request_id: str
    source: Source
    label: str | None = None
    score: float | None = None
    weight: float = 1.0
    created_at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if not self.request_id:
            raise OutcomeError("request_id is required", "request_id")
        if self.source not in SOURCES:
            raise OutcomeError(f"source must be one of {', '.join(SOURCES)}; got "
                               f"{self.source!r}", "source")
        if self.label is None and self.score is None:
            raise OutcomeError("give a label, a score, or both", "label")
        if self.score is not None and not (math.isfinite(self.score) and 0 <= self.score <= 1):
            raise OutcomeError(f"score must be in [0, 1]; got {self.score}", "score")
        if not (math.isfinite(self.weight) and self.weight >= 0):
            raise OutcomeError(f"weight must be a finite number >= 0; got {self.weight}",
                               "weight")

    @property
    def value(self) -> float | None:
        """The score, else the label read as a score; None when neither says pass/fail."""
        if self.score is not None:
            return self.score
        return LABEL_SCORES.get((self.label or "").strip().lower())


_UPSERT = """
INSERT INTO outcomes (request_id, source, label, score, weight, created_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (request_id, source) DO UPDATE SET
    label = excluded.label, score = excluded.score, weight = excluded.weight,
    created_at = excluded.created_at
"""


def request_exists(db: sqlite3.Connection, request_id: str) -> bool:
    row = db.execute("SELECT 1 FROM requests WHERE request_id = ?", (request_id,)).fetchone()
    return row is not None


def record_outcome(db: sqlite3.Connection, outcome: Outcome) -> bool:
    """Store `outcome` (replacing one from the same source); True when it is new.

    Raises UnknownRequest when the log holds no such request.
    """
    with db:
        db.execute("BEGIN IMMEDIATE")  # the existence check and the write see one snapshot
        if not request_exists(db, outcome.request_id):
            raise UnknownRequest(outcome.request_id)
        before = db.execute("SELECT 1 FROM outcomes WHERE request_id = ? AND source = ?",
                            (outcome.request_id, outcome.source)).fetchone()
        db.execute(_UPSERT, (outcome.request_id, outcome.source, outcome.label,
                             outcome.score, outcome.weight, outcome.created_at))
    return before is None


def iter_outcomes(db: sqlite3.Connection) -> Iterable[Outcome]:
    rows = db.execute("SELECT request_id, source, label, score, weight, created_at "
                      "FROM outcomes ORDER BY request_id, source")
    for row in rows:
        yield Outcome(*row)


def outcomes_for(db: sqlite3.Connection, request_id: str) -> list[Outcome]:
    rows = db.execute("SELECT request_id, source, label, score, weight, created_at "
                      "FROM outcomes WHERE request_id = ? ORDER BY source", (request_id,))
    return [Outcome(*row) for row in rows]


@dataclass(frozen=True, slots=True)
class Quality:
    """Outcomes of one request combined: a value in [0, 1], its total weight and sources."""

    value: float
    weight: float
    sources: tuple[str, ...]


def combine(outcomes: Iterable[Outcome],
            source_weights: Mapping[str, float] = SOURCE_WEIGHTS) -> Quality | None:
    """Weighted mean of the usable outcomes (weight = source weight x outcome weight)."""
    total = weighted = 0.0
    sources = []
    for o in outcomes:
        v = o.value
        w = source_weights.get(o.source, 0.0) * o.weight
        if v is None or w <= 0:
            continue
        total += w
        weighted += w * v
        sources.append(o.source)
    if total <= 0:
        return None
    return Quality(weighted / total, total, tuple(sorted(set(sources))))


def quality_by_request(outcomes: Iterable[Outcome],
                       source_weights: Mapping[str, float] = SOURCE_WEIGHTS
                       ) -> dict[str, Quality]:
    grouped: dict[str, list[Outcome]] = {}
    for o in outcomes:
        grouped.setdefault(o.request_id, []).append(o)
    out = {}
    for rid, group in grouped.items():
        q = combine(group, source_weights)
        if q is not None:
            out[rid] = q
    return out
