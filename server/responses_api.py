"""The OpenAI Responses API front door (`POST /v1/responses`), for Codex CLI and friends.

The pipeline speaks Chat Completions, so this module translates: Responses input items
(messages, `function_call`, `function_call_output`) become chat `Message`s, flat function
tools become `ToolDefinition`s, and the pipeline's result or stream becomes a Responses object
or its SSE event sequence. `previous_response_id` conversations live in `ResponseStore`.
`reasoning` items are accepted and dropped: a Chat Completions upstream cannot take them back.
Namespace and hosted tools are planned in `responses_tools` (flattened, or left out and named
in the `x-switchyard-dropped-tools` header).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from switchyard.retrieval.chat import (
    Attachment,
    Message,
    ToolCall,
    ToolDefinition,
    validate_tool_pairing,
)
from switchyard.retrieval.errors import ChatFormatError
from switchyard.router.decision import RouteOverrides
from switchyard.server import http_proxy  # a module import: http_proxy imports this module too
from switchyard.server.chat import ChatRequest, SamplingParams, StreamDelta, Usage
from switchyard.server.errors import (
    InvalidRequest,
    LimitExceeded,
    SwitchyardError,
    UpstreamError,
    UpstreamRateLimited,
    as_switchyard_error,
)
from switchyard.server.openai_types import OpenAIBaseModel, _int_header, _overrides, parse_body
from switchyard.server.pipeline import ChatStream, Pipeline
from switchyard.server.responses_store import ResponseStore, StoredResponse
from switchyard.server.responses_tools import ToolPlan, plan_tools

logger = logging.getLogger(__name__)
ENDPOINT = "http.responses"
DROPPED_HEADER = "x-switchyard-dropped-tools"
SKIPPED_ITEMS = ("reasoning",)  # accepted from Codex-style clients, not sent upstream
TEXT_PARTS = ("input_text", "output_text", "text")


# -- wire types ----------------------------------------------------------------------------
class ReasoningParams(OpenAIBaseModel):
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    summary: str | None = None


class ResponsesRequest(OpenAIBaseModel):
    # Fields in the order of the OpenAI reference.
    background: bool | None = None
    include: list[str] | None = None
    input: str | list[Any] | None = None
    instructions: str | None = None
    max_output_tokens: int | None = Field(None, ge=1)
    metadata: dict[str, str] | None = None
    model: str
    parallel_tool_calls: bool | None = None
    previous_response_id: str | None = None
    reasoning: ReasoningParams | None = None
    store: bool = True
    stream: bool = False
    temperature: float | None = Field(None, ge=0, le=2)
    text: dict[str, Any] | None = None
    tool_choice: str | dict[str, Any] | None = None
    tools: list[Any] | None = None
    top_p: float | None = Field(None, ge=0, le=1)
    truncation: str | None = None
    user: str | None = None


@dataclass(slots=True)
class Turn:
    """One Responses call: what it was asked, and what to echo back and store."""

    body: ResponsesRequest
    input_items: list[dict[str, Any]]
    id: str = field(default_factory=lambda: f"resp_{uuid.uuid4().hex}")
    created_at: int = field(default_factory=lambda: int(time.time()))
    plan: ToolPlan = field(init=False)

    def __post_init__(self) -> None:
        self.plan = plan_tools(self.body.tools)


# -- request translation -------------------------------------------------------------------
def parse_responses_request(raw: bytes) -> ResponsesRequest:
    body = parse_body(raw, ResponsesRequest)
    if body.input is None or body.input == "" or body.input == []:
        raise InvalidRequest("input is required: a string or a non-empty list of input items",
                             param="input")
    if body.background:
        raise InvalidRequest("background responses are not supported by Switchyard; "
                             "omit background or set it to false", param="background")
    return body


def input_items(body: ResponsesRequest) -> list[dict[str, Any]]:
    """The caller's input as a list of item dicts (a plain string is one user message)."""
    if isinstance(body.input, str):
        return [{"type": "message", "role": "user", "content": body.input}]
    items = []
    for i, item in enumerate(body.input or []):
        if not isinstance(item, dict):
            raise InvalidRequest(f"input[{i}] must be an object", param=f"input[{i}]")
        items.append(item)
    return items


def to_chat_request(body: ResponsesRequest, history: list[dict[str, Any]],
                    items: list[dict[str, Any]], headers: Mapping[str, str],
                    raw: bytes, plan: ToolPlan | None = None) -> ChatRequest:
    plan = plan or plan_tools(body.tools)
    messages = [Message("system", body.instructions)] if body.instructions else []
    messages += items_to_messages(history + items, offset=len(history), plan=plan)
    return ChatRequest(
        messages=messages, model=body.model, tools=plan.tools,
        params=_sampling(body, plan), overrides=_effort_overrides(body, headers), stream=body.stream,
        include_usage=True, session_id=headers.get("x-switchyard-session-id", ""),
        compact_budget=_int_header(headers, "x-switchyard-compact-budget"),
        endpoint=ENDPOINT, raw_json=raw.decode("utf-8", errors="replace"))


def items_to_messages(items: list[dict[str, Any]], offset: int = 0,
                      plan: ToolPlan | None = None) -> list[Message]:
    """Responses items -> chat messages. Consecutive calls join one assistant message.

    Items before `offset` came from the store (errors there name previous_response_id).
    A namespaced call takes the flat name its namespace's functions have upstream.
    """
    plan = plan or ToolPlan()
    messages: list[Message] = []
    open_calls: dict[str, str] = {}  # call_id -> where, for calls still awaiting output
    for i, item in enumerate(items):
        where = f"input[{i - offset}]" if i >= offset else "previous_response_id"
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "function_call_output":
            messages.append(_tool_result(item, where, open_calls))
            continue
        if kind in SKIPPED_ITEMS:
            continue
        if kind == "function_call":
            call = _call(item, where, plan)
            last = messages[-1] if messages else None
            if last is not None and last.role == "assistant":  # parallel calls: one turn
                messages[-1] = dataclasses.replace(last, tool_calls=(*last.tool_calls, call))
            else:
                _raise_if_open(open_calls)
                messages.append(Message("assistant", None, tool_calls=(call,)))
            open_calls[call.id] = where
            continue
        if kind != "message":
            raise InvalidRequest(
                f"{where}.type {kind!r} is not supported; Switchyard accepts message, "
                "function_call, function_call_output and reasoning items", param=f"{where}.type")
        _raise_if_open(open_calls)
        messages.append(_message(item, where))
    _raise_if_open(open_calls)
    try:
        validate_tool_pairing(messages)
    except ChatFormatError as exc:  # our own checks above should make this unreachable
        raise InvalidRequest(exc.message, param="input") from None
    if not messages:
        raise InvalidRequest("input has no message or function call items", param="input")
    return messages


def _message(item: dict[str, Any], where: str) -> Message:
    role = item.get("role")
    if role not in ("user", "assistant", "system", "developer"):
        raise InvalidRequest(f"{where}.role must be user, assistant, system or developer; "
                             f"got {role!r}", param=f"{where}.role")
    content = item.get("content")
    if isinstance(content, str):
        return Message(role, content)
    if not isinstance(content, list):
        raise InvalidRequest(f"{where}.content must be a string or a list of content parts",
                             param=f"{where}.content")
    texts: list[str] = []
    attachments: list[Attachment] = []
    for j, part in enumerate(content):
        ptype = part.get("type") if isinstance(part, dict) else None
        here = f"{where}.content[{j}]"
        if ptype in TEXT_PARTS and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif ptype == "refusal" and isinstance(part.get("refusal"), str):
            texts.append(part["refusal"])
        elif ptype == "input_image" and isinstance(part.get("image_url"), str):
            url = {"url": part["image_url"], "detail": part.get("detail") or "auto"}
            attachments.append(Attachment("image_url", json.dumps({"image_url": url})))
        elif ptype == "input_file" and (part.get("file_data") or part.get("file_id")):
            keys = ("file_data", "file_id", "filename")
            file = {k: part[k] for k in keys if part.get(k)}
            attachments.append(Attachment("file", json.dumps({"file": file})))
        else:
            raise InvalidRequest(
                f"{here} of type {ptype!r} is not supported (or misses its payload); use "
                "input_text, output_text, refusal, input_image with image_url, or input_file "
                "with file_data/file_id", param=here)
    return Message(role, "\n".join(texts) if texts else None, attachments=tuple(attachments))


def _call(item: dict[str, Any], where: str, plan: ToolPlan) -> ToolCall:
    call_id, name, args = item.get("call_id"), item.get("name"), item.get("arguments", "")
    if not isinstance(call_id, str) or not call_id or not isinstance(name, str) or not name:
        raise InvalidRequest(f"{where}: a function_call needs call_id and name strings",
                             param=f"{where}.call_id")
    namespace = item.get("namespace")
    return ToolCall(call_id, plan.flat(namespace if isinstance(namespace, str) else None, name),
                    args if isinstance(args, str) else json.dumps(args))


def _tool_result(item: dict[str, Any], where: str, open_calls: dict[str, str]) -> Message:
    call_id = item.get("call_id")
    if not isinstance(call_id, str) or call_id not in open_calls:
        raise InvalidRequest(
            f"{where} is a function_call_output for call_id {call_id!r}, but no function_call "
            "with that call_id comes before it (since the last message)",
            param=f"{where}.call_id")
    del open_calls[call_id]
    output = item.get("output")
    if isinstance(output, list):
        texts = [p.get("text", "") for p in output
                 if isinstance(p, dict) and p.get("type") in TEXT_PARTS]
        if len(texts) != len(output):
            raise InvalidRequest(f"{where}.output: only text parts can go to a Chat Completions "
                                 "upstream", param=f"{where}.output")
        output = "\n".join(texts)
    if not isinstance(output, str):
        raise InvalidRequest(f"{where}.output must be a string or a list of input_text parts",
                             param=f"{where}.output")
    return Message("tool", output, tool_call_id=call_id)


def _raise_if_open(open_calls: dict[str, str]) -> None:
    if open_calls:
        call_id, where = next(iter(open_calls.items()))
        raise InvalidRequest(f"No tool output found for function call {call_id!r} ({where}); "
                             "send a function_call_output item for it", param="input")


def _sampling(body: ResponsesRequest, plan: ToolPlan) -> SamplingParams:
    return SamplingParams(
        temperature=body.temperature, top_p=body.top_p, max_tokens=body.max_output_tokens,
        tool_choice_json=_tool_choice(body.tool_choice, plan), user=body.user,
        parallel_tool_calls=body.parallel_tool_calls,
        response_format_json=_response_format(body.text))


def _tool_choice(choice: str | dict[str, Any] | None, plan: ToolPlan) -> str | None:
    if choice is None:
        return None
    if isinstance(choice, str):
        if choice not in ("auto", "none", "required"):
            raise InvalidRequest("tool_choice must be auto, none, required or a function",
                                 param="tool_choice")
        return json.dumps(choice)
    if choice.get("type") == "function" and isinstance(choice.get("name"), str):
        namespace = choice.get("namespace")
        name = plan.flat(namespace if isinstance(namespace, str) else None, choice["name"])
        return json.dumps({"type": "function", "function": {"name": name}})
    if choice.get("type") in plan.dropped:  # a tool we left out: let the model choose
        return None
    raise InvalidRequest(f"tool_choice of type {choice.get('type')!r} is not supported; use "
                         "auto, none, required or {type: function, name}", param="tool_choice")


def _response_format(text: dict[str, Any] | None) -> str | None:
    fmt = (text or {}).get("format")
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text"):
        return None
    if fmt["type"] == "json_object":
        return json.dumps({"type": "json_object"})
    if fmt["type"] == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        return json.dumps({"type": "json_schema", "json_schema": schema})
    raise InvalidRequest(f"text.format.type {fmt['type']!r} is not supported",
                         param="text.format")


def _effort_overrides(body: ResponsesRequest, headers: Mapping[str, str]) -> RouteOverrides:
    """A caller's own reasoning.effort is an override; "none" means the non-thinking group."""
    effort = body.reasoning.effort if body.reasoning else None
    overrides = _overrides(headers, {"xhigh": "high", "none": None}.get(effort or "", effort))
    if effort == "none" and overrides.thinking is None and overrides.reasoning_effort is None:
        overrides = dataclasses.replace(overrides, thinking=False)
    return overrides


# -- response bodies -----------------------------------------------------------------------
def usage_body(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens, "cache_write_tokens": 0},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


def message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    return {"id": item_id, "type": "message", "status": status, "role": "assistant",
            "content": content if status != "in_progress" else []}


def call_item(item_id: str, call: ToolCall, plan: ToolPlan,
              status: str = "completed") -> dict[str, Any]:
    return {"id": item_id, "type": "function_call", "status": status,
            **call_fields(call, plan)}


def call_fields(call: ToolCall, plan: ToolPlan) -> dict[str, Any]:
    """A function_call's own fields; a flattened call goes back under its namespace."""
    namespace, name = plan.client_call(call.name)
    fields = {"call_id": call.id, "name": name, "arguments": call.arguments}
    if namespace is not None:
        fields["namespace"] = namespace
    return fields


def output_items(message: Message, plan: ToolPlan) -> list[dict[str, Any]]:
    items = [message_item(_item_id("msg"), message.content)] if message.content else []
    items += [call_item(_item_id("fc"), c, plan) for c in message.tool_calls]
    return items


def response_body(turn: Turn, *, model: str, status: str, output: list[dict[str, Any]],
                  usage: Usage | None = None, error: SwitchyardError | None = None,
                  finish_reason: str | None = None) -> dict[str, Any]:
    body = turn.body
    incomplete = {"length": "max_output_tokens", "content_filter": "content_filter"}
    return {
        "id": turn.id, "object": "response", "created_at": turn.created_at, "status": status,
        "background": False,
        "error": None if error is None else {"code": failure_code(error),
                                             "message": error.message},
        "incomplete_details": ({"reason": incomplete[finish_reason]}
                               if status == "incomplete" and finish_reason in incomplete
                               else None),
        "instructions": body.instructions, "max_output_tokens": body.max_output_tokens,
        "metadata": body.metadata or {}, "model": model, "output": output,
        "parallel_tool_calls": body.parallel_tool_calls is not False,
        "previous_response_id": body.previous_response_id,
        "reasoning": {"effort": body.reasoning.effort if body.reasoning else None,
                      "summary": body.reasoning.summary if body.reasoning else None},
        "store": body.store, "temperature": body.temperature, "top_p": body.top_p,
        "text": body.text or {"format": {"type": "text"}},
        "tool_choice": body.tool_choice if body.tool_choice is not None else "auto",
        "tools": [_tool_body(t) for t in turn.plan.tools if t.name not in turn.plan.namespaced],
        "truncation": body.truncation or "disabled",
        "usage": None if usage is None else usage_body(usage), "user": body.user,
    }


def failure_code(err: SwitchyardError) -> str:
    """The `error.code` of a failed response, as Codex and the SDK expect it."""
    if isinstance(err, (UpstreamRateLimited, LimitExceeded)):
        return "rate_limit_exceeded"
    return err.code or "server_error"


def _status(finish_reason: str | None) -> str:
    return "incomplete" if finish_reason in ("length", "content_filter") else "completed"


def _tool_body(tool: ToolDefinition) -> dict[str, Any]:
    return {"type": "function", "name": tool.name, "description": tool.description,
            "parameters": json.loads(tool.parameters_json), "strict": None}


def _item_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


# -- the handler ---------------------------------------------------------------------------
async def create_response(request: Request) -> Response:
    """POST /v1/responses: translate, run the pipeline, translate back."""
    pipeline: Pipeline = request.app.state.pipeline
    request_id = request.headers.get("x-request-id") or f"req_{uuid.uuid4().hex[:24]}"
    try:
        raw = await http_proxy._read_body(request, pipeline.config.limits.max_body_bytes)
        body = parse_responses_request(raw)
        store = _store(request)
        history = (await asyncio.to_thread(store.conversation, body.previous_response_id)
                   if body.previous_response_id else [])
        turn = Turn(body, input_items(body))
        chat = to_chat_request(body, history, turn.input_items, request.headers, raw,
                               turn.plan)
        chat = dataclasses.replace(chat, request_id=request_id,
                                   api_key_id=http_proxy.caller_key_id(request))
    except Exception as exc:  # noqa: BLE001 - refused before the pipeline: logged there
        return await http_proxy.rejected(request, exc, request_id, ENDPOINT)
    from switchyard.server import responses_native  # it imports this module: imported late

    if responses_native.wants_native(pipeline, turn.plan):
        return await responses_native.native_response(request, pipeline, chat, turn, raw)
    _note_dropped(turn.plan, request_id)
    try:
        if body.stream:
            return await _open_stream(request, pipeline, chat, turn, store)
        result = await http_proxy._unless_disconnected(request, pipeline.chat(chat))
    except ClientDisconnect:
        raise
    except Exception as exc:  # noqa: BLE001 - translated once, into the OpenAI error shape
        return http_proxy._error_response(request, as_switchyard_error(exc), request_id)
    output = output_items(result.message, turn.plan)
    out = response_body(turn, model=result.model, status=_status(result.finish_reason),
                        output=output, usage=result.usage, finish_reason=result.finish_reason)
    await _save(store, turn, out)
    return http_proxy._json(out, 200, {**http_proxy.result_headers(result),
                                       **_dropped_headers(turn.plan)})


def _note_dropped(plan: ToolPlan, request_id: str) -> None:
    if plan.dropped:
        logger.info("request %s: left out tools the upstream cannot run: %s", request_id,
                    ", ".join(plan.dropped))


def _dropped_headers(plan: ToolPlan) -> dict[str, str]:
    return {DROPPED_HEADER: ", ".join(plan.dropped)} if plan.dropped else {}


async def _open_stream(request: Request, pipeline: Pipeline, chat: ChatRequest, turn: Turn,
                       store: ResponseStore) -> Response:
    try:
        stream = await http_proxy._unless_disconnected(request, pipeline.open_stream(chat))
    except UpstreamError as exc:  # the model side failed: a streamed response.failed
        return failed_stream(ResponseEvents(turn, chat.model), exc, chat.request_id,
                             _dropped_headers(turn.plan))
    events = ResponseEvents(turn, stream.deployment.model)
    return StreamingResponse(_sse(stream, events, store), media_type="text/event-stream",
                             headers={**http_proxy._stream_headers(stream),
                                      **_dropped_headers(turn.plan)})


def failed_stream(events: ResponseEvents, exc: SwitchyardError, request_id: str,
                  headers: dict[str, str] | None = None) -> Response:
    """An upstream failure before any output, as the SSE sequence that ends in
    response.failed (Codex retries on its error code)."""
    failed = [*events.start(), *events.fail(exc)]
    return StreamingResponse(_replay(failed), media_type="text/event-stream",
                             headers={"x-request-id": request_id, "cache-control": "no-cache",
                                      **(headers or {})})


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


async def _replay(chunks: list[bytes]) -> AsyncIterator[bytes]:
    yield b"".join(chunks)


def _store(request: Request) -> ResponseStore:
    """One store per app, opened on first use under the pipeline's data dir."""
    state = request.app.state
    store = getattr(state, "responses_store", None)
    if store is None:
        pipeline: Pipeline = state.pipeline
        store = state.responses_store = ResponseStore.for_data_dir(
            pipeline.config.server.data_dir)
    return store


async def _save(store: ResponseStore, turn: Turn, response: dict[str, Any]) -> None:
    if not turn.body.store:
        return
    stored = StoredResponse(turn.id, response["model"], response["status"], turn.input_items,
                            response["output"], response, turn.body.previous_response_id,
                            float(turn.created_at))
    await asyncio.to_thread(store.put, stored)


# -- streaming events ----------------------------------------------------------------------
class ResponseEvents:
    """Chat deltas -> the Responses SSE sequence, numbering every event.

    created, in_progress, then per output item: output_item.added, (content_part.added,
    output_text.delta..., output_text.done, content_part.done | function_call_arguments.delta...,
    function_call_arguments.done), output_item.done; finally completed / incomplete / failed.
    """

    def __init__(self, turn: Turn, model: str) -> None:
        self.turn = turn
        self.model = model
        self.seq = 0
        self.items: list[dict[str, Any]] = []  # finished output items, in order
        self._text: list[str] | None = None  # the open message item's text, if one is open
        self._text_id = ""
        self._call: dict[str, Any] | None = None  # the open function_call item
        self._call_index: int | None = None
        self._usage: Usage | None = None
        self._finish: str | None = None

    def event(self, kind: str, **fields: Any) -> bytes:
        body = {"type": kind, "sequence_number": self.seq, **fields}
        self.seq += 1
        return b"event: " + kind.encode() + b"\n" + http_proxy._event(body)

    def snapshot(self, status: str, **kw: Any) -> dict[str, Any]:
        return response_body(self.turn, model=self.model, status=status,
                             output=list(self.items), **kw)

    def start(self) -> list[bytes]:
        snap = self.snapshot("in_progress")
        return [self.event("response.created", response=snap),
                self.event("response.in_progress", response=snap)]

    def on_delta(self, delta: StreamDelta) -> list[bytes]:
        out: list[bytes] = []
        self.model = delta.model or self.model
        self._usage = delta.usage or self._usage
        self._finish = delta.finish_reason or self._finish
        if delta.content:
            out += self._close_call()
            out += self._open_text() if self._text is None else []
            assert self._text is not None
            self._text.append(delta.content)
            out.append(self.event("response.output_text.delta", item_id=self._text_id,
                                  output_index=len(self.items), content_index=0,
                                  delta=delta.content, logprobs=[]))
        for call in delta.tool_calls:
            if self._call is None or call.index != self._call_index:
                out += self._close_text() + self._close_call()
                out += self._open_call(call.index, call.id or _item_id("call"), call.name or "")
            assert self._call is not None
            if call.arguments:
                self._call["arguments"] += call.arguments
                out.append(self.event("response.function_call_arguments.delta",
                                      item_id=self._call["id"], output_index=len(self.items),
                                      delta=call.arguments))
        return out

    def finish(self) -> tuple[list[bytes], dict[str, Any]]:
        out = self._close_text() + self._close_call()
        status = _status(self._finish)
        final = self.snapshot(status, usage=self._usage or Usage(), finish_reason=self._finish)
        kind = "response.completed" if status == "completed" else "response.incomplete"
        return out + [self.event(kind, response=final)], final

    def fail(self, err: SwitchyardError) -> list[bytes]:
        return [self.event("response.failed",
                           response=self.snapshot("failed", usage=self._usage, error=err))]

    def _open_text(self) -> list[bytes]:
        self._text, self._text_id = [], _item_id("msg")
        index = len(self.items)
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        return [self.event("response.output_item.added", output_index=index,
                           item=message_item(self._text_id, "", "in_progress")),
                self.event("response.content_part.added", item_id=self._text_id,
                           output_index=index, content_index=0, part=part)]

    def _close_text(self) -> list[bytes]:
        if self._text is None:
            return []
        text, item_id, index = "".join(self._text), self._text_id, len(self.items)
        item = message_item(item_id, text)
        self._text = None
        self.items.append(item)
        return [self.event("response.output_text.done", item_id=item_id, output_index=index,
                           content_index=0, text=text, logprobs=[]),
                self.event("response.content_part.done", item_id=item_id, output_index=index,
                           content_index=0, part=item["content"][0]),
                self.event("response.output_item.done", output_index=index, item=item)]

    def _open_call(self, index: int, call_id: str, name: str) -> list[bytes]:
        self._call_index = index
        self._call = call_item(_item_id("fc"), ToolCall(call_id, name, ""), self.turn.plan,
                               "in_progress")
        return [self.event("response.output_item.added", output_index=len(self.items),
                           item=dict(self._call))]

    def _close_call(self) -> list[bytes]:
        if self._call is None:
            return []
        item, index = {**self._call, "status": "completed"}, len(self.items)
        self._call = self._call_index = None
        self.items.append(item)
        return [self.event("response.function_call_arguments.done", item_id=item["id"],
                           output_index=index, name=item["name"], arguments=item["arguments"]),
                self.event("response.output_item.done", output_index=index, item=item)]
