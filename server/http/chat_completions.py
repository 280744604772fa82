"""`POST /v1/chat/completions`: the OpenAI chat door, JSON or SSE."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from switchyard.server.errors import as_switchyard_error
from switchyard.server.http.common import (
    caller_key_id,
    error_response,
    json_response,
    log_unexpected,
    read_body,
    rejected,
    result_headers,
    sse_event,
    stream_headers,
    unless_disconnected,
)
from switchyard.server.http.openai_types import (
    chunk_body,
    completion_body,
    parse_chat_request,
    usage_chunk_body,
)
from switchyard.server.pipeline import ChatStream, Pipeline


async def chat_completions(request: Request) -> Response:
    pipeline: Pipeline = request.app.state.pipeline
    request_id = request.headers.get("x-request-id") or f"req_{uuid.uuid4().hex[:24]}"
    try:
        raw = await read_body(request, pipeline.config.limits.max_body_bytes)
        chat = dataclasses.replace(parse_chat_request(raw, request.headers),
                                   request_id=request_id, api_key_id=caller_key_id(request))
    except Exception as exc:  # noqa: BLE001 - refused before the pipeline: logged here
        return await rejected(request, exc, request_id, "http.chat.completions")
    try:
        if chat.stream:
            stream = await unless_disconnected(request, pipeline.open_stream(chat))
            return StreamingResponse(_sse(stream, chat.include_usage),
                                     media_type="text/event-stream",
                                     headers=stream_headers(stream))
        result = await unless_disconnected(request, pipeline.chat(chat))
    except Exception as exc:  # noqa: BLE001 - translated once, here, into the OpenAI shape
        return error_response(request, as_switchyard_error(exc), request_id)
    return json_response(completion_body(result), 200, result_headers(result))


async def _sse(stream: ChatStream, include_usage: bool) -> AsyncIterator[bytes]:
    first = True
    model = stream.deployment.model
    try:
        async for batch in stream.batches():  # what arrived together goes out in one write
            events = []
            for delta in batch:
                model = delta.model or model
                if delta.content or delta.tool_calls or delta.finish_reason or delta.usage is None:
                    events.append(sse_event(chunk_body(stream.request_id, model, delta, first)))
                    first = False
                if delta.usage is not None and include_usage:
                    events.append(sse_event(usage_chunk_body(stream.request_id, model, delta)))
            if events:
                yield b"".join(events)
    except asyncio.CancelledError:
        await stream.aclose()  # the client went away: stop the upstream stream too
        raise
    except Exception as exc:  # noqa: BLE001 - after the headers, errors go as an SSE event
        log_unexpected(exc)
        yield sse_event(as_switchyard_error(exc).to_openai())
        return
    yield b"data: [DONE]\n\n"
