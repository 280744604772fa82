"""Responses <-> chat translation.

The pipeline speaks Chat Completions, so Responses input items (messages, `function_call`,
`function_call_output`) become chat `Message`s, flat function tools become `ToolDefinition`s,
and the pipeline's result becomes a Responses object. `reasoning` items are accepted and
dropped: a Chat Completions upstream cannot take them back.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Mapping
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
from switchyard.server.errors import (
    InvalidRequest,
    LimitExceeded,
    SwitchyardError,
    UpstreamRateLimited,
)
from switchyard.server.http.openai_types import header_overrides, int_header
from switchyard.server.http.responses.tools import (
    ToolPlan,
    custom_arguments,
    custom_input,
    plan_tools,
)
from switchyard.server.http.responses.wire import ResponsesRequest, Turn
from switchyard.server.pipeline_types import ChatRequest, SamplingParams, Usage

ENDPOINT = "http.responses"
SKIPPED_ITEMS = ("reasoning",)  # accepted from Codex-style clients, not sent upstream
TEXT_PARTS = ("input_text", "output_text", "text")


def to_chat_request(body: ResponsesRequest, history: list[dict[str, Any]],
                    items: list[dict[str, Any]], headers: Mapping[str, str],
                    raw: bytes, plan: ToolPlan | None = None) -> ChatRequest:
    plan = plan or plan_tools(body.tools)
    messages = [Message("system", body.instructions)] if body.instructions else []
    messages += items_to_messages(history + items, offset=len(history), plan=plan)
    return ChatRequest(
        messages=messages, model=body.model, tools=plan.tools,
        params=_sampling(body, plan), overrides=_effort_overrides(body, headers), stream=body.stream,
        include_usage=True, session_id=headers.get("x-switchyard-session-id", ""),
        compact_budget=int_header(headers, "x-switchyard-compact-budget"),
        endpoint=ENDPOINT, raw_json=raw.decode("utf-8", errors="replace"))


def items_to_messages(items: list[dict[str, Any]], offset: int = 0,
                      plan: ToolPlan | None = None) -> list[Message]:
    """Responses items -> chat messages. Consecutive calls join one assistant message.

    Items before `offset` came from the store (errors there name previous_response_id).
    A namespaced call takes the flat name its namespace's functions have upstream.
    """
    plan = plan or ToolPlan()
    messages: list[Message] = []
    open_calls: dict[str, str] = {}  # call_id -> where, for calls still awaiting output
    for i, item in enumerate(items):
        where = f"input[{i - offset}]" if i >= offset else "previous_response_id"
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind in ("function_call_output", "custom_tool_call_output"):
            messages.append(_tool_result(item, where, open_calls))
            continue
        if kind in SKIPPED_ITEMS:
            continue
        if kind in ("function_call", "custom_tool_call"):
            call = _call(item, where, plan)
            last = messages[-1] if messages else None
            if last is not None and last.role == "assistant":  # parallel calls: one turn
                messages[-1] = dataclasses.replace(last, tool_calls=(*last.tool_calls, call))
            else:
                _raise_if_open(open_calls)
                messages.append(Message("assistant", None, tool_calls=(call,)))
            open_calls[call.id] = where
            continue
        if kind != "message":
            raise InvalidRequest(
                f"{where}.type {kind!r} is not supported; Switchyard accepts message, "
                "function_call, function_call_output, custom_tool_call, "
                "custom_tool_call_output and reasoning items", param=f"{where}.type")
        _raise_if_open(open_calls)
        messages.append(_message(item, where))
    _raise_if_open(open_calls)
    try:
        validate_tool_pairing(messages)
    except ChatFormatError as exc:  # our own checks above should make this unreachable
        raise InvalidRequest(exc.message, param="input") from None
    if not messages:
        raise InvalidRequest("input has no message or function call items", param="input")
    return messages


def _message(item: dict[str, Any], where: str) -> Message:
    role = item.get("role")
    if role not in ("user", "assistant", "system", "developer"):
        raise InvalidRequest(f"{where}.role must be user, assistant, system or developer; "
                             f"got {role!r}", param=f"{where}.role")
    content = item.get("content")
    if isinstance(content, str):
        return Message(role, content)
    if not isinstance(content, list):
        raise InvalidRequest(f"{where}.content must be a string or a list of content parts",
                             param=f"{where}.content")
    texts: list[str] = []
    attachments: list[Attachment] = []
    for j, part in enumerate(content):
        ptype = part.get("type") if isinstance(part, dict) else None
        here = f"{where}.content[{j}]"
        if ptype in TEXT_PARTS and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif ptype == "refusal" and isinstance(part.get("refusal"), str):
            texts.append(part["refusal"])
        elif ptype == "input_image" and isinstance(part.get("image_url"), str):
            url = {"url": part["image_url"], "detail": part.get("detail") or "auto"}
            attachments.append(Attachment("image_url", json.dumps({"image_url": url})))
        elif ptype == "input_file" and (part.get("file_data") or part.get("file_id")):
            keys = ("file_data", "file_id", "filename")
            file = {k: part[k] for k in keys if part.get(k)}
            attachments.append(Attachment("file", json.dumps({"file": file})))
        else:
            raise InvalidRequest(
                f"{here} of type {ptype!r} is not supported (or misses its payload); use "
                "input_text, output_text, refusal, input_image with image_url, or input_file "
                "with file_data/file_id", param=here)
    return Message(role, "\n".join(texts) if texts else None, attachments=tuple(attachments))


def _call(item: dict[str, Any], where: str, plan: ToolPlan) -> ToolCall:
    call_id, name, args = item.get("call_id"), item.get("name"), item.get("arguments", "")
    if not isinstance(call_id, str) or not call_id or not isinstance(name, str) or not name:
        raise InvalidRequest(f"{where}: a function_call needs call_id and name strings",
                             param=f"{where}.call_id")
    if item.get("type") == "custom_tool_call":  # its raw input becomes our one-string args
        return ToolCall(call_id, name, custom_arguments(str(item.get("input") or "")))
    namespace = item.get("namespace")
    return ToolCall(call_id, plan.flat(namespace if isinstance(namespace, str) else None, name),
                    args if isinstance(args, str) else json.dumps(args))


def _tool_result(item: dict[str, Any], where: str, open_calls: dict[str, str]) -> Message:
    call_id = item.get("call_id")
    if not isinstance(call_id, str) or call_id not in open_calls:
        raise InvalidRequest(
            f"{where} is a function_call_output for call_id {call_id!r}, but no function_call "
            "with that call_id comes before it (since the last message)",
            param=f"{where}.call_id")
    del open_calls[call_id]
    output = item.get("output")
    if isinstance(output, list):
        texts = [p.get("text", "") for p in output
                 if isinstance(p, dict) and p.get("type") in TEXT_PARTS]
        if len(texts) != len(output):
            raise InvalidRequest(f"{where}.output: only text parts can go to a Chat Completions "
                                 "upstream", param=f"{where}.output")
        output = "\n".join(texts)
    if not isinstance(output, str):
        raise InvalidRequest(f"{where}.output must be a string or a list of input_text parts",
                             param=f"{where}.output")
    return Message("tool", output, tool_call_id=call_id)


def _raise_if_open(open_calls: dict[str, str]) -> None:
    if open_calls:
        call_id, where = next(iter(open_calls.items()))
        raise InvalidRequest(f"No tool output found for function call {call_id!r} ({where}); "
                             "send a function_call_output item for it", param="input")


def _sampling(body: ResponsesRequest, plan: ToolPlan) -> SamplingParams:
    return SamplingParams(
        temperature=body.temperature, top_p=body.top_p, max_tokens=body.max_output_tokens,
        tool_choice_json=_tool_choice(body.tool_choice, plan), user=body.user,
        parallel_tool_calls=body.parallel_tool_calls,
        response_format_json=_response_format(body.text))


def _tool_choice(choice: str | dict[str, Any] | None, plan: ToolPlan) -> str | None:
    if choice is None:
        return None
    if isinstance(choice, str):
        if choice not in ("auto", "none", "required"):
            raise InvalidRequest("tool_choice must be auto, none, required or a function",
                                 param="tool_choice")
        return json.dumps(choice)
    if choice.get("type") in ("function", "custom") and isinstance(choice.get("name"), str):
        namespace = choice.get("namespace")
        name = plan.flat(namespace if isinstance(namespace, str) else None, choice["name"])
        return json.dumps({"type": "function", "function": {"name": name}})
    if choice.get("type") in plan.dropped:  # a tool we left out: let the model choose
        return None
    raise InvalidRequest(f"tool_choice of type {choice.get('type')!r} is not supported; use "
                         "auto, none, required or {type: function, name}", param="tool_choice")


def _response_format(text: dict[str, Any] | None) -> str | None:
    fmt = (text or {}).get("format")
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text"):
        return None
    if fmt["type"] == "json_object":
        return json.dumps({"type": "json_object"})
    if fmt["type"] == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        return json.dumps({"type": "json_schema", "json_schema": schema})
    raise InvalidRequest(f"text.format.type {fmt['type']!r} is not supported",
                         param="text.format")


def _effort_overrides(body: ResponsesRequest, headers: Mapping[str, str]) -> RouteOverrides:
    """A caller's own reasoning.effort is an override; "none" means the non-thinking group."""
    effort = body.reasoning.effort if body.reasoning else None
    body_effort = {"xhigh": "high", "none": None}.get(effort or "", effort)
    overrides = header_overrides(headers, body_effort)
    if effort == "none" and overrides.thinking is None and overrides.reasoning_effort is None:
        overrides = dataclasses.replace(overrides, thinking=False)
    return overrides


# -- response bodies -----------------------------------------------------------------------
def usage_body(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens, "cache_write_tokens": 0},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


def message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    return {"id": item_id, "type": "message", "status": status, "role": "assistant",
            "content": content if status != "in_progress" else []}


def call_item(item_id: str, call: ToolCall, plan: ToolPlan,
              status: str = "completed") -> dict[str, Any]:
    return {"id": item_id, "status": status, **call_fields(call, plan)}


def call_fields(call: ToolCall, plan: ToolPlan) -> dict[str, Any]:
    """A call as the client knows it: a function_call (a flattened one under its namespace)
    or, for a freeform tool, a custom_tool_call with its raw input."""
    if call.name in plan.custom:
        return {"type": "custom_tool_call", "call_id": call.id, "name": call.name,
                "input": custom_input(call.arguments)}
    namespace, name = plan.client_call(call.name)
    fields = {"type": "function_call", "call_id": call.id, "name": name,
              "arguments": call.arguments}
    if namespace is not None:
        fields["namespace"] = namespace
    return fields


def output_items(message: Message, plan: ToolPlan) -> list[dict[str, Any]]:
    items = [message_item(new_item_id("msg"), message.content)] if message.content else []
    items += [call_item(new_item_id("fc"), c, plan) for c in message.tool_calls]
    return items


def response_body(turn: Turn, *, model: str, status: str, output: list[dict[str, Any]],
                  usage: Usage | None = None, error: SwitchyardError | None = None,
                  finish_reason: str | None = None) -> dict[str, Any]:
    body = turn.body
    incomplete = {"length": "max_output_tokens", "content_filter": "content_filter"}
    return {
        "id": turn.id, "object": "response", "created_at": turn.created_at, "status": status,
        "background": False,
        "error": None if error is None else {"code": failure_code(error),
                                             "message": error.message},
        "incomplete_details": ({"reason": incomplete[finish_reason]}
                               if status == "incomplete" and finish_reason in incomplete
                               else None),
        "instructions": body.instructions, "max_output_tokens": body.max_output_tokens,
        "metadata": body.metadata or {}, "model": model, "output": output,
        "parallel_tool_calls": body.parallel_tool_calls is not False,
        "previous_response_id": body.previous_response_id,
        "reasoning": {"effort": body.reasoning.effort if body.reasoning else None,
                      "summary": body.reasoning.summary if body.reasoning else None},
        "store": body.store, "temperature": body.temperature, "top_p": body.top_p,
        "text": body.text or {"format": {"type": "text"}},
        "tool_choice": body.tool_choice if body.tool_choice is not None else "auto",
        "tools": [_tool_body(t) for t in turn.plan.tools if t.name not in turn.plan.namespaced],
        "truncation": body.truncation or "disabled",
        "usage": None if usage is None else usage_body(usage), "user": body.user,
    }


def failure_code(err: SwitchyardError) -> str:
    """The `error.code` of a failed response, as Codex and the SDK expect it."""
    if isinstance(err, (UpstreamRateLimited, LimitExceeded)):
        return "rate_limit_exceeded"
    return err.code or "server_error"


def response_status(finish_reason: str | None) -> str:
    return "incomplete" if finish_reason in ("length", "content_filter") else "completed"


def _tool_body(tool: ToolDefinition) -> dict[str, Any]:
    return {"type": "function", "name": tool.name, "description": tool.description,
            "parameters": json.loads(tool.parameters_json), "strict": None}


def new_item_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"
