"""The HTTP app: routes, middleware and exception handlers.

Handlers parse, call the pipeline, and turn its result into a response. They never route,
compact, retrieve or write the log themselves.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from switchyard.server.config import Config
from switchyard.server.errors import SwitchyardError
from switchyard.server.http import feedback
from switchyard.server.http.chat_completions import chat_completions
from switchyard.server.http.common import error_response
from switchyard.server.http.info import healthz, list_models, metrics, openapi_schema, readyz
from switchyard.server.http.messages import endpoint as messages
from switchyard.server.http.responses import endpoint as responses
from switchyard.server.pipeline import Pipeline
from switchyard.server.readiness import Readiness, ReadinessGate
from switchyard.server.security import GuardMiddleware


def create_app(config: Config, pipeline: Pipeline | None = None,
               readiness: Readiness | None = None) -> Starlette:
    """The ASGI app. Without a pipeline, one is built from `config` at start-up; the warm-up
    (server/readiness.py) starts with the app, shared with gRPC when `readiness` is given."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        owned = pipeline is None
        app.state.pipeline = pipeline or Pipeline.from_config(config)
        if owned:
            await app.state.pipeline.start()
        app.state.readiness.start(app.state.pipeline)
        try:
            yield
        finally:
            await app.state.readiness.stop()
            if owned:
                await app.state.pipeline.aclose()

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/responses", responses.create_response, methods=["POST"]),
            Route("/v1/messages", messages.create_message, methods=["POST"]),
            Route("/v1/messages/count_tokens", messages.count_tokens, methods=["POST"]),
            Route("/v1/feedback", feedback.create_feedback, methods=["POST"]),
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/", healthz, methods=["GET", "HEAD"]),  # Claude Code's HEAD / reachability check
            Route("/metrics", metrics, methods=["GET"]),
            Route("/openapi.json", openapi_schema, methods=["GET"]),
        ],
        # request id, API key, per-key limit; then wait (or 503) until warm
        middleware=[Middleware(GuardMiddleware), Middleware(ReadinessGate)],
        exception_handlers={SwitchyardError: error_response, HTTPException: _http_error,
                            ClientDisconnect: _client_gone},
        lifespan=lifespan,
    )
    app.state.config = config
    app.state.readiness = readiness or Readiness.from_config(config)
    if pipeline is not None:
        app.state.pipeline = pipeline
    return app


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
    body = {"error": {"message": f"{request.method} {request.url.path}: {exc.detail}",
                      "type": kind, "param": None, "code": None}}
    return JSONResponse(body, status_code=exc.status_code)


async def _client_gone(request: Request, exc: Exception) -> Response:
    return Response(status_code=499)
