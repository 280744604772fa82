"""The edge guard of both front doors: request id, API key, per-key concurrency, HTTP metrics.

HTTP: `GuardMiddleware`, an ASGI middleware, so a slot is held until the last byte of a
streamed response is sent or the client goes away. gRPC: `GuardInterceptor` wraps each
Gateway handler the same way. Both use the pipeline's `Authenticator`, `ConcurrencyLimiter`
and `Metrics`, so the limit is per key across both doors.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from switchyard.server.auth import CURRENT_KEY_ID
from switchyard.server.errors import LimitExceeded, SwitchyardError, Unauthenticated
from switchyard.server.http.messages.wire import error_body
from switchyard.server.log_setup import REQUEST_ID

if TYPE_CHECKING:
    import grpc
    from switchyard.server.pipeline import Pipeline

OPEN_PATHS = frozenset({"/healthz", "/metrics", "/openapi.json"})
access_logger = logging.getLogger("switchyard.access")
GATEWAY_PREFIX = "/switchyard.v1.Gateway/"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]


def new_request_id() -> str:
    return f"req_{uuid.uuid4().hex[:24]}"


class GuardMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        pipeline: Pipeline = scope["app"].state.pipeline
        started, status = time.monotonic(), [500]
        request_id = _ensure_request_id(scope)
        token = REQUEST_ID.set(request_id)

        async def send_status(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            if scope["path"] in OPEN_PATHS:
                await self.app(scope, receive, send_status)
                return
            try:
                key_id = pipeline.auth.check(_credentials(scope))
                slot = await pipeline.limiter.acquire(key_id)
            except SwitchyardError as exc:
                _count_rejection(pipeline, exc, "http")
                scope.setdefault("state", {})["error"] = exc.message
                await _send_error(send_status, exc, request_id, scope["path"])
                return
            scope.setdefault("state", {})["api_key_id"] = key_id
            try:
                await self.app(scope, receive, send_status)
            finally:
                await slot.release()
        finally:
            elapsed = time.monotonic() - started
            pipeline.metrics.observe_http(scope["path"], status[0], elapsed)
            if scope["path"] not in OPEN_PATHS:  # probes and scrapes would drown the rest
                _access_line(scope, status[0], elapsed)
            REQUEST_ID.reset(token)


def _access_line(scope: Scope, status: int, elapsed: float) -> None:
    """One JSON line per request, after its last byte: the error's message when refused."""
    state = scope.get("state") or {}
    fields = {"method": scope["method"], "path": scope["path"], "status": status,
              "ms": round(elapsed * 1000, 2)}
    if state.get("api_key_id"):
        fields["api_key_id"] = state["api_key_id"]
    for key in ("error", "dropped_tools"):  # set by the doors (http/common.py, responses/)
        if state.get(key):
            fields[key] = state[key]
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    access_logger.log(level, "%s %s %d", scope["method"], scope["path"], status,
                      extra={"fields": fields})


def _grpc_access_line(method: str, context: Any, key_id: str | None, started: float) -> None:
    """The gRPC door's access line: the RPC, its status code and, when it failed, why."""
    code = context.code()  # None until a handler sets one: the RPC went through
    status = "OK" if code is None else code.name
    fields: dict[str, Any] = {"method": method, "grpc_status": status,
                              "ms": round((time.monotonic() - started) * 1000, 2)}
    if key_id:
        fields["api_key_id"] = key_id
    if status != "OK":
        fields["error"] = context.details()
    level = logging.INFO if status == "OK" else logging.WARNING
    access_logger.log(level, "%s %s", method, status, extra={"fields": fields})


def _ensure_request_id(scope: Scope) -> str:
    """The caller's x-request-id if it is sane, else a new one written into the headers."""
    given = _headers(scope, b"x-request-id")
    if len(given) == 1 and _REQUEST_ID.fullmatch(given[0]):
        return given[0]
    request_id = new_request_id()
    scope["headers"] = [(k, v) for k, v in scope["headers"] if k.lower() != b"x-request-id"]
    scope["headers"].append((b"x-request-id", request_id.encode()))
    return request_id


def _credentials(scope: Scope) -> list[str]:
    """Authorization values; Anthropic clients send `x-api-key: KEY` instead."""
    return (_headers(scope, b"authorization")
            or [f"Bearer {key}" for key in _headers(scope, b"x-api-key")])


def _headers(scope: Scope, name: bytes) -> list[str]:
    return [v.decode("latin-1") for k, v in scope["headers"] if k.lower() == name]


def _count_rejection(pipeline: Pipeline, exc: SwitchyardError, door: str) -> None:
    if isinstance(exc, Unauthenticated):
        pipeline.metrics.auth_failures.labels(door).inc()
    elif isinstance(exc, LimitExceeded):
        pipeline.metrics.limited.labels(exc.code or "limit").inc()


async def _send_error(send: Any, exc: SwitchyardError, request_id: str, path: str) -> None:
    shape = error_body(exc, request_id) if path.startswith("/v1/messages") else exc.to_openai()
    body = json.dumps(shape, separators=(",", ":")).encode()
    headers = [(b"content-type", b"application/json"), (b"x-request-id", request_id.encode()),
               (b"content-length", str(len(body)).encode())]
    if isinstance(exc, Unauthenticated):
        headers.append((b"www-authenticate", b'Bearer realm="switchyard"'))
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def guard_interceptor(pipeline: Pipeline) -> grpc.aio.ServerInterceptor:
    """The gRPC side: authenticate from `authorization` metadata, hold a concurrency slot."""
    import grpc

    class GuardInterceptor(grpc.aio.ServerInterceptor):
        async def intercept_service(self, continuation: Any, details: Any) -> Any:
            handler = await continuation(details)
            if handler is None or not details.method.startswith(GATEWAY_PREFIX):
                return handler
            metadata = details.invocation_metadata or ()
            try:
                key_id = pipeline.auth.check(
                    str(v) for k, v in metadata if k.lower() == "authorization")
            except SwitchyardError as exc:
                _count_rejection(pipeline, exc, "grpc")
                return _refusing(handler, exc)
            return _guarded(handler, pipeline, key_id, details.method)

    return GuardInterceptor()


def _refusing(handler: Any, exc: SwitchyardError) -> Any:
    import grpc

    code = grpc.StatusCode[exc.grpc_code]

    async def unary(request: Any, context: Any) -> Any:
        await context.abort(code, exc.message)

    async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
        await context.abort(code, exc.message)
        yield  # pragma: no cover - abort raises; this makes it an async generator

    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(stream)
    return grpc.unary_unary_rpc_method_handler(unary)


def _guarded(handler: Any, pipeline: Pipeline, key_id: str | None, method: str) -> Any:
    import grpc

    async def acquire(context: Any) -> Any:
        try:
            return await pipeline.limiter.acquire(key_id)
        except LimitExceeded as exc:
            _count_rejection(pipeline, exc, "grpc")
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, exc.message)

    if handler.unary_stream is not None:
        inner_stream = handler.unary_stream

        async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
            started = time.monotonic()
            slot = await acquire(context)
            CURRENT_KEY_ID.set(key_id)
            try:
                async for item in inner_stream(request, context):
                    yield item
            finally:
                await slot.release()
                _grpc_access_line(method, context, key_id, started)

        return handler._replace(unary_stream=stream)
    inner = handler.unary_unary

    async def unary(request: Any, context: Any) -> Any:
        started = time.monotonic()
        slot = await acquire(context)
        CURRENT_KEY_ID.set(key_id)
        try:
            return await inner(request, context)
        finally:
            await slot.release()
            _grpc_access_line(method, context, key_id, started)

    return handler._replace(unary_unary=unary)
