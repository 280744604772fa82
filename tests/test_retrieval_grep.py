"""Grep: RE2 literal and regex search, line numbers, no catastrophic backtracking."""

from __future__ import annotations

import random
import re
import time

import pytest

from retrieval.errors import InvalidQuery
from retrieval.grep import GrepShard, alternation, compile_pattern, match_lines

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
