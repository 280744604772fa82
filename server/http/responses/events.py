"""Chat stream deltas -> the Responses SSE event sequence."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import Response, StreamingResponse
from switchyard.core.messages import ToolCall
from switchyard.server.errors import SwitchyardError
from switchyard.server.http.common import sse_event
from switchyard.server.http.responses.translate import (
    call_item,
    message_item,
    new_item_id,
    response_body,
    response_status,
)
from switchyard.server.http.responses.wire import Turn
from switchyard.server.pipeline_types import StreamDelta, Usage


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
        self._call: dict[str, Any] | None = None  # the open call item, as the client sees it
        self._call_index: int | None = None
        self._call_name = ""  # its name upstream (flattened, for a namespaced call)
        self._args: list[str] = []  # its argument fragments so far
        self._usage: Usage | None = None
        self._finish: str | None = None

    def event(self, kind: str, **fields: Any) -> bytes:
        body = {"type": kind, "sequence_number": self.seq, **fields}
        self.seq += 1
        return b"event: " + kind.encode() + b"\n" + sse_event(body)

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
                out += self._open_call(call.index, call.id or new_item_id("call"), call.name or "")
            assert self._call is not None
            self._args.append(call.arguments)
            if call.arguments and self._call["type"] == "function_call":
                # A custom call's input is a string inside these JSON fragments: it goes
                # out whole when the call closes.
                out.append(self.event("response.function_call_arguments.delta",
                                      item_id=self._call["id"], output_index=len(self.items),
                                      delta=call.arguments))
        return out

    def finish(self) -> tuple[list[bytes], dict[str, Any]]:
        out = self._close_text() + self._close_call()
        status = response_status(self._finish)
        final = self.snapshot(status, usage=self._usage or Usage(), finish_reason=self._finish)
        kind = "response.completed" if status == "completed" else "response.incomplete"
        return out + [self.event(kind, response=final)], final

    def fail(self, err: SwitchyardError) -> list[bytes]:
        return [self.event("response.failed",
                           response=self.snapshot("failed", usage=self._usage, error=err))]

    def _open_text(self) -> list[bytes]:
        self._text, self._text_id = [], new_item_id("msg")
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
        self._call_index, self._call_name, self._args = index, name, []
        self._call = call_item(new_item_id("fc"), ToolCall(call_id, name, ""), self.turn.plan,
                               "in_progress")
        return [self.event("response.output_item.added", output_index=len(self.items),
                           item=dict(self._call))]

    def _close_call(self) -> list[bytes]:
        if self._call is None:
            return []
        index, args = len(self.items), "".join(self._args)
        call = ToolCall(self._call["call_id"], self._call_name, args)
        item = call_item(self._call["id"], call, self.turn.plan)
        self._call = self._call_index = None
        self.items.append(item)
        if item["type"] == "custom_tool_call":
            done = [self.event("response.custom_tool_call_input.delta", item_id=item["id"],
                               output_index=index, delta=item["input"]),
                    self.event("response.custom_tool_call_input.done", item_id=item["id"],
                               output_index=index, input=item["input"])]
        else:
            done = [self.event("response.function_call_arguments.done", item_id=item["id"],
                               output_index=index, name=item["name"], arguments=args)]
        return done + [self.event("response.output_item.done", output_index=index, item=item)]


def failed_stream(events: ResponseEvents, exc: SwitchyardError, request_id: str,
                  headers: dict[str, str] | None = None) -> Response:
    """An upstream failure before any output, as the SSE sequence that ends in
    response.failed (Codex retries on its error code)."""
    return StreamingResponse(_at_once([*events.start(), *events.fail(exc)]),
                             media_type="text/event-stream",
                             headers={"x-request-id": request_id, "cache-control": "no-cache",
                                      **(headers or {})})


async def _at_once(chunks: list[bytes]) -> AsyncIterator[bytes]:
    yield b"".join(chunks)
