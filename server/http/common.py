"""Helpers every HTTP door shares: body limits, disconnects, SSE framing, headers, errors."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from switchyard.router.decision import RouteDecision
from switchyard.server.errors import PayloadTooLarge, SwitchyardError, as_switchyard_error
from switchyard.server.pipeline import ChatStream, Pipeline
from switchyard.server.pipeline_types import Attempt, ChatResult
from switchyard.server.traffic.recorder import REJECTED_BODY_BYTES

T = TypeVar("T")
logger = logging.getLogger(__name__)


def caller_key_id(request: Request) -> str | None:
    """The verified API key id the edge guard left on the request (None in local mode)."""
    return request.scope.get("state", {}).get("api_key_id")


async def read_body(request: Request, limit: int) -> bytes:
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


async def rejected(request: Request, exc: Exception, request_id: str, endpoint: str,
                   respond: Callable[[Request, Exception, str], Response] | None = None
                   ) -> Response:
    """A request a door refused before the pipeline: one log row, then the error (in the
    OpenAI shape unless the door gives its own `respond`)."""
    if isinstance(exc, ClientDisconnect):
        raise exc
    pipeline: Pipeline = request.app.state.pipeline
    state = request.state
    await pipeline.recorder.rejected(request_id, endpoint, getattr(state, "body_head", b""),
                                     getattr(state, "body_size", 0), exc,
                                     caller_key_id(request))
    return (respond or error_response)(request, exc, request_id)


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
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


def sse_event(body: dict[str, Any]) -> bytes:
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


def trip_headers(request_id: str, decision: RouteDecision, tokens_before: int,
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
    return trip_headers(result.request_id, result.decision, result.tokens_before,
                        result.tokens_after, result.attempts, upstream)


def stream_headers(stream: ChatStream) -> dict[str, str]:
    headers = trip_headers(stream.request_id, stream.decision, stream.tokens_before,
                           stream.tokens_after, stream.attempts, stream.deployment.public_name)
    headers["cache-control"] = "no-cache"
    return headers


def json_response(body: dict[str, Any], status: int, headers: dict[str, str]) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status_code=status,
                    headers=headers, media_type="application/json")


def log_unexpected(exc: Exception) -> None:
    """A bug, not a bad request or an upstream failure: keep its traceback in the log."""
    if not isinstance(exc, SwitchyardError) and as_switchyard_error(exc).status >= 500:
        logger.error("unexpected error", exc_info=exc)


def error_response(request: Request, exc: Exception, request_id: str | None = None) -> Response:
    log_unexpected(exc)
    err = as_switchyard_error(exc)
    request.state.error = err.message  # for the access line (server/security.py)
    rid = request_id or request.headers.get("x-request-id") or f"req_{uuid.uuid4().hex[:24]}"
    return json_response(err.to_openai(), err.status, {"x-request-id": rid})
