"""The OpenAI-compatible HTTP front door: one short handler per endpoint.

Handlers parse, call the pipeline, and turn its result into a response. They never route,
compact, retrieve or write the log themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from switchyard.router.decision import RouteDecision
from switchyard.server import feedback_api, responses_api
from switchyard.server.chat import Attempt, ChatResult
from switchyard.server.config import AUTO_MODEL, Config
from switchyard.server.errors import PayloadTooLarge, SwitchyardError, as_switchyard_error
from switchyard.server.openai_types import (
    chunk_body,
    completion_body,
    parse_chat_request,
    usage_chunk_body,
)
from switchyard.server.pipeline import REJECTED_BODY_BYTES, ChatStream, Pipeline
from switchyard.server.security import GuardMiddleware

T = TypeVar("T")
logger = logging.getLogger(__name__)


def create_app(config: Config, pipeline: Pipeline | None = None) -> Starlette:
    """The ASGI app. Without a pipeline, one is built from `config` at start-up."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        owned = pipeline is None
        app.state.pipeline = pipeline or Pipeline.from_config(config)
        try:
            yield
        finally:
            if owned:
                await app.state.pipeline.aclose()

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/responses", responses_api.create_response, methods=["POST"]),
            Route("/v1/feedback", feedback_api.create_feedback, methods=["POST"]),
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            Route("/openapi.json", openapi_schema, methods=["GET"]),
        ],
        middleware=[Middleware(GuardMiddleware)],  # request id, API key, per-key limit
        exception_handlers={SwitchyardError: _error_response, HTTPException: _http_error,
                            ClientDisconnect: _client_gone},
        lifespan=lifespan,
    )
    app.state.config = config
    if pipeline is not None:
        app.state.pipeline = pipeline
    return app


async def chat_completions(request: Request) -> Response:
    pipeline: Pipeline = request.app.state.pipeline
    request_id = request.headers.get("x-request-id") or f"req_{uuid.uuid4().hex[:24]}"
    try:
        raw = await _read_body(request, pipeline.config.limits.max_body_bytes)
        chat = dataclasses.replace(parse_chat_request(raw, request.headers),
                                   request_id=request_id, api_key_id=caller_key_id(request))
    except Exception as exc:  # noqa: BLE001 - refused before the pipeline: logged here
        return await rejected(request, exc, request_id, "http.chat.completions")
    try:
        if chat.stream:
            stream = await _unless_disconnected(request, pipeline.open_stream(chat))
            return StreamingResponse(_sse(stream, chat.include_usage),
                                     media_type="text/event-stream",
                                     headers=_stream_headers(stream))
        result = await _unless_disconnected(request, pipeline.chat(chat))
    except Exception as exc:  # noqa: BLE001 - translated once, here, into the OpenAI shape
        return _error_response(request, as_switchyard_error(exc), request_id)
    return _json(completion_body(result), 200, result_headers(result))


async def list_models(request: Request) -> Response:
    config: Config = request.app.state.config
    ids = [AUTO_MODEL, "thinking", "non_thinking",
           *(d.public_name for d in config.models.all())]
    data = [{"id": i, "object": "model", "created": 0, "owned_by": "switchyard"} for i in ids]
    return _json({"object": "list", "data": data}, 200, {})


async def healthz(request: Request) -> Response:
    pipeline: Pipeline = request.app.state.pipeline
    return _json({"status": "ok", "router": type(pipeline.router).__name__}, 200, {})


async def metrics(request: Request) -> Response:
    from switchyard.server.metrics import CONTENT_TYPE

    pipeline: Pipeline = request.app.state.pipeline
    return Response(pipeline.metrics.render(), media_type=CONTENT_TYPE)


async def openapi_schema(request: Request) -> Response:
    from switchyard.server.openapi import openapi_schema as build

    return _json(build(), 200, {})


# -- helpers -----------------------------------------------------------------------------
def caller_key_id(request: Request) -> str | None:
    """The verified API key id the edge guard left on the request (None in local mode)."""
    return request.scope.get("state", {}).get("api_key_id")


async def _read_body(request: Request, limit: int) -> bytes:
    """The whole body, up to `limit` bytes. What was read stays on `request.state` (as
    body_head and body_size) so a refused request can be logged with its first bytes."""
    declared = request.headers.get("content-length")
    request.state.body_head = b""
    request.state.body_size = int(declared) if declared and declared.isdigit() else 0
    if declared and declared.isdigit() and int(declared) > limit:
        request.state.body_head = await _head(request, REJECTED_BODY_BYTES)
        raise PayloadTooLarge(f"the body has {declared} bytes, over the limit "
                              f"max_body_bytes={limit}", code="max_body_bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        chunks.append(chunk)
        if size > limit:
            request.state.body_head, request.state.body_size = b"".join(chunks), size
            raise PayloadTooLarge(f"the body is over the limit max_body_bytes={limit}",
                                  code="max_body_bytes")
    body = b"".join(chunks)
    request.state.body_head, request.state.body_size = body, size
    return body


async def _head(request: Request, size: int) -> bytes:
    """The first `size` bytes of a body we refuse, for the log (the rest is never read)."""
    chunks, got = [], 0
    async for chunk in request.stream():
        chunks.append(chunk)
        got += len(chunk)
        if got >= size:
            break
    return b"".join(chunks)[:size]


async def rejected(request: Request, exc: Exception, request_id: str,
                   endpoint: str) -> Response:
    """A request a door refused before the pipeline: one log row, then the error."""
    if isinstance(exc, ClientDisconnect):
        raise exc
    pipeline: Pipeline = request.app.state.pipeline
    state = request.state
    await pipeline.log_rejected(request_id, endpoint, getattr(state, "body_head", b""),
                                getattr(state, "body_size", 0), exc, caller_key_id(request))
    return _error_response(request, exc, request_id)


async def _unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Run `work`, cancelling it (and so the upstream call) if the client goes away."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_wait_disconnect(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        raise ClientDisconnect()
    return task.result()


async def _wait_disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def _sse(stream: ChatStream, include_usage: bool) -> AsyncIterator[bytes]:
    first = True
    model = stream.deployment.model
    try:
        async for batch in stream.batches():  # what arrived together goes out in one write
            events = []
            for delta in batch:
                model = delta.model or model
                if delta.content or delta.tool_calls or delta.finish_reason or delta.usage is None:
                    events.append(_event(chunk_body(stream.request_id, model, delta, first)))
                    first = False
                if delta.usage is not None and include_usage:
                    events.append(_event(usage_chunk_body(stream.request_id, model, delta)))
            if events:
                yield b"".join(events)
    except asyncio.CancelledError:
        await stream.aclose()  # the client went away: stop the upstream stream too
        raise
    except Exception as exc:  # noqa: BLE001 - after the headers, errors go as an SSE event
        _log_unexpected(exc)
        yield _event(as_switchyard_error(exc).to_openai())
        return
    yield b"data: [DONE]\n\n"


def _event(body: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


def _decision_headers(request_id: str, d: RouteDecision) -> dict[str, str]:
    return {
        "x-request-id": request_id,
        "x-switchyard-model": d.model,
        "x-switchyard-thinking": "true" if d.thinking else "false",
        "x-switchyard-reasoning-effort": d.reasoning_effort or "none",
        "x-switchyard-p-hard": "" if d.p_hard is None else f"{d.p_hard:.4f}",
        "x-switchyard-policy-version": d.policy_version,
        "x-switchyard-overridden": "true" if d.overridden else "false",
    }


def _trip_headers(request_id: str, decision: RouteDecision, tokens_before: int,
                  tokens_after: int, attempts: Sequence[Attempt],
                  upstream: str) -> dict[str, str]:
    headers = _decision_headers(request_id, decision)
    headers.update({
        "x-switchyard-tokens-before": str(tokens_before),
        "x-switchyard-tokens-after": str(tokens_after),
        "x-switchyard-attempts": str(len(attempts)),
        "x-switchyard-upstream": upstream,
    })
    # Only what was sent: OpenAI-style deployments take an effort, never a token budget.
    budget = attempts[-1].budget_tokens if attempts else None
    if budget is not None:
        headers["x-switchyard-budget-tokens"] = str(budget)
    return headers


def result_headers(result: ChatResult) -> dict[str, str]:
    """Every header that tells a finished request's decision, compaction and attempts."""
    upstream = result.attempts[-1].deployment if result.attempts else ""
    return _trip_headers(result.request_id, result.decision, result.tokens_before,
                         result.tokens_after, result.attempts, upstream)


def _stream_headers(stream: ChatStream) -> dict[str, str]:
    headers = _trip_headers(stream.request_id, stream.decision, stream.tokens_before,
                            stream.tokens_after, stream.attempts,
                            stream.deployment.public_name)
    headers["cache-control"] = "no-cache"
    return headers


def _json(body: dict[str, Any], status: int, headers: dict[str, str]) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status_code=status,
                    headers=headers, media_type="application/json")


def _log_unexpected(exc: Exception) -> None:
    """A bug, not a bad request or an upstream failure: keep its traceback in the log."""
    if not isinstance(exc, SwitchyardError) and as_switchyard_error(exc).status >= 500:
        logger.error("unexpected error", exc_info=exc)


def _error_response(request: Request, exc: Exception, request_id: str | None = None) -> Response:
    _log_unexpected(exc)
    err = as_switchyard_error(exc)
    request.state.error = err.message  # for the access line (server/security.py)
    rid = request_id or request.headers.get("x-request-id") or f"req_{uuid.uuid4().hex[:24]}"
    return _json(err.to_openai(), err.status, {"x-request-id": rid})


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
    body = {"error": {"message": f"{request.method} {request.url.path}: {exc.detail}",
                      "type": kind, "param": None, "code": None}}
    return JSONResponse(body, status_code=exc.status_code)


async def _client_gone(request: Request, exc: Exception) -> Response:
    return Response(status_code=499)
