"""The compactor's fast paths give exactly what the plain ones give: joined encodings,
per-span token shares, the term extractor, the vectorised feature table."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from switchyard.compaction.segment import segment, split_lines
from switchyard.compaction.terms import extract_terms
from switchyard.compaction.trajectories import load_all
from switchyard.core.tokens import (
    TokenCounter,
    count_tokens,
    encode_many_async,
    get_encoding,
    part_counts,
    part_counts_many,
)

from tests.data import TRAJECTORIES

# Text with what moves token boundaries: spaces before newlines, punctuation, digits,
# multi-byte characters, and the separator the joined encoding relies on.
PIECES = ["foo", "Bar", " ", "  ", "\n", "\n\n", ".", "_x", "42", "é", "日本", "😀", "'s",
          "<|endoftext|>", "\t", "a/b.py", "\"q\"", "`c`", "Error"]
TEXT = st.lists(st.sampled_from(PIECES), max_size=30).map("".join)


@pytest.fixture(scope="module")
def real_texts() -> list[str]:
    texts = [m.text() for t in load_all(TRAJECTORIES) for m in t.messages]
    return texts + [p for t in texts for p in split_lines(t, 48)]


@settings(max_examples=60, deadline=None)
@given(texts=st.lists(TEXT, min_size=1, max_size=8), model=st.sampled_from([None, "gpt-4o"]))
def test_joined_encoding_is_each_texts_own(texts: list[str], model: str | None) -> None:
    enc = get_encoding("o200k_base" if model else "cl100k_base")
    got = encode_many_async(texts, model)()
    assert [g.tolist() for g in got] == [enc.encode_ordinary(t) for t in texts]


def test_joined_encoding_on_worker_threads_matches(real_texts: list[str]) -> None:
    texts = real_texts[:400] + ["<|endoftext|> inside"] + real_texts[400:800]
    assert sum(map(len, texts)) > 100_000  # large enough for the threaded path
    enc = get_encoding("cl100k_base")
    got = encode_many_async(texts)()
    assert [len(g) for g in got] == [len(enc.encode_ordinary(t)) for t in texts]
    assert got[400].tolist() == enc.encode_ordinary(texts[400])


@pytest.mark.parametrize("share", [0.15, 0.5, 0.999])
def test_a_busy_caller_encodes_its_share_and_gets_every_text(
    real_texts: list[str], share: float
) -> None:
    texts = real_texts[:300] + ["<|endoftext|> inside"] + real_texts[300:600]
    enc = get_encoding("cl100k_base")
    got = encode_many_async(texts, caller_share=share)()
    assert [g.tolist() for g in got] == [enc.encode_ordinary(t) for t in texts]


@settings(max_examples=80, deadline=None)
@given(parts=st.lists(TEXT, min_size=1, max_size=6))
def test_part_counts_sum_to_the_whole(parts: list[str]) -> None:
    whole = "\n".join(parts)
    ids = np.asarray(get_encoding("cl100k_base").encode_ordinary(whole), dtype=np.uint32)
    got = part_counts(ids, parts, "cl100k_base")
    assert len(got) == len(parts) and min(got) >= 0
    assert sum(got) == count_tokens(whole)


@settings(max_examples=40, deadline=None)
@given(texts=st.lists(st.lists(TEXT, min_size=1, max_size=4), min_size=1, max_size=5))
def test_part_counts_of_many_texts_are_each_texts_own(texts: list[list[str]]) -> None:
    enc = get_encoding("cl100k_base")
    ids = [np.asarray(enc.encode_ordinary("\n".join(p)), dtype=np.uint32) for p in texts]
    assert part_counts_many(ids, texts, "cl100k_base") == [
        part_counts(i, p, "cl100k_base") for i, p in zip(ids, texts)]


def test_segment_counts_every_message_exactly() -> None:
    counter = TokenCounter()
    for traj in load_all(TRAJECTORIES)[:40]:
        seg = segment(traj.messages, counter, chunk_max_tokens=48, keep_last_groups=2)
        per_message = [0] * len(seg.messages)
        for s in seg.spans:
            per_message[s.message_index] += s.tokens
        assert per_message == [count_tokens(m.text()) for m in seg.messages]
        assert counter.messages(seg.messages) == sum(per_message) + 4 * len(seg.messages)
        assert seg.tokens() == sum(per_message) + 4 * len(seg.messages)
        # each span's share is close to its own count
        assert all(abs(s.tokens - count_tokens(s.text)) <= 3 for s in seg.spans)


def test_memoised_messages_segment_as_fresh_ones() -> None:
    from switchyard.compaction import segment as segment_mod

    msgs = load_all(TRAJECTORIES)[7].messages
    counter = TokenCounter()
    segment_mod._MESSAGES.clear()
    fresh = segment(msgs[:-3], counter, chunk_max_tokens=48, keep_last_groups=2, namespace="n")
    grown = segment(msgs, counter, chunk_max_tokens=48, keep_last_groups=2, namespace="n")
    segment_mod._MESSAGES.clear()
    counter.clear()
    plain = segment(msgs, counter, chunk_max_tokens=48, keep_last_groups=2, namespace="n")
    assert grown.spans == plain.spans and grown.message_spans == plain.message_spans
    assert grown.calls_span == plain.calls_span and grown.tokens() == plain.tokens()
    assert grown.spans[:len(fresh.spans)] == fresh.spans[:len(fresh.spans)]
    other = segment(msgs, counter, chunk_max_tokens=48, keep_last_groups=2, namespace="m")
    assert [s.id for s in other.spans] != [s.id for s in plain.spans]


_TERM = re.compile(r"(?<![\w./-])(?=[\w./-]*(?:[_/\d]|[a-z][A-Z]|\w\.\w))[\w./-]{3,}")
_QUOTED = re.compile(r'"([^"\n]{3,80})"|`([^`\n]{2,80})`')
_ERROR_LINE = re.compile(r"^[^\n]*\b\w*(?:Error|Exception)\b[^\n]*$", re.MULTILINE)


def reference_terms(text: str) -> frozenset[str]:
    """The extractor as first written (one lookaround regex): the slow reference."""
    if not text:
        return frozenset()
    terms = {t.strip("./-") for t in _TERM.findall(text)}
    for a, b in _QUOTED.findall(text):
        q = (a or b).strip()
        if len(q) >= 3:
            terms.add(q)
    for line in _ERROR_LINE.findall(text):
        terms.add(line.strip()[:120])
    terms.discard("")
    return frozenset(t for t in terms if len(t) >= 3)


def test_terms_equal_the_reference_on_real_trajectories(real_texts: list[str]) -> None:
    assert sum(map(len, real_texts)) > 500_000
    assert [extract_terms(t) for t in real_texts] == [reference_terms(t) for t in real_texts]


WORDISH = ["abc", "ABC", "Abc", "aBc", "HTTPServer", "x", "a.b", ".", "-", "/", "_", "9",
           "é", "Éa", "ß", "日本", "²", "٣", " ", "\n", '"', "`", "Error", "Exception", "..."]


@settings(max_examples=300, deadline=None)
@given(text=st.lists(st.sampled_from(WORDISH), max_size=25).map("".join))
def test_terms_equal_the_reference_on_generated_text(text: str) -> None:
    assert extract_terms(text) == reference_terms(text)


def test_feature_table_does_not_depend_on_what_came_before() -> None:
    from switchyard.compaction import features

    trajs = load_all(TRAJECTORIES)
    counter = TokenCounter()
    target = segment(trajs[3].messages, counter, chunk_max_tokens=48, keep_last_groups=2)
    features._VOCAB.clear()
    fresh = features.build_table(target)
    for t in trajs[4:30]:  # other texts interned first: other term ids
        features.build_table(segment(t.messages, counter, chunk_max_tokens=48,
                                     keep_last_groups=2))
    features._VOCAB.clear()
    features.build_table(segment(trajs[5].messages, counter, chunk_max_tokens=48,
                                 keep_last_groups=2))
    again = features.build_table(target)
    assert fresh.terms == again.terms and fresh.span_terms == again.span_terms
    assert np.array_equal(fresh.x, again.x) and fresh.span_recent == again.span_recent
    assert all(list(s) == sorted(s) for s in again.span_terms)
    assert again.index == {t: i for i, t in enumerate(again.terms)}
    assert not set(again.terms) & (again.visible | again.system)
    w = np.random.default_rng(1).random(len(again.terms))
    assert np.allclose(again.span_weight(w), [sum(w[i] for i in s) for s in again.span_terms])


def test_blocked_numpy_forward_matches_the_torch_model() -> None:
    torch = pytest.importorskip("torch", reason="the torch reference needs switchyard[train]")
    from switchyard.compaction.scorer import Scorer, build_model

    scorer = Scorer.load()
    model = build_model(scorer.meta["input_dim"], scorer.meta["hidden"])
    model.load_state_dict({k: torch.from_numpy(v) for k, v in scorer.state.items()})
    x = np.random.default_rng(0).random((3 * scorer._block + 7, 24), dtype=np.float32)
    assert np.allclose(scorer.predict(x), model.eval().predict(x), atol=1e-6)
    assert scorer.predict(x[:0]).shape == (0,)


def _count_in_child(texts: list[str]) -> int:
    from switchyard.core.tokens import count_tokens_batch

    return sum(count_tokens_batch(texts))


def test_a_forked_child_counts_on_its_own_worker_threads(real_texts: list[str]) -> None:
    import multiprocessing

    texts = real_texts[:300]
    assert sum(map(len, texts)) > 20_000  # the threaded path
    expected = _count_in_child(texts)  # the parent's worker pool now exists
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply_async(_count_in_child, (texts,)).get(timeout=60) == expected


def test_batched_terms_equal_each_texts_own(real_texts: list[str]) -> None:
    from switchyard.compaction.terms import extract_terms_many

    texts = real_texts[:3000] + ["é_x a/b.py", "", "HTTPServer é", "a/b.py"]
    assert extract_terms_many(texts) == [reference_terms(t) for t in texts]


@settings(max_examples=100, deadline=None)
@given(texts=st.lists(st.lists(st.sampled_from(WORDISH), max_size=12).map("".join), max_size=6))
def test_term_cache_many_equals_the_reference(texts: list[str]) -> None:
    from switchyard.compaction.terms import TermCache

    cache = TermCache()
    if texts:
        cache(texts[0])  # some texts cached already, some not
    assert cache.many(texts) == [reference_terms(t) for t in texts]


@settings(max_examples=300, deadline=None)
@given(text=st.lists(st.sampled_from(WORDISH + ["ValueError", " ", "\t", "a.", "-x", "/a"]),
                     max_size=10).map("".join))
def test_reads_as_itself_is_membership_in_its_own_terms(text: str) -> None:
    from switchyard.compaction.terms import reads_as_itself

    assert reads_as_itself(text) == (text in reference_terms(text))


def test_reads_as_itself_on_real_terms(real_texts: list[str]) -> None:
    from switchyard.compaction.terms import reads_as_itself, terms_of

    terms = sorted({t for text in real_texts[:2000] for t in terms_of(text)})
    assert len(terms) > 1000
    assert [reads_as_itself(t) for t in terms] == [t in reference_terms(t) for t in terms]


def test_async_counts_equal_plain_counts(real_texts: list[str]) -> None:
    from switchyard.core.messages import Message

    counter = TokenCounter()
    texts = real_texts[:500] + ["", "x"]
    counter.count_many(texts[:100])  # some cached, some not
    assert counter.count_many_async(texts)() == [count_tokens(t) for t in texts]
    msgs = [Message("user", t) for t in real_texts[500:700]]
    assert counter.messages_async(msgs)() == sum(count_tokens(m.text()) + 4 for m in msgs)


def test_a_caller_encodes_the_batches_no_worker_started(
    real_texts: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from switchyard.core import tokens as tokens_mod

    monkeypatch.setattr(tokens_mod, "_BATCHES", 5)
    texts = real_texts[:600]
    expected = [len(get_encoding("cl100k_base").encode_ordinary(t)) for t in texts]
    release = threading.Event()
    blockers = [tokens_mod._pool().submit(release.wait, 30) for _ in range(tokens_mod._WORKERS)]
    try:  # every worker busy: the caller encodes all batches itself
        assert [len(a) for a in encode_many_async(texts)()] == expected
    finally:
        release.set()
    assert all(b.result(timeout=30) for b in blockers)
    assert [len(a) for a in encode_many_async(texts)()] == expected  # workers and caller


def test_segmenting_a_counted_history_encodes_nothing_again(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    from switchyard.core import tokens as tokens_mod

    msgs = load_all(TRAJECTORIES)[5].messages
    plain = segment(msgs, TokenCounter(), chunk_max_tokens=48, keep_last_groups=2,
                    namespace="ids")
    counter = TokenCounter()
    before = counter.messages(msgs)  # the pipeline counts the history first

    def no_encoding(*_a: object, **_k: object) -> None:
        raise AssertionError("encoded again")

    monkeypatch.setattr(tokens_mod, "encode_many_async", no_encoding)
    from switchyard.compaction import segment as segment_mod

    segment_mod._MESSAGES.clear()
    seg = segment(msgs, counter, chunk_max_tokens=48, keep_last_groups=2, namespace="ids")
    assert [s.tokens for s in seg.spans] == [s.tokens for s in plain.spans]
    assert seg.tokens() == before


def test_one_text_split_two_ways_gets_each_splits_counts() -> None:
    counter = TokenCounter()
    got = counter.count_parts([["alpha beta", "gamma"], ["alpha beta\ngamma"]])
    assert len(got[0]) == 2 and len(got[1]) == 1
    assert sum(got[0]) == got[1][0] == count_tokens("alpha beta\ngamma")


def test_compacting_leaves_the_collector_as_it_found_it() -> None:
    import gc

    from switchyard.compaction import Compactor

    msgs = load_all(TRAJECTORIES)[2].messages
    comp = Compactor.load()
    budget = TokenCounter().messages(msgs) // 2
    assert gc.isenabled()
    comp.compact(msgs, budget)
    assert gc.isenabled()
    gc.disable()
    try:
        comp.compact(msgs, budget)
        assert not gc.isenabled()
    finally:
        gc.enable()
