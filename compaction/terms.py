"""Salient terms: the things a later step refers back to (identifiers, paths, numbers,
quoted text, error lines). One extractor serves the labels, the scorer's features and the
evidence metric, so "needed" means the same thing everywhere.

A term is a run of word/path characters that carries something specific: a `_`, `/`, a
digit, a dot between word characters or an inner capital (snake_case, CamelCase, foo.py,
a/b/c, 345, NO6JO3). Plain English words are left out: they are not evidence.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# A term is a maximal run of word/path characters (3 or more) holding a "specific" feature.
# Equivalent to one lookaround regex, (?<![\w./-])(?=[\w./-]*(?:_FEATURE))[\w./-]{3,}, but
# about twice as fast: runs are found by a plain scan, and most runs (English or lower-case
# words) are turned away by str methods before the feature regex runs.
_RUN = re.compile(r"[\w./-]{3,}")
_FEATURE = re.compile(r"[_/\d]|[a-z][A-Z]|\w\.\w")
_QUOTED = re.compile(r'"([^"\n]{3,80})"|`([^`\n]{2,80})`')
_ERROR_LINE = re.compile(r"^[^\n]*\b\w*(?:Error|Exception)\b[^\n]*$", re.MULTILINE)
_STRIP = "./-"
_MAX_CACHED = 200_000


def extract_terms(text: str) -> frozenset[str]:
    """The salient terms of a text (uncached)."""
    if not text:
        return frozenset()
    feature = _FEATURE.search
    # Letters in one case, or capitalised, cannot hold a feature: skip the regex for them.
    terms = {r.strip(_STRIP) for r in _RUN.findall(text)
             if not (r.isalpha() and (r.islower() or r.isupper() or r.istitle())) and feature(r)}
    if '"' in text or "`" in text:
        for a, b in _QUOTED.findall(text):
            q = (a or b).strip()
            if len(q) >= 3:
                terms.add(q)
    if "Error" in text or "Exception" in text:
        for line in _ERROR_LINE.findall(text):
            terms.add(line.strip()[:120])
    terms.discard("")
    return frozenset(t for t in terms if len(t) >= 3)


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
        return [self(t) for t in texts]


terms_of = TermCache()
