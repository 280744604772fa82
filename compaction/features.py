"""Cheap per-span features for the scorer: no encoder on the hot path.

Role, position and length; how specific the span is (identifier, path, number and error
density); and whether its terms show up in the task, in the latest turns, or again later in
the history (a term still being talked about is likely to be needed). Plus hashed buckets of
the opening words of each message (the command or tool that produced it).
"""

from __future__ import annotations

import math
import zlib

import numpy as np

from compaction.segment import Segmentation
from compaction.terms import terms_of

FEATURE_VERSION = 1
N_DENSE = 26
N_HASHED = 32
N_FEATURES = N_DENSE + N_HASHED
_ROLE_SLOT = {"system": 0, "developer": 0, "user": 1, "assistant": 2, "tool": 3}


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


def _context_terms(seg: Segmentation) -> tuple[set[str], set[str], set[str]]:
    msgs = seg.messages
    task: set[str] = set()
    system: set[str] = set()
    recent: set[str] = set()
    first_user = next((i for i, m in enumerate(msgs) if m.role == "user"), None)
    tail_groups = sorted(seg.mandatory)[-2:]
    for s in seg.spans:
        t = terms_of(s.text)
        role = msgs[s.message_index].role
        if s.message_index == first_user:
            task |= t
        if role in ("system", "developer"):
            system |= t
        if s.group in tail_groups and s.message_index != first_user and role != "system":
            recent |= t
    return task, system, recent


def _occurrences(seg: Segmentation) -> dict[str, tuple[int, int, int]]:
    """term -> (first message, last message, number of spans containing it)."""
    occ: dict[str, tuple[int, int, int]] = {}
    for s in seg.spans:
        m = s.message_index
        for t in terms_of(s.text):
            got = occ.get(t)
            occ[t] = (m, m, 1) if got is None else (got[0], m, got[2] + 1)
    return occ


def _hashed(text: str, row: np.ndarray) -> None:
    for word in text[:80].lower().split()[:3]:
        row[N_DENSE + zlib.crc32(word.encode()) % N_HASHED] = 1.0


def featurize(seg: Segmentation) -> np.ndarray:
    """(n_spans, N_FEATURES) float32 matrix, one row per span."""
    n_msgs = max(len(seg.messages) - 1, 1)
    n_groups = len(seg.groups)
    task, system, recent = _context_terms(seg)
    occ = _occurrences(seg)
    obs = observation_messages(seg)
    x = np.zeros((len(seg.spans), N_FEATURES), dtype=np.float32)
    for s in seg.spans:
        row, m = x[s.index], s.message_index
        msg = seg.messages[m]
        row[_ROLE_SLOT[msg.role]] = 1.0
        row[4] = s.kind == "calls"
        row[5] = m in obs
        row[6] = m / n_msgs
        row[7] = math.log1p(n_groups - 1 - s.group) / 4
        row[8] = math.log1p(s.tokens) / 8
        parts = len(seg.message_spans[m])
        row[9] = max(s.part, 0) / max(parts - 1, 1)
        row[10] = parts > 1
        terms = terms_of(s.text)
        k = len(terms)
        row[25] = 1.0
        if k:
            _term_features(row, terms, m, s.tokens, task, system, recent, occ)
        if s.part <= 0:
            _hashed(s.text, row)
    return x


def _term_features(row, terms, m, tokens, task, system, recent, occ) -> None:
    k = len(terms)
    in_recent = len(terms & recent)
    in_task = len(terms & task)
    later = earlier = numeric = paths = errors = 0
    common = 0.0
    for t in terms:
        first, last, n = occ.get(t, (m, m, 1))
        later += last > m
        earlier += first < m
        numeric += t.isdigit()
        paths += "/" in t or t.endswith(".py")
        errors += "Error" in t or "Exception" in t
        common += math.log1p(n)
    row[11] = math.log1p(k) / 4
    row[12] = k / (tokens + 1)
    row[13] = errors > 0
    row[14] = numeric / k
    row[15] = paths / k
    row[16] = in_recent / k
    row[17] = math.log1p(in_recent) / 3
    row[18] = in_task / k
    row[19] = math.log1p(in_task) / 3
    row[20] = later / k
    row[21] = math.log1p(later) / 3
    row[22] = earlier / k
    row[23] = len(terms & system) / k
    row[24] = common / k / 3
