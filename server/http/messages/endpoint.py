"""The Anthropic Messages API front door (`POST /v1/messages`, `/v1/messages/count_tokens`),
for Claude Code and the anthropic SDKs.

Handlers only translate (translate.py, events.py) and call the pipeline, like every door; errors
go out in Anthropic's shape, `{"type": "error", "error": {"type", "message"}}`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import AsyncIterator

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from switchyard.server.errors import as_switchyard_error
from switchyard.server.http.common import (
    caller_key_id,
    json_response,
    log_unexpected,
    read_body,
    rejected,
    result_headers,
    stream_headers,
    unless_disconnected,
)
from switchyard.server.http.messages.events import MessageEvents
from switchyard.server.http.messages.translate import (
    ENDPOINT,
    count_request,
    to_chat_request,
)
from switchyard.server.http.messages.wire import (
    CountTokensRequest,
    MessagesRequest,
    content_blocks,
    error_body,
    message_body,
    message_id,
)
from switchyard.server.http.openai_types import parse_body
from switchyard.server.pipeline import ChatStream, Pipeline

logger = logging.getLogger(__name__)
DROPPED_TOOLS_HEADER = "x-switchyard-dropped-tools"


async def create_message(request: Request) -> Response:
    """POST /v1/messages (Claude Code adds ?beta=true): translate, run, translate back."""
    pipeline: Pipeline = request.app.state.pipeline
    request_id = _request_id(request)
    try:
        raw = await read_body(request, pipeline.config.limits.max_body_bytes)
        translation = to_chat_request(parse_body(raw, MessagesRequest), request.headers, raw)
        chat = dataclasses.replace(translation.chat, request_id=request_id,
                                   api_key_id=caller_key_id(request))
    except Exception as exc:  # noqa: BLE001 - refused before the pipeline: logged there
        return await rejected(request, exc, request_id, ENDPOINT, respond=error_response)
    extra = _dropped_header(translation.dropped_tools, request_id)
    try:
        if chat.stream:
            stream = await unless_disconnected(request, pipeline.open_stream(chat))
            events = MessageEvents(message_id(), stream.deployment.model, stream.tokens_after)
            return StreamingResponse(_sse(stream, events), media_type="text/event-stream",
                                     headers={**stream_headers(stream), **extra})
        result = await unless_disconnected(request, pipeline.chat(chat))
    except ClientDisconnect:
        raise
    except Exception as exc:  # noqa: BLE001 - translated once, here, into Anthropic's shape
        return error_response(request, exc, request_id)
    body = message_body(message_id(), result.model,
                        content_blocks(result.message, result.reasoning),
                        result.finish_reason, result.usage)
    return json_response(body, 200, {**result_headers(result), **extra})


async def count_tokens(request: Request) -> Response:
    """POST /v1/messages/count_tokens: the prompt's tokens as admission counts them."""
    pipeline: Pipeline = request.app.state.pipeline
    request_id = _request_id(request)
    try:
        raw = await read_body(request, pipeline.config.limits.max_body_bytes)
        messages, tools = count_request(parse_body(raw, CountTokensRequest))
        tokens = await asyncio.to_thread(pipeline.count_tokens, messages, tools)
    except Exception as exc:  # noqa: BLE001 - translated once, here, into Anthropic's shape
        return error_response(request, exc, request_id)
    return json_response({"input_tokens": tokens}, 200, {"x-request-id": request_id})


def error_response(request: Request, exc: Exception, request_id: str) -> Response:
    err = as_switchyard_error(exc)
    log_unexpected(exc)
    request.state.error = err.message  # for the access line (server/security.py)
    return json_response(error_body(err, request_id), err.status, {"x-request-id": request_id})


async def _sse(stream: ChatStream, events: MessageEvents) -> AsyncIterator[bytes]:
    yield b"".join(events.start())
    try:
        async for batch in stream.batches():  # what arrived together goes out in one write
            chunk = b"".join(b"".join(events.on_delta(delta)) for delta in batch)
            if chunk:
                yield chunk
    except asyncio.CancelledError:
        await stream.aclose()  # the client went away: stop the upstream stream too
        raise
    except Exception as exc:  # noqa: BLE001 - after the headers, errors go as an error event
        log_unexpected(exc)
        yield b"".join(events.fail(as_switchyard_error(exc)))
        return
    yield b"".join(events.finish())


def _dropped_header(dropped: tuple[str, ...], request_id: str) -> dict[str, str]:
    if not dropped:
        return {}
    logger.info("request %s: hosted tools left out (no Chat Completions form): %s",
                request_id, ", ".join(dropped))
    return {DROPPED_TOOLS_HEADER: ",".join(dropped)}


def _request_id(request: Request) -> str:
    return request.headers.get("x-request-id") or f"req_{uuid.uuid4().hex[:24]}"
