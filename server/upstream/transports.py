"""The two transports: OpenAI-compatible deployments over one pooled aiohttp session, every
other provider through LiteLLM. Each maps its failures to `UpstreamError`s, once, here."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal

import aiohttp
import httpx
from switchyard.core.litellm_loader import load_litellm
from switchyard.server.config import Deployment
from switchyard.server.errors import (
    MissingCredentials,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
)
from switchyard.server.upstream.sse import SSEReader

OPENAI_API_BASE = "https://api.openai.com/v1"


class _map_transport_errors:
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


def _raise_for_status(d: Deployment, status: int, headers: Mapping[str, str],
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


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


# -- OpenAI-compatible transport -------------------------------------------------------
class OpenAITransport:
    """OpenAI-compatible deployments, called directly over one pooled aiohttp session."""

    def __init__(self) -> None:
        self._http: aiohttp.ClientSession | None = None

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()

    def _session(self) -> aiohttp.ClientSession:
        # Created on first use, inside the running loop that will own it.
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=512, keepalive_timeout=30,
                                               enable_cleanup_closed=True),
                json_serialize=_dumps, auto_decompress=True)
        return self._http

    def _target(self, d: Deployment, payload: dict[str, Any], key: str | None,
                path: str = "/chat/completions") -> tuple[str, dict[str, str]]:
        if key is None and d.api_base is None:
            raise MissingCredentials(
                f"model {d.public_name!r} has no credentials: set api_key_env (e.g. "
                "OPENAI_API_KEY) or api_base for a local server", code="missing_credentials")
        payload["model"] = d.model.split("/", 1)[1] if "/" in d.model else d.model
        headers = {"authorization": f"Bearer {key}"} if key else {}
        return (d.api_base or OPENAI_API_BASE).rstrip("/") + path, headers

    async def complete(self, d: Deployment, payload: dict[str, Any], timeout: float,
                       api_key: str | None) -> dict[str, Any]:
        url, headers = self._target(d, payload, api_key)
        with _map_transport_errors(d):
            async with self._session().post(
                    url, json=payload, headers=headers,
                    timeout=aiohttp.ClientTimeout(total=timeout)) as response:
                content = await response.read()
        _raise_for_status(d, response.status, response.headers, content)
        try:
            data = json.loads(content)
        except ValueError:
            raise UpstreamError(f"model {d.public_name!r} sent a body that is not JSON",
                                upstream_status=response.status) from None
        if not isinstance(data, dict) or not data.get("choices"):
            raise UpstreamError(f"model {d.public_name!r} sent a response without choices",
                                upstream_status=response.status)
        return data

    @contextlib.asynccontextmanager
    async def _streaming_post(self, d: Deployment, payload: dict[str, Any], timeout: float,
                              api_key: str | None,
                              path: str) -> AsyncIterator[aiohttp.ClientResponse]:
        """An open 200 response to read from; other statuses and transport errors raise
        UpstreamError (also those that happen while the caller reads)."""
        url, headers = self._target(d, payload, api_key, path)
        with _map_transport_errors(d):
            async with self._session().post(
                    url, json=payload, headers=headers,
                    timeout=aiohttp.ClientTimeout(total=timeout)) as response:
                if response.status != 200:
                    _raise_for_status(d, response.status, response.headers,
                                      await response.read())
                yield response

    async def stream(self, d: Deployment, payload: dict[str, Any], timeout: float,
                     api_key: str | None) -> AsyncIterator[list[dict[str, Any]]]:
        async with self._streaming_post(d, payload, timeout, api_key,
                                        "/chat/completions") as response:
            events = SSEReader(d)
            async for data in response.content.iter_any():
                batch = events.feed(data)
                if batch:
                    yield batch
                if events.done:
                    return
            batch = events.feed(b"\n")  # a last line without its newline
            if batch:
                yield batch
            if not events.done:
                raise UpstreamError(f"the stream from model {d.public_name!r} ended early",
                                    code="stream_error")

    async def native(self, d: Deployment, payload: dict[str, Any], timeout: float,
                     api_key: str | None) -> AsyncIterator[bytes]:
        """The deployment's own /responses answer, bytes as they arrive (SSE or one JSON
        body); the first item is b"" once the status is known to be good."""
        async with self._streaming_post(d, payload, timeout, api_key,
                                        "/responses") as response:
            yield b""
            async for data in response.content.iter_any():
                yield data


# -- LiteLLM transport -------------------------------------------------------------------
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
    litellm = load_litellm()
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

    litellm = load_litellm()
    try:
        response = await litellm.acompletion(**_litellm_kwargs(d, payload, timeout, api_key))
    except (openai.OpenAIError, httpx.HTTPError) as exc:
        raise _map_litellm_error(d, exc) from None
    return response.model_dump(exclude_none=True)


async def litellm_stream(d: Deployment, payload: dict[str, Any], timeout: float,
                          api_key: str | None) -> AsyncIterator[list[dict[str, Any]]]:
    import openai

    litellm = load_litellm()
    try:
        response = await litellm.acompletion(**_litellm_kwargs(d, payload, timeout, api_key))
        async for chunk in response:
            yield [chunk.model_dump(exclude_none=True)]
    except (openai.OpenAIError, httpx.HTTPError) as exc:
        raise _map_litellm_error(d, exc) from None
