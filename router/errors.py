"""Errors raised by router/.

    ParamError (core/errors.py: message + param)
    └── RoutingError             base: a bad router name, threshold, override or request
        ├── CheckpointError      a checkpoint that is missing, corrupt or of another version
        └── RouterDataError      a training data file that is missing or malformed
"""

from __future__ import annotations

from switchyard.core.errors import ParamError


class RoutingError(ParamError):
    """Base class of router errors; `param` names the offending argument when known."""


class CheckpointError(RoutingError):
    """The checkpoint cannot be used; `path` is the file that failed."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message, param="checkpoint")
        self.path = path

    def __repr__(self) -> str:
        return f"CheckpointError(message={self.message!r}, path={self.path!r})"


class RouterDataError(RoutingError):
    """A training data file that cannot be read; the message says where the data is expected."""
