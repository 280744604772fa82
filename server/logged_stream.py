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

from switchyard.retrieval.chat import Message
from switchyard.server.chat import Attempt, ChatResult, Prepared, Usage

if TYPE_CHECKING:
    from switchyard.router.traffic import TrafficRecord
    from switchyard.server.config import Deployment
    from switchyard.server.pipeline import Pipeline


class LoggedStream:
    def __init__(self, pipeline: Pipeline, prepared: Prepared, source: AsyncIterator[Any],
                 deployment: Deployment, attempts: list[Attempt], record: TrafficRecord,
                 started: float) -> None:
        self._pipeline = pipeline
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
            cost_usd=self._pipeline._cost(self.deployment, usage))

    async def _finish(self, exc: BaseException | None) -> None:
        if self._finished:
            return
        self._finished = True
        p, pipeline = self._prepared, self._pipeline
        if exc is not None:
            await pipeline._log_failure(self._record, exc, self._started, p)
            return
        result = self._result()
        await pipeline._log_success(self._record, p, result, self._started)
        pipeline.outcomes.after_response(p.request, result, self._record)
