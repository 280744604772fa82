"""The two transports' edges: HTTP status and aiohttp errors of the OpenAI-compatible
transport mapped to `UpstreamError`s, and the LiteLLM transport for every other provider."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal

import aiohttp
import httpx
from switchyard.server.config import Deployment
from switchyard.server.errors import (
    MissingCredentials,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
)


class map_transport_errors:
    """Translate aiohttp exceptions into UpstreamError once, at the transport boundary."""

    def __init__(self, d: Deployment) -> None:
        self.d = d

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: object, exc: BaseException | None,
                 tb: object) -> Literal[False]:
        if exc is None or not isinstance(exc, (aiohttp.ClientError, asyncio.TimeoutError)):
            return False
        name = self.d.public_name
        if isinstance(exc, aiohttp.ClientPayloadError):
            raise UpstreamError(f"the response from model {name!r} broke off mid-way",
                                code="stream_error") from None
        if isinstance(exc, asyncio.TimeoutError):
            raise UpstreamTimeout(f"model {name!r} did not answer in time") from None
        raise UpstreamError(f"cannot reach model {name!r}: {type(exc).__name__}") from None


def raise_for_status(d: Deployment, status: int, headers: Mapping[str, str],
                      content: bytes) -> None:
    if status == 200:
        return
    message, code = _error_detail(content)
    text = f"model {d.public_name!r} answered {status}: {message}"
    if status == 429:
        raise UpstreamRateLimited(text, code=code or "rate_limit_exceeded",
                                  retry_after=_retry_after(headers), upstream_status=status)
    if status in (401, 403):
        raise MissingCredentials(text, code=code or "invalid_api_key", upstream_status=status)
    if status in (408, 409) or status >= 500:
        raise UpstreamError(text, code=code, upstream_status=status)
    raise UpstreamRejected(text, code=code, upstream_status=status)


def _error_detail(content: bytes) -> tuple[str, str | None]:
    try:
        err = json.loads(content).get("error") or {}
        return str(err.get("message") or "")[:500], err.get("code")
    except (ValueError, AttributeError):
        return content[:200].decode(errors="replace"), None


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


# -- LiteLLM transport -------------------------------------------------------------------
def _litellm() -> Any:
    # LiteLLM fetches a price map over the network at import unless told not to.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    return litellm


def _litellm_kwargs(d: Deployment, payload: dict[str, Any], timeout: float,
                    api_key: str | None) -> dict[str, Any]:
    kwargs = dict(payload)
    kwargs.update(timeout=timeout, num_retries=0, drop_params=True)
    if d.api_base:
        kwargs["api_base"] = d.api_base
    if api_key:
        kwargs["api_key"] = api_key
    return kwargs


def _map_litellm_error(d: Deployment, exc: Exception) -> UpstreamError:
    litellm = _litellm()
    name = d.public_name
    status = getattr(exc, "status_code", None)
    text = f"model {name!r}: {getattr(exc, 'message', str(exc))[:500]}"
    if isinstance(exc, litellm.Timeout):
        return UpstreamTimeout(text, upstream_status=status)
    if isinstance(exc, litellm.RateLimitError):
        return UpstreamRateLimited(text, upstream_status=status, code="rate_limit_exceeded")
    if isinstance(exc, litellm.AuthenticationError):
        return MissingCredentials(text, upstream_status=status, code="invalid_api_key")
    if isinstance(exc, litellm.ContextWindowExceededError):
        return UpstreamRejected(text, upstream_status=status, code="context_length_exceeded")
    if isinstance(exc, (litellm.BadRequestError, litellm.NotFoundError)):
        return UpstreamRejected(text, upstream_status=status)
    return UpstreamError(text, upstream_status=status)


async def litellm_complete(d: Deployment, payload: dict[str, Any], timeout: float,
                            api_key: str | None) -> dict[str, Any]:
    import openai  # litellm's exceptions derive from the openai SDK's

    litellm = _litellm()
    try:
        response = await litellm.acompletion(**_litellm_kwargs(d, payload, timeout, api_key))
    except (openai.OpenAIError, httpx.HTTPError) as exc:
        raise _map_litellm_error(d, exc) from None
    return response.model_dump(exclude_none=True)


async def litellm_stream(d: Deployment, payload: dict[str, Any], timeout: float,
                          api_key: str | None) -> AsyncIterator[list[dict[str, Any]]]:
    import openai

    litellm = _litellm()
    try:
        response = await litellm.acompletion(**_litellm_kwargs(d, payload, timeout, api_key))
        async for chunk in response:
            yield [chunk.model_dump(exclude_none=True)]
    except (openai.OpenAIError, httpx.HTTPError) as exc:
        raise _map_litellm_error(d, exc) from None
