"""OpenAI chat messages as typed values: the one definition every component shares.

retrieval/ is the base layer that router/ and compaction/ may import, so the chat types live
here. Wire parsing (`Message.from_openai`) and wire output (`Message.to_openai`) are the only
places that know the JSON shape.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from switchyard.core.errors import ChatFormatError

Role = Literal["system", "developer", "user", "assistant", "tool"]
ROLES: tuple[str, ...] = get_args(Role)


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text exactly as the model produced it

    def to_openai(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass(frozen=True, slots=True)
class ToolDefinition:
    name: str
    description: str = ""
    parameters_json: str = "{}"  # JSON schema text, kept verbatim

    def to_openai(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": json.loads(self.parameters_json),
            },
        }

    @classmethod
    def from_openai(cls, raw: Any, index: int = 0) -> ToolDefinition:
        where = f"tools[{index}]"
        if not isinstance(raw, dict) or raw.get("type", "function") != "function":
            raise ChatFormatError(f"{where} must be an object with type 'function'", where)
        fn = raw.get("function")
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise ChatFormatError(f"{where}.function.name must be a non-empty string", where)
        params = fn.get("parameters", {})
        if not isinstance(params, dict):
            raise ChatFormatError(f"{where}.function.parameters must be an object", where)
        return cls(fn["name"], str(fn.get("description") or ""), json.dumps(params))


@dataclass(frozen=True, slots=True)
class Attachment:
    """A non-text content part (image, audio, file), carried through untouched."""

    type: str
    payload_json: str

    def to_openai(self) -> dict[str, Any]:
        part = {"type": self.type}
        part.update(json.loads(self.payload_json))
        return part


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    attachments: tuple[Attachment, ...] = field(default=())

    def text(self) -> str:
        """Everything a reader of this message sees: content plus tool-call arguments."""
        if not self.tool_calls:
            return self.content or ""
        calls = "\n".join(f"{c.name}({c.arguments})" for c in self.tool_calls)
        return f"{self.content}\n{calls}" if self.content else calls

    def to_openai(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role}
        if self.attachments:
            parts: list[dict[str, Any]] = []
            if self.content:
                parts.append({"type": "text", "text": self.content})
            parts.extend(a.to_openai() for a in self.attachments)
            out["content"] = parts
        else:
            out["content"] = self.content
        if self.tool_calls:
            out["tool_calls"] = [c.to_openai() for c in self.tool_calls]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        if self.name is not None:
            out["name"] = self.name
        return out

    @classmethod
    def from_openai(cls, raw: Any, index: int = 0) -> Message:
        where = f"messages[{index}]"
        if not isinstance(raw, dict):
            raise ChatFormatError(f"{where} must be an object", where)
        role = raw.get("role")
        if role not in ROLES:
            raise ChatFormatError(
                f"{where}.role must be one of {', '.join(ROLES)}; got {role!r}", f"{where}.role"
            )
        content, attachments = _parse_content(raw.get("content"), where)
        tool_calls = _parse_tool_calls(raw.get("tool_calls"), where) if role == "assistant" else ()
        tool_call_id = raw.get("tool_call_id")
        if role == "tool" and (not isinstance(tool_call_id, str) or not tool_call_id):
            raise ChatFormatError(
                f"{where} has role 'tool' but no tool_call_id", f"{where}.tool_call_id"
            )
        name = raw.get("name")
        return cls(
            role=role,
            content=content,
            tool_calls=tool_calls,
            tool_call_id=tool_call_id if role == "tool" else None,
            name=name if isinstance(name, str) else None,
            attachments=attachments,
        )


def _parse_content(raw: Any, where: str) -> tuple[str | None, tuple[Attachment, ...]]:
    if raw is None or isinstance(raw, str):
        return raw, ()
    if not isinstance(raw, list):
        raise ChatFormatError(f"{where}.content must be a string or a list of parts", where)
    texts: list[str] = []
    attachments: list[Attachment] = []
    for j, part in enumerate(raw):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise ChatFormatError(f"{where}.content[{j}] must be an object with a type", where)
        if part["type"] in ("text", "input_text", "output_text"):
            if not isinstance(part.get("text"), str):
                raise ChatFormatError(f"{where}.content[{j}].text must be a string", where)
            texts.append(part["text"])
        else:
            payload = {k: v for k, v in part.items() if k != "type"}
            attachments.append(Attachment(part["type"], json.dumps(payload)))
    return ("\n".join(texts) if texts else None), tuple(attachments)


def _parse_tool_calls(raw: Any, where: str) -> tuple[ToolCall, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ChatFormatError(f"{where}.tool_calls must be a list", f"{where}.tool_calls")
    calls = []
    for j, call in enumerate(raw):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(call.get("id"), str):
            raise ChatFormatError(
                f"{where}.tool_calls[{j}] needs an id and a function", f"{where}.tool_calls"
            )
        args = fn.get("arguments", "")
        calls.append(ToolCall(call["id"], str(fn.get("name", "")), args if isinstance(args, str) else json.dumps(args)))
    return tuple(calls)


def parse_messages(raw: Any) -> list[Message]:
    """Parse and validate an OpenAI `messages` array (raises ChatFormatError)."""
    if not isinstance(raw, list) or not raw:
        raise ChatFormatError("messages must be a non-empty list", "messages")
    messages = [Message.from_openai(m, i) for i, m in enumerate(raw)]
    validate_tool_pairing(messages)
    return messages


def parse_tools(raw: Any) -> list[ToolDefinition]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ChatFormatError("tools must be a list", "tools")
    return [ToolDefinition.from_openai(t, i) for i, t in enumerate(raw)]


def validate_tool_pairing(messages: Sequence[Message]) -> None:
    """Tool calls and tool results pair up exactly as the OpenAI API demands.

    A `tool` message must answer a call of the assistant turn right before it, and every
    call of an assistant turn must be answered before the next non-tool message. We reject
    violations at admission with the index of the culprit, instead of paying for an
    upstream 400.
    """
    pending: dict[str, int] = {}  # call id -> index of the assistant message that made it
    answered: set[str] = set()
    for i, m in enumerate(messages):
        if m.role == "tool":
            if m.tool_call_id not in pending and m.tool_call_id not in answered:
                raise ChatFormatError(
                    f"messages[{i}] is a tool result for {m.tool_call_id!r}, but the assistant "
                    "message before it has no tool call with that id",
                    f"messages[{i}].tool_call_id",
                )
            pending.pop(m.tool_call_id, None)  # type: ignore[arg-type]
            answered.add(m.tool_call_id)  # type: ignore[arg-type]
            continue
        _raise_if_unanswered(pending)
        answered = set()
        pending = {c.id: i for c in m.tool_calls}
    _raise_if_unanswered(pending)


def _raise_if_unanswered(pending: dict[str, int]) -> None:
    if pending:
        call_id, i = next(iter(pending.items()))
        raise ChatFormatError(
            f"messages[{i}] has tool call {call_id!r} with no tool message answering it",
            f"messages[{i}].tool_calls",
        )


def to_openai_messages(messages: Iterable[Message]) -> list[dict[str, Any]]:
    return [m.to_openai() for m in messages]


def latest_user_text(messages: Sequence[Message]) -> str:
    for m in reversed(messages):
        if m.role == "user":
            return m.content or ""
    return ""
