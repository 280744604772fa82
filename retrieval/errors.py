"""Errors raised by retrieval/.

    ParamError (core/errors.py: message + param)
    └── RetrievalError           base for the chunk store and the retrievers
        ├── UnknownNamespace     a namespace that holds no chunks
        ├── InvalidQuery         empty query, bad regex, bad mode, bad k
        └── ChunkTooLarge        a chunk over the store's size limit
"""

from __future__ import annotations

from switchyard.core.errors import ParamError


class RetrievalError(ParamError):
    """Base class of retrieval errors."""


class UnknownNamespace(RetrievalError):
    pass


class InvalidQuery(RetrievalError):
    pass


class ChunkTooLarge(RetrievalError):
    pass
