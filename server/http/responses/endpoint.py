"""The OpenAI Responses API front door (`POST /v1/responses`), for Codex CLI and friends.

Translate the request (translate.py), run the pipeline, translate the result or stream back
(translate.py, events.py). `previous_response_id` conversations live in `ResponseStore`.
Namespace and hosted tools are planned in tools.py (flattened, or left out and named in the
`x-switchyard-dropped-tools` header); native.py passes hosted tools to a deployment that
runs them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from switchyard.server.errors import UpstreamError, as_switchyard_error
from switchyard.server.http.common import (
    caller_key_id,
    error_response,
    json_response,
    read_body,
    rejected,
    result_headers,
    stream_headers,
    unless_disconnected,
)
from switchyard.server.http.responses import native
from switchyard.server.http.responses.events import ResponseEvents, failed_stream
from switchyard.server.http.responses.store import ResponseStore, StoredResponse
from switchyard.server.http.responses.tools import ToolPlan
from switchyard.server.http.responses.translate import (
    ENDPOINT,
    output_items,
    response_body,
    response_status,
    to_chat_request,
)
from switchyard.server.http.responses.wire import Turn, input_items, parse_responses_request
from switchyard.server.pipeline import ChatStream, Pipeline
from switchyard.server.pipeline_types import ChatRequest
from switchyard.server.stores.pg_stores import PgResponseStore

DROPPED_HEADER = "x-switchyard-dropped-tools"


async def create_response(request: Request) -> Response:
    """POST /v1/responses: translate, run the pipeline, translate back."""
    pipeline: Pipeline = request.app.state.pipeline
    request_id = request.headers.get("x-request-id") or f"req_{uuid.uuid4().hex[:24]}"
    try:
        raw = await read_body(request, pipeline.config.limits.max_body_bytes)
        body = parse_responses_request(raw)
        store = _store(request)
        history = (await asyncio.to_thread(store.conversation, body.previous_response_id)
                   if body.previous_response_id else [])
        turn = Turn(body, input_items(body))
        chat = to_chat_request(body, history, turn.input_items, request.headers, raw,
                               turn.plan)
        chat = dataclasses.replace(chat, request_id=request_id,
                                   api_key_id=caller_key_id(request))
    except Exception as exc:  # noqa: BLE001 - refused before the pipeline: logged there
        return await rejected(request, exc, request_id, ENDPOINT)
    if native.wants_native(pipeline, turn.plan):
        return await native.native_response(request, pipeline, chat, turn, raw)
    if turn.plan.dropped:  # named in the header and in the access line
        request.state.dropped_tools = ", ".join(turn.plan.dropped)
    try:
        if body.stream:
            return await _open_stream(request, pipeline, chat, turn, store)
        result = await unless_disconnected(request, pipeline.chat(chat))
    except ClientDisconnect:
        raise
    except Exception as exc:  # noqa: BLE001 - translated once, into the OpenAI error shape
        return error_response(request, as_switchyard_error(exc), request_id)
    output = output_items(result.message, turn.plan)
    out = response_body(turn, model=result.model, status=response_status(result.finish_reason),
                        output=output, usage=result.usage, finish_reason=result.finish_reason)
    await _save(store, turn, out)
    return json_response(out, 200, {**result_headers(result), **_dropped_headers(turn.plan)})


def _dropped_headers(plan: ToolPlan) -> dict[str, str]:
    return {DROPPED_HEADER: ", ".join(plan.dropped)} if plan.dropped else {}


async def _open_stream(request: Request, pipeline: Pipeline, chat: ChatRequest, turn: Turn,
                       store: ResponseStore) -> Response:
    try:
        stream = await unless_disconnected(request, pipeline.open_stream(chat))
    except UpstreamError as exc:  # the model side failed: a streamed response.failed
        return failed_stream(ResponseEvents(turn, chat.model), exc, chat.request_id,
                             _dropped_headers(turn.plan))
    events = ResponseEvents(turn, stream.deployment.model)
    return StreamingResponse(_sse(stream, events, store), media_type="text/event-stream",
                             headers={**stream_headers(stream), **_dropped_headers(turn.plan)})


async def _sse(stream: ChatStream, events: ResponseEvents,
               store: ResponseStore) -> AsyncIterator[bytes]:
    # Events of one delta go out in one write: fewer small TCP sends than one per event.
    yield b"".join(events.start())
    try:
        async for delta in stream:
            chunk = b"".join(events.on_delta(delta))
            if chunk:
                yield chunk
        closing, final = events.finish()
        await _save(store, events.turn, final)
    except asyncio.CancelledError:
        await stream.aclose()  # the client went away: stop the upstream stream too
        raise
    except Exception as exc:  # noqa: BLE001 - after the headers, errors are response.failed
        yield b"".join(events.fail(as_switchyard_error(exc)))
        return
    yield b"".join(closing)


def _store(request: Request) -> ResponseStore:
    """One store per app, opened on first use under the pipeline's data dir."""
    state = request.app.state
    store = getattr(state, "responses_store", None)
    if store is None:
        pipeline: Pipeline = state.pipeline
        store = state.responses_store = (
            PgResponseStore(pipeline.database) if pipeline.database is not None
            else ResponseStore.for_data_dir(pipeline.config.server.data_dir))
    return store


async def _save(store: ResponseStore, turn: Turn, response: dict[str, Any]) -> None:
    if not turn.body.store:
        return
    stored = StoredResponse(turn.id, response["model"], response["status"], turn.input_items,
                            response["output"], response, turn.body.previous_response_id,
                            float(turn.created_at))
    await asyncio.to_thread(store.put, stored)
