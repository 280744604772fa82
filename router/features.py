"""Features of a request: a MiniLM vector of what is asked plus cheap structural counts.

The text embedded is the latest user turn, then a short summary of the recent context
(system prompt head, last assistant/tool text), cut to `max_chars` (head and tail kept:
long turns often paste material first and ask last). Two encoder modes share MiniLM:
- "minilm": the full transformer (retrieval.embedding), truncated to `max_tokens`;
- "minilm-static": MiniLM's own input token embeddings, mean-pooled: no transformer pass,
  about 100x faster, at a quality cost that bench/router.py measures;
- "none": no embedding, the structural and reasoning counts alone (what transfers to
  left-out families is the shape of a task, not its topic: bench/router.py measures both).
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from switchyard.router.cues import LEXICAL, lexical_cues
from switchyard.router.decision import RouteRequest
from switchyard.router.errors import RoutingError
from switchyard.router.reasoning import REASONING, reasoning_features

EMBED_DIM = 384
ENCODER_MODES = ("minilm", "minilm-static", "none")
STRUCTURAL = (
    "log_user_chars", "log_total_chars", "log_turns", "log_user_turns", "log_tools_offered",
    "log_tool_results", "code_blocks", "code_chars_share", "math_marks", "digit_share",
    "json_requested", "format_requested", "multiple_choice", "questions", "has_system",
    "log_attachments", "log_words", "long_word_share",
)
# Opt-in: the counts above plus the task-kind cues of router/cues.py (`train-router --cues`).
# Not the default: across left-out families their gain is inside the spread
# (bench/router.py prints both rows; bench/results/tuning-notes.md).
WITH_CUES = STRUCTURAL + LEXICAL
# The default since the five-source data: the counts plus router/reasoning.py's cues.
WITH_REASONING = STRUCTURAL + REASONING
KNOWN = STRUCTURAL + LEXICAL + REASONING

SHAPE_CHARS = 4000
_CODE_BLOCK = re.compile(r"```")
_CODE_CHARS = re.compile(r"[{};=<>\[\]()]")
_MATH = re.compile(r"\\(?:frac|sqrt|sum|int|cdot|le|ge|pi|theta|alpha)|\$|\^|[=+*/]\s*\d|∫|√|π")
# Matched against the lower-cased turn: IGNORECASE costs ~1 ms on a 4k-char turn.
_FORMAT = re.compile(r"\b(json|yaml|csv|table|markdown|bullet|list|format)\b")
_CHOICES = re.compile(r"(?m)^\s*\(?[A-D][.)]\s")


@dataclass(frozen=True)
class FeatureSpec:
    encoder: str = "none"
    max_chars: int = 2000
    max_tokens: int = 256
    context_chars: int = 300
    structural: tuple[str, ...] = field(default=WITH_REASONING)

    def __post_init__(self) -> None:
        if self.encoder not in ENCODER_MODES:
            raise RoutingError(
                f"unknown encoder mode {self.encoder!r}; valid: {', '.join(ENCODER_MODES)}",
                "encoder",
            )
        unknown = [n for n in self.structural if n not in KNOWN]
        if unknown:
            raise RoutingError(
                f"unknown structural feature(s) {', '.join(unknown)}; valid: "
                f"{', '.join(KNOWN)}", "structural",
            )

    @property
    def embed_dim(self) -> int:
        return 0 if self.encoder == "none" else EMBED_DIM

    @property
    def dim(self) -> int:
        return self.embed_dim + len(self.structural)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> FeatureSpec:
        raw = dict(raw)
        raw["structural"] = tuple(raw.get("structural", WITH_REASONING))
        return cls(**raw)


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head = (limit * 2) // 3
    return text[:head] + " ... " + text[-(limit - head):]


def latest_user_index(request: RouteRequest) -> int:
    for i in range(len(request.messages) - 1, -1, -1):
        if request.messages[i].role == "user":
            return i
    return len(request.messages) - 1


def embed_text(request: RouteRequest, spec: FeatureSpec) -> str:
    """The latest user turn, then a short summary of the context around it."""
    msgs = request.messages
    if not msgs:
        return ""
    i = latest_user_index(request)
    query = msgs[i].text() if i >= 0 else ""
    context = [m.text() for m in msgs[:i] if m.role == "system"][:1]
    context += [m.text() for m in msgs[max(i - 2, 0):] if m.role in ("assistant", "tool")][-2:]
    summary = _clip(" | ".join(t for t in context if t), spec.context_chars)
    text = _clip(query, spec.max_chars - (len(summary) + 10 if summary else 0))
    return f"{text}\nContext: {summary}" if summary else text


def _log(n: float) -> float:
    return math.log1p(max(n, 0.0))


def structural_features(
    request: RouteRequest, cues: bool = False, reasoning: bool = False
) -> dict[str, float]:
    """Cheap counts over the request (plus the lexical and reasoning cues if asked); every
    value is finite."""
    msgs = request.messages
    i = latest_user_index(request)
    full = msgs[i].text() if msgs else ""
    total = sum(len(m.text()) for m in msgs)
    # Shape counts and shares read a clipped turn: on a 4k-token turn the full scan costs ms.
    user = _clip(full, SHAPE_CHARS)
    words = user.split()
    n = max(len(user), 1)
    fmt = request.response_format or ""
    lower = user.lower()
    return {
        "log_user_chars": _log(len(full)),
        "log_total_chars": _log(total),
        "log_turns": _log(len(msgs)),
        "log_user_turns": _log(sum(m.role == "user" for m in msgs)),
        "log_tools_offered": _log(len(request.tools)),
        "log_tool_results": _log(sum(m.role == "tool" for m in msgs)),
        "code_blocks": min(len(_CODE_BLOCK.findall(user)) / 2.0, 10.0),
        "code_chars_share": len(_CODE_CHARS.findall(user)) / n,
        "math_marks": _log(len(_MATH.findall(user))),
        "digit_share": sum(map(str.isdigit, user)) / n,  # map: 4x faster than a genexpr
        "json_requested": float("json" in fmt or "json" in lower),
        "format_requested": float(bool(fmt) or bool(_FORMAT.search(lower))),
        "multiple_choice": float(len(_CHOICES.findall(user)) >= 3),
        "questions": _log(user.count("?")),
        "has_system": float(any(m.role == "system" for m in msgs)),
        "log_attachments": _log(sum(len(m.attachments) for m in msgs)),
        "log_words": _log(len(words)),
        "long_word_share": sum(1 for w in words if len(w) > 8) / max(len(words), 1),
        **(lexical_cues(user) if cues else {}),
        **(reasoning_features(user) if reasoning else {}),
    }


class StaticMiniLM:
    """MiniLM's input token embeddings, mean-pooled and L2-normalised (no transformer).

    Tokenises with the Rust tokenizer directly: the transformers wrapper cost ~3 ms per call
    on a 2k-char turn. Vectors are cached by text (agents resend the same turns).
    """

    def __init__(self, max_tokens: int, cache_size: int = 4096) -> None:
        from switchyard.retrieval.embedding import load_tokenizer, token_table

        self.backend = load_tokenizer(max_tokens)
        self.backend.no_padding()
        self.table = token_table()
        self.max_tokens = max_tokens
        self.skip = {i for i in (self.backend.token_to_id(t) for t in ("[CLS]", "[SEP]", "[PAD]"))
                     if i is not None}
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def _vector(self, ids: Sequence[int]) -> np.ndarray:
        toks = [t for t in ids if t not in self.skip]
        if not toks:
            return np.zeros(EMBED_DIM, dtype=np.float32)
        v = self.table[toks].mean(axis=0)
        return v / max(float(np.linalg.norm(v)), 1e-9)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), EMBED_DIM), dtype=np.float32)
        with self._lock:
            todo = [i for i, t in enumerate(texts) if t not in self._cache]
            for i, t in enumerate(texts):
                if t in self._cache:
                    self._cache.move_to_end(t)
                    out[i] = self._cache[t]
        if todo:
            encs = self.backend.encode_batch([texts[i] for i in todo], add_special_tokens=False)
            with self._lock:
                for i, enc in zip(todo, encs):
                    out[i] = self._cache[texts[i]] = self._vector(enc.ids)
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return out


_static: dict[int, StaticMiniLM] = {}
_static_lock = threading.Lock()


def embed(texts: Sequence[str], spec: FeatureSpec) -> np.ndarray:
    """(n, spec.embed_dim) float32 unit rows in the spec's encoder mode."""
    if not texts or spec.encoder == "none":
        return np.zeros((len(texts), spec.embed_dim), dtype=np.float32)
    if spec.encoder == "minilm-static":
        with _static_lock:
            enc = _static.get(spec.max_tokens)
            if enc is None:
                enc = _static[spec.max_tokens] = StaticMiniLM(spec.max_tokens)
        return enc.encode(texts)
    from switchyard.retrieval.embedding import get_encoder, load_tokenizer

    encoder = get_encoder()
    if spec.max_tokens >= encoder.max_tokens:
        return encoder.encode(list(texts))
    # The shared encoder truncates at its own limit; cut shorter here by the same tokenizer.
    short = load_tokenizer(spec.max_tokens)
    short.no_padding()
    encs = short.encode_batch(list(texts), add_special_tokens=False)
    return encoder.encode(short.decode_batch([e.ids for e in encs]))


def structural_matrix(requests: Sequence[RouteRequest], spec: FeatureSpec) -> np.ndarray:
    # Each cue set costs ~0.8 ms on a 4k turn: computed only if the spec uses it.
    cues = any(name in LEXICAL for name in spec.structural)
    reasoning = any(name in REASONING for name in spec.structural)
    rows = [structural_features(r, cues, reasoning) for r in requests]
    return np.array([[row[name] for name in spec.structural] for row in rows],
                    dtype=np.float32).reshape(len(requests), len(spec.structural))


def featurize(requests: Sequence[RouteRequest], spec: FeatureSpec) -> np.ndarray:
    """(n, spec.dim) float32: embedding (if any) then raw structural features."""
    texts = [embed_text(r, spec) for r in requests]
    return np.concatenate([embed(texts, spec), structural_matrix(requests, spec)], axis=1)
