"""What every streamed answer shares: one log row (and the verifiers' turn) when it ends.

`ChatStream` (server/pipeline.py) reads Chat Completions chunks; `NativeStream`
(server/native.py) passes a deployment's own Responses bytes through. Both end the same way:
a success row with the usage and answer they saw, or a failure row (a cancel included).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from switchyard.core.messages import Message
from switchyard.server.pipeline_types import Attempt, ChatResult, Prepared, Usage

if TYPE_CHECKING:
    from switchyard.core.trafficlog.schema import TrafficRecord
    from switchyard.server.config import Deployment, Price
    from switchyard.server.traffic.outcome_service import AfterResponse
    from switchyard.server.traffic.recorder import Recorder


class LoggedStream:
    def __init__(self, prepared: Prepared, source: AsyncIterator[Any], deployment: Deployment,
                 attempts: list[Attempt], record: TrafficRecord, started: float, *,
                 recorder: Recorder, price: Price, after_response: AfterResponse) -> None:
        self._recorder = recorder
        self._price = price
        self._after_response = after_response
        self._prepared = prepared
        self._source = source
        self._record = record
        self._started = started
        self._finished = False
        self.request_id = prepared.request.request_id
        self.session_id = prepared.request.session_id
        self.decision = prepared.decision
        self.tokens_before = prepared.tokens_before
        self.tokens_after = prepared.tokens_after
        self.attempts = attempts
        self.deployment = deployment

    async def aclose(self) -> None:
        """Stop early (client went away): closes the upstream stream and logs the request."""
        aclose = getattr(self._source, "aclose", None)
        if aclose is not None:
            await aclose()
        await self._finish(asyncio.CancelledError())

    def _result(self) -> ChatResult:
        """The answer as seen by the end of the stream (each kind of stream reads its own)."""
        raise NotImplementedError

    def _chat_result(self, model: str, message: Message, finish_reason: str,
                     usage: Usage) -> ChatResult:
        return ChatResult(
            request_id=self.request_id, session_id=self.session_id, model=model,
            message=message, finish_reason=finish_reason, usage=usage,
            decision=self.decision, created=int(time.time()), tokens_before=self.tokens_before,
            tokens_after=self.tokens_after, attempts=tuple(self.attempts),
            cost_usd=self._price.cost_usd(usage.prompt_tokens, usage.completion_tokens))

    async def _finish(self, exc: BaseException | None) -> None:
        if self._finished:
            return
        self._finished = True
        p = self._prepared
        if exc is not None:
            await self._recorder.failure(self._record, exc, self._started, p)
            return
        result = self._result()
        await self._recorder.success(self._record, p, result, self._started)
        self._after_response(p.request, result, self._record)
