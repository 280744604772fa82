"""Cascade mode: the non-thinking model drafts, the escalation scorer reads the draft's
verifiable signals (router/escalation.py), and the thinking model answers only when the
scorer escalates. The client sees one answer; the log keeps both attempts, their costs and
the draft itself (training data for the scorer).

Streaming requests buffer the draft: the client's first token waits for the whole draft
and its score, then streams the thinking model's answer, or the buffered draft at once.
Agent turns whose draft is a tool call escalate only on invalid tool arguments unless
`routing.cascade.score_tool_calls` is set.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

from switchyard.core.messages import Message
from switchyard.core.trafficlog.schema import Attempt
from switchyard.router import (
    CheckpointError,
    DraftInput,
    Escalation,
    EscalationScorer,
    RouteDecision,
)
from switchyard.router.verifiers import VerifierSpec, verify
from switchyard.server.config import AUTO_MODEL, Config
from switchyard.server.errors import ConfigError, UpstreamError
from switchyard.server.pipeline_types import ChatRequest, Prepared, Usage
from switchyard.server.upstream.retry import CallOutcome, StreamHandle, Upstream

SECOND_SAMPLE_TEMPERATURE = 1.0  # a second greedy sample would repeat the first


@dataclass(frozen=True, slots=True)
class Draft:
    outcome: CallOutcome
    second: CallOutcome | None
    escalation: Escalation
    cost_usd: float  # the draft's and the second sample's

    @property
    def attempts(self) -> list[Attempt]:
        staged = [replace(a, stage="draft") for a in self.outcome.attempts]
        if self.second is not None:
            staged += [replace(a, stage="second_sample") for a in self.second.attempts]
        return staged


class Cascade:
    def __init__(self, config: Config, upstream: Upstream) -> None:
        self.settings = config.routing.cascade
        self.default_on = config.routing.mode == "cascade"
        self.upstream = upstream
        self._price_of = config.price_of
        self._keep_text = config.server.log_bodies
        by_name = {v.name: v for v in config.outcomes.verifiers}  # names checked by Config
        self._verifiers = [VerifierSpec(v.name, v.kind, v.pattern, v.json_schema, v.command,
                                        v.timeout, v.tolerance)
                           for v in (by_name[n] for n in self.settings.verifiers)]
        self._scorer: EscalationScorer | None = None

    @property
    def scorer(self) -> EscalationScorer:
        if self._scorer is None:  # loaded on first use: a server in route mode never reads it
            try:
                self._scorer = EscalationScorer.load(self.settings.checkpoint,
                                                     self.settings.escalation_share)
            except CheckpointError as exc:  # the server's fault, not the caller's: a 500
                raise ConfigError(f"cascade mode: {exc.message} (routing.cascade.checkpoint)",
                                  code="escalation_checkpoint") from None
        return self._scorer

    def applies(self, request: ChatRequest) -> bool:
        """The per-request switch wins over routing.mode; a pinned model or group wins over
        both (the caller already chose who answers)."""
        on = self.default_on if request.cascade is None else request.cascade
        pinned = (request.model != AUTO_MODEL or request.overrides.model is not None
                  or request.overrides.thinking is not None)
        return on and not pinned

    async def complete(self, p: Prepared, body: dict[str, Any]) -> CallOutcome:
        draft = await self._draft(p, body)
        if not draft.escalation.escalate:
            return replace(draft.outcome, attempts=draft.attempts)
        answer = await self.upstream.complete(body, p.decision, p.request.deadline)
        return replace(answer, attempts=[*draft.attempts, *answer.attempts])

    async def open_stream(self, p: Prepared, body: dict[str, Any]) -> StreamHandle:
        draft = await self._draft(p, {k: v for k, v in body.items() if k != "stream_options"})
        if not draft.escalation.escalate:
            out = draft.outcome
            return StreamHandle(out.deployment, out.group, _replay(out.body), draft.attempts)
        handle = await self.upstream.open_stream(body, p.decision, p.request.deadline)
        handle.attempts[:0] = draft.attempts
        return handle

    async def _draft(self, p: Prepared, body: dict[str, Any]) -> Draft:
        """Draft with the non-thinking group, score it; leaves in `p` the decision of whoever
        answers and the log entry."""
        routed = p.decision
        deadline = p.request.deadline
        draft_decision = replace(routed, model="non_thinking", thinking=False,
                                 reasoning_effort=None, budget_tokens=None,
                                 reason=f"cascade draft ({routed.reason})")
        t0 = time.monotonic()
        outcome = await self.upstream.complete(body, draft_decision, deadline)
        second = None
        if self.settings.second_sample:
            sample = {**body, "temperature": SECOND_SAMPLE_TEMPERATURE}
            second = await self.upstream.complete(sample, draft_decision, deadline)
        p.stage_ms["draft"] = (time.monotonic() - t0) * 1000
        t0 = time.monotonic()
        x = await self._input(p, outcome.body, second.body if second else None)
        escalation = self.scorer.decide(x, tool_calls_args_only=not self.settings.score_tool_calls,
                                        key=outcome.deployment.public_name)
        p.stage_ms["escalation_score"] = (time.monotonic() - t0) * 1000
        draft_cost = self._cost(outcome)
        second_cost = self._cost(second) if second is not None else 0.0
        draft = Draft(outcome, second, escalation, draft_cost + second_cost)
        p.decision = (_escalated(routed, escalation) if escalation.escalate
                      else replace(draft_decision, reason=_verdict(escalation, "kept")))
        p.cascade = _log_entry(draft, x, keep_text=self._keep_text)
        # What the answer's own cost leaves out: a kept draft is the answer, a sample is not.
        p.cascade["unanswered_cost_usd"] = draft.cost_usd if escalation.escalate else second_cost
        return draft

    def _cost(self, outcome: CallOutcome) -> float:
        usage = Usage.from_openai(outcome.body.get("usage"))
        return self._price_of(outcome.deployment).cost_usd(usage.prompt_tokens,
                                                           usage.completion_tokens)

    async def _input(self, p: Prepared, body: dict[str, Any],
                     second: dict[str, Any] | None) -> DraftInput:
        choice = _choice(body)
        try:
            message = Message.from_openai(choice.get("message") or {"role": "assistant"})
        except ValueError as exc:
            raise UpstreamError(f"the draft model sent an invalid message: {exc}") from None
        text = message.content or ""
        failures = 0
        for spec in self._verifiers:  # to_thread: a command verifier runs a process
            failures += not (await asyncio.to_thread(verify, spec, text)).passed
        return DraftInput(
            p.messages, text, tools=p.request.tools, tool_calls=message.tool_calls,
            finish_reason=choice.get("finish_reason"),
            response_format=p.request.params.response_format_type,
            logprobs=_logprobs(choice),
            second_draft=(_choice(second).get("message") or {}).get("content") or ""
            if second is not None else None,
            verifier_failures=failures)


def _escalated(routed: RouteDecision, e: Escalation) -> RouteDecision:
    return replace(routed, model="thinking", thinking=True,
                   reasoning_effort=routed.reasoning_effort or "medium",
                   reason=_verdict(e, "escalated"))


def _verdict(e: Escalation, what: str) -> str:
    why = f": {', '.join(e.failed)}" if e.failed else ""
    return (f"cascade: draft {what}, p_escalate {e.p_escalate:.3f} vs threshold "
            f"{e.threshold:.3f}{why}")


def _log_entry(d: Draft, x: DraftInput, *, keep_text: bool) -> dict[str, Any]:
    usage = Usage.from_openai(d.outcome.body.get("usage"))
    return {
        "p_escalate": d.escalation.p_escalate, "threshold": d.escalation.threshold,
        "escalated": d.escalation.escalate, "failed": list(d.escalation.failed),
        "policy_version": d.escalation.policy_version,
        "final_answer": d.escalation.final_answer, "cost_usd": d.cost_usd,
        "draft_model": d.outcome.deployment.public_name,
        "draft_usage": {"prompt_tokens": usage.prompt_tokens,
                        "completion_tokens": usage.completion_tokens},
        "finish_reason": x.finish_reason,
        "second_sample": d.second is not None,
        "draft": x.draft if keep_text else None,
        "tool_calls": [c.to_openai() for c in x.tool_calls] if keep_text else None,
    }


def _choice(body: dict[str, Any]) -> dict[str, Any]:
    choices = body.get("choices") or []
    if not choices or not isinstance(choices[0], dict):
        raise UpstreamError("the draft model sent a response without choices")
    return choices[0]


def _logprobs(choice: dict[str, Any]) -> list[float] | None:
    content = (choice.get("logprobs") or {}).get("content")
    if not isinstance(content, list):
        return None
    values = [t.get("logprob") for t in content if isinstance(t, dict)]
    return [float(v) for v in values if isinstance(v, (int, float))] or None


async def _replay(body: dict[str, Any]) -> AsyncIterator[list[dict[str, Any]]]:
    """A finished completion as one batch of stream chunks (the buffered draft)."""
    choice = _choice(body)
    message = choice.get("message") or {}
    base = {"id": body.get("id", ""), "object": "chat.completion.chunk",
            "created": body.get("created", int(time.time())), "model": body.get("model")}
    delta: dict[str, Any] = {"role": "assistant", "content": message.get("content") or ""}
    if message.get("tool_calls"):
        delta["tool_calls"] = [{**c, "index": i} for i, c in enumerate(message["tool_calls"])]
    yield [
        {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {},
                              "finish_reason": choice.get("finish_reason") or "stop"}]},
        {**base, "choices": [], "usage": body.get("usage")},
    ]
