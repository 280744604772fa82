"""Chat stream deltas -> the Anthropic Messages SSE event sequence.

    message_start, ping,
    per content block: content_block_start, content_block_delta... (thinking_delta |
        text_delta | input_json_delta), content_block_stop,
    message_delta (stop_reason, usage), message_stop
    (or, after the headers went out, one `error` event)

One block is open at a time, as Anthropic sends them: reasoning opens a thinking block, text a
text block, each tool call (by its index) a tool_use block whose arguments stream as
`partial_json`. The order of event names and fields follows the SDK's stream accumulator
(anthropic-sdk-python `lib/streaming/_messages.py`).
"""

from __future__ import annotations

import json
from typing import Any

from switchyard.server.errors import SwitchyardError
from switchyard.server.http.messages.wire import error_body, message_body, stop_reason, usage_body
from switchyard.server.pipeline_types import StreamDelta, ToolCallDelta, Usage


def event(kind: str, body: dict[str, Any]) -> bytes:
    data = json.dumps({"type": kind, **body}, separators=(",", ":"))
    return f"event: {kind}\ndata: {data}\n\n".encode()


class MessageEvents:
    def __init__(self, msg_id: str, model: str, input_tokens: int) -> None:
        self.msg_id = msg_id
        self.model = model
        self.input_tokens = input_tokens  # admission's count, until upstream usage arrives
        self.index = -1  # the open block's index; -1 before the first block
        self.open: str | None = None  # "thinking", "text" or "tool:<call index>"
        self.usage: Usage | None = None
        self.finish_reason: str | None = None

    def start(self) -> list[bytes]:
        message = message_body(self.msg_id, self.model, [], None,
                               Usage(prompt_tokens=self.input_tokens))
        return [event("message_start", {"message": message}), event("ping", {})]

    def on_delta(self, delta: StreamDelta) -> list[bytes]:
        out: list[bytes] = []
        self.usage = delta.usage or self.usage
        self.finish_reason = delta.finish_reason or self.finish_reason
        if delta.reasoning:
            out += self._switch("thinking", {"type": "thinking", "thinking": "", "signature": ""})
            out.append(self._delta({"type": "thinking_delta", "thinking": delta.reasoning}))
        if delta.content:
            out += self._switch("text", {"type": "text", "text": ""})
            out.append(self._delta({"type": "text_delta", "text": delta.content}))
        for call in delta.tool_calls:
            out += self._tool(call)
        return out

    def finish(self) -> list[bytes]:
        usage = usage_body(self.usage or Usage(prompt_tokens=self.input_tokens))
        delta = {"stop_reason": stop_reason(self.finish_reason), "stop_sequence": None}
        return [*self._close(), event("message_delta", {"delta": delta, "usage": usage}),
                event("message_stop", {})]

    def fail(self, err: SwitchyardError) -> list[bytes]:
        body = error_body(err)
        return [event("error", {"error": body["error"]})]

    # -- blocks --------------------------------------------------------------------------
    def _tool(self, call: ToolCallDelta) -> list[bytes]:
        key = f"tool:{call.index}"
        out = [] if self.open == key else self._switch(key, {
            "type": "tool_use", "id": call.id or f"toolu_{self.msg_id}_{call.index}",
            "name": call.name or "", "input": {}})
        if call.arguments:
            out.append(self._delta({"type": "input_json_delta", "partial_json": call.arguments}))
        return out

    def _switch(self, kind: str, block: dict[str, Any]) -> list[bytes]:
        if self.open == kind:
            return []
        out = self._close()
        self.index += 1
        self.open = kind
        return [*out, event("content_block_start", {"index": self.index, "content_block": block})]

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return event("content_block_delta", {"index": self.index, "delta": delta})

    def _close(self) -> list[bytes]:
        if self.open is None:
            return []
        self.open = None
        return [event("content_block_stop", {"index": self.index})]
