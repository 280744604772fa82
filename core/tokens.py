"""Token counting per target model: the one tokenizer helper of the project.

Encodings come from tiktoken. tiktoken downloads its BPE files on first use, which fails
offline, so we point `TIKTOKEN_CACHE_DIR` at the copies LiteLLM ships (found without
importing LiteLLM, which is slow). Models are mapped to encodings by name prefix; unknown
models (Claude, Llama, Qwen, ...) fall back to `cl100k_base`, which is within about 10-15%
of their own tokenizers on English and code - close enough for budgets, never for billing.

Many texts are encoded in one call to tiktoken's Rust core, joined by `<|endoftext|>` and
encoded with that special token allowed: tiktoken encodes the text between special tokens
independently, so each text gets exactly its `encode_ordinary` tokens, and the call releases
the GIL for its whole length (a call per text would wait for the GIL between texts).
Large batches run on worker threads while the caller goes on with its own work; the caller
then encodes any batch no worker has started, and a `TokenCounter` keeps the token ids of
what it counted, so a history counted once is split among its chunks without encoding it
again.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import tiktoken
    from switchyard.core.messages import Message

FALLBACK_ENCODING = "cl100k_base"
_O200K_PREFIXES = ("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "chatgpt-4o")
_CL100K_PREFIXES = ("gpt-4", "gpt-3.5", "text-embedding-3", "text-embedding-ada")
# Per-message framing the OpenAI chat format adds (role markers, separators).
MESSAGE_OVERHEAD_TOKENS = 4
_MAX_CACHED_CHARS = 64_000_000
_MAX_ID_CHARS = 16_000_000  # texts whose token ids are kept (about 4 bytes per 4 chars)
_SEP = "<|endoftext|>"  # joins texts for one Rust call; texts containing it go alone
_THREADED_FROM = 16_000  # chars (~3 ms of encoding): below, a thread handoff costs more
_WORKERS = 2  # the deployment target has 2 cores
_BATCHES = 2  # large jobs cut in batches of about equal length, one per worker
# At most, in all, for the workers to pick their batches up: an idle worker takes well under
# a millisecond; a busy pool (another caller's batches) is not waited for, the caller
# encodes what is left itself.
_START_WAIT_S = 0.005
_POOL: list[ThreadPoolExecutor] = []
_FORK_HOOK: list[bool] = []


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


@cache
def get_encoding(name: str) -> tiktoken.Encoding:
    import tiktoken

    if "TIKTOKEN_CACHE_DIR" not in os.environ:
        bundled = _litellm_tiktoken_dir()
        if bundled is not None:
            os.environ["TIKTOKEN_CACHE_DIR"] = str(bundled)
    return tiktoken.get_encoding(name)


@cache
def _token_bytes(name: str) -> np.ndarray:
    """Byte length of every token id of an encoding (special tokens included)."""
    import numpy as np

    enc = get_encoding(name)
    lengths = np.zeros(enc.max_token_value + 1, dtype=np.int64)
    lengths[np.fromiter(enc._mergeable_ranks.values(), dtype=np.int64)] = np.fromiter(
        map(len, enc._mergeable_ranks), dtype=np.int64)
    for text, token in enc._special_tokens.items():
        lengths[token] = len(text.encode("utf-8"))
    return lengths


def _pool() -> ThreadPoolExecutor:
    if not _POOL:
        if not _FORK_HOOK:  # a forked child has none of the parent's threads: start afresh
            os.register_at_fork(after_in_child=_POOL.clear)
            _FORK_HOOK.append(True)
        _POOL.append(ThreadPoolExecutor(_WORKERS, thread_name_prefix="tokens"))
    return _POOL[0]


def _encode_joined(
    name: str, texts: Sequence[str], started: threading.Event | None = None
) -> list[np.ndarray]:
    """The `encode_ordinary` tokens of each text (none may contain `_SEP`), one Rust call.
    `started` is set just before the call leaves the GIL."""
    import numpy as np

    enc = get_encoding(name)
    sep = enc._special_tokens.get(_SEP)
    if sep is None or len(texts) == 1:
        if started is not None:
            started.set()
        return [np.asarray(enc._core_bpe.encode_ordinary(t), dtype=np.uint32) for t in texts]
    joined = _SEP.join(texts)
    if started is not None:
        started.set()
    buf = enc._core_bpe.encode_to_tiktoken_buffer(joined, {_SEP})
    ids = np.frombuffer(buf, dtype=np.uint32)
    at = np.flatnonzero(ids == sep)
    return np.split(ids, np.concatenate((at, at + 1)).reshape(2, -1).T.ravel())[::2]


def _cut(texts: list[str], shares: Sequence[float]) -> list[list[str]]:
    """`texts` cut into consecutive runs, run i+1 starting once the runs before it hold
    `shares[i]` of the characters (increasing fractions)."""
    total = sum(map(len, texts))
    out: list[list[str]] = [[]]
    size = 0
    for t in texts:
        if len(out) <= len(shares) and size >= total * shares[len(out) - 1]:
            out.append([])
        out[-1].append(t)
        size += len(t)
    return out


def encode_many_async(
    texts: Sequence[str], model: str | None = None, *, caller_share: float = 0.0
) -> Callable[[], list[np.ndarray]]:
    """Start encoding `texts` (ordinary tokens, as uint32 arrays); returns a function that
    waits for the result. Large batches run on worker threads, so the caller can do other
    work meanwhile; small ones are encoded before this returns.

    `caller_share`: for a caller with much work of its own to do first. One worker then
    encodes the leading rest while the caller keeps its core to itself (on two cores, two
    workers and a busy caller slow each other down), and the caller encodes the trailing
    share when it asks for the result, so both finish at about the same time."""
    name = encoding_name_for(model)
    alone = [i for i, t in enumerate(texts) if _SEP in t]
    joined = [t for t in texts if _SEP not in t] if alone else list(texts)
    if sum(map(len, texts)) < _THREADED_FROM:
        done = _encode_joined(name, joined) if joined else []
        return lambda: _reinsert(name, texts, alone, done)
    if caller_share > 0:
        lead, *tail = _cut(joined, [1 - caller_share])
        if lead:
            return _encode_started(name, texts, alone, [lead], tail)
    even = _cut(joined, [k / _BATCHES for k in range(1, _BATCHES)])
    return _encode_started(name, texts, alone, [run for run in even if run], [])


def _encode_started(name: str, texts: Sequence[str], alone: list[int],
                    pooled: list[list[str]], own: list[list[str]]
                    ) -> Callable[[], list[np.ndarray]]:
    """Submit the `pooled` batches to the workers; returns the function that collects the
    result, encoding the caller's `own` batches (which follow them) on the caller."""
    started = [threading.Event() for _ in pooled[:_WORKERS]]
    futures = [_pool().submit(_encode_joined, name, part, started[i] if i < _WORKERS else None)
               for i, part in enumerate(pooled)]
    # A worker needs the GIL to reach the tokenizer, and a busy caller yields it only every
    # switch interval (5 ms): wait until the workers are in, so the caller's own work (which
    # keeps the GIL) cannot hold them back.
    deadline = time.monotonic() + _START_WAIT_S
    for ev in started:
        ev.wait(max(deadline - time.monotonic(), 0.0))

    def result() -> list[np.ndarray]:
        # The caller encodes its own batches, then what no worker has started (a pool busy
        # with another caller's batches), from the end, instead of only waiting.
        mine = [a for part in own for a in _encode_joined(name, part)]
        done: dict[int, list[np.ndarray]] = {}
        for i in reversed(range(len(pooled))):
            if futures[i].cancel():
                done[i] = _encode_joined(name, pooled[i])
        got = [a for i, f in enumerate(futures) for a in (done[i] if i in done else f.result())]
        return _reinsert(name, texts, alone, got + mine)

    return result


def _reinsert(name: str, texts: Sequence[str], alone: list[int],
              joined: list[np.ndarray]) -> list[np.ndarray]:
    if not alone:
        return joined
    import numpy as np

    core = get_encoding(name)._core_bpe
    rest = iter(joined)
    single = set(alone)
    return [np.asarray(core.encode_ordinary(t), dtype=np.uint32) if i in single else next(rest)
            for i, t in enumerate(texts)]


def count_tokens(text: str, model: str | None = None) -> int:
    if not text:
        return 0
    return len(get_encoding(encoding_name_for(model)).encode_ordinary(text))


def count_tokens_batch(texts: list[str], model: str | None = None) -> list[int]:
    """Counts for many texts at once (large batches on worker threads)."""
    return [len(ids) for ids in encode_many_async(texts, model)()]


def part_counts(ids: np.ndarray, parts: Sequence[str], name: str) -> tuple[int, ...]:
    """Token counts of `parts`, given the tokens `ids` of `"\n".join(parts)`: each token is
    credited to the part its first byte is in (a newline belongs to the part before it), so
    the counts sum exactly to the whole text's count; each is within a token or two of the
    part's own count."""
    return part_counts_many([ids], [parts], name)[0]


def _utf8_sizes(parts: Sequence[str]) -> list[int]:
    return [len(p) if p.isascii() else len(p.encode("utf-8")) for p in parts]


def part_counts_many(
    ids: Sequence[np.ndarray], parts: Sequence[Sequence[str]], name: str
) -> list[tuple[int, ...]]:
    """`part_counts` for many texts (each of one part or more) at once: the texts laid end
    to end, one search for all the places where parts end."""
    import numpy as np

    flat = np.concatenate(ids) if ids else np.zeros(0, dtype=np.uint32)
    ends = np.cumsum(_token_bytes(name)[flat])
    starts = ends - _token_bytes(name)[flat]  # byte where each token begins, all texts
    cuts: list[int] = []  # global byte where each part ends
    at = 0
    for ps in parts:
        for size in _utf8_sizes(ps):
            at += size + 1
            cuts.append(at)
        at -= 1  # no newline after a text's last part: the next text begins at its end
        cuts[-1] = at
    before = np.searchsorted(starts, np.asarray(cuts, dtype=np.int64)).tolist()
    out: list[tuple[int, ...]] = []
    k = 0
    for ps in parts:
        m = len(ps)
        bounds = before[k:k + m]  # tokens before each part's end (the last: the text's end)
        out.append(tuple(b - a for a, b in zip([before[k - 1] if k else 0, *bounds], bounds)))
        k += m
    return out


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
        self._parts: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}
        self._chars = 0
        # Token ids of texts counted whole: the pipeline counts a history before compacting
        # it, and segmentation then splits those ids among spans instead of encoding again.
        self._ids: dict[str, np.ndarray] = {}
        self._id_chars = 0

    def clear(self) -> None:
        self._cache.clear()
        self._parts.clear()
        self._chars = 0
        self._ids.clear()
        self._id_chars = 0

    def _keep_ids(self, texts: Sequence[str], ids: Sequence[np.ndarray]) -> None:
        size = sum(map(len, texts))
        if self._id_chars + size > _MAX_ID_CHARS:
            self._ids.clear()
            self._id_chars = 0
            if size > _MAX_ID_CHARS:
                return
        self._id_chars += size
        self._ids.update(zip(texts, ids))

    def _room(self, incoming: int) -> None:
        if self._chars + incoming > _MAX_CACHED_CHARS:
            self.clear()
        self._chars += incoming

    def count_many_async(self, texts: Sequence[str]) -> Callable[[], list[int]]:
        """Start counting `texts`; returns a function that waits for the counts. Uncached
        texts are encoded on worker threads when there is much of them."""
        cache = self._cache
        missing = list({t for t in texts if t and t not in cache})
        if not missing:
            counts = [cache[t] if t else 0 for t in texts]
            return lambda: counts
        known = {t: cache[t] for t in texts if t in cache}  # the cache may be cleared below
        wait = encode_many_async(missing, self.model)

        def result() -> list[int]:
            encoded = wait()
            fresh = dict(zip(missing, map(len, encoded)))
            self._room(sum(map(len, missing)))  # may clear every cache: before storing
            self._keep_ids(missing, encoded)
            cache.update(fresh)
            return [fresh[t] if t in fresh else known.get(t, 0) for t in texts]

        return result

    def count_many(self, texts: Sequence[str]) -> list[int]:
        return self.count_many_async(texts)()

    def count(self, text: str) -> int:
        return self.count_many([text])[0] if text else 0

    def messages_async(self, messages: Sequence[Message]) -> Callable[[], int]:
        """Start counting messages as `messages()` does; returns a function that waits."""
        wait = self.count_many_async([m.text() for m in messages])
        return lambda: sum(wait()) + MESSAGE_OVERHEAD_TOKENS * len(messages)

    def messages(self, messages: Sequence[Message]) -> int:
        return self.messages_async(messages)()

    def parts_async(
        self, texts: Sequence[Sequence[str]], *, caller_share: float = 0.0
    ) -> Callable[[], list[tuple[int, ...]]]:
        """Start counting texts given as parts (each text is `"\\n".join(parts)`): one
        encoding of each whole text, exact, credited to its parts (`part_counts`). Returns a
        function that waits for the counts; large uncached work runs on worker threads
        (`caller_share`: see `encode_many_async`). Whole texts land in the plain cache too,
        so `messages()` then costs nothing."""
        wholes = [p[0] if len(p) == 1 else "\n".join(p) for p in texts]
        sizes = [tuple(map(len, p)) for p in texts]
        known: dict[tuple[str, tuple[int, ...]], tuple[int, ...]] = {}
        todo: dict[tuple[str, tuple[int, ...]], int] = {}  # (whole, part sizes) -> a text
        for i, key in enumerate(zip(wholes, sizes)):
            got = self._parts.get(key[0])
            if got is not None and got[0] == key[1]:
                known[key] = got[1]
            elif key not in todo:
                todo[key] = i
        held = {w: self._ids[w] for w, _ in todo if w in self._ids}  # counted before
        rest = list(dict.fromkeys(w for w, _ in todo if w not in held))
        wait = encode_many_async(rest, self.model, caller_share=caller_share) if rest else None

        def result() -> list[tuple[int, ...]]:
            if todo:
                if wait is not None:
                    held.update(zip(rest, wait()))
                ids = [held[w] for w, _ in todo]
                counted = part_counts_many(ids, [texts[i] for i in todo.values()],
                                           self.encoding)
                self._room(sum(map(len, rest)))
                for key, a, counts in zip(todo, ids, counted):
                    self._cache[key[0]] = len(a)
                    self._parts[key[0]] = (key[1], counts)
                    known[key] = counts
            return [known[key] for key in zip(wholes, sizes)]

        return result

    def count_parts(self, texts: Sequence[Sequence[str]]) -> list[tuple[int, ...]]:
        return self.parts_async(texts)()


_COUNTERS: dict[str, TokenCounter] = {}


def counter_for(model: str | None) -> TokenCounter:
    """One shared counter per encoding, so every caller benefits from the cache."""
    name = encoding_name_for(model)
    if name not in _COUNTERS:
        _COUNTERS[name] = TokenCounter(model)
    return _COUNTERS[name]


def count_message_tokens(messages: Iterable[Message], model: str | None = None) -> int:
    return counter_for(model).messages(list(messages))
