"""Errors raised by retrieval/ and by the shared chat and token helpers.

    ValueError
    ├── ChatFormatError          a message list that is not a valid OpenAI chat request
    └── RetrievalError           base for the chunk store and the retrievers
        ├── UnknownNamespace     a namespace that holds no chunks
        ├── InvalidQuery         empty query, bad regex, bad mode, bad k
        └── ChunkTooLarge        a chunk over the store's size limit
"""

from __future__ import annotations


class ChatFormatError(ValueError):
    """A message list that the OpenAI API would reject. `param` points at the bad field."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param

    def __repr__(self) -> str:
        return f"ChatFormatError(message={self.message!r}, param={self.param!r})"


class RetrievalError(ValueError):
    """Base class of retrieval errors; `param` names the offending argument when known."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param

    def __repr__(self) -> str:
        return f"{type(self).__name__}(message={self.message!r}, param={self.param!r})"


class UnknownNamespace(RetrievalError):
    pass


class InvalidQuery(RetrievalError):
    pass


class ChunkTooLarge(RetrievalError):
    pass
