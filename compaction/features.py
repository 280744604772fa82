"""Term features for the scorer: what makes an earlier identifier likely to be used next.

The scorer rates salient terms (terms.py), not spans: the evidence a later step needs is a
set of terms, and many spans repeat the same ones, so selection covers terms (select by
weighted coverage in strategies/learned.py). Features per term, from the history alone:
how often and how recently it occurs, who said it (task, the agent's own text or tool calls,
environment output), its shape (number, path, identifier, error line), and whether a part of
it shows up in the latest turns. No encoder on the hot path.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from compaction.segment import Segmentation
from compaction.terms import terms_of

FEATURE_VERSION = 2
N_FEATURES = 24
_PARTS = re.compile(r"[A-Za-z0-9]{3,}")


def observation_messages(seg: Segmentation) -> set[int]:
    """Environment output: tool messages, or (text-mode agents, no tool messages) user
    messages that answer an assistant action."""
    msgs = seg.messages
    tools = {i for i, m in enumerate(msgs) if m.role == "tool"}
    if tools:
        return tools
    first_user = next((i for i, m in enumerate(msgs) if m.role == "user"), -1)
    return {
        i for i, m in enumerate(msgs)
        if m.role == "user" and i != first_user and i > 0 and msgs[i - 1].role == "assistant"
    }


@dataclass(slots=True)
class TermTable:
    """The droppable terms of a history: those not visible in any always-kept group."""

    terms: list[str]
    index: dict[str, int]
    span_terms: list[tuple[int, ...]]  # per span: indices of its droppable terms
    span_recent: list[int]  # per span: how many terms of the latest turns it holds
    visible: frozenset[str]  # terms of the always-kept groups (system excluded)
    system: frozenset[str]
    x: np.ndarray  # (len(terms), N_FEATURES) float32


def _sources(seg: Segmentation) -> tuple[set[int], int | None, list[str]]:
    msgs = seg.messages
    obs = observation_messages(seg)
    first_user = next((i for i, m in enumerate(msgs) if m.role == "user"), None)
    return obs, first_user, [m.role for m in msgs]


def build_table(seg: Segmentation) -> TermTable:
    """Collect the droppable terms and their features in one pass over the spans."""
    obs, first_user, roles = _sources(seg)
    system: set[str] = set()
    visible: set[str] = set()
    span_sets = [terms_of(s.text) for s in seg.spans]
    for s, ts in zip(seg.spans, span_sets):
        if roles[s.message_index] in ("system", "developer"):
            system |= ts
        elif s.group in seg.mandatory:
            visible |= ts
    hidden = visible | system
    index: dict[str, int] = {}
    # per term: spans, first msg, last msg, last group, flags bitmask, assistant spans
    stats: list[list[int]] = []
    span_terms: list[tuple[int, ...]] = []
    for s, ts in zip(seg.spans, span_sets):
        if s.group in seg.mandatory or not ts:
            span_terms.append(())
            continue
        m, role = s.message_index, roles[s.message_index]
        flag = (1 if m == first_user else 0) | (2 if role == "assistant" else 0) | (
            4 if s.kind == "calls" else 0) | (8 if m in obs else 0)
        own = []
        for t in ts - hidden:
            i = index.get(t)
            if i is None:
                i = index[t] = len(stats)
                stats.append([0, m, m, s.group, 0, 0])
            st = stats[i]
            st[0] += 1
            st[2] = m
            st[3] = s.group
            st[4] |= flag
            st[5] += role == "assistant"
            own.append(i)
        span_terms.append(tuple(sorted(own)))
    terms = list(index)
    recent = _recent_terms(seg, span_sets) - system
    x = _matrix(seg, terms, stats, _recent_parts(recent))
    # A line naming what the latest turn asks about likely holds the answer (needle lookups).
    span_recent = [len(ts & recent) if own else 0 for ts, own in zip(span_sets, span_terms)]
    return TermTable(terms, index, span_terms, span_recent, frozenset(visible),
                     frozenset(system), x)


def _recent_terms(seg: Segmentation, span_sets: list[frozenset[str]]) -> set[str]:
    """Terms of the latest always-kept groups."""
    tail = set(sorted(seg.mandatory)[-2:])
    out: set[str] = set()
    for s, ts in zip(seg.spans, span_sets):
        if s.group in tail and s.message_index > 0:
            out |= ts
    return out


def _recent_parts(recent: set[str]) -> set[str]:
    """Word parts (lower case) of the latest turns' terms."""
    return {p.lower() for t in recent for p in _PARTS.findall(t)}


def _matrix(seg: Segmentation, terms: list[str], stats: list[list[int]],
            recent: set[str]) -> np.ndarray:
    n = len(terms)
    x = np.zeros((n, N_FEATURES), dtype=np.float32)
    if not n:
        return x
    st = np.asarray(stats, dtype=np.float64)
    n_msgs = max(len(seg.messages) - 1, 1)
    n_groups = max(len(seg.groups) - 1, 1)
    flags = st[:, 4].astype(np.int64)
    x[:, 0] = np.log1p(st[:, 0]) / 3
    x[:, 1] = st[:, 1] / n_msgs
    x[:, 2] = st[:, 2] / n_msgs
    x[:, 3] = np.log1p(n_groups - st[:, 3]) / 4
    x[:, 4] = (n_groups - st[:, 3]) <= 2
    for k, bit in enumerate((1, 2, 4, 8)):
        x[:, 5 + k] = (flags & bit) > 0
    x[:, 9] = np.log1p(st[:, 5]) / 2
    x[:, 10] = st[:, 0] == 1
    x[:, 11] = math.log1p(n) / 10
    x[:, 12] = math.log1p(len(seg.groups)) / 5
    x[:, 23] = 1.0
    _shape(terms, x, recent)
    return x


_SHAPES: dict[str, tuple[tuple[float, ...], tuple[str, ...]]] = {}
_MAX_SHAPES = 200_000


def _shape_of(t: str) -> tuple[tuple[float, ...], tuple[str, ...]]:
    """Shape features of a term and its lower-case word parts, memoised (terms recur)."""
    got = _SHAPES.get(t)
    if got is None:
        if len(_SHAPES) > _MAX_SHAPES:
            _SHAPES.clear()
        digit = t.isdigit()
        row = (float(digit), float("/" in t), float("." in t), float("_" in t), float(" " in t),
               float("Error" in t or "Exception" in t), math.log(len(t)) / 4,
               float(not t.islower() and any(c.isupper() for c in t)),
               float(not digit and any(c.isdigit() for c in t)))
        got = _SHAPES[t] = (row, tuple(p.lower() for p in _PARTS.findall(t)))
    return got


def _shape(terms: list[str], x: np.ndarray, recent: set[str]) -> None:
    shapes = [_shape_of(t) for t in terms]
    x[:, 13:22] = np.asarray([row for row, _ in shapes], dtype=np.float32)
    if recent:
        x[:, 22] = [any(p in recent for p in parts) for _, parts in shapes]
