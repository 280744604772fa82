"""`POST /v1/feedback`: attach an outcome (label and/or score) to a logged request.

Body: {"request_id": "...", "label": "pass", "score": 1.0, "source": "user", "weight": 1.0}.
Idempotent by request id + source; an unknown id answers 404.
"""

from __future__ import annotations

import json
import math

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator
from starlette.requests import Request
from starlette.responses import Response
from switchyard.server.errors import InvalidRequest, as_switchyard_error

MAX_BODY_BYTES = 64 * 1024


class FeedbackBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: str
    label: str | None = None
    score: float | None = None
    source: str = "user"
    weight: float = 1.0

    @field_validator("weight", "score")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value


async def create_feedback(request: Request) -> Response:
    pipeline = request.app.state.pipeline
    try:
        body = _parse(await _read(request))
        created = await pipeline.feedback(body.request_id, label=body.label, score=body.score,
                                          source=body.source, weight=body.weight)
    except Exception as exc:  # noqa: BLE001 - translated once, into the OpenAI error shape
        err = as_switchyard_error(exc)
        return _json(err.to_openai(), err.status)
    return _json({"object": "feedback", "request_id": body.request_id, "source": body.source,
                  "status": "created" if created else "replaced"}, 200)


async def _read(request: Request) -> bytes:
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise InvalidRequest(f"a feedback body must be under {MAX_BODY_BYTES} bytes")
    return raw


def _parse(raw: bytes) -> FeedbackBody:
    try:
        return FeedbackBody.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "body"
        raise InvalidRequest(f"feedback body: {where}: {err['msg']}", param=where) from None


def _json(body: dict[str, object], status: int) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status_code=status,
                    media_type="application/json")
