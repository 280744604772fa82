"""Calls to the upstream models: deployment choice, retries, fallbacks, cooldowns, timeouts.

Two transports (transports.py) share one retry/fallback loop:
- `openai`: OpenAI-compatible deployments (the providers of providers.py, or any deployment
  with `transport: openai`, e.g. Ollama or llama.cpp at their `/v1` endpoints) are called
  directly over one pooled aiohttp session. LiteLLM's per-call overhead (~3 ms of
  CPU in its Router) would be most of our latency budget, and these providers need no
  mapping; aiohttp costs about a third of httpx's CPU per call (bench/proxy.py).
- `litellm`: every other provider (Anthropic, Gemini, Bedrock, ...) goes through
  `litellm.acompletion`, which maps the OpenAI request (reasoning_effort, thinking budgets,
  tools) to the provider's API. LiteLLM's own retries are off: the loop here owns them, so
  every attempt is visible in the log and the headers.

Every attempt has a timeout, never longer than what is left of the caller's deadline.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from switchyard.core.trafficlog.schema import Attempt
from switchyard.router.decision import RouteDecision
from switchyard.server.config import Config, Deployment
from switchyard.server.errors import (
    MissingCredentials,
    UpstreamError,
    UpstreamRejected,
    UpstreamTimeout,
)
from switchyard.server.upstream.providers import provider_params, uses_openai_transport
from switchyard.server.upstream.transports import (
    OpenAITransport,
    litellm_complete,
    litellm_stream,
)

ProviderParams = Callable[[RouteDecision, str], dict[str, Any]]
T = TypeVar("T")


@dataclass
class _Health:
    failures: int = 0
    cooling_until: float = 0.0


@dataclass
class CallOutcome:
    """What a finished call returns: the body plus how we got it."""

    body: dict[str, Any]
    deployment: Deployment
    group: str
    attempts: list[Attempt] = field(default_factory=list)


@dataclass
class NativeHandle:
    """An open call to a deployment's own /responses endpoint: its body as it arrives."""

    deployment: Deployment
    group: str
    chunks: AsyncIterator[bytes]
    attempts: list[Attempt]


@dataclass
class StreamHandle:
    """An open upstream stream; `batches` yields lists of OpenAI chunk dicts, one list per
    network read, so a proxy can forward what arrived together in one write."""

    deployment: Deployment
    group: str
    batches: AsyncIterator[list[dict[str, Any]]]
    attempts: list[Attempt]


class Upstream:
    def __init__(
        self,
        config: Config,
        *,
        provider_params: ProviderParams = provider_params,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        self.config = config
        self.provider_params = provider_params
        self.environ = environ
        self._openai = OpenAITransport()
        self._groups = config.models.group_of()
        self._health: dict[str, _Health] = {}
        self.on_cooldown: Callable[[str, float], None] | None = None
        self._rotation: dict[str, int] = {}

    def warm_up(self) -> None:
        """Resolve every thinking deployment's knobs now (imports LiteLLM once, ~4 s), so the
        first routed request does not pay for it."""
        probe = RouteDecision("thinking", True, "medium", None, None, "warm-up", "warm-up")
        for d in (*self.config.models.thinking, *self.config.models.backups):
            self.provider_params(probe, d.model)

    async def aclose(self) -> None:
        await self._openai.aclose()

    # -- planning ----------------------------------------------------------------------
    def plan(self, decision: RouteDecision) -> list[tuple[Deployment, str]]:
        """Deployments to try, in order: the decision's, then the other group, then backups."""
        models = self.config.models
        if decision.model in ("thinking", "non_thinking"):
            first_group = decision.model
            pinned: list[Deployment] = []
        else:
            first_group = self._groups.get(decision.model, "backups")
            pinned = [d for d in models.all() if d.public_name == decision.model]
        order = [first_group]
        if self.config.upstream.fallback_groups:
            other = {"thinking": "non_thinking", "non_thinking": "thinking"}.get(first_group)
            order += [g for g in (other, "backups") if g and g not in order]
        plan: list[tuple[Deployment, str]] = [(d, first_group) for d in pinned]
        for group in order:
            plan += [(d, group) for d in self._rotate(group, getattr(models, group))
                     if d not in pinned]
        ready = [p for p in plan if not self._cooling(p[0])]
        return ready or plan  # all cooling down: try anyway rather than fail without trying

    def _rotate(self, group: str, deployments: list[Deployment]) -> list[Deployment]:
        if len(deployments) < 2:
            return list(deployments)
        start = self._rotation.get(group, 0) % len(deployments)
        self._rotation[group] = start + 1
        return deployments[start:] + deployments[:start]

    def _cooling(self, d: Deployment) -> bool:
        health = self._health.get(d.public_name)
        return health is not None and health.cooling_until > time.monotonic()

    def _record(self, d: Deployment, ok: bool) -> None:
        health = self._health.setdefault(d.public_name, _Health())
        if ok:
            health.failures = 0
            return
        health.failures += 1
        if health.failures >= self.config.upstream.cooldown_failures:
            health.cooling_until = time.monotonic() + self.config.upstream.cooldown_seconds
            health.failures = 0
            if self.on_cooldown is not None:  # tell the other replicas (server/stores/shared.py)
                self.on_cooldown(d.public_name, self.config.upstream.cooldown_seconds)

    def cool(self, name: str, until: float) -> None:
        """Cool a deployment until `until` (epoch seconds): what another replica saw fail."""
        health = self._health.setdefault(name, _Health())
        health.cooling_until = max(health.cooling_until,
                                   time.monotonic() + until - time.time())

    # -- calls -------------------------------------------------------------------------
    async def complete(self, body: dict[str, Any], decision: RouteDecision,
                       deadline: float | None) -> CallOutcome:
        attempts: list[Attempt] = []

        async def once(d: Deployment, group: str) -> CallOutcome:
            payload = self._payload(body, decision, d, group)
            timeout = self._timeout(d, deadline)
            if uses_openai_transport(d):
                result = await self._openai.complete(d, payload, timeout, self._api_key(d))
            else:
                result = await litellm_complete(d, payload, timeout, self._api_key(d))
            return CallOutcome(result, d, group, attempts)

        return await self._with_retries(decision, deadline, attempts, once, body)

    async def open_stream(self, body: dict[str, Any], decision: RouteDecision,
                          deadline: float | None) -> StreamHandle:
        """Retries and falls back until the first chunk arrives; after that, errors propagate."""
        attempts: list[Attempt] = []

        async def once(d: Deployment, group: str) -> StreamHandle:
            payload = self._payload(body, decision, d, group)
            payload["stream"] = True
            timeout = self._timeout(d, deadline)
            if uses_openai_transport(d):
                batches = self._openai.stream(d, payload, timeout, self._api_key(d))
            else:
                batches = litellm_stream(d, payload, timeout, self._api_key(d))
            first = await batches.__anext__()  # provider errors surface here, still retryable
            return StreamHandle(d, group, _prepend(first, batches), attempts)

        return await self._with_retries(decision, deadline, attempts, once, body)

    async def open_native(self, body: dict[str, Any], decision: RouteDecision,
                          deadline: float | None) -> NativeHandle:
        """POST a Responses body to the first deployment with `responses_api: true` in the
        decision's plan (its group first, then the fallbacks), with the usual retries."""
        attempts: list[Attempt] = []

        async def once(d: Deployment, group: str) -> NativeHandle:
            payload = _native_payload(body, self._knobs(decision, d, group))
            chunks = self._openai.native(d, payload, self._timeout(d, deadline),
                                         self._api_key(d))
            first = await chunks.__anext__()  # the status arrives here, still retryable
            return NativeHandle(d, group, _prepend(first, chunks), attempts)

        return await self._with_retries(decision, deadline, attempts, once, body,
                                        only=lambda d: d.responses_api)

    async def _with_retries(self, decision: RouteDecision, deadline: float | None,
                            attempts: list[Attempt],
                            once: Callable[[Deployment, str], Awaitable[Any]],
                            body: dict[str, Any],
                            only: Callable[[Deployment], bool] | None = None) -> Any:
        settings = self.config.upstream
        first_error: UpstreamError | None = None
        plan = [(d, g) for d, g in self.plan(decision) if only is None or only(d)]
        if not plan:
            raise UpstreamError("no deployment in the plan can take this request "
                                "(set responses_api: true on one that speaks Responses)")
        for d, group in plan:
            for retry in range(settings.num_retries + 1):
                started = time.monotonic()
                try:
                    result = await once(d, group)
                except UpstreamError as exc:
                    attempts.append(Attempt(d.public_name, group, type(exc).__name__,
                                            _ms(started), exc.upstream_status))
                    self._record(d, ok=False)
                    first_error = first_error or exc
                    if not exc.retryable or retry == settings.num_retries:
                        break
                    delay = _backoff(retry, exc.retry_after, settings.backoff_base,
                                     settings.backoff_max, settings.max_retry_after)
                    if deadline is not None and time.monotonic() + delay >= deadline:
                        break
                    await asyncio.sleep(delay)
                    continue
                sent = self._payload(body, decision, d, group).get("thinking")  # as sent
                budget = sent.get("budget_tokens") if isinstance(sent, dict) else None
                attempts.append(Attempt(d.public_name, group, "ok", _ms(started), 200,
                                        budget_tokens=budget))
                self._record(d, ok=True)
                return result
            if deadline is not None and time.monotonic() >= deadline:
                break
            if isinstance(first_error, UpstreamRejected):
                break  # the request itself is bad: another model would refuse it too
        assert first_error is not None
        first_error.attempts = tuple(attempts)  # type: ignore[attr-defined]  # for the log row
        raise first_error

    def _payload(self, body: dict[str, Any], decision: RouteDecision, d: Deployment,
                 group: str) -> dict[str, Any]:
        payload = dict(body)
        payload["model"] = d.model
        if d.max_output_tokens and payload.get("max_tokens", 0) > d.max_output_tokens:
            payload["max_tokens"] = d.max_output_tokens
        knobs = self._knobs(decision, d, group)
        if knobs:
            payload.update(knobs)
            _fit_thinking(payload, signed="claude" in d.model.lower())
        return payload

    def _knobs(self, decision: RouteDecision, d: Deployment, group: str) -> dict[str, Any]:
        """The decision's reasoning knobs as this deployment takes them (effort or budget)."""
        if group == "thinking" or (group == "backups" and decision.thinking):
            return self.provider_params(decision, d.model)
        return {}

    def _timeout(self, d: Deployment, deadline: float | None) -> float:
        timeout = min(d.timeout, self.config.upstream.request_timeout)
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise UpstreamTimeout("the caller's deadline passed before the upstream call")
            timeout = min(timeout, remaining)
        return timeout

    def _api_key(self, d: Deployment) -> str | None:
        key = d.resolve_api_key(self.environ)
        if key is None and d.api_key_env:
            raise MissingCredentials(
                f"model {d.public_name!r} has no credentials: set the environment variable "
                f"{d.api_key_env} (or api_key in its config entry)", code="missing_credentials")
        return key


def _native_payload(body: dict[str, Any], knobs: dict[str, Any]) -> dict[str, Any]:
    """The client's Responses body with the decision's effort; a deployment that takes no
    effort (the non-thinking group) gets no `reasoning` and no reasoning items."""
    payload = dict(body)
    effort = knobs.get("reasoning_effort")
    if effort:
        payload["reasoning"] = {**(body.get("reasoning") or {}), "effort": effort}
        return payload
    payload.pop("reasoning", None)
    if isinstance(payload.get("include"), list):
        payload["include"] = [i for i in payload["include"] if not i.startswith("reasoning.")]
    if isinstance(payload.get("input"), list):
        payload["input"] = [i for i in payload["input"]
                            if not (isinstance(i, dict) and i.get("type") == "reasoning")]
    return payload


async def _prepend(first: T, rest: AsyncIterator[T]) -> AsyncIterator[T]:
    yield first
    async for batch in rest:
        yield batch


def _backoff(retry: int, retry_after: float | None, base: float, cap: float,
             max_retry_after: float) -> float:
    if retry_after is not None:
        return min(retry_after, max_retry_after)
    return random.uniform(0, min(cap, base * 2 ** retry))  # full jitter


def _fit_thinking(payload: dict[str, Any], *, signed: bool) -> None:
    """Anthropic-style `thinking` made acceptable to Anthropic.

    - It counts the budget inside max_tokens and rejects a budget that does not fit: the
      answer keeps the room the caller asked for on top of the router's budget.
    - With thinking on, Claude (`signed`: on Anthropic, Bedrock or Vertex) wants an assistant
      turn with tool calls to start with its signed thinking block, which chat messages do not
      carry: such a history is sent without thinking (what LiteLLM's `modify_params` does),
      instead of failing with a 400.
    - Claude thinks only at temperature 1: a sampling temperature goes when it thinks.
    """
    thinking = payload.get("thinking")
    if not isinstance(thinking, dict):
        return
    if signed and any(m.get("role") == "assistant" and m.get("tool_calls")
                      for m in payload.get("messages") or ()):
        del payload["thinking"]
        return
    if signed:  # Claude refuses temperature and top_p below 0.95 with thinking on
        payload.pop("temperature", None)
        if payload.get("top_p", 1) < 0.95:
            del payload["top_p"]
    budget, max_tokens = thinking.get("budget_tokens"), payload.get("max_tokens")
    if budget and max_tokens and max_tokens <= budget:
        payload["max_tokens"] = max_tokens + budget


def _ms(started: float) -> float:
    return (time.monotonic() - started) * 1000
