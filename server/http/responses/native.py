"""Responses requests with hosted tools, passed through to a deployment that runs them.

A Chat Completions upstream cannot run `web_search` or `file_search`; OpenAI and Azure can.
When the config marks a deployment `responses_api: true`, a request that offers such tools
goes to that deployment's /responses endpoint as the client wrote it, after the pipeline
admitted, compacted, recalled and routed it: the routed model and effort replace the
client's, and a history that compaction changed (or one continued from our own response
store) is written back as Responses input items. The answer's bytes reach the client as the
deployment sent them. Without such a deployment, the tools are left out instead
(x-switchyard-dropped-tools).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from switchyard.core.messages import Attachment, Message
from switchyard.server.errors import UpstreamError
from switchyard.server.http.common import error_response, trip_headers, unless_disconnected
from switchyard.server.http.responses.events import ResponseEvents, failed_stream
from switchyard.server.http.responses.tools import ToolPlan
from switchyard.server.http.responses.translate import call_fields
from switchyard.server.http.responses.wire import Turn
from switchyard.server.native import NativeStream
from switchyard.server.pipeline import Pipeline
from switchyard.server.pipeline_types import ChatRequest

NATIVE_HEADER = "x-switchyard-upstream-api"


def wants_native(pipeline: Pipeline, plan: ToolPlan) -> bool:
    """Hosted tools offered, and a deployment configured to run them."""
    return bool(plan.dropped) and any(d.responses_api for d in pipeline.config.models.all())


async def native_response(request: Request, pipeline: Pipeline, chat: ChatRequest,
                          turn: Turn, raw: bytes) -> Response:
    client_body = json.loads(raw)

    def body(messages: list[Message] | None) -> dict[str, Any]:
        out = dict(client_body)
        if messages is None and not turn.body.previous_response_id:
            return out
        # The deployment knows neither our stored responses nor the dropped history.
        out["input"] = messages_to_items(messages or chat.messages, turn.plan)
        out.pop("instructions", None)  # the first system message of `messages` holds them
        out.pop("previous_response_id", None)
        return out

    try:
        stream = await unless_disconnected(request, pipeline.open_native(chat, body))
    except UpstreamError as exc:
        if turn.body.stream:  # a streamed response.failed, as Codex expects
            return failed_stream(ResponseEvents(turn, chat.model), exc, chat.request_id)
        return error_response(request, exc, chat.request_id)
    headers = _headers(stream)
    if turn.body.stream:
        return StreamingResponse(_chunks(stream), media_type="text/event-stream",
                                 headers={**headers, "cache-control": "no-cache"})
    content = b"".join([chunk async for chunk in stream.chunks()])
    return Response(content, media_type="application/json", headers=headers)


async def _chunks(stream: NativeStream) -> Any:
    try:
        async for chunk in stream.chunks():
            yield chunk
    except BaseException:
        await stream.aclose()
        raise


def _headers(stream: NativeStream) -> dict[str, str]:
    headers = trip_headers(stream.request_id, stream.decision, stream.tokens_before,
                           stream.tokens_after, stream.attempts, stream.deployment.public_name)
    headers[NATIVE_HEADER] = "responses"
    return headers


def messages_to_items(messages: list[Message], plan: ToolPlan) -> list[dict[str, Any]]:
    """Chat messages -> Responses input items (the inverse of `items_to_messages`)."""
    items: list[dict[str, Any]] = []
    custom_calls: set[str | None] = set()
    for m in messages:
        if m.role == "tool":
            kind = "custom_tool_call" if m.tool_call_id in custom_calls else "function_call"
            items.append({"type": f"{kind}_output", "call_id": m.tool_call_id,
                          "output": m.content or ""})
            continue
        if m.content or m.attachments or not m.tool_calls:
            items.append({"type": "message", "role": m.role, "content": _content(m)})
        items += [call_fields(c, plan) for c in m.tool_calls]
        custom_calls.update(c.id for c in m.tool_calls if c.name in plan.custom)
    return items


def _content(m: Message) -> list[dict[str, Any]]:
    kind = "output_text" if m.role == "assistant" else "input_text"
    parts = [{"type": kind, "text": m.content}] if m.content else []
    return parts + [_attachment(a) for a in m.attachments]


def _attachment(a: Attachment) -> dict[str, Any]:
    payload = json.loads(a.payload_json)
    if a.type == "image_url":
        image = payload.get("image_url") or {}
        return {"type": "input_image", "image_url": image.get("url"),
                "detail": image.get("detail") or "auto"}
    return {"type": "input_file", **(payload.get("file") or {})}
