"""One traffic-log row per request: opened at admission, filled and written when it ends.

The pipeline and its open streams share one `Recorder`, so a stream finishing long after
`open_stream` returned writes its row the same way a finished `chat` call does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence

from switchyard.core.trafficlog.schema import Attempt, TrafficRecord
from switchyard.server.errors import SwitchyardError, as_switchyard_error
from switchyard.server.pipeline_types import ChatRequest, ChatResult, Prepared
from switchyard.server.prometheus import Metrics
from switchyard.server.traffic.writer import TrafficLog

logger = logging.getLogger(__name__)
REJECTED_BODY_BYTES = 64 * 1024  # what a refused request keeps of its body in the log


class Recorder:
    def __init__(self, log: TrafficLog | None, metrics: Metrics, *, log_bodies: bool) -> None:
        self.log = log
        self.metrics = metrics
        self.log_bodies = log_bodies

    def open(self, request: ChatRequest) -> TrafficRecord:
        return TrafficRecord(
            request_id=request.request_id, session_id=request.session_id,
            endpoint=request.endpoint, api_key_id=request.api_key_id,
            requested_model=request.model, stream=request.stream,
            request_json=request.raw_json if self.log_bodies else None,
            shadow_of=request.shadow_of)

    async def success(self, record: TrafficRecord, p: Prepared, result: ChatResult,
                      started: float) -> None:
        _fill(record, p)
        u = result.usage
        record.upstream_model = result.model
        record.prompt_tokens, record.completion_tokens = u.prompt_tokens, u.completion_tokens
        record.reasoning_tokens, record.cached_tokens = u.reasoning_tokens, u.cached_tokens
        record.cost_usd = result.cost_usd + (p.cascade or {}).get("unanswered_cost_usd", 0.0)
        _attempts(record, result.attempts)
        await self._write(record, started)

    async def rejected(self, request_id: str, endpoint: str, head: bytes, size: int,
                       exc: BaseException, api_key_id: str | None = None) -> None:
        """One row for a request a door refused before the pipeline ran (parse errors,
        oversized bodies, unknown previous_response_id): the first 64 KB of its body."""
        record = TrafficRecord(request_id=request_id, session_id="", endpoint=endpoint,
                               api_key_id=api_key_id)
        if self.log_bodies:
            record.request_json = head[:REJECTED_BODY_BYTES].decode("utf-8", errors="replace")
            record.request_bytes = size
        await self.failure(record, exc, time.monotonic())

    async def failure(self, record: TrafficRecord, exc: BaseException, started: float,
                      p: Prepared | None = None) -> None:
        """`p` is whatever the request got through (its decision, tokens, stage timings)."""
        if p is not None:
            _fill(record, p)
        if isinstance(exc, asyncio.CancelledError):
            record.status, record.http_status, record.error_type = "cancelled", 499, "cancelled"
        else:
            err = as_switchyard_error(exc) if isinstance(exc, Exception) else SwitchyardError("")
            record.status, record.http_status = "error", err.status
            record.error_type = type(err).__name__
            if err.status < 500:
                _cap_body(record)
            if not isinstance(exc, SwitchyardError) and err.status >= 500:
                logger.exception("request %s failed", record.request_id, exc_info=exc)
        _attempts(record, getattr(exc, "attempts", ()))
        await self._write(record, started)

    async def _write(self, record: TrafficRecord, started: float) -> None:
        record.latency_ms = (time.monotonic() - started) * 1000
        record.finished_at = time.time()
        if self.log is not None:
            await self.log.write(record)
        self.metrics.observe_record(record)


def _fill(record: TrafficRecord, p: Prepared) -> None:
    d = p.decision
    record.model, record.thinking = d.model, d.thinking
    record.reasoning_effort, record.budget_tokens = d.reasoning_effort, d.budget_tokens
    record.p_hard, record.policy_version = d.p_hard, d.policy_version
    record.route_reason, record.overridden = d.reason, d.overridden
    record.tokens_before, record.tokens_after = p.tokens_before, p.tokens_after
    record.dropped_chunks, record.recalled_chunks = len(p.dropped_ids), len(p.recalled_ids)
    record.propensity, record.explored = p.propensity, p.explored
    record.stage_ms = dict(p.stage_ms)
    if p.cascade is not None:  # cascade mode (server/cascade.py): the draft was paid for
        record.p_escalate, record.escalated = p.cascade["p_escalate"], p.cascade["escalated"]
        record.draft_cost_usd = record.cost_usd = p.cascade["cost_usd"]
        record.cascade_json = json.dumps(p.cascade)


def _cap_body(record: TrafficRecord) -> None:
    """A refused request keeps its first 64 KB and its size, not a 10 MB body."""
    if record.request_json is None or record.request_bytes is not None:
        return
    data = record.request_json.encode()
    record.request_bytes = len(data)
    if len(data) > REJECTED_BODY_BYTES:
        record.request_json = data[:REJECTED_BODY_BYTES].decode("utf-8", errors="ignore")


def _attempts(record: TrafficRecord, attempts: Sequence[Attempt]) -> None:
    record.attempts = len(attempts)
    # A fallback is a second deployment within one stage (a cascade's draft is not one).
    record.fallback = len({(a.stage, a.deployment) for a in attempts}) > len(
        {a.stage for a in attempts})
    record.attempt_log = list(attempts)
