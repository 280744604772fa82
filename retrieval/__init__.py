"""Retrieval: one chunk store, three retrievers (BM25, grep, dense), one fusion.

Importing this package is cheap: numpy and the standard library only. FAISS, bm25s, RE2
and the encoder are imported when first used.
"""

from .bm25 import Bm25Params
from .chunk import Chunk, ChunkSink, chunk_id
from .errors import ChunkTooLarge, InvalidQuery, RetrievalError, UnknownNamespace
from .faiss_index import DenseParams
from .files import ChunkingParams
from .fuse import DEFAULT_FUSION, FUSIONS, QueryShape, Weights, query_shape, weights_for
from .index import MODES, Hit, Index, IndexConfig, IndexStats, Mode

__all__ = [
    "DEFAULT_FUSION",
    "FUSIONS",
    "MODES",
    "Bm25Params",
    "Chunk",
    "ChunkSink",
    "ChunkTooLarge",
    "ChunkingParams",
    "DenseParams",
    "Hit",
    "Index",
    "IndexConfig",
    "IndexStats",
    "InvalidQuery",
    "Mode",
    "QueryShape",
    "RetrievalError",
    "UnknownNamespace",
    "Weights",
    "chunk_id",
    "query_shape",
    "weights_for",
]
