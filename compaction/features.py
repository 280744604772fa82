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
from dataclasses import dataclass, field
from itertools import chain
from operator import attrgetter

import numpy as np
from switchyard.compaction.segment import Segmentation
from switchyard.compaction.terms import terms_of

FEATURE_VERSION = 2
N_FEATURES = 24
_N_SHAPE = 9  # columns 13..21: the term's shape
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
    # span_terms as arrays: all spans' terms end to end, and where each span's end
    flat_terms: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)
    span_ends: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)

    def span_weight(self, weight: np.ndarray) -> np.ndarray:
        """Per span, the summed weight of its droppable terms (one pass, no Python loop)."""
        sums = np.concatenate(([0.0], np.cumsum(np.asarray(weight, np.float64)[self.flat_terms])))
        return sums[self.span_ends] - sums[np.concatenate(([0], self.span_ends[:-1]))]


def _sources(seg: Segmentation) -> tuple[set[int], int | None, list[str]]:
    msgs = seg.messages
    obs = observation_messages(seg)
    first_user = next((i for i, m in enumerate(msgs) if m.role == "user"), None)
    return obs, first_user, [m.role for m in msgs]


class _Vocab:
    """Terms interned as ids across calls (agents resend the same texts), and each span
    text's term ids, in the order of the terms' text (so a table does not depend on which
    texts came first)."""

    def __init__(self) -> None:
        self.id: dict[str, int] = {}
        self.terms: list[str] = []
        self.of_text: dict[str, tuple[int, ...]] = {}
        self.by_part: dict[str, list[int]] = {}  # lower-case word part -> terms holding it
        self._blocks: list[np.ndarray] = []  # shape rows of the terms interned since `shapes`
        self._shapes = np.zeros((0, _N_SHAPE), dtype=np.float32)

    def clear(self) -> None:
        self.__init__()  # type: ignore[misc]

    def _intern(self, new: list[str]) -> None:
        """Give new terms the next ids, their shape rows and their word parts."""
        start = len(self.terms)
        self.id.update(zip(new, range(start, start + len(new))))
        self.terms.extend(new)
        self._blocks.append(_shape_rows(new))
        by_part = self.by_part
        for i, parts in enumerate(map(_PARTS.findall, new), start):
            for p in {p.lower() for p in parts}:
                by_part.setdefault(p, []).append(i)

    def shapes(self) -> np.ndarray:
        """Shape rows of every term, as one array (extended with the terms added since)."""
        if self._blocks:
            self._shapes = np.concatenate((self._shapes, *self._blocks))
            self._blocks.clear()
        return self._shapes

    def holding(self, parts: set[str]) -> np.ndarray:
        """Which terms hold one of `parts` (lower-case word parts)."""
        out = np.zeros(len(self.terms), dtype=bool)
        for p in parts:
            out[self.by_part.get(p, [])] = True
        return out

    def add_texts(self, texts: list[str], terms: list[frozenset[str]]) -> None:
        """Intern the terms of new texts (a text's ids in the order of its terms' text)."""
        ids = self.id
        new = sorted(frozenset().union(*terms) - ids.keys())
        if new:
            self._intern(new)
        get = ids.__getitem__
        self.of_text.update(zip(texts, (tuple(map(get, sorted(ts))) for ts in terms)))

    def ids(self, text: str) -> tuple[int, ...]:
        got = self.of_text.get(text)
        if got is None:
            self.add_texts([text], [terms_of(text)])
            got = self.of_text[text]
        return got


_VOCAB = _Vocab()
_MAX_VOCAB = 400_000
_MESSAGE, _GROUP, _KIND, _TEXT = (attrgetter(a) for a in ("message_index", "group", "kind", "text"))


def _span_columns(seg: Segmentation) -> dict[str, np.ndarray]:
    """Per span: message, group, always kept, system role, assistant role, source flags."""
    obs, first_user, roles = _sources(seg)
    msg = np.array(list(map(_MESSAGE, seg.spans)), dtype=np.int64)
    group = np.array(list(map(_GROUP, seg.spans)), dtype=np.int64)
    calls = np.array([k == "calls" for k in map(_KIND, seg.spans)], dtype=bool)
    assistant = np.array([r == "assistant" for r in roles], dtype=bool)[msg]
    observation = np.zeros(len(roles), dtype=bool)
    observation[list(obs)] = True
    kept = np.zeros(len(seg.groups), dtype=bool)
    kept[list(seg.mandatory)] = True
    flag = (msg == (-1 if first_user is None else first_user)) | (assistant << 1) | (
        calls << 2) | (observation[msg] << 3)
    return {
        "msg": msg, "group": group, "kept": kept[group], "assistant": assistant,
        "system": np.array([r in ("system", "developer") for r in roles], dtype=bool)[msg],
        "flag": flag.astype(np.int64),
    }


def prime(texts: list[str]) -> None:
    """Extract and intern the terms of span texts ahead of `build_table` (the learned
    strategy runs this while the tokenizer works on its worker threads)."""
    if len(_VOCAB.terms) > _MAX_VOCAB:
        _VOCAB.clear()
    known = _VOCAB.of_text
    new = list(dict.fromkeys(t for t in texts if t not in known))
    if new:  # one batch: runs repeated across texts are judged once, new terms interned once
        _VOCAB.add_texts(new, terms_of.many(new))


def build_table(seg: Segmentation) -> TermTable:
    """Collect the droppable terms and their features, vectorised over term occurrences
    (one row per (span, term) pair)."""
    texts = list(map(_TEXT, seg.spans))
    prime(texts)
    per_span = list(map(_VOCAB.ids, texts))
    n_spans = len(seg.spans)
    lens = np.fromiter(map(len, per_span), np.int64, n_spans)
    tid = np.fromiter(chain.from_iterable(per_span), np.int64, int(lens.sum()))
    sid = np.repeat(np.arange(n_spans), lens)
    col = _span_columns(seg)
    vocab = len(_VOCAB.terms)
    is_system = np.zeros(vocab, bool)
    is_system[tid[col["system"][sid]]] = True
    is_visible = np.zeros(vocab, bool)
    is_visible[tid[col["kept"][sid] & ~col["system"][sid]]] = True
    drop = ~col["kept"][sid] & ~is_system[tid] & ~is_visible[tid]
    d_tid, d_sid = tid[drop], sid[drop]
    # local term index: order of first occurrence (spans in order, a span's terms by text)
    uniq, first = np.unique(d_tid, return_index=True)
    order = np.argsort(first, kind="stable")
    gids = uniq[order]
    local = np.zeros(vocab, np.int64)
    local[gids] = np.arange(len(gids))
    d_loc = local[d_tid]
    stats = _stats(col, d_loc, d_sid, first[order], len(gids))
    terms = [_VOCAB.terms[g] for g in gids.tolist()]
    system = {_VOCAB.terms[g] for g in np.flatnonzero(is_system).tolist()}
    recent = _recent_ids(seg, col, tid, sid, is_system, vocab)
    recent_terms = {_VOCAB.terms[g] for g in np.flatnonzero(recent).tolist()}
    x = _matrix(seg, gids, stats, _recent_parts(recent_terms))
    span_terms, flat, ends = _span_terms(d_loc, d_sid, n_spans)
    # A line naming what the latest turn asks about likely holds the answer (needle lookups).
    has_own = np.bincount(d_sid, minlength=n_spans) > 0
    span_recent = np.bincount(sid, weights=recent[tid], minlength=n_spans).astype(np.int64)
    span_recent[~has_own] = 0
    visible = frozenset(_VOCAB.terms[g] for g in np.flatnonzero(is_visible).tolist())
    return TermTable(terms, dict(zip(terms, range(len(terms)))), span_terms,
                     span_recent.tolist(), visible, frozenset(system), x, flat, ends)


def _stats(col: dict[str, np.ndarray], d_loc: np.ndarray, d_sid: np.ndarray,
           first: np.ndarray, n: int) -> np.ndarray:
    """Per term: spans, first msg, last msg, last group, flags bitmask, assistant spans."""
    st = np.zeros((n, 6), dtype=np.float64)
    if not n:
        return st
    st[:, 0] = np.bincount(d_loc, minlength=n)
    st[:, 1] = col["msg"][d_sid[first]]
    _, from_end = np.unique(d_loc[::-1], return_index=True)
    last = len(d_loc) - 1 - from_end  # every term occurs, so unique's output is 0..n-1
    st[:, 2] = col["msg"][d_sid[last]]
    st[:, 3] = col["group"][d_sid[last]]
    flags = col["flag"][d_sid]
    st[:, 4] = sum(bit * (np.bincount(d_loc, weights=(flags & bit) > 0, minlength=n) > 0)
                   for bit in (1, 2, 4, 8))
    st[:, 5] = np.bincount(d_loc, weights=col["assistant"][d_sid], minlength=n)
    return st


def _span_terms(d_loc: np.ndarray, d_sid: np.ndarray, n_spans: int
                ) -> tuple[list[tuple[int, ...]], np.ndarray, np.ndarray]:
    """Per span: its droppable terms' local indices, sorted; also as flat array and ends."""
    n = int(d_loc.max()) + 1 if len(d_loc) else 1
    flat = np.sort(d_sid * n + d_loc) % n
    ends = np.cumsum(np.bincount(d_sid, minlength=n_spans))
    items, bounds = flat.tolist(), ends.tolist()
    return [tuple(items[a:b]) for a, b in zip([0, *bounds[:-1]], bounds)], flat, ends


def _recent_ids(seg: Segmentation, col: dict[str, np.ndarray], tid: np.ndarray,
                sid: np.ndarray, is_system: np.ndarray, vocab: int) -> np.ndarray:
    """Which term ids the latest always-kept groups hold (system terms excluded)."""
    tail = np.fromiter(sorted(seg.mandatory)[-2:], np.int64)
    in_tail = np.isin(col["group"], tail) & (col["msg"] > 0)
    recent = np.zeros(vocab, bool)
    recent[tid[in_tail[sid]]] = True
    return recent & ~is_system


def _recent_parts(recent: set[str]) -> set[str]:
    """Word parts (lower case) of the latest turns' terms."""
    return {p.lower() for t in recent for p in _PARTS.findall(t)}


def _matrix(seg: Segmentation, gids: np.ndarray, st: np.ndarray,
            recent: set[str]) -> np.ndarray:
    n = len(gids)
    x = np.zeros((n, N_FEATURES), dtype=np.float32)
    if not n:
        return x
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
    x[:, 13:22] = _VOCAB.shapes()[gids]
    if recent:
        x[:, 22] = _VOCAB.holding(recent)[gids]
    x[:, 23] = 1.0
    return x



def _shape_rows(terms: list[str]) -> np.ndarray:
    """Shape features of terms, one row each: number, path, dotted, snake, spaced, error,
    length, capitals, digits inside (column by column: one pass of str methods each)."""
    x = np.empty((len(terms), _N_SHAPE), dtype=np.float32)
    digit = [t.isdigit() for t in terms]
    x[:, 0] = digit
    for col, ch in enumerate("/._ ", start=1):
        x[:, col] = [ch in t for t in terms]
    x[:, 5] = ["Error" in t or "Exception" in t for t in terms]
    x[:, 6] = [math.log(len(t)) / 4 for t in terms]
    x[:, 7] = [t != t.lower() if t.isascii() else (not t.islower() and any(map(str.isupper, t)))
               for t in terms]
    x[:, 8] = [not d and (t != t.translate(_NO_DIGITS) if t.isascii() else
                          any(map(str.isdigit, t))) for t, d in zip(terms, digit)]
    return x


_NO_DIGITS = str.maketrans("", "", "0123456789")
