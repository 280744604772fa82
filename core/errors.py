"""The base of every component's errors, and the chat-format error of the shared chat helpers.

    ValueError
    └── ParamError               base of every component's errors: a message and the bad param
        ├── ChatFormatError      a message list that is not a valid OpenAI chat request
        ├── OutcomeError         an outcome the traffic log cannot take (bad field, unknown id)
        ├── RetrievalError       (retrieval/errors.py)
        ├── RoutingError         (router/errors.py)
        └── CompactionError      (compaction/errors.py)
"""

from __future__ import annotations


class ParamError(ValueError):
    """A rejected input: `message` says how to fix it, `param` names the argument if known."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param

    def __repr__(self) -> str:
        return f"{type(self).__name__}(message={self.message!r}, param={self.param!r})"


class ChatFormatError(ParamError):
    """A message list that the OpenAI API would reject. `param` points at the bad field."""


class OutcomeError(ParamError):
    """An outcome the traffic log cannot take: a bad field, or a request id it does not hold."""
