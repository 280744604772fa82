"""The one request pipeline behind every front door: admit -> compact -> recall -> route ->
call upstream -> log. Each stage is a small function over typed values, timed.

HTTP and gRPC handlers translate their wire formats into `ChatRequest` and call `chat` or
`open_stream`; nothing else in the server routes, compacts, retrieves or writes the log.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from switchyard.core.messages import (
    Message,
    ToolDefinition,
    latest_user_text,
    to_openai_messages,
)
from switchyard.core.tokens import count_message_tokens
from switchyard.core.trafficlog.schema import Attempt, TrafficRecord
from switchyard.router.decision import RouteDecision, RouteRequest
from switchyard.router.exploration import Explorer
from switchyard.server.auth import Authenticator
from switchyard.server.cascade import Cascade
from switchyard.server.config import AUTO_MODEL, Config, Deployment, Price, unusable_data_dir
from switchyard.server.errors import (
    InvalidRequest,
    NotFound,
    NotImplementedYet,
    PayloadTooLarge,
    UpstreamError,
)
from switchyard.server.limits import ConcurrencyLimiter
from switchyard.server.log_setup import REQUEST_ID
from switchyard.server.logged_stream import LoggedStream
from switchyard.server.native import NativeStream
from switchyard.server.pipeline_types import (
    ChatRequest,
    ChatResult,
    Prepared,
    StreamDelta,
    Usage,
)
from switchyard.server.prometheus import Metrics
from switchyard.server.stores.pg_chunks import PgChunkStore
from switchyard.server.stores.pg_stores import PgKeyStore, PgTrafficLog
from switchyard.server.stores.postgres import Database
from switchyard.server.stores.shared import RedisLimiter, SharedCooldowns
from switchyard.server.stores.shared import connect as connect_redis
from switchyard.server.streaming import Assembler, parse_chunk
from switchyard.server.traffic.outcome_service import AfterResponse, OutcomeService
from switchyard.server.traffic.recorder import Recorder
from switchyard.server.traffic.writer import TrafficLog
from switchyard.server.upstream.retry import NativeHandle, StreamHandle, Upstream

if TYPE_CHECKING:
    from switchyard.compaction import Compaction, Compactor
    from switchyard.retrieval import Hit, Index
    from switchyard.router import Router

logger = logging.getLogger(__name__)
S = TypeVar("S", bound=LoggedStream)
RECALL_HEADER = "[switchyard recall] Stored context that may be relevant to the latest turn:"


class Pipeline:
    def __init__(
        self,
        config: Config,
        *,
        upstream: Upstream,
        router: Router,
        log: TrafficLog | None,
        compactor: Compactor | None = None,
        retrieval: Index | None = None,
        database: Database | None = None,
        redis: Any = None,
    ) -> None:
        self.config = config
        self.upstream = upstream
        self.router = router
        self.log = log
        self.compactor = compactor
        self.retrieval = retrieval
        # Dense catch-up of chunks a compaction stored, off the request path, per namespace.
        self.catch_ups: dict[str, asyncio.Task[None]] = {}
        self.background_dense = True
        self._known = {**config.models.group_of(), "thinking": "thinking",
                       "non_thinking": "non_thinking"}
        # The edge guard (server/security.py) of both doors shares these three.
        self.metrics = Metrics()
        self.recorder = Recorder(log, self.metrics, log_bodies=config.server.log_bodies)
        self.cascade = Cascade(config, upstream)
        self.explorer = Explorer(config.outcomes.exploration_share, config.outcomes.seed)
        self.outcomes = OutcomeService(  # verifiers and shadow calls
            config.outcomes, chat=self.chat,
            record_outcome=log.record_outcome if log is not None else None)
        self.database = database  # PostgreSQL shared by replicas (server/stores/), or None
        self.redis = redis
        limits = config.limits
        self.limiter: ConcurrencyLimiter | RedisLimiter = ConcurrencyLimiter(
            limits.max_concurrent_per_key, limits.max_requests_per_minute_per_key)
        self.cooldowns: SharedCooldowns | None = None
        if redis is not None:
            self.limiter = RedisLimiter(redis, limits.max_concurrent_per_key,
                                        config.upstream.request_timeout + 60,
                                        limits.max_requests_per_minute_per_key)
            self.cooldowns = SharedCooldowns(redis, upstream.cool)
            upstream.on_cooldown = self.cooldowns.cool
        self.auth = Authenticator.from_config(
            config, PgKeyStore(database) if database is not None else None)

    @classmethod
    def from_config(cls, config: Config, **upstream_kwargs: Any) -> Pipeline:
        from switchyard.retrieval import Index
        from switchyard.router import load_router

        groups = config.models.group_of()
        router = load_router(
            config.routing.router,
            checkpoint=config.routing.checkpoint,
            thinking_share=config.routing.thinking_share,
            default_group=config.routing.default_group,
            known_models=groups,
        )
        url = config.server.database_url
        database = Database(url) if url else None
        log = _open_log(config, database)
        store = PgChunkStore(database) if database is not None else None
        return cls(
            config,
            upstream=Upstream(config, **upstream_kwargs),
            router=router,
            log=log,
            compactor=_load_compactor(config),
            retrieval=Index.open(config.server.data_dir / "chunks", store=store),
            database=database,
            redis=connect_redis(config.server.redis_url) if config.server.redis_url else None,
        )

    async def start(self) -> None:
        """What needs the running loop: listening for other replicas' cooldowns."""
        if self.cooldowns is not None:
            await self.cooldowns.start()

    async def aclose(self) -> None:
        await asyncio.gather(*self.catch_ups.values(), return_exceptions=True)
        await self.outcomes.aclose()
        await self.upstream.aclose()
        self.auth.close()
        if self.log is not None:
            self.log.close()
        if self.retrieval is not None:
            self.retrieval.close()
        if self.cooldowns is not None:
            await self.cooldowns.aclose()
        if self.redis is not None:
            await self.redis.aclose()
        if self.database is not None:
            self.database.close()

    # -- chat --------------------------------------------------------------------------
    async def chat(self, request: ChatRequest) -> ChatResult:
        started = time.monotonic()
        request = self._identify(request)
        record = self.recorder.open(request)
        prepared = _unprepared(request, started)
        try:
            await self.prepare(prepared)
            body = self._upstream_body(prepared)
            t0 = time.monotonic()
            if self.cascade.applies(prepared.request):  # the alias resolved
                outcome = await self.cascade.complete(prepared, body)
            else:
                outcome = await self.upstream.complete(body, prepared.decision, request.deadline)
            prepared.stage_ms["upstream"] = _ms(t0)
            result = self._result(prepared, outcome.body, outcome.deployment, outcome.attempts)
        except BaseException as exc:
            await self.recorder.failure(record, exc, started, prepared)
            raise
        await self.recorder.success(record, prepared, result, started)
        self.outcomes.after_response(request, result, record)  # background, never awaited
        return result

    async def open_stream(self, request: ChatRequest) -> ChatStream:
        async def call(p: Prepared) -> StreamHandle:
            body = self._upstream_body(p)
            body["stream_options"] = {"include_usage": True}  # we always need usage to log
            if self.cascade.applies(p.request):  # the draft is buffered, not streamed
                return await self.cascade.open_stream(p, body)
            return await self.upstream.open_stream(body, p.decision, p.request.deadline)

        return await self._open(request, call, ChatStream)

    async def open_native(self, request: ChatRequest,
                          body: Callable[[list[Message] | None], dict[str, Any]]
                          ) -> NativeStream:
        """A request for a deployment's own API (server/native.py): admitted, compacted,
        recalled and routed like any other; then `body(messages)` goes to a deployment with
        `responses_api: true`. `messages` is None when the history came through unchanged."""
        async def call(p: Prepared) -> NativeHandle:
            changed = p.messages != p.request.messages
            return await self.upstream.open_native(body(p.messages if changed else None),
                                                   p.decision, p.request.deadline)

        return await self._open(request, call, NativeStream)

    async def _open(self, request: ChatRequest, call: Callable[[Prepared], Awaitable[Any]],
                    kind: Callable[..., S]) -> S:
        """Prepare, open the upstream answer with `call`, and hand it to a stream of `kind`,
        which writes the log row when it ends (the row is written here if opening fails)."""
        started = time.monotonic()
        request = self._identify(request)
        record = self.recorder.open(request)
        prepared = _unprepared(request, started)
        try:
            await self.prepare(prepared)
            t0 = time.monotonic()
            handle = await call(prepared)
            prepared.stage_ms["upstream_first_chunk"] = _ms(t0)
        except BaseException as exc:
            await self.recorder.failure(record, exc, started, prepared)
            raise
        return kind(prepared, handle, record, started, recorder=self.recorder,
                    price=self.config.price_of(handle.deployment),
                    after_response=self.outcomes.after_response)

    # -- stages ------------------------------------------------------------------------
    async def prepare(self, prepared: Prepared) -> None:
        """Run the stages in place, so a failure still finds what the earlier ones decided."""
        prepared.request = self._resolve_alias(prepared.request)
        for name, stage in (("admit", self._admit), ("compact", self._compact),
                            ("recall", self._recall), ("route", self._route)):
            t0 = time.monotonic()
            await stage(prepared)
            prepared.stage_ms[name] = _ms(t0)
        prepared.decision, prepared.propensity, prepared.explored = \
            self.explorer.explore(prepared.decision)

    async def prepare_only(self, request: ChatRequest) -> Prepared:
        """The stages for a request no upstream will see (the warm-up runs each path once)."""
        prepared = _unprepared(self._identify(request), time.monotonic())
        await self.prepare(prepared)
        return prepared

    async def _admit(self, p: Prepared) -> None:
        req, limits = p.request, self.config.limits
        if len(req.messages) > limits.max_messages:
            raise PayloadTooLarge(
                f"{len(req.messages)} messages exceed the limit max_messages={limits.max_messages}",
                param="messages", code="max_messages")
        if req.model != AUTO_MODEL and req.model not in self._known:
            raise NotFound(
                f"The model {req.model!r} does not exist here; use {AUTO_MODEL!r} or one of: "
                f"{', '.join(sorted(self._known))}", param="model", code="model_not_found")
        p.tokens_before = p.tokens_after = count_message_tokens(p.messages, self._encoding_model())
        if p.tokens_before > limits.max_total_tokens:
            raise PayloadTooLarge(
                f"the request has {p.tokens_before} tokens, over the limit "
                f"max_total_tokens={limits.max_total_tokens}", param="messages",
                code="max_total_tokens")

    async def _compact(self, p: Prepared) -> None:
        if self.compactor is None:
            return
        from switchyard.compaction import CompactionPolicy

        settings = self.config.compaction
        policy = CompactionPolicy(trigger_share=settings.trigger_share,
                                  target_share=settings.target_share)
        budget = policy.budget_for(p.tokens_before, self._context_window(p.request),
                                   p.request.compact_budget)
        if budget is None:
            return
        result = await self._run_compaction(p.messages, budget, p.request.session_id)
        p.messages = list(result.messages)
        p.tokens_after = result.tokens_after
        p.dropped_ids = list(result.dropped_ids)
        if p.dropped_ids:
            self._catch_up_dense(p.request.session_id)

    def _catch_up_dense(self, namespace: str) -> None:
        """Encode the chunks just stored, in the background: this request's recall searches
        them by BM25 and grep at once, and the next ones by dense too."""
        if self.retrieval is None or not self.background_dense or namespace in self.catch_ups:
            return
        task = asyncio.get_running_loop().create_task(
            asyncio.to_thread(self.retrieval.catch_up_dense, namespace))
        self.catch_ups[namespace] = task
        task.add_done_callback(lambda _: self.catch_ups.pop(namespace, None))

    async def _recall(self, p: Prepared) -> None:
        settings = self.config.recall
        if self.retrieval is None or not settings.enabled or settings.token_budget == 0:
            return
        namespaces = [ns for ns in (p.request.session_id, *settings.corpora)
                      if self.retrieval.has_chunks(ns)]
        query = latest_user_text(p.messages)
        if not namespaces or not query.strip():
            return
        # encode_limit=0: chunks stored moments ago are encoded in the background
        # (_catch_up_dense), not on this request's time.
        hits = await asyncio.to_thread(self.retrieval.search, query[:2000], namespaces=namespaces,
                                       k=settings.k, mode="hybrid", encode_limit=0)
        present = "\n".join(m.content or "" for m in p.messages)
        block, used = _recall_block(hits, settings.token_budget, present, self._encoding_model())
        if not used:
            return
        last_user = max(i for i, m in enumerate(p.messages) if m.role == "user")
        p.messages.insert(last_user, Message("system", block))
        p.recalled_ids = used
        p.tokens_after = count_message_tokens(p.messages, self._encoding_model())

    async def _route(self, p: Prepared) -> None:
        req = p.request
        overrides = req.overrides
        if req.model != AUTO_MODEL:
            overrides = replace(overrides, model=req.model)
        route_request = RouteRequest(p.messages, req.tools, overrides,
                                     req.params.response_format_type)
        # Inline, not in a thread: a decision is ~0.1 ms cached and ~2 ms for a new 5k-token
        # turn (numpy), while a worker thread waits up to the 5 ms GIL switch interval.
        p.decision = self.router.decide(route_request)

    # -- component RPCs (Route, Compact, Recall, Index, Feedback) ------------------------
    async def route(self, request: ChatRequest) -> RouteDecision:
        prepared = Prepared(self._resolve_alias(self._identify(request)), list(request.messages),
                            _placeholder_decision(), 0, 0)
        await self._admit(prepared)
        await self._route(prepared)
        return prepared.decision

    async def compact(self, messages: list[Message], *, budget: int | None, model: str | None,
                      session_id: str) -> Compaction:
        if self.compactor is None:
            raise NotImplementedYet("Compact needs compaction enabled (compaction.enabled: true)")
        from switchyard.compaction import CompactionPolicy

        if budget is None:
            window = self._deployment_window(model)
            tokens = count_message_tokens(messages, model)
            settings = self.config.compaction
            policy = CompactionPolicy(trigger_share=settings.trigger_share,
                                      target_share=settings.target_share)
            budget = policy.budget_for(tokens, window, None)
            if budget is None:
                budget = tokens  # under the trigger: nothing to do, the compactor keeps all
        session = session_id or _derive_session(messages)
        return await self._run_compaction(messages, budget, session, model)

    async def recall(self, query: str, *, namespaces: list[str], k: int,
                     mode: str) -> list[Hit]:
        index = self._require_index()
        # A namespace being encoded in the background is searched as encoded so far, rather
        # than encoded a second time on this call.
        limit = 0 if any(ns in self.catch_ups for ns in namespaces) else None
        return await asyncio.to_thread(index.search, query, namespaces=namespaces, k=k,
                                       mode=mode, encode_limit=limit)  # type: ignore[arg-type]

    async def index(self, namespace: str,
                              documents: Sequence[tuple[str, str]]) -> list[str]:
        from switchyard.core.tokens import count_tokens
        from switchyard.retrieval.chunk import Chunk, chunk_id

        if not namespace:
            raise InvalidRequest("namespace must not be empty", param="namespace")
        chunks = [Chunk(chunk_id(namespace, text, source, i), namespace, text, source=source,
                        tokens=count_tokens(text))
                  for i, (text, source) in enumerate(documents)]
        index = self._require_index()
        return await asyncio.to_thread(index.add, chunks)

    async def feedback(self, request_id: str, *, label: str | None, score: float | None,
                       source: str, weight: float) -> bool:
        """Attach an outcome to a logged request; True when new, False when it replaced one
        from the same source (idempotent by request id + source)."""
        from switchyard.core.errors import OutcomeError
        from switchyard.core.trafficlog.outcomes import Outcome, UnknownRequest

        if self.log is None:
            raise NotImplementedYet("Feedback needs the traffic log; set "
                                    "server.log_requests: true")
        try:
            outcome = Outcome(request_id, source, label, score, weight)  # type: ignore[arg-type]
            return await self.outcomes.record(outcome)
        except UnknownRequest as exc:
            raise NotFound(exc.message, param="request_id", code="request_not_found") from None
        except OutcomeError as exc:
            raise InvalidRequest(exc.message, param=exc.param) from None

    # -- helpers -----------------------------------------------------------------------
    def _require_index(self) -> Index:
        if self.retrieval is None:
            raise NotImplementedYet("retrieval is not available in this server")
        return self.retrieval

    async def _run_compaction(self, messages: Sequence[Message], budget: int, session: str,
                              model: str | None = None) -> Compaction:
        assert self.compactor is not None
        model = model or self._encoding_model()
        if self.config.compaction.abstractive_summary:
            return await self.compactor.acompact(messages, budget, model=model, namespace=session,
                                                 sink=self.retrieval, summarize=self._summarize)
        return await asyncio.to_thread(self.compactor.compact, messages, budget, model=model,
                                       namespace=session, sink=self.retrieval)

    async def _summarize(self, text: str) -> str:
        """Abstractive summary of dropped history through the non-thinking model."""
        decision = RouteDecision("non_thinking", False, None, None, None, "summary",
                                 "compaction summary")
        body = {"messages": [
            {"role": "system", "content": "Summarise this agent history in at most 120 words. "
             "Keep identifiers, file paths, numbers and error messages verbatim."},
            {"role": "user", "content": text[:60_000]}], "max_tokens": 300}
        outcome = await self.upstream.complete(body, decision, None)
        return str(outcome.body["choices"][0]["message"].get("content") or "")

    def _identify(self, request: ChatRequest) -> ChatRequest:
        if not (request.request_id and request.session_id):
            request = replace(
                request, request_id=request.request_id or f"req_{uuid.uuid4().hex[:24]}",
                session_id=request.session_id or _derive_session(request.messages))
        if REQUEST_ID.get() is None:  # gRPC calls: the HTTP edge guard sets it for HTTP
            REQUEST_ID.set(request.request_id)
        return request

    def _resolve_alias(self, request: ChatRequest) -> ChatRequest:
        """A model name the config does not know, mapped by `aliases` (e.g. Claude Code's
        `claude-*` defaults -> switchyard/auto); the log keeps the name the caller sent."""
        if request.model == AUTO_MODEL or request.model in self._known:
            return request
        target = self.config.alias_for(request.model)
        return request if target is None else replace(request, model=target)

    def count_tokens(self, messages: Sequence[Message],
                     tools: Sequence[ToolDefinition] = ()) -> int:
        """Prompt tokens as admission counts them, plus the tool schemas (count_tokens APIs)."""
        from switchyard.core.tokens import count_tokens

        model = self._encoding_model()
        schemas = json.dumps([t.to_openai() for t in tools]) if tools else ""
        return count_message_tokens(messages, model) + (count_tokens(schemas, model)
                                                        if schemas else 0)

    def _encoding_model(self) -> str:
        return self.config.models.non_thinking[0].model

    def _deployment_window(self, model: str | None) -> int:
        for d in self.config.models.all():
            if model in (d.public_name, d.model):
                return d.context_window
        return self._context_window(None)

    def _context_window(self, request: ChatRequest | None) -> int:
        """The smaller window of the candidate models (DESIGN: compact for the smaller)."""
        if request is not None and request.model not in (AUTO_MODEL, "thinking", "non_thinking"):
            return self._deployment_window(request.model)
        models = self.config.models
        return min(d.context_window for d in (*models.thinking, *models.non_thinking))

    def _upstream_body(self, p: Prepared) -> dict[str, Any]:
        body: dict[str, Any] = {"messages": to_openai_messages(p.messages)}
        body.update(p.request.params.to_openai())
        if p.request.tools:
            body["tools"] = [t.to_openai() for t in p.request.tools]
        return body

    def _result(self, p: Prepared, body: dict[str, Any], deployment: Deployment,
                attempts: list[Attempt]) -> ChatResult:
        choice = body["choices"][0]
        try:
            message = Message.from_openai(choice.get("message") or {"role": "assistant"})
        except ValueError as exc:
            raise UpstreamError(f"model {deployment.public_name!r} sent an invalid message: "
                                f"{exc}") from None
        usage = Usage.from_openai(body.get("usage"))
        return ChatResult(
            request_id=p.request.request_id, session_id=p.request.session_id,
            model=str(body.get("model") or deployment.model), message=message,
            finish_reason=str(choice.get("finish_reason") or "stop"), usage=usage,
            decision=p.decision, created=int(time.time()), tokens_before=p.tokens_before,
            tokens_after=p.tokens_after, attempts=tuple(attempts),
            cost_usd=self.config.price_of(deployment).cost_usd(usage.prompt_tokens,
                                                               usage.completion_tokens),
            reasoning=str((choice.get("message") or {}).get("reasoning_content") or ""))


class ChatStream(LoggedStream):
    """A streaming response: metadata up front, deltas as they arrive, one log row at the end."""

    def __init__(self, prepared: Prepared, handle: StreamHandle, record: TrafficRecord,
                 started: float, *, recorder: Recorder, price: Price,
                 after_response: AfterResponse) -> None:
        super().__init__(prepared, handle.batches, handle.deployment, handle.attempts, record,
                         started, recorder=recorder, price=price, after_response=after_response)
        self._handle = handle
        self._assembler = Assembler()

    def __aiter__(self) -> AsyncIterator[StreamDelta]:
        return self._deltas()

    async def _deltas(self) -> AsyncIterator[StreamDelta]:
        async for batch in self.batches():
            for delta in batch:
                yield delta

    async def batches(self) -> AsyncIterator[list[StreamDelta]]:
        """Deltas grouped as they arrived from upstream (one network read per list)."""
        try:
            async for chunks in self._handle.batches:
                deltas = [parse_chunk(chunk) for chunk in chunks]
                for delta in deltas:
                    self._assembler.add(delta)
                yield deltas
        except BaseException as exc:
            await self._finish(exc)
            raise
        await self._finish(None)

    def _result(self) -> ChatResult:
        a = self._assembler
        return self._chat_result(a.model or self.deployment.model, a.message(),
                                 a.finish_reason or "stop", a.usage or Usage())


def _open_log(config: Config, database: Database | None) -> TrafficLog | None:
    """The data dir and the traffic log; a data dir we cannot write is a one-line ConfigError."""
    import sqlite3

    path = config.server.data_dir
    try:
        path.mkdir(parents=True, exist_ok=True)
        if not os.access(path, os.W_OK):
            raise PermissionError(13, "Permission denied")
        if not config.server.log_requests:
            return None
        if database is not None:
            return PgTrafficLog(database)
        return TrafficLog(config.server.traffic_log_path)
    except (OSError, sqlite3.Error) as exc:
        raise unusable_data_dir(path, exc) from None


def _load_compactor(config: Config) -> Compactor | None:
    """The configured compactor; a damaged checkpoint degrades to observation masking."""
    from switchyard.compaction import CheckpointError, CompactionOptions, Compactor

    if not config.compaction.enabled:
        return None
    try:
        return Compactor.load(options=CompactionOptions(
            strategy=config.compaction.strategy, ledger_share=config.compaction.ledger_share))
    except CheckpointError as exc:
        logger.warning("compactor checkpoint unusable (%s); compacting by observation masking",
                       exc)
        return Compactor.load(options=CompactionOptions(strategy="observation_mask"))


def _recall_block(hits: Sequence[Hit], budget: int, present: str,
                  model: str) -> tuple[str, list[str]]:
    from switchyard.core.tokens import count_tokens

    parts, used, spent = [RECALL_HEADER], [], count_tokens(RECALL_HEADER, model)
    for hit in hits:
        text = hit.chunk.text
        if text in present:
            continue  # already in the conversation
        where = hit.chunk.source or (f"message {hit.chunk.message_index}"
                                     if hit.chunk.message_index is not None else hit.chunk.namespace)
        part = f"--- chunk {hit.chunk_id} ({where}) ---\n{text}"
        cost = count_tokens(part, model)
        if spent + cost > budget:
            continue
        parts.append(part)
        used.append(hit.chunk_id)
        spent += cost
    return "\n".join(parts), used


def _derive_session(messages: Sequence[Message]) -> str:
    """Stable across the turns of one conversation: its system prompt and first user turn."""
    h = hashlib.blake2b(digest_size=8)
    seen = 0
    for m in messages:
        if m.role in ("system", "developer", "user"):
            h.update(m.role.encode() + b"\x00" + (m.content or "").encode() + b"\x00")
            seen += m.role == "user"
            if seen:
                break
    return f"s_{h.hexdigest()}"


def _unprepared(request: ChatRequest, started: float) -> Prepared:
    return Prepared(request, list(request.messages), _placeholder_decision(), 0, 0,
                    started_at=started)


def _placeholder_decision() -> RouteDecision:
    return RouteDecision("", False, None, None, None, "", "not routed yet")


def _ms(started: float) -> float:
    return (time.monotonic() - started) * 1000
