"""Outcomes from live traffic, off the request path: verifiers and shadow calls.

- Feedback: `record` stores an outcome for a logged request (idempotent by id + source).
- Verifiers: after a response is logged, matching configured graders run as background
  tasks and write outcomes with source "verifier".
- Shadow: a configured share of requests is also sent to the other group after the caller
  has its answer; the shadow call is logged as its own row with `shadow_of` = the primary
  id (and verified too), which gives paired outcomes for direct replay estimates.

Background work is bounded by a semaphore; when it is full, new work is skipped (counted),
never queued without bound and never awaited by the caller.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from switchyard.core.trafficlog.outcomes import Outcome
from switchyard.core.trafficlog.schema import TrafficRecord
from switchyard.router.decision import MODEL_GROUPS
from switchyard.router.verifiers import VerifierSpec, verify
from switchyard.server.config import OutcomesConfig, VerifierConfig
from switchyard.server.pipeline_types import ChatRequest, ChatResult

logger = logging.getLogger(__name__)
Chat = Callable[[ChatRequest], Awaitable[ChatResult]]
AfterResponse = Callable[[ChatRequest, ChatResult, TrafficRecord], None]
EXPECTED_TAG = "expected:"


@dataclass
class OutcomeStats:
    verified: int = 0
    verifier_errors: int = 0
    shadows: int = 0
    shadow_errors: int = 0
    skipped_busy: int = 0


class OutcomeService:
    """`chat` runs shadow calls through the pipeline; `record_outcome` attaches an outcome
    to the traffic log, whichever engine holds it (None when the server keeps no log)."""

    def __init__(self, settings: OutcomesConfig, *, chat: Chat,
                 record_outcome: Callable[[Outcome], bool] | None) -> None:
        self._chat = chat
        self._record_outcome = record_outcome
        self.settings = settings
        self._rng = random.Random(settings.seed)
        self._slots = asyncio.Semaphore(settings.max_concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self.stats = OutcomeStats()

    # -- feedback ----------------------------------------------------------------------
    async def record(self, outcome: Outcome) -> bool:
        return await asyncio.to_thread(self._record_sync, outcome)

    def _record_sync(self, outcome: Outcome) -> bool:
        assert self._record_outcome is not None
        return self._record_outcome(outcome)

    # -- after a response --------------------------------------------------------------
    def after_response(self, request: ChatRequest, result: ChatResult,
                       record: TrafficRecord) -> None:
        """Schedule verifiers and maybe a shadow call; returns at once."""
        specs = self._matching(request, record)
        if specs:
            self._spawn(self._verify(record.request_id, request, result.message.text(), specs))
        if (self.settings.shadow_share > 0 and record.shadow_of is None
                and not record.overridden and record.model in MODEL_GROUPS
                and self._rng.random() < self.settings.shadow_share):
            self._spawn(self._shadow(request, record))

    def _matching(self, request: ChatRequest, record: TrafficRecord) -> list[VerifierConfig]:
        if not self.settings.verifiers:
            return []  # no body re-parse on the hot path when no verifier is configured
        tags = set(request_tags(request))
        return [v for v in self.settings.verifiers
                if (not v.tags or tags & set(v.tags))
                and (not v.models or {record.model, record.upstream_model} & set(v.models))]

    def _spawn(self, work: Any) -> None:
        if self._slots.locked():
            self.stats.skipped_busy += 1
            work.close()
            return
        task = asyncio.get_running_loop().create_task(self._bounded(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _bounded(self, work: Any) -> None:
        async with self._slots:
            await work

    async def _verify(self, request_id: str, request: ChatRequest, answer: str,
                      specs: list[VerifierConfig]) -> None:
        expected = expected_answer(request)
        for cfg in specs:
            spec = VerifierSpec(cfg.name, cfg.kind, cfg.pattern, cfg.json_schema, cfg.command,
                                cfg.timeout, cfg.tolerance)
            try:
                verdict = await asyncio.to_thread(verify, spec, answer, expected)
                await self.record(Outcome(request_id, "verifier", label=cfg.name,
                                          score=verdict.score))
                self.stats.verified += 1
            except Exception as exc:  # noqa: BLE001 - background work: log, never raise
                self.stats.verifier_errors += 1
                logger.warning("verifier %s on %s failed: %s", cfg.name, request_id, exc)

    async def _shadow(self, request: ChatRequest, primary: TrafficRecord) -> None:
        other = "non_thinking" if primary.thinking else "thinking"
        # Pinning the other group by name; the caller's effort overrides still apply.
        shadow = replace(request, model=other, request_id=f"shd_{uuid.uuid4().hex[:24]}",
                         stream=False, endpoint="shadow", deadline=None,
                         shadow_of=primary.request_id)
        try:
            await self._chat(shadow)
            self.stats.shadows += 1
        except Exception as exc:  # noqa: BLE001 - background work: log, never raise
            self.stats.shadow_errors += 1
            logger.warning("shadow call for %s failed: %s", primary.request_id, exc)

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait for background work (tests, shutdown)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.drain(5.0)


def request_tags(request: ChatRequest) -> list[str]:
    """The request's tags (gRPC field), plus the HTTP body's metadata.tags (comma list)."""
    tags = list(request.tags)
    meta = _metadata(request)
    raw = meta.get("tags")
    if isinstance(raw, str):
        tags += [t.strip() for t in raw.split(",") if t.strip()]
    return tags


def expected_answer(request: ChatRequest) -> str | None:
    for tag in request_tags(request):
        if tag.startswith(EXPECTED_TAG):
            return tag[len(EXPECTED_TAG):]
    value = _metadata(request).get("expected")
    return str(value) if value is not None else None


def _metadata(request: ChatRequest) -> dict[str, Any]:
    if not request.raw_json:
        return {}
    try:
        body = json.loads(request.raw_json)
    except ValueError:
        return {}
    meta = body.get("metadata") if isinstance(body, dict) else None
    return meta if isinstance(meta, dict) else {}
