"""Cached token counts for the compactor, on top of retrieval/tokens.py (the one tokenizer).

An agent resends its history on every call, so the same message texts are counted again and
again; a per-encoding dict from text to count makes the second call nearly free. The cache
is bounded by total cached characters and cleared wholesale when full (cheap and simple).
"""

from __future__ import annotations

from collections.abc import Sequence

from retrieval.chat import Message
from retrieval.tokens import MESSAGE_OVERHEAD_TOKENS, count_tokens_batch, encoding_name_for

_MAX_CACHED_CHARS = 64_000_000


class TokenCounter:
    """Counts tokens for one target model's encoding, memoising by text."""

    def __init__(self, model: str | None = None) -> None:
        self.model = model
        self.encoding = encoding_name_for(model)
        self._cache: dict[str, int] = {}
        self._chars = 0

    def count_many(self, texts: Sequence[str]) -> list[int]:
        cache = self._cache
        missing = list({t for t in texts if t not in cache})
        if missing:
            if self._chars > _MAX_CACHED_CHARS:
                cache.clear()
                self._chars = 0
            for text, n in zip(missing, count_tokens_batch(missing, self.model)):
                cache[text] = n
                self._chars += len(text)
        return [cache[t] if t else 0 for t in texts]

    def count(self, text: str) -> int:
        return self.count_many([text])[0] if text else 0

    def messages(self, messages: Sequence[Message]) -> int:
        """Same figure as retrieval.tokens.count_message_tokens, with caching."""
        return sum(self.count_many([m.text() for m in messages])) + MESSAGE_OVERHEAD_TOKENS * len(
            messages
        )


_COUNTERS: dict[str, TokenCounter] = {}


def counter_for(model: str | None) -> TokenCounter:
    """One shared counter per encoding, so every caller benefits from the cache."""
    name = encoding_name_for(model)
    if name not in _COUNTERS:
        _COUNTERS[name] = TokenCounter(model)
    return _COUNTERS[name]
