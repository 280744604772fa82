"""Stream assembly: OpenAI chunk dicts -> StreamDelta, and deltas -> the final message."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

from switchyard.core.messages import Message, ToolCall
from switchyard.server.pipeline_types import StreamDelta, ToolCallDelta, Usage


def parse_chunk(chunk: dict[str, Any]) -> StreamDelta:
    usage = Usage.from_openai(chunk["usage"]) if chunk.get("usage") else None
    choices = chunk.get("choices") or []
    if not choices:
        return StreamDelta(usage=usage, model=str(chunk.get("model") or ""))
    choice = choices[0]
    delta = choice.get("delta") or {}
    calls = tuple(
        ToolCallDelta(
            index=int(c.get("index", 0)),
            id=c.get("id"),
            name=(c.get("function") or {}).get("name"),
            arguments=(c.get("function") or {}).get("arguments") or "",
        )
        for c in delta.get("tool_calls") or ()
    )
    return StreamDelta(
        content=delta.get("content") or "",
        reasoning=delta.get("reasoning_content") or "",
        tool_calls=calls,
        finish_reason=choice.get("finish_reason"),
        usage=usage,
        model=str(chunk.get("model") or ""),
    )


@dataclass
class _CallParts:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass
class Assembler:
    """Accumulates deltas into the assistant message that the stream amounted to."""

    content: list[str] = field(default_factory=list)
    calls: dict[int, _CallParts] = field(default_factory=dict)
    finish_reason: str | None = None
    usage: Usage | None = None
    model: str = ""

    def add(self, delta: StreamDelta) -> None:
        if delta.content:
            self.content.append(delta.content)
        for c in delta.tool_calls:
            parts = self.calls.setdefault(c.index, _CallParts())
            parts.id = c.id or parts.id
            parts.name = c.name or parts.name
            parts.arguments.append(c.arguments)
        self.finish_reason = delta.finish_reason or self.finish_reason
        self.usage = delta.usage or self.usage
        self.model = delta.model or self.model

    def message(self) -> Message:
        calls = tuple(ToolCall(p.id, p.name, "".join(p.arguments))
                      for _, p in sorted(self.calls.items()))
        return Message("assistant", "".join(self.content) or None, tool_calls=calls)


async def merge_final(deltas: AsyncIterable[StreamDelta]) -> AsyncIterator[StreamDelta]:
    """The finish_reason and the usage on one last delta, as gateway.proto promises.

    OpenAI-style upstreams send them in two chunks (the usage chunk has no choices); a
    delta that only finishes waits for a usage-only delta right behind it and takes its usage.
    """
    held: StreamDelta | None = None
    async for delta in deltas:
        if held is not None:
            if delta.usage is not None and not _has_payload(delta) and not delta.finish_reason:
                yield replace(held, usage=delta.usage, model=delta.model or held.model)
                held = None
                continue
            yield held
            held = None
        if delta.finish_reason and delta.usage is None:
            held = delta
            continue
        yield delta
    if held is not None:
        yield held


def _has_payload(delta: StreamDelta) -> bool:
    return bool(delta.content or delta.reasoning or delta.tool_calls)
