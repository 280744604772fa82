"""Ready means warm: the server says SERVING only after every request path has run once.

`/healthz` is liveness (the process answers). Readiness (`/readyz`, gRPC health) waits for a
background warm-up that loads what the first requests would otherwise load on their own
time (the ONNX encoder, the router's token table, tiktoken's ranks, the compactor's
scorer, the saved indexes) and runs the chat, compaction and recall paths once on a
synthetic agent history, against a scratch index so nothing lands in the caller's data.
Until then a request waits (`server.before_ready: wait`, at most `ready_timeout_s`) or gets
503 with `retry-after` (`reject`).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from switchyard.core.messages import Message
from switchyard.server.config import AUTO_MODEL, Config
from switchyard.server.errors import NotReady
from switchyard.server.pipeline_types import ChatRequest
from switchyard.server.security import GATEWAY_PREFIX

if TYPE_CHECKING:
    import grpc
    from switchyard.server.pipeline import Pipeline

logger = logging.getLogger(__name__)
WARM_SESSION = "switchyard-warm-up"
WARM_DOCS = "switchyard-warm-up-docs"
MAX_WARM_NAMESPACES = 64  # saved indexes loaded ahead; the rest load on first use


@dataclass
class Readiness:
    """Shared by both doors: one warm-up per process; listeners hear when it is done."""

    enabled: bool = True  # False: ready as soon as the pipeline is built (tests, dev)
    wait: bool = True  # before ready: wait (True) or reject with 503 / UNAVAILABLE
    timeout_s: float = 30.0
    retry_after_s: int = 1
    steps_ms: dict[str, float] = field(default_factory=dict)
    seconds_to_ready: float | None = None
    error: str | None = None
    _event: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    _listeners: list[Callable[[], object]] = field(default_factory=list)
    _born: float = field(default_factory=time.monotonic)

    @classmethod
    def from_config(cls, config: Config) -> Readiness:
        s = config.server
        return cls(enabled=s.warm_up, wait=s.before_ready == "wait", timeout_s=s.ready_timeout_s)

    @property
    def ready(self) -> bool:
        return self._event.is_set()

    def on_ready(self, listener: Callable[[], object]) -> None:
        """Call `listener` (sync or async) once ready; at once when already ready."""
        if self.ready:
            _call(listener)
        else:
            self._listeners.append(listener)

    def start(self, pipeline: Pipeline) -> None:
        """Begin the warm-up in the background (idempotent); call it on the serving loop."""
        if self._task is None and not self.ready:
            self._task = asyncio.get_running_loop().create_task(self._run(pipeline))

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def admit(self) -> None:
        """Before a request runs: return when ready, or wait, or raise `NotReady`."""
        if self.ready:
            return
        if self.wait:
            try:
                await asyncio.wait_for(self._event.wait(), self.timeout_s)
                return
            except TimeoutError:
                pass
        raise NotReady("the server is warming up; retry shortly",
                       retry_after=self.retry_after_s)

    def status(self) -> dict[str, object]:
        return {"status": "ready" if self.ready else "warming",
                "seconds_to_ready": self.seconds_to_ready, "warm_up_ms": self.steps_ms,
                "warm_up_error": self.error}

    async def _run(self, pipeline: Pipeline) -> None:
        if self.enabled:
            try:
                self.steps_ms = await warm_up(pipeline)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a failed warm-up must not stop serving
                # Serving still works (each path loads on first use); say so, once.
                self.error = f"{type(exc).__name__}: {exc}"
                logger.warning("warm-up failed (%s); serving cold", self.error)
        self.seconds_to_ready = round(time.monotonic() - self._born, 3)
        self._event.set()
        logger.info("ready in %.2f s (warm-up ms: %s)", self.seconds_to_ready, self.steps_ms)
        for listener in self._listeners:
            _call(listener)
        self._listeners.clear()


def _call(listener: Callable[[], object]) -> None:
    result = listener()
    if asyncio.iscoroutine(result):
        asyncio.get_running_loop().create_task(result)


async def warm_up(pipeline: Pipeline) -> dict[str, float]:
    """Run each request path once; milliseconds per step."""
    steps: dict[str, float] = {}

    async def step(name: str, coro_fn: Callable[[], object]) -> None:
        t0 = time.monotonic()
        result = coro_fn()
        if asyncio.iscoroutine(result):
            await result
        steps[name] = round((time.monotonic() - t0) * 1000, 1)

    if pipeline.retrieval is not None:
        from switchyard.retrieval.embedding import get_encoder

        await step("encoder", lambda: asyncio.to_thread(get_encoder().encode, ["warm up"]))
        await step("indexes", lambda: asyncio.to_thread(_load_indexes, pipeline))
    with tempfile.TemporaryDirectory(prefix="switchyard-warm-") as tmp:
        scratch = _scratch_pipeline(pipeline, Path(tmp))
        try:
            await step("short_chat", lambda: scratch.prepare_only(_request(_short_history())))
            # Long enough to compact, recall and route an agent history; small enough that
            # encoding its dropped chunks does not dominate the time to ready.
            await step("long_chat", lambda: scratch.prepare_only(_request(
                _agent_history(4_000), compact_budget=1_000)))
            if scratch.retrieval is not None:  # the Index and Recall RPCs' path
                await scratch.index(WARM_DOCS, [(m.content or "", "warm-up")
                                                for m in _agent_history(1_000)[2:6]])
                await step("recall", lambda: scratch.recall(
                    "where is parse_config defined", namespaces=[WARM_DOCS], k=10,
                    mode="hybrid"))
        finally:
            if scratch.retrieval is not None and scratch.retrieval is not pipeline.retrieval:
                scratch.retrieval.close()
    return steps


def _load_indexes(pipeline: Pipeline) -> None:
    """Saved BM25, grep and FAISS indexes of the corpora and recent sessions, into memory."""
    index = pipeline.retrieval
    assert index is not None
    names = list(dict.fromkeys([*pipeline.config.recall.corpora, *index.namespaces()]))
    for namespace in names[:MAX_WARM_NAMESPACES]:
        if index.has_chunks(namespace):
            index.search("warm up", namespaces=[namespace], k=1, mode="hybrid")


def _scratch_pipeline(pipeline: Pipeline, folder: Path) -> Pipeline:
    """The same router, compactor and encoder, with a throwaway chunk store and no log."""
    scratch = copy.copy(pipeline)
    scratch.log = None
    scratch.catch_ups = {}
    scratch.background_dense = False  # the encoder is warm; its chunks need no vectors
    if pipeline.retrieval is not None:
        from switchyard.retrieval import Index

        scratch.retrieval = Index.open(folder, pipeline.retrieval.config)
    return scratch


def _request(messages: list[Message], compact_budget: int | None = None) -> ChatRequest:
    return ChatRequest(messages=messages, model=AUTO_MODEL, session_id=WARM_SESSION,
                       compact_budget=compact_budget, request_id="warm-up")


def _short_history() -> list[Message]:
    return [Message("system", "You are a helpful assistant."),
            Message("user", "What is the capital of France?")]


def _agent_history(tokens: int) -> list[Message]:
    """A coding agent's transcript of about `tokens` tokens: tool calls, file reads, errors."""
    messages = [Message("system", "You are a coding agent. Use the tools to fix the bug."),
                Message("user", "The config loader crashes on empty files; fix parse_config.")]
    step, size = 0, 0
    while size < tokens * 4:  # ~4 characters a token for code and logs
        body = "\n".join(
            f"    def handler_{step}_{i}(self, path: str) -> dict:  # src/app/mod_{step}.py:{i}\n"
            f"        return load(path, retries={i}, key='k{step}{i}')" for i in range(12))
        messages += [
            Message("assistant", f"Reading src/app/mod_{step}.py to find parse_config."),
            Message("user", f"[tool output]\n{body}\nValueError: empty file at line {step}"),
        ]
        size += len(body) + 120
        step += 1
    messages.append(Message("user", "Now, where is parse_config defined?"))
    return messages


class ReadinessGate:
    """ASGI middleware: `/v1/*` requests pass once ready (wait or 503 + retry-after)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            try:
                await scope["app"].state.readiness.admit()
            except NotReady as exc:
                response = JSONResponse(exc.to_openai(), status_code=exc.status,
                                        headers={"retry-after": str(exc.retry_after)})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def grpc_gate(readiness: Readiness) -> grpc.aio.ServerInterceptor:
    """The gRPC side: Gateway RPCs pass once ready (wait, or UNAVAILABLE + retry-after)."""
    import grpc

    class ReadinessInterceptor(grpc.aio.ServerInterceptor):
        async def intercept_service(self, continuation: Any, details: Any) -> Any:
            handler = await continuation(details)
            if handler is None or not details.method.startswith(GATEWAY_PREFIX):
                return handler
            try:
                await readiness.admit()
            except NotReady as exc:
                return _unavailable(handler, exc)
            return handler

    return ReadinessInterceptor()


def _unavailable(handler: Any, exc: NotReady) -> Any:
    import grpc

    trailer = (("retry-after", str(exc.retry_after)),)

    async def unary(request: Any, context: Any) -> Any:
        await context.abort(grpc.StatusCode.UNAVAILABLE, exc.message, trailer)

    async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
        await context.abort(grpc.StatusCode.UNAVAILABLE, exc.message, trailer)
        yield  # pragma: no cover - abort raises; this makes it an async generator

    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(stream)
    return grpc.unary_unary_rpc_method_handler(unary)
