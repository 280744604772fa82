"""Token counting per target model: the one tokenizer helper of the project.

Encodings come from tiktoken. tiktoken downloads its BPE files on first use, which fails
offline, so we point `TIKTOKEN_CACHE_DIR` at the copies LiteLLM ships (found without
importing LiteLLM, which is slow). Models are mapped to encodings by name prefix; unknown
models (Claude, Llama, Qwen, ...) fall back to `cl100k_base`, which is within about 10-15%
of their own tokenizers on English and code - close enough for budgets, never for billing.
"""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

if TYPE_CHECKING:
    import tiktoken

    from retrieval.chat import Message

FALLBACK_ENCODING = "cl100k_base"
_O200K_PREFIXES = ("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "chatgpt-4o")
_CL100K_PREFIXES = ("gpt-4", "gpt-3.5", "text-embedding-3", "text-embedding-ada")
# Per-message framing the OpenAI chat format adds (role markers, separators).
MESSAGE_OVERHEAD_TOKENS = 4
_MAX_CACHED_CHARS = 64_000_000
_BATCH_FROM = 16  # below this many texts, tiktoken's thread pool costs more than it saves


def encoding_name_for(model: str | None) -> str:
    """The tiktoken encoding for a model name; provider prefixes ('openai/') are ignored."""
    name = (model or "").rsplit("/", 1)[-1].lower()
    if name.startswith(_O200K_PREFIXES):
        return "o200k_base"
    if name.startswith(_CL100K_PREFIXES):
        return "cl100k_base"
    return FALLBACK_ENCODING


def _litellm_tiktoken_dir() -> Path | None:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "litellm_core_utils" / "tokenizers"
    return path if path.is_dir() else None


@lru_cache(maxsize=None)
def get_encoding(name: str) -> "tiktoken.Encoding":
    import tiktoken

    if "TIKTOKEN_CACHE_DIR" not in os.environ:
        bundled = _litellm_tiktoken_dir()
        if bundled is not None:
            os.environ["TIKTOKEN_CACHE_DIR"] = str(bundled)
    return tiktoken.get_encoding(name)


def count_tokens(text: str, model: str | None = None) -> int:
    if not text:
        return 0
    return len(get_encoding(encoding_name_for(model)).encode_ordinary(text))


def count_tokens_batch(texts: list[str], model: str | None = None) -> list[int]:
    """Counts for many texts at once (tiktoken encodes large batches on several threads)."""
    enc = get_encoding(encoding_name_for(model))
    if len(texts) < _BATCH_FROM:
        return [len(enc.encode_ordinary(t)) if t else 0 for t in texts]
    return [len(ids) for ids in enc.encode_ordinary_batch(texts)]


class TokenCounter:
    """Counts tokens for one encoding, memoising by text.

    An agent resends its history on every call, so the same message texts are counted again
    and again; a dict from text to count makes the second call nearly free. The cache is
    bounded by total cached characters and cleared wholesale when full (cheap and simple).
    """

    def __init__(self, model: str | None = None) -> None:
        self.model = model
        self.encoding = encoding_name_for(model)
        self._cache: dict[str, int] = {}
        self._chars = 0

    def count_many(self, texts: Sequence[str]) -> list[int]:
        cache = self._cache
        missing = list({t for t in texts if t and t not in cache})
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

    def messages(self, messages: Sequence["Message"]) -> int:
        texts = [m.text() for m in messages]
        return sum(self.count_many(texts)) + MESSAGE_OVERHEAD_TOKENS * len(texts)


_COUNTERS: dict[str, TokenCounter] = {}


def counter_for(model: str | None) -> TokenCounter:
    """One shared counter per encoding, so every caller benefits from the cache."""
    name = encoding_name_for(model)
    if name not in _COUNTERS:
        _COUNTERS[name] = TokenCounter(model)
    return _COUNTERS[name]


def count_message_tokens(messages: Iterable["Message"], model: str | None = None) -> int:
    return counter_for(model).messages(list(messages))
