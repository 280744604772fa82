"""Grep: RE2 literal and regex search, line numbers, no catastrophic backtracking."""

from __future__ import annotations

import random
import re
import time
from dataclasses import replace

import numpy as np
import pytest
from switchyard.retrieval.errors import InvalidQuery
from switchyard.retrieval.grep import (
    GrepShard,
    Origin,
    alternation,
    compile_literals,
    compile_pattern,
    match_lines,
)

TEXTS = [
    "def get_user(uid):\n    return db.users[uid]\n",
    "class UserStore:\n    def get(self):\n        raise KeyError('user 42 not found')\n",
    "see src/app/main.py line 10\nand src/app/main.py again\n",
    "nothing to see here",
]


@pytest.fixture()
def shard() -> GrepShard:
    s = GrepShard()
    s.add(list(enumerate(TEXTS, start=100)))
    return s


def test_literal_matches_special_characters(shard: GrepShard) -> None:
    hits = shard.search(compile_pattern("db.users[uid]", literal=True), 10)
    assert hits.ids.tolist() == [100]
    assert shard.search(compile_pattern("src/app/main.py", literal=True), 10).ids.tolist() == [102]


def test_regex_and_ranking_by_count(shard: GrepShard) -> None:
    hits = shard.search(compile_pattern(r"[Uu]ser\w*", literal=False), 10)
    assert set(hits.ids.tolist()) == {100, 101}
    hits = shard.search(compile_pattern(r"main\.py", literal=False), 10)
    assert hits.ids.tolist() == [102] and hits.scores[0] > 1.0  # two matches beat one


def test_alternation_counts_distinct_literals_first() -> None:
    s = GrepShard()
    s.add([(1, "alpha alpha alpha"), (2, "alpha beta")])
    hits = s.search(compile_pattern(alternation(["alpha", "beta"]), literal=False), 10)
    assert hits.ids.tolist() == [2, 1]


def test_match_lines(shard: GrepShard) -> None:
    pattern = compile_pattern("src/app/main.py", literal=True)
    assert match_lines(TEXTS[2], pattern) == (1, 2)
    assert match_lines(TEXTS[1], compile_pattern("KeyError", literal=True)) == (3,)


def test_matches_never_span_two_chunks() -> None:
    s = GrepShard()
    s.add([(1, "abc"), (2, "def")])
    assert len(s.search(compile_pattern(r"c[\s\S]*d", literal=False), 10)) == 0


def test_agrees_with_python_re_on_random_texts() -> None:
    rng = random.Random(3)
    texts = ["".join(rng.choice("ab_\n1") for _ in range(rng.randint(0, 40))) for _ in range(200)]
    s = GrepShard()
    s.add(list(enumerate(texts)))
    for pattern in [r"a_b", r"b+1", r"^1a", r"(ab|ba)_$"]:
        expected = {i for i, t in enumerate(texts) if re.search(pattern, t, re.MULTILINE)}
        got = set(s.search(compile_pattern(pattern, literal=False), 1000).ids.tolist())
        assert got == expected, pattern


def test_pathological_pattern_finishes_fast() -> None:
    s = GrepShard()
    s.add([(1, "a" * 100_000 + "b"), (2, "a" * 50)])
    t0 = time.monotonic()
    hits = s.search(compile_pattern(r"(a+)+$", literal=False), 10)
    assert time.monotonic() - t0 < 1.0  # Python's re would take longer than the universe
    assert hits.ids.tolist() == [2]


def test_invalid_and_empty_patterns() -> None:
    with pytest.raises(InvalidQuery, match="missing \\)") as info:
        compile_pattern("(abc", literal=False)
    assert info.value.param == "query"
    with pytest.raises(InvalidQuery, match="empty"):
        compile_pattern("", literal=True)


def test_delete(shard: GrepShard) -> None:
    shard.delete([102])
    assert len(shard.search(compile_pattern("main.py", literal=True), 10)) == 0
    assert len(shard) == 3


HISTORY = [  # (message index, text), stored out of conversation order: message 1 was kept
    (7, "Reservation ZX81QK confirmed. ZX81QK ZX81QK, flight HAT204."),  # by one compaction,
    (4, "Checking ZX81QK and HAT204 again for the user."),  # dropped by the next
    (1, "get_user_details -> reservations: ZX81QK, M20IZO"),
    (9, "Flight HAT204 departs at 10:00 from JFK."),
]


def _history_shard() -> tuple[GrepShard, Origin]:
    shard = GrepShard()
    shard.add([(row, text) for row, (_, text) in enumerate(HISTORY, start=1)])
    position = dict(enumerate((m for m, _ in HISTORY), start=1))
    return shard, Origin(lambda ids: np.asarray([position[i] for i in ids.tolist()]), len(HISTORY))


def test_history_ranks_the_first_mention_above_repeats() -> None:
    shard, origin = _history_shard()
    pattern = compile_literals(["ZX81QK"])
    assert shard.search(pattern, 10).ids.tolist() == [1, 2, 3]  # by count, then row id
    assert shard.search(pattern, 10, origin=origin).ids.tolist() == [3, 1, 2]


def test_history_first_mentions_of_rarer_literals_lead() -> None:
    shard, origin = _history_shard()
    # JFK is in one chunk (row 4), ZX81QK and HAT204 in three each: row 4 introduces the
    # rarest; row 2 introduces HAT204 (message 4) and matches two literals, row 3 introduces
    # ZX81QK and matches one; row 1 matches two but only repeats them.
    hits = shard.search(compile_literals(["ZX81QK", "HAT204", "JFK"]), 10, origin=origin)
    assert hits.ids.tolist() == [4, 2, 3, 1]
    assert list(hits.scores) == sorted(hits.scores, reverse=True)


def test_prefiltered_literals_do_not_claim_a_first_mention() -> None:
    shard, origin = _history_shard()
    only_second = replace(origin, groups=frozenset({2}))  # ZX81QK (group 1): not all scanned
    hits = shard.search_in(compile_literals(["ZX81QK", "HAT204"]), np.asarray([1, 2]), 10,
                           only_second)
    assert hits.ids.tolist() == [2, 1]  # row 2 introduces HAT204; nobody "introduces" ZX81QK
