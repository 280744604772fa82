"""Errors of the serving layer, and the one table that maps every error to the wire.

    SwitchyardError                 root (core/errors.py): status, OpenAI type, code, param
    ├── InvalidRequest              400 invalid_request_error   INVALID_ARGUMENT
    ├── Unauthenticated             401 authentication_error    UNAUTHENTICATED
    ├── NotFound                    404 not_found_error         NOT_FOUND
    ├── PayloadTooLarge             413 invalid_request_error   RESOURCE_EXHAUSTED
    ├── LimitExceeded               429 rate_limit_error        RESOURCE_EXHAUSTED
    ├── NotImplementedYet           501 not_implemented         UNIMPLEMENTED
    ├── NotReady                    503 service_unavailable     UNAVAILABLE (warming up)
    ├── ConfigError                 (start-up only: a bad config file or environment override)
    └── UpstreamError               502 upstream_error          UNAVAILABLE
        ├── MissingCredentials      401 authentication_error    FAILED_PRECONDITION
        ├── UpstreamRejected        4xx passed through          INVALID_ARGUMENT
        ├── UpstreamRateLimited     429 rate_limit_error        RESOURCE_EXHAUSTED
        └── UpstreamTimeout         504 timeout                 DEADLINE_EXCEEDED

Component errors (all `core.errors.ParamError`: ChatFormatError, RetrievalError,
RoutingError, CompactionError) are translated once, in `as_switchyard_error`, into this
hierarchy, so the wire and the log name the serving class (InvalidRequest, NotFound).
"""

from __future__ import annotations

from switchyard.core.errors import ParamError, SwitchyardError
from switchyard.retrieval.errors import UnknownNamespace


class InvalidRequest(SwitchyardError):
    status, type, grpc_code = 400, "invalid_request_error", "INVALID_ARGUMENT"


class Unauthenticated(SwitchyardError):
    status, type, grpc_code = 401, "authentication_error", "UNAUTHENTICATED"


class NotFound(SwitchyardError):
    status, type, grpc_code = 404, "not_found_error", "NOT_FOUND"


class PayloadTooLarge(SwitchyardError):
    status, type, grpc_code = 413, "invalid_request_error", "RESOURCE_EXHAUSTED"


class LimitExceeded(SwitchyardError):
    status, type, grpc_code = 429, "rate_limit_error", "RESOURCE_EXHAUSTED"


class NotImplementedYet(SwitchyardError):
    status, type, grpc_code = 501, "not_implemented", "UNIMPLEMENTED"


class NotReady(SwitchyardError):
    """Before the warm-up ends, with `server.before_ready: reject` (server/readiness.py)."""

    status, type, grpc_code = 503, "service_unavailable", "UNAVAILABLE"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, code="warming_up")
        self.retry_after = retry_after


class ConfigError(SwitchyardError):
    status, type, grpc_code = 500, "server_error", "INTERNAL"


class UpstreamError(SwitchyardError):
    status, type, grpc_code = 502, "upstream_error", "UNAVAILABLE"
    retryable = True

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        upstream_status: int | None = None,
    ) -> None:
        super().__init__(message, param=param, code=code)
        self.retry_after = retry_after
        self.upstream_status = upstream_status


class MissingCredentials(UpstreamError):
    status, type, grpc_code = 401, "authentication_error", "FAILED_PRECONDITION"
    retryable = False


class UpstreamRejected(UpstreamError):
    """The provider refused the request itself (400-class): retrying elsewhere won't help."""

    status, type, grpc_code = 400, "invalid_request_error", "INVALID_ARGUMENT"
    retryable = False


class UpstreamRateLimited(UpstreamError):
    status, type, grpc_code = 429, "rate_limit_error", "RESOURCE_EXHAUSTED"


class UpstreamTimeout(UpstreamError):
    status, type, grpc_code = 504, "timeout", "DEADLINE_EXCEEDED"


def as_switchyard_error(exc: BaseException) -> SwitchyardError:
    """Translate component errors at the boundary; unknown errors become a bland 500."""
    if isinstance(exc, UnknownNamespace):
        return NotFound(exc.message, param=exc.param)
    if isinstance(exc, ParamError):  # every component's rejected input
        return InvalidRequest(exc.message, param=exc.param)
    if isinstance(exc, SwitchyardError):
        return exc
    return SwitchyardError("internal error; the request id is in the x-request-id header")
