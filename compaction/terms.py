"""Salient terms: the things a later step refers back to (identifiers, paths, numbers,
quoted text, error lines). One extractor serves the labels, the scorer's features and the
evidence metric, so "needed" means the same thing everywhere.

A term is a run of word/path characters that carries something specific: a `_`, `/`, a
digit, a dot between word characters or an inner capital (snake_case, CamelCase, foo.py,
a/b/c, 345, NO6JO3). Plain English words are left out: they are not evidence.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

# A term is a maximal run of word/path characters (3 or more) holding a "specific" feature.
# Equivalent to one lookaround regex, (?<![\w./-])(?=[\w./-]*(?:_FEATURE))[\w./-]{3,}, but
# much faster: runs are found without a regex (ASCII texts: bytes.translate then split) or by
# a plain scan, each distinct run of a batch is judged once, and most runs (English or
# lower-case words) are turned away by str methods before the feature regex runs.
_RUN = re.compile(r"[\w./-]{3,}")
_FEATURE = re.compile(r"[_/\d]|[a-z][A-Z]|\w\.\w")
_FEATURE_B = re.compile(rb"[_/\d]|[a-z][A-Z]|\w\.\w")  # for ASCII runs, as bytes
_QUOTED = re.compile(r'"([^"\n]{3,80})"|`([^`\n]{2,80})`')
# An error line is a line holding a word that ends in Error or Exception: a word may start
# anywhere before it, so only the word's end needs checking (a regex over each line with a
# leading [^\n]* backtracks through the whole line).
_ERROR_END = re.compile(r"(?:Error|Exception)\b")
_STRIP = "./-"
_RUN_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./-"
_TO_SPACE = bytes(c if c in _RUN_BYTES else 32 for c in range(256))  # ASCII \w./- kept
_MAX_CACHED = 200_000


class _Runs:
    """Which distinct runs are terms, judged once per batch of texts."""

    def __init__(self) -> None:
        self.term: dict[bytes, str] = {}  # run -> its term (stripped, 3 characters or more)
        self.terms: set[bytes] = set()  # the keys of `term`, as a set for set algebra
        self.seen: set[bytes] = set()  # every run judged

    def ascii_terms(self, text: str) -> set[str]:
        runs = set(text.encode("ascii").translate(_TO_SPACE).split())
        new = runs - self.seen
        if new:
            self.seen |= new
            feature = _FEATURE_B.search
            for r in new:
                if len(r) >= 3 and not (r.isalpha() and (r.islower() or r.isupper() or
                                                         r.istitle())) and feature(r):
                    t = r.strip(b"./-")
                    if len(t) >= 3:
                        self.term[r] = t.decode("ascii")
                        self.terms.add(r)
        term = self.term
        return {term[r] for r in runs & self.terms}


def _run_terms(text: str) -> set[str]:
    """The run terms of any text (the plain scan; letters in one case, or capitalised, cannot
    hold a feature, so the regex is skipped for them)."""
    feature = _FEATURE.search
    terms = {r.strip(_STRIP) for r in _RUN.findall(text)
             if not (r.isalpha() and (r.islower() or r.isupper() or r.istitle())) and feature(r)}
    return {t for t in terms if len(t) >= 3}


def _extract(text: str, runs: _Runs) -> frozenset[str]:
    if not text:
        return frozenset()
    terms = runs.ascii_terms(text) if text.isascii() else _run_terms(text)
    if '"' in text or "`" in text:
        for a, b in _QUOTED.findall(text):
            q = (a or b).strip()
            if len(q) >= 3:
                terms.add(q)
    if "Error" in text or "Exception" in text:
        for line in text.split("\n"):
            if ("Error" in line or "Exception" in line) and _ERROR_END.search(line):
                terms.add(line.strip()[:120])  # holds Error or Exception: 5 or more
    return frozenset(terms)  # run and quoted terms have 3 characters or more


def extract_terms(text: str) -> frozenset[str]:
    """The salient terms of a text (uncached)."""
    return _extract(text, _Runs())


def reads_as_itself(text: str) -> bool:
    """Whether `text in extract_terms(text)`, without extracting: only a whole run or a whole
    error line can be a text's own term (a quoted term is shorter than its text)."""
    if _RUN.fullmatch(text) and text.strip(_STRIP) == text and _FEATURE.search(text):
        return True
    return ("Error" in text or "Exception" in text) and "\n" not in text and (
        len(text) <= 120 and text.strip() == text and _ERROR_END.search(text) is not None)


def extract_terms_many(texts: Sequence[str]) -> list[frozenset[str]]:
    """`extract_terms` of each text; runs repeated across the texts are judged once."""
    runs = _Runs()
    return [_extract(t, runs) for t in texts]


class TermCache:
    """Terms per text, memoised: agent histories repeat the same texts on every call."""

    def __init__(self) -> None:
        self._cache: dict[str, frozenset[str]] = {}

    def __call__(self, text: str) -> frozenset[str]:
        got = self._cache.get(text)
        if got is None:
            if len(self._cache) > _MAX_CACHED:
                self._cache.clear()
            got = self._cache[text] = extract_terms(text)
        return got

    def many(self, texts: Iterable[str]) -> list[frozenset[str]]:
        texts = list(texts)
        cache = self._cache
        missing = list(dict.fromkeys(t for t in texts if t not in cache))
        if len(cache) + len(missing) > _MAX_CACHED:
            cache.clear()
            missing = list(dict.fromkeys(texts))
        if missing:
            cache.update(zip(missing, extract_terms_many(missing)))
        return [cache[t] for t in texts]


terms_of = TermCache()
