"""The read-only endpoints: `/v1/models`, `/healthz`, `/readyz`, `/metrics`, `/openapi.json`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from switchyard.server.config import AUTO_MODEL, Config
from switchyard.server.http.common import json_response
from switchyard.server.pipeline import Pipeline
from switchyard.server.readiness import Readiness


async def list_models(request: Request) -> Response:
    config: Config = request.app.state.config
    ids = [AUTO_MODEL, "thinking", "non_thinking",
           *(d.public_name for d in config.models.all())]
    data = [{"id": i, "object": "model", "created": 0, "owned_by": "switchyard"} for i in ids]
    return json_response({"object": "list", "data": data}, 200, {})


async def healthz(request: Request) -> Response:
    pipeline: Pipeline = request.app.state.pipeline
    return json_response({"status": "ok", "router": type(pipeline.router).__name__}, 200, {})


async def readyz(request: Request) -> Response:
    """200 once warm (every request path ran once), else 503 with retry-after."""
    readiness: Readiness = request.app.state.readiness
    if readiness.ready:
        return json_response(readiness.status(), 200, {})
    return json_response(readiness.status(), 503,
                         {"retry-after": str(readiness.retry_after_s)})


async def metrics(request: Request) -> Response:
    from switchyard.server.prometheus import CONTENT_TYPE

    pipeline: Pipeline = request.app.state.pipeline
    return Response(pipeline.metrics.render(), media_type=CONTENT_TYPE)


async def openapi_schema(request: Request) -> Response:
    from switchyard.server.http.openapi import openapi_schema as build

    return json_response(build(), 200, {})
