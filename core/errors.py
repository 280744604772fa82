"""The root of every Switchyard error, the base of every component's, and the errors of the
core's own helpers (chat format, outcomes).

    SwitchyardError              root: message, param, code; its HTTP status, OpenAI type and
    │                            gRPC code are class attributes (the one table, per class)
    ├── ParamError               a rejected input to a component (400 invalid_request_error)
    │   ├── ChatFormatError      a message list that is not a valid OpenAI chat request
    │   ├── OutcomeError         an outcome the traffic log cannot take (bad field, unknown id)
    │   ├── RetrievalError       (retrieval/errors.py)
    │   ├── RoutingError         (router/errors.py)
    │   └── CompactionError      (compaction/errors.py)
    └── the serving layer's      (server/errors.py: InvalidRequest, NotFound, UpstreamError...)
"""

from __future__ import annotations

from typing import Any


class SwitchyardError(Exception):
    status: int = 500
    type: str = "server_error"
    grpc_code: str = "INTERNAL"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, message={self.message!r})"

    def to_openai(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


class ParamError(SwitchyardError, ValueError):
    """A rejected input: `message` says how to fix it, `param` names the argument if known."""

    status, type, grpc_code = 400, "invalid_request_error", "INVALID_ARGUMENT"

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message, param=param)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(message={self.message!r}, param={self.param!r})"


class ChatFormatError(ParamError):
    """A message list that the OpenAI API would reject. `param` points at the bad field."""


class OutcomeError(ParamError):
    """An outcome the traffic log cannot take: a bad field, or a request id it does not hold."""
