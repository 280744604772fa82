"""Proto <-> pipeline types for the gRPC door: the only code besides the servicer that
touches protobuf messages. Enum tables derive from the proto's own names."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import grpc
from switchyard.core.messages import (
    Attachment,
    Message,
    ToolCall,
    ToolDefinition,
    validate_tool_pairing,
)
from switchyard.router.decision import EFFORTS, Effort, RouteDecision, RouteOverrides
from switchyard.server.auth import CURRENT_KEY_ID
from switchyard.server.config import AUTO_MODEL
from switchyard.server.errors import InvalidRequest, Unauthenticated
from switchyard.server.pipeline_types import (
    ChatRequest,
    ChatResult,
    SamplingParams,
    StreamDelta,
    ToolCallDelta,
    Usage,
)
from switchyard.v1 import gateway_pb2 as pb

if TYPE_CHECKING:
    from switchyard.retrieval import Hit

Context: TypeAlias = grpc.aio.ServicerContext

# Enum tables, derived from the proto's names so the two vocabularies cannot drift apart:
# ROLE_USER <-> "user", EFFORT_LOW <-> "low", FEEDBACK_SOURCE_JUDGE <-> "judge".
_ROLE_FROM_PB = {v: n.removeprefix("ROLE_").lower() for n, v in pb.Role.items() if v}
_ROLE_TO_PB = {role: v for v, role in _ROLE_FROM_PB.items()}
_EFFORT_FROM_PB = {v: n.removeprefix("EFFORT_").lower() for n, v in pb.Effort.items() if v}
_EFFORT_TO_PB = {effort: v for v, effort in _EFFORT_FROM_PB.items()}
_SOURCE_FROM_PB = {
    v: n.removeprefix("FEEDBACK_SOURCE_").lower() for n, v in pb.FeedbackSource.items() if v
}



# ---------------------------------------------------------------- proto -> pipeline types


def chat_request_from_pb(
    request: pb.ChatRequest, context: Context, *, stream: bool
) -> ChatRequest:
    """The pipeline's request, labelled grpc.Chat / grpc.StreamChat for the log, which keeps
    its Chat Completions form as the body (what replay reads)."""
    chat = ChatRequest(
        messages=messages_from_pb(request.messages),
        model=request.model or AUTO_MODEL,
        tools=[_tool_from_pb(t, i) for i, t in enumerate(request.tools)],
        params=_params_from_pb(request.params),
        overrides=_overrides_from_pb(request.overrides),
        stream=stream,
        include_usage=stream,  # the last delta always carries usage on gRPC
        request_id=request.request_id,
        session_id=request.session_id,
        compact_budget=positive_or_none(request, "compact_budget"),
        api_key_id=api_key_id(context),
        tags=tuple(request.tags),
        deadline=deadline_of(context),
        cascade=request.cascade if request.HasField("cascade") else None,
        endpoint="grpc.StreamChat" if stream else "grpc.Chat",
    )
    return dataclasses.replace(chat, raw_json=json.dumps(chat.to_openai()))


def deadline_of(context: Context) -> float | None:
    """The caller's deadline as an absolute time.monotonic(), so upstream never outlives it."""
    remaining = context.time_remaining()
    if remaining is None or math.isinf(remaining):
        return None
    return time.monotonic() + max(0.0, remaining)


def api_key_id(context: Context) -> str | None:
    """Check the `authorization: Bearer <key>` metadata's shape; return the verified key id.

    The key is verified once, by the edge guard (server/security.py's interceptor), which
    leaves its id in `CURRENT_KEY_ID`; None in auth.mode local. The key is never logged.
    """
    values = [v for k, v in context.invocation_metadata() or () if k == "authorization"]
    if not values:
        return None
    scheme, _, key = str(values[0]).partition(" ")
    if len(values) > 1 or scheme.lower() != "bearer" or not key.strip():
        raise Unauthenticated("authorization metadata must be exactly one 'Bearer <key>' value")
    return CURRENT_KEY_ID.get()


def messages_from_pb(raw: Sequence[pb.ChatMessage]) -> list[Message]:
    """Typed messages, validated like the HTTP path (roles, tool results, call pairing)."""
    if not raw:
        raise InvalidRequest("messages must be a non-empty list", param="messages")
    messages = [_message_from_pb(m, i) for i, m in enumerate(raw)]
    validate_tool_pairing(messages)  # raises ChatFormatError -> INVALID_ARGUMENT
    return messages


def _message_from_pb(m: pb.ChatMessage, i: int) -> Message:
    where = f"messages[{i}]"
    role = _ROLE_FROM_PB.get(m.role)
    if role is None:
        names = ", ".join(n for n, v in pb.Role.items() if v)
        got = _enum_name(pb.Role, m.role)
        raise InvalidRequest(f"{where}.role must be one of {names}; got {got}",
                             param=f"{where}.role")
    if m.tool_calls and role != "assistant":
        raise InvalidRequest(f"{where} has tool_calls but only assistant messages may",
                             param=f"{where}.tool_calls")
    if role == "tool" and not m.tool_call_id:
        raise InvalidRequest(f"{where} has role ROLE_TOOL but no tool_call_id",
                             param=f"{where}.tool_call_id")
    for j, call in enumerate(m.tool_calls):
        if not call.id or not call.name:
            raise InvalidRequest(f"{where}.tool_calls[{j}] needs an id and a name",
                                 param=f"{where}.tool_calls")
    return Message(
        role=role,  # type: ignore[arg-type]  # a member of ROLES by construction
        content=m.content if m.HasField("content") else None,
        tool_calls=tuple(ToolCall(c.id, c.name, c.arguments) for c in m.tool_calls),
        tool_call_id=m.tool_call_id if role == "tool" else None,
        name=m.name if m.HasField("name") else None,
        attachments=tuple(_attachment_from_pb(a, f"{where}.attachments[{j}]")
                          for j, a in enumerate(m.attachments)),
    )


def _attachment_from_pb(a: pb.Attachment, where: str) -> Attachment:
    if not a.type:
        raise InvalidRequest(f"{where}.type must be a content-part type, e.g. image_url",
                             param=where)
    _json_field(a.payload_json or "{}", f"{where}.payload_json", want=dict)
    return Attachment(a.type, a.payload_json or "{}")


def _tool_from_pb(t: pb.ToolDefinition, i: int) -> ToolDefinition:
    where = f"tools[{i}]"
    if not t.name:
        raise InvalidRequest(f"{where}.name must be a non-empty string", param=f"{where}.name")
    params = t.parameters_json or "{}"
    _json_field(params, f"{where}.parameters_json", want=dict)
    return ToolDefinition(t.name, t.description, params)


def _params_from_pb(p: pb.SamplingParams) -> SamplingParams:
    def opt(name: str) -> Any:
        return getattr(p, name) if p.HasField(name) else None

    for name in ("tool_choice_json", "response_format_json"):
        if p.HasField(name):
            _json_field(getattr(p, name), f"params.{name}", want=(dict, str))
    return SamplingParams(
        temperature=opt("temperature"),
        top_p=opt("top_p"),
        max_tokens=opt("max_tokens"),
        stop=tuple(p.stop) or None,
        seed=opt("seed"),
        tool_choice_json=opt("tool_choice_json"),
        parallel_tool_calls=opt("parallel_tool_calls"),
        response_format_json=opt("response_format_json"),
        user=opt("user"),
    )


def _overrides_from_pb(o: pb.RouteOverrides) -> RouteOverrides:
    return RouteOverrides(
        model=(o.model or None) if o.HasField("model") else None,
        thinking=o.thinking if o.HasField("thinking") else None,
        reasoning_effort=_effort_from_pb(o.reasoning_effort, "overrides.reasoning_effort"),
        max_effort=_effort_from_pb(o.max_effort, "overrides.max_effort"),
        budget_tokens=positive_or_none(o, "budget_tokens", where="overrides."),
    )


def _effort_from_pb(value: int, where: str) -> Effort | None:
    if value == pb.EFFORT_UNSPECIFIED:
        return None
    effort = _EFFORT_FROM_PB.get(value)
    if effort not in EFFORTS:
        names = ", ".join(n for n, v in pb.Effort.items() if v)
        raise InvalidRequest(f"{where} must be one of {names}; got {value}", param=where)
    return effort  # type: ignore[return-value]


def feedback_from_pb(request: pb.FeedbackRequest) -> dict[str, Any]:
    """Keyword arguments of `Pipeline.feedback`, after the checks proto3 cannot express."""
    if not request.request_id:
        raise InvalidRequest("request_id is required: the id of the request being rated",
                             param="request_id")
    if not request.HasField("label") and not request.HasField("score"):
        raise InvalidRequest("give a label, a score, or both", param="label")
    source = _SOURCE_FROM_PB.get(request.source)
    if source is None:
        names = ", ".join(n for n, v in pb.FeedbackSource.items() if v)
        raise InvalidRequest(f"source must be one of {names}", param="source")
    weight = request.weight if request.HasField("weight") else 1.0
    if not math.isfinite(weight) or weight < 0:
        raise InvalidRequest(f"weight must be a finite number >= 0; got {weight}", param="weight")
    return {
        "label": request.label if request.HasField("label") else None,
        "score": request.score if request.HasField("score") else None,
        "source": source,
        "weight": weight,
    }


def positive_or_none(msg: Any, name: str, *, where: str = "") -> int | None:
    if not msg.HasField(name):
        return None
    value = getattr(msg, name)
    if value <= 0:
        raise InvalidRequest(f"{where}{name} must be positive; got {value}", param=where + name)
    return int(value)


def _json_field(text: str, where: str, *, want: type | tuple[type, ...]) -> None:
    try:
        value = json.loads(text)
    except ValueError:
        raise InvalidRequest(f"{where} is not valid JSON", param=where) from None
    if not isinstance(value, want):
        raise InvalidRequest(f"{where} must be a JSON {_kinds(want)}", param=where)


def _kinds(want: type | tuple[type, ...]) -> str:
    names: dict[type, str] = {dict: "object", str: "string", list: "array"}
    types = want if isinstance(want, tuple) else (want,)
    return " or ".join(names.get(t, t.__name__) for t in types)


def _enum_name(enum: Any, value: int) -> str:
    try:
        return str(enum.Name(value))
    except ValueError:
        return str(value)


# ---------------------------------------------------------------- pipeline types -> proto


def chat_result_to_pb(result: ChatResult) -> pb.ChatResponse:
    return pb.ChatResponse(
        request_id=result.request_id,
        session_id=result.session_id,
        model=result.model,
        message=message_to_pb(result.message),
        finish_reason=result.finish_reason,
        usage=usage_to_pb(result.usage),
        decision=decision_to_pb(result.decision),
        created=result.created,
        compaction=pb.CompactionStats(tokens_before=result.tokens_before,
                                      tokens_after=result.tokens_after),
        attempts=[pb.Attempt(deployment=a.deployment, group=a.group, outcome=a.outcome,
                             latency_ms=a.latency_ms, status=a.status, stage=a.stage)
                  for a in result.attempts],
        cost_usd=result.cost_usd,
    )


def stream_event(stream: Any, **event: Any) -> pb.StreamChatResponse:
    return pb.StreamChatResponse(request_id=stream.request_id, session_id=stream.session_id,
                                 **event)


def message_to_pb(m: Message) -> pb.ChatMessage:
    return pb.ChatMessage(
        role=_ROLE_TO_PB[m.role],
        content=m.content,
        tool_calls=[pb.ToolCall(id=c.id, name=c.name, arguments=c.arguments) for c in m.tool_calls],
        tool_call_id=m.tool_call_id,
        name=m.name,
        attachments=[pb.Attachment(type=a.type, payload_json=a.payload_json)
                     for a in m.attachments],
    )


def decision_to_pb(d: RouteDecision) -> pb.RouteDecision:
    return pb.RouteDecision(
        model=d.model,
        thinking=d.thinking,
        reasoning_effort=_EFFORT_TO_PB.get(d.reasoning_effort or "", pb.EFFORT_UNSPECIFIED),
        budget_tokens=d.budget_tokens,
        p_hard=d.p_hard,
        policy_version=d.policy_version,
        reason=d.reason,
        overridden=d.overridden,
    )


def usage_to_pb(u: Usage) -> pb.Usage:
    return pb.Usage(
        prompt_tokens=u.prompt_tokens,
        completion_tokens=u.completion_tokens,
        reasoning_tokens=u.reasoning_tokens,
        cached_tokens=u.cached_tokens,
        total_tokens=u.total_tokens,
    )


def delta_to_pb(d: StreamDelta) -> pb.StreamDelta:
    return pb.StreamDelta(
        content=d.content,
        reasoning=d.reasoning,
        tool_calls=[_tool_call_delta_to_pb(t) for t in d.tool_calls],
        finish_reason=d.finish_reason,
        usage=usage_to_pb(d.usage) if d.usage is not None else None,
        model=d.model,
    )


def _tool_call_delta_to_pb(t: ToolCallDelta) -> pb.ToolCallDelta:
    return pb.ToolCallDelta(index=t.index, id=t.id, name=t.name, arguments=t.arguments)


def hit_to_pb(hit: Hit) -> pb.Hit:
    chunk = hit.chunk
    ranks = sorted(hit.ranks.items(), key=lambda item: (item[1], item[0]))
    return pb.Hit(
        chunk_id=hit.chunk_id,
        score=float(hit.score),
        text=chunk.text,
        source=chunk.source,
        retrievers=[pb.RetrieverRank(retriever=name, rank=rank) for name, rank in ranks],
        namespace=chunk.namespace,
        role=chunk.role,
        message_index=chunk.message_index,
        start_line=chunk.start_line,
        tokens=chunk.tokens,
    )

