"""Code-aware tokenisation for BM25: identifiers split, paths and numbers kept.

`getUserName`, `get_user_name` and `GetUserName` all yield `get`, `user`, `name` (plus the
whole identifier, so an exact identifier still outranks its parts). A path such as
`src/app/main.py` is kept whole and split into its components. Numbers are kept: agents
refer back to ids, line numbers and ports.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# One pass over the text: paths first (they contain the other shapes), then identifiers,
# then numbers. A path needs a separator and at least one word character on each side.
_TOKEN_RE = re.compile(
    r"(?P<path>(?:[\w.\-~]+)?(?:[/\\][\w.\-]+)+)"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<num>\d+(?:\.\d+)*)"
)
_PART_RE = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_PATH_PART_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+")

# Deliberately small: code words such as "for", "if", "not" and "in" carry meaning in
# identifiers and queries about code, so only the filler of English prose is dropped.
STOPWORDS = frozenset(
    ["a", "an", "and", "are", "as", "at", "be", "by", "does", "how", "i", "is", "it", "its", "of", "on", "or", "that", "the", "this", "to", "was", "what", "when", "where", "which", "who", "why", "with"]
)


def split_identifier(word: str) -> list[str]:
    """`parseHTTPResponse_v2` -> ['parse', 'http', 'response', 'v', '2'] (lower case)."""
    parts: list[str] = []
    for piece in word.split("_"):
        parts.extend(p.lower() for p in _PART_RE.findall(piece))
    return parts


def _word_tokens(word: str, out: list[str]) -> None:
    lower = word.lower()
    parts = split_identifier(word)
    if len(parts) != 1 or parts[0] != lower:
        out.append(lower)  # the whole identifier, when it differs from its only part
    out.extend(p for p in parts if p not in STOPWORDS)


def tokenize(text: str) -> list[str]:
    """Tokens of one text, in order, lower-cased; stopwords dropped, duplicates kept (for tf)."""
    out: list[str] = []
    for m in _TOKEN_RE.finditer(text):
        kind = m.lastgroup
        value = m.group()
        if kind == "path":
            out.append(value.lower())
            for part in _PATH_PART_RE.findall(value):
                if part[0].isdigit():
                    out.append(part)
                else:
                    _word_tokens(part, out)
        elif kind == "word":
            _word_tokens(value, out)
        else:
            out.append(value)
    return out


def tokenize_many(texts: Iterable[str]) -> list[list[str]]:
    return [tokenize(t) for t in texts]
