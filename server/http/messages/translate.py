"""Anthropic Messages requests -> the pipeline's chat types.

The pipeline speaks Chat Completions, so a Messages body becomes a `ChatRequest`:
- `system` (a string or text blocks) and mid-conversation `system` turns become system
  messages;
- `tool_use` blocks become an assistant turn's tool calls, and `tool_result` blocks become
  `tool` messages (their images follow in a user message: chat tool messages are text only);
- `image` and PDF `document` blocks become `image_url` / `file` parts;
- `thinking` / `redacted_thinking` blocks from earlier turns are dropped: a Chat Completions
  upstream cannot take them back, and their signatures only mean something to Anthropic;
- custom tools become function tools; hosted tools (`web_search_20250305`, `bash_...`) have no
  Chat Completions form and are left out, named in the `x-switchyard-dropped-tools` header.

Thinking is the router's decision: `{"type": "enabled", "budget_tokens": N}` is the caller's
override, `{"type": "disabled"}` pins the non-thinking group, and `adaptive` (Claude Code's
default) leaves both the group and the budget to the router.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from switchyard.core.errors import ChatFormatError
from switchyard.core.messages import (
    Attachment,
    Message,
    ToolCall,
    ToolDefinition,
    validate_tool_pairing,
)
from switchyard.router.decision import RouteOverrides
from switchyard.server.errors import InvalidRequest
from switchyard.server.http.messages.wire import (
    CountTokensRequest,
    MessagesRequest,
    ThinkingParam,
    ToolChoiceParam,
)
from switchyard.server.http.openai_types import (
    cascade_header,
    header_overrides,
    int_header,
    parse_body,
)
from switchyard.server.pipeline_types import ChatRequest, SamplingParams

ENDPOINT = "http.messages"
SESSION_HEADERS = ("x-switchyard-session-id", "x-claude-code-session-id")
DROPPED_BLOCKS = ("thinking", "redacted_thinking")
# Accepted, meaningless to a Chat Completions upstream; each is logged once per process.
IGNORED_FIELDS = ("metadata", "context_management", "top_k")
logger = logging.getLogger(__name__)
_noted: set[str] = set()


@dataclass(frozen=True, slots=True)
class Translation:
    chat: ChatRequest
    dropped_tools: tuple[str, ...]  # hosted tools left out (no Chat Completions form)


def to_chat_request(body: MessagesRequest, headers: Mapping[str, str], raw: bytes) -> Translation:
    messages = to_messages(body.system, body.messages)
    tools, dropped = to_tools(body.tools)
    _note_ignored(body)
    params = SamplingParams(
        temperature=body.temperature, top_p=body.top_p, max_tokens=body.max_tokens,
        stop=tuple(body.stop_sequences) if body.stop_sequences else None,
        tool_choice_json=_tool_choice(body.tool_choice) if tools else None,
        parallel_tool_calls=(False if body.tool_choice and body.tool_choice.disable_parallel_tool_use
                             and tools else None),
        response_format_json=_response_format(body))
    chat = ChatRequest(
        messages=messages, model=body.model, tools=tools, params=params,
        overrides=thinking_overrides(body.thinking, headers), stream=body.stream,
        include_usage=True, session_id=_session(headers),
        compact_budget=int_header(headers, "x-switchyard-compact-budget"),
        endpoint=ENDPOINT, raw_json=raw.decode("utf-8", errors="replace"),
        cascade=cascade_header(headers))
    return Translation(chat, dropped)


def count_request(body: CountTokensRequest) -> tuple[list[Message], list[ToolDefinition]]:
    return to_messages(body.system, body.messages), to_tools(body.tools)[0]


def replay_json(raw: str) -> str:
    """A logged Messages body as the Chat Completions body it was served as (JSON text), for
    `switchyard replay` and training from the log; InvalidRequest when it cannot be read."""
    data = raw.encode()
    chat = to_chat_request(parse_body(data, MessagesRequest), {}, data).chat
    out: dict[str, Any] = {"model": chat.model, "messages": [m.to_openai() for m in chat.messages]}
    if chat.tools:
        out["tools"] = [t.to_openai() for t in chat.tools]
    out.update(chat.params.to_openai())
    return json.dumps(out)


# -- thinking ------------------------------------------------------------------------------
def thinking_overrides(thinking: ThinkingParam | None,
                       headers: Mapping[str, str]) -> RouteOverrides:
    """x-switchyard-* headers first, then the body's explicit thinking choice."""
    overrides = header_overrides(headers, None)
    if thinking is None or thinking.type == "adaptive":
        return overrides
    if thinking.type == "disabled":
        return overrides if overrides.thinking is not None else dataclasses.replace(
            overrides, thinking=False)
    if thinking.budget_tokens is None:
        raise InvalidRequest("thinking.budget_tokens is required when thinking.type is "
                             "'enabled' (or use {\"type\": \"adaptive\"} to let the router "
                             "choose)", param="thinking.budget_tokens")
    if overrides.budget_tokens is not None:
        return overrides
    return dataclasses.replace(overrides, budget_tokens=thinking.budget_tokens)


# -- messages ------------------------------------------------------------------------------
def to_messages(system: Any, raw: list[Any]) -> list[Message]:
    if not raw:
        raise InvalidRequest("messages must be a non-empty list", param="messages")
    out = [Message("system", _text_only(system, "system"))] if system else []
    for i, item in enumerate(raw):
        out += _turn(item, f"messages[{i}]")
    try:
        validate_tool_pairing(out)
    except ChatFormatError:
        raise InvalidRequest("tool_use and tool_result blocks do not pair up: every tool_use "
                             "must be answered by a tool_result in the next user turn",
                             param="messages") from None
    return out


def _turn(item: Any, where: str) -> list[Message]:
    if not isinstance(item, dict):
        raise InvalidRequest(f"{where} must be an object", param=where)
    role, content = item.get("role"), item.get("content")
    if role not in ("user", "assistant", "system"):
        raise InvalidRequest(f"{where}.role must be user or assistant; got {role!r}",
                             param=f"{where}.role")
    if role == "system":
        return [Message("system", _text_only(content, f"{where}.content"))]
    if isinstance(content, str):
        return [Message(role, content)]
    if not isinstance(content, list):
        raise InvalidRequest(f"{where}.content must be a string or a list of content blocks",
                             param=f"{where}.content")
    blocks = [_block(b, f"{where}.content[{j}]") for j, b in enumerate(content)]
    return _assistant(blocks) if role == "assistant" else _user(blocks)


def _block(block: Any, where: str) -> dict[str, Any]:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        raise InvalidRequest(f"{where} must be an object with a type", param=where)
    return {**block, "_where": where}


def _assistant(blocks: list[dict[str, Any]]) -> list[Message]:
    texts: list[str] = []
    calls: list[ToolCall] = []
    for b in blocks:
        kind = b["type"]
        if kind == "text":
            texts.append(_str(b, "text"))
        elif kind == "tool_use":
            calls.append(ToolCall(_str(b, "id"), _str(b, "name"), json.dumps(b.get("input", {}))))
        elif kind in DROPPED_BLOCKS:
            _note(kind, "thinking blocks of earlier turns are not sent to the upstream")
        else:
            raise _unsupported(b, "text, tool_use, thinking or redacted_thinking")
    if not texts and not calls:
        return []  # only thinking: nothing a Chat Completions upstream can take back
    return [Message("assistant", "\n".join(texts) or None, tool_calls=tuple(calls))]


def _user(blocks: list[dict[str, Any]]) -> list[Message]:
    """tool_result blocks first (as tool messages), then the user's own text and media."""
    results: list[Message] = []
    texts: list[str] = []
    media: list[Attachment] = []
    for b in blocks:
        kind = b["type"]
        if kind == "tool_result":
            text, images = _tool_result(b)
            results.append(Message("tool", text, tool_call_id=_str(b, "tool_use_id")))
            media += images
        elif not _add_part(b, texts, media):
            raise _unsupported(b, "text, image, document or tool_result")
    if texts or media:
        return [*results, Message("user", "\n".join(texts) or None, attachments=tuple(media))]
    return results


def _tool_result(b: dict[str, Any]) -> tuple[str, list[Attachment]]:
    content = b.get("content", "")
    texts: list[str] = []
    images: list[Attachment] = []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for j, part in enumerate(content):
            part = _block(part, f"{b['_where']}.content[{j}]")
            if not _add_part(part, texts, images):
                raise _unsupported(part, "text, image or document")
    else:
        raise InvalidRequest(f"{b['_where']}.content must be a string or a list of blocks",
                             param=f"{b['_where']}.content")
    text = "\n".join(texts)
    if images:
        text += f"\n[{len(images)} image(s) from this tool result follow in the next message]"
    return ("[tool error] " + text if b.get("is_error") else text), images


def _add_part(b: dict[str, Any], texts: list[str], media: list[Attachment]) -> bool:
    """A text, image or document block into `texts` / `media`; False for any other type."""
    if b["type"] == "text":
        texts.append(_str(b, "text"))
    elif b["type"] in ("image", "document"):
        part = _media(b)
        if isinstance(part, str):
            texts.append(part)
        else:
            media.append(part)
    else:
        return False
    return True


def _media(b: dict[str, Any]) -> Attachment | str:
    """image -> image_url part; PDF document -> file part; a text document -> its text."""
    where, source = b["_where"], b.get("source")
    if not isinstance(source, dict):
        raise InvalidRequest(f"{where}.source must be an object", param=f"{where}.source")
    kind = source.get("type")
    if b["type"] == "document" and kind == "text":
        return _str(source, "data", f"{where}.source")
    if kind == "base64":
        url = f"data:{_str(source, 'media_type', f'{where}.source')};base64," \
              f"{_str(source, 'data', f'{where}.source')}"
    elif kind == "url":
        url = _str(source, "url", f"{where}.source")
    else:
        raise InvalidRequest(f"{where}.source.type {kind!r} is not supported; use base64 or url"
                             + (" (or text for documents)" if b["type"] == "document" else ""),
                             param=f"{where}.source.type")
    if b["type"] == "image":
        return Attachment("image_url", json.dumps({"image_url": {"url": url}}))
    if kind == "url":
        raise InvalidRequest(f"{where}: a document must be sent as base64 or text data, not a "
                             "URL", param=f"{where}.source.type")
    name = b.get("title") if isinstance(b.get("title"), str) else "document.pdf"
    return Attachment("file", json.dumps({"file": {"file_data": url, "filename": name}}))


def _text_only(content: Any, where: str) -> str:
    """System prompts: a string or a list of text blocks (cache_control ignored)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        blocks = [_block(b, f"{where}[{j}]") for j, b in enumerate(content)]
        if all(b["type"] == "text" for b in blocks):
            return "\n".join(_str(b, "text") for b in blocks)
    raise InvalidRequest(f"{where} must be a string or a list of text blocks", param=where)


# -- tools and options ---------------------------------------------------------------------
def to_tools(raw: list[Any] | None) -> tuple[list[ToolDefinition], tuple[str, ...]]:
    tools: list[ToolDefinition] = []
    dropped: list[str] = []
    for i, tool in enumerate(raw or []):
        where = f"tools[{i}]"
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str) or not tool["name"]:
            raise InvalidRequest(f"{where} must be an object with a name", param=where)
        if tool.get("type") not in (None, "custom") and "input_schema" not in tool:
            dropped.append(tool["name"])  # hosted (server or client-defined) tool types
            continue
        schema = tool.get("input_schema")
        if not isinstance(schema, dict):
            raise InvalidRequest(f"{where}.input_schema must be an object",
                                 param=f"{where}.input_schema")
        tools.append(ToolDefinition(tool["name"], str(tool.get("description") or ""),
                                    json.dumps(schema)))
    if dropped:
        _note("hosted_tools", f"hosted tools have no Chat Completions form; left out: {dropped}")
    return tools, tuple(dropped)


def _tool_choice(choice: ToolChoiceParam | None) -> str | None:
    if choice is None:
        return None
    if choice.type == "tool":
        if not choice.name:
            raise InvalidRequest("tool_choice.name is required when tool_choice.type is 'tool'",
                                 param="tool_choice.name")
        return json.dumps({"type": "function", "function": {"name": choice.name}})
    return json.dumps({"auto": "auto", "any": "required", "none": "none"}[choice.type])


def _response_format(body: MessagesRequest) -> str | None:
    fmt = body.output_config.format if body.output_config else None
    if fmt is None:
        return None
    if fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict):
        raise InvalidRequest("output_config.format must be {\"type\": \"json_schema\", "
                             "\"schema\": {...}}", param="output_config.format")
    return json.dumps({"type": "json_schema",
                       "json_schema": {"name": "output", "schema": fmt["schema"], "strict": True}})


def _session(headers: Mapping[str, str]) -> str:
    return next((headers[h] for h in SESSION_HEADERS if headers.get(h)), "")


# -- helpers -------------------------------------------------------------------------------
def _str(b: dict[str, Any], key: str, where: str | None = None) -> str:
    value = b.get(key)
    if not isinstance(value, str):
        here = where or b.get("_where", "block")
        raise InvalidRequest(f"{here}.{key} must be a string", param=f"{here}.{key}")
    return value


def _unsupported(b: dict[str, Any], valid: str) -> InvalidRequest:
    return InvalidRequest(f"{b['_where']}.type {b['type']!r} is not supported here; use {valid}",
                          param=f"{b['_where']}.type")


def _note_ignored(body: MessagesRequest) -> None:
    for name in IGNORED_FIELDS:
        if getattr(body, name) is not None:
            _note(name, f"request field {name!r} has no meaning upstream; ignored")
    if body.output_config is not None and body.output_config.effort is not None:
        _note("output_config.effort", "output_config.effort ignored: the router sets the effort")


def _note(key: str, text: str) -> None:
    if key not in _noted:
        _noted.add(key)
        logger.info(text)
