"""A request passed through to a deployment's own API (Responses, for hosted tools).

The pipeline still admits, compacts, recalls and routes it, and logs one row; only the call
differs: the client's body goes to the deployment as it is (with the routed model and effort,
and the compacted history when compaction changed it), and the answer's bytes come back
untouched. `NativeStream` watches those bytes for the usage and the answer's text, to log
them and to hand the verifiers the same `ChatResult` any other request gives them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from switchyard.core.messages import Message
from switchyard.server.logged_stream import LoggedStream
from switchyard.server.pipeline_types import ChatResult, Prepared, Usage

if TYPE_CHECKING:
    from switchyard.core.trafficlog.schema import TrafficRecord
    from switchyard.server.config import Price
    from switchyard.server.traffic.outcome_service import AfterResponse
    from switchyard.server.traffic.recorder import Recorder
    from switchyard.server.upstream.retry import NativeHandle

FINAL_EVENTS = ("response.completed", "response.incomplete", "response.failed")


class NativeStream(LoggedStream):
    def __init__(self, prepared: Prepared, handle: NativeHandle, record: TrafficRecord,
                 started: float, *, recorder: Recorder, price: Price,
                 after_response: AfterResponse) -> None:
        super().__init__(prepared, handle.chunks, handle.deployment, handle.attempts, record,
                         started, recorder=recorder, price=price, after_response=after_response)
        self._watch = ResponseWatcher()

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._source:
                self._watch.feed(chunk)
                if chunk:
                    yield chunk
        except BaseException as exc:
            await self._finish(exc)
            raise
        await self._finish(None)

    def _result(self) -> ChatResult:
        response = self._watch.response()
        finish = "stop" if response.get("status") == "completed" else "length"
        return self._chat_result(str(response.get("model") or self.deployment.model),
                                 Message("assistant", _output_text(response.get("output"))),
                                 finish, _usage(response.get("usage")))


class ResponseWatcher:
    """The final Responses object in a body that is either SSE events or one JSON object."""

    def __init__(self) -> None:
        self._pending = b""
        self._final: dict[str, Any] | None = None
        self._whole: list[bytes] = []
        self._sse: bool | None = None

    def feed(self, data: bytes) -> None:
        if not data:
            return
        if self._sse is None:
            self._sse = not data.lstrip().startswith(b"{")
        if not self._sse:
            self._whole.append(data)
            return
        *lines, self._pending = (self._pending + data).split(b"\n")
        for line in lines:
            if line.startswith(b"data:") and b'"type"' in line:
                self._event(line[5:].strip())

    def response(self) -> dict[str, Any]:
        if self._sse is False:
            try:
                body = json.loads(b"".join(self._whole))
            except ValueError:
                return {}
            return body if isinstance(body, dict) else {}
        return self._final or {}

    def _event(self, payload: bytes) -> None:
        try:
            event = json.loads(payload)
        except ValueError:
            return
        if isinstance(event, dict) and event.get("type") in FINAL_EVENTS:
            response = event.get("response")
            self._final = response if isinstance(response, dict) else {}


def _usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    out = raw.get("output_tokens_details") or {}
    cached = raw.get("input_tokens_details") or {}
    return Usage(int(raw.get("input_tokens") or 0), int(raw.get("output_tokens") or 0),
                 int(out.get("reasoning_tokens") or 0), int(cached.get("cached_tokens") or 0))


def _output_text(output: Any) -> str | None:
    texts = [part.get("text", "") for item in output or () if isinstance(item, dict)
             and item.get("type") == "message" for part in item.get("content") or ()
             if isinstance(part, dict) and part.get("type") == "output_text"]
    return "".join(texts) or None
